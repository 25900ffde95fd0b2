"""One server's conformance figures, read back from the JUnit properties its cases recorded.

Two verdicts per server (docs/conformance.md, "Two verdicts"): **handling**, the
pass/warn/fail/n-a counts of the cases that test how a request is handled, and
**response rules**, the counts of the cases that test what every response obeys (rows
39 and ``responses``) with each distinct rule broken and the number of cases it was seen
in. A server that forgets ``Date`` on its errors breaks one rule, seen in two hundred
cases, instead of failing two hundred cases.

Read by ``python -m suites.conformance.report`` and by the harness report's table 6;
imports nothing that needs h11, so a harness without the suites' extra can read a run.
Runs recorded before the ``kind`` property existed are sorted by their ``row``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Mapping

from .model import HANDLING, RESPONSE_ROWS, RESPONSE_RULES
from .rules import decode

KINDS = (HANDLING, RESPONSE_RULES)


def kind_of(props: Mapping[str, str]) -> str:
    """The case's kind as recorded; older runs: from its checklist row."""
    kind = props.get("kind")
    if kind in KINDS:
        return kind
    return RESPONSE_RULES if props.get("row") in RESPONSE_ROWS else HANDLING


@dataclass
class Tally:
    """Verdict counts per kind, and per response rule the cases it was seen in."""

    counts: dict[str, collections.Counter] = field(
        default_factory=lambda: {k: collections.Counter() for k in KINDS})
    rule_text: dict[str, str] = field(default_factory=dict)
    seen: collections.Counter = field(default_factory=collections.Counter)

    def add(self, props: Mapping[str, str], verdict: str) -> None:
        """Count one case: ``verdict`` as the reader normalised it (pass, warn, fail, n/a, ...)."""
        self.counts[kind_of(props)][verdict] += 1
        for key, text in decode(props.get("response_rules")).items():
            self.rule_text.setdefault(key, text)
            self.seen[key] += 1

    @property
    def rules_broken(self) -> list[tuple[str, str, int]]:
        """(key, text, cases seen in) per distinct rule broken, most seen first."""
        return [(k, self.rule_text[k], n) for k, n in sorted(self.seen.items(), key=lambda kv: (-kv[1], kv[0]))]

    def describe(self, kind: str) -> str:
        """``pass=N warn=N fail=N [n/a=N] [other=N] total=N`` for one kind."""
        c = self.counts[kind]
        extra = "".join(f" {v}={n}" for v, n in sorted(c.items()) if v not in ("pass", "warn", "fail") and n)
        return f"pass={c['pass']} warn={c['warn']} fail={c['fail']}{extra} total={sum(c.values())}"
