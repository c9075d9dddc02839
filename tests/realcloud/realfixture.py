"""The real cloud as a test object (RealCluster), for tests/realcloud/conftest.py.

Same shape as SimCluster (tests/simcluster/fixture.py) where it makes sense: names, state,
slot, head_addr, env, ssh_config, config_path, node_dir, ssh, service_running, run_tool,
add_image, reset. The nodes are the simulated cluster's (tests/simcluster/netnodes.py,
without the simulator); the cloud is tests/realcloud/realcloud.py; each node's configured
openstack-nova-compute is a real nova-compute (tests/realcloud/node-service).
"""
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(HERE), str(REPO / "tests" / "simcluster"), str(REPO / "lib")]
import netnodes  # noqa: E402
import realcloud  # noqa: E402
import fixture  # noqa: E402
from fixture import NodesCluster, empty_nova, write_image_file  # noqa: E402

COMPUTE = "openstack-nova-compute"
NODE_SERVICE = HERE / "node-service"
SLOT_WAIT = 180  # seconds to wait for a free slot
UP_TIMEOUT = 120  # seconds for all computes to report up after a (re)start
TOOLS = ["ssh", "ssh-keygen", "sshd", "ip", "unshare", "pdsh", "rsync", "qemu-img", "setpriv"]


def unavailable():
    """Why the real cloud cannot run here (one line), or None."""
    if os.environ.get("HLTREAL_SKIP"):
        return "real-cloud tests switched off (HLTREAL_SKIP is set)"
    return fixture.unavailable("real cloud", "network namespaces, private PostgreSQL/RabbitMQ",
                               TOOLS)


def ensure_installed():
    """`realcloud install` once (apt + venv, ~1-2 min); a no-op when already there."""
    if not realcloud.installed():
        realcloud.install()


class RealCluster(NodesCluster):
    TOOL_TIMEOUT = 300  # a real Nova is slower

    def __init__(self, layout, rc, lock_fd):
        self.layout = layout
        self.rc = rc
        self._lock_fd = lock_fd
        self.names = list(layout.names)
        self.state = layout.state  # the nodes' state dir; the cloud's is rc.state under it
        self.slot = layout.slot
        self.head_addr = layout.head_addr
        self.ssh_config = str(layout.ssh_config)
        self.config_path = str(rc.state / "hltcloud.conf")
        self.env = {**os.environ, **rc.env_vars()}
        self.timings = {}
        self.image_id = None

    # ------------------------------------------------------------ life cycle

    @classmethod
    def start(cls, count=None, wait=SLOT_WAIT):
        count = count or int(os.environ.get("HLTREAL_NODES", "3"))
        names = netnodes.default_names(count)
        deadline = time.monotonic() + wait
        t0 = time.monotonic()
        while True:
            for slot in netnodes.SLOTS:
                fd = netnodes.try_lock(slot)
                if fd is None:
                    continue
                try:
                    # A killed earlier session may have left its cloud running in this slot:
                    # netnodes' teardown knows nothing of it, so stop it first (by its pids).
                    for old in {netnodes.recorded_state(slot), netnodes.default_state(slot)}:
                        if (Path(old) / "realcloud" / "pids").exists():
                            realcloud.down(Path(old) / "realcloud", quiet=True)
                    layout = netnodes.up(slot, names, lock_fd=fd, with_simulator=False,
                                         log=lambda line: None)
                except BaseException:
                    os.close(fd)
                    raise
                try:
                    rc = realcloud.up(layout.state / "realcloud", slot, layout.head_addr,
                                      also_record=[layout.state / "pids"])
                    realcloud.write_site_config(rc, str(layout.ssh_config))
                    cluster = cls(layout, rc, fd)
                    cluster.timings["control plane"] = time.monotonic() - t0
                    cluster._populate()
                    cluster.start_computes()
                    cluster.timings["up"] = time.monotonic() - t0
                    return cluster
                except BaseException:
                    realcloud.down(layout.state / "realcloud", quiet=True)
                    netnodes.teardown_slot(slot, layout.state, quiet=True)
                    os.close(fd)
                    raise
            if time.monotonic() > deadline:
                raise netnodes.ClusterError(f"no free slot after {wait}s")
            time.sleep(1)

    def stop(self):
        realcloud.down(self.rc.state, quiet=True)
        netnodes.teardown_slot(self.slot, self.state, quiet=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _populate(self):
        """What the tools expect of the HLT cloud: flavor, key pair, image."""
        nova = self.nova()
        f = realcloud.FLAVOR
        nova.flavors.create(f["name"], f["ram"], f["vcpus"], f["disk"])
        key = self.rc.state / "wn-key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wn", "-f",
                        str(key)], check=True)
        nova.keypairs.create("WorkerNodesSsh", public_key=(key.with_suffix(".pub")).read_text())
        self.image_id = self.add_image("CentOS6-build13", size_mb=8)

    def reset(self):
        """Fresh cloud: every compute running, up and enabled, no servers, default quotas,
        other node daemons stopped, node directories emptied (the compute identity is kept
        outside them)."""
        nova = self.nova()
        for service in nova.services.list(binary="nova-compute"):
            if service.status != "enabled":
                nova.services.enable(service.id)
            if getattr(service, "forced_down", False):  # a disable leaves it so
                nova.services.force_down(service.id, False)
        self.start_computes()  # a forced-down compute is never seen up: cleared first
        self.delete_all_servers(nova)
        nova.quotas.delete(self.cloud().project_id)  # back to the defaults
        for name in self.names:
            for pid_file in (self.rc.node_dir(name)).glob("*.pid"):
                if pid_file.stem != COMPUTE:
                    self.node_service(name, pid_file.stem, "stop")
            empty_nova(self.node_dir(name))

    def delete_all_servers(self, nova=None, timeout=90):
        nova = nova or self.nova()
        for server in nova.servers.list(search_opts={"all_tenants": 1}):
            try:
                server.delete()
            except Exception:  # noqa: BLE001 (already gone)
                pass
        deadline = time.monotonic() + timeout
        while nova.servers.list(search_opts={"all_tenants": 1}):
            if time.monotonic() > deadline:
                raise TimeoutError("servers still there after reset")
            time.sleep(0.5)

    # ------------------------------------------------------------ nodes

    def node_service(self, name, service, action):
        return self.ssh(name, [str(NODE_SERVICE), "--state", str(self.rc.state), service, action],
                        timeout=30)

    def service_running(self, name, service):
        pid = netnodes.read_pid(self.rc.node_dir(name) / f"{service}.pid")
        return bool(pid) and netnodes.pid_alive(pid)

    def start_computes(self, names=None):
        """Start nova-compute where it is not running; wait until Nova sees each one up."""
        names = names or self.names
        todo = [n for n in names if not self.service_running(n, COMPUTE)]
        with ThreadPoolExecutor(max(1, len(todo))) as pool:
            results = list(pool.map(lambda n: self.node_service(n, COMPUTE, "start"), todo))
        for name, result in zip(todo, results):
            if result.returncode != 0:
                raise RuntimeError(f"starting nova-compute on {name}: {result.stderr.strip()}")
        self.wait_computes(names, "up")

    def wait_computes(self, names, state, timeout=UP_TIMEOUT):
        """Wait until Nova reports every compute of NAMES in STATE (up/down), hypervisors
        discovered into the cell."""
        nova = self.nova()
        deadline = time.monotonic() + timeout
        while True:
            services = {s.host: s for s in nova.services.list(binary="nova-compute")}
            hypervisors = {h.hypervisor_hostname for h in nova.hypervisors.list()}
            if all(n in services and services[n].state == state and n in hypervisors
                   for n in names):
                return
            if time.monotonic() > deadline:
                seen = {n: services[n].state if n in services else "absent" for n in names}
                raise TimeoutError(f"computes not {state} after {timeout}s: {seen}")
            time.sleep(0.5)

    # ------------------------------------------------------------ cloud

    def cloud(self):
        from hltcloud.cloud.session import Cloud
        return Cloud(self.env)

    def nova(self):
        import helpers
        return helpers.novaclient(self.cloud())

    def add_image(self, name, size_mb=8, fmt="qcow2", image_id=None):
        """A real image file (SIZE_MB of random data, in FMT) uploaded through Glance."""
        work = self.rc.state / f"upload-{uuid.uuid4()}"
        write_image_file(work, size_mb, fmt)
        try:
            glance = self.cloud().glance()
            body = {"name": name, "disk_format": fmt, "container_format": "bare",
                    "visibility": "public"}
            if image_id:
                body["id"] = image_id
            image = glance.post("/v2/images", json=body).json()
            with open(work, "rb") as data:
                glance.put(f"/v2/images/{image['id']}/file", data=data,
                           headers={"Content-Type": "application/octet-stream"})
            return image["id"]
        finally:
            work.unlink(missing_ok=True)

    def access_log(self, app="nova"):
        """Lines "<time> <METHOD> <path> <status>" of every request the app answered."""
        path = self.rc.state / "log" / f"{app}-access.log"
        return path.read_text().splitlines() if path.exists() else []
