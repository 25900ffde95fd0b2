"""The locust and wrk drivers (harness/drivers/locust.py, wrk.py).

locust is never imported here (its gevent monkey-patching breaks threaded
code): the driver runs it as a subprocess, and these tests only call the
driver.  Live runs last 1-2 s against an event server started through the
launcher on 127.0.0.1 and compare the driver's count with the server's own
(mod_status "Total Accesses"); the rest checks the parsers on fixed outputs
and the refusals, without running anything.  No timing assertions: only
counts.  wrk tests skip when wrk is not installed (apt-get install wrk).
"""

from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time

import psutil
import pytest

from harness.drivers import locust as locust_driver
from harness.drivers import wrk as wrk_driver
from harness.drivers import subproc
from harness.drivers.base import new_histogram
from harness.drivers.locust import (
    DriverError,
    histogram_from_percentiles,
    locust_available,
    parse_locust_csv,
    result_from_locust_csv,
    result_from_reports,
    run_locust,
)
from harness.drivers.wrk import (
    parse_wrk_output,
    remove_wrk_correction,
    result_from_wrk,
    run_wrk,
    wrk_available,
)
from servers.launcher import start

EVENT = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 8, "MaxRequestWorkers": 8,
         "MinSpareThreads": 1, "MaxSpareThreads": 16}

WRK_MISSING = wrk_available()
needs_wrk = pytest.mark.skipif(WRK_MISSING is not None, reason=f"{WRK_MISSING} to run the wrk driver tests")


def _driver_cpu() -> list[int]:
    """The last CPU this process may use: the drivers are pinned there."""
    return [max(os.sched_getaffinity(0))]


class ServerCount:
    """The server's own count of requests, minus the status requests made to read it.

    ``settled()`` reads /server-status?auto until two consecutive reports show
    only the status request itself busy and the total grew by exactly that one
    status request in between: then every request the server answered has
    been recorded (a worker records after sending), and nothing else ran.
    """

    def __init__(self, handle):
        self.handle = handle
        self.issued = 0

    def _status(self):
        report = self.handle.status()
        self.issued += 1
        return report

    def settled(self) -> int:
        prev = self._status()
        for _ in range(500):
            cur = self._status()
            if prev.busy_workers == 1 and cur.busy_workers == 1 and cur.total_accesses == prev.total_accesses + 1:
                return cur.total_accesses - (self.issued - 1)  # every earlier status request is counted
            prev = cur
        raise AssertionError(f"the server never settled: last report {cur.raw}")


@pytest.fixture(scope="module")
def server():
    h = start("event", EVENT)
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def dead_url():
    """A loopback port that refuses connections: bound (so no one else takes it) but not listening."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"
    finally:
        s.close()


def _check_histogram(r):
    assert r.histogram.get_total_count() == r.requests
    assert r.histogram.get_min_value() >= 1


# --------------------------------------------------------------------------
# locust, live


def test_locust_is_available():
    assert locust_available() is None, locust_available()


def test_locust_counts_match_the_server(server):
    counter = ServerCount(server)
    before = counter.settled()
    cpu = _driver_cpu()
    r = run_locust(server.url, users=4, spawn_rate=4, duration=2, cpus=cpu)
    served = counter.settled() - before
    assert r.driver == "locust" and r.mode == "closed" and r.processes == 1 and r.connections == 4
    assert r.ok, (r.errors, r.status_counts, r.extra.get("failures"))
    assert r.requests > 0
    assert r.status_counts == {200: r.requests}
    assert r.errors == {}
    # --stop-timeout lets each user finish its request: nothing is abandoned
    assert r.requests == served, (r.requests, served)
    assert r.extra["locust_requests"] == r.requests
    assert r.extra["source"] == "plugin" and r.extra["histogram_approximated"] is False
    assert r.extra["csv_requests"] <= r.requests  # the CSV is rewritten once a second, so it may lag
    _check_histogram(r)
    assert sum(r.timeline) == r.requests
    assert r.duration > 0
    assert r.cpus == cpu
    assert 0 < r.driver_cpu_seconds <= r.extra["driver_cpu_total_seconds"]
    assert r.per_connection is None and r.starved_connections is None


def test_locust_distributed_mode_reports_every_process(server):
    counter = ServerCount(server)
    before = counter.settled()
    r = run_locust(server.url, users=4, spawn_rate=4, duration=2, processes=2, user_classes=["HelloUser"])
    served = counter.settled() - before
    assert r.processes == 2
    assert r.extra["processes_reported"] == 3  # the master and two workers
    assert r.ok, (r.errors, r.status_counts, r.extra.get("failures"))
    assert r.status_counts == {200: r.requests}
    assert r.requests == served, (r.requests, served)
    _check_histogram(r)
    assert sum(r.timeline) == r.requests
    assert r.extra["subreaper"] is True  # the workers' CPU reached os.wait4


def test_locust_against_a_dead_port_counts_connect_errors(dead_url):
    r = run_locust(dead_url, users=2, spawn_rate=2, duration=1)
    assert r.requests == 0
    assert set(r.errors) == {"connect"}
    assert r.errors["connect"] == r.extra["locust_requests"] > 0
    assert not r.ok
    assert r.histogram.get_total_count() == 0


BROKEN_LOCUSTFILE = '''
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class BrokenUser(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def hello_then_fail(self):
        self.client.get("/", name="GET /")
        raise RuntimeError("broken task")
'''


def test_locust_user_errors_are_counted(server, tmp_path):
    # a locustfile of one's own (written here, run only by the locust subprocess)
    path = tmp_path / "broken_locustfile.py"
    path.write_text(BROKEN_LOCUSTFILE)
    r = run_locust(server.url + "/", users=2, spawn_rate=2, duration=1, user_classes=["BrokenUser"],
                   locustfile=path, workdir=tmp_path / "work")
    assert r.requests > 0 and r.status_counts == {200: r.requests}
    # every task answered its request, then raised: one user error per response (the last may be cut off)
    assert r.requests - 2 <= r.errors["user_error"] <= r.requests, r.errors
    assert set(r.errors) == {"user_error"}
    assert not r.ok
    assert any("broken task" in m for m in r.extra["failures"])
    assert (tmp_path / "work" / "locust_stats.csv").exists()  # a given workdir is kept


def test_locust_failure_raises_driver_error_with_stderr(server):
    with pytest.raises(DriverError) as info:
        run_locust(server.url, users=1, spawn_rate=1, duration=1, user_classes=["NoSuchUser"])
    err = info.value
    assert err.returncode not in (None, 0)
    assert "NoSuchUser" in err.stderr_tail
    assert "NoSuchUser" in str(err)


# --------------------------------------------------------------------------
# wrk, live


@needs_wrk
def test_wrk_counts_match_the_server(server):
    counter = ServerCount(server)
    before = counter.settled()
    cpu = _driver_cpu()
    r = run_wrk(server.url + "/", connections=8, duration=2, cpus=cpu)
    served = counter.settled() - before
    assert r.driver == "wrk" and r.connections == 8 and r.processes == 1
    assert r.ok, r.errors
    assert r.errors == {} and r.status_counts == {}
    # wrk drops the requests in flight when it stops: at most one per connection
    assert r.requests <= served <= r.requests + 8, (r.requests, served)
    assert r.extra["histogram_approximated"] is False and r.extra["histogram_co_corrected"] is False
    _check_histogram(r)  # wrk's coordinated-omission correction was removed exactly
    assert r.extra["wrk_corrected_latency_us"]["count"] >= r.requests
    assert r.timeline == []
    assert r.cpus == cpu
    assert r.driver_cpu_seconds > 0


@needs_wrk
def test_wrk_counts_statuses_when_asked(server):
    r = run_wrk(server.url + "/no/such/page", connections=4, threads=2, duration=1, count_statuses=True)
    assert r.requests > 0
    assert r.status_counts == {404: r.requests}
    assert "status" not in r.errors  # the exact codes replace wrk's bare "status" counter
    assert r.extra["wrk_errors"]["status"] == r.requests
    assert not r.ok
    assert r.processes == 2


@needs_wrk
def test_wrk_against_a_dead_port_counts_a_connect_error(dead_url):
    r = run_wrk(dead_url, connections=2, duration=1)
    assert r.requests == 0
    assert r.errors == {"connect": 1}
    assert "unable to connect" in r.extra["wrk_refused"]
    assert not r.ok


@needs_wrk
def test_wrk_counts_errors_when_the_server_dies_mid_run():
    h = start("event", EVENT)
    try:
        out: dict = {}

        def drive():
            try:
                out["result"] = run_wrk(h.url + "/", connections=4, duration=2)
            except BaseException as exc:  # surfaced below
                out["error"] = exc

        t = threading.Thread(target=drive)
        t.start()
        deadline = time.monotonic() + 10
        polls = 0
        while h.status().total_accesses - polls < 50:  # wrk's requests answered, not counting these polls
            polls += 1
            assert time.monotonic() < deadline, "wrk never reached the server"
            assert t.is_alive(), out
    finally:
        h.stop()
    t.join(30)
    assert not t.is_alive()
    assert "error" not in out, out.get("error")
    r = out["result"]
    assert r.requests > 0
    # wrk's connects are non-blocking: a refused reconnect may surface as a write or read error
    assert r.error_count > 0 and set(r.errors) <= {"connect", "read", "write"}, r.errors
    assert not r.ok


# --------------------------------------------------------------------------
# the bounded runner under both drivers


ORPHAN_BURNS_CPU = '''
import os, time
if os.fork() == 0:  # a child left behind by its parent, as locust's master leaves its workers
    while time.process_time() < 0.3:
        pass
    os._exit(0)
os._exit(0)
'''

STUBBORN_TREE = '''
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL stops this one
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(60)
    os._exit(0)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
time.sleep(60)
'''


def test_run_bounded_counts_the_cpu_of_orphaned_descendants(tmp_path):
    run = locust_driver.run_bounded([sys.executable, "-c", ORPHAN_BURNS_CPU], deadline=30, workdir=tmp_path)
    assert run.returncode == 0
    assert run.subreaper is True
    assert run.cpu_seconds >= 0.3  # the orphan's 0.3 s reached os.wait4 through the reaper


def test_run_bounded_stops_an_overrunning_tree_by_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    with pytest.raises(DriverError, match="overran"):
        locust_driver.run_bounded([sys.executable, "-c", STUBBORN_TREE, str(pidfile)], deadline=3,
                                  workdir=tmp_path / "w", term_grace=0.5)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while True:  # SIGKILLed; gone once init has reaped it
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        assert time.monotonic() < deadline, f"grandchild {pid} survived the overrun"


# --------------------------------------------------------------------------
# refusals and availability, nothing runs


@pytest.mark.parametrize("url", ["http://192.0.2.1:8080/", "http://example.com/", "https://192.0.2.1:8443/",
                                 "ftp://127.0.0.1/"])
def test_non_loopback_targets_are_refused_before_anything_runs(url, monkeypatch):
    def no_run(*a, **kw):
        raise AssertionError("a driver process was started")

    monkeypatch.setattr(subproc.subprocess, "Popen", no_run)
    monkeypatch.setattr(wrk_driver, "run_bounded", no_run)
    with pytest.raises(ValueError):
        run_wrk(url, connections=1, duration=1)


class _Started(Exception):
    pass


@pytest.mark.parametrize("url", ["http://192.0.2.1:8080/", "http://example.com/app/", "https://127.0.0.1:8443/"])
@pytest.mark.parametrize("allow", [False, True])
def test_locust_takes_any_http_url_and_passes_the_attack_opt_in(url, allow, monkeypatch):
    # locust runs against any host (suites/load.py holds the attack-like users back off loopback)
    seen = []

    def started(argv, **kw):
        seen.append(argv)
        raise _Started

    monkeypatch.setattr(locust_driver, "run_bounded", started)
    with pytest.raises(_Started):
        run_locust(url, users=1, spawn_rate=1, duration=1, allow_attacks=allow)
    argv = seen[0]
    assert argv[argv.index("--host") + 1] == url.rstrip("/")
    assert ("--allow-attacks" in argv) is allow


def test_locust_passes_the_tls_options(tmp_path, monkeypatch):
    seen = []

    def started(argv, **kw):
        seen.append(argv)
        raise _Started

    monkeypatch.setattr(locust_driver, "run_bounded", started)
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    for kw, wanted in (({"ca_cert": pem}, ["--ca-cert", str(pem)]), ({"insecure": True}, ["--insecure"])):
        with pytest.raises(_Started):
            run_locust("https://127.0.0.1:8443/", users=1, spawn_rate=1, duration=1, **kw)
        argv = seen.pop()
        assert argv[argv.index(wanted[0]):argv.index(wanted[0]) + len(wanted)] == wanted
    for kw in ({"ca_cert": pem, "insecure": True}, {"ca_cert": tmp_path / "missing.pem"}):
        with pytest.raises(ValueError):
            run_locust("https://127.0.0.1:8443/", users=1, spawn_rate=1, duration=1, **kw)
    assert seen == []


def test_bad_arguments_are_refused_before_anything_runs(monkeypatch):
    def no_run(*a, **kw):
        raise AssertionError("a driver process was started")

    monkeypatch.setattr(locust_driver, "run_bounded", no_run)
    monkeypatch.setattr(wrk_driver, "run_bounded", no_run)
    url = "http://127.0.0.1:9/"
    for kw in ({"users": 0}, {"load_profile": "tsunami"}, {"user_classes": ["--help"]}, {"processes": 0},
               {"locustfile": "/no/such/locustfile.py"}, {"remote_workers": -1}, {"worker_wait": 0},
               {"url": "ftp://127.0.0.1/"}, {"remote_workers": 1, "master_bind": "127.0.0.1:99999"}):
        args = {"url": url, "users": 1, "spawn_rate": 1, "duration": 1, **kw}
        with pytest.raises(ValueError):
            run_locust(**args)
    with pytest.raises(ValueError):
        run_wrk(url, connections=1, threads=2, duration=1)


def test_wrk_available_names_the_fix(monkeypatch):
    monkeypatch.setattr(wrk_driver.shutil, "which", lambda name: None)
    assert wrk_available() == "wrk not on PATH: apt-get install wrk"
    with pytest.raises(DriverError, match="apt-get install wrk"):
        run_wrk("http://127.0.0.1:9/", connections=1, duration=1)


# --------------------------------------------------------------------------
# parsing recorded outputs


# wrk 4.1.0, -t1 -c1 -d1s, one request in eight to /sleep?ms=40 and the rest to /sleep?ms=5: wrk added
# synthetic samples at 30.5, 20.4 and 10.2 ms below each 40 ms one (its coordinated-omission correction)
WRK_RECORDED = (
    'Running 1s test @ http://127.0.0.1:45093/\n  1 threads and 1 connections\n'
    'MPM_HARNESS_WRK {"requests":99,"duration_us":1003997,"bytes":13674,"errors":{"connect":0,"read":0,'
    '"write":0,"status":0,"timeout":0},"distinct":129,"latency":{"min":5395,"max":40842,"mean":12817.356,'
    '"stdev":11669.349},"spectrum":[[5395,1],[5451,1],[5459,1],[5464,1],[5465,1],[5466,1],[5473,1],[5481,1],'
    '[5483,1],[5485,1],[5486,1],[5487,1],[5489,1],[5492,1],[5495,1],[5497,1],[5499,1],[5500,1],[5506,1],'
    '[5508,1],[5518,1],[5520,1],[5522,1],[5525,1],[5527,1],[5529,1],[5532,1],[5534,1],[5537,1],[5538,1],'
    '[5541,1],[5544,1],[5546,1],[5548,1],[5549,1],[5551,2],[5553,1],[5554,2],[5558,2],[5560,1],[5561,2],'
    '[5567,1],[5569,1],[5575,1],[5576,2],[5577,2],[5578,1],[5582,1],[5583,1],[5584,1],[5587,1],[5588,1],'
    '[5593,1],[5600,1],[5607,1],[5612,1],[5615,1],[5617,1],[5624,1],[5627,1],[5631,1],[5633,1],[5636,1],'
    '[5642,1],[5664,1],[5666,1],[5668,1],[5682,1],[5683,1],[5693,1],[5702,1],[5713,1],[5731,1],[5777,1],'
    '[5804,1],[7039,1],[7621,1],[8935,1],[8936,1],[10101,1],[10181,1],[10194,1],[10217,1],[10227,1],'
    '[10261,1],[10277,1],[10303,1],[10317,1],[10322,1],[10355,1],[10379,1],[10419,1],[12860,1],[20322,1],'
    '[20335,1],[20358,1],[20368,1],[20402,1],[20418,1],[20444,1],[20458,1],[20463,1],[20496,1],[20520,1],'
    '[20560,1],[30463,1],[30476,1],[30499,1],[30509,1],[30543,1],[30559,1],[30585,1],[30599,1],[30604,1],'
    '[30637,1],[30661,1],[30701,1],[40604,1],[40617,1],[40640,1],[40650,1],[40684,1],[40700,1],[40726,1],'
    '[40740,1],[40745,1],[40778,1],[40802,1],[40842,1]],"threads":1,"done_cpu_s":0.002304}\n'
)


def test_recorded_wrk_report_is_parsed_and_uncorrected():
    doc = parse_wrk_output(WRK_RECORDED)
    r = result_from_wrk(doc, connections=1, url="http://127.0.0.1:45093/", cpu_seconds=0.5)
    assert r.requests == 99 and r.errors == {} and r.status_counts == {} and r.ok
    assert r.duration == pytest.approx(1.003997)
    # 135 samples in wrk's spectrum, 99 after removing the 3 x 12 synthetic ones
    assert r.extra["wrk_corrected_latency_us"]["count"] == 135
    _check_histogram(r)
    h = r.histogram
    assert h.get_count_at_value(40604) == 1 and h.get_max_value() >= 40842
    slow = sum(c for v, c in doc["spectrum"] if v >= 40000)
    assert slow == 12
    assert r.percentile(100) >= 40842 and r.percentile(80) < 11000
    assert r.driver_cpu_seconds == pytest.approx(0.5 - 0.002304)
    assert r.extra["histogram_approximated"] is False and r.extra["histogram_co_corrected"] is False


def _wrk_correct(original: dict[int, int], expected: int) -> dict[int, int]:
    """wrk's stats_correct (stats.c), transcribed: the reference for the inverse."""
    data = dict(original)
    top = max(original)
    for n in range(expected * 2, top + 1):
        count = original.get(n, 0)
        m = n - expected
        while count and m > expected:
            data[m] = data.get(m, 0) + count
            m -= expected
    return data


@pytest.mark.parametrize("seed", range(5))
def test_remove_wrk_correction_inverts_wrks_algorithm(seed):
    rng = random.Random(seed)
    original: dict[int, int] = {}
    for _ in range(400):
        v = rng.choice([rng.randint(80, 400), rng.randint(400, 5000), rng.randint(5000, 60000)])
        original[v] = original.get(v, 0) + rng.randint(1, 3)
    requests = sum(original.values())
    connections = rng.choice([1, 4, 50])
    duration_us = rng.randint(1_000_000, 3_000_000)
    corrected = _wrk_correct(original, duration_us // (requests // connections))
    assert sum(corrected.values()) > requests
    back = remove_wrk_correction(corrected, requests=requests, connections=connections, duration_us=duration_us)
    assert back == original


def test_remove_wrk_correction_rejects_an_uncorrected_spectrum_it_cannot_explain():
    # two samples far above 2e with nothing below them: wrk would have added some, so this is not corrected data
    assert remove_wrk_correction({1000: 1, 9000: 1, 9500: 1}, requests=3, connections=1, duration_us=3000) is None
    # fewer requests than connections: wrk corrects nothing
    assert remove_wrk_correction({5: 2}, requests=2, connections=4, duration_us=10**6) == {5: 2}


def test_wrk_percentile_report_and_status_errors():
    doc = {
        "requests": 1000, "duration_us": 2_000_000, "bytes": 123,
        "errors": {"connect": 0, "read": 2, "write": 0, "status": 40, "timeout": 0},
        "distinct": 90000, "latency": {"min": 100, "max": 90000, "mean": 500.0, "stdev": 20.0},
        "percentiles": [[50, 400], [90, 900], [99, 5000], [99.9, 30000], [100, 90000]],
        "threads": 2, "done_cpu_s": 0.1,
    }
    r = result_from_wrk(doc, connections=10, threads=2, cpu_seconds=1.1, usable=2)
    assert r.status_counts == {}  # wrk cannot tell which status
    assert r.errors == {"read": 2, "status": 40}
    assert not r.ok
    assert r.extra["histogram_approximated"] is True and r.extra["histogram_co_corrected"] is True
    assert r.histogram.get_total_count() == 1000
    assert r.percentile(50) == pytest.approx(400, rel=1e-3)
    assert r.percentile(99) == pytest.approx(5000, rel=1e-3)
    assert r.driver_cpu_seconds == pytest.approx(1.0)
    assert r.driver_cpu_fraction == pytest.approx(1.0 / (2.0 * 2))


# locust 2.47, FastHttpUser, one user: GET /missing (404), /sleep?ms=600 with a 0.3 s network timeout,
# and GET / marked failed with catch_response
LOCUST_STATS = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,404,3,3,1.3284420001582475,3.28978433329515,1.3284420001582475,7.195574000434135,10.0,3.6559771998848256,3.6559771998848256,1,1,7,7,7,7,7,7,7,7,7
GET,check,2,2,2.72006299928762,2.3208754992083414,1.9216879991290625,2.72006299928762,13.0,2.4373181332565506,2.4373181332565506,3,3,3,3,3,3,3,3,3,3,3
GET,slow,2,2,301.31763800090994,301.38590699971246,301.31763800090994,301.454175998515,0.0,2.4373181332565506,2.4373181332565506,300,300,300,300,300,300,300,300,300,300,300
,Aggregated,7,7,3,88.1832739996753,1.3284420001582475,301.454175998515,8.0,8.530613466397927,8.530613466397927,3,7,300,300,300,300,300,300,300,300,300
"""
LOCUST_FAILURES = """\
Method,Name,Error,Occurrences,First Seen,Last Seen
GET,404,LocustBadStatusCode(code=404),3,2026-11-26T10:00:18Z,2026-11-26T10:00:19Z
GET,slow,"RetriesExceeded('http://127.0.0.1:45093/sleep?ms=600', 0, original=timed out)",2,2026-11-26T10:00:18Z,2026-11-26T10:00:19Z
GET,check,CatchResponseError('nope'),2,2026-11-26T10:00:18Z,2026-11-26T10:00:19Z
"""
LOCUST_HISTORY = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size
1795687218,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0
1795687219,1,,Aggregated,0.000000,0.000000,3,7,300,300,300,300,300,300,300,300,300,7,7,3,88.1832739996753,1.3284420001582475,301.454175998515,8.0
1795687221,1,,Aggregated,0.000000,0.000000,3,7,300,300,300,300,300,300,300,300,300,9,9,3,88.1832739996753,1.3284420001582475,301.454175998515,8.0
"""


def test_recorded_locust_csv_is_parsed():
    d = parse_locust_csv(LOCUST_STATS, LOCUST_FAILURES, LOCUST_HISTORY)
    assert d["requests"] == 7 and d["failures"] == 7
    assert d["errors"] == {"http_4xx": 3, "timeout": 2, "check": 2}
    assert d["responses"] == 5  # the two timeouts got no response
    assert d["timeline"] == [0, 7, 0, 2]  # a missing second carries the previous total
    assert (50.0, 3000.0) in d["percentiles"]
    assert dict(d["percentiles"])[100.0] == pytest.approx(301454.175998515)  # the exact max, not the bucket
    assert d["max_us"] == pytest.approx(301454.175998515)


def test_result_from_recorded_locust_csv():
    r = result_from_locust_csv(LOCUST_STATS, LOCUST_FAILURES, LOCUST_HISTORY, duration=2.0, users=1,
                               cpu_seconds=0.4, usable=1)
    assert r.driver == "locust" and r.requests == 5
    assert r.status_counts == {}  # locust keeps none; bad statuses are errors here
    assert r.errors == {"check": 2, "http_4xx": 3, "timeout": 2}
    assert not r.ok
    assert r.extra["source"] == "csv" and r.extra["histogram_approximated"] is True
    assert r.histogram.get_total_count() == 5
    assert r.driver_cpu_fraction == pytest.approx(0.2)


def test_histogram_from_percentiles_reproduces_them():
    pts = [(50, 1000), (66, 1200), (75, 1500), (80, 1600), (90, 2000), (95, 3000), (98, 4000), (99, 6000),
           (99.9, 20000), (99.99, 50000), (100, 80000)]
    h = histogram_from_percentiles(pts, 100_000)
    assert h.get_total_count() == 100_000
    for p, v in pts:
        assert h.get_value_at_percentile(p) == pytest.approx(v, rel=1e-3), p
    assert histogram_from_percentiles([(50, None), (99, float("nan"))], 10).get_total_count() == 0
    assert histogram_from_percentiles(pts, 0).get_total_count() == 0


def _report(role, statuses, errors, timeline, values, t0, t1, cpu0, cpu1, requests=None, warn=0.0):
    h = new_histogram()
    for v in values:
        h.record_value(v)
    return {
        "role": role, "t_start": t0, "t_stop": t1, "cpu_start": cpu0, "cpu_stop": cpu1,
        "statuses": statuses, "errors": errors, "messages": {}, "timeline": timeline,
        "locust_requests": requests if requests is not None else sum(statuses.values()) + sum(errors.values()),
        "cpu_warning_max": warn, "clamped": 0, "pid": 1,
        "hist": h.encode().decode("ascii") if values else "",
    }


def test_reports_of_a_master_and_two_workers_are_merged():
    reports = [
        _report("MasterRunner", {}, {}, [], [], 100.0, 103.0, 0.5, 0.6),
        _report("WorkerRunner", {"200": 10, "503": 1}, {"connect": 2}, [5, 6], [900] * 11, 100.01, 103.0,
                0.1, 1.1, warn=95.0),
        _report("WorkerRunner", {"200": 7}, {"check": 1}, [3, 3, 1], [1500] * 7, 100.02, 103.0, 0.1, 0.6),
    ]
    r = result_from_reports(reports, url="http://127.0.0.1:9", users=6, processes=2, usable=2)
    assert r.requests == 18
    assert r.status_counts == {200: 17, 503: 1}
    assert r.errors == {"check": 1, "connect": 2}
    assert r.timeline == [8, 9, 1]
    assert r.duration == pytest.approx(3.0)  # the master's test_start .. test_stop
    assert r.histogram.get_total_count() == 18
    assert r.driver_cpu_seconds == pytest.approx(0.1 + 1.0 + 0.5)
    assert r.driver_cpu_fraction == pytest.approx(1.6 / (3.0 * 2))
    assert r.extra["locust_cpu_warning"] is True and r.extra["processes_reported"] == 3
    assert not r.ok
