"""uWSGI serving a WSGI app over HTTP, as processes or processes x threads (``uwsgi-processes``, ``uwsgi-threads``).

``uwsgi --master --http11-socket 127.0.0.1:0 --module APP ...`` (the built-in
``servers.apps:app`` by default; any ``module:callable`` works) runs in its own
session, with a command line built from our directives (:func:`uwsgi_settings`),
validated first by :func:`servers.config.load_config` against the closest
MPM's rules -- ``uwsgi-processes`` as prefork (StartServers processes, one
thread each), ``uwsgi-threads`` as worker (StartServers processes x
ThreadsPerChild threads) -- so a bad key or value raises the same
:class:`~servers.config.ConfigError` as for our MPMs.

Fixed choices: ``--http11-socket`` (uWSGI's HTTP/1.1 protocol with
keep-alive; the plain ``--http-socket`` closes after every response and gave
thousands of read errors under keep-alive load), or ``--http-socket`` for
KeepAlive Off; ``--master`` (a parent that respawns workers and handles the
signals); ``--need-app`` (exit when the app does not load, instead of serving
500s); ``--enable-threads`` (so an app's own threads run in the processes
flavour too); ``--disable-logging`` (no access log, like the other servers);
no ``--lazy-apps``: the app is imported once in the master and the workers
are forked from it, as our MPMs do (their parent loads the app before it
forks), so memory compares like with like. An app that opens sockets at
import shares them across workers, exactly as under our MPMs.

Signals (uWSGI's own differ from httpd's): graceful() sends HUP (graceful
reload: workers finish their requests, the master re-execs itself under the
same PID); restart() sends QUIT, which ``--die-on-term`` turns into uWSGI's
brutal reload; graceful_stop() writes ``q`` to the master FIFO
(``--master-fifo RUN/master.fifo``), uWSGI's graceful shutdown (no signal
means that in uWSGI 2.0; hooking ``gracefully_kill_them_all`` to a signal
with ``--hook-master-start unix_signal:...`` runs it in signal context and
hung the master under load here); stop() sends INT
(uWSGI's immediate shutdown, ``uwsgi --stop``), then SIGKILL to the group as
for every server. Without ``--die-on-term``, TERM would mean "reload"; with
it, TERM stops as it does for every other server. uWSGI keeps no scoreboard
(it has a stats socket, not /server-status), so ``status()`` raises
NotApplicable. The directive table is in docs/reference-servers.md.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import ServerConfig
from ..launcher import LaunchError, child_env, listening_ports, spawn
from .peer import (DYNAMIC_POOL_DIRECTIVES, PeerHandle, app_server_lacks, free_port, plan_directives, record_command,
                   request_head_limit, run_files, url_host)

#: its own extra: a failed compile must not cost the other peers (pyproject.toml)
INSTALL = "pip install -e '.[uwsgi]'"
DEFAULT_APP = "servers.apps:app"
#: uWSGI flavour -> the MPM whose directives and defaults it is configured with
CLOSEST_MPM = {"processes": "prefork", "threads": "worker"}
SOCKET_FLAGS = ("--http11-socket", "--http-socket")
#: what uWSGI logs when its port was taken between the pick and its bind
BIND_FAILED = "Address already in use"
#: uWSGI's largest --buffer-size (a 16-bit packet size)
MAX_BUFFER = 65535
#: --reload-mercy standing for httpd's GracefulShutdownTimeout 0 ("wait for ever")
FOREVER = 86400

KNOBS = {
    "MaintenanceInterval": "an mpm-harness knob",
    "ServerName": "uWSGI names itself by its socket",
    "LogLevel": "uWSGI has no log levels (its log is everything it prints)",
}
#: ServerConfig fields turned into uWSGI options (as far as their values allow)
MAPPED = frozenset((
    "Listen", "StartServers", "ThreadsPerChild", "KeepAlive", "KeepAliveTimeout", "MaxKeepAliveRequests", "Timeout",
    "RequestReadTimeout", "GracefulShutdownTimeout", "ListenBacklog", "LimitRequestLine", "LimitRequestFields",
    "LimitRequestFieldSize", "LimitRequestBody", "MaxConnectionsPerChild", "PidFile", "ErrorLog", "AcceptFilter",
))


def binary() -> str | None:
    """The ``uwsgi`` built for this Python (beside its interpreter first: a uwsgi from another
    Python's environment embeds that Python), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "uwsgi")
    return here if os.access(here, os.X_OK) else shutil.which("uwsgi")


def unavailable(kind: str) -> str | None:
    """Why ``uwsgi-<kind>`` cannot start here (naming what to install), or None."""
    if binary() is None:
        return f"uwsgi not installed: {INSTALL} (it compiles from source: needs gcc and the Python headers)"
    return None


def lacks(kind: str) -> dict[str, str]:
    """Features of the launcher's interface uWSGI does not provide (see launcher.lacks)."""
    return app_server_lacks("uWSGI", status="a stats socket, no /server-status")


def version() -> str | None:
    """``uWSGI X.Y.Z``."""
    try:
        return f"uWSGI {importlib.metadata.version('uwsgi')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _secs(value: float) -> int:
    return max(1, int(math.ceil(value)))


def _somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4096


def _sockets(cfg: ServerConfig) -> list[tuple[str, str]]:
    flag = "--http11-socket" if cfg.KeepAlive else "--http-socket"
    return [(flag, f"{url_host(host)}:{port}") for host, port in cfg.Listen]


def with_ports(opts: list[tuple[str, str]], listen: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """``opts`` with each socket bound to ``listen``'s address, in order (the ports picked for ``:0``)."""
    addrs = iter(listen)
    out = []
    for flag, value in opts:
        if flag in SOCKET_FLAGS:
            host, port = next(addrs)
            value = f"{url_host(host)}:{port}"
        out.append((flag, value))
    return out


def _timeouts(cfg: ServerConfig, opts: list, unsupported: dict[str, str], notes: list[str]) -> None:
    # one --socket-timeout bounds every read and write, the wait for a kept-alive request included
    timeout = _secs(cfg.Timeout)
    opts.append(("--socket-timeout", str(timeout)))
    if not float(cfg.Timeout).is_integer():
        notes.append(f"Timeout {cfg.Timeout:g} rounded up to {timeout} s (uWSGI: whole seconds)")
    if cfg.KeepAlive and math.ceil(cfg.KeepAliveTimeout) != timeout:
        unsupported["KeepAliveTimeout"] = ("uWSGI waits for a kept-alive connection's next request with "
                                           f"--socket-timeout, which is Timeout ({timeout} s) here")
    if cfg.KeepAlive and cfg.MaxKeepAliveRequests != 0:
        unsupported["MaxKeepAliveRequests"] = "uWSGI has no per-connection request limit (always unlimited)"
    if any(getattr(cfg.RequestReadTimeout, s).enabled for s in ("header", "body")):
        unsupported["RequestReadTimeout"] = "uWSGI has no request read deadlines or minimum rates"
    mercy = _secs(cfg.GracefulShutdownTimeout) if cfg.GracefulShutdownTimeout else FOREVER
    opts += [("--reload-mercy", str(mercy)), ("--worker-reload-mercy", str(mercy))]


def _limits(cfg: ServerConfig, opts: list, unsupported: dict[str, str], notes: list[str]) -> None:
    backlog = min(cfg.ListenBacklog, _somaxconn())
    if backlog != cfg.ListenBacklog:
        notes.append(f"ListenBacklog {cfg.ListenBacklog} lowered to net.core.somaxconn {backlog} "
                     "(uWSGI refuses a larger --listen)")
    opts.append(("--listen", str(backlog)))
    head = request_head_limit(cfg)
    opts.append(("--buffer-size", str(min(MAX_BUFFER, head or MAX_BUFFER))))
    why = (f"uWSGI bounds the whole parsed request with --buffer-size (at most {MAX_BUFFER} bytes; "
           "set from these limits) and closes without a status when it is exceeded")
    for name in ("LimitRequestLine", "LimitRequestFields", "LimitRequestFieldSize"):
        unsupported[name] = why
    opts.append(("--limit-post", str(cfg.LimitRequestBody)))  # 0 = unlimited in both
    if cfg.MaxConnectionsPerChild:
        opts.append(("--max-requests", str(cfg.MaxConnectionsPerChild)))
        notes.append("MaxConnectionsPerChild -> --max-requests: uWSGI counts requests, httpd connections")
    if not cfg.AcceptFilter.defers("http"):
        opts.append(("--no-defer-accept", ""))  # uWSGI defers accept by default, as httpd's "http data"


def uwsgi_settings(kind: str, cfg: ServerConfig) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """Our effective configuration as uWSGI options.

    Returns (options as (flag, value) pairs, value "" for a bare flag; {directive: why it is
    not applied} for every directive whose effective value uWSGI cannot honour; notes on
    values changed to fit uWSGI). Values uWSGI honours anyway (MaxKeepAliveRequests 0,
    RequestReadTimeout with every stage off, KeepAliveTimeout equal to Timeout) count as applied.
    """
    opts: list[tuple[str, str]] = _sockets(cfg)
    opts += [("--master", ""), ("--die-on-term", ""), ("--need-app", ""), ("--enable-threads", ""),
             ("--disable-logging", ""),
             ("--processes", str(cfg.StartServers))]
    if kind == "threads":
        opts.append(("--threads", str(cfg.ThreadsPerChild)))
    unsupported: dict[str, str] = {}
    notes: list[str] = []
    _timeouts(cfg, opts, unsupported, notes)
    _limits(cfg, opts, unsupported, notes)
    pool = "uWSGI runs a fixed pool of StartServers processes" + (" x ThreadsPerChild threads" if kind == "threads"
                                                                  else "") + " (its cheaper mode is not used)"
    for name in DYNAMIC_POOL_DIRECTIVES:
        unsupported[name] = pool
    return opts, unsupported, notes


def plan(name: str, kind: str, overrides: Mapping[str, Any], config, required: tuple[str, ...] = ()):
    """(effective config, uWSGI options, notes) for a launch; NotApplicable for a required directive
    uWSGI cannot honour."""
    return plan_directives(name, CLOSEST_MPM[kind], overrides, config, required,
                           lambda cfg: uwsgi_settings(kind, cfg), mapped=MAPPED, knobs=KNOBS, server="uWSGI")


def command(opts: list[tuple[str, str]], *, app: str, pidfile: str, log_path: str, fifo: str) -> list[str]:
    """The uWSGI command line for ``opts`` serving ``app`` (``module:callable``)."""
    argv = [binary() or "uwsgi"]
    for flag, value in opts:
        argv += [flag, value] if value else [flag]
    return argv + ["--pidfile", pidfile, "--logto", log_path, "--master-fifo", fifo, "--module", app]


@dataclass
class UwsgiHandle(PeerHandle):
    """A running uWSGI master (see the module docstring for the signal mapping)."""

    SIGNALS = {
        "graceful": signal.SIGHUP,  # graceful reload
        "restart": signal.SIGQUIT,  # brutal reload (with --die-on-term)
        "stop": signal.SIGINT,  # immediate shutdown (uwsgi --stop)
    }

    #: the master FIFO (``--master-fifo``): "q" there is uWSGI's graceful shutdown
    fifo: str = ""
    #: how many worker processes the master forks (--processes)
    workers: int = 1

    def _check_ready(self, deadline: float) -> None:
        # one worker answers before the others have installed their signal handlers: a worker still
        # ignoring SIGHUP loses a graceful stop, and the master then waits for it for ever
        super()._check_ready(deadline)
        while not (self._fifo_open() and self._workers_catch_hup()):
            if self.proc.poll() is not None:
                raise self._exited()
            if time.monotonic() > deadline:
                raise self._not_ready(f"the master FIFO {self.fifo} was never opened")
            time.sleep(0.02)

    def _workers_catch_hup(self) -> bool:
        kids = self.pids()[1:]
        return len(kids) >= self.workers and all(_catches(pid, signal.SIGHUP) for pid in kids)

    def _fifo_open(self) -> bool:
        try:
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO until the master reads it
            return True
        except OSError:
            return False

    def graceful_stop(self) -> None:
        """Graceful stop: "q" to the master FIFO (workers finish their requests, within --reload-mercy)."""
        if self.proc.poll() is not None:
            raise LaunchError(f"{self.name}: server is not running (exit status {self.proc.returncode})")
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b"q")
        finally:
            os.close(fd)


def _catches(pid: int, sig: int) -> bool:
    """True if process ``pid`` has a handler installed for ``sig`` (its SigCgt mask in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next((line.split()[1] for line in f if line.startswith("SigCgt:")), "0")
    except OSError:
        return False
    return bool(int(mask, 16) >> (int(sig) - 1) & 1)


def _bind_failed(handle: UwsgiHandle, log_size: int, timeout: float) -> bool:
    """True if uWSGI exited because its port was taken (waits only until it listens or exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.proc.poll() is not None:
            return BIND_FAILED in handle.log_text()[log_size:]
        if handle.port in listening_ports(handle.pid):
            return False
        time.sleep(0.01)
    return False


def start(name: str, kind: str, overrides: dict, *, app: str | None, config, cpus, run_dir: str | None,
          env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float) -> UwsgiHandle:
    """Start uWSGI (not yet waited on, except for a port taken between its pick and uWSGI's bind).

    A ``:0`` Listen gets a free port picked here: uWSGI would bind ``:0`` anew, on another port,
    when its master re-execs on a graceful reload."""
    cfg, opts, notes = plan(name, kind, overrides, config, required)
    run_dir, own, pidfile, log_path = run_files(name, run_dir, cfg, "uwsgi")
    fifo = os.path.join(run_dir, "master.fifo")
    environ = {k: v for k, v in child_env(env).items() if not k.startswith("UWSGI_")}  # this command line only
    for attempt in range(3):
        listen = [(host, port or free_port(host)) for host, port in cfg.Listen]
        argv = command(with_ports(opts, listen), app=app or DEFAULT_APP, pidfile=pidfile, log_path=log_path,
                       fifo=fifo)
        record_command(run_dir, "uwsgi", argv, notes)
        log_size = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        proc = spawn(argv, log_path=log_path, cpus=cpus, env=environ, cwd=run_dir)
        host, port = listen[0]
        handle = UwsgiHandle(name=name, proc=proc, run_dir=run_dir, log_path=log_path, pidfile=pidfile,
                             url=f"http://{url_host(host)}:{port}", notes=tuple(notes), _own_run_dir=own,
                             server="uWSGI", bind_host=url_host(host), fifo=fifo,
                             workers=cfg.StartServers)
        picked = any(p == 0 for _, p in cfg.Listen)
        if picked and attempt < 2 and _bind_failed(handle, log_size, min(timeout, 5.0)):
            proc.wait()
            continue
        return handle
    return handle  # pragma: no cover - the loop always returns


__all__ = ["UwsgiHandle", "command", "lacks", "plan", "start", "unavailable", "uwsgi_settings", "version"]
