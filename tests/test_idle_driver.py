"""The idle keep-alive driver: answered vs starved connections, the hold callback, loopback only."""

from __future__ import annotations

import pytest

from harness.drivers.idle import run_idle
from servers.launcher import start


def test_prefork_answers_only_as_many_idle_connections_as_it_has_children():
    with start("prefork", {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 2, "MaxRequestWorkers": 2,
                           "ServerLimit": 2, "KeepAliveTimeout": 10}) as h:
        held = []
        r = run_idle(h.url + "/", connections=5, duration=0.2, timeout=1.5, on_hold=held.append)
    assert held == [2]  # called once, with the number answered
    assert r.requests == 2 and r.starved_connections == 3
    assert r.errors == {} and r.status_counts == {200: 2}
    assert sorted(r.per_connection) == [0, 0, 0, 1, 1]
    assert not r.ok  # starved connections: not the server's capacity
    assert r.extra["closed_by_server"] == 0


def test_event_parks_every_idle_connection():
    # the connection cap must hold all 20: 2 threads + 2 idle x 10 = 22 (with the default factor 2 it
    # is 6, and only connections accepted before the first ones were parked would get in)
    with start("event", {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2,
                         "MinSpareThreads": 1, "MaxSpareThreads": 4, "KeepAliveTimeout": 10,
                         "AsyncRequestWorkerFactor": 10}) as h:
        r = run_idle(h.url + "/", connections=20, duration=0.2, timeout=5)
        st = h.status()
    assert r.requests == 20 and r.starved_connections == 0 and r.ok
    assert st.total_accesses >= 20


def test_server_closing_idle_connections_is_counted():
    with start("event", {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2,
                         "MinSpareThreads": 1, "MaxSpareThreads": 4, "KeepAliveTimeout": 0.2}) as h:
        r = run_idle(h.url + "/", connections=3, duration=1.0, timeout=5)
    assert r.requests == 3 and r.extra["closed_by_server"] == 3


def test_only_loopback():
    with pytest.raises(ValueError, match="loopback"):
        run_idle("http://192.0.2.1/", connections=1, duration=0.1)
