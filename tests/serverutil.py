"""Helpers shared by the live-server tests: process tree, pids, scoreboard rows, a bounded load thread."""

from __future__ import annotations

import threading
import time

from .rawhttp import Conn, request

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GET_PID = b"GET /pid HTTP/1.1\r\nHost: a\r\n\r\n"


def children(h) -> list[int]:
    """PIDs of the server's children (the parent excluded)."""
    return h.pids()[1:]


def pid_of(port: int, conn: Conn | None = None) -> int:
    """PID of the process that answers /pid (on ``conn`` when given, else a new connection)."""
    if conn is None:
        return int(request(port, GET_PID).body)
    conn.send(GET_PID)
    return int(conn.read_response().body)


def try_pid(port: int) -> int | None:
    """pid_of, or None when the server did not answer."""
    try:
        return pid_of(port)
    except (OSError, ValueError):
        return None


def status_or_none(h):
    """The parsed /server-status?auto, or None while no worker can answer it."""
    try:
        return h.status()
    except Exception:
        return None


def row(st, pid: int, tpc: int) -> str | None:
    """The scoreboard characters of the thread slots of process ``pid`` (None if not listed)."""
    for p in st.processes_detail:
        if p["pid"] == pid:
            s = p["slot"]
            return st.scoreboard[s * tpc:(s + 1) * tpc]
    return None


def process(st, pid: int) -> dict | None:
    """The per-process line of the status report for ``pid``."""
    return next((p for p in st.processes_detail if p["pid"] == pid), None)


class Hammer(threading.Thread):
    """Sends requests back to back, a few per connection, bounded in count and time; records every failure."""

    def __init__(self, port: int, seconds: float, path: bytes = b"/") -> None:
        super().__init__(daemon=True)
        self.port, self.seconds, self.path = port, seconds, path
        self.ok = 0
        self.failures: list[str] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and not self.stop_flag.is_set() and self.ok < 100000:
            try:
                with Conn(self.port, timeout=10) as c:
                    for _ in range(3):
                        c.send(b"GET " + self.path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
                        r = c.read_response()
                        if r.status != 200:
                            self.failures.append(f"status {r.status}")
                        else:
                            self.ok += 1
                        if r.header("Connection") == "close":
                            break
            except Exception as exc:  # any reset, refusal or timeout is a failed request
                self.failures.append(repr(exc))
