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

from hltcloud.cloud.jsonapi import ApiError
from hltcloud.cloud.placement import READERS, Placement
from hltcloud.cloud.session import HANDOFF_VAR, Cloud

INVENTORY = {"VCPU": {"total": 8, "reserved": 0, "allocation_ratio": 2.0, "max_unit": 8}}


class _Placement(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    in_flight = peak = 0
    failing = set()  # provider uuids whose inventories answer 503
    seen = []

    def do_GET(self):  # noqa: N802 -- the name http.server calls
        with _Placement.lock:
            _Placement.in_flight += 1
            _Placement.peak = max(_Placement.peak, _Placement.in_flight)
            _Placement.seen.append((self.path, self.headers.get("OpenStack-API-Version")))
        try:
            status, answer = self._route(self.path.split("?")[0])
            time.sleep(0.02)  # long enough for the readers to overlap
        finally:
            with _Placement.lock:
                _Placement.in_flight -= 1
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _route(self, path):
        if path.endswith("/allocation_candidates"):
            return 200, {
                "allocation_requests": [
                    {"allocations": {"rp-1": {"resources": {"VCPU": 2}}}},
                    {"allocations": {"rp-2": {"resources": {"VCPU": 2}},  # shared storage
                                     "rp-share": {"resources": {"DISK_GB": 20}}}}],
                "provider_summaries": {
                    "rp-1": {"resources": {"VCPU": {"capacity": 16, "used": 4}}},
                    "rp-2": {"resources": {"VCPU": {"capacity": 16, "used": 0}}},
                    "rp-share": {"resources": {"DISK_GB": {"capacity": 1000, "used": 0}}}}}
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
    _Placement.failing, _Placement.seen = set(), []
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
    assert placement.room({"VCPU": 2, "DISK_GB": 20}) == {"rp-1": {"VCPU": {"capacity": 16, "used": 4}}}
    path, version = _Placement.seen[0]
    assert path == "/placement/allocation_candidates?resources=DISK_GB%3A20%2CVCPU%3A2"
    assert version == "placement 1.12"


def test_inventories_are_read_concurrently_at_most_readers_at_a_time(placement):
    uuids = [f"rp-{i}" for i in range(3 * READERS)]
    assert placement.inventories(uuids) == {uuid: INVENTORY for uuid in uuids}
    assert len(_Placement.seen) == len(uuids)
    assert 1 < _Placement.peak <= READERS


def test_a_failure_is_one_api_error_and_stops_what_has_not_started(placement):
    uuids = [f"rp-{i}" for i in range(10 * READERS)]
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
