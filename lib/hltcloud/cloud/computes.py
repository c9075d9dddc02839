"""nova-compute services and the VMs on them, in a constant number of API requests.

Services and servers are read and changed as Nova's JSON (dicts: service["id"],
server["status"], ...) with the very requests python-novaclient sends (cloud.nova_request),
without building objects that are only read once.
"""
import contextlib
import gc
import json
import sys
import urllib.parse

from hltcloud.cloud.session import describe_error
from hltcloud.cloud.jsonapi import ApiError

from hltcloud.hostlist import HostListError, check_host, natural_key

BINARY = "nova-compute"


def services_by_host(cloud, only=None, warn=None):
    """{host: service} for every nova-compute service (or only host ONLY): one request.

    A host name is checked where it enters, by the command line's rule (hostlist.check_host):
    a service whose host fails it is left out, with WARN(one line naming it) when given. Any
    node can register a service under any name, and these names reach ssh, pdsh and the
    completion cache (hostcache.py)."""
    query = urllib.parse.urlencode(([("host", only)] if only else []) + [("binary", BINARY)])
    services = {}
    for service in cloud.nova_get(f"/os-services?{query}")["services"]:
        try:
            services[check_host(service.get("host"))] = service
        except HostListError as err:
            if warn:
                warn(f"left out a compute service that Nova lists: {err}")
    return services


def servers(cloud, host=None):
    """Every server of every project (on HOST only, when given), as novaclient's
    servers.list(limit=-1) reads them: Nova's pages (1,000 servers by default) one after
    the other, the next one from the last id of the previous, until an empty page."""
    query = [("all_tenants", 1)] + ([("host", host)] if host else [])
    found, marker = [], None
    with _cycle_collector_paused():
        while True:
            items = sorted(query + ([("marker", marker)] if marker else []), key=lambda x: x[0])
            page = cloud.nova_get(f"/servers/detail?{urllib.parse.urlencode(items)}")["servers"]
            if not page:
                return found
            found += page
            marker = page[-1]["id"]


@contextlib.contextmanager
def _cycle_collector_paused():
    """Decoded JSON holds no reference cycles, yet each page of servers brings tens of
    thousands of new objects that make the cycle collector walk all the pages kept so far
    again and again (0.2-0.4 s of CPU at 10,000 servers, measured): pause it meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    if ctx.dry:
        ctx.rep.dry(f"{message}: PUT /os-services/{service['id']} {json.dumps(body)}")
        return True
    try:
        ctx.cloud.nova_request("PUT", f"/os-services/{service['id']}", body)
    except ApiError as err:  # this host's failure, one line
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
        ctx.rep.dry(f"{message}: PUT /os-services/{service['id']} {json.dumps({'forced_down': down})}")
        return True
    try:
        ctx.cloud.nova_request("PUT", f"/os-services/{service['id']}", {"forced_down": down})
    except ApiError as err:
        ctx.rep.fail(f"{message}: {describe_error(err)}", host=host)
        return False
    ctx.rep.ok(message)
    return True


def forced_down(service):
    return bool(service.get("forced_down", False))


def usable(service):
    """Enabled and up: a hypervisor the scheduler may use."""
    return service["status"] == "enabled" and service["state"] == "up"


def _api_errors():
    """Every API error a call can raise: ours (jsonapi), and novaclient's and keystoneauth1's
    once they are loaded (runvms and listwns use novaclient). Not loaded, they cannot have
    raised anything: a subworker or a status run never imports them for an except clause,
    which evaluates its exception types only when an exception reaches it."""
    errors = [ApiError]
    if "keystoneauth1" in sys.modules:
        from keystoneauth1 import exceptions as ks_exc
        errors.append(ks_exc.ClientException)
    if "novaclient" in sys.modules:
        from novaclient import exceptions as nova_exc
        errors.append(nova_exc.ClientException)
    return tuple(errors)


def __getattr__(name):
    """computes.API_ERRORS: any API error (see _api_errors); computes.NOT_FOUND:
    novaclient's NotFound (only novaclient's calls raise it)."""
    if name == "API_ERRORS":
        return _api_errors()
    if name == "NOT_FOUND":
        from novaclient import exceptions as nova_exc
        return nova_exc.NotFound
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
