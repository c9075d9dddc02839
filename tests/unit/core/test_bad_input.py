"""Bad input (issue 10): one clear line, exit 2 (3 where the cloud is at fault), nothing done.

One table of bad inputs, each run through an executable as a subprocess with a site
configuration and host list files written here. OS_AUTH_URL points at a port of 127.0.0.1
that refuses connections, so any input that is not refused before the first request ends in
exit 3 ("cannot reach Keystone") instead of 2. For every row: the exit status, a message
naming the problem in at most two lines of stderr and no traceback, no new file under the
test's directory (home, TMPDIR, lock directory and working directory all live there), no
process left behind, and a time bound.
"""
import argparse
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import processes

REPO = Path(__file__).resolve().parents[3]
LIB = REPO / "lib"
TOOLS = {
    "manage": [sys.executable, str(REPO / "bin" / "openstack-hlt-manage")],
    "prefill": [sys.executable, str(REPO / "bin" / "openstack-prefill-cache")],
    "wave": [sys.executable, str(REPO / "bin" / "rsync-wave.py")],
    "hostlist": [sys.executable, "-m", "hltcloud.hostlist"],
}
# Each row takes 0.3-0.7 s on an idle machine (Python start and imports; the issue asks for
# under a second). 5 s is generous on purpose: the machine has 2 cores shared with other
# test runs, which can make a start several times slower; a hang (a fifo, /dev/zero) never
# ends, so the bound still tells the two apart.
TIME_BOUND = 5.0
MEMORY_BOUND = 2 << 30  # bytes of address space: a MemoryError, not a swapping machine
HUGE = "9" * 5000
MIB = 1 << 20

GOOD_CONF = "[ssh]\nconnect_timeout = 2\n[runvms]\nuser_data =\n"
BAD_CONFS = {
    "quote.conf": "[services]\nstart = service '{service} start\n",
    "latin1.conf": b"[runvms]\nname = w\xe9\n",
    "negtimeout.conf": "[ssh]\nconnect_timeout = -5\n",
    "hugetimeout.conf": f"[ssh]\nconnect_timeout = {HUGE}\n",
    "floattimeout.conf": "[ssh]\nconnect_timeout = 2.5\n",
    "relinst.conf": "[paths]\ninstances_dir = var/lib/nova/instances\n",
    "relbase.conf": "[paths]\nbase_dir = _base\n",
    "spacebase.conf": "[paths]\nbase_dir = /var/lib/nova/my base\n",
    "dotdotbase.conf": "[paths]\nbase_dir = /var/lib/../../etc\n",
    "relglance.conf": "[paths]\nglance_images_dir = glance/images\n",
    "relsshcfg.conf": "[ssh]\nconfig = ssh_config\n",
    "reluserdata.conf": "[runvms]\nuser_data = wn-user-data.txt\n",
    "owner.conf": "[paths]\nimage_owner = nova nova\n",
    "relnovaconf.conf": "[paths]\nnova_conf = nova.conf\n",
    "ownerdollar.conf": "[paths]\nimage_owner = $(id)\n",
    "sshuser.conf": "[ssh]\nuser = -oProxyCommand=touch /tmp/pwned\n",
    "service.conf": "[services]\nnames = libvirtd ../../bin/sh\n",
    "notini.conf": "this is not an ini file\n",
    "nosection.conf": "[ssh\nuser = root\n",
    "noequals.conf": "[ssh]\nuser root\n",
    "twice.conf": "[ssh]\nuser = a\n[ssh]\nuser = b\n",
}


@pytest.fixture(scope="module")
def closed_url():
    """A URL on 127.0.0.1 whose port refuses connections: bound, never listening, so no
    other process can take the port while the table runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v3"


@pytest.fixture
def place(tmp_path, closed_url):
    """The files of the table, and the environment every row runs in."""
    for name in ("home", "tmp", "locks", "cwd", "adir"):
        (tmp_path / name).mkdir()
    (tmp_path / "site.conf").write_text(GOOD_CONF)
    for name, text in BAD_CONFS.items():
        data = text if isinstance(text, bytes) else text.encode()
        (tmp_path / name).write_bytes(data)
    (tmp_path / "ssh_config").write_text("Host *\n  StrictHostKeyChecking yes\n")
    (tmp_path / "ssh config").write_text("Host *\n")
    (tmp_path / "empty.txt").write_text("# nothing here\n\n")
    (tmp_path / "good.txt").write_text("cn01\n")
    (tmp_path / "dash.txt").write_text("cn01\n-oProxyCommand=touch /tmp/pwned\n")
    (tmp_path / "jump.txt").write_text("-Jroot@evil\n")
    (tmp_path / "nested.txt").write_text(f"@{tmp_path / 'good.txt'}\n")
    (tmp_path / "latin1.txt").write_bytes(b"cn\xe901\n")
    (tmp_path / "big.txt").write_text(("cn01\n" * (2 * MIB // 5 + 1)))
    (tmp_path / "ud64k.txt").write_text("#" * 60_000)
    (tmp_path / "src.img").write_bytes(b"payload")
    (tmp_path / "dangling").symlink_to(tmp_path / "no-such-target")
    os.mkfifo(tmp_path / "fifo")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(LIB), "LC_ALL": "C.UTF-8",
           "HLTCLOUD_CONFIG": str(tmp_path / "site.conf"),
           "HLTCLOUD_LOCK_DIR": str(tmp_path / "locks"),
           "OS_AUTH_URL": closed_url, "OS_USERNAME": "admin", "OS_PASSWORD": "secret",
           "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default"}
    return tmp_path, env


def row(tool, args, code=2, says="", env=None, id=None):
    return pytest.param(tool, args, code, says, env or {}, id=id)


T = "{tmp}"  # replaced by the test's directory
SRC, DEST = f"{T}/src.img", "/var/tmp/hlt-wave-test"
CLOSED = "cannot reach Keystone"  # exit 3: the input was fine, the cloud is not there

HOSTLIST = [
    row("hostlist", ["-e", f"cn[1-{HUGE}]"], says="longer than 9 digits", id="hl-5000-digits"),
    row("hostlist", ["-e", "cn[1-9999999999]"], says="longer than 9 digits", id="hl-10-digits"),
    row("hostlist", ["-e", "cn[١-٣]"], says="non-numeric range", id="hl-arabic-digits"),
    row("hostlist", ["-e", "cn[1-３]"], says="non-numeric range", id="hl-fullwidth-digit"),
    row("hostlist", ["-e", "cn٣"], says="invalid character", id="hl-unicode-literal-digit"),
    row("hostlist", ["-e", "@/dev/zero"], says="not a regular file", id="hl-dev-zero"),
    row("hostlist", ["-e", f"@{T}/fifo"], says="not a regular file", id="hl-fifo"),
    row("hostlist", ["-e", f"@{T}/adir"], says="not a regular file", id="hl-directory"),
    row("hostlist", ["-e", f"@{T}/big.txt"], says="larger than 1048576 bytes", id="hl-2mib-file"),
    row("hostlist", ["-e", f"@{T}/latin1.txt"], says="not UTF-8", id="hl-latin1-file"),
    row("hostlist", ["-e", f"@{T}/nested.txt"], says="may not include", id="hl-nested-file"),
    row("hostlist", ["-e", f"@{T}/dangling"], says="cannot read host list file", id="hl-dangling"),
    row("hostlist", ["-e", "@"], says="cannot read host list file", id="hl-at-only"),
    row("hostlist", ["-e", "--", "-Jhost"], says="may not start with '-'", id="hl-dash-J"),
    row("hostlist", ["-e", "--", "-oProxyCommand=x"], says="may not start with '-'",
        id="hl-dash-o"),
    row("hostlist", ["-e", "cn1,-Jhost"], says="may not start with '-'", id="hl-dash-in-list"),
    row("hostlist", ["-e", "cn1,-[1-2]x"], says="may not start with '-'", id="hl-dash-range"),
    row("hostlist", ["-e", f"@{T}/dash.txt"], says="may not start with '-'", id="hl-dash-file"),
    row("hostlist", ["-e", ".hidden"], says="may not start with '.'", id="hl-dot"),
    row("hostlist", ["-e", ""], says="empty item", id="hl-empty-string"),
    row("hostlist", ["-e", "cn 1"], says="invalid character", id="hl-space"),
    row("hostlist", ["-e", "cn\t1"], says="invalid character", id="hl-tab"),
    row("hostlist", ["-e", "cn\x1b1\x07"], says="invalid character", id="hl-escape-bell"),
    row("hostlist", ["-e", "cn1\nreboot"], says="invalid character", id="hl-newline"),
    row("hostlist", ["-e", "a" * 300], says="longer than 253", id="hl-long-name"),
    row("hostlist", ["-e", "a" * 250 + "[1-1000]"], says="longer than 253", id="hl-long-range"),
    row("hostlist", ["-e", "cn[1-100001]"], says="more than 100000", id="hl-too-many"),
    row("hostlist", ["-e", "cn[5-3]"], says="reversed", id="hl-reversed"),
    row("hostlist", ["-e", "cn[1-2"], says="unbalanced", id="hl-unbalanced"),
    row("hostlist", [], says="required", id="hl-no-args"),
    row("hostlist", ["-e", "-f", "cn1"], says="not allowed with", id="hl-two-modes"),
]

MANAGE = [
    row("manage", ["enable", f"@{T}/empty.txt"], says="no hosts in", id="m-enable-empty-file"),
    row("manage", ["--for-real", "disable", f"@{T}/empty.txt"], says="no hosts in",
        id="m-disable-empty-file"),
    row("manage", ["status", f"@{T}/empty.txt"], says="no hosts in", id="m-status-empty-file"),
    row("manage", ["enable"], says="needs HOSTS", id="m-enable-no-hosts"),
    row("manage", ["enable", "cn[1-2]", "-x", "cn[1-3]"], says="no hosts left after --exclude",
        id="m-exclude-all"),
    row("manage", ["-x", f"@{T}/dash.txt", "status"], says="may not start with '-'",
        id="m-exclude-dash-file"),
    row("manage", ["-f", "yaml", "status"], says="invalid choice: 'yaml'", id="m-format-yaml"),
    row("manage", ["-f", "json", "enable", "cn1"], says="--format is for status, listwns, vmstats",
        id="m-format-enable"),
    row("manage", ["-c", "hypervisor", "runvms"], says="--column is for status", id="m-column-runvms"),
    row("manage", ["--long", "listwns"], says="--long is for status", id="m-long-listwns"),
    row("manage", ["--reason", "x", "enable", "cn1"], says="--reason is for disable",
        id="m-reason-enable"),
    row("manage", ["--drain", "60", "enable", "cn1"], says="--drain is for disable",
        id="m-drain-enable"),
    row("manage", ["--drain", "-5", "disable", "cn1"], says="--drain", id="m-drain-negative"),
    row("manage", ["--drain", "604801", "disable", "cn1"], says="604800",
        id="m-drain-over-a-week"),
    row("manage", ["--prepared", "disable", "cn1"], says="--prepared is for the subworkers",
        id="m-prepared-by-hand"),
    row("manage", ["--reason", "a\x1b]0;x\x07", "disable", "cn1"],
        says="one line of printable characters", id="m-reason-escape"),
    row("manage", ["--reason", "x" * 129, "disable", "cn1"], says="more than 128",
        id="m-reason-long"),
    row("manage", ["--json", "-f", "csv", "status"], says="--json and --format csv disagree",
        id="m-json-csv"),
    row("manage", ["enable", f"@{T}/dash.txt"], says="may not start with '-'", id="m-dash-file"),
    row("manage", ["enable", f"@{T}/jump.txt"], says="may not start with '-'", id="m-jump-file"),
    row("manage", ["enable", "cn01,-Jhost"], says="may not start with '-'", id="m-dash-in-list"),
    row("manage", ["enable", "-Jhost"], says="unrecognized arguments: -Jhost", id="m-dash-word"),
    row("manage", ["enable", ".cn01"], says="may not start with '.'", id="m-dot"),
    row("manage", ["enable", "@/dev/zero"], says="not a regular file", id="m-dev-zero"),
    row("manage", ["enable", f"@{T}/fifo"], says="not a regular file", id="m-fifo"),
    row("manage", ["enable", f"@{T}/adir"], says="not a regular file", id="m-directory"),
    row("manage", ["enable", f"@{T}/big.txt"], says="larger than", id="m-2mib-file"),
    row("manage", ["enable", f"@{T}/nested.txt"], says="may not include", id="m-nested"),
    row("manage", ["enable", f"cn[1-{HUGE}]"], says="longer than 9 digits", id="m-5000-digits"),
    row("manage", ["enable", "cn[١-٢]"], says="non-numeric range", id="m-arabic-digits"),
    row("manage", ["enable", ""], says="empty item", id="m-empty-host"),
    row("manage", ["enable", "cn1 cn2"], says="invalid character", id="m-space"),
    row("manage", ["enable", "cn1;reboot"], says="invalid character", id="m-semicolon"),
    row("manage", ["enable", "cn01.ïnternal"], says="invalid character", id="m-unicode-name"),
    row("manage", ["--for-real", "disable", "cn[1-100001]"], says="more than", id="m-too-many"),
    row("manage", ["--fanout", "0", "--parallel", "enable", "cn1"], says="at least 1",
        id="m-fanout-0"),
    row("manage", ["--fanout", "1000000000", "--parallel", "enable", "cn1"], says="at most",
        id="m-fanout-huge"),
    row("manage", ["--fanout", "-1", "enable", "cn1"], says="--fanout", id="m-fanout-negative"),
    row("manage", ["--fanout", "1.5", "enable", "cn1"], says="not a whole number",
        id="m-fanout-float"),
    row("manage", ["--fanout", "", "enable", "cn1"], says="not a whole number",
        id="m-fanout-empty"),
    row("manage", ["--fanout", "٣", "enable", "cn1"], says="not a whole number",
        id="m-fanout-arabic"),
    row("manage", ["--fanout", "1_0", "enable", "cn1"], says="not a whole number",
        id="m-fanout-underscore"),
    row("manage", ["--fanout", " 5", "enable", "cn1"], says="not a whole number",
        id="m-fanout-space"),
    row("manage", ["--vm-timeout", "1e20", "disable", "cn1"], says="not a whole number",
        id="m-vm-timeout-float"),
    row("manage", ["--vm-timeout", "99999999999999999999", "disable", "cn1"], says="at most",
        id="m-vm-timeout-huge"),
    row("manage", ["--vm-timeout", HUGE, "disable", "cn1"], says="at most",
        id="m-vm-timeout-5000-digits"),
    row("manage", ["--vm-timeout", "-1", "disable", "cn1"], says="--vm-timeout",
        id="m-vm-timeout-negative"),
    row("manage", ["--count", "0", "runvms"], says="at least 1", id="m-count-0"),
    row("manage", ["--count", "1000000000", "runvms"], says="at most", id="m-count-huge"),
    row("manage", ["--count", "two", "runvms"], says="not a whole number", id="m-count-word"),
    row("manage", ["--ssh-config", "rel/ssh_config", "status"], says="absolute",
        id="m-ssh-config-relative"),
    row("manage", ["--ssh-config", f"{T}/nope", "status"], says="not found",
        id="m-ssh-config-missing"),
    row("manage", ["--config", f"{T}/missing.conf", "status"], says="not found",
        id="m-config-missing"),
    row("manage", ["status"], says="not found", env={"HLTCLOUD_CONFIG": f"{T}/missing.conf"},
        id="m-config-env-missing"),
    row("manage", ["--config", "/dev/zero", "status"], says="not a regular file",
        id="m-config-dev-zero"),
    row("manage", ["--config", f"{T}/fifo", "status"], says="not a regular file",
        id="m-config-fifo"),
    row("manage", ["--config", f"{T}/adir", "status"], says="not a regular file",
        id="m-config-directory"),
    row("manage", ["--user-data", f"{T}/nope.txt", "runvms"], says="user data file",
        id="m-user-data-missing"),
    row("manage", ["--user-data", "/dev/zero", "runvms"], says="not a regular file",
        id="m-user-data-dev-zero"),
    row("manage", ["--user-data", f"{T}/fifo", "runvms"], says="not a regular file",
        id="m-user-data-fifo"),
    row("manage", ["--user-data", f"{T}/adir", "runvms"], says="not a regular file",
        id="m-user-data-directory"),
    row("manage", ["--user-data", f"{T}/ud64k.txt", "runvms"], says="larger than 49149",
        id="m-user-data-too-big"),
    row("manage", ["--user-data", f"{T}/latin1.txt", "runvms"], says="not UTF-8",
        id="m-user-data-latin1"),
    row("manage", ["runvms", "cn1"], says="no HOSTS", id="m-runvms-hosts"),
    row("manage", ["frobnicate"], says="frobnicate", id="m-unknown-command"),
    row("manage", [""], says="invalid choice", id="m-empty-command"),
    row("manage", ["disable", "cn1", "--vm-timout", "3"],
        says="unknown switch --vm-timout (did you mean --vm-timeout?)", id="m-mistyped-after"),
    row("manage", ["--for-real"], says="required", id="m-no-command"),
    row("manage", ["--bogus", "status"], says="unknown switch --bogus", id="m-unknown-switch"),
    row("manage", ["status"], code=3, says=CLOSED, id="m-good-input-closed-cloud"),
    # The environment: exit 3, the credentials name the setting at fault.
    row("manage", ["status"], code=3, says="OS_AUTH_URL is not an http(s) URL",
        env={"OS_AUTH_URL": "keystone:5000/v3"}, id="m-auth-url-no-scheme"),
    row("manage", ["status"], code=3, says="OS_AUTH_URL is not an http(s) URL",
        env={"OS_AUTH_URL": "file:///etc/passwd"}, id="m-auth-url-file"),
    row("manage", ["status"], code=3, says="missing OpenStack credentials",
        env={"OS_PASSWORD": ""}, id="m-no-password"),
    row("manage", ["status"], code=3, says="OS_CACERT is not a file",
        env={"OS_CACERT": f"{T}/no-such-ca.pem"}, id="m-cacert-missing"),
    row("manage", ["--subworker", "enable", "cn1"], code=3, says="HLTCLOUD_AUTH is malformed",
        env={"HLTCLOUD_AUTH": "{not json"}, id="m-handoff-not-json"),
    row("manage", ["--subworker", "enable", "cn1"], code=3, says="HLTCLOUD_AUTH is malformed",
        env={"HLTCLOUD_AUTH": '{"token": "t"}'}, id="m-handoff-incomplete"),
    row("manage", ["--subworker", "enable", "cn1"], code=3, says="HLTCLOUD_AUTH is too large",
        env={"HLTCLOUD_AUTH": "x" * 70_000}, id="m-handoff-huge"),
    row("manage", ["status"], code=3, says=CLOSED, env={"HLTCLOUD_AUTH": "{not json"},
        id="m-handoff-ignored-outside-subworkers"),
    row("prefill", ["img", "cn1"], code=3, says="OS_AUTH_URL is not an http(s) URL",
        env={"OS_AUTH_URL": "127.0.0.1:5000"}, id="p-auth-url-no-scheme"),
]
for _name, _says in (("quote", "no closing quotation"), ("latin1", "not UTF-8"),
                     ("negtimeout", "must be at least 1: -5"), ("hugetimeout", "at most 300"),
                     ("floattimeout", "whole number"), ("relinst", "paths.instances_dir"),
                     ("relbase", "paths.base_dir"), ("spacebase", "paths.base_dir"),
                     ("dotdotbase", "paths.base_dir"), ("relglance", "paths.glance_images_dir"),
                     ("relsshcfg", "ssh.config"), ("reluserdata", "runvms.user_data"),
                     ("owner", "paths.image_owner"), ("sshuser", "ssh.user"),
                     ("service", "services.names"), ("notini", "no [section]"),
                     ("nosection", "no [section]"), ("noequals", "line 2: 'user root'"),
                     ("twice", "already exists")):
    MANAGE.append(row("manage", ["--config", f"{T}/{_name}.conf", "status"], says=_says,
                      id=f"m-config-{_name}"))

PREFILL = [
    row("prefill", ["img", f"@{T}/empty.txt"], says="no hosts", id="p-empty-file"),
    row("prefill", ["img", f"@{T}/dash.txt"], says="may not start with '-'", id="p-dash-file"),
    row("prefill", ["img", "--", "-Jhost"], says="may not start with '-'", id="p-dash-word"),
    row("prefill", ["img", ".cn01"], says="may not start with '.'", id="p-dot"),
    row("prefill", ["img", "@/dev/zero"], says="not a regular file", id="p-dev-zero"),
    row("prefill", ["img", f"@{T}/fifo"], says="not a regular file", id="p-fifo"),
    row("prefill", ["img", f"@{T}/adir"], says="not a regular file", id="p-directory"),
    row("prefill", ["img", f"@{T}/big.txt"], says="larger than", id="p-2mib-file"),
    row("prefill", ["img", f"cn[1-{HUGE}]"], says="longer than 9 digits", id="p-5000-digits"),
    row("prefill", ["img", "cn[١-٢]"], says="non-numeric", id="p-arabic-digits"),
    row("prefill", ["img", "cn1,,cn2"], says="empty item", id="p-empty-item"),
    row("prefill", ["", "cn1"], says="IMAGE", id="p-empty-image"),
    row("prefill", ["--prune", "--wave", "cn1"], says="--prune transfers nothing: --wave",
        id="p-prune-wave"),
    row("prefill", ["--prune", "--check", "cn1"], says="--prune transfers nothing: --check",
        id="p-prune-check"),
    row("prefill", ["--keep", "img", "img", "cn1"], says="--keep and --min-age go with --prune",
        id="p-keep-alone"),
    row("prefill", ["--prune", "--min-age", "-1", "cn1"], says="at least 0", id="p-min-age-neg"),
    row("prefill", ["--prune", "--min-age", "1e9", "cn1"], says="not a whole number",
        id="p-min-age-float"),
    row("prefill", ["--prune", "--keep", "", "cn1"], says="--keep IMAGE", id="p-keep-empty"),
    row("prefill", ["--prune", f"@{T}/dash.txt"], says="may not start with '-'",
        id="p-prune-dash-file"),
    row("prefill", ["img"], says="required: HOSTS", id="p-no-hosts"),
    row("prefill", ["-x", "cn1", "img", "cn1"], says="no hosts left after --exclude",
        id="p-exclude-all"),
    row("prefill", ["--tries", "0", "img", "cn1"], says="at least 1", id="p-tries-0"),
    row("prefill", ["--tries", "1000000", "img", "cn1"], says="at most", id="p-tries-huge"),
    row("prefill", ["--tries", "x", "img", "cn1"], says="not a whole number", id="p-tries-word"),
    row("prefill", ["--timeout", "1e20", "img", "cn1"], says="not a whole number",
        id="p-timeout-float"),
    row("prefill", ["--timeout", "100000000000000000000", "img", "cn1"], says="at most",
        id="p-timeout-huge"),
    row("prefill", ["--timeout", "-5", "img", "cn1"], says="--timeout", id="p-timeout-negative"),
    row("prefill", ["--timeout", "", "img", "cn1"], says="not a whole number",
        id="p-timeout-empty"),
    row("prefill", ["--bogus", "img", "cn1"], says="unknown switch --bogus", id="p-unknown-switch"),
    row("prefill", ["--dryrun", "img", "cn1"], says="(did you mean --dry-run?)",
        id="p-mistyped-switch"),
    row("prefill", [], says="required", id="p-no-args"),
    row("prefill", ["img"], says="required", id="p-no-hosts"),
    row("prefill", ["--ssh-config", "rel/cfg", "img", "cn1"], says="absolute",
        id="p-ssh-config-relative"),
    row("prefill", ["--ssh-config", f"{T}/nope", "img", "cn1"], says="not found",
        id="p-ssh-config-missing"),
    row("prefill", ["--ssh-config", f"{T}/ssh config", "img", "cn1"], says="ssh config",
        id="p-ssh-config-space"),
    row("prefill", ["--config", f"{T}/missing.conf", "img", "cn1"], says="not found",
        id="p-config-missing"),
    row("prefill", ["--config", "/dev/zero", "img", "cn1"], says="not a regular file",
        id="p-config-dev-zero"),
    row("prefill", ["img", "cn1"], code=3, says=CLOSED, id="p-good-input-closed-cloud"),
    row("prefill", ["--check", "--dry-run", "img", "cn1"], says="--dry-run cannot go with it",
        id="p-check-dry-run"),
    row("prefill", ["--check", "--wave", "--tries", "2", "img", "cn1"],
        says="--wave, --tries cannot go with it", id="p-check-wave-tries"),
    row("prefill", ["--json", "img", "cn1"], says="--json needs --check", id="p-json-no-check"),
    row("prefill", ["--check", "--json", "img", "cn1"], code=3, says=CLOSED,
        id="p-check-good-input-closed-cloud"),
    row("prefill", ["--check", "--config", f"{T}/relnovaconf.conf", "img", "cn1"],
        says="paths.nova_conf", id="p-check-config-relnovaconf"),
]
for _name, _says in (("quote", "no closing quotation"), ("latin1", "not UTF-8"),
                     ("negtimeout", "must be at least 1"), ("relinst", "paths.instances_dir"),
                     ("relbase", "paths.base_dir"), ("spacebase", "paths.base_dir"),
                     ("dotdotbase", "paths.base_dir"), ("relglance", "paths.glance_images_dir"),
                     ("relsshcfg", "ssh.config"), ("owner", "paths.image_owner"),
                     ("ownerdollar", "paths.image_owner")):
    PREFILL.append(row("prefill", ["--config", f"{T}/{_name}.conf", "img", "cn1"], says=_says,
                       id=f"p-config-{_name}"))

WAVE = [
    row("wave", [SRC, DEST, f"@{T}/empty.txt"], says="no hosts", id="w-empty-file"),
    row("wave", ["--dry-run", SRC, DEST, ".cn01"], says="may not start with '.'",
        id="w-dry-dot"),
    row("wave", ["--dry-run", SRC, DEST, "--", "-Jhost"], says="may not start with '-'",
        id="w-dry-dash-word"),
    row("wave", ["--dry-run", SRC, DEST, f"@{T}/dash.txt"], says="may not start with '-'",
        id="w-dry-dash-file"),
    row("wave", ["--dry-run", SRC, DEST, "cn[١-٢]"], says="non-numeric",
        id="w-dry-arabic-digits"),
    row("wave", ["--dry-run", "--pipeline", "--ssh-config", f"{T}/ssh config", SRC, DEST, "cn1"],
        says="ssh config", id="w-dry-pipeline-ssh-config-space"),
    row("wave", ["--dry-run", "/dev/zero", DEST, "cn1"], says="not a regular file",
        id="w-dry-source-dev-zero"),
    row("wave", ["/dev/zero", DEST, "cn1"], says="SOURCE is not a readable file",
        id="w-source-dev-zero"),
    row("wave", [f"{T}/adir", DEST, "cn1"], says="SOURCE is not a readable file",
        id="w-source-directory"),
    row("wave", [f"{T}/fifo", DEST, "cn1"], says="SOURCE is not a readable file",
        id="w-source-fifo"),
    row("wave", [f"{T}/dangling", DEST, "cn1"], says="SOURCE is not a readable file",
        id="w-source-dangling"),
    row("wave", ["", DEST, "cn1"], says="SOURCE is not a readable file", id="w-source-empty"),
    row("wave", ["--head-slots", "1000000000", "--dry-run", SRC, DEST, "cn1"], says="at most",
        id="w-head-slots-huge"),
    row("wave", ["--head-slots", "0", SRC, DEST, "cn1"], says="at least 1", id="w-head-slots-0"),
    row("wave", ["--head-slots", "٢", SRC, DEST, "cn1"], says="not a whole number",
        id="w-head-slots-arabic"),
    row("wave", ["--tries", "0", SRC, DEST, "cn1"], says="at least 1", id="w-tries-0"),
    row("wave", ["--tries", "101", SRC, DEST, "cn1"], says="at most", id="w-tries-101"),
    row("wave", ["--tries", "1.5", SRC, DEST, "cn1"], says="not a whole number",
        id="w-tries-float"),
    row("wave", ["--tries", "", SRC, DEST, "cn1"], says="not a whole number", id="w-tries-empty"),
    row("wave", ["--timeout", "1e20", SRC, DEST, "cn1"], says="not a whole number",
        id="w-timeout-float"),
    row("wave", ["--timeout", "99999999999", SRC, DEST, "cn1"], says="at most",
        id="w-timeout-huge"),
    row("wave", ["--timeout", "0", SRC, DEST, "cn1"], says="at least 1", id="w-timeout-0"),
    row("wave", ["--timeout", "-1", SRC, DEST, "cn1"], says="--timeout", id="w-timeout-negative"),
    row("wave", [SRC, "relative/dest", "cn1"], says="DEST", id="w-dest-relative"),
    row("wave", [SRC, "/tmp/a b", "cn1"], says="DEST", id="w-dest-space"),
    row("wave", [SRC, "/tmp/../etc/passwd", "cn1"], says="DEST", id="w-dest-dotdot"),
    row("wave", ["--ssh-config", "rel/cfg", SRC, DEST, "cn1"], says="absolute",
        id="w-ssh-config-relative"),
    row("wave", [SRC, DEST, "@/dev/zero"], says="not a regular file", id="w-hosts-dev-zero"),
    row("wave", [SRC, DEST, f"@{T}/fifo"], says="not a regular file", id="w-hosts-fifo"),
    row("wave", [SRC, DEST, f"@{T}/big.txt"], says="larger than", id="w-hosts-2mib"),
    row("wave", [SRC, DEST, f"cn[1-{HUGE}]"], says="longer than 9 digits", id="w-5000-digits"),
    row("wave", [], says="required", id="w-no-args"),
    row("wave", ["--bogus", SRC, DEST, "cn1"], says="unknown switch --bogus", id="w-unknown-switch"),
    row("wave", ["--tires", "2", SRC, DEST, "cn1"], says="(did you mean --tries?)",
        id="w-mistyped-switch"),
]
for _name, _says in (("quote", "no closing quotation"), ("latin1", "not UTF-8"),
                     ("negtimeout", "must be at least 1"), ("hugetimeout", "at most 300"),
                     ("relsshcfg", "ssh.config"), ("notini", "no [section]")):
    WAVE.append(row("wave", ["--dry-run", "--config", f"{T}/{_name}.conf", SRC, DEST, "cn1"],
                    says=_says, id=f"w-dry-config-{_name}"))

TABLE = HOSTLIST + MANAGE + PREFILL + WAVE


def listing(root):
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def processes_marked(marker):
    """Processes whose environment holds MARKER: what a row started, however detached."""
    return processes(lambda entry: int(entry.name) if marker in (entry / "environ").read_bytes()
                     else None)


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def test_table_is_large_enough():
    assert len(TABLE) >= 100


@pytest.mark.parametrize("tool, args, code, says, env_extra", TABLE)
def test_bad_input(place, tool, args, code, says, env_extra):
    tmp, env = place
    marker = f"HLTCLOUD_TEST_ROW={uuid.uuid4().hex}"
    env = {**env, **{k: v.replace(T, str(tmp)) for k, v in env_extra.items()}}
    env[marker.split("=")[0]] = marker.split("=")[1]
    argv = [*TOOLS[tool], *(a.replace(T, str(tmp)) for a in args)]
    before = listing(tmp)
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=tmp / "cwd", stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=TIME_BOUND * 3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    elapsed = time.monotonic() - started
    stderr = err.decode(errors="replace")
    left = processes_marked(marker.encode())
    for pid in left:  # clean up before failing, so that one row cannot spoil the others
        os.kill(pid, signal.SIGKILL)

    assert proc.returncode == code, f"exit {proc.returncode}: {stderr[-500:]}"
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, stderr[-2000:]
    assert says in stderr, stderr[-500:]
    if code == 2:
        assert out == b"", out[-500:]  # nothing done, nothing announced
    assert listing(tmp) == before
    assert left == []
    assert elapsed < TIME_BOUND, f"took {elapsed:.1f} s"


# ---------------------------------------------------------------- units and properties

def test_wave_source_with_a_colon_is_passed_as_a_local_path(tmp_path, monkeypatch):
    """rsync reads 'img:v2' as HOST:PATH; we hand it './img:v2' (the file exists here)."""
    from hltcloud.transfer import cli as wave_cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "img:v2").write_bytes(b"x")
    assert wave_cli.local_source("img:v2") == "./img:v2"
    assert wave_cli.local_source(str(tmp_path / "img:v2")) == str(tmp_path / "img:v2")
    (tmp_path / "dir:x").mkdir()
    (tmp_path / "dir:x" / "a").write_bytes(b"x")
    assert wave_cli.local_source("dir:x/a") == "./dir:x/a"


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from hltcloud import hostlist  # noqa: E402

_PROPERTY = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text that exercises the parser: its syntax, digits of other scripts, control characters.
_SPEC_CHARS = st.sampled_from(list("cn0123456789[]-,.@# _\t\n;$٣３é") + ["\x00", "\x1b"])


@_PROPERTY
@given(st.one_of(st.text(_SPEC_CHARS, max_size=40), st.text(max_size=40)))
def test_any_text_expands_or_raises_host_list_error(text):
    try:
        hosts = hostlist.expand(text)
    except hostlist.HostListError as err:
        assert "\n" not in str(err)
        return
    for host in hosts:  # what expands is a name ssh and pdsh take as a host, never an option
        assert host[0] not in "-." and len(host) <= hostlist.MAX_NAME
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in host)


_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,5}([.-][a-z0-9_]{1,4}){0,2}[0-9]{0,4}", fullmatch=True)


@_PROPERTY
@given(st.lists(_NAME, min_size=1, max_size=30, unique=True))
def test_fold_then_expand_gives_the_same_hosts(names):
    folded = hostlist.fold(names)
    again = hostlist.expand(folded)
    assert sorted(again) == sorted(names) and len(again) == len(names)
    assert hostlist.fold(again) == folded


@_PROPERTY
@given(st.text(max_size=30), st.integers(-5, 5), st.integers(5, 10 ** 6))
def test_whole_number_is_in_bounds_or_refused_in_one_line(text, low, high):
    from hltcloud import inputs
    parse = inputs.whole_number(low, high)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as err:  # the property: no other exception, one line
        assert "\n" not in str(err)
        return
    assert re.fullmatch(r"-?[0-9]+", text) and value == int(text) and low <= value <= high


@_PROPERTY
@given(st.integers(-10 ** 30, 10 ** 30), st.integers(0, 3), st.integers(3, 10 ** 9))
def test_whole_number_takes_exactly_the_numbers_in_range(number, low, high):
    from hltcloud import inputs
    parse = inputs.whole_number(low, high)
    if low <= number <= high:
        assert parse(str(number)) == number
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="must be at (least|most)"):
            parse(str(number))
