"""Tests of the built-in driver (closed and open loop) against tiny raw-socket servers.

Each server runs in threads of this process on 127.0.0.1, port 0.  Nothing
here asserts on throughput: only on counts, which the driver must get
exactly, on the schedule's request count, and on latencies that a server
stall of a full second forces (the open loop must show it, the closed loop
can hide it).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time

import pytest

from harness.drivers.loadgen import HdrHistogram, LoadResult, parse_url, run_closed_loop, run_open_loop

OK_CL = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
OK_CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nHello\r\n8;ext=1\r\n, World!\r\n0\r\n\r\n"
)
OK_CHUNKED_TRAILER = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
    b"d\r\nHello, World!\r\n0\r\nX-Check: 1\r\n\r\n"
)
CLOSE_CL = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
HTTP10_EOF = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody delimited by close"
ERR_500 = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


class Peer:
    """The server side of one accepted connection, with a request reader."""

    def __init__(self, sock: socket.socket, server: "TinyServer"):
        self.sock = sock
        self.server = server
        self.buf = b""
        sock.settimeout(0.05)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_request(self) -> bytes | None:
        """Next request head, or None at EOF / server stop (bodies are not used here)."""
        while b"\r\n\r\n" not in self.buf:
            if self.server.stopping.is_set():
                return None
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None
            if not data:
                return None
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        with self.server.lock:
            self.server.requests_seen += 1
            self.server.heads.append(head)
        return head

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def hold(self) -> None:
        """Keep the connection open, reading and never answering, until stop."""
        while self.read_request() is not None:
            pass


class TinyServer:
    """Threaded raw-socket server: handler(peer, index) runs per accepted connection."""

    def __init__(self, handler):
        self.handler = handler
        self.lsock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.lsock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.lsock.getsockname()[1]}/"
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.accepted = 0
        self.requests_seen = 0
        self.heads: list[bytes] = []
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []

    def __enter__(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                index = self.accepted
                self.accepted += 1
                self.socks.append(s)
            t = threading.Thread(target=self._run, args=(s, index), daemon=True)
            t.start()
            with self.lock:
                self.threads.append(t)

    def _run(self, s, index):
        try:
            self.handler(Peer(s, self), index)
        finally:
            s.close()

    def __exit__(self, *exc):
        self.stopping.set()
        deadline = time.monotonic() + 5
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.lsock.close()
        assert not any(t.is_alive() for t in threads), "test server threads did not stop"


def keepalive(response: bytes):
    def handler(peer: Peer, index: int):
        while peer.read_request() is not None:
            if not peer.send(response):
                return

    return handler


def check_consistent(r: LoadResult, connections: int):
    assert len(r.per_connection) == connections
    assert sum(r.per_connection) == r.requests
    assert sum(r.status_counts.values()) == r.requests
    assert r.histogram.get_total_count() == r.requests
    assert r.starved_connections == sum(1 for n in r.per_connection if n == 0)
    json.dumps(r.to_dict())


# --------------------------------------------------------------------------


def test_keepalive_content_length():
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=4, duration=0.5, timeout=2)
    check_consistent(r, 4)
    assert r.ok, r.to_dict()
    assert r.errors == {} and r.reconnects == 0 and r.closed_idle == 0
    assert set(r.status_counts) == {200}
    assert srv.accepted == 4  # keep-alive: one connection per slot
    assert r.requests > 0 and r.rps > 0
    assert r.requests_sent == srv.requests_seen  # every request sent was answered
    assert r.requests == r.requests_sent
    assert 0 < r.percentile(50) <= r.percentile(99) <= r.histogram.get_max_value()
    assert r.driver_cpu_seconds > 0 and r.driver_cpu_fraction > 0
    head = srv.heads[0]
    assert head.startswith(b"GET / HTTP/1.1\r\n") and b"\r\nHost: 127.0.0.1:" in head


def test_chunked_responses():
    def handler(peer, index):
        n = 0
        while peer.read_request() is not None:
            n += 1
            if not peer.send(OK_CHUNKED if n % 2 else OK_CHUNKED_TRAILER):
                return

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=3, duration=0.4, timeout=2)
    check_consistent(r, 3)
    assert r.ok, r.to_dict()
    assert r.requests >= 6 and r.requests == srv.requests_seen
    assert r.reconnects == 0


@pytest.mark.parametrize("response", [CLOSE_CL, HTTP10_EOF], ids=["connection-close", "http10-eof"])
def test_server_closing_after_each_response_reconnects_without_errors(response):
    def handler(peer, index):
        if peer.read_request() is not None:
            peer.send(response)
        # closing: _run closes the socket

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=3, duration=0.4, timeout=2)
    check_consistent(r, 3)
    assert r.ok, r.to_dict()
    assert r.errors == {}
    assert r.requests >= 6
    # every response ended its connection; the slots reconnected for the next one
    assert r.reconnects >= r.requests - 3
    # a connection opened just before the stop may be closed before the server accepts it
    assert r.requests <= srv.accepted <= r.reconnects + 3
    assert r.closed_idle == 0


def test_unannounced_close_is_resent_not_an_error():
    """HTTP/1.1 keep-alive response, then the server silently closes."""

    def handler(peer, index):
        if peer.read_request() is not None:
            peer.send(OK_CL)

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=2, duration=0.4, timeout=2)
    check_consistent(r, 2)
    assert r.ok, r.to_dict()
    assert r.errors == {}
    assert r.closed_idle > 0 and r.reconnects >= r.closed_idle


def test_unanswered_connection_is_a_timeout_and_starved():
    """The server answers the first 3 connections; every later one is held unanswered."""

    def handler(peer, index):
        if index < 3:
            keepalive(OK_CL)(peer, index)
        else:
            peer.hold()

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=4, duration=0.6, timeout=0.2)
    check_consistent(r, 4)
    assert not r.ok
    assert r.starved_connections == 1
    assert sorted(n > 0 for n in r.per_connection) == [False, True, True, True]
    assert r.errors.get("timeout", 0) >= 1
    assert set(r.errors) == {"timeout"}
    assert set(r.status_counts) == {200}


def test_status_counts_with_500():
    def handler(peer, index):
        n = 0
        while peer.read_request() is not None:
            n += 1
            if not peer.send(ERR_500 if n % 2 == 0 else OK_CL):
                return

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=1, duration=5, timeout=2, max_requests=10)
    check_consistent(r, 1)
    assert r.status_counts == {200: 5, 500: 5}
    assert r.errors == {}
    assert not r.ok  # not every status is 2xx
    assert r.to_dict()["status_counts"] == {"200": 5, "500": 5}


def test_responses_split_byte_by_byte():
    def handler(peer, index):
        n = 0
        while peer.read_request() is not None:
            n += 1
            for i in range(len(resp := (OK_CL, OK_CHUNKED, OK_CHUNKED_TRAILER)[n % 3])):
                if not peer.send(resp[i : i + 1]):
                    return

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=2, duration=5, timeout=2, max_requests=30)
    check_consistent(r, 2)
    assert r.ok, r.to_dict()
    assert r.requests == 30 == srv.requests_seen
    assert r.errors == {} and r.reconnects == 0


def test_several_responses_in_one_write():
    """The server answers a request and the next one ahead of time, in one write.

    With one request in flight, the second response sits in the driver's
    buffer already when it sends the next request; it must be matched to
    that request, not lost or taken as a protocol error.
    """

    def handler(peer, index):
        n = 0
        while peer.read_request() is not None:
            n += 1
            if n % 2 and not peer.send(OK_CL + OK_CHUNKED + b""):
                return

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=1, duration=5, timeout=2, max_requests=20)
    check_consistent(r, 1)
    assert r.ok, r.to_dict()
    assert r.requests == 20 and r.status_counts == {200: 20}
    assert r.errors == {} and r.reconnects == 0


def test_two_processes_merge():
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=5, duration=0.5, timeout=2, processes=2)
    check_consistent(r, 5)
    assert r.ok, r.to_dict()
    assert r.processes == 2
    assert srv.accepted == 5
    assert r.requests == srv.requests_seen
    assert r.driver_cpu_seconds > 0
    # merged histogram: added, so its count is the total of both processes
    assert r.histogram.get_total_count() == r.requests
    d = r.to_dict()
    h = HdrHistogram.decode(d["latency_us"]["hdr"])
    assert h.get_total_count() == r.requests


def test_two_processes_max_requests_split():
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=4, duration=5, timeout=2, processes=2, max_requests=21)
    check_consistent(r, 4)
    assert r.requests == 21 == srv.requests_seen


def test_max_requests_bound():
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=3, duration=30, timeout=2, max_requests=17)
    check_consistent(r, 3)
    assert r.ok, r.to_dict()
    assert r.requests == 17 == r.requests_sent == srv.requests_seen
    assert r.duration < 30


def test_keep_alive_false_sends_connection_close():
    def handler(peer, index):
        head = peer.read_request()
        if head is not None:
            peer.send(CLOSE_CL if b"connection: close" in head.lower() else OK_CL)

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=2, duration=5, timeout=2, keep_alive=False, max_requests=10)
    check_consistent(r, 2)
    assert r.ok, r.to_dict()
    assert r.requests == 10 and r.closed_idle == 0
    # one connection per request; the other slot may have reconnected before
    # the last request went out on this one, and then closes unused
    assert 10 <= srv.accepted <= 11


@pytest.mark.parametrize("body", [b"payload", bytes(range(256)) * 8192], ids=["small", "2MiB-partial-sends"])
def test_post_body_and_headers(body):
    bodies = []

    def handler(peer, index):
        while (head := peer.read_request()) is not None:
            n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(peer.buf) < n and not peer.server.stopping.is_set():
                try:
                    peer.buf += peer.sock.recv(65536)
                except socket.timeout:
                    continue
            bodies.append(peer.buf[:n])
            peer.buf = peer.buf[n:]
            if not peer.send(OK_CL):
                return

    with TinyServer(handler) as srv:
        r = run_closed_loop(
            srv.url + "echo?x=1", connections=1, duration=5, timeout=2, method="POST",
            headers={"X-Test": "yes"}, body=body, max_requests=3,
        )
    assert r.ok and r.requests == 3
    assert bodies == [body] * 3
    assert srv.heads[0].startswith(b"POST /echo?x=1 HTTP/1.1\r\n") and b"\r\nX-Test: yes" in srv.heads[0]


def test_connection_refused_is_counted_and_bounded():
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = run_closed_loop(f"http://127.0.0.1:{port}/", connections=2, duration=0.3, timeout=1)
    assert r.requests == 0 and not r.ok
    assert r.starved_connections == 2
    assert r.errors.get("connect", 0) >= 2
    # the retry backoff keeps the attempts far below a busy loop's
    assert r.errors["connect"] < 2 * 0.3 / 0.02 + 10


def test_cpu_pinning_restores_affinity():
    before = os.sched_getaffinity(0)
    cpu = max(before)
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=1, duration=5, timeout=2, cpus=[cpu], max_requests=5)
    assert r.cpus == [cpu]
    assert os.sched_getaffinity(0) == before
    assert r.ok


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1:8080/",
        "http://example.com/",
        "http://0.0.0.0:8080/",
        "http://[2001:db8::1]:80/",
        "https://10.0.0.1/",
        "ftp://127.0.0.1/",
        "http:///nohost",
    ],
)
def test_non_loopback_refused(url):
    with pytest.raises(ValueError):
        run_closed_loop(url, connections=1, duration=0.1)


def test_loopback_forms_accepted():
    assert parse_url("http://127.0.0.2:81/a")[1] == ("127.0.0.2", 81)
    assert parse_url("http://localhost/")[1] == ("127.0.0.1", 80)
    fam, addr, host, target, tls_host = parse_url("http://[::1]:8080/x?q=1")
    assert fam == socket.AF_INET6 and addr[:2] == ("::1", 8080)
    assert host == "[::1]:8080" and target == "/x?q=1" and tls_host is None


def test_bad_arguments():
    with pytest.raises(ValueError):
        run_closed_loop("http://127.0.0.1:1/", connections=0, duration=1)
    with pytest.raises(ValueError):
        run_closed_loop("http://127.0.0.1:1/", connections=1, duration=0)
    with pytest.raises(ValueError):
        run_closed_loop("http://127.0.0.1:1/", connections=1, duration=1, headers={"X": "a\r\nInjected: 1"})


def test_interim_1xx_is_skipped():
    def handler(peer, index):
        while peer.read_request() is not None:
            if not peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" + OK_CL):
                return

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=1, duration=5, timeout=2, max_requests=5)
    assert r.ok and r.status_counts == {200: 5}


def test_garbage_response_is_a_protocol_error():
    def handler(peer, index):
        while peer.read_request() is not None:
            if not peer.send(b"SSH-2.0-nonsense\r\n\r\n"):
                return

    with TinyServer(handler) as srv:
        r = run_closed_loop(srv.url, connections=1, duration=0.3, timeout=1)
    assert not r.ok and r.requests == 0
    assert set(r.errors) == {"protocol"} and r.starved_connections == 1


# --------------------------------------------------------------------------
# throughput over time


def check_timeline(r: LoadResult, duration: float):
    """The timeline sums to the responses and has about ``duration`` one-second buckets."""
    assert sum(r.timeline) == r.requests
    assert math.ceil(duration) <= len(r.timeline) <= math.ceil(duration) + 1, r.timeline
    assert all(n >= 0 for n in r.timeline)
    assert LoadResult.from_dict(json.loads(json.dumps(r.to_dict()))).timeline == r.timeline


@pytest.mark.parametrize("processes", [1, 2])
def test_timeline_closed_loop(processes):
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=4, duration=2, timeout=2, processes=processes)
    check_consistent(r, 4)
    check_timeline(r, 2)
    assert r.timeline[0] > 0 and r.timeline[1] > 0  # the server answers all along
    assert r.mode == "closed" and r.late_sends == 0 and r.target_rate is None


def test_timeline_max_requests_run_is_short():
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_closed_loop(srv.url, connections=2, duration=30, timeout=2, max_requests=10)
    assert r.requests == 10
    assert sum(r.timeline) == 10 and len(r.timeline) == math.ceil(r.duration)


# --------------------------------------------------------------------------
# open loop


def check_open(r: LoadResult, connections: int, rate: float, duration: float):
    """Counts of an open-loop run: exact where the schedule fixes them."""
    assert r.mode == "open" and r.target_rate == rate
    assert len(r.per_connection) == connections
    assert sum(r.per_connection) == r.requests == sum(r.status_counts.values())
    assert r.histogram.get_total_count() == r.requests
    # a slot never given a request is not starved; every other zero is
    assert r.starved_connections <= sum(1 for n in r.per_connection if n == 0)
    # the schedule: every request due within the run was sent or is an "unsent" error
    assert r.requests_sent + r.errors.get("unsent", 0) == math.ceil(rate * duration)
    assert 0 <= r.late_sends <= r.requests_sent
    lag = r.extra["dispatch_lag_us"]
    assert lag["count"] + r.late_sends == r.requests_sent  # every send was on time or late
    check_timeline(r, duration)
    d = LoadResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert (d.mode, d.target_rate, d.late_sends) == ("open", rate, r.late_sends)


def count_at_least(r: LoadResult, us: int) -> int:
    """Responses whose latency was at least ``us`` microseconds."""
    return sum(it.count_at_value_iterated_to for it in r.histogram.get_recorded_iterator()
               if it.value_iterated_to >= us)


@pytest.mark.parametrize("processes", [1, 2])
def test_open_loop_sends_the_scheduled_count(processes):
    rate, duration = 200, 2
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_open_loop(srv.url, rate=rate, connections=8, duration=duration, timeout=2, processes=processes)
    check_open(r, 8, rate, duration)
    assert 0.8 * rate * duration <= r.requests_sent <= 1.2 * rate * duration
    # every request sent reached the server and was answered
    assert r.requests == r.requests_sent == srv.requests_seen
    assert set(r.errors) <= {"unsent"}, r.errors
    assert set(r.status_counts) == {200}
    assert srv.accepted == 8  # keep-alive: one connection per slot
    assert r.processes == processes


def test_open_loop_unused_slots_are_not_starved():
    """3 requests over 8 connections: 5 slots are never used, and that is fine."""
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_open_loop(srv.url, rate=10, connections=8, duration=0.3, timeout=2)
    check_open(r, 8, 10, 0.3)
    assert r.requests == 3 == srv.requests_seen
    assert r.starved_connections == 0 and r.ok, r.to_dict()
    assert sorted(r.per_connection) == [0] * 5 + [1] * 3


@pytest.mark.parametrize("processes", [1, 2])
def test_open_loop_max_requests(processes):
    with TinyServer(keepalive(OK_CL)) as srv:
        r = run_open_loop(srv.url, rate=1000, connections=4, duration=30, timeout=2, processes=processes,
                          max_requests=25)
    assert r.requests == r.requests_sent == 25 == srv.requests_seen
    assert r.errors == {} and r.duration < 30


class StallOnce:
    """Answers at once, except that every request arriving in the window
    [first request + ``after``, + ``length``) is held until the window ends."""

    def __init__(self, after: float = 1.0, length: float = 1.0):
        self.after = after
        self.length = length
        self.window: tuple[float, float] | None = None
        self.lock = threading.Lock()
        self.stalled = 0

    def __call__(self, peer: Peer, index: int):
        while peer.read_request() is not None:
            now = time.monotonic()
            with self.lock:
                if self.window is None:
                    self.window = (now + self.after, now + self.after + self.length)
                w0, w1 = self.window
                if w0 <= now < w1:
                    self.stalled += 1
            if w0 <= now < w1:
                peer.server.stopping.wait(w1 - now)
            if not peer.send(OK_CL):
                return


def test_open_loop_shows_a_server_stall_in_the_tail():
    """The issue's stall test: 200 req/s for 3 s, the server stalls for 1 s in the middle.

    Every request intended during the stall's first half waits at least
    half a second (its clock starts at its intended time), so the tail
    shows the stall; and with 10 connections busy, requests queue: late.
    """
    rate, duration, connections = 200, 3, 10
    stall = StallOnce(after=1.0, length=1.0)
    with TinyServer(stall) as srv:
        r = run_open_loop(srv.url, rate=rate, connections=connections, duration=duration, timeout=5)
    check_open(r, connections, rate, duration)
    assert r.requests == r.requests_sent == srv.requests_seen
    assert set(r.errors) <= {"unsent"}, r.errors
    assert stall.stalled >= 1
    assert r.late_sends > 0
    # requests intended in the first 0.5 s of the stall: 100 at 200 req/s
    assert count_at_least(r, 500_000) >= 50, r.to_dict()["latency_us"]
    assert r.percentile(99) >= 500_000


def test_closed_loop_hides_the_same_stall():
    """Contrast: the closed loop stops sending during the stall, so at most one
    request per connection waits through it (coordinated omission)."""
    connections = 4
    stall = StallOnce(after=1.0, length=1.0)
    with TinyServer(stall) as srv:
        r = run_closed_loop(srv.url, connections=connections, duration=3, timeout=5)
    check_consistent(r, connections)
    assert r.errors == {}
    assert 1 <= count_at_least(r, 500_000) <= connections
    assert stall.stalled <= connections


def wait_until(cond, timeout: float) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return cond()
        time.sleep(0.01)
    return True


def silent(peer: Peer, index: int):
    peer.hold()


@pytest.mark.parametrize("target", ["dead-port", "silent-server"])
def test_open_loop_against_a_dead_server_is_counted_and_bounded(target):
    rate, duration, timeout = 100, 1.0, 0.5
    if target == "dead-port":
        s = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        s.close()  # nothing listens there now
        t0 = time.monotonic()
        r = run_open_loop(url, rate=rate, connections=4, duration=duration, timeout=timeout)
        elapsed = time.monotonic() - t0
        kinds = {"connect", "connect_timeout", "reset", "closed_early", "unsent", "timeout"}
    else:
        with TinyServer(silent) as srv:
            t0 = time.monotonic()
            r = run_open_loop(srv.url, rate=rate, connections=4, duration=duration, timeout=timeout)
            elapsed = time.monotonic() - t0
            # every request sent reaches the server (which reads and never answers)
            assert wait_until(lambda: srv.requests_seen >= r.requests_sent, 10)
            assert srv.requests_seen == r.requests_sent
        assert r.late_sends > 0  # 4 connections held: the requests after them queued
        kinds = {"timeout", "unsent"}
    # bounded: the run ends after duration + the drain's timeout, never hangs
    assert elapsed < duration + timeout + 3
    check_open(r, 4, rate, duration)
    assert r.requests == 0 and not r.ok
    assert set(r.errors) <= kinds, r.errors
    # nothing was dropped silently: every request due is an error of some kind
    assert r.error_count >= rate * duration
    assert sum(r.timeline) == 0


def test_open_loop_reconnects_when_the_server_closes():
    """Connection: close after each response, and silent closes of kept-alive connections."""

    def handler(peer, index):
        if peer.read_request() is not None:
            peer.send(CLOSE_CL if index % 2 else OK_CL)

    with TinyServer(handler) as srv:
        r = run_open_loop(srv.url, rate=100, connections=3, duration=1, timeout=2)
    check_open(r, 3, 100, 1)
    assert r.requests == r.requests_sent == srv.requests_seen
    assert set(r.errors) <= {"unsent"}, r.errors
    assert r.reconnects >= r.requests - 3


def test_open_loop_response_arriving_early_answers_the_next_request():
    """Two responses in one write: the second waits in the idle connection's buffer."""

    def handler(peer, index):
        n = 0
        while peer.read_request() is not None:
            n += 1
            if n % 2 and not peer.send(OK_CL + OK_CHUNKED):
                return

    with TinyServer(handler) as srv:
        r = run_open_loop(srv.url, rate=200, connections=1, duration=5, timeout=2, max_requests=20)
    assert r.requests == 20 == r.requests_sent and r.errors == {}
    assert r.status_counts == {200: 20} and r.reconnects == 0


@pytest.mark.parametrize("rate", [0, -5, float("inf"), float("nan")])
def test_open_loop_bad_rate(rate):
    with pytest.raises(ValueError):
        run_open_loop("http://127.0.0.1:1/", rate=rate, connections=1, duration=1)
