"""One test per conformance case and server: Pass passes, Warn passes with a ConformanceWarning, Fail fails.

Every case records JUnit properties (``--junitxml``): verdict, rfc, level,
status, closed, smuggled, and the reasons when it is not a Pass.
"""

from __future__ import annotations

import warnings

import pytest

from . import runner
from .cases import CASES
from .model import FAIL, PASS, WARN, Case


class ConformanceWarning(UserWarning):
    """Lenient acceptance of a MAY/SHOULD rule (or a SHOULD not met): reported, not failed."""


_ECHO: dict[tuple[str, int], bool] = {}


def echo_available(host: str, port: int) -> bool:
    """Whether GET /echo answers the JSON mirror (asked once per server)."""
    key = (host, port)
    if key not in _ECHO:
        ok = False
        wire = None
        try:
            wire = runner.Wire(host, port, 3.0)
            wire.send(b"GET /echo?conformance-check HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            r = wire.read_response("GET", "1.1", 3.0)
            doc = r.json() if r.status == 200 else None
            ok = bool(doc) and doc.get("target") == "/echo?conformance-check" and "headers" in doc
        except Exception:  # noqa: BLE001 - any failure means "no mirror"
            ok = False
        finally:
            if wire is not None:
                wire.close()
        _ECHO[key] = ok
    return _ECHO[key]


def _healthy(host: str, port: int) -> str | None:
    """None if a fresh connection is still served a 2xx for GET /, else why not."""
    wire = None
    try:
        wire = runner.Wire(host, port, 3.0)
        wire.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r = wire.read_response("GET", "1.1", 3.0)
        return None if 200 <= r.status < 300 else f"health check answered {r.status}"
    except Exception as exc:  # noqa: BLE001
        return f"health check failed: {exc!r}"
    finally:
        if wire is not None:
            wire.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(server, case: Case, record_property) -> None:
    echo = echo_available(server.host, server.port)
    probe = runner.PROBE_ECHO if echo else "/"
    obs = runner.run(case, server.host, server.port, probe)
    j = runner.judge(case, obs, echo)
    if case.health:
        why = _healthy(server.host, server.port)
        if why:
            j.verdict = FAIL
            j.reasons.append(why + " (the server must keep serving others)")
    record_property("verdict", j.verdict)
    record_property("rfc", case.rfc)
    record_property("level", case.level)
    record_property("row", case.row)
    record_property("status", ",".join(map(str, obs.statuses)) or "-")
    record_property("closed", "pending" if obs.pending else str(obs.closed).lower())
    record_property("smuggled", str(bool(obs.extra)).lower())
    if j.reasons:
        record_property("reasons", " | ".join(j.reasons))
    detail = f"{case.id} [{case.rfc} {case.level}] {case.title}: {obs.summary()}; " + "; ".join(j.reasons)
    if j.verdict == FAIL:
        pytest.fail(detail, pytrace=False)
    if j.verdict == WARN:
        warnings.warn(ConformanceWarning(detail), stacklevel=1)
    assert j.verdict in (PASS, WARN)
