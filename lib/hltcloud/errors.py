"""Exit statuses, and the one place that turns an error into a line and a status.

Every tool's entry point runs its body through run_main(): an error that says how the run
ends (an `exit_status` attribute, or a ValueError: bad input) becomes one line
`PROG: message` on standard error and its status; Ctrl-C is "interrupted", 130. Anything
else is a bug and keeps its traceback. The run's record in the system log (audit.py) is
closed here with that status.
"""
import sys

from hltcloud.printable import printable

OK = 0
FAILED = 1  # some host or action failed
USAGE = 2  # bad usage or input: nothing done
CLOUD = 3  # the cloud cannot be used: nothing done
INTERRUPTED = 130


class ToolError(Exception):
    """An error that ends the run with EXIT_STATUS (default: bad input)."""
    exit_status = USAGE

    def __init__(self, message, exit_status=None):
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status


class UsageError(ValueError):
    """Bad switch value: reported in one line, exit 2, nothing done."""


def exit_status(err):
    """The status ERR ends a run with, or None for an error nobody expected."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED
    status = getattr(err, "exit_status", None)
    if status is not None:
        return status
    return USAGE if isinstance(err, ValueError) else None


def report(prog, err, stream=None):
    """Print ERR as one printable line for PROG (it may quote the cloud); returns its exit
    status."""
    message = "interrupted" if isinstance(err, KeyboardInterrupt) else str(err)
    print(f"{prog}: {printable(message)}", file=stream or sys.stderr)
    return exit_status(err)


def run_main(prog, body, on_interrupt=None):
    """BODY() -> exit status; its expected errors become one line and their status.
    ON_INTERRUPT runs first after Ctrl-C (to stop what the body started). A run the body
    recorded (audit.start) gets its closing record here, with the status."""
    status = None
    try:
        status = _run_body(prog, body, on_interrupt)
        return status
    finally:
        # Only a run that loaded audit can have started a record: a usage error, or --help,
        # never pays for the logging modules.
        audit = sys.modules.get("hltcloud.ops.audit")
        if audit is not None:
            audit.finish(status)


def _run_body(prog, body, on_interrupt):
    try:
        return body()
    except KeyboardInterrupt as err:
        if on_interrupt:
            on_interrupt()
        return report(prog, err)
    except Exception as err:  # noqa: BLE001 -- sorted by exit_status; bugs are re-raised
        if exit_status(err) is None:
            raise
        return report(prog, err)
