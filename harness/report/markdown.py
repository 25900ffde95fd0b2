"""The report's tables as markdown (tabulate's ``github`` format): ``tables.md`` and what the command prints."""

from __future__ import annotations

from typing import Any, Mapping

from tabulate import tabulate

from ..runview import Run, as_run
from .sections import Section, Table, partial_line
from .tables import build_sections

__all__ = ["render_markdown", "md_body"]


def _md_cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _md_table(t: Table) -> str:
    if not t.rows:
        return f"_{t.empty}_"
    rows = [[_md_cell(x) for x in r] for r in t.rows]
    return tabulate(rows, headers=[_md_cell(h) for h in t.headers], tablefmt="github", disable_numparse=True,
                    colalign=t.align)


def md_body(sections: list[Section], level: int = 2) -> str:
    """The sections as markdown: a heading each, its items as a list, each table after its caption."""
    out = []
    for sec in sections:
        out.append(f"{'#' * level} {sec.title}\n")
        if sec.items:
            out.append("\n".join(f"- {' '.join(i.split())}" for i in sec.items) + "\n")
        for t in sec.tables:
            out.append(" ".join(t.caption.split()) + "\n")
            out.append(_md_table(t) + "\n")
        for n in sec.notes:
            out.append(" ".join(n.split()) + "\n")
    return "\n".join(out)


def render_markdown(run: Run | Mapping[str, Any], reference: str | None = None) -> str:
    """The tables of a run as one markdown document (tabulate's github format).

    ``reference``: the server label the ratio columns divide by; None takes the matrix's
    ``reference``, ``""`` shows no ratios.  ValueError, naming the valid labels, if it is not
    a server of the run.
    """
    run = as_run(run)
    sections = build_sections(run, reference)
    head = [f"# mpm-harness: run {run.run_id}\n"]
    partial = partial_line(run)
    if partial:
        head.append(f"> **{partial}**\n")
    return "\n".join(head) + "\n" + md_body(sections)
