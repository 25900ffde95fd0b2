"""The built-in apps (servers.apps) against what a client controls (issue 14, defect 9).

Numbers in a path or query are ASCII digits, checked before conversion: ``/bytes/%B2``
is ``²``, which ``str.isdigit`` accepts and ``int`` refuses, and it answered 500 with a
13-line traceback per request. And no response is built whole from a size the client
chose: ``/bytes/N`` made an N-byte string, so slow readers of ``/bytes/10000000`` held
the body in memory each (300 of them: 9.4 GB for prefork, against httpd's 0.6 GB).

Unit tests call the WSGI app directly; live tests run on the three MPMs.
"""

from __future__ import annotations

import io
import socket

import pytest

from servers.apps.default import BYTES_PIECE, MAX_BYTES, MAX_ECHO_BODY, MAX_SLEEP_MS, app, ascii_int

from suites.wire import request, wait_until
from .serverutil import settled_pss

MPMS = ["prefork", "worker", "event"]


class _Unreadable(io.RawIOBase):
    """A ``wsgi.input`` that must not be read (the answer is decided from the head)."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def call(path: str, method: str = "GET", *, query: str = "", body: bytes = b"",
         content_length: str | None = None, stream=None):
    """Call the default app; return (status, headers dict, the iterable it returned)."""
    seen: dict = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": stream or io.BytesIO(body)}
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    result = app(environ, start_response)
    return seen["status"], seen["headers"], result


# -- numbers the client writes ------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("7", 7), ("007", 7), ("0" * 5000 + "7", 7), (str(MAX_BYTES), MAX_BYTES),
])
def test_ascii_int_accepts_ascii_digits(text, value):
    assert ascii_int(text, MAX_BYTES) == value


@pytest.mark.parametrize("text", [
    "\xb2",  # '²': isdigit() is true, int() raises
    "\u0661",  # ARABIC-INDIC DIGIT ONE: int() makes it 1
    "\uff15",  # FULLWIDTH DIGIT FIVE
    "", " 5", "5 ", "+5", "-5", "5_0", "0x5", "5.0",
    str(MAX_BYTES + 1),
    "1" * 5000,  # int() raises past 4300 digits
])
def test_ascii_int_refuses_everything_else(text):
    assert ascii_int(text, MAX_BYTES) is None


@pytest.mark.parametrize("n_text", ["\xb2", "\u0661", "1" * 5000, "5/x", "", str(MAX_BYTES + 1)])
def test_bytes_with_a_bad_n_is_400_without_raising(n_text):
    status, headers, body = call("/bytes/" + n_text)
    assert status.startswith("400 ")
    assert int(headers["Content-Length"]) == len(b"".join(body))


@pytest.mark.parametrize("query", ["ms=\xb2", "ms=\u0661", "ms=" + "1" * 5000, "ms=-1", f"ms={MAX_SLEEP_MS + 1}"])
def test_sleep_with_a_bad_ms_is_400_without_sleeping(query):
    status, _, _ = call("/sleep", query=query)
    assert status.startswith("400 ")


# -- bodies sized by the client -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 13, BYTES_PIECE - 1, BYTES_PIECE, BYTES_PIECE + 1, 10_000_000, MAX_BYTES])
def test_bytes_is_streamed_in_bounded_pieces(n):
    status, headers, result = call("/bytes/%d" % n)
    assert status == "200 OK" and headers["Content-Length"] == str(n)
    total = 0
    distinct = set()
    for piece in result:
        assert type(piece) is bytes and len(piece) <= BYTES_PIECE
        assert piece.count(b"x") == len(piece)
        total += len(piece)
        distinct.add(id(piece))
    assert total == n
    # the full pieces are one shared block: memory does not grow with N
    assert len(distinct) <= 2


def test_bytes_large_body_is_an_iterator_not_a_list():
    _, _, result = call("/bytes/10000000")
    assert not isinstance(result, (list, tuple, bytes))
    first = next(iter(result))
    assert len(first) == BYTES_PIECE
    result.close()  # PEP 3333: the server closes it, also when the client went away


def test_echo_mirrors_a_body_up_to_its_bound():
    status, _, result = call("/echo", "POST", body=b"hello", content_length="5")
    assert status == "200 OK" and b'"body": "hello"' in b"".join(result)
    status, _, result = call("/echo", "POST", body=b"x" * MAX_ECHO_BODY, content_length=str(MAX_ECHO_BODY))
    assert status == "200 OK"


def test_echo_refuses_a_larger_body_with_413_and_close():
    status, headers, _ = call("/echo", "POST", body=b"x" * (MAX_ECHO_BODY + 1))  # chunked: no Content-Length
    assert status.startswith("413 ") and headers["Connection"] == "close"


def test_echo_refuses_an_announced_larger_body_before_reading_it():
    status, headers, _ = call("/echo", "POST", content_length=str(MAX_ECHO_BODY + 1), stream=_Unreadable())
    assert status.startswith("413 ") and headers["Connection"] == "close"


# -- live, on each MPM ----------------------------------------------------------------------------


@pytest.mark.parametrize("mpm", MPMS)
def test_live_bad_bytes_n_is_4xx_and_leaves_no_traceback(launch, mpm):
    h = launch(mpm)
    for target in (b"/bytes/%B2", b"/bytes/%D9%A1", b"/bytes/" + b"1" * 5000):
        r = request(h.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert 400 <= r.status < 500, (target[:20], r.status)
        assert int(r.header("Content-Length")) == len(r.body)
    assert request(h.port, b"GET /bytes/1000000 HTTP/1.1\r\nHost: a\r\n\r\n").body == b"x" * 1_000_000
    log = h.log_text()
    assert "Traceback" not in log and "application error" not in log, log[-2000:]


SLOW_READERS = 3
SLOW_N = 32 * 1024 * 1024


@pytest.mark.parametrize("mpm", MPMS)
def test_live_slow_readers_of_a_large_bytes_body_hold_no_body_in_memory(launch, mpm):
    """Three clients ask for /bytes/32 MiB and read nothing: the server (a worker blocked in
    its write, or event's listener in write completion) holds at most a piece or two per
    connection, not the body (which was 32-64 MiB per reader)."""
    h = launch(mpm)
    for _ in range(3):  # warm the allocator and every spare process on the path
        assert len(request(h.port, b"GET /bytes/1000000 HTTP/1.1\r\nHost: a\r\n\r\n").body) == 1_000_000
    before = settled_pss(h, 15)
    readers = []
    try:
        for _ in range(SLOW_READERS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect(("127.0.0.1", h.port))
            s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % SLOW_N)
            readers.append(s)
        for s in readers:  # each response has started: the server is stuck in its write
            wait_until(lambda s=s: s.recv(16, socket.MSG_PEEK).startswith(b"HTTP/1.1 200"), 10,
                       what="the response head")
        grown = settled_pss(h, 15) - before
    finally:
        for s in readers:
            s.close()
    # one reader's body alone is 32 MiB; the bound leaves room for buffers and thread stacks
    assert grown < 16 * 1024 * 1024, f"{mpm}: PSS grew {grown / 2**20:.1f} MiB for {SLOW_READERS} slow readers"
    assert request(h.port, b"GET /bytes/5 HTTP/1.1\r\nHost: a\r\n\r\n").body == b"xxxxx"
