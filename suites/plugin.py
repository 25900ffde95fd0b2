"""The suites' pytest plugin: the command-line options and the markers, for any directory.

Installed with the package (the ``pytest11`` entry point ``suites.plugin``), so that after
``pip install 'mpm-harness[suites]'``, from anywhere::

    pytest --pyargs suites --target http://127.0.0.1:8080                  # every suite
    pytest --pyargs suites.conformance --target http://127.0.0.1:8080 -m "must and not desync"
    pytest --pyargs suites --target https://staging.example.com/app --cafile ca.pem   # TLS, mounted at /app

The plugin holds only what pytest must know before it collects the suites: the options
(``--server``, ``--target``, ``--target-name``, ``--server-set``, ``--busy-*``, the TLS options
``--cafile``/``--insecure`` and ``--allow-attacks``), the markers (registered, so
``--strict-markers`` passes) and the one rule for attack-like tests (:func:`attack_refusal`):
against a target that is not on loopback they run only with ``--allow-attacks``. The fixtures and the hooks that
parametrize the tests per server live in ``suites/conftest.py``, which pytest loads when
it collects the suites. Without the entry point (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``),
``-p suites.plugin`` loads it; ``-p no:suites.plugin`` keeps it out of a session.

One ini key, ``default_xdist_workers = N``, gives a project a default pytest-xdist worker
count that, unlike ``-n N`` in ``addopts``, does not break ``-p no:xdist``; it does nothing
unless an ini file sets it (this project's pyproject.toml sets 2).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

import pytest

from .conformance.markers import FAMILIES, LEVELS

#: family markers of the suites other than conformance (set per module with ``pytestmark``)
SUITE_FAMILIES: dict[str, str] = {
    "slowclient": "suites/test_slowclient.py: slowloris, slow body, slow read, silent connections",
    "threadsafety": "suites/test_threadsafety.py: non-thread-safe apps on each MPM, the server's own thread safety",
    "smoke": "suites/test_smoke.py: the server answers at all",
}

ATTACK_HELP = ("attack: attack-like (holds many connections, sends slowly on purpose, or probes for request "
               "smuggling); against a non-loopback --target it runs only with --allow-attacks")

#: why an attack-like test is not run against a target that is not on loopback
ATTACK_REFUSED = "attack-like: needs --allow-attacks against a non-loopback target"

NEEDS_HELP = ("needs(feature): skip as not applicable on a server that lacks the feature "
              "(servers.launcher.lacks: keepalive, keepalive-header, echo, wsgi, scoreboard)")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The suites' options (docs/suites.md, docs/suites-in-ci.md)."""
    group = parser.getgroup("mpm-harness suites")
    group.addoption("--server", action="append", default=[], metavar="NAME",
                    help="launch server NAME through servers.launcher (repeatable; 'all' for every available one)")
    group.addoption("--target", action="append", default=[], metavar="URL",
                    help="test an already running server at URL: http:// or https://, any host; a path "
                         "(https://host/app) is the prefix where the server is mounted (repeatable)")
    group.addoption("--target-name", action="append", default=[], metavar="NAME",
                    help="the name of the --target in the same position, in test ids and reports (repeatable; "
                         "default 'target', or target1, target2... for several)")
    group.addoption("--server-set", action="append", default=[], metavar="KEY=VALUE",
                    help="directive for every launched server, over the suite's short-timeout defaults "
                         "(repeatable; VALUE is YAML, e.g. --server-set MaxRequestWorkers=50)")
    group.addoption("--busy-clients", type=int, default=0, metavar="N",
                    help="keep-alive clients of the busy keep-alive scenario (suites/test_keepalive.py; default 40)")
    group.addoption("--busy-pace", type=float, default=0.0, metavar="SECONDS",
                    help="seconds between one busy keep-alive client's requests (default 1)")
    group.addoption("--busy-defaults", action="store_true",
                    help="run the busy keep-alive scenario on each server's own defaults instead of the "
                         "suite's 20-worker configuration")
    group.addoption("--cafile", default=None, metavar="PATH",
                    help="https targets: verify the certificate against the CA(s) in PATH (PEM) instead of the "
                         "system's; the safe way to test a staging server with a self-signed certificate")
    group.addoption("--insecure", action="store_true",
                    help="https targets: skip certificate verification (anyone on the path can impersonate "
                         "the server; --cafile is safer)")
    group.addoption("--allow-attacks", action="store_true",
                    help="run the attack-like tests (marker 'attack': slow clients, idle/busy connection "
                         "floods, smuggling probes) against a non-loopback --target too; they are bounded "
                         "(at most 20 connections and about 10 s each against a target); only for a server "
                         "you own")
    parser.addini("default_xdist_workers", default="0",
                  help="pytest-xdist workers when the command line chooses none (-n, --dist, --tx); unlike "
                       "-n in addopts it leaves -p no:xdist working (default 0: none)")


def _default_workers(config: pytest.Config) -> None:
    """Apply the ``default_xdist_workers`` ini value when the command line chose no distribution.

    Left alone: xdist not loaded (``-p no:xdist``), ``-n``/``--dist``/``--tx`` given, ``--pdb``
    (xdist refuses it with workers), and an xdist worker itself (it runs this hook too).
    """
    workers = int(config.getini("default_xdist_workers") or 0)
    if workers <= 0 or not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    opt = config.option
    if opt.numprocesses is None and not opt.tx and opt.dist == "no" and not opt.usepdb:
        opt.numprocesses = workers


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config):
    """The default worker count, set before xdist's own ``pytest_cmdline_main`` reads ``-n``."""
    _default_workers(config)
    return (yield)


#: the port of a URL without one (RFC 9110 §4.2.1, §4.2.2)
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class TargetURL:
    """A ``--target`` URL taken apart: scheme, host, port (the scheme's default when absent) and the
    path prefix where the server is mounted (``""`` for ``/``)."""

    scheme: str
    host: str
    port: int
    prefix: str = ""

    @property
    def authority(self) -> str:
        """The Host header value (RFC 9110 §7.2: uri-host, and the port unless the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The normalised URL: ``scheme://authority`` and the prefix."""
        return f"{self.scheme}://{self.authority}{self.prefix}"

    @property
    def loopback(self) -> bool:
        """Whether the host is this machine's loopback (``localhost``, 127.0.0.0/8, ``::1``)."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; a name other than ``localhost`` is not (it is not resolved)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_target(url: str) -> TargetURL:
    """``url`` taken apart (:class:`TargetURL`); a usage error for anything but ``http(s)://HOST[:PORT][/PREFIX]``.

    Nothing is resolved or connected here: the options are checked before collection.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise pytest.UsageError(f"--target {url!r}: give http://HOST[:PORT][/PREFIX] or https://...")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise pytest.UsageError(f"--target {url!r}: no credentials, query or fragment (a path prefix is allowed)")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise pytest.UsageError(f"--target {url!r}: the port is not a number from 1 to 65535") from None
    return TargetURL(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def targets(config: pytest.Config) -> list[tuple[str, str]]:
    """(name, URL) of each ``--target``, named by the ``--target-name`` in the same position, else
    ``target`` (``target1``, ``target2``... for several).

    The name, never the URL, goes into the test ids: a port changes from run to run, and the ids
    (``test_conformance[target-row01-get]``) must not. A usage error: a URL that is not http(s),
    more names than targets, two servers of the session with one name.
    """
    urls = [parse_target(u).url for u in config.getoption("--target")]
    names = config.getoption("--target-name")
    if len(names) > len(urls):
        raise pytest.UsageError(f"--target-name given {len(names)} times for {len(urls)} --target")
    default = ["target"] if len(urls) == 1 else [f"target{i}" for i in range(1, len(urls) + 1)]
    named = list(zip([*names, *default[len(names):]], urls))
    every = [*dict.fromkeys(config.getoption("--server")), *(name for name, _ in named)]
    twice = sorted({n for n in every if every.count(n) > 1})
    if twice:
        raise pytest.UsageError(f"two servers named {', '.join(twice)}: give each --target its own --target-name")
    return named


def pytest_configure(config: pytest.Config) -> None:
    """Check the ``--target`` options (a usage error before anything is collected) and register the
    suites' markers: ``needs``, the RFC levels and the families."""
    targets(config)
    if config.getoption("--cafile") and config.getoption("--insecure"):
        raise pytest.UsageError("--cafile and --insecure: give one (--cafile verifies, --insecure does not)")
    config.addinivalue_line("markers", NEEDS_HELP)
    config.addinivalue_line("markers", ATTACK_HELP)
    for name, what in {**LEVELS, **FAMILIES, **SUITE_FAMILIES}.items():
        config.addinivalue_line("markers", f"{name}: {what}")


def attack_refusal(item: pytest.Item, allow: bool) -> str | None:
    """Why ``item`` may not run here: an attack-like test (marker ``attack``) against a target that is
    not on loopback, without ``--allow-attacks``; None when it may.

    The suites' own launched servers and loopback targets are this machine's: attacks run there.
    """
    if allow or item.get_closest_marker("attack") is None:
        return None
    spec = getattr(item, "callspec", None) and item.callspec.params.get("server_spec")
    url = getattr(spec, "url", None)
    if url is None or parse_target(url).loopback:
        return None
    return ATTACK_REFUSED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, every attack-like test against a non-loopback target (:func:`attack_refusal`)."""
    allow = config.getoption("--allow-attacks")
    for item in items:
        why = attack_refusal(item, allow)
        if why:
            item.add_marker(pytest.mark.skip(reason=why))
