"""The names the launcher knows, listed without probing any binary: ``launcher.names`` and
``harness.matrix.known_servers`` (a matrix's unknown-server error and its suggestion)."""

from __future__ import annotations

import importlib
import shutil

import pytest
import yaml

from harness.matrix import MatrixError, known_servers, load_matrix
from servers import launcher
from servers.launcher import EXTERNAL, LaunchError, names, start
from servers.mpm import MPM_NAMES


@pytest.fixture
def no_probing(monkeypatch):
    """Every way to probe the machine fails the test: available(), each server's unavailable(), which()."""
    def probe(*args, **kwargs):
        raise AssertionError("probed the machine to list names")

    monkeypatch.setattr(launcher, "available", probe)
    monkeypatch.setattr(shutil, "which", probe)
    for module in {m for m, _ in EXTERNAL.values()}:
        monkeypatch.setattr(importlib.import_module(f"servers.external.{module}"), "unavailable", probe)


def test_names_are_our_mpms_then_every_reference_server():
    assert names() == [*MPM_NAMES, *EXTERNAL]
    assert len(set(names())) == len(names())


def test_known_servers_is_sorted_stable_and_probes_nothing(no_probing):
    first = known_servers()
    assert first == sorted(names()) == known_servers()
    assert {"prefork", "worker", "event", "apache-event", "gunicorn-sync", "uwsgi-threads", "granian", "waitress",
            "modwsgi-daemon"} <= set(first)


def test_a_matrix_names_a_server_not_installed_here_without_probing(tmp_path, no_probing):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"servers": ["event", "uwsgi-threads"],
                                    "profiles": {"hello": {"driver": "loadgen", "duration": 2}}}))
    assert [s.server for s in load_matrix(path).servers] == ["event", "uwsgi-threads"]


def test_an_unknown_matrix_server_lists_the_known_names_sorted(tmp_path, no_probing):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"servers": ["granain"], "profiles": {"hello": {"driver": "loadgen"}}}))
    with pytest.raises(MatrixError, match=r"unknown server 'granain' \(did you mean 'granian'\?\)") as err:
        load_matrix(path)
    assert str(err.value).endswith("servers: " + ", ".join(sorted(names())))


def test_an_unknown_launcher_name_lists_the_names_without_probing(no_probing):
    with pytest.raises(LaunchError, match=r"unknown server 'nginx'; available: prefork, worker, event, apache-"):
        start("nginx")
    with pytest.raises(LaunchError, match="unknown server 'nginx'"):
        launcher.lacks("nginx")
