"""reconcile [HOSTS]: what Nova says of each compute host against what its node says, the
hosts left half-way named, and (--for-real) each brought to the state its Nova enabled flag
says, with enable's and disable's own steps (reconcile_act.py).

Two API requests whatever the number of hosts (the compute services, every server in one
listing), one ssh session a node (daemon_probe.py), then the pure comparison
(reconcile_plan.py). The table (or -f json|value|csv, -c) comes first; a dry run then ends
with its usual line and exits 1 when some host is half-way (or unreachable, or unknown), 0
when every host is consistent.

The records' keys are a stable interface (man page, RECONCILE JSON): host, enabled,
forced_down, reachable, daemons ({service: running|stopped|unknown}), nvms, consistent,
found and would_do (lists of lines).
"""
import time

from hltcloud import listing
from hltcloud.cloud import computes
from hltcloud.errors import FAILED, OK
from hltcloud.manage import daemon_probe
from hltcloud.manage import reconcile_plan
from hltcloud.ops.outcomes import UNKNOWN_HOST, Outcome

COLUMNS = (
    listing.Column("host", "Host"),
    listing.Column("enabled", "Enabled", "c"),
    listing.Column("forced_down", "Forced down", "c"),
    listing.Column("reachable", "Reachable", "c"),
    listing.Column("daemons", "Daemons", show=lambda daemons: " ".join(
        f"{name}={state}" for name, state in (daemons or {}).items())),
    listing.Column("nvms", "#VMs", "r"),
    listing.Column("consistent", "Consistent", "c"),
    listing.Column("found", "Found", show=lambda lines: "; ".join(lines) or "consistent"),
    listing.Column("would_do", "Would do", show=lambda lines: "; ".join(lines) or "nothing"),
)
SHOWN = {"host", "found", "would_do"}


def chosen_hosts(ctx, services):
    """(hosts, unknown): the compute hosts to look at, natural order: the command line's
    (short names resolved as enable and disable do) or every one Nova lists, less -x; and
    the outcomes of the command line's names Nova does not know (each shown)."""
    opts = ctx.opts
    wanted, unknown = computes.match_hosts(opts.hosts, services)
    for _, reason in unknown:
        ctx.rep.show_fail(reason)
    left_out = computes.left_out(opts.exclude, services)
    pool = wanted if opts.hosts else services
    return (computes.natural({host for host in pool if host not in left_out}),
            [Outcome(name, UNKNOWN_HOST, reason) for name, reason in unknown])


def plans(ctx, services, hosts):
    """Each host's Plan: Nova's view (services, one listing of every server) and its node's."""
    on_host = computes.by_host(ctx.nova.servers(), hosts)
    nodes = daemon_probe.probe(ctx, hosts)
    now = time.time()
    return [reconcile_plan.plan(host, services[host], on_host[host], nodes[host],
                                ctx.opts.vm_timeout, now) for host in hosts], on_host, nodes


def record(plan, service, servers, node, configured):
    """One host's row (the JSON keys); CONFIGURED: the site's service names."""
    daemons = dict(node.daemons) if not node.unreachable else dict.fromkeys(
        configured, reconcile_plan.UNKNOWN)
    return {"host": plan.host, "enabled": service.get("status") == "enabled",
            "forced_down": computes.forced_down(service), "reachable": not node.unreachable,
            "daemons": daemons, "nvms": len(servers), "consistent": plan.consistent,
            "found": list(plan.found), "would_do": list(plan.would_do)}


def run(ctx):
    """The command: its exit status."""
    columns = listing.chosen(COLUMNS, ctx.opts, SHOWN)  # a bad -c: exit 2 before any look
    services = ctx.nova.services(warn=ctx.rep.warn)
    hosts, unknown = chosen_hosts(ctx, services)
    found, on_host, nodes = plans(ctx, services, hosts)
    ctx.emit(listing.render(ctx.opts.format, columns, [
        record(plan, services[plan.host], on_host[plan.host], nodes[plan.host],
               ctx.config.services)
        for plan in found]))
    if ctx.dry:
        ok = ctx.rep.summary(unknown, dry="add --for-real to act")
        return OK if ok and all(plan.consistent for plan in found) else FAILED
    from hltcloud.manage import reconcile_act
    return reconcile_act.act(ctx, services, found, unknown)
