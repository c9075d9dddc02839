"""Which host of a pipelined chain is much slower than the host that feeds it (issue 14).

A chain's hosts write what they receive into a file that their forwarders follow, so a host
receives at the pace of its own upstream hop: the hosts before a slow node keep their speed,
the slow node and the hosts behind it go at the slow node's pace. The slow node is thus the
host whose rate is far below its upstream's while its upstream pulls ahead of it; the hosts
behind it keep up with their (slow) upstream and are not blamed.

    rates = HopRates()
    rates.note(host, now, bytes)        # every heartbeat ("P host bytes", twice a second)
    rates.rate(host, now)               # bytes/s over the last WINDOW seconds, or None
    rates.slow(host, now, lead, upstream_rate)   # the rule below, CONFIRM times in a row

The rule, robust to the CPU noise of many nodes sharing few cores: over the last WINDOW
seconds the host got less than SLOW_FRACTION of its upstream's rate, its upstream is at least
MIN_LEAD bytes ahead of it, and this held at CONFIRM checks in a row (half a second apart).
A rate is measured from a host's first byte on: a host whose sessions are still starting (a
loaded head opens them all at once) is not slow, and a slow one is seen one window after its
first byte; its upstream's rate is taken over UP_WINDOW seconds, so that an upstream that
started just before it does not delay the verdict.
A host the head feeds is measured against the hosts done so far (none at first: the first
host of a chain is never blamed, its slowness could be the head's uplink).

SlowNodes is the part of the chain engine (pipeline._Pipeline) that acts on the rule.
"""
import os
import signal
import subprocess
import time

from hltcloud.transfer.common import format_rate

WINDOW = 1.0  # seconds of heartbeats a host's rate is measured over
UP_WINDOW = 0.5  # and its upstream's
SLOW_FRACTION = 0.3  # a host below this fraction of its upstream's rate is slow...
MIN_LEAD = 1 << 20  # ...once its upstream is this many bytes ahead of it...
CONFIRM = 2  # ...at this many checks in a row


class HopRates:
    def __init__(self):
        self.samples = {}  # host -> [(time, bytes)], oldest first, about 3 windows
        self.strikes = {}

    def reset(self, host, now):
        """HOST starts again from nothing (a new upstream)."""
        self.samples[host] = [(now, 0)]
        self.strikes[host] = 0

    def note(self, host, now, count):
        samples = self.samples.setdefault(host, [])
        if samples and count < samples[-1][1]:  # a late heartbeat of a replaced session, or
            samples.clear()  # the first of the new one after it: measure afresh
        samples.append((now, count))
        while len(samples) > 2 and samples[1][0] < now - 3 * WINDOW:
            samples.pop(0)

    def rate(self, host, now, window=WINDOW):
        """Bytes per second over about the last WINDOW seconds; None before there is that much."""
        samples = self.samples.get(host, [])
        if not samples:
            return None
        t1, b1 = samples[-1]
        older = [s for s in samples if s[0] <= t1 - window and s[1] > 0]
        if not older or now - t1 > max(window, WINDOW):  # too young, or no news for a while
            return None
        t0, b0 = older[-1]
        return (b1 - b0) / max(t1 - t0, 1e-3)

    def slow(self, host, now, lead, upstream_rate):
        """Is HOST slow against an upstream LEAD bytes ahead of it, moving at UPSTREAM_RATE?"""
        rate = self.rate(host, now)
        hit = (rate is not None and upstream_rate is not None and lead >= MIN_LEAD
               and rate < SLOW_FRACTION * upstream_rate)
        self.strikes[host] = self.strikes.get(host, 0) + 1 if hit else 0
        return self.strikes[host] >= CONFIRM


class SlowNodes:
    """Routing around slow nodes, for pipeline._Pipeline (its hosts, sessions, next_of, cmds,
    rates, privates, generation, last_watch, started, reporter, head_name, source,
    start_session, kill)."""

    def watch_rates(self, now):
        """Twice a second: the first host far slower than a host upstream of it is routed around."""
        if now - self.last_watch < 0.5:
            return
        self.last_watch = now
        done = sorted(self.cmds.size / max(h.seconds - h.began, 1e-3)
                      for h in self.hosts.values() if h.state == "ok" and not h.slow)
        for host in self.hosts.values():
            up = self.hosts.get(host.upstream)  # None: the head feeds it
            if host.state != "wait" or host.slow or (up and up.state == "fail"):
                continue
            if up is None:  # against the hosts done (none at first: nothing to compare)
                lead, up_rate = self.cmds.size - host.bytes, done[len(done) // 2] if done else None
            else:
                lead = up.bytes - host.bytes
                up_rate = (self.rates.rate(up.name, now, UP_WINDOW) if up.state == "wait"
                           else self.cmds.size / max(up.seconds - up.began, 1e-3))
            if self.rates.slow(host.name, now, lead, up_rate):
                self.route_around(host, up, now)
                return  # one change a round: the next round measures the new chain

    def _feed_from_head(self, name, last, private, take_over=None):
        with open(self.source, "rb") as data:
            data.seek(take_over or 0)
            self.start_session("recv", name, name,
                               self.cmds.head_recv(name, last, private, take_over), data)

    def refeed_from_head(self, session, host):
        """A route-around forwarder that found no receiver to follow on its host (that host's
        copy completed, or ended, meanwhile) said so ("HLTPIPE GONE") and sent nothing: HOST
        is then fed by the head, as a chain of its own, whatever the state of that host (its
        own status may still be on its way); nothing is ever read back from a final path.
        True when that was the case."""
        if not (session.role == "fwd" and session.late and session.gone and not session.stale):
            return False
        now = time.monotonic()
        host.upstream, host.grace_until = self.head_name, 0.0
        host.changed = now + self.cmds.timeout  # a new session: its handshake first
        host.began = now - self.started
        self.rates.reset(host.name, now)
        if self.next_of.get(session.host) == host.name:
            self.next_of[session.host] = None
        self.reporter.info(f"no receiver on {session.host} any more: "
                           f"{self.head_name} --> {host.name} now")
        self._feed_from_head(host.name, self.next_of.get(host.name) is None, host.private,
                             host.took_from)
        return True

    def _feeder(self, up):
        """From the upstream's file while it receives; once that file is in place (a host reads
        nothing there that nova could swap), from the head."""
        return up.name if up and up.state == "wait" else self.head_name

    def _say_routed(self, slow, up, feeder, first, rate, now):
        up_rate = self.rates.rate(up.name, now) if feeder != self.head_name else None
        got = f"{up.name} gets {format_rate(up_rate, 1)}" if up_rate else "others got it faster"
        self.reporter.info(f"{slow.name} is slow ({rate}, {got}): taken out of "
                           f"the chain, {feeder} --> {first} now; {slow.name} finishes on its own")

    def _take_over(self, slow, up, first, now, rate):
        """FIRST, the host after SLOW, gets a new receiver fed by SLOW's upstream (or the head)
        from the bytes it has: it keeps its file, and the hosts behind it keep their sessions,
        which follow that file. What fed FIRST through SLOW stops by itself once the new
        receiver ends; its news no longer count."""
        for session in self.sessions:
            if not session.done and session.carries == first.name:
                session.stale = True
        feeder = self._feeder(up)
        self.next_of[slow.name] = None
        first.took_from, first.upstream, first.grace_until = first.bytes, feeder, 0.0
        first.changed = now + self.cmds.timeout  # a new session: its handshake first
        self.rates.reset(first.name, now)  # measured afresh, from the new sender's first bytes
        self._say_routed(slow, up, feeder, first.name, rate, now)
        last = self.next_of[first.name] is None
        if feeder == self.head_name:
            self._feed_from_head(first.name, last, first.private, first.took_from)
            return
        self.start_session("fwd", up.name, first.name, self.cmds.head_forward(
            up.name, first.name, last, up.private, first.private, late=True,
            take_over=first.took_from), subprocess.PIPE).late = True
        self.next_of[up.name] = first.name

    def _behind(self, host):
        """The hosts after HOST in its chain that still wait for the file, in order."""
        behind, nxt = [], self.next_of[host]
        while nxt and self.hosts[nxt].state == "wait":
            behind.append(nxt)
            nxt = self.next_of[nxt]
        return behind

    def route_around(self, slow, up, now):
        slow.slow = True
        behind = self._behind(slow.name)
        rate = format_rate(self.rates.rate(slow.name, now) or 0, 1)
        if not behind:
            self.reporter.info(f"{slow.name} is slow ({rate}): last of its chain, it finishes "
                               "at its own pace")
            return
        first = self.hosts[behind[0]]
        if first.took_from is None and first.bytes > 0:
            self._take_over(slow, up, first, now, rate)
            return
        # The host after it has no receiver to take over yet (no byte written), or it took
        # over once already (one take-over per directory): the hosts behind start again, in
        # a new private directory.
        # What fed them, and what they ran, stops: the old sessions end by themselves (their
        # files go with them), their news no longer count.
        old = [s for s in self.sessions if not s.done and
               (s.carries in behind or s.host in behind)]
        for session in old:
            session.stale = True
            try:
                os.killpg(session.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        self.next_of[slow.name] = None
        feeder = self._feeder(up)
        self.generation += 1
        private = self.cmds.private_dir(self.generation)
        for name in behind:
            state = self.hosts[name]
            state.bytes, state.grace_until, state.private, state.took_from = 0, 0.0, private, None
            state.changed = now + self.cmds.timeout  # new sessions: their handshakes first
            state.began = now - self.started
            self.privates.add((name, private))
            self.rates.reset(name, now)
        self.hosts[behind[0]].upstream = feeder
        self._say_routed(slow, up, feeder, behind[0], rate, now)
        for position, name in enumerate(behind[:-1]):
            nxt = behind[position + 1]
            self.start_session("fwd", name, nxt, self.cmds.head_forward(
                name, nxt, position + 2 == len(behind), private, private), subprocess.PIPE)
        if up is not None and feeder == up.name:
            self.start_session("fwd", up.name, behind[0], self.cmds.head_forward(
                up.name, behind[0], len(behind) == 1, up.private, private, late=True),
                subprocess.PIPE).late = True
            self.next_of[up.name] = behind[0]
        else:
            self._feed_from_head(behind[0], len(behind) == 1, private)
        for session in old:
            self.kill(session)
