"""The sampled series and its windows: per-phase CPU, PSS, threads, fds, slopes and marks."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass


from .process import COLUMNS, FORMAT_VERSION


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
