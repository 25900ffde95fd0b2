"""locust as a load driver: always a subprocess, never imported here.

locust monkey-patches the standard library with gevent as soon as it is
imported, which breaks threaded code (docs/performance.md, "Measuring honestly"), so
this module only ever *runs* it::

    python -m locust -f suites/load.py,<report plugin> --headless --host URL
        -u USERS -r RATE --run-time Ns --csv PREFIX --csv-full-history
        --only-summary --exit-code-on-error 0 --stop-timeout 5 [--processes N ...] [UserClass ...]

in its own session (so the whole process tree can be signalled as one
group), with its working directory in a scratch folder (so no
``locust.conf`` or ``pyproject.toml`` ``[tool.locust]`` of the caller's
directory changes the run; ``~/.locust.conf`` still applies and ``LOCUST_*``
environment variables are removed), pinned to ``cpus`` when given, and
stopped by process group if it overruns ``duration`` plus a grace.

What is measured, and from where
--------------------------------
locust's own outputs are not enough for a driver result: it keeps no status
codes, it rounds response times to two significant digits, and its CSV
files are rewritten once a second by a background greenlet, so the final
``_stats.csv`` and ``_failures.csv`` routinely miss the last fraction of a
second of the run (a few requests to a few hundred; measured here).  So the
driver loads a small *report plugin* next to the locustfile (the
module ``harness/drivers/locust_plugin/mpm_harness_locust_report.py``, given to ``-f``
after the locustfile).  In every locust process (the local runner, or the
master and each worker with ``processes > 1``) it listens to locust's
``request`` event and records, exactly:

* ``status_counts``: every response by status code (locust's ``status_code``);
* ``errors`` by kind for requests that got no complete response, classified
  from the exception: ``connect`` (refused), ``timeout``, ``reset``,
  ``closed_early`` (EOF before the response was complete), ``protocol``,
  ``connection`` (any other socket error), ``other``;  ``check`` for a
  complete 2xx/3xx response that the user class marked as failed
  (``catch_response`` + ``failure()``, e.g. EchoUser's body mismatch); and
  ``user_error`` for an exception raised in a user's task outside a request
  (locust logs it and carries on: a broken locustfile would otherwise look
  like an idle run).
  Responses with status >= 400 are *not* errors here: they are in
  ``status_counts`` (as in the built-in driver), which makes
  ``DriverResult.ok`` false;
* ``histogram``: each response's time as measured by locust (start of the
  request to the end of the body, FastHttpUser's ``perf_counter``), in
  microseconds, in an HdrHistogram -- not rounded, not rebuilt;
* ``timeline``: responses completed in second 0, 1, 2 ... after the
  process's ``test_start``;
* the process's CPU between ``test_start`` and ``test_stop``.

``requests`` is the number of complete responses (of any status); locust's
own request count, which also counts failed connections, is in
``extra["locust_requests"]``; the final CSV total is kept for comparison in
``extra["csv_requests"]``.  ``duration`` runs from the master's (or local
runner's) ``test_start`` to its ``test_stop``.

Remote workers (``remote_workers`` M, started by hand on other machines
with :func:`worker_command`) send their plugin's document to the master,
which writes it beside its own, so they are merged like local ones; the
master's address, the worker command and the bounded wait for the workers
are in :mod:`harness.drivers.locust_remote`.

If a process's report is missing (a worker killed, a locustfile that stops
the plugin from loading), the driver falls back to the CSV files
(:func:`parse_locust_csv`): totals from ``_stats.csv`` (possibly up to a
second stale), error kinds from the failure messages (HTTP failures become
``http_4xx``/``http_5xx`` errors there, since no status counts exist), the
timeline from ``_stats_history.csv``, and an *approximate* histogram rebuilt
from locust's percentiles (:func:`histogram_from_percentiles`);
``extra["source"]`` says ``"csv"`` and ``extra["histogram_approximated"]``
is then True.

Limits that remain
------------------
* Closed loop: each user waits for its response (plus the user's
  ``wait_time``) before the next request, so when the server stalls the
  offered load drops with it -- coordinated omission.  The histogram is
  service time under this load, not user-visible latency.
* locust saturates its own CPU near 2k requests/s per process
  (FastHttpUser, this machine).  ``driver_cpu_fraction`` is the locust
  processes' CPU during the test divided by (duration x the CPUs it could
  use: ``min(processes, usable CPUs)``); above 0.9 the result is
  ``generator_bound``.  locust's own warning ("CPU usage above 90%") is
  reported as ``extra["locust_cpu_warning"]``.  The CPU of the whole tree
  over its whole life (startup, imports, shutdown), taken from ``os.wait4``
  through a small reaper wrapper (see :func:`run_bounded`), is in
  ``extra["driver_cpu_total_seconds"]``.
* When the run stops, each user finishes the task it is in
  (``--stop-timeout 5``: locust kills a user still busy after 5 s), so a
  request in flight is counted rather than abandoned and ``requests``
  equals what the server answered; the stop may end up to a task later
  than ``--run-time``.  In distributed mode the master first stops every
  worker and waits for its report (bounded: ``--stop-timeout`` + 10 s),
  since locust's own master listens only 0.5 s after telling them to quit.
* ``per_connection``/``starved_connections`` are None: locust cannot tell.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram

from .base import DriverResult, new_histogram, subprocess_result
from .locust_remote import (  # noqa: F401 (the remote-worker names re-exported)
    DEFAULT_LOCUSTFILE, DEFAULT_WORKER_WAIT_S, GAVE_UP_TEXT, PLUGIN_PATH, ROOT, gave_up_reason, parse_master_bind,
    plan_master, print_worker_command, split_master_bind, worker_command,
)
from .subproc import (  # noqa: F401 (DriverError and BoundedRun re-exported)
    BoundedRun, DriverError, _read, _tail, histogram_from_percentiles, run_bounded, usable_cpus,
)

__all__ = [
    "DriverError", "run_locust", "locust_available", "parse_locust_csv", "result_from_locust_csv",
    "result_from_reports", "histogram_from_percentiles", "run_bounded", "BoundedRun", "usable_cpus",
    "DEFAULT_LOCUSTFILE", "LOAD_PROFILES", "worker_command", "parse_master_bind", "split_master_bind",
]

#: the profiles of suites/load.py (not imported from there: it imports locust)
LOAD_PROFILES = ("none", "ramp", "step", "spike", "soak")
#: what locust logs when its process is above 90% CPU
CPU_WARNING_TEXT = "CPU usage above"
#: seconds allowed beyond the run for locust's startup and shutdown (imports, workers connecting)
STARTUP_GRACE_S = 30.0
#: locust's --stop-timeout: seconds each user may take to finish its task when the run stops
STOP_TIMEOUT_S = 5
_PROCESSES_MIN_VERSION = (2, 19)


# --------------------------------------------------------------------------
# availability


def locust_available() -> str | None:
    """None when locust can be run here; otherwise the reason, with the fix.

    Only looks the package up (``importlib.util.find_spec``): importing it
    would monkey-patch this process.
    """
    try:
        if importlib.util.find_spec("locust") is None:
            return "locust is not installed: pip install 'mpm-harness[locust]'"
    except (ImportError, ValueError) as exc:
        return f"locust cannot be found ({exc}): pip install 'mpm-harness[locust]'"
    return None


def _locust_version() -> tuple[int, ...]:
    try:
        text = importlib.metadata.version("locust")
    except importlib.metadata.PackageNotFoundError:
        return ()
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


# --------------------------------------------------------------------------
# parsing: the plugin's reports


def _num(x, default: float = 0.0) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def result_from_reports(
    reports: Sequence[Mapping],
    *,
    url: str = "",
    users: int = 0,
    processes: int = 1,
    cpus: Sequence[int] | None = None,
    usable: int | None = None,
    total_cpu_seconds: float | None = None,
    cpu_warning_logged: bool = False,
    duration_hint: float = 0.0,
) -> DriverResult:
    """Merge the report plugin's per-process documents into one :class:`DriverResult`.

    ``reports`` holds one document per locust process (the local runner, or
    the master and each worker).  Status counts, errors, timelines (aligned on
    each process's ``test_start``) and histograms are added; ``duration`` is
    the master's (or local runner's) ``t_stop - t_start`` (``duration_hint``
    when it has none); the driver's CPU is the sum of each process's CPU
    between its ``test_start`` and ``test_stop``, divided by duration x
    ``min(processes, usable)`` (``total_cpu_seconds``, the tree's whole-life
    CPU, when no process has both marks).
    """
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    messages: dict[str, int] = {}
    timeline: list[int] = []
    hist = new_histogram()
    run_cpu = 0.0
    have_cpu = False
    locust_requests = clamped = 0
    warn_max = 0.0
    lead = None
    for rep in reports:
        for k, n in (rep.get("statuses") or {}).items():
            statuses[int(k)] = statuses.get(int(k), 0) + int(n)
        for k, n in (rep.get("errors") or {}).items():
            errors[str(k)] = errors.get(str(k), 0) + int(n)
        for k, n in (rep.get("messages") or {}).items():
            messages[str(k)] = messages.get(str(k), 0) + int(n)
        for i, n in enumerate(rep.get("timeline") or []):
            if i >= len(timeline):
                timeline.extend([0] * (i + 1 - len(timeline)))
            timeline[i] += int(n)
        if rep.get("hist"):
            hist.add(HdrHistogram.decode(rep["hist"]))
        c0 = rep.get("cpu_start")
        c1 = rep.get("cpu_stop") if rep.get("cpu_stop") is not None else rep.get("cpu_now")
        if c0 is not None and c1 is not None:
            run_cpu += max(0.0, float(c1) - float(c0))
            have_cpu = True
        locust_requests += int(rep.get("locust_requests") or 0)
        clamped += int(rep.get("clamped") or 0)
        warn_max = max(warn_max, _num(rep.get("cpu_warning_max")))
        if rep.get("role") in ("MasterRunner", "LocalRunner") and lead is None:
            lead = rep
    if lead is None and reports:
        lead = reports[0]
    duration = 0.0
    if lead is not None and lead.get("t_start") is not None and lead.get("t_stop") is not None:
        duration = max(0.0, float(lead["t_stop"]) - float(lead["t_start"]))
    if duration <= 0:
        duration = float(duration_hint)
    cpu = run_cpu if have_cpu else float(total_cpu_seconds or 0.0)
    par = min(max(1, processes), usable or usable_cpus(cpus))
    errors = {k: v for k, v in errors.items() if v}
    extra = {
        "source": "plugin",
        "histogram_approximated": False,
        "locust_requests": locust_requests,
        "failures": dict(sorted(messages.items(), key=lambda kv: -kv[1])[:20]),
        "locust_cpu_warning": bool(warn_max > 0 or cpu_warning_logged),
        "locust_cpu_warning_max_pct": warn_max,
        "processes_reported": len(reports),
        "latency_clamped": clamped,
        "cpu_parallelism": par,
    }
    if total_cpu_seconds is not None:
        extra["driver_cpu_total_seconds"] = float(total_cpu_seconds)
    extra["workers"] = [
        {"host": rep.get("host"), "pid": rep.get("pid"), "node_id": rep.get("node_id"),
         "requests": sum(int(n) for n in (rep.get("statuses") or {}).values())}
        for rep in reports if rep.get("role") == "WorkerRunner"]
    return subprocess_result(
        driver="locust", requests=sum(statuses.values()), status_counts=statuses, errors=errors, duration=duration,
        histogram=hist, cpu_seconds=cpu, parallelism=par, cpus=cpus, processes=processes, connections=users,
        url=url, timeline=timeline, extra=extra)


# --------------------------------------------------------------------------
# parsing: locust's CSV files (fallback, and for recorded runs)


_STATUS_RES = (
    re.compile(r"BadStatusCode\(.*?\bcode=(\d{3})\b"),  # FastHttpUser: LocustBadStatusCode(code=404)
    re.compile(r"HTTPError\(\s*'?(\d{3})\b"),  # HttpUser (requests): HTTPError('500 Server Error: ...')
)
_MESSAGE_KINDS = (
    ("ConnectionRefused", "connect"),
    ("ConnectTimeout", "timeout"),
    ("timed out", "timeout"),
    ("Timeout", "timeout"),
    ("ConnectionReset", "reset"),
    ("BrokenPipe", "reset"),
    ("HTTPConnectionClosed", "closed_early"),
    ("EmptyResponse", "closed_early"),
    ("IncompleteRead", "closed_early"),
    ("ParseError", "protocol"),
    ("ProtocolViolation", "protocol"),
)


def _classify_message(msg: str) -> tuple[str, bool]:
    """(error kind, whether a complete response was received) for a locust failure message."""
    for regex in _STATUS_RES:
        m = regex.search(msg)
        if m:
            return f"http_{m.group(1)[0]}xx", True
    for needle, kind in _MESSAGE_KINDS:
        if needle in msg:
            return kind, False
    if msg.startswith("CatchResponseError") or "(" not in msg:
        return "check", True  # a user's own failure() on a received response
    return "other", False


def _pct_label(label: str) -> float | None:
    if not label.endswith("%"):
        return None
    try:
        return float(label[:-1])
    except ValueError:
        return None


def parse_locust_csv(stats_csv: str, failures_csv: str = "", history_csv: str = "") -> dict:
    """Figures from the text of locust's ``_stats.csv``, ``_failures.csv`` and ``_stats_history.csv``.

    Returns a dict: ``requests`` and ``failures`` (locust's Aggregated
    counts; locust counts a failed connection as a request), ``responses``
    (requests minus failures that got no response), ``errors`` by kind (from
    the failure messages: ``connect``, ``timeout``, ``reset``,
    ``closed_early``, ``protocol``, ``http_4xx``/``http_5xx`` for bad
    statuses, ``check`` for a user's own ``failure()``, ``other``),
    ``percentiles`` as (percent, microseconds) pairs, ``min_us``/``max_us``/
    ``avg_us``, ``rps``, ``timeline`` (per-second deltas of the Aggregated
    history rows, indexed from the first row) and ``failure_messages``.
    Locust writes these files once a second, so the final totals may miss the
    last second of a run.
    """
    agg = None
    for row in csv.DictReader(io.StringIO(stats_csv)):
        if row.get("Name") == "Aggregated":
            agg = row
    if agg is None:
        raise ValueError("locust stats CSV has no Aggregated row")
    requests = int(_num(agg.get("Request Count")))
    failures = int(_num(agg.get("Failure Count")))
    pcts: list[tuple[float, float]] = []
    for label, value in agg.items():
        p = _pct_label(label or "")
        if p is None or value in (None, "", "N/A"):
            continue
        pcts.append((p, _num(value) * 1000.0))
    max_us = _num(agg.get("Max Response Time")) * 1000.0
    if pcts and requests:
        # locust's "100%" is its rounded bucket; the exact maximum is in the Max column
        pcts = [(p, max_us if p >= 100.0 and max_us > 0 else v) for p, v in pcts]
    errors: dict[str, int] = {}
    messages: dict[str, int] = {}
    no_response = 0
    for row in csv.DictReader(io.StringIO(failures_csv)) if failures_csv.strip() else ():
        n = int(_num(row.get("Occurrences")))
        msg = row.get("Error") or ""
        kind, answered = _classify_message(msg)
        errors[kind] = errors.get(kind, 0) + n
        messages[f"{row.get('Method', '')} {row.get('Name', '')}: {msg}"] = n
        if not answered:
            no_response += n
    timeline: list[int] = []
    if history_csv.strip():
        rows = [r for r in csv.DictReader(io.StringIO(history_csv)) if r.get("Name") == "Aggregated"]
        by_ts: dict[int, int] = {}
        for r in rows:
            by_ts[int(_num(r.get("Timestamp")))] = int(_num(r.get("Total Request Count")))
        if by_ts:
            first = min(by_ts)
            prev = 0
            for ts in range(first, max(by_ts) + 1):
                total = by_ts.get(ts, prev)
                timeline.append(max(0, total - prev))
                prev = total
    return {
        "requests": requests,
        "failures": failures,
        "responses": max(0, requests - no_response),
        "errors": errors,
        "percentiles": pcts,
        "min_us": _num(agg.get("Min Response Time")) * 1000.0,
        "max_us": max_us,
        "avg_us": _num(agg.get("Average Response Time")) * 1000.0,
        "rps": _num(agg.get("Requests/s")),
        "timeline": timeline,
        "failure_messages": messages,
    }


def result_from_locust_csv(
    stats_csv: str,
    failures_csv: str = "",
    history_csv: str = "",
    *,
    duration: float,
    url: str = "",
    users: int = 0,
    processes: int = 1,
    cpus: Sequence[int] | None = None,
    usable: int | None = None,
    cpu_seconds: float = 0.0,
    cpu_warning_logged: bool = False,
) -> DriverResult:
    """A :class:`DriverResult` from locust's CSV text alone (see :func:`parse_locust_csv`).

    ``status_counts`` stays empty: locust does not keep status codes, and
    calling every non-failure "2xx" would hide 3xx answers (FastHttpUser
    follows redirects) and count a user's rejected 200 as a failure only.
    Bad statuses therefore appear as ``http_4xx``/``http_5xx`` *errors*, so
    ``ok`` still fails on them.  The histogram is rebuilt from locust's
    percentiles (``extra["histogram_approximated"]`` is True); ``cpu_seconds``
    is the tree's whole-life CPU.
    """
    d = parse_locust_csv(stats_csv, failures_csv, history_csv)
    hist = histogram_from_percentiles(d["percentiles"], d["responses"])
    par = min(max(1, processes), usable or usable_cpus(cpus))
    return subprocess_result(
        driver="locust", requests=d["responses"], status_counts={},
        errors={k: v for k, v in d["errors"].items() if v}, duration=float(duration), histogram=hist,
        cpu_seconds=float(cpu_seconds), parallelism=par, cpus=cpus, processes=processes, connections=users,
        url=url, timeline=d["timeline"],
        extra={
            "source": "csv",
            "histogram_approximated": True,
            "locust_requests": d["requests"],
            "locust_failures": d["failures"],
            "csv_requests": d["requests"],
            "failures": dict(sorted(d["failure_messages"].items(), key=lambda kv: -kv[1])[:20]),
            "locust_cpu_warning": cpu_warning_logged,
            "locust_latency_ms": {"min": d["min_us"] / 1000, "avg": d["avg_us"] / 1000, "max": d["max_us"] / 1000},
            "driver_cpu_total_seconds": float(cpu_seconds),
            "cpu_parallelism": par,
        },
    )


# --------------------------------------------------------------------------
# running


def _read_reports(folder: Path) -> list[dict]:
    """The plugin's documents in ``folder`` (one per locust process); an unreadable one is skipped."""
    reports = []
    for path in sorted(folder.glob("report-*.json")):
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
    return reports


def run_locust(
    url: str,
    *,
    users: int,
    spawn_rate: float,
    duration: float,
    user_classes: Sequence[str] = ("HelloUser",),
    load_profile: str = "none",
    processes: int = 1,
    cpus: Iterable[int] | None = None,
    locustfile: str | os.PathLike = DEFAULT_LOCUSTFILE,
    timeout: float | None = None,
    workdir: str | os.PathLike | None = None,
    remote_workers: int = 0,
    master_bind: str | None = None,
    worker_wait: float = DEFAULT_WORKER_WAIT_S,
    allow_attacks: bool = False,
    ca_cert: str | os.PathLike | None = None,
    insecure: bool = False,
    on_worker_command: Callable[[str], None] | None = None,
) -> DriverResult:
    """Run locust headless against ``url`` for ``duration`` seconds and return its :class:`DriverResult`.

    ``url``'s scheme, host and port (and path, without its trailing slash)
    become locust's ``--host``, the base of every user's request path; a
    query is dropped.

    ``users`` is the user count (the peak for a ``load_profile`` other than
    ``"none"``: ramp, step, spike, soak, see suites/load.py) started at
    ``spawn_rate`` per second; ``user_classes`` picks the locustfile's
    classes.  locust's ``--run-time`` takes whole seconds, so ``duration`` is
    rounded up to one (the profiles take it exactly, via ``LOAD_SECONDS``).
    ``processes > 1`` uses locust's own distributed mode (``--processes N``:
    a master and N forked workers, talking over 127.0.0.1 on a free port).
    ``remote_workers`` M > 0 makes the master also wait for M workers from
    other machines: it binds ``master_bind`` (``HOST:PORT``, default
    127.0.0.1 and a free port), hands :func:`worker_command` to
    ``on_worker_command`` (default: printed to stderr) and waits at most
    ``worker_wait`` seconds for all N + M workers; their exact counts reach
    the master as messages and are merged into the same result
    (``extra["workers"]``: each worker's host, pid and requests).
    ``allow_attacks`` passes ``--allow-attacks`` to suites/load.py: the
    attack-like users (KeepAliveUser, ChurnUser) against a non-loopback host.
    ``ca_cert`` (a PEM file, also trusted for an https target) and
    ``insecure`` (check no certificate) become suites/load.py's ``--ca-cert``
    and ``--insecure``; the master sends them to every worker.
    ``cpus`` pins the whole locust tree.  ``timeout`` bounds the whole
    subprocess (default: ``duration`` + 30 s for startup and shutdown); an
    overrun is stopped by process group.  ``workdir`` keeps the CSV files,
    the reports and locust's output (default: a scratch folder, removed
    afterwards).

    Raises ValueError for a URL that is not http(s) or bad arguments (before
    anything runs) and :class:`DriverError` when locust is missing, exits
    non-zero, overruns, writes no CSV or gives up waiting for workers.  Failed requests are not an error
    of the driver: they are counted in the result (see the module doc for
    every figure).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be http:// or https:// with a host, not {url!r}")
    host = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if int(users) < 1:
        raise ValueError(f"users must be >= 1, not {users!r}")
    if not float(spawn_rate) > 0:
        raise ValueError(f"spawn_rate must be > 0, not {spawn_rate!r}")
    if not float(duration) > 0:
        raise ValueError(f"duration must be > 0, not {duration!r}")
    if int(processes) < 1:
        raise ValueError(f"processes must be >= 1, not {processes!r}")
    if int(remote_workers) < 0:
        raise ValueError(f"remote_workers must be >= 0, not {remote_workers!r}")
    if not float(worker_wait) > 0:
        raise ValueError(f"worker_wait must be > 0, not {worker_wait!r}")
    if ca_cert and insecure:
        raise ValueError("give ca_cert or insecure, not both")
    if ca_cert and not Path(ca_cert).is_file():
        raise ValueError(f"ca_cert {str(ca_cert)!r} is not a file")
    remote = int(remote_workers)
    bind = parse_master_bind(master_bind or "127.0.0.1:0") if processes > 1 or remote else None
    if load_profile not in LOAD_PROFILES:
        raise ValueError(f"load_profile must be one of {', '.join(LOAD_PROFILES)}, not {load_profile!r}")
    classes = [str(c) for c in user_classes]
    for c in classes:
        if not c.isidentifier():
            raise ValueError(f"not a user class name: {c!r}")
    locustfile = Path(locustfile).resolve()
    if not locustfile.is_file() or "," in str(locustfile):
        raise ValueError(f"locustfile {str(locustfile)!r} does not exist (or has a comma in its path)")
    cpu_list = sorted({int(c) for c in cpus}) if cpus is not None else None
    reason = locust_available()
    if reason:
        raise DriverError(reason)
    if processes > 1 and _locust_version() < _PROCESSES_MIN_VERSION:
        raise DriverError(f"locust {'.'.join(map(str, _locust_version())) or '?'} has no --processes: "
                          "pip install 'mpm-harness[locust]'")

    run_time = max(1, math.ceil(float(duration)))
    own = workdir is None
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="locust-driver-"))
    work.mkdir(parents=True, exist_ok=True)
    reports_dir = work / "reports"
    shutil.rmtree(reports_dir, ignore_errors=True)
    reports_dir.mkdir()
    prefix = work / "locust"
    for suffix in ("_stats.csv", "_failures.csv", "_stats_history.csv", "_exceptions.csv"):
        Path(f"{prefix}{suffix}").unlink(missing_ok=True)

    argv = [
        sys.executable, "-m", "locust", "-f", f"{locustfile},{PLUGIN_PATH}", "--headless", "--host", host,
        "-u", str(int(users)), "-r", f"{float(spawn_rate):g}", "--run-time", f"{run_time}s",
        "--csv", str(prefix), "--csv-full-history", "--only-summary", "--exit-code-on-error", "0",
        "--stop-timeout", str(STOP_TIMEOUT_S),
    ]
    wait = float(worker_wait) if remote else STARTUP_GRACE_S
    plan = plan_master(int(processes), remote, bind, wait, locustfile) if bind is not None else None
    command = plan.command if plan is not None else None
    if plan is not None:
        argv += plan.args
    if command:
        (on_worker_command or print_worker_command)(command)
    if allow_attacks:
        argv.append("--allow-attacks")
    if ca_cert:
        argv += ["--ca-cert", str(Path(ca_cert).resolve())]
    if insecure:
        argv.append("--insecure")
    argv += classes
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env.update({
        "LOAD_PROFILE": load_profile,
        "LOAD_SECONDS": f"{float(duration):g}",
        "MPM_LOCUST_REPORT_DIR": str(reports_dir),
        "MPM_LOCUST_REMOTE_WORKERS": str(remote),
        "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
    })
    deadline = (float(timeout) if timeout is not None
                else run_time + STARTUP_GRACE_S + STOP_TIMEOUT_S + 5.0 * processes + (wait if remote else 0.0))
    try:
        run = run_bounded(argv, deadline=deadline, workdir=work, cpus=cpu_list, cwd=work, env=env)
        tail = _tail(run.stderr)
        if run.returncode != 0 and GAVE_UP_TEXT in run.stderr:
            raise DriverError(gave_up_reason(run.stderr, int(processes), remote, wait, command),
                              stderr_tail=tail, returncode=run.returncode, command=argv)
        if run.returncode != 0:
            raise DriverError(f"locust exited with status {run.returncode}",
                              stderr_tail=tail, returncode=run.returncode, command=argv)
        stats_text = _read(Path(f"{prefix}_stats.csv"))
        if "Aggregated" not in stats_text:
            raise DriverError(f"locust wrote no CSV stats ({prefix.name}_stats.csv)",
                              stderr_tail=tail, returncode=run.returncode, command=argv)
        failures_text = _read(Path(f"{prefix}_failures.csv"))
        history_text = _read(Path(f"{prefix}_stats_history.csv"))
        warned = CPU_WARNING_TEXT in run.stderr or "exceeded cpu threshold" in run.stderr
        reports = _read_reports(reports_dir)
        expected = plan.reports if plan is not None else 1
        usable = usable_cpus(cpu_list)
        csv_requests = parse_locust_csv(stats_text)["requests"]
        if len(reports) >= expected:
            result = result_from_reports(
                reports, url=url, users=int(users), processes=int(processes), cpus=cpu_list, usable=usable,
                total_cpu_seconds=run.cpu_seconds, cpu_warning_logged=warned, duration_hint=float(run_time))
        else:
            result = result_from_locust_csv(
                stats_text, failures_text, history_text, duration=float(run_time), url=url, users=int(users),
                processes=int(processes), cpus=cpu_list, usable=usable, cpu_seconds=run.cpu_seconds,
                cpu_warning_logged=warned)
            result.extra["reports_missing"] = expected - len(reports)
        result.extra.update({
            "csv_requests": csv_requests,
            "user_classes": classes,
            "load_profile": load_profile,
            "users": int(users),
            "spawn_rate": float(spawn_rate),
            "run_time_s": run_time,
            "subreaper": run.subreaper,
            "locust_version": ".".join(map(str, _locust_version())),
            "remote_workers": remote,
        })
        if command:
            result.extra["worker_command"] = command
        if workdir is not None:
            result.extra["workdir"] = str(work)
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
