"""How many VMs of a flavor the cloud has room for: Placement's inventories and usages of
the enabled, up hypervisors, and the project's quota (the arithmetic itself is fit.py)."""
from hltcloud.cloud import computes
from hltcloud.manage import fit


def usable_hosts(nova):
    """Enabled and up hypervisors, in natural order: the ones the scheduler may use."""
    return computes.natural([h for h, s in nova.services().items() if computes.usable(s)])


def flavor_needs(flavor):
    return fit.flavor_needs(flavor.vcpus, flavor.ram, flavor.disk, flavor.ephemeral, flavor.swap)


def placement_fits(cloud, hosts, needs):
    """{host: (fits now, fits when empty)} for HOSTS, from their resource providers."""
    from keystoneauth1 import exceptions as ks_exc
    from hltcloud.cloud.jsonapi import ApiError
    from hltcloud.cloud.session import describe_error
    placement = cloud.placement()
    try:
        providers = placement.get("/resource_providers").json()["resource_providers"]
        by_name = {p["name"]: p["uuid"] for p in providers}
        fits = {}
        for host in hosts:
            uuid = by_name.get(host)
            if not uuid:
                fits[host] = (0, 0)
                continue
            inventories = placement.get(f"/resource_providers/{uuid}/inventories").json()["inventories"]
            usages = placement.get(f"/resource_providers/{uuid}/usages").json()["usages"]
            fits[host] = (fit.fit_on_host(inventories, usages, needs),
                          fit.fit_empty_host(inventories, needs))
    except ks_exc.ClientException as err:  # one error type for the callers (placement.py next)
        raise ApiError(describe_error(err), getattr(err, "http_status", None)) from None
    return fits


def quota_room(nova, flavor):
    return fit.quota_fit(nova.absolute_limits(), flavor.vcpus, flavor.ram)


def room_for(ctx, flavor):
    """(count to boot, one line explaining it)."""
    hosts = usable_hosts(ctx.nova)
    fits = placement_fits(ctx.cloud, hosts, flavor_needs(flavor))
    room = sum(now for now, _ in fits.values())
    quota = quota_room(ctx.nova, flavor)
    count = fit.how_many([now for now, _ in fits.values()], quota, ctx.opts.count)
    why = (f"room for {room} VM(s) of flavor {flavor.name} on {len(hosts)} enabled, up "
           f"hypervisor(s); quota allows {'any number' if quota is None else quota}")
    if ctx.opts.count:
        why += f"; --count {ctx.opts.count}"
    return count, why
