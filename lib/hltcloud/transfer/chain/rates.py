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
MIN_LEAD bytes ahead of it, and this held at CONFIRM of its heartbeats in a row (each a new
measure, half a second apart).
A rate is measured from a host's first new byte on (beyond what it held at its first
heartbeat: nothing, or what a take-over keeps): a host whose sessions are still starting (a
loaded head opens many at once) is not slow, nor a new receiver that has not had a byte of
its new sender yet, and a slow one is seen at its next heartbeat after its first new byte; its
upstream's rate is taken over UP_WINDOW seconds, so that an upstream that started just
before it does not delay the verdict.
A host the head feeds is measured against the hosts done so far (none at first: the first
host of a chain is never blamed, its slowness could be the head's uplink).

ChainState (state.py) applies the rule at each heartbeat and acts on it; this module is pure: no
clock of its own (every call is given the time), no I/O.
"""

WINDOW = 0.4  # seconds a host's rate is measured over at least: its last two heartbeats
UP_WINDOW = 0.5  # and its upstream's
NEWS_WITHIN = 1.0  # seconds since a host's last heartbeat beyond which it has no rate
SLOW_FRACTION = 0.3  # a host below this fraction of its upstream's rate is slow...
MIN_LEAD = 1 << 20  # ...once its upstream is this many bytes ahead of it...
CONFIRM = 2  # ...at this many of its heartbeats in a row


class HopRates:
    def __init__(self):
        self.samples = {}  # host -> [(time, bytes)], oldest first, about 3 windows
        self.floors = {}  # host -> the bytes it held at its first heartbeat (since a reset)
        self.strikes = {}

    def reset(self, host, now):
        """HOST starts again (a new upstream): its next heartbeat says where it starts from
        (nothing, or the bytes a take-over keeps); its rate counts only what comes after."""
        self.samples[host] = []
        self.floors.pop(host, None)
        self.strikes[host] = 0

    def note(self, host, now, count):
        samples = self.samples.setdefault(host, [])
        if samples and count < samples[-1][1]:  # a late heartbeat of a replaced session, or
            samples.clear()  # the first of the new one after it: measure afresh
            self.floors.pop(host, None)
        self.floors.setdefault(host, count)
        samples.append((now, count))
        while len(samples) > 2 and samples[1][0] < now - 3 * NEWS_WITHIN:
            samples.pop(0)

    def rate(self, host, now, window=WINDOW):
        """Bytes per second over about the last WINDOW seconds; None before there is that much."""
        samples = self.samples.get(host, [])
        if not samples:
            return None
        t1, b1 = samples[-1]
        floor = self.floors.get(host, 0)
        older = [s for s in samples if s[0] <= t1 - window and s[1] > floor]
        if not older or now - t1 > max(window, NEWS_WITHIN):  # too young, or no news for a while
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
