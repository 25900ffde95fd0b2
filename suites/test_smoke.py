"""The smallest check that a server under test answers at all (RFC 9110 §6.6.1: Date on a 200)."""

import pytest

from suites.wire import Conn

#: the family marker (suites/plugin.py): ``-m smoke``
pytestmark = pytest.mark.smoke


@pytest.mark.must  # RFC 9110 §6.6.1: an origin server with a clock MUST send Date in a 2xx
def test_get_root_answers_with_date(server):
    with Conn(server.port, host=server.host) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: " + server.host.encode() + b"\r\n\r\n")
        r = c.read_response()
    assert 200 <= r.status < 300
    assert r.header("Date")
