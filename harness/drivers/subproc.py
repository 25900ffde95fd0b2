"""What the subprocess drivers (locust, wrk) share: a bounded process-tree run with its CPU, the
error they raise, and an HdrHistogram rebuilt from a percentile spectrum.

:func:`run_bounded` starts a driver under a tiny wrapper that pins it, becomes
the child subreaper (so processes the driver forks and never waits for are
still reaped, and their CPU reaches ``os.wait4``), and is stopped as a process
group (TERM, then KILL) when it overruns its deadline or the harness is
interrupted.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from hdrh.histogram import HdrHistogram

from .base import HIST_HIGHEST_US, HIST_LOWEST_US, new_histogram

__all__ = ["DriverError", "BoundedRun", "run_bounded", "usable_cpus", "histogram_from_percentiles"]


class DriverError(RuntimeError):
    """A load driver could not produce a result (not installed, failed, overran, wrote nothing).

    ``stderr_tail`` holds the end of the driver's stderr; it is also part of
    the message, so the harness can record the failed cell with its cause.
    """

    def __init__(self, message: str, *, stderr_tail: str = "", returncode: int | None = None,
                 command: Sequence[str] | None = None) -> None:
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        self.command = list(command) if command is not None else None
        full = message
        if stderr_tail.strip():
            full += "\n--- stderr (tail) ---\n" + stderr_tail.rstrip()
        super().__init__(full)


# --------------------------------------------------------------------------
# running a driver process tree, bounded, with its CPU


# Runs as `python -I -S -c _WRAPPER CPUS REPORT ARGV...`, the session leader
# of the driver's process group: pins itself (children inherit it), becomes
# the child subreaper (so the processes locust forks are reaped here even when
# their parent does not wait for them, and their CPU reaches os.wait4 in the
# caller), spawns ARGV with default signal dispositions, waits for every
# descendant, writes its own CPU and the child's exit status to REPORT and
# exits with the child's status.
_WRAPPER = r"""
import ctypes, json, os, resource, signal, sys
cpus, report, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
if cpus:
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
try:
    reaper = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
except Exception:
    reaper = False
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's TERM is for the driver; we wait for it
signal.signal(signal.SIGINT, signal.SIG_IGN)
reset = [s for s in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, getattr(signal, "SIGXFSZ", None)) if s]
code = 127
try:
    pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=reset)
except OSError as exc:
    sys.stderr.write(f"cannot run {argv[0]}: {exc}\n")
    pid = None
while pid is not None:
    try:
        p, status = os.wait()
    except ChildProcessError:
        break
    if p == pid:
        code = os.waitstatus_to_exitcode(status)
ru = resource.getrusage(resource.RUSAGE_SELF)
with open(report + ".tmp", "w") as f:
    json.dump({"child_exit": code, "self_cpu": ru.ru_utime + ru.ru_stime, "subreaper": reaper}, f)
os.replace(report + ".tmp", report)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class BoundedRun:
    """Outcome of :func:`run_bounded`."""

    returncode: int  # the driver's exit status (negative: killed by that signal)
    cpu_seconds: float  # user + system CPU of the driver and every descendant it had
    wall_seconds: float
    stdout: str
    stderr: str
    subreaper: bool  # False: descendants orphaned by the driver were not reaped (their CPU is missing)


def usable_cpus(cpus: Iterable[int] | None) -> int:
    """How many CPUs a driver pinned to ``cpus`` (None: this process's affinity) can run on."""
    if cpus is not None:
        return max(1, len(set(cpus)))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` (our child) has exited, without reaping it; False on timeout."""
    deadline = time.monotonic() + max(0.0, timeout)
    fd = None
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = None
    try:
        while True:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid == pid:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(0.02, left))
    finally:
        if fd is not None:
            os.close(fd)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_bounded(
    argv: Sequence[str],
    *,
    deadline: float,
    workdir: str | os.PathLike,
    cpus: Iterable[int] | None = None,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    term_grace: float = 5.0,
) -> BoundedRun:
    """Run ``argv`` as a process tree in its own session, bounded by ``deadline`` seconds.

    The tree runs under a small reaper wrapper (``_WRAPPER``): the group is
    pinned to ``cpus`` before the driver starts, every descendant is reaped
    inside the tree, and ``os.wait4`` on the wrapper then gives the CPU of the
    driver and all its descendants (the wrapper's own startup CPU is
    subtracted).  stdout and stderr go to files in ``workdir``.  If the tree
    is still running at the deadline, its process group gets SIGTERM, then
    SIGKILL after ``term_grace`` seconds, and :class:`DriverError` is raised;
    an exception during the wait (KeyboardInterrupt) stops the tree the same
    way before it propagates.  Processes left in the group after the driver
    exits are killed too.
    """
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    out_path, err_path, rep_path = work / "driver.stdout", work / "driver.stderr", work / "wrapper.json"
    rep_path.unlink(missing_ok=True)
    cpu_arg = ",".join(str(int(c)) for c in sorted(set(cpus))) if cpus is not None else ""
    cmd = [sys.executable, "-I", "-S", "-c", _WRAPPER, cpu_arg, str(rep_path), *argv]
    started = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                                env=dict(env) if env is not None else None, start_new_session=True)
    pid = pgid = proc.pid  # the wrapper leads its own session and process group

    def stop_tree() -> None:
        _killpg(pgid, signal.SIGTERM)
        if not _wait_exit(pid, term_grace):
            _killpg(pgid, signal.SIGKILL)
            _wait_exit(pid, 10.0)

    overran = False
    try:
        if not _wait_exit(pid, deadline):
            overran = True
            stop_tree()
    except BaseException:  # interrupted (Ctrl-C): the tree must not outlive this call
        stop_tree()
        raise
    finally:
        # The wrapper has exited (or is being killed here) and stays a zombie until wait4, so
        # its pgid cannot be reused yet: kill whatever is left in the group, then reap it.
        _killpg(pgid, signal.SIGKILL)
        _, status, ru = os.wait4(pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    stdout, stderr = _read(out_path), _read(err_path)
    if overran:
        raise DriverError(f"{argv[0]} overran its deadline of {deadline:.0f} s and was stopped",
                          stderr_tail=_tail(stderr), returncode=proc.returncode, command=argv)
    try:
        rep = json.loads(rep_path.read_text())
    except (OSError, ValueError):
        rep = {}
    total = ru.ru_utime + ru.ru_stime
    code = rep.get("child_exit", proc.returncode)
    return BoundedRun(returncode=int(code), cpu_seconds=max(0.0, total - float(rep.get("self_cpu", 0.0))),
                      wall_seconds=wall, stdout=stdout, stderr=stderr, subreaper=bool(rep.get("subreaper")))


# --------------------------------------------------------------------------
# histogram rebuilt from percentiles (the CSV fallback; wrk when its spectrum is too costly)


def histogram_from_percentiles(points: Iterable[tuple[float, float]], total: int) -> HdrHistogram:
    """An approximate HdrHistogram of ``total`` values from (percentile, value in us) points.

    Each percentile's value is recorded with the count between it and the
    previous percentile (``round(total * p / 100)`` minus the same for the
    previous point), i.e. every value is placed at the *upper* end of its
    step.  The rebuilt histogram reproduces each given percentile (to the
    histogram's 3 digits) and the total count; values between two given
    percentiles are pushed up to the higher one, so the shape between them is
    lost.  Points with no value (None, NaN) are skipped.
    """
    hist = new_histogram()
    pts = sorted((float(p), float(v)) for p, v in points if v is not None and not math.isnan(float(v)))
    if total <= 0 or not pts:
        return hist
    prev_cum = 0
    for p, v in pts:
        cum = min(total, max(prev_cum, int(round(total * min(p, 100.0) / 100.0))))
        n = cum - prev_cum
        if n > 0:
            hist.record_value(min(HIST_HIGHEST_US, max(HIST_LOWEST_US, int(round(v)))), n)
        prev_cum = cum
    if prev_cum < total:  # percentiles that stop short of 100: the rest at the last value
        hist.record_value(min(HIST_HIGHEST_US, max(HIST_LOWEST_US, int(round(pts[-1][1])))), total - prev_cum)
    return hist


