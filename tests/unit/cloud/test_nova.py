"""cloud.nova.Nova against a real HTTP server on loopback playing Nova: the very requests
python-novaclient sends (both asked the same things, the requests compared), Nova's pages
followed to the end, the answers as plain data. The cloud is a real session.Cloud, from a
--parallel parent's hand-over (no Keystone needed)."""
import datetime
import gc
import http.server
import json
import threading
import urllib.parse

import pytest

from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.nova import Flavor, Nova
from hltcloud.cloud.session import HANDOFF_VAR, Cloud

PAGE = 3  # servers a page (Nova's [api]max_limit, 1,000 by default)
FLAVORS = [{"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1, "swap": "",
            "OS-FLV-EXT-DATA:ephemeral": 0},
           {"id": "7", "name": "m1.big", "vcpus": 8, "ram": 16384, "disk": 40, "swap": 2048,
            "OS-FLV-EXT-DATA:ephemeral": 10}]
LIMITS = {"maxTotalCores": 20, "totalCoresUsed": 4, "maxTotalInstances": 10}


class _Nova(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []  # (method, path, microversion headers, body)
    servers = []  # what the listings hold
    fail_page = None  # the page (from 1) whose request fails
    stuck = False  # every listing answers its first page, with a next link

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        _Nova.seen.append((self.command, self.path, self.headers.get("OpenStack-API-Version"),
                           self.headers.get("X-OpenStack-Nova-API-Version"), body))
        status, answer = self._route(urllib.parse.urlsplit(self.path), body)
        raw = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def _route(self, url, body):
        path, query = url.path.removeprefix("/v2.1"), urllib.parse.parse_qs(url.query)
        if self.command == "GET" and path in ("/servers/detail", "/servers"):
            return self._page(query)
        if path == "/os-services":
            return 200, {"services": [{"id": "s1", "host": "cn01", "binary": "nova-compute",
                                       "status": "enabled", "state": "up", "forced_down": False}]}
        if path.startswith("/os-services/"):
            return 200, {"service": {"id": "s1", "host": "cn01", **body}}
        if path == "/flavors/detail":
            return 200, {"flavors": FLAVORS}
        if path == "/limits":
            return 200, {"limits": {"absolute": LIMITS, "rate": []}}
        if self.command == "POST" and path == "/servers":
            return 202, {"server": {"id": "vm-new", "links": []}}
        if self.command == "DELETE":
            return 204, None
        return 404, {"itemNotFound": {"code": 404, "message": "no route"}}

    def _page(self, query):
        marker = query.get("marker", [None])[-1]
        ids = [s["id"] for s in _Nova.servers]
        start = 0 if marker is None or _Nova.stuck else ids.index(marker) + 1
        page = _Nova.servers[start:start + PAGE]
        if _Nova.fail_page and start // PAGE + 1 == _Nova.fail_page:
            return 503, {"computeFault": {"code": 503, "message": "Nova is gone"}}
        answer = {"servers": page}
        if len(page) == PAGE:  # as Nova: a next link when the page is full
            answer["servers_links"] = [{"rel": "next", "href": f"/servers?marker={page[-1]['id']}"}]
        return 200, answer

    def log_message(self, *args):
        pass


@pytest.fixture
def nova_url():
    _Nova.seen, _Nova.fail_page, _Nova.stuck = [], None, False
    _Nova.servers = [{"id": f"vm{i}", "name": f"wn-{i}", "status": "ACTIVE"} for i in range(7)]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Nova)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v2.1"
    server.shutdown()
    server.server_close()


def handed_over(url):
    """A real session.Cloud as a --parallel subworker makes it: the parent's token."""
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return Cloud(env={HANDOFF_VAR: json.dumps({
        "token": "tok", "endpoints": {"compute": url}, "project_id": "p1",
        "expires_at": expires.isoformat(), "verify": True, "cert": None})}, handoff=True)


def novaclient_for(url):
    from keystoneauth1 import session, token_endpoint
    from novaclient import client
    return client.Client("2.60", session=session.Session(auth=token_endpoint.Token(url, "tok")),
                         endpoint_override=url)


def test_the_requests_are_the_ones_novaclient_sends(nova_url):
    ours, theirs = Nova(handed_over(nova_url)), novaclient_for(nova_url)
    pairs = [
        (lambda: ours.services("cn01"), lambda: theirs.services.list(host="cn01", binary="nova-compute")),
        (lambda: ours.services(), lambda: theirs.services.list(binary="nova-compute")),
        (lambda: ours.update_service("s1", {"status": "disabled", "disabled_reason": "by me"}),
         lambda: theirs.services.disable_log_reason("s1", "by me")),
        (lambda: ours.update_service("s1", {"status": "enabled"}), lambda: theirs.services.enable("s1")),
        (lambda: ours.update_service("s1", {"forced_down": True}),
         lambda: theirs.services.force_down("s1", True)),
        (lambda: ours.servers("cn01"),
         lambda: theirs.servers.list(search_opts={"all_tenants": 1, "host": "cn01"}, limit=-1)),
        (lambda: ours.servers(all_projects=False, detailed=False),
         lambda: theirs.servers.list(detailed=False, limit=-1)),
        (lambda: ours.create_servers("wn-grid", "img-1", "7", 4, "auto", key_name="k",
                                     user_data="#!/bin/sh\necho é\n"),
         lambda: theirs.servers.create("wn-grid", "img-1", "7", userdata="#!/bin/sh\necho é\n",
                                       key_name="k", min_count=4, max_count=4, nics="auto")),
        (lambda: ours.create_servers("wn-grid", "img-1", "7", 2, "net-9"),
         lambda: theirs.servers.create("wn-grid", "img-1", "7", min_count=2, max_count=2,
                                       nics=[{"net-id": "net-9"}])),
        (lambda: ours.create_servers("wn-grid", "img-1", "7", 1, "none"),
         lambda: theirs.servers.create("wn-grid", "img-1", "7", nics="none")),
        (lambda: ours.delete_server("vm3"), lambda: theirs.servers.delete("vm3")),
        (lambda: ours.flavors(), lambda: theirs.flavors.list(is_public=None)),
        (lambda: ours.absolute_limits(), lambda: theirs.limits.get()),
    ]
    for our_call, their_call in pairs:
        _Nova.seen = []
        our_call()
        asked = _Nova.seen
        _Nova.seen = []
        their_call()
        if asked[0][1].split("?")[0].endswith(("/servers", "/servers/detail")) and asked[0][0] == "GET":
            # novaclient asks for pages until an empty one; Nova links a next page when the
            # page is full (its API reference): the last page without a link is the end
            assert asked == _Nova.seen[:-1] and "marker=vm6" in _Nova.seen[-1][1]
        else:
            assert asked == _Nova.seen


def test_the_answers_are_plain_data(nova_url):
    nova = Nova(handed_over(nova_url))
    assert list(nova.services()) == ["cn01"] and nova.services()["cn01"]["state"] == "up"
    assert nova.flavors() == [Flavor("1", "m1.tiny", 1, 512, 1, 0, 0),
                              Flavor("7", "m1.big", 8, 16384, 40, 10, 2048)]
    assert nova.absolute_limits() == LIMITS
    assert nova.create_servers("wn", "img", "1", 1, "auto") is None


@pytest.mark.parametrize("collector_on", [True, False])
def test_servers_reads_every_page_and_leaves_the_cycle_collector_as_it_was(nova_url, collector_on):
    nova, was = Nova(handed_over(nova_url)), gc.isenabled()
    try:
        (gc.enable if collector_on else gc.disable)()
        assert [s["id"] for s in nova.servers()] == [f"vm{i}" for i in range(7)]
        assert [path for _, path, *_ in _Nova.seen] == [
            "/v2.1/servers/detail?all_tenants=1", "/v2.1/servers/detail?all_tenants=1&marker=vm2",
            "/v2.1/servers/detail?all_tenants=1&marker=vm5"]  # the last page had no next link
        assert gc.isenabled() is collector_on
        _Nova.fail_page = 2
        with pytest.raises(ApiError) as err:
            nova.servers()
        assert (err.value.code, str(err.value)) == (503, "Nova is gone")
        assert gc.isenabled() is collector_on
    finally:
        (gc.enable if was else gc.disable)()


def test_full_pages_end_at_an_empty_one_and_pages_that_do_not_advance_are_refused(nova_url):
    nova = Nova(handed_over(nova_url))
    _Nova.servers = _Nova.servers[:6]
    assert len(nova.servers(host="cn01")) == 6 and len(_Nova.seen) == 3
    _Nova.stuck = True  # a broken Nova: the first page again and again
    with pytest.raises(ApiError, match="pages of /servers/detail do not advance"):
        nova.servers()
    assert len(_Nova.seen) == 3 + 2  # the first page, then the same page again
