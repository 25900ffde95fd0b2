#!/usr/bin/env python3
"""Our MPMs against gunicorn, side by side in one run.

    python benchmarks/side_by_side.py [--servers prefork50,gunicorn-sync-w2] [--trials 5] [--duration 5]
                                      [--connections 50] [--out runs/....json]

Servers (--servers, comma-separated, the LAST one is the baseline of the ratio columns):

    prefork50             prefork sized for the load: 50 children (StartServers = MaxRequestWorkers = 50)
    worker2x25            worker, 2 children x 25 threads (each keep-alive connection holds a thread)
    event2x8              event, 2 children x 8 threads (keep-alive connections wait in the listener)
    gunicorn-sync-w2      gunicorn -k sync -w 2 (closes every connection)
    gunicorn-gthread-w2t8 gunicorn -k gthread -w 2 --threads 8

Method (see "Measuring honestly" in the design notes):

* Trials are interleaved A B A B ... (prefork first, then gunicorn, per
  round), each server freshly started for its trial, and each figure is the
  median over the valid trials of a server: never an absolute number
  compared with another run.
* The server tree is pinned to one CPU and the load driver
  (harness.drivers.loadgen, closed loop, keep-alive, GET /) to another when
  there are two or more; the JSON records which.
* Per trial: 1 s warm-up (discarded), then the measured run.  Recorded:
  requests/s, p50/p99 latency (closed loop: understates the tail), server
  CPU seconds over the measured run (sum over the process tree of
  user+system, including reaped children, sampled before the run and right
  after it, before the server is stopped) and so server CPU-us per request,
  the tree's summed PSS after the run, and the driver's own CPU fraction.
* A trial in which any connection got no answer, any request failed or any
  status was not 2xx is INVALID; one whose driver used > 90% of its CPU is
  GENERATOR-BOUND.  Neither counts towards the medians: they are not the
  server's capacity.

gunicorn is started here directly (in its own session, pinned through a
preexec affinity call, stopped by process group); our prefork through
servers.launcher.  Every process started is stopped in a finally.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from tabulate import tabulate  # noqa: E402

from harness.drivers.loadgen import run_closed_loop  # noqa: E402

WSGI_APP = "servers.apps:app"
PREFORK = "prefork50"
GUNICORN = "gunicorn-sync-w2"
#: our MPMs as the issues size them for 50 connections
OURS = {
    "prefork50": ("prefork", {"StartServers": 50, "MinSpareServers": 50, "MaxSpareServers": 60,
                              "MaxRequestWorkers": 50, "ServerLimit": 50}),
    "worker2x25": ("worker", {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 25, "MaxRequestWorkers": 50,
                              "MinSpareThreads": 25, "MaxSpareThreads": 75}),
    "event2x8": ("event", {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 8, "MaxRequestWorkers": 16,
                           "MinSpareThreads": 8, "MaxSpareThreads": 32}),
}
GUNICORNS = {
    "gunicorn-sync-w2": ("sync", []),
    "gunicorn-gthread-w2t8": ("gthread", ["--threads", "8"]),
}


# --------------------------------------------------------------------------
# process trees


def tree(root_pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(root_pid)
        return [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(root_pid: int) -> float:
    """user+system of every live process in the tree, plus what each has reaped.

    A child that exited and was reaped by its parent shows up in the
    parent's children_user/children_system, so worker turnover during the
    run is not lost; a child still alive is counted once, by itself.
    """
    total = 0.0
    for p in tree(root_pid):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def tree_pss_bytes(root_pid: int) -> tuple[int, int]:
    """(summed PSS, number of processes) of the tree."""
    total = n = 0
    for p in tree(root_pid):
        try:
            total += p.memory_full_info().pss
            n += 1
        except psutil.NoSuchProcess:
            continue
    return total, n


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# --------------------------------------------------------------------------
# servers


@dataclass
class Running:
    name: str
    url: str
    root_pid: int
    expected_procs: int
    stop: Callable[[], None]
    info: dict = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ready(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Poll until a connect succeeds and GET / answers (any status), or the deadline."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(host, port, timeout=1.0)
            try:
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                return True, f"GET / -> {r.status}"
            finally:
                c.close()
        except OSError as e:
            last = repr(e)
        except http.client.HTTPException as e:
            last = repr(e)
        time.sleep(0.05)
    return False, last


def stop_group(proc: subprocess.Popen, pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM the process group we created, SIGKILL it (and stragglers) after ``grace``."""
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    if proc.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in pids:
        if pid == proc.pid:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def start_gunicorn(server_cpus: set[int], workers: int = 2, timeout: float = 30.0,
                   worker_class: str = "sync", extra: list[str] | None = None) -> Running:
    """gunicorn in its own session, pinned to ``server_cpus``; stopped by process group."""
    port = free_port()
    log_dir = tempfile.mkdtemp(prefix="bench-gunicorn-")
    log_path = os.path.join(log_dir, "error.log")
    argv = [
        sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", worker_class,
        "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", *(extra or []), WSGI_APP,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")

    def preexec() -> None:
        if server_cpus:
            os.sched_setaffinity(0, server_cpus)

    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, preexec_fn=preexec,
        )
    known: list[int] = [proc.pid]

    def stop() -> None:
        known.extend(p.pid for p in tree(proc.pid))
        stop_group(proc, known)

    try:
        ok, how = http_ready("127.0.0.1", port, timeout)
        if not ok or proc.poll() is not None:
            raise RuntimeError(f"gunicorn not ready ({how}); exit={proc.poll()}\n{tail(log_path)}")
        wait_for(lambda: len(tree(proc.pid)) >= workers + 1, 10)
        known.extend(p.pid for p in tree(proc.pid))
    except BaseException:
        stop()
        raise
    return Running(
        f"gunicorn-{worker_class}-w{workers}", f"http://127.0.0.1:{port}", proc.pid, workers + 1, stop,
        {"argv": argv[1:], "log": log_path, "ready": how},
    )


def start_ours(name: str, server_cpus: set[int], timeout: float = 60.0) -> Running:
    """One of our MPMs (see OURS) through servers.launcher."""
    from servers.launcher import start

    mpm, overrides = OURS[name]
    overrides = {**overrides, "Listen": "127.0.0.1:0"}
    h = start(mpm, overrides, cpus=server_cpus or None)
    procs = overrides["StartServers"] + 1
    try:
        h.wait_ready(timeout)
        wait_for(lambda: len(h.pids()) >= procs, 20)
    except BaseException:
        h.stop()
        raise
    return Running(name, h.url, h.pids()[0], procs, h.stop, {"mpm": mpm, "overrides": overrides})


def tail(path: str, n: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------
# one trial


def run_trial(srv: Running, args, driver_cpus: list[int] | None) -> dict:
    url = srv.url + "/"
    warm = run_closed_loop(url, connections=args.connections, duration=args.warmup,
                           timeout=args.timeout, cpus=driver_cpus)
    procs_before = len(tree(srv.root_pid))
    cpu0 = tree_cpu_seconds(srv.root_pid)
    res = run_closed_loop(url, connections=args.connections, duration=args.duration,
                          timeout=args.timeout, cpus=driver_cpus)
    cpu1 = tree_cpu_seconds(srv.root_pid)  # right after the run, before any stop
    pss, nprocs = tree_pss_bytes(srv.root_pid)
    server_cpu = cpu1 - cpu0
    flags = []
    if not res.ok:
        flags.append("INVALID")
    if res.generator_bound:
        flags.append("GENERATOR-BOUND")
    return {
        "valid": not flags,
        "flags": flags,
        "rps": res.rps,
        "p50_us": res.percentile(50),
        "p99_us": res.percentile(99),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_req": server_cpu / res.requests * 1e6 if res.requests else None,
        "pss_bytes": pss,
        "server_procs": nprocs,
        "server_procs_before": procs_before,
        "driver_cpu_fraction": res.driver_cpu_fraction,
        "load": res.to_dict(),
        "warmup": {"requests": warm.requests, "rps": warm.rps, "ok": warm.ok,
                   "errors": warm.errors, "starved": warm.starved_connections},
    }


# --------------------------------------------------------------------------
# report


METRICS = [
    ("requests/s", "rps", 1, "{:,.0f}"),
    ("p50 latency ms", "p50_us", 1e-3, "{:.2f}"),
    ("p99 latency ms", "p99_us", 1e-3, "{:.2f}"),
    ("server CPU-us/req", "server_cpu_us_per_req", 1, "{:.0f}"),
    ("PSS MiB", "pss_bytes", 1 / 2**20, "{:.1f}"),
    ("driver CPU fraction", "driver_cpu_fraction", 1, "{:.2f}"),
]


def medians(trials: list[dict], name: str) -> dict:
    valid = [t for t in trials if t["server"] == name and t.get("valid")]
    out = {"valid_trials": len(valid), "trials": sum(1 for t in trials if t["server"] == name)}
    for _, key, _, _ in METRICS:
        vals = [t[key] for t in valid if t.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None
    return out


def cell(med: dict, v, scale: float, fmt: str) -> str:
    if not med["trials"]:
        return "not run"
    return fmt.format(v * scale) if v is not None else "INVALID"


def table(meds: dict, order: list[str]) -> str:
    """Medians per server, and each server's ratio to the last (the baseline)."""
    base = order[-1]
    b = meds[base]
    rows = []
    for label, key, scale, fmt in METRICS:
        row = [label]
        for name in order:
            row.append(cell(meds[name], meds[name].get(key), scale, fmt))
        vb = b.get(key)
        for name in order[:-1]:
            va = meds[name].get(key)
            row.append(f"{va / vb:.2f}" if va is not None and vb else "-")
        rows.append(row)
    rows.append(["valid trials", *[f"{meds[n]['valid_trials']}/{meds[n]['trials']}" for n in order],
                 *["" for _ in order[:-1]]])
    headers = ["median", *order, *[f"{n}/{base}" for n in order[:-1]]]
    return tabulate(rows, headers=headers, tablefmt="github")


# --------------------------------------------------------------------------
# main


def pick_cpus() -> tuple[set[int], list[int] | None, str]:
    avail = sorted(os.sched_getaffinity(0))
    if len(avail) >= 2:
        return {avail[0]}, [avail[1]], "separate"
    return set(avail), None, "shared (one CPU only: server and driver compete)"


def run_header(benchmark: str, stamp: str, args, server_cpus, driver_cpus, placement, order: str) -> dict:
    """The head of a benchmark's JSON document: what ran, where, with which arguments and in which order."""
    return {"benchmark": benchmark, "started": stamp, "commit": git_commit(), "python": sys.version.split()[0],
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "server_cpus": sorted(server_cpus),
            "driver_cpus": driver_cpus, "placement": placement, "args": vars(args), "order": order}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=5, help="trials per server (>= 5 for a published median)")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per trial")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per trial (discarded)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--servers", default=f"{PREFORK},{GUNICORN}",
                    help="comma-separated names (see the module docstring); the last is the ratio baseline")
    ap.add_argument("--timeout", type=float, default=5.0, help="per-request timeout of the driver")
    ap.add_argument("--out", help="JSON with every trial (default runs/side_by_side-<time>.json)")
    args = ap.parse_args(argv)
    order = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in order if n not in OURS and n not in GUNICORNS]
    if unknown or not order:
        ap.error(f"unknown server(s) {unknown}; choose from {', '.join([*OURS, *GUNICORNS])}")
    if args.trials < 1 or args.duration <= 0 or args.connections < 1:
        ap.error("--trials, --duration and --connections must be positive")
    if args.trials < 5:
        print(f"note: {args.trials} trials per server; publish only medians of >= 5", file=sys.stderr)

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else ROOT / "runs" / f"side_by_side-{stamp}.json"
    server_cpus, driver_cpus, placement = pick_cpus()

    # SIGTERM (e.g. from a CI timeout) unwinds through the finally blocks below.
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    starters = {name: (lambda n=name: start_ours(n, server_cpus)) for name in OURS}
    for name, (klass, extra) in GUNICORNS.items():
        starters[name] = lambda k=klass, e=extra: start_gunicorn(server_cpus, worker_class=k, extra=e)
    trials: list[dict] = []
    try:
        for i in range(args.trials):
            for name in order:
                rec = {"server": name, "trial": i, "valid": False}
                srv = None
                t0 = time.monotonic()
                try:
                    srv = starters[name]()
                    rec["start_s"] = time.monotonic() - t0
                    rec["url"] = srv.url
                    rec["server_info"] = srv.info
                    rec.update(run_trial(srv, args, driver_cpus))
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # a server that fails to start or dies is reported, not fatal
                    rec["valid"] = False
                    rec["flags"] = ["FAILED"]
                    rec["error"] = f"{type(e).__name__}: {e}"
                finally:
                    if srv is not None:
                        try:
                            srv.stop()
                        except Exception as e:  # keep going; note it
                            rec.setdefault("stop_error", repr(e))
                trials.append(rec)
                status = ",".join(rec.get("flags") or []) or "ok"
                rps = f"{rec['rps']:,.0f} req/s" if "rps" in rec else rec.get("error", "")
                cpu = rec.get("server_cpu_us_per_req")
                cpu_txt = f", {cpu:.0f} server CPU-us/req" if cpu else ""
                print(f"[{i + 1}/{args.trials}] {name:22s} {status:16s} {rps}{cpu_txt}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, partial results follow", file=sys.stderr)
    finally:
        meds = {n: medians(trials, n) for n in order}
        doc = {**run_header("side_by_side", stamp, args, server_cpus, driver_cpus, placement,
                            "interleaved " + " ".join(order) + " per round"),
               "medians": meds, "trials": trials}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))
    print(f"\nGET / keep-alive, {args.connections} connections, {args.duration:g} s x {args.trials} trials, "
          f"server on CPU {sorted(server_cpus)}, driver on CPU {driver_cpus} ({placement})\n")
    print(table(meds, order))
    print(f"\nall trials: {out}")
    return 0 if all(m["valid_trials"] for n, m in meds.items() if n in order) else 1


if __name__ == "__main__":
    sys.exit(main())
