"""The regression gate: Mann-Whitney U, the verdict rule, the gate: section, exit codes, summary, baseline.

Everything but the last test runs on synthetic samples and synthetic run documents (no servers).
The last one starts a prefork server with the testing knobs and checks the property they promise
(more CPU per request, more memory per child), not a timing.
"""

from __future__ import annotations

import http.client
import itertools
import json
from pathlib import Path

import psutil
import pytest
import yaml

from harness import gate as g
from harness.gate import sidebyside
from harness.baseline import (BASELINE_SCHEMA, Figures, baseline_from_run, collect, collect_baseline,
                              load_baseline, write_baseline)
from harness.cli import main
from harness.matrix import GateSpec, MatrixError, load_matrix, parse_matrix
from harness.results import SCHEMA, summarize

MINIMAL = {"servers": ["prefork", "event"], "profiles": {"hello": {"driver": "loadgen", "duration": 2}}}


# -- Mann-Whitney U -----------------------------------------------------------------------------------


def brute_force(x, y, alternative):
    """P(U <= u) or P(U >= u) by enumerating every split of the pooled sample (ties by mid-rank)."""
    pooled = list(x) + list(y)
    n = len(x)

    def u_of(idx):
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in idx]
        return sum((a > b) + 0.5 * (a == b) for a in xs for b in ys)

    u = u_of(range(n))
    us = [u_of(set(c)) for c in itertools.combinations(range(len(pooled)), n)]
    hits = sum(1 for v in us if (v <= u + 1e-9 if alternative == "less" else v >= u - 1e-9))
    return u, hits / len(us)


def test_all_below_five_vs_five_is_one_in_252():
    r = g.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], "less")
    assert r.u == 0 and r.method == "exact"
    assert r.p == pytest.approx(1 / 252)
    assert g.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], "greater").p == pytest.approx(1.0)
    assert g.mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "greater").p == pytest.approx(1 / 252)
    assert g.min_p_value(5, 5) == pytest.approx(1 / 252)
    assert g.min_p_value(3, 3) == pytest.approx(0.05)


@pytest.mark.parametrize("x, y", [
    ([1, 2, 2, 3, 5], [2, 3, 4, 4, 6]),
    ([10, 10, 10, 11], [10, 11, 12, 12, 12]),
    ([3.5, 1.0, 2.0], [2.0, 2.0, 4.0, 5.0]),
    ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),
    ([7, 1, 9, 3, 3, 8], [2, 6, 6, 4, 5]),
])
@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_exact_p_with_ties_matches_enumeration(x, y, alternative):
    u, p = brute_force(x, y, alternative)
    r = g.mann_whitney_u(x, y, alternative)
    assert r.u == pytest.approx(u)
    assert r.p == pytest.approx(p)


def test_identical_samples():
    # every value tied: no evidence in either direction
    for alt in ("less", "greater"):
        assert g.mann_whitney_u([5, 5, 5, 5, 5], [5, 5, 5, 5, 5], alt).p == pytest.approx(1.0)
    # the same five values on both sides: U is at its null mean, p a little above 1/2 either way
    r = g.mann_whitney_u([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], "less")
    assert r.u == 12.5 and 0.5 < r.p < 0.7
    assert g.mann_whitney_u([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], "greater").p == pytest.approx(r.p)


def test_normal_approximation_for_large_samples():
    below = list(range(30))
    above = [v + 100 for v in range(30)]
    r = g.mann_whitney_u(below, above, "less")
    assert r.method == "normal" and r.p < 1e-9
    assert g.mann_whitney_u(below, above, "greater").p > 0.999
    same = g.mann_whitney_u(list(range(0, 60, 2)), list(range(1, 61, 2)), "less")
    assert 0.3 < same.p < 0.7
    assert g.mann_whitney_u([1] * 25, [1] * 25, "less").p == 1.0


def test_normal_approximation_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    x = [1, 3, 3, 5, 7, 8, 8, 8, 10, 12, 13, 15, 15, 16, 18, 20, 21, 21, 22, 25, 26]
    y = [4, 6, 8, 9, 11, 14, 15, 17, 19, 19, 23, 24, 24, 27, 28, 30, 31, 33, 35, 36, 40]
    for alt in ("less", "greater"):
        ours = g.mann_whitney_u(x, y, alt)
        theirs = stats.mannwhitneyu(x, y, alternative=alt, method="asymptotic", use_continuity=True)
        assert ours.method == "normal"
        assert ours.u == pytest.approx(theirs.statistic)
        assert ours.p == pytest.approx(theirs.pvalue, rel=1e-9)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        g.mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        g.mann_whitney_u([1.0], [2.0], "two-sided")
    with pytest.raises(ValueError):
        g.mann_whitney_u([float("nan")], [2.0])


# -- the verdict rule ---------------------------------------------------------------------------------


def figs(values: dict, trials: int | None = None, reasons=()) -> Figures:
    n = max((len(v) for v in values.values()), default=0)
    t = trials if trials is not None else n
    statuses = {"ok": n} | ({"failed": t - n} if t > n else {})
    return Figures(trials=t, ok=n, statuses=statuses, reasons=list(reasons), values=values)


SPEC = GateSpec(correction="none")  # one row at a time: the rule itself; Holm has its own tests
BASE_RPS = [1000, 1020, 990, 1010, 1005]


def verdict_of(base: list, cand: list, metric: str = "rps", spec: GateSpec = SPEC) -> g.Verdict:
    res = g.compare({("s", "p"): figs({metric: base})}, {("s", "p"): figs({metric: cand})}, spec)
    (v,) = [v for v in res.verdicts if v.metric == metric]
    return v


def test_regression_needs_the_threshold_and_significance():
    v = verdict_of(BASE_RPS, [800, 810, 790, 805, 795])  # -20 %, fully separated
    assert v.verdict == "regression"
    assert v.change_pct == pytest.approx(-20.4, abs=0.5)
    assert v.p_worse == pytest.approx(1 / 252)
    # -20 % in the median, but the samples overlap: could be noise
    v = verdict_of(BASE_RPS, [800, 1030, 790, 1040, 795])
    assert v.verdict == "pass" and "not significant" in v.note
    # fully separated (significant) but only -3 %: within the threshold
    v = verdict_of(BASE_RPS, [970, 975, 968, 972, 960])
    assert v.verdict == "pass" and "within the threshold" in v.note


def test_improvement_and_lower_is_better_metrics():
    assert verdict_of(BASE_RPS, [1300, 1310, 1290, 1305, 1295]).verdict == "improvement"
    cpu = [100, 102, 99, 101, 100]
    assert verdict_of(cpu, [125, 126, 124, 127, 125], "cpu_us_per_request").verdict == "regression"
    assert verdict_of(cpu, [80, 81, 79, 82, 80], "cpu_us_per_request").verdict == "improvement"
    assert verdict_of(cpu, [105, 106, 104, 107, 105], "cpu_us_per_request").verdict == "pass"


def test_holm_adjusted_p_values():
    assert g.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert g.holm([0.5]) == [0.5]
    assert g.holm([0.001, 0.2, 0.02, 0.04]) == pytest.approx([0.004, 0.2, 0.06, 0.08])
    assert g.holm([0.3, 0.3]) == pytest.approx([0.6, 0.6])
    assert g.holm([]) == []


def test_holm_keeps_a_lone_noisy_metric_from_failing_the_run():
    # an A/A-like run: six rows; one of them (+11 % CPU, 4 of 25 pairs in the other order, p = 0.048)
    # passes the per-row rule but not the corrected one
    base_cpu, cand_cpu = [142, 124, 115, 148, 162], [173, 158, 163, 150, 145]
    rows = {("s", "p"): figs({"rps": BASE_RPS, "cpu_us_per_request": base_cpu, "pss_peak_mib": [24.0] * 5}),
            ("t", "p"): figs({"rps": BASE_RPS, "cpu_us_per_request": base_cpu, "pss_peak_mib": [24.0] * 5})}
    cand = {("s", "p"): figs({"rps": BASE_RPS, "cpu_us_per_request": cand_cpu, "pss_peak_mib": [24.0] * 5}),
            ("t", "p"): figs({"rps": BASE_RPS, "cpu_us_per_request": base_cpu, "pss_peak_mib": [24.0] * 5})}
    per_row = g.compare(rows, cand, GateSpec(correction="none"))
    assert per_row.exit_code == 1
    (cpu,) = [v for v in per_row.verdicts if v.server == "s" and v.metric == "cpu_us_per_request"]
    assert cpu.p_worse == pytest.approx(12 / 252)
    corrected = g.compare(rows, cand, GateSpec())
    assert corrected.exit_code == 0
    (cpu,) = [v for v in corrected.verdicts if v.server == "s" and v.metric == "cpu_us_per_request"]
    assert cpu.verdict == "pass" and cpu.p_worse_adj == pytest.approx(6 * 12 / 252)
    assert "not significant (p = 0.048, 0.286 after Holm's correction for 6 tests)" in cpu.note
    # a clear regression survives the correction
    cand[("t", "p")] = figs({"rps": [800, 810, 790, 805, 795], "cpu_us_per_request": base_cpu,
                             "pss_peak_mib": [24.0] * 5})
    assert g.compare(rows, cand, GateSpec()).exit_code == 1


def test_too_many_tests_for_the_trials_is_not_measured():
    # 13 rows of 5 vs 5: Holm's first step needs p < 0.05 / 13 < 1/252, out of reach
    side = {(f"s{i}", "p"): figs({"rps": BASE_RPS}) for i in range(13)}
    res = g.compare(side, side, GateSpec(thresholds={"rps": 10.0}))
    assert res.exit_code == 2
    assert "after Holm's correction for 13 tests" in res.verdicts[0].note
    side = {(f"s{i}", "p"): figs({"rps": BASE_RPS}) for i in range(12)}
    assert g.compare(side, side, GateSpec(thresholds={"rps": 10.0})).exit_code == 0


def test_not_measured_when_trials_are_missing():
    v = verdict_of(BASE_RPS, [800, 810])
    assert v.verdict == "not measured" and "the gate needs 3" in v.note
    # three against three cannot reach p < 0.05 at all (the smallest p is 1/20)
    v = verdict_of([1000, 1010, 1020], [500, 510, 520])
    assert v.verdict == "not measured" and "cannot give p < 0.05" in v.note
    # one side has no row at all
    res = g.compare({}, {("s", "p"): figs({"rps": BASE_RPS})}, SPEC)
    assert {v.verdict for v in res.verdicts} == {"not measured"}
    assert "not in the base" in res.verdicts[0].note


def test_metric_a_profile_does_not_produce_is_left_out():
    # an idle profile has no CPU per request on either side: no row, not a failure
    res = g.compare({("s", "idle"): figs({"rps": BASE_RPS, "pss_peak_mib": [10.0] * 5})},
                    {("s", "idle"): figs({"rps": BASE_RPS, "pss_peak_mib": [10.0] * 5})}, SPEC)
    assert {v.metric for v in res.verdicts} == {"rps", "pss_peak_mib"}
    assert res.status == "pass"


def test_rows_follow_the_matrix_and_spec_profiles():
    side = {("a", "x"): figs({"rps": BASE_RPS}), ("a", "y"): figs({"rps": BASE_RPS})}
    res = g.compare(side, side, GateSpec(thresholds={"rps": 10.0}), servers=["a", "b"], profiles=["x"])
    assert [(v.server, v.profile, v.verdict) for v in res.verdicts] == [("a", "x", "pass"), ("b", "x", "not measured")]
    res = g.compare(side, side, GateSpec(thresholds={"rps": 10.0}, profiles=("y",)))
    assert [(v.server, v.profile) for v in res.verdicts] == [("a", "y")]


# -- the gate: section of a matrix --------------------------------------------------------------------


def write(tmp_path, doc, name="m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def test_gate_defaults_and_the_ci_matrix():
    spec = parse_matrix(MINIMAL).gate
    assert spec.thresholds == {"rps": 10.0, "cpu_us_per_request": 10.0, "pss_peak_mib": 10.0}
    assert spec.alpha == 0.05 and spec.memory == "pss" and spec.memory_metric == "pss_peak_mib"
    assert spec.tree == ("servers",) and spec.correction == "holm"
    ci = load_matrix("ci")
    assert ci.trials >= 5 and ci.gate.alpha == 0.05
    assert set(ci.gate.thresholds) == {"rps", "cpu_us_per_request", "pss_peak_mib"}


def test_gate_thresholds_from_yaml(tmp_path):
    doc = dict(MINIMAL, gate={"memory": "rss", "alpha": 0.01, "min_trials": 4, "profiles": ["hello"],
                              "tree": ["servers", "myapp"],
                              "thresholds": {"rps": "-5%", "memory": "+15%", "cpu_us_per_request": None,
                                             "p99_ms": 25}})
    m = load_matrix(write(tmp_path, doc))
    assert m.gate.thresholds == {"rps": 5.0, "rss_peak_mib": 15.0, "p99_ms": 25.0}
    assert (m.gate.alpha, m.gate.min_trials, m.gate.profiles) == (0.01, 4, ("hello",))
    assert m.gate.tree == ("servers", "myapp")
    # the effective section goes into the results document and parses back to the same spec
    out = m.to_dict()["gate"]
    assert out["thresholds"] == {"rps": -5.0, "cpu_us_per_request": None, "memory": 15.0, "p99_ms": 25.0}
    assert parse_matrix(dict(MINIMAL, gate=out)).gate == m.gate


@pytest.mark.parametrize("gate, words", [
    ({"tresholds": {}}, ["unknown key gate.'tresholds'", "did you mean 'thresholds'"]),
    ({"thresholds": {"rsp": -10}}, ["gate.thresholds.'rsp'", "did you mean 'rps'"]),
    ({"thresholds": {"rps": "+10%"}}, ["gate.thresholds.rps", "downwards"]),
    ({"thresholds": {"cpu_us_per_request": -10}}, ["gate.thresholds.cpu_us_per_request", "upwards"]),
    ({"thresholds": {"memory": "ten"}}, ["gate.thresholds.memory", "percentage"]),
    ({"thresholds": {"rps": -100}}, ["gate.thresholds.rps", "out of range"]),
    ({"thresholds": {"memory": 10, "pss_peak_mib": 5}}, ["same metric"]),
    ({"memory": "uss"}, ["gate.memory must be pss or rss"]),
    ({"alpha": 1.5}, ["gate.alpha"]),
    ({"alpha": "0.05"}, ["gate.'alpha' must be a number"]),
    ({"min_trials": 0}, ["gate.min_trials must be > 0"]),
    ({"profiles": ["helo"]}, ["gate.profiles[0]", "did you mean 'hello'"]),
    ({"tree": ["servers/mpm"]}, ["gate.tree[0]", "top-level package"]),
    ({"tree": []}, ["gate.tree must name at least one"]),
    ({"correction": "bonferroni"}, ["gate.correction must be holm or none"]),
])
def test_bad_gate_section_names_the_key_and_the_file(tmp_path, gate, words):
    path = write(tmp_path, dict(MINIMAL, gate=gate))
    with pytest.raises(MatrixError) as err:
        load_matrix(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, (w, msg)


# -- synthetic run documents, exit codes --------------------------------------------------------------


def cell(server, trial, rps, cpu, pss, status="ok", reason="", profile="hello-closed", flags=()):
    metrics = {} if status != "ok" else {"rps": rps, "cpu_us_per_request": cpu, "pss_peak_mib": pss,
                                         "rss_peak_mib": pss * 3, "p99_ms": 20.0}
    return {"kind": "profile", "server": server, "profile": profile, "driver": "loadgen", "trial": trial,
            "status": status, "reason": reason, "flags": list(flags), "metrics": metrics}


def run_doc(rps_factor=1.0, pss_factor=1.0, failed_trials=0, env=None) -> dict:
    cells = []
    for t in range(1, 6):
        for server, rps, cpu, pss in (("prefork", 3000, 150, 140.0), ("event", 8000, 110, 25.0)):
            jitter = 1 + 0.004 * t
            if server == "prefork" and t <= failed_trials:
                cells.append(cell(server, t, 0, 0, 0, status="failed", reason="server exited (status -9)"))
            else:
                cells.append(cell(server, t, round(rps * rps_factor * jitter, 1), round(cpu / rps_factor / jitter, 1),
                                  round(pss * pss_factor * jitter, 2), flags=("noisy",) if t == 2 else ()))
    m = load_matrix("ci").to_dict()
    doc = {"schema": SCHEMA, "schema_version": 1, "run_id": "synthetic", "status": "complete",
           "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:05:00+00:00", "argv": [],
           "matrix": m, "environment": env or {"cpu_model": "test cpu", "cpu_count": 2, "python": "3.11.7",
                                                "kernel": "6.1", "hostname": "ci", "git_commit": "a" * 40},
           "servers": {s["label"]: {"server": s["server"], "set": s["set"], "app": ""} for s in m["servers"]},
           "cells": cells, "summary": {}}
    doc["summary"] = summarize(doc)
    return doc


def save_run(tmp_path, name, doc) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "run.json").write_text(json.dumps(doc))
    return d


@pytest.fixture
def baseline_file(tmp_path) -> Path:
    run = save_run(tmp_path, "base-run", run_doc())
    path = tmp_path / "baseline.json"
    assert main(["baseline", str(run), "-o", str(path)]) == 0
    return path


def gate_exit(tmp_path, baseline_file, doc, name, capsys):
    run = save_run(tmp_path, name, doc)
    summary = tmp_path / f"{name}.md"
    code = main(["gate", "--baseline", str(baseline_file), "--run", str(run), "--server", "prefork",
                 "--server", "event", "--summary", str(summary)])
    out = capsys.readouterr().out
    return code, summary.read_text(), out, run


def test_exit_0_when_nothing_changed(tmp_path, baseline_file, capsys):
    code, md, out, run = gate_exit(tmp_path, baseline_file, run_doc(), "same", capsys)
    assert code == 0
    assert md.startswith("## mpm-harness gate: ✅ pass")
    assert (run / "gate.md").read_text() == md
    doc = json.loads((run / "gate.json").read_text())
    assert doc["status"] == "pass" and doc["exit_status"] == 0
    assert len(doc["verdicts"]) == 6  # 2 servers x 3 default metrics


def test_exit_1_on_a_throughput_regression(tmp_path, baseline_file, capsys):
    code, md, out, _ = gate_exit(tmp_path, baseline_file, run_doc(rps_factor=0.8), "slower", capsys)
    assert code == 1
    assert "❌ regression" in md.splitlines()[0]
    rows = [line for line in md.splitlines() if line.startswith("| prefork | hello-closed | requests/s")]
    assert len(rows) >= 1 and "❌ regression" in rows[0] and "-20.0 %" in rows[0] and "-10 %" in rows[0]
    assert "| 0.024 |" in rows[0]  # 1/252, x 6 tests (Holm): four rows at 1/252 all get 6/252
    cpu = [line for line in md.splitlines() if line.startswith("| event | hello-closed | CPU-us/request")][0]
    assert "+25.0 %" in cpu and "regression" in cpu


def test_exit_1_on_a_memory_regression_and_rss_is_selectable(tmp_path, baseline_file, capsys):
    code, md, _, _ = gate_exit(tmp_path, baseline_file, run_doc(pss_factor=1.2), "fatter", capsys)
    assert code == 1 and "| prefork | hello-closed | peak PSS MiB" in md
    # the same run judged on RSS with a threshold of 25 %: passes
    matrix = yaml.safe_load(Path(load_matrix("ci").source).read_text())
    matrix["gate"] = {"memory": "rss", "thresholds": {"memory": 25}}
    mpath = write(tmp_path, matrix, "rss.yaml")
    run = tmp_path / "fatter"
    assert main(["gate", "--baseline", str(baseline_file), "--run", str(run), "--matrix", str(mpath)]) == 0
    assert "peak RSS MiB" in (run / "gate.md").read_text()


def test_exit_2_when_a_server_failed(tmp_path, baseline_file, capsys):
    code, md, _, _ = gate_exit(tmp_path, baseline_file, run_doc(failed_trials=3), "broken", capsys)
    assert code == 2
    assert md.startswith("## mpm-harness gate: ⚠️ could not measure")
    assert "2 of 5 trials ok (failed 3: server exited (status -9))" in md


def test_a_regression_outranks_what_could_not_be_measured(tmp_path, baseline_file, capsys):
    doc = run_doc(rps_factor=0.8)
    doc["cells"] = [c for c in doc["cells"] if not (c["server"] == "prefork" and c["trial"] > 2)]
    code, md, _, _ = gate_exit(tmp_path, baseline_file, doc, "both", capsys)
    assert code == 1 and "not measured" in md and "| event | hello-closed | requests/s" in md


def test_exit_2_on_bad_input(tmp_path, baseline_file, capsys):
    run = save_run(tmp_path, "ok", run_doc())
    assert main(["gate", "--baseline", str(tmp_path / "absent.json"), "--run", str(run)]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something-else"}')
    assert main(["gate", "--baseline", str(bad), "--run", str(run)]) == 2
    assert main(["gate", "--baseline", str(baseline_file), "--run", str(tmp_path / "nothing")]) == 2
    assert main(["gate", "--against", "HEAD", "--run", str(run)]) == 2
    assert main(["gate", "--baseline", str(baseline_file), "--matrix", "nosuch"]) == 2
    assert main(["gate", "--baseline", str(baseline_file), "--run", str(run),
                 "--candidate-set", "BenchCPUWorkMicroseconds=40"]) == 2
    assert main(["gate", "--against", "no-such-ref-anywhere", "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no such baseline" in err and "not an mpm-harness baseline" in err and "not a commit" in err


def test_a_baseline_from_another_machine_is_noted(tmp_path, baseline_file, capsys):
    other = run_doc(env={"cpu_model": "other cpu", "cpu_count": 4, "python": "3.12.1", "kernel": "6.1",
                         "hostname": "runner"})
    code, md, _, _ = gate_exit(tmp_path, baseline_file, other, "elsewhere", capsys)
    assert code == 0
    assert "different machine" in md and "cpu_model 'test cpu' vs 'other cpu'" in md and "prefer --against" in md


# -- the summary --------------------------------------------------------------------------------------


def test_summary_content():
    base = {("prefork", "hello-closed"): figs({"rps": BASE_RPS, "pss_peak_mib": [140.0] * 5})}
    cand = {("prefork", "hello-closed"): figs({"rps": [800, 810, 790, 805, 795], "pss_peak_mib": [140.1] * 5})}
    res = g.compare(base, cand, GateSpec(thresholds={"rps": 10.0, "pss_peak_mib": 10.0}))
    res.context = {"mode": "against", "ref": "origin/main", "base_commit": "b" * 40, "candidate_commit": "c" * 40,
                   "candidate_dirty": True, "matrix": "ci", "trials": 5, "folder": "results/runs/x",
                   "wall_seconds": 240.0}
    res.notes.append("a note")
    md = g.render_summary(res)
    lines = md.splitlines()
    assert lines[0] == "## mpm-harness gate: ❌ regression"
    assert "against `origin/main` (`bbbbbbbbbb`)" in md and "`cccccccccc` + uncommitted changes" in md
    assert "5 trials per side, interleaved" in md
    assert "requests/s -10 %" in md and "p < 0.05 (p corrected for the number of metrics compared, Holm)" in md
    # p after Holm's correction for the two rows: 2 x 1/252
    assert "| prefork | hello-closed | requests/s | 1,005 | 800 | -20.4 % | -10 % | 0.008 | ❌ regression |" in lines
    assert any(line.startswith("| prefork | hello-closed | peak PSS MiB | 140.0 | 140.1 | +0.1 % | +10 %")
               and "✅ pass" in line for line in lines)
    assert "* a note" in lines
    assert "<details><summary>trial values (ok trials only)</summary>" in md
    assert "| prefork | hello-closed | requests/s | 1,000, 1,020, 990, 1,010, 1,005 | 800, 810, 790, 805, 795 |" in md
    assert "exit status 1 · 4.0 min · results: `results/runs/x`" in md


def test_summary_when_nothing_compares():
    res = g.compare({}, {}, SPEC)
    assert res.exit_code == 2
    assert "Nothing was compared" in g.render_summary(res)


# -- the baseline -------------------------------------------------------------------------------------


def test_baseline_round_trip(tmp_path):
    doc = run_doc(failed_trials=1)
    b = baseline_from_run(doc, source="results/runs/synthetic")
    assert b["schema"] == BASELINE_SCHEMA and b["environment"]["cpu_model"] == "test cpu"
    assert b["matrix"]["name"] == "ci" and b["matrix"]["gate"]["thresholds"]["rps"] == -10.0
    p = b["servers"]["prefork"]["profiles"]["hello-closed"]
    assert (p["trials"], p["ok"], p["statuses"]) == (5, 4, {"failed": 1, "ok": 4})
    rps = p["metrics"]["rps"]
    assert rps["n"] == 4 and rps["values"] == [3024.0, 3036.0, 3048.0, 3060.0]  # trials 2..5, in trial order
    assert (rps["median"], rps["min"], rps["max"]) == (3042.0, 3024.0, 3060.0)
    assert set(p["metrics"]) == {"rps", "cpu_us_per_request", "pss_peak_mib", "rss_peak_mib"}
    path = write_baseline(b, tmp_path / "sub" / "baseline.json")
    again = load_baseline(path)
    assert again == json.loads(json.dumps(b))
    wanted = ("rps", "cpu_us_per_request", "pss_peak_mib", "rss_peak_mib")
    from_run = collect(doc, wanted)
    from_baseline = collect_baseline(again)
    assert from_run.keys() == from_baseline.keys()
    for k in from_run:
        assert from_run[k] == from_baseline[k]


def test_baseline_refuses_an_unfinished_run(tmp_path, capsys):
    doc = dict(run_doc(), status="interrupted")
    run = save_run(tmp_path, "partial", doc)
    assert main(["baseline", str(run), "-o", str(tmp_path / "b.json")]) == 2
    assert "not complete" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_candidate_sets():
    labels = ["prefork", "event"]
    assert g.parse_candidate_sets(["BenchCPUWorkMicroseconds=40", "prefork:BenchBallastMiB=0.6"], labels) == {
        "prefork": {"BenchCPUWorkMicroseconds": 40, "BenchBallastMiB": 0.6},
        "event": {"BenchCPUWorkMicroseconds": 40}}
    with pytest.raises(g.GateError, match="no server labelled 'nginx'"):
        g.parse_candidate_sets(["nginx:BenchBallastMiB=1"], labels)
    with pytest.raises(g.GateError, match="unknown directive"):
        g.parse_candidate_sets(["BenchCPUWork=1"], labels)
    m = g.with_sets(load_matrix("ci"), {"event": {"BenchBallastMiB": 2}})
    assert [s.set.get("BenchBallastMiB") for s in m.servers] == [None, None, 2]


def test_gate_matrix_runs_only_gated_profiles_without_suites():
    doc = dict(MINIMAL, suites=["smoke"], profiles={"a": {"driver": "loadgen", "duration": 1, "trials": 2},
                                                    "b": {"driver": "idle", "duration": 1}},
               gate={"profiles": ["a"]})
    m = g.gate_matrix(parse_matrix(doc), trials=6)
    assert m.suites == () and [p.name for p in m.profiles] == ["a"] and m.trials == 6
    assert m.trials_of(m.profiles[0]) == 6


# -- the injection knobs, live ------------------------------------------------------------------------


def _tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def _measure(sets: dict, requests: int = 100) -> tuple[float, float]:
    """CPU seconds per request of the whole tree, and the largest child PSS (MiB) after serving."""
    from servers.launcher import start

    base = {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 2, "MaxRequestWorkers": 2}
    with start("prefork", {**base, **sets}, timeout=30) as h:
        conn = http.client.HTTPConnection(h.host, h.port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"Hello, World!"
        pids = h.pids()
        before = _tree_cpu(pids)
        for _ in range(requests):
            conn.request("GET", "/")
            conn.getresponse().read()
        cpu = (_tree_cpu(pids) - before) / requests
        conn.close()
        pss = max(psutil.Process(p).memory_full_info().pss for p in h.pids()[1:]) / 2**20
    return cpu, pss


def test_injection_knobs_cost_cpu_per_request_and_memory_per_child():
    plain_cpu, plain_pss = _measure({})
    cpu, pss = _measure({"BenchCPUWorkMicroseconds": 2000, "BenchBallastMiB": 20})
    # 2 ms of thread CPU time per request, by construction; tick-granular accounting loses a little
    assert cpu - plain_cpu >= 0.0015, (plain_cpu, cpu)
    assert pss - plain_pss >= 15, (plain_pss, pss)


def test_each_side_imports_its_own_tree(tmp_path, monkeypatch):
    """--against: a launch directory links the side's packages, and the probe sees where they import from."""
    tree = tmp_path / "tree"
    (tree / "servers").mkdir(parents=True)
    (tree / "servers" / "__init__.py").write_text("")
    (tree / "myapp.py").write_text("")
    launch = tmp_path / "launch"
    sidebyside._link_tree(launch, tree, ["servers", "myapp"], "base", "test")
    assert sorted(p.name for p in launch.iterdir()) == ["myapp.py", "servers"]
    sidebyside._probe(launch, tree, ["servers", "myapp"])
    # without the link `servers` resolves to this project's tree: the probe refuses to go on
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(g.GateError, match="would import servers from"):
        sidebyside._probe(bare, tree, ["servers"])
    # PYTHONSAFEPATH keeps the working directory off sys.path: the same refusal
    monkeypatch.setenv("PYTHONSAFEPATH", "1")
    with pytest.raises(g.GateError, match="PYTHONSAFEPATH"):
        sidebyside._probe(launch, tree, ["servers"])
    with pytest.raises(g.GateError, match="no 'absent' package or module"):
        sidebyside._link_tree(tmp_path / "l2", tree, ["absent"], "base", "test")


def test_a_crash_of_the_harness_is_exit_2_not_a_regression(tmp_path, baseline_file, monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("sampler exploded")

    monkeypatch.setattr(g, "gate_baseline", boom)
    run = save_run(tmp_path, "r", run_doc())
    assert main(["gate", "--baseline", str(baseline_file), "--run", str(run)]) == 2
    assert "sampler exploded" in capsys.readouterr().err
