"""``mpm-server`` / ``python -m servers``: gunicorn's flags onto httpd's directives, -V, the errors, and a live run.

The live test is the issue's "done when": the console script serves a user's own ``app.py``
with ``-w 4 -b 127.0.0.1:PORT app`` (port 0 here), four children run, and it stops by PID.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time

import psutil
import pytest

from servers import cli
from servers.__main__ import main
from servers.cli import CliError, parse_args, parse_bind, resolve, sizing, split_words
from servers.config import format_config, load_config
from servers.wsgi import AppLoadError, load_app
from suites.wire import request, wait_until

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
APP_PY = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from app.py"]
'''


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """main() may chdir and edit sys.path: both are put back after the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) -> (exit status, stdout, stderr); argparse's exits count as statuses."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


# -- -b: gunicorn's address forms ----------------------------------------------------------------


@pytest.mark.parametrize("given, listen", [
    ("127.0.0.1:8000", "127.0.0.1:8000"),
    (":8000", "0.0.0.0:8000"),          # gunicorn binds '' (every IPv4 address)
    ("*:8000", "0.0.0.0:8000"),
    ("[::1]:9000", "[::1]:9000"),
    ("[::]", "[::]:8000"),
    ("localhost", "localhost:8000"),     # a host alone: gunicorn's port 8000
    ("tcp://10.0.0.1:81", "10.0.0.1:81"),
    ("127.0.0.1:0", "127.0.0.1:0"),
])
def test_bind_forms_become_listen_values(given, listen):
    assert parse_bind(given) == listen


@pytest.mark.parametrize("given, words", [
    ("unix:/tmp/app.sock", ["unix:/tmp/app.sock", "unix sockets are not supported", "HOST:PORT"]),
    ("fd://3", ["fd://3", "file descriptors are not supported"]),
    ("8000", ["'8000' is ambiguous", ":8000", "127.0.0.1:8000", "--listen 8000"]),
    ("::1:80", ["::1:80", "need brackets"]),
    ("[nothere]:80", ["[nothere]:80", "IPv6 address"]),
    ("host:99999", ["host:99999", "'99999' is not a port number"]),
    ("", ["empty address"]),
])
def test_bad_bind_names_the_value(given, words):
    with pytest.raises(CliError) as info:
        parse_bind(given)
    for word in words:
        assert word in str(info.value)


def test_bad_bind_on_the_command_line_is_a_usage_error(capsys):
    rc, out, err = run_main(capsys, "-b", "unix:/tmp/app.sock", "--show-config")
    assert rc == 2 and out == ""
    assert "argument -b/--bind: 'unix:/tmp/app.sock': unix sockets are not supported" in err


def test_bind_and_listen_keep_their_order_and_text():
    args = parse_args(["-b", ":0", "--listen", "8080", "--bind", "[::1]:0"])
    assert args.listen == [("-b :0", "0.0.0.0:0"), ("--listen 8080", "8080"), ("--bind [::1]:0", "[::1]:0")]


def test_listen_port_alone_stays_loopback_while_bind_colon_port_is_every_address():
    """--listen is httpd's Listen as our config reads it (a port alone is loopback, for safety);
    -b follows gunicorn, whose ':PORT' means every address."""
    cfg = resolve("event", parse_args(["--listen", "8000", "-b", ":8001"])).cfg
    assert cfg.Listen == (("127.0.0.1", 8000), ("0.0.0.0", 8001))


# -- [MPM] [APP] ---------------------------------------------------------------------------------


@pytest.mark.parametrize("words, expected", [
    ([], ("event", None)),
    (["prefork"], ("prefork", None)),
    (["WORKER"], ("worker", None)),
    (["app"], ("event", "app")),
    (["prefork", "myapp:make()"], ("prefork", "myapp:make()")),
])
def test_positional_mpm_then_app(words, expected):
    assert split_words(words) == expected


@pytest.mark.parametrize("words, message", [
    (["app", "prefork"], "the MPM comes first: 'prefork app'"),
    (["prefork", "a", "b"], "one APP at most"),
])
def test_positional_errors(words, message):
    with pytest.raises(CliError, match=message):
        split_words(words)


def test_app_option_is_an_alias_and_the_default_is_the_demo(capsys):
    assert parse_args(["--app", "m:app"]).app == "m:app"
    assert parse_args(["worker", "m:app"]).app == "m:app"
    assert parse_args([]).app == "servers.apps:app"
    rc, _, err = run_main(capsys, "m:app", "--app", "other:app")
    assert rc == 2 and "APP 'm:app' and --app 'other:app' disagree" in err


def test_options_may_follow_the_positionals():
    args = parse_args(["prefork", "-w", "4", "app", "-b", "127.0.0.1:0"])
    assert (args.mpm, args.app, args.workers) == ("prefork", "app", 4)


# -- sizing: -w, --threads, --connections ---------------------------------------------------------


def _sized(mpm: str, **flags) -> dict:
    return {s.directive: s.value for s in sizing(mpm, load_config(mpm), **flags)}


@pytest.mark.parametrize("mpm, flags, directives", [
    # prefork: a connection is a process, so -w N and --connections N are the same pool
    ("prefork", {"workers": 4}, {"StartServers": 4, "MaxRequestWorkers": 4, "MinSpareServers": 1}),
    ("prefork", {"connections": 50},
     {"StartServers": 50, "MaxRequestWorkers": 50, "MinSpareServers": 1, "MaxSpareServers": 50}),
    ("prefork", {"workers": 300, "connections": 300},
     {"StartServers": 300, "MaxRequestWorkers": 300, "ServerLimit": 300, "MinSpareServers": 1,
      "MaxSpareServers": 300}),
    ("prefork", {"threads": 1}, {}),
    # worker/event: children x ThreadsPerChild (25 by default)
    ("event", {"workers": 4}, {"StartServers": 4, "MaxRequestWorkers": 100, "MinSpareThreads": 25}),
    ("worker", {"connections": 50}, {"StartServers": 2, "MaxRequestWorkers": 50, "MinSpareThreads": 25}),
    ("event", {"workers": 3, "connections": 50},
     {"StartServers": 3, "ThreadsPerChild": 17, "MaxRequestWorkers": 51, "MinSpareThreads": 17}),
    ("event", {"workers": 20},
     {"StartServers": 20, "MaxRequestWorkers": 500, "ServerLimit": 20, "MinSpareThreads": 25,
      "MaxSpareThreads": 500}),
    ("worker", {"workers": 2, "threads": 8},
     {"StartServers": 2, "ThreadsPerChild": 8, "MaxRequestWorkers": 16, "MinSpareThreads": 8}),
    # --threads alone keeps the process limit (16 children) and raises ThreadLimit to fit
    ("worker", {"threads": 100}, {"ThreadsPerChild": 100, "ThreadLimit": 100, "MaxRequestWorkers": 1600}),
])
def test_flag_to_directive_mapping(mpm, flags, directives):
    """Only what the pool needs changes: unchanged defaults are not emitted (nor marked by --show-config)."""
    assert _sized(mpm, **flags) == directives


@pytest.mark.parametrize("mpm, argv, processes", [
    ("prefork", ["-w", "4"], 4),
    ("prefork", ["--connections", "50"], 50),
    ("worker", ["-w", "4"], 4),
    ("event", ["--connections", "50"], 2),
    ("event", ["-w", "3", "--threads", "7"], 3),
    ("event", ["-w", "40"], 40),
])
def test_a_sized_pool_passes_httpds_checks_untouched(mpm, argv, processes):
    """The flags write what httpd's check_config accepts as is: no clamp note, exactly the pool
    (StartServers = the process limit), idle children never above the spare ceiling."""
    cfg = resolve(mpm, parse_args([mpm, *argv])).cfg
    assert cfg.notes == ()
    assert cfg.StartServers == cfg.daemons_limit == processes
    assert cfg.max_spare >= processes * cfg.ThreadsPerChild
    assert cfg.min_spare <= cfg.ThreadsPerChild


@pytest.mark.parametrize("mpm, flags, message", [
    ("prefork", {"threads": 4}, "--threads 4: prefork runs one thread per process"),
    ("prefork", {"workers": 3, "connections": 5}, "-w 3 and --connections 5 disagree"),
    ("worker", {"workers": 2, "threads": 4, "connections": 50},
     "-w 2 --threads 4 serve 8 connections at once, fewer than --connections 50"),
])
def test_sizing_errors_name_the_flags(mpm, flags, message):
    with pytest.raises(CliError, match=message):
        sizing(mpm, load_config(mpm), **flags)


# -- directives win over flags ----------------------------------------------------------------------


def test_a_directive_from_the_file_or_set_beats_a_flag(tmp_path):
    conf = tmp_path / "mpm.yaml"
    conf.write_text("Listen: 127.0.0.1:9000\nprefork:\n  MaxClients: 30\n")
    args = parse_args(["prefork", "-c", str(conf), "-w", "4", "-b", "127.0.0.1:0", "--set", "StartServers=7"])
    resolved = resolve("prefork", args)
    cfg = resolved.cfg
    assert cfg.Listen == (("127.0.0.1", 9000),)          # the file's Listen, not -b
    assert cfg.MaxRequestWorkers == 30                    # the file's (legacy) MaxClients, not -w
    assert cfg.StartServers == 7                          # --set, not -w
    assert cfg.MinSpareServers == 1                       # what -w set and nothing overruled
    assert {s.directive for s, _ in resolved.overruled} == {"Listen", "MaxRequestWorkers", "StartServers"}
    notes = resolved.notes()
    assert f"-b 127.0.0.1:0 not applied: Listen is set by {conf}" in notes[0]
    assert "-w 4 not applied: StartServers is set by --set" in " ".join(notes)


def test_a_flag_value_refused_by_the_config_names_the_flag():
    with pytest.raises(CliError, match=r"--listen garbage::: <overrides>: Listen: IPv6 addresses need brackets"):
        resolve("event", parse_args(["--listen", "garbage::"]))


# -- --show-config --------------------------------------------------------------------------------


def test_show_config_says_which_flag_set_each_directive(capsys):
    rc, out, _ = run_main(capsys, "prefork", "-w", "4", "-b", "127.0.0.1:0", "-b", "[::1]:0", "--pidfile",
                          "run/x.pid", "--show-config")
    assert rc == 0
    lines = out.splitlines()

    def above(directive_line: str) -> str:
        return lines[lines.index(directive_line) - 1]

    assert above("Listen 127.0.0.1:0") == "# from -b 127.0.0.1:0"
    assert above("Listen [::1]:0") == "# from -b [::1]:0"
    assert above("StartServers 4") == above("MaxRequestWorkers 4") == above("MinSpareServers 1") == "# from -w 4"
    assert above("PidFile run/x.pid") == "# from --pidfile run/x.pid"
    assert not above("MaxSpareServers 10").startswith("# from")  # a default stays unmarked
    # the directive lines themselves are format_config's, unchanged
    cfg = resolve("prefork", parse_args(["prefork", "-w", "4", "-b", "127.0.0.1:0", "-b", "[::1]:0",
                                         "--pidfile", "run/x.pid"])).cfg
    assert [x for x in lines if not x.startswith("# from")] == format_config(cfg).splitlines()


def test_show_config_lists_the_flags_a_directive_overruled(capsys, tmp_path):
    conf = tmp_path / "mpm.yaml"
    conf.write_text("StartServers: 2\n")
    rc, out, _ = run_main(capsys, "worker", "-c", str(conf), "-w", "4", "--show-config")
    assert rc == 0
    lines = out.splitlines()
    assert lines[2] == (f"# -w 4 not applied: StartServers is set by {conf} "
                        "(a directive from --config/--set beats a flag)")
    assert "StartServers 2" in lines and "MaxRequestWorkers 100" in lines


# -- -v, -V, --version ------------------------------------------------------------------------------


def test_dash_v_and_version_print_httpds_two_lines(capsys):
    import httptools

    for flag in ("-v", "--version"):
        rc, out, _ = run_main(capsys, flag)
        lines = out.splitlines()
        assert rc == 0 and len(lines) == 2
        assert lines[0].startswith("Server version: mpm-harness/")
        assert f"httptools {httptools.__version__}" in lines[0] and sys.version.split()[0] in lines[0]
        assert lines[1].startswith("Server built:   Python ")


@pytest.mark.parametrize("mpm, threaded, limits", [
    ("prefork", "no", (200000, 1)),
    ("worker", "yes (fixed thread count)", (20000, 20000)),
    ("event", "yes (fixed thread count)", (20000, 100000)),
])
def test_dash_V_answers_as_httpd_does(capsys, mpm, threaded, limits):
    import httptools
    import yaml

    rc, out, _ = run_main(capsys, mpm, "-V")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("Server version: mpm-harness/")
    assert f"Server loaded:  Python {sys.version.split()[0]}, httptools {httptools.__version__}, " \
           f"PyYAML {yaml.__version__}" in lines
    assert lines[lines.index(f"Server MPM:     {mpm}") + 1:][:3] == [
        f"  threaded:     {threaded}", "    forked:     yes (variable process count)", "Server compiled with...."]
    assert f" -D MAX_SERVER_LIMIT={limits[0]}" in lines and f" -D MAX_THREAD_LIMIT={limits[1]}" in lines
    assert (" -D AP_MPMQ_IS_ASYNC" in lines) == (mpm == "event")
    # what `httpd -V | grep -i 'version\|mpm'` finds: the version (with Python and httptools) and the MPM
    found = [x for x in lines if "version" in x.lower() or "mpm" in x.lower()]
    assert found[0] == lines[0] and f"Server MPM:     {mpm}" in found


def test_dash_V_without_an_mpm_is_the_default_event(capsys):
    _, out, _ = run_main(capsys, "-V")
    assert "Server MPM:     event" in out.splitlines()


@pytest.mark.skipif(not os.path.exists("/usr/sbin/apache2"), reason="Apache httpd (apache2-bin) is not installed")
@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_dash_V_mpm_lines_match_apache_httpds(capsys, tmp_path, mpm):
    """The three MPM lines, byte for byte as httpd -V prints them for the same MPM."""
    conf = tmp_path / "httpd.conf"
    conf.write_text(f"LoadModule mpm_{mpm}_module /usr/lib/apache2/modules/mod_mpm_{mpm}.so\nServerName x\n")
    httpd = subprocess.run(["/usr/sbin/apache2", "-f", str(conf), "-V"], capture_output=True, text=True,
                           timeout=30)
    theirs = httpd.stdout.splitlines()
    if f"Server MPM:     {mpm}" not in theirs:
        pytest.skip(f"this Apache cannot load mod_mpm_{mpm}: {httpd.stderr.strip()[:200]}")
    _, out, _ = run_main(capsys, mpm, "-V")
    ours = out.splitlines()

    def mpm_block(lines: list[str]) -> list[str]:
        i = lines.index(f"Server MPM:     {mpm}")
        return lines[i:i + 4]

    assert mpm_block(ours) == mpm_block(theirs)
    assert [x.split(":")[0] for x in ours[:1]] == [x.split(":")[0] for x in theirs[:1]]


# -- -k --------------------------------------------------------------------------------------------


def test_gunicorns_worker_class_after_k_is_explained(capsys):
    rc, _, err = run_main(capsys, "-k", "gthread")
    assert rc == 2
    assert "-k is apachectl's control verb" in err and "for 'gthread' run the worker MPM" in err


# -- the application -------------------------------------------------------------------------------


def _module(tmp_path, name: str, text: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    return name


def test_load_app_default_callable_attribute_path_and_factory(isolated):
    name = _module(isolated, "cli16_app_forms", """\
        def application(environ, start_response):
            return []
        class Holder:
            app = application
        def make(flag=False):
            return application if flag else None
        """)
    sys.path.insert(0, str(isolated))
    mod = sys.modules.get(name) or __import__(name)
    assert load_app(name) is mod.application
    assert load_app(f"{name}:application") is mod.application
    assert load_app(f"{name}:Holder.app") is mod.application
    assert load_app(f"{name}:make(flag=True)") is mod.application
    with pytest.raises(AppLoadError, match=r"make\(\) is not callable \(it is NoneType\)"):
        load_app(f"{name}:make()")
    with pytest.raises(AppLoadError, match=rf"{name} has no attribute 'app' \(it defines: Holder, application, "
                                           "make\\)"):
        load_app(f"{name}:app")
    with pytest.raises(AppLoadError, match="a factory's arguments must be literals"):
        load_app(f"{name}:make(flag=os)")


def test_an_app_that_cannot_be_found_names_the_module_and_where_it_looked(capsys, isolated):
    rc, _, err = run_main(capsys, "-b", "127.0.0.1:0", "evnet")
    assert rc == 2
    assert "cannot import module 'evnet': No module named 'evnet'" in err
    assert str(isolated) in err and "--chdir DIR or --pythonpath DIR" in err
    assert "did you mean the MPM 'event'?" in err
    assert "Traceback" not in err


def test_an_app_file_name_is_corrected(capsys, isolated):
    _module(isolated, "cli16_file", "application = None\n")
    rc, _, err = run_main(capsys, "-b", "127.0.0.1:0", "cli16_file.py")
    assert rc == 2 and "did you mean 'cli16_file'?" in err


def test_an_app_whose_import_raises_shows_its_own_traceback(capsys, isolated):
    _module(isolated, "cli16_raises", """\
        x = 1
        raise RuntimeError("the app's own failure")
        """)
    rc, _, err = run_main(capsys, "-b", "127.0.0.1:0", "cli16_raises")
    assert rc == 2
    assert "importing module 'cli16_raises' failed: RuntimeError: the app's own failure" in err
    assert f'File "{isolated / "cli16_raises.py"}", line 2, in <module>' in err
    assert "importlib" not in err  # the traceback starts in the application's code


def test_an_app_whose_dependency_is_missing_names_the_dependency(capsys, isolated):
    _module(isolated, "cli16_needs_dep", "import cli16_no_such_dependency\n")
    rc, _, err = run_main(capsys, "-b", "127.0.0.1:0", "cli16_needs_dep")
    assert rc == 2
    assert "importing module 'cli16_needs_dep' failed: ModuleNotFoundError: No module named " \
           "'cli16_no_such_dependency'" in err


def test_chdir_and_pythonpath_put_the_app_on_the_path(isolated):
    """gunicorn's order: --pythonpath entries first (as given, relative to --chdir), then the directory."""
    site = isolated / "site"
    (site / "lib").mkdir(parents=True)
    _module(site, "cli16_in_site", "application = lambda environ, start_response: []\n")
    cli.prepare_paths(str(site), "lib,.")
    assert os.getcwd() == str(site)
    assert sys.path[:2] == [str(site / "lib"), str(site)] and sys.path.count(str(site)) == 1
    assert callable(load_app("cli16_in_site"))


@pytest.mark.parametrize("argv, message", [
    (["--chdir", "/nonexistent-cli16"], "--chdir /nonexistent-cli16: No such file or directory"),
    (["--pythonpath", "/nonexistent-cli16"], "--pythonpath /nonexistent-cli16: '/nonexistent-cli16' is not a "
                                             "directory"),
    (["prefork", "--threads", "2"], "--threads 2: prefork runs one thread per process"),
    (["-w", "0"], "argument -w/--workers: expected a whole number of at least 1, got '0'"),
])
def test_bad_flags_are_clear_errors(capsys, isolated, argv, message):
    rc, out, err = run_main(capsys, *argv, "--show-config")
    assert rc == 2 and out == "" and message in err


def test_the_server_imports_only_the_core_dependencies():
    """The core install (httptools, PyYAML) is enough to run every MPM from the command line."""
    code = textwrap.dedent("""\
        import sys
        before = set(sys.modules)
        import servers.__main__, servers.cli, servers.wsgi, servers.apps, servers.mpm.parent
        import servers.mpm.prefork, servers.mpm.worker, servers.mpm.event
        new = {m.split(".")[0] for m in set(sys.modules) - before}
        # modules with a file of their own (Cython's in-memory helper modules have none)
        print(" ".join(sorted(m for m in new - set(sys.stdlib_module_names) - {"servers"}
                              if getattr(sys.modules.get(m), "__file__", None))))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert set(out.stdout.split()) <= {"httptools", "yaml"}, out.stdout


# -- the "done when": a user's app.py, -w 4 -b 127.0.0.1:0 app ------------------------------


def _server_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m servers``."""
    script = os.path.join(sysconfig.get_path("scripts"), "mpm-server")
    if os.access(script, os.X_OK):
        return [script]
    found = shutil.which("mpm-server")
    return [found] if found else [sys.executable, "-m", "servers"]


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line, waited for with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
    raise AssertionError(f"no 'listening on' line within {timeout}s (exit status {proc.poll()})")


def test_console_script_serves_a_users_app_py_with_four_workers(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(APP_PY)
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*_server_command(), "--chdir", str(project), "-w", "4", "-b", "127.0.0.1:0", "app"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
    try:
        line = _read_line(proc, 60)
        assert line.startswith("listening on http://127.0.0.1:"), log.read_text()
        port = int(line.rsplit(":", 1)[1])
        parent = psutil.Process(proc.pid)
        wait_until(lambda: len(parent.children()) == 4, 30, what="four children")
        for _ in range(8):
            response = request(port, GET)
            assert response.status == 200 and response.body == b"hello from app.py"
        kids = parent.children()
        assert len(kids) == 4 and all(k.cwd() == str(project) for k in kids)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        wait_until(lambda: not any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kids), 15,
                   what="the children to exit")
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdout.close()
