"""openstack-hlt-manage: enable, disable, status, runvms, listwns, vmstats, reconcile.

Parse, build the context, dispatch, return the exit status (errors.py: 0 all good, 1 some
host or action failed, 2 bad usage or input, 3 the cloud cannot be used, 130 interrupted).

The modules that talk to the cloud (and so load keystoneauth1 and requests, most of the
start-up time) are imported in the dispatch, once the command line is known to be
good: --help, a usage error or a bad host list never load them.
"""
import signal
import sys

from hltcloud.manage import options
from hltcloud.errors import FAILED, OK, USAGE, ToolError, UsageError, run_main

PROG = options.PROG
LOCKING_COMMANDS = ("enable", "disable", "runvms", "reconcile")  # take locks when run --for-real


def _whole_cloud_action(command):
    """The function(ctx) of a command that reads (or, runvms, fills) the whole cloud."""
    if command == "status":
        from hltcloud.manage import status as hosts_status
        return lambda ctx: hosts_status.show(ctx, ctx.opts.hosts)
    if command == "reconcile":
        from hltcloud.manage import reconcile
        return reconcile.run  # its own exit status
    from hltcloud.manage import listwns
    from hltcloud.manage import runvms
    return {"listwns": lambda ctx: listwns.listwns(ctx, ctx.opts.hosts),
            "vmstats": lambda ctx: listwns.vmstats(ctx, ctx.opts.hosts),
            "runvms": runvms.fill}[command]


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt  # a --parallel parent stops its subworkers with SIGTERM


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv in ([], ["-h"], ["--help"]):
        return _usage_or_help(argv)
    asked = argv[:argv.index("--")] if "--" in argv else argv
    if {"-h", "--help"} & set(asked) and options.command_help(argv):
        print(options.command_help(argv), end="")  # COMMAND --help: its switches
        return OK
    return run_main(PROG, lambda: _run(argv))


def _run(argv):
    opts = options.parse(argv)
    from hltcloud.ops import audit
    from hltcloud.ops import hostlock
    from hltcloud.config import load
    from hltcloud.manage.context import Context
    config = load(opts.config)
    # data for a program (json, value, csv) alone on standard output, messages on stderr
    ctx = Context(opts, config, stream=sys.stderr if opts.format != "table" else sys.stdout)
    # The record in the system log: the runs that act (a subworker: its host's lines only).
    ctx.rep.record = audit.start(
        PROG, argv, config, subworker=opts.subworker,
        enabled=opts.for_real and opts.command in LOCKING_COMMANDS and not opts.no_syslog)
    if opts.for_real and opts.command in LOCKING_COMMANDS:
        hostlock.prepare()  # an untrusted lock directory stops us before any action
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        if opts.command in options.HOST_COMMANDS:
            from hltcloud.manage import hosts
            return hosts.each_host(ctx, opts.command)
        return _whole_cloud(ctx, opts.command)
    finally:
        hostlock.release_all()


def _usage_or_help(argv):
    if not argv:
        print(options.USAGE, file=sys.stderr)
        return USAGE
    options.parser().print_help()
    return OK


def _whole_cloud(ctx, command):
    from hltcloud.manage import runvms
    from hltcloud.cloud.jsonapi import ApiError
    from hltcloud.cloud.session import CloudError, describe_error
    rep = ctx.rep
    action = _whole_cloud_action(command)
    try:
        status = action(ctx)
    except runvms.RunvmsError as err:  # a missing flavor, image or user data file
        raise ToolError(f"{command}: {err}") from None
    except UsageError:  # a -c COLUMN the command does not have: one line, exit 2
        raise
    except ApiError as err:
        raise CloudError(f"{command}: cloud request failed: {describe_error(err)}") from None
    except (OSError, ValueError, KeyError) as err:  # e.g. an answer without an expected field
        raise ToolError(f"{command}: {type(err).__name__}: {err}", FAILED) from None
    if type(status) is int:  # reconcile: from its outcomes
        return status
    if command == "runvms" or rep.failures:
        return OK if rep.summary() else FAILED
    return OK


if __name__ == "__main__":
    sys.exit(main())
