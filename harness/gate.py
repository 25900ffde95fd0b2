"""``harness gate``: fail a change that makes a server slower or fatter, not one that met a noisy machine.

Two ways to get the two samples it compares (docs/gate.md):

* ``--against REF`` (the robust mode): the base revision is checked out
  into a temporary git worktree, and the matrix runs on the base and on the
  candidate (the working tree) side by side in this one job, trials
  interleaved (base, candidate, candidate, base, ...).  Both sides are
  measured by the candidate's harness (the same driver, sampler and matrix);
  only the servers differ: each side's servers are started from a launch
  directory holding nothing but a ``servers`` link to that side's tree, and
  ``python -m servers`` puts its working directory first on ``sys.path``.
* ``--baseline FILE``: a fresh run (or ``--run RUN_DIR``) against the trials
  recorded in ``results/baseline.json`` (``harness baseline``).  Absolute
  figures from another time, and perhaps another machine: the weaker mode.

The rule, per server x profile x metric: a metric **regresses** when its
median moved beyond the matrix's threshold in the bad direction (requests/s
down, CPU-us/request and memory up) **and** a one-sided Mann-Whitney U test
on the trials says such a shift is unlikely to be noise (p < alpha).  The
mirror image is an **improvement**; anything else **passes**; too few valid
trials on either side is **not measured**.

Exit status: 0 every gated metric passed (or improved), 1 at least one
regression, 2 could not measure (a server failed, too few ok trials, bad
input), 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Sequence, TextIO

from .baseline import Figures, collect, collect_baseline, load_baseline
from .matrix import GateSpec, Matrix
from .results import METRICS, RunDocument, load_run, new_run_dir

__all__ = [
    "GateError", "MannWhitney", "mann_whitney_u", "min_p_value", "Verdict", "GateResult", "compare",
    "render_summary", "run_against", "gate_matrix", "EXIT_PASS", "EXIT_REGRESSION", "EXIT_UNMEASURED",
]

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_UNMEASURED = 2
#: pooled sample sizes up to this get the exact distribution of U (ties included); above, the normal one
EXACT_MAX = 40

#: how the summary names the gated metrics
LABELS = {"rps": "requests/s", "cpu_us_per_request": "CPU-us/request", "pss_peak_mib": "peak PSS MiB",
          "rss_peak_mib": "peak RSS MiB"}


class GateError(ValueError):
    """The gate cannot start: a bad reference, not a git checkout, a base tree without servers."""


# -- statistics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MannWhitney:
    """Result of :func:`mann_whitney_u`."""

    u: float  # U of the first sample: pairs (x, y) with x > y, plus half of the tied pairs
    p: float  # one-sided p-value for the alternative asked for
    method: str  # "exact" or "normal"


def _midranks(pooled: Sequence[float]) -> dict[float, int]:
    """Value -> twice its mid-rank (an integer even with ties) in the sorted pooled sample."""
    order = sorted(pooled)
    doubled: dict[float, int] = {}
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and order[j] == order[i]:
            j += 1
        doubled[order[i]] = (i + 1) + j  # ranks i+1 .. j, mid-rank (i+1+j)/2
        i = j
    return doubled


def _exact_tail(doubled_ranks: list[int], n: int, observed: int) -> tuple[float, float]:
    """P(S <= observed), P(S >= observed) for S the sum of ``n`` of ``doubled_ranks`` drawn without replacement
    (every subset equally likely: the null hypothesis), by counting subsets per sum (ties included)."""
    top = sum(sorted(doubled_ranks)[-n:])
    counts = [[0] * (top + 1) for _ in range(n + 1)]
    counts[0][0] = 1
    for seen, r in enumerate(doubled_ranks, 1):
        for k in range(min(n, seen), 0, -1):
            row, prev = counts[k], counts[k - 1]
            for s in range(top, r - 1, -1):
                c = prev[s - r]
                if c:
                    row[s] += c
    total = comb(len(doubled_ranks), n)
    dist = counts[n]
    low = sum(dist[: observed + 1])
    high = sum(dist[observed:])
    return low / total, high / total


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def mann_whitney_u(x: Sequence[float], y: Sequence[float], alternative: str = "less") -> MannWhitney:
    """One-sided Mann-Whitney U test of two independent samples.

    ``alternative="less"``: x tends to be smaller than y (p = P(U <= u) under the
    null hypothesis that both come from one distribution); ``"greater"``: x tends
    to be larger (p = P(U >= u)).  Exact (the permutation distribution of the
    mid-rank sum, so ties are handled exactly) when the pooled sample has at most
    :data:`EXACT_MAX` values; otherwise the normal approximation with the tie
    correction and a continuity correction.  For 5 vs 5 trials with every x below
    every y the exact one-sided p is 1/252.
    """
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', not {alternative!r}")
    x, y = [float(v) for v in x], [float(v) for v in y]
    n, m = len(x), len(y)
    if not n or not m:
        raise ValueError("both samples need at least one value")
    if any(math.isnan(v) for v in x + y):
        raise ValueError("samples must not contain NaN")
    doubled = _midranks(x + y)
    r2 = sum(doubled[v] for v in x)  # twice the rank sum of x
    u = (r2 - n * (n + 1)) / 2
    big_n = n + m
    if big_n <= EXACT_MAX:
        low, high = _exact_tail([doubled[v] for v in x + y], n, r2)
        return MannWhitney(u, min(1.0, low if alternative == "less" else high), "exact")
    ties = {}
    for v in x + y:
        ties[v] = ties.get(v, 0) + 1
    tie_term = sum(t ** 3 - t for t in ties.values()) / (big_n * (big_n - 1))
    var = n * m / 12.0 * ((big_n + 1) - tie_term)
    if var <= 0:
        return MannWhitney(u, 1.0, "normal")  # every value tied: no evidence either way
    mu = n * m / 2.0
    sd = math.sqrt(var)
    if alternative == "less":
        p = _phi((u - mu + 0.5) / sd)
    else:
        p = 1.0 - _phi((u - mu - 0.5) / sd)
    return MannWhitney(u, min(1.0, max(0.0, p)), "normal")


def min_p_value(n: int, m: int) -> float:
    """The smallest one-sided p a Mann-Whitney test of n vs m untied values can give: 1 / C(n+m, n)."""
    return 1.0 / comb(n + m, n)


# -- verdicts ----------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One server x profile x metric."""

    server: str
    profile: str
    metric: str
    verdict: str  # pass | regression | improvement | not measured
    threshold_pct: float
    better: str  # "higher" or "lower"
    base_values: list[float] = field(default_factory=list)
    cand_values: list[float] = field(default_factory=list)
    base_median: float | None = None
    cand_median: float | None = None
    change_pct: float | None = None  # (candidate - base) / base, in percent
    p_worse: float | None = None  # one-sided p that the candidate is worse (this row's test alone)
    p_better: float | None = None
    p_worse_adj: float | None = None  # the same after Holm's correction over the run's rows (gate.correction)
    p_better_adj: float | None = None
    method: str = ""
    note: str = ""

    @property
    def label(self) -> str:
        """The metric's name in the summary."""
        return LABELS.get(self.metric, f"{self.metric} ({METRICS.get(self.metric, ('', ''))[0]})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"label": self.label}


@dataclass
class GateResult:
    """All verdicts of one gate run, with what it compared and why it could not measure something."""

    verdicts: list[Verdict]
    spec: GateSpec
    notes: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)  # mode, ref, commits, matrix, trials, folder, wall time

    @property
    def status(self) -> str:
        """``regression``, ``not measured`` or ``pass`` (a regression outranks what could not be measured)."""
        kinds = {v.verdict for v in self.verdicts}
        if "regression" in kinds:
            return "regression"
        if "not measured" in kinds or not self.verdicts:
            return "not measured"
        return "pass"

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 2 could not measure."""
        return {"pass": EXIT_PASS, "regression": EXIT_REGRESSION}.get(self.status, EXIT_UNMEASURED)

    def to_dict(self) -> dict:
        return {"schema": "mpm-harness/gate", "schema_version": 1, "status": self.status,
                "exit_status": self.exit_code, "spec": self.spec.to_dict(), "context": self.context,
                "notes": self.notes, "verdicts": [v.to_dict() for v in self.verdicts]}


def _verdict(server: str, profile: str, metric: str, threshold: float, spec: GateSpec,
             base: Figures | None, cand: Figures | None, base_name: str) -> Verdict | None:
    better = METRICS[metric][1]
    v = Verdict(server, profile, metric, "not measured", threshold, better)
    if base is None or cand is None:
        v.note = f"not in the {base_name}" if base is None else "not in this run"
        return v
    bv, cv = base.values.get(metric, []), cand.values.get(metric, [])
    if not bv and not cv and base.ok >= spec.min_trials and cand.ok >= spec.min_trials:
        return None  # this profile does not produce the metric (e.g. CPU per request of an idle profile)
    v.base_values, v.cand_values = bv, cv
    v.base_median = statistics.median(bv) if bv else None
    v.cand_median = statistics.median(cv) if cv else None
    short = [(name, f) for name, f in ((base_name, base), ("candidate", cand))
             if len(f.values.get(metric, [])) < spec.min_trials]
    if short:
        v.note = "; ".join(f"{name}: {f.describe()}" + ("" if f.ok == len(f.values.get(metric, [])) else
                                                         f", {metric} measured in {len(f.values.get(metric, []))}")
                           for name, f in short) + f" (the gate needs {spec.min_trials})"
        return v
    floor = min_p_value(len(bv), len(cv))
    if floor >= spec.alpha:
        v.note = (f"{len(bv)} vs {len(cv)} trials cannot give p < {spec.alpha:g} (the smallest possible p is "
                  f"{floor:.3f}); run more trials")
        return v
    if v.base_median == 0:
        v.note = "the base median is 0: no relative change"
        return v
    v.change_pct = (v.cand_median - v.base_median) / abs(v.base_median) * 100.0
    worse_alt, better_alt = ("less", "greater") if better == "higher" else ("greater", "less")
    w = mann_whitney_u(cv, bv, worse_alt)
    b = mann_whitney_u(cv, bv, better_alt)
    v.p_worse, v.p_better, v.method = w.p, b.p, w.method
    v.verdict = "pending"  # decided in compare(), once every p of the run is known (Holm)
    return v


def holm(ps: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; controls the chance of any false positive among them)."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def _decide(verdicts: list[Verdict], spec: GateSpec) -> None:
    """Turn the pending rows into pass / regression / improvement, with Holm's correction over the rows."""
    rows = [v for v in verdicts if v.verdict == "pending"]
    if spec.correction == "holm" and rows:
        m = len(rows)
        for v in rows:
            floor = min_p_value(len(v.base_values), len(v.cand_values))
            if floor * m >= spec.alpha:
                v.verdict = "not measured"
                v.note = (f"{len(v.base_values)} vs {len(v.cand_values)} trials cannot give p < {spec.alpha:g} "
                          f"after Holm's correction for {m} tests (the smallest possible p is {floor:.4f}, "
                          f"x {m} = {floor * m:.3f}); run more trials or gate fewer metrics")
        rows = [v for v in rows if v.verdict == "pending"]
    if spec.correction == "holm":
        for v, pw, pb in zip(rows, holm([v.p_worse for v in rows]), holm([v.p_better for v in rows])):
            v.p_worse_adj, v.p_better_adj = pw, pb
    else:
        for v in rows:
            v.p_worse_adj, v.p_better_adj = v.p_worse, v.p_better
    corrected = spec.correction == "holm" and len(rows) > 1

    def shown(raw: float, adj: float) -> str:
        if not corrected:
            return f"p = {adj:.3f}"
        return f"p = {raw:.3f}, {adj:.3f} after Holm's correction for {len(rows)} tests"

    for v in rows:
        bad_change = -v.change_pct if v.better == "higher" else v.change_pct
        if bad_change > v.threshold_pct and v.p_worse_adj < spec.alpha:
            v.verdict = "regression"
        elif -bad_change > v.threshold_pct and v.p_better_adj < spec.alpha:
            v.verdict = "improvement"
        else:
            v.verdict = "pass"
            if bad_change > v.threshold_pct:
                v.note = f"beyond the threshold but not significant ({shown(v.p_worse, v.p_worse_adj)})"
            elif v.p_worse_adj < spec.alpha:
                v.note = f"significantly worse ({shown(v.p_worse, v.p_worse_adj)}) but within the threshold"


def compare(base: dict[tuple[str, str], Figures], cand: dict[tuple[str, str], Figures], spec: GateSpec, *,
            servers: Sequence[str] | None = None, profiles: Sequence[str] | None = None,
            base_name: str = "base") -> GateResult:
    """Verdicts for every server x gated profile x gated metric.

    ``servers``/``profiles`` fix the rows (default: every (server, profile) either side has,
    narrowed to ``spec.profiles`` when given); a row one side lacks is not measured.
    """
    if servers is not None and profiles is not None:
        keys = [(s, p) for s in servers for p in profiles]  # the matrix fixes the rows
    else:
        keys = list(dict.fromkeys([*cand, *base]))
        if servers is not None:
            keys = [k for k in keys if k[0] in servers]
        if profiles is not None:
            keys = [k for k in keys if k[1] in profiles]
    if spec.profiles:
        keys = [k for k in keys if k[1] in spec.profiles]
    verdicts = []
    for server, profile in keys:
        for metric, threshold in spec.thresholds.items():
            v = _verdict(server, profile, metric, threshold, spec, base.get((server, profile)),
                         cand.get((server, profile)), base_name)
            if v is not None:
                verdicts.append(v)
    _decide(verdicts, spec)
    notes = []
    for side, figs in ((base_name, base), ("candidate", cand)):
        noisy = sum(f.noisy for k, f in figs.items() if k in keys)
        cells = sum(f.trials for k, f in figs.items() if k in keys)
        if noisy:
            notes.append(f"{side}: {noisy} of {cells} cells ran on a busy machine (flagged noisy); "
                         "interleaving spreads such noise over both sides")
    return GateResult(verdicts, spec, notes)


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


# -- the side-by-side mode ---------------------------------------------------------------------------


def gate_matrix(matrix: Matrix, trials: int | None = None) -> Matrix:
    """``matrix`` as the gate runs it: only the gated profiles, no suites, ``trials`` trials each."""
    wanted = set(matrix.gate.profiles)
    profiles = tuple(dataclasses.replace(p, params={**p.params, "trials": 0})
                     for p in matrix.profiles if not wanted or p.name in wanted)
    if not profiles:
        raise GateError(f"{matrix.source}: the matrix has no load profiles to gate")
    return dataclasses.replace(matrix, suites=(), profiles=profiles, trials=trials or matrix.trials)


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GateError(f"git {' '.join(args)}: {exc}") from None
    if check and out.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


def _probe(launch_dir: Path, tree: Path, names: Sequence[str]) -> None:
    """Check that a server started from ``launch_dir`` imports each of ``names`` from ``tree``.

    The launcher runs ``python -m servers`` with the caller's working directory, and ``-m`` puts
    that directory first on ``sys.path`` (unless PYTHONSAFEPATH/-P is set); ``-c`` follows the same
    rule, so this probe imports exactly as a launched server would.
    """
    from servers.launcher import child_env

    code = ("import importlib, os, sys\n"
            "for name in sys.argv[1:]:\n"
            "    print(os.path.realpath(importlib.import_module(name).__file__))\n")
    try:
        out = subprocess.run([sys.executable, "-c", code, *names], cwd=launch_dir, env=child_env(),
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GateError(f"cannot probe {launch_dir}: {exc}") from None
    got = out.stdout.split()
    want = os.path.realpath(tree)
    for i, name in enumerate(names):
        path = got[i] if i < len(got) else ""
        if out.returncode != 0 or not path.startswith(want + os.sep):
            raise GateError(f"a server started from {launch_dir} would import {name} from "
                            f"{path or out.stderr.strip().splitlines()[-1:]!r}, not from {want} (is PYTHONSAFEPATH "
                            "set?); cannot tell the two sides apart")


def _link_tree(launch_dir: Path, tree: Path, names: Sequence[str], side: str, what: str) -> None:
    """``launch_dir`` with one link per name in ``names`` to that package (or module) of ``tree``."""
    launch_dir.mkdir()
    for name in names:
        pkg, mod = tree / name, tree / f"{name}.py"
        if pkg.is_dir():
            (launch_dir / name).symlink_to(pkg, target_is_directory=True)
        elif mod.is_file():
            (launch_dir / f"{name}.py").symlink_to(mod)
        else:
            raise GateError(f"the {side} ({what}) has no {name!r} package or module to measure "
                            "(gate.tree in the matrix names what each side's servers import from its tree)")


class _Indented:
    """A text stream that indents every line written to it (the runner's progress under the gate's)."""

    def __init__(self, out: TextIO, prefix: str):
        self.out, self.prefix, self._bol = out, prefix, True

    def write(self, text: str) -> int:
        for part in text.splitlines(keepends=True):
            if self._bol:
                self.out.write(self.prefix)
            self.out.write(part)
            self._bol = part.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@dataclass
class AgainstRun:
    """What :func:`run_against` measured."""

    base: dict  # merged run document of the base side
    candidate: dict
    folder: Path
    base_commit: str
    candidate_commit: str | None
    candidate_dirty: bool | None
    wall_seconds: float


def _merge(folder: Path, matrix: Matrix, env: dict, argv: list[str], docs: list[tuple[int, dict]]) -> dict:
    """One run document of a side from its per-trial documents (cells renumbered with the gate's trial)."""
    rd = RunDocument.create(folder, matrix.to_dict(), env, argv)
    for _, d in docs[:1]:
        for label, info in d.get("servers", {}).items():
            rd.doc["servers"][label] = info
    for trial, d in docs:
        for c in d.get("cells", []):
            if c.get("kind") == "profile":
                rd.doc["cells"].append(dict(c, trial=trial))
    rd.finish("complete" if all(d.get("status") == "complete" for _, d in docs) else "interrupted")
    return rd.doc


def parse_candidate_sets(items: Sequence[str], labels: Sequence[str]) -> dict[str, dict]:
    """``--candidate-set [LABEL:]Directive=value`` -> label -> directives (no label: every server)."""
    from servers.config import ConfigError, parse_override

    out: dict[str, dict] = {}
    for item in items:
        label, sep, rest = item.partition(":")
        if not sep or "=" in label:
            targets, rest = list(labels), item
        else:
            if label not in labels:
                raise GateError(f"--candidate-set {item!r}: no server labelled {label!r}; labels: {', '.join(labels)}")
            targets = [label]
        try:
            name, value = parse_override(rest)
        except ConfigError as exc:
            raise GateError(f"--candidate-set {item!r}: {exc}") from None
        for t in targets:
            out.setdefault(t, {})[name] = value
    return out


def with_sets(matrix: Matrix, extra: dict[str, dict]) -> Matrix:
    """``matrix`` with ``extra`` directives added to the servers they name."""
    if not extra:
        return matrix
    return dataclasses.replace(matrix, servers=tuple(
        dataclasses.replace(s, set={**s.set, **extra.get(s.label, {})}) for s in matrix.servers))


def run_against(matrix: Matrix, ref: str, *, results_dir: str | os.PathLike = "results/runs",
                trials: int | None = None, out: TextIO = sys.stdout, argv: list[str] | None = None,
                candidate_sets: dict[str, dict] | None = None) -> AgainstRun:
    """Run ``matrix`` on revision ``ref`` and on the working tree, interleaved; the two merged documents.

    The base revision goes into a temporary ``git worktree`` (removed in a finally, with its launch
    directories). Per trial t = 1..N the sides run in the order base, candidate for odd t and
    candidate, base for even t (ABBA: a linear drift of the machine hits both sides alike), each as a
    one-trial run of the candidate's runner whose servers start from that side's tree.
    """
    from .runner import MatrixRunner

    t0 = time.monotonic()
    m = gate_matrix(matrix, trials)
    top = _git("rev-parse", "--show-toplevel", cwd=Path.cwd(), check=False)
    if not top:
        raise GateError(f"--against {ref}: {Path.cwd()} is not in a git checkout; the working tree is the candidate")
    repo = Path(top)
    sha = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False)
    if not sha:
        raise GateError(f"--against {ref}: not a commit here (in CI: git fetch origin {ref.split('/')[-1]})")
    cand_commit = _git("rev-parse", "HEAD", cwd=repo, check=False) or None
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=repo, check=False)
    folder = new_run_dir(Path(results_dir).resolve(), f"gate-{matrix.name}")
    print(f"gate folder: {folder}", file=out, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="mpm-gate-"))
    base_tree = tmp / "base"
    added = False
    previous = signal.signal(signal.SIGTERM, _sigterm)
    old_cwd = os.getcwd()
    try:
        _git("worktree", "add", "--detach", str(base_tree), sha, cwd=repo)
        added = True
        trees = {"base": base_tree, "candidate": repo}
        what = {"base": f"{ref} = {sha[:10]}", "candidate": f"working tree {repo}"}
        launch = {}
        for side, tree in trees.items():
            launch[side] = tmp / f"launch-{side}"
            _link_tree(launch[side], tree, matrix.gate.tree, side, what[side])
            _probe(launch[side], tree, matrix.gate.tree)
        docs: dict[str, list[tuple[int, dict]]] = {"base": [], "candidate": []}
        for t in range(1, m.trials + 1):
            for side in (("base", "candidate") if t % 2 else ("candidate", "base")):
                print(f"gate: trial {t}/{m.trials}: {side} ({sha[:10] if side == 'base' else 'working tree'})",
                      file=out, flush=True)
                one = dataclasses.replace(m, trials=1)
                if side == "candidate":
                    one = with_sets(one, candidate_sets or {})
                run_dir = folder / "trials" / f"{t:02d}-{side}"
                os.chdir(launch[side])  # the launcher's servers inherit it: `python -m servers` from this tree
                try:
                    doc = MatrixRunner(one, run_dir, out=_Indented(out, "    "), argv=argv).run().doc
                finally:
                    os.chdir(old_cwd)
                docs[side].append((t, doc))
                if doc.get("status") == "interrupted":
                    raise KeyboardInterrupt
        env_c = dict(docs["candidate"][0][1].get("environment", {}), git_commit=cand_commit,
                     git_dirty=bool(status) if cand_commit else None, tree=str(repo))
        env_b = dict(docs["base"][0][1].get("environment", {}), git_commit=sha, git_dirty=False,
                     tree=f"{ref} (worktree)")
        base_doc = _merge(folder / "base", m, env_b, argv or [], docs["base"])
        cand_doc = _merge(folder / "candidate", with_sets(m, candidate_sets or {}), env_c, argv or [],
                          docs["candidate"])
    finally:
        os.chdir(old_cwd)
        signal.signal(signal.SIGTERM, previous)
        if added:
            _git("worktree", "remove", "--force", str(base_tree), cwd=repo, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        _git("worktree", "prune", cwd=repo, check=False)
    return AgainstRun(base_doc, cand_doc, folder, sha, cand_commit, bool(status) if cand_commit else None,
                      time.monotonic() - t0)


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


# -- the command -------------------------------------------------------------------------------------


def _env_differences(a: dict, b: dict) -> list[str]:
    keys = ("cpu_model", "cpu_count", "kernel", "python", "hostname")
    return [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def _matrix_differences(a: dict, b: dict) -> list[str]:
    """What differs between the baseline's matrix and this run's, for what both have."""
    out = []
    sa = {s["label"]: s for s in a.get("servers", [])}
    sb = {s["label"]: s for s in b.get("servers", [])}
    for label in sa.keys() & sb.keys():
        if sa[label].get("set") != sb[label].get("set") or sa[label].get("server") != sb[label].get("server"):
            out.append(f"server {label}: directives differ")
    pa, pb = a.get("profiles", {}), b.get("profiles", {})
    for name in pa.keys() & pb.keys():
        ka = {k: v for k, v in pa[name].items() if k not in ("trials", "description")}
        kb = {k: v for k, v in pb[name].items() if k not in ("trials", "description")}
        if ka != kb:
            out.append(f"profile {name}: parameters differ")
    return out


def _write(result: GateResult, folder: Path | None, summary_path: str | None, out: TextIO) -> None:
    text = render_summary(result)
    print(text, file=out)
    if folder is not None:
        (folder / "gate.md").write_text(text)
        (folder / "gate.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
        print(f"wrote {folder / 'gate.md'} and gate.json", file=out)
    if summary_path:
        Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_path).write_text(text)
        print(f"wrote {summary_path}", file=out)


def _injected_note(extra: dict[str, dict]) -> list[str]:
    if not extra:
        return []
    text = "; ".join(f"{label}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for label, d in extra.items())
    return [f"**injected**: the candidate's servers ran with extra directives ({text}) (--candidate-set)"]


def gate_against(matrix: Matrix, ref: str, *, trials: int | None, results_dir: str, summary: str | None,
                 out: TextIO = sys.stdout, argv: list[str] | None = None,
                 candidate_sets: dict[str, dict] | None = None) -> int:
    """``harness gate --against REF``."""
    summary = os.path.abspath(summary) if summary else None
    r = run_against(matrix, ref, results_dir=results_dir, trials=trials, out=out, argv=argv,
                    candidate_sets=candidate_sets)
    m = gate_matrix(matrix, trials)
    labels = [s.label for s in m.servers]
    result = compare(collect(r.base), collect(r.candidate), matrix.gate, servers=labels,
                     profiles=[p.name for p in m.profiles])
    result.notes[:0] = _injected_note(candidate_sets or {})
    result.context = {"mode": "against", "ref": ref, "base_commit": r.base_commit,
                      "candidate_commit": r.candidate_commit, "candidate_dirty": r.candidate_dirty,
                      "matrix": matrix.name, "trials": m.trials, "folder": str(r.folder),
                      "wall_seconds": round(r.wall_seconds, 1), "base_name": "base"}
    _write(result, r.folder, summary, out)
    return result.exit_code


def gate_baseline(matrix: Matrix, baseline_path: str, *, run_dir: str | None, trials: int | None,
                  results_dir: str, summary: str | None, out: TextIO = sys.stdout,
                  argv: list[str] | None = None, candidate_sets: dict[str, dict] | None = None) -> int:
    """``harness gate --baseline FILE [--run RUN_DIR]``."""
    t0 = time.monotonic()
    summary = os.path.abspath(summary) if summary else None
    baseline = load_baseline(baseline_path)
    if run_dir:
        doc = load_run(run_dir)
        folder = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    else:
        from .runner import run_matrix

        rd = run_matrix(with_sets(gate_matrix(matrix, trials), candidate_sets or {}), results_dir=results_dir,
                        out=out, argv=argv)
        doc, folder = rd.doc, rd.run_dir
        if doc.get("status") == "interrupted":
            raise KeyboardInterrupt
    labels = [s.label for s in matrix.servers]
    ran = {c["server"] for c in doc.get("cells", []) if c.get("kind") == "profile"}
    servers = [x for x in labels if x in ran] if run_dir else labels
    gm = gate_matrix(matrix, trials)
    result = compare(collect_baseline(baseline), collect(doc), matrix.gate, servers=servers,
                     profiles=[p.name for p in gm.profiles], base_name="baseline")
    result.notes[:0] = _injected_note(candidate_sets or {})
    env_b, env_c = baseline.get("environment", {}), doc.get("environment", {})
    diff = _env_differences(env_b, env_c)
    if diff:
        result.notes.append("measured on a different machine or setup than the baseline (" + "; ".join(diff) +
                            "): absolute figures compared across machines; prefer --against")
    diff = _matrix_differences(baseline.get("matrix", {}), doc.get("matrix", {}))
    if diff:
        result.notes.append("the matrix changed since the baseline was recorded (" + "; ".join(diff) +
                            "): record a new one (harness baseline)")
    trials_done = max((c.get("trial", 1) for c in doc.get("cells", []) if c.get("kind") == "profile"), default=0)
    result.context = {"mode": "baseline", "baseline": str(baseline_path),
                      "baseline_recorded": baseline.get("recorded"), "base_commit": env_b.get("git_commit"),
                      "candidate_commit": env_c.get("git_commit"), "candidate_dirty": env_c.get("git_dirty"),
                      "matrix": matrix.name, "trials": trials_done, "folder": str(folder),
                      "wall_seconds": None if run_dir else round(time.monotonic() - t0, 1),
                      "base_name": "baseline"}
    _write(result, folder, summary, out)
    return result.exit_code
