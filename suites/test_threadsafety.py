"""Thread safety: what a non-thread-safe application does on each MPM, and the server's own.

docs/mpm-model.md §11, with the apps in ``servers/apps/threadsafety.py``.

Demonstrations (the ``test_demo_*`` tests) show an *application's* unsafety.
They are meant to show failure on the threaded MPMs: on worker and event they
PASS when corruption is detected (mismatches > 0, lost updates > 0), and on
prefork they pass when there is none (one request per process at a time, so
zero by construction). They are never xfail: a threaded MPM that showed no
corruption would mean the demonstration no longer demonstrates anything.

The ``test_control_*`` tests run the same handlers made safe (threading.local,
a lock); they must show zero corruption on every MPM, which proves that what
the demonstrations count is the application's fault, not the server's.

The threaded MPMs run with ONE child (ServerLimit 1, ThreadsPerChild 8) so
that concurrent requests meet in one process; otherwise the race can hide in
separate processes. prefork runs 8 children. Every test records the
concurrency, the request count, the child PIDs that answered and the Python
build (GIL or free-threaded) with ``record_property``.

``test_server_no_crosstalk_*`` is the server's own thread safety: many
concurrent keep-alive clients, each request carrying a unique id in its
target, a header and the body, every response checked against its own
request.

With ``--target URL`` the demonstrations run when the target serves
``servers.apps.threadsafety:app`` (e.g. ``python -m servers worker --app
servers.apps.threadsafety:app``); the expectations then follow the target's
``wsgi.multithread``, and corruption on a threaded target is recorded, not
asserted (the suite cannot make it run one child). The crash test only runs on
servers the suite launches.

Reference servers run the apps with their model MPM's pool
(``suites.launching.model`` and ``configuration``): prefork's 8 processes
(gunicorn-sync, uwsgi-processes: no corruption, a crash isolated) or worker's
ONE process with 8 threads (gunicorn-gthread, uwsgi-threads, granian,
waitress, and mod_wsgi on worker, event or in daemon mode: corrupted, a crash
takes the 4 in-flight requests with it). What a server expects is derived from
that model (:func:`threaded`, :func:`says_multiprocess`), not tabled per name;
the one per-server exception is waitress, which has no parent process to
replace a crashed one (:data:`UNSUPERVISED`). A server without a scoreboard
shows the crash test its requests in flight in the kernel (every request read
off its socket, /proc/net/tcp). httpd serving files cannot run a WSGI app: the
suite is not applicable to apache-* (and the cross-talk check needs our /echo
mirror). The cross-talk check is two tests: requests one after the other, and
pipelined in pairs, so that a server that loses pipelined requests (uWSGI)
is not counted as mixing up its clients (docs/suites.md).
"""

from __future__ import annotations

import collections
import json
import ssl
import sys
import sysconfig
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

from servers.apps.threadsafety import (
    AH00013,
    LEGACY_MESSAGE,
    LegacyModuleError,
    is_async,
    is_forked,
    is_threaded,
    legacy_pre_config,
    mpm_query,
)
from servers.config import MPMS
from servers.launcher import lacks
from suites.launching import FIXED_POOL, configuration, family, httpd_twin, launch, model
from suites.plugin import parse_target
from suites.probes import status_or_none
from suites.wire import Conn, wait_until

#: the family marker (suites/plugin.py): ``-m threadsafety``
pytestmark = pytest.mark.threadsafety

APP = "servers.apps.threadsafety:app"
CONCURRENCY = 8
PER_CLIENT = 25
REQUESTS = CONCURRENCY * PER_CLIENT

#: prefork: 8 single-threaded children; worker/event: ONE child with 8 threads
CONFIGS = {
    "prefork": {"StartServers": 8, "MinSpareServers": 1, "MaxSpareServers": 8, "MaxRequestWorkers": 8,
                "ServerLimit": 8},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 8, "MaxRequestWorkers": 8,
               "MinSpareThreads": 1, "MaxSpareThreads": 16},
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": 8, "MaxRequestWorkers": 8,
              "MinSpareThreads": 1, "MaxSpareThreads": 16},
}
# every other server runs its model MPM's pool (suites.launching.configuration): a fixed pool of 8
# processes (gunicorn-sync, uwsgi-processes) or of ONE process with 8 threads (gunicorn-gthread,
# uwsgi-threads, granian, waitress; mod_wsgi's daemon: one daemon process with 8 threads)

#: the thread-safety apps are a WSGI app: not applicable to a server that cannot run one (httpd here)
NEEDS_WSGI = pytest.mark.needs("wsgi")
#: servers with no parent process to replace one that died: the crash ends the whole server
#: (waitress runs its threads in the one process it was started as; a process manager restarts it)
UNSUPERVISED = {"waitress": "waitress is one process with no parent: a crash ends the server"}
#: servers whose app runs in processes behind a front that keeps the client's connection: a crash
#: there is answered by the front instead of closing the connection (measured)
BEHIND_A_FRONT = {"modwsgi-daemon": "httpd's front answers 502 Bad Gateway for a daemon process that died "
                                    "mid-request (WSGI0147: Error reading response headers from daemon process)"}


def threaded(name: str) -> bool | None:
    """Does server ``name`` run two requests of one process at once in the suite's configuration?

    Derived, not tabled: the server runs its model MPM's pool (``suites.launching.model``: ours
    and httpd's their own, each Python server its CLOSEST_MPM), so it is threaded exactly when
    that MPM is (httpd's ap_mpm_query AP_MPMQ_IS_THREADED). None when no model applies.
    """
    m = model(name)
    return None if m is None else is_threaded(m)


def says_multiprocess(name: str, config: dict) -> bool:
    """The ``wsgi.multiprocess`` server ``name`` reports when launched with ``config`` (PEP 3333).

    Ours say True: the MPMs fork. A fixed pool (:data:`suites.launching.FIXED_POOL`) says
    whether it runs more than one process (measured on gunicorn, uWSGI, granian and waitress:
    one process of 8 threads says False). mod_wsgi embedded says whether httpd may run more
    than one child (measured: MaxRequestWorkers / ThreadsPerChild > 1, httpd's maximum of
    daemons, so the one-child worker and event say False); its daemon mode says True whenever
    ``processes=`` is given, even ``processes=1`` (mod_wsgi's documented rule; the launcher
    always gives it). All measured in this suite's configuration (docs/suites.md).
    """
    if family(name) in FIXED_POOL:
        return config.get("StartServers", 1) > 1
    if httpd_twin(name) != name and name != "modwsgi-daemon":
        per_child = config.get("ThreadsPerChild", 1) if threaded(name) else 1
        return config.get("MaxRequestWorkers", 2) // per_child > 1
    return True


def python_build() -> str:
    """"GIL" or "free-threaded (GIL off|on)" for the interpreter the servers run on (this one)."""
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return f"CPython {sys.version.split()[0]} with the GIL"
    enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
    return f"CPython {sys.version.split()[0]} free-threaded (GIL {'on' if enabled else 'off'})"


@dataclass
class TSServer:
    """A server running the thread-safety apps: launched here (``handle``) or a --target."""

    host: str
    port: int
    mpm: str | None  # None for a --target: only its wsgi.multithread is known
    multithread: bool
    handle: object | None = None

    @property
    def launched(self) -> bool:
        return self.handle is not None


def _get_json(host: str, port: int, path: str, timeout: float = 10.0) -> dict:
    with Conn(port, host=host, timeout=timeout) as c:
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, (path, r.status, r.body[:200])
    return json.loads(r.body)


def _launch(name: str, extra: dict | None = None):
    config = configuration(name, CONFIGS)
    if config is None:
        pytest.skip(f"not applicable to {name}: no model MPM, so no pool the demonstrations can predict "
                    "(suites.launching.model)")
    h = launch(name, {**config, **(extra or {})}, app=APP)
    h.ts_config = config  # type: ignore[attr-defined]
    return h


def _ts_server_for(spec) -> TSServer:
    if spec.launchable:
        h = _launch(spec.name)
        doc = _get_json(h.host, h.port, "/ts/mpm")
        return TSServer(h.host, h.port, spec.name, doc["multithread"], h)
    parts = parse_target(spec.url)  # https and a prefix: suites.wire routes them (suites/conftest.py)
    host, port = parts.host, parts.port
    try:
        doc = _get_json(host, port, "/ts/mpm", timeout=5)
    except ssl.SSLError:
        raise  # a certificate error fails the run, it is not "another app"
    except (AssertionError, OSError, ValueError):
        doc = {}
    if doc.get("app") != "threadsafety":
        pytest.skip(f"{spec.url} does not serve {APP}; start one with "
                    f"`python -m servers worker --app {APP}` or run with --server NAME")
    return TSServer(host, port, None, doc["multithread"])


@pytest.fixture(scope="module")
def ts_server(server_spec):
    """One thread-safety server per MPM for this module (tests use their own keys, so they share it)."""
    s = _ts_server_for(server_spec)
    yield s
    if s.handle is not None:
        s.handle.stop()


def _record_common(record_property, s: TSServer, pids: collections.Counter) -> None:
    record_property("mpm", s.mpm or "target")
    record_property("wsgi_multithread", s.multithread)
    record_property("concurrency", CONCURRENCY)
    record_property("requests", sum(pids.values()))
    record_property("child_pids", json.dumps({str(p): n for p, n in sorted(pids.items())}))
    record_property("python", python_build())


def _run_clients(s: TSServer, path_for) -> list[dict]:
    """CONCURRENCY keep-alive clients, PER_CLIENT requests each, started together; every answer's JSON."""
    barrier = threading.Barrier(CONCURRENCY)
    results: list[list[dict]] = [[] for _ in range(CONCURRENCY)]
    errors: list[str] = []

    def client(i: int) -> None:
        c = None
        try:
            barrier.wait(10)
            served = 0  # answers on the current connection
            for j in range(PER_CLIENT):
                if c is None:
                    c, served = Conn(s.port, host=s.host, timeout=10), 0
                req = b"GET " + path_for(i, j).encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n"
                c.send(req)
                try:
                    r = c.read_response()
                except ConnectionError:
                    # RFC 9112 §9.3.1: a kept-alive connection the server closed before any byte of
                    # the answer (event closes parked connections when every worker is busy, as
                    # httpd does) -- retry the idempotent GET once on a fresh connection
                    if served == 0 or c.buf:
                        raise
                    c.close()
                    c, served = Conn(s.port, host=s.host, timeout=10), 0
                    c.send(req)
                    r = c.read_response()
                served += 1
                if r.status != 200:
                    errors.append(f"client {i} request {j}: status {r.status}")
                else:
                    results[i].append(json.loads(r.body))
                if (r.header("Connection") or "").lower() == "close":
                    c.close()
                    c = None
        except Exception as exc:  # any failure is reported, never hidden
            errors.append(f"client {i}: {exc!r}")
        finally:
            if c is not None:
                c.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client did not finish within 60 s"
    assert not errors, errors[:5]
    docs = [d for r in results for d in r]
    assert len(docs) == REQUESTS
    return docs


def _expect_corruption(s: TSServer) -> bool | None:
    """True/False: the model's prediction; None: a threaded --target, where it cannot be forced.

    A launched server is judged by what it runs (:func:`threaded`); a --target by what it says
    in wsgi.multithread (test 1 checks that the two agree on every launched server).
    """
    if s.launched:
        return threaded(s.mpm)
    if not s.multithread:
        return False
    return None


# -- (1) MPM query and the legacy module ---------------------------------------------------------

@NEEDS_WSGI
def test_mpm_query_matches_httpd_and_the_wsgi_environ(ts_server, record_property):
    """is_threaded/is_forked/is_async give httpd's ap_mpm_query answers, and the server's
    wsgi.multithread agrees with is_threaded for the MPM it runs."""
    expected = {  # httpd 2.4: AP_MPMQ_IS_THREADED / AP_MPMQ_IS_FORKED / AP_MPMQ_IS_ASYNC
        "prefork": ("AP_MPMQ_NOT_SUPPORTED", "AP_MPMQ_DYNAMIC", 0),
        "worker": ("AP_MPMQ_STATIC", "AP_MPMQ_DYNAMIC", 0),
        "event": ("AP_MPMQ_STATIC", "AP_MPMQ_DYNAMIC", 1),
    }
    for mpm in MPMS:
        q = mpm_query(mpm)
        assert (q["AP_MPMQ_IS_THREADED"], q["AP_MPMQ_IS_FORKED"], q["AP_MPMQ_IS_ASYNC"]) == expected[mpm]
        assert (is_threaded(mpm), is_forked(mpm), is_async(mpm)) == (mpm != "prefork", True, mpm == "event")
    s = ts_server
    docs = [_get_json(s.host, s.port, "/ts/mpm") for _ in range(3)]
    assert len({d["multithread"] for d in docs}) == 1
    record_property("wsgi_multithread", s.multithread)
    record_property("wsgi_multiprocess", docs[0]["multiprocess"])
    if s.mpm in MPMS:
        record_property("mpm_query", json.dumps(mpm_query(s.mpm)))
        assert s.multithread == is_threaded(s.mpm)
        assert all(d["multiprocess"] for d in docs)
    elif s.mpm is not None:  # a reference server: wsgi.multithread tells the pool it runs
        record_property("threaded", threaded(s.mpm))
        assert s.multithread == threaded(s.mpm)
        assert all(d["multiprocess"] == says_multiprocess(s.mpm, s.handle.ts_config) for d in docs)
    else:
        assert all(d["multiprocess"] for d in docs)


@NEEDS_WSGI
def test_legacy_module_refuses_threaded_mpm_with_AH00013(ts_server, record_property):
    """A non-thread-safe "legacy module" (mod_php without ZTS) refuses to run on a threaded MPM.

    Deterministic: its pre-config check raises for worker and event only, and the live
    handler answers 500 with mod_php's message and AH00013 on every request of a threaded
    server (and logs it), 200 on prefork.
    """
    s = ts_server
    for mpm in MPMS:
        if is_threaded(mpm):
            with pytest.raises(LegacyModuleError, match="AH00013: Pre-configuration failed"):
                legacy_pre_config(mpm)
        else:
            legacy_pre_config(mpm)
    answers = []
    for _ in range(5):
        with Conn(s.port, host=s.host) as c:
            c.send(b"GET /ts/legacy HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            answers.append(c.read_response())
    record_property("legacy_statuses", json.dumps([r.status for r in answers]))
    if s.multithread:
        for r in answers:
            assert r.status == 500
            assert LEGACY_MESSAGE.encode() in r.body and AH00013.encode() in r.body
        if s.launched:
            wait_until(lambda: AH00013 in s.handle.log_text(), 5, what="AH00013 in the error log")
    else:
        assert [r.status for r in answers] == [200] * 5


# -- (2) per-request global "current request" -----------------------------------------------------

def _current_run(s: TSServer, route: str, record_property) -> tuple[int, dict]:
    tag = uuid.uuid4().hex[:8]
    docs = _run_clients(s, lambda i, j: f"{route}?id={tag}-{i}-{j}&ms=5")
    pids = collections.Counter(d["pid"] for d in docs)
    per_pid = collections.Counter(d["pid"] for d in docs if d["seen"] != d["id"])
    mismatches = sum(per_pid.values())
    _record_common(record_property, s, pids)
    record_property("mismatches", mismatches)
    record_property("mismatch_rate", round(mismatches / len(docs), 3))
    record_property("mismatches_per_pid", json.dumps({str(p): per_pid.get(p, 0) for p in sorted(pids)}))
    return mismatches, pids


@NEEDS_WSGI
def test_demo_unsafe_current_request_global__corrupted_on_threaded_mpms(ts_server, record_property):
    """DEMONSTRATION, meant to show failure on worker/event: PASSES when mismatches are found there.

    Each request stores its id in a module global, yields 5 ms and answers with the global.
    prefork: 0 mismatches by construction. worker/event (one child, 8 threads, 8 concurrent
    keep-alive clients): requests overwrite each other's "current request", mismatches > 0.
    """
    s = ts_server
    mismatches, pids = _current_run(s, "/ts/current", record_property)
    expect = _expect_corruption(s)
    if expect is False:
        assert mismatches == 0, f"a non-threaded server mixed up requests: {mismatches}/{REQUESTS}"
    elif expect is True:
        assert len(pids) == 1, f"the threaded MPM must run one child here, answers came from {dict(pids)}"
        assert mismatches > 0, ("no request saw another's id: the demonstration failed to demonstrate "
                                "(were the requests really concurrent in one process?)")


@NEEDS_WSGI
def test_control_threading_local_current_request__never_corrupted(ts_server, record_property):
    """CONTROL: the same handler with threading.local shows 0 mismatches on every MPM."""
    mismatches, _ = _current_run(ts_server, "/ts/current-safe", record_property)
    assert mismatches == 0


# -- (3) unsynchronised read-modify-write counter --------------------------------------------------

def _count_run(s: TSServer, route: str, record_property) -> tuple[int, collections.Counter]:
    key = uuid.uuid4().hex
    docs = _run_clients(s, lambda i, j: f"{route}?key={key}&ms=2")
    pids = collections.Counter(d["pid"] for d in docs)
    # each process has its own counter; its highest answer is its final value
    final = {}
    for d in docs:
        final[d["pid"]] = max(final.get(d["pid"], 0), d["value"])
    counted = sum(final.values())
    lost = len(docs) - counted
    _record_common(record_property, s, pids)
    record_property("counted", counted)
    record_property("lost_updates", lost)
    record_property("final_per_pid", json.dumps({str(p): v for p, v in sorted(final.items())}))
    assert lost >= 0, f"more increments than requests: {final}"
    return lost, pids


@NEEDS_WSGI
def test_demo_unsafe_counter__lost_updates_on_threaded_mpms(ts_server, record_property):
    """DEMONSTRATION, meant to show failure on worker/event: PASSES when updates are lost there.

    ``/ts/count`` reads a counter, yields 2 ms, writes it + 1. prefork: the per-process
    counters summed over the children equal the number of requests. worker/event (one
    child): concurrent requests read the same value and overwrite each other, lost > 0.
    """
    s = ts_server
    lost, pids = _count_run(s, "/ts/count", record_property)
    expect = _expect_corruption(s)
    if expect is False:
        assert lost == 0
    elif expect is True:
        assert len(pids) == 1, f"the threaded MPM must run one child here, answers came from {dict(pids)}"
        assert lost > 0, "no update was lost: the demonstration failed to demonstrate"


@NEEDS_WSGI
def test_control_locked_counter__never_loses_updates(ts_server, record_property):
    """CONTROL: the same counter under a lock loses nothing on every MPM."""
    lost, _ = _count_run(ts_server, "/ts/count-safe", record_property)
    assert lost == 0


# -- (5) crash isolation ----------------------------------------------------------------------------

IN_FLIGHT = 4
HOLD_MS = 2000


@NEEDS_WSGI
def test_crash_isolation__collateral_failures(server_spec, record_property):
    """A request kills its process (os._exit, as a segfaulting extension would).

    prefork (and every server of its model: gunicorn-sync, uwsgi-processes): only the crashing
    connection fails; the IN_FLIGHT requests running in other children complete (0
    collateral). worker/event (and the one-process threaded pools: gunicorn-gthread,
    uwsgi-threads, granian, waitress): every in-flight request of that process fails with it
    (collateral = IN_FLIGHT). The server then serves again once its parent replaced the
    process; waitress has no parent (:data:`UNSUPERVISED`): it is gone, as asserted. Without a
    scoreboard "in flight" is seen in the kernel instead: every held request has been read off
    its socket.
    """
    if not server_spec.launchable:
        pytest.skip("destructive (kills a server process): runs only on servers the suite launches")
    h = _launch(server_spec.name)
    scoreboard = "scoreboard" not in lacks(server_spec.name)
    try:
        results: list[object] = [None] * IN_FLIGHT
        client_ports: list[int] = []

        def hold(i: int) -> None:
            try:
                with Conn(h.port, host=h.host, timeout=10) as c:
                    c.send(b"GET /ts/hold?ms=%d HTTP/1.1\r\nHost: a\r\n\r\n" % HOLD_MS)
                    client_ports.append(c.sock.getsockname()[1])  # after the send: the bytes are queued
                    results[i] = c.read_response().status
            except Exception as exc:
                results[i] = repr(exc)

        threads = [threading.Thread(target=hold, args=(i,), daemon=True) for i in range(IN_FLIGHT)]
        for t in threads:
            t.start()

        def in_flight():
            if not scoreboard:
                return len(client_ports) == IN_FLIGHT and requests_read(h.port, client_ports) or None
            st = status_or_none(h)
            return st if st is not None and st.scoreboard.count("W") >= IN_FLIGHT + 1 else None  # + the status request

        st = wait_until(in_flight, 5, what=f"{IN_FLIGHT} requests in flight")
        pids_before = [p["pid"] for p in st.processes_detail] if scoreboard else h.pids()[1:]
        crashed: object
        t0 = time.monotonic()
        try:
            with Conn(h.port, host=h.host, timeout=5) as c:
                c.send(b"GET /ts/crash HTTP/1.1\r\nHost: a\r\n\r\n")
                crashed = c.read_response().status
        except (ConnectionError, OSError) as exc:
            crashed = repr(exc)
        doc = _after_crash(h, server_spec.name, t0, record_property)
        for t in threads:
            t.join(15)
        collateral = sum(1 for r in results if r != 200)
        record_property("mpm", server_spec.name)
        record_property("in_flight", IN_FLIGHT)
        record_property("collateral_failures", collateral)
        record_property("crash_request", str(crashed))
        record_property("child_pids_before", json.dumps(pids_before))
        record_property("python", python_build())
        if server_spec.name in BEHIND_A_FRONT:  # the front outlives the app's process and says so
            assert crashed == 502, f"{server_spec.name}: {BEHIND_A_FRONT[server_spec.name]}, got {crashed}"
        else:
            assert not isinstance(crashed, int), f"the crashing request got an answer: {crashed}"
        if threaded(server_spec.name):
            assert collateral == IN_FLIGHT, f"every in-flight request of the child must fail: {results}"
        else:
            assert collateral == 0, f"{server_spec.name} isolates requests in processes: {results}"
        assert doc is None or doc["pid"] in h.pids()
    finally:
        h.stop()


def _after_crash(h, name: str, t0: float, record_property) -> dict | None:
    """Wait for the server to serve again (prefork: at once, from the other children; otherwise
    once the parent replaced the child) and return its /ts/mpm; for an :data:`UNSUPERVISED`
    server, wait for it to be gone instead (nothing restarts it) and return None."""
    if name in UNSUPERVISED:
        wait_until(lambda: not h.alive(), 15, what=f"{name} to exit ({UNSUPERVISED[name]})")
        record_property("served_again_after_s", "never: " + UNSUPERVISED[name])
        return None
    doc = wait_until(lambda: _try_json(h, "/ts/mpm"), 15, what="the server to serve again")
    record_property("served_again_after_s", round(time.monotonic() - t0, 2))
    return doc


def requests_read(server_port: int, client_ports: list[int]) -> bool:
    """True when the server has accepted the connection from each of ``client_ports`` and read
    everything sent on it (its end of the connection has an empty receive queue), from
    /proc/net/tcp and tcp6: how "in flight" is seen on a server without a scoreboard."""
    want = set(client_ports)
    read: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.rsplit(":", 1)[1], 16) != server_port:
                continue
            peer = int(remote.rsplit(":", 1)[1], 16)
            if peer in want and int(queues.split(":")[1], 16) == 0:
                read.add(peer)
    return read == want


def _try_json(h, path: str) -> dict | None:
    try:
        return _get_json(h.host, h.port, path, timeout=2)
    except (AssertionError, OSError, ValueError):
        return None


# -- the server's own thread safety ------------------------------------------------------------------

XT_CLIENTS = 16
XT_ROUNDS = 10  # each round sends two requests on the keep-alive connection
# each round's two requests go one after the other's answer, or in one write (RFC 9112 §9.3.2): two
# tests, so that a server that mishandles pipelining (uWSGI answers the first of a pipelined pair and
# closes without answering the second) is not reported as mixing up its clients' requests


@pytest.mark.needs("keepalive")
@pytest.mark.needs("echo")
def test_server_no_crosstalk_between_concurrent_keepalive_clients(server, record_property):
    """Many concurrent keep-alive clients, each request with a unique id in its target, a header
    and its body (POST /echo), each sent after the previous answer: every response matches its
    own request, in order; none lost, none duplicated."""
    _crosstalk(server, record_property, "sequential")


@pytest.mark.must  # RFC 9112 §9.3.2: responses in request order
@pytest.mark.needs("keepalive")
@pytest.mark.needs("echo")
def test_server_no_crosstalk_with_pipelined_keepalive_requests(server, record_property):
    """The same clients sending each pair of requests in one write (pipelined, RFC 9112 §9.3.2):
    every response matches its own request, in order; none lost, none duplicated."""
    _crosstalk(server, record_property, "pipelined")


def _crosstalk(server, record_property, mode: str) -> None:
    """XT_CLIENTS keep-alive clients started together, XT_ROUNDS pairs of POST /echo each, sent as
    ``mode`` says; asserts that every answer mirrors its own request and nothing else arrives."""
    with Conn(server.port, host=server.host) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        r = c.read_response()
    if r.status != 200 or not r.body.startswith(b"{"):
        pytest.skip(f"{server.name} has no /echo mirror (servers.apps:app)")

    def req(rid: str, size: int) -> tuple[bytes, bytes]:
        body = (rid + ":" + "x" * size).encode()
        raw = (f"POST /echo?rid={rid} HTTP/1.1\r\nHost: a\r\nX-Request-Id: {rid}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        return raw, body

    problems: list[str] = []
    answered = [0] * XT_CLIENTS
    barrier = threading.Barrier(XT_CLIENTS)

    def check(rid: str, body: bytes, r) -> None:
        if r.status != 200:
            problems.append(f"{rid}: status {r.status}")
            return
        doc = json.loads(r.body)
        hdr = [v for n, v in doc["headers"] if n.lower() == "x-request-id"]
        if doc["target"] != f"/echo?rid={rid}" or hdr != [rid] or doc["body"].encode("latin-1") != body:
            problems.append(f"{rid}: answered with {doc['target']!r} / {hdr} / {doc['body'][:40]!r}")

    def client(i: int) -> None:
        try:
            barrier.wait(10)
            with Conn(server.port, host=server.host, timeout=15) as c:
                for k in range(XT_ROUNDS):
                    a, b = f"c{i}-r{k}a-{uuid.uuid4().hex[:6]}", f"c{i}-r{k}b-{uuid.uuid4().hex[:6]}"
                    (ra, ba), (rb, bb) = req(a, (i * 37 + k * 101) % 3000), req(b, (i * 53 + k) % 200)
                    c.send(ra + rb if mode == "pipelined" else ra)
                    check(a, ba, c.read_response())
                    if mode != "pipelined":
                        c.send(rb)
                    try:
                        check(b, bb, c.read_response())
                    except ConnectionError as exc:
                        raise ConnectionError(f"{b} ({mode}) unanswered: {exc}") from exc
                    answered[i] += 2
                # nothing more may arrive: no duplicated or stray response
                c.sock.settimeout(0.05)
                try:
                    extra = c.buf + c.sock.recv(65536)
                except (TimeoutError, BlockingIOError):
                    extra = c.buf
                if extra:
                    problems.append(f"client {i}: {len(extra)} unexpected bytes after the last response")
        except Exception as exc:
            problems.append(f"client {i}: {exc!r}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(XT_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    total = sum(answered)
    record_property("mode", mode)
    record_property("clients", XT_CLIENTS)
    record_property("requests", XT_CLIENTS * XT_ROUNDS * 2)
    record_property("answered", total)
    record_property("problems", len(problems))
    assert not problems, problems[:5]
    assert total == XT_CLIENTS * XT_ROUNDS * 2
