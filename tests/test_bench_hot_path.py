"""benchmarks/hot_path.py: the shared per-request Python path, run without I/O, serves every request it is fed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hot_path_serves_every_request_and_reports_each_path(tmp_path):
    out = tmp_path / "hot.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "hot_path.py"), "--requests", "50",
                           "--repeats", "2", "--json", str(out)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert set(figures) == {"simple", "browser"}
    for row in figures.values():
        assert set(row) == {"worker", "prefork"} and all(us > 0 for us in row.values()), row
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| simple", "| browser"))]
    assert len(rows) == 2, proc.stdout


def test_hot_path_refuses_an_empty_run():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "hot_path.py"), "--requests", "0"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "at least 1" in proc.stderr
