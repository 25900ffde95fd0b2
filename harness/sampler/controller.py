"""The harness side of the sampler: start its process, mark phases, stop it and read the series."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterable

import psutil

from .process import DEFAULT_INTERVAL, DEFAULT_MAX_SECONDS, DEFAULT_PSS_INTERVAL
from .series import SamplerSeries


#: the project root: the sampler process runs from here (``python -m harness.sampler``)
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SamplerError(RuntimeError):
    """The sampler process failed, died or did not answer in time."""


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
