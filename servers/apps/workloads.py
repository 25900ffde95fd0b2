"""Example workloads for the MPM advisor (``harness advise``, docs/advisor.md).

Two small WSGI applications whose nature is known, so the advisor can be shown
on contrasting workloads:

* :func:`cpu_app` -- CPU-heavy: every request spins until its thread has used
  :data:`CPU_US` microseconds of CPU time (``?us=N`` overrides, at most
  :data:`MAX_US`), then answers a short text.  It counts *CPU time*
  (``time.thread_time_ns``), as the ``BenchCPUWorkMicroseconds`` knob does, so a
  busy machine does not shorten the work; the loop is pure Python and holds the
  GIL, as a CPU-heavy handler would.
* :func:`legacy_app` -- not thread-safe: the non-ZTS "current request" pattern
  of :mod:`servers.apps.threadsafety` (``/ts/current``) on every path.  Each
  request stores its id in a module global, yields :data:`LEGACY_IO_MS` ms (its
  "I/O"), and reads the global back.  On prefork (one request per process) the
  value is always its own: 200.  On worker or event, a concurrent request in
  the same process overwrites it: the app notices and answers 500, so a load
  driver counts the corruption as non-2xx responses.

Serve one with ``python -m servers prefork --app servers.apps.workloads:legacy_app``
or give it to the advisor: ``harness advise --app servers.apps.workloads:cpu_app``.
The server answers ``/server-status`` in front of both (StatusLocation).
"""

from __future__ import annotations

import itertools
import os
import time
from urllib.parse import parse_qs


__all__ = ["CPU_US", "MAX_US", "LEGACY_IO_MS", "burn_cpu", "cpu_app", "legacy_app"]

#: CPU microseconds :func:`cpu_app` burns per request unless ``?us=N`` says otherwise
CPU_US = 2000
#: the most ``?us=N`` may ask for (one second of CPU)
MAX_US = 1_000_000
#: how long :func:`legacy_app` yields between writing and reading its global
LEGACY_IO_MS = 1.0

_current: object = None  # the legacy app's per-process "current request" (deliberately unsafe)
_ids = itertools.count()


def _text(start_response, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def burn_cpu(us: int) -> None:
    """Spin until the calling thread has used ``us`` more microseconds of CPU time."""
    end = time.thread_time_ns() + us * 1000
    while time.thread_time_ns() < end:
        pass


def _requested_us(environ) -> int:
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        us = int(qs.get("us", [str(CPU_US)])[0])
    except ValueError:
        us = CPU_US
    return min(max(us, 0), MAX_US)


def cpu_app(environ, start_response) -> list[bytes]:
    """CPU-heavy: burn ``CPU_US`` (or ``?us=N``) microseconds of CPU, then answer 200."""
    us = _requested_us(environ)
    burn_cpu(us)
    return _text(start_response, "200 OK", f"burnt {us} us of CPU\n")


def legacy_app(environ, start_response) -> list[bytes]:
    """Not thread-safe: a module-global "current request"; 500 when another request overwrote it."""
    global _current
    mine = (os.getpid(), next(_ids))
    _current = mine
    time.sleep(LEGACY_IO_MS / 1000)  # the request's I/O: another thread of this process runs meanwhile
    seen = _current
    if seen != mine:
        return _text(start_response, "500 Internal Server Error",
                     "request state overwritten by a concurrent request in this process "
                     "(this application is not thread-safe)\n")
    return _text(start_response, "200 OK", "legacy app: request state intact\n")
