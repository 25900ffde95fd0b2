"""One test per conformance case and server: Pass passes, Warn passes with a ConformanceWarning, Fail fails.

A case whose premise is a property of the built-in app (``Case.get_only_root``: ``/``
refuses POST) is skipped as not applicable, verdict ``n/a``, on a server where the
premise does not hold (httpd serves ``/`` as a static file, which accepts POST).
On a server that keeps no connection open at all (every response says
``Connection: close``, RFC 9112 §9.3: gunicorn's sync worker), a close it announced
satisfies an outcome that forbids closing, and a case that needs several responses on
one connection is not applicable; statuses and framing are judged as usual.

Every case records JUnit properties (``--junitxml``): server, kind (``handling`` or
``response-rules``, model.py), verdict, rfc, level, status, closed, smuggled, the
reasons when it is not a Pass, and ``response_rules``: the response rules (rules.py)
any response on its connection broke, judged only where the case declares them, so a
report can say "seen in N cases" per rule. Each case carries its level and family as
markers (markers.py): ``-m "must and not desync"``.
"""

from __future__ import annotations

import warnings

import pytest

from . import markers, rules, runner
from .cases import CASES
from .model import FAIL, PASS, WARN, Case
from .reading import ask


class ConformanceWarning(UserWarning):
    """Lenient acceptance of a MAY/SHOULD rule (or a SHOULD not met): reported, not failed."""


_ECHO: dict[tuple[str, int], bool] = {}


def echo_available(host: str, port: int) -> bool:
    """Whether GET /echo answers the JSON mirror (asked once per server)."""
    key = (host, port)
    if key not in _ECHO:
        try:
            r = ask(host, port, b"GET /echo?conformance-check HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            doc = r.json() if r.status == 200 else None
            ok = bool(doc) and doc.get("target") == "/echo?conformance-check" and "headers" in doc
        except Exception:  # noqa: BLE001 - any failure means "no mirror"
            ok = False
        _ECHO[key] = ok
    return _ECHO[key]


_ROOT: dict[tuple[str, int], int | None] = {}


def root_post_status(host: str, port: int) -> int | None:
    """The status ``POST /`` (empty body) gets: 405 from servers.apps:app, 200 from a static file (asked once)."""
    key = (host, port)
    if key not in _ROOT:
        try:
            status = ask(host, port, b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n", method="POST").status
        except Exception:  # noqa: BLE001 - unknown premise: run the case
            status = None
        _ROOT[key] = status
    return _ROOT[key]


_PERSISTENT: dict[tuple[str, int], bool] = {}


def persistent_connections(host: str, port: int) -> bool:
    """False when the server closes after every response (gunicorn's sync worker, KeepAlive Off):
    a plain HTTP/1.1 ``GET /`` is answered with ``Connection: close`` (asked once)."""
    key = (host, port)
    if key not in _PERSISTENT:
        try:
            ok = not ask(host, port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").announces_close
        except Exception:  # noqa: BLE001 - unknown: judge as persistent (the strict default)
            ok = True
        _PERSISTENT[key] = ok
    return _PERSISTENT[key]


def _healthy(host: str, port: int) -> str | None:
    """None if a fresh connection is still served a 2xx for GET /, else why not."""
    try:
        r = ask(host, port, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return None if 200 <= r.status < 300 else f"health check answered {r.status}"
    except Exception as exc:  # noqa: BLE001
        return f"health check failed: {exc!r}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=markers.marks(c)) for c in CASES])
def test_conformance(server, case: Case, record_property) -> None:
    record_property("server", server.name)
    record_property("kind", case.kind)
    if case.get_only_root:
        status = root_post_status(server.host, server.port)
        if status is not None and status not in (405, 501):
            record_property("verdict", "n/a")
            record_property("rfc", case.rfc)
            pytest.skip(f"not applicable to {server.name}: the case assumes / refuses POST without reading a "
                        f"body, as servers.apps:app does (405); this server answers POST / with {status}")
    persistent = persistent_connections(server.host, server.port)
    if not persistent and min(len(o.statuses) for o in case.expect) > 1:
        record_property("verdict", "n/a")
        record_property("rfc", case.rfc)
        pytest.skip(f"not applicable to {server.name}: the case needs several responses on one connection, and "
                    "this server closes every connection after its first response (Connection: close)")
    echo = echo_available(server.host, server.port)
    probe = runner.PROBE_ECHO if echo else "/"
    obs = runner.run(case, server.host, server.port, probe)
    j = runner.judge(case, obs, echo, persistent)
    why = None if j.verdict == PASS else runner.missing_builtin(case, obs, persistent)
    if why:
        record_property("verdict", "n/a")
        record_property("rfc", case.rfc)
        pytest.skip(f"not applicable to {server.name}: {why}")
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
    if not persistent:
        record_property("persistent_connections", "no")
    if j.reasons:
        record_property("reasons", " | ".join(j.reasons))
    if j.rule_keys:
        record_property("response_rules", rules.encode(j.rule_keys))
    detail = f"{case.id} [{case.rfc} {case.level}] {case.title}: {obs.summary()}; " + "; ".join(j.reasons)
    if j.verdict == FAIL:
        pytest.fail(detail, pytrace=False)
    if j.verdict == WARN:
        warnings.warn(ConformanceWarning(detail), stacklevel=1)
    assert j.verdict in (PASS, WARN)
