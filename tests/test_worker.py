"""The worker MPM, live on loopback: threads, reserve-before-accept, keep-alive pinning, quiescing.

Every wait polls a condition with a deadline (suites.wire.wait_until); nothing
asserts on wall-clock durations. MaintenanceInterval is 0.1 s (conftest.FAST).
"""

from __future__ import annotations

import threading

import pytest

from servers.config import load_config
from servers.mpm import worker

from . import wsgi_apps
from suites.wire import Conn, request, wait_until
from .serverutil import children, pid_of, process, request_in_background, row
from .serverutil import status_or_none as _status

APP = "tests.wsgi_apps:app"
#: this module's own app (below): wsgi_apps.app plus /flags and /exit
OWN_APP = "tests.test_worker:app"
from .serverutil import GET, GET_PID  # noqa: E402
GET_PID_CLOSE = b"GET /pid HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def app(environ, start_response):
    """tests.wsgi_apps.app plus /flags (the environ's wsgi.multi* flags) and /exit (SystemExit)."""
    path = environ["PATH_INFO"]
    if path == "/flags":
        body = f"multithread={environ['wsgi.multithread']} multiprocess={environ['wsgi.multiprocess']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/exit":
        raise SystemExit(3)  # not an Exception: escapes serve_connection into the worker thread
    return wsgi_apps.app(environ, start_response)


# -- helpers ----------------------------------------------------------------------------


def pinned(port: int) -> tuple[Conn, int]:
    """A keep-alive connection that got one answer and now idles (holding a thread in K)."""
    c = Conn(port)
    return c, pid_of(port, c)


def test_connection_queue_reserves_an_idle_worker_before_anything_is_accepted():
    published: list[int] = []
    q = worker.ConnectionQueue(2, published.append)
    reserved = threading.Event()
    t = threading.Thread(target=lambda: q.reserve_idler() and reserved.set(), daemon=True)
    t.start()
    assert not reserved.wait(0.2)  # no idle worker, no reservation: the listener would not accept
    popped: list = []
    w = threading.Thread(target=lambda: popped.append(q.pop()), daemon=True)
    w.start()
    assert reserved.wait(5)  # the worker announced itself idle, the listener reserved it
    q.push("conn", "addr")
    w.join(5)
    assert popped == [("conn", "addr")] and published == [1]
    q.done()
    assert published == [1, 0]
    # terminate: what was queued is still served, then pop() says "no more"
    drained: list = []

    def drain() -> None:
        while True:
            item = q.pop()
            drained.append(item)
            if item is None:
                return

    d = threading.Thread(target=drain, daemon=True)
    d.start()
    wait_until(lambda: q.idlers >= 1, 5, what="an idle worker")
    assert q.reserve_idler()
    q.push("c2", "a2")
    q.terminate()
    d.join(5)
    assert drained == [("c2", "a2"), None]
    assert q.reserve_idler() is False


# -- HTTP through worker ----------------------------------------------------------------


def test_get_keep_alive_pipelining_and_error_statuses(launch):
    h = launch("worker", {"StartServers": 1, "ThreadsPerChild": 2, "MinSpareThreads": 1, "MaxSpareThreads": 4,
                          "MaxRequestWorkers": 4}, app=APP)
    with Conn(h.port) as c:
        c.send(GET)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"Hello, World!")
        first = pid_of(h.port, c)
        assert pid_of(h.port, c) == first  # the same connection, kept alive
        # three pipelined requests in one segment, answered in order
        c.send(GET_PID + b"GET /bytes/5 HTTP/1.1\r\nHost: a\r\n\r\n" + b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        answers = [c.read_response() for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 404]
        assert answers[0].body == str(first).encode() and answers[1].body == b"xxxxx"
        # the 404 kept the connection; a malformed request gets 400 and a close
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
        assert c.read_response().status == 400
        assert c.closed_by_peer()
    assert request(h.port, b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n").status == 500


def test_threads_of_one_child_serve_concurrently(launch):
    """StartServers 1 x ThreadsPerChild 4: four slow requests run at once, seen as WWWW in one process."""
    tpc = 4
    h = launch("worker", {"StartServers": 1, "ThreadsPerChild": tpc, "MinSpareThreads": 1, "MaxSpareThreads": 8,
                          "MaxRequestWorkers": 8, "KeepAliveTimeout": 30}, app=APP)
    conns = [Conn(h.port) for _ in range(tpc)]
    try:
        pids = {pid_of(h.port, c) for c in conns}
        assert len(pids) == 1  # the only child took all four: it had four idle threads
        busy = pids.pop()
        # all four threads now idle in keep-alive, so maintenance forks a second child,
        # which is the one that answers /server-status below
        wait_until(lambda: len(children(h)) == 2 and _status(h), 10, what="a second child")
        for c in conns:
            c.send(b"GET /sleep?ms=500 HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_until(lambda: row(h.status(), busy, tpc) == "W" * tpc, 5, what="four W in the busy child")
        for c in conns:
            r = c.read_response()
            assert (r.status, r.body) == (200, b"slept 500 ms\n")
    finally:
        for c in conns:
            c.close()


def test_busy_child_leaves_new_connections_in_the_backlog_for_another(launch):
    """Reserve-before-accept: a child whose threads are all pinned never accepts, so it never queues."""
    tpc = 2
    h = launch("worker", {"StartServers": 2, "ThreadsPerChild": tpc, "MinSpareThreads": 1, "MaxSpareThreads": 4,
                          "MaxRequestWorkers": 4, "KeepAliveTimeout": 30}, app=APP)
    wait_until(lambda: len(children(h)) == 2, 5, what="two children")
    held: dict[int, list[Conn]] = {}
    try:
        while not any(len(v) == tpc for v in held.values()):  # at most 3 connections (4 threads)
            c, pid = pinned(h.port)
            held.setdefault(pid, []).append(c)
        busy = next(p for p, v in held.items() if len(v) == tpc)
        for p in [p for p in held if p != busy]:
            for c in held.pop(p):
                c.close()
        st = wait_until(lambda: (lambda s: s if s and row(s, busy, tpc) == "KK" else None)(_status(h)), 5,
                        what="both threads of the busy child in K")
        other = next(p["pid"] for p in st.processes_detail if p["pid"] != busy)
        # Each new client is answered at once by the other child. Had the busy child accepted
        # and queued any of them, that client would wait for a pinned thread (30 s) and time out.
        for _ in range(6):
            assert int(request(h.port, GET_PID_CLOSE, timeout=5).body) == other
        st = h.status()
        assert row(st, busy, tpc) == "KK"
        assert process(st, busy)["connections"] == tpc  # nothing accepted beyond its pinned two
        assert set(children(h)) == {busy, other}
    finally:
        for v in held.values():
            for c in v:
                c.close()


def test_idle_keep_alive_connection_pins_a_thread(launch):
    """worker's keep-alive problem: an idle persistent connection holds a thread (K) for KeepAliveTimeout."""
    h = launch("worker", {"StartServers": 1, "ThreadsPerChild": 2, "ServerLimit": 1, "MaxRequestWorkers": 2,
                          "MinSpareThreads": 1, "MaxSpareThreads": 4, "KeepAliveTimeout": 30}, app=APP)
    a1, pid = pinned(h.port)
    a2 = None
    b = None
    try:
        # the status request runs on the second thread (W) while the first idles in K
        st = wait_until(lambda: (lambda s: s if s and sorted(row(s, pid, 2) or "") == ["K", "W"] else None)(
            _status(h)), 5, what="one thread in K")
        assert process(st, pid)["connections"] == 2
        a2, _ = pinned(h.port)
        # both threads pinned by idle clients: a new client is not answered ...
        b = Conn(h.port)
        b.send(GET)
        with pytest.raises(TimeoutError):
            b.read_response(timeout=0.3)
        # ... until one of them leaves; then at once
        a1.close()
        assert b.read_response(timeout=5).status == 200
        wait_until(lambda: "AH00286" in h.log_text(), 5, what="the MaxRequestWorkers line")
        assert "server reached MaxRequestWorkers setting" in h.log_text()
    finally:
        for c in (a1, a2, b):
            if c is not None:
                c.close()


# -- errors, quiescing (the lifecycle shared with prefork and event: tests/test_lifecycle.py) --


def test_thread_survives_app_errors_and_sees_multithread(launch):
    """One child with ONE thread: after an app exception (500) and an escaping SystemExit it still serves."""
    h = launch("worker", {"StartServers": 1, "ThreadsPerChild": 1, "ServerLimit": 1, "MaxRequestWorkers": 1,
                          "MinSpareThreads": 1, "MaxSpareThreads": 3}, app=OWN_APP)
    pid = pid_of(h.port)
    assert request(h.port, b"GET /flags HTTP/1.1\r\nHost: a\r\n\r\n").body == b"multithread=True multiprocess=True"
    assert request(h.port, b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n").status == 500
    assert pid_of(h.port) == pid
    with pytest.raises(ConnectionError):  # the connection is dropped, the thread is not
        request(h.port, b"GET /exit HTTP/1.1\r\nHost: a\r\n\r\n")
    assert pid_of(h.port) == pid  # served by the same (only) thread of the same child
    log = h.log_text()
    assert "deliberate application error" in log and "Traceback" in log
    assert "worker thread 0: uncaught SystemExit(3)" in log


def test_graceful_restart_quiesces_the_old_child_and_finishes_its_request(launch):
    tpc = 2
    h = launch("worker", {"StartServers": 1, "ThreadsPerChild": tpc, "MinSpareThreads": 1, "MaxSpareThreads": 4,
                          "MaxRequestWorkers": 8}, app=APP)
    old = pid_of(h.port)
    t, result = request_in_background(h.port, b"GET /sleep?ms=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        # the status request takes the child's other thread: W on both
        wait_until(lambda: (lambda s: s and row(s, old, tpc) == "WW")(_status(h)), 5, what="the slow request")
        h.graceful()
        # The old child stops accepting and says so (quiescing), still holding its one in-flight
        # connection, whose thread keeps showing W (threads write G themselves as they exit).
        def quiescing(s):
            p = process(s, old) if s else None
            return s if p and p["stopping"] and p["connections"] == 1 else None

        st = wait_until(lambda: quiescing(_status(h)), 5, what="the old child quiescing with one connection")
        assert all(p["generation"] == st.generation for p in st.processes_detail if p["pid"] != old)
        assert "W" in row(st, old, tpc)
    finally:
        t.join(10)
    assert "err" not in result and result["r"].status == 200
    assert result["r"].header("Connection") == "close"  # stopping: no keep-alive past this request
    wait_until(lambda: old not in children(h), 5, what="the old child to exit")


