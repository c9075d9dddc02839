"""Checks for values that end up in command lines run on other machines."""
import re

from hltcloud.errors import UsageError

# Host names, service names and image ids: letters, digits, '.', '-', '_' only.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
# Paths put (quoted) into remote shell strings and rsync arguments: absolute, boring.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+/-]*\Z")


class BadValue(UsageError):
    """A user or site value that must not reach a command line."""


def is_safe_name(value):
    return isinstance(value, str) and bool(_SAFE_NAME.match(value))


def check_name(value, what="name"):
    """Return VALUE if it is a safe name, else raise BadValue naming it."""
    if not is_safe_name(value):
        raise BadValue(f"invalid {what}: {value!r}")
    return value


def path_fault(value, empty_parts=True):
    """Why VALUE is not a plain absolute path, or "" when it is one: "characters" (not a
    string, not absolute, or a character other than letters, digits and . _ + - /) or
    "parts" (a "." or ".." part; with EMPTY_PARTS false, also an empty one: "//")."""
    if not isinstance(value, str) or not _PLAIN_PATH.match(value):
        return "characters"
    refused = (".", "..") if empty_parts else ("", ".", "..")
    if any(part in refused for part in value.split("/")[1:]):
        return "parts"
    return ""
