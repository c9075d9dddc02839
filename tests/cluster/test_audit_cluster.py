"""A record of what was done (issue 13, part 2): real runs go to the system log. The tests
bind a syslog socket of their own (a Unix datagram socket in tmp_path, `[log] socket`)
and read what the tools send to it."""
import os
import re
import shlex
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from hltcloud.hostlist import fold
from helpers import service

REPO = Path(__file__).resolve().parents[2]
MANAGE = "openstack-hlt-manage"
RECORD = re.compile(r"<(\d+)>([^\[]+)\[(\d+)\]: (.*)\x00?\Z", re.S)


class SyslogSocket:
    """A Unix datagram socket read by a thread (a full socket would block the sender)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.datagrams = []
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                self.datagrams.append(self.sock.recv(65536).decode())
            except socket.timeout:
                continue

    def records(self):
        """[(priority, tag, pid, text)] of everything received so far."""
        self.running = False
        self.thread.join()
        found = []
        for datagram in self.datagrams:
            match = RECORD.match(datagram.rstrip("\x00"))
            assert match, repr(datagram)
            found.append((int(match[1]), match[2], int(match[3]), match[4]))
        return found

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def syslog(cluster, tmp_path):
    """(SyslogSocket, config path): the cluster's site configuration with [log] socket."""
    sock = SyslogSocket(tmp_path / "log.sock")
    conf = tmp_path / "hltcloud.conf"
    conf.write_text(Path(cluster.config_path).read_text() + f"[log]\nsocket = {sock.path}\n")
    try:
        yield sock, str(conf)
    finally:
        sock.close()


def texts(records):
    return [text for _, _, _, text in records]


def test_for_real_enable_is_recorded(cluster, nova, syslog):
    sock, conf = syslog
    hosts = cluster.names[:2]
    for host in hosts:
        nova.services.disable_log_reason(service(nova, host).id, "test")
    env = dict(cluster.env, SUDO_USER="alice")
    argv = ["--config", conf, "--for-real", "enable", fold(hosts)]
    res = subprocess.run([str(REPO / "bin" / MANAGE), *argv], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    records = sock.records()
    assert {(prio, tag) for prio, tag, _, _ in records} <= {(14, MANAGE), (11, MANAGE), (12, MANAGE)}
    assert records[0][0] == 14  # facility user, info
    lines = texts(records)
    assert lines[0] == f"start: user root (uid 0, sudo from alice): {shlex.join([MANAGE, *argv])}"
    for host in hosts:
        assert f"[ OK ] Enabling hypervisor {host}" in lines
        assert f"[ OK ] Starting OpenStack daemons on {host}" in lines
    assert lines[-1] == f"end: exit status 0 (all good); failed: -; ok: {fold(hosts)}"
    assert len({pid for _, _, pid, _ in records}) == 1
    every = "\n".join(sock.datagrams)
    assert cluster.env["OS_PASSWORD"] not in every and "OS_" not in every


def test_failed_run_records_the_failure_and_status(cluster, syslog):
    sock, conf = syslog
    a, b = cluster.names[:2]
    cluster.fault(b, "down")
    res = cluster.run_tool(MANAGE, "--config", conf, "--for-real", "enable", a, b)
    assert res.returncode == 1, res.stdout + res.stderr
    records = sock.records()
    fails = [(prio, text) for prio, _, _, text in records if text.startswith("[FAIL]")]
    assert fails and all(prio == 11 for prio, _ in fails)  # user.err
    assert any(f"Starting OpenStack daemons on {b}" in text for _, text in fails)
    assert texts(records)[-1] == f"end: exit status 1 (some host failed); failed: {b}; ok: {a}"


@pytest.mark.parametrize("how", ["dry run", "--no-syslog", "syslog = no"])
def test_nothing_is_recorded(cluster, syslog, how):
    sock, conf = syslog
    args = ["--for-real"]
    if how == "dry run":
        args = []
    elif how == "--no-syslog":
        args.append("--no-syslog")
    else:
        Path(conf).write_text(Path(conf).read_text() + "syslog = no\n")
    res = cluster.run_tool(MANAGE, "--config", conf, *args, "enable", cluster.names[0])
    assert res.returncode == 0, res.stdout + res.stderr
    assert sock.records() == []


def test_transfer_tools_record_real_runs_only(cluster, syslog, tmp_path):
    sock, conf = syslog
    source = tmp_path / "payload"
    source.write_bytes(os.urandom(100_000))
    dest = f"/var/lib/nova/instances/wave-{uuid.uuid4().hex[:12]}"
    hosts = cluster.names[:2]
    dry = cluster.run_tool("rsync-wave.py", "--config", conf, "--dry-run", str(source), dest, *hosts)
    off = cluster.run_tool("rsync-wave.py", "--config", conf, "--no-syslog", str(source),
                           f"{dest}-off", *hosts)
    assert (dry.returncode, off.returncode) == (0, 0), dry.stderr + off.stderr
    assert sock.datagrams == []
    res = cluster.run_tool("rsync-wave.py", "--config", conf, str(source), dest, *hosts)
    assert res.returncode == 0, res.stdout + res.stderr
    cluster.add_image("audit-img", size_mb=1)
    pre = cluster.run_tool("openstack-prefill-cache", "--config", conf, "audit-img", *hosts)
    assert pre.returncode == 0, pre.stdout + pre.stderr
    records = sock.records()
    by_tag = {}
    for _, tag, _, text in records:
        by_tag.setdefault(tag, []).append(text)
    wave_lines = by_tag["rsync-wave.py"]
    assert wave_lines[0].startswith("start: user root (uid 0): rsync-wave.py --config ")
    for host in hosts:
        assert any(re.fullmatch(rf"\[ OK \] \S+ --> {re.escape(host)} \(.*\)", l) for l in wave_lines)
    assert wave_lines[-1] == f"end: exit status 0 (all good); failed: -; ok: {fold(hosts)}"
    prefill_lines = by_tag["openstack-prefill-cache"]
    assert prefill_lines[0].endswith(f"openstack-prefill-cache --config {conf} audit-img "
                                     f"{' '.join(hosts)}")
    assert prefill_lines[-1] == f"end: exit status 0 (all good); failed: -; ok: {fold(hosts)}"


def test_a_missing_socket_is_not_an_error(cluster, tmp_path):
    conf = tmp_path / "hltcloud.conf"
    conf.write_text(Path(cluster.config_path).read_text() +
                    f"[log]\nsocket = {tmp_path / 'no-such.sock'}\n")
    res = cluster.run_tool(MANAGE, "--config", str(conf), "--for-real", "enable", cluster.names[0])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stderr == ""


def test_parallel_parent_logs_the_run_subworkers_their_hosts(cluster, syslog):
    sock, conf = syslog
    hosts = cluster.names[:3]
    res = cluster.run_tool(MANAGE, "--config", conf, "--for-real", "--parallel", "enable", *hosts)
    assert res.returncode == 0, res.stdout + res.stderr
    records = sock.records()
    starts = [r for r in records if r[3].startswith("start: ")]
    ends = [r for r in records if r[3].startswith("end: ")]
    assert len(starts) == 1 and len(ends) == 1 and starts[0][2] == ends[0][2]
    parent = starts[0][2]
    assert "--parallel enable" in starts[0][3]
    for host in hosts:
        mine = [r for r in records if r[3] == f"[ OK ] Enabling hypervisor {host}"]
        assert len(mine) == 1 and mine[0][2] != parent  # once, from its subworker
    assert not any(r[2] == parent and r[3].startswith("[") for r in records)
    assert not any(text.split(": ", 1)[0] in [h.split(".")[0] for h in hosts]
                   for text in texts(records))  # no pdsh-labelled copy
