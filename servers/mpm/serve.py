"""One connection's read-parse-call-write loop, shared by every MPM's child loop.

This is httpd's ``ap_process_connection`` for HTTP/1.1 as the prefork and
worker MPMs run it: read a request (scoreboard ``R``), run the handler and
write the response (``W``), wait for the next request on a persistent
connection (``K``, bounded by KeepAliveTimeout), and end with a lingering
close (``C``: shut the write side, drain the client for at most 2 s per read
and 30 s in all; 2 s in all after a read timeout's 408, as mod_reqtimeout asks)
so that an early error response reaches the client instead of being destroyed
by an RST.

Errors of the client's socket are marked where they happen (:class:`ClientGone`,
raised by :meth:`Connection.send` and the receive path): they end the connection
silently. Any other exception out of the application is the application's, an
``OSError`` included: a 500 when nothing was sent yet, and its traceback in the
error log.

Timeouts: the wait for a next request uses KeepAliveTimeout; every other
read and every write uses Timeout (httpd core). They are set as
SO_RCVTIMEO / SO_SNDTIMEO on a blocking socket, so the common case of a
request arriving in one segment costs one recv() and one send() system call.
A client that sent part of a request and then stalls gets ``408`` and a
close; an idle keep-alive client is closed silently.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, TextIO

from ..http.errors import ClientDisconnected, ProtocolError
from ..http.limits import Limits
from ..http.parser import CLOSED, NEED_DATA, EndOfMessage, RequestReader
from ..http.persistence import KeepAlivePolicy
from ..http.response import CONTINUE, error_response
from ..wsgi import EMPTY_INPUT, InputStream, WSGIApp, WSGIResponse, build_environ, environ_template, run_app
from .scoreboard import BUSY_KEEPALIVE, BUSY_READ, BUSY_WRITE, CLOSING

RECV_SIZE = 65536
#: httpd's lingering close: at most 2 s per read, 30 s in all (2 s when "short")
LINGER_READ = 2.0
LINGER_TOTAL = 30.0
#: the most unread request body we drain to keep a connection alive
DISCARD_LIMIT = 1 << 20
#: what :func:`serve_requests` answers when it may not wait itself (the event MPM's workers):
#: the connection must wait for its next request, or for the rest of a request head
PARK_KEEPALIVE = "keepalive"
PARK_READ = "read"


def _timeval(seconds: float) -> bytes:
    sec = int(seconds)
    return struct.pack("ll", sec, int((seconds - sec) * 1e6))


@dataclass
class ServeContext:
    """What one worker unit (a prefork child, a worker thread) needs to serve connections."""

    app: WSGIApp
    policy: KeepAlivePolicy
    limits: Limits
    timeout: float
    server_name: str
    server_port: int
    stopping: Callable[[], bool]
    set_status: Callable[[int], None]
    record: Callable[[bytes, str, int], None]
    multithread: bool = False
    multiprocess: bool = True
    #: mod_status in front of the app: requests for this path go to ``status_app(conn)``
    #: (statuspage.status_handler); None = StatusLocation Off
    status_path: str | None = None
    status_app: Callable[["Connection"], WSGIApp] | None = None
    errors: TextIO = field(default_factory=lambda: sys.stderr)
    log: Callable[[str, str], None] = lambda level, msg: None
    #: mod_reqtimeout's header and body stages (None = stage off): see _Stage
    header_timeout: object | None = None
    body_timeout: object | None = None
    #: how a finished connection is closed: None = a blocking lingering close here;
    #: the event MPM hands the Connection to its listener instead
    linger: Callable[["Connection"], None] | None = None
    #: the threaded MPMs' record of when this thread's application last gave output (Watch)
    watch: "Watch | None" = None
    #: mod_log_config's CustomLogs (accesslog.AccessLog); None when none is configured, and then
    #: the request path pays one ``if`` for the access log
    access_log: object | None = None
    _template: dict | None = field(default=None, repr=False)

    def environ_template(self) -> dict:
        """The per-worker constant part of every environ, built once."""
        if self._template is None:
            self._template = environ_template(
                server_name=self.server_name, server_port=self.server_port, errors=self.errors,
                multithread=self.multithread, multiprocess=self.multiprocess,
            )
        return self._template


_clock = time.monotonic


class _Timeout(Exception):
    pass


class Abandoned(ConnectionAbortedError):
    """The request was answered by the watchdog after Timeout without output (Watch)."""


class Watch:
    """When one worker thread's application last gave output: the hung-application watchdog.

    httpd's Timeout bounds every wait for a CGI script's output (mod_cgi: "Timeout waiting
    for output from CGI script"; before the response head httpd answers 504, util_script.c
    "Script timed out before returning headers"). A WSGI application runs in the worker
    thread itself, and a Python thread cannot be killed, so the threaded MPMs do what can
    be done (docs/reliability.md): the child's main thread abandons a request whose
    application has given no output (no write, no body read) for Timeout -- it answers 504,
    or cuts a response already begun, and shuts the connection down -- and the child then
    exits gracefully, which is what finally ends the hung thread.

    ``since`` is when the application last got control back from the server; 0 while the
    server itself reads or writes (those waits have their own Timeout) and between
    requests. ``abandoned`` is set, under ``lock``, by the watchdog only; from then on the
    request's writes and reads raise :class:`Abandoned`, so the thread, if it ever comes
    back, cannot write after the watchdog's answer.
    """

    __slots__ = ("lock", "since", "conn", "response", "abandoned", "target")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since = 0.0
        self.conn: Connection | None = None
        self.response: WSGIResponse | None = None
        self.abandoned = False
        self.target: Callable[[bytes], object] | None = None  # the connection's own send

    def enter_io(self) -> None:
        """The server reads or writes for the application: not the application's time."""
        with self.lock:
            if self.abandoned:
                raise Abandoned("request abandoned after Timeout without output")
            self.since = 0.0

    def send(self, data: bytes) -> None:
        """The response's writer: ``target`` in server time, refused once abandoned."""
        with self.lock:
            if self.abandoned:
                raise Abandoned("request abandoned after Timeout without output")
            self.since = 0.0
        try:
            self.target(data)
        finally:
            self.since = _clock()

    def abandon(self, now: float, limit: float) -> tuple["Connection", "WSGIResponse", float] | None:
        """Take the request over if its application has been silent for more than ``limit``
        seconds: (connection, response, silent since), or None. Called by the watchdog."""
        with self.lock:
            since = self.since
            if self.abandoned or not since or now - since <= limit or self.conn is None:
                return None
            self.abandoned = True
            return self.conn, self.response, since


class ClientGone(ClientDisconnected, ConnectionError):
    """An operation on the client's socket failed: a send, a receive, a socket option.

    Raised where it happens, with the socket's error as its cause and its errno, so that
    every other exception, an ``OSError`` included, is known to be the application's own
    (a 500 and a logged traceback, docs/servers.md) however the application lets it
    through. httpd marks the connection aborted (``c->aborted``) at the same place, its
    core output filter, and leaves the error log alone (debug/trace levels only). It is a
    ConnectionError: an application that catches OSError around ``write()`` still catches
    it (mod_wsgi raises an OSError there too).
    """

    @classmethod
    def of(cls, exc: OSError) -> "ClientGone":
        """The ClientGone for the socket error ``exc`` (same errno and message)."""
        return cls(exc.errno, exc.strerror or str(exc) or type(exc).__name__)


def _refuse(data: bytes) -> None:
    """The writer of a connection whose socket failed: nothing more goes out (httpd's
    ``c->aborted``), so bytes after a partial write can never be taken for a response."""
    raise ClientGone(errno.EPIPE, "the client connection failed earlier")


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(RECV_SIZE)
    except (BlockingIOError, socket.timeout):
        # SO_RCVTIMEO expired (EAGAIN on a blocking socket)
        raise _Timeout() from None
    except ConnectionResetError:
        return b""
    except OSError as exc:
        raise ClientGone.of(exc) from exc


class _Stage:
    """One mod_reqtimeout stage in progress (RequestReadTimeout header= or body=).

    The stage must finish by ``deadline``; with MinRate every ``rate`` bytes
    received buy one more second, up to ``hard`` (the stage's maximum, or no
    limit for a body stage without one, as mod_reqtimeout).
    """

    __slots__ = ("deadline", "hard", "rate")

    def __init__(self, spec, now: float) -> None:
        self.deadline = now + spec.timeout
        if spec.max_timeout:
            self.hard = now + spec.max_timeout
        else:
            self.hard = float("inf") if spec.min_rate else self.deadline
        self.rate = spec.min_rate

    def got(self, n: int) -> None:
        """Extend the deadline for ``n`` bytes received (MinRate)."""
        if self.rate:
            self.deadline = min(self.deadline + n / self.rate, self.hard)


class Connection:
    """One client connection's state across its requests (httpd recycles a pool per connection too).

    prefork and worker drive it with :func:`serve_connection`; the event MPM's listener
    reads heads with :func:`read_request` without waiting, and its workers run
    :func:`serve_requests` without waiting.
    """

    __slots__ = ("sock", "ctx", "reader", "client", "client_port", "keepalives", "served", "rcv_timeout",
                 "req", "body", "body_error", "sent_100", "template", "body_stage", "raw_send", "broken",
                 "short_linger", "defer_body", "deferred")

    def __init__(self, sock: socket.socket, addr, ctx: ServeContext) -> None:
        self.sock = sock
        self.ctx = ctx
        self.reader = RequestReader(ctx.limits)
        self.client = addr[0] if isinstance(addr, tuple) else str(addr)
        self.client_port = addr[1] if isinstance(addr, tuple) else 0
        self.keepalives = 0  # keep-alive continuations granted so far
        self.served = 0
        self.rcv_timeout = 0.0  # the SO_RCVTIMEO now set on the socket
        self.body_stage: _Stage | None = None
        self.req = None
        self.body: InputStream | None = None
        self.body_error: BaseException | None = None
        self.sent_100 = False
        self.template = ctx.environ_template()
        #: writes response bytes (through :meth:`send`); the event MPM swaps in a writer that
        #: can leave a tail for its listener to finish (write completion)
        self.raw_send = sock.sendall
        #: a send to the client failed (ClientGone): nothing more is sent on this connection
        self.broken = False
        #: takes the rest of a wsgi.file_wrapper body (WSGIResponse.defer): only the event MPM's
        #: writer, whose listener finishes it (write completion); None = iterated in the worker
        self.defer_body = None
        #: the last response's body went on in ``defer_body``'s writer (WSGIResponse.deferred)
        self.deferred = False
        #: a read timed out (408): the lingering close lasts 2 s in all, not 30 s (mod_reqtimeout's
        #: "short-lingering-close" connection note)
        self.short_linger = False

    def send(self, data: bytes) -> None:
        """Write response bytes; a failure of the client's socket is raised as ClientGone.

        A try block costs nothing in CPython 3.11 until something is raised: the one
        extra call is the whole price on the common path.
        """
        try:
            self.raw_send(data)
        except ClientGone:
            raise
        except OSError as exc:
            self.broken = True
            self.raw_send = _refuse
            raise ClientGone.of(exc) from exc

    def setup_blocking(self, head_read: bool = False) -> None:
        """Blocking socket with kernel timeouts: Timeout for writes; the first read waits
        Timeout, or less when it waits for a head (``head_read`` False) and the header
        stage of RequestReadTimeout is shorter. Raises ClientGone when the socket fails."""
        sock = self.sock
        ctx = self.ctx
        try:
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(ctx.timeout))
        except OSError as exc:
            raise ClientGone.of(exc) from exc
        first = ctx.timeout
        if ctx.header_timeout is not None and not head_read:
            first = min(first, ctx.header_timeout.timeout)
        self.rcv_timeout = -1.0
        self.set_rcv_timeout(first)

    def set_rcv_timeout(self, seconds: float) -> None:
        """Make the next recv wait at most ``seconds``: SO_RCVTIMEO, changed only when it must.

        A wait more than 50 ms longer than wanted is never left in place; a shorter one is kept
        unless it is over a second short (the caller just loops), so a dribbling
        client does not cost one setsockopt per read.
        """
        cur = self.rcv_timeout
        if cur > seconds + 0.05 or cur < seconds - 1.0:
            seconds = max(seconds, 0.001)  # 0 would mean "wait forever"
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            except OSError as exc:
                raise ClientGone.of(exc) from exc
            self.rcv_timeout = seconds

    def recv_within(self, stage: "_Stage | None", timeout: float) -> bytes:
        """recv() bounded by Timeout and by ``stage``'s deadline; raises _Timeout when either passes."""
        while True:
            wait = timeout
            if stage is not None:
                left = stage.deadline - time.monotonic()
                if left <= 0:
                    raise _Timeout()
                wait = min(wait, left)
            self.set_rcv_timeout(wait)
            try:
                data = _recv(self.sock)
            except _Timeout:
                if stage is not None and stage.deadline - time.monotonic() > 0 and wait < timeout:
                    continue  # woke before the stage deadline (SO_RCVTIMEO was shorter): wait on
                raise
            if stage is not None:
                stage.got(len(data))
            return data

    def pull(self) -> bytes:
        """The body reader behind wsgi.input: next body bytes, b"" at the end."""
        watch = self.ctx.watch
        if watch is None:
            return self._pull()
        watch.enter_io()  # reading the body is the server's time, not the application's
        try:
            return self._pull()
        finally:
            watch.since = _clock()

    def _pull(self) -> bytes:
        req = self.req
        if req.expect_continue and not self.sent_100 and not self.body.consumed:
            self.sent_100 = True
            self.send(CONTINUE)  # RFC 9110 §10.1.1: the client waits for this
        reader = self.reader
        try:
            while True:
                ev = reader.next_event()
                if ev is NEED_DATA:
                    # the body stage of RequestReadTimeout starts with the first wait for body bytes
                    stage = self.body_stage
                    if stage is None and self.ctx.body_timeout is not None:
                        stage = self.body_stage = _Stage(self.ctx.body_timeout, time.monotonic())
                    reader.feed(self.recv_within(stage, self.ctx.timeout))
                    continue
                if isinstance(ev, EndOfMessage):
                    return b""
                return ev
        except _Timeout:
            err = ProtocolError(408, "timed out reading the request body")
            self.body_error = err
            self.short_linger = True
            raise err from None
        except (ProtocolError, ClientDisconnected) as exc:
            self.body_error = exc
            raise

    def fail(self, exc: ProtocolError, method: str = "GET", log: bool = True) -> None:
        """Answer a protocol error of a request the server refused before running it, log it (the
        error log at info when ``log``, and the access log), then close gracefully (RFC 9112 §9.6)."""
        if log:
            self.ctx.log("info", f"{self.client}: {exc.status} {exc.detail}")
        answer = self.send_error(exc, method)
        if self.ctx.access_log is not None:
            self.ctx.access_log.refused(self, exc.status, answer)
        if answer is not None:
            self.close_gracefully()

    def send_error(self, exc: ProtocolError, method: str = "GET") -> bytes | None:
        """Send the error response for ``exc``; returns it, or None when it could not be sent."""
        answer = error_response(exc.status, exc.detail, method=method)
        try:
            self.send(answer)
        except OSError:
            return None
        return answer

    def close_gracefully(self) -> None:
        """httpd's lingering close: shut the write side and drain, here or in the event listener
        (after a read timeout's 408 for 2 s in all: ``short_linger``)."""
        ctx = self.ctx
        if ctx.linger is None:
            _lingering_close(self.sock, ctx.set_status, LINGER_READ if self.short_linger else LINGER_TOTAL)
        else:
            ctx.linger(self)


def read_request(conn: Connection, wait: bool = True):
    """The next request head of ``conn``, parsed (RFC 9112 §2-§5); a protocol error is answered here.

    Returns the Request, or None when the connection is over: closed by the
    client, idle past KeepAliveTimeout, or a protocol error already answered
    (then closed gracefully, RFC 9112 §9.6).

    ``wait`` (prefork, worker) blocks on the socket for the head, through the
    keep-alive wait (scoreboard ``K``) and mod_reqtimeout's header stage. Without
    it (the event MPM, whose listener does the waiting) only bytes already read are
    parsed: PARK_KEEPALIVE when none are buffered, PARK_READ when a head is incomplete.
    """
    reader = conn.reader
    if not wait:
        if not reader.buffered:
            return PARK_KEEPALIVE
    else:
        ctx = conn.ctx
        set_status = ctx.set_status
        keepalives = conn.keepalives
        set_status(BUSY_KEEPALIVE if keepalives else BUSY_READ)
        # mod_reqtimeout's header stage: from accept for a first request, else from the first
        # byte; started lazily, when a head does not arrive in one read (the rare, slow case)
        stage = None
        header = ctx.header_timeout
        if keepalives == 0 and header is not None:
            stage = _Stage(header, time.monotonic())
    try:
        while True:
            event = reader.next_event()
            if event is NEED_DATA:
                if not wait:
                    return PARK_READ
                if keepalives and not reader.buffered and stage is None:
                    # the keep-alive wait for the first byte of the next request
                    conn.set_rcv_timeout(ctx.policy.timeout)
                    data = _recv(conn.sock)
                    if data:
                        set_status(BUSY_READ)
                else:
                    if stage is None and header is not None:
                        stage = _Stage(header, time.monotonic())
                    data = conn.recv_within(stage, ctx.timeout)
                reader.feed(data)
            elif isinstance(event, EndOfMessage):
                continue  # the end of a body-less request the application never read
            elif event is CLOSED:
                return None
            else:
                return event
    except _Timeout:
        if reader.buffered:
            conn.short_linger = True  # mod_reqtimeout: a slow client gets the 2 s linger, not 30 s
            conn.fail(ProtocolError(408, "request head not received in time (Timeout / RequestReadTimeout)"),
                      method=reader.method_hint)
        return None
    except ProtocolError as exc:
        conn.fail(exc, method=reader.method_hint)
        return None
    except ClientDisconnected:
        return None


def serve_requests(conn: Connection, req=None, *, wait: bool = True) -> str | None:
    """httpd's ap_process_connection for HTTP/1.1: requests in turn on one connection, from
    ``req`` (a head already parsed) or the next head, until it is over or must wait.

    Returns None once the connection is over: answered and closed gracefully, or to be
    closed by the caller. Without ``wait`` (event workers) it stops where the connection
    must wait instead, returning PARK_KEEPALIVE or PARK_READ (:func:`read_request`);
    also after a response whose body goes on in the listener (``conn.deferred``): a
    pipelined request waits for it there.
    """
    while True:
        if req is None:
            req = read_request(conn, wait)
            if req is None or req.__class__ is str:
                return req
        if not handle_request(conn, req):
            return None
        req = None
        if conn.deferred:
            return PARK_READ if conn.reader.buffered else PARK_KEEPALIVE


def handle_request(conn: Connection, req) -> bool:
    """Run the application for one request and write its response (scoreboard ``W``).

    Returns True when the connection may carry another request; False when it
    is over (a lingering close or an abort has already been done).
    """
    ctx = conn.ctx
    watch = ctx.watch
    if watch is None:
        return _handle_request(conn, req, ctx, conn.send)
    # the threaded MPMs: the watchdog may take the request over (Watch)
    watch.conn = conn
    watch.target = conn.send
    try:
        keep = _handle_request(conn, req, ctx, watch.send)
    finally:
        with watch.lock:
            abandoned = watch.abandoned
            watch.abandoned = False  # this thread came back: its next request is its own
            watch.since = 0.0
            watch.conn = watch.response = None
    # an abandoned request's connection was answered and shut down by the watchdog
    return keep and not abandoned


def _handle_request(conn: Connection, req, ctx: ServeContext, send) -> bool:
    reader = conn.reader
    ctx.set_status(BUSY_WRITE)
    conn.req = req
    conn.sent_100 = False
    conn.body_stage = None
    if req.chunked or req.content_length:
        body = conn.body = InputStream(conn.pull)
    else:
        reader.skip_end()
        body = conn.body = EMPTY_INPUT
    response = WSGIResponse(req, send, ctx.policy, conn.keepalives, ctx.stopping, body, conn.defer_body)
    watch = ctx.watch
    if watch is not None:
        watch.response = response
        watch.since = _clock()  # the application has control from here
    app = ctx.app
    if req.path == ctx.status_path:
        app = ctx.status_app(conn)  # httpd: <Location> SetHandler server-status, before any application
    environ = build_environ(req, body, conn.template, conn.client, conn.client_port)
    try:
        run_app(app, environ, response)
    except Exception as exc:
        return _request_failed(conn, ctx, req, response, exc, environ)
    conn.deferred = response.deferred
    if ctx.access_log is not None:
        ctx.access_log.request(conn, req, response, environ)
    if conn.broken:
        return False  # the application went on after the client's socket failed: nothing more goes out
    if response.close_error is not None and not isinstance(_origin(response.close_error), ClientDisconnected):
        # the response went out whole: log the application's error and carry on
        log_app_error(ctx, conn, "application error in close()", response.close_error)
    conn.served += 1
    ctx.record(req.request_line, conn.client, response.bytes_sent)
    if conn.body_error is not None or not response.keep_alive:
        conn.close_gracefully()
        return False
    if reader.in_body:
        # The application left body bytes unread: drop them so the next request parses.
        try:
            complete = body.discard(DISCARD_LIMIT)
        except Exception:
            complete = False
        if not complete:
            conn.close_gracefully()
            return False
    conn.keepalives += 1
    return True


def _origin(exc: BaseException | None) -> BaseException | None:
    """What an exception comes from: the client's connection (a ClientDisconnected, ClientGone
    included) or a refused request (a ProtocolError from wsgi.input), following the chain of
    causes and contexts, so an application that caught the server's error and raised its
    own is still recognised; None when the error is the application's own."""
    for _ in range(64):  # a chain built by hand may loop
        if exc is None or isinstance(exc, (ClientDisconnected, ProtocolError)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _request_failed(conn: Connection, ctx: ServeContext, req, response: WSGIResponse, exc: Exception,
                    environ: dict) -> bool:
    """The application raised ``exc``: answer, and log to the access log, as httpd would; always
    False (the connection is over)."""
    status, answer = _answer_failure(conn, ctx, req, response, exc)
    if ctx.access_log is not None:
        ctx.access_log.failed(conn, req, response, environ, status, answer)
    if answer is not None:
        conn.close_gracefully()
    return False


def _answer_failure(conn: Connection, ctx: ServeContext, req, response: WSGIResponse,
                    exc: Exception) -> tuple[int, bytes | None]:
    """Answer the failure ``exc`` of the application; returns the request's final status and the
    error response sent here (None when the response was cut off, or the client had gone: the
    connection is then over, else the caller closes it gracefully).

    An error of the client's connection is silent (httpd logs nothing for an aborted
    connection); a refused request body (413, 408, 400 from wsgi.input) is answered with
    its status; anything else is the application's failure: its traceback is logged and
    the client gets a 500, or, when the head is already out, an aborted response
    (docs/servers.md).
    """
    watch = ctx.watch
    if watch is not None and watch.abandoned:
        # the watchdog has answered this request already: a 504, or a cut-off response
        return ((response.status or 0) if response.head_sent else 504), None
    origin = _origin(exc) or conn.body_error
    if isinstance(origin, ClientDisconnected):
        return response.status or 0, None
    if origin is None:
        log_app_error(ctx, conn, "application error", exc)
        origin = ProtocolError(500, "")
    if response.head_sent or conn.broken:
        return response.status or 0, None  # nothing sane can follow a half-sent response: abort
    return origin.status, conn.send_error(origin, method=req.method)


def log_app_error(ctx: ServeContext, conn: Connection, what: str, exc: BaseException) -> None:
    """One error-log line for the exception, then its traceback, one line each."""
    ctx.log("error", f"{conn.client}: {what}: {exc!r}")
    for line in traceback.format_exception(exc)[1:]:
        for part in line.rstrip().splitlines():
            ctx.log("error", f"{conn.client}:   {part}")


def serve_connection(sock: socket.socket, addr, ctx: ServeContext) -> int:
    """Serve every request of one accepted connection, then close it; return the request count."""
    conn = Connection(sock, addr, ctx)
    try:
        conn.setup_blocking()
        serve_requests(conn)
        return conn.served
    except ClientDisconnected:
        return conn.served  # the client's socket failed (ClientGone): nothing to answer or log
    except OSError as exc:
        # not the client's socket (that is ClientGone) nor the application (handle_request
        # answers for it): the server's own failure, never silent
        log_app_error(ctx, conn, "connection error", exc)
        return conn.served
    finally:
        try:
            sock.close()
        except OSError:
            pass


def _lingering_close(sock: socket.socket, set_status, total: float = LINGER_TOTAL) -> None:
    """httpd's ap_lingering_close: shut the write side, then drain until EOF or timeout.

    At most LINGER_READ (SECONDS_TO_LINGER, 2 s) per read and ``total`` in all:
    MAX_SECS_TO_LINGER (30 s), or 2 s when mod_reqtimeout asked for the short form
    ("short-lingering-close", after its 408). No read outlasts ``total``.
    """
    set_status(CLOSING)
    try:
        sock.shutdown(socket.SHUT_WR)
        wait = min(LINGER_READ, total)
        sock.settimeout(wait)
        deadline = time.monotonic() + total
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if left < wait:
                wait = left
                sock.settimeout(wait)
            if not sock.recv(RECV_SIZE):
                break
    except OSError:
        pass
