"""enable and disable: one host at a time (a --parallel parent runs one subworker a host).

disable keeps Nova's rules: the compute service must run for a delete to reach the
hypervisor (a delete while it is down is a "local delete": the VM vanishes from the API
and keeps running on the node), so the daemons are started before any delete and stopped
only once every VM is gone.
"""
import datetime
import getpass
import os
import socket
import time

from hltcloud.cloud import computes
from hltcloud.manage import daemons
from hltcloud.ops import hostlock
from hltcloud.cloud.session import describe_error
from hltcloud.cloud.jsonapi import ApiError

TOOL = "openstack-hlt-manage"
# Seconds between two looks at the host's VMs (or its compute service): FIRST_POLL after the
# first look, then 1.5 times longer each time up to POLL. A delete the cloud finishes within a
# second is seen within about a tenth of a second of it; a long wait costs one request a second.
FIRST_POLL = 0.1
POLL = 1.0
LINE_EVERY = 10.0  # off a TTY: a progress line when the count changes or this often


def enable(ctx, host, service):
    if not _lock(ctx, host):
        return False  # another run has the host: not even a connection to it
    with daemons.connection(ctx, host):  # its handshake overlaps the first requests
        return _enable(ctx, host, service)


def _enable(ctx, host, service):
    if not computes.set_status(ctx, host, service, enable=True):
        return False
    if not daemons.start_or_stop(ctx, host, "start"):
        return False
    if computes.forced_down(service):  # only now that its daemons run is it really up
        return computes.set_forced_down(ctx, host, service, down=False)
    return True


def disable(ctx, host, service):
    if not _lock(ctx, host):
        return False
    with daemons.connection(ctx, host):
        return _disable(ctx, host, service)


def _disable(ctx, host, service):
    if not computes.set_status(ctx, host, service, enable=False, reason=disable_reason()):
        return False
    if not daemons.start_or_stop(ctx, host, "start"):
        return False  # deletes now would be local deletes: leave the VMs alone
    try:
        vms = ctx.nova.servers(host)
    except ApiError as err:
        ctx.rep.fail(f"Listing VMs on {host}: {describe_error(err)}", host=host)
        return False
    timeout = ctx.opts.vm_timeout
    if vms and computes.forced_down(service):
        # A delete reaches the node only through a compute Nova sees up.
        if not computes.set_forced_down(ctx, host, service, down=False):
            return False
    if vms and not ctx.dry and service["state"] != "up":
        if not _wait_compute_up(ctx, host, timeout):
            return False
    all_sent = _delete(ctx, host, vms)
    if ctx.dry:
        ctx.rep.dry(f"Waiting max {timeout} s for VMs to be deleted on {host}")
        return _shut_down(ctx, host, service)
    left = _wait_gone(ctx, host, timeout) if vms else []
    if left is None:
        return False  # the API failed while waiting; already reported
    if left:
        ids = " ".join(vm["id"] for vm in left)
        ctx.rep.fail(f"{host}: {len(left)} VM(s) still there after {timeout} s: {ids}", host=host)
        if ctx.opts.force_shutoff:
            ctx.rep.warn(f"--force-shutoff: shutting down the daemons on {host} all the same")
            _shut_down(ctx, host, service)
        else:
            # Running daemons are alive: no forced down, the deletes can still finish.
            ctx.rep.warn(f"Daemons left running on {host} so that the deletes can finish "
                         f"(--force-shutoff stops them anyway)")
        return False
    return _shut_down(ctx, host, service) and all_sent


def _shut_down(ctx, host, service):
    """Stop the daemons, then tell Nova the host is down (only once they are stopped)."""
    return (daemons.start_or_stop(ctx, host, "stop")
            and computes.set_forced_down(ctx, host, service, down=True))


def _lock(ctx, host):
    if ctx.dry:
        return True  # a dry run changes nothing: it may run beside a real one
    try:
        hostlock.acquire(ctx.cloud.endpoints["compute"], host)
    except hostlock.Busy as err:
        ctx.rep.fail(f"{host}: {err}", host=host)
        return False
    except OSError as err:
        ctx.rep.fail(f"{host}: cannot take the host lock: {err}", host=host)
        return False
    return True


def _delete(ctx, host, vms):
    ok = True
    for vm in vms:
        message = f"Deleting VM {vm['id']} on hypervisor {host}"
        if ctx.dry:
            ctx.rep.dry(f"{message}: DELETE /servers/{vm['id']}")
            continue
        try:
            ctx.nova.delete_server(vm["id"])
        except ApiError as err:
            if err.code != 404:  # 404: gone already, what we wanted
                ctx.rep.fail(f"{message}: {describe_error(err)}", host=host)
                ok = False
                continue
        ctx.rep.ok(message)
    return ok


def _countdown(ctx, prefix, timeout, look):
    """Poll LOOK() -> (done, text) until done or TIMEOUT; returns (done, elapsed seconds)."""
    progress = ctx.rep.progress(prefix)
    start = time.monotonic()
    last_text, last_line = None, 0.0
    interval = FIRST_POLL
    while True:
        done, text = look()
        elapsed = time.monotonic() - start
        if done:
            progress.done(text.format(elapsed=f"{elapsed:.0f}s"))
            return True, elapsed
        left = max(0, timeout - elapsed)
        if left <= 0:
            progress.done(f"{text} after {timeout} s: timeout!")
            return False, elapsed
        now = time.monotonic()
        if progress.in_place or text != last_text or now - last_line >= LINE_EVERY:
            progress.update(f"{text} ({left:.0f} s left)")
            last_text, last_line = text, now
        time.sleep(min(interval, left))
        interval = min(POLL, interval * 1.5)


def _wait_gone(ctx, host, timeout):
    """Wait for the host's VMs to vanish: [] when gone, the remaining VMs at the timeout."""
    remaining = []

    def look():
        remaining[:] = ctx.nova.servers(host)
        if not remaining:
            return True, "all gone in {elapsed}!"
        return False, f"{len(remaining)} running"

    try:
        _countdown(ctx, f"Waiting max {timeout} s for VMs to be deleted on {host}", timeout, look)
    except ApiError as err:
        ctx.rep.fail(f"Waiting for VMs on {host}: {describe_error(err)}", host=host)
        return None
    return remaining


def _wait_compute_up(ctx, host, timeout):
    """After starting the daemons of a host whose compute was down: wait until Nova sees it up."""
    def look():
        service = ctx.nova.services(host).get(host)
        if service and service["state"] == "up":
            return True, "up in {elapsed}!"
        return False, "down"

    try:
        up, _ = _countdown(ctx, f"Waiting max {timeout} s for nova-compute on {host} to report up",
                           timeout, look)
    except ApiError as err:
        ctx.rep.fail(f"Waiting for nova-compute on {host}: {describe_error(err)}", host=host)
        return False
    if not up:
        ctx.rep.fail(f"{host}: nova-compute still down after {timeout} s: VMs not deleted "
                     f"(a delete now would leave them running on the node)", host=host)
    return up


def disable_reason():
    """Who, when, with what: Nova keeps it with the disabled service."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"disabled by {user}@{socket.gethostname()} at {when} with {TOOL}"
