"""The MPM advisor's rules: a workload and measurements in, a recommendation out (no I/O, no servers).

``harness advise`` (harness/advisor.py) measures the candidates and calls
:func:`recommend`; everything that decides lives here, so the tests can drive
every rule with synthetic measurements.  The rules, in the order they are
tried (docs/advisor.md has the httpd references):

1. ``thread-unsafe`` -- an application not known to be thread-safe gets
   prefork, the only MPM that runs one request per process.  Its memory at
   the MaxRequestWorkers the workload needs is checked against the budget; if
   it is over, MaxRequestWorkers is sized down to what fits and the shortfall
   is named.
2. ``waiting-clients`` -- many idle keep-alive clients (share >=
   :data:`KEEPALIVE_MANY`) or slow/mobile clients: event, whose listener
   parks idle keep-alive connections and finishes writes to slow readers
   without holding a worker -- unless the measurements show it cannot answer
   the idle load, or its memory is over the budget; then rule 3 decides
   without it.  A slow *sender* still holds a worker on httpd's event (as on
   prefork and worker): there RequestReadTimeout (mod_reqtimeout) is the
   protection; only mpm-harness's event reads request heads in its listener.
3. ``best-fit`` -- among the candidates that were measured valid, answered
   the idle load and fit the memory budget: the best throughput; within
   :data:`TIE` of it, the lower memory unless within max(:data:`TIE`,
   :data:`MEMORY_TIE_MIB`); both within their bands is a tie, reported as
   such: the lower CPU per request (:data:`TIE`), then the simpler model
   (worker, event, prefork) choose.  The throughput band widens to the trials'
   spread, or to :data:`NOISY_TIE` for a single trial flagged noisy: such a
   trial cannot tell 10 % apart.
4. ``nothing-fits`` -- every valid candidate is over the budget: the one
   with the least memory, sized down where it can be, with the shortfall.
5. ``no-measurements`` -- nothing usable was measured: httpd's own default on
   Linux, event (the recommendation says it rests on no evidence).

Memory is always PSS (proportional set size), never summed RSS: a prefork
child shares the interpreter and the application's code with its siblings,
and summed RSS would count those pages once per child.  A tree's PSS is a
shared part plus each process's private part, so PSS at another size is
projected as ``measured PSS - (measured processes - N) x private per
process``, the private part being the tree's summed USS / processes
(:func:`projected_pss`); proportional scaling is only the fallback when no
USS was measured, and a projected figure is always called projected.

Reference servers (httpd's ``apache-*`` launchers in a ``--from-run`` run)
are marked ``reference`` and never enter the decision: their figures come
from httpd's own configuration, not from the sizing advised here.

Peers (the same app on uWSGI, granian, gunicorn, waitress or httpd + mod_wsgi,
marked ``peer``) never enter the rules either; once the rules have chosen,
:mod:`harness.advice_peers` compares the choice with them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from servers.mpm import MPM_NAMES

__all__ = [
    "AdviceError", "Workload", "Measurement", "Sizing", "Alternative", "Recommendation", "RULES",
    "KEEPALIVE_MANY", "IDLE_ANSWERED_MIN", "TIE", "NOISY_TIE", "MEMORY_TIE_MIB", "throughput_band", "MPMS",
    "SLOW_CLIENT_RRT", "SHORT_KEEPALIVE",
    "recommend", "size", "size_prefork", "size_worker", "size_event", "event_factor", "projected_pss",
    "PssModel", "pss_model", "pss_basis", "by_mpm", "check_workload", "idle_text", "fmt",
]

MPMS = MPM_NAMES
#: a keep-alive share at or above this is "many idle keep-alive clients" (rule 2)
KEEPALIVE_MANY = 0.5
#: a candidate that answered fewer of the idle connections than this cannot hold the idle load
IDLE_ANSWERED_MIN = 0.99
#: relative difference within which two measured figures are a tie (5 %)
TIE = 0.05
#: the throughput tie for a single trial the quiet-machine check flagged noisy
NOISY_TIE = 0.15
#: memory is a tie within max(TIE, this many MiB): PSS moves by 1-2 MiB between runs on this machine
MEMORY_TIE_MIB = 2.0
#: mod_reqtimeout's documented example for a header limit with a minimum rate, and its default body stage
SLOW_CLIENT_RRT = "header=10-30,MinRate=500 body=20,MinRate=500"
#: KeepAliveTimeout (s) for prefork and worker when idle or slow clients pin a process/thread (httpd
#: default: 5); never for event, where a parked keep-alive connection is cheap and a mobile client
#: loses most from reconnecting
SHORT_KEEPALIVE = 2
#: ThreadLimit's default: above it ThreadLimit must be raised with ThreadsPerChild
THREAD_LIMIT_DEFAULT = 64
#: event: worker threads per process beyond the active connections, so the listener keeps accepting
EVENT_HEADROOM = 1.25
#: the order of the last tie-break: the simplest model that does the job first
SIMPLICITY = ("worker", "event", "prefork")

#: rule id -> what the rule says and where httpd documents the behaviour it rests on
RULES: dict[str, str] = {
    "thread-unsafe": (
        "The application is not known to be thread-safe, so only prefork qualifies: it runs one request per "
        "process. httpd's prefork documentation: it 'is appropriate for sites that need to avoid threading for "
        "compatibility with non-thread-safe libraries'; worker and event serve several requests per process at "
        "once, on threads."),
    "waiting-clients": (
        "Many idle keep-alive clients or slow clients: event. httpd's event documentation: its listener thread "
        "handles 'all sockets that are in a Keep Alive state', so an idle connection holds no worker thread, "
        "where prefork pins a process and worker a thread for up to KeepAliveTimeout; it also finishes writing "
        "responses to slow readers (write completion) and does the lingering close without a worker. A slow "
        "sender is another matter: httpd's event, like prefork and worker, holds a worker while a client sends "
        "its request head and body, so on httpd the protection against slow senders (slowloris) is "
        "mod_reqtimeout's RequestReadTimeout, on every MPM. Only mpm-harness's event reads request heads in its "
        "listener, so there a slow sender holds no worker."),
    "best-fit": (
        "Among the candidates measured valid that answered the idle load and fit the memory budget (PSS): the "
        "highest throughput; within 5 % of it (wider when the trials are noisy), the lower memory, unless the "
        "memory is within max(5 %, 2 MiB) too: then it is a tie, reported as such, which the lower CPU per "
        "request (5 %) and then the simpler model (worker, event, prefork) break; the alternative is equally "
        "good within the measurement noise."),
    "nothing-fits": (
        "No valid candidate fits the memory budget: the one with the least memory (PSS), sized down where its "
        "model allows, with the shortfall named."),
    "no-measurements": (
        "Nothing usable was measured: httpd's own default MPM on Linux, event (httpd picks event where the "
        "platform supports it). This rests on no evidence; measure."),
}


class AdviceError(ValueError):
    """Bad advisor input; the message names the flag or the file and key."""


@dataclass(frozen=True)
class Workload:
    """What the user told us about the workload.

    ``concurrency`` is the number of requests in flight at the peak (the
    closed-loop profile drives that many connections); ``keepalive_share``
    of those clients also keep an idle keep-alive connection open between
    requests, so the server holds ``idle_connections`` more at the same time.
    """

    thread_safe: str = "unknown"  # yes | no | unknown (unknown is treated as no)
    keepalive_share: float = 0.0
    slow_clients: bool = False
    memory_budget_mib: float | None = None
    concurrency: int = 50
    app: str = ""
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    path: str = "/"
    profile: str = ""  # --from-run: the closed-loop profile the figures come from ("": the advisor's default)
    source: str = field(default="workload", repr=False, compare=False)  # named in validation errors

    def __post_init__(self) -> None:
        check_workload(self, self.source)

    @property
    def threads_ok(self) -> bool:
        """True only when the user said the app is thread-safe."""
        return self.thread_safe == "yes"

    @property
    def idle_connections(self) -> int:
        """Idle keep-alive connections held beside the active ones: share x concurrency."""
        return round(self.keepalive_share * self.concurrency)

    @property
    def waiting_clients(self) -> bool:
        """Rule 2's trigger: many idle keep-alive clients or slow clients."""
        return self.keepalive_share >= KEEPALIVE_MANY or self.slow_clients

    def to_dict(self) -> dict:
        """JSON-ready, with the derived idle-connection count."""
        d = asdict(self)
        d.pop("source")
        return {**d, "idle_connections": self.idle_connections}


def check_workload(w: Workload, source: str = "workload") -> None:
    """Raise :class:`AdviceError` naming the field when a workload value is out of range."""
    if w.thread_safe not in ("yes", "no", "unknown"):
        raise AdviceError(f"{source}: thread_safe must be yes, no or unknown, not {w.thread_safe!r}")
    if not 0.0 <= w.keepalive_share <= 1.0:
        raise AdviceError(f"{source}: keepalive_share must be between 0 and 1, not {w.keepalive_share!r}")
    if not 1 <= w.concurrency <= 5000:
        raise AdviceError(f"{source}: concurrency must be between 1 and 5000, not {w.concurrency!r}")
    if w.memory_budget_mib is not None and not w.memory_budget_mib > 0:
        raise AdviceError(f"{source}: memory_budget must be > 0 MiB, not {w.memory_budget_mib!r}")
    if not 1 <= w.cores <= 1024:
        raise AdviceError(f"{source}: cores must be between 1 and 1024, not {w.cores!r}")
    if not w.path.startswith("/"):
        raise AdviceError(f"{source}: path must start with '/', not {w.path!r}")


@dataclass(frozen=True)
class Measurement:
    """One candidate server's measured figures (medians); any figure may be missing (None).

    ``status`` is the closed-loop profile's: ``ok``, ``invalid`` (errors,
    non-2xx, starved connections), ``failed``, ``skipped`` or ``missing``.
    ``processes`` is how many child processes ran while it was measured, so
    memory can be projected to another size.
    """

    label: str
    mpm: str
    status: str = "ok"
    reason: str = ""
    processes: int | None = None
    connections: int | None = None
    rps: float | None = None
    cpu_us_per_request: float | None = None
    p99_ms: float | None = None
    pss_peak_mib: float | None = None
    rss_peak_mib: float | None = None
    idle_connections: int | None = None  # None: no idle profile measured
    idle_answered_fraction: float | None = None
    pss_per_idle_conn_kib: float | None = None
    idle_pss_peak_mib: float | None = None
    idle_status: str = ""
    #: the tree's summed USS / its processes (parent included): the private memory one process more or fewer
    #: adds or saves (None: not measured; memory is then projected proportionally)
    uss_per_process_mib: float | None = None
    #: a reference server (httpd's apache-*): shown, never used in the decision
    reference: bool = False
    #: a peer: another server running the same app on the model ``mpm`` (uWSGI, granian, mod_wsgi...);
    #: never one of the rules' candidates, compared with the recommendation afterwards (:func:`compare_peers`)
    peer: bool = False
    server: str = ""  # the launcher name ("" when it is the label)
    app: str = ""  # the WSGI app it served ("" for the built-in one)
    flags: tuple[str, ...] = ()
    trials: int = 1  # ok trials behind the medians
    rps_spread: float | None = None  # (max - min) / median of requests/s over the ok trials (2 or more)
    noisy: bool = False  # the quiet-machine check flagged a trial (other processes used the CPU)

    @property
    def valid(self) -> bool:
        """The closed-loop profile was measured and valid."""
        return self.status == "ok" and self.rps is not None

    @property
    def pss_mib(self) -> float | None:
        """The highest PSS seen under either profile."""
        peaks = [p for p in (self.pss_peak_mib, self.idle_pss_peak_mib) if p is not None]
        return max(peaks) if peaks else None

    @property
    def idle_answered(self) -> float | None:
        """How many idle connections it answered (None: not measured)."""
        if self.idle_answered_fraction is None or self.idle_connections is None:
            return None
        return self.idle_answered_fraction * self.idle_connections

    def holds_idle(self, needed: int) -> bool | None:
        """Whether it answered ``needed`` idle connections, as far as measured (None: not measured).

        A run that opened more idle connections than needed counts answers
        (prefork with 50 children answers 50 of 200); one that opened fewer can
        only vouch for its own fraction.
        """
        answered = self.idle_answered
        if answered is None:
            return None
        return answered >= IDLE_ANSWERED_MIN * min(needed, self.idle_connections)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {**asdict(self), "flags": list(self.flags), "pss_mib": self.pss_mib}


@dataclass(frozen=True)
class Sizing:
    """The directives for one MPM sized for a workload (Apache names, in httpd.conf order)."""

    mpm: str
    directives: dict[str, Any]
    processes: int  # child processes at full size
    workers: int  # MaxRequestWorkers
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"mpm": self.mpm, "directives": dict(self.directives), "processes": self.processes,
                "workers": self.workers, "notes": list(self.notes)}


@dataclass(frozen=True)
class Alternative:
    """An MPM not recommended, and why."""

    mpm: str
    label: str
    why: str


@dataclass(frozen=True)
class Recommendation:
    """The advisor's answer: the MPM, the rule that decided, the evidence, the alternatives, the config."""

    mpm: str
    label: str  # the measured server it rests on ("" when none)
    rule: str  # a key of RULES
    decision: str  # the sentence, with the figures, that decided
    evidence: tuple[str, ...]
    rejected: tuple[Alternative, ...]
    warnings: tuple[str, ...]
    sizing: Sizing

    @property
    def rule_text(self) -> str:
        """The rule's general statement and its httpd reference."""
        return RULES[self.rule]

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"mpm": self.mpm, "label": self.label, "rule": self.rule, "rule_text": self.rule_text,
                "decision": self.decision, "evidence": list(self.evidence),
                "rejected": [asdict(a) for a in self.rejected], "warnings": list(self.warnings),
                "sizing": self.sizing.to_dict()}


# -- sizing ---------------------------------------------------------------------------------------


def _timeouts(w: Workload, idle_pins_worker: bool) -> dict[str, Any]:
    """KeepAliveTimeout and RequestReadTimeout for the clients described.

    KeepAliveTimeout is shortened only where an idle or slow client pins a
    process or thread (prefork, worker).  event parks keep-alive connections
    cheaply, and a mobile client loses most from reconnecting, so event keeps
    httpd's 5 s; slow senders are bounded by RequestReadTimeout on every MPM.
    """
    out: dict[str, Any] = {}
    if idle_pins_worker and (w.slow_clients or w.idle_connections):
        out["KeepAliveTimeout"] = SHORT_KEEPALIVE
    if w.slow_clients:
        out["RequestReadTimeout"] = SLOW_CLIENT_RRT
    return out


def size_prefork(w: Workload, limit: int | None = None) -> Sizing:
    """prefork: one child per connection, the idle keep-alive ones included (each pins a child).

    ``limit`` caps MaxRequestWorkers (the memory budget). StartServers and
    MinSpareServers pre-fork the expected active load (prefork forks at most
    1, 2, 4 .. 32 children a second beyond it); MaxSpareServers a quarter more.
    """
    need = w.concurrency + w.idle_connections
    mrw = max(1, min(need, limit)) if limit is not None else need
    start = min(mrw, w.concurrency)
    d: dict[str, Any] = {"ServerLimit": mrw, "StartServers": start, "MinSpareServers": start,
                         "MaxSpareServers": start + max(1, start // 4), "MaxRequestWorkers": mrw}
    d.update(_timeouts(w, idle_pins_worker=True))
    notes = [f"MaxRequestWorkers {mrw}: {w.concurrency} active + {w.idle_connections} idle keep-alive "
             f"connections, one child each" + (f" (capped at {limit} by the memory budget)" if mrw < need else "")]
    return Sizing("prefork", d, processes=mrw, workers=mrw, notes=tuple(notes))


def _threaded(w: Workload, workers_needed: int) -> tuple[dict[str, Any], int, int]:
    """ServerLimit = cores (the GIL: one process runs Python on one core at a time), threads for the rest."""
    procs = max(1, w.cores)
    tpc = max(1, math.ceil(workers_needed / procs))
    mrw = procs * tpc
    d: dict[str, Any] = {"ServerLimit": procs}
    if tpc > THREAD_LIMIT_DEFAULT:
        d["ThreadLimit"] = tpc
    d.update({"StartServers": procs, "MinSpareThreads": tpc, "MaxSpareThreads": max(mrw, 2 * tpc + 1),
              "ThreadsPerChild": tpc, "MaxRequestWorkers": mrw})
    return d, procs, tpc


def size_worker(w: Workload) -> Sizing:
    """worker: processes = cores, one thread per connection, the idle keep-alive ones included."""
    need = w.concurrency + w.idle_connections
    d, procs, tpc = _threaded(w, need)
    d.update(_timeouts(w, idle_pins_worker=True))
    notes = (f"ServerLimit {procs} = CPU cores: CPython's GIL runs one thread of a process at a time, so "
             f"processes give CPU parallelism and threads give concurrency",
             f"MaxRequestWorkers {procs * tpc} >= {w.concurrency} active + {w.idle_connections} idle keep-alive "
             f"connections (each holds a thread)",
             "MaxSpareThreads >= MaxRequestWorkers: no child is stopped for being idle")
    return Sizing("worker", d, processes=procs, workers=procs * tpc, notes=notes)


def event_factor(active: int, idle: int, procs: int, tpc: int) -> float:
    """AsyncRequestWorkerFactor so that each process accepts its share of active + idle connections.

    A child accepts while ``open < ThreadsPerChild + idle workers x factor``
    (httpd's event; docs/event.md).  With ``a`` active and ``k`` idle
    connections per process: ``k + a < tpc + (tpc - a) x factor``.  The result
    has a quarter of margin, is rounded up to 0.5, and is never below httpd's
    default of 2.
    """
    a = math.ceil(active / procs)
    k = math.ceil(idle / procs)
    spare = max(1, tpc - a)
    needed = (k + a - tpc) / spare
    return max(2.0, math.ceil(needed * 1.25 * 2) / 2)


def size_event(w: Workload) -> Sizing:
    """event: processes = cores, threads for the active connections (+25 %), idle ones parked in the listener."""
    per_process = math.ceil(w.concurrency / max(1, w.cores))
    headroom = max(per_process + 1, math.ceil(per_process * EVENT_HEADROOM))
    d, procs, tpc = _threaded(w, headroom * max(1, w.cores))
    factor = event_factor(w.concurrency, w.idle_connections, procs, tpc)
    d["AsyncRequestWorkerFactor"] = factor
    d.update(_timeouts(w, idle_pins_worker=False))
    cap = procs * tpc * (1 + factor)
    notes = (f"ServerLimit {procs} = CPU cores (the GIL), ThreadsPerChild {tpc}: {w.concurrency} active "
             f"connections + 25 % (at least one) so the listener always has an idle worker to accept with",
             f"AsyncRequestWorkerFactor {factor:g}: up to ~{cap:.0f} open connections with every worker idle, "
             f"for {w.concurrency} active + {w.idle_connections} idle keep-alive (parked, no thread held)")
    return Sizing("event", d, processes=procs, workers=procs * tpc, notes=notes)


def size(mpm: str, w: Workload, limit: int | None = None) -> Sizing:
    """The sized directives of ``mpm`` for workload ``w`` (``limit`` caps prefork's MaxRequestWorkers)."""
    if mpm == "prefork":
        return size_prefork(w, limit)
    if mpm == "worker":
        return size_worker(w)
    if mpm == "event":
        return size_event(w)
    raise AdviceError(f"unknown MPM {mpm!r} (one of {', '.join(MPMS)})")


# -- memory ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PssModel:
    """PSS(N) = ``base`` + N x ``per`` for a tree of N children (worker/event: N processes) and its parent."""

    base: float  # MiB: the shared part (interpreter, app code), the parent included
    per: float  # MiB per child: its private memory (USS), or the proportional share without USS
    measured_pss: float
    measured_processes: int
    private: bool  # True: ``per`` is measured private memory (USS); False: the proportional fallback

    def at(self, processes: int) -> float:
        """Projected PSS (MiB) with ``processes`` children."""
        return self.base + processes * self.per

    def fit(self, budget: float) -> int:
        """The most children whose projected PSS is within ``budget`` (0: not even one)."""
        return max(0, math.floor((budget - self.base) / self.per + 1e-9)) if self.per > 0 else 0


def pss_model(m: Measurement | None) -> PssModel | None:
    """How ``m``'s PSS changes with its process count (None: PSS or the process count not measured).

    A tree's PSS is its shared pages, counted once in all, plus each process's
    private pages (USS).  One child fewer saves that child's private memory,
    not a proportional share of the shared part: ``PSS(N) = measured PSS -
    (measured - N) x private per process``, the private part being the tree's
    summed USS / its processes.  Without USS, the fallback scales in
    proportion to processes + 1 (the parent): ``PSS x (N + 1) / (measured +
    1)``, which understates the memory of a smaller tree.
    """
    if m is None or m.pss_mib is None or not m.processes:
        return None
    n, pss = m.processes, m.pss_mib
    uss = m.uss_per_process_mib
    if uss is not None and 0 < uss:
        per = min(uss, pss / (n + 1))  # USS and PSS peaks come from different samples: keep base >= per
        return PssModel(pss - n * per, per, pss, n, private=True)
    per = pss / (n + 1)
    return PssModel(per, per, pss, n, private=False)


def projected_pss(m: Measurement | None, processes: int) -> float | None:
    """PSS (MiB) of ``m``'s server tree with ``processes`` children (:func:`pss_model`).

    The measured figure itself when the sizes match (or the measured process
    count is unknown); None when PSS was not measured.
    """
    if m is None or m.pss_mib is None:
        return None
    model = pss_model(m)
    if model is None or processes == model.measured_processes:
        return m.pss_mib
    return model.at(processes)


def pss_basis(m: Measurement | None, processes: int) -> str:
    """Where the PSS at ``processes`` comes from: measured at that size, or projected (and how)."""
    if m is None or m.pss_mib is None:
        return "not measured"
    unit, one = ("children", "child") if m.mpm == "prefork" else ("processes", "process")
    model = pss_model(m)
    if model is None:
        return f"measured {fmt(m.pss_mib, 1)} MiB, process count unknown, not projected"
    if processes == model.measured_processes:
        return f"measured {fmt(m.pss_mib, 1)} MiB with {model.measured_processes} {unit}"
    if model.private:
        how = f"{fmt(model.base, 1)} MiB shared + {fmt(model.per, 2)} MiB private (USS) per {one}"
    else:
        how = (f"proportionally, {fmt(model.per, 2)} MiB per process: no USS measured, so this "
               f"{'understates a smaller' if processes < model.measured_processes else 'overstates a larger'} "
               f"tree's memory")
    return (f"projected, not measured: from {fmt(m.pss_mib, 1)} MiB measured with {model.measured_processes} "
            f"{unit}, {how}")


def idle_text(m: Measurement, needed: int) -> str:
    """``answered 160 of 200 idle keep-alive connections (25 needed)``: what the idle profile measured."""
    text = f"answered {fmt(m.idle_answered)} of {m.idle_connections} idle keep-alive connections"
    return text + (f" ({needed} needed)" if needed != m.idle_connections else "")


def _kib(x: float | None) -> str:
    """KiB per idle connection; growth at or below zero is the sampler's noise, not a saving."""
    return "~0 (within the sampler's noise)" if x is not None and x <= 0 else fmt(x, 1)


def fmt(x: float | None, digits: int = 0) -> str:
    """A figure as the advice prints it: thousands separated, ``n/a`` when not measured."""
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _pct(a: float, b: float) -> str:
    return f"{(a - b) / b * 100:+.0f} %" if b else "n/a"


# -- the rules ------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """What the rules accumulate before the recommendation is frozen."""

    evidence: list[str] = field(default_factory=list)
    rejected: list[Alternative] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # evidence that goes last (reference servers, caveats)

    def reject(self, mpm: str, label: str, why: str) -> None:
        """Record an alternative not chosen (once per MPM)."""
        if all(a.mpm != mpm for a in self.rejected):
            self.rejected.append(Alternative(mpm, label, why))

    def freeze(self, mpm: str, label: str, rule: str, decision: str, sizing: Sizing) -> Recommendation:
        """The final recommendation."""
        return Recommendation(mpm=mpm, label=label, rule=rule, decision=decision,
                              evidence=tuple(self.evidence + self.notes),
                              rejected=tuple(a for a in self.rejected if a.mpm != mpm),
                              warnings=tuple(self.warnings), sizing=sizing)


def by_mpm(measurements: Mapping[str, Measurement]) -> dict[str, Measurement]:
    """The first measured server of each MPM (in the order given); reference servers and peers never count."""
    out: dict[str, Measurement] = {}
    for m in measurements.values():
        if not m.reference and not m.peer:
            out.setdefault(m.mpm, m)
    return out


def recommend(w: Workload, measurements: Mapping[str, Measurement]) -> Recommendation:
    """Apply the rules in order (module docstring) and return the recommendation."""
    ms = by_mpm(measurements)
    draft = _Draft()
    _workload_warnings(w, ms, draft)
    _reference_notes(measurements, ms, draft)
    _idle_note(w, ms, draft)
    if not w.threads_ok:
        return _rule_thread_unsafe(w, ms, draft)
    excluded: set[str] = set()
    if w.waiting_clients:
        rec = _rule_waiting_clients(w, ms, draft)
        if rec is not None:
            return rec
        excluded.add("event")
    return _rule_best_fit(w, ms, draft, excluded)


def _workload_warnings(w: Workload, ms: dict[str, Measurement], draft: _Draft) -> None:
    if w.thread_safe == "unknown":
        draft.warnings.append("thread safety unknown: treated as NOT thread-safe (rule thread-unsafe); "
                              "say --thread-safe yes if the app and every library it uses are thread-safe")
    for m in ms.values():
        if m.idle_connections is not None and m.idle_connections != w.idle_connections:
            draft.warnings.append(f"{m.label}'s idle profile held {m.idle_connections} connections, the workload "
                                  f"{w.idle_connections}: idle answers are counted against the workload's need")
            break
    for m in ms.values():
        if m.connections is not None and m.connections != w.concurrency:
            draft.warnings.append(f"{m.label} was measured at {m.connections} connections, the workload expects "
                                  f"{w.concurrency}: throughput may not carry over")
            break


def _reference_notes(measurements: Mapping[str, Measurement], ms: dict[str, Measurement], draft: _Draft) -> None:
    """Reference servers (httpd) are shown, labelled as such, and left out of the decision."""
    refs = [m for m in measurements.values() if m.reference]
    if not refs:
        return
    for m in refs:
        draft.notes.append(f"{m.label} (reference server, httpd {m.mpm}; NOT used in the decision): "
                              f"{fmt(m.rps)} req/s, PSS {fmt(m.pss_mib, 1)} MiB, status {m.status}")
    only = sorted({m.mpm for m in refs} - set(ms), key=MPMS.index)
    draft.warnings.append(
        "reference servers (" + ", ".join(m.label for m in refs) + ") run httpd with its own configuration, not "
        "the sizing advised here: their figures are shown for reference only and the decision rests on "
        "mpm-harness's own prefork/worker/event" + (f"; {', '.join(only)} had only a reference measurement, so "
                                                    f"{'it counts' if len(only) == 1 else 'they count'} as not "
                                                    f"measured" if only else ""))


def _idle_note(w: Workload, ms: dict[str, Measurement], draft: _Draft) -> None:
    """Say plainly that the idle connections were measured on their own, not under the closed-loop load."""
    if any(m.idle_connections for m in ms.values()):
        draft.notes.append(
            "the idle keep-alive connections were measured on their own, in a separate profile after the "
            "closed-loop load, not while it ran: 'answered' shows a server can hold that many idle connections, "
            "not that it holds them while every worker is busy (event's AsyncRequestWorkerFactor cap on open "
            "connections is not exercised; its value is derived, not measured)")


# rule 1 ------------------------------------------------------------------------------------------


def _rule_thread_unsafe(w: Workload, ms: dict[str, Measurement], draft: _Draft) -> Recommendation:
    why = ("runs several requests per process at once on threads: the app's shared state would be corrupted "
           "(it is not known to be thread-safe)")
    for mpm in ("worker", "event"):
        m = ms.get(mpm)
        extra = (f"; measured: {m.status}" + (f" ({m.reason})" if m.reason else "")) if m and not m.valid else ""
        draft.reject(mpm, m.label if m else "", why + extra)
    m = ms.get("prefork")
    sizing = size_prefork(w)
    decision = (f"prefork: the app is {'not thread-safe' if w.thread_safe == 'no' else 'of unknown thread safety'}; "
                f"MaxRequestWorkers {sizing.workers} for {w.concurrency} active + {w.idle_connections} idle "
                f"keep-alive connections")
    if m is None or not m.valid:
        draft.warnings.append("prefork was not measured validly" + (f" ({m.status}: {m.reason})" if m else "")
                              + ": its throughput and memory are unchecked")
    else:
        draft.evidence.append(_throughput_line(m))
    if m is not None and m.holds_idle(w.idle_connections) is False:
        draft.warnings.append(f"prefork {idle_text(m, w.idle_connections)} as measured")
    if w.idle_connections:
        draft.warnings.append(f"each idle keep-alive connection pins a prefork child: {w.idle_connections} of the "
                              f"{sizing.workers} children wait on idle clients; KeepAliveTimeout is lowered to "
                              f"{SHORT_KEEPALIVE} s to release them sooner")
    if w.slow_clients:
        draft.warnings.append("each slow client pins a prefork child while it sends its request (bounded by "
                              f"RequestReadTimeout {SLOW_CLIENT_RRT}); with many slow clients put a buffering "
                              "reverse proxy (e.g. httpd event + mod_proxy) in front of prefork")
    sizing, decision = _fit_prefork(w, m, sizing, decision, draft)
    return draft.freeze("prefork", m.label if m else "", "thread-unsafe", decision, sizing)


def _fit_prefork(w: Workload, m: Measurement | None, sizing: Sizing, decision: str, draft: _Draft
                 ) -> tuple[Sizing, str]:
    """Check prefork's PSS at the needed size against the budget; size it down if it is over.

    The smaller size is projected (:func:`pss_model`: each child fewer saves
    its private memory, the shared part stays), never measured, and the
    warning says so.
    """
    need_pss = projected_pss(m, sizing.processes)
    basis = pss_basis(m, sizing.processes)
    if w.memory_budget_mib is None:
        if need_pss is not None:
            draft.evidence.append(f"prefork at MaxRequestWorkers {sizing.workers}: ~{fmt(need_pss)} MiB PSS "
                                  f"({basis}); no memory budget given")
        return sizing, decision
    budget = w.memory_budget_mib
    if need_pss is None:
        draft.warnings.append(f"prefork's memory was not measured: the {fmt(budget)} MiB budget is unchecked")
        return sizing, decision
    if need_pss <= budget:
        draft.evidence.append(f"prefork at MaxRequestWorkers {sizing.workers}: ~{fmt(need_pss)} MiB PSS "
                              f"({basis}) fits the {fmt(budget)} MiB budget")
        return sizing, decision
    model = pss_model(m)
    if model is None:  # the process count is unknown: take the PSS as measured at the needed size
        per = need_pss / (sizing.processes + 1)
        model = PssModel(per, per, need_pss, sizing.processes, private=False)
    fit = max(1, min(model.fit(budget), sizing.workers - 1))
    fit_pss = model.at(fit)
    short = need_pss - budget
    how = (f"{fmt(model.base, 1)} MiB shared + {fmt(model.per, 2)} MiB private (USS) per child"
           if model.private else
           f"proportionally, {fmt(model.per, 2)} MiB per process: no USS was measured, and a proportional "
           f"projection understates a smaller tree's memory (it takes away a share of the shared pages too)")
    draft.evidence.append(f"prefork at MaxRequestWorkers {sizing.workers}: ~{fmt(need_pss)} MiB PSS "
                          f"({basis}) is over the {fmt(budget)} MiB budget by {fmt(short)} MiB")
    draft.warnings.append(
        f"memory: prefork needs ~{fmt(need_pss)} MiB PSS for MaxRequestWorkers {sizing.workers}; the budget is "
        f"{fmt(budget)} MiB, short by {fmt(short)} MiB. Sized down to MaxRequestWorkers {fit}: ~"
        f"{fmt(fit_pss)} MiB PSS, projected, not measured ({how}, from {fmt(model.measured_pss, 1)} MiB "
        f"measured with {model.measured_processes} children); connections beyond {fit} wait in the listen "
        f"backlog until a child is free. Raise the budget by {fmt(short)} MiB, or make the app thread-safe, to "
        f"serve all {sizing.workers} at once; measure at MaxRequestWorkers {fit} to confirm")
    if model.at(1) > budget:
        draft.warnings.append(f"even one prefork child (~{fmt(model.at(1))} MiB with the parent, projected) is "
                              f"over the budget")
    return size_prefork(w, limit=fit), decision + (f", sized down to {fit} to fit the memory budget (~"
                                                   f"{fmt(fit_pss)} MiB PSS projected, not measured)")


def _throughput_line(m: Measurement) -> str:
    return (f"{m.label}: {fmt(m.rps)} req/s, {fmt(m.cpu_us_per_request)} CPU-us/request, p99 "
            f"{fmt(m.p99_ms, 1)} ms, PSS {fmt(m.pss_mib, 1)} MiB ({m.processes} processes)")


# rule 2 ------------------------------------------------------------------------------------------


def _why_idle_pins(w: Workload, mpm: str, m: Measurement | None) -> str:
    s = size(mpm, w)
    unit = "child process" if mpm == "prefork" else "worker thread"
    parts = []
    if w.idle_connections:
        parts.append(f"each idle keep-alive connection pins a {unit} for up to KeepAliveTimeout: needs "
                     f"MaxRequestWorkers {s.workers} for {w.concurrency} active + {w.idle_connections} idle")
    if w.slow_clients:
        parts.append(f"a slow client holds a {unit} while it reads its response and between its requests, which "
                     f"event leaves to its listener (write completion, keep-alive); while it sends its request, "
                     f"httpd's event holds a worker too, and RequestReadTimeout bounds it on every MPM")
    if m is not None and m.pss_mib is not None:
        parts.append(f"~{fmt(projected_pss(m, s.processes))} MiB PSS at that size ({pss_basis(m, s.processes)})")
    return "; ".join(parts)


def _rule_waiting_clients(w: Workload, ms: dict[str, Measurement], draft: _Draft) -> Recommendation | None:
    """Rule 2: event, unless its measurement shows it cannot (then None: rule 3 decides without it)."""
    ev = ms.get("event")
    sizing = size_event(w)
    trigger = " and ".join(filter(None, [
        f"keep-alive share {w.keepalive_share:g} >= {KEEPALIVE_MANY:g} ({w.idle_connections} idle connections)"
        if w.keepalive_share >= KEEPALIVE_MANY else "", "slow/mobile clients" if w.slow_clients else ""]))
    problem = _event_problem(w, ev, sizing)
    if problem:
        draft.evidence.append(f"rule waiting-clients would choose event ({trigger}), but {problem}")
        draft.reject("event", ev.label if ev else "", problem)
        return None
    if ev is None:
        draft.warnings.append("event was not measured: chosen on the rule alone")
    else:
        draft.evidence.append(_throughput_line(ev))
        if ev.idle_connections:
            draft.evidence.append(f"{ev.label}: {idle_text(ev, w.idle_connections)}, "
                                  f"{_kib(ev.pss_per_idle_conn_kib)} KiB PSS per idle connection, "
                                  f"with {sizing.workers} worker threads")
    for mpm in ("prefork", "worker"):
        m = ms.get(mpm)
        draft.reject(mpm, m.label if m else "", _why_idle_pins(w, mpm, m))
        if m is not None and m.idle_connections and m.holds_idle(w.idle_connections) is not None:
            draft.evidence.append(f"{m.label}: {idle_text(m, w.idle_connections)}, "
                                  f"{_kib(m.pss_per_idle_conn_kib)} KiB PSS per idle connection, PSS "
                                  f"{fmt(m.pss_mib, 1)} MiB with {m.processes} processes")
    if w.memory_budget_mib is not None and ev is not None and ev.pss_mib is not None:
        draft.evidence.append(f"{ev.label}: ~{fmt(projected_pss(ev, sizing.processes))} MiB PSS "
                              f"({pss_basis(ev, sizing.processes)}) fits the {fmt(w.memory_budget_mib)} MiB budget")
    decision = (f"event: {trigger}; idle keep-alive connections wait in the listener without holding one of its "
                f"{sizing.workers} worker threads")
    if w.slow_clients:
        decision += ("; so do responses to slow readers (write completion). A slow sender is bounded by "
                     f"RequestReadTimeout {SLOW_CLIENT_RRT}: httpd's event holds a worker while a request arrives, "
                     "as prefork and worker do (mpm-harness's event reads request heads in its listener)")
        draft.warnings.append("httpd's event does not protect against slow request senders (slowloris): it holds a "
                              "worker while the request head and body arrive; RequestReadTimeout (mod_reqtimeout) "
                              "is the protection, and is in the advised configuration. mpm-harness's event reads "
                              "request heads in its listener, which httpd's does not")
    return draft.freeze("event", ev.label if ev else "", "waiting-clients", decision, sizing)


def _event_problem(w: Workload, ev: Measurement | None, sizing: Sizing) -> str:
    """Why the measurements rule event out ("" when they do not, or it was not measured)."""
    if ev is None:
        return ""
    if not ev.valid:
        return f"event's measurement was {ev.status}" + (f": {ev.reason}" if ev.reason else "")
    if ev.holds_idle(w.idle_connections) is False:
        return f"event {idle_text(ev, w.idle_connections)}"
    pss = projected_pss(ev, sizing.processes)
    if w.memory_budget_mib is not None and pss is not None and pss > w.memory_budget_mib:
        return f"event needs ~{fmt(pss)} MiB PSS, over the {fmt(w.memory_budget_mib)} MiB budget"
    return ""


# rules 3 and 4 -----------------------------------------------------------------------------------


def _screen(w: Workload, m: Measurement | None, mpm: str) -> str:
    """Why a candidate cannot be chosen at all ("" when it can)."""
    if m is None:
        return "not measured"
    if not m.valid:
        return f"measured {m.status}" + (f": {m.reason}" if m.reason else "")
    if w.idle_connections and m.holds_idle(w.idle_connections) is False:
        return idle_text(m, w.idle_connections)
    return ""


def _rule_best_fit(w: Workload, ms: dict[str, Measurement], draft: _Draft, excluded: set[str]) -> Recommendation:
    valid: dict[str, Measurement] = {}
    for mpm in MPMS:
        if mpm in excluded:
            continue
        why = _screen(w, ms.get(mpm), mpm)
        if why:
            draft.reject(mpm, ms[mpm].label if mpm in ms else "", why)
        else:
            valid[mpm] = ms[mpm]
    if not valid:
        return _rule_no_measurements(w, draft, excluded)
    pss = {mpm: projected_pss(m, size(mpm, w).processes) for mpm, m in valid.items()}
    for mpm, m in valid.items():
        n = size(mpm, w).processes
        projected = "" if m.processes in (None, n) or m.pss_mib is None else f" ({pss_basis(m, n)})"
        draft.evidence.append(_throughput_line(m) + f"; at the advised size ~{fmt(pss[mpm])} MiB PSS{projected}")
    fits = _within_budget(w, valid, pss, draft)
    if not fits:
        return _rule_nothing_fits(w, valid, pss, draft)
    band, why_wide = throughput_band(fits)
    if why_wide:
        draft.warnings.append(f"throughput compared within {band * 100:.0f} % instead of 5 % because {why_wide}; "
                              f"--trials 3 or more on a quiet machine sharpen the comparison")
    mpm, how, tied = _pick(fits, pss, band)
    for other, m in fits.items():
        if other != mpm:
            draft.reject(other, m.label, _lost_because(m, fits[mpm], pss[other], pss[mpm], how, band, other in tied))
    best = fits[mpm]
    budget = f" within the {fmt(w.memory_budget_mib)} MiB budget" if w.memory_budget_mib is not None else ""
    decision = (f"{mpm}: {fmt(best.rps)} req/s at ~{fmt(pss[mpm])} MiB PSS{budget}; decided by {how}")
    if tied:
        others = ", ".join(f"{fits[t].label} ({fmt(fits[t].rps)} req/s, ~{fmt(pss[t])} MiB)" for t in tied)
        decision += (f". A TIE: {others} {'is' if len(tied) == 1 else 'are'} equally good within the measurement "
                     f"noise; {mpm} is taken as the {'lower-CPU' if how.startswith('CPU') else 'simpler'} choice")
    sizing = size(mpm, w)
    if mpm == "prefork" and w.idle_connections:
        draft.warnings.append(f"each idle keep-alive connection pins a prefork child ({w.idle_connections} of "
                              f"{sizing.workers}); KeepAliveTimeout lowered to {SHORT_KEEPALIVE} s")
    return draft.freeze(mpm, best.label, "best-fit", decision, sizing)


def _within_budget(w: Workload, valid: dict[str, Measurement], pss: dict[str, float | None], draft: _Draft
                   ) -> dict[str, Measurement]:
    if w.memory_budget_mib is None:
        return dict(valid)
    fits = {}
    for mpm, m in valid.items():
        if pss[mpm] is None:
            draft.warnings.append(f"{m.label}: memory not measured, so not checked against the budget")
            fits[mpm] = m
        elif pss[mpm] <= w.memory_budget_mib:
            fits[mpm] = m
        else:
            draft.reject(mpm, m.label, f"~{fmt(pss[mpm])} MiB PSS at the advised size is over the "
                                       f"{fmt(w.memory_budget_mib)} MiB budget by "
                                       f"{fmt(pss[mpm] - w.memory_budget_mib)} MiB")
    return fits


def _tied(value: float | None, best: float | None, band: float = TIE) -> bool:
    if value is None or best is None:
        return value is None and best is None
    return abs(value - best) <= band * abs(best)


def _mem_tied(value: float | None, best: float | None) -> bool:
    """Memory within max(:data:`TIE`, :data:`MEMORY_TIE_MIB`): PSS moves by 1-2 MiB between runs."""
    if value is None or best is None:
        return value is None and best is None
    return abs(value - best) <= max(TIE * abs(best), MEMORY_TIE_MIB)


#: how the memory band is named in the output
MEM_BAND = f"max({TIE * 100:.0f} %, {MEMORY_TIE_MIB:g} MiB)"


def throughput_band(candidates: Mapping[str, Measurement]) -> tuple[float, str]:
    """The relative band within which two throughputs are a tie, and why it is wider than 5 % if it is.

    5 % (:data:`TIE`) for clean measurements; the trials' own min-max spread
    when that is wider; :data:`NOISY_TIE` for a single trial flagged noisy (the
    quiet-machine check saw other processes using the CPU: one such trial cannot
    tell 10 % apart).
    """
    band, why = TIE, ""
    for m in candidates.values():
        if m.rps_spread is not None and m.rps_spread > band:
            band, why = m.rps_spread, f"{m.label}'s trials spread {m.rps_spread * 100:.0f} %"
        if m.noisy and m.trials < 3 and NOISY_TIE > band:
            band, why = NOISY_TIE, f"{m.label} was measured in {m.trials} trial flagged noisy"
    return band, why


def _pick(fits: dict[str, Measurement], pss: dict[str, float | None], band: float
          ) -> tuple[str, str, list[str]]:
    """The winner, which tie-break level decided (see the ``best-fit`` rule), and the candidates tied with it.

    Tied means within the throughput band and the memory band both: equally
    good within the measurement noise, whatever breaks the tie afterwards.
    """
    within = f"{band * 100:.0f} %"
    top = max(m.rps for m in fits.values())
    tier = [mpm for mpm, m in fits.items() if _tied(m.rps, top, band)]
    if len(tier) == 1:
        return tier[0], "throughput", []
    known = [mpm for mpm in tier if pss[mpm] is not None]
    if known:
        low = min(pss[mpm] for mpm in known)
        tier = [mpm for mpm in known if _mem_tied(pss[mpm], low)]
        if len(tier) == 1:
            return tier[0], f"memory (throughput within {within})", []
    tie = (f"a tie on throughput (within {within}) and memory (within {MEM_BAND})" if known
           else f"a tie on throughput (within {within}), memory not measured")
    tied = list(tier)
    cpu = [mpm for mpm in tier if fits[mpm].cpu_us_per_request is not None]
    if cpu:
        low = min(fits[mpm].cpu_us_per_request for mpm in cpu)
        lowest = [mpm for mpm in cpu if _tied(fits[mpm].cpu_us_per_request, low)]
        if len(lowest) == 1:
            return lowest[0], f"CPU per request, after {tie}", [m for m in tied if m != lowest[0]]
        tier = lowest
    winner = min(tier, key=SIMPLICITY.index)
    return (winner, f"the simpler model, after {tie} and CPU per request within 5 %",
            [m for m in tied if m != winner])


def _lost_because(m: Measurement, best: Measurement, pss: float | None, best_pss: float | None, how: str,
                  band: float, tied: bool = False) -> str:
    within = f"within {band * 100:.0f} % of {best.label}"
    if tied:
        lower_cpu = (m.cpu_us_per_request is not None and best.cpu_us_per_request is not None
                     and not _tied(m.cpu_us_per_request, best.cpu_us_per_request))
        cpu = (f"; {best.mpm} was taken for its lower CPU per request ({fmt(best.cpu_us_per_request)} against "
               f"{fmt(m.cpu_us_per_request)} CPU-us)" if lower_cpu
               else f"; CPU per request within 5 %, and {best.mpm} was taken as the simpler model")
        memory = (f"memory (~{fmt(pss)} against ~{fmt(best_pss)} MiB PSS) within {MEM_BAND}"
                  if pss is not None and best_pss is not None else "memory not measured")
        return (f"a tie, equally good within the measurement noise: throughput ({fmt(m.rps)} against "
                f"{fmt(best.rps)} req/s) {within}, {memory}{cpu}")
    if how == "throughput" or not _tied(m.rps, best.rps, band):
        return f"{fmt(m.rps)} req/s, {_pct(m.rps, best.rps)} against {best.label}'s {fmt(best.rps)}"
    if pss is None or best_pss is None:
        return f"throughput {within}, but its memory was not measured"
    if not _mem_tied(pss, best_pss):
        return (f"throughput {within}, but ~{fmt(pss)} MiB PSS against ~{fmt(best_pss)} ({_pct(pss, best_pss)}, "
                f"beyond {MEM_BAND})")
    return (f"throughput {within} and memory within {MEM_BAND}, but {fmt(m.cpu_us_per_request)} CPU-us per "
            f"request against {fmt(best.cpu_us_per_request)}")


def _rule_nothing_fits(w: Workload, valid: dict[str, Measurement], pss: dict[str, float | None], draft: _Draft
                       ) -> Recommendation:
    mpm = min(valid, key=lambda k: (pss[k], SIMPLICITY.index(k)))
    m = valid[mpm]
    short = pss[mpm] - w.memory_budget_mib
    decision = (f"{mpm}: the least memory of the candidates, ~{fmt(pss[mpm])} MiB PSS, still over the "
                f"{fmt(w.memory_budget_mib)} MiB budget by {fmt(short)} MiB")
    sizing = size(mpm, w)
    if mpm == "prefork":
        sizing, decision = _fit_prefork(w, m, sizing, decision, draft)
    else:
        draft.warnings.append(f"memory: {m.label} needs ~{fmt(pss[mpm])} MiB PSS; the budget is "
                              f"{fmt(w.memory_budget_mib)} MiB, short by {fmt(short)} MiB. A threaded MPM's "
                              f"memory is mostly per process: fewer processes (ServerLimit) save the most, at the "
                              f"cost of CPU parallelism")
    return draft.freeze(mpm, m.label, "nothing-fits", decision, sizing)


def _rule_no_measurements(w: Workload, draft: _Draft, excluded: set[str]) -> Recommendation:
    mpm = "event" if "event" not in excluded else "worker"
    own = next((a for a in draft.rejected if a.mpm == mpm), None)
    if own is not None:
        draft.warnings.append(f"{mpm}'s own measurement was not usable either: {own.why}")
    draft.warnings.append("no usable measurement: this recommendation rests on httpd's default, not on evidence; "
                          "run `harness advise` without --from-run, or with more --duration")
    decision = f"{mpm}: httpd's default on Linux" + (" (event was ruled out)" if mpm != "event" else "")
    return draft.freeze(mpm, "", "no-measurements", decision, size(mpm, w))
