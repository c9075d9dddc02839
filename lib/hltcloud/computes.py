"""nova-compute services and the VMs on them, in a constant number of API requests."""
import json

from .cloud import describe_error

from .hostlist import natural_key

BINARY = "nova-compute"


def services_by_host(nova, only=None):
    """{host: service} for every nova-compute service (or only host ONLY): one request."""
    return {s.host: s for s in nova.services.list(host=only, binary=BINARY)}


def servers(nova, host=None):
    """Every server of every project (on HOST only, when given); follows Nova's pages."""
    opts = {"all_tenants": 1}
    if host:
        opts["host"] = host
    return list(nova.servers.list(detailed=True, search_opts=opts, limit=-1))


def server_host(server):
    return getattr(server, "OS-EXT-SRV-ATTR:host", None) or ""


def server_ips(server):
    """The server's addresses, in the order Nova lists them."""
    ips = []
    for entries in (getattr(server, "addresses", None) or {}).values():
        ips += [entry.get("addr", "") for entry in entries if entry.get("addr")]
    return ips


def natural(names):
    return sorted(names, key=natural_key)


def set_status(ctx, host, service, enable, reason=""):
    """Enable or disable HOST's nova-compute service; True when done (or shown, in dry-run)."""
    message = f"{'Enabling' if enable else 'Disabling'} hypervisor {host}"
    body = {"status": "enabled"} if enable else {"status": "disabled", "disabled_reason": reason}
    if ctx.dry:
        ctx.rep.dry(f"{message}: PUT /os-services/{service.id} {json.dumps(body)}")
        return True
    try:
        if enable:
            ctx.nova.services.enable(service.id)
        else:
            ctx.nova.services.disable_log_reason(service.id, reason)
    except API_ERRORS as err:  # this host's failure, one line
        ctx.rep.fail(f"{message}: {describe_error(err)}", host=host)
        return False
    ctx.rep.ok(message)
    return True


def set_forced_down(ctx, host, service, down):
    """Mark HOST's nova-compute forced down (its daemons are stopped: Nova sees it dead at
    once, without waiting for service_down_time) or clear the mark (they run again)."""
    message = (f"Forcing hypervisor {host} down in Nova" if down else
               f"Clearing the forced down state of hypervisor {host}")
    if ctx.dry:
        ctx.rep.dry(f"{message}: PUT /os-services/{service.id} {json.dumps({'forced_down': down})}")
        return True
    try:
        ctx.nova.services.force_down(service.id, down)
    except API_ERRORS as err:
        ctx.rep.fail(f"{message}: {describe_error(err)}", host=host)
        return False
    ctx.rep.ok(message)
    return True


def forced_down(service):
    return bool(getattr(service, "forced_down", False))


def _api_errors():
    from keystoneauth1 import exceptions as ks_exc
    from novaclient import exceptions as nova_exc
    return (nova_exc.ClientException, ks_exc.ClientException), nova_exc.NotFound


API_ERRORS, NOT_FOUND = _api_errors()
