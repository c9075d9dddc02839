"""jsonapi.JsonApi against a real HTTP server on loopback: answers, Nova's error bodies,
kept-alive connections the server closed, silence, oversized and malformed answers."""
import http.server
import json
import socket
import threading
import time

import pytest
from helpers import free_port

from hltcloud.cloud.session import describe_error
from hltcloud.cloud.jsonapi import ApiError, JsonApi, proxied


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


@pytest.mark.parametrize("env, expected", [
    ({}, False), ({"https_proxy": "http://127.0.0.1:3128"}, True),
    ({"HTTP_PROXY": "http://127.0.0.1:3128"}, True), ({"all_proxy": ""}, False)])
def test_a_configured_proxy_is_noticed(env, expected):
    assert proxied(env) is expected
