"""Start-up of openstack-hlt-manage: --help, usage errors and bad host lists never load the
cloud libraries (keystoneauth1, requests, novaclient: most of the start-up time).

Facts, not timings: the modules Python reports with -X importtime.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOOL = str(REPO / "bin" / "openstack-hlt-manage")
CLOUD_LIBRARIES = ("keystoneauth1", "novaclient", "requests", "urllib3", "oslo_utils")
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$")


def imported(args, tmp_path):
    """(exit status, top-level packages imported) of the tool run with ARGS."""
    config = tmp_path / "hltcloud.conf"
    config.write_text("")  # every key has its default
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "HLTCLOUD_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-X", "importtime", TOOL, *args], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    modules = {m.group(1).split(".")[0] for m in map(_IMPORTED.match, done.stderr.splitlines()) if m}
    assert "hltcloud" in modules, done.stderr[-2000:]  # -X importtime did report
    return done.returncode, modules


@pytest.mark.parametrize("args, status", [
    (["--help"], 0),
    (["-h"], 0),
    ([], 2),
    (["frobnicate"], 2),
    (["--vm-timeout", "soon", "disable", "cn01.internal"], 2),
    (["disable", "--help"], 0),
    (["--version"], 0),
    (["--vm-timout", "10", "disable", "cn01.internal"], 2),
    (["--for-real", "disable"], 2),
    (["--for-real", "disable", "cn[03-01].internal"], 2),
    (["--for-real", "disable", "cn[01-"], 2),
    (["--for-real", "disable", "bad;name"], 2),
    (["--for-real", "disable", "@/nonexistent/list.txt"], 2),
    (["runvms", "cn01.internal"], 2),
], ids=["help", "h", "bare", "unknown-command", "bad-number", "command-help", "version",
         "mistyped-switch",
        "no-hosts", "reversed-range", "open-range", "bad-name", "missing-list", "runvms-hosts"])
def test_help_and_bad_input_never_load_the_cloud_libraries(tmp_path, args, status):
    code, modules = imported(args, tmp_path)
    assert code == status
    assert not modules & set(CLOUD_LIBRARIES), sorted(modules & set(CLOUD_LIBRARIES))


def test_an_empty_host_list_file_never_loads_the_cloud_libraries(tmp_path):
    empty = tmp_path / "hosts.txt"
    empty.write_text("# nobody\n\n")
    code, modules = imported(["disable", f"@{empty}"], tmp_path)
    assert code == 2
    assert not modules & set(CLOUD_LIBRARIES), sorted(modules & set(CLOUD_LIBRARIES))


def test_a_command_that_talks_to_the_cloud_still_loads_them(tmp_path):
    """The check above sees imports at all: a status without credentials gets as far as
    opening the cloud (exit 3: no credentials), and that loads keystoneauth1."""
    code, modules = imported(["status"], tmp_path)
    assert code == 3
    assert "keystoneauth1" in modules
