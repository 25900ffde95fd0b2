"""The suites against any URL (issue 17): https, Host, prefix, and the attack opt-in.

Everything here talks to 127.0.0.1 only. The non-loopback target is TEST-NET-1's 192.0.2.1
(RFC 5737), used in collection-only runs that must connect nowhere; the live run puts one of
our MPMs behind a small TLS-terminating proxy written here, with a self-signed certificate
made at test time, and runs the smoke and conformance suites against its https:// URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from suites import wire
from suites.plugin import ATTACK_REFUSED, parse_target

from .tls_proxy import TLSProxy
from .tls_proxy import certificate as _certificate  # the name other tests import from here

ROOT = Path(__file__).resolve().parent.parent
REMOTE = "http://192.0.2.1:9"  # TEST-NET-1: routed nowhere, so a connection attempt would hang or fail

#: a pytest plugin for the child runs: records each collected item and its skip reason, and any
#: connection attempted while collecting (there must be none)
RECORDER = textwrap.dedent("""\
    import json, os, socket

    CONNECTS = []
    _connect = socket.socket.connect

    def _spy(self, address):
        CONNECTS.append(repr(address))
        return _connect(self, address)

    def pytest_configure(config):
        socket.socket.connect = _spy

    def pytest_collection_finish(session):
        items = {}
        for item in session.items:
            skip = item.get_closest_marker("skip")
            items[item.nodeid] = {"skip": skip.kwargs.get("reason") if skip else None,
                                  "marks": sorted({m.name for m in item.iter_markers()})}
        with open(os.environ["RECORD_TO"], "w") as f:
            json.dump({"items": items, "connects": CONNECTS}, f)
    """)


def _pytest(args: list[str], tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """pytest on the suites in a child process (one process, no xdist), from the checkout."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
                               "RECORD_TO": str(tmp_path / "record.json")})


def _collect(tmp_path: Path, *extra: str) -> dict:
    (tmp_path / "recorder.py").write_text(RECORDER)
    r = _pytest(["-p", "recorder", "--collect-only", "-q", "suites", "--target", REMOTE, *extra], tmp_path, 120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads((tmp_path / "record.json").read_text())


# -- options -------------------------------------------------------------------------------------------

def test_any_http_or_https_url_is_a_target():
    t = parse_target("https://staging.example.com/app/")
    assert (t.scheme, t.host, t.port, t.prefix, t.authority) == ("https", "staging.example.com", 443, "/app",
                                                                 "staging.example.com")
    assert not t.loopback and t.url == "https://staging.example.com/app"
    t = parse_target("http://[::1]:8080")
    assert t.loopback and t.authority == "[::1]:8080" and t.prefix == ""
    assert not parse_target(REMOTE).loopback


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://user:pw@example.com/", "http://example.com/?q=1",
                                 "example.com:80", "http://example.com:99999/"])
def test_other_urls_are_usage_errors(url):
    with pytest.raises(pytest.UsageError):
        parse_target(url)


def test_cafile_and_insecure_together_is_a_usage_error(tmp_path):
    r = _pytest(["--collect-only", "-q", "suites/test_smoke.py", "--target", REMOTE, "--cafile", "x.pem",
                 "--insecure"], tmp_path, 120)
    assert r.returncode != 0 and "--cafile and --insecure" in r.stderr


# -- the attack opt-in ---------------------------------------------------------------------------------

def _marked(items: dict, name: str) -> set[str]:
    return {i for i, v in items.items() if name in v["marks"]}


def _refused(items: dict) -> set[str]:
    return {i for i, v in items.items() if v["skip"] == ATTACK_REFUSED}


def test_non_loopback_target_is_accepted_and_its_attacks_skipped_without_the_flag(tmp_path):
    rec = _collect(tmp_path)
    items = rec["items"]
    assert rec["connects"] == [], "nothing may connect while collecting"
    attacks = _refused(items)
    assert attacks == _marked(items, "attack")
    assert {i for i in items if "test_slowclient.py" in i} <= attacks
    assert any("test_idle_keepalive_capacity" in i for i in attacks)
    assert any("test_busy_keepalive_clients" in i for i in attacks)
    assert _marked(items, "desync") <= attacks  # smuggling probes, row 42 and every smuggle case
    assert any("row42" in i for i in attacks)
    smoke = items["suites/test_smoke.py::test_get_root_answers_with_date[target]"]
    assert smoke["skip"] is None
    assert len(attacks) < len(items)


def test_attacks_are_selected_with_allow_attacks(tmp_path):
    rec = _collect(tmp_path, "--allow-attacks")
    assert rec["connects"] == []
    items = rec["items"]
    assert not _refused(items)
    assert any("test_slowclient.py" in i for i in items) and any("row42" in i for i in items)


def test_loopback_target_runs_attacks_without_the_flag(tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    r = _pytest(["-p", "recorder", "--collect-only", "-q", "suites/test_slowclient.py", "--target",
                 "http://127.0.0.1:9"], tmp_path, 120)
    assert r.returncode == 0, r.stdout[-2000:]
    items = json.loads((tmp_path / "record.json").read_text())["items"]
    assert items and not _refused(items)


# -- the wire's endpoint rewriting (no network) ----------------------------------------------------------

def test_endpoint_rewrites_placeholder_host_and_prefixes_targets():
    ep = wire.Endpoint("h.example", 443, "h.example", "/app")
    raw = (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
           b"POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
           b"GET http://other/ HTTP/1.1\r\nHost: other\r\n\r\n")
    assert ep.rewrite(raw) == (b"GET /app/ HTTP/1.1\r\nHost: h.example\r\n\r\n"
                               b"POST /app/echo?x=1 HTTP/1.1\r\nHost: h.example\r\nContent-Length: 2\r\n\r\nhi"
                               b"GET http://other/ HTTP/1.1\r\nHost: other\r\n\r\n")
    assert wire.Endpoint("h", 80, "h:8080").rewrite(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == \
        b"GET / HTTP/1.1\r\nHost: h:8080\r\n\r\n"


def test_rewriter_leaves_bodies_and_ambiguous_framing_as_sent():
    ep = wire.Endpoint("h", 80, "h", "/p")
    hidden = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
    cl = b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s" % (len(hidden), hidden)
    assert ep.rewrite(cl + b"GET /n HTTP/1.1\r\nHost: a\r\n\r\n") == (
        b"GET /p/ HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(hidden), hidden)
        + b"GET /p/n HTTP/1.1\r\nHost: h\r\n\r\n")
    chunked = b"POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert ep.rewrite(chunked + b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").endswith(
        b"0\r\n\r\nHEAD /p/ HTTP/1.1\r\nHost: h\r\n\r\n")
    both = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert ep.rewrite(both + hidden).endswith(b"0\r\n\r\n" + hidden)  # CL and TE: the rest as written
    rw = wire.Rewriter(ep)  # a head in pieces, then its body in a later send
    sent = [rw.feed(b"POST /e HTTP/1.1\r\nHo"), rw.feed(b"st: x\r\nContent-Length: 5\r\n\r"),
            rw.feed(b"\n"), rw.feed(b"Host:"), rw.feed(b" a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")]
    assert b"".join(sent) == (b"POST /p/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nHost: a\r\n\r\n"
                              b"GET /p/ HTTP/1.1\r\nHost: h\r\n\r\n")


# -- live: one of our MPMs behind a TLS-terminating proxy ------------------------------------------------

@pytest.fixture
def https_url(tmp_path, launch):
    """``https://127.0.0.1:PORT`` in front of our event MPM, and the certificate's path."""
    cert, key = _certificate(tmp_path)
    h = launch("event")
    proxy = TLSProxy(h.port, cert, key)
    yield f"https://127.0.0.1:{proxy.port}", cert
    proxy.stop()


#: a conformance subset over the proxy: plain GET and POST, Host rules, chunked bodies, half-closes
#: (close_notify), pipelining, the smuggling probes (bodies sent as written), and the slow clients over
#: TLS (a loopback target: no --allow-attacks needed)
SUBSET = "smoke or row01 or row02 or row33 or row37 or row40 or row42 or recovers"


def test_suites_against_https_pass_with_cafile_and_fail_closed_without(https_url, tmp_path):
    url, cert = https_url
    suites = ["suites/test_smoke.py", "suites/conformance", "--target", url, "-q", "-rs"]
    ok = _pytest([*suites, "suites/test_slowclient.py", "-k", SUBSET, "--cafile", str(cert)], tmp_path)
    assert ok.returncode == 0, ok.stdout[-3000:]
    assert " passed" in ok.stdout and " failed" not in ok.stdout and " skipped" not in ok.stdout
    small = ["-k", "smoke or row01"]
    insecure = _pytest([*suites, *small, "--insecure"], tmp_path)
    assert insecure.returncode == 0, insecure.stdout[-3000:]
    refused = _pytest([*suites, *small], tmp_path)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout
    assert " passed" not in refused.stdout.splitlines()[-1], refused.stdout[-1000:]


def test_loopback_http_target_runs_the_bounded_attacks_without_the_flag(launch, tmp_path):
    h = launch("event")
    r = _pytest(["suites/test_slowclient.py", "-k", "recovers", "--target", f"http://127.0.0.1:{h.port}", "-q"],
                tmp_path)
    assert r.returncode == 0 and "3 passed" in r.stdout, r.stdout[-2000:]
