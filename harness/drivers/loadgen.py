"""Built-in fast closed-loop HTTP/1.1 load driver.

Why a driver of our own
-----------------------
The servers under test answer 3k-15k requests/s on this kind of machine.
locust saturates its own CPU near 2k req/s per process, so it would measure
itself.  This driver is a plain non-blocking socket loop (one ``select.epoll``
set per process, used directly rather than through ``selectors`` to save a
wrapper per event, so Linux only, like the CPU pinning; no threads, no
general HTTP parser: ``bytes.find`` on the response head).  On one core it
spends about 8 us of user CPU per keep-alive request (it has driven a
trivial keep-alive server at 40k+ req/s here); a server that closes after
every response costs it a connect/close per request, about 200 us of CPU
including the kernel's share of loopback TCP.  It reports its own CPU use
so that a run where *it* was the bottleneck is flagged
(``driver_cpu_fraction`` > 0.9) instead of being published as the server's
capacity.  ``benchmarks/loadgen_selftest.py`` measures all this again.

Closed loop, and what that hides
--------------------------------
Each of ``connections`` connections has exactly one request in flight: it
sends a request, waits for the whole response, records the latency from the
moment the request was sent, and only then sends the next one.  The offered
load therefore adapts to the server: when the server stalls, the driver
stops sending.  The requests that a real, independent population of clients
would have sent during the stall are never issued, so they are never
measured -- this is *coordinated omission*.  Throughput from a closed loop
is meaningful (it is the server's capacity at that concurrency), but its
latency percentiles understate the tail, sometimes by orders of magnitude.
Headline latency must come from an open-loop run at a fixed rate, timed
from each request's *intended* send time; that mode is a later addition to
this module.  Until then, treat ``histogram`` here as service time under
saturation, not as user-visible latency.

Per-connection accounting
-------------------------
wrk and similar tools report only totals.  A server with fewer workers than
connections (e.g. prefork with 2 children and 50 keep-alive connections)
can post an excellent requests/s figure by serving 2 connections over and
over while 48 others never get an answer.  So this driver counts responses
per connection *slot* (a slot that reconnects keeps its index):
``per_connection`` and ``starved_connections`` (slots with zero responses)
make that visible, and ``LoadResult.ok`` is false for such a run.

Connection handling
-------------------
* A response that announces the end of the connection (``Connection:
  close``, or HTTP/1.0 without ``keep-alive``), or ``keep_alive=False``, is
  followed by a reconnect on the same slot; that counts in ``reconnects``
  and is not an error (gunicorn's sync worker does this after every
  response).
* A body delimited by the close of the connection (no Content-Length, not
  chunked) is complete at EOF; then the slot reconnects.
* If a kept-alive connection is closed (EOF or reset) before *any* byte of
  the next response arrived, the server has dropped an idle connection
  without announcing it (the keep-alive race of RFC 9112 section 9.3.1).  Like browsers,
  the driver re-sends that request once on a new connection; it counts in
  ``reconnects`` and ``closed_idle``, not as an error.  A correct server
  announces the close, so a non-zero ``closed_idle`` is worth a look.
* Anything else is an error, counted by kind in ``errors``:
  ``connect`` (refused / failed connect), ``connect_timeout``, ``timeout``
  (a request unanswered for ``timeout`` seconds: the connection is closed
  and the slot reconnects), ``reset`` (RST mid-response or on a fresh
  connection), ``closed_early`` (EOF mid-response or before the first
  response of a connection), ``protocol`` (unparseable response).

Stopping
--------
The driver stops *sending* at ``duration`` or after ``max_requests``
requests, whichever comes first.  Requests already in flight then get the
rest of their own ``timeout`` to complete: each one ends as a response
(counted in ``requests``, the histogram and ``per_connection``) or as a
``timeout`` error; none is silently dropped.  ``duration`` runs from the
start to the later of the stop moment and the last response, so a hung
connection in the drain does not dilute requests/s.  Slots that were still
connecting at the stop had no request in flight and are simply closed.

Safety
------
Only loopback targets (127.0.0.0/8, ::1, ``localhost``) are accepted; any
other host raises ``ValueError``.  Every run is bounded in time
(``duration`` + ``timeout`` for the drain) and in count (``max_requests``,
or ``duration * 200_000`` per process when it is not given).
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import math
import os
import pickle
import resource
import select
import signal
import socket
import time
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram

from .base import HIST_HIGHEST_US, HIST_LOWEST_US, DriverResult, new_histogram

__all__ = ["LoadResult", "run_closed_loop", "new_histogram", "parse_loopback_url"]

# Largest response head accepted before calling the response a protocol error.
_MAX_HEAD = 64 * 1024
# Count bound when max_requests is not given: no Python client does 200k/s.
_MAX_RATE_BOUND = 200_000
# Backoff before retrying a failed connect on a slot.
_CONNECT_RETRY_S = 0.02
# Latencies are buffered and folded into the histogram in batches.
_FLUSH_EVERY = 65536
_RECV_SIZE = 256 * 1024

# Response parser modes.
_HEAD, _BODY, _CHUNKED, _TRAILERS, _UNTIL_EOF = range(5)
# Slot states.
_IDLE, _OPEN = range(2)

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERR_HUP = select.EPOLLERR | select.EPOLLHUP


#: the closed-loop driver's result is the common driver result
LoadResult = DriverResult


# --------------------------------------------------------------------------
# target and request


def parse_loopback_url(url: str) -> tuple[int, tuple, str, str]:
    """Split ``url`` into (family, sockaddr, host header, request target).

    Raises ValueError unless the scheme is http and the host is a loopback
    address (127.0.0.0/8, ::1) or ``localhost``.
    """
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    try:
        port = parts.port or 80
    except ValueError as e:
        raise ValueError(f"bad port in {url!r}: {e}") from None
    if host == "localhost":
        ip = ipaddress.ip_address("127.0.0.1")
    else:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"refusing {url!r}: the host must be a loopback address literal "
                "(127.0.0.0/8, ::1) or localhost"
            ) from None
    if not ip.is_loopback:
        raise ValueError(f"refusing {url!r}: {host} is not a loopback address")
    if ip.version == 6:
        family, addr = socket.AF_INET6, (str(ip), port, 0, 0)
        hosthdr = f"[{ip}]:{port}"
    else:
        family, addr = socket.AF_INET, (str(ip), port)
        hosthdr = f"{host}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return family, addr, hosthdr, target


def _encode_request(
    method: str,
    target: str,
    hosthdr: str,
    headers: Mapping[str, str] | None,
    body: bytes,
    keep_alive: bool,
) -> bytes:
    if not method or not method.isalpha() or not method.isupper():
        raise ValueError(f"bad method {method!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    names = set()
    for k, v in (headers or {}).items():
        if any(c in k + v for c in "\r\n\0") or not k or ":" in k:
            raise ValueError(f"bad header {k!r}: {v!r}")
        names.add(k.lower())
        lines.append(f"{k}: {v}")
    if "host" not in names:
        lines.insert(1, f"Host: {hosthdr}")
    if "content-length" not in names and "transfer-encoding" not in names:
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
    if not keep_alive and "connection" not in names:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + bytes(body)


# --------------------------------------------------------------------------
# the loop


class _ProtocolError(Exception):
    pass


class _Conn:
    __slots__ = (
        "slot", "sock", "fd", "state", "buf", "mode", "need", "status", "close",
        "inflight", "sent_ns", "t0", "out", "nsock", "got_bytes", "retry_at",
        "resend", "connected",
    )

    def __init__(self, slot: int):
        self.slot = slot
        self.sock = None
        self.fd = -1
        self.state = _IDLE
        self.buf = b""
        self.mode = _HEAD
        self.need = 0
        self.status = 0
        self.close = False
        self.inflight = False
        self.sent_ns = 0
        self.t0 = 0.0  # when the current wait (connect or request) began
        self.out = b""  # unsent part of the request
        self.nsock = 0  # complete responses on the current socket
        self.got_bytes = False  # any byte of the current response seen
        self.retry_at = 0.0
        self.resend = False
        self.connected = False  # the handshake is known to be complete


def _parse_head(head: bytes, head_only: bool, keep_alive: bool):
    """Return (status, mode, need, close) for one response head (no final CRLFCRLF)."""
    h = head.lower()
    if not h.startswith(b"http/1."):
        raise _ProtocolError("status line")
    try:
        status = int(h[9:12])
    except ValueError:
        raise _ProtocolError("status code") from None
    http10 = h[7:8] == b"0"
    close = not keep_alive
    k = h.find(b"\r\nconnection:")
    if k >= 0:
        e = h.find(b"\r\n", k + 13)
        v = h[k + 13 : e if e >= 0 else len(h)]
        if b"close" in v:
            close = True
        elif http10 and b"keep-alive" not in v:
            close = True
    elif http10:
        close = True
    if head_only or status in (204, 304) or 100 <= status < 200:
        return status, _HEAD, 0, close
    k = h.find(b"\r\ntransfer-encoding:")
    if k >= 0:
        e = h.find(b"\r\n", k + 20)
        if b"chunked" in h[k + 20 : e if e >= 0 else len(h)]:
            return status, _CHUNKED, 0, close
    k = h.find(b"\r\ncontent-length:")
    if k >= 0:
        e = h.find(b"\r\n", k + 17)
        try:
            n = int(h[k + 17 : e if e >= 0 else len(h)])
        except ValueError:
            raise _ProtocolError("content-length") from None
        if n < 0:
            raise _ProtocolError("content-length")
        return status, _BODY, n, close
    return status, _UNTIL_EOF, 0, True


def _run_loop(
    family: int,
    addr: tuple,
    request: bytes,
    head_only: bool,
    connections: int,
    duration: float,
    timeout: float,
    keep_alive: bool,
    max_requests: int | None,
) -> dict:
    """Run the closed loop in the calling thread; return a picklable summary."""
    monotonic = time.monotonic
    now_ns = time.monotonic_ns
    ep = select.epoll(max(connections, 1) + 1)
    poll = ep.poll
    ep_register = ep.register
    ep_modify = ep.modify
    ep_unregister = ep.unregister

    conns = [_Conn(i) for i in range(connections)]
    byfd: dict[int, _Conn] = {}
    per_conn = [0] * connections
    status_counts: dict[int, int] = {}
    errors: dict[str, int] = {}
    lat: list[int] = []
    lat_append = lat.append
    hist = new_histogram()
    counters = {"reconnects": 0, "closed_idle": 0}
    limit = max_requests if max_requests is not None else int(duration * _MAX_RATE_BOUND) + connections
    req_len = len(request)
    sent = 0
    completed = 0
    last_done = 0.0
    running = True

    def flush():
        # Counter is C-accelerated; latencies repeat a lot, so this calls
        # record_value a few thousand times instead of once per response.
        for v, c in collections.Counter(lat).items():
            if v < HIST_LOWEST_US:
                v = HIST_LOWEST_US
            elif v > HIST_HIGHEST_US:
                v = HIST_HIGHEST_US
            hist.record_value(v, c)
        lat.clear()

    def err(kind: str):
        errors[kind] = errors.get(kind, 0) + 1

    def fail(c: _Conn, kind: str, now: float):
        """Count an error, close the connection and schedule the slot's reconnect.

        After a failure on a connection that never completed a response the
        slot waits _CONNECT_RETRY_S, so a server that refuses or drops every
        connection cannot turn the loop into a busy spin."""
        err(kind)
        fresh = c.nsock == 0
        c.resend = False
        drop(c)
        if fresh:
            c.retry_at = now + _CONNECT_RETRY_S  # the tick reconnects it
        elif running:
            counters["reconnects"] += 1
            connect(c, now)

    def drop(c: _Conn):
        if c.sock is not None:
            try:
                ep_unregister(c.fd)
            except (OSError, ValueError):
                pass
            byfd.pop(c.fd, None)
            c.sock.close()
        c.sock = None
        c.fd = -1
        c.state = _IDLE
        c.buf = b""
        c.mode = _HEAD
        c.inflight = False
        c.out = b""
        c.got_bytes = False

    def connect(c: _Conn, now: float):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # e.g. out of file descriptors
            err("connect")
            c.retry_at = now + _CONNECT_RETRY_S
            return
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock = s
        c.fd = fd = s.fileno()
        c.nsock = 0
        c.connected = False
        c.t0 = now
        byfd[fd] = c
        rc = s.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS, errno.EAGAIN):
            fail(c, "connect", now)
            return
        # On loopback the handshake has normally completed inside connect()
        # even when it says EINPROGRESS, so the request is sent at once; if
        # the socket is not writable yet, send_next waits for EPOLLOUT.
        # This saves an epoll round trip per connection, which matters
        # against servers that close after every response.
        c.state = _OPEN
        c.connected = rc == 0
        ep_register(fd, _EPOLLIN)
        send_next(c, now)

    def reconnect(c: _Conn, now: float):
        nonlocal running
        drop(c)
        if running and sent >= limit:
            running = False  # no request left to send: do not open a connection
        if running:
            counters["reconnects"] += 1
            connect(c, now)

    def send_next(c: _Conn, now: float):
        """Send a request on an open connection (or stop, when no longer running)."""
        nonlocal sent, running
        if not c.resend:
            if running and sent >= limit:
                running = False
            if not running:
                drop(c)
                return
            sent += 1
        c.resend = False
        c.inflight = True
        c.got_bytes = False
        c.mode = _HEAD
        c.t0 = now
        c.sent_ns = now_ns()
        try:
            n = c.sock.send(request)
        except BlockingIOError:
            n = 0
        except OSError:
            on_eof(c, now, True)
            return
        if n:
            c.connected = True
        if n < req_len:
            c.out = request[n:]
            ep_modify(c.fd, _EPOLLIN | _EPOLLOUT)

    def on_eof(c: _Conn, now: float, reset: bool):
        """The peer closed (FIN or RST) the connection, or the connect failed."""
        if not c.connected:
            fail(c, "connect", now)
            return
        if c.inflight and c.mode == _UNTIL_EOF and not reset:
            complete(c, now_ns())  # close-delimited body: complete now
            reconnect(c, now)
            return
        if c.inflight:
            if not c.got_bytes and not c.buf and c.nsock > 0:
                # Unannounced close of a kept-alive connection before any
                # byte of the answer: re-send the request once on a new
                # connection (it was counted as sent already).  A second
                # failure on the fresh connection is an error.
                counters["closed_idle"] += 1
                drop(c)
                c.resend = True
                counters["reconnects"] += 1
                connect(c, now)
                return
            fail(c, "reset" if reset else "closed_early", now)
            return
        c.resend = False
        reconnect(c, now)

    def complete(c: _Conn, now_ns_: int):
        nonlocal completed, last_done
        completed += 1
        c.nsock += 1
        per_conn[c.slot] += 1
        st = c.status
        status_counts[st] = status_counts.get(st, 0) + 1
        d = (max(now_ns_, c.sent_ns) - c.sent_ns) // 1000
        lat_append(d)
        c.inflight = False
        c.mode = _HEAD
        c.got_bytes = False
        last_done = now_ns_

    def feed(c: _Conn, data: bytes, tnow: int, now: float):
        """Parse ``data`` (already including c.buf). Returns when more bytes are needed."""
        pos = 0
        end = len(data)
        sock = c.sock
        while pos < end:
            if c.sock is not sock:
                return  # a send failed and the slot moved on to a new socket
            if not c.inflight:
                # bytes with no request outstanding: either leftovers kept
                # for the next request (several responses in one write) or,
                # when stopped, noise to discard
                if not running or c.state != _OPEN:
                    c.buf = b""
                    return
                send_next(c, now)
                if not c.inflight:
                    c.buf = b""
                    return
                tnow = max(tnow, c.sent_ns)
            c.got_bytes = True
            mode = c.mode
            if mode == _HEAD:
                i = data.find(b"\r\n\r\n", pos)
                if i < 0:
                    if end - pos > _MAX_HEAD:
                        raise _ProtocolError("head too large")
                    break
                c.status, mode, c.need, c.close = _parse_head(data[pos:i], head_only, keep_alive)
                pos = i + 4
                if 100 <= c.status < 200:
                    if c.status == 101:
                        raise _ProtocolError("unexpected 101")
                    continue  # interim response; the final one follows
                c.mode = mode
                if mode == _HEAD or (mode == _BODY and c.need == 0):
                    complete(c, tnow)
                    if c.close:
                        c.buf = b""
                        reconnect(c, now)
                        return
                    if pos >= end:
                        send_next(c, now)
                    continue
            if mode == _BODY:
                avail = end - pos
                if avail < c.need:
                    c.need -= avail
                    pos = end
                    break
                pos += c.need
                c.need = 0
                complete(c, tnow)
                if c.close:
                    c.buf = b""
                    reconnect(c, now)
                    return
                if pos >= end:
                    send_next(c, now)
                continue
            if mode == _CHUNKED:
                done = False
                while pos < end:
                    if c.need > 0:  # inside chunk data + its CRLF
                        avail = end - pos
                        if avail < c.need:
                            c.need -= avail
                            pos = end
                            break
                        pos += c.need
                        c.need = 0
                        continue
                    j = data.find(b"\r\n", pos)
                    if j < 0:
                        if end - pos > 1024:
                            raise _ProtocolError("chunk size line")
                        break
                    try:
                        size = int(data[pos:j].split(b";", 1)[0], 16)
                    except ValueError:
                        raise _ProtocolError("chunk size") from None
                    pos = j + 2
                    if size == 0:
                        c.mode = mode = _TRAILERS
                        done = True
                        break
                    c.need = size + 2
                if not done:
                    break
            if mode == _TRAILERS:
                if end - pos < 2:
                    break
                if data[pos : pos + 2] == b"\r\n":
                    pos += 2
                else:
                    k = data.find(b"\r\n\r\n", pos)
                    if k < 0:
                        if end - pos > _MAX_HEAD:
                            raise _ProtocolError("trailers too large")
                        break
                    pos = k + 4
                complete(c, tnow)
                if c.close:
                    c.buf = b""
                    reconnect(c, now)
                    return
                if pos >= end:
                    send_next(c, now)
                continue
            if mode == _UNTIL_EOF:
                pos = end  # body runs to EOF
                break
        c.buf = data[pos:] if pos < end else b""

    cpu0 = _cpu_now()
    start = monotonic()
    last_done = now_ns()
    stop_at = start + duration
    for c in conns:
        connect(c, start)
    tick = min(0.05, timeout / 4)
    next_tick = start + tick
    stopped_at = None
    drain_until = None

    while True:
        now = monotonic()
        if running and (now >= stop_at or sent >= limit):
            running = False
        if not running and stopped_at is None:
            stopped_at = now
            drain_until = now + timeout + tick
            # close slots that have nothing in flight
            for c in conns:
                if c.sock is not None and not c.inflight and not c.resend:
                    drop(c)
        if not running:
            if now >= drain_until or not any(c.sock is not None for c in conns):
                break
        if now >= next_tick:
            next_tick = now + tick
            for c in conns:
                if c.sock is None:
                    if running and c.state == _IDLE and now >= c.retry_at:
                        counters["reconnects"] += 1
                        connect(c, now)
                    continue
                if c.inflight and now - c.t0 >= timeout:
                    fail(c, "timeout" if c.connected else "connect_timeout", now)
        wait = (next_tick if running else min(next_tick, drain_until)) - now
        if running:
            wait = min(wait, stop_at - now)
        events = poll(max(wait, 0.0))
        if not events:
            continue
        tnow = now_ns()
        now = monotonic()
        for fd, ev in events:
            c = byfd.get(fd)
            if c is None:
                continue
            if ev & _EPOLLOUT and c.out:
                try:
                    n = c.sock.send(c.out)
                except BlockingIOError:
                    n = 0
                except OSError:
                    on_eof(c, now, True)
                    continue
                if n:
                    c.connected = True
                c.out = c.out[n:]
                if not c.out:
                    ep_modify(fd, _EPOLLIN)
                if not ev & (_EPOLLIN | _EPOLLERR_HUP):
                    continue
            try:
                data = c.sock.recv(_RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                on_eof(c, now, True)
                continue
            if not data:
                on_eof(c, now, False)
                continue
            if c.buf:
                data = c.buf + data
                c.buf = b""
            try:
                feed(c, data, tnow, now)
            except _ProtocolError:
                fail(c, "protocol", now)
            if len(lat) >= _FLUSH_EVERY:
                flush()

    end_t = monotonic()
    for c in conns:
        if c.inflight:
            # only a request re-sent after an unannounced close late in the
            # drain, or timer granularity, gets here
            err("timeout")
        drop(c)
    ep.close()
    flush()
    cpu1 = _cpu_now()
    stopped_at = stopped_at if stopped_at is not None else end_t
    finish = max(stopped_at, last_done / 1e9)
    return {
        "requests": completed,
        "requests_sent": sent,
        "status_counts": status_counts,
        "errors": errors,
        "start": start,
        "end": finish,
        "per_connection": per_conn,
        "reconnects": counters["reconnects"],
        "closed_idle": counters["closed_idle"],
        "hist": hist.encode(),
        "cpu": cpu1 - cpu0,
    }


def _cpu_now() -> float:
    # RUSAGE_THREAD: the loop runs in the calling thread; the rest of the
    # process (e.g. a test server in another thread) must not be counted.
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


# --------------------------------------------------------------------------
# processes


def _split(n: int, parts: int) -> list[int]:
    base, rem = divmod(n, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    out = bytearray()
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("driver child did not report in time")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError("driver child exited without reporting")
        out += chunk
    return bytes(out)


def _run_forked(jobs: list[dict], pins: list[int] | None, duration: float, timeout: float) -> list[dict]:
    """Fork one driver process per job (keyword arguments of _run_loop)."""
    go_r, go_w = os.pipe()
    children: list[tuple[int, int]] = []  # (pid, result read fd)
    try:
        for i, job in enumerate(jobs):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: never returns into the caller
                code = 1
                try:
                    os.close(r)
                    os.close(go_w)
                    if pins is not None:
                        os.sched_setaffinity(0, {pins[i]})
                    os.write(w, b"R")
                    os.read(go_r, 1)
                    try:
                        payload = pickle.dumps(("ok", _run_loop(**job)))
                    except BaseException as e:
                        payload = pickle.dumps(("error", repr(e)))
                    os.write(w, len(payload).to_bytes(8, "big"))
                    view = memoryview(payload)
                    while view:
                        view = view[os.write(w, view):]
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            children.append((pid, r))
        deadline = time.monotonic() + 30
        for _, r in children:
            if _read_exact(r, 1, deadline) != b"R":
                raise RuntimeError("driver child failed to start")
        os.write(go_w, b"G" * len(children))
        deadline = time.monotonic() + duration + 2 * timeout + 30
        results = []
        for _, r in children:
            size = int.from_bytes(_read_exact(r, 8, deadline), "big")
            kind, res = pickle.loads(_read_exact(r, size, deadline))
            if kind != "ok":
                raise RuntimeError(f"driver child failed: {res}")
            results.append(res)
        return results
    finally:
        os.close(go_r)
        os.close(go_w)
        for _, r in children:
            os.close(r)
        _reap([pid for pid, _ in children])


def _reap(pids: list[int], grace: float = 5.0) -> None:
    deadline = time.monotonic() + grace
    left = set(pids)
    while left:
        for pid in list(left):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                left.discard(pid)
        if not left:
            break
        if time.monotonic() >= deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid in left:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            break
        time.sleep(0.005)


# --------------------------------------------------------------------------
# API


def run_closed_loop(
    url: str,
    *,
    connections: int,
    duration: float,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    processes: int = 1,
    timeout: float = 5.0,
    keep_alive: bool = True,
    cpus: Iterable[int] | None = None,
    max_requests: int | None = None,
) -> LoadResult:
    """Drive ``url`` with ``connections`` closed-loop connections for ``duration`` s.

    ``processes`` > 1 forks that many driver processes (call this before the
    caller starts threads), each with its share of the connections, pinned
    round-robin to ``cpus`` when given; their histograms are added, never
    averaged.  With one process, the calling thread runs the loop, pinned to
    ``cpus[0]`` for the run when ``cpus`` is given (previous affinity restored).
    ``max_requests`` bounds the total requests sent over all processes.
    """
    family, addr, hosthdr, target = parse_loopback_url(url)
    if connections < 1:
        raise ValueError("connections must be >= 1")
    if not (duration > 0 and math.isfinite(duration)):
        raise ValueError("duration must be a positive number of seconds")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError("timeout must be a positive number of seconds")
    if processes < 1:
        raise ValueError("processes must be >= 1")
    if processes > connections:
        raise ValueError("processes must not exceed connections")
    if max_requests is not None and max_requests < 1:
        raise ValueError("max_requests must be >= 1")
    request = _encode_request(method.upper(), target, hosthdr, headers, body, keep_alive)
    head_only = method.upper() == "HEAD"
    cpu_list = None if cpus is None else [int(c) for c in cpus]
    if cpu_list is not None and not cpu_list:
        raise ValueError("cpus must not be empty")
    pins = None if cpu_list is None else [cpu_list[i % len(cpu_list)] for i in range(processes)]

    common = dict(
        family=family, addr=addr, request=request, head_only=head_only,
        duration=duration, timeout=timeout, keep_alive=keep_alive,
    )
    counts = _split(connections, processes)
    if processes == 1:
        prev = None
        if pins is not None:
            prev = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {pins[0]})
        try:
            parts = [_run_loop(connections=connections, max_requests=max_requests, **common)]
        finally:
            if prev is not None:
                os.sched_setaffinity(0, prev)
    else:
        limits: list[int | None] = [None] * processes
        if max_requests is not None:
            if max_requests < processes:
                raise ValueError("max_requests must be >= processes")
            limits = _split(max_requests, processes)
        jobs = [dict(connections=n, max_requests=m, **common) for n, m in zip(counts, limits)]
        parts = _run_forked(jobs, pins, duration, timeout)
    return _merge(parts, url, connections, processes, pins)


def _merge(parts: list[dict], url: str, connections: int, processes: int, pins) -> LoadResult:
    hist = new_histogram()
    status: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    per_conn: list[int] = []
    for p in parts:
        hist.add(HdrHistogram.decode(p["hist"]))
        status.update(p["status_counts"])
        errors.update(p["errors"])
        per_conn.extend(p["per_connection"])
    start = min(p["start"] for p in parts)
    end = max(p["end"] for p in parts)
    duration = max(end - start, 1e-9)
    cpu = sum(p["cpu"] for p in parts)
    return LoadResult(
        requests=sum(p["requests"] for p in parts),
        status_counts=dict(status),
        errors=dict(errors),
        duration=duration,
        per_connection=per_conn,
        starved_connections=sum(1 for n in per_conn if n == 0),
        reconnects=sum(p["reconnects"] for p in parts),
        histogram=hist,
        driver_cpu_seconds=cpu,
        driver_cpu_fraction=cpu / (duration * processes),
        cpus=pins,
        processes=processes,
        closed_idle=sum(p["closed_idle"] for p in parts),
        requests_sent=sum(p["requests_sent"] for p in parts),
        connections=connections,
        url=url,
    )
