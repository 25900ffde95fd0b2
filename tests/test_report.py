"""harness/report/ (the tables, and the page's HTML) on a fixed results document (tests/data/run_fixture.json): no server, no timing.

The fixture is a complete run of four servers (prefork, worker, event, and apache-event
marked unavailable), two load profiles with two trials each (hello-closed closed loop,
hello-open open loop; one invalid and one failed cell), one idle profile, and the four
suites with case properties copied from real JUnit XML of the suites (shortened: the
sampler's window keeps the fields the report reads, a few bulky properties are dropped,
and there are no latency histograms or sampler series).
"""

from __future__ import annotations

import copy
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report import files, render_markdown, resolve_reference
from harness.report.files import publish, report_command, write_tables
from harness.report.text import DASH
from harness.report.page import render_report
from harness.report.plots import PlotSet
from harness.report.text import fmt_ratio, fmt_sig
from harness.results import summarize

FIXTURE = Path(__file__).parent / "data" / "run_fixture.json"
SECTIONS = ["## Environment", "## 1. Throughput and latency", "## 2. CPU per request", "## 3. Memory",
            "## 4. Keep-alive and slow-client availability", "## 5. Thread safety", "## 6. Conformance",
            "## 7. Suites", "## 8. Beside the reference servers", "## 9. Flags and failures"]


@pytest.fixture
def doc() -> dict:
    return json.loads(FIXTURE.read_text())


def _cells(doc: dict, server: str, profile: str, status: str = "ok") -> list[dict]:
    return [c for c in doc["cells"] if c["kind"] == "profile" and c["server"] == server
            and c["profile"] == profile and c["status"] == status]


def _row(md: str, *starts: str) -> list[str]:
    """The cells of the first table row whose leading cells are ``starts``."""
    for line in md.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        if cells[: len(starts)] == list(starts):
            return cells
    raise AssertionError(f"no row starting with {starts}")


def _section(md: str, title: str) -> str:
    start = md.index(title)
    nxt = md.find("\n## ", start + len(title))
    return md[start: nxt if nxt != -1 else len(md)]


def _headers(section: str) -> list[str]:
    line = next(ln for ln in section.splitlines() if ln.startswith("|"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_fixture_is_small_and_follows_the_schema(doc):
    assert FIXTURE.stat().st_size < 60_000
    assert doc["schema"] == "mpm-harness/run" and doc["schema_version"] == 1
    assert doc["summary"] == json.loads(json.dumps(summarize(doc)))


# -- formatting -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (5550.6, "5,550"), (12345, "12,300"), (999.7, "1,000"), (0.4567, "0.457"), (14.0, "14.0"),
    (213.35, "213"), (1582.05, "1,580"), (0, "0"), (None, "–"), (float("nan"), "–"),
])
def test_fmt_sig(value, text):
    assert fmt_sig(value) == text


def test_fmt_ratio():
    assert fmt_ratio(1.4249) == "1.42x"
    assert fmt_ratio(None) == "–"


# -- files and sections ---------------------------------------------------------------------------

def test_write_tables_writes_markdown_and_html_with_every_section(doc, tmp_path):
    paths = write_tables(doc, tmp_path)
    assert paths["markdown"] == tmp_path / "tables.md" and paths["html"] == tmp_path / "report.html"
    md = paths["markdown"].read_text()
    for title in SECTIONS:
        assert title in md, title
    page = paths["html"].read_text()
    for title in SECTIONS:
        assert title.removeprefix("## ") in page


def test_environment_block(doc):
    env = _section(render_markdown(doc), "## Environment")
    for text in ("Status: complete", "AMD EPYC x 2", "6.18.44-fc-v595", "CPython 3.11.7", "04caee7d1e2f",
                 "dirty", "server on CPU 0, load generator on CPU 1", "Matrix: fixture", "2 trial(s)",
                 "2025-01-01T12:00:00+00:00", "2025-01-01T12:06:41+00:00",
                 "harness run --matrix tests/data/fixture-matrix.yaml --publish", "Reference server for the ratio "
                 "columns: event"):
        assert text in env, text
    assert "partial" not in env.lower()


# -- table 1: throughput and latency ---------------------------------------------------------------

def test_median_rps_and_ratio_to_the_reference(doc):
    md = render_markdown(doc)
    sec = _section(md, "## 1. Throughput and latency")
    assert "x event" in _headers(sec)
    ok = [c["metrics"]["rps"] for c in _cells(doc, "prefork", "hello-closed")]
    assert len(ok) == 2
    med = statistics.median(ok)
    row = _row(sec, "prefork", "hello-closed")
    assert row[4] == f"{fmt_sig(med)} ({fmt_sig(min(ok))}–{fmt_sig(max(ok))})" == "5,550 (5,410–5,690)"
    ref = statistics.median(c["metrics"]["rps"] for c in _cells(doc, "event", "hello-closed"))
    assert row[8] == f"{med / ref:.2f}x" == "1.25x"
    assert _row(sec, "event", "hello-closed")[8] == "1.00x"


def test_open_and_closed_loop_are_labelled(doc):
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    assert _row(sec, "prefork", "hello-closed")[2] == "closed loop: understates the tail"
    assert _row(sec, "event", "hello-open")[2] == "open loop at 1,000/s: headline latency"
    assert "idle-keepalive" not in sec  # an idle profile has no throughput


def test_invalid_and_failed_trials_leave_the_medians(doc):
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    prefork = _row(sec, "prefork", "hello-open")
    assert prefork[3] == "1/2"
    assert prefork[4] == fmt_sig(_cells(doc, "prefork", "hello-open")[0]["metrics"]["rps"])
    assert prefork[6] == "1.92"  # the ok trial's p99, not the invalid trial's 38.4
    assert "1 invalid" in prefork[-1] and "late_sends" in prefork[-1]
    worker = _row(sec, "worker", "hello-open")
    assert worker[3] == "1/2" and "1 failed" in worker[-1] and "server_exited" in worker[-1]


def test_unavailable_server_shows_skipped_and_dashes(doc):
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    row = _row(sec, "apache-event", "hello-closed")
    assert row[4].startswith("skipped")
    assert row[5:9] == ["–", "–", "–", "–"]


def test_server_with_only_failed_cells_shows_failed_with_the_reason(doc):
    for c in doc["cells"]:
        if c["kind"] == "profile" and c["server"] == "worker" and c["profile"] == "hello-closed":
            c.update(status="failed", reason="server did not start: port in use", metrics={}, flags=[])
    doc["summary"] = summarize(doc)
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    assert _row(sec, "worker", "hello-closed")[4] == "failed: server did not start: port in use"
    cpu = _section(render_markdown(doc), "## 2. CPU per request")
    assert _row(cpu, "worker", "hello-closed")[3] == "failed: server did not start: port in use"


def test_profile_not_run_on_a_server_shows_skipped(doc):
    doc["cells"] = [c for c in doc["cells"] if not (c["kind"] == "profile" and c["server"] == "worker"
                                                     and c["profile"] == "hello-open")]
    doc["summary"] = summarize(doc)
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    assert _row(sec, "worker", "hello-open")[4] == "skipped"


def test_latency_comes_from_merged_histograms_when_present(doc):
    from harness.drivers.base import new_histogram

    for i, c in enumerate(_cells(doc, "event", "hello-open")):
        h = new_histogram()
        for _ in range(99):
            h.record_value(1000)  # 1 ms
        h.record_value(50_000 if i == 0 else 1000)  # one 50 ms stall in trial 1 only
        c["result"]["latency_us"]["hdr"] = h.encode().decode("ascii")
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    row = _row(sec, "event", "hello-open")
    assert row[5] == "1.00"  # merged p50, no ≈ marker
    assert row[7] == "50.0"  # the stall is in the merged p99.9 (1 of 200 samples), not averaged away
    assert _row(sec, "event", "hello-closed")[5].startswith("≈")  # no histograms: median of the trials


# -- tables 2 and 3 -------------------------------------------------------------------------------

def test_cpu_table(doc):
    sec = _section(render_markdown(doc), "## 2. CPU per request")
    assert "lower is better" in sec
    row = _row(sec, "prefork", "hello-closed")
    ok = [c["metrics"]["cpu_us_per_request"] for c in _cells(doc, "prefork", "hello-closed")]
    ref = statistics.median(c["metrics"]["cpu_us_per_request"] for c in _cells(doc, "event", "hello-closed"))
    assert row[3].startswith(fmt_sig(statistics.median(ok)))
    assert row[4] == f"{statistics.median(ok) / ref:.2f}x"
    assert row[5].startswith("62%")  # driver CPU fraction 0.61, 0.63


def test_generator_bound_marker(doc):
    c = _cells(doc, "worker", "hello-closed")[0]
    c.update(status="invalid", flags=["generator_bound"])
    c["metrics"]["driver_cpu_fraction"] = 0.97
    doc["summary"] = summarize(doc)
    sec = _section(render_markdown(doc), "## 2. CPU per request")
    assert _row(sec, "worker", "hello-closed")[-1] == "generator-bound"
    flags = _section(render_markdown(doc), "## 9. Flags and failures")
    assert "generator-bound (driver at 97% of its CPUs)" in flags


def test_memory_table(doc):
    sec = _section(render_markdown(doc), "## 3. Memory")
    assert "overstates prefork" in sec
    prefork = _row(sec, "prefork", "idle-keepalive")
    assert prefork[6] == "612" and prefork[7] == "25%"
    event = _row(sec, "event", "idle-keepalive")
    assert event[6] == "21.8" and event[7] == "100%"
    assert _row(sec, "prefork", "hello-closed")[6] == "–"  # per idle conn only for idle profiles
    assert _row(sec, "worker", "hello-closed")[-1] == f"{41.45 / 36.3:.2f}x"


# -- tables 4-7: suites ---------------------------------------------------------------------------

def test_slowclient_and_keepalive_table(doc):
    sec = _section(render_markdown(doc), "## 4. Keep-alive and slow-client availability")
    headers = _headers(sec)
    assert "slowloris below (9)" in headers and "slowbody capacity (10)" in headers
    event = dict(zip(headers, _row(sec, "event")))
    assert event["slowloris above (40)"] == "100%"
    assert event["slowbody above (40)"] == "48%"  # availability 0.476 in the real XML
    assert event["slowbody capacity (10)"] == "0%"
    assert event["idle keep-alive: new client"] == "served (0.60 ms)"
    assert event["idle conns answered"] == "12/12"
    prefork = dict(zip(headers, _row(sec, "prefork")))
    assert prefork["idle keep-alive: new client"] == "starved (>1500 ms)"
    assert prefork["idle conns answered"] == "4/12"
    assert _row(sec, "apache-event")[1] == "unavailable"


def test_busy_keepalive_column(doc):
    """The busy keep-alive scenario's figures reach table 4; a fixture without the case says "not run"."""
    sec = _section(render_markdown(doc), "## 4. Keep-alive and slow-client availability")
    headers = _headers(sec)
    assert dict(zip(headers, _row(sec, "event")))["busy keep-alive: new clients answered"] == "not run"
    for cell in doc["cells"]:
        if cell.get("kind") == "suite" and cell.get("suite") == "keepalive" and cell["server"] in ("event", "prefork"):
            ok = cell["server"] == "event"
            cell["cases"].append({
                "name": f"test_busy_keepalive_clients_new_client_availability[{cell['server']}]",
                "outcome": "passed", "message": "",
                "properties": {"busy_clients": "40", "busy_clients_answered": "40" if ok else "20",
                               "availability": "1.0" if ok else "0.0", "processes": "4" if ok else "20"}})
    sec = _section(render_markdown(doc), "## 4. Keep-alive and slow-client availability")
    assert dict(zip(headers, _row(sec, "event")))["busy keep-alive: new clients answered"] == \
        "100% (40/40 clients, 4 processes)"
    assert dict(zip(headers, _row(sec, "prefork")))["busy keep-alive: new clients answered"] == \
        "0% (20/40 clients, 20 processes)"


def test_threadsafety_table(doc):
    sec = _section(render_markdown(doc), "## 5. Thread safety")
    headers = _headers(sec)
    demo = dict(zip(headers, _row(sec, "event", "demo_unsafe_current_request_global__corrupted_on_threaded_mpms")))
    assert demo["requests"] == "200" and demo["mismatches"] == "183" and demo["wsgi.multithread"] == "true"
    lost = dict(zip(headers, _row(sec, "event", "demo_unsafe_counter__lost_updates_on_threaded_mpms")))
    assert lost["lost updates"] == "170"
    prefork = dict(zip(headers, _row(sec, "prefork", "demo_unsafe_counter__lost_updates_on_threaded_mpms")))
    assert prefork["lost updates"] == "0" and prefork["wsgi.multithread"] == "false"
    assert "the suites did not finish within 600 s" in _row(sec, "worker")[2]


def test_conformance_counts_match_the_fixture(doc):
    sec = _section(render_markdown(doc), "## 6. Conformance")
    for server in ("prefork", "worker", "event"):
        cell = next(c for c in doc["cells"] if c["kind"] == "suite" and c["server"] == server
                    and c["suite"] == "conformance")
        verdicts = [case["properties"]["verdict"] for case in cell["cases"]]
        row = _row(sec, server)
        # a run from before the kind property: its rows (1, 10, 42) are all request-handling cases
        assert row[1:7] == [str(verdicts.count("pass")), str(verdicts.count("warn")), str(verdicts.count("fail")),
                            "0", "0", str(len(verdicts))], server
        assert row[7:9] == [DASH, "0"], server  # no response-rule case, no response rule recorded
    assert _row(sec, "worker")[1:4] == ["4", "1", "0"]
    assert _row(sec, "event")[1:4] == ["4", "0", "1"]
    assert _row(sec, "row 42")[1:] == ["1/0/0", "1/0/0", "0/0/1"]
    assert "no response rule broken" in sec


def test_conformance_shows_handling_and_the_response_rules_broken(doc):
    """A server missing Date on its errors: handling cases pass, the rule is one row seen in N cases."""
    from suites.conformance.rules import encode

    cell = next(c for c in doc["cells"] if c["kind"] == "suite" and c["server"] == "prefork"
                and c["suite"] == "conformance")
    date = encode(["date"])
    for case in cell["cases"]:  # every handling case saw a 400 or 404 without Date
        case["properties"].update(kind="handling", response_rules=date)
    rule_case = {"name": "test_conformance[prefork-resp-400-date]", "outcome": "failed", "message": "",
                 "properties": {"kind": "response-rules", "verdict": "fail", "row": "responses", "status": "400",
                                "rfc": "RFC 9110 §6.6.1", "reasons": "400 without Date (RFC 9110 §6.6.1 MUST)",
                                "response_rules": encode(["date", "framing"])}}
    cell["cases"].append(rule_case)
    sec = _section(render_markdown(doc), "## 6. Conformance")
    row = _row(sec, "prefork")
    assert row[1:9] == ["5", "0", "0", "0", "0", "5", "0/0/1", "2: date (6), framing (1)"]
    rules = _row(sec, "date")
    assert "RFC 9110 §6.6.1" in rules[1] and rules[2:] == ["6", DASH, DASH]
    assert _row(sec, "framing")[2:] == ["1", DASH, DASH]
    assert _row(sec, "prefork", "resp-400-date")[2] == "fail"


def test_every_warn_and_fail_is_listed_with_reasons_and_rfc(doc):
    sec = _section(render_markdown(doc), "## 6. Conformance")
    warn = _row(sec, "worker", "row10-trailing-sp")
    assert warn[2:4] == ["warn", "200"]
    assert "lenient outcome accepted" in warn[4] and warn[5] == "RFC 9112 §3"
    fail = _row(sec, "event", "row42-cl-cl")
    assert fail[2:4] == ["fail", "400,200"] and fail[5] == "RFC 9112 §6.3"
    assert "extra response" in fail[4] and "\\|" in fail[4]  # the reasons' separator, escaped for markdown


def test_suites_table_gives_reasons(doc):
    sec = _section(render_markdown(doc), "## 7. Suites")
    assert _row(sec, "worker", "threadsafety")[2:] == ["error", "0", "0", "0", "0",
                                                      "the suites did not finish within 600 s (killed)"]
    assert _row(sec, "event", "conformance")[2:4] == ["failed", "4"]
    assert "row42-cl-cl" in _row(sec, "event", "conformance")[-1]
    assert "apt-get install apache2" in _row(sec, "apache-event", "keepalive")[-1]


# -- table 8: peers -------------------------------------------------------------------------------

def test_peers_unavailable(doc):
    sec = _section(render_markdown(doc), "## 8. Beside the reference servers")
    row = _row(sec, "event", "hello-closed", "apache-event")
    assert row[4] == "unavailable" and row[5] == "–"


def test_peers_ratios(doc):
    """apache-event measured: a copy of event's cells at twice the req/s, half the CPU and PSS."""
    doc["servers"]["apache-event"].update(available=True, unavailable_reason="")
    doc["cells"] = [c for c in doc["cells"] if c["server"] != "apache-event"]
    for c in [c for c in doc["cells"] if c["server"] == "event" and c["kind"] == "profile"]:
        c = copy.deepcopy(c)
        c["server"] = "apache-event"
        m = c["metrics"]
        m["rps"] *= 2
        m["pss_peak_mib"] /= 2
        if m.get("cpu_us_per_request"):
            m["cpu_us_per_request"] /= 2
        doc["cells"].append(c)
    doc["summary"] = summarize(doc)
    sec = _section(render_markdown(doc), "## 8. Beside the reference servers")
    row = _row(sec, "event", "hello-closed", "apache-event")
    assert row[5] == "0.50x" and row[8] == "2.00x" and row[11] == "2.00x"
    assert row[4] == fmt_sig(2 * statistics.median(c["metrics"]["rps"] for c in _cells(doc, "event", "hello-closed")))


def test_no_peers_no_section(doc):
    doc["matrix"]["peers"] = {}
    assert "Beside the reference servers" not in render_markdown(doc)


# -- table 9: flags and failures ------------------------------------------------------------------

def test_flags_and_failures(doc):
    sec = _section(render_markdown(doc), "## 9. Flags and failures")
    failed = _row(sec, "worker", "hello-open", "2")
    assert failed[3:] == ["failed", "server exited (status -9) during hello-open", "server_exited"]
    invalid = _row(sec, "prefork", "hello-open", "2")
    assert invalid[3] == "invalid" and invalid[5] == "errors, late_sends"
    assert "15 errors (timeout 12, reset 3)" in invalid[4] and "57 late sends" in invalid[4]
    assert _row(sec, "worker", "suite threadsafety")[3] == "error"
    skipped = next(r for r in sec.splitlines() if r.startswith("| apache-event") and "all 7 cells" in r)
    assert "apt-get install apache2" in skipped
    assert _row(sec[sec.index("Noisy trials"):], "event")[1:3] == ["1", "5"]  # noisy trials per server
    assert "Apache httpd is not installed" in _row(sec, "apache-event", "apache-event")[2]


# -- reference ------------------------------------------------------------------------------------

def test_bad_reference_names_the_valid_labels(doc, tmp_path):
    with pytest.raises(ValueError) as exc:
        render_markdown(doc, reference="nginx")
    msg = str(exc.value)
    assert "'nginx'" in msg
    for label in ("prefork", "worker", "event", "apache-event"):
        assert label in msg
    with pytest.raises(ValueError):
        write_tables(doc, tmp_path / "out", reference="nginx")
    assert not (tmp_path / "out" / "tables.md").exists()


def test_reference_argument_matrix_default_and_none(doc):
    assert resolve_reference(doc) == "event"
    assert resolve_reference(doc, "prefork") == "prefork"
    assert resolve_reference(doc, "") is None
    sec = _section(render_markdown(doc, reference="prefork"), "## 1. Throughput and latency")
    assert _row(sec, "prefork", "hello-closed")[8] == "1.00x"
    assert "x prefork" in _headers(sec)
    doc["matrix"]["reference"] = ""
    sec = _section(render_markdown(doc), "## 1. Throughput and latency")
    assert not any(h.startswith("x ") for h in _headers(sec))
    assert "Reference server: none" in render_markdown(doc)


# -- partial runs ---------------------------------------------------------------------------------

def test_interrupted_run_renders_and_says_partial(doc, tmp_path):
    doc["status"] = "interrupted"
    doc["finished"] = None
    doc["summary"] = {}
    doc["cells"] = [c for c in doc["cells"] if c["kind"] == "profile" and c.get("trial") == 1][:4]
    paths = write_tables(doc, tmp_path)
    md = paths["markdown"].read_text()
    assert "Partial results" in md and "interrupted" in md
    assert "partial" in _section(md, "## Environment").lower()
    # medians recomputed from the cells present
    assert _row(_section(md, "## 1. Throughput and latency"), "prefork", "hello-closed")[4] == fmt_sig(5412.3)
    assert _row(_section(md, "## 1. Throughput and latency"), "event", "hello-closed")[4] == "skipped"
    assert "Partial results" in paths["html"].read_text()


def test_minimal_document_does_not_crash():
    doc = {"schema": "mpm-harness/run", "schema_version": 1, "run_id": "x", "status": "running", "cells": [],
           "summary": {}}
    md = render_markdown(doc)
    assert "Partial results" in md and "## 9. Flags and failures" in md
    render_report(doc, PlotSet())


def test_missing_metrics_show_a_dash(doc):
    for c in _cells(doc, "worker", "hello-closed"):
        c["metrics"]["p999_ms"] = None
        c["metrics"]["cpu_us_per_request"] = None
    doc["summary"] = summarize(doc)
    md = render_markdown(doc)
    assert _row(_section(md, "## 1. Throughput and latency"), "worker", "hello-closed")[7] == "–"
    assert _row(_section(md, "## 2. CPU per request"), "worker", "hello-closed")[3:5] == ["–", "–"]


# -- HTML -----------------------------------------------------------------------------------------

class _Checker(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_well_formed_and_escapes_document_text(doc):
    for c in doc["cells"]:
        if c["kind"] == "profile" and c["status"] == "failed":
            c["reason"] = "server exited <script>alert(1)</script> & more"
    doc["summary"] = summarize(doc)
    page = render_report(doc, PlotSet())
    assert page.startswith("<!DOCTYPE html>")
    p = _Checker()
    p.feed(page)
    p.close()
    assert p.errors == [] and p.stack == []
    assert p.tags.count("table") >= 9 and "style" in p.tags and "script" not in p.tags
    assert "&lt;script&gt;" in page
    assert "server exited <script>alert(1)</script> & more" in "".join(p.text)


# -- publish and the command ----------------------------------------------------------------------

def test_publish_writes_readme(doc, tmp_path):
    path = publish(doc, tmp_path / "results")
    assert path == tmp_path / "results" / "README.md"
    text = path.read_text()
    assert text.startswith("# Published results")
    assert "published figures of run `20250101T120000Z-fixture`" in text
    assert "harness run --matrix tests/data/fixture-matrix.yaml --publish" in text
    for title in SECTIONS:
        assert title in text


def test_report_command(doc, tmp_path, capsys):
    run_dir = tmp_path / "runs" / doc["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(doc))
    paths = report_command(run_dir, reference="worker", publish=True, results_dir=tmp_path / "results")
    out = capsys.readouterr().out
    assert "## 1. Throughput and latency" in out and "x worker" in out
    assert paths["markdown"].exists() and paths["html"].exists() and paths["readme"].exists()
    assert f"wrote {run_dir / 'tables.md'}" in out
    assert files.main([str(run_dir), "--reference", "nope"]) == 2
    assert files.main([str(tmp_path / "missing")]) == 2


def test_growth_section_only_for_soak_length_profiles(doc):
    assert "Growth over time" not in render_markdown(doc)  # the fixture's profiles are short
    doc = copy.deepcopy(doc)
    doc["matrix"]["profiles"]["hello-closed"]["duration"] = 600
    for c in doc["cells"]:
        if c.get("kind") == "profile" and c["profile"] == "hello-closed" and c["status"] == "ok":
            c["metrics"].update(pss_slope_mib_per_min=2.5 if c["server"] == "prefork" else 0.01,
                                fds_slope_per_min=0.0)
            if c["server"] == "prefork":
                c["flags"] = sorted(set(c["flags"]) | {"pss_growth"})
    doc["summary"] = {}
    md = render_markdown(doc)
    section = md.split("Growth over time (soak)", 1)[1].split("\n## ", 1)[0]
    prefork = next(line for line in section.splitlines() if line.startswith("| prefork"))
    assert "2.50" in prefork and "pss_growth" in prefork
    worker = next(line for line in section.splitlines() if line.startswith("| worker"))
    assert worker.rstrip(" |").endswith("no")
