"""benchmarks/_floor_server.py (the Python floor).

The floor must send what our MPMs send for ``GET /`` (else the comparison is not the same work),
keep connections alive, and never outlive whoever started it.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from servers.launcher import MPMHandle, finish_start, spawn, start
from suites.wire import Conn, wait_until

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ROOT / "benchmarks" / "_floor_server.py"
MODELS = {"threads": ["--processes", "2", "--threads", "2"], "processes": ["--processes", "2"]}
GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def start_floor(model: str) -> MPMHandle:
    """The floor server in ``model``, small, bounded to a minute, ready."""
    run_dir = tempfile.mkdtemp(prefix="test-floor-")
    log = os.path.join(run_dir, "error.log")
    argv = [sys.executable, str(FLOOR), "--model", model, *MODELS[model], "--seconds", "60"]
    proc = spawn(argv, log_path=log, stdout=subprocess.PIPE)
    return finish_start(MPMHandle(name=f"floor-{model}", proc=proc, run_dir=run_dir, log_path=log, pidfile=""),
                        True, 15.0)


def children_of(pid: int) -> list[int]:
    """The floor's forked workers, once they all run."""
    return wait_until(lambda: [c.pid for c in psutil.Process(pid).children()] or None, 10.0, what="children")


def all_gone(pids: list[int]) -> bool:
    """Every one of ``pids`` has exited (a zombie counts as exited)."""
    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return all(gone(p) for p in pids)


@pytest.fixture(scope="module")
def ours():
    """Our worker's answer to GET / (status, headers without Date, body)."""
    with start("worker", {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 2, "MaxRequestWorkers": 2,
                          "MinSpareThreads": 1, "MaxSpareThreads": 2}) as h, Conn(h.port) as c:
        c.send(GET)
        r = c.read_response()
    return r.status, [(n, v) for n, v in r.headers if n.lower() != "date"], r.body


@pytest.mark.parametrize("model", sorted(MODELS))
def test_floor_answers_get_as_our_server_does_and_keeps_the_connection(model, ours):
    with start_floor(model) as h, Conn(h.port) as c:
        for _ in range(2):  # two requests, one connection
            c.send(GET)
            r = c.read_response()
            assert (r.status, [(n, v) for n, v in r.headers if n.lower() != "date"], r.body) == ours
            assert r.header("Content-Length") == "13" and r.body == b"Hello, World!"
            assert r.header("Date").endswith(" GMT") and r.header("Connection") is None
        assert not c.eof


@pytest.mark.parametrize("model", sorted(MODELS))
def test_floor_stops_every_child_on_sigterm(model):
    h = start_floor(model)
    try:
        kids = children_of(h.pid)
        assert len(kids) == 2
        os.kill(h.pid, signal.SIGTERM)
        assert h.wait(15.0) == 0
        wait_until(lambda: all_gone(kids), 10.0, what="the floor's children to exit")
    finally:
        h.stop()


def test_floor_children_die_with_their_parent():
    h = start_floor("processes")
    try:
        kids = children_of(h.pid)
        os.kill(h.pid, signal.SIGKILL)  # no handler runs: only PR_SET_PDEATHSIG ends them
        h.wait(15.0)
        wait_until(lambda: all_gone(kids), 10.0, what="the orphaned children to exit")
    finally:
        h.stop()


def test_floor_imports_only_the_standard_library():
    tree = ast.parse(FLOOR.read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods - {"__future__"} <= set(sys.stdlib_module_names), mods
