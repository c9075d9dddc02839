"""openstack-hlt-manage on the simulated cluster: status, enable, disable (sequential and
--parallel), dry-run, failures of single hosts, bad input and bad credentials.

Everything goes through bin/openstack-hlt-manage; the assertions look at the cloud (novaclient
with the cluster's credentials, the simulator's request log), the nodes (files, daemons),
exit codes and printed lines.
"""
import getpass
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (COMPUTE, SERVICES, authentications, boot_on, clear_log,
                     interrupt_while_waiting, lines, mutations, processes, requests, service,
                     servers_on, start_compute, stop_compute, table_rows, tool, wait_for)

from hltcloud.cloud.session import Cloud
from hltcloud.cloud.credentials import SECRETS
from hltcloud.hostlist import fold
from hltcloud.ops.outcomes import MARK, HostState, Outcome

REPO = Path(__file__).resolve().parents[2]
TOOL = "openstack-hlt-manage"
NODE_SERVICE = str(REPO / "tests" / "simcluster" / "node-service")


# ------------------------------------------------------------------ helpers (the shared ones: helpers.py)

def vm_dirs(cluster, host):
    """The VM directories Nova left on the node (instances/ minus _base and the lock dirs)."""
    instances = cluster.node_dir(host) / "instances"
    return sorted(p.name for p in instances.iterdir() if p.is_dir() and p.name not in ("_base", "locks"))


# ------------------------------------------------------------------ status

def test_status_shows_every_host_in_natural_order_with_vms(cluster, nova):
    start_compute(cluster, nova, cluster.names[:2])
    first = cluster.names[0]
    ids = boot_on(cluster, nova, first, 2)
    nova.services.disable_log_reason(service(nova, cluster.names[2]).id, "test")
    result = tool(cluster, "--nvms", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert [r[0] for r in rows] == cluster.names  # the fixture's names, in natural order
    by_host = {r[0]: r for r in rows}
    assert by_host[first][1:4] == ["yes", "alive", "2"]
    ips = sorted(a["addr"] for i in ids for net in nova.servers.get(i).addresses.values() for a in net)
    assert sorted(by_host[first][4].split()) == ips
    assert by_host[cluster.names[1]][1:4] == ["yes", "alive", "0"]
    assert by_host[cluster.names[2]][1:3] == ["no", "dead"]


def test_status_costs_the_same_requests_at_any_cluster_size(lone_simulator):
    sim, env = lone_simulator

    def count():
        sim("DELETE", "/sim/requests")
        result = subprocess.run([str(REPO / "bin" / TOOL), "--nvms", "status"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        log = sim("GET", "/sim/requests")
        log = log["requests"] if isinstance(log, dict) else log
        return (len([r for r in log if r["service"] not in ("identity", "sim")]),
                len(table_rows(result.stdout)))

    sim("POST", "/sim/hosts", {"names": [f"v{i:03d}.virtual" for i in range(5)], "virtual": True})
    small_requests, small_rows = count()
    added = sim("POST", "/sim/hosts", {"names": [f"w{i:03d}.virtual" for i in range(60)],
                                       "virtual": True})["added"]
    big_requests, big_rows = count()
    assert (small_rows, big_rows) == (5, 65) and len(added) == 60
    assert big_requests == small_requests <= 3


def test_status_json_and_an_unknown_host(cluster, nova):
    first = cluster.names[0]
    result = tool(cluster, "--json", "--nvms", "status", first, "nosuch.internal")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert [d["hypervisor"] for d in data] == [first]
    assert data[0]["enabled"] is True and data[0]["nvms"] == 0
    assert "[FAIL] nosuch.internal: not a compute host known to Nova" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_long_json_value_csv_and_columns(cluster, nova):
    first, second = cluster.names[:2]
    start_compute(cluster, nova, [first, second])
    boot_on(cluster, nova, first, 2)
    nova.services.disable_log_reason(service(nova, second).id, "grid drained for LHC fill")
    nova.services.force_down(service(nova, second).id, True)
    both = f"{first},{second}"
    data = json.loads(tool(cluster, "-f", "json", "status", both).stdout)
    assert [sorted(item) for item in data] == [sorted(
        ["hypervisor", "enabled", "alive", "forced_down", "disabled_reason", "updated_at",
         "nvms", "vms"])] * 2  # every key, without --nvms or --long
    by_host = {item["hypervisor"]: item for item in data}
    assert by_host[first]["nvms"] == 2 and len(by_host[first]["vms"]) == 2
    assert by_host[second]["enabled"] is False and by_host[second]["forced_down"] is True
    assert by_host[second]["disabled_reason"] == "grid drained for LHC fill"
    assert by_host[second]["updated_at"][:4].isdigit()  # ISO 8601, as Nova gives it
    long = table_rows(tool(cluster, "--long", "status", both).stdout)
    assert long[0][:3] == [first, "yes", "alive"] and long[0][3:5] == ["no", ""]
    assert long[1][3:5] == ["yes", "grid drained for LHC fill"] and long[1][-1] == "0"
    value = tool(cluster, "-f", "value", "-c", "hypervisor", "-c", "nvms", "status", both)
    assert value.stdout.splitlines() == [f"{first} 2", f"{second} 0"], value.stdout
    csv = tool(cluster, "-f", "csv", "-c", "Alive?", "-c", "hypervisor", "status", first)
    assert csv.stdout.splitlines() == ['"Alive?","Hypervisor"', f'"alive","{first}"']
    short = tool(cluster, "-f", "value", "-c", "hypervisor", "status", first.split(".")[0])
    assert short.returncode == 0 and short.stdout.split() == [first], short.stdout + short.stderr
    rest = tool(cluster, "-f", "value", "-c", "hypervisor", "status", "-x", first)
    assert rest.stdout.split() == cluster.names[1:]  # -x: the whole cloud but that host
    bad = tool(cluster, "-c", "ips", "status")
    assert bad.returncode == 2 and "no column 'ips' (columns: hypervisor, enabled" in bad.stderr


# ------------------------------------------------------------------ dry run

def test_dry_run_disable_shows_everything_and_changes_nothing(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    ids = boot_on(cluster, nova, host, 2)
    clear_log(cluster)
    result = tool(cluster, "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    svc = service(nova, host)
    assert out[0].startswith(f"[DRY ] Disabling hypervisor {host}: PUT /os-services/{svc.id} ")
    # what the node would run, one level of quoting, no ssh line around it
    assert out[1].startswith(f"[DRY ] Starting OpenStack daemons on {host}: {NODE_SERVICE} ")
    assert " start && " in out[1] and "ssh" not in out[1] and "'" not in out[1], out[1]
    for vm in ids:
        assert f"[DRY ] Deleting VM {vm} on hypervisor {host}: DELETE /servers/{vm}" in out
    down = out.index(next(l for l in out if l.startswith(f"[DRY ] Shutting down OpenStack "
                                                         f"daemons on {host}: {NODE_SERVICE} ")))
    assert out[down + 1] == (f"[DRY ] Forcing hypervisor {host} down in Nova: "
                             f'PUT /os-services/{svc.id} {{"forced_down": true}}')
    assert mutations(requests(cluster)) == []
    assert svc.status == "enabled" and len(servers_on(nova, host)) == 2
    assert cluster.service_running(host, COMPUTE)
    assert not cluster.service_running(host, "libvirtd")  # "start" was only shown


def test_dry_run_enable_sends_no_mutation(cluster, nova):
    host = cluster.names[1]
    nova.services.disable_log_reason(service(nova, host).id, "test")
    clear_log(cluster)
    result = tool(cluster, "enable", host)
    assert result.returncode == 0
    assert lines(result)[0].startswith(f"[DRY ] Enabling hypervisor {host}: PUT /os-services/")
    assert lines(result)[-1] == "Dry run: nothing was changed (add --for-real to act)."
    assert mutations(requests(cluster)) == []
    assert service(nova, host).status == "disabled"
    assert not any(cluster.service_running(host, s) for s in SERVICES)


# ------------------------------------------------------------------ enable / disable for real

def test_enable_for_real_enables_and_starts_daemons(cluster, nova):
    hosts = cluster.names[:2]
    for host in hosts:
        nova.services.disable_log_reason(service(nova, host).id, "test")
    result = tool(cluster, "--for-real", "enable", fold(hosts))  # a pdsh-style range
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result) == [
        f"[ OK ] Enabling hypervisor {hosts[0]}", f"[ OK ] Starting OpenStack daemons on {hosts[0]}",
        f"[ OK ] Enabling hypervisor {hosts[1]}", f"[ OK ] Starting OpenStack daemons on {hosts[1]}",
        "", "All commands executed successfully."]
    for host in hosts:
        assert service(nova, host).status == "enabled"
        assert all(cluster.service_running(host, s) for s in SERVICES)
    wait_for(lambda: all(service(nova, h).state == "up" for h in hosts), what="computes up")


def test_disable_for_real_deletes_vms_then_stops_daemons(cluster, nova):
    host, other = cluster.names[0], cluster.names[1]
    start_compute(cluster, nova, [host, other])
    ids = boot_on(cluster, nova, host, 2)
    kept = boot_on(cluster, nova, other, 1)
    assert len(vm_dirs(cluster, host)) == 2
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert out[0] == f"[ OK ] Disabling hypervisor {host}"
    assert out[1] == f"[ OK ] Starting OpenStack daemons on {host}"
    assert sorted(out[2:4]) == sorted(f"[ OK ] Deleting VM {i} on hypervisor {host}" for i in ids)
    # piped: one line an event, the first state not said again with the end
    assert re.fullmatch(rf"Waiting max 60 s for VMs to be deleted on {re.escape(host)}\.\.\."
                        r"all gone in \d+s!", out[-5]), out
    assert not any("left)..." in line for line in out), out
    assert out[-4:] == [f"[ OK ] Shutting down OpenStack daemons on {host}",
                        f"[ OK ] Forcing hypervisor {host} down in Nova",
                        "", "All commands executed successfully."]
    svc = service(nova, host)
    assert svc.status == "disabled" and "openstack-hlt-manage" in svc.disabled_reason
    assert (svc.state, svc.forced_down) == ("down", True)  # at once, not after service_down_time
    assert servers_on(nova, host) == [] and vm_dirs(cluster, host) == []
    assert not any(cluster.service_running(host, s) for s in SERVICES)
    assert [s.id for s in servers_on(nova, other)] == kept


def test_status_is_true_right_after_disable_and_enable(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    result = tool(cluster, "--for-real", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    status = tool(cluster, "status", host)  # at once: no waiting for service_down_time
    assert table_rows(status.stdout)[0][:3] == [host, "no", "dead"], status.stdout
    result = tool(cluster, "--for-real", "enable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result)[-3] == f"[ OK ] Clearing the forced down state of hypervisor {host}"
    svc = service(nova, host)
    assert (svc.status, svc.forced_down) == ("enabled", False)
    wait_for(lambda: service(nova, host).state == "up", what=f"{host} up by its heartbeats")
    assert table_rows(tool(cluster, "status", host).stdout)[0][:3] == [host, "yes", "alive"]


def test_disable_of_a_forced_down_host_with_vms_deletes_them_through_its_compute(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    boot_on(cluster, nova, host, 1)
    nova.services.force_down(service(nova, host).id, True)  # left so by an earlier run
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert out.index(f"[ OK ] Clearing the forced down state of hypervisor {host}") < \
        out.index(next(l for l in out if l.startswith("[ OK ] Deleting VM")))
    assert servers_on(nova, host) == [] and vm_dirs(cluster, host) == []  # no local delete
    assert service(nova, host).forced_down is True


def test_disable_host_whose_compute_is_down_leaves_no_orphans(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    boot_on(cluster, nova, host, 2)
    stop_compute(cluster, nova, host)
    assert len(vm_dirs(cluster, host)) == 2
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(l.startswith(f"Waiting max 60 s for nova-compute on {host} to report up")
               for l in lines(result))
    assert servers_on(nova, host) == []
    assert vm_dirs(cluster, host) == []  # deleted by the compute: no local delete, no orphans
    assert not cluster.service_running(host, COMPUTE)


@pytest.mark.parametrize("force", [False, True])
def test_vm_that_never_goes_fails_the_host(cluster, nova, force):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    stuck, gone = boot_on(cluster, nova, host, 2)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    args = ["--for-real", "--vm-timeout", "4"] + (["--force-shutoff"] if force else [])
    result = tool(cluster, *args, "disable", host)
    assert result.returncode == 1
    out = lines(result)
    assert f"[FAIL] {host}: 1 VM(s) still there after 4 s: {stuck}" in out
    assert out[-4:-2] == ["", f"Failed on 1 host(s): {host}"]
    assert out[-1].startswith("Re-run on the 1 failed host(s): ")  # the new last line
    assert [s.id for s in servers_on(nova, host)] == [stuck]
    assert cluster.service_running(host, COMPUTE) is (not force)
    # Daemons left running are alive: only stopped ones are forced down.
    assert service(nova, host).forced_down is force
    if force:
        assert f"[ OK ] Shutting down OpenStack daemons on {host}" in out
        assert f"[ OK ] Forcing hypervisor {host} down in Nova" in out
    else:
        assert not any("Shutting down" in l or "Forcing" in l for l in out)


# ------------------------------------------------------------------ failures of one host

def test_unreachable_node_fails_only_that_host(cluster, nova):
    a, b, c = cluster.names[:3]
    cluster.fault(b, "down")
    result = tool(cluster, "--for-real", "disable", a, b, c)
    assert result.returncode == 1
    out = lines(result)
    assert any(l.startswith(f"[FAIL] Starting OpenStack daemons on {b}: ") for l in out)
    assert f"Failed on 1 host(s): {b}" in out
    for host in (a, c):
        assert f"[ OK ] Shutting down OpenStack daemons on {host}" in out
        assert service(nova, host).status == "disabled"


def test_unknown_host_is_an_error_for_that_host_only(cluster, nova):
    host = cluster.names[0]
    nova.services.disable_log_reason(service(nova, host).id, "test")
    result = tool(cluster, "--for-real", "enable", "nosuch.internal", host)
    assert result.returncode == 1
    out = lines(result)
    assert out[0] == "[FAIL] nosuch.internal: not a compute host known to Nova"
    assert f"[ OK ] Enabling hypervisor {host}" in out
    assert "Failed on 1 host(s): nosuch.internal" in out
    assert service(nova, host).status == "enabled"


def test_second_run_on_the_same_host_is_refused(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    stuck, = boot_on(cluster, nova, host, 1)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    first = subprocess.Popen([str(REPO / "bin" / TOOL), "--for-real", "--vm-timeout", "8", "disable",
                              host], env=cluster.env, stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: service(nova, host).status == "disabled", what="first run started")
        second = tool(cluster, "--for-real", "enable", host)
    finally:
        first.communicate(timeout=60)
    assert second.returncode == 1
    assert re.search(rf"\[FAIL\] {re.escape(host)}: another openstack-hlt-manage run \(pid {first.pid}\)",
                     second.stdout), second.stdout
    assert service(nova, host).status == "disabled"  # the second run did not enable it


# ------------------------------------------------------------------ --parallel

def test_parallel_disable_through_pdsh_with_one_authentication(cluster, nova):
    hosts = cluster.names[:3]
    start_compute(cluster, nova, hosts)
    ids = {h: boot_on(cluster, nova, h, 1) for h in hosts[:2]}
    clear_log(cluster)
    result = tool(cluster, "--for-real", "--parallel", "--vm-timeout", "60", "disable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert out[-2:] == ["", "All commands executed successfully."]
    # at the end, the hosts of the same result together (clush -b)
    results = out.index("Results:")
    assert out[results + 1:-2] == [f"  ok: {fold(hosts)}: disabled in Nova, forced down, no VM "
                                   "left, daemons stopped"]
    said = out[:results - 1]
    for line in said:  # every line whole, the host named once: no pdsh label before it
        assert line.startswith(("[ OK ]", "Waiting max")), line
        assert sum(line.count(host) for host in hosts) == 1, line
    for host in hosts:
        mine = [line for line in said if host in line]
        assert mine[0] == f"[ OK ] Disabling hypervisor {host}"
        assert f"[ OK ] Shutting down OpenStack daemons on {host}" in mine
        for vm in ids.get(host, []):
            assert f"[ OK ] Deleting VM {vm} on hypervisor {host}" in mine
        assert service(nova, host).status == "disabled" and servers_on(nova, host) == []
    assert len(authentications(requests(cluster))) == 1


def test_reason_says_who_when_and_why_and_enable_clears_it(cluster, nova):
    """--reason TEXT (issue 21): Nova's disabled_reason is "user@head TIME: TEXT", in a
    --parallel run too (every subworker gets the switch); enable clears it."""
    hosts = cluster.names[:2]
    start_compute(cluster, nova, hosts)
    why = "LHC fill 9001 at 03:00: trigger needs the farm; don't re-enable"
    result = tool(cluster, "--for-real", "--parallel", "--reason", why, "disable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    who = f"{getpass.getuser()}@{socket.gethostname()} "
    for host in hosts:
        reason = service(nova, host).disabled_reason
        assert reason.startswith(who) and reason.endswith(f": {why}"), reason
        when = reason[len(who):-len(why) - 2]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", when), reason
    shown = json.loads(tool(cluster, "-f", "json", "-c", "disabled_reason", "status",
                            hosts[0]).stdout)
    assert shown == [{"disabled_reason": service(nova, hosts[0]).disabled_reason}]
    assert tool(cluster, "--for-real", "enable", hosts[0]).returncode == 0
    assert service(nova, hosts[0]).disabled_reason is None


def test_a_subworker_does_its_host_without_the_cloud_libraries(cluster, nova):
    """A --parallel subworker makes its few Nova requests with the handed-over token through
    the standard library: keystoneauth1, requests and novaclient (about 0.3 s of CPU, once a
    host) are never loaded, and the host is disabled all the same."""
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    ids = boot_on(cluster, nova, host, 2)
    env = {**cluster.env, **Cloud(env=cluster.env).handoff_env()}
    for secret in SECRETS:
        env.pop(secret, None)
    done = subprocess.run([sys.executable, "-X", "importtime", str(REPO / "bin" / TOOL),
                           "--line-output", "--subworker", "--for-real", "--vm-timeout", "60",
                           "disable", host], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for vm in ids:
        assert f"[ OK ] Deleting VM {vm} on hypervisor {host}" in done.stdout
    *_, done_line, last = done.stdout.splitlines()
    assert done_line == f"[ OK ] Done on {host}"
    # Its last line is its outcome, for the parent: what it left the host in.
    assert Outcome.from_line(last, host) == Outcome(host, "ok", "", HostState(
        nova="disabled", forced_down=True, vms_left=0, daemons="stopped"))
    assert service(nova, host).status == "disabled" and servers_on(nova, host) == []
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "hltcloud" in imported  # -X importtime did report
    assert not imported & {"keystoneauth1", "requests", "urllib3", "novaclient"}, imported


def test_parallel_dry_run_changes_nothing_with_one_authentication(cluster, nova):
    hosts = cluster.names[:3]
    start_compute(cluster, nova, hosts[:1])
    vm, = boot_on(cluster, nova, hosts[0], 1)
    clear_log(cluster)
    result = tool(cluster, "--parallel", "disable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    # the host named once: the line names it, pdsh's label is left out
    assert f"[DRY ] Deleting VM {vm} on hypervisor {hosts[0]}: DELETE /servers/{vm}" in out, out
    assert out[-1] == "Dry run: nothing was changed (add --for-real to act)."
    for host in hosts:
        wanted = f"[DRY ] Disabling hypervisor {host}: PUT /os-services/{service(nova, host).id} "
        assert any(wanted in l for l in out), out
    log = requests(cluster)
    assert mutations(log) == [] and len(authentications(log)) == 1
    assert all(service(nova, h).status == "enabled" for h in hosts)
    assert [s.id for s in servers_on(nova, hosts[0])] == [vm]


def test_parallel_unreachable_and_unknown_hosts_in_one_summary(cluster, nova):
    a, b, c = cluster.names[:3]
    cluster.fault(b, "down")
    result = tool(cluster, "--for-real", "--parallel", "enable", a, b, c, "nosuch.internal")
    assert result.returncode == 1
    out = lines(result)
    assert out.count("All commands executed successfully.") == 0
    summary = [l for l in out if l.startswith("Failed on")]
    assert len(summary) == 1 and b in summary[0] and "nosuch.internal" in summary[0]
    for host in (a, c):
        assert cluster.service_running(host, COMPUTE)


# The tool as a --parallel parent starts it (worker_command: its own path), whose subworker
# for $LIAR_HOST does its host for real and then lies in its human lines, or about its
# result, as $LIAR says. The parent must take each host's result from its outcome line.
LIAR = """#!/usr/bin/env python3
import contextlib, io, os, sys
sys.path.insert(0, {lib!r})
from hltcloud.manage.cli import main

if "--subworker" not in sys.argv:
    sys.exit(main())
host, mode = sys.argv[-1], os.environ["LIAR"]
captured = io.StringIO()
with contextlib.redirect_stdout(captured):
    code = main()
lines = captured.getvalue().splitlines()
result = [line for line in lines if line.startswith("@hltcloud-outcome ")]
human = [line for line in lines if line not in result]
if host == os.environ["LIAR_HOST"]:
    code = 0
    if mode == "hides its failure":
        human = [line for line in human if not line.startswith("[FAIL]")]
        human.append(f"[ OK ] Done on {{host}}")
    elif mode == "invents a failure":
        human.append(f"[FAIL] {{host}}: everything is broken")
    elif mode == "speaks for another host":
        result = [line.replace(host, os.environ["OTHER"]) for line in result]
    elif mode == "dies without its result":
        human.append(f"[ OK ] Done on {{host}}")
        result, code = [], 3
print("\\n".join(human + result), flush=True)
sys.exit(code)
"""


@pytest.mark.parametrize("mode", ["hides its failure", "invents a failure",
                                  "speaks for another host", "dies without its result"])
def test_parallel_results_come_from_the_outcome_lines_not_the_human_ones(cluster, nova, tmp_path,
                                                                        mode):
    a, b = cluster.names[:2]
    liar, other = (b, a) if mode == "hides its failure" else (a, b)
    if mode == "hides its failure":
        cluster.fault(b, "down")  # its daemons cannot start: it fails for real
    wrapper = tmp_path / "bin" / TOOL
    wrapper.parent.mkdir()
    wrapper.write_text(LIAR.format(lib=str(REPO / "lib")))
    wrapper.chmod(0o755)
    failed, ok = tmp_path / "failed", tmp_path / "ok"
    result = subprocess.run(
        [str(wrapper), "--for-real", "--parallel", "--failed-hosts", str(failed), "--ok-hosts",
         str(ok), "enable", a, b], env={**cluster.env, "LIAR": mode, "LIAR_HOST": liar,
                                        "OTHER": other},
        capture_output=True, text=True, timeout=180)
    out = lines(result)
    bad = {"hides its failure": [b], "invents a failure": [],
           "speaks for another host": [a], "dies without its result": [a]}[mode]
    why = {"hides its failure": f"  {b}: left enabled in Nova, not forced down (Starting "
                                f"OpenStack daemons on {b}: ",
           "speaks for another host": f"  {a}: subworker's result refused: an outcome for "
                                      f"another host: {b}",
           "dies without its result": f"  {a}: subworker exited with code 3"}.get(mode)
    assert result.returncode == (1 if bad else 0), result.stdout + result.stderr
    assert listed(failed) == bad and listed(ok) == [h for h in (a, b) if h not in bad]
    if bad:
        assert f"Failed on 1 host(s): {bad[0]}" in out, out
        assert any(line.startswith(why) for line in out), "\n".join(out)
        assert out[-1].startswith("Re-run on the 1 failed host(s): ")
    else:
        assert out[-2:] == ["", "All commands executed successfully."]
    assert not any(MARK in line for line in out)  # the outcome lines are not echoed
    lie = {"hides its failure": f"[ OK ] Done on {b}", "invents a failure":
           f"[FAIL] {a}: everything is broken"}.get(mode)
    if lie:  # still shown as its subworker printed it (it names its host), not believed
        assert lie in out, out
    assert service(nova, a).status == "enabled"


def listed(path):
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


# ------------------------------------------------------------------ bad input, bad credentials

@pytest.mark.parametrize("args", [
    ("disable", "cn[01-"),
    ("--for-real", "disable", "cn[03-01].internal"),
    ("--ssh-config", "relative/ssh_config", "--for-real", "disable", "cn01.internal"),
    ("--for-real", "disable", "@/nonexistent/list.txt"),
    ("--for-real", "disable", "bad;name"),
    ("--vm-timeout", "-3", "disable", "cn01.internal"),
])
def test_bad_input_one_line_exit_2_nothing_sent(cluster, args):
    clear_log(cluster)
    result = tool(cluster, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("openstack-hlt-manage: ")
    assert requests(cluster) == []


def test_bad_credentials_exit_3_nothing_done(cluster, nova):
    env = dict(cluster.env, OS_PASSWORD="wrong-password")
    result = subprocess.run([str(REPO / "bin" / TOOL), "--for-real", "disable", cluster.names[0]],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.strip() == ("openstack-hlt-manage: authentication failed: "
                                     "check OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME")
    assert service(nova, cluster.names[0]).status == "enabled"


# ------------------------------------------------------------------ Ctrl-C

def _tool_processes(cluster):
    """Pids of openstack-hlt-manage processes (and their pdsh) working for this cluster."""
    def inspect(proc):
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        environ = (proc / "environ").read_bytes()
        if any(TOOL.encode() in word or word == b"pdsh" for word in cmdline) and \
                f"HLTCLOUD_CONFIG={cluster.config_path}".encode() in environ:
            return int(proc.name)
        return None
    return processes(inspect)


@pytest.mark.parametrize("parallel", [False, True])
def test_ctrl_c_stops_reports_and_leaves_no_process(cluster, nova, parallel):
    a, b = cluster.names[:2]
    start_compute(cluster, nova, [a])
    stuck, = boot_on(cluster, nova, a, 1)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    args = ["--for-real", "--vm-timeout", "120"] + (["--parallel", "--fanout", "1"] if parallel else [])
    code, out = interrupt_while_waiting(cluster, [*args, "disable", a, b])
    assert code != 0
    summary = [l for l in out if l.startswith("Failed on")]
    assert summary == [f"Failed on 2 host(s): {fold([a, b])}"], out
    assert any(f"{a}: interrupted" in l for l in out)
    if not parallel:
        assert any(l.endswith(f"{b}: not started (interrupted)") for l in out), out
        assert service(nova, b).status == "enabled"  # nothing was started on the second host
    else:  # a --parallel parent disables every host first (takeback.py), and says so
        assert f"[WARN] {b}: left disabled in Nova, VMs not waited for (disable again " \
               f"finishes the take-back; enable gives them back)" in out, out
        assert any(f"{b}: left disabled in Nova" in l and "interrupted before its own steps"
                   in l for l in out if not l.startswith("[WARN]")), out
        assert service(nova, b).status == "disabled"
    wait_for(lambda: _tool_processes(cluster) == [], timeout=15, what="no process left")


def test_countdown_is_rewritten_in_place_on_a_terminal(cluster, nova):
    import os
    import pty
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    stuck, = boot_on(cluster, nova, host, 1)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")  # a few seconds of countdown to see
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(REPO / "bin" / TOOL), "--no-colors", "--for-real", "--vm-timeout", "3",
                             "disable", host], env=cluster.env, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == 1
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    prefix = f"Waiting max 3 s for VMs to be deleted on {host}..."
    rewrites = [part for part in text.split("\r") if part.startswith(prefix)]
    assert len(rewrites) >= 2, text  # the same line, rewritten as the seconds go down
    assert re.match(re.escape(prefix) + r"1 running \(\d s left\)\x1b\[K", rewrites[0])
    assert re.match(re.escape(prefix) + r"1 running \(\d s left\)\.\.\.1 running after 3 s: timeout!",
                    rewrites[-1]), rewrites[-1]


def test_unreachable_cloud_exit_3_one_line(cluster):
    env = dict(cluster.env, OS_AUTH_URL="http://127.0.0.1:1/identity/v3")  # nothing listens there
    result = subprocess.run([str(REPO / "bin" / TOOL), "--nvms", "status"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stderr.startswith("openstack-hlt-manage: cannot reach Keystone at http://127.0.0.1:1/")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
