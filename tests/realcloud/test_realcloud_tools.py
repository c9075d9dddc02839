"""The real tools against the real OpenStack: the scenarios of the simulator's tests
(tests/cluster/test_manage_cluster.py, tests/cluster/test_prefill_cluster.py), with the same observable
results, where the real Nova agrees (differences: tests/realcloud/README.md).

Each test starts from `rcloud`: every node's real nova-compute running, up and enabled, no
servers, default quotas. The tools run as bin/<tool> with the cloud's OS_* credentials and a
site config whose node services are tests/realcloud/node-service.
"""
import datetime
import functools
import hashlib
import json
import re
import subprocess
import time

import helpers
import pytest
from helpers import COMPUTE, FLAVOR, MUTATING, SERVICES, lines, service, servers_on, table_rows
from realcloud import SERVICE_DOWN_TIME  # as Nova is configured here

MANAGE = "openstack-hlt-manage"
PREFILL = "openstack-prefill-cache"
WAIT = 60  # seconds: a real Nova is slower than the simulator


# ------------------------------------------------------------------ helpers (the shared ones: tests/helpers.py)

def tool(rc, name, *args, timeout=300):
    """Run bin/NAME; skip (saying why) only while it is still the usage stub."""
    result = rc.run_tool(name, *args, timeout=timeout)
    if (result.returncode == 2 and "usage:" in result.stderr
            and "not implemented" in result.stderr):
        pytest.skip(f"{name} is still a usage stub (exit 2: not implemented yet)")
    return result


wait_for = functools.partial(helpers.wait_for, timeout=WAIT)
stop_compute = functools.partial(helpers.stop_compute, timeout=WAIT)


def boot_on(rc, nova, host, count, name="wn-grid"):
    """COUNT ACTIVE VMs on HOST from the cloud's image: their ids. No Neutron here:
    nics='none' (microversion >= 2.37), so the VMs have no address."""
    return helpers.boot_on(rc, nova, host, count, name, image=rc.image_id, nics="none",
                           timeout=WAIT)


def mutations_during(rc, action):
    """Run ACTION; the mutating requests Nova, Placement and Glance answered meanwhile."""
    apps = ("nova", "placement", "glance", "network")
    before = {app: len(rc.access_log(app)) for app in apps}
    result = action()
    time.sleep(0.2)  # the access log line is written as the answer goes out
    sent = []
    for app in apps:
        for line in rc.access_log(app)[before[app]:]:
            _, method, path, status = line.split()
            if method in MUTATING:
                sent.append(f"{app} {method} {path} {status}")
    return result, sent


@pytest.fixture
def nova(rcloud):
    return rcloud.nova()


# ------------------------------------------------------------------ status

def test_status_enabled_alive_and_vms(rcloud, nova):
    first, second, third = rcloud.names[:3]
    ids = boot_on(rcloud, nova, first, 2)
    nova.services.disable_log_reason(service(nova, third).id, "test")
    stop_compute(rcloud, nova, third)
    result = tool(rcloud, MANAGE, "--nvms", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert [r[0] for r in rows] == rcloud.names
    by_host = {r[0]: r for r in rows}
    assert by_host[first][1:4] == ["yes", "alive", "2"]
    # VMs without an address (no Neutron) are shown by id
    assert sorted(by_host[first][4].split()) == sorted(ids)
    assert by_host[second][1:4] == ["yes", "alive", "0"]
    assert by_host[third][1:3] == ["no", "dead"]


def test_status_json_and_an_unknown_host(rcloud, nova):
    first = rcloud.names[0]
    result = tool(rcloud, MANAGE, "--json", "--nvms", "status", first, "nosuch.internal")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    updated = data[0].pop("updated_at")  # every key, whatever the switches (man page, JSON)
    assert data == [{"hypervisor": first, "enabled": True, "alive": True, "forced_down": False,
                     "disabled_reason": None, "nvms": 0, "vms": []}]
    assert isinstance(updated, str) and updated[:4].isdigit()  # ISO 8601, as Nova gives it
    assert "[FAIL] nosuch.internal: not a compute host known to Nova" in result.stderr


# ------------------------------------------------------------------ dry run

def test_dry_run_sends_no_mutating_request(rcloud, nova):
    host = rcloud.names[0]
    ids = boot_on(rcloud, nova, host, 2)
    other = rcloud.names[1]
    nova.services.disable_log_reason(service(nova, other).id, "test")
    runs = [("disable", host), ("enable", other), ("runvms",)]
    for args in runs:
        result, sent = mutations_during(rcloud, lambda: tool(rcloud, MANAGE, *args))
        assert result.returncode == 0, result.stdout + result.stderr
        assert any(l.startswith("[DRY ]") for l in lines(result)), result.stdout
        assert sent == [], f"dry {args[0]} sent {sent}"
    out = lines(tool(rcloud, MANAGE, "disable", host))
    for vm in ids:
        assert f"[DRY ] Deleting VM {vm} on hypervisor {host}: DELETE /servers/{vm}" in out
    assert service(nova, host).status == "enabled" and len(servers_on(nova, host)) == 2
    assert service(nova, other).status == "disabled"
    assert not rcloud.service_running(host, "libvirtd")  # "start" was only shown


# ------------------------------------------------------------------ enable / disable for real

def test_enable_for_real_enables_and_starts_daemons(rcloud, nova):
    hosts = rcloud.names[:2]
    for host in hosts:
        nova.services.disable_log_reason(service(nova, host).id, "test")
        stop_compute(rcloud, nova, host)
    result = tool(rcloud, MANAGE, "--for-real", "enable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result) == [
        f"[ OK ] Enabling hypervisor {hosts[0]}", f"[ OK ] Starting OpenStack daemons on {hosts[0]}",
        f"[ OK ] Enabling hypervisor {hosts[1]}", f"[ OK ] Starting OpenStack daemons on {hosts[1]}",
        "", "All commands executed successfully."]
    for host in hosts:
        assert service(nova, host).status == "enabled"
        assert all(rcloud.service_running(host, s) for s in SERVICES)
    # the real nova-compute the tool started reports to Nova again
    wait_for(lambda: all(service(nova, h).state == "up" for h in hosts), what="computes up")


def test_disable_for_real_deletes_vms_then_stops_daemons(rcloud, nova):
    host, other = rcloud.names[0], rcloud.names[1]
    ids = boot_on(rcloud, nova, host, 2)
    kept = boot_on(rcloud, nova, other, 1)
    result = tool(rcloud, MANAGE, "--for-real", "--vm-timeout", "60", "disable", host)
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
    assert servers_on(nova, host) == []
    assert not any(rcloud.service_running(host, s) for s in SERVICES)
    assert [s.id for s in servers_on(nova, other)] == kept
    assert_down_before_its_heartbeats_say_so(svc)


def assert_down_before_its_heartbeats_say_so(svc):
    """Down and forced down while its last heartbeat is younger than service_down_time:
    Nova calls it down because we said so, not because it stopped reporting."""
    last_beat = datetime.datetime.fromisoformat(svc.updated_at).replace(tzinfo=datetime.timezone.utc)
    age = (datetime.datetime.now(datetime.timezone.utc) - last_beat).total_seconds()
    assert (svc.state, svc.forced_down) == ("down", True)
    assert age < SERVICE_DOWN_TIME, f"heartbeat {age:.1f} s old: too late to prove it"


def test_status_is_true_right_after_disable_and_enable(rcloud, nova):
    host = rcloud.names[0]
    result = tool(rcloud, MANAGE, "--for-real", "--reason", "LHC fill 9999", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    status = tool(rcloud, MANAGE, "status", host)
    svc = service(nova, host)
    assert table_rows(status.stdout)[0][:3] == [host, "no", "dead"], status.stdout
    assert_down_before_its_heartbeats_say_so(svc)
    # Nova's own disabled_reason and forced_down, as status --long and -f json show them
    assert re.fullmatch(r"\S+@\S+ \d{4}-\d\d-\d\dT\d\d:\d\dZ: LHC fill 9999", svc.disabled_reason)
    record, = json.loads(tool(rcloud, MANAGE, "-f", "json", "status", host).stdout)
    assert (record["forced_down"], record["disabled_reason"]) == (True, svc.disabled_reason)
    assert record["updated_at"] == svc.updated_at
    long = table_rows(tool(rcloud, MANAGE, "--long", "status", host).stdout)[0]
    assert long[3:5] == ["yes", svc.disabled_reason], long
    result = tool(rcloud, MANAGE, "--for-real", "enable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result)[-3] == f"[ OK ] Clearing the forced down state of hypervisor {host}"
    assert service(nova, host).forced_down is False
    wait_for(lambda: service(nova, host).state == "up", what=f"{host} up by its heartbeats")
    assert table_rows(tool(rcloud, MANAGE, "status", host).stdout)[0][:3] == [host, "yes", "alive"]


def test_disable_host_whose_compute_is_down(rcloud, nova):
    host = rcloud.names[0]
    boot_on(rcloud, nova, host, 2)
    stop_compute(rcloud, nova, host)
    result = tool(rcloud, MANAGE, "--for-real", "--vm-timeout", "90", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(l.startswith(f"Waiting max 90 s for nova-compute on {host} to report up")
               for l in lines(result)), result.stdout
    assert servers_on(nova, host) == []
    assert not rcloud.service_running(host, COMPUTE)


# ------------------------------------------------------------------ runvms, listwns, vmstats

def _capacity(rc):
    """VMs of the flavor that fit the enabled, up hosts, from Placement (not a constant)."""
    placement = rc.cloud().placement()
    flavor = rc.nova().flavors.find(name=FLAVOR)
    need = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram, "DISK_GB": flavor.disk}
    total = 0
    for provider in placement.get("/resource_providers").json()["resource_providers"]:
        inv = placement.get(f"/resource_providers/{provider['uuid']}/inventories").json()
        total += min(int((v["total"] - v["reserved"]) * v["allocation_ratio"]) // need[rc_]
                     for rc_, v in inv["inventories"].items())
    return total


@pytest.mark.parametrize("quota", ["default", "raised"])
def test_runvms_fills_exactly_the_free_room(rcloud, nova, quota):
    project = rcloud.cloud().project_id
    if quota == "raised":
        nova.quotas.update(project, instances=100, cores=1000, ram=1_000_000)
    limits = {l.name: l.value for l in nova.limits.get().absolute}
    flavor = nova.flavors.find(name=FLAVOR)
    expected = min(_capacity(rcloud), limits["maxTotalInstances"],
                   limits["maxTotalCores"] // flavor.vcpus,
                   limits["maxTotalRAMSize"] // flavor.ram)
    result = tool(rcloud, MANAGE, "--for-real", "--vm-timeout", "120", "runvms")
    assert result.returncode == 0, result.stdout + result.stderr
    servers = nova.servers.list(search_opts={"all_tenants": 1})
    assert len(servers) == expected
    assert all(s.status == "ACTIVE" for s in servers), [s.status for s in servers]
    assert all(s.name.startswith("wn-grid") for s in servers)
    # full now: a second run boots nothing and leaves no ERROR VM behind
    again = tool(rcloud, MANAGE, "--for-real", "runvms")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(nova.servers.list(search_opts={"all_tenants": 1})) == expected


def test_listwns_and_vmstats_agree_with_nova(rcloud, nova):
    first, second = rcloud.names[:2]
    workers = boot_on(rcloud, nova, first, 2) + boot_on(rcloud, nova, second, 1)
    other = boot_on(rcloud, nova, second, 1, name="other-vm")
    listed = tool(rcloud, MANAGE, "--json", "listwns")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    data = json.loads(listed.stdout)
    assert sorted(d["id"] for d in data) == sorted(workers)
    assert {d["id"]: d["hypervisor"] for d in data} == {
        s.id: getattr(s, "OS-EXT-SRV-ATTR:host") for s in (nova.servers.get(i) for i in workers)}
    assert all(d["status"] == "ACTIVE" and d["ips"] == [] for d in data)
    assert other[0] not in {d["id"] for d in data}
    text = tool(rcloud, MANAGE, "listwns", first)
    assert text.returncode == 0
    assert lines(text)[-1] == "2 worker VM(s) named wn-grid*"
    stats = tool(rcloud, MANAGE, "--json", "vmstats")
    assert stats.returncode == 0, stats.stdout + stats.stderr
    numbers = json.loads(stats.stdout)
    assert numbers["total"] == 4 and numbers["by_status"] == {"ACTIVE": 4}
    assert numbers["by_host"] == {first: 2, second: 2}
    cap = numbers["capacity"]
    assert cap["total"] == _capacity(rcloud) and cap["used"] == 4
    assert cap["free"] == cap["total"] - 4


# ------------------------------------------------------------------ prefill

def test_prefill_cache_finds_the_image_in_real_glance(rcloud):
    hosts = rcloud.names[:2]
    image_id = rcloud.add_image("prefill-real", size_mb=4, fmt="qcow2")
    result = tool(rcloud, PREFILL, "prefill-real", ",".join(hosts), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Getting image prefill-real (id={image_id})" in result.stdout
    name = hashlib.sha1(image_id.encode()).hexdigest()
    for host in hosts:
        cached = rcloud.node_dir(host) / "instances" / "_base" / name
        info = subprocess.run(["qemu-img", "info", "--output=json", str(cached)],
                              capture_output=True, text=True)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["format"] == "raw"
        assert json.loads(info.stdout)["virtual-size"] == 4 << 20
    assert not (rcloud.node_dir(rcloud.names[2]) / "instances" / "_base" / name).exists()


# ------------------------------------------------------------------ what Nova does when a compute is down

def test_delete_while_compute_down_waits_or_is_local(rcloud, nova):
    """Pins real Nova for the simulator: a delete sent while the killed compute still counts
    as up stays in task state 'deleting' until the compute returns; one sent once it is down
    is a local delete (the server is gone from the API at once)."""
    host = rcloud.names[0]
    early, late = boot_on(rcloud, nova, host, 2)
    done = rcloud.node_service(host, COMPUTE, "stop")
    assert done.returncode == 0, done.stderr
    assert service(nova, host).state == "up"  # heartbeats are not late yet
    nova.servers.delete(early)
    assert getattr(nova.servers.get(early), "OS-EXT-STS:task_state") == "deleting"
    wait_for(lambda: service(nova, host).state == "down", what=f"{host} down")
    assert getattr(nova.servers.get(early), "OS-EXT-STS:task_state") == "deleting"
    nova.servers.delete(late)
    assert [s.id for s in servers_on(nova, host)] == [early]  # late: gone at once
    rcloud.start_computes([host])
    wait_for(lambda: servers_on(nova, host) == [], what="the compute finishing the delete")


# ------------------------------------------------------------------ --parallel: subworkers on a handed-off token

def test_parallel_disable_for_real(rcloud, nova):
    """pdsh fan-out: the subworkers use the parent's token, which the real Keystone
    middleware of Nova must accept."""
    hosts = rcloud.names[:3]
    ids = {h: boot_on(rcloud, nova, h, 1) for h in hosts[:2]}
    result = tool(rcloud, MANAGE, "--for-real", "--parallel", "--vm-timeout", "90",
                  "disable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert out[-2:] == ["", "All commands executed successfully."]
    for host in hosts:  # each line names its host once (no pdsh label before it)
        mine = [line for line in out if host in line and not line.startswith("  ")]
        assert mine[0] == f"[ OK ] Disabling hypervisor {host}"
        assert f"[ OK ] Shutting down OpenStack daemons on {host}" in mine
        for vm in ids.get(host, []):
            assert f"[ OK ] Deleting VM {vm} on hypervisor {host}" in mine
        assert service(nova, host).status == "disabled" and servers_on(nova, host) == []
        assert not rcloud.service_running(host, COMPUTE)


# ------------------------------------------------------------------ reconcile (issue 21, item 4)

def test_reconcile_of_a_host_disabled_with_its_compute_running(rcloud, nova):
    """Disabled in Nova by hand, its real nova-compute still running and a VM left: the dry
    run names it half-way (exit 1), --for-real runs disable's steps (the reason kept), and a
    second run finds it consistent."""
    host = rcloud.names[0]
    [vm] = boot_on(rcloud, nova, host, 1)
    nova.services.disable_log_reason(service(nova, host).id, "by hand: disk check")
    dry = tool(rcloud, MANAGE, "-f", "json", "reconcile", host)
    assert dry.returncode == 1, dry.stdout + dry.stderr
    [record] = json.loads(dry.stdout)
    assert (record["host"], record["enabled"], record["reachable"], record["nvms"]) == (
        host, False, True, 1)
    assert record["daemons"][COMPUTE] == "running"
    assert record["found"][0].startswith("disabled, but daemons running: ")
    assert record["found"][1:] == ["disabled, but 1 VM left", "disabled, but not forced down"]
    assert record["would_do"] == ["disable: delete 1 VM, stop the daemons, force down"]
    assert [s.id for s in servers_on(nova, host)] == [vm]  # the dry run changed nothing

    done = tool(rcloud, MANAGE, "--for-real", "--vm-timeout", "60", "reconcile", host)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[ OK ] Deleting VM {vm} on hypervisor {host}" in lines(done)
    assert lines(done)[-1] == "All commands executed successfully."
    svc = service(nova, host)
    assert (svc.status, svc.forced_down, svc.disabled_reason) == (
        "disabled", True, "by hand: disk check")
    assert servers_on(nova, host) == []
    assert not any(rcloud.service_running(host, s) for s in SERVICES)
    again = tool(rcloud, MANAGE, "-f", "json", "reconcile", host)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)[0]["consistent"] is True
