"""The conformance cases, as data (see model.py for the shape, docs/conformance.md for the families).

Each builder below returns a list of :class:`Case`; variants that share a
template are generated from lists of forms, but every case keeps its own id
and RFC reference. ``CASES`` is the whole list, in checklist order.

Conventions: ``H`` is the Host line; bodies are small (``hello``); the hidden
request in desync cases is always ``GET /smuggled`` (the app answers it 404,
so any answer to it shows as an extra response and fails).
"""

from __future__ import annotations

import random

from .model import (
    AWAIT_HEAD,
    EITHER,
    FORBIDDEN,
    MAY,
    MUST,
    READ,
    RECOMMENDED,
    REQUIRED,
    SHOULD,
    SHUT_WR,
    Case,
    Echo,
    Outcome,
    Want,
)

H = b"Host: localhost\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"

# -- outcome shorthands --------------------------------------------------------
OK = Outcome(("2xx",), FORBIDDEN)  # served, connection kept (HTTP/1.1 default)
OK_ANY = Outcome(("2xx",))  # served, connection state free
OK_CLOSE = Outcome(("2xx",), REQUIRED)
R400 = Outcome(("400",))  # 400, connection state free
R400C = Outcome(("400",), REQUIRED)  # 400 then close
R4XX = Outcome(("4xx",))
R4XXC = Outcome(("4xx",), REQUIRED)
R501C = Outcome(("501",), REQUIRED)
CLOSE = Outcome((), REQUIRED)  # closed without any response
PENDING = Outcome((), pending=True)  # still waiting for the bytes a correct parse says are missing

# -- the response rules a case judges (rules.py); the others are recorded, not judged --------
FRAMING = ("framing",)  # row 39: a bodiless response that carries a body breaks the stream


def req(line: bytes, *fields: bytes, body: bytes = b"", host: bool = True) -> bytes:
    """A request: ``line`` CRLF, Host (unless ``host=False``), ``fields`` (each without CRLF), CRLF, body."""
    head = line + b"\r\n" + (H if host else b"") + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
    return head + body


def C(id, row, title, send, expect, rfc, level=MUST, **kw) -> Case:
    if isinstance(send, bytes):
        send = (send,)
    if isinstance(expect, Outcome):
        expect = (expect,)
    if isinstance(kw.get("lenient"), Outcome):
        kw["lenient"] = (kw["lenient"],)
    if isinstance(kw.get("echo"), Echo):
        kw["echo"] = (kw["echo"],)
    if isinstance(kw.get("want"), Want):
        kw["want"] = (kw["want"],)
    return Case(id=id, row=str(row), title=title, send=tuple(send), expect=tuple(expect), rfc=rfc, level=level,
                family=str(row), **kw)


def _slug(b: bytes) -> str:
    out = []
    for ch in b.decode("latin-1"):
        if ch.isalnum():
            out.append(ch.lower())
        elif ch in " ,;=._-+":
            out.append({" ": "sp", ",": "comma", ";": "semi", "=": "eq", ".": "dot", "_": "us", "-": "minus",
                        "+": "plus"}[ch])
        else:
            out.append(f"x{ord(ch):02x}")
    return "-".join(x for x in "".join(("-" + o + "-") if len(o) > 1 else o for o in out).split("-") if x) or "empty"


# -- rows 1-8: baseline, Host, target forms ------------------------------------
def rows_1_8() -> list[Case]:
    cs = [
        C("row01-get", 1, "baseline GET", req(b"GET / HTTP/1.1"), OK, "RFC 9110 §6.6.1",
          want=Want("content-type", level=SHOULD)),
        C("row01-head", 1, "baseline HEAD", req(b"HEAD / HTTP/1.1"), OK, "RFC 9110 §9.3.2"),
        C("row01-echo", 1, "baseline echo parse", req(b"GET /echo?a=1 HTTP/1.1", b"X-Test: v"), OK,
          "RFC 9112 §3", echo=Echo(method="GET", target="/echo?a=1", has=(("X-Test", "v"), ("Host", "localhost")))),
        C("row01-post-echo", 1, "baseline POST body", req(b"POST /echo HTTP/1.1", b"Content-Length: 5",
                                                            body=b"hello"), OK, "RFC 9112 §6.2",
          echo=Echo(method="POST", body=b"hello")),
        C("row02-no-host", 2, "HTTP/1.1 without Host", req(b"GET / HTTP/1.1", host=False), R400, "RFC 9112 §3.2"),
        C("row02-no-host-echo", 2, "HTTP/1.1 without Host, /echo", req(b"GET /echo HTTP/1.1", host=False), R400,
          "RFC 9112 §3.2"),
        C("row02-no-host-absolute", 2, "absolute-form, no Host", req(b"GET http://localhost/ HTTP/1.1", host=False),
          R400, "RFC 9112 §3.2"),
        C("row03-dup-host-same", 3, "two equal Host lines", req(b"GET / HTTP/1.1", b"Host: localhost"), R400,
          "RFC 9112 §3.2"),
        C("row03-dup-host-diff", 3, "two different Host lines", req(b"GET / HTTP/1.1", b"Host: other"), R400,
          "RFC 9112 §3.2"),
        C("row03-dup-host-case", 3, "Host and host", req(b"GET / HTTP/1.1", b"host: other"), R400, "RFC 9112 §3.2"),
        C("row03-host-list", 3, "Host: a, b", req(b"GET / HTTP/1.1", b"Host: a, b", host=False), R400,
          "RFC 9112 §3.2"),
    ]
    for tag, value in [("space", b"a b"), ("userinfo", b"u@a"), ("path", b"a/p"), ("badport", b"a:b"),
                       ("bracket", b"[::1"), ("query", b"a?x"), ("backslash", b"a\\b")]:
        cs.append(C(f"row04-host-{tag}", 4, f"invalid Host {value!r}", req(b"GET / HTTP/1.1", b"Host: " + value,
                                                                          host=False), R400, "RFC 9112 §3.2"))
    cs.append(C("row04-host-empty", 4, "empty Host value", req(b"GET / HTTP/1.1", b"Host:", host=False), R400,
                "RFC 9112 §3.2, RFC 9110 §4.2.1", level=SHOULD, lenient=OK_ANY,
                note="an empty Host means an http URI with an empty host, which a recipient MUST reject as invalid; "
                     "left SHOULD because 9112 §3.2 allows an empty Host when the authority is undefined"))
    cs += [
        C("row05-http10-no-host", 5, "HTTP/1.0 without Host", req(b"GET / HTTP/1.0", host=False), OK_CLOSE,
          "RFC 9112 §3.2, §9.3"),
        C("row05-http10-no-host-echo", 5, "HTTP/1.0 without Host, echo", req(b"GET /echo HTTP/1.0", host=False),
          OK_CLOSE, "RFC 9112 §3.2", echo=Echo(method="GET", lacks=("Host",))),
        C("row06-absolute", 6, "absolute-form accepted", req(b"GET http://localhost/ HTTP/1.1"), OK,
          "RFC 9112 §3.2.2"),
        C("row06-absolute-other-host", 6, "absolute-form authority differs from Host",
          req(b"GET http://other.example/ HTTP/1.1"), OK, "RFC 9112 §3.2.2"),
        C("row06-absolute-port", 6, "absolute-form with port", req(b"GET http://localhost:80/echo?x=1 HTTP/1.1"), OK,
          "RFC 9112 §3.2.2"),
        C("row06-absolute-upper-scheme", 6, "absolute-form HTTP:// (scheme is case-insensitive)",
          req(b"GET HTTP://localhost/ HTTP/1.1"), OK, "RFC 9112 §3.2.2, RFC 3986 §3.1", level=SHOULD, lenient=R4XX),
        C("row07-options-star", 7, "OPTIONS *", req(b"OPTIONS * HTTP/1.1"), OK, "RFC 9112 §3.2.4"),
        C("row07-get-star", 7, "GET *", req(b"GET * HTTP/1.1"), R400, "RFC 9112 §3.2.4", level=SHOULD, lenient=R4XX),
        C("row07-head-star", 7, "HEAD *", req(b"HEAD * HTTP/1.1"), R400, "RFC 9112 §3.2.4", level=SHOULD,
          lenient=R4XX),
        C("row07-post-star", 7, "POST *", req(b"POST * HTTP/1.1", b"Content-Length: 0"), R400, "RFC 9112 §3.2.4",
          level=SHOULD, lenient=R4XX),
        C("row08-get-authority", 8, "authority-form with GET", req(b"GET localhost:80 HTTP/1.1"), R400,
          "RFC 9112 §3.2.3", level=SHOULD, lenient=R4XX),
        C("row08-options-authority", 8, "authority-form with OPTIONS", req(b"OPTIONS localhost:80 HTTP/1.1"), R400,
          "RFC 9112 §3.2.3", level=SHOULD, lenient=R4XX),
        C("row08-connect", 8, "CONNECT to the origin", req(b"CONNECT localhost:80 HTTP/1.1"),
          Outcome(("400|405|501",)), "RFC 9110 §9.3.6", level=SHOULD, lenient=Outcome(("4xx|5xx",))),
        C("row08-connect-origin-form", 8, "CONNECT with origin-form", req(b"CONNECT / HTTP/1.1"),
          Outcome(("400|405|501",)), "RFC 9112 §3.2.3", level=SHOULD, lenient=Outcome(("4xx|5xx",))),
    ]
    return cs


# -- rows 9-14: request-line -----------------------------------------------------
def rows_9_14() -> list[Case]:
    cs = []
    for tag, target in [("space", b"/a b"), ("nul", b"/\x00"), ("non-ascii", b"/\xe9"), ("del", b"/\x7f"),
                        ("ctl", b"/\x01"), ("fragment", b"/#frag"), ("backslash", b"/a\\b"),
                        ("overlong-utf8", b"/\xc0\xaf"), ("quote", b'/a"b'), ("lt", b"/<x>"),
                        ("missing", b"")]:
        line = b"GET " + target + b" HTTP/1.1"
        cs.append(C(f"row09-target-{tag}", 9, f"target {target!r}", req(line), R400,
                    "RFC 9112 §3, §3.2", level=SHOULD, lenient=R4XX))
    cs += [
        C("row09-target-pct00", 9, "percent-encoded NUL is just data", req(b"GET /echo?x=%00 HTTP/1.1"),
          (OK, R4XX), "RFC 9112 §3.2", echo=Echo(target="/echo?x=%00")),
        C("row09-target-pct-crlf", 9, "%0d%0a never decoded into a header",
          req(b"GET /echo?%0d%0aX-Injected:%201 HTTP/1.1"), (OK, R4XX), "RFC 9112 §3.2",
          echo=Echo(lacks=("X-Injected",))),
    ]
    for tag, line, note in [
        ("double-sp-1", b"GET  / HTTP/1.1", "two SP after the method"),
        ("double-sp-2", b"GET /  HTTP/1.1", "two SP before the version"),
        ("tab-1", b"GET\t/ HTTP/1.1", "HTAB as the first separator"),
        ("tab-2", b"GET /\tHTTP/1.1", "HTAB as the second separator"),
        ("trailing-sp", b"GET / HTTP/1.1 ", "trailing SP"),
        ("leading-sp", b" GET / HTTP/1.1", "leading SP"),
        ("vt", b"GET\x0b/ HTTP/1.1", "VT as separator"),
        ("ff", b"GET\x0c/ HTTP/1.1", "FF as separator"),
    ]:
        cs.append(C(f"row10-{tag}", 10, f"lenient request-line whitespace: {note}", req(line), R400,
                    "RFC 9112 §3", level=MAY, lenient=(OK_ANY, Outcome(("404",))),
                    note="recipients MAY parse on whitespace boundaries; rejecting is the safe choice"))
    for tag, ver in [("1-11", b"HTTP/1.11"), ("01-1", b"HTTP/01.1"), ("lower", b"http/1.1"), ("1", b"HTTP/1"),
                     ("sp", b"HTTP/ 1.1"), ("01-01", b"HTTP/01.01"), ("1-1-1", b"HTTP/1.1.1"), ("alpha", b"HTTP/a.b"),
                     ("https", b"HTTPS/1.1"), ("1-dot", b"HTTP/1."), ("mixed-case", b"Http/1.1"),
                     ("no-slash", b"HTTP1.1")]:
        cs.append(C(f"row11-version-{tag}", 11, f"version {ver!r}", req(b"GET / " + ver), Outcome(("400|505",)),
                    "RFC 9112 §2.3, §3", level=SHOULD, lenient=(R4XX, CLOSE)))
    cs += [
        C("row12-http20", 12, "HTTP/2.0 request-line", req(b"GET / HTTP/2.0"), Outcome(("505|400",)),
          "RFC 9110 §15.6.6", level=SHOULD, lenient=R4XX),
        C("row12-http30", 12, "HTTP/3.0 request-line", req(b"GET / HTTP/3.0"), Outcome(("505|400",)),
          "RFC 9110 §15.6.6", level=SHOULD, lenient=R4XX),
        C("row12-http09-version", 12, "HTTP/0.9 version token", req(b"GET / HTTP/0.9"), Outcome(("505|400",)),
          "RFC 9110 §15.6.6", level=SHOULD, lenient=R4XX),
        C("row12-http12", 12, "HTTP/1.2 served as 1.1", req(b"GET / HTTP/1.2"), OK, "RFC 9110 §2.5", level=SHOULD,
          lenient=Outcome(("505",))),
        C("row12-http19", 12, "HTTP/1.9 served as 1.1", req(b"GET /echo HTTP/1.9"), OK, "RFC 9110 §2.5",
          level=SHOULD, lenient=Outcome(("505",))),
        C("row12-no-version", 12, "HTTP/0.9 simple request", (b"GET /\r\n\r\n",), (R4XX, CLOSE), "RFC 9112 §2.3",
          level=SHOULD, note="a 0.9 (headerless) answer is not an HTTP/1.1 response and fails the strict parser"),
        C("row13-lower-get", 13, "method is case-sensitive: get", req(b"get / HTTP/1.1"), Outcome(("501|400",)),
          "RFC 9110 §9.1", level=SHOULD, lenient=Outcome(("405",))),
        C("row13-mixed-get", 13, "method is case-sensitive: Get", req(b"Get / HTTP/1.1"), Outcome(("501|400",)),
          "RFC 9110 §9.1", level=SHOULD, lenient=Outcome(("405",))),
        C("row13-unknown", 13, "unknown method FOO", req(b"FOO / HTTP/1.1"), Outcome(("501",)), "RFC 9110 §9.1",
          level=SHOULD, lenient=Outcome(("405|400",))),
        C("row13-bad-tchar", 13, "method with a non-token byte", req(b"G@T / HTTP/1.1"), Outcome(("400|501",)),
          "RFC 9112 §3.1", level=SHOULD, lenient=R4XX),
        C("row13-post-405", 13, "POST on a GET-only resource", req(b"POST / HTTP/1.1", b"Content-Length: 0"),
          Outcome(("405",)), "RFC 9110 §15.5.6", want=Want("allow", only_status="405"), get_only_root=True),
        C("row13-delete-405", 13, "DELETE on a GET-only resource", req(b"DELETE / HTTP/1.1"), Outcome(("405|501",)),
          "RFC 9110 §15.5.6", want=Want("allow", only_status="405")),
        C("row13-put-405-body", 13, "PUT with body on a GET-only resource",
          req(b"PUT / HTTP/1.1", b"Content-Length: 5", body=b"hello"), Outcome(("405|501",)),
          "RFC 9110 §15.5.6", want=Want("allow", only_status="405")),
        C("row13-options", 13, "OPTIONS / lists Allow", req(b"OPTIONS / HTTP/1.1"), OK, "RFC 9110 §9.3.7",
          want=Want("allow", level=SHOULD)),
        C("row13-long-method", 13, "100 KB method", req(b"A" * 100_000 + b" / HTTP/1.1"),
          Outcome(("501|414|400",)), "RFC 9110 §9.1, RFC 9112 §3", level=SHOULD, lenient=(R4XX, CLOSE), health=True),
        C("row14-target-8000", 14, "8000-octet target is served", req(b"GET /echo?" + b"a" * 7990 + b" HTTP/1.1"),
          OK, "RFC 9112 §3", level=RECOMMENDED),
        C("row14-path-8000", 14, "8000-octet path is parsed", req(b"GET /" + b"a" * 7999 + b" HTTP/1.1"),
          Outcome(("404",), FORBIDDEN), "RFC 9112 §3", level=RECOMMENDED),
        C("row14-target-100k", 14, "100 KB target", req(b"GET /" + b"a" * 100_000 + b" HTTP/1.1"),
          Outcome(("414",)), "RFC 9112 §3", health=True),
        C("row14-query-100k", 14, "100 KB query", req(b"GET /echo?" + b"a" * 100_000 + b" HTTP/1.1"),
          Outcome(("414",)), "RFC 9112 §3", health=True),
    ]
    return cs


# -- rows 15-24: line endings and fields ------------------------------------------
def rows_15_24() -> list[Case]:
    cs = []
    for tag, data in [("all", b"GET / HTTP/1.1\nHost: localhost\n\n"),
                      ("request-line", b"GET / HTTP/1.1\nHost: localhost\r\n\r\n"),
                      ("field", b"GET / HTTP/1.1\r\nHost: localhost\nX: y\r\n\r\n"),
                      ("final", b"GET / HTTP/1.1\r\nHost: localhost\r\n\n")]:
        cs.append(C(f"row15-bare-lf-{tag}", 15, f"bare LF ({tag})", data, R400, "RFC 9112 §2.2", level=MAY,
                    lenient=OK_ANY, note="a recipient MAY accept bare LF"))
    cs += [
        C("row16-bare-cr-field", 16, "bare CR inside the field section",
          b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX: a\rY: b\r\n\r\n", R400, "RFC 9112 §2.2",
          lenient=(), echo=Echo(lacks=("Y",))),
        C("row16-bare-cr-request-line", 16, "bare CR ends the request-line",
          b"GET / HTTP/1.1\rHost: localhost\r\n\r\n", (R400, R4XX), "RFC 9112 §2.2"),
        C("row16-bare-cr-only", 16, "CR-only line endings", b"GET / HTTP/1.1\rHost: localhost\r\r",
          (R400, R4XX, PENDING, CLOSE), "RFC 9112 §2.2", note="never served"),
        C("row16-bare-cr-value-end", 16, "field line ended by bare CR then CRLF",
          b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX: a\r\r\n\r\n", R400, "RFC 9112 §2.2"),
        C("row17-one-crlf", 17, "one empty line before the request-line", b"\r\n" + req(b"GET / HTTP/1.1"), OK,
          "RFC 9112 §2.2", level=SHOULD, lenient=R4XX),
        C("row17-one-lf", 17, "one bare LF before the request-line", b"\n" + req(b"GET / HTTP/1.1"), (OK, R4XX),
          "RFC 9112 §2.2", level=MAY),
        C("row17-many-crlf", 17, "ten empty lines before the request-line", b"\r\n" * 10 + req(b"GET / HTTP/1.1"),
          (OK, R4XX), "RFC 9112 §2.2", level=MAY),
        C("row18-ws-line-first", 18, "SP-led line before the first field",
          b"GET /echo HTTP/1.1\r\n X: y\r\nHost: localhost\r\n\r\n", (R400, OK), "RFC 9112 §2.2",
          echo=Echo(lacks=("X", " X"))),
        C("row18-tab-line-first", 18, "HTAB-led line before the first field",
          b"GET /echo HTTP/1.1\r\n\tX: y\r\nHost: localhost\r\n\r\n", (R400, OK), "RFC 9112 §2.2",
          echo=Echo(lacks=("X", "\tX"))),
        C("row18-ws-host-only", 18, "the only Host is SP-led", b"GET / HTTP/1.1\r\n Host: localhost\r\n\r\n", R400,
          "RFC 9112 §2.2, §3.2"),
    ]
    for tag, line in [("host", b"Host : localhost"), ("content-length", b"Content-Length : 5"),
                      ("custom", b"X-Foo : bar"), ("tab", b"X-Foo\t: bar"),
                      ("transfer-encoding", b"Transfer-Encoding : chunked")]:
        host = tag != "host"
        body = CHUNKED_HELLO if tag == "transfer-encoding" else (b"hello" if tag == "content-length" else b"")
        method = b"POST /echo HTTP/1.1" if body else b"GET / HTTP/1.1"
        cs.append(C(f"row19-space-before-colon-{tag}", 19, f"whitespace before colon: {line!r}",
                    req(method, line, body=body, host=host), R400, "RFC 9112 §5.1",
                    note="MUST 400; closing is advisable when the field may frame the body"))
    for tag, line in [("brackets", b"X[]: a"), ("empty-name", b": a"), ("no-colon", b"Foo"), ("tab", b"F\to: a"),
                      ("non-ascii", b"X\xe9: a"), ("at", b"X@Y: a"), ("quote", b'X"Y: a'), ("slash", b"X/Y: a"),
                      ("nul", b"X\x00Y: a")]:
        cs.append(C(f"row20-name-{tag}", 20, f"invalid field name {line!r}", req(b"GET / HTTP/1.1", line), R400,
                    "RFC 9110 §5.1, RFC 9112 §2.2", level=SHOULD, lenient=R4XX))
    cs += [
        C("row21-obs-fold-sp", 21, "obs-fold with SP", req(b"GET /echo HTTP/1.1", b"X: a\r\n b"), (R400, OK),
          "RFC 9112 §5.2", echo=Echo(has=(("X", "a b"),))),
        C("row21-obs-fold-tab", 21, "obs-fold with HTAB", req(b"GET /echo HTTP/1.1", b"X: a\r\n\tb"), (R400, OK),
          "RFC 9112 §5.2", echo=Echo(has=(("X", ("a b", "a  b")),))),
        C("row21-obs-fold-host", 21, "obs-fold in Host",
          b"GET / HTTP/1.1\r\nHost: localhost\r\n x\r\n\r\n", R400, "RFC 9112 §5.2, §3.2"),
        C("row21-obs-fold-cl", 21, "obs-fold in Content-Length",
          req(b"POST /echo HTTP/1.1", b"Content-Length:\r\n 5", body=b"hello"), (R400, OK),
          "RFC 9112 §5.2", echo=Echo(body=b"hello")),
        C("row21-obs-fold-first", 21, "obs-fold on an empty first line",
          req(b"GET /echo HTTP/1.1", b"X:\r\n a"), (R400, OK), "RFC 9112 §5.2", echo=Echo(has=(("X", "a"),))),
        C("row22-nul-value", 22, "NUL in a value", req(b"GET /echo HTTP/1.1", b"X: a\x00b"), (R400, OK),
          "RFC 9110 §5.5", echo=Echo(has=(("X", "a b"),))),
        C("row22-nul-value-start", 22, "NUL leading a value", req(b"GET /echo HTTP/1.1", b"X: \x00b"), (R400, OK),
          "RFC 9110 §5.5", echo=Echo(has=(("X", ("b", " b")),))),
        C("row22-nul-host", 22, "NUL in Host", req(b"GET / HTTP/1.1", b"Host: local\x00host", host=False), R400,
          "RFC 9110 §5.5, RFC 9112 §3.2"),
        C("row22-cr-value", 22, "CR in a value", req(b"GET /echo HTTP/1.1", b"X: a\rb"), (R400, OK),
          "RFC 9110 §5.5", echo=Echo(has=(("X", "a b"),))),
    ]
    for tag, ch in [("soh", b"\x01"), ("us", b"\x1f"), ("del", b"\x7f"), ("vt", b"\x0b"), ("ff", b"\x0c"),
                    ("esc", b"\x1b")]:
        cs.append(C(f"row23-ctl-{tag}", 23, f"CTL {ch!r} in a value", req(b"GET /echo HTTP/1.1", b"X: a" + ch + b"b"),
                    R400, "RFC 9110 §5.5", level=MAY, lenient=OK_ANY, note="other CTLs MAY be kept"))
    big = b"X-Big: " + b"a" * 100_000
    many = tuple(b"X-F%d: v" % i for i in range(10_000))
    cs += [
        C("row24-field-100k", 24, "one 100 KB field", req(b"GET / HTTP/1.1", big), Outcome(("431",), REQUIRED),
          "RFC 9110 §5.4, RFC 6585 §5", lenient=R4XXC, health=True),
        C("row24-fields-10000", 24, "10 000 fields", req(b"GET / HTTP/1.1", *many), Outcome(("431",), REQUIRED),
          "RFC 9110 §5.4, RFC 6585 §5", lenient=R4XXC, health=True),
        C("row24-name-100k", 24, "100 KB field name", req(b"GET / HTTP/1.1", b"X" * 100_000 + b": a"),
          Outcome(("431",), REQUIRED), "RFC 9110 §5.4", lenient=R4XXC, health=True),
        C("row24-cookie-64k", 24, "64 KB Cookie", req(b"GET / HTTP/1.1", b"Cookie: a=" + b"b" * 65_536),
          (Outcome(("431",)), OK), "RFC 9110 §5.4", lenient=R4XX, health=True),
        C("row24-cookie-1000-pairs", 24, "1000 cookie pairs",
          req(b"GET / HTTP/1.1", b"Cookie: " + b"; ".join(b"c%d=v" % i for i in range(1000))),
          (OK, Outcome(("431",))), "RFC 9110 §5.4", lenient=R4XX, health=True),
        C("row24-section-split", 24, "100 KB split over many small fields",
          req(b"GET / HTTP/1.1", *(b"X-S%d: %s" % (i, b"a" * 1000) for i in range(100))),
          (Outcome(("431",)), OK), "RFC 9110 §5.4", lenient=R4XX, health=True),
    ]
    return cs


# -- rows 25-32: framing ------------------------------------------------------------
BAD_CL = [b"abc", b"+5", b"-1", b"0x5", b"1 0", b"1_0", b"", b"-0", b"0o5", b"5.0", b"5e0", b"5a", b"\xd9\xa5",
          b"0x00000005", b"5;", b"5 5", b'"5"', b"5\x0b", b"5\x00"]


def rows_25_32() -> list[Case]:
    cs = []
    for form in BAD_CL:
        cs.append(C(f"row25-cl-{_slug(form)}", 25, f"invalid Content-Length {form!r}",
                    req(b"POST /echo HTTP/1.1", b"Content-Length: " + form, body=b"hello"), R400C,
                    "RFC 9112 §6.3", lenient=R4XXC))
    for tag, form in [("leading-zero", b"05"), ("zeros", b"00005"), ("zero-zero", b"00")]:
        body = b"" if form == b"00" else b"hello"
        cs.append(C(f"row25-cl-{tag}", 25, f"Content-Length {form!r} (1*DIGIT allows leading zeros)",
                    req(b"POST /echo HTTP/1.1", b"Content-Length: " + form, body=body), (OK, R400C),
                    "RFC 9112 §6.3, RFC 9110 §8.6", echo=Echo(body=body)))
    cs.append(C("row25-cl-5000-leading-zeros", 25, "Content-Length: 5000 zeros then 5 (1*DIGIT)",
                req(b"POST /echo HTTP/1.1", b"Content-Length: " + b"0" * 5000 + b"5", body=b"hello"), (OK, R400C),
                "RFC 9112 §6.3, RFC 9110 §8.6", echo=Echo(body=b"hello"), health=True,
                note="still 5 however many zeros; a value of 5000 digits must not be converted as a number"))
    for tag, field in [("ows-leading-sp", b"Content-Length:  5"), ("ows-tab", b"Content-Length:\t5"),
                       ("ows-trailing-sp", b"Content-Length: 5 "), ("ows-trailing-tab", b"Content-Length: 5\t"),
                       ("upper-name", b"CONTENT-LENGTH: 5"), ("lower-name", b"content-length: 5")]:
        cs.append(C(f"row25-cl-{tag}", 25, f"valid Content-Length spelling {field!r}",
                    req(b"POST /echo HTTP/1.1", field, body=b"hello"), OK, "RFC 9110 §5.5, §5.1, §8.6",
                    echo=Echo(body=b"hello")))
    for tag, fields in [("two-lines", (b"Content-Length: 5", b"Content-Length: 6")),
                        ("list", (b"Content-Length: 5, 6",)), ("list-nospace", (b"Content-Length: 5,6",)),
                        ("zero-and-five", (b"Content-Length: 0", b"Content-Length: 5")),
                        ("five-and-zero", (b"Content-Length: 5", b"Content-Length: 0")),
                        ("list-three", (b"Content-Length: 5, 5, 6",))]:
        cs.append(C(f"row26-cl-conflict-{tag}", 26, f"conflicting Content-Length {fields!r}",
                    req(b"POST /echo HTTP/1.1", *fields, body=b"hello!"), R400C, "RFC 9112 §6.3", lenient=R4XXC,
                    smuggle=True))
    for tag, fields in [("list", (b"Content-Length: 5, 5",)), ("list-nospace", (b"Content-Length: 5,5",)),
                        ("two-lines", (b"Content-Length: 5", b"Content-Length: 5")),
                        ("list-three", (b"Content-Length: 5, 5, 5",))]:
        cs.append(C(f"row27-cl-same-{tag}", 27, f"same-value Content-Length {fields!r}",
                    req(b"POST /echo HTTP/1.1", *fields, body=b"hello"), (R400C, R4XXC, OK), "RFC 9110 §8.6",
                    echo=Echo(body=b"hello"), note="reject, or treat as the single value 5"))
    for tag, form, body in [("20-digits", b"99999999999999999999", b"hello"),
                            ("2p64-plus5", b"18446744073709551621", b"hello"),
                            ("2p63", b"9223372036854775808", b"hello"),
                            ("2p32-plus5", b"4294967301", b"hello"),
                            ("100-digits", b"1" * 100, b"hello")]:
        cs.append(C(f"row28-cl-overflow-{tag}", 28, f"huge Content-Length {form[:24]!r}",
                    req(b"POST /echo HTTP/1.1", b"Content-Length: " + form, body=body),
                    (R400C, Outcome(("413",), REQUIRED), R4XXC, PENDING), "RFC 9110 §8.6",
                    note="never wraps to a small length; 413 or waiting for the announced bytes is also correct"))
    cs.append(C("row28-cl-2p63-refused", 28, "Content-Length 2^63 (past a signed 64-bit length), no body",
                req(b"POST /echo HTTP/1.1", b"Content-Length: 9223372036854775808"),
                (R400C, Outcome(("413",), REQUIRED)), "RFC 9110 §8.6, RFC 9112 §6.3", level=SHOULD, lenient=PENDING,
                health=True,
                note="a length no 64-bit signed offset holds is malformed: httpd answers 400 (ap_parse_strict_length, "
                     "apr_off_t); waiting for 2^63 bytes is a Warn"))
    cs.append(C("row28-cl-999999999-no-body", 28, "Content-Length 999999999 and no body",
                req(b"POST /echo HTTP/1.1", b"Content-Length: 999999999"),
                (Outcome(("413",), REQUIRED), PENDING, Outcome(("408",), REQUIRED), CLOSE), "RFC 9112 §6.3",
                health=True))
    # CL + TE
    body = CHUNKED_HELLO
    for tag, cl in [("cl-exact", len(body)), ("cl-short", 3), ("cl-zero", 0), ("cl-long", len(body) + 20)]:
        cs.append(C(f"row29-cl-te-{tag}", 29, f"Content-Length {cl} with Transfer-Encoding: chunked",
                    req(b"POST /echo HTTP/1.1", b"Content-Length: %d" % cl, b"Transfer-Encoding: chunked", body=body),
                    (R400C, OK_CLOSE), "RFC 9112 §6.1", lenient=R4XXC, echo=Echo(body=b"hello"), smuggle=True,
                    note="reject, or use chunked and close after responding"))
    cs.append(C("row29-te-cl-order", 29, "Transfer-Encoding before Content-Length",
                req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", b"Content-Length: 3", body=body),
                (R400C, OK_CLOSE), "RFC 9112 §6.1", lenient=R4XXC, echo=Echo(body=b"hello"), smuggle=True))
    for tag, te in [("gzip", b"gzip"), ("chunked-gzip", b"chunked, gzip"), ("identity", b"identity"),
                    ("deflate", b"deflate"), ("compress", b"compress"), ("empty", b""),
                    ("chunked-identity", b"chunked, identity")]:
        cs.append(C(f"row30-te-final-not-chunked-{tag}", 30, f"Transfer-Encoding {te!r}",
                    req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: " + te, body=b"hello"),
                    (R400C, R501C), "RFC 9112 §6.3, §6.1", lenient=R4XXC))
    cs.append(C("row31-te-gzip-chunked", 31, "Transfer-Encoding: gzip, chunked (unimplemented coding)",
                req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: gzip, chunked", body=CHUNKED_HELLO),
                (R501C, R400C), "RFC 9112 §6.1", level=SHOULD, lenient=R4XXC))
    cs += [
        C("row32-te-http10", 32, "Transfer-Encoding on HTTP/1.0",
          req(b"POST /echo HTTP/1.0", b"Transfer-Encoding: chunked", body=CHUNKED_HELLO), (R400C, OK_CLOSE),
          "RFC 9112 §6.1", lenient=R4XXC, echo=Echo(body=b"hello")),
        C("row32-te-http10-keepalive", 32, "Transfer-Encoding on HTTP/1.0 with keep-alive",
          req(b"POST /echo HTTP/1.0", b"Connection: keep-alive", b"Transfer-Encoding: chunked", body=CHUNKED_HELLO),
          (R400C, OK_CLOSE), "RFC 9112 §6.1", lenient=R4XXC, echo=Echo(body=b"hello")),
        C("row32-te-cl-http10", 32, "TE and CL on HTTP/1.0 with keep-alive, smuggled GET after",
          req(b"POST /echo HTTP/1.0", b"Connection: keep-alive", b"Content-Length: %d" % len(CHUNKED_HELLO + SMUGGLED),
              b"Transfer-Encoding: chunked", body=CHUNKED_HELLO + SMUGGLED),
          (R400C, OK_CLOSE), "RFC 9112 §6.1", lenient=R4XXC, smuggle=True),
    ]
    return cs


# -- family: Transfer-Encoding forms -------------------------------------------------
#: (slug, value, chunked is a correct reading)
TE_FORMS = [
    ("trailing-comma", b"chunked,", True), ("leading-comma", b", chunked", True), ("param", b"chunked;x=y", None),
    ("double", b"chunked, chunked", None), ("upper", b"CHUNKED", True), ("mixed-case", b"Chunked", True),
    ("tab-before", b"\tchunked", True), ("trailing-sp", b"chunked ", True), ("xchunked", b"xchunked", False),
    ("chunkedx", b"chunkedx", False), ("vt-after", b"chunked\x0b", False), ("ff-after", b"chunked\x0c", False),
    ("vt-before", b"\x0bchunked", False), ("nul-after", b"chunked\x00", False), ("cr-after", b"chunked\r", False),
    ("quoted", b'"chunked"', False), ("chunk", b"chunk", False), ("chunked-dash", b"chunked-", False),
    ("space-inside", b"chun ked", False), ("non-ascii-k", b"chun\xc4\xb8ed", False),
]


def fam_te_forms() -> list[Case]:
    cs = []
    for slug, value, good in TE_FORMS:
        send = req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: " + value, body=CHUNKED_HELLO)
        if good is True:
            expect, level = (OK, R400C, R501C), MUST
        elif good is None:
            expect, level = (R400C, R501C, OK), SHOULD
        else:
            expect, level = (R400C, R501C), MUST
        cs.append(C(f"te-form-{slug}", "te-forms", f"Transfer-Encoding {value!r} alone", send, expect,
                    "RFC 9112 §6.1, §6.3, RFC 9110 §5.6.1", level=level, lenient=R4XXC, echo=Echo(body=b"hello"),
                    note="never an accidental chunked: a non-chunked final coding is 400/501 and close"))
    cs += [
        C("te-form-two-lines", "te-forms", "Transfer-Encoding: chunked on two lines",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
              body=CHUNKED_HELLO), (R400C, R501C, OK), "RFC 9112 §6.1", level=SHOULD, lenient=R4XXC),
        C("te-form-two-lines-gzip-last", "te-forms", "Transfer-Encoding: chunked then gzip lines",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip",
              body=CHUNKED_HELLO), (R400C, R501C), "RFC 9112 §6.3", lenient=R4XXC),
        C("te-form-obs-fold", "te-forms", "obs-folded Transfer-Encoding",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding:\r\n chunked", body=CHUNKED_HELLO), (R400C, R400, OK),
          "RFC 9112 §5.2, §6.1", echo=Echo(body=b"hello")),
        C("te-form-upper-name", "te-forms", "TRANSFER-ENCODING: chunked (names are case-insensitive)",
          req(b"POST /echo HTTP/1.1", b"TRANSFER-ENCODING: chunked", body=CHUNKED_HELLO), OK, "RFC 9110 §5.1",
          echo=Echo(body=b"hello")),
        C("te-form-underscore", "te-forms", "Transfer_Encoding is not Transfer-Encoding",
          req(b"POST /echo HTTP/1.1", b"Transfer_Encoding: chunked", b"Content-Length: 5", body=b"hello"),
          (OK, R400C), "RFC 9110 §5.1", echo=Echo(body=b"hello")),
        C("te-form-cl-underscore", "te-forms", "Content_Length is not Content-Length",
          req(b"POST /echo HTTP/1.1", b"Content_Length: 5"), (OK, R400), "RFC 9110 §5.1",
          echo=Echo(body=b"")),
    ]
    return cs


# -- rows 33-37: chunked syntax, trailers, incomplete bodies ----------------------------
def _chunked(size_line: bytes, rest: bytes = b"hello\r\n0\r\n\r\n") -> bytes:
    return req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=size_line + rest)


def rows_33_37() -> list[Case]:
    cs = []
    for tag, size in [("0x5", b"0x5"), ("plus5", b"+5"), ("minus5", b"-5"), ("underscore", b"5_0"),
                      ("leading-sp", b" 5"), ("empty", b""), ("overflow-20", b"1" + b"0" * 19 + b"5"),
                      ("overflow-2p64-plus5", b"10000000000000005"), ("g", b"g"), ("nul", b"5\x00"),
                      ("leading-tab", b"\t5"), ("vt", b"5\x0b"), ("non-ascii", b"\xd9\xa5"),
                      ("zeros-then-overflow", b"0" * 20 + b"10000000000000005")]:
        cs.append(C(f"row33-chunk-size-{tag}", 33, f"chunk-size {size!r}", _chunked(size + b"\r\n"),
                    (R400C, R4XXC, CLOSE), "RFC 9112 §7.1", smuggle=True))
    cs += [
        C("row33-chunk-size-leading-zeros", 33, "chunk-size 00005 (1*HEXDIG)", _chunked(b"00005\r\n"), OK,
          "RFC 9112 §7.1", echo=Echo(body=b"hello"), level=SHOULD, lenient=R400C),
        C("row33-chunk-size-many-leading-zeros", 33, "chunk-size 00000000000000000000005 (22 zeros, 1*HEXDIG)",
          _chunked(b"0" * 22 + b"5\r\n"), OK, "RFC 9112 §7.1", echo=Echo(body=b"hello"), level=SHOULD,
          lenient=R400C, note="leading zeros are not significant digits: httpd skips them and answers 200"),
        C("row33-chunk-size-upper-hex", 33, "chunk-size in upper-case hex", _chunked(b"A\r\n", b"helloworld\r\n0\r\n\r\n"),
          OK, "RFC 9112 §7.1", echo=Echo(body=b"helloworld")),
        C("row33-chunk-size-trailing-sp", 33, "chunk-size followed by SP", _chunked(b"5 \r\n"), (R400C, R4XXC),
          "RFC 9112 §7.1", level=SHOULD, lenient=OK),
        C("row33-chunk-size-trailing-tab", 33, "chunk-size followed by HTAB", _chunked(b"5\t\r\n"), (R400C, R4XXC),
          "RFC 9112 §7.1", level=SHOULD, lenient=OK),
        C("row33-last-chunk-00", 33, "last-chunk 000", _chunked(b"5\r\n", b"hello\r\n000\r\n\r\n"), OK,
          "RFC 9112 §7.1", echo=Echo(body=b"hello")),
    ]
    for tag, body, level, lenient in [
        ("too-long", b"5\r\nhello!!\r\n0\r\n\r\n", MUST, ()),
        ("too-short", b"5\r\nhel\r\n0\r\n\r\n", MUST, ()),
        ("missing-crlf", b"5\r\nhello0\r\n\r\n", MUST, ()),
        ("data-bare-cr", b"5\r\nhello\r0\r\n\r\n", MUST, ()),
        ("size-bare-cr", b"5\rhello\r\n0\r\n\r\n", MUST, ()),
        ("data-bare-lf", b"5\r\nhello\n0\r\n\r\n", MAY, (OK,)),
        ("size-bare-lf", b"5\nhello\r\n0\r\n\r\n", MAY, (OK,)),
        ("last-bare-lf", b"5\r\nhello\r\n0\n\r\n", MAY, (OK,)),
        ("data-garbage-after", b"5\r\nhelloXX0\r\n\r\n", MUST, ()),
    ]:
        cs.append(C(f"row34-chunk-data-{tag}", 34, f"chunk data framing: {tag}",
                    req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=body), (R400C, R4XXC),
                    "RFC 9112 §7.1, §2.2", level=level, lenient=lenient, smuggle=True,
                    echo=Echo(body=b"hello") if lenient else ()))
    for tag, ext, ok in [("token", b";a=b", True), ("bws-quoted", b' ; a="q"', True), ("name-only", b";a", True),
                         ("quoted-escape", b';a="q;\\"x"', True), ("two", b";a=b;c=d", True)]:
        cs.append(C(f"row35-chunk-ext-{tag}", 35, f"chunk extension {ext!r} ignored", _chunked(b"5" + ext + b"\r\n"),
                    OK, "RFC 9112 §7.1.1", echo=Echo(body=b"hello")))
    for tag, ext, level in [("bare-semi", b";", SHOULD), ("bad-token", b";a@=b", SHOULD), ("nul", b";a=\x00", SHOULD),
                            ("bare-cr", b";a=b\rc", MUST), ("unterminated-quote", b';a="q', SHOULD)]:
        cs.append(C(f"row35-chunk-ext-{tag}", 35, f"invalid chunk extension {ext!r}", _chunked(b"5" + ext + b"\r\n"),
                    (R400C, R4XXC), "RFC 9112 §7.1.1", level=level, lenient=OK))
    cs.append(C("row35-chunk-ext-64k", 35, "64 KB chunk extension", _chunked(b"5;a=" + b"b" * 65_536 + b"\r\n"),
                R4XXC, "RFC 9112 §7.1.1", level=SHOULD, lenient=OK, health=True,
                note="the total size of extensions ought to be limited"))
    for tag, field in [("custom", b"X-T: v"), ("content-length", b"Content-Length: 50"),
                       ("transfer-encoding", b"Transfer-Encoding: gzip"), ("host", b"Host: evil.example"),
                       ("authorization", b"Authorization: Basic YTpi"), ("content-type", b"Content-Type: text/x")]:
        name = field.split(b":")[0].decode()
        lacks = () if name in ("Transfer-Encoding", "Host") else (name,)
        cs.append(C(f"row36-trailer-{tag}", 36, f"trailer field {field!r} never used",
                    req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n" + field +
                        b"\r\n\r\n"), OK, "RFC 9110 §6.5, §6.5.1", lenient=R400C,
                    echo=Echo(body=b"hello", lacks=lacks, has=(("Host", "localhost"),)),
                    note="rejecting a well-formed trailer is allowed by no rule but harmless: Warn"))
    cs += [
        C("row36-trailer-no-colon", 36, "malformed trailer line",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\nX T\r\n\r\n"),
          (R400C, R4XXC), "RFC 9112 §7.1.2, §2.2", level=SHOULD, lenient=OK),
        C("row36-trailer-obs-fold", 36, "obs-fold in the trailer",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n"),
          (R400C, R4XXC, OK), "RFC 9112 §5.2", echo=Echo(body=b"hello", lacks=("X",))),
        C("row37-cl-short-silence", 37, "Content-Length 10, 5 bytes, silence",
          req(b"POST /echo HTTP/1.1", b"Content-Length: 10", body=b"hello"),
          (PENDING, Outcome(("408",), REQUIRED), CLOSE), "RFC 9112 §6.3"),
        C("row37-chunked-short-silence", 37, "chunk announced 5, 3 bytes, silence",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhel"),
          (PENDING, Outcome(("408",), REQUIRED), CLOSE), "RFC 9112 §6.3"),
        C("row37-no-last-chunk", 37, "chunked body without the last chunk",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n"),
          (PENDING, Outcome(("408",), REQUIRED), CLOSE), "RFC 9112 §6.3"),
        C("row37-head-incomplete", 37, "header section never ended", b"GET / HTTP/1.1\r\nHost: localhost\r\n",
          (PENDING, Outcome(("408",), REQUIRED), CLOSE), "RFC 9112 §2.2"),
        C("row37-cl-short-fin", 37, "Content-Length 10, 5 bytes, FIN",
          (req(b"POST /echo HTTP/1.1", b"Content-Length: 10", body=b"hello"), SHUT_WR),
          (R4XXC, CLOSE), "RFC 9112 §6.3", note="incomplete: MUST close, never processed"),
        C("row37-chunked-short-fin", 37, "chunked body cut by FIN",
          (req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhel"), SHUT_WR),
          (R4XXC, CLOSE), "RFC 9112 §6.3"),
        C("row37-no-last-chunk-fin", 37, "chunked body without the last chunk, FIN",
          (req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n"), SHUT_WR),
          (R4XXC, CLOSE), "RFC 9112 §6.3"),
    ]
    return cs


# -- rows 38-41: Expect, HEAD, persistence, pipelining -----------------------------
def rows_38_41() -> list[Case]:
    post5 = req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: 100-continue")
    cs = [
        C("row38-expect-100", 38, "Expect: 100-continue, body after the 100", (post5, AWAIT_HEAD, b"hello"),
          Outcome(("2xx",), FORBIDDEN, interim=(100,)), "RFC 9110 §10.1.1", echo=Echo(body=b"hello")),
        C("row38-expect-100-case", 38, "Expect: 100-Continue (case-insensitive)",
          (req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: 100-Continue"), AWAIT_HEAD, b"hello"),
          Outcome(("2xx",), FORBIDDEN, interim=(100,)), "RFC 9110 §10.1.1", echo=Echo(body=b"hello")),
        C("row38-expect-100-chunked", 38, "Expect: 100-continue with a chunked body",
          (req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", b"Expect: 100-continue"), AWAIT_HEAD,
           CHUNKED_HELLO), Outcome(("2xx",), FORBIDDEN, interim=(100,)), "RFC 9110 §10.1.1",
          echo=Echo(body=b"hello")),
        C("row38-expect-100-final-first", 38, "Expect: 100-continue to a 405 resource, body never sent",
          (req(b"POST / HTTP/1.1", b"Content-Length: 5", b"Expect: 100-continue"), AWAIT_HEAD),
          (Outcome(("405",), interim=()), Outcome(("405",), interim=(100,)), Outcome(("405",), pending=True,
                                                                                     interim=(100,))),
          "RFC 9110 §10.1.1", want=Want("allow", only_status="405"),
          note="a final status may come at once; after a 100 the server waits for the body", get_only_root=True),
        C("row38-expect-100-body-at-once", 38, "Expect: 100-continue with the body sent at once, then probe",
          post5 + b"hello", OK, "RFC 9110 §10.1.1", echo=Echo(body=b"hello")),
        C("row38-expect-100-http10", 38, "Expect: 100-continue from HTTP/1.0 is ignored",
          req(b"POST /echo HTTP/1.0", b"Content-Length: 5", b"Expect: 100-continue", body=b"hello"),
          Outcome(("2xx",), REQUIRED, interim=()), "RFC 9110 §10.1.1, §15.2", echo=Echo(body=b"hello")),
        C("row38-expect-100-no-body", 38, "Expect: 100-continue on a GET without content",
          req(b"GET / HTTP/1.1", b"Expect: 100-continue"), (OK_ANY, Outcome(("4xx",))), "RFC 9110 §10.1.1",
          level=SHOULD),
        C("row38-expect-foo", 38, "unknown expectation", req(b"GET / HTTP/1.1", b"Expect: foo"),
          (Outcome(("417",)), OK_ANY), "RFC 9110 §10.1.1", level=MAY),
        C("row38-expect-100-param", 38, "Expect: 100-continue;x=y is not 100-continue",
          req(b"GET / HTTP/1.1", b"Expect: 100-continue;x=y"), (Outcome(("417",)), OK_ANY), "RFC 9110 §10.1.1",
          level=MAY),
        C("row39-head", 39, "HEAD / carries no body", req(b"HEAD / HTTP/1.1"), OK, "RFC 9110 §9.3.2", rules=FRAMING),
        C("row39-head-bytes", 39, "HEAD /bytes/1000", req(b"HEAD /bytes/1000 HTTP/1.1"), OK, "RFC 9110 §9.3.2",
          rules=FRAMING),
        C("row39-head-echo", 39, "HEAD /echo", req(b"HEAD /echo HTTP/1.1"), OK, "RFC 9110 §9.3.2", rules=FRAMING),
        C("row39-head-404", 39, "HEAD of a 404", req(b"HEAD /nope HTTP/1.1"), Outcome(("404",), FORBIDDEN),
          "RFC 9110 §9.3.2", rules=FRAMING),
        C("row39-head-405", 39, "HEAD then a 405 body", req(b"HEAD / HTTP/1.1") + req(b"DELETE / HTTP/1.1"),
          (Outcome(("2xx", "405|501")),), "RFC 9110 §9.3.2", reqs=(("HEAD", "1.1"), ("DELETE", "1.1")),
          rules=FRAMING),
        C("row39-head-400-no-host", 39, "HEAD without Host: the 400 carries no body",
          req(b"HEAD / HTTP/1.1", host=False), R400, "RFC 9110 §9.3.2, RFC 9112 §3.2", rules=FRAMING),
        C("row39-head-400-bad-target", 39, "HEAD with an invalid target: the 400 carries no body",
          req(b"HEAD /\x01 HTTP/1.1"), R400, "RFC 9110 §9.3.2", level=MUST, rules=FRAMING),
        C("row39-head-414", 39, "HEAD with a 100 KB target: the 414 carries no body",
          req(b"HEAD /" + b"a" * 100_000 + b" HTTP/1.1"), Outcome(("414",)), "RFC 9110 §9.3.2, RFC 9112 §3",
          rules=FRAMING),
        C("row39-head-then-get", 39, "pipelined HEAD then GET parse cleanly",
          req(b"HEAD / HTTP/1.1") + req(b"GET / HTTP/1.1"), Outcome(("2xx", "2xx"), FORBIDDEN), "RFC 9112 §6.3",
          reqs=(("HEAD", "1.1"), ("GET", "1.1")), rules=FRAMING),
        C("row39-head-http10", 39, "HEAD over HTTP/1.0", req(b"HEAD / HTTP/1.0", host=False), OK_CLOSE,
          "RFC 9110 §9.3.2", rules=FRAMING),
        C("row40-two-requests", 40, "two requests on one connection",
          (req(b"GET / HTTP/1.1"), READ, req(b"GET /echo?second HTTP/1.1")), Outcome(("2xx", "2xx"), FORBIDDEN),
          "RFC 9112 §9.3", echo=Echo(index=1, target="/echo?second")),
        C("row40-connection-close", 40, "Connection: close honoured", req(b"GET / HTTP/1.1", b"Connection: close"),
          OK_CLOSE, "RFC 9112 §9.6"),
        C("row40-connection-close-case", 40, "Connection: Close (case-insensitive)",
          req(b"GET / HTTP/1.1", b"Connection: Close"), OK_CLOSE, "RFC 9112 §9.6, RFC 9110 §7.6.1"),
        C("row40-connection-list-close", 40, "Connection: keep-alive, close",
          req(b"GET / HTTP/1.1", b"Connection: keep-alive, close"), OK_CLOSE, "RFC 9112 §9.6"),
        C("row40-connection-two-lines-close", 40, "Connection: x then Connection: close",
          req(b"GET / HTTP/1.1", b"Connection: x-foo", b"Connection: close"), OK_CLOSE, "RFC 9112 §9.6"),
        C("row40-http10", 40, "HTTP/1.0 closes by default", req(b"GET / HTTP/1.0", host=False), OK_CLOSE,
          "RFC 9112 §9.3"),
        C("row40-http10-keepalive", 40, "HTTP/1.0 with keep-alive may persist",
          req(b"GET / HTTP/1.0", b"Connection: keep-alive"), OK_ANY, "RFC 9112 §9.3", level=MAY),
        C("row40-http10-keepalive-twice", 40, "HTTP/1.0 keep-alive, second request",
          (req(b"GET / HTTP/1.0", b"Connection: keep-alive"), READ, req(b"GET / HTTP/1.0")),
          (Outcome(("2xx", "2xx"), REQUIRED), Outcome(("2xx",), REQUIRED)), "RFC 9112 §9.3", level=MAY,
          reqs=(("GET", "1.0"), ("GET", "1.0"))),
        C("row40-close-then-more", 40, "request after Connection: close is never answered",
          req(b"GET / HTTP/1.1", b"Connection: close") + SMUGGLED, OK_CLOSE, "RFC 9112 §9.6", smuggle=True),
        C("row41-pipeline-3", 41, "GET, HEAD, POST in one write",
          req(b"GET /echo?1 HTTP/1.1") + req(b"HEAD / HTTP/1.1") +
          req(b"POST /echo?3 HTTP/1.1", b"Content-Length: 5", body=b"hello"),
          Outcome(("2xx", "2xx", "2xx"), FORBIDDEN), "RFC 9112 §9.3.2",
          reqs=(("GET", "1.1"), ("HEAD", "1.1"), ("POST", "1.1")),
          echo=(Echo(index=0, target="/echo?1"), Echo(index=2, target="/echo?3", body=b"hello"))),
        C("row41-pipeline-10", 41, "ten pipelined requests in order",
          b"".join(req(b"GET /echo?%d HTTP/1.1" % i) for i in range(10)), Outcome(("2xx",) * 10, FORBIDDEN),
          "RFC 9112 §9.3.2", echo=tuple(Echo(index=i, target=f"/echo?{i}") for i in range(10))),
        C("row41-pipeline-chunked", 41, "chunked POST then GET in one write",
          req(b"POST /echo?a HTTP/1.1", b"Transfer-Encoding: chunked", body=CHUNKED_HELLO) + req(b"GET /echo?b HTTP/1.1"),
          Outcome(("2xx", "2xx"), FORBIDDEN), "RFC 9112 §9.3.2",
          echo=(Echo(index=0, body=b"hello"), Echo(index=1, target="/echo?b"))),
        C("row41-pipeline-error-last", 41, "valid GET then a bad request",
          req(b"GET / HTTP/1.1") + req(b"GET / HTTP/1.1", host=False), Outcome(("2xx", "400")), "RFC 9112 §9.3.2"),
        C("row41-pipeline-close-middle", 41, "Connection: close in the middle of a pipeline",
          req(b"GET / HTTP/1.1") + req(b"GET / HTTP/1.1", b"Connection: close") + SMUGGLED,
          Outcome(("2xx", "2xx"), REQUIRED), "RFC 9112 §9.6", smuggle=True),
    ]
    return cs


# -- row 42 + family: desync sequences ------------------------------------------------
def _cl_te(te_field: bytes, smuggled: bytes = SMUGGLED, target=b"/echo") -> bytes:
    body = b"0\r\n\r\n" + smuggled
    return req(b"POST " + target + b" HTTP/1.1", b"Content-Length: %d" % len(body), te_field, body=body)


def _te_cl(te_field: bytes, smuggled: bytes = SMUGGLED) -> bytes:
    chunk = smuggled + b"x=1"
    body = b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"
    return req(b"POST /echo HTTP/1.1", b"Content-Length: 4", te_field, body=body)


def row_42() -> list[Case]:
    smug_head = b"HEAD /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
    ambiguous = (R400C, OK_CLOSE)
    cs = [
        C("row42-cl-te", 42, "CL.TE: CL covers a chunked body that ends early", _cl_te(b"Transfer-Encoding: chunked"),
          ambiguous, "RFC 9112 §6.1, §6.3", lenient=R4XXC, smuggle=True),
        C("row42-cl-te-head", 42, "CL.TE hiding a HEAD", _cl_te(b"Transfer-Encoding: chunked", smug_head), ambiguous,
          "RFC 9112 §6.1", lenient=R4XXC, smuggle=True),
        C("row42-cl-te-root", 42, "CL.TE on a resource that does not read the body",
          _cl_te(b"Transfer-Encoding: chunked", target=b"/"), (R400C, Outcome(("405",), REQUIRED)), "RFC 9112 §6.1",
          lenient=R4XXC, smuggle=True, get_only_root=True),
        C("row42-te-cl", 42, "TE.CL: chunk-size prefix before a hidden GET", _te_cl(b"Transfer-Encoding: chunked"),
          ambiguous, "RFC 9112 §6.1, §6.3", lenient=R4XXC, smuggle=True),
        C("row42-te-cl-head", 42, "TE.CL hiding a HEAD", _te_cl(b"Transfer-Encoding: chunked", smug_head), ambiguous,
          "RFC 9112 §6.1", lenient=R4XXC, smuggle=True),
        C("row42-cl-cl", 42, "CL.CL: two lengths, the larger covers a hidden GET",
          req(b"POST /echo HTTP/1.1", b"Content-Length: 0", b"Content-Length: %d" % len(SMUGGLED), body=SMUGGLED),
          R400C, "RFC 9112 §6.3", lenient=R4XXC, smuggle=True),
        C("row42-cl-cl-reverse", 42, "CL.CL: larger length first",
          req(b"POST /echo HTTP/1.1", b"Content-Length: %d" % len(SMUGGLED), b"Content-Length: 0", body=SMUGGLED),
          R400C, "RFC 9112 §6.3", lenient=R4XXC, smuggle=True),
        C("row42-cl-list", 42, "CL list 0, N hiding a GET",
          req(b"POST /echo HTTP/1.1", b"Content-Length: 0, %d" % len(SMUGGLED), body=SMUGGLED),
          R400C, "RFC 9112 §6.3", lenient=R4XXC, smuggle=True),
        C("row42-te-te-cl", 42, "TE.TE: chunked + xchunked lines, with CL",
          _cl_te(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: xchunked"), (R400C, R501C), "RFC 9112 §6.1",
          lenient=R4XXC, smuggle=True),
        C("row42-te-te-cl-reverse", 42, "TE.TE: xchunked + chunked lines, with CL",
          _cl_te(b"Transfer-Encoding: xchunked\r\nTransfer-Encoding: chunked"), ambiguous + (R501C,),
          "RFC 9112 §6.1", lenient=R4XXC, smuggle=True),
        C("row42-get-body-smuggle", 42, "GET with a CL body that is a request",
          req(b"GET / HTTP/1.1", b"Content-Length: %d" % len(SMUGGLED), body=SMUGGLED), (OK, R4XXC),
          "RFC 9112 §6.3, RFC 9110 §9.3.1", smuggle=True),
        C("row42-head-body-smuggle", 42, "HEAD with a CL body that is a request",
          req(b"HEAD / HTTP/1.1", b"Content-Length: %d" % len(SMUGGLED), body=SMUGGLED), (OK, R4XXC),
          "RFC 9112 §6.3, RFC 9110 §9.3.2", smuggle=True),
        C("row42-options-body-smuggle", 42, "OPTIONS with a CL body that is a request",
          req(b"OPTIONS / HTTP/1.1", b"Content-Length: %d" % len(SMUGGLED), body=SMUGGLED), (OK, R4XXC),
          "RFC 9112 §6.3", smuggle=True),
        C("row42-get-chunked-smuggle", 42, "GET with a chunked body that is a request",
          req(b"GET / HTTP/1.1", b"Transfer-Encoding: chunked",
              body=b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"), (OK, R4XXC), "RFC 9112 §6.3", smuggle=True),
        C("row42-expect-at-once-smuggle", 42, "Expect: 100-continue with a body that is a request",
          req(b"POST /echo HTTP/1.1", b"Expect: 100-continue", b"Content-Length: %d" % len(SMUGGLED), body=SMUGGLED),
          OK, "RFC 9110 §10.1.1, RFC 9112 §6.3", echo=Echo(body=SMUGGLED), smuggle=True),
        C("row42-cl0-stray", 42, "Content-Length: 0 followed by stray bytes",
          req(b"POST /echo HTTP/1.1", b"Content-Length: 0", body=b"hello\r\n\r\n"),
          (Outcome(("2xx", "400"), REQUIRED), Outcome(("2xx", "4xx"), REQUIRED)), "RFC 9112 §2.2, §6.3",
          level=SHOULD),
        C("row42-cl-underscore-smuggle", 42, "Content_Length hiding a GET",
          req(b"POST /echo HTTP/1.1", b"Content_Length: %d" % len(SMUGGLED), b"Content-Length: 0") + SMUGGLED,
          (Outcome(("2xx", "404")), R400C), "RFC 9110 §5.1", reqs=(("POST", "1.1"), ("GET", "1.1")),
          note="Content_Length is not a framing field: the GET is a genuine second request"),
        C("row42-te-in-trailer-smuggle", 42, "Transfer-Encoding in a trailer with a following GET",
          req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked",
              body=b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
          OK, "RFC 9110 §6.5.1", lenient=R400C, echo=Echo(body=b"hello")),
    ]
    for slug, value, good in TE_FORMS:
        cs.append(C(f"desync-cl-te-{slug}", "desync", f"CL.TE with Transfer-Encoding {value!r}",
                    _cl_te(b"Transfer-Encoding: " + value), (R400C, R501C, OK_CLOSE), "RFC 9112 §6.1, §6.3",
                    lenient=R4XXC, smuggle=True, note="CL and TE together: reject or close after responding"))
    for slug, value in [("xchunked", b"xchunked"), ("vt-after", b"chunked\x0b"), ("trailing-comma", b"chunked,"),
                        ("upper", b"CHUNKED"), ("tab-before", b"\tchunked"), ("param", b"chunked;x=y")]:
        cs.append(C(f"desync-te-cl-{slug}", "desync", f"TE.CL with Transfer-Encoding {value!r}",
                    _te_cl(b"Transfer-Encoding: " + value), (R400C, R501C, OK_CLOSE), "RFC 9112 §6.1, §6.3",
                    lenient=R4XXC, smuggle=True))
    return cs


# -- row 43-44 + families: bodies on GET, garbage, upgrade, methods, exhaustion, responses
def rows_43_44_families() -> list[Case]:
    tls_hello = bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) + b"\x00\x00\x02\x13\x01\x01\x00" + \
        b"\x00\x76" + b"\x00" * 0x76
    rnd = random.Random(9112)
    cs = [
        C("row43-get-cl-body", 43, "GET with a Content-Length body, then probe",
          req(b"GET / HTTP/1.1", b"Content-Length: 20", body=b"a" * 20), (OK, R4XXC), "RFC 9110 §9.3.1"),
        C("row43-get-echo-body", 43, "GET /echo with a body", req(b"GET /echo HTTP/1.1", b"Content-Length: 5",
                                                                  body=b"hello"), (OK, R4XXC), "RFC 9110 §9.3.1",
          echo=Echo(body=b"hello")),
        C("row43-head-cl-body", 43, "HEAD with a body", req(b"HEAD / HTTP/1.1", b"Content-Length: 20", body=b"a" * 20),
          (OK, R4XXC), "RFC 9110 §9.3.2"),
        C("row43-options-body", 43, "OPTIONS with a body", req(b"OPTIONS / HTTP/1.1", b"Content-Length: 20",
                                                               body=b"a" * 20), (OK, R4XXC), "RFC 9110 §9.3.7"),
        C("row43-get-chunked-body", 43, "GET with a chunked body",
          req(b"GET / HTTP/1.1", b"Transfer-Encoding: chunked", body=CHUNKED_HELLO), (OK, R4XXC), "RFC 9110 §9.3.1"),
        C("row43-delete-body", 43, "DELETE with a body (405)", req(b"DELETE / HTTP/1.1", b"Content-Length: 20",
                                                                   body=b"a" * 20),
          (Outcome(("405|501",)), R4XXC), "RFC 9110 §9.3.5"),
        C("row43-get-body-pipelined", 43, "GET with a body then a second request in one write",
          req(b"GET / HTTP/1.1", b"Content-Length: 5", body=b"hello") + req(b"GET /echo?after HTTP/1.1"),
          (Outcome(("2xx", "2xx"), FORBIDDEN), R4XXC), "RFC 9110 §9.3.1", echo=Echo(index=1, target="/echo?after")),
        C("row44-random-binary", 44, "random binary", bytes(rnd.randrange(256) for _ in range(512)), (R4XX, CLOSE, PENDING),
          "RFC 9112 §2.2", level=SHOULD, health=True),
        C("row44-tls-client-hello", 44, "TLS ClientHello", tls_hello, (R4XX, CLOSE, PENDING), "RFC 9112 §2.2", level=SHOULD,
          health=True),
        C("row44-h2-preface", 44, "HTTP/2 connection preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
          (Outcome(("400|505",)), CLOSE), "RFC 9113 §3.4, RFC 9112 §2.2", level=SHOULD, lenient=R4XX, health=True),
        C("row44-nul-bytes", 44, "NUL bytes", b"\x00" * 64 + b"\r\n\r\n", (R4XX, CLOSE), "RFC 9112 §2.2",
          level=SHOULD, health=True),
        C("row44-zero-bytes-fin", 44, "connect, send nothing, FIN", (SHUT_WR,), (CLOSE, Outcome(("400|408",), REQUIRED)),
          "RFC 9112 §9.6", level=SHOULD, health=True),
        C("row44-blank-lines-fin", 44, "blank lines then FIN", (b"\r\n\r\n\r\n", SHUT_WR),
          (CLOSE, Outcome(("400|408",), REQUIRED)), "RFC 9112 §2.2", level=SHOULD),
        C("row44-garbage-line", 44, "a text line that is no request-line", b"hello world\r\n\r\n", (R400, R4XX, CLOSE),
          "RFC 9112 §2.2", level=SHOULD),
        C("row44-whitespace-line", 44, "whitespace-only request-line", b"   \r\n" + H + b"\r\n", (R400, R4XX, CLOSE),
          "RFC 9112 §2.2, §3", level=SHOULD),
        C("row44-sslv2-hello", 44, "SSLv2-style hello", bytes.fromhex("802e0103010015000000100100800300800700c0") +
          bytes(16), (R4XX, CLOSE, PENDING), "RFC 9112 §2.2", level=SHOULD, health=True),
        # Upgrade: never 101
        C("upgrade-websocket", "upgrade", "Upgrade: websocket with Connection: upgrade",
          req(b"GET / HTTP/1.1", b"Connection: upgrade", b"Upgrade: websocket"), (OK_ANY, R4XX), "RFC 9110 §7.8"),
        C("upgrade-h2c-post", "upgrade", "POST with Upgrade: h2c",
          req(b"POST /echo HTTP/1.1", b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c",
              b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", b"Content-Length: 5", body=b"hello"), (OK_ANY, R4XX),
          "RFC 9110 §7.8", echo=Echo(body=b"hello")),
        C("upgrade-no-connection", "upgrade", "Upgrade without Connection: upgrade",
          req(b"GET / HTTP/1.1", b"Upgrade: websocket"), OK, "RFC 9110 §7.8"),
        C("upgrade-unknown", "upgrade", "Upgrade to an unknown protocol",
          req(b"GET / HTTP/1.1", b"Connection: upgrade", b"Upgrade: foo/1"), (OK_ANY, R4XX), "RFC 9110 §7.8"),
        C("upgrade-http10", "upgrade", "Upgrade on HTTP/1.0 is ignored",
          req(b"GET / HTTP/1.0", b"Connection: upgrade", b"Upgrade: websocket"), OK_CLOSE, "RFC 9110 §7.8"),
        C("upgrade-tls", "upgrade", "Upgrade: TLS/1.0", req(b"OPTIONS * HTTP/1.1", b"Connection: upgrade",
                                                           b"Upgrade: TLS/1.0"), (OK_ANY, R4XX), "RFC 9110 §7.8"),
        # special methods
        C("method-trace", "methods", "TRACE", req(b"TRACE / HTTP/1.1"), Outcome(("405|501|400|403|2xx",)),
          "RFC 9110 §9.3.8", level=MAY),
        C("method-trace-body", "methods", "TRACE with a body",
          req(b"TRACE / HTTP/1.1", b"Content-Length: 5", body=b"hello"), Outcome(("4xx|501",)), "RFC 9110 §9.3.8",
          level=SHOULD, lenient=OK_ANY),
        C("method-connect-ip", "methods", "CONNECT 127.0.0.1:80", req(b"CONNECT 127.0.0.1:80 HTTP/1.1"),
          Outcome(("400|403|405|501",)), "RFC 9110 §9.3.6", level=SHOULD, lenient=Outcome(("4xx|5xx",))),
        C("method-options-star-allow", "methods", "OPTIONS * answers Allow", req(b"OPTIONS * HTTP/1.1"), OK,
          "RFC 9110 §9.3.7", want=Want("allow", level=SHOULD)),
        C("method-options-star-echo-path", "methods", "OPTIONS * over HTTP/1.0", req(b"OPTIONS * HTTP/1.0"),
          OK_CLOSE, "RFC 9112 §3.2.4"),
        C("method-patch", "methods", "PATCH on a GET-only resource", req(b"PATCH / HTTP/1.1", b"Content-Length: 0"),
          Outcome(("405|501",)), "RFC 9110 §15.5.6", want=Want("allow", only_status="405")),
        # resource exhaustion
        C("exhaust-range-1000", "exhaustion", "1000 overlapping Range values",
          req(b"GET /bytes/100 HTTP/1.1", b"Range: bytes=" + b",".join(b"0-" for _ in range(1000))),
          Outcome(("200|206|416|4xx",)), "RFC 9110 §14.2", level=SHOULD, health=True),
        C("exhaust-bytes-1m", "exhaustion", "1 MB response framed exactly", req(b"GET /bytes/1000000 HTTP/1.1"), OK,
          "RFC 9112 §6.2"),
        # response rules
        C("resp-date-fixdate", "responses", "Date is IMF-fixdate", req(b"GET /echo HTTP/1.1"), OK, "RFC 9110 §5.6.7",
          rules=("date", "date-format")),
        C("resp-content-type", "responses", "Content-Type on content", req(b"GET /bytes/10 HTTP/1.1"), OK,
          "RFC 9110 §8.3", level=SHOULD, want=Want("content-type")),
        C("resp-404-date", "responses", "Date on a 404", req(b"GET /nope HTTP/1.1"), Outcome(("404",), FORBIDDEN),
          "RFC 9110 §6.6.1", rules=("date",)),
        C("resp-400-date", "responses", "Date on a 400", req(b"GET / HTTP/1.1", host=False), R400, "RFC 9110 §6.6.1",
          rules=("date",)),
        C("resp-405-date-allow", "responses", "Date and Allow on a 405", req(b"DELETE / HTTP/1.1"),
          Outcome(("405|501",)), "RFC 9110 §6.6.1, §15.5.6", rules=("date", "allow-405"), get_only_root=True),
        C("resp-414-date", "responses", "Date on the error to a 100 KB target",
          req(b"GET /" + b"a" * 100_000 + b" HTTP/1.1"), R4XX, "RFC 9110 §6.6.1", rules=("date",)),
        C("resp-431-date", "responses", "Date on the error to a 100 KB field",
          req(b"GET / HTTP/1.1", b"X-Big: " + b"a" * 100_000), R4XX, "RFC 9110 §6.6.1", rules=("date",)),
        C("resp-100-no-cl", "responses", "the 100 (Continue) carries no Content-Length, the final answer a Date",
          (req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: 100-continue"), AWAIT_HEAD, b"hello"),
          Outcome(("2xx",)), "RFC 9110 §8.6, §6.6.1", rules=("cl-1xx", "date")),
        C("resp-http10-no-1xx", "responses", "HTTP/1.0 with Expect: 100-continue never gets a 1xx",
          (req(b"POST /echo HTTP/1.0", b"Content-Length: 5", b"Expect: 100-continue"), AWAIT_HEAD, b"hello"),
          Outcome(("2xx",)), "RFC 9110 §15.2", rules=("1xx-http10",), wait=1.0,
          note="the pause lets a server that would send a 100 do it; the body then comes anyway"),
        C("resp-http10-no-te", "responses", "HTTP/1.0 client never gets Transfer-Encoding",
          req(b"GET /bytes/100000 HTTP/1.0"), OK_CLOSE, "RFC 9112 §6.1", rules=("te-http10",)),
        C("resp-http10-stream-no-te", "responses", "a body of unknown length to HTTP/1.0: closed, never chunked",
          req(b"GET /stream HTTP/1.0"), OK_CLOSE, "RFC 9112 §6.1, §6.3", rules=("te-http10",)),
        C("resp-204-no-cl", "responses", "a 204 carries no Content-Length", req(b"GET /status/204 HTTP/1.1"),
          Outcome(("204",), FORBIDDEN), "RFC 9110 §8.6", rules=("cl-204", "date")),
        C("resp-stream-cl-te", "responses", "a body of unknown length: Transfer-Encoding or a close, never both it "
          "and Content-Length", req(b"GET /stream HTTP/1.1"), Outcome(("2xx",)), "RFC 9112 §6.2, §6.3",
          rules=("cl-te",)),
        C("resp-upgrade-no-101", "responses", "Upgrade: websocket is never answered 101",
          req(b"GET / HTTP/1.1", b"Connection: upgrade", b"Upgrade: websocket", b"Sec-WebSocket-Version: 13",
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), (OK_ANY, R4XX), "RFC 9110 §7.8",
          rules=("no-101",)),
        C("resp-http10-version", "responses", "HTTP/1.0 request answered by an HTTP/1.x response",
          req(b"GET / HTTP/1.0"), OK_CLOSE, "RFC 9110 §2.5", want=Want("server", level=MAY)),
    ]
    return cs


CASES: list[Case] = [*rows_1_8(), *rows_9_14(), *rows_15_24(), *rows_25_32(), *fam_te_forms(), *rows_33_37(),
                     *rows_38_41(), *row_42(), *rows_43_44_families()]

_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), sorted({i for i in _ids if _ids.count(i) > 1})
