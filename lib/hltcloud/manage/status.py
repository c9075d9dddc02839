"""status: one record a hypervisor, from two API requests whatever the cluster size (the
nova-compute services, and every server in one paginated listing when its VMs are shown).

The record's keys are a stable interface (man page, STATUS JSON): hypervisor, enabled,
alive, forced_down, disabled_reason, updated_at (when Nova last heard of or changed the
service, ISO 8601 as Nova gives it), nvms, vms (addresses, or the id of a VM without one).
`-f json` carries every key whatever the other switches; the table shows Hypervisor, Runs
VMs?, Alive?, with --nvms #VMs and VMs, with --long Forced down, Reason, Since and #VMs.
"""
from hltcloud import listing
from hltcloud.cloud import computes
from hltcloud.hostlist import natural_key
from hltcloud.ops import hostcache

COLUMNS = {column.key: column for column in (
    listing.Column("hypervisor", "Hypervisor"),
    listing.Column("enabled", "Runs VMs?", "c"),
    listing.Column("alive", "Alive?", "c", show=lambda up: "alive" if up else "dead"),
    listing.Column("forced_down", "Forced down", "c"),
    listing.Column("disabled_reason", "Reason"),
    listing.Column("updated_at", "Since"),
    listing.Column("nvms", "#VMs", "r"),
    listing.Column("vms", "VMs"),
)}


def columns(opts):
    """The columns to print: -c's, every one for JSON, else as --nvms and --long ask."""
    keys = {"hypervisor", "enabled", "alive"}
    if opts.long:
        keys |= {"forced_down", "disabled_reason", "updated_at", "nvms"}
    if opts.nvms:
        keys |= {"nvms", "vms"}
    return listing.chosen(COLUMNS.values(), opts, keys)


def records(ctx, hosts, with_vms):
    """One record a known host of HOSTS (every compute host when none), in natural order;
    the unknown ones reported. WITH_VMS: count and list their VMs (one more listing)."""
    services = ctx.nova.services(warn=ctx.rep.warn)
    hostcache.save(computes.natural(services))  # for tab completion: checked names only
    wanted = named_hosts(ctx, hosts, services)
    left_out = computes.left_out(ctx.opts.exclude, services)
    known = computes.natural({h for h in (wanted if hosts else services) if h not in left_out})
    vms = {host: [] for host in known}
    if with_vms:
        vms = {host: [server_ips_or_id(server) for server in on_it]
               for host, on_it in computes.by_host(ctx.nova.servers(), known).items()}
    found = []
    for host in known:
        service = services[host]
        found.append({"hypervisor": host, "enabled": service.get("status") == "enabled",
                      "alive": service.get("state") == "up",
                      "forced_down": computes.forced_down(service),
                      "disabled_reason": _text(service.get("disabled_reason")),
                      "updated_at": _text(service.get("updated_at")),
                      "nvms": len(vms[host]) if with_vms else None,
                      "vms": sorted(vms[host], key=natural_key) if with_vms else None})
    return found


def named_hosts(ctx, hosts, services):
    """The compute hosts HOSTS name (a short name: the one NAME.DOMAIN), each unknown name
    reported as a failure (exit 1)."""
    found, unknown = computes.match_hosts(hosts, services)
    for name, reason in unknown:
        ctx.rep.fail(reason, host=name)
    return found


def server_ips_or_id(server):
    """A VM without an address still counts: show its id instead."""
    return " ".join(computes.server_ips(server)) or server["id"]


def _text(value):
    return value if isinstance(value, str) else None


def show(ctx, hosts):
    chosen = columns(ctx.opts)
    with_vms = any(column.key in ("nvms", "vms") for column in chosen)
    ctx.emit(listing.render(ctx.opts.format, chosen, records(ctx, hosts, with_vms)))
    return True
