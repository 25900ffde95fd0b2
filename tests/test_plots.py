"""Plots, the HTML report and run comparison on a fixed results document (no server, no timing).

tests/data/run_fixture.json has no sweep, latency histograms, sampler series
or scoreboard samples (to stay small); :func:`full_doc` adds synthetic ones
with known values, so every plot has data and its inputs are known.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from harness.compare import change, compare_rows, environment_diff, write_compare
from harness.matrix import MatrixError, parse_matrix
from harness.report.files import report_command, write_tables
from harness.report.latency import spectrum
from harness.report.page import render_report
from harness.report.plots import PLOTS, cpu_percent, render_plots
from harness.scoreboard import ScoreboardPoller, fold

FIXTURE = Path(__file__).parent / "data" / "run_fixture.json"
SERVERS = ("prefork", "worker", "event")


def _hdr(values_us: list[int]) -> str:
    h = HdrHistogram(1, 60_000_000, 3)
    for v in values_us:
        h.record_value(v)
    return h.encode().decode("ascii")


def full_doc() -> dict:
    """The fixture plus a connection sweep, latency histograms, sampler series and scoreboard samples."""
    doc = json.loads(FIXTURE.read_text())
    profiles = doc["matrix"]["profiles"]
    for n in (1, 8, 32):
        profiles[f"sweep-c{n}"] = {"driver": "loadgen", "mode": "closed", "connections": n, "duration": 1,
                                   "sweep_of": "sweep"}
        for i, s in enumerate(SERVERS):
            status = "invalid" if (s == "prefork" and n == 32) else "ok"
            doc["cells"].append({"kind": "profile", "server": s, "profile": f"sweep-c{n}", "driver": "loadgen",
                                 "trial": 1, "status": status, "flags": ["starved"] if status != "ok" else [],
                                 "reason": "", "metrics": {"rps": 1000.0 * (i + 1) * min(n, 8)}})
    for c in doc["cells"]:
        if c["kind"] != "profile" or c["status"] not in ("ok", "invalid") or c["profile"].startswith("sweep"):
            continue
        if c["profile"] == "hello-open" and c["status"] == "ok":
            c["result"]["latency_us"]["hdr"] = _hdr(list(range(100, 100_100, 100)))  # 0.1 .. 100 ms uniform
        t = [round(0.1 * k, 1) for k in range(31)]
        c["series"] = {"t": t, "cpu": [0.05 * k for k in range(31)],  # half a core
                       "pss": [(20 + (k % 2)) * 2**20 if k % 10 == 0 else None for k in range(31)]}
        c["scoreboard"] = {"t": t[::3], "busy": [2] * 11, "idle": [1] * 11, "keepalive": [1] * 11,
                           "closing": [0] * 11, "async_keepalive": [5 if c["server"] == "event" else None] * 11,
                           "async_closing": [0] * 11, "misses": 1, "unavailable": ""}
    return doc


def _png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# -- plots ----------------------------------------------------------------------------------------

def test_every_plot_is_drawn_from_a_complete_run(tmp_path):
    plots = render_plots(full_doc(), tmp_path / "plots")
    assert plots.missing == {}
    keys = {f.key for f in plots.figures}
    assert keys == {"throughput_vs_concurrency", "latency_spectrum_hello-open", "pss_cpu_over_time", "scoreboard",
                    "slowclient_availability", "threadsafety_corruption"}
    for f in plots.figures:
        assert f.path.parent == tmp_path / "plots" and _png(f.path), f.key
        assert f.title and f.caption
    assert all(any(k.startswith(p) for k in keys) for p in PLOTS)


def test_missing_data_says_why_each_plot_is_not_drawn(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    plots = render_plots(doc, tmp_path)
    assert "sweep" in plots.missing["throughput_vs_concurrency"]
    assert "open-loop" in plots.missing["latency_spectrum"]
    assert "series" in plots.missing["pss_cpu_over_time"]
    assert "server-status" in plots.missing["scoreboard"]
    assert {f.key for f in plots.figures} == {"slowclient_availability", "threadsafety_corruption"}
    # gunicorn-style: every poll recorded the status page as unavailable; the reason is passed on
    for c in doc["cells"]:
        if c["kind"] == "profile":
            c["scoreboard"] = {"t": [], "unavailable": "/server-status?auto answered 404"}
    assert render_plots(doc, tmp_path).missing["scoreboard"] == "/server-status?auto answered 404"


def test_spectrum_of_added_histograms_is_monotonic_and_ends_at_the_maximum():
    a = _hdr(list(range(1000, 501_000, 1000)))  # 1 .. 500 ms
    b = _hdr(list(range(501_000, 1_001_000, 1000)) + [5_000_000])  # 501 .. 1000 ms and one 5 s stall
    pts = spectrum([a, b, "not base64"])
    qs, vs = [q for q, _ in pts], [v for _, v in pts]
    assert qs == sorted(qs) and vs == sorted(vs)
    p50 = next(v for q, v in pts if q == 50.0)
    assert 495 <= p50 <= 505  # the two histograms were added: the median is the middle of 1..1000 ms
    assert vs[-1] == pytest.approx(5000, rel=0.001)
    assert 1 / (1 - qs[-2] / 100) <= 1001  # no percentile finer than the count resolves
    assert spectrum([]) == [] and spectrum(["garbage"]) == []


def test_cpu_percent_from_cumulative_seconds():
    t = [0.1 * k for k in range(21)]
    xs, ys = cpu_percent(t, [0.025 * k for k in range(21)])  # a quarter of a core
    assert len(xs) == 4 and all(y == pytest.approx(25.0) for y in ys)
    assert cpu_percent(t, [None] * 21) == ([], [])


def test_throughput_sweep_uses_valid_points_and_marks_invalid_ones(tmp_path):
    from harness.report import plots as plots_module

    drawn = {}
    real = plots_module.plt.Axes.scatter

    def spy(self, x, y, *a, **kw):
        drawn.setdefault("hollow", []).append((list(x), list(y)))
        return real(self, x, y, *a, **kw)

    plots_module.plt.Axes.scatter = spy
    try:
        render_plots(full_doc(), tmp_path)
    finally:
        plots_module.plt.Axes.scatter = real
    assert drawn["hollow"] == [([32], [8000.0])]  # prefork at 32 connections had no valid trial


# -- scoreboard poller ----------------------------------------------------------------------------

def test_fold_counts_states():
    assert fold("_WRKKC.G..S") == {"busy": 3, "idle": 1, "keepalive": 2, "closing": 2}


class _Status(http.server.BaseHTTPRequestHandler):
    body = b"ServerMPM: event\nConnsAsyncKeepAlive: 7\nScoreboard: _WWK....\n"
    code = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.code)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def _serve(handler):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_poller_samples_a_status_page_until_stopped():
    srv = _serve(_Status)
    try:
        poller = ScoreboardPoller(f"http://127.0.0.1:{srv.server_port}", interval=0.02).start()
        deadline = threading.Event()
        for _ in range(250):  # wait on the condition (3 samples), at most 5 s
            if len(poller.columns["t"]) >= 3:
                break
            deadline.wait(0.02)
        board = poller.stop()
    finally:
        srv.shutdown()
    assert len(board["t"]) >= 3 and board["t"] == sorted(board["t"])
    assert set(board["busy"]) == {2} and set(board["keepalive"]) == {1} and set(board["idle"]) == {1}
    assert set(board["async_keepalive"]) == {7} and board["unavailable"] == ""


def test_poller_stops_at_once_on_a_server_without_status():
    class NoStatus(_Status):
        code = 404

    srv = _serve(NoStatus)
    try:
        poller = ScoreboardPoller(f"http://127.0.0.1:{srv.server_port}", interval=0.02).start()
        poller._thread.join(5)
        assert not poller._thread.is_alive()
        board = poller.stop()
    finally:
        srv.shutdown()
    assert board["unavailable"] == "/server-status?auto answered 404" and board["t"] == []


# -- the HTML report ------------------------------------------------------------------------------

class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.ids, self.external, self.scripts = [], set(), [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])


def test_report_html_is_self_contained_with_every_plot_config_and_conformance_case(tmp_path):
    doc = full_doc()
    paths = write_tables(doc, tmp_path)
    assert paths["html"] == tmp_path / "report.html" and paths["markdown"] == tmp_path / "tables.md"
    plot_paths = [p for k, p in paths.items() if k.startswith("plot:")]
    assert len(plot_paths) == 6 and all(_png(p) for p in plot_paths)
    page = paths["html"].read_text()
    parsed = _Page()
    parsed.feed(page)
    assert len(parsed.imgs) == 6 and all(s.startswith("data:image/png;base64,") for s in parsed.imgs)
    assert parsed.external == [] and parsed.scripts == 0
    assert {"plots", "environment", "throughput", "configs", "conformance-matrix"} <= parsed.ids
    for s in ("prefork", "worker", "event"):
        assert f"<summary>{s} ({s})" in page  # each server's effective configuration
    assert "# worker (effective)" in page and "Set by the matrix: StartServers 2, ServerLimit 2, ThreadsPerChild 25" in page
    # the conformance matrix: a case's RFC section and the bytes it sends, HTML-escaped
    assert "row01-get" in page and "RFC 9110 §6.6.1" in page and "GET / HTTP/1.1\\r\\n" in page
    judged = sum(len(c["cases"]) for c in doc["cells"] if c["kind"] == "suite" and c["suite"] == "conformance")
    assert judged and len(re.findall(r'<td class="v-(?:pass|warn|fail|na)">', page)) == judged


def test_report_without_plot_data_lists_what_is_missing(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    page = render_report(doc, render_plots(doc, tmp_path))
    assert "Not drawn for this run" in page and "throughput_vs_concurrency" in page


def test_report_command_regenerates_and_publishes_plots(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(full_doc()))
    results = tmp_path / "results"
    (results / "plots").mkdir(parents=True)
    (results / "plots" / "stale.png").write_bytes(b"old")
    out = []

    class Out:
        def write(self, text):
            out.append(text)

    paths = report_command(run_dir, publish=True, results_dir=results, out=Out())
    assert (run_dir / "report.html").is_file() and len(list((run_dir / "plots").glob("*.png"))) == 6
    published = sorted(p.name for p in (results / "plots").glob("*.png"))
    assert len(published) == 6 and "stale.png" not in published
    readme = paths["readme"].read_text()
    assert "![scoreboard](plots/scoreboard.png)" in readme and "## 1. Throughput and latency" in readme


# -- comparing two runs ---------------------------------------------------------------------------

def test_compare_marks_changes_by_the_metrics_direction(tmp_path):
    a = json.loads(FIXTURE.read_text())
    b = copy.deepcopy(a)
    b["run_id"] = "B"
    b["environment"]["kernel"] = "another-kernel"
    for c in b["cells"]:
        if c["kind"] == "profile" and c["server"] == "event" and c["profile"] == "hello-closed":
            c["metrics"]["rps"] *= 0.8
            c["metrics"]["cpu_us_per_request"] *= 0.5
    b.pop("summary")
    rows = {(r["server"], r["profile"]): r for r in compare_rows(a, b)}
    rps_a, rps_b, pct, word = rows[("event", "hello-closed")]["rps"]
    assert pct == pytest.approx(-20.0) and word == "worse" and rps_b == pytest.approx(rps_a * 0.8)
    assert rows[("event", "hello-closed")]["cpu_us_per_request"][2:] == (pytest.approx(-50.0), "better")
    assert rows[("worker", "hello-closed")]["rps"][3] == "same"
    assert ("kernel", a["environment"]["kernel"], "another-kernel") in environment_diff(a, b)
    assert change(100, 120, "pss_peak_mib") == (pytest.approx(20.0), "worse")
    assert change(None, 1, "rps") == (None, "")
    for name, d in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(d))
    paths = write_compare(tmp_path / "a", tmp_path / "b")
    assert paths["html"] == tmp_path / "b" / "compare.html" and _png(paths["plot"])
    assert "-20% worse" in paths["markdown"].read_text() and "data:image/png;base64," in paths["html"].read_text()


# -- the sweep in the matrix ----------------------------------------------------------------------

def test_a_sweep_becomes_one_profile_per_connection_count():
    m = parse_matrix({"servers": ["event"], "profiles": {
        "s": {"driver": "loadgen", "sweep": [1, 8, 8, 64], "duration": 1}}}, source="m.yaml")
    assert [(p.name, p.get("connections"), p.sweep_of) for p in m.profiles] == [
        ("s-c1", 1, "s"), ("s-c8", 8, "s"), ("s-c64", 64, "s")]
    assert m.to_dict()["profiles"]["s-c8"]["sweep_of"] == "s"


@pytest.mark.parametrize("profiles, message", [
    ({"s": {"driver": "loadgen", "mode": "open", "rate": 10, "sweep": [1, 2], "duration": 1}},
     "m.yaml: profiles.s.sweep needs mode closed"),
    ({"s": {"driver": "loadgen", "sweep": [0, 2], "duration": 1}}, "profiles.s.sweep must be a list of positive"),
    ({"s": {"driver": "loadgen", "sweep": [1, 2], "duration": 1}, "s-c2": {"driver": "loadgen", "duration": 1}},
     "profile 's-c2' appears twice"),
    ({"s": {"driver": "loadgen", "sweep": 8, "duration": 1}}, "m.yaml: profiles.s.'sweep' must be a list"),
])
def test_bad_sweeps_name_the_key_and_file(profiles, message):
    with pytest.raises(MatrixError, match=re.escape(message)):
        parse_matrix({"servers": ["event"], "profiles": profiles}, source="m.yaml")


def test_hostile_text_from_the_document_is_escaped(tmp_path):
    doc = full_doc()
    doc["servers"]["worker"]["effective_config"] = "</pre><script>alert(1)</script>"
    doc["servers"]["worker"]["notes"] = ["<img src=x onerror=alert(1)>"]
    for c in doc["cells"]:
        if c["kind"] == "suite":
            for case in c["cases"]:
                case["message"] = "<script>bad()</script>"
                (case.get("properties") or {})["reasons"] = "</td><script>bad()</script>"
    page = render_report(doc, render_plots(doc, tmp_path))
    parsed = _Page()
    parsed.feed(page)
    assert parsed.scripts == 0 and len(parsed.imgs) == 6
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_failed_and_skipped_cells_and_torn_scoreboards_do_not_break_the_plots(tmp_path):
    doc = full_doc()
    for c in doc["cells"]:
        if c["kind"] == "profile" and c["server"] == "worker":
            c.update(status="failed", result=None, series=None, metrics={}, reason="server exited")
        if c["kind"] == "profile" and c["server"] == "event" and c.get("scoreboard"):
            c["scoreboard"]["busy"] = c["scoreboard"]["busy"][:-1]  # a poll cut off between columns
    doc["status"] = "interrupted"
    plots = render_plots(doc, tmp_path)
    assert plots.missing == {} and len(plots.figures) == 6
    board = next(f for f in plots.figures if f.key == "scoreboard")
    assert "worker (no samples)" in board.caption


def test_a_plot_that_fails_is_reported_and_the_rest_is_written(tmp_path, monkeypatch):
    from harness.report import plots as plots_module

    def broken(run, colours, out):
        raise KeyError("busy")

    monkeypatch.setattr(plots_module, "_threadsafety", broken)
    paths = write_tables(full_doc(), tmp_path)
    assert paths["markdown"].is_file() and paths["html"].is_file()
    assert "plot:threadsafety_corruption" not in paths and "plot:scoreboard" in paths
    assert "drawing failed: KeyError" in paths["html"].read_text()


def test_poller_records_no_status_page_even_after_a_first_poll_timed_out():
    import time

    class SlowThen404(_Status):
        calls = 0

        def do_GET(self):  # noqa: N802
            type(self).calls += 1
            if type(self).calls == 1:
                time.sleep(0.6)  # longer than the poller's timeout: the first poll is a miss
            self.code = 404
            super().do_GET()

    srv = _serve(SlowThen404)
    try:
        poller = ScoreboardPoller(f"http://127.0.0.1:{srv.server_port}", interval=0.02, timeout=0.2).start()
        poller._thread.join(5)
        board = poller.stop()
    finally:
        srv.shutdown()
    assert board["misses"] >= 1 and board["unavailable"] == "/server-status?auto answered 404" and board["t"] == []
