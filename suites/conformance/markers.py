"""The pytest markers of a conformance case: its RFC requirement level and its family.

``pytest suites/conformance -m "must and not desync"`` selects by them. The level is
the case's RFC 2119 keyword (``Case.level``): ``must``, ``should`` or ``may``;
RECOMMENDED is ``should`` (RFC 2119 §3: "SHOULD ... or the adjective RECOMMENDED").
The family groups the checklist rows of docs/conformance.md the way cases.py does
(rows 1-8, 9-14, ... and the named families); ``desync`` also marks every case,
whatever its row, that hides a request behind the framing boundary (``Case.smuggle``).
This module is pure data, light enough for the pytest plugin to import.
"""

from __future__ import annotations

import pytest

from .model import MAY, MUST, RECOMMENDED, SHOULD, Case

#: Case.level -> marker name
LEVEL_MARKERS: dict[str, str] = {MUST: "must", SHOULD: "should", RECOMMENDED: "should", MAY: "may"}

#: marker name -> what it selects (registered by suites/plugin.py, so --strict-markers passes)
LEVELS: dict[str, str] = {
    "must": "an RFC MUST / MUST NOT requirement (a deviation fails)",
    "should": "an RFC SHOULD / RECOMMENDED requirement (a deviation warns)",
    "may": "an RFC MAY (a lenient acceptance warns)",
}

#: family marker -> what it selects
FAMILIES: dict[str, str] = {
    "baseline": "conformance row 1: a plain GET, HEAD, echo and POST",
    "host": "conformance rows 2-5: missing, repeated and invalid Host",
    "request_line": "conformance rows 6-12 and 14: target forms and bytes, whitespace, version, target length",
    "methods": "conformance row 13 and the methods family: method case, 501, 405 with Allow, TRACE, CONNECT",
    "fields": "conformance rows 15-24: line endings, field names and values, header limits",
    "framing": "conformance rows 25-32, 37, 43 and te-forms: Content-Length, Transfer-Encoding, incomplete "
               "bodies, bodies on GET",
    "chunked": "conformance rows 33-36: chunk sizes, chunk data, extensions, trailers",
    "expect": "conformance row 38: Expect: 100-continue",
    "responses": "conformance row 39 and the responses family: the response rules (Date, Allow, bodiless "
                 "responses, no 1xx or Transfer-Encoding to HTTP/1.0, ...), judged in these cases only",
    "keepalive": "persistence and pipelining (conformance rows 40-41) and suites/test_keepalive.py",
    "desync": "request smuggling: conformance row 42, the desync family and every case hiding a request "
              "behind the framing boundary",
    "robustness": "conformance row 44 and the exhaustion family: garbage, other protocols, resource exhaustion",
    "upgrade": "the upgrade family: never a 101",
}

#: checklist row (or named family) -> family marker
ROW_FAMILY: dict[str, str] = {
    "1": "baseline",
    **{str(r): "host" for r in range(2, 6)},
    **{str(r): "request_line" for r in (6, 7, 8, 9, 10, 11, 12, 14)},
    "13": "methods", "methods": "methods",
    **{str(r): "fields" for r in range(15, 25)},
    **{str(r): "framing" for r in (*range(25, 33), 37, 43)}, "te-forms": "framing",
    **{str(r): "chunked" for r in range(33, 37)},
    "38": "expect",
    "39": "responses", "responses": "responses",
    "40": "keepalive", "41": "keepalive",
    "42": "desync", "desync": "desync",
    "44": "robustness", "exhaustion": "robustness",
    "upgrade": "upgrade",
}


def marker_names(case: Case) -> list[str]:
    """The level marker, then the family marker(s), of ``case``."""
    names = [LEVEL_MARKERS[case.level], ROW_FAMILY[case.row]]
    if case.smuggle and "desync" not in names:
        names.append("desync")
    return names


def marks(case: Case) -> list[pytest.MarkDecorator]:
    """``marker_names(case)`` as pytest marks, for ``pytest.param(..., marks=...)``; a ``desync``
    case is also an ``attack`` (suites/plugin.py): through a shared front end a smuggled request
    can be answered to another user, so it runs against a non-loopback target only when asked."""
    names = marker_names(case)
    return [getattr(pytest.mark, name) for name in names] + ([pytest.mark.attack] if "desync" in names else [])
