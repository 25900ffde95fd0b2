#!/usr/bin/env python3
"""Event MPM with many idle keep-alive connections: is a new client still served fast, and what does each idle connection cost?

    python benchmarks/event_idle.py [--idle 1000] [--probes 2000]

Starts event with 2 children x 25 threads (AsyncRequestWorkerFactor 20, so the cap
25 + 25 x 20 = 525 per child leaves room for the idle connections; httpd's default
of 2 would cap a child at 75), pinned to CPU 0; this script runs on CPU 1. It
measures the server tree's summed PSS, opens N keep-alive connections that each get
one answer and then idle, measures PSS again (the difference / N is the cost of an
idle connection), then times `--probes` requests from new clients (one new
connection each, sequential, so the latency is the server's, not a queue's) and
reports their p50/p99, and finally checks that every idle connection still answers.
Loopback only; every connection and the server are closed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from servers.launcher import start  # noqa: E402

GET = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total


def read_response(s: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(4096)
    return head.split(b"\r\n")[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=2000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 500)), hard))
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[1]})
    h = start("event", {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 25, "MaxRequestWorkers": 50,
                        "MinSpareThreads": 25, "MaxSpareThreads": 75, "AsyncRequestWorkerFactor": 20,
                        "KeepAliveTimeout": 300}, cpus={0})
    idle: list[socket.socket] = []
    try:
        time.sleep(1.0)
        for _ in range(200):  # warm both children before the baseline
            with socket.create_connection((h.host, h.port), timeout=5) as s:
                s.sendall(GET)
                read_response(s)
        before = pss(h.pids())
        for _ in range(args.idle):
            s = socket.create_connection((h.host, h.port), timeout=10)
            s.sendall(GET)
            read_response(s)
            idle.append(s)
        time.sleep(1.0)
        after = pss(h.pids())
        st = h.status()
        lat = []
        deadline = time.monotonic() + 120
        for _ in range(args.probes):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            with socket.create_connection((h.host, h.port), timeout=5) as s:
                s.sendall(GET)
                line = read_response(s)
            lat.append((time.perf_counter() - t0) * 1000)
            assert line.startswith(b"HTTP/1.1 200"), line
        still = 0
        for s in idle:
            s.sendall(GET)
            if read_response(s).startswith(b"HTTP/1.1 200"):
                still += 1
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"idle keep-alive connections: {args.idle} (server reports ConnsAsyncKeepAlive {st.conns_async_keep_alive},"
              f" ConnsTotal {st.conns_total}); still answering afterwards: {still}")
        print(f"PSS before {before / 2**20:.1f} MiB, with idle connections {after / 2**20:.1f} MiB: "
              f"{(after - before) / args.idle / 1024:.2f} KiB per idle connection")
        print(f"new clients: {len(lat)} requests, p50 {statistics.median(lat):.2f} ms, p99 {p99:.2f} ms, "
              f"max {lat[-1]:.2f} ms")
        return 0
    finally:
        for s in idle:
            s.close()
        h.stop()


if __name__ == "__main__":
    sys.exit(main())
