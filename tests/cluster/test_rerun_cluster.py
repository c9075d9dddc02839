"""Re-run what failed (issue 13, part 1) on the simulated cluster: a run with two unreachable
nodes prints the command that re-runs it on those two (@FILE in place of the hosts); after
the nodes come back that command exits 0 and touches only them. Also: --failed-hosts and
--ok-hosts files, Ctrl-C, and a link planted where the list goes."""
import os
import pwd
import shlex
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from hltcloud.ops import rerun
from hltcloud.hostlist import fold
from helpers import (base_file, boot_on, clear_log, interrupt, interrupt_while_waiting, mutations, requests,
                     service, start_compute)

REPO = Path(__file__).resolve().parents[2]
INSTANCES = "/var/lib/nova/instances"
RERUN = "Re-run on the "


def rerun_argv(stdout, count):
    """The re-run line (the last line): its words."""
    last = stdout.splitlines()[-1]
    assert last.startswith(f"{RERUN}{count} failed host(s): "), stdout
    return shlex.split(last.split(": ", 1)[1])


def listed(path):
    """The hosts of a list file (comments skipped), after checking it is private."""
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    text = Path(path).read_text()
    assert text.startswith("# hosts that "), text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def run(argv, cluster, timeout=180):
    return subprocess.run(argv, env=cluster.env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_manage_enable_rerun_touches_only_the_failed_hosts(cluster, nova):
    hosts = cluster.names[:4]
    down = [hosts[1], hosts[3]]
    for host in down:
        cluster.fault(host, "down")
    res = cluster.run_tool("openstack-hlt-manage", "--for-real", "enable", fold(hosts))
    assert res.returncode == 1, res.stdout + res.stderr
    argv = rerun_argv(res.stdout, 2)
    # Nova lists them enabled already: the re-run is reconcile, which finishes the enable
    assert argv[:-1] == [str(REPO / "bin" / "openstack-hlt-manage"), "--for-real", "reconcile"]
    assert argv[-1].startswith("@")
    path = argv[-1][1:]  # no --failed-hosts: a file in a new private directory
    info = os.lstat(os.path.dirname(path))
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert listed(path) == down
    for host in down:
        cluster.fault(host, "up")
    cluster.stop_node_daemons()
    clear_log(cluster)
    again = run(argv, cluster)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "All commands executed successfully."
    ids = {service(nova, host).id: host for host in hosts}
    touched = {ids[sid] for r in mutations(requests(cluster)) for sid in ids if sid in r["path"]}
    assert touched == set(down)
    for host in hosts:
        assert cluster.service_running(host, "openstack-nova-compute") is (host in down)


def test_wave_rerun_with_both_lists(cluster, tmp_path):
    source = tmp_path / "payload.img"
    source.write_bytes(os.urandom(1024 * 1024))
    dest = f"{INSTANCES}/wave-{uuid.uuid4().hex[:12]}"
    hosts = cluster.names[:4]
    down = [hosts[0], hosts[2]]
    good = [h for h in hosts if h not in down]
    failed, ok = tmp_path / "failed.txt", tmp_path / "ok.txt"
    for host in down:
        cluster.fault(host, "down")
    switches = ["--timeout", "3", "--tries", "1", "--failed-hosts", str(failed),
                "--ok-hosts", str(ok)]
    res = cluster.run_tool("rsync-wave.py", *switches, str(source), dest, *hosts, timeout=90)
    assert res.returncode == 1, res.stdout + res.stderr
    argv = rerun_argv(res.stdout, 2)
    assert argv == [str(REPO / "bin" / "rsync-wave.py"), *switches, str(source), dest, f"@{failed}"]
    assert (listed(failed), listed(ok)) == (down, good)
    node_file = {h: cluster.node_dir(h) / Path(dest).relative_to("/var/lib/nova") for h in hosts}
    before = {h: node_file[h].stat().st_ino for h in good}
    for host in down:
        cluster.fault(host, "up")
    again = run(argv, cluster)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "All 2 host(s) have the file."
    assert {h: node_file[h].stat().st_ino for h in good} == before  # not copied again
    assert all(node_file[h].read_bytes() == source.read_bytes() for h in down)
    assert (listed(failed), listed(ok)) == ([], down)  # the re-run's own lists


def test_prefill_rerun_converts_only_on_the_failed_hosts(cluster):
    image_id = cluster.add_image("rerun-img", size_mb=2)
    hosts = cluster.names[:4]
    down = [hosts[1], hosts[2]]
    for host in down:
        cluster.fault(host, "down")
    res = cluster.run_tool("openstack-prefill-cache", "--timeout", "3", "rerun-img",
                           ",".join(hosts), timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    argv = rerun_argv(res.stdout, 2)
    assert argv[:-1] == [str(REPO / "bin" / "openstack-prefill-cache"), "--timeout", "3",
                         "rerun-img"]
    assert listed(argv[-1][1:]) == down
    good = [h for h in hosts if h not in down]
    before = {h: base_file(cluster, h, image_id).stat().st_ino for h in good}
    for host in down:
        cluster.fault(host, "up")
    again = run(argv, cluster)
    assert again.returncode == 0, again.stdout + again.stderr
    started = [l.split(":")[0] for l in again.stdout.splitlines()
               if l.endswith(": Started image conversion")]
    assert sorted(started) == down
    assert {h: base_file(cluster, h, image_id).stat().st_ino for h in good} == before
    assert all(base_file(cluster, h, image_id).exists() for h in down)


def test_interrupted_run_lists_interrupted_and_not_started_hosts(cluster, nova, tmp_path):
    a, b = cluster.names[:2]
    start_compute(cluster, nova, [a])
    stuck, = boot_on(cluster, nova, a, 1)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    failed = tmp_path / "failed.txt"
    code, out = interrupt_while_waiting(
        cluster, ["--for-real", "--vm-timeout", "120", "--failed-hosts", str(failed),
                  "disable", a, b])
    assert code == 130, out
    assert listed(failed) == [a, b]
    assert out[-1] == (f"{RERUN}2 failed host(s): " + shlex.join(
        [str(REPO / "bin" / "openstack-hlt-manage"), "--for-real", "--vm-timeout", "120",
         "--failed-hosts", str(failed), "disable", f"@{failed}"]))


def test_wave_interrupted_counts_every_host_failed(cluster, tmp_path):
    source = tmp_path / "big.img"
    source.write_bytes(os.urandom(16 * 1024 * 1024))
    dest = f"{INSTANCES}/wave-{uuid.uuid4().hex[:12]}"
    hosts = cluster.names[:3]
    for name in hosts:
        cluster.shape(name, "20mbit")
    failed = tmp_path / "failed.txt"
    run = interrupt([str(REPO / "bin" / "rsync-wave.py"), "--failed-hosts", str(failed),
                     str(source), dest, *hosts], cluster.env, settle=3)
    out, err = run.out, run.err
    assert run.status == 130, out + err
    assert listed(failed) == hosts
    assert out.splitlines()[-1].endswith(f" {dest} @{failed}")


# ------------------------------------------------------------------ the list file itself

@pytest.fixture
def sticky_dir():
    """A world-writable sticky directory like /tmp, that the user nobody can reach."""
    path = tempfile.mkdtemp(dir="/tmp", prefix="hltcloud-sticky-")
    os.chmod(path, 0o1777)
    try:
        yield Path(path)
    finally:
        subprocess.run(["rm", "-rf", "--", path], check=False)


def plant_link(link, target):
    """LINK -> TARGET, made by the user nobody."""
    subprocess.run(["ln", "-s", str(target), str(link)], check=True, user="nobody")
    assert os.lstat(link).st_uid == pwd.getpwnam("nobody").pw_uid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the user nobody plants the link)")
def test_a_planted_link_is_replaced_never_followed(sticky_dir, tmp_path):
    precious = tmp_path / "precious"
    precious.write_text("root's own file\n")
    link = sticky_dir / "ok.txt"
    plant_link(link, precious)
    source = tmp_path / "payload"
    source.write_bytes(b"x")
    res = subprocess.run([str(REPO / "bin" / "rsync-wave.py"), "--dry-run", "--ok-hosts",
                          str(link), str(source), "/var/lib/nova/instances/x", "cn[01-02].internal"],
                         capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "HLTCLOUD_CONFIG"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert precious.read_text() == "root's own file\n"
    assert listed(link) == ["cn01.internal", "cn02.internal"]  # a regular file of root now
    assert os.lstat(link).st_uid == 0
    # The library call the tools use, for a failed-hosts list, the same way.
    failed = sticky_dir / "failed.txt"
    plant_link(failed, precious)
    rerun.write_list(str(failed), ["cn03.internal"], "hosts that failed: test")
    assert precious.read_text() == "root's own file\n" and listed(failed) == ["cn03.internal"]
    assert [p.name for p in sticky_dir.iterdir() if p.name.startswith(".")] == []  # no temporary left
