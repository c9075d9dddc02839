"""nova-compute services and the VMs on them, over the plain data nova.py returns (Nova's
JSON: service["status"], server["OS-EXT-SRV-ATTR:host"], ...): pure readings, no request.
"""
from hltcloud.hostlist import natural_key


def server_host(server):
    return server.get("OS-EXT-SRV-ATTR:host") or ""


def server_ips(server):
    """The server's addresses, in the order Nova lists them."""
    ips = []
    for entries in (server.get("addresses") or {}).values():
        ips += [entry.get("addr", "") for entry in entries if entry.get("addr")]
    return ips


def by_host(servers, hosts):
    """{host: [its servers]} for each of HOSTS (every one listed, [] when none), from one
    listing of SERVERS; servers on other hosts left out."""
    found = {host: [] for host in hosts}
    for server in servers:
        if server_host(server) in found:
            found[server_host(server)].append(server)
    return found


def deleting(server):
    """Is Nova deleting SERVER (a DELETE was accepted; the compute has not finished)?"""
    return server.get("OS-EXT-STS:task_state") == "deleting"


def natural(names):
    return sorted(names, key=natural_key)


def forced_down(service):
    return bool(service.get("forced_down", False))


def usable(service):
    """Enabled and up: a hypervisor the scheduler may use."""
    return service["status"] == "enabled" and service["state"] == "up"


def match_host(name, services):
    """The compute host of SERVICES that NAME means: itself, or for a name without a domain
    the one host named NAME.DOMAIN (clush's and nodeset's habit); LookupError saying why not,
    with the candidates."""
    if name in services:
        return name
    if "." not in name:
        found = natural(host for host in services if host.split(".", 1)[0] == name)
        if len(found) == 1:
            return found[0]
        if found:
            raise LookupError(f"{name}: {len(found)} compute hosts have that name: "
                              f"{', '.join(found)} (give the full name)")
    raise LookupError(f"{name}: not a compute host known to Nova")


def match_hosts(names, services):
    """The compute hosts of SERVICES that NAMES mean (match_host), in order, each once, and
    (name, reason) for each name that means none."""
    found, unknown = [], []
    for name in names:
        try:
            host = match_host(name, services)
        except LookupError as err:
            unknown.append((name, str(err)))
            continue
        if host not in found:
            found.append(host)
    return found, unknown


def left_out(names, services):
    """The compute hosts -x NAMES leaves out: a name Nova does not know leaves none out."""
    return set(match_hosts(names, services)[0])
