"""Process lifecycle shared by the three MPMs, one test per behaviour, parametrized over prefork, worker, event.

Start-up, spare maintenance, MaxRequestWorkers, child death, the signals (TERM stop, HUP restart, USR1 graceful restart, WINCH
graceful stop) and configuration re-reading behave as in httpd whatever the MPM;
what differs is only how a pool is sized (servers vs threads), how a client
occupies a unit and which log code is written: the tables below. What really
tells one MPM from another stays in tests/test_worker.py and tests/test_event.py.
MaxConnectionsPerChild recycling is tested for the three in tests/test_limits.py, a port
already in use in tests/test_faults.py.

Every wait polls a condition with a deadline; MaintenanceInterval is 0.1 s (conftest.FAST).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from servers.mpm import MPM_NAMES
from suites.wire import Conn, request, wait_until
from .serverutil import (GET, alive, check_graceful_restart_under_load, check_killed_child_replaced,
                         check_winch_drains, children)
from .serverutil import status_or_none as _status

APP = "tests.wsgi_apps:app"
THREADED = ("worker", "event")


def _threads(start: int, tpc: int, min_spare: int, max_spare: int, **more) -> dict:
    """A worker/event pool: ``start`` children of ``tpc`` threads, spare-thread bounds."""
    return {"StartServers": start, "ThreadsPerChild": tpc, "MinSpareThreads": min_spare,
            "MaxSpareThreads": max_spare, **more}


def _servers(start: int, min_spare: int | None = None, max_spare: int | None = None, **more) -> dict:
    """A prefork pool: ``start`` children, spare-server bounds when given."""
    cfg = {"StartServers": start, **more}
    if min_spare is not None:
        cfg.update(MinSpareServers=min_spare, MaxSpareServers=max_spare)
    return cfg


#: two children serving two clients at least (a killed one, a restart, WINCH with two W)
TWO_CHILDREN = {"prefork": _servers(2, 1, 4), **{m: _threads(2, 2, 1, 4) for m in THREADED}}
#: WINCH: two units busy at once (prefork's two children, worker's two children, event's one child of two threads)
WINCH = {"prefork": _servers(2), "worker": _threads(2, 2, 1, 4),
         "event": _threads(1, 2, 1, 4, ServerLimit=1, MaxRequestWorkers=2, AsyncRequestWorkerFactor=10)}
#: HUP: two children before and after (prefork with its defaults otherwise)
RESTART = {"prefork": _servers(2), **{m: _threads(2, 2, 1, 4) for m in THREADED}}
#: TERM: three children, four processes with the parent
STOP = {"prefork": _servers(3), **{m: _threads(3, 2, 1, 6) for m in THREADED}}
#: one child is enough to ask for ``-k graceful``
ONE_CHILD = {"prefork": _servers(1), **{m: _threads(1, 2, 1, 4) for m in THREADED}}
#: USR1 while three clients hammer the server
UNDER_LOAD = {"prefork": _servers(3, 2, 5), "worker": _threads(2, 4, 2, 8, MaxRequestWorkers=16),
              "event": _threads(2, 4, 2, 12, MaxRequestWorkers=16)}
#: a step of clients that each occupy a unit: (pool, clients, (least, most) children busy, children once idle)
STEP = {"prefork": (_servers(1, 1, 2, MaxRequestWorkers=12), 8, (9, 12), 2),
        **{m: (_threads(1, 2, 2, 5, MaxRequestWorkers=12), 6, (4, 6), 2) for m in THREADED}}
#: two units in all, so two occupying clients reach MaxRequestWorkers
AT_LIMIT = {"prefork": _servers(1, 1, 2, MaxRequestWorkers=2, ServerLimit=2),
            **{m: _threads(1, 1, 1, 2, MaxRequestWorkers=2, ServerLimit=2) for m in THREADED}}
#: httpd's "server reached MaxRequestWorkers setting" code: prefork.c, worker.c, event.c
MAXCLIENTS_CODE = {"prefork": "AH00161", "worker": "AH00286", "event": "AH00484"}
#: the configuration files of a graceful restart: ServerLimit 4, then 40 (ignored); three children after
RELOAD = {
    "prefork": ("StartServers: 1\nMinSpareServers: 1\nMaxSpareServers: 2\nServerLimit: 4\nMaxRequestWorkers: 4\n",
                "StartServers: 3\nMinSpareServers: 3\nMaxSpareServers: 4\nServerLimit: 40\nMaxRequestWorkers: 40\n"),
    **{m: ("StartServers: 1\nThreadsPerChild: 1\nMinSpareThreads: 1\nMaxSpareThreads: 2\nServerLimit: 4\n"
           "MaxRequestWorkers: 4\n",
           "StartServers: 3\nThreadsPerChild: 1\nMinSpareThreads: 2\nMaxSpareThreads: 4\nServerLimit: 40\n"
           "MaxRequestWorkers: 40\n") for m in THREADED},
}

#: what an occupying client needs of the server: a keep-alive long enough, event a long body read
HOLD = {"KeepAliveTimeout": 30, "Timeout": 30}
#: maintenance ticks twice as often as conftest.FAST's, for the tests that count in ticks
TICK = 0.05

mpms = pytest.mark.parametrize("mpm", MPM_NAMES)


def occupy(mpm: str, h, clients: int) -> list[Conn]:
    """``clients`` connections that each hold one unit (a prefork child, a worker or event thread) until closed.

    prefork and worker: an idle keep-alive connection after one answer (the unit waits in K).
    event parks such a connection in its listener, so there the client sends a request head
    whose body never comes (Timeout 30 below): the worker thread running the application waits
    for it. An event child accepts beyond its idle threads (AsyncRequestWorkerFactor), so each
    client waits until the one before it holds a thread: the status request plus those before
    it are busy.
    """
    conns: list[Conn] = []
    try:
        for i in range(clients):
            if mpm != "event":
                conns.append(Conn(h.port))
                conns[-1].send(GET)
                assert conns[-1].read_response().status == 200
                continue
            if i:
                wait_until(lambda: _busy_units(h) >= i + 1, 10, what=f"{i} clients each in a thread")
            conns.append(Conn(h.port))
            conns[-1].send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
    except BaseException:
        for c in conns:
            c.close()
        raise
    return conns


def _busy_units(h) -> int:
    """Busy units by the status report (its own request among them), 0 while it is not answered.

    A short timeout, asked again: the status request itself may be accepted by a child whose
    last idle thread an occupying client takes, and wait there behind it.
    """
    try:
        return sum(p["busy"] for p in h.status(timeout=0.3).processes_detail)
    except Exception:
        return 0


@mpms
def test_spare_maintenance_grows_and_shrinks_the_pool_with_a_step_of_clients(launch, mpm):
    """httpd's idle maintenance: below the minimum of spares spawn (1, 2, 4... a tick), above the maximum
    retire one child a tick (MinSpareServers/MaxSpareServers, MinSpareThreads/MaxSpareThreads)."""
    pool, clients, (least, most), idle_children = STEP[mpm]
    h = launch(mpm, {**pool, **HOLD, "MaintenanceInterval": TICK}, app=APP)
    wait_until(lambda: len(children(h)) == 1, 5, what="one child")
    conns = occupy(mpm, h, clients)
    try:
        # the busy units plus at least the minimum of idle ones
        wait_until(lambda: len(children(h)) >= least, 10, what=f"pool to grow to {least} children")
        assert len(children(h)) <= most
    finally:
        for c in conns:
            c.close()
    # all idle now: retired one per tick until at most the maximum of spares remain
    if mpm == "prefork":
        wait_until(lambda: len(children(h)) <= idle_children, 15, what="pool to shrink to MaxSpareServers")
    else:
        wait_until(lambda: len(children(h)) == idle_children, 15, what=f"pool to shrink to {idle_children} children")
    assert request(h.port, GET).status == 200


@mpms
def test_max_request_workers_logged_once(launch, mpm):
    """httpd logs reaching MaxRequestWorkers once (its maxclients_reported flag), however many ticks stay there."""
    h = launch(mpm, {**AT_LIMIT[mpm], **HOLD, "MaintenanceInterval": TICK}, app=APP)
    conns = occupy(mpm, h, 2)
    try:
        wait_until(lambda: MAXCLIENTS_CODE[mpm] in h.log_text(), 5, what="the MaxRequestWorkers log line")
        # five more ticks at the limit: still exactly one line
        time_end = time.monotonic() + 5 * TICK
        wait_until(lambda: time.monotonic() > time_end, 1)
        assert h.log_text().count("server reached MaxRequestWorkers setting") == 1
    finally:
        for c in conns:
            c.close()


@mpms
def test_graceful_restart_under_load_loses_nothing(launch, mpm):
    """USR1 (httpd -k graceful): old children finish what they hold, new ones take over, no request fails."""
    h = launch(mpm, UNDER_LOAD[mpm], app=APP)
    wait_until(lambda: len(children(h)) == UNDER_LOAD[mpm]["StartServers"], 5, what="StartServers children")
    check_graceful_restart_under_load(h)


@mpms
def test_killed_child_is_replaced(launch, mpm):
    """A child killed by a signal is logged (AH00052-style) and replaced by maintenance."""
    h = launch(mpm, TWO_CHILDREN[mpm], app=APP)
    check_killed_child_replaced(h)


@mpms
def test_winch_drains_in_flight_request_and_exits(launch, mpm):
    """WINCH (httpd -k graceful-stop): in-flight requests complete, then every process exits."""
    h = launch(mpm, WINCH[mpm], app=APP)
    check_winch_drains(h)


@mpms
def test_hard_restart_resets_counters_and_bumps_generation(launch, mpm):
    """HUP (httpd -k restart): children killed at once, fresh ones started, counters reset, generation + 1."""
    h = launch(mpm, RESTART[mpm], app=APP)
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


@mpms
def test_stop_leaves_no_process_behind(launch, mpm):
    """TERM (httpd -k stop): exit status 0 and no process of the tree left."""
    h = launch(mpm, STOP[mpm], app=APP)
    tree = h.pids()
    assert len(tree) == 4
    assert h.stop() == 0
    wait_until(lambda: not any(alive(p) for p in tree), 5, what="every process to exit")


@mpms
def test_apachectl_style_k_graceful(launch, mpm):
    """``-k graceful --pidfile``: signals the running server as apachectl does; its generation goes up."""
    h = launch(mpm, ONE_CHILD[mpm], app=APP)
    gen = h.status().generation
    out = subprocess.run([sys.executable, "-m", "servers", mpm, "-k", "graceful", "--pidfile", h.pidfile],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wait_until(lambda: (_status(h) or h.status()).generation == gen + 1, 10, what="generation bump")


@mpms
def test_bad_config_key_refused_with_its_name(tmp_path, mpm):
    """A misspelt directive stops the start (httpd: "Invalid command"), naming the key and the file."""
    cfg = tmp_path / "mpm.yaml"
    cfg.write_text("KeepAliveTimout: 3\n")
    out = subprocess.run([sys.executable, "-m", "servers", mpm, "--config", str(cfg),
                          "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "KeepAliveTimout" in out.stderr and str(cfg) in out.stderr
    assert out.stdout == ""


@mpms
def test_graceful_restart_rereads_config_but_keeps_server_limit(launch, mpm, tmp_path):
    """httpd re-reads its configuration on restart and ignores ServerLimit changes (they size the scoreboard)."""
    before, after = RELOAD[mpm]
    cfg = tmp_path / "mpm.yaml"
    cfg.write_text(before)
    h = launch(mpm, {}, app=APP, config=cfg)
    gen = h.status().generation
    cfg.write_text(after)
    h.graceful()
    wait_until(lambda: len(children(h)) == 3, 10, what="three children from the new StartServers")
    st = wait_until(lambda: _status(h), 5, what="status")
    assert st.generation == gen + 1
    assert len(st.scoreboard) == 4  # the scoreboard keeps its ServerLimit
    assert "ServerLimit are ignored on restart" in h.log_text()
