#!/usr/bin/env python3
"""The Python floor beside our MPMs and uWSGI: how much of a request's cost is Python's at all?

    python benchmarks/python_floor.py [--servers floor-threads,floor-processes,worker,prefork,
                                                 uwsgi-threads,uwsgi-processes]
                                      [--connections 1,8,32,64] [--duration 2] [--trials 3]
                                      [--warmup 1] [--json PATH]

Issue 19 asks for worker >= 0.8 x uWSGI (processes x threads) and prefork >= 0.6 x uWSGI
processes. Where a goal is not met it wants what bounds it, with evidence. The evidence here is
the floor: ``benchmarks/_floor_server.py``, a pure-Python yardstick with the same process/thread
model that does almost nothing per request (blocking accept, recv, sendall of a fixed response).
What a server spends above the floor is its own work; what the floor spends is what any Python
server with that model pays for the interpreter, its thread hand-offs and its system calls.

Servers, each started fresh for every trial and stopped by PID (sized as the ``sweep`` matrix
sizes them, read from harness/matrices/sweep.yaml, so the two never drift apart):
  floor-threads     the floor, worker's model: ServerLimit x ThreadsPerChild of sweep's worker (2 x 25)
  floor-processes   the floor, prefork's model: MaxRequestWorkers of sweep's prefork (50 processes)
  worker, prefork   our MPMs, through servers.launcher.start with sweep's directives
  uwsgi-threads, uwsgi-processes   uWSGI with sweep's directives, when installed (else a line
                    with the launcher's reason, naming the install: ``pip install -e '.[uwsgi]'``)

Method, as ``harness run --matrix sweep`` measures (docs/performance.md, "Measuring honestly"):
the server tree pinned to the harness's server CPUs and the driver to its driver CPUs
(harness.runner.choose_pinning); after each start a discarded warm-up at the largest connection
count (every process and thread serves before anything counts); then, per connection count, the
machine's quiet check (harness.sampler.quiet_check, sweep's threshold: a busier machine flags the
cell "noisy") and harness.drivers.loadgen's closed loop on ``GET /`` with keep-alive. The server's
CPU is the CPU-time of its whole process tree (harness.sampler.procfs.trees_cpu, the sampler's own
accounting: user + system + reaped children) read just before and just after the load. Trials are
interleaved: trial 1 of every server at every count, then trial 2, ...; the tables show medians.
A cell is flagged when a trial was noisy, generator-bound (the driver above 90% of its CPU), left a
connection unanswered or had errors. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from harness.drivers.base import DriverResult  # noqa: E402
from harness.drivers.loadgen import run_closed_loop  # noqa: E402
from harness.matrix import Matrix, load_matrix  # noqa: E402
from harness.runner import choose_pinning  # noqa: E402
from harness.sampler.procfs import quiet_check, trees_cpu  # noqa: E402
from servers.launcher import Handle, MPMHandle, available, finish_start, spawn, start  # noqa: E402

SWEEP: Matrix = load_matrix("sweep")
#: floor name -> (its model, the sweep server whose size it takes)
FLOORS = {"floor-threads": ("threads", "worker"), "floor-processes": ("processes", "prefork")}
SERVERS = ("floor-threads", "floor-processes", "worker", "prefork", "uwsgi-threads", "uwsgi-processes")
#: the ratios that matter: (server, its floor)
RATIOS = (("uwsgi-threads", "floor-threads"), ("worker", "floor-threads"),
          ("uwsgi-processes", "floor-processes"), ("prefork", "floor-processes"))
#: seconds a start, a stop and a load's set-up add beyond the measured time (for the bound and the estimate)
START_S, PER_LOAD_S = 1.5, 0.2


def sweep_set(label: str) -> dict:
    """The directives the sweep matrix gives server ``label``."""
    return dict(next(s.set for s in SWEEP.servers if s.label == label))


def floor_args(name: str) -> list[str]:
    """The floor server's model and size for ``name``: those of its sweep counterpart."""
    model, like = FLOORS[name]
    size = sweep_set(like)
    if model == "threads":
        return ["--model", model, "--processes", str(size["ServerLimit"]), "--threads", str(size["ThreadsPerChild"])]
    return ["--model", model, "--processes", str(size["MaxRequestWorkers"])]


def start_server(name: str, cpus: list[int] | None, seconds: float) -> Handle:
    """Server ``name`` started fresh on ``cpus``; a floor lives at most ``seconds``."""
    if name not in FLOORS:
        return start(name, sweep_set(name), cpus=cpus, timeout=SWEEP.start_timeout)
    run_dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
    log = os.path.join(run_dir, "error.log")
    argv = [sys.executable, str(HERE / "_floor_server.py"), *floor_args(name), "--seconds", f"{seconds:.0f}"]
    proc = spawn(argv, log_path=log, cpus=cpus, stdout=subprocess.PIPE)
    return finish_start(MPMHandle(name=name, proc=proc, run_dir=run_dir, log_path=log, pidfile=""),
                        True, SWEEP.start_timeout)


def unavailable(names: list[str]) -> dict[str, str]:
    """Why each of ``names`` cannot start here (what to install), for those that cannot."""
    known = available()  # the launcher's reasons name the install (uWSGI: pip install -e '.[uwsgi]')
    return {name: known[name] for name in names if name not in FLOORS and known.get(name)}


def cell(name: str, trial: int, conns: int, result: DriverResult | None, cpu_s: float | None,
         quiet: dict | None, error: str = "") -> dict:
    """One measurement, JSON-ready."""
    checks = {"generator-bound": result is not None and result.generator_bound,
              "starved": result is not None and bool(result.starved_connections),
              "errors": result is not None and bool(result.error_count),
              "noisy": quiet is not None and quiet["other_cpu_percent"] > SWEEP.max_other_cpu_percent}
    flags = [flag for flag, hit in checks.items() if hit]
    measured = result is not None and result.requests > 0 and cpu_s is not None
    return {"server": name, "trial": trial, "connections": conns, "error": error, "flags": flags,
            "requests": result.requests if result else 0, "rps": result.rps if result else None,
            "server_cpu_s": cpu_s, "cpu_us_per_request": cpu_s / result.requests * 1e6 if measured else None,
            "driver_cpu_fraction": result.driver_cpu_fraction if result else None,
            "other_cpu_percent": quiet["other_cpu_percent"] if quiet else None}


def measure(h: Handle, name: str, trial: int, conns: int, args: argparse.Namespace, pins: dict) -> dict:
    """One closed-loop load at ``conns`` connections and the server tree's CPU over it."""
    quiet = quiet_check(SWEEP.quiet_seconds, exclude_pids=[os.getpid()])  # the server is our descendant
    before = trees_cpu([h.pid])
    result = run_closed_loop(h.url + "/", connections=conns, duration=args.duration,
                             cpus=pins["driver_cpus"] or None)
    cpu_s = trees_cpu([h.pid]) - before
    if not h.alive():
        return cell(name, trial, conns, result, cpu_s, quiet, f"server exited (status {h.proc.returncode})")
    return cell(name, trial, conns, result, cpu_s, quiet)


def run_trial(name: str, trial: int, args: argparse.Namespace, pins: dict) -> list[dict]:
    """Every connection count against one fresh start of ``name``; a failure is a failed cell, never the end."""
    bound = per_start_s(args) + 60
    cells: list[dict] = []
    try:
        with start_server(name, pins["server_cpus"] or None, bound) as h:
            if args.warmup > 0:
                run_closed_loop(h.url + "/", connections=max(args.connections), duration=args.warmup,
                                cpus=pins["driver_cpus"] or None)
            for conns in args.connections:
                cells.append(measure(h, name, trial, conns, args, pins))
                if cells[-1]["error"]:
                    break
    except Exception as exc:  # noqa: BLE001 - the run goes on; the cell says why
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        cells += [cell(name, trial, c, None, None, None, error) for c in args.connections[len(cells):]]
    return cells


def medians(cells: list[dict]) -> dict[str, dict[int, dict]]:
    """server -> connections -> median req/s and CPU-us/request over the trials that measured, and flags."""
    out: dict[str, dict[int, dict]] = {}
    for c in cells:
        slot = out.setdefault(c["server"], {}).setdefault(c["connections"], {"rps": [], "cpu": [], "notes": set()})
        slot["notes"].update(c["flags"] + ([c["error"]] if c["error"] else []))
        if c["error"]:  # a server that died or a load that failed measured nothing worth a median
            continue
        if c["rps"] is not None:
            slot["rps"].append(c["rps"])
        if c["cpu_us_per_request"] is not None:
            slot["cpu"].append(c["cpu_us_per_request"])
    return {s: {n: {"rps": statistics.median(v["rps"]) if v["rps"] else None,
                    "cpu_us_per_request": statistics.median(v["cpu"]) if v["cpu"] else None,
                    "trials": len(v["rps"]), "notes": sorted(v["notes"])}
                for n, v in by.items()} for s, by in out.items()}


def ratios(med: dict[str, dict[int, dict]], counts: list[int]) -> dict[str, dict[int, dict]]:
    """Each pair of :data:`RATIOS` both measured: req/s and CPU-us/request of the server over its floor, and
    the CPU-us/request the server spends above the floor (its own work, beyond what any Python server pays)."""
    out = {}
    for a, b in RATIOS:
        if a in med and b in med:
            out[f"{a}/{b}"] = {n: _pair(med[a].get(n, {}), med[b].get(n, {})) for n in counts}
    return out


def _pair(x: dict, floor: dict) -> dict:
    """The ratios of one server's medians to its floor's at one connection count."""
    rps, fr = x.get("rps"), floor.get("rps")
    cpu, fc = x.get("cpu_us_per_request"), floor.get("cpu_us_per_request")
    return {"rps": rps / fr if rps is not None and fr else None,
            "cpu_us_per_request": cpu / fc if cpu is not None and fc else None,
            "cpu_us_above_floor": cpu - fc if cpu is not None and fc is not None else None}


def _fmt(x: float | None, digits: str) -> str:
    return "-" if x is None else format(x, digits)


def print_tables(med: dict, rat: dict, names: list[str], counts: list[int]) -> None:
    """The medians per server and connection count, then the ratios to the floors, then the flags."""
    shown = [n for n in names if n in med]
    for title, key, digits in (("req/s (median)", "rps", ",.0f"), ("server CPU-us/request (median)",
                                                                    "cpu_us_per_request", ".1f")):
        print(f"\n{title}\n")
        rows = [[n] + [_fmt(med[s].get(n, {}).get(key), digits) for s in shown] for n in counts]
        print(tabulate(rows, headers=["connections"] + shown, tablefmt="github", disable_numparse=True))
    if rat:
        print("\nagainst the floor (req/s x: higher is faster; CPU-us/req x: higher costs more; above: the server's"
              " own CPU-us per request beyond the floor's)\n")
        kinds = (("req/s x", "rps", ".2f"), ("CPU-us/req x", "cpu_us_per_request", ".2f"),
                 ("CPU-us/req above", "cpu_us_above_floor", "+.1f"))
        rows = [[pair, label] + [_fmt(by[n][key], digits) for n in counts]
                for pair, by in rat.items() for label, key, digits in kinds]
        print(tabulate(rows, headers=["ratio", "of"] + [str(n) for n in counts], tablefmt="github",
                       disable_numparse=True))
    notes = [f"{s} at {n}: {', '.join(v['notes'])}" for s in shown for n, v in med[s].items() if v["notes"]]
    if notes:
        print("\nflagged (some trial was):\n" + "\n".join(f"  {x}" for x in notes))
    if any("generator-bound" in v["notes"] for f in FLOORS if f in med for v in med[f].values()):
        print("\na floor flagged generator-bound ran as fast as the driver could ask: its req/s and the req/s ratios"
              " there are the driver's limit; its CPU-us/request, and the ratios and differences of CPU, still hold")


def per_start_s(args: argparse.Namespace) -> float:
    """About how long one start of a server takes: its start, warm-up, and a load per connection count."""
    return START_S + args.warmup + len(args.connections) * (args.duration + SWEEP.quiet_seconds + PER_LOAD_S)


def estimate_s(servers: list[str], args: argparse.Namespace) -> float:
    """About how long the whole measurement takes."""
    return per_start_s(args) * len(servers) * args.trials


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; the defaults are the sweep matrix's."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    profile = SWEEP.profiles[0]
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"a subset of {','.join(SERVERS)}")
    ap.add_argument("--connections", default=",".join(str(p.get("connections")) for p in SWEEP.profiles))
    ap.add_argument("--duration", type=float, default=profile.duration, help="seconds per load")
    ap.add_argument("--trials", type=int, default=SWEEP.trials)
    ap.add_argument("--warmup", type=float, default=SWEEP.warmup, help="discarded seconds after each start")
    ap.add_argument("--json", metavar="PATH", help="write every trial's figures, the medians and the ratios")
    args = ap.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in args.servers if s not in SERVERS]
    if unknown or not args.servers:
        ap.error(f"unknown server(s) {unknown}; choose from {', '.join(SERVERS)}")
    try:
        args.connections = [int(c) for c in args.connections.split(",") if c]
    except ValueError:
        ap.error("--connections wants positive integers separated by commas")
    if not args.connections or min(args.connections) < 1 or args.duration <= 0 or args.trials < 1 or args.warmup < 0:
        ap.error("--connections, --duration and --trials must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure every server, trials interleaved, and print (and optionally write) the figures."""
    args = parse_args(argv)
    missing = unavailable(args.servers)
    for name, why in missing.items():
        print(f"{name}: skipped ({why})")
    names = [s for s in args.servers if s not in missing]
    pins = choose_pinning("auto")
    print(f"{', '.join(names)}; {args.trials} trial(s) of {args.duration:g} s at {args.connections} connections; "
          f"server CPU {pins['server_cpus'] or 'any'}, driver CPU {pins['driver_cpus'] or 'any (not pinned)'}; "
          f"about {estimate_s(names, args) / 60:.1f} min", flush=True)
    began = time.monotonic()
    cells = [c for trial in range(1, args.trials + 1) for name in names for c in run_trial(name, trial, args, pins)]
    med = medians(cells)
    rat = ratios(med, args.connections)
    print_tables(med, rat, names, args.connections)
    print(f"\ntook {time.monotonic() - began:.0f} s")
    if args.json:
        doc = {"argv": sys.argv[1:] if argv is None else argv, "pinning": pins, "unavailable": missing,
               "settings": {n: floor_args(n) if n in FLOORS else sweep_set(n) for n in names},
               "cells": cells, "medians": med, "ratios": rat}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
