"""Serve one OpenStack WSGI application with a small threaded wsgiref server.

Runs with the real cloud's venv python:
    wsgi_server.py APP --listen 127.0.0.1,198.18.0.1 --port N --access-log FILE
APP: keystone, nova, placement, glance (their own WSGI modules, configured from the
environment variables the modules read), or network (a stub Neutron answering empty
lists: Nova needs a network endpoint for server listings and deletes, nothing more when
servers are booted with nics='none').

Every request is appended to the access log as "<time> <METHOD> <path> <status>": the
tests count the mutating requests a dry run sent from it.
"""
import argparse
import json
import os
import socketserver
import sys
import threading
import time
from wsgiref import simple_server


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, *args):  # the access log below replaces stderr noise
        pass

    def address_string(self):  # no reverse DNS per request
        return self.client_address[0]


def _load(app):
    """Import the application; each module reads its config location from the environment."""
    sys.argv = [sys.argv[0]]  # the modules parse sys.argv as oslo.config arguments
    if app == "keystone":
        from keystone.wsgi.api import application
    elif app == "nova":
        from nova.wsgi.osapi_compute import application
    elif app == "placement":
        from placement.wsgi.api import application
    elif app == "glance":
        from glance.wsgi.api import application
    elif app == "network":
        application = network_stub
    else:
        raise SystemExit(f"unknown application: {app}")
    return application


def network_stub(environ, start_response):
    """Neutron as seen by Nova with no networks: versions, and empty lists of everything."""
    path = environ.get("PATH_INFO", "/").rstrip("/")
    method = environ["REQUEST_METHOD"]
    host = environ.get("HTTP_HOST", "localhost")
    if path in ("", "/"):
        body = {"versions": [{"id": "v2.0", "status": "CURRENT",
                              "links": [{"href": f"http://{host}/v2.0/", "rel": "self"}]}]}
        status = "200 OK"
    elif path == "/v2.0":
        body = {"resources": []}
        status = "200 OK"
    elif method == "GET" and path.count("/") == 2:
        resource = path.split("/")[2].removesuffix(".json")
        body = {resource.replace("-", "_"): []}
        status = "200 OK"
    else:
        body = {"NeutronError": {"type": "NotFound", "message": f"{method} {path}: no such thing",
                                 "detail": ""}}
        status = "404 Not Found"
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _logged(application, log_path):
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1, encoding="utf-8")

    def wrapper(environ, start_response):
        seen = {}

        def recording_start(status, headers, exc_info=None):
            seen["status"] = status.split()[0]
            return start_response(status, headers, exc_info)

        try:
            return application(environ, recording_start)
        finally:
            with lock:
                log.write(f"{time.time():.3f} {environ['REQUEST_METHOD']} "
                          f"{environ.get('PATH_INFO', '/')} {seen.get('status', '-')}\n")
    return wrapper


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-log", required=True)
    args = parser.parse_args()
    application = _logged(_load(args.app), args.access_log)
    servers = []
    for address in args.listen.split(","):
        server = _Server((address, args.port), _QuietHandler)
        server.set_app(application)
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{args.app} serving on {args.listen} port {args.port} (pid {os.getpid()})", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
