"""One run document (``run.json``, docs/results.md) as typed, read-only objects: how the harness reads a run.

The tables, plots and page of :mod:`harness.report`, ``harness report --compare``, the
baseline, the gate and the advisor all read runs through :class:`Run`; :mod:`harness.results`
writes them.  A :class:`Run` wraps the document without copying or changing it: each cell
becomes a :class:`ProfileCell` (one load profile on one server in one trial) or a
:class:`SuiteCell` (one suite on one server, its :class:`Case` list), each server a
:class:`ServerInfo`, and the statistics of every server x profile over its trials
(:class:`ProfileStats`, the document's ``summary``) are computed once, from the cells.

Medians are taken over the ``ok`` cells only (``invalid``, ``failed`` and ``skipped`` trials
never enter a figure).  Missing fields read as empty: a run that was interrupted, or is still
running, has every cell it measured and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Union

__all__ = [
    "SCHEMA", "SCHEMA_VERSION", "METRICS", "SOAK_MIN_SECONDS", "Run", "ProfileCell", "SuiteCell", "Case",
    "ServerInfo", "ProfileStats", "Spread", "as_run", "load_run", "read_document",
]

SCHEMA = "mpm-harness/run"
SCHEMA_VERSION = 1

#: profiles at least this long are judged for growth over time (shorter ones only report their slopes)
SOAK_MIN_SECONDS = 60.0

#: per-profile metrics summarised over trials: name -> (unit, better direction)
METRICS: dict[str, tuple[str, str]] = {
    "rps": ("requests/s", "higher"),
    "p50_ms": ("ms", "lower"),
    "p90_ms": ("ms", "lower"),
    "p99_ms": ("ms", "lower"),
    "p999_ms": ("ms", "lower"),
    "cpu_us_per_request": ("us", "lower"),
    "pss_peak_mib": ("MiB", "lower"),
    "pss_steady_mib": ("MiB", "lower"),
    "rss_peak_mib": ("MiB", "lower"),
    "pss_per_idle_conn_kib": ("KiB", "lower"),
    "answered_fraction": ("", "higher"),
    "driver_cpu_fraction": ("", "lower"),
    "other_cpu_percent": ("% of a CPU", "lower"),
    "pss_slope_mib_per_min": ("MiB/min", "lower"),
    "uss_slope_mib_per_min": ("MiB/min", "lower"),
    "fds_slope_per_min": ("fds/min", "lower"),
}

_EMPTY: Mapping[str, Any] = MappingProxyType({})  # what a missing field reads as (read-only: shared)


def read_document(path: str | os.PathLike, schema: str, version: int, what: str, missing: str = "") -> dict:
    """Read a JSON document of ``schema``; refuse other schemas and newer versions (ValueError naming the file)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"{p}: no such {what}{missing}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise ValueError(f"{p}: not an mpm-harness {what} (schema {schema!r} expected)")
    if doc.get("schema_version", 0) > version:
        raise ValueError(f"{p}: {what} schema version {doc.get('schema_version')} is newer than this harness "
                         f"understands ({version}); upgrade mpm-harness")
    return doc


def load_run(path: str | os.PathLike) -> dict:
    """Read a run document from its folder or its run.json; refuse other schemas and newer versions."""
    p = Path(path)
    return read_document(p / "run.json" if p.is_dir() else p, SCHEMA, SCHEMA_VERSION, "run document")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _ordered(items: Iterable[Any]) -> list[str]:
    """The distinct truthy items as text, in first-seen order."""
    return list(dict.fromkeys(str(x) for x in items if x))


# -- cells --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileCell:
    """One load profile on one server in one trial (``kind: profile``)."""

    server: str
    profile: str
    driver: str
    trial: int | None
    status: str
    reason: str
    flags: tuple[str, ...]
    metrics: Mapping[str, Any]  # name -> value or None (docs/results.md, "metrics")
    result: Mapping[str, Any]  # the driver's DriverResult.to_dict() (empty when it did not run)
    sampler: Mapping[str, Any]  # the sampler's window over the measured seconds
    quiet: Mapping[str, Any]  # the quiet-machine check before the cell
    series: Mapping[str, Any]  # the sampler's samples (columns, for plots)
    scoreboard: Mapping[str, Any]  # /server-status?auto polled during the profile
    raw: Mapping[str, Any] = field(repr=False, compare=False)  # the cell as written
    kind = "profile"

    @classmethod
    def from_dict(cls, c: Mapping[str, Any]) -> "ProfileCell":
        """The typed view of one profile cell of a document."""
        return cls(server=c.get("server") or "", profile=c.get("profile") or "", driver=c.get("driver") or "",
                   trial=c.get("trial"), status=c.get("status") or "", reason=c.get("reason") or "",
                   flags=tuple(c.get("flags") or ()), metrics=_mapping(c.get("metrics")),
                   result=_mapping(c.get("result")), sampler=_mapping(c.get("sampler")),
                   quiet=_mapping(c.get("quiet")), series=_mapping(c.get("series")),
                   scoreboard=_mapping(c.get("scoreboard")), raw=c)

    @property
    def ok(self) -> bool:
        """Measured and valid: the cell's figures enter the medians."""
        return self.status == "ok"

    def metric(self, name: str) -> Any:
        """One of the cell's metrics (None when not measured)."""
        return self.metrics.get(name)

    @property
    def hdr(self) -> str | None:
        """The driver's latency HdrHistogram (base64), when it recorded one."""
        return _mapping(self.result.get("latency_us")).get("hdr") or None

    def samples(self, key: str = "series") -> Mapping[str, Any] | None:
        """The sampler's ``series`` (or the ``scoreboard``) of a measured cell, when it has samples."""
        if self.status not in ("ok", "invalid"):
            return None
        columns = self.series if key == "series" else self.scoreboard
        return columns if columns.get("t") else None


@dataclass(frozen=True)
class Case:
    """One test case a suite recorded: its outcome and its ``record_property`` figures (text, as in JUnit)."""

    name: str
    outcome: str
    message: str
    properties: Mapping[str, Any]

    @classmethod
    def from_dict(cls, c: Mapping[str, Any]) -> "Case":
        """The typed view of one entry of a suite cell's ``cases``."""
        return cls(c.get("name") or "", c.get("outcome") or "", c.get("message") or "", _mapping(c.get("properties")))

    @property
    def failed(self) -> bool:
        """The test failed or errored."""
        return self.outcome in ("failed", "error")


@dataclass(frozen=True)
class SuiteCell:
    """One suite on one server (``kind: suite``): its status, counts and cases."""

    server: str
    suite: str
    status: str
    reason: str
    counts: Mapping[str, int]
    cases: tuple[Case, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    kind = "suite"

    @classmethod
    def from_dict(cls, c: Mapping[str, Any]) -> "SuiteCell":
        """The typed view of one suite cell of a document."""
        return cls(server=c.get("server") or "", suite=c.get("suite") or "", status=c.get("status") or "",
                   reason=c.get("reason") or "", counts=_mapping(c.get("counts")),
                   cases=tuple(Case.from_dict(x) for x in c.get("cases") or () if isinstance(x, dict)), raw=c)

    @property
    def ok(self) -> bool:
        """Every test passed or was skipped."""
        return self.status == "ok"

    def count(self, outcome: str) -> int:
        """How many tests ended with ``outcome`` (passed, failed, error, skipped)."""
        return self.counts.get(outcome, 0)


Cell = Union[ProfileCell, SuiteCell]


# -- servers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What the run recorded of one server label (docs/results.md, ``servers.<label>``)."""

    label: str
    server: str  # the launcher name
    set: Mapping[str, Any]
    app: str
    available: bool
    unavailable_reason: str
    version: str
    notes: tuple[str, ...]
    effective_config: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    url: str = ""  # a server that was already running: its URL (docs/harness.md, url servers)
    sampled: bool = True  # False: its process tree could not be sampled here (no CPU or memory figures)

    @classmethod
    def from_dict(cls, label: str, info: Mapping[str, Any]) -> "ServerInfo":
        """The typed view of ``servers.<label>`` (an empty record for a label only the cells name)."""
        return cls(label=label, server=info.get("server") or "", set=_mapping(info.get("set")),
                   app=info.get("app") or "", available=info.get("available") is not False,
                   unavailable_reason=info.get("unavailable_reason") or "", version=info.get("version") or "",
                   notes=tuple(str(n) for n in info.get("notes") or ()),
                   effective_config=info.get("effective_config") or "", raw=info, url=info.get("url") or "",
                   sampled=info.get("sampled") is not False)


# -- statistics over trials ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of one metric over the ok trials (``n`` of them)."""

    median: float | None = None
    min: float | None = None
    max: float | None = None
    n: int = 0
    values: tuple[float, ...] = ()  # sorted

    @classmethod
    def of(cls, values: Iterable[float | None]) -> "Spread":
        """The spread of the values that are not None."""
        vals = sorted(v for v in values if v is not None)
        if not vals:
            return cls()
        return cls(statistics.median(vals), vals[0], vals[-1], len(vals), tuple(vals))

    def to_dict(self) -> dict:
        """As the document's summary writes it (``values`` only when there are some)."""
        out = {"median": self.median, "min": self.min, "max": self.max, "n": self.n}
        return out | {"values": list(self.values)} if self.n else out


@dataclass(frozen=True)
class ProfileStats:
    """One server x profile over its trials: how they went and each metric's ok values."""

    trials: int
    ok: int
    statuses: Mapping[str, int]  # status -> cells, in trial order of first appearance
    flags: tuple[str, ...]  # every trial's flags, sorted
    noisy: int  # trials flagged noisy
    reasons: tuple[str, ...]  # distinct reasons, in trial order of first appearance
    cells: tuple[ProfileCell, ...] = field(repr=False)  # in trial order

    @classmethod
    def of(cls, cells: Iterable[ProfileCell]) -> "ProfileStats":
        """The statistics of one server x profile's cells (sorted by trial here)."""
        cells = tuple(sorted(cells, key=lambda c: c.trial or 0))
        statuses: dict[str, int] = {}
        for c in cells:
            statuses[c.status] = statuses.get(c.status, 0) + 1
        return cls(trials=len(cells), ok=statuses.get("ok", 0), statuses=statuses,
                   flags=tuple(sorted({f for c in cells for f in c.flags})),
                   noisy=sum(1 for c in cells if "noisy" in c.flags),
                   reasons=tuple(_ordered(c.reason for c in cells)), cells=cells)

    def values(self, metric: str) -> list[Any]:
        """The ok trials' values of ``metric``, in trial order (trials that did not measure it left out)."""
        return [c.metric(metric) for c in self.cells if c.ok and c.metric(metric) is not None]

    def spread(self, metric: str) -> Spread:
        """Median, min and max of ``metric`` over the ok trials."""
        return Spread.of(self.values(metric))

    def median(self, metric: str) -> float | None:
        """The median of ``metric`` over the ok trials (None when none measured it)."""
        return self.spread(metric).median

    def to_dict(self) -> dict:
        """As the document's ``summary.profiles.<server>.<profile>`` (docs/results.md)."""
        return {"trials": self.trials, "ok": self.ok, "statuses": {s: self.statuses[s] for s in sorted(self.statuses)},
                "flags": list(self.flags), "noisy": self.noisy, "reasons": sorted(self.reasons),
                "metrics": {m: self.spread(m).to_dict() for m in METRICS}}


# -- the run ------------------------------------------------------------------------------------------


class Run:
    """A run document, read-only and typed; ``Run.load(path)`` reads one, ``Run(doc)`` wraps a dict."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.matrix: Mapping[str, Any] = _mapping(doc.get("matrix"))
        self.environment: Mapping[str, Any] = _mapping(doc.get("environment"))
        self.cells: tuple[Cell, ...] = tuple(
            (ProfileCell if c.get("kind") == "profile" else SuiteCell).from_dict(c)
            for c in doc.get("cells") or () if isinstance(c, dict) and c.get("kind") in ("profile", "suite"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Run":
        """The run of a folder or its run.json (ValueError naming the file when it is not a run document)."""
        return cls(load_run(path))

    # -- the document's head
    @property
    def run_id(self) -> str:
        """The run's folder name (``?`` when not recorded)."""
        return self.doc.get("run_id") or "?"

    @property
    def status(self) -> str:
        """``running``, ``complete``, ``interrupted`` or ``failed``."""
        return self.doc.get("status") or ""

    @property
    def command_line(self) -> str:
        """The run's command line as typed (``harness run --matrix all``), from ``argv``."""
        argv = [str(a) for a in self.doc.get("argv") or []]
        if not argv:
            return "(not recorded)"
        prog = Path(argv[0]).name
        if prog in ("cli.py", "__main__.py", "harness", "harness.exe") or prog.startswith("python"):
            prog = "harness"
        return shlex.join([prog, *argv[1:]])

    def catalog(self, suite: str) -> Mapping[str, Any]:
        """What the run recorded of ``suite``'s cases (conformance: case id -> row, title, rfc, level, request)."""
        return _mapping(_mapping(self.doc.get("catalog")).get(suite))

    # -- servers
    @cached_property
    def servers(self) -> list[str]:
        """Every server label, in matrix order (then any others the document names)."""
        return _ordered([*(_mapping(s).get("label") for s in self.matrix.get("servers") or ()),
                         *_mapping(self.doc.get("servers")), *(c.server for c in self.cells)])

    @property
    def recorded_servers(self) -> list[str]:
        """The labels the document has a ``servers`` record of, in its order."""
        return list(_mapping(self.doc.get("servers")))

    def server(self, label: str) -> ServerInfo:
        """What the run recorded of server ``label``."""
        return ServerInfo.from_dict(label, _mapping(_mapping(self.doc.get("servers")).get(label)))

    def unavailable(self, label: str) -> str:
        """Why ``label`` could not start here ("" when it could)."""
        info = self.server(label)
        return "" if info.available else info.unavailable_reason or "unavailable"

    # -- profiles
    @cached_property
    def profiles(self) -> list[str]:
        """Every profile name, in matrix order (then any others the cells name)."""
        return _ordered([*_mapping(self.matrix.get("profiles")),
                         *(c.profile for c in self.cells if isinstance(c, ProfileCell))])

    def profile_spec(self, profile: str) -> Mapping[str, Any]:
        """The matrix's parameters of ``profile`` (driver, mode, connections, duration, ...)."""
        return _mapping(_mapping(self.matrix.get("profiles")).get(profile))

    def profile_cells(self, server: str | None = None, profile: str | None = None) -> list[ProfileCell]:
        """The profile cells, in document order; of ``server`` and/or ``profile`` when given."""
        return [c for c in self.cells if isinstance(c, ProfileCell) and server in (None, c.server)
                and profile in (None, c.profile)]

    @cached_property
    def _stats(self) -> dict[str, dict[str, ProfileStats]]:
        groups: dict[str, dict[str, list[ProfileCell]]] = {}
        for c in self.profile_cells():
            groups.setdefault(c.server, {}).setdefault(c.profile, []).append(c)
        return {s: {p: ProfileStats.of(cells) for p, cells in per.items()} for s, per in groups.items()}

    def stats(self, server: str | None, profile: str) -> ProfileStats | None:
        """``server`` x ``profile`` over its trials (None: it never ran)."""
        return self._stats.get(server or "", {}).get(profile)

    def all_stats(self) -> list[tuple[str, str, ProfileStats]]:
        """(server, profile, stats) of every server x profile that ran, grouped by server in first-seen order."""
        return [(s, p, st) for s, per in self._stats.items() for p, st in per.items()]

    def mode(self, profile: str) -> str:
        """``open``, ``closed`` or ``idle``: from the cells' driver results, else from the matrix."""
        spec = self.profile_spec(profile)
        cells = self.profile_cells(profile=profile)
        if spec.get("driver") == "idle" or any(c.driver == "idle" for c in cells):
            return "idle"
        for c in cells:
            if c.result.get("mode") in ("open", "closed"):
                return c.result["mode"]
        return "open" if spec.get("mode") == "open" else "closed"

    def target_rate(self, profile: str) -> float | None:
        """An open-loop profile's intended requests/s (the drivers' ``target_rate``, else the matrix's ``rate``)."""
        for c in self.profile_cells(profile=profile):
            if c.result.get("target_rate"):
                return c.result["target_rate"]
        return self.profile_spec(profile).get("rate") or None

    # -- suites
    @cached_property
    def suites(self) -> list[str]:
        """Every suite name, in matrix order (then any others the cells name)."""
        return _ordered([*(self.matrix.get("suites") or ()),
                         *(c.suite for c in self.cells if isinstance(c, SuiteCell))])

    @cached_property
    def suite_cells(self) -> dict[tuple[str, str], SuiteCell]:
        """(server, suite) -> its last suite cell, grouped by server in first-seen order."""
        nested: dict[str, dict[str, SuiteCell]] = {}
        for c in self.cells:
            if isinstance(c, SuiteCell):
                nested.setdefault(c.server, {})[c.suite] = c
        return {(server, suite): c for server, per in nested.items() for suite, c in per.items()}

    def suite_cell(self, server: str, suite: str) -> SuiteCell | None:
        """The (last) cell of ``suite`` on ``server`` (None: it did not run)."""
        return self.suite_cells.get((server, suite))

    def cases(self, server: str, suite: str) -> tuple[Case, ...]:
        """The test cases ``suite`` recorded on ``server`` (empty when it did not run)."""
        c = self.suite_cell(server, suite)
        return c.cases if c is not None else ()

    def case_id(self, server: str, name: str) -> str:
        """A test case's id without the test function and the server prefix (``row42-cl-cl``)."""
        m = re.match(r"[^\[]*\[(.*)\]$", name)
        inner = m.group(1) if m else name
        launcher = self.server(server).server or server
        for prefix in sorted({launcher, server}, key=len, reverse=True):
            if inner == prefix:
                return ""
            if inner.startswith(prefix + "-"):
                return inner[len(prefix) + 1:]
        return inner

    # -- the summary
    def summary(self) -> dict:
        """The document's ``summary``: medians per server x profile (ok cells only), suite counts per server."""
        profiles: dict[str, dict[str, dict]] = {}
        for server, profile, st in self.all_stats():
            profiles.setdefault(server, {})[profile] = st.to_dict()
        suites: dict[str, dict[str, dict]] = {}
        for (server, suite), c in self.suite_cells.items():
            suites.setdefault(server, {})[suite] = {"status": c.raw.get("status"), "counts": c.raw.get("counts", {}),
                                                    "reason": c.raw.get("reason", "")}
        return {"profiles": profiles, "suites": suites}


def as_run(run: Run | Mapping[str, Any]) -> Run:
    """``run`` itself, or a run document wrapped in a :class:`Run`."""
    return run if isinstance(run, Run) else Run(run)
