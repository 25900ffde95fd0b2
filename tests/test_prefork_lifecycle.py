"""The prefork server's process management: maintenance, recycling, signals, restarts.

All waits poll a condition with a deadline; MaintenanceInterval is 0.1 s so a
"one per tick" behaviour shows within a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from suites.wire import Conn, request, wait_until
from .serverutil import (check_graceful_restart_under_load, check_killed_child_replaced,
                         check_recycling_by_connection, check_winch_drains)
from .serverutil import children
from .serverutil import status_or_none as _status

APP = "tests.wsgi_apps:app"
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def test_spare_servers_grow_and_shrink_with_a_step_of_connections(launch):
    """httpd's idle maintenance: below MinSpareServers spawn (1, 2, 4...), above MaxSpareServers retire one per tick."""
    h = launch("prefork", {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 2,
                           "MaxRequestWorkers": 12, "KeepAliveTimeout": 30}, app=APP)
    wait_until(lambda: len(children(h)) == 1, 5, what="one child")
    conns = []
    try:
        for _ in range(8):  # each keep-alive connection pins one child in K
            c = Conn(h.port)
            c.send(GET)
            assert c.read_response().status == 200
            conns.append(c)
        # 8 busy children plus at least MinSpareServers idle one
        wait_until(lambda: len(children(h)) >= 9, 10, what="pool to grow to 9 children")
        assert len(children(h)) <= 12
    finally:
        for c in conns:
            c.close()
    # all idle now: retired one per tick until at most MaxSpareServers idle remain
    wait_until(lambda: len(children(h)) <= 2, 15, what="pool to shrink to MaxSpareServers")
    assert request(h.port, GET).status == 200


def test_max_request_workers_logged_once(launch):
    h = launch("prefork", {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 2,
                           "MaxRequestWorkers": 2, "ServerLimit": 2, "KeepAliveTimeout": 30}, app=APP)
    conns = []
    try:
        for _ in range(2):
            c = Conn(h.port)
            c.send(GET)
            c.read_response()
            conns.append(c)
        wait_until(lambda: "AH00161" in h.log_text(), 5, what="the MaxRequestWorkers log line")
        # many more ticks at the limit: still exactly one line
        time_end = time.monotonic() + 0.5
        wait_until(lambda: time.monotonic() > time_end, 1)
        assert h.log_text().count("server reached MaxRequestWorkers setting") == 1
    finally:
        for c in conns:
            c.close()


def test_max_connections_per_child_recycles_by_connection(launch):
    h = launch("prefork", {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1,
                           "MaxConnectionsPerChild": 3}, app=APP)
    check_recycling_by_connection(h, 3)


def test_graceful_restart_under_load_loses_nothing(launch):
    h = launch("prefork", {"StartServers": 3, "MinSpareServers": 2, "MaxSpareServers": 5}, app=APP)
    check_graceful_restart_under_load(h)


def test_killed_child_is_replaced(launch):
    h = launch("prefork", {"StartServers": 2, "MinSpareServers": 1, "MaxSpareServers": 4}, app=APP)
    check_killed_child_replaced(h)


def test_winch_drains_in_flight_request_and_exits(launch):
    h = launch("prefork", {"StartServers": 2}, app=APP)
    check_winch_drains(h)


def test_hard_restart_resets_counters_and_bumps_generation(launch):
    h = launch("prefork", {"StartServers": 2}, app=APP)
    for _ in range(5):
        request(h.port, GET)
    # a request is counted after its response is sent, so poll
    st = wait_until(lambda: (lambda s: s if s.total_accesses >= 5 else None)(h.status()), 5, what="5 accesses")
    old = set(children(h))
    h.restart()
    wait_until(lambda: len(children(h)) == 2 and not (set(children(h)) & old), 10, what="fresh children")
    st2 = wait_until(lambda: _status(h), 5, what="status after restart")
    assert st2.generation == st.generation + 1
    assert st2.total_accesses <= 1  # only the status request itself


def test_stop_leaves_no_process_behind(launch):
    h = launch("prefork", {"StartServers": 3}, app=APP)
    tree = h.pids()
    assert len(tree) == 4
    assert h.stop() == 0
    wait_until(lambda: not any(_alive(p) for p in tree), 5, what="every process to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_apachectl_style_k_graceful(launch):
    h = launch("prefork", {"StartServers": 1}, app=APP)
    gen = h.status().generation
    out = subprocess.run([sys.executable, "-m", "servers", "prefork", "-k", "graceful", "--pidfile", h.pidfile],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wait_until(lambda: (_status(h) or h.status()).generation == gen + 1, 10, what="generation bump")


def test_bad_config_key_refused_with_its_name(tmp_path):
    cfg = tmp_path / "mpm.yaml"
    cfg.write_text("KeepAliveTimout: 3\n")
    out = subprocess.run([sys.executable, "-m", "servers", "prefork", "--config", str(cfg),
                          "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "KeepAliveTimout" in out.stderr and str(cfg) in out.stderr
    assert out.stdout == ""


def test_port_in_use_is_a_clear_error(launch):
    h = launch("prefork", {"StartServers": 1})
    out = subprocess.run([sys.executable, "-m", "servers", "prefork", "--listen", f"127.0.0.1:{h.port}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "could not bind to address" in out.stderr


def test_graceful_restart_rereads_config_but_keeps_server_limit(launch, tmp_path):
    """httpd re-reads its configuration on restart and ignores ServerLimit changes (they size the scoreboard)."""
    cfg = tmp_path / "mpm.yaml"
    cfg.write_text("StartServers: 1\nMinSpareServers: 1\nMaxSpareServers: 2\nServerLimit: 4\nMaxRequestWorkers: 4\n")
    h = launch("prefork", {}, app=APP, config=cfg)
    gen = h.status().generation
    cfg.write_text("StartServers: 3\nMinSpareServers: 3\nMaxSpareServers: 4\nServerLimit: 40\nMaxRequestWorkers: 40\n")
    h.graceful()
    wait_until(lambda: len(children(h)) == 3, 10, what="three children from the new StartServers")
    st = wait_until(lambda: _status(h), 5, what="status")
    assert st.generation == gen + 1
    assert len(st.scoreboard) == 4  # the scoreboard keeps its ServerLimit
    assert "ServerLimit are ignored on restart" in h.log_text()
