"""``harness advise``: which MPM suits this workload?  Measure the candidates, apply the rules, print the config.

    harness advise --thread-safe no --app myapp.wsgi:application --concurrency 20 --memory-budget 256
    harness advise --thread-safe yes --keepalive-share 0.8 --concurrency 50
    harness advise --workload workload.yaml --json
    harness advise --workload workload.yaml --from-run results/runs/<id>   # no measuring: reuse a run
    harness advise --thread-safe yes --from-run results/                   # or the published results, offline
    harness advise --thread-safe yes --from-run RUN_DIR --profile page-closed   # another closed-loop profile
    python -m harness.advisor ...                                          # the same, without the cli

It reads the workload (flags, or a small YAML file with the same keys; flags
win), builds a matrix of the candidate MPMs sized for that workload with the
user's app (``--app module:callable``), runs it like ``harness run`` (a run
folder under ``--results-dir``, so ``harness report`` works on it), turns the
medians into :class:`~harness.advice_rules.Measurement` objects and lets
:func:`~harness.advice_rules.recommend` decide.  ``--from-run`` reads a run
folder instead, or the published results (``results/``: the page ``harness run
--publish`` writes, whose tables and matrix hold every figure the rules use;
:mod:`harness.published` reads it back).  The report shows the workload as
understood, the recommendation, the rule that decided, the evidence, the
alternatives and why not, warnings, and the config as our YAML and as httpd
directives.  docs/advisor.md is the user's guide.

Exit status: 0 advice given, 2 bad input (the message names the flag, or the
file and key), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, TextIO

import yaml
from tabulate import tabulate

from .advice_peers import PeerAdvice, compare_peers
from .advice_rules import MPMS, AdviceError, Measurement, Recommendation, Workload, projected_pss, recommend, size
from .matrix import Matrix, MatrixError, parse_matrix, suggest
from .published import PUBLISHED_PAGE, Figures, PublishedPage, read_page
from .runview import ProfileStats, Run, as_run

__all__ = ["add_arguments", "command", "main", "load_workload_file", "workload_from_args", "parse_memory",
           "parse_thread_safe", "check_app", "candidates", "measure_set", "build_matrix", "measure", "mpm_of",
           "processes_of", "measurements_from_run", "measurements_from_page", "load_measurements", "is_reference",
           "peer_model", "peer_mapped", "split_peers", "render_peers",
           "uss_per_process", "RunInfo", "render_text", "advice_json", "yaml_block", "httpd_block"]

#: the workload file's keys (dashes in a key are read as underscores) -> the flag that overrides it
WORKLOAD_KEYS = {"thread_safe": "--thread-safe", "keepalive_share": "--keepalive-share",
                 "slow_clients": "--slow-clients", "memory_budget": "--memory-budget",
                 "concurrency": "--concurrency", "app": "--app", "cores": "--cores", "path": "--path",
                 "profile": "--profile"}
#: prefork is measured with at most this many children (more are projected from it)
PREFORK_MEASURE_MAX = 256
DEFAULT_DURATION = 2.0
_UNITS = {"": 1.0, "m": 1.0, "mb": 1.0, "mib": 1.0, "g": 1024.0, "gb": 1024.0, "gib": 1024.0, "k": 1 / 1024,
          "kb": 1 / 1024, "kib": 1 / 1024}
_APP_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


# -- reading the workload -------------------------------------------------------------------------


def parse_memory(value: Any, where: str) -> float:
    """MiB from a number (MiB) or text such as ``512``, ``512MiB``, ``2G``, ``1.5 GiB``."""
    if isinstance(value, bool):
        raise AdviceError(f"{where}: a memory budget in MiB (e.g. 512 or 2GiB), not {value!r}")
    if isinstance(value, (int, float)):
        mib = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise AdviceError(f"{where}: a memory budget in MiB (e.g. 512 or 2GiB), not {value!r}")
        mib = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not mib > 0:
        raise AdviceError(f"{where}: the memory budget must be > 0 MiB, not {value!r}")
    return mib


def parse_thread_safe(value: Any, where: str) -> str:
    """``yes``, ``no`` or ``unknown`` from text or a YAML boolean (YAML reads an unquoted yes as true)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    text = {"true": "yes", "false": "no", "y": "yes", "n": "no"}.get(text, text)
    if text not in ("yes", "no", "unknown"):
        raise AdviceError(f"{where}: thread_safe must be yes, no or unknown, not {value!r}")
    return text


def check_app(spec: str, where: str) -> str:
    """Check ``module:callable`` syntax and that the module can be found (without importing the app)."""
    if not _APP_RE.match(spec):
        raise AdviceError(f"{where}: the app must be module:callable (e.g. myproject.wsgi:application), "
                          f"not {spec!r}")
    module = spec.split(":", 1)[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise AdviceError(f"{where}: cannot find module {module!r} of app {spec!r} (is it on PYTHONPATH?)")
    return spec


def _typed(key: str, value: Any, where: str) -> Any:
    """One workload value, converted and type-checked."""
    if key == "thread_safe":
        return parse_thread_safe(value, where)
    if key == "memory_budget":
        return None if value is None else parse_memory(value, where)
    if key == "slow_clients":
        if not isinstance(value, bool):
            raise AdviceError(f"{where}: slow_clients must be true or false, not {value!r}")
        return value
    if key == "keepalive_share":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AdviceError(f"{where}: keepalive_share must be a number between 0 and 1, not {value!r}")
        return float(value)
    if key in ("concurrency", "cores"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AdviceError(f"{where}: {key} must be an integer, not {value!r}")
        return value
    if not isinstance(value, str):
        raise AdviceError(f"{where}: {key} must be a string, not {value!r}")
    return check_app(value, where) if key == "app" and value else value


def load_workload_file(path: str | Path) -> dict[str, Any]:
    """The workload file's values (keys normalised, typed); errors name the file and the key."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise AdviceError(f"{p}: no such workload file") from None
    except yaml.YAMLError as exc:
        raise AdviceError(f"{p}: not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise AdviceError(f"{p}: a workload file is a YAML mapping of {', '.join(WORKLOAD_KEYS)}")
    out: dict[str, Any] = {}
    for raw, value in doc.items():
        key = str(raw).replace("-", "_")
        if key not in WORKLOAD_KEYS:
            raise AdviceError(f"{p}: unknown key {raw!r}{suggest(key, WORKLOAD_KEYS)}; "
                              f"valid keys: {', '.join(WORKLOAD_KEYS)}")
        out[key] = _typed(key, value, f"{p}: {key}")
    return out


def workload_from_args(args: argparse.Namespace) -> Workload:
    """The workload from ``--workload FILE`` overridden by the flags given; validated (AdviceError)."""
    values: dict[str, Any] = load_workload_file(args.workload) if args.workload else {}
    source = args.workload or "command line"
    for key, flag in WORKLOAD_KEYS.items():
        given = getattr(args, key, None)
        if given is not None:
            values[key] = _typed(key, given, flag)
    kwargs = {("memory_budget_mib" if k == "memory_budget" else k): v for k, v in values.items()}
    return Workload(**kwargs, source=source)


# -- measuring ------------------------------------------------------------------------------------


def candidates(w: Workload) -> list[str]:
    """The MPMs worth measuring: prefork alone for an app not known to be thread-safe, else all three."""
    return list(MPMS) if w.threads_ok else ["prefork"]


def measure_set(mpm: str, w: Workload) -> dict[str, Any]:
    """The directives a candidate is measured with: its advised size, prefork with every child pre-forked."""
    d = dict(size(mpm, w).directives)
    if mpm == "prefork":
        n = min(d["MaxRequestWorkers"], PREFORK_MEASURE_MAX)
        d.update(ServerLimit=n, MaxRequestWorkers=n, StartServers=n, MinSpareServers=n, MaxSpareServers=n + 1)
    return d


def build_matrix(w: Workload, duration: float = DEFAULT_DURATION, trials: int = 1) -> Matrix:
    """The relevant part of the matrix: the candidates with the user's app, closed-loop load, idle load."""
    servers = [{"label": mpm, "server": mpm, "set": measure_set(mpm, w), "app": w.app} for mpm in candidates(w)]
    profiles: dict[str, dict] = {
        "load": {"driver": "loadgen", "mode": "closed", "connections": w.concurrency, "duration": duration,
                 "path": w.path, "description": f"closed loop, {w.concurrency} keep-alive connections"}}
    if w.idle_connections:
        # The runner measures profiles one after the other, and no driver holds idle connections while
        # another runs: the idle connections are measured on their own, after the load, and the advice says so.
        profiles["idle"] = {"driver": "idle", "connections": w.idle_connections, "duration": duration,
                            "timeout": max(2.0, duration), "path": w.path,
                            "description": f"{w.idle_connections} idle keep-alive connections, on their own "
                                           f"(after the load, not during it)"}
    doc = {"description": "harness advise: the candidate MPMs sized for the workload", "trials": trials,
           "warmup": 0.5, "quiet": {"seconds": 0.3}, "servers": servers, "suites": [], "profiles": profiles}
    return parse_matrix(doc, source="advise", name="advise")


def measure(w: Workload, *, duration: float, trials: int, results_dir: str, out: TextIO,
            argv: list[str] | None = None):
    """Run the advisor's matrix into a new run folder; the RunDocument (progress lines go to ``out``)."""
    from .runner import run_matrix

    run = run_matrix(build_matrix(w, duration, trials), results_dir=results_dir, out=out, argv=argv)
    try:  # the tables, as `harness run` writes them (the report module may evolve separately)
        from .report.files import write_tables

        write_tables(run.doc, run.run_dir)
    except Exception as exc:  # pragma: no cover - only when the report module itself fails
        print(f"tables not written ({type(exc).__name__}: {exc}); `harness report {run.run_dir}` retries",
              file=out)
    return run


# -- measurements from a run document -------------------------------------------------------------


def mpm_of(server: str) -> str | None:
    """The MPM a launcher name runs (``event``, ``apache-event`` -> event); None for other servers."""
    name = server.removeprefix("apache-")
    return name if name in MPMS else None


def peer_model(server: str) -> str | None:
    """The model (prefork, worker or event) of a peer: a launcher serving the same WSGI app that is not ours.

    The model is the MPM whose directives the launcher validates its ``set:`` against
    (``servers.launcher.model``: gunicorn-sync and uwsgi-processes prefork; gunicorn-gthread,
    uwsgi-threads, granian and waitress worker; modwsgi-X X, modwsgi-daemon event, its front).
    None for our MPMs, for httpd serving files (``apache-*``: the C ceiling, never a peer of a
    Python app) and for names the launcher does not know.
    """
    from servers.launcher import model

    if server in MPMS or server.startswith("apache-"):
        return None
    return model(server)


def peer_mapped(server: str) -> frozenset[str] | None:
    """The directives a peer applies (its ``servers.external`` module's MAPPED); None for httpd + mod_wsgi,
    which takes httpd's directives one to one."""
    import importlib

    from servers.launcher import EXTERNAL

    module = EXTERNAL[server][0] if server in EXTERNAL else ""
    if module in ("", "modwsgi", "apache"):
        return None
    return getattr(importlib.import_module(f"servers.external.{module}"), "MAPPED", None)


def split_peers(ms: Mapping[str, Measurement]) -> tuple[dict[str, Measurement], dict[str, Measurement]]:
    """(our servers and the reference servers, the peers) of a measurements mapping."""
    return ({k: m for k, m in ms.items() if not m.peer}, {k: m for k, m in ms.items() if m.peer})


def is_reference(server: str) -> bool:
    """A reference server (httpd's ``apache-*`` launchers): shown, never used in the decision.

    httpd runs with its own configuration and process model, so neither its
    process count nor its PSS maps onto the sizing the advisor prints.
    """
    return server.startswith("apache-")


def uss_per_process(run: Run | Mapping[str, Any], label: str, profiles: list[str | None]) -> float | None:
    """Median over the ok cells of the first profile that has it: the tree's summed USS / its processes, MiB.

    The sampler's window has ``uss_peak`` (bytes, summed over the server
    tree) and ``processes_peak`` (the tree's processes, parent included).
    """
    for profile in profiles:
        if not profile:
            continue
        vals = sorted(c.sampler["uss_peak"] / c.sampler["processes_peak"] / 2**20
                      for c in as_run(run).profile_cells(label, profile)
                      if c.ok and c.sampler.get("uss_peak") and c.sampler.get("processes_peak"))
        if vals:
            return round(vals[len(vals) // 2], 3)
    return None


def _pick_profiles(profiles: Mapping[str, Any], wanted: str = "", where: str = "--profile",
                   source: str = "the run") -> tuple[str | None, str | None, int | None]:
    """(closed-loop profile, idle profile, its connections) of a matrix's ``profiles``: ``wanted`` (``--profile``)
    when given, else the advisor's own ``load``, else ``hello-closed``, else the first of each kind.

    A ``wanted`` profile that is not a closed-loop profile of ``source`` is an :class:`AdviceError` that
    names it and the closed-loop profiles there are.
    """
    specs = {n: p for n, p in (profiles or {}).items() if isinstance(p, Mapping)}
    closed = [n for n, p in specs.items() if p.get("driver") == "loadgen" and p.get("mode", "closed") == "closed"]
    idle = [n for n, p in specs.items() if p.get("driver") == "idle"]
    if wanted and wanted not in closed:
        raise AdviceError(_not_closed(wanted, specs.get(wanted), closed, where, source))
    load = wanted or ("load" if "load" in closed else
                      ("hello-closed" if "hello-closed" in closed else next(iter(closed), None)))
    idle_name = "idle" if "idle" in idle else next(iter(idle), None)
    conns = specs[load].get("connections") if load else None
    return load, idle_name, conns


def _not_closed(wanted: str, spec: Mapping[str, Any] | None, closed: list[str], where: str, source: str) -> str:
    """Why ``wanted`` cannot give the throughput figures, and which profiles can."""
    can = f"its closed-loop profiles: {', '.join(closed)}" if closed else "it has no closed-loop profile"
    if spec is None:
        return f"{where}: profile {wanted!r} is not in {source}; {can}"
    kind = f"driver {spec.get('driver')}" + (f", {spec.get('mode')} loop" if spec.get("mode") else "")
    return (f"{where}: profile {wanted!r} of {source} is not a closed-loop load ({kind}): the throughput figures "
            f"come from one; {can}")


def _check_figures(wanted: str, figures: list[Figures | None], where: str, source: str) -> None:
    """A profile the user chose must have figures: the matrix may list a profile no server ran (or, on a
    published page, one the tables print no row for)."""
    if wanted and not any(f is not None for f in figures):
        raise AdviceError(f"{where}: profile {wanted!r} has no figures in {source}: no server of it was measured "
                          f"on that profile")


def processes_of(mpm: str, directives: dict, connections: int | None) -> int | None:
    """Child processes a server ran with these directives under ``connections`` connections."""
    from servers.config import ConfigError, load_config
    from servers.mpm import MPMS as MPM_SPECS

    try:
        cfg = load_config(mpm, overrides={"Listen": "127.0.0.1:0", **directives})
    except ConfigError:
        return None
    conns = connections or cfg.MaxRequestWorkers
    # one unit per connection up to MaxRequestWorkers, in whole children, never fewer than
    # StartServers nor more than the process limit (the MPM's own sizing, servers.mpm.spec)
    spec = MPM_SPECS[mpm]
    wanted = math.ceil(min(conns, cfg.MaxRequestWorkers) / spec.threads_per_child(cfg))
    return min(spec.process_limit(cfg), max(cfg.StartServers, wanted))


def _status(stats: ProfileStats) -> tuple[str, str]:
    if stats.ok:
        return "ok", ""
    # the commonest status; a tie goes to the first in alphabetical order
    status = max(sorted(stats.statuses), key=stats.statuses.get) if stats.statuses else "missing"
    reason = "; ".join(sorted(stats.reasons)) or ", ".join(stats.flags)
    return status, reason


def _idle_answered(run: Run, label: str, idle: str) -> float | None:
    """Median answered fraction of the idle profile over every measured trial (idle cells stay ok when starved)."""
    vals = sorted(c.metric("answered_fraction") for c in run.profile_cells(label, idle)
                  if c.status in ("ok", "invalid") and c.metric("answered_fraction") is not None)
    return vals[len(vals) // 2] if vals else None


def _p99(stats: ProfileStats) -> float | None:
    """p99 of the ok trials' HdrHistograms added together, as the report's table 1 prints it (docs/report.md);
    the median of the trials' own p99 only when the cells carry no histograms."""
    from .report.latency import percentiles_ms

    hdrs = [c.hdr for c in stats.cells if c.ok]
    merged = percentiles_ms(hdrs) if hdrs else None
    return merged["p99_ms"] if merged is not None else stats.median("p99_ms")


_MEDIANS = ("rps", "cpu_us_per_request", "pss_peak_mib", "rss_peak_mib", "pss_per_idle_conn_kib")


def _run_figures(run: Run, label: str, profile: str | None) -> Figures | None:
    """A run's figures of ``label`` x ``profile`` (None: the profile is not in the run, or never ran there)."""
    st = run.stats(label, profile) if profile else None
    if st is None:
        return None
    status, reason = _status(st)
    spread = st.spread("rps")
    return Figures(status, reason, st.ok, st.flags, st.noisy,
                    {**{m: st.median(m) for m in _MEDIANS}, "p99_ms": _p99(st)},
                    (spread.max - spread.min) / spread.median if spread.n >= 2 and spread.median else None,
                    _idle_answered(run, label, profile))


def _measurement(label: str, server: str, directives: Mapping[str, Any], conns: int | None,
                 idle_conns: int | None, le: Figures | None, ie: Figures | None,
                 uss: float | None = None, app: str = "") -> Measurement:
    """The :class:`Measurement` of one server (ours, a reference or a peer) from its closed-loop (``le``) and
    idle (``ie``) figures."""
    mpm = mpm_of(server) or peer_model(server)
    reference = is_reference(server)
    le_m, ie_m = (le.medians if le else {}), (ie.medians if ie else {})
    return Measurement(
        label=label, mpm=mpm, status=le.status if le else "missing",
        reason=le.reason if le else "profile not in the run", connections=conns,
        # httpd's process count is its own configuration's: never derived from our defaults
        processes=None if reference else processes_of(mpm, dict(directives), conns),
        uss_per_process_mib=None if reference else uss, reference=reference,
        rps=le_m.get("rps"), cpu_us_per_request=le_m.get("cpu_us_per_request"), p99_ms=le_m.get("p99_ms"),
        pss_peak_mib=le_m.get("pss_peak_mib"), rss_peak_mib=le_m.get("rss_peak_mib"),
        idle_connections=idle_conns if ie else None, idle_answered_fraction=ie.answered if ie else None,
        pss_per_idle_conn_kib=ie_m.get("pss_per_idle_conn_kib"), idle_pss_peak_mib=ie_m.get("pss_peak_mib"),
        idle_status=ie.status if ie else "",
        flags=tuple(sorted(set(le.flags if le else ()) | set(ie.flags if ie else ()))),
        trials=le.ok if le else 0, rps_spread=le.rps_spread if le else None, noisy=bool(le and le.noisy),
        peer=mpm_of(server) is None, server=server, app=app)


def _wanted(server: str, peers: bool) -> bool:
    return mpm_of(server) is not None or (peers and peer_model(server) is not None)


def measurements_from_run(run: Run | Mapping[str, Any], peers: bool = False, profile: str = "",
                          where: str = "--profile", source: str = "the run") -> dict[str, Measurement]:
    """One :class:`Measurement` per MPM server of a run (medians over its ok trials).

    Our own launchers (prefork, worker, event) are what the advice rests on;
    httpd's (``apache-*``) come back marked ``reference``: shown, labelled,
    never used in the decision (:func:`is_reference`).  With ``peers``, the
    servers running the same app on another server (:func:`peer_model`) come
    back too, marked ``peer``, for :func:`~harness.advice_peers.compare_peers`.
    ``profile`` chooses the closed-loop profile the throughput figures come from
    (``--profile``, named ``where`` in errors; default: :func:`_pick_profiles`'s).
    """
    run = as_run(run)
    load, idle, conns = _pick_profiles(run.matrix.get("profiles"), profile, where, source)
    idle_conns = run.profile_spec(idle).get("connections") if idle else None
    out: dict[str, Measurement] = {}
    loads: list[Figures | None] = []
    for label in run.recorded_servers:
        info = run.server(label)
        if not _wanted(info.server, peers) or not info.available:
            continue
        loads.append(_run_figures(run, label, load))
        out[label] = _measurement(label, info.server, info.set, conns, idle_conns, loads[-1],
                                  _run_figures(run, label, idle), uss_per_process(run, label, [load, idle]),
                                  info.app)
    _check_figures(profile, loads, where, source)
    return out


# -- measurements from published results (results/README.md) -----------------------------------------


def measurements_from_page(page: str | Path, peers: bool = False, profile: str = "", where: str = "--profile"
                           ) -> tuple[dict[str, Measurement], RunInfo, list[str]]:
    """Measurements from a published results page (``results/README.md``): the figures as tables 1-3 print them.

    Medians and min-max at three significant figures, p99 from the merged
    histograms (table 1), no USS (memory at another size is projected
    proportionally, and said so); :func:`harness.published.read_page` reads
    the page. Returns the measurements, where they came from, and warnings
    about the source; ``peers`` and ``profile`` as for :func:`measurements_from_run` (the page
    prints the peers' rows like any server's, and a row per closed-loop profile).
    """
    pub = read_page(page)
    profiles = pub.matrix.get("profiles") or {}
    source = f"the published page {pub.path}"
    load, idle, conns = _pick_profiles(profiles, profile, where, source)
    idle_conns = profiles[idle].get("connections") if idle else None
    out: dict[str, Measurement] = {}
    loads: list[Figures | None] = []
    for server in pub.matrix.get("servers") or ():
        label, launcher = server.get("label", ""), server.get("server", "")
        le, ie = pub.figures(label, load), pub.figures(label, idle)
        if not _wanted(launcher, peers) or (le is not None and le.reason == "unavailable"):
            continue
        loads.append(le)
        out[label] = _measurement(label, launcher, server.get("set") or {}, conns, idle_conns, le, ie,
                                  app=server.get("app") or "")
    _check_figures(profile, loads, where, source)
    return out, RunInfo.from_page(pub, load or ""), list(pub.notes)


def load_measurements(path: str | Path, peers: bool = False, profile: str = "", where: str = "--profile"
                      ) -> tuple[dict[str, Measurement], RunInfo, list[str]]:
    """``--from-run PATH``: a run folder (or its run.json), or a published results folder (or its page).

    A folder with a ``run.json`` is a run; one without it but with the page
    ``harness run --publish`` writes (``results/``) is read from the page
    (:func:`measurements_from_page`). Returns the measurements, where they came
    from, and warnings about the source; ``peers`` and ``profile`` as for :func:`measurements_from_run`.
    """
    p = Path(path)
    page = p if p.suffix == ".md" else p / PUBLISHED_PAGE
    if p.suffix == ".md" or (p.is_dir() and not (p / "run.json").exists() and page.is_file()):
        return measurements_from_page(page, peers, profile, where)
    if p.is_dir() and not (p / "run.json").exists():
        raise AdviceError(f"{p}: neither a run folder (no run.json) nor published results (no {PUBLISHED_PAGE})")
    run = Run.load(p)
    ms = measurements_from_run(run, peers, profile, where, f"the run {path}")
    return ms, RunInfo.from_run(run, str(path), measured_now=False, profile=profile), []


# -- output ---------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """Where the measurements came from."""

    run_dir: str = ""
    trials: int = 0
    duration: float = 0.0
    server_cpus: list[int] = field(default_factory=list)
    measured_now: bool = False
    status: str = ""
    published: str = ""  # the run id, when the figures come from a published results page
    profile: str = ""  # the closed-loop profile the throughput figures come from

    @classmethod
    def from_run(cls, run: Run, run_dir: str, measured_now: bool, profile: str = "") -> "RunInfo":
        """From a run's matrix and environment (``profile``: the chosen closed-loop profile, if one was)."""
        load, _, _ = _pick_profiles(run.matrix.get("profiles"), profile)
        duration = run.profile_spec(load).get("duration", 0.0) if load else 0.0
        cpus = (run.environment.get("pinning") or {}).get("server_cpus", [])
        return cls(run_dir, run.matrix.get("trials", 0), duration, list(cpus), measured_now, run.status,
                   profile=load or "")

    @classmethod
    def from_page(cls, page: PublishedPage, load: str = "") -> "RunInfo":
        """From a published page's matrix and Environment (its run id: ``?`` when the page names none);
        ``load``: the closed-loop profile the figures were read from."""
        profiles = page.matrix.get("profiles") or {}
        duration = (profiles.get(load) or {}).get("duration", 0.0) if load else 0.0
        return cls(str(page.path), page.matrix.get("trials", 0), duration, list(page.server_cpus), False,
                   page.status, published=page.run_id or "?", profile=load)

    def describe(self) -> str:
        """One line: the run folder, trials, duration, pinning, and the caveat."""
        pin = f", server pinned to CPU {','.join(map(str, self.server_cpus))}" if self.server_cpus else ""
        how = "measured now" if self.measured_now else "from the published results" if self.published else \
            "from an existing run"
        run = f", run {self.published}" if self.published else ""
        run += f", profile {self.profile}" if self.profile else ""
        caveat = "; more trials (--trials 3 or more) give firmer numbers" if self.trials < 3 else ""
        if self.published:
            caveat += "; the figures as the page prints them: 3 significant figures, no USS"
        return (f"{how}: {self.run_dir}{run} ({self.trials} trial{'s' if self.trials != 1 else ''} of "
                f"{self.duration:g} s per profile{pin}){caveat}")


def _config(rec: Recommendation):
    """The sized directives as an effective ServerConfig (validated by the servers' own loader)."""
    from servers.config import load_config

    return load_config(rec.mpm, overrides={"Listen": "127.0.0.1:0", **rec.sizing.directives})


def yaml_block(rec: Recommendation, w: Workload) -> str:
    """Our YAML: a file for ``python -m servers MPM --config FILE``, the same mapping a matrix's ``set:``."""
    head = [f"# mpm-harness: python -m servers {rec.mpm} --config advised.yaml"
            + (f" --app {w.app}" if w.app else ""),
            "# (the same mapping is a harness matrix server's `set:`)"]
    body = yaml.safe_dump(dict(rec.sizing.directives), sort_keys=False, default_flow_style=False).rstrip()
    return "\n".join(head) + "\n" + body + "\n"


def httpd_block(rec: Recommendation) -> str:
    """The equivalent httpd 2.4 directives: the MPM's LoadModule and ``<IfModule>``, core and mod_reqtimeout."""
    from servers.external.apache import directives

    values = dict(directives(_config(rec)))
    names = list(rec.sizing.directives)
    core = [n for n in names if n in ("KeepAliveTimeout",)]
    reqtimeout = [n for n in names if n == "RequestReadTimeout"]
    mpm_names = [n for n in names if n not in core and n not in reqtimeout]
    lines = ["# httpd 2.4: load exactly one MPM module",
             f"LoadModule mpm_{rec.mpm}_module modules/mod_mpm_{rec.mpm}.so",
             f"<IfModule mpm_{rec.mpm}_module>"]
    lines += [f"    {n} {values[n]}" for n in mpm_names]
    lines.append("</IfModule>")
    lines += [f"{n} {values[n]}" for n in core]
    if reqtimeout:
        lines += ["LoadModule reqtimeout_module modules/mod_reqtimeout.so", "<IfModule reqtimeout_module>",
                  f"    RequestReadTimeout {values['RequestReadTimeout']}", "</IfModule>"]
    if rec.mpm != "prefork":
        lines += ["# sized for mpm-harness's Python MPMs (processes = cores, because of the GIL); httpd's C threads",
                  "# have no GIL: keep MaxRequestWorkers, any ServerLimit x ThreadsPerChild split serves it"]
    if rec.mpm == "event":
        lines += ["# httpd's event frees the worker for idle keep-alive, write completion (slow readers) and",
                  "# lingering close, but still holds a worker while a slow client sends its request head/body:",
                  "# against slow senders (slowloris) RequestReadTimeout (mod_reqtimeout) is the protection"]
    return "\n".join(lines) + "\n"


def _table(rec: Recommendation, w: Workload, ms: dict[str, Measurement]) -> str:
    rows = []
    rejected = {a.mpm: a for a in rec.rejected}
    seen = set()
    for m in ms.values():
        if m.reference:
            verdict = "reference (httpd), not used"
        elif m.label == rec.label and m.mpm == rec.mpm:
            verdict = "RECOMMENDED"
        elif m.mpm in seen:
            verdict = f"not used (first {m.mpm} server is)"
        else:
            verdict = "not chosen"
        if not m.reference:
            seen.add(m.mpm)
        n = size(m.mpm, w).processes
        at_size = "-" if m.reference else _n(projected_pss(m, n)) + (
            "" if m.processes in (None, n) or m.pss_mib is None else " (projected)")
        idle = f"{m.idle_answered:.0f} of {m.idle_connections}" if m.idle_answered is not None else "-"
        kib = "~0" if (m.pss_per_idle_conn_kib or 1) <= 0 else _n(m.pss_per_idle_conn_kib, 1)
        rows.append((m.label, m.mpm, verdict, _n(m.rps), _n(m.cpu_us_per_request), _n(m.p99_ms, 1),
                     f"{_n(m.pss_mib, 1)} ({m.processes or '?'})", at_size, idle, kib,
                     m.status + (f" [{', '.join(m.flags)}]" if m.flags else "")))
    for mpm in MPMS:
        if mpm not in seen:
            why = "excluded by rule" if mpm in rejected else "not measured"
            rows.append((mpm, mpm, "RECOMMENDED" if mpm == rec.mpm else why, *["-"] * 7, "not measured"))
    headers = ["server", "MPM", "verdict", "req/s", "CPU-us/req", "p99 ms", "PSS MiB (procs)",
               "PSS at advised size", "idle answered (alone)", "KiB/idle conn", "status"]
    return tabulate(rows, headers=headers, tablefmt="github")


def _n(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _workload_lines(w: Workload) -> list[str]:
    ts = {"yes": "yes", "no": "no", "unknown": "unknown (treated as NOT thread-safe)"}[w.thread_safe]
    budget = f"{w.memory_budget_mib:g} MiB of PSS" if w.memory_budget_mib is not None else "none given"
    rows = [("app", w.app or "servers.apps:app (the built-in hello app)"), ("request path", w.path),
            ("thread-safe", ts), ("concurrency", f"{w.concurrency} requests in flight at the peak"),
            ("keep-alive share", f"{w.keepalive_share:g} -> {w.idle_connections} idle keep-alive connections "
                                 f"held besides"),
            ("slow/mobile clients", "yes" if w.slow_clients else "no"), ("memory budget", budget),
            ("CPU cores", str(w.cores))]
    if w.profile:
        rows.append(("throughput profile", f"{w.profile} (of the run: --profile)"))
    return [f"  {k:<20} {v}" for k, v in rows]


def _bullets(items, indent: str = "  - ") -> list[str]:
    out = []
    for item in items:
        out += textwrap.wrap(item, width=110, initial_indent=indent, subsequent_indent=" " * len(indent))
    return out


def _pss_note(w: Workload, ms: dict[str, Measurement]) -> list[str]:
    if w.memory_budget_mib is None:
        return []
    text = ("The budget is compared with PSS (proportional set size: each shared page is divided among the "
            "processes sharing it), not summed RSS, which counts a prefork child's shared pages (interpreter, "
            "app code) once per child.")
    pre = next((m for m in ms.values() if m.mpm == "prefork" and not m.reference and m.rss_peak_mib
                and m.pss_peak_mib), None)
    if pre is not None:
        text += f" Measured on {pre.label}: summed RSS {pre.rss_peak_mib:,.0f} MiB, PSS {pre.pss_peak_mib:,.0f} MiB."
    text += (" PSS at a process count other than the one measured is projected, and marked so: the shared part "
             "stays, each process more or fewer adds or saves its private memory (the tree's summed USS / its "
             "processes; in proportion to the process count only when no USS was measured).")
    return ["", *_bullets([text], "  ")]


def _peer_rows(pa: PeerAdvice) -> list[tuple]:
    ours = pa.ours
    rows = [(ours.label, ours.mpm, "ours, RECOMMENDED", _n(ours.rps), "1.00x", _n(ours.cpu_us_per_request),
             _n(ours.p99_ms, 1), _n(ours.pss_mib, 1), _n(pa.ours_pss))] if ours is not None else []
    for c in sorted(pa.checked, key=lambda c: -(c.m.rps or 0)):
        named = pa.config is not None and c is pa.best
        verdict = "NAMED: better" if named else ("qualifies" if not c.why_not else "excluded (below)")
        ratio = f"{c.m.rps / ours.rps:.2f}x" if ours is not None and ours.rps and c.m.rps is not None else "-"
        rows.append((c.m.label, c.m.mpm, verdict, _n(c.m.rps), ratio, _n(c.m.cpu_us_per_request),
                     _n(c.m.p99_ms, 1), _n(c.m.pss_mib, 1), _n(c.pss_at_size)))
    return rows


def _peer_hint(pa: PeerAdvice | None) -> list[str]:
    if pa is None or pa.config is None:
        return []
    return [f"  A peer does better on the same app: {pa.best.m.label}, {pa.ratio:.2f}x the req/s (section Peers, "
            f"at the end)"]


def render_peers(w: Workload, pa: PeerAdvice | None) -> list[str]:
    """The peers section: the verdict with the ratio, every peer's figures beside ours, why each excluded one
    is, which hold a worker per idle connection, and the named peer's sized matrix server entry."""
    if pa is None:
        return []
    headers = ["server", "model", "verdict", "req/s", "x ours", "CPU-us/req", "p99 ms", "PSS MiB",
               "PSS at advised size"]
    lines = ["", "Peers: the same app on other servers (the same profile of the same run)", *_bullets([pa.summary]),
             "", tabulate(_peer_rows(pa), headers=headers, tablefmt="github")]
    excluded: dict[str, list[str]] = {}  # one line per reason: seven threaded peers share one
    for c in pa.checked:
        if c.why_not:
            excluded.setdefault(c.why_not, []).append(c.m.label)
    lines += _bullets([f"{', '.join(labels)}: {why}" for why, labels in excluded.items()])
    if w.idle_connections:
        lines += _bullets([f"{c.m.label} {c.pins}" for c in pa.checked if c.pins and c.pins not in c.why_not])
    lines += _bullets([f"caveat: {c}" for c in pa.caveats])
    if pa.config is not None:
        entry = yaml.safe_dump([pa.config], sort_keys=False, default_flow_style=None).rstrip()
        lines += ["", *_bullets([f"Configuration: {pa.config['server']}, as a harness matrix server (under "
                                 f"`servers:`; `harness run --matrix FILE` measures it); its directive mapping: "
                                 f"{pa.docs}"], ""), _indent(entry + "\n"), *_bullets(pa.best.sizing.notes)]
    return lines


def render_text(w: Workload, rec: Recommendation, ms: dict[str, Measurement], info: RunInfo | None,
                peers: PeerAdvice | None = None) -> str:
    """The readable report: workload, recommendation, rule, evidence, alternatives, warnings, config, and the
    peers compared with it (:func:`render_peers`)."""
    lines = ["Workload, as understood", *_workload_lines(w), "",
             f"Recommendation: {rec.mpm.upper()}  ({_summary(rec)})", *_peer_hint(peers), "",
             f"Decided by rule `{rec.rule}`:", *_bullets([rec.decision]), *_bullets([rec.rule_text], "    "), "",
             "Evidence" + (f" ({info.describe()})" if info else " (nothing measured)")]
    lines += _bullets(rec.evidence)
    if ms:
        lines += ["", _table(rec, w, ms)]
    lines += _pss_note(w, ms)
    lines += ["", "Alternatives, and why not", *_bullets([f"{a.mpm}: {a.why}" for a in rec.rejected])]
    if rec.warnings:
        lines += ["", "Warnings", *_bullets(rec.warnings)]
    lines += ["", "How the size was derived", *_bullets(rec.sizing.notes)]
    lines += ["", "Configuration: mpm-harness YAML", _indent(yaml_block(rec, w)),
              "Configuration: httpd", _indent(httpd_block(rec))]
    lines += render_peers(w, peers)
    return "\n".join(lines)


def _summary(rec: Recommendation) -> str:
    d = rec.sizing.directives
    keys = [k for k in ("ServerLimit", "ThreadsPerChild", "MaxRequestWorkers", "AsyncRequestWorkerFactor") if k in d]
    return ", ".join(f"{k} {d[k]:g}" if isinstance(d[k], float) else f"{k} {d[k]}" for k in keys)


def _indent(text: str) -> str:
    return textwrap.indent(text, "    ")


def advice_json(w: Workload, rec: Recommendation, ms: dict[str, Measurement], info: RunInfo | None,
                peers: PeerAdvice | None = None) -> dict:
    """The same as :func:`render_text`, machine-readable (``peers``: None when the run measured none)."""
    return {"workload": w.to_dict(), "recommendation": rec.to_dict(),
            "measurements": {k: m.to_dict() for k, m in ms.items()},
            "run": None if info is None else vars(info),
            "config": {"yaml": yaml_block(rec, w), "httpd": httpd_block(rec)},
            "peers": None if peers is None else peers.to_dict()}


# -- the command ----------------------------------------------------------------------------------


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number between 0 and 1, not {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return v


def _duration(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seconds, not {text!r}") from None
    if not 0 < v <= 600:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 600 seconds, not {text}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``harness advise`` options (every workload flag overrides the --workload file's key)."""
    w = parser.add_argument_group("the workload (flags override --workload FILE)")
    w.add_argument("--workload", metavar="FILE.yaml", help=f"a YAML file with the keys {', '.join(WORKLOAD_KEYS)}")
    w.add_argument("--thread-safe", dest="thread_safe", choices=("yes", "no", "unknown"),
                   help="is the app (and every library it uses) thread-safe? unknown is treated as no "
                   "(default: unknown)")
    w.add_argument("--keepalive-share", dest="keepalive_share", type=_share, metavar="0..1",
                   help="share of clients that keep an idle keep-alive connection open: share x concurrency idle "
                   "connections are held besides the active ones (default: 0)")
    w.add_argument("--slow-clients", dest="slow_clients", action=argparse.BooleanOptionalAction, default=None,
                   help="slow or mobile clients (slow request senders, lossy links)")
    w.add_argument("--memory-budget", dest="memory_budget", metavar="MiB",
                   help="memory for the whole server, as PSS: 512, 512MiB, 2GiB (default: none)")
    w.add_argument("--concurrency", type=_positive_int, metavar="N",
                   help="requests in flight at the peak (default: 50)")
    w.add_argument("--app", metavar="MODULE:CALLABLE", help="your WSGI app (default: the built-in hello app)")
    w.add_argument("--path", metavar="/PATH", help="the request path the load uses (default: /)")
    w.add_argument("--cores", type=_positive_int, metavar="N",
                   help="CPU cores of the production machine, for sizing (default: this machine's)")
    m = parser.add_argument_group("measuring")
    m.add_argument("--from-run", metavar="RUN_DIR", help="use a run's measurements instead of measuring: a run "
                   "folder (or its run.json), or published results (results/, read from its README.md)")
    w.add_argument("--profile", metavar="NAME", help="with --from-run: the run's closed-loop profile the "
                   "throughput figures come from, e.g. page-closed (default: hello-closed, or the run's first)")
    m.add_argument("--duration", type=_duration, default=DEFAULT_DURATION, metavar="SECONDS",
                   help=f"seconds per load profile (default: {DEFAULT_DURATION:g})")
    m.add_argument("--trials", type=_positive_int, default=1, metavar="N",
                   help="measured trials per server and profile (default: 1; 3 or more give firmer numbers)")
    m.add_argument("--results-dir", default="results/runs", metavar="DIR",
                   help="where the run folder is created (default: results/runs)")
    parser.add_argument("--json", action="store_true", help="print the advice as JSON")


def _advise(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    w = workload_from_args(args)
    where = "--profile" if args.profile is not None else f"{args.workload}: profile"
    if w.profile and not args.from_run:
        raise AdviceError(f"{where} {w.profile}: needs --from-run RUN_DIR: it chooses a closed-loop profile of a "
                          f"run or published page; the advisor's own run measures one load (your --app at --path)")
    if args.from_run:
        ms, info, notes = load_measurements(args.from_run, peers=True, profile=w.profile, where=where)
        ms, peer_ms = split_peers(ms)
        rec = recommend(w, ms)
        peers = compare_peers(w, rec, {**ms, **peer_ms}, {m.server: peer_mapped(m.server) for m in peer_ms.values()})
        if w.app:
            notes.append(f"--app {w.app} not measured: the measurements come from {args.from_run}")
        for note in notes:
            rec = _with_warning(rec, note)
    else:
        written = measure(w, duration=args.duration, trials=args.trials, results_dir=args.results_dir, out=err,
                          argv=sys.argv)
        run = Run(written.doc)
        if run.status == "interrupted":
            print("harness advise: interrupted; the partial run is kept in " + str(written.run_dir), file=err)
            return 130
        ms = measurements_from_run(run)
        info = RunInfo.from_run(run, str(written.run_dir), measured_now=True)
        rec = recommend(w, ms)
        peers = None  # the advisor's own run measures our MPMs only
        _save(written.run_dir, w, rec, ms, info)
    if args.json:
        print(json.dumps(advice_json(w, rec, ms, info, peers), indent=1, default=str), file=out)
    else:
        print(render_text(w, rec, ms, info, peers), file=out)
    return 0


def _with_warning(rec: Recommendation, text: str) -> Recommendation:
    return replace(rec, warnings=rec.warnings + (text,))


def _save(run_dir: Path, w: Workload, rec: Recommendation, ms: dict[str, Measurement], info: RunInfo) -> None:
    """Keep the advice beside the measurements: advice.json and advice.txt in the run folder."""
    from .results import write_json_atomic

    write_json_atomic(Path(run_dir) / "advice.json", advice_json(w, rec, ms, info))
    (Path(run_dir) / "advice.txt").write_text(render_text(w, rec, ms, info) + "\n")


def command(args: argparse.Namespace) -> int:
    """Run ``harness advise`` with parsed ``args``: 0 advice given, 2 bad input, 130 interrupted."""
    try:
        return _advise(args, sys.stdout, sys.stderr)
    except (AdviceError, MatrixError, ValueError) as exc:
        print(f"harness advise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness advise: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.advisor``: the same as ``harness advise``."""
    parser = argparse.ArgumentParser(prog="harness advise", description="Which MPM suits this workload? "
                                     "Measures the candidates with your app and recommends one, with the evidence "
                                     "and a ready-to-use configuration (docs/advisor.md).")
    add_arguments(parser)
    return command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
