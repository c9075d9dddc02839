"""rsync-wave.py --pipeline on the simulated cluster: real files through real ssh chains."""
import io
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from helpers import (cmdline, eventually, interrupt, node_file, processes, sha1_of, transfer_lines,
                     twins)

from hltcloud import report
from hltcloud.proc import runner
from hltcloud.transfer import common as transfer
from hltcloud.transfer.chain.commands import ChainCommands
from hltcloud.transfer.chain.events import CleanUp, Ended, Line, RouteAround, Tick, status_words
from hltcloud.transfer.chain.loop import ChainRun

INSTANCES = "/var/lib/nova/instances"
TOOL = Path(__file__).resolve().parents[2] / "bin" / "rsync-wave.py"


@pytest.fixture
def payload(tmp_path):
    def make(size):
        source = tmp_path / "payload file.img"  # a space: SOURCE never is a shell word
        with open(source, "wb") as handle:
            for _ in range(size // (1 << 20)):
                handle.write(os.urandom(1 << 20))
            handle.write(os.urandom(size % (1 << 20)))
        return source, f"{INSTANCES}/pipe-{uuid.uuid4().hex[:12]}"
    return make


def our_processes(dest):
    """Processes (on the head or in any node: one pid namespace) running our node scripts for
    DEST (other test runs on this machine have their own)."""
    def inspect(entry):
        line = cmdline(entry)
        if "hltpipe-" not in line or Path(dest).name not in line:
            return None
        stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        wchan = (entry / "wchan").read_text()
        # pid, state, ppid, pgid, where it sleeps, what it is: enough to see what hangs
        return (entry.name, stat[0], stat[1], stat[2], wchan, line[:40] + " ... " + line[-60:])
    return processes(inspect)


def test_every_node_gets_the_file_through_one_chain(cluster, payload):
    source, dest = payload(5 * 1024 * 1024 + 3)
    res = cluster.run_tool("rsync-wave.py", "--pipeline", "--line-output", str(source), dest,
                           ",".join(cluster.names))
    assert res.returncode == 0, res.stdout + res.stderr
    for name in cluster.names:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source), name
    pairs = {target: src for src, target, _ in transfer_lines(res.stdout)}
    assert sorted(pairs) == sorted(cluster.names)
    # One chain in host order: each host got it from the one before it.
    for before, host in zip(cluster.names, cluster.names[1:]):
        assert pairs[host] == before
    lines = res.stdout.splitlines()
    assert lines[:2] == [f"transferring {source} to {len(cluster.names)} host(s)...",
                         f"pipelined: 1 chain(s) of {len(cluster.names)} host(s)"]
    assert any(re.match(r"pipelining\.\.\.chain 1: \d+/5 MB ", line) for line in lines)
    assert "\r" not in res.stdout  # --line-output: whole lines only
    assert "file size: 5MB" in lines and lines[-1] == f"All {len(cluster.names)} host(s) have the file."
    assert twins(cluster, dest) == []
    assert eventually(lambda: our_processes(dest), 5) == []


def test_two_chains_start_at_the_head(cluster, payload):
    source, dest = payload(1024 * 1024)
    res = cluster.run_tool("rsync-wave.py", "--pipeline", "--head-slots", "2", str(source), dest,
                           *cluster.names)
    assert res.returncode == 0, res.stdout + res.stderr
    pairs = {target: src for src, target, _ in transfer_lines(res.stdout)}
    half = len(cluster.names) // 2
    first, second = cluster.names[:half], cluster.names[half:]
    assert pairs[first[0]] == pairs[second[0]] and pairs[first[0]] not in cluster.names
    for chain in (first, second):
        for before, host in zip(chain, chain[1:]):
            assert pairs[host] == before
    for name in cluster.names:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source)


def test_dry_run_prints_the_chains_and_copies_nothing(cluster, payload):
    source, dest = payload(1000)
    res = cluster.run_tool("rsync-wave.py", "--pipeline", "--dry-run", "--head-slots", "2",
                           str(source), dest, *cluster.names)
    assert res.returncode == 0, res.stderr
    hops = re.findall(r"^\[DRY \] (\S+) --> (\S+)$", res.stdout, re.M)
    half = len(cluster.names) // 2
    first, second = cluster.names[:half], cluster.names[half:]
    head = hops[0][0]
    assert hops == list(zip([head, *first], first)) + list(zip([head, *second], second))
    assert "chain 2:" in res.stdout.splitlines()
    assert not any(node_file(cluster, n, dest).exists() for n in cluster.names)
    assert twins(cluster, dest) == []


def test_middle_host_lost_mid_transfer_the_rest_still_get_it(cluster, payload):
    """cn03 of the chain cn01..cn06 loses its link while the file flows through it: the hosts
    after it are completed by the wave from hosts that have the file, in the same run; cn03
    is reported and the exit status is 1."""
    source, dest = payload(12 * 1024 * 1024)
    for name in cluster.names:
        cluster.shape(name, "20mbit")  # ~5 s through the chain: time to cut it mid-way
    victim = cluster.names[2]
    proc = subprocess.Popen([str(TOOL), "--pipeline", "--line-output", "--timeout", "4",
                             "--tries", "1", str(source), dest, *cluster.names],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        tmp = node_file(cluster, victim, dest).parent
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # what it has received so far, in the run's private directory
            sizes = [p.stat().st_size for p in tmp.glob(f".{Path(dest).name}.pipe-*/data")]
            if sizes and max(sizes) > 1024 * 1024:
                break
            time.sleep(0.1)
        cluster.fault(victim, "down")
        for name in cluster.names:  # the survivors at full speed for the completion
            if name != victim:
                cluster.shape(name, None)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    print(out, err)
    assert proc.returncode == 1, out + err
    for name in cluster.names:
        if name != victim:
            assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source), (name, out)
    assert not node_file(cluster, victim, dest).exists()
    assert re.search(rf"^\[WARN\] \S+ --> {re.escape(victim)}: ", out, re.M), out
    assert "completing" in out and "with the wave" in out
    assert f"Failed on 1 host(s): {victim}" in out
    survivors = [n for n in cluster.names if n != victim]
    left = eventually(lambda: twins(cluster, dest, survivors), 10)
    assert left == [], (left, our_processes(dest), out)
    # The cut-off host cleans up by itself too (its own stall watchdog), link or no link.
    assert eventually(lambda: twins(cluster, dest, [victim]), 20) == []
    assert eventually(lambda: our_processes(dest), 20) == []


def test_sigint_leaves_no_process_and_no_final_file(cluster, payload):
    source, dest = payload(16 * 1024 * 1024)
    for name in cluster.names:
        cluster.shape(name, "10mbit")  # ~13 s: the interrupt lands mid-transfer
    run = interrupt([str(TOOL), "--pipeline", str(source), dest, *cluster.names], cluster.env,
                    when=lambda: any(p.stat().st_size > 0 for t in twins(cluster, dest)
                                     for p in t.glob("data")),
                    settle=1, timeout=30, poll_step=0.2)  # settle: data through the whole chain
    out, err = run.out, run.err
    assert run.status == 130, out + err
    assert "interrupted" in err
    left = eventually(lambda: our_processes(dest), 10)
    assert left == [], "\n".join(map(str, left))
    assert not any(node_file(cluster, n, dest).exists() for n in cluster.names)
    assert eventually(lambda: twins(cluster, dest), 10) == []


def test_a_hostile_nova_user_gets_nothing_of_roots(cluster, hostile_nova, payload):
    """Issue 19: the pipelined chains while the nova user of every node races DEST and the
    run's private directories (tests/simcluster/hostile_nova.py): a host reported done holds
    the verified file of root's at DEST, any other is reported failed in one line, nothing
    of root's lands anywhere else, and the watched root directories are unchanged."""
    source, dest = payload(4 * 1024 * 1024)
    hostile_nova.target(dest)
    res = cluster.run_tool("rsync-wave.py", "--pipeline", "--timeout", "5", "--tries", "2",
                           str(source), dest, *cluster.names)
    print(res.stdout, res.stderr)
    done = [target for _, target, _ in transfer_lines(res.stdout)]
    assert hostile_nova.problems(res, dest, done, (0, 0), sha1_of(source)) == []


def test_prefill_pipelines_by_default_and_waves_on_request(cluster):
    cluster.add_image("pipe-img", size_mb=2)
    hosts = ",".join(cluster.names[:3])
    res = cluster.run_tool("openstack-prefill-cache", "pipe-img", hosts)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pipelined: 1 chain(s) of 3 host(s)" in res.stdout.splitlines()
    assert res.stdout.count("Image conversion done") == 3
    cluster.reset()
    cluster.add_image("wave-img", size_mb=2)
    res = cluster.run_tool("openstack-prefill-cache", "--wave", "wave-img", hosts)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pipelined:" not in res.stdout and res.stdout.count("Image conversion done") == 3


@pytest.mark.parametrize("slow_at", [[2], [1, 2]], ids=["one-slow-node", "two-slow-nodes-side-by-side"])
def test_a_slow_node_is_taken_out_of_the_chain(cluster, payload, slow_at):
    """Every link at 10mbit but the slow nodes' at 2mbit: the slow nodes are routed around
    (the host after them takes over from the host before them, keeping what it got; the
    hosts behind keep their sessions), finish on their own (the first one fed by the last
    host, once that host holds what it holds), and every host ends with the verified file;
    the others are done well before the slow ones."""
    source, dest = payload(8 * 1024 * 1024)
    slow = [cluster.names[i] for i in slow_at]
    for name in cluster.names:
        # 10mbit: the host before the slow ones is mostly still receiving when they are found
        cluster.shape(name, "2mbit" if name in slow else "10mbit")
    opened = {name: cluster.connections(name) for name in cluster.names}
    started = time.monotonic()
    res = cluster.run_tool("rsync-wave.py", "--pipeline", "--line-output", str(source), dest,
                           *cluster.names)
    print(res.stdout, res.stderr, f"{time.monotonic() - started:.1f} s")
    assert res.returncode == 0, res.stdout + res.stderr
    for name in cluster.names:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source), name
    for name in slow:
        assert re.search(rf"^{re.escape(name)} is slow .*: taken out of the chain, "
                         rf"\S+ --> \S+ now; {re.escape(name)} finishes on its own$",
                         res.stdout, re.M), res.stdout
    assert "with the wave" not in res.stdout  # routed around, not failed
    done = transfer_lines(res.stdout)  # in the order the hosts finished
    order = [target for _, target, _ in done]
    assert sorted(order) == sorted(cluster.names)
    fast = [n for n in cluster.names if n not in slow]
    assert max(order.index(n) for n in fast) < min(order.index(n) for n in slow), order
    # The host before the first slow node feeds the hosts behind the slow ones now (or the
    # head, when that host's copy was complete already). The first slow node moves to the
    # end of the chain (it took nothing over): the last host feeds it.
    pairs = {target: src for src, target, _ in done}
    before, last = cluster.names[slow_at[0] - 1], cluster.names[-1]
    feeders = (before, pairs[cluster.names[0]])
    assert pairs[cluster.names[slow_at[-1] + 1]] in feeders
    assert re.search(rf"^{re.escape(slow[0])} moves to the end of its chain: "
                     rf"{re.escape(last)} --> {re.escape(slow[0])} now$", res.stdout, re.M)
    assert pairs[slow[0]] == last and all(pairs[n] in feeders for n in slow[1:])
    # Connections each node accepted (counted by the node): the host after the slow ones one
    # more (its new receiver), the hosts behind it none (a forwarder and a receiver each, the
    # last host a receiver only), as if there had been no slow node, but the last host one
    # more (the forwarder that feeds the first slow node).
    new = {name: cluster.connections(name) - opened[name] for name in cluster.names}
    behind = cluster.names[slow_at[-1] + 1:]
    assert [new[name] for name in behind] == [3] + [2] * (len(behind) - 2) + [2], new
    assert eventually(lambda: twins(cluster, dest), 10) == []
    assert eventually(lambda: our_processes(dest), 10) == []


class _UpstreamDoneFirst:
    """Hooks of the real loop on the real nodes, for one decision taken at a chosen moment:
    cn02 is routed around as soon as cn01's receiver has put its copy in place, and cn01's
    "OK" and the end of its session are taken in only after the route-around forwarder has
    ended (they travel through another ssh, and may come that late): the head still counts
    cn01 as receiving, so it starts a forwarder on cn01 for the hosts behind cn02, which finds
    no receiver there. Until then cn02's heartbeats are dropped (the slow-node rule never
    finds it by itself), and the CLEANUP after the run is left out (the scripts must clean up
    after themselves)."""
    def __init__(self, final_of, take_over):
        self.final_of, self.held, self.routed = final_of, [], False
        self.take_over = take_over  # cn03 takes over (once it has bytes), or starts again

    def _late_done(self, state):
        late = [s for s in state.sessions.values() if s.late]
        return self.routed and late and all(s.done for s in late)

    @staticmethod
    def _about(host, event, state, kinds):
        if isinstance(event, Ended):
            return "end" in kinds and state.sessions[event.session].carries == host
        words = isinstance(event, Line) and status_words(event.text)
        return bool(words) and words[0] in kinds and words[1] == host

    def events(self, event, state):
        if self._late_done(state):
            out, self.held = self.held + [event], []
            return out
        if self._about("cn01.internal", event, state, ("OK", "end")):
            self.held.append(event)
            return []
        if not self.routed and self._about("cn02.internal", event, state, ("P",)):
            return []
        if isinstance(event, Tick) and not self.routed and self.final_of("cn01.internal").exists() \
                and (state.hosts["cn03.internal"].bytes or not self.take_over):
            self.routed = True
            return [event, RouteAround("cn02.internal", take_over=self.take_over)]
        return [event]

    @staticmethod
    def actions(action, _state):
        return [] if isinstance(action, CleanUp) else [action]


@pytest.mark.parametrize("take_over", [True, False], ids=["take-over", "start-again"])
def test_a_route_around_whose_upstream_just_finished_is_fed_by_the_head(cluster, payload,
                                                                        take_over):
    """The race of a route-around: the upstream's copy completes as the decision is taken.
    The forwarder started there says GONE, the head feeds the host after the slow one (from
    the byte it had, when it takes over; from byte 0 when the hosts behind start again),
    every copy is verified, and nothing is left on any node."""
    names = cluster.names[:4]
    assert names == [f"cn0{i}.internal" for i in range(1, 5)]
    source, dest = payload(4 * 1024 * 1024)
    cluster.shape(names[1], "2mbit")  # cn02 and the hosts behind it are still receiving
    out = io.StringIO()
    cmds = ChainCommands(runner.Ssh(cluster.ssh_config, "root", 3), dest,
                         *transfer.prepare_copy(str(source)), 30, cluster.ssh_config)
    race = _UpstreamDoneFirst(lambda name: node_file(cluster, name, dest), take_over)
    run = ChainRun(cmds, [names], str(source), report.Reporter(out, line_output=True), "head", 5,
                   event_hook=race.events, action_hook=race.actions)
    run.run()
    print(out.getvalue())
    assert race.routed
    state = run.state
    assert {name: state.hosts[name].state for name in names} == dict.fromkeys(names, "ok"), \
        out.getvalue()
    for name in names:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source), name
    assert "no receiver on cn01.internal any more: head --> cn03.internal now" in out.getvalue()
    assert state.hosts["cn03.internal"].upstream == "head"
    assert state.hosts["cn04.internal"].upstream == "cn03.internal"
    took = state.hosts["cn03.internal"].took_from
    assert (took > 0) if take_over else (took is None and state.generation == 1), took
    # The scripts clean up after themselves (distribute() would run CLEANUP too, after a
    # route-around; not here).
    assert eventually(lambda: twins(cluster, dest), 15) == []
    assert eventually(lambda: our_processes(dest), 10) == []


def test_sigint_after_a_route_around_leaves_nothing(cluster, payload):
    """Ctrl-C once a slow node has been routed around: the replaced sessions, the new ones
    and the slow node's all end, and no private directory (of any generation) is left."""
    source, dest = payload(8 * 1024 * 1024)
    slow = cluster.names[2]
    for name in cluster.names:
        cluster.shape(name, "2mbit" if name == slow else "10mbit")
    run = interrupt([str(TOOL), "--pipeline", "--line-output", str(source), dest, *cluster.names],
                    cluster.env, at_line=f"{slow} is slow", settle=1)  # the new chain under way
    out, err = run.out, run.err
    assert any(line.startswith(f"{slow} is slow") for line in run.lines), out + err
    assert run.status == 130, out + err
    left = eventually(lambda: our_processes(dest), 15)
    assert left == [], "\n".join(map(str, left))
    assert eventually(lambda: twins(cluster, dest), 15) == []
