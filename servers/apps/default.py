"""The default router: hello, echo, bytes, sleep and page (see the package docstring).

What a client controls is bounded before it costs anything: numbers in the path or the
query are ASCII digits (:func:`ascii_int`), and no response is built whole in memory from
a size the client chose (``/bytes/N`` is read from one shared block through
``wsgi.file_wrapper``, ``/echo`` mirrors at most :data:`MAX_ECHO_BODY` bytes). httpd
serving the same resources reads a file in small buckets, so its memory per slow reader
does not grow with N either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

# Imported with the app, so in a server's parent before it forks: every child then shares sqlite3
# and the page's module (~3 MiB once, in the parent) instead of building its own copy on its
# first /page (~1.1 MiB per child: 56 MiB over prefork's 50; docs/performance.md).
from .realistic import page

HELLO = b"Hello, World!"
MAX_BYTES = 64 * 1024 * 1024
MAX_SLEEP_MS = 60_000
#: the most lines ``/stream`` yields
MAX_STREAM_PIECES = 10_000
#: the largest request body ``/echo`` mirrors; a larger one is answered 413 (RFC 9110 §15.5.14)
MAX_ECHO_BODY = 1024 * 1024
#: ``/bytes/N`` is sent in pieces of at most this size, all of them one shared block (or a slice of it)
BYTES_PIECE = 64 * 1024
_BLOCK = b"x" * BYTES_PIECE
_HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "13")]


def ascii_int(text: str, maximum: int) -> int | None:
    """``text`` as an integer in 0..``maximum`` when it is ``1*DIGIT`` (ASCII), else None.

    ``str.isdigit`` and ``int`` accept far more than ASCII digits: ``"²".isdigit()`` is
    true and ``int("²")`` raises, ``int("١٢")`` is 12, ``int(" 1_2 ")`` is 12, and a
    string of more than 4300 digits raises. So the digits are checked as ASCII, leading
    zeros stripped, and the length bounded before any conversion.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0")
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant) if significant else 0
    return value if value <= maximum else None


def _plain(start_response, status: str, text: str, extra=()) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *extra])
    return [body]


def hello(environ, start_response) -> list[bytes]:
    """``GET /``: 13 bytes with Content-Length, the benchmark's request."""
    start_response("200 OK", _HELLO_HEADERS)
    return [HELLO]


def echo(environ, start_response) -> list[bytes]:
    """The server's own view of the parsed request, for differential conformance tests.

    The mirrored body is bounded by :data:`MAX_ECHO_BODY`: the JSON of a body costs up
    to six times its size (``\\u00XX`` for each byte above 0x7F), so an unbounded mirror
    would let each client make the server hold many times what it sent. A larger body
    gets 413 (RFC 9110 §15.5.14), at once when Content-Length announces it, with
    ``Connection: close`` so the server does not wait to discard the rest (httpd's
    LimitRequestBody answers 413 and closes the same way).
    """
    declared = (environ.get("CONTENT_LENGTH") or "").strip()
    too_large = declared.isascii() and declared.isdigit() and ascii_int(declared, MAX_ECHO_BODY) is None
    body = b"" if too_large else environ["wsgi.input"].read(MAX_ECHO_BODY + 1)
    if too_large or len(body) > MAX_ECHO_BODY:
        return _plain(start_response, "413 Content Too Large",
                      f"/echo mirrors at most {MAX_ECHO_BODY} bytes of body\n", [("Connection", "close")])
    req = environ.get("mpm_harness.request")
    if req is not None:
        doc = {
            "method": req.method,
            "target": req.target,
            "version": req.http_version,
            "headers": [[n, v] for n, v in req.headers],
        }
    else:  # served by another WSGI server: rebuild what we can from the environ
        doc = {
            "method": environ["REQUEST_METHOD"],
            "target": environ.get("RAW_URI") or environ.get("REQUEST_URI") or _rebuilt_target(environ),
            "version": environ["SERVER_PROTOCOL"],
            "headers": [[k[5:].replace("_", "-").title(), v] for k, v in environ.items() if k.startswith("HTTP_")],
        }
    doc["body"] = body.decode("latin-1")
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


def _rebuilt_target(environ) -> str:
    """The request target from PEP 3333's parts, for a server that keeps no raw one (granian):
    SCRIPT_NAME + PATH_INFO, and ``?`` + QUERY_STRING when there is one. The percent-encoding of
    the original is lost (PATH_INFO is decoded), so the echo comparison is approximate there."""
    target = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    return target + "?" + query if query else target


class RepeatedBlock:
    """A file-like of ``n`` bytes of ``x`` whose reads are pieces of the shared block.

    ``read(size)`` returns at most one piece (:data:`BYTES_PIECE`), fewer bytes than asked
    when ``size`` is larger or negative, as a raw stream may; a full piece is the shared
    block itself, so a reader holds no copy. It never waits, and says so with
    ``nonblocking_source`` (servers.wsgi.FileWrapper): the event MPM's listener may read it.
    """

    __slots__ = ("left",)
    nonblocking_source = True

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int | None = -1) -> bytes:
        """The next piece: at most ``size`` bytes and one BYTES_PIECE; b"" at the end."""
        k = self.left if size is None or size < 0 else min(size, self.left)
        if k >= BYTES_PIECE:
            self.left -= BYTES_PIECE
            return _BLOCK
        self.left -= k
        return _BLOCK[:k]

    def close(self) -> None:
        """Nothing is held; a read after close() is at the end."""
        self.left = 0


def nbytes(environ, start_response, n_text: str):
    """``/bytes/N``: N bytes of ``x``, with Content-Length, sent in bounded pieces.

    N must be ASCII digits in 0..MAX_BYTES; anything else (``/bytes/%B2`` is ``²``, which
    ``str.isdigit`` calls a digit; a non-number; too large) is 400, not 404: the resource
    family exists and it is the parameter the client got wrong (RFC 9110 §15.5.1), which
    is how this route has always answered ``/bytes/abc``. (httpd's static-file stand-in,
    ``AliasMatch ^/bytes/([0-9]+)$``, answers 404 because no file matches.)

    The body is never built whole: a response larger than one piece is a
    ``wsgi.file_wrapper`` (PEP 3333) over a :class:`RepeatedBlock`, whose pieces are the
    same shared block (the last a slice of it), so a slow reader holds at most a piece or
    two in the server, whatever N, as httpd's file buckets do; on the event MPM the
    listener sends it as the client reads (write completion), so a slow reader holds no
    worker thread either. A server without ``wsgi.file_wrapper`` (it is optional) gets an
    iterator of the same pieces. A smaller body is a single slice, sent with the head in
    one write.
    """
    n = ascii_int(n_text, MAX_BYTES)
    if n is None:
        return _plain(start_response, "400 Bad Request", f"N must be an integer 0..{MAX_BYTES}\n")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
    if n <= BYTES_PIECE:
        return [_BLOCK[:n]]
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None:
        return _pieces(n)
    return wrapper(RepeatedBlock(n), BYTES_PIECE)


def _pieces(n: int) -> Iterator[bytes]:
    """The pieces of a RepeatedBlock of ``n`` bytes, for a server without ``wsgi.file_wrapper``."""
    source = RepeatedBlock(n)
    while piece := source.read(BYTES_PIECE):
        yield piece


def sleep(environ, start_response) -> list[bytes]:
    """``/sleep?ms=N``: hold the worker N ms (ASCII digits, at most MAX_SLEEP_MS; else 400), then answer."""
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    ms = ascii_int(qs.get("ms", ["0"])[0], MAX_SLEEP_MS)
    if ms is None:
        return _plain(start_response, "400 Bad Request", f"ms must be an integer 0..{MAX_SLEEP_MS}\n")
    time.sleep(ms / 1000)
    return _plain(start_response, "200 OK", f"slept {ms} ms\n")


def stream(environ, start_response) -> Iterator[bytes]:
    """``/stream?n=N``: N lines (default 3, at most MAX_STREAM_PIECES) yielded one by one, with no
    Content-Length, so the server frames the body itself: chunked to HTTP/1.1, closed to HTTP/1.0
    (RFC 9112 §6.1, §6.3), as httpd does for a CGI script that sends no length."""
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    n = ascii_int(qs.get("n", ["3"])[0], MAX_STREAM_PIECES)
    if n is None:
        return iter(_plain(start_response, "400 Bad Request", f"n must be an integer 0..{MAX_STREAM_PIECES}\n"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (b"piece %d\n" % i for i in range(n))


def app(environ, start_response):
    """Route a request to one of the built-in handlers."""
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    if path == "/":
        if method in ("GET", "HEAD"):
            return hello(environ, start_response)
        if method == "OPTIONS":
            start_response("200 OK", [("Allow", "GET, HEAD, OPTIONS"), ("Content-Length", "0")])
            return []
        return _plain(start_response, "405 Method Not Allowed", "method not allowed\n",
                      [("Allow", "GET, HEAD, OPTIONS")])
    if path == "/echo":
        return echo(environ, start_response)
    if path.startswith("/bytes/"):
        return nbytes(environ, start_response, path[7:])
    if path == "/sleep":
        return sleep(environ, start_response)
    if path == "/page":
        return page(environ, start_response)
    if path == "/status/204":
        start_response("204 No Content", [])  # no Content-Length: a 204 has no content (RFC 9110 §8.6)
        return []
    if path == "/stream":
        return stream(environ, start_response)
    if path == "*" and method == "OPTIONS":
        start_response("200 OK", [("Allow", "GET, HEAD, POST, OPTIONS"), ("Content-Length", "0")])
        return []
    return _plain(start_response, "404 Not Found", "not found\n")
