"""Resource limits on all three MPMs, live on loopback (issue 8).

* httpd's request limits: LimitRequestLine -> 414, LimitRequestFieldSize and
  LimitRequestFields -> 431 (RFC 6585 §5; httpd answers 400), LimitRequestBody -> 413
  (up front for a Content-Length, while reading for chunked), a chunk-size line (its
  extensions) longer than LimitRequestFieldSize -> 413 as httpd (RFC 9112 §7.1.1: "limited
  with a 4xx"); each answered with Connection: close and a lingering close, so a client
  still uploading reads the answer instead of a reset (RFC 9112 §9.6); a request exactly
  at every limit is served;
* MaxConnectionsPerChild: a child serves at most that many connections (a keep-alive
  connection counts once), then is replaced;
* per-connection read and write timeouts (httpd's Timeout): a stalled head or body gets
  408 and a close (RFC 9110 §15.5.9), a silent connection is closed without an answer, a
  client that stops reading a large response is dropped and the unit it held is free;
* limits hit under concurrency do not starve anyone: while clients hammer every limit,
  a well-behaved client is served every time.

Waits poll conditions with deadlines; nothing asserts on a duration.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from suites.wire import Conn, request, wait_until
from .serverutil import GET, ONE_UNIT, check_recycling_by_connection, status_or_none

APP = "tests.wsgi_apps:app"
MPMS = ["prefork", "worker", "event"]
LIMITS = {"LimitRequestLine": 256, "LimitRequestFieldSize": 256, "LimitRequestFields": 10, "LimitRequestBody": 1000}
SMALL_POOL = {
    "prefork": {"StartServers": 3, "MinSpareServers": 1, "MaxSpareServers": 3, "MaxRequestWorkers": 3, "ServerLimit": 3},
    "worker": {"StartServers": 1, "ThreadsPerChild": 3, "MaxRequestWorkers": 3, "ServerLimit": 1,
               "MinSpareThreads": 1, "MaxSpareThreads": 3},
    "event": {"StartServers": 1, "ThreadsPerChild": 3, "MaxRequestWorkers": 3, "ServerLimit": 1,
              "MinSpareThreads": 1, "MaxSpareThreads": 3},
}


def head(line: bytes = b"POST /echo HTTP/1.1", fields: list[bytes] | None = None) -> bytes:
    fields = [b"Host: a"] + (fields or [])
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def chunked(body: bytes, ext: bytes = b"") -> bytes:
    return head(fields=[b"Transfer-Encoding: chunked"]) + b"%x%s\r\n%s\r\n0\r\n\r\n" % (len(body), ext, body)


#: (what, request bytes, status); the limits are LIMITS above
OVER = [
    ("LimitRequestLine", head(b"GET /" + b"a" * 260 + b" HTTP/1.1"), 414),
    ("LimitRequestFields", head(fields=[b"X-%d: v" % i for i in range(10)]), 431),
    ("LimitRequestFieldSize", head(fields=[b"X: " + b"v" * 260]), 431),
    ("LimitRequestBody Content-Length", head(fields=[b"Content-Length: 1001"]) + b"b" * 1001, 413),
    ("LimitRequestBody chunked", chunked(b"b" * 1001), 413),
    ("chunk extension", chunked(b"hello", b";e=" + b"x" * 300), 413),
]
AT = [
    ("LimitRequestLine", head(b"POST /echo?" + b"a" * (256 - len(b"POST /echo? HTTP/1.1")) + b" HTTP/1.1")),
    ("LimitRequestFields", head(fields=[b"X-%d: v" % i for i in range(9)])),
    ("LimitRequestFieldSize", head(fields=[b"X: " + b"v" * 253])),
    ("LimitRequestBody", head(fields=[b"Content-Length: 1000"]) + b"b" * 1000),
    ("LimitRequestBody chunked", chunked(b"b" * 1000)),
]


@pytest.mark.parametrize("mpm", MPMS)
def test_request_limits_answer_then_close_and_requests_at_the_limits_pass(launch, mpm):
    h = launch(mpm, {**SMALL_POOL[mpm], **LIMITS}, app=APP)
    for what, raw, status in OVER:
        with Conn(h.port) as c:
            c.send(raw)
            r = c.read_response()
            assert r.status == status, what
            assert r.header("Connection") == "close", what
            assert c.closed_by_peer(), what
    for what, raw in AT:
        assert request(h.port, raw).status == 200, what
    assert json.loads(request(h.port, AT[-1][1]).body)["body"] == "b" * 1000


@pytest.mark.parametrize("mpm", MPMS)
def test_a_client_still_uploading_reads_the_413(launch, mpm):
    """LimitRequestBody with a 2 MB upload in flight: 413 comes up front and the lingering
    close drains the rest, so the uploader reads the answer instead of a connection reset."""
    h = launch(mpm, {**SMALL_POOL[mpm], **LIMITS}, app=APP)
    size = 2 * 1024 * 1024
    with Conn(h.port, timeout=20) as c:
        c.send(head(fields=[b"Content-Length: %d" % size]))
        c.send(b"u" * size)  # completes only because the server keeps reading (lingering close)
        r = c.read_response()
        assert r.status == 413 and r.header("Connection") == "close"


@pytest.mark.parametrize("mpm", MPMS)
def test_max_connections_per_child(launch, mpm):
    """MaxConnectionsPerChild 3: a keep-alive connection counts once, no child serves more
    than 3 connections, and the children that reached it are replaced."""
    pools = {
        "prefork": {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1},
        "worker": {"StartServers": 1, "ThreadsPerChild": 2, "MinSpareThreads": 1, "MaxSpareThreads": 2},
        "event": {"StartServers": 1, "ThreadsPerChild": 2, "MinSpareThreads": 1, "MaxSpareThreads": 2},
    }
    h = launch(mpm, {**pools[mpm], "MaxConnectionsPerChild": 3}, app=APP)
    check_recycling_by_connection(h, 3)


@pytest.mark.parametrize("mpm", MPMS)
def test_read_timeouts_answer_408_or_close(launch, mpm):
    """httpd's Timeout (RequestReadTimeout off): a head or body that stalls gets 408 and a
    close (RFC 9110 §15.5.9); a connection that never sends a byte is closed silently."""
    # AcceptFilter http none: the silent connection below must be accepted for Timeout to apply to it
    # (with httpd's default "http data" the kernel keeps it from accept() instead: tests/test_httpd_defaults.py)
    h = launch(mpm, {**SMALL_POOL[mpm], "Timeout": 1, "RequestReadTimeout": "header=0 body=0",
                     "AcceptFilter": "http none"}, app=APP)
    with Conn(h.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost:")
        assert c.read_response().status == 408
        assert c.closed_by_peer()
    with Conn(h.port) as c:
        c.send(head(fields=[b"Content-Length: 10"]) + b"12345")
        r = c.read_response()
        assert r.status == 408 and r.header("Connection") == "close"
        assert c.closed_by_peer()
    with Conn(h.port) as c:
        assert c.closed_by_peer(timeout=10)  # nothing sent: closed without an answer
    assert request(h.port, GET).status == 200


@pytest.mark.parametrize("mpm", MPMS)
def test_write_timeout_drops_a_client_that_stops_reading(launch, mpm):
    """httpd's Timeout on writes: a client that asks for 16 MiB and reads nothing is dropped
    (prefork/worker: the blocked send gives up; event: the listener's write completion times
    out), the server no longer holds its connection, and with a single unit another client is
    served; when the client finally reads, the response ends short."""
    h = launch(mpm, {**ONE_UNIT[mpm], "Timeout": 1}, app=APP)
    size = 16 * 1024 * 1024
    a = socket.socket()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # well under the response
    a.connect(("127.0.0.1", h.port))
    try:
        a.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % size)
        # the only unit is free again, and A's connection is gone from the server's books
        assert request(h.port, GET, timeout=15).status == 200
        wait_until(lambda: (lambda s: s is not None and s.conns_total <= 1)(status_or_none(h)), 15,
                   what="the server to drop the connection that does not read")
        got = 0
        a.settimeout(10)
        try:
            while True:
                data = a.recv(1 << 20)
                if not data:
                    break
                got += len(data)
        except ConnectionResetError:
            pass
        assert got < size, "the whole response arrived: the write never timed out"
    finally:
        a.close()


class Abuser(threading.Thread):
    """Sends over-limit requests back to back (each on a new connection, answer read, closed)."""

    def __init__(self, port: int, requests: list[tuple[bytes, int]], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.requests, self.stop = port, requests, stop
        self.sent = 0
        self.wrong: list = []

    def run(self) -> None:
        end = time.monotonic() + 60
        i = 0
        while not self.stop.is_set() and time.monotonic() < end and self.sent < 20000:
            raw, status = self.requests[i % len(self.requests)]
            i += 1
            try:
                r = request(self.port, raw, timeout=10)
                if r.status != status:
                    self.wrong.append(r.status)
            except OSError as exc:
                self.wrong.append(repr(exc))
            self.sent += 1


@pytest.mark.parametrize("mpm", MPMS)
def test_clients_hitting_limits_do_not_starve_a_well_behaved_one(launch, mpm):
    """Six clients hammer every limit (414, 431, 413, chunk extension) on three units; a
    seventh, well-behaved client is answered every time (30 requests, each with the usual
    10 s deadline), and every abuser got its exact error status."""
    h = launch(mpm, {**SMALL_POOL[mpm], **LIMITS}, app=APP)
    stop = threading.Event()
    abusers = [Abuser(h.port, [(raw, status) for _, raw, status in OVER[k:] + OVER[:k]], stop) for k in range(6)]
    for a in abusers:
        a.start()
    try:
        wait_until(lambda: all(a.sent >= 5 for a in abusers), 20, what="the abusers to get going")
        for i in range(30):
            r = request(h.port, b"GET /?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % i, timeout=10)
            assert r.status == 200 and r.body == b"Hello, World!"
        assert all(a.is_alive() for a in abusers), "the abuse must last the whole check"
    finally:
        stop.set()
        for a in abusers:
            a.join(15)
    assert not [w for a in abusers for w in a.wrong]
