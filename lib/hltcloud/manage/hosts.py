"""enable and disable over their hosts: one after the other, or through pdsh (--parallel).

One host's failure never stops the others; a bug in one host's action is that host's
failure. Ctrl-C starts no new action and says which host was interrupted and which were not
started. Every host ends with an Outcome (ops/outcomes.py): the summary, the re-run lists
and the exit status come from them; a subworker ends with its host's outcome line.
"""
from hltcloud.cloud import computes
from hltcloud.cloud.jsonapi import ApiError
from hltcloud.hostlist import fold
from hltcloud.manage import enable_disable
from hltcloud.manage import parallel
from hltcloud.manage import takeback
from hltcloud.manage import reconcile_rerun
from hltcloud.ops import rerun
from hltcloud.ops.outcomes import INTERRUPTED as HOST_INTERRUPTED
from hltcloud.ops.outcomes import NOT_STARTED, UNKNOWN_HOST, Outcome, all_ok, gathered, in_order
from hltcloud.cloud.session import CloudError, describe_error
from hltcloud.errors import FAILED, INTERRUPTED, OK, UsageError
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
    outcomes, known, named = [], [], []  # named: the command line's hosts, as Nova names them
    left_out = computes.left_out(opts.exclude, services)  # -x cn02 leaves out cn02.DOMAIN
    for host in opts.hosts:
        try:
            full = computes.match_host(host, services)
        except LookupError as err:
            rep.show_fail(str(err))
            outcomes.append(Outcome(host, UNKNOWN_HOST, str(err)))
            named.append(host)
            continue
        if full not in known and full not in left_out:
            known.append(full)
            named.append(full)
    if not known and not outcomes:
        raise UsageError("no hosts left after --exclude")
    interrupted = False
    try:
        if takeback.wanted(ctx, command):
            failed = takeback.prepare(ctx, services, known)  # Interrupted: see below
            outcomes += failed
            known = [host for host in known if host in ctx.prepared]
        if opts.parallel and not opts.subworker and known:
            parallel.run_through_pdsh(ctx, command, known, outcomes,
                                      prepared=bool(ctx.prepared))
        else:
            one_by_one(ctx, ACTIONS[command], services, known, outcomes)
    except takeback.Interrupted as stop:
        outcomes += stop.outcomes
        interrupted = True
    except KeyboardInterrupt:
        interrupted = True
    if opts.subworker:
        return _subworker_end(ctx, known, in_order(outcomes, named), interrupted)
    if interrupted:
        rep.info("")
        rep.warn("Interrupted: no new action was started")
        outcomes = takeback.left_disabled(ctx, outcomes)
    if opts.parallel and len(known) > 1:
        show_gathered(rep, in_order(outcomes, named))
    ok = rep.summary(outcomes, dry="add --for-real to act" if ctx.dry else None)
    ok = finish_lists(ctx, in_order(outcomes, named)) and ok
    if interrupted:
        return INTERRUPTED
    return OK if ok else FAILED


def show_gathered(rep, outcomes):
    """Each host's result, the hosts of the same result together (clush -b)."""
    rep.info("")
    rep.info("Results:")
    for status, hosts, words in gathered(outcomes):
        rep.info(f"  {status}: {fold(hosts)}" + (f": {words}" if words else ""))


def _subworker_end(ctx, known, outcomes, interrupted):
    """The parent prints the summary: a subworker's last line is its host's outcome
    (after "Done on HOST" when it is ok, for the people reading along)."""
    if all_ok(outcomes) and not interrupted:
        ctx.rep.ok(f"Done on {' '.join(known)}")
    for outcome in outcomes:
        print(outcome.line(), file=ctx.rep.stream, flush=True)
    if interrupted:
        return INTERRUPTED
    return OK if all_ok(outcomes) else FAILED


def finish_lists(ctx, outcomes):
    """--failed-hosts, --ok-hosts and the re-run line (rerun.py) from OUTCOMES, one a host
    of the command line: every host whose outcome is not ok (unknown, failed, interrupted
    or not started) failed. False: a list was not written."""
    opts = ctx.opts
    lists = rerun.HostLists(PROG, opts.argv, opts.host_span, opts, save=not ctx.dry,
                            reroute=reconcile_rerun.route(opts))  # issue 21, item 5
    return lists.finish(ctx.rep, outcomes)


def one_by_one(ctx, action, services, hosts, outcomes):
    """ACTION on each of HOSTS in turn, its outcome added to OUTCOMES; after Ctrl-C, the
    host interrupted and those not started too, and KeyboardInterrupt goes on."""
    rep = ctx.rep
    for index, host in enumerate(hosts):
        try:
            outcomes.append(action(ctx, host, services[host]))
            continue
        except ApiError as err:  # an unexpected API error: this host's failure
            reason = f"{host}: {describe_error(err)}"
        except Exception as err:  # noqa: BLE001 -- a bug must not stop the other hosts
            reason = f"{host}: unexpected error: {type(err).__name__}: {err}"
        except KeyboardInterrupt:
            reason = f"{host}: interrupted (may be partly done)"
            rep.show_fail(reason)
            outcomes.append(Outcome(host, HOST_INTERRUPTED, reason))
            for rest in hosts[index + 1:]:
                reason = f"{rest}: not started (interrupted)"
                rep.show_fail(reason)
                outcomes.append(Outcome(rest, NOT_STARTED, reason))
            raise
        rep.show_fail(reason)
        outcomes.append(Outcome(host).failed(reason))  # what it did is not known
