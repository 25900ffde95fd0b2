"""The suites' raw HTTP/1.1 client: raw bytes out, strictly parsed responses in.

The suites send requests byte for byte as a test needs them (partial heads, pipelines,
malformed framing, half-closes), so they cannot use a client library that would fix them
up. ``Conn`` owns the socket, the receive buffer and the EOF flag; its response parser is
strict (RFC 9112 §6: Content-Length, chunked, or read to the close). The conformance suite
reads the same ``Conn`` with h11 instead (suites/conformance/reading.py). The project's own
tests use it too. Every read has a deadline; nothing here sleeps.

A server that is not a plain one at ``/`` of this machine (a ``--target`` over TLS, behind a
name-based virtual host, mounted below ``/``) is described once by an :class:`Endpoint` and
registered with :func:`route`; every ``Conn`` to its host and port then speaks TLS to it and
rewrites the requests a suite writes for ``/`` and ``Host: localhost`` (or ``Host: a``) to its
prefix and its Host, so no suite has to know.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass, field

#: the Host values the suites write for "whatever this server is called"
PLACEHOLDER_HOST = re.compile(rb"(?:\A|(?<=\n))Host: (?:localhost|a)(?=\r?\n)")

#: an origin-form request line at the start of a message (RFC 9112 §3.2.1)
REQUEST_LINE = re.compile(rb"(?:\A|(?<=\n))([A-Z]+) (/[^ \r\n]*) (?=HTTP/)")


@dataclass(frozen=True)
class Endpoint:
    """How to reach one server: TLS (a context, and the name its certificate must carry), the
    Host header value (RFC 9110 §7.2) and the path prefix where it is mounted."""

    host: str
    port: int
    authority: str
    prefix: str = ""
    tls: ssl.SSLContext | None = None

    def rewrite(self, data: bytes) -> bytes:
        """``data`` (whole messages) with each request head made this server's (:class:`Rewriter`)."""
        return Rewriter(self).feed(data)

    def head(self, data: bytes) -> bytes:
        """Request-head bytes with the placeholder Host lines and origin-form targets made this
        server's. A malformed line (a bare CR, a Host of another name) is sent as written, which
        is what its case tests."""
        data = PLACEHOLDER_HOST.sub(b"Host: " + self.authority.encode("latin-1"), data)
        if self.prefix:
            data = REQUEST_LINE.sub(lambda m: m[1] + b" " + self.path(m[2]) + b" ", data)
        return data

    def path(self, target: bytes) -> bytes:
        """The request target ``target`` (origin form) below this server's prefix."""
        return self.prefix.encode("latin-1") + target

    def connect(self, sock: socket.socket) -> socket.socket:
        """``sock`` wrapped in TLS when the server speaks it (the handshake verifies the certificate
        as the context says; a failure raises ``ssl.SSLError``: the suites fail closed)."""
        if self.tls is None:
            return sock
        return self.tls.wrap_socket(sock, server_hostname=self.host)


class Rewriter:
    """One connection's outgoing bytes, request heads rewritten (:meth:`Endpoint.head`) and bodies
    passed as sent: a body keeps its length, and a request hidden in a body stays hidden.

    Bodies are found by the plain reading of RFC 9112 §6.3: one Content-Length, or chunked alone,
    or none. A head the suites send in pieces is followed across sends. After a framing that
    is ambiguous or malformed on purpose (a smuggling case), or a chunked body cut between sends,
    the rest of the connection goes out exactly as written.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.head = b""  # the original bytes of a head not yet complete
        self.skip = 0  # body bytes still to pass as they are
        self.lost = False

    def feed(self, data: bytes) -> bytes:
        """The bytes to send for ``data``."""
        out, pos = [], 0
        while pos < len(data) and not self.lost:
            if self.skip:
                n = min(self.skip, len(data) - pos)
                out.append(data[pos:pos + n])
                pos, self.skip = pos + n, self.skip - n
                continue
            start = max(0, len(self.head) - 3)
            self.head += data[pos:]
            end = self.head.find(b"\r\n\r\n", start)
            if end < 0:
                out.append(self.endpoint.head(data[pos:]))
                return b"".join(out)
            taken = end + 4 - (len(self.head) - (len(data) - pos))
            out.append(self.endpoint.head(data[pos:pos + taken]))
            pos += taken
            head, self.head = self.head[:end + 4], b""
            pos = self._body(head, data, pos, out)
        out.append(data[pos:])
        return b"".join(out)

    def _body(self, head: bytes, data: bytes, pos: int, out: list[bytes]) -> int:
        """Set up the body after ``head``; a chunked body is passed whole here. Returns the new pos."""
        fields = [line.partition(b":") for line in head.split(b"\r\n")[1:]]
        lengths = [v.strip() for n, _, v in fields if n.lower() == b"content-length"]
        codings = [v.strip().lower() for n, _, v in fields if n.lower() == b"transfer-encoding"]
        if codings == [b"chunked"] and not lengths:
            end = _chunked_end(data, pos)
            if end is None:
                self.lost = True
                return pos
            out.append(data[pos:end])
            return end
        digits = lengths[0].lstrip(b"0") or b"0" if lengths else b""
        if codings or len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and len(digits) < 19)):
            self.lost = True
        elif lengths:
            self.skip = int(digits)
        return pos


def _chunked_end(data: bytes, pos: int) -> int | None:
    """Where a chunked body starting at ``pos`` ends (after its trailer section), or None when
    ``data`` does not hold all of it or it is malformed (RFC 9112 §7.1)."""
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = data[pos:eol].split(b";")[0].strip()
        try:
            n = int(size, 16)
        except ValueError:
            return None
        pos = eol + 2
        if n == 0:
            end = data.find(b"\r\n\r\n", pos - 2)
            return None if end < 0 else end + 4
        pos += n + 2
        if pos > len(data):
            return None


#: (host, port) -> the endpoint every Conn to it uses (set by suites/conftest.py for a --target)
_ROUTES: dict[tuple[str, int], Endpoint] = {}


def route(endpoint: Endpoint) -> None:
    """Send every later ``Conn(port, host)`` to this endpoint's host and port through it."""
    _ROUTES[(endpoint.host, endpoint.port)] = endpoint


def unroute(host: str, port: int) -> None:
    """Forget the endpoint of ``host:port`` (its port may serve something else later)."""
    _ROUTES.pop((host, port), None)


def endpoint_for(host: str, port: int) -> Endpoint | None:
    """The routed endpoint of ``host:port``, or None for a plain server at ``/``."""
    return _ROUTES.get((host, port))


def tls_context(cafile: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client TLS context: the system's CAs and hostname checking by default (RFC 9110 §4.3.4),
    or the CAs of ``cafile``, or, with ``insecure``, no verification at all."""
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx

#: what a TLS peer's close looks like to recv (no close_notify is a close too, as for a browser)
CLOSED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLZeroReturnError, ssl.SSLEOFError)


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


class Conn:
    """One client connection to host:port (default 127.0.0.1) with a per-call deadline.

    ``buf`` holds the bytes received and not yet parsed; ``eof`` turns true once the server
    has closed (a reset counts as a close: what it sent before is still in ``buf``). A routed
    server (:func:`route`) is reached through its :class:`Endpoint`: TLS, Host and prefix.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                 nodelay: bool = False) -> None:
        self.endpoint = endpoint_for(host, port)
        sock = socket.create_connection((host, port), timeout=timeout)
        if nodelay:  # each send leaves at once: the server sees the pieces a case sends apart
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._rewriter = Rewriter(self.endpoint) if self.endpoint is not None else None
        if self.endpoint is not None:
            try:
                sock = self.endpoint.connect(sock)
            except BaseException:
                sock.close()
                raise
        self._attach(sock, timeout)

    @classmethod
    def wrap(cls, sock: socket.socket, timeout: float = 10.0) -> "Conn":
        """A Conn on an already connected socket (e.g. one end of a socketpair)."""
        self = cls.__new__(cls)
        self.endpoint = self._rewriter = None
        self._attach(sock, timeout)
        return self

    def _attach(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.send_failed = False

    def _out(self, data: bytes) -> bytes:
        return data if self._rewriter is None else self._rewriter.feed(data)

    def send(self, data: bytes) -> None:
        """Send all of ``data`` (OSError if the server has closed; see ``try_send``)."""
        self.sock.sendall(self._out(data))

    def try_send(self, data: bytes) -> bool:
        """Send ``data``; False, and every later ``try_send`` skipped, once the server has closed.

        A server may answer and close before reading all a client sends (httpd answers a bad
        head with 400 and closes, RFC 9112 §9.6): the send then fails with EPIPE or ECONNRESET,
        yet what the server sent is still there to read.
        """
        if self.send_failed:
            return False
        try:
            self.sock.sendall(self._out(data))
        except OSError:
            self.send_failed = True
        return not self.send_failed

    def shut_wr(self) -> None:
        """Half-close: send FIN and keep reading (RFC 9112 §9.6: the server may still answer).

        Over TLS that is close_notify (RFC 8446 §6.1), sent without waiting for the server's:
        the session stays open for reading.
        """
        if isinstance(self.sock, ssl.SSLSocket):
            self._close_notify()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _close_notify(self) -> None:
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0)  # unwrap would wait for the peer's close_notify
        try:
            self.sock.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, OSError):
            pass
        finally:
            self.sock.settimeout(timeout)

    def recv_more(self, deadline: float) -> bool:
        """Read more bytes into ``buf``: False at EOF (or reset), TimeoutError at ``deadline``."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no response before the deadline")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except CLOSED:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True


    def wait_head(self, timeout: float) -> None:
        """Wait until a response head (interim or final) is in ``buf``, EOF, or ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            while b"\r\n\r\n" not in self.buf and self.recv_more(deadline):
                pass
        except TimeoutError:
            pass

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            if not self.recv_more(deadline):
                raise ConnectionError("closed inside a response head")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self.recv_more(deadline):
                raise ConnectionError("closed inside a response body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_only: bool = False, timeout: float | None = None) -> Response:
        """Read one response; ``head_only`` for HEAD requests (RFC 9110 §9.3.2)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            line = self._line(deadline)
            version, _, rest = line.decode("latin-1").partition(" ")
            code, _, reason = rest.partition(" ")
            headers = []
            while True:
                h = self._line(deadline)
                if not h:
                    break
                name, sep, value = h.decode("latin-1").partition(":")
                assert sep and name == name.strip(), f"malformed header line {h!r}"
                headers.append((name, value.strip()))
            status = int(code)
            if status >= 200 or status == 101:
                break
        resp = Response(status, reason, version, headers, b"")
        if head_only or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None:
            assert te.lower() == "chunked", te
            parts = []
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    break
                parts.append(self._exact(size, deadline))
                assert self._exact(2, deadline) == b"\r\n"
            while True:
                t = self._line(deadline)
                if not t:
                    break
                n, _, v = t.decode("latin-1").partition(":")
                resp.trailers.append((n, v.strip()))
            resp.body = b"".join(parts)
        elif cl is not None:
            resp.body = self._exact(int(cl), deadline)
        else:
            while self.recv_more(deadline):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (EOF) within ``timeout`` with no more bytes."""
        deadline = time.monotonic() + timeout
        try:
            while self.recv_more(deadline):
                pass
        except TimeoutError:
            return False
        return not self.buf

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def request(port: int, raw: bytes, head_only: bool = False, timeout: float = 10.0) -> Response:
    """Send one raw request on a new connection and read one response."""
    with Conn(port, timeout=timeout) as c:
        c.send(raw)
        return c.read_response(head_only=head_only)


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
