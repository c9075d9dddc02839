"""The simulated cloud's state and its rules (scheduling, quotas, service liveness, deletes).

One Cloud object holds everything under one lock; the HTTP layer calls its methods with the
lock held (`with cloud.lock:`) and never keeps references to its dicts after releasing it.
Indexes (VMs by host) keep listings linear in what they return, for 500 hosts / 10,000 VMs.
"""
import contextlib
import hashlib
import heapq
import ipaddress
import os
import secrets
import threading
import time
import uuid

from . import delete_delay

ADMIN_PROJECT_ID = "6d1c3e9d2f4b4c0f9a0e5d7b8c2a1f00"
ADMIN_USER_ID = "0a4d2f6e8b1c4e3a9d5f7b2c6e8a0d11"
HEAD_HOST = "openstack.internal"
TOKEN_LIFETIME = 24 * 3600
DEFAULT_QUOTA = {"instances": 10, "cores": 20, "ram": 51200}
# What every simulated hypervisor reports to Placement (README of tests/simcluster).
DEFAULT_INVENTORY = {
    "VCPU": {"total": 8, "reserved": 0, "allocation_ratio": 2.0},
    "MEMORY_MB": {"total": 16384, "reserved": 512, "allocation_ratio": 1.0},
    "DISK_GB": {"total": 400, "reserved": 0, "allocation_ratio": 1.0},
}
FLAVORS = [  # id, name, vcpus, ram MB, disk GB
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("10", "ali1.xlarge", 4, 4096, 40),
]
KEYPAIRS = {
    "WorkerNodesSsh": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhsdGNsb3VkLXNpbXVsYXRlZC13b3JrZXJub2Rlcw "
                      "WorkerNodesSsh",
}
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
# Hostile mode, "names" (README): what anyone may put into a name or a message of the cloud.
HOSTILE_MARKER = "hostile-ran"  # in the state dir: a `$(...)` of a name was run
HOSTILE_ERROR = " \033]0;owned by the cloud\007\033[2J\r\n[ OK ] forged by an error text"
HOSTILE_FLAVOR_ID = "666"
NETWORK = ipaddress.ip_network("10.0.0.0/16")


def now_iso(t=None, micro=False):
    t = time.time() if t is None else t
    fmt = "%Y-%m-%dT%H:%M:%S"
    text = time.strftime(fmt, time.gmtime(t))
    return text + (".%06d" % int((t % 1) * 1e6) if micro else "") + ("" if micro else "Z")


def virtual_size(path, disk_format, size):
    """The disk size a VM sees: from the qcow2 header (bytes 24..32), the file size for raw."""
    if disk_format == "raw":
        return size
    if disk_format == "qcow2":
        with open(path, "rb") as handle:
            header = handle.read(32)
        if len(header) == 32 and header[:4] == b"QFI\xfb":
            return int.from_bytes(header[24:32], "big")
    return None


class ApiError(Exception):
    """An error answer: HTTP status and message (the HTTP layer wraps it per service)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Host:
    def __init__(self, name, virtual, index, inventory=None):
        self.name = name
        self.virtual = virtual
        self.index = index  # integer id for microversions < 2.53
        self.service_id = str(uuid.uuid4())
        self.uuid = str(uuid.uuid4())  # hypervisor id >= 2.53 and resource provider uuid
        self.inventory = {rc: dict(v) for rc, v in DEFAULT_INVENTORY.items()}
        for rc, total in (inventory or {}).items():
            self.inventory[rc]["total"] = int(total)
        self.generation = 1
        self.last_beat = None  # monotonic time of the agent's last heartbeat
        self.beat_wall = None
        self.reset()

    def reset(self):
        self.enabled = True
        self.disabled_reason = None
        self.forced_down = False  # set and cleared only through the API, as in Nova
        self.vms = {}  # id -> VM placed here (allocations held)
        self.used = {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
        self.want_create = {}  # id -> VM the agent has to create
        self.want_remove = set()  # ids the agent has to remove

    def capacity(self, rc):
        inv = self.inventory[rc]
        return (inv["total"] - inv["reserved"]) * inv["allocation_ratio"]


class Cloud:
    def __init__(self, state_dir, password, down_time=5.0):
        self.lock = threading.RLock()
        # Notified when a host gets work: its agent's waiting heartbeat answers at once, as
        # Nova's compute gets a delete by RPC at once (no agent's tick between).
        self.work = threading.Condition(self.lock)
        self.state_dir = state_dir
        self.store_dir = os.path.join(state_dir, "glance", "images")
        os.makedirs(self.store_dir, exist_ok=True)
        self.password = password
        self.down_time = down_time
        self.tokens = {}  # token -> expiry (wall time)
        self.hosts = {}  # name -> Host, in the order added
        self.hosts_by_uuid = {}
        self.hosts_by_service = {}
        self.host_count = 0  # integer hypervisor/service ids (< 2.53) are never reused
        self.images = {}  # id -> image dict
        self.flavors = {f[0]: {"id": f[0], "name": f[1], "vcpus": f[2], "ram": f[3], "disk": f[4]}
                        for f in FLAVORS}
        self.started = time.time()
        self.head_service_ids = {b: str(uuid.uuid4()) for b in ("nova-conductor", "nova-scheduler")}
        self.requests = []
        self.instance_counter = 0  # never reset: instance names are not reused
        self.hostile_images = []  # ids of the images hostile mode added
        self.reset()

    # ----- whole-cloud control
    def reset(self):
        """Back to the initial cloud. Virtual hosts go too: a test adds its own, and the next
        test must not find them (node-backed hosts stay, with their agents' heartbeats).
        Hostile mode ends, and what it added goes."""
        self.hostile = {}  # PUT /sim/hostile: a plain dict, each key a behaviour (README)
        self._drop_hostile_names()
        for host in [h for h in self.hosts.values() if h.virtual]:
            self._drop_host(host)
        self.vms = {}  # id -> VM dict, in creation order (dicts keep insertion order)
        self.quota = dict(DEFAULT_QUOTA)
        self.used_ips = set()
        self.next_ip = 2
        self.deleted_seq = {}  # id -> creation number of deleted VMs: still valid paging markers
        self.requests = []
        self.fail_next_boots = 0  # /sim/fail-next-boots: requests to fail as if capacity was taken
        self.delete_delay = 0.0  # /sim/delete-delay: seconds a node-backed compute takes a delete
        self.placement_max = None  # /sim/placement-max: (1, n), an older Placement; None: newest
        self.app_credentials = {}  # id -> {"id", "name", "secret", "user_id"} (Keystone's)
        for host in self.hosts.values():
            host.reset()
            host.generation += 1

    def add_hosts(self, names, virtual=False, inventory=None):
        added = []
        for name in names:
            if name in self.hosts:
                continue
            self.host_count += 1
            host = Host(name, bool(virtual), self.host_count, inventory)
            self.hosts[name] = host
            self.hosts_by_uuid[host.uuid] = host
            self.hosts_by_service[host.service_id] = host
            added.append(name)
        return added

    # ----- hostile mode
    def hostile_names(self):
        """The names hostile mode serves: command substitutions (run, they would create
        HOSTILE_MARKER in the state dir), terminal escapes (window title, clear screen), a
        line break that starts a forged status line, 300 characters."""
        marker = os.path.join(self.state_dir, HOSTILE_MARKER)
        return [f"cn$(touch {marker})", f"cn`touch {marker}`",
                "cn\033]0;owned\007\033[2J", "cn\r\n[ OK ] forged line", "cn" + "9" * 298]

    def set_hostile(self, changes):
        """Merge CHANGES into self.hostile. "names" true: a virtual compute host, an image
        and an ACTIVE VM (named wn-grid-<name>, on that host) for each hostile name, a
        queued image and a flavor with them, and every error message and VM fault ending in
        HOSTILE_ERROR."""
        names = changes.get("names", self.hostile.get("names", False))
        if not isinstance(names, bool):
            raise ApiError(400, "names must be true or false")
        was = self.hostile.get("names", False)
        self.hostile.update(changes)
        if names and not was:
            self._add_hostile_names()
        elif was and not names:
            self._drop_hostile_names()

    def error_suffix(self):
        return HOSTILE_ERROR if self.hostile.get("names") else ""

    def _add_hostile_names(self):
        names = self.hostile_names()
        self.add_hosts(names, virtual=True)
        flavor = {"id": HOSTILE_FLAVOR_ID, "name": "m1.\033]0;owned\007\n[ OK ] flavor",
                  "vcpus": 1, "ram": 512, "disk": 1}
        self.flavors[flavor["id"]] = flavor
        for name in names:
            self.boot(f"wn-grid-{name}", flavor, None, None, None, "none", 1, 1,
                      only_host=name, forced=True)
            image_id = str(uuid.uuid4())
            with open(os.path.join(self.store_dir, image_id), "wb") as handle:
                handle.write(b"\0" * 512)
            self.add_image(f"img-{name}", None, "raw", image_id)
            self.hostile_images.append(image_id)
        queued = self.add_image(f"img-queued-{names[2]}{names[3]}", None, "raw", status="queued")
        self.hostile_images.append(queued["id"])

    def _drop_hostile_names(self):
        """Remove what _add_hostile_names added: hosts, their VMs, images and the flavor."""
        self.flavors.pop(HOSTILE_FLAVOR_ID, None)
        for image_id in self.hostile_images:
            self.images.pop(image_id, None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.store_dir, image_id))
        self.hostile_images = []
        names = set(self.hostile_names())
        for host in [h for h in self.hosts.values() if h.virtual and h.name in names]:
            for vm in list(host.vms.values()):
                self._forget(vm)
            self._drop_host(host)

    def _drop_host(self, host):
        del self.hosts[host.name]
        del self.hosts_by_uuid[host.uuid]
        del self.hosts_by_service[host.service_id]

    # ----- identity
    def issue_token(self):
        token = "gAAAA" + secrets.token_urlsafe(48)
        expiry = time.time() + TOKEN_LIFETIME
        self.tokens[token] = expiry
        return token, expiry

    def token_valid(self, token):
        expiry = self.tokens.get(token or "")
        return expiry is not None and expiry > time.time()

    # ----- services
    def is_up(self, host, now=None):
        if host.forced_down:  # Nova: down whatever the heartbeats say
            return False
        if host.virtual:
            return True
        if host.last_beat is None:
            return False
        now = time.monotonic() if now is None else now
        return now - host.last_beat <= self.down_time

    def set_service(self, host, enabled, reason=None):
        host.enabled = enabled
        host.disabled_reason = None if enabled else reason

    # ----- servers
    def flavor(self, ref):
        flavor = self.flavors.get(str(ref))
        if flavor is None:
            for candidate in self.flavors.values():  # flavorRef may be a link or a name-less id
                if str(ref).rstrip("/").endswith("/" + candidate["id"]):
                    return candidate
        return flavor

    def usage(self):
        cores = ram = 0
        for vm in self.vms.values():
            cores += vm["flavor"]["vcpus"]
            ram += vm["flavor"]["ram"]
        return {"instances": len(self.vms), "cores": cores, "ram": ram}

    def allowed_count(self, flavor, min_count, max_count):
        """Nova's check_num_instances_quota: as many as the quota allows between min and max
        count, else 403 with Nova's TooManyInstances text (overs judged at max_count)."""
        used = self.usage()
        per_vm = {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]}
        limited = [res for res in per_vm if self.quota[res] >= 0]
        overs = [res for res in limited if used[res] + per_vm[res] * max_count > self.quota[res]]
        if not overs:
            return max_count
        allowed = min((self.quota[res] - used[res]) // per_vm[res] for res in limited)
        if 0 < allowed and min_count <= allowed <= max_count:
            return allowed
        requested = {"instances": str(min_count) if min_count == max_count else
                     f"{min_count}-{max_count}",
                     "cores": max_count * per_vm["cores"], "ram": max_count * per_vm["ram"]}

        def join(values):
            return ", ".join(str(v) for v in values)
        raise ApiError(403, "Quota exceeded for %s: Requested %s, but already used %s of %s %s" % (
            join(overs), join(requested[r] for r in overs), join(used[r] for r in overs),
            join(self.quota[r] for r in overs), join(overs)))

    def schedule(self, flavor, count, only_host=None, forced=False):
        """All or nothing: a host for each VM of the request (most free RAM first), or None.
        only_host: the one candidate (2.74 "host", or a forced "zone:host" that, as in Nova,
        bypasses the filters: disabled or down does not matter, capacity still does)."""
        need = {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram"], "DISK_GB": flavor["disk"]}
        mono = time.monotonic()
        heap = []
        for order, host in enumerate(self.hosts.values()):
            if only_host is not None and host.name != only_host:
                continue
            if forced or (host.enabled and self.is_up(host, mono)):
                free_ram = host.capacity("MEMORY_MB") - host.used["MEMORY_MB"]
                heap.append((-free_ram, order, host))
        heapq.heapify(heap)
        planned = {}  # host name -> extra usage planned by this request
        placement = []
        while len(placement) < count:
            while heap:
                neg_free, order, host = heapq.heappop(heap)
                extra = planned.setdefault(host.name, {rc: 0 for rc in need})
                if all(host.used[rc] + extra[rc] + need[rc] <= host.capacity(rc) for rc in need):
                    for rc in need:
                        extra[rc] += need[rc]
                    placement.append(host)
                    heapq.heappush(heap, (neg_free + need["MEMORY_MB"], order, host))
                    break
                # does not fit now, and usage only grows during this request: drop it
            else:
                return None
        return placement

    def allocate_ip(self):
        size = NETWORK.num_addresses - 2
        for _ in range(size):
            n = self.next_ip
            self.next_ip = 2 if self.next_ip >= size else self.next_ip + 1
            if n not in self.used_ips:
                self.used_ips.add(n)
                return n
        return None

    def boot(self, name, flavor, image, key_name, user_data, networks, min_count, max_count,
             only_host=None, forced=False):
        count = self.allowed_count(flavor, min_count, max_count)
        placement = self.schedule(flavor, count, only_host, forced)
        if self.fail_next_boots > 0:  # the capacity was taken meanwhile: all of it in ERROR
            self.fail_next_boots -= 1
            placement = None
        reservation = "r-" + secrets.token_hex(4)
        zone = "nova" if placement is not None else None
        created = []
        now = time.time()
        for i in range(count):
            self.instance_counter += 1
            vm = {
                "id": str(uuid.uuid4()), "name": f"{name}-{i + 1}" if count > 1 else name,
                "instance_name": "instance-%08x" % self.instance_counter,
                "flavor": flavor, "image": image["id"] if image else "", "key_name": key_name,
                "user_data": user_data, "reservation_id": reservation, "created": now,
                "updated": now, "launched_at": None, "host": None, "task_state": None,
                "vm_state": "building", "power_state": 0, "fault": None, "ip": None,
                "launch_index": i, "stuck": False, "seq": self.instance_counter,
                "zone": zone,
            }
            if placement is None:
                vm["vm_state"] = "error"
                vm["fault"] = {"code": 500, "created": now_iso(now),
                               "message": NO_VALID_HOST + self.error_suffix()}
            else:
                host = placement[i]
                vm["host"] = host.name
                vm["task_state"] = "spawning"
                if networks != "none":
                    vm["ip"] = self.allocate_ip()
                host.vms[vm["id"]] = vm
                for rc, amount in (("VCPU", flavor["vcpus"]), ("MEMORY_MB", flavor["ram"]),
                                   ("DISK_GB", flavor["disk"])):
                    host.used[rc] += amount
                host.generation += 1
                if host.virtual:
                    self._mark_active(vm)
                else:
                    host.want_create[vm["id"]] = vm
                    self.work.notify_all()
            self.vms[vm["id"]] = vm
            created.append(vm)
        return created, reservation

    def _mark_active(self, vm):
        vm.update(vm_state="active", task_state=None, power_state=1, launched_at=time.time(),
                  updated=time.time())

    def _forget(self, vm):
        """Drop the record and give back its allocations and address (the node dir is not ours)."""
        self.vms.pop(vm["id"], None)
        self.deleted_seq[vm["id"]] = vm["seq"]
        if vm["ip"] is not None:
            self.used_ips.discard(vm["ip"])
        host = self.hosts.get(vm["host"]) if vm["host"] else None
        if host and host.vms.pop(vm["id"], None) is not None:
            flavor = vm["flavor"]
            host.used["VCPU"] -= flavor["vcpus"]
            host.used["MEMORY_MB"] -= flavor["ram"]
            host.used["DISK_GB"] -= flavor["disk"]
            host.generation += 1
            host.want_create.pop(vm["id"], None)
            host.want_remove.discard(vm["id"])

    def delete(self, vm_id):
        vm = self.vms.get(vm_id)
        if vm is None:
            raise ApiError(404, f"Instance {vm_id} could not be found.")
        host = self.hosts.get(vm["host"]) if vm["host"] else None
        if host is None:  # never scheduled (ERROR): nothing on any node
            self._forget(vm)
            return
        if host.virtual and not vm["stuck"]:
            self._forget(vm)
            return
        if not self.is_up(host):
            # Local delete, as Nova does when the compute service is down: the record
            # goes, whatever the hypervisor still holds stays there (an orphan).
            self._forget(vm)
            return
        if vm["task_state"] == "deleting":
            return  # as Nova: a second delete of a VM being deleted changes nothing
        vm["task_state"] = "deleting"
        vm["updated"] = time.time()
        vm["delete_due"] = time.monotonic() + self.delete_delay
        host.want_create.pop(vm_id, None)
        if not vm["stuck"]:
            host.want_remove.add(vm_id)
            self.work.notify_all()

    def set_stuck(self, vm_id):
        vm = self.vms.get(vm_id)
        if vm is None:
            raise ApiError(404, f"Instance {vm_id} could not be found.")
        vm["stuck"] = True
        host = self.hosts.get(vm["host"]) if vm["host"] else None
        if host:
            host.want_remove.discard(vm_id)

    def reset_state(self, vm_id, state):
        """os-resetState: vm_state STATE (error or active), no task. A VM stuck deleting (its
        delete lost on the way to the compute) takes the next delete again."""
        if state not in ("error", "active"):
            raise ApiError(400, f"Invalid state: {state!r}")
        vm = self.vms[vm_id]
        vm.update(vm_state=state, task_state=None, stuck=False, updated=time.time())

    # ----- agents
    def has_work(self, name):
        host = self.hosts.get(name)
        return bool(host and (host.want_create or delete_delay.due_removals(host)))

    def heartbeat(self, name, created=(), removed=()):
        host = self.hosts.get(name)
        if host is None:
            raise ApiError(404, f"unknown host {name}")
        host.last_beat = time.monotonic()
        host.beat_wall = time.time()
        for vm_id in created:
            vm = host.want_create.pop(vm_id, None)
            if vm is not None and vm["vm_state"] == "building":
                self._mark_active(vm)
        for vm_id in removed:
            vm = host.vms.get(vm_id)
            if vm_id in host.want_remove and vm is not None:
                self._forget(vm)
        return {
            "create": [{"id": vm["id"], "name": vm["name"], "instance_name": vm["instance_name"],
                        "flavor": vm["flavor"]["name"], "vcpus": vm["flavor"]["vcpus"],
                        "memory_mb": vm["flavor"]["ram"], "image": vm["image"]}
                       for vm in host.want_create.values()],
            "remove": delete_delay.due_removals(host),
        }

    # ----- images
    def add_image(self, name, file, disk_format="qcow2", image_id=None, status="active",
                  container_format="bare"):
        image_id = image_id or str(uuid.uuid4())
        try:
            uuid.UUID(image_id)
        except ValueError:
            raise ApiError(400, f"image id {image_id!r} is not a UUID") from None
        target = os.path.join(self.store_dir, image_id)
        if file:
            source = file if os.path.isabs(file) else os.path.join(self.store_dir, file)
            if not os.path.isfile(source):
                raise ApiError(400, f"image file {source} does not exist")
            if os.path.realpath(source) != os.path.realpath(target):
                os.replace(source, target)  # the store keeps files by image id, as Glance does
        size = checksum = hash_value = None
        if os.path.isfile(target):
            md5, sha512 = hashlib.md5(), hashlib.sha512()
            size = 0
            with open(target, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    md5.update(chunk)
                    sha512.update(chunk)
                    size += len(chunk)
            checksum, hash_value = md5.hexdigest(), sha512.hexdigest()
        elif status == "active":
            raise ApiError(400, f"image file {target} does not exist")
        now = now_iso()
        image = {
            "id": image_id, "name": name, "status": status, "disk_format": disk_format,
            "container_format": container_format, "size": size,
            "virtual_size": virtual_size(target, disk_format, size) if size is not None else None,
            "checksum": checksum, "os_hash_algo": "sha512" if checksum else None,
            "os_hash_value": hash_value, "visibility": "public", "protected": False,
            "owner": ADMIN_PROJECT_ID, "min_disk": 0, "min_ram": 0, "tags": [],
            "created_at": now, "updated_at": now, "os_hidden": False,
            "file": f"/v2/images/{image_id}/file", "self": f"/v2/images/{image_id}",
            "schema": "/v2/schemas/image",
        }
        with self.lock:  # hashing above runs unlocked: a big image does not stall the cloud
            self.images[image_id] = image
        return dict(image)
