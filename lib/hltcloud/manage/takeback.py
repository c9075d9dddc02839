"""disable over many hosts at once (--parallel, --drain): first the phases that need the
cloud only, across every host, then each host's own steps (enable_disable.disable).

1. Each host is locked and disabled in Nova: from now on no new VM lands there.
2. --drain SECONDS: wait, one listing of every VM a look, until the hosts' VMs have ended on
   their own (grid jobs end; elastiq removes idle VMs) or the deadline, the same for every
   host, counted from the start.
3. Every VM left on a host whose compute Nova sees up (and not forced down) is asked to go.
   A delete through a compute that is down would be a local delete (the VM vanishes from
   the API and runs on): those hosts' VMs are left to their own steps, which start the
   daemons first.

Each host's own steps then only wait for their VMs and shut the node down, so a farm waits
for its deletes once, side by side, not in rounds of the fanout; a host whose phase failed
has its outcome already and gets no steps. Ctrl-C in the phases leaves the hosts disabled
so far disabled, with their VMs, and says so.
"""
from hltcloud.cloud import computes
from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.session import describe_error
from hltcloud.manage import enable_disable
from hltcloud.manage.countdown import countdown
from hltcloud.ops.outcomes import INTERRUPTED, NOT_STARTED, HostState, Outcome

DRAIN_LINE_EVERY = 30.0  # off a TTY: the drain's line this often


class Interrupted(Exception):
    """Ctrl-C in the phases: .outcomes has every host's (disabled so far or not started)."""

    def __init__(self, outcomes):
        super().__init__("interrupted")
        self.outcomes = outcomes


def wanted(ctx, command):
    """Does this run go through the phases? A parent's disable, over many hosts at once
    (--parallel) or with a drain."""
    opts = ctx.opts
    return (command == "disable" and not opts.subworker
            and (opts.parallel or opts.drain is not None))


def prepare(ctx, services, hosts):
    """The phases for HOSTS: the outcomes of the hosts that failed in them (those get no
    steps of their own), the others added to ctx.prepared. Raises Interrupted on Ctrl-C."""
    done, failed = [], []
    try:
        for host in hosts:
            now = enable_disable.lock_and_disable(ctx, host, services[host])
            (done if now.ok else failed).append(now)
        ready = [now.host for now in done]
        ctx.prepared.update(ready)
        if ctx.opts.drain is not None and ready:
            _drain(ctx, ready)
        if not ctx.dry:
            _send_deletes(ctx, services, ready)
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(ctx, hosts, done, failed)) from None
    return failed


def _interrupted(ctx, hosts, done, failed):
    """Every host's outcome after Ctrl-C in the phases, said once."""
    reached = {now.host for now in done + failed}
    left = [now.host for now in done]
    if left and not ctx.dry:
        ctx.rep.info("")
        ctx.rep.warn(f"Interrupted: {', '.join(left)} left disabled in Nova, with the VMs "
                     f"still there (disable again finishes the take-back; enable gives "
                     f"them back)")
    outcomes = failed + [Outcome(now.host, INTERRUPTED, f"{now.host}: interrupted before "
                                                        f"its VMs were deleted", now.state)
                         for now in done]
    return outcomes + [Outcome(host, NOT_STARTED, f"{host}: not started (interrupted)")
                       for host in hosts if host not in reached]


def left_disabled(ctx, outcomes):
    """After Ctrl-C in the hosts' own steps: a prepared host whose steps never started was
    disabled all the same; its outcome says so, and one line names them all."""
    if ctx.dry:
        return outcomes
    untouched = [o.host for o in outcomes if o.status == NOT_STARTED and o.host in ctx.prepared]
    if untouched:
        ctx.rep.warn(f"{', '.join(untouched)}: left disabled in Nova, VMs not waited for "
                     f"(disable again finishes the take-back; enable gives them back)")
    return [Outcome(o.host, INTERRUPTED, f"{o.host}: interrupted before its own steps",
                    HostState(nova="disabled")) if o.host in untouched else o
            for o in outcomes]


def _on_hosts(ctx, hosts):
    """Every VM on HOSTS, by host: one listing of all the cloud's VMs."""
    return computes.by_host(ctx.nova.servers(), hosts)


def _drain(ctx, hosts):
    """Wait until the VMs of HOSTS have gone on their own, or --drain's deadline."""
    seconds = ctx.opts.drain
    if ctx.dry:
        count = sum(len(vms) for vms in _on_hosts(ctx, hosts).values())
        ctx.rep.dry(f"Draining {len(hosts)} host(s): waiting max {seconds} s for their "
                    f"{count} VM(s) to end on their own, then deleting what remains")
        return

    def look():
        left = {host: vms for host, vms in _on_hosts(ctx, hosts).items() if vms}
        if not left:
            return True, "all gone in {elapsed}!"
        return False, f"{sum(map(len, left.values()))} VM(s) left on {len(left)} host(s)"

    prefix = f"Draining {len(hosts)} host(s), max {seconds} s"
    try:
        countdown(ctx.rep, prefix, seconds, look, line_every=DRAIN_LINE_EVERY,
                  on_change=False, at_timeout="deleting them")
    except ApiError as err:  # the deletes that follow say what is left
        ctx.rep.warn(f"Draining: {describe_error(err)}: going on with the deletes")


def _send_deletes(ctx, services, hosts):
    """Ask Nova to delete every VM still on HOSTS whose compute is up: all at once, so the
    computes delete side by side. A refusal is only a warning: the host's own steps ask
    again, and fail there if it is refused again."""
    through = [host for host in hosts if services[host].get("state") == "up"
               and not computes.forced_down(services[host])]
    if not through:
        return
    for host, vms in _on_hosts(ctx, through).items():
        for vm in vms:
            if computes.deleting(vm):
                continue
            try:
                ctx.nova.delete_server(vm["id"])
            except ApiError as err:
                if err.code != 404:
                    ctx.rep.warn(f"Deleting VM {vm['id']} on hypervisor {host}: "
                                 f"{describe_error(err)} (its host's own steps try again)")
                continue
            ctx.rep.ok(f"Deleting VM {vm['id']} on hypervisor {host}")
