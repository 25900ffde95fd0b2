#!/usr/bin/env python3
"""How fast is the built-in driver here?  (Is it ever the bottleneck?)

    python benchmarks/loadgen_selftest.py [--targets echo,gunicorn-sync,gunicorn-gthread]
                                          [--duration 5] [--connections 50] [--trials 3]
                                          [--open-rate 2000]

Runs harness.drivers.loadgen against servers pinned to one CPU while the
driver is pinned to another (when there are two), and prints, per target,
the median requests/s, the driver's CPU fraction and the driver's CPU
microseconds per request.  The last figure is the robust one: 1e6 divided
by it is the most the driver can generate on one core against that kind of
server, whatever the noise of a shared machine does to the requests/s.

With ``--open-rate R`` each target also gets one open-loop run at R
requests/s, and a second table shows what the open loop adds: the rate it
achieved, its latency (from the intended send times), how late the driver
itself sent its on-time requests (``dispatch_lag_us``: epoll's millisecond
timer and the driver's CPU), late sends and unsent requests.

Targets:
  echo              benchmarks/_echo_server.py: a minimal keep-alive epoll
                    server that is much cheaper than the driver (so the
                    driver is what is measured)
  gunicorn-sync     gunicorn -w 2 -k sync: closes after every response, so
                    every request costs the driver a new connection
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
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from tabulate import tabulate  # noqa: E402

from harness.drivers.loadgen import run_closed_loop, run_open_loop  # noqa: E402
from side_by_side import Running, pick_cpus, start_gunicorn, stop_group, wait_for  # noqa: E402


def start_echo(server_cpus: set[int], seconds: float) -> Running:
    d = tempfile.mkdtemp(prefix="bench-echo-")
    portfile = os.path.join(d, "port")
    argv = [sys.executable, str(HERE / "_echo_server.py"), portfile, "--seconds", str(seconds)]
    if server_cpus:
        argv += ["--cpu", str(min(server_cpus))]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_for(lambda: os.path.exists(portfile) or proc.poll() is not None, 10) or proc.poll() is not None:
            raise RuntimeError("echo server did not start")
        port = int(Path(portfile).read_text())
    except BaseException:
        stop_group(proc, [proc.pid])
        raise
    return Running("echo", f"http://127.0.0.1:{port}", proc.pid, 1, lambda: stop_group(proc, [proc.pid]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="echo,gunicorn-sync,gunicorn-gthread")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--open-rate", type=float, default=0.0,
                    help="also one open-loop run per target at this many requests/s (0: none)")
    args = ap.parse_args(argv)
    server_cpus, driver_cpus, placement = pick_cpus()
    starters = {
        "echo": lambda: start_echo(server_cpus, args.trials * (args.duration + 2) + 60),
        "gunicorn-sync": lambda: start_gunicorn(server_cpus),
        "gunicorn-gthread": lambda: start_gunicorn(server_cpus, worker_class="gthread", extra=["--threads", "8"]),
    }
    rows = []
    open_rows = []
    for name in args.targets.split(","):
        srv = None
        runs = []
        try:
            srv = starters[name]()
            run_closed_loop(srv.url + "/", connections=args.connections, duration=1.0, cpus=driver_cpus)
            for _ in range(args.trials):
                runs.append(run_closed_loop(srv.url + "/", connections=args.connections,
                                            duration=args.duration, cpus=driver_cpus))
            if args.open_rate > 0:
                o = run_open_loop(srv.url + "/", rate=args.open_rate, connections=args.connections,
                                  duration=args.duration, cpus=driver_cpus)
                lag = o.extra["dispatch_lag_us"]
                open_rows.append([
                    name, f"{args.open_rate:,.0f}", f"{o.rps:,.0f}", f"{o.percentile(50) / 1e3:.2f}",
                    f"{o.percentile(99) / 1e3:.2f}", f"{lag['p50'] / 1e3:.2f}", f"{lag['p99'] / 1e3:.2f}",
                    o.late_sends, o.errors.get("unsent", 0),
                    f"{o.driver_cpu_seconds / o.requests * 1e6:.1f}" if o.requests else "-",
                ])
        except Exception as e:
            rows.append([name, f"failed: {e}", "", "", "", ""])
            continue
        finally:
            if srv is not None:
                srv.stop()
        rows.append([
            name,
            f"{statistics.median(r.rps for r in runs):,.0f}",
            f"{min(r.rps for r in runs):,.0f}..{max(r.rps for r in runs):,.0f}",
            f"{statistics.median(r.driver_cpu_fraction for r in runs):.2f}",
            f"{statistics.median(r.driver_cpu_seconds / r.requests * 1e6 for r in runs if r.requests):.1f}",
            "yes" if all(r.ok for r in runs) else "NO",
        ])
    print(f"\n{args.connections} connections, {args.duration:g} s x {args.trials}, server CPU "
          f"{sorted(server_cpus)}, driver CPU {driver_cpus} ({placement})\n")
    print(tabulate(rows, headers=["target", "req/s (median)", "range", "driver CPU fraction",
                                  "driver CPU-us/req", "ok"], tablefmt="github"))
    if open_rows:
        print(f"\nopen loop, {args.duration:g} s, one run per target\n")
        print(tabulate(open_rows, headers=["target", "rate", "req/s", "p50 ms", "p99 ms", "dispatch lag p50 ms",
                                           "dispatch lag p99 ms", "late sends", "unsent", "driver CPU-us/req"],
                       tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
