#!/usr/bin/env python3
"""Benchmark of image distribution, printed side by side (nothing asserted).

On the simulated cluster (needs root), every node link AND the head's own uplink (the slot
bridge) limited with tc tbf to the same rate (default 100mbit), a 64 MiB file, N = 8 and 16
nodes, all in one run:
- T1: one head-to-node copy (plain rsync over ssh);
- head-only: the head sending to all N hosts itself, all at once (as pdcp would);
- wave: rsync-wave.py (verification on every host included);
each with its ratio to T1 and the CPU seconds it used: on the head (the tool and the
processes it waited for) and on the whole machine (nodes included; other work on the
machine shows up there too). A wave should land near ceil(log2(N+1)) x T1, the head-only
copy near N x T1.

Environment: BENCH_SIZE_MB (64), BENCH_RATE (100mbit), BENCH_NODES ("8,16").
More methods plug into METHODS (name -> function(cluster, source, dest, hosts)).
"""
import math
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "tests" / "simcluster"))

import fixture  # noqa: E402
import netnodes  # noqa: E402
from hltcloud import config  # noqa: E402
from hltcloud.proc import runner

SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "64"))
RATE = os.environ.get("BENCH_RATE", "100mbit")
NODES = [int(n) for n in os.environ.get("BENCH_NODES", "8,16").split(",")]
WAVE = str(REPO / "bin" / "rsync-wave.py")


def machine_cpu():
    """Busy CPU seconds of the whole machine so far (all cores, from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def head_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rsync_from_head(cluster, source, dest, host):
    cfg = config.load(cluster.config_path)
    ssh = runner.Ssh(cfg.ssh_config, cfg.ssh_user, cfg.connect_timeout)
    return runner.rsync_argv(str(source), f"{host}:{dest}", rsh=ssh.rsh())


def one_copy(cluster, source, dest, hosts):
    subprocess.run(rsync_from_head(cluster, source, dest, hosts[0]), check=True,
                   capture_output=True)


def head_only(cluster, source, dest, hosts):
    procs = [subprocess.Popen(rsync_from_head(cluster, source, dest, h),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for h in hosts]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"head-only copy failed: {proc.stderr.read().decode()}")


def wave(cluster, source, dest, hosts):
    res = subprocess.run([WAVE, "--line-output", str(source), dest, *hosts], env=cluster.env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"rsync-wave.py failed:\n{res.stdout}{res.stderr}")


METHODS = {"head-only": head_only, "wave": wave}


def measure(cluster, method, source, hosts):
    dest = f"/var/lib/nova/instances/bench-{uuid.uuid4().hex[:8]}"
    cpu_head, cpu_all, started = head_cpu(), machine_cpu(), time.monotonic()
    method(cluster, source, dest, hosts)
    seconds = time.monotonic() - started
    cpu_head, cpu_all = head_cpu() - cpu_head, machine_cpu() - cpu_all
    for host in hosts:  # every host really has it, then free the space
        copy = cluster.node_dir(host) / Path(dest).relative_to("/var/lib/nova")
        if copy.stat().st_size != source.stat().st_size:
            raise RuntimeError(f"{host}: incomplete copy after {method.__name__}")
        copy.unlink()
    return seconds, cpu_head, cpu_all


def shape_head(cluster, rate):
    """The head's uplink: tbf on the bridge device (traffic the head sends into the bridge;
    node-to-node traffic is forwarded between ports and does not pass it)."""
    dev = netnodes.bridge(cluster.slot)
    subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)
    if rate:
        burst = max(32 * 1024, int(netnodes._rate_bits(rate) / 8 / 100))
        subprocess.run(["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                        "burst", str(burst), "latency", "50ms"], check=True)


def main():
    reason = fixture.unavailable()
    if reason:
        print(f"bench_prefill: skipped: {reason}")
        return 0
    cluster = fixture.SimCluster.start(count=max(NODES), with_simulator=False)
    source = Path(cluster.state) / "bench-source.img"
    try:
        with open(source, "wb") as handle:
            for _ in range(SIZE_MB):
                handle.write(os.urandom(1 << 20))
        for name in cluster.names:
            cluster.shape(name, RATE)
        shape_head(cluster, RATE)
        print(f"# {SIZE_MB} MiB, every link and the head's uplink at {RATE}, "
              f"{os.cpu_count()} CPUs shared with other work")
        t1, cpu_h, cpu_m = measure(cluster, one_copy, source, cluster.names[:1])
        rows = [("1", "T1 (one copy)", t1, cpu_h, cpu_m, 1)]
        for n in NODES:
            hosts = cluster.names[:n]
            for name, method in METHODS.items():
                seconds, cpu_h, cpu_m = measure(cluster, method, source, hosts)
                expect = n if name == "head-only" else (
                    math.ceil(math.log2(n + 1)) if name == "wave" else None)
                rows.append((str(n), name, seconds, cpu_h, cpu_m, expect))
        print(f"{'N':>3}  {'method':<14} {'seconds':>8} {'x T1':>6} {'expected':>9} "
              f"{'CPU s head':>10} {'CPU s all':>9}")
        for n, name, seconds, cpu_h, cpu_m, expect in rows:
            expected = f"~{expect}" if expect else "-"
            print(f"{n:>3}  {name:<14} {seconds:8.2f} {seconds / t1:6.2f} {expected:>9} "
                  f"{cpu_h:10.2f} {cpu_m:9.2f}")
    finally:
        shape_head(cluster, None)
        source.unlink(missing_ok=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
