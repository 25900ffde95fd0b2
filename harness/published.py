"""Read a published results page back into the figures it prints, so a run can be queried without its run.json.

    page = read_page("results/README.md")
    page.figures("worker", "hello-closed")     # Figures: status, ok trials, flags, medians, rps spread
    page.matrix["servers"]                     # each server's launcher and directives

``harness run --publish`` (and ``harness report RUN --publish``) write the page
with :func:`harness.report.files.publish`: the run's Environment, the report's
tables (docs/report.md explains every column) and, last, the effective matrix as
YAML (:data:`harness.report.files.MATRIX_HEADING`).  The run document behind a
published page is not committed (docs/results.md), so this module reads the
page itself: tables 1-3 (throughput and latency, CPU per request, memory), the
matrix section, and the Environment's run id, status and pinning.  It reads the
figures exactly as a reader of the page sees them: medians at three significant
figures with their min-max, p99 from the merged histograms, no USS.

``harness advise --from-run results/`` is its user (docs/advisor.md, "Offline:
the published results"): :mod:`harness.advisor` turns these figures into
measurements the same way it turns a run's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["PUBLISHED_PAGE", "PAGE_TITLE", "PageError", "Figures", "PublishedPage", "read_page"]

#: the page ``harness run --publish`` writes into the results folder (harness/report/files.py)
PUBLISHED_PAGE = "README.md"
#: the first line of that page (harness/report/files.py ``publish``)
PAGE_TITLE = "# Published results"
#: the report's section titles read here (harness/report/runtables.py writes them)
_T_ENV, _T_RPS, _T_CPU, _T_MEM = "Environment", "1. Throughput and latency", "2. CPU per request", "3. Memory"
_CELL_SEP = re.compile(r"(?<!\\)\|")  # a table cell's own "|" is written "\|"
_SPREAD = re.compile(r"≈?(?P<median>[^ ]+)(?: \((?P<lo>[^–]+)–(?P<hi>[^)]+)\))?")

#: a table's rows by (server, profile): header -> the cell's text
Rows = Mapping[tuple[str, str], Mapping[str, str]]


class PageError(ValueError):
    """Not a published results page, or one that does not say what its servers ran with."""


@dataclass(frozen=True)
class Figures:
    """One server x profile over its trials, as the report summarises it: read from a run or from its page."""

    status: str  # ok (at least one ok trial), else the commonest status: invalid, failed, skipped
    reason: str = ""
    ok: int = 0  # ok trials behind the medians
    flags: tuple[str, ...] = ()
    noisy: int = 0  # trials the quiet-machine check flagged
    medians: Mapping[str, float | None] = field(default_factory=dict)
    rps_spread: float | None = None  # (max - min) / median of requests/s over two or more ok trials
    answered: float | None = None  # idle profiles: the answered fraction


@dataclass(frozen=True)
class PublishedPage:
    """A published results page, read back: its matrix, where its run came from, and its tables 1-3."""

    path: Path
    matrix: Mapping[str, Any]  # the run's effective matrix (or the built-in one an older page names: see notes)
    run_id: str = ""  # "" when the Environment names no run
    status: str = ""  # the run's status, as the Environment states it
    server_cpus: tuple[int, ...] = ()  # the CPUs the servers were pinned to, if any
    notes: tuple[str, ...] = ()  # warnings about the source, for whoever quotes its figures
    tables: Mapping[str, Rows] = field(default_factory=dict, repr=False)  # tables 1-3 by section title

    def figures(self, label: str, profile: str | None) -> Figures | None:
        """``label`` x ``profile`` as tables 1-3 print it; None when the page has no such row (or no profile)."""
        return _figures(self.tables, label, profile) if profile else None


def read_page(page: str | Path) -> PublishedPage:
    """Read ``page`` (a ``results/README.md`` that ``publish`` wrote); PageError when it is none, or when it
    records no matrix and names no built-in one (the servers' sizes would be guesses)."""
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    if not text.startswith(PAGE_TITLE):
        raise PageError(f"{page}: not a published results page (`harness run --publish` writes one)")
    sections = _sections(text)
    matrix, notes = _matrix(sections, page)
    pin = re.match(r"server on CPU (\d+(?:,\d+)*)", _env_item(sections, "Pinning:"))
    return PublishedPage(
        path=page, matrix=matrix, run_id=_env_item(sections, "Run:").split(";")[0],
        status=_env_item(sections, "Status:").split(".")[0],
        server_cpus=tuple(int(c) for c in pin[1].split(",")) if pin else (), notes=tuple(notes),
        tables={t: {(r.get("server", ""), r.get("profile", "")): r for r in _table(sections.get(t, []))}
                for t in (_T_RPS, _T_CPU, _T_MEM)})


# -- the page's markdown ----------------------------------------------------------------------------


def _sections(text: str) -> dict[str, list[str]]:
    """The page's ``## `` sections: title -> its lines."""
    sections: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            lines = sections.setdefault(line[3:].strip(), [])
        elif lines is not None:
            lines.append(line)
    return sections


def _table(lines: list[str]) -> list[dict[str, str]]:
    """A section's first markdown table: one dict per row, header -> the cell's text."""
    rows: list[list[str]] = []
    for line in lines:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip().replace("\\|", "|") for c in _CELL_SEP.split(line.strip())[1:-1]])
    return [dict(zip(rows[0], r)) for r in rows[2:]] if len(rows) > 2 else []


def _env_item(sections: dict[str, list[str]], prefix: str) -> str:
    """The text of the Environment item starting ``prefix`` ("" when absent)."""
    item = next((x for x in sections.get(_T_ENV, []) if x.startswith(f"- {prefix}")), "")
    return item[len(prefix) + 2:].strip()


def _matrix(sections: dict[str, list[str]], page: Path) -> tuple[dict, list[str]]:
    """The effective matrix the page closes with; for a page published before it did, the built-in matrix the
    Environment names (and a warning saying so)."""
    from .matrix import builtin_matrices, load_matrix
    from .report.files import MATRIX_HEADING

    lines = sections.get(MATRIX_HEADING.removeprefix("## "), [])
    if "```yaml" in lines:
        block = lines[lines.index("```yaml") + 1:]
        try:
            doc = yaml.safe_load("\n".join(block[:block.index("```")] if "```" in block else block))
        except yaml.YAMLError as exc:
            raise PageError(f"{page}: its matrix section is not valid YAML: {exc}") from None
        if isinstance(doc, dict):
            return doc, []
    named = next((re.match(r"- Matrix: ([\w.-]+)", x) for x in sections.get(_T_ENV, []) if x.startswith("- Matrix:")),
                 None)
    if named is None or named[1] not in builtin_matrices():
        raise PageError(f"{page}: the page records no matrix, so the servers' sizes are unknown; run "
                        f"`harness report RUN_DIR --publish` again, or pass the run folder to --from-run")
    return load_matrix(named[1]).to_dict(), [
        f"{page} does not record the servers' directives (published before pages did): they are taken from the "
        f"built-in matrix {named[1]!r} of this installation, which the page names"]


# -- the figures in tables 1-3 -----------------------------------------------------------------------


def _number(text: str) -> float | None:
    """``12,500`` -> 12500.0, ``80%`` -> 0.8; None for ``–`` or words."""
    text = text.strip().removeprefix("≈").replace(",", "")
    scale = 0.01 if text.endswith("%") else 1.0
    try:
        return float(text.removesuffix("%")) * scale
    except ValueError:
        return None


def _spread(text: str) -> tuple[float | None, float | None, float | None]:
    """``median (min–max)`` as the report writes it (docs/report.md): (median, min, max); min and max may be None."""
    m = _SPREAD.fullmatch(text.strip())
    if not m:
        return None, None, None
    return (_number(m["median"]), *(_number(m[k]) if m[k] else None for k in ("lo", "hi")))


def _status(ok_trials: str, first: str, notes: str = "") -> Figures | None:
    """A row's status: ``ok/trials``, and for a row without an ok trial the reason its first figure shows
    (``failed: <reason>``, ``invalid: <flags>``, ``skipped: unavailable``); ``notes``: table 1's column."""
    if "/" not in ok_trials:
        return None  # `–`: it never ran
    ok = int(ok_trials.split("/")[0])
    status, _, reason = ("ok", "", "") if ok else first.partition(":")
    flags, noisy = [], 0
    for part in filter(None, (x.strip() for x in notes.split(","))):
        if re.fullmatch(r"noisy x\d+", part):
            noisy = int(part[len("noisy x"):])
        elif not re.fullmatch(r"\d+ \w+", part):  # "1 invalid": a count of trials, not a flag
            flags.append(part.replace("-", "_"))
    return Figures(status.strip(), reason.strip(), ok, tuple(sorted(flags + ["noisy"] * bool(noisy))), noisy)


def _figures(tables: Mapping[str, Rows], label: str, profile: str) -> Figures | None:
    """``label`` x ``profile`` from the rows of tables 1-3 (None: not on the page)."""
    key = (label, profile)
    t1, t2, t3 = (tables.get(t, {}).get(key) for t in (_T_RPS, _T_CPU, _T_MEM))
    head = t1 or t3
    if head is None:
        return None
    first = head.get("req/s") if t1 else head.get("PSS peak MiB", "")
    fig = _status(head.get("ok/trials", ""), first or "", (t1 or {}).get("notes", ""))
    if fig is None:
        return None
    rps, lo, hi = _spread(t1["req/s"]) if t1 and fig.ok else (None, None, None)
    medians = {"rps": rps, "p99_ms": _number((t1 or {}).get("p99 ms", "")),
               "cpu_us_per_request": _spread((t2 or {}).get("CPU-us/req", ""))[0],
               "pss_peak_mib": _spread((t3 or {}).get("PSS peak MiB", ""))[0],
               "rss_peak_mib": _spread((t3 or {}).get("RSS peak MiB*", ""))[0],
               "pss_per_idle_conn_kib": _spread((t3 or {}).get("PSS/idle conn KiB", ""))[0]}
    spread = None
    if rps and fig.ok >= 2:
        spread = (hi - lo) / rps if lo is not None and hi is not None else 0.0  # no range: equal at 3 figures
    return replace(fig, medians=medians if fig.ok else {}, rps_spread=spread,
                   answered=_spread((t3 or {}).get("answered", ""))[0])
