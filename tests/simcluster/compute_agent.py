#!/usr/bin/env python3
"""Stand-in for openstack-nova-compute on a simulated node: heartbeats to the simulator and
carries out this node's VM work (one directory per VM under the instances directory, with a
small libvirt.xml, standing for the libvirt domain). Exits cleanly on SIGTERM.

    compute_agent.py --node NAME --sim URL --instances-dir DIR [--interval 1]
"""
import argparse
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import urllib.request
from urllib.parse import quote

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DOMAIN_XML = """<domain type='kvm'>
  <name>{instance_name}</name>
  <uuid>{id}</uuid>
  <title>{name}</title>
  <memory unit='MiB'>{memory_mb}</memory>
  <vcpu>{vcpus}</vcpu>
</domain>
"""


def log(message):
    print(time.strftime("%H:%M:%S ") + message, flush=True)


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the head, directly


def heartbeat(sim_url, node, created, removed, wait=0):
    body = json.dumps({"created": created, "removed": removed, "wait": wait}).encode()
    request = urllib.request.Request(f"{sim_url}/sim/agent/{quote(node)}/heartbeat", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
    with NO_PROXY.open(request, timeout=10) as answer:
        return json.load(answer)


def create_vm(instances_dir, vm):
    vm_dir = os.path.join(instances_dir, vm["id"])
    os.makedirs(vm_dir, exist_ok=True)
    path = os.path.join(vm_dir, "libvirt.xml")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(DOMAIN_XML.format(**vm))
    os.replace(path + ".tmp", path)


def remove_vm(instances_dir, vm_id):
    shutil.rmtree(os.path.join(instances_dir, vm_id), ignore_errors=True)


def do_work(instances_dir, work):
    """Carry out the simulator's requests; returns (created ids, removed ids)."""
    created, removed = [], []
    for vm in work.get("create", []):
        if UUID.match(vm.get("id", "")):  # never let a reply choose a path outside our dir
            create_vm(instances_dir, vm)
            created.append(vm["id"])
    for vm_id in work.get("remove", []):
        if UUID.match(vm_id):
            remove_vm(instances_dir, vm_id)
            removed.append(vm_id)
    return created, removed


class Stopped(Exception):
    """SIGTERM while a heartbeat waits for work: the agent stops now, not after the wait."""


def run(args, stop, polling):
    created, removed = [], []
    while not stop.is_set():
        started = time.monotonic()
        try:
            polling.set()  # the heartbeat waits up to INTERVAL s for work (answered at once)
            try:
                work = heartbeat(args.sim, args.node, created, removed, wait=args.interval)
            finally:
                polling.clear()
            created, removed = do_work(args.instances_dir, work)
        except Stopped:
            break
        except (OSError, ValueError) as err:  # simulator away or confused: keep trying
            log(f"heartbeat failed: {err}")
            work = {}
        if created or removed:
            log(f"created {len(created)}, removed {len(removed)} VM directories")
            continue  # report at once: the VM state changes as soon as the work is done
        stop.wait(max(0.0, args.interval - (time.monotonic() - started)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", required=True)
    parser.add_argument("--sim", required=True, help="simulator URL, http://ADDR:PORT")
    parser.add_argument("--instances-dir", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    args.sim = args.sim.rstrip("/")
    if not os.path.isdir(args.instances_dir):
        print(f"compute_agent: {args.instances_dir} is not a directory", file=sys.stderr)
        return 2
    stop, polling = threading.Event(), threading.Event()

    def on_signal(*_):
        stop.set()
        if polling.is_set():
            raise Stopped()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"compute agent for {args.node} started, instances in {args.instances_dir}")
    run(args, stop, polling)
    log("compute agent stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
