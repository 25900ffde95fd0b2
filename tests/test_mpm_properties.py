"""The properties that tell the three MPMs apart, on loopback (issue: worker and event MPMs).

* idle keep-alive connections pin a process (prefork) or a thread (worker),
  but wait in the listener on event;
* slow-header clients hold a worker on prefork and worker, never on event;
  RequestReadTimeout lets all three recover.

"Starved" means: no answer within STARVED seconds while the server is in that
state; "served" means an answer within the usual test timeout.
"""

from __future__ import annotations

import pytest

from suites.wire import Conn, request, wait_until
from .serverutil import GET

APP = "tests.wsgi_apps:app"
STARVED = 1.5

#: MaxRequestWorkers 10 on every MPM; event gets room for 50 parked connections per the
#: AsyncRequestWorkerFactor arithmetic: 10 threads + 10 idle x 5 = 60 per process
TEN_WORKERS = {
    "prefork": {"StartServers": 10, "MinSpareServers": 1, "MaxSpareServers": 10, "MaxRequestWorkers": 10,
                "ServerLimit": 10},
    "worker": {"StartServers": 1, "ThreadsPerChild": 10, "MaxRequestWorkers": 10, "ServerLimit": 1,
               "MinSpareThreads": 1, "MaxSpareThreads": 20},
    "event": {"StartServers": 1, "ThreadsPerChild": 10, "MaxRequestWorkers": 10, "ServerLimit": 1,
              "MinSpareThreads": 1, "MaxSpareThreads": 20, "AsyncRequestWorkerFactor": 5},
}


def _answered_within(port: int, seconds: float) -> bool:
    try:
        return request(port, GET, timeout=seconds).status == 200
    except (TimeoutError, OSError):
        return False


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_fifty_idle_keepalive_connections(launch, mpm):
    h = launch(mpm, {**TEN_WORKERS[mpm], "KeepAliveTimeout": 60, "Timeout": 60}, app=APP)
    idle = []
    try:
        for i in range(50):
            c = Conn(h.port, timeout=2)
            c.send(GET)
            if i < 10 or mpm == "event":
                assert c.read_response().status == 200
            idle.append(c)
        served = _answered_within(h.port, STARVED)
        if mpm == "event":
            assert served, "event must serve a new client while 50 keep-alive connections idle"
            for c in idle:  # all 50 are still open and usable
                c.send(GET)
                assert c.read_response().status == 200
        else:
            assert not served, f"{mpm}: 10 workers pinned by keep-alive clients cannot serve an 11th"
    finally:
        for c in idle:
            c.close()


SLOW_CLIENTS = 200
#: 20 workers: with a 1 s header timeout, 200 slow heads drain in about 10 s on prefork and worker
SLOW_WORKERS = 20


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
@pytest.mark.parametrize("read_timeout", ["header=0 body=0", "header=1 body=1"])
def test_slow_header_clients(launch, mpm, read_timeout):
    cfg = {**TEN_WORKERS[mpm], "MaxRequestWorkers": SLOW_WORKERS, "Timeout": 30, "RequestReadTimeout": read_timeout}
    if mpm == "prefork":
        cfg.update(StartServers=SLOW_WORKERS, ServerLimit=SLOW_WORKERS, MaxSpareServers=SLOW_WORKERS)
    else:
        cfg.update(ThreadsPerChild=SLOW_WORKERS)
    h = launch(mpm, cfg, app=APP)
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            c = Conn(h.port, timeout=2)
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")  # a head that never ends
            slow.append(c)
        if mpm == "event":
            assert _answered_within(h.port, 5), "event reads heads in the listener: no worker is held"
        elif read_timeout.startswith("header=0"):
            assert not _answered_within(h.port, STARVED), f"{mpm} without a read timeout is held by slow heads"
        else:
            # each slow head is cut after 1 s with a 408, so the pool comes back
            wait_until(lambda: _answered_within(h.port, 3), 40, what=f"{mpm} to recover")
    finally:
        for c in slow:
            c.close()


#: one process with 4 units on every MPM, so the scoreboard row is easy to read
FOUR_UNITS = {
    "prefork": {"StartServers": 4, "MinSpareServers": 1, "MaxSpareServers": 8, "MaxRequestWorkers": 4,
                "ServerLimit": 4},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4,
               "MinSpareThreads": 1, "MaxSpareThreads": 8},
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4,
              "MinSpareThreads": 1, "MaxSpareThreads": 8},
}


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_scoreboard_states_match_httpd(launch, mpm):
    """httpd's scoreboard under idle, keep-alive and load (mod_status key ``_SRWKDCLGI.``).

    idle: every unit ``_`` except the one answering the status request (``W``);
    keep-alive: prefork and worker show ``K`` for the unit the idle connection pins,
    event shows none (the connection waits in the listener: ConnsAsyncKeepAlive 1);
    load: a running request is ``W``.
    """
    import threading

    from .serverutil import status_or_none

    h = launch(mpm, {**FOUR_UNITS[mpm], "KeepAliveTimeout": 30}, app=APP)
    st = wait_until(lambda: (lambda s: s if s and s.scoreboard[:4].count("_") == 3 else None)(status_or_none(h)),
                    10, what="an idle scoreboard")
    assert sorted(st.scoreboard[:4]) == ["W", "_", "_", "_"]  # W = this status request itself
    assert set(st.scoreboard[4:]) <= {"."}
    with Conn(h.port) as idle:
        idle.send(GET)
        assert idle.read_response().status == 200
        if mpm == "event":
            st = wait_until(lambda: (lambda s: s if s and s.conns_async_keep_alive == 1 else None)(status_or_none(h)),
                            5, what="the parked connection counted")
            assert "K" not in st.scoreboard
        else:
            st = wait_until(lambda: (lambda s: s if s and "K" in s.scoreboard else None)(status_or_none(h)),
                            5, what="a K unit")
            assert st.scoreboard[:4].count("K") == 1
        done = threading.Event()
        t = threading.Thread(target=lambda: (request(h.port, b"GET /sleep?ms=800 HTTP/1.1\r\nHost: a\r\n\r\n"),
                                             done.set()))
        t.start()
        try:
            # two W: the sleeping request and the status request
            wait_until(lambda: (lambda s: s is not None and s.scoreboard[:4].count("W") == 2)(status_or_none(h)),
                       5, what="the running request shown as W")
        finally:
            t.join(10)
        assert done.is_set()
