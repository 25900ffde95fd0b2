"""The gate's markdown summary (the pull-request comment and ``gate.md``)."""

from __future__ import annotations


from ..runview import METRICS
from .verdicts import LABELS, GateResult


# -- the summary -------------------------------------------------------------------------------------

_ICON = {"pass": "✅", "regression": "❌", "improvement": "🚀", "not measured": "⚠️"}
_HEADLINE = {"pass": "✅ pass", "regression": "❌ regression", "not measured": "⚠️ could not measure"}


def _num(v: float | None, metric: str = "") -> str:
    if v is None:
        return "–"
    if abs(v) >= 1000 or metric == "rps":
        return f"{v:,.0f}"
    return f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1f} %"


def _p(v: float | None) -> str:
    if v is None:
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def render_summary(result: GateResult) -> str:
    """The verdicts as markdown for a pull-request comment: headline, rule, one row per metric, details."""
    ctx = result.context
    spec = result.spec
    lines = [f"## mpm-harness gate: {_HEADLINE[result.status]}", ""]
    base_name = ctx.get("base_name", "base")
    if ctx.get("mode") == "against":
        lines.append(f"Side by side against `{ctx.get('ref')}` (`{str(ctx.get('base_commit', ''))[:10]}`): "
                     f"candidate `{str(ctx.get('candidate_commit') or '?')[:10]}`"
                     f"{' + uncommitted changes' if ctx.get('candidate_dirty') else ''}, matrix "
                     f"`{ctx.get('matrix')}`, {ctx.get('trials')} trials per side, interleaved.")
    elif ctx.get("mode") == "baseline":
        lines.append(f"Against the baseline `{ctx.get('baseline')}` (recorded {ctx.get('baseline_recorded', '?')}, "
                     f"commit `{str(ctx.get('base_commit') or '?')[:10]}`): candidate "
                     f"`{str(ctx.get('candidate_commit') or '?')[:10]}`"
                     f"{' + uncommitted changes' if ctx.get('candidate_dirty') else ''}, matrix "
                     f"`{ctx.get('matrix')}`, {ctx.get('trials', '?')} trials.")
    thresholds = ", ".join(
        f"{LABELS.get(m, m)} {'-' if METRICS[m][1] == 'higher' else '+'}{t:g} %" for m, t in spec.thresholds.items())
    holm_text = (" (p corrected for the number of metrics compared, Holm)" if spec.correction == "holm" else "")
    lines += [f"A metric regresses when its median moves beyond its threshold ({thresholds}) **and** a "
              f"one-sided Mann-Whitney U test on the trials gives p < {spec.alpha:g}{holm_text}.", ""]
    if result.verdicts:
        lines.append(f"| server | profile | metric | {base_name} | candidate | change | threshold | p | verdict |")
        lines.append("|---|---|---|---:|---:|---:|---:|---:|---|")
        for v in result.verdicts:
            sign = "-" if v.better == "higher" else "+"
            p = v.p_worse_adj if v.verdict != "improvement" else v.p_better_adj
            verdict = f"{_ICON[v.verdict]} {v.verdict}"
            if v.note:
                verdict += f": {v.note}"
            lines.append(f"| {v.server} | {v.profile} | {v.label} | {_num(v.base_median, v.metric)} "
                         f"| {_num(v.cand_median, v.metric)} "
                         f"| {_pct(v.change_pct)} | {sign}{v.threshold_pct:g} % | {_p(p)} | {verdict} |")
    else:
        lines.append("Nothing was compared: no server x profile of the matrix has figures on both sides.")
    if result.notes:
        lines += [""] + [f"* {n}" for n in result.notes]
    if any(v.base_values or v.cand_values for v in result.verdicts):
        lines += ["", "<details><summary>trial values (ok trials only)</summary>", "",
                  f"| server | profile | metric | {base_name} | candidate |", "|---|---|---|---|---|"]
        for v in result.verdicts:
            base_values = ", ".join(_num(x, v.metric) for x in v.base_values)
            cand_values = ", ".join(_num(x, v.metric) for x in v.cand_values)
            lines.append(f"| {v.server} | {v.profile} | {v.label} | {base_values} | {cand_values} |")
        lines += ["", "</details>"]
    foot = [f"exit status {result.exit_code}"]
    if ctx.get("wall_seconds") is not None:
        foot.append(f"{ctx['wall_seconds'] / 60:.1f} min")
    if ctx.get("folder"):
        foot.append(f"results: `{ctx['folder']}`")
    lines += ["", "<sub>" + " · ".join(foot) + " · docs/gate.md</sub>", ""]
    return "\n".join(lines)
