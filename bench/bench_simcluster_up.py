#!/usr/bin/env python3
"""Benchmark of the simulated cluster's life cycle (nothing asserted, figures printed).

For 6, 32 and 50 nodes (nodes only, no simulator): time of `up` (namespaces, veths, keys,
one sshd per node), of one ssh round trip to every node through pdsh -R ssh (fanout 32),
and of `down`; side by side, with the per-node cost.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "simcluster"))
import fixture  # noqa: E402
import netnodes  # noqa: E402

SIZES = [6, 32, 50]


def free_slot(wait=300):
    """A locked free slot (waiting for one is not part of the figures)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for slot in netnodes.SLOTS:
            fd = netnodes.try_lock(slot)
            if fd is not None:
                return slot, fd
        time.sleep(1)
    raise SystemExit(f"bench_simcluster_up: no free slot within {wait}s")


def measure(count):
    slot, fd = free_slot()
    t0 = time.monotonic()
    layout = netnodes.up(slot, netnodes.default_names(count), lock_fd=fd, with_simulator=False,
                         log=lambda line: None)
    up = time.monotonic() - t0
    cluster = fixture.SimCluster(layout, fd)
    try:
        t1 = time.monotonic()
        res = subprocess.run(["pdsh", "-R", "ssh", "-f", "32", "-w", ",".join(cluster.names),
                              "true"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PDSH_SSH_ARGS_APPEND": f"-F {cluster.ssh_config}"})
        ssh_all = time.monotonic() - t1
        ok = res.returncode == 0
    finally:
        t2 = time.monotonic()
        cluster.stop()
        down = time.monotonic() - t2
    return up, ssh_all, down, ok


def main():
    reason = fixture.unavailable()
    if reason:
        print(f"bench_simcluster_up: skipped: {reason}")
        return 0
    print(f"{'nodes':>5} {'up s':>7} {'ms/node':>8} {'pdsh true s':>12} {'down s':>7}  ok")
    for count in SIZES:
        up, ssh_all, down, ok = measure(count)
        print(f"{count:>5} {up:>7.2f} {1000 * up / count:>8.1f} {ssh_all:>12.2f} {down:>7.2f}"
              f"  {'yes' if ok else 'NO'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
