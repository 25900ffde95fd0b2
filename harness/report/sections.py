"""The report's table model and what every table says the same way (docs/report.md, "General rules").

A :class:`Section` holds :class:`Table` s of text, built from a :class:`Sheet`: the run
(:class:`harness.runview.Run`) with the reference server the ratio columns divide by, and the
words every table uses for a server x profile: ``ok/trials``, why it has no figures
(``failed: <reason>``, ``invalid: <flags>``, ``skipped``), the notes of its trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..runview import Run, SuiteCell, Spread, as_run
from .text import DASH, clip

__all__ = ["Table", "Section", "Sheet", "PARTIAL_STATUSES", "partial_line", "resolve_reference", "align",
           "short_test"]

#: statuses of a run document whose figures are incomplete
PARTIAL_STATUSES = {"interrupted": "the run was interrupted (Ctrl-C or SIGTERM) before it finished",
                    "running": "the run was still running when these tables were written",
                    "failed": "the harness itself failed during the run"}
#: the flags that make a measured cell invalid (harness/runner.py)
_INVALID_FLAGS = ("generator_bound", "errors", "non_2xx", "starved")


@dataclass
class Table:
    """One table: a caption (what the figure is, how it was measured), headers and rows of text."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    align: list[str] | None = None  # "left" / "right" per column
    empty: str = "nothing to show"


@dataclass
class Section:
    """A titled part of the report: bullet items, then tables, then notes (all plain text)."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def align(headers: list[str], left: Iterable[str]) -> list[str]:
    """``left`` for the named columns, ``right`` (figures) for the others."""
    left = set(left)
    return ["left" if h in left else "right" for h in headers]


def short_test(name: str) -> str:
    """A test's function name without ``test_`` and its parameters."""
    return name.split("[", 1)[0].removeprefix("test_")


def partial_line(run: Run) -> str | None:
    """The warning a partial run's report opens with (None for a complete run)."""
    if run.status in PARTIAL_STATUSES:
        return (f"Partial results: {PARTIAL_STATUSES[run.status]} (status {run.status}); every table shows only "
                f"the cells measured before that.")
    return None


def resolve_reference(run: Run | Mapping[str, Any], reference: str | None = None) -> str | None:
    """The label the ratio columns divide by: ``reference``, else the matrix's, else None (no ratios).

    An explicit ``reference`` that is not a server of the run raises ValueError naming the valid
    labels; ``""`` asks for no ratio columns.  A matrix reference the document does not hold
    (e.g. a run narrowed with ``--server``) gives no ratios rather than an error.
    """
    run = as_run(run)
    labels = run.servers
    if reference is not None:
        if reference == "":
            return None
        if reference not in labels:
            raise ValueError(f"reference {reference!r} is not a server of run {run.doc.get('run_id', '?')}; "
                             f"valid labels: {', '.join(labels) or '(none)'}")
        return reference
    default = run.matrix.get("reference") or None
    return default if default in labels else None


class Sheet:
    """A run as the tables read it: its figures, the reference server, and the words for what is missing."""

    def __init__(self, run: Run, reference: str | None) -> None:
        self.run = run
        self.ref = resolve_reference(run, reference)

    def metric(self, server: str | None, profile: str, name: str) -> Spread | None:
        """A metric's spread over the ok trials; None when absent or not measured."""
        st = self.run.stats(server, profile) if server is not None else None
        s = st.spread(name) if st is not None else None
        return s if s is not None and s.median is not None else None

    def median(self, server: str | None, profile: str, name: str) -> float | None:
        """The median of one metric over the ok trials, or None."""
        s = self.metric(server, profile, name)
        return None if s is None else s.median

    def trials(self, server: str, profile: str) -> str:
        """``ok/trials`` of a server x profile (``–`` when it never ran)."""
        st = self.run.stats(server, profile)
        return DASH if st is None else f"{st.ok}/{st.trials}"

    def status_text(self, server: str, profile: str) -> str | None:
        """Why a server x profile has no figures (None when it has at least one ok trial)."""
        st = self.run.stats(server, profile)
        if st is not None and st.ok > 0:
            return None
        if self.run.unavailable(server):
            return "skipped: unavailable"
        if st is None:
            return "skipped"
        failed = [c for c in st.cells if c.status == "failed"]
        if failed:
            return "failed: " + clip(failed[0].reason or "no reason recorded", 80)
        invalid = [c for c in st.cells if c.status == "invalid"]
        if invalid:
            flags = sorted({f for c in invalid for f in c.flags})
            causes = [f for f in flags if f in _INVALID_FLAGS] or flags  # noisy, late_sends: not why it is invalid
            return "invalid: " + (", ".join(causes) or "see table 9")
        skipped = [c for c in st.cells if c.reason]
        if skipped and skipped[0].reason.startswith("not run:"):  # a refusal says itself (attack-like)
            return skipped[0].reason
        return "skipped" + (f": {clip(skipped[0].reason, 60)}" if skipped else "")

    def sampled(self, server: str) -> bool:
        """Whether the server's process tree was sampled (False: a URL server with no PID on this machine)."""
        return self.run.server(server).sampled

    def notes(self, server: str, profile: str) -> str:
        """Non-ok trials and flags of a server x profile, compactly."""
        st = self.run.stats(server, profile)
        if st is None or set(st.statuses) == {"skipped"}:
            return ""
        parts = [f"{n} {s}" for s, n in sorted(st.statuses.items()) if s != "ok" and n]
        flags = [f for f in st.flags if f != "noisy"]
        parts += [f.replace("_", "-") if f == "generator_bound" else f for f in flags]
        if st.noisy:
            parts.append(f"noisy x{st.noisy}")
        return ", ".join(parts)

    def suite_missing(self, server: str, suite: str, *, reason: bool = False) -> str | None:
        """Why a suite has no cases on a server (None when it has some): ``suite error``, ``unavailable``...

        With ``reason``, the suite cell's reason follows (clipped); tables 7 and 9 give it in full.
        """
        c = self.run.suite_cell(server, suite)
        if c is None:
            return "not run"
        if c.cases:
            return None
        if self.run.unavailable(server):
            return "unavailable"
        status = f"suite {c.status or '?'}"
        return f"{status}: {clip(c.reason, 80)}" if reason and c.reason else status

    def suite_reason(self, cell: SuiteCell) -> str:
        """A suite cell's reason, else its failed tests and distinct skip messages (tables 7 and 9)."""
        if cell.reason:
            return clip(cell.reason, 200)
        parts = []
        failed = []
        for c in cell.cases:
            if c.failed:
                cid = self.run.case_id(cell.server, c.name)
                failed.append(short_test(c.name or "?") + (f"[{cid}]" if cid else ""))
        if failed:
            parts.append("failed: " + ", ".join(failed[:3]) + (f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""))
        skipped = list(dict.fromkeys(clip(c.message or "no reason", 100) for c in cell.cases if c.outcome == "skipped"))
        if skipped:
            parts.append("skipped: " + "; ".join(skipped[:2]) + (f" (+{len(skipped) - 2} more)" if len(skipped) > 2
                                                                 else ""))
        return "; ".join(parts)
