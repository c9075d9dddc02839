"""The executables run from the checkout, through a symlink, and after make install."""
import os
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = str(Path(__file__).resolve().parents[3])
TOOLS = ["openstack-hlt-manage", "openstack-prefill-cache", "rsync-wave.py", "openstack-enter"]


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize("tool", TOOLS)
def test_help_from_checkout_and_symlink(tool, tmp_path):
    link = tmp_path / tool
    link.symlink_to(os.path.join(ROOT, "bin", tool))
    for path in (os.path.join(ROOT, "bin", tool), str(link)):
        res = run([path, "--help"], cwd=tmp_path)
        assert "usage:" in (res.stdout + res.stderr), res.stderr
        assert "Traceback" not in res.stderr


def test_make_install_gives_working_commands(tmp_path):
    dest = tmp_path / "root"
    res = run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr"], cwd=ROOT)
    assert res.returncode == 0, res.stderr
    for tool in TOOLS:
        res = run([str(dest / "usr/bin" / tool), "--help"], cwd=tmp_path,
                  env={**os.environ, "PYTHONPATH": ""})
        assert "usage:" in (res.stdout + res.stderr), res.stderr
        assert "Traceback" not in res.stderr
    pages = os.listdir(dest / "usr/share/man/man1")
    assert sorted(pages) == sorted(t + ".1" for t in TOOLS)
    completions = dest / "usr/share/bash-completion/completions"
    assert sorted(os.listdir(completions)) == sorted(TOOLS)
    assert (dest / "usr/share/doc/hltcloud/SECURITY.md").is_file()  # the man pages point to it
    # the installed copy must not import the checkout's library
    res = run([sys.executable, "-c", "import hltcloud, sys; print(hltcloud.__file__)"],
              env={**os.environ, "PYTHONPATH": str(dest / "usr/share/hltcloud/lib")})
    assert res.stdout.startswith(str(dest))


def test_make_install_ships_the_node_scripts(tmp_path):
    """The node scripts are .sh files beside hltcloud/node/scripts.py: installed with it, and
    what the installed copy sends is what the checkout sends."""
    dest = tmp_path / "root"
    res = run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr"], cwd=ROOT)
    assert res.returncode == 0, res.stderr
    node = os.path.join(ROOT, "lib", "hltcloud", "node")
    shipped = sorted(name for name in os.listdir(node) if name.endswith(".sh"))
    assert "functions.sh" in shipped
    installed = dest / "usr/share/hltcloud/lib/hltcloud/node"
    assert sorted(name for name in os.listdir(installed) if name.endswith(".sh")) == shipped
    env = {**os.environ, "PYTHONPATH": str(dest / "usr/share/hltcloud/lib")}
    show = ("import json, hltcloud.node.scripts as s; "
            "print(json.dumps({k: getattr(s, k) for k in s.PROGRAMS}))")
    there = run([sys.executable, "-c", show], env=env, cwd=tmp_path)
    here = run([sys.executable, "-c", show],
               env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "lib")})
    assert there.returncode == 0, there.stderr
    assert there.stdout == here.stdout and "RECV_SCRIPT" in there.stdout
    # a tool that loads them: the transfer's plan, nothing copied
    (tmp_path / "src").write_text("x")
    res = run([str(dest / "usr/bin/rsync-wave.py"), "--dry-run", "--no-syslog",
               str(tmp_path / "src"), str(tmp_path / "dest"), "cn01"],
              cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert res.returncode == 0 and "[DRY ] vm --> cn01" in res.stdout, res.stdout + res.stderr
