"""The matrix parser: built-in matrices load, defaults fill in, and every bad key is named with its file."""

from __future__ import annotations

import pytest
import yaml

from harness.cli import _select
from harness.matrix import DRIVERS, MatrixError, builtin_matrices, load_matrix, parse_matrix

MINIMAL = {"servers": ["event"], "profiles": {"hello": {"driver": "loadgen", "duration": 2}}}


def write(tmp_path, doc, name="m.yaml"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("name", sorted(builtin_matrices()))
def test_builtin_matrices_load(name):
    m = load_matrix(name)
    assert m.name == name
    assert m.servers and (m.profiles or m.suites)
    assert m.reference in [s.label for s in m.servers]
    # every profile parameter is one its driver knows
    for p in m.profiles:
        assert set(p.params) <= set(DRIVERS[p.driver])


def test_builtins_cover_the_issue():
    assert set(builtin_matrices()) >= {"all", "quick", "ci"}
    labels = [s.label for s in load_matrix("all").servers]
    for name in ("prefork", "worker", "event", "apache-event", "gunicorn-sync", "gunicorn-gthread"):
        assert name in labels
    assert load_matrix("quick").trials == 1
    assert load_matrix("ci").suites == ()


def test_the_retired_benchmark_scripts_are_matrices():
    # side by side: our MPMs sized for 50 connections and gunicorn (-w 2; gthread --threads 8), closed
    # loop at 50 keep-alive connections, 5 s x 5 interleaved trials after a 1 s warm-up, gunicorn sync the base
    sbs = load_matrix("side-by-side")
    sets = {s.label: (s.server, s.set) for s in sbs.servers}
    assert sets["prefork50"] == ("prefork", {"StartServers": 50, "MinSpareServers": 50, "MaxSpareServers": 60,
                                             "MaxRequestWorkers": 50, "ServerLimit": 50})
    assert sets["worker2x25"][1]["ThreadsPerChild"] == 25 and sets["event2x8"][1]["ThreadsPerChild"] == 8
    assert sets["gunicorn-sync-w2"] == ("gunicorn-sync", {"StartServers": 2, "ServerLimit": 2})
    assert sets["gunicorn-gthread-w2t8"][1] == {"StartServers": 2, "ServerLimit": 2, "ThreadsPerChild": 8}
    (hello,) = sbs.profiles
    assert (hello.driver, hello.get("mode"), hello.get("connections"), hello.duration) == ("loadgen", "closed", 50, 5)
    assert (sbs.trials, sbs.warmup, sbs.reference, sbs.suites) == (5, 1, "gunicorn-sync-w2", ())
    # event idle: event 2 x 25 threads, factor 20, 1000 idle connections, 2000 new clients meanwhile
    idle = load_matrix("event-idle")
    (event,) = idle.servers
    assert event.set["AsyncRequestWorkerFactor"] == 20 and event.set["KeepAliveTimeout"] == 300
    (held,) = idle.profiles
    assert (held.driver, held.get("connections"), held.get("probes")) == ("idle", 1000, 2000)
    # driver vs wrk: wrk -t1 and the closed loop, same connections and duration, on one server start
    dvw = load_matrix("driver-vs-wrk")
    drivers = {p.driver: p for p in dvw.profiles}
    assert set(drivers) == {"wrk", "loadgen"} and drivers["wrk"].get("threads") == 1
    assert drivers["wrk"].get("connections") == drivers["loadgen"].get("connections") == 50
    assert drivers["wrk"].duration == drivers["loadgen"].duration
    assert dvw.trials == 5 and dvw.servers[0].label == "event2x8"


def test_idle_probes_must_not_be_negative():
    doc = {"servers": ["event"], "profiles": {"idle": {"driver": "idle", "duration": 1, "probes": -1}}}
    with pytest.raises(MatrixError, match="profiles.idle.probes must be >= 0"):
        parse_matrix(doc)
    doc["profiles"]["idle"]["probes"] = 10
    assert parse_matrix(doc).profiles[0].get("probes") == 10


def test_defaults_fill_in(tmp_path):
    m = load_matrix(write(tmp_path, MINIMAL))
    assert m.trials == 3 and m.warmup == 1.0 and m.suites == ()
    (p,) = m.profiles
    assert p.get("mode") == "closed" and p.get("connections") == 50 and p.get("path") == "/"
    assert m.trials_of(p) == 3
    assert m.servers[0].label == m.servers[0].server == "event"
    doc = m.to_dict()
    assert doc["profiles"]["hello"]["connections"] == 50
    assert doc["servers"][0]["server"] == "event"


def test_server_mapping_with_label_and_directives(tmp_path):
    doc = dict(MINIMAL, servers=[{"label": "p50", "server": "prefork", "set": {"MaxRequestWorkers": 50}}, "event"])
    m = load_matrix(write(tmp_path, doc))
    assert [s.label for s in m.servers] == ["p50", "event"]
    assert m.servers[0].set == {"MaxRequestWorkers": 50}


@pytest.mark.parametrize("doc, words", [
    (dict(MINIMAL, trails=3), ["'trails'", "did you mean 'trials'"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 2, "conections": 5}}),
     ["profiles.hello.", "'conections'", "did you mean 'connections'"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgn", "duration": 2}}), ["profiles.hello.driver", "loadgen"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen"}}), ["'duration' is required"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": "5s"}}), ["'duration' must be a number"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 0}}), ["duration must be > 0"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 1, "mode": "open"}}), ["rate"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 1, "mode": "half"}}), ["mode"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 1, "path": "x"}}), ["path"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 1, "connections": True}}),
     ["'connections' must be an integer"]),
    (dict(MINIMAL, profiles={"hello": {"driver": "loadgen", "duration": 1, "connections": 2, "processes": 3}}),
     ["processes must not exceed connections"]),
    (dict(MINIMAL, suites=["conformence"]), ["suites[0]", "did you mean 'conformance'"]),
    (dict(MINIMAL, servers=["event", "event"]), ["appears twice"]),
    (dict(MINIMAL, servers=[]), ["at least one server"]),
    (dict(MINIMAL, servers=[{"label": "x"}]), ["servers[0].", "'server' is required"]),
    (dict(MINIMAL, servers=[{"server": "event", "sett": {}}]), ["servers[0].", "'sett'", "did you mean 'set'"]),
    (dict(MINIMAL, reference="apache"), ["reference 'apache'"]),
    (dict(MINIMAL, peers={"event": ["nginx"]}), ["peers", "'nginx'"]),
    (dict(MINIMAL, quiet={"second": 1}), ["quiet.", "'second'"]),
    (dict(MINIMAL, timeouts={"start": -1}), ["timeouts.start must be > 0"]),
    (dict(MINIMAL, pinning="cpu0"), ["pinning"]),
    (dict(MINIMAL, trials=0), ["trials must be > 0"]),
    ({"servers": ["event"]}, ["nothing to run"]),
    (["event"], ["a YAML mapping"]),
])
def test_bad_matrix_names_the_key_and_the_file(tmp_path, doc, words):
    path = write(tmp_path, doc)
    with pytest.raises(MatrixError) as err:
        load_matrix(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, (w, msg)


def test_invalid_yaml_and_missing_file(tmp_path):
    path = write(tmp_path, "servers: [event\nprofiles: {", "broken.yaml")
    with pytest.raises(MatrixError, match="broken.yaml: not valid YAML"):
        load_matrix(path)
    with pytest.raises(MatrixError, match="no such matrix file.*all, ci, quick|no such matrix file"):
        load_matrix(tmp_path / "absent.yaml")


def test_parse_matrix_without_a_file_uses_the_given_source():
    with pytest.raises(MatrixError, match=r"^<cli>: unknown key 'bogus'"):
        parse_matrix(dict(MINIMAL, bogus=1), source="<cli>")


def test_profile_trials_override():
    m = parse_matrix(dict(MINIMAL, trials=5, profiles={
        "a": {"driver": "loadgen", "duration": 1},
        "b": {"driver": "locust", "duration": 1, "trials": 1}}))
    a, b = m.profiles
    assert m.trials_of(a) == 5 and m.trials_of(b) == 1


def test_command_line_selection_narrows_the_matrix():
    m = load_matrix("all")
    sel = _select(m, ["prefork", "uwsgi-processes"], trials=1, no_suites=True)
    assert [s.label for s in sel.servers] == ["prefork", "uwsgi-processes"]
    assert sel.peers == {"prefork": ("uwsgi-processes",)}
    assert sel.trials == 1 and sel.suites == ()
    assert sel.reference == ""  # event was not selected
    with pytest.raises(MatrixError, match="no server labelled 'nginx'"):
        _select(m, ["nginx"], None, False)


def test_unknown_server_name_is_an_error_with_a_suggestion(tmp_path):
    path = write(tmp_path, dict(MINIMAL, servers=["prefrok"]))
    with pytest.raises(MatrixError, match=r"servers\[0\]: unknown server 'prefrok' \(did you mean 'prefork'\?\)"):
        load_matrix(path)


def test_duration_override_applies_to_every_profile():
    sel = _select(load_matrix("soak"), [], None, False, duration=30)
    assert {p.duration for p in sel.profiles} == {30}
    assert sel.to_dict()["profiles"]["soak-open"]["duration"] == 30
    with pytest.raises(MatrixError, match="--duration must be > 0"):
        _select(load_matrix("soak"), [], None, False, duration=0)


def test_conformance_may_run_in_a_pytest_of_its_own_with_more_workers():
    from harness.runner import _suite_groups

    base = {"servers": ["event"], "suites": ["conformance", "keepalive"], "suite_workers": 4}
    assert _suite_groups(parse_matrix(base, source="<t>", name="t")) == [(["conformance", "keepalive"], 4, "{label}")]
    split = parse_matrix({**base, "conformance_workers": 8}, source="<t>", name="t")
    assert _suite_groups(split) == [(["conformance"], 8, "{label}-conformance"), (["keepalive"], 4, "{label}")]
    alone = parse_matrix({**base, "suites": ["conformance"], "conformance_workers": 8}, source="<t>", name="t")
    assert _suite_groups(alone) == [(["conformance"], 8, "{label}")]  # alone: one run, with its workers
    assert split.to_dict()["conformance_workers"] == 8
