"""The suites' pytest plugin: the command-line options and the markers, for any directory.

Installed with the package (the ``pytest11`` entry point ``suites.plugin``), so that after
``pip install 'mpm-harness[suites]'``, from anywhere::

    pytest --pyargs suites --target http://127.0.0.1:8080                  # every suite
    pytest --pyargs suites.conformance --target http://127.0.0.1:8080 -m "must and not desync"

The plugin holds only what pytest must know before it collects the suites: the options
(``--server``, ``--target``, ``--target-name``, ``--server-set``, ``--busy-*``) and the
markers (registered, so ``--strict-markers`` passes). The fixtures and the hooks that
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

import pytest

from .conformance.markers import FAMILIES, LEVELS

#: family markers of the suites other than conformance (set per module with ``pytestmark``)
SUITE_FAMILIES: dict[str, str] = {
    "slowclient": "suites/test_slowclient.py: slowloris, slow body, slow read, silent connections",
    "threadsafety": "suites/test_threadsafety.py: non-thread-safe apps on each MPM, the server's own thread safety",
    "smoke": "suites/test_smoke.py: the server answers at all",
}

NEEDS_HELP = ("needs(feature): skip as not applicable on a server that lacks the feature "
              "(servers.launcher.lacks: keepalive, keepalive-header, echo, wsgi, scoreboard)")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The suites' options (docs/suites.md, docs/suites-in-ci.md)."""
    group = parser.getgroup("mpm-harness suites")
    group.addoption("--server", action="append", default=[], metavar="NAME",
                    help="launch server NAME through servers.launcher (repeatable; 'all' for every available one)")
    group.addoption("--target", action="append", default=[], metavar="URL",
                    help="test an already running server at URL (loopback addresses only; repeatable)")
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


def _loopback_url(url: str) -> str:
    """``url`` normalised to ``http://HOST:PORT``; a usage error unless HOST is a loopback address."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise pytest.UsageError(f"--target {url!r}: give http://HOST:PORT")
    host = parts.hostname
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            raise pytest.UsageError(f"--target {url!r}: only loopback addresses may be tested") from None
    return f"http://{'[' + host + ']' if ':' in host else host}:{parts.port}"


def targets(config: pytest.Config) -> list[tuple[str, str]]:
    """(name, URL) of each ``--target``, named by the ``--target-name`` in the same position, else
    ``target`` (``target1``, ``target2``... for several).

    The name, never the URL, goes into the test ids: a port changes from run to run, and the ids
    (``test_conformance[target-row01-get]``) must not. A usage error: a URL that is not loopback,
    more names than targets, two servers of the session with one name.
    """
    urls = [_loopback_url(u) for u in config.getoption("--target")]
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
    config.addinivalue_line("markers", NEEDS_HELP)
    for name, what in {**LEVELS, **FAMILIES, **SUITE_FAMILIES}.items():
        config.addinivalue_line("markers", f"{name}: {what}")
