"""benchmarks/_floor_server.py (the Python floor) and benchmarks/python_floor.py (its benchmark).

The floor must send what our MPMs send for ``GET /`` (else the comparison is not the same work),
keep connections alive, and never outlive whoever started it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
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


def test_python_floor_runs_end_to_end_and_prints_its_table(tmp_path):
    out = tmp_path / "floor.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "python_floor.py"), "--servers",
                           "floor-threads", "--connections", "1", "--duration", "0.3", "--trials", "1",
                           "--warmup", "0", "--json", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "req/s (median)" in proc.stdout and "server CPU-us/request (median)" in proc.stdout, proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| 1 "))
    assert row.split("|")[2].strip() not in ("", "-"), proc.stdout
    doc = json.loads(out.read_text())
    [cell] = doc["cells"]
    assert cell["server"] == "floor-threads" and cell["requests"] > 0 and not cell["error"], cell
    assert cell["cpu_us_per_request"] is not None and cell["cpu_us_per_request"] > 0, cell
    assert doc["settings"]["floor-threads"] == ["--model", "threads", "--processes", "2", "--threads", "25"]


def test_python_floor_refuses_an_unknown_server():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "python_floor.py"), "--servers", "nginx"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "unknown server" in proc.stderr


def load_python_floor():
    """benchmarks/python_floor.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("python_floor", ROOT / "benchmarks" / "python_floor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_floor_medians_leave_failed_cells_out_and_ratios_compare_with_the_floor(capsys):
    floor = load_python_floor()

    def c(server, rps, cpu, flags=(), error=""):
        return {"server": server, "connections": 8, "rps": rps, "cpu_us_per_request": cpu, "flags": list(flags),
                "error": error}

    med = floor.medians([c("floor-threads", 90e3, 10.0, ["generator-bound"]), c("floor-threads", 80e3, 12.0),
                         c("floor-threads", 70e3, 14.0), c("worker", 30e3, 34.0), c("worker", 1.0, 999.0, [], "died")])
    assert med["floor-threads"][8] == {"rps": 80e3, "cpu_us_per_request": 12.0, "trials": 3,
                                       "notes": ["generator-bound"]}
    assert med["worker"][8]["rps"] == 30e3 and med["worker"][8]["notes"] == ["died"]
    rat = floor.ratios(med, [8])
    assert list(rat) == ["worker/floor-threads"]  # only pairs both measured
    got = rat["worker/floor-threads"][8]
    assert got["rps"] == pytest.approx(0.375) and got["cpu_us_per_request"] == pytest.approx(34 / 12)
    assert got["cpu_us_above_floor"] == pytest.approx(22.0)
    floor.print_tables(med, rat, ["floor-threads", "worker"], [8])
    assert "the driver's limit" in capsys.readouterr().out  # a generator-bound floor is said to be one


def test_python_floor_skips_a_server_not_installed_and_measures_the_rest(monkeypatch, capsys):
    floor = load_python_floor()
    monkeypatch.setattr(floor, "available", lambda: {"uwsgi-threads": "uwsgi not installed: pip install uwsgi"})
    assert floor.main(["--servers", "floor-processes,uwsgi-threads", "--connections", "2", "--duration", "0.2",
                       "--trials", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "uwsgi-threads: skipped (uwsgi not installed: pip install uwsgi)" in out, out
    row = next(line for line in out.splitlines() if line.startswith("| 2 "))
    assert row.split("|")[2].strip() not in ("", "-"), out
    assert not [line for line in out.splitlines() if line.startswith("| connections") and "uwsgi" in line], out
