"""The real control plane answers through our own client code (lib/hltcloud/cloud/session.py)."""
import subprocess
from pathlib import Path

from hltcloud.cloud.session import Cloud


def test_password_auth_and_catalog(realcloud):
    cloud = Cloud(realcloud.env)
    assert cloud.token
    for service in ("compute", "placement", "image"):
        assert cloud.endpoints[service].startswith("http://")


def test_nova_services_and_hypervisors_are_the_nodes(rcloud):
    nova = rcloud.nova()
    services = nova.services.list()
    computes = {s.host: s for s in services if s.binary == "nova-compute"}
    assert sorted(computes) == sorted(rcloud.names)
    assert all(s.state == "up" and s.status == "enabled" for s in computes.values())
    assert {s.binary for s in services} >= {"nova-conductor", "nova-scheduler"}
    assert sorted(h.hypervisor_hostname for h in nova.hypervisors.list()) == sorted(rcloud.names)


def test_placement_capacity_matches_a_worker_node(rcloud):
    placement = rcloud.cloud().placement()
    providers = placement.get("/resource_providers").json()["resource_providers"]
    assert sorted(p["name"] for p in providers) == sorted(rcloud.names)
    inv = placement.get(f"/resource_providers/{providers[0]['uuid']}/inventories").json()
    inv = inv["inventories"]
    usable = {rc: (v["total"] - v["reserved"]) * v["allocation_ratio"] for rc, v in inv.items()}
    assert usable == {"VCPU": 16.0, "MEMORY_MB": 15872.0, "DISK_GB": 400.0}


def test_glance_create_upload_list(rcloud, tmp_path):
    image_id = rcloud.add_image("smoke-image", size_mb=2, fmt="qcow2")
    glance = rcloud.cloud().glance()
    images = {i["id"]: i for i in glance.get("/v2/images").json()["images"]}
    assert images[image_id]["status"] == "active"
    assert images[image_id]["name"] == "smoke-image"
    stored = rcloud.rc.state / "glance" / "images" / image_id  # the tools read the file store
    info = subprocess.run(["qemu-img", "info", str(stored)], capture_output=True, text=True)
    assert "file format: qcow2" in info.stdout
    glance.delete(f"/v2/images/{image_id}")
    assert not stored.exists()


def test_boot_with_no_network_fills_to_the_quota(rcloud):
    """nics='none' at >= 2.37 boots without Neutron; multi-create is cut to the quota."""
    nova = rcloud.nova()
    flavor = nova.flavors.find(name="ali1.xlarge")
    nova.servers.create("smoke", rcloud.image_id, flavor.id, min_count=1, max_count=7,
                        nics="none", key_name="WorkerNodesSsh")
    servers = _wait_settled(nova)
    # default quota 20 cores / 4 per VM: 5, though capacity is 3 per node
    assert len(servers) == 5
    assert all(s.status == "ACTIVE" and s.addresses == {} for s in servers)


def _wait_settled(nova, timeout=120):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers = nova.servers.list()
        if servers and all(s.status in ("ACTIVE", "ERROR") for s in servers):
            return servers
        time.sleep(0.5)
    raise TimeoutError("servers did not settle")


def test_realcloud_status_and_env(realcloud):
    cli = Path(__file__).resolve().parent / "realcloud"
    status = subprocess.run([str(cli), "status", "--state", str(realcloud.rc.state)],
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 0, status.stdout + status.stderr
    running = {line.split()[0] for line in status.stdout.splitlines() if "running" in line}
    assert running >= {"postgres", "rabbitmq", "epmd", "keystone", "nova", "placement",
                       "glance", "network", "nova-conductor", "nova-scheduler"}
    env = subprocess.run([str(cli), "env", "--state", str(realcloud.rc.state)],
                         capture_output=True, text=True, timeout=30)
    assert env.returncode == 0
    assert "export OS_AUTH_URL=http://127.0.0.1:" in env.stdout
    assert realcloud.env["OS_PASSWORD"] not in env.stdout  # read from its mode 600 file


def test_node_service_runs_a_real_compute_and_answers_like_service(rcloud):
    """node-service on a node: status 0/3 as `service`, stop and start a real nova-compute
    (Nova sees it go down and come back, same compute node), bad usage exit 2."""
    host = rcloud.names[-1]
    nova = rcloud.nova()
    node_uuid = nova.hypervisors.search(host)[0].id
    running = rcloud.node_service(host, "openstack-nova-compute", "status")
    assert (running.returncode, running.stdout.strip()) == (0, "openstack-nova-compute is running")
    assert rcloud.node_service(host, "openstack-nova-compute", "stop").returncode == 0
    stopped = rcloud.node_service(host, "openstack-nova-compute", "status")
    assert (stopped.returncode, stopped.stdout.strip()) == (3, "openstack-nova-compute is stopped")
    rcloud.wait_computes([host], "down")
    rcloud.start_computes([host])  # waits until Nova reports it up
    assert [h.id for h in nova.hypervisors.search(host)] == [node_uuid]
    bad = rcloud.ssh(host, [str(Path(__file__).resolve().parent / "node-service"),
                            "--state", str(rcloud.rc.state), "libvirtd", "restart"])
    assert bad.returncode == 2 and bad.stderr.startswith("usage: node-service")
