"""disable --drain SECONDS on the simulated cluster: disable first, let the VMs end on their
own (the simulator ends a VM as a finished grid job does: POST /sim/servers/<id>/end), delete
what remains at the deadline, then shut the host down as a plain disable does.

The assertions look at the request log (which DELETEs the tool sent), Nova's view through
novaclient, the node's daemons and the printed lines.
"""
from helpers import (COMPUTE, REPO, boot_on, clear_log, interrupt, lines, mutations, requests,
                     service, servers_on, start_compute, tool)

TOOL = str(REPO / "bin" / "openstack-hlt-manage")


def deletes(cluster):
    """The ids of the VMs the tools asked Nova to delete."""
    return sorted(r["path"].rstrip("/").rsplit("/", 1)[-1] for r in requests(cluster)
                  if r["method"] == "DELETE" and "/servers/" in r["path"])


def end_job(cluster, vm, after):
    cluster.sim("POST", f"/sim/servers/{vm}/end", {"after": after})


def taken_back(cluster, nova, host):
    """Disabled, forced down, no VM, its compute daemon stopped (LSB status 3)."""
    svc = service(nova, host)
    return (svc.status == "disabled" and svc.forced_down and servers_on(nova, host) == []
            and cluster.node_service(host, COMPUTE, "status").returncode == 3)


def test_drain_waits_for_the_vms_to_end_on_their_own_and_deletes_none(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    vms = boot_on(cluster, nova, host, 2)
    for vm in vms:
        end_job(cluster, vm, 1.5)
    clear_log(cluster)
    result = tool(cluster, "--for-real", "--drain", "120", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert out[0] == f"[ OK ] Disabling hypervisor {host}"  # first: nothing new lands there
    drained = [l for l in out if l.startswith("Draining 1 host(s), max 120 s...")]
    assert drained and drained[-1].endswith("s!") and "all gone in" in drained[-1], out
    assert deletes(cluster) == []  # they ended on their own: the tool deleted none
    assert taken_back(cluster, nova, host)
    assert out[-1] == "All commands executed successfully."


def test_drain_deletes_what_remains_at_the_deadline(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    ends, stays = boot_on(cluster, nova, host, 2)
    end_job(cluster, ends, 0.5)
    clear_log(cluster)
    result = tool(cluster, "--for-real", "--drain", "3", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert ("Draining 1 host(s), max 3 s...1 VM(s) left on 1 host(s) after 3 s: "
            "deleting them") in out, out
    assert deletes(cluster) == [stays]  # only the one still there at the deadline
    assert f"[ OK ] Deleting VM {stays} on hypervisor {host}" in out
    assert taken_back(cluster, nova, host)


def test_parallel_drain_has_one_deadline_for_every_host(cluster, nova):
    hosts = cluster.names[:2]
    start_compute(cluster, nova, hosts)
    vms = {host: boot_on(cluster, nova, host, 1)[0] for host in hosts}
    end_job(cluster, vms[hosts[0]], 0.5)  # the other's job runs past the deadline
    clear_log(cluster)
    result = tool(cluster, "--for-real", "--parallel", "--drain", "4", "disable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    drain = [l for l in out if l.startswith("Draining")]  # one drain, in the parent
    assert drain[0].startswith("Draining 2 host(s), max 4 s...2 VM(s) left on 2 host(s) (")
    assert drain[-1] == ("Draining 2 host(s), max 4 s...1 VM(s) left on 1 host(s) after 4 s: "
                         "deleting them"), out
    assert deletes(cluster) == [vms[hosts[1]]]
    assert all(taken_back(cluster, nova, host) for host in hosts)


def test_drain_dry_run_prints_the_plan_and_changes_nothing(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    vm, = boot_on(cluster, nova, host, 1)
    clear_log(cluster)
    result = tool(cluster, "--drain", "600", "--reason", "LHC fill 9999", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    plan = [l for l in out if l.startswith("[DRY ]")]
    assert plan[0].startswith(f"[DRY ] Disabling hypervisor {host}: PUT /os-services/")
    assert plan[1] == ("[DRY ] Draining 1 host(s): waiting max 600 s for their 1 VM(s) to end "
                       "on their own, then deleting what remains")
    assert f"[DRY ] Deleting VM {vm} on hypervisor {host}: DELETE /servers/{vm}" in plan
    assert sum(l.startswith("[DRY ] Disabling") for l in out) == 1  # said once
    assert out[-1] == "Dry run: nothing was changed (add --for-real to act)."
    assert mutations(requests(cluster)) == []
    assert service(nova, host).status == "enabled"


def test_ctrl_c_during_a_drain_leaves_the_host_disabled_and_says_so(cluster, nova):
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    vm, = boot_on(cluster, nova, host, 1)
    run = interrupt([TOOL, "--for-real", "--drain", "600", "disable", host], cluster.env,
                    at_line="Draining", settle=0.3, merged=True)
    assert run.status == 130, run.out
    assert (f"[WARN] Interrupted: {host} left disabled in Nova, with the VMs still there "
            f"(disable again finishes the take-back; enable gives them back)") in run.lines
    failed = [l for l in run.lines if l.startswith("Failed on")]
    assert failed == [f"Failed on 1 host(s): {host}"], run.out
    assert any(l.startswith(f"  {host}: left disabled in Nova") for l in run.lines), run.out
    assert service(nova, host).status == "disabled"
    assert [s.id for s in servers_on(nova, host)] == [vm]  # not deleted
    assert cluster.node_service(host, COMPUTE, "status").returncode == 0  # still running
