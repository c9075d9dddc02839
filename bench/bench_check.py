#!/usr/bin/env python3
"""Benchmark of `openstack-prefill-cache --check` at many hosts (nothing asserted).

The simulated cluster's six nodes stand for N hosts: an ssh config of N aliases (a0001...),
each one a name of one of the real nodes (HostName, HostKeyAlias), so every alias is a
real ssh session running the real read-only script. Prints wall time, hosts per
second and CPU seconds for each N: on the head (the tool and its ssh clients) and on the
whole machine (the nodes' sshd and scripts too: here they share the head's 2 cores, on a
real cluster each node pays its own). Needs root (the simulated cluster).
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "simcluster"))
sys.path.insert(0, str(REPO / "bench"))
import fixture  # noqa: E402
from bench_prefill import head_cpu, machine_cpu  # noqa: E402

SIZES = (6, 60, 240, 480)
NOVA_CONF = "[image_cache]\nremove_unused_base_images = False\n"


def alias_config(cluster, count, path):
    """COUNT aliases spread over the cluster's nodes, with the cluster's own Host * block."""
    text = Path(cluster.ssh_config).read_text()
    addrs = dict(re.findall(r"(?m)^Host (\S+) \S+\n\s+HostName (\S+)", text))
    common = text[text.index("Host *"):]
    blocks = []
    for i in range(count):
        node = cluster.names[i % len(cluster.names)]
        blocks.append(f"Host a{i + 1:04d}\n    HostName {addrs[node]}\n"
                      f"    HostKeyAlias {node}\n")
    path.write_text("\n".join(blocks) + "\n" + common)


def main():
    reason = fixture.unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    cluster = fixture.SimCluster.start()
    try:
        cluster.reset()
        work = Path(tempfile.mkdtemp(prefix="bench-check-"))
        cluster.add_image("bench-check", size_mb=4)
        first = cluster.run_tool("openstack-prefill-cache", "bench-check", *cluster.names)
        if first.returncode != 0:
            print(first.stdout + first.stderr)
            return 1
        for node in cluster.names:
            (cluster.node_dir(node) / "nova.conf").write_text(NOVA_CONF)
        print(f"# --check of one image, {len(cluster.names)} simulated nodes behind N ssh "
              "aliases, 2 CPUs shared with other work")
        print(f"{'N':>5} {'seconds':>8} {'hosts/s':>8} {'head CPU s':>10} {'all CPU s':>9} exit")
        for count in SIZES:
            ssh_config = work / f"ssh-{count}"
            alias_config(cluster, count, ssh_config)
            site = work / f"site-{count}.conf"
            text = Path(cluster.config_path).read_text()
            text = re.sub(r"(?m)^config = .*$", f"config = {ssh_config}", text)
            site.write_text(text.replace("[paths]\n", "[paths]\nnova_conf = /var/lib/nova/nova.conf\n"))
            start, head, machine = time.monotonic(), head_cpu(), machine_cpu()
            res = subprocess.run([str(REPO / "bin" / "openstack-prefill-cache"), "--config",
                                  str(site), "--check", "--json", "bench-check",
                                  f"a[0001-{count:04d}]"], env=cluster.env,
                                 capture_output=True, text=True, timeout=600)
            seconds = time.monotonic() - start
            print(f"{count:>5} {seconds:>8.2f} {count / seconds:>8.1f} "
                  f"{head_cpu() - head:>10.2f} {machine_cpu() - machine:>9.2f} {res.returncode}")
            if res.returncode != 0:
                print(res.stderr[-2000:])
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
