"""Nova v2.1 (microversions 2.1..2.96): services, hypervisors, servers, flavors, keypairs,
limits, quota sets. Views follow the Nova API reference per microversion."""
import base64
import binascii
import hashlib
import re
import secrets
import time
from urllib.parse import urlencode

from .base import Service, int_arg, parse_microversion, vtext
from .http import Response
from .model import (ADMIN_PROJECT_ID, ADMIN_USER_ID, HEAD_HOST, KEYPAIRS, NETWORK, ApiError,
                    now_iso)

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
MAX_LIMIT = 1000  # Nova's [api]max_limit default: longer lists come in pages
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
               405: "badMethod", 406: "notAcceptable", 409: "conflictingRequest"}
STATUS_OF = {"building": "BUILD", "active": "ACTIVE", "error": "ERROR", "stopped": "SHUTOFF"}
VM_STATE_OF = {v: k for k, v in STATUS_OF.items()}
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


def iso_micro(t):
    return None if t is None else now_iso(t, micro=True)


class Nova(Service):
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
        r.add("GET", v + "/os-quota-sets/([^/]+)/defaults", lambda req, pid: self.quota_show(req, pid, False))
        r.add("PUT", v + "/os-quota-sets/([^/]+)", self.quota_update)
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
    def _service_view(self, req, binary, host_name, sid, index, enabled, reason, up, updated):
        view = {"id": sid if req.mv >= (2, 53) else index, "binary": binary, "host": host_name,
                "zone": "nova" if binary == "nova-compute" else "internal",
                "status": "enabled" if enabled else "disabled",
                "state": "up" if up else "down", "updated_at": iso_micro(updated),
                "disabled_reason": reason}
        if req.mv >= (2, 11):
            view["forced_down"] = False
        return view

    def _compute_view(self, req, host, mono=None):
        updated = time.time() if host.virtual else host.beat_wall
        return self._service_view(req, "nova-compute", host.name, host.service_id,
                                  host.index + len(HEAD_BINARIES), host.enabled,
                                  host.disabled_reason, self.cloud.is_up(host, mono), updated)

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
                return Response(200, {"service": {"host": host_name, "binary": binary,
                                                  "forced_down": bool(body.get("forced_down"))}})
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
        status, reason = body.get("status"), body.get("disabled_reason")
        if status is None and "forced_down" not in body:
            raise ApiError(400, "At least one of 'status' or 'forced_down' must be specified "
                                "in the request body.")
        if status not in (None, "enabled", "disabled"):
            raise ApiError(400, "Invalid input for field/attribute status. Value: %s. %r is "
                                "not one of ['enabled', 'disabled']" % (status, status))
        if reason is not None and status != "disabled":
            raise ApiError(400, "Specifying 'disabled_reason' with status other than "
                                "'disabled' is invalid.")
        if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 255):
            raise ApiError(400, "Invalid input for field/attribute disabled_reason.")
        with self.cloud.lock:
            host = self.cloud.hosts_by_service.get(sid)
            if host is None:
                if not UUID.fullmatch(sid):
                    raise ApiError(400, f"Invalid uuid {sid}")
                raise ApiError(404, f"Service {sid} not found.")
            if status is not None:
                self.cloud.set_service(host, status == "enabled", reason)
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

    # ----- servers
    def _server_view(self, req, vm, detail, mono=None):
        ident = vm["id"]
        view = {"id": ident, "name": vm["name"], "links": self.link("servers", ident)}
        if not detail:
            return view
        mv = req.mv
        flavor = vm["flavor"]
        host = self.cloud.hosts.get(vm["host"]) if vm["host"] else None
        addresses = {}
        if vm["ip"] is not None:
            mac = "fa:16:3e:%02x:%02x:%02x" % (vm["ip"] >> 16 & 255, vm["ip"] >> 8 & 255,
                                               vm["ip"] & 255)
            addresses["default"] = [{"version": 4, "addr": str(NETWORK[vm["ip"]]),
                                     "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}]
        if mv >= (2, 47):
            flavor_view = {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"],
                           "ephemeral": 0, "swap": 0, "original_name": flavor["name"],
                           "extra_specs": {}}
        else:
            flavor_view = {"id": flavor["id"], "links": [self.link("flavors", flavor["id"])[1]]}
        status = STATUS_OF.get(vm["vm_state"], "UNKNOWN")
        view.update({
            "status": status, "tenant_id": ADMIN_PROJECT_ID, "user_id": ADMIN_USER_ID,
            "metadata": {}, "hostId": hashlib.sha224((ADMIN_PROJECT_ID + (vm["host"] or "")
                                                      ).encode()).hexdigest() if vm["host"] else "",
            "image": ({"id": vm["image"], "links": [{"rel": "bookmark", "href":
                       f"{self.url()}/images/{vm['image']}"}]} if vm["image"] else ""),
            "flavor": flavor_view, "created": now_iso(vm["created"]),
            "updated": now_iso(vm["updated"]), "addresses": addresses,
            "accessIPv4": "", "accessIPv6": "", "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": vm["zone"] or "",
            "config_drive": "", "key_name": vm["key_name"],
            "OS-SRV-USG:launched_at": iso_micro(vm["launched_at"]),
            "OS-SRV-USG:terminated_at": None,
            "OS-EXT-SRV-ATTR:host": vm["host"], "OS-EXT-SRV-ATTR:instance_name": vm["instance_name"],
            "OS-EXT-SRV-ATTR:hypervisor_hostname": vm["host"],
            "OS-EXT-STS:task_state": vm["task_state"], "OS-EXT-STS:vm_state": vm["vm_state"],
            "OS-EXT-STS:power_state": vm["power_state"],
            "os-extended-volumes:volumes_attached": [],
        })
        if status in ("BUILD", "ACTIVE"):
            view["progress"] = 0
        if vm["ip"] is not None:
            view["security_groups"] = [{"name": "default"}]
        if vm["fault"]:
            view["fault"] = dict(vm["fault"])
        if mv >= (2, 3):
            view.update({"OS-EXT-SRV-ATTR:reservation_id": vm["reservation_id"],
                         "OS-EXT-SRV-ATTR:launch_index": vm["launch_index"],
                         "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                         "OS-EXT-SRV-ATTR:hostname": re.sub(r"[^a-z0-9-]", "-", vm["name"].lower()),
                         "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                         "OS-EXT-SRV-ATTR:user_data": vm["user_data"]})
        if mv >= (2, 9):
            view["locked"] = False
        if mv >= (2, 16):
            if host is None:
                view["host_status"] = ""
            elif not self.cloud.is_up(host, mono):
                view["host_status"] = "DOWN"
            else:
                view["host_status"] = "UP" if host.enabled else "MAINTENANCE"
        if mv >= (2, 19):
            view["description"] = None
        if mv >= (2, 26):
            view["tags"] = []
        if mv >= (2, 63):
            view["trusted_image_certificates"] = None
        if mv >= (2, 71):
            view["server_groups"] = []
        if mv >= (2, 73):
            view["locked_reason"] = None
        if mv >= (2, 96):
            view["pinned_availability_zone"] = None
        return view

    def _filtered_servers(self, req):
        """Newest first (Nova's default sort: created_at desc), filtered as Nova filters."""
        host = req.arg("host") or req.arg("node")
        if host is not None:
            h = self.cloud.hosts.get(host)
            candidates = list(reversed(h.vms.values())) if h else []
        else:
            candidates = list(reversed(self.cloud.vms.values()))
        tests = []
        name = req.arg("name")
        if name:
            try:
                regex = re.compile(name)
            except re.error:
                raise ApiError(400, f"Invalid regular expression for name: {name}") from None
            tests.append(lambda vm: regex.search(vm["name"]))
        status = req.arg("status")
        if status:
            state = VM_STATE_OF.get(status.upper())
            tests.append(lambda vm: vm["vm_state"] == state)
        for field, key in (("reservation_id", "reservation_id"), ("image", "image"),
                           ("key_name", "key_name")):
            value = req.arg(field)
            if value:
                tests.append(lambda vm, k=key, v=value: vm[k] == v)
        flavor = req.arg("flavor")
        if flavor:
            tests.append(lambda vm: vm["flavor"]["id"] == flavor)
        ip = req.arg("ip")
        if ip:
            ip_regex = re.compile(ip)
            tests.append(lambda vm: vm["ip"] is not None and ip_regex.search(str(NETWORK[vm["ip"]])))
        if tests:
            candidates = [vm for vm in candidates if all(t(vm) for t in tests)]
        return candidates

    def servers_list(self, req, detail):
        limit = int_arg(req, "limit", None, 0)
        marker = req.arg("marker")
        with self.cloud.lock:
            vms = self._filtered_servers(req)
            page, links = self._page_servers(req, "servers" + ("/detail" if detail else ""),
                                             vms, limit, marker)
            mono = time.monotonic()
            views = [self._server_view(req, vm, detail, mono) for vm in page]
        body = {"servers": views}
        if links:
            body["servers_links"] = links
        return Response(200, body)

    def _page_servers(self, req, kind, vms, limit, marker):
        """Nova pages by creation order; a marker may be a VM deleted meanwhile (Nova reads
        deleted rows for markers), so that paging through a changing list never fails."""
        limit = MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)
        start = 0
        if marker is not None:
            vm = self.cloud.vms.get(marker)
            seq = vm["seq"] if vm else self.cloud.deleted_seq.get(marker)
            if seq is None:
                raise ApiError(400, f"marker [{marker}] not found")
            start = next((i for i, v in enumerate(vms) if v["seq"] < seq), len(vms))
        page = vms[start:start + limit]
        links = self.next_link(kind, req, page[-1]["id"]) if page and len(page) == limit else None
        return page, links

    def _vm(self, vm_id):
        vm = self.cloud.vms.get(vm_id)
        if vm is None:
            raise ApiError(404, f"Instance {vm_id} could not be found.")
        return vm

    def server_show(self, req, vm_id):
        with self.cloud.lock:
            view = self._server_view(req, self._vm(vm_id), True)
        return Response(200, {"server": view})

    def server_delete(self, req, vm_id):
        with self.cloud.lock:
            self.cloud.delete(vm_id)
        return Response(204)

    def server_action(self, req, vm_id):
        body = req.json()
        with self.cloud.lock:
            self._vm(vm_id)
            if "forceDelete" in body:
                self.cloud.delete(vm_id)
                return Response(202)
        raise ApiError(400, "There is no such action: %s" % ",".join(body) or "none")

    def servers_create(self, req):
        body = req.json().get("server")
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid input for field/attribute server. 'server' is a required property")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, "Invalid input for field/attribute name.")
        min_count = self._count(body, "min_count", 1)
        max_count = self._count(body, "max_count", min_count)
        if min_count > max_count:
            raise ApiError(400, "min_count must be <= max_count")
        networks = body.get("networks")
        if req.mv >= (2, 37):
            if networks is None:
                raise ApiError(400, "Invalid input for field/attribute server. Value: %s. "
                                    "'networks' is a required property" % body)
            if not (networks in ("auto", "none") or isinstance(networks, list)):
                raise ApiError(400, "Invalid input for field/attribute networks.")
        elif networks in ("auto", "none"):
            raise ApiError(400, "Invalid input for field/attribute networks.")
        user_data = body.get("user_data")
        if user_data is not None:
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ApiError(400, "User data needs to be valid base 64.") from None
        key_name = body.get("key_name")
        if key_name is not None and key_name not in KEYPAIRS:
            raise ApiError(400, "Invalid key_name provided.")
        only_host, forced = self._requested_host(req, body)
        with self.cloud.lock:
            flavor = self.cloud.flavor(body.get("flavorRef"))
            if flavor is None:
                raise ApiError(400, "Flavor %s could not be found." % body.get("flavorRef"))
            image_ref = str(body.get("imageRef") or "").rstrip("/").split("/")[-1]
            image = self.cloud.images.get(image_ref)
            if image is None:
                raise ApiError(400, f"Image {image_ref} could not be found.")
            if image["status"] != "active":
                raise ApiError(400, f"Image {image_ref} is not active.")
            created, reservation = self.cloud.boot(
                name, flavor, image, key_name, user_data,
                "none" if networks in ("none", []) else "auto", min_count, max_count,
                only_host, forced)
        if body.get("return_reservation_id") or req.json().get("return_reservation_id"):
            return Response(202, {"reservation_id": reservation})
        first = created[0]
        return Response(202, {"server": {"id": first["id"], "links": self.link("servers", first["id"]),
                                         "OS-DCF:diskConfig": "MANUAL",
                                         "security_groups": [{"name": "default"}],
                                         "adminPass": secrets.token_urlsafe(9)}})

    def _requested_host(self, req, body):
        """(host, forced): "availability_zone": "nova:HOST" forces a host (filters bypassed);
        from 2.74 "host": HOST requests one (filters still apply)."""
        zone = body.get("availability_zone")
        if zone is not None:
            if not isinstance(zone, str):
                raise ApiError(400, "Invalid input for field/attribute availability_zone.")
            name, _, host = zone.partition(":")
            if name not in ("", "nova"):
                raise ApiError(400, "The requested availability zone is not available")
            if host:
                return host.split(":")[0], True
        if "host" in body:
            if req.mv < (2, 74):
                raise ApiError(400, "Additional properties are not allowed ('host' was unexpected)")
            with self.cloud.lock:
                if body["host"] not in self.cloud.hosts:
                    raise ApiError(400, f"Compute host {body['host']} could not be found.")
            return body["host"], False
        return None, False

    @staticmethod
    def _count(body, key, default):
        value = body.get(key, default)
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid input for field/attribute {key}.") from None
        if value < 1:
            raise ApiError(400, f"Invalid input for field/attribute {key}. Value: {value}. "
                                f"{value} is less than the minimum of 1")
        return value

    # ----- flavors, keypairs, limits, quotas
    def _flavor_view(self, req, flavor, detail):
        view = {"id": flavor["id"], "name": flavor["name"], "links": self.link("flavors", flavor["id"])}
        if req.mv >= (2, 55):
            view["description"] = None
        if detail:
            view.update({"ram": flavor["ram"], "vcpus": flavor["vcpus"], "disk": flavor["disk"],
                         "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": False,
                         "os-flavor-access:is_public": True, "rxtx_factor": 1.0,
                         "swap": 0 if req.mv >= (2, 75) else ""})
            if req.mv >= (2, 61):
                view["extra_specs"] = {}
        return view

    def flavors_list(self, req, detail):
        with self.cloud.lock:
            flavors = sorted(self.cloud.flavors.values(), key=lambda f: f["id"])
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

    def quota_show(self, req, project_id, detail):
        with self.cloud.lock:
            quota, used = dict(self.cloud.quota), self.cloud.usage()
        values = dict(quota, key_pairs=100, metadata_items=128, server_groups=10,
                      server_group_members=10)
        if req.mv < (2, 57):
            values.update(injected_file_content_bytes=10240, injected_file_path_bytes=255,
                          injected_files=5)
        if req.mv < (2, 36):
            values.update(fixed_ips=-1, floating_ips=10, security_group_rules=20,
                          security_groups=10)
        if detail:
            values = {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0}
                      for k, v in values.items()}
        return Response(200, {"quota_set": dict(values, id=project_id)})

    def quota_update(self, req, project_id):
        body = req.json().get("quota_set") or {}
        with self.cloud.lock:
            for key in ("instances", "cores", "ram"):
                if key in body:
                    try:
                        self.cloud.quota[key] = int(body[key])
                    except (TypeError, ValueError):
                        raise ApiError(400, f"Invalid input for field/attribute {key}.") from None
        return self.quota_show(req, project_id, False)

    def zones(self, req):
        return Response(200, {"availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]})
