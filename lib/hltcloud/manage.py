"""openstack-hlt-manage: enable, disable, status, runvms, listwns, vmstats.

Exit status: 0 all good, 1 some host (or action) failed, 2 bad usage or input (nothing
done), 3 cloud unreachable or authentication failed (nothing done), 130 interrupted.
"""
import signal
import sys

from . import computes, enable_disable, hostlock, hosts_status, listwns, manage_cli, parallel, runvms
from .cloud import CloudError, describe_error
from .config import ConfigError, load
from .manage_ctx import Context
from .runner import UsageError
from .validate import BadValue

USAGE = manage_cli.USAGE
PROG = "openstack-hlt-manage"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CLOUD, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
LOCKING_COMMANDS = ("enable", "disable", "runvms")  # take locks when run --for-real


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt  # a --parallel parent stops its subworkers with SIGTERM


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv in ([], ["-h"], ["--help"]):
        _parse_or_help(argv)
    try:
        opts = manage_cli.parse(argv)
        config = load(opts.config)
        ctx = Context(opts, config, stream=sys.stderr if opts.json else sys.stdout)
        if opts.for_real and opts.command in LOCKING_COMMANDS:
            hostlock.prepare()  # an untrusted lock directory stops us before any action
    except (UsageError, ConfigError, BadValue, hostlock.LockDirError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return _dispatch(ctx)
    except CloudError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_CLOUD
    finally:
        hostlock.release_all()


def _parse_or_help(argv):
    if not argv:
        print(USAGE, file=sys.stderr)
        sys.exit(EXIT_USAGE)
    manage_cli._parser().print_help()
    sys.exit(EXIT_OK)


def _dispatch(ctx):
    opts, rep = ctx.opts, ctx.rep
    command = opts.command
    if command in manage_cli.HOST_COMMANDS:
        return _per_host(ctx, command)
    try:
        if command == "status":
            hosts_status.show(ctx, opts.hosts)
        elif command == "listwns":
            listwns.listwns(ctx, opts.hosts)
        elif command == "vmstats":
            listwns.vmstats(ctx, opts.hosts)
        else:
            runvms.run(ctx)
            return EXIT_OK if rep.summary() else EXIT_FAILED
    except runvms.RunvmsError as err:  # a missing flavor, image or user data file
        print(f"{PROG}: {command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except computes.API_ERRORS as err:
        print(f"{PROG}: {command}: cloud request failed: {describe_error(err)}", file=sys.stderr)
        return EXIT_CLOUD
    except (OSError, ValueError, KeyError) as err:  # e.g. an answer without an expected field
        print(f"{PROG}: {command}: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if rep.failures:
        rep.summary()
        return EXIT_FAILED
    return EXIT_OK


def _per_host(ctx, command):
    opts, rep = ctx.opts, ctx.rep
    try:
        # A subworker has one host: ask for its service only.
        only = opts.hosts[0] if opts.subworker and len(opts.hosts) == 1 else None
        services = computes.services_by_host(ctx.nova, only)
    except computes.API_ERRORS as err:
        print(f"{PROG}: cannot list the compute services: {describe_error(err)}", file=sys.stderr)
        return EXIT_CLOUD
    known = []
    for host in opts.hosts:
        if host in services:
            known.append(host)
        else:
            rep.fail(f"{host}: not a compute host known to Nova", host=host)
    action = enable_disable.enable if command == "enable" else enable_disable.disable
    interrupted = False
    try:
        if opts.parallel and not opts.subworker and known:
            parallel.run(ctx, command, known)
        else:
            _sequential(ctx, action, services, known)
    except KeyboardInterrupt:
        interrupted = True
    if opts.subworker:
        # The parent prints the summary; our last line tells it this host is done.
        if not rep.failures and not interrupted:
            rep.ok(f"Done on {' '.join(known)}")
            return EXIT_OK
        return EXIT_INTERRUPTED if interrupted else EXIT_FAILED
    if interrupted:
        rep.info("")
        rep.warn("Interrupted: no new action was started")
    ok = rep.summary()
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if ok else EXIT_FAILED


def _sequential(ctx, action, services, hosts):
    rep = ctx.rep
    for index, host in enumerate(hosts):
        try:
            action(ctx, host, services[host])
        except computes.API_ERRORS as err:  # an unexpected API error: this host's failure
            rep.fail(f"{host}: {describe_error(err)}", host=host)
        except Exception as err:  # noqa: BLE001 -- a bug must not stop the other hosts
            rep.fail(f"{host}: unexpected error: {type(err).__name__}: {err}", host=host)
        except KeyboardInterrupt:
            rep.fail(f"{host}: interrupted (may be partly done)", host=host)
            for rest in hosts[index + 1:]:
                rep.fail(f"{rest}: not started (interrupted)", host=rest)
            raise


if __name__ == "__main__":
    sys.exit(main())
