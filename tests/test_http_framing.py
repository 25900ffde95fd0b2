"""Unit tests for servers.http.framing on its own: the framing decisions of a response
(RFC 9110 §6.4.1, §8.6; RFC 9112 §6.3, §7.1), table-driven, without a WSGI application.

Each decision is also checked on the wire: the head and body the framing produces are
parsed back with h11 in the client role (RFC 9112 §6).
"""

from __future__ import annotations

import h11
import pytest

from servers.http.framing import TRANSFER_ENCODING_CHUNKED, ResponseFraming, body_forbidden
from servers.http.response import LAST_CHUNK, chunk

from .h11util import parse_response

CL5 = b"Content-Length: 5\r\n"
TYPE = b"Content-Type: text/plain\r\n"
V11, V10 = (1, 1), (1, 0)


def framed(method, version, status, declared, total, fields, first=b""):
    """Frame a head; return (framing, added field lines, framed first piece)."""
    f = ResponseFraming(declared)
    parts: list[bytes] = []
    body = f.frame_head(method, version, status, total, fields, parts, first)
    return f, parts, body


# -- which responses carry content (RFC 9110 §6.4.1) -----------------------------------------------------

NO_BODY_CASES = [
    # status, method, forbidden, why
    (200, "GET", False, "a 200 to GET has content"),
    (200, "HEAD", True, "RFC 9110 §9.3.2: never content in a response to HEAD"),
    (404, "HEAD", True, "RFC 9110 §9.3.2, whatever the status"),
    (100, "GET", True, "RFC 9110 §15.2: 1xx is interim, no content"),
    (101, "GET", True, "RFC 9110 §15.2"),
    (103, "POST", True, "RFC 9110 §15.2"),
    (204, "GET", True, "RFC 9110 §15.3.5"),
    (304, "GET", True, "RFC 9110 §15.4.5"),
    (205, "GET", False, "RFC 9110 §15.3.6 205 is not in §6.4.1's list"),
    (500, "POST", False, "an error to POST has content"),
]


@pytest.mark.parametrize("status,method,forbidden,why", NO_BODY_CASES)
def test_body_forbidden_and_frame_head_agree(status, method, forbidden, why):
    assert body_forbidden(status, method) is forbidden, why
    f, _, body = framed(method, V11, status, None, None, [], b"data")
    assert f.no_body is forbidden, why
    assert (body == b"") is forbidden
    assert f.frame(b"more") == (b"" if forbidden else chunk(b"more"))
    if forbidden:
        assert f.sent_body == 0 and not f.chunked and f.end() == b""


# -- the framing of the head (RFC 9110 §8.6, RFC 9112 §6.3, §7.1) --------------------------------------------

HEAD_CASES = [
    # id, method, version, status, declared, total, fields in, fields out, length, chunked, close-delimited
    ("total-becomes-cl", "GET", V11, 200, None, 5, [TYPE], [TYPE, CL5], 5, False, False),
    ("declared-cl-kept", "GET", V11, 200, 5, 5, [CL5, TYPE], [CL5, TYPE], 5, False, False),
    ("declared-cl-wins-over-total", "GET", V11, 200, 5, 3, [CL5], [CL5], 5, False, False),
    ("zero-total-cl-0", "GET", V11, 200, None, 0, [], [b"Content-Length: 0\r\n"], 0, False, False),
    ("unknown-11-chunked", "GET", V11, 200, None, None, [TYPE], [TYPE, TRANSFER_ENCODING_CHUNKED],
     None, True, False),
    ("unknown-10-close-delimited", "GET", V10, 200, None, None, [TYPE], [TYPE], None, False, True),
    ("known-10-cl", "GET", V10, 200, None, 5, [], [CL5], 5, False, False),
    ("declared-unknown-total-11", "GET", V11, 200, 5, None, [CL5], [CL5], 5, False, False),
    ("204-cl-removed", "GET", V11, 204, 5, None, [TYPE, CL5], [TYPE], 0, False, False),
    ("204-cl-any-case-removed", "GET", V11, 204, 5, 0, [b"content-length: 5\r\n"], [], 0, False, False),
    ("204-no-cl-added", "GET", V11, 204, None, 4, [], [], 0, False, False),
    ("1xx-cl-removed", "GET", V11, 101, 5, None, [CL5], [], 0, False, False),
    ("304-no-cl-invented", "GET", V11, 304, None, 0, [], [], None, False, False),
    ("304-declared-cl-kept", "GET", V11, 304, 5, None, [CL5], [CL5], 5, False, False),
    ("304-not-chunked", "GET", V11, 304, None, None, [], [], None, False, False),
    ("head-no-cl-0-invented", "HEAD", V11, 200, None, 0, [], [], None, False, False),
    ("head-known-total-cl", "HEAD", V11, 200, None, 5, [], [CL5], 5, False, False),
    ("head-declared-cl-kept", "HEAD", V11, 200, 5, 0, [CL5], [CL5], 5, False, False),
    ("head-unknown-not-chunked", "HEAD", V11, 200, None, None, [], [], None, False, False),
    ("head-unknown-10-not-close-delimited", "HEAD", V10, 200, None, None, [], [], None, False, False),
]


@pytest.mark.parametrize("method,version,status,declared,total,fields,out,length,chunked,close_delimited",
                         [c[1:] for c in HEAD_CASES], ids=[c[0] for c in HEAD_CASES])
def test_frame_head(method, version, status, declared, total, fields, out, length, chunked, close_delimited):
    given = list(fields)
    whole = b"x" * total if total is not None else b""  # with a total, the first piece is the whole body
    f, parts, _ = framed(method, version, status, declared, total, fields, whole)
    assert parts == out
    assert fields == given  # the application's field lines are not changed
    assert (f.length, f.chunked, f.close_delimited) == (length, chunked, close_delimited)
    # a whole body shorter than the declared length is the only framing break here (RFC 9112 §6.3)
    assert f.keep_alive is not (f.length is not None and not f.no_body and total is not None and total < f.length)


@pytest.mark.parametrize("method,version,status,declared,total,fields,out,length,chunked,close_delimited",
                         [c[1:] for c in HEAD_CASES], ids=[c[0] for c in HEAD_CASES])
def test_frame_head_parses_as_valid_http(method, version, status, declared, total, fields, out, length,
                                         chunked, close_delimited):
    """The whole framed message, body included, is what h11 reads as one response."""
    content = b"hello"[: total if total is not None else 5]
    f = ResponseFraming(declared)
    parts = [b"HTTP/1.1 %d X\r\n" % status]
    first = f.frame_head(method, version, status, len(content) if total is not None else None,
                         fields, parts, content)
    raw = b"".join(parts) + b"\r\n" + first + f.end()
    if status < 200:
        return  # an interim response: h11 reads it as such, no body to check
    if not f.keep_alive:
        # a body short of its Content-Length: the client would wait for the rest, so the
        # connection is not reused (and h11 sees no end of message)
        assert not f.no_body and len(content) < f.length and f.end() == b""
        return
    resp, body, conn = parse_response(raw, method, eof=close_delimited)
    assert resp.status_code == status
    assert body == (b"" if f.no_body else content)
    assert conn.trailing_data == (b"", close_delimited)


# -- each body piece and the end (RFC 9112 §6.3, §7.1) ----------------------------------------------------

PIECE_CASES = [
    # id, declared, pieces, wire (each piece, then the end), content octets framed, keep_alive after end
    ("exact", 5, [b"he", b"llo"], [b"he", b"llo", b""], 5, True),
    ("truncated-at-length", 5, [b"hello world"], [b"hello", b""], 5, False),
    ("truncated-then-nothing", 3, [b"he", b"llo", b"!"], [b"he", b"l", b"", b""], 3, False),
    ("short-body", 5, [b"he"], [b"he", b""], 2, False),
    ("empty-short-body", 5, [], [b""], 0, False),
    ("chunked", None, [b"he", b"llo"], [chunk(b"he"), chunk(b"llo"), LAST_CHUNK], 5, True),
    ("chunked-empty", None, [], [LAST_CHUNK], 0, True),
    ("chunked-empty-piece-is-no-chunk", None, [b"a", b"", b"b"], [chunk(b"a"), b"", chunk(b"b"), LAST_CHUNK], 2,
     True),
]


@pytest.mark.parametrize("declared,pieces,wire,sent,keep", [c[1:] for c in PIECE_CASES],
                         ids=[c[0] for c in PIECE_CASES])
def test_pieces_and_end(declared, pieces, wire, sent, keep):
    f, _, first = framed("GET", V11, 200, declared, None, [])
    assert first == b""
    assert [f.frame(p) for p in pieces] + [f.end()] == wire
    assert f.sent_body == sent
    assert f.keep_alive is keep


FIRST_CASES = [
    # id, declared, total, first, framed first, sent_body, keep_alive (before end)
    ("whole-body", None, 5, b"hello", b"hello", 5, True),
    ("first-of-declared", 5, None, b"he", b"he", 2, True),
    ("first-truncated", 3, None, b"hello", b"hel", 3, False),
    ("list-truncated", 3, 5, b"hello", b"hel", 3, False),
    ("list-short-of-declared", 9, 5, b"hello", b"hello", 5, False),  # the whole body, short: not reusable
    ("first-chunked", None, None, b"hello", chunk(b"hello"), 5, True),
]


@pytest.mark.parametrize("declared,total,first,out,sent,keep", [c[1:] for c in FIRST_CASES],
                         ids=[c[0] for c in FIRST_CASES])
def test_first_piece_framed_with_the_head(declared, total, first, out, sent, keep):
    f, _, body = framed("GET", V11, 200, declared, total, [], first)
    assert body == out
    assert f.sent_body == sent
    assert f.keep_alive is keep


def test_short_body_ends_not_reusable_and_client_would_wait():
    # RFC 9112 §6.3: a Content-Length body that ends early leaves the client waiting: close
    f, parts, body = framed("GET", V11, 200, 10, None, [b"Content-Length: 10\r\n"], b"hello")
    assert f.end() == b"" and not f.keep_alive
    raw = b"HTTP/1.1 200 OK\r\n" + b"".join(parts) + b"\r\n" + body
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    conn.receive_data(raw)
    events = []
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            break
        events.append(ev)
    assert isinstance(events[0], h11.Response) and not any(isinstance(e, h11.EndOfMessage) for e in events)


def test_chunked_only_for_http11():
    # RFC 9112 §7.1 / §6.1: a server MUST NOT send chunked to an HTTP/1.0 recipient
    for version in ((1, 0), (0, 9)):
        f, parts, _ = framed("GET", version, 200, None, None, [])
        assert TRANSFER_ENCODING_CHUNKED not in parts and not f.chunked and f.close_delimited
        assert f.frame(b"abc") == b"abc"
