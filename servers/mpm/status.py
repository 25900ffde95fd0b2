"""mod_status for the Python MPMs: ``/server-status`` (HTML) and ``?auto`` (machine-readable).

Everything here works on a :class:`~servers.mpm.scoreboard.ScoreboardSnapshot`,
so rendering never touches the shared mapping while it formats.

What is mirrored from httpd 2.4's ``modules/generators/mod_status.c``
(``status_handler``). Checked against that function's source as of 2.4.35-2.4.57
and against ``?auto`` captures of real 2.4.48 - 2.4.66 servers (prefork,
worker, event, including one taken during a graceful restart); the
GracefulWorkers and ConnsAsyncWaitIO lines were checked against captures only:

* ``?auto`` starts with the server name on a line of its own, then prints, in
  this order: ServerVersion, ServerMPM, Server Built, CurrentTime, RestartTime,
  ParentServerConfigGeneration, ParentServerMPMGeneration,
  ServerUptimeSeconds, ServerUptime, Load1, Load5, Load15; with
  ExtendedStatus (on by default in 2.4 once mod_status is loaded) Total
  Accesses, Total kBytes, Total Duration (ms), CPUUser, CPUSystem,
  CPUChildrenUser, CPUChildrenSystem, CPULoad (only when some CPU time was
  used), Uptime, ReqPerSec and BytesPerSec (only when uptime > 0), BytesPerReq
  and DurationPerReq (only when there was a request); then BusyWorkers,
  GracefulWorkers (2.4.58+), IdleWorkers; for async MPMs Processes, Stopping,
  ConnsTotal, ConnsAsyncWaitIO (2.4.63+), ConnsAsyncWriting,
  ConnsAsyncKeepAlive, ConnsAsyncClosing; and last ``Scoreboard:``.
  There is no ``BusyServers`` line in 2.4: that was the httpd 1.3 name of
  BusyWorkers (``servers.statusclient.parse_auto`` still understands it).
* Counting, per worker slot, only for processes with a pid that are **not
  quiescing**: a READY (``_``) slot is idle only if its process belongs to the
  running generation; GRACEFUL (``G``) is counted as graceful; any other state
  except DEAD, STARTING and IDLE_KILL is busy. So the slots of a process
  draining after a graceful restart (event/worker set ``quiescing``) count as
  neither busy nor graceful, exactly as a real httpd reports ``BusyWorkers: 1``
  while a scoreboard full of ``G`` drains. Before 2.4.58, httpd counted ``G``
  into BusyWorkers; this module counts it only in GracefulWorkers, the line
  2.4.58 added for it.
* The scoreboard string has one character per slot for process slots below
  ``active_slots`` (httpd's max_servers: MaxRequestWorkers for prefork,
  MaxRequestWorkers / ThreadsPerChild for worker and event) and threads below
  ``threads_per_child``; slots beyond those limits are left out while DEAD and
  shown when they still hold a (draining) worker.
* Numbers print as APR's ``%g`` does (six significant digits, no leading zero:
  ``.12``), load averages with ``%.2f``, times with
  ``"%A, %d-%b-%Y %H:%M:%S %Z"`` in local time, uptime as
  ``" 1 day 2 hours 3 minutes 4 seconds"``.

Deliberate differences:

* Processes, Stopping, ConnsTotal and the ConnsAsync* lines are printed for
  **every** MPM here (httpd prints them only for the event MPM), so the harness
  can rely on them; for prefork and worker the async counters are simply what
  those MPMs publish (usually 0).
* After the standard lines comes an mpm-harness extension, one line per live
  process, placed where other modules' status hooks append their own lines::

      Process: slot=0 pid=4242 generation=1 stopping=no accepting=yes connections=3 busy=2 idle=23 writing=0 keepalive=1 closing=0 graceful=0

  ``busy``/``idle``/``graceful`` count that process's thread slots by state
  (busy as above, idle = READY, graceful = G) **whether or not it is
  quiescing**, so a draining process's work stays visible; httpd's own
  per-process table shows zeros for quiescing processes.
* CPU times come from ``os.times()`` stored with each request (per process,
  the largest of its slots, as httpd does when times are per process) plus
  the parent's times if it stored them; CPULoad is also omitted at uptime 0
  (httpd would divide by zero).
"""

from __future__ import annotations

import html
import math
import os
import time
from dataclasses import dataclass, field

from .scoreboard import (
    BUSY_DNS,
    BUSY_KEEPALIVE,
    BUSY_LOG,
    BUSY_READ,
    BUSY_WRITE,
    CLOSING,
    DEAD,
    GRACEFUL,
    IDLE_KILL,
    READY,
    STARTING,
    STATUS_CHARS,
    STATUS_NAMES,
    ScoreboardSnapshot,
)

__all__ = [
    "Tally",
    "tally",
    "scoreboard_string",
    "render_auto",
    "render_html",
    "format_g",
    "format_uptime",
    "KEY_ORDER",
]

#: Order of the scoreboard key in mod_status's HTML ("_ S R W K D C L G I .").
KEY_ORDER = (
    READY, STARTING, BUSY_READ, BUSY_WRITE, BUSY_KEEPALIVE, BUSY_DNS, CLOSING, BUSY_LOG, GRACEFUL, IDLE_KILL, DEAD,
)

_NOT_BUSY = frozenset((DEAD, STARTING, IDLE_KILL, READY, GRACEFUL))
_TIME_FORMAT = "%A, %d-%b-%Y %H:%M:%S %Z"  # httpd's DEFAULT_TIME_FORMAT
_STATUS_MAXLINE = 64  # scoreboard characters per HTML row (mod_status' STATUS_MAXLINE)
_KBYTE = 1024
_MBYTE = 1048576
_GBYTE = 1073741824


# ---------------------------------------------------------------------- formatting


def format_g(value: float, precision: int = 6) -> str:
    """Format ``value`` as APR's ``apr_snprintf("%g")`` does (mod_status' numbers).

    Like C's ``%g`` with ``precision`` significant digits and trailing zeros
    removed, but APR's ``apr_gcvt`` drops the leading zero (``.12``) and
    switches to exponent form only when more than four zeros would have to
    be invented (``125833000`` stays fixed, ``1e+10`` does not).
    """
    if value != value:
        return "nan"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp = f"{abs(value):.{precision - 1}e}".partition("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    decpt = int(exp) + 1  # position of the decimal point relative to the digits
    ndigit = len(digits)
    if (decpt >= 0 and decpt - ndigit > 4) or decpt < -3:
        e = decpt - 1
        frac = digits[1:]
        return f"{sign}{digits[0]}{'.' + frac if frac else ''}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if decpt <= 0:
        return f"{sign}.{'0' * -decpt}{digits}"
    if ndigit <= decpt:
        return f"{sign}{digits}{'0' * (decpt - ndigit)}"
    return f"{sign}{digits[:decpt]}.{digits[decpt:]}"


def format_uptime(seconds: int) -> str:
    """mod_status' ``show_time``: ``" 2 days 1 hour 5 seconds"`` (leading space, zero parts left out)."""
    secs = seconds % 60
    mins = (seconds // 60) % 60
    hrs = (seconds // 3600) % 24
    days = seconds // 86400
    out = []
    for n, unit in ((days, "day"), (hrs, "hour"), (mins, "minute"), (secs, "second")):
        if n:
            out.append(f" {n} {unit}{'' if n == 1 else 's'}")
    return "".join(out)


def _ht_time(t: float) -> str:
    return time.strftime(_TIME_FORMAT, time.localtime(t))


def _default_built() -> str:
    # Stands in for ap_get_server_built() (the C compiler's __DATE__ " " __TIME__):
    # the modification time of this module, in the same "Mmm dd yyyy hh:mm:ss" shape.
    try:
        t = time.localtime(os.stat(__file__).st_mtime)
    except OSError:  # pragma: no cover - the module file always exists
        t = time.localtime()
    return f"{time.strftime('%b', t)} {t.tm_mday:2d} {t.tm_year} {time.strftime('%H:%M:%S', t)}"


def _byte_out(nbytes: float) -> str:
    # mod_status' format_byte_out
    if nbytes < 5 * _KBYTE:
        return f"{int(nbytes)} B"
    if nbytes < _MBYTE / 2:
        return f"{nbytes / _KBYTE:.1f} kB"
    if nbytes < _GBYTE / 2:
        return f"{nbytes / _MBYTE:.1f} MB"
    return f"{nbytes / _GBYTE:.1f} GB"


def _kbyte_out(kbytes: int) -> str:
    # mod_status' format_kbyte_out
    if kbytes < _KBYTE:
        return f"{kbytes} kB"
    if kbytes < _MBYTE:
        return f"{kbytes / _KBYTE:.1f} MB"
    return f"{kbytes / _MBYTE:.1f} GB"


# ---------------------------------------------------------------------- counting


@dataclass
class ProcessTally:
    """Per-process counts shown in the ``Process:`` lines and the HTML table."""

    slot: int
    pid: int
    generation: int
    stopping: bool
    accepting: bool
    connections: int
    busy: int
    idle: int
    graceful: int
    wait_io: int
    writing: int
    keepalive: int
    closing: int


@dataclass
class Tally:
    """Everything mod_status computes from the scoreboard before it prints."""

    busy: int = 0
    graceful: int = 0
    idle: int = 0
    processes: int = 0
    stopping: int = 0
    conns_total: int = 0
    conns_async_wait_io: int = 0
    conns_async_writing: int = 0
    conns_async_keep_alive: int = 0
    conns_async_closing: int = 0
    total_accesses: int = 0
    total_kbytes: int = 0
    total_duration_ms: int = 0
    cpu: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    per_process: list[ProcessTally] = field(default_factory=list)


def tally(snap: ScoreboardSnapshot) -> Tally:
    """Count workers, connections and totals as mod_status' ``status_handler`` does.

    Busy/graceful/idle only for processes with a pid that are not quiescing;
    idle only for the running generation (see the module docstring). Totals
    run over every slot (a slot keeps its counters after its child exits, as
    in httpd). Per process, CPU times are the largest of its slots' (httpd's
    rule when ``times()`` is per process), summed over processes and added to
    the parent's.
    """
    t = Tally()
    gen = snap.generation
    nbytes = 0
    duration = 0.0
    tu = ts = tcu = tcs = 0.0
    for proc, row in zip(snap.processes, snap.workers):
        counted = proc.pid != 0 and not proc.quiescing
        p_busy = p_idle = p_graceful = 0
        pu = ps = pcu = pcs = 0.0
        for w in row:
            res = w.status
            if res == READY:
                p_idle += 1
                if counted and proc.generation == gen:
                    t.idle += 1
            elif res == GRACEFUL:
                p_graceful += 1
                if counted:
                    t.graceful += 1
            elif res not in _NOT_BUSY:
                p_busy += 1
                if counted:
                    t.busy += 1
            if w.access_count or (res != READY and res != DEAD):
                t.total_accesses += w.access_count
                nbytes += w.bytes_served
                duration += w.duration
                wu, ws, wcu, wcs = w.times
                if wu > pu or ws > ps or wcu > pcu or wcs > pcs:
                    pu, ps, pcu, pcs = wu, ws, wcu, wcs
        tu += pu
        ts += ps
        tcu += pcu
        tcs += pcs
        if proc.pid:
            t.processes += 1
            if proc.quiescing:
                t.stopping += 1
            t.conns_total += proc.connections
            t.conns_async_wait_io += proc.wait_io
            t.conns_async_writing += proc.write_completion
            t.conns_async_keep_alive += proc.keep_alive
            t.conns_async_closing += proc.lingering_close
            t.per_process.append(
                ProcessTally(
                    slot=proc.slot,
                    pid=proc.pid,
                    generation=proc.generation,
                    stopping=proc.quiescing,
                    accepting=not proc.not_accepting,
                    connections=proc.connections,
                    busy=p_busy,
                    idle=p_idle,
                    graceful=p_graceful,
                    wait_io=proc.wait_io,
                    writing=proc.write_completion,
                    keepalive=proc.keep_alive,
                    closing=proc.lingering_close,
                )
            )
    t.total_kbytes = nbytes // _KBYTE
    t.total_duration_ms = int(duration * 1000)
    gu, gs, gcu, gcs = snap.parent_times
    t.cpu = (gu + tu, gs + ts, gcu + tcu, gcs + tcs)
    return t


def scoreboard_string(snap: ScoreboardSnapshot, active_slots: int, threads_per_child: int) -> str:
    """The ``Scoreboard:`` characters, in slot order.

    One character per worker slot, except slots at or beyond ``active_slots``
    processes / ``threads_per_child`` threads that are DEAD (mod_status'
    ``SERVER_DISABLED``): those are left out, as httpd leaves out the slots
    above MaxRequestWorkers.
    """
    out = []
    nchars = len(STATUS_CHARS)
    for i, row in enumerate(snap.workers):
        for j, w in enumerate(row):
            res = w.status
            if res == DEAD and (i >= active_slots or j >= threads_per_child):
                continue
            out.append(STATUS_CHARS[res] if 0 <= res < nchars else "?")
    return "".join(out)


def _rates(t: Tally, up_time: int) -> dict[str, str]:
    out: dict[str, str] = {}
    if up_time > 0:
        out["ReqPerSec"] = format_g(t.total_accesses / up_time)
        out["BytesPerSec"] = format_g(_KBYTE * t.total_kbytes / up_time)
    if t.total_accesses > 0:
        out["BytesPerReq"] = format_g(_KBYTE * t.total_kbytes / t.total_accesses)
        out["DurationPerReq"] = format_g(t.total_duration_ms / t.total_accesses)
    return out


def _loadavg(loadavg: tuple[float, float, float] | None) -> tuple[float, float, float]:
    if loadavg is not None:
        return loadavg
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (0.0, 0.0, 0.0)


# ---------------------------------------------------------------------- ?auto


def render_auto(
    snap: ScoreboardSnapshot,
    *,
    mpm: str,
    server_version: str,
    active_slots: int,
    threads_per_child: int,
    uptime: float,
    host: str = "127.0.0.1",
    server_built: str | None = None,
    config_generation: int | None = None,
    now: float | None = None,
    loadavg: tuple[float, float, float] | None = None,
    extended: bool = True,
) -> str:
    """Render ``/server-status?auto``: httpd 2.4 mod_status' machine-readable report.

    ``mpm`` is ServerMPM (``prefork``, ``worker``, ``event``); ``active_slots``
    and ``threads_per_child`` bound the scoreboard string (see
    :func:`scoreboard_string`); ``uptime`` is seconds since the last start or
    hard restart (httpd: now - restart_time, truncated). ``host`` is the first
    line (httpd prints ``ap_get_server_name``). ``config_generation`` defaults
    to generation + 1, as httpd's config generation starts at 1 while the MPM
    generation starts at 0. ``now`` and ``loadavg`` exist for tests.

    Line order and counting follow httpd (module docstring), plus the
    async lines for every MPM and one ``Process:`` line per live process.
    Without ``extended`` (ExtendedStatus Off) the totals, CPU, Uptime and
    rate lines are left out, as mod_status leaves them.
    """
    now = time.time() if now is None else now
    up_time = max(0, int(uptime))
    t = tally(snap)
    l1, l5, l15 = _loadavg(loadavg)
    cfg_gen = snap.generation + 1 if config_generation is None else config_generation
    lines = [
        host,
        f"ServerVersion: {server_version}",
        f"ServerMPM: {mpm}",
        f"Server Built: {server_built if server_built is not None else _default_built()}",
        f"CurrentTime: {_ht_time(now)}",
        f"RestartTime: {_ht_time(snap.restart_time)}",
        f"ParentServerConfigGeneration: {cfg_gen}",
        f"ParentServerMPMGeneration: {snap.generation}",
        f"ServerUptimeSeconds: {up_time}",
        f"ServerUptime:{format_uptime(up_time)}",
        f"Load1: {l1:.2f}",
        f"Load5: {l5:.2f}",
        f"Load15: {l15:.2f}",
    ]
    if extended:
        lines += [
            f"Total Accesses: {t.total_accesses}",
            f"Total kBytes: {t.total_kbytes}",
            f"Total Duration: {t.total_duration_ms}",
            f"CPUUser: {format_g(t.cpu[0])}",
            f"CPUSystem: {format_g(t.cpu[1])}",
            f"CPUChildrenUser: {format_g(t.cpu[2])}",
            f"CPUChildrenSystem: {format_g(t.cpu[3])}",
        ]
        cpu = sum(t.cpu)
        if cpu and up_time > 0:
            lines.append(f"CPULoad: {format_g(cpu / up_time * 100.0)}")
        lines.append(f"Uptime: {up_time}")
        lines.extend(f"{k}: {v}" for k, v in _rates(t, up_time).items())
    lines += [
        f"BusyWorkers: {t.busy}",
        f"GracefulWorkers: {t.graceful}",
        f"IdleWorkers: {t.idle}",
        f"Processes: {t.processes}",
        f"Stopping: {t.stopping}",
        f"ConnsTotal: {t.conns_total}",
        f"ConnsAsyncWaitIO: {t.conns_async_wait_io}",
        f"ConnsAsyncWriting: {t.conns_async_writing}",
        f"ConnsAsyncKeepAlive: {t.conns_async_keep_alive}",
        f"ConnsAsyncClosing: {t.conns_async_closing}",
        f"Scoreboard: {scoreboard_string(snap, active_slots, threads_per_child)}",
    ]
    for p in t.per_process:
        lines.append(
            f"Process: slot={p.slot} pid={p.pid} generation={p.generation}"
            f" stopping={'yes' if p.stopping else 'no'} accepting={'yes' if p.accepting else 'no'}"
            f" connections={p.connections} busy={p.busy} idle={p.idle}"
            f" writing={p.writing} keepalive={p.keepalive} closing={p.closing} graceful={p.graceful}"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- HTML


def render_html(
    snap: ScoreboardSnapshot,
    *,
    mpm: str,
    server_version: str,
    active_slots: int,
    threads_per_child: int,
    uptime: float,
    host: str = "127.0.0.1",
    server_built: str | None = None,
    config_generation: int | None = None,
    now: float | None = None,
    loadavg: tuple[float, float, float] | None = None,
    extended: bool = True,
) -> str:
    """Render ``/server-status``: a self-contained HTML5 page in mod_status' shape.

    Server facts and totals, "N requests currently being processed, ... idle
    workers", a per-process table (mod_status prints it for event; here for
    every MPM), the scoreboard in rows of 64 characters, the scoreboard key in
    mod_status' words and order (``_ S R W K D C L G I .``), and a table of
    the worker slots that are busy or have served requests (ExtendedStatus).
    Every value from the scoreboard is HTML-escaped; no external assets.
    """
    now = time.time() if now is None else now
    up_time = max(0, int(uptime))
    t = tally(snap)
    l1, l5, l15 = _loadavg(loadavg)
    cfg_gen = snap.generation + 1 if config_generation is None else config_generation
    esc = html.escape
    out: list[str] = []
    w = out.append

    w("<!DOCTYPE html>")
    w('<html lang="en"><head><meta charset="utf-8">')
    w(f"<title>Server Status for {esc(host)}</title>")
    w(
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px}pre{font-size:1.1em}</style>"
    )
    w("</head><body>")
    w(f"<h1>Server Status for {esc(host)}</h1>")
    w("<dl>")
    for k, v in (
        ("Server Version", server_version),
        ("Server MPM", mpm),
        ("Server Built", server_built if server_built is not None else _default_built()),
    ):
        w(f"<dt>{k}</dt><dd>{esc(v)}</dd>")
    w("</dl><hr><dl>")
    facts = [
        ("Current Time", _ht_time(now)),
        ("Restart Time", _ht_time(snap.restart_time)),
        ("Parent Server Config. Generation", str(cfg_gen)),
        ("Parent Server MPM Generation", str(snap.generation)),
        ("Server uptime", format_uptime(up_time).strip() or "0 seconds"),
        ("Server load", f"{l1:.2f} {l5:.2f} {l15:.2f}"),
    ]
    if extended:
        facts += _extended_facts(t, up_time)
    facts.append(
        (
            "Workers",
            f"{t.busy} requests currently being processed, {t.graceful} workers gracefully restarting,"
            f" {t.idle} idle workers",
        )
    )
    for k, v in facts:
        w(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>")
    w("</dl>")

    # Per-process table (mod_status' async table, for every MPM here).
    w('<table id="processes">')
    w(
        "<thead><tr><th rowspan=\"2\">Slot</th><th rowspan=\"2\">PID</th><th rowspan=\"2\">Stopping</th>"
        '<th colspan="2">Connections</th><th colspan="3">Threads</th>'
        '<th colspan="4">Async connections</th></tr>'
    )
    w(
        "<tr><th>total</th><th>accepting</th><th>busy</th><th>graceful</th><th>idle</th>"
        "<th>wait-io</th><th>writing</th><th>keep-alive</th><th>closing</th></tr></thead>"
    )
    w("<tbody>")
    for p in t.per_process:
        old = "" if p.generation == snap.generation else " (old gen)"
        w(
            f"<tr><td>{p.slot}</td><td>{p.pid}</td><td>{'yes' if p.stopping else 'no'}{old}</td>"
            f"<td>{p.connections}</td><td>{'yes' if p.accepting else 'no'}</td>"
            f"<td>{p.busy}</td><td>{p.graceful}</td><td>{p.idle}</td>"
            f"<td>{p.wait_io}</td><td>{p.writing}</td><td>{p.keepalive}</td><td>{p.closing}</td></tr>"
        )
    w(
        f"<tr><td>Sum</td><td>{t.processes}</td><td>{t.stopping}</td>"
        f"<td>{t.conns_total}</td><td>&nbsp;</td>"
        f"<td>{sum(p.busy for p in t.per_process)}</td><td>{sum(p.graceful for p in t.per_process)}</td>"
        f"<td>{sum(p.idle for p in t.per_process)}</td>"
        f"<td>{t.conns_async_wait_io}</td><td>{t.conns_async_writing}</td>"
        f"<td>{t.conns_async_keep_alive}</td><td>{t.conns_async_closing}</td></tr>"
    )
    w("</tbody></table>")

    board = scoreboard_string(snap, active_slots, threads_per_child)
    rows = [board[i : i + _STATUS_MAXLINE] for i in range(0, len(board), _STATUS_MAXLINE)]
    w('<pre id="scoreboard">' + "\n".join(rows) + "</pre>")
    key = ",\n".join(f'"<b><code>{esc(STATUS_CHARS[code])}</code></b>" {STATUS_NAMES[code]}' for code in KEY_ORDER)
    w(f'<p id="key">Scoreboard Key:<br>\n{key}</p>')

    if extended:
        _workers_table(w, snap)
    w("</body></html>")
    return "\n".join(out) + "\n"


def _extended_facts(t, up_time: int) -> list[tuple[str, str]]:
    """The HTML page's totals, CPU and rates (ExtendedStatus On)."""
    facts = [(
        "Total accesses",
        f"{t.total_accesses} - Total Traffic: {_kbyte_out(t.total_kbytes)} - Total Duration: {t.total_duration_ms}",
    )]
    cpu_txt = "u{} s{} cu{} cs{}".format(*(format_g(x) for x in t.cpu))
    cpu = sum(t.cpu)
    if cpu and up_time > 0:
        cpu_txt += f" - {cpu / up_time * 100.0:.3g}% CPU load"
    facts.append(("CPU Usage", cpu_txt))
    rate_parts = []
    if up_time > 0:
        rate_parts.append(f"{t.total_accesses / up_time:.3g} requests/sec")
        rate_parts.append(f"{_byte_out(_KBYTE * t.total_kbytes / up_time)}/second")
    if t.total_accesses > 0:
        rate_parts.append(f"{_byte_out(_KBYTE * t.total_kbytes / t.total_accesses)}/request")
        rate_parts.append(f"{format_g(t.total_duration_ms / t.total_accesses)} ms/request")
    if rate_parts:
        facts.append(("Rates", " - ".join(rate_parts)))
    return facts


def _workers_table(w, snap: ScoreboardSnapshot) -> None:
    """ExtendedStatus: the worker slots that are busy or have served requests."""
    esc = html.escape
    w('<table id="workers">')
    w(
        "<thead><tr><th>Srv</th><th>PID</th><th>Acc</th><th>M</th><th>SS</th><th>Dur</th>"
        "<th>Child</th><th>Slot</th><th>Client</th><th>Request</th></tr></thead><tbody>"
    )
    for proc, row in zip(snap.processes, snap.workers):
        for wk in row:
            if wk.access_count == 0 and wk.status in (READY, DEAD):
                continue
            ss = int(max(0.0, snap.taken_at - wk.last_used)) if wk.last_used else 0
            w(
                f"<tr><td>{proc.slot}-{proc.generation}</td><td>{proc.pid or '-'}</td>"
                f"<td>{wk.my_access_count}/{wk.access_count}</td>"
                f"<td><b>{esc(wk.status_char)}</b></td><td>{ss}</td><td>{int(wk.duration * 1000)}</td>"
                f"<td>{esc(_byte_out(wk.my_bytes_served))}</td><td>{esc(_byte_out(wk.bytes_served))}</td>"
                f"<td>{esc(wk.client)}</td><td>{esc(wk.request)}</td></tr>"
            )
    w("</tbody></table>")
    w(
        "<p>Srv: child server number - generation; Acc: accesses this child / this slot;"
        " M: mode of operation; SS: seconds since the end of the most recent request;"
        " Dur: milliseconds spent in requests; Child, Slot: bytes served by this child / this slot.</p>"
    )
