"""runvms: fill the enabled, up hypervisors with worker VMs, in one boot request.

A real Nova schedules a multi-create request all-or-nothing (ask one VM more than fits and
all of them end in ERROR), so the count is computed first: Placement inventories and
usages of the usable hosts, capped by the project's remaining quota and --count. If the
request fails anyway (the cloud changed meanwhile), the ERROR VMs of this run are deleted
and the request is tried once more with a fresh count. No VM is left in ERROR.
"""
import json
import time
from dataclasses import dataclass

from . import computes, fit, hostlock
from .cloud import describe_error
from .inputs import InputError, read_small_text

POLL = 1.0
PARAMS = ("flavor", "image", "key_name", "user_data", "name")
# Nova takes at most 65535 bytes of base64-encoded user data: 3 bytes become 4.
USER_DATA_MAX = 65535 // 4 * 3


class RunvmsError(Exception):
    """Something runvms needs is missing or unusable (flavor, image, user data): bad input,
    exit 2, found before anything is requested that changes the cloud."""


def params(ctx):
    """The configured runvms defaults, each overridden by its switch."""
    values = dict(ctx.config.runvms)
    for key in PARAMS:
        override = getattr(ctx.opts, key, None)
        if override is not None:
            values[key] = override
    return values


def find_flavor(nova, name):
    for flavor in nova.flavors.list(is_public=None):
        if name in (flavor.name, flavor.id):
            return flavor
    raise RunvmsError(f"flavor not found: {name}")


def find_image(cloud, name):
    glance = cloud.glance()
    found = glance.get("/v2/images", params={"name": name}).json().get("images", [])
    if not found:
        found = [i for i in glance.get("/v2/images").json().get("images", []) if i.get("id") == name]
    if not found:
        raise RunvmsError(f"image not found: {name}")
    if len(found) > 1:
        raise RunvmsError(f"several images are named {name}: use its id")
    return found[0]["id"]


def read_user_data(path):
    if not path:
        return None
    try:
        return read_small_text(path, USER_DATA_MAX, "the user data file")
    except InputError as err:
        raise RunvmsError(str(err)) from None


def placement_fits(cloud, hosts, needs):
    """{host: (fits now, fits when empty)} for HOSTS, from their resource providers."""
    placement = cloud.placement()
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
    return fits


def usable_hosts(nova):
    return computes.natural([h for h, s in computes.services_by_host(nova).items()
                             if s.status == "enabled" and s.state == "up"])


def flavor_needs(flavor):
    return fit.flavor_needs(flavor.vcpus, flavor.ram, flavor.disk,
                            getattr(flavor, "OS-FLV-EXT-DATA:ephemeral", 0) or 0,
                            flavor.swap if isinstance(flavor.swap, int) else 0)


def quota_room(nova, flavor):
    absolute = {limit.name: limit.value for limit in nova.limits.get().absolute}
    return fit.quota_fit(absolute, flavor.vcpus, flavor.ram)


def compute_count(ctx, flavor):
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


def fill(ctx):
    """Boot what fits; RunvmsError (bad input) before any request that changes the cloud."""
    rep = ctx.rep
    values = params(ctx)
    user_data = read_user_data(values.get("user_data", ""))  # local: before any request
    flavor = find_flavor(ctx.nova, values["flavor"])
    image_id = find_image(ctx.cloud, values["image"])
    if not ctx.dry:
        try:
            hostlock.acquire(ctx.cloud.endpoints["compute"], "runvms")
        except hostlock.Busy as err:
            rep.fail(f"runvms: {err}")
            return False
    requested = active = attempts = 0
    for attempt in (1, 2):
        count, why = compute_count(ctx, flavor)
        rep.info(f"Booting {count} VM(s): {why}")
        if count == 0:
            if attempt == 1:
                rep.ok("Nothing to boot: the cluster is full (or the quota is used up)")
            else:
                rep.warn("Nothing fits any more: no second request")
            break
        request = {"name": values["name"], "imageRef": image_id, "flavorRef": flavor.id,
                   "key_name": values.get("key_name") or None, "min_count": count,
                   "max_count": count, "networks": network(values)}
        if ctx.dry:
            rep.dry(f"Booting {count} VM(s) named {values['name']}: POST /servers "
                    f"{json.dumps(request)}" + (" (with user data)" if user_data else ""))
            return True
        outcome = _boot_and_wait(ctx, values, flavor, image_id, user_data, count)
        requested, active, attempts = requested + count, active + outcome.active, attempt
        if outcome.ok:
            break
        if not outcome.retry:
            rep.fail(f"runvms: {outcome.reason}")
            break
        if attempt == 1:
            rep.warn(f"{outcome.reason}: the cloud changed meanwhile; "
                     f"trying once more with a fresh count")
        else:
            rep.fail(f"runvms: {outcome.reason} (second attempt)")
    if attempts > 1:
        rep.info(f"Requested {requested} VM(s) in all, {active} ACTIVE")
    return not rep.failures


def network(values):
    """`nics` of the boot request: the runvms.network key ("auto", "none" or a network id)."""
    return values.get("network") or "auto"


def _our_servers(nova, prefix):
    return {s.id: s for s in nova.servers.list(detailed=True, limit=-1)
            if s.name.startswith(prefix)}


@dataclass
class Outcome:
    ok: bool
    active: int = 0
    reason: str = ""
    retry: bool = False  # a failed request (refused, or VMs in ERROR) is worth a second one


def _boot_and_wait(ctx, values, flavor, image_id, user_data, count):
    """Boot COUNT VMs in one request and wait for them; ERROR VMs of the run are deleted."""
    rep, nova = ctx.rep, ctx.nova
    before = set(_our_servers(nova, values["name"]))
    nics = network(values)
    try:
        nova.servers.create(values["name"], image_id, flavor, userdata=user_data,
                            key_name=values.get("key_name") or None, min_count=count,
                            max_count=count, nics=nics if nics in ("auto", "none") else [{"net-id": nics}])
    except computes.API_ERRORS as err:
        return Outcome(False, 0, f"boot request for {count} VM(s) refused: {describe_error(err)}",
                       retry=True)
    mine = _wait_settled(ctx, values["name"], before, count)
    active = [s for s in mine.values() if s.status == "ACTIVE"]
    errors = [s for s in mine.values() if s.status == "ERROR"]
    rep.info(f"Requested {count} VM(s), {len(active)} ACTIVE")
    if len(active) == count:
        rep.ok(f"Booted {count} VM(s) named {values['name']}")
        return Outcome(True, count)
    if errors:
        fault = (getattr(errors[0], "fault", None) or {}).get("message", "no fault message")
        _delete_errors(ctx, errors)
        return Outcome(False, len(active), f"{len(errors)} of {count} VM(s) in ERROR ({fault})",
                       retry=True)
    # Still building: they may yet become ACTIVE, so no second request on top of them.
    slow = sorted(s.id for s in mine.values() if s.status != "ACTIVE")
    return Outcome(False, len(active), f"{len(slow)} of {count} VM(s) not ACTIVE after "
                                       f"{ctx.opts.vm_timeout} s: {' '.join(slow)}")


def _wait_settled(ctx, prefix, before, count):
    """Wait until this run's VMs are all ACTIVE or ERROR (or --vm-timeout); returns them."""
    deadline = time.monotonic() + ctx.opts.vm_timeout
    while True:
        mine = {i: s for i, s in _our_servers(ctx.nova, prefix).items() if i not in before}
        settled = all(s.status in ("ACTIVE", "ERROR") for s in mine.values())
        if (settled and len(mine) >= count) or time.monotonic() >= deadline:
            return mine
        time.sleep(POLL)


def _delete_errors(ctx, errors):
    for vm in errors:
        try:
            ctx.nova.servers.delete(vm.id)
            ctx.rep.ok(f"Deleting VM {vm.id} (ERROR) of this run")
        except computes.NOT_FOUND:
            pass
        except computes.API_ERRORS as err:
            ctx.rep.fail(f"Deleting VM {vm.id} (ERROR): {describe_error(err)}")
    deadline = time.monotonic() + ctx.opts.vm_timeout
    ids = {vm.id for vm in errors}
    while time.monotonic() < deadline:
        if not ids & {s.id for s in ctx.nova.servers.list(detailed=False, limit=-1)}:
            return
        time.sleep(POLL)
    ctx.rep.fail(f"VMs in ERROR still there after {ctx.opts.vm_timeout} s: {' '.join(sorted(ids))}")
