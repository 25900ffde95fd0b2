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

import json
import re
import socket
import time
from dataclasses import dataclass, field

import h11

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
    Want,
    status_matches,
    worst,
)

PROBE_ECHO = "/echo?conformance-probe"
HOST = "localhost"
_IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\Z"
)


@dataclass
class Resp:
    """One parsed final response (with the 1xx responses that came before it)."""

    status: int
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[tuple[int, list[tuple[str, str]]]]
    method: str
    req_version: str

    def header(self, name: str) -> str | None:
        name = name.lower()
        values = [v for n, v in self.headers if n == name]
        return ", ".join(values) if values else None

    @property
    def announces_close(self) -> bool:
        conn = self.header("connection") or ""
        return "close" in [t.strip().lower() for t in conn.split(",")]

    def json(self) -> dict | None:
        try:
            doc = json.loads(self.body.decode("latin-1"))
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None


class _Eof(Exception):
    pass


class _Pending(Exception):
    pass


class Malformed(Exception):
    """The server sent something a strict HTTP/1.1 parser refuses."""


class Wire:
    """One client connection: raw bytes out, h11-parsed responses in, every read bounded."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.send_failed = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        if self.send_failed:
            return
        try:
            self.sock.sendall(data)
        except OSError:  # EPIPE / ECONNRESET: the server has closed; what it sent may still be read
            self.send_failed = True

    def shut_wr(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _recv(self, deadline: float) -> bool:
        """Read more bytes; False at EOF (or reset); raises _Pending at the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Pending()
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise _Pending() from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def wait_head(self, timeout: float) -> None:
        """Wait until a response head (interim or final) is buffered, EOF, or the deadline."""
        deadline = time.monotonic() + timeout
        try:
            while b"\r\n\r\n" not in self.buf and self._recv(deadline):
                pass
        except _Pending:
            pass

    def read_response(self, method: str, version: str, timeout: float) -> Resp:
        """Parse one final response (after any 1xx). Raises _Eof, _Pending or Malformed."""
        deadline = time.monotonic() + timeout
        if self.eof and not self.buf:
            # the server closed after a close-delimited response (no Content-Length, e.g. httpd's 400
            # to a bad chunk): nothing more can come; h11 would call EOF here a protocol error
            raise _Eof()
        conn = h11.Connection(h11.CLIENT)
        h11_method = "GET" if method.upper() == "CONNECT" else method
        # h11 only speaks 1.1 as a client; the request's real version is kept in Resp.req_version
        conn.send(h11.Request(method=h11_method, target="/", headers=[("Host", HOST)]))
        conn.send(h11.EndOfMessage())
        started = bool(self.buf)
        if self.buf:  # receive_data(b"") would mean EOF to h11
            conn.receive_data(self.buf)
            self.buf = b""
        elif self.eof:
            conn.receive_data(b"")
        interim: list[tuple[int, list[tuple[str, str]]]] = []
        head = None
        body = []
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise Malformed(f"malformed response: {exc}") from None
            if ev is h11.NEED_DATA:
                try:
                    more = self._recv(deadline)
                except _Pending:
                    pending_bytes = conn.trailing_data[0]
                    if started or pending_bytes:
                        raise Malformed("incomplete response before the deadline") from None
                    raise
                if more:
                    started = True
                    conn.receive_data(self.buf)
                    self.buf = b""
                else:
                    leftover = conn.trailing_data[0]
                    if not started and not leftover and head is None:
                        raise _Eof()
                    conn.receive_data(b"")
                continue
            if isinstance(ev, h11.InformationalResponse):
                started = True
                interim.append((ev.status_code, _decode(ev.headers)))
            elif isinstance(ev, h11.Response):
                started = True
                head = ev
            elif isinstance(ev, h11.Data):
                body.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                rest, closed = conn.trailing_data
                self.buf = rest
                if closed:
                    self.eof = True
                return Resp(head.status_code, head.http_version.decode(), _decode(head.headers), b"".join(body),
                            interim, method, version)
            elif isinstance(ev, h11.ConnectionClosed):
                if head is None and not interim:
                    raise _Eof()
                raise Malformed("connection closed inside a response")
            elif ev is h11.PAUSED:
                raise Malformed("h11 paused (protocol switch?)")

    def read_to_eof(self, timeout: float) -> tuple[list[Resp], bool]:
        """Read responses until EOF (True) or the deadline (False)."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            try:
                got.append(self.read_response("GET", "1.1", max(left, 0.001)))
            except _Eof:
                return got, True
            except _Pending:
                return got, False


def _decode(headers) -> list[tuple[str, str]]:
    return [(bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1")) for n, v in headers]


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
    t0 = time.monotonic()
    wire = Wire(host, port, case.wait)
    half_closed = False
    try:
        try:
            for step in (raw if raw is not None else case.send):
                if isinstance(step, bytes):
                    wire.send(step)
                elif step is AWAIT_HEAD:
                    wire.wait_head(case.wait)
                elif step is READ:
                    try:
                        obs.responses.append(wire.read_response(*case.request_meta(len(obs.responses)), case.wait))
                    except _Eof:
                        obs.closed = True
                        break
                    except _Pending:
                        obs.pending = True
                        break
                elif step is SHUT_WR:
                    wire.shut_wr()
                    half_closed = True
            announced = any(r.announces_close for r in obs.responses)
            while not (obs.closed or obs.pending or announced) and len(obs.responses) < case.max_responses:
                try:
                    r = wire.read_response(*case.request_meta(len(obs.responses)), case.wait)
                except _Eof:
                    obs.closed = True
                    break
                except _Pending:
                    obs.pending = True
                    break
                obs.responses.append(r)
                announced = r.announces_close
            if obs.closed or obs.pending:
                obs.probe = "not sent"
            elif announced or half_closed or wire.send_failed or wire.eof:
                more, obs.closed = wire.read_to_eof(case.wait)
                obs.extra = more
                obs.probe = "not sent"
            else:
                wire.send(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                          % (probe_target.encode(), HOST.encode()))
                more, eof = wire.read_to_eof(case.wait)
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
        except Malformed as exc:
            obs.error = str(exc)
            if obs.responses:
                last = obs.responses[-1]
                obs.error += (f" (after the response {last.status} to {last.method}: stray bytes, e.g. a body "
                              f"on a HEAD response or a body longer than its framing)")
    finally:
        wire.close()
        obs.elapsed = time.monotonic() - t0
    return obs


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
    verdict: str
    reasons: list[str]
    observed: Observed
    matched: str = ""


def response_rule_violations(r: Resp) -> list[str]:
    """RFC rules every response must follow, whatever was asked."""
    out = []
    if 200 <= r.status < 500 and r.header("date") is None:
        out.append(f"{r.status} without Date (RFC 9110 §6.6.1 MUST)")
    date = r.header("date")
    if date is not None and not _IMF_FIXDATE.match(date.strip()):
        out.append(f"Date {date!r} is not IMF-fixdate (RFC 9110 §5.6.7 MUST)")
    if r.status == 204 and r.header("content-length") is not None:
        out.append("Content-Length in a 204 (RFC 9110 §8.6 MUST NOT)")
    if r.header("content-length") is not None and r.header("transfer-encoding") is not None:
        out.append("both Content-Length and Transfer-Encoding (RFC 9112 §6.2 MUST NOT)")
    if r.status == 405 and r.header("allow") is None:
        out.append("405 without Allow (RFC 9110 §15.5.6 MUST)")
    if r.status == 101:
        out.append("101 Switching Protocols: the suite never offers a protocol the server could switch to")
    for code, headers in r.interim:
        if any(n == "content-length" for n, _ in headers):
            out.append(f"Content-Length in a {code} (RFC 9110 §8.6 MUST NOT)")
    if r.req_version == "1.0":
        if r.interim:
            out.append(f"1xx {[c for c, _ in r.interim]} sent to an HTTP/1.0 client (RFC 9110 §15.2 MUST NOT)")
        if r.header("transfer-encoding") is not None:
            out.append("Transfer-Encoding sent to an HTTP/1.0 client (RFC 9112 §6.1 MUST NOT)")
    return out


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


def _norm(v: str) -> str:
    return " ".join(v.split(" ")).strip(" \t")


def echo_mismatches(e: Echo, doc: dict) -> list[str]:
    """Differences between the echo mirror ``doc`` and the expected parse ``e``."""
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
    """Pass / Warn / Fail for ``obs`` (see model.py); ``persistent``: see :func:`outcome_matches`."""
    reasons: list[str] = []
    verdict = PASS
    if obs.error:
        return Judgement(FAIL, [obs.error], obs)
    for r in [*obs.responses, *obs.extra, *([obs.probe_response] if obs.probe_response else [])]:
        for v in response_rule_violations(r):
            reasons.append(v)
            verdict = FAIL
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
        bad = echo_mismatches(e, doc)
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
    return Judgement(verdict, reasons, obs, matched)


__all__ = ["Judgement", "Observed", "PROBE_ECHO", "Resp", "Wire", "judge", "run", "response_rule_violations",
           "EITHER"]
