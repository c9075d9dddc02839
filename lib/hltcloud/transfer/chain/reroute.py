"""The slow-node part of ChainState (state.py), pure as the rest: which host to route around,
and every change of a chain's shape that follows (issue 14).

A slow host is taken out of its chain: the host after it takes over (a new receiver fed by the
slow host's upstream from the byte it holds), or, where it cannot, the hosts behind start again
from byte 0 in a new private directory. The slow host itself then still shares its upstream's
uplink with the hosts behind it (at its own pace: a tenth of it at a tenth of the speed, but
half of it when the verdict was wrong, as under a burst of load: a host starved of CPU for a
second looks slow), so it moves to the end of its chain as soon as the chain's last host holds
what it holds (MOVE_AFTER seconds after the verdict at the latest: from what that host holds,
the new receiver drops the bytes it has already): a take-over of its own receiver, fed by that
last host, whose uplink is idle. The hosts behind it go on at full speed, whatever it is.
"""
from hltcloud.transfer.chain.events import Note
from hltcloud.transfer.chain.rates import UP_WINDOW
from hltcloud.transfer.common import format_rate

WATCH_EVERY = 0.5  # seconds between two applications of the slow-node rule
MOVE_AFTER = 2.0  # seconds after its verdict when a slow host moves in any case


class Rerouting:
    """ChainState's methods for slow nodes (a mixin: the state is ChainState's)."""

    def _watch_rates(self, now):
        """Twice a second: a slow host routed around moves to the end of its chain once it can."""
        if now - self.last_watch < WATCH_EVERY:
            return
        self.last_watch = now
        self._move_slow_hosts(now)

    def _judge(self, host, now):
        """At each heartbeat of HOST: is it far slower than the host upstream of it? Each
        strike of the rule (rates.py) is then a new measure, not a second look at the last."""
        up = self.hosts.get(host.upstream)  # None: the head feeds it
        if host.state != "wait" or host.slow or (up and up.state == "fail"):
            return
        if up is None:  # against the hosts done (none at first: nothing to compare)
            done = sorted(self.size / max(h.seconds - h.began, 1e-3)
                          for h in self.hosts.values() if h.state == "ok" and not h.slow)
            lead, up_rate = self.size - host.bytes, done[len(done) // 2] if done else None
        else:
            lead = up.bytes - host.bytes
            up_rate = (self.rates.rate(up.name, now, UP_WINDOW) if up.state == "wait"
                       else self.size / max(up.seconds - up.began, 1e-3))
        if self.rates.slow(host.name, now, lead, up_rate):
            self._route_around(host, up, now)

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
        self.skipped_to[slow.name] = first.name
        self.moving[slow.name] = now

    def _take_over(self, slow, up, first, now, rate):
        """FIRST, the host after SLOW, gets a new receiver fed by SLOW's upstream (or the head)
        from the bytes it has: it keeps its file, and the hosts behind it keep their sessions,
        which follow that file."""
        self._say_routed(slow, up, self._feeder(up), first.name, rate, now)
        self._resume(first, up, now)

    def _resume(self, host, up, now, start=None):
        """HOST gets a new receiver that keeps its file, fed by UP's file (the head, once UP's
        copy is complete, or UP None) from the byte it holds (or START, before it: the new
        receiver drops what it holds already). What fed HOST before stops by itself once the
        new receiver ends; its news no longer count."""
        for session in self.sessions.values():
            if not session.done and session.carries == host.name:
                session.stale = True
        feeder = self._feeder(up)
        host.took_from, host.upstream = host.bytes if start is None else start, feeder
        self._fresh_start(host, now)
        last = self.next_of[host.name] is None
        if feeder == self.head_name:
            self._feed(host.name, last, host.private, host.took_from)
            return
        self._forward(up.name, host.name, last, up.private, host.private, late=True,
                      take_over=host.took_from)
        self.next_of[up.name] = host.name

    def _move_slow_hosts(self, now):
        """A slow host routed around moves to the end of its chain (the module's docstring)
        once the last host there holds what it holds, or MOVE_AFTER seconds after the verdict
        (a host wrongly found slow is never caught up with: the hosts behind it share their
        feeder's uplink with it), from the byte the last host holds. True when one moved."""
        for name, routed in list(self.moving.items()):
            slow, end = self.hosts[name], self._chain_end(self.skipped_to[name])
            if slow.state != "wait" or slow.took_from is not None or end is None:
                del self.moving[name]  # done, failed, taken over once already, or no end
            elif not end.slow and slow.bytes > 0 and (
                    end.bytes >= slow.bytes or (end.bytes and now - routed >= MOVE_AFTER)):
                del self.moving[name]
                self.old_feeds[name] = [s for s in self.sessions.values()
                                        if not s.done and s.carries == name]
                self._out.append(Note(f"{name} moves to the end of its chain: "
                                      f"{end.name} --> {name} now"))
                self._resume(slow, end, now, min(end.bytes, slow.bytes))
                return True
        return False

    def _end_old_feed(self, name):
        """The receiver that took over on NAME (moved) has spoken, so the old one can no longer
        complete: its feed ends, which would still fill NAME's link for seconds (what ssh's
        window holds, megabytes) with bytes the new receiver drops."""
        old = self.old_feeds.pop(name, ())
        self._end_sessions(lambda s: s in old)

    def _chain_end(self, name):
        """The last host of the chain from NAME on (past the hosts routed around there, to the
        hosts after them then), if it still receives; else None."""
        seen = {name}
        while True:
            nxt = self.next_of.get(name) or self.skipped_to.get(name)
            if not nxt or nxt in seen:
                break
            name = nxt
            seen.add(name)
        return self.hosts[name] if self.hosts[name].state == "wait" else None

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
