#!/usr/bin/env python3
"""Benchmarks of openstack-hlt-manage, printed side by side (nothing asserted).

    bench_manage.py [--repo CHECKOUT] [--before CHECKOUT] [--sizes N,...] [--delays D,...]
                    [startup] [status] [vmstats] [parallel] [farm]

--repo: the checkout whose bin/openstack-hlt-manage is measured (default: this one), e.g. a
worktree of main, to compare old and new with the same benchmark; the simulator, the
cluster and the helpers are always this checkout's. --before: another checkout measured in
the same run, side by side with --repo's (vmstats only), e.g. a worktree of f98a3ca.

1. start-up: `--help`, a usage error and a bad host list against a bare `python3 -c pass`
   (median of STARTUP_RUNS runs each, and the ratio).
2. `status --nvms` at 50 hypervisors / 1,000 VMs and at 500 hypervisors / 10,000 VMs
   (virtual hosts of a standalone simulator on loopback): API requests and wall time.
3. `vmstats` at 50 and at 500 hypervisors, with room on every one (one VM each) and with
   every one full (two VMs fill one): Placement requests, every API request and wall time,
   with --before the other checkout's tool run in turn on the same simulator. Once as the
   simulator answers on loopback (well under a millisecond: the client's CPU is the cost),
   once with each Placement answer taking PLACEMENT_DELAY, as a real Placement's does.
4. on the simulated cluster (needs root; skipped with a reason otherwise), 16 nodes with 3
   VMs each: `--for-real disable` of one node (with its timeline from the simulator's
   request log, and its floor: API round trips, one ssh connection and the two sessions
   over it, the cloud's own delete time, each measured), one `--parallel` subworker alone,
   and `--for-real --parallel disable` of all 16 nodes: wall time, ratio, Keystone
   authentications, and the head's CPU per host (the CPU of every process the run started,
   from getrusage(RUSAGE_CHILDREN)).

4. farm (needs root and two free slots of the simulated cluster; not run by default):
   `--for-real --parallel disable` of N hosts with 3 VMs each, every delete taking D seconds
   (--sizes, default 1,16,64,100; --delays, default 0,20), before (--before CHECKOUT, or
   --fanout 32, the old default) and after, side by side: wall, one host's wall, the run's
   CPU / cores and their ratio; then what one subworker costs the head (manage_farm.py).

   The floor's ssh parts are measured as the tool makes them (hltcloud.proc.sshmaster, this
   checkout's): the connection (an OpenSSH master: handshake, authentication), then the
   daemons' start and stop as sessions multiplexed over it. The tool overlaps the
   connection with its first API requests; the floor counts it whole (no overlap).
"""
import argparse
import json
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import manage_farm  # noqa: E402
TOOL = str(REPO / "bin" / "openstack-hlt-manage")  # --repo changes it
SIMULATOR = REPO / "tests" / "simcluster" / "simulator.py"
RUNS = 3
STARTUP_RUNS = 21


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandaloneSim:
    """The simulator alone on 127.0.0.1 (no nodes): enough for status at scale."""

    def __init__(self, *options):
        self.dir = tempfile.TemporaryDirectory(prefix="bench-manage-")
        state = Path(self.dir.name)
        password = secrets.token_urlsafe(16)
        (state / "admin-password").write_text(password)
        os.chmod(state / "admin-password", 0o600)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(state / "simulator.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(SIMULATOR), "--state", str(state),
                                      "--listen", "127.0.0.1", "--port", str(self.port),
                                      *options],
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
        times, counts, server = [], [], []
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
            server.append(sum(r["duration"] for r in log))
        assert rows == hosts and nvms == vms, (rows, nvms)
        best = times.index(min(times))
        return {"hosts": hosts, "vms": vms, "requests": counts[-1],
                "by_service": _by_service(log), "best": min(times), "median": sorted(times)[RUNS // 2],
                "server": server[best]}
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
    print(f"{'  the cloud answering (s)':24}" + "".join(f"{r['server']:>22.2f}" for r in runs))
    print(f"{'  the tool (s)':24}" + "".join(f"{r['best'] - r['server']:>22.2f}" for r in runs))
    print(f"{'ratio to the first':24}" + "".join(f"{r['best'] / runs[0]['best']:>21.2f}x" for r in runs))
    print("  (hosts x10: same requests; VMs x10: one more request a page of 1,000 servers;")
    print("   the cloud answering: the simulator's own time for the requests of the best run)")


VMSTATS_CASES = [(50, "room"), (500, "room"), (50, "full"), (500, "full")]
PLACEMENT_DELAY = 0.005  # seconds: a real Placement's answer (a few database queries)
# VCPU 1 at the allocation ratio 2.0: two m1.tiny fill a hypervisor; 64: room for 128
VMSTATS_INVENTORY = {"room": {"VCPU": 64, "MEMORY_MB": 65536, "DISK_GB": 4000},
                     "full": {"VCPU": 1, "MEMORY_MB": 65536, "DISK_GB": 4000}}


def bench_vmstats(hosts, fill, tools, delay=0.0):
    """vmstats of every tool in TOOLS ({label: path}), in turn, RUNS times, at HOSTS virtual
    hypervisors with room (one VM each) or FULL (two each), each Placement answer DELAY
    seconds late: {label: figures}."""
    sim = StandaloneSim("--answer-delay", f"placement={delay}")
    try:
        names = [f"hv{i:04d}.internal" for i in range(1, hosts + 1)]
        sim.sim("POST", "/sim/hosts", {"names": names, "virtual": True,
                                       "inventory": VMSTATS_INVENTORY[fill]})
        sim.sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
        _boot(sim, hosts * (2 if fill == "full" else 1))
        times = {label: [] for label in tools}
        logs, outputs = {}, {}
        for _ in range(RUNS):
            for label, tool in tools.items():
                sim.sim("DELETE", "/sim/requests")
                start = time.monotonic()
                done = subprocess.run([tool, "--json", "--flavor", "m1.tiny", "vmstats"],
                                      env=sim.env, capture_output=True, text=True, timeout=600)
                times[label].append(time.monotonic() - start)
                if done.returncode != 0:
                    raise SystemExit(f"bench: vmstats ({label}) failed: {done.stderr.strip()}")
                outputs[label] = json.loads(done.stdout)["capacity"]
                logs[label] = [r for r in sim.requests() if r["service"] != "sim"]
        if len({json.dumps(o, sort_keys=True) for o in outputs.values()}) != 1:
            raise SystemExit(f"bench: the tools disagree: {outputs}")
        return {label: {"placement": _by_service(logs[label]).get("placement", 0),
                        "requests": len(logs[label]), "best": min(times[label]),
                        "median": sorted(times[label])[RUNS // 2]} for label in tools}
    finally:
        sim.close()


def part_vmstats(before=None):
    tools = {"after": TOOL, **({"before": before} if before else {})}
    print("vmstats (standalone simulator, virtual hypervisors, flavor m1.tiny; "
          "room: one VM a hypervisor, full: two)")
    for label, tool in tools.items():
        print(f"  {label}: {tool}")
    for delay in (0.0, PLACEMENT_DELAY):
        print()
        print(f"each Placement answer {delay * 1000:.0f} ms late"
              + (" (the simulator as it is, on loopback)" if not delay else " (as a real one)"))
        _vmstats_table(tools, [bench_vmstats(hosts, fill, tools, delay)
                               for hosts, fill in VMSTATS_CASES])


def _vmstats_table(tools, runs):
    labels = [f"{hosts} hv, {fill}" for hosts, fill in VMSTATS_CASES]
    print(f"{'':28}" + "".join(f"{label:>16}" for label in labels))
    for what, key, form in (("Placement requests", "placement", "d"),
                            ("API requests, all", "requests", "d"),
                            ("wall time, best (s)", "best", ".2f"),
                            ("wall time, median (s)", "median", ".2f")):
        for label in tools:
            print(f"{what + ', ' + label:28}" + "".join(f"{r[label][key]:>16{form}}" for r in runs))
    for label in tools:
        flat = runs[1][label]["best"] / runs[0][label]["best"], runs[3][label]["best"] / runs[2][label]["best"]
        print(f"{'500 hv / 50 hv, ' + label:28}{'':>16}{flat[0]:>15.2f}x{'':>16}{flat[1]:>15.2f}x")


def _median_seconds(argvs, runs=STARTUP_RUNS, env=None):
    """Median wall and CPU (user + system) seconds of each of ARGVS, run in turn (a burst of
    load on the machine falls on all of them alike)."""
    times, cpus = [[] for _ in argvs], [[] for _ in argvs]
    for _ in range(runs):
        for index, argv in enumerate(argvs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, env=env, timeout=60)
            times[index].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[index].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return [(statistics.median(t), statistics.median(c)) for t, c in zip(times, cpus)]


def part_startup():
    """The tool's start-up when it needs no cloud, against the interpreter's own."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as home:
        config = Path(home, "hltcloud.conf")
        config.write_text("")
        env = {**os.environ, "HOME": home, "HLTCLOUD_CONFIG": str(config)}
        rows = [("python3 -c pass (PATH, as typed)", ["python3", "-c", "pass"]),
                (f"{Path(sys.executable).name} -c pass (interpreter itself)",
                 [sys.executable, "-c", "pass"]),
                ("openstack-hlt-manage --help", [TOOL, "--help"]),
                ("  same, interpreter itself", [sys.executable, TOOL, "--help"]),
                ("usage error (frobnicate)", [TOOL, "frobnicate"]),
                ("host list error (cn[03-01])", [TOOL, "--for-real", "disable", "cn[03-01]"])]
        times = list(zip([label for label, _ in rows],
                         _median_seconds([argv for _, argv in rows], env=env)))
    typed, bare = times[0][1], times[1][1]
    print(f"start-up without the cloud (median of {STARTUP_RUNS} runs)")
    print(f"{'':44}{'wall (s)':>10}{'ratio':>8}{'CPU (s)':>10}{'ratio':>8}")
    for index, (label, (wall, cpu)) in enumerate(times):
        base = bare if index in (1, 3) else typed
        print(f"{label:44}{wall:>10.3f}{wall / base[0]:>7.2f}x{cpu:>10.3f}{cpu / base[1]:>7.2f}x")
    print("  (ratio: to python3 -c pass started the same way; python3 on PATH is a pyenv shim here)")


def _log(cluster):
    log = cluster.sim("GET", "/sim/requests")
    return log["requests"] if isinstance(log, dict) else log


def _tool(cluster, *args, env=None, timeout=600):
    """Run the measured tool: (result, wall seconds, CPU seconds of it and everything it
    started, its start as a time.time())."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched, started = time.time(), time.perf_counter()
    done = subprocess.run([TOOL, *args], env=env or cluster.env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu, launched


def _machine_cpu():
    """CPU seconds this machine has spent busy so far, every process (the simulated nodes, the
    simulator and the tools share its cores)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _prepare(cluster, hosts):
    """HOSTS enabled and up, every other host disabled, 3 VMs on each of HOSTS; the VM count."""
    cluster.reset()
    cluster.sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
    up, _, _, _ = _tool(cluster, "--for-real", "--parallel", "enable", *hosts, timeout=300)
    if up.returncode != 0:
        raise SystemExit(f"bench: enable failed: {up.stdout[-500:]}")
    _wait_up(cluster, hosts)
    fill, _, _, _ = _tool(cluster, "--for-real", "--vm-timeout", "120", "runvms", timeout=300)
    if fill.returncode != 0:
        raise SystemExit(f"bench: runvms failed: {fill.stdout[-500:]}")
    servers = cluster.sim("GET", "/sim/servers")["servers"]
    return len(servers)


def _timeline(log, launched, wall):
    """Where a disable of one node spends its time, from the simulator's request log:
    [(phase, seconds)]. The requests come in this order: [authentication,] the service,
    PUT disable, (ssh: start), the VMs, DELETEs, looks at the VMs, (ssh: stop), PUT forced down."""
    api = [r for r in log if r["service"] != "sim"]
    def end(entry):
        return entry["time"] + entry["duration"]
    puts = [i for i, r in enumerate(api) if r["method"] == "PUT"]
    deletes = [i for i, r in enumerate(api) if r["method"] == "DELETE"]
    first, last = puts[0], puts[-1]
    startup = api[0]["time"] - launched
    ssh_start = api[first + 1]["time"] - end(api[first])
    ssh_stop = api[last]["time"] - end(api[last - 1])
    waiting = end(api[last - 1]) - end(api[deletes[-1]])
    looks = last - 1 - deletes[-1]
    leaving = launched + wall - end(api[-1])
    auth = sum(r["duration"] for r in api if r["service"] == "identity")
    rest = wall - startup - ssh_start - ssh_stop - waiting - leaving
    return [("start-up: python, imports, config", startup),
            (f"{len(api) - looks} API requests and the client between them", rest),
            ("  of which Keystone's answer", auth),
            ("ssh: start the daemons (with any connecting)", ssh_start),
            (f"waiting for the cloud's deletes ({looks} looks)", waiting),
            ("ssh: stop the daemons (with any connecting)", ssh_stop),
            ("exit", leaving),
            ("total", wall)]


def _print_timeline(title, one, other):
    print(title)
    print(f"    {'':50}{'1 node':>10}{'1 subworker':>13}")
    for (label, seconds), (label2, seconds2) in zip(one, other):
        print(f"    {label:50}{seconds:>9.3f}s{seconds2:>12.3f}s"
              + (f"  ({label2.split('(')[-1]}" if label != label2 else ""))


def _round_trip(cluster, host, runs=20):
    """Median seconds of one light Nova request through the tool's stack (cloud.nova)."""
    sys.path.insert(0, str(REPO / "lib"))
    from hltcloud.cloud.nova import Nova
    from hltcloud.cloud.session import Cloud
    nova = Nova(Cloud(cluster.env))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        nova.services(host)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _ssh_sessions(cluster, host):
    """Seconds of the ssh parts of a disable, made as the tool makes them: one connection
    (a master), then the start and the stop of the daemons as sessions over it."""
    sys.path.insert(0, str(REPO / "lib"))
    from hltcloud.manage import daemons
    from hltcloud.proc import sshmaster
    from hltcloud.config import load
    from hltcloud.proc.runner import Ssh
    config = load(cluster.config_path)
    ssh = Ssh(config.ssh_config, config.ssh_user, config.connect_timeout)
    master = sshmaster.Master(ssh, host)
    out = {}
    try:
        started = time.perf_counter()
        master.start()
        failed = master.connected(daemons.DAEMON_TIMEOUT)
        out["connection"] = time.perf_counter() - started
        if failed is not None or not master.up:
            raise SystemExit(f"bench: no ssh master to {host}")
        for action in ("start", "stop"):
            started = time.perf_counter()
            result = master.run(host, daemons.remote_argv(config, action))
            out[action] = time.perf_counter() - started
            if not result.ok:
                raise SystemExit(f"bench: ssh {action} on {host}: {result.reason()}")
    finally:
        master.close()
    return out


def _delete_time(cluster, host):
    """Seconds from the DELETEs of HOST's VMs (compute running) until the cloud has none."""
    sys.path.insert(0, str(REPO / "lib"))
    from hltcloud.cloud.nova import Nova
    from hltcloud.cloud.session import Cloud
    nova = Nova(Cloud(cluster.env))
    ids = [v["id"] for v in cluster.sim("GET", "/sim/servers")["servers"] if v["host"] == host]
    started = time.perf_counter()
    for vm in ids:
        nova.delete_server(vm)
    while any(v["id"] in ids for v in cluster.sim("GET", "/sim/servers")["servers"]):
        time.sleep(0.01)
    return time.perf_counter() - started, len(ids)


def _measured(cluster, what, count, vms, *args, env=None):
    """One measured run of the tool, the simulator's log cleared first: its row of the table
    (hosts, VMs, wall, Keystone authentications, head CPU, API requests, machine CPU), the
    log and when it was launched (for its timeline)."""
    cluster.sim("DELETE", "/sim/requests")
    busy = _machine_cpu()
    done, wall, cpu, launched = _tool(cluster, *args, env=env)
    busy = _machine_cpu() - busy
    _check(done, what)
    log = _log(cluster)
    row = (count, vms, wall, _auths(log), cpu, len([r for r in log if r["service"] != "sim"]),
           busy)
    return row, log, launched


def part_parallel():
    sys.path.insert(0, str(REPO / "tests" / "simcluster"))
    sys.path.insert(0, str(REPO / "lib"))
    import fixture
    with fixture.bench_cluster("parallel disable", count=16) as cluster:
        if cluster is None:
            return
        cluster.reset()
        cluster.add_image("CentOS6-build13", size_mb=1)  # the configured runvms image
        one = cluster.names[:1]
        results = {}
        # 1. one node, sequential, with its timeline
        vms = _prepare(cluster, one)
        results["one"], log, launched = _measured(cluster, "disable", 1, vms, "--for-real",
                                                  "--vm-timeout", "120", "disable", *one)
        sequential = _timeline(log, launched, results["one"][2])
        # 2. one --parallel subworker alone (the parent's token handed over), with its timeline
        vms = _prepare(cluster, one)
        from hltcloud.cloud.session import Cloud
        from hltcloud.cloud.credentials import SECRETS
        env = {k: v for k, v in {**cluster.env, **Cloud(cluster.env).handoff_env()}.items()
               if k not in SECRETS}
        results["sub"], log, launched = _measured(
            cluster, "subworker disable", 1, vms, "--line-output", "--subworker", "--for-real",
            "--vm-timeout", "120", "disable", *one, env=env)
        subworker = _timeline(log, launched, results["sub"][2])
        # 3. the floor of one node: its parts, measured one by one
        vms = _prepare(cluster, one)
        rtt = _round_trip(cluster, one[0])
        delete, deleted = _delete_time(cluster, one[0])
        ssh = _ssh_sessions(cluster, one[0])
        # 4. 16 nodes --parallel
        vms = _prepare(cluster, cluster.names)
        results["many"], _, _ = _measured(cluster, "parallel disable", len(cluster.names), vms,
                                          "--for-real", "--vm-timeout", "120", "--parallel",
                                          "disable", *cluster.names)
        _report_parallel(results, sequential, subworker, rtt, delete, deleted, ssh)


def _check(done, what):
    if done.returncode != 0:
        raise SystemExit(f"bench: {what} failed ({done.returncode}): {done.stdout[-800:]} "
                         f"{done.stderr[-800:]}")


def _auths(log):
    return sum(1 for r in log if r["service"] == "identity" and r["method"] == "POST")


def _report_parallel(results, sequential, subworker, rtt, delete, deleted, ssh):
    one, sub, many = results["one"], results["sub"], results["many"]
    print("--for-real disable (simulated cluster, real ssh nodes, 3 VMs a node)")
    print(f"{'':34}{'1 node':>10}{'1 subworker':>13}{'16 nodes --parallel':>21}{'ratio':>8}")
    print(f"{'VMs deleted':34}{one[1]:>10}{sub[1]:>13}{many[1]:>21}")
    print(f"{'wall time (s)':34}{one[2]:>10.2f}{sub[2]:>13.2f}{many[2]:>21.2f}{many[2] / one[2]:>7.2f}x")
    print(f"{'API requests (Keystone included)':34}{one[5]:>10}{sub[5]:>13}{many[5]:>21}")
    print(f"{'Keystone authentications':34}{one[3]:>10}{sub[3]:>13}{many[3]:>21}")
    print(f"{'head CPU, all processes (s)':34}{one[4]:>10.2f}{sub[4]:>13.2f}{many[4]:>21.2f}")
    print(f"{'head CPU per host (s)':34}{one[4]:>10.2f}{sub[4]:>13.2f}{many[4] / many[0]:>21.3f}")
    cores = os.cpu_count()
    print(f"{'machine CPU, every process (s)':34}{one[6]:>10.2f}{'':>13}{many[6]:>21.2f}")
    print(f"{f'cores busy (of {cores})':34}{one[6] / one[2]:>10.2f}{'':>13}"
          f"{many[6] / many[2]:>21.2f}")
    print(f"{'machine CPU per host (s)':34}{one[6]:>10.2f}{'':>13}{many[6] / many[0]:>21.3f}")
    requests = one[5] - one[3]
    floor = requests * rtt + ssh["connection"] + ssh["start"] + ssh["stop"] + delete
    print()
    print("floor of `--for-real disable` of one node (each part measured on its own)")
    print(f"    {requests} API round trips x {rtt * 1000:.1f} ms{'':20}{requests * rtt:>8.3f} s")
    print(f"    ssh connection (one, a master){'':19}{ssh['connection']:>8.3f} s")
    print(f"    ssh session over it: start the daemons{'':11}{ssh['start']:>8.3f} s")
    print(f"    ssh session over it: stop the daemons{'':12}{ssh['stop']:>8.3f} s")
    print(f"    the cloud's own delete of {deleted} VMs{'':19}{delete:>8.3f} s")
    print(f"    floor{'':44}{floor:>8.3f} s")
    print(f"    1 node measured: {one[2]:.3f} s = {one[2] / floor:.2f}x the floor")
    print()
    _print_timeline("where one node's disable spends its time (from the simulator's request log)",
                    sequential, subworker)


def _wait_up(cluster, names, timeout=60):
    """Exactly NAMES up (computes stopped by a reset stay "up" for the service down time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = cluster.sim("GET", "/sim/hosts")["hosts"]
        if {h["name"] for h in hosts if h.get("up")} == set(names):
            return
        time.sleep(0.5)
    raise SystemExit(f"bench: hosts not up: {names}")


def _numbers(text):
    try:
        return [int(word) for word in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="bench_manage.py", description=__doc__.split("\n\n")[0],
        epilog="parts: " + ", ".join(PARTS) + " (default: all but farm, which needs 2 slots "
               "and about 15 minutes)")
    parser.add_argument("--repo", metavar="CHECKOUT",
                        help="measure CHECKOUT's bin/openstack-hlt-manage (default: this one)")
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="vmstats and farm: the tool before, CHECKOUT's (farm's default: "
                             "this one with --fanout 32)")
    parser.add_argument("--sizes", type=_numbers, default=FARM_SIZES, metavar="N,N,...",
                        help="farm: hosts a run (default %(default)s; 100 takes 2 slots)")
    parser.add_argument("--delays", type=_numbers, default=FARM_DELAYS, metavar="D,D,...",
                        help="farm: seconds each VM's delete takes (default %(default)s)")
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help="what to measure: " + ", ".join(PARTS))
    opts = parser.parse_args(argv)
    unknown = [part for part in opts.parts if part not in PARTS]
    if unknown:
        parser.error(f"no such part: {unknown[0]} (parts: {', '.join(PARTS)})")
    return opts


PARTS = ("startup", "status", "vmstats", "parallel", "farm")
FARM_SIZES = "1,16,64,100"  # 100: two slots of 50 nodes, what fits beside other test runs
FARM_DELAYS = "0,20"


def main(argv):
    global TOOL
    opts = parse(argv)
    if opts.repo:
        TOOL = str(Path(opts.repo).resolve() / "bin" / "openstack-hlt-manage")
    before = str(Path(opts.before).resolve() / "bin" / "openstack-hlt-manage") if opts.before else None
    parts = {"startup": part_startup, "status": part_status,
             "vmstats": lambda: part_vmstats(before), "parallel": part_parallel,
             "farm": lambda: manage_farm.part_farm(TOOL, opts.sizes, opts.delays, opts.before)}
    print(f"measuring {TOOL}")
    for name in opts.parts or [p for p in PARTS if p != "farm"]:
        print()
        parts[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
