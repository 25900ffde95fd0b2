"""Run a matrix: start each server, drive its load profiles, sample it, run its suites, record everything.

Order of a run (docs/harness.md, "How a run is measured"):

1. **Load profiles, interleaved.**  For trial 1..N, for each server A, B,
   C (A B C A B C ...): start the server fresh through the launcher, pinned
   to the server CPUs; start the sampler (a separate process) on its tree;
   run the warm-up (closed-loop load, discarded); then for each profile: a
   quiet-machine check (other processes' CPU; above the matrix threshold the
   cell is flagged ``noisy``), a sampler mark, the driver pinned to the
   driver CPUs, a mark; then stop the sampler and the server and turn the
   marks into cells.  A server whose parent exits, or that stops answering
   ``GET /`` after a profile, is stopped and recorded as failed cells with the
   reason (its error log kept under ``logs/``); the run goes on with the next
   server.  Measurements come first, while nothing else runs.
2. **Suites.**  For each server, one pytest subprocess runs every suite of
   the matrix against it (``--server NAME --server-set ...``), with a
   deadline; verdicts become suite cells.
3. **Tables.**  The summary (medians over ``ok`` trials) and the tables.

A server given as a URL (``url:`` in the matrix, ``harness run --target``)
is already running: it is neither started nor stopped; its process tree is
sampled only when its parent's PID (``pid``/``pidfile``) names a process
here, and otherwise its cells carry no CPU or memory figures and the server
is recorded ``sampled: false`` (the tables say "not sampled here").  Against
a URL that is not on loopback, attack-like profiles (the idle driver) run
only with ``allow_attacks``; without it they are recorded as skipped with
:data:`~harness.matrix.ATTACK_NOT_RUN`.

Ctrl-C (or SIGTERM) stops what is running -- the driver, the sampler, the
server, a suite run -- by PID, marks the document ``interrupted`` and writes
the tables of what was measured.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TextIO

from servers.interpreters import PYTHON_ENV, Interpreter, probe_python, python_imports, python_of, python_refusal
from servers.launcher import Handle, LaunchError, available, lacks, reference, server_version, start

from .drivers.access import LOOPBACK, Access
from .drivers.base import DriverResult
from .drivers.loadgen import run_closed_loop
from .drivers.registry import DRIVERS
from .matrix import Matrix, Profile, ServerEntry, check_interpreters
from .sampler.controller import SamplerError
from .results import SOAK_MIN_SECONDS, RunDocument, environment, new_run_dir
from .sampler import Sampler, SamplerSeries, quiet_check
from .scoreboard import ScoreboardPoller
from .suiterun import run_suites

__all__ = ["run_matrix", "choose_pinning", "driver_unavailable", "MatrixRunner"]

#: rough wall-clock seconds per step, for the progress estimate only
_EST_START = 3.0
_EST_SUITE = {"smoke": 3.0, "conformance": 10.0, "keepalive": 10.0, "slowclient": 14.0, "threadsafety": 6.0}
#: a server must answer GET / within this after each profile, or it is recorded as hung
_HEALTH_TIMEOUT = 5.0
#: growth over the second half of a soak window that is flagged: PSS beyond max(2 MiB, 5 %), fds beyond 5
_PSS_GROWTH_MIB, _PSS_GROWTH_FRACTION, _FD_GROWTH = 2.0, 0.05, 5


def choose_pinning(mode: str = "auto") -> dict:
    """Split the usable CPUs between the server tree and the load driver (and the sampler).

    With two or more CPUs (``mode="auto"``) the server gets the first half
    and the driver the rest; the sampler shares the driver's CPUs, so it
    never steals from the server.  With one CPU, or ``mode="none"``, nothing
    is pinned and the lists are empty.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "none" or len(cpus) < 2:
        return {"server_cpus": [], "driver_cpus": [], "sampler_cpus": []}
    half = len(cpus) // 2
    return {"server_cpus": cpus[:half], "driver_cpus": cpus[half:], "sampler_cpus": cpus[half:]}


def driver_unavailable(driver: str) -> str | None:
    """Why ``driver`` cannot run on this machine (naming what to install), or None."""
    return DRIVERS[driver].available()


def drive(profile: Profile, url: str, cpus: list[int], on_hold: Callable[[int], None] | None = None,
          access: Access = LOOPBACK) -> DriverResult:
    """Run one load profile against ``url`` with its driver, pinned to ``cpus`` (empty: unpinned), reaching
    it as ``access`` says (an https URL's certificate check, the attack opt-in)."""
    spec = DRIVERS.get(profile.driver)
    if spec is None:
        raise ValueError(f"unknown driver {profile.driver!r}")
    return spec.run(profile, url, cpus or None, on_hold, access)


def _mib(n: float | None) -> float | None:
    return None if n is None else round(n / 2**20, 2)


def _ms(us: float) -> float:
    return round(us / 1000.0, 3)


class Progress:
    """One line per step: elapsed, estimated time left, and what runs now."""

    def __init__(self, total_estimate: float, out: TextIO):
        self.t0 = time.monotonic()
        self.left = total_estimate
        self.out = out

    def step(self, text: str, estimate: float = 0.0) -> None:
        """Announce a step that is expected to take ``estimate`` seconds."""
        elapsed = time.monotonic() - self.t0
        print(f"[{_clock(elapsed)} elapsed, ~{_clock(max(self.left, 0.0))} left] {text}", file=self.out, flush=True)
        self.left -= estimate

    def note(self, text: str) -> None:
        """An indented remark about the step that just ran."""
        print(f"    {text}", file=self.out, flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m:02d}:{s:02d}"


class _Interrupted(Exception):
    pass


class RunningServer:
    """A matrix server given as a URL: the launcher handle's interface, but nothing is started or stopped.

    ``pid`` is its parent's PID when the entry names one (``pid``, or ``pidfile`` read now) and that
    process exists here, else None; ``why_unsampled`` says why not.
    """

    def __init__(self, entry: ServerEntry):
        self.url = entry.url
        self.notes: list[str] = []
        self.pid, self.why_unsampled = _running_pid(entry)

    def alive(self) -> bool:
        """Whether its parent still runs (True when we do not know its PID: the health check decides)."""
        import psutil

        return self.pid is None or psutil.pid_exists(self.pid)

    def stop(self) -> None:
        """Nothing: a server the harness did not start is left running."""

    def log_text(self) -> str:
        """No error log: the server's own logs are wherever its configuration puts them."""
        return ""

    def effective_config(self) -> str:
        """Unknown: the server runs with its own configuration."""
        return ""


def _running_pid(entry: ServerEntry) -> tuple[int | None, str]:
    """(PID, "") of a URL server's parent on this machine, or (None, why it cannot be sampled)."""
    import psutil

    pid = entry.pid
    if entry.pidfile:
        try:
            pid = int(Path(entry.pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            return None, f"pidfile {entry.pidfile} unreadable: {_first_line(exc)}"
    if not pid:
        return None, "no pid or pidfile given: the server may run on another machine"
    if not psutil.pid_exists(pid):
        return None, f"no process {pid} on this machine"
    return pid, ""


class MatrixRunner:
    """Runs one matrix into one run folder (see the module doc for the order)."""

    def __init__(self, matrix: Matrix, run_dir: Path, *, out: TextIO = sys.stdout, argv: list[str] | None = None,
                 interpreters: dict[str, Interpreter] | None = None):
        self.m = matrix
        # each entry's ``python``, probed before anything starts (MatrixError naming the fix)
        self.interpreters = check_interpreters(matrix) if interpreters is None else interpreters
        self.run_dir = Path(run_dir)
        self.out = out
        self.pinning = choose_pinning(matrix.pinning)
        self.doc = RunDocument.create(self.run_dir, matrix.to_dict(), environment(self.pinning), argv)
        self.avail = available()
        self.unavailable: dict[str, str] = {}  # label -> reason
        self.driver_reason = {p.driver: driver_unavailable(p.driver) for p in matrix.profiles}
        self.progress = Progress(self._estimate(), out)

    # -- planning ---------------------------------------------------------------------------------

    def _estimate(self) -> float:
        runnable = [s for s in self.m.servers if _unavailable(s, self.avail) is None]
        per_trial = {}
        for t in range(1, max([self.m.trials] + [self.m.trials_of(p) for p in self.m.profiles]) + 1):
            profiles = [p for p in self.m.profiles if self.m.trials_of(p) >= t and not self.driver_reason[p.driver]]
            if profiles:
                per_trial[t] = _EST_START + self.m.warmup + sum(
                    p.duration + self.m.quiet_seconds + DRIVERS[p.driver].overhead_s for p in profiles)
        suites = sum(_suites_estimate(group, workers)
                     for group, workers, _ in _suite_groups(self.m)) if self.m.suites else 0
        return len(runnable) * (sum(per_trial.values()) + suites)

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> RunDocument:
        """Run everything; on Ctrl-C/SIGTERM keep what was measured and mark the run interrupted."""
        previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
        _INTERRUPT.clear()
        status = "complete"
        try:
            self._record_servers()
            self._profiles()
            self._suites()
            _check_interrupt()
        except (KeyboardInterrupt, _Interrupted):
            status = "interrupted"
            self.progress.note("interrupted: everything started was stopped; partial results kept")
        except BaseException:
            self.doc.finish("failed")
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.doc.finish(status)
        return self.doc

    def _record_servers(self) -> None:
        for s in self.m.servers:
            why = _unavailable(s, self.avail)
            info = {"server": s.server, "set": s.set, "suite_set": s.suite_set, "app": s.app,
                    "available": why is None, "unavailable_reason": why or "",
                    "effective_config": _effective_config(s), "python": self._python_record(s)}
            if s.url:
                info |= {"url": s.url, "sampled": bool(s.pid or s.pidfile), "loopback": s.loopback}
            if why is not None:
                self.unavailable[s.label] = why
            self.doc.set_server(s.label, info)
            if why is not None:
                self.progress.note(f"{s.label}: skipped ({why})")
                for p in self.m.profiles:
                    self.doc.add_cell(_skipped_profile(s, p, why))
                for suite in self.m.suites:
                    self.doc.add_cell(_suite_cell(s.label, suite, "skipped", why))

    def _profiles(self) -> None:
        if not self.m.profiles:
            return
        runnable = [s for s in self.m.servers if s.label not in self.unavailable]
        for s in runnable:
            for p in self.m.profiles:
                why = self.driver_reason[p.driver] or _refusal(s, p)
                if why:
                    self.doc.add_cell(_skipped_profile(s, p, why))
        trials = max([self.m.trials_of(p) for p in self.m.profiles])
        for trial in range(1, trials + 1):
            profiles = [p for p in self.m.profiles
                        if self.m.trials_of(p) >= trial and not self.driver_reason[p.driver]]
            if not profiles:
                continue
            for s in runnable:
                mine = [p for p in profiles if not _refusal(s, p)]
                if mine:
                    self._trial(s, trial, trials, mine)

    def _trial(self, s: ServerEntry, trial: int, trials: int, profiles: list[Profile]) -> None:
        _check_interrupt()
        self.progress.step(f"{s.label}: trial {trial}/{trials}: starting", _EST_START + self.m.warmup)
        handle: Handle | RunningServer | None = None
        sampler: Sampler | None = None
        windows: list[tuple[Profile, str, DriverResult | None, dict, dict | None, str, list[str]]] = []
        failure = ""
        try:
            handle, failure = self._start(s, trial)
            if handle is not None:
                if trial == 1:
                    self._record_handle(s, handle)
                sampler = self._sampler(s, handle)
                self._warmup(handle, profiles, s.access)
            for p in profiles:
                _check_interrupt()
                if failure:
                    windows.append((p, "", None, {}, None, failure, []))
                    continue
                self.progress.step(f"{s.label}: trial {trial}/{trials}: {p.name} ({p.driver}, {p.duration:g} s)",
                                   p.duration + self.m.quiet_seconds + DRIVERS[p.driver].overhead_s)
                quiet = quiet_check(self.m.quiet_seconds, exclude_pids=[os.getpid()])
                quiet["threshold"] = self.m.max_other_cpu_percent
                quiet["noisy"] = quiet["other_cpu_percent"] > self.m.max_other_cpu_percent
                key = f"{p.name}.{trial}"
                if sampler is not None:
                    sampler.mark(key + ":start")

                def on_hold(answered: int, key: str = key) -> None:
                    if sampler is not None:
                        sampler.mark(key + ":hold")

                started = _now()
                poller = self._poller(s, handle.url, p)
                try:
                    result = drive(p, handle.url, self.pinning["driver_cpus"], on_hold, s.access)
                    reason = ""
                except (KeyboardInterrupt, _Interrupted):
                    raise
                except Exception as exc:  # a driver that errors is a failed cell, never the end of the run
                    result, reason = None, f"driver failed: {type(exc).__name__}: {_first_line(exc)}"
                finally:
                    board = poller.stop() if poller is not None else None
                if sampler is not None:
                    sampler.mark(key + ":end")
                flags: list[str] = ["noisy"] if quiet["noisy"] else []
                if not handle.alive():
                    code = handle.proc.returncode if isinstance(handle, Handle) else "unknown: not ours"
                    failure = f"server exited (status {code}) during {p.name}"
                    reason, flags = reason or failure, flags + ["server_exited"]
                elif not _answers(handle.url, s.access.context_for(handle.url)):
                    failure = f"server stopped answering GET / after {p.name} (hung)"
                    reason, flags = reason or failure, flags + ["server_hung"]
                windows.append((p, key, result, quiet | {"started": started}, board, reason, flags))
                if result is not None and "probes" in result.extra:
                    self.progress.note(_probes_note(result.extra["probes"]))
                if failure:
                    self.progress.note(failure + "; stopping it and going on")
        finally:
            series = None
            if sampler is not None:
                try:
                    series = sampler.stop()
                except Exception as exc:  # the cells still record the driver's figures
                    self.progress.note(f"sampler failed: {exc}")
            if handle is not None:
                if failure:
                    self._keep_log_text(s, trial, handle.log_text())
                handle.stop()
            for p, key, result, quiet, board, reason, flags in windows:
                self.doc.add_cell(_profile_cell(s, p, trial, key, result, series, quiet, board, reason, flags))

    def _start(self, s: ServerEntry, trial: int) -> tuple[Handle | RunningServer | None, str]:
        """The server of one trial: launched (fresh each trial), or the running one a URL names."""
        if s.url:
            return RunningServer(s), ""
        try:
            return start(s.server, s.set, app=s.app or None, cpus=self.pinning["server_cpus"] or None,
                         timeout=self.m.start_timeout, config=s.httpd_conf or None, python=self._python(s)), ""
        except LaunchError as exc:
            self._keep_log_text(s, trial, str(exc))
            return None, f"server did not start: {_first_line(exc)}"

    def _sampler(self, s: ServerEntry, handle: Handle | RunningServer) -> Sampler | None:
        """The sampler on the server's tree; None (the server recorded not sampled) when it has no PID here
        or its processes cannot be read (another user's server)."""
        why = getattr(handle, "why_unsampled", "")
        if not why:
            try:
                return Sampler(handle.pid, generator_pid=os.getpid(), cpus=self.pinning["sampler_cpus"] or None).start()
            except (SamplerError, ValueError, OSError) as exc:
                if not s.url:
                    raise
                why = f"sampler failed: {_first_line(exc)}"
        if self.doc.doc["servers"][s.label].get("sampled", True):
            self.progress.note(f"{s.label}: not sampled here ({why})")
        self.doc.set_server(s.label, {"sampled": False, "unsampled_reason": why})
        return None

    def _poller(self, s: ServerEntry, url: str, p: Profile) -> ScoreboardPoller | None:
        """The scoreboard poller of one profile: our servers' /server-status, a URL server's status_url."""
        if not self.m.scoreboard or (s.url and not s.status_url):
            return None
        poller = ScoreboardPoller(url, interval=max(0.25, p.duration / 240),
                                  max_seconds=p.duration + self.m.profile_grace + 60)
        if s.status_url:
            poller.url = s.status_url + "?auto"
        return poller.start()

    def _record_handle(self, s: ServerEntry, handle: Handle | RunningServer) -> None:
        """What only a running server can tell: its version, the settings it could not apply, its config."""
        found = self._interpreter(s)
        info = {"version": _version(s, found if isinstance(found, Interpreter) else None), "notes": list(handle.notes)}
        if not self.doc.doc["servers"][s.label].get("effective_config"):
            info["effective_config"] = handle.effective_config()
        self.doc.set_server(s.label, info)

    def _warmup(self, handle: Handle | RunningServer, profiles: list[Profile], access: Access) -> None:
        """Discarded closed-loop load, so the first profile does not measure a cold server."""
        if self.m.warmup <= 0:
            return
        conns = next((p.get("connections") for p in profiles if p.driver == "loadgen"), 50)
        try:
            run_closed_loop(handle.url + "/", connections=conns, duration=self.m.warmup, timeout=5.0,
                            cpus=self.pinning["driver_cpus"] or None, any_host=True,
                            ssl_context=access.context_for(handle.url))
        except (OSError, ValueError):
            pass  # a server that fails here fails its first profile, with the reason

    def _suites(self) -> None:
        if not self.m.suites:
            return
        (self.run_dir / "suites").mkdir(exist_ok=True)
        if "conformance" in self.m.suites:  # what each case sends, so the report needs no code to show it
            from suites.conformance.report import catalog

            self.doc.doc["catalog"] = {"conformance": catalog()}
        for s in self.m.servers:
            if s.label not in self.unavailable:
                for suites, workers, name in _suite_groups(self.m):
                    self._suite_group(s, suites, workers, name)

    def _suite_group(self, s: ServerEntry, suites: list[str], workers: int, name: str) -> None:
        """One pytest run of ``suites`` against ``s`` with ``workers``; a cell per suite."""
        _check_interrupt()
        self.progress.step(f"{s.label}: suites {', '.join(suites)}", _suites_estimate(suites, workers))
        xml = self.run_dir / "suites" / f"{name.format(label=s.label)}.xml"
        results = run_suites(s.server, suites, xml_path=xml, sets=s.suite_set, workers=workers,
                             timeout=self.m.suite_timeout, target=_target(s), env=_suite_env(s, self._python(s)),
                             log_path=self.run_dir / "suites" / f"{name.format(label=s.label)}.log")
        for suite, r in results.items():
            self.doc.add_cell({"kind": "suite", "server": s.label, **r.to_dict(),
                               "junit": str(xml.relative_to(self.run_dir))})
            c = r.counts
            self.progress.note(f"{suite}: {r.status} (passed {c.get('passed', 0)}, failed {c.get('failed', 0)}, "
                               f"error {c.get('error', 0)}, skipped {c.get('skipped', 0)})"
                               + (f": {r.reason}" if r.reason else ""))

    def _python(self, s: ServerEntry) -> str | None:
        """The interpreter the entry's ``python`` names, as it reported itself (None: the launcher's default)."""
        found = self.interpreters.get(s.label)
        return found.executable if found else None

    def _interpreter(self, s: ServerEntry) -> Interpreter | str | None:
        """What the entry runs on: its ``python`` as checked, else the launcher's default probed with the
        server's imports (so its version names that interpreter's packages); the bare path when that probe
        fails; None for a URL server and for servers with no Python of ours to name (Apache, uWSGI, mod_wsgi)."""
        if s.url or s.httpd_conf:
            return None
        server = reference(s.server)
        path = python_of(s.server, server)
        if s.label in self.interpreters or path is None:
            return self.interpreters.get(s.label)
        imports = python_imports(s.server, server, s.app or None) if python_refusal(server) is None else ()
        for attempt in dict.fromkeys((imports, ())):  # a package missing here still leaves the version
            try:
                return _probe_cached(path, attempt)
            except LaunchError:
                continue
        return path

    def _python_record(self, s: ServerEntry) -> dict | None:
        """``servers.<label>.python``: the interpreter it runs on, its path and exact version (docs/results.md)."""
        found = self._interpreter(s)
        if found is None:
            return None
        if isinstance(found, str):
            return {"executable": found, "version": None, "implementation": None, "requested": ""}
        return found.to_dict() | {"requested": s.python}

    def _keep_log_text(self, s: ServerEntry, trial: int, text: str) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{s.label}-{trial}.log").write_text(text)


#: set by the signal handler: the exception it raises can be swallowed (a signal that lands in an
#: os.fork at-fork hook is reported as "Exception ignored"), so the runner also checks this between steps
_INTERRUPT = threading.Event()


def _raise_interrupt(signum, frame) -> None:
    _INTERRUPT.set()
    raise _Interrupted()


def _check_interrupt() -> None:
    """Raise the interrupt a swallowed exception lost (see _INTERRUPT)."""
    if _INTERRUPT.is_set():
        raise _Interrupted()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=32)
def _probe_cached(path: str, imports: tuple[str, ...]) -> Interpreter:
    """An interpreter no entry named, probed once per path and imports in this process."""
    return probe_python(path, imports, timeout=30.0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _target(s: ServerEntry) -> dict | None:
    """How the suites reach a URL server (suiterun's ``target``), or None for a launched one."""
    if not s.url:
        return None
    return {"url": s.url, "name": s.label, "cafile": s.cafile, "insecure": s.insecure,
            "allow_attacks": s.allow_attacks}


def _answers(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=_HEALTH_TIMEOUT, context=context) as r:
            r.read()
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def _probes_note(pr: dict) -> str:
    """One line on the new clients an idle profile sent while it held its connections (drivers/idle.py)."""
    text = f"new clients during the hold: {pr['answered']}/{pr['sent']} answered"
    if pr["p50_ms"] is not None:
        text += f", p50 {pr['p50_ms']:g} ms, p99 {pr['p99_ms']:g} ms, max {pr['max_ms']:g} ms"
    return text + (f", {pr['failed']} got no answer" if pr["failed"] else "")


def _refusal(s: ServerEntry, p: Profile) -> str | None:
    """Why profile ``p`` is not run against ``s``: attack-like off loopback without the opt-in, or it
    ``needs`` a feature the server lacks (launcher.lacks: a WSGI route on httpd serving files), else None."""
    why = s.attack_refusal(DRIVERS[p.driver].needs_opt_in(p))
    if why or s.url:
        return why  # a URL server: what it serves is the user's business
    lacking = lacks(s.server)
    missing = [lacking[f] for f in p.get("needs") if f in lacking]
    return f"not applicable to {s.label}: {'; '.join(missing)}" if missing else None


def _suites_estimate(suites: list[str], workers: int) -> float:
    """Seconds one pytest run of ``suites`` with ``workers`` is expected to take (the progress line's guess)."""
    return sum(_EST_SUITE.get(x, 10.0) for x in suites) / max(1, workers / 2) + 3


def _suite_groups(m: Matrix) -> list[tuple[list[str], int, str]]:
    """The pytest runs of a server's suites: (suites, workers, file name pattern). One run, unless the
    matrix gives conformance its own worker count: its raw-socket cases mostly wait on the server (a
    server that never closes costs each case its whole wait), so they take more workers than the
    timing-sensitive slow-client and keep-alive tests should share two cores with."""
    workers = m.conformance_workers or m.suite_workers
    if "conformance" not in m.suites or workers == m.suite_workers:
        return [(list(m.suites), m.suite_workers, "{label}")]
    rest = [x for x in m.suites if x != "conformance"]
    if not rest:
        return [(["conformance"], workers, "{label}")]
    return [(["conformance"], workers, "{label}-conformance"), (rest, m.suite_workers, "{label}")]


def _suite_env(s: ServerEntry, python: str | None = None) -> dict[str, str] | None:
    """What the suites' pytest needs beyond ``--server``: apache-conf's httpd.conf ($MPM_HARNESS_HTTPD_CONF),
    the entry's interpreter ($MPM_HARNESS_PYTHON: the launcher starts the suites' servers on it)."""
    env = {PYTHON_ENV: python} if python else {}
    if s.httpd_conf:
        from servers.external.apache import CONF_ENV

        env[CONF_ENV] = s.httpd_conf
    return env or None


def _unavailable(s: ServerEntry, avail: dict[str, str | None]) -> str | None:
    """Why the entry's server cannot start here (an apache-conf also without its file), or None."""
    if s.url:
        return None  # already running: whether it answers is each profile's health check
    if s.httpd_conf:
        from servers.external.apache import conf_unavailable

        return conf_unavailable(s.httpd_conf)
    return avail.get(s.server, f"unknown server {s.server!r}; known: {', '.join(avail)}")


def _version(s: ServerEntry, python: Interpreter | None = None) -> str | None:
    """What runs under the entry (apache-conf: the httpd binary's version; on the entry's ``python``)."""
    if s.url:
        return None  # a server we did not start: its version is its own business
    if s.httpd_conf:
        from servers.external.apache import version

        return version()
    return server_version(s.server, python)


def _effective_config(s: ServerEntry) -> str:
    from servers.config import MPMS, ConfigError, format_config, load_config

    if s.server not in MPMS:
        return ""  # reference servers: filled in from their handle when started
    try:
        return format_config(load_config(s.server, overrides={"Listen": "127.0.0.1:0", **s.set}))
    except ConfigError as exc:
        return f"# invalid configuration: {exc}"


def _suite_cell(label: str, suite: str, status: str, reason: str) -> dict:
    return {"kind": "suite", "server": label, "suite": suite, "status": status, "reason": reason,
            "counts": {"passed": 0, "failed": 0, "error": 0, "skipped": 0}, "cases": [], "duration": 0.0,
            "junit": ""}


def _skipped_profile(s: ServerEntry, p: Profile, why: str) -> dict:
    return {"kind": "profile", "server": s.label, "profile": p.name, "driver": p.driver, "trial": 1,
            "status": "skipped", "reason": why, "flags": [], "started": _now(), "quiet": {}, "metrics": {},
            "result": None, "sampler": None, "series": None}


def _profile_cell(s: ServerEntry, p: Profile, trial: int, key: str, result: DriverResult | None,
                  series: SamplerSeries | None, quiet: dict, scoreboard: dict | None, reason: str,
                  flags: list[str]) -> dict:
    """One profile cell: the driver's result, the sampler's window, the metrics and the verdict."""
    window = None
    metrics: dict = {}
    if series is not None and key and f"{key}:end" in series.mark_names:
        window = series.window(f"{key}:start", f"{key}:end")
    if result is not None:
        metrics = {
            "rps": round(result.rps, 1),
            "p50_ms": _ms(result.percentile(50)), "p90_ms": _ms(result.percentile(90)),
            "p99_ms": _ms(result.percentile(99)), "p999_ms": _ms(result.percentile(99.9)),
            "driver_cpu_fraction": round(result.driver_cpu_fraction, 3),
            "answered_fraction": (None if result.starved_connections is None or not result.connections
                                  else round(1 - result.starved_connections / result.connections, 3)),
        }
        if result.generator_bound:
            flags.append("generator_bound")
        if result.error_count:
            flags.append("errors")
        if result.non_2xx:
            flags.append("non_2xx")
        if result.starved_connections:
            flags.append("starved")
        if result.late_sends:
            flags.append("late_sends")
    if window is not None:
        metrics.update({
            "cpu_us_per_request": (None if result is None or window.cpu_us_per_request(result.requests) is None
                                   else round(window.cpu_us_per_request(result.requests), 1)),
            "pss_peak_mib": _mib(window.pss_peak), "pss_steady_mib": _mib(window.pss_steady),
            "rss_peak_mib": _mib(window.rss_peak),
            "other_cpu_percent": round(window.other_cpu_fraction * 100, 1),
        })
        if p.driver == "idle" and result is not None and result.requests and f"{key}:hold" in series.mark_names:
            held = series.window(f"{key}:hold", f"{key}:end")
            before = series.sample_at(f"{key}:start").get("pss")
            if held.pss_steady is not None and before is not None:
                metrics["pss_per_idle_conn_kib"] = round((held.pss_steady - before) / result.requests / 1024, 2)
            metrics["cpu_us_per_request"] = None  # an idle profile's CPU is not per request
        metrics.update(_slopes(series, f"{key}:start", f"{key}:end", p.duration, flags))
        if not window.root_alive and "server_exited" not in flags:
            flags.append("server_exited")
    if reason:
        status = "failed"
    elif result is None:
        status, reason = "failed", "no result"
    elif {"generator_bound", "errors", "non_2xx", "starved"} & set(flags) and p.driver != "idle":
        status = "invalid"
    elif p.driver == "idle" and ({"errors", "non_2xx"} & set(flags) or result.requests == 0):
        status = "invalid"
    else:
        status = "ok"
    return {
        "kind": "profile", "server": s.label, "profile": p.name, "driver": p.driver, "trial": trial,
        "status": status, "reason": reason, "flags": sorted(set(flags)), "started": quiet.pop("started", _now()),
        "quiet": quiet, "metrics": metrics, "scoreboard": scoreboard,
        "result": None if result is None else result.to_dict(),
        "sampler": None if window is None else window.to_dict(),
        "series": None if window is None else series.slice(window.start, window.end),
    }


def _slopes(series: SamplerSeries, start: str, end: str, duration: float, flags: list[str]) -> dict:
    """PSS and fd-count slopes over the window (per minute), and growth flags for soak-length windows.

    The slope over the whole window is reported; growth is judged on the
    second half only, because the first minutes of any run warm caches and
    heaps.  The growth the fitted line predicts over that half must exceed
    max(2 MiB, 5 % of the PSS) or 5 fds, AND the level must rise quarter by
    quarter (the medians of the window's 2nd, 3rd and 4th quarters strictly
    increasing): then it is a trend, flagged ``pss_growth`` / ``fd_growth``.
    A fitted growth that is one late jump (an arena or a cache allocated
    once) is flagged ``pss_step`` / ``fd_step`` instead: worth a look, and a
    longer soak tells the two apart.  The cell stays ok either way (a leak
    is a finding, not a bad measurement).  The USS slope is reported beside
    PSS: the tree's private memory, which other processes mapping the same
    files (every Python process shares the interpreter's pages) cannot move.
    """
    pss = series.slope("pss", start, end)
    uss = series.slope("uss", start, end)
    fds = series.slope("fds", start, end)
    out = {"pss_slope_mib_per_min": None if pss is None else round(pss * 60 / 2**20, 3),
           "uss_slope_mib_per_min": None if uss is None else round(uss * 60 / 2**20, 3),
           "fds_slope_per_min": None if fds is None else round(fds * 60, 2)}
    if duration >= SOAK_MIN_SECONDS:
        t0, t1 = series.mark(start).t, series.mark(end).t
        mid = (t0 + t1) / 2
        level = series.window(mid, t1).pss_steady or 0
        limits = {"pss": max(_PSS_GROWTH_MIB * 2**20, _PSS_GROWTH_FRACTION * level), "fds": _FD_GROWTH}
        for metric, name in (("pss", "pss"), ("fds", "fd")):
            late = series.slope(metric, mid, t1)
            if late is not None and late * (t1 - mid) > limits[metric]:
                flags.append(f"{name}_growth" if _rises_by_quarter(series, metric, t0, t1) else f"{name}_step")
    return out


def _rises_by_quarter(series: SamplerSeries, metric: str, t0: float, t1: float) -> bool:
    """Whether the medians of ``metric`` over the 2nd, 3rd and 4th quarters of [t0, t1] strictly increase."""
    q = (t1 - t0) / 4
    medians = [series.median(metric, t0 + k * q, t0 + (k + 1) * q) for k in (1, 2, 3)]
    return None not in medians and medians[0] < medians[1] < medians[2]


def run_matrix(matrix: Matrix, *, results_dir: str | os.PathLike = "results/runs", out: TextIO = sys.stdout,
               argv: list[str] | None = None) -> RunDocument:
    """Run ``matrix`` into a new folder under ``results_dir``; the finished (or interrupted) document."""
    interpreters = check_interpreters(matrix)  # a bad ``python`` is refused before a run folder exists
    run_dir = new_run_dir(results_dir, matrix.name)
    print(f"run folder: {run_dir}", file=out, flush=True)
    return MatrixRunner(matrix, run_dir, out=out, argv=argv, interpreters=interpreters).run()
