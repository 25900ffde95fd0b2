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

#: headline column -> (page section, profile, page column); the ceiling table has all but the page column
HEADLINE = {
    "req/s, 50 connections": ("1. Throughput and latency", "hello-closed", "req/s"),
    "CPU-µs/request": ("2. CPU per request", "hello-closed", "CPU-us/req"),
    "peak PSS MiB": ("3. Memory", "hello-closed", "PSS peak MiB"),
    "p99 ms at 1000 req/s (open loop)": ("1. Throughput and latency", "hello-open", "p99 ms"),
}
PAGE_COLUMN = "req/s on /page"
PAGE_SOURCE = ("1. Throughput and latency", "page-closed", "req/s")
IDLE_COLUMN = "PSS per idle keep-alive connection KiB (answered)"
NOT_APPLICABLE = "skipped: not applicable"


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section."""
    body = text.split(f"\n## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table of ``text``, in order: a dict per row, header -> cell."""
    found: list[list[list[str]]] = []
    lines: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            lines.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif lines:
            found.append(lines)
            lines = []
    return [[dict(zip(t[0], row)) for row in t[2:]] for t in found]


def table(text: str) -> list[dict[str, str]]:
    """The first markdown table of ``text``."""
    return tables(text)[0]


def page_cell(title: str, server: str, profile: str, column: str) -> str:
    """A page cell's median: the text before the ``(min–max)`` the page adds for several trials."""
    row = next(r for r in table(section(PAGE, title)) if (r["server"], r["profile"]) == (server, profile))
    return row[column].split(" (")[0]


PUBLISHED = section(README, "Published results")
HEADLINE_ROWS, CEILING_ROWS = tables(PUBLISHED)[:2]
PAGE_SERVERS = [r["server"] for r in table(section(PAGE, "1. Throughput and latency")) if r["profile"] == "hello-closed"]


def _serves_files(server: str) -> bool:
    """The page marks the realistic page not applicable to a server that serves files, not the app."""
    return page_cell(*PAGE_SOURCE[:1], server, *PAGE_SOURCE[1:]).startswith(NOT_APPLICABLE)


def test_the_same_app_table_has_every_app_server_and_the_ceiling_table_the_rest():
    assert [r["server"] for r in HEADLINE_ROWS] == [s for s in PAGE_SERVERS if not _serves_files(s)]
    assert [r["server"] for r in CEILING_ROWS] == [s for s in PAGE_SERVERS if _serves_files(s)]
    assert len(HEADLINE_ROWS) >= 3 and CEILING_ROWS
    assert set(HEADLINE_ROWS[0]) == {"server", *HEADLINE, PAGE_COLUMN, IDLE_COLUMN}
    assert set(CEILING_ROWS[0]) == {"server", *HEADLINE, IDLE_COLUMN}


@pytest.mark.parametrize("row", HEADLINE_ROWS + CEILING_ROWS, ids=lambda r: r["server"])
def test_the_headline_figures_are_the_published_pages(row):
    server = row["server"]
    for column, (title, profile, page_column) in HEADLINE.items():
        assert row[column] == page_cell(title, server, profile, page_column), (server, column)
    if PAGE_COLUMN in row:
        assert row[PAGE_COLUMN] == page_cell(PAGE_SOURCE[0], server, *PAGE_SOURCE[1:]), server
    kib, answered = re.fullmatch(r"(\S+) \((\S+)\)", row[IDLE_COLUMN]).groups()
    assert kib == page_cell("3. Memory", server, "idle-keepalive", "PSS/idle conn KiB")
    assert answered == page_cell("3. Memory", server, "idle-keepalive", "answered")


def test_the_headline_names_its_run_and_links_the_performance_notes():
    run_id = PAGE.split("published figures of run `", 1)[1].split("`", 1)[0]
    started = re.search(r"- Started (\d{4}-\d\d-\d\d)T", PAGE)[1]
    trials = re.search(r"; (\d+) trial\(s\) per profile", PAGE)[1]
    assert started in PUBLISHED and "merged" in PUBLISHED and f"medians of {trials} trials" in PUBLISHED
    assert f"--matrix {run_id.split('-', 1)[1]} --publish" in PUBLISHED
    assert "](docs/performance.md)" in PUBLISHED


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


def test_the_decision_the_readme_describes_is_the_advisors(capsys):
    """The paragraph after the examples explains the last one's best-fit decision with the advisor's figures:
    both MPMs' req/s and the trial spread that made them comparable, then what decided (a tie: CPU per
    request; otherwise memory: the PSS of both)."""
    assert len(EXAMPLES) >= 3
    doc = _advise(EXAMPLES[-1], capsys)
    rec, ms = doc["recommendation"], doc["measurements"]
    assert rec["rule"] == "best-fit"
    other = next(m for m in ("worker", "event") if m != rec["mpm"])
    said = ADVICE.split("```", 2)[2]
    figures = [ms[rec["mpm"]]["rps"], ms[other]["rps"]]
    if "A TIE" in rec["decision"]:
        assert "tie" in said
        figures += [ms[rec["mpm"]]["cpu_us_per_request"], ms[other]["cpu_us_per_request"]]
    else:
        assert "decided by memory" in rec["decision"] and "memory" in said
        figures += [ms[rec["mpm"]]["pss_mib"], ms[other]["pss_mib"]]
    for figure in figures:
        assert fmt_sig(figure) in said, figure
    spread = max(ms[rec["mpm"]]["rps_spread"], ms[other]["rps_spread"])
    assert f"{spread * 100:.0f} %" in said
