"""Pipelined chain broadcast: every host receives the file once and passes it on while it
receives, so N hosts take about the time of one copy (issue 7), instead of the wave's
log2(N+1) rounds.

    distribute(source, dest, hosts, ssh, reporter, *, head_slots=1, timeout=60,
               checksum=None, head_name=None, node_ssh_config=None,
               progress_interval=None) -> transfer.TransferResult

Plan: the hosts are cut into HEAD_SLOTS chains of consecutive hosts; the head streams the
file into the first host of each chain. With the same link speed everywhere one chain is the
fastest (every uplink carries the file once at full speed); more chains share the head's.

Sessions (all opened at once, so that ssh handshakes, ~0.1-0.3 s each, do not add up along
a chain):
- head -> first host of a chain: RECV, with the file on its stdin;
- head -> every host H but the last of its chain: FORWARD, which runs
  `tail -f TMP | ssh NEXT RECV` on H; the ssh to NEXT carries NEXT's RECV.
RECV on a host: dd writes what arrives into TMP and stops at the file's size, a twice-a-second
"P host bytes" heartbeat, then size and checksum (read from TMP) are checked and TMP is renamed
into place. TMP lives in a private directory of the run (root only, hidden beside DEST), the
working directory of every process of the run on that host. Status lines travel back to the
head on the stdout of the session that carries the RECV.

Slow nodes (chain_watch.py): the forwarders follow the file, so a host receives at the pace of
its own upstream hop. A host far slower than its upstream is taken out of the chain, while it
keeps its own session and finishes at its own pace. The host after it takes over: a new RECV
there, fed by the slow host's upstream (a new FORWARD there, reading the upstream's file from
the byte the head last heard of), stops the old RECV's dd, keeps the bytes of its file and
appends the rest; the hosts behind keep their sessions, which follow that file (one new ssh
session, not two per host behind). Where no take-over is possible (no byte written yet, or
that host took over once already) the hosts behind start again from byte 0, in a new private
directory (cheap: behind a slow node they got only what it could pass on at its pace). An
upstream whose copy is complete (or whose receiver has just ended: its forwarder says "GONE",
having sent nothing) is never read from: the head feeds the next host then. After a run with
such restarts the head runs CLEANUP on every host and directory of the run, so that what the
replaced sessions were still ending leaves nothing behind.

Faults: a host that fails or stalls breaks the chain after it; the head kills the sessions of
hosts without progress for TIMEOUT seconds (or a few seconds after their upstream failed),
and the hosts that did not get the file are completed by the wave (broadcast.py) with the
hosts that did as seeds. Remote work dies with its ssh: FORWARD watches its stdin (the head's
pipe), RECV stops at end of input, a failed heartbeat write, or TIMEOUT s without data. Their
watchers kill the whole process group again and again until the script is gone: a single
kill can miss a child forked just after it. Ctrl-C kills every session's process group, runs
CLEANUP on every host (every process in the run's private directories ends, the directories
go) and re-raises. The node scripts are in node_scripts.py.
"""
import queue
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from hltcloud.transfer import chain_commands
from hltcloud.proc import runner
from hltcloud.report import is_tty
from hltcloud.transfer.chain_commands import ChainCommands
from hltcloud.transfer.chain_watch import HopRates, SlowNodes
from hltcloud.transfer.common import (DEFAULT_TIMEOUT, HostResult, TransferError, TransferResult, check_bounds,
                       check_node_path, check_request, check_source, format_rate, prepare_copy,
                       say_delivered)

UPSTREAM_GRACE = 5.0  # seconds a host may go without data once the host before it failed
MARK = "HLTPIPE"  # status lines: "HLTPIPE P|OK|F HOST TEXT"

# Planning is pure and lives with the command lines (chain_commands.py); the dry run of
# broadcast.py and the tests find it here too.
plan_chains = chain_commands.plan_chains
print_plan = chain_commands.print_plan


# ---------------------------------------------------------------- engine

@dataclass
class _Host:
    name: str
    chain: int
    upstream: str  # the head name or the host before it
    bytes: int = 0
    changed: float = 0.0  # when its byte count last changed (at first: TIMEOUT s ahead)
    grace_until: float = 0.0  # set when its upstream failed
    state: str = "wait"  # wait, ok, fail
    reason: str = ""
    seconds: float = 0.0
    slow: bool = False  # taken out of its chain: finishes on its own
    began: float = 0.0  # when its current session began, like SECONDS (a new upstream: again)
    private: str = ""  # its private directory (a new one when it gets a new upstream)
    took_from: int = None  # its receiver was taken over: the new sender started at this byte


@dataclass
class _Session:
    role: str  # "recv" (head -> first host) or "fwd" (forwarder on host)
    host: str  # the host the session runs on
    carries: str  # the host whose RECV status comes through this session
    proc: subprocess.Popen
    stderr: list = field(default_factory=list)
    readers: list = field(default_factory=list)
    done: bool = False
    stale: bool = False  # replaced (its hosts got a new upstream): its news no longer count
    late: bool = False  # a forwarder started on a host already receiving (a route around)
    gone: bool = False  # a forwarder that found no receiver to follow ("HLTPIPE GONE"): sent nothing


class _Pipeline(SlowNodes):
    def __init__(self, cmds, chains, source, reporter, head_name, progress_interval):
        self.cmds = cmds
        self.chains = chains
        self.source = source
        self.reporter = reporter
        self.head_name = head_name
        self.events = queue.Queue()
        self.groups = runner.ProcessGroups()
        self.sessions = []
        self.hosts = {}
        self.next_of = {}  # the host each host forwards to (None: none)
        self.started = time.monotonic()
        # Before its first byte a host also waits for its sessions' ssh handshakes (a loaded
        # head opens 2N-1 at once): one more TIMEOUT for that, counted as if data came then.
        first = self.started + cmds.timeout
        for index, chain in enumerate(chains):
            for position, host in enumerate(chain):
                upstream = chain[position - 1] if position else head_name
                self.hosts[host] = _Host(host, index, upstream, changed=first,
                                         private=cmds.private)
                self.next_of[host] = chain[position + 1] if position + 1 < len(chain) else None
        self.rates = HopRates()
        self.generation = 0
        self.privates = {(host, cmds.private) for host in self.hosts}  # for the cleanup
        self.last_watch = 0.0
        self.progress = reporter.progress("pipelining")
        self.progress_interval = progress_interval
        self._last_progress = 0.0

    # -- sessions
    def start_session(self, role, host, carries, argv, stdin):
        proc = self.groups.start(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        session = _Session(role, host, carries, proc)
        for stream, sink in ((proc.stdout, self._read_stdout), (proc.stderr, self._read_stderr)):
            reader = threading.Thread(target=sink, args=(session, stream), daemon=True)
            session.readers.append(reader)
            reader.start()
        self.sessions.append(session)
        return session

    def _read_stdout(self, session, stream):
        """Status lines of SESSION: only about the host whose receiver it carries. Any host of
        a chain (a forwarder, a login banner) writes into it: a line about another host is
        ignored, never taken as that host's news."""
        for raw in stream:
            words = raw.decode(errors="replace").rstrip("\n").split(" ", 3)
            if session.stale or len(words) < 3 or words[0] != MARK:
                continue
            if words[1:3] == ["GONE", session.carries]:
                session.gone = True
            elif words[2] == session.carries:
                self.events.put((words[1], words[2], words[3] if len(words) > 3 else ""))

    def _read_stderr(self, session, stream):
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if line:
                session.stderr = (session.stderr + [line])[-5:]

    def start(self):
        # Forwarders first: the head's stream can only flow once the chain is connected.
        for chain in self.chains:
            for position, host in enumerate(chain[:-1]):
                nxt = chain[position + 1]
                self.start_session("fwd", host, nxt,
                                   self.cmds.head_forward(host, nxt, position + 2 == len(chain)),
                                   subprocess.PIPE)
        for chain in self.chains:
            with open(self.source, "rb") as data:
                self.start_session("recv", chain[0], chain[0],
                                   self.cmds.head_recv(chain[0], len(chain) == 1), data)

    def kill(self, session):
        if session.proc.poll() is None:
            runner.kill_group(session.proc, grace=1.0)

    def kill_all(self):
        self.groups.abort(grace=1.0)
        for session in self.sessions:
            if session.proc.stdin:
                session.proc.stdin.close()

    # -- host states
    def _finish(self, host, ok, reason=""):
        state = self.hosts[host]
        if state.state != "wait":
            return
        now = time.monotonic()
        state.state, state.reason, state.seconds = ("ok" if ok else "fail"), reason, now - self.started
        if ok:
            state.bytes = self.cmds.size
            say_delivered(self.reporter, state.upstream, host, self.cmds.size, state.seconds)
            return
        self.reporter.warn(f"{state.upstream} --> {host}: {reason}")
        for other in self.hosts.values():  # the hosts it feeds (a slow node's too)
            if other.upstream == host and other.state == "wait":
                other.grace_until = now + min(UPSTREAM_GRACE, self.cmds.timeout)
        # Its status channel has nothing more to say: a forwarder whose receiver failed
        # early (say, refused its directory) would wait on its fifo for ever.
        for session in self.sessions:
            if session.carries == host and not session.done:
                self.kill(session)

    def _event(self, kind, host, text):
        state = self.hosts[host]
        if kind == "P":
            try:
                count = int(text)
            except ValueError:
                return
            now = time.monotonic()
            self.rates.note(host, now, count)
            if count != state.bytes:
                state.bytes, state.changed, state.grace_until = count, now, 0.0
        elif kind == "OK":
            self._finish(host, True)
        elif kind == "F":
            self._finish(host, False, text or "failed")

    def _session_ended(self, session):
        session.done = True
        host = self.hosts[session.carries]
        if host.state == "wait" and not session.stale and self.refeed_from_head(session, host):
            pass
        elif host.state == "wait" and not session.stale:
            detail = session.stderr[-1] if session.stderr else \
                f"ssh exited with {session.proc.returncode}"
            where = "" if session.role == "recv" else f" (forwarding on {session.host})"
            self._finish(session.carries, False, f"{detail}{where}")
        if session.proc.stdin:
            session.proc.stdin.close()

    def _stall_check(self, now):
        for host in self.hosts.values():
            if host.state != "wait":
                continue
            stalled = now - host.changed > self.cmds.timeout
            cut_off = host.grace_until and now > host.grace_until
            if not (stalled or cut_off):
                continue
            reason = (f"no data for {self.cmds.timeout} s" if stalled
                      else f"no data after {host.upstream} failed")
            self._finish(host.name, False, reason)
            # Stop what feeds it and what it feeds: the hosts after it fail fast, and get
            # the file from the fallback.
            for session in self.sessions:
                if session.carries == host.name or session.host == host.name:
                    self.kill(session)

    def _show_progress(self, now, final=False):
        """Bytes and rate per chain: those of its slowest host still receiving."""
        if not final and now - self._last_progress < self.progress_interval:
            return
        self._last_progress = now
        parts = []
        for index, chain in enumerate(self.chains, 1):
            states = [self.hosts[h] for h in chain]
            if final:
                got = sum(1 for s in states if s.state == "ok")
                parts.append(f"chain {index}: {got}/{len(chain)} host(s) got it")
                continue
            waiting = [s.bytes for s in states if s.state == "wait"]
            tail = min(waiting) if waiting else self.cmds.size
            done = sum(1 for s in states if s.state != "wait")
            rate = format_rate(tail, now - self.started)
            parts.append(f"chain {index}: {tail / 1e6:.0f}/{self.cmds.size / 1e6:.0f} MB "
                         f"{rate}, {done}/{len(chain)} host(s) done")
        self.progress.update(", ".join(parts))

    def run(self):
        self.start()
        while True:
            # Every news first, then the checks: with many hosts (heartbeats from each) the
            # queue is seldom empty for long, and the checks must run all the same.
            try:
                self._event(*self.events.get(timeout=0.2))
                for _ in range(self.events.qsize()):  # the batch there now, never an endless one
                    self._event(*self.events.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            for session in self.sessions:
                if not session.done and session.proc.poll() is not None and \
                        not any(r.is_alive() for r in session.readers):
                    while not self.events.empty():  # its last status lines first
                        self._event(*self.events.get())
                    self._session_ended(session)
            self._stall_check(now)
            self.watch_rates(now)
            if all(session.done for session in self.sessions):
                break
            self._show_progress(now)
        for host in self.hosts.values():  # every session ended: no more news
            if host.state == "wait":
                self._finish(host.name, False, "no status")


def distribute(source, dest, hosts, ssh, reporter, *, head_slots=1, timeout=DEFAULT_TIMEOUT,
               checksum=None, head_name=None, node_ssh_config=None, progress_interval=None):
    """Copy SOURCE (a local file) to DEST on every host of HOSTS through pipelined chains
    (broadcast.py completes the hosts that missed it with the wave). NODE_SSH_CONFIG is the
    ssh config path the nodes use towards each other (default: the head's path). Returns a
    TransferResult (its elapsed time from the first line printed); raises TransferError on
    bad input, and KeyboardInterrupt after killing everything when interrupted."""
    hosts, _ = check_request(dest, hosts)
    if not hosts:
        raise TransferError("no hosts given")
    check_bounds(timeout=timeout)
    check_source(source)
    node_ssh_config = node_ssh_config if node_ssh_config is not None else ssh.config_file
    if node_ssh_config:
        check_node_path(node_ssh_config, "the nodes' ssh config")
    chains = plan_chains(hosts, head_slots)
    size, checksum = prepare_copy(source, checksum)
    cmds = ChainCommands(ssh, dest, size, checksum, timeout, node_ssh_config)
    head_name = head_name or socket.gethostname()
    if progress_interval is None:  # in place on a TTY; whole lines now and then otherwise
        progress_interval = 1.0 if is_tty(reporter.stream) and not reporter.line_output else 5.0
    started = time.monotonic()
    reporter.info(f"transferring {source} to {len(hosts)} host(s)...")  # as the wave says it
    reporter.info(f"pipelined: {len(chains)} chain(s) of {', '.join(str(len(c)) for c in chains)} host(s)")
    run = _Pipeline(cmds, chains, source, reporter, head_name, progress_interval)
    try:
        run.run()
    except BaseException:
        run.kill_all()
        # The remote sides end by themselves within a second or two; this ends them now
        # (every process in a private directory of the run) and removes their files.
        runner.run_all([cmds.cleanup(host, private) for host, private in sorted(run.privates)], 15)
        raise
    if run.generation:  # hosts were routed around: end what their replaced sessions left
        runner.run_all([cmds.cleanup(host, private) for host, private in sorted(run.privates)], 15)
    run._show_progress(time.monotonic(), final=True)
    results = {}
    for host in hosts:
        state = run.hosts[host]
        results[host] = HostResult(host, ok=state.state == "ok", source=state.upstream,
                                   reason=state.reason, bytes=size if state.state == "ok" else 0,
                                   elapsed=state.seconds, tries=1)
    transfers = [(run.hosts[h].upstream, h, results[h].ok, results[h].reason, results[h].elapsed)
                 for h in hosts]
    return TransferResult(results, size, time.monotonic() - started, transfers, [], checksum)
