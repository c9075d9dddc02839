"""The OpenStack simulator alone on loopback (no root, no namespaces), driven through the real
python-novaclient/keystoneauth1 (hltcloud.cloud.session.Cloud), with compute agents run on the head
against temporary instance directories."""
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, novaclient, poll  # generous default (30 s): the test machine may be loaded
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from hltcloud.cloud.session import Cloud, CloudError

SIMDIR = Path(__file__).resolve().parents[2] / "tests" / "simcluster"
NODES = ["cn01.internal", "cn02.internal", "cn03.internal"]
DOWN_TIME = 4  # seconds; agents beat every second
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


class Sim:
    """A simulator process of its own, plus the compute agents a test starts."""

    def __init__(self, tmp_path, down_time=DOWN_TIME):
        self.state = tmp_path / "state"
        self.state.mkdir()
        (self.state / "admin-password").write_text("s3cret-for-tests\n")
        os.chmod(self.state / "admin-password", 0o600)
        self.agents = {}
        self.tmp = tmp_path
        self.log = open(tmp_path / "simulator.log", "w")
        for _ in range(5):  # a free port can be taken by someone else before we bind it
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                [sys.executable, str(SIMDIR / "simulator.py"), "--state", str(self.state),
                 "--listen", "127.0.0.1", "--port", str(self.port), "--down-time", str(down_time),
                 "--hosts", ",".join(NODES)], stdout=self.log, stderr=subprocess.STDOUT)
            if poll(lambda: self._healthy() or self.proc.poll() is not None, timeout=20) \
                    and self.proc.poll() is None:
                break
            self.proc.kill()
            self.proc.wait()
        else:
            self.log.close()
            raise RuntimeError("simulator did not start: "
                               + (tmp_path / "simulator.log").read_text()[-2000:])
        self.env = {"OS_AUTH_URL": f"{self.url}/identity/v3", "OS_USERNAME": "admin",
                    "OS_PASSWORD": "s3cret-for-tests", "OS_PROJECT_NAME": "admin",
                    "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                    "OS_REGION_NAME": "RegionOne"}

    def _healthy(self):
        try:
            return self.sim("GET", "/health")["pid"] == self.proc.pid  # ours, not a neighbour's
        except OSError:
            return False

    def sim(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "/sim" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def instances_dir(self, node):
        path = self.tmp / "nodes" / node / "instances"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_agent(self, node):
        log = open(self.tmp / f"agent-{node}.log", "a")
        self.agents[node] = subprocess.Popen(
            [sys.executable, str(SIMDIR / "compute_agent.py"), "--node", node, "--sim", self.url,
             "--instances-dir", str(self.instances_dir(node))], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill_agent(self, node):
        proc = self.agents.pop(node)
        proc.kill()
        proc.wait()

    def stop_agent(self, node):
        proc = self.agents.pop(node)
        proc.terminate()
        return proc.wait(timeout=10)

    def close(self):
        for node in list(self.agents):
            self.kill_agent(node)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def sim(request, tmp_path):
    simulator = Sim(tmp_path, getattr(request, "param", DOWN_TIME))  # indirect param: down time
    try:
        yield simulator
    finally:
        simulator.close()


@pytest.fixture
def nova(sim):
    return novaclient(Cloud(sim.env))


def services_by_host(nova):
    return {s.host: s for s in nova.services.list(binary="nova-compute")}


def wait_state(nova, host, state):
    return poll(lambda: services_by_host(nova)[host].state == state, timeout=DOWN_TIME + 30)


def fit_per_host(cloud, host, flavor):
    """How many VMs of the flavor fit an empty host, from its Placement inventory."""
    placement = cloud.placement()
    rp = placement.get("/resource_providers", params={"name": host}).json()["resource_providers"][0]
    inv = placement.get(f"/resource_providers/{rp['uuid']}/inventories").json()["inventories"]
    need = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram, "DISK_GB": flavor.disk}
    return min(int((inv[rc]["total"] - inv[rc]["reserved"]) * inv[rc]["allocation_ratio"]) // n
               for rc, n in need.items())


def add_image(sim, name="CentOS6-build13", size=3 * 1024 * 1024 + 17):
    store = sim.state / "glance" / "images"
    store.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    (store / "upload.img").write_bytes(data)
    image = sim.sim("POST", "/images", {"name": name, "file": "upload.img", "disk_format": "qcow2"})
    return image["id"], data


def boot(nova, sim, count, flavor_name="ali1.xlarge", name="wn-grid", min_count=None):
    image_id = sim.image_id if hasattr(sim, "image_id") else None
    if image_id is None:
        sim.image_id, _ = add_image(sim)
    flavor = nova.flavors.find(name=flavor_name)
    return nova.servers.create(name, sim.image_id, flavor, min_count=min_count or count,
                               max_count=count, key_name="WorkerNodesSsh", nics="auto",
                               userdata="#!/bin/sh\necho hello\n")


def all_servers(nova, **opts):
    return nova.servers.list(search_opts=dict(all_tenants=True, **opts), limit=-1)


# ----- Keystone


def test_password_auth_gives_catalog_and_requests_need_a_token(sim):
    cloud = Cloud(sim.env)
    assert set(cloud.endpoints) == {"compute", "image", "placement"}
    assert cloud.endpoints["compute"] == f"{sim.url}/compute/v2.1"
    for path in ("/compute/v2.1/os-services", "/image/v2/images", "/placement/resource_providers"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(sim.url + path, timeout=5)
        assert err.value.code == 401
        request = urllib.request.Request(sim.url + path, headers={"X-Auth-Token": "forged"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 401
    with pytest.raises(CloudError, match="authentication failed"):
        Cloud(dict(sim.env, OS_PASSWORD="wrong"))


def test_microversion_is_negotiated_and_echoed(sim, nova):
    compute = Cloud(sim.env).adapter("compute")
    answer = compute.get("/os-services", headers={"OpenStack-API-Version": "compute 2.53"})
    assert answer.headers["OpenStack-API-Version"] == "compute 2.53"
    assert all(len(s["id"]) == 36 for s in answer.json()["services"])  # uuids from 2.53
    old = compute.get("/os-services", headers={"X-OpenStack-Nova-API-Version": "2.1"})
    assert old.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert all(isinstance(s["id"], int) for s in old.json()["services"])
    too_new = compute.get("/os-services", headers={"OpenStack-API-Version": "compute 2.105"},
                          raise_exc=False)
    assert too_new.status_code == 406
    assert too_new.json()["notAcceptable"]["message"] == (
        "Version 2.105 is not supported by the API. Minimum is 2.1 and maximum is 2.104.")
    versions = compute.get(f"{sim.url}/compute/", authenticated=False).json()["versions"]
    assert (versions[0]["min_version"], versions[0]["version"]) == ("2.1", "2.104")  # Nova 34


# ----- services and hypervisors


@pytest.mark.slow
def test_service_state_follows_the_agent(sim, nova):
    services = services_by_host(nova)
    assert sorted(services) == NODES
    assert {s.state for s in services.values()} == {"down"}  # no agent has ever run
    head = nova.services.list(host="openstack.internal")
    assert {s.binary for s in head} == {"nova-conductor", "nova-scheduler"}
    sim.start_agent("cn02.internal")
    assert wait_state(nova, "cn02.internal", "up")
    assert services_by_host(nova)["cn01.internal"].state == "down"
    hypervisors = {h.hypervisor_hostname: h for h in nova.hypervisors.list()}
    assert hypervisors["cn02.internal"].state == "up"
    sim.kill_agent("cn02.internal")
    started = time.monotonic()
    assert wait_state(nova, "cn02.internal", "down")
    assert time.monotonic() - started >= DOWN_TIME - 1.5  # not at once: after the down time


def test_forced_down_wins_over_heartbeats_until_unset(sim, nova):
    """Nova's semantics: a forced-down service is down whatever its heartbeats say, for
    services, hypervisors and scheduling; only an explicit unset clears it."""
    host = "cn02.internal"
    sim.start_agent(host)
    assert wait_state(nova, host, "up")
    service = services_by_host(nova)[host]
    assert service.forced_down is False
    nova.services.force_down(service.id, True)
    service = services_by_host(nova)[host]
    assert (service.state, service.forced_down) == ("down", True)  # at once, agent beating
    time.sleep(2.5)  # two more heartbeats change nothing
    assert services_by_host(nova)[host].state == "down"
    assert {h.hypervisor_hostname: h.state for h in nova.hypervisors.list()}[host] == "down"
    sim.kill_agent(host)
    sim.start_agent(host)  # a restarted compute does not clear it either
    time.sleep(2.5)
    assert services_by_host(nova)[host].state == "down"
    nova.services.force_down(service.id, False)
    service = services_by_host(nova)[host]
    assert (service.state, service.forced_down) == ("up", False)


def test_agent_exits_cleanly_on_sigterm(sim):
    sim.start_agent("cn01.internal")
    assert poll(lambda: [h for h in sim.sim("GET", "/hosts")["hosts"]
                             if h["name"] == "cn01.internal" and h["up"]])
    assert sim.stop_agent("cn01.internal") == 0


def test_enable_disable_with_reason_in_both_forms(sim, nova):
    service = services_by_host(nova)["cn01.internal"]
    nova.services.disable_log_reason(service.id, "lent to nobody")  # 2.53 form: PUT /os-services/<uuid>
    service = services_by_host(nova)["cn01.internal"]
    assert (service.status, service.disabled_reason) == ("disabled", "lent to nobody")
    hyp = nova.hypervisors.search("cn01.internal")[0]
    assert hyp.status == "disabled"
    nova.services.enable(service.id)
    service = services_by_host(nova)["cn01.internal"]
    assert (service.status, service.disabled_reason) == ("enabled", None)

    old = nova_client.Client("2.1", session=Cloud(sim.env).session,
                             endpoint_override=f"{sim.url}/compute/v2.1")
    old.services.disable_log_reason("cn02.internal", "nova-compute", "maintenance")
    old.services.disable("cn03.internal", "nova-compute")
    services = services_by_host(nova)
    assert (services["cn02.internal"].status, services["cn02.internal"].disabled_reason) == (
        "disabled", "maintenance")
    assert services["cn03.internal"].status == "disabled"
    old.services.enable("cn02.internal", "nova-compute")
    assert services_by_host(nova)["cn02.internal"].status == "enabled"
    with pytest.raises(nova_exc.NotFound):
        old.services.disable("cn99.internal", "nova-compute")
    gone = Cloud(sim.env).adapter("compute", "2.60").put(  # the old form is gone from 2.53 on
        "/os-services/disable", json={"host": "cn01.internal", "binary": "nova-compute"},
        raise_exc=False)
    assert gone.status_code == 400


# ----- servers


def test_boot_that_fits_goes_active_spread_over_hosts(sim, nova):
    cloud = Cloud(sim.env)
    for node in NODES[:2]:
        sim.start_agent(node)
        assert wait_state(nova, node, "up")
    nova.services.disable_log_reason(services_by_host(nova)["cn03.internal"].id, "not lent")
    flavor = nova.flavors.find(name="ali1.xlarge")
    per_host = fit_per_host(cloud, "cn01.internal", flavor)
    count = 2 * per_host
    sim.sim("POST", "/quota", {"instances": count, "cores": count * flavor.vcpus,
                               "ram": count * flavor.ram})
    boot(nova, sim, count)

    def active():
        servers = all_servers(nova)
        return servers if all(s.status == "ACTIVE" for s in servers) else None

    servers = poll(active)
    assert servers and len(servers) == count
    hosts = [getattr(s, "OS-EXT-SRV-ATTR:host") for s in servers]
    assert {h: hosts.count(h) for h in hosts} == {"cn01.internal": per_host, "cn02.internal": per_host}
    assert sorted(s.name for s in servers) == sorted(f"wn-grid-{i}" for i in range(1, count + 1))
    ips = [s.addresses["default"][0]["addr"] for s in servers]
    assert len(set(ips)) == count and all(ip.startswith("10.0.") for ip in ips)
    for server, host in zip(servers, hosts):
        assert (sim.instances_dir(host) / server.id / "libvirt.xml").is_file()
        assert getattr(server, "OS-EXT-STS:vm_state") == "active"
    limits = {item.name: item.value for item in nova.limits.get().absolute}
    assert (limits["totalInstancesUsed"], limits["totalCoresUsed"]) == (count, count * flavor.vcpus)


def test_boot_one_vm_too_large_goes_entirely_to_error(sim, nova):
    cloud = Cloud(sim.env)
    for host in NODES:
        sim.start_agent(host)
    for host in NODES:
        assert wait_state(nova, host, "up")
    flavor = nova.flavors.find(name="ali1.xlarge")
    capacity = sum(fit_per_host(cloud, h, flavor) for h in NODES)
    sim.sim("POST", "/quota", {"instances": -1, "cores": -1, "ram": -1})
    boot(nova, sim, capacity + 1)
    servers = all_servers(nova)
    assert len(servers) == capacity + 1
    for server in servers:
        assert server.status == "ERROR"
        assert server.fault["message"] == NO_VALID_HOST
        assert getattr(server, "OS-EXT-SRV-ATTR:host") is None
    for host in NODES:
        assert list(sim.instances_dir(host).iterdir()) == []
    placement = cloud.placement()
    for rp in placement.get("/resource_providers").json()["resource_providers"]:
        usages = placement.get(f"/resource_providers/{rp['uuid']}/usages").json()["usages"]
        assert usages == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
    for server in servers:  # never scheduled: deleted at once
        nova.servers.delete(server.id)
    assert all_servers(nova) == []


def test_boot_over_quota_is_refused(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v001", "v002"], "virtual": True})
    quota = nova.quotas.get(Cloud(sim.env).project_id)
    assert (quota.instances, quota.cores) == (10, 20)
    sim.sim("POST", "/quota", {"instances": 3})
    boot(nova, sim, 2, flavor_name="m1.tiny")
    with pytest.raises(nova_exc.Forbidden) as err:
        boot(nova, sim, 2, flavor_name="m1.tiny")
    assert "Quota exceeded for instances: Requested 2, but already used 2 of 3 instances" in str(err.value)
    assert len(all_servers(nova)) == 2
    boot(nova, sim, 5, flavor_name="m1.tiny", min_count=1)  # Nova boots what the quota allows
    assert len(all_servers(nova)) == 3
    sim.sim("POST", "/quota", {"instances": 10, "cores": 4})
    with pytest.raises(nova_exc.Forbidden) as err:
        boot(nova, sim, 1, flavor_name="ali1.xlarge")
    assert "Quota exceeded for cores: Requested 4, but already used 3 of 4 cores" in str(err.value)
    sim.sim("POST", "/quota", {"instances": 4, "cores": 5})
    with pytest.raises(nova_exc.Forbidden) as err:
        boot(nova, sim, 3, flavor_name="m1.tiny", min_count=2)
    assert ("Quota exceeded for instances, cores: Requested 2-3, 3, but already used 3, 3 "
            "of 4, 5 instances, cores") in str(err.value)
    assert len(all_servers(nova)) == 3


LONG_DOWN_TIME = 60  # the service stays "up" for the whole test once its agent is killed


@pytest.mark.slow
@pytest.mark.parametrize("sim", [LONG_DOWN_TIME], indirect=True)
def test_delete_waits_for_the_agent_while_the_service_is_up(sim, nova):
    node = "cn01.internal"
    sim.start_agent(node)
    assert wait_state(nova, node, "up")
    server = boot(nova, sim, 1)
    assert poll(lambda: nova.servers.get(server.id).status == "ACTIVE")
    vm_dir = sim.instances_dir(node) / server.id
    assert vm_dir.is_dir()
    sim.kill_agent(node)
    nova.servers.delete(server.id)
    time.sleep(2.5)  # more than two heartbeat intervals without an agent
    assert services_by_host(nova)[node].state == "up"
    pending = nova.servers.get(server.id)
    assert getattr(pending, "OS-EXT-STS:task_state") == "deleting"
    assert pending.status == "ACTIVE"
    assert vm_dir.is_dir()
    sim.start_agent(node)
    assert poll(lambda: not all_servers(nova))
    assert not vm_dir.exists()


@pytest.mark.parametrize("sim", [LONG_DOWN_TIME], indirect=True)
def test_a_waiting_heartbeat_is_answered_as_soon_as_there_is_work(sim, nova):
    """An agent's heartbeat may wait (long poll) for work: a delete reaches it at once, as
    Nova's compute gets its RPC, instead of at its next tick."""
    node = "cn01.internal"
    sim.start_agent(node)
    assert wait_state(nova, node, "up")
    server = boot(nova, sim, 1)
    assert poll(lambda: nova.servers.get(server.id).status == "ACTIVE")
    sim.kill_agent(node)  # from now on this test is the agent
    answers = []
    beat = threading.Thread(target=lambda: answers.append(
        sim.sim("POST", f"/agent/{node}/heartbeat", {"created": [], "removed": [], "wait": 2})))
    beat.start()
    time.sleep(0.3)  # the heartbeat is waiting: nothing to do yet
    nova.servers.delete(server.id)
    beat.join(10)
    assert answers == [{"create": [], "remove": [server.id]}]
    with pytest.raises(urllib.error.HTTPError) as err:
        sim.sim("POST", f"/agent/{node}/heartbeat", {"wait": 5})
    assert err.value.code == 400


@pytest.mark.slow
def test_stuck_vm_never_finishes_deleting(sim, nova):
    node = "cn02.internal"
    sim.start_agent(node)
    assert wait_state(nova, node, "up")
    server = boot(nova, sim, 1)
    assert poll(lambda: nova.servers.get(server.id).status == "ACTIVE")
    sim.sim("POST", f"/servers/{server.id}/stuck")
    nova.servers.delete(server.id)
    time.sleep(2.5)  # two heartbeats
    assert getattr(nova.servers.get(server.id), "OS-EXT-STS:task_state") == "deleting"
    assert (sim.instances_dir(node) / server.id).is_dir()


DELETE_DELAY = 2  # seconds a delete takes on the compute


@pytest.mark.parametrize("sim", [LONG_DOWN_TIME], indirect=True)
def test_delete_delay_keeps_each_vm_deleting_until_it_is_due(sim, nova):
    """With /sim/delete-delay D, a deleted VM stays listed (task_state deleting, its node
    directory still there) and goes only after D seconds: a wait costs what it costs on a
    real compute. Only lower bounds on time are asserted (a loaded machine is slower)."""
    node = "cn01.internal"
    sim.start_agent(node)
    assert wait_state(nova, node, "up")
    boot(nova, sim, 2)
    assert poll(lambda: {s.status for s in all_servers(nova)} == {"ACTIVE"})
    assert sim.sim("GET", "/delete-delay") == {"seconds": 0}
    assert sim.sim("POST", "/delete-delay", {"seconds": DELETE_DELAY}) == {"seconds": DELETE_DELAY}
    ids = {s.id for s in all_servers(nova)}
    sent = time.monotonic()
    for vm_id in ids:
        nova.servers.delete(vm_id)
    time.sleep(1)
    listed = {s.id: getattr(s, "OS-EXT-STS:task_state") for s in all_servers(nova)}
    answered = time.monotonic()
    assert answered < sent + DELETE_DELAY, "the machine stalled: the look came too late"
    assert listed == {vm_id: "deleting" for vm_id in ids}
    assert all((sim.instances_dir(node) / vm_id).is_dir() for vm_id in ids)
    assert poll(lambda: not all_servers(nova)) is True
    assert time.monotonic() >= sent + DELETE_DELAY  # never gone before it was due
    assert not any((sim.instances_dir(node) / vm_id).exists() for vm_id in ids)


def test_delete_delay_is_checked_and_reset(sim):
    for bad in (-1, "2", True, None, 3601):
        with pytest.raises(urllib.error.HTTPError) as err:
            sim.sim("POST", "/delete-delay", {"seconds": bad})
        assert err.value.code == 400
    assert sim.sim("POST", "/delete-delay", {"seconds": 0.5}) == {"seconds": 0.5}
    sim.sim("POST", "/reset")
    assert sim.sim("GET", "/delete-delay") == {"seconds": 0}


@pytest.mark.slow
def test_delete_while_service_down_is_local_and_leaves_an_orphan(sim, nova):
    node = "cn03.internal"
    sim.start_agent(node)
    assert wait_state(nova, node, "up")
    server = boot(nova, sim, 1)
    assert poll(lambda: nova.servers.get(server.id).status == "ACTIVE")
    sim.kill_agent(node)
    assert wait_state(nova, node, "down")
    nova.servers.delete(server.id)
    with pytest.raises(nova_exc.NotFound):
        nova.servers.get(server.id)
    assert all_servers(nova) == []
    sim.start_agent(node)
    assert wait_state(nova, node, "up")
    time.sleep(1.5)
    assert (sim.instances_dir(node) / server.id / "libvirt.xml").is_file()  # the orphan


def test_hypervisors_with_servers_and_server_filters(sim, nova):
    sim.sim("POST", "/hosts", {"names": [f"v{i:03d}.internal" for i in range(1, 5)], "virtual": True})
    sim.sim("POST", "/quota", {"instances": -1, "cores": -1, "ram": -1})
    boot(nova, sim, 8, flavor_name="m1.small", name="wn-grid")
    boot(nova, sim, 2, flavor_name="m1.small", name="other")
    servers = all_servers(nova)
    assert len(servers) == 10 and {s.status for s in servers} == {"ACTIVE"}
    by_host = {}
    for server in servers:
        by_host.setdefault(getattr(server, "OS-EXT-SRV-ATTR:host"), set()).add(server.id)
    hypervisors = nova.hypervisors.list(detailed=False)
    assert len(hypervisors) == len(NODES) + 4
    with_servers = {h.hypervisor_hostname: {s["uuid"] for s in getattr(h, "servers", [])}
                    for h in nova.hypervisors.search("v0", servers=True)}
    assert with_servers == {h: by_host.get(h, set()) for h in with_servers}
    assert sum(len(v) for v in with_servers.values()) == 10
    for host, ids in by_host.items():
        assert {s.id for s in all_servers(nova, host=host)} == ids
    assert len(all_servers(nova, name="^wn-grid")) == 8
    assert {s.name for s in all_servers(nova, name="other")} == {"other-1", "other-2"}
    detail = {h.hypervisor_hostname: h for h in nova.hypervisors.list()}
    assert detail["cn01.internal"].state == "down" and detail["v001.internal"].state == "up"


def test_servers_are_paged_as_nova_pages_them(sim, nova):
    sim.sim("POST", "/hosts", {"names": [f"v{i:03d}" for i in range(80)], "virtual": True})
    sim.sim("POST", "/quota", {"instances": -1, "cores": -1, "ram": -1})
    boot(nova, sim, 1100, flavor_name="m1.tiny")
    first_page = nova.servers.list(search_opts={"all_tenants": True})
    assert len(first_page) == 1000  # [api]max_limit
    everything = all_servers(nova)
    assert len(everything) == 1100 and len({s.id for s in everything}) == 1100
    small = nova.servers.list(detailed=False, search_opts={"all_tenants": True}, limit=7)
    assert len(small) == 7


# ----- Glance and Placement


def test_glance_lookup_and_download(sim):
    image_id, data = add_image(sim, "CentOS6-build13")
    glance = Cloud(sim.env).glance()
    images = glance.get("/v2/images", params={"name": "CentOS6-build13"}).json()["images"]
    assert [i["id"] for i in images] == [image_id]
    image = glance.get(f"/v2/images/{image_id}").json()
    assert image["size"] == len(data) and image["status"] == "active"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())
    assert (sim.state / "glance" / "images" / image_id).read_bytes() == data
    body = glance.get(f"/v2/images/{image_id}/file").content
    assert hashlib.md5(body).hexdigest() == image["checksum"]
    assert glance.get("/v2/images", params={"name": "absent"}).json()["images"] == []
    assert glance.get("/v2/images/0b0b0b0b-0000-4000-8000-000000000000", raise_exc=False).status_code == 404


def test_placement_inventories_and_usages(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v1.internal", "v2.internal"], "virtual": True})
    cloud = Cloud(sim.env)
    placement = cloud.placement()
    providers = placement.get("/resource_providers").json()["resource_providers"]
    assert sorted(p["name"] for p in providers) == sorted(NODES + ["v1.internal", "v2.internal"])
    rp = placement.get("/resource_providers", params={"name": "v1.internal"}).json()["resource_providers"]
    inv = placement.get(f"/resource_providers/{rp[0]['uuid']}/inventories").json()["inventories"]
    assert {rc: (v["total"], v["reserved"], v["allocation_ratio"]) for rc, v in inv.items()} == {
        "VCPU": (8, 0, 2.0), "MEMORY_MB": (16384, 512, 1.0), "DISK_GB": (400, 0, 1.0)}
    flavor = nova.flavors.find(name="ali1.xlarge")
    boot(nova, sim, 2)
    total = {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
    for name in ("v1.internal", "v2.internal"):
        uuid = placement.get("/resource_providers", params={"name": name}).json()["resource_providers"][0]["uuid"]
        usages = placement.get(f"/resource_providers/{uuid}/usages").json()["usages"]
        for rc in total:
            total[rc] += usages[rc]
        allocations = placement.get(f"/resource_providers/{uuid}/allocations").json()["allocations"]
        assert len(allocations) == usages["VCPU"] // flavor.vcpus
    assert total == {"VCPU": 2 * flavor.vcpus, "MEMORY_MB": 2 * flavor.ram, "DISK_GB": 2 * flavor.disk}
    for server in all_servers(nova):
        nova.servers.delete(server.id)
    assert all(placement.get(f"/resource_providers/{p['uuid']}/usages").json()["usages"]["VCPU"] == 0
               for p in placement.get("/resource_providers").json()["resource_providers"])


# ----- control API


def test_reset_and_request_log(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v1"], "virtual": True})
    boot(nova, sim, 2, flavor_name="m1.tiny")
    nova.services.disable_log_reason(services_by_host(nova)["v1"].id, "x")
    sim.sim("POST", "/quota", {"instances": 1})
    log = sim.sim("GET", "/requests")
    assert any(e["service"] == "identity" and e["method"] == "POST" for e in log)
    assert any(e["service"] == "compute" and e["path"] == "/compute/v2.1/servers"
               and e["status"] == 202 for e in log)
    assert all({"method", "path", "status", "time", "service"} <= set(e) for e in log)
    sim.sim("POST", "/reset")
    assert all_servers(nova) == []
    assert {s.status for s in services_by_host(nova).values()} == {"enabled"}
    assert nova.quotas.get(Cloud(sim.env).project_id).instances == 10
    assert sorted(services_by_host(nova)) == NODES  # node-backed hosts kept, virtual ones gone
    sim.sim("DELETE", "/requests")
    assert sim.sim("GET", "/requests") == []


# ----- startup


def test_listens_on_every_address_and_refuses_a_missing_password(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    state.mkdir()
    command = [sys.executable, str(SIMDIR / "simulator.py"), "--state", str(state),
               "--listen", "127.0.0.1,127.0.0.2", "--port", str(port)]
    missing = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0
    assert "admin-password" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    (state / "admin-password").write_text("pw\n")
    log = tmp_path / "simulator.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        def health(address):
            try:
                with urllib.request.urlopen(f"http://{address}:{port}/sim/health", timeout=2) as r:
                    return json.load(r)["pid"] == proc.pid
            except OSError:
                return False
        assert poll(lambda: health("127.0.0.1"), timeout=10), log.read_text()
        assert health("127.0.0.2")
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
    assert code == 0, log.read_text()


def test_old_microversion_hypervisor_routes(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v1.internal"], "virtual": True})
    boot(nova, sim, 2, flavor_name="m1.tiny")
    old = nova_client.Client("2.1", session=Cloud(sim.env).session,
                             endpoint_override=f"{sim.url}/compute/v2.1")
    found = old.hypervisors.search("v1.internal", servers=True)  # GET /os-hypervisors/<p>/servers
    assert len(found) == 1 and isinstance(found[0].id, int)
    assert len(found[0].servers) == 2
    assert all(s["name"].startswith("instance-") for s in found[0].servers)
    detail = old.hypervisors.get(found[0].id)
    assert (detail.running_vms, detail.vcpus_used) == (2, 2)
    assert not hasattr(nova.hypervisors.search("cn01.internal", servers=True)[0], "servers")
    with pytest.raises(nova_exc.NotFound):
        old.hypervisors.search("absent")


def test_placement_microversions(sim):
    placement = Cloud(sim.env).adapter("placement")
    answer = placement.get("/resource_providers", headers={"OpenStack-API-Version": "placement 1.14"})
    assert answer.headers["OpenStack-API-Version"] == "placement 1.14"
    assert all(p["root_provider_uuid"] == p["uuid"] for p in answer.json()["resource_providers"])
    refused = placement.get("/resource_providers", raise_exc=False,
                            headers={"OpenStack-API-Version": "placement 1.40"})
    assert refused.status_code == 406
    root = placement.get(f"{sim.url}/placement/", authenticated=False).json()["versions"][0]
    assert (root["min_version"], root["max_version"]) == ("1.0", "1.39")


def test_heartbeat_of_an_unknown_host_is_refused(sim):
    with pytest.raises(urllib.error.HTTPError) as err:
        sim.sim("POST", "/agent/cn99.internal/heartbeat", {})
    assert err.value.code == 404
    assert sim.sim("POST", "/agent/cn01.internal/heartbeat", {}) == {"create": [], "remove": []}


def test_paging_survives_the_marker_being_deleted(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v1", "v2"], "virtual": True})
    boot(nova, sim, 6, flavor_name="m1.tiny")
    first = nova.servers.list(detailed=False, search_opts={"all_tenants": True}, limit=2)
    nova.servers.delete(first[-1].id)
    rest = nova.servers.list(detailed=False, search_opts={"all_tenants": True}, limit=10,
                             marker=first[-1].id)
    assert len(rest) == 4 and not {s.id for s in rest} & {s.id for s in first}
    with pytest.raises(nova_exc.BadRequest, match="marker"):
        nova.servers.list(search_opts={"all_tenants": True}, marker="0b0b0b0b-0000-4000-8000-000000000000")


def test_boot_on_a_chosen_host(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v1", "v2", "v3"], "virtual": True})
    flavor = nova.flavors.find(name="m1.tiny")
    image_id, _ = add_image(sim)
    nova.servers.create("pinned", image_id, flavor, nics="auto", availability_zone="nova:v2",
                        min_count=2, max_count=2)
    assert {getattr(s, "OS-EXT-SRV-ATTR:host") for s in all_servers(nova)} == {"v2"}
    nova.services.disable_log_reason(services_by_host(nova)["v3"].id, "closed")
    late = nova_client.Client("2.74", session=Cloud(sim.env).session,
                              endpoint_override=f"{sim.url}/compute/v2.1")
    refused = late.servers.create("filtered", image_id, flavor, nics="auto", host="v3")
    assert late.servers.get(refused.id).status == "ERROR"  # a requested host still goes through filters
    forced = nova.servers.create("forced", image_id, flavor, nics="auto", availability_zone="nova:v3")
    assert nova.servers.get(forced.id).status == "ACTIVE"  # a forced host bypasses them, as in Nova


# ----- answers pinned to the real Nova 34 / Placement (tests/realcloud/test_realcloud_parity.py)


def test_boot_with_a_missing_image_is_refused_in_novas_words(sim, nova):
    compute = Cloud(sim.env).adapter("compute", "2.60")
    flavor = nova.flavors.find(name="m1.tiny")
    answer = compute.post("/servers", raise_exc=False, json={"server": {
        "name": "x", "imageRef": "11111111-1111-1111-1111-111111111111",
        "flavorRef": flavor.id, "networks": "none"}})
    assert answer.status_code == 400
    assert answer.json()["badRequest"]["message"] == "Can not find requested image"
    assert all_servers(nova) == []


def test_quota_defaults_and_revert_to_them(sim, nova):
    compute = Cloud(sim.env).adapter("compute", "2.60")
    project = Cloud(sim.env).project_id
    nova.quotas.update(project, instances=100, cores=300)
    assert nova.quotas.get(project).instances == 100
    defaults = compute.get(f"/os-quota-sets/{project}/defaults").json()["quota_set"]
    assert {k: defaults[k] for k in ("id", "instances", "cores", "ram")} == {
        "id": project, "instances": 10, "cores": 20, "ram": 51200}
    assert "injected_files" not in defaults  # filtered from 2.57 on, as the other views
    reverted = compute.delete(f"/os-quota-sets/{project}")
    assert (reverted.status_code, reverted.content) == (202, b"")
    current = compute.get(f"/os-quota-sets/{project}").json()["quota_set"]
    assert (current["instances"], current["cores"], current["ram"]) == (10, 20, 51200)
    assert sim.sim("GET", "/quota") == {"instances": 10, "cores": 20, "ram": 51200}
    updated = compute.put(f"/os-quota-sets/{project}", json={"quota_set": {"instances": 7}})
    assert "id" not in updated.json()["quota_set"]  # Nova's update answer has no id


def test_service_update_refusals_in_novas_words(sim, nova):
    compute = Cloud(sim.env).adapter("compute", "2.60")
    service = services_by_host(nova)["cn01.internal"]

    def put(body, sid=service.id):
        answer = compute.put(f"/os-services/{sid}", json=body, raise_exc=False)
        fault = next(iter(answer.json().values()))
        return answer.status_code, fault.get("message") if answer.status_code >= 400 else fault

    assert put({"status": "enabled", "disabled_reason": "x"}) == (
        400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
    no_update = (400, "No updates were requested. Fields 'status' or 'forced_down' should be "
                      "specified.")
    assert put({}) == no_update
    assert put({"disabled_reason": "x"}) == no_update  # a reason alone changes nothing
    assert put({}, "0b0b0b0b-0000-4000-8000-000000000000") == (
        404, "Service 0b0b0b0b-0000-4000-8000-000000000000 not found.")  # lookup comes first
    assert put({}, "nosuch") == (400, "Invalid uuid nosuch")
    assert services_by_host(nova)["cn01.internal"].status == "enabled"  # nothing changed
    status, view = put({"status": "disabled", "disabled_reason": "lent"})
    assert (status, view["status"], view["disabled_reason"]) == (200, "disabled", "lent")
    status, view = put({"status": "enabled"})
    assert (status, view["status"], view["disabled_reason"]) == (200, "enabled", None)


def test_placement_not_found_details_as_placement_words_them(sim):
    placement = Cloud(sim.env).placement()
    missing = "11111111-1111-1111-1111-111111111111"
    gone = f"No resource provider with uuid {missing} found"

    def detail(path):
        answer = placement.get(path, raise_exc=False)
        errors = answer.json()["errors"]
        assert (answer.status_code, errors[0]["title"]) == (404, "Not Found")
        return errors[0]["detail"]

    head = "The resource could not be found.\n\n "
    assert detail(f"/resource_providers/{missing}") == f"{head}{gone}  "
    assert detail(f"/resource_providers/{missing}/inventories") == f"{head}{gone} : {gone}  "
    assert detail(f"/resource_providers/{missing}/inventories/VCPU") == f"{head}{gone} : {gone}  "
    assert detail(f"/resource_providers/{missing}/usages") == f"{head}{gone}: {gone}  "
    assert detail(f"/resource_providers/{missing}/allocations") == (
        f"{head}Resource provider '{missing}' not found: {gone}  ")
    assert detail("/nosuch") == head + "  "


def test_views_of_microversions_after_2_96(sim, nova):
    """2.98 adds the image's properties, 2.100 the scheduler hints, 2.102 drops two flavor
    fields; what the tools ask for (2.60) stays as it was."""
    sim.sim("POST", "/hosts", {"names": ["v1"], "virtual": True})
    boot(nova, sim, 1, flavor_name="m1.tiny")
    compute = Cloud(sim.env).adapter("compute")
    server_id = all_servers(nova)[0].id

    def server(version):
        return compute.get(f"/servers/{server_id}", headers={
            "OpenStack-API-Version": f"compute {version}"}).json()["server"]

    def flavor(version):
        return compute.get("/flavors/detail", headers={
            "OpenStack-API-Version": f"compute {version}"}).json()["flavors"][0]

    latest = server("2.104")
    assert (latest["image"]["properties"], latest["scheduler_hints"]) == ({}, {})
    assert latest["pinned_availability_zone"] is None
    assert "properties" not in server("2.97")["image"] and "scheduler_hints" not in server("2.99")
    assert "properties" not in server("2.60")["image"]
    assert {"rxtx_factor", "OS-FLV-DISABLED:disabled"} <= set(flavor("2.101"))
    assert not {"rxtx_factor", "OS-FLV-DISABLED:disabled"} & set(flavor("2.102"))
    assert {"rxtx_factor", "OS-FLV-DISABLED:disabled"} <= set(flavor("2.60"))
    by_name = compute.get("/flavors", params={"name": "^m1\\.(tiny|small)$"},
                          headers={"OpenStack-API-Version": "compute 2.102"}).json()["flavors"]
    assert sorted(f["name"] for f in by_name) == ["m1.small", "m1.tiny"]  # a filter from 2.102
    unfiltered = compute.get("/flavors", params={"name": "^m1\\.tiny$"},
                             headers={"OpenStack-API-Version": "compute 2.60"}).json()["flavors"]
    assert len(unfiltered) == len(nova.flavors.list())  # earlier, Nova strips the parameter


def test_fail_next_boots_puts_whole_requests_in_error_then_fits_again(sim, nova):
    sim.sim("POST", "/hosts", {"names": ["v1"], "virtual": True})
    sim.sim("POST", "/fail-next-boots", {"count": 2})
    for _ in range(2):  # 1 VM would fit: failed as if the capacity had been taken meanwhile
        boot(nova, sim, 1)
    servers = all_servers(nova)
    assert [s.status for s in servers] == ["ERROR", "ERROR"]
    assert {s.fault["message"] for s in servers} == {NO_VALID_HOST}
    for server in servers:
        nova.servers.delete(server.id)
    boot(nova, sim, 1)  # the third request is scheduled as usual
    assert [s.status for s in all_servers(nova)] == ["ACTIVE"]
    sim.sim("POST", "/fail-next-boots", {"count": 1})
    sim.sim("POST", "/reset")  # clears it
    sim.sim("POST", "/hosts", {"names": ["v1"], "virtual": True})
    boot(nova, sim, 1)
    assert [s.status for s in all_servers(nova)] == ["ACTIVE"]
    with pytest.raises(urllib.error.HTTPError) as err:
        sim.sim("POST", "/fail-next-boots", {"count": -1})
    assert err.value.code == 400
