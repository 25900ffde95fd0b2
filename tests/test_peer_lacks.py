"""``launcher.lacks`` for the app servers: the entries they share come from one place
(``servers.external.peer.app_server_lacks``), each server adding only what it alone misses.
Nothing is started: lacks() reads the server modules' tables."""

from __future__ import annotations

import pytest

from servers.external.peer import app_server_lacks
from servers.launcher import lacks

SHARED = {"scoreboard", "keepalive-header"}


@pytest.mark.parametrize("name, server", [("gunicorn-gthread", "gunicorn"), ("granian", "granian"),
                                          ("waitress", "waitress")])
def test_an_app_server_lacks_exactly_the_shared_features(name, server):
    assert lacks(name) == app_server_lacks(server)
    assert lacks(name)["scoreboard"] == f"{server} keeps no scoreboard (no /server-status)"


@pytest.mark.parametrize("name", ["uwsgi-processes", "uwsgi-threads"])
def test_uwsgi_names_its_stats_socket(name):
    assert set(lacks(name)) == SHARED
    assert lacks(name)["scoreboard"] == "uWSGI keeps no scoreboard (a stats socket, no /server-status)"
    assert lacks(name)["keepalive-header"] == "uWSGI sends no Keep-Alive: timeout=N, max=M response header"


def test_gunicorn_sync_adds_only_keepalive():
    extra = {k: v for k, v in lacks("gunicorn-sync").items() if k not in SHARED}
    assert set(lacks("gunicorn-sync")) >= SHARED
    assert list(extra) == ["keepalive"] and "closes every connection" in extra["keepalive"]


@pytest.mark.parametrize("name", ["prefork", "worker", "event", "modwsgi-event"])
def test_servers_with_a_scoreboard_lack_none_of_it(name):
    assert not SHARED & set(lacks(name))
