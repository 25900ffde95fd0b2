"""Property-based fuzzing of the HTTP/1.1 core (hypothesis): generated, mutated and split requests.

What is asserted, for every generated input (issue 8):

* **no exception escapes** the sans-IO reader but :class:`ProtocolError` (answered with its
  status, then a close) and :class:`ClientDisconnected` (a close), nor ``serve_connection``;
* **one interpretation per byte stream** (no desync): the events and the final verdict are
  the same whether the stream arrives in one read, one byte per read (a split at every
  boundary) or split at arbitrary points; ambiguous framing (RFC 9112 §6.1, §6.3) is never
  accepted, so a request smuggled inside a body is never answered;
* **every input ends in a response of the right class or a close**: valid requests round-trip
  exactly (method, target, fields, body, trailers); the limits answer 414 / 431 / 413 exactly
  at their boundaries (httpd's LimitRequestLine / FieldSize / Fields / Body, RFC 6585 §5 for
  431); a whole connection served by ``serve_connection`` answers each request the reader
  accepted, in order (RFC 9112 §9.3.2), then the error, then closes;
* **memory is bounded by the configured limits**: once the reader needs more data it holds
  at most ``Limits.max_head`` bytes, however the input was split.

Runs are reproducible: the default profile is derandomized with a modest number of examples
(the file takes seconds). A longer campaign explores new examples each run::

    MPM_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_http.py -n 0

``MPM_FUZZ_EXAMPLES`` multiplies nothing: it is the examples per test; with it set the
search is randomized (hypothesis prints a ``@reproduce_failure`` line for any failure).
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from servers.http.errors import ClientDisconnected, ProtocolError
from servers.http.limits import Limits
from servers.http.parser import CLOSED, NEED_DATA, EndOfMessage, RequestReader
from servers.http.persistence import KeepAlivePolicy
from servers.http.request import Request
from servers.http.response import error_response
from servers.mpm.serve import ServeContext, serve_connection
from suites.fuzz import check_answers, digest_app, expected_answers, read_answers

_CAMPAIGN = int(os.environ.get("MPM_FUZZ_EXAMPLES", "0"))
if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    # hypothesis caches data under ./.hypothesis; keep the checkout clean
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "mpm-harness-hypothesis"))


def _profile(examples: int) -> settings:
    """CI: derandomized, ``examples`` per test; campaign (MPM_FUZZ_EXAMPLES): randomized, more."""
    return settings(
        max_examples=_CAMPAIGN or examples,
        derandomize=not _CAMPAIGN,
        database=None,
        deadline=None,
        # no "explain" phase: it writes patch files under .hypothesis/ in the checkout
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


#: the statuses the core itself answers with (servers/http: parser, chunked, request)
CORE_STATUSES = {400, 408, 411, 413, 414, 417, 431, 501, 505}
#: small limits, so generated inputs cross them often
SMALL = Limits(request_line=64, field_size=48, fields=6, body=64)
DEFAULT = Limits()

# -- running the reader ------------------------------------------------------------------


def run_reader(data: bytes, cuts: list[int], limits: Limits, *, eof: bool = True,
               hint: list | None = None) -> tuple[list, object]:
    """Feed ``data`` split at ``cuts`` (then EOF); return (events summary, verdict).

    The verdict is ``("error", status)``, ``"disconnected"``, ``"closed"`` or ``"need-data"``.
    Asserts the memory bound after every read, and that nothing else escapes the reader.
    """
    reader = RequestReader(limits)
    events: list = []
    bounds = sorted({c for c in cuts if 0 < c < len(data)})
    pieces = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)]) if b > a]
    if eof:
        pieces.append(b"")
    verdict: object = "need-data"
    for piece in pieces:
        reader.feed(piece)
        while True:
            try:
                ev = reader.next_event()
            except ProtocolError as exc:
                if hint is not None:
                    hint.append(reader.method_hint)  # an error answer to HEAD has no body
                return events, ("error", exc.status)
            except ClientDisconnected:
                return events, "disconnected"
            if ev is NEED_DATA:
                # memory bounded by the limits, whatever the split (a partial head, a chunk-size
                # line or a CRLF at most)
                assert reader.buffered <= limits.max_head, (reader.buffered, limits.max_head)
                break
            if ev is CLOSED:
                return events, "closed"
            if isinstance(ev, Request):
                events.append(("request", ev.method, ev.target, ev.version, ev.host, tuple(ev.headers),
                               ev.content_length, ev.chunked, ev.expect_continue))
            elif isinstance(ev, EndOfMessage):
                events.append(("end", tuple(ev.trailers)))
            else:
                assert isinstance(ev, bytes) and ev, ev
                if events and events[-1][0] == "data":
                    events[-1] = ("data", events[-1][1] + ev)
                else:
                    events.append(("data", ev))
    return events, verdict


def bytewise(data: bytes) -> list[int]:
    """Cut points for one byte per read: a split at every boundary."""
    return list(range(1, len(data)))


def check_verdict(verdict) -> None:
    """An error verdict is one of the core's statuses and answers with a well-formed closing response."""
    if isinstance(verdict, tuple):
        status = verdict[1]
        assert status in CORE_STATUSES, status
        raw = error_response(status, "x")
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert head[0].startswith(b"HTTP/1.1 %d " % status)
        assert b"Connection: close" in head


# -- strategies ----------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: names the round-trip strategy never generates: they change framing or semantics
FRAMING = {"host", "content-length", "transfer-encoding", "expect"}
COMMON_NAMES = ["Accept", "User-Agent", "X-Forwarded-For", "Cookie", "Connection", "X_Under", "accept", "Via"]
UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"

names = st.one_of(st.sampled_from(COMMON_NAMES), st.text(TCHAR, min_size=1, max_size=12)).filter(
    lambda n: n.lower() not in FRAMING)
# field-value = *field-content: no leading/trailing whitespace (RFC 9110 §5.5), VCHAR, SP, HTAB, obs-text
_VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
values = st.one_of(
    st.just(""),
    st.text(_VCHAR, min_size=1, max_size=1),
    st.builds(lambda a, mid, z: a + mid + z,
              st.text(_VCHAR, min_size=1, max_size=1),
              st.text(_VCHAR + " \t", max_size=20),
              st.text(_VCHAR, min_size=1, max_size=1)),
)
targets = st.builds(
    lambda segs, q: "/" + "/".join(segs) + (("?" + q) if q is not None else ""),
    st.lists(st.text(UNRESERVED + "%", max_size=8), max_size=3),
    st.none() | st.text(UNRESERVED + "=&", max_size=10),
)
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])


@st.composite
def valid_requests(draw, limits: Limits = DEFAULT, max_body: int = 40):
    """A valid request as bytes, and what the reader must make of it (its events)."""
    method = draw(methods)
    target = draw(targets)
    version = draw(st.sampled_from([(1, 1), (1, 1), (1, 0)]))
    fields = draw(st.lists(st.tuples(names, values), max_size=6))
    host = None
    if version == (1, 1) or draw(st.booleans()):
        host = draw(st.sampled_from(["a", "example.org", "127.0.0.1:8080", "[::1]:80"]))
        fields.insert(draw(st.integers(0, len(fields))), ("Host", host))
    body = draw(st.binary(max_size=max_body))
    framing = draw(st.sampled_from(["none", "length", "chunked"] if version == (1, 1) else ["none", "length"]))
    if framing == "none":
        body = b""
    trailers: list[tuple[str, str]] = []
    if framing == "length":
        fields.append((draw(st.sampled_from(["Content-Length", "content-length"])), str(len(body))))
    elif framing == "chunked":
        fields.append((draw(st.sampled_from(["Transfer-Encoding", "transfer-encoding"])),
                       draw(st.sampled_from(["chunked", "Chunked", " chunked"])).strip()))
        trailers = draw(st.lists(st.tuples(names, values), max_size=2))
    head = f"{method} {target} HTTP/{version[0]}.{version[1]}\r\n".encode()
    head += b"".join(n.encode("latin-1") + b": " + v.encode("latin-1") + b"\r\n" for n, v in fields) + b"\r\n"
    if framing == "chunked":
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=3)))) if body else []
        raw = b""
        for a, b in zip([0, *cuts], [*cuts, len(body)]):
            if b > a:
                ext = draw(st.sampled_from([b"", b";a=b", b' ; q="x y"', b";n"]))
                raw += b"%x%s\r\n%s\r\n" % (b - a, ext, body[a:b])
        raw += b"0\r\n" + b"".join(n.encode("latin-1") + b": " + v.encode("latin-1") + b"\r\n"
                                   for n, v in trailers) + b"\r\n"
    else:
        raw = body
    content_length = len(body) if framing == "length" else None
    expected = [("request", method, target, version, host or "", tuple(fields), content_length,
                 framing == "chunked", False)]
    if body:
        expected.append(("data", body))
    expected.append(("end", tuple(trailers)))
    return head + raw, expected


#: fragments a mutation may insert: framing fields, line ends, chunk syntax, other requests
SNIPPETS = [
    b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b":", b";", b",", b"0\r\n\r\n", b"\r\n\r\n",
    b"Content-Length: 5\r\n", b"Content-Length: 0\r\n", b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n", b"Host: b\r\n",
    b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HTTP/1.0", b"HTTP/2.0", b"ffffffffffffffffff\r\n", b"5;" + b"e" * 70 + b"\r\n",
]


@st.composite
def mutations(draw, data: bytes):
    """``data`` mutated byte by byte: flips, insertions, deletions, duplicated slices, snippets."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "snippet", "truncate"]))
        i = draw(st.integers(0, len(out)))
        if op == "flip" and out:
            out[min(i, len(out) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and out:
            del out[i:i + draw(st.integers(1, 4))]
        elif op == "dup":
            j = draw(st.integers(0, len(out)))
            out[i:i] = out[min(i, j):max(i, j)][:64]
        elif op == "snippet":
            out[i:i] = draw(st.sampled_from(SNIPPETS))
        elif op == "truncate":
            del out[i:]
    return bytes(out)


@st.composite
def streams(draw, limits: Limits = DEFAULT):
    """One to three requests on one connection, each possibly mutated."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        raw, _ = draw(valid_requests(limits))
        if draw(st.integers(0, 3)):
            raw = draw(mutations(raw))
        parts.append(raw)
    return b"".join(parts)


cut_lists = st.lists(st.integers(1, 10_000), max_size=8)

# -- properties of the sans-IO reader -----------------------------------------------------


@_profile(300)
@given(valid_requests(), st.lists(valid_requests(), max_size=2), cut_lists)
def test_valid_requests_round_trip_however_split(first, more, cuts):
    """Valid requests (random fields, bodies, chunk extensions, trailers), pipelined, come out
    exactly as sent and in order (RFC 9112 §9.3.2), whole, byte by byte or split anywhere;
    trailers stay apart from the header section (RFC 9110 §6.5)."""
    data = first[0] + b"".join(r for r, _ in more)
    expected = first[1] + [e for _, ev in more for e in ev]
    for c in (list(cuts), [], bytewise(data)):
        events, verdict = run_reader(data, c, DEFAULT)
        assert events == expected
        assert verdict == "closed"


@_profile(400)
@given(streams(), cut_lists)
@example(b"OPTIONSP * HTTP/1.1\r\nHost: a\r\n\xe5\nGET / HTTP/1.1\r\n\r\n", [37])
@example(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\n5\r\nhello\r\n0\r\n\r\n", [31])
@example(b"\r\n" * 5000 + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [])
def test_mutated_streams_have_one_interpretation(data, cuts):
    """A mutated stream gets the same events and the same verdict whole, byte by byte and split
    at random points: the answer never depends on TCP segmentation. Only ProtocolError and
    ClientDisconnected leave the reader, and every error status is one the core answers."""
    whole = run_reader(data, [], DEFAULT)
    assert run_reader(data, bytewise(data), DEFAULT) == whole
    assert run_reader(data, cuts, DEFAULT) == whole
    check_verdict(whole[1])


@_profile(300)
@given(streams(SMALL), cut_lists)
def test_small_limits_bound_memory_and_do_not_depend_on_the_split(data, cuts):
    """With small limits the same holds, and the memory bound (asserted in run_reader after
    every read) is Limits.max_head: a partial head never grows past it."""
    whole = run_reader(data, [], SMALL)
    assert run_reader(data, bytewise(data), SMALL) == whole
    assert run_reader(data, cuts, SMALL) == whole
    check_verdict(whole[1])


@_profile(200)
@given(st.binary(max_size=300), cut_lists)
def test_random_bytes_are_refused_or_wait(data, cuts):
    """Arbitrary bytes (garbage, TLS, other protocols; checklist row 44): an error status, a
    close, or a wait for more; never an exception, the same for any split."""
    whole = run_reader(data, [], DEFAULT)
    assert run_reader(data, cuts, DEFAULT) == whole
    check_verdict(whole[1])


@_profile(200)
@given(st.integers(0, 2 * SMALL.fields + 2), st.integers(1, 2 * SMALL.field_size), st.integers(1, 140),
       st.booleans())
def test_head_limits_answer_exactly_at_their_boundaries(nfields, field_len, target_len, split):
    """LimitRequestLine -> 414, LimitRequestFieldSize / LimitRequestFields -> 431 (RFC 6585 §5),
    exactly past the configured value and not before, whole or byte by byte."""
    line = b"GET /" + b"a" * (target_len - 1) + b" HTTP/1.1"
    fields = [b"Host: a"] + [b"X-%d: v" % i for i in range(nfields)]
    fields.append(b"X-Big: " + b"b" * max(1, field_len - 7))
    data = line + b"\r\n" + b"\r\n".join(fields) + b"\r\n\r\n"
    events, verdict = run_reader(data, bytewise(data) if split else [], SMALL)
    if len(line) > SMALL.request_line:
        assert verdict == ("error", 414)
    elif len(fields) > SMALL.fields or max(map(len, fields)) > SMALL.field_size:
        assert verdict == ("error", 431)
    else:
        assert events[0][0] == "request" and verdict == "closed"


@_profile(200)
@given(st.integers(0, 2 * SMALL.body), st.booleans(), st.integers(1, 20), st.booleans())
def test_body_limit_is_413_and_no_byte_past_it_is_delivered(size, chunked, piece, split):
    """LimitRequestBody (httpd core): a Content-Length over it is 413 before any body byte; a
    chunked body is 413 as soon as its chunk sizes pass it, and never delivers more bytes."""
    body = b"x" * size
    if chunked:
        raw = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + piece]), body[i:i + piece])
                       for i in range(0, size, piece)) + b"0\r\n\r\n"
        data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + raw
    else:
        data = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size + body
    events, verdict = run_reader(data, bytewise(data) if split else [], SMALL)
    delivered = sum(len(e[1]) for e in events if e[0] == "data")
    assert delivered <= SMALL.body
    if size > SMALL.body:
        assert verdict == ("error", 413)
        if not chunked:
            assert delivered == 0  # refused up front
    else:
        assert verdict == "closed" and delivered == size


#: the largest length a request may announce (httpd's apr_off_t is a signed 64-bit integer)
MAX_LENGTH = (1 << 63) - 1
lengths = st.one_of(st.integers(0, 40), st.integers(0, 1 << 66),
                    st.sampled_from([MAX_LENGTH, MAX_LENGTH + 1, (1 << 64) - 1, 1 << 64]))


@_profile(300)
@given(lengths, st.integers(0, 6000), st.booleans(), cut_lists)
@example(5, 22, True, [])  # 00000000000000000000005: httpd answers 200, as RFC 9112 §7.1 allows
@example(MAX_LENGTH + 1, 0, False, [])  # Content-Length 2^63: httpd answers 400
def test_lengths_are_values_whatever_their_leading_zeros(value, zeros, chunked, cuts):
    """A Content-Length (RFC 9110 §8.6, ``1*DIGIT``) or chunk-size (RFC 9112 §7.1, ``1*HEXDIG``)
    means its value, however many leading zeros it has (up to what LimitRequestFieldSize lets a
    line hold): a value up to 2^63-1 is a length, a larger one is 400 before any body byte, and
    the verdict is the same however the bytes are split."""
    body = b"x" * value if value <= 40 else b"abc"
    if chunked:
        # the rest of the message: a last-chunk, or (size 0 is the last chunk itself) the end of its trailers
        rest = b"" if value > 40 else b"\r\n" if value == 0 else b"\r\n0\r\n\r\n"
        data = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"0" * zeros + b"%x\r\n" % value + body + rest)
    else:
        data = (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"0" * zeros + b"%d\r\n\r\n" % value
                + body)
    events, verdict = run_reader(data, cuts, DEFAULT)
    assert (events, verdict) == run_reader(data, [], DEFAULT)
    if value > MAX_LENGTH:
        assert verdict == ("error", 400)
        assert [e[0] for e in events] == (["request"] if chunked else [])
        return
    assert events[0][0] == "request" and events[0][6] == (None if chunked else value)
    delivered = b"".join(e[1] for e in events if e[0] == "data")
    if value <= 40:
        assert delivered == body and events[-1][0] == "end" and verdict == "closed"
    else:
        assert delivered == body and verdict == "disconnected"  # EOF inside an enormous body


# -- framing: no desync ---------------------------------------------------------------------

#: (field line, what a strict reading makes of it): ("cl", n), ("te", [codings]), ("bad",) or None
FRAMING_FIELDS = [
    (b"Content-Length: 5", ("cl", 5)),
    (b"content-length: 5", ("cl", 5)),
    (b"Content-Length:5", ("cl", 5)),
    (b"Content-Length: 0", ("cl", 0)),
    (b"Content-Length: 35", ("cl", 35)),
    (b"Content-Length: 5, 5", ("bad",)),
    (b"Content-Length: +5", ("bad",)),
    (b"Content-Length: -1", ("bad",)),
    (b"Content-Length: 0x5", ("bad",)),
    (b"Content-Length: 1 0", ("bad",)),
    (b"Content-Length: ", ("bad",)),
    (b"Content-Length : 5", ("bad",)),
    (b"Content_Length: 5", None),
    (b"X-Content-Length: 5", None),
    (b"Transfer-Encoding: chunked", ("te", ["chunked"])),
    (b"TRANSFER-ENCODING: chunked", ("te", ["chunked"])),
    (b"Transfer-Encoding: Chunked", ("te", ["chunked"])),
    (b"Transfer-Encoding:chunked", ("te", ["chunked"])),
    (b"Transfer-Encoding: gzip, chunked", ("te", ["gzip", "chunked"])),
    (b"Transfer-Encoding: chunked, gzip", ("te", ["chunked", "gzip"])),
    (b"Transfer-Encoding: xchunked", ("te", ["xchunked"])),
    (b"Transfer-Encoding: identity", ("te", ["identity"])),
    (b"Transfer-Encoding: chunked\x0b", ("bad",)),
    (b"Transfer-Encoding: \x00chunked", ("bad",)),
    (b"Transfer-Encoding : chunked", ("bad",)),
    (b"Transfer_Encoding: chunked", None),
]
#: body bytes that read differently under each framing, with a request smuggled inside
SMUGGLE_BODY = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


def strict_framing(fields: list) -> object:
    """RFC 9112 §6.3 read strictly: "none", ("length", n), "chunked", or "refuse" when ambiguous."""
    meanings = [m for _, m in fields if m is not None]
    if any(m[0] == "bad" for m in meanings):
        return "refuse"
    cls = [m[1] for m in meanings if m[0] == "cl"]
    tes = [c for m in meanings if m[0] == "te" for c in m[1]]
    if tes:
        # §6.1: CL with TE is refused here; chunked must be final and once; other codings 501
        return "chunked" if tes == ["chunked"] and not cls else "refuse"
    if len(cls) > 1:
        return "refuse"  # §6.3: several Content-Length fields (even equal ones: llhttp refuses)
    return ("length", cls[0]) if cls else "none"


@_profile(400)
@given(st.lists(st.sampled_from(FRAMING_FIELDS), max_size=3), st.sampled_from([b"GET", b"POST"]),
       st.booleans(), cut_lists)
def test_framing_is_unambiguous_and_smuggled_requests_are_never_seen(fields, method, split, cuts):
    """CL.TE, TE.CL, CL.CL and obfuscated TE (docs/conformance.md rows 25-31, 42): the reader either
    refuses, or frames the message exactly as a strict reading of RFC 9112 §6.3 does, so the
    request smuggled in the body is a request only where that reading puts a boundary."""
    head = method + b" / HTTP/1.1\r\nHost: a\r\n" + b"".join(f + b"\r\n" for f, _ in fields) + b"\r\n"
    data = head + SMUGGLE_BODY
    events, verdict = run_reader(data, bytewise(data) if split else cuts, DEFAULT)
    expected = strict_framing(fields)
    smuggled = [e for e in events if e[0] == "request" and e[2] == "/smuggled"]
    if expected == "refuse":
        assert isinstance(verdict, tuple) and verdict[1] in (400, 501), (fields, verdict)
        assert not events and not smuggled
        return
    assert events and events[0][0] == "request", (fields, verdict)
    req = events[0]
    if expected == "chunked":
        assert req[7] is True and req[6] is None
        assert smuggled  # the body ends at "0\r\n\r\n": what follows is the next request
    elif expected == "none":
        assert req[7] is False and req[6] is None
        # no body: "0" is the next request-line, refused; nothing after it is read
        assert not smuggled and verdict[1] == 400
    else:
        n = expected[1]
        assert req[6] == n and req[7] is False
        body = b"".join(e[1] for e in events if e[0] == "data")
        assert body == SMUGGLE_BODY[:n]
        # a request-line is looked for exactly where the body ends, nowhere else
        assert bool(smuggled) == (n == 5)


# -- a whole connection through serve_connection ---------------------------------------------


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of loopback TCP sockets (serve_connection sets TCP options)."""
    with socket.create_server(("127.0.0.1", 0)) as lst:
        cli = socket.create_connection(lst.getsockname())
        srv, _ = lst.accept()
    return srv, cli


def serve_bytes(data: bytes, limits: Limits) -> tuple[list, list]:
    """Serve ``data`` (then EOF) on one loopback connection with ``serve_connection`` and
    :func:`suites.fuzz.digest_app`; return (what is wrong with the answers, errors logged)."""
    srv, cli = tcp_pair()
    problems: list = []
    ctx = ServeContext(
        app=digest_app, policy=KeepAlivePolicy(True, 2.0, 100), limits=limits, timeout=2.0,
        server_name="a", server_port=80, stopping=lambda: False, set_status=lambda s: None,
        record=lambda line, client, n: None,
        log=lambda level, msg: problems.append(msg) if level == "error" else None,
    )

    def serve() -> None:
        try:
            serve_connection(srv, ("127.0.0.1", 1), ctx)
        except BaseException as exc:  # the property: nothing escapes
            problems.append(f"escaped: {exc!r}")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    expected = expected_answers(data, limits)
    try:
        cli.sendall(data)
        cli.shutdown(socket.SHUT_WR)
        responses, clean = read_answers(cli, expected, 10)
    finally:
        t.join(10)
        cli.close()
    assert not t.is_alive(), "serve_connection did not return"
    wrong = [w for w in [check_answers(responses, expected)] if w]
    if not clean:
        wrong.append("no EOF after the answers")
    return wrong, problems


@_profile(150)
@given(streams())
@example(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n")
@example(b"HEAD \x00 HTTP/1.1\r\nHost: a\r\n\r\n")
@example(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
def test_a_connection_answers_what_the_reader_accepted_in_order_then_closes(data):
    """serve_connection over a loopback connection: one response per request the reader
    accepted (in order, RFC 9112 §9.3.2; 1xx skipped), then the reader's error status with
    Connection: close (RFC 9112 §2.2), then EOF; a request cut off by EOF gets no answer; the
    server stops early only after announcing it. Nothing escapes, and no application error is
    logged (the app always works: every failure here would be the server's)."""
    wrong, problems = serve_bytes(data, DEFAULT)
    assert not problems, problems
    assert not wrong, (wrong, data)


def test_a_request_after_a_closing_one_is_still_a_request():
    """The reader is not the persistence policy: after an HTTP/1.0 request without keep-alive
    (or one with Connection: close) the next pipelined bytes are still parsed as a request
    (llhttp would refuse them as "data after Connection: close")."""
    for first in (b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"):
        events, verdict = run_reader(first + b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n", [], DEFAULT)
        assert [e[2] for e in events if e[0] == "request"] == ["/", "/2"] and verdict == "closed"


def test_profile_is_reproducible_by_default():
    """CI runs are derandomized (the same examples every run) unless a campaign is asked for."""
    if _CAMPAIGN:
        pytest.skip("MPM_FUZZ_EXAMPLES set: a randomized campaign")
    assert _profile(10).derandomize and _profile(10).max_examples == 10

