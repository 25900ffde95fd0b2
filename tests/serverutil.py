"""Helpers shared by the live-server tests: process tree, pids, scoreboard rows, a bounded load thread."""

from __future__ import annotations

import os
import threading
import time

import psutil

# GET, children, status_or_none and crash_lines are re-exported: the live tests import them from here
from suites.probes import GET, children, crash_lines, status_or_none  # noqa: F401
from suites.wire import Conn, request, wait_until

#: one unit of service per MPM: one prefork child, one worker or event thread
ONE_UNIT = {
    "prefork": {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1, "MaxRequestWorkers": 1, "ServerLimit": 1},
    "worker": {"StartServers": 1, "ThreadsPerChild": 1, "MaxRequestWorkers": 1, "ServerLimit": 1,
               "MinSpareThreads": 1, "MaxSpareThreads": 1},
    "event": {"StartServers": 1, "ThreadsPerChild": 1, "MaxRequestWorkers": 1, "ServerLimit": 1,
              "MinSpareThreads": 1, "MaxSpareThreads": 1},
}
GET_PID = b"GET /pid HTTP/1.1\r\nHost: a\r\n\r\n"


def tree_pss(h) -> int:
    """Summed PSS of the server's processes, bytes (prefork children share pages: RSS would overstate)."""
    total = 0
    for pid in h.pids():
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total


def settled_pss(h, timeout: float = 20.0) -> int:
    """The tree's PSS once three samples 0.1 s apart agree within 1 MiB."""
    samples: list[int] = []

    def settled() -> bool:
        samples.append(tree_pss(h))
        return len(samples) >= 3 and max(samples[-3:]) - min(samples[-3:]) < 1 << 20

    wait_until(settled, timeout, interval=0.1, what="the server's PSS to settle")
    return samples[-1]


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


def check_graceful_restart_under_load(h, replace_timeout: float = 15.0) -> None:
    """USR1 while three Hammers send requests: every old child replaced, zero failures, generation + 1."""

    before = set(children(h))
    gen0 = h.status().generation
    hammers = [Hammer(h.port, 6) for _ in range(3)]
    for t in hammers:
        t.start()
    wait_until(lambda: all(t.ok > 20 for t in hammers), 10, what="load to start")
    h.graceful()
    wait_until(lambda: not (set(children(h)) & before), replace_timeout, what="every old child to be replaced")
    mid = sum(t.ok for t in hammers)
    wait_until(lambda: sum(t.ok for t in hammers) > mid + 50, 10, what="requests after the restart")
    for t in hammers:
        t.stop_flag.set()
        t.join(15)
    failures = [f for t in hammers for f in t.failures]
    assert not failures, failures[:5]
    assert h.status().generation == gen0 + 1


def request_in_background(port: int, raw: bytes) -> tuple[threading.Thread, dict]:
    """Send ``raw`` on a started thread: the result's ``r`` is the response, ``err`` the exception."""
    result: dict = {}

    def send() -> None:
        try:
            result["r"] = request(port, raw)
        except Exception as exc:
            result["err"] = exc

    t = threading.Thread(target=send)
    t.start()
    return t, result


def alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def check_winch_drains(h) -> None:
    """WINCH while a 700 ms request runs: it completes with 200, the server exits 0, nothing is left."""

    t, result = request_in_background(h.port, b"GET /sleep?ms=700 HTTP/1.1\r\nHost: a\r\n\r\n")
    # two W: the slow request and the status request itself (one W alone may be just the latter)
    wait_until(lambda: (lambda st: st is not None and st.scoreboard.count("W") >= 2)(status_or_none(h)), 5,
               what="the slow request to be running")
    h.graceful_stop()
    assert h.wait(15) == 0
    t.join(10)
    assert "err" not in result and result["r"].status == 200
    assert not os.path.exists(h.pidfile)  # graceful-stop removes the pidfile at once (httpd)
    assert h.pids() == []


def check_recycling_by_connection(h, budget: int = 3) -> None:
    """MaxConnectionsPerChild = ``budget``: a keep-alive connection counts once; no child serves more."""

    with Conn(h.port) as c:  # a keep-alive connection counts once, however many requests it carries
        assert len({pid_of(h.port, c) for _ in range(6)}) == 1
    served: dict[int, int] = {}
    for _ in range(3 * budget):
        pid = wait_until(lambda: try_pid(h.port), 5, what="an answer")
        served[pid] = served.get(pid, 0) + 1
    assert all(n <= budget for n in served.values()), served
    assert len(served) >= 3


def check_killed_child_replaced(h, children_expected: int = 2) -> None:
    """SIGKILL one child: it is logged, replaced at once, and the server keeps answering."""
    import signal


    wait_until(lambda: len(children(h)) == children_expected, 5, what=f"{children_expected} children")
    victim = children(h)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in children(h) and len(children(h)) == children_expected, 5,
               what="a replacement child")
    for _ in range(5):
        assert request(h.port, GET).status == 200
    assert f"child pid {victim} exit signal SIGKILL" in h.log_text()
