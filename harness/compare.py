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

from tabulate import tabulate

from .results import METRICS, load_run, summarize

__all__ = ["COMPARED", "compare_rows", "environment_diff", "render_compare_markdown", "write_compare"]

#: the metrics compared, in column order
COMPARED = ("rps", "cpu_us_per_request", "pss_peak_mib", "p99_ms", "pss_per_idle_conn_kib")
_ENV_KEYS = ("cpu_model", "cpu_count", "cpus_allowed", "kernel", "python", "git_commit", "git_dirty", "hostname",
             "pinning")


def _medians(doc: dict) -> dict[tuple[str, str], dict[str, float]]:
    summary = doc.get("summary") or summarize(doc)
    out = {}
    for server, profiles in (summary.get("profiles") or {}).items():
        for profile, entry in profiles.items():
            ms = {m: (entry.get("metrics") or {}).get(m, {}).get("median") for m in COMPARED}
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


def compare_rows(doc_a: dict, doc_b: dict) -> list[dict]:
    """One dict per server x profile in both runs: ``server``, ``profile`` and per metric ``(a, b, pct, word)``."""
    ma, mb = _medians(doc_a), _medians(doc_b)
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


def environment_diff(doc_a: dict, doc_b: dict) -> list[tuple[str, str, str]]:
    """(field, A, B) for the environment fields that differ."""
    ea, eb = doc_a.get("environment") or {}, doc_b.get("environment") or {}
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


def _suite_rows(doc_a: dict, doc_b: dict) -> list[list[str]]:
    sa = (doc_a.get("summary") or summarize(doc_a)).get("suites") or {}
    sb = (doc_b.get("summary") or summarize(doc_b)).get("suites") or {}
    rows = []
    for server in sa:
        for suite in sa[server]:
            if suite in (sb.get(server) or {}):
                ca, cb = sa[server][suite].get("counts") or {}, sb[server][suite].get("counts") or {}
                rows.append([server, suite, f"{ca.get('passed', 0)}/{ca.get('failed', 0)}",
                             f"{cb.get('passed', 0)}/{cb.get('failed', 0)}"])
    return rows


def _tables(doc_a: dict, doc_b: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    rows = compare_rows(doc_a, doc_b)
    heads = ["server", "profile", *(f"{m} ({METRICS[m][0]})" for m in COMPARED)]
    main = [[r["server"], r["profile"], *(_cell(r[m]) for m in COMPARED)] for r in rows]
    return [
        ("Medians, A → B (B's change against A; better/worse by the metric's direction)", heads, main),
        ("Suites: passed/failed in A and in B", ["server", "suite", "A", "B"], _suite_rows(doc_a, doc_b)),
        ("Environment fields that differ", ["field", "A", "B"], [list(x) for x in environment_diff(doc_a, doc_b)]),
    ]


def render_compare_markdown(doc_a: dict, doc_b: dict) -> str:
    """The comparison as markdown (printed by the command and written as compare.md)."""
    lines = [f"# Run {doc_b.get('run_id')} (B) against run {doc_a.get('run_id')} (A)", "",
             "Two separate runs drift with the machine; `harness gate --against` interleaves both sides for a "
             "verdict on a code change.", ""]
    for caption, heads, rows in _tables(doc_a, doc_b):
        lines += [f"## {caption}", "", tabulate(rows, headers=heads, tablefmt="github", disable_numparse=True)
                  if rows else "_nothing in common_", ""]
    return "\n".join(lines)


def _plot(doc_a: dict, doc_b: dict, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in compare_rows(doc_a, doc_b) if r["rps"][0] is not None and r["rps"][1] is not None]
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
    path = out / f"compare-{doc_a.get('run_id')}-{doc_b.get('run_id')}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def write_compare(run_a: str | Path, run_b: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write ``compare.md``, ``compare.html`` (plot embedded) and the plot PNG; their paths."""
    from .htmlreport import EXTRA_CSS, data_uri
    from .report import CSS

    doc_a, doc_b = load_run(run_a), load_run(run_b)
    folder_b = Path(run_b) if Path(run_b).is_dir() else Path(run_b).parent
    out = Path(out_dir) if out_dir else folder_b
    out.mkdir(parents=True, exist_ok=True)
    md = render_compare_markdown(doc_a, doc_b)
    plot = _plot(doc_a, doc_b, out)
    title = f"mpm-harness: run {doc_b.get('run_id')} (B) against {doc_a.get('run_id')} (A)"
    body = [f"<h1>{html.escape(title)}</h1>",
            "<p>Two separate runs drift with the machine; <code>harness gate --against</code> interleaves both "
            "sides for a verdict on a code change.</p>"]
    if plot is not None:
        body.append(f'<figure><img src="{data_uri(plot)}" alt="medians A and B"><figcaption>Medians of A (grey) '
                    "and B (blue) per server and profile.</figcaption></figure>")
    for caption, heads, rows in _tables(doc_a, doc_b):
        body.append(f"<h2>{html.escape(caption)}</h2>")
        body.append(tabulate([[html.escape(x) for x in r] for r in rows], headers=[html.escape(h) for h in heads],
                             tablefmt="unsafehtml", disable_numparse=True) if rows
                    else '<p class="empty">nothing in common</p>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}\n{EXTRA_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    paths = {"markdown": out / "compare.md", "html": out / "compare.html"}
    paths["markdown"].write_text(md, encoding="utf-8")
    paths["html"].write_text(page, encoding="utf-8")
    if plot is not None:
        paths["plot"] = plot
    return paths
