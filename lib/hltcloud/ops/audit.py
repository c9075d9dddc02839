"""The record of what was done: real runs go to the system log (standard library only).

A run that changes something (openstack-hlt-manage --for-real enable/disable/runvms, a
real openstack-prefill-cache or rsync-wave.py run) calls start() once its configuration is
known, and gives the function it returns to its Reporter (record=): every status line the
Reporter prints ([ OK ], [FAIL], [WARN], the transfer lines "[ OK ] a --> b") is sent to
syslog as it is printed. The hosts' outcomes (note_outcomes(), from rerun.HostLists.finish)
make the closing record, which errors.run_main() sends with the run's exit status. Records:

    openstack-hlt-manage[PID]: start: user root (uid 0, sudo from alice): openstack-hlt-manage --for-real enable cn[01-04].internal
    openstack-hlt-manage[PID]: [ OK ] Enabling hypervisor cn01.internal
    openstack-hlt-manage[PID]: end: exit status 1 (some host failed); failed: cn02.internal; ok: cn01.internal

Facility user (Debian's rsyslog puts it into /var/log/syslog; journalctl -t TOOL finds it
by its tag). A --parallel subworker logs its own host's lines only: its parent logs the
start and the end. Nothing from the environment is logged but the user names (checked
characters, bounded); control characters are escaped so a record stays one line. No
socket (no /dev/log on this host) means no record and no message; a socket that refuses
is said once on standard error; neither ever fails the run.
"""
import errno
import getpass
import logging
import logging.handlers
import os
import re
import shlex
import socket
import sys

from hltcloud.hostlist import fold

SEND_TIMEOUT = 2.0  # seconds a record may wait for room in a stalled daemon's socket
MAX_TEXT = 4000  # characters of one record (a huge host list on the command line)
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TAGS = ("[ OK ]", "[FAIL]", "[WARN]")
_LEVELS = {"[FAIL]": logging.ERROR, "[WARN]": logging.WARNING}
_STATUS_WORDS = {0: "all good", 1: "some host failed", 2: "bad usage or input",
                 3: "the cloud cannot be used", 130: "interrupted"}


class _QuietSysLogHandler(logging.handlers.SysLogHandler):
    """A record that cannot be sent (daemon gone, or stalled for SEND_TIMEOUT) is lost and
    so are the rest: never a traceback, a failed run, nor a run waiting on a full socket."""
    broken = False

    def emit(self, record):
        if not self.broken:
            super().emit(record)

    def handleError(self, record):
        self.broken = True


class _Run:
    def __init__(self, prog, handler, subworker):
        self.prog = prog
        self.handler = handler
        self.subworker = subworker
        self.hosts = None  # (ok, failed) once known

    def send(self, text, level=logging.INFO):
        text = one_line(text)
        if len(text) > MAX_TEXT:
            text = f"{text[:MAX_TEXT]}... ({len(text) - MAX_TEXT} more characters)"
        self.handler.handle(logging.makeLogRecord({"msg": text, "levelno": level,
                                                   "levelname": logging.getLevelName(level)}))

    def line(self, text):
        """A status line the Reporter printed (its RECORD): tagged lines only."""
        if text.startswith(_TAGS):
            self.send(text, _LEVELS.get(text[:6], logging.INFO))


_run = None


def one_line(text):
    """TEXT with control characters escaped (\\n, \\x1b): one record, one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def who():
    """'user root (uid 0, sudo from alice)': names from getpass and SUDO_USER, kept only
    when they look like user names."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "?"
    text = f"user {name if _USER.match(name) else '?'} (uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        text += f", sudo from {sudo if _USER.match(sudo) else '?'}"
    return text + ")"


def open_handler(prog, path):
    """A syslog handler on the socket PATH, tagged PROG[pid], or None (no socket: silent;
    any other problem: one line on standard error)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:  # the handler would hide why it cannot connect
        probe.connect(path)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTDIR):
            print(f"{prog}: warning: no record in the system log ({path}: "
                  f"{err.strerror or err}); the run goes on", file=sys.stderr)
        return None
    finally:
        probe.close()
    handler = _QuietSysLogHandler(address=path, socktype=socket.SOCK_DGRAM,
                                  facility=logging.handlers.SysLogHandler.LOG_USER)
    if handler.socket is None or handler.socket.fileno() < 0:  # gone meanwhile
        return None
    handler.socket.settimeout(SEND_TIMEOUT)
    handler.ident = f"{prog}[{os.getpid()}]: "
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def start(prog, argv, config, enabled=True, subworker=False):
    """Record this run (ENABLED: a real run and neither --no-syslog nor [log] syslog = no).
    Returns the function that records a status line (the Reporter's RECORD), or None when
    there is no record. A SUBWORKER records its host's lines only."""
    global _run
    if not (enabled and config.syslog) or _run is not None:
        return None
    handler = open_handler(prog, config.syslog_socket)
    if handler is None:
        return None
    _run = _Run(prog, handler, subworker)
    if not subworker:
        _run.send(f"start: {who()}: {shlex.join([prog, *argv])}")
    return _run.line


def note_outcomes(outcomes):
    """The hosts' outcomes (ops/outcomes.py), for the closing record: which failed, which
    are ok."""
    if _run is not None:
        outcomes = list(outcomes)
        _run.hosts = ([o.host for o in outcomes if o.ok], [o.host for o in outcomes if not o.ok])


def finish(status):
    """The closing record (not for a subworker); STATUS None: ended by an unexpected error."""
    global _run
    run, _run = _run, None
    if run is None:
        return
    if not run.subworker:
        if status is None:
            text, level = "end: unexpected error (a bug: see its traceback)", logging.ERROR
        else:
            text = f"end: exit status {status} ({_STATUS_WORDS.get(status, 'failed')})"
            level = logging.INFO if status == 0 else logging.ERROR
        if run.hosts is not None:
            ok, failed = run.hosts
            text += f"; failed: {fold(failed) or '-'}; ok: {fold(ok) or '-'}"
        run.send(text, level)
    run.handler.close()
