"""Issue 19, node side: the nova user against the sh scripts root runs on a hypervisor.

Each attack is planted before the run by `nobody` (standing for nova: it owns the node's
/var/lib/nova, instances/ and _base here, as nova does on a real node), then the real node
script runs as root in a local shell, as sshd would start it. Afterwards root's directories
are unchanged and the script refused with one line, or did its job right."""
import hashlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from hltcloud.prefill import cache_state
from hltcloud import config
from hltcloud.transfer import chain as pipeline
from hltcloud.transfer.chain.events import Line, StartForwarder
from hltcloud.transfer.chain.state import ChainState
from hltcloud.prefill import run as prefill
from hltcloud.proc import runner
from hltcloud.transfer import common as transfer
from hltcloud.transfer import wave
from hltcloud.node.scripts import CACHE_STATE_SCRIPT, CHECK_SCRIPT, RECV_SCRIPT

NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}",
             "--clear-groups", "--"]
IMAGE_ID = "0b4fcd34-1c8b-4a0f-9d1e-7a1f1e2b3c4d"


def as_nova(*argv):
    subprocess.run([*AS_NOBODY, *argv], check=True, timeout=30)


def tree(path):
    """Every entry under PATH (relative names), for "root's directory stays unchanged"."""
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*"))


class Node:
    """A hypervisor's directories in a fresh directory of root's (searchable by all, as /var/lib
    is): nova/ (/var/lib/nova), nova/instances and nova/instances/_base, all nobody's; and
    etc/, a root-owned directory the attacker aims at (say /etc/apt/apt.conf.d)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="hlt-adversary-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.nova = self.root / "nova"
        self.instances = self.nova / "instances"
        self.base = self.instances / "_base"
        self.base.mkdir(parents=True)
        for path in (self.nova, self.instances, self.base):
            os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
        self.etc = self.root / "etc"
        self.etc.mkdir()

    def swap_for_link(self, path, target):
        """nova moves its directory PATH aside and puts a link to TARGET in its place."""
        as_nova("mv", "-T", str(path), f"{path}.away")
        as_nova("ln", "-s", str(target), str(path))


@pytest.fixture
def node():
    made = Node()
    yield made
    shutil.rmtree(made.root)


def run(argv, data=b""):
    """A node script as root, in its own session as under sshd (they end by killing their
    process group)."""
    return subprocess.run(argv, input=data, capture_output=True, timeout=60,
                          start_new_session=True)


def one_line(text):
    lines = text.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- prefill's conversion

def plan_for(node, tmp_path, owner="nobody:nogroup"):
    conf = tmp_path / "hltcloud.conf"
    conf.write_text(f"[paths]\ninstances_dir = {node.instances}\nimage_owner = {owner}\n")
    return prefill.Plan(config.load(str(conf)), IMAGE_ID, "raw", 1 << 20, owner)


def convert(plan, copy):
    """The transferred copy COPY (root's, as a receiver leaves it) converted by the prefill's
    own command line."""
    data = os.urandom(1 << 20)
    copy.write_bytes(data)
    os.chmod(copy, 0o644)
    script = plan.convert_script(len(data), hashlib.sha1(data).hexdigest())
    return run(["sh", "-c", script]), data


@pytest.mark.parametrize("planted", ["link", "directory"])
def test_convert_refuses_a_link_or_a_directory_at_the_cache_name(node, tmp_path, planted):
    """Row 1: nova makes _base/<sha1> a link to a root-owned directory (or a directory of its
    own): the old `mv -f raw ../<sha1>` moved the nova-owned cache file into it."""
    plan = plan_for(node, tmp_path)
    final = Path(plan.final)
    if planted == "link":
        as_nova("ln", "-s", str(node.etc), str(final))
    else:
        as_nova("mkdir", str(final))
    res, _ = convert(plan, Path(plan.transfer))
    assert tree(node.etc) == []
    assert res.returncode == 1
    assert one_line(res.stderr) == f"refusing: {final} is a link or a directory"
    assert final.is_symlink() == (planted == "link") and final.is_dir()
    assert tree(node.instances) == ["_base", f"_base/{final.name}"]  # copy and work gone


@pytest.mark.parametrize("swapped", ["_base", "instances"])
def test_convert_refuses_a_base_or_instances_replaced_by_a_link(node, tmp_path, swapped):
    """Row 5: nova replaces _base (it owns instances/), or instances/ (it owns /var/lib/nova),
    with a link to a root-owned directory: the old convert followed it (`cd -P`) and left a
    nova-owned cache file there. With instances/ swapped, the transferred copy lies where a
    receiver following the same link left it."""
    plan = plan_for(node, tmp_path)
    if swapped == "_base":
        node.swap_for_link(node.base, node.etc)
        copy = Path(plan.transfer)
    else:
        (node.etc / "_base").mkdir()
        node.swap_for_link(node.instances, node.etc)
        copy = node.etc / Path(plan.transfer).name
    res, _ = convert(plan, copy)
    assert list(node.etc.rglob(Path(plan.final).name)) == []  # nothing placed there
    assert not (node.etc / "_base").exists() or tree(node.etc / "_base") == []
    assert res.returncode == 1
    where = node.base if swapped == "_base" else node.instances
    assert one_line(res.stderr) == f"refusing: {where} is not a real directory (a link on its path)"


def test_convert_refuses_a_base_of_another_owner(node, tmp_path):
    """Row 5, owner: _base must be root's or image_owner's (here another uid's)."""
    plan = plan_for(node, tmp_path)
    os.chown(node.base, 12345, 12345)
    res, _ = convert(plan, Path(plan.transfer))
    assert res.returncode == 1
    assert one_line(res.stderr) == \
        f"refusing: {node.base} is owned by uid 12345, not root or nobody"
    assert os.listdir(node.base) == [] and not Path(plan.transfer).exists()


def test_convert_places_the_cache_file_when_nothing_is_planted(node, tmp_path):
    plan = plan_for(node, tmp_path)
    res, data = convert(plan, Path(plan.transfer))
    assert res.returncode == 0, res.stderr
    final = Path(plan.final)
    st = final.lstat()
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert final.read_bytes() == data and tree(node.instances) == ["_base", f"_base/{final.name}"]


# ---------------------------------------------------------------- the transfers' final move

def recv(dest, data):
    """A chain's last receiver (RECV_SCRIPT) of DATA into DEST."""
    priv = transfer.hidden_twin(str(dest), "pipe")
    return run(["sh", "-c", RECV_SCRIPT, "hltpipe-recv", "cn01", str(dest), priv, "",
                str(len(data)), hashlib.sha1(data).hexdigest(), "sha1sum", "5"], data)


def check(dest, data):
    """The wave's check and rename (CHECK_SCRIPT) of the copy rsync left in the private
    directory beside DEST."""
    tmp = Path(transfer.hidden_twin(str(dest), "wave"))
    tmp.mkdir(mode=0o700)
    (tmp / "data").write_bytes(data)
    return run(["sh", "-c", CHECK_SCRIPT, "hltwave-check", str(tmp), str(dest), str(len(data)),
                hashlib.sha1(data).hexdigest(), "sha1sum", "sha1"])


def refusal(tool, res):
    """The one line of refusal: RECV says it on its status line, CHECK on stderr (exit 3)."""
    if tool == "recv":
        assert res.returncode == 1
        line = one_line(b"\n".join(line for line in res.stdout.splitlines()
                                   if not line.startswith(b"HLTPIPE P ")))
        assert line.startswith("HLTPIPE F cn01 "), line
        return line[len("HLTPIPE F cn01 "):]
    assert res.returncode == 3
    return one_line(res.stderr)


@pytest.mark.parametrize("tool", ["recv", "check"])
@pytest.mark.parametrize("planted", ["link", "directory"])
def test_transfer_refuses_a_link_or_a_directory_at_dest(node, tool, planted):
    """Row 6: nova plants the transfer's destination (hlt-glance-cache-<id>) as a link to a
    root-owned directory (or a directory of its own): the chain receiver's and the wave's
    final `mv -f` put a root-owned file holding the transferred bytes into it."""
    dest = node.instances / f"hlt-glance-cache-{IMAGE_ID}"
    if planted == "link":
        as_nova("ln", "-s", str(node.etc), str(dest))
    else:
        as_nova("mkdir", str(dest))
    data = os.urandom(200_000)
    res = (recv if tool == "recv" else check)(dest, data)
    assert tree(node.etc) == []
    assert refusal(tool, res) == f"refusing: {dest} is a link or a directory"
    assert dest.is_symlink() == (planted == "link") and dest.is_dir()
    assert sorted(os.listdir(node.instances)) == ["_base", dest.name]  # no twin, no file left


@pytest.mark.parametrize("tool", ["recv", "check"])
def test_transfer_refuses_a_destination_directory_replaced_by_a_link(node, tool):
    """Row 6 (and 5): nova replaces DEST's directory itself by a link to a root-owned one:
    the old scripts followed it (`cd -P`) and placed root's file there."""
    node.swap_for_link(node.instances, node.etc)
    dest = node.instances / f"hlt-glance-cache-{IMAGE_ID}"
    data = os.urandom(200_000)
    res = (recv if tool == "recv" else check)(dest, data)  # rsync wrote through the link
    assert refusal(tool, res) == \
        f"refusing: {node.instances} is not a real directory (a link on its path)"
    assert not (node.etc / dest.name).exists()


def test_transfer_places_root_file_when_nothing_is_planted(node):
    dest = node.instances / f"hlt-glance-cache-{IMAGE_ID}"
    data = os.urandom(200_000)
    for tool in (recv, check):
        res = tool(dest, data)
        assert res.returncode == 0, res.stderr
        st = dest.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and dest.read_bytes() == data
        assert sorted(os.listdir(node.instances)) == ["_base", dest.name]
        dest.unlink()


def rsync_from_head(tmp_path, dest, data, before=None):
    """The wave's real rsync command line from the head (wave.WaveCommands), its ssh replaced
    by a local one that runs the remote command line through sh, as sshd does; BEFORE(cmds)
    runs first (nova reading the name in ps)."""
    source = tmp_path / "source"
    source.write_bytes(data)
    rsh = tmp_path / "rsh"
    rsh.write_text('#!/bin/sh\nshift\nexec sh -c "$*"\n')
    rsh.chmod(0o755)
    cmds = wave.WaveCommands(runner.Ssh("", "root", 5), str(source), str(dest), len(data),
                             ("sha1", hashlib.sha1(data).hexdigest()), 10)
    if before:
        before(cmds)
    argv = cmds.from_head("cn01")
    argv[argv.index("-e") + 1] = str(rsh)
    return cmds, subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("planted", ["link", "directory"])
def test_wave_rsync_never_writes_through_a_planted_name(node, tmp_path, planted):
    """Row 6, the wave's rsync: nova reads the name rsync writes to in ps (rsync's server
    runs with it) and plants it first: a link to a root-owned directory (rsync 3.2, as root,
    followed it; 3.5 refuses a link of another user itself) or a directory of its own (rsync
    put root's file holding the transferred bytes into it)."""
    dest = node.instances / f"hlt-glance-cache-{IMAGE_ID}"

    def plant(cmds):
        as_nova(*(["ln", "-s", str(node.etc)] if planted == "link" else ["mkdir"]), cmds.tmp)
    cmds, res = rsync_from_head(tmp_path, dest, os.urandom(200_000), before=plant)
    assert tree(node.etc) == [] and tree(node.instances) == sorted(["_base", Path(cmds.tmp).name])
    assert res.returncode != 0
    assert f"refusing: {cmds.tmp} is not a private directory of root" in res.stderr


def test_wave_rsync_and_check_place_the_file(node, tmp_path):
    dest = node.instances / f"hlt-glance-cache-{IMAGE_ID}"
    data = os.urandom(200_000)
    cmds, res = rsync_from_head(tmp_path, dest, data)
    assert res.returncode == 0, res.stderr
    check_res = run(shlex.split(cmds.check_and_rename("cn01")[-1]))
    assert check_res.returncode == 0, check_res.stderr
    assert dest.read_bytes() == data and dest.stat().st_uid == 0
    assert sorted(os.listdir(node.instances)) == ["_base", dest.name]  # no private dir left


# ---------------------------------------------------------------- lower items

def test_cache_state_never_runs_qemu_img_on_the_cache_name(node, tmp_path):
    """No qemu-img on a path nova controls: the moment qemu-img starts (a wrapper first on
    PATH plays nova winning the stat-then-open race), the cache name is a link to a root-only
    file. The check must not run it at all: for a raw file the size is the file's size."""
    name = prefill.cache_name(IMAGE_ID)
    cache = node.base / name
    as_nova("sh", "-c", 'head -c 1048576 /dev/zero > "$1"', "plant", str(cache))
    secret = node.etc / "secret"
    secret.write_bytes(b"root only\n" * 1000)
    os.chmod(secret, 0o600)
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    log = tmp_path / "qemu-img.log"
    (wrappers / "qemu-img").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        f'{" ".join(AS_NOBODY)} sh -c \'mv -f "$1" "$1.away"; ln -s "$2" "$1"\' x '
        f'{cache} {secret}\n'
        'exec /usr/bin/qemu-img "$@"\n')
    os.chmod(wrappers / "qemu-img", 0o755)
    env = dict(os.environ, PATH=f"{wrappers}:{os.environ['PATH']}")
    res = subprocess.run(["sh", "-c", CACHE_STATE_SCRIPT, "t", str(node.base), name, ""],
                         capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 0, res.stderr
    assert not log.exists(), log.read_text()
    state = cache_state.parse("cn01", res.stdout)
    assert (state.cache, state.format, state.virtual_size, state.file_size) == \
        ("file", "raw", 1 << 20, 1 << 20)
    assert cache_state.copy_problems(state, 1 << 20) == []


def test_generation_private_directories_are_random():
    """The private directory of a host's restart (generation 1, 2, ...) is not the run's own
    name plus a counter, which nova reads in ps and could plant ahead of the restart."""
    def commands():
        return pipeline.ChainCommands(None, "/var/lib/nova/instances/img", 10,
                                      ("sha1", "ab" * 20), 10, None, run_id="feed")
    first, second = commands(), commands()
    names = {first.private_dir(1), first.private_dir(2), second.private_dir(1)}
    assert len(names) == 3
    for name in names:
        assert name.startswith("/var/lib/nova/instances/.img.pipe-")
        token = name.rsplit("-", 1)[1]
        assert "feed" not in name and len(token) >= 16, name
    assert first.private_dir(0) == first.private == "/var/lib/nova/instances/.img.pipe-feed"


def alive(pid):
    """Is PID running (not gone, not a zombie)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_take_over_kills_no_process_it_does_not_own(tmp_path):
    """A stale dd.pid (the old receiver's dd ended, its pid reused by another process of
    root's): the taking-over receiver must not kill that process, only one working in our
    private directory."""
    data = os.urandom(300_000)
    dest = tmp_path / "img"
    priv = Path(transfer.hidden_twin(str(dest), "pipe"))
    priv.mkdir(mode=0o700)
    (priv / "data").write_bytes(data[:100_000])
    # Not our child (a zombie would live on): a process of root's that init reaps.
    victim = int(subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], cwd=tmp_path,
                                capture_output=True, text=True, check=True).stdout)
    try:
        (priv / "dd.pid").write_text(f"{victim}\n")
        res = run(["sh", "-c", RECV_SCRIPT, "hltpipe-recv", "cn01", str(dest), str(priv), "",
                   str(len(data)), hashlib.sha1(data).hexdigest(), "sha1sum", "5", "60000"],
                  data[60000:])
        time.sleep(0.3)
        assert alive(victim), "the take-over killed a process that was not ours"
        assert b"HLTPIPE OK cn01 300000" in res.stdout, res.stdout + res.stderr
        assert dest.read_bytes() == data
    finally:
        try:
            os.kill(victim, 9)
        except ProcessLookupError:
            pass


def test_a_chain_host_cannot_report_for_another_host():
    """Each session carries one host's receiver: an HLTPIPE line in it that names another
    host (a forwarding host forging its downstream's or a neighbour's OK) is ignored."""
    chain = ["cn01.internal", "cn02.internal", "cn03.internal"]
    state = ChainState([chain], size=5, timeout=10, head_name="head", private="/x/.img.pipe-a",
                       new_private=None, now=0.0)
    started = state.start() + state.step(Line(0, "HLTPIPE P cn01.internal 0"), 0.0)
    forwarder = next(a.session for a in started if isinstance(a, StartForwarder)
                     and a.next_host == "cn02.internal")  # on cn01, carrying cn02's receiver
    news = [state.step(Line(forwarder, text), 1.0) for text in (
        "HLTPIPE OK cn03.internal 5", "HLTPIPE OK cn01.internal 5",
        "HLTPIPE F cn03.internal broken", "HLTPIPE P cn02.internal 3")]
    assert news == [[], [], [], []]
    assert [state.hosts[name].state for name in chain] == ["wait"] * 3
    assert state.hosts["cn02.internal"].bytes == 3
