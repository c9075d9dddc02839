"""The two cases of bench_broadcast.py for issue 14 (not a bench of its own: `make bench` runs
bench_*.py only), and the helpers both files use.

  SlowCase  N nodes at 20mbit, one of them (the 4th) at 2mbit, 16 MiB: when each host's
            "[ OK ]" line came, as a multiple of one plain copy at 20mbit (T1), and the slow
            host against its own link's time (size at 2mbit);
  CpuCase   the CPU of one forwarding node of a pipeline, per MB, against one plain copy
            (`ssh NODE 'cat > FILE; sha1sum FILE'` from the head, the issue's "ssh in, file
            write, checksum": the node's side, and the head's ssh).

Each case runs one rsync-wave.py (TOOL: this checkout's, or another's with --before) and
returns its figures; bench_broadcast.py prints them side by side. Also here: FirstBytes (when
the first byte of a copy reached a host) and CpuMeter (the CPU of the run, a cgroup).
"""
import hashlib
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def rate_bits(rate):
    units = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    match = re.fullmatch(r"([0-9.]+)(bit|kbit|mbit|gbit)", rate)
    if not match:
        raise SystemExit(f"--rate: like 200mbit, not {rate!r}")
    return float(match.group(1)) * units[match.group(2)]


def random_file(path, size_mb):
    with open(path, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1 << 20))
    return path


class SlowCase:
    """N nodes at 20mbit, one at 2mbit: per-host completion times of the pipeline."""
    FAST, SLOW, SIZE_MB = "20mbit", "2mbit", 16

    def __init__(self, bench):
        self.bench = bench
        count = bench.args.slow_nodes
        self.hosts = bench.names[:count]
        self.slow = self.hosts[min(3, count - 1)]
        self.source = random_file(bench.tmp / "slow.raw", self.SIZE_MB)
        self.own = self.SIZE_MB * 8 * 1.048576 / rate_bits(self.SLOW) * 1e6
        self.t1 = None

    def prepare(self):
        """Every node at FAST, the head's link free; T1: the median of 3 plain copies."""
        bench = self.bench
        for name in bench.names:
            bench.shape(name, self.FAST)
        run(["tc", "qdisc", "del", "dev", f"hltbr{bench.slot}", "root"])  # the nodes' links only
        t1s = []
        for _ in range(3):
            dest = bench.fresh_dest()
            t0 = time.monotonic()
            bench.rsync_one_file(self.source, self.hosts[0], dest)
            t1s.append(time.monotonic() - t0)
            bench.clean(dest)
        self.t1 = sorted(t1s)[1]

    def run(self, label, tool):
        """The same chain without a slow node first (its own floor on this machine: the
        handshakes of 2N-1 sessions at once), then with one."""
        bench, hosts, slow, t1, own = self.bench, self.hosts, self.slow, self.t1, self.own
        dest = bench.fresh_dest()
        alone, _, _ = self.pipeline(tool, dest)
        bench.clean(dest)
        bench.shape(slow, self.SLOW)
        dest = bench.fresh_dest()
        done, wall, out = self.pipeline(tool, dest)
        bench.clean(dest)
        bench.shape(slow, self.FAST)
        print(f"\n# slow node ({label}): {len(hosts)} nodes at {self.FAST}, {slow} at "
              f"{self.SLOW}, {self.SIZE_MB} MiB; T1 (one plain copy at {self.FAST}) {t1:.2f} s; "
              f"{slow}'s own link: {own:.1f} s; load {os.getloadavg()[0]:.1f}")
        print(f"{'host':<16} {'from':<16} {'done s':>7} {'x T1':>6} {'no slow node s':>15}")
        for host in hosts:
            src, seconds = done.get(host, ("-", float("nan")))
            mark = f"  (slow; {seconds / own:.2f} x its own link)" if host == slow else ""
            print(f"{host:<16} {src:<16} {seconds:7.2f} {seconds / t1:6.2f} "
                  f"{alone.get(host, ('', float('nan')))[1]:15.2f}{mark}")
        for seconds, line in out:
            if " is slow " in line or "any more" in line:
                print(f"  tool at {seconds:5.2f} s: {line}")
        others = sorted(done[h][1] for h in hosts if h != slow and h in done)
        floor = max(seconds for _, seconds in alone.values())
        return {"others_max": others[-1] / t1, "others_median": others[len(others) // 2] / t1,
                "chain_alone": floor / t1, "others_vs_alone": others[-1] / floor,
                "slow_own": done.get(slow, ("", float("nan")))[1] / own, "wall": wall / t1}

    def pipeline(self, tool, dest):
        """Run the pipeline; when each host's "[ OK ]" line came, from the start."""
        bench = self.bench
        t0 = time.monotonic()
        proc = subprocess.Popen([str(tool), "--ssh-config", bench.ssh_config(), "--pipeline",
                                 "--line-output", str(self.source), dest, *self.hosts],
                                env=bench.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        done, out = {}, []
        for line in proc.stdout:
            out.append((time.monotonic() - t0, line.rstrip("\n")))
            match = re.match(r"\[ OK \] (\S+) --> (\S+) ", line)
            if match and match.group(2) not in done:
                done[match.group(2)] = (match.group(1), time.monotonic() - t0)
        proc.wait()
        if proc.returncode != 0:
            raise SystemExit("slow case: exit %d\n%s%s" % (proc.returncode, "\n".join(line for _, line in out[-20:]),
                                                           proc.stderr.read()[-1000:]))
        return done, time.monotonic() - t0, out


class CpuCase:
    """CPU of a forwarding node per MB, against one plain copy (ssh NODE cat > FILE, sha1sum),
    at two sizes: the difference is the CPU per MB forwarded (what grows with an image's
    size), the rest the fixed cost of a node (its ssh sessions and scripts)."""
    SIZE_MB, SMALL_MB = 64, 16

    def __init__(self, bench):
        self.bench = bench
        self.hosts = bench.names[:max(3, bench.args.cpu_nodes)]
        self.sources = {}
        for size in (self.SMALL_MB, self.SIZE_MB):
            path = random_file(bench.tmp / f"cpu-{size}.raw", size)
            self.sources[size] = (path, hashlib.sha1(path.read_bytes()).hexdigest())
        self.plain = {}

    def prepare(self):
        """Links free; the node's own cgroups; the plain copies (median of 3). False: no cgroup."""
        bench, meter, hosts = self.bench, self.bench.meter, self.hosts
        if not meter.group:
            print("\n# cpu per hop: no cpuacct cgroup, not measured")
            return False
        for name in bench.names:
            bench.shape(name, "off")
        run(["tc", "qdisc", "del", "dev", f"hltbr{bench.slot}", "root"])
        for name in hosts:
            meter.node(name, int((bench.state / "nodes" / name / "sshd.pid").read_text()))
        for size, (source, _) in self.sources.items():
            plain = []
            for _ in range(3):
                dest = bench.fresh_dest()
                node0, head0 = meter.node_seconds(hosts[0]), children_cpu()
                bench.rsync_one_file(source, hosts[0], dest, plain=True)
                plain.append((meter.node_seconds(hosts[0]) - node0, children_cpu() - head0))
                bench.clean(dest)
            self.plain[size] = sorted(plain, key=sum)[1]
        return True

    def forwarding(self, tool, size):
        """CPU seconds of the median forwarding node of a pipeline of SIZE MiB (median of 3)."""
        bench, meter, hosts = self.bench, self.bench.meter, self.hosts
        source, digest = self.sources[size]
        rows = []
        for _ in range(3):
            dest = bench.fresh_dest()
            before = {h: meter.node_seconds(h) for h in hosts}
            res = run([str(tool), "--ssh-config", bench.ssh_config(), "--pipeline",
                       str(source), dest, *hosts], env=bench.env())
            if res.returncode != 0:
                raise SystemExit(f"cpu case: {res.stdout[-1000:]}{res.stderr[-500:]}")
            got = hashlib.sha1(bench.node_path(hosts[-1], dest).read_bytes()).hexdigest()
            if got != digest:
                raise SystemExit(f"cpu case: wrong file on {hosts[-1]}")
            bench.clean(dest)
            # the forwarding nodes: every host but the last
            rows.append(sorted(meter.node_seconds(h) - before[h] for h in hosts[:-1]))
        return sorted(r[len(r) // 2] for r in rows)[1]

    def run(self, label, tool):
        big, small = self.SIZE_MB, self.SMALL_MB
        fwd = {size: self.forwarding(tool, size) for size in (small, big)}
        whole = {size: sum(self.plain[size]) for size in (small, big)}
        mb = big * 1.048576
        node_s, head_s = self.plain[big]
        print(f"\n# CPU per hop ({label}): {big} MiB, {len(self.hosts)} nodes, links not "
              f"shaped; load {os.getloadavg()[0]:.1f}")
        print(f"{'what':<44} {'CPU s':>6} {'ms/MB':>6} {'x plain':>8}")
        for what, secs in (("plain copy, node side (sshd, cat, sha1sum)", node_s),
                           ("plain copy, head side (ssh)", head_s),
                           ("plain copy, both ends", whole[big]),
                           ("pipeline, one forwarding node (median)", fwd[big])):
            print(f"{what:<44} {secs:6.2f} {secs / mb * 1000:6.1f} {secs / whole[big]:8.2f}")
        print(f"forwarding node against the plain copy's node side alone: {fwd[big] / node_s:.2f} x")
        extra = (big - small) * 1.048576
        per_mb = {what: (secs[big] - secs[small]) / extra * 1000
                  for what, secs in (("fwd", fwd), ("plain", whole))}
        fixed = {what: secs[big] - per_mb[what] * mb / 1000
                 for what, secs in (("fwd", fwd), ("plain", whole))}
        print(f"per MB forwarded ({small} -> {big} MiB): forwarding node {per_mb['fwd']:.1f} ms, "
              f"plain copy {per_mb['plain']:.1f} ms, {per_mb['fwd'] / per_mb['plain']:.2f} x; "
              f"fixed: {fixed['fwd']:.2f} s against {fixed['plain']:.2f} s")
        return {"fwd_ms_mb": fwd[big] / mb * 1000, "x_plain": fwd[big] / whole[big],
                "x_node_side": fwd[big] / node_s,
                "x_per_mb": per_mb["fwd"] / per_mb["plain"],
                "fixed_fwd": fixed["fwd"], "fixed_plain": fixed["plain"]}


class FirstBytes:
    """When the first byte of DEST reached each of HOSTS (seconds from the start): a thread
    looks at their DEST directories every STEP seconds for DEST or a hidden twin of it (a
    file, or a private directory's data) holding a byte. Its own CPU (counted in the run's
    cgroup) is in .cpu, for the caller to take off."""
    STEP = 0.01

    def __init__(self, bench, dest, hosts):
        import threading
        self.bench, self.name, self.hosts = bench, dest.rsplit("/", 1)[1], list(hosts)
        self.dirs = {h: bench.node_path(h, dest).parent for h in self.hosts}
        self.seen, self.cpu = {}, 0.0
        # a chain's temporary file or private directory, or rsync's temporary file
        self.twin = re.compile(rf"\.{re.escape(self.name)}\.(pipe-[0-9a-f]+|[A-Za-z0-9]{{6}})$")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()

    def _has_bytes(self, folder):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return False
        for entry in entries:
            if entry.name != self.name and not self.twin.match(entry.name):
                continue
            paths = [entry.path + "/data"] if entry.is_dir(follow_symlinks=False) else [entry.path]
            for path in paths:
                try:
                    if os.stat(path).st_size > 0:
                        return True
                except OSError:
                    pass
        return False

    def _watch(self):
        start = time.thread_time()
        while len(self.seen) < len(self.hosts):
            stopping = self.stop.is_set()  # one more look after the copy (a loaded machine)
            for host in self.hosts:
                if host not in self.seen and self._has_bytes(self.dirs[host]):
                    self.seen[host] = time.monotonic() - self.t0
            if stopping:
                break
            self.stop.wait(self.STEP)
        self.cpu = time.thread_time() - start

    def at(self, host):
        return self.seen.get(host, float("nan"))


def checkout_label(path):
    """A checkout's short commit (or its folder's name)."""
    res = run(["git", "-C", str(path), "rev-parse", "--short=7", "HEAD"])
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else path.name


class CpuMeter:
    """CPU of this process tree, nodes' sshds included: a cpuacct cgroup we move into before
    the cluster starts (its daemons inherit it). Without cgroup v1 cpuacct: None."""

    def __init__(self):
        self.group = None
        self.node_groups = {}
        try:
            group = CPUACCT / f"hltbench-{os.getpid()}"
            group.mkdir()
            (group / "cgroup.procs").write_text(str(os.getpid()))
            self.group = group
        except OSError as err:
            print(f"note: no cpuacct cgroup ({err}): whole CPU not measured", file=sys.stderr)

    def seconds(self):
        if not self.group:
            return None
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def node(self, name, sshd_pid):
        """A group of NAME's own, holding its sshd (what it starts from now on goes there too)."""
        if not self.group:
            return None
        if name not in self.node_groups:
            group = self.group / f"node-{name}"
            group.mkdir()
            (group / "cgroup.procs").write_text(str(sshd_pid))
            self.node_groups[name] = group
        return self.node_groups[name]

    def node_seconds(self, name):
        group = self.node_groups.get(name)
        return None if group is None else int((group / "cpuacct.usage").read_text()) / 1e9

    def close(self):
        if not self.group:
            return
        try:
            (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
            for _ in range(50):  # the cluster's daemons are gone after `down`
                try:
                    self.group.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)
        except OSError as err:
            print(f"note: cgroup {self.group} left: {err}", file=sys.stderr)
