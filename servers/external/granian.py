"""granian serving a WSGI app (``granian``): worker processes, each a Rust event loop and a pool of blocking threads.

``granian --interface wsgi --host 127.0.0.1 --port 0 --workers N
--blocking-threads T ... APP`` (the built-in ``servers.apps:app`` by default;
any ``module:callable`` works) runs in its own session with a command line
built from our directives (:func:`granian_settings`), validated first by
:func:`servers.config.load_config` against worker's rules (StartServers
processes x ThreadsPerChild threads), so a bad key or value raises the same
:class:`~servers.config.ConfigError` as for our MPMs.

Its model is between worker and event: a worker's connections wait in its
tokio event loop (an idle keep-alive connection holds no thread, as in our
event MPM) and the app runs on its ``--blocking-threads`` (worker's
ThreadsPerChild). ``--http1-header-read-timeout`` bounds both the wait for a
kept-alive connection's next request and the reading of a request head
(measured on granian 2.8: an idle connection and a half-sent head are both
closed after it), so it carries KeepAliveTimeout. Fixed choices: ``--http 1``
(HTTP/1.1 only, like our MPMs), ``--no-ws``, ``--no-access-log``,
``--respawn-failed-workers`` (a crashed worker is replaced, as httpd's parent
does).

Signals: graceful() and restart() send HUP (granian respawns its workers
gracefully; it has no hard restart); graceful_stop() sends TERM and stop()
sends INT (both are granian's graceful shutdown, bounded by
``--workers-kill-timeout``), then SIGKILL to the group as for every server.
granian keeps no scoreboard, so ``status()`` raises NotApplicable. The
directive table is in docs/reference-servers.md.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import ServerConfig
from ..launcher import child_env, spawn
from .peer import (DYNAMIC_POOL_DIRECTIVES, PeerHandle, app_server_lacks, plan_directives, record_command, run_files,
                   url_host)

INSTALL = "pip install -e '.[peers]'"
DEFAULT_APP = "servers.apps:app"
#: granian flavour -> the MPM whose directives and defaults it is configured with
CLOSEST_MPM = {"wsgi": "worker"}
#: granian's smallest --backlog
MIN_BACKLOG = 128
#: our log levels -> granian's
LOG_LEVELS = {"emerg": "critical", "alert": "critical", "crit": "critical", "error": "error", "warn": "warning",
              "notice": "info", "info": "info", "debug": "debug"}

KNOBS = {
    "MaintenanceInterval": "an mpm-harness knob",
    "ServerName": "granian names itself by its bind address",
}
#: ServerConfig fields turned into granian options (as far as their values allow)
MAPPED = frozenset((
    "Listen", "StartServers", "ThreadsPerChild", "KeepAlive", "KeepAliveTimeout", "MaxKeepAliveRequests", "Timeout",
    "RequestReadTimeout", "GracefulShutdownTimeout", "ListenBacklog", "LimitRequestLine", "LimitRequestFields",
    "LimitRequestFieldSize", "LimitRequestBody", "MaxConnectionsPerChild", "LogLevel", "PidFile", "ErrorLog",
    "AcceptFilter",
))


def binary() -> str | None:
    """The ``granian`` script of this Python's environment, else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "granian")
    return here if os.access(here, os.X_OK) else shutil.which("granian")


def interpreter() -> str | None:
    """The Python granian runs on: its script's ``#!`` line (interpreters.python_of; the matrix key
    ``python`` is refused, interpreters.OWN_PYTHON), or None when it names no Python."""
    script = binary()
    try:
        with open(script or "", "rb") as f:
            line = f.readline(4096).decode(errors="replace")
    except OSError:
        return None
    words = line[2:].split() if line.startswith("#!") else []
    return words[0] if words and os.path.basename(words[0]).startswith("python") else None


def unavailable(kind: str) -> str | None:
    """Why ``granian`` cannot start here (naming what to install), or None."""
    if binary() is None:
        return f"granian not installed: {INSTALL}"
    return None


def lacks(kind: str) -> dict[str, str]:
    """Features of the launcher's interface granian does not provide (see launcher.lacks)."""
    return app_server_lacks("granian")


def version() -> str | None:
    """``granian X.Y.Z``."""
    try:
        return f"granian {importlib.metadata.version('granian')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _listen(cfg: ServerConfig, opts: list, unsupported: dict[str, str]) -> None:
    host, port = cfg.Listen[0]
    opts += [("--host", host), ("--port", str(port))]
    if len(cfg.Listen) > 1:
        unsupported["Listen"] = "granian binds one address (the first Listen is used)"
    backlog = max(MIN_BACKLOG, cfg.ListenBacklog)
    opts.append(("--backlog", str(backlog)))
    if backlog != cfg.ListenBacklog:
        unsupported["ListenBacklog"] = f"granian's smallest backlog is {MIN_BACKLOG}"
    if cfg.AcceptFilter.defers("http"):
        unsupported["AcceptFilter"] = "granian never defers accept (no TCP_DEFER_ACCEPT): it accepts at once"


def _timeouts(cfg: ServerConfig, opts: list, unsupported: dict[str, str]) -> None:
    if cfg.KeepAlive:
        opts.append(("--http1-keep-alive", ""))
        if cfg.MaxKeepAliveRequests != 0:
            unsupported["MaxKeepAliveRequests"] = "granian has no per-connection request limit (always unlimited)"
    else:
        opts.append(("--no-http1-keep-alive", ""))
    # the header read timeout is also the keep-alive wait: KeepAliveTimeout when connections are kept
    wait = cfg.KeepAliveTimeout if cfg.KeepAlive else cfg.Timeout
    opts.append(("--http1-header-read-timeout", str(max(1, int(math.ceil(wait * 1000))))))
    unsupported["Timeout"] = ("granian has no read or write timeout beyond the request head's "
                              "(--http1-header-read-timeout, set from KeepAliveTimeout)")
    if any(getattr(cfg.RequestReadTimeout, s).enabled for s in ("header", "body")):
        unsupported["RequestReadTimeout"] = ("granian's only read deadline is the request head's, "
                                             "and it carries KeepAliveTimeout; no minimum rates")
    if cfg.GracefulShutdownTimeout:  # 0 = wait for ever: granian's default
        opts.append(("--workers-kill-timeout", str(int(cfg.GracefulShutdownTimeout))))


def granian_settings(kind: str, cfg: ServerConfig) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """Our effective configuration as granian options.

    Returns (options as (flag, value) pairs, value "" for a bare flag; {directive: why it is
    not applied} for every directive whose effective value granian cannot honour; notes on
    values changed to fit granian).
    """
    opts: list[tuple[str, str]] = [("--interface", "wsgi"), ("--http", "1"), ("--no-ws", ""),
                                   ("--workers", str(cfg.StartServers)),
                                   ("--blocking-threads", str(cfg.ThreadsPerChild)),
                                   ("--respawn-failed-workers", ""), ("--no-access-log", ""),
                                   ("--log-level", LOG_LEVELS[cfg.LogLevel])]
    unsupported: dict[str, str] = {}
    _listen(cfg, opts, unsupported)
    _timeouts(cfg, opts, unsupported)
    head = "granian bounds a request head only by its HTTP/1 buffer (--http1-buffer-size), not per line or field"
    for name in ("LimitRequestLine", "LimitRequestFields", "LimitRequestFieldSize"):
        unsupported[name] = head
    if cfg.LimitRequestBody:
        unsupported["LimitRequestBody"] = "granian has no request body limit"
    if cfg.MaxConnectionsPerChild:
        unsupported["MaxConnectionsPerChild"] = "granian recycles workers by age or memory, not by connections"
    pool = "granian runs a fixed pool of StartServers workers x ThreadsPerChild blocking threads"
    for name in DYNAMIC_POOL_DIRECTIVES:
        unsupported[name] = pool
    return opts, unsupported, []


def plan(name: str, kind: str, overrides: Mapping[str, Any], config, required: tuple[str, ...] = ()):
    """(effective config, granian options, notes) for a launch; NotApplicable for a required directive
    granian cannot honour."""
    return plan_directives(name, CLOSEST_MPM[kind], overrides, config, required,
                           lambda cfg: granian_settings(kind, cfg), mapped=MAPPED, knobs=KNOBS, server="granian")


def command(opts: list[tuple[str, str]], *, app: str, pidfile: str) -> list[str]:
    """The granian command line for ``opts`` serving ``app`` (``module:callable``)."""
    argv = [binary() or "granian"]
    for flag, value in opts:
        argv += [flag, value] if value else [flag]
    return argv + ["--pid-file", pidfile, app]


@dataclass
class GranianHandle(PeerHandle):
    """A running granian main process (see the module docstring for the signal mapping)."""

    SIGNALS = {
        "graceful": signal.SIGHUP,  # respawn the workers gracefully
        "restart": signal.SIGHUP,  # granian has no hard restart
        "graceful_stop": signal.SIGTERM,  # graceful shutdown
        "stop": signal.SIGINT,  # graceful shutdown as well, then SIGKILL after the timeout
    }


def start(name: str, kind: str, overrides: dict, *, app: str | None, config, cpus, run_dir: str | None,
          env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float) -> GranianHandle:
    """Start granian (not yet waited on)."""
    cfg, opts, notes = plan(name, kind, overrides, config, required)
    run_dir, own, pidfile, log_path = run_files(name, run_dir, cfg, "granian")
    argv = command(opts, app=app or DEFAULT_APP, pidfile=pidfile)
    record_command(run_dir, "granian", argv, notes)
    environ = {k: v for k, v in child_env(env).items() if not k.startswith("GRANIAN_")}  # this command line only
    proc = spawn(argv, log_path=log_path, cpus=cpus, env=environ, cwd=run_dir)
    host, port = cfg.Listen[0]
    return GranianHandle(name=name, proc=proc, run_dir=run_dir, log_path=log_path, pidfile=pidfile,
                         url=f"http://{url_host(host)}:{port}" if port else "", notes=tuple(notes),
                         _own_run_dir=own, server="granian", bind_host=url_host(host))


__all__ = ["GranianHandle", "command", "granian_settings", "lacks", "plan", "start", "unavailable", "version"]
