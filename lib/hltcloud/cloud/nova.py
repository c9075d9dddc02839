"""Nova: the one module that sends requests to Nova, one method a request the tools make.

The requests are the ones python-novaclient sends at microversion 2.60 (its reference for
their shapes), over jsonapi.JsonApi (http.client) with the session's token, through the
environment's proxy when one is set. The answers are plain data: Nova's own JSON for the
services and the servers (dicts, read once: a listing of 10,000 servers is not worth
turning into objects), a Flavor, a dict of limits. Every failure is a jsonapi.ApiError (its
code: the HTTP status, or None when Nova could not be asked).
"""
import base64
import contextlib
import gc
import urllib.parse
from dataclasses import dataclass

from hltcloud.cloud.jsonapi import ApiError, JsonApi, proxy_for
from hltcloud.cloud.session import CONNECT_TIMEOUT, CloudError
from hltcloud.hostlist import HostListError, check_host

MICROVERSION = "2.60"  # >= 2.53 (service ids, hypervisors with servers), >= 2.37 (nics)
BINARY = "nova-compute"


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int  # MB
    disk: int  # GB
    ephemeral: int = 0  # GB
    swap: int = 0  # MB

    @classmethod
    def from_nova(cls, item):
        swap = item.get("swap")  # "" for none, below microversion 2.75
        return cls(str(item["id"]), str(item.get("name", "")), item["vcpus"], item["ram"],
                   item["disk"], item.get("OS-FLV-EXT-DATA:ephemeral") or 0,
                   swap if isinstance(swap, int) else 0)


class Nova:
    """Nova's requests for one cloud (session.Cloud: its endpoints, token, TLS settings)."""

    def __init__(self, cloud):
        self._cloud = cloud
        self._api = None

    def _request(self, method, path, body=None):
        if self._api is None:
            self._api = self._open()
        return self._api.request(method, path, body)

    def _open(self):
        cloud = self._cloud
        endpoint = cloud.endpoints.get("compute")
        if not endpoint:
            raise CloudError("no compute endpoint in the service catalog")
        version = {"OpenStack-API-Version": f"compute {MICROVERSION}",
                   "X-OpenStack-Nova-API-Version": MICROVERSION}
        return JsonApi("compute", endpoint, cloud.current_token, version, verify=cloud.verify,
                       cert=cloud.cert, connect_timeout=CONNECT_TIMEOUT,
                       read_timeout=cloud.read_timeout, proxy=proxy_for(endpoint))

    def services(self, host=None, warn=None):
        """{host: service} for every nova-compute service (or only HOST's): one request.

        A host name is checked where it enters, by the command line's rule
        (hostlist.check_host): a service whose host fails it is left out, with WARN(one line
        naming it) when given. Any node can register a service under any name, and these
        names reach ssh, pdsh and the completion cache (hostcache.py)."""
        query = urllib.parse.urlencode(([("host", host)] if host else []) + [("binary", BINARY)])
        services = {}
        for service in self._request("GET", f"/os-services?{query}")["services"]:
            try:
                services[check_host(service.get("host"))] = service
            except HostListError as err:
                if warn:
                    warn(f"left out a compute service that Nova lists: {err}")
        return services

    def update_service(self, service_id, changes):
        """PUT CHANGES (status, disabled_reason, forced_down) on the service SERVICE_ID."""
        self._request("PUT", f"/os-services/{service_id}", changes)

    def servers(self, host=None, all_projects=True, detailed=True):
        """The servers of every project (ALL_PROJECTS) or of ours, on HOST only when given,
        with their details (DETAILED): every page."""
        query = ([("all_tenants", 1)] if all_projects else []) + ([("host", host)] if host else [])
        return self._listing("/servers/detail" if detailed else "/servers", "servers", query)

    def create_servers(self, name, image_id, flavor_id, count, networks, key_name=None,
                       user_data=None):
        """Boot COUNT servers in one request (min_count = max_count: all or none).
        NETWORKS: "auto", "none" or a network id; USER_DATA: text, sent base64-encoded."""
        server = {"name": name, "imageRef": image_id, "flavorRef": flavor_id}
        if user_data:
            server["user_data"] = base64.b64encode(user_data.encode()).decode()
        if key_name:
            server["key_name"] = key_name
        server.update(min_count=count, max_count=count,
                      networks=networks if networks in ("auto", "none") else [{"uuid": networks}])
        self._request("POST", "/servers", {"server": server})

    def delete_server(self, server_id):
        """DELETE the server (ApiError with code 404: it is gone already)."""
        self._request("DELETE", f"/servers/{server_id}")

    def reset_state(self, server_id, state="error"):
        """Set the server's vm_state to STATE ("error" or "active") and clear its task (the
        admin action os-resetState): what makes Nova take a delete of a VM stuck deleting."""
        self._request("POST", f"/servers/{server_id}/action", {"os-resetState": {"state": state}})

    def flavors(self):
        """Every flavor, public or not (as novaclient's flavors.list(is_public=None))."""
        found = self._listing("/flavors/detail", "flavors", [("is_public", "None")])
        return [Flavor.from_nova(item) for item in found]

    def absolute_limits(self):
        """{name: value} of the project's absolute limits (maxTotalCores, totalCoresUsed...)."""
        return dict(self._request("GET", "/limits")["limits"]["absolute"])

    def _listing(self, path, key, query):
        """Every item of a listing: Nova's pages (1,000 items by default) one after the
        other, each from the last id of the previous, while Nova links a next page."""
        found, markers = [], set()
        with _cycle_collector_paused():
            while True:
                items = sorted(query + ([("marker", found[-1]["id"])] if found else []),
                               key=lambda item: item[0])
                answer = self._request("GET", f"{path}?{urllib.parse.urlencode(items)}"
                                       if items else path)
                page = answer[key]
                found += page
                if not page or not _links_next(answer.get(f"{key}_links")):
                    return found
                if page[-1]["id"] in markers:
                    raise ApiError(f"Nova's pages of {path} do not advance (marker "
                                   f"{page[-1]['id']!r} again)")
                markers.add(page[-1]["id"])


def _links_next(links):
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("rel") == "next" for link in links)


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
