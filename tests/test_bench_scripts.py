"""What stays in benchmarks/: the driver self-test runs on the harness's own modules, and no script
(the self-tests, the reliability figures) imports the tests (an installed package has no tests/)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def imported_modules(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods.add(node.module)
    return mods


def test_the_self_tests_import_nothing_from_tests_nor_from_each_other():
    for name in ("loadgen_selftest.py", "gate_repeatability.py", "reliability.py", "_echo_server.py",
                 "python_floor.py", "_floor_server.py", "hot_path.py"):
        mods = imported_modules(BENCH / name)
        assert not {m for m in mods if m == "tests" or m.startswith("tests.")}, name
        assert not mods & {"side_by_side", "driver_vs_wrk", "event_idle", "loadgen_selftest"}, name


def test_loadgen_selftest_measures_the_driver_against_the_echo_server():
    proc = subprocess.run([sys.executable, str(BENCH / "loadgen_selftest.py"), "--targets", "echo",
                           "--trials", "1", "--duration", "0.5", "--connections", "4", "--open-rate", "50"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| echo")]
    assert len(rows) == 2, proc.stdout  # the closed loop's row and the open loop's
    assert rows[0].split("|")[2].strip() == "loadgen" and rows[0].rstrip(" |").endswith("yes"), rows[0]


def test_loadgen_selftest_refuses_an_unknown_target():
    proc = subprocess.run([sys.executable, str(BENCH / "loadgen_selftest.py"), "--targets", "nginx"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "unknown target" in proc.stderr
