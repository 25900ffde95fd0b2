"""Sans-IO request reader: bytes in, request events out.

httptools (llhttp) checks the framing; this module adds what llhttp leaves
to the server, in one place:

* header-section limits (httpd's LimitRequestLine -> 414,
  LimitRequestFieldSize / LimitRequestFields -> 431 per RFC 6585 §5, where
  httpd itself answers 400), checked before the whole head is buffered;
* the request-line, version, target-form and Host rules of ``request.py``;
* ``Expect`` (RFC 9110 §10.1.1: 100-continue, anything else 417);
* Transfer-Encoding semantics (RFC 9112 §6.3: chunked not final -> 400, even
  for an unknown final coding; §6.1: an unknown coding before a final chunked
  -> 501; TE on HTTP/1.0 -> close after responding);
* LimitRequestBody -> 413;
* exact message boundaries, so pipelined requests are answered in order
  (RFC 9112 §9.3.2) and nothing after a body is ever read as part of it.

One fresh llhttp parser is used per message, for the head only: a
Content-Length body is sliced off directly and a chunked body is decoded by
``chunked.py``, so nothing can ever run past the end of a message into the
next pipelined one.
"""

from __future__ import annotations

from collections import deque

import httptools

from .chunked import ChunkedDecoder
from .errors import BodyTooLarge, ClientDisconnected, ProtocolError
from .limits import MAX_BODY_LENGTH, MAX_LENGTH_DECIMAL_DIGITS, Limits
from .request import Request, check_host, check_request_line, remember, split_target


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: more bytes are needed before another event can be produced
NEED_DATA = _Sentinel("NEED_DATA")
#: the peer closed cleanly between requests
CLOSED = _Sentinel("CLOSED")


class EndOfMessage:
    """The request body is complete; ``trailers`` holds any chunked trailer fields."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[str, str]] | None = None) -> None:
        self.trailers = trailers or []


#: the end of a message without trailers: immutable in practice, so one instance serves all
_END = EndOfMessage()

_HEAD, _BODY_LENGTH, _BODY_CHUNKED = range(3)
_KNOWN_CODINGS = {"chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress", "identity"}


#: the field names whose values the reader acts on (RFC 9112 §3.2, §6.1-§6.3, §9.6; RFC 9110 §10.1.1)
_F_HOST, _F_LENGTH, _F_CODING, _F_CONNECTION, _F_EXPECT = range(5)
_FIELD_KINDS = {"host": _F_HOST, "content-length": _F_LENGTH, "transfer-encoding": _F_CODING,
                "connection": _F_CONNECTION, "expect": _F_EXPECT}
#: raw field name -> (name as str, its kind or None): names repeat from request to request, so
#: each is decoded and classified once per process; bounded like request.py's memos
_FIELD_NAMES: dict[bytes, tuple[str, int | None]] = {}


def _field_name(raw: bytes) -> tuple[str, int | None]:
    """The str of a field name (latin-1, PEP 3333) and what the reader does with its value."""
    name = raw.decode("latin-1")
    known = (name, _FIELD_KINDS.get(name.lower()))
    remember(_FIELD_NAMES, raw, known)
    return known


class _Callbacks:
    """llhttp callbacks for one request head; collects its fields.

    Only what is needed is defined (httptools skips missing callbacks): the
    target comes from our own request-line split, and bodies never go
    through llhttp (see the module docstring).
    """

    __slots__ = ("headers", "complete")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        """llhttp: one complete header field (RFC 9112 §5)."""
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        """llhttp: the message ended within the head (no body)."""
        self.complete = True


def _status_for_parser_error(exc: Exception, head: bytes) -> ProtocolError:
    """Map an llhttp error to the status RFC 9110/9112 asks for."""
    if isinstance(exc, ProtocolError):
        return exc
    cause = exc.__context__
    if isinstance(cause, ProtocolError):
        return cause
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        # The request-line check already proved the method is a token: it is merely unknown.
        return ProtocolError(501, "method not implemented (RFC 9110 §9.1)")
    text = str(exc)
    if "Transfer-Encoding" in text:
        codings = [c for c in _transfer_codings(head) if c]
        if codings and codings[-1] != "chunked":
            # §6.3 ¶4 is the specific rule for requests: MUST 400 and close, even when the
            # final coding is also one we do not know (§6.1's SHOULD 501 yields to it)
            return ProtocolError(400, "chunked is not the final transfer coding (RFC 9112 §6.3)")
        if any(c not in _KNOWN_CODINGS for c in codings):
            return ProtocolError(501, "unknown transfer coding (RFC 9112 §6.1)")
        if "Content-Length" in text:
            return ProtocolError(400, "both Content-Length and Transfer-Encoding (RFC 9112 §6.1)")
        return ProtocolError(400, "chunked is not the final transfer coding (RFC 9112 §6.3)")
    if "Content-Length" in text:
        return ProtocolError(400, f"invalid Content-Length: {text} (RFC 9112 §6.3)")
    return ProtocolError(400, f"malformed request: {text}")


def content_length_value(value: str) -> int:
    """The length a Content-Length value announces (RFC 9110 §8.6: ``1*DIGIT``).

    llhttp has checked the syntax and refused values above 2^64-1; this bounds the
    value at 2^63-1 (``MAX_BODY_LENGTH``), as httpd does: its ``ap_parse_strict_length``
    must fit the length in ``apr_off_t`` and answers 400 otherwise (AH01587), before
    LimitRequestBody is looked at. So an unrepresentable length is a malformed request
    (400), even where LimitRequestBody would have answered 413 for a large one.
    Leading zeros are stripped before conversion: ``1*DIGIT`` allows any number of
    them, and Python refuses to convert strings of more than 4300 digits.
    """
    digits = value.strip(" \t")
    if not (digits.isascii() and digits.isdigit()):
        raise ProtocolError(400, f"invalid Content-Length {digits[:40]!r} (RFC 9112 §6.3)")
    digits = digits.lstrip("0")
    if len(digits) <= MAX_LENGTH_DECIMAL_DIGITS:  # bounded before conversion
        length = int(digits) if digits else 0
        if length <= MAX_BODY_LENGTH:
            return length
    raise ProtocolError(400, "Content-Length does not fit a 64-bit signed length (RFC 9110 §8.6)")


def _transfer_codings(head: bytes) -> list[str]:
    codings: list[str] = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"transfer-encoding":
            codings += [c.split(b";")[0].strip().lower().decode("latin-1") for c in value.split(b",")]
    return codings


class RequestReader:
    """Turns a connection's byte stream into Request / body / EndOfMessage events.

    ``feed(data)`` appends bytes (``b""`` means the peer closed);
    ``next_event()`` returns a :class:`Request`, body ``bytes``, an
    :class:`EndOfMessage`, ``NEED_DATA`` or ``CLOSED``, and raises
    :class:`ProtocolError` (answer with its status, then close) or
    :class:`ClientDisconnected`.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._buf = bytearray()
        self._eof = False
        self._state = _HEAD
        self._remaining = 0
        self._events: deque = deque()
        self._chunked: ChunkedDecoder | None = None
        self._failed: ProtocolError | None = None
        self._llhttp: httptools.HttpRequestParser | None = None
        #: where the method of the request being read starts (see method_hint): the last head, or
        #: the start of a partial one; decoded only when an error answer needs it
        self._hint_src = b""
        self._cb: _Callbacks | None = None
        # incremental checks of a head arriving in pieces (see _scan_head)
        self._scanned = 0  # bytes of the partial head already checked
        self._lfs = 0  # line ends among them
        self._line_start = 0  # where the line being received starts
        self._blank = 0  # empty lines skipped before this request-line
        lim = self.limits
        #: a head of at most this many bytes (+ its final CRLFCRLF) has no line over the limits
        self._short_head = min(lim.request_line, lim.field_size) - 3
        #: line ends a head may hold before its blank line: the request-line's and one per field
        self._max_lfs = lim.fields + 1 if lim.fields else 1 << 62

    # -- input ---------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add received bytes; an empty ``data`` records end of stream."""
        if data:
            self._buf += data
        else:
            self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet turned into events (pipelined input)."""
        return len(self._buf)

    @property
    def in_body(self) -> bool:
        """True while the current request's body has not been fully read."""
        if self._state != _HEAD:
            return True
        for e in self._events:
            if not isinstance(e, EndOfMessage):
                return True
        return False

    def skip_end(self) -> None:
        """Drop the queued EndOfMessage of a request that has no body."""
        if self._events and isinstance(self._events[0], EndOfMessage):
            self._events.popleft()

    # -- output --------------------------------------------------------------
    def next_event(self):
        """Return the next event; see the class docstring.

        After a ProtocolError the reader stays failed: every later call raises
        the same error, so no byte after a framing error is ever read as a request.
        """
        if self._events:
            return self._events.popleft()
        if self._failed is not None:
            raise self._failed
        try:
            if self._state == _HEAD:
                return self._next_head()
            if self._state == _BODY_LENGTH:
                return self._next_length_body()
            return self._next_chunked_body()
        except ProtocolError as exc:
            self._failed = exc
            self._events.clear()
            raise

    @property
    def method_hint(self) -> str:
        """The method of the request being read, as far as it was received (for error answers:
        a HEAD request gets its error without a body, RFC 9110 §9.3.2)."""
        src = self._hint_src
        sp = src.find(b" ", 0, 32)
        return src[:sp].decode("latin-1") if sp > 0 else ""

    def _next_head(self):
        buf = self._buf
        if not buf:
            return CLOSED if self._eof else NEED_DATA
        # RFC 9112 §2.2: ignore empty lines before the request-line. They are counted
        # across reads, so a client dribbling CRLFs meets the same bound as one sending
        # them at once.
        scanned = self._scanned
        if buf[0] == 0x0D and buf.startswith(b"\r\n"):
            start = 2
            while buf.startswith(b"\r\n", start):
                start += 2
            self._blank += start
            if self._blank > self.limits.request_line:
                raise ProtocolError(400, "too many empty lines before the request-line")
            del buf[:start]
            scanned = self._scanned = 0  # only a lone CR can have been scanned before
        # Only the bytes not searched yet (and the 3 before them, for a terminator
        # split across reads): a head arriving in pieces costs linear time, not quadratic.
        end = buf.find(b"\r\n\r\n", scanned - 3 if scanned > 3 else 0)
        if end < 0:
            self._hint_src = bytes(buf[:32])
            self._scan_head(len(buf))
            if self._eof:
                if buf:
                    raise ClientDisconnected("connection closed inside a request head")
                return CLOSED
            return NEED_DATA
        # The limits every partial head is held to apply to each prefix of this one too, so
        # the verdict does not depend on how the head was split across reads. A short head
        # that arrived at once can only break them with a bare LF or too many lines.
        if scanned or end > self._short_head:
            self._scan_head(end + 3)
            self._scanned = self._lfs = self._line_start = 0
        else:
            lfs = buf.count(b"\n", 0, end + 3)
            if lfs != buf.count(b"\r\n", 0, end + 3) or lfs > self._max_lfs:
                self._scan_head(end + 3)  # raises: a bare LF, or too many lines
                self._scanned = self._lfs = self._line_start = 0
        if self._blank:
            self._blank = 0
        end += 4
        if end == len(buf):  # the usual case: one read, one head (nothing pipelined behind it)
            head = bytes(buf)
            buf.clear()
        else:
            head = bytes(buf[:end])
            del buf[:end]
        self._hint_src = head[:32]  # not the whole head: a parked keep-alive connection keeps it
        return self._parse_head(head)

    def _scan_head(self, upto: int) -> None:
        """Refuse an over-long head before buffering all of it (httpd's LimitRequest*).

        Every prefix of the head that is not complete yet is held to these limits, in
        the order the bytes arrived, and the first prefix that breaks one decides the
        answer: so the verdict on a byte stream is the same however it was split across
        reads (one read, or one byte at a time). Per prefix, in this order:

        * no line end yet and more than LimitRequestLine + 1 bytes (the CR): 414;
        * a bare LF (RFC 9112 §2.2): 400;
        * more than LimitRequestFields field lines: 431 (RFC 6585 §5);
        * a field line longer than LimitRequestFieldSize (+ 1 for its CR): 431;
        * more than ``Limits.max_head`` bytes in all: 431.

        Incremental: the prefixes up to ``self._scanned`` were checked by earlier calls,
        so a head that arrives in many small pieces is scanned once (linear time).
        """
        pos = self._scanned
        if upto <= pos:
            return
        buf = self._buf
        lim = self.limits
        lfs = self._lfs
        line_start = self._line_start
        max_head = lim.max_head
        while True:
            lf = buf.find(b"\n", pos, upto)
            seg_end = upto if lf < 0 else lf  # prefixes ending in [pos, seg_end) hold no new LF
            if lfs == 0:
                if line_start + lim.request_line + 2 <= seg_end:
                    raise ProtocolError(414, f"request-line longer than LimitRequestLine {lim.request_line}")
            else:
                k_line = line_start + lim.field_size + 2
                if k_line <= seg_end or max_head < seg_end:
                    if k_line <= max_head + 1:
                        raise ProtocolError(431, f"field longer than LimitRequestFieldSize {lim.field_size}")
                    raise ProtocolError(431, "request header section too large")
            if lf < 0:
                break
            lfs += 1
            if lf == 0 or buf[lf - 1] != 0x0D:
                raise ProtocolError(400, "bare LF line ending (RFC 9112 §2.2)")
            if lim.fields and lfs > lim.fields + 1:
                raise ProtocolError(431, f"more than LimitRequestFields {lim.fields} fields")
            if lf + 1 > max_head:
                raise ProtocolError(431, "request header section too large")
            line_start = pos = lf + 1
        self._scanned = upto
        self._lfs = lfs
        self._line_start = line_start

    def _parse_head(self, head: bytes) -> Request:
        # _next_head has held the head to LimitRequestLine / FieldSize / Fields already
        line_end = head.find(b"\r\n")
        line = head[:line_end]
        rl = check_request_line(line)
        if rl.rewritten is not None:
            head = rl.rewritten + head[line_end:]
        # One llhttp parser per connection while messages end inside their head (no
        # body): llhttp resets itself after each; any other outcome gets a fresh one.
        cb = self._cb
        parser = self._llhttp
        fresh = parser is None
        if fresh:
            cb = self._cb = _Callbacks()
            parser = self._llhttp = httptools.HttpRequestParser(cb)
        else:
            cb.headers = []
            cb.complete = False
        while True:
            try:
                parser.feed_data(head)
            except httptools.HttpParserUpgrade:
                self._llhttp = None  # we never switch protocols; the request is served as a plain one
            except Exception as exc:  # llhttp's verdict on syntax and framing
                self._llhttp = None
                if fresh:
                    raise _status_for_parser_error(exc, head) from None
                # A reused llhttp remembers the previous message: after HTTP/1.0 without
                # keep-alive or a Connection: close it refuses any "data after Connection:
                # close". Whether a next request is served is persistence.py's decision,
                # not the reader's: judge this message alone, on a fresh parser.
                fresh = True
                cb = self._cb = _Callbacks()
                parser = self._llhttp = httptools.HttpRequestParser(cb)
                continue
            break
        if not cb.complete:
            self._llhttp = None  # it now expects body bytes, which never go through llhttp
        return self._build_request(rl, cb, parser, line)

    def _build_request(self, rl, cb: _Callbacks, parser, line: bytes) -> Request:
        method = rl.method.decode("ascii")
        target = rl.target.decode("latin-1")
        headers: list[tuple[str, str]] = []
        hosts: list[str] = []
        content_length = None
        chunked = False
        expect = None
        close = keepalive = False
        te_seen = False
        names = _FIELD_NAMES
        for raw_name, raw_value in cb.headers:
            # Field values are octets (RFC 9110 §5.5); latin-1 keeps every byte, as PEP 3333 requires.
            value = raw_value.decode("latin-1").rstrip(" \t")
            known = names.get(raw_name)
            if known is None:
                known = _field_name(raw_name)
            name, kind = known
            headers.append((name, value))
            if kind is None:
                continue
            if kind == _F_HOST:
                hosts.append(value)
            elif kind == _F_LENGTH:
                content_length = content_length_value(value)  # llhttp refused bad syntax and duplicates
            elif kind == _F_CODING:
                te_seen = True
            elif kind == _F_CONNECTION:
                for token in value.lower().split(","):
                    token = token.strip()
                    if token == "close":
                        close = True
                    elif token == "keep-alive":
                        keepalive = True
            else:  # _F_EXPECT
                expect = value if expect is None else expect + "," + value
        version = rl.version
        host = check_host(hosts, version)
        if target[0] == "/" and "#" not in target:
            path, _, query = target.partition("?")  # origin-form, the common case
            authority = host or ""
        else:
            path, query, authority = split_target(method, target, host)
        if te_seen:
            # llhttp accepted the field, so chunked is the final coding (RFC 9112 §6.3);
            # any other coding before it is one we do not decode (RFC 9112 §6.1: 501).
            codings = [c.split(";")[0].strip().lower()
                       for n, v in headers if n.lower() == "transfer-encoding" for c in v.split(",")]
            codings = [c for c in codings if c]
            if any(c != "chunked" for c in codings):
                raise ProtocolError(501, f"transfer coding not implemented: {', '.join(codings)}")
            if len(codings) > 1:
                raise ProtocolError(400, "chunked applied more than once (RFC 9112 §6.1)")
            chunked = True
            content_length = None
        # positional, in field order: keywords cost ~0.4 us more per request (a third of the call)
        req = Request(method, target, path, query, version, headers, authority, line, content_length, chunked,
                      False, close, keepalive, chunked and version < (1, 1), rl.received_version)
        if expect is not None and version >= (1, 1):
            # RFC 9110 §10.1.1: 100-continue is the only expectation defined; ignore it from 1.0.
            if expect.strip().lower() == "100-continue":
                if not chunked and content_length is None:
                    # The client announces content it gives no way to frame (RFC 9110 §15.5.12).
                    raise ProtocolError(411, "Expect: 100-continue without Content-Length or chunked")
                req.expect_continue = bool(chunked or content_length)
            else:
                raise ProtocolError(417, f"unsupported expectation {expect!r}")
        lim = self.limits.body
        if lim and content_length is not None and content_length > lim:
            raise BodyTooLarge(lim)
        self._events.append(req)
        # Framing comes from the fields, never from llhttp's idea of completion: with
        # "Connection: upgrade" llhttp ends the message at the head and would leave a
        # body to be read as the next request (RFC 9110 §7.8: we never switch protocols).
        if not (chunked or content_length):
            self._events.append(_END)
        elif chunked:
            self._state = _BODY_CHUNKED
            lim = self.limits
            self._chunked = ChunkedDecoder(lim.field_size, lim.fields, lim.body)
        else:
            self._state = _BODY_LENGTH
            self._remaining = content_length
        return self._events.popleft()

    def _next_length_body(self):
        if not self._buf:
            if self._eof:
                raise ClientDisconnected("connection closed inside a request body")
            return NEED_DATA
        n = min(self._remaining, len(self._buf))
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._remaining -= n
        if self._remaining == 0:
            self._state = _HEAD
            self._events.append(_END)
        return data

    def _next_chunked_body(self):
        decoder = self._chunked
        assert decoder is not None
        out = decoder.next(self._buf)
        if out is None:
            if self._eof:
                raise ClientDisconnected("connection closed inside a chunked body")
            return NEED_DATA
        if type(out) is tuple:
            # Trailer fields are delivered separately, never merged into the head (RFC 9110 §6.5).
            self._state = _HEAD
            self._chunked = None
            return EndOfMessage(out[1])
        return out
