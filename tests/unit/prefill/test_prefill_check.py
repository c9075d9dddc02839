"""openstack-prefill-cache --check: one table (or JSON) of what each host holds in Nova's
image cache, read only. The node script is also run here in a local shell against planted
files (links, fifos, other formats' headers), and its parsing is checked without nodes."""
import json
import os
import pwd
import grp
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hltcloud.prefill import cache_state
from hltcloud.prefill import cli as prefill_cli
from hltcloud.hostlist import fold
from hltcloud.node.scripts import CACHE_STATE_SCRIPT
from hltcloud.errors import UsageError
from helpers import base_file, config_with

REPO = Path(__file__).resolve().parents[3]
TOOL = "openstack-prefill-cache"
NOVA_CONF = "/var/lib/nova/nova.conf"  # inside a node: in its own node dir
KEEP_NEW = "[DEFAULT]\ndebug = True\n[image_cache]\nremove_unused_base_images = False\n"
KEEP_OLD = "[DEFAULT]\nremove_unused_base_images = false\n"
# [image_cache] wins over [DEFAULT] (Nova 21+); a commented line counts for nothing.
PURGE = ("[DEFAULT]\nremove_unused_base_images = False\n[image_cache]\n"
         "#remove_unused_base_images = False\nremove_unused_base_images = True\n")


# ---------------------------------------------------------------- on the simulated cluster

def table_rows(text):
    """The body rows of the table in TEXT, as lists of stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def snapshot(cluster, nodes):
    """Everything under each node's /var/lib/nova: name, type, size, owner, mode, mtime."""
    seen = {}
    for node in nodes:
        for root, dirs, files in os.walk(cluster.node_dir(node)):
            for name in dirs + files + ["."]:
                st = os.lstat(os.path.join(root, name))
                seen[os.path.join(root, name)] = (st.st_mode, st.st_size, st.st_uid,
                                                  st.st_gid, st.st_mtime_ns, st.st_ino)
    return seen


def only_reads(cluster):
    """The simulator's request log since it was cleared holds reads (and the token) only."""
    requests = cluster.sim("GET", "/sim/requests")
    return [(r["method"], r["path"]) for r in requests
            if r["method"] != "GET" and not r["path"].endswith("/auth/tokens")]


def prepare(cluster, tmp_path, name="checked"):
    """Six hosts, one case each: good, missing, wrong size, wrong owner, purge on, a link.
    Returns (image id, config, expected rows)."""
    image_id = cluster.add_image(name, size_mb=4)
    conf = config_with(cluster, tmp_path, nova_conf=NOVA_CONF)
    good, missing, short, owned, purged, linked = cluster.names[:6]
    first = cluster.run_tool(TOOL, "--config", conf, name,
                             ",".join(h for h in cluster.names[:6] if h != missing))
    assert first.returncode == 0, first.stdout + first.stderr
    for node in cluster.names[:6]:
        text = KEEP_NEW if node == good else PURGE if node == purged else KEEP_OLD
        (cluster.node_dir(node) / "nova.conf").write_text(text)
    size = 4 << 20
    with open(base_file(cluster, short, image_id), "r+b") as handle:
        handle.truncate(1 << 20)
    os.chown(base_file(cluster, owned, image_id), pwd.getpwnam("nobody").pw_uid,
             grp.getgrnam("nogroup").gr_gid)
    # A link to a perfectly good copy: still "a link" (never followed, never good).
    cached = base_file(cluster, linked, image_id)
    shutil.move(cached, cluster.node_dir(linked) / "elsewhere")
    cached.symlink_to(f"{NOVA_CONF.rsplit('/', 1)[0]}/elsewhere")
    rows = [[good, "yes", "raw", str(size), "root:root", "off", "ok"],
            [missing, "no", "", "", "", "off", "not cached"],
            [short, "yes", "raw", str(1 << 20), "root:root", "off", "wrong size"],
            [owned, "yes", "raw", str(size), "nobody:nogroup", "off", "wrong owner"],
            [purged, "yes", "raw", str(size), "root:root", "on",
             "Nova purges unused base images"],
            [linked, "a link", "", "", "", "off", "a link"]]
    return image_id, conf, rows


def test_check_tells_each_host_and_changes_nothing(cluster, tmp_path):
    image_id, conf, rows = prepare(cluster, tmp_path)
    nodes = [row[0] for row in rows]
    before = snapshot(cluster, nodes)
    cluster.sim("DELETE", "/sim/requests")
    res = cluster.run_tool(TOOL, "--config", conf, "--check", "checked", ",".join(nodes))
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"Checking image checked (id={image_id}) on 6 host(s): "
                               f"virtual size {4 << 20} bytes, from qemu-img info of the "
                               "Glance store copy ")
    assert table_rows(res.stdout) == rows
    assert f"Failed on 5 host(s): {fold(nodes[1:])}" in res.stdout
    assert f"  {nodes[3]}: wrong owner" in lines
    assert "1 of 6 host(s) have a good copy of the image in " in res.stdout
    assert snapshot(cluster, nodes) == before
    assert only_reads(cluster) == []

    as_json = cluster.run_tool(TOOL, "--config", conf, "--check", "--json", "checked",
                               ",".join(nodes))
    assert as_json.returncode == 1, as_json.stderr
    data = json.loads(as_json.stdout)  # the data alone on stdout, messages on stderr
    assert [(d["host"], d["ok"], d["problems"]) for d in data] == \
        [(r[0], r[-1] == "ok", [] if r[-1] == "ok" else [r[-1]]) for r in rows]
    assert data[0] == {"host": nodes[0], "ok": True, "reachable": True, "cached": "file",
                       "format": "raw", "virtual_size": 4 << 20, "file_size": 4 << 20,
                       "expected_virtual_size": 4 << 20, "owner": "root:root",
                       "purge": False, "purge_setting": "remove_unused_base_images = False",
                       "problems": []}
    assert (data[4]["purge"], data[5]["cached"]) == (True, "link")
    assert "Failed on 5 host(s)" in as_json.stderr
    assert snapshot(cluster, nodes) == before

    # Only the good host: exit 0.
    alone = cluster.run_tool(TOOL, "--config", conf, "--check", "checked", nodes[0])
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert table_rows(alone.stdout) == rows[:1]
    assert alone.stdout.endswith("All commands executed successfully.\n")
    assert only_reads(cluster) == []


def test_a_prefill_repairs_what_the_check_finds(cluster, tmp_path):
    """Missing, short, wrongly owned: a prefill of those hosts converts the image again (none
    is "already cached"), and the check is then happy with them. A link at the cache name is
    refused (issue 19: nothing is placed over a link), for the operator to remove."""
    image_id, conf, rows = prepare(cluster, tmp_path, name="repair")
    bad = [row[0] for row in rows if row[-1] in ("not cached", "wrong size", "wrong owner")]
    linked = rows[-1][0]
    assert len(bad) == 3 and rows[-1][-1] == "a link"
    res = cluster.run_tool(TOOL, "--config", conf, "repair", *bad, linked)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "already cached" not in res.stdout
    assert all(f"{node}: Image conversion done" in res.stdout for node in bad)
    assert f"[FAIL] {linked}: image conversion failed: refusing: /var/lib/nova/instances/_base/" \
           f"{base_file(cluster, linked, image_id).name} is a link or a directory" in res.stdout
    again = cluster.run_tool(TOOL, "--config", conf, "--check", "repair", rows[0][0], *bad)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [row[-1] for row in table_rows(again.stdout)] == ["ok"] * 4


def test_unreachable_host_is_a_failed_row(cluster, tmp_path):
    image_id = cluster.add_image("reach", size_mb=1)
    conf = config_with(cluster, tmp_path, nova_conf=NOVA_CONF)
    up, down = cluster.names[:2]
    assert cluster.run_tool(TOOL, "--config", conf, "reach", up).returncode == 0
    (cluster.node_dir(up) / "nova.conf").write_text(KEEP_OLD)
    cluster.fault(down, "down")
    res = cluster.run_tool(TOOL, "--config", conf, "--check", "reach", up, down, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    rows = table_rows(res.stdout)
    assert rows[0] == [up, "yes", "raw", str(1 << 20), "root:root", "off", "ok"]
    assert rows[1][:6] == [down, "?", "", "", "", ""]
    assert rows[1][6].startswith("unreachable: ssh: "), rows
    assert f"Failed on 1 host(s): {down}" in res.stdout
    assert base_file(cluster, up, image_id).exists()


def test_without_store_copy_glance_virtual_size_is_used(cluster, tmp_path):
    """No download: Glance's virtual_size stands in for qemu-img info of the store copy."""
    cluster.add_image("no-store", size_mb=2)
    empty = tmp_path / "store"
    empty.mkdir()
    conf = config_with(cluster, tmp_path, nova_conf=NOVA_CONF, glance_images_dir=str(empty))
    node = cluster.names[0]
    (cluster.node_dir(node) / "nova.conf").write_text(KEEP_NEW)
    cluster.sim("DELETE", "/sim/requests")
    res = cluster.run_tool(TOOL, "--config", conf, "--check", "no-store", node)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"virtual size {2 << 20} bytes, from Glance's virtual_size (no store copy at " \
        in res.stdout
    assert table_rows(res.stdout) == [[node, "no", "", "", "", "off", "not cached"]]
    assert not any(r["path"].endswith("/file") for r in cluster.sim("GET", "/sim/requests"))


# ---------------------------------------------------------------- the node script, locally

def state_here(tmp_path, conf_text=KEEP_OLD, timeout=15):
    """Run CACHE_STATE_SCRIPT in a local shell on tmp_path/_base/cache -> State."""
    conf = tmp_path / "nova.conf"
    if conf_text is not None:
        conf.write_text(conf_text)
    res = subprocess.run(["sh", "-c", CACHE_STATE_SCRIPT, "t", str(tmp_path / "_base"), "cache",
                          str(conf)], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return cache_state.parse("here", res.stdout)


def test_script_reports_a_raw_file(tmp_path):
    (tmp_path / "_base").mkdir()
    (tmp_path / "_base" / "cache").write_bytes(os.urandom(3 << 20))
    state = state_here(tmp_path)
    assert (state.cache, state.format, state.virtual_size, state.changed) == \
        ("file", "raw", 3 << 20, False)
    assert state.ids == f"{os.getuid()}:{os.getgid()}" and state.purge is False
    owner = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"
    assert cache_state.problems(state, 3 << 20, owner) == []
    assert cache_state.problems(state, 3 << 20, f"{os.getuid()}") == []
    assert cache_state.problems(state, 4 << 20, "nova:nova") == ["wrong size", "wrong owner"]
    with open(tmp_path / "_base" / "cache", "r+b") as handle:  # qemu-img rounds it up again
        handle.truncate((3 << 20) - 100)
    state = state_here(tmp_path)
    assert (state.virtual_size, state.file_size) == (3 << 20, (3 << 20) - 100)
    assert cache_state.problems(state, 3 << 20, owner) == ["wrong size"]


def test_script_never_follows_a_link_nor_blocks_on_a_fifo(tmp_path):
    (tmp_path / "_base").mkdir()
    (tmp_path / "target").write_bytes(b"\0" * 4096)
    (tmp_path / "_base" / "cache").symlink_to(tmp_path / "target")
    assert state_here(tmp_path).cache == "link"
    (tmp_path / "_base" / "cache").unlink()
    os.mkfifo(tmp_path / "_base" / "cache")
    start = time.monotonic()
    state = state_here(tmp_path)
    assert state.cache == "not a regular file" and time.monotonic() - start < 10
    assert cache_state.problems(state, 1, "root") == ["not a regular file, not a file"]
    (tmp_path / "_base" / "cache").unlink()
    assert state_here(tmp_path).cache == "missing"
    shutil.rmtree(tmp_path / "_base")
    assert state_here(tmp_path).cache == f"no directory {tmp_path}/_base"


def test_script_never_lets_qemu_img_probe_a_planted_header(tmp_path):
    """A vmdk descriptor naming a fifo as its extent: a probing `qemu-img info` would open
    (and here hang on) the fifo, or read any file root can; -f raw reads nothing of it."""
    (tmp_path / "_base").mkdir()
    os.mkfifo(tmp_path / "extent")
    descriptor = ("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                  'createType="monolithicFlat"\n'
                  f'RW 8 FLAT "{tmp_path}/extent" 0\n')
    (tmp_path / "_base" / "cache").write_text(descriptor)
    state = state_here(tmp_path, timeout=15)
    assert (state.format, state.file_size, state.virtual_size) == ("vmdk", len(descriptor), 512)
    assert cache_state.problems(state, 512, "root:root") == ["vmdk header, not raw",
                                                             "wrong size"]
    qcow2 = tmp_path / "q.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "1M"], check=True)
    shutil.copy(qcow2, tmp_path / "_base" / "cache")
    assert state_here(tmp_path).format == "qcow2"


def test_nova_conf_missing_or_odd(tmp_path):
    (tmp_path / "_base").mkdir()
    state = state_here(tmp_path, conf_text=None)
    assert (state.purge, state.purge_note) == (None, "nova.conf missing")
    assert cache_state.problems(state, 1, "root") == ["not cached", "nova.conf missing"]
    assert state_here(tmp_path, conf_text="[DEFAULT]\n").purge is True  # Nova's default
    odd = state_here(tmp_path, conf_text="[image_cache]\nremove_unused_base_images = maybe\n")
    assert (odd.purge, odd.purge_note) == \
        (None, "remove_unused_base_images = 'maybe' is not a boolean")


@pytest.mark.parametrize("lines, purge", [
    (["[DEFAULT]", "remove_unused_base_images=False"], False),
    (["[DEFAULT]", "remove_unused_base_images: 0"], False),
    (["[Image_Cache]", "remove_unused_base_images = \"off\""], False),  # oslo lower-cases groups
    (["[image_cache]", "remove_unused_base_images = False", "[DEFAULT]",
      "remove_unused_base_images = True"], False),  # [image_cache] wins
    (["[libvirt]", "remove_unused_base_images = False"], True),  # not its section
    (["[DEFAULT]", " remove_unused_base_images = False"], True),  # a continuation line
    (["[DEFAULT]", "remove_unused_base_images_x = False"], True),
    (["[DEFAULT]", "remove_unused_base_images = False", "remove_unused_base_images = yes"], True),
])
def test_purge_setting_as_oslo_config_reads_it(lines, purge):
    assert cache_state.purge_setting({"novaconf_rc": "0"}, lines)[0] is purge


def test_sniff_format():
    assert cache_state.sniff_format((b"QFI\xfb" + b"\0" * 60).hex()) == "qcow2"
    assert cache_state.sniff_format((b"conectix" + b"\0" * 8).hex()) == "vpc"
    assert cache_state.sniff_format((b"\xeb\x63\x90" + b"\0" * 509).hex()) == "raw"  # a boot sector
    assert cache_state.sniff_format("") == "raw"  # an empty file
    assert cache_state.sniff_format("zz") == "unreadable"


@pytest.mark.parametrize("argv, message", [
    (["--check", "--dry-run", "img", "cn1"], "--dry-run cannot go with it"),
    (["--check", "--wave", "img", "cn1"], "--wave cannot go with it"),
    (["--check", "--tries", "3", "img", "cn1"], "--tries cannot go with it"),
    (["--json", "img", "cn1"], "--json needs --check"),
])
def test_useless_combinations_are_refused(argv, message):
    with pytest.raises(UsageError, match=message):
        prefill_cli.parse(argv)
    assert prefill_cli.parse(["--check", "--json", "--timeout", "5", "img", "cn1"]).tries == 3


def test_help_names_check_and_json():
    out = subprocess.run([sys.executable, str(REPO / "bin" / TOOL), "--help"],
                         capture_output=True, text=True).stdout
    assert "--check" in out and "--json" in out and "[--check [--json]]" in out
