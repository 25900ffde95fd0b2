"""``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling") and the event
MPM's write completion of such bodies.

Before it, a body in many pieces (the built-in ``/bytes/N`` among them) held an event worker
thread until its last piece was written: each write waited for the previous tail. Now a
FileWrapper with Content-Length whose file-like reads at once is finished by event's
listener, block by block as the client reads, with its close() called exactly once; every
other MPM (and event for any other body) iterates it in the worker.

Unit tests drive run_app and event's writer directly; live tests run servers on 127.0.0.1.
Waits poll conditions with deadlines; nothing asserts wall-clock durations.
"""

from __future__ import annotations

import io
import os
import socket
import time

import pytest

from servers.apps.default import BYTES_PIECE, RepeatedBlock, app as default_app
from servers.http.parser import RequestReader
from servers.http.persistence import KeepAlivePolicy
from servers.mpm.event import SourceError, _Writer
from servers.wsgi import EMPTY_INPUT, FileWrapper, WSGIResponse, build_environ, environ_template, run_app

from suites.wire import Conn, request, wait_until
from .h11util import parse_response
from .serverutil import GET, settled_pss, status_or_none
from .wsgi_filewrap import pattern

APP = "tests.wsgi_filewrap:app"
MPMS = ["prefork", "worker", "event"]
#: one event child with a single worker thread (as test_event's write-completion test)
ONE_THREAD = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 1, "MaxRequestWorkers": 1,
              "MinSpareThreads": 1, "MaxSpareThreads": 4, "AsyncRequestWorkerFactor": 4, "KeepAliveTimeout": 30}
BIG = 16 * 1024 * 1024  # more than the loopback socket buffers hold


# -- FileWrapper itself -----------------------------------------------------------------------


class Source(io.RawIOBase):
    """A file-like over ``data`` that counts its reads and closes."""

    def __init__(self, data: bytes, nonblocking: bool | None = None) -> None:
        self.data, self.pos, self.reads, self.closes = data, 0, 0, 0
        if nonblocking is not None:
            self.nonblocking_source = nonblocking

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        end = len(self.data) if size is None or size < 0 else self.pos + size
        out, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return out

    def close(self) -> None:
        self.closes += 1
        super().close()


def test_environ_offers_the_file_wrapper():
    env = environ_template(server_name="a", server_port=80)
    assert env["wsgi.file_wrapper"] is FileWrapper


def test_file_wrapper_iterates_blocks_and_close_closes_the_file_like():
    src = Source(b"abcdefghij")
    w = FileWrapper(src, 4)
    assert list(w) == [b"abcd", b"efgh", b"ij"]
    w.close()
    assert src.closes == 1


def test_file_wrapper_default_block_and_a_file_like_without_close():
    class NoClose:
        def __init__(self):
            self.left = 3 * 65536 + 1

        def read(self, n):
            k = min(n, self.left)
            self.left -= k
            return b"y" * k

    w = FileWrapper(NoClose())
    assert [len(b) for b in w] == [65536, 65536, 65536, 1]
    w.close()  # nothing to close: no error (PEP 3333 asks close() only when the file-like has one)


def test_read_block_never_asks_for_more_than_the_limit():
    src = Source(b"x" * 100)
    w = FileWrapper(src, 64)
    assert w.read_block(10) == b"x" * 10 and w.read_block(1000) == b"x" * 64


def test_reads_at_once_only_for_files_bytesio_and_declared_sources(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    with open(path, "rb") as f:
        assert FileWrapper(f).reads_at_once()  # a regular file
    assert not FileWrapper(f).reads_at_once()  # closed: fileno() raises
    assert FileWrapper(io.BytesIO(b"x")).reads_at_once()
    assert FileWrapper(Source(b"x", nonblocking=True)).reads_at_once()
    assert not FileWrapper(Source(b"x", nonblocking=False)).reads_at_once()
    assert not FileWrapper(Source(b"x")).reads_at_once()  # no promise: iterated in the worker
    r, w = os.pipe()
    with os.fdopen(r, "rb") as pr, os.fdopen(w, "wb"):
        assert not FileWrapper(pr).reads_at_once()  # a pipe may block
    a, b = socket.socketpair()
    with a, b, a.makefile("rb") as sf:
        assert not FileWrapper(sf).reads_at_once()  # so may a socket


# -- run_app with a FileWrapper -----------------------------------------------------------------


class Served:
    """One request through run_app; ``defer`` as the event writer would get it (or None)."""

    def __init__(self, raw: bytes, result, *, headers=None, status="200 OK", defer=None):
        reader = RequestReader()
        reader.feed(raw)
        self.req = reader.next_event()
        self.sent: list[bytes] = []
        self.deferred: list = []
        if defer is True:
            defer = lambda src, owed: self.deferred.append((src, owed))  # noqa: E731
        self.response = WSGIResponse(self.req, self.sent.append, KeepAlivePolicy(), keepalives=0,
                                     stopping=lambda: False, body=EMPTY_INPUT, defer=defer)

        def app(environ, start_response):
            start_response(status, headers if headers is not None else [])
            return result

        env = build_environ(self.req, EMPTY_INPUT, environ_template(server_name="a", server_port=80), "1.2.3.4", 1)
        run_app(app, env, self.response)
        self.raw = b"".join(self.sent)

    def parse(self):
        """h11 as the client: (Response, body)."""
        resp, body, _ = parse_response(self.raw, self.req.method)
        return resp, body


GET_11 = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
HEAD_11 = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
DATA = pattern(300_000)


@pytest.mark.parametrize("declared", [True, False])
def test_without_a_deferring_writer_the_wrapper_is_iterated(declared):
    """prefork and worker: with Content-Length the bytes follow the head; without, chunked."""
    src = Source(DATA, nonblocking=True)
    headers = [("Content-Length", str(len(DATA)))] if declared else []
    s = Served(GET_11, FileWrapper(src, 65536), headers=headers)
    resp, body = s.parse()
    assert resp.status_code == 200 and body == DATA and src.closes == 1
    assert (b"transfer-encoding: chunked" in s.raw.lower()) is not declared
    assert s.response.keep_alive


@pytest.mark.parametrize("status,raw", [("200 OK", HEAD_11), ("304 Not Modified", GET_11),
                                        ("204 No Content", GET_11)])
def test_a_response_without_body_leaves_the_file_unread(status, raw):
    src = Source(DATA)
    s = Served(raw, FileWrapper(src), headers=[("Content-Length", str(len(DATA)))], status=status, defer=True)
    head, _, rest = s.raw.partition(b"\r\n\r\n")
    assert rest == b"" and src.reads == 0 and src.closes == 1 and not s.deferred
    if raw == HEAD_11:
        assert b"Content-Length: %d" % len(DATA) in head  # the GET's length (RFC 9110 §9.3.2)


def test_a_deferring_writer_gets_the_rest_and_the_close():
    """event: the head and the first block are sent; the rest and close() go to ``defer``."""
    src = Source(DATA, nonblocking=True)
    w = FileWrapper(src, 65536)
    s = Served(GET_11, w, headers=[("Content-Length", str(len(DATA)))], defer=True)
    head, _, first = s.raw.partition(b"\r\n\r\n")
    assert first == DATA[:65536]
    assert s.deferred == [(w, len(DATA) - 65536)] and s.response.deferred
    assert src.closes == 0  # the writer's now
    assert s.response.bytes_sent == len(head) + 4 + len(DATA)  # the access log counts the whole body


@pytest.mark.parametrize("case", ["no length", "opaque source", "one block"])
def test_what_is_not_deferred(case):
    src = Source(DATA[:1000] if case == "one block" else DATA, nonblocking=case != "opaque source")
    length = len(src.data)
    headers = [] if case == "no length" else [("Content-Length", str(length))]
    s = Served(GET_11, FileWrapper(src, 65536), headers=headers, defer=True)
    assert not s.deferred and src.closes == 1
    assert s.parse()[1] == src.data


def test_a_source_shorter_than_its_length():
    """An empty one ends in the worker with a close; a short first block may be a short read
    (fewer bytes than asked), so the rest goes to the writer, which finds the end (below)."""
    src = Source(b"", nonblocking=True)
    s = Served(GET_11, FileWrapper(src), headers=[("Content-Length", "10")], defer=True)
    assert s.raw.endswith(b"\r\n\r\n") and not s.deferred and src.closes == 1
    assert not s.response.keep_alive
    src = Source(b"abc", nonblocking=True)
    s = Served(GET_11, FileWrapper(src), headers=[("Content-Length", "10")], defer=True)
    assert s.raw.endswith(b"\r\n\r\nabc") and s.deferred[0][1] == 7 and src.closes == 0


def test_a_first_block_that_raises_is_the_applications_error_before_the_head():
    class Broken(Source):
        def read(self, size=-1):
            raise RuntimeError("disk on fire")

    src = Broken(b"", nonblocking=True)
    with pytest.raises(RuntimeError):
        Served(GET_11, FileWrapper(src), headers=[("Content-Length", "10")], defer=True)
    assert src.closes == 1  # run_app closed it; nothing was deferred


# -- event's writer: the listener's side --------------------------------------------------------


def _drain(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    out = bytearray()
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return bytes(out)
        out += data


def test_writer_pump_sends_the_tail_then_the_source_up_to_what_is_owed():
    a, b = socket.socketpair()
    with a, b:
        w = _Writer(a)
        w.pending = memoryview(b"HEAD")
        src = Source(DATA + b"extra bytes beyond the Content-Length", nonblocking=True)
        w.defer(FileWrapper(src, 65536), len(DATA))
        got = bytearray()
        for _ in range(1000):  # bounded: the socketpair buffer takes a few blocks per round
            w.pump(1 << 20)
            b.setblocking(False)
            try:
                got += b.recv(1 << 22)
            except BlockingIOError:
                pass
            if not w.pending and w.owed == 0:
                break
        a.shutdown(socket.SHUT_WR)
        got += _drain(b)
        assert bytes(got) == b"HEAD" + DATA and not w.short


def test_writer_pump_marks_a_short_source_and_wraps_a_failing_read():
    a, b = socket.socketpair()
    with a, b:
        w = _Writer(a)
        w.defer(FileWrapper(Source(b"abc", nonblocking=True)), 10)
        w.pump(1 << 20)
        assert w.short and w.owed == 7 and not w.pending

        class Broken(Source):
            def read(self, size=-1):
                raise OSError("EIO from the disk, not the client's socket")

        w = _Writer(a)
        w.defer(FileWrapper(Broken(b"")), 10)
        with pytest.raises(SourceError):
            w.pump(1 << 20)


# -- the built-in /bytes/N ------------------------------------------------------------------------


def _call_bytes(n: int, wrapper=FileWrapper):
    seen = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/bytes/%d" % n, "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO()}
    if wrapper is not None:
        environ["wsgi.file_wrapper"] = wrapper
    result = default_app(environ, lambda status, headers, exc_info=None: seen.update(headers=dict(headers)))
    return seen["headers"], result


@pytest.mark.parametrize("n", [BYTES_PIECE + 1, 10_000_000])
def test_bytes_uses_the_file_wrapper_over_the_shared_block(n):
    headers, result = _call_bytes(n)
    assert isinstance(result, FileWrapper) and headers["Content-Length"] == str(n)
    assert isinstance(result.filelike, RepeatedBlock) and result.reads_at_once()
    total, ids = 0, set()
    for piece in result:
        assert piece.count(b"x") == len(piece) <= BYTES_PIECE
        total += len(piece)
        ids.add(id(piece))
    assert total == n and len(ids) <= 2  # one shared block (and the last slice): memory bounded
    result.close()


def test_bytes_without_a_file_wrapper_streams_pieces():
    _, result = _call_bytes(10_000_000, wrapper=None)
    assert not isinstance(result, (list, FileWrapper))
    assert sum(len(p) for p in result) == 10_000_000


def test_repeated_block_reads_at_most_a_piece():
    r = RepeatedBlock(BYTES_PIECE * 2 + 5)
    assert r.nonblocking_source is True
    assert len(r.read(-1)) == BYTES_PIECE and len(r.read(10)) == 10
    assert len(r.read(BYTES_PIECE)) == BYTES_PIECE - 5 and r.read(100) == b""
    r = RepeatedBlock(10)
    r.close()
    assert r.read(100) == b""


# -- live: event's listener finishes the body ---------------------------------------------------


def _writing(h, n: int = 1):
    return wait_until(lambda: (lambda s: s if s and s.conns_async_writing >= n else None)(status_or_none(h)),
                      15, what=f"{n} connection(s) in write completion")


def _closes(log) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _rest_until_eof(c: Conn, timeout: float) -> bytes:
    """Everything the server sends until it closes (TimeoutError if it does not)."""
    deadline = time.monotonic() + timeout
    while c.recv_more(deadline):
        pass
    data, c.buf = c.buf, b""
    return data


def _slow_reader(port: int, target: bytes, rcvbuf: int = 65536) -> Conn:
    c = Conn(port, timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.send(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    return c


def test_event_slow_reader_of_bytes_holds_no_worker(launch):
    """(a) One worker thread; a client asks /bytes/16MiB and reads nothing: the listener holds
    it in write completion, another client is answered, then the reader gets every byte."""
    h = launch("event", ONE_THREAD)
    with _slow_reader(h.port, b"/bytes/%d" % BIG) as a:
        st = _writing(h)
        assert "K" not in st.scoreboard
        assert request(h.port, GET, timeout=5).status == 200  # the only worker is free
        r = a.read_response(timeout=60)
        assert r.status == 200 and len(r.body) == BIG and r.body.count(b"x") == BIG
        a.send(GET)  # still good for keep-alive
        assert a.read_response().body == b"Hello, World!"


@pytest.mark.parametrize("src", ["pattern", "bytesio", "regular"])
def test_event_slow_reader_gets_every_byte_in_order(launch, tmp_path, src):
    log = tmp_path / "closes"
    h = launch("event", ONE_THREAD, app=APP, env={"FILEWRAP_LOG": str(log)})
    with _slow_reader(h.port, b"/file/%d?src=%s&tag=done" % (BIG, src.encode())) as a:
        _writing(h)
        assert request(h.port, GET, timeout=5).status == 200
        r = a.read_response(timeout=60)
        assert r.status == 200 and r.body == pattern(BIG)
    wait_until(lambda: _closes(log) == ["done"], 10, what="close() once")


def test_event_short_source_gets_the_connection_closed_after_what_it_had(launch, tmp_path):
    """(b) Content-Length 4 MiB, a source of 1 MiB: the client gets the 1 MiB, then EOF."""
    log = tmp_path / "closes"
    h = launch("event", ONE_THREAD, app=APP, env={"FILEWRAP_LOG": str(log)})
    have = 1 << 20
    with _slow_reader(h.port, b"/file/%d?have=%d&tag=short" % (4 * have, have)) as c:
        head = c.read_response(head_only=True, timeout=20)
        assert head.status == 200 and head.header("Content-Length") == str(4 * have)
        assert _rest_until_eof(c, 30) == pattern(have)
    wait_until(lambda: _closes(log) == ["short"], 10, what="close() once")
    assert request(h.port, GET).status == 200


def test_event_close_is_called_once_when_the_client_goes_away(launch, tmp_path):
    """(c) The client disconnects while the listener holds the body: close() once."""
    log = tmp_path / "closes"
    h = launch("event", ONE_THREAD, app=APP, env={"FILEWRAP_LOG": str(log)})
    c = _slow_reader(h.port, b"/file/%d?tag=gone" % BIG)
    _writing(h)
    assert _closes(log) == []
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    c.close()
    wait_until(lambda: _closes(log) == ["gone"], 10, what="close() after the client left")
    wait_until(lambda: (lambda s: s and s.conns_async_writing == 0)(status_or_none(h)), 10,
               what="the connection out of write completion")
    assert _closes(log) == ["gone"]


def test_event_close_is_called_once_on_timeout_and_when_the_child_exits(launch, tmp_path):
    """Timeout 1: a reader that never reads is cut after a second without progress; and a
    graceful stop while a body is in write completion: close() once each, the child exits."""
    log = tmp_path / "closes"
    h = launch("event", {**ONE_THREAD, "Timeout": 1}, app=APP, env={"FILEWRAP_LOG": str(log)})
    with _slow_reader(h.port, b"/file/%d?tag=timeout" % BIG):
        wait_until(lambda: _closes(log) == ["timeout"], 15, what="close() after Timeout")
        assert h.log_text().count("application error") == 0
    with _slow_reader(h.port, b"/file/%d?tag=exit" % BIG):
        _writing(h)
        h.graceful_stop()
        assert h.wait(20) == 0
    assert _closes(log) == ["timeout", "exit"]


def test_event_a_read_error_in_the_listener_is_logged_and_closes(launch, tmp_path):
    log = tmp_path / "closes"
    h = launch("event", ONE_THREAD, app=APP, env={"FILEWRAP_LOG": str(log)})
    with Conn(h.port) as c:
        c.send(b"GET /file/%d?fail=%d&tag=failed HTTP/1.1\r\nHost: a\r\n\r\n" % (BIG, 1 << 20))
        assert c.read_response(head_only=True).status == 200
        assert _rest_until_eof(c, 30) == pattern(1 << 20)  # what it had, then the close
    wait_until(lambda: "the source failed on purpose" in h.log_text(), 10, what="the logged error")
    text = h.log_text()
    # logged as an application error after the head was sent, with its traceback
    assert "application error in the file wrapper's read()" in text and "in read" in text
    wait_until(lambda: _closes(log) == ["failed"], 10, what="close() once")
    assert request(h.port, GET).status == 200


def test_event_pipelined_request_waits_for_the_deferred_body(launch):
    """Two requests in one write: the second is answered after every byte of the first."""
    h = launch("event", ONE_THREAD, app=APP)
    n = 4 << 20
    with Conn(h.port, timeout=30) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(b"GET /file/%d HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" % n)
        _writing(h)
        first = c.read_response(timeout=30)
        assert first.body == pattern(n)
        assert c.read_response().body == b"Hello, World!"


def test_event_iterates_what_it_may_not_defer(launch):
    """An opaque source, no Content-Length, HEAD: in the worker, correctly framed."""
    h = launch("event", ONE_THREAD, app=APP)
    _check_framing(h)


def _check_framing(h) -> None:
    n = 300_000
    for query in (b"", b"?src=bytesio", b"?src=regular", b"?src=opaque"):
        with Conn(h.port) as c:
            for _ in range(2):  # and keep-alive after it
                c.send(b"GET /file/%d%s HTTP/1.1\r\nHost: a\r\n\r\n" % (n, query))
                r = c.read_response()
                assert r.status == 200 and r.header("Content-Length") == str(n) and r.body == pattern(n), query
    with Conn(h.port) as c:
        c.send(b"GET /file/%d?nolength=1 HTTP/1.1\r\nHost: a\r\n\r\n" % n)
        r = c.read_response()
        assert r.header("Transfer-Encoding") == "chunked" and r.body == pattern(n)
        c.send(b"HEAD /file/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n)
        r = c.read_response(head_only=True)
        assert r.status == 200 and r.header("Content-Length") == str(n)
        c.send(GET)  # nothing of the HEAD's file leaked onto the connection
        assert c.read_response().body == b"Hello, World!"
    with Conn(h.port) as c:
        c.send(b"GET /file/%d HTTP/1.0\r\n\r\n" % n)
        assert c.read_response().body == pattern(n)


@pytest.mark.parametrize("mpm", ["prefork", "worker"])
def test_prefork_and_worker_serve_file_wrapper_bodies(launch, mpm, tmp_path):
    """(d) Without write completion the wrapper is iterated in the worker: same bytes, same framing."""
    log = tmp_path / "closes"
    h = launch(mpm, app=APP, env={"FILEWRAP_LOG": str(log)})
    _check_framing(h)
    with Conn(h.port) as c:
        c.send(b"GET /file/1000?have=10&tag=short HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response(head_only=True).status == 200
        assert _rest_until_eof(c, 10) == pattern(10)  # what it had, then the close
    wait_until(lambda: _closes(log) == ["short"], 10, what="close() once")


# -- memory: slow readers of /bytes/10000000 ------------------------------------------------------


def test_event_fifty_slow_readers_cost_bounded_memory_and_no_workers(launch):
    """50 clients ask /bytes/10000000 and read nothing: all in write completion, the tree's PSS
    grows by well under 30 MiB (measured: about 4 MiB; 15 MiB when each held a worker thread)."""
    h = launch("event", {"Timeout": 60})
    for _ in range(3):
        assert len(request(h.port, b"GET /bytes/1000000 HTTP/1.1\r\nHost: a\r\n\r\n").body) == 1_000_000
    before = settled_pss(h)
    readers = []
    try:
        for _ in range(50):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect(("127.0.0.1", h.port))
            s.sendall(b"GET /bytes/10000000 HTTP/1.1\r\nHost: a\r\n\r\n")
            readers.append(s)
        st = _writing(h, 50)
        assert st.scoreboard.count("W") <= 2  # the status request itself, not the readers
        grown = settled_pss(h) - before
    finally:
        for s in readers:
            s.close()
    assert grown < 30 * 1024 * 1024, f"PSS grew {grown / 2**20:.1f} MiB for 50 slow readers"
    print(f"PSS growth for 50 slow readers: {grown / 2**20:.1f} MiB")
