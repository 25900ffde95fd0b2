"""How every suite launches a server: the suite's short-timeout defaults, then the
directives given with ``--server-set``, then the test's own overrides.

The ``--server-set`` directives are stored here by ``suites/conftest.py`` when
pytest configures itself, so that every launch -- the session ``server``, a
``configured_server``, a module's own server -- runs the same server the
harness asked for (e.g. a prefork sized with ``MaxRequestWorkers=50``).

A test writes its configuration once, per MPM of ours; :func:`configuration`
gives it to any server: httpd runs its same-named MPM's (``apache-event`` what
``event`` runs: the launcher maps every directive to httpd's), the Python
servers (gunicorn, uWSGI, granian, waitress) their closest MPM's pool as a
fixed pool (:data:`DYNAMIC_POOL`, :data:`FIXED_POOL`). :func:`family` says
whose server a name is and :func:`model` (``servers.launcher.model``, re-exported here) which
MPM's configuration it takes.
"""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from servers.launcher import EXTERNAL, LaunchError, NotApplicable, available, model, start

__all__ = ["SUITE_DEFAULTS", "SERVER_SETS", "launch", "DYNAMIC_POOL", "FIXED_POOL", "family", "model", "httpd_twin",
           "configuration"]


#: short timeouts so that the suites fit a 2-core CI machine
SUITE_DEFAULTS = {"MaintenanceInterval": 0.1, "Timeout": 5, "KeepAliveTimeout": 2, "GracefulShutdownTimeout": 10}

#: directives from --server-set, applied to every launch (set by conftest.pytest_configure)
SERVER_SETS: dict[str, Any] = {}


def launch(name: str, overrides: Mapping[str, Any] | None = None, *, app: str = "servers.apps:app",
           optional: Mapping[str, Any] | None = None):
    """Start server ``name`` for a test; skip when it cannot run here, fail (with its log) when it does not start.

    The test's own ``overrides`` are *required*: a reference server without an equivalent
    for one of them (gunicorn has no MaxKeepAliveRequests) makes the test not applicable
    to it, and it is skipped saying so. The suite defaults, ``--server-set`` values and the
    test's ``optional`` directives (e.g. a Timeout long enough not to interfere, for a
    server that has one) are applied where the server can and otherwise ignored
    (``Handle.notes`` lists them).
    """
    why = available().get(name, "unknown")
    if name not in available():
        raise pytest.UsageError(f"--server {name!r}: unknown; available: {', '.join(available())}")
    if why is not None:
        pytest.skip(f"{name} is not available here: {why}")
    try:
        h = start(name, {**SUITE_DEFAULTS, **SERVER_SETS, **(optional or {}), **(overrides or {})}, app=app,
                  required=tuple(overrides or ()))
    except NotApplicable as exc:
        pytest.skip(str(exc))
    except LaunchError as exc:
        pytest.fail(f"{name} did not start: {exc}")
    h.mpm = name  # type: ignore[attr-defined]
    return h


# -- one test configuration, every server ---------------------------------------------------------------

#: httpd directives that size or bound a *dynamic* pool; gunicorn (and every server in FIXED_POOL) runs a
#: fixed pool of StartServers workers (x ThreadsPerChild threads), so where that pool already has the size
#: these directives bound, they are dropped for it instead of making the test not applicable
DYNAMIC_POOL = ("MinSpareServers", "MaxSpareServers", "MinSpareThreads", "MaxSpareThreads", "MaxRequestWorkers",
                "ServerLimit", "ThreadLimit")
#: server families that run a fixed pool sized StartServers (x ThreadsPerChild): waitress runs the
#: product as threads of its one process
FIXED_POOL = frozenset(("gunicorn", "uwsgi", "granian", "waitress"))


def family(name: str) -> str:
    """``ours``, ``apache``, ``gunicorn``, ``uwsgi``, ``granian`` or ``waitress``: whose server ``name`` is."""
    return EXTERNAL[name][0] if name in EXTERNAL else "ours"


def httpd_twin(name: str) -> str:
    """The name whose per-server expectations server ``name`` shares: ``apache-X`` for an app
    served by mod_wsgi inside httpd's X MPM (``modwsgi-daemon``: its event front), since httpd
    reads, keeps and writes the connections and mod_wsgi only runs the app; ``name`` itself
    otherwise."""
    if family(name) == "modwsgi" and model(name) is not None:
        return f"apache-{model(name)}"
    return name


def configuration(name: str, configs: Mapping[str, Mapping[str, Any]]) -> dict | None:
    """A test's configuration, written per MPM of ours, for server ``name`` (None: none applies).

    ``configs[name]`` when the test wrote one for that very server; otherwise the one for
    :func:`model` (name): ``apache-event`` runs exactly what ``event`` runs. For a fixed-pool
    server (:data:`FIXED_POOL`: gunicorn, uWSGI, granian, waitress) the dynamic-pool directives
    (:data:`DYNAMIC_POOL`) are dropped when its fixed pool is the size they bound (StartServers x
    ThreadsPerChild == MaxRequestWorkers), so a capacity of 10 is 10 sync workers or one gthread
    worker with 10 threads (waitress: 10 threads in its one process); anything else it cannot honour
    still makes the launch not applicable (``launch`` requires a test's own directives).
    """
    if name in configs:
        return dict(configs[name])
    m = model(name)
    if m is None or m not in configs:
        return None
    cfg = dict(configs[m])
    if family(name) in FIXED_POOL:
        pool = cfg.get("StartServers", 1) * (cfg.get("ThreadsPerChild", 1) if m != "prefork" else 1)
        if cfg.get("MaxRequestWorkers", pool) != pool:
            return None  # a dynamic pool that grows past its start: a fixed pool cannot run it
        cfg = {k: v for k, v in cfg.items() if k not in DYNAMIC_POOL}
    return cfg
