"""Comparison tables of one run, from its results document: markdown, HTML, results/README.md.

    harness report results/runs/<id> [--reference LABEL] [--publish]
    python -m harness.reportfiles results/runs/<id>     # the same, without the CLI

This module renders the tables; :mod:`harness.reportfiles` writes them with the plots
(:mod:`harness.plots`) and the HTML page (:mod:`harness.htmlreport`) into a run folder, so
that the import graph runs one way: reportfiles -> htmlreport -> plots -> report.

The input is a run document (docs/results.md); nothing here measures or
starts anything, so the tables can be rewritten from ``run.json`` at any
time.  Every figure is a median over a server x profile's ``ok`` trials
with its min-max (``summary`` of the document, recomputed with
:func:`harness.results.summarize` when an interrupted run left it empty),
and every ratio divides by the *reference* server's figure for the same
profile.  docs/report.md describes each table and column.

Missing data never raises: a figure that was not measured shows ``–``, a
server x profile whose trials all failed shows ``failed: <reason>``, one
that never ran shows ``skipped``.

Tables (in this order, after an environment block):

1. throughput and latency        6. conformance (Pass/Warn/Fail)
2. CPU per request                7. suites (counts per server x suite)
3. memory (PSS, RSS, per idle connection)
4. keep-alive and slow-client availability
5. thread safety (corruption counts)
8. beside the reference servers (``matrix.peers``)
9. flags and failures (cells that are not ok, noisy trials, unavailable servers)
"""

from __future__ import annotations

import html
import math
import re
import shlex
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate

from .results import SOAK_MIN_SECONDS, summarize

__all__ = [
    "Table", "Section", "build_sections", "resolve_reference", "render_markdown", "render_html", "md_body",
    "html_body", "partial_line", "row_key", "CSS", "fmt_sig", "fmt_ratio", "server_labels", "command_line",
]

#: what a figure that was not measured shows
DASH = "–"
#: statuses of a run document whose figures are incomplete
PARTIAL_STATUSES = {"interrupted": "the run was interrupted (Ctrl-C or SIGTERM) before it finished",
                    "running": "the run was still running when these tables were written",
                    "failed": "the harness itself failed during the run"}
#: the flags that make a measured cell invalid (harness/runner.py)
_INVALID_FLAGS = ("generator_bound", "errors", "non_2xx", "starved")
_ATTACK_ORDER = ("slowloris", "slowbody", "slowread", "silent")
_LEVEL_ORDER = ("below", "above", "capacity", "deferred", "accepted", "running-server")


# -- number formatting ----------------------------------------------------------------------------

def fmt_sig(value: float | int | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures with thousands separators (``12,300``, ``0.412``); ``–`` for None."""
    if value is None or isinstance(value, bool):
        return DASH
    try:
        x = float(value)
    except (TypeError, ValueError):
        return DASH
    if not math.isfinite(x):
        return DASH
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = digits - 1 - mag
    x = round(x, decimals)
    if x != 0 and math.floor(math.log10(abs(x))) != mag:  # 999.7 -> 1000: one digit fewer after the point
        decimals -= 1
    return f"{x:,.{max(0, decimals)}f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.42x``; ``–`` for None."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.2f}x"


def _pct(value: float | None, decimals: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value * 100:.{decimals}f}%"


def _count(value: Any) -> str:
    """A count recorded as text (``"183"``) with thousands separators; other text as it is."""
    x = _num(value)
    if x is None:
        return DASH if value is None else str(value)
    return f"{int(x):,}" if x == int(x) else fmt_sig(x)


def _seconds(value: Any) -> str:
    """A duration in seconds recorded as text: ``4.0 ms``, ``1.2 s``; other text (``>5.0``) with its unit."""
    x = _num(value)
    if x is None:
        return DASH if value in (None, "") else f"{value} s"
    return f"{fmt_sig(x * 1000, 2)} ms" if x < 1 else f"{fmt_sig(x, 2)} s"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _num(text: Any) -> float | None:
    """A JUnit property (a string) as a number; None for ``>5.0``, ``n/a``, missing."""
    if text is None or isinstance(text, bool):
        return None
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _spread(s: dict | None, fmt=fmt_sig) -> str:
    """``median (min–max)`` of a summary metric, or the median alone for one trial; ``–`` when none."""
    if not s or s.get("median") is None:
        return DASH
    text = fmt(s["median"])
    if (s.get("n") or 0) > 1 and s.get("min") is not None and s.get("max") is not None:
        lo, hi = fmt(s["min"]), fmt(s["max"])
        if lo != hi:
            text += f" ({lo}–{hi})"
    return text


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- the table model ------------------------------------------------------------------------------

@dataclass
class Table:
    """One table: a caption (what the figure is, how it was measured), headers and rows of text."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    align: list[str] | None = None  # "left" / "right" per column
    empty: str = "nothing to show"


@dataclass
class Section:
    """A titled part of the report: bullet items, then tables, then notes (all plain text)."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Run:
    """Read-only views of one run document, for the table builders."""

    def __init__(self, doc: dict, reference: str | None) -> None:
        self.doc = doc
        self.matrix: dict = doc.get("matrix") or {}
        self.summary: dict = doc.get("summary") or summarize(doc)
        self.cells: list[dict] = [c for c in doc.get("cells") or [] if isinstance(c, dict)]
        self.servers = server_labels(doc)
        self.ref = resolve_reference(doc, reference)
        self.profiles = _ordered([*(self.matrix.get("profiles") or {}),
                                  *(c.get("profile") for c in self.cells if c.get("kind") == "profile")])
        self.suites = _ordered([*(self.matrix.get("suites") or []),
                                *(c.get("suite") for c in self.cells if c.get("kind") == "suite")])

    # -- profiles
    def entry(self, server: str, profile: str) -> dict | None:
        """The summary of ``server`` x ``profile`` (None: never ran)."""
        return ((self.summary.get("profiles") or {}).get(server) or {}).get(profile)

    def metric(self, server: str | None, profile: str, name: str) -> dict | None:
        """``{"median", "min", "max", "n"}`` of one metric, None when absent or not measured."""
        if server is None:
            return None
        e = self.entry(server, profile)
        m = ((e or {}).get("metrics") or {}).get(name)
        return m if m and m.get("median") is not None else None

    def median(self, server: str | None, profile: str, name: str) -> float | None:
        """The median of one metric over the ok trials, or None."""
        m = self.metric(server, profile, name)
        return None if m is None else m["median"]

    def profile_cells(self, server: str, profile: str) -> list[dict]:
        """Every cell of ``server`` x ``profile``, in trial order."""
        return [c for c in self.cells if c.get("kind") == "profile" and c.get("server") == server
                and c.get("profile") == profile]

    def mode(self, profile: str) -> str:
        """``open``, ``closed`` or ``idle``: from the cells' driver results, else from the matrix."""
        spec = (self.matrix.get("profiles") or {}).get(profile) or {}
        drivers = {c.get("driver") for c in self.cells if c.get("kind") == "profile" and c.get("profile") == profile}
        if spec.get("driver") == "idle" or "idle" in drivers:
            return "idle"
        for c in self.cells:
            if c.get("kind") == "profile" and c.get("profile") == profile and isinstance(c.get("result"), dict):
                if c["result"].get("mode") in ("open", "closed"):
                    return c["result"]["mode"]
        return "open" if spec.get("mode") == "open" else "closed"

    def target_rate(self, profile: str) -> float | None:
        """An open-loop profile's intended requests/s (the drivers' ``target_rate``, else the matrix's ``rate``)."""
        for c in self.cells:
            if c.get("kind") == "profile" and c.get("profile") == profile and isinstance(c.get("result"), dict):
                if c["result"].get("target_rate"):
                    return c["result"]["target_rate"]
        return ((self.matrix.get("profiles") or {}).get(profile) or {}).get("rate") or None

    def trials(self, server: str, profile: str) -> str:
        """``ok/trials`` of a server x profile (``–`` when it never ran)."""
        e = self.entry(server, profile)
        return DASH if e is None else f"{e.get('ok', 0)}/{e.get('trials', 0)}"

    def status_text(self, server: str, profile: str) -> str | None:
        """Why a server x profile has no figures (None when it has at least one ok trial)."""
        e = self.entry(server, profile)
        if e is not None and e.get("ok", 0) > 0:
            return None
        if self.unavailable(server):
            return "skipped: unavailable"
        if e is None:
            return "skipped"
        cells = self.profile_cells(server, profile)
        failed = [c for c in cells if c.get("status") == "failed"]
        if failed:
            return "failed: " + _clip(failed[0].get("reason") or "no reason recorded", 80)
        invalid = [c for c in cells if c.get("status") == "invalid"]
        if invalid:
            flags = sorted({f for c in invalid for f in c.get("flags") or []})
            causes = [f for f in flags if f in _INVALID_FLAGS] or flags  # noisy, late_sends: not why it is invalid
            return "invalid: " + (", ".join(causes) or "see table 9")
        skipped = [c for c in cells if c.get("reason")]
        return "skipped" + (f": {_clip(skipped[0]['reason'], 60)}" if skipped else "")

    def notes(self, server: str, profile: str) -> str:
        """Non-ok trials and flags of a server x profile, compactly."""
        e = self.entry(server, profile)
        if e is None or set(e.get("statuses") or {}) == {"skipped"}:
            return ""
        parts = [f"{n} {s}" for s, n in (e.get("statuses") or {}).items() if s != "ok" and n]
        flags = [f for f in e.get("flags") or [] if f != "noisy"]
        parts += [f.replace("_", "-") if f == "generator_bound" else f for f in flags]
        if e.get("noisy"):
            parts.append(f"noisy x{e['noisy']}")
        return ", ".join(parts)

    # -- servers
    def unavailable(self, server: str) -> str:
        """Why ``server`` could not start here ("" when it could)."""
        info = (self.doc.get("servers") or {}).get(server) or {}
        if info.get("available") is False:
            return info.get("unavailable_reason") or "unavailable"
        return ""

    # -- suites
    def suite_cell(self, server: str, suite: str) -> dict | None:
        """The (last) suite cell of ``server`` x ``suite``."""
        found = None
        for c in self.cells:
            if c.get("kind") == "suite" and c.get("server") == server and c.get("suite") == suite:
                found = c
        return found

    def cases(self, server: str, suite: str) -> list[dict]:
        """The test cases a suite recorded on a server ([] when it did not run)."""
        c = self.suite_cell(server, suite)
        return [x for x in (c or {}).get("cases") or [] if isinstance(x, dict)]

    def suite_missing(self, server: str, suite: str, *, reason: bool = False) -> str | None:
        """Why a suite has no cases on a server (None when it has some): ``suite error``, ``unavailable``...

        With ``reason``, the suite cell's reason follows (clipped); tables 7 and 9 give it in full.
        """
        c = self.suite_cell(server, suite)
        if c is None:
            return "not run"
        if self.cases(server, suite):
            return None
        if self.unavailable(server):
            return "unavailable"
        status = f"suite {c.get('status') or '?'}"
        return f"{status}: {_clip(c['reason'], 80)}" if reason and c.get("reason") else status

    def case_id(self, server: str, name: str) -> str:
        """A test case's id without the test function and the server prefix (``row42-cl-cl``)."""
        m = re.match(r"[^\[]*\[(.*)\]$", name)
        inner = m.group(1) if m else name
        launcher = ((self.doc.get("servers") or {}).get(server) or {}).get("server") or server
        for prefix in sorted({launcher, server}, key=len, reverse=True):
            if inner == prefix:
                return ""
            if inner.startswith(prefix + "-"):
                return inner[len(prefix) + 1:]
        return inner


RunView = _Run  # the public name: harness.plots and harness.htmlreport read runs through it


def _ordered(items: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(x) for x in items if x))


def server_labels(doc: dict) -> list[str]:
    """Every server label of a run document, in matrix order (then any others the document names)."""
    matrix = doc.get("matrix") or {}
    return _ordered([*((s or {}).get("label") for s in matrix.get("servers") or [] if isinstance(s, dict)),
                     *(doc.get("servers") or {}),
                     *(c.get("server") for c in doc.get("cells") or [] if isinstance(c, dict))])


def resolve_reference(doc: dict, reference: str | None = None) -> str | None:
    """The label the ratio columns divide by: ``reference``, else the matrix's, else None (no ratios).

    An explicit ``reference`` that is not a server of the run raises ValueError naming the valid
    labels; ``""`` asks for no ratio columns.  A matrix reference the document does not hold
    (e.g. a run narrowed with ``--server``) gives no ratios rather than an error.
    """
    labels = server_labels(doc)
    if reference is not None:
        if reference == "":
            return None
        if reference not in labels:
            raise ValueError(f"reference {reference!r} is not a server of run {doc.get('run_id', '?')}; "
                             f"valid labels: {', '.join(labels) or '(none)'}")
        return reference
    default = (doc.get("matrix") or {}).get("reference") or None
    return default if default in labels else None


# -- merged latency histograms --------------------------------------------------------------------

def _merged_latency(run: _Run, server: str, profile: str) -> dict[str, float] | None:
    """p50/p99/p99.9 in ms of the ok trials' HdrHistograms added together; None when any is missing."""
    ok = [c for c in run.profile_cells(server, profile) if c.get("status") == "ok"]
    hdrs = [((c.get("result") or {}).get("latency_us") or {}).get("hdr") for c in ok]
    if not ok or not all(hdrs):
        return None
    try:
        from hdrh.histogram import HdrHistogram

        merged = HdrHistogram.decode(hdrs[0])
        for h in hdrs[1:]:
            merged.add(HdrHistogram.decode(h))
        if merged.get_total_count() == 0:
            return None
        return {k: merged.get_value_at_percentile(p) / 1000.0
                for k, p in (("p50_ms", 50), ("p99_ms", 99), ("p999_ms", 99.9))}
    except Exception:  # a histogram that cannot be decoded: fall back to the trials' percentiles
        return None


def _latency(run: _Run, server: str, profile: str) -> list[str]:
    merged = _merged_latency(run, server, profile)
    out = []
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        if merged is not None:
            out.append(fmt_sig(merged[key]))
            continue
        m = run.metric(server, profile, key)
        if m is None:
            out.append(DASH)
        else:
            out.append(("≈" if (m.get("n") or 0) > 1 else "") + fmt_sig(m["median"]))
    return out


# -- the sections ---------------------------------------------------------------------------------

def _environment(run: _Run) -> Section:
    doc, env, m = run.doc, run.doc.get("environment") or {}, run.matrix
    sec = Section("environment", "Environment")
    status = doc.get("status") or "unknown"
    if status in PARTIAL_STATUSES:
        sec.items.append(f"Status: {status}. PARTIAL RESULTS: {PARTIAL_STATUSES[status]}; the tables show only "
                         f"what was measured before that.")
    else:
        sec.items.append(f"Status: {status}")
    sec.items.append(f"Run: {doc.get('run_id') or '?'}; command: {command_line(doc)}")
    sec.items.append(f"Started {doc.get('started') or '?'}, finished {doc.get('finished') or 'not finished'}")
    desc = f" ({m['description']})" if m.get("description") else ""
    sec.items.append(f"Matrix: {m.get('name') or '?'}{desc}; {m.get('trials', '?')} trial(s) per profile, "
                     f"interleaved across servers; warm-up {m.get('warmup', '?')} s (discarded)")
    cpus = env.get("cpus_allowed")
    sec.items.append(f"CPU: {env.get('cpu_model') or '?'} x {env.get('cpu_count') or '?'}"
                     + (f" (harness allowed on CPUs {_cpus(cpus)})" if cpus else ""))
    sec.items.append(f"Kernel: {env.get('kernel') or '?'} ({env.get('platform') or '?'}); "
                     f"Python: {env.get('python_implementation') or ''} {env.get('python') or '?'}".replace("  ", " "))
    commit = env.get("git_commit")
    dirty = env.get("git_dirty")
    sec.items.append("git commit: " + (commit[:12] if commit else "unknown")
                     + (" + uncommitted changes (dirty)" if dirty else " (clean)" if dirty is False else ""))
    pin = env.get("pinning") or {}
    if pin.get("server_cpus") or pin.get("driver_cpus"):
        sec.items.append(f"Pinning: server on CPU {_cpus(pin.get('server_cpus'))}, load generator on CPU "
                         f"{_cpus(pin.get('driver_cpus'))}, sampler on CPU {_cpus(pin.get('sampler_cpus'))}")
    else:
        sec.items.append("Pinning: none (server and load generator share the CPUs)")
    sec.items.append(f"Reference server for the ratio columns: {run.ref}" if run.ref
                     else "Reference server: none (no ratio columns)")
    pk = env.get("packages") or {}
    if pk:
        sec.items.append("Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v)
                         + ("; not installed: " + ", ".join(k for k, v in pk.items() if not v)
                            if any(not v for v in pk.values()) else ""))
    return sec


def _cpus(cpus: Any) -> str:
    if not cpus:
        return "-"
    return ",".join(str(c) for c in cpus)


def command_line(doc: dict) -> str:
    """The run's command line as typed (``harness run --matrix all``), from ``argv``."""
    argv = [str(a) for a in doc.get("argv") or []]
    if not argv:
        return "(not recorded)"
    prog = Path(argv[0]).name
    if prog in ("cli.py", "__main__.py", "harness", "harness.exe") or prog.startswith("python"):
        prog = "harness"
    return shlex.join([prog, *argv[1:]])


def _throughput(run: _Run) -> Section:
    sec = Section("throughput", "1. Throughput and latency")
    headers = ["server", "profile", "loop", "ok/trials", "req/s", "p50 ms", "p99 ms", "p99.9 ms"]
    if run.ref:
        headers.append(f"x {run.ref}")
    headers.append("notes")
    rows = []
    for p in run.profiles:
        mode = run.mode(p)
        if mode == "idle":
            continue
        if mode == "open":
            rate = run.target_rate(p)
            loop = f"open loop{' at ' + fmt_sig(rate) + '/s' if rate else ''}: headline latency"
        else:
            loop = "closed loop: understates the tail"
        ref_rps = run.median(run.ref, p, "rps")
        for s in run.servers:
            why = run.status_text(s, p)
            row = [s, p, loop, run.trials(s, p)]
            if why is not None:
                row += [why, DASH, DASH, DASH]
            else:
                row += [_spread(run.metric(s, p, "rps")), *_latency(run, s, p)]
            if run.ref:
                row.append(fmt_ratio(_ratio(run.median(s, p, "rps"), ref_rps)))
            row.append(run.notes(s, p))
            rows.append(row)
    caption = ("Requests/s: complete responses / measured seconds (load driver), median over the ok trials with "
               "min–max in brackets (ok/trials: how many trials were valid). Latency in ms from the driver's "
               "HdrHistograms: the ok trials' histograms merged, never averaged (≈: the median of the trials' own "
               "percentiles, when the document carries no histograms). Open-loop profiles send at a fixed rate and "
               "time each request from its intended send time (no coordinated omission): their latency is the "
               "headline. Closed-loop latency is measured from the actual send and understates the tail.")
    if run.ref:
        caption += f" x {run.ref}: req/s divided by {run.ref}'s req/s on the same profile (higher is better)."
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server", "profile", "loop", "notes")),
                            "no load profile ran"))
    return sec


def _cpu(run: _Run) -> Section:
    sec = Section("cpu", "2. CPU per request")
    headers = ["server", "profile", "ok/trials", "CPU-us/req"]
    if run.ref:
        headers.append(f"x {run.ref} (lower is better)")
    headers += ["driver CPU", "generator"]
    rows = []
    for p in run.profiles:
        if run.mode(p) == "idle":
            continue
        ref_cpu = run.median(run.ref, p, "cpu_us_per_request")
        for s in run.servers:
            why = run.status_text(s, p)
            e = run.entry(s, p) or {}
            row = [s, p, run.trials(s, p), why if why is not None else _spread(run.metric(s, p, "cpu_us_per_request"))]
            if run.ref:
                row.append(fmt_ratio(_ratio(run.median(s, p, "cpu_us_per_request"), ref_cpu)))
            row.append(_spread(run.metric(s, p, "driver_cpu_fraction"), fmt=_pct))
            row.append("generator-bound" if "generator_bound" in (e.get("flags") or []) else "")
            rows.append(row)
    caption = ("Server CPU per request: CPU-seconds of the whole server process tree over the measured window "
               "(psutil sampler) x 10^6 / responses, in microseconds; median over the ok trials (min–max). It is "
               "far less noisy than req/s.")
    if run.ref:
        caption += (f" x {run.ref}: ours / {run.ref}'s CPU-us/req on the same profile; lower is better "
                    f"(0.80x = 20% less CPU per request).")
    caption += (" driver CPU: the load generator's own CPU as a fraction of its CPUs; above 90% the generator, not "
                "the server, set the pace: such trials are flagged generator-bound, counted invalid and left out "
                "of the medians.")
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server", "profile", "generator")),
                            "no load profile ran"))
    return sec


def _memory(run: _Run) -> Section:
    sec = Section("memory", "3. Memory")
    headers = ["server", "profile", "ok/trials", "PSS peak MiB", "PSS steady MiB", "RSS peak MiB*",
               "PSS/idle conn KiB", "answered"]
    if run.ref:
        headers.append(f"PSS x {run.ref}")
    rows = []
    for p in run.profiles:
        idle = run.mode(p) == "idle"
        ref_pss = run.median(run.ref, p, "pss_peak_mib")
        for s in run.servers:
            why = run.status_text(s, p)
            row = [s, p, run.trials(s, p)]
            if why is not None:
                row += [why, DASH, DASH, DASH, DASH]
            else:
                row += [_spread(run.metric(s, p, "pss_peak_mib")), _spread(run.metric(s, p, "pss_steady_mib")),
                        _spread(run.metric(s, p, "rss_peak_mib")),
                        _spread(run.metric(s, p, "pss_per_idle_conn_kib")) if idle else DASH,
                        _spread(run.metric(s, p, "answered_fraction"), fmt=_pct) if idle else DASH]
            if run.ref:
                row.append(fmt_ratio(_ratio(run.median(s, p, "pss_peak_mib"), ref_pss)))
            rows.append(row)
    caption = ("Memory of the whole server process tree while the profile ran (psutil sampler), MiB; median over "
               "the ok trials (min–max). PSS (proportional set size) shares each shared page among the processes "
               "that map it, so it sums correctly over a tree; steady = the median PSS sample of the window. "
               "*RSS summed over the tree counts shared pages once per process and overstates prefork (many "
               "children sharing the parent's pages) by 10x or more: do not compare it across MPMs. Idle profiles "
               "(keep-alive connections opened, one request each, then left idle): PSS/idle conn = (steady PSS "
               "while holding - PSS before connecting) / answered connections, KiB; answered = connections that got "
               "an answer / connections opened.")
    if run.ref:
        caption += f" PSS x {run.ref}: PSS peak / {run.ref}'s PSS peak on the same profile (lower is better)."
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server", "profile")),
                            "no load profile ran"))
    return sec


def _growth(run: _Run) -> Section | None:
    """Slopes of PSS and fd count over soak-length profiles (the runner flags growth beyond noise)."""
    long = [p for p in run.profiles if float(((run.matrix.get("profiles") or {}).get(p) or {}).get("duration") or 0)
            >= SOAK_MIN_SECONDS]
    if not long:
        return None
    sec = Section("growth", "3b. Growth over time (soak)")
    headers = ["server", "profile", "ok/trials", "PSS MiB/min", "USS MiB/min", "fds/min", "growth flagged"]
    rows = []
    for p in long:
        for s in run.servers:
            why = run.status_text(s, p)
            flagged = sorted({f for c in run.profile_cells(s, p) for f in c.get("flags", [])
                              if f in ("pss_growth", "fd_growth", "pss_step", "fd_step")})
            row = [s, p, run.trials(s, p)]
            row += ([why, DASH, DASH, DASH] if why is not None else
                    [_spread(run.metric(s, p, "pss_slope_mib_per_min")), _spread(run.metric(s, p, "uss_slope_mib_per_min")),
                     _spread(run.metric(s, p, "fds_slope_per_min")), ", ".join(flagged) or "no"])
            rows.append(row)
    caption = (f"Profiles of {SOAK_MIN_SECONDS:.0f} s or more: least-squares slope of the server tree's summed PSS "
               "(sampled about once a second) and of its open fd count over the measured window, per minute. "
               "Growth is judged on the window's second half (the first minutes warm caches and heaps): flagged "
               "when the fitted growth over that half exceeds max(2 MiB, 5% of PSS) or 5 fds: as growth "
               "(pss_growth, fd_growth) when the medians of the window's 2nd, 3rd and 4th quarters rise each time "
               "(a trend), as a step (pss_step, fd_step) when it is one jump (an allocation made once). USS (the tree's "
               "private memory) is shown beside PSS: PSS also moves when other processes map the same files (every "
               "Python process shares the interpreter's pages), USS does not.")
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server", "profile", "growth flagged"))))
    return sec


def _slow_key(props: dict) -> tuple[str, str, str] | None:
    attack, level = props.get("attack"), props.get("level")
    if not attack or not level:
        return None
    n = props.get("connections") or "?"
    return attack, level, f"{attack} {level} ({n})"


def _order(values: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda v: (preferred.index(v) if v in preferred else len(preferred), v))


def _availability(run: _Run) -> Section:
    sec = Section("availability", "4. Keep-alive and slow-client availability")
    servers = [s for s in run.servers if run.suite_cell(s, "slowclient") or run.suite_cell(s, "keepalive")]
    columns: dict[tuple[str, str], str] = {}
    for s in servers:
        for c in run.cases(s, "slowclient"):
            k = _slow_key(c.get("properties") or {})
            if k:
                columns.setdefault((k[0], k[1]), k[2])
    keys = sorted(columns, key=lambda k: (_order([x[0] for x in columns], _ATTACK_ORDER).index(k[0]),
                                          _order([x[1] for x in columns], _LEVEL_ORDER).index(k[1])))
    headers = ["server", *(columns[k] for k in keys), "idle keep-alive: new client", "idle conns answered",
               "busy keep-alive: new clients answered"]
    rows, rec_rows = [], []
    for s in servers:
        found: dict[tuple[str, str], dict] = {}
        for c in run.cases(s, "slowclient"):
            props = c.get("properties") or {}
            k = _slow_key(props)
            if k:
                found[(k[0], k[1])] = c
        missing = run.suite_missing(s, "slowclient")
        avail, rec = [], []
        for k in keys:
            c = found.get(k)
            if c is None:
                text = missing or "not run"
                avail.append(text)
                rec.append(text)
                continue
            props = c.get("properties") or {}
            mark = " (test failed)" if c.get("outcome") in ("failed", "error") else ""
            if c.get("outcome") == "skipped":
                avail.append("skipped")
                rec.append("skipped")
                continue
            avail.append(_pct(_num(props.get("availability"))) + mark)
            rec.append(_seconds(props.get("recovery_s")))
        outcome, answered = _idle_keepalive(run, s)
        rows.append([s, *avail, outcome, answered, _busy_keepalive(run, s)])
        rec_rows.append([s, *rec])
    caption = ("Slow clients (suites/test_slowclient.py): each column is one bounded attack (connections in "
               "brackets) against the server configured with 10 workers; availability = the fraction of probe "
               "clients (a new connection with GET / every 0.2 s during the attack) answered with a 2xx within 2 s. "
               "below = capacity - 10%, above = 4x capacity, both with RequestReadTimeout header=1 body=1 and "
               "Timeout 1 (slowread: Timeout 1); capacity = as many slow clients as workers with the read timeout "
               "off; silent = connections that never send a byte, deferred = AcceptFilter http data "
               "(TCP_DEFER_ACCEPT: not accepted until data arrives), accepted = AcceptFilter http none; "
               "running-server = the server as configured by the matrix. (test failed): the suite's "
               "per-MPM expectation was not met. Idle keep-alive (suites/test_keepalive.py): 12 idle keep-alive "
               "connections on 4 workers, then a new client: served (with its latency) or starved (no answer "
               "within 1.5 s); idle conns answered = how many of the 12 got their first answer. Busy keep-alive: "
               "40 clients each send a request every second on their own connection (20 workers at most), then 16 "
               "new clients 0.25 s apart; the share answered within 2 s, with how many of the 40 were answered and "
               "the server's process count.")
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server",)),
                            "neither the slowclient nor the keepalive suite ran"))
    if keys:
        rh = ["server", *(columns[k] for k in keys)]
        sec.tables.append(Table("Recovery after each slow-client attack: seconds from the attack's end (every attack "
                                "socket closed) to the first probe answered within 2 s (>5.0 s: none within the "
                                "suite's limit).", rh, rec_rows, _align(rh, left=("server",))))
    return sec


def _keepalive_case(run: _Run, server: str, test: str, figure: str) -> tuple[dict | None, str]:
    """The keep-alive suite's case of ``test`` for ``server``, when it recorded ``figure``:
    (case, "") or (None, why there is nothing to show)."""
    missing = run.suite_missing(server, "keepalive")
    if missing:
        return None, missing
    for c in run.cases(server, "keepalive"):
        if not (c.get("name") or "").startswith(test):
            continue
        if c.get("outcome") == "skipped" or (c.get("properties") or {}).get(figure) in (None, ""):
            return None, "not measured"
        return c, ""
    return None, "not run"


def _failed_mark(case: dict) -> str:
    return " (test failed)" if case.get("outcome") in ("failed", "error") else ""


def _idle_keepalive(run: _Run, server: str) -> tuple[str, str]:
    c, why = _keepalive_case(run, server, "test_idle_keepalive_capacity", "new_client")
    if c is None:
        return why, DASH
    props = c["properties"]
    outcome = props["new_client"]
    lat = props.get("new_client_latency_ms")
    lat_text = (fmt_sig(_num(lat), 2) + " ms") if _num(lat) is not None else (f"{lat} ms" if lat else "")
    text = (f"{outcome} ({lat_text})" if lat_text else outcome) + _failed_mark(c)
    answered, idle = props.get("idle_connections_answered"), props.get("idle_connections")
    return text, (f"{answered}/{idle}" if answered is not None and idle is not None else DASH)


def _busy_keepalive(run: _Run, server: str) -> str:
    """The busy keep-alive scenario's cell: new clients answered, clients answered, processes."""
    c, why = _keepalive_case(run, server, "test_busy_keepalive_clients", "availability")
    if c is None:
        return why
    props = c["properties"]
    return (f"{_pct(_num(props.get('availability')))} ({props.get('busy_clients_answered')}/"
            f"{props.get('busy_clients')} clients, {props.get('processes')} processes)") + _failed_mark(c)


_TS_FIGURES = (("requests", "requests"), ("mismatches", "mismatches"), ("lost_updates", "lost updates"),
               ("collateral_failures", "collateral failures"), ("problems", "crosstalk problems"),
               ("wsgi_multithread", "wsgi.multithread"))


def _short_test(name: str) -> str:
    base = name.split("[", 1)[0]
    return base.removeprefix("test_")


def _threadsafety(run: _Run) -> Section:
    sec = Section("threadsafety", "5. Thread safety")
    headers = ["server", "test", "outcome", *(h for _, h in _TS_FIGURES)]
    rows = []
    for s in run.servers:
        if run.suite_cell(s, "threadsafety") is None:
            continue
        missing = run.suite_missing(s, "threadsafety", reason=True)
        if missing:
            rows.append([s, "(suite)", missing, *([DASH] * len(_TS_FIGURES))])
            continue
        for c in run.cases(s, "threadsafety"):
            props = c.get("properties") or {}
            figs = []
            for key, _ in _TS_FIGURES:
                v = props.get(key)
                if v is None:
                    figs.append(DASH)
                elif key == "wsgi_multithread":
                    figs.append(str(v).lower())
                else:
                    figs.append(_count(v))
            rows.append([s, _short_test(c.get("name") or "?"), c.get("outcome") or "?", *figs])
    caption = ("Thread safety (suites/test_threadsafety.py), per server and test: requests = requests the test sent "
               "(concurrent keep-alive clients); mismatches = answers that carried another request's id (an "
               "application's module-global 'current request'); lost updates = increments lost by an unlocked "
               "read-modify-write counter; collateral failures = in-flight requests that died with a crashing "
               "request's process; crosstalk problems = responses that did not match their own request (the "
               "server's own thread safety). demo_* tests pass when they SHOW corruption on a threaded MPM (and "
               "none on prefork); control_* tests run the same handlers made safe and must show zero everywhere.")
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server", "test", "outcome")),
                            "the threadsafety suite did not run"))
    return sec


def row_key(row: str) -> tuple[int, int, str]:
    return (0, int(row), "") if row.isdigit() else (1, 0, row)


def _conformance(run: _Run) -> Section:
    sec = Section("conformance", "6. Conformance")
    servers = [s for s in run.servers if run.suite_cell(s, "conformance") is not None]
    counts: dict[str, dict[str, int]] = {}
    per_row: dict[str, dict[str, dict[str, int]]] = {}
    bad: list[list[str]] = []
    for s in servers:
        n = counts.setdefault(s, {"pass": 0, "warn": 0, "fail": 0, "other": 0})
        for c in run.cases(s, "conformance"):
            props = c.get("properties") or {}
            verdict = props.get("verdict")
            if verdict not in ("pass", "warn", "fail"):
                verdict = "fail" if c.get("outcome") == "failed" else "other"
            n[verdict] += 1
            row = props.get("row") or "?"
            per_row.setdefault(row, {}).setdefault(s, {"pass": 0, "warn": 0, "fail": 0, "other": 0})[verdict] += 1
            if verdict != "pass":
                reasons = props.get("reasons") or c.get("message") or ""
                bad.append([s, run.case_id(s, c.get("name") or "?") or (c.get("name") or "?"),
                            verdict if verdict != "other" else (c.get("outcome") or "?"),
                            props.get("status") or DASH, _clip(reasons, 300) or DASH, props.get("rfc") or DASH])
    headers = ["server", "pass", "warn", "fail", "not judged", "total", "suite"]
    rows = []
    for s in servers:
        n = counts[s]
        missing = run.suite_missing(s, "conformance")
        rows.append([s, str(n["pass"]), str(n["warn"]), str(n["fail"]), str(n["other"]), str(sum(n.values())),
                     missing or (run.suite_cell(s, "conformance") or {}).get("status") or "?"])
    sec.tables.append(Table(
        "HTTP/1.1 conformance (suites/conformance): one data-driven case per request, judged against its RFC 9110/9112 "
        "rule. Pass = the expected outcome; Warn = a lenient outcome the RFC allows but does not prefer, or a "
        "SHOULD not met (the test passes with a warning); Fail = a MUST broken (the test fails); not judged = the "
        "case errored or was skipped before a verdict.", headers, rows, _align(headers, left=("server", "suite")),
        "the conformance suite did not run"))
    judged = [s for s in servers if run.cases(s, "conformance")]
    if judged:
        mh = ["category", *judged]
        mrows = []
        for row in sorted(per_row, key=row_key):
            label = f"row {row}" if row.isdigit() else row
            cells = []
            for s in judged:
                n = per_row[row].get(s)
                if not n:
                    cells.append(DASH)
                    continue
                text = f"{n['pass']}/{n['warn']}/{n['fail']}"
                if n["other"]:
                    text += f" (+{n['other']} not judged)"
                cells.append(text)
            mrows.append([label, *cells])
        sec.tables.append(Table(
            "Pass/warn/fail per category: 'row N' is row N of the checklist in docs/conformance.md (the rule and its RFC "
            "section), other names are case families (desync, te-forms, upgrade, ...).", mh, mrows,
            _align(mh, left=("category",))))
    bh = ["server", "case", "verdict", "status", "reasons", "RFC"]
    sec.tables.append(Table(
        "Every Warn and Fail: the case id (suites/conformance/cases.py), the status code(s) the server answered, "
        "and why the case was not a Pass.", bh, bad, _align(bh, left=bh), "no Warn and no Fail"))
    return sec


def _suites(run: _Run) -> Section:
    sec = Section("suites", "7. Suites")
    headers = ["server", "suite", "status", "passed", "failed", "error", "skipped", "reason"]
    rows = []
    for s in run.servers:
        for suite in run.suites:
            c = run.suite_cell(s, suite)
            if c is None:
                continue
            n = c.get("counts") or {}
            rows.append([s, suite, c.get("status") or "?", *(str(n.get(k, 0)) for k in
                                                             ("passed", "failed", "error", "skipped")),
                         _suite_reason(run, s, suite, c)])
    sec.tables.append(Table(
        "Each suite (pytest, run by the harness against the server with --server) per server: test counts from "
        "its JUnit XML. ok = every test passed or skipped; failed = a test failed (a finding about the server); "
        "error = the suite run itself failed or timed out; skipped = the server is unavailable here.",
        headers, rows, _align(headers, left=("server", "suite", "status", "reason")), "no suite ran"))
    return sec


def _suite_reason(run: _Run, server: str, suite: str, cell: dict) -> str:
    if cell.get("reason"):
        return _clip(cell["reason"], 200)
    parts = []
    cases = run.cases(server, suite)
    failed = [_short_test(c.get("name") or "?") + (f"[{run.case_id(server, c.get('name') or '')}]"
                                                   if run.case_id(server, c.get("name") or "") else "")
              for c in cases if c.get("outcome") in ("failed", "error")]
    if failed:
        parts.append("failed: " + ", ".join(failed[:3]) + (f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""))
    skipped = _ordered(_clip(c.get("message") or "no reason", 100) for c in cases if c.get("outcome") == "skipped")
    if skipped:
        parts.append("skipped: " + "; ".join(skipped[:2]) + (f" (+{len(skipped) - 2} more)" if len(skipped) > 2
                                                             else ""))
    return "; ".join(parts)


def _peers(run: _Run) -> Section | None:
    peers = {k: list(v) for k, v in (run.matrix.get("peers") or {}).items() if v}
    if not peers:
        return None
    sec = Section("peers", "8. Beside the reference servers")
    headers = ["server", "profile", "peer", "req/s", "peer req/s", "req/s ours/peer", "CPU-us/req",
               "peer CPU-us/req", "CPU ours/peer", "PSS MiB", "peer PSS MiB", "PSS ours/peer"]
    rows = []
    for ours in [s for s in run.servers if s in peers] + [s for s in peers if s not in run.servers]:
        for p in run.profiles:
            idle = run.mode(p) == "idle"
            ours_why = run.status_text(ours, p)
            for peer in peers[ours]:
                peer_why = run.unavailable(peer)
                peer_why = ("unavailable" if peer_why else None) or run.status_text(peer, p)
                row = [ours, p, peer]
                for metric in ("rps", "cpu_us_per_request", "pss_peak_mib"):
                    if idle and metric != "pss_peak_mib":
                        row += [DASH, DASH, DASH]
                        continue
                    a, b = run.median(ours, p, metric), run.median(peer, p, metric)
                    row += [ours_why or fmt_sig(a), peer_why or fmt_sig(b), fmt_ratio(_ratio(a, b))]
                rows.append(row)
    caption = ("Each of our MPMs beside the reference servers closest to it (matrix peers: Apache httpd's same MPM, "
               "gunicorn's closest worker), same profile, same run, medians over the ok trials. ours/peer: our "
               "median divided by the peer's; for req/s higher is better, for CPU-us/req and PSS lower is better. "
               "Idle profiles: PSS only.")
    sec.tables.append(Table(caption, headers, rows, _align(headers, left=("server", "profile", "peer"))))
    return sec


def _flags(run: _Run) -> Section:
    sec = Section("flags", "9. Flags and failures")
    headers = ["server", "profile / suite", "trial", "status", "reason", "flags"]
    rows = []
    collapsed: dict[tuple[str, str], list[str]] = {}
    for c in run.cells:
        status = c.get("status")
        if status == "ok":
            continue
        server = c.get("server") or "?"
        what = c.get("profile") if c.get("kind") == "profile" else f"suite {c.get('suite')}"
        if status == "skipped" and run.unavailable(server):
            collapsed.setdefault((server, c.get("reason") or ""), []).append(str(what))
            continue
        reason = c.get("reason") or ""
        if c.get("kind") == "suite" and not reason:
            reason = _suite_reason(run, server, c.get("suite") or "", c)
        elif status == "invalid" and not reason:
            reason = _invalid_reason(c)
        rows.append([server, str(what), str(c.get("trial", DASH)) if c.get("kind") == "profile" else DASH,
                     status or "?", _clip(reason, 200) or DASH,
                     ", ".join(c.get("flags") or []) or DASH])
    for (server, reason), whats in collapsed.items():
        rows.append([server, f"all {len(whats)} cells ({', '.join(whats)})", DASH, "skipped",
                     _clip(reason, 200) or DASH, DASH])
    sec.tables.append(Table(
        "Every cell that is not ok. invalid = measured, but not the server's capacity (errors, non-2xx answers, "
        "a starved connection or a generator-bound driver): left out of the medians; failed = the server crashed "
        "or hung, or the driver failed (the server's error log is kept under logs/); skipped = the server or "
        "driver cannot run here. Flags: generator_bound (driver above 90% of its CPUs), noisy (other processes "
        "used more CPU than the matrix's quiet threshold just before the trial), starved (a connection never got "
        "an answer), errors, non_2xx, late_sends (open loop: requests sent after their intended time), "
        "server_exited, server_hung. A suite that failed is a finding about the server: see tables 6 and 7.",
        headers, rows, _align(headers, left=headers), "every cell is ok"))
    nh = ["server", "noisy trials", "measured trials", "other CPU % (median, max)"]
    nrows = []
    for s in run.servers:
        cells = [c for c in run.cells if c.get("kind") == "profile" and c.get("server") == s
                 and c.get("status") != "skipped"]
        if not cells:
            continue
        other = [q.get("other_cpu_percent") for q in (c.get("quiet") or {} for c in cells)
                 if isinstance(q.get("other_cpu_percent"), (int, float))]
        other_text = (f"{fmt_sig(statistics.median(other), 2)}, {fmt_sig(max(other), 2)}" if other else DASH)
        nrows.append([s, str(sum(1 for c in cells if "noisy" in (c.get("flags") or []))), str(len(cells)),
                      other_text])
    sec.tables.append(Table(
        "Noisy trials per server: trials before which the quiet-machine check saw other processes use more than "
        f"{(run.matrix.get('quiet') or {}).get('max_other_cpu_percent', '?')}% of a CPU (other CPU %: that check's "
        "figure over the server's trials). A noisy trial is kept but should be read with care.",
        nh, nrows, _align(nh, left=("server",)), "no profile was measured"))
    uh = ["server", "launcher", "why unavailable"]
    urows = [[s, ((run.doc.get("servers") or {}).get(s) or {}).get("server") or s, run.unavailable(s)]
             for s in run.servers if run.unavailable(s)]
    sec.tables.append(Table("Servers that could not start on this machine (their cells are skipped).",
                            uh, urows, _align(uh, left=uh), "every server of the matrix was available"))
    return sec


def _invalid_reason(cell: dict) -> str:
    """Why a measured cell is not valid, from its driver result (the runner records only flags)."""
    r = cell.get("result") or {}
    flags = set(cell.get("flags") or [])
    parts = []
    errors = {k: v for k, v in (r.get("errors") or {}).items() if v}
    if errors:
        parts.append(f"{sum(errors.values()):,} errors (" + ", ".join(f"{k} {v:,}" for k, v in errors.items()) + ")")
    bad = {k: v for k, v in (r.get("status_counts") or {}).items() if not str(k).startswith("2") and v}
    if bad:
        parts.append("non-2xx answers (" + ", ".join(f"{k} x {v:,}" for k, v in bad.items()) + ")")
    if r.get("starved_connections"):
        parts.append(f"{r['starved_connections']} of {r.get('connections', '?')} connections never answered")
    if "generator_bound" in flags:
        frac = (cell.get("metrics") or {}).get("driver_cpu_fraction", r.get("driver_cpu_fraction"))
        parts.append(f"generator-bound (driver at {_pct(frac)} of its CPUs)")
    if r.get("late_sends"):
        parts.append(f"{r['late_sends']:,} late sends")
    return "; ".join(parts) or ("flags: " + ", ".join(sorted(flags)) if flags else "")


def _align(headers: list[str], left: Iterable[str]) -> list[str]:
    left = set(left)
    return ["left" if h in left else "right" for h in headers]


def build_sections(doc: dict, reference: str | None = None) -> list[Section]:
    """Every section of the report (environment, then tables 1-9), as text; see the module doc."""
    run = _Run(doc, reference)
    sections = [_environment(run), _throughput(run), _cpu(run), _memory(run), _growth(run), _availability(run),
                _threadsafety(run), _conformance(run), _suites(run), _peers(run), _flags(run)]
    return [s for s in sections if s is not None]


# -- rendering ------------------------------------------------------------------------------------

def _md_cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _md_table(t: Table) -> str:
    if not t.rows:
        return f"_{t.empty}_"
    rows = [[_md_cell(x) for x in r] for r in t.rows]
    return tabulate(rows, headers=[_md_cell(h) for h in t.headers], tablefmt="github", disable_numparse=True,
                    colalign=t.align)


def md_body(sections: list[Section], level: int = 2) -> str:
    out = []
    for sec in sections:
        out.append(f"{'#' * level} {sec.title}\n")
        if sec.items:
            out.append("\n".join(f"- {' '.join(i.split())}" for i in sec.items) + "\n")
        for t in sec.tables:
            out.append(" ".join(t.caption.split()) + "\n")
            out.append(_md_table(t) + "\n")
        for n in sec.notes:
            out.append(" ".join(n.split()) + "\n")
    return "\n".join(out)


def partial_line(doc: dict) -> str | None:
    status = doc.get("status")
    if status in PARTIAL_STATUSES:
        return (f"Partial results: {PARTIAL_STATUSES[status]} (status {status}); every table shows only the cells "
                f"measured before that.")
    return None


def render_markdown(doc: dict, reference: str | None = None) -> str:
    """The tables of run document ``doc`` as one markdown document (tabulate's github format).

    ``reference``: the server label the ratio columns divide by; None takes the matrix's
    ``reference``, ``""`` shows no ratios.  ValueError, naming the valid labels, if it is not
    a server of the run.
    """
    sections = build_sections(doc, reference)
    head = [f"# mpm-harness: run {doc.get('run_id') or '?'}\n"]
    partial = partial_line(doc)
    if partial:
        head.append(f"> **{partial}**\n")
    return "\n".join(head) + "\n" + md_body(sections)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 110em;
       padding: 0 1em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .4em 0 1.6em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .2em .55em; vertical-align: top; }
th { background: #f3f3f3; } tbody tr:nth-child(even) { background: #fafafa; }
p.caption { color: #444; max-width: 70em; font-size: .9em; }
p.partial { background: #fff3cd; border: 1px solid #e0c060; padding: .6em; font-weight: bold; }
p.empty { font-style: italic; color: #666; }
""".strip()


def _html_table(t: Table) -> str:
    if not t.rows:
        return f'<p class="empty">{html.escape(t.empty)}</p>'
    rows = [[html.escape(str(x)) for x in r] for r in t.rows]
    return tabulate(rows, headers=[html.escape(h) for h in t.headers], tablefmt="unsafehtml",
                    disable_numparse=True, colalign=t.align)


def html_body(sections: list[Section]) -> str:
    out = []
    for sec in sections:
        out.append(f'<h2 id="{html.escape(sec.key)}">{html.escape(sec.title)}</h2>')
        if sec.items:
            out.append("<ul>\n" + "\n".join(f"<li>{html.escape(i)}</li>" for i in sec.items) + "\n</ul>")
        for t in sec.tables:
            out.append(f'<p class="caption">{html.escape(t.caption)}</p>')
            out.append(_html_table(t))
        for n in sec.notes:
            out.append(f"<p>{html.escape(n)}</p>")
    return "\n".join(out)


def render_html(doc: dict, reference: str | None = None) -> str:
    """The same tables as :func:`render_markdown`, as one self-contained HTML page (inline CSS, no scripts).

    Every text taken from the document (labels, reasons, test names) is HTML-escaped.
    """
    sections = build_sections(doc, reference)
    title = f"mpm-harness: run {doc.get('run_id') or '?'}"
    partial = partial_line(doc)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>"]
    if partial:
        parts.append(f'<p class="partial">{html.escape(partial)}</p>')
    parts += [html_body(sections), "</body>", "</html>", ""]
    return "\n".join(parts)
