"""Reference servers behind the launcher: Apache httpd (prefork, worker, event) and gunicorn (sync, gthread).

Each live test skips, with the install command, when its server is missing here
(``apt-get install apache2``, ``pip install -e '.[peers]'``). The configuration
mapping is tested without running anything. Every wait polls a condition with a
deadline; everything listens on loopback only.
"""

from __future__ import annotations

import os
import socket

import psutil
import pytest

from servers.apps.default import HELLO
from servers.config import ConfigError, load_config
from servers.external import apache, gunicorn
from servers.launcher import EXTERNAL, PEERS, LaunchError, NotApplicable, available, lacks, start

from suites.wire import Conn, wait_until

APACHE = ("apache-prefork", "apache-worker", "apache-event")
GUNICORN = ("gunicorn-sync", "gunicorn-gthread")
FAST = {"KeepAliveTimeout": 2, "Timeout": 5, "GracefulShutdownTimeout": 10, "MaintenanceInterval": 0.1}


def _need(name: str) -> None:
    why = available()[name]
    if why is not None:
        pytest.skip(f"{name}: {why}")


@pytest.fixture
def launch():
    """``launch(name, overrides, **kw)`` -> a started handle, skipped when the server is missing; always stopped."""
    handles = []

    def _launch(name: str, overrides: dict | None = None, **kw):
        _need(name)
        h = start(name, {**FAST, **(overrides or {})}, **kw)
        handles.append(h)
        return h

    yield _launch
    for h in handles:
        h.stop()


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return False
    except OSError:
        return True


# -- registry ------------------------------------------------------------------------------------


def test_registry_lists_every_server_with_a_reason_or_none():
    names = available()
    assert list(names)[:3] == ["prefork", "worker", "event"]
    peers = {"uwsgi-processes", "uwsgi-threads", "granian", "waitress"}
    modwsgi = {"modwsgi-prefork", "modwsgi-worker", "modwsgi-event", "modwsgi-daemon"}
    assert set(names) == {"prefork", "worker", "event", *APACHE, "apache-conf", *GUNICORN, *peers, *modwsgi}
    assert set(EXTERNAL) == {*APACHE, "apache-conf", *GUNICORN, *peers, *modwsgi}
    for name in APACHE:
        assert names[name] is None or "apt-get install apache2" in names[name]
    for name in GUNICORN:
        assert names[name] is None or "pip install -e '.[peers]'" in names[name]
    for name in modwsgi:
        assert names[name] is None or "apt-get install apache2" in names[name] or "mod_wsgi" in names[name]
    assert PEERS["event"] == ("apache-event", "modwsgi-event", "gunicorn-gthread", "granian")
    assert PEERS["prefork"] == ("apache-prefork", "modwsgi-prefork", "gunicorn-sync", "uwsgi-processes")
    assert PEERS["worker"] == ("apache-worker", "modwsgi-worker", "modwsgi-daemon", "gunicorn-gthread",
                               "uwsgi-threads", "granian", "waitress")
    assert lacks("event") == {}
    assert "keepalive" in lacks("gunicorn-sync") and "keepalive" not in lacks("gunicorn-gthread")


def test_missing_servers_name_the_package_to_install(monkeypatch):
    monkeypatch.setattr(apache, "find_binary", lambda: None)
    assert apache.unavailable("event") == "apache2 not found: apt-get install apache2"
    monkeypatch.setattr(gunicorn.importlib.util, "find_spec", lambda name: None)
    assert gunicorn.unavailable("sync") == "gunicorn not installed: pip install -e '.[peers]'"
    with pytest.raises(LaunchError, match="apache-event is not available here: apache2 not found: apt-get"):
        start("apache-event")


def test_apache_conf_says_which_httpd_conf_it_needs(monkeypatch, tmp_path):
    monkeypatch.delenv(apache.CONF_ENV, raising=False)
    monkeypatch.setattr(apache, "find_binary", lambda: "/usr/sbin/apache2")
    assert "set MPM_HARNESS_HTTPD_CONF=" in available()["apache-conf"]
    monkeypatch.setenv(apache.CONF_ENV, str(tmp_path / "nowhere.conf"))
    assert available()["apache-conf"] == f"no httpd.conf at {tmp_path / 'nowhere.conf'}"
    (tmp_path / "nowhere.conf").write_text("")
    assert available()["apache-conf"] is None
    assert apache.conf_unavailable(tmp_path / "nowhere.conf") is None
    monkeypatch.setattr(apache, "find_binary", lambda: None)
    assert available()["apache-conf"] == "apache2 not found: apt-get install apache2"


def test_unknown_server_name_lists_the_names():
    with pytest.raises(LaunchError, match="unknown server 'nginx'.*apache-event.*gunicorn-gthread"):
        start("nginx")


# -- httpd.conf writer (no Apache needed) ---------------------------------------------------------


def _conf(mpm: str, overrides: dict, passthrough=()) -> dict[str, list[str]]:
    cfg = load_config(mpm, None, {"Listen": "127.0.0.1:0", **overrides})
    text = apache.render_conf(
        cfg, listen=[("127.0.0.1", 8099)], run_dir="/run/x", pidfile="/run/x/httpd.pid",
        error_log="/run/x/error.log", docroot="/run/x/htdocs", bytes_dir="/cache/bytes", modules="/mods",
        mpm_load=f"LoadModule mpm_{mpm}_module /mods/mod_mpm_{mpm}.so", passthrough=passthrough,
    )
    return apache.conf_values(text)


def test_conf_maps_our_directives_to_httpd():
    c = _conf("event", {"ThreadsPerChild": 8, "MaxRequestWorkers": 16, "ServerLimit": 2, "StartServers": 2,
                        "KeepAliveTimeout": 0.5, "MaxKeepAliveRequests": 3, "Timeout": 5,
                        "RequestReadTimeout": "header=1 body=1", "AsyncRequestWorkerFactor": 4,
                        "LimitRequestFieldSize": 1000, "GracefulShutdownTimeout": 10})
    assert c["Listen"] == ["127.0.0.1:8099"]
    assert c["ThreadsPerChild"] == ["8"] and c["MaxRequestWorkers"] == ["16"] and c["ServerLimit"] == ["2"]
    assert c["KeepAliveTimeout"] == ["500ms"] and c["MaxKeepAliveRequests"] == ["3"] and c["Timeout"] == ["5"]
    assert c["RequestReadTimeout"] == ["header=1 body=1"]
    assert c["AsyncRequestWorkerFactor"] == ["4"] and c["LimitRequestFieldSize"] == ["1000"]
    assert c["GracefulShutdownTimeout"] == ["10"]
    assert c["PidFile"] == ['"/run/x/httpd.pid"'] and c["ErrorLog"] == ['"/run/x/error.log"']
    loads = " ".join(c["LoadModule"])
    for mod in ("mpm_event_module", "status_module", "reqtimeout_module", "alias_module"):
        assert mod in loads
    assert "log_config" not in loads and "CustomLog" not in c  # no access log
    assert "MaintenanceInterval" not in c  # our knob, not httpd's


def test_conf_applies_httpd_limit_arithmetic_and_per_mpm_directives():
    c = _conf("worker", {"ThreadsPerChild": 25, "MaxRequestWorkers": 60})
    assert c["MaxRequestWorkers"] == ["50"]  # AH00316: rounded down to a multiple of ThreadsPerChild
    p = _conf("prefork", {"StartServers": 3, "MaxRequestWorkers": 4})
    assert p["MaxRequestWorkers"] == ["4"] and p["MinSpareServers"] == ["5"]
    assert "ThreadsPerChild" not in p and "AsyncRequestWorkerFactor" not in p
    assert p["LoadModule"][0].startswith("mpm_prefork_module")
    assert p["RequestReadTimeout"] == ["header=20-40,MinRate=500 body=20,MinRate=500"]  # mod_reqtimeout's default


def test_conf_passes_httpd_only_directives_through():
    ours, passed = apache.split_overrides({"maxmemfree": 2048, "Timeout": 3})
    assert ours == {"Timeout": 3} and passed == [("MaxMemFree", "2048")]
    assert _conf("event", ours, passed)["MaxMemFree"] == ["2048"]


def test_conf_maps_accept_filter_per_protocol():
    """AcceptFilter is ours too now: httpd gets the same lines, default 'data' for http and https."""
    assert _conf("event", {})["AcceptFilter"] == ["http data", "https data"]
    assert _conf("prefork", {"AcceptFilter": "http none"})["AcceptFilter"] == ["http none", "https data"]


def test_bad_keys_and_values_give_clear_errors():
    with pytest.raises(ConfigError, match="unknown directive 'MaxClientz'"):
        _conf("event", {"MaxClientz": 5})
    with pytest.raises(ConfigError, match="GracefulShutdownTimeout 1.5: httpd takes whole seconds"):
        _conf("event", {"GracefulShutdownTimeout": 1.5})
    with pytest.raises(ConfigError, match="RequestReadTimeout header timeout"):
        _conf("event", {"RequestReadTimeout": "header=0.5"})
    cfg = load_config("event", None, {"MaintenanceInterval": 0.1, "BenchCPUWorkMicroseconds": 50})
    assert apache.notes_for(cfg, {"MaintenanceInterval": 0.1, "BenchCPUWorkMicroseconds": 50}) == [
        "MaintenanceInterval ignored: an mpm-harness knob (httpd's maintenance tick is fixed at 1 s)",
        "BenchCPUWorkMicroseconds ignored: an mpm-harness knob, not an httpd directive"]
    apache.check_required("apache-event", cfg, {}, ("MaintenanceInterval",))  # a tuning knob: fine
    with pytest.raises(NotApplicable, match="not applicable to apache-event: BenchCPUWorkMicroseconds"):
        apache.check_required("apache-event", cfg, {}, ("BenchCPUWorkMicroseconds",))


# -- gunicorn settings (no gunicorn needed) -------------------------------------------------------


def test_gunicorn_settings_map_workers_threads_and_timeouts():
    cfg = load_config("worker", None, {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 8,
                                       "KeepAliveTimeout": 1.5, "Timeout": 5, "GracefulShutdownTimeout": 0,
                                       "MaxConnectionsPerChild": 1000})
    opts, unsupported, notes = gunicorn.gunicorn_settings("gthread", cfg)
    o = dict(opts)
    assert o["--worker-class"] == "gthread" and o["--workers"] == "2" and o["--threads"] == "8"
    assert o["--keep-alive"] == "2" and o["--timeout"] == "5" and o["--max-requests"] == "1000"
    assert o["--graceful-timeout"] == str(gunicorn.FOREVER)  # 0 = wait for ever, as httpd
    assert any("rounded up to 2 s" in n for n in notes)
    assert "MaxKeepAliveRequests" in unsupported and "ServerLimit" in unsupported
    sync, sync_unsupported, _ = gunicorn.gunicorn_settings("sync", load_config("prefork", None, {}))
    assert "--threads" not in dict(sync) and "--keep-alive" not in dict(sync)
    assert "KeepAliveTimeout" in sync_unsupported


def test_gunicorn_required_directive_without_equivalent_is_not_applicable():
    with pytest.raises(NotApplicable, match="not applicable to gunicorn-gthread: MaxKeepAliveRequests"):
        gunicorn.plan("gunicorn-gthread", "gthread", {"MaxKeepAliveRequests": 3}, None,
                      required=("MaxKeepAliveRequests",))
    with pytest.raises(NotApplicable, match="not applicable to gunicorn-sync: KeepAliveTimeout: the sync worker"):
        gunicorn.plan("gunicorn-sync", "sync", {"KeepAliveTimeout": 1}, None, required=("KeepAliveTimeout",))
    # not required: ignored and noted; values gunicorn honours anyway are fine even when required
    _, _, notes = gunicorn.plan("gunicorn-gthread", "gthread", {"MaxKeepAliveRequests": 3}, None)
    assert any(n.startswith("MaxKeepAliveRequests 3 not applied") for n in notes)
    gunicorn.plan("gunicorn-gthread", "gthread", {"MaxKeepAliveRequests": 0, "RequestReadTimeout": "header=0 body=0"},
                  None, required=("MaxKeepAliveRequests", "RequestReadTimeout"))
    # AcceptFilter "none" is exactly what gunicorn does; a deferring filter it cannot honour
    gunicorn.plan("gunicorn-sync", "sync", {"AcceptFilter": "http none"}, None, required=("AcceptFilter",))
    with pytest.raises(NotApplicable, match="AcceptFilter: gunicorn never defers accept"):
        gunicorn.plan("gunicorn-sync", "sync", {"AcceptFilter": "http data"}, None, required=("AcceptFilter",))
    with pytest.raises(ConfigError, match="unknown directive"):
        gunicorn.plan("gunicorn-sync", "sync", {"KeepAliveTimout": 1}, None)
    with pytest.raises(NotApplicable, match="BenchBallastMiB: an mpm-harness knob gunicorn has no equivalent"):
        gunicorn.plan("gunicorn-sync", "sync", {"BenchBallastMiB": 8}, None, required=("BenchBallastMiB",))
    _, _, notes = gunicorn.plan("gunicorn-sync", "sync", {"MaintenanceInterval": 0.1}, None,
                                required=("MaintenanceInterval",))
    assert notes == ["MaintenanceInterval ignored: an mpm-harness knob"]


# -- live servers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", APACHE + GUNICORN)
def test_serves_the_same_hello_and_bytes(launch, name):
    h = launch(name)
    assert h.url.startswith("http://127.0.0.1:")
    assert h.get("/") == (200, HELLO)
    assert h.get("/bytes/1000") == (200, b"x" * 1000)
    assert h.get("/bytes/0") == (200, b"")
    with Conn(h.port, host=h.host) as c:  # HEAD and keep-alive where the server keeps connections
        c.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response(head_only=True)
        assert r.status == 200 and r.header("Content-Length") == str(len(HELLO)) and r.header("Date")


@pytest.mark.parametrize("name", APACHE)
def test_apache_status_parses_mod_status(launch, name):
    mpm = name.split("-", 1)[1]
    h = launch(name, {"StartServers": 1, "ServerLimit": 2, "MaxRequestWorkers": 2,
                      **({} if mpm == "prefork" else {"ThreadsPerChild": 1, "MinSpareThreads": 1,
                                                      "MaxSpareThreads": 2})})
    st = h.status()
    assert st.server_mpm == mpm and st.server_version.startswith("Apache/2.4")
    assert st.busy_workers >= 1  # the status request itself
    assert st.scoreboard and set(st.scoreboard) <= set("_SRWKDCLGI.")
    assert (st.processes is not None) == (mpm == "event")  # httpd prints Processes/Conns* for event only
    assert "MaintenanceInterval ignored" in " ".join(h.notes)
    conf = h.effective_config()  # the httpd.conf it runs, for the harness's results
    assert f"mpm_{mpm}_module" in conf and "MaxRequestWorkers 2" in conf


@pytest.mark.parametrize("name", GUNICORN)
def test_gunicorn_has_no_status(launch, name):
    h = launch(name, {"StartServers": 1})
    with pytest.raises(NotApplicable, match="no /server-status"):
        h.status()
    assert "gunicorn" in h.effective_config() and "--workers" in h.effective_config()


def test_apache_cannot_serve_a_wsgi_app():
    _need("apache-event")
    with pytest.raises(NotApplicable, match="cannot run the WSGI app servers.apps.threadsafety:app"):
        start("apache-event", app="servers.apps.threadsafety:app")


#: the reloading peers of test_peer_servers.py (waitress cannot reload: tested there)
RELOADING_PEERS = ("uwsgi-processes", "uwsgi-threads", "granian")


@pytest.mark.parametrize("name", APACHE + GUNICORN + RELOADING_PEERS)
def test_graceful_restart_keeps_serving_and_replaces_children(launch, name):
    h = launch(name, {"StartServers": 1})
    before = set(h.pids()[1:])
    assert before
    h.graceful()

    def replaced():
        kids = set(h.pids()[1:])
        return kids and not kids & before and h.get("/") == (200, HELLO)

    wait_until(replaced, 15, what=f"{name}: new children serving after a graceful restart")
    assert h.alive() and h.pids()[0] == h.pid
    if name.startswith("apache"):
        assert h.status().generation == 1


@pytest.mark.parametrize("name", APACHE + GUNICORN)
def test_stop_leaves_no_process_and_frees_the_port(launch, name):
    h = launch(name, {"StartServers": 2})
    pids = h.pids()
    assert len(pids) >= 2
    h.stop()
    wait_until(lambda: _gone(pids), 10, what=f"{name}: every process of {pids} gone")
    wait_until(lambda: _refused(h.host, h.port), 5, what=f"{name}: port {h.port} closed")


@pytest.mark.parametrize("name", ("apache-event", "gunicorn-gthread"))
def test_graceful_stop_drains_and_exits(launch, name):
    h = launch(name, {"StartServers": 1})
    h.graceful_stop()
    assert h.wait(15) is not None, f"{name} did not exit after graceful_stop()"


@pytest.mark.parametrize("name", ("apache-prefork", "apache-event", "gunicorn-gthread"))
def test_cpus_pin_the_whole_tree(launch, name):
    cpu = min(os.sched_getaffinity(0))
    h = launch(name, {"StartServers": 2}, cpus=[cpu])
    pids = h.pids()
    assert len(pids) >= 2
    assert all(os.sched_getaffinity(p) == {cpu} for p in pids)
