#!/usr/bin/env python3
"""Is the built-in driver as fast as wrk?  loadgen's closed loop and wrk, side by side.

    python benchmarks/driver_vs_wrk.py [--server event] [--trials 5] [--duration 5]
                                       [--connections 50] [--no-echo] [--out runs/....json]

Method (see "Measuring honestly" in the design notes):

* One server per target, pinned to one CPU; both drivers pinned to another
  (when there are two or more), so they get the same CPU budget.  wrk runs
  as ``wrk -t1 -c50 -d5s URL`` with its affinity set before exec; loadgen
  runs its closed loop in this process (50 connections, 1 process, 5 s).
* Trials are interleaved wrk, loadgen, wrk, loadgen ... on the same running
  server (1 s loadgen warm-up first, discarded); the table shows medians
  over the trials and the ratio loadgen/wrk, both as the ratio of the
  medians and as the median of the per-round ratios (paired, less
  sensitive to drift on a shared machine).
* Each driver's own CPU is recorded (wrk's from the rusage of the reaped
  child): a driver above 0.9 of its CPU is GENERATOR-BOUND, its figure is
  its own limit, not the server's.  Its CPU-us per request is the robust
  figure on a noisy machine: 1e6 / CPU-us is the most it can generate on
  one core, and "capacity loadgen/wrk" is the ratio of those.

Targets:

  --server NAME   one of our MPMs through servers.launcher (default event,
                  2 children x 8 threads; worker 2 x 25; prefork 50 children)
  echo            benchmarks/_echo_server.py, a trivial keep-alive epoll server
                  far cheaper than either driver: there the *driver* is the
                  limit, so this is the honest test of "the driver is not the
                  bottleneck" (skip it with --no-echo)

The issue's acceptance: loadgen reaches at least 0.7x wrk's requests/s on
the same server and CPU budget.  wrk must be on PATH (``apt-get install
wrk``); without it the script says so and exits 0 without measuring.
Every process started is stopped by PID in a finally; raw output goes to
runs/ (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from tabulate import tabulate  # noqa: E402

from harness.drivers.base import GENERATOR_BOUND_FRACTION  # noqa: E402
from harness.drivers.loadgen import run_closed_loop  # noqa: E402
from loadgen_selftest import start_echo  # noqa: E402
from side_by_side import OURS, Running, pick_cpus, run_header, wait_for  # noqa: E402

#: launcher name -> the sizing side_by_side.py uses for 50 connections
SIZING = {"event": "event2x8", "worker": "worker2x25", "prefork": "prefork50"}
ACCEPT_RATIO = 0.7


def start_server(name: str, server_cpus: set[int], timeout: float = 60.0) -> Running:
    """Our MPM ``name`` through servers.launcher, pinned to ``server_cpus``."""
    from servers.launcher import start

    _, overrides = OURS[SIZING[name]]
    overrides = {**overrides, "Listen": "127.0.0.1:0"}
    h = start(name, overrides, cpus=server_cpus or None, timeout=timeout)
    procs = overrides["StartServers"] + 1
    try:
        wait_for(lambda: len(h.pids()) >= procs, 20)
    except BaseException:
        h.stop()
        raise
    return Running(f"{name} ({SIZING[name]})", h.url, h.pids()[0], procs, h.stop,
                   {"mpm": name, "overrides": overrides})


# --------------------------------------------------------------------------
# wrk

_RPS = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)\b", re.M)
_NON2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
_SOCKERR = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def run_wrk(wrk: str, url: str, connections: int, duration: float, cpus: list[int] | None) -> dict:
    """One ``wrk -t1`` run pinned to ``cpus``; its figures and its own CPU."""
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", url]

    def preexec() -> None:
        if cpus:
            os.sched_setaffinity(0, set(cpus))

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    # run() kills wrk if anything (timeout, KeyboardInterrupt) interrupts it
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30,
                          preexec_fn=preexec, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out = proc.stdout
    m = _RPS.search(out)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {out[-500:]} {proc.stderr[-500:]}")
    t = _TOTAL.search(out)
    measured = float(t.group(2)) * _UNIT[t.group(3)] if t else wall
    non2xx = _NON2XX.search(out)
    sock = _SOCKERR.search(out)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()))) if sock else {}
    frac = cpu / measured if measured > 0 else 0.0
    return {
        "rps": float(m.group(1)),
        "requests": int(t.group(1)) if t else None,
        "duration": measured,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors,
        "driver_cpu_seconds": cpu,
        "driver_cpu_fraction": frac,
        "driver_cpu_us_per_req": cpu / int(t.group(1)) * 1e6 if t and int(t.group(1)) else None,
        "generator_bound": frac > GENERATOR_BOUND_FRACTION,
        # wrk cannot tell how many connections got no answer: unknown, not zero
        "starved_connections": None,
        "argv": argv,
        "output": out,
    }


def run_loadgen(url: str, connections: int, duration: float, cpus: list[int] | None) -> dict:
    r = run_closed_loop(url, connections=connections, duration=duration, cpus=cpus)
    return {
        "rps": r.rps,
        "requests": r.requests,
        "duration": r.duration,
        "non_2xx": r.non_2xx,
        "errors": r.errors,
        "driver_cpu_seconds": r.driver_cpu_seconds,
        "driver_cpu_fraction": r.driver_cpu_fraction,
        "driver_cpu_us_per_req": r.driver_cpu_seconds / r.requests * 1e6 if r.requests else None,
        "generator_bound": r.generator_bound,
        "starved_connections": r.starved_connections,
        "ok": r.ok,
        "load": r.to_dict(),
    }


# --------------------------------------------------------------------------
# report


def summarize(trials: list[dict], target: str) -> dict:
    rows = [t for t in trials if t["target"] == target]
    by = {d: [t for t in rows if t["driver"] == d and "rps" in t] for d in ("wrk", "loadgen")}
    out: dict = {"target": target}
    for d, ts in by.items():
        out[d] = {
            "trials": len(ts),
            "rps": statistics.median(t["rps"] for t in ts) if ts else None,
            "rps_min": min((t["rps"] for t in ts), default=None),
            "rps_max": max((t["rps"] for t in ts), default=None),
            "driver_cpu_fraction": statistics.median(t["driver_cpu_fraction"] for t in ts) if ts else None,
            "generator_bound_trials": sum(1 for t in ts if t["generator_bound"]),
            "cpu_us_per_req": statistics.median(us) if (us := [t["driver_cpu_us_per_req"] for t in ts
                                                              if t.get("driver_cpu_us_per_req")]) else None,
        }
    w, g = out["wrk"]["rps"], out["loadgen"]["rps"]
    out["ratio_of_medians"] = g / w if w and g is not None else None
    paired = []
    for i in sorted({t["trial"] for t in rows}):
        a = [t for t in by["wrk"] if t["trial"] == i]
        b = [t for t in by["loadgen"] if t["trial"] == i]
        if a and b and a[0]["rps"]:
            paired.append(b[0]["rps"] / a[0]["rps"])
    out["paired_ratios"] = paired
    out["median_paired_ratio"] = statistics.median(paired) if paired else None
    wu, gu = out["wrk"]["cpu_us_per_req"], out["loadgen"]["cpu_us_per_req"]
    # requests per CPU-second, loadgen over wrk: the drivers' own capacities
    out["capacity_ratio"] = wu / gu if wu and gu else None
    return out


def fmt(v, f: str) -> str:
    return "-" if v is None else f.format(v)


def table(summaries: list[dict]) -> str:
    rows = []
    for s in summaries:
        for d in ("wrk", "loadgen"):
            x = s[d]
            rows.append([
                s["target"], d, fmt(x["rps"], "{:,.0f}"),
                f"{fmt(x['rps_min'], '{:,.0f}')}..{fmt(x['rps_max'], '{:,.0f}')}",
                fmt(x["driver_cpu_fraction"], "{:.2f}"),
                f"{x['generator_bound_trials']}/{x['trials']}",
                fmt(x["cpu_us_per_req"], "{:.1f}"),
                fmt(s["ratio_of_medians"], "{:.2f}") if d == "loadgen" else "",
                fmt(s["median_paired_ratio"], "{:.2f}") if d == "loadgen" else "",
                fmt(s["capacity_ratio"], "{:.2f}") if d == "loadgen" else "",
            ])
    return tabulate(rows, headers=["target", "driver", "req/s (median)", "range", "driver CPU fraction",
                                   "generator-bound", "driver CPU-us/req", "loadgen/wrk (medians)",
                                   "loadgen/wrk (paired)", "capacity loadgen/wrk"],
                    tablefmt="github")


# --------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default="event", choices=sorted(SIZING), help="our MPM to measure against")
    ap.add_argument("--no-echo", action="store_true", help="skip the trivial echo-server target")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (wrk: whole seconds)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--out", help="JSON with every trial (default runs/driver_vs_wrk-<time>.json)")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.duration < 1 or args.connections < 1:
        ap.error("--trials, --connections must be positive and --duration >= 1")
    args.duration = float(max(1, round(args.duration)))  # same duration for both (wrk takes whole seconds)

    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed, nothing measured: install it (apt-get install wrk) and run again.")
        return 0

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else ROOT / "runs" / f"driver_vs_wrk-{stamp}.json"
    server_cpus, driver_cpus, placement = pick_cpus()

    def on_term(signum, frame):  # SIGTERM unwinds through the finally blocks
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    targets = [(args.server, lambda: start_server(args.server, server_cpus))]
    if not args.no_echo:
        secs = args.trials * 2 * (args.duration + 3) + 120  # bounded: it stops by itself
        targets.append(("echo", lambda: start_echo(server_cpus, secs)))

    trials: list[dict] = []
    failures: list[str] = []
    try:
        for name, starter in targets:
            srv = None
            try:
                srv = starter()
                url = srv.url + "/"
                run_closed_loop(url, connections=args.connections, duration=1.0, cpus=driver_cpus)  # warm-up
                for i in range(args.trials):
                    for driver in ("wrk", "loadgen"):
                        rec = {"target": name, "driver": driver, "trial": i}
                        try:
                            if driver == "wrk":
                                rec.update(run_wrk(wrk, url, args.connections, args.duration, driver_cpus))
                            else:
                                rec.update(run_loadgen(url, args.connections, args.duration, driver_cpus))
                        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                            rec["error"] = f"{type(e).__name__}: {e}"
                        trials.append(rec)
                        flag = " GENERATOR-BOUND" if rec.get("generator_bound") else ""
                        txt = (f"{rec['rps']:,.0f} req/s, driver CPU {rec['driver_cpu_fraction']:.2f}{flag}"
                               if "rps" in rec else rec["error"])
                        print(f"[{i + 1}/{args.trials}] {name:8s} {driver:8s} {txt}", file=sys.stderr, flush=True)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a server that fails to start is reported, the next target still runs
                failures.append(f"{name}: {type(e).__name__}: {e}")
                print(f"{name}: failed: {e}", file=sys.stderr)
            finally:
                if srv is not None:
                    srv.stop()
    except KeyboardInterrupt:
        print("interrupted: servers stopped, partial results follow", file=sys.stderr)
    finally:
        summaries = [summarize(trials, name) for name, _ in targets]
        doc = {**run_header("driver_vs_wrk", stamp, args, server_cpus, driver_cpus, placement,
                            "interleaved wrk loadgen per round, same server"),
               "summaries": summaries, "failures": failures, "trials": trials}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))

    print(f"\nGET / keep-alive, {args.connections} connections, {args.duration:g} s x {args.trials} trials "
          f"per driver, server on CPU {sorted(server_cpus)}, driver on CPU {driver_cpus} ({placement})\n")
    print(table(summaries))
    main_sum = summaries[0]
    ratio = main_sum["median_paired_ratio"]
    if ratio is not None:
        verdict = "meets" if ratio >= ACCEPT_RATIO else "DOES NOT meet"
        print(f"\n{args.server}: loadgen/wrk = {ratio:.2f} (median of paired trials): "
              f"{verdict} the >= {ACCEPT_RATIO} acceptance")
    for f in failures:
        print(f"failed: {f}")
    print(f"\nall trials: {out}")
    return 0 if ratio is not None and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
