"""The matrix runner end to end on tiny matrices: cells, failures recorded, the run goes on, Ctrl-C keeps results.

Each test runs a one-trial matrix of 1-s profiles against small servers on
loopback; no figure is asserted against a timing goal (those are the
harness's own runs of its matrices), only what was recorded and that everything
started was stopped.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness import runner as runner_mod
from harness.matrix import parse_matrix
from harness.results import load_run
from harness.runner import MatrixRunner

ROOT = Path(__file__).resolve().parent.parent
SMALL_EVENT = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4,
               "MinSpareThreads": 1, "MaxSpareThreads": 8}
SMALL_PREFORK = {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 4, "MaxRequestWorkers": 4}


def matrix(servers, profiles=None, **top):
    doc = {"trials": 1, "warmup": 0, "quiet": {"seconds": 0.1}, "timeouts": {"start": 20},
           "servers": servers,
           "profiles": profiles or {"hello": {"driver": "loadgen", "duration": 1, "connections": 4}}}
    doc.update(top)
    return parse_matrix(doc, source="<test>", name="test")


def run(m, tmp_path) -> dict:
    out = io.StringIO()
    r = MatrixRunner(m, tmp_path / "run", out=out)
    r.run()
    doc = load_run(tmp_path / "run")
    doc["_progress"] = out.getvalue()
    return doc


def cells(doc, **match):
    return [c for c in doc["cells"] if all(c.get(k) == v for k, v in match.items())]


def test_a_run_records_each_cell_with_driver_sampler_and_metrics(tmp_path):
    m = matrix([{"label": "ev", "server": "event", "set": SMALL_EVENT}],
               {"hello": {"driver": "loadgen", "duration": 1, "connections": 4},
                "open": {"driver": "loadgen", "mode": "open", "rate": 100, "duration": 1, "connections": 4},
                "idle": {"driver": "idle", "connections": 6, "duration": 0.5, "probes": 5}})
    doc = run(m, tmp_path)
    assert doc["status"] == "complete"
    hello, = cells(doc, profile="hello")
    assert hello["status"] == "ok", hello["reason"]
    assert hello["result"]["requests"] > 0 and hello["result"]["driver"] == "loadgen"
    assert hello["metrics"]["rps"] > 0
    assert hello["metrics"]["cpu_us_per_request"] > 0
    assert hello["metrics"]["pss_peak_mib"] > 1
    assert hello["sampler"]["root_alive"] is True
    assert hello["quiet"]["machine_cpus"] >= 1 and "noisy" in hello["quiet"]
    opened, = cells(doc, profile="open")
    assert opened["result"]["mode"] == "open" and opened["result"]["target_rate"] == 100
    idle, = cells(doc, profile="idle")
    assert idle["result"]["requests"] == 6  # 4 workers, but event parks idle connections
    assert idle["metrics"]["pss_per_idle_conn_kib"] is not None
    probes = idle["result"]["extra"]["probes"]  # new clients served while the 6 were held
    assert probes["sent"] >= 1 and probes["answered"] == probes["sent"]
    assert f"new clients during the hold: {probes['answered']}/{probes['sent']} answered" in doc["_progress"]
    # the summary holds the medians of ok trials; the server record its effective config
    summ = doc["summary"]["profiles"]["ev"]["hello"]
    assert summ["ok"] == 1 and summ["metrics"]["rps"]["median"] == hello["metrics"]["rps"]
    assert "ThreadsPerChild 4" in doc["servers"]["ev"]["effective_config"]
    assert doc["servers"]["ev"]["version"].startswith("mpm-harness event")
    assert doc["environment"]["python"] and "pinning" in doc["environment"]
    assert "ev: trial 1/1: hello" in doc["_progress"]
    # /server-status?auto polled during each profile: 4 worker slots in some state, load makes some busy,
    # and the idle profile's connections wait parked in event's listener, not in a worker
    board = hello["scoreboard"]
    assert board["unavailable"] == "" and board["t"]
    assert all(sum(board[k][i] for k in ("busy", "idle", "keepalive", "closing")) <= 4 for i in range(len(board["t"])))
    assert max(b + k for b, k in zip(board["busy"], board["keepalive"])) >= 1
    assert max(v or 0 for v in idle["scoreboard"]["async_keepalive"]) >= 1


def test_a_server_that_never_becomes_ready_is_a_failed_cell_and_the_run_goes_on(tmp_path):
    m = matrix([{"label": "hangs", "server": "event", "set": SMALL_EVENT, "app": "tests.wsgi_hang:app"},
                {"label": "fine", "server": "event", "set": SMALL_EVENT}], timeouts={"start": 3})
    doc = run(m, tmp_path)
    bad, = cells(doc, server="hangs")
    assert bad["status"] == "failed" and "server did not start" in bad["reason"]
    good, = cells(doc, server="fine")
    assert good["status"] == "ok"
    assert (tmp_path / "run" / "logs" / "hangs-1.log").exists()


def test_a_server_that_dies_mid_run_is_recorded_and_the_run_goes_on(tmp_path):
    m = matrix([{"label": "dies", "server": "prefork", "set": SMALL_PREFORK, "app": "tests.wsgi_apps:kills_its_server"},
                {"label": "fine", "server": "prefork", "set": SMALL_PREFORK}],
               {"first": {"driver": "loadgen", "duration": 1, "connections": 2, "timeout": 2},
                "second": {"driver": "loadgen", "duration": 1, "connections": 2}})
    doc = run(m, tmp_path)
    first, = cells(doc, server="dies", profile="first")
    assert first["status"] == "failed"
    assert "server exited" in first["reason"] and "during first" in first["reason"]
    assert "server_exited" in first["flags"]
    second, = cells(doc, server="dies", profile="second")
    assert second["status"] == "failed" and "during first" in second["reason"]
    assert [c["status"] for c in cells(doc, server="fine")] == ["ok", "ok"]


def test_a_driver_that_errors_is_a_failed_cell(tmp_path, monkeypatch):
    real = runner_mod.drive

    def drive(profile, url, cpus, on_hold=None, access=None):
        if profile.name == "bad":
            raise RuntimeError("boom")
        return real(profile, url, cpus, on_hold, access)

    monkeypatch.setattr(runner_mod, "drive", drive)
    m = matrix([{"label": "ev", "server": "event", "set": SMALL_EVENT}],
               {"bad": {"driver": "loadgen", "duration": 1, "connections": 2},
                "good": {"driver": "loadgen", "duration": 1, "connections": 2}})
    doc = run(m, tmp_path)
    bad, = cells(doc, profile="bad")
    assert bad["status"] == "failed" and bad["reason"] == "driver failed: RuntimeError: boom"
    good, = cells(doc, profile="good")
    assert good["status"] == "ok"


def test_unavailable_driver_and_trials_are_interleaved(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_mod, "driver_unavailable",
                        lambda d: "wrk not on PATH: apt-get install wrk" if d == "wrk" else None)
    m = matrix([{"label": "a", "server": "event", "set": SMALL_EVENT},
                {"label": "b", "server": "prefork", "set": SMALL_PREFORK}],
               {"hello": {"driver": "loadgen", "duration": 0.5, "connections": 2},
                "w": {"driver": "wrk", "duration": 1}}, trials=2)
    doc = run(m, tmp_path)
    skipped = cells(doc, profile="w")
    assert {c["server"] for c in skipped} == {"a", "b"}
    assert all(c["status"] == "skipped" and "apt-get install wrk" in c["reason"] for c in skipped)
    order = [(c["server"], c["trial"]) for c in cells(doc, profile="hello")]
    assert order == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_ctrl_c_stops_everything_and_keeps_partial_results(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps({
        "trials": 3, "warmup": 0, "quiet": {"seconds": 0.1},
        "servers": [{"label": "ev", "server": "event", "set": SMALL_EVENT}],
        "profiles": {"hello": {"driver": "loadgen", "duration": 1, "connections": 2}}}))
    results = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--matrix", str(path),
                             "--results-dir", str(results)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for p in psutil.Process(proc.pid).children(recursive=True):
                seen.add(p.pid)
            docs = list(results.glob("*/run.json"))
            if docs and json.loads(docs[0].read_text())["cells"]:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("no cell was recorded within 60 s")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == 130, out.decode()
    doc = load_run(docs[0].parent)
    assert doc["status"] == "interrupted"
    assert doc["cells"] and doc["cells"][0]["status"] in ("ok", "invalid")
    assert (docs[0].parent / "tables.md").exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(running, seen)):
        time.sleep(0.05)
    alive = [p for p in seen if running(p)]
    assert not alive, f"left running after Ctrl-C: {alive}"


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def synthetic_series(seconds: int, pss_mib_per_min: float, fds_per_min: float, step_at: float = 0,
                     step_mib: float = 0, step_fds: int = 0):
    """A sampler series of one sample per second with linear PSS and fd growth, marks at both ends;
    optionally a one-time step of ``step_mib`` / ``step_fds`` at second ``step_at``."""
    from harness.sampler import COLUMNS, FORMAT_VERSION, SamplerSeries

    n = seconds + 1
    cols = {c: [0] * n for c in COLUMNS}
    cols["t"] = [float(i) for i in range(n)]
    stepped = [bool(step_at) and i >= step_at for i in range(n)]
    cols["pss"] = [int(100 * 2**20 + pss_mib_per_min / 60 * 2**20 * i + stepped[i] * step_mib * 2**20)
                   for i in range(n)]
    cols["fds"] = [int(20 + fds_per_min / 60 * i) + stepped[i] * step_fds for i in range(n)]
    cols["processes"] = [3] * n
    return SamplerSeries({"version": FORMAT_VERSION, "samples": cols, "root_pid": 1, "interval": 1.0,
                          "pss_interval": 1.0, "machine_cpus": 2, "started_at": 0.0, "ended_at": float(seconds),
                          "marks": [{"name": "s:start", "t": 0.0, "index": 0},
                                    {"name": "s:end", "t": float(seconds), "index": seconds}]})


@pytest.mark.parametrize("seconds, pss_rate, fd_rate, flags", [
    (600, 0.0, 0.0, []),                       # flat: nothing flagged
    (600, 2.0, 0.0, ["pss_growth"]),           # 2 MiB/min: 10 MiB over the second half > max(2 MiB, 5% of ~115)
    (600, 1.0, 0.0, []),                       # 5 MiB over the second half: under 5% of ~110 MiB
    (600, 0.1, 0.0, []),                       # 0.5 MiB over the second half: noise
    (600, 0.0, 2.0, ["fd_growth"]),            # 10 fds over the second half
    (30, 10.0, 10.0, []),                      # too short to judge: slopes only
])
def test_soak_slopes_and_growth_flags(seconds, pss_rate, fd_rate, flags):
    got: list[str] = []
    out = runner_mod._slopes(synthetic_series(seconds, pss_rate, fd_rate), "s:start", "s:end", seconds, got)
    assert out["pss_slope_mib_per_min"] == pytest.approx(pss_rate, abs=0.01)
    assert out["fds_slope_per_min"] == pytest.approx(fd_rate, abs=0.2)
    assert got == flags


@pytest.mark.parametrize("step_at, step_mib, step_fds, flags", [
    (550, 10.0, 0, ["pss_step"]),   # flat, then one 10 MiB jump near the end (as worker's soak): not a trend
    (550, 0.0, 12, ["fd_step"]),    # the same for fds
    (350, 10.0, 0, ["pss_step"]),   # a jump early in the second half: the quarters do not rise twice
    (550, 0.5, 0, []),              # a small jump: under max(2 MiB, 5 %)
])
def test_a_single_late_step_is_flagged_as_a_step_not_growth(step_at, step_mib, step_fds, flags):
    got: list[str] = []
    runner_mod._slopes(synthetic_series(600, 0.0, 0.0, step_at, step_mib, step_fds), "s:start", "s:end", 600, got)
    assert got == flags


def test_growth_on_top_of_a_step_is_still_growth():
    got: list[str] = []
    runner_mod._slopes(synthetic_series(600, 2.0, 0.0, 550, 5.0), "s:start", "s:end", 600, got)
    assert got == ["pss_growth"]
