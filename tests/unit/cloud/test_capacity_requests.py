"""runvms and vmstats ask Placement a constant number of requests, whatever the farm's size
(issue 23): the allocation candidates name every hypervisor with room, with its capacity and
use, in one answer; for vmstats' total, those of the full ones come from one more request a
resource class (one unit of it, microversion 1.27), and only a hypervisor full in every
class, or one whose summary cannot explain why it was refused, has its inventory read on its
own. The figures stay those of the inventories and usages, hypervisor by hypervisor.

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
    # full of VCPU, with room for disk: the first class asked for names them all
    assert [(r["path"], r.get("query")) for r in asked] == [
        ("/placement/resource_providers", None),
        ("/placement/allocation_candidates", {"resources": "DISK_GB:1,MEMORY_MB:512,VCPU:1"}),
        ("/placement/allocation_candidates", {"resources": "DISK_GB:1"})]
    dry, asked = run(sim, env, *TINY, "runvms")
    assert "[DRY ] Booting 3 VM(s)" in dry.stdout and len(asked) == 2


def fill(sim, env, hosts, inventory, count):
    """HOSTS virtual hypervisors of INVENTORY, with COUNT m1.tiny booted on them."""
    sim("POST", "/sim/hosts", {"names": hosts, "virtual": True, "inventory": inventory})
    sim("POST", "/sim/quota", {"instances": -1, "cores": -1, "ram": -1})
    booted, _ = run(sim, env, *TINY, "--for-real", "--count", str(count), "--vm-timeout", "30",
                    "runvms")
    assert f"Requested {count} VM(s), {count} ACTIVE" in booted.stdout


def test_a_hypervisor_full_in_every_class_has_its_inventory_read(lone_simulator, tmp_path):
    sim, env = lone_simulator
    add_image(sim, tmp_path)
    # two m1.tiny (1 VCPU, 512 MB, 1 GB) fill each class: 2 VCPU at the ratio 2.0,
    # 1536 MB less 512 reserved, 2 GB
    fill(sim, env, ["v000.virtual", "v001.virtual"], {"VCPU": 1, "MEMORY_MB": 1536, "DISK_GB": 2}, 4)
    stats, asked = run(sim, env, *TINY, "--json", "vmstats")
    assert json.loads(stats.stdout)["capacity"] == {"flavor": "m1.tiny", "hypervisors": 2,
                                                    "total": 4, "used": 4, "free": 0}
    paths = [r["path"].rsplit("/", 1)[-1] for r in asked]
    assert paths == ["resource_providers"] + ["allocation_candidates"] * 4 + ["inventories"] * 2


def test_an_older_placement_has_each_full_hypervisor_read(lone_simulator, tmp_path):
    sim, env = lone_simulator
    add_image(sim, tmp_path)
    fill(sim, env, [f"v{i:03d}.virtual" for i in range(3)], TWO_TINY, 6)
    newest, _ = run(sim, env, *TINY, "--json", "vmstats")
    sim("POST", "/sim/placement-max", {"version": "1.26"})  # before every class in summaries
    older, asked = run(sim, env, *TINY, "--json", "vmstats")
    assert json.loads(older.stdout) == json.loads(newest.stdout)
    assert json.loads(older.stdout)["capacity"]["total"] == 6
    assert [r["status"] for r in asked].count(406) == 1
    assert len([r for r in asked if r["path"].endswith("/inventories")]) == 3


def test_a_flavor_above_a_hypervisors_max_unit_never_fits_there(lone_simulator):
    """m1.medium needs 2 VCPU; a hypervisor of 1 VCPU has a capacity of 2 at the ratio 2.0,
    but Placement's max_unit (1) refuses it: the summary shows room, the inventory says no."""
    sim, env = lone_simulator
    sim("POST", "/sim/hosts", {"names": ["v000.virtual", "v001.virtual"], "virtual": True,
                               "inventory": {"VCPU": 1}})
    stats, asked = run(sim, env, "--flavor", "m1.medium", "--json", "vmstats")
    assert json.loads(stats.stdout)["capacity"] == {"flavor": "m1.medium", "hypervisors": 2,
                                                    "total": 0, "used": 0, "free": 0}
    assert len([r for r in asked if r["path"].endswith("/inventories")]) == 2
