"""The HTTP/1.1 fuzzer of the live fuzz test and benchmarks/reliability.py: inputs, oracle, client.

* :func:`digest_app`: a WSGI app whose answer to every request is predictable (it reads
  the whole body and answers 200 with the method, target and the body's SHA-1), so a
  fuzzed connection's responses can be checked exactly;
* :func:`expected_answers`: what a server must answer on one connection carrying
  ``data`` then EOF, according to the sans-IO reader (the oracle): one 200 per request
  the reader accepts, in order (RFC 9112 §9.3.2), then the status of the reader's
  error, if any (RFC 9112 §2.2: answer, then close);
* :class:`Mutator`: a seeded generator of malformed requests (valid ones mutated byte
  by byte, framing conflicts, over-limit heads and bodies, garbage, other protocols);
* :func:`fuzz_connection`: send one input on a fresh loopback connection, half-close,
  read every response until EOF, and compare with the oracle;
* :data:`FUZZ_POOLS`, :data:`FUZZ_LIMITS`: the server a fuzz run targets, with a fixed pool
  (every child that exits is a crash) and small limits (over-limit inputs are common and cheap).

Everything is bounded: inputs are at most a few hundred KB, every read has a deadline.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import time
from dataclasses import dataclass

from servers.apps import app as builtin_app
from servers.http.errors import ClientDisconnected, ProtocolError
from servers.http.limits import Limits
from servers.http.parser import CLOSED, NEED_DATA, EndOfMessage, RequestReader
from servers.http.request import Request
from servers.mpm import MPMS

from .wire import Conn

#: fixed pools: never fewer idle units than the min spare, never more than the max spare,
#: so maintenance never forks or retires a child and every child that exits is a crash;
#: prefork 4 processes, worker and event alike 2 children of 4 threads
_PROCESS_POOL = {"StartServers": 4, "MinSpareServers": 1, "MaxSpareServers": 4, "MaxRequestWorkers": 4,
                 "ServerLimit": 4}
_THREAD_POOL = {"StartServers": 2, "ThreadsPerChild": 4, "MaxRequestWorkers": 8, "ServerLimit": 2,
                "MinSpareThreads": 1, "MaxSpareThreads": 8}
FUZZ_POOLS = {name: dict(_THREAD_POOL if spec.threaded else _PROCESS_POOL) for name, spec in MPMS.items()}
#: small limits, so over-limit inputs are common and cheap (httpd's directives)
FUZZ_LIMITS = {"LimitRequestLine": 512, "LimitRequestFieldSize": 512, "LimitRequestFields": 20,
               "LimitRequestBody": 4096}
#: the same limits, as the oracle's reader enforces them
FUZZ_ORACLE_LIMITS = Limits(request_line=FUZZ_LIMITS["LimitRequestLine"],
                            field_size=FUZZ_LIMITS["LimitRequestFieldSize"],
                            fields=FUZZ_LIMITS["LimitRequestFields"], body=FUZZ_LIMITS["LimitRequestBody"])


def digest_app(environ, start_response):
    """Reads the whole body (like /echo) and answers 200 ``METHOD TARGET SHA1(body)``.

    ``/server-status`` goes to the built-in app, so a fuzz run can watch the server's scoreboard.
    """
    if environ["PATH_INFO"] == "/server-status":
        return builtin_app(environ, start_response)
    body = environ["wsgi.input"].read()
    out = digest(environ["REQUEST_METHOD"], environ["REQUEST_URI"], body)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


def digest(method: str, target: str, body: bytes) -> bytes:
    """The body :func:`digest_app` answers for one request."""
    return b"%s %s %s" % (method.encode("latin-1"), target.encode("latin-1"), hashlib.sha1(body).hexdigest().encode())


@dataclass(frozen=True)
class Answer:
    """One response the oracle expects: its status, and for a 200 the request it answers."""

    status: int
    method: str  # the request's method (an error answer to HEAD has no body either)
    target: str | None = None
    body: bytes | None = None


def expected_answers(data: bytes, limits: Limits) -> list[Answer]:
    """The answers a server owes a connection that sends ``data`` and then EOF (see module doc)."""
    reader = RequestReader(limits)
    reader.feed(data)
    reader.feed(b"")
    out: list[Answer] = []
    current: Request | None = None
    body = bytearray()
    while True:
        try:
            ev = reader.next_event()
        except ProtocolError as exc:
            out.append(Answer(exc.status, current.method if current else reader.method_hint))
            return out
        except ClientDisconnected:
            return out  # cut off by EOF: no answer
        if ev is CLOSED or ev is NEED_DATA:
            return out
        if isinstance(ev, Request):
            current = ev
            body.clear()
        elif isinstance(ev, EndOfMessage):
            out.append(Answer(200, current.method, current.target, bytes(body)))
            current = None
        else:
            body += ev


def check_answers(responses: list, expected: list[Answer]) -> str | None:
    """None when ``responses`` are what ``expected`` allows, else what is wrong.

    The server may stop early only after a response that announces it (``Connection: close``:
    HTTP/1.0 without keep-alive, a request that asked for it); an error answer always closes.
    """
    if len(responses) > len(expected):
        return f"{len(responses)} responses, expected at most {len(expected)}"
    for i, (r, want) in enumerate(zip(responses, expected)):
        if r.status != want.status:
            return f"response {i}: status {r.status}, expected {want.status}"
        if not (r.header("Date") and r.header("Server")):
            return f"response {i}: no Date or Server"
        if want.status == 200 and want.method != "HEAD" and r.body != digest(want.method, want.target, want.body):
            return f"response {i}: body {r.body[:60]!r} answers another request"
        if want.status != 200 and r.header("Connection") != "close":
            return f"response {i}: error {r.status} without Connection: close"
    if len(responses) < len(expected) and not (responses and responses[-1].header("Connection") == "close"):
        return f"{len(responses)} responses of {len(expected)}, and no announced close"
    return None


def read_answers(sock: socket.socket, expected: list[Answer], timeout: float) -> tuple[list, bool]:
    """Read responses (as many as ``expected`` allows) then wait for EOF; (responses, ended cleanly)."""
    conn = Conn.wrap(sock, timeout=timeout)
    responses: list = []
    while len(responses) <= len(expected):
        head_only = len(responses) < len(expected) and expected[len(responses)].method == "HEAD"
        try:
            r = conn.read_response(head_only=head_only)
        except (ConnectionError, TimeoutError, ValueError, AssertionError):
            break
        responses.append(r)
        if r.header("Connection") == "close":
            break
    try:
        clean = conn.closed_by_peer(timeout)
    except OSError:
        clean = True  # reset after the answers: the peer is gone, which is a close
    return responses, clean


# -- the mutator ------------------------------------------------------------------------------

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\nUser-Agent: fuzz\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
    b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET http://b/x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"DELETE /r HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
]
SNIPPETS = [
    b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b":", b";", b",", b"\x7f", b"\xff", b"0\r\n\r\n",
    b"Content-Length: 5\r\n", b"Content-Length: 0\r\n", b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n", b"Transfer-Encoding: xchunked\r\n", b"Host: b\r\n",
    b"Expect: 100-continue\r\n", b"Expect: foo\r\n", b"Connection: close\r\n", b"Connection: upgrade\r\nUpgrade: h2c\r\n",
    b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"PRI",
    b"ffffffffffffffffff\r\n", b"5;" + b"e" * 70 + b"\r\n", b"%00", b"#frag", b"/../../etc",
]


def _attacks(r: random.Random, limits: Limits) -> bytes:
    """One of the classic over-limit or hostile shapes, sized from ``limits``."""
    kind = r.randrange(10)
    host = b"Host: a\r\n"
    if kind == 0:  # request-line over LimitRequestLine
        return b"GET /" + b"a" * (limits.request_line + r.randrange(1, 100)) + b" HTTP/1.1\r\n" + host + b"\r\n"
    if kind == 1:  # one field over LimitRequestFieldSize
        return b"GET / HTTP/1.1\r\n" + host + b"X: " + b"v" * (limits.field_size + r.randrange(100)) + b"\r\n\r\n"
    if kind == 2:  # more fields than LimitRequestFields
        n = (limits.fields or 100) + r.randrange(1, 50)
        return b"GET / HTTP/1.1\r\n" + host + b"".join(b"X-%d: v\r\n" % i for i in range(n)) + b"\r\n"
    if kind == 3:  # body over LimitRequestBody, announced or chunked
        n = (limits.body or 1 << 16) + r.randrange(1, 1000)
        if r.random() < 0.5:
            return b"POST / HTTP/1.1\r\n" + host + b"Content-Length: %d\r\n\r\n" % n + b"b" * n
        return (b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % n + b"b" * n + b"\r\n0\r\n\r\n")
    if kind == 4:  # huge chunk extension (RFC 9112 §7.1.1: limited with a 4xx)
        return (b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n5;"
                + b"x" * (limits.field_size + 10) + b"\r\nhello\r\n0\r\n\r\n")
    if kind == 5:  # binary garbage / TLS ClientHello / HTTP/2 preface
        return r.choice([
            bytes(r.randrange(256) for _ in range(r.randrange(1, 300))),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ])
    if kind == 6:  # many pipelined requests
        return r.choice(SEEDS[:3]) * r.randrange(2, 40)
    if kind == 7:  # desync: CL.TE / TE.CL with a request inside the body
        return r.choice([
            b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
            b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 41\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n" + host + b"Content-Length : 5\r\n\r\nhello",
        ])
    if kind == 8:  # many empty lines before the request-line
        return b"\r\n" * r.randrange(1, limits.request_line) + SEEDS[0]
    # a body announced and not sent (the EOF cuts it), or a head cut short
    seed = r.choice(SEEDS)
    return seed[: r.randrange(1, len(seed))]


class Mutator:
    """Seeded source of malformed inputs for one connection each (reproducible from ``seed``)."""

    def __init__(self, seed: int, limits: Limits) -> None:
        self.r = random.Random(seed)
        self.limits = limits

    def mutate(self, data: bytes) -> bytes:
        """``data`` with 1-4 byte-level mutations (flip, insert, delete, duplicate, snippet, cut)."""
        r = self.r
        out = bytearray(data)
        for _ in range(r.randint(1, 4)):
            op = r.randrange(6)
            i = r.randrange(len(out) + 1)
            if op == 0 and out:
                out[min(i, len(out) - 1)] = r.randrange(256)
            elif op == 1:
                out[i:i] = bytes(r.randrange(256) for _ in range(r.randint(1, 4)))
            elif op == 2 and out:
                del out[i:i + r.randint(1, 4)]
            elif op == 3:
                j = r.randrange(len(out) + 1)
                out[i:i] = out[min(i, j):max(i, j)][:64]
            elif op == 4:
                out[i:i] = r.choice(SNIPPETS)
            elif op == 5 and r.random() < 0.3:
                del out[i:]
        return bytes(out)

    def next_input(self) -> tuple[bytes, str]:
        """(bytes to send on one connection, how to end it: "eof" half-close, or "reset")."""
        r = self.r
        roll = r.random()
        if roll < 0.15:
            data = _attacks(r, self.limits)
        else:
            data = b"".join(self.mutate(r.choice(SEEDS)) if r.random() < 0.8 else r.choice(SEEDS)
                            for _ in range(r.randint(1, 3)))
        return data, ("reset" if r.random() < 0.05 else "eof")


@dataclass
class FuzzOutcome:
    """What one input did to a live server."""

    sent: int
    responses: int
    problem: str | None  # None: the answers were exactly what the oracle allows


def fuzz_connection(port: int, data: bytes, how: str, limits: Limits, timeout: float = 10.0) -> FuzzOutcome:
    """Send ``data`` on a new loopback connection and end it as ``how`` says; check the answers.

    ``eof``: half-close, read every response until EOF and compare with :func:`expected_answers`
    (a send cut short by the server is fine when the answers are); ``reset``: close at once
    with an RST (SO_LINGER 0), mid-request, and read nothing.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sent_all = True
        try:
            sock.sendall(data)
        except OSError:
            sent_all = False  # the server answered an error early and closed its side
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return FuzzOutcome(len(data), 0, None)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        expected = expected_answers(data, limits)
        responses, clean = read_answers(sock, expected, timeout)
        problem = check_answers(responses, expected)
        if problem and not sent_all and not responses:
            problem = None  # refused before the whole input was written: nothing to compare
        if problem is None and not clean:
            problem = "no EOF after the answers (the server kept the connection or sent more)"
        return FuzzOutcome(len(data), len(responses), problem)
    finally:
        sock.close()


def run_fuzz(port: int, seed: int, count: int, limits: Limits, *, workers: int = 4,
             seconds: float = 60.0) -> tuple[int, list[str]]:
    """Send ``count`` inputs from ``workers`` threads (at most ``seconds``); (inputs tried, problems)."""
    import threading

    lock = threading.Lock()
    mutator = Mutator(seed, limits)
    state = {"next": 0}
    problems: list[str] = []
    deadline = time.monotonic() + seconds

    def work() -> None:
        while time.monotonic() < deadline:
            with lock:
                if state["next"] >= count:
                    return
                state["next"] += 1
                data, how = mutator.next_input()
            try:
                out = fuzz_connection(port, data, how, limits)
            except OSError as exc:
                out = FuzzOutcome(len(data), 0, f"connection failed: {exc!r}")
            if out.problem:
                with lock:
                    problems.append(f"{out.problem}: {data[:200]!r} ({how})")

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return state["next"], problems
