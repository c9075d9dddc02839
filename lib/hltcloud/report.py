"""Status lines for people at a terminal and for pdsh subworkers.

`[ OK ] message`, `[FAIL] message`, `[WARN] message`, `[DRY ] message`; colours only on a
TTY and never with --no-colors or $NO_COLOR; in line-output mode every message is one
complete line (pdsh prefixes and interleaves lines, so nothing may be rewritten in place).

Every line goes out through write_line(), which makes it printable (printable.py): a name or
an error text from the cloud cannot retitle the terminal or start a forged `[ OK ]` line.
A message is one line whatever it holds; only the colour codes paint() writes survive.
Nor does a line start with OUTCOME_MARK: that is a subworker's result (ops/outcomes.py).

The Reporter displays; what a run came to is in its hosts' outcomes (ops/outcomes.py),
which summary() lists. Its status lines also go to the run's record when it has one
(RECORD, given by audit.start).
"""
import os
import re
import sys
import threading
import time

from hltcloud.hostlist import fold
from hltcloud.printable import printable, printable_lines

OUTCOME_MARK = "@hltcloud-outcome "  # starts a subworker's last line: its outcome as JSON
_COLORS = {"ok": "32", "fail": "31", "warn": "33", "dry": "36", "bold": "1"}
_TAGS = {"ok": "[ OK ]", "fail": "[FAIL]", "warn": "[WARN]", "dry": "[DRY ]",
         "delivered": "[ OK ]"}
_TAG_COLORS = {"delivered": "ok"}
# Exactly the codes paint() writes: the only escape sequences a line may keep.
_OWN_PAINT = re.compile(r"(\033\[(?:%s)m)" % "|".join(sorted({"0", *_COLORS.values()})))


def want_colors(stream, no_colors=False, environ=os.environ):
    """Colours only for a TTY, and never when asked not to (switch or NO_COLOR)."""
    if no_colors or environ.get("NO_COLOR", "") != "":
        return False
    return is_tty(stream)


class Reporter:
    """Prints status lines; keeps the failures of a run that has no per-host outcomes
    (runvms, status, a list that could not be written) for the closing summary.

    Thread-safe: per-host workers may report at once; each message is written whole.
    RECORD: FUNCTION(line) given each status line as printed, uncoloured, or None.
    """

    def __init__(self, stream=None, no_colors=False, line_output=False, record=None):
        self.stream = stream or sys.stdout
        self.colors = want_colors(self.stream, no_colors)
        self.line_output = line_output
        self.record = record
        self.failures = []  # (host or "", reason): failures not carried by an outcome
        self._lock = threading.Lock()
        self._open_line = False  # a progress line is being rewritten in place

    def paint(self, kind, text):
        if not self.colors:
            return text
        return f"\033[{_COLORS[kind]}m{text}\033[0m"

    def _safe(self, text):
        """TEXT with each of its lines made printable; paint()'s codes kept when colouring."""
        if not self.colors:
            text = printable_lines(text)
        else:
            parts = _OWN_PAINT.split(text)  # odd indexes: our own codes
            text = "".join(part if index % 2 else printable_lines(part)
                           for index, part in enumerate(parts))
        if OUTCOME_MARK in text:  # a name that looks like a subworker's result
            text = "\n".join(f" {line}" if line.startswith(OUTCOME_MARK) else line
                             for line in text.split("\n"))
        return text

    def write_line(self, text):
        """Print TEXT (a line, or a block such as a table: its "\n" stay line breaks)."""
        text = self._safe(text)
        with self._lock:
            if self._open_line:
                self.stream.write("\n")
                self._open_line = False
            self.stream.write(text + "\n")
            self.stream.flush()

    def _tagged(self, kind, message):
        tag = _TAGS[kind]
        message = printable(message)
        self.write_line(f"{self.paint(_TAG_COLORS.get(kind, kind), tag)} {message}")
        if self.record is not None and kind != "dry":
            self.record(f"{tag} {message}")

    def ok(self, message):
        self._tagged("ok", message)

    def warn(self, message):
        self._tagged("warn", message)

    def dry(self, message):
        """An action that dry-run mode shows instead of doing."""
        self._tagged("dry", message)

    def delivered(self, message):
        """A transfer that worked: "[ OK ] MESSAGE"."""
        self._tagged("delivered", message)

    def info(self, message):
        self.write_line(printable(message))

    def show_fail(self, message):
        """Print a failure that an outcome carries (the summary lists it from there)."""
        self._tagged("fail", message)

    def fail(self, message, host=""):
        """Print a failure and keep it for the summary; HOST names the host it belongs to.
        For what has no outcome: runvms, status, a list that could not be written."""
        self.show_fail(message)
        with self._lock:
            self.failures.append((host, message))

    def progress(self, prefix):
        return Progress(self, prefix)

    def summary(self, outcomes=(), dry=None):
        """The closing lines: the failed OUTCOMES and the failures kept by fail(); returns
        True when nothing failed. DRY: a dry run's hint ("" for none), said at its end."""
        failures = [(o.host, o.summary_line()) for o in outcomes if not o.ok] + list(self.failures)
        self.write_line("")
        if not failures:
            self.write_line(self.paint("ok", "All commands executed successfully."
                                       if dry is None else dry_end(dry)))
            return True
        hosts = sorted({host for host, _ in failures if host})
        if hosts:
            self.write_line(self.paint("fail", f"Failed on {len(hosts)} host(s): {fold(hosts)}"))
        else:
            self.write_line(self.paint("fail", "There were errors:"))
        for _host, message in failures:
            self.write_line(f"  {printable(message)}")
        return False


def dry_end(hint=""):
    """The last line of a dry run that went well: nothing happened, and how to act."""
    return "Dry run: nothing was changed" + (f" ({hint})." if hint else ".")


class Progress:
    """A wait shown as one growing line: "PREFIX...2 running (300 s left)...all gone in 1s!".

    On a TTY (and not in line-output mode) the current state is rewritten in place; otherwise
    each change (or every MIN_INTERVAL seconds without change) is printed as a whole line.
    """

    def __init__(self, reporter, prefix, min_interval=10.0):
        self.reporter = reporter
        self.prefix = prefix
        self.in_place = is_tty(reporter.stream) and not reporter.line_output
        self.min_interval = min_interval
        self._first_text = None
        self._last_text = None
        self._last_time = 0.0

    def _rewrite(self, line, final):
        rep = self.reporter
        line = printable(line)
        with rep._lock:
            rep.stream.write("\r" + line + "\033[K" + ("\n" if final else ""))
            rep.stream.flush()
            rep._open_line = not final

    def update(self, text):
        """Show TEXT; off a TTY only when it changed or MIN_INTERVAL passed (no flooding)."""
        if self._first_text is None:
            self._first_text = text
        now = time.monotonic()
        if self.in_place:
            self._rewrite(f"{self.prefix}...{text}", final=False)
        elif text != self._last_text or now - self._last_time >= self.min_interval:
            self.reporter.write_line(printable(f"{self.prefix}...{text}"))
        self._last_text, self._last_time = text, now

    def done(self, text):
        """The end. In place, the line keeps where it began; as whole lines, the end is one
        more event (the first state was its own line already: not said twice)."""
        if self.in_place:
            middle = f"{self._first_text}..." if self._first_text else ""
            self._rewrite(f"{self.prefix}...{middle}{text}", final=True)
        else:
            self.reporter.write_line(printable(f"{self.prefix}...{text}"))


def is_tty(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
