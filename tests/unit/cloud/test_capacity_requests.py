"""runvms and vmstats ask Placement a constant number of requests, whatever the farm's size
(issue 23): the allocation candidates name every hypervisor with room, with its capacity and
use, in one answer; only a full hypervisor's inventory is read on its own (vmstats' total),
concurrently. The figures stay those of the inventories and usages, hypervisor by hypervisor.

Against the simulator alone on loopback (the lone_simulator fixture, conftest.py): virtual
hypervisors, VMs booted by runvms itself."""
import json
import subprocess
from pathlib import Path


REPO = Path(__file__).resolve().parents[3]
TOOL = str(REPO / "bin" / "openstack-hlt-manage")
TINY = ("--flavor", "m1.tiny")
# VCPU 1 at the simulator's allocation ratio 2.0: two m1.tiny fill a hypervisor (memory and
# disk have room for more)
TWO_TINY = {"VCPU": 1}


def run(sim, env, *args):
    """(the tool's result, the Placement requests it made)."""
    sim("DELETE", "/sim/requests")
    result = subprocess.run([TOOL, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    log = sim("GET", "/sim/requests")
    log = log["requests"] if isinstance(log, dict) else log
    return result, [r for r in log if r["service"] == "placement"]


def add_image(sim, state):
    """The image runvms boots (the site configuration's default name), in the simulated Glance."""
    store = Path(state, "glance", "images")
    store.mkdir(parents=True, exist_ok=True)
    (store / "worker.img").write_bytes(b"\0" * 4096)
    sim("POST", "/sim/images", {"name": "CentOS6-build13", "file": "worker.img",
                                "disk_format": "raw"})


def test_placement_requests_do_not_grow_with_the_farm(lone_simulator, tmp_path):
    sim, env = lone_simulator
    add_image(sim, tmp_path)
    sim("POST", "/sim/hosts", {"names": [f"v{i:03d}.virtual" for i in range(5)], "virtual": True})
    small = [len(run(sim, env, *TINY, "--json", "vmstats")[1]), len(run(sim, env, *TINY, "runvms")[1])]
    sim("POST", "/sim/hosts", {"names": [f"w{i:03d}.virtual" for i in range(60)], "virtual": True})
    stats, asked = run(sim, env, *TINY, "--json", "vmstats")
    dry, asked_too = run(sim, env, *TINY, "runvms")
    assert json.loads(stats.stdout)["capacity"]["hypervisors"] == 65
    assert "on 65 enabled, up hypervisor(s)" in dry.stdout
    assert small == [len(asked), len(asked_too)] == [2, 2]  # the providers, the candidates
    assert [r["path"].split("?")[0] for r in asked] == ["/placement/resource_providers",
                                                         "/placement/allocation_candidates"]


def test_full_hypervisors_count_in_the_total_and_leave_no_room(lone_simulator, tmp_path):
    sim, env = lone_simulator
    add_image(sim, tmp_path)
    sim("POST", "/sim/hosts", {"names": [f"v{i:03d}.virtual" for i in range(6)], "virtual": True,
                               "inventory": TWO_TINY})
    sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
    booted, _ = run(sim, env, *TINY, "--for-real", "--count", "9", "--vm-timeout", "30", "runvms")
    assert "Requested 9 VM(s), 9 ACTIVE" in booted.stdout
    on = [h["vms"] for h in sim("GET", "/sim/hosts")["hosts"] if h["name"].startswith("v")]
    full = on.count(2)
    assert sorted(on) == sorted([2] * full + [1] * (9 - 2 * full)) and full >= 3
    stats, asked = run(sim, env, *TINY, "--json", "vmstats")
    assert json.loads(stats.stdout)["capacity"] == {"flavor": "m1.tiny", "hypervisors": 6,
                                                    "total": 12, "used": 9, "free": 3}
    assert stats.stderr == ""  # nothing said by the concurrent readers (urllib3's pool)
    inventories = [r for r in asked if r["path"].endswith("/inventories")]
    assert len(asked) == 2 + full and len(inventories) == full  # the full ones' only
    dry, asked = run(sim, env, *TINY, "runvms")
    assert "[DRY ] Booting 3 VM(s)" in dry.stdout and len(asked) == 2
