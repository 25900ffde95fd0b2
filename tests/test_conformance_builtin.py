"""suites.conformance.runner.missing_builtin: a case is not applicable, not failed, on a server
without the built-in app's /echo and /bytes/N (a user's deployment), only when that is all that
went wrong. The observations are built by hand, as the runner records them."""

from __future__ import annotations

from suites.conformance.cases import CASES
from suites.conformance.reading import Resp
from suites.conformance.runner import Observed, judge, missing_builtin

BY_ID = {c.id: c for c in CASES}


def _resp(status: int, *, close: bool = False, interim: tuple[int, ...] = ()) -> Resp:
    headers = [("date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("content-length", "0")]
    return Resp(status, "1.1", headers + [("connection", "close")] * close, b"", [(c, []) for c in interim],
                "GET", "1.1")


def test_a_404_where_the_echo_mirror_would_answer_is_not_applicable():
    case = BY_ID["row38-expect-100-case"]
    obs = Observed(responses=[_resp(404, interim=(100,))])
    assert judge(case, obs, echo_available=False).verdict == "fail"
    why = missing_builtin(case, obs)
    assert why is not None and "answered 404" in why and "/echo" in why


def test_every_answer_of_a_pipeline_can_stand_for_the_mirror():
    case = BY_ID["row41-pipeline-10"]
    assert missing_builtin(case, Observed(responses=[_resp(404) for _ in range(10)])) is not None
    assert missing_builtin(case, Observed(responses=[_resp(404) for _ in range(9)])) is None  # one lost: judged


def test_only_the_answers_that_stand_for_a_builtin_are_replaced():
    case = BY_ID["row42-cl-underscore-smuggle"]  # POST /echo, then a GET of a missing page: [2xx, 404] is right
    assert missing_builtin(case, Observed(responses=[_resp(404), _resp(404)])) is not None


def test_what_the_case_tests_is_still_judged():
    keepalive = BY_ID["row32-te-http10-keepalive"]  # the close is due whatever the status
    assert missing_builtin(keepalive, Observed(responses=[_resp(404)], closed=False)) is None
    assert missing_builtin(keepalive, Observed(responses=[_resp(404, close=True)], closed=True)) is not None
    smuggled = Observed(responses=[_resp(404)], extra=[_resp(200)])
    assert missing_builtin(BY_ID["row38-expect-100-case"], smuggled) is None
    assert missing_builtin(BY_ID["row38-expect-100-case"], Observed(responses=[_resp(500, interim=(100,))])) is None


def test_a_case_on_other_paths_is_never_excused():
    case = BY_ID["row39-head-404"]  # HEAD /nope: its 404 is the expected answer, nothing to excuse
    assert missing_builtin(case, Observed(responses=[_resp(200)])) is None
    root = next(c for c in CASES if not any(isinstance(p, bytes) and (b"/echo" in p or b"/bytes/" in p)
                                            for p in c.send) and any("2xx" in o.statuses for o in c.expect))
    assert missing_builtin(root, Observed(responses=[_resp(404)])) is None


def test_a_missing_status_route_stands_for_the_status_the_case_expects():
    case = BY_ID["resp-204-no-cl"]  # the built-in /status/204: a static server answers 404
    why = missing_builtin(case, Observed(responses=[_resp(404)]))
    assert why is not None and "/status/204" in why
    assert missing_builtin(case, Observed(responses=[_resp(200)])) is None  # a 200 where the 204 is due: judged
