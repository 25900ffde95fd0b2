"""The Python reference servers behind the launcher: uWSGI (processes; processes x threads), granian, waitress.

Each live test skips, naming the install command, when its server is missing
here (``pip install -e '.[peers]'``; uWSGI, which compiles from source,
``pip install -e '.[uwsgi]'``). The directive mapping is tested on the command
line built from a configuration, without running anything. Every wait polls a
condition with a deadline; everything listens on loopback only. The fixtures
and process checks are test_external_servers.py's.
"""

from __future__ import annotations

import pytest

from servers.apps.default import HELLO
from servers.config import ConfigError
from servers.external import granian, uwsgi, waitress
from servers.launcher import PEERS, LaunchError, NotApplicable, available, lacks, start

from suites.launching import configuration, model
from suites.wire import Conn, wait_until
from tests.test_external_servers import _gone, _refused, launch  # noqa: F401 - launch is a fixture

PEER_NAMES = ("uwsgi-processes", "uwsgi-threads", "granian", "waitress")
INSTALL = "pip install -e '.[peers]'"
UWSGI_INSTALL = "pip install -e '.[uwsgi]'"


# -- registry --------------------------------------------------------------------------------------


def test_registry_names_each_peer_with_its_model_and_install_command():
    names = available()
    for name in PEER_NAMES:
        assert names[name] is None or (UWSGI_INSTALL if name.startswith("uwsgi") else INSTALL) in names[name]
        assert set(lacks(name)) == {"scoreboard", "keepalive-header"}  # every one keeps connections alive
    assert "uwsgi-processes" in PEERS["prefork"] and "granian" in PEERS["event"]
    assert [model(n) for n in PEER_NAMES] == ["prefork", "worker", "worker", "worker"]


def test_missing_peers_name_what_to_install(monkeypatch):
    monkeypatch.setattr(uwsgi, "binary", lambda: None)
    monkeypatch.setattr(granian, "binary", lambda: None)
    monkeypatch.setattr(waitress.importlib.util, "find_spec", lambda name: None)
    assert uwsgi.unavailable("threads").startswith(f"uwsgi not installed: {UWSGI_INSTALL}")
    assert granian.unavailable("wsgi") == f"granian not installed: {INSTALL}"
    assert waitress.unavailable("threads") == f"waitress not installed: {INSTALL}"
    with pytest.raises(LaunchError, match="uwsgi-threads is not available here: uwsgi not installed"):
        start("uwsgi-threads")


def test_suites_give_fixed_pools_their_models_configuration():
    configs = {"worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4,
                          "MinSpareThreads": 1}}
    assert configuration("waitress", configs) == {"StartServers": 1, "ThreadsPerChild": 4}
    assert configuration("granian", configs) == {"StartServers": 1, "ThreadsPerChild": 4}
    grows = {"worker": {**configs["worker"], "MaxRequestWorkers": 8, "ServerLimit": 2}}
    assert configuration("uwsgi-threads", grows) is None  # a dynamic pool: not applicable


# -- directive mapping (nothing runs) ----------------------------------------------------------------


def _argv(module, name: str, kind: str, overrides: dict, **kw) -> tuple[list[str], list[str]]:
    _, opts, notes = module.plan(name, kind, overrides, None)
    return module.command(opts, app="servers.apps:app", **kw), notes


def test_uwsgi_command_line_from_our_directives():
    argv, notes = _argv(uwsgi, "uwsgi-threads", "threads",
                        {"StartServers": 2, "ThreadsPerChild": 25, "ServerLimit": 2, "MaxRequestWorkers": 50,
                         "Timeout": 4.5, "KeepAliveTimeout": 5, "ListenBacklog": 100, "LimitRequestBody": 1000,
                         "MaxConnectionsPerChild": 500, "GracefulShutdownTimeout": 0},
                        pidfile="/run/x/uwsgi.pid", log_path="/run/x/error.log", fifo="/run/x/master.fifo")
    line = " ".join(argv)
    for part in ("--http11-socket 127.0.0.1:0", "--master", "--die-on-term", "--need-app", "--processes 2",
                 "--threads 25", "--socket-timeout 5", "--listen 100", "--limit-post 1000", "--max-requests 500",
                 f"--reload-mercy {uwsgi.FOREVER}", "--pidfile /run/x/uwsgi.pid", "--logto /run/x/error.log",
                 "--master-fifo /run/x/master.fifo", "--module servers.apps:app"):
        assert part in line, part
    assert "--lazy-apps" not in line and "--no-defer-accept" not in line
    assert any("rounded up to 5 s" in n for n in notes)
    processes, _ = _argv(uwsgi, "uwsgi-processes", "processes", {"StartServers": 3, "KeepAlive": False,
                                                                 "AcceptFilter": "http none"},
                         pidfile="p", log_path="l", fifo="f")
    assert "--threads" not in processes and "--http-socket" in processes and "--no-defer-accept" in processes
    assert processes[processes.index("--processes") + 1] == "3"


def test_granian_command_line_from_our_directives():
    argv, _ = _argv(granian, "granian", "wsgi", {"StartServers": 2, "ThreadsPerChild": 25, "ServerLimit": 2,
                                                 "MaxRequestWorkers": 50, "KeepAliveTimeout": 1.5,
                                                 "ListenBacklog": 64, "GracefulShutdownTimeout": 7},
                    pidfile="/run/x/granian.pid")
    o = dict(zip(argv, argv[1:]))
    assert o["--interface"] == "wsgi" and o["--workers"] == "2" and o["--blocking-threads"] == "25"
    assert o["--http1-header-read-timeout"] == "1500" and o["--backlog"] == str(granian.MIN_BACKLOG)
    assert o["--host"] == "127.0.0.1" and o["--port"] == "0" and o["--workers-kill-timeout"] == "7"
    assert "--http1-keep-alive" in argv and argv[-1] == "servers.apps:app"
    _, notes = _argv(granian, "granian", "wsgi", {"ListenBacklog": 64}, pidfile="p")
    assert any(n.startswith("ListenBacklog 64 not applied") for n in notes)


def test_waitress_command_line_from_our_directives():
    argv, notes = _argv(waitress, "waitress", "threads",
                        {"StartServers": 2, "ThreadsPerChild": 25, "ServerLimit": 2, "MaxRequestWorkers": 50,
                         "KeepAliveTimeout": 2.5, "LimitRequestBody": 0, "ListenBacklog": 200})
    assert argv[1:3] == ["-m", "waitress"] and argv[-1] == "servers.apps:app"
    for part in ("--listen=127.0.0.1:0", "--threads=50", "--channel-timeout=3", "--cleanup-interval=1",
                 "--backlog=200", f"--max-request-body-size={waitress.UNLIMITED_BODY}"):
        assert part in argv, part
    assert any("one process: StartServers 2 x ThreadsPerChild 25 = 50 threads" in n for n in notes)
    limited, _ = _argv(waitress, "waitress", "threads", {"LimitRequestBody": 100})
    assert "--max-request-body-size=101" in limited  # waitress refuses a body of exactly its limit


def test_required_directive_without_equivalent_is_not_applicable():
    with pytest.raises(NotApplicable, match="not applicable to uwsgi-threads: MaxKeepAliveRequests"):
        uwsgi.plan("uwsgi-threads", "threads", {"MaxKeepAliveRequests": 3}, None, required=("MaxKeepAliveRequests",))
    with pytest.raises(NotApplicable, match="uwsgi-processes: KeepAliveTimeout: uWSGI waits .* --socket-timeout"):
        uwsgi.plan("uwsgi-processes", "processes", {"KeepAliveTimeout": 1, "Timeout": 5}, None,
                   required=("KeepAliveTimeout",))
    uwsgi.plan("uwsgi-processes", "processes", {"KeepAliveTimeout": 5, "Timeout": 5}, None,
               required=("KeepAliveTimeout", "Timeout"))  # one timeout for both: applied
    with pytest.raises(NotApplicable, match="not applicable to granian: MaxConnectionsPerChild"):
        granian.plan("granian", "wsgi", {"MaxConnectionsPerChild": 10}, None, required=("MaxConnectionsPerChild",))
    with pytest.raises(NotApplicable, match="not applicable to waitress: KeepAlive: waitress always keeps"):
        waitress.plan("waitress", "threads", {"KeepAlive": False}, None, required=("KeepAlive",))
    with pytest.raises(NotApplicable, match="BenchBallastMiB: an mpm-harness knob waitress has no equivalent"):
        waitress.plan("waitress", "threads", {"BenchBallastMiB": 8}, None, required=("BenchBallastMiB",))
    with pytest.raises(ConfigError, match="unknown directive"):
        granian.plan("granian", "wsgi", {"KeepAliveTimout": 1}, None)
    _, _, notes = granian.plan("granian", "wsgi", {"MaintenanceInterval": 0.1}, None, required=("MaintenanceInterval",))
    assert notes == ["MaintenanceInterval ignored: an mpm-harness knob"]


# -- live servers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PEER_NAMES)
def test_serves_the_builtin_app_with_keepalive(launch, name):
    h = launch(name, {"StartServers": 2, **({} if name == "uwsgi-processes" else {"ThreadsPerChild": 2})})
    assert h.url.startswith("http://127.0.0.1:")
    assert h.get("/") == (200, HELLO)
    assert h.get("/bytes/1000") == (200, b"x" * 1000)
    with Conn(h.port, host=h.host) as c:  # two requests on one connection: each keeps connections alive
        for _ in range(2):
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == HELLO
    with pytest.raises(NotApplicable, match="no /server-status"):
        h.status()
    assert name.split("-")[0] in h.effective_config()


@pytest.mark.parametrize("name", PEER_NAMES)
def test_serves_a_users_app(launch, name):
    h = launch(name, {"StartServers": 1}, app="tests.wsgi_apps:app")
    code, body = h.get("/pid")  # a route only the user's app has
    assert code == 200 and int(body) in h.pids()
    assert h.get("/") == (200, HELLO)


@pytest.mark.parametrize("name", PEER_NAMES)
def test_graceful_stop_leaves_no_process(launch, name):
    h = launch(name, {"StartServers": 2})
    pids = h.pids()
    assert pids
    h.graceful_stop()
    assert h.wait(15) is not None, f"{name} did not exit after graceful_stop():\n{h.log_text()[-1500:]}"
    wait_until(lambda: _gone(pids), 10, what=f"{name}: every process of {pids} gone")
    wait_until(lambda: _refused(h.host, h.port), 5, what=f"{name}: port {h.port} closed")


@pytest.mark.parametrize("name", PEER_NAMES)
def test_stop_leaves_no_process(launch, name):
    h = launch(name, {"StartServers": 2})
    pids = h.pids()
    h.stop()
    wait_until(lambda: _gone(pids), 10, what=f"{name}: every process of {pids} gone")
    wait_until(lambda: _refused(h.host, h.port), 5, what=f"{name}: port {h.port} closed")


def test_waitress_has_no_reload(launch):
    h = launch("waitress", {"StartServers": 1})
    for verb in (h.graceful, h.restart):
        with pytest.raises(NotApplicable, match="waitress has no"):
            verb()
    assert h.get("/") == (200, HELLO)
