"""The response rules: what every response must obey, whatever the request was.

These are the header-level rules of RFC 9110/9112 a client can check on a response it
parsed: a ``Date`` on 2xx-4xx (RFC 9110 §6.6.1), in IMF-fixdate (§5.6.7), ``Allow`` on a
405 (§15.5.6), no ``Content-Length`` on a 204 or 1xx (§8.6), not both ``Content-Length``
and ``Transfer-Encoding`` (RFC 9112 §6.2), no 1xx and no ``Transfer-Encoding`` to an
HTTP/1.0 client (RFC 9110 §15.2, RFC 9112 §6.1), and never a 101 (the suite offers no
protocol to switch to, RFC 9110 §7.8).

A server that breaks one usually breaks it on every response of that kind, so a rule is
judged only in the cases that declare it (``Case.rules``, the ``responses`` family) and
merely recorded in the others: one defect is one failing case family, not two hundred.
``framing`` names the stream-level rule (a body on a HEAD response, wrong length, stray
bytes: RFC 9112 §6.3): a response the strict parser refuses loses the connection's
message boundaries, so it also fails whichever case provoked it (runner.judge).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the harness's report reads RULES and decode() without h11 (reading.py's parser)
    from .reading import Resp


@dataclass(frozen=True)
class Rule:
    """One response rule: a short key (``Case.rules``, the ``response_rules`` property) and what it says."""

    key: str
    text: str


#: every rule, by key; the text is what reports print beside the key
RULES: dict[str, Rule] = {r.key: r for r in (
    Rule("date", "a 2xx-4xx response carries Date (RFC 9110 §6.6.1 MUST)"),
    Rule("date-format", "Date is an IMF-fixdate (RFC 9110 §5.6.7 MUST)"),
    Rule("allow-405", "a 405 carries Allow (RFC 9110 §15.5.6 MUST)"),
    Rule("cl-204", "no Content-Length in a 204 (RFC 9110 §8.6 MUST NOT)"),
    Rule("cl-1xx", "no Content-Length in a 1xx (RFC 9110 §8.6 MUST NOT)"),
    Rule("cl-te", "not both Content-Length and Transfer-Encoding (RFC 9112 §6.2 MUST NOT)"),
    Rule("1xx-http10", "no 1xx to an HTTP/1.0 client (RFC 9110 §15.2 MUST NOT)"),
    Rule("te-http10", "no Transfer-Encoding to an HTTP/1.0 client (RFC 9112 §6.1 MUST NOT)"),
    Rule("no-101", "never 101 Switching Protocols: the suite offers no protocol to switch to (RFC 9110 §7.8)"),
    Rule("framing", "every response parses: no body on HEAD/304, the length it announces, no stray bytes "
                    "(RFC 9110 §9.3.2, RFC 9112 §6.3 MUST); also fails the case that provoked it"),
)}

_IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\Z"
)


@dataclass(frozen=True)
class Violation:
    """A rule broken by one response: the rule's key and what was seen."""

    key: str
    detail: str


def violations(r: Resp) -> list[Violation]:
    """The header-level rules ``r`` breaks (``framing`` is the parser's to find: reading.Malformed)."""
    out: list[Violation] = []
    date = r.header("date")
    if 200 <= r.status < 500 and date is None:
        out.append(Violation("date", f"{r.status} without Date (RFC 9110 §6.6.1 MUST)"))
    if date is not None and not _IMF_FIXDATE.match(date.strip()):
        out.append(Violation("date-format", f"Date {date!r} is not IMF-fixdate (RFC 9110 §5.6.7 MUST)"))
    if r.status == 204 and r.header("content-length") is not None:
        out.append(Violation("cl-204", "Content-Length in a 204 (RFC 9110 §8.6 MUST NOT)"))
    if r.header("content-length") is not None and r.header("transfer-encoding") is not None:
        out.append(Violation("cl-te", "both Content-Length and Transfer-Encoding (RFC 9112 §6.2 MUST NOT)"))
    if r.status == 405 and r.header("allow") is None:
        out.append(Violation("allow-405", "405 without Allow (RFC 9110 §15.5.6 MUST)"))
    if r.status == 101:
        out.append(Violation("no-101", "101 Switching Protocols: the suite never offers a protocol the server "
                                       "could switch to"))
    for code, headers in r.interim:
        if any(n == "content-length" for n, _ in headers):
            out.append(Violation("cl-1xx", f"Content-Length in a {code} (RFC 9110 §8.6 MUST NOT)"))
    if r.req_version == "1.0":
        if r.interim:
            out.append(Violation("1xx-http10", f"1xx {[c for c, _ in r.interim]} sent to an HTTP/1.0 client "
                                               "(RFC 9110 §15.2 MUST NOT)"))
        if r.header("transfer-encoding") is not None:
            out.append(Violation("te-http10", "Transfer-Encoding sent to an HTTP/1.0 client (RFC 9112 §6.1 MUST NOT)"))
    return out


def encode(keys: list[str]) -> str:
    """The ``response_rules`` JUnit property: ``key: text`` per distinct rule, joined by `` | ``."""
    return " | ".join(f"{k}: {RULES[k].text}" for k in dict.fromkeys(keys))


def decode(value: str | None) -> dict[str, str]:
    """The inverse of :func:`encode`: rule key -> text (empty for a run that recorded none)."""
    out: dict[str, str] = {}
    for part in (value or "").split(" | "):
        key, _, text = part.partition(": ")
        if key.strip():
            out[key.strip()] = text.strip()
    return out
