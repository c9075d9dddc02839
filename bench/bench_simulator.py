#!/usr/bin/env python3
"""Benchmark of the OpenStack simulator at scale (nothing asserted, figures printed).

A standalone simulator on loopback with 50 virtual hypervisors / 1,000 VMs, then another with
500 / 10,000; through the real python-novaclient (hltcloud.cloud.session.Cloud, microversion 2.60)
it times:
  - `nova service-list` (GET /os-services),
  - hypervisor listing with servers (GET /os-hypervisors?hypervisor_hostname_pattern=&with_servers),
  - servers detail with all_tenants, every page (Nova pages by 1000),
and prints, side by side, the wall time and the number of API requests (from /sim/requests)
at both scales, best of RUNS, and the time ratio (10 for linear growth).
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
from hltcloud.cloud.session import Cloud  # noqa: E402

SIMULATOR = REPO / "tests" / "simcluster" / "simulator.py"
SCALES = [(50, 1_000), (500, 10_000)]  # (hypervisors, VMs)
BATCH, RUNS = 1000, 3


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
        count = len(control(url, "GET", "/sim/requests"))
        best = elapsed if best is None else min(best, elapsed)
    return best, count, result


def main():
    results = [one_scale(hosts, vms) for hosts, vms in SCALES]
    (h1, v1), (h2, v2) = SCALES
    print(f"{'operation':<42} | {f'{h1} hv / {v1} VMs':>22} | {f'{h2} hv / {v2} VMs':>22} | ratio")
    print(f"{'':<42} | {'time':>10} {'requests':>11} | {'time':>10} {'requests':>11} |")
    for label in results[0]:
        (t1, r1), (t2, r2) = results[0][label], results[1][label]
        print(f"{label:<42} | {t1 * 1000:8.1f}ms {r1:11d} | {t2 * 1000:8.1f}ms {r2:11d} | "
              f"{t2 / t1:5.1f}")


def one_scale(hosts, vms):
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
                    if control(url, "GET", "/sim/health")["pid"] == proc.pid:
                        break
                except OSError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"bench: simulator exited: {Path(state, 'simulator.log').read_text()}")
                time.sleep(0.1)
            else:
                raise SystemExit("bench: simulator did not answer in 30 s")
            return run(url, state, password, hosts, vms)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


def run(url, state, password, hosts, vms):
    names = [f"hv{i:04d}.internal" for i in range(1, hosts + 1)]
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
    from novaclient import client as nova_client  # as an operator's script boots them
    cloud = Cloud(env)
    nova = nova_client.Client("2.60", session=cloud.session,
                              endpoint_override=cloud.endpoints["compute"])
    flavor = nova.flavors.find(name="m1.tiny")
    started = time.perf_counter()
    for _ in range(vms // BATCH):
        nova.servers.create("wn-grid", image, flavor, min_count=BATCH, max_count=BATCH, nics="auto")
    print(f"{hosts} hypervisors: boot of {vms // BATCH} x {BATCH} VMs took "
          f"{time.perf_counter() - started:.2f} s")
    cases = {
        "nova service-list": lambda: len(nova.services.list()),
        "hypervisors with servers": lambda: sum(
            len(getattr(h, "servers", [])) for h in nova.hypervisors.search("", servers=True)),
        "hypervisors detail": lambda: len(nova.hypervisors.list()),
        "servers detail all_tenants, all pages": lambda: len(
            nova.servers.list(search_opts={"all_tenants": True}, limit=-1)),
        "servers detail all_tenants, host=<one>": lambda: len(
            nova.servers.list(search_opts={"all_tenants": True, "host": names[0]}, limit=-1)),
    }
    results = {}
    for label, action in cases.items():
        elapsed, requests, _ = measure(url, action)
        results[label] = (elapsed, requests)
    return results


if __name__ == "__main__":
    main()
