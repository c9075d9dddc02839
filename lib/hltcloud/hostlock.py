"""One run at a time on a host: an flock a (cloud, host), held until the process ends.

Two operators (or two cron jobs) disabling and enabling the same host at once would
interleave start/stop/delete actions; the second run is refused with a clear message.
The lock files live in $HLTCLOUD_LOCK_DIR (default /run/lock/hltcloud); the name includes
a digest of the compute endpoint, so two clouds with the same host names don't collide.
"""
import errno
import fcntl
import hashlib
import os
import tempfile

LOCK_DIR_VAR = "HLTCLOUD_LOCK_DIR"


class Busy(Exception):
    """Another run holds the lock."""


def _lock_dir():
    wanted = os.environ.get(LOCK_DIR_VAR) or "/run/lock/hltcloud"
    for path in (wanted, os.path.join(tempfile.gettempdir(), "hltcloud-locks")):
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError:
            continue
    raise OSError(f"no writable lock directory ({wanted})")


_held = {}  # name -> open file; the lock lasts as long as the file stays open


def acquire(scope, name):
    """Lock NAME (a host, or "runvms") within SCOPE (the cloud's compute endpoint)."""
    digest = hashlib.sha1(scope.encode()).hexdigest()[:12]
    path = os.path.join(_lock_dir(), f"{name}.{digest}.lock")
    if path in _held:
        return
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise Busy(f"another openstack-hlt-manage run (pid {holder}) is working on {name}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held[path] = handle


def release_all():
    for handle in _held.values():
        handle.close()
    _held.clear()
