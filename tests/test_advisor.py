"""The MPM advisor: every rule on synthetic measurements, sizing, workload input, run documents, published
pages (harness.published), output, CLI.

Everything but the last test runs without a server: measurements are synthetic
(figures of the order this machine measures: hello ~5-10k req/s, a prefork
child ~3 MiB PSS, worker/event ~25 MiB for two processes). The last test runs
the advisor once, briefly, on a tiny prefork and checks what it wrote, not a
timing.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from harness import advisor as adv
from harness.advice_rules import (IDLE_ANSWERED_MIN, KEEPALIVE_MANY, MEMORY_TIE_MIB, RULES, SHORT_KEEPALIVE,
                                  SLOW_CLIENT_RRT, TIE, AdviceError, Measurement, Workload, event_factor,
                                  projected_pss, pss_model, recommend, size, throughput_band)
from harness.published import PageError, read_page
from harness.report.text import fmt_sig
from harness.results import SCHEMA, SCHEMA_VERSION, write_json_atomic
from servers.config import load_config

# -- synthetic measurements -------------------------------------------------------------------------


def prefork(rps=5000.0, pss=150.0, processes=50, **kw) -> Measurement:  # no USS: the proportional fallback
    return Measurement("prefork", "prefork", processes=processes, connections=50, rps=rps, cpu_us_per_request=160,
                       p99_ms=40, pss_peak_mib=pss, rss_peak_mib=pss * 6, **kw)


def worker(rps=9000.0, pss=26.0, cpu=70.0, **kw) -> Measurement:
    return Measurement("worker", "worker", processes=2, connections=50, rps=rps, cpu_us_per_request=cpu,
                       p99_ms=25, pss_peak_mib=pss, **kw)


def event(rps=7000.0, pss=25.0, cpu=120.0, **kw) -> Measurement:
    return Measurement("event", "event", processes=2, connections=50, rps=rps, cpu_us_per_request=cpu,
                       p99_ms=24, pss_peak_mib=pss, **kw)


def idle(n: int, fraction: float = 1.0, kib: float = 2.0) -> dict:
    return {"idle_connections": n, "idle_answered_fraction": fraction, "pss_per_idle_conn_kib": kib}


def all3(**over) -> dict[str, Measurement]:
    ms = {"prefork": prefork(), "worker": worker(), "event": event()}
    ms.update(over)
    return ms


def rejected(rec) -> dict[str, str]:
    return {a.mpm: a.why for a in rec.rejected}


# -- rule 1: thread-unsafe ----------------------------------------------------------------------------


def test_a_non_thread_safe_app_gets_prefork_even_when_threads_measure_faster():
    w = Workload(thread_safe="no", concurrency=20)
    rec = recommend(w, all3(prefork=prefork(rps=2000, pss=60, processes=20)))
    assert (rec.mpm, rec.rule) == ("prefork", "thread-unsafe")
    assert set(rejected(rec)) == {"worker", "event"}
    assert all("threads" in why for why in rejected(rec).values())
    assert rec.sizing.directives["MaxRequestWorkers"] == 20
    assert any("2,000 req/s" in e for e in rec.evidence)


def test_unknown_thread_safety_is_treated_as_unsafe_and_said_so():
    rec = recommend(Workload(thread_safe="unknown", concurrency=10), all3())
    assert rec.rule == "thread-unsafe" and rec.mpm == "prefork"
    assert any("treated as NOT thread-safe" in x for x in rec.warnings)
    assert not any("treated as NOT" in x for x in recommend(Workload(thread_safe="no"), all3()).warnings)


def test_prefork_within_the_memory_budget_keeps_its_size():
    w = Workload(thread_safe="no", concurrency=20, memory_budget_mib=100)
    rec = recommend(w, {"prefork": prefork(pss=63, processes=20)})
    assert rec.sizing.workers == 20
    assert any("fits the 100 MiB budget" in e for e in rec.evidence)
    assert not any(x.startswith("memory:") for x in rec.warnings)


def test_prefork_over_the_budget_is_sized_down_and_the_shortfall_named():
    # 20 children + parent measured at 63 MiB: 3 MiB per process; a 48 MiB budget holds 16 processes = 15 children
    w = Workload(thread_safe="no", concurrency=20, memory_budget_mib=48)
    rec = recommend(w, {"prefork": prefork(pss=63, processes=20)})
    assert rec.mpm == "prefork"
    assert rec.sizing.directives["MaxRequestWorkers"] == 15 and rec.sizing.directives["ServerLimit"] == 15
    memory = next(x for x in rec.warnings if x.startswith("memory:"))
    assert "~63 MiB" in memory and "48 MiB" in memory and "short by 15 MiB" in memory
    assert "MaxRequestWorkers 15" in memory
    assert "sized down to 15" in rec.decision
    # no USS measured: the proportional fallback, and the output says the smaller size is a projection
    assert "projected, not measured" in memory and "proportionally" in memory and "no USS" in memory
    assert "projected, not measured" in rec.decision


def test_a_budget_below_one_child_says_so():
    rec = recommend(Workload(thread_safe="no", concurrency=10, memory_budget_mib=5),
                    {"prefork": prefork(pss=33, processes=10)})
    assert rec.sizing.workers == 1
    assert any("even one prefork child" in x for x in rec.warnings)
    ok = recommend(Workload(thread_safe="no", concurrency=10, memory_budget_mib=20),
                   {"prefork": prefork(pss=33, processes=10)})
    assert not any("even one prefork child" in x for x in ok.warnings)


def test_prefork_memory_is_projected_as_shared_plus_private_per_child():
    # this machine: 66.7 MiB PSS with 20 children, ~145 MiB with 50: ~14.5 MiB shared, ~2.6 MiB private per child.
    # One child fewer saves its private memory (USS), not a 21st of the whole tree.
    m = prefork(pss=66.7, processes=20, uss_per_process_mib=2.61)
    model = pss_model(m)
    assert model.private and model.base == pytest.approx(14.5) and model.per == 2.61
    assert projected_pss(m, 20) == 66.7  # the measured size: the measurement itself
    assert projected_pss(m, 50) == pytest.approx(145, abs=0.5)
    assert projected_pss(m, 14) == pytest.approx(51.04, abs=0.01)  # over 48: 14 children do not fit
    rec = recommend(Workload(thread_safe="no", concurrency=20, memory_budget_mib=48), {"prefork": m})
    assert rec.sizing.directives["MaxRequestWorkers"] == 12  # 14.5 + 12 x 2.61 = 45.8 <= 48 < 48.4
    assert projected_pss(m, 12) <= 48 < projected_pss(m, 13)
    memory = next(x for x in rec.warnings if x.startswith("memory:"))
    assert "projected, not measured" in memory and "private (USS) per child" in memory
    assert "from 66.7 MiB measured with 20 children" in memory
    # the proportional model would have said 14 children fit (66.7 x 15 / 21 = 47.6 MiB): wrong
    proportional = prefork(pss=66.7, processes=20)
    assert projected_pss(proportional, 14) == pytest.approx(47.64, abs=0.01)
    assert recommend(Workload(thread_safe="no", concurrency=20, memory_budget_mib=48),
                     {"prefork": proportional}).sizing.workers == 14


def test_memory_is_projected_proportionally_only_without_uss():
    # measured with 10 children at 33 MiB (3 MiB each incl. the parent); the workload needs 30 children
    w = Workload(thread_safe="no", concurrency=30, memory_budget_mib=60)
    rec = recommend(w, {"prefork": prefork(pss=33, processes=10)})
    assert not pss_model(prefork(pss=33, processes=10)).private
    assert projected_pss(prefork(pss=33, processes=10), 30) == pytest.approx(93)
    assert rec.sizing.directives["MaxRequestWorkers"] == 19  # floor(60 / 3) - 1
    assert any("projected, not measured" in e and "proportionally" in e for e in rec.evidence)
    # with USS: 33 - 10 x 2 = 13 MiB shared, 2 MiB per child: 73 MiB for 30, 23 children fit 60 MiB
    uss = prefork(pss=33, processes=10, uss_per_process_mib=2.0)
    assert projected_pss(uss, 30) == pytest.approx(73)
    assert recommend(w, {"prefork": uss}).sizing.workers == 23
    assert projected_pss(prefork(pss=33, processes=None), 30) == 33  # process count unknown: not projected


def test_prefork_not_measured_leaves_the_budget_unchecked_with_a_warning():
    rec = recommend(Workload(thread_safe="no", memory_budget_mib=64), {})
    assert rec.mpm == "prefork" and rec.rule == "thread-unsafe"
    assert any("not measured validly" in x for x in rec.warnings)
    assert any("budget is unchecked" in x for x in rec.warnings)


def test_prefork_with_idle_and_slow_clients_warns_and_shortens_the_timeouts():
    w = Workload(thread_safe="no", concurrency=20, keepalive_share=0.5, slow_clients=True)
    rec = recommend(w, {"prefork": prefork(processes=30, **idle(10))})
    d = rec.sizing.directives
    assert d["MaxRequestWorkers"] == 30  # 20 active + 10 idle, one child each
    assert d["KeepAliveTimeout"] == SHORT_KEEPALIVE and d["RequestReadTimeout"] == SLOW_CLIENT_RRT
    assert any("pins a prefork child" in x for x in rec.warnings)
    assert any("buffering reverse proxy" in x for x in rec.warnings)


# -- rule 2: waiting-clients --------------------------------------------------------------------------


def test_many_idle_keepalive_clients_get_event_and_the_others_are_rejected_for_pinning():
    w = Workload(thread_safe="yes", concurrency=50, keepalive_share=0.8)
    ms = all3(prefork=prefork(pss=280, processes=90, **idle(40, kib=60)), worker=worker(**idle(40, kib=14)),
              event=event(**idle(40, kib=3)))
    rec = recommend(w, ms)
    assert (rec.mpm, rec.rule) == ("event", "waiting-clients")
    assert "pins a child process" in rejected(rec)["prefork"] and "pins a worker thread" in rejected(rec)["worker"]
    assert "MaxRequestWorkers 90" in rejected(rec)["prefork"]
    assert any("answered 40 of 40 idle" in e and "3.0 KiB" in e for e in rec.evidence)
    assert "KeepAliveTimeout" not in rec.sizing.directives  # parking is cheap: httpd's 5 s stays


def test_slow_clients_alone_get_event_with_request_read_timeouts_and_httpds_keepalive():
    w = Workload(thread_safe="yes", slow_clients=True)
    rec = recommend(w, all3())
    assert (rec.mpm, rec.rule) == ("event", "waiting-clients")
    assert rec.sizing.directives["RequestReadTimeout"] == SLOW_CLIENT_RRT
    # event parks keep-alive connections cheaply and mobile clients lose most from reconnecting: httpd's 5 s stays
    assert "KeepAliveTimeout" not in rec.sizing.directives
    # where a waiting client pins a process or thread, the shorter KeepAliveTimeout stays
    assert size("worker", w).directives["KeepAliveTimeout"] == SHORT_KEEPALIVE
    assert size("prefork", w).directives["KeepAliveTimeout"] == SHORT_KEEPALIVE
    # httpd's event holds a worker while a slow client sends its request: RequestReadTimeout is the protection
    assert "RequestReadTimeout" in rec.decision and "httpd's event holds a worker" in rec.decision
    assert any("does not protect against slow request senders" in x for x in rec.warnings)
    assert "write completion" in RULES["waiting-clients"] and "RequestReadTimeout" in RULES["waiting-clients"]
    assert "Only mpm-harness's event reads request heads" in RULES["waiting-clients"]
    assert "write completion" in rejected(rec)["worker"]


def test_a_share_below_the_threshold_is_not_rule_two():
    w = Workload(thread_safe="yes", concurrency=100, keepalive_share=KEEPALIVE_MANY - 0.01)
    rec = recommend(w, all3(event=event(rps=9500), **{}))
    assert rec.rule == "best-fit"


def test_event_that_cannot_answer_the_idle_load_falls_through_to_best_fit():
    w = Workload(thread_safe="yes", concurrency=50, keepalive_share=1.0)
    ms = all3(prefork=prefork(processes=100, **idle(50)), worker=worker(**idle(50)),
              event=event(rps=20000, **idle(50, fraction=0.8)))
    rec = recommend(w, ms)
    assert rec.rule == "best-fit" and rec.mpm == "worker"
    assert "answered 40 of 50" in rejected(rec)["event"]
    assert any("rule waiting-clients would choose event" in e for e in rec.evidence)


def test_idle_answers_count_against_the_workloads_need_not_the_runs():
    # a run that opened 200 idle connections: event answered 160, which is plenty for 25
    m = event(**idle(200, fraction=0.8))
    assert m.holds_idle(25) is True and m.holds_idle(200) is False
    assert m.holds_idle(160) is True and m.holds_idle(170) is False
    assert event().holds_idle(10) is None
    assert IDLE_ANSWERED_MIN < 1


def test_invalid_or_over_budget_event_falls_through():
    w = Workload(thread_safe="yes", keepalive_share=0.6)
    rec = recommend(w, all3(event=event(status="invalid", reason="starved")))
    assert rec.rule == "best-fit" and "invalid" in rejected(rec)["event"]
    tight = Workload(thread_safe="yes", keepalive_share=0.6, memory_budget_mib=20)
    rec = recommend(tight, all3(worker=worker(pss=18), event=event(pss=25)))
    assert rec.mpm == "worker" and "over the 20 MiB budget" in rejected(rec)["event"]


def test_event_not_measured_is_chosen_on_the_rule_alone():
    rec = recommend(Workload(thread_safe="yes", keepalive_share=0.9), {"worker": worker()})
    assert (rec.mpm, rec.rule) == ("event", "waiting-clients")
    assert any("chosen on the rule alone" in x for x in rec.warnings)


# -- rule 3: best-fit, and its tie-breaks -------------------------------------------------------------


def test_best_fit_takes_the_highest_throughput_when_it_is_clear():
    rec = recommend(Workload(thread_safe="yes"), all3())
    assert (rec.mpm, rec.rule) == ("worker", "best-fit")
    assert "decided by throughput" in rec.decision
    assert "-22 %" in rejected(rec)["event"]


def test_throughput_within_five_percent_goes_to_lower_memory():
    rec = recommend(Workload(thread_safe="yes"), all3(worker=worker(rps=7100, pss=30), event=event(rps=7000)))
    assert rec.mpm == "event" and "memory" in rec.decision
    assert "~30 MiB PSS against ~25" in rejected(rec)["worker"]


def test_throughput_and_memory_tied_go_to_lower_cpu_then_the_simpler_model():
    rec = recommend(Workload(thread_safe="yes"), all3(worker=worker(rps=7000, cpu=130), event=event(cpu=100)))
    assert rec.mpm == "event" and "CPU per request" in rec.decision
    rec = recommend(Workload(thread_safe="yes"), all3(worker=worker(rps=7000, pss=25.5, cpu=121), event=event()))
    assert rec.mpm == "worker" and "simpler model" in rec.decision
    assert "simpler model" in rejected(rec)["event"]


def test_a_noisy_single_trial_widens_the_throughput_tie():
    w = Workload(thread_safe="yes", concurrency=32, memory_budget_mib=64)
    figures = dict(worker=worker(rps=187, pss=23.6, cpu=2620), event=event(rps=207, pss=24.6, cpu=2658))
    clean = recommend(w, {k: v for k, v in figures.items()})
    assert clean.mpm == "event" and "decided by throughput" in clean.decision
    noisy = {k: replace(v, noisy=True) for k, v in figures.items()}
    rec = recommend(w, noisy)
    assert rec.mpm == "worker" and "the simpler model, after a tie on throughput (within 15 %)" in rec.decision
    assert "A TIE: event (207 req/s, ~25 MiB) is equally good within the measurement noise" in rec.decision
    assert any("within 15 % instead of 5 %" in x and "noisy" in x for x in rec.warnings)
    assert "a tie, equally good within the measurement noise" in rejected(rec)["event"]
    three = {k: replace(v, noisy=True, trials=3) for k, v in figures.items()}
    assert recommend(w, three).mpm == "event"  # three noisy trials with no spread: the 5 % band again


def test_memory_within_two_mib_is_a_tie_reported_as_such():
    # example 3's figures: 23.6 against 25.3 MiB is 7 % but within the 2 MiB of PSS noise on this machine
    w = Workload(thread_safe="yes", concurrency=32, memory_budget_mib=64)
    rec = recommend(w, {"worker": worker(rps=7000, pss=25.3, cpu=120), "event": event(rps=7100, pss=23.6, cpu=121)})
    assert MEMORY_TIE_MIB == 2
    assert rec.mpm == "worker" and "the simpler model, after a tie" in rec.decision
    assert "memory (within max(5 %, 2 MiB))" in rec.decision and "A TIE: event" in rec.decision
    assert "equally good within the measurement noise" in rejected(rec)["event"]
    # the lower CPU breaks a tie too, and the alternative is still called equally good
    rec = recommend(w, {"worker": worker(rps=7000, pss=25.3, cpu=140), "event": event(rps=7100, pss=23.6, cpu=120)})
    assert rec.mpm == "event" and rec.decision.startswith("event") and "CPU per request, after a tie" in rec.decision
    assert "A TIE: worker" in rec.decision and "lower-CPU" in rec.decision
    assert "lower CPU per request" in rejected(rec)["worker"]
    # beyond 2 MiB (and 5 %), memory decides and it is no tie
    rec = recommend(w, {"worker": worker(rps=7000, pss=26.0, cpu=120), "event": event(rps=7100, pss=23.6)})
    assert rec.mpm == "event" and "decided by memory" in rec.decision and "TIE" not in rec.decision
    assert "beyond max(5 %, 2 MiB)" in rejected(rec)["worker"]
    # large trees: 5 % is the wider band (120 against 125.5 MiB is within 6 MiB)
    rec = recommend(replace(w, memory_budget_mib=256),
                    {"worker": worker(rps=7000, pss=125.5, cpu=120), "event": event(rps=7100, pss=120.0)})
    assert rec.mpm == "worker" and "TIE" in rec.decision


def test_the_trials_spread_widens_the_throughput_tie():
    fits = {"worker": worker(rps=7000, pss=30, rps_spread=0.2), "event": event(rps=8000)}
    assert throughput_band(fits)[0] == pytest.approx(0.2)
    assert throughput_band({"event": event()}) == (TIE, "")
    rec = recommend(Workload(thread_safe="yes"), all3(**fits))
    assert rec.mpm == "event" and "memory (throughput within 20 %)" in rec.decision


def test_the_fastest_candidate_over_the_budget_is_not_chosen():
    w = Workload(thread_safe="yes", concurrency=32, memory_budget_mib=64)
    rec = recommend(w, all3(prefork=prefork(rps=12000, pss=100, processes=32)))
    assert rec.mpm == "worker"
    assert "over the 64 MiB budget by 36 MiB" in rejected(rec)["prefork"]


def test_candidates_that_failed_or_starved_idle_clients_are_screened_out():
    w = Workload(thread_safe="yes", concurrency=40, keepalive_share=0.25)
    ms = all3(prefork=prefork(rps=20000, processes=50, **idle(10)), worker=worker(**idle(10, fraction=0.5)),
              event=event(status="failed", reason="server exited (status -9) during load"))
    rec = recommend(w, ms)
    assert rec.mpm == "prefork" and rec.rule == "best-fit"
    assert "answered 5 of 10" in rejected(rec)["worker"]
    assert "server exited" in rejected(rec)["event"]
    assert any("pins a prefork child" in x for x in rec.warnings)


# -- rules 4 and 5 ------------------------------------------------------------------------------------


def test_nothing_fits_the_budget_takes_the_least_memory_and_names_the_shortfall():
    w = Workload(thread_safe="yes", memory_budget_mib=10)
    rec = recommend(w, all3())
    assert (rec.mpm, rec.rule) == ("event", "nothing-fits")
    assert "over the 10 MiB budget by 15 MiB" in rec.decision
    assert any("short by 15 MiB" in x for x in rec.warnings)


def test_nothing_fits_with_prefork_least_sizes_prefork_down():
    w = Workload(thread_safe="yes", concurrency=10, memory_budget_mib=20)
    rec = recommend(w, {"prefork": prefork(pss=22, processes=10), "worker": worker(pss=40)})
    assert (rec.mpm, rec.rule) == ("prefork", "nothing-fits")
    assert rec.sizing.directives["MaxRequestWorkers"] == 9  # 2 MiB per process: 10 processes incl. the parent


def test_no_measurements_fall_back_to_httpds_default_and_say_so():
    rec = recommend(Workload(thread_safe="yes"), {})
    assert (rec.mpm, rec.rule) == ("event", "no-measurements")
    assert any("rests on httpd's default" in x for x in rec.warnings)
    # event ruled out by its own measurement, nothing else usable: worker, with that said
    w = Workload(thread_safe="yes", keepalive_share=0.6)
    rec = recommend(w, {"event": event(status="invalid", reason="errors"),
                        "worker": worker(status="failed", reason="hung")})
    assert (rec.mpm, rec.rule) == ("worker", "no-measurements")
    assert any("worker's own measurement was not usable" in x for x in rec.warnings)


def test_every_rule_is_documented_and_reachable():
    reached = {
        recommend(Workload(thread_safe="no"), {}).rule,
        recommend(Workload(thread_safe="yes", keepalive_share=1.0), all3()).rule,
        recommend(Workload(thread_safe="yes"), all3()).rule,
        recommend(Workload(thread_safe="yes", memory_budget_mib=1), all3()).rule,
        recommend(Workload(thread_safe="yes"), {}).rule,
    }
    assert reached == set(RULES)
    text = Path(__file__).resolve().parent.parent.joinpath("docs/advisor.md").read_text()
    assert all(f"`{rule}`" in text for rule in RULES)


# -- the acceptance: three contrasting workloads ------------------------------------------------------


def test_three_contrasting_workloads_get_three_different_justified_mpms():
    """docs/advisor.md's three examples, with the figures quoted there (one noisy trial each on a busy machine).

    Nothing here is chosen to force an outcome: every candidate of a workload
    is fed, with its own throughput, CPU and memory; figures the page does not
    quote (the first two examples' throughput and CPU, the USS) are of the
    order this machine measures.
    """
    unsafe = Workload(thread_safe="no", concurrency=20, memory_budget_mib=48, cores=2,
                      app="servers.apps.workloads:legacy_app")
    idle_many = Workload(thread_safe="yes", concurrency=50, keepalive_share=1.0, cores=2)
    cpu_tight = Workload(thread_safe="yes", concurrency=32, memory_budget_mib=64, cores=2,
                         app="servers.apps.workloads:cpu_app")
    noisy = {"noisy": True, "trials": 1}
    legacy = {"prefork": Measurement("prefork", "prefork", processes=20, connections=20, rps=610, p99_ms=48,
                                     cpu_us_per_request=690, pss_peak_mib=66.7, rss_peak_mib=383,
                                     uss_per_process_mib=2.61, **noisy)}
    many_idle = {
        "prefork": Measurement("prefork", "prefork", processes=100, connections=50, rps=1450, p99_ms=95,
                               cpu_us_per_request=720, pss_peak_mib=232.9, rss_peak_mib=1800,
                               uss_per_process_mib=2.1, **idle(50, kib=64), **noisy),
        "worker": Measurement("worker", "worker", processes=2, connections=50, rps=1720, p99_ms=60,
                              cpu_us_per_request=560, pss_peak_mib=27.4, uss_per_process_mib=6.5,
                              **idle(50, kib=14), **noisy),
        "event": Measurement("event", "event", processes=2, connections=50, rps=1610, p99_ms=64,
                             cpu_us_per_request=600, pss_peak_mib=25.5, uss_per_process_mib=6.2,
                             **idle(50, kib=3), **noisy),
    }
    cpu_heavy = {
        "prefork": Measurement("prefork", "prefork", processes=32, connections=32, rps=231, p99_ms=230,
                               cpu_us_per_request=2600, pss_peak_mib=100.0, rss_peak_mib=610,
                               uss_per_process_mib=2.6, **noisy),
        "worker": Measurement("worker", "worker", processes=2, connections=32, rps=228, p99_ms=180,
                              cpu_us_per_request=2620, pss_peak_mib=23.6, uss_per_process_mib=6.0, **noisy),
        "event": Measurement("event", "event", processes=2, connections=32, rps=204, p99_ms=200,
                             cpu_us_per_request=2658, pss_peak_mib=25.3, uss_per_process_mib=6.3, **noisy),
    }
    recs = [recommend(unsafe, legacy), recommend(idle_many, many_idle), recommend(cpu_tight, cpu_heavy)]
    assert [r.mpm for r in recs] == ["prefork", "event", "worker"]
    assert [r.rule for r in recs] == ["thread-unsafe", "waiting-clients", "best-fit"]
    assert all(r.evidence and r.rejected for r in recs)
    first, second, third = recs
    # 1: 66.7 MiB for 20 children is over 48: sized down on shared + private memory, said to be a projection
    assert first.sizing.workers == 12 and "projected, not measured" in first.decision
    assert set(rejected(first)) == {"worker", "event"}
    # 2: prefork would need 100 children, worker 100 threads; event holds the 50 idle with 64 threads
    assert second.sizing.workers == 64 and "KeepAliveTimeout" not in second.sizing.directives
    assert "MaxRequestWorkers 100" in rejected(second)["prefork"]
    assert "pins a worker thread" in rejected(second)["worker"]
    assert any("measured on their own" in e for e in second.evidence)
    # 3: prefork is 36 MiB over the budget; worker and event tie within the noisy band and 2 MiB: reported as a tie
    assert "over the 64 MiB budget by 36 MiB" in rejected(third)["prefork"]
    assert "A TIE: event" in third.decision and "simpler" in third.decision
    assert "equally good within the measurement noise" in rejected(third)["event"]


# -- sizing -------------------------------------------------------------------------------------------

WORKLOADS = [
    Workload(thread_safe="yes", concurrency=1, cores=1),
    Workload(thread_safe="yes", concurrency=50, keepalive_share=0.8, cores=2),
    Workload(thread_safe="yes", concurrency=300, keepalive_share=1.0, slow_clients=True, cores=4),
    Workload(thread_safe="yes", concurrency=7, keepalive_share=0.3, cores=3),
]


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: f"c{w.concurrency}-s{w.keepalive_share}-n{w.cores}")
@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_sized_directives_load_without_any_clamp(mpm, w):
    s = size(mpm, w)
    cfg = load_config(mpm, overrides={"Listen": "127.0.0.1:0", **s.directives})
    assert cfg.notes == ()  # nothing adjusted: what we print is what runs
    assert cfg.MaxRequestWorkers == s.workers >= w.concurrency
    if mpm in ("prefork", "worker"):  # every idle keep-alive connection holds a process or thread
        assert s.workers >= w.concurrency + w.idle_connections
    if mpm != "prefork":
        assert cfg.ServerLimit == w.cores == s.processes


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: f"c{w.concurrency}-s{w.keepalive_share}-n{w.cores}")
def test_event_accepts_every_active_and_idle_connection(w):
    s = size("event", w)
    tpc, procs, f = s.directives["ThreadsPerChild"], s.processes, s.directives["AsyncRequestWorkerFactor"]
    a, k = math.ceil(w.concurrency / procs), math.ceil(w.idle_connections / procs)
    assert tpc > a  # an idle worker is left for the listener to accept with
    assert k + a < tpc + (tpc - a) * f  # the child still accepts with its share open
    assert f >= 2


def test_event_factor_grows_with_idle_connections():
    assert event_factor(50, 0, 2, 32) == 2.0
    assert event_factor(50, 1000, 2, 32) > event_factor(50, 100, 2, 32) > 2.0


def test_threads_beyond_thread_limit_raise_thread_limit():
    s = size("worker", Workload(thread_safe="yes", concurrency=300, cores=2))
    assert s.directives["ThreadLimit"] == s.directives["ThreadsPerChild"] == 150


# -- the workload: flags, file, validation ------------------------------------------------------------


def parse(argv: list[str]):
    import argparse

    p = argparse.ArgumentParser()
    adv.add_arguments(p)
    return p.parse_args(argv)


def test_workload_validation_names_the_field():
    with pytest.raises(AdviceError, match="keepalive_share"):
        Workload(keepalive_share=1.5)
    with pytest.raises(AdviceError, match="concurrency"):
        Workload(concurrency=0)
    with pytest.raises(AdviceError, match="thread_safe"):
        Workload(thread_safe="maybe")


def test_workload_file_with_flags_overriding(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("thread-safe: yes\nkeepalive_share: 0.5\nmemory_budget: 1GiB\nconcurrency: 40\nslow_clients: true\n")
    w = adv.workload_from_args(parse(["--workload", str(f), "--concurrency", "10", "--no-slow-clients"]))
    assert (w.thread_safe, w.keepalive_share, w.memory_budget_mib, w.concurrency, w.slow_clients) == \
        ("yes", 0.5, 1024.0, 10, False)


def test_a_bad_key_in_the_workload_file_names_the_key_and_the_file(tmp_path, capsys):
    f = tmp_path / "w.yaml"
    f.write_text("thread_safe: no\nkeepalive_shar: 0.5\n")
    assert adv.main(["--workload", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "'keepalive_shar'" in err and "did you mean 'keepalive_share'" in err


@pytest.mark.parametrize("content, words", [
    ("concurrency: many\n", "concurrency must be an integer"),
    ("memory_budget: lots\n", "memory budget in MiB"),
    ("keepalive_share: 3\n", "between 0 and 1"),
    ("- a list\n", "YAML mapping"),
    ("app: not-an-app\n", "module:callable"),
])
def test_bad_workload_values_are_refused(tmp_path, capsys, content, words):
    f = tmp_path / "w.yaml"
    f.write_text(content)
    assert adv.main(["--workload", str(f)]) == 2
    err = capsys.readouterr().err
    assert words in err and str(f) in err


def test_bad_flags_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        adv.main(["--keepalive-share", "1.5"])
    assert exc.value.code == 2
    assert adv.main(["--app", "nosuchmodule_xyz:app"]) == 2
    assert "cannot find module 'nosuchmodule_xyz'" in capsys.readouterr().err
    assert adv.main(["--memory-budget", "0"]) == 2
    assert adv.main(["--from-run", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_memory_units():
    assert adv.parse_memory("512", "x") == 512 and adv.parse_memory("2GiB", "x") == 2048
    assert adv.parse_memory("1.5 G", "x") == 1536 and adv.parse_memory(256, "x") == 256
    with pytest.raises(AdviceError):
        adv.parse_memory("12 parsecs", "x")


# -- the measuring matrix -----------------------------------------------------------------------------


def test_a_non_thread_safe_app_is_measured_on_prefork_alone():
    m = adv.build_matrix(Workload(thread_safe="no", concurrency=20, app="servers.apps.workloads:legacy_app"))
    assert [s.server for s in m.servers] == ["prefork"]
    assert m.servers[0].app == "servers.apps.workloads:legacy_app"
    assert m.servers[0].set["StartServers"] == m.servers[0].set["MaxRequestWorkers"] == 20  # all pre-forked
    assert [p.name for p in m.profiles] == ["load"] and m.suites == ()


def test_a_thread_safe_app_is_measured_on_all_three_with_an_idle_profile():
    w = Workload(thread_safe="yes", concurrency=40, keepalive_share=0.5)
    m = adv.build_matrix(w, duration=1.5, trials=2)
    assert [s.server for s in m.servers] == ["prefork", "worker", "event"]
    load, idle_p = m.profiles
    assert (load.get("connections"), load.get("mode"), load.duration) == (40, "closed", 1.5)
    assert (idle_p.driver, idle_p.get("connections")) == ("idle", 20)
    assert "on their own" in idle_p.get("description")  # not held during the load: said, not hidden
    assert m.trials == 2
    assert m.servers[2].set == size("event", w).directives


# -- measurements from a run document -----------------------------------------------------------------


def _cell(server, profile, driver, **metrics):
    sampler = metrics.pop("sampler", None)
    return {"kind": "profile", "server": server, "profile": profile, "driver": driver, "trial": 1,
            "status": metrics.pop("status", "ok"), "reason": "", "flags": metrics.pop("flags", []),
            "metrics": metrics, "sampler": sampler}


def synthetic_run(tmp_path: Path) -> Path:
    servers = {
        "prefork": {"server": "prefork", "set": {"StartServers": 20, "MinSpareServers": 20,
                                                 "MaxRequestWorkers": 20, "ServerLimit": 20}, "available": True},
        "worker": {"server": "worker", "set": {"ServerLimit": 2, "StartServers": 2, "ThreadsPerChild": 25,
                                               "MaxRequestWorkers": 50}, "available": True},
        "apache-event": {"server": "apache-event", "set": {}, "available": True},
        "gunicorn-sync": {"server": "gunicorn-sync", "set": {}, "available": True},
    }
    cells = [
        _cell("prefork", "load", "loadgen", rps=2000.0, cpu_us_per_request=230.0, p99_ms=27.0, pss_peak_mib=68.0,
              rss_peak_mib=380.0, answered_fraction=1.0,
              sampler={"uss_peak": 21 * 2.6 * 2**20, "pss_peak": 68 * 2**20, "processes_peak": 21}),
        _cell("prefork", "idle", "idle", pss_peak_mib=70.0, pss_per_idle_conn_kib=60.0, answered_fraction=0.5,
              flags=["starved"]),
        _cell("worker", "load", "loadgen", status="invalid", flags=["non_2xx"], rps=9000.0),
        _cell("worker", "idle", "idle", pss_peak_mib=26.0, answered_fraction=1.0),
        _cell("apache-event", "load", "loadgen", rps=6500.0, pss_peak_mib=6.0,
              sampler={"uss_peak": 3 * 2**20, "processes_peak": 3}),
        _cell("gunicorn-sync", "load", "loadgen", rps=1400.0),
    ]
    return write_run(tmp_path, "synthetic", servers, cells, {
        "load": {"driver": "loadgen", "mode": "closed", "connections": 20, "duration": 2},
        "idle": {"driver": "idle", "connections": 10, "duration": 2}})


def write_run(tmp_path: Path, run_id: str, servers: dict, cells: list, profiles: dict) -> Path:
    """A run folder ``tmp_path/run`` with a minimal run document (one trial, the server pinned to CPU 0)."""
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": run_id, "status": "complete",
           "matrix": {"trials": 1, "profiles": profiles},
           "environment": {"pinning": {"server_cpus": [0]}}, "servers": servers, "cells": cells, "summary": {}}
    run = tmp_path / "run"
    run.mkdir()
    write_json_atomic(run / "run.json", doc)
    return run


def test_measurements_from_a_run_document(tmp_path):
    from harness.results import load_run

    ms = adv.measurements_from_run(load_run(synthetic_run(tmp_path)))
    assert set(ms) == {"prefork", "worker", "apache-event"}  # gunicorn runs no MPM
    p = ms["prefork"]
    assert (p.mpm, p.status, p.rps, p.processes, p.connections) == ("prefork", "ok", 2000.0, 20, 20)
    assert (p.idle_connections, p.idle_answered, p.pss_mib, p.pss_per_idle_conn_kib) == (10, 5.0, 70.0, 60.0)
    assert "starved" in p.flags
    assert (p.trials, p.noisy, p.rps_spread) == (1, False, None)
    assert ms["worker"].status == "invalid" and "non_2xx" in ms["worker"].reason and not ms["worker"].valid
    assert ms["worker"].processes == 2
    assert p.uss_per_process_mib == pytest.approx(2.6) and pss_model(p).private  # summed USS / the tree's processes
    assert ms["worker"].uss_per_process_mib is None  # an invalid cell's sampler is not used
    ref = ms["apache-event"]
    assert ref.mpm == "event" and ref.reference and not p.reference
    # httpd's process count and memory are its own configuration's: nothing is derived from our defaults
    assert ref.processes is None and ref.uss_per_process_mib is None


def test_from_run_rests_on_our_servers_and_labels_reference_servers(tmp_path, capsys):
    run = synthetic_run(tmp_path)
    assert adv.main(["--from-run", str(run), "--thread-safe", "yes", "--concurrency", "20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rec = doc["recommendation"]
    # worker invalid (non-2xx); apache-event is httpd, a reference, not our event: prefork is what is left
    assert (rec["rule"], rec["mpm"], rec["label"]) == ("best-fit", "prefork", "prefork")
    assert any("apache-event (reference server" in e and "NOT used in the decision" in e for e in rec["evidence"])
    assert any("event had only a reference measurement" in x for x in rec["warnings"])
    assert {a["mpm"]: a["why"] for a in rec["rejected"]}["event"] == "not measured"
    assert doc["measurements"]["apache-event"]["reference"] is True
    assert doc["run"]["run_dir"] == str(run) and doc["run"]["measured_now"] is False
    assert "LoadModule mpm_prefork_module" in doc["config"]["httpd"]
    assert not (run / "advice.json").exists()  # another run's folder is left alone
    assert adv.main(["--from-run", str(run), "--thread-safe", "yes", "--concurrency", "20"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| apache-event"))
    assert "reference (httpd), not used" in row


def test_p99_is_the_merged_histograms_as_in_the_reports_table_1(tmp_path):
    from harness.drivers.base import new_histogram
    from harness.report.latency import percentiles_ms

    doc = json.loads((synthetic_run(tmp_path) / "run.json").read_text())
    hdrs = []
    for trial, stall in enumerate((False, False, True), start=1):
        h = new_histogram()
        for _ in range(95):
            h.record_value(1000)  # 1 ms
        for _ in range(5):
            h.record_value(80_000 if stall else 1000)  # one trial with a 5 % tail at 80 ms: 1.7 % of the three
        hdrs.append(h.encode().decode("ascii"))
        cell = _cell("event", "load", "loadgen", rps=7000.0, p99_ms=80.0 if stall else 1.0)
        cell.update(trial=trial, result={"latency_us": {"hdr": hdrs[-1]}})
        doc["cells"].append(cell)
    doc["servers"]["event"] = {"server": "event", "set": {}, "available": True}
    merged = percentiles_ms(hdrs)["p99_ms"]
    assert adv.measurements_from_run(doc)["event"].p99_ms == merged  # not the median of the trials' own (1.0)
    assert merged > 70


# -- measurements from published results (results/README.md) ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
RUN_FIXTURE = Path(__file__).parent / "data" / "run_fixture.json"


def _first_row(page: str, server: str, profile: str) -> list[str]:
    """The first table row of ``server`` x ``profile`` on a page (table 1's, when the profile has a load)."""
    line = next(x for x in page.splitlines() if x.startswith("|")
                and [c.strip() for c in x.split("|")[1:3]] == [server, profile])
    return [c.strip() for c in line.split("|")[1:-1]]


def test_advise_works_on_the_committed_published_results(capsys):
    page = (ROOT / "results" / "README.md").read_text()
    run_id = page.split("published figures of run `", 1)[1].split("`", 1)[0]
    assert adv.main(["--from-run", str(ROOT / "results"), "--thread-safe", "yes", "--concurrency", "50",
                     "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ms = doc["measurements"]
    for mpm in ("prefork", "worker", "event"):
        m = ms[mpm]
        assert (m["mpm"], m["reference"], m["status"]) == (mpm, False, "ok")
        assert m["processes"] > 0 and m["idle_connections"] and m["pss_peak_mib"] > 0
        # the figures are the page's own: table 1's requests/s of the closed-loop profile, as printed
        req_s = _first_row(page, mpm, "hello-closed")[4].split(" (")[0]
        assert fmt_sig(m["rps"]) == req_s
    # httpd serving files (the published all runs it on event only) is a reference, never a candidate
    references = [k for k in ms if k.startswith("apache-")]
    assert references and all(ms[k]["reference"] and ms[k]["processes"] is None for k in references)
    assert not any(k.startswith("gunicorn") for k in ms)  # no MPM: not a candidate
    assert doc["run"]["published"] == run_id and doc["run"]["trials"] >= 1
    assert doc["recommendation"]["mpm"] in ("prefork", "worker", "event")
    assert doc["recommendation"]["rule"] == "best-fit"  # measured figures decided, not the no-evidence default
    # the page's peer rows (gunicorn, uWSGI, granian, ... on the same app) are compared, never httpd's files
    peers = doc["peers"]
    assert peers is not None and peers["verdict"] in ("peer-better", "ours-best")
    assert peers["ours"]["label"] == doc["recommendation"]["label"]
    for p in peers["peers"]:
        assert not p["server"].startswith("apache-") and p["model"] in ("prefork", "worker", "event")
        assert p["rps"] is None or fmt_sig(p["rps"]) == _first_row(page, p["label"], "hello-closed")[4].split(" (")[0]


def test_the_published_page_reads_back_as_the_run_it_was_published_from(tmp_path):
    from harness.report.files import publish

    run = json.loads(RUN_FIXTURE.read_text())
    page = publish(run, tmp_path / "results")
    matrix = yaml.safe_load(page.read_text().split("## Matrix", 1)[1].split("```yaml\n", 1)[1].split("```")[0])
    assert matrix == {k: v for k, v in run["matrix"].items() if k != "source"}  # no path of the measuring machine
    from_run = adv.measurements_from_run(run)
    from_page, info, notes = adv.load_measurements(tmp_path / "results")
    assert notes == [] and info.published == run["run_id"] and info.trials == run["matrix"]["trials"]
    assert set(from_page) == set(from_run)
    for label, a in from_run.items():
        b = from_page[label]
        same = ("mpm", "status", "reference", "processes", "connections", "idle_connections", "trials", "noisy")
        assert [getattr(b, f) for f in same] == [getattr(a, f) for f in same], label
        for f in ("rps", "cpu_us_per_request", "p99_ms", "pss_mib", "rss_peak_mib", "pss_per_idle_conn_kib",
                  "idle_answered_fraction"):
            x, y = getattr(a, f), getattr(b, f)
            assert (x is None) == (y is None) and (x is None or y == pytest.approx(x, rel=0.006)), (label, f)
        # the page has medians at three significant figures and min-max, never the trials' own values
        assert (a.rps_spread is None) == (b.rps_spread is None) or a.trials < 2


def test_a_page_without_its_matrix_takes_the_builtin_one_it_names_and_says_so(tmp_path, capsys):
    from harness.report.files import publish

    page = publish(json.loads(RUN_FIXTURE.read_text()), tmp_path)
    text = page.read_text().split("## Matrix", 1)[0]  # as pages were published before they held the matrix
    page.write_text(text)
    assert adv.main(["--from-run", str(tmp_path), "--thread-safe", "yes"]) == 2
    assert "records no matrix" in capsys.readouterr().err  # the fixture's matrix is no built-in one
    page.write_text(text.replace("- Matrix: fixture", "- Matrix: all"))
    ms, _, notes = adv.load_measurements(page)
    assert ms["prefork"].processes == 50  # harness/matrices/all.yaml sizes prefork for 50 connections
    assert len(notes) == 1 and "built-in matrix 'all'" in notes[0]


_PAGE = """# Published results

## Environment

- Status: complete. 1 cell invalid
- Run: 20250101T000000Z-x; command: harness run --matrix x --publish
- Pinning: server on CPU 0,2, load generator on CPU 1

## 1. Throughput and latency

| server | profile | ok/trials | req/s | p99 ms | notes |
|---|---|---|---|---|---|
| worker | load | 3/3 | ≈12,500 (11,600–15,800) | 16.5 | noisy x1, starved, 1 invalid |
| event | load | 0/3 | failed: crashed | – | |
| odd\\|label | load | 1/1 | 100 | 1.0 | |
| gunicorn | load | – | – | – | |

## 3. Memory

| server | profile | ok/trials | PSS peak MiB | RSS peak MiB* | PSS/idle conn KiB | answered |
|---|---|---|---|---|---|---|
| worker | idle | 2/2 | 30.1 | 90.0 | 12.5 (12.0–13.0) | 80% |

## Matrix

```yaml
trials: 3
servers: [{label: worker, server: worker, set: {}}]
profiles: {load: {driver: loadgen, connections: 50, duration: 2.0}}
```
"""


def test_the_page_reader_reads_each_row_as_the_report_prints_it(tmp_path):
    page = tmp_path / "README.md"
    page.write_text(_PAGE, encoding="utf-8")
    pub = read_page(page)
    assert (pub.path, pub.run_id, pub.status, pub.server_cpus, pub.notes) == (
        page, "20250101T000000Z-x", "complete", (0, 2), ())
    assert pub.matrix["trials"] == 3 and pub.matrix["servers"][0]["label"] == "worker"
    load = pub.figures("worker", "load")
    assert (load.status, load.ok, load.flags, load.noisy) == ("ok", 3, ("noisy", "starved"), 1)
    assert (load.medians["rps"], load.medians["p99_ms"]) == (12500.0, 16.5)
    assert load.rps_spread == pytest.approx((15800 - 11600) / 12500)
    idle = pub.figures("worker", "idle")
    assert (idle.answered, idle.medians["pss_per_idle_conn_kib"], idle.medians["rss_peak_mib"]) == (0.8, 12.5, 90.0)
    failed = pub.figures("event", "load")
    assert (failed.status, failed.reason, failed.ok, failed.medians) == ("failed", "crashed", 0, {})
    assert pub.figures("odd|label", "load").medians["rps"] == 100.0  # a cell's own "|" is written "\\|"
    assert pub.figures("gunicorn", "load") is None  # "–": it never ran
    assert pub.figures("worker", "absent") is None and pub.figures("worker", None) is None


def test_the_page_reader_refuses_what_is_no_published_page(tmp_path):
    page = tmp_path / "README.md"
    page.write_text("# My project\n", encoding="utf-8")
    with pytest.raises(PageError, match="not a published results page"):
        read_page(page)
    page.write_text(_PAGE.split("## Matrix", 1)[0], encoding="utf-8")  # no matrix, and it names no built-in one
    with pytest.raises(PageError, match="records no matrix"):
        read_page(page)
    head, _, tail = _PAGE.partition("```yaml\n")  # a matrix section that is not YAML: a clear error
    page.write_text(head + "```yaml\nservers: [unclosed\n" + tail.split("```", 1)[1], encoding="utf-8")
    with pytest.raises(PageError, match="matrix section is not valid YAML"):
        read_page(page)


def test_from_run_on_a_folder_with_neither_document_says_what_it_expects(tmp_path, capsys):
    assert adv.main(["--from-run", str(tmp_path), "--thread-safe", "yes"]) == 2
    assert "neither a run folder (no run.json) nor published results (no README.md)" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("# My project\n")
    assert adv.main(["--from-run", str(tmp_path), "--thread-safe", "yes"]) == 2
    assert "not a published results page" in capsys.readouterr().err


# -- output -------------------------------------------------------------------------------------------


def test_text_report_and_config_blocks():
    w = Workload(thread_safe="yes", concurrency=50, keepalive_share=0.8, slow_clients=True)
    ms = all3(event=event(**idle(40)))
    rec = recommend(w, ms)
    text = adv.render_text(w, rec, ms, adv.RunInfo("results/runs/x", 1, 2.0, [0], True))
    for section in ("Workload, as understood", "Recommendation: EVENT", "Decided by rule `waiting-clients`",
                    "Evidence", "Alternatives, and why not", "Configuration: mpm-harness YAML",
                    "Configuration: httpd", "more trials"):
        assert section in text
    assert yaml.safe_load(adv.yaml_block(rec, w)) == rec.sizing.directives
    httpd = adv.httpd_block(rec)
    assert "LoadModule mpm_event_module modules/mod_mpm_event.so" in httpd
    inside = httpd.split("<IfModule mpm_event_module>")[1].split("</IfModule>")[0]
    assert "    MaxRequestWorkers 64" in inside and "    AsyncRequestWorkerFactor 2.5" in inside
    assert "KeepAliveTimeout" not in httpd  # event with slow clients keeps httpd's keep-alive default
    assert "<IfModule reqtimeout_module>\n    RequestReadTimeout header=10-30,MinRate=500 body=20,MinRate=500" in httpd
    assert "# against slow senders (slowloris) RequestReadTimeout (mod_reqtimeout) is the protection" in httpd
    assert "still holds a worker while a slow client sends its request head/body" in httpd
    assert "measured on their own" in text and "not while it ran" in text and "idle answered (alone)" in text
    json.dumps(adv.advice_json(w, rec, ms, None))
    # worker with idle clients: the shorter KeepAliveTimeout, at server level
    ww = Workload(thread_safe="yes", concurrency=40, keepalive_share=0.25)
    wrec = recommend(ww, all3())
    assert wrec.mpm == "worker" and f"\nKeepAliveTimeout {SHORT_KEEPALIVE}\n" in adv.httpd_block(wrec)
    assert "slowloris" not in adv.httpd_block(wrec)


def test_the_pss_note_appears_with_a_budget_and_quotes_prefork_rss():
    w = Workload(thread_safe="yes", memory_budget_mib=64)
    text = adv.render_text(w, recommend(w, all3()), all3(), None)
    assert "not summed RSS" in text and "summed RSS 900 MiB, PSS 150 MiB" in text


# -- the example workloads ----------------------------------------------------------------------------


def _call(app, path="/", query=""):
    status = []
    body = b"".join(app({"PATH_INFO": path, "QUERY_STRING": query}, lambda s, h: status.append(s)))
    return status[0], body


def test_cpu_app_burns_the_cpu_time_it_is_asked_for():
    import time

    from servers.apps import workloads

    t0 = time.thread_time_ns()
    status, body = _call(workloads.cpu_app, query="us=3000")
    assert status.startswith("200") and body == b"burnt 3000 us of CPU\n"
    assert time.thread_time_ns() - t0 >= 3_000_000


def test_legacy_app_is_fine_alone_and_detects_a_concurrent_request(monkeypatch):
    from servers.apps import workloads

    assert _call(workloads.legacy_app)[0].startswith("200")
    monkeypatch.setattr(workloads, "LEGACY_IO_MS", 100.0)
    barrier, statuses = threading.Barrier(2), []

    def one():
        barrier.wait()
        statuses.append(_call(workloads.legacy_app)[0])

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(s.startswith("500") for s in statuses)  # the first one's state was overwritten


# -- one short live run -------------------------------------------------------------------------------


def test_a_short_live_advice_run_writes_its_run_folder(tmp_path, capsys):
    rc = adv.main(["--thread-safe", "no", "--app", "servers.apps.workloads:legacy_app", "--concurrency", "2",
                   "--duration", "0.5", "--results-dir", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recommendation"]["mpm"] == "prefork" and out["recommendation"]["rule"] == "thread-unsafe"
    run = Path(out["run"]["run_dir"])
    assert (run / "run.json").is_file() and (run / "advice.json").is_file() and (run / "advice.txt").is_file()
    m = out["measurements"]["prefork"]
    assert m["processes"] == 2 and m["rps"] > 0 and m["status"] in ("ok", "invalid")
