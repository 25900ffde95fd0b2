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
Loopback only; bounded by ``timeout + duration``.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import time
from typing import Callable, Iterable

from .base import DriverResult, new_histogram
from .loadgen import _encode_request, _parse_head, parse_loopback_url

__all__ = ["run_idle"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def run_idle(
    url: str,
    *,
    connections: int,
    duration: float,
    timeout: float = 5.0,
    on_hold: Callable[[int], None] | None = None,
    cpus: Iterable[int] | None = None,
) -> DriverResult:
    """Answer one request on each of ``connections`` connections, then hold them idle ``duration`` s.

    ``on_hold(answered)`` is called once every connection was answered (or
    ``timeout`` passed), just before the idle hold, so the caller can mark
    its memory sampler.  ``cpus`` is accepted for symmetry and ignored: the
    driver does almost nothing.
    """
    family, addr, hosthdr, target = parse_loopback_url(url)
    if connections < 1:
        raise ValueError("connections must be >= 1")
    request = _encode_request("GET", target, hosthdr, None, b"", True)
    cpu0 = _cpu()
    sel = selectors.DefaultSelector()
    socks: list[socket.socket | None] = []
    bufs: dict[int, bytes] = {}
    sent_ns: dict[int, int] = {}
    answered = [0] * connections
    status_counts: dict[int, int] = {}
    errors: dict[str, int] = {}
    hist = new_histogram()
    start = time.monotonic()
    deadline = start + timeout
    for i in range(connections):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
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
                try:
                    if ev & selectors.EVENT_WRITE:
                        s.send(request)  # a short request fits the empty send buffer
                        sent_ns[i] = time.monotonic_ns()
                        sel.modify(s, selectors.EVENT_READ, i)
                        continue
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    errors["closed_early"] = errors.get("closed_early", 0) + 1
                    sel.unregister(s)
                    pending -= 1
                    continue
                buf = bufs.get(i, b"") + data
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    bufs[i] = buf
                    continue
                status, _, need, _ = _parse_head(buf[:end], False, True)
                if len(buf) - end - 4 < need:
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
        while time.monotonic() < hold_end:
            time.sleep(min(0.05, max(0.0, hold_end - time.monotonic())))
        closed = 0
        for i, s in enumerate(socks):
            if s is None or not answered[i]:
                continue
            try:  # a connection the server closed reads EOF (or a reset) at once
                s.setblocking(False)
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
        cpus=None, connections=connections, requests_sent=len(sent_ns), url=url, driver="idle", mode="idle",
        extra={"closed_by_server": closed, "held_seconds": duration},
    )
