"""The target's Access reaches every driver (issue 17): the https certificate check and the attack opt-in.

Nothing here sends traffic: the drivers' run functions are replaced by recorders, or refuse before
connecting. Traffic over TLS is tested in tests/test_loadgen_tls.py and tests/test_suites_remote.py.
"""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest

from harness.drivers import locust as locust_driver
from harness.drivers import loadgen as loadgen_driver
from harness.drivers.access import LOOPBACK, Access
from harness.drivers.registry import ATTACK_USERS, DRIVERS
from harness.matrix import Profile

ROOT = Path(__file__).resolve().parents[1]


def profile(driver: str, **params) -> Profile:
    return Profile(name="p", driver=driver, duration=1.0, params=params)


def test_the_context_checks_what_the_entry_says(tmp_path):
    assert LOOPBACK.context_for("http://127.0.0.1:1/") is None
    checked = Access().context_for("HTTPS://example.test/")
    assert checked.verify_mode == ssl.CERT_REQUIRED and checked.check_hostname
    unchecked = Access(insecure=True).ssl_context()
    assert unchecked.verify_mode == ssl.CERT_NONE and not unchecked.check_hostname
    with pytest.raises((FileNotFoundError, ssl.SSLError)):
        Access(cafile=str(tmp_path / "missing.pem")).ssl_context()


def test_locust_gets_the_certificate_check_and_the_opt_in(monkeypatch):
    seen = {}
    monkeypatch.setattr(locust_driver, "run_locust", lambda url, **kw: seen.update(kw, url=url))
    DRIVERS["locust"].run(profile("locust"), "https://staging.test/", None, None, Access(cafile="/ca.pem"))
    assert (seen["url"], seen["ca_cert"], seen["insecure"], seen["allow_attacks"]) == \
        ("https://staging.test/", "/ca.pem", False, False)
    DRIVERS["locust"].run(profile("locust"), "https://staging.test/", None, None,
                          Access(insecure=True, allow_attacks=True))
    assert (seen["ca_cert"], seen["insecure"], seen["allow_attacks"]) == (None, True, True)


def test_the_builtin_driver_gets_a_context_only_for_https(monkeypatch):
    seen = {}
    monkeypatch.setattr(loadgen_driver, "run_closed_loop", lambda url, **kw: seen.update(kw, url=url))
    DRIVERS["loadgen"].run(profile("loadgen"), "http://127.0.0.1:1", None, None, Access(insecure=True))
    assert "ssl_context" not in seen
    DRIVERS["loadgen"].run(profile("loadgen", path="/x"), "https://staging.test", None, None, Access(insecure=True))
    assert seen["url"] == "https://staging.test/x" and seen["ssl_context"].verify_mode == ssl.CERT_NONE


def test_wrk_refuses_https_it_cannot_check():
    with pytest.raises(ValueError, match="wrk does not check certificates"):
        DRIVERS["wrk"].run(profile("wrk"), "https://staging.test", None, None, Access())


def test_which_profiles_need_the_opt_in():
    assert DRIVERS["idle"].needs_opt_in(profile("idle"))
    assert not DRIVERS["loadgen"].needs_opt_in(profile("loadgen"))
    assert not DRIVERS["locust"].needs_opt_in(profile("locust"))  # HelloUser
    assert DRIVERS["locust"].needs_opt_in(profile("locust", user_classes=["HelloUser", "ChurnUser"]))
    assert not DRIVERS["locust"].needs_opt_in(profile("locust", user_classes=["KeepAliveUser"], allow_attacks=True))


def test_attack_users_are_those_suites_load_marks():
    # read, not imported: importing suites/load.py imports locust, whose gevent monkey-patching would
    # replace this test process's select module (no epoll left for the built-in driver's tests)
    tree = ast.parse((ROOT / "suites" / "load.py").read_text())
    marked = {node.name for node in tree.body if isinstance(node, ast.ClassDef)
              for stmt in node.body if isinstance(stmt, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "OPT_IN" for t in stmt.targets)
              and isinstance(stmt.value, ast.Constant) and stmt.value.value}
    assert marked == ATTACK_USERS


