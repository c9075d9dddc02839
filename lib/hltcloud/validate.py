"""Checks for values that end up in command lines run on other machines."""
import re

# Host names, service names and image ids: letters, digits, '.', '-', '_' only.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


class BadValue(ValueError):
    """A user or site value that must not reach a command line."""


def check_name(value, what="name"):
    """Return VALUE if it is a safe name, else raise BadValue naming it."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise BadValue(f"invalid {what}: {value!r}")
    return value
