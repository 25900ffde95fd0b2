"""A bounded fuzz run against each live MPM over loopback (issue 8).

Thousands of malformed inputs (valid requests mutated byte by byte, framing conflicts,
over-limit heads and bodies, garbage, TLS and HTTP/2 prefaces, long pipelines, cut-off
requests and connections reset mid-request), each on its own connection, from four
client threads. After the run:

* every answer was exactly what the sans-IO reader (the oracle, suites/fuzz.py) says
  the server owes that byte stream: one 200 per accepted request, in order (RFC 9112
  §9.3.2), then the error's status with ``Connection: close`` (RFC 9112 §2.2), then EOF;
* the server still answers ``GET /`` correctly;
* no child died: the same children as before (the pool is sized so that maintenance never
  forks or retires one), no signal death, no escaped exception in the error log
  ("nothing a client sends may crash a child or leak a thread", docs/reliability.md);
* no fd or thread leaked: once the connections are closed, every child is back to its
  baseline fd and thread counts (from /proc, as the harness's sampler reads them).

The run is bounded in count (``INPUTS``) and time (``SECONDS``); the seed makes it
reproducible. ``benchmarks/reliability.py`` runs larger campaigns and reports the count.
"""

from __future__ import annotations

import os

import psutil
import pytest

from harness.sampler.procfs import fds_and_threads, settled_fds_and_threads, wait_fds_and_threads_back
from servers.mpm import MPM_NAMES
from suites.fuzz import FUZZ_LIMITS, FUZZ_ORACLE_LIMITS, FUZZ_POOLS, digest, run_fuzz
from suites.probes import GET, children, crash_lines
from suites.wire import request, wait_until

APP = "suites.fuzz:digest_app"
INPUTS = 3000
SECONDS = 60.0
SEED = 8


def fuzz_server(launch, mpm: str):
    """A server with the fixed pool and small limits, every child warmed up and measured."""
    h = launch(mpm, {**FUZZ_POOLS[mpm], **FUZZ_LIMITS, "KeepAliveTimeout": 1}, app=APP)
    n = FUZZ_POOLS[mpm]["StartServers"]
    wait_until(lambda: len(children(h)) == n, 10, what=f"{n} children")
    return h


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_fuzz_run_leaves_the_server_whole(launch, mpm):
    h = fuzz_server(launch, mpm)
    for _ in range(10):  # every unit has served once (lazy set-up done)
        assert request(h.port, GET).status == 200
    before = sorted(children(h))
    baseline = settled_fds_and_threads(before)
    tried, problems = run_fuzz(h.port, SEED, INPUTS, FUZZ_ORACLE_LIMITS, seconds=SECONDS)
    assert tried == INPUTS, f"only {tried} inputs in {SECONDS}s"
    assert not problems, f"{len(problems)} wrong answers, e.g. {problems[:5]}"
    r = request(h.port, GET)
    assert r.status == 200 and r.body == digest("GET", "/", b"")
    assert sorted(children(h)) == before, "a child died or was replaced during the fuzz run"
    assert not crash_lines(h), crash_lines(h)[:5]
    # every connection is closed on our side: lingering closes and keep-alive waits end by
    # themselves, after which no descriptor and no thread may remain
    wait_fds_and_threads_back(baseline)


def test_the_leak_probe_reads_what_psutil_reads():
    """The counts come from /proc as psutil's num_fds and num_threads read them (the probe
    replaced psutil here); a process that does not exist is left out."""
    me = psutil.Process()
    gone = psutil.Popen(["true"])
    gone.wait()
    got = fds_and_threads([os.getpid(), gone.pid])
    assert list(got) == [os.getpid()]
    fds, threads = got[os.getpid()]
    assert abs(fds - me.num_fds()) <= 1 and threads == me.num_threads()
