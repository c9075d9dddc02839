"""One ssh connection a host for enable and disable (lib/hltcloud/proc/sshmaster.py), on the
simulated cluster: counted by the node itself (the kernel's count of the connections its
namespace accepted, cluster.connections), with nothing left behind (no ssh master, no
private directory) after success, failure and Ctrl-C; and plain ssh when there can be no
master. The runs get a short TMPDIR of their own, where the control sockets' directories go
(pytest's tmp_path is too long for a socket: they would go to /tmp).
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import (MANAGE, REPO, boot_on, eventually, interrupt, lines, processes_mentioning,
                     servers_on, start_compute)

from hltcloud.proc import sshmaster

PRIVATE = "hltcloud-ssh-"


@pytest.fixture
def tmpdir_env(cluster):
    """(the cluster's environment with a short TMPDIR of its own, that TMPDIR)."""
    tmp = Path(tempfile.mkdtemp(prefix="hltt-", dir="/tmp"))
    assert len(f"{tmp}/{PRIVATE}XXXXXXXX/s") <= sshmaster.MAX_SOCKET_PATH
    try:
        yield {**cluster.env, "TMPDIR": str(tmp)}, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(env, *args):
    return subprocess.run([str(REPO / "bin" / MANAGE), *args], env=env, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)


def interrupted(env, args, mark, look=lambda: None):
    """openstack-hlt-manage ARGS, interrupted (SIGINT) once a line holds MARK: (exit status,
    every line it printed, what LOOK() said just before the signal)."""
    run = interrupt([str(REPO / "bin" / MANAGE), *args], env, at_line=mark, merged=True,
                    before=look)
    return run.status, run.lines, run.before


def connections(cluster, hosts):
    return {host: cluster.connections(host) for host in hosts}


def opened(cluster, before):
    """Connections each host of BEFORE (connections()) accepted since."""
    return {host: cluster.connections(host) - count for host, count in before.items()}


def private_dirs(parent):
    return sorted(str(p) for p in Path(parent).iterdir() if p.name.startswith(PRIVATE))


def leftovers(cluster, tmp):
    """ssh masters of this cluster's runs still there, private directories left in TMP."""
    masters = [line for _, line in processes_mentioning(cluster.ssh_config)
               if "ControlMaster=yes" in line]
    return masters + private_dirs(tmp)


def assert_nothing_left(cluster, tmp):
    # The master removes its socket, then exits: its process may need a moment to go.
    assert eventually(lambda: leftovers(cluster, tmp), 10) == []


def test_disable_with_vms_opens_one_connection_and_leaves_nothing(cluster, nova, tmpdir_env):
    env, tmp = tmpdir_env
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    ids = boot_on(cluster, nova, host, 3)
    before = connections(cluster, [host])
    result = run(env, "--for-real", "--vm-timeout", "60", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    out = lines(result)
    assert out[:2] == [f"[ OK ] Disabling hypervisor {host}",
                       f"[ OK ] Starting OpenStack daemons on {host}"]
    assert sorted(out[2:5]) == sorted(f"[ OK ] Deleting VM {i} on hypervisor {host}" for i in ids)
    assert out[-4:-2] == [f"[ OK ] Shutting down OpenStack daemons on {host}",
                          f"[ OK ] Forcing hypervisor {host} down in Nova"]
    assert opened(cluster, before) == {host: 1}  # not one for each of the two sessions
    assert servers_on(nova, host) == []
    assert not cluster.service_running(host, "openstack-nova-compute")
    assert_nothing_left(cluster, tmp)


def test_enable_opens_one_connection_a_host(cluster, nova, tmpdir_env):
    env, tmp = tmpdir_env
    hosts = cluster.names[:2]
    before = connections(cluster, hosts)
    result = run(env, "--for-real", "enable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert opened(cluster, before) == {host: 1 for host in hosts}
    assert all(cluster.service_running(host, "openstack-nova-compute") for host in hosts)
    assert_nothing_left(cluster, tmp)


def test_parallel_subworkers_open_one_connection_a_host(cluster, nova, tmpdir_env):
    env, tmp = tmpdir_env
    hosts = cluster.names[:2]
    start_compute(cluster, nova, hosts)
    for host in hosts:
        boot_on(cluster, nova, host, 1)
    before = connections(cluster, hosts)
    result = run(env, "--for-real", "--parallel", "--vm-timeout", "60", "disable", *hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert opened(cluster, before) == {host: 1 for host in hosts}
    assert all(servers_on(nova, host) == [] for host in hosts)
    assert_nothing_left(cluster, tmp)


def test_unreachable_node_fails_with_ssh_own_message_and_leaves_nothing(cluster, nova,
                                                                         tmpdir_env):
    env, tmp = tmpdir_env
    host = cluster.names[0]
    cluster.fault(host, "down")
    result = run(env, "--for-real", "disable", host)
    assert result.returncode == 1
    assert re.fullmatch(rf"\[FAIL\] Starting OpenStack daemons on {re.escape(host)}: ssh exited "
                        r"with 255: ssh: connect to host \S+ port 22: .*", lines(result)[1]), \
        result.stdout
    assert_nothing_left(cluster, tmp)


def test_failing_daemon_command_fails_the_host_and_leaves_nothing(cluster, nova, tmpdir_env,
                                                                  tmp_path):
    env, tmp = tmpdir_env
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    boot_on(cluster, nova, host, 1)
    config = tmp_path / "hltcloud.conf"
    text, count = re.subn(r"(?m)^stop = .*$", "stop = false {service}",
                          Path(cluster.config_path).read_text())
    assert count == 1
    config.write_text(text)
    before = connections(cluster, [host])
    result = run({**env, "HLTCLOUD_CONFIG": str(config)}, "--for-real", "--vm-timeout", "60",
                 "disable", host)
    assert result.returncode == 1
    assert f"[FAIL] Shutting down OpenStack daemons on {host}: ssh exited with 1: no output" \
        in lines(result), result.stdout
    assert servers_on(nova, host) == []
    assert opened(cluster, before) == {host: 1}
    assert_nothing_left(cluster, tmp)


@pytest.mark.parametrize("parallel", [False, True])
def test_ctrl_c_leaves_no_master_and_no_directory(cluster, nova, tmpdir_env, parallel):
    env, tmp = tmpdir_env
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    stuck, = boot_on(cluster, nova, host, 1)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    args = ["--for-real", "--vm-timeout", "120"] + (["--parallel"] if parallel else [])

    def look():  # the master is up, between its two sessions: its socket in TMPDIR
        return [(Path(d).stat().st_mode & 0o777, sorted(os.listdir(d)))
                for d in private_dirs(tmp)]
    code, out, during = interrupted(env, [*args, "disable", host], "Waiting max", look)
    assert during == [(0o700, ["err", "s"])]
    assert code != 0
    assert any(f"{host}: interrupted" in line for line in out), out
    assert_nothing_left(cluster, tmp)


def test_ctrl_c_while_connecting_ends_the_connecting_ssh_at_once(cluster, nova, tmpdir_env):
    env, tmp = tmpdir_env
    host = cluster.names[0]
    sshd = int((cluster.state / "nodes" / host / "sshd.pid").read_text().split()[0])
    os.kill(sshd, signal.SIGSTOP)  # connections are accepted, the handshake never comes
    try:
        # The master is connecting while the API is used.
        code, out, _ = interrupted(env, ["--for-real", "disable", host], "Disabling hypervisor")
    finally:
        os.kill(sshd, signal.SIGCONT)
    assert code != 0
    assert any(f"{host}: interrupted" in line for line in out), out
    assert leftovers(cluster, tmp) == []  # no waiting: the tool ended it before exiting


def test_an_ssh_that_refuses_a_master_gives_plain_sessions(cluster, nova, tmpdir_env, tmp_path):
    env, tmp = tmpdir_env
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    boot_on(cluster, nova, host, 1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"  # the operator's ssh: no ControlMaster here
    wrapper.write_text("#!/bin/sh\nfor word; do case $word in ControlMaster=yes)\n"
                       "  echo 'ssh: masters are not allowed here' >&2; exit 255;; esac; done\n"
                       "exec /usr/bin/ssh \"$@\"\n")
    wrapper.chmod(0o755)
    before = connections(cluster, [host])
    result = run({**env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, "--for-real",
                 "--vm-timeout", "60", "disable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert opened(cluster, before) == {host: 2}  # one plain ssh a session, as without masters
    assert servers_on(nova, host) == []
    assert_nothing_left(cluster, tmp)


def test_a_long_tmpdir_puts_the_socket_in_tmp(cluster, nova, tmp_path):
    tmp = tmp_path / ("t" * 100)  # too long for a socket path
    tmp.mkdir(mode=0o700)
    host = cluster.names[0]
    before, dirs = connections(cluster, [host]), set(private_dirs("/tmp"))
    result = run({**cluster.env, "TMPDIR": str(tmp)}, "--for-real", "enable", host)
    assert result.returncode == 0, result.stdout + result.stderr
    assert opened(cluster, before) == {host: 1}
    assert_nothing_left(cluster, tmp)
    # Another run may have one there for a moment: wait until only the old ones are left.
    assert eventually(lambda: set(private_dirs("/tmp")) - dirs, 10) == set()


# ------------------------------------------------------------------ the private directory

def test_private_dir_is_0700_in_tmpdir_or_in_tmp(monkeypatch, tmp_path):
    import tempfile
    cases = [(tmp_path, str(tmp_path)), (tmp_path / ("t" * 100), "/tmp")]
    shared = tmp_path / "shared"  # writable by others, not sticky: not for our socket
    cases.append((shared, "/tmp"))
    for parent, expected in cases:
        parent.mkdir(exist_ok=True)
        if parent == shared:
            parent.chmod(0o777)
        monkeypatch.setattr(tempfile, "tempdir", str(parent))
        made = sshmaster.private_dir()
        try:
            assert os.path.dirname(made) == expected
            assert os.stat(made).st_mode & 0o777 == 0o700
            assert len(os.path.join(made, "s")) <= sshmaster.MAX_SOCKET_PATH
        finally:
            os.rmdir(made)


def test_a_host_another_run_holds_gets_no_connection(cluster, nova, tmpdir_env, tmp_path):
    """The host lock comes first: a run refused because another one works on the host starts
    no ssh to it at all (the master starts only once the lock is ours). Every process the
    second run starts is written down by an audit hook (sitecustomize on its PYTHONPATH): a
    killed ssh may never get as far as connecting, a started one is seen all the same."""
    env, tmp = tmpdir_env
    host = cluster.names[0]
    start_compute(cluster, nova, [host])
    stuck, = boot_on(cluster, nova, host, 1)
    cluster.sim("POST", f"/sim/servers/{stuck}/stuck")
    hook_dir, started = tmp_path / "hook", tmp_path / "started"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(
        "import sys\n"
        f"def _hook(event, args, _log=open({str(started)!r}, 'a')):\n"
        "    if event == 'subprocess.Popen':\n"
        "        _log.write(repr(args[1]) + '\\n')\n"
        "        _log.flush()\n"
        "sys.addaudithook(_hook)\n")
    first = subprocess.Popen([str(REPO / "bin" / MANAGE), "--for-real", "--vm-timeout", "8",
                              "disable", host], env=env, stdout=subprocess.PIPE, text=True)
    try:
        for line in first.stdout:  # it holds the lock: it waits for the deletes
            if "Waiting max" in line:
                break
        second = run({**env, "PYTHONPATH": str(hook_dir)}, "--for-real", "enable", host)
    finally:
        first.communicate(timeout=60)
    assert second.returncode == 1
    assert f"another openstack-hlt-manage run (pid {first.pid})" in second.stdout, second.stdout
    assert started.exists()  # the hook was there
    assert not [line for line in started.read_text().splitlines() if "ssh" in line]
