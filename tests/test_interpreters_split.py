"""``servers.interpreters`` beside the launcher: every launcher name's answer to "may it be given a
Python, and which one does it run on", with the reference server passed in as its module
(``launcher.reference``), and the launch errors shared through ``servers.launch_base``."""

from __future__ import annotations

import sys

import pytest

from servers import interpreters, launch_base, launcher
from servers.interpreters import OWN_PYTHON, python_of, python_package, python_refusal
from servers.launcher import EXTERNAL, names, reference
from servers.mpm import MPM_NAMES


def test_reference_is_the_external_module_of_a_reference_server_and_none_otherwise():
    for name, (kind, _) in EXTERNAL.items():
        assert reference(name).__name__ == f"servers.external.{kind}"
    assert [reference(name) for name in MPM_NAMES] == [None] * len(MPM_NAMES)
    assert reference("nginx") is None


def test_only_our_mpms_gunicorn_and_waitress_take_an_interpreter():
    takers = [n for n in names() if python_refusal(reference(n)) is None]
    assert takers == [*MPM_NAMES, "gunicorn-sync", "gunicorn-gthread", "waitress"]
    assert {python_package(reference(n)) for n in takers} == {None, "gunicorn", "waitress"}


@pytest.mark.parametrize("name", [n for n, (kind, _) in EXTERNAL.items() if kind in OWN_PYTHON])
def test_a_server_with_its_own_python_says_why(name):
    assert python_refusal(reference(name)) == OWN_PYTHON[EXTERNAL[name][0]]


def test_python_of_names_ours_the_chosen_one_and_nothing_for_an_unknown_name(monkeypatch):
    monkeypatch.delenv(interpreters.PYTHON_ENV, raising=False)
    assert python_of("event", None) == sys.executable
    assert python_of("waitress", reference("waitress"), "/opt/py/bin/python3") == "/opt/py/bin/python3"
    assert python_of("apache-event", reference("apache-event")) is None
    assert python_of("nginx", None) is None
    monkeypatch.setenv(interpreters.PYTHON_ENV, "/opt/other/python3")
    assert python_of("prefork", None) == "/opt/other/python3"


def test_the_launcher_re_exports_the_shared_launch_names():
    assert launcher.LaunchError is launch_base.LaunchError is interpreters.LaunchError
    assert launcher.NotApplicable is launch_base.NotApplicable
    assert issubclass(launcher.NotApplicable, launcher.LaunchError)
    assert launcher.child_env is launch_base.child_env
