"""The process table, read from /proc (no ps): the one reader behind the tools' scans.

A process may end between listing /proc and reading its files: it is then left out, never
an error.
"""
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    state: str  # "R", "S", "Z" (a zombie: ended, waiting for its parent)...
    uid: int
    argv: tuple  # bytes words of its command line (empty for a zombie or a kernel thread)


def process(pid):
    """The Process PID, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # comm, in parentheses, may hold spaces and ")": the fields start after the last ")"
            fields = handle.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = tuple(handle.read().split(b"\0")[:-1])
        uid = os.stat(f"/proc/{pid}").st_uid
    except (OSError, IndexError):
        return None
    return Process(int(pid), int(fields[1]), fields[0].decode(errors="replace"), uid, argv)


def processes():
    """Every process there is now."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = process(entry)
            if found is not None:
                yield found


def running(pid):
    """Alive and not a zombie waiting for its parent."""
    found = process(pid)
    return found is not None and found.state != "Z"


def children(pid):
    """Pids whose parent is PID."""
    return [p.pid for p in processes() if p.ppid == pid]
