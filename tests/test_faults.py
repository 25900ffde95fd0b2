"""Fault injection on all three MPMs (issue 8): what breaks stays contained.

* **SIGKILL of a child under load**: only the requests on that child's connections may
  fail; it is logged (httpd's AH00052) and replaced; every other connection keeps being
  served (benchmarks/reliability.py measures the time to the replacement);
* **SIGKILL of the parent**: the children exit on their own (PR_SET_PDEATHSIG), even one in
  the middle of a request; nothing of the server is left running;
* **applications that fail**: one that raises before its response (500, RFC 9110
  §15.6.1), during its body (the response is cut: the client sees it end early), in its
  iterable's ``close()`` after a complete response (logged; the client keeps its answer),
  one that returns ``str`` instead of bytes or never calls start_response (500): the unit
  keeps serving and the error log has the traceback;
* **an application that blocks for ever**: on worker and event the watchdog answers 504 at
  Timeout (httpd's answer when a script gives no output, util_script.c) or cuts a response
  already begun, the child's other threads keep serving meanwhile, and the child retires
  and is replaced (its exit is what ends the hung thread: docs/reliability.md); on prefork,
  as in httpd, the hung child holds only its own connection and the others serve;
* **a full disk**: an ErrorLog on /dev/full (every write ENOSPC) changes nothing for the
  clients; a PidFile that cannot be written (a file size limit of 0: EFBIG; a missing
  directory; a FIFO) is httpd's AH00099 and exit status 1, nothing left behind;
* **a port already in use**: a clear error (httpd's AH00072), exit status 1, no process left.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from servers.launcher import child_env

from . import wsgi_apps
from suites.wire import Conn, request, wait_until
from .serverutil import GET, GET_PID, children, pid_of, status_or_none

MPMS = ["prefork", "worker", "event"]
APP = "tests.test_faults:app"
#: how long /hang blocks: "for ever" as far as the tests go, yet bounded (no leaked process)
HANG_SECONDS = 60


class BrokenClose:
    """An iterable whose close() raises after the whole body was sent."""

    def __init__(self) -> None:
        self.parts = [b"complete"]

    def __iter__(self):
        return iter(self.parts)

    def close(self) -> None:
        raise RuntimeError("deliberate error in close()")


def app(environ, start_response):
    """tests.wsgi_apps.app plus the failure modes this module injects."""
    path = environ["PATH_INFO"]
    if path == "/raise-mid":
        def body():
            yield b"first part;"
            raise RuntimeError("deliberate error in the middle of the body")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    if path == "/close-raises":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
        return BrokenClose()
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text, not bytes"]
    if path == "/no-start-response":
        return [b"no head"]
    if path == "/hang":
        threading.Event().wait(HANG_SECONDS)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"late"]
    if path == "/hang-after-head":
        def body():
            yield b"head and a first part;"
            threading.Event().wait(HANG_SECONDS)
            yield b"late"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    return wsgi_apps.app(environ, start_response)


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- a child killed under load ------------------------------------------------------------------

POOLS = {
    "prefork": {"StartServers": 4, "MinSpareServers": 1, "MaxSpareServers": 4, "MaxRequestWorkers": 4,
                "ServerLimit": 4},
    "worker": {"StartServers": 2, "ThreadsPerChild": 4, "MaxRequestWorkers": 8, "ServerLimit": 3,
               "MinSpareThreads": 1, "MaxSpareThreads": 8},
    "event": {"StartServers": 2, "ThreadsPerChild": 4, "MaxRequestWorkers": 8, "ServerLimit": 3,
              "MinSpareThreads": 1, "MaxSpareThreads": 8},
}


class PidClient(threading.Thread):
    """Asks /pid over and over on one keep-alive connection at a time, so each failure can be
    blamed on the child that held the connection (None: no answer on it yet)."""

    def __init__(self, port: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.answers = 0
        self.pids: set[int] = set()
        self.failures: list[tuple[int | None, float]] = []  # (child the connection was on, when opened)
        self.stop = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < end and self.answers < 100000:
            opened = time.monotonic()
            owner = None
            try:
                with Conn(self.port, timeout=10) as c:
                    while not self.stop.is_set() and time.monotonic() < end:
                        c.send(GET_PID)
                        r = c.read_response()
                        owner = int(r.body)
                        self.pids.add(owner)
                        self.answers += 1
                        if r.header("Connection") == "close":
                            break
            except (OSError, ValueError):
                self.failures.append((owner, opened))


@pytest.mark.parametrize("mpm", MPMS)
def test_sigkill_of_a_child_under_load_fails_only_its_own_requests(launch, mpm):
    h = launch(mpm, {**POOLS[mpm], "MaxKeepAliveRequests": 0, "KeepAliveTimeout": 10}, app=APP)
    n = POOLS[mpm]["StartServers"]
    wait_until(lambda: len(children(h)) == n, 10, what=f"{n} children")
    clients = [PidClient(h.port, 30) for _ in range(n if mpm == "prefork" else 6)]
    for c in clients:
        c.start()
    try:
        wait_until(lambda: all(c.answers > 5 for c in clients), 15, what="every client to be served")
        victim = next(iter(clients[0].pids))
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: victim not in children(h) and len(children(h)) == n, 10, what="a replacement child")
        replaced = time.monotonic()
        counts = [c.answers for c in clients]
        wait_until(lambda: all(c.answers > k + 5 for c, k in zip(clients, counts)), 15,
                   what="every client to be served again, by the survivors or the replacement")
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(15)
    failures = [f for c in clients for f in c.failures]
    assert failures, "the victim's connections must have seen the kill"
    for owner, opened in failures:
        # only the victim's connections, or one opened before the replacement that the victim
        # may have accepted before it died, may fail
        assert owner == victim or (owner is None and opened < replaced), (owner, opened - killed, victim)
    assert f"child pid {victim} exit signal SIGKILL (9)" in h.log_text()
    assert request(h.port, GET).status == 200


# -- the parent killed ----------------------------------------------------------------------------


@pytest.mark.parametrize("mpm", MPMS)
def test_sigkill_of_the_parent_leaves_no_child_behind(launch, mpm):
    h = launch(mpm, {"StartServers": 2}, app=APP)
    wait_until(lambda: len(children(h)) == 2, 10, what="two children")
    tree = h.pids()
    busy: dict = {}

    def slow() -> None:
        try:
            busy["r"] = request(h.port, b"GET /sleep?ms=20000 HTTP/1.1\r\nHost: a\r\n\r\n", timeout=30)
        except OSError as exc:
            busy["err"] = exc

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    wait_until(lambda: (lambda s: s is not None and s.scoreboard.count("W") >= 2)(status_or_none(h)), 10,
               what="a request in progress")
    os.kill(h.pid, signal.SIGKILL)
    h.wait(10)
    wait_until(lambda: all(_gone(p) for p in tree), 10, what="every child to exit after its parent")
    t.join(15)
    assert "err" in busy  # the request in progress ended with its child: no orphan finished it
    # (not "nothing listens on the port": once free, another test's server may take it)


# -- applications that fail ------------------------------------------------------------------------


@pytest.mark.parametrize("mpm", MPMS)
def test_failing_applications_are_contained(launch, mpm):
    h = launch(mpm, {"StartServers": 1, "MaxSpareServers": 2, "MaxSpareThreads": 50}, app=APP)
    before = children(h)
    # raises before its response: 500 and a close
    r = request(h.port, b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.status == 500 and r.header("Connection") == "close"
    # str instead of bytes, no start_response: nothing was sent, so a 500
    assert request(h.port, b"GET /str-body HTTP/1.1\r\nHost: a\r\n\r\n").status == 500
    assert request(h.port, b"GET /no-start-response HTTP/1.1\r\nHost: a\r\n\r\n").status == 500
    # raises in the middle of its body: the head is out, so the response is cut (the client
    # sees the chunked body end without its last chunk) and the connection closed
    with Conn(h.port) as c:
        c.send(b"GET /raise-mid HTTP/1.1\r\nHost: a\r\n\r\n")
        with pytest.raises(ConnectionError):
            c.read_response()
    # close() raises after a complete response: the client has its whole answer, and the
    # connection stays usable (the response was correctly framed; the error is logged)
    with Conn(h.port) as c:
        c.send(b"GET /close-raises HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"complete"
        c.send(GET)
        assert c.read_response().status == 200
    assert request(h.port, GET).status == 200
    assert children(h) == before  # no child died
    log = h.log_text()
    for what in ("deliberate application error", "deliberate error in the middle of the body",
                 "deliberate error in close()", "start_response"):
        assert what in log, what
    assert "uncaught" not in log and "exit signal" not in log


# -- an application that never returns --------------------------------------------------------------

ONE_CHILD = {"StartServers": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 4, "ServerLimit": 2,
             "MinSpareThreads": 1, "MaxSpareThreads": 4}


@pytest.mark.parametrize("mpm", ["worker", "event"])
def test_a_hung_application_is_answered_at_timeout_and_its_child_replaced(launch, mpm):
    h = launch(mpm, {**ONE_CHILD, "Timeout": 1}, app=APP)
    wait_until(lambda: len(children(h)) == 1, 10, what="one child")
    first = children(h)[0]
    hung: dict = {}

    def ask(path: bytes, key: str) -> None:
        try:
            with Conn(h.port, timeout=20) as c:
                c.send(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
                hung[key] = c.read_response()
                hung[key + "-closed"] = c.closed_by_peer(10)
        except (OSError, ValueError) as exc:
            hung[key] = exc

    t = threading.Thread(target=ask, args=(b"/hang", "hang"), daemon=True)
    t.start()
    # the hung request holds a thread, shown busy in the scoreboard: W, and W for the status request
    wait_until(lambda: (lambda s: s is not None and s.scoreboard.count("W") >= 2)(status_or_none(h)), 10,
               what="the hung request to hold its thread")
    # the child's other thread keeps serving while the first one hangs
    assert pid_of(h.port) == first
    assert "hang" not in hung
    t.join(20)
    r = hung["hang"]
    assert not isinstance(r, Exception), r
    assert r.status == 504 and r.header("Connection") == "close" and hung["hang-closed"]
    # the child retires (its exit ends the hung thread) and a new one serves
    wait_until(lambda: first not in children(h) and children(h), 15, what="the child to be replaced")
    assert request(h.port, GET).status == 200
    assert "no output from the application" in h.log_text()
    # a response already begun is cut instead
    t = threading.Thread(target=ask, args=(b"/hang-after-head", "cut"), daemon=True)
    t.start()
    t.join(20)
    assert isinstance(hung["cut"], ConnectionError), hung["cut"]
    assert request(h.port, GET).status == 200
    log = h.log_text()
    assert "uncaught" not in log and "exit signal" not in log


def test_a_hung_application_on_prefork_holds_only_its_child(launch):
    """prefork has no watchdog, as httpd's prefork: the hung child keeps its connection;
    the other children serve everyone else."""
    h = launch("prefork", {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 3, "Timeout": 1}, app=APP)
    c = Conn(h.port, timeout=30)
    try:
        c.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_until(lambda: (lambda s: s is not None and s.scoreboard.count("W") >= 2)(status_or_none(h)), 10,
                   what="the hung request to hold its child")
        for _ in range(5):
            assert request(h.port, GET).status == 200
    finally:
        c.close()


# -- a full disk, an unwritable pidfile, a port in use ------------------------------------------------


def run_server(mpm: str, *args: str, fsize: int | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """``python -m servers MPM ARGS`` in the foreground, expected to refuse to start."""
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "servers", mpm, "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=timeout, env=child_env(), preexec_fn=limit,
                          start_new_session=True)


@pytest.mark.parametrize("mpm", MPMS)
def test_error_log_on_a_full_disk_changes_nothing_for_clients(launch, mpm, tmp_path):
    """/dev/full: every write fails with ENOSPC. httpd ignores a failed log write; so do we:
    application errors are still answered 500 and the children live on."""
    h = launch(mpm, {"StartServers": 1, "ErrorLog": "/dev/full", "LogLevel": "debug"}, app=APP)
    before = children(h)
    for _ in range(3):
        assert request(h.port, b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n").status == 500
        assert request(h.port, GET).status == 200
    assert children(h) == before
    h.graceful()  # the parent reopens its log on a restart
    wait_until(lambda: before[0] not in children(h) and children(h), 10, what="the next generation")
    assert request(h.port, GET).status == 200


@pytest.mark.parametrize("how", ["file-size-limit", "missing-directory", "fifo"])
def test_a_pidfile_that_cannot_be_written_stops_the_start(tmp_path, how):
    """httpd's AH00099 ("could not create" the PidFile) and exit status 1; the port is released
    and no temporary file is left (a FIFO must not block the start for ever)."""
    pidfile = tmp_path / "httpd.pid"
    fsize = None
    if how == "file-size-limit":
        fsize = 0  # the kernel refuses to grow any file (EFBIG): a full disk without root
    elif how == "missing-directory":
        pidfile = tmp_path / "missing" / "httpd.pid"
    else:
        os.mkfifo(pidfile)
    out = run_server("prefork", "--pidfile", str(pidfile), fsize=fsize)
    assert out.returncode == 1, out.stderr
    assert "AH00099: could not create" in out.stderr and str(pidfile) in out.stderr
    assert out.stdout == ""  # never said it was listening
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("httpd.pid.")] == []


def test_an_error_log_that_cannot_be_opened_stops_the_start(tmp_path):
    """httpd's AH00091 and exit status 1, not a traceback."""
    out = run_server("worker", "--set", f"ErrorLog={tmp_path}/missing/error.log")
    assert out.returncode == 1
    assert "AH00091: could not open error log file" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("mpm", MPMS)
def test_a_port_in_use_is_a_clear_error_and_nothing_is_left_running(launch, mpm):
    h = launch(mpm, {"StartServers": 1}, app=APP)
    proc = subprocess.Popen([sys.executable, "-m", "servers", mpm, "--listen", f"127.0.0.1:{h.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 1
    assert f"AH00072: make_sock: could not bind to address 127.0.0.1:{h.port}" in err
    assert out == ""
    try:
        os.killpg(proc.pid, 0)
        left = True
    except ProcessLookupError:
        left = False
    assert not left, "a process of the failed server is still running"
    assert request(h.port, GET).status == 200  # the server that owns the port is untouched
