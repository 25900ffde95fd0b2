"""The access log: mod_log_config's CustomLog files, opened by the parent and written by every child.

httpd opens its transfer logs in the parent (``open_multi_logs``, at start-up and again on
every restart) and its children inherit the descriptors. So does :class:`AccessLog`: the
parent opens each CustomLog once, ``O_WRONLY | O_APPEND | O_CREAT``, and every child and
thread writes each line with a single ``write()``. On an O_APPEND file the kernel appends the
whole buffer at once, so lines of concurrent processes never interleave (httpd's
``ap_default_log_writer`` copies a line into one buffer for the same reason).

Rotation: ``-k graceful`` and ``-k restart`` make the parent open the files again by name,
so a log renamed away gets a new file and the next generation of children writes there,
while the old children finish their requests into the file they hold; no line is lost or
torn (docs/logging.md). With no CustomLog the server has no AccessLog at all, and the
request path pays one ``if`` (``serve.py``).

The line itself is rendered by ``servers.http.logformat`` (sans-IO); this module gathers what
it needs from the connection, the request and the response.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Sequence

from ..config import STDERR, LogTarget
from ..http.logformat import Entry, LogFormat, compile_format
from .log import ErrorLog

#: the environ key where :meth:`AccessLog.timed` notes when the request reached the application
STARTED = "mpm_harness.request_time"
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class _Log:
    """One open CustomLog: its descriptor, its compiled format, its name for error messages."""

    __slots__ = ("fd", "format", "name", "failing")

    def __init__(self, fd: int, fmt: LogFormat, name: str) -> None:
        self.fd = fd
        self.format = fmt
        self.name = name
        self.failing = False  # a write failed: said once in the error log until one succeeds


class AccessLog:
    """Every CustomLog of one configuration, open; shared by the parent and (inherited) its children."""

    def __init__(self, logs: Sequence[_Log], error_log: ErrorLog, server_name: str | None = None) -> None:
        self.logs = tuple(logs)
        self.error_log = error_log
        needs = frozenset().union(*(log.format.needs for log in self.logs))
        self.needs_local = "local" in needs
        self.needs_bytes_in = "bytes_in" in needs
        self.canonical_name, self.canonical_port = canonical(server_name)

    @classmethod
    def open(cls, targets: Sequence[LogTarget] | None, error_log: ErrorLog,
             server_name: str | None = None) -> "AccessLog | None":
        """Open ``targets`` (a configuration's CustomLog), or None when there is none; ``server_name`` is
        its ServerName (%v, %p). Raises OSError (with its filename) for a file that cannot be opened;
        nothing stays open then."""
        if not targets:
            return None
        logs: list[_Log] = []
        try:
            for target in targets:
                fd = sys.stderr.fileno() if target.path == STDERR else os.open(target.path, _FLAGS, 0o644)
                logs.append(_Log(fd, compile_format(target.format), target.path))
        except OSError:
            cls(logs, error_log).close()
            raise
        return cls(logs, error_log, server_name)

    def close(self) -> None:
        """Close the files (the parent, once its children hold their own copies); stderr stays open."""
        for log in self.logs:
            if log.name != STDERR:
                try:
                    os.close(log.fd)
                except OSError:
                    pass

    def timed(self, app: Callable) -> Callable:
        """``app``, noting in the environ when each request reaches it (httpd's r->request_time, read
        by %t and %D). Only a server with an access log wraps its application."""
        clock = time.time

        def timed_app(environ, start_response):
            environ[STARTED] = clock()
            return app(environ, start_response)

        return timed_app

    # -- the three ways a request ends --------------------------------------------------------
    def request(self, conn, req, response, environ: dict) -> None:
        """Log a request the application answered (serve.py, after the response went out)."""
        keep = response.keep_alive and conn.body_error is None
        self._write(conn, req, environ, response.status or 0, *_sent(response), keep, conn.broken)

    def failed(self, conn, req, response, environ: dict, status: int, answer: bytes | None) -> None:
        """Log a request whose application failed: ``answer`` is the error response sent for it (None
        when none went out: the response was cut, or the client had gone)."""
        if answer is None:
            self._write(conn, req, environ, status, *_sent(response), False, True)
        else:
            self._write(conn, req, environ, status, *_answer(answer), False, False)

    def refused(self, conn, status: int, answer: bytes | None) -> None:
        """Log a request the server refused before running it (a 400, 408, 414, 431...; its head may
        never have been parsed); ``answer`` is the error response, None when it could not be sent."""
        self._write(conn, None, None, status, *_answer(answer or b""), False, answer is None)

    # -- the line -----------------------------------------------------------------------------
    def _write(self, conn, req, environ: dict | None, status: int, head: Sequence[bytes], length: int | None,
               head_bytes: int, body_bytes: int, keep: bool, aborted: bool) -> None:
        """Render the entry once per log and write each line with one write(); never raises (a full
        disk must not fail a request), but says so in the error log (httpd's AH00646)."""
        end = time.time()
        ctx = conn.ctx
        keepalives, conn_status = keepalive_fields(conn.keepalives, keep, ctx.policy.max_requests)
        entry = Entry(req, conn.client, conn.client_port, self.canonical_name or ctx.server_name, self.canonical_port,
                      status, head, length,
                      head_bytes, body_bytes, _bytes_in(req, conn) if self.needs_bytes_in else None, environ,
                      environ.get(STARTED, end) if environ is not None else end, end,
                      keepalives, "X" if aborted else conn_status)
        if self.needs_local:
            try:
                entry.local = conn.sock.getsockname()[:2]
            except OSError:
                pass
        for log in self.logs:
            try:
                os.write(log.fd, log.format.render(entry))
                log.failing = False
            except Exception as exc:  # an OSError, or a bug in a format item: the request goes on
                if not log.failing:
                    log.failing = True
                    self.error_log.log("warn", f"Error writing to {log.name}: {exc!r}", "AH00646")


def canonical(server_name: str | None) -> tuple[str | None, int]:
    """httpd's canonical name and port of the server (%v, %p): ServerName's host and port; without a
    port in ServerName, httpd's main server has none and %p shows http's default, 80."""
    if not server_name:
        return None, 80
    host, sep, port = server_name.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host, int(port)
    return server_name, 80


def keepalive_fields(before: int, kept: bool, max_requests: int) -> tuple[int, str]:
    """httpd's ``%k`` and ``%X`` for a response after ``before`` keep-alive continuations.

    mod_log_config reads ``c->keepalives`` after ap_set_keepalive counted this response's
    continuation (or, when MaxKeepAliveRequests ends the connection, the refused one): %k
    is that count less one, and %X is ``+`` only while MaxKeepAliveRequests leaves room
    for more. So, as in httpd, the last response of a connection closed by the client shows
    one less than its position, and the last one MaxKeepAliveRequests allows shows ``-``.
    """
    after = before + 1 if kept or (max_requests and before == max_requests) else before
    room = not max_requests or max_requests - after > 0
    return (after - 1 if after else 0), ("+" if kept and room else "-")


def _sent(response) -> tuple[Sequence[bytes], int | None, int, int]:
    """(the application's header field lines, the length the body was framed with, head size, body
    size) of a WSGIResponse, read only when a line is written: no copy on the request path."""
    head = response.head_bytes
    return response.header_lines, response.length, head, response.bytes_sent - head


def _answer(answer: bytes) -> tuple[list[bytes], None, int, int]:
    """(head field lines, no framed length, head size, body size) of an error response we sent
    (nothing at all for b"")."""
    cut = answer.find(b"\r\n\r\n") + 4 if answer else 0
    return answer[:cut].split(b"\r\n")[1:-2], None, cut, len(answer) - cut


def _bytes_in(req, conn) -> int | None:
    """mod_logio's ``%I``: the request head as received (its fields with one space after each colon, as
    clients send them) and the body bytes the application read; unknown for a refused request."""
    if req is None:
        return None
    head = len(req.request_line) + 4 + sum(len(name) + len(value) + 4 for name, value in req.headers)
    return head + getattr(conn.body, "consumed", 0)
