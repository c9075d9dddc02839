"""Text from the cloud made safe for a person's terminal: the one rule every printed line,
table cell, summary and error line goes through (report.py, table.py, errors.py).

Names and messages from an API (images, VMs, hosts, error texts) may hold escape sequences
that retitle or clear root's terminal, or newlines that forge a `[ OK ]` line. Every
character Python itself would not print in a repr() -- C0 and C1 controls, DEL, line and
paragraph separators, format characters such as bidi overrides, lone surrogates -- is shown
as repr() shows it: `\\x1b`, `\\n`, `\\r`, `\\t`, `\\u202e`. Printable text (backslashes
included) stays as it is, so the result is printable and doing it twice changes nothing:
a line may pass this rule more than once, and JSON (json.dumps escapes every control
character) goes through it unchanged.
"""


def printable(text):
    """TEXT as one line that only prints: non-printable characters shown as escapes."""
    text = str(text)
    if text.isprintable():  # the common case, in C
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def printable_lines(text):
    """As printable(), line by line: TEXT's own line breaks ("\\n") stay line breaks (a
    table, a JSON document); any other control character is escaped."""
    return "\n".join(printable(line) for line in str(text).split("\n"))
