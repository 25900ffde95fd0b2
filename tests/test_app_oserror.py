"""An OSError raised by the application is the application's error, not the client's (issue 14 #2).

The connection loop used to take any OSError for a failure of the client's socket: an
application that raised FileNotFoundError, ConnectionRefusedError, TimeoutError,
PermissionError or BrokenPipeError (its backend down, a file missing, its own pipe
broken) got no response at all and left no log line, on every MPM, while a ValueError
got its 500 and its traceback. Now errors of the client's socket are marked where they
happen (serve.ClientGone) and everything else the application raises is a 500 with its
traceback in the error log (docs/servers.md), as httpd answers a handler's failure:

* each of those OSErrors: 500, ``Connection: close``, ``application error: <repr>`` and
  the traceback (the raising function's frame) in the error log; the unit keeps serving;
* a BrokenPipeError from the application's own pipe is the application's too;
* a client that disconnects in the middle of a response (RST) leaves no error-log line,
  whether the server's own write fails or the application catches that failure from
  ``write()`` and raises its own error from it (the chain still leads to the client);
* on prefork, worker and event, each run with one unit, so the request that follows
  proves the unit came back.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

import pytest

from suites.wire import Conn, request, wait_until
from .serverutil import GET, ONE_UNIT, crash_lines

APP = "tests.test_app_oserror:app"
MPMS = ["prefork", "worker", "event"]

#: what an application's backend, file system or peer may raise, with realistic arguments
APP_ERRORS = {
    "FileNotFoundError": lambda: FileNotFoundError(errno.ENOENT, "No such file or directory", "/srv/missing.cfg"),
    "ConnectionRefusedError": lambda: ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    "TimeoutError": lambda: TimeoutError("backend did not answer in time"),
    "PermissionError": lambda: PermissionError(errno.EACCES, "Permission denied", "/srv/secret"),
    "BrokenPipeError": lambda: BrokenPipeError(errno.EPIPE, "Broken pipe"),
}
#: pieces of a streamed response, bounded: far more than the loopback socket buffers hold
PIECE = b"x" * 65536
MAX_PIECES = 2048


def _call_backend(name: str) -> None:
    """Where the application's OSError comes from (its frame must be in the logged traceback)."""
    raise APP_ERRORS[name]()


def _write_own_pipe() -> None:
    """The application's own pipe, whose reader is gone: a real EPIPE that is not the client's."""
    r, w = os.pipe()
    os.close(r)
    try:
        os.write(w, b"to a reader that left")  # Python ignores SIGPIPE: this raises BrokenPipeError
    finally:
        os.close(w)


def app(environ, start_response):
    """The failure modes of this module; anything else is tests.wsgi_apps.app."""
    path = environ["PATH_INFO"]
    if path.startswith("/oserror/"):
        _call_backend(path.rsplit("/", 1)[1])
    if path == "/own-pipe":
        _write_own_pipe()
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (PIECE for _ in range(MAX_PIECES))
    if path == "/write-reraise":
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            for _ in range(MAX_PIECES):
                write(PIECE)
        except OSError as exc:
            raise RuntimeError("streaming to the client failed") from exc
        return []
    from . import wsgi_apps

    return wsgi_apps.app(environ, start_response)


def _reset_after_head(port: int, path: bytes) -> None:
    """Ask for a long response, read its first bytes, then abort the connection (RST)."""
    with Conn(port) as c:
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        c.sock.settimeout(10)
        assert c.sock.recv(4096).startswith(b"HTTP/1.1 200")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("mpm", MPMS)
def test_application_oserror_is_a_logged_500(launch, mpm):
    h = launch(mpm, ONE_UNIT[mpm], app=APP)
    for name in APP_ERRORS:
        r = request(h.port, b"GET /oserror/%s HTTP/1.1\r\nHost: a\r\n\r\n" % name.encode())
        assert r.status == 500, (name, r.status)
        assert r.header("Connection") == "close"
        log = h.log_text()
        assert f"application error: {name}(" in log, (name, log[-2000:])
        assert "in _call_backend" in log  # the traceback, down to the frame that raised
    r = request(h.port, b"GET /own-pipe HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.status == 500
    log = h.log_text()
    assert "application error: BrokenPipeError(32, 'Broken pipe')" in log and "in _write_own_pipe" in log
    assert request(h.port, GET).status == 200  # the one unit keeps serving


@pytest.mark.parametrize("mpm", MPMS)
def test_client_disconnect_mid_response_is_silent(launch, mpm):
    h = launch(mpm, ONE_UNIT[mpm], app=APP)
    for path in (b"/stream", b"/write-reraise"):
        _reset_after_head(h.port, path)
        # the one unit answers again only once it is done with the aborted response
        wait_until(lambda: request(h.port, GET, timeout=10).status == 200, 15, what="the unit to serve again")
    assert crash_lines(h) == [], crash_lines(h)
    assert "connection error" not in h.log_text()
