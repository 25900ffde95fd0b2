"""A run's report files: ``tables.md``, the plots, ``report.html``, and the published results page.

    harness report results/runs/<id> [--reference LABEL] [--publish]
    python -m harness.report results/runs/<id>     # the same, without the CLI

The tables come from :mod:`.markdown`, the figures from :mod:`.plots`, the page from
:mod:`.page`; this module only writes them (docs/report.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, TextIO

import yaml

from ..runview import Run, as_run
from .markdown import md_body, render_markdown
from .page import render_report
from .plots import render_plots
from .sections import partial_line
from .tables import build_sections

__all__ = ["write_tables", "publish", "matrix_section", "MATRIX_HEADING", "report_command", "main"]


def write_tables(run: Run | Mapping[str, Any], run_dir: Path, *, reference: str | None = None) -> dict[str, Path]:
    """Write ``tables.md``, the plots (``plots/*.png``) and the self-contained ``report.html`` into ``run_dir``.

    Returns the paths written: ``markdown``, ``html`` and one ``plot:<key>`` per figure.
    """
    run = as_run(run)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    md = render_markdown(run, reference)  # first: a bad reference raises before anything is written
    paths = {"markdown": run_dir / "tables.md", "html": run_dir / "report.html"}
    paths["markdown"].write_text(md, encoding="utf-8")  # the tables first: they need nothing else
    plots = render_plots(run, run_dir / "plots")
    paths["html"].write_text(render_report(run, plots, reference), encoding="utf-8")
    paths.update({f"plot:{f.key}": f.path for f in plots.figures})
    return paths


def publish(run: Run | Mapping[str, Any], results_dir: Path, reference: str | None = None,
            plots_dir: Path | None = None) -> Path:
    """Write ``results_dir/README.md``: the published figures of this run (environment and every table).

    With ``plots_dir`` (a run folder's ``plots/``), its PNGs replace those in
    ``results_dir/plots/`` and the page shows them above the tables.
    """
    run = as_run(run)
    sections = build_sections(run, reference)
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Published results\n",
             f"These are the published figures of run `{run.run_id}`, measured with `{run.command_line}` "
             f"(started {run.doc.get('started') or '?'}). The raw document is `results/runs/{run.run_id}/run.json` "
             f"(not committed); `harness report results/runs/{run.run_id} --publish` rewrites this page and the "
             f"plots from it, and the full HTML report (`report.html`: every plot, the effective configurations and "
             f"the conformance matrix) in the run folder. docs/report.md explains every table, column and plot; "
             f"the effective matrix (each server's directives, each profile) closes the page, and "
             f"`harness advise --from-run results/` reads its figures from this page (docs/advisor.md).\n"]
    partial = partial_line(run)
    if partial:
        lines.append(f"> **{partial}**\n")
    if plots_dir is not None and any(Path(plots_dir).glob("*.png")):
        target = results_dir / "plots"
        target.mkdir(exist_ok=True)
        for old in target.glob("*.png"):
            old.unlink()
        lines.append("## Plots\n")
        for png in sorted(Path(plots_dir).glob("*.png")):
            (target / png.name).write_bytes(png.read_bytes())
            lines.append(f"![{png.stem}](plots/{png.name})\n")
    text = "\n".join(lines) + "\n" + md_body(sections) + "\n" + matrix_section(run)
    path = results_dir / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


#: the heading of the published page's last section, which holds the effective matrix as YAML
MATRIX_HEADING = "## Matrix"


def matrix_section(run: Run) -> str:
    """The run's effective matrix as a YAML block: what each figure was measured with, and for ``harness advise``.

    The advisor reads the servers' directives (to count their processes) and the
    profiles (which is the closed-loop load, which the idle one) from it; ``source``,
    a path on the measuring machine, is left out.
    """
    matrix = json.loads(json.dumps({k: v for k, v in run.matrix.items() if k != "source"}))  # no YAML aliases
    body = yaml.safe_dump(matrix, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    return (f"{MATRIX_HEADING}\n\nThe effective matrix of run `{run.run_id}` (the matrix file with every default "
            f"filled in; docs/harness.md): the servers' directives and the load profiles behind every figure "
            f"above.\n\n```yaml\n{body}```\n")


def report_command(run_dir: str | Path, reference: str | None = None, publish: bool = False, *,
                   results_dir: str | Path = "results", out: TextIO | None = None) -> dict[str, Path]:
    """``harness report RUN_DIR``: load the run, write its tables, print the markdown; optionally publish.

    Returns the paths written (``markdown``, ``html`` and, with ``publish``, ``readme``).
    ValueError for a folder without a readable run document or a bad reference label.
    """
    out = out if out is not None else sys.stdout
    run = Run.load(run_dir)
    folder = Path(run_dir)
    folder = folder if folder.is_dir() else folder.parent
    paths = write_tables(run, folder, reference=reference)
    print(render_markdown(run, reference), file=out)
    for p in paths.values():
        print(f"wrote {p}", file=out)
    if publish:
        paths["readme"] = _publish(run, Path(results_dir), reference=reference, plots_dir=folder / "plots")
        print(f"published {paths['readme']}", file=out)
    return paths


_publish = publish  # report_command's ``publish`` argument hides the function


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.report RUN_DIR [--reference LABEL] [--publish]``; 0, or 2 on bad input."""
    ap = argparse.ArgumentParser(prog="python -m harness.report",
                                 description="Write the comparison tables of a run folder from its run.json.")
    ap.add_argument("run_dir", metavar="RUN_DIR")
    ap.add_argument("--reference", metavar="LABEL", help="the server the ratio columns divide by ('' for none)")
    ap.add_argument("--publish", action="store_true", help="also write the tables to RESULTS_DIR/README.md")
    ap.add_argument("--results-dir", default="results", metavar="DIR", help="where --publish writes (default: results)")
    args = ap.parse_args(argv)
    try:
        report_command(args.run_dir, reference=args.reference, publish=args.publish, results_dir=args.results_dir)
    except ValueError as exc:
        print(f"harness report: error: {exc}", file=sys.stderr)
        return 2
    return 0
