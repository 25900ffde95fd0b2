"""Tabulate a conformance JUnit XML: ``python -m suites.conformance.report FILE.xml [...]``.

Prints, per server, the Pass/Warn/Fail counts (and n/a: cases whose premise does
not hold on that server), the count per family (row), and every Warn, Fail and n/a
with its status and reasons.
"""

from __future__ import annotations

import collections
import re
import sys
import xml.etree.ElementTree as ET


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
    for tc in ET.parse(path).iter("testcase"):
        m = re.match(r"test_conformance\[(.+)\]", tc.get("name", ""))
        if not m:
            continue
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        skipped = tc.find("skipped")
        if skipped is not None:
            props.setdefault("verdict", "skipped")
            props.setdefault("reasons", skipped.get("message", ""))
        yield (*_split(m.group(1), props), props)


def main(paths: list[str]) -> None:
    per = collections.defaultdict(collections.Counter)
    fam = collections.defaultdict(collections.Counter)
    notes = []
    for path in paths:
        for srv, cid, p in rows(path):
            v = p.get("verdict", "error")
            per[srv][v] += 1
            fam[srv][p.get("row", "?")] += 1
            if v not in ("pass", "skipped"):
                notes.append((srv, v, cid, p.get("status"), p.get("closed"), p.get("reasons", "")))
    for srv, c in per.items():
        na = f" n/a={c['n/a']}" if c["n/a"] else ""
        skipped = f" skipped={c['skipped']}" if c["skipped"] else ""
        print(f"{srv}: pass={c['pass']} warn={c['warn']} fail={c['fail']}{na}{skipped} total={sum(c.values())}")
    for srv, v, cid, st, cl, why in sorted(notes):
        print(f"  {srv} {v.upper():4} {cid}: status={st} closed={cl} :: {why[:300]}")


if __name__ == "__main__":
    main(sys.argv[1:])
