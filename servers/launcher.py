"""The one way anything starts a server: ``start(name, overrides) -> Handle``.

A server runs as a child process in its own session (so a process-group
signal can never reach the caller, and ``stop()`` can kill its whole group),
on a loopback port picked by the kernel, with its own run directory holding
the pidfile and the error log. The handle controls it with httpd's signals.

    from servers.launcher import start
    with start("prefork", {"StartServers": 2}) as h:
        h.url            # http://127.0.0.1:PORT
        h.status()       # parsed /server-status?auto
        h.graceful()     # SIGUSR1
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from .mpm import MPM_NAMES
from .mpm.status import parse_auto

READY_PREFIX = "listening on "


class LaunchError(RuntimeError):
    """The server did not start or did not become ready; the message carries its log's tail."""


def _log_tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Handle:
    """A running server started by :func:`start`."""

    name: str
    proc: subprocess.Popen
    run_dir: str
    log_path: str
    pidfile: str
    url: str = ""
    _own_run_dir: bool = True
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        """PID of the parent (control) process."""
        return self.proc.pid

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def host(self) -> str:
        """The listening address (without brackets)."""
        return self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until the server printed its ``listening on`` line and accepts a connection."""
        deadline = time.monotonic() + timeout
        if not self.url:
            sel = selectors.DefaultSelector()
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            buf = b""
            try:
                while b"\n" not in buf:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LaunchError(f"{self.name}: not ready after {timeout:.0f}s\n{_log_tail(self.log_path)}")
                    if not sel.select(min(left, 0.2)):
                        if self.proc.poll() is not None:
                            break
                        continue
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    buf += chunk
            finally:
                sel.close()
            line = buf.decode(errors="replace").strip()
            if not line.startswith(READY_PREFIX):
                code = self.proc.poll()
                raise LaunchError(
                    f"{self.name}: server exited (status {code}) before it was ready\n{_log_tail(self.log_path)}"
                )
            self.url = line[len(READY_PREFIX):]
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise LaunchError(f"{self.name}: port {self.port} never accepted\n{_log_tail(self.log_path)}")
                time.sleep(0.02)

    def pids(self) -> list[int]:
        """The whole process tree: parent first, then every descendant."""
        import psutil

        try:
            parent = psutil.Process(self.pid)
            return [self.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def alive(self) -> bool:
        """True while the parent process runs."""
        return self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc.poll() is not None:
            raise LaunchError(f"{self.name}: server is not running (exit status {self.proc.returncode})")
        os.kill(self.pid, sig)

    def graceful(self) -> None:
        """Graceful restart (SIGUSR1, apachectl -k graceful)."""
        self._signal(signal.SIGUSR1)

    def restart(self) -> None:
        """Hard restart (SIGHUP, apachectl -k restart)."""
        self._signal(signal.SIGHUP)

    def graceful_stop(self) -> None:
        """Graceful stop (SIGWINCH, apachectl -k graceful-stop); use wait() or stop() afterwards."""
        self._signal(signal.SIGWINCH)

    def wait(self, timeout: float) -> int | None:
        """Wait for the parent to exit; its status, or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop (SIGTERM), then SIGKILL the whole process group after ``timeout``; never leaves orphans."""
        if self._stopped:
            return self.proc.returncode
        tree = self.pids()
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        code = self.wait(timeout)
        # anything left of this server's session goes, the group first, then stragglers by PID
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in tree[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if code is None:
            code = self.wait(5.0)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stopped = True
        if self._own_run_dir and os.environ.get("MPM_KEEP_RUN_DIR") != "1":
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return code

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET ``path`` from the server; (status, body)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self, timeout: float = 5.0):
        """The parsed ``/server-status?auto`` (servers.mpm.status.StatusReport)."""
        code, body = self.get("/server-status?auto", timeout)
        if code != 200:
            raise LaunchError(f"{self.name}: /server-status?auto answered {code}")
        return parse_auto(body.decode("latin-1"))

    def log_text(self) -> str:
        """The server's error log so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _set_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def available() -> dict[str, str | None]:
    """Every launchable name and why it is unavailable (None when it can start here)."""
    return {name: None for name in MPM_NAMES}


def start(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    app: str | None = None,
    config: str | os.PathLike | None = None,
    cpus: Iterable[int] | None = None,
    run_dir: str | None = None,
    wait: bool = True,
    timeout: float = 20.0,
    env: Mapping[str, str] | None = None,
) -> Handle:
    """Start server ``name`` with directive ``overrides``; by default wait until it is ready.

    ``cpus`` pins the whole server tree (set before exec, inherited by every
    child). Listen defaults to 127.0.0.1 with a kernel-chosen port.
    """
    if name not in MPM_NAMES:
        raise LaunchError(f"unknown server {name!r}; available: {', '.join(available())}")
    own = run_dir is None
    run_dir = run_dir or tempfile.mkdtemp(prefix=f"mpm-{name}-")
    log_path = os.path.join(run_dir, "error.log")
    pidfile = os.path.join(run_dir, "httpd.pid")
    overrides = dict(overrides or {})
    overrides.setdefault("Listen", "127.0.0.1:0")
    overrides.setdefault("PidFile", pidfile)
    pidfile = str(overrides["PidFile"])
    argv = [sys.executable, "-m", "servers", name]
    if config is not None:
        argv += ["--config", os.fspath(config)]
    if app:
        argv += ["--app", app]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={_set_value(value)}"]
    cpu_set = set(cpus) if cpus is not None else None

    def preexec() -> None:
        if cpu_set:
            os.sched_setaffinity(0, cpu_set)

    child_env = dict(os.environ)
    child_env.update(env or {})
    # the project root on the path, so `python -m servers` works from any cwd
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child_env["PYTHONPATH"] = root + os.pathsep + child_env.get("PYTHONPATH", "")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True, preexec_fn=preexec if cpu_set else None, env=child_env,
        )
    handle = Handle(name=name, proc=proc, run_dir=run_dir, log_path=log_path, pidfile=pidfile, _own_run_dir=own)
    if wait:
        try:
            handle.wait_ready(timeout)
        except BaseException:
            handle.stop(5.0)
            raise
    return handle
