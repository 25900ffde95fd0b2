"""Locust users and load profiles against the built-in app (``servers/apps/default.py``).

This file is a *locustfile*: it is run by locust in its own process and must
never be imported by pytest (locust's gevent monkey-patching breaks threaded
code).  Its name does not start with ``test_`` so pytest does not collect it.

Users (pick with locust's own class selection; all of them run by default):

    HelloUser      GET /                       13-byte answer, the benchmark request
    EchoUser       POST /echo                  small body mirrored back as JSON
    BytesUser      GET /bytes/65536            64 KiB body
    SleepUser      GET /sleep?ms=50            holds a worker 50 ms
    KeepAliveUser  bursts of GET / on one kept-alive connection, short wait
    ChurnUser      GET / with ``Connection: close``: one new connection per request

Profiles (``--load-profile`` or env ``LOAD_PROFILE``; peak users = ``-u``, length =
``--load-seconds`` or env ``LOAD_SECONDS``, default 10):

    none   (default) constant -u users at -r per second, stopped by -t if given
    ramp   linear ramp from 1 to -u users over the whole length
    step   four equal steps up to -u users
    spike  a fifth of -u, then all -u users for the middle fifth, then back down
    soak   ramp to -u users within 10% of the length, then hold them

Every profile ends by itself after ``--load-seconds``; locust evaluates the
shape once a second, so profiles shorter than ~4 s are coarse.  Only loopback hosts
are accepted (127.0.0.1, ::1, localhost); any other ``--host`` is refused.

Commands (start a server first, e.g. ``python -m servers event --listen 127.0.0.1:8080``):

    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 10 -r 10 -t 30s
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 20 --load-profile ramp --load-seconds 60
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 20 --load-profile step
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 40 --load-profile spike
    LOAD_PROFILE=soak LOAD_SECONDS=600 locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 10
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 4 -r 4 -t 10s HelloUser ChurnUser
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 4 -t 10s --only-summary --csv results/raw/load

locust exits 0 when no request failed and 1 otherwise.  locust is a
closed-loop functional load tool (~2.3k req/s per process here): use
the harness (``harness run --matrix side-by-side``) and its loadgen for capacity numbers.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from urllib.parse import urlsplit

from locust import LoadTestShape, between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

PROFILES = ("none", "ramp", "step", "spike", "soak")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
DEFAULT_SECONDS = 10.0

log = logging.getLogger("suites.load")


# --------------------------------------------------------------------------- options


@events.init_command_line_parser.add_listener
def _add_arguments(parser):
    parser.add_argument(
        "--load-profile",
        choices=PROFILES,
        default=os.environ.get("LOAD_PROFILE", "none"),
        help="load profile: none (plain -u/-r/-t), ramp, step, spike, soak (env LOAD_PROFILE)",
    )
    parser.add_argument(
        "--load-seconds",
        type=float,
        default=float(os.environ.get("LOAD_SECONDS", DEFAULT_SECONDS)),
        help=f"length of the profile in seconds (env LOAD_SECONDS, default {DEFAULT_SECONDS:g})",
    )


def is_loopback(host: str | None) -> bool:
    """True when ``host`` (a URL) names a loopback address."""
    if not host:
        return False
    try:
        name = urlsplit(host).hostname
    except ValueError:
        return False
    return name is not None and name.lower() in LOOPBACK


def _refusal(host: str | None) -> str:
    return (
        f"suites/load.py: refusing host {host!r}: only loopback targets are allowed "
        f"(http://127.0.0.1:PORT, http://[::1]:PORT, http://localhost:PORT)"
    )


@events.init.add_listener
def _check_host_at_init(environment, **_kw):
    opts = environment.parsed_options
    if opts is not None and getattr(opts, "worker", False):
        return  # the master checks the host
    if not is_loopback(environment.host):
        sys.stderr.write(_refusal(environment.host) + "\n")
        sys.exit(2)
    if opts is not None and opts.load_seconds <= 0:
        sys.stderr.write("suites/load.py: --load-seconds must be > 0\n")
        sys.exit(2)


@events.test_start.add_listener
def _check_host_at_start(environment, **_kw):
    # the web UI can change the host after init: check again
    if not is_loopback(environment.host):
        log.error(_refusal(environment.host))
        environment.process_exit_code = 2
        if environment.runner is not None:
            environment.runner.quit()


# --------------------------------------------------------------------------- users


class _Base(FastHttpUser):
    abstract = True
    wait_time = between(0.05, 0.2)


class HelloUser(_Base):
    @task
    def hello(self):
        self.client.get("/", name="GET /")


class EchoUser(_Base):
    BODY = b'{"hello": "world", "n": 42}'

    @task
    def echo(self):
        with self.client.post(
            "/echo", data=self.BODY, headers={"Content-Type": "application/json"}, name="POST /echo", catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
            else:
                try:
                    body = r.json().get("body")
                except ValueError:
                    body = None
                if body != self.BODY.decode():
                    r.failure("echo did not mirror the body")


class BytesUser(_Base):
    N = 65536

    @task
    def large(self):
        with self.client.get(f"/bytes/{self.N}", name="GET /bytes/65536", catch_response=True) as r:
            if r.status_code == 200 and len(r.content or b"") != self.N:
                r.failure(f"got {len(r.content or b'')} bytes, expected {self.N}")


class SleepUser(_Base):
    @task
    def sleep(self):
        self.client.get("/sleep?ms=50", name="GET /sleep?ms=50")


class KeepAliveUser(_Base):
    """Bursts of requests on one persistent connection (FastHttpUser reuses it)."""

    wait_time = constant(0.01)
    BURST = 10

    @task
    def burst(self):
        for _ in range(self.BURST):
            self.client.get("/", name="GET / (keep-alive)")


class ChurnUser(_Base):
    """A new TCP connection for every request: the server closes after each answer."""

    @task
    def churn(self):
        self.client.get("/", headers={"Connection": "close"}, name="GET / (Connection: close)")


# --------------------------------------------------------------------------- shapes


class ProfileShape(LoadTestShape):
    """One shape for every profile, chosen by ``--load-profile``; -u is the peak user count."""

    use_common_options = True

    def _opts(self):
        env = self.runner.environment if self.runner is not None else None
        return env.parsed_options if env is not None else None

    def tick(self):
        opts = self._opts()
        profile = getattr(opts, "load_profile", None) or os.environ.get("LOAD_PROFILE", "none")
        seconds = float(getattr(opts, "load_seconds", DEFAULT_SECONDS) or DEFAULT_SECONDS)
        peak = max(1, int(getattr(opts, "num_users", None) or 1))
        rate = float(getattr(opts, "spawn_rate", None) or peak)
        t = self.get_run_time()
        if profile == "none":
            run_time = getattr(opts, "run_time", None)
            if run_time and t >= run_time:
                return None
            return peak, rate
        if t >= seconds:
            return None
        return profile_users(profile, t, seconds, peak)


def profile_users(profile: str, t: float, seconds: float, peak: int) -> tuple[int, float]:
    """(users, spawn rate) of ``profile`` at ``t`` of ``seconds``, peaking at ``peak`` users."""
    frac = t / seconds
    if profile == "ramp":
        users = max(1, math.ceil(peak * frac))
        return users, max(1.0, peak / seconds * 2)
    if profile == "step":
        users = max(1, math.ceil(peak * (int(frac * 4) + 1) / 4))
        return users, float(peak)
    if profile == "spike":
        base = max(1, peak // 5)
        return (peak if 0.4 <= frac < 0.6 else base), float(peak * 5)
    if profile == "soak":
        return peak, max(1.0, peak / max(seconds * 0.1, 0.1))
    raise ValueError(f"unknown profile {profile!r}")
