#!/usr/bin/env python3
"""Benchmark of the OpenStack simulator at scale (nothing asserted, figures printed).

A standalone simulator on loopback with 500 virtual hypervisors and 10,000 VMs; through the
real python-novaclient (hltcloud.cloud.Cloud, microversion 2.60) it times:
  - `nova service-list` (GET /os-services),
  - hypervisor listing with servers (GET /os-hypervisors?hypervisor_hostname_pattern=&with_servers),
  - servers detail with all_tenants, every page (Nova pages by 1000),
and prints the wall time, the number of API requests (from /sim/requests) and the time per
hypervisor or per VM, best of RUNS.
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
sys.path.insert(0, str(REPO / "lib"))
from hltcloud.cloud import Cloud  # noqa: E402

SIMULATOR = REPO / "tests" / "simcluster" / "simulator.py"
HOSTS, VMS, BATCH, RUNS = 500, 10_000, 1000, 3


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def control(url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def measure(url, action):
    """Best wall time of RUNS runs, and the API requests one run made."""
    best, count = None, 0
    for _ in range(RUNS):
        control(url, "DELETE", "/sim/requests")
        started = time.perf_counter()
        result = action()
        elapsed = time.perf_counter() - started
        count = len(control(url, "GET", "/sim/requests")["requests"])
        best = elapsed if best is None else min(best, elapsed)
    return best, count, result


def main():
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as state:
        password = secrets.token_urlsafe(16)
        Path(state, "admin-password").write_text(password)
        os.chmod(Path(state, "admin-password"), 0o600)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(state, "simulator.log"), "wb")
        proc = subprocess.Popen([sys.executable, str(SIMULATOR), "--state", state, "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    control(url, "GET", "/sim/health")
                    break
                except OSError:
                    time.sleep(0.1)
            run(url, state, password)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


def run(url, state, password):
    names = [f"hv{i:04d}.internal" for i in range(1, HOSTS + 1)]
    # Twice the default inventory, so that 20 m1.tiny VMs a host fit (VCPU 16 x 2.0).
    control(url, "POST", "/sim/hosts", {"names": names, "virtual": True,
                                        "inventory": {"VCPU": 16, "MEMORY_MB": 32768}})
    control(url, "POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
    store = Path(state, "glance", "images")
    store.mkdir(parents=True, exist_ok=True)
    Path(store, "bench.img").write_bytes(b"\0" * 65536)
    image = control(url, "POST", "/sim/images", {"name": "bench", "file": "bench.img"})["id"]
    env = {"OS_AUTH_URL": f"{url}/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": password,
           "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default"}
    cloud = Cloud(env)
    nova = cloud.nova()
    flavor = nova.flavors.find(name="m1.tiny")
    started = time.perf_counter()
    for _ in range(VMS // BATCH):
        nova.servers.create("wn-grid", image, flavor, min_count=BATCH, max_count=BATCH, nics="auto")
    boot_time = time.perf_counter() - started

    print(f"simulator at {HOSTS} hypervisors, {VMS} VMs (boot of {VMS // BATCH} x {BATCH} VMs: "
          f"{boot_time:.2f} s)")
    print(f"{'operation':<44} {'time':>9} {'requests':>9} {'items':>7} {'per item':>10}")
    cases = [
        ("nova service-list", lambda: len(nova.services.list())),
        ("hypervisors with servers (items: servers)",
         lambda: sum(len(getattr(h, "servers", [])) for h in nova.hypervisors.search("", servers=True))),
        ("hypervisors detail", lambda: len(nova.hypervisors.list())),
        ("servers detail all_tenants, all pages",
         lambda: len(nova.servers.list(search_opts={"all_tenants": True}, limit=-1))),
        ("servers detail all_tenants host=hv0001",
         lambda: len(nova.servers.list(search_opts={"all_tenants": True, "host": names[0]}, limit=-1))),
    ]
    for label, action in cases:
        elapsed, requests, items = measure(url, action)
        print(f"{label:<44} {elapsed:8.3f}s {requests:9d} {items:7d} {elapsed / max(items, 1) * 1e6:8.1f}us")


if __name__ == "__main__":
    main()
