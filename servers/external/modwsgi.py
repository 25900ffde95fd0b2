"""Apache httpd + mod_wsgi serving a WSGI app (``modwsgi-prefork``, ``modwsgi-worker``, ``modwsgi-event``,
``modwsgi-daemon``).

The same httpd as :mod:`servers.external.apache`, with the same httpd.conf written from our
directives (:func:`apache.build_conf`: the MPM sized exactly as the static Apache is, mod_status
at StatusLocation), except that instead of serving files it loads mod_wsgi and serves the
launcher's app (``servers.apps:app`` by default, any ``module:callable``) through a WSGI script
written into the run directory (``app.wsgi``, which loads the app with
:func:`servers.wsgi.load_app`, as our MPMs do):

* embedded mode (``modwsgi-prefork|worker|event``): the app runs inside httpd's own children,
  in the main interpreter (``WSGIApplicationGroup %{GLOBAL}``), imported when each child starts
  (``WSGIImportScript``), not by its first request;
* daemon mode (``modwsgi-daemon``): an event-MPM front (sized by the directives) passes each
  request over a UNIX socket in the run directory to ``WSGIDaemonProcess`` processes
  (StartServers processes x ThreadsPerChild threads, httpd's own sizing of the children it
  replaces), run as the User httpd's children run as; the front keeps no interpreter
  (``WSGIRestrictEmbedded On``). Event as the front because it only relays: idle keep-alive
  connections then cost no thread, and prefork's one-connection-per-process front would cap
  the daemons' concurrency at the front's process count.

mod_wsgi 5+ initialises Python in each child after it has dropped root (there is no longer a
``WSGILazyInitialization Off``), and daemon processes refuse to run as root. When the harness
runs as root and the interpreter's prefix is not reachable by httpd's User (pyenv under a mode
700 /root), ``WSGIPythonHome`` points at a hard-linked copy of the prefix in the temporary
directory (:func:`python_home`): the same files (no bytes copied, ~2 s once per machine and
site-packages state), reachable without changing any permission. ``$MPM_HARNESS_MODWSGI_HOME``
names another Python home to use. docs/mod_wsgi.md has the mapping table and the measurements.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shutil
import stat
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..config import ServerConfig, conf_quoted
from ..launch_base import ROOT
from ..launcher import LaunchError
from . import apache
from .peer import wait_for_app

#: the pip route: mod_wsgi compiles against apxs (apache2-dev) and this Python
INSTALL = "apt-get install apache2-dev && pip install mod_wsgi"
DEFAULT_APP = "servers.apps:app"
#: flavour -> the MPM httpd runs with (daemon mode: an event front)
MODES: dict[str, str] = {"prefork": "prefork", "worker": "worker", "event": "event", "daemon": "event"}
#: the MPM whose configuration each flavour takes in the suites (servers.launcher.model, which the suites re-export): its own
CLOSEST_MPM = MODES
MODULE_ENV = "MPM_HARNESS_MOD_WSGI"  # the mod_wsgi .so to load instead of the pip-installed one
HOME_ENV = "MPM_HARNESS_MODWSGI_HOME"  # the Python home mod_wsgi initialises from
DAEMON_GROUP = "mpm-harness"
SCRIPT = "app.wsgi"


# ------------------------------------------------------------------ discovery


@functools.lru_cache(maxsize=None)
def find_module() -> str | None:
    """The mod_wsgi shared object for this Python: ``$MPM_HARNESS_MOD_WSGI``, else pip's
    (``mod_wsgi/server/mod_wsgi-py311...so``, what ``mod_wsgi-express module-config`` loads)."""
    given = os.environ.get(MODULE_ENV)
    if given:
        return given if os.path.isfile(given) else None
    spec = importlib.util.find_spec("mod_wsgi")
    if spec is None or not spec.submodule_search_locations:
        return None
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for base in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(base, "server", f"mod_wsgi-{tag}*{suffix}")))
        if found:
            return found[0]
    return None


def mod_wsgi_version() -> str | None:
    """The installed mod_wsgi's version (its distribution's metadata)."""
    try:
        return importlib.metadata.version("mod_wsgi")
    except importlib.metadata.PackageNotFoundError:
        return None


def unavailable(flavour: str) -> str | None:
    """Why ``modwsgi-<flavour>`` cannot start here (naming what to do), or None."""
    why = apache.unavailable(MODES[flavour])
    if why is not None:
        return why
    if find_module() is None:
        where = f"${MODULE_ENV} names no file" if os.environ.get(MODULE_ENV) else "mod_wsgi not installed"
        return f"{where}: {INSTALL}"
    return home_unavailable() or checkout_unavailable()


def checkout_unavailable() -> str | None:
    """Why httpd's User cannot import the ``servers`` package from this checkout, or None: the WSGI
    script every flavour loads imports it (script_text), so a checkout under a mode-700 directory
    (``mktemp -d``, /root) cannot serve."""
    ids = _run_as_ids()
    if ids is None or _reachable(ROOT, *ids):
        return None
    return (f"httpd's User ({(apache.run_as() or ('?',))[0]}), which mod_wsgi runs the app as, cannot read this "
            f"checkout ({ROOT}), which the app's WSGI script imports `servers` from: put the checkout where every directory above it can be "
            "entered by others (not under a mode-700 directory such as `mktemp -d`'s or /root)")


def lacks(flavour: str) -> dict[str, str]:
    """Features of the launcher's interface it does not provide: none (the app runs, /echo
    mirrors it, httpd sends Keep-Alive and mod_status keeps the scoreboard)."""
    return {}


def version() -> str | None:
    """``Apache/2.4.x (...) mod_wsgi/X.Y.Z``."""
    httpd, wsgi = apache.version(), mod_wsgi_version()
    return f"{httpd} mod_wsgi/{wsgi}" if httpd and wsgi else None


# ------------------------------------------------------------------ the Python home


def _reachable(path: str, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` (in ``gids``) may traverse every directory down to ``path`` and list it."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(1, len(parts) + 1):
        try:
            st = os.stat(os.sep.join(parts[:i]) or os.sep)
        except OSError:
            return False
        need = stat.S_IXOTH | (stat.S_IROTH if i == len(parts) else 0)
        if st.st_uid == uid:
            need <<= 6
        elif st.st_gid in gids:
            need <<= 3
        if st.st_mode & need != need:
            return False
    return True


def _run_as_ids() -> tuple[int, set[int]] | None:
    """(uid, gids) of the User httpd's children and mod_wsgi's daemons run as; None when not root."""
    user = apache.run_as()
    if user is None:
        return None
    try:
        pw = pwd.getpwnam(user[0])
    except KeyError:
        return 65534, {65534}
    return pw.pw_uid, {pw.pw_gid, *os.getgrouplist(pw.pw_name, pw.pw_gid)}


def _prefix_reachable() -> bool:
    ids = _run_as_ids()
    return ids is None or _reachable(sys.prefix, *ids)


def home_unavailable() -> str | None:
    """Why no Python home reachable by httpd's User can be had here, or None."""
    if os.environ.get(HOME_ENV) or _prefix_reachable():
        return None
    if sys.prefix != sys.base_prefix:
        return (f"httpd's children cannot read this virtualenv's Python ({sys.prefix}): set {HOME_ENV} "
                "to a Python home with the app's packages that they can read")
    if os.stat(sys.prefix).st_dev != os.stat(tempfile.gettempdir()).st_dev:
        return (f"httpd's User cannot reach {sys.prefix} and it is on another filesystem than "
                f"{tempfile.gettempdir()} (no hard links): set {HOME_ENV} to a copy they can read")
    return None


def _home_key() -> str:
    """What the linked copy depends on: the prefix and the state of its site-packages."""
    site = sysconfig.get_paths()["purelib"]
    mtime = os.stat(site).st_mtime_ns if os.path.isdir(site) else 0
    return hashlib.sha256(f"{sys.prefix}\0{sys.version}\0{mtime}".encode()).hexdigest()[:12]


def python_home() -> tuple[str, str | None]:
    """(the Python home for WSGIPythonHome / python-home=, a note on where it comes from or None).

    ``$MPM_HARNESS_MODWSGI_HOME`` if set; ``sys.prefix`` when httpd's User can reach it (or
    the harness is not root); else a hard-linked copy of the prefix (:func:`linked_home`)."""
    given = os.environ.get(HOME_ENV)
    if given:
        return given, f"Python home {given} (${HOME_ENV})"
    if _prefix_reachable():
        return sys.prefix, None
    home = linked_home()
    return home, f"Python home {home}: {sys.prefix} hard-linked (httpd's User cannot reach the original)"


def linked_home() -> str:
    """A copy of ``sys.prefix`` made of hard links in the temporary directory, built once per
    machine and site-packages state (a package installed since gets a new one; old ones are
    removed a day later). Hard links share the files' inodes, so their own modes apply and nothing is copied;
    only the path no longer runs through the unreachable directory."""
    tmp = tempfile.gettempdir()
    base = os.path.join(tmp, f"mpm-harness-pyhome-{os.getuid()}-{_home_key()}")
    if _trusted_home(base):
        return base
    work = tempfile.mkdtemp(prefix=os.path.basename(base) + ".tmp-", dir=tmp)
    tree = os.path.join(work, "home")
    shutil.copytree(sys.prefix, tree, symlinks=True, copy_function=os.link)
    os.chmod(tree, 0o755)
    with open(os.path.join(tree, ".mpm-harness-complete"), "w") as f:
        f.write(f"{sys.prefix}\n")
    try:
        os.rename(tree, base)  # atomic; fails if another launch got there first
    except OSError:
        pass
    shutil.rmtree(work, ignore_errors=True)
    if not _trusted_home(base):  # httpd would run Python from it: never from a tree someone else made
        raise LaunchError(f"{base} exists but is not a complete Python home of this user; remove it")
    _remove_stale_homes(base)
    return base


def _trusted_home(path: str) -> bool:
    """A complete linked home, a real directory of ours that no one else may write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022
            and os.path.isfile(os.path.join(path, ".mpm-harness-complete")))


#: a linked home of an older site-packages state is removed once this old (a server started
#: from it may still be running; only its directory entries cost space)
STALE_HOME_AGE = 86400.0


def _remove_stale_homes(keep: str) -> None:
    """Our linked homes of other site-packages states older than :data:`STALE_HOME_AGE`, best effort."""
    for old in glob.glob(os.path.join(os.path.dirname(keep), f"mpm-harness-pyhome-{os.getuid()}-*")):
        try:
            st = os.lstat(old)
        except OSError:
            continue
        if old != keep and ".tmp-" not in old and st.st_uid == os.getuid() and \
                time.time() - st.st_mtime > STALE_HOME_AGE:
            shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------ configuration


def python_path() -> list[str]:
    """Where the app is imported from: the project root and the current directory (as our MPMs do)."""
    return list(dict.fromkeys([ROOT, os.getcwd()]))


def script_text(app: str) -> str:
    """The WSGI script mod_wsgi loads: the launcher's ``module:callable`` as ``application``."""
    return ("# written by mpm-harness (servers/external/modwsgi.py): the launcher's app\n"
            "from servers.wsgi import load_app\n\n"
            f"application = load_app({app!r})\n")


def write_script(run_dir: str, app: str) -> str:
    """Write :func:`script_text` into the run directory, readable by httpd's User; its path."""
    path = os.path.join(run_dir, SCRIPT)
    with open(path, "w") as f:
        f.write(script_text(app))
    os.chmod(path, 0o644)
    return path


def daemon_options(cfg: ServerConfig, *, home: str, path: list[str],
                   user_group: tuple[str, str] | None) -> list[str]:
    """``WSGIDaemonProcess`` options from our directives: StartServers processes x ThreadsPerChild
    threads; MaxConnectionsPerChild as maximum-requests (each relayed request is one connection
    to the daemon); ListenBacklog for the daemon's socket."""
    opts = [f"processes={cfg.StartServers}", f"threads={cfg.ThreadsPerChild}", "display-name=%{GROUP}",
            f"python-home={home}", f"python-path={':'.join(path)}", f"listen-backlog={cfg.ListenBacklog}"]
    if cfg.MaxConnectionsPerChild:
        opts.append(f"maximum-requests={cfg.MaxConnectionsPerChild}")
    if user_group:
        opts += [f"user={user_group[0]}", f"group={user_group[1]}"]
    return opts


def app_lines(flavour: str, cfg: ServerConfig, *, module: str, home: str, path: list[str], script: str,
              run_dir: str, user_group: tuple[str, str] | None) -> list[str]:
    """The httpd.conf lines that serve the app with mod_wsgi (pure: no file is read or written)."""
    lines = ["# the app, served by mod_wsgi", f"LoadModule wsgi_module {conf_quoted(module)}",
             f"WSGIPythonHome {conf_quoted(home)}", f"WSGISocketPrefix {conf_quoted(os.path.join(run_dir, 'wsgi'))}"]
    if flavour == "daemon":
        opts = daemon_options(cfg, home=home, path=path, user_group=user_group)
        lines += ["WSGIRestrictEmbedded On", f"WSGIDaemonProcess {DAEMON_GROUP} {' '.join(opts)}",
                  f"WSGIProcessGroup {DAEMON_GROUP}"]
        group = DAEMON_GROUP
    else:
        lines.append(f"WSGIPythonPath {conf_quoted(':'.join(path))}")
        group = "%{GLOBAL}"
    lines += ["WSGIApplicationGroup %{GLOBAL}", "WSGIChunkedRequest On",
              f"WSGIImportScript {conf_quoted(script)} process-group={group} application-group=%{{GLOBAL}}",
              f"WSGIScriptAlias / {conf_quoted(script)}",
              f"<Directory {conf_quoted(os.path.dirname(script))}>", "    Require all granted", "</Directory>"]
    return lines


def _app_conf(flavour: str, app: str, home: str) -> Callable[[str], Callable[[ServerConfig], list[str]]]:
    """The hook :func:`apache.launch` calls with the run directory: writes the script, returns the lines."""
    def prepare(run_dir: str) -> Callable[[ServerConfig], list[str]]:
        script = write_script(run_dir, app)
        return lambda cfg: app_lines(flavour, cfg, module=find_module() or "", home=home, path=python_path(),
                                     script=script, run_dir=run_dir, user_group=apache.run_as())
    return prepare


# ------------------------------------------------------------------ the handle

#: mod_wsgi's "Unable to execute Python script file" (WSGI0109 on a request, WSGI0110 at import)
_SCRIPT_FAILED = ("WSGI0109", "WSGI0110")
_EXCEPTION_LINE = re.compile(r"\]\s+((?:[A-Za-z_][\w.]*)(?:Error|Exception|Exit)\b.*)$")


def app_failure(log: str) -> str | None:
    """The exception that kept the WSGI script from loading, from httpd's error log (None: none)."""
    if not any(code in log for code in _SCRIPT_FAILED):
        return None
    for line in reversed(log.splitlines()):
        m = _EXCEPTION_LINE.search(line)
        if m:
            return m.group(1)
    return "mod_wsgi could not execute the WSGI script (see the error log)"



@dataclass
class ModWsgiHandle(apache.ApacheHandle):
    """httpd + mod_wsgi: ready when mod_status answers and the app answers ``GET /`` below 500
    (an app that fails to import answers 500: the start fails with the log's reason)."""

    def _check_ready(self, deadline: float) -> None:
        super()._check_ready(deadline)
        # a child may still be importing the app (WSGIImportScript) when the first GET comes: wait longer
        wait_for_app(self, deadline, server="httpd", request_timeout=5.0, failure=app_failure)


def start(name: str, flavour: str, overrides: dict, *, app: str | None, config, cpus, run_dir: str | None,
          env: Mapping[str, str] | None, required: tuple[str, ...], timeout: float) -> ModWsgiHandle:
    """Write the run directory (httpd.conf, app.wsgi) and start httpd + mod_wsgi (not yet waited on)."""
    home, note = python_home()
    handle = apache.launch(name, MODES[flavour], overrides, config=config, cpus=cpus, run_dir=run_dir, env=env,
                           required=required, timeout=timeout, app_conf=_app_conf(flavour, app or DEFAULT_APP, home),
                           handle_type=ModWsgiHandle)
    handle.notes = (*handle.notes, f"app: {app or DEFAULT_APP} ({'daemon' if flavour == 'daemon' else 'embedded'} "
                    f"mode, mod_wsgi/{mod_wsgi_version()})", *([note] if note else []), *path_notes())
    return handle  # type: ignore[return-value]


def path_notes() -> list[str]:
    """A directory of the app's Python path httpd's User cannot read (a module there will not import)."""
    ids = _run_as_ids()
    if ids is None:
        return []
    user = (apache.run_as() or ("?",))[0]
    return [f"{d} is not readable by {user}: a module there cannot be imported" for d in python_path()
            if d != ROOT and not _reachable(d, *ids)]  # an unreadable checkout: unavailable()


def conf_for(flavour: str, overrides: Mapping[str, Any], run_dir: str, app: str = DEFAULT_APP,
             home: str | None = None) -> str:
    """The httpd.conf a launch of ``modwsgi-<flavour>`` would run with (nothing started; for tests and docs)."""
    prepare = _app_conf(flavour, app, home or python_home()[0])
    return apache.build_conf(MODES[flavour], overrides, None, run_dir, app_conf=prepare(run_dir))[0]


__all__ = ["CLOSEST_MPM", "DEFAULT_APP", "INSTALL", "MODES", "ModWsgiHandle", "app_failure", "app_lines", "conf_for", "daemon_options",
           "find_module", "home_unavailable", "lacks", "linked_home", "python_home", "script_text", "start",
           "unavailable", "version"]
