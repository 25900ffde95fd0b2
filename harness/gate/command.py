"""``harness gate``: the two modes as commands, their notes, and the files they write."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from ..baseline import collect, collect_baseline, load_baseline
from ..matrix import Matrix
from ..runview import Run
from .sidebyside import gate_matrix, run_against, with_sets
from .summary import render_summary
from .verdicts import GateResult, compare


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
        run = Run.load(run_dir)
        folder = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    else:
        from ..runner import run_matrix

        rd = run_matrix(with_sets(gate_matrix(matrix, trials), candidate_sets or {}), results_dir=results_dir,
                        out=out, argv=argv)
        run, folder = Run(rd.doc), rd.run_dir
        if run.status == "interrupted":
            raise KeyboardInterrupt
    labels = [s.label for s in matrix.servers]
    ran = {c.server for c in run.profile_cells()}
    servers = [x for x in labels if x in ran] if run_dir else labels
    gm = gate_matrix(matrix, trials)
    result = compare(collect_baseline(baseline), collect(run), matrix.gate, servers=servers,
                     profiles=[p.name for p in gm.profiles], base_name="baseline")
    result.notes[:0] = _injected_note(candidate_sets or {})
    env_b, env_c = baseline.get("environment", {}), run.environment
    diff = _env_differences(env_b, env_c)
    if diff:
        result.notes.append("measured on a different machine or setup than the baseline (" + "; ".join(diff) +
                            "): absolute figures compared across machines; prefer --against")
    diff = _matrix_differences(baseline.get("matrix", {}), run.matrix)
    if diff:
        result.notes.append("the matrix changed since the baseline was recorded (" + "; ".join(diff) +
                            "): record a new one (harness baseline)")
    trials_done = max((c.trial or 1 for c in run.profile_cells()), default=0)
    result.context = {"mode": "baseline", "baseline": str(baseline_path),
                      "baseline_recorded": baseline.get("recorded"), "base_commit": env_b.get("git_commit"),
                      "candidate_commit": env_c.get("git_commit"), "candidate_dirty": env_c.get("git_dirty"),
                      "matrix": matrix.name, "trials": trials_done, "folder": str(folder),
                      "wall_seconds": None if run_dir else round(time.monotonic() - t0, 1),
                      "base_name": "baseline"}
    _write(result, folder, summary, out)
    return result.exit_code
