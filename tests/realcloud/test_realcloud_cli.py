"""`realcloud up` and `down` on loopback: everything it started is gone afterwards."""
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

import netnodes
import realcloud
import realfixture

CLI = Path(__file__).resolve().parent / "realcloud"


def _alive(pid):
    return realcloud.pid_alive(pid)


@pytest.fixture
def free_slot():
    """A slot nobody uses (its lock held meanwhile), so its ports are ours."""
    reason = realfixture.unavailable()
    if reason:
        pytest.skip(reason)
    realfixture.ensure_installed()
    deadline = time.monotonic() + 300
    while True:
        for slot in netnodes.SLOTS:
            fd = netnodes.try_lock(slot)
            if fd is not None:
                try:
                    yield slot
                finally:
                    os.close(fd)
                return
        if time.monotonic() > deadline:
            pytest.skip("no free slot for a second cloud")
        time.sleep(2)


def test_up_then_down_leaves_nothing(free_slot):
    state = realcloud.default_state(free_slot)  # postgres (own user) must reach it: not tmp_path
    up = subprocess.run([str(CLI), "up", "--slot", str(free_slot)],
                        capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        pids = [pid for pid, _ in realcloud.RealCloud(state).recorded()]
        assert len(pids) == 10 and all(_alive(p) for p in pids)
        ports = realcloud.ports(free_slot)
        assert all(realcloud.port_open("127.0.0.1", ports[app]) for app in realcloud.APPS)
    finally:
        down = subprocess.run([str(CLI), "down", "--slot", str(free_slot)],
                              capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not any(_alive(p) for p in pids)
    # the broker's and the database's children went with their process groups
    for port in ("postgres", "rabbit", "epmd", *realcloud.APPS):
        with socket.socket() as sock:
            sock.settimeout(0.5)
            assert sock.connect_ex(("127.0.0.1", ports[port])) != 0, port
    assert not state.exists()
