"""Read an openrc file without executing it: plain OS_* assignments only.

A line is `export NAME=VALUE` or `NAME=VALUE` (NAME: OS_ and capitals, digits, _), a comment
or blank. VALUE is one shell word, unquoted, 'single-' or "double-quoted", read as sh would
read it. Whatever sh would expand or run ($, backquotes, ;, |, globs, a second word) is
refused with the line number: guessing its value could hand the cloud the wrong one. Errors
never quote the line, which may hold a password.
"""
import re
from hltcloud.errors import UsageError

_ASSIGNMENT = re.compile(r"(?:export[ \t]+)?(OS_[A-Z0-9_]+)=")
_UNQUOTED_REFUSED = set("$`;&|<>(){}*?[]")  # expansions, statements and globs of sh
_DOUBLE_ESCAPABLE = set('$`"\\')  # what a backslash escapes inside "..." (POSIX)


class OpenrcError(UsageError):
    """The openrc holds something that is not a plain OS_* assignment."""


def parse(text):
    """The {NAME: VALUE} of TEXT's assignments (a later one wins, as in sh)."""
    values = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(stripped)
        if not match:
            raise OpenrcError(f"line {lineno}: not an assignment `export OS_NAME=VALUE`")
        name = match.group(1)
        try:
            values[name] = _word(stripped[match.end():])
        except OpenrcError as err:
            raise OpenrcError(f"line {lineno} ({name}): {err}") from None
    if not values:
        raise OpenrcError("no OS_* assignment")
    return values


def _word(text):
    """The value of the one shell word at the start of TEXT; after it only a comment."""
    out, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t":
            rest = text[i:].lstrip(" \t")
            if rest and not rest.startswith("#"):
                raise OpenrcError("more than one word (sh would run a command): quote the value")
            break
        if char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise OpenrcError("unterminated single quote")
            out.append(text[i + 1:end])
            i = end + 1
        elif char == '"':
            i = _double_quoted(text, i + 1, out)
        elif char == "\\":
            if i + 1 >= n:
                raise OpenrcError("backslash at the end of the line "
                                  "(continuation lines are not read)")
            out.append(text[i + 1])
            i += 2
        elif char in _UNQUOTED_REFUSED or (char == "~" and (i == 0 or text[i - 1] == ":")):
            raise OpenrcError(f"{char!r} outside single quotes (sh would expand or run it): "
                              "single-quote the value")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _double_quoted(text, i, out):
    """Append the "..." starting after its quote at I to OUT; the index after it."""
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            return i + 1
        if char == "\\" and i + 1 < n and text[i + 1] in _DOUBLE_ESCAPABLE:
            out.append(text[i + 1])
            i += 2
            continue
        if char in "$`":
            raise OpenrcError(f"{char!r} inside double quotes (sh would expand or run it): "
                              "single-quote the value")
        out.append(char)
        i += 1
    raise OpenrcError("unterminated double quote")
