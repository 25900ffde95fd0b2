"""Tabulate a conformance JUnit XML: ``python -m suites.conformance.report FILE.xml [...]``.

Prints, per server, its two verdicts (tally.py): the Pass/Warn/Fail counts of the
request-handling cases (and n/a: cases whose premise does not hold on that server),
the counts of the response-rule cases with every distinct response rule broken and
the number of cases it was seen in; then every Warn, Fail and n/a with its status
and reasons.
"""

from __future__ import annotations

import collections
import functools
import re
import sys
import xml.etree.ElementTree as ET

from .model import HANDLING, RESPONSE_RULES
from .tally import Tally


def _split(param: str, props: dict) -> tuple[str, str]:
    """(server, case id) of ``SERVER-CASEID``; server names may contain dashes (apache-event)."""
    server = props.get("server")
    if server and param.startswith(server + "-"):
        return server, param[len(server) + 1:]
    from .cases import CASES

    for cid in sorted((c.id for c in CASES), key=len, reverse=True):
        if param.endswith("-" + cid):
            return param[: -len(cid) - 1], cid
    server, _, cid = param.partition("-")
    return server, cid


_SHOWN = 160  # characters kept at each end of a long part


def request_text(case) -> str:
    """The bytes a case sends, as text: CR and LF shown as ``\\r`` ``\\n`` (a line break after each LF), other
    control and non-ASCII bytes as ``\\xNN``, a part longer than 320 characters cut in its middle, pauses in the stream as ``<read>``, ``<await-head>``..."""
    out = []
    for part in case.send:
        if isinstance(part, bytes):
            text = "".join(chr(b) if 32 <= b < 127 else {13: "\\r", 10: "\\n\n", 9: "\\t"}.get(b, f"\\x{b:02x}")
                           for b in part)
            if len(text) > 2 * _SHOWN:  # long targets and header floods: the ends tell the story
                text = f"{text[:_SHOWN]}...[{len(text) - 2 * _SHOWN} characters left out]...{text[-_SHOWN:]}"
            out.append(text)
        else:
            out.append(f"{part!r}\n")
    return "".join(out)


def catalog() -> dict[str, dict]:
    """Every conformance case by id: checklist row, title, RFC section, requirement level and request text.

    Recorded in a harness run document so its report shows what each case sent without the code.
    """
    from .cases import CASES

    return {c.id: {"row": c.row, "title": c.title, "rfc": c.rfc, "level": c.level, "request": request_text(c)}
            for c in CASES}


def rows(path: str):
    """(server, case id, properties) of every conformance case in the JUnit XML at ``path``; a skipped
    case's verdict is ``skipped`` unless it recorded one (n/a)."""
    for tc in ET.parse(path).iter("testcase"):
        m = re.match(r"test_conformance\[(.+)\]", tc.get("name", ""))
        if not m:
            continue
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        skipped = tc.find("skipped")
        if skipped is not None:
            props.setdefault("verdict", "skipped")
            props.setdefault("reasons", skipped.get("message", ""))
        server, cid = _split(m.group(1), props)
        if "kind" not in props and cid in _kinds():  # a run from before the property: today's case says
            props["kind"] = _kinds()[cid]
        yield server, cid, props


@functools.cache
def _kinds() -> dict[str, str]:
    """Case id -> kind (handling or response-rules), for runs that did not record it."""
    from .cases import CASES

    return {c.id: c.kind for c in CASES}


def main(paths: list[str]) -> None:
    """Print each server's two verdicts (tally.py), then every Warn, Fail and n/a with its reasons."""
    per: dict[str, Tally] = collections.defaultdict(Tally)
    notes = []
    for path in paths:
        for srv, cid, p in rows(path):
            v = p.get("verdict", "error")
            per[srv].add(p, v)
            if v not in ("pass", "skipped"):
                notes.append((srv, v, cid, p.get("status"), p.get("closed"), p.get("reasons", "")))
    for srv, t in per.items():
        broken = t.rules_broken
        print(f"{srv}: handling {t.describe(HANDLING)}")
        print(f"  response rules: cases {t.describe(RESPONSE_RULES)}; {len(broken)} distinct rule(s) broken")
        for key, text, n in broken:
            print(f"    {key}: {text}; seen in {n} case(s)")
    for srv, v, cid, st, cl, why in sorted(notes):
        print(f"  {srv} {v.upper():4} {cid}: status={st} closed={cl} :: {why[:300]}")


if __name__ == "__main__":
    main(sys.argv[1:])
