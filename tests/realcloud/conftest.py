"""Fixtures of the real-cloud tests: one real OpenStack on simulated nodes per session."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402
import realfixture  # noqa: E402


@pytest.fixture(scope="session")
def realcloud():
    """Keystone, Nova, Placement, Glance for real, a nova-compute on each node; torn down at
    the end. Installs the services first if needed (`realcloud install`)."""
    yield from helpers.started(realfixture.unavailable, realfixture.RealCluster.start,
                               prepare=realfixture.ensure_installed)


@pytest.fixture
def rcloud(realcloud):
    """The session's real cloud, reset: computes up and enabled, no servers, default quotas."""
    realcloud.reset()
    return realcloud
