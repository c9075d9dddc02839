"""jsonapi.JsonApi against a real HTTP server on loopback: answers, Nova's error bodies,
kept-alive connections the server closed, silence, oversized and malformed answers; and
through a real proxy (absolute URLs for http, a CONNECT tunnel for https), chosen from the
environment as requests chooses it."""
import base64
import http.client
import http.server
import json
import os
import select
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest
from helpers import free_port

from hltcloud.cloud.session import describe_error
from hltcloud.cloud.jsonapi import ApiError, JsonApi, proxy_for


class _Nova(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []  # (method, path, token, microversion, body)
    close_after_answer = False  # answer, then close the kept-alive connection (an idle timeout)

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        _Nova.seen.append((self.command, self.path, self.headers.get("X-Auth-Token"),
                           self.headers.get("OpenStack-API-Version"), body))
        status, data = {
            "/v2.1/os-services": (200, {"services": [{"id": "s1", "host": "cn01"}]}),
            "/v2.1/servers/gone": (404, {"itemNotFound": {"code": 404,
                                                          "message": "Instance gone could not be found."}}),
            "/v2.1/broken": (500, b"<html>Internal Server Error</html>\n"),
            "/v2.1/notjson": (200, b"<html>hello</html>"),
            "/v2.1/big": (200, {"blob": "x" * 5000}),
            "/v2.1/empty": (204, b""),
        }.get(self.path.split("?")[0], (404, {"itemNotFound": {"message": "no route"}}))
        if self.path == "/v2.1/slow":
            time.sleep(3)
            status, data = 200, {}
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        try:
            self.wfile.write(raw)
        except BrokenPipeError:
            return  # the client gave up first (the silent server's case)
        if _Nova.close_after_answer:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # without saying "Connection: close"
            self.close_connection = True

    do_GET = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def nova():
    _Nova.seen, _Nova.close_after_answer = [], False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Nova)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v2.1"
    server.shutdown()
    server.server_close()


def api(url, **kw):
    return JsonApi("compute", url, lambda: "tok", {"OpenStack-API-Version": "compute 2.60"}, **kw)


def test_requests_carry_token_microversion_and_json_body(nova):
    client = api(nova)
    assert client.request("GET", "/os-services") == {"services": [{"id": "s1", "host": "cn01"}]}
    assert client.request("PUT", "/os-services", {"status": "disabled"}) is not None
    assert client.request("DELETE", "/empty") is None  # 204, no body
    assert _Nova.seen[0] == ("GET", "/v2.1/os-services", "tok", "compute 2.60", None)
    assert _Nova.seen[1][0] == "PUT" and _Nova.seen[1][4] == {"status": "disabled"}


def test_an_error_answer_is_one_line_with_novas_message_and_status(nova):
    with pytest.raises(ApiError) as err:
        api(nova).request("DELETE", "/servers/gone")
    assert err.value.code == 404
    assert describe_error(err.value) == "Instance gone could not be found. (HTTP 404)"
    with pytest.raises(ApiError) as err:
        api(nova).request("GET", "/broken")
    assert (err.value.code, err.value.message) == (500, "<html>Internal Server Error</html>")


def test_a_connection_the_server_closed_while_idle_is_opened_again(nova):
    _Nova.close_after_answer = True
    client = api(nova)
    for _ in range(3):
        assert client.request("GET", "/os-services")["services"][0]["host"] == "cn01"
    assert len(_Nova.seen) == 3  # each request sent once: the retry is only for a dead connection


def test_a_silent_server_is_given_up_after_the_read_timeout(nova):
    started = time.monotonic()
    with pytest.raises(ApiError) as err:
        api(nova, read_timeout=1).request("GET", "/slow")
    assert time.monotonic() - started < 2.9  # not the server's 3 s
    assert err.value.code is None
    assert str(err.value) == f"the cloud did not answer within 1 s (compute at {nova})"


def test_nothing_listening_is_named_in_one_line():
    url = f"http://127.0.0.1:{free_port()}/v2.1"
    with pytest.raises(ApiError) as err:
        api(url).request("GET", "/os-services")
    assert str(err.value) == f"cannot reach compute at {url}: Connection refused"


def test_oversized_and_malformed_answers_are_refused(nova):
    with pytest.raises(ApiError, match="answered with more than 1000 bytes"):
        api(nova, max_answer=1000).request("GET", "/big")
    assert api(nova, max_answer=10_000).request("GET", "/big")["blob"] == "x" * 5000
    with pytest.raises(ApiError, match="answered GET /notjson with something that is not JSON"):
        api(nova).request("GET", "/notjson")


class _Proxy(http.server.BaseHTTPRequestHandler):
    """An http proxy: a CONNECT tunnel (https), an absolute URL forwarded (plain http);
    REFUSE: answer 407 to every request."""
    seen = []  # (method, target, Proxy-Authorization)
    refuse = False

    def _note(self):
        _Proxy.seen.append((self.command, self.path, self.headers.get("Proxy-Authorization")))
        if _Proxy.refuse:
            self.send_response(407, "Proxy Authentication Required")
            self.send_header("Content-Length", "0")
            self.end_headers()
        return not _Proxy.refuse

    def do_CONNECT(self):  # noqa: N802 -- the names http.server calls
        if not self._note():
            return
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        ends = [self.connection, upstream]
        try:
            while select.select(ends, [], [], 10)[0]:
                for end in select.select(ends, [], [], 0)[0]:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        except OSError:
            return  # one end went away: so does the tunnel
        finally:
            upstream.close()

    def _forward(self):
        if not self._note():
            return
        assert self.path.startswith("http://"), self.path  # a proxy gets the whole URL
        parts = urllib.parse.urlsplit(self.path)
        target = http.client.HTTPConnection(parts.netloc, timeout=10)
        length = int(self.headers.get("Content-Length") or 0)
        target.request(self.command, parts.path + (f"?{parts.query}" if parts.query else ""), body=self.rfile.read(length) if length else None,
                       headers={k: v for k, v in self.headers.items()
                                if k.lower() not in ("proxy-authorization", "connection")})
        resp = target.getresponse()
        body = resp.read()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = _forward

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    _Proxy.seen, _Proxy.refuse = [], False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_nova(tmp_path):
    """The same "Nova" over https, its certificate (for 127.0.0.1) its own CA."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    _Nova.seen, _Nova.close_after_answer = [], False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Nova)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v2.1", str(cert)
    server.shutdown()
    server.server_close()


def test_through_an_http_proxy_a_plain_request_names_its_whole_url(nova, proxy):
    client = api(nova, proxy=f"http://{proxy}")
    assert client.request("GET", "/os-services")["services"][0]["host"] == "cn01"
    assert client.request("PUT", "/os-services", {"status": "disabled"}) is not None
    assert [(m, t) for m, t, _ in _Proxy.seen] == [("GET", f"{nova}/os-services"),
                                                   ("PUT", f"{nova}/os-services")]
    assert _Nova.seen[1][4] == {"status": "disabled"} and _Nova.seen[0][2] == "tok"


def test_https_goes_through_a_connect_tunnel_checking_the_endpoints_certificate(tls_nova, proxy):
    url, cert = tls_nova
    client = api(url, verify=cert, proxy=f"http://op%40site:s%3Acret@{proxy}")  # as requests: unquoted
    assert client.request("GET", "/os-services")["services"][0]["host"] == "cn01"
    port = url.split(":")[2].split("/")[0]
    assert _Proxy.seen == [("CONNECT", f"127.0.0.1:{port}",
                            "Basic " + base64.b64encode(b"op@site:s:cret").decode())]
    with pytest.raises(ApiError, match="TLS error talking to compute"):
        api(url, proxy=f"http://{proxy}").request("GET", "/os-services")  # not the CA: refused


def test_a_proxy_that_refuses_is_named_without_its_credentials(tls_nova, nova, proxy):
    _Proxy.refuse = True
    with pytest.raises(ApiError) as err:  # https: the tunnel is refused
        api(tls_nova[0], verify=tls_nova[1], proxy=f"http://op:secret@{proxy}").request("GET", "/x")
    assert str(err.value) == (f"cannot reach compute at {tls_nova[0]} through the proxy {proxy}: "
                              "Tunnel connection failed: 407 Proxy Authentication Required")
    with pytest.raises(ApiError) as err:  # http: the proxy's answer
        api(nova, proxy=f"http://op:secret@{proxy}").request("GET", "/os-services")
    assert (err.value.code, str(err.value)) == (407, "Proxy Authentication Required")
    with pytest.raises(ApiError, match="only those are supported"):
        api(nova, proxy="socks5://op:secret@127.0.0.1:1080").request("GET", "/os-services")


@pytest.fixture
def environment(monkeypatch):
    """Set the environment's proxy variables (every other one cleared)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return lambda **variables: [monkeypatch.setenv(k, v) for k, v in variables.items()]


@pytest.mark.parametrize("variables, url, expected", [
    ({}, "https://nova.example:8774/v2.1", None),
    ({"https_proxy": "http://p:3128"}, "https://nova.example:8774/v2.1", "http://p:3128"),
    ({"https_proxy": "http://p:3128"}, "http://nova.example/v2.1", None),
    ({"HTTP_PROXY": "http://P:1"}, "http://nova.example/v2.1", "http://P:1"),
    ({"HTTP_PROXY": "http://P:1", "http_proxy": "http://p:2"}, "http://n/v2.1", "http://p:2"),
    ({"all_proxy": "http://a:1"}, "https://nova.example/v2.1", "http://a:1"),
    ({"https_proxy": "http://p:1", "no_proxy": "example.org,.example"}, "https://nova.example/x", None),
    ({"https_proxy": "http://p:1", "no_proxy": "example"}, "https://nova.example/x", None),
    ({"https_proxy": "http://p:1", "no_proxy": "ample"}, "https://nova.example/x", "http://p:1"),
    ({"https_proxy": "http://p:1", "NO_PROXY": "nova.example:8774"}, "https://nova.example:8774/x", None),
    ({"https_proxy": "http://p:1", "no_proxy": "*"}, "https://198.18.0.1/x", None),
    ({"https_proxy": "http://p:1", "no_proxy": "198.18.0.1"}, "https://198.18.0.1/x", None),
    ({"https_proxy": "http://p:1", "no_proxy": "10.0.0.0/8, 198.18.0.0/24"}, "https://198.18.0.1/x", None),
    ({"https_proxy": "http://p:1", "no_proxy": "198.18.1.0/24"}, "https://198.18.0.1/x", "http://p:1"),
], ids=lambda value: str(value) if not isinstance(value, dict) else "-".join(value))
def test_the_proxy_is_the_one_requests_would_choose(environment, variables, url, expected):
    environment(**variables)
    assert proxy_for(url) == expected
