"""cloud.placement.Placement against a real HTTP server on loopback playing Placement,
through a real session.Cloud (a --parallel parent's hand-over: no Keystone needed) and its
keystoneauth1 session: the allocation candidates read by provider, the inventories read
concurrently and at most READERS at a time, every failure one ApiError."""
import datetime
import json
import threading
import time
import http.server

import pytest
from helpers import free_port

from hltcloud.cloud.jsonapi import MAX_ANSWER, ApiError
from hltcloud.cloud.placement import READERS, Placement
from hltcloud.cloud.session import HANDOFF_VAR, Cloud, CloudError

INVENTORY = {"VCPU": {"total": 8, "reserved": 0, "allocation_ratio": 2.0, "max_unit": 8}}


def rp(number):
    """A resource provider's uuid, numbered."""
    return f"00000000-0000-4000-8000-{number:012d}"


SHARE = "00000000-0000-4000-8000-5ba4edd15c00"


class _Placement(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    in_flight = peak = 0
    failing = set()  # provider uuids whose inventories answer 503
    seen = []

    answers = {}  # path -> the answer given instead (a hostile or broken Placement)
    chunks = 0  # > 0: every answer is that many chunks of 1 MiB, with no Content-Length

    def do_GET(self):  # noqa: N802 -- the name http.server calls
        with _Placement.lock:
            _Placement.in_flight += 1
            _Placement.peak = max(_Placement.peak, _Placement.in_flight)
            _Placement.seen.append((self.path, self.headers.get("OpenStack-API-Version")))
        try:
            path = self.path.split("?")[0]
            status, answer = (200, self.answers[path]) if path in self.answers else self._route(path)
            time.sleep(0.02)  # long enough for the readers to overlap
        finally:
            with _Placement.lock:
                _Placement.in_flight -= 1
        if self.chunks:
            return self._send_chunks()
        raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _send_chunks(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b" " * (1 << 20)
        try:
            for _ in range(self.chunks):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: good
            self.close_connection = True

    def _route(self, path):
        if path.endswith("/allocation_candidates"):
            return 200, {
                "allocation_requests": [
                    {"allocations": {rp(1): {"resources": {"VCPU": 2}}}},
                    {"allocations": {rp(2): {"resources": {"VCPU": 2}},  # shared storage
                                     SHARE: {"resources": {"DISK_GB": 20}}}}],
                "provider_summaries": {
                    rp(1): {"resources": {"VCPU": {"capacity": 16, "used": 4}}},
                    rp(2): {"resources": {"VCPU": {"capacity": 16, "used": 0}}},
                    SHARE: {"resources": {"DISK_GB": {"capacity": 1000, "used": 0}}}}}
        uuid = path.split("/")[-2]
        if path.endswith("/inventories") and uuid not in _Placement.failing:
            return 200, {"resource_provider_generation": 1, "inventories": INVENTORY}
        if path.endswith("/inventories"):
            return 503, {"errors": [{"status": 503, "title": "Service Unavailable",
                                     "detail": "the database is away"}]}
        return 404, {"errors": [{"status": 404, "title": "Not Found", "detail": "no route"}]}

    def log_message(self, *args):
        pass


@pytest.fixture
def placement():
    _Placement.in_flight = _Placement.peak = 0
    _Placement.failing, _Placement.seen, _Placement.answers, _Placement.chunks = set(), [], {}, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Placement)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Placement(handed_over(f"http://127.0.0.1:{server.server_address[1]}/placement"))
    server.shutdown()
    server.server_close()


def handed_over(url):
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return Cloud(env={HANDOFF_VAR: json.dumps({
        "token": "tok", "endpoints": {"compute": url, "placement": url}, "project_id": "p1",
        "expires_at": expires.isoformat(), "verify": True, "cert": None})}, handoff=True)


def test_the_room_counts_the_candidates_a_provider_holds_alone(placement):
    assert placement.room({"VCPU": 2, "DISK_GB": 20}) == {rp(1): {"VCPU": {"capacity": 16, "used": 4}}}
    path, version = _Placement.seen[0]
    assert path == "/placement/allocation_candidates?resources=DISK_GB%3A20%2CVCPU%3A2"
    assert version == "placement 1.12"


def test_inventories_are_read_concurrently_at_most_readers_at_a_time(placement):
    uuids = [rp(i) for i in range(3 * READERS)]
    assert placement.inventories(uuids) == {uuid: INVENTORY for uuid in uuids}
    assert len(_Placement.seen) == len(uuids)
    assert 1 < _Placement.peak <= READERS


def test_a_failure_is_one_api_error_and_stops_what_has_not_started(placement):
    uuids = [rp(i) for i in range(10 * READERS)]
    _Placement.failing = set(uuids)
    with pytest.raises(ApiError) as err:
        placement.inventories(uuids)
    assert (err.value.code, str(err.value)) == (503, "Service Unavailable")
    time.sleep(0.5)  # the reads that had started end
    assert len(_Placement.seen) < len(uuids)  # the rest were never sent
    with pytest.raises(ApiError) as err:
        placement._get("/nowhere")
    assert (err.value.code, str(err.value)) == (404, "Not Found")


def test_nothing_listening_is_one_api_error():
    gone = Placement(handed_over(f"http://127.0.0.1:{free_port()}/placement"))
    with pytest.raises(ApiError) as err:
        gone.providers()
    assert err.value.code is None and "127.0.0.1" in str(err.value)


PROVIDERS = "/placement/resource_providers"
CANDIDATES = "/placement/allocation_candidates"
INVENTORIES = f"/placement/resource_providers/{rp(7)}/inventories"


def summary(resources):
    """An allocation candidates answer naming rp(1) alone, with RESOURCES as its summary."""
    return {"allocation_requests": [{"allocations": {rp(1): {"resources": {"VCPU": 1}}}}],
            "provider_summaries": {rp(1): {"resources": resources}}}


@pytest.mark.parametrize("path, answer, read, message", [
    (PROVIDERS, {"resource_providers": [{"name": "cn01", "uuid": "../../os-hypervisors"}]},
     "providers", "a resource provider uuid that is not one: '../../os-hypervisors'"),
    (PROVIDERS, {"providers": []}, "providers", "the answer without its 'resource_providers'"),
    (PROVIDERS, {"resource_providers": [{"name": ["cn01"], "uuid": rp(1)}]}, "providers",
     "a resource provider without its 'name'"),
    (CANDIDATES, {"allocation_requests": {}, "provider_summaries": {}}, "room",
     "the answer without its 'allocation_requests'"),
    (CANDIDATES, {"allocation_requests": [{"allocations": {"x/../y": {}}}],
                  "provider_summaries": {}}, "room", "a resource provider uuid that is not one"),
    (CANDIDATES, summary({"VCPU": {"capacity": "lots", "used": 0}}), "room",
     "VCPU capacity that is not a figure: 'lots'"),
    (CANDIDATES, summary({"VCPU": {"capacity": 16, "used": -1}}), "room",
     "VCPU used that is not a figure: -1"),
    (CANDIDATES, b'{"allocation_requests": [{"allocations": {"%s": {}}}], "provider_summaries":'
                 b' {"%s": {"resources": {"VCPU": {"capacity": NaN, "used": 0}}}}}'
                 % (rp(1).encode(), rp(1).encode()), "room", "VCPU capacity that is not a figure: nan"),
    (CANDIDATES, summary({"VCPU": {"capacity": 2 ** 64, "used": 0}}), "room",
     "VCPU capacity that is not a figure: 18446744073709551616"),
    (CANDIDATES, summary({"VCPU\x1b]0;owned\x07": {"capacity": 16, "used": 0}}), "room",
     "a resource class that is not a name: 'VCPU\\x1b]0;owned\\x07'"),
    (CANDIDATES, summary({"VCPU": {"capacity": 16}}), "room", "VCPU without capacity and used"),
    (INVENTORIES, {"inventories": {"VCPU": {"total": True}}}, "inventories",
     "VCPU total that is not a figure: True"),
    (INVENTORIES, {"inventories": {"VCPU": {"reserved": 0}}}, "inventories", "VCPU without total"),
    (INVENTORIES, {"inventories": {"VCPU": {"total": 8, "max_unit": "8"}}}, "inventories",
     "VCPU max_unit that is not a figure: '8'"),
])
def test_an_answer_placement_should_not_give_is_one_api_error_naming_it(placement, path, answer,
                                                                        read, message):
    _Placement.answers[path] = answer
    call = {"providers": placement.providers, "room": lambda: placement.room({"VCPU": 1}),
            "inventories": lambda: placement.inventories([rp(7)])}[read]
    with pytest.raises(ApiError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value) and "\x1b" not in str(err.value)
    assert str(err.value).startswith(f"placement answered GET {path.removeprefix('/placement')} with ")


def test_an_answer_larger_than_the_bound_is_refused_while_it_is_read(placement):
    _Placement.chunks = MAX_ANSWER // (1 << 20) + 8  # chunked: no length to refuse it by
    with pytest.raises(CloudError) as err:
        placement.providers()
    assert f"answered with more than {MAX_ANSWER} bytes" in str(err.value)


def test_an_answer_declared_larger_than_the_bound_is_not_read(placement):
    _Placement.answers[PROVIDERS] = b" " * 16  # sent with a lying Content-Length below
    huge = str(MAX_ANSWER + 1)
    original = _Placement.send_header
    _Placement.send_header = lambda self, key, value: original(
        self, key, huge if key == "Content-Length" else value)
    try:
        with pytest.raises(CloudError) as err:
            placement.providers()
    finally:
        _Placement.send_header = original
    assert f"answered with more than {MAX_ANSWER} bytes" in str(err.value)
