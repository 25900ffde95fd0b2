"""suites.wire.Conn's transport: deadlines, EOF, half-close and sends after the server closed.

Each test plays the server on the other end of a socketpair (or a loopback listener), so
what arrives and when is decided here, not by a real server.
"""

from __future__ import annotations

import socket
import time

import pytest

from suites.wire import Conn


@pytest.fixture
def pair():
    """A Conn on one end of a socketpair, and the other end, where the test plays the server."""
    client, server = socket.socketpair()
    conn = Conn.wrap(client, timeout=5.0)
    yield conn, server
    conn.close()
    server.close()


def test_recv_more_buffers_then_reports_eof(pair):
    conn, server = pair
    server.sendall(b"HTTP/1.1 200 OK\r\n")
    assert conn.recv_more(time.monotonic() + 5)
    assert conn.buf == b"HTTP/1.1 200 OK\r\n" and not conn.eof
    server.close()
    assert not conn.recv_more(time.monotonic() + 5)
    assert conn.eof and conn.buf == b"HTTP/1.1 200 OK\r\n"  # what came before the close is kept
    assert not conn.recv_more(time.monotonic() - 1)  # EOF is final, whatever the deadline


def test_recv_more_raises_timeout_at_the_deadline(pair):
    conn, _server = pair
    with pytest.raises(TimeoutError):
        conn.recv_more(time.monotonic() - 1)
    with pytest.raises(TimeoutError):
        conn.recv_more(time.monotonic() + 0.05)  # nothing sent: the socket's own timeout
    assert not conn.eof and conn.buf == b""


def test_wait_head_stops_at_a_full_head_eof_or_deadline(pair):
    conn, server = pair
    conn.wait_head(0.05)  # nothing comes: returns at the deadline
    assert conn.buf == b""
    server.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
    conn.wait_head(5)
    assert conn.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    server.close()
    conn.buf = b""
    conn.wait_head(5)
    assert conn.eof


def test_try_send_after_the_server_closed_is_recorded_not_raised(pair):
    conn, server = pair
    assert conn.try_send(b"GET / HTTP/1.1\r\n")
    assert server.recv(100) == b"GET / HTTP/1.1\r\n"
    server.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    server.close()
    assert not conn.try_send(b"x" * 1_000_000)
    assert conn.send_failed
    assert not conn.try_send(b"more")  # skipped once failed
    assert conn.read_response().status == 400  # the answer sent before the close is still read
    with pytest.raises(OSError):
        conn.send(b"strict send raises")


def test_shut_wr_half_closes_and_keeps_reading(pair):
    conn, server = pair
    conn.try_send(b"GET / HTTP/1.0\r\n\r\n")
    conn.shut_wr()
    server.settimeout(5)
    got = b""
    while chunk := server.recv(100):
        got += chunk
    assert got == b"GET / HTTP/1.0\r\n\r\n"  # the server saw the FIN after the request
    server.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    r = conn.read_response()
    assert (r.status, r.body) == (200, b"ok")
    conn.shut_wr()  # a second half-close is harmless


@pytest.mark.parametrize("nodelay", [False, True])
def test_connect_sets_nodelay_only_when_asked(nodelay):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with Conn(listener.getsockname()[1], timeout=5.0, nodelay=nodelay) as conn:
            assert bool(conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is nodelay
            assert (conn.buf, conn.eof, conn.send_failed) == (b"", False, False)


# -- a routed endpoint: TLS, Host and prefix ------------------------------------------------------------

def _tls_listener(tmp_path):
    """A one-connection TLS server on 127.0.0.1 (self-signed, openssl) that answers what it read as
    the body of one response, then closes without close_notify; (port, cert path, thread)."""
    import ssl
    import threading

    from tests.test_suites_remote import _certificate

    cert, key = _certificate(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    lsock = socket.create_server(("127.0.0.1", 0))

    def serve():
        with lsock:
            s, _ = lsock.accept()
            s.settimeout(5)
            try:
                tls = ctx.wrap_socket(s, server_side=True)
            except (OSError, ssl.SSLError):
                s.close()
                return
            data = tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
            s.close()  # no close_notify: the client must read that as EOF

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock.getsockname()[1], cert, t


def test_routed_endpoint_speaks_tls_with_host_and_prefix(tmp_path):
    from suites.wire import Endpoint, route, tls_context, unroute

    port, cert, t = _tls_listener(tmp_path)
    route(Endpoint("127.0.0.1", port, "staging.example", "/app", tls_context(cafile=str(cert))))
    try:
        with Conn(port, timeout=5) as c:
            c.send(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            r = c.read_response()
            assert r.body == b"GET /app/x HTTP/1.1\r\nHost: staging.example\r\n\r\n"
            assert c.closed_by_peer(5)
    finally:
        unroute("127.0.0.1", port)
    t.join(5)


def test_routed_tls_endpoint_fails_closed_on_an_unknown_certificate(tmp_path):
    import ssl

    from suites.wire import Endpoint, route, tls_context, unroute

    port, _, t = _tls_listener(tmp_path)
    route(Endpoint("127.0.0.1", port, "127.0.0.1", "", tls_context()))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            Conn(port, timeout=5)
    finally:
        unroute("127.0.0.1", port)
    t.join(5)
