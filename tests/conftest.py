"""Shared fixtures: the simulated cluster (tests/simcluster/fixture.py, API in its README), a
novaclient on it, the image runvms boots. The shared helpers are in tests/helpers.py."""
import json
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


@pytest.fixture
def lone_simulator(tmp_path):
    """The simulator alone on loopback, for scale: virtual hosts added to it can't leak into the
    shared cluster (hosts survive its reset). Yields (sim(method, path, body), env)."""
    import secrets
    import urllib.request
    password = secrets.token_urlsafe(12)
    (tmp_path / "admin-password").write_text(password)
    (tmp_path / "hltcloud.conf").write_text("[runvms]\nuser_data =\n")
    port = helpers.free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "simulator.log", "wb")
    proc = subprocess.Popen(["python3", str(helpers.REPO / "tests" / "simcluster" / "simulator.py"), "--state",
                             str(tmp_path), "--listen", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def sim(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
        return json.loads(text) if text.strip() else None

    env = {**os.environ, "OS_AUTH_URL": f"{url}/identity/v3", "OS_USERNAME": "admin",
           "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default", "HLTCLOUD_CONFIG": str(tmp_path / "hltcloud.conf")}
    try:
        def healthy():
            try:
                return sim("GET", "/sim/health") is not None
            except OSError:
                assert proc.poll() is None, (tmp_path / "simulator.log").read_text()
                return False
        helpers.wait_for(healthy, what="the simulator")
        yield sim, env
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
