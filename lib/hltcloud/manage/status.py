"""status: one row a hypervisor, from two API requests whatever the cluster size
(the nova-compute services, and with --nvms every server in one paginated listing)."""
import json

from hltcloud.cloud import computes
from hltcloud.ops import hostcache
from hltcloud import table
from hltcloud.hostlist import natural_key


def rows(ctx, hosts):
    """[(host, enabled, alive, [ips] or None)] in natural order; unknown HOSTS are reported."""
    services = ctx.nova.services(warn=ctx.rep.warn)
    hostcache.save(computes.natural(services))  # for tab completion: checked names only
    wanted = hosts or list(services)
    for host in hosts:
        if host not in services:
            ctx.rep.fail(f"{host}: not a compute host known to Nova", host=host)
    known = computes.natural([h for h in wanted if h in services])
    ips = None
    if ctx.opts.nvms:
        ips = {host: [] for host in known}
        for server in ctx.nova.servers():
            host = computes.server_host(server)
            if host in ips:
                ips[host].append(server_ips_or_id(server))
    for host_ips in (ips or {}).values():
        host_ips.sort(key=natural_key)
    return [(h, services[h]["status"] == "enabled", services[h]["state"] == "up",
             ips[h] if ips is not None else None) for h in known]


def server_ips_or_id(server):
    """A VM without an address still counts: show its id instead."""
    return " ".join(computes.server_ips(server)) or server["id"]


def show(ctx, hosts):
    data = rows(ctx, hosts)
    if ctx.opts.json:
        out = []
        for host, enabled, alive, vms in data:
            item = {"hypervisor": host, "enabled": enabled, "alive": alive}
            if vms is not None:
                item.update(nvms=len(vms), vms=vms)
            out.append(item)
        ctx.emit(json.dumps(out, indent=1))
        return True
    headers = ["Hypervisor", "Runs VMs?", "Alive?"]
    align = "lcc"
    if ctx.opts.nvms:
        headers += ["#VMs", "VMs"]
        align += "rl"
    body = []
    for host, enabled, alive, vms in data:
        row = [host, "yes" if enabled else "no", "alive" if alive else "dead"]
        if vms is not None:
            row += [len(vms), " ".join(vms)]
        body.append(row)
    ctx.emit(table.render(headers, body, align))
    return True
