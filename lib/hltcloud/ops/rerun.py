"""Re-run what failed: --failed-hosts FILE, --ok-hosts FILE, and the re-run line.

At the end of a run the hosts that failed (succeeded) are written, one a line, in the
@FILE format every tool reads; the first line is a comment naming the run. When some host
failed, the summary ends with the command that re-runs the run on just those hosts: the
same words, `@FILE` in place of the host list words, quoted with shlex.join. Without
--failed-hosts that FILE is in the user's state directory ($XDG_STATE_HOME/hltcloud or
~/.local/state/hltcloud, 0700), which keeps the last KEEP runs' lists; a dry run and --check
keep none (their line names the hosts themselves), and --check's line is the prefill that
repairs those hosts.

Writing never follows a link planted where the file goes: the list is written to a new
file created with O_EXCL|O_NOFOLLOW (mode 0600) in the same directory (opened once, used
by descriptor), then renamed over FILE. A rename replaces a link, it does not write
through it, so whatever FILE pointed to is left as it was.
"""
import os
import shlex
import sys
import time

from hltcloud.errors import UsageError

SWITCHES = (("--failed-hosts", "failed_path", "write the hosts that failed to FILE (@FILE list)"),
            ("--ok-hosts", "ok_path", "write the hosts that succeeded to FILE (@FILE list)"))
_MARK = "@\0hosts"  # stands for the host list words while the command line is re-parsed


def add_switches(parser):
    """--failed-hosts FILE and --ok-hosts FILE on PARSER."""
    for flag, dest, text in SWITCHES:
        parser.add_argument(flag, dest=dest, metavar="FILE", default=None, help=text)


def check_paths(args):
    """Refuse (exit 2, nothing done) a list FILE that could not be written at the end."""
    paths = [(flag, getattr(args, dest)) for flag, dest, _ in SWITCHES]
    for flag, path in paths:
        if path is None:
            continue
        directory = os.path.dirname(path) or "."
        if not path or path.endswith("/"):
            raise UsageError(f"{flag} needs a file name: {path!r}")
        if not os.path.isdir(directory):
            raise UsageError(f"{flag}: no such directory: {directory}")
        if os.path.isdir(path) and not os.path.islink(path):
            raise UsageError(f"{flag}: {path} is a directory")
    if paths[0][1] and paths[0][1] == paths[1][1]:
        raise UsageError("--failed-hosts and --ok-hosts name the same file")


def write_list(path, hosts, header):
    """HOSTS, one a line after the comment HEADER, into PATH (see the module docstring)."""
    directory, name = os.path.split(path)
    dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        import secrets  # here: hashlib's start-up is not every run's
        temporary = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask
                handle.write("".join(f"{line}\n" for line in [f"# {header}", *hosts]))
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(temporary, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


def words_span(parser, argv, args):
    """(start, end) of the host list words in ARGV: the slice equal to ARGS.hosts that
    parses, replaced by one word, to the same options (an option's value can look like a
    host)."""
    words = list(args.hosts)
    wanted = {**vars(args), "hosts": [_MARK]}
    for start in range(len(argv) - len(words), -1, -1):
        if argv[start:start + len(words)] != words:
            continue
        try:
            again = parser.parse_args([*argv[:start], _MARK, *argv[start + len(words):]])
        except (ValueError, SystemExit):
            continue
        if vars(again) == wanted:
            return start, start + len(words)
    return len(argv) - len(words), len(argv)


class HostLists:
    """The end of one run: its lists written, its re-run line printed.

    ARGV: the tool's arguments (no program name); SPAN: (start, end) of its host list
    words; ARGS: the parsed options (failed_path, ok_path)."""

    def __init__(self, prog, argv, span, args, save=True, drop=(), reroute=None):
        self.prog = prog
        self.argv = list(argv)
        self.span = span
        self.failed_path = args.failed_path
        self.ok_path = args.ok_path
        self.save = save  # False (a dry run, --check): no list unless --failed-hosts asks
        self.drop = drop  # switches the re-run line leaves out (--check: the repair runs)
        # failed outcomes -> (hosts, argv, span): those hosts re-run by another command
        self.reroute = reroute

    def invoked(self):
        """The program as the operator started it (its path), else its name."""
        exe = sys.argv[0] if sys.argv else ""
        return exe if os.path.basename(exe) == self.prog else self.prog

    def command(self, hosts_word, argv=None, span=None):
        """The run again (or ARGV, its host list words at SPAN), HOSTS_WORD (@FILE, or the
        hosts folded) for the host list words."""
        argv = self.argv if argv is None else argv
        start, end = self.span if span is None else span
        words = [*argv[:start], hosts_word, *argv[end:]]
        return shlex.join([self.invoked(), *(w for w in words if w not in self.drop)])

    def header(self, what):
        from hltcloud.ops import audit
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        run = audit.one_line(shlex.join([self.prog, *self.argv]))
        return f"hosts that {what}: {self.prog} run (pid {os.getpid()}) at {when}: {run}"

    def finish(self, reporter, outcomes):
        """Write the lists of the hosts of OUTCOMES (in their order; ops/outcomes.py) that
        failed and that are ok; print the re-run line when some failed; note them for the
        record (audit.py). False when a list the operator asked for could not be written."""
        bad = [outcome.host for outcome in outcomes if not outcome.ok]
        good = [outcome.host for outcome in outcomes if outcome.ok]
        from . import audit  # here, not at start-up: the logging modules cost every run
        audit.note_outcomes(outcomes)
        written = True
        for path, listed, what in ((self.failed_path, bad, "failed"),
                                   (self.ok_path, good, "succeeded")):
            if path is not None:
                written = self._write(reporter, path, listed, what) and written
        other = self.reroute([o for o in outcomes if not o.ok]) if bad and self.reroute else None
        if other and other[0]:
            hosts, argv, span = other
            word = self._word(reporter, hosts, whole=len(hosts) == len(bad), written=written)
            if word:
                reporter.write_line(f"Re-run on the {len(hosts)} failed host(s): "
                                    f"{self.command(word, argv, span)}")
            bad = [host for host in bad if host not in set(hosts)]
        if bad:
            word = self._word(reporter, bad, whole=other is None or not other[0], written=written)
            if word:
                reporter.write_line(f"Re-run on the {len(bad)} failed host(s): "
                                    f"{self.command(word)}")
        return written

    def _word(self, reporter, hosts, whole, written):
        """The host list word of a re-run line for HOSTS: --failed-hosts' @FILE when it holds
        just them (WHOLE: every failed host), else a list kept for it, else the hosts."""
        if whole and self.failed_path is not None and written:
            return f"@{self.failed_path}"
        if self.save:
            return self._saved_list(reporter, hosts)
        from hltcloud.hostlist import fold  # nothing to keep: the hosts themselves
        return fold(hosts)

    def _write(self, reporter, path, hosts, what):
        try:
            write_list(path, hosts, self.header(what))
            return True
        except OSError as err:
            reporter.fail(f"cannot write the hosts that {what} to {path}: "
                          f"{err.strerror or err}")
            return False

    def _saved_list(self, reporter, hosts):
        """The failed hosts' list in the user's state directory (state_dir(): 0700, the last
        KEEP runs' lists): "@PATH", or "" (said)."""
        from hltcloud.ops.privatedir import PrivateDirError
        try:
            directory = state_dir()
        except (OSError, PrivateDirError) as err:
            why = getattr(err, "strerror", None) or err
            reporter.fail(f"cannot keep the failed hosts' list: {why}")
            return ""
        now = time.time_ns()  # names sort by time; two runs of one process differ too
        name = (f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now // 10**9))}."
                f"{now % 10**9:09d}-{os.getpid()}-{self.prog}.hosts")
        path = os.path.join(directory, name)
        if not self._write(reporter, path, hosts, "failed"):
            return ""
        forget_old_lists(directory)
        return f"@{path}"


KEEP = 20  # runs whose failed hosts' lists are kept


def state_dir(env=None):
    """The user's own directory for the re-run lists: $XDG_STATE_HOME/hltcloud, else
    ~/.local/state/hltcloud; made 0700, refused unless it is the user's and no one else can
    write it (privatedir.open_private)."""
    from hltcloud.ops.privatedir import open_private
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    os.makedirs(base, mode=0o700, exist_ok=True)
    path = os.path.join(base, "hltcloud")
    os.close(open_private(path, "the re-run lists' directory"))
    return path


def forget_old_lists(directory, keep=KEEP):
    """Remove all but the KEEP newest lists (their names sort by time) of DIRECTORY."""
    lists = sorted(name for name in os.listdir(directory) if name.endswith(".hosts"))
    for name in lists[:-keep]:
        try:
            os.unlink(os.path.join(directory, name))  # unlink: a link goes, not its target
        except OSError:
            pass
