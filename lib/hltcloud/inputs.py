"""Operator input shared by the three tools: whole numbers and small files they name.

Bad input is a ValueError with one line naming the value: every tool reports it and exits 2
before anything is requested from the cloud or run on a node.
"""
import argparse
import os
import re
import stat

from hltcloud import filetrust
from hltcloud.errors import UsageError

_WHOLE = re.compile(r"-?[0-9]+\Z")  # ASCII digits only: int() would take '٣', '1_000', ' 5'
_MAX_DIGITS = 18  # anything longer is above every bound (and int() of 5,000 digits raises)


class InputError(UsageError):
    """A number or file the operator named is unusable. REASON is the message without the
    file's name; ERRNO is set when the file could not be opened or read."""

    def __init__(self, message, errno=None, reason=""):
        super().__init__(message)
        self.errno = errno
        self.reason = reason or message


def parse_whole(text, minimum, maximum, unit=""):
    """TEXT as an int in [MINIMUM, MAXIMUM], else InputError naming TEXT (the caller names
    the switch or key)."""
    text = str(text)
    if not _WHOLE.match(text):
        raise InputError(f"not a whole number{unit}: {text!r}")
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise InputError(f"must be at most {maximum}: {text[:_MAX_DIGITS]}...")
    value = int(text)
    if value < minimum:
        raise InputError(f"must be at least {minimum}: {text}")
    if value > maximum:
        raise InputError(f"must be at most {maximum}: {text}")
    return value


def whole_number(minimum, maximum, unit=""):
    """An argparse type: a whole number (of UNIT) from MINIMUM to MAXIMUM."""
    def parse(text):
        try:
            return parse_whole(text, minimum, maximum, unit)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


class OneLineParser(argparse.ArgumentParser):
    """argparse without the usage dump: a bad switch is one UsageError line (exit 2), a
    mistyped one named with the nearest real one; --version on every tool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from hltcloud import __version__
        self.add_argument("--version", action="version",
                          version=f"{self.prog} (hltcloud) {__version__}",
                          help="print the version and exit")

    def error(self, message):  # argparse would print the whole usage and exit by itself
        raise UsageError(message)

    def parse_known_args(self, args=None, namespace=None):
        check_switches(self, args)
        return super().parse_known_args(args, namespace)


def check_switches(parser, argv):
    """UsageError for the first --word of ARGV (before a lone --) that is no switch of
    PARSER, nor the start of exactly one: "unknown switch --vm-timout (did you mean
    --vm-timeout?)". argparse would often say something else first: in `--vm-timout 10
    disable`, that 10 is no command."""
    switches = [s for s in parser._option_string_actions if s.startswith("--")]
    for word in argv or ():
        if word == "--":
            return
        name = word.split("=", 1)[0]
        if not name.startswith("--") or name == "--" or name in switches:
            continue
        if len([s for s in switches if s.startswith(name)]) == 1:
            continue  # argparse takes an unambiguous abbreviation
        import difflib  # here, not in every run: only a mistyped switch needs it
        # compared without the dashes every switch shares: --bogus is not near --long
        near = difflib.get_close_matches(name[2:], [s[2:] for s in switches], n=1)
        raise UsageError(f"unknown switch {name}" + (f" (did you mean --{near[0]}?)" if near else ""))


def _open_regular(path, what, trusted=False):
    """A read-only fd of PATH, a regular file; never blocks (fifo) nor grabs a terminal.
    TRUSTED: root takes settings or secrets from it (filetrust.py: nobody else controls it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as err:  # ValueError: an embedded NUL
        strerror = getattr(err, "strerror", None) or str(err)
        raise InputError(f"cannot read {what} {path!r}: {strerror}",
                         getattr(err, "errno", None), strerror) from None
    try:
        info = os.fstat(fd)  # of what was opened, not of what the name points to now
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{what} {path!r} is not a regular file", reason="not a regular file")
        if trusted:
            filetrust.check(info, path, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular_file(path, what):
    """Refuse PATH unless it is a regular file we can open for reading."""
    os.close(_open_regular(path, what))
    return path


def read_small_file(path, limit, what, trusted=False):
    """The bytes of PATH, a regular file of at most LIMIT bytes (read at most LIMIT+1);
    TRUSTED as for _open_regular."""
    with os.fdopen(_open_regular(path, what, trusted), "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as err:
            raise InputError(f"cannot read {what} {path!r}: {err.strerror}", err.errno,
                             err.strerror) from None
    if len(data) > limit:
        raise InputError(f"{what} {path!r} is larger than {limit} bytes")
    return data


def read_small_text(path, limit, what, trusted=False):
    """As read_small_file, decoded as UTF-8 (else InputError)."""
    try:
        return read_small_file(path, limit, what, trusted).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {path!r} is not UTF-8 text") from None
