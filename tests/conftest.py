"""Fixtures: start servers through the launcher with short, test-sized timings."""

from __future__ import annotations

import pytest

from servers.launcher import start

#: fast maintenance ticks and short timeouts so tests wait on conditions quickly
FAST = {"MaintenanceInterval": 0.1, "Timeout": 5, "KeepAliveTimeout": 2, "GracefulShutdownTimeout": 10}


@pytest.fixture
def launch():
    """``launch(name, overrides, app=...)`` -> Handle; every server is stopped after the test."""
    handles = []

    def _launch(name: str = "prefork", overrides: dict | None = None, **kw):
        cfg = dict(FAST)
        cfg.update(overrides or {})
        h = start(name, cfg, **kw)
        handles.append(h)
        return h

    yield _launch
    for h in handles:
        h.stop()
