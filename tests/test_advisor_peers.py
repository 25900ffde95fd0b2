"""The advisor beside the peers: the same app on uWSGI, granian, gunicorn, waitress or httpd + mod_wsgi.

The rules still choose among our MPMs; then :func:`harness.advice_peers.compare_peers` names a peer
when the run shows it clearly better for the workload (docs/advisor.md, Peers). Everything here runs
on synthetic measurements and synthetic run documents (figures of the order the `all` matrix
measures on a 2-core machine); no server is started.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness import advisor as adv
from harness.advice_peers import compare_peers, peer_sizing
from harness.advice_rules import Measurement, Workload, projected_pss, recommend, size
from harness.results import write_json_atomic
from servers.config import load_config
from servers.launcher import EXTERNAL

from .test_advisor import _cell, write_run

# -- synthetic measurements ------------------------------------------------------------------------------


def ours(label: str, rps: float, pss: float, processes: int, **kw) -> Measurement:
    return Measurement(label, label, processes=processes, connections=50, rps=rps, cpu_us_per_request=40,
                       p99_ms=6, pss_peak_mib=pss, server=label, **kw)


def peer(label: str, model: str, rps: float, pss: float, processes: int, **kw) -> Measurement:
    return Measurement(label, model, processes=processes, connections=50, rps=rps, cpu_us_per_request=15,
                       p99_ms=2, pss_peak_mib=pss, peer=True, server=label, **kw)


def run_of(**peers: Measurement) -> dict[str, Measurement]:
    ms = {"prefork": ours("prefork", 14000, 160, 50), "worker": ours("worker", 28000, 28, 2),
          "event": ours("event", 19000, 28, 2)}
    return {**ms, **peers}


GRANIAN = peer("granian", "worker", 68000, 46, 2)
UWSGI_PROCESSES = peer("uwsgi-processes", "prefork", 43000, 80, 50)
WAITRESS = peer("waitress", "worker", 11000, 13, 1)
SAFE = Workload(thread_safe="yes", concurrency=50, cores=2)
UNSAFE = Workload(thread_safe="no", concurrency=50, cores=2)


def advise(w: Workload, ms: dict[str, Measurement]):
    ours_ms = {k: m for k, m in ms.items() if not m.peer}
    rec = recommend(w, ours_ms)
    mapped = {m.server: adv.peer_mapped(m.server) for m in ms.values() if m.peer}
    return rec, compare_peers(w, rec, ms, mapped)


# -- the comparison --------------------------------------------------------------------------------------


def test_a_clearly_better_peer_is_named_with_its_figures_and_a_sized_config():
    rec, pa = advise(SAFE, run_of(granian=GRANIAN, waitress=WAITRESS))
    assert rec.mpm == "worker"  # the rules for our MPMs are unchanged
    assert pa.verdict == "peer-better" and pa.best.m.label == "granian"
    assert pa.ratio == pytest.approx(68000 / 28000)
    assert "granian" in pa.summary and "68,000" in pa.summary and "28,000" in pa.summary and "2.43x" in pa.summary
    assert pa.config["server"] == "granian"
    # a fixed pool: StartServers processes x ThreadsPerChild threads, validated as the worker model
    d = pa.config["set"]
    assert (d["StartServers"], d["ThreadsPerChild"]) == (2, 25)
    assert load_config("worker", overrides={"Listen": "127.0.0.1:0", **d}).ThreadsPerChild == 25
    assert "MinSpareThreads" not in d  # granian has no equivalent: left out
    assert pa.docs.startswith("docs/reference-servers.md")
    assert pa.caveats == ()  # measured at the advised size, no slow clients: nothing to add


def test_a_named_peer_measured_at_another_size_or_with_slow_clients_carries_caveats():
    w = Workload(thread_safe="yes", concurrency=100, cores=4, slow_clients=True)
    _, pa = advise(w, run_of(granian=GRANIAN))
    assert pa.verdict == "peer-better"
    assert any("measured with 2 processes at 50 connections" in c and "(4 processes)" in c for c in pa.caveats)
    assert any("slow-client suite" in c for c in pa.caveats)


def test_a_peer_within_the_tie_band_or_slower_leaves_ours_and_the_ratio_is_said():
    close = peer("uwsgi-threads", "worker", 29000, 30, 2)  # +3.6 %: inside the 5 % band
    rec, pa = advise(SAFE, run_of(**{"uwsgi-threads": close, "waitress": WAITRESS}))
    assert pa.verdict == "ours-best" and pa.config is None and pa.best.m.label == "uwsgi-threads"
    assert "no peer beats our worker" in pa.summary and "1.04x" in pa.summary and "within the 5 % tie" in pa.summary
    _, pa = advise(SAFE, run_of(waitress=WAITRESS))
    assert pa.verdict == "ours-best" and "0.39x" in pa.summary and "below" in pa.summary
    # a peer whose trials spread 30 % widens the band, as in rule best-fit, and the line says why
    noisy = peer("granian", "worker", 34000, 46, 2, trials=2, rps_spread=0.30)
    _, pa = advise(SAFE, run_of(granian=noisy))
    assert pa.verdict == "ours-best" and pa.band == pytest.approx(0.30)
    assert "1.21x ours (within the 30 % tie band: granian's trials spread 30 %)" in pa.summary


def test_a_thread_unsafe_app_never_gets_a_threaded_peer():
    ms = run_of(granian=GRANIAN, **{"uwsgi-processes": UWSGI_PROCESSES, "modwsgi-event":
                                    peer("modwsgi-event", "event", 90000, 30, 2)})
    rec, pa = advise(UNSAFE, ms)
    assert rec.mpm == "prefork"
    assert pa.verdict == "peer-better" and pa.best.m.label == "uwsgi-processes"
    why = {c.m.label: c.why_not for c in pa.checked}
    assert "threads" in why["granian"] and "threads" in why["modwsgi-event"] and why["uwsgi-processes"] == ""
    # one process per connection: the pool is StartServers, as many as the workload's connections
    assert pa.config["set"]["StartServers"] == 50
    text = adv.render_text(UNSAFE, rec, ms, None, pa)
    assert "  - granian, modwsgi-event: runs several requests per process on threads" in text  # one line per reason
    # with only threaded peers faster, none is named
    _, pa = advise(UNSAFE, run_of(granian=GRANIAN))
    assert pa.verdict == "ours-best" and pa.config is None and pa.best is None


def test_httpd_serving_files_is_never_a_peer_however_fast():
    assert adv.peer_model("apache-event") is None and adv.peer_model("apache-prefork") is None
    assert adv.peer_model("apache-conf") is None and adv.peer_model("worker") is None
    assert (adv.peer_model("granian"), adv.peer_model("uwsgi-processes"), adv.peer_model("modwsgi-daemon")) == \
        ("worker", "prefork", "event")


def test_a_peer_over_the_memory_budget_is_not_named():
    w = Workload(thread_safe="yes", concurrency=50, cores=2, memory_budget_mib=40)
    rec, pa = advise(w, run_of(granian=GRANIAN, waitress=WAITRESS))
    assert rec.mpm == "worker"
    why = {c.m.label: c.why_not for c in pa.checked}
    assert "over the 40 MiB budget by 6 MiB" in why["granian"]
    assert pa.verdict == "ours-best" and pa.best.m.label == "waitress" and pa.config is None
    # the budget is checked at the advised size, projected as for ours: 50 processes for 80 connections
    w = Workload(thread_safe="no", concurrency=80, cores=2, memory_budget_mib=120)
    _, pa = advise(w, run_of(**{"uwsgi-processes": UWSGI_PROCESSES}))
    check = pa.checked[0]
    assert check.pss_at_size == pytest.approx(projected_pss(UWSGI_PROCESSES, 80)) and check.pss_at_size > 120
    assert "over the 120 MiB budget" in check.why_not and "projected" in check.why_not


def test_invalid_or_other_app_peers_are_not_named():
    failed = peer("granian", "worker", 90000, 40, 2, status="invalid", reason="non-2xx")
    other = peer("uwsgi-threads", "worker", 90000, 40, 2, app="other.wsgi:app")
    _, pa = advise(SAFE, run_of(granian=failed, **{"uwsgi-threads": other}))
    why = {c.m.label: c.why_not for c in pa.checked}
    assert why["granian"] == "measured invalid: non-2xx"
    assert "served another app (other.wsgi:app)" in why["uwsgi-threads"]
    assert pa.verdict == "ours-best" and pa.best is None


def test_waiting_clients_exclude_peers_that_pin_a_worker_per_idle_connection():
    w = Workload(thread_safe="yes", keepalive_share=0.8, concurrency=50, cores=2)
    pins = peer("uwsgi-threads", "worker", 50000, 33, 2, idle_connections=200, idle_answered_fraction=0.25)
    parks = peer("granian", "worker", 68000, 46, 2, idle_connections=200, idle_answered_fraction=1.0)
    ms = run_of(**{"uwsgi-threads": pins})
    ms["event"] = ours("event", 19000, 28, 2, idle_connections=200, idle_answered_fraction=1.0)
    rec, pa = advise(w, ms)
    assert rec.mpm == "event" and pa.best is None
    assert "answered 50 of 200 idle keep-alive connections" in pa.checked[0].why_not
    assert "holds a worker thread" in pa.checked[0].why_not
    rec, pa = advise(w, {**ms, "granian": parks})
    assert pa.best.m.label == "granian" and pa.verdict == "peer-better"
    # its idle connections hold no thread: threads for the 50 active ones, httpd's keep-alive timeout
    assert pa.config["set"]["ThreadsPerChild"] == 25 and "KeepAliveTimeout" not in pa.config["set"]
    assert any("hold no worker" in n for n in pa.best.sizing.notes)


def test_ours_without_a_valid_measurement_names_no_peer():
    ms = run_of(granian=GRANIAN)
    ms["worker"] = ours("worker", 28000, 28, 2, status="failed", reason="did not start")
    ms["event"] = ours("event", 19000, 28, 2, status="failed")
    ms["prefork"] = ours("prefork", 14000, 160, 50, status="failed")
    rec, pa = advise(SAFE, ms)
    assert pa.verdict == "no-comparison" and pa.config is None


def test_no_peers_measured_means_no_section():
    rec, pa = advise(SAFE, run_of())
    assert pa is None
    assert "Peers:" not in adv.render_text(SAFE, rec, run_of(), None, pa)


PEER_NAMES = sorted(n for n in EXTERNAL if adv.peer_model(n) is not None)


@pytest.mark.parametrize("name", PEER_NAMES)
@pytest.mark.parametrize("w", [SAFE, UNSAFE, Workload(thread_safe="yes", keepalive_share=0.5, slow_clients=True,
                                                      concurrency=100, cores=4)])
def test_every_peers_sized_set_loads_as_its_model_and_keeps_only_what_it_applies(name, w):
    model, mapped = adv.peer_model(name), adv.peer_mapped(name)
    sizing = peer_sizing(model, w, mapped)
    load_config(model, overrides={"Listen": "127.0.0.1:0", **sizing.directives})  # no ConfigError
    if mapped is not None:
        assert set(sizing.directives) <= set(mapped) | {"ServerLimit", "ThreadLimit", "MaxRequestWorkers"}
        assert sizing.directives["StartServers"] == (size("prefork", w).workers if model == "prefork"
                                                     else size(model, w).processes)
    else:  # httpd + mod_wsgi: httpd's own directives, the model's sizing as is
        assert sizing.directives == size(model, w).directives


# -- from a run document and from a published page ------------------------------------------------------


def _peer_run(tmp_path: Path) -> Path:
    """A run of the `all` shape: our worker, two peers, httpd serving files, 50 connections."""
    pool = {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 25}
    servers = {
        "worker": {"server": "worker", "set": {**pool, "MaxRequestWorkers": 50}, "available": True},
        "granian": {"server": "granian", "set": pool, "available": True},
        "waitress": {"server": "waitress", "set": pool, "available": True},
        "uwsgi-threads": {"server": "uwsgi-threads", "set": pool, "available": False,
                          "unavailable_reason": "uwsgi not found: pip install uwsgi"},
        "apache-event": {"server": "apache-event", "set": {}, "available": True},
    }
    cells = []
    for label, rps, pss, answered in (("worker", 28000.0, 28.0, 0.25), ("granian", 68000.0, 46.0, 1.0),
                                      ("waitress", 11000.0, 13.0, 0.5), ("apache-event", 170000.0, 6.0, 0.2)):
        cells.append(_cell(label, "hello-closed", "loadgen", rps=rps, cpu_us_per_request=1e6 / rps * 0.9,
                           p99_ms=3.0, pss_peak_mib=pss, rss_peak_mib=pss * 2))
        cells.append(_cell(label, "idle-keepalive", "idle", pss_peak_mib=pss, answered_fraction=answered))
    for profile, driver in (("hello-closed", "loadgen"), ("idle-keepalive", "idle")):  # as the runner records it
        cells.append(_cell("uwsgi-threads", profile, driver, status="skipped"))
        cells[-1]["reason"] = "uwsgi not found: pip install uwsgi"
    return write_run(tmp_path, "peers", servers, cells, {
        "hello-closed": {"driver": "loadgen", "mode": "closed", "connections": 50, "duration": 2},
        "idle-keepalive": {"driver": "idle", "connections": 200, "duration": 2}})


def test_from_run_names_the_better_peer_in_json_and_text(tmp_path, capsys):
    run = _peer_run(tmp_path)
    argv = ["--from-run", str(run), "--thread-safe", "yes", "--concurrency", "50", "--cores", "2"]
    assert adv.main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recommendation"]["mpm"] == "worker"
    assert set(doc["measurements"]) == {"worker", "apache-event"}  # peers are not the rules' candidates
    peers = doc["peers"]
    assert (peers["verdict"], peers["best"]) == ("peer-better", "granian")
    assert {p["label"] for p in peers["peers"]} == {"granian", "waitress"}  # not uwsgi (not installed), not httpd
    assert peers["ours"]["label"] == "worker" and peers["ours"]["rps"] == 28000.0
    assert peers["ratio"] == pytest.approx(68000 / 28000)
    entry = peers["config"]
    assert entry["server"] == "granian" and entry["set"]["ThreadsPerChild"] == 25
    assert adv.main(argv) == 0
    text = capsys.readouterr().out
    assert "A peer does better on the same app: granian, 2.43x" in text
    section = text.split("Peers: the same app on other servers", 1)[1]
    row = next([c.strip() for c in x.split("|")[1:-1]] for x in section.splitlines() if x.startswith("| granian"))
    assert row == ["granian", "worker", "NAMED: better", "68,000", "2.43x", "13", "3", "46", "46"]
    assert "apache-event" not in section
    assert "docs/reference-servers.md" in section
    block = "    - label:" + section.split("    - label:", 1)[1].split("\n\n", 1)[0]
    listed = yaml.safe_load(block)
    assert listed == [entry]  # the printed entry is the JSON's, ready for a matrix's servers:


def test_from_run_without_peers_prints_no_peer_section(tmp_path, capsys):
    run = _peer_run(tmp_path)
    doc = json.loads((run / "run.json").read_text())
    doc["servers"] = {k: v for k, v in doc["servers"].items() if k in ("worker", "apache-event")}
    write_json_atomic(run / "run.json", doc)
    assert adv.main(["--from-run", str(run), "--thread-safe", "yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["peers"] is None


def test_the_published_page_gives_the_peers_rows_too(tmp_path):
    from harness.report.files import publish
    from harness.runview import Run

    run = json.loads((_peer_run(tmp_path) / "run.json").read_text())
    run["matrix"]["servers"] = [{"label": k, "server": v["server"], "set": v["set"]}
                                for k, v in run["servers"].items()]
    page = publish(run, tmp_path / "results")
    from_page, _, _ = adv.load_measurements(page, peers=True)
    from_run = adv.measurements_from_run(Run(run), peers=True)
    assert {k for k, m in from_page.items() if m.peer} == {"granian", "waitress"} == \
        {k for k, m in from_run.items() if m.peer}
    for label in ("granian", "waitress"):
        a, b = from_run[label], from_page[label]
        assert (b.mpm, b.server, b.processes) == (a.mpm, a.server, a.processes)
        assert b.rps == pytest.approx(a.rps, rel=0.006) and b.pss_mib == pytest.approx(a.pss_mib, rel=0.006)
    assert not any(m.peer for m in adv.load_measurements(page)[0].values())  # the rules' candidates only
