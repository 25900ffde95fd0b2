"""The parsed request and the request-line / Host rules llhttp leaves to us.

llhttp (via httptools) checks framing; these checks are the RFC 9112 / 9110
rules it does not enforce: strict request-line whitespace (RFC 9112 §3),
version syntax and support (RFC 9112 §2.3, RFC 9110 §2.5 and §15.6.6),
request-target forms (RFC 9112 §3.2), and Host presence, uniqueness and
syntax (RFC 9112 §3.2, RFC 9110 §7.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ProtocolError

# RFC 9110 §5.6.2 token characters.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT (case-sensitive).
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])\Z")
# RFC 3986 authority for http(s): reg-name / IPv4 / IP-literal, optional port.
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?\Z"
)
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*)://([^/?#]*)(.*)\Z", re.S)
# Only RFC 3986 characters may appear in a request-target; llhttp is laxer.
_TARGET_BYTES = re.compile(rb"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")
_COMMON_METHODS = frozenset([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"])


@dataclass(slots=True)
class Request:
    """One parsed request head (RFC 9112 §3 request-line + §5 field lines).

    The reader (parser.py) builds it with positional arguments: keep the fields' order.
    """

    method: str
    target: str
    path: str
    query: str
    version: tuple[int, int]
    headers: list[tuple[str, str]]
    host: str
    request_line: bytes
    content_length: int | None = None
    chunked: bool = False
    expect_continue: bool = False
    #: client sent ``Connection: close``
    close_requested: bool = False
    #: client sent a ``keep-alive`` connection option
    keepalive_token: bool = False
    #: framing that obliges us to close after responding (TE on HTTP/1.0, RFC 9112 §6.1)
    must_close: bool = False
    #: version as received when it differed (HTTP/1.2 is served as 1.1, RFC 9110 §2.5)
    received_version: str | None = None

    @property
    def http_version(self) -> str:
        """The protocol string used in the response and SERVER_PROTOCOL."""
        v = self.version
        return "HTTP/1.1" if v == (1, 1) else "HTTP/%d.%d" % v

    def header(self, name: str) -> str | None:
        """First value of a field, matched case-insensitively (RFC 9110 §5.1)."""
        lname = name.lower()
        for n, v in self.headers:
            if n.lower() == lname:
                return v
        return None


@dataclass(slots=True)
class RequestLine:
    """The three parts of a strictly split request-line."""

    method: bytes
    target: bytes
    version: tuple[int, int]
    rewritten: bytes | None  # the line to hand llhttp when the version was normalised
    received_version: str | None


_LINE_CACHE: dict[bytes, RequestLine] = {}
_HOST_CACHE: dict[str, bool] = {}
#: Each process keeps its own memo (prefork: one per child, 50 of them), so it stays small: at
#: most _CACHE_MAX entries of at most _CACHED_LEN_MAX bytes, ~100 KiB per process, whatever the
#: traffic. Unbounded in length, 1024 distinct request-lines of LimitRequestLine bytes held
#: 8 MiB in every child. Longer values are validated each time (they are rare).
_CACHE_MAX = 256
_CACHED_LEN_MAX = 256


def remember(memo: dict, key, value) -> None:
    """Keep a validated ``key`` in a per-process memo, within the bounds above (emptied when full)."""
    if len(key) <= _CACHED_LEN_MAX:
        if len(memo) >= _CACHE_MAX:
            memo.clear()
        memo[key] = value


def check_request_line(line: bytes) -> RequestLine:
    """Validated request-line, memoised: most traffic repeats a few lines (see ``_check_request_line``).

    Validation is a pure function of the bytes, so a bounded cache of lines already
    found valid is exact; it spares the regex engine on the hot path, which costs
    far more when 50 processes take turns on one CPU than in a micro-benchmark.
    """
    rl = _LINE_CACHE.get(line)
    if rl is None:
        rl = _check_request_line(line)
        remember(_LINE_CACHE, line, rl)
    return rl


def _check_request_line(line: bytes) -> RequestLine:
    """Apply RFC 9112 §3 to one request-line (without its CRLF).

    Exactly two single spaces separate method, target and version (we refuse
    the lenient whitespace RFC 9112 §3 permits, as httpd's
    ``HttpProtocolOptions Strict`` does). ``HTTP/1.x`` with x > 1 is served as
    1.1 (RFC 9110 §2.5); other majors get 505 (RFC 9110 §15.6.6); a line with
    no version (HTTP/0.9) is refused with 400.
    """
    parts = line.split(b" ")
    if len(parts) == 3 and parts[2] == b"HTTP/1.1" and parts[0] in _COMMON_METHODS:
        # fast path for the overwhelmingly common line
        if not _TARGET_BYTES.match(parts[1]):
            raise ProtocolError(400, "invalid byte in request-target (RFC 9112 §3.2)")
        return RequestLine(parts[0], parts[1], (1, 1), None, None)
    if len(parts) != 3 or not all(parts):
        if len(parts) == 2 and all(parts) and b"\t" not in line:
            raise ProtocolError(400, "HTTP/0.9 requests are not supported")
        raise ProtocolError(400, "malformed request-line (RFC 9112 §3: single spaces)")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise ProtocolError(400, "method is not a token (RFC 9110 §9.1)")
    m = _VERSION.match(version)
    if not m:
        raise ProtocolError(400, "malformed HTTP-version (RFC 9112 §2.3)")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 1:
        if method == b"PRI":
            # The HTTP/2 connection preface sent to an HTTP/1.1-only port.
            raise ProtocolError(400, "HTTP/2 preface on an HTTP/1.1 connection")
        raise ProtocolError(505, f"HTTP/{major}.{minor} is not supported")
    if not _TARGET_BYTES.match(target):
        raise ProtocolError(400, "invalid byte in request-target (RFC 9112 §3.2)")
    rewritten = None
    received = None
    if minor > 1:
        received = version.decode("ascii")
        rewritten = b"%s %s HTTP/1.1" % (method, target)
        minor = 1
    return RequestLine(method, target, (major, minor), rewritten, received)


def split_target(method: str, target: str, host_header: str | None) -> tuple[str, str, str]:
    """Resolve the request-target (RFC 9112 §3.2) to ``(path, query, authority)``.

    origin-form ``/p?q``; absolute-form ``http://a/p`` whose authority
    overrides Host (§3.2.2); ``*`` only with OPTIONS (§3.2.4); authority-form
    only with CONNECT (§3.2.3), which we do not implement.
    """
    if "#" in target:
        raise ProtocolError(400, "fragment in request-target (RFC 9112 §3.2)")
    if target.startswith("/"):
        path, _, query = target.partition("?")
        return path, query, host_header or ""
    if target == "*":
        if method != "OPTIONS":
            raise ProtocolError(400, "asterisk-form is only for OPTIONS (RFC 9112 §3.2.4)")
        return "*", "", host_header or ""
    m = _ABSOLUTE.match(target)
    if m:
        scheme, authority, rest = m.groups()
        if scheme.lower() not in ("http", "https"):
            raise ProtocolError(400, f"unsupported URI scheme {scheme!r}")
        if not authority or not _HOST.match(authority) or "@" in authority:
            raise ProtocolError(400, "invalid authority in absolute-form (RFC 9112 §3.2.2)")
        path, _, query = (rest or "/").partition("?")
        if not path.startswith("/"):
            path = "/" + path
        return path, query, authority
    if method == "CONNECT":
        raise ProtocolError(501, "CONNECT is not implemented")
    raise ProtocolError(400, "invalid request-target form (RFC 9112 §3.2)")


def check_host(values: list[str], version: tuple[int, int]) -> str | None:
    """RFC 9112 §3.2: an HTTP/1.1 request MUST carry exactly one valid Host.

    Returns the Host value (or None for an HTTP/1.0 request without one).
    """
    if len(values) > 1:
        raise ProtocolError(400, "more than one Host field (RFC 9112 §3.2)")
    if not values:
        if version >= (1, 1):
            raise ProtocolError(400, "HTTP/1.1 request without Host (RFC 9112 §3.2)")
        return None
    host = values[0]
    if host in _HOST_CACHE:
        return host
    if not _HOST.match(host) or "@" in host:
        raise ProtocolError(400, f"invalid Host value {host!r} (RFC 9112 §3.2)")
    remember(_HOST_CACHE, host, True)  # only valid hosts are remembered
    return host
