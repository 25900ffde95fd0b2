"""The committed baseline (``results/baseline.json``) and the per-trial figures the gate compares.

A baseline is what one ``harness run`` measured, reduced to what the
regression gate needs (docs/gate.md has the reference)::

    {
      "schema": "mpm-harness/baseline", "schema_version": 1,
      "recorded": ISO-8601 UTC, "run_id": ..., "source": the run folder,
      "environment": the run's environment (CPU, kernel, Python, packages, git commit, pinning),
      "matrix": the run's effective matrix (servers with their directives, profiles, gate thresholds),
      "servers": {LABEL: {"server": launcher name, "set": {...},
                          "profiles": {PROFILE: {"trials", "ok", "statuses", "flags", "noisy", "reasons",
                                                 "metrics": {METRIC: {"unit", "better", "median", "min",
                                                                      "max", "n", "values"}}}}}}
    }

``values`` are the ``ok`` trials' figures in trial order: the gate's
statistical test needs every trial, not only the median.  ``harness baseline
RUN_DIR`` writes one; :func:`collect` turns a run document or a baseline into
the same per-(server, profile) form for the gate.
"""

from __future__ import annotations

import datetime as _dt
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .results import write_json_atomic
from .runview import METRICS, ProfileStats, Run, as_run, read_document

__all__ = ["BASELINE_SCHEMA", "BASELINE_VERSION", "BASELINE_METRICS", "Figures", "collect", "collect_baseline",
           "baseline_from_run", "write_baseline", "load_baseline"]

BASELINE_SCHEMA = "mpm-harness/baseline"
BASELINE_VERSION = 1
#: what a baseline always records (the gate's defaults gate three of them; rss is there for ``memory: rss``)
BASELINE_METRICS = ("rps", "cpu_us_per_request", "pss_peak_mib", "rss_peak_mib")


@dataclass
class Figures:
    """One server x profile on one side of a comparison: how its trials went and the ok trials' values."""

    trials: int = 0
    ok: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    noisy: int = 0
    reasons: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> ok trials' values, trial order

    @classmethod
    def of(cls, stats: ProfileStats, metrics: Iterable[str]) -> "Figures":
        """The figures of one server x profile of a run: its trials, and the ok values of ``metrics``."""
        values = {m: [float(v) for v in stats.values(m)] for m in metrics}
        return cls(trials=stats.trials, ok=stats.ok, statuses=dict(stats.statuses), flags=list(stats.flags),
                   noisy=stats.noisy, reasons=list(stats.reasons), values={m: v for m, v in values.items() if v})

    def describe(self) -> str:
        """``3 of 5 trials ok (failed 2: server exited ...)``."""
        text = f"{self.ok} of {self.trials} trials ok"
        bad = {s: n for s, n in self.statuses.items() if s != "ok"}
        if bad:
            text += " (" + ", ".join(f"{s} {n}" for s, n in sorted(bad.items()))
            if self.reasons:
                text += ": " + "; ".join(self.reasons[:2])
            text += ")"
        return text


def collect(run: Run | Mapping[str, Any], metrics: Iterable[str] | None = None) -> dict[tuple[str, str], Figures]:
    """Per (server label, profile): the trials of a run, with each metric's ``ok`` values in trial order."""
    metrics = tuple(metrics or METRICS)
    return {(server, profile): Figures.of(st, metrics) for server, profile, st in as_run(run).all_stats()}


def collect_baseline(baseline: dict) -> dict[tuple[str, str], Figures]:
    """The same form as :func:`collect`, from a baseline document."""
    out = {}
    for label, srv in baseline.get("servers", {}).items():
        for profile, p in srv.get("profiles", {}).items():
            out[(label, profile)] = Figures(
                trials=p.get("trials", 0), ok=p.get("ok", 0), statuses=dict(p.get("statuses", {})),
                flags=list(p.get("flags", [])), noisy=p.get("noisy", 0), reasons=list(p.get("reasons", [])),
                values={m: [float(v) for v in spec.get("values", [])]
                        for m, spec in p.get("metrics", {}).items() if spec.get("values")})
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def baseline_from_run(run: Run | Mapping[str, Any], *, source: str = "", metrics=None) -> dict:
    """A baseline document from a run (``ok`` trials only; every trial's value kept)."""
    run = as_run(run)
    wanted = list(dict.fromkeys([*BASELINE_METRICS, *(metrics or ())]))
    gate = run.matrix.get("gate") or {}
    gated = gate.get("thresholds", {})
    memory = {"pss": "pss_peak_mib", "rss": "rss_peak_mib"}.get(gate.get("memory", "pss"), "pss_peak_mib")
    for key in gated:  # a matrix that gates more (p99_ms, ...) gets those recorded too
        m = memory if key == "memory" else key
        if m in METRICS and m not in wanted:
            wanted.append(m)
    servers: dict[str, dict] = {}
    for (label, profile), f in collect(run, wanted).items():
        info = run.server(label).raw
        srv = servers.setdefault(label, {"server": info.get("server", label), "set": info.get("set", {}),
                                         "app": info.get("app", ""), "profiles": {}})
        metrics_out = {}
        for m in wanted:
            vals = f.values.get(m, [])
            metrics_out[m] = {
                "unit": METRICS[m][0], "better": METRICS[m][1],
                "median": statistics.median(vals) if vals else None,
                "min": min(vals) if vals else None, "max": max(vals) if vals else None,
                "n": len(vals), "values": vals,
            }
        srv["profiles"][profile] = {"trials": f.trials, "ok": f.ok, "statuses": f.statuses, "flags": f.flags,
                                    "noisy": f.noisy, "reasons": f.reasons, "metrics": metrics_out}
    return {
        "schema": BASELINE_SCHEMA,
        "schema_version": BASELINE_VERSION,
        "recorded": _now(),
        "run_id": run.doc.get("run_id"),
        "run_started": run.doc.get("started"),
        "run_status": run.doc.get("status"),
        "source": source,
        "environment": run.doc.get("environment", {}),
        "matrix": run.doc.get("matrix", {}),
        "servers": servers,
    }


def write_baseline(baseline: dict, path: str | os.PathLike) -> Path:
    """Write ``baseline`` as indented JSON (stable key order, diff-friendly); atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, baseline)


def load_baseline(path: str | os.PathLike) -> dict:
    """Read a baseline; refuse other schemas and newer versions (ValueError naming the file)."""
    doc = read_document(path, BASELINE_SCHEMA, BASELINE_VERSION, "baseline",
                         f" (record one: harness baseline RUN_DIR -o {path})")
    if not isinstance(doc.get("servers"), dict):
        raise ValueError(f"{path}: baseline has no 'servers' mapping")
    return doc


def baseline_command(run_dir: str, output: str, out=None) -> int:
    """``harness baseline RUN_DIR -o FILE``: record a baseline from a finished run."""
    import sys

    out = out or sys.stdout
    run = Run.load(run_dir)
    if run.status != "complete":
        raise ValueError(f"{run_dir}: the run is {run.doc.get('status')!r}, not complete; a baseline needs a "
                         "finished run")
    baseline = baseline_from_run(run, source=str(run_dir))
    if not baseline["servers"]:
        raise ValueError(f"{run_dir}: the run has no load-profile cells to record")
    path = write_baseline(baseline, output)
    for label, srv in baseline["servers"].items():
        for profile, p in srv["profiles"].items():
            med = {m: s["median"] for m, s in p["metrics"].items()}
            fmt = ", ".join(f"{m} {v:,.1f}" for m, v in med.items() if v is not None)
            warn = "" if p["ok"] == p["trials"] else f"  (only {p['ok']} of {p['trials']} trials ok)"
            print(f"{label} {profile}: {fmt}{warn}", file=out)
    print(f"wrote {path}", file=out)
    return 0
