"""Two httpd defaults our MPMs now share, live on loopback on every MPM (issue 14).

* ``LimitRequestBody`` defaults to 1 GiB (httpd >= 2.4.54): a Content-Length of 1 GiB + 1
  is answered 413 at once, with a close, without configuring anything. Before, the default
  was 0 (unlimited) and the server waited for the body.
* ``AcceptFilter http data`` (httpd's Linux default, TCP_DEFER_ACCEPT): a client that
  connects and sends nothing is not accepted, so it holds no prefork child and no worker
  thread. With one unit of service and one silent connection open, another client is
  answered at once; with ``AcceptFilter http none`` the silent connection is accepted and
  holds the only unit until the header timeout (the control, on the MPMs that pin a unit
  while reading a head: prefork and worker; event reads heads in its listener).

Waits are conditions with deadlines; nothing asserts on a duration of the server's work.
"""

from __future__ import annotations

import socket

import pytest

from suites.wire import Conn, request
from .serverutil import ONE_UNIT

MPMS = ["prefork", "worker", "event"]
#: the header stage a silent accepted connection is held for (long next to ANSWER_WITHIN)
HEADER_STAGE = {"RequestReadTimeout": "header=8 body=8", "Timeout": 8}
#: a request that is not held up is answered well within this; a held one waits HEADER_STAGE
ANSWER_WITHIN = 3.0


@pytest.mark.parametrize("mpm", MPMS)
def test_default_limit_request_body_is_one_gib(launch, mpm):
    h = launch(mpm, {})
    with Conn(h.port, timeout=5) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1073741825\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 413
        assert r.header("Connection") == "close"
    with Conn(h.port, timeout=5) as c:  # exactly at the limit is allowed: the app answers (/ takes no POST: 405)
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1073741824\r\n\r\nabc")
        assert c.read_response(timeout=5).status == 405


def _silent(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.parametrize("mpm", MPMS)
def test_silent_connection_holds_no_unit_by_default(launch, mpm):
    """AcceptFilter http data (default): one unit, one silent connection, another client served at once."""
    h = launch(mpm, {**ONE_UNIT[mpm], **HEADER_STAGE})
    assert request(h.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200  # the unit is up
    silent = [_silent(h.port) for _ in range(3)]
    try:
        r = request(h.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=ANSWER_WITHIN)
        assert r.status == 200
    finally:
        for s in silent:
            s.close()


@pytest.mark.parametrize("mpm", ["prefork", "worker"])
def test_silent_connection_holds_the_unit_without_the_filter(launch, mpm):
    """The control: AcceptFilter http none, the silent connection is accepted and holds the only unit."""
    h = launch(mpm, {**ONE_UNIT[mpm], **HEADER_STAGE, "AcceptFilter": "http none"})
    assert request(h.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200
    silent = _silent(h.port)
    try:
        with pytest.raises((TimeoutError, OSError)):
            request(h.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=ANSWER_WITHIN)
    finally:
        silent.close()
