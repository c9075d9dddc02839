#!/usr/bin/env python3
"""The OpenStack simulator of the simulated HLT cluster: Keystone v3, Nova v2.1, Glance v2,
Placement and the /sim control API in one stdlib process (see README.md in this directory).

    simulator.py --state DIR [--listen 127.0.0.1,198.18.0.1] [--port 5800]
                 [--down-time 5] [--hosts cn01.internal,cn02.internal]
                 [--answer-delay placement=0.005]  (seconds before each answer of a service)
"""
import argparse
import os
import signal
import sys
import threading

from sim.control import Control
from sim.glance_placement import Glance, Placement
from sim.http import Simulator, serve
from sim.keystone import Keystone
from sim.model import Cloud
from sim.nova import Nova


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="state directory (admin-password, glance/images)")
    parser.add_argument("--listen", default="127.0.0.1", help="comma-separated addresses")
    parser.add_argument("--port", type=int, default=5800)
    parser.add_argument("--down-time", type=float, default=5.0,
                        help="seconds without heartbeat before a compute service is down")
    parser.add_argument("--hosts", default="", help="comma-separated node-backed hypervisors")
    parser.add_argument("--answer-delay", action="append", default=[], metavar="SERVICE=SECONDS",
                        help="wait this long before each answer of SERVICE (its URL prefix), "
                             "as a real one takes (benchmarks)")
    return parser.parse_args(argv)


def read_password(state):
    path = os.path.join(state, "admin-password")
    try:
        with open(path, encoding="utf-8") as handle:
            password = handle.read().strip()
    except OSError as err:
        raise SystemExit(f"simulator: cannot read {path}: {err.strerror}")
    if not password:
        raise SystemExit(f"simulator: {path} is empty")
    return password


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cloud = Cloud(args.state, read_password(args.state), args.down_time)
    hosts = [h for h in args.hosts.split(",") if h]
    if hosts:
        cloud.add_hosts(hosts)
    sim = Simulator(cloud, f"http://127.0.0.1:{args.port}")
    for item in args.answer_delay:
        prefix, _, seconds = item.partition("=")
        sim.answer_delay[prefix] = float(seconds)
    for service in (Keystone, Nova, Glance, Placement, Control):
        sim.register(service.name_prefix, service(sim))
    addresses = [a for a in args.listen.split(",") if a]
    stop = threading.Event()  # handlers first: a TERM right after the first answer is clean
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        servers = serve(sim, addresses, args.port)
    except OSError as err:
        raise SystemExit(f"simulator: cannot listen on {args.listen} port {args.port}: {err.strerror}")
    print(f"simulator: listening on {','.join(addresses)} port {args.port}", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
