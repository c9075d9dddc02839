"""openstack-prefill-cache and rsync-wave.py parts that need no cluster: cache names, the
validity check of a cached copy, Glance checksums, and the remote scripts run for real in a
local shell (they are plain sh)."""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hltcloud.prefill import cache_state
from hltcloud import config
from hltcloud.cloud import glance as glance_image
from hltcloud.prefill import run as prefill
from hltcloud.proc import runner
from hltcloud.node.scripts import CACHE_STATE_SCRIPT

REPO = Path(__file__).resolve().parents[3]


def test_cache_name_is_sha1_of_the_image_id():
    image_id = "58853970-f8ac-41d0-9255-8a6d3e3b85dc"
    assert prefill.cache_name(image_id) == hashlib.sha1(image_id.encode()).hexdigest()


def make_plan(tmp_path, owner=None, fmt="qcow2", size=4 << 20):
    conf = tmp_path / "hltcloud.conf"
    conf.write_text(f"[paths]\ninstances_dir = {tmp_path}/instances\n")
    (tmp_path / "instances").mkdir()
    cfg = config.load(str(conf))
    owner = owner or f"{os.getuid()}:{os.getgid()}"
    return prefill.Plan(cfg, "0b4fcd34-1c8b-4a0f-9d1e-7a1f1e2b3c4d", fmt, size, owner)


def cache_state_here(plan):
    """The node's read-only state script, run in a local shell for PLAN's cache name."""
    res = subprocess.run(["sh", "-c", CACHE_STATE_SCRIPT, "t", plan.base_dir,
                          Path(plan.final).name, ""], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return cache_state.parse("here", res.stdout)


def test_valid_cache_means_a_raw_file_of_the_image_virtual_size(tmp_path):
    plan = make_plan(tmp_path)
    base = Path(plan.base_dir)
    base.mkdir()
    assert not plan.is_valid_cache(cache_state_here(plan))  # missing
    Path(plan.final).write_bytes(os.urandom(4 << 20))
    assert plan.is_valid_cache(cache_state_here(plan))
    Path(plan.final).write_bytes(os.urandom(1000))
    assert not plan.is_valid_cache(cache_state_here(plan))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", plan.final, "4M"], check=True)
    assert not plan.is_valid_cache(cache_state_here(plan))  # a qcow2 header: not raw
    os.unlink(plan.final)
    (tmp_path / "elsewhere").write_bytes(os.urandom(4 << 20))
    os.symlink(tmp_path / "elsewhere", plan.final)
    assert not plan.is_valid_cache(cache_state_here(plan))  # a link, never followed
    assert not plan.is_valid_cache(cache_state.State("h", reachable=False, error="ssh: down"))
    assert plan.final == f"{tmp_path}/instances/_base/{prefill.cache_name(plan.image_id)}"
    assert plan.transfer == f"{tmp_path}/instances/hlt-glance-cache-{plan.image_id}"


def qcow2(path, size_mb=4):
    raw = path.with_suffix(".raw")
    raw.write_bytes(os.urandom(size_mb << 20))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
                   check=True)
    return raw


def convert(plan):
    """The conversion script as the node runs it, for the copy as it is now."""
    copy = Path(plan.transfer)
    script = plan.convert_script(copy.stat().st_size, hashlib.sha1(copy.read_bytes()).hexdigest())
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True)


def test_convert_script_writes_raw_via_temp_name_and_removes_the_copy(tmp_path):
    plan = make_plan(tmp_path)
    raw = qcow2(Path(plan.transfer))
    res = convert(plan)
    assert res.returncode == 0, res.stderr
    assert Path(plan.final).read_bytes() == raw.read_bytes()
    assert not Path(plan.transfer).exists()
    assert [p.name for p in Path(plan.base_dir).iterdir()] == [Path(plan.final).name]
    assert plan.is_valid_cache(cache_state_here(plan))


def test_failed_conversion_leaves_no_final_and_no_temp_file(tmp_path):
    plan = make_plan(tmp_path)
    Path(plan.transfer).write_bytes(b"not a qcow2 image" * 100)
    res = convert(plan)
    assert res.returncode != 0 and "qemu-img" in res.stderr
    assert not Path(plan.final).exists() and not Path(plan.transfer).exists()
    assert list(Path(plan.base_dir).iterdir()) == []
    assert cache_state_here(plan).cache == "missing"


def test_watched_script_dies_with_its_connection(tmp_path):
    """What runs on a node when our ssh goes away (Ctrl-C): the whole group is killed."""
    marker = tmp_path / "finished"
    script = f"sleep 30; touch {marker}"
    proc = subprocess.Popen(["sh", "-c", runner.watched(script)], stdin=subprocess.PIPE,
                            start_new_session=True)
    time.sleep(0.5)
    assert proc.poll() is None
    proc.stdin.close()  # as sshd does when the connection closes
    assert proc.wait(10) != 0
    time.sleep(0.3)
    assert living_in_group(proc.pid) == [] and not marker.exists()


def living_in_group(pgid):
    """Processes of group PGID that are not zombies (orphans are reaped by init, later)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def test_watched_script_returns_its_status():
    proc = subprocess.Popen(["sh", "-c", runner.watched("echo hi; exit 7")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    out = proc.stdout.read()
    assert (proc.wait(10), out) == (7, "hi\n")
    proc.stdin.close()


def image_record(data, **extra):
    record = {"id": "x", "name": "img", "size": len(data),
              "checksum": hashlib.md5(data).hexdigest(), "os_hash_algo": "sha512",
              "os_hash_value": hashlib.sha512(data).hexdigest()}
    record.update(extra)
    return record


@pytest.mark.parametrize("change, problem", [
    ({}, ""),
    ({"size": 5}, "size 4, Glance records 5"),
    ({"checksum": "0" * 32}, "md5 "),
    ({"os_hash_value": "0" * 128}, "sha512 differs"),
    ({"checksum": None, "os_hash_value": None}, "no checksum"),
])
def test_glance_checksums(change, problem):
    data = b"data"
    digests = glance_image.Digests(image_record(data, **change))
    digests.update(data)
    if problem:
        assert problem in digests.mismatch()
    else:
        assert digests.mismatch() == ""
        assert digests.sha1() == hashlib.sha1(data).hexdigest()


def test_store_copy_check(tmp_path):
    path = tmp_path / "img"
    path.write_bytes(b"payload")
    assert glance_image.verify_store_copy(str(path), image_record(b"payload")) == \
        hashlib.sha1(b"payload").hexdigest()
    with pytest.raises(glance_image.ImageError, match="is corrupt .*nothing sent") as err:
        glance_image.verify_store_copy(str(path), image_record(b"Payload"))
    assert err.value.exit_status == 1


@pytest.fixture
def tool_env(tmp_path):
    conf = tmp_path / "site.conf"
    conf.write_text("[ssh]\nconnect_timeout = 2\n")
    return {**os.environ, "HLTCLOUD_CONFIG": str(conf)}


@pytest.mark.parametrize("args, message", [
    (["SRC", "/tmp/x", "cn[2-1]"], "reversed range"),
    (["SRC", "/tmp/x", "cn1;reboot"], "cn1;reboot"),
    (["SRC", "tmp/x", "cn1"], "DEST must be an absolute"),
    (["SRC", "/tmp/a b", "cn1"], "DEST must be an absolute"),
    (["/no/such/file", "/tmp/x", "cn1"], "SOURCE is not a readable file"),
    (["--tries", "0", "SRC", "/tmp/x", "cn1"], "at least 1"),
    (["--ssh-config", "rel/cfg", "SRC", "/tmp/x", "cn1"], "absolute path"),
])
def test_wave_bad_input_one_line_exit_2(tmp_path, tool_env, args, message):
    source = tmp_path / "src"
    source.write_text("x")
    args = [str(source) if a == "SRC" else a for a in args]
    res = subprocess.run([sys.executable, str(REPO / "bin" / "rsync-wave.py"), *args],
                         env=tool_env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1
    assert message in res.stderr


@pytest.mark.parametrize("args, code, message", [
    (["img", "cn[2-1]"], 2, "reversed range"),
    (["--ssh-config", "rel/cfg", "img", "cn1"], 2, "absolute path"),
    (["--timeout", "0", "img", "cn1"], 2, "at least 1"),
    (["img", "cn1"], 3, "missing OpenStack credentials"),
])
def test_prefill_bad_input_one_line(tool_env, args, code, message):
    env = {k: v for k, v in tool_env.items() if not k.startswith("OS_")}
    res = subprocess.run([sys.executable, str(REPO / "bin" / "openstack-prefill-cache"), *args],
                         env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == code, res.stdout + res.stderr
    assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1
    assert message in res.stderr
