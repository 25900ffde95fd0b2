"""Matrix servers given as a URL (already running): parsing, the run, "not sampled here", --target, the attack rule.

Every server here is one of our MPMs started by the test on 127.0.0.1 and stopped by its PID; the
non-loopback address 192.0.2.1 (TEST-NET-1) only appears where the run must refuse before any request.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from harness import cli
from harness.drivers.locust import locust_available
from harness.matrix import ATTACK_NOT_RUN, URL_SERVER, MatrixError, load_matrix, parse_matrix, url_matrix
from harness.report import render_markdown
from harness.results import load_run
from harness.runner import MatrixRunner
from harness.suiterun import _target_args
from servers.launcher import start

SMALL_EVENT = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4,
               "MinSpareThreads": 1, "MaxSpareThreads": 8}
HELLO = {"hello": {"driver": "loadgen", "duration": 0.5, "connections": 2}}


@pytest.fixture(scope="module")
def event():
    """One event server for the module, on loopback, stopped by its PID at the end."""
    handle = start("event", SMALL_EVENT, timeout=20)
    try:
        yield handle
    finally:
        handle.stop()


def matrix(server: dict, profiles=None, **top):
    doc = {"trials": 1, "warmup": 0, "quiet": {"seconds": 0.1}, "scoreboard": False,
           "servers": [server], "profiles": HELLO if profiles is None else profiles, **top}
    return parse_matrix(doc, source="<test>", name="test")


def run(m, tmp_path: Path) -> dict:
    out = io.StringIO()
    MatrixRunner(m, tmp_path / "run", out=out).run()
    doc = load_run(tmp_path / "run")
    doc["_progress"] = out.getvalue()
    return doc


def rows(markdown: str) -> list[list[str]]:
    """The cells of every table row, stripped of their padding."""
    return [[x.strip() for x in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("|")]


def profile_cells(doc: dict) -> list[dict]:
    return [c for c in doc["cells"] if c["kind"] == "profile"]


# -- the matrix ---------------------------------------------------------------------------------------


def test_a_url_entry_parses_with_its_label_and_no_trailing_slash():
    m = matrix({"url": "http://127.0.0.1:8080/app/", "pid": 12})
    s = m.servers[0]
    assert (s.server, s.url, s.label, s.pid, s.loopback) == (URL_SERVER, "http://127.0.0.1:8080/app",
                                                              "127.0.0.1:8080", 12, True)


@pytest.mark.parametrize("entry, words", [
    ({"url": "ftp://127.0.0.1/"}, "must be http://"),
    ({"url": "http://127.0.0.1/?q=1"}, "no credentials, query or fragment"),
    ({"url": "http://127.0.0.1:99999/"}, "port"),
    ({"url": "http://127.0.0.1/", "pid": 1, "pidfile": "/run/x.pid"}, "pid or pidfile, not both"),
    ({"url": "http://127.0.0.1/", "set": {"StartServers": 1}}, "set goes with a launched server"),
    ({"server": "event", "pid": 1}, "pid goes with url"),
    ({"label": "x"}, "'server' is required"),
    ({"url": "https://127.0.0.1/", "insecure": True, "cafile": "/ca.pem"}, "cafile or insecure, not both"),
])
def test_bad_url_entries_are_refused_naming_the_key(entry, words):
    with pytest.raises(MatrixError, match="servers\\[0\\]") as exc:
        matrix(entry)
    assert words in str(exc.value)


def test_the_attack_rule_at_the_matrix_level():
    remote = matrix({"url": "http://192.0.2.1/"}).servers[0]
    assert remote.attack_refusal(True) == ATTACK_NOT_RUN
    assert remote.attack_refusal(False) is None  # plain load is not attack-like
    allowed = matrix({"url": "http://192.0.2.1/", "allow_attacks": True}).servers[0]
    assert allowed.attack_refusal(True) is None
    assert matrix({"url": "http://127.0.0.1:1/"}).servers[0].attack_refusal(True) is None  # this machine's


def test_suites_get_the_target_options():
    assert _target_args("event", None) == ["--server", "event"]
    args = _target_args("url", {"url": "https://127.0.0.1:1", "name": "t", "cafile": "/ca.pem",
                                "insecure": False, "allow_attacks": True})
    assert args == ["--target", "https://127.0.0.1:1", "--target-name", "t", "--cafile", "/ca.pem",
                    "--allow-attacks"]


# -- runs ---------------------------------------------------------------------------------------------


def test_a_url_only_server_is_measured_and_marked_not_sampled_here(event, tmp_path):
    doc = run(matrix({"label": "running", "url": event.url}), tmp_path)
    [cell] = profile_cells(doc)
    assert cell["status"] == "ok" and cell["result"]["requests"] > 0
    assert "cpu_us_per_request" not in cell["metrics"] and cell["sampler"] is None
    assert doc["servers"]["running"]["sampled"] is False
    tables = render_markdown(doc)
    cpu, memory = tables.split("2. CPU per request")[1].split("3. Memory")
    assert ["running", "hello", "1/1", "not sampled here"] in [r[:4] for r in rows(cpu)]
    assert ["running", "hello", "1/1", "not sampled here", "not sampled here", "not sampled here"] in [
        r[:6] for r in rows(memory)]
    assert event.alive(), "a URL server is not stopped by the run"


def test_a_url_server_with_its_pid_is_sampled(event, tmp_path):
    doc = run(matrix({"label": "running", "url": event.url, "pid": event.pid}), tmp_path)
    [cell] = profile_cells(doc)
    assert cell["status"] == "ok"
    assert cell["metrics"]["cpu_us_per_request"] > 0 and cell["metrics"]["pss_peak_mib"] > 0
    assert doc["servers"]["running"]["sampled"] is True
    assert "not sampled here" not in render_markdown(doc)
    assert event.alive()


def test_a_pidfile_that_names_no_process_is_recorded_not_sampled(event, tmp_path):
    pidfile = tmp_path / "gone.pid"
    pidfile.write_text("999999999\n")
    doc = run(matrix({"label": "running", "url": event.url, "pidfile": str(pidfile)}), tmp_path)
    assert profile_cells(doc)[0]["status"] == "ok"
    assert doc["servers"]["running"]["sampled"] is False
    assert "no process 999999999" in doc["servers"]["running"]["unsampled_reason"]


def test_attack_like_profiles_against_a_remote_url_are_not_run(tmp_path):
    """Every profile is attack-like (idle connections, churning locust users): the run records the
    refusals and sends nothing to 192.0.2.1."""
    m = matrix({"label": "remote", "url": "http://192.0.2.1:9/"},
               {"idle": {"driver": "idle", "connections": 4, "duration": 0.5},
                "churn": {"driver": "locust", "users": 2, "duration": 0.5, "user_classes": ["ChurnUser"]}})
    doc = run(m, tmp_path)
    cells = profile_cells(doc)
    assert sorted(c["profile"] for c in cells) == ["churn", "idle"]
    for cell in cells:
        assert (cell["status"], cell["result"]) == ("skipped", None)
        assert cell["reason"] in (ATTACK_NOT_RUN, locust_available()), cell
    assert "trial" not in doc["_progress"]  # no trial started: nothing was sent
    assert ATTACK_NOT_RUN in render_markdown(doc)


def test_harness_run_target_is_the_one_line_form(event, tmp_path, capsys):
    code = cli.main(["run", "--target", event.url, "--pid", str(event.pid), "--target-name", "mine",
                     "--profile", "hello-closed", "--duration", "0.3", "--no-suites",
                     "--results-dir", str(tmp_path)])
    assert code == 0
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir()]
    doc = load_run(run_dir)
    assert list(doc["servers"]) == ["mine"] and doc["matrix"]["name"] == "quick-target"
    [cell] = profile_cells(doc)
    assert cell["profile"] == "hello-closed" and cell["status"] == "ok"
    assert ["mine", "hello-closed"] in [r[:2] for r in rows(capsys.readouterr().out)]
    assert event.alive()


def test_target_options_need_target(capsys):
    assert cli.main(["run", "--pid", str(os.getpid()), "--no-suites"]) == 2
    assert "go with --target" in capsys.readouterr().err


def test_url_matrix_keeps_the_base_profiles_and_suites():
    base = load_matrix("quick")
    m = url_matrix(base, "http://127.0.0.1:1/", allow_attacks=True)
    assert [p.name for p in m.profiles] == [p.name for p in base.profiles] and m.suites == base.suites
    assert m.reference == "" and m.servers[0].allow_attacks


def test_harness_list_shows_a_url_server_as_running(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("servers:\n  - {label: staging, url: 'http://192.0.2.1:8080/'}\n"
                    "profiles:\n  hello: {driver: loadgen, duration: 1}\n")
    assert cli.main(["list", "--matrix", str(path)]) == 0
    assert ["staging", "url", "running (not sampled here)", "-", "http://192.0.2.1:8080"] in rows(capsys.readouterr().out)


def test_the_suites_run_against_a_url_server_through_target(event, tmp_path):
    doc = run(matrix({"label": "running", "url": event.url}, profiles={}, suites=["smoke"]), tmp_path)
    [cell] = [c for c in doc["cells"] if c["kind"] == "suite"]
    assert cell["suite"] == "smoke" and cell["status"] == "ok", cell["reason"]
    assert cell["counts"]["passed"] > 0
    assert "[running]" in (tmp_path / "run" / "suites" / "running.xml").read_text()  # --target-name LABEL


def test_a_status_url_is_polled_and_no_status_url_means_no_poll(event, tmp_path):
    polled = run(matrix({"label": "running", "url": event.url, "status_url": event.url + "/server-status"},
                        scoreboard=True), tmp_path / "a")
    board = profile_cells(polled)[0]["scoreboard"]
    assert board is not None and board["busy"], board  # states over time, read from the status_url
    unpolled = run(matrix({"label": "running", "url": event.url}, scoreboard=True), tmp_path / "b")
    assert profile_cells(unpolled)[0]["scoreboard"] is None


def test_a_profile_that_needs_a_wsgi_app_is_not_applicable_to_httpd_serving_files():
    from harness.runner import _refusal

    page = {"page": {"driver": "loadgen", "duration": 1, "path": "/page", "needs": ["wsgi"]}}
    m = parse_matrix({"servers": ["event", "apache-event", {"label": "remote", "url": "http://127.0.0.1:1/"}],
                      "profiles": page}, source="<test>", name="t")
    event, apache, remote = m.servers
    p, = m.profiles
    assert _refusal(event, p) is None and _refusal(remote, p) is None  # a URL server: the user's business
    assert _refusal(apache, p) == "not applicable to apache-event: httpd serves files here, it cannot run a WSGI app"
    with pytest.raises(MatrixError, match=r"profiles\.page\.needs: unknown feature 'wsgii'.*did you mean 'wsgi'"):
        parse_matrix({"servers": ["event"], "profiles": {"page": {**page["page"], "needs": ["wsgii"]}}},
                     source="<test>", name="t")
