"""ChainState: the whole pipelined run as a state machine, pure (no processes, no threads, no
clock of its own, no I/O). It keeps every host (how many bytes it holds, when that last
changed, who feeds it, its private directory) and every session (which host it runs on, whose
receiver it carries), takes the events of events.py and returns the actions to carry out.
Every change of the chains' shape is decided here, and only here.

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
- twice a second the slow-node rule (rates.py) is applied; a slow host is routed around:
  the host after it takes over (a new receiver fed by the slow host's upstream from the byte
  it holds), or, where it cannot (no byte yet, or a take-over there already), the hosts
  behind start again from byte 0 in a new private directory;
- an upstream whose copy is complete is never read from: the head feeds instead; so too when
  a route-around forwarder finds no receiver on its host ("GONE");
- when every session has ended, a host still waiting fails ("no status"), and after any
  restart CLEANUP runs on every host and directory of the run.
"""
from dataclasses import dataclass

from hltcloud.transfer.chain.events import (CleanUp, Delivered, EndSession, Ended, Failed,
                                            FeedFromHead, Line, Note, RouteAround,
                                            StartForwarder, Tick, status_words)
from hltcloud.transfer.chain.rates import UP_WINDOW, HopRates
from hltcloud.transfer.common import format_rate

UPSTREAM_GRACE = 5.0  # seconds a host may go without data once the host before it failed
WATCH_EVERY = 0.5  # seconds between two applications of the slow-node rule
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


class ChainState:
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

    # ---------------------------------------------------------------- slow nodes
    def _watch_rates(self, now):
        """Twice a second: the first host far slower than a host upstream of it is routed around."""
        if now - self.last_watch < WATCH_EVERY:
            return
        self.last_watch = now
        done = sorted(self.size / max(h.seconds - h.began, 1e-3)
                      for h in self.hosts.values() if h.state == "ok" and not h.slow)
        for host in self.hosts.values():
            up = self.hosts.get(host.upstream)  # None: the head feeds it
            if host.state != "wait" or host.slow or (up and up.state == "fail"):
                continue
            if up is None:  # against the hosts done (none at first: nothing to compare)
                lead, up_rate = self.size - host.bytes, done[len(done) // 2] if done else None
            else:
                lead = up.bytes - host.bytes
                up_rate = (self.rates.rate(up.name, now, UP_WINDOW) if up.state == "wait"
                           else self.size / max(up.seconds - up.began, 1e-3))
            if self.rates.slow(host.name, now, lead, up_rate):
                self._route_around(host, up, now)
                return  # one change a round: the next round measures the new chain

    def _feeder(self, up):
        """From the upstream's file while it receives; once that file is in place (a host reads
        nothing there that nova could swap), from the head."""
        return up.name if up and up.state == "wait" else self.head_name

    def _behind(self, name):
        """The hosts after NAME in its chain that still wait for the file, in order."""
        behind, nxt = [], self.next_of[name]
        while nxt and self.hosts[nxt].state == "wait":
            behind.append(nxt)
            nxt = self.next_of[nxt]
        return behind

    def _fresh_start(self, host, now):
        """HOST gets a new sender: its handshake comes first, its rate is measured afresh."""
        host.grace_until = 0.0
        host.changed = now + self.timeout
        self.rates.reset(host.name, now)

    def _say_routed(self, slow, up, feeder, first, rate, now):
        up_rate = self.rates.rate(up.name, now) if feeder != self.head_name else None
        got = f"{up.name} gets {format_rate(up_rate, 1)}" if up_rate else "others got it faster"
        self._out.append(Note(f"{slow.name} is slow ({rate}, {got}): taken out of the chain, "
                              f"{feeder} --> {first} now; {slow.name} finishes on its own"))

    def _route_around(self, slow, up, now, take_over=True):
        slow.slow = True
        behind = self._behind(slow.name)
        rate = format_rate(self.rates.rate(slow.name, now) or 0, 1)
        if not behind:
            self._out.append(Note(f"{slow.name} is slow ({rate}): last of its chain, it "
                                  "finishes at its own pace"))
            return
        first = self.hosts[behind[0]]
        self.next_of[slow.name] = None
        if take_over and first.took_from is None and first.bytes > 0:
            self._take_over(slow, up, first, now, rate)
        else:
            self._start_again(slow, up, behind, now, rate)

    def _take_over(self, slow, up, first, now, rate):
        """FIRST, the host after SLOW, gets a new receiver fed by SLOW's upstream (or the head)
        from the bytes it has: it keeps its file, and the hosts behind it keep their sessions,
        which follow that file. What fed FIRST through SLOW stops by itself once the new
        receiver ends; its news no longer count."""
        for session in self.sessions.values():
            if not session.done and session.carries == first.name:
                session.stale = True
        feeder = self._feeder(up)
        first.took_from, first.upstream = first.bytes, feeder
        self._fresh_start(first, now)
        self._say_routed(slow, up, feeder, first.name, rate, now)
        last = self.next_of[first.name] is None
        if feeder == self.head_name:
            self._feed(first.name, last, first.private, first.took_from)
            return
        self._forward(up.name, first.name, last, up.private, first.private, late=True,
                      take_over=first.took_from)
        self.next_of[up.name] = first.name

    def _start_again(self, slow, up, behind, now, rate):
        """The host after SLOW has no receiver to take over yet (no byte written), or it took
        over once already (one take-over per directory): the hosts behind start again from
        byte 0, in a new private directory. What fed them, and what they ran, ends (their
        files go with them); their news no longer count."""
        old = [s for s in self.sessions.values()
               if not s.done and (s.carries in behind or s.host in behind)]
        for session in old:
            session.stale = True
        self._end_sessions(lambda s: s in old)
        feeder = self._feeder(up)
        self.generation += 1
        private = self.new_private(self.generation)
        for name in behind:
            host = self.hosts[name]
            host.bytes, host.private, host.took_from = 0, private, None
            host.began = now - self.started
            self._fresh_start(host, now)
            self.privates.add((name, private))
        self.hosts[behind[0]].upstream = feeder
        self._say_routed(slow, up, feeder, behind[0], rate, now)
        for position, name in enumerate(behind[:-1]):
            self._forward(name, behind[position + 1], position + 2 == len(behind), private,
                          private)
        if up is not None and feeder == up.name:
            self._forward(up.name, behind[0], len(behind) == 1, up.private, private, late=True)
            self.next_of[up.name] = behind[0]
        else:
            self._feed(behind[0], len(behind) == 1, private)

    def _refeed_from_head(self, session, host, now):
        """A route-around forwarder that found no receiver to follow on its host (that host's
        copy completed, or ended, meanwhile) said so ("GONE") and sent nothing: HOST is then
        fed by the head, as a chain of its own, whatever the state of that host (its own
        status may still be on its way); nothing is ever read back from a final path."""
        host.upstream = self.head_name
        host.began = now - self.started
        self._fresh_start(host, now)
        if self.next_of.get(session.host) == host.name:
            self.next_of[session.host] = None
        self._out.append(Note(f"no receiver on {session.host} any more: "
                              f"{self.head_name} --> {host.name} now"))
        self._feed(host.name, self.next_of.get(host.name) is None, host.private, host.took_from)
