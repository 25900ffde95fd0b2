"""The shape of a conformance case: what is sent, what may come back, and how bad a deviation is.

A :class:`Case` is pure data. It names the checklist row (or family) it
belongs to, the RFC section and requirement level behind it, the bytes to
send (with a few step markers for requests that need a pause), and the
outcomes that make it Pass (``expect``) or Warn (``lenient``). Anything else
is a Fail when the level is MUST, a Warn otherwise. Some observations fail
whatever the level: a malformed response, a response to a request hidden
behind the framing boundary (see runner.py). A header-level response rule
(rules.py: Date, Allow, ...) fails only the cases that name it in ``rules``
(the ``responses`` family); the others record it.

An :class:`Outcome` is judged on three things only: the statuses of the final
responses, in order; whether the connection was closed afterwards; and
(for a few cases) the 1xx responses seen before the first final one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .rules import RULES

# -- requirement levels (RFC 2119 keywords behind the expectation) -------------
MUST = "MUST"
SHOULD = "SHOULD"
MAY = "MAY"
RECOMMENDED = "RECOMMENDED"
LEVELS = (MUST, SHOULD, RECOMMENDED, MAY)

# -- connection state after the last expected response ------------------------
REQUIRED = "required"  # the server must close (EOF before any answer to the follow-up probe)
FORBIDDEN = "forbidden"  # the server must keep it open (the follow-up probe is answered)
EITHER = "either"

# -- what a case is judged on (the ``kind`` JUnit property) ---------------------
HANDLING = "handling"  # how the request was handled: statuses, close, echo, wants, smuggling
RESPONSE_RULES = "response-rules"  # the rules every response obeys (rules.py), in cases of their own
#: the checklist rows (families) whose cases judge response rules
RESPONSE_ROWS = ("39", "responses")

# -- verdicts ------------------------------------------------------------------
PASS = "pass"
WARN = "warn"
FAIL = "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}


def worst(*verdicts: str) -> str:
    """The most severe of ``verdicts``."""
    return max(verdicts, key=_RANK.__getitem__, default=PASS)


def status_matches(spec: str, status: int) -> bool:
    """``spec`` is ``"400"``, ``"4xx"``, ``"any"`` or alternatives joined by ``|`` (``"400|501"``)."""
    for part in spec.split("|"):
        part = part.strip()
        if part == "any":
            return True
        if part.endswith("xx") and len(part) == 3:
            if status // 100 == int(part[0]):
                return True
        elif part.isdigit() and int(part) == status:
            return True
    return False


# -- send steps ----------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """A pause in the byte stream a case sends."""

    kind: str

    def __repr__(self) -> str:
        return f"<{self.kind}>"


#: wait (bounded) until a response head, interim or final, has arrived; do not consume it
AWAIT_HEAD = Step("await-head")
#: read one complete final response now (a request sent only after the previous answer)
READ = Step("read")
#: half-close: the client sends FIN and reads on
SHUT_WR = Step("shut-wr")


# -- expectations --------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """One acceptable result: final statuses in order, connection state, optional 1xx list.

    ``pending`` means: after the listed responses the server answered nothing
    more and kept the connection open for the whole wait (it is still waiting
    for bytes that a correct parse says are missing).
    """

    statuses: tuple[str, ...] = ()
    closed: str = EITHER
    pending: bool = False
    interim: tuple[int, ...] | None = None  # None: any 1xx (or none) is fine

    def describe(self) -> str:
        s = "[" + ", ".join(self.statuses) + "]"
        if self.pending:
            s += " then waiting"
        elif self.closed != EITHER:
            s += f" close {self.closed}"
        if self.interim is not None:
            s += f" 1xx={list(self.interim)}"
        return s


@dataclass(frozen=True)
class Echo:
    """What the server's own parse must look like, read from the ``/echo`` mirror.

    ``has`` lists (name, value) pairs that must be present (value None: any
    value; a tuple: any of those values), ``lacks`` field names that must
    never be there (matched case-insensitively). Only checked when the
    response at ``index`` is a 2xx and the server exposes the mirror.
    """

    index: int = 0
    method: str | None = None
    target: str | None = None
    version: str | None = None
    has: tuple[tuple[str, object], ...] = ()
    lacks: tuple[str, ...] = ()
    body: bytes | None = None
    level: str | None = None  # None: the case's level


@dataclass(frozen=True)
class Want:
    """A response field the response at ``index`` must carry (or must not, ``present=False``).

    ``value`` is matched as a case-insensitive substring (None: any value).
    """

    name: str
    value: str | None = None
    present: bool = True
    index: int = 0
    level: str | None = None  # None: the case's level
    only_status: str | None = None  # check only when that response's status matches this spec


@dataclass(frozen=True)
class Case:
    """One conformance case (see the module docstring)."""

    id: str
    row: str  # checklist row number ("25") or family key ("te-forms")
    title: str
    send: tuple  # bytes and Step markers, in order
    expect: tuple[Outcome, ...]
    rfc: str
    level: str = MUST
    lenient: tuple[Outcome, ...] = ()
    echo: tuple[Echo, ...] = ()
    want: tuple[Want, ...] = ()
    #: (method, version) of each request whose answer is read, for the strict response parser;
    #: None: taken from the first request-line (later ones default to GET, 1.1)
    reqs: tuple[tuple[str, str], ...] | None = None
    wait: float = 2.5  # seconds to wait for each response (and for EOF when a close is announced)
    short_timeout: bool = False  # run against a server with Timeout 1 and RequestReadTimeout 1 s
    health: bool = False  # afterwards a fresh connection must still be served (no crash)
    needs_validator: bool = False  # request bytes use {etag} / {last_modified} from GET /
    smuggle: bool = False  # a request is hidden behind the framing boundary
    #: premise: ``/`` refuses POST (405/501) and never reads a body, as servers.apps:app does; a server
    #: whose ``/`` accepts POST (httpd's static file handler) makes the case not applicable
    get_only_root: bool = False
    #: the response rules (rules.RULES keys) this case judges: broken, they fail it; elsewhere they are recorded
    rules: tuple[str, ...] = ()
    note: str = ""
    family: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        assert self.level in LEVELS, self.level
        assert self.expect, f"{self.id}: no expected outcome"
        assert all(isinstance(s, (bytes, Step)) for s in self.send), self.id
        assert all(k in RULES for k in self.rules), (self.id, self.rules)
        assert not self.rules or self.row in RESPONSE_ROWS, f"{self.id}: only response cases judge rules"

    @property
    def kind(self) -> str:
        """HANDLING, or RESPONSE_RULES for the row 39 and ``responses`` cases (docs/conformance.md)."""
        return RESPONSE_RULES if self.row in RESPONSE_ROWS else HANDLING

    @property
    def max_responses(self) -> int:
        """The most final responses any acceptable outcome allows."""
        return max(len(o.statuses) for o in (*self.expect, *self.lenient))

    def request_meta(self, index: int) -> tuple[str, str]:
        """(method, version) of the request answered by final response ``index``."""
        if self.reqs is not None:
            return self.reqs[index] if index < len(self.reqs) else ("GET", "1.1")
        if index > 0:
            return ("GET", "1.1")
        first = next((s for s in self.send if isinstance(s, bytes)), b"")
        first = first.lstrip(b"\r\n")
        line = first.split(b"\n", 1)[0].rstrip(b"\r")
        method = line.split(b" ", 1)[0]
        if not (method and len(method) <= 24 and method.isalpha() and method.isascii()):
            method = b"GET"
        version = "1.0" if line.endswith(b"HTTP/1.0") else "1.1"
        return (method.decode("ascii"), version)
