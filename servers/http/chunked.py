"""Decoder for the chunked transfer coding of request bodies (RFC 9112 §7.1).

llhttp (httptools) checks the request head; the chunked body is decoded here
instead, because through httptools llhttp can neither stop at the end of the
message (it would run on into the next pipelined request), nor bound the size
of chunk extensions, and it refuses two things the RFC allows: whitespace
(BWS) around ``;`` and ``=`` in chunk extensions (RFC 9112 §7.1.1) and
framing fields in the trailer section, which must be accepted and simply
never used (RFC 9110 §6.5.1). What this decoder enforces:

* ``chunk-size = 1*HEXDIG``: any number of leading zeros (the grammar allows them, and
  httpd skips them too), then at most 16 significant digits and a value of at most
  2^63-1 (``MAX_BODY_LENGTH``, httpd's ``apr_off_t``); a larger size is 400 (§7.1:
  recipients MUST prevent integer overflow), never a number thousands of digits long.
  Then optional extensions ``*( BWS ";" BWS token [ BWS "=" BWS (token / quoted-string) ] )``,
  then CRLF; anything else is 400. Extensions are ignored (§7.1.1 MUST).
* A chunk-size line longer than LimitRequestFieldSize is 413, as httpd does.
* Chunk data must be followed by CRLF exactly (400 otherwise; bare LF is refused).
* Trailer fields are parsed like header fields (token name, no whitespace
  before the colon, no obs-fold, no CTL but HTAB in the value; 400), bounded
  by LimitRequestFieldSize / LimitRequestFields (431), and returned
  separately: they are never merged into the header section (§7.1.2).
* The decoded body is bounded by LimitRequestBody (413).
"""

from __future__ import annotations

import re

from .errors import BodyTooLarge, ProtocolError
from .limits import MAX_BODY_LENGTH, MAX_LENGTH_HEX_DIGITS

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)\Z"
)
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*\Z")
#: significant hex digits a chunk-size may have (leading zeros do not count)
MAX_HEX_DIGITS = MAX_LENGTH_HEX_DIGITS

_SIZE, _DATA, _DATA_CRLF, _TRAILER, _DONE = range(5)


def chunk_size(digits: bytes) -> int:
    """The value of a chunk-size's HEXDIGs (RFC 9112 §7.1), at most ``MAX_BODY_LENGTH``.

    Leading zeros are stripped first, as httpd's ``parse_chunk_size`` skips them: so
    ``00000000000000000000005`` is 5, however many zeros (the line itself is bounded by
    LimitRequestFieldSize). What remains is bounded before it is converted, so a huge
    size is refused as a number, never built with thousands of digits; above 2^63-1 it is
    400 (httpd answers such an overflow 413; the size is malformed, not merely too big).
    """
    significant = digits.lstrip(b"0")
    if len(significant) > MAX_HEX_DIGITS:
        raise ProtocolError(400, "chunk-size too large (RFC 9112 §7.1)")
    size = int(significant, 16) if significant else 0
    if size > MAX_BODY_LENGTH:
        raise ProtocolError(400, "chunk-size too large (RFC 9112 §7.1)")
    return size


class ChunkedDecoder:
    """Incremental decoder: ``next(buf)`` consumes from ``buf`` and returns body bytes,
    ``("end", trailers)`` when the message is complete, or None when it needs more bytes."""

    __slots__ = ("line_limit", "fields_limit", "body_limit", "state", "remaining", "total", "trailers")

    def __init__(self, line_limit: int = 8190, fields_limit: int = 100, body_limit: int = 0) -> None:
        self.line_limit = line_limit
        self.fields_limit = fields_limit
        self.body_limit = body_limit
        self.state = _SIZE
        self.remaining = 0
        self.total = 0
        self.trailers: list[tuple[str, str]] = []

    def _line(self, buf: bytearray, too_long: ProtocolError) -> bytes | None:
        i = buf.find(b"\n")
        if i < 0:
            if len(buf) > self.line_limit + 1:
                raise too_long
            return None
        if i > self.line_limit + 1:
            # checked first: a line this long is refused before its end arrives, whatever ends it
            raise too_long
        if i == 0 or buf[i - 1] != 0x0D:
            raise ProtocolError(400, "bare LF in chunked framing (RFC 9112 §7.1)")
        line = bytes(buf[: i - 1])
        del buf[: i + 1]
        return line

    def next(self, buf: bytearray):
        """Decode as much as one step allows; see the class docstring."""
        while True:
            state = self.state
            if state == _DATA:
                n = min(self.remaining, len(buf))
                if n == 0:
                    return None
                data = bytes(buf[:n])
                del buf[:n]
                self.remaining -= n
                if self.remaining == 0:
                    self.state = _DATA_CRLF
                return data
            if state == _SIZE:
                line = self._line(buf, ProtocolError(413, "chunk-size line longer than LimitRequestFieldSize"))
                if line is None:
                    return None
                m = _SIZE_LINE.match(line)
                if m is None:
                    raise ProtocolError(400, f"invalid chunk-size line {line[:40]!r} (RFC 9112 §7.1)")
                size = chunk_size(m.group(1))
                if self.body_limit and self.total + size > self.body_limit:
                    raise BodyTooLarge(self.body_limit)
                self.total += size
                if size == 0:
                    self.state = _TRAILER
                else:
                    self.remaining = size
                    self.state = _DATA
                continue
            if state == _DATA_CRLF:
                if len(buf) < 2:
                    if buf and buf[0] != 0x0D:
                        raise ProtocolError(400, "chunk data not followed by CRLF (RFC 9112 §7.1)")
                    return None
                if buf[0] != 0x0D or buf[1] != 0x0A:
                    raise ProtocolError(400, "chunk data not followed by CRLF (RFC 9112 §7.1)")
                del buf[:2]
                self.state = _SIZE
                continue
            if state == _TRAILER:
                line = self._line(buf, ProtocolError(431, "trailer field longer than LimitRequestFieldSize"))
                if line is None:
                    return None
                if not line:
                    self.state = _DONE
                    return ("end", self.trailers)
                m = _FIELD.match(line)
                if m is None:
                    raise ProtocolError(400, f"malformed trailer field {line[:40]!r} (RFC 9112 §7.1.2)")
                if self.fields_limit and len(self.trailers) >= self.fields_limit:
                    raise ProtocolError(431, "more trailer fields than LimitRequestFields")
                self.trailers.append((m.group(1).decode("latin-1"), m.group(2).decode("latin-1")))
                continue
            return ("end", self.trailers)
