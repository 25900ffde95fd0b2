"""What every MPM's child process shares: its environment, signal set-up and serve context.

httpd's children (``child_main`` in each MPM) inherit the listeners, the
scoreboard and the pipe of death from the parent and differ only in how they
accept and schedule connections. This module holds the common part; each MPM
module holds just its loop.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable

from ..http.limits import Limits
from ..http.persistence import KeepAlivePolicy
from ..http.response import SERVER_SOFTWARE
from ..wsgi import WSGIApp
from .accesslog import AccessLog
from .log import ErrorLog
from .scoreboard import Scoreboard
from .serve import ServeContext, serve_connection
from .statuspage import status_handler
from .status import render_auto, render_html

PR_SET_PDEATHSIG = 1
#: exit code a child uses when it cannot run at all (httpd's APEXIT_CHILDFATAL)
EXIT_CHILD_FATAL = 0xF
#: exit code of a child that stopped for lack of resources, EMFILE and the like (httpd's APEXIT_CHILDSICK)
EXIT_CHILD_SICK = 0x7


@dataclass
class ChildEnv:
    """Everything a freshly forked child receives from the parent."""

    cfg: object  # ServerConfig
    mpm: str
    slot: int
    generation: int
    listeners: list[socket.socket]
    pod_fd: int
    scoreboard: Scoreboard
    app: WSGIApp
    log: ErrorLog
    started: float
    server_port: int
    #: the CustomLogs the parent opened (accesslog.AccessLog), inherited; None when none is configured
    access_log: AccessLog | None = None
    #: a single-unit (prefork) child's ServeContext, built by the parent before it forked
    #: (prebuilt_serve_context); None: the child builds its own
    serve_template: ServeContext | None = None

    @property
    def defers_accept(self) -> bool:
        """Whether the listeners hold connections back until data arrives (AcceptFilter http data)."""
        return self.cfg.AcceptFilter.defers("http")  # type: ignore[attr-defined]


def _load_prctl():
    """libc's prctl, or None where there is none (not Linux)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Loaded with this module, i.e. in the parent before it forks: ctypes.CDLL builds a class of
# its own per call, and doing that in each child un-shared ~150 KiB of it (docs/performance.md,
# "Where a prefork child's memory goes").
_PRCTL = _load_prctl()


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies, so no child outlives it (Linux prctl)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


#: signals the parent blocks around fork(): a new child gets none of them before its own handlers
#: are set (it would run the parent's, which only record the signal in the child's copy of the
#: parent, and the child would miss a TERM sent just after it was forked)
FORK_BLOCKED = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGWINCH}


def accept_graceful_signal() -> None:
    """Unblock SIGUSR1 once the MPM's graceful handler is set (a pending one is delivered now)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


def common_child_setup(env: ChildEnv) -> None:
    """Signals and process state shared by all MPMs' children (httpd: ``child_init``).

    SIGTERM and SIGHUP end the child at once (default action); SIGINT is
    ignored (the parent handles Ctrl-C for the whole tree); SIGUSR1 is the
    graceful signal and each MPM installs its own handler for it.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGWINCH, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # what the parent blocked around fork(), but SIGUSR1: its handler comes with the MPM's loop
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_BLOCKED - {signal.SIGUSR1})
    die_with_parent()
    if os.getppid() == 1:
        os._exit(0)  # the parent died before prctl took effect
    mib = getattr(env.cfg, "BenchBallastMiB", 0)
    if mib:
        allocate_ballast(mib)


# -- testing knobs that inject a known regression (docs/gate.md); nothing here runs when they are 0

#: this child's memory ballast (BenchBallastMiB), kept alive for the life of the process
_ballast: bytearray | None = None
_PAGE = 4096


def allocate_ballast(mib: float) -> int:
    """Allocate ``mib`` MiB and write one byte per page, so every page is really this process's own
    (a fresh allocation maps the shared zero page until written: PSS and RSS would not grow)."""
    global _ballast
    n = int(mib * 2**20)
    ballast = bytearray(n)
    ballast[::_PAGE] = b"\x01" * len(range(0, n, _PAGE))
    _ballast = ballast
    return n


def with_cpu_work(app: WSGIApp, microseconds: int) -> WSGIApp:
    """``app`` preceded by a busy loop that burns ``microseconds`` of this thread's CPU time per call
    (BenchCPUWorkMicroseconds). Thread CPU time, not wall time: preemption on a busy machine does
    not shorten the work, and a thread waiting for the GIL is not counted."""
    ns = microseconds * 1000
    clock = time.thread_time_ns

    def busy_app(environ, start_response):
        end = clock() + ns
        while clock() < end:
            pass
        return app(environ, start_response)

    return busy_app


def status_renderer(env: ChildEnv) -> Callable[[bool], str]:
    """The ``/server-status`` page of this server, rendered from the shared scoreboard
    (ExtendedStatus decides whether totals and per-request details are in it)."""
    cfg = env.cfg
    extended = cfg.ExtendedStatus  # type: ignore[attr-defined]
    threads = cfg.ThreadsPerChild  # type: ignore[attr-defined]  # (1 on prefork)
    # httpd shows MaxRequestWorkers / ThreadsPerChild processes' worth of slots
    active = cfg.daemons_limit  # type: ignore[attr-defined]
    version = f"{SERVER_SOFTWARE} ({env.mpm})"

    def render(auto: bool) -> str:
        snap = env.scoreboard.snapshot()
        uptime = time.time() - snap.restart_time if getattr(snap, "restart_time", 0) else 0.0
        fn = render_auto if auto else render_html
        return fn(snap, mpm=env.mpm, server_version=version, active_slots=active,
                  threads_per_child=threads, uptime=uptime, extended=extended)

    return render


def serve_context(env: ChildEnv, thread: int, stopping: Callable[[], bool], *, multithread: bool,
                  watch=None) -> ServeContext:
    """The ServeContext of one worker unit (a prefork child or one worker thread); ``watch``
    is the thread's record for the hung-application watchdog (serve.Watch, threaded MPMs)."""
    cfg = env.cfg
    host = cfg.ServerName or "127.0.0.1"  # type: ignore[attr-defined]
    app = env.app
    work = getattr(cfg, "BenchCPUWorkMicroseconds", 0)
    if work:  # only then: with the knob at 0 the request path is exactly the same code
        app = with_cpu_work(app, work)
    access_log = env.access_log
    status = cfg.StatusLocation  # type: ignore[attr-defined]
    status_app = None
    if status is not None:
        status_app = status_handler(status_renderer(env), cfg.StatusRequire, env.log.log)  # type: ignore[attr-defined]
    if access_log is not None:  # only then: %t and %D need the time each request reached the app
        app = access_log.timed(app)
        if status_app is not None:
            status_app = _timed_status(status_app, access_log)
    return ServeContext(
        app=app,
        policy=KeepAlivePolicy.from_config(cfg),
        limits=Limits.from_config(cfg),
        timeout=cfg.Timeout,  # type: ignore[attr-defined]
        server_name=host,
        server_port=env.server_port,
        stopping=stopping,
        set_status=env.scoreboard.status_setter(env.slot, thread),
        record=_recorder(env, thread),
        multithread=multithread,
        multiprocess=True,
        status_path=status,
        status_app=status_app,
        log=env.log.log,
        header_timeout=_stage(cfg.RequestReadTimeout.header),  # type: ignore[attr-defined]
        body_timeout=_stage(cfg.RequestReadTimeout.body),  # type: ignore[attr-defined]
        watch=watch,
        access_log=access_log,
    )


def prebuilt_serve_context(env: ChildEnv) -> ServeContext:
    """The ServeContext of a single-unit child, built in the parent before it forks.

    What serve_context() builds for a prefork child is the same in every child except for its
    slot and its stop flag (unit_serve_context sets those). Built in the parent, its objects and
    the pages the building touches are shared by every child; built in each child, they cost
    each child ~0.2-0.3 MiB of private memory (docs/performance.md, "Where a prefork child's
    memory goes"). The environ template (PEP 3333's per-worker constant keys) is built here too.
    """
    ctx = serve_context(env, 0, _not_stopping, multithread=False)
    ctx.environ_template()
    return ctx


def unit_serve_context(env: ChildEnv, stopping: Callable[[], bool]) -> ServeContext:
    """A single-unit (prefork) child's ServeContext: the parent's prebuilt one pointed at this
    child's slot and stop flag (in place: after fork() the object is this child's own copy),
    or, when the parent built none, one built here."""
    ctx = env.serve_template
    if ctx is None:
        return serve_context(env, 0, stopping, multithread=False)
    ctx.stopping = stopping
    ctx.set_status = env.scoreboard.status_setter(env.slot, 0)
    ctx.record = _recorder(env, 0)
    return ctx


#: requests the parent serves itself before forking: past CPython 3.11's quickening of a
#: function's bytecode (its 8th call), so the children inherit it quickened
WARM_REQUESTS = 10
#: a request no client sends: the warm-up must not pre-fill the per-process memos (request-lines, Host
#: values) with what a benchmark or a health check sends, or it would flatter exactly that traffic
_WARM_REQUEST = b"GET /.mpm-harness-warm-up HTTP/1.1\r\nHost: warm-up.invalid\r\nConnection: close\r\n\r\n"
_WARM_BODY = b"warm\n"
#: seconds any step of the warm-up may block (all its data is sent before it is served)
_WARM_TIMEOUT = 5.0


def warm_serving_path(template: ServeContext, requests: int = WARM_REQUESTS) -> None:
    """Serve ``requests`` requests through the connection path in the parent, before it forks.

    What a child builds on its first request and keeps (memo entries, lazily built parser and
    response state, quickened bytecode) is built once here instead, in pages every child shares:
    ~0.3 MiB less per prefork child after traffic (docs/performance.md, "Where a prefork child's
    memory goes"). Each request comes from a connection to a listener of its own on 127.0.0.1,
    open for the warm-up only (never the server's listeners, so no client's connection is taken),
    and is answered by a built-in response: never the application, the logs or the scoreboard.
    Raises OSError when loopback cannot be used; the caller goes on without it.
    """
    ctx = dataclasses.replace(template, app=_warm_app, set_status=_ignore_status, record=_no_record,
                              log=_ignore_log, access_log=None, status_path=None, status_app=None)
    with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
        listener.settimeout(_WARM_TIMEOUT)
        for _ in range(requests):
            _warm_once(listener, ctx)


def _warm_once(listener: socket.socket, ctx: ServeContext) -> None:
    """One warm-up connection: send the request, serve it, read the answer to the end and check
    it is the built-in 200 (the serving path failed otherwise: its log is silenced here)."""
    with socket.create_connection(listener.getsockname(), timeout=_WARM_TIMEOUT) as client:
        sock, addr = listener.accept()
        if addr != client.getsockname():  # another local process raced us to the port
            sock.close()
            raise OSError(f"warm-up: unexpected connection from {addr}")
        client.sendall(_WARM_REQUEST)
        client.shutdown(socket.SHUT_WR)
        serve_connection(sock, addr, ctx)
        answer = b""
        while chunk := client.recv(4096):
            answer = (answer + chunk)[:64]  # only its status line is checked
        if not answer.startswith(b"HTTP/1.1 200 "):
            raise OSError(f"warm-up: unexpected answer {answer[:32]!r}")


def _warm_app(environ, start_response):
    """The warm-up's answer (PEP 3333), the size of a hello response."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(_WARM_BODY)))])
    return [_WARM_BODY]


def _ignore_status(status: int) -> None:
    """The warm-up has no scoreboard slot."""


def _ignore_log(level: str, message: str) -> None:
    """The warm-up writes nothing to the error log."""


def _recorder(env: ChildEnv, thread: int) -> Callable[[bytes, str, int], None]:
    """The scoreboard's per-request record of one worker unit: httpd counts accesses and keeps
    request details only with ExtendedStatus On."""
    if env.cfg.ExtendedStatus:  # type: ignore[attr-defined]
        return functools.partial(env.scoreboard.record_request, env.slot, thread)
    return _no_record


def _not_stopping() -> bool:
    """The stop flag of a context built in the parent, until a child sets its own."""
    return False


def _no_record(request_line: bytes, client: str, nbytes: int) -> None:
    """ExtendedStatus Off: no per-request record in the scoreboard."""


def _timed_status(for_connection, access_log):
    """The status handler with the access log's request clock (%t, %D), like the application."""
    return lambda conn: access_log.timed(for_connection(conn))


def _stage(spec):
    """A RequestReadTimeout stage, or None when it is off (timeout 0), as mod_reqtimeout."""
    return spec if spec.timeout > 0 else None
