"""What every app server behind the launcher shares (gunicorn, uWSGI, granian, waitress; mod_wsgi in part).

These servers are configured from our httpd directives rather than from an httpd.conf:
:func:`plan_directives` validates the directives as for the closest MPM and collects what the
server has no equivalent for (``Handle.notes``, or :class:`~servers.launcher.NotApplicable`
for a ``required`` one); :func:`run_files` and :func:`record_command` lay out the run
directory; :class:`PeerHandle` finds the port of a server that cannot report it and counts it
ready once the app answers. The launcher itself (``servers.launcher``) stays the one front
door: ``start``, ``available``, ``lacks``, ``server_version``. docs/reference-servers.md has
the directive tables.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..config import DIRECTIVES, load_config
from ..launcher import Handle, LaunchError, NotApplicable, listening_ports


@dataclass
class PeerHandle(Handle):
    """A Python app server (gunicorn, uWSGI, granian, waitress) on a kernel-chosen port.

    Its port is read from the listening sockets of its own process tree (psutil: granian's
    workers hold the socket, not its main process), and it is ready once ``GET /`` answers
    below 500 (the parent listens before its workers have loaded the app). It keeps no
    scoreboard: ``status()`` raises :class:`NotApplicable`.
    """

    #: the server's own name, for messages ("uWSGI")
    server: str = ""
    bind_host: str = "127.0.0.1"  # as it goes in a URL (IPv6 in brackets)
    status_path: str | None = None

    def _exited(self) -> LaunchError:
        return self._not_ready(f"{self.server} exited (status {self.proc.returncode}) before it was ready")

    def _find_url(self, deadline: float, timeout: float) -> None:
        while not self.url:
            ports = sorted({p for pid in self.pids() for p in listening_ports(pid)})
            if ports:
                self.url = f"http://{self.bind_host}:{ports[0]}"
                return
            if self.proc.poll() is not None:
                raise self._exited()
            if time.monotonic() > deadline:
                raise self._not_ready(f"not listening after {timeout:.0f}s")
            time.sleep(0.02)

    def _check_ready(self, deadline: float) -> None:
        wait_for_app(self, deadline, server=self.server)

    def status(self, timeout: float = 5.0):
        """Not applicable: these servers keep no scoreboard."""
        raise NotApplicable(f"{self.name} has no /server-status: {self.server} keeps no scoreboard")


def wait_for_app(handle: Handle, deadline: float, *, server: str, request_timeout: float = 2.0,
                 failure: Callable[[str], str | None] | None = None) -> None:
    """Block until the app answers ``GET /`` below 500: a server listens before its workers have
    loaded the app (gunicorn's arbiter, uWSGI's master, httpd's parent with mod_wsgi), and an
    app that fails to import answers 500.

    ``failure(log)`` names, from the error log so far, why the app cannot load (mod_wsgi's
    WSGI0110), to fail at once instead of at the deadline. Raises LaunchError, with the log's
    tail, when the server exits (``server`` names it), when ``failure`` finds a reason, or at
    ``deadline`` (``time.monotonic()``); each request waits at most ``request_timeout``.
    """
    while True:
        try:
            if handle.get("/", timeout=max(0.1, min(request_timeout, deadline - time.monotonic())))[0] < 500:
                return
        except OSError:  # not accepting yet, reset, or timed out: ask again
            pass
        why = failure(handle.log_text()) if failure else None
        if why:
            raise handle._not_ready(f"the app did not load: {why}")
        if handle.proc.poll() is not None:
            raise handle._not_ready(f"{server} exited (status {handle.proc.returncode}) before the app answered")
        if time.monotonic() > deadline:
            raise handle._not_ready("the app never answered GET / below 500 (see the error log)")
        time.sleep(0.02)


def app_server_lacks(server: str, *, status: str = "no /server-status") -> dict[str, str]:
    """What every app server lacks of the launcher's interface (``launcher.lacks``): httpd's
    scoreboard (mod_status's /server-status; ``status`` says what the server has instead) and
    the ``Keep-Alive: timeout=N, max=M`` response header httpd adds (http_protocol.c
    ap_set_keepalive). A server's own ``lacks`` adds what only it misses."""
    return {
        "scoreboard": f"{server} keeps no scoreboard ({status})",
        "keepalive-header": f"{server} sends no Keep-Alive: timeout=N, max=M response header",
    }


def url_host(host: str) -> str:
    """``host`` as it goes in a URL or a ``host:port`` bind string (IPv6 in brackets, RFC 3986 §3.2.2)."""
    return f"[{host}]" if ":" in host else host


#: httpd directives that size or bound its dynamic pool; a server running a fixed pool has no equivalent
DYNAMIC_POOL_DIRECTIVES = ("MinSpareServers", "MaxSpareServers", "MinSpareThreads", "MaxSpareThreads",
                           "MaxRequestWorkers", "ServerLimit", "ThreadLimit", "AsyncRequestWorkerFactor")


def show_value(value: Any) -> str:
    """A directive's value as httpd.conf writes it (On/Off, 0.5, 20)."""
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def plan_directives(name: str, mpm: str, overrides: Mapping[str, Any], config, required: Iterable[str],
                    settings: Callable[[Any], tuple[list, dict[str, str], list[str]]], *,
                    mapped: frozenset[str], knobs: Mapping[str, str], server: str) -> tuple[Any, list, list[str]]:
    """(effective config, the server's options, notes) for a reference server's launch.

    Our directives are validated as for MPM ``mpm`` (``servers.config.load_config``: the same
    ConfigError for a bad key or value), then ``settings(cfg)`` gives (options, {directive: why
    not applied}, notes). A directive neither ``mapped`` nor a ``knobs`` entry (ignored) is not
    applied. One that is not applied raises :class:`NotApplicable` when named in ``required``
    and is otherwise noted when the caller changed it from the MPM's default.
    """
    ours = dict(overrides)
    ours.setdefault("Listen", "127.0.0.1:0")
    cfg = load_config(mpm, config, ours)
    opts, unsupported, notes = settings(cfg)
    for key in DIRECTIVES:  # our other knobs (e.g. the Bench* testing knobs)
        if key not in mapped and key not in unsupported and key not in knobs:
            unsupported[key] = f"an mpm-harness knob {server} has no equivalent for"
    wanted = {str(k).strip().lower() for k in required}
    for key, why in unsupported.items():
        if key.lower() in wanted:
            raise NotApplicable(f"not applicable to {name}: {key}: {why}")
    default = load_config(mpm)
    named = {str(k).strip().lower() for k in overrides}
    changed = {k for k in DIRECTIVES if k.lower() in named or getattr(cfg, k) != getattr(default, k)}
    notes = [*cfg.notes, *notes]
    notes += [f"{k} {show_value(getattr(cfg, k))} not applied: {why}" for k, why in unsupported.items() if k in changed]
    notes += [f"{k} ignored: {why}" for k, why in knobs.items() if k in changed]
    return cfg, opts, notes


def request_head_limit(cfg: Any) -> int | None:
    """The largest request head our LimitRequestLine/Fields/FieldSize allow (None: unlimited), for a
    server that bounds the whole head with one size (uWSGI's --buffer-size, waitress's
    max_request_header_size) instead of httpd's three limits (core.c ap_read_request)."""
    if not (cfg.LimitRequestLine and cfg.LimitRequestFields and cfg.LimitRequestFieldSize):
        return None
    return cfg.LimitRequestLine + 2 + cfg.LimitRequestFields * (cfg.LimitRequestFieldSize + 2) + 2


def free_port(host: str) -> int:
    """A TCP port free on ``host`` just now, for a server that cannot report a kernel-chosen one or
    would lose it (uWSGI binds ``:0`` anew when its master re-execs on a graceful reload)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_files(name: str, run_dir: str | None, cfg: Any, server: str) -> tuple[str, bool, str, str]:
    """(run directory, whether the launcher made it, pidfile, error log) of a reference server's launch:
    a fresh temporary directory unless ``run_dir`` is given; PidFile and ErrorLog from ``cfg``, else
    ``RUN/<server>.pid`` and ``RUN/error.log``."""
    own = run_dir is None
    run_dir = run_dir or tempfile.mkdtemp(prefix=f"mpm-{name}-")
    pidfile = cfg.PidFile or os.path.join(run_dir, f"{server}.pid")
    return run_dir, own, pidfile, cfg.ErrorLog or os.path.join(run_dir, "error.log")


def record_command(run_dir: str, server: str, argv: list[str], notes: Iterable[str]) -> None:
    """Write ``RUN/<server>.args``: the command line (the whole configuration) and the notes, for the results."""
    with open(os.path.join(run_dir, f"{server}.args"), "w") as f:
        f.write(" ".join(argv[1:]) + "\n" + "".join(f"# note: {n}\n" for n in notes))


