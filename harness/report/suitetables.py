"""The report's tables of the suites: 4 keep-alive and slow clients, 5 thread safety, 6 conformance, 7 suites.

Each reads the test cases' ``record_property`` figures (text, as JUnit stores them) of the
suites in ``suites/`` (docs/suites.md, docs/conformance.md); docs/report.md explains every column.
"""

from __future__ import annotations

from typing import Iterable

from suites.conformance.model import HANDLING, RESPONSE_RULES
from suites.conformance.tally import Tally

from ..runview import Case
from .sections import Section, Sheet, Table, align, short_test
from .text import DASH, clip, fmt_count, fmt_pct, fmt_seconds, fmt_sig, num

__all__ = ["availability", "threadsafety", "conformance", "suites", "row_key"]

_ATTACK_ORDER = ("slowloris", "slowbody", "slowread", "silent")
_LEVEL_ORDER = ("below", "above", "capacity", "deferred", "accepted", "running-server")
_TS_FIGURES = (("requests", "requests"), ("mismatches", "mismatches"), ("lost_updates", "lost updates"),
               ("collateral_failures", "collateral failures"), ("problems", "crosstalk problems"),
               ("wsgi_multithread", "wsgi.multithread"))


def _slow_key(props) -> tuple[str, str, str] | None:
    attack, level = props.get("attack"), props.get("level")
    if not attack or not level:
        return None
    n = props.get("connections") or "?"
    return attack, level, f"{attack} {level} ({n})"


def _order(values: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda v: (preferred.index(v) if v in preferred else len(preferred), v))


def _failed_mark(case: Case) -> str:
    return " (test failed)" if case.failed else ""


def availability(sheet: Sheet) -> Section:
    """Table 4: availability and recovery during each slow-client attack; idle and busy keep-alive."""
    run = sheet.run
    sec = Section("availability", "4. Keep-alive and slow-client availability")
    servers = [s for s in run.servers if run.suite_cell(s, "slowclient") or run.suite_cell(s, "keepalive")]
    columns: dict[tuple[str, str], str] = {}
    for s in servers:
        for c in run.cases(s, "slowclient"):
            k = _slow_key(c.properties)
            if k:
                columns.setdefault((k[0], k[1]), k[2])
    keys = sorted(columns, key=lambda k: (_order([x[0] for x in columns], _ATTACK_ORDER).index(k[0]),
                                          _order([x[1] for x in columns], _LEVEL_ORDER).index(k[1])))
    headers = ["server", *(columns[k] for k in keys), "idle keep-alive: new client", "idle conns answered",
               "busy keep-alive: new clients answered"]
    rows, rec_rows = [], []
    for s in servers:
        found: dict[tuple[str, str], Case] = {}
        for c in run.cases(s, "slowclient"):
            k = _slow_key(c.properties)
            if k:
                found[(k[0], k[1])] = c
        missing = sheet.suite_missing(s, "slowclient")
        avail, rec = [], []
        for k in keys:
            c = found.get(k)
            if c is None or c.outcome == "skipped":
                text = "skipped" if c is not None else missing or "not run"
                avail.append(text)
                rec.append(text)
                continue
            avail.append(fmt_pct(num(c.properties.get("availability"))) + _failed_mark(c))
            rec.append(fmt_seconds(c.properties.get("recovery_s")))
        outcome, answered = _idle_keepalive(sheet, s)
        rows.append([s, *avail, outcome, answered, _busy_keepalive(sheet, s)])
        rec_rows.append([s, *rec])
    caption = ("Slow clients (suites/test_slowclient.py): each column is one bounded attack (connections in "
               "brackets) against the server configured with 10 workers; availability = the fraction of probe "
               "clients (a new connection with GET / every 0.2 s during the attack) answered with a 2xx within 2 s. "
               "below = capacity - 10%, above = 4x capacity, both with RequestReadTimeout header=1 body=1 and "
               "Timeout 1 (slowread: Timeout 1); capacity = as many slow clients as workers with the read timeout "
               "off; silent = connections that never send a byte, deferred = AcceptFilter http data "
               "(TCP_DEFER_ACCEPT: not accepted until data arrives), accepted = AcceptFilter http none; "
               "running-server = the server as configured by the matrix. (test failed): the suite's "
               "per-MPM expectation was not met. Idle keep-alive (suites/test_keepalive.py): 12 idle keep-alive "
               "connections on 4 workers, then a new client: served (with its latency) or starved (no answer "
               "within 1.5 s); idle conns answered = how many of the 12 got their first answer. Busy keep-alive: "
               "40 clients each send a request every second on their own connection (20 workers at most), then 16 "
               "new clients 0.25 s apart; the share answered within 2 s, with how many of the 40 were answered and "
               "the server's process count.")
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server",)),
                            "neither the slowclient nor the keepalive suite ran"))
    if keys:
        rh = ["server", *(columns[k] for k in keys)]
        sec.tables.append(Table("Recovery after each slow-client attack: seconds from the attack's end (every attack "
                                "socket closed) to the first probe answered within 2 s (>5.0 s: none within the "
                                "suite's limit).", rh, rec_rows, align(rh, left=("server",))))
    return sec


def _keepalive_case(sheet: Sheet, server: str, test: str, figure: str) -> tuple[Case | None, str]:
    """The keep-alive suite's case of ``test`` for ``server``, when it recorded ``figure``:
    (case, "") or (None, why there is nothing to show)."""
    missing = sheet.suite_missing(server, "keepalive")
    if missing:
        return None, missing
    for c in sheet.run.cases(server, "keepalive"):
        if not c.name.startswith(test):
            continue
        if c.outcome == "skipped" or c.properties.get(figure) in (None, ""):
            return None, "not measured"
        return c, ""
    return None, "not run"


def _idle_keepalive(sheet: Sheet, server: str) -> tuple[str, str]:
    c, why = _keepalive_case(sheet, server, "test_idle_keepalive_capacity", "new_client")
    if c is None:
        return why, DASH
    props = c.properties
    lat = props.get("new_client_latency_ms")
    lat_text = (fmt_sig(num(lat), 2) + " ms") if num(lat) is not None else (f"{lat} ms" if lat else "")
    text = (f"{props['new_client']} ({lat_text})" if lat_text else props["new_client"]) + _failed_mark(c)
    answered, idle = props.get("idle_connections_answered"), props.get("idle_connections")
    return text, (f"{answered}/{idle}" if answered is not None and idle is not None else DASH)


def _busy_keepalive(sheet: Sheet, server: str) -> str:
    """The busy keep-alive scenario's cell: new clients answered, clients answered, processes."""
    c, why = _keepalive_case(sheet, server, "test_busy_keepalive_clients", "availability")
    if c is None:
        return why
    props = c.properties
    return (f"{fmt_pct(num(props.get('availability')))} ({props.get('busy_clients_answered')}/"
            f"{props.get('busy_clients')} clients, {props.get('processes')} processes)") + _failed_mark(c)


def threadsafety(sheet: Sheet) -> Section:
    """Table 5: the thread-safety suite's corruption counts per server and test."""
    run = sheet.run
    sec = Section("threadsafety", "5. Thread safety")
    headers = ["server", "test", "outcome", *(h for _, h in _TS_FIGURES)]
    rows = []
    for s in run.servers:
        if run.suite_cell(s, "threadsafety") is None:
            continue
        missing = sheet.suite_missing(s, "threadsafety", reason=True)
        if missing:
            rows.append([s, "(suite)", missing, *([DASH] * len(_TS_FIGURES))])
            continue
        for c in run.cases(s, "threadsafety"):
            figs = []
            for key, _ in _TS_FIGURES:
                v = c.properties.get(key)
                if v is None:
                    figs.append(DASH)
                elif key == "wsgi_multithread":
                    figs.append(str(v).lower())
                else:
                    figs.append(fmt_count(v))
            rows.append([s, short_test(c.name or "?"), c.outcome or "?", *figs])
    caption = ("Thread safety (suites/test_threadsafety.py), per server and test: requests = requests the test sent "
               "(concurrent keep-alive clients); mismatches = answers that carried another request's id (an "
               "application's module-global 'current request'); lost updates = increments lost by an unlocked "
               "read-modify-write counter; collateral failures = in-flight requests that died with a crashing "
               "request's process; crosstalk problems = responses that did not match their own request (the "
               "server's own thread safety). demo_* tests pass when they SHOW corruption on a threaded MPM (and "
               "none on prefork); control_* tests run the same handlers made safe and must show zero everywhere.")
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server", "test", "outcome")),
                            "the threadsafety suite did not run"))
    return sec


def row_key(row: str) -> tuple[int, int, str]:
    """Sort key of a conformance category: checklist rows by number, then case families by name."""
    return (0, int(row), "") if row.isdigit() else (1, 0, row)


def _verdict(case: Case) -> str:
    """A conformance case's verdict: pass, warn, fail or n/a as recorded; a failed test without one is a fail."""
    verdict = case.properties.get("verdict")
    if verdict in ("pass", "warn", "fail", "n/a"):
        return verdict
    return "fail" if case.outcome == "failed" else "other"


def _counts(c) -> str:
    """``pass/warn/fail`` (and ``+N n/a``, ``+N not judged``) of one kind's verdict counter."""
    text = f"{c['pass']}/{c['warn']}/{c['fail']}"
    text += f" +{c['n/a']} n/a" if c["n/a"] else ""
    return text + (f" +{c['other']} not judged" if c["other"] else "")


def conformance(sheet: Sheet) -> Section:
    """Table 6: each server's two verdicts (handling cases; response rules broken), per checklist row,
    the response rules with the cases each was seen in, and every warn and fail with its reasons."""
    run = sheet.run
    sec = Section("conformance", "6. Conformance")
    servers = [s for s in run.servers if run.suite_cell(s, "conformance") is not None]
    tallies: dict[str, Tally] = {}
    per_row: dict[str, dict[str, dict[str, int]]] = {}
    bad: list[list[str]] = []
    for s in servers:
        t = tallies.setdefault(s, Tally())
        for c in run.cases(s, "conformance"):
            props = c.properties
            verdict = _verdict(c)
            t.add(props, verdict)
            row = props.get("row") or "?"
            cell = per_row.setdefault(row, {}).setdefault(s, {"pass": 0, "warn": 0, "fail": 0, "other": 0})
            cell[verdict if verdict in cell else "other"] += 1
            if verdict != "pass":
                reasons = props.get("reasons") or c.message or ""
                bad.append([s, run.case_id(s, c.name or "?") or (c.name or "?"),
                            verdict if verdict != "other" else (c.outcome or "?"),
                            props.get("status") or DASH, clip(reasons, 300) or DASH, props.get("rfc") or DASH])
    headers = ["server", "pass", "warn", "fail", "n/a", "not judged", "handling cases",
               "response-rule cases pass/warn/fail", "response rules broken", "suite"]
    rows = []
    for s in servers:
        t = tallies[s]
        n = t.counts[HANDLING]
        broken = t.rules_broken
        rows.append([s, *(str(n[k]) for k in ("pass", "warn", "fail", "n/a", "other")), str(sum(n.values())),
                     _counts(t.counts[RESPONSE_RULES]) if t.counts[RESPONSE_RULES] else DASH,
                     (f"{len(broken)}: " + ", ".join(f"{k} ({m})" for k, _, m in broken)) if broken else "0",
                     sheet.suite_missing(s, "conformance") or run.suite_cell(s, "conformance").status or "?"])
    sec.tables.append(Table(
        "HTTP/1.1 conformance (suites/conformance): one data-driven case per request, judged against its RFC 9110/9112 "
        "rule. Two verdicts per server. Handling (pass ... handling cases): how each request was handled (statuses, "
        "close, the echo mirror's parse, smuggled responses, responses that break the stream's framing); Pass = the "
        "expected outcome; Warn = a lenient outcome the RFC allows but does not prefer, or a SHOULD not met (the "
        "test passes with a warning); Fail = a MUST broken (the test fails); n/a = the case's premise does not hold "
        "on that server; not judged = the case errored or was skipped before a verdict. Response rules: the rules "
        "every response obeys (Date, Allow, no Content-Length on a 1xx, ...) are judged only in the response-rule "
        "cases (rows 39 and responses) and recorded in the others; response rules broken = how many distinct rules "
        "the server broke, each with the number of cases it was seen in.", headers, rows,
        align(headers, left=("server", "response-rule cases pass/warn/fail", "response rules broken", "suite")),
        "the conformance suite did not run"))
    judged = [s for s in servers if run.cases(s, "conformance")]
    if judged:
        sec.tables.append(_per_row(per_row, judged))
        sec.tables.append(_rules_table(tallies, judged))
    bh = ["server", "case", "verdict", "status", "reasons", "RFC"]
    sec.tables.append(Table(
        "Every Warn and Fail (and n/a): the case id (suites/conformance/cases.py), the status code(s) the server "
        "answered, and why the case was not a Pass.", bh, bad, align(bh, left=bh), "no Warn and no Fail"))
    return sec


def _rules_table(tallies: dict[str, Tally], judged: list[str]) -> Table:
    """Each response rule broken (rows) x server (columns): the number of cases it was seen in."""
    texts: dict[str, str] = {}
    for s in judged:
        texts.update({k: text for k, text, _ in tallies[s].rules_broken})
    headers = ["rule", "what it says", *judged]
    rows = [[k, texts[k], *(str(tallies[s].seen[k]) if tallies[s].seen[k] else DASH for s in judged)]
            for k in sorted(texts)]
    return Table(
        "Response rules broken (suites/conformance/rules.py): per rule and server, the number of cases in which a "
        "response broke it (recorded in every case; it fails only the response-rule cases that declare it, and "
        "'framing' also fails the case that provoked it). A run recorded before the response_rules property "
        "shows none.",
        headers, rows, align(headers, left=("rule", "what it says")), "no response rule broken")


def _per_row(per_row: dict[str, dict[str, dict[str, int]]], judged: list[str]) -> Table:
    """Pass/warn/fail per checklist row or case family (rows) and server (columns)."""
    mh = ["category", *judged]
    mrows = []
    for row in sorted(per_row, key=row_key):
        label = f"row {row}" if row.isdigit() else row
        cells = []
        for s in judged:
            n = per_row[row].get(s)
            if not n:
                cells.append(DASH)
                continue
            text = f"{n['pass']}/{n['warn']}/{n['fail']}"
            if n["other"]:
                text += f" (+{n['other']} not judged)"
            cells.append(text)
        mrows.append([label, *cells])
    return Table(
        "Pass/warn/fail per category: 'row N' is row N of the checklist in docs/conformance.md (the rule and its RFC "
        "section), other names are case families (desync, te-forms, upgrade, ...).", mh, mrows,
        align(mh, left=("category",)))


def suites(sheet: Sheet) -> Section:
    """Table 7: every suite's status and test counts per server, with the reason."""
    run = sheet.run
    sec = Section("suites", "7. Suites")
    headers = ["server", "suite", "status", "passed", "failed", "error", "skipped", "reason"]
    rows = []
    for s in run.servers:
        for suite in run.suites:
            c = run.suite_cell(s, suite)
            if c is None:
                continue
            rows.append([s, suite, c.status or "?", *(str(c.count(k)) for k in ("passed", "failed", "error", "skipped")),
                         sheet.suite_reason(c)])
    sec.tables.append(Table(
        "Each suite (pytest, run by the harness against the server with --server) per server: test counts from "
        "its JUnit XML. ok = every test passed or skipped; failed = a test failed (a finding about the server); "
        "error = the suite run itself failed or timed out; skipped = the server is unavailable here.",
        headers, rows, align(headers, left=("server", "suite", "status", "reason")), "no suite ran"))
    return sec
