"""openstack-prefill-cache --prune on the simulated cluster: a VM's image stays, an image no
server uses goes (and the leftovers of an interrupted prefill), a --keep image stays, a host
with an instance directory Nova does not know is left alone; dry by --dry-run."""
import hashlib
import os
import time

from helpers import base_file, boot_on, start_compute, worker_image

TOOL = "openstack-prefill-cache"
DAY = 86_400
UNUSED = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
KEPT = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
STRANGER = "0e9d8c7b-6a5f-4e3d-9c2b-1a0f9e8d7c6b"


def aged(path, data=b"x" * 8192):
    path.write_bytes(data)
    then = time.time() - 2 * DAY
    os.utime(path, (then, then))
    return path


def test_prune_keeps_what_servers_use_and_removes_the_rest(cluster, nova):
    used_host, other = cluster.names[:2]
    start_compute(cluster, nova, [used_host])
    boot_on(cluster, nova, used_host, 1)
    used = worker_image(cluster)
    files = {name: aged(base_file(cluster, host, image))
             for name, host, image in (("used", used_host, used), ("unused", used_host, UNUSED),
                                       ("kept", used_host, KEPT), ("other", other, UNUSED))}
    leftover = aged(cluster.node_dir(other) / "instances" / f"hlt-glance-cache-{UNUSED}", b"c")
    young = base_file(cluster, other, KEPT.replace("9e", "8e"))
    young.write_bytes(b"y")
    hosts = f"{used_host},{other}"

    dry = cluster.run_tool(TOOL, "--prune", "--dry-run", "--keep", KEPT, hosts)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    out = dry.stdout
    assert f"{used_host}: would remove /var/lib/nova/instances/_base/{files['unused'].name} " in out
    assert f"{other}: would remove /var/lib/nova/instances/_base/{files['other'].name} " in out
    assert f"{other}: would remove /var/lib/nova/instances/{leftover.name} " in out
    assert files["used"].name not in out and files["kept"].name not in out
    assert out.splitlines()[-1] == "Dry run: nothing was changed.", out
    assert all(path.exists() for path in (*files.values(), leftover, young))

    real = cluster.run_tool(TOOL, "--prune", "--keep", KEPT, hosts)
    assert real.returncode == 0, real.stdout + real.stderr
    assert f"{used_host}: removing /var/lib/nova/instances/_base/{files['unused'].name} " \
        in real.stdout
    assert [name for name, path in files.items() if path.exists()] == ["used", "kept"]
    assert not leftover.exists() and young.exists()
    again = cluster.run_tool(TOOL, "--prune", "--keep", KEPT, hosts)
    assert again.returncode == 0 and "removing" not in again.stdout, again.stdout


def test_a_host_with_an_instance_directory_nova_does_not_know_is_left_alone(cluster, nova):
    strange, fine = cluster.names[:2]
    unused = {host: aged(base_file(cluster, host, UNUSED)) for host in (strange, fine)}
    (cluster.node_dir(strange) / "instances" / STRANGER).mkdir()
    res = cluster.run_tool(TOOL, "--prune", f"{strange},{fine}")
    assert res.returncode == 1, res.stdout + res.stderr
    assert (f"[FAIL] {strange}: refusing: /var/lib/nova/instances/{STRANGER} is an instance "
            "directory of no server Nova lists on this host") in res.stdout
    assert unused[strange].exists() and not unused[fine].exists()
    assert f"Failed on 1 host(s): {strange}" in res.stdout
    assert hashlib.sha1(UNUSED.encode()).hexdigest() == unused[fine].name
