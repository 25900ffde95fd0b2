"""Tabulate a conformance JUnit XML: ``python -m suites.conformance.report FILE.xml [...]``.

Prints, per server, the Pass/Warn/Fail counts, the count per family (row),
and every Warn and Fail with its status and reasons.
"""

from __future__ import annotations

import collections
import re
import sys
import xml.etree.ElementTree as ET


def rows(path: str):
    for tc in ET.parse(path).iter("testcase"):
        m = re.match(r"test_conformance\[([^-\]]+)-(.+)\]", tc.get("name", ""))
        if not m:
            continue
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        yield m.group(1), m.group(2), props


def main(paths: list[str]) -> None:
    per = collections.defaultdict(collections.Counter)
    fam = collections.defaultdict(collections.Counter)
    notes = []
    for path in paths:
        for srv, cid, p in rows(path):
            v = p.get("verdict", "error")
            per[srv][v] += 1
            fam[srv][p.get("row", "?")] += 1
            if v != "pass":
                notes.append((srv, v, cid, p.get("status"), p.get("closed"), p.get("reasons", "")))
    for srv, c in per.items():
        print(f"{srv}: pass={c['pass']} warn={c['warn']} fail={c['fail']} total={sum(c.values())}")
    for srv, v, cid, st, cl, why in sorted(notes):
        print(f"  {srv} {v.upper():4} {cid}: status={st} closed={cl} :: {why[:300]}")


if __name__ == "__main__":
    main(sys.argv[1:])
