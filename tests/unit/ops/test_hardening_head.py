"""Hardening on the head node: the lock directory, the image lock, the cloud's faults and
the environment, and pdsh host lists that outgrow one command-line argument."""
import datetime
import hashlib
import http.server
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers import NOBODY, closed_port

from hltcloud.ops import hostlock
from hltcloud.proc import runner
from hltcloud.cloud.session import Cloud

REPO = Path(__file__).resolve().parents[3]


def tool(name, *args, env, timeout=60):
    return subprocess.run([str(REPO / "bin" / name), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def offline_env(tmp_path, **extra):
    """Credentials for a Keystone where nothing listens, an empty site configuration."""
    conf = tmp_path / "empty.conf"
    conf.touch()
    env = {**os.environ, "OS_AUTH_URL": f"http://127.0.0.1:{closed_port()}/v3",
           "OS_USERNAME": "admin", "OS_PASSWORD": "secret", "OS_PROJECT_NAME": "admin",
           "HLTCLOUD_CONFIG": str(conf), "HLTCLOUD_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("HLTCLOUD_AUTH", None)
    env.update(extra)
    return env


@pytest.fixture
def root_target():
    """A root-only file an attacker would like root to overwrite."""
    directory = tempfile.mkdtemp(prefix="hlt-target-")
    target = Path(directory) / "precious"
    target.write_text("root's own content\n")
    os.chmod(target, 0o600)
    yield target
    subprocess.run(["rm", "-rf", "--", directory], check=True)


def unchanged(target):
    info = target.stat()
    return (target.read_text(), info.st_uid, stat.S_IMODE(info.st_mode)) == \
        ("root's own content\n", 0, 0o600)


def as_nobody(script, *args):
    subprocess.run([*NOBODY, "sh", "-c", script, "attacker", *args], check=True)


# ------------------------------------------------------------------ the lock directory

def plant_lock_dir(public_dir, target, endpoint, names):
    """As nobody: make the lock directory first and put links to TARGET where our lock
    files will be."""
    locks = public_dir / "hltcloud"
    digest = hashlib.sha1(endpoint.encode()).hexdigest()[:12]
    as_nobody('mkdir -m 777 "$1" && shift && d=$1 && shift && for f; do ln -s "$d" "$f"; done',
              str(locks), str(target), *(str(locks / f"{n}.{digest}.lock") for n in names))
    return locks


def test_planted_lock_directory_is_refused_before_anything(cluster, public_dir, root_target):
    endpoint = Cloud(env=cluster.env).endpoints["compute"]
    host = cluster.names[0]
    locks = plant_lock_dir(public_dir, root_target, endpoint, [host, "runvms"])
    env = {**cluster.env, "HLTCLOUD_LOCK_DIR": str(locks)}
    for args in (["enable", host], ["disable", host], ["runvms"]):
        res = tool("openstack-hlt-manage", "--for-real", *args, env=env)
        assert res.returncode == 2, res.stdout + res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and f"lock directory {locks} is owned by nobody (uid 65534)" in lines[0]
        assert unchanged(root_target)
    assert not cluster.service_running(host, "openstack-nova-compute")  # nothing done


def test_lock_directory_writable_by_others_or_a_link_is_refused(tmp_path, public_dir, root_target):
    shared = tmp_path / "shared-locks"
    shared.mkdir(mode=0o700)
    os.chmod(shared, 0o770)
    link = public_dir / "link-locks"
    as_nobody('ln -s "$1" "$2"', str(root_target.parent), str(link))
    for locks, problem in ((shared, "is writable by others (mode 0770)"),
                           (link, "is not a directory (a link?)")):
        res = tool("openstack-hlt-manage", "--for-real", "enable", "cn01",
                   env=offline_env(tmp_path, HLTCLOUD_LOCK_DIR=str(locks)))
        assert res.returncode == 2 and problem in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert unchanged(root_target) and os.listdir(root_target.parent) == ["precious"]


def test_lock_files_are_never_followed_and_never_left_behind(tmp_path, monkeypatch, root_target):
    locks = tmp_path / "locks"
    monkeypatch.setenv(hostlock.LOCK_DIR_VAR, str(locks))
    hostlock.prepare()
    digest = hashlib.sha1(b"cloud").hexdigest()[:12]
    (locks / f"cn09.{digest}.lock").symlink_to(root_target)
    try:
        with pytest.raises(OSError):
            hostlock.acquire("cloud", "cn09")
        hostlock.acquire("cloud", "cn01")
        holder = subprocess.run(
            [sys.executable, "-c", "from hltcloud.ops import hostlock; hostlock.acquire('cloud', 'cn01')"],
            env={**os.environ, "PYTHONPATH": str(REPO / "lib")}, capture_output=True, text=True)
        assert f"another openstack-hlt-manage run (pid {os.getpid()}) is working on cn01" \
            in holder.stderr
    finally:
        hostlock.release_all()
    assert unchanged(root_target)
    assert sorted(os.listdir(locks)) == [f"cn09.{digest}.lock"]  # only the planted link


def test_a_real_run_leaves_no_lock_file(cluster, tmp_path):
    locks = tmp_path / "locks"
    env = {**cluster.env, "HLTCLOUD_LOCK_DIR": str(locks)}
    res = tool("openstack-hlt-manage", "--for-real", "enable", cluster.names[0], env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert stat.S_IMODE(locks.stat().st_mode) == 0o700
    assert os.listdir(locks) == []


def test_a_second_prefill_of_the_same_image_is_refused(cluster, tmp_path):
    image_id = cluster.add_image("locked-img", size_mb=8)
    hosts = cluster.names[:2]
    for node in hosts:
        cluster.shape(node, "10mbit")  # ~7 s a copy: the second run comes while it runs
    locks = tmp_path / "locks"
    env = {**cluster.env, "HLTCLOUD_LOCK_DIR": str(locks)}
    first = subprocess.Popen([str(REPO / "bin" / "openstack-prefill-cache"), "locked-img", *hosts],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (locks.is_dir() and os.listdir(locks)):
            time.sleep(0.05)
        second = tool("openstack-prefill-cache", "locked-img", *hosts, env=env)
        out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"another openstack-prefill-cache run (pid {first.pid}) is working on image " \
           f"{image_id}" in second.stderr
    assert first.returncode == 0, out
    assert os.listdir(locks) == []
    name = hashlib.sha1(image_id.encode()).hexdigest()
    for node in hosts:
        assert (cluster.node_dir(node) / "instances" / "_base" / name).is_file()


# ------------------------------------------------------------------ the cloud and the environment

def test_a_cloud_that_never_answers_is_reported_within_the_read_timeout(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts connections; nobody ever answers
    conf = tmp_path / "slow.conf"
    conf.write_text("[cloud]\nread_timeout = 2\n")
    env = offline_env(tmp_path, OS_AUTH_URL=f"http://127.0.0.1:{silent.getsockname()[1]}/v3",
                      HLTCLOUD_CONFIG=str(conf))
    try:
        started = time.monotonic()
        res = tool("openstack-hlt-manage", "status", env=env, timeout=30)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert res.returncode == 3, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"openstack-hlt-manage: the cloud did not answer within 2 s (Keystone at {env['OS_AUTH_URL']})"]
    assert took < 20, took  # 2 s and the start-up, not the 60 s of a default socket timeout


@pytest.mark.parametrize("value", ["keystone:5000/v3", "ftp://127.0.0.1/v3", "http:///v3"])
def test_an_auth_url_that_is_no_url_is_named(tmp_path, value):
    res = tool("openstack-hlt-manage", "status", env=offline_env(tmp_path, OS_AUTH_URL=value))
    assert res.returncode == 3
    assert res.stderr.strip().splitlines() == [
        f"openstack-hlt-manage: OS_AUTH_URL is not an http(s) URL: {value!r}"]


def handoff(endpoints, expires_in=3600, **changes):
    data = {"token": "handed-over-token", "endpoints": endpoints, "project_id": "p1",
            "expires_at": (datetime.datetime.now(datetime.timezone.utc)
                           + datetime.timedelta(seconds=expires_in)).isoformat(),
            "verify": True, "cert": None}
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize("value, message", [
    ("{not json", "HLTCLOUD_AUTH is malformed"),
    ('["a list"]', "HLTCLOUD_AUTH is malformed"),
    (handoff({"compute": "http://127.0.0.1:1/v2.1"}, token=7), "HLTCLOUD_AUTH is malformed"),
    (handoff({"compute": "http://127.0.0.1:1/v2.1"}, verify=1), "HLTCLOUD_AUTH is malformed"),
    (handoff({"compute": "file:///etc/passwd"}), "the compute endpoint in HLTCLOUD_AUTH is not an http(s) URL"),
    (handoff({"compute": "http://127.0.0.1:1/v2.1"}, expires_in=-60), "HLTCLOUD_AUTH expired at"),
    ("x" * 70000, "HLTCLOUD_AUTH is too large"),
], ids=["not-json", "not-an-object", "token-not-text", "verify-not-a-path", "file-endpoint",
        "expired", "huge"])
def test_a_bad_handoff_stops_a_subworker_in_one_line(tmp_path, value, message):
    res = tool("openstack-hlt-manage", "--subworker", "--line-output", "enable", "cn01",
               env=offline_env(tmp_path, HLTCLOUD_AUTH=value))
    assert res.returncode == 3, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_a_leftover_handoff_never_wins_over_the_operators_credentials(cluster):
    stale = handoff({"compute": cluster.sim_url + "/compute/v2.1"}, token="stale")
    for value in (stale, "{garbage"):
        res = tool("openstack-hlt-manage", "status", env={**cluster.env, "HLTCLOUD_AUTH": value})
        assert res.returncode == 0, res.stdout + res.stderr
        assert cluster.names[0] in res.stdout


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):  # noqa: N802 -- the name http.server calls
        type(self).seen.append((self.path, self.headers.get("X-Auth-Token")))
        body = json.dumps({"services": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_compute(tmp_path):
    """An HTTPS "Nova" on 127.0.0.1 whose certificate only OS_CACERT vouches for."""
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v2.1", cert
    server.shutdown()
    server.server_close()


def test_the_parent_hands_its_tls_settings_to_subworkers(cluster, tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN PLACEHOLDER-----\n")  # plain http here: only handed on
    env = {**cluster.env, "OS_CACERT": str(ca), "OS_CERT": str(cert), "OS_KEY": str(key)}
    handed = json.loads(Cloud(env=env).handoff_env()["HLTCLOUD_AUTH"])
    assert (handed["verify"], handed["cert"]) == (str(ca), [str(cert), str(key)])
    handed = json.loads(Cloud(env={**cluster.env, "OS_INSECURE": "true"}).handoff_env()["HLTCLOUD_AUTH"])
    assert (handed["verify"], handed["cert"]) == (False, None)


def test_subworkers_verify_tls_as_their_parent(tmp_path, tls_compute):
    url, cert = tls_compute
    res = tool("openstack-hlt-manage", "--subworker", "--line-output", "enable", "cn01",
               env=offline_env(tmp_path, HLTCLOUD_AUTH=handoff({"compute": url},
                                                               verify=str(cert))))
    # TLS worked: Nova (our stub) was asked, and knows no such host.
    assert "cn01: not a compute host known to Nova" in res.stdout, res.stdout + res.stderr
    assert res.returncode == 1
    assert _Recorder.seen and all(token == "handed-over-token" for _, token in _Recorder.seen)
    # Without the parent's CA bundle the same subworker refuses the certificate.
    res = tool("openstack-hlt-manage", "--subworker", "--line-output", "enable", "cn01",
               env=offline_env(tmp_path, HLTCLOUD_AUTH=handoff({"compute": url}),
                               OS_CACERT=str(cert)))
    assert res.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in res.stderr, res.stderr


# ------------------------------------------------------------------ pdsh and many hosts

@pytest.mark.slow
def test_pdsh_takes_more_host_names_than_one_argument_holds_from_the_host_file():
    """About 6 s: pdsh starts one (trivial) process a host, ~2 ms each on this machine. Long
    names, so that fewer hosts overflow an argument: Debian's pdsh 2.34 once died of SIGSEGV
    near the end of 10,000 hosts under the suite's load (once in some 17 runs), a crash of its own."""
    rack = "rack-" + "r" * 40  # a 45-character label: names of 62 characters
    hosts = [f"cn{number:04d}.{rack}.internal" for number in range(2_500)]
    assert len(",".join(hosts)) > 128 * 1024  # more than one argument may hold (MAX_ARG_STRLEN)
    with runner.host_file(hosts) as path:
        argv = runner.pdsh_exec_argv(path, ["echo", "%h"], fanout=16)
        ran = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert sorted(line.split(": ", 1)[1] for line in ran.stdout.splitlines()) == hosts
