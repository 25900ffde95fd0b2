"""The suite runner: JUnit XML parsed into per-suite verdicts, a real run, and a run that overruns its deadline."""

from __future__ import annotations

import textwrap

import pytest

from harness.suiterun import parse_junit, run_suites, suite_of

XML = textwrap.dedent("""\
    <?xml version="1.0" encoding="utf-8"?>
    <testsuites><testsuite name="pytest" tests="5">
      <testcase classname="suites.conformance.test_conformance" name="test_conformance[event-host-missing]" time="0.1">
        <properties><property name="verdict" value="pass"/><property name="rfc" value="RFC 9112 3.2"/></properties>
      </testcase>
      <testcase classname="suites.conformance.test_conformance" name="test_conformance[event-te-cl]" time="0.2">
        <properties><property name="verdict" value="fail"/></properties>
        <failure message="expected 400, got 200">trace</failure>
      </testcase>
      <testcase classname="suites.test_keepalive" name="test_idle_keepalive_capacity[event]" time="1.5">
        <properties><property name="new_client" value="served"/></properties>
      </testcase>
      <testcase classname="suites.test_slowclient" name="test_x[event]" time="0.0">
        <skipped message="needs a server the suite can configure"/>
      </testcase>
      <testcase classname="suites.test_slowclient" name="test_y[event]" time="0.3">
        <error message="fixture failed"/>
      </testcase>
    </testsuite></testsuites>
    """)


def test_suite_of_maps_class_names_and_files():
    assert suite_of("suites.conformance.test_conformance") == "conformance"
    assert suite_of("suites.test_keepalive") == "keepalive"
    assert suite_of("x", "suites/test_threadsafety.py") == "threadsafety"
    assert suite_of("tests.test_loadgen") is None


def test_parse_junit_counts_outcomes_and_keeps_properties(tmp_path):
    path = tmp_path / "s.xml"
    path.write_text(XML)
    res = parse_junit(path, ["conformance", "keepalive", "slowclient", "threadsafety"])
    conf = res["conformance"]
    assert conf.counts == {"passed": 1, "failed": 1, "error": 0, "skipped": 0}
    assert conf.status == "failed"
    failed = [c for c in conf.cases if c["outcome"] == "failed"][0]
    assert failed["message"] == "expected 400, got 200" and failed["properties"] == {"verdict": "fail"}
    assert res["keepalive"].status == "ok" and res["keepalive"].cases[0]["properties"]["new_client"] == "served"
    assert res["slowclient"].counts == {"passed": 0, "failed": 0, "error": 1, "skipped": 1}
    assert res["slowclient"].status == "failed"
    assert res["threadsafety"].status == "error" and res["threadsafety"].reason == "no test ran"
    assert conf.duration == pytest.approx(0.3)


def test_run_suites_against_a_launched_server(tmp_path):
    res = run_suites("event", ["smoke"], xml_path=tmp_path / "s.xml", sets={"ThreadsPerChild": 4},
                     workers=1, timeout=120, log_path=tmp_path / "s.log")
    smoke = res["smoke"]
    assert smoke.status == "ok", (smoke.reason, (tmp_path / "s.log").read_text()[-2000:])
    assert smoke.counts["passed"] >= 1 and smoke.counts["failed"] == 0
    # ids name the server, never its port: the same from run to run
    assert [c["name"] for c in smoke.cases] == ["test_get_root_answers_with_date[event]"]


def test_a_suite_run_past_its_deadline_is_killed_and_recorded(tmp_path):
    res = run_suites("event", ["slowclient"], xml_path=tmp_path / "s.xml", workers=1, timeout=3)
    assert res["slowclient"].status == "error"
    assert "did not finish within 3 s" in res["slowclient"].reason
