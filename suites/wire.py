"""The suites' raw HTTP/1.1 client: raw bytes out, strictly parsed responses in.

The suites send requests byte for byte as a test needs them (partial heads, pipelines,
malformed framing, half-closes), so they cannot use a client library that would fix them
up. ``Conn`` owns the socket, the receive buffer and the EOF flag; its response parser is
strict (RFC 9112 §6: Content-Length, chunked, or read to the close). The conformance suite
reads the same ``Conn`` with h11 instead (suites/conformance/reading.py). The project's own
tests use it too. Every read has a deadline; nothing here sleeps.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


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
    """One client connection to 127.0.0.1:port with a per-call deadline.

    ``buf`` holds the bytes received and not yet parsed; ``eof`` turns true once the server
    has closed (a reset counts as a close: what it sent before is still in ``buf``).
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                 nodelay: bool = False) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if nodelay:  # each send leaves at once: the server sees the pieces a case sends apart
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._attach(sock, timeout)

    @classmethod
    def wrap(cls, sock: socket.socket, timeout: float = 10.0) -> "Conn":
        """A Conn on an already connected socket (e.g. one end of a socketpair)."""
        self = cls.__new__(cls)
        self._attach(sock, timeout)
        return self

    def _attach(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.send_failed = False

    def send(self, data: bytes) -> None:
        """Send all of ``data`` (OSError if the server has closed; see ``try_send``)."""
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send ``data``; False, and every later ``try_send`` skipped, once the server has closed.

        A server may answer and close before reading all a client sends (httpd answers a bad
        head with 400 and closes, RFC 9112 §9.6): the send then fails with EPIPE or ECONNRESET,
        yet what the server sent is still there to read.
        """
        if self.send_failed:
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            self.send_failed = True
        return not self.send_failed

    def shut_wr(self) -> None:
        """Half-close: send FIN and keep reading (RFC 9112 §9.6: the server may still answer)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

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
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
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
