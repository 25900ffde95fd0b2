"""Read the server's responses strictly: h11, in the client role, over a ``suites.wire.Conn``.

h11 is told the method of the request each response answers, so it knows when a response
has no body (HEAD, 304, RFC 9110 §9.3.2, RFC 9112 §6.3): a body there, wrong framing or
stray bytes after a message is a parse error, and the case that caused it fails. The
socket, buffer, deadlines and EOF are ``Conn``'s; this module only parses.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import h11

from suites.wire import Conn

#: the Host every request the runner writes itself carries (probes, h11's own request)
HOST = "localhost"


@dataclass
class Resp:
    """One parsed final response (with the 1xx responses that came before it)."""

    status: int
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[tuple[int, list[tuple[str, str]]]]
    method: str
    req_version: str

    def header(self, name: str) -> str | None:
        """The field's values joined by ", " (RFC 9110 §5.3), or None; ``name`` in any case."""
        name = name.lower()
        values = [v for n, v in self.headers if n == name]
        return ", ".join(values) if values else None

    @property
    def announces_close(self) -> bool:
        """Whether the response carries the ``close`` connection option (RFC 9112 §9.6)."""
        conn = self.header("connection") or ""
        return "close" in [t.strip().lower() for t in conn.split(",")]

    def json(self) -> dict | None:
        """The body as a JSON object (the echo mirror's answer), or None."""
        try:
            doc = json.loads(self.body.decode("latin-1"))
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None


class Closed(Exception):
    """The server closed the connection before any byte of a response."""


class Malformed(Exception):
    """The server sent something a strict HTTP/1.1 parser refuses."""


def read_response(conn: Conn, method: str, version: str, timeout: float) -> Resp:
    """Parse one final response (after any 1xx) to a ``method`` request of HTTP/``version``.

    Raises Closed (EOF first), TimeoutError (nothing within ``timeout``: the server still
    waits for bytes) or Malformed (a response h11 refuses, or one cut short by EOF or the
    deadline).
    """
    deadline = time.monotonic() + timeout
    if conn.eof and not conn.buf:
        # the server closed after a close-delimited response (no Content-Length, e.g. httpd's 400
        # to a bad chunk): nothing more can come; h11 would call EOF here a protocol error
        raise Closed()
    parser = _client_for(method)
    started = bool(conn.buf)
    if conn.buf:  # receive_data(b"") would mean EOF to h11
        parser.receive_data(conn.buf)
        conn.buf = b""
    elif conn.eof:
        parser.receive_data(b"")
    interim: list[tuple[int, list[tuple[str, str]]]] = []
    head = None
    body = []
    while True:
        try:
            ev = parser.next_event()
        except h11.RemoteProtocolError as exc:
            raise Malformed(f"malformed response: {exc}") from None
        if ev is h11.NEED_DATA:
            started = _feed(conn, parser, deadline, started, head is None)
            continue
        if isinstance(ev, h11.InformationalResponse):
            started = True
            interim.append((ev.status_code, _decode(ev.headers)))
        elif isinstance(ev, h11.Response):
            started = True
            head = ev
        elif isinstance(ev, h11.Data):
            body.append(bytes(ev.data))
        elif isinstance(ev, h11.EndOfMessage):
            conn.buf, closed = parser.trailing_data
            if closed:
                conn.eof = True
            return Resp(head.status_code, head.http_version.decode(), _decode(head.headers), b"".join(body),
                        interim, method, version)
        elif isinstance(ev, h11.ConnectionClosed):
            if head is None and not interim:
                raise Closed()
            raise Malformed("connection closed inside a response")
        elif ev is h11.PAUSED:
            raise Malformed("h11 paused (protocol switch?)")


def _client_for(method: str) -> h11.Connection:
    """An h11 client that has sent a ``method`` request, so it frames the answer as RFC 9112 §6.3 says."""
    parser = h11.Connection(h11.CLIENT)
    h11_method = "GET" if method.upper() == "CONNECT" else method
    # h11 only speaks 1.1 as a client; the request's real version is kept in Resp.req_version
    parser.send(h11.Request(method=h11_method, target="/", headers=[("Host", HOST)]))
    parser.send(h11.EndOfMessage())
    return parser


def _feed(conn: Conn, parser: h11.Connection, deadline: float, started: bool, no_head: bool) -> bool:
    """Give h11 the next bytes (or the EOF); returns whether a response has started."""
    try:
        more = conn.recv_more(deadline)
    except TimeoutError:
        if started or parser.trailing_data[0]:
            raise Malformed("incomplete response before the deadline") from None
        raise
    if more:
        parser.receive_data(conn.buf)
        conn.buf = b""
        return True
    if not started and not parser.trailing_data[0] and no_head:
        raise Closed()
    parser.receive_data(b"")
    return started


def read_to_eof(conn: Conn, timeout: float) -> tuple[list[Resp], bool]:
    """Read responses (to GET over HTTP/1.1) until EOF (True) or the deadline (False)."""
    deadline = time.monotonic() + timeout
    got = []
    while True:
        left = deadline - time.monotonic()
        try:
            got.append(read_response(conn, "GET", "1.1", max(left, 0.001)))
        except Closed:
            return got, True
        except TimeoutError:
            return got, False


def ask(host: str, port: int, raw: bytes, method: str = "GET", timeout: float = 3.0) -> Resp:
    """Send ``raw`` (one HTTP/1.1 request) on a fresh connection and read its response."""
    with Conn(port, host=host, timeout=timeout, nodelay=True) as conn:
        conn.try_send(raw)
        return read_response(conn, method, "1.1", timeout)


def _decode(headers) -> list[tuple[str, str]]:
    return [(bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1")) for n, v in headers]
