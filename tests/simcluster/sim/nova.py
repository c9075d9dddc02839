"""Nova v2.1 (microversions 2.1..2.104, as Nova 34): services, hypervisors, servers, flavors, keypairs,
limits, quota sets (servers: nova_servers.py). Views follow the Nova API reference per
microversion."""
import base64
import hashlib
import re
import time
from urllib.parse import urlencode

from .base import Service, int_arg, parse_microversion, vtext
from .http import Response
from .model import ADMIN_USER_ID, DEFAULT_QUOTA, HEAD_HOST, KEYPAIRS, ApiError, now_iso
from .nova_servers import MAX_LIMIT, ServersMixin, iso_micro

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 104)
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
               405: "badMethod", 406: "notAcceptable", 409: "conflictingRequest"}
HEAD_BINARIES = ("nova-conductor", "nova-scheduler")
UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def strict_bool(req, name):
    """oslo strutils.bool_from_string(strict=True), as Nova parses with_servers."""
    value = req.arg(name, "false").strip().lower()
    if value in ("1", "t", "true", "on", "y", "yes"):
        return True
    if value in ("0", "f", "false", "off", "n", "no"):
        return False
    raise ApiError(400, f"Invalid input for query parameters {name}. Value: {value}.")


def fingerprint(public_key):
    raw = base64.b64decode(public_key.split()[1] + "==")
    digest = hashlib.md5(raw).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class Nova(ServersMixin, Service):
    name = "compute"
    name_prefix = "compute"
    public_paths = ("/", "/v2.1")

    def routes(self):
        r = self.router
        v = "/v2.1"
        r.add("GET", "/", self.versions)
        r.add("GET", v, self.version)
        r.add("GET", v + "/os-services", self.services_list)
        r.add("PUT", v + "/os-services/([^/]+)", self.services_update)
        r.add("GET", v + "/os-hypervisors", lambda req: self.hypervisors_list(req, False))
        r.add("GET", v + "/os-hypervisors/detail", lambda req: self.hypervisors_list(req, True))
        r.add("GET", v + "/os-hypervisors/statistics", self.hypervisor_statistics)
        r.add("GET", v + "/os-hypervisors/([^/]+)/search", self.hypervisors_search)
        r.add("GET", v + "/os-hypervisors/([^/]+)/servers", self.hypervisors_servers)
        r.add("GET", v + "/os-hypervisors/([^/]+)", self.hypervisor_show)
        r.add("GET", v + "/servers", lambda req: self.servers_list(req, False))
        r.add("GET", v + "/servers/detail", lambda req: self.servers_list(req, True))
        r.add("POST", v + "/servers", self.servers_create)
        r.add("GET", v + "/servers/([^/]+)", self.server_show)
        r.add("DELETE", v + "/servers/([^/]+)", self.server_delete)
        r.add("POST", v + "/servers/([^/]+)/action", self.server_action)
        r.add("GET", v + "/flavors", lambda req: self.flavors_list(req, False))
        r.add("GET", v + "/flavors/detail", lambda req: self.flavors_list(req, True))
        r.add("GET", v + "/flavors/([^/]+)", self.flavor_show)
        r.add("GET", v + "/flavors/([^/]+)/os-extra_specs", lambda req, fid: Response(
            200, {"extra_specs": {}}))
        r.add("GET", v + "/os-keypairs", self.keypairs_list)
        r.add("GET", v + "/os-keypairs/([^/]+)", self.keypair_show)
        r.add("GET", v + "/limits", self.limits)
        r.add("GET", v + "/os-quota-sets/([^/]+)", lambda req, pid: self.quota_show(req, pid, False))
        r.add("GET", v + "/os-quota-sets/([^/]+)/detail", lambda req, pid: self.quota_show(req, pid, True))
        r.add("GET", v + "/os-quota-sets/([^/]+)/defaults", self.quota_defaults)
        r.add("PUT", v + "/os-quota-sets/([^/]+)", self.quota_update)
        r.add("DELETE", v + "/os-quota-sets/([^/]+)", self.quota_delete)
        r.add("GET", v + "/os-availability-zone", self.zones)
        r.add("GET", v + "/os-availability-zone/detail", self.zones)

    # ----- plumbing
    def serve(self, req, sub):
        self.check_token(req, sub)
        req.mv = parse_microversion(req, "compute", "X-OpenStack-Nova-API-Version",
                                    MIN_VERSION, MAX_VERSION)
        resp = self.router.dispatch(req, sub)
        self._version_headers(resp, req.mv)
        return resp

    def _version_headers(self, resp, mv):
        resp.headers["OpenStack-API-Version"] = "compute " + vtext(mv)
        resp.headers["X-OpenStack-Nova-API-Version"] = vtext(mv)
        resp.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"

    def error(self, err):
        if err.status == 401:
            return super().error(err)
        name = FAULT_NAMES.get(err.status, "computeFault")
        resp = Response(err.status, {name: {"code": err.status, "message": err.message}})
        self._version_headers(resp, MIN_VERSION)
        return resp

    def link(self, kind, ident):
        base = self.url("/v2.1")
        return [{"rel": "self", "href": f"{base}/{kind}/{ident}"},
                {"rel": "bookmark", "href": f"{self.url()}/{kind}/{ident}"}]

    def next_link(self, kind, req, marker):
        query = {k: v[-1] for k, v in req.query.items() if k != "marker"}
        query["marker"] = marker
        return [{"rel": "next", "href": f"{self.url('/v2.1')}/{kind}?{urlencode(query)}"}]

    def _version_doc(self):
        return {"id": "v2.1", "status": "CURRENT", "version": vtext(MAX_VERSION),
                "min_version": vtext(MIN_VERSION), "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": self.url("/v2.1/")},
                          {"rel": "describedby", "type": "text/html",
                           "href": "http://docs.openstack.org/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]}

    def versions(self, req):
        return Response(200, {"versions": [self._version_doc()]})

    def version(self, req):
        return Response(200, {"version": self._version_doc()})

    # ----- services
    def _service_view(self, req, binary, host_name, sid, index, enabled, reason, up, updated,
                      forced_down=False):
        view = {"id": sid if req.mv >= (2, 53) else index, "binary": binary, "host": host_name,
                "zone": "nova" if binary == "nova-compute" else "internal",
                "status": "enabled" if enabled else "disabled",
                "state": "up" if up else "down", "updated_at": iso_micro(updated),
                "disabled_reason": reason}
        if req.mv >= (2, 11):
            view["forced_down"] = forced_down
        return view

    def _compute_view(self, req, host, mono=None):
        updated = time.time() if host.virtual else host.beat_wall
        return self._service_view(req, "nova-compute", host.name, host.service_id,
                                  host.index + len(HEAD_BINARIES), host.enabled,
                                  host.disabled_reason, self.cloud.is_up(host, mono), updated,
                                  host.forced_down)

    def services_list(self, req):
        want_host, want_binary = req.arg("host"), req.arg("binary")
        views = []
        with self.cloud.lock:
            now = time.time()
            for i, binary in enumerate(HEAD_BINARIES):
                if want_host in (None, HEAD_HOST) and want_binary in (None, binary):
                    views.append(self._service_view(req, binary, HEAD_HOST,
                                                    self.cloud.head_service_ids[binary], i + 1,
                                                    True, None, True, now))
            if want_binary in (None, "nova-compute"):
                mono = time.monotonic()
                hosts = ([self.cloud.hosts[want_host]] if want_host in self.cloud.hosts else []
                         ) if want_host is not None else self.cloud.hosts.values()
                views.extend(self._compute_view(req, h, mono) for h in hosts)
        return Response(200, {"services": views})

    def services_update(self, req, target):
        body = req.json()
        if req.mv >= (2, 53):
            return self._service_update_by_id(req, target, body)
        if target not in ("enable", "disable", "disable-log-reason", "force-down"):
            raise ApiError(404, "Unknown action")
        host_name, binary = body.get("host"), body.get("binary")
        if not host_name or not binary:
            raise ApiError(400, "Missing host or binary in request body")
        with self.cloud.lock:
            host = self.cloud.hosts.get(host_name)
            if host is None or binary != "nova-compute":
                raise ApiError(404, f"Service {binary} on host {host_name} could not be found.")
            if target == "force-down":
                host.forced_down = _boolean(body.get("forced_down"), "forced_down")
                return Response(200, {"service": {"host": host_name, "binary": binary,
                                                  "forced_down": host.forced_down}})
            reason = None
            if target == "disable-log-reason":
                reason = body.get("disabled_reason")
                if not isinstance(reason, str) or not 1 <= len(reason) <= 255:
                    raise ApiError(400, "The string containing the reason for disabling the "
                                        "service contains invalid characters or is too long.")
            self.cloud.set_service(host, target == "enable", reason)
        view = {"host": host_name, "binary": binary,
                "status": "enabled" if target == "enable" else "disabled"}
        if reason is not None:
            view["disabled_reason"] = reason
        return Response(200, {"service": view})

    def _service_update_by_id(self, req, sid, body):
        """Nova's _update_v253, in its order: body schema, uuid, lookup, then the body's
        meaning (a reason only goes with 'disabled'; something must change)."""
        status, reason = body.get("status"), body.get("disabled_reason")
        if status is not None and status not in ("enabled", "disabled"):
            raise ApiError(400, "Invalid input for field/attribute status. Value: %s. %r is "
                                "not one of ['enabled', 'disabled']" % (status, status))
        if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 255):
            raise ApiError(400, "Invalid input for field/attribute disabled_reason.")
        forced = _boolean(body["forced_down"], "forced_down") if "forced_down" in body else None
        if not UUID.fullmatch(sid):
            raise ApiError(400, f"Invalid uuid {sid}")
        with self.cloud.lock:
            host = self.cloud.hosts_by_service.get(sid)
            if host is None:
                raise ApiError(404, f"Service {sid} not found.")
            if status == "enabled" and reason:
                raise ApiError(400, "Specifying 'disabled_reason' with status 'enabled' is "
                                    "invalid.")
            if status is None and "forced_down" not in body:  # a reason alone changes nothing
                raise ApiError(400, "No updates were requested. Fields 'status' or "
                                    "'forced_down' should be specified.")
            if status is not None:
                self.cloud.set_service(host, status == "enabled",
                                       reason if status == "disabled" else None)
            if forced is not None:
                host.forced_down = forced
            view = self._compute_view(req, host)
        return Response(200, {"service": view})

    # ----- hypervisors
    def _hyp_view(self, req, host, detail, with_servers, mono):
        up = self.cloud.is_up(host, mono)
        view = {"id": host.uuid if req.mv >= (2, 53) else host.index,
                "hypervisor_hostname": host.name, "state": "up" if up else "down",
                "status": "enabled" if host.enabled else "disabled"}
        if detail:
            sid = host.service_id if req.mv >= (2, 53) else host.index + len(HEAD_BINARIES)
            view.update({"hypervisor_type": "QEMU", "hypervisor_version": 8002000,
                         "host_ip": None, "service": {"host": host.name, "id": sid,
                                                      "disabled_reason": host.disabled_reason}})
            if req.mv < (2, 88):
                inv, used = host.inventory, host.used
                mem_used = used["MEMORY_MB"] + inv["MEMORY_MB"]["reserved"]
                cpu_info = {"arch": "x86_64", "model": "Haswell", "vendor": "Intel",
                            "topology": {"cells": 1, "sockets": 1, "cores": inv["VCPU"]["total"],
                                         "threads": 1}, "features": []}
                view.update({
                    "vcpus": inv["VCPU"]["total"], "vcpus_used": used["VCPU"],
                    "memory_mb": inv["MEMORY_MB"]["total"], "memory_mb_used": mem_used,
                    "free_ram_mb": inv["MEMORY_MB"]["total"] - mem_used,
                    "local_gb": inv["DISK_GB"]["total"], "local_gb_used": used["DISK_GB"],
                    "free_disk_gb": inv["DISK_GB"]["total"] - used["DISK_GB"],
                    "disk_available_least": inv["DISK_GB"]["total"] - used["DISK_GB"],
                    "current_workload": 0, "running_vms": len(host.vms),
                    "cpu_info": cpu_info if req.mv >= (2, 28) else str(cpu_info)})
            else:  # Nova gives None for a host it cannot ask
                view["uptime"] = (" 17:00:00 up 42 days,  1:00,  0 users,  load average: 0.00"
                                  if up else None)
        if with_servers:
            servers = [{"name": vm["instance_name"], "uuid": vm["id"]} for vm in host.vms.values()]
            if servers or req.mv >= (2, 75):
                view["servers"] = servers
        return view

    def _find_host(self, ident, mv):
        if mv >= (2, 53) and not UUID.fullmatch(ident):
            raise ApiError(400, f"Invalid uuid {ident}")
        if mv >= (2, 53):
            host = self.cloud.hosts_by_uuid.get(ident)
        else:
            host = next((h for h in self.cloud.hosts.values() if str(h.index) == ident), None)
        if host is None:
            raise ApiError(404, f"Hypervisor with ID '{ident}' could not be found.")
        return host

    def hypervisors_list(self, req, detail):
        with_servers = req.mv >= (2, 53) and strict_bool(req, "with_servers")
        pattern = req.arg("hypervisor_hostname_pattern") if req.mv >= (2, 53) else None
        limit = int_arg(req, "limit", None, 0) if req.mv >= (2, 33) else None
        marker = req.arg("marker") if req.mv >= (2, 33) else None
        if pattern is not None and (limit is not None or marker is not None):
            raise ApiError(400, "Paging over hypervisors with the "
                                "hypervisor_hostname_pattern query parameter is not supported.")
        with self.cloud.lock:
            hosts = list(self.cloud.hosts.values())
            if pattern is not None:
                hosts = [h for h in hosts if pattern in h.name]
                if not hosts:
                    raise ApiError(404, f"No hypervisor matching '{pattern}' could be found.")
            links = None
            if req.mv >= (2, 33):
                hosts, links = self._page(req, "os-hypervisors" + ("/detail" if detail else ""),
                                          hosts, lambda h: (h.uuid if req.mv >= (2, 53) else str(h.index)),
                                          limit, marker)
            mono = time.monotonic()
            views = [self._hyp_view(req, h, detail, with_servers, mono) for h in hosts]
        body = {"hypervisors": views}
        if links:
            body["hypervisors_links"] = links
        return Response(200, body)

    def _page(self, req, kind, items, key, limit, marker):
        limit = MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)
        start = 0
        if marker is not None:
            for i, item in enumerate(items):
                if key(item) == marker:
                    start = i + 1
                    break
            else:
                raise ApiError(400, f"marker [{marker}] not found")
        page = items[start:start + limit]
        links = self.next_link(kind, req, key(page[-1])) if page and len(page) == limit else None
        return page, links

    def hypervisor_show(self, req, ident):
        with_servers = req.mv >= (2, 53) and strict_bool(req, "with_servers")
        with self.cloud.lock:
            view = self._hyp_view(req, self._find_host(ident, req.mv), True, with_servers, None)
        return Response(200, {"hypervisor": view})

    def _search(self, req, pattern, with_servers):
        if req.mv >= (2, 53):
            raise ApiError(404, "The resource could not be found.")
        with self.cloud.lock:
            hosts = [h for h in self.cloud.hosts.values() if pattern in h.name]
            if not hosts:
                raise ApiError(404, f"No hypervisor matching '{pattern}' could be found.")
            views = [self._hyp_view(req, h, False, False, None) for h in hosts]
            if with_servers:
                for view, host in zip(views, hosts):
                    servers = [{"name": vm["instance_name"], "uuid": vm["id"]}
                               for vm in host.vms.values()]
                    if servers:
                        view["servers"] = servers
        return Response(200, {"hypervisors": views})

    def hypervisors_search(self, req, pattern):
        return self._search(req, pattern, False)

    def hypervisors_servers(self, req, pattern):
        return self._search(req, pattern, True)

    def hypervisor_statistics(self, req):
        if req.mv >= (2, 88):
            raise ApiError(404, "The resource could not be found.")
        with self.cloud.lock:
            stats = {"count": len(self.cloud.hosts), "vcpus": 0, "vcpus_used": 0, "memory_mb": 0,
                     "memory_mb_used": 0, "local_gb": 0, "local_gb_used": 0, "running_vms": 0}
            for h in self.cloud.hosts.values():
                view = self._hyp_view(req, h, True, False, None)
                for key in list(stats)[1:]:
                    stats[key] += view[key]
        return Response(200, {"hypervisor_statistics": stats})

    # ----- flavors, keypairs, limits, quotas
    def _flavor_view(self, req, flavor, detail):
        view = {"id": flavor["id"], "name": flavor["name"], "links": self.link("flavors", flavor["id"])}
        if req.mv >= (2, 55):
            view["description"] = None
        if detail:
            view.update({"ram": flavor["ram"], "vcpus": flavor["vcpus"], "disk": flavor["disk"],
                         "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": True,
                         "swap": 0 if req.mv >= (2, 75) else ""})
            if req.mv < (2, 102):  # 2.102 removed both
                view.update({"OS-FLV-DISABLED:disabled": False, "rxtx_factor": 1.0})
            if req.mv >= (2, 61):
                view["extra_specs"] = {}
        return view

    def flavors_list(self, req, detail):
        with self.cloud.lock:
            flavors = sorted(self.cloud.flavors.values(), key=lambda f: f["id"])
        name = req.arg("name") if req.mv >= (2, 102) else None  # stripped before 2.102
        if name is not None:  # Nova matches the name as a regular expression (SQL ~)
            try:
                regex = re.compile(name)
            except re.error:
                raise ApiError(400, f"Invalid regular expression for name: {name}") from None
            flavors = [f for f in flavors if regex.search(f["name"])]
        page, links = self._page(req, "flavors" + ("/detail" if detail else ""), flavors,
                                 lambda f: f["id"], int_arg(req, "limit", None, 0), req.arg("marker"))
        body = {"flavors": [self._flavor_view(req, f, detail) for f in page]}
        if links:
            body["flavors_links"] = links
        return Response(200, body)

    def flavor_show(self, req, flavor_id):
        with self.cloud.lock:
            flavor = self.cloud.flavors.get(flavor_id)
        if flavor is None:
            raise ApiError(404, f"Flavor {flavor_id} could not be found.")
        return Response(200, {"flavor": self._flavor_view(req, flavor, True)})

    def _keypair_view(self, req, name, full):
        view = {"name": name, "public_key": KEYPAIRS[name], "fingerprint": fingerprint(KEYPAIRS[name])}
        if req.mv >= (2, 2):
            view["type"] = "ssh"
        if full:
            view.update({"user_id": ADMIN_USER_ID, "created_at": now_iso(self.cloud.started, True),
                         "deleted": False, "deleted_at": None, "updated_at": None,
                         "id": sorted(KEYPAIRS).index(name) + 1})
        return view

    def keypairs_list(self, req):
        return Response(200, {"keypairs": [{"keypair": self._keypair_view(req, n, False)}
                                           for n in sorted(KEYPAIRS)]})

    def keypair_show(self, req, name):
        if name not in KEYPAIRS:
            raise ApiError(404, f"Keypair {name} not found for user {ADMIN_USER_ID}")
        return Response(200, {"keypair": self._keypair_view(req, name, True)})

    def limits(self, req):
        with self.cloud.lock:
            quota, used = dict(self.cloud.quota), self.cloud.usage()
        absolute = {"maxTotalInstances": quota["instances"], "maxTotalCores": quota["cores"],
                    "maxTotalRAMSize": quota["ram"], "maxServerMeta": 128, "maxImageMeta": 128,
                    "maxTotalKeypairs": 100, "maxServerGroups": 10, "maxServerGroupMembers": 10,
                    "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
                    "totalRAMUsed": used["ram"], "totalServerGroupsUsed": 0}
        if req.mv < (2, 36):
            absolute.update({"maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
                             "maxTotalFloatingIps": 10, "totalFloatingIpsUsed": 0,
                             "totalSecurityGroupsUsed": 0})
        if req.mv < (2, 57):
            absolute.update({"maxPersonality": 5, "maxPersonalitySize": 10240})
        return Response(200, {"limits": {"rate": [], "absolute": absolute}})

    def _quota_values(self, req, quota):
        """A quota set as Nova formats it for the microversion (filtered keys gone)."""
        values = dict(quota, key_pairs=100, metadata_items=128, server_groups=10,
                      server_group_members=10)
        if req.mv < (2, 57):
            values.update(injected_file_content_bytes=10240, injected_file_path_bytes=255,
                          injected_files=5)
        if req.mv < (2, 36):
            values.update(fixed_ips=-1, floating_ips=10, security_group_rules=20,
                          security_groups=10)
        return values

    def quota_show(self, req, project_id, detail):
        with self.cloud.lock:
            quota, used = dict(self.cloud.quota), self.cloud.usage()
        values = self._quota_values(req, quota)
        if detail:
            values = {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0}
                      for k, v in values.items()}
        return Response(200, {"quota_set": dict(values, id=project_id)})

    def quota_defaults(self, req, project_id):
        """The configured defaults, whatever the project's own quota is now."""
        return Response(200, {"quota_set": dict(self._quota_values(req, DEFAULT_QUOTA),
                                                id=project_id)})

    def quota_update(self, req, project_id):
        body = req.json().get("quota_set") or {}
        with self.cloud.lock:
            for key in ("instances", "cores", "ram"):
                if key in body:
                    try:
                        self.cloud.quota[key] = int(body[key])
                    except (TypeError, ValueError):
                        raise ApiError(400, f"Invalid input for field/attribute {key}.") from None
            quota = dict(self.cloud.quota)
        return Response(200, {"quota_set": self._quota_values(req, quota)})  # no id, as Nova

    def quota_delete(self, req, project_id):
        """Nova drops the project's own limits: it is back on the defaults (202, no body)."""
        with self.cloud.lock:
            self.cloud.quota = dict(DEFAULT_QUOTA)
        return Response(202)

    def zones(self, req):
        return Response(200, {"availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]})


def _boolean(value, field):
    """Nova's parameter_types.boolean: true/false and their usual spellings."""
    spellings = {True: True, False: False, "true": True, "false": False, "1": True, "0": False,
                 "yes": True, "no": False, "on": True, "off": False}
    key = value.lower() if isinstance(value, str) else value
    if isinstance(key, (bool, str)) and key in spellings:
        return spellings[key]
    raise ApiError(400, f"Invalid input for field/attribute {field}. Value: {value}. "
                        f"{value!r} is not one of the allowed boolean values")
