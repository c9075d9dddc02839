"""Whose files root may take settings, secrets and scripts from.

Root reads the site configuration, clouds.yaml and secure.yaml, the VMs' user data and an
ssh configuration. A file that another local user can write, or that someone other than the
caller (or root) owns, would let that user choose root's cloud, password or ssh commands:
it is refused, in one line naming the file, its owner or its mode, and the fix. The check is
made on what was opened (fstat), never on a name that may change in between.
"""
import os
import stat

from hltcloud.errors import UsageError


class UntrustedFile(UsageError):
    """A file another user controls: bad input (exit 2), nothing done."""


def owner_name(uid):
    """'root (uid 0)', 'uid 4242' when the user database has no name for it."""
    try:
        import pwd
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def problem(info):
    """Why a file with fstat INFO cannot be trusted by the caller, or ""."""
    caller = os.geteuid()
    if info.st_uid not in (caller, 0):
        trusted = owner_name(caller) + ("" if caller == 0 else " or root")
        return f"is owned by {owner_name(info.st_uid)}, not by {trusted} (chown it)"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"is writable by others (mode {stat.S_IMODE(info.st_mode):04o}; "
                f"chmod go-w it)")
    return ""


def check(info, path, what):
    """Refuse PATH (WHAT, for the message), whose open descriptor's fstat is INFO."""
    found = problem(info)
    if found:
        raise UntrustedFile(f"{what} {path} {found}: refusing it")


def check_path(path, what):
    """Open PATH (without blocking on a fifo or taking a terminal) and check it; PATH."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        check(os.fstat(fd), path, what)
    finally:
        os.close(fd)
    return path
