"""An operator's HTTP proxy is honoured as requests honours it: Keystone's (and Placement's,
Glance's) requests through keystoneauth1, Nova's through the tools' own http.client transport
(hltcloud.cloud.jsonapi: the absolute URL to the proxy for http, a CONNECT tunnel for https,
tested in test_jsonapi.py), which would otherwise silently bypass the proxy; no_proxy lets
the cloud's host be reached directly."""
import http.server
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from helpers import boot_on, start_compute

from hltcloud.cloud.session import Cloud

REPO = Path(__file__).resolve().parents[2]
TOOL = str(REPO / "bin" / "openstack-hlt-manage")


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forwarding proxy for plain http (requests sends the absolute URL)."""
    seen = []

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        _Proxy.seen.append((self.command, self.path))
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "host", "content-length")}
        request = urllib.request.Request(self.path, data=body, method=self.command, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # direct
        try:
            with opener.open(request, timeout=30) as resp:
                status, reply, answer = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, reply, answer = err.code, err.headers, err.read()
        self.send_response(status)
        for key, value in reply.items():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _through_proxy(env, proxy, **more):
    env = {k: v for k, v in env.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy", "all_proxy")}
    return {**env, "http_proxy": proxy, **more}


def test_status_sends_novas_requests_through_the_operators_proxy(cluster, nova, proxy):
    env = _through_proxy(cluster.env, proxy)
    done = subprocess.run([TOOL, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.startswith(f"| {cluster.names[0]} ") for line in done.stdout.splitlines())
    paths = [path for _, path in _Proxy.seen]
    assert any("/auth/tokens" in p for p in paths), paths
    assert any("/os-services" in p for p in paths), paths  # Nova too, not only Keystone


def test_a_subworker_behind_a_proxy_uses_it_too_without_keystoneauth1(cluster, nova, proxy):
    host = cluster.names[1]
    start_compute(cluster, nova, [host])
    vm, = boot_on(cluster, nova, host, 1)
    env = {**_through_proxy(cluster.env, proxy), **Cloud(env=cluster.env).handoff_env()}
    done = subprocess.run([sys.executable, "-X", "importtime", TOOL, "--line-output",
                           "--subworker", "disable", host],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert f"[DRY ] Deleting VM {vm} on hypervisor {host}: DELETE /servers/{vm}" in done.stdout
    nova_paths = [p for _, p in _Proxy.seen if "/compute/" in p]
    assert any("/os-services" in p for p in nova_paths) and any("/servers/detail" in p for p in nova_paths)
    assert all(p.startswith("http://") for p in nova_paths)  # the absolute URL, as a proxy takes it
    assert not [p for _, p in _Proxy.seen if "/auth/tokens" in p]  # the parent's token
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "hltcloud" in imported and "keystoneauth1" not in imported  # one transport: ours


def test_no_proxy_naming_the_clouds_host_bypasses_the_proxy(cluster, nova, proxy):
    host = urllib.parse.urlsplit(cluster.env["OS_AUTH_URL"]).hostname
    env = _through_proxy(cluster.env, proxy, no_proxy=f"localhost,{host}")
    done = subprocess.run([TOOL, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.startswith(f"| {cluster.names[0]} ") for line in done.stdout.splitlines())
    assert _Proxy.seen == []  # neither Keystone's request nor Nova's went through it
