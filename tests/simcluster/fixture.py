"""The simulated cluster as a test object (SimCluster), for tests/conftest.py.

API: /work/notes/fixture-api.md and tests/simcluster/README.md. One cluster per test
session in the first free slot; `reset()` gives each test a fresh cloud cheaply.
"""
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import netnodes
from netnodes import ClusterError

REPO = netnodes.REPO
TOOLS = ["ssh", "ssh-keygen", "sshd", "ip", "tc", "unshare", "pdsh", "rsync", "qemu-img"]
# Seconds to wait for a free slot when all four are taken (several developers' test runs).
SLOT_WAIT = int(os.environ.get("HLTSIM_SLOT_WAIT", "300"))


class SimError(Exception):
    """A /sim control request failed."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status


def unavailable(what="simulated cluster", root_for="network namespaces, sshd", tools=TOOLS):
    """Why WHAT cannot run here (one line), or None: it needs root (ROOT_FOR) and TOOLS."""
    if os.geteuid() != 0:
        return f"{what} needs root ({root_for})"
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in tools if not shutil.which(t, path=path)]
    if missing:
        return f"{what} needs {', '.join(missing)} (make deps)"
    return None


class NodesCluster:
    """What the simulated and the real cloud's test objects share: the namespaced nodes."""
    TOOL_TIMEOUT = 120  # seconds for one run_tool

    def node_dir(self, name):
        self.layout.index(name)  # unknown names fail loudly
        return self.layout.nova_dir(name)

    def ssh(self, name, argv, timeout=15):
        """Run ARGV (list; each word stays one word) on node NAME through the ssh config."""
        remote = argv if isinstance(argv, str) else shlex.join(argv)
        return subprocess.run(["ssh", "-F", self.ssh_config, name, "--", remote],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def connections(self, name):
        """How many connections node NAME has accepted so far (ssh: its only listener)."""
        return netnodes.tcp_passive_opens(self.layout, name)

    def run_tool(self, tool, *args, timeout=None, stdin=None):
        return subprocess.run([str(REPO / "bin" / tool), *args], env=self.env,
                              capture_output=True, text=True,
                              timeout=timeout or self.TOOL_TIMEOUT, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)


@contextlib.contextmanager
def bench_cluster(what, **start):
    """A SimCluster.start(**START) for a benchmark, stopped at the end; None (after printing
    why, as "WHAT: skipped (...)") where one cannot run here."""
    reason = unavailable()
    if reason:
        print(f"{what}: skipped ({reason})")
        yield None
        return
    cluster = SimCluster.start(**start)
    try:
        yield cluster
    finally:
        cluster.stop()


class SimCluster(NodesCluster):
    def __init__(self, layout, lock_fd=None):
        self.layout = layout
        self._lock_fd = lock_fd
        self.names = list(layout.names)
        self.state = layout.state
        self.slot = layout.slot
        self.head_addr = layout.head_addr
        self.port = layout.port
        self.sim_url = layout.sim_url
        self.ssh_config = str(layout.ssh_config)
        self.config_path = str(layout.config_path)
        self.env = {**os.environ, **layout.env_vars()}

    # ------------------------------------------------------------ life cycle

    @classmethod
    def start(cls, count=None, names=None, with_simulator=True, wait=SLOT_WAIT):
        """Bring a cluster up in the first free slot (waiting up to WAIT s for one)."""
        if names is None:
            count = count or int(os.environ.get("HLTSIM_NODES", "6"))
            names = netnodes.default_names(count)
        if os.environ.get("HLTSIM_NO_SIMULATOR"):
            with_simulator = False
        netnodes.clean_stale_slots()
        deadline = time.monotonic() + wait
        while True:
            for slot in netnodes.SLOTS:
                fd = netnodes.try_lock(slot)
                if fd is None:
                    continue
                try:
                    layout = netnodes.up(slot, names, lock_fd=fd, with_simulator=with_simulator,
                                         log=lambda line: None)
                except BaseException:
                    os.close(fd)
                    raise
                return cls(layout, fd)
            if time.monotonic() > deadline:
                raise ClusterError(f"no free slot among {list(netnodes.SLOTS)} "
                                   f"after {wait}s (see /run/hltsim-*.lock)")
            time.sleep(1)

    def stop(self):
        """Tear everything down (by the recorded pids and the slot's names)."""
        netnodes.teardown_slot(self.slot, self.state, quiet=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def has_simulator(self):
        return netnodes.simulator_running(self.layout)

    def reset(self):
        """Fresh state: links healed, node daemons stopped, node dirs emptied, cloud reset."""
        netnodes.heal_all(self.layout)
        self.stop_node_daemons()
        for name in self.names:
            empty_nova(self.node_dir(name))
        if self.has_simulator:
            self.sim("POST", "/sim/reset")

    def stop_node_daemons(self):
        pidfiles = [p for name in self.names for p in self.layout.run_dir(name).glob("*.pid")]
        netnodes.kill_pids([netnodes.read_pid(p) for p in pidfiles])
        for pidfile in pidfiles:
            pidfile.unlink(missing_ok=True)

    # ------------------------------------------------------------ nodes

    def node_service(self, name, service, action):
        """Run the node's service script (tests/simcluster/node-service) on node NAME."""
        return self.ssh(name, [str(netnodes.NODE_SERVICE), service, action])

    def service_running(self, name, service):
        pid = netnodes.read_pid(self.layout.run_dir(name) / f"{service}.pid")
        return bool(pid) and netnodes.pid_alive(pid)

    def fault(self, name, kind):
        netnodes.fault(self.layout, name, kind)

    def shape(self, name, rate):
        netnodes.shape(self.layout, name, rate)

    # ------------------------------------------------------------ cloud

    def sim(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.sim_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            raise SimError(err.code, err.read().decode(errors="replace").strip()) from None
        return json.loads(text) if text.strip() else None

    def add_image(self, name, size_mb=8, fmt="qcow2", image_id=None):
        """A real image file (SIZE_MB of random data, in FMT) registered in Glance."""
        image_id = image_id or str(uuid.uuid4())
        store = self.state / "glance" / "images"
        write_image_file(store / image_id, size_mb, fmt)
        return self._register_image(name, image_id, fmt)

    def add_image_file(self, name, path, disk_format):
        """The file PATH, whatever its bytes (a hostile image too), uploaded as DISK_FORMAT."""
        image_id = str(uuid.uuid4())
        shutil.copyfile(path, self.state / "glance" / "images" / image_id)
        return self._register_image(name, image_id, disk_format)

    def _register_image(self, name, image_id, disk_format):
        answer = self.sim("POST", "/sim/images", {"name": name, "id": image_id,
                                                  "file": image_id, "disk_format": disk_format})
        return (answer or {}).get("id", image_id)

def write_image_file(path, size_mb, fmt):
    """A real image file at PATH: SIZE_MB of random data (it really is that much to copy), in FMT."""
    raw = path.with_name(f".{path.name}.raw")
    with open(raw, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1 << 20))
    try:
        if fmt == "raw":
            raw.rename(path)
        else:
            subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(path)],
                           check=True, capture_output=True)
    finally:
        raw.unlink(missing_ok=True)


def empty_nova(nova):
    """Leave only the skeleton instances/ and instances/_base/, both empty."""
    nova.mkdir(parents=True, exist_ok=True)
    for entry in nova.iterdir():
        if entry.name != "instances":
            _remove(entry)
    instances = nova / "instances"
    instances.mkdir(exist_ok=True)
    for entry in instances.iterdir():
        if entry.name != "_base":
            _remove(entry)
    base = instances / "_base"
    base.mkdir(exist_ok=True)
    for entry in base.iterdir():
        _remove(entry)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
