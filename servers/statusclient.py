"""The client side of mod_status: parse a ``/server-status?auto`` report.

The launcher (``Handle.status()``), the harness's scoreboard polling and the suites read
the machine-readable report of any server with it: ours (rendered by
:mod:`servers.mpm.status`) or a real Apache httpd of any 2.x version. It lives apart from
the renderer because its users are clients of a server, never the server itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["StatusReport", "parse_auto"]


@dataclass
class StatusReport:
    """A parsed ``?auto`` report, from this project's servers or a real Apache httpd.

    Numeric keys become typed fields, ``None`` when the server did not print
    them (prefork/worker httpd has no Processes or Conns* lines, httpd before
    2.4.58 no GracefulWorkers, before 2.4.63 no ConnsAsyncWaitIO, with
    ExtendedStatus Off no totals). ``raw`` keeps every ``key: value`` line as
    text (first occurrence wins), including lines other modules append after
    the scoreboard; ``processes_detail`` holds the mpm-harness ``Process:``
    lines as dicts (numbers as int, yes/no as bool).
    """

    server_name: str | None = None
    server_version: str | None = None
    server_mpm: str | None = None
    server_built: str | None = None
    current_time: str | None = None
    restart_time: str | None = None
    config_generation: int | None = None
    generation: int | None = None
    server_uptime_seconds: int | None = None
    server_uptime: str | None = None
    load1: float | None = None
    load5: float | None = None
    load15: float | None = None
    total_accesses: int | None = None
    total_kbytes: int | None = None
    total_duration: int | None = None
    cpu_user: float | None = None
    cpu_system: float | None = None
    cpu_children_user: float | None = None
    cpu_children_system: float | None = None
    cpu_load: float | None = None
    uptime: int | None = None
    req_per_sec: float | None = None
    bytes_per_sec: float | None = None
    bytes_per_req: float | None = None
    duration_per_req: float | None = None
    busy_workers: int | None = None
    graceful_workers: int | None = None
    idle_workers: int | None = None
    processes: int | None = None
    stopping: int | None = None
    conns_total: int | None = None
    conns_async_wait_io: int | None = None
    conns_async_writing: int | None = None
    conns_async_keep_alive: int | None = None
    conns_async_closing: int | None = None
    scoreboard: str = ""
    processes_detail: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)

    def state_counts(self) -> dict[str, int]:
        """How many scoreboard characters are in each state, for every key character."""
        return {c: self.scoreboard.count(c) for c in "_SRWKDCLGI."}


# key -> (field, type); BusyServers/IdleServers are httpd 1.3's names.
_FIELDS: dict[str, tuple[str, type]] = {
    "ServerVersion": ("server_version", str),
    "ServerMPM": ("server_mpm", str),
    "Server Built": ("server_built", str),
    "CurrentTime": ("current_time", str),
    "RestartTime": ("restart_time", str),
    "ParentServerConfigGeneration": ("config_generation", int),
    "ParentServerMPMGeneration": ("generation", int),
    "ServerUptimeSeconds": ("server_uptime_seconds", int),
    "ServerUptime": ("server_uptime", str),
    "Load1": ("load1", float),
    "Load5": ("load5", float),
    "Load15": ("load15", float),
    "Total Accesses": ("total_accesses", int),
    "Total kBytes": ("total_kbytes", int),
    "Total Duration": ("total_duration", int),
    "CPUUser": ("cpu_user", float),
    "CPUSystem": ("cpu_system", float),
    "CPUChildrenUser": ("cpu_children_user", float),
    "CPUChildrenSystem": ("cpu_children_system", float),
    "CPULoad": ("cpu_load", float),
    "Uptime": ("uptime", int),
    "ReqPerSec": ("req_per_sec", float),
    "BytesPerSec": ("bytes_per_sec", float),
    "BytesPerReq": ("bytes_per_req", float),
    "DurationPerReq": ("duration_per_req", float),
    "BusyWorkers": ("busy_workers", int),
    "GracefulWorkers": ("graceful_workers", int),
    "IdleWorkers": ("idle_workers", int),
    "BusyServers": ("busy_workers", int),
    "IdleServers": ("idle_workers", int),
    "Processes": ("processes", int),
    "Stopping": ("stopping", int),
    "ConnsTotal": ("conns_total", int),
    "ConnsAsyncWaitIO": ("conns_async_wait_io", int),
    "ConnsAsyncWriting": ("conns_async_writing", int),
    "ConnsAsyncKeepAlive": ("conns_async_keep_alive", int),
    "ConnsAsyncClosing": ("conns_async_closing", int),
    "Scoreboard": ("scoreboard", str),
}


def _convert(value: str, typ: type) -> Any:
    if typ is str:
        return value
    try:
        if typ is int:
            try:
                return int(value)
            except ValueError:
                return int(float(value))
        return float(value)
    except (ValueError, OverflowError):
        return None


def _parse_process(value: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for item in value.split():
        k, sep, v = item.partition("=")
        if not sep:
            continue
        if v in ("yes", "no"):
            d[k] = v == "yes"
        else:
            try:
                d[k] = int(v)
            except ValueError:
                d[k] = v
    return d


def parse_auto(text: str) -> StatusReport:
    """Parse ``/server-status?auto`` output into a :class:`StatusReport`.

    Tolerant, so it reads real httpd output of any 2.x version too: the first
    line without a colon is the server name; unknown keys, other modules'
    trailers (``TLSSessionCacheStatus``, mod_qos ...) and blank lines go to
    ``raw`` or are skipped; a key printed twice (httpd 2.4.13-2.4.34 event
    printed BusyWorkers and IdleWorkers again in its async block) keeps its
    first value. Values that do not parse as numbers leave the field ``None``.
    """
    rep = StatusReport()
    seen_key = False
    for line in text.splitlines():
        line = line.rstrip("\r")
        if not line.strip():
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":"):  # e.g. "ServerUptime:" at uptime 0
                key, value = line[:-1], ""
            else:
                if rep.server_name is None and not seen_key:
                    rep.server_name = line.strip()
                continue
        key = key.strip()
        value = value.strip()
        seen_key = True
        if key == "Process":
            rep.processes_detail.append(_parse_process(value))
            continue
        if key in rep.raw:
            continue
        rep.raw[key] = value
        spec = _FIELDS.get(key)
        if spec is not None:
            name, typ = spec
            if getattr(rep, name) in (None, ""):
                setattr(rep, name, _convert(value, typ))
    return rep
