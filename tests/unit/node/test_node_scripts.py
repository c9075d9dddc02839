"""The node scripts (lib/hltcloud/node/*.sh) pass sh -n and shellcheck, each one whole as it
runs (its files one after another, scripts.PROGRAMS), and travel without their comments."""
import os
import shutil
import subprocess

import pytest

from hltcloud.node import scripts

NODE = os.path.dirname(scripts.__file__)
FILES = sorted(name for name in os.listdir(NODE) if name.endswith(".sh"))
# What runs on a node: the *_SCRIPT programs (the functions alone are only their start).
RUN = sorted(key for key in scripts.PROGRAMS if key.endswith("_SCRIPT"))
SHELLS = sorted({os.path.realpath(shutil.which(sh)) for sh in ("sh", "dash") if shutil.which(sh)})


def whole(key):
    """The program KEY with its comments (the shellcheck directives), and where each of its
    lines comes from."""
    text, origin = "", []
    for name in scripts.PROGRAMS[key]:
        with open(scripts.path(name), encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        text += "".join(lines)
        origin += [f"{name}:{n}" for n in range(1, len(lines) + 1)]
    return text, origin


def shellcheck(text):
    """shellcheck's findings on TEXT as dash runs it, one gcc-style line each ("" if none)."""
    res = subprocess.run(["shellcheck", "--shell=dash", "--format=gcc", "-"], input=text,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode in (0, 1), res.stderr  # 1: findings; anything else: it could not run
    return res.stdout


def test_every_file_is_in_a_program_that_runs():
    used = {name for key in RUN for name in scripts.PROGRAMS[key]}
    assert FILES and set(FILES) == used


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("shell", SHELLS)
def test_sh_n(shell, name):
    res = subprocess.run([shell, "-n", scripts.path(name)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0 and not res.stderr, f"{shell} -n {name}: {res.stderr}"


@pytest.mark.parametrize("key", RUN)
def test_sh_n_as_sent(key):
    """What travels (comments gone) still parses."""
    for shell in SHELLS:
        res = subprocess.run([shell, "-n", "-c", getattr(scripts, key)], capture_output=True,
                             text=True, timeout=30)
        assert res.returncode == 0 and not res.stderr, f"{shell} -n {key}: {res.stderr}"


@pytest.mark.skipif(not shutil.which("shellcheck"),
                    reason="shellcheck is missing: make deps installs it (Debian package)")
@pytest.mark.parametrize("key", RUN)
def test_shellcheck(key):
    text, origin = whole(key)
    found = shellcheck(text)
    shown = []
    for line in found.splitlines():  # "-:LINE:COL: ..." -> "check.sh:N:COL: ..."
        _, at, rest = line.split(":", 2)
        n = int(at) - 1
        shown.append(f"{origin[n] if n < len(origin) else key + ' at its end'}:{rest}")
    assert not found, f"shellcheck on {key}:\n" + "\n".join(shown)


@pytest.mark.skipif(not shutil.which("shellcheck"),
                    reason="shellcheck is missing: make deps installs it (Debian package)")
def test_shellcheck_finds_a_fault():
    """The check would see one: an unquoted argument and a syntax error."""
    text, _ = whole("CHECK_SCRIPT")
    assert "SC2086" in shellcheck(text + "rm -f -- $1\n")
    assert "SC1073" in shellcheck(text + "if [ -n \"$1\" ]; then\n")


@pytest.mark.parametrize("key", sorted(scripts.PROGRAMS))
def test_sent_without_comments_nor_single_quotes(key):
    """Every line sent is one sh needs; shlex.join quotes the script in single quotes once."""
    sent = getattr(scripts, key)
    assert sent.endswith("\n") and "'" not in sent
    for line in sent.splitlines():
        assert line.strip() and not line.lstrip().startswith("#"), line
