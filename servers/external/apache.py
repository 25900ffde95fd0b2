"""Apache httpd 2.4 with one of its MPMs (``apache-prefork``, ``apache-worker``, ``apache-event``).

The system's httpd binary (``apache2`` or ``httpd``; ``MPM_HARNESS_APACHE`` names
another) runs in the foreground (``-D FOREGROUND``) in its own session, from a
complete ``httpd.conf`` written into a private run directory: no system
service, no Debian wrapper scripts, no ``apache2ctl``/``envvars``. The file
holds:

* ``LoadModule`` lines for ``mpm_<name>``, mod_authz_core, mod_alias,
  mod_status and mod_reqtimeout (always: our MPMs apply mod_reqtimeout's
  compiled-in default even when RequestReadTimeout is not set, so httpd loads
  the module to behave the same), and mod_log_config and mod_logio where this
  httpd does not have them compiled in (Debian's has);
* the access log as ours writes it: every ``LogFormat`` nickname (httpd itself
  predefines only ``CLF``) and the ``CustomLog`` lines (none unless configured,
  as for our MPMs), a relative file made absolute (httpd would resolve it
  against ServerRoot, the run directory);
* ``Listen`` on the loopback address of our Listen directive, on a free port
  the launcher picked (httpd cannot report a kernel-chosen port), PidFile and
  ErrorLog in the run directory, ``ServerName``, ``User``/``Group`` (only
  when started as root: ``www-data`` or ``nobody``);
* every directive of our configuration mapped to httpd's (:func:`directives`):
  the values are the *effective* ones from :func:`servers.config.load_config`,
  so they are validated exactly as for our MPMs (a bad key or value raises the
  same :class:`~servers.config.ConfigError`, naming the key) and httpd's limit
  arithmetic has already been applied; ``MaintenanceInterval`` (our knob) is
  ignored; ``ListenCoresBucketsRatio`` and ``MaxMemFree``
  given as overrides are passed to httpd verbatim (our MPMs ignore them);
* the same resources as the built-in app where httpd can serve them as files:
  ``/`` the 13 bytes ``Hello, World!`` (``text/plain``), ``/bytes/N`` N bytes
  of ``x`` (``application/octet-stream``) for the sizes in :data:`BYTES_SIZES`,
  pre-generated once per machine in a shared cache directory, and
  ``/server-status`` (mod_status). ``/echo`` is a static text file: httpd reads
  and discards a request body sent to it (so framing, persistence and status
  rules are still httpd's own), but there is no JSON mirror of the parsed
  request -- see docs/reference-servers.md for why -- and ``/sleep`` does not
  exist (404).

Signals are httpd's, as for our MPMs: USR1 graceful restart, HUP restart,
WINCH graceful stop, TERM stop. Readiness: the parent process itself listens
on the port (so a stranger that took the port first is never mistaken for
it) and ``/server-status?auto`` answers.

``apache-conf`` runs the user's own httpd.conf instead (:func:`start_from_conf`): the file is
flattened as httpd reads it (Include, IncludeOptional relative to ServerRoot) and only what two
servers on one machine cannot share is moved: each Listen to a loopback port (with the
<VirtualHost> ports), PidFile and DefaultRuntimeDir into the run directory, every ErrorLog to its
error.log and the access logs' files into its logs/; Debian's ``${APACHE_*}`` envvars point there.
The handle's notes name the file and the MPM it loads (docs/reference-servers.md).
"""

from __future__ import annotations

import functools
import glob
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..config import DIRECTIVES, NOT_IMPLEMENTED, ServerConfig, conf_quoted, load_config
from ..launcher import Handle, LaunchError, NotApplicable, child_env, listening_ports, spawn
from ..mpm import MPM_NAMES
from .peer import free_port

MPMS = MPM_NAMES
INSTALL = "apt-get install apache2"
DEFAULT_APP = "servers.apps:app"
HELLO = b"Hello, World!"
ECHO_TEXT = (b"no request mirror here: httpd serves /echo as a static file "
             b"(it reads and discards a request body); see docs/reference-servers.md\n")

#: the N of /bytes/N httpd can serve: every N below 5000 (the suites' pipelined sizes), powers of
#: two up to 16 MiB and 1, 2, 5 x 10^k up to 10 MB (65536 for locust's BytesUser, 8388608 for slow reads)
BYTES_SIZES: frozenset[int] = frozenset(
    set(range(5000))
    | {1 << k for k in range(25)}
    | {m * 10 ** k for k in range(8) for m in (1, 2, 5) if m * 10 ** k <= 1 << 24}
)
_BYTES_CACHE_VERSION = 1

#: our tuning knobs httpd has no use for: ignored (and noted) even when a test requires them
KNOBS = {"MaintenanceInterval": "an mpm-harness knob (httpd's maintenance tick is fixed at 1 s)"}
#: our directives httpd has (the directive table says which); any other one set (e.g. the Bench*
#: testing knobs) is not applied
MAPPED = frozenset(name for name, d in DIRECTIVES.items() if d.httpd)
#: our knobs render_conf writes in httpd's own form: <Location PATH> SetHandler server-status, Require ...
_IN_LOCATION = ("StatusLocation", "StatusRequire")
#: written by render_conf from the launch itself (the ports picked, the run directory, a name)
_FROM_LAUNCH = ("Listen", "PidFile", "ErrorLog", "ServerName")
#: written first, before the table's order: the two limits that size httpd's scoreboard
_SIZES_FIRST = ("ServerLimit", "ThreadLimit")
#: real httpd directives our MPMs accept and ignore: passed through
PASSTHROUGH = NOT_IMPLEMENTED

_BINARY_CANDIDATES = ("apache2", "httpd")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/local/apache2/bin")
_MODULE_DIRS = ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules",
                "/usr/local/apache2/modules", "/etc/httpd/modules")


# ------------------------------------------------------------------ discovery


@functools.lru_cache(maxsize=None)
def find_binary() -> str | None:
    """The httpd binary: ``$MPM_HARNESS_APACHE``, else ``apache2`` / ``httpd`` on PATH or in an sbin directory."""
    given = os.environ.get("MPM_HARNESS_APACHE")
    if given:
        return given if os.access(given, os.X_OK) else None
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN)
    for name in _BINARY_CANDIDATES:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


@functools.lru_cache(maxsize=None)
def _compiled_in(binary: str) -> frozenset[str]:
    try:
        out = subprocess.run([binary, "-l"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in out.splitlines() if line.strip().endswith(".c"))


@functools.lru_cache(maxsize=None)
def modules_dir() -> str | None:
    """Where the shared modules are (the directory holding mod_status.so)."""
    given = os.environ.get("MPM_HARNESS_APACHE_MODULES")
    candidates = [given] if given else list(_MODULE_DIRS)
    binary = find_binary()
    if binary and not given:
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(binary))), "modules"))
    for d in candidates:
        if d and os.path.isfile(os.path.join(d, "mod_status.so")):
            return d
    return None


def _mpm_load_line(mpm: str) -> str | None:
    """``LoadModule`` for the MPM, "" when it is compiled in, None when this httpd lacks it."""
    binary, mods = find_binary(), modules_dir()
    if binary and f"{mpm}.c" in _compiled_in(binary):
        return ""
    if mods and os.path.isfile(os.path.join(mods, f"mod_mpm_{mpm}.so")):
        return f"LoadModule mpm_{mpm}_module {mods}/mod_mpm_{mpm}.so"
    return None


def _log_load_lines() -> list[str]:
    """``LoadModule`` for mod_log_config and mod_logio (%I, %O, %S) unless this httpd has them compiled in."""
    binary, mods = find_binary(), modules_dir()
    compiled = _compiled_in(binary) if binary else frozenset()
    return [f"LoadModule {mod}_module {mods}/mod_{mod}.so" for mod in ("log_config", "logio")
            if f"mod_{mod}.c" not in compiled and mods and os.path.isfile(os.path.join(mods, f"mod_{mod}.so"))]


def unavailable(mpm: str) -> str | None:
    """Why ``apache-<mpm>`` cannot start here (naming what to install), or None."""
    binary = find_binary()
    if binary is None:
        return f"apache2 not found: {INSTALL}"
    if mpm == "conf":  # apache-conf: the user's file names its modules and MPM
        return conf_unavailable(os.environ.get(CONF_ENV))
    if modules_dir() is None:
        return f"{binary} found but not its modules (mod_status.so); set MPM_HARNESS_APACHE_MODULES or {INSTALL}"
    if _mpm_load_line(mpm) is None:
        return f"{binary} has no {mpm} MPM (mod_mpm_{mpm}.so not in {modules_dir()}): {INSTALL}"
    return None


def lacks(mpm: str) -> dict[str, str]:
    """Features of the launcher's interface httpd does not provide here (see launcher.lacks)."""
    return {
        "echo": "httpd has no /echo mirror of the parsed request (/echo is a static file here)",
        "wsgi": "httpd serves files here, it cannot run a WSGI app",
    }


@functools.lru_cache(maxsize=None)
def version() -> str | None:
    """``Apache/2.4.x (...)`` as ``httpd -v`` prints it."""
    binary = find_binary()
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("Server version:"):
            return line.split(":", 1)[1].strip()
    return None


# ------------------------------------------------------------------ configuration mapping


def directives(cfg: ServerConfig) -> list[tuple[str, str]]:
    """Our effective configuration as httpd directives, in httpd.conf order: (name, value).

    Every directive of the table that httpd has and ``cfg``'s MPM uses, spelt as httpd reads it
    (a ConfigError for a value it cannot hold, e.g. a fractional GracefulShutdownTimeout), except
    those :func:`render_conf` writes from the launch.
    """
    used = [d for d in DIRECTIVES.values() if d.httpd and cfg.mpm in d.mpms and d.name not in _FROM_LAUNCH]
    used.sort(key=lambda d: _SIZES_FIRST.index(d.name) if d.name in _SIZES_FIRST else len(_SIZES_FIRST))
    return [(d.name, text) for d in used for text in d.httpd_values(getattr(cfg, d.name))]


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(what servers.config validates, httpd-only directives passed through verbatim)."""
    ours: dict[str, Any] = {}
    passed: list[tuple[str, str]] = []
    canon = {p.lower(): p for p in PASSTHROUGH}
    for key, value in overrides.items():
        name = canon.get(str(key).strip().lower())
        if name is None:
            ours[key] = value
        else:
            passed.append((name, str(value)))
    return ours, passed


def not_applied(cfg: ServerConfig, overrides: Mapping[str, Any]) -> dict[str, str]:
    """Settings of ours httpd gets no equivalent of: {name: why}, for those named in ``overrides``
    or different from the MPM's default (our knobs: MaintenanceInterval, the Bench* testing knobs)."""
    named = {str(k).strip().lower() for k in overrides}
    default = load_config(cfg.mpm)
    out = {}
    for name in DIRECTIVES:
        if name in MAPPED or name in _IN_LOCATION:
            continue
        if name.lower() in named or getattr(cfg, name) != getattr(default, name):
            out[name] = KNOBS.get(name, "an mpm-harness knob, not an httpd directive")
    return out


def notes_for(cfg: ServerConfig, overrides: Mapping[str, Any]) -> list[str]:
    """What is not applied (our knobs), for Handle.notes."""
    return [f"{k} ignored: {why}" for k, why in not_applied(cfg, overrides).items()]


def check_required(name: str, cfg: ServerConfig, overrides: Mapping[str, Any], required: Iterable[str]) -> None:
    """NotApplicable if a required setting is one httpd cannot honour (our tuning knobs excepted)."""
    wanted = {str(k).strip().lower() for k in required}
    for key, why in not_applied(cfg, overrides).items():
        if key.lower() in wanted and key not in KNOBS:
            raise NotApplicable(f"not applicable to {name}: {key}: {why}")


def _fmt_listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_as() -> tuple[str, str] | None:
    """(User, Group) for httpd's children when started as root (httpd refuses to serve as root), else None."""
    if os.geteuid() != 0:
        return None
    for user in ("www-data", "nobody", "daemon"):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            continue
        try:
            group = grp.getgrgid(pw.pw_gid).gr_name
        except KeyError:
            group = f"#{pw.pw_gid}"
        return user, group
    return "#65534", "#65534"


def render_conf(
    cfg: ServerConfig,
    *,
    listen: Iterable[tuple[str, int]],
    run_dir: str,
    pidfile: str,
    error_log: str,
    docroot: str,
    bytes_dir: str,
    modules: str,
    mpm_load: str,
    user_group: tuple[str, str] | None = None,
    passthrough: Iterable[tuple[str, str]] = (),
    notes: Iterable[str] = (),
    log_load: Iterable[str] = (),
    app_lines: Iterable[str] | None = None,
) -> str:
    """The complete httpd.conf for ``cfg`` (pure: no file is read or written).

    ``app_lines``, when given, replace the built-in app's resources served as files (mod_wsgi
    serving an app instead: servers/external/modwsgi.py); mod_status stays in front of them."""
    lines = [
        f"# written by mpm-harness (servers/external/apache.py) for the {cfg.mpm} MPM",
        *(f"# note: {n}" for n in (*cfg.notes, *notes)),
        f"ServerRoot {conf_quoted(run_dir)}",
        f"DefaultRuntimeDir {conf_quoted(run_dir)}",
        f"PidFile {conf_quoted(pidfile)}",
        f"ErrorLog {conf_quoted(error_log)}",
        f"ServerName {cfg.ServerName or 'localhost'}",
    ]
    if mpm_load:
        lines.append(mpm_load)
    for mod in ("authz_core", "authz_host", "alias", "status", "reqtimeout"):
        lines.append(f"LoadModule {mod}_module {modules}/mod_{mod}.so")
    if cfg.CustomLog:
        lines += log_load
    if user_group:
        lines += [f"User {user_group[0]}", f"Group {user_group[1]}"]
    lines += [f"Listen {_fmt_listen(h, p)}" for h, p in listen]
    lines += [f"{name} {value}" for name, value in directives(cfg)]
    lines += [f"{name} {value}" for name, value in passthrough]
    if app_lines is not None:
        lines += list(app_lines)
    else:
        lines += _static_lines(docroot, bytes_dir)
    if cfg.StatusLocation is not None:  # StatusLocation / StatusRequire: httpd's own spelling of them
        lines += [f"<Location {conf_quoted(cfg.StatusLocation)}>", "    SetHandler server-status",
                  *(f"    Require {part.strip()}" for part in str(cfg.StatusRequire).split(";")), "</Location>"]
    return "\n".join(lines) + "\n"


def _static_lines(docroot: str, bytes_dir: str) -> list[str]:
    """The built-in app's resources httpd serves as files: / and /bytes/N (the document root holds /echo)."""
    return [
        "# the built-in app's resources, as files",
        f"DocumentRoot {conf_quoted(docroot)}",
        f'AliasMatch "^/$" {conf_quoted(os.path.join(docroot, "hello"))}',
        f'AliasMatch "^/bytes/([0-9]+)$" {conf_quoted(bytes_dir + "/$1")}',
        f"<Directory {conf_quoted(docroot)}>",
        "    ForceType text/plain",
        "</Directory>",
        f"<Directory {conf_quoted(bytes_dir)}>",
        "    ForceType application/octet-stream",
        "</Directory>",
    ]


# ------------------------------------------------------------------ files


def bytes_dir() -> str:
    """The shared directory of pre-generated ``/bytes/N`` files (built once per machine and user)."""
    base = os.path.join(tempfile.gettempdir(), f"mpm-harness-bytes-{os.getuid()}-v{_BYTES_CACHE_VERSION}")
    marker = os.path.join(base, ".complete")
    try:
        st = os.lstat(base)
        if st.st_uid == os.getuid() and not (st.st_mode & 0o022) and os.path.isfile(marker):
            return base
    except FileNotFoundError:
        pass
    work = tempfile.mkdtemp(prefix=os.path.basename(base) + ".tmp-", dir=os.path.dirname(base))
    data = b"x" * max(BYTES_SIZES)
    for n in BYTES_SIZES:
        with open(os.path.join(work, str(n)), "wb") as f:
            f.write(data[:n])
        os.chmod(os.path.join(work, str(n)), 0o644)
    with open(os.path.join(work, ".complete"), "w") as f:
        f.write(f"{len(BYTES_SIZES)} files\n")
    os.chmod(work, 0o755)
    try:
        os.rename(work, base)  # atomic; fails if another process got there first
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
        st = os.lstat(base)
        if st.st_uid != os.getuid() or st.st_mode & 0o022 or not os.path.isfile(marker):
            raise LaunchError(f"{base} exists but is not a complete /bytes cache of this user; remove it") from None
    return base


def _write_docroot(run_dir: str) -> str:
    docroot = os.path.join(run_dir, "htdocs")
    os.makedirs(docroot, exist_ok=True)
    for name, body in (("hello", HELLO), ("echo", ECHO_TEXT)):
        with open(os.path.join(docroot, name), "wb") as f:
            f.write(body)
        os.chmod(os.path.join(docroot, name), 0o644)
    os.chmod(docroot, 0o755)
    return docroot


# ------------------------------------------------------------------ the handle


@dataclass
class ApacheHandle(Handle):
    """A running httpd (signals: httpd's own, as the base class maps them)."""

    mpm: str = ""
    conf_path: str = ""
    source_conf: str = ""  # the user's httpd.conf this server was launched from (apache-conf), else ""

    def effective_config(self) -> str:
        """The httpd.conf this server was started with (written by the launcher)."""
        try:
            with open(self.conf_path) as f:
                return f.read()
        except OSError:
            return super().effective_config()

    def _check_ready(self, deadline: float) -> None:
        # the port must be ours (the parent listens on it), and a child must answer mod_status
        while True:
            if self.proc.poll() is not None:
                raise self._not_ready(f"httpd exited (status {self.proc.returncode}) before it was ready")
            if self.port in listening_ports(self.pid):
                try:
                    left = max(0.1, min(2.0, deadline - time.monotonic()))
                    if self.status_path is None:  # no status page: any answer from a child will do
                        if self.get("/", timeout=left)[0]:
                            return
                    else:
                        code, body = self.get(self.status_path + "?auto", timeout=left)
                        if code == 200 and b"Scoreboard:" in body:
                            return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise self._not_ready(f"{self.status_path or '/'} never answered")
            time.sleep(0.02)


def build_conf(mpm: str, overrides: Mapping[str, Any], config: str | os.PathLike | None,
               run_dir: str, ports: Iterable[int] | None = None,
               app_conf: Callable[[ServerConfig], list[str]] | None = None,
               ) -> tuple[str, ServerConfig, list[tuple[str, int]], str, str, list[str]]:
    """(httpd.conf text, effective config, listen addresses, pidfile, error log, notes) for one launch.

    ``app_conf(cfg)``, when given, writes what serves the app instead of the static files."""
    ours, passed = split_overrides(overrides)
    ours.setdefault("Listen", "127.0.0.1:0")
    cfg = load_config(mpm, config, ours)
    pidfile = cfg.PidFile or os.path.join(run_dir, "httpd.pid")
    error_log = cfg.ErrorLog or os.path.join(run_dir, "error.log")
    picked = list(ports or [])
    listen = []
    for i, (host, port) in enumerate(cfg.Listen):
        if port == 0:
            port = picked[i] if i < len(picked) else free_port(host)
        listen.append((host, port))
    notes = notes_for(cfg, ours)
    text = render_conf(
        cfg, listen=listen, run_dir=run_dir, pidfile=pidfile, error_log=error_log,
        docroot=os.path.join(run_dir, "htdocs"), bytes_dir=bytes_dir() if app_conf is None else "",
        modules=modules_dir() or "", mpm_load=_mpm_load_line(mpm) or "", user_group=run_as(), passthrough=passed,
        notes=notes, log_load=_log_load_lines(), app_lines=app_conf(cfg) if app_conf is not None else None,
    )
    return text, cfg, listen, pidfile, error_log, notes


_BIND_FAILED = ("AH00072", "Address already in use", "could not bind")


def start(name: str, mpm: str, overrides: dict, *, app: str | None, config, cpus, run_dir: str | None,
          env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float) -> ApacheHandle:
    """Write the run directory and start httpd (not yet waited on, except for a port taken meanwhile).

    ``mpm`` "conf" (``apache-conf``): from the user's own httpd.conf (:func:`start_from_conf`)."""
    if app not in (None, DEFAULT_APP):
        raise NotApplicable(f"not applicable to {name}: httpd serves files, it cannot run the WSGI app {app}")
    if mpm == "conf":
        return start_from_conf(name, overrides, config=config, cpus=cpus, run_dir=run_dir, env=env,
                               required=required)
    return launch(name, mpm, overrides, config=config, cpus=cpus, run_dir=run_dir, env=env, required=required,
                  timeout=timeout)


def launch(name: str, mpm: str, overrides: dict, *, config, cpus, run_dir: str | None,
           env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float,
           app_conf: Callable[[str], Callable[[ServerConfig], list[str]]] | None = None,
           handle_type: type[ApacheHandle] | None = None) -> ApacheHandle:
    """Write the run directory and start httpd with ``mpm`` from our directives.

    ``app_conf(run_dir)``, when given, writes what the app needs into the run directory and
    returns the hook :func:`build_conf` calls for its httpd.conf lines (mod_wsgi,
    servers/external/modwsgi.py); ``handle_type`` is the handle to return."""
    own = run_dir is None
    run_dir = run_dir or tempfile.mkdtemp(prefix=f"mpm-{name}-")
    if run_as() is not None:
        os.chmod(run_dir, 0o755)  # httpd's children run as User and read the document root below it
    if app_conf is None:
        _write_docroot(run_dir)
    app_lines = app_conf(run_dir) if app_conf is not None else None
    binary = find_binary()
    assert binary is not None
    conf_path = os.path.join(run_dir, "httpd.conf")
    for attempt in range(3):
        text, cfg, listen, pidfile, error_log, notes = build_conf(mpm, overrides, config, run_dir,
                                                                  app_conf=app_lines)
        check_required(name, cfg, overrides, required)
        with open(conf_path, "w") as f:
            f.write(text)
        argv = [binary, "-f", conf_path, "-D", "FOREGROUND"]
        log_size = os.path.getsize(error_log) if os.path.exists(error_log) else 0
        proc = spawn(argv, log_path=error_log, cpus=cpus, env=child_env(env), cwd=run_dir)
        host, port = listen[0]
        url = f"http://{_fmt_listen(host, port)}"
        handle = (handle_type or ApacheHandle)(
            name=name, proc=proc, run_dir=run_dir, log_path=error_log, pidfile=pidfile, url=url, notes=tuple(notes),
            _own_run_dir=own, mpm=mpm, conf_path=conf_path, status_path=cfg.StatusLocation)
        # a port picked here may be taken by someone else before httpd binds it: then httpd exits at
        # once (it binds before it forks); try another port rather than fail the launch
        if any(p == 0 for _, p in cfg.Listen) and attempt < 2 and _exited_on_bind(handle, log_size, min(timeout, 5.0)):
            _reap(handle)
            continue
        return handle
    return handle  # pragma: no cover - the loop always returns


def _exited_on_bind(handle: ApacheHandle, log_size: int, timeout: float) -> bool:
    """True if httpd exited because its port was taken (waits only until it listens or exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.proc.poll() is not None:
            return any(m in handle.log_text()[log_size:] for m in _BIND_FAILED)
        if handle.port in listening_ports(handle.pid):
            return False
        time.sleep(0.01)
    return False


def _reap(handle: ApacheHandle) -> None:
    handle.proc.wait()
    with open(handle.log_path, "a") as f:
        f.write(f"[mpm-harness] port {handle.port} was taken before httpd bound it; trying another\n")


# ------------------------------------------------------------------ a user's own httpd.conf

#: where ``apache-conf`` finds the user's httpd.conf when start() gets no ``config=``
CONF_ENV = "MPM_HARNESS_HTTPD_CONF"
_INCLUDES = frozenset({"include", "includeoptional"})
_LOGS = frozenset({"customlog", "transferlog", "globallog"})
_DROPPED = frozenset({"pidfile", "defaultruntimedir"})  # written once, at the top, by the launcher
_MAX_DEPTH = 128  # httpd's AP_MAX_INCLUDE_DEPTH
_DIRECTIVE = re.compile(r"^(\s*)([^\s#]\S*)(?:\s+(.*?))?\s*$")
_FIRST_ARG = re.compile(r'^("(?:[^"\\]|\\.)*"|\'[^\']*\'|\S+)(.*)$')
_MPM_LOAD = re.compile(r"^\s*LoadModule\s+mpm_(\w+)_module\b", re.I)
#: a status page's Require lines that let the launcher (on loopback) read it
_LOOPBACK_GRANT = re.compile(r"^\s*Require\s+(local\b|all\s+granted\b|ip\s+(127\.|::1\b))", re.I)


def _words(args: str) -> list[str]:
    """httpd's ap_getword_conf, enough for paths and addresses: blank-separated, "..." or '...' kept whole."""
    return [a or b or c for a, b, c in re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|(\S+)', args)]


def _directive(line: str) -> tuple[str, list[str]]:
    """(directive name in lower case, its arguments) of a config line; ("", []) for a blank or a comment."""
    m = _DIRECTIVE.match(line)
    return (m.group(2).lower(), _words(m.group(3) or "")) if m else ("", [])


def _logical_lines(path: str) -> list[str]:
    """A config file's lines with backslash continuations joined, as httpd's ap_cfg_getline reads them."""
    with open(path, errors="replace") as f:
        raw = f.read().splitlines()
    out: list[str] = []
    pending = ""
    for line in raw:
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        out.append(pending + line)
        pending = ""
    return out + ([pending] if pending else [])


def _include_files(pattern: str, root: str, optional: bool) -> list[str] | None:
    """The files an Include names, in httpd's order (sorted; a directory: every file below it).

    None: nothing there for a plain Include -- the line is kept, so httpd itself reports it (or
    skips it inside an <IfModule> that is false)."""
    path = pattern if os.path.isabs(pattern) else os.path.join(root, pattern)
    matches = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path] * os.path.exists(path)
    if not matches:
        return [] if optional else None
    files: list[str] = []
    for m in matches:
        files += sorted(os.path.join(d, f) for d, _, fs in os.walk(m) for f in fs) if os.path.isdir(m) else [m]
    return files


def flatten(path: str, server_root: str, variables: Mapping[str, str] | None = None) -> list[str]:
    """The configuration as httpd reads it: every Include / IncludeOptional replaced by the files it
    names (relative to ServerRoot, which a ServerRoot line changes for what follows; ``${VAR}`` from
    ``variables``, default the environment, and the Define lines before it), in one list of lines."""
    root = [server_root]
    defined = dict(os.environ if variables is None else variables)

    def read(file: str, depth: int) -> list[str]:
        if depth > _MAX_DEPTH:
            raise LaunchError(f"{file}: Include nested deeper than {_MAX_DEPTH} (a loop?)")
        out = [f"# ---- {file}"]
        for line in _logical_lines(file):
            name, args = _directive(line)
            if name == "serverroot" and args:
                root[0] = args[0]
            if name == "define" and args:
                defined[args[0]] = args[1] if len(args) > 1 else ""
            if name in _INCLUDES and args:
                pattern = re.sub(r"\$\{(\w+)\}", lambda v: defined.get(v.group(1), v.group(0)), args[0])
                files = _include_files(pattern, root[0], name == "includeoptional")
                if files is not None:
                    for f in files:
                        out += read(f, depth + 1)
                    continue
            out.append(line)
        return out

    return read(os.path.abspath(path), 0)


@dataclass(frozen=True)
class UserConf:
    """A user's httpd.conf as the launcher runs it: flattened, with Listen, PidFile and the logs moved."""

    source: str  # the user's file
    server_root: str
    text: str  # the file written into the run directory
    mpm: str | None  # mpm_<name>_module loaded (or compiled in); None: none, httpd will refuse to start
    listen: tuple[tuple[str, int], ...]  # our addresses, the first one the handle's URL
    moved: tuple[tuple[str, str], ...]  # (the user's Listen argument, ours)
    status_path: str | None  # <Location P> SetHandler server-status granting loopback, else None


def _port_of(arg: str) -> int | None:
    tail = arg.rsplit(":", 1)[-1] if not arg.startswith("[") or "]:" in arg else ""
    return int(tail) if tail.isdigit() else None


def _mpms(lines: list[str]) -> list[str]:
    found = [m.group(1) for m in map(_MPM_LOAD.match, lines) if m]
    binary = find_binary()
    compiled = [n for n in MPMS if binary and f"{n}.c" in _compiled_in(binary)]
    return found or compiled


def _status_location(lines: list[str]) -> str | None:
    """The first <Location> whose handler is server-status and whose Require lets loopback in."""
    where, handler, granted = None, False, False
    for line in lines:
        s = line.strip()
        if s.lower().startswith("<location ") and s.endswith(">"):
            where, handler, granted = (_words(s[len("<location "):-1]) or [None])[0], False, False
        elif s.lower().startswith("</location"):
            if where and handler and granted:
                return where
            where = None
        elif where:
            handler |= bool(re.match(r"SetHandler\s+server-status\b", s, re.I))
            granted |= bool(_LOOPBACK_GRANT.match(s))
    return None


def _moved_listen(lines: list[str], host: str, port: int) -> dict[str, tuple[str, int]]:
    """Each distinct Listen argument of the user's -> our address (the first one on ``port`` if not 0)."""
    out: dict[str, tuple[str, int]] = {}
    for line in lines:
        name, args = _directive(line)
        if name == "listen" and args:
            arg = args[0]
            if arg not in out:
                out[arg] = (host, port if port and not out else free_port(host))
    return out


def _rewrite(line: str, moved: dict[str, tuple[str, int]], by_port: dict[int, int],
             error_log: str, logs_dir: str) -> str:
    """One line with its Listen, VirtualHost port, ErrorLog or access-log file moved (others as they are)."""
    m = _DIRECTIVE.match(line)
    if not m:
        return line
    indent, name, args = m.group(1), m.group(2).lower(), m.group(3) or ""
    if name == "listen" and _words(args):
        words = _words(args)
        return f"{indent}Listen {_fmt_listen(*moved[words[0]])} {' '.join(words[1:])}".rstrip()
    if name in _DROPPED:
        return f"{indent}# mpm-harness: {line.strip()}  (set by the launcher above)"
    if name == "errorlog":
        return f"{indent}ErrorLog {conf_quoted(error_log)}"
    if name in _LOGS and _FIRST_ARG.match(args):
        target, rest = _FIRST_ARG.match(args).groups()
        base = os.path.basename(target.strip("\"'")) if not target.strip("\"'").startswith(("|", "syslog")) else ""
        return f"{indent}{m.group(2)} {conf_quoted(os.path.join(logs_dir, base or 'access.log'))}{rest}"
    if name.lower() == "<virtualhost" and args.endswith(">"):
        addrs = [f"*:{by_port[p]}" if (p := _port_of(a)) in by_port else a for a in _words(args[:-1])]
        return f"{indent}<VirtualHost {' '.join(dict.fromkeys(addrs))}>"
    return line


def read_user_conf(path: str, run_dir: str, *, host: str = "127.0.0.1", port: int = 0,
                   server_root: str | None = None, variables: Mapping[str, str] | None = None) -> UserConf:
    """The user's httpd.conf ``path`` made to run beside other servers: flattened (:func:`flatten`),
    each of its Listen arguments moved to ``host`` and a free port (``port`` for the first, if given),
    its <VirtualHost> ports moved with them, PidFile and DefaultRuntimeDir in ``run_dir``, every
    ErrorLog on ``run_dir``/error.log and every CustomLog/TransferLog/GlobalLog file in ``run_dir``/logs.
    Everything else -- its modules, MPM and directives -- is the user's. ServerRoot: the file's own,
    else ``server_root``, else the file's directory (where Debian's apache2.conf relies on httpd's
    compiled-in /etc/apache2)."""
    path = os.path.abspath(path)
    root = _own_server_root(path) or server_root or os.path.dirname(path)
    lines = flatten(path, root, variables)
    moved = _moved_listen(lines, host, port)
    if not moved:  # no Listen at all: httpd would not start ("no listening sockets available")
        moved = {"(none)": (host, port or free_port(host))}
        lines.append(f"Listen {_fmt_listen(*moved['(none)'])}")
    by_port: dict[int, int] = {}
    for arg, (_, new) in moved.items():
        if _port_of(arg) is not None:
            by_port.setdefault(_port_of(arg), new)
    error_log, logs_dir = os.path.join(run_dir, "error.log"), os.path.join(run_dir, "logs")
    mpms = _mpms(lines)
    head = [f"# written by mpm-harness (servers/external/apache.py) from {path}",
            f"# MPM: {mpms[0] if mpms else 'none loaded'}; moved: Listen, PidFile, DefaultRuntimeDir and the logs",
            f"ServerRoot {conf_quoted(root)}", f"DefaultRuntimeDir {conf_quoted(run_dir)}",
            f"PidFile {conf_quoted(os.path.join(run_dir, 'httpd.pid'))}", f"ErrorLog {conf_quoted(error_log)}"]
    body = [_rewrite(line, moved, by_port, error_log, logs_dir) for line in lines]
    primary = _primary(lines, moved)
    listen = [primary] + [a for a in dict.fromkeys(moved.values()) if a != primary]
    return UserConf(source=path, server_root=root, text="\n".join(head + body) + "\n",
                    mpm=mpms[0] if mpms else None, listen=tuple(listen),
                    moved=tuple((a, _fmt_listen(*b)) for a, b in moved.items()), status_path=_status_location(lines))


def _own_server_root(path: str) -> str | None:
    """The ServerRoot the main file sets before any Include (httpd reads it as it goes), else None."""
    for line in _logical_lines(path):
        name, args = _directive(line)
        if name in _INCLUDES:
            return None
        if name == "serverroot" and args:
            return args[0]
    return None


def _primary(lines: list[str], moved: dict[str, tuple[str, int]]) -> tuple[str, int]:
    """The address of the first Listen outside any <IfModule>/<IfDefine> section (else the first)."""
    depth = 0
    for line in lines:
        s = line.strip()
        depth += s.startswith("<") and not s.startswith("</")
        depth -= s.startswith("</")
        name, args = _directive(line)
        if depth == 0 and name == "listen" and args:
            return moved[args[0]]
    return next(iter(moved.values()))


def conf_env(run_dir: str, env: Mapping[str, str] | None) -> dict[str, str]:
    """The environment Debian's /etc/apache2/envvars gives httpd (apache2ctl sources it), pointed at
    ``run_dir``: the ${APACHE_*} variables its apache2.conf uses. ``env`` may set the user and group."""
    user = run_as() or (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
    out = {"APACHE_RUN_USER": user[0], "APACHE_RUN_GROUP": user[1], **(env or {})}
    out.update(APACHE_RUN_DIR=run_dir, APACHE_LOCK_DIR=run_dir, APACHE_LOG_DIR=os.path.join(run_dir, "logs"),
               APACHE_PID_FILE=os.path.join(run_dir, "httpd.pid"))
    return out


def conf_unavailable(path: str | os.PathLike | None) -> str | None:
    """Why ``apache-conf`` cannot start from the httpd.conf at ``path`` here (None: it can try).

    httpd itself judges the file's contents when it starts; this only says what is missing
    before that: the binary (naming the package) or the file."""
    binary = find_binary()
    if binary is None:
        return f"apache2 not found: {INSTALL}"
    if not path:
        return (f"it runs your own httpd.conf: set {CONF_ENV}=/etc/apache2/apache2.conf (or yours), "
                "or give httpd_conf: in a matrix entry")
    return None if os.path.isfile(path) else f"no httpd.conf at {os.fspath(path)}"


def start_from_conf(name: str, overrides: dict, *, config, cpus, run_dir: str | None,
                    env: Mapping[str, str] | None, required: tuple[str, ...]) -> ApacheHandle:
    """Start httpd from the user's own httpd.conf (``config``, else ``$MPM_HARNESS_HTTPD_CONF``).

    ``overrides`` may hold ``Listen`` (its host, and a port for the first Listen) and ``ServerRoot``;
    anything else is the user's file's business: noted as not applied, NotApplicable when required.
    The handle's notes and effective_config() name the file and the MPM it loaded."""
    source = os.fspath(config) if config is not None else os.environ.get(CONF_ENV)
    if not source:
        raise LaunchError(f"{name} runs your own httpd.conf: start({name!r}, config=PATH) or set ${CONF_ENV}")
    if not os.path.isfile(source):
        raise LaunchError(f"{name}: no httpd.conf at {source}")
    rest = {k: v for k, v in overrides.items() if str(k).lower() not in ("listen", "serverroot")}
    for key in required:
        if key in rest:
            raise NotApplicable(f"not applicable to {name}: {key}: the directives are those of {source}")
    host, port = _listen_override(overrides.get("Listen") or overrides.get("listen"))
    own = run_dir is None
    run_dir = run_dir or tempfile.mkdtemp(prefix=f"mpm-{name}-")
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    if run_as() is not None:
        os.chmod(run_dir, 0o755)
    variables = child_env(conf_env(run_dir, env))
    conf = read_user_conf(source, run_dir, host=host, port=port, variables=variables,
                          server_root=overrides.get("ServerRoot") or overrides.get("serverroot"))
    conf_path = os.path.join(run_dir, "httpd.conf")
    with open(conf_path, "w") as f:
        f.write(conf.text)
    notes = (f"httpd.conf: {conf.source}", f"MPM: {conf.mpm or 'none loaded'}", f"ServerRoot: {conf.server_root}",
             *(f"Listen {a} moved to {b}" for a, b in conf.moved),
             *(f"{k} ignored: the directives are those of {conf.source}" for k in rest))
    error_log = os.path.join(run_dir, "error.log")
    proc = spawn([find_binary() or "apache2", "-f", conf_path, "-D", "FOREGROUND"], log_path=error_log, cpus=cpus,
                 env=variables, cwd=run_dir)
    return ApacheHandle(name=name, proc=proc, run_dir=run_dir, log_path=error_log,
                        pidfile=os.path.join(run_dir, "httpd.pid"), url=f"http://{_fmt_listen(*conf.listen[0])}",
                        notes=notes, _own_run_dir=own, mpm=conf.mpm or "", conf_path=conf_path,
                        status_path=conf.status_path, source_conf=conf.source)


def _listen_override(value: Any) -> tuple[str, int]:
    """(host, port) of a Listen override (``127.0.0.1:0`` by default)."""
    text = str(value or "127.0.0.1:0").strip()
    host, _, port = text.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port)) if port.isdigit() else (text.strip("[]"), 0)


def conf_values(text: str) -> dict[str, list[str]]:
    """Directive -> values of an httpd.conf text (top level and sections alike); for tests and docs."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "<")):
            continue
        name, *value = line.split(None, 1)
        out.setdefault(name, []).append(value[0] if value else "")
    return out


__all__ = ["ApacheHandle", "BYTES_SIZES", "CONF_ENV", "MPMS", "UserConf", "build_conf", "bytes_dir", "conf_unavailable",
           "conf_values", "directives", "find_binary", "flatten", "lacks", "launch", "modules_dir", "read_user_conf",
           "render_conf", "run_as", "start", "start_from_conf", "unavailable", "version"]
