"""What one host's action came to: a frozen Outcome, the one source of a run's end.

An Outcome names the host, its status (ok, failed, interrupted, not started, unknown host),
the state the action left the host in as far as it knows (HostState: None where it does
not), and the reason, one line ("" when ok). The exit status, the re-run lists (rerun.py),
the summary (report.py) and the record's end line (audit.py) all come from the outcomes.

A --parallel subworker ends with its outcome as one line of JSON after MARK (line());
the parent reads it with from_line(), for the host pdsh labelled the line with: that line
is input from another process, so it is checked where it enters (bounded, printable,
known fields and values, that host and no other) and refused with BadOutcome otherwise.
"""
import dataclasses
import json
from dataclasses import dataclass

from hltcloud.hostlist import HostListError, check_host
from hltcloud.printable import printable
from hltcloud.report import OUTCOME_MARK as MARK

OK, FAILED, INTERRUPTED = "ok", "failed", "interrupted"
NOT_STARTED, UNKNOWN_HOST = "not started", "unknown host"
STATUSES = (OK, FAILED, INTERRUPTED, NOT_STARTED, UNKNOWN_HOST)
MAX_REASON = 4000  # characters of a reason sent by a subworker (far more than one VM list)
MAX_LINE = 65_536  # characters of an outcome line: MAX_REASON escaped as JSON, and the rest
MAX_VMS = 1_000_000
_CHOICES = {"nova": (None, "enabled", "disabled"), "daemons": (None, "running", "stopped")}


class BadOutcome(ValueError):
    """A subworker's outcome line that cannot be taken (the message says why)."""


@dataclass(frozen=True)
class HostState:
    """What the action left the host in: enabled or disabled in Nova, forced down or not,
    how many VMs are still on it, whether its OpenStack daemons run. None: not known."""
    nova: str = None
    forced_down: bool = None
    vms_left: int = None
    daemons: str = None

    def __post_init__(self):
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}: {getattr(self, name)!r}")
        if self.forced_down is not None and type(self.forced_down) is not bool:
            raise ValueError(f"forced_down must be true, false or null: {self.forced_down!r}")
        left = self.vms_left
        if left is not None and (type(left) is not int or not 0 <= left <= MAX_VMS):
            raise ValueError(f"vms_left must be a whole number up to {MAX_VMS}: {left!r}")


@dataclass(frozen=True)
class Outcome:
    host: str
    status: str = OK
    reason: str = ""  # why it failed, one line (the summary lists it)
    state: HostState = HostState()

    def __post_init__(self):
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"an outcome needs a host name: {self.host!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}: {self.status!r}")
        if not isinstance(self.reason, str) or not isinstance(self.state, HostState):
            raise ValueError("reason must be text and state a HostState")

    @property
    def ok(self):
        return self.status == OK

    def then(self, **changes):
        """The same outcome, the host's state changed by CHANGES (a step that worked)."""
        return dataclasses.replace(self, state=dataclasses.replace(self.state, **changes))

    def summary_line(self):
        """A failed outcome as the summary lists it: the state its host was left in (what
        is known of it), then why."""
        state = described(self.state)
        return f"{self.host}: left {state} ({self.reason})" if state else self.reason

    def failed(self, *reasons):
        """This outcome failed, REASONS added to any it had (each already shown)."""
        reason = "; ".join(r for r in (self.reason, *reasons) if r)
        return dataclasses.replace(self, status=FAILED, reason=reason)

    def to_json(self):
        """One line of JSON, ASCII only; the reason made printable and at most MAX_REASON."""
        reason = printable(self.reason)
        if len(reason) > MAX_REASON:
            more = f"... ({len(reason) - MAX_REASON} more characters)"
            reason = reason[:MAX_REASON - len(more)] + more
        return json.dumps({"host": self.host, "status": self.status, "reason": reason,
                           "state": dataclasses.asdict(self.state)}, separators=(",", ":"))

    def line(self):
        """The subworker's last line: MARK, then the JSON."""
        return MARK + self.to_json()

    @classmethod
    def from_json(cls, text, host):
        """The outcome TEXT holds, which must be for HOST; BadOutcome when it is not a good
        one (too long, control characters, unknown fields or values, another host)."""
        if not isinstance(text, str) or len(text) > MAX_LINE:
            raise BadOutcome(f"longer than {MAX_LINE} characters")
        if not text.isprintable():
            raise BadOutcome("control characters in the line")
        try:
            data = json.loads(text)
        except ValueError as err:
            raise BadOutcome(f"not JSON: {err}") from None
        if not isinstance(data, dict) or not {"host", "status"} <= data.keys() <= \
                {"host", "status", "reason", "state"}:
            raise BadOutcome("not an outcome (host, status, reason, state)")
        return cls._checked(data, host)

    @classmethod
    def _checked(cls, data, host):
        reason, state = data.get("reason", ""), data.get("state", {})
        try:
            check_host(data["host"])
        except HostListError as err:
            raise BadOutcome(str(err)) from None
        if data["host"] != host:
            raise BadOutcome(f"an outcome for another host: {printable(data['host'])}")
        if not isinstance(reason, str) or len(reason) > MAX_REASON or not reason.isprintable():
            raise BadOutcome(f"the reason must be printable text of at most {MAX_REASON} characters")
        names = {field.name for field in dataclasses.fields(HostState)}
        if not isinstance(state, dict) or not state.keys() <= names:
            raise BadOutcome(f"the state may only say {', '.join(sorted(names))}")
        try:
            return cls(host, data["status"], reason, HostState(**state))
        except ValueError as err:
            raise BadOutcome(printable(err)) from None

    @classmethod
    def from_line(cls, line, host):
        """The outcome of a subworker's LINE (MARK, then JSON) for HOST; BadOutcome if none."""
        if not line.startswith(MARK):
            raise BadOutcome("no outcome line")
        return cls.from_json(line[len(MARK):], host)


def described(state):
    """STATE in words, the known parts only: "disabled in Nova, forced down, 1 VM still
    there, daemons running" ("" when nothing is known)."""
    words = []
    if state.nova:
        words.append(f"{state.nova} in Nova")
    if state.forced_down is not None:
        words.append("forced down" if state.forced_down else "not forced down")
    if state.vms_left:
        words.append(f"{state.vms_left} VM{'s' if state.vms_left > 1 else ''} still there")
    elif state.vms_left == 0:
        words.append("no VM left")
    if state.daemons:
        words.append(f"daemons {state.daemons}")
    return ", ".join(words)


def gathered(outcomes):
    """[(status, hosts, state in words)]: the hosts whose outcomes agree, together (as
    clush -b gathers identical output), in the order of their first host."""
    groups = {}
    for outcome in outcomes:
        groups.setdefault((outcome.status, described(outcome.state)), []).append(outcome.host)
    return [(status, hosts, words) for (status, words), hosts in groups.items()]


def all_ok(outcomes):
    return all(outcome.ok for outcome in outcomes)


def in_order(outcomes, hosts):
    """The outcome of each of HOSTS (the command line's order: the lists' order), from
    OUTCOMES; a host without one failed (its action never said how it ended)."""
    by_host = {outcome.host: outcome for outcome in outcomes}
    return [by_host.get(host) or Outcome(host).failed(f"{host}: no result") for host in hosts]
