"""Connection persistence as httpd decides it (``ap_set_keepalive``).

RFC 9112 §9.3: HTTP/1.1 is persistent by default, HTTP/1.0 only with the
``keep-alive`` option; ``Connection: close`` from either side ends it. httpd
adds: KeepAlive On and KeepAliveTimeout > 0, the body length known (or
chunked possible), fewer than MaxKeepAliveRequests continuations granted
(0 = unlimited), a status that does not force a close, and the MPM not
stopping. Verified behaviour (see docs/mpm-model.md §1): with
MaxKeepAliveRequests 3 a connection carries 4 responses; a client that sent
the ``keep-alive`` token gets ``Keep-Alive: timeout=N, max=3, 2, 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .request import Request

#: httpd's ap_status_drops_connection(): these statuses always close
DROPS_CONNECTION = frozenset({400, 408, 411, 413, 414, 417, 431, 500, 501, 503, 505})


@dataclass(frozen=True, slots=True)
class KeepAlivePolicy:
    """KeepAlive, KeepAliveTimeout (seconds) and MaxKeepAliveRequests."""

    enabled: bool = True
    timeout: float = 5.0
    max_requests: int = 100

    @classmethod
    def from_config(cls, cfg: object) -> "KeepAlivePolicy":
        """Build from a ServerConfig."""
        return cls(cfg.KeepAlive, cfg.KeepAliveTimeout, cfg.MaxKeepAliveRequests)  # type: ignore[attr-defined]

    def decide(
        self,
        req: Request,
        status: int,
        length_known: bool,
        keepalives: int,
        stopping: bool,
        app_close: bool = False,
        body_unread: bool = False,
    ) -> tuple[bool, bytes]:
        """Return (keep the connection open?, the Connection/Keep-Alive header lines).

        ``keepalives`` counts the continuations already granted on this
        connection (0 for its first response).
        """
        keep = (
            self.enabled
            and self.timeout > 0
            and not stopping
            and not app_close
            and not body_unread
            and not req.close_requested
            and not req.must_close
            and status not in DROPS_CONNECTION
            and (length_known or req.version >= (1, 1))
            and (req.version >= (1, 1) or req.keepalive_token)
            and (self.max_requests == 0 or keepalives < self.max_requests)
        )
        if not keep:
            return False, b"Connection: close\r\n"
        if req.keepalive_token:
            timeout = max(int(self.timeout), 1) if self.timeout >= 1 else 0
            if self.max_requests:
                left = self.max_requests - keepalives
                return True, b"Keep-Alive: timeout=%d, max=%d\r\nConnection: Keep-Alive\r\n" % (timeout, left)
            return True, b"Keep-Alive: timeout=%d\r\nConnection: Keep-Alive\r\n" % timeout
        return True, b""
