"""Scoreboard states over time: ``/server-status?auto`` polled while a profile runs.

httpd's mod_status prints one scoreboard character per worker slot
(``_`` waiting, ``S`` starting, ``R`` reading, ``W`` sending reply, ``K``
keep-alive read, ``D`` DNS, ``C`` closing, ``L`` logging, ``G`` gracefully
finishing, ``I`` idle cleanup, ``.`` open slot; mod_status docs, "Machine
Readable Status File"); the event MPM adds ``ConnsAsyncKeepAlive`` and
``ConnsAsyncClosing``: connections parked in the listener, which hold no worker.
Our servers print the same report, so one poller serves ours and Apache.

:class:`ScoreboardPoller` runs in a thread beside the load driver, polls
about four times a second with a short timeout (a poll waits for a free
worker like any request, so on a saturated prefork some polls miss, and the
misses are counted), and folds each report into four worker states: **busy**
(R W S D L I), **idle** (_), **keepalive** (K, a worker held by an idle
connection) and **closing** (C G), plus the listener's parked connections.
A server without a status page (gunicorn) is polled once and recorded as
unavailable.  Polling costs a few requests a second, against thousands.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from servers.statusclient import parse_auto

__all__ = ["STATES", "ScoreboardPoller", "fold"]

#: worker state -> the scoreboard characters counted in it
STATES: dict[str, str] = {"busy": "RWSDLI", "idle": "_", "keepalive": "K", "closing": "CG"}


def fold(scoreboard: str) -> dict[str, int]:
    """Count a scoreboard string's characters into the four worker states (open slots ``.`` left out)."""
    return {state: sum(scoreboard.count(c) for c in chars) for state, chars in STATES.items()}


class ScoreboardPoller:
    """Poll ``url + /server-status?auto`` every ``interval`` seconds in a thread until :meth:`stop`.

    The polling loop is bounded by ``max_seconds`` whatever happens, so a
    forgotten poller cannot send traffic for ever.
    """

    def __init__(self, url: str, *, interval: float = 0.25, timeout: float = 1.0, max_seconds: float = 3600.0):
        self.url = url.rstrip("/") + "/server-status?auto"
        self.interval = interval
        self.timeout = timeout
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a sample is appended to every column at once, copied whole
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.columns: dict[str, list] = {k: [] for k in ("t", *STATES, "async_keepalive", "async_closing")}
        self.misses = 0
        self.unavailable = ""

    def start(self) -> "ScoreboardPoller":
        """Start polling now (``t`` of the samples counts from here)."""
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="scoreboard-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        """Stop, wait for the thread (at most one poll timeout) and return :meth:`to_dict`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1.0)
        return self.to_dict()

    def to_dict(self) -> dict:
        """Columnar samples (``t`` in seconds from the start), ``misses`` and ``unavailable`` (a reason or "")."""
        with self._lock:
            return {**{k: list(v) for k, v in self.columns.items()}, "misses": self.misses,
                    "unavailable": self.unavailable, "states": dict(STATES)}

    def _loop(self) -> None:
        deadline = self._t0 + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            if not self._poll_once():
                return
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def _poll_once(self) -> bool:
        """One poll; False when the server has no status page (stop polling).

        "No status page" is judged on an answer, not on the first poll: a
        first poll that times out under load is a miss, and a 404 after it
        (gunicorn) still ends the polling with its reason.  A server that
        answered status reports before and then an error is counted as a miss.
        """
        first = not self.columns["t"]
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            if first:
                self.unavailable = f"/server-status?auto answered {e.code}"
                return False
            self.misses += 1
            return True
        except OSError:  # timeouts, resets: the server was too busy to answer this poll
            self.misses += 1
            return True
        report = parse_auto(body.decode("latin-1"))
        if not report.scoreboard:
            if first:
                self.unavailable = "/server-status?auto has no Scoreboard line"
                return False
            self.misses += 1
            return True
        sample = {"t": round(time.monotonic() - self._t0, 3), **fold(report.scoreboard),
                  "async_keepalive": report.conns_async_keep_alive, "async_closing": report.conns_async_closing}
        with self._lock:
            for k, v in sample.items():
                self.columns[k].append(v)
        return True
