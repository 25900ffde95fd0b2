"""Locust users and load profiles against the built-in app (``servers/apps/default.py``).

This file is a *locustfile*: it is run by locust in its own process and must
never be imported by pytest (locust's gevent monkey-patching breaks threaded
code).  Its name does not start with ``test_`` so pytest does not collect it.

Users, their tags (locust's ``@tag``: select with ``--tags``/``--exclude-tags``,
or name classes positionally; all of them run by default) and request names
(locust prints the method in its own column, so a name is the path, or the
path and a label when two users share a path):

    HelloUser      hello requests           GET  /                       13-byte answer, the benchmark request
    EchoUser       echo requests            POST /echo                   small body mirrored back as JSON
    BytesUser      bytes requests           GET  /bytes/65536            64 KiB body
    SleepUser      sleep requests slow      GET  /sleep?ms=50            holds a worker 50 ms
    KeepAliveUser  keepalive connections    GET  / [keep-alive]          bursts of 10 on one kept-alive connection
    ChurnUser      churn connections        GET  / [Connection: close]   one new connection per request

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

locust prints ``--help`` before it reads a locustfile, so this file's options
are not in ``locust -f suites/load.py --help``; ``python -m suites.load --help``
prints locust's help with them (and ``python -m suites.load ARGS`` is
``locust -f suites/load.py ARGS``).

Commands (start a server first, e.g. ``mpm-server event -b 127.0.0.1:8080``):

    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 10 -r 10 -t 30s
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 20 --load-profile ramp --load-seconds 60
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 40 --load-profile spike --tags connections
    LOAD_PROFILE=soak LOAD_SECONDS=600 locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 10
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 4 -r 4 -t 10s --exclude-tags slow
    locust -f suites/load.py --host http://127.0.0.1:8080 --headless -u 4 -r 4 -t 10s HelloUser ChurnUser

locust exits 0 when no request failed and 1 otherwise.  locust is a
closed-loop functional load tool (~2.3k req/s per process here): use
the harness (``harness run --matrix side-by-side``) and its loadgen for capacity numbers.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from urllib.parse import urlsplit

from locust import LoadTestShape, between, constant, events, tag, task
from locust.contrib.fasthttp import FastHttpUser

PROFILES = ("none", "ramp", "step", "spike", "soak")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
DEFAULT_SECONDS = 10.0

log = logging.getLogger("suites.load")


# --------------------------------------------------------------------------- options


def _seconds(text: str) -> float:
    """argparse type of ``--load-seconds``: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


@events.init_command_line_parser.add_listener
def add_arguments(parser) -> None:
    """This file's options, on locust's parser: they validate, and show in the web UI's custom parameters.

    ``env_var`` gives locust's precedence (command line, then the
    environment, then a config file, then the default); the harness's
    locust driver sets ``LOAD_PROFILE`` and ``LOAD_SECONDS``.
    """
    parser.add_argument(
        "--load-profile", choices=PROFILES, default="none", env_var="LOAD_PROFILE", include_in_web_ui=True,
        help="users over time: none = constant -u users at -r/s until -t (or Ctrl+C); ramp = 1 to -u over "
             "--load-seconds; step = four equal steps up to -u; spike = -u/5, all -u for the middle fifth, "
             "back to -u/5; soak = up to -u in the first tenth, then held. Every profile but none stops "
             "after --load-seconds. Env LOAD_PROFILE; default none",
    )
    parser.add_argument(
        "--load-seconds", type=_seconds, default=DEFAULT_SECONDS, env_var="LOAD_SECONDS", include_in_web_ui=True,
        metavar="<seconds>",
        help=f"length of a --load-profile other than none, in seconds (> 0). Env LOAD_SECONDS; "
             f"default {DEFAULT_SECONDS:g}",
    )


# --------------------------------------------------------------------------- start-up checks


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


def _is_worker(opts) -> bool:
    return opts is not None and bool(getattr(opts, "worker", False))


@events.init.add_listener
def _check_host_at_init(environment, **_kw):
    if _is_worker(environment.parsed_options):
        return  # the master checks the host
    if not is_loopback(environment.host):
        sys.stderr.write(_refusal(environment.host) + "\n")
        sys.exit(2)


@events.test_start.add_listener
def _check_host_at_start(environment, **_kw):
    # the web UI can change the host after init: check again
    if not is_loopback(environment.host):
        log.error(_refusal(environment.host))
        environment.process_exit_code = 2
        if environment.runner is not None:
            environment.runner.quit()


# --------------------------------------------------------------------------- tags


def _task_selected(task_fn, include: set[str] | None, exclude: set[str] | None) -> bool:
    # the rule of locust's own filter_tasks_by_tags, for one task
    tags = getattr(task_fn, "locust_tag_set", set())
    return (include is None or bool(tags & include)) and (exclude is None or not tags & exclude)


@events.init.add_listener
def _drop_untagged_users(environment, **_kw):
    """With ``--tags``/``--exclude-tags``, run only the user classes that keep a task.

    locust filters tasks by tag but still spawns a user whose tasks were all
    filtered out, which raises "No tasks defined" and sends nothing (its
    share of -u is lost); dropping the class here, before the first spawn,
    makes the tags select users.
    """
    opts = environment.parsed_options
    include = set(getattr(opts, "tags", None) or ()) or None
    exclude = set(getattr(opts, "exclude_tags", None) or ()) or None
    if include is None and exclude is None:
        return
    kept = [c for c in environment.user_classes if any(_task_selected(t, include, exclude) for t in c.tasks)]
    if not kept and not _is_worker(opts):
        given = [f"{flag} {' '.join(sorted(names))}" for flag, names in (("--tags", include), ("--exclude-tags", exclude))
                 if names]
        sys.stderr.write(f"suites/load.py: no user class is left by {' '.join(given)}\n")
        sys.exit(2)
    environment.user_classes[:] = kept


# --------------------------------------------------------------------------- users


class _Base(FastHttpUser):
    abstract = True
    wait_time = between(0.05, 0.2)


@tag("hello", "requests")
class HelloUser(_Base):
    NAME = "/"

    @task
    def hello(self):
        self.client.get("/", name=self.NAME)


@tag("echo", "requests")
class EchoUser(_Base):
    NAME = "/echo"
    BODY = b'{"hello": "world", "n": 42}'

    @task
    def echo(self):
        with self.client.post(
            "/echo", data=self.BODY, headers={"Content-Type": "application/json"}, name=self.NAME, catch_response=True
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


@tag("bytes", "requests")
class BytesUser(_Base):
    N = 65536
    NAME = f"/bytes/{N}"

    @task
    def large(self):
        with self.client.get(f"/bytes/{self.N}", name=self.NAME, catch_response=True) as r:
            if r.status_code == 200 and len(r.content or b"") != self.N:
                r.failure(f"got {len(r.content or b'')} bytes, expected {self.N}")


@tag("sleep", "requests", "slow")
class SleepUser(_Base):
    NAME = "/sleep?ms=50"

    @task
    def sleep(self):
        self.client.get("/sleep?ms=50", name=self.NAME)


@tag("keepalive", "connections")
class KeepAliveUser(_Base):
    """Bursts of requests on one persistent connection (FastHttpUser reuses it)."""

    NAME = "/ [keep-alive]"
    wait_time = constant(0.01)
    BURST = 10

    @task
    def burst(self):
        for _ in range(self.BURST):
            self.client.get("/", name=self.NAME)


@tag("churn", "connections")
class ChurnUser(_Base):
    """A new TCP connection for every request: the server closes after each answer."""

    NAME = "/ [Connection: close]"

    @task
    def churn(self):
        self.client.get("/", headers={"Connection": "close"}, name=self.NAME)


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


# --------------------------------------------------------------------------- python -m suites.load


def main(argv: list[str] | None = None) -> None:
    """``python -m suites.load [locust options]``: locust on this file, with a ``--help`` that lists its options.

    locust answers ``--help`` before it imports the locustfile, so options
    added through ``init_command_line_parser`` never reach ``locust -f
    suites/load.py --help`` (locust issue #2917).  Here this module's listener
    is registered before locust's parser is built; any other command line
    replaces this process with ``python -m locust -f <this file> ARGS``.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if "-h" in args or "--help" in args:
        from locust.argument_parser import get_parser

        get_parser().parse_args(["--help"])  # prints the help and exits 0
    os.execv(sys.executable, [sys.executable, "-m", "locust", "-f", os.path.abspath(__file__), *args])


if __name__ == "__main__":
    main()
