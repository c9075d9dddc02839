"""Exit statuses, and the one place that turns an error into a line and a status.

Every tool's entry point runs its body through run_main(). One hierarchy says how a run
ends: a ToolError carries its exit status (UsageError and every bad-input error below it: 2;
the cloud: 3; a host or an action: 1) and becomes one line `PROG: message` on standard
error; Ctrl-C is "interrupted", 130. Anything else, a ValueError from int("x") deep in a
transfer as much as a KeyError, is a bug and keeps its traceback. The run's record in the system log (audit.py) is
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


class UsageError(ToolError, ValueError):
    """Bad input (a switch, a host list, a file, a value): one line, exit 2, nothing done.
    Also a ValueError, so that argparse's type functions and local checks may raise it."""


def exit_status(err):
    """The status ERR ends a run with, or None for an error nobody expected."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED
    return err.exit_status if isinstance(err, ToolError) else None


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
