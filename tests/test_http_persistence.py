"""Unit tests for servers.http.persistence.KeepAlivePolicy.decide (httpd's ap_set_keepalive).

RFC 9112 §9.3: HTTP/1.1 persists by default, HTTP/1.0 only with the keep-alive option,
``Connection: close`` ends it. The MaxKeepAliveRequests countdown is the one documented
in the module docstring and docs/mpm-model.md §1 (verified against httpd 2.4).
"""

from __future__ import annotations

import pytest

from servers.http.parser import RequestReader
from servers.http.persistence import DROPS_CONNECTION, KeepAlivePolicy
from servers.http.request import Request

CLOSE = b"Connection: close\r\n"


def parse(data: bytes) -> Request:
    reader = RequestReader()
    reader.feed(data)
    req = reader.next_event()
    assert isinstance(req, Request)
    return req


GET_11 = parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
GET_11_KA = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
GET_11_CLOSE = parse(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
GET_10 = parse(b"GET / HTTP/1.0\r\n\r\n")
GET_10_KA = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
GET_10_KA_CLOSE = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
POST_10_TE = parse(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")


def decide(req, status=200, policy=None, *, length_known=True, keepalives=0, stopping=False, **kw):
    return (policy or KeepAlivePolicy()).decide(
        req, status, length_known=length_known, keepalives=keepalives, stopping=stopping, **kw
    )


@pytest.mark.parametrize(
    "req,kwargs,expected",
    [
        # RFC 9112 §9.3: HTTP/1.1 is persistent by default; no header needed
        pytest.param(GET_11, {}, (True, b""), id="1.1-default-persists-9112-9.3"),
        # HTTP/1.1 can use chunked, so an unknown length does not close (httpd sets r->chunked)
        pytest.param(GET_11, {"length_known": False}, (True, b""), id="1.1-unknown-length-chunked"),
        # RFC 9112 §9.6: Connection: close from the client -> close after this response
        pytest.param(GET_11_CLOSE, {}, (False, CLOSE), id="1.1-Connection-close-9112-9.6"),
        # RFC 9112 §9.3: HTTP/1.0 persists only with the keep-alive option
        pytest.param(GET_10, {}, (False, CLOSE), id="1.0-without-keep-alive-9112-9.3"),
        pytest.param(GET_10_KA, {},
                     (True, b"Keep-Alive: timeout=5, max=100\r\nConnection: Keep-Alive\r\n"),
                     id="1.0-keep-alive-token-9112-C.2.2"),
        pytest.param(GET_10_KA_CLOSE, {}, (False, CLOSE), id="1.0-keep-alive-and-close"),
        # a 1.0 client cannot receive chunked: an unknown length is close-delimited
        pytest.param(GET_10_KA, {"length_known": False}, (False, CLOSE), id="1.0-length-unknown-9112-6.3"),
        # httpd answers a keep-alive token from a 1.1 client too (docs/mpm-model.md §1)
        pytest.param(GET_11_KA, {},
                     (True, b"Keep-Alive: timeout=5, max=100\r\nConnection: Keep-Alive\r\n"),
                     id="1.1-keep-alive-token"),
        # the MPM is stopping (graceful restart): leave keep-alive at the request boundary
        pytest.param(GET_11, {"stopping": True}, (False, CLOSE), id="mpm-stopping"),
        pytest.param(GET_10_KA, {"stopping": True}, (False, CLOSE), id="mpm-stopping-1.0-ka"),
        # the application sent Connection: close
        pytest.param(GET_11, {"app_close": True}, (False, CLOSE), id="app-close"),
        # an Expect: 100-continue body never read (httpd: r->expecting_100)
        pytest.param(GET_11, {"body_unread": True}, (False, CLOSE), id="100-continue-body-unread"),
        # RFC 9112 §6.1: TE in an HTTP/1.0 request -> close after responding
        pytest.param(POST_10_TE, {}, (False, CLOSE), id="TE-on-1.0-must-close-9112-6.1"),
    ],
)
def test_decide(req, kwargs, expected):
    assert decide(req, **kwargs) == expected


@pytest.mark.parametrize("status", [400, 408, 411, 413, 414, 500, 501, 503])
def test_statuses_httpd_drops_the_connection_on(status):
    # httpd's ap_status_drops_connection()
    assert status in DROPS_CONNECTION
    assert decide(GET_11, status) == (False, CLOSE)
    assert decide(GET_10_KA, status) == (False, CLOSE)


@pytest.mark.parametrize("status", [200, 201, 204, 206, 301, 302, 304, 401, 403, 404, 405, 409, 410, 412, 416])
def test_ordinary_statuses_keep_the_connection(status):
    assert decide(GET_11, status) == (True, b"")


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(KeepAlivePolicy(enabled=False), id="KeepAlive-Off"),
        pytest.param(KeepAlivePolicy(timeout=0), id="KeepAliveTimeout-0"),
    ],
)
def test_keepalive_disabled_by_configuration(policy):
    assert decide(GET_11, policy=policy) == (False, CLOSE)
    assert decide(GET_10_KA, policy=policy) == (False, CLOSE)


def _connection(req: Request, policy: KeepAlivePolicy, limit: int = 1000) -> list[bytes]:
    """Serve responses on one connection until decide() says close; return each one's lines."""
    lines = []
    keepalives = 0
    while len(lines) < limit:
        keep, conn = decide(req, policy=policy, keepalives=keepalives)
        lines.append(conn)
        if not keep:
            break
        keepalives += 1  # httpd increments c->keepalives each time it grants one
    return lines


def test_max_keepalive_requests_countdown_with_token():
    # persistence.py docstring / docs/mpm-model.md §1: MaxKeepAliveRequests 3 -> 4 responses,
    # Keep-Alive max=3, 2, 1, then Connection: close.
    policy = KeepAlivePolicy(timeout=5, max_requests=3)
    assert _connection(GET_10_KA, policy) == [
        b"Keep-Alive: timeout=5, max=3\r\nConnection: Keep-Alive\r\n",
        b"Keep-Alive: timeout=5, max=2\r\nConnection: Keep-Alive\r\n",
        b"Keep-Alive: timeout=5, max=1\r\nConnection: Keep-Alive\r\n",
        CLOSE,
    ]
    assert _connection(GET_11_KA, policy) == _connection(GET_10_KA, policy)


def test_max_keepalive_requests_countdown_plain_http11():
    # A plain HTTP/1.1 request gets neither header on the first three, then close on the fourth.
    assert _connection(GET_11, KeepAlivePolicy(max_requests=3)) == [b"", b"", b"", CLOSE]


def test_default_max_keepalive_requests_closes_after_101_responses():
    lines = _connection(GET_11, KeepAlivePolicy())
    assert len(lines) == 101
    assert lines[-1] == CLOSE and set(lines[:-1]) == {b""}


def test_unlimited_keepalive_requests_sends_timeout_only():
    # MaxKeepAliveRequests 0 = unlimited: httpd sends "Keep-Alive: timeout=N" without max
    policy = KeepAlivePolicy(timeout=7, max_requests=0)
    for keepalives in (0, 1, 100, 10_000):
        assert decide(GET_10_KA, policy=policy, keepalives=keepalives) == (
            True, b"Keep-Alive: timeout=7\r\nConnection: Keep-Alive\r\n")
        assert decide(GET_11, policy=policy, keepalives=keepalives) == (True, b"")
    assert len(_connection(GET_11, policy, limit=500)) == 500  # never closes by count


@pytest.mark.parametrize("timeout,shown", [(5.0, 5), (2.5, 2), (1.0, 1), (15, 15)])
def test_keep_alive_timeout_is_whole_seconds(timeout, shown):
    # httpd prints apr_time_sec(keep_alive_timeout)
    keep, lines = decide(GET_10_KA, policy=KeepAlivePolicy(timeout=timeout, max_requests=0))
    assert keep
    assert lines == b"Keep-Alive: timeout=%d\r\nConnection: Keep-Alive\r\n" % shown


def test_from_config_reads_httpd_directives():
    class Cfg:
        KeepAlive = True
        KeepAliveTimeout = 3
        MaxKeepAliveRequests = 9

    assert KeepAlivePolicy.from_config(Cfg()) == KeepAlivePolicy(True, 3, 9)
