"""h11 as the client: parse the bytes a server sent (the tests' independent HTTP/1.1 parser)."""

from __future__ import annotations

import h11


def parse_response(raw: bytes, method: str = "GET", *, eof: bool = False):
    """Parse ``raw`` as the answer to a ``method`` request; return (Response, body, h11 connection).

    ``eof``: the server closed the connection after ``raw`` (a close-delimited body ends there).
    Raises AssertionError when the bytes hold no complete response.
    """
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    if eof:
        conn.receive_data(b"")
    resp, body = None, b""
    while True:
        ev = conn.next_event()
        if isinstance(ev, h11.Response):
            resp = ev
        elif isinstance(ev, h11.Data):
            body += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            return resp, body, conn
        else:
            raise AssertionError(f"response did not complete: {ev!r} after {raw[:200]!r}")
