"""openstack-prefill-cache on the simulated cluster: a real qcow2 image in the simulated
Glance ends up as a raw file in each node's _base, named by the sha1 of the image id."""
import json
import pwd
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (base_file, config_with, eventually, interrupt, poll, processes_mentioning,
                     sha1_of)

from hltcloud.prefill import run as prefill

TOOL = "openstack-prefill-cache"
INSTANCES = "/var/lib/nova/instances"


def instances_leftovers(cluster, node):
    """Anything but _base in instances/, and hidden files in _base."""
    inst = cluster.node_dir(node) / "instances"
    return [p.name for p in inst.iterdir() if p.name != "_base"] + \
        [p.name for p in (inst / "_base").glob(".*")]


def store_file(cluster, image_id):
    return cluster.state / "glance" / "images" / image_id


def raw_sha1_on_head(cluster, image_id, tmp_path):
    raw = tmp_path / f"{image_id}.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                    str(store_file(cluster, image_id)), str(raw)], check=True)
    return sha1_of(raw)


def test_image_is_cached_raw_on_each_node(cluster, tmp_path):
    image_id = cluster.add_image("CentOS6-build12", size_mb=8)
    targets, others = cluster.names[:4], cluster.names[4:]
    conf = config_with(cluster, tmp_path, image_owner="nobody:nogroup")
    res = cluster.run_tool(TOOL, "--config", conf, "CentOS6-build12", ",".join(targets))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"Getting image CentOS6-build12 (id={image_id})"
    order = ["Chain transferring on every node",
             f"transferring {store_file(cluster, image_id)} to 4 host(s)...",
             "Converting image in parallel on all hosts", "Done!"]
    assert [l for l in lines if l in order] == order
    for node in targets:
        assert f"{node}: Started image conversion" in lines
        assert f"{node}: Image conversion done" in lines
    expected = raw_sha1_on_head(cluster, image_id, tmp_path)
    nobody = pwd.getpwnam("nobody").pw_uid
    for node in targets:
        cached = base_file(cluster, node, image_id)
        assert sha1_of(cached) == expected
        assert cached.stat().st_uid == nobody
        info = cluster.ssh(node, ["qemu-img", "info", "--output=json",
                                  f"/var/lib/nova/instances/_base/{cached.name}"])
        assert json.loads(info.stdout)["format"] == "raw", info.stderr
        assert instances_leftovers(cluster, node) == []  # transferred copy removed
    for node in others:
        assert not base_file(cluster, node, image_id).exists()
    assert lines[-1] == "All commands executed successfully."


def test_second_run_skips_cached_hosts_and_redoes_a_bad_copy(cluster):
    image_id = cluster.add_image("img-twice", size_mb=4)
    nodes = cluster.names[:3]
    first = cluster.run_tool(TOOL, image_id, *nodes)  # by id, hosts as separate words
    assert first.returncode == 0, first.stdout + first.stderr
    inodes = {n: base_file(cluster, n, image_id).stat().st_ino for n in nodes}
    again = cluster.run_tool(TOOL, "img-twice", ",".join(nodes))
    assert again.returncode == 0, again.stdout + again.stderr
    for node in nodes:
        assert f"[ OK ] {node}: already cached, skipped" in again.stdout
        assert base_file(cluster, node, image_id).stat().st_ino == inodes[node]
    assert "\ntransferring " not in again.stdout and "Started image conversion" not in again.stdout
    assert "3 of 3 host(s) have the image cached (3 already, 0 now)" in again.stdout
    # A truncated cache file is not "valid": it is converted again.
    broken = base_file(cluster, nodes[1], image_id)
    good = sha1_of(base_file(cluster, nodes[0], image_id))
    with open(broken, "r+b") as handle:
        handle.truncate(1000)
    third = cluster.run_tool(TOOL, "img-twice", ",".join(nodes))
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"{nodes[1]}: already cached" not in third.stdout
    assert f"{nodes[1]}: Image conversion done" in third.stdout
    assert sha1_of(broken) == good


def test_corrupt_glance_copy_is_refused_and_nothing_sent(cluster):
    image_id = cluster.add_image("rotten", size_mb=2)
    store = store_file(cluster, image_id)
    data = bytearray(store.read_bytes())
    data[-100] ^= 0x55
    store.write_bytes(bytes(data))
    res = cluster.run_tool(TOOL, "rotten", ",".join(cluster.names))
    assert res.returncode == 1, res.stdout + res.stderr
    assert re.search(rf"Glance store copy {re.escape(str(store))} of image rotten is corrupt "
                     r"\(md5 \w+, Glance records \w+\): nothing sent", res.stderr), res.stderr
    assert "\ntransferring " not in res.stdout
    for node in cluster.names:
        assert not base_file(cluster, node, image_id).exists()
        assert instances_leftovers(cluster, node) == []


def test_without_store_copy_the_image_is_downloaded(cluster, tmp_path):
    image_id = cluster.add_image("remote-only", size_mb=3)
    empty_store = tmp_path / "store"
    empty_store.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    conf = config_with(cluster, tmp_path, glance_images_dir=str(empty_store))
    env = {**cluster.env, "TMPDIR": str(scratch)}
    res = subprocess.run([str(Path(__file__).resolve().parents[2] / "bin" / TOOL), "--config",
                          conf, "remote-only", cluster.names[0], cluster.names[1]],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "downloading it through the API" in res.stdout
    expected = raw_sha1_on_head(cluster, image_id, tmp_path)
    for node in cluster.names[:2]:
        assert sha1_of(base_file(cluster, node, image_id)) == expected
    assert list(scratch.iterdir()) == []  # the download is removed afterwards


def test_node_down_mid_way_fails_alone(cluster):
    image_id = cluster.add_image("partial", size_mb=8)
    victim = cluster.names[-1]  # served in the last round of the wave
    for node in cluster.names:
        cluster.shape(node, "50mbit")  # slow enough to strike while the wave runs
    proc = subprocess.Popen([str(Path(__file__).resolve().parents[2] / "bin" / TOOL),
                             "--timeout", "3", "--tries", "2", "partial", *cluster.names],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        poll(lambda: any(list((cluster.node_dir(n) / "instances").glob(".hlt-glance-cache-*"))
                         for n in cluster.names), 60)
        cluster.fault(victim, "down")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    assert "Chain transferring on every node" in out  # it was up for the cache check
    assert re.search(rf"^\[FAIL\] \S+ --> {re.escape(victim)}: ", out, re.M), out
    assert f"Failed on 1 host(s): {victim}" in out
    for node in cluster.names:
        assert base_file(cluster, node, image_id).exists() == (node != victim)


def test_unreachable_at_start_is_reported_without_transfer(cluster):
    cluster.add_image("img-down", size_mb=1)
    down = cluster.names[1]
    cluster.fault(down, "down")
    res = cluster.run_tool(TOOL, "img-down", ",".join(cluster.names[:3]), timeout=90)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"[FAIL] {down}: cannot check its cache: " in res.stdout
    assert "to 2 host(s)..." in res.stdout
    assert f"Failed on 1 host(s): {down}" in res.stdout


def test_dry_run_changes_nothing(cluster):
    image_id = cluster.add_image("dry", size_mb=1)
    res = cluster.run_tool(TOOL, "--dry-run", "dry", ",".join(cluster.names))
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(re.findall(r"^\[DRY \] \S+ --> \S+$", res.stdout, re.M)) == len(cluster.names)
    assert len(re.findall(r"^\[DRY \] \S+: qemu-img convert ", res.stdout, re.M)) == \
        len(cluster.names)
    assert res.stdout.splitlines()[-1] == "Dry run: nothing was changed."
    for node in cluster.names:
        assert not base_file(cluster, node, image_id).exists()
        assert instances_leftovers(cluster, node) == []


def test_image_lookup_errors(cluster):
    node = cluster.names[0]
    res = cluster.run_tool(TOOL, "no-such-image", node)
    assert (res.returncode, res.stderr.strip()) == \
        (2, "openstack-prefill-cache: Cannot find image with name no-such-image")
    first = cluster.add_image("twin", size_mb=1)
    second = cluster.add_image("twin", size_mb=1)
    res = cluster.run_tool(TOOL, "twin", node)
    assert res.returncode == 2
    line, = res.stderr.splitlines()  # one line, as every error
    assert line.startswith("openstack-prefill-cache: 2 images are named twin; use an id: ")
    listed = re.findall(r"(\S+) \(created (\S+)\)", line)
    assert sorted(i for i, _ in listed) == sorted([first, second])
    queued = cluster.add_image("not-yet", size_mb=1)
    cluster.sim("POST", "/sim/images", {"name": "not-yet-2", "file": queued, "status": "queued",
                                        "id": queued, "disk_format": "qcow2"})
    res = cluster.run_tool(TOOL, "not-yet-2", node)
    assert res.returncode == 2 and "is not active yet (status: queued)" in res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize("hosts, message", [
    ("cn[03-01].internal", "reversed range"),
    ("cn01.internal;reboot", "cn01.internal;reboot"),
    ("cn[01-", "cn[01-"),
])
def test_bad_host_lists(cluster, hosts, message):
    cluster.add_image("hosts-img", size_mb=1)
    res = cluster.run_tool(TOOL, "hosts-img", hosts)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr
    assert res.stdout == ""


def test_sigint_stops_everything_and_leaves_no_final_file(cluster):
    image_id = cluster.add_image("interrupted", size_mb=24)
    for node in cluster.names:
        cluster.shape(node, "20mbit")  # ~10 s per copy: the interrupt lands mid-transfer
    run = interrupt([str(Path(__file__).resolve().parents[2] / "bin" / TOOL), "interrupted",
                     *cluster.names], cluster.env,
                    when=lambda: any(instances_leftovers(cluster, n) for n in cluster.names),
                    settle=1)
    out, err = run.out, run.err
    assert run.status == 130, out + err
    assert "Chain transferring on every node" in out and "interrupted" in err
    # The node side ends when its session closes; give it the few seconds that takes.
    started = time.monotonic()
    eventually(lambda: processes_mentioning(image_id), 10)
    lingered = time.monotonic() - started
    assert processes_mentioning(image_id) == [], f"still there after {lingered:.1f} s"
    for node in cluster.names:
        assert not base_file(cluster, node, image_id).exists()
        assert instances_leftovers(cluster, node) == []


def test_prefill_under_a_hostile_nova_user(cluster, hostile_nova, tmp_path):
    """Issue 19: the nova user of every node races the predictable names of a prefill (the
    transfer copy, the cache file, _base itself: links to a root directory, files of its own,
    see tests/simcluster/hostile_nova.py). A host reported done holds the right raw file of
    image_owner's in the real _base; any other is reported failed in one line; nothing of
    root's lands anywhere else, and the watched root directory of every node is unchanged."""
    image_id = cluster.add_image("hostile-img", size_mb=3)
    dest = f"{INSTANCES}/_base/{prefill.cache_name(image_id)}"
    hostile_nova.target(f"{INSTANCES}/{prefill.CACHE_PREFIX}{image_id}", dest)
    conf = config_with(cluster, tmp_path, image_owner=hostile_nova.owner)
    res = cluster.run_tool(TOOL, "--config", conf, "--timeout", "5", "--tries", "2",
                           image_id, *cluster.names)
    print(res.stdout, res.stderr)
    done = [n for n in cluster.names if f"{n}: Image conversion done" in res.stdout.splitlines()]
    owner = (hostile_nova.uid, hostile_nova.gid)
    assert hostile_nova.problems(res, dest, done, owner,
                                 raw_sha1_on_head(cluster, image_id, tmp_path)) == []
