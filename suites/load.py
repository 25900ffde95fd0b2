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
shape once a second, so profiles shorter than ~4 s are coarse.  ``none`` without
``-t`` runs until Ctrl+C on loopback, and stops after ``--load-seconds`` against
any other host.

Targets: any ``http://`` or ``https://`` URL (a path is a prefix of every
request).  Certificates are checked against the system's CAs (locust's own
FastHttpUser does not check them); ``--ca-cert FILE`` trusts a staging CA too,
``--insecure`` checks nothing.  Against a non-loopback host the attack-like users
(KeepAliveUser, ChurnUser: fast bursts on held connections, a new connection per
request) run only with ``--allow-attacks``; without it they are not run, and
the reason is printed.

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

    locust -f suites/load.py --host https://staging.example.org/app --headless -u 5 -t 60s HelloUser
    locust -f suites/load.py --host https://10.0.0.7:8443 --ca-cert staging-ca.pem --headless -u 5 -t 60s HelloUser

locust exits 0 when no request failed and 1 otherwise.  locust is a
closed-loop functional load tool (~2.3k req/s per process here): use
the harness (``harness run --matrix side-by-side``) and its loadgen for capacity numbers.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import gevent.ssl
from locust import LoadTestShape, between, constant, events, tag, task
from locust.contrib.fasthttp import FastHttpUser

PROFILES = ("none", "ramp", "step", "spike", "soak")
SCHEMES = ("http", "https")
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


def _pem_file(text: str) -> str:
    """argparse type of ``--ca-cert``: a readable file."""
    if not os.path.isfile(text) or not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"no readable file {text!r}")
    return os.path.abspath(text)


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
             "after --load-seconds, and none too against a non-loopback host without -t. "
             "Env LOAD_PROFILE; default none",
    )
    parser.add_argument(
        "--load-seconds", type=_seconds, default=DEFAULT_SECONDS, env_var="LOAD_SECONDS", include_in_web_ui=True,
        metavar="<seconds>",
        help=f"length of a --load-profile other than none, in seconds (> 0). Env LOAD_SECONDS; "
             f"default {DEFAULT_SECONDS:g}",
    )
    parser.add_argument(
        "--allow-attacks", action="store_true", default=False, env_var="LOAD_ALLOW_ATTACKS",
        help="run the attack-like users (KeepAliveUser, ChurnUser) against a non-loopback --host too; "
             "without it they are not run there (always run on loopback). Env LOAD_ALLOW_ATTACKS",
    )
    parser.add_argument(
        "--insecure", action="store_true", default=False, env_var="LOAD_INSECURE",
        help="https: do not check the server's certificate (a self-signed staging certificate). "
             "Default: checked against the system's CAs. Env LOAD_INSECURE",
    )
    parser.add_argument(
        "--ca-cert", type=_pem_file, default=None, env_var="LOAD_CA_CERT", metavar="<file>",
        help="https: also trust the CA certificates in this PEM file (a staging CA, or the self-signed "
             "certificate itself); the name is still checked. Env LOAD_CA_CERT",
    )


# --------------------------------------------------------------------------- start-up checks


def _hostname(host: str | None) -> str | None:
    try:
        return urlsplit(host).hostname if host else None
    except ValueError:
        return None


def is_loopback(host: str | None) -> bool:
    """True when ``host`` (a URL) names a loopback address: 127.0.0.0/8, ::1 or localhost (RFC 6761 6.3)."""
    name = _hostname(host)
    if name is None:
        return False
    if name.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def target_problem(host: str | None) -> str | None:
    """Why ``host`` cannot be locust's ``--host``, or None when it can.

    Any absolute ``http://`` or ``https://`` URL with a host name is
    accepted (RFC 9110 4.2): locust prepends it to every request path, so a
    path is a prefix and a query or fragment would end up inside each path.
    """
    if not host:
        return "no --host given"
    try:
        parts = urlsplit(host)
        parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme.lower() not in SCHEMES:
        return "the scheme must be http:// or https://"
    if not parts.hostname:
        return "no host name in the URL"
    if parts.query or parts.fragment:
        return "a query or fragment cannot prefix request paths"
    return None


def base_url(host: str) -> str:
    """``host`` without a trailing slash, so that ``base + "/echo"`` has one slash."""
    return host.rstrip("/") if urlsplit(host).path else host


def shown(host: str | None) -> str:
    """``host`` for a message, its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(host or "")
        if parts.password is None:
            return repr(host)
        return repr(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl())
    except ValueError:
        return repr(host)


def held_back(host: str | None, user_classes: Iterable[type], allow_attacks: bool) -> list[type]:
    """The attack-like user classes (an ``OPT_IN`` reason) that may not run against ``host``.

    Against loopback, or with ``--allow-attacks``, none is held back.
    """
    if allow_attacks or is_loopback(host):
        return []
    return [c for c in user_classes if getattr(c, "OPT_IN", None)]


def run_limit(profile: str, run_time: float | None, seconds: float, host: str | None) -> float | None:
    """Seconds after which ``profile`` stops (None: until -t or Ctrl+C, only for ``none`` on loopback)."""
    if profile != "none":
        return seconds
    if run_time:
        return float(run_time)
    return None if is_loopback(host) else seconds


def _is_worker(opts) -> bool:
    return opts is not None and bool(getattr(opts, "worker", False))


def _refuse(host: str | None, why: str) -> str:
    return f"suites/load.py: refusing host {shown(host)}: {why}"


def _held_note(host: str | None, held: list[type]) -> str:
    reasons = "; ".join(f"{c.__name__}: {c.OPT_IN}" for c in held)
    return (f"suites/load.py: not run against {shown(host)} (not loopback), attack-like without "
            f"--allow-attacks: {reasons}")


@events.init.add_listener
def _check_host_at_init(environment, **_kw):
    opts = environment.parsed_options
    if _is_worker(opts):
        return  # the master checks the host and sends it, and this file's options, to its workers
    why = target_problem(environment.host)
    if why is None and getattr(opts, "insecure", False) and getattr(opts, "ca_cert", None):
        why = "give --insecure or --ca-cert, not both"
    if why:
        sys.stderr.write(_refuse(environment.host, why) + "\n")
        sys.exit(2)
    environment.host = base_url(environment.host)
    profile = getattr(opts, "load_profile", "none")
    seconds = float(getattr(opts, "load_seconds", DEFAULT_SECONDS) or DEFAULT_SECONDS)
    if profile == "none" and not getattr(opts, "run_time", None) and not is_loopback(environment.host):
        log.warning("profile none without -t against a non-loopback host: stops after --load-seconds (%g s)",
                    seconds)


@events.test_start.add_listener
def _check_host_at_start(environment, **_kw):
    # the web UI can change the host after init: check again, and stop rather than drop users mid-start
    opts = environment.parsed_options
    if _is_worker(opts):
        return
    why = target_problem(environment.host)
    held = [] if why else held_back(environment.host, environment.user_classes,
                                   bool(getattr(opts, "allow_attacks", False)))
    if why or held:
        log.error(_refuse(environment.host, why) if why else _held_note(environment.host, held))
        environment.process_exit_code = 2
        if environment.runner is not None:
            environment.runner.quit()
        return
    environment.host = base_url(environment.host)


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


@events.init.add_listener
def _hold_back_attacks(environment, **_kw):
    """Against a non-loopback host without ``--allow-attacks``, drop the attack-like users, saying so.

    Registered after the tag filter, so the note names only users that were
    selected; when nothing is left the run is refused (exit 2).
    """
    opts = environment.parsed_options
    if _is_worker(opts):
        return  # the master dispatches only the users it kept
    held = held_back(environment.host, environment.user_classes, bool(getattr(opts, "allow_attacks", False)))
    if not held:
        return
    sys.stderr.write(_held_note(environment.host, held) + "\n")
    environment.user_classes[:] = [c for c in environment.user_classes if c not in held]
    if not environment.user_classes:
        sys.stderr.write("suites/load.py: no user class is left to run\n")
        sys.exit(2)


# --------------------------------------------------------------------------- users


def _verified_context(extra_ca: str, cafile: str | None = None) -> gevent.ssl.SSLContext:
    # geventhttpclient passes its default bundle as cafile; the staging CA is trusted on top of it
    ctx = gevent.ssl.create_default_context(cafile=cafile)
    ctx.load_verify_locations(cafile=extra_ca)
    return ctx


def _unverified_context(cafile: str | None = None) -> gevent.ssl.SSLContext:
    ctx = gevent.ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = gevent.ssl.CERT_NONE
    return ctx


def tls_choice(opts) -> tuple[bool, Callable[..., gevent.ssl.SSLContext] | None]:
    """(insecure, ssl_context_factory) for FastHttpUser from ``--insecure`` and ``--ca-cert``.

    FastHttpUser's own default is ``insecure = True`` (no certificate
    check); here the default checks the chain and the name (RFC 9110 4.3.4).
    """
    if getattr(opts, "insecure", False):
        return True, _unverified_context
    ca = getattr(opts, "ca_cert", None)
    if ca:
        return False, functools.partial(_verified_context, ca)
    return False, None  # geventhttpclient's verified default context, the system's CAs


class _Base(FastHttpUser):
    abstract = True
    wait_time = between(0.05, 0.2)
    OPT_IN: str | None = None  # why the user is attack-like: run off loopback only with --allow-attacks

    def __init__(self, environment):
        # instance attributes, read by FastHttpUser.__init__ when it builds the session
        self.insecure, self.ssl_context_factory = tls_choice(environment.parsed_options)
        super().__init__(environment)


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
    OPT_IN = "bursts of 10 requests 10 ms apart on every held connection"
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
    OPT_IN = "a new TCP connection for every request"

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
        host = self.runner.environment.host if self.runner is not None else None
        limit = run_limit(profile, getattr(opts, "run_time", None), seconds, host)
        if limit is not None and t >= limit:
            return None
        if profile == "none":
            return peak, rate
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
