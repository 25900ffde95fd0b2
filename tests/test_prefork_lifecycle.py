"""What only prefork does with its processes: one process per connection.

The lifecycle prefork shares with worker and event (spare maintenance, MaxRequestWorkers,
child death, signals, restarts) is tested for the three in tests/test_lifecycle.py.
Waits poll a condition with a deadline; MaintenanceInterval is 0.1 s (conftest.FAST).
"""

from __future__ import annotations

import pytest

from suites.wire import Conn
from .serverutil import GET, pid_of

APP = "tests.wsgi_apps:app"


def test_each_connection_holds_a_whole_child(launch):
    """prefork's one process per connection: two idle keep-alive clients hold both children of
    MaxRequestWorkers 2, and a third client is answered only once one of them leaves."""
    h = launch("prefork", {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 2, "MaxRequestWorkers": 2,
                           "ServerLimit": 2, "KeepAliveTimeout": 30}, app=APP)
    a1, a2, b = Conn(h.port), Conn(h.port), Conn(h.port)
    try:
        assert pid_of(h.port, a1) != pid_of(h.port, a2)  # each connection has a process of its own
        b.send(GET)
        with pytest.raises(TimeoutError):  # both children wait on their idle clients
            b.read_response(timeout=0.3)
        a1.close()
        assert b.read_response(timeout=5).status == 200
    finally:
        for c in (a1, a2, b):
            c.close()
