"""The node side of the simulated cluster: real sshd per node, private /var/lib/nova,
node-to-node ssh and rsync, pdsh, faults, shaping, node services, teardown."""
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import novaclient

import fixture
import netnodes
from hltcloud import config as site_config

CLUSTER = str(netnodes.HERE / "cluster")
SLOT_WAIT = 30  # seconds the teardown tests wait for a second free slot before skipping
NODE_SERVICE = str(netnodes.NODE_SERVICE)


def require_cluster_tools():
    reason = fixture.unavailable()
    if reason:
        pytest.skip(reason)


def pdsh_env(cluster):
    return {**cluster.env, "PDSH_SSH_ARGS_APPEND": f"-F {cluster.ssh_config}"}


def test_ssh_into_each_node_knows_its_name(cluster):
    for name in cluster.names:
        res = cluster.ssh(name, ["sh", "-c", 'echo "$HLT_NODE $(hostname) $HLT_SIM_STATE"'])
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [name, name, str(cluster.state)]


def test_host_key_checking_stays_on(cluster):
    """A node presenting another host key is refused: known_hosts really is checked."""
    first, second = cluster.names[:2]
    addr = cluster.layout.node(second)["addr"]
    res = subprocess.run(["ssh", "-F", cluster.ssh_config, "-o", f"HostName={addr}",
                          first, "true"], capture_output=True, text=True, timeout=15)
    assert res.returncode == 255
    assert "host key" in res.stderr.lower() or "identification has changed" in res.stderr.lower()


def test_node_to_node_ssh_and_to_head(cluster):
    first, second = cluster.names[:2]
    res = cluster.ssh(first, ["ssh", "-F", cluster.ssh_config, second, "printenv", "HLT_NODE"])
    assert (res.returncode, res.stdout.strip()) == (0, second), res.stderr
    res = cluster.ssh(first, ["ssh", "-F", cluster.ssh_config, netnodes.HEAD_NAME,
                              "printenv", "HLT_NODE"])
    assert (res.returncode, res.stdout.strip()) == (0, netnodes.HEAD_NAME), res.stderr


def test_var_lib_nova_is_private_per_node(cluster):
    tag = uuid.uuid4().hex
    for name in cluster.names:
        res = cluster.ssh(name, ["sh", "-c", f'echo "$HLT_NODE" > /var/lib/nova/instances/{tag}'])
        assert res.returncode == 0, res.stderr
    for name in cluster.names:
        res = cluster.ssh(name, ["cat", f"/var/lib/nova/instances/{tag}"])
        assert res.stdout.strip() == name  # its own file, not another node's
        assert (cluster.node_dir(name) / "instances" / tag).read_text().strip() == name
    assert not Path(f"/var/lib/nova/instances/{tag}").exists()  # the head's is its own too


def test_node_to_node_rsync_with_the_ssh_config(cluster):
    src, dst, other = cluster.names[:3]
    path = "/var/lib/nova/instances/_base/blob"
    res = cluster.ssh(src, ["dd", "if=/dev/urandom", f"of={path}", "bs=1M", "count=4"])
    assert res.returncode == 0, res.stderr
    res = cluster.ssh(src, ["rsync", "-e", f"ssh -F {cluster.ssh_config}", path, f"{dst}:{path}"])
    assert res.returncode == 0, res.stderr
    copied = cluster.node_dir(dst) / "instances" / "_base" / "blob"
    original = cluster.node_dir(src) / "instances" / "_base" / "blob"
    assert copied.read_bytes() == original.read_bytes()
    assert original.stat().st_size == 4 << 20
    assert not (cluster.node_dir(other) / "instances" / "_base" / "blob").exists()


def test_pdsh_over_nodes_labels_with_short_names(cluster):
    hosts = ",".join(cluster.names)
    res = subprocess.run(["pdsh", "-R", "ssh", "-w", hosts, "printenv", "HLT_NODE"],
                         env=pdsh_env(cluster), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = sorted(res.stdout.splitlines())
    assert lines == sorted(f"{n.split('.')[0]}: {n}" for n in cluster.names)
    res = subprocess.run(["pdsh", "-R", "exec", "-w", hosts, "ssh", "-F", cluster.ssh_config,
                          "%h", "hostname"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.splitlines()) == sorted(f"{n.split('.')[0]}: {n}"
                                                     for n in cluster.names)


def test_unreachable_node_fails_within_connect_timeout_and_heals(cluster):
    victim, other = cluster.names[0], cluster.names[1]
    cluster.fault(victim, "down")
    # ssh must give up on its own (ConnectTimeout), well before this subprocess limit.
    res = cluster.ssh(victim, ["true"], timeout=netnodes.CONNECT_TIMEOUT + 7)
    assert res.returncode == 255
    assert re.search(r"timed out|no route|unreachable", res.stderr, re.I), res.stderr
    assert cluster.ssh(other, ["true"]).returncode == 0  # the others are unaffected
    cluster.fault(victim, "up")
    res = cluster.ssh(victim, ["printenv", "HLT_NODE"])
    assert (res.returncode, res.stdout.strip()) == (0, victim), res.stderr


def qdiscs(cluster, name):
    node = cluster.layout.node(name)
    head = subprocess.run(["tc", "qdisc", "show", "dev", node["veth"]],
                          capture_output=True, text=True).stdout
    inside = subprocess.run(["tc", "-n", node["netns"], "qdisc", "show", "dev", "eth0"],
                            capture_output=True, text=True).stdout
    return head, inside


def test_slow_fault_delays_both_ends_and_still_works(cluster):
    name = cluster.names[0]
    cluster.fault(name, "slow")
    for side in qdiscs(cluster, name):
        # netem delay where the kernel has it, else a narrow tbf link (netnodes.SLOW_RATE)
        assert re.search(r"netem .*delay|tbf .*rate 2Mbit", side), side
    assert cluster.ssh(name, ["true"]).returncode == 0
    cluster.fault(name, "up")
    for side in qdiscs(cluster, name):
        assert "netem" not in side


def test_shaping_puts_tbf_on_both_ends_and_clears(cluster):
    name = cluster.names[1]
    cluster.shape(name, "50mbit")
    for side in qdiscs(cluster, name):
        assert re.search(r"tbf .*rate 50Mbit", side), side
    cluster.fault(name, "slow")  # delay and rate together: slow keeps the narrower one
    for side in qdiscs(cluster, name):
        assert re.search(r"netem .*delay.*tbf .*rate 50Mbit|tbf .*rate 2Mbit", side, re.S), side
    res = cluster.ssh(cluster.names[0], ["ssh", "-F", cluster.ssh_config, name, "true"])
    assert res.returncode == 0, res.stderr
    cluster.shape(name, None)
    cluster.fault(name, "up")
    for side in qdiscs(cluster, name):
        assert "tbf" not in side and "netem" not in side
    with pytest.raises(netnodes.ClusterError):
        cluster.shape(name, "fast; rm -rf /")


def service(cluster, name, svc, action):
    return cluster.ssh(name, [NODE_SERVICE, svc, action])


def test_service_start_stop_status_tell_the_truth(cluster):
    name = cluster.names[2]
    res = service(cluster, name, "libvirtd", "status")
    assert (res.returncode, res.stdout.strip()) == (3, "libvirtd is stopped")
    assert service(cluster, name, "libvirtd", "start").returncode == 0
    assert cluster.service_running(name, "libvirtd")
    res = service(cluster, name, "libvirtd", "status")
    assert (res.returncode, res.stdout.strip()) == (0, "libvirtd is running")
    pidfile = cluster.layout.run_dir(name) / "libvirtd.pid"
    pid = netnodes.read_pid(pidfile)
    # The daemon lives inside the node: same network namespace as the node's sshd.
    sshd = netnodes.read_pid(cluster.layout.node_dir(name) / "sshd.pid")
    assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/proc/{sshd}/ns/net")
    assert service(cluster, name, "libvirtd", "start").returncode == 0  # idempotent
    assert netnodes.read_pid(pidfile) == pid
    assert not cluster.service_running(cluster.names[3], "libvirtd")  # only on that node
    assert service(cluster, name, "libvirtd", "stop").returncode == 0
    assert not netnodes.pid_alive(pid) and not pidfile.exists()
    res = service(cluster, name, "libvirtd", "status")
    assert res.returncode == 3
    assert service(cluster, name, "libvirtd", "stop").returncode == 0  # stopped: still ok
    assert service(cluster, name, "libvirtd", "restart").returncode == 2
    assert service(cluster, name, "../etc", "start").returncode == 2


def test_site_config_service_commands_work_on_nodes(cluster):
    """The commands the tools will run, taken from the written site configuration."""
    conf = site_config.load(cluster.config_path)
    assert conf.ssh_config == cluster.ssh_config
    name = cluster.names[0]
    for svc in conf.services:
        if svc == "openstack-nova-compute" and not cluster.has_simulator:
            continue
        res = cluster.ssh(name, conf.service_command("start", svc))
        assert res.returncode == 0, res.stderr
        assert cluster.service_running(name, svc)
        res = cluster.ssh(name, conf.service_command("stop", svc))
        assert res.returncode == 0 and not cluster.service_running(name, svc)


def test_compute_service_runs_the_agent_inside_the_node(cluster):
    if not netnodes.SIMULATOR.exists() or not (netnodes.HERE / "compute_agent.py").exists():
        pytest.skip("simulator.py / compute_agent.py not written yet")
    if not cluster.has_simulator:
        pytest.skip("cluster runs without the simulator (HLTSIM_NO_SIMULATOR)")
    name = cluster.names[0]
    assert service(cluster, name, "openstack-nova-compute", "start").returncode == 0
    pid = netnodes.read_pid(cluster.layout.run_dir(name) / "openstack-nova-compute.pid")
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "compute_agent.py" in cmdline[1] and cmdline[cmdline.index("--node") + 1] == name
    assert service(cluster, name, "openstack-nova-compute", "stop").returncode == 0
    assert not netnodes.pid_alive(pid)


def test_reset_stops_daemons_empties_nodes_heals_links(simcluster):
    c = simcluster
    name = c.names[0]
    assert service(c, name, "libvirtd", "start").returncode == 0
    (c.node_dir(name) / "instances" / "_base" / "img").write_text("x")
    (c.node_dir(name) / "instances" / "vm-1").mkdir(exist_ok=True)
    c.fault(c.names[1], "down")
    c.shape(c.names[2], "10mbit")
    c.reset()
    assert not c.service_running(name, "libvirtd")
    assert sorted(p.name for p in (c.node_dir(name) / "instances").iterdir()) == ["_base"]
    assert list((c.node_dir(name) / "instances" / "_base").iterdir()) == []
    assert c.ssh(c.names[1], ["true"]).returncode == 0
    assert "tbf" not in qdiscs(c, c.names[2])[0]


def free_slot():
    for slot in netnodes.SLOTS:
        fd = netnodes.try_lock(slot)
        if fd is not None:
            os.close(fd)
            return slot
    return None


def leftovers(slot, state, pids):
    return {"netns": netnodes.slot_netns(slot),
            "bridge": Path(f"/sys/class/net/hltbr{slot}").exists(),
            "pids": [p for p in pids if netnodes.pid_alive(p)],
            "state": Path(state).exists()}


def test_cli_up_down_after_a_crash_leaves_nothing(tmp_path):
    """`cluster up` in a second slot, a crash (its lock holder killed), a new `up` over the
    stale remains, then `down`: no namespace, no bridge, no process, no state dir."""
    require_cluster_tools()
    state = str(tmp_path / "state")
    deadline = time.monotonic() + SLOT_WAIT
    while True:  # other test sessions may hold the slots, or take one between look and use
        slot = free_slot()
        if slot is None:
            if time.monotonic() > deadline:
                pytest.skip(f"no second free slot for the CLI test within {SLOT_WAIT}s")
            time.sleep(1)
            continue
        cli = [sys.executable, CLUSTER, "--slot", str(slot), "--state", state]
        res = subprocess.run(cli + ["--names", "a1.internal,a2.internal", "--no-simulator",
                                    "up", "2"], capture_output=True, text=True, timeout=60)
        if "in use" not in res.stderr:
            break
    assert res.returncode == 0, res.stderr
    layout = netnodes.Layout.load(state)
    res = subprocess.run(["ssh", "-F", str(layout.ssh_config), "a2.internal", NODE_SERVICE,
                          "libvirtd", "start"], capture_output=True, text=True, timeout=15)
    assert res.returncode == 0, res.stderr
    pids = netnodes.recorded_pids(state) + netnodes.node_pids(state)
    assert len(pids) == 5  # lock holder, head sshd, 2 node sshds, libvirtd
    holder = pids[0]
    os.kill(holder, 9)  # the crash: the slot's lock is free, everything else remains
    time.sleep(0.1)
    res = subprocess.run(cli + ["--no-simulator", "up", "1"], capture_output=True, text=True,
                         timeout=60)
    if "in use" in res.stderr:  # another session took the freed slot: its start cleans up
        deadline = time.monotonic() + 20
        while any(netnodes.pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p for p in pids if netnodes.pid_alive(p)] == []
        pytest.skip("another session took the slot after the crash (it cleaned the remains)")
    assert res.returncode == 0, res.stderr
    assert [p for p in pids if netnodes.pid_alive(p)] == []  # the stale ones were removed
    new_pids = netnodes.recorded_pids(state) + netnodes.node_pids(state)
    assert len(netnodes.slot_netns(slot)) == 1
    res = subprocess.run([sys.executable, CLUSTER, "--slot", str(slot), "down"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert leftovers(slot, state, new_pids) == {"netns": [], "bridge": False, "pids": [],
                                                "state": False}
    assert netnodes.try_lock(slot) is not None  # the slot is free again


def test_a_crashed_session_is_cleaned_up_by_the_next():
    """A test session killed with -9 frees its slot (it held the lock itself); the next
    session's start cleans the remains: processes, namespaces, bridge, state dir."""
    require_cluster_tools()
    code = ("import fixture, os\n"
            "try:\n"
            "    c = fixture.SimCluster.start(names=['z1.internal'], with_simulator=False, "
            f"wait={SLOT_WAIT})\n"
            "except fixture.ClusterError as err:\n"
            "    print('none', err, flush=True); raise SystemExit(0)\n"
            "print(c.slot, c.state, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=str(netnodes.HERE))
    if res.stdout.startswith("none"):
        pytest.skip("no second free slot for the crash test")
    assert res.returncode == -9, res.stderr
    slot, state = res.stdout.split()
    slot = int(slot)
    pids = netnodes.recorded_pids(state) + netnodes.node_pids(state)
    assert len(pids) == 2 and all(netnodes.pid_alive(p) for p in pids)  # head + node sshd
    netnodes.clean_stale_slots()
    assert [p for p in pids if netnodes.pid_alive(p)] == [] and not Path(state).exists()
    fd = netnodes.try_lock(slot)
    if fd is not None:  # unless another session took the slot meanwhile
        try:
            assert netnodes.slot_netns(slot) == []
            assert not Path(f"/sys/class/net/hltbr{slot}").exists()
        finally:
            os.close(fd)


def test_cli_refuses_without_root_in_one_line():
    require_cluster_tools()
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, CLUSTER, "up", "2"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert res.stderr.strip() == "cluster: needs root (network namespaces, sshd)"
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", "import fixture; print(fixture.unavailable())"],
                         capture_output=True, text=True, timeout=30, cwd=str(netnodes.HERE))
    assert res.stdout.strip() == "simulated cluster needs root (network namespaces, sshd)"


def test_bad_names_and_slots_fail_before_doing_anything():
    require_cluster_tools()
    for argv, message in ((["--slot", "7", "up", "2"], "slot must be 0..3"),
                          (["--names", "a;b", "up"], "a;b"),
                          (["up", "51"], "at most 50 nodes"),
                          (["--state", "/tmp/a b", "up", "1"], "plain absolute path")):
        res = subprocess.run([sys.executable, CLUSTER, *argv], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 1 and message in res.stderr, (argv, res.stderr)


# ---------------------------------------------------------------- with the simulator

def needs_simulator(cluster):
    if not cluster.has_simulator:
        pytest.skip("cluster runs without the simulator (simulator.py missing or "
                    "HLTSIM_NO_SIMULATOR)")


def compute_states(cloud):
    return {s.host: s.state for s in novaclient(cloud).services.list(binary="nova-compute")}


def wait_state(cloud, name, want, limit=20):
    deadline = time.monotonic() + limit
    while compute_states(cloud)[name] != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return compute_states(cloud)[name]


def test_node_agents_drive_compute_service_state(cluster):
    needs_simulator(cluster)
    from hltcloud.cloud.session import Cloud
    cloud = Cloud(cluster.env)
    assert set(compute_states(cloud)) == set(cluster.names)
    name = cluster.names[-1]  # no other test starts its agent
    assert wait_state(cloud, name, "down") == "down"
    assert service(cluster, name, "openstack-nova-compute", "start").returncode == 0
    assert wait_state(cloud, name, "up") == "up"
    assert service(cluster, name, "openstack-nova-compute", "stop").returncode == 0
    assert wait_state(cloud, name, "down") == "down"  # after the simulator's down time


def test_add_image_is_a_real_file_in_glance(cluster):
    needs_simulator(cluster)
    from hltcloud.cloud.session import Cloud
    image_id = cluster.add_image("fixture-test-image", size_mb=2)
    path = cluster.state / "glance" / "images" / image_id
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                          capture_output=True, text=True, check=True).stdout
    assert '"format": "qcow2"' in info and '"virtual-size": 2097152' in info
    image = Cloud(cluster.env).glance().get(f"/v2/images/{image_id}").json()
    assert (image["name"], image["status"], image["size"]) == \
        ("fixture-test-image", "active", path.stat().st_size)


def test_run_tool_reaches_nodes_and_cloud(cluster):
    """The real tool, with the fixture's env only: enable starts daemons on the nodes."""
    needs_simulator(cluster)
    name = cluster.names[1]
    res = cluster.run_tool("openstack-hlt-manage", "--for-real", "enable", name)
    if res.returncode == 2 and "not implemented" in res.stderr + res.stdout:
        pytest.skip("openstack-hlt-manage is still a stub")
    assert res.returncode == 0, res.stdout + res.stderr
    assert cluster.service_running(name, "openstack-nova-compute")
    assert not cluster.service_running(cluster.names[0], "openstack-nova-compute")
