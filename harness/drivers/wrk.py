"""wrk as a load driver (when it is on PATH): a subprocess with a Lua reporter.

Runs::

    wrk -t THREADS -c CONNECTIONS -d Ns --timeout Ts --latency -s <reporter.lua> URL

under the same bounded, pinned, process-group runner as the locust driver
(:func:`harness.drivers.locust.run_bounded`).  The reporter's
``done(summary, latency, requests)`` prints one JSON line (prefixed
``MPM_HARNESS_WRK``) with wrk's own totals: ``summary.requests``,
``summary.duration`` (us), ``summary.bytes``, ``summary.errors`` (connect,
read, write, status, timeout) and the latency spectrum in microseconds.

Figures
-------
* ``requests``: wrk's completed responses, of any status.
* ``errors``: wrk's counters, by its own names, zero ones left out:
  ``connect`` (connect() failed), ``read`` and ``write`` (socket errors, EOF
  before a response was complete, an unparseable response), ``timeout``
  (responses slower than ``--timeout``, which still count in ``requests``,
  plus requests unanswered after it) and ``status``: responses with a status
  above 399.  wrk cannot tell *which* status, so by default
  ``status_counts`` stays empty and bad statuses show up only as
  ``errors["status"]`` (already counted in ``requests`` too); 3xx answers are
  not errors for wrk and are invisible.  With ``count_statuses=True`` the
  reporter also defines wrk's ``response()`` hook and counts every status
  code exactly: ``status_counts`` is then complete and ``errors`` has no
  ``status`` entry.  The hook makes wrk copy every response's headers and
  body into Lua, which costs it CPU, so it is off for capacity runs.
* ``histogram``: wrk keeps latency per microsecond up to ``--timeout``.
  Before calling ``done()`` wrk "corrects" it for coordinated omission
  (``stats_correct``: for every sample at least twice the mean per-connection
  interval ``duration / (requests / connections)`` it adds synthetic samples
  at that value minus 1, 2, ... intervals).  The reporter reads the whole
  corrected spectrum (``#latency`` and ``latency(i)``) when that is cheap
  enough (wrk's accessor is linear in the value range for each call), and
  the driver removes the correction exactly (:func:`remove_wrk_correction`),
  so ``histogram`` holds one sample per recorded response, measured from
  its actual send time like the built-in closed-loop driver
  (``extra["histogram_approximated"]`` False; wrk's corrected percentiles
  are kept in ``extra["wrk_corrected_latency_us"]``).  When the spectrum is
  too costly to read (a wide range with many distinct values), the
  reporter prints ~130 percentiles of the *corrected* spectrum instead and
  the histogram is rebuilt from them
  (:func:`harness.drivers.locust.histogram_from_percentiles`),
  ``extra["histogram_approximated"]`` and ``extra["histogram_co_corrected"]``
  are True.  Either way it is a closed loop: each connection waits for its
  response before sending again, so the tail is understated compared with an
  open-loop run.
* ``timeline`` is empty: wrk reports only totals.
* ``per_connection``/``starved_connections`` are None: wrk does not report
  connections that never got an answer (docs/performance.md, "Measuring
  honestly"), which is why the
  built-in driver is the one that publishes capacity.
* ``driver_cpu_seconds``: the wrk process's user + system CPU from
  ``os.wait4`` (all its threads), minus the CPU its ``done()`` spent reading
  the spectrum after the run; ``driver_cpu_fraction`` divides it by duration
  x ``min(threads, usable CPUs)``.  ``processes`` is the thread count (each
  wrk thread is one event loop, like one loadgen process).
* wrk takes whole seconds for ``-d`` and ``--timeout``: ``duration`` is
  rounded to the nearest second (at least 1) and ``timeout`` up.

If the target refuses the connection when wrk starts, wrk does not run at
all ("unable to connect", exit status 1); the driver returns a result with
no requests and ``errors == {"connect": 1}`` (wrk's single probe), and the
message in ``extra["wrk_refused"]``.  A server that dies during the run gives
``connect`` and ``read`` errors as usual.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .base import HIST_HIGHEST_US, HIST_LOWEST_US, DriverResult, new_histogram, subprocess_result
from .loadgen import parse_url
from .subproc import DriverError, histogram_from_percentiles, run_bounded, usable_cpus

__all__ = ["run_wrk", "wrk_available", "result_from_wrk", "parse_wrk_output", "remove_wrk_correction",
           "DriverError", "WRK_MARK"]

#: prefix of the reporter's JSON line on wrk's stdout
WRK_MARK = "MPM_HARNESS_WRK "
#: wrk's latency accessor costs (value range) per call; read the whole spectrum while
#: distinct values x range / 2 stays under this many steps (~1 s of wrk's CPU at worst)
SPECTRUM_BUDGET = 1_000_000_000
_ERROR_KINDS = ("connect", "read", "write", "status", "timeout")

# Percentiles printed when the spectrum is too costly to read whole.
_PERCENTILES = (
    [float(p) for p in range(1, 91)]
    + [90 + 0.5 * i for i in range(1, 19)]
    + [99 + 0.1 * i for i in range(1, 10)]
    + [99.9 + 0.01 * i for i in range(1, 10)]
    + [99.99, 99.999, 100.0]
)

_REPORTER = r"""-- written by harness/drivers/wrk.py: prints one JSON line with wrk's totals and latency spectrum
local threads = {}
local COUNT_STATUSES = %(count)s
local BUDGET = %(budget)d
local PERCENTILES = { %(percentiles)s }

function setup(thread)
  table.insert(threads, thread)
end

if COUNT_STATUSES then
  statuses = {}
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local function int(x) return string.format("%%.0f", x) end

function done(summary, latency, requests)
  local c0 = os.clock()
  local out = {}
  local function add(s) out[#out + 1] = s end
  local e = summary.errors
  add('{"requests":' .. int(summary.requests))
  add(',"duration_us":' .. int(summary.duration))
  add(',"bytes":' .. int(summary.bytes))
  add(string.format(',"errors":{"connect":%%s,"read":%%s,"write":%%s,"status":%%s,"timeout":%%s}',
      int(e.connect), int(e.read), int(e.write), int(e.status), int(e.timeout)))
  local n = #latency
  add(',"distinct":' .. int(n))
  if n > 0 then
    add(string.format(',"latency":{"min":%%s,"max":%%s,"mean":%%.3f,"stdev":%%.3f}',
        int(latency.min), int(latency.max), latency.mean, latency.stdev))
    local span = latency.max - latency.min + 1
    if n * span / 2 <= BUDGET then
      add(',"spectrum":[')
      for i = 1, n do
        local v, c = latency(i)
        add((i > 1 and ",[" or "[") .. int(v) .. "," .. int(c) .. "]")
      end
      add("]")
    else
      add(',"percentiles":[')
      for i, p in ipairs(PERCENTILES) do
        add((i > 1 and ",[" or "[") .. p .. "," .. int(latency:percentile(p)) .. "]")
      end
      add("]")
    end
  end
  if COUNT_STATUSES then
    local merged = {}
    for _, t in ipairs(threads) do
      local s = t:get("statuses") or {}
      for code, c in pairs(s) do merged[code] = (merged[code] or 0) + c end
    end
    local parts = {}
    for code, c in pairs(merged) do parts[#parts + 1] = '"' .. int(code) .. '":' .. int(c) end
    add(',"statuses":{' .. table.concat(parts, ",") .. "}")
  end
  add(string.format(',"threads":%%d,"done_cpu_s":%%.6f}', #threads, os.clock() - c0))
  io.write("%(mark)s" .. table.concat(out) .. "\n")
end
"""


def wrk_available() -> str | None:
    """None when wrk is on PATH; otherwise the reason, with the fix."""
    if shutil.which("wrk") is None:
        return "wrk not on PATH: apt-get install wrk"
    return None


def _reporter(count_statuses: bool) -> str:
    return _REPORTER % {
        "count": "true" if count_statuses else "false",
        "budget": SPECTRUM_BUDGET,
        "percentiles": ", ".join(f"{p:g}" for p in _PERCENTILES),
        "mark": WRK_MARK,
    }


def parse_wrk_output(stdout: str) -> dict:
    """The reporter's JSON document from wrk's stdout (the last ``MPM_HARNESS_WRK`` line).

    Raises ValueError when there is none.
    """
    for line in reversed(stdout.splitlines()):
        if line.startswith(WRK_MARK):
            return json.loads(line[len(WRK_MARK):])
    raise ValueError("no MPM_HARNESS_WRK line in wrk's output")


def remove_wrk_correction(
    spectrum: Mapping[int, int] | Iterable[tuple[int, int]],
    *,
    requests: int,
    connections: int,
    duration_us: int,
) -> dict[int, int] | None:
    """Undo wrk's coordinated-omission correction on a latency spectrum {us: count}.

    wrk (``stats_correct``, applied before ``done()``) uses the interval
    ``e = duration_us // (requests // connections)`` and, for every recorded
    value ``n >= 2e``, adds its count at ``n - e``, ``n - 2e``, ... while the
    position stays above ``e``.  Those additions only go to lower positions,
    so the original is recovered from the top down: ``D[n] = D'[n] -
    sum_k D[n + k e]`` for ``n > e``.  Returns the original spectrum, or None
    when the input is not consistent with that correction (a negative count,
    or synthetic samples the original implies that are not there), e.g. a
    wrk that does not correct.  With ``requests // connections == 0``
    wrk applies no correction and the spectrum is returned unchanged.
    """
    items = spectrum.items() if isinstance(spectrum, Mapping) else spectrum
    corrected = {int(v): int(c) for v, c in items if int(c)}
    per_conn = int(requests) // max(1, int(connections))
    if per_conn <= 0:
        return corrected
    e = int(duration_us) // per_conn
    if e <= 0:
        return corrected
    original: dict[int, int] = {}
    added: dict[int, int] = {}  # added[n] = sum over k >= 1 of original[n + k e]
    for n in sorted(corrected, reverse=True):
        above = original.get(n + e, 0) + added.get(n + e, 0)
        if n > e:
            added[n] = above
            count = corrected[n] - above
        else:
            count = corrected[n]
        if count < 0:
            return None
        if count:
            original[n] = count
    # every synthetic sample the original implies must be in the input: compare the totals
    synthetic = sum(c * max(0, (n - e - 1) // e) for n, c in original.items() if n >= 2 * e)
    if sum(original.values()) + synthetic != sum(corrected.values()):
        return None
    return original


def result_from_wrk(
    doc: Mapping,
    *,
    connections: int,
    threads: int = 1,
    url: str = "",
    cpu_seconds: float = 0.0,
    cpus: Sequence[int] | None = None,
    usable: int | None = None,
) -> DriverResult:
    """A :class:`DriverResult` from the reporter's document (see :func:`parse_wrk_output`).

    ``cpu_seconds`` is the wrk process's CPU (``done()``'s own share,
    ``doc["done_cpu_s"]``, is subtracted here).  See the module doc for what
    each figure means.
    """
    requests = int(doc.get("requests", 0))
    duration = float(doc.get("duration_us", 0)) / 1e6
    werr = {k: int((doc.get("errors") or {}).get(k, 0)) for k in _ERROR_KINDS}
    statuses = {int(k): int(v) for k, v in (doc.get("statuses") or {}).items()}
    counted = "statuses" in doc
    errors = {k: v for k, v in werr.items() if v and not (counted and k == "status")}
    extra: dict = {"wrk_errors": werr, "bytes": int(doc.get("bytes", 0)), "statuses_counted": counted,
                   "histogram_approximated": False, "histogram_co_corrected": False}
    hist = new_histogram()
    lat = doc.get("latency") or {}
    if "spectrum" in doc:
        corrected = {int(v): int(c) for v, c in doc["spectrum"]}
        original = remove_wrk_correction(corrected, requests=requests, connections=connections,
                                         duration_us=int(doc.get("duration_us", 0)))
        kept = original
        if original is None or not (requests - werr["timeout"] <= sum(original.values()) <= requests):
            kept = corrected  # not what this wrk's correction would give: keep its spectrum, say so
            extra["histogram_co_corrected"] = True
        for v, c in sorted(kept.items()):
            hist.record_value(min(HIST_HIGHEST_US, max(HIST_LOWEST_US, v)), c)
        ch = new_histogram()
        for v, c in corrected.items():
            ch.record_value(min(HIST_HIGHEST_US, max(HIST_LOWEST_US, v)), c)
        extra["wrk_corrected_latency_us"] = {
            "p50": ch.get_value_at_percentile(50), "p90": ch.get_value_at_percentile(90),
            "p99": ch.get_value_at_percentile(99), "p99.9": ch.get_value_at_percentile(99.9),
            "max": ch.get_max_value(), "count": ch.get_total_count(),
        }
    elif "percentiles" in doc:
        pts = [(float(p), float(v)) for p, v in doc["percentiles"]]
        if lat.get("min") is not None:
            pts.insert(0, (0.0, float(lat["min"])))
        hist = histogram_from_percentiles(pts, max(0, requests - werr["timeout"]))
        extra["histogram_approximated"] = True
        extra["histogram_co_corrected"] = True
        extra["wrk_corrected_latency_us"] = {f"p{p:g}": v for p, v in pts if p in (50.0, 90.0, 99.0, 99.9, 100.0)}
    if lat:
        extra["wrk_latency_us"] = dict(lat)
    done_cpu = float(doc.get("done_cpu_s", 0.0))
    cpu = max(0.0, float(cpu_seconds) - done_cpu)
    extra["done_cpu_s"] = done_cpu
    par = min(max(1, threads), usable or usable_cpus(cpus))
    extra["cpu_parallelism"] = par
    return subprocess_result(
        driver="wrk", requests=requests, status_counts=statuses, errors=errors, duration=duration, histogram=hist,
        cpu_seconds=cpu, parallelism=par, cpus=cpus, processes=threads, connections=connections, url=url,
        timeline=[], extra=extra)


def run_wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    cpus: Iterable[int] | None = None,
    any_host: bool = False,
    timeout: float = 5.0,
    count_statuses: bool = False,
) -> DriverResult:
    """Run wrk against ``url`` with ``connections`` keep-alive connections for ``duration`` seconds.

    ``threads`` wrk threads share the connections (``connections >=
    threads``); ``cpus`` pins wrk; ``timeout`` is wrk's per-request timeout
    (whole seconds).  ``count_statuses`` counts every status code exactly
    through wrk's ``response()`` hook, at a CPU cost.  The run is bounded by
    ``duration + timeout + 15`` s and stopped by process group past that.

    Raises ValueError for a non-loopback ``url`` unless ``any_host`` (the harness's choice
    for a server given as a URL), for a URL that is not http:// or https:// or bad arguments (before
    anything runs) and :class:`DriverError` when wrk is missing, fails,
    overruns or prints no report.  A target that refuses connections is a
    result (``errors["connect"]``), not an exception.
    """
    parse_url(url, any_host=any_host)  # https too: wrk speaks TLS, but checks no certificate (registry)
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, not {threads!r}")
    if int(connections) < int(threads):
        raise ValueError(f"connections ({connections!r}) must be >= threads ({threads!r})")
    if not float(duration) > 0:
        raise ValueError(f"duration must be > 0, not {duration!r}")
    if not float(timeout) > 0:
        raise ValueError(f"timeout must be > 0, not {timeout!r}")
    cpu_list = sorted({int(c) for c in cpus}) if cpus is not None else None
    reason = wrk_available()
    if reason:
        raise DriverError(reason)
    seconds = max(1, int(round(float(duration))))
    tmo = max(1, math.ceil(float(timeout)))
    work = Path(tempfile.mkdtemp(prefix="wrk-driver-"))
    try:
        script = work / "reporter.lua"
        script.write_text(_reporter(count_statuses))
        argv = ["wrk", "-t", str(int(threads)), "-c", str(int(connections)), "-d", f"{seconds}s",
                "--timeout", f"{tmo}s", "--latency", "-s", str(script), url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LUA_")}
        run = run_bounded(argv, deadline=seconds + tmo + 15.0, workdir=work, cpus=cpu_list, cwd=work, env=env)
        tail = "\n".join(run.stderr.rstrip().splitlines()[-30:])
        if run.returncode != 0:
            if "unable to connect" in run.stderr:
                r = result_from_wrk({"requests": 0, "duration_us": 0, "errors": {"connect": 1}},
                                    connections=int(connections), threads=int(threads), url=url,
                                    cpu_seconds=run.cpu_seconds, cpus=cpu_list)
                r.extra["wrk_refused"] = run.stderr.strip()
                return r
            raise DriverError(f"wrk exited with status {run.returncode}", stderr_tail=tail,
                              returncode=run.returncode, command=argv)
        try:
            doc = parse_wrk_output(run.stdout)
        except ValueError as exc:
            raise DriverError(f"wrk printed no report: {exc}", stderr_tail=tail + "\n" + run.stdout[-2000:],
                              returncode=run.returncode, command=argv) from None
        result = result_from_wrk(doc, connections=int(connections), threads=int(threads), url=url,
                                 cpu_seconds=run.cpu_seconds, cpus=cpu_list)
        result.extra.update({"threads": int(threads), "timeout_s": tmo, "duration_s": seconds})
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
