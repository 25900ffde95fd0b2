"""Graceful operations under a constant request rate: nothing is lost (issue 8).

The built-in open-loop driver (harness.drivers.loadgen.run_open_loop) sends a fixed rate
over keep-alive connections and counts every failure by kind, so these tests assert on
counts, never on timings:

* **USR1 graceful restart** (httpd's ``apachectl -k graceful``): old children finish what
  they are serving and exit, new ones take over: every request sent is answered 200, with
  no error of any kind and no unannounced close (``closed_idle``: a kept-alive connection
  dropped before the answer, the race of RFC 9112 §9.3.1) — twice in a row;
* **WINCH graceful stop** (``apachectl -k graceful-stop``): every request that reached the
  server is answered 200; the only failures allowed are connections *refused* once the
  listening sockets are closed (``connect``) and requests that fell due when no connection
  could be opened (``unsent``). No reset, no cut-off response, no timeout: a connection
  that was accepted is served (httpd's children close their listeners when they begin a
  graceful stop, and so do ours, before their last response ends its connection).

benchmarks/reliability.py runs 10 restarts under load per MPM and reports the failures.
"""

from __future__ import annotations

import os
import threading

import pytest

from harness.drivers.loadgen import run_open_loop

from suites.wire import wait_until
from .serverutil import alive, children, status_or_none

POOLS = {
    "prefork": {"StartServers": 4, "MinSpareServers": 2, "MaxSpareServers": 6},
    "worker": {"StartServers": 2, "ThreadsPerChild": 8, "MinSpareThreads": 4, "MaxSpareThreads": 32},
    "event": {"StartServers": 2, "ThreadsPerChild": 8, "MinSpareThreads": 4, "MaxSpareThreads": 32},
}
RATE = 200  # requests/s: well under capacity, so every failure is the operation's fault
CONNECTIONS = 8


class Load(threading.Thread):
    """run_open_loop in a thread (bounded by its duration and timeout); result in ``result``."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds = url, seconds
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = run_open_loop(self.url + "/", rate=RATE, connections=CONNECTIONS,
                                        duration=self.seconds, timeout=5.0)
        except BaseException as exc:  # reported by the test
            self.error = exc


def accesses(h) -> int:
    st = status_or_none(h)
    return st.total_accesses if st else 0


def wait_for_traffic(h, n: int = 50) -> None:
    """Until the server has answered ``n`` more requests (the load is flowing)."""
    start = accesses(h)
    wait_until(lambda: accesses(h) >= start + n, 10, what="the load to reach the server")


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_graceful_restarts_under_constant_rate_lose_nothing(launch, mpm):
    h = launch(mpm, POOLS[mpm])
    load = Load(h.url, 6.0)
    load.start()
    overlapped = []
    try:
        wait_for_traffic(h)
        for _ in range(2):
            old = set(children(h))
            gen = h.status().generation
            h.graceful()
            wait_until(lambda: not (set(children(h)) & old) and (status_or_none(h) or h.status()).generation == gen + 1,
                       15, what="every old child replaced by the next generation")
            overlapped.append(load.is_alive())
            wait_for_traffic(h)  # the new generation serves the load
    finally:
        load.join(30)
    assert load.error is None, load.error
    r = load.result
    assert all(overlapped), "the restarts must happen while the load runs"
    assert r.errors == {}, r.errors
    assert r.closed_idle == 0, "a kept-alive connection was closed without notice"
    assert r.requests == r.requests_sent and r.status_counts == {200: r.requests}, r.status_counts


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_graceful_stop_under_constant_rate_serves_every_accepted_request(launch, mpm):
    h = launch(mpm, POOLS[mpm])
    tree = h.pids()
    load = Load(h.url, 3.0)
    load.start()
    try:
        wait_for_traffic(h)
        h.graceful_stop()
        assert h.wait(20) == 0
    finally:
        load.join(30)
    assert load.error is None, load.error
    r = load.result
    # refused after the stop ("connect": the loopback SYN was answered with RST), never an
    # accepted connection reset or cut off ("reset", "closed_early", "timeout")
    assert set(r.errors) <= {"connect", "unsent"}, r.errors
    assert r.closed_idle == 0, "a kept-alive connection was closed without notice"
    assert r.status_counts == {200: r.requests} and r.requests > 0
    assert not os.path.exists(h.pidfile)
    wait_until(lambda: not any(alive(p) for p in tree), 10, what="every process of the server to exit")


#: two units in all, so most of the load's connections wait in the kernel's listen queue
AT_CAPACITY = {
    "prefork": {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 2, "MaxRequestWorkers": 2,
                "ServerLimit": 2},
    "worker": {"StartServers": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2, "ServerLimit": 1,
               "MinSpareThreads": 1, "MaxSpareThreads": 2},
    "event": {"StartServers": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2, "ServerLimit": 1,
              "MinSpareThreads": 1, "MaxSpareThreads": 2, "AsyncRequestWorkerFactor": 0.5},
}


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_graceful_stop_at_capacity_serves_the_listen_queue(launch, mpm):
    """Eight keep-alive connections on two units: six wait in the listen queue, each with a
    request sent. A graceful stop must not reset them (httpd does, when its children close
    the listeners): the stopping children take the queue and answer it, with Connection: close."""
    h = launch(mpm, {**AT_CAPACITY[mpm], "KeepAliveTimeout": 30, "MaxKeepAliveRequests": 0})
    load = Load(h.url, 2.5)
    load.start()
    try:
        # (not through /server-status: at capacity it would wait in the queue too)
        wait_until(lambda: client_connections(h.port) >= CONNECTIONS, 10, what="every connection of the load")
        h.graceful_stop()
        assert h.wait(20) == 0
    finally:
        load.join(30)
    assert load.error is None, load.error
    r = load.result
    assert set(r.errors) <= {"connect", "unsent"}, r.errors
    assert r.closed_idle == 0
    assert r.status_counts == {200: r.requests}
    assert r.starved_connections == 0, "every connection that waited in the queue must be answered"


def client_connections(port: int) -> int:
    """This process's established TCP connections to ``port`` (the load's, queued or served)."""
    import psutil

    return sum(1 for c in psutil.Process().net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)
