"""The Python interpreter a launched server runs on: which one (:func:`python_for`, :func:`python_of`),
whether a server may be given one (:func:`python_refusal`), and whether it can serve (:func:`probe_python`).

Our MPMs, gunicorn and waitress run as ``PYTHON -m PACKAGE`` on an interpreter of the caller's choice
(docs/harness.md, "Several Pythons in one run"); httpd runs none, and uWSGI, mod_wsgi and granian
bring their own. A reference server is known here by its ``servers.external`` module (what
``launcher.reference(name)`` returns; None for one of our MPMs): this module sits below the launcher,
which owns the names, so the caller passes the module in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterable, Mapping

from .launch_base import ROOT, LaunchError, child_env
from .mpm import MPM_NAMES

#: the interpreter a launch runs our MPMs, gunicorn and waitress on when start() is given none
#: (else this process's own): how the harness hands a matrix entry's ``python`` to its suites' pytest
PYTHON_ENV = "MPM_HARNESS_PYTHON"
#: the oldest Python the servers run on (pyproject's requires-python)
MIN_PYTHON = (3, 11)
#: why a reference server cannot be given an interpreter: it has none, or it brings its own
OWN_PYTHON = {
    "apache": "Apache httpd serving files runs no Python",
    "modwsgi": "mod_wsgi runs the Python it was compiled against, inside httpd",
    "uwsgi": "uWSGI runs the Python its binary (or plugin) was built against",
    "granian": "granian runs on the Python its own `granian` script was installed with",
}
#: printed by the probe (written for any Python, so that a Python 2 still says what it is)
_PROBE = """
import sys, json, platform
out = {"executable": sys.executable, "version": platform.python_version(),
       "implementation": platform.python_implementation(), "modules": {}, "packages": {}, "errors": {}}
if sys.version_info >= (3, 8):
    from importlib import import_module, metadata
    for name in sys.argv[1:]:
        try:
            out["modules"][name] = getattr(import_module(name), "__file__", None) or ""
        except BaseException as exc:
            out["modules"][name] = None
            out["errors"][name] = "%s: %s" % (type(exc).__name__, exc)
            continue
        try:
            out["packages"][name] = metadata.version(name.split(".")[0])
        except Exception:
            pass
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Interpreter:
    """A Python a server runs on, as it reports itself (:func:`probe_python`)."""

    executable: str  # its sys.executable (a venv's own path; a pyenv shim resolved)
    version: str  # platform.python_version(), e.g. 3.12.1
    implementation: str = "CPython"
    packages: Mapping[str, str] = field(default_factory=dict)  # module probed -> its distribution's version

    def to_dict(self) -> dict:
        """JSON-ready, for the results (docs/results.md, ``servers.<label>.python``)."""
        return {"executable": self.executable, "version": self.version, "implementation": self.implementation}


def python_for(python: str | None = None) -> str:
    """The interpreter a launch uses: ``python``, else $MPM_HARNESS_PYTHON, else this process's own."""
    return python or os.environ.get(PYTHON_ENV) or sys.executable


def python_package(server: ModuleType | None) -> str | None:
    """The package reference server ``server`` runs as ``PYTHON -m PACKAGE`` (its module's
    ``PYTHON_PACKAGE``: gunicorn, waitress), None for one that does not (and for ours: None)."""
    return getattr(server, "PYTHON_PACKAGE", None)


def python_refusal(server: ModuleType | None) -> str | None:
    """Why the reference server whose module is ``server`` cannot be started on an interpreter of the
    caller's choice, or None (``server`` None: our MPMs, or a name the launcher does not know; and the
    reference servers that run as ``PYTHON -m PACKAGE``: gunicorn, waitress)."""
    if server is None or python_package(server):
        return None
    kind = server.__name__.rsplit(".", 1)[-1]  # the launcher's servers.external.<kind>
    return OWN_PYTHON.get(kind, "it does not run as `python -m` of a package")


def python_of(name: str, server: ModuleType | None, python: str | None = None) -> str | None:
    """The interpreter server ``name`` (reference module ``server``) runs on: ``python_for(python)`` for
    ours, gunicorn and waitress, the one granian's script names; None for the servers with no Python or
    one built in (uWSGI, mod_wsgi), and for a name the launcher does not know."""
    if server is None:
        return python_for(python) if name in MPM_NAMES else None
    if python_refusal(server) is None:
        return python_for(python)
    own = getattr(server, "interpreter", None)
    return own() if own else None


def python_imports(name: str, server: ModuleType | None, app: str | None = None) -> tuple[str, ...]:
    """The modules server ``name`` (reference module ``server``) imports on its interpreter: the servers
    package, the reference server's own package, the application's module."""
    own = ("servers.__main__", f"servers.mpm.{name}") if name in MPM_NAMES else \
        ("servers", python_package(server) or "servers")
    return tuple(dict.fromkeys((*own, (app or "servers.apps:app").split(":")[0])))


def probe_python(python: str, imports: Iterable[str] = (), timeout: float = 60.0, *,
                 server: ModuleType | None = None) -> Interpreter:
    """Run ``python`` (a path or a name on PATH) once, with a launched server's environment: its
    version and, for each of ``imports``, whether it imports, from where and at which version.

    Raises LaunchError naming why it cannot run a server: not found, not runnable, older than
    :data:`MIN_PYTHON`, a module it cannot import, or ``servers`` imported from another tree
    (each with the fix; for the package of reference server ``server``, the project's ``peers`` extra).
    """
    exe = shutil.which(os.path.expanduser(python))
    if exe is None:
        found = os.path.exists(python)
        raise LaunchError(f"{python} is {'not executable' if found else 'not found'}"
                          + ("" if os.sep in python else " on PATH") + ": give the path of a Python >= 3.11")
    imports = tuple(imports)
    try:
        out = subprocess.run([exe, "-c", _PROBE, *imports], capture_output=True, text=True, timeout=timeout,
                             env=child_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LaunchError(f"{python} did not run as a Python ({type(exc).__name__}: {exc})") from None
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        said = " ".join(out.stderr.split())[-300:] or "no output"
        raise LaunchError(f"{python} ({exe}) did not run as a Python: exit status {out.returncode}: {said}") from None
    found = Interpreter(info["executable"] or exe, info["version"], info["implementation"], info["packages"])
    _check_probe(python, found, info["modules"], info.get("errors") or {}, imports, python_package(server))
    return found


def _check_probe(python: str, found: Interpreter, modules: Mapping[str, str | None], errors: Mapping[str, str],
                 imports: tuple[str, ...], peer: str | None) -> None:
    """LaunchError for a probed interpreter that cannot serve: too old, a module missing, another tree."""
    if tuple(int(x) for x in found.version.split(".")[:2]) < MIN_PYTHON:
        raise LaunchError(f"{python} is Python {found.version}; the servers need Python >= "
                          f"{'.'.join(map(str, MIN_PYTHON))}: give a newer interpreter")
    for name in imports:
        if modules.get(name) is None:
            raise LaunchError(f"{python} (Python {found.version}) cannot import {name} "
                              f"({errors.get(name) or 'not installed'}): {_fix(found, name, peer)}")
    where = modules.get("servers.__main__") or modules.get("servers")
    if where and not os.path.abspath(where).startswith(ROOT + os.sep):
        raise LaunchError(f"{python} imports servers from {where}, not from this checkout {ROOT}: "
                          f"{_fix(found, 'servers', peer)}")


def _fix(found: Interpreter, module: str, peer: str | None) -> str:
    """How to make ``module`` importable on ``found``: the project's install (with the peers extra for
    ``peer``, the reference server's package), or the app's path."""
    if module.split(".")[0] == "servers":
        extras = "dev"
    elif peer is not None and module == peer:
        extras = "dev,peers"
    else:
        return f"install it into {found.executable}'s environment, or put its directory on PYTHONPATH"
    return f"run `{found.executable} -m pip install -e '.[{extras}]'` from the checkout {ROOT}"
