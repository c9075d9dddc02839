"""One run at a time on a host (or an image): an flock a (cloud, name), held until release.

Two operators (or two cron jobs) disabling and enabling the same host at once would
interleave start/stop/delete actions; the second run is refused with a clear message.

The lock files live in $HLTCLOUD_LOCK_DIR (default /run/hltcloud, or a private directory in
the temporary directory where /run cannot be written), a directory of our own that nobody
else can write (privatedir.py: anything else is refused, never "fixed"). Not /run/lock: any
local user can make /run/lock/hltcloud first and so stop every run; /run is root's alone,
so root's runs go on whatever other users do.
Lock files are opened relative to the directory's descriptor, without following links and
without truncating, and removed again on release, so none pile up. The name includes a
digest of the cloud's endpoint, so two clouds with the same host names don't collide.
"""
import fcntl
import hashlib
import os
import stat
import tempfile

from hltcloud.ops.privatedir import PrivateDirError, open_private

LOCK_DIR_VAR = "HLTCLOUD_LOCK_DIR"
DEFAULT_DIR = "/run/hltcloud"  # in root's own /run (0755), never in /run/lock (1777)
_MAX_PID_TEXT = 32  # a lock file holds a pid; never read more than this


class Busy(Exception):
    """Another run holds the lock."""


LockDirError = PrivateDirError  # the lock directory cannot be trusted: exit 2, nothing done


def _fallback_dir():
    return os.path.join(tempfile.gettempdir(), f"hltcloud-locks-{os.geteuid()}")


def lock_dir_fd():
    """The lock directory, checked (see privatedir.py); raises LockDirError."""
    wanted = os.environ.get(LOCK_DIR_VAR) or DEFAULT_DIR
    candidates = [wanted] if os.environ.get(LOCK_DIR_VAR) else [wanted, _fallback_dir()]
    hint = f" (remove it, or set {LOCK_DIR_VAR} to a private directory)"
    last = None
    for path in candidates:
        try:
            return open_private(path, "lock directory", hint)
        except PrivateDirError:
            raise  # a hostile directory is never silently replaced by another one
        except OSError as err:
            last = f"{path}: {err.strerror}"
    raise LockDirError(f"no usable lock directory ({last})")


_held = {}  # file name -> open file descriptor; the lock lasts as long as it stays open
_dir_fd = None


def prepare():
    """Open and check the lock directory now (before anything is done); LockDirError."""
    global _dir_fd
    if _dir_fd is None:
        _dir_fd = lock_dir_fd()


def acquire(scope, name, tool="openstack-hlt-manage", what=None):
    """Lock NAME (a host, "runvms", an image) within SCOPE (the cloud's endpoint).
    Raises Busy naming the holder's pid and WHAT (default NAME), LockDirError for an
    untrusted directory."""
    digest = hashlib.sha1(scope.encode()).hexdigest()[:12]
    filename = f"{name}.{digest}.lock"
    if filename in _held:
        return
    prepare()
    while True:
        fd = os.open(filename, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=_dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LockDirError(f"lock file {filename} is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, _MAX_PID_TEXT, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise Busy(f"another {tool} run (pid {holder}) is working on {what or name}") from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, filename):
            break
        os.close(fd)  # its holder removed it while we opened it: take the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[filename] = fd


def _same_file(fd, filename):
    """Is FD still the file under FILENAME (not one a releasing run has just removed)?"""
    try:
        named = os.stat(filename, dir_fd=_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)


def release_all():
    """Remove our lock files (while still holding them, so no one takes a removed file's
    lock for good: see _same_file), then let go."""
    global _dir_fd
    for filename, fd in _held.items():
        try:
            os.unlink(filename, dir_fd=_dir_fd)
        except OSError:
            pass
        os.close(fd)
    _held.clear()
    if _dir_fd is not None:
        os.close(_dir_fd)
        _dir_fd = None
