"""waitress serving a WSGI app (``waitress``): one process, an asyncore loop for connections, a pool of threads.

``python -m waitress --listen=127.0.0.1:0 --threads=N ... APP`` (the built-in
``servers.apps:app`` by default; any ``module:callable`` works) runs in its own
session with a command line built from our directives
(:func:`waitress_settings`), validated first by
:func:`servers.config.load_config` against worker's rules, so a bad key or
value raises the same :class:`~servers.config.ConfigError` as for our MPMs.

waitress has one process: it runs StartServers x ThreadsPerChild threads in
it, the same number of requests in progress as worker's pool (noted when
StartServers > 1). Its main thread reads and writes every connection
(asyncore), so an idle keep-alive connection holds no thread, as in our
event MPM; the threads only run the app. ``--channel-timeout`` closes a
connection with no request in progress after that many seconds without
traffic: the keep-alive wait and a stalled request read, so it carries
KeepAliveTimeout; ``--cleanup-interval=1`` makes waitress check it every
second (its default 30 s would let connections linger half a minute past
it). waitress's own ``connection_limit`` (100) is kept: it is the deployer's
setting and none of ours means the same. The process writes no pidfile: the
launcher writes the PID it spawned.

Signals: waitress has no reload, so graceful() and restart() raise
NotApplicable. graceful_stop() sends INT (waitress closes its listener and
waits up to 5 s for the threads to finish their requests); stop() sends TERM
(Python's default: exit at once), then SIGKILL to the group as for every
server. waitress keeps no scoreboard, so ``status()`` raises NotApplicable.
The directive table is in docs/reference-servers.md.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import signal
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import ServerConfig
from ..interpreters import python_for
from ..launcher import NotApplicable, child_env, spawn
from .peer import (DYNAMIC_POOL_DIRECTIVES, PeerHandle, app_server_lacks, plan_directives, record_command,
                   request_head_limit, run_files, url_host)

INSTALL = "pip install -e '.[peers]'"
#: runs as ``PYTHON -m waitress``: on any interpreter that has it (launcher.start's ``python``)
PYTHON_PACKAGE = "waitress"
DEFAULT_APP = "servers.apps:app"
#: waitress flavour -> the MPM whose directives and defaults it is configured with
CLOSEST_MPM = {"threads": "worker"}
#: how long waitress waits for its threads after SIGINT (task_dispatcher.shutdown's timeout)
SHUTDOWN_WAIT = 5
#: max_request_body_size standing for httpd's LimitRequestBody 0 ("unlimited"): waitress reads 0 as "no body"
UNLIMITED_BODY = 2**62

KNOBS = {
    "MaintenanceInterval": "an mpm-harness knob",
    "ServerName": "waitress names itself by its bind address",
    "LogLevel": "waitress logs through Python's logging at its own levels",
    "PidFile": "waitress writes no pidfile: the launcher writes the PID it started",
}
#: ServerConfig fields turned into waitress options (as far as their values allow)
MAPPED = frozenset((
    "Listen", "StartServers", "ThreadsPerChild", "KeepAlive", "KeepAliveTimeout", "MaxKeepAliveRequests", "Timeout",
    "RequestReadTimeout", "GracefulShutdownTimeout", "ListenBacklog", "LimitRequestLine", "LimitRequestFields",
    "LimitRequestFieldSize", "LimitRequestBody", "MaxConnectionsPerChild", "ErrorLog", "AcceptFilter",
))


def unavailable(kind: str) -> str | None:
    """Why ``waitress`` cannot start here (naming what to install), or None."""
    if importlib.util.find_spec("waitress") is None:
        return f"waitress not installed: {INSTALL}"
    return None


def lacks(kind: str) -> dict[str, str]:
    """Features of the launcher's interface waitress does not provide (see launcher.lacks)."""
    return app_server_lacks("waitress")


def version() -> str | None:
    """``waitress X.Y.Z``."""
    try:
        return f"waitress {importlib.metadata.version('waitress')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _connections(cfg: ServerConfig, opts: list, unsupported: dict[str, str], notes: list[str]) -> None:
    opts += [("--listen", f"{url_host(host)}:{port}") for host, port in cfg.Listen]
    opts.append(("--backlog", str(cfg.ListenBacklog)))
    if not cfg.KeepAlive:
        unsupported["KeepAlive"] = "waitress always keeps HTTP/1.1 connections open (no switch to turn it off)"
    elif cfg.MaxKeepAliveRequests != 0:
        unsupported["MaxKeepAliveRequests"] = "waitress has no per-connection request limit (always unlimited)"
    idle = max(1, int(math.ceil(cfg.KeepAliveTimeout)))
    if not float(cfg.KeepAliveTimeout).is_integer():
        notes.append(f"KeepAliveTimeout {cfg.KeepAliveTimeout:g} rounded up to {idle} s (waitress: whole seconds)")
    opts += [("--channel-timeout", str(idle)), ("--cleanup-interval", "1")]
    unsupported["Timeout"] = ("waitress never times out a request in progress; --channel-timeout "
                              "(KeepAliveTimeout) closes a connection idle that long")
    if any(getattr(cfg.RequestReadTimeout, s).enabled for s in ("header", "body")):
        unsupported["RequestReadTimeout"] = ("waitress has no request read deadlines or minimum rates; "
                                             "a stalled read is closed after --channel-timeout (KeepAliveTimeout)")
    if cfg.AcceptFilter.defers("http"):
        unsupported["AcceptFilter"] = "waitress never defers accept (no TCP_DEFER_ACCEPT): it accepts at once"
    if cfg.GracefulShutdownTimeout != SHUTDOWN_WAIT:
        unsupported["GracefulShutdownTimeout"] = f"waitress waits a fixed {SHUTDOWN_WAIT} s for its threads on SIGINT"


def _pool(cfg: ServerConfig, opts: list, unsupported: dict[str, str], notes: list[str]) -> None:
    threads = cfg.StartServers * cfg.ThreadsPerChild
    opts.append(("--threads", str(threads)))
    if cfg.StartServers > 1:
        notes.append(f"waitress runs one process: StartServers {cfg.StartServers} x ThreadsPerChild "
                     f"{cfg.ThreadsPerChild} = {threads} threads in it")
    if cfg.MaxConnectionsPerChild:
        unsupported["MaxConnectionsPerChild"] = "waitress's one process is never replaced"
    for name in DYNAMIC_POOL_DIRECTIVES:
        unsupported[name] = "waitress runs a fixed pool of StartServers x ThreadsPerChild threads in one process"


def _limits(cfg: ServerConfig, opts: list, unsupported: dict[str, str]) -> None:
    head = request_head_limit(cfg)
    if head:
        opts.append(("--max-request-header-size", str(head)))
    why = "waitress bounds the whole request head (--max-request-header-size, set from these limits)"
    for name in ("LimitRequestLine", "LimitRequestFields", "LimitRequestFieldSize"):
        unsupported[name] = why
    # waitress refuses a body of exactly max_request_body_size (parser: >=); httpd allows LimitRequestBody
    opts.append(("--max-request-body-size", str(cfg.LimitRequestBody + 1 if cfg.LimitRequestBody else UNLIMITED_BODY)))


def waitress_settings(kind: str, cfg: ServerConfig) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """Our effective configuration as waitress options.

    Returns (options as (flag, value) pairs, {directive: why it is not applied} for every
    directive whose effective value waitress cannot honour, notes on values changed to fit
    waitress).
    """
    opts: list[tuple[str, str]] = []
    unsupported: dict[str, str] = {}
    notes: list[str] = []
    _connections(cfg, opts, unsupported, notes)
    _pool(cfg, opts, unsupported, notes)
    _limits(cfg, opts, unsupported)
    return opts, unsupported, notes


def plan(name: str, kind: str, overrides: Mapping[str, Any], config, required: tuple[str, ...] = ()):
    """(effective config, waitress options, notes) for a launch; NotApplicable for a required directive
    waitress cannot honour."""
    return plan_directives(name, CLOSEST_MPM[kind], overrides, config, required,
                           lambda cfg: waitress_settings(kind, cfg), mapped=MAPPED, knobs=KNOBS, server="waitress")


def command(opts: list[tuple[str, str]], *, app: str, python: str | None = None) -> list[str]:
    """The waitress command line for ``opts`` serving ``app`` (``module:callable``) on ``python``
    (launcher.python_for: by default this interpreter)."""
    return [python_for(python), "-m", "waitress", *(f"{flag}={value}" for flag, value in opts), app]


@dataclass
class WaitressHandle(PeerHandle):
    """A running waitress process (see the module docstring for the signal mapping)."""

    SIGNALS = {
        "graceful_stop": signal.SIGINT,  # KeyboardInterrupt: close the listener, wait for the threads
        "stop": signal.SIGTERM,  # Python's default action: exit at once
    }

    def graceful(self) -> None:
        """Not applicable: waitress cannot reload."""
        raise NotApplicable(f"{self.name}: waitress has no graceful restart (no reload at all)")

    def restart(self) -> None:
        """Not applicable: waitress cannot reload."""
        raise NotApplicable(f"{self.name}: waitress has no restart (no reload at all)")


def start(name: str, kind: str, overrides: dict, *, app: str | None, config, cpus, run_dir: str | None,
          env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float,
          python: str | None = None) -> WaitressHandle:
    """Start waitress on ``python`` (default: this interpreter; not yet waited on)."""
    cfg, opts, notes = plan(name, kind, overrides, config, required)
    run_dir, own, pidfile, log_path = run_files(name, run_dir, cfg, "waitress")
    argv = command(opts, app=app or DEFAULT_APP, python=python)
    record_command(run_dir, "waitress", argv, notes)
    proc = spawn(argv, log_path=log_path, cpus=cpus, env=child_env(env), cwd=run_dir)
    with open(pidfile, "w") as f:
        f.write(f"{proc.pid}\n")
    host, port = cfg.Listen[0]
    return WaitressHandle(name=name, proc=proc, run_dir=run_dir, log_path=log_path, pidfile=pidfile,
                          url=f"http://{url_host(host)}:{port}" if port else "", notes=tuple(notes),
                          _own_run_dir=own, server="waitress", bind_host=url_host(host))


__all__ = ["WaitressHandle", "command", "lacks", "plan", "start", "unavailable", "version", "waitress_settings"]
