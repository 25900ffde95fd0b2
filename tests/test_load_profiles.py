"""suites/load.py runs as its own locust process against a prefork server.

locust is never imported here (its gevent monkey-patching breaks threaded
code): every run is a subprocess with a deadline, and the results are read
from locust's CSV stats.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from servers.launcher import start

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "suites" / "load.py"
DEADLINE = 60  # seconds for one locust process, far above the few seconds a run takes


@pytest.fixture(scope="module")
def server():
    # find_spec locates the package without importing it into this process
    assert importlib.util.find_spec("locust") is not None, (
        "locust is not installed; it is a declared dependency (pip install 'locust>=2.20')"
    )
    h = start("prefork", {"StartServers": 2, "MaintenanceInterval": 0.1, "Timeout": 5, "KeepAliveTimeout": 2})
    try:
        yield h
    finally:
        h.stop()


def run_locust(host: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    prefix = tmp_path / "load"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--only-summary", "--csv", str(prefix), "--exit-code-on-error", "1", *args,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE)
    stats: dict[str, dict] = {}
    path = Path(f"{prefix}_stats.csv")
    if path.exists():
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                stats[row["Name"]] = row
    return proc, stats


def assert_clean(proc, stats, names: list[str]) -> None:
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail
    assert "Aggregated" in stats, detail
    for name in names + ["Aggregated"]:
        assert name in stats, f"no stats row for {name!r}; rows: {sorted(stats)}\n{detail}"
        assert int(stats[name]["Request Count"]) > 0, f"{name}: no requests\n{detail}"
        assert int(stats[name]["Failure Count"]) == 0, f"{name}: failures\n{detail}"


def test_step_profile_basic_users(server, tmp_path):
    proc, stats = run_locust(
        server.url, tmp_path, "-u", "8", "-r", "8", "--load-profile", "step", "--load-seconds", "4",
        "HelloUser", "EchoUser", "BytesUser", "SleepUser",
    )
    assert_clean(proc, stats, ["GET /", "POST /echo", "GET /bytes/65536", "GET /sleep?ms=50"])


def test_spike_profile_connection_users(server, tmp_path):
    proc, stats = run_locust(
        server.url, tmp_path, "-u", "10", "-r", "10", "--load-profile", "spike", "--load-seconds", "4",
        "KeepAliveUser", "ChurnUser",
    )
    assert_clean(proc, stats, ["GET / (keep-alive)", "GET / (Connection: close)"])


def test_ramp_profile_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LOAD_PROFILE", "ramp")
    monkeypatch.setenv("LOAD_SECONDS", "3")
    proc, stats = run_locust(server.url, tmp_path, "-u", "2", "-r", "2", "HelloUser")
    assert_clean(proc, stats, ["GET /"])


def test_no_profile_honours_run_time(server, tmp_path):
    proc, stats = run_locust(server.url, tmp_path, "-u", "2", "-r", "2", "-t", "2s", "BytesUser", "SleepUser")
    assert_clean(proc, stats, ["GET /bytes/65536", "GET /sleep?ms=50"])


def test_soak_profile_mixed_users(server, tmp_path):
    proc, stats = run_locust(
        server.url, tmp_path, "-u", "4", "-r", "4", "--load-profile", "soak", "--load-seconds", "3",
        "EchoUser", "ChurnUser",
    )
    assert_clean(proc, stats, ["POST /echo", "GET / (Connection: close)"])


@pytest.mark.parametrize("host", ["http://192.0.2.1:8080", "http://example.com"])
def test_non_loopback_host_is_refused(host, tmp_path):
    assert importlib.util.find_spec("locust") is not None, "locust is not installed (declared dependency)"
    proc, stats = run_locust(host, tmp_path, "-u", "1", "-r", "1", "-t", "1s", "HelloUser")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "only loopback targets are allowed" in proc.stderr
    assert int(stats.get("Aggregated", {}).get("Request Count", 0) or 0) == 0
