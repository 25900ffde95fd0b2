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

from .rawhttp import Conn, request, wait_until
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
