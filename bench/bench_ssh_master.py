#!/usr/bin/env python3
"""The ssh part of one host's disable alone, the two ways (nothing asserted):

- two connections: the daemons' start and stop, each a plain ssh (before sshmaster.py);
- one connection: an OpenSSH master (hltcloud.proc.sshmaster.Master), both as sessions over it,
  then `ssh -O exit`.

    bench_ssh_master.py [ROUNDS]

On a simulated node (needs root), the two ways in turn ROUNDS times (default 10; a burst of
load falls on both alike), medians of: wall time, head CPU (every ssh the way started and
waited for; a master's own CPU after it leaves for the background is not in it: it only
relays the sessions), node CPU (the CPU of the node's sshd children: handshakes, sessions and
the service commands), and the connections the node accepted.
"""
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "simcluster"))
sys.path.insert(0, str(REPO / "lib"))


def node_cpu(cluster, host):
    """Seconds of CPU of the node's sshd's finished children (cutime + cstime)."""
    pid = (cluster.state / "nodes" / host / "sshd.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / 100  # clock ticks, USER_HZ = 100


def measure(cluster, host, way):
    before = (time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN),
              node_cpu(cluster, host), cluster.connections(host))
    way()
    time.sleep(0.3)  # the node's sshd reaps its children
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    head = after.ru_utime + after.ru_stime - before[1].ru_utime - before[1].ru_stime
    return (time.perf_counter() - before[0] - 0.3, head, node_cpu(cluster, host) - before[2],
            cluster.connections(host) - before[3])


def main(argv):
    import fixture
    from hltcloud.manage import daemons
    from hltcloud.proc import sshmaster
    from hltcloud.config import load
    from hltcloud.proc.runner import Ssh
    rounds = int(argv[0]) if argv else 10
    with fixture.bench_cluster("ssh master", count=1) as cluster:
        if cluster is None:
            return
        host = cluster.names[0]
        config = load(cluster.config_path)
        ssh = Ssh(config.ssh_config, config.ssh_user, config.connect_timeout)
        commands = [daemons.remote_argv(config, action) for action in ("start", "stop")]

        def two_connections():
            for remote in commands:
                assert ssh.run(host, remote).ok

        def one_connection():
            master = sshmaster.Master(ssh, host)
            try:
                master.start()
                for remote in commands:
                    assert master.run(host, remote).ok
            finally:
                master.close()

        ways = {"two connections (plain ssh)": two_connections,
                "one connection (master)": one_connection}
        results = {name: [] for name in ways}
        for _ in range(rounds):
            for name, way in ways.items():
                results[name].append(measure(cluster, host, way))
        print(f"the ssh part of one host's disable (start and stop of the daemons), median of "
              f"{rounds} rounds")
        print(f"{'':30}{'wall (s)':>10}{'head CPU (s)':>14}{'node CPU (s)':>14}{'connections':>13}")
        for name, rows in results.items():
            wall, head, node, conns = (statistics.median(column) for column in zip(*rows))
            print(f"{name:30}{wall:>10.3f}{head:>14.3f}{node:>14.3f}{conns:>13.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
