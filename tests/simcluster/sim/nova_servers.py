"""Nova servers: views per microversion, list/detail with Nova's filters and paging, boot
(quota, all-or-nothing scheduling, chosen host), delete. Mixed into nova.Nova."""
import base64
import binascii
import hashlib
import re
import secrets
import time

from . import job_end
from .base import int_arg
from .http import Response
from .model import ADMIN_PROJECT_ID, ADMIN_USER_ID, KEYPAIRS, NETWORK, ApiError, now_iso

MAX_LIMIT = 1000  # Nova's [api]max_limit default: longer lists come in pages
STATUS_OF = {"building": "BUILD", "active": "ACTIVE", "error": "ERROR", "stopped": "SHUTOFF"}
VM_STATE_OF = {v: k for k, v in STATUS_OF.items()}


def iso_micro(t):
    return None if t is None else now_iso(t, micro=True)


class ServersMixin:
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
            "image": self._image_view(req, vm),
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
        if mv >= (2, 100):
            view["scheduler_hints"] = {}  # no boot here passes hints
        return view

    def _image_view(self, req, vm):
        if not vm["image"]:
            return ""
        view = {"id": vm["image"], "links": [{"rel": "bookmark", "href":
                                               f"{self.url()}/images/{vm['image']}"}]}
        if req.mv >= (2, 98):  # Nova shows the image's standard properties (hw_*, os_*...):
            view["properties"] = {}  # the simulated images have none
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
            job_end.end_due_jobs(self.cloud)
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
            job_end.end_due_jobs(self.cloud)
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
            if "os-resetState" in body:  # admin: the state set, the task (a delete) dropped
                self.cloud.reset_state(vm_id, (body["os-resetState"] or {}).get("state"))
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
                raise ApiError(400, "Can not find requested image")  # Nova's own words
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
