"""Every load driver declared once: its profile keys, its checks, whether it runs here, how it runs.

The matrix parser (:mod:`harness.matrix`) validates a profile against its driver's
``schema`` and ``check``; the runner (:mod:`harness.runner`) asks ``available`` and calls
``run``; the progress estimate adds ``overhead_s``. A new driver is one :class:`Driver`
entry here and its module beside this one (docs/architecture.md, "Where to add").

``run`` receives the profile as any object with ``driver``, ``duration`` and
``get(key)`` (a :class:`harness.matrix.Profile`), so this module does not import the
matrix parser, and the target's :class:`~harness.drivers.access.Access` (its https
certificate check, the attack opt-in). The external tools (wrk, locust) are imported only when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .access import Access
from .base import DriverResult

__all__ = ["Driver", "DRIVERS", "COMMON_KEYS", "ATTACK_USERS", "FEATURES"]

#: keys every profile accepts: (type, default); a default of None means required
COMMON_KEYS: dict[str, tuple] = {"driver": (str, None), "duration": ((int, float), None), "description": (str, ""),
                                 "trials": (int, 0),  # trials 0: the matrix's trials
                                 "needs": (list, [])}  # server features (FEATURES); a server lacking one: n/a

#: what a profile may need of a server (servers.launcher.lacks says which a launched server lacks)
FEATURES = ("keepalive", "keepalive-header", "echo", "wsgi", "scoreboard")


@dataclass(frozen=True)
class Driver:
    """One load driver: what a profile may say to it, and how to run it."""

    name: str
    #: every profile key it accepts, with its type and default (None: required)
    schema: dict[str, tuple]
    #: rough wall-clock seconds per profile beyond its duration (start-up, shut-down): progress only
    overhead_s: float
    #: run(profile, url, cpus or None, on_hold, access) -> DriverResult
    run: Callable[[Any, str, "list[int] | None", "Callable[[int], None] | None", Access], DriverResult]
    #: None when it can run here, else why (naming what to install)
    available: Callable[[], "str | None"] = lambda: None
    #: problems of a validated profile's values beyond their types: ["KEY must ...", ...]
    check: Callable[[dict, dict], list[str]] = lambda values, given: []
    #: whether the profile holds many connections open on purpose (or churns them) without having
    #: opted in itself: against a non-loopback URL server it then needs the server's allow_attacks
    needs_opt_in: Callable[[Any], bool] = lambda profile: False


def _path_problems(values: dict) -> list[str]:
    path = values["path"]
    return [] if path.startswith("/") else [f"path must start with '/', not {path!r}"]


def _check_loadgen(values: dict, given: dict) -> list[str]:
    out = []
    if values["mode"] not in ("closed", "open"):
        return [f"mode must be closed or open, not {values['mode']!r}"]
    if values["mode"] == "open":
        if "rate" not in given:
            return ["rate (requests/s) is required when mode is open"]
        if values["rate"] <= 0:
            out.append(f"rate must be > 0, not {values['rate']!r}")
    if values["processes"] > values["connections"]:
        out.append("processes must not exceed connections")
    out += _path_problems(values)
    sweep = values["sweep"]
    if sweep:
        if values["mode"] != "closed":
            out.append("sweep needs mode closed (it varies the connection count)")
        elif not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sweep):
            out.append(f"sweep must be a list of positive connection counts, not {sweep!r}")
    return out


def _check_idle(values: dict, given: dict) -> list[str]:
    out = [] if values["probes"] >= 0 else [f"probes must be >= 0, not {values['probes']!r}"]
    return out + _path_problems(values)


def _check_locust(values: dict, given: dict) -> list[str]:
    if not all(isinstance(u, str) for u in values["user_classes"]):
        return ["user_classes must be a list of class names"]
    out = [] if values["remote_workers"] >= 0 else [f"remote_workers must be >= 0, not {values['remote_workers']!r}"]
    if not values["worker_wait"] > 0:
        out.append(f"worker_wait must be > 0 seconds, not {values['worker_wait']!r}")
    if values["master_bind"]:
        from .locust import split_master_bind

        try:
            split_master_bind(values["master_bind"])
        except ValueError as exc:
            out.append(str(exc))
    return out


#: suites/load.py's attack-like users (their OPT_IN): a locust profile with one needs the opt-in off loopback
ATTACK_USERS = frozenset({"KeepAliveUser", "ChurnUser"})


def _locust_needs_opt_in(profile) -> bool:
    return not profile.get("allow_attacks") and bool(ATTACK_USERS & set(profile.get("user_classes")))


def _run_loadgen(profile, url: str, cpus, on_hold, access: Access) -> DriverResult:
    from .loadgen import run_closed_loop, run_open_loop

    p = profile.get
    target = url + p("path")
    common = dict(connections=p("connections"), duration=profile.duration, method=p("method"),
                  body=b"x" * p("body_bytes"), processes=p("processes"), timeout=p("timeout"),
                  keep_alive=p("keep_alive"), cpus=cpus, any_host=True,  # the matrix chose the URL
                  **_tls(target, access))
    if p("mode") == "open":
        return run_open_loop(target, rate=p("rate"), **common)
    return run_closed_loop(target, **common)


def _tls(url: str, access: Access) -> dict:
    """``ssl_context=`` for an https URL (the built-in drivers' keyword), nothing for http."""
    context = access.context_for(url)
    return {"ssl_context": context} if context is not None else {}


def _run_idle(profile, url: str, cpus, on_hold, access: Access) -> DriverResult:
    from .idle import run_idle

    p = profile.get
    return run_idle(url + p("path"), connections=p("connections"), duration=profile.duration,
                    timeout=p("timeout"), on_hold=on_hold, cpus=cpus, probes=p("probes"),
                    any_host=True,  # the matrix chose the URL (attack-like: the runner's opt-in rule)
                    **_tls(url, access))


def _run_wrk(profile, url: str, cpus, on_hold, access: Access) -> DriverResult:
    from .wrk import run_wrk

    p = profile.get
    if url.lower().startswith("https:") and not access.insecure:
        raise ValueError("wrk does not check certificates: run https with insecure: true on the server entry, "
                         "or with the loadgen or locust driver, which do")
    return run_wrk(url + p("path"), connections=p("connections"), duration=profile.duration,
                   threads=p("threads"), cpus=cpus, timeout=p("timeout"), any_host=True)  # the matrix chose the URL


def _run_locust(profile, url: str, cpus, on_hold, access: Access) -> DriverResult:
    from .locust import run_locust

    p = profile.get
    return run_locust(url, users=p("users"), spawn_rate=p("spawn_rate"), duration=profile.duration,
                      user_classes=tuple(p("user_classes")), load_profile=p("load_profile"),
                      processes=p("processes"), cpus=cpus, remote_workers=p("remote_workers"),
                      master_bind=p("master_bind") or None, worker_wait=p("worker_wait"),
                      allow_attacks=p("allow_attacks") or access.allow_attacks,
                      ca_cert=access.cafile or None, insecure=access.insecure)


def _wrk_available() -> str | None:
    from .wrk import wrk_available

    return wrk_available()


def _locust_available() -> str | None:
    from .locust import locust_available

    return locust_available()


DRIVERS: dict[str, Driver] = {d.name: d for d in (
    Driver("loadgen", {
        **COMMON_KEYS,
        "mode": (str, "closed"),
        "connections": (int, 50),
        "rate": ((int, float), 0),
        "processes": (int, 1),
        "path": (str, "/"),
        "method": (str, "GET"),
        "body_bytes": (int, 0),
        "keep_alive": (bool, True),
        "timeout": ((int, float), 5.0),
        "sweep": (list, []),  # closed loop: one profile per connection count (throughput vs concurrency)
    }, overhead_s=1.0, run=_run_loadgen, check=_check_loadgen),
    Driver("locust", {
        **COMMON_KEYS,
        "users": (int, 20),
        "spawn_rate": ((int, float), 10),
        "user_classes": (list, ["HelloUser"]),
        "load_profile": (str, "none"),
        "processes": (int, 1),
        "remote_workers": (int, 0),  # workers started by hand on other machines (docs/load.md)
        "master_bind": (str, ""),  # HOST:PORT the master listens on for them; default 127.0.0.1, a free port
        "worker_wait": ((int, float), 60),  # seconds to wait for every worker before the cell fails
        "allow_attacks": (bool, False),  # KeepAliveUser/ChurnUser against a non-loopback host
    }, overhead_s=5.0, run=_run_locust, available=_locust_available, check=_check_locust,
        needs_opt_in=_locust_needs_opt_in),
    Driver("idle", {
        **COMMON_KEYS,
        "connections": (int, 100),
        "path": (str, "/"),
        "timeout": ((int, float), 5.0),
        "probes": (int, 0),  # new clients served one at a time during the hold (their latency)
    }, overhead_s=2.0, run=_run_idle, check=_check_idle, needs_opt_in=lambda profile: True),
    Driver("wrk", {
        **COMMON_KEYS,
        "connections": (int, 50),
        "threads": (int, 1),
        "path": (str, "/"),
        "timeout": ((int, float), 5.0),
    }, overhead_s=1.5, run=_run_wrk, available=_wrk_available, check=lambda values, given: _path_problems(values)),
)}
