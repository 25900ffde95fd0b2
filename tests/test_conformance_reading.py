"""suites.conformance.reading: h11-parsed responses over a suites.wire.Conn.

The server side is the other end of a socketpair, so each framing error, EOF and silence
is produced exactly. What the runner does with the outcome (pending, closed, extra) is in
suites/conformance; here only how one read ends.
"""

from __future__ import annotations

import pytest

from suites.conformance.reading import Closed, Malformed, read_response, read_to_eof

from . import test_wire

pair = test_wire.pair  # the fixture: a Conn and the server's end of a socketpair

OK = b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok"


def test_a_response_with_interim_and_the_bytes_after_it_kept(pair):
    conn, server = pair
    server.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"HTTP/1.1 204 No")
    r = read_response(conn, "POST", "1.1", 5)
    assert (r.status, r.body, r.method, r.req_version) == (200, b"ok", "POST", "1.1")
    assert [code for code, _ in r.interim] == [100]
    assert r.header("DATE") == "Mon, 01 Jan 2024 00:00:00 GMT" and not r.announces_close
    assert conn.buf == b"HTTP/1.1 204 No"  # the next response's start stays for the next read


def test_eof_before_any_byte_is_closed(pair):
    conn, server = pair
    server.close()
    with pytest.raises(Closed):
        read_response(conn, "GET", "1.1", 5)
    with pytest.raises(Closed):  # and again, without reading the socket
        read_response(conn, "GET", "1.1", 5)


def test_silence_is_a_timeout_but_half_a_response_is_malformed(pair):
    conn, server = pair
    with pytest.raises(TimeoutError):
        read_response(conn, "GET", "1.1", 0.05)
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok")
    with pytest.raises(Malformed, match="incomplete"):
        read_response(conn, "GET", "1.1", 0.2)


def test_a_body_on_a_head_response_is_malformed(pair):
    """RFC 9110 §9.3.2: the bytes after a HEAD response's head are not a response."""
    conn, server = pair
    server.sendall(OK + b"\r\n\r\n")
    assert read_response(conn, "HEAD", "1.1", 5).body == b""
    with pytest.raises(Malformed, match="malformed response"):  # "ok" is no status line
        read_response(conn, "GET", "1.1", 5)


def test_eof_inside_a_response_is_malformed(pair):
    conn, server = pair
    server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok")
    server.close()
    with pytest.raises(Malformed):
        read_response(conn, "GET", "1.1", 5)


def test_read_to_eof_collects_responses_then_reports_how_it_ended(pair):
    conn, server = pair
    server.sendall(OK + OK)
    got, eof = read_to_eof(conn, 0.2)
    assert [r.status for r in got] == [200, 200] and not eof  # still open at the deadline
    server.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nbad")
    server.close()
    got, eof = read_to_eof(conn, 5)
    assert [(r.status, r.body) for r in got] == [(400, b"bad")] and eof
    assert got[0].announces_close
