"""The sampler process (``python -m harness.sampler``): collect samples, answer marks, write the series."""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import time
from typing import Sequence

import psutil

from .procfs import DEAD, PAGE, PPID, RSS, START, STATE, THREADS, children_of, closure, machine_cpu, scan, stat_cpu


FORMAT_VERSION = 1
DEFAULT_INTERVAL = 0.1
DEFAULT_PSS_INTERVAL = 1.0
DEFAULT_MAX_SECONDS = 4 * 3600.0

#: per-sample columns of :meth:`SamplerSeries.to_dict` (``pss``/``uss`` are ``null`` where not sampled)
COLUMNS = ("t", "cpu", "rss", "pss", "uss", "threads", "fds", "processes",
           "generator_cpu", "sampler_cpu", "machine_busy", "machine_steal")


# --------------------------------------------------------------------------
# The sampler process: collection
# --------------------------------------------------------------------------

_Key = tuple[int, int]  # (pid, start time in ticks since boot): a process, even if its pid is reused later


class _Group:
    """A tree followed across samples: last CPU total and parent of each member, and CPU carried from leavers."""

    def __init__(self) -> None:
        self.seen: dict[_Key, tuple[float, int]] = {}  # member -> (last cumulative cpu, last ppid)
        self.departed = 0.0  # CPU of members that left without being reaped by a member

    def seeds(self, stats: dict[int, list[bytes]]) -> list[int]:
        """Members that still exist (same pid, same start time)."""
        return [pid for pid, start in self.seen if pid in stats and int(stats[pid][START]) == start]

    def settle(self, now: dict[_Key, tuple[float, int]]) -> list[tuple[_Key, float, int]]:
        """Replace the members by ``now``; return the leavers not reaped by a member: (key, cpu, ppid)."""
        pids_now = {k[0] for k in now}
        leavers = []
        for k, (cpu, ppid) in self.seen.items():
            if k not in now and ppid not in pids_now:
                self.departed += cpu
                leavers.append((k, cpu, ppid))
        self.seen = now
        return leavers


class _Collector:
    """Takes samples of the server tree, the generator tree, itself and the machine."""

    def __init__(self, root_pid: int, generator_pid: int | None) -> None:
        self.root_pid = root_pid
        self.generator_pid = generator_pid
        self.self_pid = os.getpid()
        self.server = _Group()
        self.generator = _Group()
        self.psutil_procs: dict[_Key, psutil.Process] = {}
        self.root_key: _Key | None = None
        self.root_alive = True
        self.root_seen = False
        self.root_exited_at: float | None = None  # last sample time the root was alive
        self.root_gone_at: float | None = None  # first sample time it was not
        self.errors = {"no_such_process": 0, "access_denied": 0, "zombie": 0}
        self.cols: dict[str, list] = {c: [] for c in COLUMNS}
        self.last_pss_t = -math.inf

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, (psutil.AccessDenied, PermissionError)):
            self.errors["access_denied"] += 1
        else:  # psutil.NoSuchProcess / ZombieProcess, FileNotFoundError, ProcessLookupError
            self.errors["no_such_process"] += 1

    def _pss(self, key: _Key) -> tuple[int, int] | None:
        p = self.psutil_procs.get(key)
        try:
            if p is None:
                p = self.psutil_procs[key] = psutil.Process(key[0])
            m = p.memory_full_info()
            return m.pss, m.uss
        except (psutil.Error, OSError) as exc:
            self._fail(exc)
            return None

    def sample(self, pss: bool) -> float:
        """Take one sample (with PSS/USS when ``pss``); return its time."""
        t = time.monotonic()
        busy, steal = machine_cpu()
        stats = scan()
        kids = children_of(stats)
        exclude_self = {self.self_pid}

        # --- server tree: the root's descendants, plus every process once seen in it (orphans too)
        if not self.cols["t"] and self.root_pid in stats:  # the root is whatever has its pid at the start
            self.root_key = (self.root_pid, int(stats[self.root_pid][START]))
        seeds = self.server.seeds(stats)
        if self.root_alive and self.root_key is not None and self.root_pid in stats \
                and int(stats[self.root_pid][START]) == self.root_key[1]:
            seeds.append(self.root_pid)
        server_pids = closure(seeds, kids, stats, exclude_self)
        cpu = 0.0
        rss = pss_sum = uss_sum = threads = fds = nprocs = 0
        now: dict[_Key, tuple[float, int]] = {}
        root_ok = False
        for pid in server_pids:
            f = stats[pid]
            key = (pid, int(f[START]))
            pcpu = stat_cpu(f)
            now[key] = (pcpu, int(f[PPID]))
            cpu += pcpu  # a zombie still shows its final times, which move to its parent once reaped
            if f[STATE] in DEAD:
                self.errors["zombie"] += 1
                continue
            nprocs += 1
            threads += int(f[THREADS])
            rss += int(f[RSS]) * PAGE
            if key == self.root_key:
                root_ok = True
            try:
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError as exc:
                self._fail(exc)
            if pss:
                got = self._pss(key)
                if got is not None:
                    pss_sum += got[0]
                    uss_sum += got[1]
        for key in [k for k in self.psutil_procs if k not in now]:
            del self.psutil_procs[key]
        for _key, pcpu, ppid in self.server.settle(now):
            if ppid == self.generator_pid or any(k[0] == ppid for k in self.generator.seen):
                # reaped by the generator (the harness reaps a crashed server root): it has just
                # gained this CPU in its children_* times
                self.generator.departed -= pcpu
        if root_ok:
            self.root_seen = True
            self.root_exited_at = t
        elif self.root_alive:
            self.root_alive = False  # once gone, never back
            self.root_gone_at = t

        # --- generator tree: everything under generator_pid except the server and this sampler
        gen_cpu = 0.0
        if self.generator_pid is not None:
            gseeds = [self.generator_pid, *self.generator.seeds(stats)]
            gnow: dict[_Key, tuple[float, int]] = {}
            for pid in closure(gseeds, kids, stats, server_pids | exclude_self):
                f = stats[pid]
                pcpu = stat_cpu(f)
                gnow[(pid, int(f[START]))] = (pcpu, int(f[PPID]))
                gen_cpu += pcpu
            self.generator.settle(gnow)
            gen_cpu += self.generator.departed

        own = os.times()
        c = self.cols
        c["t"].append(round(t, 6))
        c["cpu"].append(round(cpu + self.server.departed, 3))
        c["rss"].append(rss)
        c["pss"].append(pss_sum if pss else None)
        c["uss"].append(uss_sum if pss else None)
        c["threads"].append(threads)
        c["fds"].append(fds)
        c["processes"].append(nprocs)
        c["generator_cpu"].append(round(gen_cpu, 3))
        c["sampler_cpu"].append(round(own.user + own.system, 3))
        c["machine_busy"].append(round(busy, 3))
        c["machine_steal"].append(round(steal, 3))
        if pss:
            self.last_pss_t = t
        return t


# --------------------------------------------------------------------------
# The sampler process: main loop and I/O
# --------------------------------------------------------------------------

def _write_all(fd: int, data: bytes, timeout: float) -> bool:
    """Write ``data`` to ``fd`` within ``timeout`` seconds; False if the reader is gone or too slow."""
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    try:
        os.set_blocking(fd, False)
    except OSError:
        return False
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            _, w, _ = select.select([], [fd], [], left)
            if not w:
                continue
            n = os.write(fd, view)
            view = view[n:]
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:  # BrokenPipeError: nobody reads any more
            return False
    return True


def run(root_pid: int, generator_pid: int | None, interval: float, pss_interval: float,
        max_seconds: float, stdin_fd: int = 0, stdout_fd: int = 1) -> str:
    """The sampler's loop: sample, serve ``mark``/``stop`` on ``stdin_fd``, write the series; return the stop reason."""
    col = _Collector(root_pid, generator_pid)
    parent = os.getppid()
    started = col.sample(pss=True)
    hard_stop = started + max_seconds
    next_t = started + interval
    marks: list[dict] = []
    _write_all(stdout_fd, f"ready {started:.6f}\n".encode(), 10.0)
    buf = b""
    reason = ""
    while not reason:
        now = time.monotonic()
        if now >= hard_stop:
            reason = "max_seconds"
            break
        wait = max(0.0, min(next_t, hard_stop) - now)
        try:
            readable, _, _ = select.select([stdin_fd], [], [], wait)
        except InterruptedError:
            readable = []
        if readable:
            try:
                data = os.read(stdin_fd, 65536)
            except OSError:
                data = b""
            if not data:
                reason = "eof"
                break
            buf += data
            while b"\n" in buf and not reason:
                line, buf = buf.split(b"\n", 1)
                words = line.decode("utf-8", "replace").split()
                if words[:1] == ["mark"] and len(words) == 2:
                    t = col.sample(pss=True)
                    marks.append({"name": words[1], "t": round(t, 6), "index": len(col.cols["t"]) - 1})
                    _write_all(stdout_fd, f"ack {words[1]} {t:.6f}\n".encode(), 5.0)
                elif words == ["stop"]:
                    reason = "stop"
                elif words:
                    _write_all(stdout_fd, f"error unknown command: {line[:80]!r}\n".encode(), 5.0)
            if reason:
                break
        now = time.monotonic()
        if now >= next_t:
            col.sample(pss=now - col.last_pss_t >= pss_interval - interval / 2)
            next_t += interval
            if next_t <= now:  # fell behind (a slow sample): skip, never burst
                next_t = now + interval
            if os.getppid() != parent:
                reason = "parent_gone"
    ended = col.sample(pss=True)
    doc = {
        "version": FORMAT_VERSION,
        "clock": "CLOCK_MONOTONIC",
        "root_pid": root_pid,
        "generator_pid": generator_pid,
        "sampler_pid": os.getpid(),
        "interval": interval,
        "pss_interval": pss_interval,
        "machine_cpus": psutil.cpu_count() or os.cpu_count() or 1,
        "started_at": round(started, 6),
        "ended_at": round(ended, 6),
        "stop_reason": reason,
        "root_seen": col.root_seen,
        "root_exited_at": None if col.root_alive else col.root_exited_at,
        "root_gone_at": col.root_gone_at,
        "errors": col.errors,
        "marks": marks,
        "samples": col.cols,
    }
    if doc["root_exited_at"] is not None:
        doc["root_exited_at"] = round(doc["root_exited_at"], 6)
    if doc["root_gone_at"] is not None:
        doc["root_gone_at"] = round(doc["root_gone_at"], 6)
    payload = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    # a parent that asked for the series reads it now; after EOF or max-seconds nobody may read: do not linger
    _write_all(stdout_fd, payload, 60.0 if reason in ("stop", "max_seconds") else 5.0)
    return reason


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.sampler --pid PID ...``: sample until ``stop``, end of stdin or ``--max-seconds``."""
    ap = argparse.ArgumentParser(
        prog="python -m harness.sampler",
        description="Sample a server's process tree (CPU incl. reaped children, RSS, PSS/USS, threads, fds, "
                    "processes), the generator's CPU, this sampler's CPU and the machine's busy CPU. "
                    "Commands on stdin: 'mark NAME' (answers 'ack NAME T'), 'stop'. On stop, end of stdin "
                    "or --max-seconds it writes the series as one JSON line on stdout and exits.")
    ap.add_argument("--pid", type=int, required=True, help="root pid of the server tree")
    ap.add_argument("--generator-pid", type=int, default=None,
                    help="pid whose tree (minus the server and the sampler) is the load generator")
    ap.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between samples (0.1)")
    ap.add_argument("--pss-interval", type=float, default=DEFAULT_PSS_INTERVAL,
                    help="seconds between PSS/USS readings (1.0)")
    ap.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                    help="exit after this long whatever happens (4 h)")
    args = ap.parse_args(argv)
    if args.interval <= 0 or args.pss_interval <= 0 or args.max_seconds <= 0:
        ap.error("--interval, --pss-interval and --max-seconds must be > 0")
    if not os.isatty(0):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the harness, which stops us
    run(args.pid, args.generator_pid, args.interval, args.pss_interval, args.max_seconds)
    return 0
