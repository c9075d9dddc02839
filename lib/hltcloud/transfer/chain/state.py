"""ChainState: the whole pipelined run as a state machine, pure (no processes, no threads, no
clock of its own, no I/O). It keeps every host (how many bytes it holds, when that last
changed, who feeds it, its private directory) and every session (which host it runs on, whose
receiver it carries), takes the events of events.py and returns the actions to carry out.
Every change of the chains' shape is decided here, and only here (the slow-node part in
reroute.py, a mixin of ChainState).

    state = ChainState(chains, size=..., timeout=..., head_name=..., private=...,
                       new_private=lambda generation: ..., now=t0)
    actions = state.start()                 # the head's feeds (the forwarders follow)
    actions = state.step(event, now)        # Line, Ended, Tick, RouteAround
    state.finished                          # every session ended (the last actions say so)

The rules (see the package's docstring for the whole design):
- a status line counts only for the host whose receiver its session carries; a replaced
  (stale) session's lines no longer count, but for an OK (that copy was complete and in place
  before the take-over could stop it);
- a host fails on its "F", when its session ends without its "OK", after TIMEOUT s without
  a new byte, or UPSTREAM_GRACE s without one once its upstream failed; the sessions that
  carry it end then (those that run on it too, for a stall);
- at each heartbeat of a host the slow-node rule (rates.py) is applied; a slow host is
  routed around: the host after it takes over (a new receiver fed by the slow host's
  upstream from the byte it holds), or, where it cannot (no byte yet, or a take-over there
  already), the hosts behind start again from byte 0 in a new private directory; the slow
  host itself moves to the end of its chain (fed by the last host there) once that host
  holds what it holds (checked twice a second);
- an upstream whose copy is complete is never read from: the head feeds instead; so too when
  a route-around forwarder finds no receiver on its host ("GONE");
- when every session has ended, a host still waiting fails ("no status"), and after any
  restart CLEANUP runs on every host and directory of the run.
"""
from dataclasses import dataclass

from hltcloud.transfer.chain.events import (CleanUp, Delivered, EndSession, Ended, Failed,
                                            FeedFromHead, Line, RouteAround, StartForwarder,
                                            Tick, status_words)
from hltcloud.transfer.chain.rates import HopRates
from hltcloud.transfer.chain.reroute import Rerouting

UPSTREAM_GRACE = 5.0  # seconds a host may go without data once the host before it failed
CONNECT_AFTER = 0.3  # seconds after the start when the rest of every chain connects anyway


@dataclass
class Host:
    name: str
    chain: int
    upstream: str  # the head name or the host before it
    private: str  # its private directory (a new one when it starts again)
    changed: float  # when its byte count last changed (at first: TIMEOUT s ahead)
    bytes: int = 0
    grace_until: float = 0.0  # set when its upstream failed
    state: str = "wait"  # wait, ok, fail
    reason: str = ""
    seconds: float = 0.0
    slow: bool = False  # taken out of its chain: finishes on its own
    began: float = 0.0  # when its current session began, from the start (a new upstream: again)
    took_from: int = None  # its receiver was taken over: the new sender started at this byte


@dataclass(eq=False)  # each one is itself: compared by identity
class Session:
    role: str  # "recv" (the head feeds HOST) or "fwd" (a forwarder on HOST)
    host: str  # the host the session runs on
    carries: str  # the host whose receiver's status comes through this session
    late: bool = False  # a forwarder started on a host already receiving (a route-around)
    stale: bool = False  # replaced (its hosts got a new upstream): its news no longer count
    gone: bool = False  # a late forwarder that found no receiver to follow: sent nothing
    ending: bool = False  # told to end
    done: bool = False


class ChainState(Rerouting):
    def __init__(self, chains, *, size, timeout, head_name, private, new_private, now):
        self.chains = [list(chain) for chain in chains]
        self.size, self.timeout, self.head_name = size, timeout, head_name
        self.new_private = new_private  # generation -> a new private directory's path
        self.started = now
        self.hosts, self.next_of, self.sessions = {}, {}, {}
        # Before its first byte a host also waits for its sessions' ssh handshakes (a loaded
        # head opens 2N-1 at once): one more TIMEOUT for that, counted as if data came then.
        for index, chain in enumerate(self.chains):
            for position, name in enumerate(chain):
                upstream = chain[position - 1] if position else head_name
                self.hosts[name] = Host(name, index, upstream, private, changed=now + timeout)
                self.next_of[name] = chain[position + 1] if position + 1 < len(chain) else None
        self.rates = HopRates()
        self.generation = 0
        self.privates = {(name, private) for name in self.hosts}  # for CLEANUP
        self.last_watch = now
        self.skipped_to = {}  # a slow host routed around -> the host after it then
        self.moving = {}  # a slow host to move to its chain's end -> when it was routed around
        self.old_feeds = {}  # a slow host moved -> the sessions that fed it before
        self.pending = {index for index, chain in enumerate(self.chains) if len(chain) > 1}
        self.finished = False
        self._out = []

    # ---------------------------------------------------------------- in and out
    def start(self):
        """The head's feed of each chain's first host: its handshake alone on the head's
        cores, so that its first byte comes about as soon as one plain copy's. The rest of a
        chain connects once that host has spoken (its receiver says "P" as it starts) or its
        session ended, and CONNECT_AFTER seconds after the start at the latest."""
        for chain in self.chains:
            self._feed(chain[0], len(chain) == 1, self.hosts[chain[0]].private)
        return self._flush()

    def _connect(self, chain, now):
        """CHAIN's forwarders, in chain order (each one's ssh to the next host at once)."""
        if chain not in self.pending:
            return
        self.pending.discard(chain)
        names = self.chains[chain]
        for name in names[1:]:  # before its first byte, a host has its handshakes' TIMEOUT
            self.hosts[name].changed = max(self.hosts[name].changed, now + self.timeout)
        for position, name in enumerate(names[:-1]):
            self._forward(name, names[position + 1], position + 2 == len(names),
                          self.hosts[name].private, self.hosts[name].private)

    def _connect_on_news(self, session, now):
        """SESSION (None: a tick) said something or ended at NOW: the chains due connect."""
        host = session and self.hosts[session.carries]
        if host and session.role == "recv" and self.chains[host.chain][0] == host.name:
            self._connect(host.chain, now)
        if now - self.started >= CONNECT_AFTER:
            for chain in list(self.pending):
                self._connect(chain, now)

    def step(self, event, now):
        """Take EVENT at time NOW; the actions it calls for, in order."""
        if self.finished:
            return []
        if isinstance(event, Line):
            self._line(self.sessions[event.session], event.text, now)
            self._connect_on_news(self.sessions[event.session], now)
        elif isinstance(event, Ended):
            self._connect_on_news(self.sessions[event.session], now)
            self._ended(self.sessions[event.session], event, now)
        elif isinstance(event, Tick):
            self._connect_on_news(None, now)
            self._stall_check(now)
            self._watch_rates(now)
        elif isinstance(event, RouteAround):
            host = self.hosts[event.host]
            if host.state == "wait" and not host.slow:
                self._route_around(host, self.hosts.get(host.upstream), now, event.take_over)
        return self._flush()

    def _flush(self):
        out, self._out = self._out, []
        return out

    def _open(self, role, host, carries, late=False):
        number = len(self.sessions)
        self.sessions[number] = Session(role, host, carries, late=late)
        return number

    def _forward(self, host, next_host, next_last, private, next_private, late=False,
                 take_over=None):
        number = self._open("fwd", host, next_host, late)
        self._out.append(StartForwarder(number, host, next_host, next_last, private,
                                        next_private, late, take_over))

    def _feed(self, host, last, private, take_over=None):
        number = self._open("recv", host, host)
        self._out.append(FeedFromHead(number, host, last, private, take_over))

    def _end_sessions(self, match):
        for number, session in self.sessions.items():
            if not session.done and not session.ending and match(session):
                session.ending = True
                self._out.append(EndSession(number))

    # ---------------------------------------------------------------- news
    def _line(self, session, text, now):
        words = status_words(text)
        # A replaced session's news no longer count, but for its host's OK: that host's copy
        # was complete and in place before a take-over (or a start again) could stop it.
        if words is None or (session.stale and words[0] != "OK"):
            return
        kind, name, rest = words
        if (kind, name) == ("GONE", session.carries):
            session.gone = True
        elif name != session.carries:
            return  # a host of the chain (or a banner) speaking for another: never counted
        elif kind == "P":
            self._progress(self.hosts[name], rest, now)
            if name in self.old_feeds:  # a slow host moved: its new receiver has taken over
                self._end_old_feed(name)
        elif kind == "OK":
            self._finish(name, True, "", now)
        elif kind == "F":
            self._finish(name, False, rest or "failed", now)

    def _progress(self, host, text, now):
        try:
            count = int(text)
        except ValueError:
            return
        self.rates.note(host.name, now, count)
        if count != host.bytes:
            host.bytes, host.changed, host.grace_until = count, now, 0.0
        self._judge(host, now)

    def _ended(self, session, event, now):
        session.done = True
        host = self.hosts[session.carries]
        if host.state == "wait" and not session.stale:
            if session.role == "fwd" and session.late and session.gone:
                self._refeed_from_head(session, host, now)
            else:
                detail = event.detail or f"ssh exited with {event.code}"
                where = "" if session.role == "recv" else f" (forwarding on {session.host})"
                self._finish(host.name, False, f"{detail}{where}", now)
        if all(s.done for s in self.sessions.values()):
            self._wind_up(now)

    def _wind_up(self, now):
        """Every session ended: no more news."""
        for host in self.hosts.values():
            if host.state == "wait":
                self._finish(host.name, False, "no status", now)
        if self.generation:  # hosts were routed around: end what their replaced sessions left
            self._out.append(CleanUp(tuple(sorted(self.privates))))
        self.finished = True

    def _finish(self, name, ok, reason, now):
        host = self.hosts[name]
        if host.state != "wait":
            return
        host.state, host.reason, host.seconds = ("ok" if ok else "fail"), reason, now - self.started
        if ok:
            host.bytes = self.size
            self._out.append(Delivered(host.upstream, name, host.seconds))
            return
        self._out.append(Failed(host.upstream, name, reason))
        for other in self.hosts.values():  # the hosts it feeds (a slow node's too)
            if other.upstream == name and other.state == "wait":
                other.grace_until = now + min(UPSTREAM_GRACE, self.timeout)
        # Its status channel has nothing more to say: a forwarder whose receiver failed
        # early (say, refused its directory) would wait on its fifo for ever.
        self._end_sessions(lambda s: s.carries == name)

    def _stall_check(self, now):
        for host in self.hosts.values():
            if host.state != "wait":
                continue
            stalled = now - host.changed > self.timeout
            cut_off = host.grace_until and now > host.grace_until
            if not (stalled or cut_off):
                continue
            reason = (f"no data for {self.timeout} s" if stalled
                      else f"no data after {host.upstream} failed")
            self._finish(host.name, False, reason, now)
            # Stop what feeds it and what it feeds: the hosts after it fail fast, and get
            # the file from the fallback.
            self._end_sessions(lambda s, name=host.name: name in (s.carries, s.host))
