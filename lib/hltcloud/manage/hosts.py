"""enable and disable over their hosts: one after the other, or through pdsh (--parallel).

One host's failure never stops the others; a bug in one host's action is that host's
failure. Ctrl-C starts no new action and says which host was interrupted and which were not
started. The summary (or, for a subworker, its "Done on" line) ends the run.
"""
from hltcloud.cloud.jsonapi import ApiError
from hltcloud.manage import enable_disable
from hltcloud.manage import parallel
from hltcloud.ops import rerun
from hltcloud.cloud.session import CloudError, describe_error
from hltcloud.errors import FAILED, INTERRUPTED, OK
from hltcloud.manage.options import PROG

ACTIONS = {"enable": enable_disable.enable, "disable": enable_disable.disable}


def each_host(ctx, command):
    """COMMAND on every host of the command line; the run's exit status."""
    opts, rep = ctx.opts, ctx.rep
    try:
        # A subworker has one host: ask for its service only.
        only = opts.hosts[0] if opts.subworker and len(opts.hosts) == 1 else None
        services = ctx.nova.services(only)
    except ApiError as err:
        raise CloudError(f"cannot list the compute services: {describe_error(err)}") from None
    known = []
    for host in opts.hosts:
        if host in services:
            known.append(host)
        else:
            rep.fail(f"{host}: not a compute host known to Nova", host=host)
    interrupted = False
    try:
        if opts.parallel and not opts.subworker and known:
            parallel.run_through_pdsh(ctx, command, known)
        else:
            one_by_one(ctx, ACTIONS[command], services, known)
    except KeyboardInterrupt:
        interrupted = True
    if opts.subworker:
        # The parent prints the summary; our last line tells it this host is done.
        if not rep.failures and not interrupted:
            rep.ok(f"Done on {' '.join(known)}")
            return OK
        return INTERRUPTED if interrupted else FAILED
    if interrupted:
        rep.info("")
        rep.warn("Interrupted: no new action was started")
    ok = rep.summary()
    ok = finish_lists(ctx) and ok
    if interrupted:
        return INTERRUPTED
    return OK if ok else FAILED


def finish_lists(ctx):
    """--failed-hosts, --ok-hosts and the re-run line (rerun.py): every host with a failure
    (unknown, failed, interrupted or not started) failed. False: a list was not written."""
    opts = ctx.opts
    span = (len(opts.argv) - len(opts.host_words), len(opts.argv))
    failed = {host for host, _ in ctx.rep.failures if host}
    return rerun.HostLists(PROG, opts.argv, span, opts).finish(ctx.rep, opts.hosts, failed)


def one_by_one(ctx, action, services, hosts):
    rep = ctx.rep
    for index, host in enumerate(hosts):
        try:
            action(ctx, host, services[host])
        except ApiError as err:  # an unexpected API error: this host's failure
            rep.fail(f"{host}: {describe_error(err)}", host=host)
        except Exception as err:  # noqa: BLE001 -- a bug must not stop the other hosts
            rep.fail(f"{host}: unexpected error: {type(err).__name__}: {err}", host=host)
        except KeyboardInterrupt:
            rep.fail(f"{host}: interrupted (may be partly done)", host=host)
            for rest in hosts[index + 1:]:
                rep.fail(f"{rest}: not started (interrupted)", host=rest)
            raise
