"""openstack-hlt-manage reconcile on the simulated cluster (issue 21, items 4 and 5): each
half-way state made by hand or by a fault, the dry run's table and exit status, --for-real
bringing every host to its Nova flag's state, a second run finding nothing, an unreachable
node reported and left alone, --parallel, and the re-run line of a failed disable.

Everything goes through bin/openstack-hlt-manage; the assertions look at the cloud
(novaclient), the nodes (their daemons' pid files), exit codes and printed lines.
"""
import json
import re
import time

from helpers import SERVICES, boot_on, servers_on, service, tool

DRY_END = "Dry run: nothing was changed (add --for-real to act)."


def rows(text):
    """{host: (found, would do)} of reconcile's table."""
    found = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] != "Host":
            found[cells[0]] = (cells[1], cells[2])
    return found


def running_everywhere(cluster, hosts):
    """HOSTS enabled with every daemon running, as a good enable leaves them."""
    result = tool(cluster, "--for-real", "enable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr


def daemons(cluster, host):
    return {name for name in SERVICES if cluster.service_running(host, name)}


def reconcile(cluster, *args):
    return tool(cluster, *args, "reconcile")


def assert_consistent(cluster, hosts, *args):
    """A run now finds nothing on HOSTS: every row consistent, exit 0."""
    again = tool(cluster, *args, "reconcile", *hosts)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(rows(again.stdout).values()) == {("consistent", "nothing")}, again.stdout
    assert again.stdout.splitlines()[-1] == DRY_END


def test_disabled_with_daemons_running_and_not_forced_down(cluster, nova):
    hosts = cluster.names[:3]
    running_everywhere(cluster, hosts)
    first = hosts[0]
    nova.services.disable_log_reason(service(nova, first).id, "by hand: disk check")
    result = tool(cluster, "reconcile", *hosts)
    assert result.returncode == 1, result.stdout + result.stderr
    table = rows(result.stdout)
    assert table[first] == (f"disabled, but daemons running: all {len(SERVICES)}; "
                            f"disabled, but not forced down",
                            "disable: stop the daemons, force down")
    assert table[hosts[1]] == table[hosts[2]] == ("consistent", "nothing")
    assert result.stdout.splitlines()[-1] == DRY_END
    assert daemons(cluster, first) == set(SERVICES)  # the dry run changed nothing

    done = tool(cluster, "--for-real", "reconcile", *hosts)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[ OK ] Shutting down OpenStack daemons on {first}" in done.stdout
    assert done.stdout.splitlines()[-1] == "All commands executed successfully."
    svc = service(nova, first)
    assert (svc.status, svc.forced_down) == ("disabled", True)
    assert svc.disabled_reason == "by hand: disk check"  # who disabled it and why: kept
    assert daemons(cluster, first) == set()
    assert daemons(cluster, hosts[1]) == set(SERVICES)  # the consistent hosts: untouched
    assert_consistent(cluster, hosts)
    csv = tool(cluster, "-f", "csv", "-c", "host", "-c", "Consistent", "reconcile", *hosts)
    assert csv.returncode == 0 and csv.stdout.splitlines() == [
        '"Host","Consistent"', *(f'"{host}","yes"' for host in hosts)]
    bad = tool(cluster, "-c", "nosuch", "reconcile")
    assert bad.returncode == 2 and "no column 'nosuch'" in bad.stderr


def test_disable_of_a_host_already_disabled_keeps_its_reason(cluster, nova):
    """reconcile hands a disabled host to disable: who disabled it and why must stay (a new
    --reason replaces it)."""
    host = cluster.names[0]
    nova.services.disable_log_reason(service(nova, host).id, "by hand: disk check")
    done = tool(cluster, "--for-real", "disable", host)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[ OK ] Disabling hypervisor {host}" not in done.stdout
    assert service(nova, host).disabled_reason == "by hand: disk check"
    again = tool(cluster, "--for-real", "--reason", "fill", "disable", host)
    assert again.returncode == 0 and service(nova, host).disabled_reason.endswith(": fill")


def test_enabled_with_a_dead_daemon_or_forced_down_fixed_in_parallel(cluster, nova):
    hosts = cluster.names[:3]
    running_everywhere(cluster, hosts)
    dead, forced = hosts[0], hosts[1]
    assert cluster.node_service(dead, "libvirtd", "stop").returncode == 0
    nova.services.force_down(service(nova, forced).id, True)
    result = tool(cluster, "-x", hosts[2], "reconcile")  # every host Nova lists, but one
    assert result.returncode == 1, result.stdout + result.stderr
    table = rows(result.stdout)
    assert set(table) == set(cluster.names) - {hosts[2]}
    assert table[dead] == ("enabled, but daemons not running: libvirtd",
                           "enable: start the daemons")
    assert table[forced] == ("enabled, but forced down", "enable: start the daemons, clear forced down")
    for idle in cluster.names[3:]:  # enabled, never started
        assert table[idle][0] == f"enabled, but daemons not running: all {len(SERVICES)}"

    done = tool(cluster, "--for-real", "--parallel", "reconcile", *hosts)
    assert done.returncode == 0, done.stdout + done.stderr
    assert daemons(cluster, dead) == set(SERVICES)
    svc = service(nova, forced)
    assert (svc.status, svc.forced_down) == ("enabled", False)
    assert_consistent(cluster, hosts, "--parallel")


def test_error_vm_and_vm_stuck_deleting_on_an_enabled_host(cluster, nova):
    host = cluster.names[0]
    running_everywhere(cluster, [host])
    broken, stuck = boot_on(cluster, nova, host, 2)
    nova.servers.reset_state(broken, "error")  # as a spawn that failed on the node
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    nova.servers.delete(stuck)  # its delete never reaches the compute
    time.sleep(2.5)  # deleting for longer than --vm-timeout 2
    result = tool(cluster, "--vm-timeout", "2", "-f", "json", "reconcile", host)
    assert result.returncode == 1, result.stdout + result.stderr
    [record] = json.loads(result.stdout)
    assert record["found"] == ["1 VM in ERROR", "1 VM deleting for more than 2 s"]
    assert record["would_do"] == ["reset 1 VM stuck deleting", "delete 2 VMs"]
    assert (record["nvms"], record["consistent"], record["reachable"]) == (2, False, True)
    assert record["daemons"] == dict.fromkeys(SERVICES, "running")
    assert result.stderr.splitlines()[-1] == DRY_END  # -f json: the messages on stderr

    # The same --vm-timeout: the stuck VM is stuck for this run too (its deletes take well
    # under 2 s on the simulator).
    done = tool(cluster, "--for-real", "--vm-timeout", "2", "reconcile", host)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[ OK ] Resetting VM {stuck} stuck deleting on hypervisor {host}" in done.stdout
    assert servers_on(nova, host) == []
    assert_consistent(cluster, [host])


def test_failed_disable_left_half_way_then_reconciled(cluster, nova):
    """The issue's night: cn01's link down during a disable leaves it disabled in Nova with
    its VM. The re-run line is reconcile; reconcile reports the node unreachable and leaves it
    alone; once the link is back it finishes the disable."""
    host, other = cluster.names[:2]
    running_everywhere(cluster, [host, other])
    [vm] = boot_on(cluster, nova, host, 1)
    cluster.fault(host, "down")
    failed = tool(cluster, "--for-real", "--vm-timeout", "8", "disable", host, other, "cn99.nowhere")
    assert failed.returncode == 1
    out = failed.stdout
    assert f"{host}: left disabled in Nova, not forced down" in out, out
    again = [line for line in out.splitlines() if line.startswith("Re-run on the")]
    assert len(again) == 2, out
    assert re.fullmatch(r"Re-run on the 1 failed host\(s\): "
                        r"\S*openstack-hlt-manage --for-real --vm-timeout 8 reconcile @\S+",
                        again[0]), again
    listed = again[0].rsplit("@", 1)[1]
    assert open(listed).read().splitlines()[1:] == [host]
    assert re.fullmatch(r"Re-run on the 1 failed host\(s\): \S*openstack-hlt-manage --for-real "
                        r"--vm-timeout 8 disable @\S+", again[1]), again

    down = tool(cluster, "reconcile", host, other)
    assert down.returncode == 1
    found, would = rows(down.stdout)[host]
    assert found.startswith("node unreachable (") and "daemons unknown" in found, found
    assert "disabled, but 1 VM left" in found and would == "nothing: the node cannot be asked"
    real = tool(cluster, "--for-real", "reconcile", host, other)
    assert real.returncode == 1
    assert f"{host}: node unreachable: not acted upon" in real.stdout
    assert [s.id for s in servers_on(nova, host)] == [vm]  # not acted upon
    assert rows(real.stdout)[other] == ("consistent", "nothing")

    cluster.fault(host, "up")
    back = tool(cluster, "reconcile", host)
    assert rows(back.stdout)[host] == (  # the first run's daemons still run
        f"disabled, but daemons running: all {len(SERVICES)}; disabled, but 1 VM left; "
        f"disabled, but not forced down",
        "disable: delete 1 VM, stop the daemons, force down")
    done = tool(cluster, "--for-real", "--vm-timeout", "30", "reconcile", host)
    assert done.returncode == 0, done.stdout + done.stderr
    assert servers_on(nova, host) == [] and daemons(cluster, host) == set()
    assert service(nova, host).forced_down
    assert_consistent(cluster, [host])


def test_a_status_command_that_cannot_say_is_unknown(cluster, nova, tmp_path):
    """A daemon whose status command ends with neither 0 nor 1-3 is not guessed: unknown."""
    host = cluster.names[0]
    running_everywhere(cluster, [host])
    conf = tmp_path / "hltcloud.conf"
    text = open(cluster.env["HLTCLOUD_CONFIG"]).read()
    status = re.search(r"^status = .*$", text, re.M).group(0)
    conf.write_text(text.replace(status, "status = sh -c 'exit 4' {service}"))
    result = tool(cluster, "--config", str(conf), "-f", "json", "reconcile", host)
    assert result.returncode == 1
    [record] = json.loads(result.stdout)
    assert record["daemons"] == dict.fromkeys(SERVICES, "unknown")
    assert record["found"] == [f"enabled, daemons of unknown state: all {len(SERVICES)}"]


def test_reconcile_of_an_unknown_host_and_bad_switches(cluster):
    result = tool(cluster, "reconcile", "cn99.nowhere")
    assert result.returncode == 1
    assert "cn99.nowhere: not a compute host known to Nova" in result.stdout
    bad = tool(cluster, "--reason", "x", "reconcile")
    assert bad.returncode == 2 and "--reason is for disable, not reconcile" in bad.stderr
