"""After a read timeout's 408 the lingering close is the short one: 2 s, not 30 s (issue 14 #5).

httpd's mod_reqtimeout, when it cuts a slow request, sets the connection note
"short-lingering-close": ap_lingering_close then drains the client for at most
SECONDS_TO_LINGER (2 s) instead of MAX_SECS_TO_LINGER (30 s), and event puts the
connection in its short_linger_q. So a slow client that keeps trickling bytes after its
408 cannot hold a process or thread for another 30 s. Ours kept it 30 s on every MPM
(prefork and worker holding their child or thread in ``C`` all that time).

The client here sends a partial head, stalls past RequestReadTimeout header=1 (or a part
of its body past body=1, or a partial head past Timeout 1 with mod_reqtimeout's stages
off), reads its 408, then keeps the connection open and sends one byte every 0.5 s (at
most 12 s of it).
The server must close the connection within 10 s of the 408 -- a functional bound on the
linger (the short one is 2 s, the long one 30 s), not a speed measurement -- and, with
one unit, serve the next request at once: the unit is free again.
"""

from __future__ import annotations

import socket
import time

import pytest

from suites.wire import Conn, request
from .serverutil import GET, ONE_UNIT

APP = "tests.wsgi_apps:app"
MPMS = ["prefork", "worker", "event"]
TRICKLE = 0.5  # seconds between two bytes after the 408
TRICKLE_FOR = 12.0  # the most the client trickles (bounded)
CLOSE_BOUND = 10.0  # the short linger is 2 s; the long one was 30 s
TCP_CLOSE = 7  # tcpi_state once the server's RST arrived (linux/tcp_states.h)


def _tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of ``sock`` (first byte of struct tcp_info)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def trickle_until_closed(sock: socket.socket, limit: float) -> float | None:
    """Send one byte every TRICKLE seconds until the server has closed the connection (its
    RST to a byte sent after its close, or a failed send); the time that took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            sock.send(b"X")
        except OSError:
            return time.monotonic() - start
        step_end = time.monotonic() + TRICKLE
        while time.monotonic() < step_end:
            if _tcp_state(sock) == TCP_CLOSE:
                return time.monotonic() - start
            time.sleep(0.02)  # polling the local TCP state between two bytes
    return None


#: which read times out: (directives, what the client sends before it stalls)
STAGES = {
    "header": ({"RequestReadTimeout": "header=1"}, b"GET / HTTP/1.1\r\nHost: a\r\n"),
    "body": ({"RequestReadTimeout": "header=1 body=1"},
             b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"),
    "Timeout": ({"RequestReadTimeout": "header=0 body=0", "Timeout": 1}, b"GET / HTTP/1.1\r\nHost: a\r\n"),
}


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("mpm", MPMS)
def test_short_linger_after_read_timeout_408(launch, mpm, stage):
    directives, sent = STAGES[stage]
    h = launch(mpm, {**ONE_UNIT[mpm], **directives}, app=APP)
    with Conn(h.port) as c:
        c.send(sent)  # then silence: a head or body that never ends
        r = c.read_response(timeout=10)
        assert r.status == 408
        after_408 = trickle_until_closed(c.sock, TRICKLE_FOR)
    assert after_408 is not None, f"{mpm} still lingered {TRICKLE_FOR} s after its 408"
    assert after_408 < CLOSE_BOUND, f"{mpm} closed {after_408:.1f} s after its 408"
    # one unit: it answers at once, so the lingering close no longer holds it
    assert request(h.port, GET, timeout=5).status == 200
