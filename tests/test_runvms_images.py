"""runvms finds its image with Glance's own lookup (glance_image.find_image): every page of
the image list, an id asked for directly, errors reported (issue 11)."""
import subprocess
import time
from pathlib import Path

from hltcloud.cloud import Cloud

REPO = Path(__file__).resolve().parents[1]


def test_runvms_boots_an_image_beyond_the_first_page(cluster):
    """Glance lists 25 images a page, newest first: the image made first is on page 2."""
    wanted = cluster.add_image("early-image", size_mb=1, fmt="raw")
    for number in range(30):
        cluster.add_image(f"filler-{number:02d}", size_mb=1, fmt="raw")
    nova = Cloud(env=cluster.env).nova()
    for host in cluster.names[:1]:
        done = cluster.ssh(host, [str(REPO / "tests" / "simcluster" / "node-service"),
                                  "openstack-nova-compute", "start"])
        assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            s.state == "up" for s in nova.services.list(host=cluster.names[0], binary="nova-compute")):
        time.sleep(0.3)
    result = subprocess.run([str(REPO / "bin" / "openstack-hlt-manage"), "--for-real",
                             "--vm-timeout", "60", "--count", "1", "--image", wanted, "runvms"],
                            env=cluster.env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    servers = nova.servers.list(search_opts={"all_tenants": 1})
    assert [s.image["id"] for s in servers] == [wanted]
