"""The loop between ChainState (state.py) and the SessionPool (sessions.py): events in,
actions out, the clock, the progress line, Ctrl-C and CLEANUP; and distribute(), the
engine's entry point.

    run = ChainRun(cmds, chains, source, reporter, head_name, progress_interval,
                   event_hook=None, action_hook=None)
    run.run()          # until every session has ended; run.state holds every host's outcome

The hooks are seams for tests that force a race on real nodes: EVENT_HOOK(event, state) gets
every event before the state does (and the ticks) and returns the events to hand on (it may
hold one back for later, or add a RouteAround); ACTION_HOOK(action, state) likewise for the
actions before they are carried out.
"""
import queue
import socket
import subprocess
import time

from hltcloud.proc import runner
from hltcloud.report import is_tty
from hltcloud.transfer.chain.commands import ChainCommands
from hltcloud.transfer.chain.events import (CleanUp, Delivered, EndSession, Failed,
                                            FeedFromHead, Note, StartForwarder, Tick)
from hltcloud.transfer.chain.plan import plan_chains
from hltcloud.transfer.chain.sessions import SessionPool
from hltcloud.transfer.chain.state import ChainState
from hltcloud.transfer.common import (DEFAULT_TIMEOUT, HostResult, TransferError, TransferResult,
                                      check_bounds, check_node_path, check_request,
                                      check_source, format_rate, prepare_copy, say_delivered)

TICK = 0.1  # seconds between two checks of the state when no news comes
CLEANUP_SECONDS = 15  # CLEANUP on every host, at most this long


def _pass_on(item, _state):
    return [item]


class ChainRun:
    def __init__(self, cmds, chains, source, reporter, head_name, progress_interval,
                 event_hook=None, action_hook=None):
        self.cmds, self.source, self.reporter = cmds, source, reporter
        self.events = queue.Queue()
        self.pool = SessionPool(self.events)
        self.state = ChainState(chains, size=cmds.size, timeout=cmds.timeout,
                                head_name=head_name, private=cmds.private,
                                new_private=cmds.private_dir, now=time.monotonic())
        self.event_hook = event_hook or _pass_on
        self.action_hook = action_hook or _pass_on
        self.progress = reporter.progress("pipelining")
        self.progress_interval = progress_interval
        self._last_progress = 0.0

    def run(self):
        self._carry_out(self.state.start())
        while not self.state.finished:
            # Every news first, then the checks: with many hosts (heartbeats from each) the
            # queue is seldom empty for long, and the checks must run all the same.
            try:
                batch = [self.events.get(timeout=TICK)]
                batch += [self.events.get_nowait() for _ in range(self.events.qsize())]
            except queue.Empty:
                batch = []
            for event in batch + [Tick()]:
                for passed in self.event_hook(event, self.state):
                    self._carry_out(self.state.step(passed, time.monotonic()))
            self.show_progress(time.monotonic())

    def _carry_out(self, actions):
        for action in actions:
            for passed in self.action_hook(action, self.state):
                self._do(passed)

    def _do(self, action):
        cmds = self.cmds
        if isinstance(action, StartForwarder):
            self.pool.start(action.session, cmds.head_forward(
                action.host, action.next_host, action.next_last, action.private,
                action.next_private, late=action.late, take_over=action.take_over),
                subprocess.PIPE)
        elif isinstance(action, FeedFromHead):
            with open(self.source, "rb") as data:
                data.seek(action.offset)
                self.pool.start(action.session, cmds.head_recv(
                    action.host, action.last, action.private, action.take_over), data)
        elif isinstance(action, EndSession):
            self.pool.end(action.session)
        elif isinstance(action, Delivered):
            say_delivered(self.reporter, action.upstream, action.host, cmds.size, action.seconds)
        elif isinstance(action, Failed):
            self.reporter.warn(f"{action.upstream} --> {action.host}: {action.reason}")
        elif isinstance(action, Note):
            self.reporter.info(action.text)
        elif isinstance(action, CleanUp):
            self.clean_up(action.places)

    def clean_up(self, places):
        """CLEANUP on every (host, private directory) of PLACES: every process of ours there
        ends, the directories go."""
        runner.run_all([self.cmds.cleanup(host, private) for host, private in places],
                       CLEANUP_SECONDS)

    def abort(self):
        """After Ctrl-C (or a bug): every session ends, and (the remote sides would end by
        themselves within a second or two) CLEANUP ends now whatever they left."""
        self.pool.abort()
        self.clean_up(sorted(self.state.privates))

    def show_progress(self, now, final=False):
        """Bytes and rate per chain: those of its slowest host still receiving."""
        if not final and now - self._last_progress < self.progress_interval:
            return
        self._last_progress = now
        state, size = self.state, self.cmds.size
        parts = []
        for index, chain in enumerate(state.chains, 1):
            hosts = [state.hosts[name] for name in chain]
            if final:
                got = sum(1 for host in hosts if host.state == "ok")
                parts.append(f"chain {index}: {got}/{len(chain)} host(s) got it")
                continue
            waiting = [host.bytes for host in hosts if host.state == "wait"]
            tail = min(waiting) if waiting else size
            done = sum(1 for host in hosts if host.state != "wait")
            rate = format_rate(tail, now - state.started)
            parts.append(f"chain {index}: {tail / 1e6:.0f}/{size / 1e6:.0f} MB "
                         f"{rate}, {done}/{len(chain)} host(s) done")
        self.progress.update(", ".join(parts))


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
    run = ChainRun(cmds, chains, source, reporter, head_name, progress_interval)
    try:
        run.run()
    except BaseException:
        run.abort()
        raise
    run.show_progress(time.monotonic(), final=True)
    return _result(run.state, hosts, size, checksum, time.monotonic() - started)


def _result(state, hosts, size, checksum, elapsed):
    results, transfers = {}, []
    for name in hosts:
        host = state.hosts[name]
        ok = host.state == "ok"
        results[name] = HostResult(name, ok=ok, source=host.upstream, reason=host.reason,
                                   bytes=size if ok else 0, elapsed=host.seconds, tries=1)
        transfers.append((host.upstream, name, ok, host.reason, host.seconds))
    return TransferResult(results, size, elapsed, transfers, [], checksum)
