"""Run the pytest suites against one server and read their verdicts from JUnit XML.

The harness never imports the suites: it runs ``python -m pytest <suite
paths> --server NAME [--server-set K=V ...] --junitxml FILE`` as a
subprocess in its own session (so a hung suite can be killed as a group
without touching the harness) with a deadline, then parses the XML.  Each
test case keeps the figures the suite recorded with ``record_property``
(slow-client availability, thread-safety corruption counts, conformance
verdicts), which the report tabulates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .matrix import SUITES

__all__ = ["SuiteResult", "run_suites", "parse_junit", "suite_of"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SuiteResult:
    """One suite's verdicts on one server."""

    suite: str
    status: str  # "ok" (every test passed or skipped), "failed" (a test failed), "error" (the run itself failed)
    counts: dict[str, int] = field(default_factory=dict)  # passed, failed, error, skipped
    cases: list[dict] = field(default_factory=list)  # {name, outcome, message, properties}
    duration: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"suite": self.suite, "status": self.status, "counts": self.counts, "cases": self.cases,
                "duration": self.duration, "reason": self.reason}


def suite_of(classname: str, file: str = "") -> str | None:
    """The suite a JUnit test case belongs to, from its class name (``suites.test_keepalive``) or file."""
    path = (file or classname.replace(".", "/")).replace("\\", "/")
    for name, suite_path in SUITES.items():
        stem = suite_path.removesuffix(".py")
        if path == stem or path.startswith(stem + "/") or path.startswith(stem + ".") or path == suite_path:
            return name
    return None


def _outcome(tc: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        el = tc.find(tag)
        if el is not None:
            return outcome, (el.get("message") or el.text or "")[:500]
    return "passed", ""


def parse_junit(path: str | os.PathLike, suites: list[str] | tuple[str, ...]) -> dict[str, SuiteResult]:
    """Verdicts per suite from a pytest JUnit XML file (every suite in ``suites`` gets an entry)."""
    out = {s: SuiteResult(suite=s, status="ok", counts={"passed": 0, "failed": 0, "error": 0, "skipped": 0})
           for s in suites}
    root = ET.parse(path).getroot()
    for tc in root.iter("testcase"):
        suite = suite_of(tc.get("classname", ""), tc.get("file", ""))
        if suite not in out:
            continue
        outcome, message = _outcome(tc)
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        res = out[suite]
        res.counts[outcome] += 1
        res.duration += float(tc.get("time") or 0.0)
        res.cases.append({"name": tc.get("name", ""), "outcome": outcome, "message": message,
                          "properties": props})
    for res in out.values():
        if res.counts["failed"] or res.counts["error"]:
            res.status = "failed"
        elif sum(res.counts.values()) == 0:
            res.status, res.reason = "error", "no test ran"
    return out


def run_suites(
    server: str,
    suites: list[str] | tuple[str, ...],
    *,
    xml_path: str | os.PathLike,
    sets: Mapping[str, Any] | None = None,
    workers: int = 2,
    timeout: float = 600.0,
    log_path: str | os.PathLike | None = None,
    target: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, SuiteResult]:
    """Run ``suites`` against launcher server ``server``, or against the running server ``target``
    describes (``url``, ``name``, ``cafile``, ``insecure``, ``allow_attacks``: the plugin's
    ``--target``, ``--target-name``, ``--cafile``, ``--insecure``, ``--allow-attacks``; docs/suites-in-ci.md);
    verdicts per suite.  Against a non-loopback target the plugin skips the attack-like tests, with
    the reason, unless ``allow_attacks``.  ``env`` is added to pytest's environment (apache-conf's
    ``MPM_HARNESS_HTTPD_CONF``).

    A run that exceeds ``timeout`` is killed (its whole session) and every
    suite is recorded as ``error`` with the reason; so is a pytest that
    could not start or wrote no XML.  Test failures are verdicts, not errors.
    """
    paths = [SUITES[s] for s in suites]
    argv = [sys.executable, "-m", "pytest", *paths, *_target_args(server, target),
            f"--junitxml={os.fspath(xml_path)}", "-q", "-n", str(workers), "-p", "no:cacheprovider",
            "-o", "junit_family=xunit1"]
    for key, value in (sets or {}).items():
        argv += ["--server-set", f"{key}={_yaml_scalar(value)}"]
    started = time.monotonic()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **env} if env else None)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            return _all_error(suites, f"the suites did not finish within {timeout:.0f} s (killed)",
                              time.monotonic() - started)
        except BaseException:
            _kill_session(proc)
            raise
    finally:
        if log_path:
            log.close()
    elapsed = time.monotonic() - started
    if not os.path.exists(xml_path):
        return _all_error(suites, f"pytest exited with status {code} and wrote no results", elapsed)
    try:
        results = parse_junit(xml_path, suites)
    except ET.ParseError as exc:
        return _all_error(suites, f"unreadable JUnit XML: {exc}", elapsed)
    if code not in (0, 1):  # 1 = some tests failed; anything else is pytest itself failing
        for r in results.values():
            if r.status == "ok":
                r.status, r.reason = "error", f"pytest exited with status {code}"
    return results


def _target_args(server: str, target: Mapping[str, Any] | None) -> list[str]:
    """The plugin's options that choose the server: ``--server NAME``, or ``--target URL`` and its TLS
    and attack options."""
    if not target:
        return ["--server", server]
    args = ["--target", target["url"]]
    if target.get("name"):
        args += ["--target-name", target["name"]]
    if target.get("cafile"):
        args += ["--cafile", target["cafile"]]
    args += ["--insecure"] * bool(target.get("insecure")) + ["--allow-attacks"] * bool(target.get("allow_attacks"))
    return args


def _yaml_scalar(value: Any) -> str:
    import yaml

    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _all_error(suites, reason: str, elapsed: float) -> dict[str, SuiteResult]:
    return {s: SuiteResult(suite=s, status="error", reason=reason, duration=elapsed,
                           counts={"passed": 0, "failed": 0, "error": 0, "skipped": 0}) for s in suites}


def _kill_session(proc: subprocess.Popen) -> None:
    """Stop a suite run and everything it started, by PID.

    The servers a suite launched live in sessions of their own, so killing
    pytest's process group would orphan them.  The tree is listed first;
    SIGINT lets pytest run its fixture teardown (which stops the servers);
    whatever is left after a grace period is killed by PID.
    """
    import psutil

    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    _send(os.killpg, proc.pid, signal.SIGINT)
    _reap(proc, 15)
    for p in [*tree, proc]:
        _send(os.kill, p.pid, signal.SIGKILL)
    _send(os.killpg, proc.pid, signal.SIGKILL)
    _reap(proc, 10)


def _send(kill, pid: int, sig: int) -> None:
    try:
        kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(proc: subprocess.Popen, timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
