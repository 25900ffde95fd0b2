#!/usr/bin/env python3
"""Reliability figures per MPM: fuzz inputs survived, failures during graceful restarts and stops
under load, recovery time after a child is killed.

    python benchmarks/reliability.py [--mpm prefork --mpm worker ...] [--fuzz 20000] [--restarts 10]
                                     [--kills 5] [--rate 300] [--json FILE]

For each MPM (httpd's defaults, apart from the pool sizes below), three measurements:

* **fuzz**: ``--fuzz`` malformed inputs (suites/fuzz.py: mutated requests, framing
  conflicts, over-limit heads and bodies, garbage, cut-offs and resets), each on its own
  connection, from four client threads. Reported: inputs tried; answers that were not what
  the sans-IO reader says the server owes that byte stream; crashes (a child that died or was
  replaced, a signal death or escaped exception in the error log); whether every child came
  back to its fd and thread counts.
* **graceful restarts under load**: the built-in open-loop driver sends ``--rate`` requests/s
  over 16 keep-alive connections while the parent gets ``--restarts`` USR1s, 2 s apart, each
  once the previous generation is gone. Reported: requests answered, failed
  requests by kind, unannounced closes (``closed_idle``), and how long each restart took
  (USR1 to the last old child's exit). Then one WINCH graceful stop under the same load:
  failures other than refused connects (after the listeners closed) and requests that could
  not be sent.
* **recovery after SIGKILL**: under the same load, ``--kills`` times, 2.5 s apart (the parent,
  like httpd, replaces at once only the first two signal deaths within a maintenance tick and
  then leaves it to spare-server maintenance): SIGKILL one child, time
  until the parent has forked its replacement (``fork``) and until that replacement is in the
  scoreboard taking work (``ready``); failed requests per kill, next to the connections the
  victim held when it was killed (the most that may fail: its in-flight requests).

The server is pinned to one CPU and this script (client and driver) to another when there are
two. Everything is on loopback, bounded in count and time, and every server is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.drivers.loadgen import run_open_loop  # noqa: E402
from harness.results import environment  # noqa: E402
from harness.runner import choose_pinning  # noqa: E402
from harness.sampler.procfs import settled_fds_and_threads, wait_fds_and_threads_back  # noqa: E402
from servers.launcher import start  # noqa: E402
from servers.mpm import MPM_NAMES  # noqa: E402
from suites.fuzz import FUZZ_LIMITS, FUZZ_ORACLE_LIMITS, FUZZ_POOLS, run_fuzz  # noqa: E402
from suites.probes import GET, children, crash_lines, status_or_none  # noqa: E402
from suites.wire import request, wait_until  # noqa: E402

MPMS = MPM_NAMES
#: pools for the load measurements (otherwise httpd's defaults: Timeout 60, KeepAliveTimeout 5)
LOAD_POOLS = {
    # StartServers covers the load's 16 connections: after a graceful restart the parent, as
    # httpd, starts StartServers children and grows the pool slowly (hold-off of 10 ticks)
    "prefork": {"StartServers": 20, "MinSpareServers": 4, "MaxSpareServers": 24},
    "worker": {"StartServers": 2, "ThreadsPerChild": 16, "MinSpareThreads": 8, "MaxSpareThreads": 64},
    "event": {"StartServers": 2, "ThreadsPerChild": 16, "MinSpareThreads": 8, "MaxSpareThreads": 64},
}
CONNECTIONS = 16
#: seconds between two kills: more than two maintenance ticks (MaintenanceInterval 1 s)
KILL_SPACING = 2.5
#: seconds from one graceful restart to the next
RESTART_SPACING = 2.0


def pick_cpus() -> tuple[dict, str]:
    """The harness's split of the CPUs; this process (client and driver) moves to the driver's half."""
    pins = choose_pinning("auto")
    if not pins["server_cpus"]:
        return pins, "one CPU: server and client share it"
    os.sched_setaffinity(0, pins["driver_cpus"])
    return pins, f"server on CPU {pins['server_cpus']}, client and driver on CPU {pins['driver_cpus']}"


class Load(threading.Thread):
    """run_open_loop in a thread, for a fixed duration (the run is bounded by it)."""

    def __init__(self, url: str, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.rate, self.seconds = url, rate, seconds
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = run_open_loop(self.url + "/", rate=self.rate, connections=CONNECTIONS,
                                        duration=self.seconds, timeout=10.0)
        except BaseException as exc:
            self.error = exc


def accesses(h) -> int:
    st = status_or_none(h)
    return st.total_accesses if st else 0


def wait_traffic(h, n: int = 100) -> None:
    base = accesses(h)
    wait_until(lambda: accesses(h) >= base + n, 20, what="the load to reach the server")


def load_summary(r) -> dict:
    return {"requests": r.requests, "sent": r.requests_sent, "errors": dict(r.errors),
            "closed_idle": r.closed_idle, "statuses": {str(k): v for k, v in r.status_counts.items()}}


# -- fuzz -----------------------------------------------------------------------------------------


def measure_fuzz(mpm: str, count: int, seed: int, cpus) -> dict:
    with start(mpm, {**FUZZ_POOLS[mpm], **FUZZ_LIMITS, "KeepAliveTimeout": 1, "Timeout": 5},
               app="suites.fuzz:digest_app", cpus=cpus) as h:
        n = FUZZ_POOLS[mpm]["StartServers"]
        wait_until(lambda: len(children(h)) == n, 15, what=f"{n} children")
        for _ in range(10):
            request(h.port, GET)
        before = sorted(children(h))
        baseline = settled_fds_and_threads(before)
        t0 = time.monotonic()
        tried, problems = run_fuzz(h.port, seed, count, FUZZ_ORACLE_LIMITS, seconds=max(120.0, count / 50))
        seconds = time.monotonic() - t0
        alive = request(h.port, GET).status == 200
        crashed = sorted(children(h)) != before or bool(crash_lines(h))
        try:
            wait_fds_and_threads_back(baseline, timeout=20)
            leak = None
        except AssertionError as exc:
            leak = str(exc)
    return {"inputs": tried, "seconds": round(seconds, 1), "wrong_answers": len(problems),
            "wrong_examples": problems[:3], "crashes": int(crashed), "answers_GET_after": alive, "leak": leak}


# -- graceful restarts and stop under load --------------------------------------------------------


def measure_restarts(mpm: str, count: int, rate: float, cpus) -> dict:
    with start(mpm, LOAD_POOLS[mpm], cpus=cpus) as h:
        load = Load(h.url, rate, 6.0 + (RESTART_SPACING + 1.0) * count)  # outlasts every restart
        load.start()
        took = []
        try:
            wait_traffic(h)
            for _ in range(count):
                old = set(children(h))
                t0 = time.monotonic()
                h.graceful()
                wait_until(lambda: not (set(children(h)) & old), 60, interval=0.01,
                           what="the old generation to exit")
                took.append(time.monotonic() - t0)
                if not load.is_alive():
                    raise RuntimeError(f"the load ended before the restarts did ({load.error!r})")
                # the new generation serves the load for a while before the next restart
                wait_until(lambda: time.monotonic() - t0 >= RESTART_SPACING, RESTART_SPACING + 1, interval=0.05,
                           what="the next restart")
        finally:
            load.join((RESTART_SPACING + 1.0) * count + 60)
        if load.error:
            raise load.error
        out = load_summary(load.result)
        out["restarts"] = count
        out["failed"] = sum(load.result.errors.values()) + load.result.closed_idle
        out["restart_seconds"] = {"median": round(statistics.median(took), 2), "max": round(max(took), 2)}
    return out


def measure_graceful_stop(mpm: str, rate: float, cpus) -> dict:
    h = start(mpm, LOAD_POOLS[mpm], cpus=cpus)
    try:
        load = Load(h.url, rate, 5.0)
        load.start()
        wait_traffic(h)
        h.graceful_stop()
        code = h.wait(60)
        load.join(30)
    finally:
        h.stop()
    r = load.result
    lost = {k: v for k, v in r.errors.items() if k not in ("connect", "unsent")}
    return {"exit_status": code, "answered": r.requests, "refused_after_stop": r.errors.get("connect", 0),
            "failed": sum(lost.values()) + r.closed_idle, "failures": lost}


# -- recovery after SIGKILL -------------------------------------------------------------------


def measure_kills(mpm: str, count: int, rate: float, cpus) -> dict:
    with start(mpm, LOAD_POOLS[mpm], cpus=cpus) as h:
        n = LOAD_POOLS[mpm]["StartServers"]
        wait_until(lambda: len(children(h)) >= n, 15, what=f"{n} children")
        load = Load(h.url, rate, 4.0 + (KILL_SPACING + 2.0) * count)
        load.start()
        forks, readies, held = [], [], []
        try:
            wait_traffic(h)
            last = 0.0
            for _ in range(count):
                # A quiet maintenance tick between kills: like httpd, the parent replaces at once
                # only the first two signal deaths within one MaintenanceInterval (then logs
                # "children are killed successively!" and leaves it to spare-server maintenance).
                wait_until(lambda: time.monotonic() - last >= KILL_SPACING, KILL_SPACING + 1, interval=0.05,
                           what="the next kill")
                st = h.status()
                kids = children(h)
                victim = kids[0]
                proc = next((p for p in st.processes_detail if p["pid"] == victim), None)
                held.append(proc["connections"] if proc else None)
                before = set(kids)
                t0 = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                last = t0
                new = wait_until(lambda: set(children(h)) - before, 10, interval=0.002, what="a replacement child")
                forks.append(time.monotonic() - t0)
                pid = next(iter(new))
                wait_until(lambda: (lambda s: s is not None and any(p["pid"] == pid for p in s.processes_detail))(
                    status_or_none(h)), 10, interval=0.005, what="the replacement in the scoreboard")
                readies.append(time.monotonic() - t0)
                if not load.is_alive():
                    raise RuntimeError(f"the load ended before the kills did ({load.error!r})")
                wait_traffic(h, 50)
                if f"child pid {victim} exit signal SIGKILL" not in h.log_text():
                    raise RuntimeError("the kill was not logged")
        finally:
            load.join((KILL_SPACING + 2.0) * count + 60)
        if load.error:
            raise load.error
        out = load_summary(load.result)
    out["kills"] = count
    out["fork_ms"] = {"median": round(statistics.median(forks) * 1000, 1), "max": round(max(forks) * 1000, 1)}
    out["ready_ms"] = {"median": round(statistics.median(readies) * 1000, 1), "max": round(max(readies) * 1000, 1)}
    out["victim_connections"] = held
    out["failed"] = sum(load.result.errors.values()) + load.result.closed_idle
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpm", action="append", choices=MPMS, help="repeatable; default all three")
    ap.add_argument("--fuzz", type=int, default=20000, help="fuzz inputs per MPM (0: skip)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--restarts", type=int, default=10, help="graceful restarts under load per MPM (0: skip)")
    ap.add_argument("--kills", type=int, default=5, help="child SIGKILLs under load per MPM (0: skip)")
    ap.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s during restarts and kills")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON too")
    args = ap.parse_args(argv)
    pins, placement = pick_cpus()
    cpus = pins["server_cpus"] or None
    mpms = args.mpm or list(MPMS)
    env = environment(pins)
    results: dict = {"commit": (env["git_commit"] or "")[:12] or None, "placement": placement, "environment": env,
                     "rate": args.rate, "mpms": {}}
    for mpm in mpms:
        res: dict = {}
        if args.fuzz:
            res["fuzz"] = measure_fuzz(mpm, args.fuzz, args.seed, cpus)
            print(f"{mpm} fuzz: {res['fuzz']}", file=sys.stderr, flush=True)
        if args.restarts:
            res["restarts"] = measure_restarts(mpm, args.restarts, args.rate, cpus)
            print(f"{mpm} restarts: {res['restarts']}", file=sys.stderr, flush=True)
            res["graceful_stop"] = measure_graceful_stop(mpm, args.rate, cpus)
            print(f"{mpm} graceful stop: {res['graceful_stop']}", file=sys.stderr, flush=True)
        if args.kills:
            res["kills"] = measure_kills(mpm, args.kills, args.rate, cpus)
            print(f"{mpm} kills: {res['kills']}", file=sys.stderr, flush=True)
        results["mpms"][mpm] = res
    print(f"\nreliability, commit {results['commit']}, {placement}, load {args.rate:g} req/s over {CONNECTIONS} "
          "keep-alive connections\n")
    print("| MPM | fuzz inputs | wrong answers | crashes | fd/thread leak | restarts | requests | failed during restarts "
          "| restart s (median/max) | graceful stop: failed | SIGKILL -> fork ms | -> ready ms | failed per kill |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for mpm, res in results["mpms"].items():
        f, r, g, k = (res.get(x, {}) for x in ("fuzz", "restarts", "graceful_stop", "kills"))
        cells = [mpm,
                 f.get("inputs", "-"), f.get("wrong_answers", "-"), f.get("crashes", "-"),
                 ("no" if f and not f.get("leak") else ("yes" if f else "-")),
                 r.get("restarts", "-"), r.get("requests", "-"), r.get("failed", "-"),
                 f"{r['restart_seconds']['median']} / {r['restart_seconds']['max']}" if r else "-",
                 g.get("failed", "-"),
                 f"{k['fork_ms']['median']} / {k['fork_ms']['max']}" if k else "-",
                 f"{k['ready_ms']['median']} / {k['ready_ms']['max']}" if k else "-",
                 f"{k['failed'] / k['kills']:.1f} (victim held {k['victim_connections']})" if k else "-"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    bad = any(res.get("fuzz", {}).get("crashes") or res.get("fuzz", {}).get("wrong_answers")
              or res.get("fuzz", {}).get("leak") for res in results["mpms"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
