"""What every load driver returns: :class:`DriverResult`.

The harness runs three drivers -- the built-in ``loadgen`` (closed and open
loop), ``locust`` (a subprocess) and ``wrk`` (a subprocess, when on PATH) --
and tabulates them side by side, so they all report the same figures:

* ``requests``: complete responses of any status; ``status_counts`` by code;
  ``errors`` by kind (connect, timeout, reset, closed_early, protocol, ...);
* ``duration`` (measured seconds) and so ``rps``; ``timeline``: responses
  completed in each whole second of the run, for throughput over time;
* ``histogram``: latency in microseconds as an HdrHistogram (1 us .. 60 s, 3
  significant digits).  Histograms of trials and processes are *added*,
  never averaged.  In ``mode="open"`` latency runs from each request's
  intended send time (no coordinated omission); in ``"closed"`` from the
  actual send, which understates the tail;
* the driver's own CPU: ``driver_cpu_seconds`` and ``driver_cpu_fraction``
  (seconds / (duration x processes)).  Above 0.9 the run is
  ``generator_bound``: the figure is the driver's capacity, not the server's;
* per-connection accounting where the driver can do it (``per_connection``,
  ``starved_connections``); ``None`` where it cannot (wrk, locust), which
  the tables show as "unknown", never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

__all__ = ["DriverResult", "new_histogram", "GENERATOR_BOUND_FRACTION",
           "HIST_LOWEST_US", "HIST_HIGHEST_US", "HIST_DIGITS"]

# Histogram range: 1 us .. 60 s, 3 significant digits.
HIST_LOWEST_US = 1
HIST_HIGHEST_US = 60_000_000
HIST_DIGITS = 3
#: above this fraction of its CPUs the driver, not the server, set the pace (docs/performance.md, "Measuring honestly")
GENERATOR_BOUND_FRACTION = 0.9


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds, 1 us .. 60 s, 3 digits."""
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_DIGITS)


@dataclass
class DriverResult:
    """Outcome of one driver run (merged over the driver's processes)."""

    requests: int  # complete responses, of any status
    status_counts: dict[int, int]
    errors: dict[str, int]
    duration: float  # measured seconds
    per_connection: list[int] | None  # responses per connection slot; None: the driver cannot tell
    starved_connections: int | None  # slots with zero responses; None: unknown
    reconnects: int
    histogram: HdrHistogram  # latency, microseconds
    driver_cpu_seconds: float
    driver_cpu_fraction: float  # cpu seconds / (duration * processes)
    cpus: list[int] | None  # CPU of each driver process, when pinned
    processes: int = 1
    closed_idle: int = 0  # unannounced keep-alive closes (see loadgen's module doc)
    requests_sent: int = 0
    connections: int = 0
    url: str = ""
    driver: str = "loadgen"
    mode: str = "closed"  # "closed" (N connections, one request each in flight) or "open" (fixed arrival rate)
    target_rate: float | None = None  # open loop: intended requests/s
    timeline: list[int] = field(default_factory=list)  # responses completed in second 0, 1, 2, ...
    late_sends: int = 0  # open loop: requests sent after their intended time because every connection was busy
    extra: dict = field(default_factory=dict)  # driver-specific figures (e.g. locust's own stats)

    @property
    def rps(self) -> float:
        """Complete responses per second over the measured duration."""
        return self.requests / self.duration if self.duration > 0 else 0.0

    @property
    def error_count(self) -> int:
        """All errors, of every kind."""
        return sum(self.errors.values())

    @property
    def non_2xx(self) -> int:
        """Responses whose status is not 2xx."""
        return sum(n for s, n in self.status_counts.items() if not 200 <= s < 300)

    @property
    def generator_bound(self) -> bool:
        """The driver used > 90% of its CPUs: the figure is the driver's, not the server's."""
        return self.driver_cpu_fraction > GENERATOR_BOUND_FRACTION

    @property
    def ok(self) -> bool:
        """No errors, only 2xx, and no connection slot known to be starved."""
        return (
            self.requests > 0
            and self.error_count == 0
            and self.non_2xx == 0
            and not self.starved_connections
        )

    def percentile(self, p: float) -> float:
        """Latency at percentile ``p`` (0-100), microseconds."""
        if self.histogram.get_total_count() == 0:
            return 0.0
        return float(self.histogram.get_value_at_percentile(p))

    def to_dict(self) -> dict:
        """A JSON-ready document (the histogram HdrHistogram-encoded, base64 text)."""
        h = self.histogram
        empty = h.get_total_count() == 0
        enc = h.encode()
        return {
            "driver": self.driver,
            "mode": self.mode,
            "target_rate": self.target_rate,
            "url": self.url,
            "connections": self.connections,
            "processes": self.processes,
            "requests": self.requests,
            "requests_sent": self.requests_sent,
            "rps": self.rps,
            "duration": self.duration,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "errors": dict(sorted(self.errors.items())),
            "ok": self.ok,
            "per_connection": None if self.per_connection is None else list(self.per_connection),
            "starved_connections": self.starved_connections,
            "reconnects": self.reconnects,
            "closed_idle": self.closed_idle,
            "late_sends": self.late_sends,
            "driver_cpu_seconds": self.driver_cpu_seconds,
            "driver_cpu_fraction": self.driver_cpu_fraction,
            "generator_bound": self.generator_bound,
            "cpus": self.cpus,
            "timeline": list(self.timeline),
            "latency_us": {
                "p50": self.percentile(50),
                "p90": self.percentile(90),
                "p99": self.percentile(99),
                "p99.9": self.percentile(99.9),
                "max": 0 if empty else h.get_max_value(),
                "count": h.get_total_count(),
                "hdr": enc.decode("ascii") if isinstance(enc, bytes) else enc,
            },
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DriverResult":
        """The inverse of :meth:`to_dict` (for reports regenerated from a results document)."""
        lat = d.get("latency_us") or {}
        hdr = lat.get("hdr")
        hist = HdrHistogram.decode(hdr) if hdr else new_histogram()
        return cls(
            requests=d["requests"],
            status_counts={int(k): v for k, v in d.get("status_counts", {}).items()},
            errors=dict(d.get("errors", {})),
            duration=d["duration"],
            per_connection=d.get("per_connection"),
            starved_connections=d.get("starved_connections"),
            reconnects=d.get("reconnects", 0),
            histogram=hist,
            driver_cpu_seconds=d.get("driver_cpu_seconds", 0.0),
            driver_cpu_fraction=d.get("driver_cpu_fraction", 0.0),
            cpus=d.get("cpus"),
            processes=d.get("processes", 1),
            closed_idle=d.get("closed_idle", 0),
            requests_sent=d.get("requests_sent", 0),
            connections=d.get("connections", 0),
            url=d.get("url", ""),
            driver=d.get("driver", "loadgen"),
            mode=d.get("mode", "closed"),
            target_rate=d.get("target_rate"),
            timeline=list(d.get("timeline", [])),
            late_sends=d.get("late_sends", 0),
            extra=dict(d.get("extra", {})),
        )


def subprocess_result(*, driver: str, requests: int, status_counts: dict, errors: dict, duration: float,
                      histogram: HdrHistogram, cpu_seconds: float, parallelism: int, cpus, processes: int,
                      connections: int, url: str, timeline: list, extra: dict) -> DriverResult:
    """A closed-loop :class:`DriverResult` of an external driver (wrk, locust) run as a subprocess.

    Such drivers report neither per-connection counts nor starved
    connections; the CPU fraction divides the tree's CPU by the duration
    times the CPUs it could use in parallel (``parallelism``).
    """
    return DriverResult(
        requests=requests, status_counts=dict(sorted(status_counts.items())), errors=dict(sorted(errors.items())),
        duration=duration, per_connection=None, starved_connections=None, reconnects=0, histogram=histogram,
        driver_cpu_seconds=cpu_seconds,
        driver_cpu_fraction=cpu_seconds / (duration * parallelism) if duration > 0 else 0.0,
        cpus=sorted(set(cpus)) if cpus is not None else None, processes=max(1, processes),
        connections=connections, url=url, driver=driver, mode="closed", timeline=timeline, extra=extra)
