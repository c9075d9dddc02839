"""reconcile --for-real: each half-way host brought to the state its Nova enabled flag says.

1. VMs stuck deleting are reset (os-resetState to error): Nova ignores a second delete of a
   VM it is deleting, and takes one once the stale task is gone.
2. The disabled hosts go through `disable`, then the enabled ones through `enable`: the very
   per-host actions of those commands (enable_disable.py), one after the other
   (hosts.one_by_one) or, with --parallel, one pdsh subworker a host (parallel.py). The
   disabled host keeps its disabled reason: disable sets it only on a host Nova lists
   enabled, or with --reason.
3. On the enabled hosts whose action went well (or had none), the VMs in ERROR or stuck are
   deleted, once Nova sees the host's compute up (a delete while it is down is a local
   delete that would leave the VM on the node), and waited for up to --vm-timeout.
Unreachable nodes are not acted upon: their hosts fail, saying so. One host's failure never
stops the others; the summary, the lists and the exit status come from the outcomes.
"""
from hltcloud import polling
from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.session import describe_error
from hltcloud.errors import FAILED, INTERRUPTED, OK
from hltcloud.manage import enable_disable
from hltcloud.manage import hosts as per_host
from hltcloud.manage import parallel
from hltcloud.ops import hostlock
from hltcloud.ops.outcomes import NOT_STARTED, Outcome, in_order

WAVES = ("disable", "enable")


def act(ctx, services, plans, unknown=()):
    """Bring the half-way hosts of PLANS to their flag's state: the run's exit status.
    UNKNOWN: the outcomes of the command line's hosts Nova does not know."""
    rep, outcomes = ctx.rep, list(unknown)
    for plan in plans:
        if plan.unreachable:
            reason = f"{plan.host}: node unreachable: not acted upon"
            rep.show_fail(reason)
            outcomes.append(Outcome(plan.host).failed(reason))
        elif plan.consistent:
            outcomes.append(Outcome(plan.host))
    interrupted = False
    try:
        _unstick(ctx, plans)
        for command in WAVES:
            hosts = [plan.host for plan in plans if plan.action == command and not plan.unreachable]
            if hosts and ctx.opts.parallel:
                parallel.run_through_pdsh(ctx, command, hosts, outcomes)
            elif hosts:
                per_host.one_by_one(ctx, per_host.ACTIONS[command], services, hosts, outcomes)
        _clean_vms(ctx, plans, outcomes)
    except KeyboardInterrupt:
        interrupted = True
    return _end(ctx, plans, unknown, outcomes, interrupted)


def _end(ctx, plans, unknown, outcomes, interrupted):
    named = [outcome.host for outcome in unknown] + [plan.host for plan in plans]
    done = {outcome.host for outcome in outcomes}
    outcomes += [Outcome(host, NOT_STARTED, f"{host}: not started (interrupted)")
                 for host in named if host not in done]
    ordered = in_order(outcomes, named)
    if interrupted:
        ctx.rep.info("")
        ctx.rep.warn("Interrupted: no new action was started")
    ok = ctx.rep.summary(ordered)
    ok = per_host.finish_lists(ctx, ordered) and ok
    if interrupted:
        return INTERRUPTED
    return OK if ok else FAILED


def _unstick(ctx, plans):
    """Reset the VMs stuck deleting on the reachable hosts; a refusal is shown (the delete
    that follows then fails, on that host only)."""
    for plan in plans:
        for vm_id in () if plan.unreachable else plan.unstick:
            message = f"Resetting VM {vm_id} stuck deleting on hypervisor {plan.host}"
            try:
                ctx.nova.reset_state(vm_id)
            except ApiError as err:
                if err.code != 404:  # 404: gone meanwhile
                    ctx.rep.show_fail(f"{message}: {describe_error(err)}")
                continue
            ctx.rep.ok(message)


def _clean_vms(ctx, plans, outcomes):
    """Delete the ERROR and stuck VMs of the enabled hosts whose action went well; each
    host's outcome (its action's, if it had one) updated in OUTCOMES."""
    latest = {outcome.host: outcome for outcome in outcomes}
    todo = {}
    for plan in plans:
        if plan.delete and not plan.unreachable and plan.action in (None, "enable"):
            now = latest.get(plan.host) or Outcome(plan.host)
            if now.ok:
                todo[plan.host] = (now, plan.delete)
            else:  # its compute may be down: a delete now would be a local delete
                outcomes.append(now.failed(f"{plan.host}: VMs not deleted (enable failed)"))
    todo = _locked(ctx, todo, outcomes)
    if not todo:
        return
    down = _wait_up(ctx, todo)
    for host in down:
        now, _ = todo.pop(host)
        reason = (f"{host}: nova-compute still down after {ctx.opts.vm_timeout} s: VMs not "
                  f"deleted (a delete now would leave them running on the node)")
        ctx.rep.show_fail(reason)
        outcomes.append(now.failed(reason))
    for host, (now, ids) in todo.items():
        todo[host] = (enable_disable.delete_vms(ctx, now, ids), ids)
    outcomes += _wait_gone(ctx, todo)


def _locked(ctx, todo, outcomes):
    """TODO's hosts whose lock we hold (a subworker's ended with it; one_by_one's is ours)."""
    kept = {}
    for host, (now, ids) in todo.items():
        try:
            hostlock.acquire(ctx.cloud.endpoints["compute"], host)
        except (hostlock.Busy, OSError) as err:
            reason = f"{host}: {err}"
            ctx.rep.show_fail(reason)
            outcomes.append(now.failed(reason))
            continue
        kept[host] = (now, ids)
    return kept


def _wait_up(ctx, todo):
    """The hosts of TODO whose compute Nova still lists down after --vm-timeout."""
    down = set(todo)

    def look():
        try:
            services = ctx.nova.services()
        except ApiError:
            return False  # a passing failure of the API: look again until the timeout
        down.intersection_update(h for h in todo if services.get(h, {}).get("state") != "up")
        return not down
    polling.until(look, ctx.opts.vm_timeout, first=0.1, most=1.0)
    return sorted(down)


def _wait_gone(ctx, todo):
    """Wait up to --vm-timeout for the deleted VMs of TODO to vanish (one listing of every
    server a look): each host's outcome."""
    timeout, left = ctx.opts.vm_timeout, {}
    hosts = " ".join(todo)
    ctx.rep.info(f"Waiting max {timeout} s for the deleted VMs to go on {hosts}")

    def look():
        listed = {server["id"] for server in ctx.nova.servers()}
        left.clear()
        left.update({h: [i for i in ids if i in listed] for h, (_, ids) in todo.items()})
        return not any(left.values())
    try:
        polling.until(look, timeout, first=0.1, most=1.0)
    except ApiError as err:
        reason = f"Waiting for VMs on {hosts}: {describe_error(err)}"
        ctx.rep.show_fail(reason)
        return [now.failed(reason) for now, _ in todo.values()]
    ended = []
    for host, (now, _) in todo.items():
        if left.get(host):
            reason = f"{host}: {len(left[host])} VM(s) still there after {timeout} s: " \
                     f"{' '.join(left[host])}"
            ctx.rep.show_fail(reason)
            now = now.failed(reason)
        else:
            ctx.rep.ok(f"Deleted VMs gone on {host}")
        ended.append(now)
    return ended
