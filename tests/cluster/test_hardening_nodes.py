"""Issue 10, node side: the tools run as root on the hypervisors inside directories the nova
user can write. Each attack is played for real by `nobody` (standing for nova: it owns the
node's instances dir and _base here) against a root-only file; afterwards that file is
unchanged and the tool either refused with a clear error or did the job right."""
import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hltcloud.transfer import chain as pipeline
from hltcloud.prefill import run as prefill
from hltcloud.proc import runner
from hltcloud.transfer import wave
from helpers import base_file, config_with, sha1_of

NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}",
             "--clear-groups"]
INSTANCES = "/var/lib/nova/instances"
TOOLS = Path(__file__).resolve().parents[2] / "bin"
SECRET = b"root only: the attacker must neither read, change nor own this\n"

# The attacker, run as nobody. It stops when its stdin closes. Config (JSON, argv[1]):
# dirs: where it works; plant: paths made symlinks to the secret at once; ps: a regex whose
# group(1) matches names of temporary files in command lines of running processes (visible
# to every user): each such NAME+suffix (suffixes) is planted in every dir before the run
# gets there; swap: a regex of entry names: a root's regular file (or directory) there is
# renamed away and replaced: by a symlink to the secret (mode "symlink", directories: to the
# decoy directory), or by nobody's own copy of its content (mode "own").
ATTACKER = r"""
import json, os, re, select, stat, sys, time
cfg = json.loads(sys.argv[1])
counts = {"planted": 0, "swapped": 0}
seen, n = set(), 0
def plant(path, target=cfg["secret"]):
    try:
        os.symlink(target, path)
        counts["planted"] += 1
    except OSError:
        pass
for path in cfg.get("plant", []):
    plant(path)
ps = re.compile(cfg["ps"]) if cfg.get("ps") else None
swap = re.compile(cfg["swap"]) if cfg.get("swap") else None
while not select.select([sys.stdin], [], [], 0)[0]:
    if ps:
        for pid in os.listdir("/proc"):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            for name in ps.findall(cmd):
                if name not in seen:
                    seen.add(name)
                    for d in cfg["dirs"]:
                        for suffix in cfg.get("suffixes", [""]):
                            plant(os.path.join(d, name + suffix))
    for d in cfg["dirs"] if swap else ():
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            if not swap.fullmatch(entry.name) or entry.name.startswith(".stolen-"):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid == os.getuid() or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                continue
            away = os.path.join(d, f".stolen-{os.getpid()}-{n}")
            n += 1
            try:
                os.rename(entry.path, away)
            except OSError:
                continue
            counts["swapped"] += 1
            if stat.S_ISDIR(st.st_mode):
                plant(entry.path, cfg["decoy"])
            elif cfg["mode"] == "own":
                try:
                    data = open(away, "rb").read()
                    with open(entry.path + ".mine", "wb") as mine:
                        mine.write(data)
                    os.rename(entry.path + ".mine", entry.path)
                except OSError:
                    plant(entry.path)
            else:
                plant(entry.path)
    time.sleep(0.002)
print(json.dumps(counts))
"""


class Attacker:
    """The attacker loop as nobody, in the background; stop() ends it (closes its stdin)."""

    def __init__(self, **cfg):
        self.proc = subprocess.Popen([*AS_NOBODY, sys.executable, "-c", ATTACKER, json.dumps(cfg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # its first round (the planted links) is done

    def stop(self):
        try:
            out, _ = self.proc.communicate("", timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def run_tool(argv, env, timeout=60):
    """Run a tool; on a hang, kill its whole group and fail with what it printed."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"hung for {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture
def secret(tmp_path):
    """A root-only file (root, 0600, known content) and an empty root-only directory."""
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    os.chmod(path, 0o600)
    decoy = tmp_path / "decoy"
    decoy.mkdir(mode=0o700)
    return path, decoy


def assert_untouched(secret):
    path, decoy = secret
    st = os.lstat(path)
    assert (path.read_bytes(), st.st_uid, st.st_gid, st.st_mode & 0o7777) == (SECRET, 0, 0, 0o600)
    assert os.listdir(decoy) == [] and os.stat(decoy).st_uid == 0


@pytest.fixture
def nova_dirs(cluster):
    """Give the instances dir and _base of nodes to nobody (nova's part); undone afterwards."""
    given = []

    def give(*nodes):
        for node in nodes:
            inst = cluster.node_dir(node) / "instances"
            for path in (inst, inst / "_base"):
                os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
                given.append(path)
        return [str(cluster.node_dir(n) / "instances") for n in nodes]
    yield give
    for path in given:
        os.chown(path, 0, 0)


# ---------------------------------------------------------------- "--" before every host

def test_ssh_argv_ends_options_before_the_host(tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("")
    ssh = runner.Ssh(str(cfg), "root", 5)
    host = "cn01.internal"

    def ends_options(argv):
        return argv[0] == "ssh" and argv[-3:-1] == ["--", host] and argv.index("--") == len(argv) - 3

    assert ends_options(ssh.argv(host, ["true"]))
    cmds = wave.WaveCommands(ssh, "/srv/src", f"{INSTANCES}/img", 10, ("sha1", "ab" * 20), 10)
    for argv in (cmds.check_and_rename(host), cmds.holds_file(host), cmds.remove_tmp(host),
                 cmds.from_node(host, "cn02.internal"), cmds.ssh_argv(host, "true")):
        assert ends_options(argv), argv
    pipe = pipeline.ChainCommands(ssh, f"{INSTANCES}/img", 10, ("sha1", "ab" * 20), 10, str(cfg))
    assert ends_options(pipe.head_recv(host, True))
    assert ends_options(pipe.cleanup(host))
    forward = pipe.head_forward(host, "cn02.internal", True)
    assert ends_options(forward)
    node_ssh = shlex.split(forward[-1])[9:]  # the ssh the node runs towards the next host
    assert node_ssh[0] == "ssh" and node_ssh[-3:-1] == ["--", "cn02.internal"]
    conf = tmp_path / "site.conf"
    conf.write_text(f"[paths]\ninstances_dir = {tmp_path}/instances\n")
    from hltcloud import config
    plan = prefill.Plan(config.load(str(conf)), "0b4fcd34-1c8b", "raw", 10, "nova:nova")
    assert ends_options(plan.check_argv(ssh.options(), host))
    assert ends_options(plan.convert_argv(ssh.options(), host, 10, "ab" * 20))


# ---------------------------------------------------------------- prefill's conversion

@pytest.mark.parametrize("where", ["copy", "base"])
def test_prefill_conversion_under_attack(cluster, tmp_path, secret, nova_dirs, where):
    """copy: the verified transferred copy is replaced by a symlink to the secret before
    qemu-img reads it (a raw image: qemu-img would convert anything). base: every hidden
    file root makes in _base becomes a symlink to the secret (the old temporary file, then
    chowned to nova), every hidden directory of root a symlink to a root-only decoy. The
    cache name is a planted link from the start (refused when the raw image is placed); a
    link planted at the transfer name is refused by the transfer itself (issue 19, below)."""
    node = cluster.names[0]
    fmt, size = ("raw", 4) if where == "copy" else ("qcow2", 16)
    image_id = cluster.add_image(f"attacked-{where}", size_mb=size, fmt=fmt)
    inst = Path(nova_dirs(node)[0])
    final = base_file(cluster, node, image_id)
    conf = config_with(cluster, tmp_path, image_owner="nobody:nogroup")
    transfer = inst / f"hlt-glance-cache-{image_id}"
    rules = ({"dirs": [str(inst)], "swap": re.escape(transfer.name)} if where == "copy" else
             {"dirs": [str(inst / "_base")], "swap": r"\..*"})
    attacker = Attacker(secret=str(secret[0]), decoy=str(secret[1]), mode="symlink",
                        plant=[str(final)], **rules)
    try:
        res = cluster.run_tool("openstack-prefill-cache", "--config", conf,
                               f"attacked-{where}", node)
    finally:
        print(attacker.stop())
    print(res.stdout, res.stderr)
    assert_untouched(secret)
    if res.returncode == 0:
        store = cluster.state / "glance" / "images" / image_id
        raw = tmp_path / "expected.raw"
        subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(store), str(raw)],
                       check=True)
        assert not final.is_symlink() and sha1_of(final) == sha1_of(raw)
        assert (final.stat().st_uid, final.stat().st_gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    else:
        assert res.returncode == 1
        assert re.search(rf"^\[FAIL\] {re.escape(node)}: image conversion failed: refusing: ",
                         res.stdout, re.M), res.stdout
        assert not final.exists() or final.is_symlink()  # the planted link, never our work
    # Nothing root wrote in _base belongs to nobody but the cache file (the attacker's own
    # entries are symlinks).
    for path in (inst / "_base").iterdir():
        assert path == final or path.is_symlink() or path.stat().st_uid == 0, path


# ---------------------------------------------------------------- pipeline and wave helpers

@pytest.mark.parametrize("plant_private", [True, False])
def test_pipeline_helper_files_under_attack(cluster, tmp_path, secret, nova_dirs, plant_private):
    """Every temporary name a pipelined run shows in ps is planted as a symlink to the
    secret before the run gets there (the old helper names beside DEST, and, with
    PLANT_PRIVATE, the private directory's own name); root's files at those names are
    replaced by symlinks as soon as they appear."""
    nodes = cluster.names[:3]
    dirs = nova_dirs(*nodes)
    source = tmp_path / "payload"
    source.write_bytes(os.urandom(4 << 20))
    dest = f"{INSTANCES}/pipe-{uuid.uuid4().hex[:12]}"
    name = re.escape(Path(dest).name)
    helpers = ["", ".st", ".recv.pgid", ".fifo", ".fifo.pgid"]
    attacker = Attacker(secret=str(secret[0]), decoy=str(secret[1]), mode="symlink", dirs=dirs,
                        ps=rf"{INSTANCES}/(\.{name}\.pipe-[0-9a-f]+)",
                        suffixes=helpers if plant_private else helpers[1:],
                        swap=rf"\.{name}\.pipe-[0-9a-f]+(\.st|\.recv\.pgid|\.fifo|\.fifo\.pgid)?")
    try:
        res = run_tool([str(TOOLS / "rsync-wave.py"), "--pipeline", "--timeout", "5",
                       str(source), dest, *nodes], cluster.env)
    finally:
        print(attacker.stop())
    print(res.stdout, res.stderr)
    assert_untouched(secret)
    for node in nodes:
        got = cluster.node_dir(node) / Path(dest).relative_to("/var/lib/nova")
        if res.returncode == 0 or got.exists():
            assert not got.is_symlink() and got.stat().st_uid == 0, node
            assert sha1_of(got) == sha1_of(source), node
    assert res.returncode in (0, 1)


def test_wave_check_refuses_a_copy_swapped_by_nova(cluster, tmp_path, secret, nova_dirs):
    """The wave's temporary file (its name is in rsync's command line) is replaced, as soon
    as rsync has renamed it into place, by nobody's own copy of the same bytes: the old
    check verified it by path and renamed it to DEST, leaving nova owning the verified file.
    (Since issue 19 that name is a private directory of root that rsync writes in: replaced
    by a link, it is refused, by the transfer or by the check.)"""
    nodes = cluster.names[:2]
    dirs = nova_dirs(*nodes)
    source = tmp_path / "payload"
    source.write_bytes(os.urandom(2 << 20))
    dest = f"{INSTANCES}/wave-{uuid.uuid4().hex[:12]}"
    attacker = Attacker(secret=str(secret[0]), decoy=str(secret[1]), mode="own", dirs=dirs,
                        swap=rf"\.{re.escape(Path(dest).name)}\.wave-[0-9a-f]+")
    try:
        res = run_tool([str(TOOLS / "rsync-wave.py"), "--timeout", "5", "--tries", "2",
                       str(source), dest, *nodes], cluster.env)
    finally:
        print(attacker.stop())
    print(res.stdout, res.stderr)
    assert_untouched(secret)
    for node in nodes:
        got = cluster.node_dir(node) / Path(dest).relative_to("/var/lib/nova")
        if got.exists() or got.is_symlink():
            assert not got.is_symlink() and got.stat().st_uid == 0, node
            assert sha1_of(got) == sha1_of(source)
        else:
            assert re.search(rf"--> {re.escape(node)}: (verification failed: )?refusing: ",
                             res.stdout), res.stdout
    assert res.returncode in (0, 1)


# ---------------------------------------------------------------- CLEANUP's process groups

def test_cleanup_kills_no_process_group_it_did_not_record(cluster, nova_dirs):
    """Records of process groups planted by nobody (beside DEST, as the old helper names,
    and in a directory of nobody's at the private directory's name) point at a sleep of
    root: the cleanup after Ctrl-C must leave it alive."""
    node = cluster.names[0]
    inst = Path(nova_dirs(node)[0])
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        cmds = pipeline.ChainCommands(runner.Ssh(cluster.ssh_config, "root", 3), f"{INSTANCES}/img",
                                 10, ("sha1", "ab" * 20), 10, cluster.ssh_config, run_id="feed")
        plant = (f"cd {shlex.quote(str(inst))} && mkdir .img.pipe-feed && "
                 "for f in .img.pipe-feed.recv.pgid .img.pipe-feed.fifo.pgid "
                 ".img.pipe-feed.x.pgid .img.pipe-feed/recv.pgid .img.pipe-feed/fwd.pgid; "
                 "do echo \"$1\" > \"$f\"; done")
        subprocess.run([*AS_NOBODY, "sh", "-c", plant, "plant", str(victim.pid)], check=True)
        res = subprocess.run(cmds.cleanup(node), capture_output=True, text=True, timeout=60)
        time.sleep(0.5)
        assert victim.poll() is None, "the cleanup killed a process group it never recorded"
        assert res.returncode != 0 and "refusing: " in res.stderr  # nobody's directory
        assert (inst / ".img.pipe-feed" / "recv.pgid").exists()  # nothing of nobody's touched
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


# ---------------------------------------------------------------- issue 19: the real tools

def test_prefill_refuses_a_link_to_a_root_directory_at_the_cache_name(cluster, tmp_path, secret,
                                                                       nova_dirs):
    """Row 1, with the real tool: nova makes _base/<sha1> a link to a root-owned directory
    before the prefill; the old convert moved its nova-owned cache file into that directory
    and reported success."""
    node = cluster.names[0]
    image_id = cluster.add_image("row1-link", size_mb=4, fmt="raw")
    nova_dirs(node)
    final = base_file(cluster, node, image_id)
    subprocess.run([*AS_NOBODY, "ln", "-s", str(secret[1]), str(final)], check=True)
    conf = config_with(cluster, tmp_path, image_owner="nobody:nogroup")
    res = cluster.run_tool("openstack-prefill-cache", "--config", conf, "row1-link", node)
    print(res.stdout, res.stderr)
    assert_untouched(secret)
    assert res.returncode == 1
    assert f"[FAIL] {node}: image conversion failed: refusing: {INSTANCES}/_base/{final.name} " \
           "is a link or a directory" in res.stdout.splitlines()
    assert os.readlink(final) == str(secret[1])


@pytest.mark.parametrize("mode", [[], ["--pipeline"]])
def test_transfer_refuses_a_link_to_a_root_directory_at_dest(cluster, secret, nova_dirs, mode):
    """Row 6, with the real tool: nova plants DEST as a link to a root-owned directory on
    every node; the old final move of the wave's check (and of a chain's receiver) put root's
    file holding the transferred bytes into that directory."""
    nodes = cluster.names[:2]
    nova_dirs(*nodes)
    dest = f"{INSTANCES}/row6-{uuid.uuid4().hex[:12]}"
    for node in nodes:
        link = cluster.node_dir(node) / Path(dest).relative_to("/var/lib/nova")
        subprocess.run([*AS_NOBODY, "ln", "-s", str(secret[1]), str(link)], check=True)
    res = run_tool([str(TOOLS / "rsync-wave.py"), *mode, "--timeout", "5", "--tries", "1",
                    str(TOOLS / "rsync-wave.py"), dest, *nodes], cluster.env)
    print(res.stdout, res.stderr)
    assert_untouched(secret)
    assert res.returncode == 1
    for node in nodes:
        assert re.search(rf"--> {re.escape(node)}: verification failed: refusing: "
                         rf"{re.escape(dest)} is a link or a directory$", res.stdout, re.M), node
        if mode:  # the chain's receiver, before the wave tried
            assert re.search(rf"--> {re.escape(node)}: refusing: {re.escape(dest)} is a link or "
                             "a directory$", res.stdout + res.stderr, re.M), node
