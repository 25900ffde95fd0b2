"""Run one case over one connection and judge it.

Every response is parsed by h11 in the client role, fed the request it
answers (so a HEAD or 304 response with a body, wrong framing or stray bytes
is a parse error and the case fails). Every socket read has a deadline; the
connection state is learnt by reading, never by sleeping:

1. the case's bytes are sent, honouring its steps (AWAIT_HEAD, READ, SHUT_WR);
2. final responses are read until the case's largest outcome is complete, a
   response announces ``Connection: close``, EOF, or nothing more comes
   within the case's wait ("pending");
3. the state after that: when a close was announced (or the client half-
   closed) the rest is read up to EOF; otherwise a follow-up probe request
   (``GET /echo?conformance-probe`` with ``Connection: close``, or ``GET /``
   when the server has no echo mirror) is sent and read to EOF. The probe
   answered means the connection stayed open; EOF first means it was closed.
   Any other response read in this phase is an extra one: an answer to a
   request that the framing hid (smuggled), which always fails.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from suites.wire import Conn, endpoint_for

from .model import (
    AWAIT_HEAD,
    EITHER,
    FAIL,
    FORBIDDEN,
    MUST,
    PASS,
    READ,
    REQUIRED,
    SHUT_WR,
    WARN,
    Case,
    Echo,
    Outcome,
    status_matches,
    worst,
)
from .reading import HOST, Closed, Malformed, Resp, read_response, read_to_eof
from .rules import Violation, violations

PROBE_ECHO = "/echo?conformance-probe"


@dataclass
class Observed:
    """What happened on the wire for one case."""

    responses: list[Resp] = field(default_factory=list)  # final responses to the case's own requests
    extra: list[Resp] = field(default_factory=list)  # responses nobody should have got (smuggled)
    closed: bool = False
    pending: bool = False
    probe: str = ""  # "answered", "closed", "stuck", "not sent"
    probe_response: Resp | None = None
    error: str | None = None
    elapsed: float = 0.0
    authority: str = HOST  # what the wire sent for ``Host: localhost`` (a --target's own Host)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]

    def summary(self) -> str:
        s = f"statuses={self.statuses}"
        interim = [c for r in self.responses for c, _ in r.interim]
        if interim:
            s += f" 1xx={interim}"
        s += f" closed={self.closed}"
        if self.pending:
            s += " pending"
        if self.extra:
            s += f" EXTRA={[r.status for r in self.extra]}"
        if self.error:
            s += f" error={self.error!r}"
        return s


def run(case: Case, host: str, port: int, probe_target: str, raw: list[bytes] | None = None) -> Observed:
    """Send ``case`` on a fresh connection and observe (see the module docstring)."""
    obs = Observed()
    ep = endpoint_for(host, port)
    if ep is not None:
        obs.authority = ep.authority
    t0 = time.monotonic()
    conn = Conn(port, host=host, timeout=case.wait, nodelay=True)
    try:
        try:
            half_closed = _send_steps(conn, case, raw if raw is not None else case.send, obs)
            announced = any(r.announces_close for r in obs.responses)
            while not (obs.closed or obs.pending or announced) and len(obs.responses) < case.max_responses:
                if not _read_next(conn, case, obs):
                    break
                announced = obs.responses[-1].announces_close
            if obs.closed or obs.pending:
                obs.probe = "not sent"
            elif announced or half_closed or conn.send_failed or conn.eof:
                obs.extra, obs.closed = read_to_eof(conn, case.wait)
                obs.probe = "not sent"
            else:
                _probe(conn, case, obs, probe_target)
        except Malformed as exc:
            obs.error = str(exc)
            if obs.responses:
                last = obs.responses[-1]
                obs.error += (f" (after the response {last.status} to {last.method}: stray bytes, e.g. a body "
                              f"on a HEAD response or a body longer than its framing)")
    finally:
        conn.close()
        obs.elapsed = time.monotonic() - t0
    return obs


def _send_steps(conn: Conn, case: Case, steps: list, obs: Observed) -> bool:
    """Send the case's bytes, honouring its steps (step 1); True if the client half-closed."""
    half_closed = False
    for step in steps:
        if isinstance(step, bytes):
            conn.try_send(step)
        elif step is AWAIT_HEAD:
            conn.wait_head(case.wait)
        elif step is READ:
            if not _read_next(conn, case, obs):
                break
        elif step is SHUT_WR:
            conn.shut_wr()
            half_closed = True
    return half_closed


def _read_next(conn: Conn, case: Case, obs: Observed) -> bool:
    """Read the answer to the case's next request into ``obs``; False at EOF or when none comes (pending)."""
    try:
        obs.responses.append(read_response(conn, *case.request_meta(len(obs.responses)), case.wait))
    except Closed:
        obs.closed = True
        return False
    except TimeoutError:
        obs.pending = True
        return False
    return True


def _probe(conn: Conn, case: Case, obs: Observed, probe_target: str) -> None:
    """Step 3 on a connection still open: send the probe, then sort its answer from extra responses."""
    conn.try_send(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                  % (probe_target.encode(), HOST.encode()))
    more, eof = read_to_eof(conn, case.wait)
    probe_idx = _find_probe(more, probe_target)
    if probe_idx is None:
        obs.extra = more
        obs.closed = eof
        obs.probe = "closed" if eof else "stuck"
    else:
        obs.extra = more[:probe_idx] + more[probe_idx + 1:]
        obs.closed = False
        obs.probe = "answered"
        obs.probe_response = more[probe_idx]


def _find_probe(responses: list[Resp], probe_target: str) -> int | None:
    """Index of the probe's own answer among the responses read after it was sent."""
    if not responses:
        return None
    if probe_target == PROBE_ECHO:
        for i, r in enumerate(responses):
            doc = r.json() if 200 <= r.status < 300 else None
            if doc is not None and doc.get("target") == PROBE_ECHO:
                return i
        return None
    last = responses[-1]
    return len(responses) - 1 if 200 <= last.status < 300 else None


# -- judging -------------------------------------------------------------------
@dataclass
class Judgement:
    """A case's verdict with its reasons; ``rules_seen``: every response rule broken on the connection
    (judged only when the case declares it in ``Case.rules``, recorded either way)."""

    verdict: str
    reasons: list[str]
    observed: Observed
    matched: str = ""
    rules_seen: list[Violation] = field(default_factory=list)

    @property
    def rule_keys(self) -> list[str]:
        """The distinct rules broken, in order of first sight."""
        return list(dict.fromkeys(v.key for v in self.rules_seen))


def _rules_seen(obs: Observed) -> tuple[list[Violation], list[Violation]]:
    """(broken by the case's own responses, broken by any response read: extra and probe too)."""
    own = [v for r in obs.responses for v in violations(r)]
    others = [v for r in [*obs.extra, *([obs.probe_response] if obs.probe_response else [])] for v in violations(r)]
    if obs.error:
        own.append(Violation("framing", obs.error))
    return own, own + others


def outcome_matches(o: Outcome, obs: Observed, persistent: bool = True) -> bool:
    """Whether ``obs`` is outcome ``o``. ``persistent=False``: the server keeps no connection open
    (it says ``Connection: close`` on every response, RFC 9112 §9.3), so a close it announced
    satisfies an outcome that forbids closing, and answering only the first requests of a
    pipeline before that close matches the outcome's first statuses."""
    announced = bool(obs.responses) and obs.responses[-1].announces_close
    if len(o.statuses) != len(obs.responses):
        if persistent or not announced or len(obs.responses) > len(o.statuses):
            return False
    if not all(status_matches(spec, r.status) for spec, r in zip(o.statuses, obs.responses)):
        return False
    if o.pending != obs.pending:
        return False
    if not o.pending:
        if o.closed == REQUIRED and not obs.closed:
            return False
        if o.closed == FORBIDDEN and obs.closed:
            if persistent or not announced:
                return False
    if o.interim is not None:
        seen = tuple(c for c, _ in obs.responses[0].interim) if obs.responses else ()
        if seen != o.interim:
            return False
    return True


#: what a server answers for a resource it does not have (RFC 9110 §15.5.5) or that refuses the method (§15.5.6)
_NO_RESOURCE = (404, 405)
#: the built-in app's resources the cases address (servers/apps): the request mirror and sized bodies
_BUILTIN_PATHS = (b"/echo", b"/bytes/", b"/status/204", b"/stream")


def missing_builtin(case: Case, obs: Observed, persistent: bool = True) -> str | None:
    """Why ``case`` is not applicable to a server without the built-in app's resources, or None.

    Cases send their requests to ``/echo``, ``/bytes/N``, ``/status/204`` or ``/stream`` and
    expect the built-in app's answer there. A deployment that does not serve those paths
    answers 404 (or 405 where a static handler refuses POST), which says nothing about the
    rule the case tests. The case is not applicable when answering some of those requests as
    the expected outcome says (a 2xx, the 204) would have met it; any other miss (a 404 where
    a 400 is due, a wrong close, a smuggled response) is still judged."""
    if not any(isinstance(part, bytes) and any(p in part for p in _BUILTIN_PATHS) for part in case.send):
        return None
    missing = [i for i, r in enumerate(obs.responses) if r.status in _NO_RESOURCE]
    if not missing or obs.extra:
        return None
    # which of the 404/405 answers stand for a built-in resource: all of them, else each subset (few)
    subsets = [set(missing)] + ([{i for k, i in enumerate(missing) if chosen >> k & 1}
                                 for chosen in range(1, (1 << len(missing)) - 1)] if len(missing) <= 6 else [])
    for served in subsets:
        for o in case.expect:
            if len(o.statuses) < len(obs.responses):
                continue
            as_builtin = dataclasses.replace(obs, responses=[
                dataclasses.replace(r, status=_a_status(o.statuses[i])) if i in served else r
                for i, r in enumerate(obs.responses)])
            if outcome_matches(o, as_builtin, persistent):
                statuses = ", ".join(str(obs.responses[i].status) for i in sorted(served))
                return (f"it does not serve the built-in app's resources (/echo, /bytes/N, /status/204, /stream; "
                        f"answered {statuses}); the case needs one that accepts the request")
    return None


def _a_status(spec: str) -> int:
    """One status an outcome's spec accepts ("2xx" -> 200, "204" -> 204, "200|206" -> 200)."""
    first = spec.split("|")[0]
    return int(first[0]) * 100 if first.endswith("xx") else int(first)


def _norm(v: str) -> str:
    return " ".join(v.split(" ")).strip(" \t")


def echo_mismatches(e: Echo, doc: dict, authority: str = HOST) -> list[str]:
    """Differences between the echo mirror ``doc`` and the expected parse ``e``; ``authority`` is
    what a ``Host: localhost`` the case wrote went out as (suites.wire.Endpoint)."""
    out = []
    if e.method is not None and doc.get("method") != e.method:
        out.append(f"method parsed as {doc.get('method')!r}, expected {e.method!r}")
    if e.target is not None and doc.get("target") != e.target:
        out.append(f"target parsed as {doc.get('target')!r}, expected {e.target!r}")
    if e.version is not None and doc.get("version") != e.version:
        out.append(f"version parsed as {doc.get('version')!r}, expected {e.version!r}")
    headers = [(str(n), str(v)) for n, v in doc.get("headers", [])]
    for name, want in e.has:
        values = [v.strip(" \t") for n, v in headers if n.lower() == name.lower()]
        if not values:
            out.append(f"field {name!r} missing from the parse")
        elif want is not None:
            options = want if isinstance(want, tuple) else (want,)
            if name.lower() == "host":
                options = tuple(authority if w == HOST else w for w in options)
            if not any(v == w or _norm(v) == _norm(w) for v in values for w in options):
                out.append(f"field {name!r} parsed as {values!r}, expected one of {list(options)!r}")
    for name in e.lacks:
        found = [(n, v) for n, v in headers if n.lower() == name.lower()]
        if found:
            out.append(f"field {name!r} must not be in the header section, found {found!r}")
    if e.body is not None:
        body = str(doc.get("body", "")).encode("latin-1", "replace")
        if body != e.body:
            out.append(f"body parsed as {body[:80]!r} ({len(body)} bytes), expected {e.body[:80]!r} "
                       f"({len(e.body)} bytes)")
    return out


def judge(case: Case, obs: Observed, echo_available: bool, persistent: bool = True) -> Judgement:
    """Pass / Warn / Fail for ``obs`` (see model.py); ``persistent``: see :func:`outcome_matches`.

    The case is judged on what it tests: statuses, close, echo comparison, wants, extra
    (smuggled) responses, a stuck connection, and a response the strict parser refuses
    (RFC 9112 §6.3: the stream's framing is lost). A header-level response rule (rules.py)
    fails only a case that declares it in ``Case.rules``; elsewhere it is recorded in
    ``Judgement.rules_seen``, so one defect is not counted once per case."""
    own, seen = _rules_seen(obs)
    if obs.error:  # the stream lost its message boundaries: whatever the case tests, it fails
        return Judgement(FAIL, [obs.error], obs, rules_seen=seen)
    reasons = [v.detail for v in own if v.key in case.rules]
    verdict = FAIL if reasons else PASS
    if obs.extra:
        reasons.append(f"{len(obs.extra)} extra response(s) {[r.status for r in obs.extra]}: "
                       "a request hidden behind the framing boundary was answered")
        verdict = FAIL
    if obs.probe == "stuck":
        reasons.append("the connection neither answered a valid follow-up request nor closed")
        verdict = FAIL
    matched = ""
    if any(outcome_matches(o, obs, persistent) for o in case.expect):
        matched = "expected"
    elif any(outcome_matches(o, obs, persistent) for o in case.lenient):
        matched = "lenient"
        verdict = worst(verdict, WARN)
        reasons.append("lenient outcome accepted where the RFC prefers: "
                       + " or ".join(o.describe() for o in case.expect))
    else:
        v = FAIL if case.level == MUST else WARN
        verdict = worst(verdict, v)
        reasons.append(f"{case.level} expectation not met: expected "
                       + " or ".join(o.describe() for o in case.expect))
    for e in case.echo:
        if not echo_available or e.index >= len(obs.responses):
            continue
        r = obs.responses[e.index]
        if not 200 <= r.status < 300:
            continue
        doc = r.json()
        if doc is None:
            reasons.append(f"response {e.index} is not the echo mirror's JSON")
            verdict = FAIL
            continue
        bad = echo_mismatches(e, doc, obs.authority)
        if bad:
            level = e.level or case.level
            verdict = worst(verdict, FAIL if level == MUST else WARN)
            reasons += [f"echo[{e.index}] ({level}): {b}" for b in bad]
    for w in case.want:
        if w.index >= len(obs.responses):
            continue
        r = obs.responses[w.index]
        if w.only_status and not status_matches(w.only_status, r.status):
            continue
        value = r.header(w.name)
        ok = value is not None and (w.value is None or w.value.lower() in value.lower())
        if ok != w.present:
            level = w.level or case.level
            verdict = worst(verdict, FAIL if level == MUST else WARN)
            what = "carries" if not w.present else "lacks"
            reasons.append(f"response {w.index} ({r.status}) {what} {w.name}"
                           f"{': ' + w.value if w.value else ''} ({level}); it has {value!r}")
    return Judgement(verdict, reasons, obs, matched, seen)


__all__ = ["Judgement", "Observed", "PROBE_ECHO", "Resp", "judge", "missing_builtin", "run", "EITHER"]
