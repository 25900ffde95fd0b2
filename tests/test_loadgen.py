"""Tests of the built-in closed-loop driver against tiny raw-socket servers.

Each server runs in threads of this process on 127.0.0.1, port 0.  Nothing
here asserts on timing: only on counts, which the driver must get exactly.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from harness.drivers.loadgen import HdrHistogram, LoadResult, parse_loopback_url, run_closed_loop

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
        "https://127.0.0.1/",
        "http:///nohost",
    ],
)
def test_non_loopback_refused(url):
    with pytest.raises(ValueError):
        run_closed_loop(url, connections=1, duration=0.1)


def test_loopback_forms_accepted():
    assert parse_loopback_url("http://127.0.0.2:81/a")[1] == ("127.0.0.2", 81)
    assert parse_loopback_url("http://localhost/")[1] == ("127.0.0.1", 80)
    fam, addr, host, target = parse_loopback_url("http://[::1]:8080/x?q=1")
    assert fam == socket.AF_INET6 and addr[:2] == ("::1", 8080)
    assert host == "[::1]:8080" and target == "/x?q=1"


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
