"""Request size limits, named after httpd's core directives.

LimitRequestLine, LimitRequestFieldSize, LimitRequestFields and
LimitRequestBody (httpd core; defaults 8190, 8190, 100 and 0 = unlimited).
"""

from __future__ import annotations

from dataclasses import dataclass

#: the largest body length (Content-Length or chunk-size) a request may announce: httpd keeps
#: lengths in ``apr_off_t``, a signed 64-bit integer, and refuses what does not fit it
MAX_BODY_LENGTH = (1 << 63) - 1
#: digits of the largest length, in decimal and in hexadecimal (after leading zeros are stripped)
MAX_LENGTH_DECIMAL_DIGITS = len(str(MAX_BODY_LENGTH))
MAX_LENGTH_HEX_DIGITS = len(f"{MAX_BODY_LENGTH:x}")


@dataclass(frozen=True, slots=True)
class Limits:
    """The request limits one connection enforces."""

    request_line: int = 8190
    field_size: int = 8190
    fields: int = 100  # 0 = unlimited, as in httpd
    body: int = 0  # 0 = unlimited, as in httpd

    @property
    def max_head(self) -> int:
        """Largest header section we ever buffer: the request line plus every field, with CRLFs."""
        # LimitRequestFields 0 means unlimited in httpd; we still bound the buffer at 1000 fields' worth
        fields = self.fields or 1000
        return self.request_line + 2 + fields * (self.field_size + 2) + 2

    @classmethod
    def from_config(cls, cfg: object) -> "Limits":
        """Build from a ServerConfig (attributes named as httpd's directives)."""
        return cls(
            request_line=cfg.LimitRequestLine,  # type: ignore[attr-defined]
            field_size=cfg.LimitRequestFieldSize,  # type: ignore[attr-defined]
            fields=cfg.LimitRequestFields,  # type: ignore[attr-defined]
            body=cfg.LimitRequestBody,  # type: ignore[attr-defined]
        )
