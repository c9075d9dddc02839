"""ChainState (hltcloud.transfer.chain.state), the pipelined run as a pure state machine, fed
by hand with a fake clock: the races the cluster tests force on real nodes, each decided in
a few lines (route-around as the upstream finishes, GONE, a take-over with nothing to take
over, a host reporting for another, stalls, an upstream's failure, the slow-node rule, a
second take-over of the same host)."""
import pytest

from hltcloud.transfer.chain.events import (CleanUp, Delivered, EndSession, Ended, Failed,
                                            FeedFromHead, Line, Note, RouteAround,
                                            StartForwarder, Tick)
from hltcloud.transfer.chain.rates import CONFIRM, WINDOW
from hltcloud.transfer.chain.reroute import MOVE_AFTER
from hltcloud.transfer.chain.state import CONNECT_AFTER, UPSTREAM_GRACE, ChainState

MB = 1_000_000
SIZE = 40 * MB
RUN = "/var/lib/nova/instances/.img.pipe-run"
TIMEOUT = 30


def names(count):
    return [f"cn{i:02d}.internal" for i in range(1, count + 1)]


A, B, C, D, E = names(5)


def generation(number):
    return f"/var/lib/nova/instances/.img.pipe-gen{number}"


class Run:
    """A ChainState and a fake clock; each call returns the actions of one event."""

    def __init__(self, chains, timeout=TIMEOUT):
        self.now = 0.0
        self.state = ChainState(chains, size=SIZE, timeout=timeout, head_name="head",
                                private=RUN, new_private=generation, now=self.now)
        self.started = self.state.start()
        # Each first host's receiver says "P host 0" as it starts: the rest of its chain connects
        self.connected = [a for chain in chains
                          for a in self.say(0.0, chain[0], f"HLTPIPE P {chain[0]} 0")]

    def at(self, now, event):
        self.now = now
        return self.state.step(event, now)

    def session(self, carries, role=None, late=None):
        """The live (not replaced, not ended) session carrying CARRIES's receiver."""
        found = [number for number, s in self.state.sessions.items()
                 if s.carries == carries and not s.stale and not s.done
                 and role in (None, s.role) and late in (None, s.late)]
        assert len(found) == 1, (carries, found)
        return found[0]

    def say(self, now, carries, line, **which):
        return self.at(now, Line(self.session(carries, **which), line))

    def beat(self, now, counts):
        """Heartbeats "P HOST BYTES" of each host of COUNTS, then a tick."""
        actions = []
        for host, count in counts.items():
            actions += self.say(now, host, f"HLTPIPE P {host} {count}")
        return actions + self.at(now, Tick())

    def end(self, now, number, code=0, detail=""):
        return self.at(now, Ended(number, code, detail))

    def host(self, name):
        return self.state.hosts[name]


def of(kind, actions):
    return [a for a in actions if isinstance(a, kind)]


# ---------------------------------------------------------------- the plan's sessions

def test_the_head_feeds_each_chain_first_and_connects_it_once_its_first_host_speaks():
    """The first host's handshake alone on the head's cores: the rest of its chain connects
    when that host has spoken, CONNECT_AFTER seconds after the start at the latest."""
    state = ChainState([[A, B, C], [D, E]], size=SIZE, timeout=TIMEOUT, head_name="head",
                       private=RUN, new_private=generation, now=0.0)
    assert state.start() == [FeedFromHead(0, A, False, RUN), FeedFromHead(1, D, False, RUN)]
    assert state.step(Line(1, "a login banner"), 0.1) == [
        StartForwarder(2, D, E, True, RUN, RUN)]
    assert state.step(Tick(), CONNECT_AFTER - 0.1) == []
    assert state.step(Tick(), CONNECT_AFTER) == [
        StartForwarder(3, A, B, False, RUN, RUN), StartForwarder(4, B, C, True, RUN, RUN)]
    assert state.step(Tick(), CONNECT_AFTER + 1) == []  # once
    assert Run([[A]]).started == [FeedFromHead(0, A, True, RUN)]
    assert Run([[A, B]]).connected == [StartForwarder(1, A, B, True, RUN, RUN)]


def test_a_first_host_whose_session_ends_at_once_still_connects_its_chain():
    """The hosts behind it are then given up after the grace (and completed by the wave), as
    when the first host fails later."""
    state = ChainState([[A, B]], size=SIZE, timeout=TIMEOUT, head_name="head",
                       private=RUN, new_private=generation, now=0.0)
    state.start()
    assert state.step(Ended(0, 255, "Connection refused"), 0.2) == [
        StartForwarder(1, A, B, True, RUN, RUN), Failed("head", A, "Connection refused")]
    assert state.step(Tick(), 0.3 + UPSTREAM_GRACE)[0] == Failed(A, B, f"no data after {A} failed")


def test_an_ok_delivers_a_host_and_an_f_fails_it():
    run = Run([[A, B, C]])
    assert run.say(3.0, A, f"HLTPIPE OK {A} {SIZE}") == [Delivered("head", A, 3.0)]
    feed_of_b = run.session(B)
    assert run.say(3.5, B, f"HLTPIPE F {B} checksum mismatch") == [
        Failed(A, B, "checksum mismatch"), EndSession(feed_of_b)]  # it has nothing more
    assert (run.host(A).state, run.host(A).bytes, run.host(B).state) == ("ok", SIZE, "fail")
    assert run.say(4.0, C, f"HLTPIPE F {C}")[0] == Failed(B, C, "failed")


# ---------------------------------------------------------------- whose news counts

def test_a_session_counts_only_lines_about_its_own_host():
    """The forwarder on A carries B's receiver: any host of the chain (a forwarder, a login
    banner) writes into it, and a line naming another host is never that host's news."""
    run = Run([[A, B, C]])
    forwarder = run.session(B)
    for text in (f"HLTPIPE OK {C} 5", f"HLTPIPE OK {A} 5", f"HLTPIPE F {C} broken",
                 "HLTPIPE OK other.internal 5", f"HLTPIPE GONE {C}", "hello",
                 "HLTPIPE", f"HLTPIPE P {B} lots", f"HLTPIPE P {B} 3"):
        assert run.at(1.0, Line(forwarder, text)) == [], text
    assert [run.host(n).state for n in (A, B, C)] == ["wait"] * 3
    assert run.host(B).bytes == 3 and not run.state.sessions[forwarder].gone


# ---------------------------------------------------------------- stalls and failures

def test_no_new_byte_for_timeout_seconds_is_a_stall():
    """Before its first byte a host has one more TIMEOUT (its sessions' handshakes); after
    that, heartbeats that repeat the same count are no progress."""
    run = Run([[A, B, C]])
    assert of(Failed, run.at(2 * TIMEOUT, Tick())) == []
    assert Failed("head", A, f"no data for {TIMEOUT} s") in run.at(2 * TIMEOUT + 0.1, Tick())
    run = Run([[A, B, C]])
    assert run.beat(10.0, {A: 5 * MB, B: 4 * MB, C: 3 * MB}) == []
    for second in range(11, 41):
        assert of(Failed, run.beat(second, {A: 5 * MB + second, B: 4 * MB,
                                            C: 3 * MB + second})) == []
    feeds_b, runs_on_b = run.session(B), run.session(C)
    actions = run.beat(41.0, {A: 5 * MB + 41, C: 3 * MB + 41})
    assert actions == [Failed(A, B, f"no data for {TIMEOUT} s"),
                       EndSession(feeds_b), EndSession(runs_on_b)]  # what feeds it, what it runs
    assert run.host(B).reason == f"no data for {TIMEOUT} s"


def test_the_hosts_behind_a_failed_one_are_given_up_after_the_grace():
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: MB, B: MB, C: MB, D: MB})
    assert of(Failed, run.say(2.0, B, f"HLTPIPE F {B} write error")) == [Failed(A, B, "write error")]
    assert of(Failed, run.at(2.0 + UPSTREAM_GRACE, Tick())) == []
    actions = run.at(2.1 + UPSTREAM_GRACE, Tick())
    assert of(Failed, actions) == [Failed(B, C, f"no data after {B} failed")]
    # D's upstream (C) only failed now: D's grace begins now, and a new byte clears it
    run.say(3.0 + UPSTREAM_GRACE, D, f"HLTPIPE P {D} {2 * MB}")
    assert of(Failed, run.at(2.2 + 2 * UPSTREAM_GRACE, Tick())) == []
    assert run.host(D).state == "wait"


def test_a_session_that_ends_without_its_hosts_ok_fails_that_host():
    run = Run([[A, B, C]])
    detail = "ssh: connect to host cn02.internal port 22: Connection refused"
    assert of(Failed, run.end(1.0, run.session(B), 255, detail)) == [
        Failed(A, B, f"{detail} (forwarding on {A})")]
    assert of(Failed, run.end(1.0, run.session(A), 255)) == [
        Failed("head", A, "ssh exited with 255")]


def test_the_run_is_over_when_every_session_has_ended():
    run = Run([[A, B]])
    run.say(1.0, B, f"HLTPIPE OK {B} {SIZE}")
    feed_of_a = run.session(A)
    assert run.end(1.1, run.session(B)) == [] and not run.state.finished
    # A's receiver ended without a word: it failed; no CLEANUP (nothing was restarted)
    assert run.end(1.2, feed_of_a, 0) == [Failed("head", A, "ssh exited with 0")]
    assert run.state.finished and run.at(1.3, Tick()) == []


# ---------------------------------------------------------------- the slow-node rule

HEARTBEAT = 0.5  # seconds between two of a receiver's "P" lines (node/recv.sh)


def rates_until_routed(run, seconds, counts_at):
    """Heartbeats twice a second with COUNTS_AT(t); the time of the first route-around."""
    for tick in range(int(seconds / HEARTBEAT)):
        now = 1.0 + tick * HEARTBEAT
        notes = of(Note, run.beat(now, counts_at(now)))
        if notes:
            return now, notes
    return None, []


def test_the_verdict_is_the_answer_to_the_heartbeat_that_confirms_it():
    """The rule is applied at each heartbeat of a host, as it comes: the route-around is
    decided on B's own line, not at the next tick (half a second later at most)."""
    run = Run([[A, B, C, D]])
    for beat in range(20):
        now = 0.75 + beat * HEARTBEAT  # between the ticks, which come at whole halves
        t = max(0.0, now - 1.0)
        for host, rate in ((A, 2.5), (C, 0.24), (D, 0.23)):
            run.say(now, host, f"HLTPIPE P {host} {int(rate * MB * t)}")
        notes = of(Note, run.say(now, B, f"HLTPIPE P {B} {int(0.25 * MB * t)}"))
        if notes:
            break
        assert of(Note, run.at(now + 0.25, Tick())) == []
    assert notes[0].text.startswith(f"{B} is slow") and run.host(B).slow
    assert now == 1.25 + CONFIRM * HEARTBEAT  # its first byte at 1.25, a rate at the next beat


def test_a_host_far_below_its_upstream_is_routed_around_after_confirm_checks():
    """B gets a tenth of A's rate from the start (t=1): its rate exists at its next heartbeat
    after its first byte (WINDOW: just under their half second), and the verdict comes at its
    CONFIRM-th heartbeat measured so; C, which already holds bytes, takes over: a
    late forwarder on A from the byte C holds."""
    run = Run([[A, B, C, D]])

    def counts(now):
        t = now - 1.0
        return {A: int(2.5 * MB * t), B: int(0.25 * MB * t), C: int(0.24 * MB * t),
                D: int(0.23 * MB * t)}
    at, notes = rates_until_routed(run, 10, counts)
    first_byte = 1.5  # the first heartbeat with a byte: a rate at the next one
    assert WINDOW < HEARTBEAT and at == first_byte + HEARTBEAT + (CONFIRM - 1) * HEARTBEAT
    held = counts(at - HEARTBEAT)[C]  # B's heartbeat decided, before C's of the same beat
    assert notes == [Note(f"{B} is slow (250.0 kB/s, {A} gets 2.5 MB/s): taken out of the "
                          f"chain, {A} --> {C} now; {B} finishes on its own")]
    assert (run.host(B).slow, run.host(C).took_from, run.host(C).upstream) == (True, held, A)
    late = run.session(C)
    assert run.state.sessions[late].late and run.state.next_of[A] == C
    assert run.state.next_of[B] is None
    # The old feed of C (the forwarder on B) is replaced: it ends by itself, its news no
    # longer count; the hosts behind C keep their sessions.
    assert run.say(at + 0.5, D, f"HLTPIPE P {D} {held}") == []
    old = [n for n, s in run.state.sessions.items() if s.carries == C and s.stale]
    assert run.at(at + 0.6, Line(old[0], f"HLTPIPE F {C} taken over")) == []
    assert of(Failed, run.end(at + 0.7, old[0], 1)) == []
    assert run.host(C).state == "wait"


def test_a_host_keeping_up_with_a_slow_upstream_is_not_blamed():
    run = Run([[A, B, C]])
    at, _ = rates_until_routed(run, 8, lambda now: {A: int(0.3 * MB * now),
                                                   B: int(0.29 * MB * now),
                                                   C: int(0.28 * MB * now)})
    assert at is None and not any(run.host(n).slow for n in (A, B, C))


def test_a_slow_last_host_just_finishes_at_its_own_pace():
    run = Run([[A, B]])
    assert run.at(1.0, RouteAround(B)) == [
        Note(f"{B} is slow (0.0 kB/s): last of its chain, it finishes at its own pace")]
    assert run.host(B).slow and run.state.sessions[run.session(B)].role == "fwd"


def test_a_slow_host_moves_to_the_end_of_its_chain_once_the_last_host_holds_as_much():
    """B is routed around (C takes over, fed by A), but B's old feed still shares A's uplink
    with C: once D, the chain's last host, holds what B holds, B moves there: a take-over of
    its own receiver, fed by D from the byte B holds; the old feed's news no longer count."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 4 * MB, B: 2 * MB, C: 2 * MB, D: MB})
    old_feed = run.session(B)
    assert of(StartForwarder, run.at(1.5, RouteAround(B)))[0].next_host == C
    assert (list(run.state.moving), run.state.skipped_to) == ([B], {B: C})
    # D still holds less than B: B stays where it is (the check runs twice a second)
    assert run.beat(2.0, {A: 5 * MB, B: 3 * MB, C: 3 * MB, D: 2 * MB}) == []
    actions = run.beat(2.5, {A: 6 * MB, B: 3 * MB, C: 4 * MB, D: 3 * MB})
    moved = of(StartForwarder, actions)
    assert actions == [Note(f"{B} moves to the end of its chain: {D} --> {B} now"),
                       StartForwarder(moved[0].session, D, B, True, RUN, RUN, late=True,
                                      take_over=3 * MB)]
    assert (run.host(B).upstream, run.host(B).took_from, run.state.next_of[D]) == (D, 3 * MB, B)
    assert run.state.moving == {} and run.state.sessions[old_feed].stale
    assert run.at(3.0, Line(old_feed, f"HLTPIPE F {B} taken over")) == []
    # Once the new receiver speaks (it has taken over: the old one cannot complete), the
    # old feed ends: ssh's window would fill B's link with bytes dropped for seconds.
    assert run.say(3.5, B, f"HLTPIPE P {B} {3 * MB}") == [EndSession(old_feed)]
    assert run.say(4.0, B, f"HLTPIPE P {B} {4 * MB}") == []
    assert run.say(9.0, B, f"HLTPIPE OK {B} {SIZE}") == [Delivered(D, B, 9.0)]
    assert run.beat(9.5, {C: 5 * MB, D: 4 * MB}) == []  # once


def test_a_host_wrongly_found_slow_moves_after_move_after_seconds_from_what_the_end_holds():
    """B was only starved of CPU for a second: it keeps up with A, shares A's uplink with C
    and is never caught up with. MOVE_AFTER seconds after the verdict it moves all the same,
    fed by D from the byte D holds (B's new receiver drops what it has already)."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 4 * MB, B: 3 * MB, C: 2 * MB, D: MB})
    run.at(1.5, RouteAround(B))
    assert run.beat(1.5 + MOVE_AFTER - 0.5, {A: 6 * MB, B: 5 * MB, C: 3 * MB, D: 2 * MB}) == []
    moved = of(StartForwarder, run.beat(1.5 + MOVE_AFTER, {A: 7 * MB, B: 6 * MB, C: 4 * MB,
                                                          D: 3 * MB}))
    assert [(a.host, a.next_host, a.take_over) for a in moved] == [(D, B, 3 * MB)]
    assert (run.host(B).upstream, run.host(B).took_from) == (D, 3 * MB)


def test_a_slow_host_that_took_over_once_or_whose_chain_is_done_stays_where_it_is():
    """One take-over per directory: C, which took over from B's upstream, is slow too and
    never moves; and a slow host whose chain's last host is done has nowhere to move."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 4 * MB, B: 3 * MB, C: 2 * MB, D: MB})
    run.at(1.5, RouteAround(B))  # C takes over (fed by A)
    run.at(1.6, RouteAround(C))  # D took nothing over yet: D takes over (fed by A)
    assert (list(run.state.moving), run.state.skipped_to) == ([B, C], {B: C, C: D})
    run.say(2.0, D, f"HLTPIPE OK {D} {SIZE}")
    assert of(StartForwarder, run.beat(2.5, {A: 5 * MB, B: MB, C: MB})) == []
    assert run.state.moving == {} and run.host(B).upstream == A and run.host(C).upstream == A


def test_a_slow_host_moves_past_a_slow_host_after_it():
    """Two slow nodes side by side (B, C): C took over from A, then was routed around too (D
    takes over); C never moves (one take-over per directory), and B moves to E, the end of
    the chain behind both of them."""
    run = Run([[A, B, C, D, E]])
    run.beat(1.0, {A: 4 * MB, B: 3 * MB, C: 2 * MB, D: MB, E: MB // 2})
    run.at(1.5, RouteAround(B))
    run.at(1.6, RouteAround(C))
    assert of(StartForwarder, run.beat(2.0, {A: 5 * MB, B: 3 * MB, C: 2 * MB, D: 2 * MB,
                                             E: 2 * MB})) == []
    assert list(run.state.moving) == [B]
    moved = of(StartForwarder, run.beat(2.5, {A: 6 * MB, D: 4 * MB, E: 4 * MB}))
    assert [(a.host, a.next_host, a.take_over) for a in moved] == [(E, B, 3 * MB)]
    assert (run.host(B).upstream, run.host(C).upstream) == (E, A)


# ---------------------------------------------------------------- the races

def test_a_route_around_as_the_upstream_finishes_is_fed_by_the_head():
    """A's copy is complete (in place: never read back) when B is routed around: the head
    feeds C from the byte C holds."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 2 * MB, B: MB, C: MB, D: MB // 2})
    run.say(2.0, A, f"HLTPIPE OK {A} {SIZE}")
    actions = run.at(2.5, RouteAround(B))
    assert actions[-1] == FeedFromHead(actions[-1].session, C, False, RUN, take_over=MB)
    assert actions[-1].offset == MB and of(StartForwarder, actions) == []
    assert f"{B} is slow" in actions[0].text and f"head --> {C} now" in actions[0].text
    assert run.host(C).upstream == "head"


def test_gone_the_head_feeds_the_host_behind_from_the_byte_it_had():
    """A still counts as receiving when B is routed around, so a late forwarder starts on A;
    A's receiver ended meanwhile (its OK is still on its way): the forwarder says GONE and
    sends nothing, and the head feeds C, at the byte C had."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 2 * MB, B: MB, C: MB, D: MB // 2})
    forwarder = of(StartForwarder, run.at(1.5, RouteAround(B)))
    assert forwarder == [StartForwarder(forwarder[0].session, A, C, False, RUN, RUN,
                                        late=True, take_over=MB)]
    number = forwarder[0].session
    assert run.at(2.0, Line(number, f"HLTPIPE GONE {D}")) == []  # another host's: ignored
    assert run.at(2.0, Line(number, f"HLTPIPE GONE {C}")) == []
    actions = run.end(2.1, number, 1, f"no receiver running on {A}")
    assert actions == [Note(f"no receiver on {A} any more: head --> {C} now"),
                       FeedFromHead(number + 1, C, False, RUN, take_over=MB)]
    assert run.state.next_of[A] is None and run.host(C).upstream == "head"
    assert run.host(C).state == "wait" and run.host(C).changed == 2.1 + TIMEOUT
    # A's OK comes last: A is done, C is unaffected
    assert run.say(2.2, A, f"HLTPIPE OK {A} {SIZE}") == [Delivered("head", A, 2.2)]


def test_a_planned_forwarder_that_ends_is_a_failure_even_after_gone():
    run = Run([[A, B, C]])
    run.at(1.0, Line(run.session(B), f"HLTPIPE GONE {B}"))
    assert of(Failed, run.end(1.1, run.session(B), 1, "no receiver running")) == [
        Failed(A, B, f"no receiver running (forwarding on {A})")]


def test_a_take_over_with_nothing_to_take_over_starts_again_in_a_new_directory():
    """C holds no byte yet: the hosts behind B (C, D) start again from byte 0 in a new private
    directory; their old sessions end; B keeps its own."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 2 * MB, B: MB})
    before = dict(run.state.sessions)
    actions = run.at(1.5, RouteAround(B))
    ended = [a.session for a in of(EndSession, actions)]
    assert sorted(before[n].carries for n in ended) == [C, D]  # the forwarders on B and C
    new = generation(1)
    starts = [a for a in actions if isinstance(a, (StartForwarder, FeedFromHead))]
    assert [(a.host, a.next_host, a.private, a.next_private, a.late, a.take_over)
            for a in starts] == [(C, D, new, new, False, None), (A, C, RUN, new, True, None)]
    assert actions.index(starts[0]) > max(actions.index(a) for a in of(EndSession, actions))
    assert run.state.generation == 1 and run.host(C).private == run.host(D).private == new
    assert {(C, new), (D, new), (C, RUN)} <= run.state.privates
    assert run.state.sessions[run.session(B)].host == A  # B's own feed goes on
    # at the end, CLEANUP on every host and directory of the run
    for name in (A, B, C, D):
        run.say(3.0, name, f"HLTPIPE OK {name} {SIZE}")
    last = [run.end(4.0, number) for number in list(run.state.sessions)][-1]
    assert last == [CleanUp(tuple(sorted(run.state.privates)))]


def test_forced_to_start_again_even_with_bytes_to_take_over():
    run = Run([[A, B, C]])
    run.beat(1.0, {A: 2 * MB, B: MB, C: MB})
    actions = run.at(1.5, RouteAround(B, take_over=False))
    assert of(StartForwarder, actions)[0].take_over is None
    assert run.host(C).bytes == 0 and run.host(C).took_from is None
    assert run.state.generation == 1


def test_a_second_take_over_of_the_same_host_starts_it_again():
    """Two slow nodes side by side (B, C): C is routed around first (D takes over, fed by
    B), then B: D took over once already (one take-over per directory), so D starts again
    from byte 0 in a new directory, fed by A."""
    run = Run([[A, B, C, D]])
    run.beat(1.0, {A: 4 * MB, B: 3 * MB, C: 2 * MB, D: MB})
    first = run.at(1.5, RouteAround(C))
    assert of(StartForwarder, first) == [
        StartForwarder(of(StartForwarder, first)[0].session, B, D, True, RUN, RUN, late=True,
                       take_over=MB)]
    second = run.at(2.0, RouteAround(B))
    starts = of(StartForwarder, second)
    assert [(a.host, a.next_host, a.next_private, a.take_over) for a in starts] == [
        (A, D, generation(1), None)]
    assert (run.host(D).took_from, run.host(D).bytes, run.host(D).upstream) == (None, 0, A)
    # what fed D (the late forwarder on B) and D's old receiver's sessions end
    assert [run.state.sessions[a.session].host for a in of(EndSession, second)] == [C, B]


@pytest.mark.parametrize("kind", ["P", "F", "GONE"])
def test_a_replaced_session_says_nothing_that_counts(kind):
    run = Run([[A, B, C]])
    run.beat(1.0, {A: 2 * MB, B: MB, C: MB})
    old = run.session(C)
    run.at(1.5, RouteAround(B))
    assert run.at(2.0, Line(old, f"HLTPIPE {kind} {C} {SIZE}")) == []
    assert (run.host(C).state, run.host(C).bytes) == ("wait", MB)


def test_a_host_whose_old_receiver_was_done_as_it_was_taken_over_has_the_file():
    """The route-around race the other way: C's old receiver had its copy complete and in
    place as C was taken over; its OK still counts (under load the new receiver then finds
    no receiver to take over, and its failure must not send C to the wave)."""
    run = Run([[A, B, C]])
    run.beat(1.0, {A: 2 * MB, B: MB, C: MB})
    old = run.session(C)
    run.at(1.5, RouteAround(B))
    assert run.at(2.0, Line(old, f"HLTPIPE OK {C} {SIZE}")) == [Delivered(A, C, 2.0)]
    assert run.say(2.5, C, f"HLTPIPE F {C} no receiver to take over in {RUN}") == []
    assert run.host(C).state == "ok"


def test_a_replaced_feed_ends_by_itself_when_other_hosts_start_again():
    """After C took over from B, the old forwarder on B (feeding C's old receiver) ends by
    itself once the new receiver is done; a later restart behind D ends only the sessions of
    the hosts behind D."""
    run = Run([[A, B, C, D, E]])
    run.beat(1.0, {A: 4 * MB, B: 3 * MB, C: 2 * MB, D: MB})
    replaced = run.session(C)
    assert of(EndSession, run.at(1.5, RouteAround(B))) == []
    ended = [a.session for a in of(EndSession, run.at(2.0, RouteAround(D)))]
    assert [run.state.sessions[n].carries for n in ended] == [E]
    assert replaced not in ended and not run.state.sessions[replaced].ending
