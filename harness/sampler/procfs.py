"""Reading /proc for the sampler: process stats, trees, CPU times, and the machine's quiet check.

Also the per-process fd and thread counts that a leak check compares before and after a run
(the same reads as the sampler's ``fds`` and ``threads`` columns, per process instead of summed).
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Sequence

import psutil

from suites.wire import wait_until


# --------------------------------------------------------------------------
# Reading /proc (used by the sampler process and by quiet_check)
# --------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# indexes into the fields of /proc/PID/stat that follow ")" (proc(5) field number - 3)
STATE, PPID, UTIME, STIME, CUTIME, CSTIME, THREADS, START, RSS = 0, 1, 11, 12, 13, 14, 17, 19, 21
DEAD = (b"Z", b"X")  # zombie, dead


def scan() -> dict[int, list[bytes]]:
    """The fields after the command name of ``/proc/PID/stat`` of every process: one read per process.

    One scan gives each process's parent (to find trees), state, CPU times
    (incl. reaped children), thread count, start time and RSS -- the same
    values psutil's ``ppid()``, ``status()``, ``cpu_times()``,
    ``num_threads()`` and ``memory_info().rss`` read, at a third of the cost
    (this runs every 0.1 s over every process of the machine).
    """
    out: dict[int, list[bytes]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = read_stat(name)
            if fields is not None:
                out[int(name)] = fields
    return out


def read_stat(pid: int | str) -> list[bytes] | None:
    """The fields after the command name of ``/proc/PID/stat`` (proc(5)), None once the process is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:  # gone since it was listed
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = data[data.rfind(b")") + 2:].split()
    return fields if len(fields) > RSS else None


def stat_cpu(f: list[bytes]) -> float:
    """user + system + children_user + children_system, in seconds."""
    return (int(f[UTIME]) + int(f[STIME]) + int(f[CUTIME]) + int(f[CSTIME])) / CLK_TCK


def children_of(stats: dict[int, list[bytes]]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for pid, f in stats.items():
        kids.setdefault(int(f[PPID]), []).append(pid)
    return kids


def closure(seeds: Iterable[int], kids: dict[int, list[int]], present: dict,
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


def trees_cpu(roots: Iterable[int]) -> float:
    """Cumulative CPU (incl. ``children_*``) of the union of the trees under ``roots``."""
    stats = scan()
    return sum(stat_cpu(stats[pid]) for pid in closure(roots, children_of(stats), stats))


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
    e0 = trees_cpu(roots)
    t0 = time.monotonic()
    time.sleep(seconds)
    t1 = time.monotonic()
    b1, s1 = machine_cpu()
    e1 = trees_cpu(roots)
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
# Per-process fds and threads (the leak check of the reliability runs)
# --------------------------------------------------------------------------

def fds_and_threads(pids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """``{pid: (open file descriptors, threads)}`` of each live process of ``pids``.

    The entries of ``/proc/PID/fd`` and the thread count of ``/proc/PID/stat``: what psutil's
    ``num_fds`` and ``num_threads`` read, and what the sampler sums over a tree. A process gone
    (or a zombie) meanwhile is left out.
    """
    out: dict[int, tuple[int, int]] = {}
    for pid in pids:
        fields = read_stat(pid)
        if fields is None or fields[STATE] in DEAD:
            continue
        try:
            out[pid] = (len(os.listdir(f"/proc/{pid}/fd")), int(fields[THREADS]))
        except OSError:  # exited between the two reads
            continue
    return out


def settled_fds_and_threads(pids: Sequence[int], timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """:func:`fds_and_threads` once every process has finished starting: the same counts in three
    samples 0.1 s apart (a child just forked is still opening its epoll sets and threads)."""
    samples: list[dict[int, tuple[int, int]]] = []

    def stable() -> bool:
        samples.append(fds_and_threads(pids))
        return len(samples) >= 3 and samples[-1] == samples[-2] == samples[-3] and len(samples[-1]) == len(pids)

    wait_until(stable, timeout, interval=0.1, what="fd and thread counts to settle")
    return samples[-1]


def wait_fds_and_threads_back(baseline: dict[int, tuple[int, int]],
                              timeout: float = 15.0) -> dict[int, tuple[int, int]]:
    """Wait until every process of ``baseline`` is back to (at most) its fd and thread counts;
    AssertionError naming the leak otherwise (a process gone counts as not back).

    After a run's connections are closed on the client's side, lingering closes and keep-alive
    waits end on their own; what is still open after ``timeout`` has leaked.
    """
    last: dict[int, tuple[int, int]] = {}

    def back() -> bool:
        last.clear()
        last.update(fds_and_threads(baseline))
        return all(pid in last and last[pid][0] <= fds and last[pid][1] <= threads
                   for pid, (fds, threads) in baseline.items())

    try:
        wait_until(back, timeout, interval=0.1, what="fd and thread counts back to the baseline")
    except AssertionError:
        raise AssertionError(f"leak: baseline {baseline}, now {last}") from None
    return dict(last)
