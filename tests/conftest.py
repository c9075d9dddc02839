"""Shared fixtures: the simulated cluster (tests/simcluster/fixture.py, API in its README)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "simcluster"))
import fixture  # noqa: E402


@pytest.fixture(scope="session")
def simcluster():
    """One cluster for the whole session, in the first free slot; always torn down."""
    reason = fixture.unavailable()
    if reason:
        pytest.skip(reason)
    cluster = fixture.SimCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(simcluster):
    """The session cluster with a fresh state: no daemons, empty nodes, healed links, cloud reset."""
    simcluster.reset()
    return simcluster


def pytest_collection_modifyitems(items):
    """Tests that use the cluster carry the `simcluster` marker (-m "not simcluster")."""
    for item in items:
        if "simcluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.simcluster)
