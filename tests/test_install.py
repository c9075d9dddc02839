"""The executables run from the checkout, through a symlink, and after make install."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
