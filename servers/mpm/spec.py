"""What each MPM is, declared once: the interface the parent, config, launcher, suites and advisor read.

httpd answers "which MPM, and what kind" through ``ap_mpm_query`` (AP_MPMQ_IS_THREADED,
AP_MPMQ_IS_FORKED, AP_MPMQ_IS_ASYNC, AP_MPMQ_HARD_LIMIT_DAEMONS / _THREADS ...), and each
MPM carries its own copies of the sizing code and log messages. Here one :class:`MPMSpec`
per MPM holds those facts: its name, threaded or not, asynchronous or not, the compile-time
hard limits, how the shared parent sizes and counts it, its AH message codes, and the
module whose ``child_main`` runs a child. Nothing else in the project lists the MPMs.

This module is a leaf (it imports nothing from the servers package), so ``servers.config``
can read it while it is itself read by the MPM code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class MPMSpec:
    """One MPM as httpd's ``ap_mpm_query`` and its ``*_run`` code describe it."""

    name: str
    #: AP_MPMQ_IS_THREADED: worker threads inside each child (prefork: one connection per process)
    threaded: bool
    #: AP_MPMQ_IS_ASYNC: idle and slow connections wait in a listener, not in a worker (event)
    asynchronous: bool
    #: MAX_SERVER_LIMIT / MAX_THREAD_LIMIT compiled into the MPM (ServerLimit / ThreadLimit clamps)
    hard_server_limit: int
    hard_thread_limit: int
    #: "server reached MaxRequestWorkers setting" (logged once per server lifetime)
    maxclients_code: str
    #: "server seems busy" (idle-spawn rate reached 8)
    busy_code: str
    #: the text after "server seems busy, (you may need to increase ", with {spawning}, {idle}
    #: and {total} filled in by :meth:`busy_message`
    busy_text: str
    #: "server is within MinSpareThreads of MaxRequestWorkers" (threaded MPMs only)
    near_maxclients_code: str | None = None
    #: AH numbers of the start-up warnings of each MPM's check_config (each MPM has its own copy)
    config_codes: Mapping[str, str] = field(default_factory=dict)

    # -- sizing, as the shared parent asks it ------------------------------------------
    def process_limit(self, cfg: Any) -> int:
        """httpd's ap_daemons_limit: most children serving at once (MaxRequestWorkers, divided
        by ThreadsPerChild for the threaded MPMs, clamped to ServerLimit: ``cfg.daemons_limit``)."""
        return cfg.daemons_limit

    def threads_per_child(self, cfg: Any) -> int:
        """Worker threads (and scoreboard thread slots in use) per child: 1 for prefork."""
        return cfg.ThreadsPerChild if self.threaded else 1

    def spare_limits(self, cfg: Any) -> tuple[int, int]:
        """The idle floor and ceiling of perform_idle_server_maintenance: Min/MaxSpareServers
        counted in processes (prefork), Min/MaxSpareThreads counted in threads server-wide."""
        if self.threaded:
            return cfg.MinSpareThreads, cfg.MaxSpareThreads
        return cfg.MinSpareServers, cfg.MaxSpareServers

    def scoreboard_threads(self, cfg: Any) -> int:
        """Thread slots per process in the scoreboard: ThreadLimit for the threaded MPMs (so
        ThreadsPerChild can grow on a restart), 1 for prefork."""
        return max(self.threads_per_child(cfg), cfg.ThreadLimit) if self.threaded else 1

    def slot_scan_limit(self, cfg: Any) -> int:
        """Process slots the parent may fork into: prefork scans MaxRequestWorkers slots; the
        threaded MPMs scan up to ServerLimit, since old-generation processes may still hold
        slots while new ones start (worker.c / event.c ``ap_max_daemons_limit``)."""
        return cfg.ServerLimit if self.threaded else self.process_limit(cfg)

    def at_capacity(self, cfg: Any, busy_threads: int, live_processes: int) -> bool:
        """Whether maintenance is at MaxRequestWorkers: busy threads for the threaded MPMs,
        live processes for prefork (each process is one worker)."""
        if self.threaded:
            return busy_threads >= cfg.MaxRequestWorkers
        return live_processes >= self.process_limit(cfg)

    def busy_message(self, spawning: int, idle: int, total: int) -> str:
        """httpd's "server seems busy" line of this MPM (AH00162 / AH00289 / AH00486)."""
        return "server seems busy, (you may need to increase " + self.busy_text.format(
            spawning=spawning, idle=idle, total=total)

    # -- the child ---------------------------------------------------------------------
    def load_child(self) -> Callable[[Any], int]:
        """The MPM's ``child_main(env) -> exit status`` (its module is imported on first use)."""
        return importlib.import_module(f"{__package__}.{self.name}").child_main


_PREFORK = MPMSpec(
    name="prefork", threaded=False, asynchronous=False,
    hard_server_limit=200000, hard_thread_limit=1,
    maxclients_code="AH00161", busy_code="AH00162",
    busy_text="StartServers, or Min/MaxSpareServers), spawning {spawning} children, "
              "there are {idle} idle, and {total} total children",
    config_codes=MappingProxyType({"server_limit": "00175", "mrw_over_limit": "00180", "maxclients": "00188"}),
)
_WORKER = MPMSpec(
    name="worker", threaded=True, asynchronous=False,
    hard_server_limit=20000, hard_thread_limit=20000,
    maxclients_code="AH00286", near_maxclients_code="AH00287", busy_code="AH00289",
    busy_text="StartServers, ThreadsPerChild or Min/MaxSpareThreads), spawning {spawning} children, "
              "there are around {idle} idle threads, and {total} total children",
    config_codes=MappingProxyType({
        "server_limit": "00300", "thread_limit": "00305", "tpc_over_limit": "00310", "mrw_below_tpc": "00314",
        "mrw_multiple": "00316", "mrw_over_limit": "00318", "maxclients": "00324"}),
)
_EVENT = MPMSpec(
    name="event", threaded=True, asynchronous=True,
    hard_server_limit=20000, hard_thread_limit=100000,
    maxclients_code="AH00484", near_maxclients_code="AH10159", busy_code="AH00486",
    busy_text="StartServers, ThreadsPerChild or Min/MaxSpareThreads), spawning {spawning} children, "
              "there are around {idle} idle threads, {total} active children, and 0 children that are "
              "shutting down",
    config_codes=MappingProxyType({
        "server_limit": "00497", "thread_limit": "00502", "tpc_over_limit": "00507", "mrw_below_tpc": "00511",
        "mrw_multiple": "00513", "mrw_over_limit": "00515", "maxclients": "00521"}),
)

#: every MPM, in the order the project presents them (httpd's history: prefork, worker, event)
MPMS: Mapping[str, MPMSpec] = MappingProxyType({s.name: s for s in (_PREFORK, _WORKER, _EVENT)})
MPM_NAMES: tuple[str, ...] = tuple(MPMS)
