"""Idle keep-alive driver: open N connections, one request each, then hold them idle.

What it measures is the cost of *waiting* clients, the case the event MPM
exists for (httpd's event MPM documentation: an idle keep-alive connection
is parked in the listener instead of holding a worker).  Every connection
sends ``GET path`` with HTTP/1.1 keep-alive and reads the answer; then all
of them stay open and silent for ``duration`` seconds while the harness
samples the server's memory.  The runner divides the PSS growth by the
connections that were answered: PSS per idle connection.

A server that cannot serve them all at once (prefork with 50 children and
200 connections) leaves the rest unanswered within ``timeout``: they are
``starved_connections`` and ``ok`` is false -- that is a finding about the
MPM, recorded as such.  At the end it counts the connections the server had
already closed (``extra["closed_by_server"]``, e.g. by KeepAliveTimeout).

With ``probes=N`` it also asks whether a *new* client is still served fast
while the idle connections are held: during the hold, up to N requests from
new clients, one at a time (each its own connection, so the latency is the
server's, not a queue's), timed from connect to the whole answer
(``extra["probes"]``: sent, answered with a 2xx, failed, p50/p99/max ms).
A probe that gets no answer is a finding about the MPM (prefork with every
child pinned by an idle connection), not a driver error.

An ``https://`` URL holds TLS connections (``ssl_context``, or the system's
CAs when None): each completes its handshake (tlsconn.py) before its request,
inside the same ``timeout``; a refused handshake is an error of kind ``tls``
and its reason is ``extra["tls_error"]``. Probes are TLS too, so their
latency includes a handshake.

The driver's thread is pinned to ``cpus`` while it runs. Loopback only
unless ``any_host``; bounded by ``timeout + duration`` (probes: plus one ``timeout``).
"""

from __future__ import annotations

import errno
import os
import resource
import select
import selectors
import socket
import ssl
import time
from typing import Callable, Iterable

from .base import DriverResult, new_histogram
from .loadgen import _encode_request, _parse_head, _ProtocolError, parse_url
from .tlsconn import HandshakeError, TLSClient, client_for

__all__ = ["run_idle"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def _ensure_fd_limit(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` (up to the hard limit) when it is lower:
    a thousand idle connections do not fit the common default of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def _complete(buf: bytes) -> int | None:
    """The status of the answer in ``buf`` once its head and Content-Length body are whole, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    status, _, need, _ = _parse_head(buf[:end], False, True)
    return status if len(buf) - end - 4 >= need else None


def _probe(family: int, addr: tuple, request: bytes, timeout: float, tls: TLSClient | None) -> tuple[int, int]:
    """One new client: connect (and its TLS handshake), send ``request``, read its whole answer, close.

    Returns (status, microseconds from connect to the answer); OSError when it got none.
    """
    t0 = time.monotonic_ns()
    with socket.socket(family, socket.SOCK_STREAM) as raw:
        raw.settimeout(timeout)
        raw.connect(addr)
        s = raw if tls is None else tls.wrap_blocking(raw)
        s.sendall(request)
        buf = b""
        while (status := _complete(buf)) is None:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before an answer")
            buf += chunk
    return status, max(1, (time.monotonic_ns() - t0) // 1000)


def _run_probes(count: int, until: float, family: int, addr: tuple, request: bytes, timeout: float,
                tls: TLSClient | None) -> dict:
    """Up to ``count`` new clients, one at a time, until the monotonic time ``until``; their figures."""
    hist = new_histogram()
    sent = answered = failed = 0
    while sent < count and time.monotonic() < until:
        sent += 1
        try:
            status, us = _probe(family, addr, request, timeout, tls)
        except (OSError, _ProtocolError):
            failed += 1
            continue
        hist.record_value(us)
        answered += 200 <= status < 300
    empty = hist.get_total_count() == 0

    def ms(p: float) -> float | None:
        return None if empty else round(hist.get_value_at_percentile(p) / 1000, 3)

    return {"probes": count, "sent": sent, "answered": answered, "failed": failed,
            "p50_ms": ms(50), "p99_ms": ms(99), "max_ms": None if empty else round(hist.get_max_value() / 1000, 3)}


def run_idle(
    url: str,
    *,
    connections: int,
    duration: float,
    timeout: float = 5.0,
    on_hold: Callable[[int], None] | None = None,
    cpus: Iterable[int] | None = None,
    any_host: bool = False,
    probes: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> DriverResult:
    """Answer one request on each of ``connections`` connections, then hold them idle ``duration`` s.

    ``on_hold(answered)`` is called once every connection was answered (or
    ``timeout`` passed), just before the idle hold, so the caller can mark
    its memory sampler.  ``cpus`` pins the calling thread while the driver
    runs.  ``probes``: new clients served one at a time during the hold
    (module doc); their figures are ``extra["probes"]``. A non-loopback ``url`` raises
    ValueError unless ``any_host``. An ``https://`` ``url`` holds TLS connections made
    with ``ssl_context`` (None: ``ssl.create_default_context()``); for ``http://`` the
    context is ignored.
    """
    # any_host: the harness's choice for a server given as a URL; it runs this attack-like
    # driver against a non-loopback one only with the run's opt-in (matrix.ServerEntry.attack_refusal)
    family, addr, hosthdr, target, tls_host = parse_url(url, any_host=any_host)
    tls = client_for(tls_host, ssl_context)
    if connections < 1:
        raise ValueError("connections must be >= 1")
    if probes < 0:
        raise ValueError("probes must be >= 0")
    _ensure_fd_limit(connections + 64)
    request = _encode_request("GET", target, hosthdr, None, b"", True)
    pinned = sorted(set(cpus)) if cpus else None
    previous = os.sched_getaffinity(0)
    if pinned:
        os.sched_setaffinity(0, pinned)
    try:
        return _run(url, family, addr, request, connections, duration, timeout, on_hold, probes, pinned, tls)
    finally:
        if pinned:
            os.sched_setaffinity(0, previous)


def _shake(sel: selectors.BaseSelector, s, i: int, errors: dict[str, int], reasons: list[str]) -> str | None:
    """Advance connection ``i``'s TLS handshake on a selector event: None while it goes on,
    "done" (it waits, writable, to send its request) or "failed" (counted and unregistered)."""
    try:
        want = s.handshake()
    except HandshakeError as e:
        errors[e.kind] = errors.get(e.kind, 0) + 1
        if e.kind == "tls":
            reasons.append(str(e))
        sel.unregister(s)
        return "failed"
    sel.modify(s, selectors.EVENT_READ if want == select.EPOLLIN else selectors.EVENT_WRITE, i)
    return None if want else "done"


def _run(url: str, family: int, addr: tuple, request: bytes, connections: int, duration: float, timeout: float,
         on_hold: Callable[[int], None] | None, probes: int, pinned: list[int] | None,
         tls: TLSClient | None) -> DriverResult:
    cpu0 = _cpu()
    sel = selectors.DefaultSelector()
    socks: list[socket.socket | None] = []
    bufs: dict[int, bytes] = {}
    sent_ns: dict[int, int] = {}
    answered = [0] * connections
    status_counts: dict[int, int] = {}
    errors: dict[str, int] = {}
    hist = new_histogram()
    shaking: set[int] = set()  # TLS connections still in their handshake
    reasons: list[str] = []  # why handshakes failed
    start = time.monotonic()
    deadline = start + timeout
    for i in range(connections):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        if tls is not None:
            s = tls.wrap(s)
            shaking.add(i)
        rc = s.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS):
            errors["connect"] = errors.get("connect", 0) + 1
            s.close()
            socks.append(None)
            continue
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE, i)
    pending = sum(1 for s in socks if s is not None)
    try:
        while pending and time.monotonic() < deadline:
            for key, ev in sel.select(max(0.0, min(0.1, deadline - time.monotonic()))):
                i, s = key.data, key.fileobj
                if i in shaking:
                    state = _shake(sel, s, i, errors, reasons)
                    if state:
                        shaking.discard(i)
                        pending -= state == "failed"
                    continue
                try:
                    if ev & selectors.EVENT_WRITE:
                        s.send(request)  # a short request fits the empty send buffer
                        sent_ns[i] = time.monotonic_ns()
                        sel.modify(s, selectors.EVENT_READ, i)
                        continue
                    data = s.recv(65536)
                except BlockingIOError:
                    continue  # TLS: a record not whole yet, or a session ticket and no data
                except OSError:
                    data = b""
                if not data:
                    errors["closed_early"] = errors.get("closed_early", 0) + 1
                    sel.unregister(s)
                    pending -= 1
                    continue
                buf = bufs.get(i, b"") + data
                status = _complete(buf)
                if status is None:
                    bufs[i] = buf
                    continue
                bufs.pop(i, None)
                answered[i] = 1
                status_counts[status] = status_counts.get(status, 0) + 1
                hist.record_value(max(1, (time.monotonic_ns() - sent_ns[i]) // 1000))
                sel.unregister(s)
                pending -= 1
        # connections still unanswered are starved (a finding about the MPM: prefork holds one
        # child per connection), counted in starved_connections, not as errors
        n_answered = sum(answered)
        if on_hold is not None:
            on_hold(n_answered)
        hold_end = time.monotonic() + duration
        probed = _run_probes(probes, hold_end, family, addr, request, timeout, tls) if probes else None
        while time.monotonic() < hold_end:
            time.sleep(min(0.05, max(0.0, hold_end - time.monotonic())))
        closed = 0
        for i, s in enumerate(socks):
            if s is None or not answered[i]:
                continue
            try:  # a connection the server closed reads EOF (or a reset) at once; non-blocking since made
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        sel.close()
        for s in socks:
            if s is not None:
                s.close()
    elapsed = time.monotonic() - start
    cpu = _cpu() - cpu0
    return DriverResult(
        requests=n_answered, status_counts=status_counts, errors=errors, duration=elapsed,
        per_connection=answered, starved_connections=connections - n_answered, reconnects=0,
        histogram=hist, driver_cpu_seconds=cpu, driver_cpu_fraction=cpu / elapsed if elapsed > 0 else 0.0,
        cpus=pinned, connections=connections, requests_sent=len(sent_ns), url=url, driver="idle", mode="idle",
        extra={"closed_by_server": closed, "held_seconds": duration, **({"probes": probed} if probed else {}),
               **({"tls_error": reasons[0]} if reasons else {})},
    )
