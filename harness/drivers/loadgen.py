"""Built-in fast HTTP/1.1 load driver: closed loop and open loop (fixed rate).

Why a driver of our own
-----------------------
The servers under test answer 3k-15k requests/s on this kind of machine.
locust saturates its own CPU near 2k req/s per process, so it would measure
itself.  This driver is a plain non-blocking socket loop (one ``select.epoll``
set per process, used directly rather than through ``selectors`` to save a
wrapper per event, so Linux only, like the CPU pinning; no threads, no
general HTTP parser: ``bytes.find`` on the response head).  On one core it
spends about 16 us of CPU per keep-alive request, user and kernel (it has
driven a trivial keep-alive server at 50-60k req/s here; wrk, in C, spends
about 12 us); a server that closes after
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
Headline latency must come from an open-loop run (below); treat a closed
loop's ``histogram`` as service time under saturation, not as user-visible
latency.

Open loop (``run_open_loop``)
-----------------------------
Requests arrive at a constant rate, as from an independent population of
clients: request i is *intended* at start + i / rate (with ``processes``
> 1, process k takes requests k, k + P, ... at rate / P, so they
interleave), and its latency runs from that intended time to the end of its
response, as wrk2 does it.  A stalled server therefore shows in the tail:
the requests that fell due during the stall are measured, not omitted.

It is the same loop as the closed one with a different scheduling rule.
HTTP/1.1 without pipelining carries one request at a time per connection,
so ``connections`` bounds the requests in flight.  Each wake-up (the epoll
timeout runs to the next intended time) sends every request that has
fallen due on an idle connection; one that falls due while every
connection is busy waits in the queue with its clock already running, is
sent by the next connection that frees up, and counts in ``late_sends``.
The queue is a counter, not a list: the schedule itself bounds the run at
ceil(duration x rate) requests (or ``max_requests``).  At the stop, the
requests that were due but never sent are counted as errors of kind
``unsent``, never dropped silently.  A connection slot that was never given
a request (rate x duration < connections) is not counted as starved.

The wake-up is not exact: ``epoll`` timeouts have millisecond granularity
(Python rounds up), so an on-time request is sent up to ~1 ms after its
intended time, more when the driver's CPU is busy.  That delay is part of
the measured latency (it errs towards overstating it) and is reported as
``extra["dispatch_lag_us"]`` (p50, p99, max over on-time sends).

Throughput over time
--------------------
``timeline`` counts the responses completed in each whole second since the
start (index = second); it sums to ``requests``.  It is bucketed once per
epoll batch, not per response.  The last bucket is usually a fraction of a
second: the stop and the drain.  Processes' timelines are added per index.

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
  response of a connection), ``protocol`` (unparseable response), ``tls``
  (an https handshake failed: certificate refused, no TLS spoken; the first
  reason is ``extra["tls_error"]``).

TLS (``https://``)
------------------
Each connection connects, then runs its TLS handshake on epoll events before
its first request (tlsconn.py: SNI and the certificate's name from the URL's
host, ``ssl_context`` or the system's CAs); a handshake not done within
``timeout`` is a ``connect_timeout``.  Handshaking connections live outside
the fd map of the request path, and the connect function is chosen once per
run, so plain http pays only a test per connect and per close.  TLS costs the driver a
handshake per new connection (about 0.75 ms of CPU here) and a few us per
keep-alive request: keep-alive amortises it, ``keep_alive=False`` mostly
measures handshakes.

Stopping
--------
The driver stops *sending* at ``duration`` or after ``max_requests``
requests, whichever comes first (open loop: or when the schedule is done).  Requests already in flight then get the
rest of their own ``timeout`` to complete: each one ends as a response
(counted in ``requests``, the histogram and ``per_connection``) or as a
``timeout`` error; none is silently dropped.  ``duration`` runs from the
start to the later of the stop moment and the last response, so a hung
connection in the drain does not dilute requests/s.  Slots that were still
connecting at the stop had no request in flight and are simply closed.

Safety
------
``http://`` and ``https://`` URLs (ports 80 and 443 by default).  By default
only loopback targets (127.0.0.0/8, ::1, ``localhost``) are
accepted and any other host raises ``ValueError``; ``any_host=True`` (the
harness, for a matrix server given as a URL: docs/harness.md) accepts any
host name or address, resolved once before the run.  Every run is bounded in time
(``duration`` + ``timeout`` for the drain) and in count (``max_requests``,
or ``duration * 200_000`` per process when it is not given; open loop: the
schedule, ceil(``duration`` x ``rate``)).
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
import ssl
import time
from typing import Iterable, Mapping, NamedTuple
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram

from .base import HIST_HIGHEST_US, HIST_LOWEST_US, DriverResult, new_histogram
from .tlsconn import HandshakeError, TLSClient, client_for

__all__ = ["LoadResult", "Target", "run_closed_loop", "run_open_loop", "new_histogram", "parse_url",
           "parse_url"]

# Largest response head accepted before calling the response a protocol error.
_MAX_HEAD = 64 * 1024
# Count bound when max_requests is not given: no Python client does 200k/s.
_MAX_RATE_BOUND = 200_000
# Backoff before retrying a failed connect on a slot.
_CONNECT_RETRY_S = 0.02
# Latencies are buffered and folded into the histogram in batches.
_FLUSH_EVERY = 65536
_RECV_SIZE = 256 * 1024
# Distinct response heads remembered, parsed, per loop (then the memo starts over).
_HEAD_CACHE = 256

# Response parser modes.
_HEAD, _BODY, _CHUNKED, _TRAILERS, _UNTIL_EOF = range(5)
# Slot states.
_IDLE, _OPEN = range(2)

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERR_HUP = select.EPOLLERR | select.EPOLLHUP


#: this driver's result (both modes) is the common driver result
LoadResult = DriverResult


# --------------------------------------------------------------------------
# target and request


class Target(NamedTuple):
    """Where a URL's requests go: socket address, Host header, request target, and for
    https the name TLS sends (SNI) and checks in the certificate (None for http)."""

    family: int
    addr: tuple
    hosthdr: str
    target: str
    tls_host: str | None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_url(url: str, *, any_host: bool = False) -> Target:
    """Split an ``http://`` or ``https://`` ``url`` (default port 80 or 443) into a Target.

    Raises ValueError for another scheme, or unless the host is a loopback
    address (127.0.0.0/8, ::1) or ``localhost``; with ``any_host`` any host,
    a name resolved here (the first address getaddrinfo gives).  The Host
    header is the URL's authority without userinfo (RFC 9110 section 7.2):
    the port only when the URL spells one.
    """
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None:
        raise ValueError(f"only http:// and https:// URLs are supported, got {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    try:
        given = parts.port
    except ValueError as e:
        raise ValueError(f"bad port in {url!r}: {e}") from None
    port = given or default
    ip = _address(url, host, port, any_host)
    if not ip.is_loopback and not any_host:
        raise ValueError(f"refusing {url!r}: {host} is not a loopback address")
    hosthdr = f"[{host}]" if ":" in host else host
    if given:
        hosthdr += f":{port}"
    if ip.version == 6:
        family, addr = socket.AF_INET6, (str(ip), port, 0, 0)
    else:
        family, addr = socket.AF_INET, (str(ip), port)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(family, addr, hosthdr, target, host if parts.scheme == "https" else None)


def _address(url: str, host: str, port: int, any_host: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address ``host`` names: a literal, ``localhost``, or (``any_host`` only) a name resolved once."""
    if host == "localhost":
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        if not any_host:
            raise ValueError(f"refusing {url!r}: the host must be a loopback address literal "
                             "(127.0.0.0/8, ::1) or localhost") from None
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r} in {url!r}: {e}") from None
    return ipaddress.ip_address(info[0][4][0])


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
        "resend", "connected", "idle",
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
        self.idle = False  # open loop: queued in the idle-connection deque


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
    rate: float | None = None,
    phase: float = 0.0,
    tls: TLSClient | None = None,
) -> dict:
    """Run the loop in the calling thread; return a picklable summary.

    ``rate`` None: closed loop.  Otherwise open loop at ``rate`` requests/s
    (this process's share), request i intended at start + phase + i / rate.
    ``tls``: connections are TLS (their handshake runs before the first request).
    """
    monotonic = time.monotonic
    now_ns = time.monotonic_ns
    is_open = rate is not None
    ep = select.epoll(max(connections, 1) + 1)
    poll = ep.poll
    ep_register = ep.register
    ep_modify = ep.modify
    ep_unregister = ep.unregister

    conns = [_Conn(i) for i in range(connections)]
    byfd: dict[int, _Conn] = {}
    # TLS connections in their handshake: not in byfd until it is done, so the
    # plain path's lookups stay as they were
    shaking: dict[int, _Conn] = {}
    tls_error = None  # the first failed handshake's reason
    per_conn = [0] * connections
    status_counts: dict[int, int] = {}
    errors: dict[str, int] = {}
    lat: list[int] = []
    lat_append = lat.append
    hist = new_histogram()
    counters = {"reconnects": 0, "closed_idle": 0}
    # parsed response heads: a server sends the same few heads over and over
    # (a Date field changes once a second), and parsing one costs ~1.5 us
    heads: dict[bytes, tuple] = {}
    if is_open:
        # The schedule is the bound: request i is intended at phase + i * period
        # for every i whose time falls inside the run.  Due-but-unsent requests
        # are a counter (next_i .. seen_due), never a growing list.
        period_ns = 1e9 / rate
        phase_ns = int(phase * 1e9)
        n_sched = max(0, math.ceil((duration * 1e9 - phase_ns) / period_ns))
        if max_requests is not None:
            n_sched = min(n_sched, max_requests)
        limit = n_sched
    else:
        limit = max_requests if max_requests is not None else int(duration * _MAX_RATE_BOUND) + connections
    idle: collections.deque = collections.deque()  # open loop: connections with nothing in flight
    used = [False] * connections  # open loop: slots that were given a request
    lags: list[int] = []  # open loop: dispatch lag (us) of on-time sends
    lag_hist = new_histogram()
    next_i = 0  # open loop: next request index to send
    seen_due = 0  # open loop: requests due as of the last scheduling pass
    late = 0
    base_ns = 0
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
        for v, c in collections.Counter(lags).items():
            lag_hist.record_value(min(max(v, HIST_LOWEST_US), HIST_HIGHEST_US), c)
        lags.clear()

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
            if shaking:
                shaking.pop(c.fd, None)
            c.sock.close()
        c.sock = None
        c.fd = -1
        c.state = _IDLE
        c.buf = b""
        c.mode = _HEAD
        c.inflight = False
        c.out = b""
        c.got_bytes = False

    def start_connect(c: _Conn, now: float, fds: dict[int, _Conn]) -> int | None:
        """Give slot ``c`` a new socket (TLS-wrapped for https), filed in ``fds``, and start its
        connect: connect_ex's result, or None when that failed (counted; the slot retries)."""
        try:
            s = _new_socket(family)
            if tls is not None:
                s = tls.wrap(s)
        except OSError:  # e.g. out of file descriptors
            err("connect")
            c.retry_at = now + _CONNECT_RETRY_S
            return None
        c.sock = s
        c.fd = fd = s.fileno()
        c.nsock = 0
        c.connected = False
        c.t0 = now  # a connect (https: and its handshake) is bounded by timeout
        fds[fd] = c
        rc = s.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS, errno.EAGAIN):
            fail(c, "connect", now)
            return None
        return rc

    def connect_tcp(c: _Conn, now: float):
        rc = start_connect(c, now, byfd)
        if rc is None:
            return
        # On loopback the handshake has normally completed inside connect()
        # even when it says EINPROGRESS, so the request is sent at once; if
        # the socket is not writable yet, send_next waits for EPOLLOUT.
        # This saves an epoll round trip per connection, which matters
        # against servers that close after every response.
        c.state = _OPEN
        c.connected = rc == 0
        ep_register(c.fd, _EPOLLIN)
        on_free(c, now)

    def connect_tls(c: _Conn, now: float):
        """connect_tcp() for https: start the TCP connect; shake() runs the handshake on its events."""
        if start_connect(c, now, shaking) is not None:
            ep_register(c.fd, _EPOLLOUT)

    def shake(c: _Conn, now: float):
        """Advance a TLS handshake on an epoll event; once done the connection takes its request."""
        nonlocal tls_error
        try:
            want = c.sock.handshake()
        except HandshakeError as e:
            if e.kind == "tls" and tls_error is None:
                tls_error = str(e)
            fail(c, e.kind, now)
            return
        if want:
            ep_modify(c.fd, want)
            return
        del shaking[c.fd]
        byfd[c.fd] = c
        c.state = _OPEN
        c.connected = True
        ep_modify(c.fd, _EPOLLIN)
        on_free(c, now)

    def reconnect(c: _Conn, now: float):
        nonlocal running
        drop(c)
        if running and sent >= limit:
            running = False  # no request left to send: do not open a connection
        if running:
            counters["reconnects"] += 1
            connect(c, now)

    def send_next(c: _Conn, now: float, t_ns: int = 0):
        """Send a request on an open connection (or stop, when no longer running).

        Its latency runs from ``t_ns`` (open loop: the intended send time),
        else from now."""
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
        c.sent_ns = t_ns if t_ns else now_ns()
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

    def open_free(c: _Conn, now: float):
        """Open loop: a connection can take a request (fresh, or its response is done).

        It takes the oldest request that is already queued -- one that fell
        due while every connection was busy, so a late send -- or waits in
        the idle deque for the next intended send time."""
        nonlocal next_i, late
        if c.resend:  # re-send after an unannounced close: same intended time
            send_next(c, now, c.sent_ns)
            return
        if not running:
            drop(c)
            return
        if next_i < seen_due:
            late += 1
            t = base_ns + int(next_i * period_ns)
            next_i += 1
            used[c.slot] = True
            send_next(c, now, t)
        elif not c.idle:
            c.idle = True
            idle.append(c)

    def dispatch(tnow: int, now: float):
        """Open loop: send every request whose intended time has come on idle connections."""
        nonlocal next_i, seen_due, late
        due = int((tnow - base_ns) // period_ns) + 1 if tnow >= base_ns else 0
        if due > n_sched:
            due = n_sched
        while next_i < due and idle:
            c = idle.popleft()
            c.idle = False
            if c.sock is None or c.inflight or c.resend:
                continue  # a stale entry: the slot moved on since it queued
            t = base_ns + int(next_i * period_ns)
            if next_i < seen_due:
                late += 1  # it fell due at an earlier pass, when no connection was free
            else:
                lags.append((tnow - t) // 1000)
            next_i += 1
            used[c.slot] = True
            send_next(c, now, t)
            if len(lags) >= _FLUSH_EVERY:
                flush()
            if c.buf and c.inflight:
                # bytes that arrived while the connection was idle answer this request
                data = c.buf
                c.buf = b""
                try:
                    feed(c, data, tnow, now)
                except _ProtocolError:
                    fail(c, "protocol", now)
        seen_due = due

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
                on_free(c, now)
                if not c.inflight:
                    # open loop, nothing due: keep the bytes for the next request
                    c.buf = data[pos:] if is_open and c.sock is sock else b""
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
                head = data[pos:i]
                parsed = heads.get(head)
                if parsed is None:
                    parsed = _parse_head(head, head_only, keep_alive)  # raises on a bad head: never cached
                    if len(heads) >= _HEAD_CACHE:
                        heads.clear()
                    heads[head] = parsed
                c.status, mode, c.need, c.close = parsed
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
                        on_free(c, now)
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
                    on_free(c, now)
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
                    on_free(c, now)
                continue
            if mode == _UNTIL_EOF:
                pos = end  # body runs to EOF
                break
        c.buf = data[pos:] if pos < end else b""

    on_free = open_free if is_open else send_next
    connect = connect_tcp if tls is None else connect_tls  # chosen once per run
    tick = min(0.05, timeout / 4)
    # timeline: responses completed per whole second, counted once per poll
    # batch (not per response) to keep the hot path as it was
    timeline = [0] * (int(duration + timeout + 2 * tick) + 3)
    tl_last = len(timeline) - 1
    counted = 0

    cpu0 = _cpu_now()
    start_ns = now_ns()
    start = start_ns / 1e9
    base_ns = start_ns + (phase_ns if is_open else 0)
    last_done = start_ns
    stop_at = start + duration
    for c in conns:
        connect(c, start)
    next_tick = start + tick
    stopped_at = None
    drain_until = None

    while True:
        now = monotonic()
        if running:
            if is_open:
                dispatch(now_ns(), now)
            if now >= stop_at or sent >= limit:
                running = False
        if not running and stopped_at is None:
            stopped_at = now
            drain_until = now + timeout + tick
            if is_open and next_i < n_sched:
                # due (the run got to their intended time) but never sent:
                # every connection stayed busy, or none could connect
                errors["unsent"] = n_sched - next_i
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
            if shaking:  # TLS handshakes that did not finish in time
                for c in [c for c in shaking.values() if now - c.t0 >= timeout]:
                    fail(c, "connect_timeout", now)
        wait = (next_tick if running else min(next_tick, drain_until)) - now
        if running:
            wait = min(wait, stop_at - now)
            if is_open and seen_due < n_sched:  # wake at the next intended send time
                wait = min(wait, (base_ns + seen_due * period_ns) / 1e9 - now)
        events = poll(max(wait, 0.0))
        if not events:
            continue
        tnow = now_ns()
        now = monotonic()
        for fd, ev in events:
            c = byfd.get(fd)
            if c is None:
                c = shaking.get(fd)
                if c is not None:
                    shake(c, now)
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
        if completed != counted:
            i = (tnow - start_ns) // 1_000_000_000
            timeline[i if i < tl_last else tl_last] += completed - counted
            counted = completed

    end_t = monotonic()
    for c in conns:
        if c.inflight or c.resend:
            # only a request re-sent after an unannounced close late in the
            # drain (its new connection still in a TLS handshake, or not
            # made), or timer granularity, gets here
            err("timeout")
        drop(c)
    ep.close()
    flush()
    cpu1 = _cpu_now()
    stopped_at = stopped_at if stopped_at is not None else end_t
    finish = max(stopped_at, last_done / 1e9)
    if completed != counted:  # completions outside a poll batch (leftover bytes parsed at a dispatch)
        i = (last_done - start_ns) // 1_000_000_000
        timeline[min(max(i, 0), tl_last)] += completed - counted
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
        "timeline": _fold_timeline(timeline, finish - start),
        "late_sends": late,
        "used": used if is_open else None,
        "lag_hist": lag_hist.encode() if is_open else None,
        "tls_error": tls_error,
    }


def _new_socket(family: int) -> socket.socket:
    """A non-blocking TCP socket with Nagle off: requests leave at once."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _fold_timeline(buckets: list[int], seconds: float, shift: int = 0, out: list[int] | None = None) -> list[int]:
    """Add ``buckets`` (shifted by ``shift`` whole seconds) into ``out``, or a new list.

    A new list has ceil(``seconds``) buckets (at least 1); whatever falls
    beyond the last bucket of ``out`` is added to it, so the sum is kept."""
    if out is None:
        out = [0] * max(1, math.ceil(seconds))
    last = len(out) - 1
    for i, v in enumerate(buckets):
        if v:
            out[min(i + shift, last)] += v
    return out


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
    any_host: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> LoadResult:
    """Drive ``url`` with ``connections`` closed-loop connections for ``duration`` s.

    ``processes`` > 1 forks that many driver processes (call this before the
    caller starts threads), each with its share of the connections, pinned
    round-robin to ``cpus`` when given; their histograms are added, never
    averaged.  With one process, the calling thread runs the loop, pinned to
    ``cpus[0]`` for the run when ``cpus`` is given (previous affinity restored).
    ``max_requests`` bounds the total requests sent over all processes.
    An ``https://`` ``url`` runs every connection over TLS with ``ssl_context``
    (None: ``ssl.create_default_context()``, the system's CAs); for ``http://``
    the context is ignored.  A failed handshake is an error of kind ``tls``.
    """
    return _run(url, None, connections, duration, method, headers, body, processes, timeout,
                keep_alive, cpus, max_requests, any_host, ssl_context)


def run_open_loop(
    url: str,
    *,
    rate: float,
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
    any_host: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> LoadResult:
    """Send ``rate`` requests/s to ``url`` for ``duration`` s, whatever the server does.

    Request i is intended at start + i / ``rate`` (each of ``processes``
    takes every processes-th one); its latency runs from that intended time
    to the end of its response.  ``connections`` bounds the requests in
    flight (one per connection, no pipelining): a request due while every
    connection is busy waits, its clock running, and counts in
    ``late_sends``; one still waiting at the stop is an ``unsent`` error.
    The other arguments are those of :func:`run_closed_loop`.
    """
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError("rate must be a positive number of requests/s")
    return _run(url, float(rate), connections, duration, method, headers, body, processes, timeout,
                keep_alive, cpus, max_requests, any_host, ssl_context)


def _run(url, rate, connections, duration, method, headers, body, processes, timeout, keep_alive,
         cpus, max_requests, any_host=False, ssl_context=None) -> LoadResult:
    family, addr, hosthdr, target, tls_host = parse_url(url, any_host=any_host)
    # forked processes inherit the context (fork, no pickling); OpenSSL 1.1.1+ reseeds per process
    tls = client_for(tls_host, ssl_context)
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
        duration=duration, timeout=timeout, keep_alive=keep_alive, tls=tls,
    )
    # open loop: process k sends global requests k, k + P, k + 2P, ... so
    # the processes interleave, each at rate / P
    sched = [{} if rate is None else {"rate": rate / processes, "phase": k / rate} for k in range(processes)]
    counts = _split(connections, processes)
    if processes == 1:
        prev = None
        if pins is not None:
            prev = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {pins[0]})
        try:
            parts = [_run_loop(connections=connections, max_requests=max_requests, **sched[0], **common)]
        finally:
            if prev is not None:
                os.sched_setaffinity(0, prev)
    else:
        limits: list[int | None] = [None] * processes
        if max_requests is not None:
            if max_requests < processes:
                raise ValueError("max_requests must be >= processes")
            limits = _split(max_requests, processes)
        jobs = [dict(connections=n, max_requests=m, **sc, **common) for n, m, sc in zip(counts, limits, sched)]
        parts = _run_forked(jobs, pins, duration, timeout)
    return _merge(parts, url, connections, processes, pins, rate)


def _merge(parts: list[dict], url: str, connections: int, processes: int, pins, rate: float | None) -> LoadResult:
    hist = new_histogram()
    lag = new_histogram()
    status: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    per_conn: list[int] = []
    used: list[bool] = []
    for p in parts:
        hist.add(HdrHistogram.decode(p["hist"]))
        if p["lag_hist"] is not None:
            lag.add(HdrHistogram.decode(p["lag_hist"]))
        status.update(p["status_counts"])
        errors.update(p["errors"])
        per_conn.extend(p["per_connection"])
        used.extend(p["used"] if p["used"] is not None else [True] * len(p["per_connection"]))
    start = min(p["start"] for p in parts)
    end = max(p["end"] for p in parts)
    duration = max(end - start, 1e-9)
    cpu = sum(p["cpu"] for p in parts)
    # timelines: each process counted from its own start; they started
    # together on the "go" byte, so whole-second shifts are normally 0
    timeline = [0] * max(1, math.ceil(duration))
    for p in parts:
        _fold_timeline(p["timeline"], 0, int(p["start"] - start), timeline)
    extra = {}
    tls_errors = [p["tls_error"] for p in parts if p["tls_error"]]
    if tls_errors:
        extra["tls_error"] = tls_errors[0]  # why handshakes failed (e.g. the certificate check)
    if rate is not None:
        n = lag.get_total_count()
        # the driver's own delay in sending on-time requests (timer granularity,
        # its CPU): open-loop latency includes it, so it is reported
        extra["dispatch_lag_us"] = {
            "count": n,
            "p50": float(lag.get_value_at_percentile(50)) if n else 0.0,
            "p99": float(lag.get_value_at_percentile(99)) if n else 0.0,
            "max": lag.get_max_value() if n else 0,
        }
    return LoadResult(
        requests=sum(p["requests"] for p in parts),
        status_counts=dict(status),
        errors=dict(errors),
        duration=duration,
        per_connection=per_conn,
        # open loop: a slot never given a request (rate x duration < connections) is not starved
        starved_connections=sum(1 for n, u in zip(per_conn, used) if n == 0 and u),
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
        mode="closed" if rate is None else "open",
        target_rate=rate,
        timeline=timeline,
        late_sends=sum(p["late_sends"] for p in parts),
        extra=extra,
    )
