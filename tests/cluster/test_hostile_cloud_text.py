"""Names and messages from a hostile cloud (issue 19, rows 3 and 7): the simulator's hostile
mode (`PUT /sim/hostile {"names": true}`, tests/simcluster/README.md) serves compute hosts,
VMs, images and a flavor named with `$(...)`, terminal escapes, line breaks and 300
characters, and ends every error message and VM fault with an escape and a forged `[ OK ]`
line. The real tools run against it, as root would: no escape reaches the terminal, no line
is forged, no name is run, host names are checked where they enter, JSON stays exact.
"""
import io
import json
import os
import re
import subprocess

import pytest
from helpers import MANAGE, REPO, client, lines, start_compute, table_rows, tool

from hltcloud import errors
from hltcloud.ops import hostcache
from hltcloud.cloud.session import CloudError

PREFILL = "openstack-prefill-cache"
LEFT_OUT = "[WARN] left out a compute service that Nova lists: "


@pytest.fixture
def hostile(cluster):
    """The cluster's cloud in hostile mode: what it serves (names, error_text, marker, ...)."""
    served = cluster.sim("PUT", "/sim/hostile", {"names": True})
    assert not os.path.exists(served["marker"])
    yield served
    cluster.sim("PUT", "/sim/hostile", {"names": False})


def assert_harmless(served, *texts):
    """Nothing in TEXTS reaches a terminal raw, forges a status line, or ran a name."""
    for text in texts:
        assert not set(text) & {"\033", "\007", "\r"}, text
        assert not re.search(r"^\[ OK \] (forged|flavor)", text, re.M), text
    assert not os.path.exists(served["marker"])


def escaped(name):
    return name.encode("unicode_escape").decode()  # the same escapes for these names


# ------------------------------------------------------------------ host names (row 3)

def test_status_leaves_out_and_never_caches_a_host_name_that_fails_the_rule(cluster, hostile,
                                                                            tmp_path):
    env = {**cluster.env, "HLTCLOUD_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run([str(REPO / "bin" / MANAGE), "--nvms", "status"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_harmless(hostile, res.stdout, res.stderr)
    assert [row[0] for row in table_rows(res.stdout)] == cluster.names
    warned = [line for line in lines(res) if line.startswith(LEFT_OUT)]
    assert len(warned) == len(hostile["names"])
    assert f"{LEFT_OUT}invalid character(s) ' $()/' in host name {hostile['names'][0]!r}" in warned
    assert f"{LEFT_OUT}host name longer than 253 characters: 'cn{'9' * 58}'... (300 characters)" \
        in warned
    # The completion cache holds checked names only.
    assert (tmp_path / "cache" / "hosts").read_text().splitlines() == cluster.names


def test_status_json_has_only_checked_hosts_and_the_warnings_go_to_stderr(cluster, hostile):
    res = tool(cluster, "--json", "status")
    assert res.returncode == 0, res.stderr
    assert [item["hypervisor"] for item in json.loads(res.stdout)] == cluster.names
    warned = [line for line in res.stderr.splitlines() if line.startswith(LEFT_OUT)]
    assert len(warned) == len(hostile["names"])
    assert_harmless(hostile, res.stderr)


def test_the_host_cache_stores_checked_names_only(tmp_path, monkeypatch):
    monkeypatch.setenv(hostcache.CACHE_DIR_VAR, str(tmp_path / "cache"))
    assert hostcache.save(["cn01.internal", "cn$(touch x)", "cn\n02", "-o", "cn02"])
    assert (tmp_path / "cache" / "hosts").read_text() == "cn01.internal\ncn02\n"


# ------------------------------------------------------------------ printed names (row 7)

def test_listwns_shows_hostile_vm_and_host_names_printable_and_json_exact(cluster, hostile):
    res = tool(cluster, "listwns")
    assert res.returncode == 0, res.stderr
    assert_harmless(hostile, res.stdout, res.stderr)
    shown = sorted(escaped(name) for name in hostile["names"])
    rows = table_rows(res.stdout)
    assert sorted(row[1] for row in rows) == [f"wn-grid-{name}" for name in shown]
    assert sorted(row[3] for row in rows) == shown
    assert "5 worker VM(s) named wn-grid*" in lines(res)
    res = tool(cluster, "--json", "listwns")
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)  # exact: json.dumps escapes, nothing else does
    assert sorted(vm["name"] for vm in listed) == sorted(f"wn-grid-{n}" for n in hostile["names"])
    assert sorted(vm["hypervisor"] for vm in listed) == sorted(hostile["names"])


def test_vmstats_tables_and_the_capacity_line_with_a_hostile_flavor(cluster, hostile):
    res = tool(cluster, "--flavor", hostile["flavor"], "vmstats")
    assert res.returncode == 0, res.stderr
    assert_harmless(hostile, res.stdout, res.stderr)
    hosts = {row[0] for row in table_rows(res.stdout)}
    assert {escaped(n) for n in hostile["names"]} <= hosts
    capacity = [line for line in lines(res) if line.startswith("Capacity in VMs of flavor")]
    # one line, the flavor's name escaped (the counts depend on the computes up: any)
    assert len(capacity) == 1 and re.fullmatch(
        r"Capacity in VMs of flavor m1\.\\x1b\]0;owned\\x07\\n\[ OK \] flavor on \d+ "
        r"enabled, up hypervisor\(s\): \d+ total, \d+ used, \d+ free", capacity[0]), capacity


@pytest.mark.usefixtures("worker_image")
def test_runvms_shows_the_clouds_fault_text_printable(cluster, nova, hostile):
    start_compute(cluster, nova, cluster.names[:1])
    cluster.sim("POST", "/sim/quota", {"instances": 1000, "cores": 1000, "ram": 10 ** 7})
    cluster.sim("POST", "/sim/fail-next-boots", {"count": 2})
    res = tool(cluster, "--for-real", "--vm-timeout", "60", "runvms")
    assert res.returncode == 1, res.stdout + res.stderr
    assert_harmless(hostile, res.stdout, res.stderr)
    fault = escaped("No valid host was found. There are not enough hosts available."
                    + hostile["error_text"])
    out = lines(res)
    assert any(l.startswith("[WARN] ") and f"in ERROR ({fault})" in l for l in out), out
    assert any(l.startswith("[FAIL] runvms: ") and f"in ERROR ({fault}) (second attempt)" in l
               for l in out), out


def test_prefill_names_a_hostile_image_printable(cluster, hostile):
    ids = {image["name"]: image["id"] for image in images(cluster)}
    name = f"img-{hostile['names'][2]}"  # the title and clear-screen escapes
    res = cluster.run_tool(PREFILL, "--dry-run", ids[name], cluster.names[0])
    assert res.returncode == 0, res.stdout + res.stderr
    assert_harmless(hostile, res.stdout, res.stderr)
    assert f"Getting image {escaped(name)} (id={ids[name]})" in lines(res), res.stdout + res.stderr


def test_an_error_line_quoting_the_cloud_stays_one_printable_line(cluster, hostile):
    queued = hostile["queued_image"]
    res = cluster.run_tool(PREFILL, queued, cluster.names[0])
    assert res.returncode == 2
    assert_harmless(hostile, res.stdout, res.stderr)
    name = escaped(f"img-queued-{hostile['names'][2]}{hostile['names'][3]}")
    assert res.stderr.splitlines() == [
        f"{PREFILL}: Image {name} (id={queued}) is not active yet (status: queued)"]


def test_the_one_line_error_printer_escapes_what_the_cloud_wrote():
    out = io.StringIO()
    status = errors.report("prog", CloudError("refused: \033]0;owned\007\r\n[ OK ] forged"), out)
    assert (status, out.getvalue()) == (3, "prog: refused: \\x1b]0;owned\\x07\\r\\n[ OK ] forged\n")


def images(cluster):
    _, sess = client(cluster)
    answer = sess.get("/v2/images?limit=1000", endpoint_filter={"service_type": "image"})
    return answer.json()["images"]
