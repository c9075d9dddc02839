"""Directories of our own on the head (locks, caches) in places other users can write.

/run/lock, /tmp and /var/cache may hold a directory someone else made first, or a link. A
directory is used only when it is a real directory owned by us and writable by nobody else
(made 0700 when missing); anything else is refused, never "fixed". Files in it are opened
through the directory's descriptor, so no path is looked up twice.
"""
import errno
import os
import stat

from hltcloud.errors import ToolError
from hltcloud.filetrust import owner_name


class PrivateDirError(ToolError, OSError):
    """The directory cannot be trusted or made: one line, exit 2 (ToolError's), nothing done."""


def open_private(path, what, hint=""):
    """A descriptor of PATH (WHAT, for messages), made 0700 if missing; PrivateDirError
    unless it is a real directory of ours that no one else can write. HINT ends the message
    (what the operator can do)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PrivateDirError(f"{what} {path} is not a directory (a link?): refusing it") \
                from None
        raise
    info = os.fstat(fd)
    problem = ""
    if info.st_uid != os.geteuid():
        problem = f"is owned by {owner_name(info.st_uid)}, not by {owner_name(os.geteuid())}"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by others (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        os.close(fd)
        raise PrivateDirError(f"{what} {path} {problem}: refusing it{hint}")
    return fd


def replace_file(dir_fd, name, data):
    """Write DATA (bytes) to NAME in the directory DIR_FD: a new file (never a link someone
    planted), then renamed over NAME."""
    temp = f".{name}.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
