"""The default router: hello, echo, bytes, sleep and server-status (see the package docstring)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

HELLO = b"Hello, World!"
MAX_BYTES = 64 * 1024 * 1024
MAX_SLEEP_MS = 60_000
_HELLO_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "13")]


def _plain(start_response, status: str, text: str, extra=()) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *extra])
    return [body]


def hello(environ, start_response) -> list[bytes]:
    """``GET /``: 13 bytes with Content-Length, the benchmark's request."""
    start_response("200 OK", _HELLO_HEADERS)
    return [HELLO]


def echo(environ, start_response) -> list[bytes]:
    """The server's own view of the parsed request, for differential conformance tests."""
    req = environ.get("mpm_harness.request")
    body = environ["wsgi.input"].read()
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
            "target": environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"],
            "version": environ["SERVER_PROTOCOL"],
            "headers": [[k[5:].replace("_", "-").title(), v] for k, v in environ.items() if k.startswith("HTTP_")],
        }
    doc["body"] = body.decode("latin-1")
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


def nbytes(environ, start_response, n_text: str) -> list[bytes]:
    """``/bytes/N``: N bytes of ``x``."""
    if not n_text.isdigit() or int(n_text) > MAX_BYTES:
        return _plain(start_response, "400 Bad Request", f"N must be an integer 0..{MAX_BYTES}\n")
    n = int(n_text)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
    return [b"x" * n]


def sleep(environ, start_response) -> list[bytes]:
    """``/sleep?ms=N``: hold the worker N ms (bounded), then answer."""
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        ms = int(qs.get("ms", ["0"])[0])
    except ValueError:
        ms = -1
    if not 0 <= ms <= MAX_SLEEP_MS:
        return _plain(start_response, "400 Bad Request", f"ms must be an integer 0..{MAX_SLEEP_MS}\n")
    time.sleep(ms / 1000)
    return _plain(start_response, "200 OK", f"slept {ms} ms\n")


def server_status(environ, start_response) -> list[bytes]:
    """mod_status: ``?auto`` machine-readable, HTML otherwise."""
    render = environ.get("mpm_harness.server_status")
    if render is None:
        return _plain(start_response, "404 Not Found", "no scoreboard in this server\n")
    auto = environ.get("QUERY_STRING", "") == "auto"
    text = render(auto)
    ctype = "text/plain; charset=ISO-8859-1" if auto else "text/html; charset=ISO-8859-1"
    body = text.encode("latin-1", "replace")
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


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
    if path == "/server-status":
        return server_status(environ, start_response)
    if path == "*" and method == "OPTIONS":
        start_response("200 OK", [("Allow", "GET, HEAD, POST, OPTIONS"), ("Content-Length", "0")])
        return []
    return _plain(start_response, "404 Not Found", "not found\n")
