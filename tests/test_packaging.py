"""Packaging: the extras, the LICENSE, ``harness --version``, the suites as a pytest plugin, and
the checkout's own pytest defaults.

* Extras by what each part imports when it runs: every third-party import in servers/, suites/
  and harness/ (lazy ones included) belongs to the core or to an extra that part installs.
* The suites' plugin (``suites.plugin``, a ``pytest11`` entry point): from another directory,
  ``pytest --pyargs suites.conformance --target URL`` collects the suite with ids that name the
  target, never its port, and ``-m "must and not desync"`` selects by level and family under
  ``--strict-markers``.
* The issue's "done when": in a fresh venv outside the checkout, the core install alone serves a
  user's own ``app.py`` through the console script (``mpm-server -w 4 -b 127.0.0.1:0 app``, four
  workers); with the ``suites`` extra added, the conformance suite runs with ``--target`` from
  another directory against one of our servers started by that venv (about 30 s here). Skipped,
  naming why, when the package registry cannot be reached.
* The checkout's defaults (pyproject.toml): a plain ``python -m pytest`` runs on 2 xdist workers
  with a 120 s timeout per test, while ``-p no:xdist``, ``--lf`` and ``--ff`` still work.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.request
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from harness import cli
from suites.conformance.cases import CASES
from suites.conformance.markers import marker_names
from suites.wire import wait_until
from tests.test_import_graph import _imports, _module_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PACKAGES = ("servers", "harness", "suites")

#: import name -> the distribution that provides it
DISTRIBUTION = {"yaml": "pyyaml", "httptools": "httptools", "h11": "h11", "pytest": "pytest", "psutil": "psutil",
                "tabulate": "tabulate", "hdrh": "hdrhistogram", "matplotlib": "matplotlib", "locust": "locust",
                "gunicorn": "gunicorn",
                # locust runs on gevent (a dependency of locust itself): the locustfile builds its
                # users' TLS contexts with gevent.ssl, so gevent comes with the locust extra
                "gevent": "locust"}
#: part of the tree -> the extras it is run with (the core always)
PARTS = {
    "servers": ("suites", "peers"),  # the launcher lists processes (psutil) and starts gunicorn for the suites
    "suites": ("suites",),
    "suites/load.py": ("locust",),  # the locust profiles
    "harness": ("harness", "locust"),  # the locust driver's plugin runs inside locust
}


def _name(requirement: str) -> str:
    """``pytest-xdist>=3.5`` -> ``pytest-xdist``; ``mpm-harness[suites]`` -> ``mpm-harness[suites]``."""
    for sep in "<>=!~; ":
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower()


def _closure(*extras: str) -> set[str]:
    """The distributions the core and ``extras`` install, self-references (``mpm-harness[x]``) followed."""
    out = {_name(r) for r in PROJECT["dependencies"]}
    todo = list(extras)
    while todo:
        for req in PROJECT["optional-dependencies"][todo.pop()]:
            name = _name(req)
            if name.startswith("mpm-harness["):
                todo += name[len("mpm-harness["):-1].split(",")
            else:
                out.add(name)
    return out


def _third_party(path: Path) -> set[str]:
    """Top-level names of the non-stdlib, non-project modules ``path`` imports (lazy imports included)."""
    tops = {t.split(".")[0] for t in _imports(path, _module_name(path)) if t}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in PACKAGES and t != "__future__"}


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return rel if rel in PARTS else rel.split("/")[0]


# -- extras and licence ----------------------------------------------------------------------------------


def test_core_is_what_the_servers_need():
    assert {_name(r) for r in PROJECT["dependencies"]} == {"httptools", "pyyaml"}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_third_party_import_is_in_an_extra_of_its_part(package):
    """A new import must come with its distribution in pyproject.toml (and in DISTRIBUTION above)."""
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        installed = _closure(*PARTS[_part(path)])
        for top in sorted(_third_party(path)):
            dist = DISTRIBUTION.get(top)
            if dist is None or dist not in installed:
                bad.append(f"{path.relative_to(ROOT)} imports {top} ({dist or 'unknown distribution'}), "
                           f"not installed by the core + {PARTS[_part(path)]}")
    assert bad == []


def test_extras_nest_as_documented():
    suites = _closure("suites")
    assert {"pytest", "h11", "psutil"} <= suites
    assert suites | {"psutil", "tabulate", "hdrhistogram", "matplotlib", "pytest-xdist"} <= _closure("harness")
    assert _closure("all") == _closure("suites", "harness", "locust")
    assert _closure("all") | {"pytest-xdist", "pytest-timeout", "hypothesis"} <= _closure("dev")
    assert "gunicorn" not in _closure("dev")  # the reference servers stay the README's second command


def test_license_is_apache_2_and_declared():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]


def test_harness_version_names_the_package_and_python(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"mpm-harness {importlib.metadata.version('mpm-harness')}" in out
    assert platform.python_version() in out



def test_python_dash_m_harness_is_the_harness_command():
    """``python -m harness`` runs the same command line as the ``harness`` script (harness/__main__.py)."""
    out = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert f"mpm-harness {importlib.metadata.version('mpm-harness')}" in out.stdout

# -- the suites as a pytest plugin -----------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would leak this pytest run into a nested one (xdist worker ids, addopts)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def _pytest(args: list, cwd: Path, python: str | Path = sys.executable, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pytest", *map(str, args)], cwd=cwd, env=_clean_env(**env),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _escaped(test_id: str) -> str:
    """A test id as pytest shows it: non-ASCII characters backslash-escaped."""
    return test_id.encode("unicode_escape").decode("ascii")


def _collected(out: str) -> list[str]:
    return [line.split("::")[-1] for line in out.splitlines() if "::test_conformance[" in line]


def test_plugin_from_another_directory_names_the_target_and_selects_by_marker(tmp_path):
    expected = [c.id for c in CASES if {"must"} <= set(marker_names(c)) and "desync" not in marker_names(c)]
    proc = _pytest(["--pyargs", "suites.conformance", "--target", "http://127.0.0.1:8080", "--collect-only", "-q",
                    "--strict-markers", "-p", "no:cacheprovider", "-m", "must and not desync"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # pytest shows a non-ASCII id escaped (row25-cl-\xf9-xa5)
    assert _collected(proc.stdout) == [f"test_conformance[target-{_escaped(cid)}]" for cid in expected]
    named = _pytest(["--pyargs", "suites.conformance", "--target", "http://127.0.0.1:8080", "--target-name", "myapp",
                     "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "should and framing"], cwd=tmp_path)
    assert named.returncode == 0, named.stdout[-2000:] + named.stderr[-2000:]
    ids = _collected(named.stdout)
    assert ids and all(i.startswith("test_conformance[myapp-") and "8080" not in i for i in ids)


def test_two_targets_need_two_names(tmp_path):
    proc = _pytest(["suites/test_smoke.py", "--collect-only", "-q", "-p", "no:xdist", "--target", "http://127.0.0.1:1",
                    "--target", "http://127.0.0.1:2", "--target-name", "target2"], cwd=ROOT)
    assert proc.returncode == 4 and "two servers named target2" in proc.stderr, proc.stderr[-2000:]
    proc = _pytest(["suites/test_smoke.py", "--collect-only", "-q", "-p", "no:xdist", "--target", "http://127.0.0.1:1",
                    "--target", "http://127.0.0.1:2"], cwd=ROOT)
    assert [line.split("::")[-1] for line in proc.stdout.splitlines() if "::" in line] == [
        "test_get_root_answers_with_date[target1]", "test_get_root_answers_with_date[target2]"]


# -- the "done when": a fresh venv, the suites extra, --target from elsewhere --------------------


def _registry_or_skip(tmp_path: Path) -> None:
    """Skip, naming why, when pip cannot fetch a small package from the configured registry."""
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path / "probe"),
                            "h11"], capture_output=True, text=True, timeout=180, env=_clean_env())
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the package registry is unreachable (pip download h11: {last})")


def _wheel(tmp_path: Path) -> Path:
    """A wheel of the working tree, built from a copy (the build writes build/ and *.egg-info where it runs)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", PROJECT["readme"], *PROJECT["license-files"]):
        shutil.copy2(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    # an absolute path: pip reads a bare word as a project name on the index
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src.resolve())],
                   check=True, capture_output=True, timeout=300, env=_clean_env())
    (wheel,) = out.glob("mpm_harness-*.whl")
    return wheel


def _serve(python: Path, run_dir: Path) -> tuple[subprocess.Popen, str]:
    """Start our event MPM with the venv's interpreter in ``run_dir``; (process, URL) once it listens."""
    run_dir.mkdir()
    out = run_dir / "stdout"
    with open(out, "wb") as stdout, open(run_dir / "stderr", "wb") as stderr:
        proc = subprocess.Popen([str(python), "-m", "servers", "event", "--listen", "127.0.0.1:0"], cwd=run_dir,
                                env=_clean_env(), stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    wait_until(lambda: "listening on" in out.read_text() or proc.poll() is not None, 60,
               what="the venv's server to listen")
    line = out.read_text().strip()
    assert line.startswith("listening on http://127.0.0.1:"), (line, (run_dir / "stderr").read_text()[-2000:])
    return proc, line.removeprefix("listening on ")


def _stop(proc: subprocess.Popen) -> None:
    """TERM the server's parent (httpd's stop); KILL its session if it outlives 30 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


USER_APP = "def application(environ, start_response):\n" \
           "    start_response('200 OK', [('Content-Type', 'text/plain')])\n" \
           "    return [b'from the user app']\n"


def _serve_user_app(venv: Path, run_dir: Path) -> tuple[subprocess.Popen, str]:
    """The core install's console script, as a gunicorn user types it: ``mpm-server -w 4 -b ADDR app``
    (port 0 rather than 8000 so that nothing on this machine can collide with it)."""
    run_dir.mkdir()
    (run_dir / "app.py").write_text(USER_APP)
    out = run_dir / "stdout"
    with open(out, "wb") as stdout, open(run_dir / "stderr", "wb") as stderr:
        proc = subprocess.Popen([str(venv / "bin" / "mpm-server"), "-w", "4", "-b", "127.0.0.1:0", "app"],
                                cwd=run_dir, env=_clean_env(), stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    wait_until(lambda: "listening on" in out.read_text() or proc.poll() is not None, 60,
               what="the console script's server to listen")
    line = out.read_text().strip()
    assert line.startswith("listening on http://127.0.0.1:"), (line, (run_dir / "stderr").read_text()[-2000:])
    return proc, line.removeprefix("listening on ")


def test_fresh_venv_core_serves_a_user_app_and_the_suites_extra_runs_conformance(tmp_path):
    """In a fresh venv outside the checkout: the core install alone serves a user's app.py through
    the console script with four workers; with the suites extra added, the conformance suite runs
    from another directory against a target."""
    _registry_or_skip(tmp_path)
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=180,
                   env=_clean_env())
    python = venv / "bin" / "python"

    core = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=600, env=_clean_env())
    assert core.returncode == 0, core.stderr[-3000:]
    assert subprocess.run([str(python), "-c", "import pytest"], capture_output=True, env=_clean_env()).returncode
    proc, url = _serve_user_app(venv, tmp_path / "user")
    try:
        workers = wait_until(lambda: len(psutil.Process(proc.pid).children()) == 4 or None, 30,
                             what="four worker processes")
        assert workers
        with urllib.request.urlopen(url + "/", timeout=10) as r:
            assert r.read() == b"from the user app"
    finally:
        _stop(proc)

    install = subprocess.run([str(python), "-m", "pip", "install", "-q", f"{wheel}[suites]"], capture_output=True,
                             text=True, timeout=600, env=_clean_env())
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import suites; print(suites.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, timeout=60, env=_clean_env(), check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    proc, url = _serve(python, tmp_path / "server")
    try:
        run = _pytest(["--pyargs", "suites.conformance", "--target", url, "-q", "--strict-markers",
                       f"--junitxml={tmp_path / 'conformance.xml'}"], cwd=elsewhere, python=python, timeout=600)
    finally:
        _stop(proc)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    names = [tc.get("name") for tc in ET.parse(tmp_path / "conformance.xml").getroot().iter("testcase")]
    assert sorted(names) == sorted(f"test_conformance[target-{_escaped(c.id)}]" for c in CASES)


# -- the checkout's own defaults -------------------------------------------------------------------------

PROBE = textwrap.dedent("""\
    import os


    def _record(name):
        with open(os.environ["PROBE_OUT"], "a") as out:
            out.write(f"{name} {os.environ.get('PYTEST_XDIST_WORKER_COUNT', 'none')}\\n")


    def test_passes():
        _record("test_passes")


    def test_fails_when_asked():
        _record("test_fails_when_asked")
        assert os.environ.get("PROBE_FAIL") != "1"
    """)


def _checkout_run(tmp_path: Path, *args: str, fail: bool = False) -> tuple[subprocess.CompletedProcess, list]:
    """Run a probe file under this checkout's pytest configuration: (process, [(test, worker count)] in run order)."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    out = tmp_path / "ran"
    out.unlink(missing_ok=True)
    proc = _pytest(["-c", ROOT / "pyproject.toml", "--rootdir", ROOT, "-o", f"cache_dir={tmp_path / 'cache'}",
                    *args, probe], cwd=tmp_path, timeout=120, PROBE_OUT=str(out), PROBE_FAIL="1" if fail else "0")
    ran = [tuple(line.split()) for line in out.read_text().splitlines()] if out.exists() else []
    return proc, ran


def test_a_plain_run_takes_two_workers_and_the_timeout(tmp_path):
    proc, ran = _checkout_run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {workers for _, workers in ran} == {"2"} and len(ran) == 2
    assert "timeout: 120.0s" in proc.stdout


@pytest.mark.parametrize("args, workers", [(("-p", "no:xdist"), "none"), (("-n", "0"), "none"), (("-n", "1"), "1")])
def test_the_command_line_overrides_the_default_workers(tmp_path, args, workers):
    proc, ran = _checkout_run(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {w for _, w in ran} == {workers} and len(ran) == 2


def test_last_failed_and_failed_first_work(tmp_path):
    first, _ = _checkout_run(tmp_path, fail=True)
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    lf, ran = _checkout_run(tmp_path, "--lf", fail=True)
    assert lf.returncode == 1, lf.stdout[-2000:] + lf.stderr[-2000:]
    assert [name for name, _ in ran] == ["test_fails_when_asked"]
    ff, ran = _checkout_run(tmp_path, "--ff", "-p", "no:xdist", fail=True)
    assert ff.returncode == 1, ff.stdout[-2000:] + ff.stderr[-2000:]
    assert [name for name, _ in ran] == ["test_fails_when_asked", "test_passes"]


def test_harness_without_its_extra_names_the_extra(monkeypatch, capsys):
    """With the suites extra alone, `harness` exits 2 naming what to install, not a traceback."""
    from harness import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name, *a: None if name == "hdrh" else real(name, *a))
    assert cli.missing_dependencies() == ["hdrhistogram"]
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert "missing hdrhistogram" in err and "pip install 'mpm-harness[harness]'" in err
