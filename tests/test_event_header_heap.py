"""The event listener's timer bookkeeping stays bounded by its connections (issue 14 #7).

With RequestReadTimeout's MinRate (on by default: header=20-40,MinRate=500) the listener
pushed a new header-timeout heap entry on every recv, and the stale ones stayed until their
deadline: 8 connections sending 1-byte segments took an event child from 18 MB to 145 MB
in 30 s. The lingering-close queue grew the same way (one entry per read while
lingering), and the keep-alive queue by one entry per response. Now each connection has at
most one live timer entry; an extended wait only moves its deadline.

No child process here: an event child (ThreadedChild with an EventListener) runs its listener and worker threads in this
process on a real loopback listener, so the test can read its queues while clients drive
it. Each scenario makes far more recvs (or responses) than there are connections and
asserts that the listener's timer entries never outnumber twice the connections. In each,
one of the 8 connections stays quiet: its timer is then the next due, and (before the fix)
every stale entry of the others piled up behind it instead of being dropped from the top:

* 7 connections dribbling a request head one byte per segment (MinRate extends);
* 7 connections lingering after a 400, each sending one byte per segment meanwhile;
* 7 keep-alive connections doing 40 requests each.
"""

from __future__ import annotations

import itertools
import select
import socket
import threading
import time

import pytest

from servers.config import load_config
from servers.mpm.child import ChildEnv
from servers.mpm.event import EventListener
from servers.mpm.threaded import ThreadedChild
from servers.mpm.log import ErrorLog
from servers.mpm.scoreboard import Scoreboard

from suites.wire import Conn, wait_until
from .serverutil import GET
from .wsgi_apps import app

N = 8
#: every timer queue the event listener has kept (the single heap now; four queues before)
QUEUES = ("timers", "hdr_q", "ka_q", "linger_q", "write_q")


def queued(child: EventListener) -> int:
    """Entries in all of the listener's timer queues."""
    return sum(len(getattr(child, name)) for name in QUEUES if hasattr(child, name))


class Listener:
    """An event child's listener and worker threads, in this process, on a loopback port."""

    def __init__(self, tmp_path, overrides: dict) -> None:
        cfg = load_config("event", overrides={
            "ErrorLog": str(tmp_path / "error.log"), "StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 2,
            "MaxRequestWorkers": 2, "MinSpareThreads": 1, "MaxSpareThreads": 4, "AsyncRequestWorkerFactor": 10,
            **overrides})
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(64)
        lst.setblocking(False)
        self.port = lst.getsockname()[1]
        self.sb = Scoreboard(1, cfg.ThreadsPerChild)
        env = ChildEnv(cfg=cfg, mpm="event", slot=0, generation=0, listeners=[lst], pod_fd=-1,
                       scoreboard=self.sb, app=app, log=ErrorLog(cfg.ErrorLog), started=time.time(),
                       server_port=self.port)
        self.threaded = ThreadedChild(env, EventListener)
        self.child = child = self.threaded.listener
        self.recvs = 0
        readable = child._readable

        def counting(p) -> None:  # the listener calls self._readable: count its calls
            self.recvs += 1
            readable(p)

        child._readable = counting
        self.threads = [threading.Thread(target=self.threaded._worker_thread, args=(i,), daemon=True)
                        for i in range(cfg.ThreadsPerChild)]
        self.threads.append(threading.Thread(target=self.threaded._listener_thread, daemon=True))
        for t in self.threads:
            t.start()
        self.peak = 0

    def sample(self) -> int:
        """Record and return the listener's queued timer entries now."""
        n = queued(self.child)
        self.peak = max(self.peak, n)
        return n

    def stop(self) -> None:
        self.threaded.begin_graceful()
        for t in self.threads:
            t.join(10)
        assert not any(t.is_alive() for t in self.threads), "the listener or a worker did not stop"
        self.sb.close()


@pytest.fixture
def listener(tmp_path):
    made: list[Listener] = []

    def _make(overrides: dict | None = None) -> Listener:
        made.append(Listener(tmp_path, overrides or {}))
        return made[-1]

    yield _make
    for lst in made:
        lst.stop()


def _open(port: int, first: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(N):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(first)
        socks.append(s)
    return socks


def _dribble(lst: Listener, socks: list[socket.socket], rounds: int) -> None:
    """One byte per connection per round, each round once the listener has read the last
    one (so every byte is its own recv), sampling the queues as it goes; bounded in time."""
    end = time.monotonic() + 20
    for _ in range(rounds):
        before = lst.recvs
        for s in socks:
            s.send(b"a")
        while lst.recvs < before + len(socks) and time.monotonic() < end:
            select.select([], [], [], 0.001)  # a short pause for the listener thread
        lst.sample()


def _close(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def test_header_minrate_one_byte_segments(listener):
    """MinRate on (the default header=20-40,MinRate=500): one entry per connection, not per recv."""
    lst = listener()
    socks = _open(lst.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ")
    try:
        _dribble(lst, socks[1:], 60)  # socks[0] sent its partial head and stays quiet
        assert lst.recvs >= 40 * (N - 1), f"only {lst.recvs} recvs: the scenario did not dribble"
        assert lst.peak <= 2 * N, f"{lst.peak} timer entries for {N} connections after {lst.recvs} recvs"
    finally:
        _close(socks)


def test_lingering_close_reads(listener):
    """A 400 answered by the listener, then one byte per segment while it lingers."""
    lst = listener()
    socks = _open(lst.port, b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400, then a lingering close
    try:
        for s in socks:
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 400")
        wait_until(lambda: lst.child.counts[2] == N, 5, what="every connection lingering")  # _LINGER
        lst.recvs = 0
        _dribble(lst, socks[1:], 60)  # socks[0] lingers quietly
        assert lst.recvs >= 40 * (N - 1), f"only {lst.recvs} recvs while lingering"
        assert lst.peak <= 2 * N, f"{lst.peak} timer entries for {N} lingering connections after {lst.recvs} reads"
    finally:
        _close(socks)


def test_keepalive_responses(listener):
    """40 requests on each of 8 keep-alive connections: one entry per connection, not per response."""
    lst = listener({"KeepAliveTimeout": 30})
    conns = [Conn(lst.port) for _ in range(N)]
    try:
        conns[0].send(GET)  # then it waits quietly in keep-alive
        assert conns[0].read_response().status == 200
        for _, c in itertools.product(range(40), conns[1:]):
            c.send(GET)
            assert c.read_response().status == 200
            lst.sample()
        wait_until(lambda: lst.child.counts[1] == N, 5, what="every connection parked in keep-alive")
        assert lst.sample() <= 2 * N
        assert lst.peak <= 2 * N, f"{lst.peak} timer entries for {N} keep-alive connections after {40 * (N - 1)} responses"
    finally:
        for c in conns:
            c.close()


def test_extended_deadline_is_still_kept(listener):
    """One entry per connection still times out right: a connection whose MinRate bytes moved
    its deadline (header=1-3,MinRate=500: 1000 bytes buy 2 s) gets its 408 after a quiet one
    opened with it, once its own entry came due, was pushed again for the rest and expired."""
    lst = listener({"RequestReadTimeout": "header=1-3,MinRate=500"})
    socks = _open(lst.port, b"GET / HTTP/1.1\r\nHost: a\r\n")
    quiet, extended = socks[:2]
    extended.sendall(b"X-Pad: " + b"a" * 1000)
    for s in (quiet, extended):
        s.settimeout(10)
    try:
        assert quiet.recv(4096).startswith(b"HTTP/1.1 408")
        extended.setblocking(False)
        with pytest.raises(BlockingIOError):
            extended.recv(4096)  # its deadline is later: no answer yet
        extended.settimeout(10)
        assert extended.recv(4096).startswith(b"HTTP/1.1 408")
    finally:
        _close(socks)
