"""Run the suites against any server: ``--server NAME`` (launched here) or ``--target URL`` (already running).

    pytest suites --server prefork --server event      # launched through servers.launcher
    pytest suites --server all                         # every server the launcher can start here
    pytest suites --target http://127.0.0.1:8080       # anything already listening
    pytest suites --target https://staging.example.com/app --cafile ca.pem   # TLS, mounted below /app
    pytest suites --target http://127.0.0.1:8080 --target-name myapp   # ids say myapp, not the port
    pytest suites --server prefork --server-set MaxRequestWorkers=50   # directives for every launched server

The options and markers are registered by the suites' pytest plugin (suites/plugin.py, loaded
through the package's ``pytest11`` entry point); this file holds the fixtures and the hooks
that run the tests once per server, and pytest loads it whenever it collects the suites.

``--server all`` includes the reference servers (apache-prefork/worker/event, gunicorn-sync/gthread,
uwsgi-processes/threads, granian, waitress, and apache-conf when ``$MPM_HARNESS_HTTPD_CONF`` names a
file) that can start here. A test whose premise a reference server cannot meet is skipped as "not
applicable to NAME: why": a directive the server has no equivalent for (suites/launching.py), or a
feature it lacks (``servers.launcher.lacks``; the ``needs`` marker or the ``NEEDS`` table below).
A ``--target`` is asked, once, whether it has the built-ins a ``needs`` names (``echo``: our
``/echo`` mirror; ``scoreboard``: a ``/server-status?auto``); a test needing one it lacks is
"not applicable to NAME: why". A target is reached through a ``suites.wire.Endpoint`` (TLS as
``--cafile``/``--insecure`` say, its Host, its path prefix), routed before the first test.

Without either option the suites run against our three MPMs (prefork, worker, event). Every test that
takes the ``server`` fixture runs once per server; its id names the server (a ``--target`` by its
``--target-name``, default ``target``), never its port, so ids are the same from run to run.
``server`` is started once per pytest process (session scope; under
pytest-xdist each worker starts its own, on its own free port).
``configured_server(overrides)`` starts a fresh server of the same kind with
some directives changed, for tests that need a particular configuration; it
skips, naming the reason, when the target is a URL the suite cannot configure.

Per-case verdicts are ordinary pytest results: ``--junitxml=FILE`` gives the
harness a machine-readable table.
"""

from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass, field

import pytest
import yaml

from servers.launcher import LaunchError, available, lacks
from servers.mpm import MPM_NAMES

from . import launching, wire
from .plugin import parse_target, targets

#: tests that need a server feature (servers.launcher.lacks) but carry no ``needs`` marker;
#: on a server without the feature they are skipped as not applicable ("FILE::TEST": feature).
#: The suites in this directory use the marker; this table is for tests that cannot carry one.
NEEDS: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Store the ``--server-set`` directives where every launch reads them (suites.launching)."""
    launching.SERVER_SETS.clear()
    launching.SERVER_SETS.update(_server_sets(config))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, as not applicable, a test that needs a feature the server lacks (launched: the
    launcher says; a target: asked once, :func:`target_lacks`)."""
    spec = getattr(item, "callspec", None) and item.callspec.params.get("server_spec")
    if not isinstance(spec, ServerSpec):
        return
    needed = [m.args[0] for m in item.iter_markers("needs")]
    if not spec.launchable:
        missing = target_lacks(_target(spec, item.config), needed)
    else:
        try:
            missing = lacks(spec.name)
        except LaunchError:
            return  # an unknown name fails where the server is launched, with the list of names
    if not missing:
        return
    key = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
    if key in NEEDS:
        needed.append(NEEDS[key])
    for feature in needed:
        if feature in missing:
            pytest.skip(f"not applicable to {spec.name}: {missing[feature]}")


def _server_sets(config: pytest.Config) -> dict:
    """The --server-set directives, values parsed as YAML scalars."""
    out = {}
    for item in config.getoption("--server-set"):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"--server-set {item!r}: give KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


@dataclass(frozen=True)
class ServerSpec:
    """What a test runs against: a launchable name, or a URL (its name then a label: ``target``, ``--target-name``)."""

    name: str
    url: str | None = None

    @property
    def launchable(self) -> bool:
        return self.url is None

    def __str__(self) -> str:
        return self.name


def _specs(config: pytest.Config) -> list[ServerSpec]:
    names: list[str] = []
    for n in config.getoption("--server"):
        if n == "all":
            names += [k for k, why in available().items() if why is None]
        else:
            names.append(n)
    specs = [ServerSpec(n) for n in dict.fromkeys(names)] + [ServerSpec(n, u) for n, u in targets(config)]
    return specs or [ServerSpec(n) for n in MPM_NAMES]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_spec" in metafunc.fixturenames:
        specs = _specs(metafunc.config)
        metafunc.parametrize("server_spec", specs, ids=[s.name for s in specs], scope="session")


@dataclass
class Target:
    """An already running server: the part of launcher.Handle a suite may use.

    ``host`` and ``port`` are what a ``suites.wire.Conn`` connects to; the routed ``endpoint``
    adds TLS, the Host header and the path prefix to every such connection.
    """

    name: str
    url: str
    mpm: str | None = None
    tls: ssl.SSLContext | None = None
    features: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parsed = parse_target(self.url)
        self.host, self.port = parsed.host, parsed.port
        self.endpoint = wire.Endpoint(parsed.host, parsed.port, parsed.authority, parsed.prefix,
                                      self.tls if parsed.scheme == "https" else None)
        wire.route(self.endpoint)

    def status(self, timeout: float = 5.0):
        """The parsed /server-status?auto, if the server has one (raises otherwise)."""
        from servers.statusclient import parse_auto

        with urllib.request.urlopen(self.url + "/server-status?auto", timeout=timeout,
                                    context=self.endpoint.tls) as r:
            return parse_auto(r.read().decode("latin-1"))


def _tls(config: pytest.Config) -> ssl.SSLContext:
    """The client TLS context the options ask for (verification on unless ``--insecure``)."""
    return wire.tls_context(config.getoption("--cafile"), config.getoption("--insecure"))


_TARGETS: dict[str, Target] = {}


def _target(spec: ServerSpec, config: pytest.Config) -> Target:
    """The one Target of ``spec`` in this process (routed on first use; nothing connects here)."""
    if spec.name not in _TARGETS:
        _TARGETS[spec.name] = Target(spec.name, spec.url, tls=_tls(config))
    return _TARGETS[spec.name]


def _has_echo(t: Target) -> str | None:
    """None if ``GET /echo`` answers our JSON mirror, else why it is not applicable."""
    with wire.Conn(t.port, host=t.host) as c:
        c.send(b"GET /echo?mirror-check HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    if r.status == 200 and r.body.startswith(b"{") and b'"/echo?mirror-check"' in r.body:
        return None
    if t.endpoint.prefix and b"mirror-check" in r.body:  # the mirror reports the target it was sent
        return f"its /echo mirror sees the prefix {t.endpoint.prefix} in every target"
    return f"it has no /echo mirror (servers.apps:app; GET /echo answered {r.status})"


def _has_scoreboard(t: Target) -> str | None:
    """None if ``/server-status?auto`` answers, else why it is not applicable."""
    try:
        t.status()
    except ssl.SSLError:
        raise  # a certificate error is the run's failure, never "not applicable"
    except Exception as exc:  # noqa: BLE001 - refused, 403, 404, not mod_status: no scoreboard
        return f"no mod_status at /server-status?auto ({exc})"
    return None


#: built-in -> the probe of a --target that says whether it has it
TARGET_PROBES = {"echo": _has_echo, "scoreboard": _has_scoreboard}


def target_lacks(t: Target, needed: list[str]) -> dict[str, str]:
    """feature -> why, for each built-in of ``needed`` the target lacks (each asked once per process).

    Features other than our built-ins (keep-alive, a WSGI app) are left to the tests, which
    check the target's answers themselves.
    """
    for feature in needed:
        if feature in TARGET_PROBES and feature not in t.features:
            t.features[feature] = TARGET_PROBES[feature](t)
    return {f: why for f in needed if (why := t.features.get(f))}


@pytest.fixture(scope="session")
def server(server_spec: ServerSpec, pytestconfig: pytest.Config):
    """The server under test (a launcher Handle, or a Target for --target)."""
    if not server_spec.launchable:
        yield _target(server_spec, pytestconfig)
        return
    h = launching.launch(server_spec.name)
    yield h
    h.stop()


@pytest.fixture
def configured_server(server_spec: ServerSpec):
    """``configured_server(overrides)`` -> a fresh server of the same kind with those directives; stopped after the test."""
    handles = []

    def _make(overrides: dict):
        if not server_spec.launchable:
            pytest.skip(f"needs a server the suite can configure ({overrides}); run with --server NAME")
        h = launching.launch(server_spec.name, overrides)
        handles.append(h)
        return h

    yield _make
    for h in handles:
        h.stop()
