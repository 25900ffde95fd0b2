"""The access log on live servers, for prefork, worker and event: lines, failures, rotation, reopening.

Every wait polls a condition with a deadline (a line is written just after its response
went out, so a test waits for it); every load is bounded in count and time, on loopback.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from servers.apps import app as builtin
from servers.config import load_config
from servers.mpm import MPM_NAMES
from servers.mpm.accesslog import AccessLog
from servers.mpm.child import ChildEnv, serve_context
from servers.mpm.log import ErrorLog
from servers.mpm.scoreboard import Scoreboard
from suites.probes import children
from suites.wire import Conn, request, wait_until

APP = "tests.wsgi_apps:app"
#: %t as mod_log_config writes it
CLF_TIME = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
#: two children (prefork: three) that share the log, so processes and threads write concurrently
POOLS = {
    "prefork": {"StartServers": 3, "MinSpareServers": 2, "MaxSpareServers": 5},
    "worker": {"StartServers": 2, "ThreadsPerChild": 4, "MinSpareThreads": 2, "MaxSpareThreads": 8,
               "MaxRequestWorkers": 16},
    "event": {"StartServers": 2, "ThreadsPerChild": 4, "MinSpareThreads": 2, "MaxSpareThreads": 12,
              "MaxRequestWorkers": 16},
}


def lines(path: Path) -> list[str]:
    """The log's lines; every one must be complete (the file ends with a newline)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    assert not data or data.endswith(b"\n"), f"{path} ends inside a line: {data[-80:]!r}"
    return data.decode("utf-8").splitlines()


def wait_lines(path: Path, n: int, timeout: float = 10.0) -> list[str]:
    """The log once it holds at least ``n`` lines."""
    return wait_until(lambda: (lambda got: got if len(got) >= n else None)(lines(path)), timeout,
                      what=f"{n} lines in {path}")


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_combined_lines(launch, tmp_path: Path, mpm: str) -> None:
    log = tmp_path / "access.log"
    h = launch(mpm, {"StartServers": 1, "CustomLog": f"{log} combined"}, app=APP)
    request(h.port, b'GET /?q=1 HTTP/1.1\r\nHost: a\r\nReferer: http://ref.test/\r\nUser-Agent: agent "x" \xe9\r\n'
                    b"Connection: close\r\n\r\n")
    wait_lines(log, 1)
    with Conn(h.port) as c:  # keep-alive, a chunked body, a HEAD, an application's 404
        for raw in (b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", b"HEAD /bytes/7 HTTP/1.1\r\nHost: a\r\n\r\n",
                    b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"):
            c.send(raw)
            c.read_response(head_only=raw.startswith(b"HEAD"))
    got = wait_lines(log, 4)
    assert len(got) == 4
    assert re.fullmatch(rf'127\.0\.0\.1 - - {CLF_TIME} "GET /\?q=1 HTTP/1\.1" 200 13 "http://ref\.test/" '
                        r'"agent \\"x\\" \\xe9"', got[0]), got[0]
    assert re.fullmatch(rf'127\.0\.0\.1 - - {CLF_TIME} "GET /stream HTTP/1\.1" 200 30 "-" "-"', got[1]), got[1]
    assert re.fullmatch(rf'127\.0\.0\.1 - - {CLF_TIME} "HEAD /bytes/7 HTTP/1\.1" 200 - "-" "-"', got[2]), got[2]
    assert re.fullmatch(rf'127\.0\.0\.1 - - {CLF_TIME} "GET /nope HTTP/1\.1" 404 \d+ "-" "-"', got[3]), got[3]


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_failures_and_refusals_are_logged(launch, tmp_path: Path, mpm: str) -> None:
    """An application's exception is a 500 line; a request refused before it was parsed a 400 line with
    "-" for the request, as httpd logs them; %X says how each connection ended."""
    log = tmp_path / "access.log"
    h = launch(mpm, {"StartServers": 1, "CustomLog": f"{log} '\"%r\" %>s %b %X %k %{{User-Agent}}i'"}, app=APP)
    # a line is written once its response went out: wait for each, so the order is the requests'
    assert request(h.port, b"GET /raise HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\n\r\n").status == 500
    wait_lines(log, 1)
    assert request(h.port, b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n").status == 400
    wait_lines(log, 2)
    with Conn(h.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert c.read_response().status == 200
    got = wait_lines(log, 4)
    assert re.fullmatch(r'"GET /raise HTTP/1\.1" 500 \d+ - 0 u', got[0]), got[0]
    assert re.fullmatch(r'"-" 400 \d+ - 0 -', got[1]), got[1]
    assert got[2:] == ['"GET / HTTP/1.1" 200 13 + 0 -', '"GET / HTTP/1.1" 200 13 - 0 -']


@pytest.mark.parametrize("logged", [False, True])
def test_without_customlog_the_request_path_is_untouched(tmp_path: Path, logged: bool) -> None:
    """No CustomLog: the serve context has no access log and the application is not wrapped, so a
    request costs one ``if`` more than before; with one, the application is timed (%t, %D)."""
    cfg = load_config("prefork", overrides={"CustomLog": f"{tmp_path / 'a.log'} common"} if logged else None)
    error_log = ErrorLog(None)
    access = AccessLog.open(cfg.CustomLog, error_log)
    env = ChildEnv(cfg=cfg, mpm="prefork", slot=0, generation=0, listeners=[], pod_fd=-1,
                   scoreboard=Scoreboard(1, 1), app=builtin, log=error_log, started=0.0, server_port=8080,
                   access_log=access)
    ctx = serve_context(env, 0, lambda: False, multithread=False)
    assert (ctx.access_log is access) and ((ctx.app is builtin) != logged)
    if access is not None:
        access.close()


class Load:
    """Threads sending requests with a unique X-Id each, three per connection; bounded in count and time."""

    def __init__(self, port: int, threads: int = 3, seconds: float = 20.0, most: int = 1500) -> None:
        self.port, self.seconds, self.most = port, seconds, most
        self.ids = itertools.count(1)
        self.ok: dict[int, float] = {}  # id -> when it was sent
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        sent = 0
        while not self.stop.is_set() and time.monotonic() < end and sent < self.most:
            try:
                with Conn(self.port, timeout=10) as c:
                    for _ in range(3):
                        rid, when = next(self.ids), time.monotonic()
                        sent += 1
                        c.send(b"GET /?r=%d HTTP/1.1\r\nHost: a\r\nX-Id: %d\r\n\r\n" % (rid, rid))
                        r = c.read_response()
                        if r.status == 200:
                            self.ok[rid] = when
                        if r.header("Connection") == "close":
                            break
            except Exception as exc:  # a refused or reset request: counted, not logged for sure
                self.failures.append(repr(exc))

    def ok_since(self, t: float) -> int:
        return sum(1 for when in list(self.ok.values()) if when >= t)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


LINE = re.compile(r"id=(\d+|-) pid=\d+ s=\d{3} q=(\?r=\d+|\S*)")


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_rotation_under_load_loses_and_tears_no_line(launch, tmp_path: Path, mpm: str) -> None:
    """Rename the log, -k graceful: the new generation writes to a new file while the old one finishes
    into the renamed file; across both, every answered request has exactly one whole line."""
    log, rotated = tmp_path / "access.log", tmp_path / "access.log.1"
    h = launch(mpm, {**POOLS[mpm], "CustomLog": f"{log} 'id=%{{X-Id}}i pid=%P s=%>s q=%q'"})
    load = Load(h.port)
    try:
        wait_until(lambda: len(load.ok) > 200, 10, what="load to start")
        os.rename(log, rotated)
        old = set(children(h))
        h.graceful()
        wait_until(lambda: not (set(children(h)) & old), 15, what="every old child to be replaced")
        replaced = time.monotonic()
        wait_until(lambda: load.ok_since(replaced) > 200, 10, what="requests after the restart")
    finally:
        load.finish()

    def logged() -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for name, path in (("old", rotated), ("new", log)):
            ids = []
            for text in lines(path):
                m = LINE.fullmatch(text)
                assert m, f"torn or mixed line in {path.name}: {text!r}"
                if m.group(1) != "-":
                    ids.append(int(m.group(1)))
            out[name] = ids
        return out

    wait_until(lambda: set(load.ok) <= set(sum(logged().values(), [])), 10, what="every answered request's line")
    got = logged()
    every = got["old"] + got["new"]
    assert len(every) == len(set(every)), "a request logged twice"
    assert set(every) <= set(range(1, next(load.ids)))
    after = {rid for rid, when in load.ok.items() if when >= replaced}
    assert after and after <= set(got["new"]), "a request of the new generation went to the rotated file"
    assert len(got["old"]) > 200


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_hard_restart_reopens_the_log(launch, tmp_path: Path, mpm: str) -> None:
    log = tmp_path / "access.log"
    h = launch(mpm, {"StartServers": 1, "CustomLog": f"{log} '%U'"})
    assert request(h.port, b"GET /before HTTP/1.1\r\nHost: a\r\n\r\n").status == 404
    wait_lines(log, 1)
    os.rename(log, tmp_path / "access.log.1")
    old = set(children(h))
    h.restart()
    wait_until(lambda: children(h) and not (set(children(h)) & old), 15, what="the new children")
    wait_until(lambda: request(h.port, b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n").status == 404, 10,
               what="an answer after the restart")
    assert wait_lines(log, 1) == ["/after"]
    assert lines(tmp_path / "access.log.1") == ["/before"]


def test_a_log_that_cannot_be_reopened_keeps_the_old_one(launch, tmp_path: Path) -> None:
    """On a graceful restart a CustomLog that cannot be opened is reported (AH00649) and the server
    goes on writing to the file it had, where httpd would stop."""
    log, rotated = tmp_path / "access.log", tmp_path / "access.log.1"
    h = launch("prefork", {"StartServers": 1, "CustomLog": f"{log} '%U'"})
    os.rename(log, rotated)
    log.mkdir()  # a directory cannot be opened for writing, even by root
    h.graceful()
    wait_until(lambda: "AH00649" in h.log_text(), 10, what="the reopen failure in the error log")
    assert "Is a directory" in h.log_text()
    assert request(h.port, b"GET /still HTTP/1.1\r\nHost: a\r\n\r\n").status == 404
    assert wait_lines(rotated, 1) == ["/still"]


def test_a_log_that_cannot_be_opened_stops_the_start(tmp_path: Path) -> None:
    """As httpd (AH00649): the server does not start without its access log."""
    target = tmp_path / "missing" / "access.log"
    out = subprocess.run([sys.executable, "-m", "servers", "prefork", "--listen", "127.0.0.1:0",
                          "--set", f"CustomLog={target} common"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert f"(2)No such file or directory: AH00649: could not open transfer log file {target}." in out.stderr
    assert "listening on" not in out.stdout


def test_stderr_target(launch) -> None:
    h = launch("event", {"StartServers": 1, "CustomLog": "stderr 'to-stderr %U %>s'"})
    assert request(h.port, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").status == 404
    wait_until(lambda: "to-stderr /x 404\n" in h.log_text(), 10, what="the line on stderr (the error.log file)")
