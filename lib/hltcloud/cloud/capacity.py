"""How many VMs of a flavor the cloud has room for: Placement's figures for the enabled, up
hypervisors (placement.py), and the project's quota (the arithmetic itself is fit.py)."""
from hltcloud.cloud import computes
from hltcloud.cloud.placement import Placement, as_inventories
from hltcloud.manage import fit


def usable_hosts(nova):
    """Enabled and up hypervisors, in natural order: the ones the scheduler may use."""
    return computes.natural([h for h, s in nova.services().items() if computes.usable(s)])


def flavor_needs(flavor):
    return fit.flavor_needs(flavor.vcpus, flavor.ram, flavor.disk, flavor.ephemeral, flavor.swap)


def placement_fits(cloud, hosts, needs, when_empty=True):
    """{host: (fits now, fits when empty)} for HOSTS, from their resource providers (fits
    when empty: None unless WHEN_EMPTY). Two requests, and with WHEN_EMPTY, where nothing
    fits on some host now, one more a class of the flavor at most (placement.capacities)."""
    if not needs:  # a flavor of nothing: fit.fit_on_host counts none
        return {host: (0, 0 if when_empty else None) for host in hosts}
    placement = Placement(cloud)
    by_name = placement.providers()
    room = placement.room(needs)
    full = [by_name[h] for h in hosts if h in by_name and by_name[h] not in room]
    # DISK_GB, MEMORY_MB, VCPU: a grid farm fills the CPUs first, the disks last
    by_class = dict(sorted(needs.items()))
    inventories = placement.capacities(full, by_class) if when_empty and full else {}
    fits = {}
    for host in hosts:
        uuid = by_name.get(host)
        if uuid in room:
            now, empty = _fits_in(room[uuid], needs)
        else:  # no provider, or nothing fits there now
            now, empty = 0, fit.fit_empty_host(inventories[uuid], needs) if uuid in inventories else 0
        fits[host] = (now, empty if when_empty else None)
    return fits


def _fits_in(resources, needs):
    """(fits now, fits when empty) on a provider from its allocation candidate's summary:
    {class: {"capacity": (total - reserved) * allocation_ratio, "used": amount}}."""
    capacities = as_inventories(resources)
    used = {rc: r["used"] for rc, r in resources.items()}
    return fit.fit_on_host(capacities, used, needs), fit.fit_empty_host(capacities, needs)


def quota_room(nova, flavor):
    return fit.quota_fit(nova.absolute_limits(), flavor.vcpus, flavor.ram)


def room_for(ctx, flavor):
    """(count to boot, one line explaining it)."""
    hosts = usable_hosts(ctx.nova)
    fits = placement_fits(ctx.cloud, hosts, flavor_needs(flavor), when_empty=False)
    room = sum(now for now, _ in fits.values())
    quota = quota_room(ctx.nova, flavor)
    count = fit.how_many([now for now, _ in fits.values()], quota, ctx.opts.count)
    why = (f"room for {room} VM(s) of flavor {flavor.name} on {len(hosts)} enabled, up "
           f"hypervisor(s); quota allows {'any number' if quota is None else quota}")
    if ctx.opts.count:
        why += f"; --count {ctx.opts.count}"
    return count, why
