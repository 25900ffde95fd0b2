"""``apache-conf``: the reference Apache launched from a user's own httpd.conf (issue 17).

The fixture ``tests/data/apache2-debian`` is a stock Debian /etc/apache2 (apache2.conf, ports.conf,
mods-enabled with mpm_event, conf-enabled, sites-enabled/000-default.conf). The launch tests copy
it into a directory httpd's children can read and point its /var/www at a document root there
(the one change a user running it elsewhere would make); they are skipped without Apache.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from harness.drivers.loadgen import run_closed_loop
from servers.external import apache
from servers.launcher import LaunchError, NotApplicable, start

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "apache2-debian")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDEX = b"It works! (apache2-debian fixture)\n"


def _need_apache() -> None:
    why = apache.unavailable("event")
    if why is not None:
        pytest.skip(f"Apache httpd is needed: apt-get install apache2-bin ({why})")


@pytest.fixture
def debian_etc():
    """A copy of the fixture whose /var/www is a readable directory holding html/index.html."""
    base = tempfile.mkdtemp(prefix="mpm-apache-conf-test-")
    os.chmod(base, 0o755)  # httpd's children (www-data when run as root) read the document root
    etc = os.path.join(base, "apache2")
    shutil.copytree(FIXTURE, etc)
    os.makedirs(os.path.join(base, "www", "html"))
    with open(os.path.join(base, "www", "html", "index.html"), "wb") as f:
        f.write(INDEX)
    for rel in ("apache2.conf", "sites-enabled/000-default.conf"):
        path = os.path.join(etc, rel)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("/var/www", os.path.join(base, "www")))
    for d, _, files in os.walk(base):
        os.chmod(d, 0o755)
        for name in files:
            os.chmod(os.path.join(d, name), 0o644)
    yield os.path.join(etc, "apache2.conf")
    shutil.rmtree(base, ignore_errors=True)


# -- reading the file (no Apache needed) ---------------------------------------------------------


def test_the_conf_is_flattened_and_only_listen_pidfile_and_logs_move(tmp_path):
    conf = apache.read_user_conf(os.path.join(FIXTURE, "apache2.conf"), str(tmp_path))
    values = apache.conf_values(conf.text)
    assert conf.source == os.path.abspath(os.path.join(FIXTURE, "apache2.conf"))
    assert conf.server_root == os.path.dirname(conf.source)  # Debian sets none: the file's directory
    assert conf.mpm == "event"  # mods-enabled/mpm_event.load, followed through IncludeOptional
    assert conf.status_path == "/server-status"  # status.conf: SetHandler server-status, Require local
    # the user's directives, from every included file, as they are
    assert values["KeepAlive"] == ["On"] and values["Timeout"] == ["300"] and values["MaxRequestWorkers"] == ["150"]
    assert values["DocumentRoot"] == ["/var/www/html"]
    assert "LoadModule" in values and len(values["LoadModule"]) == 19
    assert not any(v.startswith(("mods-enabled", "conf-enabled", "sites-enabled", "ports.conf"))
                   for v in values.get("IncludeOptional", []) + values.get("Include", []))
    # moved: each Listen argument to its own loopback port, the vhost's port with it
    moved = dict(conf.moved)
    assert set(moved) == {"80", "443"} and all(v.startswith("127.0.0.1:") for v in moved.values())
    assert sorted(values["Listen"]) == sorted([moved["80"], moved["443"], moved["443"]])
    assert conf.listen[0] == ("127.0.0.1", int(moved["80"].rsplit(":", 1)[1]))  # outside <IfModule>: the URL's
    assert f"<VirtualHost *:{moved['80'].rsplit(':', 1)[1]}>" in conf.text
    # PidFile, DefaultRuntimeDir and every log in the run directory
    assert values["PidFile"] == [f'"{tmp_path}/httpd.pid"']
    assert values["DefaultRuntimeDir"] == [f'"{tmp_path}"']
    assert set(values["ErrorLog"]) == {f'"{tmp_path}/error.log"'}
    assert values["CustomLog"] == [f'"{tmp_path}/logs/other_vhosts_access.log" vhost_combined',
                                   f'"{tmp_path}/logs/access.log" combined']


def test_a_listen_override_gives_the_host_and_the_first_port(tmp_path):
    conf = apache.read_user_conf(os.path.join(FIXTURE, "apache2.conf"), str(tmp_path), host="::1", port=8089)
    assert conf.listen[0] == ("::1", 8089)
    assert "Listen [::1]:8089" in conf.text


def test_a_missing_include_is_left_to_httpd_and_an_include_loop_is_refused(tmp_path):
    (tmp_path / "a.conf").write_text("Include nothing-here.conf\nListen 80\n")
    conf = apache.read_user_conf(str(tmp_path / "a.conf"), str(tmp_path / "run"))
    assert "Include nothing-here.conf" in conf.text and conf.mpm in (None, *apache.MPMS)
    (tmp_path / "loop.conf").write_text("Include loop.conf\n")
    with pytest.raises(LaunchError, match="nested deeper"):
        apache.read_user_conf(str(tmp_path / "loop.conf"), str(tmp_path / "run"))


def test_addresses_protocols_piped_logs_and_variables_in_includes(tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "one.conf").write_text(
        '<VirtualHost 192.0.2.7:8080 [::]:8080 *:9999>\n'
        '    ErrorLog "|/usr/bin/logger -t site"\n'
        '    CustomLog "|/usr/bin/rotatelogs /var/log/site.%Y 86400" "%h %r" env=!dontlog\n'
        '</VirtualHost>\n')
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "main.conf").write_text(
        "ServerRoot %s\nDefine SITES sites\nListen 0.0.0.0:8080 http\n"
        "<IfDefine never>\n  Listen [::]:8443 https\n</IfDefine>\n"
        "IncludeOptional ${SITES}/*.conf\nPidFile /run/httpd.pid\n" % tmp_path)
    run = tmp_path / "run"
    conf = apache.read_user_conf(str(tmp_path / "etc" / "main.conf"), str(run), variables={})
    values = apache.conf_values(conf.text)
    moved = dict(conf.moved)
    port = moved["0.0.0.0:8080"].rsplit(":", 1)[1]
    assert values["Listen"] == [f"{moved['0.0.0.0:8080']} http", f"{moved['[::]:8443']} https"]  # protocols kept
    assert conf.listen[0] == ("127.0.0.1", int(port))  # the Listen outside <IfDefine>
    assert f"<VirtualHost *:{port} *:9999>" in conf.text  # both :8080 addresses moved (once), :9999 kept
    assert values["ErrorLog"] == [f'"{run}/error.log"'] * 2
    assert values["CustomLog"] == [f'"{run}/logs/access.log" "%h %r" env=!dontlog']
    assert values["PidFile"] == [f'"{run}/httpd.pid"']
    assert "# mpm-harness: PidFile /run/httpd.pid  (set by the launcher above)" in conf.text
    assert conf.server_root == str(tmp_path) and conf.status_path is None  # the file's own, not its directory


def test_without_a_conf_the_launch_says_how_to_give_one(monkeypatch):
    _need_apache()
    monkeypatch.delenv(apache.CONF_ENV, raising=False)
    with pytest.raises(LaunchError, match=r"not available here: it runs your own httpd.conf: set MPM_HARNESS_HTTPD_CONF="):
        start("apache-conf")


def test_directives_of_ours_are_not_applied_and_required_ones_are_not_applicable(debian_etc):
    _need_apache()
    with pytest.raises(NotApplicable, match="KeepAliveTimeout: the directives are those of"):
        start("apache-conf", {"KeepAliveTimeout": 1}, config=debian_etc, required=("KeepAliveTimeout",))


# -- running it (Apache needed) ------------------------------------------------------------------


def test_runs_the_smoke_and_keepalive_suites_and_a_closed_loop_profile(debian_etc):
    _need_apache()
    with start("apache-conf", {"KeepAliveTimeout": 1}, config=debian_etc, timeout=20) as h:
        assert h.get("/") == (200, INDEX)  # the fixture's own DocumentRoot and DirectoryIndex
        assert f"httpd.conf: {debian_etc}" in h.notes and "MPM: event" in h.notes
        assert "KeepAliveTimeout ignored: the directives are those of " + debian_etc in h.notes
        assert h.effective_config().startswith(f"# written by mpm-harness (servers/external/apache.py) from "
                                               f"{debian_etc}\n# MPM: event")
        before = h.status()
        assert before.server_mpm == "event"  # httpd's own word on what it runs
        suites = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-rA",
             "suites/test_smoke.py", "suites/test_keepalive.py", "--target", h.url, "--target-name", "apache-conf"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert suites.returncode == 0, suites.stdout + suites.stderr
        assert "PASSED suites/test_smoke.py::test_get_root_answers_with_date[apache-conf]" in suites.stdout
        assert "PASSED suites/test_keepalive.py::" in suites.stdout
        r = run_closed_loop(h.url + "/", connections=4, duration=1.5, timeout=5.0, max_requests=20000)
        after = h.status()
        assert r.requests > 0 and r.errors == {} and set(r.status_counts) == {200}, r.to_dict()
        # every answered request is in the server's own count (and the status reads besides)
        assert after.total_accesses - before.total_accesses >= r.requests
        logs = os.listdir(os.path.join(h.run_dir, "logs"))
        assert "access.log" in logs  # the vhost's CustomLog, moved into the run directory
        assert h.alive()


# -- in a matrix ---------------------------------------------------------------------------------


def _matrix(servers, **top):
    from harness.matrix import parse_matrix

    doc = {"trials": 1, "warmup": 0, "quiet": {"seconds": 0.1}, "timeouts": {"start": 20}, "servers": servers,
           "profiles": {"hello": {"driver": "loadgen", "duration": 1, "connections": 4}}, **top}
    return parse_matrix(doc, source="<test>", name="test")


def test_a_matrix_entry_names_the_httpd_conf_and_only_apache_conf_takes_one():
    from harness.matrix import MatrixError

    m = _matrix([{"label": "mine", "server": "apache-conf", "httpd_conf": "/etc/apache2/apache2.conf"}])
    assert m.servers[0].httpd_conf == "/etc/apache2/apache2.conf"
    assert m.to_dict()["servers"][0]["httpd_conf"] == "/etc/apache2/apache2.conf"
    with pytest.raises(MatrixError, match=r"servers\[0\]\.httpd_conf goes with server apache-conf"):
        _matrix([{"server": "apache-conf"}])
    with pytest.raises(MatrixError, match=r"servers\[0\]\.httpd_conf goes with server apache-conf"):
        _matrix([{"server": "event", "httpd_conf": "/etc/apache2/apache2.conf"}])


def test_a_matrix_runs_a_profile_on_it_and_records_the_file_and_the_mpm(debian_etc, tmp_path):
    _need_apache()
    from harness.results import load_run
    from harness.runner import MatrixRunner

    m = _matrix([{"label": "mine", "server": "apache-conf", "httpd_conf": debian_etc}], suites=["smoke"])
    MatrixRunner(m, tmp_path / "run", out=io.StringIO()).run()
    doc = load_run(tmp_path / "run")
    hello, = [c for c in doc["cells"] if c.get("profile") == "hello"]
    assert hello["status"] == "ok", hello["reason"]
    assert hello["result"]["requests"] > 0 and [int(k) for k in hello["result"]["status_counts"]] == [200]
    server = doc["servers"]["mine"]
    assert f"httpd.conf: {debian_etc}" in server["notes"] and "MPM: event" in server["notes"]
    assert server["effective_config"].startswith(f"# written by mpm-harness (servers/external/apache.py) from "
                                                 f"{debian_etc}\n# MPM: event")
    assert server["version"].startswith("Apache/2.4")
    smoke, = [c for c in doc["cells"] if c.get("kind") == "suite"]
    assert smoke["status"] == "ok" and smoke["counts"]["passed"] > 0 and smoke["counts"]["failed"] == 0, smoke
