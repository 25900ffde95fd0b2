"""Run the suites against any server: ``--server NAME`` (launched here) or ``--target URL`` (already running).

    pytest suites --server prefork --server event      # launched through servers.launcher
    pytest suites --server all                         # every server the launcher can start here
    pytest suites --target http://127.0.0.1:8080       # anything already listening on loopback
    pytest suites --target http://127.0.0.1:8080 --target-name myapp   # ids say myapp, not the port
    pytest suites --server prefork --server-set MaxRequestWorkers=50   # directives for every launched server

The options and markers are registered by the suites' pytest plugin (suites/plugin.py, loaded
through the package's ``pytest11`` entry point); this file holds the fixtures and the hooks
that run the tests once per server, and pytest loads it whenever it collects the suites.

``--server all`` includes the reference servers (apache-prefork/worker/event, gunicorn-sync/gthread)
that can start here. A test whose premise a reference server cannot meet is skipped as "not
applicable to NAME: why": a directive the server has no equivalent for (suites/launching.py), or a
feature it lacks (``servers.launcher.lacks``; the ``needs`` marker or the ``NEEDS`` table below).

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

import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
import yaml

from servers.launcher import LaunchError, available, lacks
from servers.mpm import MPM_NAMES

from . import launching
from .plugin import targets

#: tests that need a server feature (servers.launcher.lacks) but carry no ``needs`` marker;
#: on a server without the feature they are skipped as not applicable ("FILE::TEST": feature).
#: The suites in this directory use the marker; this table is for tests that cannot carry one.
NEEDS: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Store the ``--server-set`` directives where every launch reads them (suites.launching)."""
    launching.SERVER_SETS.clear()
    launching.SERVER_SETS.update(_server_sets(config))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, as not applicable, a test that needs a feature the launched server lacks."""
    spec = getattr(item, "callspec", None) and item.callspec.params.get("server_spec")
    if not isinstance(spec, ServerSpec) or not spec.launchable:
        return
    try:
        missing = lacks(spec.name)
    except LaunchError:
        return  # an unknown name fails where the server is launched, with the list of names
    if not missing:
        return
    needed = [m.args[0] for m in item.iter_markers("needs")]
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
    """An already running server: the part of launcher.Handle a suite may use."""

    name: str
    url: str
    mpm: str | None = None

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.url).port or 80)

    def status(self, timeout: float = 5.0):
        """The parsed /server-status?auto, if the server has one (raises otherwise)."""
        from servers.statusclient import parse_auto

        with urllib.request.urlopen(self.url + "/server-status?auto", timeout=timeout) as r:
            return parse_auto(r.read().decode("latin-1"))


@pytest.fixture(scope="session")
def server(server_spec: ServerSpec):
    """The server under test (a launcher Handle, or a Target for --target)."""
    if not server_spec.launchable:
        yield Target(server_spec.name, server_spec.url)
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
