"""``harness advise --profile NAME`` (workload key ``profile``): which closed-loop profile of a
``--from-run`` run or published page the throughput figures come from (docs/advisor.md, What is
measured). ``hello-closed`` stays the default; ``page-closed``, the realistic handler, is where the
servers' own overheads stop mattering and the peers' lead shrinks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import advisor as adv

from .test_advisor import _cell, write_run

#: label -> (hello-closed req/s, page-closed req/s, PSS MiB): granian leads on hello, ties on the page
FIGURES = {"worker": (28000.0, 880.0, 28.0), "granian": (68000.0, 900.0, 46.0)}
BASE = ["--thread-safe", "yes", "--concurrency", "50", "--cores", "2"]


def _two_profile_run(tmp_path: Path, page_cells: bool = True) -> Path:
    """Our worker and granian on hello-closed and page-closed, plus an open-loop and an idle profile."""
    pool = {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 25}
    servers = {"worker": {"server": "worker", "set": {**pool, "MaxRequestWorkers": 50}, "available": True},
               "granian": {"server": "granian", "set": pool, "available": True}}
    cells = []
    for label, (hello, page, pss) in FIGURES.items():
        for profile, rps in (("hello-closed", hello), ("page-closed", page))[: 2 if page_cells else 1]:
            cells.append(_cell(label, profile, "loadgen", rps=rps, cpu_us_per_request=1e6 / rps, p99_ms=3.0,
                               pss_peak_mib=pss, rss_peak_mib=pss * 2))
        cells.append(_cell(label, "hello-open", "loadgen", rps=1000.0, p99_ms=2.0))
        cells.append(_cell(label, "idle-keepalive", "idle", pss_peak_mib=pss, answered_fraction=1.0))
    return write_run(tmp_path, "profiles", servers, cells, {
        "hello-closed": {"driver": "loadgen", "mode": "closed", "connections": 50, "duration": 2},
        "hello-open": {"driver": "loadgen", "mode": "open", "connections": 50, "rate": 1000, "duration": 2},
        "page-closed": {"driver": "loadgen", "mode": "closed", "connections": 50, "duration": 2, "path": "/page"},
        "idle-keepalive": {"driver": "idle", "connections": 200, "duration": 2}})


def _advice(capsys, argv: list[str]) -> dict:
    assert adv.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_default_is_hello_closed_and_profile_chooses_another(tmp_path, capsys):
    run = _two_profile_run(tmp_path)
    hello = _advice(capsys, ["--from-run", str(run), *BASE])
    assert hello["measurements"]["worker"]["rps"] == 28000.0 and hello["run"]["profile"] == "hello-closed"
    assert (hello["peers"]["verdict"], hello["peers"]["best"]) == ("peer-better", "granian")
    page = _advice(capsys, ["--from-run", str(run), *BASE, "--profile", "page-closed"])
    assert page["measurements"]["worker"]["rps"] == 880.0 and page["run"]["profile"] == "page-closed"
    assert page["workload"]["profile"] == "page-closed"
    # the peers are read from the same profile: granian's 900 is within the tie band of our 880
    assert page["peers"]["verdict"] == "ours-best" and page["peers"]["ratio"] == pytest.approx(900 / 880)
    assert page["measurements"]["worker"]["idle_answered_fraction"] == 1.0  # the idle profile is still read


def test_the_text_names_the_profile_in_the_workload_and_the_evidence(tmp_path, capsys):
    run = _two_profile_run(tmp_path)
    assert adv.main(["--from-run", str(run), *BASE, "--profile", "page-closed"]) == 0
    text = capsys.readouterr().out
    assert "throughput profile   page-closed" in text
    assert f"{run}, profile page-closed (" in text


def test_the_workload_file_key_and_the_flag_overriding_it(tmp_path, capsys):
    run = _two_profile_run(tmp_path)
    wl = tmp_path / "workload.yaml"
    wl.write_text("thread_safe: yes\nconcurrency: 50\nprofile: page-closed\n")
    assert _advice(capsys, ["--workload", str(wl), "--from-run", str(run)])["run"]["profile"] == "page-closed"
    flagged = _advice(capsys, ["--workload", str(wl), "--from-run", str(run), "--profile", "hello-closed"])
    assert flagged["run"]["profile"] == "hello-closed" and flagged["measurements"]["worker"]["rps"] == 28000.0


@pytest.mark.parametrize("profile, words", [
    ("nope", ["--profile: profile 'nope' is not in the run", "its closed-loop profiles: hello-closed, page-closed"]),
    ("hello-open", ["'hello-open'", "not a closed-loop load (driver loadgen, open loop)",
                    "hello-closed, page-closed"]),
    ("idle-keepalive", ["'idle-keepalive'", "not a closed-loop load (driver idle)"]),
])
def test_a_profile_the_run_has_no_closed_loop_figures_for_is_refused_naming_the_others(tmp_path, capsys, profile,
                                                                                        words):
    run = _two_profile_run(tmp_path)
    assert adv.main(["--from-run", str(run), *BASE, "--profile", profile]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_a_profile_in_the_matrix_that_no_server_ran_is_refused(tmp_path, capsys):
    run = _two_profile_run(tmp_path, page_cells=False)
    assert adv.main(["--from-run", str(run), *BASE, "--profile", "page-closed"]) == 2
    assert "profile 'page-closed' has no figures in the run" in capsys.readouterr().err


def test_profile_without_from_run_is_refused_before_measuring(tmp_path, capsys):
    assert adv.main([*BASE, "--profile", "page-closed", "--results-dir", str(tmp_path / "runs")]) == 2
    assert "--profile page-closed: needs --from-run" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing was measured
    wl = tmp_path / "workload.yaml"
    wl.write_text("thread_safe: yes\nprofile: page-closed\n")
    assert adv.main(["--workload", str(wl), "--results-dir", str(tmp_path / "runs")]) == 2
    assert f"{wl}: profile page-closed: needs --from-run" in capsys.readouterr().err


def test_a_published_page_gives_the_chosen_profiles_rows(tmp_path, capsys):
    from harness.report.files import publish

    run = json.loads((_two_profile_run(tmp_path) / "run.json").read_text())
    run["matrix"]["servers"] = [{"label": k, "server": v["server"], "set": v["set"]}
                                for k, v in run["servers"].items()]
    publish(run, tmp_path / "results")
    page = _advice(capsys, ["--from-run", str(tmp_path / "results"), *BASE, "--profile", "page-closed"])
    assert page["measurements"]["worker"]["rps"] == 880.0 and page["peers"]["verdict"] == "ours-best"
    assert page["run"]["profile"] == "page-closed"
    assert adv.main(["--from-run", str(tmp_path / "results"), *BASE, "--profile", "nope"]) == 2
    assert "is not in the published page" in capsys.readouterr().err
