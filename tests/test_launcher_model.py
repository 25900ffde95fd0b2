"""``servers.launcher.model``: the MPM of ours whose directives each launcher name takes.

It lives beside the names (``launcher.names()``, ``EXTERNAL``) so that the advisor reads a peer's
model without the suites' module (which imports pytest); ``suites.launching`` re-exports it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from servers import launcher
from servers.launcher import EXTERNAL, model, names
from servers.mpm import MPM_NAMES


def test_ours_are_their_own_model_and_httpd_takes_its_same_named_mpm():
    assert [model(n) for n in MPM_NAMES] == list(MPM_NAMES)
    assert [model(f"apache-{m}") for m in MPM_NAMES] == list(MPM_NAMES)


def test_the_users_httpd_conf_and_unknown_names_have_no_model():
    assert model("apache-conf") is None
    assert model("http://127.0.0.1:8080") is None and model("no-such-server") is None


@pytest.mark.parametrize("name, expected", [
    ("gunicorn-sync", "prefork"), ("uwsgi-processes", "prefork"), ("modwsgi-prefork", "prefork"),
    ("gunicorn-gthread", "worker"), ("uwsgi-threads", "worker"), ("granian", "worker"), ("waitress", "worker"),
    ("modwsgi-worker", "worker"), ("modwsgi-event", "event"), ("modwsgi-daemon", "event"),
])
def test_a_python_servers_model_is_its_modules_closest_mpm(name, expected):
    assert model(name) == expected


def test_every_name_but_apache_conf_has_a_model_without_probing():
    assert {n for n in names() if model(n) is None} == {"apache-conf"}
    assert set(names()) == {*MPM_NAMES, *EXTERNAL}


def test_the_suites_use_the_launchers_function():
    from suites import launching

    assert launching.model is launcher.model


def test_the_advisor_reads_a_peers_model_without_the_suites_or_pytest():
    code = ("import sys, harness.advisor as a; a.peer_model('granian'); "
            "print(sorted(m for m in sys.modules if m == 'pytest' or m.split('.')[0] == 'suites'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
