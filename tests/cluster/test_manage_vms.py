"""openstack-hlt-manage runvms, listwns and vmstats on the simulated cluster.

Expected counts are derived here from Placement and the quota (not from constants), and the
cloud's state after the run is checked with novaclient and the simulator's request log.
"""
import json

import pytest
from helpers import (FLAVOR, boot_on, boots, clear_log, expected_fit, lines, mutations,
                     requests, start_compute, statuses, tool)

pytestmark = pytest.mark.usefixtures("worker_image")  # conftest.py: runvms' image in Glance


def expected_quota_room(nova):
    flavor = nova.flavors.find(name=FLAVOR)
    lim = {item.name: item.value for item in nova.limits.get().absolute}
    room = []
    for maximum, used, per in (("maxTotalInstances", "totalInstancesUsed", 1),
                               ("maxTotalCores", "totalCoresUsed", flavor.vcpus),
                               ("maxTotalRAMSize", "totalRAMUsed", flavor.ram)):
        if lim[maximum] >= 0:
            room.append((lim[maximum] - lim[used]) // per)
    return min(room) if room else 10 ** 9


def test_runvms_dry_run_shows_the_one_request_and_boots_nothing(cluster, nova):
    start_compute(cluster, nova, cluster.names[:2])
    want = min(expected_fit(cluster, nova), expected_quota_room(nova))
    clear_log(cluster)
    result = tool(cluster, "runvms")
    assert result.returncode == 0, result.stdout + result.stderr
    dry = [l for l in lines(result) if l.startswith("[DRY ]")]
    assert len(dry) == 1 and dry[0].startswith(f"[DRY ] Booting {want} VM(s) named wn-grid: POST /servers")
    assert f'"min_count": {want}, "max_count": {want}' in dry[0]
    assert mutations(requests(cluster)) == []
    assert statuses(nova) == []


def test_runvms_boots_what_the_quota_allows_in_one_request(cluster, nova):
    start_compute(cluster, nova, cluster.names[:2])
    fit, quota = expected_fit(cluster, nova), expected_quota_room(nova)
    assert quota < fit  # default quota (cores) is the tighter bound with two hosts up
    clear_log(cluster)
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "runvms")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Requested {quota} VM(s), {quota} ACTIVE" in lines(result)
    assert len(boots(requests(cluster))) == 1
    assert statuses(nova) == ["ACTIVE"] * quota
    again = tool(cluster, "--for-real", "--vm-timeout", "60", "runvms")
    assert again.returncode == 0
    assert any(l.startswith("[ OK ] Nothing to boot") for l in lines(again))
    assert statuses(nova) == ["ACTIVE"] * quota


def test_runvms_fills_the_capacity_when_the_quota_is_large(cluster, nova):
    start_compute(cluster, nova, cluster.names[:2])
    cluster.sim("POST", "/sim/quota", {"instances": 1000, "cores": 1000, "ram": 10 ** 7})
    boot_on(cluster, nova, cluster.names[0], 1, name="other")  # usage counts too
    fit = expected_fit(cluster, nova)
    clear_log(cluster)
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "runvms")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Requested {fit} VM(s), {fit} ACTIVE" in lines(result)
    assert len(boots(requests(cluster))) == 1
    assert statuses(nova) == ["ACTIVE"] * (fit + 1)
    assert expected_fit(cluster, nova) == 0


def test_runvms_count_is_an_upper_bound(cluster, nova):
    start_compute(cluster, nova, cluster.names[:1])
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "--count", "2", "runvms")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Requested 2 VM(s), 2 ACTIVE" in lines(result)
    assert statuses(nova) == ["ACTIVE", "ACTIVE"]


@pytest.mark.parametrize("switch, value, message", [
    ("--image", "no-such-image", "image not found: no-such-image"),
    ("--flavor", "no-such-flavor", "flavor not found: no-such-flavor"),
])
def test_runvms_unknown_image_or_flavor_is_bad_input(cluster, nova, switch, value, message):
    """Bad input (issue 10): exit 2, one line, nothing requested that changes the cloud."""
    start_compute(cluster, nova, cluster.names[:1])
    clear_log(cluster)
    result = tool(cluster, "--for-real", switch, value, "runvms")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"openstack-hlt-manage: runvms: {message}"]
    assert mutations(requests(cluster)) == []


def test_listwns_lists_only_workers_in_host_order(cluster, nova):
    a, b = cluster.names[:2]
    start_compute(cluster, nova, [a, b])
    on_b = boot_on(cluster, nova, b, 2)
    on_a = boot_on(cluster, nova, a, 1)
    boot_on(cluster, nova, a, 1, name="not-a-worker")
    result = tool(cluster, "listwns")
    assert result.returncode == 0, result.stderr
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines(result)
            if l.startswith("| ") and not l.startswith("| ID")]
    assert [r[0] for r in rows[:1]] == on_a and sorted(r[0] for r in rows[1:]) == sorted(on_b)
    assert [r[3] for r in rows] == [a, b, b] and {r[2] for r in rows} == {"ACTIVE"}
    assert all(r[4].count(".") == 3 for r in rows)  # one IPv4 address each
    data = json.loads(tool(cluster, "--json", "listwns").stdout)
    assert [d["id"] for d in data][:1] == on_a and len(data) == 3
    assert [d["hypervisor"] for d in data] == [a, b, b]  # the key status uses too
    assert all(isinstance(d["age"], int) and 0 <= d["age"] < 600 for d in data)  # seconds
    value = tool(cluster, "-f", "value", "-c", "hypervisor", "-c", "ID", "listwns")
    assert value.stdout.splitlines() == [f"{d['hypervisor']} {d['id']}" for d in data]
    hosts = tool(cluster, "-f", "csv", "vmstats").stdout.splitlines()
    assert hosts[0] == '"Host","VMs"' and f'"{b}",2' in hosts and f'"{a}",2' in hosts


def test_listwns_and_vmstats_take_short_host_names_and_exclude_them(cluster, nova):
    """As status does: cn01 means the one compute host cn01.DOMAIN; -x takes short names
    too; a name Nova does not know is one [FAIL] line and exit 1."""
    a, b = cluster.names[:2]
    start_compute(cluster, nova, [a, b])
    on_a = boot_on(cluster, nova, a, 1)
    boot_on(cluster, nova, b, 1)
    short_a, short_b = a.split(".")[0], b.split(".")[0]
    listed = tool(cluster, "-f", "value", "-c", "id", "listwns", short_a)
    assert listed.returncode == 0 and listed.stdout.split() == on_a, listed.stdout + listed.stderr
    left = tool(cluster, "-f", "value", "-c", "hypervisor", "listwns", "-x", short_b)
    assert b not in left.stdout.split() and a in left.stdout.split(), left.stdout
    counted = json.loads(tool(cluster, "--json", "vmstats", short_b).stdout)
    assert counted["by_host"] == {b: 1} and counted["capacity"]["hypervisors"] == 1
    dry = tool(cluster, "disable", a, b, "-x", short_b)  # a full name left out by its short one
    assert dry.returncode == 0 and f"hypervisor {a}" in dry.stdout, dry.stdout + dry.stderr
    assert b not in dry.stdout
    unknown = tool(cluster, "listwns", "nosuchnode")
    assert unknown.returncode == 1
    assert "[FAIL] nosuchnode: not a compute host known to Nova" in unknown.stdout


def test_vmstats_counts_and_capacity(cluster, nova):
    a, b = cluster.names[:2]
    start_compute(cluster, nova, [a, b])
    boot_on(cluster, nova, a, 2)
    boot_on(cluster, nova, b, 1, name="other")
    result = tool(cluster, "--json", "vmstats")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"] == 3 and data["by_status"] == {"ACTIVE": 3}
    assert data["by_host"] == {a: 2, b: 1}
    cap = data["capacity"]
    assert cap["hypervisors"] == len([s for s in nova.services.list(binary="nova-compute")
                                      if s.status == "enabled" and s.state == "up"])
    assert cap["total"] == expected_fit(cluster, nova, empty=True)
    assert cap["free"] == expected_fit(cluster, nova)
    assert cap["used"] == cap["total"] - cap["free"]
    text = tool(cluster, "vmstats")
    assert text.returncode == 0
    assert (f"Capacity in VMs of flavor {FLAVOR} on {cap['hypervisors']} enabled, up hypervisor(s): {cap['total']} total, "
            f"{cap['used']} used, {cap['free']} free") in lines(text)


def test_failed_request_leaves_no_error_vm_and_a_fresh_count_fits(cluster, nova, monkeypatch, capsys):
    """The cloud changes between the count and the boot (a host disabled meanwhile): Nova puts
    the whole request in ERROR; runvms deletes those VMs and its fresh count boots.

    Driven in-process to place the change exactly between the two steps of runvms; the cloud
    is the real simulator."""
    from hltcloud.cloud import capacity
    from hltcloud.manage import options as manage_cli
    from hltcloud.manage import runvms
    from hltcloud.config import load
    from hltcloud.manage.context import Context
    start_compute(cluster, nova, [])  # no node host up: only the two virtual hosts below
    hosts = ["va.virtual", "vb.virtual"]
    cluster.sim("POST", "/sim/hosts", {"names": hosts, "virtual": True})
    cluster.sim("POST", "/sim/quota", {"instances": 1000, "cores": 1000, "ram": 10 ** 7})
    for key, value in cluster.env.items():
        if key.startswith(("OS_", "HLTCLOUD_")):
            monkeypatch.setenv(key, value)
    ctx = Context(manage_cli.parse(["--for-real", "--vm-timeout", "30", "runvms"]),
                  load(cluster.config_path))
    values = runvms.params(ctx)
    flavor = runvms.find_flavor(ctx.nova, values["flavor"])
    image = runvms.find_image(ctx.cloud, values["image"])
    count, _ = capacity.room_for(ctx, flavor)
    assert count == expected_fit(cluster, nova) > 0
    nova.services.disable_log_reason([s for s in nova.services.list(binary="nova-compute")
                                      if s.host == hosts[1]][0].id, "test: the cloud changed")
    outcome = runvms._boot_and_wait(ctx, values, flavor, image, None, count)
    assert not outcome.ok and outcome.retry and outcome.active == 0
    assert f"{count} of {count} VM(s) in ERROR" in outcome.reason
    assert statuses(nova) == []  # the ERROR VMs of the run are gone
    out = capsys.readouterr().out
    assert out.count("(ERROR) of this run") == count
    fresh, _ = capacity.room_for(ctx, flavor)
    assert fresh == expected_fit(cluster, nova) < count
    assert runvms._boot_and_wait(ctx, values, flavor, image, None, fresh).ok
    assert statuses(nova) == ["ACTIVE"] * fresh
