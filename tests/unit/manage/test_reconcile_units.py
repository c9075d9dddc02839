"""reconcile's pure parts with literal inputs: the comparison of Nova and the node (a table of
states -> findings and what --for-real would do), the reading of a node's status lines, and
the re-run line of a failed enable or disable (issue 21, items 4 and 5)."""
import datetime

import pytest

from hltcloud.errors import UsageError
from hltcloud.manage import daemon_probe, reconcile_rerun
from hltcloud.manage import options as manage_cli
from hltcloud.manage.reconcile_plan import Node, plan
from hltcloud.ops.outcomes import HostState, Outcome
from hltcloud.ops.rerun import HostLists

NOW = datetime.datetime(2026, 12, 6, 3, 0, tzinfo=datetime.timezone.utc).timestamp()
NAMES = ("nova-compute", "libvirtd")
UP = Node(tuple((name, "running") for name in NAMES))
DOWN = Node(tuple((name, "stopped") for name in NAMES))
HALF = Node((("nova-compute", "stopped"), ("libvirtd", "running")))
UNKNOWN = Node((("nova-compute", "unknown"), ("libvirtd", "running")))
GONE = Node(unreachable="ssh: connect to host cn04 port 22: Connection timed out")


def svc(status, forced=False):
    return {"status": status, "forced_down": forced}


def vm(ident, state="ACTIVE", deleting_since=None):
    server = {"id": ident, "status": state, "updated": "2026-12-06T02:00:00Z",
              "OS-EXT-STS:task_state": None}
    if deleting_since is not None:
        server.update({"OS-EXT-STS:task_state": "deleting",
                       "updated": f"2026-12-06T02:59:{60 - deleting_since:02d}Z"})
    return server


# (Nova's service, its VMs, the node) -> (found, would do, action)
CASES = [
    (svc("enabled"), [vm("a")], UP, (), (), None),
    (svc("disabled", True), [], DOWN, (), (), None),
    (svc("disabled", True), [], HALF,
     ("disabled, but daemons running: libvirtd",), ("disable: stop the daemons, force down",),
     "disable"),
    (svc("disabled"), [], DOWN, ("disabled, but not forced down",),
     ("disable: stop the daemons, force down",), "disable"),
    (svc("disabled", True), [vm("a"), vm("b")], DOWN, ("disabled, but 2 VMs left",),
     ("disable: delete 2 VMs, stop the daemons, force down",), "disable"),
    (svc("enabled"), [], HALF, ("enabled, but daemons not running: nova-compute",),
     ("enable: start the daemons",), "enable"),
    (svc("enabled", True), [], UP, ("enabled, but forced down",),
     ("enable: start the daemons, clear forced down",), "enable"),
    (svc("enabled"), [], UNKNOWN, ("enabled, daemons of unknown state: nova-compute",),
     ("enable: start the daemons",), "enable"),
    (svc("disabled", True), [], UNKNOWN, ("disabled, but daemons running: libvirtd",
                                         "disabled, daemons of unknown state: nova-compute"),
     ("disable: stop the daemons, force down",), "disable"),
    (svc("enabled"), [vm("a", "ERROR"), vm("b")], UP, ("1 VM in ERROR",), ("delete 1 VM",), None),
    # deleting for 10 s: within --vm-timeout 30, Nova is at it; for 50 s: stuck
    (svc("enabled"), [vm("a", deleting_since=10)], UP, (), (), None),
    (svc("enabled"), [vm("a", "ERROR", deleting_since=50)], UP,
     ("1 VM deleting for more than 30 s",), ("reset 1 VM stuck deleting", "delete 1 VM"), None),
    (svc("disabled", True), [vm("a", deleting_since=50)], DOWN,
     ("disabled, but 1 VM left (1 deleting for more than 30 s)",),
     ("reset 1 VM stuck deleting", "disable: delete 1 VM, stop the daemons, force down"),
     "disable"),
]


@pytest.mark.parametrize("service, servers, node, found, would, action", CASES)
def test_each_state_and_what_reconcile_would_do(service, servers, node, found, would, action):
    got = plan("cn01", service, servers, node, 30, NOW)
    assert (got.found, got.would_do, got.action) == (found, would, action)
    assert got.consistent == (not found) and not got.unreachable


def test_what_is_deleted_and_reset_on_an_enabled_host():
    servers = [vm("err", "ERROR"), vm("stuck", deleting_since=50), vm("fine"),
               vm("busy", deleting_since=5)]
    got = plan("cn01", svc("enabled"), servers, UP, 30, NOW)
    assert (got.delete, got.unstick) == (("err", "stuck"), ("stuck",))


def test_an_unreachable_node_is_reported_never_guessed_nor_acted_upon():
    got = plan("cn04", svc("disabled"), [vm("a")], GONE, 30, NOW)
    assert got.found == (f"node unreachable ({GONE.unreachable}): daemons unknown",
                         "disabled, but 1 VM left", "disabled, but not forced down")
    assert got.would_do == ("nothing: the node cannot be asked",)
    assert (got.action, got.delete, got.unstick, got.unreachable) == (None, (), (), True)
    enabled = plan("cn04", svc("enabled"), [], GONE, 30, NOW)  # nothing else known wrong
    assert not enabled.consistent and enabled.action is None


def test_a_deleting_vm_without_a_readable_time_counts_as_stuck():
    server = {**vm("a", deleting_since=1), "updated": "yesterday"}
    assert plan("cn01", svc("enabled"), [server], UP, 30, NOW).unstick == ("a",)


def test_the_node_lines_read_are_ours_only():
    out = ("hltcloud-daemon-status libvirtd 0\n"
           "hltcloud-daemon-status nova-compute 3\n"
           "hltcloud-daemon-status nova-compute 0\n"  # said twice: the first counts
           "hltcloud-daemon-status evil 0\n"
           "libvirtd is running\n")
    assert daemon_probe.parse(NAMES, out) == (("nova-compute", "stopped"), ("libvirtd", "running"))
    assert daemon_probe.parse(NAMES, "hltcloud-daemon-status libvirtd 4\n") == (
        ("nova-compute", "unknown"), ("libvirtd", "unknown"))


def test_the_remote_script_is_quoted_service_commands_only():
    class Config:
        services = ("libvirtd", "openstack-nova-compute")

        def service_command(self, action, service):
            return ["/usr/sbin/service", service, action]
    argv = daemon_probe.remote_argv(Config())
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == ("/usr/sbin/service libvirtd status </dev/null >/dev/null 2>&1; "
                       "echo hltcloud-daemon-status libvirtd $?; "
                       "/usr/sbin/service openstack-nova-compute status </dev/null >/dev/null "
                       "2>&1; echo hltcloud-daemon-status openstack-nova-compute $?")


def _lines(argv, outcomes, capsys):
    opts = manage_cli.parse(argv)

    class Rep:
        def write_line(self, text):
            print(text)
    lists = HostLists("openstack-hlt-manage", opts.argv, opts.host_span, opts, save=False,
                      reroute=reconcile_rerun.route(opts))
    lists.finish(Rep(), outcomes)
    return capsys.readouterr().out.splitlines()


def test_a_failed_disable_left_disabled_is_re_run_with_reconcile(capsys, monkeypatch):
    monkeypatch.setattr("hltcloud.ops.audit.note_outcomes", lambda outcomes: None)
    left = Outcome("cn04.internal", state=HostState(nova="disabled")).failed("ssh: timed out")
    still = Outcome("cn05.internal", state=HostState(nova="enabled")).failed("PUT refused")
    fine = Outcome("cn06.internal")
    argv = ["--for-real", "--vm-timeout", "8", "--reason", "fill", "--force-shutoff", "disable",
            "cn[04-06].internal"]
    assert _lines(argv, [left, still, fine], capsys) == [
        "Re-run on the 1 failed host(s): "
        "openstack-hlt-manage --for-real --vm-timeout 8 --force-shutoff reconcile cn04.internal",
        "Re-run on the 1 failed host(s): openstack-hlt-manage --for-real --vm-timeout 8 "
        "--reason fill --force-shutoff disable cn05.internal"]
    enabled = Outcome("cn04.internal", state=HostState(nova="enabled")).failed("ssh")
    assert _lines(["--parallel", "enable", "cn04.internal"], [enabled], capsys) == [
        "Re-run on the 1 failed host(s): "
        "openstack-hlt-manage --parallel reconcile cn04.internal"]
    reconciled = Outcome("cn04.internal").failed("node unreachable")
    assert _lines(["--for-real", "reconcile"], [reconciled], capsys) == [
        "Re-run on the 1 failed host(s): openstack-hlt-manage --for-real reconcile cn04.internal"]


def test_reconcile_command_line():
    opts = manage_cli.parse(["reconcile", "-x", "cn02", "--vm-timeout", "60", "-c", "found"])
    assert (opts.command, opts.hosts, opts.exclude, opts.vm_timeout) == (
        "reconcile", (), ("cn02",), 60)
    with pytest.raises(UsageError, match="--reason is for disable, not reconcile"):
        manage_cli.parse(["--reason", "x", "reconcile"])
