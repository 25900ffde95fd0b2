"""A matrix server's ``python``: the interpreter our MPMs, gunicorn and waitress start with.

Parsing (``${VAR}``, paths, refusal for the servers that bring their own Python), the check before
the run (missing, too old, cannot import the servers: each a MatrixError naming the file, the entry
and the key), and the plumbing: a server started on the interpreter the entry names, recorded in
run.json and shown in the report's environment. The servers run on loopback, one trial of short
profiles; nothing is timed.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import psutil
import pytest

from harness.matrix import MatrixError, check_interpreters, load_matrix, parse_matrix
from harness.report import render_markdown
from harness.results import load_run
from harness.runner import MatrixRunner, _suite_env
from servers.interpreters import PYTHON_ENV, probe_python, python_imports
from servers.launcher import LaunchError, NotApplicable, reference, start

SMALL_EVENT = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4,
               "MinSpareThreads": 1, "MaxSpareThreads": 8}


def doc(*servers, **top):
    return {"trials": 1, "warmup": 0, "quiet": {"seconds": 0.1}, "timeouts": {"start": 30}, "scoreboard": False,
            "servers": list(servers),
            "profiles": {"hello": {"driver": "loadgen", "duration": 0.5, "connections": 2}}, **top}


def write_matrix(tmp_path: Path, *servers) -> Path:
    import yaml

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc(*servers)))
    return path


def fake_python(tmp_path: Path, version: str) -> str:
    """A script that answers the launcher's probe as a Python of ``version`` would (no such Python needed)."""
    path = tmp_path / f"python{version}"
    path.write_text("#!/bin/sh\n"
                    f"echo '{{\"executable\": \"{path}\", \"version\": \"{version}\", "
                    "\"implementation\": \"CPython\", \"modules\": {}, \"packages\": {}}'\n")
    path.chmod(0o755)
    return str(path)


def linked_python(tmp_path: Path) -> str:
    """This interpreter under another path, so a test can see which path a server was started with."""
    link = tmp_path / "py-link"
    link.symlink_to(sys.executable)
    return str(link)


# -- parsing --------------------------------------------------------------------------------------------


def test_no_key_means_no_interpreter_and_nothing_to_check():
    m = parse_matrix(doc({"label": "ev", "server": "event"}))
    assert m.servers[0].python == ""
    assert check_interpreters(m) == {}


def test_env_references_expand_with_their_defaults(monkeypatch):
    monkeypatch.setenv("MPM_TEST_PY", "/opt/py/bin/python3.12")
    monkeypatch.delenv("MPM_TEST_UNSET", raising=False)
    m = parse_matrix(doc({"label": "a", "server": "event", "python": "${MPM_TEST_PY}"},
                         {"label": "b", "server": "worker", "python": "${MPM_TEST_UNSET:-python3.13}"}))
    assert [s.python for s in m.servers] == ["/opt/py/bin/python3.12", "python3.13"]


def test_an_unset_variable_without_default_names_file_key_and_fix(monkeypatch):
    monkeypatch.delenv("MPM_TEST_UNSET", raising=False)
    with pytest.raises(MatrixError) as e:
        parse_matrix(doc({"label": "a", "server": "event", "python": "${MPM_TEST_UNSET}"}), source="x.yaml")
    text = str(e.value)
    assert text.startswith("x.yaml: servers[0].python") and "MPM_TEST_UNSET" in text and ":-python3.12" in text


def test_relative_and_home_paths_resolve_against_the_matrix_file(tmp_path):
    path = write_matrix(tmp_path, {"label": "a", "server": "event", "python": "venv/bin/python"},
                        {"label": "b", "server": "event", "python": "~/py/bin/python"},
                        {"label": "c", "server": "event", "python": "python3.12"})
    m = load_matrix(path)
    assert m.servers[0].python == str(tmp_path / "venv/bin/python")
    assert m.servers[1].python == os.path.expanduser("~/py/bin/python")
    assert m.servers[2].python == "python3.12"  # a bare name is looked up on PATH when checked


@pytest.mark.parametrize("server", ["granian", "uwsgi-threads", "modwsgi-event", "apache-event"])
def test_servers_that_bring_their_own_python_refuse_the_key(server):
    with pytest.raises(MatrixError) as e:
        parse_matrix(doc({"label": "p", "server": server, "python": sys.executable}), source="peers.yaml")
    text = str(e.value)
    assert text.startswith("peers.yaml: servers[0].python") and server in text and "remove the key" in text
    assert "gunicorn-sync" in text and "waitress" in text  # what does take it


def test_the_launcher_refuses_an_interpreter_for_a_server_with_its_own():
    with pytest.raises(NotApplicable, match="granian"):
        start("granian", {}, python=sys.executable)


def test_a_url_server_takes_no_interpreter():
    with pytest.raises(MatrixError, match="python goes with a launched server"):
        parse_matrix(doc({"label": "u", "url": "http://127.0.0.1:9/", "python": sys.executable}))


# -- the check before the run ---------------------------------------------------------------------------


def check_error(tmp_path: Path, python: str, server: str = "event") -> str:
    m = load_matrix(write_matrix(tmp_path, {"label": "odd", "server": server, "python": python}))
    with pytest.raises(MatrixError) as e:
        check_interpreters(m)
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'm.yaml'}: server 'odd' (servers[0] of this run), key python: ")
    return text


def test_a_missing_interpreter_is_refused(tmp_path):
    assert "not found on PATH" in check_error(tmp_path, "python-mpm-does-not-exist")
    assert "not found" in check_error(tmp_path, str(tmp_path / "nope/python"))


def test_a_too_old_interpreter_is_refused(tmp_path):
    text = check_error(tmp_path, fake_python(tmp_path, "3.10.13"))
    assert "Python 3.10.13" in text and ">= 3.11" in text


def test_an_interpreter_that_cannot_import_the_servers_is_refused_with_the_fix(tmp_path):
    # this very interpreter, isolated (-I: no PYTHONPATH) and without site-packages: no servers, no yaml
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    wrapper.chmod(0o755)
    text = check_error(tmp_path, str(wrapper))
    assert "cannot import servers" in text
    assert "-m pip install -e '.[dev]'` from the checkout" in text


def test_a_peer_package_missing_on_the_interpreter_names_the_peers_extra(tmp_path):
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    wrapper.chmod(0o755)
    with pytest.raises(LaunchError) as e:
        probe_python(str(wrapper), ["gunicorn"], server=reference("gunicorn-sync"))
    assert "cannot import gunicorn" in str(e.value) and "'.[dev,peers]'" in str(e.value)


def test_python_imports_cover_the_server_and_the_app():
    assert python_imports("event", None) == ("servers.__main__", "servers.mpm.event", "servers.apps")
    assert python_imports("gunicorn-gthread", reference("gunicorn-gthread"), "myapp:app") == \
        ("servers", "gunicorn", "myapp")


# -- the plumbing: a server on the interpreter the entry names ------------------------------------------


def test_start_runs_our_mpm_on_the_given_interpreter(tmp_path):
    python = linked_python(tmp_path)
    with start("event", SMALL_EVENT, python=python) as h:
        assert psutil.Process(h.pid).cmdline()[0] == python
        assert h.get("/")[0] == 200


def test_start_takes_the_interpreter_from_the_environment_for_the_suites(tmp_path, monkeypatch):
    python = linked_python(tmp_path)
    monkeypatch.setenv(PYTHON_ENV, python)
    with start("event", SMALL_EVENT) as h:
        assert psutil.Process(h.pid).cmdline()[0] == python
    m = parse_matrix(doc({"label": "ev", "server": "event", "python": python}))
    assert _suite_env(m.servers[0], python) == {PYTHON_ENV: python}
    assert _suite_env(m.servers[0]) is None


def test_a_matrix_entry_with_python_starts_serves_and_is_recorded(tmp_path):
    python = linked_python(tmp_path)
    m = parse_matrix(doc({"label": "ev-linked", "server": "event", "set": SMALL_EVENT, "python": python},
                         {"label": "ev", "server": "event", "set": SMALL_EVENT}), source="<test>")
    MatrixRunner(m, tmp_path / "run", out=io.StringIO()).run()
    run = load_run(tmp_path / "run")
    assert [c["status"] for c in run["cells"]] == ["ok", "ok"]
    version = ".".join(map(str, sys.version_info[:3]))
    linked = run["servers"]["ev-linked"]["python"]
    assert linked == {"executable": python, "version": version, "implementation": "CPython", "requested": python}
    assert run["servers"]["ev-linked"]["version"] == f"mpm-harness event (Python {version})"
    plain = run["servers"]["ev"]["python"]  # without the key: the harness's own interpreter, recorded too
    assert plain["version"] == version and plain["requested"] == ""
    text = render_markdown(run)
    assert f"Servers on Python {version} ({python}): ev-linked" in text


# -- another Python, when this machine has one with the project installed --------------------------------


def other_python() -> str:
    """A Python of another minor version that imports this checkout's servers: $MPM_PYTHON_3_1x (the
    variables the versions matrix reads) or python3.1x on PATH; skipped, naming the set-up, when none."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for minor in ("3.11", "3.12", "3.13"):
        if minor == mine:
            continue
        for candidate in (os.environ.get(f"MPM_PYTHON_{minor.replace('.', '_')}"), f"python{minor}"):
            if not candidate:
                continue
            try:
                found = probe_python(candidate, python_imports("event", None))
            except LaunchError:
                continue
            if found.version.startswith(minor):
                return found.executable
    pytest.skip("no other Python (3.11-3.13) with this checkout installed: set MPM_PYTHON_3_12 (or _3_11, _3_13) "
                "to a python that ran `pip install -e '.[dev]'` from here")


def test_a_server_runs_on_another_python_and_run_json_records_its_version(tmp_path):
    python = other_python()
    found = probe_python(python)
    m = parse_matrix(doc({"label": "ev-other", "server": "event", "set": SMALL_EVENT, "python": python}))
    MatrixRunner(m, tmp_path / "run", out=io.StringIO()).run()
    run = load_run(tmp_path / "run")
    assert [c["status"] for c in run["cells"]] == ["ok"]
    assert run["servers"]["ev-other"]["python"]["version"] == found.version != sys.version.split()[0]
    assert run["servers"]["ev-other"]["version"] == f"mpm-harness event (Python {found.version})"


def test_waitress_and_gunicorn_run_on_another_python(tmp_path):
    python = other_python()
    for name in ("waitress", "gunicorn-gthread"):
        try:
            found = probe_python(python, python_imports(name, reference(name)))
        except LaunchError as exc:
            pytest.skip(f"{name} is not installed on {python}: {exc}")
        with start(name, {"StartServers": 1, "ThreadsPerChild": 2}, python=found.executable) as h:
            assert psutil.Process(h.pid).cmdline()[0] == found.executable
            assert h.get("/")[0] == 200


def test_without_the_key_a_peer_records_the_interpreter_it_ran_on(tmp_path):
    from servers.launcher import available

    if available()["waitress"]:
        pytest.skip(f"waitress: {available()['waitress']}")
    m = parse_matrix(doc({"label": "wt", "server": "waitress", "set": {"StartServers": 1, "ThreadsPerChild": 2}},
                         {"label": "uw", "server": "uwsgi-threads"}))
    MatrixRunner(m, tmp_path / "run", out=io.StringIO()).run()
    run = load_run(tmp_path / "run")
    version = sys.version.split()[0]
    assert run["servers"]["wt"]["python"]["version"] == version and run["servers"]["wt"]["python"]["requested"] == ""
    assert run["servers"]["wt"]["version"].endswith(f"(Python {version})")
    assert run["servers"]["uw"]["python"] is None  # uWSGI's Python is its own: nothing of ours to name


def test_harness_list_shows_each_servers_python_as_the_run_would_probe_it(tmp_path, capsys):
    from harness import cli

    path = tmp_path / "m.yaml"
    path.write_text(f"servers:\n  - {{label: here, server: worker, python: {sys.executable}}}\n"
                    f"  - {{label: gone, server: worker, python: {tmp_path / 'no-such-python'}}}\n"
                    "  - {label: plain, server: worker}\n"
                    "profiles:\n  hello: {driver: loadgen, duration: 1}\n")
    assert cli.main(["list", "--matrix", str(path)]) == 0
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    version = ".".join(map(str, sys.version_info[:3]))
    assert rows["here"][3].startswith(f"{version} (")
    assert rows["gone"][3].startswith("refused: ") and "no-such-python" in rows["gone"][3]
    assert rows["plain"][3] == "-"
