"""--parallel's default fanout: every host of the run at once, bounded by what the head can
hold (hltcloud.proc.fanout); an explicit --fanout N still wins."""
import json
import os
import resource
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, wait_for

from hltcloud.proc import fanout, runner

REPO = Path(__file__).resolve().parents[3]
GIB = 1 << 30
MANY = 40  # more hosts than pdsh's own default fanout (32)


@pytest.mark.parametrize("hosts, mem, nproc, nofile, expected", [
    (1, None, None, None, 1),
    (40, None, None, None, 40),  # nothing known to bound it: every host
    (400, None, None, None, 400),  # the farm at once
    (5000, None, None, None, fanout.HARD_CAP),
    (400, 24 * GIB, 96368, 20000, 400),  # this kind of machine holds a farm of 400
    (1000, 24 * GIB, 96368, 20000, fanout.HARD_CAP),  # 1000: the cap (memory: 576)
    (400, 4 * GIB, None, None, 96),  # a small head: memory bounds it
    (400, 100 << 20, None, None, 2),  # almost no memory left
    (400, 40 << 20, None, None, 1),  # none: one at a time, never 0
    (400, None, 1000, None, 100),  # half of RLIMIT_NPROC, 5 tasks a subworker
    (400, None, None, 1024, 240),  # pdsh's 4 descriptors a host, 64 spare
    (400, None, None, 128, 16),
    (400, None, None, 10, 1),
    (10, 4 * GIB, 1000, 1024, 10),  # fewer hosts than any bound
    (400, 64 * GIB, 100, 1024, 10),  # the tightest bound wins
])
def test_bound(hosts, mem, nproc, nofile, expected):
    assert fanout.bound(hosts, mem, nproc, nofile) == expected


def test_head_limits_are_this_process_limits():
    mem, nproc, nofile = fanout.head_limits()
    assert mem is not None and 0 < mem < os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert nofile == (None if soft == resource.RLIM_INFINITY else soft)


def _fanout_of(argv):
    return int(argv[argv.index("-f") + 1])


def test_pdsh_argv_without_fanout_covers_every_host_the_head_holds():
    hosts = [f"cn{i:02d}.internal" for i in range(1, MANY + 1)]
    with runner.host_file(hosts) as path:
        assert fanout.hosts_in(path) == MANY
        default = _fanout_of(runner.pdsh_exec_argv(path, ["tool", "%h"]))
        explicit = _fanout_of(runner.pdsh_exec_argv(path, ["tool", "%h"], fanout=5))
    assert default == fanout.bound(MANY, *fanout.head_limits())
    if default < MANY:
        pytest.skip(f"this machine holds only {default} subworkers at once")
    assert default == MANY  # pdsh's own default would be 32
    assert explicit == 5


def test_pdsh_argv_default_heeds_the_descriptors_pdsh_inherits(tmp_path):
    """pdsh -R exec fails hosts ("socketpair: Too many open files") beyond its descriptor
    limit, which it inherits from us: the default stays within it."""
    script = ("import sys\nfrom hltcloud.proc import runner\n"
              "with runner.host_file([f'cn{i}' for i in range(400)]) as path:\n"
              "    print(runner.pdsh_exec_argv(path, ['tool', '%h'])[4])\n")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "lib")},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == (128 - fanout.PDSH_FDS_SPARE) // fanout.PDSH_FDS_PER_HOST


@pytest.fixture
def cloud_of_many(tmp_path):
    """A simulator alone on loopback with MANY virtual hypervisors, and a `pdsh` on PATH that
    only records its arguments (the tool's own pdsh argv, nothing run on any host)."""
    password = "fanout-test-password"
    (tmp_path / "admin-password").write_text(password)
    os.chmod(tmp_path / "admin-password", 0o600)
    (tmp_path / "hltcloud.conf").write_text("")
    fake = tmp_path / "bin" / "pdsh"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'pdsh-argv'}\n")
    fake.chmod(0o755)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "simulator.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "simcluster" / "simulator.py"),
                                 "--state", str(tmp_path), "--listen", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

    def sim(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def healthy():
        assert proc.poll() is None, (tmp_path / "simulator.log").read_text()
        try:
            return sim("GET", "/sim/health")["pid"] == proc.pid
        except OSError:
            return False
    try:
        wait_for(healthy, what="the simulator")
        hosts = [f"hv{i:02d}.internal" for i in range(1, MANY + 1)]
        sim("POST", "/sim/hosts", {"names": hosts, "virtual": True})
        env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}",
               "OS_AUTH_URL": f"{url}/identity/v3", "OS_USERNAME": "admin",
               "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin",
               "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
               "HLTCLOUD_CONFIG": str(tmp_path / "hltcloud.conf")}
        yield env, tmp_path / "pdsh-argv"
    finally:
        proc.terminate()
        proc.wait(10)


def _parallel_disable(env, *switches):
    return subprocess.run([str(REPO / "bin" / "openstack-hlt-manage"), "--for-real", *switches,
                           "--parallel", "disable", f"hv[01-{MANY}].internal"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_parallel_without_fanout_starts_every_host_at_once(cloud_of_many):
    """The tool's own pdsh command: -f covers the run's MANY hosts (it was pdsh's 32), and an
    explicit --fanout still wins. The recording pdsh runs no subworker: every host fails."""
    env, recorded = cloud_of_many
    limit = fanout.bound(MANY, *fanout.head_limits())
    if limit < MANY:
        pytest.skip(f"this machine holds only {limit} subworkers at once")
    result = _parallel_disable(env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Failed on {MANY} host(s)" in result.stdout
    argv = recorded.read_text().splitlines()
    assert argv[:4] == ["-R", "exec", "-f", str(MANY)]
    assert "--fanout" not in argv
    result = _parallel_disable(env, "--fanout", "7")
    assert result.returncode == 1, result.stdout + result.stderr
    assert recorded.read_text().splitlines()[:4] == ["-R", "exec", "-f", "7"]
