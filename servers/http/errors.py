"""Protocol errors raised by the sans-IO core.

Every error carries the status the server must answer with before it closes
the connection (RFC 9112 §2.2: a server that receives bytes it cannot parse as
a request SHOULD answer 400 and close; specific statuses per RFC 9110 §15).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A request the server refuses; answered with ``status`` and then a close."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


class BodyTooLarge(ProtocolError):
    """The request body exceeded LimitRequestBody (httpd answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds LimitRequestBody {limit}")


class ClientDisconnected(Exception):
    """The peer closed or reset the connection before the request was complete."""


class ReadTimeout(Exception):
    """No bytes arrived within the read deadline (httpd's Timeout / KeepAliveTimeout)."""
