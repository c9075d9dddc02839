"""nova-compute services and the VMs on them, over the plain data nova.py returns (Nova's
JSON: service["status"], server["OS-EXT-SRV-ATTR:host"], ...), and the two changes of a
service as enable and disable report them (the request itself: nova.Nova.update_service).
"""
import json

from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.session import describe_error
from hltcloud.hostlist import natural_key


def server_host(server):
    return server.get("OS-EXT-SRV-ATTR:host") or ""


def server_ips(server):
    """The server's addresses, in the order Nova lists them."""
    ips = []
    for entries in (server.get("addresses") or {}).values():
        ips += [entry.get("addr", "") for entry in entries if entry.get("addr")]
    return ips


def natural(names):
    return sorted(names, key=natural_key)


def set_status(ctx, host, service, enable, reason=""):
    """Enable or disable HOST's nova-compute service; True when done (or shown, in dry-run)."""
    message = f"{'Enabling' if enable else 'Disabling'} hypervisor {host}"
    body = {"status": "enabled"} if enable else {"status": "disabled", "disabled_reason": reason}
    return _change(ctx, host, service, message, body)


def set_forced_down(ctx, host, service, down):
    """Mark HOST's nova-compute forced down (its daemons are stopped: Nova sees it dead at
    once, without waiting for service_down_time) or clear the mark (they run again)."""
    message = (f"Forcing hypervisor {host} down in Nova" if down else
               f"Clearing the forced down state of hypervisor {host}")
    return _change(ctx, host, service, message, {"forced_down": down})


def _change(ctx, host, service, message, body):
    if ctx.dry:
        ctx.rep.dry(f"{message}: PUT /os-services/{service['id']} {json.dumps(body)}")
        return True
    try:
        ctx.nova.update_service(service["id"], body)
    except ApiError as err:  # this host's failure, one line
        ctx.rep.fail(f"{message}: {describe_error(err)}", host=host)
        return False
    ctx.rep.ok(message)
    return True


def forced_down(service):
    return bool(service.get("forced_down", False))


def usable(service):
    """Enabled and up: a hypervisor the scheduler may use."""
    return service["status"] == "enabled" and service["state"] == "up"
