"""Response serialisation (RFC 9112 §4, §6, §7; RFC 9110 §6.6.1, §15).

* ``Date`` in IMF-fixdate, formatted at most once per second (RFC 9110 §6.6.1);
* ``Server`` on every response;
* the chunk and last-chunk of chunked transfer coding (RFC 9112 §7.1); which
  framing a response gets, and which responses carry no body, is decided in
  ``servers.http.framing``;
* error responses with an httpd-style HTML body;
* the checks a status and header fields from an application must pass before
  they go on the wire (RFC 9110 §5.1, §5.5, §8.6, §15; RFC 9112 §4).
"""

from __future__ import annotations

import re
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


# -- what an application may put in a response head -----------------------------------------------


class InvalidResponse(ValueError):
    """A status or header field from the application that must not reach the wire.

    Raised from ``start_response``, i.e. before the head is sent: the server answers 500
    and logs this message instead, as httpd does for a response field with invalid
    characters (AH02429 / AH02430, http_filters.c check_headers). A ValueError, as PEP
    3333 servers raise for bad arguments; never an OSError, which the connection loop
    takes for a network failure.
    """


#: RFC 9110 §5.1 field-name = token; §5.6.2 token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: what RFC 9110 §5.5 field-value (and RFC 9112 §4 reason-phrase) may not hold: CTLs other
#: than HTAB, DEL, and anything beyond obs-text (%x80-FF, the most latin-1 can carry)
_NOT_FIELD_TEXT = re.compile(r"[^\t\x20-\x7e\x80-\xff]")


def check_field_name(name: str) -> None:
    """Refuse a field name that is not a token (RFC 9110 §5.1): no whitespace, ":", CTLs or
    non-ASCII. A name like ``"Transfer-Encoding "`` would pass a hop-by-hop filter and be read
    as Transfer-Encoding by a proxy that strips the space (RFC 9112 §5.1): response smuggling."""
    if _TOKEN.fullmatch(name) is None:
        raise InvalidResponse(f"header name {name!r} is not a token (RFC 9110 §5.1)")


def check_field_value(name: str, value: str) -> None:
    """Refuse a field value with a CTL other than HTAB (CR, LF, NUL...), DEL or a character
    beyond latin-1 (RFC 9110 §5.5: field-vchar, SP and HTAB only; obs-text allowed)."""
    bad = _NOT_FIELD_TEXT.search(value)
    if bad is not None:
        raise InvalidResponse(f"header {name!r}: character {bad.group()!r} not allowed in a field value "
                              f"(RFC 9110 §5.5): {value!r}")


def parse_content_length(value: str) -> int:
    """A Content-Length value from the application: exactly one non-negative decimal
    (RFC 9110 §8.6 ``1*DIGIT``; no sign, no spaces, no list)."""
    if not (value.isascii() and value.isdigit()):
        raise InvalidResponse(f"Content-Length must be one non-negative decimal (RFC 9110 §8.6), got {value!r}")
    try:
        return int(value)
    except ValueError:  # more digits than int() takes
        raise InvalidResponse(f"Content-Length {value[:20]}... is too large") from None


def parse_status(status: str) -> tuple[int, str]:
    """A WSGI status (PEP 3333: ``"200 OK"``) as (code, reason phrase).

    RFC 9112 §4: three digits, SP, a reason of HTAB / SP / VCHAR / obs-text; RFC 9110 §15:
    codes 100-599. A 1xx is refused too: it is an interim response (RFC 9110 §15.2), after
    which the client waits for the final one, and a WSGI application has only one status
    to give (the server itself sends 100 Continue when the body is first read).
    """
    code_text, sep, reason = status.partition(" ")
    if not (len(code_text) == 3 and code_text.isascii() and code_text.isdigit()):
        raise InvalidResponse(f"status {status!r} does not start with a 3-digit code and a space (RFC 9112 §4)")
    code = int(code_text)
    if not 200 <= code <= 599:
        why = "an interim 1xx cannot be a final status (RFC 9110 §15.2)" if 100 <= code < 200 else \
            "status codes are 100-599 (RFC 9110 §15)"
        raise InvalidResponse(f"status {status!r}: {why}")
    bad = _NOT_FIELD_TEXT.search(reason)
    if bad is not None:
        raise InvalidResponse(f"status {status!r}: character {bad.group()!r} not allowed in a reason phrase "
                              f"(RFC 9112 §4)")
    return code, reason
