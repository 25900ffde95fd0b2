#!/usr/bin/env python3
"""What one request costs in the servers' shared Python path, with no I/O and a hot cache.

    python benchmarks/hot_path.py [--requests 20000] [--repeats 7] [--json PATH]
    PYTHONPATH=/path/to/other/tree python benchmarks/hot_path.py     # the same on another tree

Every MPM serves a request with the same code (servers/mpm/serve.py): read the head
(servers/http/parser.py: the request-line and Host rules, llhttp, the Request), build the
WSGI environ, run the application (the built-in app's ``GET /``), frame and write the
response (servers/wsgi.py, the keep-alive decision of servers/http/persistence.py). This
runs exactly that path in a loop on one connection object whose socket writes go nowhere
and whose reader is fed each request's bytes directly, and prints the best of
``--repeats`` runs in microseconds per request:

* ``simple``: the built-in driver's request (request-line and Host);
* ``browser``: a browser's navigation request (eleven fields, a query, a cookie);

each with the threaded MPMs' hung-application watchdog in the path (``worker``/``event``
workers) and without it (``prefork``).

What it measures is the interpreter's work for one request with everything in cache. Under
load a server spends several times this (system calls, context switches, the interpreter
lock, and for prefork's many processes a cold cache: docs/performance.md), so use it to
compare two trees' Python paths side by side on one machine, never as a throughput figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another tree given there is the one measured

from servers.apps import app  # noqa: E402
from servers.http.limits import Limits  # noqa: E402
from servers.http.persistence import KeepAlivePolicy  # noqa: E402
from servers.mpm.serve import Connection, ServeContext, Watch, handle_request, read_request  # noqa: E402

REQUESTS = {
    "simple": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "browser": (b"GET /?q=1 HTTP/1.1\r\nHost: example.test\r\n"
                b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
                b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
                b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
                b"Connection: keep-alive\r\nCookie: session=abc123; theme=dark\r\n"
                b"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\r\n"),
}


def per_request_us(request: bytes, *, watchdog: bool, requests: int, repeats: int) -> float:
    """Best of ``repeats`` loops of ``requests`` requests: microseconds per request."""
    ours, theirs = socket.socketpair()  # a real socket for the options the path sets; nothing is sent on it
    ctx = ServeContext(app=app, policy=KeepAlivePolicy(True, 5.0, 0), limits=Limits(), timeout=60.0,
                       server_name="127.0.0.1", server_port=8080, stopping=lambda: False,
                       set_status=lambda status: None, record=lambda *args: None, multithread=watchdog,
                       watch=Watch() if watchdog else None)
    conn = Connection(ours, ("127.0.0.1", 40000), ctx)
    sent = [0]

    def discard(data: bytes) -> None:
        sent[0] += len(data)

    conn.raw_send = discard
    best = float("inf")
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(requests):
                conn.reader.feed(request)
                handle_request(conn, read_request(conn))
            best = min(best, (time.perf_counter() - start) / requests * 1e6)
    finally:
        ours.close()
        theirs.close()
    if conn.served != requests * repeats or not sent[0]:
        raise RuntimeError(f"served {conn.served} of {requests * repeats} requests: the path failed")
    return best


def main(argv: list[str] | None = None) -> int:
    """Print (and with --json write) µs per request for each request and path."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000, help="requests per loop (default 20000)")
    ap.add_argument("--repeats", type=int, default=7, help="loops; the best is reported (default 7)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.repeats < 1:
        ap.error("--requests and --repeats must be at least 1")
    gc.freeze()  # as the servers do before forking: the collector skips what was loaded
    figures = {name: {path: round(per_request_us(raw, watchdog=path == "worker", requests=args.requests,
                                                 repeats=args.repeats), 2)
                      for path in ("worker", "prefork")}
               for name, raw in REQUESTS.items()}
    print(f"servers from {Path(sys.modules['servers'].__file__).parent.parent}, Python {sys.version.split()[0]}")
    print("| request | worker path us/request | prefork path us/request |")
    print("|---|---:|---:|")
    for name, row in figures.items():
        print(f"| {name} | {row['worker']:.2f} | {row['prefork']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
