"""The prefork server over real loopback sockets: persistence, pipelining, errors, bodies, WSGI."""

from __future__ import annotations

import json

import pytest

from suites.wire import Conn, request

APP = "tests.wsgi_apps:app"


@pytest.fixture(scope="module")
def server():
    from servers.launcher import start

    from .conftest import FAST

    h = start("prefork", {**FAST, "StartServers": 3, "MinSpareServers": 2, "MaxSpareServers": 6,
                          "MaxKeepAliveRequests": 3, "LimitRequestBody": 100000}, app=APP)
    yield h
    h.stop()


def test_keepalive_persists_and_counts_down(server):
    """RFC 9112 §9.3 + httpd: MaxKeepAliveRequests 3 -> 4 responses, max=3,2,1, then close."""
    with Conn(server.port) as c:
        seen = []
        for i in range(4):
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"Hello, World!"
            assert r.header("Date")
            seen.append((r.header("Keep-Alive"), r.header("Connection")))
        assert seen == [
            ("timeout=2, max=3", "Keep-Alive"),
            ("timeout=2, max=2", "Keep-Alive"),
            ("timeout=2, max=1", "Keep-Alive"),
            (None, "close"),
        ]
        assert c.closed_by_peer()


def test_http11_default_persistent_without_headers(server):
    with Conn(server.port) as c:
        for _ in range(2):
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.header("Connection") is None


def test_http10_closes_unless_keepalive(server):
    """RFC 9112 §9.3: HTTP/1.0 is persistent only with the keep-alive option."""
    with Conn(server.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.closed_by_peer()
    with Conn(server.port) as c:
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert c.read_response().header("Connection") == "Keep-Alive"
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert c.read_response().status == 200


def test_connection_close_honoured(server):
    with Conn(server.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.closed_by_peer()


def test_pipelined_requests_answered_in_order(server):
    """RFC 9112 §9.3.2: GET, HEAD and a POST with a body in one write -> three responses in order."""
    with Conn(server.port) as c:
        c.send(
            b"GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /echo?n=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        )
        r1 = c.read_response()
        r2 = c.read_response(head_only=True)
        r3 = c.read_response()
        assert json.loads(r1.body)["target"] == "/echo?n=1"
        assert r2.status == 200 and r2.header("Content-Length") == "13"
        doc = json.loads(r3.body)
        assert doc["target"] == "/echo?n=3" and doc["body"] == "hello"
        # HEAD carried no body: the third response parsed cleanly right after it


ERRORS = [
    ("400 missing Host (RFC 9112 §3.2)", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("400 duplicate Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("400 bad Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400),
    ("400 CL+TE (RFC 9112 §6.1)", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("411 Expect without framing", b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", 411),
    ("413 LimitRequestBody", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n", 413),
    ("414 LimitRequestLine", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ("417 unknown expectation (RFC 9110 §10.1.1)", b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417),
    ("431 field too large", b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    ("431 too many fields", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    ("501 unknown method (RFC 9110 §9.1)", b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    ("400 final transfer coding not chunked (RFC 9112 §6.3)", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    ("501 unknown transfer coding before chunked (RFC 9112 §6.1)", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    ("505 HTTP/2.0 (RFC 9110 §15.6.6)", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
]


@pytest.mark.parametrize("raw,status", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_protocol_errors_answer_then_close(server, raw, status):
    with Conn(server.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status
        assert r.header("Connection") == "close"
        assert r.header("Date") and int(r.header("Content-Length")) == len(r.body)
        assert c.closed_by_peer(), "connection must be closed after a protocol error"


def test_error_after_unread_upload_reaches_client(server):
    """Lingering close: a 413 sent while the client still uploads arrives intact, not as an RST."""
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 300000\r\n\r\n")
        try:
            c.send(b"z" * 300000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 413


def test_chunked_request_body_and_trailers(server):
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        doc = json.loads(r.body)
        assert doc["body"] == "hello world"
        assert ["X-Trailer", "t"] not in doc["headers"]  # trailers never merged (RFC 9110 §6.5)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"Hello, World!"


def test_chunked_response_for_streamed_body(server):
    with Conn(server.port) as c:
        c.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.body == b"part0;part1;part2;part3;part4;"
        c.send(b"GET /stream HTTP/1.0\r\n\r\n")  # 1.0: no chunked, close-delimited (RFC 9112 §6.1)
        r = c.read_response()
        assert r.header("Transfer-Encoding") is None and r.body == b"part0;part1;part2;part3;part4;"
        assert r.header("Connection") == "close"


def test_expect_100_continue(server):
    """RFC 9110 §10.1.1: 100 Continue before the body is read."""
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        c._line(__import__("time").monotonic() + 5)  # reads the interim status line
        assert c.buf.startswith(b"\r\n") or True
        c.buf = c.buf.split(b"\r\n", 1)[1] if c.buf.startswith(b"\r\n") else c.buf
        c.send(b"data")
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["body"] == "data"


def test_echo_mirror_keeps_order_and_case(server):
    raw = (b"PUT /echo?q=1 HTTP/1.1\r\nHost: example\r\nX-B: 2\r\nx-a: 1\r\nX-B: 3\r\n"
           b"Content-Length: 3\r\n\r\nabc")
    doc = json.loads(request(server.port, raw).body)
    assert doc == {
        "method": "PUT", "target": "/echo?q=1", "version": "HTTP/1.1",
        "headers": [["Host", "example"], ["X-B", "2"], ["x-a", "1"], ["X-B", "3"], ["Content-Length", "3"]],
        "body": "abc",
    }


def test_absolute_form_authority_wins(server):
    doc = json.loads(request(server.port, b"GET http://other:81/echo HTTP/1.1\r\nHost: a\r\n\r\n").body)
    assert doc["target"] == "http://other:81/echo"


def test_head_and_write_callable(server):
    r = request(server.port, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", head_only=True)
    assert r.status == 200 and r.header("Content-Length") == "13"
    r = request(server.port, b"GET /write HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.body == b"0123456789"


def test_application_error_is_500_and_child_survives(server):
    with Conn(server.port) as c:
        c.send(b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 500
        assert c.closed_by_peer()
    assert request(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200
    assert "deliberate application error" in server.log_text()


def test_wsgi_compliance_under_validator(launch):
    """PEP 3333, checked by wsgiref.validate on the server side of every call."""
    h = launch("prefork", {"StartServers": 1}, app="tests.wsgi_apps:compliance")
    r = request(h.port, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: 11\r\n\r\nab\ncdefghi\n")
    assert r.status == 200, h.log_text()
    assert r.body == b"line1=ab\nrest=cdefghi\n"
    assert "compliance app ran" in h.log_text()


def test_keepalive_timeout_closes_idle_connection(launch):
    """httpd core: an idle persistent connection is closed after KeepAliveTimeout, silently."""
    h = launch("prefork", {"StartServers": 1, "KeepAliveTimeout": 0.3, "Timeout": 5}, app=APP)
    with Conn(h.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
        assert c.closed_by_peer(timeout=5)  # closed long before Timeout, with no bytes sent


def test_stalled_partial_request_gets_408(launch):
    """RFC 9110 §15.5.9: a request begun and not finished within Timeout -> 408, then close."""
    h = launch("prefork", {"StartServers": 1, "Timeout": 0.5}, app=APP)
    with Conn(h.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost:")
        r = c.read_response(timeout=5)
        assert r.status == 408
        assert c.closed_by_peer()


def test_head_error_has_no_body_and_pipelined_upgrade_body_is_not_a_request(server):
    """RFC 9110 §9.3.2: an error answering HEAD carries no body; §7.8: a POST with
    Connection: upgrade is served as a plain request, its body never read as the next one."""
    with Conn(server.port) as c:
        c.send(b"HEAD * HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response(head_only=True)
        assert r.status == 400
        assert c.closed_by_peer()  # and no body bytes before the close
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
               b"Content-Length: 5\r\n\r\nhello")
        assert json.loads(c.read_response().body)["body"] == "hello"
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().body == b"Hello, World!"
