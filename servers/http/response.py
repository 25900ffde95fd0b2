"""Response serialisation (RFC 9112 §4, §6, §7; RFC 9110 §6.6.1, §15).

* ``Date`` in IMF-fixdate, formatted at most once per second (RFC 9110 §6.6.1);
* ``Server`` on every response;
* body framing: Content-Length when known, chunked for an HTTP/1.1 client
  otherwise, close-delimited for HTTP/1.0 (RFC 9112 §6.1, §6.3);
* no body for HEAD, 1xx, 204 and 304, and no Content-Length on 1xx/204
  (RFC 9110 §8.6, §9.3.2);
* error responses with an httpd-style HTML body.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

SERVER_SOFTWARE = "mpm-harness/0.1"

#: hop-by-hop fields a WSGI application must not set (PEP 3333, RFC 9110 §7.6.1)
HOP_BY_HOP = frozenset(
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"]
)

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[431] = "Request Header Fields Too Large"
_REASONS[413] = "Request Entity Too Large"  # httpd's wording
_REASONS[414] = "Request-URI Too Long"  # httpd's wording

_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}


def status_line(status: int, reason: str | None = None, version: bytes = b"HTTP/1.1") -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``; the common ones are cached."""
    if reason is None:
        key = (status, version)
        cached = _STATUS_LINES.get(key)
        if cached is None:
            cached = b"%s %d %s\r\n" % (version, status, _REASONS.get(status, "Unknown").encode())
            _STATUS_LINES[key] = cached
        return cached
    return b"%s %d %s\r\n" % (version, status, reason.encode("latin-1"))


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status``."""
    return _REASONS.get(status, "Unknown")


class DateCache:
    """The ``Date`` header line, re-formatted only when the second changes."""

    __slots__ = ("_second", "_line")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        """``Date: <IMF-fixdate>\\r\\n`` for the current second."""
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


DATE = DateCache()


def body_forbidden(status: int, method: str) -> bool:
    """RFC 9110 §6.4.1: responses to HEAD and 1xx/204/304 responses carry no content."""
    return method == "HEAD" or status < 200 or status in (204, 304)


def error_body(status: int, detail: str = "") -> bytes:
    """An httpd-style HTML error document."""
    reason = reason_phrase(status)
    text = {
        400: "Your browser sent a request that this server could not understand.",
        408: "Server timeout waiting for the HTTP request from the client.",
        411: "A request of the requested method requires a valid Content-length.",
        413: "The requested resource does not allow request data with this method, or the amount of data provided exceeds the capacity limit.",
        414: "The requested URL's length exceeds the capacity limit for this server.",
        417: "The expectation given in the Expect request-header field could not be met by this server.",
        431: "Your browser sent a request whose header fields exceed this server's limits.",
        500: "The server encountered an internal error or misconfiguration and was unable to complete your request.",
        501: "The request method or transfer coding is not supported by this server.",
        503: "The server is temporarily unable to service your request.",
        505: "The HTTP version of the request is not supported by this server.",
    }.get(status, reason)
    esc = detail.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        f"<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n"
        f"<p>{text}<br />\n{esc}</p>\n</body></html>\n"
    ).encode("latin-1", "replace")


def error_response(status: int, detail: str = "", *, method: str = "GET", extra: bytes = b"") -> bytes:
    """A complete error response that closes the connection (httpd's ap_die for protocol errors)."""
    body = error_body(status, detail)
    head = (
        status_line(status)
        + DATE.line()
        + b"Server: " + SERVER_SOFTWARE.encode() + b"\r\n"
        + b"Content-Length: %d\r\n" % len(body)
        + b"Connection: close\r\n"
        + b"Content-Type: text/html; charset=iso-8859-1\r\n"
        + extra
        + b"\r\n"
    )
    return head if method == "HEAD" else head + body


def chunk(data: bytes) -> bytes:
    """One chunk of chunked transfer coding (RFC 9112 §7.1); empty data is no chunk (not the last-chunk)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
