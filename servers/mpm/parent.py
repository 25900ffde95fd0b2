"""The parent ("control process") shared by every MPM.

What httpd's ``mpm_common`` and each MPM's ``*_run`` / ``server_main_loop``
do, once for all three MPMs here:

* bind the listeners and create the scoreboard and the pipe of death
  **before** forking (children inherit them), fork StartServers children;
* tick every MaintenanceInterval (httpd: 1 s): reap exited children, and on a
  tick where none exited run idle-server maintenance: above the max spare,
  ask one idle child to exit through the pipe of death; below the min spare,
  fork 1, 2, 4 ... 32 children per tick while the shortage lasts (logging
  "server seems busy" once the rate reaches 8), and log the "server reached
  MaxRequestWorkers setting" line once per server lifetime;
* generations: every restart bumps the running generation; old children
  finish their connections and exit, and are replaced 1:1;
* signals: TERM (and INT) stop, USR1 graceful restart, HUP hard restart,
  WINCH graceful stop; children are reclaimed with httpd's schedule
  (SIGTERM again at 3, 5 and 7 s, SIGKILL at 9 s);
* pidfile; a child killed by a signal is logged and replaced at once (httpd
  does this for worker/event's first two consecutive signal deaths; here
  every MPM does it).

What differs per MPM comes from its :class:`~servers.mpm.spec.MPMSpec` (sizing, counting,
log codes) and its module's ``child_main``.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import os
import select
import signal
import socket
import stat
import sys
import time
import traceback
from typing import Callable, TextIO

from .accesslog import AccessLog
from .child import EXIT_CHILD_FATAL, FORK_BLOCKED, ChildEnv, prebuilt_serve_context, warm_serving_path
from .listeners import stop_deferring
from .log import ErrorLog
from .scoreboard import DEAD, GRACEFUL, READY, STARTING, Scoreboard
from .serve import ServeContext
from .spec import MPMSpec

#: httpd's hard spawn-rate ceiling (MAX_SPAWN_RATE)
MAX_SPAWN_RATE = 32
_SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT", signal.SIGHUP: "SIGHUP",
                 signal.SIGUSR1: "SIGUSR1", signal.SIGWINCH: "SIGWINCH"}


class StartupError(Exception):
    """The server cannot start (address in use, stale pidfile...); the message says why."""


#: httpd's listen.c sets TCP_DEFER_ACCEPT to 30 s for any AcceptFilter but "none" (Linux)
DEFER_ACCEPT_SECONDS = 30


def bind_listeners(listen: tuple[tuple[str, int], ...], backlog: int,
                   defer_accept: bool = False) -> list[socket.socket]:
    """Bind every Listen address before forking, as httpd's ap_setup_listeners does.

    ``defer_accept`` is httpd's ``AcceptFilter http data`` on Linux: TCP_DEFER_ACCEPT,
    so a connection reaches accept() only once it has sent data (or after about 30 s),
    and a client that connects and stays silent holds no process or thread meanwhile.
    Where the option does not exist it is skipped, as httpd ignores ENOTIMPL.
    """
    socks = []
    try:
        for host, port in listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                s.close()
                where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
                raise StartupError(
                    f"(98)Address already in use: AH00072: make_sock: could not bind to address {where}"
                    if exc.errno == errno.EADDRINUSE else f"could not bind to address {where}: {exc}"
                ) from None
            if defer_accept and hasattr(socket, "TCP_DEFER_ACCEPT"):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS)
            s.listen(backlog)
            s.setblocking(False)  # children accept after epoll; losing a race must not block
            socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _transfer_log_error(exc: OSError) -> str:
    """httpd's words for a CustomLog it cannot open (mod_log_config's AH00649)."""
    return f"({exc.errno}){exc.strerror}: AH00649: could not open transfer log file {exc.filename}."


def listener_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound listener."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Parent:
    """The control process of one server: run() until stopped, return the exit status."""

    def __init__(
        self,
        mpm: MPMSpec,
        cfg,
        app,
        *,
        reload_config: Callable[[], object] | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.mpm = mpm
        self.cfg = cfg
        self.app = app
        self.reload_config = reload_config
        self.out = out or sys.stdout
        try:
            self.log = ErrorLog(cfg.ErrorLog, cfg.LogLevel, f"mpm_{mpm.name}")
        except OSError as exc:
            raise StartupError(f"({exc.errno}){exc.strerror}: AH00091: could not open error log file "
                               f"{cfg.ErrorLog}.") from None
        try:
            self.access_log = AccessLog.open(cfg.CustomLog, self.log, cfg.ServerName)
        except OSError as exc:
            raise StartupError(_transfer_log_error(exc)) from None
        self.generation = 0
        self.children: dict[int, int] = {}  # pid -> slot
        self.slot_generation: dict[int, int] = {}
        self.idle_spawn_rate = 1
        self.maxclients_reported = False  # once per server lifetime, surviving restarts
        self.near_maxclients_reported = False  # worker/event's AH00287/AH10159, its own flag
        self.remaining_to_start = 0  # 1:1 replacement after a graceful restart
        self.hold_off = 0
        self.signal_deaths = 0
        self.pending: list[int] = []
        self.listeners: list[socket.socket] = []
        self.shutting_down = False
        self.started = time.time()
        #: (generation, its prebuilt ServeContext) for single-unit children; see _serve_template
        self._template: tuple[int, ServeContext | None] | None = None

    # -- set-up --------------------------------------------------------------------
    def _limits(self) -> tuple[int, int]:
        return self.mpm.process_limit(self.cfg), self.mpm.threads_per_child(self.cfg)

    def _write_pidfile(self) -> None:
        path = self.cfg.PidFile
        if not path:
            return
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise StartupError(f"({exc.errno}){exc.strerror}: AH00099: could not create {path}") from None
        if st is not None:
            if not stat.S_ISREG(st.st_mode):
                # a FIFO would block the start for ever, a device read without end, and the
                # rename below would replace the node: refuse, naming it
                raise StartupError(f"AH00099: could not create {path}: it exists and is not a regular file")
            old = 0
            try:
                with open(path, "rb") as f:
                    old = int(f.read(32).strip() or 0)  # a pid is short; never read more
                if old and old != os.getpid():
                    os.kill(old, 0)
                    raise StartupError(f"httpd (pid {old}) already running (PidFile {path})")
            except (OSError, ValueError) as exc:
                if isinstance(exc, PermissionError) and old:
                    raise StartupError(f"httpd (pid {old}) already running (PidFile {path})") from None
                # unreadable, garbage or a dead pid: a stale file, overwritten below
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(f"{os.getpid()}\n")
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)  # a full disk must not leave the half-written file behind
            except OSError:
                pass
            raise StartupError(f"({exc.errno}){exc.strerror}: AH00099: could not create {path}") from None

    def _remove_pidfile(self) -> None:
        if self.cfg.PidFile:
            try:
                os.unlink(self.cfg.PidFile)
            except OSError:
                pass

    def _on_signal(self, signum, frame) -> None:
        # Only record it: the main loop acts (the set_wakeup_fd byte wakes its wait).
        if signum != signal.SIGCHLD and signum not in self.pending:
            self.pending.append(signum)

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGWINCH,
                    signal.SIGCHLD):
            signal.signal(sig, self._on_signal)

    # -- main ----------------------------------------------------------------------
    def run(self) -> int:
        """Start the server and run its control loop; returns the process exit status."""
        cfg = self.cfg
        try:
            self.listeners = bind_listeners(cfg.Listen, cfg.ListenBacklog, cfg.AcceptFilter.defers("http"))
            self._write_pidfile()
        except StartupError as exc:
            self.log.log("emerg", str(exc))
            print(f"error: {exc}", file=sys.stderr)
            return 1
        self.port = self.listeners[0].getsockname()[1]
        limit, threads = self._limits()
        self.sb = Scoreboard(cfg.ServerLimit, self.mpm.scoreboard_threads(cfg))
        self.pod_r, self.pod_w = os.pipe2(os.O_NONBLOCK)
        self._install_signals()
        self.generation = 0
        self.sb.running_generation = 0
        self.sb.restart_time = time.time()
        # The child loop, looked up once here: looking it up in each child (importlib, although the
        # module is loaded) runs the import machinery there and un-shares the pages it touches,
        # ~60 KiB per child (docs/performance.md, "Where a prefork child's memory goes").
        self.child_main = self.mpm.load_child()
        for _ in range(min(cfg.StartServers, limit)):
            self._make_child(self._free_slots(1)[0])
        self.log.log("notice", f"{self.mpm.name} MPM configured -- resuming normal operations", "AH00163")
        print(f"listening on {listener_url(self.listeners[0])}", file=self.out, flush=True)
        try:
            return self._loop()
        finally:
            self._remove_pidfile()

    def _loop(self) -> int:
        interval = self.cfg.MaintenanceInterval
        next_tick = time.monotonic() + interval
        while True:
            while self.pending:
                sig = self.pending.pop(0)
                result = self._handle_signal(sig)
                if result is not None:
                    return result
                interval = self.cfg.MaintenanceInterval
            reaped = self._reap()
            now = time.monotonic()
            if reaped:
                continue  # httpd: no maintenance on a tick where a child was reaped
            if now < next_tick:
                self._wait(next_tick - now)
                continue
            next_tick = now + interval
            self.signal_deaths = 0
            if self.remaining_to_start > 0:
                # a whole tick without exits after a graceful restart: start the rest now
                for slot in self._free_slots(self.remaining_to_start):
                    self._make_child(slot)
                self.remaining_to_start = 0
            self._maintain()

    def _wait(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._wake_r], [], [], max(0.0, timeout))
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass

    # -- children ------------------------------------------------------------------
    def _free_slots(self, n: int) -> list[int]:
        limit = self._scan_limit()
        used = set(self.children.values())
        return [s for s in range(limit) if s not in used][:n]

    def _scan_limit(self) -> int:
        return self.mpm.slot_scan_limit(self.cfg)

    def _make_child(self, slot: int) -> int | None:
        sb = self.sb
        _, threads = self._limits()
        for t in range(threads):
            sb.set_status(slot, t, STARTING)
        sb.set_process(slot, pid=0, generation=self.generation, quiescing=False, not_accepting=False)
        self._serve_template()
        # Objects that exist now are never scanned by the child's collector, so it
        # does not dirty (and un-share) their copy-on-write pages.
        gc.freeze()
        # the child must not take a signal before its own handlers are set (child.FORK_BLOCKED)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            self.log.log("alert", f"fork: Unable to fork new process: {exc}", "AH00159")
            for t in range(threads):
                sb.set_status(slot, t, DEAD)
            return None
        if pid == 0:
            self._run_child(slot)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        sb.set_process(slot, pid=pid, generation=self.generation)
        self.children[pid] = slot
        self.slot_generation[slot] = self.generation
        return pid

    def _run_child(self, slot: int) -> None:
        """In the forked child: never returns."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            os.close(self.pod_w)
            self.log.module = f"mpm_{self.mpm.name}"
            code = self.child_main(self._child_env(slot))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            try:
                self.log.log("crit", "child failed: " + traceback.format_exc().replace("\n", " | "))
            except BaseException:
                pass
            code = 1
        finally:
            try:
                sys.stdout.flush()
            except BaseException:
                pass
            os._exit(code)

    def _child_env(self, slot: int) -> ChildEnv:
        """What a child forked now for ``slot`` inherits (httpd's child_main arguments)."""
        template = self._template[1] if self._template and self._template[0] == self.generation else None
        return ChildEnv(
            cfg=self.cfg, mpm=self.mpm.name, slot=slot, generation=self.generation,
            listeners=self.listeners, pod_fd=self.pod_r, scoreboard=self.sb, app=self.app,
            log=self.log, started=self.started, server_port=self.port, access_log=self.access_log,
            serve_template=template,
        )

    def _serve_template(self) -> None:
        """Build a single-unit child's ServeContext here, once per generation (a restart may
        bring a new configuration and access log), and warm the serving path with it, so the
        children share both copy-on-write instead of each building its own
        (child.prebuilt_serve_context, child.warm_serving_path: ~0.2-0.3 MiB per prefork child
        each). Threaded children build one per thread, as before."""
        if self.mpm.threaded or (self._template and self._template[0] == self.generation):
            return
        self._template = (self.generation, None)
        try:
            template = prebuilt_serve_context(self._child_env(0))
        except Exception:
            # each child builds its own then, failing (and logging why) as it did before
            return
        self._template = (self.generation, template)
        try:
            warm_serving_path(template)
        except Exception as exc:  # an optimisation only: the children warm up themselves then
            self.log.log("debug", f"warm-up of the serving path skipped: {exc!r}")

    def _reap(self) -> int:
        """Collect every exited child; replace as httpd does. Returns how many were reaped."""
        n = 0
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return n
            if pid == 0:
                return n
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            n += 1
            gen = self.slot_generation.pop(slot, self.generation)
            self.sb.clear_process(slot)
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                try:
                    name = signal.Signals(sig).name
                except ValueError:
                    name = str(sig)
                if not self.shutting_down and sig not in (signal.SIGTERM, signal.SIGHUP):
                    self.log.log("notice", f"child pid {pid} exit signal {name} ({sig})", "AH00052")
                    self.signal_deaths += 1
                    if self.signal_deaths <= 2 and gen == self.generation:
                        self._make_child(slot)  # replace at once, as worker/event do
                    elif self.signal_deaths == 3:
                        self.log.log("warn", "children are killed successively!", "AH10393")
                continue
            code = os.WEXITSTATUS(status)
            if code == EXIT_CHILD_FATAL and gen == self.generation and not self.shutting_down:
                self.log.log("alert", "Child exited with fatal error; shutting down", "AH00060")
                self.pending.insert(0, signal.SIGTERM)
            if self.remaining_to_start > 0 and not self.shutting_down:
                # 1:1 replacement of an old child after a graceful restart
                free = self._free_slots(1)
                if free:
                    self._make_child(free[0])
                    self.remaining_to_start -= 1

    def _count(self) -> tuple[int, int, int]:
        """(idle units, busy units, live processes) of the current generation.

        Idle = worker slots in ``S`` or ``_`` of processes of the running generation
        that are neither quiescing nor ``not_accepting`` (``S`` counts as idle on
        purpose, as in httpd, so a slow-starting child does not trigger more forks).
        A child that has taken its listeners out of its poll set (event at its
        connection cap) cannot take a new connection, so its idle threads are no
        spare capacity: httpd's perform_idle_server_maintenance skips them too, and
        forks a child that can accept. Its threads still count as busy or idle for
        nothing else, and the process still counts against the process limit.
        """
        sb = self.sb
        _, threads = self._limits()
        idle = busy = procs = 0
        for pid, slot in self.children.items():
            if self.slot_generation.get(slot) != self.generation:
                continue
            info = sb.process(slot)
            if info.quiescing:
                continue
            procs += 1
            accepting = not info.not_accepting
            for t in range(threads):
                st = sb.status(slot, t)
                if st in (STARTING, READY):
                    idle += accepting
                elif st not in (DEAD, GRACEFUL):
                    busy += 1
        return idle, busy, procs

    def _maintain(self) -> None:
        """httpd's perform_idle_server_maintenance (docs/mpm-model.md §5)."""
        cfg = self.cfg
        limit, threads = self._limits()
        min_spare, max_spare = self.mpm.spare_limits(cfg)
        idle, busy, procs = self._count()
        if idle > max_spare:
            # one child per tick: the first idle reader of the pipe of death exits
            try:
                os.write(self.pod_w, b"!")
            except BlockingIOError:
                pass
            self.idle_spawn_rate = 1
            return
        if idle >= min_spare:
            self.idle_spawn_rate = 1
            return
        live_current = procs
        at_limit = self.mpm.at_capacity(cfg, busy, live_current)
        free = [s for s in self._free_slots(self.idle_spawn_rate)]
        room = max(0, limit - live_current)
        if at_limit or not free or room == 0:
            if self.mpm.threaded and not at_limit and room > 0:
                # below the process limit but no free slot: old generations still draining
                self.log.log("error", "scoreboard is full, not at MaxRequestWorkers", "AH00288")
            elif idle == 0 or not self.mpm.threaded:
                if not self.maxclients_reported:
                    self.log.log("error", "server reached MaxRequestWorkers setting, consider raising the "
                                 "MaxRequestWorkers setting", self.mpm.maxclients_code)
                    self.maxclients_reported = True
            elif not self.near_maxclients_reported:
                self.log.log("error", "server is within MinSpareThreads of MaxRequestWorkers, consider raising "
                             "the MaxRequestWorkers setting",
                             self.mpm.near_maxclients_code)
                self.near_maxclients_reported = True
            self.idle_spawn_rate = 1
            return
        spawn = free[: min(room, self.idle_spawn_rate)]
        if self.idle_spawn_rate >= 8:
            self.log.log("info", self.mpm.busy_message(len(spawn), idle, live_current), self.mpm.busy_code)
        for slot in spawn:
            self._make_child(slot)
        if self.hold_off > 0:
            self.hold_off -= 1
        elif self.idle_spawn_rate < MAX_SPAWN_RATE:
            self.idle_spawn_rate *= 2

    # -- signals -------------------------------------------------------------------
    def _handle_signal(self, sig: int) -> int | None:
        name = _SIGNAL_NAMES.get(sig, str(sig))
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.log.log("notice", f"caught {name}, shutting down", "AH00169")
            self._stop_children(signal.SIGTERM)
            return 0
        if sig == signal.SIGHUP:
            self.log.log("notice", "SIGHUP received.  Attempting to restart", "AH00171")
            self._stop_children(signal.SIGHUP)
            self.shutting_down = False
            self._reload()
            self.sb.reset_counters()
            self.sb.restart_time = time.time()
            self._new_generation()
            limit, _ = self._limits()
            for slot in self._free_slots(min(self.cfg.StartServers, limit)):
                self._make_child(slot)
            return None
        if sig == signal.SIGUSR1:
            self.log.log("notice", "Graceful restart requested, doing restart", "AH00171")
            self._reload()
            self._new_generation()
            self._graceful_children()
            self.remaining_to_start = self.cfg.StartServers
            self.hold_off = 10
            return None
        if sig == signal.SIGWINCH:
            return self._graceful_stop()
        return None

    def _reload(self) -> None:
        if self.reload_config is None:
            return
        try:
            cfg = self.reload_config()
        except Exception as exc:  # keep serving with the old configuration
            self.log.log("error", f"configuration reload failed, keeping the old one: {exc}")
            return
        old = self.cfg
        # httpd ignores ServerLimit / ThreadLimit changes on restart (they size the
        # scoreboard) and keeps its listeners; so do we, saying so in the log.
        fixed = {k: getattr(old, k) for k in ("ServerLimit", "ThreadLimit", "Listen")
                 if getattr(cfg, k) != getattr(old, k)}
        if fixed:
            self.log.log("warn", "changes to " + ", ".join(sorted(fixed)) + " are ignored on restart")
            cfg = dataclasses.replace(cfg, **fixed)
            if cfg.MaxRequestWorkers > cfg.ServerLimit * cfg.ThreadsPerChild:
                cfg = dataclasses.replace(cfg, MaxRequestWorkers=cfg.ServerLimit * cfg.ThreadsPerChild)
        self.cfg = cfg
        self.log.reopen()
        self._reopen_access_log()

    def _reopen_access_log(self) -> None:
        """Open the CustomLogs again, by name, for the next generation (a log renamed away gets a new
        file); old children keep writing to the files they hold until they exit. A file that cannot
        be opened keeps the old logs (httpd would stop)."""
        try:
            fresh = AccessLog.open(self.cfg.CustomLog, self.log, self.cfg.ServerName)
        except OSError as exc:
            self.log.log("error", _transfer_log_error(exc) + " Keeping the logs open before the restart.")
            return
        if self.access_log is not None:
            self.access_log.close()
        self.access_log = fresh

    def _new_generation(self) -> None:
        self.generation += 1
        self.sb.running_generation = self.generation
        self.idle_spawn_rate = 1

    def _graceful_children(self) -> None:
        """Tell every child to finish its connections and exit (prefork: slot ``G`` + SIGUSR1)."""
        _, threads = self._limits()
        for pid, slot in list(self.children.items()):
            # prefork only ("mostly for debugging" in prefork.c); worker/event threads
            # write G themselves as they exit, so busy ones keep showing W/K meanwhile
            if not self.mpm.threaded:
                for t in range(threads):
                    if self.sb.status(slot, t) != DEAD:
                        self.sb.set_status(slot, t, GRACEFUL)
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def _graceful_stop(self) -> int:
        """WINCH: stop listening, let busy children finish, exit (httpd's graceful-stop)."""
        self.log.log("notice", "caught SIGWINCH, shutting down gracefully", "AH00170")
        self.shutting_down = True
        self.sb.stopping = True  # children take what waits in the listen queue before closing
        for s in self.listeners:
            stop_deferring(s)
            s.close()
        self._remove_pidfile()
        self._graceful_children()
        timeout = self.cfg.GracefulShutdownTimeout
        deadline = time.monotonic() + timeout if timeout else None
        while self.children:
            if signal.SIGTERM in self.pending or signal.SIGINT in self.pending:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._reap()
            if self.children:
                self._wait(0.05)
        self._stop_children(signal.SIGTERM)
        return 0

    def _stop_children(self, sig: int) -> None:
        """Signal every child and reclaim it with httpd's escalation (ap_reclaim_child_processes)."""
        self.shutting_down = True
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        start = time.monotonic()
        wait = 0.016
        escalations = {3.0: signal.SIGTERM, 5.0: signal.SIGTERM, 7.0: signal.SIGTERM, 9.0: signal.SIGKILL}
        while self.children:
            self._reap()
            if not self.children:
                break
            elapsed = time.monotonic() - start
            for at in sorted(escalations):
                if elapsed >= at:
                    s = escalations.pop(at)
                    for pid in list(self.children):
                        word = "SIGKILL" if s == signal.SIGKILL else "SIGTERM"
                        self.log.log("warn", f"child process {pid} still did not exit, sending a {word}", "AH00274")
                        try:
                            os.kill(pid, s)
                        except ProcessLookupError:
                            pass
            if elapsed >= 10.0:
                self.log.log("error", "could not make child processes exit; giving up", "AH00276")
                break
            time.sleep(wait)
            wait = min(wait * 2, 1.0)
