"""Apache httpd + mod_wsgi behind the launcher (servers/external/modwsgi.py): embedded mode on each
MPM and daemon mode, serving the built-in app and a user's app.

The generated configuration is tested without running anything; each live test skips, naming
what to install (``apt-get install apache2-dev && pip install mod_wsgi``, or apache2), when
httpd or mod_wsgi is missing. Every wait polls a condition with a deadline; everything listens
on loopback only. Servers are started through the module's own start() and the launcher's
finish_start(), as the launcher does for a registered name.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import psutil
import pytest

from servers.apps.default import HELLO
from servers.config import load_config
from servers.external import apache, modwsgi
from servers.launcher import LaunchError, finish_start

from suites.wire import Conn, wait_until
from tests.test_external_servers import _gone, _refused

FAST = {"KeepAliveTimeout": 2, "Timeout": 5, "GracefulShutdownTimeout": 10}
FLAVOURS = tuple(modwsgi.MODES)
USER_APP = "tests.wsgi_modwsgi_app:app"


def _need(flavour: str) -> None:
    why = modwsgi.unavailable(flavour)
    if why is not None:
        pytest.skip(f"modwsgi-{flavour}: {why}")


@pytest.fixture
def launch():
    """``launch(flavour, overrides, app=)`` -> a ready handle, skipped when missing; always stopped."""
    handles = []

    def _launch(flavour: str, overrides: dict | None = None, app: str | None = None):
        _need(flavour)
        h = modwsgi.start(f"modwsgi-{flavour}", flavour, {**FAST, **(overrides or {})}, app=app, config=None,
                          cpus=None, run_dir=None, env=None, required=(), timeout=30.0)
        handles.append(h)
        return finish_start(h, True, 30.0)

    yield _launch
    for h in handles:
        h.stop()


# -- the configuration, without running ---------------------------------------------------------------


def _lines(flavour: str, **cfg) -> list[str]:
    mpm = modwsgi.MODES[flavour]
    return modwsgi.app_lines(flavour, load_config(mpm, None, {"Listen": "127.0.0.1:0", **cfg}),
                             module="/m/mod_wsgi.so", home="/py", path=["/proj", "/cwd"], script="/run/app.wsgi",
                             run_dir="/run", user_group=("www-data", "www-data"))


@pytest.mark.parametrize("flavour", ("prefork", "worker", "event"))
def test_embedded_mode_runs_the_app_in_httpds_children(flavour):
    lines = _lines(flavour)
    assert 'LoadModule wsgi_module "/m/mod_wsgi.so"' in lines
    assert 'WSGIPythonHome "/py"' in lines and 'WSGIPythonPath "/proj:/cwd"' in lines
    assert 'WSGIScriptAlias / "/run/app.wsgi"' in lines
    assert 'WSGIImportScript "/run/app.wsgi" process-group=%{GLOBAL} application-group=%{GLOBAL}' in lines
    assert "WSGIApplicationGroup %{GLOBAL}" in lines
    assert "WSGIChunkedRequest On" in lines  # a chunked request body reaches the app, as under our MPMs
    assert not [x for x in lines if x.startswith(("WSGIDaemonProcess", "WSGIProcessGroup", "WSGIRestrictEmbedded"))]


def test_daemon_mode_sizes_its_processes_from_our_directives():
    lines = _lines("daemon", StartServers=2, ThreadsPerChild=5, MaxConnectionsPerChild=100, ListenBacklog=64)
    daemon = next(x for x in lines if x.startswith("WSGIDaemonProcess "))
    opts = daemon.split()[2:]
    for opt in ("processes=2", "threads=5", "maximum-requests=100", "listen-backlog=64", "user=www-data",
                "group=www-data", "python-home=/py", "python-path=/proj:/cwd"):
        assert opt in opts, daemon
    assert "WSGIRestrictEmbedded On" in lines and f"WSGIProcessGroup {modwsgi.DAEMON_GROUP}" in lines
    assert (f'WSGIImportScript "/run/app.wsgi" process-group={modwsgi.DAEMON_GROUP} '
            "application-group=%{GLOBAL}") in lines
    no_user = modwsgi.daemon_options(load_config("event", None, {"Listen": "127.0.0.1:0"}), home="/py", path=["/p"],
                                     user_group=None)
    assert not [o for o in no_user if o.startswith(("user=", "group=", "maximum-requests="))]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_whole_conf_keeps_the_mpm_sizing_and_status_in_front_of_the_app(flavour, tmp_path):
    if apache.unavailable(modwsgi.MODES[flavour]):
        pytest.skip(apache.unavailable(modwsgi.MODES[flavour]))
    text = modwsgi.conf_for(flavour, {"StartServers": 3, "ThreadsPerChild": 4, "StatusLocation": "/st"},
                            str(tmp_path), app=USER_APP, home="/py")
    values = apache.conf_values(text)
    assert values["StartServers"] == ["3"]
    if flavour != "prefork":
        assert values["ThreadsPerChild"] == ["4"]
    assert f"mpm_{modwsgi.MODES[flavour]}_module" in text
    assert "AliasMatch" not in values and "DocumentRoot" not in values  # the app serves /, not files
    assert text.index("WSGIScriptAlias /") < text.index('<Location "/st">')
    assert "SetHandler server-status" in text
    assert (tmp_path / modwsgi.SCRIPT).read_text() == modwsgi.script_text(USER_APP)


def test_script_loads_the_app_as_our_mpms_do():
    namespace: dict = {}
    exec(compile(modwsgi.script_text(USER_APP), modwsgi.SCRIPT, "exec"), namespace)
    from tests.wsgi_modwsgi_app import app

    assert namespace["application"] is app


def test_missing_module_names_what_to_install(monkeypatch, tmp_path):
    if apache.unavailable("event"):
        pytest.skip(apache.unavailable("event"))
    monkeypatch.setenv(modwsgi.MODULE_ENV, str(tmp_path / "absent.so"))
    modwsgi.find_module.cache_clear()
    try:
        why = modwsgi.unavailable("daemon")
    finally:
        monkeypatch.delenv(modwsgi.MODULE_ENV)
        modwsgi.find_module.cache_clear()
    assert why is not None and modwsgi.INSTALL in why and modwsgi.MODULE_ENV in why


def test_reachability_follows_every_directory_of_the_path():
    top = tempfile.mkdtemp()  # directly in the temporary directory: pytest's own base is mode 700
    try:
        inner = os.path.join(top, "a", "b")
        os.makedirs(inner)
        for d in (top, os.path.dirname(inner), inner):
            os.chmod(d, 0o755)
        stranger = (os.getuid() + 12345, {os.getgid() + 12345})
        assert modwsgi._reachable(inner, *stranger)
        os.chmod(os.path.dirname(inner), 0o700)  # as /root is
        assert not modwsgi._reachable(inner, *stranger)
        assert modwsgi._reachable(inner, os.getuid(), set())  # the owner still may
    finally:
        shutil.rmtree(top)


def test_a_linked_home_is_used_only_when_it_is_ours_complete_and_not_writable_by_others():
    top = tempfile.mkdtemp()
    try:
        home, link = os.path.join(top, "home"), os.path.join(top, "link")
        os.mkdir(home, 0o755)
        assert not modwsgi._trusted_home(home)  # incomplete: no marker
        open(os.path.join(home, ".mpm-harness-complete"), "w").close()
        os.chmod(home, 0o755)
        assert modwsgi._trusted_home(home)
        os.symlink(home, link)
        assert not modwsgi._trusted_home(link)  # a symlink could point anywhere
        os.chmod(home, 0o777)
        assert not modwsgi._trusted_home(home)  # anyone could have put Python files in it
    finally:
        shutil.rmtree(top)


def test_python_home_is_reachable_by_httpds_user():
    ids = modwsgi._run_as_ids()
    if ids is None:
        pytest.skip("not root: httpd's children run as this user, who reads its own Python")
    if modwsgi.home_unavailable():
        pytest.skip(modwsgi.home_unavailable())
    home, note = modwsgi.python_home()
    assert modwsgi._reachable(home, *ids)
    if note and "hard-linked" in note:  # the same files (inodes shared), and no permission changed
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        original = os.path.join(sys.prefix, "lib", version, "os.py")
        assert os.stat(original).st_ino == os.stat(os.path.join(home, "lib", version, "os.py")).st_ino
        assert not modwsgi._reachable(sys.prefix, *ids)


def test_an_unreadable_current_directory_is_noted(monkeypatch):
    if modwsgi._run_as_ids() is None:
        pytest.skip("not root: httpd's children run as this user")
    hidden = tempfile.mkdtemp()  # mode 700, as /root is
    try:
        monkeypatch.chdir(hidden)
        assert modwsgi.path_notes() == [f"{hidden} is not readable by {apache.run_as()[0]}: "
                                        "a module there cannot be imported"]
    finally:
        os.rmdir(hidden)


def test_app_failure_is_read_from_the_error_log():
    log = ("[wsgi:error] [pid 1] WSGI0110: Unable to execute Python script file '/r/app.wsgi'.\n"
           "[wsgi:error] [pid 1] Traceback (most recent call last):\n"
           "[wsgi:error] [pid 1]   File \"/p/servers/wsgi.py\", line 130, in _import_module\n"
           "[wsgi:error] [pid 1] servers.wsgi.AppLoadError: cannot import module 'x': No module named 'x'\n")
    assert modwsgi.app_failure(log) == "servers.wsgi.AppLoadError: cannot import module 'x': No module named 'x'"
    assert modwsgi.app_failure("[mpm_event:notice] AH00489: resuming normal operations\n") is None


def test_lacks_nothing():
    assert all(modwsgi.lacks(f) == {} for f in FLAVOURS)


# -- live servers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_serves_the_builtin_app(launch, flavour):
    h = launch(flavour, {"StartServers": 2, "ThreadsPerChild": 2} if flavour != "prefork" else {"StartServers": 2})
    assert h.get("/") == (200, HELLO)
    code, body = h.get("/echo")
    assert code == 200 and json.loads(body)["target"] == "/echo"  # the app's mirror, not a file
    assert h.get("/bytes/1000") == (200, b"x" * 1000)
    with Conn(h.port, host=h.host) as c:  # keep-alive, with httpd's Keep-Alive header (sent back to a client's token)
        for _ in range(2):
            c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello")
            r = c.read_response()
            assert r.status == 200 and json.loads(r.body)["body"] == "hello"
            assert r.header("keep-alive") is not None
    st = h.status()
    assert st.busy_workers >= 1  # mod_status in front of the app: this request's worker is busy
    assert "mod_wsgi" in h.log_text() and "WSGIScriptAlias" in h.effective_config()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_serves_a_users_app_as_httpds_user(launch, flavour):
    h = launch(flavour, {"StartServers": 1}, app=USER_APP)
    code, body = h.get("/anything")
    assert code == 200
    seen = json.loads(body)
    assert seen["user_app"] and seen["path"] == "/anything"
    assert seen["pid"] in h.pids() and seen["pid"] != h.pid
    ids = modwsgi._run_as_ids()
    if ids is not None:
        assert seen["uid"] == ids[0]  # never root
    assert seen["application_group"] == ""  # the main interpreter
    assert seen["process_group"] == (modwsgi.DAEMON_GROUP if flavour == "daemon" else "")
    assert seen["multithread"] == (flavour != "prefork")


def test_daemon_runs_startservers_processes(launch):
    h = launch("daemon", {"StartServers": 2, "ThreadsPerChild": 3})
    daemons = lambda: [p for p in h.pids() if f"wsgi:{modwsgi.DAEMON_GROUP}" in " ".join(psutil.Process(p).cmdline())]
    wait_until(lambda: len(daemons()) == 2, 10, what="two daemon processes")
    assert h.get("/") == (200, HELLO)


@pytest.mark.parametrize("flavour", ("event", "daemon"))
def test_graceful_restart_replaces_the_apps_processes_and_keeps_serving(launch, flavour):
    h = launch(flavour, {"StartServers": 1, "ThreadsPerChild": 2}, app=USER_APP)
    before = json.loads(h.get("/")[1])["pid"]
    h.graceful()

    def replaced():
        code, body = h.get("/")
        return code == 200 and json.loads(body)["pid"] != before

    wait_until(replaced, 20, what=f"modwsgi-{flavour}: a new process serving the app after a graceful restart")
    assert h.alive()


def test_an_app_that_does_not_import_fails_the_start_and_leaves_nothing():
    _need("event")
    h = modwsgi.start("modwsgi-event", "event", dict(FAST), app="no_such_module_here:app", config=None, cpus=None,
                      run_dir=None, env=None, required=(), timeout=15.0)
    with pytest.raises(LaunchError, match="no_such_module_here"):  # at once, with the reason from the log
        finish_start(h, True, 15.0)
    wait_until(lambda: h.proc.poll() is not None, 10, what="httpd stopped after the failed start")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_stop_leaves_no_process(launch, flavour):
    h = launch(flavour, {"StartServers": 2})
    pids, run_dir = h.pids(), h.run_dir
    assert len(pids) >= 3
    h.stop()
    wait_until(lambda: _gone(pids), 10, what=f"modwsgi-{flavour}: every process of {pids} gone")
    wait_until(lambda: _refused(h.host, h.port), 5, what=f"modwsgi-{flavour}: port {h.port} closed")
    assert not os.path.exists(run_dir)


def test_a_checkout_httpds_user_cannot_read_makes_it_unavailable_naming_why(monkeypatch):
    if modwsgi._run_as_ids() is None:
        pytest.skip("not root: httpd's children run as this user")
    hidden = tempfile.mkdtemp()  # mode 700, as `mktemp -d` makes it
    try:
        monkeypatch.setattr(modwsgi, "ROOT", hidden)
        why = modwsgi.checkout_unavailable()
        assert why is not None and hidden in why and apache.run_as()[0] in why
        assert hidden not in " ".join(modwsgi.path_notes())  # said once, as the reason, not as a note
    finally:
        os.rmdir(hidden)
