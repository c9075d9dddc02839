"""Glance v2 (images list/show/download) and Placement 1.0..1.39 (providers, inventories,
usages, allocations, allocation candidates of one provider each), backed by the same cloud
model."""
import os
from urllib.parse import urlencode

from .base import TITLES, Service, int_arg, parse_microversion, vtext
from .http import Response
from .model import ADMIN_PROJECT_ID, ADMIN_USER_ID, ApiError

GLANCE_PAGE = 25  # Glance's limit_param_default
GLANCE_MAX = 1000  # api_limit_max
PLACEMENT_MIN, PLACEMENT_MAX = (1, 0), (1, 39)
# Placement's handlers word a missing provider each in their own way (placement/handlers/*.py)
NOT_FOUND_INVENTORY = "No resource provider with uuid %(uuid)s found : %(error)s"
NOT_FOUND_USAGES = "No resource provider with uuid %(uuid)s found: %(error)s"
NOT_FOUND_ALLOCATIONS = "Resource provider '%(uuid)s' not found: %(error)s"
WEBOB_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or "
         "otherwise incorrect.",
    404: "The resource could not be found."}


def webob_detail(status, message):
    """An error's detail as Placement sends it: webob's body template
    '${explanation}<br /><br />\n${detail}\n${html_comment}' with newlines made spaces and
    <br /> made newlines (webob.exc.strip_tags)."""
    explanation = WEBOB_EXPLANATIONS.get(status)
    if explanation is None:
        return message
    detail = "" if message == explanation else message  # a route that does not exist
    return f"{explanation}\n\n {detail}  "


class Glance(Service):
    name = "image"
    name_prefix = "image"
    public_paths = ("/", "/versions")

    def routes(self):
        r = self.router
        r.add("GET", "/", self.versions)
        r.add("GET", "/versions", self.versions)
        r.add("GET", "/v2/images", self.images_list)
        r.add("GET", "/v2/images/([^/]+)", self.image_show)
        r.add("GET", "/v2/images/([^/]+)/file", self.image_file)

    def error(self, err):
        if err.status == 401:
            return super().error(err)
        # Glance answers errors as text/html-ish webob bodies; JSON keeps clients simple.
        return Response(err.status, {"code": err.status, "title": "Error", "message": err.message})

    def versions(self, req):
        values = []
        for minor in range(9, -1, -1):
            values.append({"id": f"v2.{minor}", "status": "CURRENT" if minor == 9 else "SUPPORTED",
                           "links": [{"rel": "self", "href": self.url("/v2/")}]})
        return Response(300 if req.path.rstrip("/").endswith("image") else 200, {"versions": values})

    def images_list(self, req):
        limit = min(int_arg(req, "limit", GLANCE_PAGE, 0), GLANCE_MAX)
        marker = req.arg("marker")
        name, status = req.arg("name"), req.arg("status")
        with self.cloud.lock:
            images = sorted(self.cloud.images.values(), key=lambda i: (i["created_at"], i["id"]),
                            reverse=True)
            images = [dict(i) for i in images
                      if (name is None or i["name"] == name) and (status is None or i["status"] == status)]
        start = 0
        if marker:
            ids = [i["id"] for i in images]
            if marker not in ids:
                raise ApiError(400, f"Invalid marker. Image {marker} could not be found.")
            start = ids.index(marker) + 1
        page = images[start:start + limit]
        body = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        query = {k: v[-1] for k, v in req.query.items() if k != "marker"}
        if len(page) == limit and start + limit < len(images):
            query["marker"] = page[-1]["id"]
            body["next"] = "/v2/images?" + urlencode(query)
        with self.cloud.lock:
            next_link = (getattr(self.cloud, "hostile", None) or {}).get("next_link")
        if next_link:  # PUT /sim/hostile {"next_link": URL}: an absolute link elsewhere
            body["next"] = next_link.rstrip("/") + "/v2/images?" + urlencode(query)
        return Response(200, body)

    def _image(self, image_id):
        with self.cloud.lock:
            image = self.cloud.images.get(image_id)
            if image is None:
                raise ApiError(404, f"No image found with ID {image_id}")
            return dict(image)

    def image_show(self, req, image_id):
        return Response(200, self._image(image_id))

    def image_file(self, req, image_id):
        image = self._image(image_id)
        path = os.path.join(self.cloud.store_dir, image_id)
        if image["status"] != "active" or not os.path.isfile(path):
            return Response(204)
        handle = open(path, "rb")
        return Response(200, stream=handle, length=os.fstat(handle.fileno()).st_size,
                        headers={"Content-MD5": image["checksum"]})


class Placement(Service):
    name = "placement"
    name_prefix = "placement"
    public_paths = ("/",)

    def routes(self):
        r = self.router
        r.add("GET", "/", self.root)
        r.add("GET", "/resource_providers", self.providers)
        r.add("GET", "/resource_providers/([^/]+)", self.provider)
        r.add("GET", "/resource_providers/([^/]+)/inventories", self.inventories)
        r.add("GET", "/resource_providers/([^/]+)/inventories/([A-Z_]+)", self.inventory)
        r.add("GET", "/resource_providers/([^/]+)/usages", self.usages)
        r.add("GET", "/resource_providers/([^/]+)/allocations", self.provider_allocations)
        r.add("GET", "/allocations/([^/]+)", self.consumer_allocations)
        r.add("GET", "/allocation_candidates", self.allocation_candidates)

    def serve(self, req, sub):
        self.check_token(req, sub)
        req.mv = parse_microversion(req, "placement", None, PLACEMENT_MIN,
                                    self.cloud.placement_max or PLACEMENT_MAX)
        resp = self.router.dispatch(req, sub)
        resp.headers["OpenStack-API-Version"] = "placement " + vtext(req.mv)
        resp.headers["Vary"] = "OpenStack-API-Version"
        return resp

    def error(self, err):
        if err.status == 401:
            return super().error(err)
        return Response(err.status, {"errors": [{
            "status": err.status, "title": TITLES.get(err.status, "Error"),
            "detail": webob_detail(err.status, err.message), "request_id": None}]})

    def root(self, req):
        newest = self.cloud.placement_max or PLACEMENT_MAX
        return Response(200, {"versions": [{
            "id": "v1.0", "max_version": vtext(newest), "min_version": vtext(PLACEMENT_MIN),
            "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]})

    def _provider_view(self, req, host):
        base = f"/resource_providers/{host.uuid}"
        view = {"uuid": host.uuid, "name": host.name, "generation": host.generation,
                "links": [{"rel": "self", "href": base},
                          {"rel": "inventories", "href": base + "/inventories"},
                          {"rel": "usages", "href": base + "/usages"}]}
        if req.mv >= (1, 11):
            view["links"].append({"rel": "allocations", "href": base + "/allocations"})
        if req.mv >= (1, 14):
            view.update(parent_provider_uuid=None, root_provider_uuid=host.uuid)
        return view

    def _host(self, rp_uuid):
        host = self.cloud.hosts_by_uuid.get(rp_uuid)
        if host is None:
            raise ApiError(404, f"No resource provider with uuid {rp_uuid} found")
        return host

    def _host_or(self, rp_uuid, message):
        """The provider, or a 404 as the handler words it around the object's NotFound."""
        try:
            return self._host(rp_uuid)
        except ApiError as err:
            raise ApiError(404, message % {"uuid": rp_uuid, "error": err.message}) from None

    def providers(self, req):
        name, rp_uuid = req.arg("name"), req.arg("uuid")
        with self.cloud.lock:
            views = [self._provider_view(req, h) for h in self.cloud.hosts.values()
                     if (name is None or h.name == name) and (rp_uuid is None or h.uuid == rp_uuid)]
        return Response(200, {"resource_providers": views})

    def provider(self, req, rp_uuid):
        with self.cloud.lock:
            return Response(200, self._provider_view(req, self._host(rp_uuid)))

    @staticmethod
    def _inventory_view(inv):
        return {"total": inv["total"], "reserved": inv["reserved"], "min_unit": 1,
                "max_unit": inv["total"], "step_size": 1,
                "allocation_ratio": inv["allocation_ratio"]}

    def inventories(self, req, rp_uuid):
        with self.cloud.lock:
            host = self._host_or(rp_uuid, NOT_FOUND_INVENTORY)
            return Response(200, {"resource_provider_generation": host.generation,
                                  "inventories": {rc: self._inventory_view(inv)
                                                  for rc, inv in host.inventory.items()}})

    def inventory(self, req, rp_uuid, rc):
        with self.cloud.lock:
            host = self._host_or(rp_uuid, NOT_FOUND_INVENTORY)
            if rc not in host.inventory:
                raise ApiError(404, f"No inventory of class {rc} for {rp_uuid}")
            return Response(200, dict(self._inventory_view(host.inventory[rc]),
                                      resource_provider_generation=host.generation))

    def usages(self, req, rp_uuid):
        with self.cloud.lock:
            host = self._host_or(rp_uuid, NOT_FOUND_USAGES)
            return Response(200, {"resource_provider_generation": host.generation,
                                  "usages": dict(host.used)})

    @staticmethod
    def _resources(vm):
        flavor = vm["flavor"]
        return {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram"], "DISK_GB": flavor["disk"]}

    def provider_allocations(self, req, rp_uuid):
        with self.cloud.lock:
            host = self._host_or(rp_uuid, NOT_FOUND_ALLOCATIONS)
            return Response(200, {"resource_provider_generation": host.generation,
                                  "allocations": {vm_id: {"resources": self._resources(vm)}
                                                  for vm_id, vm in host.vms.items()}})

    def consumer_allocations(self, req, consumer):
        with self.cloud.lock:
            vm = self.cloud.vms.get(consumer)
            allocations = {}
            if vm is not None and vm["host"] and consumer in self.cloud.hosts[vm["host"]].vms:
                host = self.cloud.hosts[vm["host"]]
                allocations[host.uuid] = {"generation": host.generation,
                                          "resources": self._resources(vm)}
        body = {"allocations": allocations}
        if req.mv >= (1, 12):
            body.update(project_id=ADMIN_PROJECT_ID if vm else None,
                        user_id=ADMIN_USER_ID if vm else None)
        return Response(200, body)

    def allocation_candidates(self, req):
        """From 1.10: every provider that holds all of ?resources=RC:N,... now (no sharing or
        nested providers here), with its capacity int((total - reserved) * ratio) and use of
        the requested classes (of every class from 1.27)."""
        if req.mv < (1, 10):
            raise ApiError(404, WEBOB_EXPLANATIONS[404])
        wanted = {}
        for item in (req.arg("resources") or "").split(","):
            rc, _, amount = item.partition(":")
            if not rc or not amount.isdigit() or int(amount) < 1:
                raise ApiError(400, f"Badly formed resources parameter. Expected resources query "
                                    f"string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. "
                                    f"Got: {item}.")
            wanted[rc] = int(amount)
        requests, summaries = [], {}
        with self.cloud.lock:
            for host in self.cloud.hosts.values():
                if not all(rc in host.inventory and amount <= host.inventory[rc]["total"]
                           and host.used.get(rc, 0) + amount <= host.capacity(rc)
                           for rc, amount in wanted.items()):
                    continue
                if req.mv >= (1, 12):
                    requests.append({"allocations": {host.uuid: {"resources": dict(wanted)}}})
                else:
                    requests.append({"allocations": [{"resource_provider": {"uuid": host.uuid},
                                                      "resources": dict(wanted)}]})
                classes = host.inventory if req.mv >= (1, 27) else wanted
                summary = {"resources": {rc: {"capacity": int(host.capacity(rc)),
                                              "used": host.used.get(rc, 0)} for rc in classes}}
                if req.mv >= (1, 17):
                    summary["traits"] = []
                if req.mv >= (1, 29):
                    summary.update(parent_provider_uuid=None, root_provider_uuid=host.uuid)
                summaries[host.uuid] = summary
        return Response(200, {"allocation_requests": requests, "provider_summaries": summaries})
