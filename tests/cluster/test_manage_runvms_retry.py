"""runvms' one retry, end to end through bin/openstack-hlt-manage on the simulated cluster.

The simulator's /sim/fail-next-boots makes the next boot request(s) end entirely in ERROR
("No valid host was found"), as if the capacity had been taken between runvms' count and its
request. runvms must delete those VMs, count again, boot once more, and leave nothing in ERROR.
"""
import re

import pytest
from helpers import boots, clear_log, expected_fit, lines, requests, start_compute, statuses, tool

pytestmark = pytest.mark.usefixtures("worker_image")  # conftest.py: runvms' image in Glance

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
DELETED = re.compile(r"\[ OK \] Deleting VM (\S+) \(ERROR\) of this run")
RUNVMS = ("--for-real", "--vm-timeout", "60", "runvms")


def deletes(log, ids):
    return [r for r in log if r["method"] == "DELETE"
            and r["path"].rstrip("/").rsplit("/", 1)[-1] in ids]


def error_ids(result):
    """The VM ids runvms says it deleted as ERROR VMs of its run."""
    return {m.group(1) for m in map(DELETED.fullmatch, lines(result)) if m}


def prepare(cluster, nova, fail):
    """Two node-backed hosts up, a quota larger than they hold: the capacity is the bound."""
    start_compute(cluster, nova, cluster.names[:2])
    cluster.sim("POST", "/sim/quota", {"instances": 1000, "cores": 1000, "ram": 10 ** 7})
    want = expected_fit(cluster, nova)
    assert want > 0
    cluster.sim("POST", "/sim/fail-next-boots", {"count": fail})
    clear_log(cluster)
    return want


def test_first_request_fails_the_second_fills_the_cluster(cluster, nova):
    want = prepare(cluster, nova, fail=1)
    result = tool(cluster, *RUNVMS)
    out = lines(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"[WARN] {want} of {want} VM(s) in ERROR ({NO_VALID_HOST}): the cloud changed "
            f"meanwhile; trying once more with a fresh count") in out
    assert f"Requested {want} VM(s), 0 ACTIVE" in out
    assert f"Requested {want} VM(s), {want} ACTIVE" in out
    assert f"[ OK ] Booted {want} VM(s) named wn-grid" in out
    assert f"Requested {2 * want} VM(s) in all, {want} ACTIVE" in out
    assert not any(l.startswith("[FAIL]") for l in out)
    log = requests(cluster)
    assert len(boots(log)) == 2
    failed = error_ids(result)
    assert len(failed) == want
    assert len(deletes(log, failed)) == want
    assert statuses(nova) == ["ACTIVE"] * want
    assert not failed & {s.id for s in nova.servers.list(search_opts={"all_tenants": 1})}
    assert expected_fit(cluster, nova) == 0


def test_both_requests_fail_exit_1_and_nothing_left_in_error(cluster, nova):
    want = prepare(cluster, nova, fail=2)
    result = tool(cluster, *RUNVMS)
    out = lines(result)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[FAIL] runvms: {want} of {want} VM(s) in ERROR ({NO_VALID_HOST}) (second attempt)" in out
    assert f"Requested {2 * want} VM(s) in all, 0 ACTIVE" in out
    log = requests(cluster)
    assert len(boots(log)) == 2
    failed = error_ids(result)
    assert len(failed) == 2 * want
    assert len(deletes(log, failed)) == 2 * want
    assert statuses(nova) == []
