"""Process-tree sampler: CPU, memory, threads and fds of a server, measured from a separate process.

What is sampled
---------------
Every ``interval`` (default 0.1 s) the sampler reads ``/proc/PID/stat`` of
every process once (parent, state, CPU times, threads, RSS, start time: the
fields psutil's ``ppid``/``status``/``cpu_times``/``num_threads``/
``memory_info`` read, at a third of psutil's cost) and takes:

* the **server tree**: the server's root pid and all its descendants,
  re-discovered at every sample.  Summed: cumulative CPU, RSS, threads, open
  fds (entries of ``/proc/PID/fd``, as psutil's ``num_fds``), and the number
  of live processes.  About every ``pss_interval`` (default 1 s), and at
  every mark, also the summed PSS and USS (psutil ``memory_full_info``);
* the **generator tree**: the process ``generator_pid`` (the harness) and all
  its descendants *except* the server tree and the sampler itself -- i.e.
  everything the harness runs that is not the server: its own threads, locust,
  wrk.  Cumulative CPU only;
* the sampler's **own** CPU;
* the **whole machine**: ``psutil.cpu_times()`` summed over every CPU; busy =
  total - idle - iowait - steal (steal is kept apart: it is time the
  hypervisor gave to another guest, not work of any process on this machine).

From these, :meth:`SamplerSeries.window` derives per-window figures, among
them "other processes' CPU" = machine busy - server - generator - sampler.

Cumulative CPU and the ``children_*`` times
-------------------------------------------
A tree's CPU is, for each live process, ``user + system + children_user +
children_system``.  ``children_*`` hold the times of the children that
process has *reaped* (``waitpid``).  A prefork child that serves a few
requests and exits takes its CPU with it from ``/proc``; once its parent
reaps it, that CPU reappears in the parent's ``children_*``, so the summed
figure of a tree whose children come and go stays continuous and a window's
CPU is simply (value at end) - (value at start).  A zombie (exited, not yet
reaped) still shows its final times and is counted for CPU only.  When a
process leaves a tree without being reaped by a member of the same tree (the
server root reaped by the harness after a crash, an orphan reaped by init),
its last sampled CPU is carried in the tree's total, so the total does not
drop; when the server root is reaped by the generator, that same amount is
taken off the generator, which has just gained it in its ``children_*``.
Server processes are followed by pid once seen, even when reparented
(orphans of a crashed root still count as server).

Why PSS and not RSS
-------------------
Prefork children are forked from one parent and share most of their pages
(interpreter, imported modules) copy-on-write.  RSS counts a shared page in
full in every process that maps it, so summed RSS over 50 children counts
the same pages 50 times and overstates the tree's memory by 10x or more.
PSS (proportional set size) charges each process ``1/n`` of a page shared by
``n`` processes, so summed PSS is the tree's real footprint.  USS is the
private part (what killing the process would free).  PSS needs a read of
``/proc/PID/smaps_rollup`` per process, which costs several times more than
the other figures: hence every ~``pss_interval`` only.

Why a separate process
----------------------
The sampler's reads of ``/proc`` cost CPU.  Running them in the harness
would add that cost to the generator's CPU and steal time from the load
driver's threads.  In its own process (pinnable to a CPU of its own), its
cost is measured (``sampler_cpu``) and kept out of every other figure.

Transport
---------
:class:`Sampler` starts ``python -m harness.sampler`` with pipes.  The
sampler writes ``ready T`` after its first sample; the parent sends ``mark
NAME`` (the sampler takes a sample at once, records the mark and answers
``ack NAME T``) and ``stop``; on ``stop``, end of stdin (the harness died),
its parent's exit or ``--max-seconds`` it takes a last sample, writes the
whole series as one line of JSON and exits.  Times are ``time.monotonic()``
(CLOCK_MONOTONIC, system-wide on Linux, so the parent's and the sampler's
clocks agree).  Every read on the parent's side has a deadline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Iterable, Sequence

import psutil

__all__ = ["Sampler", "SamplerSeries", "WindowStats", "Mark", "SamplerError", "quiet_check",
           "machine_cpu", "COLUMNS", "FORMAT_VERSION"]

FORMAT_VERSION = 1
DEFAULT_INTERVAL = 0.1
DEFAULT_PSS_INTERVAL = 1.0
DEFAULT_MAX_SECONDS = 4 * 3600.0

#: per-sample columns of :meth:`SamplerSeries.to_dict` (``pss``/``uss`` are ``null`` where not sampled)
COLUMNS = ("t", "cpu", "rss", "pss", "uss", "threads", "fds", "processes",
           "generator_cpu", "sampler_cpu", "machine_busy", "machine_steal")

_PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SamplerError(RuntimeError):
    """The sampler process failed, died or did not answer in time."""


# --------------------------------------------------------------------------
# Reading /proc (used by the sampler process and by quiet_check)
# --------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
# indexes into the fields of /proc/PID/stat that follow ")" (proc(5) field number - 3)
_STATE, _PPID, _UTIME, _STIME, _CUTIME, _CSTIME, _THREADS, _START, _RSS = 0, 1, 11, 12, 13, 14, 17, 19, 21
_DEAD = (b"Z", b"X")  # zombie, dead


def _scan() -> dict[int, list[bytes]]:
    """The fields after the command name of ``/proc/PID/stat`` of every process: one read per process.

    One scan gives each process's parent (to find trees), state, CPU times
    (incl. reaped children), thread count, start time and RSS -- the same
    values psutil's ``ppid()``, ``status()``, ``cpu_times()``,
    ``num_threads()`` and ``memory_info().rss`` read, at a third of the cost
    (this runs every 0.1 s over every process of the machine).
    """
    out: dict[int, list[bytes]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
        except OSError:  # gone since listdir
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            continue
        finally:
            os.close(fd)
        fields = data[data.rfind(b")") + 2:].split()
        if len(fields) > _RSS:
            out[int(name)] = fields
    return out


def _stat_cpu(f: list[bytes]) -> float:
    """user + system + children_user + children_system, in seconds."""
    return (int(f[_UTIME]) + int(f[_STIME]) + int(f[_CUTIME]) + int(f[_CSTIME])) / _CLK_TCK


def _children_of(stats: dict[int, list[bytes]]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for pid, f in stats.items():
        kids.setdefault(int(f[_PPID]), []).append(pid)
    return kids


def _closure(seeds: Iterable[int], kids: dict[int, list[int]], present: dict,
             exclude: set[int] | frozenset[int] = frozenset()) -> set[int]:
    """``seeds`` that exist and all their descendants, not entering ``exclude``."""
    out: set[int] = set()
    stack = [p for p in seeds if p in present and p not in exclude]
    while stack:
        pid = stack.pop()
        if pid in out:
            continue
        out.add(pid)
        stack.extend(c for c in kids.get(pid, ()) if c not in exclude and c not in out)
    return out


def machine_cpu() -> tuple[float, float]:
    """Whole-machine ``(busy, steal)`` CPU-seconds since boot, summed over every CPU (``psutil.cpu_times()``).

    busy = total - idle - iowait - steal, where total leaves out guest and
    guest_nice (Linux already counts them in user and nice).
    """
    ct = psutil.cpu_times()
    total = sum(ct)
    total -= getattr(ct, "guest", 0.0) + getattr(ct, "guest_nice", 0.0)
    steal = getattr(ct, "steal", 0.0)
    busy = total - ct.idle - getattr(ct, "iowait", 0.0) - steal
    return busy, steal


def _trees_cpu(roots: Iterable[int]) -> float:
    """Cumulative CPU (incl. ``children_*``) of the union of the trees under ``roots``."""
    stats = _scan()
    return sum(_stat_cpu(stats[pid]) for pid in _closure(roots, _children_of(stats), stats))


def quiet_check(seconds: float = 1.0, exclude_pids: Sequence[int] = ()) -> dict:
    """How busy the machine is with processes other than ``exclude_pids`` and their descendants.

    Measures machine busy CPU (see :func:`machine_cpu`) over ``seconds`` of
    sleep, minus the CPU the excluded trees used meanwhile (e.g. the harness
    and the idle server).  Returns ``{"other_cpu_percent": percent of ONE
    CPU (200 = two CPUs busy), "machine_busy_percent": same unit, all
    processes, "excluded_cpu_percent": same unit, "steal_percent": same unit,
    "machine_cpus": os.cpu_count() (every online CPU, because /proc/stat
    counts them all, whatever this process's affinity), "seconds": measured
    duration}``.  The caller decides what is too noisy.
    """
    if seconds <= 0:
        raise ValueError("quiet_check: seconds must be > 0")
    roots = list(exclude_pids)
    b0, s0 = machine_cpu()
    e0 = _trees_cpu(roots)
    t0 = time.monotonic()
    time.sleep(seconds)
    t1 = time.monotonic()
    b1, s1 = machine_cpu()
    e1 = _trees_cpu(roots)
    elapsed = t1 - t0
    busy = max(0.0, b1 - b0)
    excluded = max(0.0, e1 - e0)
    other = max(0.0, busy - excluded)
    return {
        "other_cpu_percent": round(100.0 * other / elapsed, 1),
        "machine_busy_percent": round(100.0 * busy / elapsed, 1),
        "excluded_cpu_percent": round(100.0 * excluded / elapsed, 1),
        "steal_percent": round(100.0 * max(0.0, s1 - s0) / elapsed, 1),
        "machine_cpus": os.cpu_count() or 1,
        "seconds": round(elapsed, 3),
    }


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
        return [pid for pid, start in self.seen if pid in stats and int(stats[pid][_START]) == start]

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
        stats = _scan()
        kids = _children_of(stats)
        exclude_self = {self.self_pid}

        # --- server tree: the root's descendants, plus every process once seen in it (orphans too)
        if not self.cols["t"] and self.root_pid in stats:  # the root is whatever has its pid at the start
            self.root_key = (self.root_pid, int(stats[self.root_pid][_START]))
        seeds = self.server.seeds(stats)
        if self.root_alive and self.root_key is not None and self.root_pid in stats \
                and int(stats[self.root_pid][_START]) == self.root_key[1]:
            seeds.append(self.root_pid)
        server_pids = _closure(seeds, kids, stats, exclude_self)
        cpu = 0.0
        rss = pss_sum = uss_sum = threads = fds = nprocs = 0
        now: dict[_Key, tuple[float, int]] = {}
        root_ok = False
        for pid in server_pids:
            f = stats[pid]
            key = (pid, int(f[_START]))
            pcpu = _stat_cpu(f)
            now[key] = (pcpu, int(f[_PPID]))
            cpu += pcpu  # a zombie still shows its final times, which move to its parent once reaped
            if f[_STATE] in _DEAD:
                self.errors["zombie"] += 1
                continue
            nprocs += 1
            threads += int(f[_THREADS])
            rss += int(f[_RSS]) * _PAGE
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
            for pid in _closure(gseeds, kids, stats, server_pids | exclude_self):
                f = stats[pid]
                pcpu = _stat_cpu(f)
                gnow[(pid, int(f[_START]))] = (pcpu, int(f[_PPID]))
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


# --------------------------------------------------------------------------
# The series and its windows
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """A named instant; ``index`` is the sample taken for it (same ``t``)."""

    name: str
    t: float
    index: int


@dataclass
class WindowStats:
    """Figures of the server (and the rest of the machine) between two instants.

    CPU figures are CPU-seconds; ``*_fraction`` of a tree is CPU-seconds per
    second of the window, i.e. in CPUs (1.0 = one core busy the whole time);
    ``machine_busy_fraction`` is of the whole machine (0..1).  Memory in bytes.
    """

    start: float
    end: float
    start_mark: str | None
    end_mark: str | None
    duration: float
    samples: int
    pss_samples: int
    cpu_seconds: float
    cpu_fraction: float
    rss_peak: int
    pss_peak: int | None
    pss_steady: int | None
    uss_peak: int | None
    uss_steady: int | None
    threads_peak: int
    fds_peak: int
    processes_peak: int
    processes_min: int
    generator_cpu_seconds: float
    generator_cpu_fraction: float
    sampler_cpu_seconds: float
    sampler_cpu_fraction: float
    machine_cpus: int
    machine_busy_seconds: float
    machine_busy_fraction: float
    machine_steal_seconds: float
    other_cpu_seconds: float
    other_cpu_fraction: float
    root_alive: bool

    def cpu_us_per_request(self, requests: int) -> float | None:
        """Server CPU-microseconds per request: ``cpu_seconds * 1e6 / requests``; None when ``requests`` <= 0."""
        if requests <= 0:
            return None
        return self.cpu_seconds * 1e6 / requests

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return asdict(self)


def _median_int(values: list[int]) -> int:
    return int(round(statistics.median(values)))


class SamplerSeries:
    """Every sample and mark of one sampler run (columnar), and the windows and slopes derived from them."""

    def __init__(self, doc: dict) -> None:
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"sampler series: unsupported version {doc.get('version')!r}")
        self.doc = doc
        self.samples: dict[str, list] = doc["samples"]
        self.marks: list[Mark] = [Mark(m["name"], m["t"], m["index"]) for m in doc["marks"]]
        self.root_pid: int = doc["root_pid"]
        self.generator_pid: int | None = doc.get("generator_pid")
        self.sampler_pid: int = doc.get("sampler_pid", 0)
        self.interval: float = doc["interval"]
        self.pss_interval: float = doc["pss_interval"]
        self.machine_cpus: int = doc["machine_cpus"]
        self.started_at: float = doc["started_at"]
        self.ended_at: float = doc["ended_at"]
        self.stop_reason: str = doc.get("stop_reason", "")
        self.root_exited_at: float | None = doc.get("root_exited_at")
        self.root_gone_at: float | None = doc.get("root_gone_at")
        self.errors: dict[str, int] = doc.get("errors", {})
        self._t: list[float] = self.samples["t"]
        if not self._t:
            raise ValueError("sampler series: no samples")

    @classmethod
    def from_dict(cls, doc: dict) -> "SamplerSeries":
        """The series of a :meth:`to_dict` document."""
        return cls(doc)

    def to_dict(self) -> dict:
        """JSON-ready document: metadata, marks, and one list per column (see :data:`COLUMNS`)."""
        return self.doc

    def __len__(self) -> int:
        return len(self._t)

    @property
    def mark_names(self) -> list[str]:
        """Mark names in the order they were taken."""
        return [m.name for m in self.marks]

    def mark(self, name: str) -> Mark:
        """The mark called ``name``; KeyError naming the known marks if there is none."""
        for m in self.marks:
            if m.name == name:
                return m
        raise KeyError(f"no mark {name!r} in this series (marks: {', '.join(self.mark_names) or 'none'})")

    # -- positions: a mark (exact sample) or a monotonic time (interpolated)

    def _pos(self, at: str | float) -> tuple[float, str | None, int | None]:
        if isinstance(at, str):
            m = self.mark(at)
            return m.t, m.name, m.index
        t = float(at)
        if not self._t[0] <= t <= self._t[-1]:
            raise ValueError(f"time {t:.6f} is outside the series ({self._t[0]:.6f} .. {self._t[-1]:.6f})")
        return t, None, None

    def _value(self, column: str, t: float, index: int | None) -> float:
        col = self.samples[column]
        if index is not None:
            return col[index]
        i = self._bisect(t)
        if i < len(self._t) and self._t[i] == t:
            return col[i]
        t0, t1 = self._t[i - 1], self._t[i]
        v0, v1 = col[i - 1], col[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def _bisect(self, t: float) -> int:
        lo, hi = 0, len(self._t)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._t[mid] < t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _indices(self, t0: float, t1: float) -> list[int]:
        i = self._bisect(t0)
        out = []
        while i < len(self._t) and self._t[i] <= t1:
            out.append(i)
            i += 1
        return out

    def _nearest_with(self, column: str, t0: float, t1: float) -> int | None:
        """Index of the sample with a value in ``column`` nearest to the interval [t0, t1]."""
        best, best_d = None, math.inf
        col = self.samples[column]
        for i, t in enumerate(self._t):
            if col[i] is None:
                continue
            d = t0 - t if t < t0 else (t - t1 if t > t1 else 0.0)
            if d < best_d:
                best, best_d = i, d
        return best

    def median(self, metric: str, start: str | float, end: str | float) -> float | None:
        """The median of ``metric`` over the samples in [start, end] that have a value; None when none has."""
        t0, t1 = self._pos(start)[0], self._pos(end)[0]
        vals = [v for i in self._indices(t0, t1) if (v := self.samples[metric][i]) is not None]
        return statistics.median(vals) if vals else None

    def sample_at(self, at: str | float) -> dict:
        """The sample of a mark, or the sample nearest to a monotonic time, as ``{column: value}``."""
        t, _, index = self._pos(at)
        if index is None:
            i = self._bisect(t)
            if i == len(self._t) or (i > 0 and t - self._t[i - 1] < self._t[i] - t):
                i -= 1
            index = i
        return {c: self.samples[c][index] for c in COLUMNS}

    def root_alive_at(self, t: float) -> bool:
        """Whether the server root was alive at (the sample at or after) time ``t``."""
        return self.root_gone_at is None or self.root_gone_at > t

    def window(self, start: str | float, end: str | float) -> WindowStats:
        """Figures between two marks (or monotonic times); KeyError for an unknown mark, ValueError if end <= start."""
        t0, m0, i0 = self._pos(start)
        t1, m1, i1 = self._pos(end)
        if t1 <= t0:
            raise ValueError(f"window end ({end!r}, t={t1:.6f}) is not after its start ({start!r}, t={t0:.6f})")
        duration = t1 - t0

        def delta(col: str) -> float:
            return max(0.0, self._value(col, t1, i1) - self._value(col, t0, i0))

        idx = self._indices(t0, t1)
        if not idx:  # a window between two samples: use the two around it
            i = self._bisect(t0)
            idx = [i - 1, i]
        s = self.samples

        def peak(col: str) -> int:
            return max(s[col][i] for i in idx)

        def mem(col: str) -> tuple[int | None, int | None, int]:
            vals = [s[col][i] for i in idx if s[col][i] is not None]
            if vals:
                pk = max(vals)
            else:
                j = self._nearest_with(col, t0, t1)
                pk = s[col][j] if j is not None else None
            half = t0 + duration / 2
            late = [s[col][i] for i in idx if self._t[i] >= half and s[col][i] is not None]
            if late:
                steady = _median_int(late)
            else:
                j = self._nearest_with(col, half, t1)
                steady = s[col][j] if j is not None else None
            return pk, steady, len(vals)

        pss_peak, pss_steady, n_pss = mem("pss")
        uss_peak, uss_steady, _ = mem("uss")
        cpu = delta("cpu")
        gen = delta("generator_cpu")
        smp = delta("sampler_cpu")
        busy = delta("machine_busy")
        other = max(0.0, busy - cpu - gen - smp)
        ncpu = self.machine_cpus
        return WindowStats(
            start=t0, end=t1, start_mark=m0, end_mark=m1,
            duration=round(duration, 6), samples=len(idx), pss_samples=n_pss,
            cpu_seconds=round(cpu, 3), cpu_fraction=round(cpu / duration, 4),
            rss_peak=peak("rss"), pss_peak=pss_peak, pss_steady=pss_steady,
            uss_peak=uss_peak, uss_steady=uss_steady,
            threads_peak=peak("threads"), fds_peak=peak("fds"),
            processes_peak=peak("processes"), processes_min=min(s["processes"][i] for i in idx),
            generator_cpu_seconds=round(gen, 3), generator_cpu_fraction=round(gen / duration, 4),
            sampler_cpu_seconds=round(smp, 3), sampler_cpu_fraction=round(smp / duration, 4),
            machine_cpus=ncpu, machine_busy_seconds=round(busy, 3),
            machine_busy_fraction=round(busy / (duration * ncpu), 4),
            machine_steal_seconds=round(delta("machine_steal"), 3),
            other_cpu_seconds=round(other, 3), other_cpu_fraction=round(other / duration, 4),
            root_alive=self.root_alive_at(t1),
        )

    def slice(self, start: str | float, end: str | float) -> dict:
        """The samples between two marks (or monotonic times), columnar, with ``t`` relative to the start.

        For the plots of one measured window (PSS and CPU over time); CPU
        columns stay cumulative, as in :meth:`to_dict`.
        """
        t0, _, _ = self._pos(start)
        t1, _, _ = self._pos(end)
        idx = self._indices(t0, t1)
        out = {c: [self.samples[c][i] for i in idx] for c in COLUMNS}
        out["t"] = [round(t - t0, 4) for t in out["t"]]
        return out

    def slope(self, metric: str, start: str | float | None = None, end: str | float | None = None) -> float | None:
        """Least-squares slope of ``metric`` in units per second over [start, end] (the whole series by default).

        Samples without a value (PSS/USS between readings) are left out.  None
        with fewer than two points.  For a soak: ``slope("pss")`` in bytes/s,
        ``slope("fds")`` in fds/s.
        """
        if metric not in self.samples or metric == "t":
            raise KeyError(f"no metric {metric!r} (metrics: {', '.join(COLUMNS[1:])})")
        t0 = self._t[0] if start is None else self._pos(start)[0]
        t1 = self._t[-1] if end is None else self._pos(end)[0]
        pts = [(self._t[i], self.samples[metric][i]) for i in self._indices(t0, t1)
               if self.samples[metric][i] is not None]
        if len(pts) < 2:
            return None
        mt = sum(p[0] for p in pts) / len(pts)
        mv = sum(p[1] for p in pts) / len(pts)
        sxx = sum((p[0] - mt) ** 2 for p in pts)
        if sxx == 0:
            return None
        return sum((p[0] - mt) * (p[1] - mv) for p in pts) / sxx


# --------------------------------------------------------------------------
# The parent side
# --------------------------------------------------------------------------

class Sampler:
    """Runs the sampler in its own process and talks to it over pipes; never blocks without a deadline.

    ``Sampler(server_pid, generator_pid=os.getpid())``; ``start()``;
    ``mark(name)`` around each phase; ``stop()`` -> :class:`SamplerSeries`.
    Also a context manager (``with Sampler(...) as s:``), which stops (or
    kills) the process on the way out.
    """

    def __init__(self, server_pid: int, generator_pid: int | None = None, interval: float = DEFAULT_INTERVAL,
                 pss_interval: float = DEFAULT_PSS_INTERVAL, cpus: Iterable[int] | None = None,
                 max_seconds: float = DEFAULT_MAX_SECONDS, start_timeout: float = 30.0,
                 mark_timeout: float = 10.0, stop_timeout: float = 60.0) -> None:
        if interval <= 0 or pss_interval <= 0 or max_seconds <= 0:
            raise ValueError("Sampler: interval, pss_interval and max_seconds must be > 0")
        self.server_pid = server_pid
        self.generator_pid = generator_pid
        self.interval = interval
        self.pss_interval = pss_interval
        self.cpus = sorted(set(cpus)) if cpus else None
        self.max_seconds = max_seconds
        self.start_timeout = start_timeout
        self.mark_timeout = mark_timeout
        self.stop_timeout = stop_timeout
        self.series: SamplerSeries | None = None
        self.started_at: float | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None
        self._buf = b""
        self._eof = False
        self._marks: set[str] = set()
        self._lock = threading.Lock()

    # -- lifecycle

    @property
    def pid(self) -> int | None:
        """PID of the sampler process (None before start)."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """Started and not yet stopped or dead."""
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The sampler's command line."""
        cmd = [sys.executable, "-m", "harness.sampler", "--pid", str(self.server_pid),
               "--interval", repr(self.interval), "--pss-interval", repr(self.pss_interval),
               "--max-seconds", repr(self.max_seconds)]
        if self.generator_pid is not None:
            cmd += ["--generator-pid", str(self.generator_pid)]
        return cmd

    def start(self) -> "Sampler":
        """Start the sampler process (pinned to ``cpus``); return once its first sample exists."""
        if self._proc is not None:
            raise SamplerError("sampler already started")
        if not psutil.pid_exists(self.server_pid):
            raise ValueError(f"Sampler: no process {self.server_pid} to sample")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, bufsize=0, env=env, close_fds=True)
        try:
            if self.cpus:
                # pinned from here rather than in a preexec_fn (not safe while the harness runs threads);
                # only the interpreter's start-up runs unpinned
                os.sched_setaffinity(self._proc.pid, set(self.cpus))
            line = self._readline(time.monotonic() + self.start_timeout)
            if line is None or not line.startswith("ready "):
                raise SamplerError(f"sampler pid {self._proc.pid} did not start within {self.start_timeout:g} s"
                                   f" (got {line!r}){self._stderr_tail()}")
            self.started_at = float(line.split()[1])
        except BaseException:
            self.kill()
            raise
        return self

    def mark(self, name: str) -> float:
        """Have the sampler take a sample now, recorded as mark ``name``; return its monotonic time.

        Names are unique words (no whitespace).  Blocks at most ``mark_timeout`` seconds.
        """
        if not name or any(ch.isspace() for ch in name):
            raise ValueError(f"mark name must be a non-empty word without whitespace, not {name!r}")
        with self._lock:
            if name in self._marks:
                raise ValueError(f"mark {name!r} already taken")
            if not self.running or self._proc is None or self._proc.stdin is None:
                raise SamplerError(f"sampler is not running (mark {name!r}){self._stderr_tail()}")
            self._marks.add(name)
            try:
                self._proc.stdin.write(f"mark {name}\n".encode())
            except (BrokenPipeError, OSError) as exc:
                raise SamplerError(f"sampler pid {self._proc.pid} is gone (mark {name!r}): {exc}") from None
            deadline = time.monotonic() + self.mark_timeout
            while True:
                line = self._readline(deadline)
                if line is None:
                    what = "exited" if self._eof else f"did not answer within {self.mark_timeout:g} s"
                    raise SamplerError(f"sampler pid {self._proc.pid} {what} (mark {name!r}){self._stderr_tail()}")
                words = line.split()
                if words[:2] == ["ack", name] and len(words) == 3:
                    return float(words[2])
                if words[:1] == ["error"]:
                    raise SamplerError(f"sampler: {line}")
                # a late ack of an earlier mark that timed out: skip

    def stop(self) -> SamplerSeries:
        """Stop the sampler and return every sample and mark.

        Waits at most ``stop_timeout`` seconds for the series; a sampler that
        has not delivered by then is killed by pid and SamplerError is raised.
        Calling it again returns the same series.
        """
        with self._lock:
            if self.series is not None:
                return self.series
            if self._proc is None:
                raise SamplerError("sampler was never started")
            proc = self._proc
            try:
                if proc.stdin is not None and not proc.stdin.closed:
                    try:
                        proc.stdin.write(b"stop\n")
                        proc.stdin.close()
                    except (BrokenPipeError, OSError):
                        pass
                deadline = time.monotonic() + self.stop_timeout
                doc_line = None
                while True:
                    line = self._readline(deadline)
                    if line is None:
                        break
                    if line.startswith("{"):
                        doc_line = line
                if doc_line is None:
                    why = "exited without a series" if self._eof else \
                        f"did not deliver its series within {self.stop_timeout:g} s; killed"
                    raise SamplerError(f"sampler pid {proc.pid} {why}{self._stderr_tail()}")
                try:
                    self.series = SamplerSeries(json.loads(doc_line))
                except (ValueError, KeyError) as exc:
                    raise SamplerError(f"sampler pid {proc.pid}: unreadable series: {exc}") from None
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                return self.series
            finally:
                self.kill()

    def kill(self) -> None:
        """Kill the sampler process by pid if it still runs, reap it and close the pipes (no series)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL not delivered within 10 s
                pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "Sampler":
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.series is None:
                self.stop()
        else:
            self.kill()  # do not hide the original error behind a stop failure

    # -- I/O

    def _readline(self, deadline: float) -> str | None:
        """Next line from the sampler, or None at EOF or the deadline."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                r, _, _ = select.select([fd], [], [], left)
            except InterruptedError:
                continue
            if not r:
                continue
            try:
                data = os.read(fd, 1 << 20)
            except OSError:
                data = b""
            if not data:
                self._eof = True
                if not self._buf:
                    return None
                self._buf += b"\n"
                break
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 2000))
            tail = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; stderr: {tail}" if tail else ""


if __name__ == "__main__":
    sys.exit(main())
