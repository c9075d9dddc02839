#!/usr/bin/env python3
"""Benchmarks of openstack-hlt-manage, printed side by side (nothing asserted).

1. `status --nvms` at 50 hypervisors / 1,000 VMs and at 500 hypervisors / 10,000 VMs
   (virtual hosts of a standalone simulator on loopback): API requests and wall time.
2. `--for-real --parallel disable` of 16 nodes against `--for-real disable` of one node on
   the simulated cluster (needs root; skipped with a reason otherwise): wall time ratio and
   Keystone authentications.
"""
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOL = str(REPO / "bin" / "openstack-hlt-manage")
SIMULATOR = REPO / "tests" / "simcluster" / "simulator.py"
RUNS = 3


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandaloneSim:
    """The simulator alone on 127.0.0.1 (no nodes): enough for status at scale."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="bench-manage-")
        state = Path(self.dir.name)
        password = secrets.token_urlsafe(16)
        (state / "admin-password").write_text(password)
        os.chmod(state / "admin-password", 0o600)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(state / "simulator.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(SIMULATOR), "--state", str(state),
                                      "--listen", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.env = {**os.environ, "OS_AUTH_URL": f"{self.url}/identity/v3", "OS_USERNAME": "admin",
                    "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin",
                    "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                    "HLTCLOUD_CONFIG": str(state / "hltcloud.conf")}
        (state / "hltcloud.conf").write_text("[runvms]\nuser_data =\n")
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sim("GET", "/sim/health")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("bench: the simulator did not start")
                time.sleep(0.2)

    def sim(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            text = resp.read().decode()
        return json.loads(text) if text.strip() else None

    def requests(self):
        log = self.sim("GET", "/sim/requests")
        return log["requests"] if isinstance(log, dict) else log

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.dir.cleanup()


def _boot(sim, count):
    """COUNT m1.tiny VMs in one request, with novaclient as an operator would."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3
    from novaclient import client
    env = sim.env
    sess = session.Session(auth=v3.Password(
        auth_url=env["OS_AUTH_URL"], username="admin", password=env["OS_PASSWORD"],
        project_name="admin", user_domain_name="Default", project_domain_name="Default"))
    nova = client.Client("2.60", session=sess)
    image_dir = Path(sim.dir.name) / "glance" / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    (image_dir / "bench-image").write_bytes(b"\0" * 4096)
    image = sim.sim("POST", "/sim/images", {"name": "bench", "file": "bench-image",
                                            "disk_format": "raw"})["id"]
    nova.servers.create("wn-grid", image, nova.flavors.find(name="m1.tiny"), min_count=count,
                        max_count=count, nics="auto")


def bench_status(hosts, vms):
    sim = StandaloneSim()
    try:
        names = [f"hv{i:04d}.internal" for i in range(1, hosts + 1)]
        sim.sim("POST", "/sim/hosts", {"names": names, "virtual": True,
                                       "inventory": {"VCPU": 64, "MEMORY_MB": 65536, "DISK_GB": 4000}})
        sim.sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
        _boot(sim, vms)
        times, counts = [], []
        for _ in range(RUNS):
            sim.sim("DELETE", "/sim/requests")
            start = time.monotonic()
            done = subprocess.run([TOOL, "--nvms", "status"], env=sim.env, capture_output=True,
                                  text=True, timeout=600)
            times.append(time.monotonic() - start)
            if done.returncode != 0:
                raise SystemExit(f"bench: status failed: {done.stderr.strip()}")
            rows = sum(1 for line in done.stdout.splitlines() if line.startswith("| hv"))
            nvms = sum(int(line.split("|")[4]) for line in done.stdout.splitlines()
                       if line.startswith("| hv"))
            log = [r for r in sim.requests() if r["service"] != "sim"]
            counts.append(len(log))
        assert rows == hosts and nvms == vms, (rows, nvms)
        return {"hosts": hosts, "vms": vms, "requests": counts[-1],
                "by_service": _by_service(log), "best": min(times), "median": sorted(times)[RUNS // 2]}
    finally:
        sim.close()


def _by_service(log):
    out = {}
    for entry in log:
        out[entry["service"]] = out.get(entry["service"], 0) + 1
    return out


def part_status():
    runs = [bench_status(50, 1000), bench_status(500, 1000), bench_status(500, 10000)]
    labels = [f"{r['hosts']} hv / {r['vms']:,} VMs" for r in runs]
    print("status --nvms (standalone simulator, virtual hypervisors)")
    print(f"{'':24}" + "".join(f"{label:>22}" for label in labels))
    print(f"{'API requests':24}" + "".join(f"{r['requests']:>22}" for r in runs))
    print(f"{'  by service':24}" + "".join(
        f"{' '.join(f'{k}={v}' for k, v in sorted(r['by_service'].items())):>22}" for r in runs))
    print(f"{'wall time, best (s)':24}" + "".join(f"{r['best']:>22.2f}" for r in runs))
    print(f"{'wall time, median (s)':24}" + "".join(f"{r['median']:>22.2f}" for r in runs))
    print(f"{'ratio to the first':24}" + "".join(f"{r['best'] / runs[0]['best']:>21.2f}x" for r in runs))
    print("  (hosts x10: same requests; VMs x10: one more request a page of 1,000 servers)")


def part_parallel():
    sys.path.insert(0, str(REPO / "tests" / "simcluster"))
    sys.path.insert(0, str(REPO / "lib"))
    import fixture
    reason = fixture.unavailable()
    if reason:
        print(f"parallel disable: skipped ({reason})")
        return
    cluster = fixture.SimCluster.start(count=16)
    try:
        cluster.reset()
        cluster.add_image("CentOS6-build13", size_mb=1)  # the configured runvms image
        results = {}
        for label, switches, hosts in (("1 node, sequential", [], cluster.names[:1]),
                                       ("16 nodes, --parallel", ["--parallel"], cluster.names)):
            cluster.reset()
            cluster.sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
            up = cluster.run_tool("openstack-hlt-manage", "--for-real", "--parallel", "enable",
                                  *hosts, timeout=300)
            if up.returncode != 0:
                raise SystemExit(f"bench: enable failed: {up.stdout[-500:]}")
            _wait_up(cluster, hosts)
            fill = cluster.run_tool("openstack-hlt-manage", "--for-real", "--vm-timeout", "120",
                                    "runvms", timeout=300)
            if fill.returncode != 0:
                raise SystemExit(f"bench: runvms failed: {fill.stdout[-500:]}")
            vms = len(cluster.sim("GET", "/sim/servers")["servers"])
            cluster.sim("DELETE", "/sim/requests")
            start = time.monotonic()
            done = cluster.run_tool("openstack-hlt-manage", "--for-real", "--vm-timeout", "120",
                                    *switches, "disable", *hosts, timeout=600)
            wall = time.monotonic() - start
            if done.returncode != 0:
                raise SystemExit(f"bench: disable failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
            log = cluster.sim("GET", "/sim/requests")
            log = log["requests"] if isinstance(log, dict) else log
            auths = sum(1 for r in log if r["service"] == "identity" and r["method"] == "POST")
            results[label] = (len(hosts), vms, wall, auths)
        one, many = results["1 node, sequential"], results["16 nodes, --parallel"]
        print("--for-real disable (simulated cluster, real ssh nodes)")
        print(f"{'':24}{'1 node':>14}{'16 nodes --parallel':>22}{'ratio':>8}")
        print(f"{'VMs deleted':24}{one[1]:>14}{many[1]:>22}")
        print(f"{'wall time (s)':24}{one[2]:>14.2f}{many[2]:>22.2f}{many[2] / one[2]:>8.2f}")
        print(f"{'Keystone authentications':24}{one[3]:>14}{many[3]:>22}")
    finally:
        cluster.stop()


def _wait_up(cluster, names, timeout=60):
    """Exactly NAMES up (computes stopped by a reset stay "up" for the service down time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = cluster.sim("GET", "/sim/hosts")["hosts"]
        if {h["name"] for h in hosts if h.get("up")} == set(names):
            return
        time.sleep(0.5)
    raise SystemExit(f"bench: hosts not up: {names}")


if __name__ == "__main__":
    part_status()
    print()
    part_parallel()
