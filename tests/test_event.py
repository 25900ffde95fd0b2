"""The event MPM over real loopback sockets: what tells it apart from worker and prefork.

Waits poll conditions with deadlines; nothing asserts wall-clock durations. The lifecycle it
shares with prefork and worker (signals, restarts, spare maintenance) is in tests/test_lifecycle.py.
"""

from __future__ import annotations

import json
import socket
import threading

from . import wsgi_apps
from suites.wire import Conn, request, wait_until
from .serverutil import GET, status_or_none

APP = "tests.test_event:app"
#: one child with two worker threads; a generous AsyncRequestWorkerFactor so many idle connections fit
ONE_CHILD = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2,
             "MinSpareThreads": 1, "MaxSpareThreads": 4, "AsyncRequestWorkerFactor": 10}


def app(environ, start_response):
    """tests.wsgi_apps.app plus ``/whole/N``: N bytes returned in one piece.

    Write completion takes over what is left once the application's last write is done (as
    httpd's event does): a body in one piece is the plain case tested here. (A body of many
    pieces waits in the worker for each previous tail, unless it is a ``wsgi.file_wrapper``
    the listener can read: tests/test_file_wrapper.py.)
    """
    path = environ["PATH_INFO"]
    if path.startswith("/whole/"):
        n = min(int(path.rsplit("/", 1)[1]), 64 * 1024 * 1024)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
        return [b"x" * n]
    return wsgi_apps.app(environ, start_response)


def test_get_keepalive_pipelining_and_errors(launch):
    h = launch("event", ONE_CHILD, app=APP)
    with Conn(h.port) as c:
        for _ in range(3):
            c.send(GET)
            assert c.read_response().body == b"Hello, World!"
        c.send(b"GET /echo?a=1 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
               b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert json.loads(c.read_response().body)["target"] == "/echo?a=1"
        assert json.loads(c.read_response().body)["body"] == "abc"
        assert c.read_response().body == b"Hello, World!"
    with Conn(h.port) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host
        r = c.read_response()
        assert r.status == 400 and r.header("Connection") == "close"
        assert c.closed_by_peer()
    with Conn(h.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        assert json.loads(c.read_response().body)["body"] == "abc"


def test_idle_keepalive_connections_hold_no_thread(launch):
    """Ten idle keep-alive clients on a child with two threads: a new client is still served."""
    h = launch("event", {**ONE_CHILD, "KeepAliveTimeout": 30}, app=APP)
    idle = []
    try:
        for _ in range(10):
            c = Conn(h.port)
            c.send(GET)
            assert c.read_response().status == 200
            idle.append(c)
        st = wait_until(lambda: (lambda s: s if s and s.conns_async_keep_alive >= 10 else None)(status_or_none(h)),
                        5, what="ten parked keep-alive connections")
        assert "K" not in st.scoreboard  # parked in the listener, not in a thread
        assert request(h.port, GET).status == 200
        for c in idle:  # and every parked connection still works
            c.send(GET)
            assert c.read_response().status == 200
    finally:
        for c in idle:
            c.close()


def test_slowloris_head_holds_no_worker(launch):
    """Beyond httpd: heads are read by the listener, so a dribbling client does not take the only thread."""
    h = launch("event", {**ONE_CHILD, "ThreadsPerChild": 1, "MaxRequestWorkers": 1}, app=APP)
    slow = [Conn(h.port) for _ in range(3)]
    try:
        for c in slow:
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")  # and never the end of the head
        for _ in range(3):
            assert request(h.port, GET, timeout=5).status == 200
        for c in slow:  # finishing the head later still works
            c.send(b"1\r\n\r\n")
            assert c.read_response().status == 200
    finally:
        for c in slow:
            c.close()


def test_request_read_timeout_header_stage(launch):
    """mod_reqtimeout semantics: a partial head past the header timeout gets 408; a silent client is closed.

    AcceptFilter http none: with the default (``data``, TCP_DEFER_ACCEPT) the kernel would keep
    the silent client from the listener altogether, and its header stage is what is tested here.
    """
    h = launch("event", {**ONE_CHILD, "RequestReadTimeout": "header=1", "AcceptFilter": "http none"}, app=APP)
    # both clients at once, so their header stages run out together
    with Conn(h.port) as c, Conn(h.port) as silent:
        c.send(b"GET / HTTP/1.1\r\nHost:")
        r = c.read_response(timeout=10)
        assert r.status == 408
        assert c.closed_by_peer()
        assert silent.closed_by_peer(timeout=10)  # never sent a byte: closed without an answer


def test_keepalive_closed_when_all_workers_busy(launch):
    """httpd event: with every worker busy, parked keep-alive connections are shut down."""
    h = launch("event", {**ONE_CHILD, "ThreadsPerChild": 1, "MaxRequestWorkers": 1, "KeepAliveTimeout": 30},
               app=APP)
    with Conn(h.port) as idle:
        idle.send(GET)
        assert idle.read_response().status == 200
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            "r", request(h.port, b"GET /sleep?ms=2000 HTTP/1.1\r\nHost: a\r\n\r\n", timeout=10)))
        t.start()
        try:
            assert idle.closed_by_peer(timeout=5)
        finally:
            t.join(10)
        assert result["r"].status == 200


def test_threads_see_multithread_and_keep_serving_after_app_error(launch):
    h = launch("event", ONE_CHILD, app=APP)
    assert request(h.port, b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n").status == 500
    assert request(h.port, GET).status == 200
    st = status_or_none(h)
    assert st is not None and st.server_mpm == "event"


def test_write_completion_frees_the_worker(launch):
    """httpd's write completion: a response the client reads slowly is finished by the listener.

    One worker thread; client A asks for 16 MiB and does not read. The worker hands the
    unsent tail to the listener (ConnsAsyncWriting 1), so client B is served meanwhile;
    then A reads all of it intact.
    """
    # KeepAliveTimeout 30: the keep-alive wait starts when the listener hands the last byte to the
    # kernel, and on a loaded machine A may take longer than the suite's 2 s to drain the socket
    # buffers and send its next request (the server then closes, rightly, and the test would flake)
    h = launch("event", {**ONE_CHILD, "ThreadsPerChild": 1, "MaxRequestWorkers": 1, "AsyncRequestWorkerFactor": 4,
                         "KeepAliveTimeout": 30}, app=APP)
    size = 16 * 1024 * 1024  # more than the loopback socket buffers hold
    with Conn(h.port, timeout=20) as a:
        # a modest receive buffer (not a tiny one: TCP would crawl through silly-window avoidance)
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        a.send(b"GET /whole/%d HTTP/1.1\r\nHost: a\r\n\r\n" % size)
        st = wait_until(lambda: (lambda s: s if s and s.conns_async_writing >= 1 else None)(status_or_none(h)),
                        10, what="the unsent tail parked in the listener")
        assert "K" not in st.scoreboard
        assert request(h.port, GET).status == 200  # the only worker is free
        r = a.read_response(timeout=30)
        assert r.status == 200 and len(r.body) == size and r.body == b"x" * size
        a.send(GET)  # and the connection is still good for keep-alive
        assert a.read_response().status == 200
