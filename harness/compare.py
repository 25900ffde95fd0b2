"""Two runs side by side: ``harness report --compare RUN_A RUN_B`` (docs/report.md, "Comparing two runs").

For every server x profile measured in both runs, the medians of the main
metrics in A and in B and B's change against A, marked better or worse by
the metric's direction (requests/s higher is better; CPU, memory, latency
lower).  Then the suites' pass counts, the environment fields that differ
(a different CPU or kernel explains more than any code change), and a plot
of the medians.  Written as ``compare.md`` and a self-contained
``compare.html`` into ``--out`` (default: RUN_B's folder).

Two separate runs drift with the machine's load (docs/harness.md, "Measuring
honestly"): for a verdict on a code change use ``harness gate --against``,
which interleaves the two sides in one run.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping

from tabulate import tabulate

from .report.page import data_uri, html_document, html_table
from .runview import METRICS, Run, as_run

RunLike = Run | Mapping[str, Any]

__all__ = ["COMPARED", "compare_rows", "environment_diff", "render_compare_markdown", "write_compare"]

#: the metrics compared, in column order
COMPARED = ("rps", "cpu_us_per_request", "pss_peak_mib", "p99_ms", "pss_per_idle_conn_kib")
_ENV_KEYS = ("cpu_model", "cpu_count", "cpus_allowed", "kernel", "python", "git_commit", "git_dirty", "hostname",
             "pinning")


def _medians(run: Run) -> dict[tuple[str, str], dict[str, float]]:
    out = {}
    for server, profile, st in run.all_stats():
        ms = {m: st.median(m) for m in COMPARED}
        if any(v is not None for v in ms.values()):
            out[(server, profile)] = ms
    return out


def change(a: float | None, b: float | None, metric: str) -> tuple[float | None, str]:
    """B's change against A in percent, and ``better``/``worse``/``same`` (within 1 %) by the metric's direction."""
    if a is None or b is None or a == 0:
        return None, ""
    pct = (b - a) / abs(a) * 100
    if abs(pct) < 1:
        return pct, "same"
    higher_better = METRICS[metric][1] == "higher"
    return pct, "better" if (pct > 0) == higher_better else "worse"


def compare_rows(run_a: RunLike, run_b: RunLike) -> list[dict]:
    """One dict per server x profile in both runs: ``server``, ``profile`` and per metric ``(a, b, pct, word)``."""
    ma, mb = _medians(as_run(run_a)), _medians(as_run(run_b))
    rows = []
    for key in ma:
        if key not in mb:
            continue
        row = {"server": key[0], "profile": key[1]}
        for m in COMPARED:
            a, b = ma[key].get(m), mb[key].get(m)
            row[m] = (a, b, *change(a, b, m))
        rows.append(row)
    return rows


def environment_diff(run_a: RunLike, run_b: RunLike) -> list[tuple[str, str, str]]:
    """(field, A, B) for the environment fields that differ."""
    ea, eb = as_run(run_a).environment, as_run(run_b).environment
    return [(k, str(ea.get(k)), str(eb.get(k))) for k in _ENV_KEYS if ea.get(k) != eb.get(k)]


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _cell(t: tuple) -> str:
    a, b, pct, word = t
    if a is None and b is None:
        return "–"
    tail = "" if pct is None else f" ({pct:+.0f}% {word})"
    return f"{_fmt(a)} → {_fmt(b)}{tail}"


def _suite_rows(run_a: Run, run_b: Run) -> list[list[str]]:
    rows = []
    for (server, suite), ca in run_a.suite_cells.items():
        cb = run_b.suite_cell(server, suite)
        if cb is not None:
            rows.append([server, suite, f"{ca.count('passed')}/{ca.count('failed')}",
                         f"{cb.count('passed')}/{cb.count('failed')}"])
    return rows


def _tables(run_a: Run, run_b: Run) -> list[tuple[str, list[str], list[list[str]]]]:
    rows = compare_rows(run_a, run_b)
    heads = ["server", "profile", *(f"{m} ({METRICS[m][0]})" for m in COMPARED)]
    main = [[r["server"], r["profile"], *(_cell(r[m]) for m in COMPARED)] for r in rows]
    return [
        ("Medians, A → B (B's change against A; better/worse by the metric's direction)", heads, main),
        ("Suites: passed/failed in A and in B", ["server", "suite", "A", "B"], _suite_rows(run_a, run_b)),
        ("Environment fields that differ", ["field", "A", "B"], [list(x) for x in environment_diff(run_a, run_b)]),
    ]


def render_compare_markdown(run_a: RunLike, run_b: RunLike) -> str:
    """The comparison as markdown (printed by the command and written as compare.md)."""
    run_a, run_b = as_run(run_a), as_run(run_b)
    lines = [f"# Run {run_b.run_id} (B) against run {run_a.run_id} (A)", "",
             "Two separate runs drift with the machine; `harness gate --against` interleaves both sides for a "
             "verdict on a code change.", ""]
    for caption, heads, rows in _tables(run_a, run_b):
        lines += [f"## {caption}", "", tabulate(rows, headers=heads, tablefmt="github", disable_numparse=True)
                  if rows else "_nothing in common_", ""]
    return "\n".join(lines)


def _plot(run_a: Run, run_b: Run, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in compare_rows(run_a, run_b) if r["rps"][0] is not None and r["rps"][1] is not None]
    if not rows:
        return None
    metrics = [m for m in ("rps", "cpu_us_per_request", "pss_peak_mib") if any(r[m][0] is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.5 + 0.32 * len(rows)), squeeze=False)
    labels = [f"{r['server']} / {r['profile']}" for r in rows]
    for ax, m in zip(axes[0], metrics):
        ys = range(len(rows))
        ax.barh([y + 0.2 for y in ys], [r[m][0] or 0 for r in rows], height=0.4, label="A", color="#999999")
        ax.barh([y - 0.2 for y in ys], [r[m][1] or 0 for r in rows], height=0.4, label="B", color="#1f77b4")
        ax.set_yticks(list(ys), labels if ax is axes[0][0] else [""] * len(rows), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{m} ({METRICS[m][0]}, {METRICS[m][1]} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = out / f"compare-{run_a.run_id}-{run_b.run_id}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def write_compare(run_a: str | Path, run_b: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write ``compare.md``, ``compare.html`` (plot embedded) and the plot PNG; their paths."""
    a, b = Run.load(run_a), Run.load(run_b)
    folder_b = Path(run_b) if Path(run_b).is_dir() else Path(run_b).parent
    out = Path(out_dir) if out_dir else folder_b
    out.mkdir(parents=True, exist_ok=True)
    md = render_compare_markdown(a, b)
    plot = _plot(a, b, out)
    body = ["<p>Two separate runs drift with the machine; <code>harness gate --against</code> interleaves both "
            "sides for a verdict on a code change.</p>"]
    if plot is not None:
        body.append(f'<figure><img src="{data_uri(plot)}" alt="medians A and B"><figcaption>Medians of A (grey) '
                    "and B (blue) per server and profile.</figcaption></figure>")
    for caption, heads, rows in _tables(a, b):
        body.append(f"<h2>{html.escape(caption)}</h2>")
        body.append(html_table(heads, rows) if rows else '<p class="empty">nothing in common</p>')
    page = html_document(f"mpm-harness: run {b.run_id} (B) against {a.run_id} (A)", body)
    paths = {"markdown": out / "compare.md", "html": out / "compare.html"}
    paths["markdown"].write_text(md, encoding="utf-8")
    paths["html"].write_text(page, encoding="utf-8")
    if plot is not None:
        paths["plot"] = plot
    return paths
