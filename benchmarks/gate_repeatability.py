#!/usr/bin/env python3
"""How often does the gate get it right? A/A runs and injected regressions, repeated.

    python benchmarks/gate_repeatability.py [--repeats 10] [--cases aa,cpu,pss] [--ref HEAD] [--matrix ci]
                                            [--cpu-us prefork=40,worker=17,event=26]
                                            [--ballast-mib prefork=0.57,worker=2.4,event=2.3] [--out runs/....json]

Each repetition runs ``harness gate --against REF`` once per case, the cases
interleaved (aa, cpu, pss, aa, cpu, pss, ...), each as its own subprocess:

* ``aa``: nothing changed (REF is HEAD and the servers are the same code): the
  gate must pass (exit 0);
* ``cpu``: the candidate's servers burn ``BenchCPUWorkMicroseconds`` per request
  (``--candidate-set``), tuned so that requests/s drops by about 20 %: the gate
  must fail (exit 1);
* ``pss``: the candidate's children each touch ``BenchBallastMiB``, tuned so that
  the tree's peak PSS grows by about 20 %: the gate must fail (exit 1).

The issue's acceptance (docs/gate.md, "Measured"): with 10 repetitions the
gate passes A/A in all but at most one, fails each injected regression in all
but at most one, and one gate run takes under 5 minutes.  It prints per case
the exit statuses, which metrics regressed, the median changes the gate saw
and the wall time per gate run, and writes every gate document to the JSON.

Every gate run is a child process stopped by PID on Ctrl-C; each run removes
its own worktree.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.gate import EXIT_PASS, EXIT_REGRESSION, GateError, parse_candidate_sets  # noqa: E402
from harness.matrix import MatrixError, load_matrix  # noqa: E402

#: tuned on the 2-core development machine (docs/gate.md): about -20 % requests/s, +20 % peak PSS
DEFAULT_CPU_US = "prefork=40,worker=17,event=26"
DEFAULT_BALLAST_MIB = "prefork=0.57,worker=2.4,event=2.3"
EXPECTED = {"aa": EXIT_PASS, "cpu": EXIT_REGRESSION, "pss": EXIT_REGRESSION}


def per_label(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"expected LABEL=VALUE, got {part!r}")
        out[label.strip()] = value.strip()
    return out


def candidate_sets(case: str, args) -> list[str]:
    if case == "cpu":
        return [f"{label}:BenchCPUWorkMicroseconds={v}" for label, v in per_label(args.cpu_us).items()]
    if case == "pss":
        return [f"{label}:BenchBallastMiB={v}" for label, v in per_label(args.ballast_mib).items()]
    return []


def run_gate(case: str, args, results_dir: Path, log: Path) -> dict:
    cmd = [sys.executable, "-m", "harness.cli", "gate", "--against", args.ref, "--matrix", args.matrix,
           "--results-dir", str(results_dir)]
    if args.trials:
        cmd += ["--trials", str(args.trials)]
    for s in candidate_sets(case, args):
        cmd += ["--candidate-set", s]
    before = set(results_dir.glob("*-gate-*"))
    t0 = time.monotonic()
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=args.timeout)
        except BaseException:
            proc.send_signal(signal.SIGTERM)  # the gate stops what it started and removes its worktree
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    wall = time.monotonic() - t0
    new = sorted(set(results_dir.glob("*-gate-*")) - before)
    doc = None
    if new and (new[-1] / "gate.json").is_file():
        doc = json.loads((new[-1] / "gate.json").read_text())
    return {"case": case, "exit": code, "wall_seconds": round(wall, 1), "folder": str(new[-1]) if new else None,
            "gate": doc}


def describe(r: dict) -> str:
    doc = r["gate"] or {}
    bits = []
    for v in doc.get("verdicts", []):
        if v["verdict"] != "pass" or v["metric"] == "rps":
            ch = "–" if v["change_pct"] is None else f"{v['change_pct']:+.0f}%"
            p = "–" if v["p_worse"] is None else f"{v['p_worse']:.3f}"
            bits.append(f"{v['server']}/{v['metric']} {ch} p={p} {v['verdict']}")
    return "; ".join(bits)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cases", default="aa,cpu,pss")
    ap.add_argument("--ref", default="HEAD", help="the base revision (A/A needs the servers unchanged since it)")
    ap.add_argument("--matrix", default="ci")
    ap.add_argument("--trials", type=int, help="trials per side (default: the matrix's)")
    ap.add_argument("--cpu-us", default=DEFAULT_CPU_US, help="BenchCPUWorkMicroseconds per server label")
    ap.add_argument("--ballast-mib", default=DEFAULT_BALLAST_MIB, help="BenchBallastMiB per server label")
    ap.add_argument("--timeout", type=float, default=900, help="seconds one gate run may take before it is stopped")
    ap.add_argument("--out", help="JSON with every gate document (default runs/gate_repeatability-<time>.json)")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in EXPECTED:
            raise SystemExit(f"unknown case {c!r}; cases: {', '.join(EXPECTED)}")
    try:  # the gate's own checks, before the first run rather than minutes into it
        labels = [s.label for s in load_matrix(args.matrix).servers]
        for c in cases:
            parse_candidate_sets(candidate_sets(c, args), labels)
    except (MatrixError, GateError) as exc:
        raise SystemExit(str(exc)) from None
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or ROOT / "runs" / f"gate_repeatability-{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results_dir = Path(tempfile.mkdtemp(prefix="gate-repeat-", dir=ROOT / "runs"))
    log = results_dir / "gate.log"
    print(f"gate runs: {results_dir} (output in {log.name})", flush=True)
    runs: list[dict] = []
    doc = {"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
           "ref": args.ref, "matrix": args.matrix, "cpu_us": per_label(args.cpu_us),
           "ballast_mib": per_label(args.ballast_mib), "runs": runs}
    try:
        for i in range(1, args.repeats + 1):
            for case in cases:
                r = run_gate(case, args, results_dir, log)
                r["repeat"] = i
                runs.append(r)
                ok = "ok " if r["exit"] == EXPECTED[case] else "BAD"
                print(f"[{i}/{args.repeats}] {case:4s} exit {r['exit']} {ok} {r['wall_seconds']:6.1f} s  {describe(r)}",
                      flush=True)
                out.write_text(json.dumps(doc, indent=1) + "\n")
    except KeyboardInterrupt:
        print("interrupted; partial results kept", file=sys.stderr)
    print()
    print("| case | runs | exit 0 | exit 1 | exit 2 | as expected | wall median s | wall max s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        rs = [r for r in runs if r["case"] == case]
        if not rs:
            continue
        codes = [r["exit"] for r in rs]
        walls = [r["wall_seconds"] for r in rs]
        print(f"| {case} (expect {EXPECTED[case]}) | {len(rs)} | {codes.count(0)} | {codes.count(1)} | "
              f"{codes.count(2)} | {sum(c == EXPECTED[case] for c in codes)}/{len(rs)} | "
              f"{statistics.median(walls):.0f} | {max(walls):.0f} |")
    print(f"\nall gate documents: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
