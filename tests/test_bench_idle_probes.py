"""The idle driver's new-client probes (event-idle matrix), its fd limit and its pinning."""

from __future__ import annotations

import os
import resource

from harness.drivers.idle import _ensure_fd_limit, run_idle
from servers.launcher import start

EVENT = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2,
         "MinSpareThreads": 1, "MaxSpareThreads": 4, "KeepAliveTimeout": 30, "AsyncRequestWorkerFactor": 10}


def test_event_serves_new_clients_while_idle_connections_are_held():
    with start("event", EVENT) as h:
        r = run_idle(h.url + "/", connections=10, duration=3.0, timeout=5, probes=20)
    assert r.ok and r.requests == 10
    pr = r.extra["probes"]
    assert pr["probes"] == 20 and 1 <= pr["sent"] <= 20
    assert pr["answered"] == pr["sent"] and pr["failed"] == 0
    assert 0 < pr["p50_ms"] <= pr["p99_ms"] <= pr["max_ms"]


def test_prefork_pinned_by_idle_connections_leaves_new_clients_unanswered():
    # two children, each held by an idle connection: a new client waits; a finding, not a driver error
    with start("prefork", {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 2, "MaxRequestWorkers": 2,
                           "ServerLimit": 2, "KeepAliveTimeout": 30}) as h:
        r = run_idle(h.url + "/", connections=2, duration=1.0, timeout=0.3, probes=3)
    assert r.ok and r.errors == {}
    pr = r.extra["probes"]
    assert pr["sent"] >= 1 and pr["failed"] == pr["sent"] and pr["answered"] == 0
    assert pr["p50_ms"] is None


def test_without_probes_nothing_is_probed():
    with start("event", EVENT) as h:
        r = run_idle(h.url + "/", connections=2, duration=0.1, timeout=5)
    assert r.ok and "probes" not in r.extra


def test_the_driver_pins_its_thread_while_it_runs_only():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with start("event", EVENT) as h:
        r = run_idle(h.url + "/", connections=2, duration=0.1, timeout=5, cpus=[cpu])
    assert r.cpus == [cpu] and os.sched_getaffinity(0) == before


def test_fd_limit_raised_to_what_the_connections_need():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        _ensure_fd_limit(300)
        want = 300 if hard == resource.RLIM_INFINITY else min(300, hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (want, hard)
        _ensure_fd_limit(100)  # never lowered
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == want
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
