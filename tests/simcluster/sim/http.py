"""HTTP plumbing: one threaded server per listen address, routing by service prefix,
token checks, JSON answers and the request log."""
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .model import ApiError

MAX_LOG = 500000


class Request:
    def __init__(self, handler, method):
        self.handler = handler
        self.method = method
        parts = urlsplit(handler.path)
        self.path = parts.path.rstrip("/") or "/"
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.raw = handler.rfile.read(length) if length else b""

    def json(self):
        if not self.raw:
            return {}
        try:
            body = json.loads(self.raw)
        except ValueError:
            raise ApiError(400, "Malformed request body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Malformed request body")
        return body

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default


class Response:
    def __init__(self, status=200, body=None, headers=None, stream=None, length=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.stream = stream  # a file object to send (Glance image download)
        self.length = length


class Router:
    """Regex routes per (method); a handler gets (request, *groups) and returns a Response."""

    def __init__(self):
        self.routes = []

    def add(self, method, pattern, func):
        self.routes.append((method, re.compile("^" + pattern + "$"), func))

    def dispatch(self, req, path):
        allowed = False
        for method, regex, func in self.routes:
            match = regex.match(path)
            if match:
                if method == req.method or (method == "GET" and req.method == "HEAD"):
                    return func(req, *match.groups())
                allowed = True
        if allowed:
            raise ApiError(405, "The method is not allowed for the requested URL.")
        raise ApiError(404, "The resource could not be found.")


class Simulator:
    """Ties the cloud model to the per-service APIs."""

    def __init__(self, cloud, base_url):
        self.cloud = cloud
        self.base_url = base_url
        self.services = {}  # prefix -> (router, error formatter, needs token, version hook)
        self.answer_delay = {}  # prefix -> seconds each answer waits (--answer-delay)

    def register(self, prefix, service):
        self.services[prefix] = service

    def handle(self, handler, method):
        started = time.time()
        req = Request(handler, method)
        prefix = req.path.split("/")[1] if req.path != "/" else ""
        service = self.services.get(prefix)
        try:
            if service is None:
                raise ApiError(404, "The resource could not be found.")
            sub = req.path[len(prefix) + 1:] or "/"
            time.sleep(self.answer_delay.get(prefix, 0))
            resp = self._hostile_redirect(req, prefix, handler.path) or service.serve(req, sub)
        except ApiError as err:
            if service is not None and service.name != "sim":  # hostile mode: the cloud's texts
                err.message += self.cloud.error_suffix()
            resp = (service.error(err) if service else
                    Response(err.status, {"error": {"code": err.status, "message": err.message}}))
        except Exception as err:  # a bug in the simulator: answer 500 and say it on stderr
            import traceback
            traceback.print_exc(file=sys.stderr)
            resp = Response(500, {"error": {"code": 500, "message": f"simulator error: {err}"}})
        try:
            self._send(handler, req, resp)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: nothing to say
            handler.close_connection = True
        entry = {"service": getattr(service, "name", "unknown"), "method": method,
                 "path": req.path, "status": resp.status, "time": started,
                 "duration": round(time.time() - started, 6)}
        if req.query:
            entry["query"] = {key: values[-1] for key, values in req.query.items()}
        if req.path == "/sim/requests":
            return  # reading or clearing the log is not part of it
        with self.cloud.lock:
            if len(self.cloud.requests) < MAX_LOG:
                self.cloud.requests.append(entry)

    def _hostile_redirect(self, req, prefix, target):
        """PUT /sim/hostile {"redirect_to": URL} (optional "redirect_status", default 307, and
        "redirect_services": the prefixes to redirect, default every API): answer with a
        redirect to URL + the request's own path, as a hostile cloud or a man in the middle."""
        with self.cloud.lock:
            hostile = dict(getattr(self.cloud, "hostile", None) or {})
        services = hostile.get("redirect_services")
        if not hostile.get("redirect_to") or prefix == "sim" or (
                services is not None and prefix not in services):
            return None
        return Response(hostile.get("redirect_status", 307),
                        headers={"Location": hostile["redirect_to"].rstrip("/") + target})

    def _send(self, handler, req, resp):
        if resp.stream is not None:
            handler.send_response(resp.status)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(resp.length))
            for key, value in resp.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            with resp.stream as stream:
                if req.method != "HEAD":
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        handler.wfile.write(chunk)
            return
        data = b"" if resp.body is None else json.dumps(resp.body).encode()
        handler.send_response(resp.status)
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in resp.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if req.method != "HEAD":
            handler.wfile.write(data)


def make_handler(simulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

        def log_message(self, fmt, *args):  # the request log is /sim/requests, not stderr
            pass

        def do_GET(self):
            simulator.handle(self, "GET")

        def do_HEAD(self):
            simulator.handle(self, "HEAD")

        def do_POST(self):
            simulator.handle(self, "POST")

        def do_PUT(self):
            simulator.handle(self, "PUT")

        def do_PATCH(self):
            simulator.handle(self, "PATCH")

        def do_DELETE(self):
            simulator.handle(self, "DELETE")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(simulator, addresses, port):
    """Listen on every address; returns the servers (each runs in its own thread)."""
    servers = []
    handler = make_handler(simulator)
    for address in addresses:
        server = Server((address, port), handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers
