"""The locust driver with remote workers (issue 17), all on loopback.

The "remote" workers are separate processes started by the test with the very command the
driver hands out (``on_worker_command``), without the driver's environment: they reach the
master over TCP and send their counts as locust messages, as a worker on another machine would.
"""

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.drivers.locust import DriverError, locust_available, parse_master_bind, run_locust, worker_command
from harness.drivers.locust_remote import DEFAULT_LOCUSTFILE, plan_master
from harness.drivers.registry import DRIVERS

from .test_drivers_external import ServerCount, _check_histogram, server  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
MISSING = locust_available()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"{MISSING} to run the distributed locust tests")


class Workers:
    """Starts the given worker command N times as separate processes, as a user would on N machines."""

    def __init__(self, n: int):
        self.n = n
        self.procs: list[subprocess.Popen] = []
        self.commands: list[str] = []

    def __call__(self, command: str) -> None:
        self.commands.append(command)
        argv = shlex.split(command)
        assert argv[0] == "locust" and "--worker" in argv
        argv[0:1] = [sys.executable, "-m", "locust"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MPM_LOCUST_", "LOCUST_"))}
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, start_new_session=True))

    def finish(self) -> list[int]:
        """Each worker's exit status (a worker still running after 20 s is killed: -9)."""
        codes = []
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
            codes.append(p.returncode)
            p.stderr.close()
        return codes


def test_two_remote_workers_count_what_the_server_served(server):
    workers = Workers(2)
    counter = ServerCount(server)
    before = counter.settled()
    try:
        r = run_locust(server.url, users=4, spawn_rate=4, duration=3, remote_workers=2,
                       master_bind="127.0.0.1:0", worker_wait=30, on_worker_command=workers)
    finally:
        codes = workers.finish()
    served = counter.settled() - before
    assert codes == [0, 0]
    assert len(workers.commands) == 1 and "--master-host 127.0.0.1 --master-port " in workers.commands[0]
    assert r.extra["worker_command"] == workers.commands[0]
    assert r.extra["processes_reported"] == 3  # the master and the two workers' messages
    assert r.ok, (r.errors, r.status_counts, r.extra.get("failures"))
    per_worker = [w["requests"] for w in r.extra["workers"]]
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker)
    assert r.requests == sum(per_worker) > 0
    assert r.status_counts == {200: r.requests}
    # --stop-timeout lets each user finish its request: the server answered exactly these
    assert r.requests == served, (r.requests, served, per_worker)
    _check_histogram(r)
    assert sum(r.timeline) == r.requests


SLOW_LOCUSTFILE = """
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class SlowUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def slow(self):
        self.client.get("/sleep?ms=4000")
"""


def test_a_request_in_flight_at_the_stop_reaches_the_master(server, tmp_path):  # noqa: F811 (the fixture)
    # Each worker's one user is inside its 4 s request when the 2 s run stops, so each worker's stop
    # (--stop-timeout) lasts seconds: locust's own master stops listening 0.5 s after its "quit", and
    # used to lose both reports (the cell fell back to the CSV); the plugin makes it wait for them.
    path = tmp_path / "slow_locustfile.py"
    path.write_text(SLOW_LOCUSTFILE)
    workers = Workers(2)
    counter = ServerCount(server)
    before = counter.settled()
    try:
        r = run_locust(server.url, users=2, spawn_rate=2, duration=2, remote_workers=2, worker_wait=30,
                       user_classes=["SlowUser"], locustfile=path, on_worker_command=workers)
    finally:
        codes = workers.finish()
    served = counter.settled() - before
    assert codes == [0, 0]
    assert r.extra["source"] == "plugin" and r.extra["processes_reported"] == 3, r.extra.get("reports_missing")
    assert [w["requests"] for w in r.extra["workers"]] == [1, 1]
    assert r.requests == served == 2 and r.status_counts == {200: 2}


def test_no_worker_comes_fails_the_cell_with_the_reason():
    url = "http://127.0.0.1:9/"  # never reached: the run stops before any user starts
    given = []
    with pytest.raises(DriverError) as info:
        run_locust(url, users=1, spawn_rate=1, duration=1, remote_workers=2, worker_wait=2,
                   on_worker_command=given.append)
    message = str(info.value)
    assert "workers did not come" in message and "expected 0 local + 2 remote" in message, message
    assert given and given[0] in message


def test_local_workers_also_wait_for_the_remote_ones():
    # --processes makes locust expect only its forked workers: the plugin raises that to N + M
    with pytest.raises(DriverError) as info:
        run_locust("http://127.0.0.1:9/", users=1, spawn_rate=1, duration=1, processes=2, remote_workers=1,
                   worker_wait=2, on_worker_command=lambda command: None)
    assert "expected 2 local + 1 remote" in str(info.value), str(info.value)


def test_worker_command_and_master_bind():
    assert parse_master_bind("127.0.0.1:5557") == ("127.0.0.1", 5557)
    host, port = parse_master_bind("127.0.0.1:0")
    assert host == "127.0.0.1" and 0 < port < 65536
    assert parse_master_bind("[::1]:6000") == ("::1", 6000)
    for bad in ("127.0.0.1:70000", "127.0.0.1", "::1:6000", "host:port"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_master_bind(bad)
    assert worker_command("10.0.0.5", 5557) == (
        "locust -f suites/load.py,harness/drivers/locust_plugin/mpm_harness_locust_report.py "
        "--worker --master-host 10.0.0.5 --master-port 5557")


def test_the_master_plan():
    local = plan_master(2, 0, ("127.0.0.1", 5557), 30.0, DEFAULT_LOCUSTFILE)
    assert local.command is None and local.reports == 3  # the master and two forked workers
    assert local.args == ["--master-bind-host", "127.0.0.1", "--master-bind-port", "5557",
                          "--expect-workers-max-wait", "30",
                          "--processes", "2", "--master-host", "127.0.0.1", "--master-port", "5557"]
    remote = plan_master(1, 2, ("0.0.0.0", 5557), 59.5, DEFAULT_LOCUSTFILE)
    assert remote.reports == 3 and remote.wait == 59.5
    assert remote.args == ["--master-bind-host", "0.0.0.0", "--master-bind-port", "5557",
                           "--expect-workers-max-wait", "60", "--master", "--expect-workers", "2"]
    # bound to every address, the workers are told this machine's name
    assert remote.command == worker_command(socket.getfqdn(), 5557)
    both = plan_master(3, 1, ("", 5557), 10.0, DEFAULT_LOCUSTFILE)
    assert both.reports == 5 and both.args[1] == "*" and "--master-host" in both.args


def test_the_profile_keys_are_checked():
    d = DRIVERS["locust"]
    values = {k: v[1] for k, v in d.schema.items()}
    assert d.check(dict(values, remote_workers=-1), {}) == ["remote_workers must be >= 0, not -1"]
    assert d.check(dict(values, worker_wait=0), {}) == ["worker_wait must be > 0 seconds, not 0"]
    assert d.check(dict(values, master_bind="0.0.0.0"), {})
    assert d.check(dict(values, master_bind="0.0.0.0:5557", remote_workers=3), {}) == []


def test_any_http_url_is_accepted_and_others_refused():
    with pytest.raises(ValueError, match="http:// or https://"):
        run_locust("ftp://example.com/", users=1, spawn_rate=1, duration=1)


def test_an_https_target_with_its_own_certificate(server, tmp_path):  # noqa: F811 (the fixture)
    from .test_suites_remote import TLSProxy, _certificate

    cert, key = _certificate(tmp_path)
    proxy = TLSProxy(server.port, cert, key)
    try:
        url = f"https://127.0.0.1:{proxy.port}/"
        trusted = run_locust(url, users=2, spawn_rate=2, duration=1, ca_cert=cert)
        refused = run_locust(url, users=2, spawn_rate=2, duration=1)
    finally:
        proxy.stop()
    assert trusted.ok and trusted.requests > 0 and trusted.status_counts == {200: trusted.requests}
    # checked against the system's CAs by default: a self-signed certificate fails every request
    assert refused.requests == 0 and sum(refused.errors.values()) > 0, refused.errors
    assert any("CERTIFICATE_VERIFY_FAILED" in m for m in refused.extra["failures"]), refused.extra["failures"]
