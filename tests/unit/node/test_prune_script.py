"""openstack-prefill-cache --prune's node script, run as root on directories that `nobody`
(standing for nova) owns, as on a hypervisor: what it lists, what it removes, and what the
nova user cannot make it do."""
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from hltcloud.node.scripts import PRUNE_SCRIPT

NOBODY = pwd.getpwnam("nobody")
AS_NOVA = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups",
           "--"]
DAY = 86_400
SERVER = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
IMAGES = {name: hashlib.sha1(name.encode()).hexdigest() for name in ("used", "kept", "unused")}


class Node:
    """instances/ and instances/_base of a node, nova's (nobody's), with an instance directory
    for SERVER and one cached image per IMAGES entry, all two days old."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="hlt-prune-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.instances = self.root / "instances"
        self.base = self.instances / "_base"
        self.base.mkdir(parents=True)
        (self.instances / SERVER).mkdir()
        for sha1 in IMAGES.values():
            (self.base / sha1).write_bytes(b"x" * 4096)
        self.age(*self.base.iterdir())
        for path in (self.instances, self.base, *self.instances.rglob("*")):
            os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)

    @staticmethod
    def age(*paths, seconds=2 * DAY):
        then = time.time() - seconds
        for path in paths:
            os.utime(path, (then, then), follow_symlinks=False)

    def prune(self, mode, servers=(SERVER,), keep=(IMAGES["kept"],), used=(IMAGES["used"],),
              min_age=DAY):
        words = [f"i:{s}" for s in servers] + [f"k:{k}" for k in (*keep, *used)]
        return subprocess.run(["sh", "-c", PRUNE_SCRIPT, "hlt-prune", str(self.instances),
                               str(self.base), str(min_age), mode, "nobody:nogroup", *words],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture
def node():
    made = Node()
    yield made
    shutil.rmtree(made.root)


def lines(res, kind):
    return sorted(line.split(" ", 1)[1] for line in res.stdout.splitlines()
                  if line.startswith(kind + " "))


def test_list_names_only_unused_old_cache_files_and_changes_nothing(node):
    before = sorted(node.base.iterdir())
    res = node.prune("list")
    assert res.returncode == 0, res.stderr
    assert lines(res, "CANDIDATE") == [f"base {IMAGES['unused']} 4096"]
    assert sorted(node.base.iterdir()) == before


def test_remove_takes_the_unused_one_and_keeps_used_kept_and_young(node):
    young = hashlib.sha1(b"young").hexdigest()
    (node.base / young).write_bytes(b"y")
    res = node.prune("remove")
    assert res.returncode == 0, res.stderr
    assert lines(res, "REMOVED") == [f"base {IMAGES['unused']} 4096"]
    left = {p.name for p in node.base.iterdir()}
    assert left == {IMAGES["used"], IMAGES["kept"], young}  # no private directory left either
    assert node.prune("remove").stdout == ""  # a second run finds nothing


def test_an_instance_directory_nova_does_not_list_stops_everything_on_the_host(node):
    stranger = "0e9d8c7b-6a5f-4e3d-9c2b-1a0f9e8d7c6b"
    (node.instances / stranger).mkdir()
    res = node.prune("remove")
    assert res.returncode == 1
    assert res.stderr.strip() == (f"refusing: {node.instances}/{stranger} is an instance "
                                  "directory of no server Nova lists on this host")
    assert (node.base / IMAGES["unused"]).exists()


def test_leftovers_of_interrupted_prefills_go_when_old_only(node):
    """Root's private directories of a conversion and a transfer, and a transfer copy."""
    convert = node.base / ".hlt-convert-AbCdEfGhIj"
    twin = node.instances / ".hlt-glance-cache-img1.pipe-0011aabb"
    copy = node.instances / "hlt-glance-cache-img1"
    fresh_copy = node.instances / "hlt-glance-cache-img2"
    for directory in (convert, twin):
        directory.mkdir(mode=0o700)
        (directory / "copy").write_bytes(b"z" * 100)
    copy.write_bytes(b"c")
    fresh_copy.write_bytes(b"c")
    node.age(convert, twin, copy)
    res = node.prune("remove")
    assert res.returncode == 0, res.stderr
    removed = lines(res, "REMOVED")
    assert f"base {convert.name} " in " ".join(removed) and len(removed) == 4, removed
    assert not convert.exists() and not twin.exists() and not copy.exists()
    assert fresh_copy.exists()


def test_nova_cannot_make_it_remove_or_list_what_is_not_its_own(node):
    """A link with a cache name pointing at root's file, a cache name that is a directory, a
    leftover name of nova's own making (not root's), a name with a control character."""
    target = node.root / "roots-file"
    target.write_text("root's\n")
    link = hashlib.sha1(b"link").hexdigest()
    subprocess.run([*AS_NOVA, "ln", "-s", str(target), str(node.base / link)], check=True)
    directory = hashlib.sha1(b"dir").hexdigest()
    subprocess.run([*AS_NOVA, "mkdir", str(node.base / directory)], check=True)
    subprocess.run([*AS_NOVA, "mkdir", str(node.base / ".hlt-convert-byNova")], check=True)
    odd = f"{hashlib.sha1(b'odd').hexdigest()}\x1b"
    subprocess.run([*AS_NOVA, "touch", str(node.base / odd)], check=True)
    node.age(node.base / link, node.base / directory, node.base / ".hlt-convert-byNova",
             node.base / odd)
    res = node.prune("remove")
    assert res.returncode == 0, res.stderr
    assert lines(res, "REMOVED") == [f"base {IMAGES['unused']} 4096"]
    assert target.read_text() == "root's\n"
    for name in (link, directory, ".hlt-convert-byNova", odd):
        assert os.path.lexists(node.base / name), name


def test_a_base_that_is_a_link_is_refused(node):
    elsewhere = node.root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / IMAGES["unused"]).write_bytes(b"x")
    node.age(elsewhere / IMAGES["unused"])
    shutil.rmtree(node.base)
    subprocess.run([*AS_NOVA, "ln", "-s", str(elsewhere), str(node.base)], check=True)
    res = node.prune("remove")
    assert res.returncode == 1
    assert "not a real directory" in res.stderr
    assert (elsewhere / IMAGES["unused"]).exists()
