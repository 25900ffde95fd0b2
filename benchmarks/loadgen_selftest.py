#!/usr/bin/env python3
"""How fast is the built-in driver here?  (Is it ever the bottleneck?)

    python benchmarks/loadgen_selftest.py [--targets echo,gunicorn-sync,gunicorn-gthread]
                                          [--duration 5] [--connections 50] [--trials 3]
                                          [--open-rate 2000] [--wrk]

Runs harness.drivers.loadgen against servers pinned to the harness's server
CPUs while the driver is pinned to its driver CPUs (harness.runner.choose_pinning:
apart when there are two or more), and prints, per target, the median
requests/s, the driver's CPU fraction and the driver's CPU microseconds per
request.  The last figure is the robust one: 1e6 divided by it is the most the
driver can generate on one core against that kind of server, whatever the noise
of a shared machine does to the requests/s.

With ``--wrk`` every trial runs wrk first (the harness's wrk driver, ``-t1``,
the same connections, duration and CPUs), then the built-in closed loop, on
the same running server: interleaved wrk, loadgen, wrk, loadgen ...  Against
the echo server, where the driver and not the server is the limit, this is
the honest test of "the built-in driver is not the bottleneck"; the
``driver-vs-wrk`` matrix (``harness run --matrix driver-vs-wrk``) does the
same against our MPMs.  wrk must be on PATH (``apt-get install wrk``).

With ``--open-rate R`` each target also gets one open-loop run at R
requests/s, and a second table shows what the open loop adds: the rate it
achieved, its latency (from the intended send times), how late the driver
itself sent its on-time requests (``dispatch_lag_us``: epoll's millisecond
timer and the driver's CPU), late sends and unsent requests.

Targets (each started fresh, stopped by PID):
  echo              benchmarks/_echo_server.py: a minimal keep-alive epoll
                    server that is much cheaper than the driver (so the
                    driver is what is measured)
  gunicorn-sync     gunicorn -w 2 -k sync (servers.launcher): closes after
                    every response, so every request costs the driver a new
                    connection
  gunicorn-gthread  gunicorn -w 2 -k gthread --threads 8: keep-alive
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tabulate import tabulate  # noqa: E402

from harness.drivers.base import DriverResult  # noqa: E402
from harness.drivers.loadgen import run_closed_loop, run_open_loop  # noqa: E402
from harness.drivers.wrk import run_wrk, wrk_available  # noqa: E402
from harness.runner import choose_pinning  # noqa: E402
from servers.launcher import Handle, MPMHandle, finish_start, spawn, start  # noqa: E402

#: the gunicorn targets, sized as the side-by-side matrix sizes them (launcher directives)
GUNICORN = {"gunicorn-sync": {"StartServers": 2}, "gunicorn-gthread": {"StartServers": 2, "ThreadsPerChild": 8}}


def start_echo(cpus: list[int] | None, seconds: float) -> Handle:
    """The echo server, pinned to ``cpus``, bounded to ``seconds``; it announces itself as our MPMs do."""
    run_dir = tempfile.mkdtemp(prefix="bench-echo-")
    argv = [sys.executable, str(HERE / "_echo_server.py"), "--seconds", str(seconds)]
    proc = spawn(argv, log_path=os.path.join(run_dir, "error.log"), cpus=cpus, stdout=subprocess.PIPE)
    handle = MPMHandle(name="echo", proc=proc, run_dir=run_dir, log_path=os.path.join(run_dir, "error.log"),
                       pidfile="")
    return finish_start(handle, True, 10.0)


def start_target(name: str, cpus: list[int] | None, seconds: float) -> Handle:
    """Target ``name`` started fresh on the server CPUs."""
    if name == "echo":
        return start_echo(cpus, seconds)
    return start(name, GUNICORN[name], cpus=cpus)


def per_request_us(r: DriverResult) -> float | None:
    """The driver's own CPU per response, microseconds."""
    return r.driver_cpu_seconds / r.requests * 1e6 if r.requests else None


def summary_row(name: str, driver: str, runs: list[DriverResult]) -> list:
    """Medians over the trials of one target and driver."""
    us = [x for x in map(per_request_us, runs) if x is not None]
    return [name, driver, f"{statistics.median(r.rps for r in runs):,.0f}",
            f"{min(r.rps for r in runs):,.0f}..{max(r.rps for r in runs):,.0f}",
            f"{statistics.median(r.driver_cpu_fraction for r in runs):.2f}",
            f"{statistics.median(us):.1f}" if us else "-",
            # wrk cannot tell starved connections: its runs are judged on errors and statuses only
            "yes" if all(r.ok for r in runs) else "NO"]


def open_row(name: str, rate: float, o: DriverResult) -> list:
    """The open-loop run of one target."""
    lag = o.extra["dispatch_lag_us"]
    us = per_request_us(o)
    return [name, f"{rate:,.0f}", f"{o.rps:,.0f}", f"{o.percentile(50) / 1e3:.2f}", f"{o.percentile(99) / 1e3:.2f}",
            f"{lag['p50'] / 1e3:.2f}", f"{lag['p99'] / 1e3:.2f}", o.late_sends, o.errors.get("unsent", 0),
            f"{us:.1f}" if us is not None else "-"]


def measure(name: str, args, pins: dict) -> tuple[list[list], list | None]:
    """Every trial against one target: its summary rows (wrk first when asked) and its open-loop row."""
    driver_cpus = pins["driver_cpus"] or None
    bound = args.trials * (2 if args.wrk else 1) * (args.duration + 3) + args.duration + 60
    runs: dict[str, list[DriverResult]] = {"wrk": [], "loadgen": []} if args.wrk else {"loadgen": []}
    opened = None
    with start_target(name, pins["server_cpus"] or None, bound) as h:
        url = h.url + "/"
        run_closed_loop(url, connections=args.connections, duration=1.0, cpus=driver_cpus)  # warm-up
        for _ in range(args.trials):
            if args.wrk:
                runs["wrk"].append(run_wrk(url, connections=args.connections, duration=args.duration,
                                           cpus=driver_cpus))
            runs["loadgen"].append(run_closed_loop(url, connections=args.connections, duration=args.duration,
                                                   cpus=driver_cpus))
        if args.open_rate > 0:
            opened = open_row(name, args.open_rate, run_open_loop(
                url, rate=args.open_rate, connections=args.connections, duration=args.duration, cpus=driver_cpus))
    return [summary_row(name, d, rs) for d, rs in runs.items()], opened


def main(argv: list[str] | None = None) -> int:
    """Measure every target and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="echo,gunicorn-sync,gunicorn-gthread")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--open-rate", type=float, default=0.0,
                    help="also one open-loop run per target at this many requests/s (0: none)")
    ap.add_argument("--wrk", action="store_true", help="also run wrk -t1 in every trial, just before loadgen")
    args = ap.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t != "echo" and t not in GUNICORN]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from echo, {', '.join(GUNICORN)}")
    why = wrk_available() if args.wrk else None
    if why:
        ap.error(why)
    if args.wrk:
        args.duration = float(max(1, round(args.duration)))  # the same for both: wrk takes whole seconds
    pins = choose_pinning("auto")
    rows, open_rows = [], []
    for name in targets:
        try:
            summary, opened = measure(name, args, pins)
        except Exception as e:  # a target that fails is a row, the next one still runs
            rows.append([name, "", f"failed: {e}", "", "", "", ""])
            continue
        rows += summary
        if opened:
            open_rows.append(opened)
    print(f"\n{args.connections} connections, {args.duration:g} s x {args.trials}, server CPU "
          f"{pins['server_cpus'] or 'any'}, driver CPU {pins['driver_cpus'] or 'any (not pinned)'}\n")
    print(tabulate(rows, headers=["target", "driver", "req/s (median)", "range", "driver CPU fraction",
                                  "driver CPU-us/req", "ok"], tablefmt="github"))
    if open_rows:
        print(f"\nopen loop, {args.duration:g} s, one run per target\n")
        print(tabulate(open_rows, headers=["target", "rate", "req/s", "p50 ms", "p99 ms", "dispatch lag p50 ms",
                                           "dispatch lag p99 ms", "late sends", "unsent", "driver CPU-us/req"],
                       tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
