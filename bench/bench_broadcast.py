#!/usr/bin/env python3
"""Broadcast of one file to N nodes: pipelined chains vs the wave vs the head alone (issue 7).

Brings up a simulated cluster of max(N) nodes (tests/simcluster/cluster, first free slot),
limits every node link and the head's own link with tc to the same rate, and measures in one
run, for a 64 MiB file:
  T1        one head-to-node copy (rsync over ssh, as the wave does it; median of 3)
  head-only the head copying to every node itself, one after the other
  wave      rsync-wave.py
  pipeline  rsync-wave.py --pipeline
each as a ratio to T1, with the CPU seconds it cost: all of it (head tools and every node's
sshd, ssh, tee, checksum: a cpuacct cgroup holding this script and the cluster's sshds) and
the head tools alone (children's rusage). Needs root. Cleans up what it made. Root's
~/.bashrc of this machine (pyenv) is hidden from the nodes' ssh sessions, as a real node has
none such (bench/node_quirks.py): before and after alike.

usage: bench_broadcast.py [--rate 200mbit] [--size-mb 64] [--nodes 8,16,32] [--skip-head-only]
                          [--skip-wave]
                          [--cases broadcast,slow,cpu] [--slow-nodes 16] [--cpu-nodes 4]
                          [--before DIR]... [--repeat N]

The pipeline rows also say when the first byte reached the first and the last host of the
chain (a thread watching their DEST directories every 10 ms; its CPU is taken off the run's),
beside one plain copy's (ssh HOST cat > FILE). --before DIR (again for more checkouts) runs
the pipeline with DIR's rsync-wave.py too, in turn with this checkout's, --repeat N rounds
(each checkout's median run is kept), on the same cluster and the same T1.

Two more cases (issue 14), in the same run and the same table style:
  slow  --slow-nodes N nodes at 20mbit, one of them (the 4th) at 2mbit, 16 MiB: every host's
        completion time (when its "[ OK ]" line came) as a multiple of one plain copy at
        20mbit, beside the same chain's without a slow node (its floor here: 2N-1 ssh
        handshakes at once on this machine's cores), the slow host against its own link's
        time (size at 2mbit), and when the tool said a host was slow;
  cpu   CPU per node and per MB: a forwarding node of a pipeline over --cpu-nodes nodes (the
        CPU of everything its sshd started: sshd, RECV, dd, checksum, tail, ssh to the next)
        against one plain copy (`ssh NODE 'cat > FILE; sha1sum FILE'` from the head, as the issue
        defines it: ssh in, file write, checksum; the node's side, and the
        head's ssh), each node in a cpuacct cgroup of its own; at 16 and 64 MiB, so that the
        CPU per MB forwarded (the difference) and the fixed cost of a node (its ssh sessions:
        three handshakes against one) are apart.
(bench/chain_cases.py). --before DIR runs both cases with DIR's rsync-wave.py too (the same
cluster, the same T1 and plain copy) and prints the figures side by side.

Every node of the simulated cluster shares this machine's CPUs, and a pipeline runs all N
hops at once (~1-1.6 CPU s per node for 64 MiB: sshd decrypt, tee, sha1sum, cat, ssh
encrypt, the kernel's veth/bridge/tbf path, two ssh handshakes). On 2 cores it is CPU-bound
at 200mbit (N=32: 7.9 x T1 with 1.4 cores busy, 2026-11-25); at 20mbit the links are the
limit and it lands at 1.09 / 1.16 / 1.34 x T1 for N = 8 / 16 / 32 (the wave 4.2 / 5.2 / 6.3).
Side by side with --before, N = 16, 64 MiB, an idle machine: at 20mbit 987d6ba 1.15 x T1
(18.6 CPU s, first byte at the first / last host 2.02 / 2.87 s), f98a3ca 1.37 (24.3 CPU s,
2.04 / 4.09 s), the chain package 1.14 (18.1 CPU s, 0.34 / 3.52 s; a plain copy's first byte
0.23 s); at 200mbit 2.76-3.52 / 2.58-2.90 / 2.52-2.54 x T1.
The simulated nodes' sshds run this machine's root login shell, and bash sources root's
~/.bashrc under sshd: here that runs pyenv init (about 100 processes, 0.1 CPU s and 0.22 s
per ssh session; a session alone takes 0.24 s, 16 at once 1.6 s, 32 at once 3.3 s), which
no real node pays. That is most of a chain's start (2N-1 sessions) on 2 cores: the last
host's first byte at 3.4-3.9 s for the chain package (987d6ba 2.4-3.2 s), 1.15-1.18 x T1
(987d6ba 1.11-1.13), 2026-12-06. With `SetEnv SHLVL=1` added to the nodes' sshd_config (bash
then skips ~/.bashrc) the same comparison gives 1.08-1.09 x T1 (last host's first byte
1.5 s) against 1.05-1.08 (0.6-0.9 s). Each host starting the next one's ssh instead (N
sessions, one after the other) costs 0.24-0.36 s a hop here: 3.8-5.7 s for 16 hops.
"""
import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "simcluster" / "cluster"
TOOL = REPO / "bin" / "rsync-wave.py"
DEST_DIR = "/var/lib/nova/instances"

sys.path.insert(0, str(REPO / "lib"))
from hltcloud.proc import runner  # noqa: E402
import node_quirks  # noqa: E402
from chain_cases import (CpuCase, CpuMeter, FirstBytes, SlowCase, checkout_label,  # noqa: E402
                         children_cpu, random_file, rate_bits, run)


class Bench:
    def __init__(self, args):
        self.args = args
        self.meter = CpuMeter()
        self.slot = None
        self.state = None
        self.tmp = Path(tempfile.mkdtemp(prefix="hltbench-"))
        self.source = self.tmp / "image.raw"
        self.rows = []
        self.counter = 0

    # -- cluster
    def up(self, count):
        res = run([str(CLUSTER), "--no-simulator", "up", str(count)])
        match = re.search(r"slot (\d+): ", res.stdout)
        if res.returncode != 0 or not match:
            raise SystemExit(f"cluster up failed: {res.stdout}{res.stderr}".strip())
        self.slot = match.group(1)
        self.state = Path(f"/tmp/hltsim-{self.slot}")
        self.names = [f"cn{i:02d}.internal" for i in range(1, count + 1)]
        # root's ~/.bashrc of this machine out of the nodes' sessions (node_quirks.py)
        if node_quirks.without_root_bashrc(self.state / "nodes" / name for name in self.names):
            print("  (the nodes' ssh sessions without root's ~/.bashrc: bench/node_quirks.py)")
        rate = self.args.rate
        for name in self.names:
            res = run([str(CLUSTER), "--slot", self.slot, "shape", name, rate])
            if res.returncode != 0:
                raise SystemExit(f"shape {name}: {res.stderr.strip()}")

    def shape_bridge(self, rate):
        """The head's own uplink: what it sends leaves through the bridge device."""
        burst = str(max(32 * 1024, int(rate_bits(rate) / 8 / 100)))
        res = run(["tc", "qdisc", "replace", "dev", f"hltbr{self.slot}", "root", "tbf", "rate",
                   rate, "burst", burst, "latency", "50ms"])
        if res.returncode != 0:
            raise SystemExit(f"tc on the bridge: {res.stderr.strip()}")

    def shape(self, name, rate):
        res = run([str(CLUSTER), "--slot", self.slot, "shape", name, rate])
        if res.returncode != 0:
            raise SystemExit(f"shape {name}: {res.stderr.strip()}")

    def down(self):
        if self.slot is not None:
            run([str(CLUSTER), "--slot", self.slot, "down"])
            self.slot = None

    def ssh_config(self):
        return str(self.state / "ssh" / "config")

    def env(self):
        env = dict(os.environ)
        conf = self.state / "hltcloud.conf"
        if conf.exists():
            env["HLTCLOUD_CONFIG"] = str(conf)
        return env

    def node_path(self, name, dest):
        return self.state / "nodes" / name / "nova" / Path(dest).relative_to("/var/lib/nova")

    def fresh_dest(self):
        self.counter += 1
        return f"{DEST_DIR}/bench-{self.counter}.raw"

    def clean(self, dest):
        for name in self.names:
            self.node_path(name, dest).unlink(missing_ok=True)

    def check(self, dest, hosts, what):
        size = self.source.stat().st_size
        bad = [h for h in hosts if not self.node_path(h, dest).exists()
               or self.node_path(h, dest).stat().st_size != size]
        if not bad:  # content of the last host, the one furthest down a chain
            digest = hashlib.sha1(self.node_path(hosts[-1], dest).read_bytes()).hexdigest()
            if digest != self.digest:
                bad = [hosts[-1]]
        if bad:
            raise SystemExit(f"{what}: file missing or wrong on {', '.join(bad)}")

    # -- measurements
    def measure(self, action):
        cpu0, head0, t0 = self.meter.seconds(), children_cpu(), time.monotonic()
        action()
        wall = time.monotonic() - t0
        cpu = None if cpu0 is None else self.meter.seconds() - cpu0
        return wall, cpu, children_cpu() - head0

    def rsync_one(self, host, dest):
        # The pipeline's cheap cipher and key exchange here too: T1 is the best single copy.
        rsh = shlex.join(["ssh", "-F", self.ssh_config(), "-o", "BatchMode=yes", "-l", "root",
                          *runner.FAST_SSH_OPTIONS])
        res = run(["rsync", "--whole-file", "-e", rsh, "--", str(self.source), f"{host}:{dest}"])
        if res.returncode != 0:
            raise SystemExit(f"rsync to {host}: {res.stderr.strip()}")

    def rsync_one_file(self, source, host, dest, plain=False):
        """One copy of SOURCE: rsync as T1 does, or (PLAIN) ssh HOST cat > DEST; sha1sum DEST."""
        if not plain:
            res = run(["rsync", "--whole-file", "-e", shlex.join(
                ["ssh", "-F", self.ssh_config(), "-o", "BatchMode=yes", "-l", "root",
                 *runner.FAST_SSH_OPTIONS]), "--", str(source), f"{host}:{dest}"])
        else:
            with open(source, "rb") as data:
                res = subprocess.run(["ssh", "-F", self.ssh_config(), "-o", "BatchMode=yes",
                                      "-l", "root", *runner.FAST_SSH_OPTIONS, "--", host,
                                      shlex.join(["sh", "-c", 'cat > "$1" && sha1sum "$1" > /dev/null',
                                                  "plain", dest])],
                                     stdin=data, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"copy to {host}: {res.stderr.strip()}")

    def t1(self):
        times = []
        for _ in range(3):
            dest = self.fresh_dest()
            times.append(self.measure(lambda: self.rsync_one(self.names[0], dest)))
            self.check(dest, self.names[:1], "T1")
            self.clean(dest)
        times.sort(key=lambda row: row[0])
        return times[1]

    def head_only(self, hosts):
        dest = self.fresh_dest()
        row = self.measure(lambda: [self.rsync_one(h, dest) for h in hosts])
        self.check(dest, hosts, "head-only")
        self.clean(dest)
        return row

    def tool(self, hosts, *switches, tool=TOOL, first_bytes=None):
        """Run TOOL; (wall, CPU, head CPU). FIRST_BYTES: a dict that gets when the first byte
        reached the first and the last host."""
        dest = self.fresh_dest()

        def action():
            res = run([str(tool), "--ssh-config", self.ssh_config(), *switches,
                       str(self.source), dest, *hosts], env=self.env())
            if res.returncode != 0:
                raise SystemExit(f"rsync-wave.py {' '.join(switches)}: exit {res.returncode}\n"
                                 f"{res.stdout[-2000:]}{res.stderr[-1000:]}")
            for line in res.stdout.splitlines():  # what made a run slower than it should be
                if re.search(r" is slow |any more|WARN|completing", line):
                    print(f"    ({line})", flush=True)
        with FirstBytes(self, dest, [hosts[0], hosts[-1]]) as watch:
            wall, cpu, head = self.measure(action)
        if first_bytes is not None:
            first_bytes.update(first=watch.at(hosts[0]), last=watch.at(hosts[-1]))
        self.check(dest, hosts, f"rsync-wave.py {' '.join(switches)}")
        self.clean(dest)
        return wall, None if cpu is None else cpu - watch.cpu, head

    def run(self):
        args = self.args
        counts = sorted(int(n) for n in args.nodes.split(","))
        with open(self.source, "wb") as handle:
            for _ in range(args.size_mb):
                handle.write(os.urandom(1 << 20))
        self.digest = hashlib.sha1(self.source.read_bytes()).hexdigest()
        print(f"bench_broadcast: {args.size_mb} MiB, every link (nodes and head) at {args.rate}, "
              f"N = {', '.join(map(str, counts))}; {os.cpu_count()} CPU(s), "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        self.up(max((counts if "broadcast" in args.cases else []) +
                    [args.slow_nodes if "slow" in args.cases else 1,
                     args.cpu_nodes if "cpu" in args.cases else 1]))
        if "broadcast" in args.cases:  # the head's uplink at the same rate
            self.shape_bridge(args.rate)
        self.chain_cases()
        if "broadcast" not in args.cases:
            return
        for name in self.names:  # as up() left them (the cases above changed them)
            self.shape(name, args.rate)
        t1 = self.t1()
        self.rows.append(("1", "T1 (one copy)", t1))
        print(f"T1 = {t1[0]:.2f} s ({args.size_mb * 8 * 1.048576 / t1[0]:.0f} Mbit/s)", flush=True)
        plain = self.plain_first_byte()
        print(f"first byte of one plain copy (ssh cat): {plain:.2f} s", flush=True)
        for count in counts:
            hosts = self.names[:count]
            self.pipelines(hosts, t1[0])
            for label, action in (("wave", lambda: self.tool(hosts)),
                                  ("head-only", lambda: self.head_only(hosts))):
                if (label == "head-only" and args.skip_head_only) or \
                        (label == "wave" and args.skip_wave):
                    continue
                row = action()
                self.rows.append((str(count), label, row))
                print(f"  N={count:<3} {label:<10} {row[0]:7.2f} s  {row[0] / t1[0]:5.2f} x T1",
                      flush=True)
        self.table(t1[0], plain)

    def tools(self):
        """(label, rsync-wave.py) of every checkout compared: --before ones first."""
        before = [Path(d).resolve() for d in self.args.before or []]
        return [(checkout_label(d), d / "bin" / "rsync-wave.py") for d in before] + \
            [("after", TOOL)]

    def pipelines(self, hosts, t1):
        """--repeat rounds of the pipeline with every checkout in turn (side by side on the
        same load); each checkout's median run (by wall) goes in the table."""
        runs = {label: [] for label, _ in self.tools()}
        for _ in range(self.args.repeat):
            for label, tool in self.tools():
                first = {}
                row = self.tool(hosts, "--pipeline", tool=tool, first_bytes=first)
                runs[label].append((row, first))
                print(f"  N={len(hosts):<3} pipeline {label:<8} {row[0]:7.2f} s  "
                      f"{row[0] / t1:5.2f} x T1  first byte: first host {first['first']:.2f} s, "
                      f"last host {first['last']:.2f} s", flush=True)
        for label, done in runs.items():
            row, first = sorted(done, key=lambda r: r[0][0])[len(done) // 2]
            self.rows.append((str(len(hosts)), f"pipeline {label}", row, first))

    def plain_first_byte(self):
        """When the first byte of one plain copy (ssh HOST cat > FILE) reached the host: the
        median of 3."""
        small = random_file(self.tmp / "small.raw", 1)  # the start is what counts
        seen = []
        for _ in range(3):
            dest = self.fresh_dest()
            with FirstBytes(self, dest, self.names[:1]) as watch:
                self.rsync_one_file(small, self.names[0], dest, plain=True)
            seen.append(watch.at(self.names[0]))
            self.clean(dest)
        return sorted(seen)[1]

    def chain_cases(self):
        """The slow and cpu cases, for this checkout and (--before) others, side by side."""
        tools = self.tools()
        figures = {}
        for name, case in (("slow", SlowCase), ("cpu", CpuCase)):
            if name not in self.args.cases:
                continue
            case = case(self)
            if case.prepare() is False:
                continue
            for label, tool in tools:
                figures[(name, label)] = case.run(label, tool)
        if not figures:
            return
        labels = [label for label, _ in tools]
        print(f"\n# issue 14, side by side ({', '.join(labels)})")
        rows = (("slow", "others_max", "others: last done, x T1"),
                ("slow", "others_median", "others: median, x T1"),
                ("slow", "chain_alone", "the chain without a slow node: last, x T1"),
                ("slow", "others_vs_alone", "others: last done, x the chain without"),
                ("slow", "slow_own", "slow host, x its own link"),
                ("cpu", "fwd_ms_mb", "forwarding node, CPU ms/MB"),
                ("cpu", "x_plain", "forwarding node, x one plain copy"),
                ("cpu", "x_node_side", "forwarding node, x plain copy's node side"),
                ("cpu", "x_per_mb", "per MB forwarded (16 -> 64 MiB), x plain"),
                ("cpu", "fixed_fwd", "fixed CPU s of a forwarding node"),
                ("cpu", "fixed_plain", "fixed CPU s of a plain copy (both ends)"))
        print(f"{'figure':<44}" + "".join(f" {label:>8}" for label in labels))
        for case, key, what in rows:
            if all((case, label) in figures for label in labels):
                print(f"{what:<44}" + "".join(f" {figures[(case, label)][key]:8.2f}"
                                              for label in labels))

    def table(self, t1, plain):
        print()
        print(f"{'N':>3}  {'method':<18} {'seconds':>8} {'x T1':>6} {'CPU s':>7} "
              f"{'head CPU s':>10} {'cores':>6} {'1st byte':>9} {'last':>6}")
        for count, label, (wall, cpu, head), *first in self.rows:
            cpu_text = "n/a" if cpu is None else f"{cpu:.1f}"
            cores = "n/a" if cpu is None else f"{cpu / wall:.2f}"
            ttfb = f" {first[0]['first']:9.2f} {first[0]['last']:6.2f}" if first else ""
            print(f"{count:>3}  {label:<18} {wall:8.2f} {wall / t1:6.2f} {cpu_text:>7} "
                  f"{head:10.1f} {cores:>6}{ttfb}")
        print("CPU s: head tools + every node's sshd/ssh/tee/checksum (cpuacct cgroup); "
              "head CPU s: the head's tools only (rusage); cores = CPU s / seconds; 1st byte, "
              f"last: when the first byte reached the first and the last host (s; one plain "
              f"copy's: {plain:.2f} s).")

    def close(self):
        self.down()
        for group in self.meter.node_groups.values():
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        self.meter.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", default="200mbit")
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--nodes", default="8,16,32")
    parser.add_argument("--skip-head-only", action="store_true",
                        help="leave out the slow head-only copies (N x T1 each)")
    parser.add_argument("--skip-wave", action="store_true", help="leave out the wave")
    parser.add_argument("--cases", default="broadcast,slow,cpu",
                        help="which of broadcast, slow, cpu to run (comma-separated)")
    parser.add_argument("--slow-nodes", type=int, default=16)
    parser.add_argument("--cpu-nodes", type=int, default=4)
    parser.add_argument("--before", metavar="DIR", action="append",
                        help="also run the pipelines with DIR/bin/rsync-wave.py (another checkout, "
                             "e.g. `git worktree add --detach DIR REV`; again for more), printed "
                             "side by side")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the pipeline, every checkout in turn (the median run kept)")
    args = parser.parse_args()
    rate_bits(args.rate)
    if os.geteuid() != 0:
        print("bench_broadcast: needs root (network namespaces): skipped")
        return 0
    bench = Bench(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        print("bench_broadcast: interrupted", file=sys.stderr)
        return 130
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
