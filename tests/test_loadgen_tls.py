"""The built-in drivers (loadgen, idle) against https:// targets (issue 17).

One of our MPMs (worker) sits behind the TLS-terminating proxy of tests/tls_proxy.py with a
self-signed certificate made at test time; everything talks to 127.0.0.1. The Python proxy
is slow, so runs last about a second with a few connections. Counts are compared with the
server's own (mod_status "Total Accesses", read directly, not through the proxy); no timing
assertions beyond the drivers' documented bounds.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from harness.drivers.idle import run_idle
from harness.drivers.loadgen import parse_url, run_closed_loop, run_open_loop
from servers.launcher import start

from .test_drivers_external import ServerCount
from .tls_proxy import TLSProxy, certificate

WORKER = {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 8, "MaxRequestWorkers": 8,
          "MinSpareThreads": 1, "MaxSpareThreads": 16, "KeepAliveTimeout": 10}


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(server handle, https URL through the proxy, cert path) for the module."""
    cert, key = certificate(tmp_path_factory.mktemp("tls"))
    h = start("worker", WORKER)
    proxy = TLSProxy(h.port, cert, key)
    try:
        yield h, f"https://127.0.0.1:{proxy.port}/", cert
    finally:
        proxy.stop()
        h.stop()


def _trusting(cert) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _served(h, run):
    """(result of ``run()``, requests the server answered meanwhile)."""
    counter = ServerCount(h)
    before = counter.settled()
    r = run()
    return r, counter.settled() - before


def _assert_clean(r, served):
    assert r.errors == {} and r.status_counts == {200: r.requests}, (r.errors, r.status_counts, r.extra)
    assert r.requests > 0 and r.requests == r.requests_sent == served, (r.requests, r.requests_sent, served)
    assert r.starved_connections == 0 and r.ok
    assert "tls_error" not in r.extra


# -- URLs --------------------------------------------------------------------------------------------

def test_https_urls_parse_with_their_default_port_and_tls_name():
    t = parse_url("https://localhost/x?q=1")
    assert (t.addr, t.hosthdr, t.target, t.tls_host) == (("127.0.0.1", 443), "localhost", "/x?q=1", "localhost")
    t = parse_url("https://[::1]:8443/")
    assert t.family == socket.AF_INET6 and t.addr[:2] == ("::1", 8443) and t.hosthdr == "[::1]:8443"
    assert t.tls_host == "::1"
    assert parse_url("http://127.0.0.1:8080/").tls_host is None
    # the Host header is the URL's authority: its port only when the URL spells one (RFC 9110 7.2)
    assert parse_url("http://localhost/").hosthdr == "localhost"
    assert parse_url("http://localhost:80/").hosthdr == "localhost:80"
    with pytest.raises(ValueError, match="loopback"):
        parse_url("https://192.0.2.1/")
    with pytest.raises(ValueError, match="https"):
        parse_url("ftp://127.0.0.1/")


def test_a_server_side_context_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="server-side"):
        run_closed_loop("https://127.0.0.1:1/", connections=1, duration=0.1,
                        ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))


# -- loadgen over TLS -----------------------------------------------------------------------------------

def test_closed_loop_over_tls_matches_the_servers_count(tls):
    h, url, cert = tls
    r, served = _served(h, lambda: run_closed_loop(url, connections=4, duration=1, timeout=5,
                                                   ssl_context=_trusting(cert)))
    _assert_clean(r, served)
    assert sum(r.timeline) == r.requests


def test_closed_loop_over_tls_without_keep_alive_handshakes_per_request(tls):
    h, url, cert = tls
    r, served = _served(h, lambda: run_closed_loop(url, connections=2, duration=1, timeout=5, keep_alive=False,
                                                   ssl_context=_trusting(cert)))
    _assert_clean(r, served)
    # a new connection (and so a new handshake) for every request after each slot's first
    assert r.reconnects >= r.requests - 2


def test_closed_loop_over_tls_in_forked_processes(tls):
    h, url, cert = tls
    r, served = _served(h, lambda: run_closed_loop(url, connections=4, processes=2, duration=1, timeout=5,
                                                   ssl_context=_trusting(cert)))
    _assert_clean(r, served)
    assert r.processes == 2 and all(n > 0 for n in r.per_connection)


def test_open_loop_over_tls_sends_its_schedule(tls):
    h, url, cert = tls
    r, served = _served(h, lambda: run_open_loop(url, rate=60, connections=4, duration=1, timeout=5,
                                                 ssl_context=_trusting(cert)))
    _assert_clean(r, served)
    assert r.requests == 60 and r.mode == "open"


def test_an_insecure_context_loads_the_self_signed_server(tls):
    # what a matrix entry's ``insecure: true`` gives the driver: no certificate check at all
    h, url, _ = tls
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    r, served = _served(h, lambda: run_closed_loop(url, connections=2, duration=0.5, timeout=5, ssl_context=ctx))
    _assert_clean(r, served)


def test_default_context_refuses_the_self_signed_certificate_with_tls_errors(tls):
    h, url, _ = tls
    counter = ServerCount(h)
    before = counter.settled()
    t0 = time.monotonic()
    r = run_closed_loop(url, connections=2, duration=0.5, timeout=2)
    elapsed = time.monotonic() - t0
    assert r.requests == 0 and set(r.errors) == {"tls"} and r.errors["tls"] >= 2, r.errors
    assert "CERTIFICATE_VERIFY_FAILED" in r.extra["tls_error"]
    assert not r.ok and r.starved_connections == 2
    assert counter.settled() == before  # no request reached the server
    assert elapsed < 0.5 + 2 + 10  # its bound (duration + timeout), with room for a loaded machine


def test_plain_http_server_at_an_https_url_is_a_tls_error(tls):
    h, _, cert = tls
    r = run_closed_loop(f"https://127.0.0.1:{h.port}/", connections=1, duration=0.3, timeout=2,
                        ssl_context=_trusting(cert))
    assert r.requests == 0 and set(r.errors) == {"tls"}, r.errors


def test_a_handshake_that_never_ends_is_a_connect_timeout():
    # a listener that never accepts: TCP completes in its backlog, the ClientHello is never answered
    with socket.create_server(("127.0.0.1", 0), backlog=8) as mute:
        url = f"https://127.0.0.1:{mute.getsockname()[1]}/"
        r = run_closed_loop(url, connections=1, duration=1.0, timeout=0.3)
    # like a TCP connect, a handshake still going at the stop is closed without an error
    assert r.requests == 0 and set(r.errors) == {"connect_timeout"}, r.errors


def test_http_url_ignores_a_context(tls):
    h, _, cert = tls
    r, served = _served(h, lambda: run_closed_loop(h.url + "/", connections=2, duration=0.3, timeout=5,
                                                   ssl_context=_trusting(cert)))
    _assert_clean(r, served)


# -- idle over TLS ----------------------------------------------------------------------------------

def test_idle_over_tls_holds_its_connections_and_probes(tls):
    h, url, cert = tls
    held = []
    r = run_idle(url, connections=4, duration=0.3, timeout=5, on_hold=held.append, probes=2,
                 ssl_context=_trusting(cert))
    assert held == [4]
    assert r.requests == 4 and r.starved_connections == 0 and r.ok, (r.errors, r.extra)
    assert r.errors == {} and r.status_counts == {200: 4}
    assert r.extra["closed_by_server"] == 0
    assert r.extra["probes"]["answered"] == r.extra["probes"]["sent"] > 0


def test_idle_over_tls_counts_connections_the_server_closed(tmp_path):
    cert, key = certificate(tmp_path)
    with start("worker", {**WORKER, "KeepAliveTimeout": 0.2}) as h:
        proxy = TLSProxy(h.port, cert, key)
        try:
            r = run_idle(f"https://127.0.0.1:{proxy.port}/", connections=2, duration=1.0, timeout=5,
                         ssl_context=_trusting(cert))
        finally:
            proxy.stop()
    assert r.requests == 2 and r.extra["closed_by_server"] == 2, r.extra


def test_idle_with_the_default_context_refuses_the_certificate(tls):
    _, url, _ = tls
    r = run_idle(url, connections=2, duration=0.1, timeout=2)
    assert r.requests == 0 and r.errors == {"tls": 2} and r.starved_connections == 2
    assert "CERTIFICATE_VERIFY_FAILED" in r.extra["tls_error"]
