"""runvms finds its image with Glance's own lookup (glance_image.find_image): every page of
the image list, an id asked for directly, errors reported (issue 11)."""
from helpers import start_compute, tool


def test_runvms_boots_an_image_beyond_the_first_page(cluster, nova):
    """Glance lists 25 images a page, newest first: the image made first is on page 2."""
    wanted = cluster.add_image("early-image", size_mb=1, fmt="raw")
    for number in range(30):
        cluster.add_image(f"filler-{number:02d}", size_mb=1, fmt="raw")
    start_compute(cluster, nova, cluster.names[:1])
    result = tool(cluster, "--for-real", "--vm-timeout", "60", "--count", "1", "--image", wanted,
                  "runvms")
    assert result.returncode == 0, result.stdout + result.stderr
    servers = nova.servers.list(search_opts={"all_tenants": 1})
    assert [s.image["id"] for s in servers] == [wanted]
