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

from hltcloud.cloud import capacity
from hltcloud.ops import hostlock
from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.session import describe_error
from hltcloud.errors import ToolError
from hltcloud.filetrust import UntrustedFile
from hltcloud.inputs import InputError, read_small_text

POLL = 1.0
PARAMS = ("flavor", "image", "key_name", "user_data", "name")
# Nova takes at most 65535 bytes of base64-encoded user data: 3 bytes become 4.
USER_DATA_MAX = 65535 // 4 * 3


class RunvmsError(ToolError):
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
    """The flavor (nova.Flavor) named, or with the id, NAME."""
    for flavor in nova.flavors():
        if name in (flavor.name, flavor.id):
            return flavor
    raise RunvmsError(f"flavor not found: {name}")


def find_image(cloud, ref):
    """The id of the one active image named (or with the id) REF: glance_image's lookup,
    which follows Glance's pages and reports its errors. (Imported here: its image check
    loads oslo.utils, about 0.06 s that listwns and vmstats, importing this module, never
    need.)"""
    from hltcloud.cloud import glance
    try:
        return glance.find_image(cloud.glance(), ref)["id"]
    except glance.AmbiguousImage:
        raise RunvmsError(f"several images are named {ref}: use its id") from None
    except glance.ImageNotFound:
        raise RunvmsError(f"image not found: {ref}") from None
    except glance.ImageError as err:
        raise RunvmsError(str(err)) from None


def read_user_data(path):
    if not path:
        return None
    try:  # every VM runs it as root: nobody else may control it
        return read_small_text(path, USER_DATA_MAX, "the user data file", trusted=True)
    except (InputError, UntrustedFile) as err:
        raise RunvmsError(str(err)) from None


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
        count, why = capacity.room_for(ctx, flavor)
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
    """Our project's servers named PREFIX..., by id."""
    return {s["id"]: s for s in nova.servers(all_projects=False) if s["name"].startswith(prefix)}


@dataclass
class BootOutcome:
    ok: bool
    active: int = 0
    reason: str = ""
    retry: bool = False  # a failed request (refused, or VMs in ERROR) is worth a second one


def _boot_and_wait(ctx, values, flavor, image_id, user_data, count):
    """Boot COUNT VMs in one request and wait for them; ERROR VMs of the run are deleted."""
    rep, nova = ctx.rep, ctx.nova
    before = set(_our_servers(nova, values["name"]))
    try:
        nova.create_servers(values["name"], image_id, flavor.id, count, network(values),
                            key_name=values.get("key_name") or None, user_data=user_data)
    except ApiError as err:
        return BootOutcome(False, 0, f"boot request for {count} VM(s) refused: {describe_error(err)}",
                       retry=True)
    mine = _wait_settled(ctx, values["name"], before, count)
    active = [s for s in mine.values() if s["status"] == "ACTIVE"]
    errors = [s for s in mine.values() if s["status"] == "ERROR"]
    rep.info(f"Requested {count} VM(s), {len(active)} ACTIVE")
    if len(active) == count:
        rep.ok(f"Booted {count} VM(s) named {values['name']}")
        return BootOutcome(True, count)
    if errors:
        fault = (errors[0].get("fault") or {}).get("message", "no fault message")
        _delete_errors(ctx, errors)
        return BootOutcome(False, len(active), f"{len(errors)} of {count} VM(s) in ERROR ({fault})",
                       retry=True)
    # Still building: they may yet become ACTIVE, so no second request on top of them.
    slow = sorted(s["id"] for s in mine.values() if s["status"] != "ACTIVE")
    return BootOutcome(False, len(active), f"{len(slow)} of {count} VM(s) not ACTIVE after "
                                       f"{ctx.opts.vm_timeout} s: {' '.join(slow)}")


def _wait_settled(ctx, prefix, before, count):
    """Wait until this run's VMs are all ACTIVE or ERROR (or --vm-timeout); returns them."""
    deadline = time.monotonic() + ctx.opts.vm_timeout
    while True:
        mine = {i: s for i, s in _our_servers(ctx.nova, prefix).items() if i not in before}
        settled = all(s["status"] in ("ACTIVE", "ERROR") for s in mine.values())
        if (settled and len(mine) >= count) or time.monotonic() >= deadline:
            return mine
        time.sleep(POLL)


def _delete_errors(ctx, errors):
    for vm in errors:
        try:
            ctx.nova.delete_server(vm["id"])
            ctx.rep.ok(f"Deleting VM {vm['id']} (ERROR) of this run")
        except ApiError as err:
            if err.code != 404:  # 404: gone already
                ctx.rep.fail(f"Deleting VM {vm['id']} (ERROR): {describe_error(err)}")
    deadline = time.monotonic() + ctx.opts.vm_timeout
    ids = {vm["id"] for vm in errors}
    while time.monotonic() < deadline:
        if not ids & {s["id"] for s in ctx.nova.servers(all_projects=False, detailed=False)}:
            return
        time.sleep(POLL)
    ctx.rep.fail(f"VMs in ERROR still there after {ctx.opts.vm_timeout} s: {' '.join(sorted(ids))}")
