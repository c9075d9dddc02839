"""bench_manage.py's farm part: is taking back the whole farm wait-bound or work-bound?

`--for-real --parallel disable` of N hosts with 3 VMs each, every VM's delete taking D seconds
on its compute (the simulator's /sim/delete-delay), for each N and D, with the tool before
(a checkout given with --before, or this one with --fanout 32, the old default) and after
(this one, default fanout), side by side in one run, alternating. For each run: the wall
time, one host's wall (a plain `--for-real disable` of one host with the same D), the run's
CPU (every process that takes part, farm_cluster.RunCpu) over the machine's cores, and the
ratio wall / max(one host's wall, CPU / cores): near 1 when the run is never wait-bound
(the goal: at most 1.3). Then what one subworker costs the head, sampled during a run.
"""
import math
import os
import subprocess
import threading
import time
from pathlib import Path

import farm_cluster

REPO = Path(__file__).resolve().parent.parent
VM_TIMEOUT = "300"
SAMPLE_EVERY = 0.25  # seconds between two looks at the processes of a sampled run


def _run(farm, tool, *args, timeout=900):
    started = time.perf_counter()
    done = subprocess.run([tool, *args], env=farm.env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args[-3:])} failed ({done.returncode}): "
                         f"{done.stdout[-800:]} {done.stderr[-800:]}")
    return wall


def _wait_up(farm, names, timeout=90):
    """Exactly NAMES up (computes stopped by a reset stay "up" for the service down time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = farm.sim("GET", "/sim/hosts")["hosts"]
        if {h["name"] for h in hosts if h.get("up")} == set(names):
            return
        time.sleep(0.5)
    raise SystemExit(f"bench: hosts not up after {timeout} s")


def prepare(farm, tool, hosts, delay):
    """HOSTS enabled and up with 3 VMs each, every other host down, deletes taking DELAY s."""
    farm.reset()
    farm.sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
    _run(farm, tool, "--for-real", "--parallel", "--fanout", str(len(hosts)), "enable", *hosts)
    _wait_up(farm, hosts)
    _run(farm, tool, "--for-real", "--vm-timeout", "120", "runvms")
    vms = len(farm.sim("GET", "/sim/servers")["servers"])
    if vms != 3 * len(hosts):
        raise SystemExit(f"bench: {vms} VMs on {len(hosts)} hosts, not 3 each")
    farm.sim("POST", "/sim/delete-delay", {"seconds": delay})
    return vms


def measured(farm, tool, args, hosts):
    """One run of TOOL ARGS HOSTS: (wall, {part: CPU seconds, and "other work": what the
    machine spent on other processes meanwhile}, seconds from the start to the last DELETE of
    a VM: until then some host had not yet begun its wait)."""
    farm.sim("DELETE", "/sim/requests")
    before, busy = farm.cpu(), farm_cluster.machine_cpu()
    launched = time.time()
    wall = _run(farm, tool, *args, *hosts)
    busy = farm_cluster.machine_cpu() - busy
    time.sleep(0.3)  # the nodes' sshds reap the last sessions (their CPU joins cutime)
    cpu = farm.cpu().since(before)
    cpu["other work"] = max(0.0, busy - sum(cpu.values()))  # not ours: it slowed us down
    if farm.sim("GET", "/sim/servers")["servers"]:
        raise SystemExit("bench: VMs left after the disable")
    deletes = [r["time"] for r in farm.sim("GET", "/sim/requests") if r["method"] == "DELETE"]
    return wall, cpu, max(deletes) - launched


def variants(after, before_dir):
    """[(label, tool, extra switches)]: before, then AFTER (the tool measured)."""
    if before_dir:
        before = [(f"before ({Path(before_dir).name})",
                   str(Path(before_dir).resolve() / "bin" / "openstack-hlt-manage"), [])]
    else:
        before = [("before (--fanout 32)", after, ["--fanout", "32"])]
    return before + [("after (default fanout)", after, [])]


def part_farm(after, sizes, delays, before_dir=None):
    largest = max(sizes)
    print(f"farm: {largest} simulated nodes (real sshd in network namespaces, "
          f"{len(farm_cluster.split_counts(largest))} slot(s)), 3 VMs a node")
    reason = farm_cluster.fixture.unavailable()
    if reason:
        print(f"farm: skipped ({reason})")
        return
    farm = farm_cluster.Farm(largest)
    print("  (the nodes' ssh sessions without root's ~/.bashrc, the tools started by the "
          "interpreter, not a pyenv shim: farm_cluster.py)")
    print(f"  load average at the start: {_load()}", flush=True)
    try:
        farm.add_image("CentOS6-build13")  # the configured runvms image
        rows, one_host = [], {}
        runs = variants(after, before_dir)
        for delay in delays:
            hosts = farm.names[:1]
            prepare(farm, runs[-1][1], hosts, delay)
            one_host[delay] = measured(farm, runs[-1][1], ["--for-real", "--vm-timeout",
                                                            VM_TIMEOUT, "disable"], hosts)
            for count in sizes:
                for label, tool, extra in runs:
                    hosts = farm.names[:count]
                    prepare(farm, runs[-1][1], hosts, delay)
                    wall, cpu, last = measured(farm, tool, ["--for-real", "--vm-timeout",
                                                            VM_TIMEOUT, *extra, "--parallel",
                                                            "disable"], hosts)
                    rows.append((delay, count, label, wall, cpu, last))
                    print(f"  ... D={delay} N={count} {label}: {wall:.2f} s", flush=True)
        print(f"  load average at the end: {_load()}")
        report(rows, one_host)
        cost = subworker_cost(farm, runs[-1][1], farm.names, max(delays) or 10)
        report_cost(cost, len(farm.names))
    finally:
        farm.stop()


def _load():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def report(rows, one_host):
    cores = os.cpu_count()
    print()
    print(f"--for-real --parallel disable, 3 VMs a host, each delete taking D s "
          f"({cores} cores; CPU: every process of the run)")
    print(f"{'D s':>4} {'N':>4}  {'tool':<24}{'wall s':>8}{'1 host s':>9}{'CPU s':>8}"
          f"{'CPU/cores':>10}{'ratio':>7}{'last DELETE s':>14}   CPU: head / node sessions / "
          f"agents+simulator; other work")
    for delay, count, label, wall, cpu, last in rows:
        one_wall = one_host[delay][0]
        other = cpu.pop("other work")
        total = sum(cpu.values())
        bound = max(one_wall, total / cores)
        print(f"{delay:>4} {count:>4}  {label:<24}{wall:>8.2f}{one_wall:>9.2f}{total:>8.2f}"
              f"{total / cores:>10.2f}{wall / bound:>6.2f}x{last:>14.2f}   {cpu['head']:.1f} / "
              f"{cpu['node sessions']:.1f} / {cpu['agents'] + cpu['simulator'] + cpu['relay']:.1f}"
              f"; {other:.1f}")
    print("  ratio: wall / max(1 host's wall, CPU / cores), goal at most 1.3x; "
          "1 host: `--for-real disable` of one host, same D;")
    print("  last DELETE: from the start, when the last host began to wait for its VMs; other "
          "work: CPU s of other processes on the machine meanwhile (they slow the run down)")
    for delay, (wall, cpu, last) in sorted(one_host.items()):
        print(f"  1 host, D={delay}: {wall:.2f} s wall, {sum(cpu.values()) - cpu['other work']:.2f}"
              f" CPU s, last DELETE at {last:.2f} s; other work {cpu['other work']:.1f} s")


def _processes():
    """{pid: (ppid, nlwp, argv words)} of every process."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), int(fields[17]), argv)
    return out


def _memory_kib(pid):
    """(PSS, private) KiB of PID: its share of every page it maps, and the pages only it maps
    (what one more such process adds)."""
    found = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("Pss", "Private_Clean", "Private_Dirty"):
                    found[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found.get("Pss", 0), found.get("Private_Clean", 0) + found.get("Private_Dirty", 0)


def _sample(root, ssh_config):
    """(subworkers, {kind: [PSS KiB, private KiB, tasks, processes]}) of the tool ROOT's tree and the ssh
    masters it started (they leave the tree: ssh puts them in the background)."""
    procs = _processes()
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    config = str(ssh_config).encode()
    masters = {p for p, (_, _, argv) in procs.items()
               if argv[:1] == [b"ssh"] and config in argv and b"ControlMaster=yes" in argv}
    kinds = {kind: [0, 0, 0, 0] for kind in ("parent", "pdsh", "subworkers", "ssh masters",
                                             "other")}
    subworkers = 0
    for pid in tree | masters:
        if pid not in procs:
            continue
        _, nlwp, argv = procs[pid]
        if pid == root:
            kind = "parent"
        elif pid in masters:
            kind = "ssh masters"
        elif argv[:1] == [b"pdsh"]:
            kind = "pdsh"
        elif b"--subworker" in argv:
            kind, subworkers = "subworkers", subworkers + 1
        else:
            kind = "other"
        pss, private = _memory_kib(pid)
        for index, value in enumerate((pss, private, nlwp, 1)):
            kinds[kind][index] += value
    return subworkers, kinds


def subworker_cost(farm, tool, hosts, delay):
    """What the head holds while every host's subworker runs: the sample with the most
    subworkers of a `--parallel disable` of HOSTS (deletes taking DELAY s)."""
    prepare(farm, tool, hosts, delay)
    proc = subprocess.Popen([tool, "--for-real", "--vm-timeout", VM_TIMEOUT, "--parallel",
                             "disable", *hosts], env=farm.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    best = [(0, None)]

    def watch():
        while proc.poll() is None:
            sample = _sample(proc.pid, farm.ssh_config)
            if sample[0] >= best[0][0]:
                best[0] = sample
            time.sleep(SAMPLE_EVERY)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    proc.wait(900)
    watcher.join()
    return best[0]


def report_cost(cost, hosts):
    subworkers, kinds = cost
    print()
    print(f"what the head holds during a --parallel disable of {hosts} hosts (default fanout), "
          f"at the sample with the most subworkers ({subworkers})")
    print(f"    {'':14}{'PSS MiB':>9}{'private MiB':>13}{'tasks':>7}{'processes':>11}")
    for kind, (pss, private, tasks, count) in kinds.items():
        print(f"    {kind:14}{pss / 1024:>9.1f}{private / 1024:>13.1f}{tasks:>7}{count:>11}")
    if subworkers:
        per = [sum(v[i] for k, v in kinds.items() if k != "parent") / subworkers for i in range(4)]
        print(f"    {'per subworker':14}{per[0] / 1024:>9.1f}{per[1] / 1024:>13.1f}{per[2]:>7.1f}"
              f"{per[3]:>11.1f}")
        print("    (everything but the parent, / subworkers: its Python, its share of pdsh, "
              "its ssh master and sessions)")
    print(f"  rounds with fanout 32 at {hosts} hosts: {math.ceil(hosts / 32)}")
