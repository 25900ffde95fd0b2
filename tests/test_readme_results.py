"""The README's published figures and its "Which MPM for my app" answer agree with their sources.

The headline table must quote results/README.md (the published page) cell for cell, and the
advice section must say what harness/advice_rules.py decides, and what `harness advise
--from-run results/` answers for each example command it shows. Both documents are parsed
here as text, independently of the code that wrote or reads them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from harness import advisor
from harness.advice_rules import KEEPALIVE_MANY, MEMORY_TIE_MIB, RULES, SIMPLICITY, TIE
from harness.report.text import fmt_sig

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGE = (ROOT / "results" / "README.md").read_text(encoding="utf-8")

#: headline column -> (page section, profile, page column)
HEADLINE = {
    "req/s, 50 connections": ("1. Throughput and latency", "hello-closed", "req/s"),
    "CPU-µs/request": ("2. CPU per request", "hello-closed", "CPU-us/req"),
    "peak PSS MiB": ("3. Memory", "hello-closed", "PSS peak MiB"),
    "p99 ms at 1000 req/s (open loop)": ("1. Throughput and latency", "hello-open", "p99 ms"),
}
IDLE_COLUMN = "PSS per idle keep-alive connection KiB (answered)"


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section."""
    body = text.split(f"\n## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def table(text: str) -> list[dict[str, str]]:
    """The first markdown table of ``text``: a dict per row, header -> cell."""
    lines = []
    for line in text.splitlines():
        if line.startswith("|"):
            lines.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif lines:
            break
    return [dict(zip(lines[0], row)) for row in lines[2:]]


def page_cell(title: str, server: str, profile: str, column: str) -> str:
    """A page cell's median: the text before the ``(min–max)`` the page adds for several trials."""
    row = next(r for r in table(section(PAGE, title)) if (r["server"], r["profile"]) == (server, profile))
    return row[column].split(" (")[0]


HEADLINE_ROWS = table(section(README, "Published results"))


def test_the_headline_table_has_every_server_of_the_published_run():
    servers = [r["server"] for r in table(section(PAGE, "1. Throughput and latency")) if r["profile"] == "hello-closed"]
    assert [r["server"] for r in HEADLINE_ROWS] == servers
    assert set(HEADLINE_ROWS[0]) == {"server", *HEADLINE, IDLE_COLUMN}


@pytest.mark.parametrize("row", HEADLINE_ROWS, ids=lambda r: r["server"])
def test_the_headline_figures_are_the_published_pages(row):
    server = row["server"]
    for column, (title, profile, page_column) in HEADLINE.items():
        assert row[column] == page_cell(title, server, profile, page_column), (server, column)
    kib, answered = re.fullmatch(r"(\S+) \((\S+)\)", row[IDLE_COLUMN]).groups()
    assert kib == page_cell("3. Memory", server, "idle-keepalive", "PSS/idle conn KiB")
    assert answered == page_cell("3. Memory", server, "idle-keepalive", "answered")


def test_the_headline_names_its_run_and_links_the_performance_notes():
    run_id = PAGE.split("published figures of run `", 1)[1].split("`", 1)[0]
    started = re.search(r"- Started (\d{4}-\d\d-\d\d)T", PAGE)[1]
    published = section(README, "Published results")
    assert started in published and "merged" in published and "medians of 3 trials" in published
    assert f"--matrix {run_id.split('-', 1)[1]} --publish" in published
    assert "](docs/performance.md)" in published


# -- "Which MPM for my app" -----------------------------------------------------------------------

ADVICE = section(README, "Which MPM for my app")
RULE_ROWS = table(ADVICE)


def test_the_advice_table_lists_every_rule_in_the_order_they_are_tried():
    assert [r["rule"].strip("`") for r in RULE_ROWS] == list(RULES)
    assert "](docs/advisor.md)" in ADVICE
    mpm = {r["rule"].strip("`"): r["MPM"] for r in RULE_ROWS}
    assert (mpm["thread-unsafe"], mpm["waiting-clients"], mpm["no-measurements"]) == ("prefork", "event", "event")


def test_the_advice_tables_thresholds_are_the_rules():
    rows = {r["rule"].strip("`"): r for r in RULE_ROWS}
    assert f"share ≥ {KEEPALIVE_MANY:g}" in rows["waiting-clients"]["your app"]
    best = rows["best-fit"]["why"]
    assert f"within {TIE * 100:g} %" in best and f"max({TIE * 100:g} %, {MEMORY_TIE_MIB:g} MiB)" in best
    assert f"({', '.join(SIMPLICITY)})" in best
    assert "unknown counts as no" in rows["thread-unsafe"]["your app"]


EXAMPLES = [line for line in ADVICE.splitlines() if line.startswith("harness advise --from-run results/")]


def _advise(command: str, capsys) -> dict:
    argv = shlex.split(command.split("#", 1)[0])[2:]
    assert advisor.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("line", EXAMPLES)
def test_each_example_gets_the_mpm_and_size_it_shows(line, capsys):
    rec = _advise(line, capsys)["recommendation"]
    said = line.split("#", 1)[1].strip()
    assert said.split(",")[0] == rec["mpm"]
    d = rec["sizing"]["directives"]
    children = re.search(r"(\d+) children", said)
    threads = re.search(r"(\d+) x (\d+) threads", said)
    if children:
        assert int(children[1]) == d["MaxRequestWorkers"]
    if threads:
        assert (int(threads[1]), int(threads[2])) == (d["ServerLimit"], d["ThreadsPerChild"])
    if "RequestReadTimeout" in said:
        assert "RequestReadTimeout" in d


def test_the_tie_the_readme_describes_is_the_advisors(capsys):
    assert len(EXAMPLES) >= 3
    doc = _advise(EXAMPLES[-1], capsys)
    rec, ms = doc["recommendation"], doc["measurements"]
    assert rec["rule"] == "best-fit" and "A TIE" in rec["decision"]
    other = next(m for m in ("worker", "event") if m != rec["mpm"])
    tie = ADVICE.split("```", 2)[2]
    for figure in (ms[rec["mpm"]]["rps"], ms[other]["rps"], ms[rec["mpm"]]["cpu_us_per_request"],
                   ms[other]["cpu_us_per_request"]):
        assert fmt_sig(figure) in tie
    assert f"{ms[rec['mpm']]['rps_spread'] * 100:.0f} %" in tie
