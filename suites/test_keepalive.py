"""Keep-alive: persistence rules, KeepAliveTimeout, MaxKeepAliveRequests, pipelining, idle capacity.

What is checked (RFC 9112 §9.3, httpd's ``ap_set_keepalive``, docs/servers.md "Persistence"):

* HTTP/1.1 is persistent by default; HTTP/1.0 only with the ``keep-alive``
  token; ``Connection: close`` from the client ends the connection after the
  response, which says ``Connection: close``.
* KeepAliveTimeout 1: the server closes an idle connection no earlier than
  1 s and no later than 1 s + 1.5 s after the response (a bounded wait on a
  protocol property, measured with the monotonic clock; not a performance
  assertion).
* MaxKeepAliveRequests 3: a connection carries 4 responses; a client that
  sent the ``keep-alive`` token sees ``Keep-Alive: timeout=5, max=3``, ``max=2``,
  ``max=1`` then ``Connection: close``, a plain HTTP/1.1 client sees no
  Keep-Alive header and ``Connection: close`` on the 4th, exactly as a live
  httpd 2.4 does.
* Pipelined requests (GET, POST with Content-Length, POST chunked, HEAD) are
  answered in order, each exactly once.
* Idle-connection capacity: 4 workers, 12 idle keep-alive connections (opened
  one at a time while each is answered), then a new client. The model says: prefork and worker answer only 4 of the 12 (an
  idle keep-alive client pins a process or a thread) and starve the new
  client; event answers all 12 and serves the new client at once (parked
  connections hold no thread). The figures are recorded with
  ``record_property``.

* Busy keep-alive clients: 40 clients each send a request every second on their
  own connection (never idle long enough for KeepAliveTimeout), on at most 20
  workers; then 16 new clients, one every 0.25 s. event (ours and httpd's) must
  grow past its per-child connection caps and answer every client and every new
  client; prefork and worker pin a unit per connection, so clients beyond 20 and
  the new clients wait (recorded, not asserted).

The reference servers run the same tests with the same configuration as their
model MPM (``suites.launching.configuration``: ``apache-event`` and
``modwsgi-event`` run event's, a Python server runs its closest MPM's pool as a
fixed pool) and the expectation they really have (``IDLE_HOLDER``): httpd's
prefork and worker, and uWSGI, pin an idle connection as ours do; httpd's event,
gunicorn's gthread, granian and waitress park it; an app under mod_wsgi takes
httpd's row for its MPM (``suites.launching.httpd_twin``; the daemon mode's
front is event). A test that needs what a server lacks (gunicorn-sync keeps no
connection, gunicorn, uWSGI, granian and waitress send no Keep-Alive header, httpd has no /echo
mirror, uWSGI, granian and waitress have no MaxKeepAliveRequests) is skipped as
not applicable (the ``needs`` marker, the launcher's NotApplicable). Settings a
test needs only where a server has them (a Timeout longer than the test) are
passed as optional (``suites.launching.launch``).

With ``--target URL`` the tests that need a configuration skip, and the
capacity is recorded as "not measured".
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from servers.launcher import lacks
from suites.launching import FIXED_POOL, configuration, family, httpd_twin, launch, model
from suites.probes import status_or_none
from suites.wire import Conn, wait_until

#: the family marker (suites/plugin.py): ``-m keepalive``
pytestmark = pytest.mark.keepalive

#: the server must close an idle connection within KeepAliveTimeout + this (seconds)
EXPIRY_TOLERANCE = 1.5
#: the client measures from the moment it has the response, the server from just after it
#: sent it; this much earlier counts as "on time" (loopback delivery and scheduling)
CLOCK_SLACK = 0.02
#: "starved": no answer within this many seconds
STARVED = 1.5


@pytest.fixture(scope="module")
def module_server(server_spec):
    """``module_server(overrides)`` -> a launched server of the spec's kind, one per distinct config per module."""
    cache: dict[str, object] = {}

    def get(overrides: dict):
        if not server_spec.launchable:
            pytest.skip(f"needs a server the suite can configure ({overrides}); run with --server NAME")
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            cache[key] = launch(server_spec.name, overrides)
        return cache[key]

    yield get
    for h in cache.values():
        h.stop()


def _req(path: str = "/", version: str = "1.1", extra: str = "") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: a\r\n{extra}\r\n".encode()


def _status(h):
    return status_or_none(h, timeout=1)


def _tokens(r) -> set[str]:
    return {t.strip().lower() for t in (r.header("Connection") or "").split(",") if t.strip()}


# -- persistence defaults (any server) -------------------------------------------------------------

@pytest.mark.needs("keepalive")
def test_http11_is_persistent_by_default(server):
    with Conn(server.port, host=server.host) as c:
        for _ in range(3):
            c.send(_req())
            r = c.read_response()
            assert r.status == 200
            assert "close" not in _tokens(r), "an HTTP/1.1 request without Connection: close must stay open"
        assert not c.closed_by_peer(0.2)


def test_http10_without_keepalive_token_closes(server):
    with Conn(server.port, host=server.host) as c:
        c.send(_req(version="1.0"))
        r = c.read_response()
        assert r.status == 200
        assert "keep-alive" not in _tokens(r)
        assert c.closed_by_peer(5), "HTTP/1.0 without the keep-alive token is not persistent (RFC 9112 §9.3)"


@pytest.mark.needs("keepalive")
def test_http10_with_keepalive_token_persists(server):
    with Conn(server.port, host=server.host) as c:
        for _ in range(2):
            c.send(_req(version="1.0", extra="Connection: keep-alive\r\n"))
            r = c.read_response()
            assert r.status == 200
            assert "keep-alive" in _tokens(r), "a persistent HTTP/1.0 response must say Connection: keep-alive"
            assert r.header("Content-Length") is not None
        assert not c.closed_by_peer(0.2)


def test_connection_close_ends_the_connection(server):
    with Conn(server.port, host=server.host) as c:
        c.send(_req(extra="Connection: close\r\n"))
        r = c.read_response()
        assert r.status == 200
        assert "close" in _tokens(r), "the response to Connection: close says close (RFC 9112 §9.6)"
        assert c.closed_by_peer(5)


@pytest.mark.must  # RFC 9112 §9.3.2: responses in request order; §9.6: nothing after close
@pytest.mark.needs("keepalive")
@pytest.mark.needs("echo")
def test_pipelined_requests_answered_in_order(server):
    """Six requests in one write (GET, POST Content-Length, POST chunked, HEAD, GET close, GET):
    five responses in order, then the close; the request after ``Connection: close`` is not answered."""
    with Conn(server.port, host=server.host) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
        probe = c.read_response()
    if probe.status != 200 or not probe.body.startswith(b"{"):
        pytest.skip(f"not applicable to {server.name}: it has no /echo mirror (servers.apps:app)")
    batch = (
        b"GET /echo?seq=0 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /echo?seq=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /echo?seq=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /echo?seq=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        b"GET /echo?seq=5 HTTP/1.1\r\nHost: a\r\n\r\n"  # after close: never answered (RFC 9112 §9.6)
    )
    with Conn(server.port, host=server.host) as c:
        c.send(batch)
        got = []
        for i in range(5):
            r = c.read_response(head_only=(i == 3))
            assert r.status == 200, (i, r.status)
            got.append(None if i == 3 else json.loads(r.body))
        assert [d["target"] for d in got if d] == ["/echo?seq=0", "/echo?seq=1", "/echo?seq=2", "/echo?seq=4"]
        assert [d["body"] for d in got if d] == ["", "hello", "abc", ""]
        assert c.closed_by_peer(5)
        assert not c.buf, f"bytes after the last response: {c.buf[:80]!r}"


@pytest.mark.must  # RFC 9112 §9.3.2: responses in request order
@pytest.mark.needs("keepalive")
def test_many_pipelined_requests_answered_in_order(server):
    """40 GETs of different sizes in one write: 40 responses, each the size asked for, in order."""
    sizes = [(i * 977) % 5000 for i in range(40)]
    with Conn(server.port, host=server.host) as c:
        c.send(b"GET /bytes/7 HTTP/1.1\r\nHost: a\r\n\r\n")
        probe = c.read_response()
        if probe.status != 200 or len(probe.body) != 7:
            pytest.skip(f"not applicable to {server.name}: it has no /bytes/N (servers.apps:app)")
        c.send(b"".join(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n for n in sizes))
        got = [len(c.read_response().body) for _ in sizes]
        assert got == sizes
        assert not c.closed_by_peer(0.2) and not c.buf


# -- KeepAliveTimeout and MaxKeepAliveRequests (configured) ------------------------------------------

def test_keepalive_timeout_expires_within_tolerance(module_server, record_property):
    """KeepAliveTimeout 1: the idle connection is closed after >= 1 s and < 1 s + 1.5 s."""
    h = module_server({"KeepAliveTimeout": 1})
    elapsed = []
    for requests in (1, 3):  # the timer runs from the last response
        with Conn(h.port, host=h.host) as c:
            for _ in range(requests):
                c.send(_req())
                assert c.read_response().status == 200
            t0 = time.monotonic()
            closed = c.closed_by_peer(1 + EXPIRY_TOLERANCE + 1)
            elapsed.append(time.monotonic() - t0)
            assert closed, "the idle connection was not closed"
    record_property("keepalive_timeout_s", 1)
    record_property("closed_after_s", json.dumps([round(e, 3) for e in elapsed]))
    for e in elapsed:
        assert 1 - CLOCK_SLACK <= e < 1 + EXPIRY_TOLERANCE, f"closed after {e:.3f} s"


COUNTDOWN = {"MaxKeepAliveRequests": 3, "KeepAliveTimeout": 5}


@pytest.mark.parametrize("variant", ["http11-token", "http10-token", "http11-plain"])
def test_max_keepalive_requests_countdown(module_server, variant):
    """MaxKeepAliveRequests 3: 4 responses; Keep-Alive max=3,2,1 for a token client, then close."""
    h = module_server(COUNTDOWN)
    version = "1.0" if variant == "http10-token" else "1.1"
    extra = "" if variant == "http11-plain" else "Connection: keep-alive\r\n"
    with Conn(h.port, host=h.host) as c:
        seen = []
        for _ in range(4):
            c.send(_req(version=version, extra=extra))
            r = c.read_response()
            assert r.status == 200
            seen.append((r.header("Keep-Alive"), r.header("Connection")))
        if variant == "http11-plain":
            assert seen == [(None, None), (None, None), (None, None), (None, "close")], seen
        else:
            assert seen == [("timeout=5, max=3", "Keep-Alive"), ("timeout=5, max=2", "Keep-Alive"),
                            ("timeout=5, max=1", "Keep-Alive"), (None, "close")], seen
        assert c.closed_by_peer(5), "the connection must close after the 4th response"


@pytest.mark.needs("keepalive")
def test_unlimited_keepalive_requests_has_no_max(server_spec, module_server):
    """MaxKeepAliveRequests 0 = unlimited: ``Keep-Alive: timeout=5`` without max=, and the
    connection stays open past the default of 100. A server that sends no Keep-Alive header
    (gunicorn) must send none and keep the connection just the same."""
    h = module_server({"MaxKeepAliveRequests": 0, "KeepAliveTimeout": 5})
    header = "keepalive-header" not in lacks(server_spec.name)
    with Conn(h.port, host=h.host) as c:
        for _ in range(120):
            c.send(_req(extra="Connection: keep-alive\r\n"))
            r = c.read_response()
            assert r.status == 200
            if header:
                assert (r.header("Keep-Alive"), r.header("Connection")) == ("timeout=5", "Keep-Alive")
            else:
                assert r.header("Keep-Alive") is None and "close" not in _tokens(r), r.headers
        assert not c.closed_by_peer(0.2)


# -- idle-connection capacity ---------------------------------------------------------------------------

WORKERS = 4
IDLE = 12
#: an idle connection's first request not answered within this many seconds: every worker is held
ANSWER_WAIT = 2.0
CAPACITY_CONFIGS = {
    "prefork": {"StartServers": WORKERS, "MinSpareServers": 1, "MaxSpareServers": WORKERS,
                "MaxRequestWorkers": WORKERS, "ServerLimit": WORKERS},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": WORKERS, "MaxRequestWorkers": WORKERS,
               "MinSpareThreads": 1, "MaxSpareThreads": 2 * WORKERS},
    # the cap is ThreadsPerChild + idle workers x factor = 4 + 4 x 4 = 20 > 12 idle + 1 new
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": WORKERS, "MaxRequestWorkers": WORKERS,
              "MinSpareThreads": 1, "MaxSpareThreads": 2 * WORKERS, "AsyncRequestWorkerFactor": 4},
}
#: where each server keeps an idle keep-alive connection between two requests:
#: "pinned" -- a process or thread waits on it (prefork, worker; httpd's prefork and worker alike),
#: "parked" -- it waits in a poller and holds no thread (our event and httpd's event: the
#: listener's keep-alive queue; gunicorn's gthread: the worker's selector, gthread.finish_request;
#: granian: its Rust event loop; waitress: its asyncore loop; uWSGI's --http11-socket keeps the
#: connection in the worker process or thread that answered it). mod_wsgi leaves the connections to
#: httpd, so each modwsgi-X holds them as apache-X does (``suites.launching.httpd_twin``; the daemon
#: mode's front is event: parked)
IDLE_HOLDER = {
    "prefork": "pinned", "worker": "pinned", "event": "parked",
    "apache-prefork": "pinned", "apache-worker": "pinned", "apache-event": "parked",
    "gunicorn-gthread": "parked",
    "uwsgi-processes": "pinned", "uwsgi-threads": "pinned", "granian": "parked", "waitress": "parked",
}
#: servers whose /server-status connection counts (ConnsAsyncKeepAlive...) are refreshed only when the
#: listener processes its timeout queues, i.e. when the first queued connection times out: httpd's
#: event (event.c updates the process score there), so with KeepAliveTimeout 30 they still read 0
STALE_ASYNC_COUNTS = {"apache-event"}
#: what the holder predicts for a new client while IDLE keep-alive connections idle on WORKERS workers
EXPECTED = {"pinned": "starved", "parked": "served"}


@pytest.mark.attack  # a flood of held connections: --allow-attacks for a non-loopback target
@pytest.mark.needs("keepalive")
def test_idle_keepalive_capacity(server_spec, record_property, request):
    """12 idle keep-alive connections on 4 workers, then a new client: served or starved.

    prefork/worker (ours and httpd's): each idle connection pins a process/thread, so only 4
    of the 12 are answered and the new client starves. event (ours and httpd's) and gunicorn's
    gthread: idle connections wait in a poller, all 12 are answered, stay usable, and the new
    client is served at once; where there is a scoreboard, no worker is busy or in K while the
    12 are open, and ConnsAsyncKeepAlive counts them (ours; httpd refreshes that figure only
    when its first queued connection times out, ``STALE_ASYNC_COUNTS``).

    The connections are opened one at a time while each is answered, then the rest at once.
    """
    if not server_spec.launchable:
        record_property("idle_capacity", "not measured")
        pytest.skip("idle-connection capacity needs a configured server (WORKERS known): not measured")
    name = server_spec.name
    config = configuration(name, CAPACITY_CONFIGS)
    holder = IDLE_HOLDER.get(httpd_twin(name))
    if config is None or holder is None:
        record_property("idle_capacity", "not measured")
        pytest.skip(f"no capacity configuration for {name}")
    # KeepAliveTimeout keeps the idle connections open (the premise); Timeout only where a server has
    # one (granian and waitress have none; uWSGI's is also its keep-alive wait, so it must match)
    h = launch(name, {**config, "KeepAliveTimeout": 30}, optional={"Timeout": 30})
    request.addfinalizer(h.stop)
    idle: list[Conn] = []
    try:
        # one at a time while they are answered, so that no burst makes every worker busy (httpd's
        # event closes all its parked keep-alive connections whenever it finds no idle worker:
        # that is its overload heuristic, not its idle capacity); the first connection left
        # unanswered shows the workers are all held, and the rest are opened at once
        answered = 0
        waiting: list[Conn] = []
        for _ in range(IDLE):
            c = Conn(h.port, host=h.host, timeout=10)
            c.send(_req())
            idle.append(c)
            if waiting:
                waiting.append(c)
                continue
            try:
                if c.read_response(timeout=ANSWER_WAIT).status == 200:
                    answered += 1
            except (TimeoutError, ConnectionError):
                waiting.append(c)
        # the unanswered ones with one deadline for all: an answered connection has its bytes already
        deadline = time.monotonic() + 1.0
        for c in waiting:
            try:
                if c.read_response(timeout=max(0.05, deadline - time.monotonic())).status == 200:
                    answered += 1
            except (TimeoutError, ConnectionError):
                pass
        t0 = time.monotonic()
        try:
            with Conn(h.port, host=h.host, timeout=STARVED) as c:
                c.send(_req(extra="Connection: close\r\n"))
                served = c.read_response(timeout=STARVED).status == 200
        except (TimeoutError, OSError):
            served = False
        latency = time.monotonic() - t0
        outcome = "served" if served else "starved"
        record_property("workers", WORKERS)
        record_property("idle_connections", IDLE)
        record_property("idle_holder", holder)
        record_property("idle_connections_answered", answered)
        record_property("new_client", outcome)
        record_property("new_client_latency_ms", round(latency * 1000, 1) if served else f">{STARVED * 1000:.0f}")
        if holder == "parked":
            assert answered == IDLE, f"{name} must answer all {IDLE} connections, answered {answered}"
            for c in idle:  # every parked connection is still usable
                c.send(_req())
                assert c.read_response().status == 200
            if "scoreboard" not in lacks(name):
                # and they wait in the listener, not in a thread: no worker busy or in K while they are
                # open, and (where the figure is live) ConnsAsyncKeepAlive counts them
                live = httpd_twin(name) not in STALE_ASYNC_COUNTS

                def parked(st):
                    if st is None or "K" in st.scoreboard or st.scoreboard.count("W") > 1:  # W: this request
                        return None
                    return st if not live or st.conns_async_keep_alive == IDLE else None

                st = wait_until(lambda: parked(_status(h)), 5,
                                what=f"{IDLE} parked keep-alive connections and no worker held")
                record_property("scoreboard", st.scoreboard)
                record_property("conns_async_keep_alive", st.conns_async_keep_alive if live else
                                f"{st.conns_async_keep_alive} (not refreshed yet)")
        else:
            assert answered == WORKERS, f"{name}: {WORKERS} workers answer {WORKERS} connections, got {answered}"
        assert outcome == EXPECTED[holder], (
            f"{name}: its idle connections are {holder}, so a new client is {EXPECTED[holder]} with {IDLE} idle "
            f"connections on {WORKERS} workers; it was {outcome}")
    finally:
        for c in idle:
            c.close()


# -- busy keep-alive clients: does the server grow? -------------------------------------------------------

#: the suite's scale (fits a 2-core CI machine): BUSY_CLIENTS keep-alive clients, each sending one request
#: every BUSY_PACE seconds, on a server of at most 20 workers that starts with 5
BUSY_CLIENTS = 40
BUSY_PACE = 1.0
BUSY_CONFIGS = {
    "prefork": {"StartServers": 5, "MinSpareServers": 1, "MaxSpareServers": 5, "MaxRequestWorkers": 20,
                "ServerLimit": 20},
    "worker": {"StartServers": 1, "ServerLimit": 4, "ThreadsPerChild": 5, "MaxRequestWorkers": 20,
               "MinSpareThreads": 5, "MaxSpareThreads": 20},
    # each child's cap: 5 threads + 5 idle x factor 2 = 15 connections, so 40 clients need 3 children
    "event": {"StartServers": 1, "ServerLimit": 4, "ThreadsPerChild": 5, "MaxRequestWorkers": 20,
              "MinSpareThreads": 5, "MaxSpareThreads": 20},
}


def busy_configuration(name: str) -> dict | None:
    """:data:`BUSY_CONFIGS` for server ``name``; a fixed pool (gunicorn, uWSGI, granian, waitress)
    cannot grow, so it runs the pool its model's dynamic pool may grow to (MaxRequestWorkers:
    20 processes, or 4 processes x 5 threads), the fairest fixed equivalent."""
    config = configuration(name, BUSY_CONFIGS)
    m = model(name)
    if config is not None or family(name) not in FIXED_POOL or m not in BUSY_CONFIGS:
        return config
    grown = dict(BUSY_CONFIGS[m])
    per_process = 1 if m == "prefork" else grown["ThreadsPerChild"]
    grown["StartServers"] = grown["MaxRequestWorkers"] // per_process
    return configuration(name, {m: grown})


#: how long the clients may take to all get a first answer (the server grows meanwhile)
BUSY_SETTLE = 8.0
#: probes: a new client every PROBE_EVERY seconds, PROBES of them, each answered within PROBE_WAIT or not
PROBES = 16
PROBE_EVERY = 0.25
PROBE_WAIT = 2.0


class _PacedClient(threading.Thread):
    """One keep-alive client: a request every ``pace`` seconds on one connection, reconnecting when closed.

    Bounded: it stops when ``stop`` is set or after ``limit`` seconds, whichever comes first.
    """

    def __init__(self, host: str, port: int, pace: float, stop: threading.Event, limit: float) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.pace, self.stop, self.limit = host, port, pace, stop, limit
        self.answered = 0
        self.reconnects = 0
        self.errors: list[str] = []

    def run(self) -> None:
        end = time.monotonic() + self.limit
        conn: Conn | None = None
        try:
            while not self.stop.is_set() and time.monotonic() < end:
                try:
                    if conn is None:
                        conn = Conn(self.port, host=self.host, timeout=10)
                    conn.send(_req())
                    r = conn.read_response(timeout=max(0.1, end - time.monotonic()))
                    if r.status == 200:
                        self.answered += 1
                    if "close" in _tokens(r):
                        conn.close()
                        conn = None
                except (OSError, TimeoutError, ValueError) as exc:
                    # closed under us (a keep-alive limit, a dying child): a real client reconnects
                    if conn is not None:
                        conn.close()
                        conn = None
                    self.reconnects += 1
                    if len(self.errors) < 5:
                        self.errors.append(repr(exc))
                self.stop.wait(self.pace)
        finally:
            if conn is not None:
                conn.close()


def _probe(host: str, port: int) -> bool:
    """A new client: one GET with Connection: close, answered 2xx within PROBE_WAIT seconds or not."""
    try:
        with Conn(port, host=host, timeout=PROBE_WAIT) as c:
            c.send(_req(extra="Connection: close\r\n"))
            return 200 <= c.read_response(timeout=PROBE_WAIT).status < 300
    except (OSError, TimeoutError, ValueError):
        return False


def busy_keepalive_availability(h, clients: int, pace: float) -> dict:
    """Run the scenario against a started server ``h``; returns the figures.

    ``clients`` keep-alive clients start (a few every 50 ms) and send a request every ``pace``
    seconds; once all have had an answer (or BUSY_SETTLE has passed), PROBES new clients come
    PROBE_EVERY seconds apart. Everything stops within BUSY_SETTLE + PROBES x PROBE_EVERY +
    PROBE_WAIT + a few seconds.
    """
    stop = threading.Event()
    limit = BUSY_SETTLE + PROBES * PROBE_EVERY + PROBE_WAIT + 5
    pool = [_PacedClient(h.host, h.port, pace, stop, limit) for _ in range(clients)]
    try:
        for i, c in enumerate(pool):
            c.start()
            if i % 10 == 9:
                time.sleep(0.05)  # a ramp, not a burst: clients arrive as users would
        deadline = time.monotonic() + BUSY_SETTLE
        while time.monotonic() < deadline and not all(c.answered for c in pool):
            stop.wait(0.1)
        settled = sum(1 for c in pool if c.answered)
        results: list[bool] = []
        probes = []
        for _ in range(PROBES):
            t = threading.Thread(target=lambda: results.append(_probe(h.host, h.port)), daemon=True)
            t.start()
            probes.append(t)
            time.sleep(PROBE_EVERY)
        for t in probes:
            t.join(PROBE_WAIT + 1)
        try:
            processes = len(h.pids()) - 1
        except Exception:
            processes = None
    finally:
        stop.set()
        for c in pool:
            c.join(5)
    return {"busy_clients": clients, "busy_pace_s": pace,
            "busy_clients_answered": settled,
            "probes": PROBES, "probes_answered": sum(results),
            "availability": round(sum(results) / PROBES, 3),
            "processes": processes,
            "reconnects": sum(c.reconnects for c in pool),
            "errors": [e for c in pool for e in c.errors][:5]}


@pytest.mark.attack  # a flood of held connections: --allow-attacks for a non-loopback target
@pytest.mark.needs("keepalive")
def test_busy_keepalive_clients_new_client_availability(server_spec, record_property, request):
    """Many keep-alive clients at a slow pace, then new clients: are they answered?

    Each client keeps its connection and sends a request every second, so its connection is
    never idle long enough for KeepAliveTimeout (5 s) to close it. A server that parks idle
    connections (event, ours and httpd's) must grow: a child reaches its connection cap
    (ThreadsPerChild + idle workers x AsyncRequestWorkerFactor) and stops accepting, so the
    parent must count its idle threads as no spare capacity and fork a child that can accept
    (httpd's perform_idle_server_maintenance). Then every client and every new client is
    answered. A server that pins a process or thread per connection (prefork, worker) cannot
    hold more clients than workers: the clients past MaxRequestWorkers and the new clients wait
    in the listen queue. The figures are recorded for the tables; the parked servers' 100% is
    asserted.

    ``--busy-clients N --busy-pace S --busy-defaults`` run it at another scale, e.g. the
    300 clients every 3 s on each server's own defaults of docs/reliability.md "Attacks".
    """
    name = server_spec.name
    opts = request.config
    clients = opts.getoption("--busy-clients") or BUSY_CLIENTS
    pace = opts.getoption("--busy-pace") or BUSY_PACE
    if not server_spec.launchable:
        record_property("busy_keepalive", "not measured")
        pytest.skip("busy keep-alive clients need a configured server: not measured")
    if opts.getoption("--busy-defaults"):
        config = {"MaintenanceInterval": 1} if family(name) == "ours" else {}
    else:
        config = busy_configuration(name)
    holder = IDLE_HOLDER.get(httpd_twin(name))
    if config is None or holder is None:
        record_property("busy_keepalive", "not measured")
        pytest.skip(f"no busy keep-alive configuration for {name}")
    # the timeouts only keep the clients' connections open between their requests: applied where the
    # server has them (uWSGI waits for a next request with its Timeout, 10 s: longer than the pace too)
    h = launch(name, config, optional={"KeepAliveTimeout": max(5, int(pace) + 2), "Timeout": 10})
    request.addfinalizer(h.stop)
    figures = busy_keepalive_availability(h, clients, pace)
    for key, value in figures.items():
        record_property(key, json.dumps(value) if isinstance(value, list) else value)
    record_property("idle_holder", holder)
    if holder == "parked":
        assert figures["busy_clients_answered"] == clients, (
            f"{name}: only {figures['busy_clients_answered']} of {clients} keep-alive clients got an answer "
            f"({figures['processes']} processes): the server did not grow past its connection caps")
        assert figures["probes_answered"] == PROBES, (
            f"{name}: {figures['probes_answered']}/{PROBES} new clients answered with {clients} busy keep-alive "
            f"clients ({figures['processes']} processes)")
