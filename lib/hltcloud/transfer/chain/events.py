"""What goes into ChainState (events) and what comes out of it (actions): small frozen values,
so that a test can feed the state machine by hand and read what it decided.

Events, each handled at the time the loop gives with it (ChainState.step(event, now)):
- Line: a line a session wrote on its stdout (a status line "HLTPIPE P|OK|F HOST TEXT" or
  "HLTPIPE GONE HOST" counts only when HOST is the host whose receiver the session carries;
  a P line is also the host's rate sample);
- Ended: a session's ssh ended (after its last line), with its exit code and its last line
  on stderr;
- Tick: time passed (the stall checks, and twice a second the slow-node rule);
- RouteAround: take HOST out of its chain now, as the slow-node rule does (TAKE_OVER False:
  the hosts behind it start again rather than take over), a decision from outside.

Actions, carried out by the loop (loop.py) in order:
- StartForwarder: ssh HOST FORWARD towards NEXT_HOST's receiver (a new session);
- FeedFromHead: ssh HOST RECV with the file on its stdin from byte OFFSET (a new session);
- a take-over is either start with TAKE_OVER, the byte the new sender starts at;
- EndSession: kill a session's process group;
- Delivered / Failed: a host is done (its line: "[ OK ] UP --> HOST" or a warning);
- Note: a line of information (a slow node routed around);
- CleanUp: run CLEANUP on these (host, private directory) pairs (after route-arounds).
"""
from dataclasses import dataclass

MARK = "HLTPIPE"  # status lines: "HLTPIPE P|OK|F HOST TEXT", "HLTPIPE GONE HOST"


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class Line:
    session: int
    text: str


@dataclass(frozen=True)
class Ended:
    session: int
    code: int
    detail: str = ""  # the session's last line on stderr ("" when none)


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class RouteAround:
    host: str
    take_over: bool = True


# ---------------------------------------------------------------- actions

@dataclass(frozen=True)
class StartForwarder:
    """ssh HOST FORWARD: HOST's file (in PRIVATE) into NEXT_HOST's receiver (in NEXT_PRIVATE)."""
    session: int
    host: str
    next_host: str
    next_last: bool  # NEXT_HOST is the last of its chain (its receiver feeds no forwarder)
    private: str
    next_private: str
    late: bool = False  # HOST is receiving already: a route-around (no wait for its receiver)
    take_over: int = None


@dataclass(frozen=True)
class FeedFromHead:
    """ssh HOST RECV (in PRIVATE), the file on its stdin: from byte 0, or for a take-over from
    byte TAKE_OVER (the new receiver drops what its file holds already)."""
    session: int
    host: str
    last: bool
    private: str
    take_over: int = None

    @property
    def offset(self):
        return self.take_over or 0


@dataclass(frozen=True)
class EndSession:
    session: int


@dataclass(frozen=True)
class Delivered:
    upstream: str
    host: str
    seconds: float


@dataclass(frozen=True)
class Failed:
    upstream: str
    host: str
    reason: str


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class CleanUp:
    places: tuple  # ((host, private directory), ...), sorted


def status_words(text):
    """A session's stdout line -> (kind, host, text) of a status line, or None."""
    words = text.rstrip("\n").split(" ", 3)
    if len(words) < 3 or words[0] != MARK:
        return None
    return words[1], words[2], words[3] if len(words) > 3 else ""
