"""gunicorn's sync and gthread workers serving a WSGI app (``gunicorn-sync``, ``gunicorn-gthread``).

``python -m gunicorn APP`` (the built-in ``servers.apps:app`` by default; any
``module:callable`` works) runs in its own session with a command line built
from our directives (:func:`gunicorn_settings`), validated first by
:func:`servers.config.load_config` against the closest MPM's rules --
``gunicorn-sync`` as prefork (one request per process), ``gunicorn-gthread``
as worker (processes x threads) -- so a bad key or value raises the same
:class:`~servers.config.ConfigError` as for our MPMs.

gunicorn runs a fixed pool: StartServers workers (after httpd's clamps), each
with ThreadsPerChild threads for gthread. The directives of httpd's dynamic
pool (Min/MaxSpare*, MaxRequestWorkers, ServerLimit, ThreadLimit,
AsyncRequestWorkerFactor) and the ones gunicorn has no equivalent for
(MaxKeepAliveRequests, RequestReadTimeout, LimitRequestBody; KeepAlive on the
sync worker, which never keeps a connection open) are not applied: they are
listed in ``Handle.notes``, and a launch that names one in ``required`` raises
:class:`~servers.launcher.NotApplicable`. The table is in
docs/reference-servers.md.

Signals differ from httpd's, so the handle maps the verbs: graceful() and
restart() send HUP (gunicorn reloads and replaces its workers gracefully; it
has no hard restart), graceful_stop() sends TERM (gunicorn's graceful
shutdown, bounded by graceful_timeout), stop() sends QUIT (quick shutdown),
then SIGKILL to the group as for every server. gunicorn keeps no scoreboard,
so ``status()`` raises NotApplicable.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import ServerConfig
from ..interpreters import python_for
from ..launcher import child_env, spawn
from .peer import (DYNAMIC_POOL_DIRECTIVES, PeerHandle, app_server_lacks, plan_directives, record_command, run_files,
                   url_host)

INSTALL = "pip install -e '.[peers]'"
#: runs as ``PYTHON -m gunicorn``: on any interpreter that has it (launcher.start's ``python``)
PYTHON_PACKAGE = "gunicorn"
DEFAULT_APP = "servers.apps:app"
#: gunicorn worker -> the MPM whose directives and defaults it is configured with
CLOSEST_MPM = {"sync": "prefork", "gthread": "worker"}
#: our log levels -> gunicorn's
LOG_LEVELS = {"emerg": "critical", "alert": "critical", "crit": "critical", "error": "error", "warn": "warning",
              "notice": "info", "info": "info", "debug": "debug"}
#: graceful_timeout standing for httpd's GracefulShutdownTimeout 0 ("wait for ever")
FOREVER = 86400
GUNICORN_MAX_LINE = 8190
GUNICORN_MAX_FIELDS = 32768

KNOBS = {
    "MaintenanceInterval": "an mpm-harness knob",
    "ServerName": "gunicorn names itself by its bind address",
}
#: ServerConfig fields turned into gunicorn options (as far as the worker type allows)
MAPPED = frozenset((
    "Listen", "StartServers", "ThreadsPerChild", "KeepAlive", "KeepAliveTimeout", "MaxKeepAliveRequests",
    "Timeout", "RequestReadTimeout", "GracefulShutdownTimeout", "ListenBacklog", "LimitRequestLine",
    "LimitRequestFields", "LimitRequestFieldSize", "LimitRequestBody", "MaxConnectionsPerChild", "LogLevel",
    "PidFile", "ErrorLog",
    # "http none" is what gunicorn does (it accepts at once); a deferring filter is refused in gunicorn_settings
    "AcceptFilter",
))
_POOL = "gunicorn runs a fixed pool of StartServers workers{threads}; httpd's dynamic pool has no equivalent"


def unavailable(kind: str) -> str | None:
    """Why ``gunicorn-<kind>`` cannot start here (naming what to install), or None."""
    if importlib.util.find_spec("gunicorn") is None:
        return f"gunicorn not installed: {INSTALL}"
    return None


def lacks(kind: str) -> dict[str, str]:
    """Features of the launcher's interface gunicorn does not provide (see launcher.lacks)."""
    out = app_server_lacks("gunicorn")
    if kind == "sync":
        out["keepalive"] = "the sync worker closes every connection after its response (no keep-alive)"
    return out


def version() -> str | None:
    """``gunicorn X.Y.Z``."""
    try:
        import gunicorn
    except ImportError:
        return None
    return f"gunicorn {gunicorn.__version__}"


@functools.lru_cache(maxsize=8)
def _version_info(python: str | None = None) -> tuple[int, ...]:
    """gunicorn's version_info here, or on interpreter ``python`` (its own gunicorn may be older or newer)."""
    if python is None or python == sys.executable:
        import gunicorn

        return tuple(getattr(gunicorn, "version_info", (0,)))
    code = "import gunicorn; print(*getattr(gunicorn, 'version_info', (0,)))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, env=child_env())
    return tuple(int(x) for x in out.stdout.split() if x.isdigit()) or (0,)


def _secs(value: float) -> int:
    return int(math.ceil(value))


def gunicorn_settings(kind: str, cfg: ServerConfig) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """Our effective configuration as gunicorn options.

    Returns (options as (flag, value) pairs, {directive: why it is not applied} for every
    directive whose effective value gunicorn cannot honour, notes on values changed to
    fit gunicorn). Directives whose value is what gunicorn does anyway (KeepAlive Off on
    sync, MaxKeepAliveRequests 0, LimitRequestBody 0, RequestReadTimeout with every
    stage off) count as applied.
    """
    opts: list[tuple[str, str]] = [("--worker-class", kind), ("--workers", str(cfg.StartServers))]
    unsupported: dict[str, str] = {}
    notes: list[str] = []
    threads = ""
    if kind == "gthread":
        opts.append(("--threads", str(cfg.ThreadsPerChild)))
        threads = " x ThreadsPerChild threads"
        keepalive = _secs(cfg.KeepAliveTimeout) if cfg.KeepAlive else 0
        if cfg.KeepAlive and not float(cfg.KeepAliveTimeout).is_integer():
            notes.append(f"KeepAliveTimeout {cfg.KeepAliveTimeout:g} rounded up to {keepalive} s "
                         "(gunicorn: whole seconds)")
        opts.append(("--keep-alive", str(keepalive)))
        if cfg.MaxKeepAliveRequests != 0 and cfg.KeepAlive:
            unsupported["MaxKeepAliveRequests"] = "gunicorn has no per-connection request limit (always unlimited)"
    else:
        if cfg.KeepAlive and cfg.KeepAliveTimeout > 0:
            why = "the sync worker never keeps a connection open (it closes after every response)"
            unsupported["KeepAlive"] = why
            unsupported["KeepAliveTimeout"] = why
            unsupported["MaxKeepAliveRequests"] = why
    opts.append(("--timeout", str(max(1, _secs(cfg.Timeout)))))
    if not float(cfg.Timeout).is_integer():
        notes.append(f"Timeout {cfg.Timeout:g} rounded up to {max(1, _secs(cfg.Timeout))} s (gunicorn: whole seconds)")
    graceful = _secs(cfg.GracefulShutdownTimeout) if cfg.GracefulShutdownTimeout else FOREVER
    opts.append(("--graceful-timeout", str(graceful)))
    opts.append(("--backlog", str(cfg.ListenBacklog)))
    line = cfg.LimitRequestLine if cfg.LimitRequestLine <= GUNICORN_MAX_LINE else 0
    if line != cfg.LimitRequestLine:
        notes.append(f"LimitRequestLine {cfg.LimitRequestLine} is above gunicorn's maximum {GUNICORN_MAX_LINE}: "
                     "unlimited (0)")
    opts.append(("--limit-request-line", str(line)))
    fields = cfg.LimitRequestFields if 0 < cfg.LimitRequestFields <= GUNICORN_MAX_FIELDS else GUNICORN_MAX_FIELDS
    if fields != cfg.LimitRequestFields:
        notes.append(f"LimitRequestFields {cfg.LimitRequestFields}: gunicorn allows at most {GUNICORN_MAX_FIELDS}")
    opts.append(("--limit-request-fields", str(fields)))
    opts.append(("--limit-request-field_size", str(cfg.LimitRequestFieldSize)))
    if cfg.MaxConnectionsPerChild:
        opts.append(("--max-requests", str(cfg.MaxConnectionsPerChild)))
        if kind == "gthread":
            notes.append("MaxConnectionsPerChild -> max_requests: gunicorn counts requests, httpd connections")
    opts.append(("--log-level", LOG_LEVELS[cfg.LogLevel]))
    if any(getattr(cfg.RequestReadTimeout, s).enabled for s in ("header", "body")):
        unsupported["RequestReadTimeout"] = "gunicorn has no request read deadlines or minimum rates"
    if cfg.LimitRequestBody:
        unsupported["LimitRequestBody"] = "gunicorn has no request body limit"
    if cfg.AcceptFilter.defers("http"):
        unsupported["AcceptFilter"] = "gunicorn never defers accept (no TCP_DEFER_ACCEPT): it accepts at once"
    pool = _POOL.format(threads=threads)
    for name in DYNAMIC_POOL_DIRECTIVES:
        unsupported[name] = pool
    return opts, unsupported, notes


def plan(name: str, kind: str, overrides: Mapping[str, Any], config, required: tuple[str, ...] = ()):
    """(effective config, gunicorn options, notes) for a launch; NotApplicable for a required directive
    gunicorn cannot honour (peer.plan_directives, validated as gunicorn's closest MPM)."""
    return plan_directives(name, CLOSEST_MPM[kind], overrides, config, required,
                           lambda cfg: gunicorn_settings(kind, cfg), mapped=MAPPED, knobs=KNOBS, server="gunicorn")


@dataclass
class GunicornHandle(PeerHandle):
    """A running gunicorn arbiter (see the module docstring for the signal mapping); ready once a
    worker answers, since the arbiter listens before its workers have booted (peer.PeerHandle)."""

    kind: str = ""
    server: str = "gunicorn"

    SIGNALS = {
        "graceful": signal.SIGHUP,  # reload: new workers, old ones finish their requests
        "restart": signal.SIGHUP,  # gunicorn has no hard restart
        "graceful_stop": signal.SIGTERM,  # graceful shutdown, bounded by graceful_timeout
        "stop": signal.SIGQUIT,  # quick shutdown
    }


def start(name: str, kind: str, overrides: dict, *, app: str | None, config, cpus, run_dir: str | None,
          env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float,
          python: str | None = None) -> GunicornHandle:
    """Start gunicorn on ``python`` (launcher.python_for: by default this interpreter; not yet waited on)."""
    cfg, opts, notes = plan(name, kind, overrides, config, required)
    run_dir, own, pidfile, log_path = run_files(name, run_dir, cfg, "gunicorn")
    python = python_for(python)
    argv = [python, "-m", "gunicorn", "--config", os.devnull]
    for host, port in cfg.Listen:
        argv += ["--bind", f"{url_host(host)}:{port}"]
    for flag, value in opts:
        argv += [flag, value]
    argv += ["--pid", pidfile, "--error-logfile", log_path]
    if _version_info(python) >= (25, 1):
        argv.append("--no-control-socket")  # else every instance shares ~/.gunicorn/gunicorn.ctl
    argv.append(app or DEFAULT_APP)
    record_command(run_dir, "gunicorn", argv, notes)
    environ = child_env(env)
    environ.pop("GUNICORN_CMD_ARGS", None)  # settings come from this command line only
    proc = spawn(argv, log_path=log_path, cpus=cpus, env=environ, cwd=run_dir)
    host, port = cfg.Listen[0]
    handle = GunicornHandle(name=name, proc=proc, run_dir=run_dir, log_path=log_path, pidfile=pidfile,
                            url=f"http://{url_host(host)}:{port}" if port else "", notes=tuple(notes),
                            _own_run_dir=own, kind=kind, bind_host=url_host(host))
    return handle


__all__ = ["GunicornHandle", "gunicorn_settings", "lacks", "plan", "start", "unavailable", "version"]
