"""A bounded fuzz run against each live MPM over loopback (issue 8).

Thousands of malformed inputs (valid requests mutated byte by byte, framing conflicts,
over-limit heads and bodies, garbage, TLS and HTTP/2 prefaces, long pipelines, cut-off
requests and connections reset mid-request), each on its own connection, from four
client threads. After the run:

* every answer was exactly what the sans-IO reader (the oracle, tests/fuzzutil.py) says
  the server owes that byte stream: one 200 per accepted request, in order (RFC 9112
  §9.3.2), then the error's status with ``Connection: close`` (RFC 9112 §2.2), then EOF;
* the server still answers ``GET /`` correctly;
* no child died: the same children as before (the pool is sized so that maintenance never
  forks or retires one), no signal death, no escaped exception in the error log
  ("nothing a client sends may crash a child or leak a thread", docs/reliability.md);
* no fd or thread leaked: once the connections are closed, every child is back to its
  baseline fd and thread counts (from /proc, via psutil).

The run is bounded in count (``INPUTS``) and time (``SECONDS``); the seed makes it
reproducible. ``benchmarks/reliability.py`` runs larger campaigns and reports the count.
"""

from __future__ import annotations

import pytest

from servers.http.limits import Limits

from .fuzzutil import digest, run_fuzz
from suites.wire import request, wait_until
from .serverutil import GET, children, crash_lines, settled_resources, wait_resources_back

APP = "tests.fuzzutil:digest_app"
INPUTS = 3000
SECONDS = 60.0
SEED = 8
#: small limits, so over-limit inputs are common and cheap (httpd's directives)
LIMITS = {"LimitRequestLine": 512, "LimitRequestFieldSize": 512, "LimitRequestFields": 20,
          "LimitRequestBody": 4096}
ORACLE_LIMITS = Limits(request_line=512, field_size=512, fields=20, body=4096)

#: fixed pools: never fewer idle units than the min spare, never more than the max spare,
#: so every child that exits during the run is a crash, not maintenance
POOLS = {
    "prefork": {"StartServers": 4, "MinSpareServers": 1, "MaxSpareServers": 4, "MaxRequestWorkers": 4,
                "ServerLimit": 4},
    "worker": {"StartServers": 2, "ThreadsPerChild": 4, "MaxRequestWorkers": 8, "ServerLimit": 2,
               "MinSpareThreads": 1, "MaxSpareThreads": 8},
    "event": {"StartServers": 2, "ThreadsPerChild": 4, "MaxRequestWorkers": 8, "ServerLimit": 2,
              "MinSpareThreads": 1, "MaxSpareThreads": 8},
}


def fuzz_server(launch, mpm: str):
    """A server with the fixed pool and small limits, every child warmed up and measured."""
    h = launch(mpm, {**POOLS[mpm], **LIMITS, "KeepAliveTimeout": 1}, app=APP)
    n = POOLS[mpm]["StartServers"]
    wait_until(lambda: len(children(h)) == n, 10, what=f"{n} children")
    return h


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_fuzz_run_leaves_the_server_whole(launch, mpm):
    h = fuzz_server(launch, mpm)
    for _ in range(10):  # every unit has served once (lazy set-up done)
        assert request(h.port, GET).status == 200
    before = sorted(children(h))
    baseline = settled_resources(before)
    tried, problems = run_fuzz(h.port, SEED, INPUTS, ORACLE_LIMITS, seconds=SECONDS)
    assert tried == INPUTS, f"only {tried} inputs in {SECONDS}s"
    assert not problems, f"{len(problems)} wrong answers, e.g. {problems[:5]}"
    r = request(h.port, GET)
    assert r.status == 200 and r.body == digest("GET", "/", b"")
    assert sorted(children(h)) == before, "a child died or was replaced during the fuzz run"
    assert not crash_lines(h), crash_lines(h)[:5]
    # every connection is closed on our side: lingering closes and keep-alive waits end by
    # themselves, after which no descriptor and no thread may remain
    wait_resources_back(h, baseline)
