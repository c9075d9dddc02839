"""enable and disable: one host at a time (a --parallel parent runs one subworker a host).

disable keeps Nova's rules: the compute service must run for a delete to reach the
hypervisor (a delete while it is down is a "local delete": the VM vanishes from the API
and keeps running on the node), so the daemons are started before any delete and stopped
only once every VM is gone.

Each action, and each of its steps, returns the host's Outcome (ops/outcomes.py): ok or
failed, the state it has left the host in so far, the reasons (each shown as its [FAIL]
line when it happens). A dry run changes nothing: its outcome keeps the state Nova lists.
"""
import datetime
import getpass
import json
import os
import socket

from hltcloud.cloud import computes
from hltcloud.manage import daemons
from hltcloud.manage.countdown import countdown
from hltcloud.ops import hostlock
from hltcloud.ops.outcomes import HostState, Outcome
from hltcloud.cloud.session import describe_error
from hltcloud.cloud.jsonapi import ApiError

TOOL = "openstack-hlt-manage"


def enable(ctx, host, service):
    """Enable HOST (its nova-compute SERVICE): its Outcome."""
    now = _lock(ctx, starting_point(host, service))
    if not now.ok:
        return now  # another run has the host: not even a connection to it
    with daemons.connection(ctx, host):  # its handshake overlaps the first requests
        return _enable(ctx, service, now)


def _enable(ctx, service, now):
    now = _set_status(ctx, now, service, enable=True)
    if now.ok:
        now = daemons.start_or_stop(ctx, now, "start")
    if now.ok and computes.forced_down(service):  # only now that its daemons run is it really up
        now = _set_forced_down(ctx, now, service, down=False)
    return now


def disable(ctx, host, service):
    """Disable HOST (its nova-compute SERVICE): its Outcome."""
    now = _lock(ctx, starting_point(host, service))
    if not now.ok:
        return now
    with daemons.connection(ctx, host):
        return _disable(ctx, service, now)


def lock_and_disable(ctx, host, service):
    """takeback.py's first phase for HOST: locked (for the whole run) and disabled in Nova."""
    now = _lock(ctx, starting_point(host, service))
    if now.ok and _disabling_needed(ctx, service):
        now = _set_status(ctx, now, service, enable=False, reason=disable_reason(ctx.opts.reason))
    return now


def _disabling_needed(ctx, service):
    """A host Nova lists disabled keeps who disabled it and why, unless --reason says anew."""
    return service.get("status") != "disabled" or bool(ctx.opts.reason)


def _disable(ctx, service, now):
    host = now.host
    prepared = host in ctx.prepared  # disabled, and its VMs' deletes sent, by takeback.py
    if prepared:
        now = now if ctx.dry else now.then(nova="disabled")
    elif _disabling_needed(ctx, service):
        now = _set_status(ctx, now, service, enable=False, reason=disable_reason(ctx.opts.reason))
    if now.ok:
        now = daemons.start_or_stop(ctx, now, "start")
    if not now.ok:
        return now  # deletes now would be local deletes: leave the VMs alone
    try:
        vms = ctx.nova.servers(host)
    except ApiError as err:
        return _failed(ctx, now, f"Listing VMs on {host}: {describe_error(err)}")
    now = now.then(vms_left=len(vms))
    timeout = ctx.opts.vm_timeout
    if vms and computes.forced_down(service):
        # A delete reaches the node only through a compute Nova sees up.
        now = _set_forced_down(ctx, now, service, down=False)
    if now.ok and vms and not ctx.dry and service["state"] != "up":
        now = _wait_compute_up(ctx, now, timeout)
    if not now.ok:
        return now
    # Not again what takeback.py has just sent: one DELETE a VM (a later run sends it again).
    now = delete_vms(ctx, now, [vm["id"] for vm in vms
                                if not (prepared and computes.deleting(vm))])
    if ctx.dry:
        ctx.rep.dry(f"Waiting max {timeout} s for VMs to be deleted on {host}")
        return _shut_down(ctx, now, service)
    return _after_deletes(ctx, now, service, timeout) if vms else _shut_down(ctx, now, service)


def _after_deletes(ctx, now, service, timeout):
    """Wait for the VMs to go, then shut the host down; at the timeout, leave its daemons
    running (unless --force-shutoff) so that the deletes can still finish."""
    host = now.host
    left = _wait_gone(ctx, host, timeout)
    if isinstance(left, str):
        return now.failed(left)  # the API failed while waiting; already shown
    now = now.then(vms_left=len(left))
    if not left:
        return _shut_down(ctx, now, service)
    ids = " ".join(vm["id"] for vm in left)
    now = _failed(ctx, now, f"{host}: {len(left)} VM(s) still there after {timeout} s: {ids}")
    if ctx.opts.force_shutoff:
        ctx.rep.warn(f"--force-shutoff: shutting down the daemons on {host} all the same")
        return _shut_down(ctx, now, service)
    # Running daemons are alive: no forced down, the deletes can still finish.
    ctx.rep.warn(f"Daemons left running on {host} so that the deletes can finish "
                 f"(--force-shutoff stops them anyway)")
    return now


def _shut_down(ctx, now, service):
    """Stop the daemons, then tell Nova the host is down (only once they are stopped).
    NOW may have failed already (a delete, a VM left): a step failed when it adds a reason."""
    stopped = daemons.start_or_stop(ctx, now, "stop")
    if stopped.reason != now.reason:
        return stopped
    return _set_forced_down(ctx, stopped, service, down=True)


def starting_point(host, service):
    """HOST's outcome before its action: ok, in the state Nova lists its SERVICE in."""
    status = service.get("status")
    return Outcome(host, state=HostState(
        nova=status if status in ("enabled", "disabled") else None,
        forced_down=computes.forced_down(service)))


def _failed(ctx, now, reason):
    """NOW failed for REASON, shown as a [FAIL] line."""
    ctx.rep.show_fail(reason)
    return now.failed(reason)


def _set_status(ctx, now, service, enable, reason=""):
    """Enable or disable the service in Nova: the outcome after it."""
    message = f"{'Enabling' if enable else 'Disabling'} hypervisor {now.host}"
    body = {"status": "enabled"} if enable else {"status": "disabled", "disabled_reason": reason}
    now = _change_service(ctx, now, service, message, body)
    return now.then(nova="enabled" if enable else "disabled") if now.ok and not ctx.dry else now


def _set_forced_down(ctx, now, service, down):
    """Mark the service forced down (its daemons are stopped: Nova sees it dead at once,
    without waiting for service_down_time) or clear the mark (they run again): the outcome
    after it."""
    message = (f"Forcing hypervisor {now.host} down in Nova" if down else
               f"Clearing the forced down state of hypervisor {now.host}")
    now = _change_service(ctx, now, service, message, {"forced_down": down})
    return now.then(forced_down=down) if now.ok and not ctx.dry else now


def _change_service(ctx, now, service, message, body):
    if ctx.dry:
        ctx.rep.dry(f"{message}: PUT /os-services/{service['id']} {json.dumps(body)}")
        return now
    try:
        ctx.nova.update_service(service["id"], body)
    except ApiError as err:  # this host's failure, one line
        return _failed(ctx, now, f"{message}: {describe_error(err)}")
    ctx.rep.ok(message)
    return now


def _lock(ctx, now):
    if ctx.dry:
        return now  # a dry run changes nothing: it may run beside a real one
    if ctx.opts.subworker and now.host in ctx.prepared:
        return now  # the --parallel parent holds the host's lock for the whole run
    try:
        hostlock.acquire(ctx.cloud.endpoints["compute"], now.host)
    except hostlock.Busy as err:
        return _failed(ctx, now, f"{now.host}: {err}")
    except OSError as err:
        return _failed(ctx, now, f"{now.host}: cannot take the host lock: {err}")
    return now


def delete_vms(ctx, now, ids):
    """Ask Nova to delete the VMs IDS on NOW's host: NOW, failed for each delete Nova
    refused (the others go on). A dry run only shows them."""
    host = now.host
    for vm_id in ids:
        message = f"Deleting VM {vm_id} on hypervisor {host}"
        if ctx.dry:
            ctx.rep.dry(f"{message}: DELETE /servers/{vm_id}")
            continue
        try:
            ctx.nova.delete_server(vm_id)
        except ApiError as err:
            if err.code != 404:  # 404: gone already, what we wanted
                now = _failed(ctx, now, f"{message}: {describe_error(err)}")
                continue
        ctx.rep.ok(message)
    return now


def _wait_gone(ctx, host, timeout):
    """Wait for the host's VMs to vanish: [] when gone, the remaining VMs at the timeout, or
    the reason (shown) when the API failed meanwhile."""
    remaining = []

    def look():
        remaining[:] = ctx.nova.servers(host)
        if not remaining:
            return True, "all gone in {elapsed}!"
        return False, f"{len(remaining)} running"

    try:
        countdown(ctx.rep, f"Waiting max {timeout} s for VMs to be deleted on {host}", timeout, look)
    except ApiError as err:
        reason = f"Waiting for VMs on {host}: {describe_error(err)}"
        ctx.rep.show_fail(reason)
        return reason
    return remaining


def _wait_compute_up(ctx, now, timeout):
    """After starting the daemons of a host whose compute was down: wait until Nova sees it
    up; NOW failed when it does not."""
    host = now.host

    def look():
        service = ctx.nova.services(host).get(host)
        if service and service["state"] == "up":
            return True, "up in {elapsed}!"
        return False, "down"

    try:
        up, _ = countdown(ctx.rep, f"Waiting max {timeout} s for nova-compute on {host} to report up",
                           timeout, look)
    except ApiError as err:
        return _failed(ctx, now, f"Waiting for nova-compute on {host}: {describe_error(err)}")
    if not up:
        return _failed(ctx, now, f"{host}: nova-compute still down after {timeout} s: VMs not "
                                 f"deleted (a delete now would leave them running on the node)")
    return now


def disable_reason(text=None):
    """Who, when, and why (TEXT, --reason) or with what: Nova keeps it with the disabled
    service."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    now = datetime.datetime.now(datetime.timezone.utc)
    if text:
        return f"{user}@{socket.gethostname()} {now.strftime('%Y-%m-%dT%H:%MZ')}: {text}"
    return f"disabled by {user}@{socket.gethostname()} at {now.strftime('%Y-%m-%dT%H:%M:%SZ')} with {TOOL}"
