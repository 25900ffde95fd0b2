"""Probes of a running server the launcher started: its children, its status, its crashes.

Checks a suite, a live test or the reliability benchmark makes of a launcher ``Handle`` (one
of our MPMs or a reference server) around a run:

* :func:`children`: the pids of its children (httpd's parent process excluded);
* :func:`status_or_none`: its ``/server-status?auto`` (mod_status), or None while it cannot
  answer (every worker busy, a restart under way);
* :func:`crash_lines`: the error-log lines a healthy server never writes (a child's signal
  death, httpd's "child pid N exit signal ..." (AH00052), or an exception that escaped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servers.launcher import Handle
    from servers.statusclient import StatusReport

#: a request every server answers 200 (the built-in app's hello)
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

#: lines a healthy server never writes to its error log (a crash, an escaped exception)
CRASH_MARKS = ("exit signal", "child failed", "uncaught", "Traceback", "application error")


def children(h: Handle) -> list[int]:
    """PIDs of the server's children (the parent excluded)."""
    return h.pids()[1:]


def status_or_none(h: Handle, timeout: float = 5.0) -> StatusReport | None:
    """The parsed ``/server-status?auto``, or None while no worker can answer it."""
    try:
        return h.status(timeout)
    except Exception:  # refused, timed out, not 200: "no answer now" is what the caller polls for
        return None


def crash_lines(h: Handle) -> list[str]:
    """Error-log lines that show a child died or an exception escaped somewhere."""
    return [line for line in h.log_text().splitlines() if any(m in line for m in CRASH_MARKS)]
