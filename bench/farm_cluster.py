"""A simulated farm larger than one slot, for bench_manage.py's farm part (nothing asserted).

One slot holds at most 50 nodes (its /26 of 198.18.0.0/24). Farm(count) takes as many slots
as COUNT needs: the first runs the simulator, the others bring up nodes only. Their nodes
become hypervisors of the first slot's simulator (POST /sim/hosts, node-backed), their compute
agents reach it through a relay on their own head address and port (a thread here), and one
ssh config, known_hosts and client key (the first slot's, added to the others' authorized
keys) reach every node. The tools then see one cloud of COUNT real ssh nodes.

Two things of this machine, not of a farm, are taken out, for before and after alike: root's
~/.bashrc runs `pyenv init` (with a `pyenv rehash` under one global lock) in every ssh
session, which is every node's here (0.13 against 0.026 CPU s a session, and sessions
queueing on that lock when many start at once): each node gets /dev/null over it in its own
mount namespace; and `python3` on PATH is a pyenv shim (0.07 CPU s a start, bash scripts):
the tools' PATH starts with the interpreter's own directory.

CPU accounting (RunCpu): what a run costs every process that takes part, read from the
kernel, so that other work on the machine does not count: the tool and all it starts
(getrusage of our children), this process (the relay), the simulator, each node's sshd with
the sessions it has reaped (cutime/cstime), each node's compute agent.
"""
import os
import resource
import select
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "simcluster"))
import fixture  # noqa: E402
import netnodes  # noqa: E402
import node_quirks  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class _Relay(socketserver.ThreadingTCPServer):
    """Every connection to (addr, port) is carried to TARGET (the simulator) and back."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen, target):
        self.target = target
        super().__init__(listen, _Pump)


class _Pump(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            upstream = socket.create_connection(self.server.target, timeout=10)
        except OSError:
            return
        ends = {self.request: upstream, upstream: self.request}
        with upstream:
            while True:
                ready, _, _ = select.select(list(ends), [], [], 60)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)


def split_counts(count):
    """Nodes per slot for COUNT nodes: as even as possible, at most MAX_NODES a slot."""
    slots = -(-count // netnodes.MAX_NODES)
    return [count // slots + (1 if i < count % slots else 0) for i in range(slots)]


class Farm:
    """COUNT simulated nodes over as many slots as needed, seen as one cloud."""

    def __init__(self, count):
        self.parts, self.relays = [], []
        self.work = Path(tempfile.mkdtemp(prefix="bench-farm-"))
        first = 1
        try:
            for index, size in enumerate(split_counts(count)):
                names = [f"cn{i:03d}.internal" for i in range(first, first + size)]
                first += size
                self.parts.append(fixture.SimCluster.start(names=names, with_simulator=index == 0))
            self.main = self.parts[0]
            self._join()
        except BaseException:
            self.stop()
            raise
        self.names = [n for part in self.parts for n in part.names]

    def _join(self):
        main = self.main
        key = (main.state / "ssh" / "id_ed25519.pub").read_text()
        known = [(main.state / "ssh" / "known_hosts").read_text()]
        for part in self.parts[1:]:
            with open(part.state / "ssh" / "authorized_keys", "a") as keys:
                keys.write(key)
            known.append((part.state / "ssh" / "known_hosts").read_text())
            relay = _Relay((part.head_addr, part.port), ("127.0.0.1", main.port))
            threading.Thread(target=relay.serve_forever, daemon=True).start()
            self.relays.append(relay)
            main.sim("POST", "/sim/hosts", {"names": part.names, "virtual": False})
        (self.work / "known_hosts").write_text("".join(known))
        blocks = [f"Host {name} {netnodes.short(name)}\n    HostName {part.layout.node(name)['addr']}\n"
                  f"    HostKeyAlias {name}\n" for part in self.parts for name in part.names]
        common = Path(main.ssh_config).read_text()
        common = common[common.index("Host *"):].replace(
            str(main.state / "ssh" / "known_hosts"), str(self.work / "known_hosts"))
        self.ssh_config = self.work / "ssh_config"
        self.ssh_config.write_text("\n".join(blocks) + "\n" + common)
        site = Path(main.config_path).read_text().replace(
            f"config = {main.ssh_config}\n", f"config = {self.ssh_config}\n")
        self.config_path = self.work / "hltcloud.conf"
        self.config_path.write_text(site)
        interpreter = os.path.dirname(os.path.realpath(sys.executable))
        self.env = {**main.env, "HLTCLOUD_CONFIG": str(self.config_path),
                    "PATH": f"{interpreter}:{main.env.get('PATH', '/usr/bin:/bin')}"}
        self._without_bashrc()

    def _without_bashrc(self):
        """/dev/null over root's ~/.bashrc in every node's mount namespace (node_quirks.py)."""
        node_quirks.without_root_bashrc(part.layout.node_dir(name)
                                        for part in self.parts for name in part.names)

    def sim(self, method, path, body=None):
        return self.main.sim(method, path, body)

    def add_image(self, name, size_mb=1):
        return self.main.add_image(name, size_mb=size_mb)

    def reset(self):
        for part in self.parts:
            part.reset()  # only the first has a simulator to reset

    def stop(self):
        for relay in self.relays:
            relay.shutdown()
            relay.server_close()
        for part in reversed(self.parts):
            part.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def cpu(self):
        """A RunCpu snapshot of every process of the farm and of our children."""
        return RunCpu(self)


def _proc_seconds(pid, children=False):
    """CPU seconds of PID (utime + stime, with CHILDREN also those of the children it has
    reaped), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


class RunCpu:
    """CPU seconds so far of: our children (the tool's tree), ourselves (the relay), the
    simulator, the nodes' sshds (with their reaped sessions), the compute agents. The
    difference of two snapshots is what happened between them; agents started or ended in
    between count from the later snapshot's pid files and the earlier ones'."""

    def __init__(self, farm):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        self.head = children.ru_utime + children.ru_stime
        self.bench = me.ru_utime + me.ru_stime
        self.sim_pid = _simulator_pid(farm.main.state)
        self.cloud = _proc_seconds(self.sim_pid) if self.sim_pid else 0.0
        self.sshds, self.agents = {}, {}
        for part in farm.parts:
            for name in part.names:
                sshd = netnodes.read_pid(part.layout.node_dir(name) / "sshd.pid")
                if sshd:
                    self.sshds[sshd] = _proc_seconds(sshd, children=True)
                for pidfile in part.layout.run_dir(name).glob("*.pid"):
                    pid = netnodes.read_pid(pidfile)
                    if pid:
                        self.agents[pid] = _proc_seconds(pid)

    def since(self, before):
        """{part: seconds} from BEFORE (an earlier snapshot) to this one."""
        agents = set(before.agents) | set(self.agents)
        return {
            "head": self.head - before.head,
            "relay": self.bench - before.bench,
            "simulator": self.cloud - before.cloud,
            "node sessions": sum(self.sshds.get(p, 0) - before.sshds.get(p, 0) for p in self.sshds),
            "agents": sum(max(self.agents.get(p, _proc_seconds(p)) - before.agents.get(p, 0), 0)
                          for p in agents),
        }


def machine_cpu():
    """CPU seconds the whole machine has been busy so far, every process."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # less idle and iowait


def _simulator_pid(state):
    try:
        for line in (Path(state) / "pids").read_text().splitlines():
            pid, _, what = line.partition(" ")
            if what.strip() == "simulator":
                return int(pid)
    except (OSError, ValueError):
        pass
    return None
