"""The gate's verdicts: per server x profile x metric, the median shift against its threshold and the U test."""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from typing import Sequence

from ..baseline import Figures
from ..matrix import GateSpec
from ..results import METRICS
from .stats import holm, mann_whitney_u, min_p_value


EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_UNMEASURED = 2

#: how the summary names the gated metrics
LABELS = {"rps": "requests/s", "cpu_us_per_request": "CPU-us/request", "pss_peak_mib": "peak PSS MiB",
          "rss_peak_mib": "peak RSS MiB"}


class GateError(ValueError):
    """The gate cannot start: a bad reference, not a git checkout, a base tree without servers."""


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
