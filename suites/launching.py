"""How every suite launches a server: the suite's short-timeout defaults, then the
directives given with ``--server-set``, then the test's own overrides.

The ``--server-set`` directives are stored here by ``suites/conftest.py`` when
pytest configures itself, so that every launch -- the session ``server``, a
``configured_server``, a module's own server -- runs the same server the
harness asked for (e.g. a prefork sized with ``MaxRequestWorkers=50``).
"""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from servers.launcher import LaunchError, NotApplicable, available, start

#: short timeouts so that the suites fit a 2-core CI machine
SUITE_DEFAULTS = {"MaintenanceInterval": 0.1, "Timeout": 5, "KeepAliveTimeout": 2, "GracefulShutdownTimeout": 10}

#: directives from --server-set, applied to every launch (set by conftest.pytest_configure)
SERVER_SETS: dict[str, Any] = {}


def launch(name: str, overrides: Mapping[str, Any] | None = None, *, app: str = "servers.apps:app"):
    """Start server ``name`` for a test; skip when it cannot run here, fail (with its log) when it does not start.

    The test's own ``overrides`` are *required*: a reference server without an equivalent
    for one of them (gunicorn has no MaxKeepAliveRequests) makes the test not applicable
    to it, and it is skipped saying so. The suite defaults and ``--server-set`` values are
    applied where the server can and otherwise ignored (``Handle.notes`` lists them).
    """
    why = available().get(name, "unknown")
    if name not in available():
        raise pytest.UsageError(f"--server {name!r}: unknown; available: {', '.join(available())}")
    if why is not None:
        pytest.skip(f"{name} is not available here: {why}")
    try:
        h = start(name, {**SUITE_DEFAULTS, **SERVER_SETS, **(overrides or {})}, app=app,
                  required=tuple(overrides or ()))
    except NotApplicable as exc:
        pytest.skip(str(exc))
    except LaunchError as exc:
        pytest.fail(f"{name} did not start: {exc}")
    h.mpm = name  # type: ignore[attr-defined]
    return h
