"""Shared fixtures: the simulated cluster (tests/simcluster/fixture.py, API in its README), a
novaclient on it, the image runvms boots. The shared helpers are in tests/helpers.py."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "simcluster"))
import fixture  # noqa: E402
import helpers  # noqa: E402
from hostile_nova import HostileNova  # noqa: E402


@pytest.fixture(scope="session")
def simcluster():
    """One cluster for the whole session, in the first free slot; always torn down."""
    yield from helpers.started(fixture.unavailable, fixture.SimCluster.start)


@pytest.fixture
def cluster(simcluster):
    """The session cluster with a fresh state: no daemons, empty nodes, healed links, cloud reset."""
    simcluster.reset()
    return simcluster


@pytest.fixture
def hostile_nova(cluster):
    """A hostile nova user on every node while the test runs (simcluster/hostile_nova.py):
    the test names the predictable names (target) and asks what went wrong (problems)."""
    with HostileNova(cluster) as adversary:
        yield adversary


@pytest.fixture
def nova(cluster):
    """A novaclient with the cluster's credentials, already authenticated."""
    nova, _ = helpers.client(cluster)
    nova.services.list()  # authenticate now, before a test clears the request log
    return nova


@pytest.fixture
def worker_image(cluster):
    """The image runvms boots exists in Glance (images survive the cluster's reset): its id."""
    return helpers.worker_image(cluster)


def pytest_collection_modifyitems(items):
    """Tests that use the cluster carry the `simcluster` marker (-m "not simcluster")."""
    for item in items:
        if "simcluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.simcluster)


@pytest.fixture
def public_dir():
    """A sticky, world-writable directory like /run/lock or /tmp."""
    path = tempfile.mkdtemp(prefix="hlt-public-", dir="/tmp")
    os.chmod(path, 0o1777)
    yield Path(path)
    subprocess.run(["rm", "-rf", "--", path], check=True)
