"""suites.conformance.runner.judge: a case is judged on what it tests. A header-level response
rule (no Date on a 400, a 405 without Allow) fails only the response-rule cases that declare it
and is recorded elsewhere; a framing error or a smuggled response still fails the case that
provoked it. The observations are built by hand, as the runner records them."""

from __future__ import annotations

from suites.conformance import rules
from suites.conformance.cases import CASES
from suites.conformance.model import HANDLING, RESPONSE_RULES
from suites.conformance.reading import Resp
from suites.conformance.runner import Observed, judge
from suites.conformance.tally import Tally, kind_of

BY_ID = {c.id: c for c in CASES}
DATE = ("date", "Mon, 01 Jan 2024 00:00:00 GMT")


def _resp(status: int, *, date: bool = True, extra: tuple = (), method: str = "GET", version: str = "1.1",
          interim: list | None = None) -> Resp:
    headers = [DATE] * date + [("content-length", "0"), *extra]
    return Resp(status, "1.1", headers, b"", interim or [], method, version)


def test_a_400_without_date_passes_the_handling_case_and_records_the_rule():
    case = BY_ID["row02-no-host"]
    assert case.kind == HANDLING and not case.rules
    j = judge(case, Observed(responses=[_resp(400, date=False)], closed=True), echo_available=True)
    assert j.verdict == "pass", j.reasons
    assert j.rule_keys == ["date"] and "400 without Date" in j.rules_seen[0].detail


def test_the_same_400_fails_the_response_rule_case():
    case = BY_ID["resp-400-date"]
    assert case.kind == RESPONSE_RULES and "date" in case.rules
    j = judge(case, Observed(responses=[_resp(400, date=False)], closed=True), echo_available=True)
    assert j.verdict == "fail" and any("400 without Date" in r for r in j.reasons)
    ok = judge(case, Observed(responses=[_resp(400)], closed=True), echo_available=True)
    assert ok.verdict == "pass" and ok.rule_keys == []


def test_a_response_case_judges_only_the_rules_it_declares():
    case = BY_ID["resp-404-date"]  # Date only: a bad Date format elsewhere is recorded, not judged
    bad_format = _resp(404, date=False, extra=(("date", "yesterday"),))
    j = judge(case, Observed(responses=[bad_format], probe="answered", probe_response=_resp(200)),
              echo_available=True)
    assert j.verdict == "pass" and j.rule_keys == ["date-format"]
    served = Observed(responses=[_resp(200)], probe="answered", probe_response=_resp(200))
    assert judge(BY_ID["resp-date-fixdate"], served, True).verdict == "pass"
    served.responses = [_resp(200, date=False, extra=(("date", "yesterday"),))]
    broken = judge(BY_ID["resp-date-fixdate"], served, True)
    assert broken.verdict == "fail" and any("not IMF-fixdate" in r for r in broken.reasons)


def test_405_without_allow_fails_only_its_own_case():
    no_allow = _resp(405, method="DELETE")
    assert judge(BY_ID["resp-405-date-allow"], Observed(responses=[no_allow]), True).verdict == "fail"
    head_then_delete = Observed(responses=[_resp(200, method="HEAD"), no_allow], probe="answered",
                                probe_response=_resp(200))
    j = judge(BY_ID["row39-head-405"], head_then_delete, True)
    assert j.verdict == "pass" and j.rule_keys == ["allow-405"]


def test_a_smuggled_extra_response_still_fails_the_case():
    case = BY_ID["row42-cl-cl"]
    j = judge(case, Observed(responses=[_resp(400, date=False)], extra=[_resp(200)], closed=True), True)
    assert j.verdict == "fail" and any("extra response" in r for r in j.reasons)
    assert j.rule_keys == ["date"]  # and the Date defect is recorded, not counted as the reason


def test_a_malformed_response_fails_the_handling_case_and_records_framing():
    case = BY_ID["row07-head-star"]
    obs = Observed(responses=[_resp(400, method="HEAD")], error="malformed response: stray bytes after a HEAD")
    j = judge(case, obs, True)
    assert case.kind == HANDLING and j.verdict == "fail" and j.reasons == [obs.error]
    assert j.rule_keys == ["framing"]


def test_rules_broken_by_the_probe_and_extra_responses_are_recorded():
    case = BY_ID["row01-get"]
    served = _resp(200, extra=(("content-type", "text/plain"),))
    obs = Observed(responses=[served], probe="answered", probe_response=_resp(200, date=False))
    j = judge(case, obs, True)
    assert j.verdict == "pass" and j.rule_keys == ["date"]


def test_http10_rules():
    te = _resp(200, version="1.0", extra=(("transfer-encoding", "chunked"),))
    assert {v.key for v in rules.violations(te)} == {"te-http10", "cl-te"}
    interim = _resp(200, version="1.0", interim=[(100, [("content-length", "0")])])
    assert {v.key for v in rules.violations(interim)} == {"1xx-http10", "cl-1xx"}


def test_every_rule_has_a_case_that_provokes_it():
    declared = {k for c in CASES for k in c.rules}
    assert set(rules.RULES) == declared  # cl-204 and cl-te through the built-in /status/204 and /stream
    assert all(c.kind == RESPONSE_RULES for c in CASES if c.rules)


def test_the_property_round_trips_and_the_tally_counts_distinct_rules():
    value = rules.encode(["date", "allow-405", "date"])
    assert value.count("date:") == 1 and rules.decode(value) == {
        "date": rules.RULES["date"].text, "allow-405": rules.RULES["allow-405"].text}
    t = Tally()
    for _ in range(200):
        t.add({"kind": HANDLING, "response_rules": rules.encode(["date"])}, "pass")
    t.add({"kind": RESPONSE_RULES, "response_rules": value}, "fail")
    t.add({"row": "39"}, "pass")  # a run from before the kind property
    assert t.counts[HANDLING]["pass"] == 200 and t.counts[RESPONSE_RULES] == {"fail": 1, "pass": 1}
    assert [(k, n) for k, _, n in t.rules_broken] == [("date", 201), ("allow-405", 1)]
    assert kind_of({"row": "responses"}) == RESPONSE_RULES and kind_of({}) == HANDLING
    assert t.describe(RESPONSE_RULES) == "pass=1 warn=0 fail=1 total=2"


def test_the_report_prints_both_verdicts(tmp_path, capsys):
    """``python -m suites.conformance.report``: handling counts, response-rule counts, each rule once with its
    case count; a case recorded before the kind property is sorted by today's case of that id."""
    from suites.conformance.report import main

    date = rules.encode(["date"])
    xml = tmp_path / "c.xml"
    xml.write_text(f"""<testsuites><testsuite>
      <testcase name="test_conformance[gunicorn-sync-row02-no-host]"><properties>
        <property name="server" value="gunicorn-sync"/><property name="kind" value="handling"/>
        <property name="verdict" value="pass"/><property name="response_rules" value="{date}"/></properties></testcase>
      <testcase name="test_conformance[gunicorn-sync-row03-host-list]"><properties>
        <property name="server" value="gunicorn-sync"/><property name="kind" value="handling"/>
        <property name="verdict" value="pass"/><property name="response_rules" value="{date}"/></properties></testcase>
      <testcase name="test_conformance[gunicorn-sync-resp-400-date]"><properties>
        <property name="server" value="gunicorn-sync"/><property name="verdict" value="fail"/>
        <property name="reasons" value="400 without Date"/></properties></testcase>
    </testsuite></testsuites>""")
    main([str(xml)])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "gunicorn-sync: handling pass=2 warn=0 fail=0 total=2"
    assert out[1] == "  response rules: cases pass=0 warn=0 fail=1 total=1; 1 distinct rule(s) broken"
    assert out[2].startswith("    date: a 2xx-4xx response carries Date") and out[2].endswith("seen in 2 case(s)")
    assert "FAIL resp-400-date" in out[3]
