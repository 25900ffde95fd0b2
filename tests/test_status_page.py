"""mod_status as part of the server (StatusLocation, StatusRequire, ExtendedStatus), in front of any app."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from servers.config import ConfigError, load_config
from servers.http.access import Require, RequireError
from servers.launcher import LaunchError, NotApplicable
from servers.mpm import MPM_NAMES
from suites.wire import wait_until

#: a user's app that knows nothing of /server-status: every path but / is its own 404
OWN_APP = "tests.test_status_page:app"


def app(environ, start_response):
    """Hello on /, the app's own 404 elsewhere."""
    if environ["PATH_INFO"] == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"no such app"]


def _get(h, path: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(h.url + path, method=method, data=b"x" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# -- the access rule (sans-IO) ----------------------------------------------------------------


def test_require_local_is_loopback_or_the_servers_own_address():
    local = Require.parse("local")
    assert local.allows("127.0.0.1", "127.0.0.1") and local.allows("127.3.4.5", "10.0.0.1")
    assert local.allows("::1", "::1") and local.allows("::ffff:127.0.0.1", "::")
    assert local.allows("192.0.2.7", "192.0.2.7")  # this machine, through its own address
    assert not local.allows("192.0.2.7", "192.0.2.8")
    assert not local.allows("not-an-ip", "127.0.0.1")


def test_require_ip_all_and_several_rules():
    rule = Require.parse("ip 10.0.0.0/8 192.0.2.5 2001:db8::/32; local")
    assert rule.allows("10.9.8.7", "x") and rule.allows("192.0.2.5", "x") and rule.allows("2001:db8::1", "x")
    assert rule.allows("::ffff:10.1.1.1", "x")  # an IPv4-mapped client is its IPv4 address
    assert rule.allows("127.0.0.1", "x") and not rule.allows("192.0.2.6", "x")
    assert Require.parse("all granted").allows("203.0.113.9", "x")
    assert not Require.parse("all denied").allows("127.0.0.1", "127.0.0.1")
    assert str(rule) == "ip 10.0.0.0/8 192.0.2.5 2001:db8::/32; local"
    for bad in ("", "ip", "ip 10.0.0.300", "all maybe", "host example.com", "local extra"):
        with pytest.raises(RequireError):
            Require.parse(bad)


def test_status_directives_are_checked_with_the_key_named():
    with pytest.raises(ConfigError, match="StatusLocation.*URL path starting with '/'"):
        load_config("event", overrides={"StatusLocation": "server-status"})
    with pytest.raises(ConfigError, match="StatusRequire.*not an IP address"):
        load_config("event", overrides={"StatusRequire": "ip nonsense"})
    cfg = load_config("event", overrides={"StatusLocation": "Off", "ExtendedStatus": "Off"})
    assert cfg.StatusLocation is None and cfg.ExtendedStatus is False
    assert load_config("prefork").StatusLocation == "/server-status"


# -- live, on each MPM ----------------------------------------------------------------------------


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_status_answers_in_front_of_an_app_without_the_route(launch, mpm):
    h = launch(mpm, app=OWN_APP)
    assert _get(h, "/nothing") == (404, b"no such app")  # the app is the user's own
    code, body = _get(h, "/server-status?auto")
    assert code == 200 and f"ServerMPM: {mpm}".encode() in body and b"Scoreboard: " in body
    assert b"Total Accesses: " in body  # ExtendedStatus On by default
    code, page = _get(h, "/server-status")
    assert code == 200 and page.startswith(b"<!DOCTYPE html>")
    assert h.status().scoreboard  # the launcher reads it too
    assert _get(h, "/server-status", method="POST")[0] == 405


@pytest.mark.parametrize("mpm", MPM_NAMES)
def test_status_is_refused_to_a_client_the_rule_does_not_grant(launch, mpm):
    # 192.0.2.0/24 is TEST-NET-1: never this machine, so the loopback client is not granted
    h = launch(mpm, {"StatusRequire": "ip 192.0.2.0/24"}, app=OWN_APP)
    code, body = _get(h, "/server-status?auto")
    assert code == 403 and b"permission" in body
    with pytest.raises(LaunchError, match="403"):
        h.status()
    wait_until(lambda: "AH01630: client denied by server configuration: /server-status" in h.log_text(), 5,
               what="httpd's AH01630 line in the error log")
    assert _get(h, "/")[0] == 200  # the rest of the site is not affected


def test_the_default_rule_refuses_a_client_from_another_machine():
    """A client on this machine is granted even through a non-loopback address (httpd's Require local:
    it connects from the address it connected to), so no client here can show the refusal live; the
    live refusal above goes through the access list, and the default rule is checked here."""
    rule = load_config("event").StatusRequire
    assert str(rule) == "local"
    assert rule.allows("10.1.2.3", "10.1.2.3")
    assert not rule.allows("203.0.113.9", "10.1.2.3") and not rule.allows("192.0.2.77", "127.0.0.1")


def test_status_location_moves_or_turns_the_page_off(launch):
    h = launch("worker", {"StatusLocation": "/st", "ExtendedStatus": "Off"}, app=OWN_APP)
    code, body = _get(h, "/st?auto")
    assert code == 200 and b"Scoreboard: " in body
    assert b"Total Accesses" not in body and b"ReqPerSec" not in body  # ExtendedStatus Off
    assert _get(h, "/server-status")[1] == b"no such app"  # the old path is the app's now
    assert h.status().scoreboard
    off = launch("event", {"StatusLocation": "Off"}, app=OWN_APP)
    assert _get(off, "/server-status?auto") == (404, b"no such app")
    with pytest.raises(NotApplicable, match="no status page"):
        off.status()
