"""The one way anything starts a server: ``start(name, overrides) -> Handle``.

A server runs as a child process in its own session (so a process-group
signal can never reach the caller, and ``stop()`` can kill its whole group),
on a loopback port picked by the kernel, with its own run directory holding
the pidfile and the error log. The handle controls it with httpd's signals.

    from servers.launcher import start
    with start("prefork", {"StartServers": 2}) as h:
        h.url            # http://127.0.0.1:PORT
        h.status()       # parsed /server-status?auto
        h.graceful()     # SIGUSR1

The same call starts the reference servers (``servers/external/``): Apache
httpd with each of its MPMs (``apache-prefork``, ``apache-worker``,
``apache-event``, and ``apache-conf`` from the user's own httpd.conf), gunicorn's
sync and gthread workers (``gunicorn-sync``, ``gunicorn-gthread``), uWSGI as
processes and as processes x threads (``uwsgi-processes``, ``uwsgi-threads``),
granian's WSGI interface (``granian``), waitress (``waitress``) and Apache httpd +
mod_wsgi (``modwsgi-prefork|worker|event|daemon``, docs/mod_wsgi.md), the Python
ones serving the same WSGI app as our MPMs. ``available()`` says which can
start here and, for a missing one, what to install. Every handle has the same interface; what
differs per server (how it is spawned, how readiness is seen, which signal
means what) lives in a small :class:`Handle` subclass; what the app servers share
(directive planning, run files, the handle of a server found by its listening port)
lives in :mod:`servers.external.peer`; which Python a server runs on, and whether it can,
in :mod:`servers.interpreters`; the errors a launch raises and a launched server's
environment in :mod:`servers.launch_base` (re-exported here).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Iterable, Mapping

import yaml

from .interpreters import Interpreter, python_for, python_refusal
# re-exported: every caller imports them from here
from .launch_base import LaunchError, NotApplicable, child_env
from .mpm import MPM_NAMES
from .statusclient import parse_auto

READY_PREFIX = "listening on "


#: reference servers: launcher name -> (module under servers.external, flavour)
EXTERNAL: dict[str, tuple[str, str]] = {
    "apache-prefork": ("apache", "prefork"),
    "apache-worker": ("apache", "worker"),
    "apache-event": ("apache", "event"),
    "apache-conf": ("apache", "conf"),  # httpd from the user's own httpd.conf (config=, or $MPM_HARNESS_HTTPD_CONF)
    "gunicorn-sync": ("gunicorn", "sync"),
    "gunicorn-gthread": ("gunicorn", "gthread"),
    "uwsgi-processes": ("uwsgi", "processes"),  # N processes, one thread each
    "uwsgi-threads": ("uwsgi", "threads"),  # N processes x T threads
    "granian": ("granian", "wsgi"),  # workers x blocking threads, connections in a Rust event loop
    "waitress": ("waitress", "threads"),  # one process, an asyncore loop and a thread pool
    "modwsgi-prefork": ("modwsgi", "prefork"),  # httpd prefork + mod_wsgi embedded: the app in each child
    "modwsgi-worker": ("modwsgi", "worker"),
    "modwsgi-event": ("modwsgi", "event"),
    "modwsgi-daemon": ("modwsgi", "daemon"),  # event front + WSGIDaemonProcess StartServers x ThreadsPerChild
}

#: each of our MPMs and the reference servers of the same model: Apache's same MPM, then the
#: Python servers whose concurrency is closest (one request per process; threads; parked connections)
PEERS: dict[str, tuple[str, ...]] = {
    "prefork": ("apache-prefork", "modwsgi-prefork", "gunicorn-sync", "uwsgi-processes"),
    "worker": ("apache-worker", "modwsgi-worker", "modwsgi-daemon", "gunicorn-gthread", "uwsgi-threads", "granian",
               "waitress"),
    "event": ("apache-event", "modwsgi-event", "gunicorn-gthread", "granian"),
}


def _log_tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def spawn(argv: list[str], *, log_path: str, cpus: Iterable[int] | None = None,
          env: Mapping[str, str] | None = None, stdout: int = subprocess.DEVNULL,
          cwd: str | None = None) -> subprocess.Popen:
    """Run ``argv`` in its own session (so ``stop()`` can kill its whole group and no group
    signal reaches the caller), stderr appended to ``log_path``, pinned to ``cpus`` (set
    before exec, inherited by every child it forks)."""
    cpu_set = set(cpus) if cpus is not None else None

    def preexec() -> None:
        if cpu_set:
            os.sched_setaffinity(0, cpu_set)

    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=log, cwd=cwd,
            start_new_session=True, preexec_fn=preexec if cpu_set else None, env=dict(env) if env else None,
        )


def listening_ports(pid: int) -> list[int]:
    """TCP ports process ``pid`` itself listens on (not its children's), via psutil."""
    import psutil

    try:
        proc = psutil.Process(pid)
        conns = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return sorted({c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN})


@dataclass
class Handle:
    """A running server started by :func:`start` (the part every kind of server shares).

    ``SIGNALS`` maps each control verb to the signal the server understands:
    httpd's (and our MPMs') by default; a reference server's subclass maps its own.
    ``notes`` lists what the launcher could not apply exactly (a directive the
    server has no equivalent for, a value rounded to what it accepts).
    """

    name: str
    proc: subprocess.Popen
    run_dir: str
    log_path: str
    pidfile: str
    url: str = ""
    notes: tuple[str, ...] = ()
    #: where the server answers mod_status (StatusLocation); None: it has no status page
    status_path: str | None = "/server-status"
    _own_run_dir: bool = True
    _stopped: bool = field(default=False, repr=False)

    SIGNALS: ClassVar[dict[str, int]] = {
        "graceful": signal.SIGUSR1,  # apachectl -k graceful
        "restart": signal.SIGHUP,  # apachectl -k restart
        "graceful_stop": signal.SIGWINCH,  # apachectl -k graceful-stop
        "stop": signal.SIGTERM,  # apachectl -k stop
    }

    @property
    def pid(self) -> int:
        """PID of the parent (control) process."""
        return self.proc.pid

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def host(self) -> str:
        """The listening address (without brackets)."""
        return self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")

    def effective_config(self) -> str:
        """What this server runs with, for the results: by default its command line."""
        args = self.proc.args
        return " ".join(args) if isinstance(args, (list, tuple)) else str(args)

    def _not_ready(self, why: str) -> LaunchError:
        return LaunchError(f"{self.name}: {why}\n{_log_tail(self.log_path)}")

    def _find_url(self, deadline: float, timeout: float) -> None:
        """Learn ``url`` if it is not known yet (a kernel-chosen port); raise LaunchError on failure."""
        if not self.url:
            raise self._not_ready("no address to wait on")

    def _check_ready(self, deadline: float) -> None:
        """Beyond an accepted connection, what this kind of server needs before it counts as ready."""

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until the server listens, accepts a connection and passes its kind's readiness check."""
        deadline = time.monotonic() + timeout
        self._find_url(deadline, timeout)
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise self._not_ready(f"port {self.port} never accepted") from None
                time.sleep(0.02)
        self._check_ready(deadline)

    def pids(self) -> list[int]:
        """The whole process tree: parent first, then every descendant."""
        import psutil

        try:
            parent = psutil.Process(self.pid)
            return [self.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def alive(self) -> bool:
        """True while the parent process runs."""
        return self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc.poll() is not None:
            raise LaunchError(f"{self.name}: server is not running (exit status {self.proc.returncode})")
        os.kill(self.pid, sig)

    def graceful(self) -> None:
        """Graceful restart (httpd: SIGUSR1, apachectl -k graceful)."""
        self._signal(self.SIGNALS["graceful"])

    def restart(self) -> None:
        """Hard restart (httpd: SIGHUP, apachectl -k restart)."""
        self._signal(self.SIGNALS["restart"])

    def graceful_stop(self) -> None:
        """Graceful stop (httpd: SIGWINCH, apachectl -k graceful-stop); use wait() or stop() afterwards."""
        self._signal(self.SIGNALS["graceful_stop"])

    def wait(self, timeout: float) -> int | None:
        """Wait for the parent to exit; its status, or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop (httpd: SIGTERM), then SIGKILL the whole process group after ``timeout``; never leaves orphans."""
        if self._stopped:
            return self.proc.returncode
        tree = self.pids()
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, self.SIGNALS["stop"])
            except ProcessLookupError:
                pass
        code = self.wait(timeout)
        # anything left of this server's session goes, the group first, then stragglers by PID
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in tree[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if code is None:
            code = self.wait(5.0)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stopped = True
        if self._own_run_dir and os.environ.get("MPM_KEEP_RUN_DIR") != "1":
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return code

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET ``path`` from the server; (status, body)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self, timeout: float = 5.0):
        """The parsed mod_status ``?auto`` report (servers.statusclient.StatusReport).

        Never an empty report: NotApplicable when the server has no status page (StatusLocation
        Off, a 404, a page without a Scoreboard line), LaunchError for any other answer (403:
        StatusRequire does not grant this client).
        """
        path = self.status_path
        if path is None:
            raise NotApplicable(f"{self.name}: no status page (StatusLocation Off)")
        code, body = self.get(path + "?auto", timeout)
        if code == 404:
            raise NotApplicable(f"{self.name}: no status page at {path} (404)")
        if code == 403:
            raise LaunchError(f"{self.name}: {path}?auto refused this client (403): StatusRequire does not grant it")
        if code != 200:
            raise LaunchError(f"{self.name}: {path}?auto answered {code}")
        report = parse_auto(body.decode("latin-1"))
        if not report.scoreboard:
            raise NotApplicable(f"{self.name}: {path}?auto is not a mod_status report (no Scoreboard line)")
        return report

    def log_text(self) -> str:
        """The server's error log so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class MPMHandle(Handle):
    """One of our MPMs (``python -m servers NAME``): it prints ``listening on URL`` when ready."""

    def _find_url(self, deadline: float, timeout: float) -> None:
        if self.url:
            return
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LaunchError(f"{self.name}: not ready after {timeout:.0f}s\n{_log_tail(self.log_path)}")
                if not sel.select(min(left, 0.2)):
                    if self.proc.poll() is not None:
                        break
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            sel.close()
        line = buf.decode(errors="replace").strip()
        if not line.startswith(READY_PREFIX):
            code = self.proc.poll()
            raise LaunchError(
                f"{self.name}: server exited (status {code}) before it was ready\n{_log_tail(self.log_path)}"
            )
        self.url = line[len(READY_PREFIX):]


def finish_start(handle: Handle, wait: bool, timeout: float) -> Handle:
    """Wait until ``handle`` is ready (when asked); a server that fails is stopped, never left behind."""
    if wait:
        try:
            handle.wait_ready(timeout)
        except BaseException:
            handle.stop(5.0)
            raise
    return handle


def _set_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _external(name: str):
    import importlib

    module, flavour = EXTERNAL[name]
    return importlib.import_module(f"servers.external.{module}"), flavour


def reference(name: str) -> ModuleType | None:
    """The ``servers.external`` module that runs reference server ``name`` (imported, nothing probed);
    None for our MPMs and for a name the launcher does not know. What :mod:`servers.interpreters`
    is given to answer for a server (it sits below the launcher, which owns the names)."""
    return _external(name)[0] if name in EXTERNAL else None


def names() -> list[str]:
    """Every name ``start`` knows (our MPMs, then the reference servers), probing nothing: a
    name here may still be unavailable on this machine (see :func:`available`)."""
    return [*MPM_NAMES, *EXTERNAL]


def model(name: str) -> str | None:
    """The MPM of ours whose directives server ``name`` takes: its model (prefork, worker or event).

    Ours: itself. ``apache-X``: X (our directives are httpd's, mapped one to one). The Python
    servers: the MPM their directives are validated against, each ``servers.external`` module's
    ``CLOSEST_MPM`` (gunicorn-sync and uwsgi-processes as prefork, one request per process;
    gunicorn-gthread, uwsgi-threads, granian and waitress as worker, threads; modwsgi-X as X,
    modwsgi-daemon as event, its front). None for a name the launcher does not know (a URL) and
    for ``apache-conf`` (the user's own httpd.conf, not one of ours). Probes nothing.
    """
    if name in MPM_NAMES:
        return name
    if name not in EXTERNAL:
        return None
    module, flavour = EXTERNAL[name]
    if module == "apache":
        return flavour if flavour in MPM_NAMES else None
    return getattr(_external(name)[0], "CLOSEST_MPM", {}).get(flavour)


def _unknown(name: str) -> LaunchError:
    return LaunchError(f"unknown server {name!r}; available: {', '.join(names())}")


def available() -> dict[str, str | None]:
    """Every launchable name and why it is unavailable here (None when it can start).

    A missing reference server's reason names what to install, e.g.
    ``apache2 not found: apt-get install apache2``.
    """
    out: dict[str, str | None] = {name: None for name in MPM_NAMES}
    for name in EXTERNAL:
        module, flavour = _external(name)
        out[name] = module.unavailable(flavour)
    return out


def server_version(name: str, python: Interpreter | None = None) -> str | None:
    """What runs under ``name`` (e.g. ``Apache/2.4.62 (Debian)``, ``gunicorn 23.0.0``), None if unavailable;
    on ``python`` (probed with ``interpreters.python_imports``) when given: ``gunicorn 23.0.0 (Python 3.12.1)``."""
    if name in MPM_NAMES:
        return f"mpm-harness {name} (Python {python.version if python else sys.version.split()[0]})"
    if name not in EXTERNAL:
        raise _unknown(name)
    module, flavour = _external(name)
    package = getattr(module, "PYTHON_PACKAGE", None)
    if python is not None and package:
        return f"{package} {python.packages.get(package) or '?'} (Python {python.version})"
    return module.version() if module.unavailable(flavour) is None else None


def lacks(name: str) -> dict[str, str]:
    """Features server ``name`` does not have, each with the reason (empty for our MPMs).

    Features: ``keepalive`` (persistent connections), ``keepalive-header`` (httpd's
    ``Keep-Alive: timeout=N, max=M`` response header), ``echo`` (the /echo JSON mirror of
    the parsed request), ``wsgi`` (serving an arbitrary WSGI app), ``scoreboard``
    (/server-status). Suites skip a test that needs one as not applicable.
    """
    if name in MPM_NAMES:
        return {}
    if name not in EXTERNAL:
        raise _unknown(name)
    module, flavour = _external(name)
    return dict(module.lacks(flavour))


def _status_path(mpm: str, config, overrides: Mapping[str, Any]) -> str | None:
    """The StatusLocation the server will run with (a configuration it refuses fails its start anyway)."""
    from .config import ConfigError, load_config

    try:
        return load_config(mpm, config, overrides).StatusLocation
    except (ConfigError, OSError):
        return "/server-status"


def start(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    app: str | None = None,
    config: str | os.PathLike | None = None,
    cpus: Iterable[int] | None = None,
    run_dir: str | None = None,
    wait: bool = True,
    timeout: float = 20.0,
    env: Mapping[str, str] | None = None,
    required: Iterable[str] = (),
    python: str | None = None,
) -> Handle:
    """Start server ``name`` with directive ``overrides``; by default wait until it is ready.

    ``cpus`` pins the whole server tree (set before exec, inherited by every
    child). Listen defaults to 127.0.0.1 with a kernel-chosen port. ``python`` is the
    interpreter our MPMs, gunicorn and waitress run on (default: $MPM_HARNESS_PYTHON, else
    this one; check it first with ``interpreters.probe_python``); the servers that bring their own
    Python refuse it with :class:`NotApplicable` (``interpreters.python_refusal``).

    Reference servers map the directives to their own settings (docs/reference-servers.md);
    what they have no equivalent for is ignored and listed in ``Handle.notes``, except
    the names in ``required``, which raise :class:`NotApplicable` instead (a test that
    configures a directive needs it honoured).
    """
    refusal = python_refusal(reference(name)) if python else None
    if refusal:
        raise NotApplicable(f"{name} cannot be started on {python}: {refusal}")
    if name in EXTERNAL:
        module, flavour = _external(name)
        # apache-conf with config= given does not need $MPM_HARNESS_HTTPD_CONF
        why = module.conf_unavailable(config) if flavour == "conf" and config is not None else module.unavailable(flavour)
        if why is not None:
            raise LaunchError(f"{name} is not available here: {why}")
        handle = module.start(
            name, flavour, dict(overrides or {}), app=app, config=config, cpus=cpus, run_dir=run_dir,
            env=env, required=tuple(required), timeout=timeout, **({"python": python} if python else {}),
        )
        return finish_start(handle, wait, timeout)
    if name not in MPM_NAMES:
        raise _unknown(name)
    own = run_dir is None
    run_dir = run_dir or tempfile.mkdtemp(prefix=f"mpm-{name}-")
    log_path = os.path.join(run_dir, "error.log")
    pidfile = os.path.join(run_dir, "httpd.pid")
    overrides = dict(overrides or {})
    overrides.setdefault("Listen", "127.0.0.1:0")
    overrides.setdefault("PidFile", pidfile)
    pidfile = str(overrides["PidFile"])
    argv = [python_for(python), "-m", "servers", name]
    if config is not None:
        argv += ["--config", os.fspath(config)]
    if app:
        argv += ["--app", app]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={_set_value(value)}"]
    proc = spawn(argv, log_path=log_path, cpus=cpus, env=child_env(env), stdout=subprocess.PIPE)
    handle = MPMHandle(name=name, proc=proc, run_dir=run_dir, log_path=log_path, pidfile=pidfile, _own_run_dir=own,
                       status_path=_status_path(name, config, overrides))
    return finish_start(handle, wait, timeout)
