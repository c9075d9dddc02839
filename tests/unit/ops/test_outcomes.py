"""Outcomes as values (issue 20): a host's Outcome, its JSON line (a --parallel subworker's
last line, input to the parent: checked where it enters), and what comes from outcomes:
the summary, the re-run lists, the record's end line. The parent's reading of lying
subworkers runs on the simulated cluster (test_manage_cluster.py)."""
import dataclasses
import io
import json
import re

import pytest

import hltcloud.ops.outcomes as outcomes_module

from hltcloud import report
from hltcloud.ops import rerun
from hltcloud.ops.outcomes import (MARK, MAX_LINE, MAX_REASON, BadOutcome, HostState, Outcome,
                                   in_order)

HOST = "cn04.internal"
LEFT = Outcome(HOST, "failed", "Shutting down OpenStack daemons on cn04.internal: ssh: timed out",
               HostState(nova="disabled", forced_down=False, vms_left=1, daemons="running"))


def line_of(**fields):
    """An outcome line holding FIELDS (a good one for HOST, changed by FIELDS)."""
    data = json.loads(LEFT.to_json())
    data.update(fields)
    return MARK + json.dumps(data)


@pytest.mark.parametrize("outcome", [
    LEFT,
    Outcome(HOST),
    Outcome(HOST, "unknown host", f"{HOST}: not a compute host known to Nova"),
    Outcome(HOST, "interrupted", "x").then(nova="enabled", forced_down=True, vms_left=0),
    Outcome(HOST, "not started", "ünïcode reason ✓"),
])
def test_an_outcome_goes_through_its_line_unchanged(outcome):
    line = outcome.line()
    assert line.startswith(MARK) and "\n" not in line and line.isascii()
    assert Outcome.from_line(line, HOST) == outcome


def test_the_state_says_what_an_action_left_the_host_in():
    """Enough to write "cn04.internal: left disabled in Nova, 1 VM still there, daemons
    not stopped (ssh: ...)" later: each part is a field, None where it is not known."""
    assert (LEFT.state.nova, LEFT.state.vms_left, LEFT.state.daemons) == ("disabled", 1, "running")
    assert Outcome(HOST).state == HostState(None, None, None, None)
    done = Outcome(HOST).then(daemons="stopped")
    assert done.ok and done.state.daemons == "stopped"
    failed = done.failed("first").failed("second")
    assert (failed.status, failed.reason, failed.state) == ("failed", "first; second", done.state)
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.status = "ok"


def test_a_reason_is_sent_printable_and_bounded():
    """The subworker's own text (a node's ssh error) is made printable and cut to MAX_REASON
    before it leaves: the parent would refuse it otherwise."""
    raw = Outcome(HOST, "failed", "ssh: \x1b]0;owned\x07\r\n[ OK ] forged " + "x" * 10_000)
    back = Outcome.from_line(raw.line(), HOST)
    assert back.reason.startswith("ssh: \\x1b]0;owned\\x07\\r\\n[ OK ] forged xxx")
    assert len(back.reason) == MAX_REASON and back.reason.endswith("more characters)")


BAD_LINES = [  # (line, what the refusal says)
    (line_of(host="cn05.internal"), "another host: cn05.internal"),
    (line_of(host="cn05.internal\x1b[2J"), "invalid character"),
    (line_of(host=""), "empty host name"),
    (line_of(reason="ok\x1b]0;owned\x07"), "printable text"),
    (line_of(reason="two\nlines"), "printable text"),
    (MARK + LEFT.to_json().replace("ssh:", "ssh:\x1b[31m"), "control characters"),
    (line_of(reason="x" * (MAX_REASON + 1)), "printable text"),
    (MARK + LEFT.to_json() + " " * MAX_LINE, f"longer than {MAX_LINE}"),
    (line_of(status="fine"), "status must be one of"),
    (line_of(status=None), "status must be one of"),
    (line_of(reason=3), "printable text"),
    (line_of(state={"nova": "paused"}), "nova must be one of"),
    (line_of(state={"vms_left": -1}), "vms_left must be a whole number"),
    (line_of(state={"vms_left": True}), "vms_left must be a whole number"),
    (line_of(state={"vms_left": 10 ** 12}), "vms_left must be a whole number"),
    (line_of(state={"forced_down": 1}), "forced_down must be"),
    (line_of(state={"shell": "rm -rf /"}), "the state may only say"),
    (line_of(state=[]), "the state may only say"),
    (line_of(extra=1), "not an outcome"),
    (MARK + '{"host": "cn04.internal"}', "not an outcome"),
    (MARK + "[1, 2]", "not an outcome"),
    (MARK + '{"host": "cn04.internal", "status": "ok"', "not JSON"),
    (LEFT.to_json(), "no outcome line"),
    ("[ OK ] Done on cn04.internal", "no outcome line"),
]


@pytest.mark.parametrize("line, says", BAD_LINES,
                         ids=[f"{number}-{says}" for number, (_, says) in enumerate(BAD_LINES)])
def test_a_bad_or_foreign_line_is_refused(line, says):
    with pytest.raises(BadOutcome, match=re.escape(says)):
        Outcome.from_line(line, HOST)


def test_no_line_the_reporter_writes_starts_with_the_mark():
    """A name from the cloud that looks like an outcome line stays a human line: only the
    subworker's own print of its outcome starts with the mark."""
    out = io.StringIO()
    rep = report.Reporter(out)
    rep.info(LEFT.line())
    rep.write_line(f"table\n{Outcome(HOST).line()}")
    for line in out.getvalue().splitlines():
        assert not line.startswith(MARK), line
        with pytest.raises(BadOutcome):
            Outcome.from_line(line, HOST)


def test_the_summary_lists_the_failed_outcomes_and_the_kept_failures():
    out = io.StringIO()
    rep = report.Reporter(out)
    rep.fail("--parallel needs pdsh: No such file or directory")
    ok = rep.summary([Outcome("cn01"), LEFT, Outcome("cn02", "not started", "cn02: not started")])
    assert ok is False
    assert out.getvalue().splitlines() == [
        "[FAIL] --parallel needs pdsh: No such file or directory", "",
        "Failed on 2 host(s): cn02,cn04.internal",
        # the state the host was left in, then why (issue 21): not only the last error
        "  cn04.internal: left disabled in Nova, not forced down, 1 VM still there, daemons "
        f"running ({LEFT.reason})", "  cn02: not started",
        "  --parallel needs pdsh: No such file or directory"]
    out = io.StringIO()
    assert report.Reporter(out).summary([Outcome("cn01")]) is True


def test_the_lists_and_the_rerun_line_come_from_the_outcomes(tmp_path):
    failed, ok = tmp_path / "failed", tmp_path / "ok"
    argv = ["--failed-hosts", str(failed), "--ok-hosts", str(ok), "enable", "cn[01-04]"]
    args = dataclasses.make_dataclass("A", ["failed_path", "ok_path"])(str(failed), str(ok))
    lists = rerun.HostLists("openstack-hlt-manage", argv, (len(argv) - 1, len(argv)), args)
    out = io.StringIO()
    outcomes = [Outcome("cn03", "unknown host", "cn03: not a compute host known to Nova"),
                Outcome("cn01"), Outcome("cn02").failed("cn02: broke"),
                Outcome("cn04", "interrupted", "cn04: interrupted")]
    hosts = ["cn01", "cn02", "cn03", "cn04", "cn05"]
    assert lists.finish(report.Reporter(out), in_order(outcomes, hosts)) is True
    assert failed.read_text().splitlines()[1:] == ["cn02", "cn03", "cn04", "cn05"]
    assert ok.read_text().splitlines()[1:] == ["cn01"]
    assert out.getvalue().splitlines() == [
        f"Re-run on the 4 failed host(s): openstack-hlt-manage --failed-hosts {failed} "
        f"--ok-hosts {ok} enable @{failed}"]


def test_gathered_puts_hosts_of_the_same_outcome_together():
    stopped = HostState(nova="disabled", forced_down=True, vms_left=0, daemons="stopped")
    outcomes = [Outcome(f"cn0{i}", "ok", "", stopped) for i in (1, 2, 4)] + [
        LEFT, Outcome("cn03").failed("cn03: boom"), Outcome("cn05").failed("cn05: bang")]
    assert outcomes_module.gathered(outcomes) == [
        ("ok", ["cn01", "cn02", "cn04"], "disabled in Nova, forced down, no VM left, "
                                         "daemons stopped"),
        ("failed", ["cn04.internal"], outcomes_module.described(LEFT.state)),
        ("failed", ["cn03", "cn05"], "")]
