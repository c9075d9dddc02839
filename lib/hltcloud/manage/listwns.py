"""listwns and vmstats: the worker VMs (configured name prefix) and counts of all VMs."""
import collections
import datetime
import json

from hltcloud.cloud import computes
from hltcloud import listing, table
from hltcloud.hostlist import natural_key
from hltcloud.cloud.capacity import flavor_needs, placement_fits
from hltcloud.printable import printable
from hltcloud.manage.runvms import RunvmsError, find_flavor, params
from hltcloud.manage.status import named_hosts


def _seconds(created, now):
    """Seconds since CREATED (Nova's ISO 8601 time), or None when it is not one."""
    try:
        then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=datetime.timezone.utc)
    return max(0, int((now - then).total_seconds()))


def _age(seconds):
    """SECONDS as the table shows an age: 2d03h, 4h05m, 6m07s."""
    if seconds is None:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


# The records' keys are a stable interface (man page, LISTWNS JSON); age in seconds.
WORKER_COLUMNS = (
    listing.Column("id", "ID"), listing.Column("name", "Name"),
    listing.Column("status", "Status"), listing.Column("hypervisor", "Host"),
    listing.Column("ips", "IP address"), listing.Column("created", "Created"),
    listing.Column("age", "Age", "r", show=_age))
TABLE_KEYS = ("id", "name", "status", "hypervisor", "ips", "age")
# vmstats with -c, -f value or -f csv: one record a host
HOST_COLUMNS = (listing.Column("hypervisor", "Host"), listing.Column("nvms", "VMs", "r"))


def _hosts(ctx, hosts, services):
    """The compute hosts HOSTS and -x name (short names resolved as status does): (wanted,
    left out); wanted is None when HOSTS is empty (every host)."""
    wanted = named_hosts(ctx, hosts, services) if hosts else None
    return wanted, computes.left_out(ctx.opts.exclude, services)


def _selected(ctx, wanted, left_out):
    """Every server, or those on the WANTED hosts; never those on a host -x LEFT_OUT."""
    servers = ctx.nova.servers()
    if wanted is not None:
        wanted = set(wanted)
        servers = [s for s in servers if computes.server_host(s) in wanted]
    return [s for s in servers if computes.server_host(s) not in left_out]


def listwns(ctx, hosts):
    prefix = params(ctx)["name"]
    now = datetime.datetime.now(datetime.timezone.utc)
    # the services only to resolve names: a plain listwns asks Nova one listing
    services = ctx.nova.services(warn=ctx.rep.warn) if hosts or ctx.opts.exclude else {}
    wanted, left_out = _hosts(ctx, hosts, services)
    workers = [s for s in _selected(ctx, wanted, left_out) if s["name"].startswith(prefix)]
    workers.sort(key=lambda s: (natural_key(computes.server_host(s)), natural_key(s["name"])))
    data = [{"id": s["id"], "name": s["name"], "status": s["status"],
             "hypervisor": computes.server_host(s), "ips": computes.server_ips(s),
             "created": s.get("created", ""), "age": _seconds(s.get("created", ""), now)}
            for s in workers]
    ctx.emit(listing.render(ctx.opts.format, listing.chosen(WORKER_COLUMNS, ctx.opts, TABLE_KEYS),
                            data))
    if ctx.opts.format == "table":
        ctx.emit(f"{len(data)} worker VM(s) named {prefix}*")
    return True


def vmstats(ctx, hosts):
    services = ctx.nova.services(warn=ctx.rep.warn)
    wanted, left_out = _hosts(ctx, hosts, services)
    servers = _selected(ctx, wanted, left_out)
    by_status = collections.Counter(s["status"] for s in servers)
    by_host = collections.Counter(computes.server_host(s) or "(none)" for s in servers)
    data = {"total": len(servers), "by_status": dict(sorted(by_status.items())),
            "by_host": {h: by_host[h] for h in sorted(by_host, key=natural_key)}}
    try:
        flavor = find_flavor(ctx.nova, params(ctx)["flavor"])
    except RunvmsError as err:
        ctx.rep.warn(f"capacity not shown: {err}")
        flavor = None
    if flavor is not None:
        usable = [h for h, s in services.items() if computes.usable(s)
                  and (wanted is None or h in wanted) and h not in left_out]
        fits = placement_fits(ctx.cloud, usable, flavor_needs(flavor))
        total = sum(empty for _, empty in fits.values())
        free = sum(now for now, _ in fits.values())
        data["capacity"] = {"flavor": flavor.name, "hypervisors": len(usable),
                            "total": total, "used": total - free, "free": free}
    opts = ctx.opts
    if opts.columns or opts.format in ("value", "csv"):  # one record a host
        ctx.emit(listing.render(opts.format, listing.select(HOST_COLUMNS, opts.columns),
                                [{"hypervisor": h, "nvms": n} for h, n in data["by_host"].items()]))
        return True
    if opts.format == "json":
        ctx.emit(json.dumps(data, indent=1))
        return True
    ctx.emit(table.render(["Status", "VMs"], [[k, v] for k, v in data["by_status"].items()]
                              + [["total", data["total"]]], "lr"))
    ctx.emit(table.render(["Host", "VMs"], [[k, v] for k, v in data["by_host"].items()]
                              + [["total", data["total"]]], "lr"))
    if "capacity" in data:
        cap = data["capacity"]
        # One line: the flavor's name is the cloud's (the configured id may name it).
        ctx.emit(printable(f"Capacity in VMs of flavor {cap['flavor']} on {cap['hypervisors']} "
                           f"enabled, up hypervisor(s): {cap['total']} total, {cap['used']} used, "
                           f"{cap['free']} free"))
    return True
