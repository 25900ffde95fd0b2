"""Slow clients: slowloris, slow body (R-U-Dead-Yet) and slow read, below and above capacity.

Every attack is bounded: a fixed number of loopback connections, driven by one
thread, for a few seconds at most; the attacker never reconnects. While it
runs, a probe client opens a new connection every PROBE_INTERVAL seconds and
asks ``GET /``; *availability* is the fraction of those probes answered within
PROBE_DEADLINE (2 s). The attack is kept up until every probe launched during
it has had its full 2 s, so a probe is never rescued by the attack ending.
*Recovery* is the time from the attack's end (every attack socket closed) to
the first probe answered within 2 s. Both are recorded with record_property.

The attacks (CAPACITY = 10 workers: prefork 10 children, worker/event one
child of 10 threads):

* slowloris: a request head that never ends, one more byte every TICK seconds;
* slow body: ``POST /echo`` declaring 100000 bytes of body, one byte per TICK;
* slow read: ``GET /bytes/8388608`` from a client with a 4 KiB receive buffer
  that never reads;
* silent: connections that are opened and never send a byte (a connection flood).

at BELOW = 9 connections (capacity - 10 %) and ABOVE = 40 (capacity x 4).

Per-server expectations asserted (docs/mpm-model.md §2-4, docs/event.md; for
the reference servers their documented behaviour, measured here, docs/suites.md).
httpd (and mod_wsgi inside it) runs our same-named MPM's configuration, gunicorn,
uWSGI, granian and waitress their closest MPM's pool as a fixed pool
(``suites.launching.configuration``). A test requires only the directives it is
about; settings that keep a server's own deadlines out of the window are optional
(applied where the server has them). mod_wsgi leaves the connections to httpd, so
a modwsgi-X server is held to apache-X's expectations (``httpd_twin``):

* protected (``RequestReadTimeout header=1 body=1``, ``Timeout 1``): every MPM
  bounds each slow connection's lifetime (slowloris and slow body: the server
  answers 408 or closes within 1 s of taking the connection, i.e. within
  waves x (1 s + 0.5 s) + 1.5 s where waves = ceil(connections / capacity)
  for whatever holds a worker; slow read: the workers are released within
  Timeout-bounded writes) and recovers after the attack;
* event keeps serving probes during slowloris (it reads heads in the listener)
  and during a slow read below capacity (write completion hands the unsent
  tail to the listener);
* httpd's event reads request heads in a worker thread (mod_reqtimeout cuts
  them, wave after wave) and holds a slow reader of a large file in a worker:
  it behaves as httpd's worker here, which is where our event goes beyond it;
* unprotected (``RequestReadTimeout header=0 body=0``): slowloris at capacity
  starves prefork and worker (availability 0) but not our event; it starves
  httpd's three MPMs, gunicorn's two workers and uWSGI, not granian or waitress
  (heads read in their event loops); slow body at capacity starves every server,
  our event included (bodies are read by worker threads, as in httpd), except
  waitress, which reads the whole body in its loop before a thread runs the app;
* gunicorn, uWSGI, granian and waitress have no request read deadlines: the
  protected slowloris and slow-body tests are not applicable to them; gunicorn,
  granian and waitress have no write deadline either (slow read: not applicable),
  uWSGI's ``--socket-timeout`` is one (no scoreboard: availability recorded);
* against any server (``--target`` included): each attack at 20 connections
  for a short window; availability recorded, recovery asserted;
* silent connections, ABOVE of them for a 2 s probing window: with httpd's Linux
  default ``AcceptFilter http data`` (TCP_DEFER_ACCEPT, ours too) the kernel keeps
  them from accept(), so every MPM of ours and httpd's keeps serving; with
  ``AcceptFilter http none`` they are accepted, and every server that reads a head
  in a worker (prefork, worker, httpd's three MPMs) is starved until its read
  timeout, as are gunicorn and uWSGI, while our event, granian and waitress (heads
  in their listener or event loop) keep serving; gunicorn, granian and waitress
  cannot defer accept (the ``deferred`` case is not applicable to them);
* lingering after a 408 (protected): a slow sender cut by the header stage keeps
  its connection open and sends a byte every 0.5 s; how long the server keeps
  draining it after the 408 is recorded, and must be httpd's short lingering
  close (mod_reqtimeout's "short-lingering-close": 2 s, not the 30 s of
  MAX_SECS_TO_LINGER) on our MPMs and httpd's; the Python servers have no read
  deadline, so no 408 to linger after (not applicable).
"""

from __future__ import annotations

import json
import math
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import pytest

from servers.launcher import lacks
from suites.launching import configuration, family, httpd_twin, launch
from suites.probes import status_or_none
from suites.wire import Conn, endpoint_for

#: the family marker (suites/plugin.py): ``-m slowclient``; every test here is an attack, so
#: against a non-loopback --target it runs only with --allow-attacks (suites/plugin.py)
pytestmark = [pytest.mark.slowclient, pytest.mark.attack]

CAPACITY = 10
BELOW = 9  # capacity - 10 %
ABOVE = 4 * CAPACITY
TICK = 0.25  # seconds between two slow bytes; well under Timeout 1
PROBE_INTERVAL = 0.2
PROBE_DEADLINE = 2.0
#: the longest an attack may run before the suite calls it unbounded
MAX_ATTACK = 9.0
RECOVERY_LIMIT = 5.0
STAGE = 1.0  # RequestReadTimeout header=1 body=1 and Timeout 1
LIFETIME_SLACK = 1.5
SLOW_READ_BYTES = 8 * 1024 * 1024  # more than the loopback socket buffers take in

PROTECTED = {"RequestReadTimeout": "header=1 body=1", "Timeout": 1}
UNPROTECTED = {"RequestReadTimeout": "header=0 body=0"}

CAPACITY_CONFIGS = {
    "prefork": {"StartServers": CAPACITY, "MinSpareServers": 1, "MaxSpareServers": CAPACITY,
                "MaxRequestWorkers": CAPACITY, "ServerLimit": CAPACITY},
    "worker": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": CAPACITY, "MaxRequestWorkers": CAPACITY,
               "MinSpareThreads": 1, "MaxSpareThreads": 2 * CAPACITY},
    "event": {"StartServers": 1, "ServerLimit": 1, "ThreadsPerChild": CAPACITY, "MaxRequestWorkers": CAPACITY,
              "MinSpareThreads": 1, "MaxSpareThreads": 2 * CAPACITY},
}

HEADS = {
    "slowloris": b"GET / HTTP/1.1\r\nHost: a\r\n",
    "slowbody": (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: 100000\r\n\r\n"),
    "slowread": b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % SLOW_READ_BYTES,
    "silent": b"",  # connect, then say nothing
}
#: attacks that only hold their sockets (nothing is sent after the first bytes)
HOLD_ONLY = ("slowread", "silent")
DRIBBLE = {"slowloris": b"X-a: b\r\n", "slowbody": b"x"}  # never a blank line: the head never ends


@dataclass
class SlowConn:
    sock: socket.socket
    opened: float
    ended_by_server: float | None = None  # answered (e.g. 408) or closed by the server
    answer: bytes = b""


class Attack(threading.Thread):
    """``n`` slow connections of one kind, driven by one selector loop until stopped.

    slowloris / slowbody: one more byte per connection every TICK; a connection the server
    answers or closes is closed at once (so no lingering close waits on us) and its time
    recorded. slowread: the request is sent, nothing is ever read. The attack stops on
    ``stop()`` or, for the first two kinds, when the server has ended every connection.
    """

    def __init__(self, host: str, port: int, kind: str, n: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.kind, self.n = host, port, kind, n
        self.conns: list[SlowConn] = []
        self.ready = threading.Event()
        self._halt = threading.Event()
        self.started = self.finished = 0.0
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._halt.set()

    def _open(self) -> None:
        for _ in range(self.n):
            s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
            if self.kind == "slowread":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny receive window
            s.settimeout(5)
            s.connect((self.host, self.port))
            ep = endpoint_for(self.host, self.port)  # a --target: TLS, its Host and prefix
            if ep is not None and HEADS[self.kind]:
                s = ep.connect(s)  # a silent attacker stays silent: not even a TLS handshake
            if HEADS[self.kind]:
                s.sendall(ep.rewrite(HEADS[self.kind]) if ep else HEADS[self.kind])
            s.setblocking(False)
            self.conns.append(SlowConn(s, time.monotonic()))

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            self.started = time.monotonic()
            self._open()
            if self.kind not in HOLD_ONLY:
                for c in self.conns:
                    sel.register(c.sock, selectors.EVENT_READ, c)
            self.ready.set()
            if self.kind in HOLD_ONLY:
                self._halt.wait(MAX_ATTACK + 5)  # hold the sockets, read nothing
                return
            next_tick = time.monotonic() + TICK
            while not self._halt.is_set():
                for key, _ in sel.select(max(0.0, next_tick - time.monotonic())):
                    self._ended(sel, key.data)
                now = time.monotonic()
                if now >= next_tick:
                    for c in self.conns:
                        if c.ended_by_server is None:
                            try:
                                c.sock.send(DRIBBLE[self.kind])
                            except (BlockingIOError, ssl.SSLWantWriteError):
                                pass
                            except OSError:
                                self._ended(sel, c)
                    next_tick = now + TICK
                if all(c.ended_by_server is not None for c in self.conns):
                    break
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.ready.set()
            for c in self.conns:
                try:
                    c.sock.close()
                except OSError:
                    pass
            sel.close()
            self.finished = time.monotonic()

    def _ended(self, sel, c: SlowConn) -> None:
        if c.ended_by_server is not None:
            return
        try:
            c.answer = c.sock.recv(64)
        except ssl.SSLWantReadError:
            return  # a TLS record with no data (a session ticket): the connection goes on
        except OSError:
            pass
        c.ended_by_server = time.monotonic()
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    # -- figures
    def ended_by_server(self) -> int:
        return sum(1 for c in self.conns if c.ended_by_server is not None)

    def max_lifetime(self) -> float | None:
        done = [c.ended_by_server - c.opened for c in self.conns if c.ended_by_server is not None]
        return max(done) if done else None

    def answers(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.conns:
            if c.ended_by_server is not None:
                k = c.answer.split(b"\r\n", 1)[0].decode("latin-1") or "closed without an answer"
                out[k] = out.get(k, 0) + 1
        return out


class Prober(threading.Thread):
    """A new connection with ``GET /`` every PROBE_INTERVAL until stopped; each judged on PROBE_DEADLINE."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.results: list[bool] = []
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            slot = len(self.results)
            self.results.append(False)
            t = threading.Thread(target=self._one, args=(slot,), daemon=True)
            t.start()
            self._threads.append(t)
            self._halt.wait(PROBE_INTERVAL)
        for t in self._threads:
            t.join(PROBE_DEADLINE + 1)

    def _one(self, slot: int) -> None:
        self.results[slot] = probe(self.host, self.port)

    @property
    def availability(self) -> float:
        return sum(self.results) / len(self.results) if self.results else float("nan")


def probe(host: str, port: int, deadline: float = PROBE_DEADLINE) -> bool:
    """One normal client: answered with a 2xx within ``deadline`` seconds (connect included)?"""
    end = time.monotonic() + deadline
    try:
        with Conn(port, host=host, timeout=deadline) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            r = c.read_response(timeout=max(0.01, end - time.monotonic()))
        return 200 <= r.status < 300 and time.monotonic() <= end
    except (OSError, ValueError):
        return False


@dataclass
class Outcome:
    attack: Attack
    availability: float
    probes: int
    duration: float
    recovery: float | None


def run_attack(host: str, port: int, kind: str, n: int, *, window: float | None = None,
               until=None, until_limit: float = MAX_ATTACK) -> Outcome:
    """Run one bounded attack with probes, then measure recovery.

    ``window``: launch probes for this long, keep the attack up until they are all judged,
    then stop it. Otherwise the attack runs until the server ended every connection or
    ``until()`` (e.g. "the server released its workers") is true, at most ``until_limit``.
    Against a ``--target`` (a routed endpoint) the bounds are hard: at most
    ``TARGET_MAX_CONNECTIONS`` connections and ``MAX_ATTACK`` seconds.
    """
    if endpoint_for(host, port) is not None:
        assert n <= TARGET_MAX_CONNECTIONS and until_limit <= MAX_ATTACK, (n, until_limit)
    attack = Attack(host, port, kind, n)
    prober = Prober(host, port)
    attack.start()
    attack.ready.wait(10)
    if attack.error is not None:
        raise attack.error
    prober.start()
    if window is not None:
        time.sleep(window)  # the probing window itself: the measurement, not a wait for a condition
        prober.stop()
        prober.join(PROBE_DEADLINE + 2)  # every probe judged while the attack still runs
    else:
        end = time.monotonic() + until_limit
        while attack.is_alive() and time.monotonic() < end and not (until is not None and until()):
            attack.join(0.05)
        prober.stop()
        prober.join(PROBE_DEADLINE + 2)
    attack.stop()
    attack.join(10)
    assert not attack.is_alive(), "the attack thread did not stop"
    duration = attack.finished - attack.started
    stopped = time.monotonic()
    recovery = None
    while time.monotonic() - stopped < RECOVERY_LIMIT:
        if probe(host, port, deadline=max(0.1, min(PROBE_DEADLINE, RECOVERY_LIMIT - (time.monotonic() - stopped)))):
            recovery = time.monotonic() - stopped
            break
        time.sleep(0.05)  # poll interval after a refused or failed probe
    return Outcome(attack, prober.availability, len(prober.results), duration, recovery)


def record(record_property, mpm: str, kind: str, level: str, n: int, o: Outcome, protected: str) -> None:
    record_property("mpm", mpm)
    record_property("attack", kind)
    record_property("level", level)
    record_property("connections", n)
    record_property("capacity", CAPACITY if level != "running-server" else "unknown")
    record_property("protection", protected)
    record_property("attack_s", round(o.duration, 2))
    record_property("probes", o.probes)
    record_property("availability", round(o.availability, 3))
    record_property("recovery_s", round(o.recovery, 3) if o.recovery is not None else f">{RECOVERY_LIMIT}")
    record_property("ended_by_server", o.attack.ended_by_server())
    lifetime = o.attack.max_lifetime()
    record_property("max_lifetime_s", round(lifetime, 2) if lifetime is not None else "n/a")
    record_property("server_answers", json.dumps(o.attack.answers()))


@pytest.fixture
def capacity_server(server_spec, request):
    """``capacity_server(required, optional=None)``: a fresh server of the spec's kind at CAPACITY
    (``suites.launching.configuration``: httpd runs our same-named MPM's configuration, a Python
    server its model MPM's pool as a fixed pool), stopped after the test. ``required``: the
    directives the test is about (a server without them: not applicable); ``optional``: settings
    that only keep a server's own deadlines out of the measurement, applied where it has them."""
    def make(required: dict, optional: dict | None = None):
        if not server_spec.launchable:
            pytest.skip("needs a configured server (capacity and read timeouts known); run with --server NAME")
        config = configuration(server_spec.name, CAPACITY_CONFIGS)
        if config is None:
            pytest.skip(f"no capacity configuration for {server_spec.name}")
        h = launch(server_spec.name, {**config, **required}, optional=optional)
        request.addfinalizer(h.stop)
        return h
    return make


#: servers that read a request head without holding a worker (our event: in its listener).
#: httpd's event MPM reads the head in a worker thread, like prefork and worker: only our event
#: goes beyond httpd here (docs/event.md), so only it has one wave of slowloris and keeps serving.
HEADS_IN_LISTENER = {"event"}


LEVELS = {"below": BELOW, "above": ABOVE}


# -- slowloris and slow body, protected by RequestReadTimeout ----------------------------------------

@pytest.mark.parametrize("level", ["below", "above"])
@pytest.mark.parametrize("kind", ["slowloris", "slowbody"])
def test_read_timeout_bounds_slow_senders(server_spec, capacity_server, record_property, kind, level):
    """RequestReadTimeout header=1 body=1: each slow sender is cut (408) within 1 s of holding
    a worker, the attack ends on its own and the server recovers. Our event also keeps
    answering probes during slowloris (heads are read in its listener); everyone else,
    httpd's event included, cuts the senders wave after wave as workers take them."""
    h = capacity_server(PROTECTED)
    mpm, n = server_spec.name, LEVELS[level]
    # what holds a worker waits for one: slowloris on our event holds none
    in_listener = kind == "slowloris" and mpm in HEADS_IN_LISTENER
    waves = 1 if in_listener else math.ceil(n / CAPACITY)
    bound = waves * (STAGE + 0.5) + LIFETIME_SLACK
    o = run_attack(h.host, h.port, kind, n, until_limit=min(MAX_ATTACK, bound + 1))
    record(record_property, mpm, kind, level, n, o, PROTECTED["RequestReadTimeout"])
    record_property("lifetime_bound_s", bound)
    assert o.attack.error is None, o.attack.error
    assert o.attack.ended_by_server() == n, (
        f"{n - o.attack.ended_by_server()} of {n} slow connections were still open after {o.duration:.1f} s")
    assert o.duration <= bound, f"the attack lasted {o.duration:.2f} s, bound {bound:.2f} s"
    if waves == 1:
        assert o.attack.max_lifetime() <= STAGE + LIFETIME_SLACK
    else:  # the senders queued for a worker, wave after wave: each wave lasts at least STAGE
        assert o.attack.max_lifetime() >= (waves - 1) * STAGE, (
            f"the last slow sender lived {o.attack.max_lifetime():.2f} s: {mpm} cut {n} in fewer than {waves} waves "
            f"of {CAPACITY} workers?")
    assert o.recovery is not None, f"no probe answered within {RECOVERY_LIMIT} s after the attack"
    if in_listener:
        assert o.availability == 1.0, f"{mpm} must keep serving during slowloris: {o.availability:.0%}"


# -- slow read, protected by Timeout --------------------------------------------------------------------

class SlowReadWatch:
    """Watches the scoreboard: first every slow reader held (a worker in W, or on event the
    listener's write-completion queue), then all of them released by the server."""

    def __init__(self, h, n: int) -> None:
        self.h, self.n = h, n
        self.t0 = time.monotonic()
        self.held_at: float | None = None
        self.released_at: float | None = None
        self.peak = 0
        self.peak_workers = 0  # most slow readers seen in a worker (W) at once
        self.peak_listener = 0  # most seen in the listener's write completion (ConnsAsyncWriting)

    def __call__(self) -> bool:
        st = status_or_none(self.h, timeout=1)
        if st is None:
            return False
        workers = st.scoreboard.count("W") - 1  # - the status request
        listener = st.conns_async_writing or 0
        holding = workers + listener
        self.peak = max(self.peak, holding)
        self.peak_workers = max(self.peak_workers, workers)
        self.peak_listener = max(self.peak_listener, listener)
        now = time.monotonic() - self.t0
        if self.held_at is None:
            if holding >= self.n:
                self.held_at = now
            return False
        if holding <= 0:
            self.released_at = now
            return True
        return False


#: who holds a slow reader of a large response while the server waits to write: "listener" (our
#: event: /bytes/N is a wsgi.file_wrapper body, so its worker sends the head and the first block and
#: hands the rest to write completion, which reads and sends it as the client takes it) or "worker"
#: (everyone else; httpd's event too: measured, its worker writes the 8 MiB file itself until the
#: Timeout -- httpd hands to write completion only what is left once the handler's writes are done)
SLOW_READER_HOLDER = {"prefork": "worker", "worker": "worker", "event": "listener",
                      "apache-prefork": "worker", "apache-worker": "worker", "apache-event": "worker"}


#: server families whose Timeout is not a write deadline, so a slow reader is never cut by it
TIMEOUT_NOT_A_WRITE_DEADLINE = {
    "gunicorn": "gunicorn has no write deadline (Timeout maps to --timeout, a watchdog that kills a worker "
                "silent that long)",
}
#: slow read: the write deadline is what is tested; the read deadlines as in the slowloris tests, where a
#: server has them (nothing is read slowly here: the request arrives whole)
SLOW_READ_LIMIT = {"Timeout": STAGE}
SLOW_READ_OPTIONAL = {"RequestReadTimeout": PROTECTED["RequestReadTimeout"]}


@pytest.mark.parametrize("level", ["below", "above"])
def test_timeout_bounds_slow_readers(server_spec, capacity_server, record_property, level):
    """Clients that never read an 8 MiB response: writes are bounded by Timeout 1, so every
    worker is released while the readers still hold their sockets (below capacity), and the
    server recovers. event keeps answering probes below capacity (write completion: the
    listener holds the unsent tail, not a worker); httpd's event holds them in workers.

    Not applicable to a server with no write timeout (granian, waitress: the launcher says so
    for Timeout) or whose Timeout is something else (gunicorn's watchdog). Without a scoreboard
    (uWSGI: --socket-timeout bounds each write) the readers cannot be seen held and released:
    below capacity the availability is recorded for a 2 s window, and recovery asserted."""
    if server_spec.launchable and family(server_spec.name) in TIMEOUT_NOT_A_WRITE_DEADLINE:
        pytest.skip(f"not applicable to {server_spec.name}: {TIMEOUT_NOT_A_WRITE_DEADLINE[family(server_spec.name)]}")
    h = capacity_server(SLOW_READ_LIMIT, SLOW_READ_OPTIONAL)
    mpm, n = server_spec.name, LEVELS[level]
    watch = SlowReadWatch(h, n) if level == "below" and "scoreboard" not in lacks(mpm) else None
    if watch is not None:
        o = run_attack(h.host, h.port, "slowread", n, until=watch, until_limit=MAX_ATTACK)
    else:
        o = run_attack(h.host, h.port, "slowread", n, window=2.0)
    record(record_property, mpm, "slowread", level, n, o, "Timeout 1")
    assert o.attack.error is None, o.attack.error
    if watch is not None:
        _check_slow_readers_released(record_property, mpm, n, o, watch)
    assert o.recovery is not None, f"no probe answered within {RECOVERY_LIMIT} s after the attack"


def _check_slow_readers_released(record_property, mpm: str, n: int, o: Outcome, watch: SlowReadWatch) -> None:
    """Below capacity, seen on the scoreboard: every reader held, then released; held where
    :data:`SLOW_READER_HOLDER` says."""
    record_property("held_at_s", watch.held_at if watch.held_at is None else round(watch.held_at, 2))
    record_property("released_at_s", watch.released_at if watch.released_at is None
                    else round(watch.released_at, 2))
    assert watch.held_at is not None, (
        f"the {n} slow readers never all held the server (at most {watch.peak}): the response fit "
        "in the socket buffers?")
    record_property("peak_held_by_workers", watch.peak_workers)
    record_property("peak_held_by_listener", watch.peak_listener)
    assert watch.released_at is not None, f"slow readers still held after {o.duration:.1f} s"
    holder = SLOW_READER_HOLDER.get(httpd_twin(mpm))
    record_property("slow_reader_holder", holder or "unknown")
    if holder == "listener":
        assert o.availability == 1.0, f"{mpm} must keep serving during a slow read: {o.availability:.0%}"
    elif holder == "worker":
        assert watch.peak_workers >= n and watch.peak_listener == 0, (
            f"{mpm} should hold the {n} slow readers in workers: at most {watch.peak_workers} in W, "
            f"{watch.peak_listener} in write completion")


# -- no read timeout ------------------------------------------------------------------------------------

#: what each server does at capacity with RequestReadTimeout off: starved (True) or not.
#: Only our event reads heads in its listener; httpd's event reads them in a worker thread,
#: gunicorn's sync worker in its process, and gthread in a pool thread (it waits up to 5 s in
#: the thread for a new connection's first bytes, then reads the whole head there, blocking);
#: uWSGI reads heads and bodies in its workers (processes or threads). granian reads heads in its
#: Rust event loop but a body in the blocking thread that runs the app (wsgi.input); waitress
#: reads the whole request, body included, in its asyncore loop before a thread runs the app
#: (measured: served through both). Every other server reads a body in a worker. mod_wsgi runs
#: inside httpd: httpd's MPM reads the request, so each modwsgi-X expects what apache-X does
#: (``suites.launching.httpd_twin``).
STARVES = {
    "slowloris": {"prefork": True, "worker": True, "event": False,
                  "apache-prefork": True, "apache-worker": True, "apache-event": True,
                  "gunicorn-sync": True, "gunicorn-gthread": True,
                  "uwsgi-processes": True, "uwsgi-threads": True, "granian": False, "waitress": False},
    "slowbody": {"prefork": True, "worker": True, "event": True,
                 "apache-prefork": True, "apache-worker": True, "apache-event": True,
                 "gunicorn-sync": True, "gunicorn-gthread": True,
                 "uwsgi-processes": True, "uwsgi-threads": True, "granian": True, "waitress": False},
}
#: the no-read-timeout test's settings that only keep a server's own deadlines past the window: Timeout
#: 5 where it bounds reads (ours, httpd, uWSGI's --socket-timeout), and a KeepAliveTimeout past it for
#: granian, whose only read deadline, the request head's, is set from KeepAliveTimeout
UNPROTECTED_OPTIONAL = {"Timeout": 5, "KeepAliveTimeout": 10}


#: servers whose Timeout is a watchdog that kills a worker silent that long (gunicorn's
#: --timeout: the sync worker cannot tell the arbiter it is alive while it waits on a client);
#: with no read timeout they may still cut a slow sender, but never before Timeout
WATCHDOG_TIMEOUT = {"gunicorn-sync"}


@pytest.mark.parametrize("kind", ["slowloris", "slowbody"])
def test_without_read_timeout_at_capacity(server_spec, capacity_server, record_property, kind):
    """RequestReadTimeout header=0 body=0, CAPACITY slow senders for a 2 s probing window.

    slowloris starves prefork and worker (every process/thread waits on a head) but not
    our event (heads are read in the listener); it starves httpd's event (heads are read
    in a worker thread) and both gunicorn workers. Slow body starves every server (the
    body is read by a worker thread on event too, as in httpd). All recover when the
    attack stops. gunicorn has no read timeout to turn off (header=0 body=0 is what it
    does anyway); its sync worker's --timeout watchdog may kill a stuck worker, never
    before Timeout.
    """
    mpm = server_spec.name
    starves = STARVES[kind].get(httpd_twin(mpm))
    if server_spec.launchable and starves is None:
        pytest.skip(f"no expectation for {mpm}")
    h = capacity_server(UNPROTECTED, UNPROTECTED_OPTIONAL)
    o = run_attack(h.host, h.port, kind, CAPACITY, window=2.0)
    record(record_property, mpm, kind, "capacity", CAPACITY, o, UNPROTECTED["RequestReadTimeout"])
    assert o.attack.error is None, o.attack.error
    if starves:
        assert o.availability == 0.0, f"{mpm} should be starved by {kind} without a read timeout: " \
                                      f"{o.availability:.0%} of probes answered"
    else:
        assert o.availability == 1.0, f"{mpm} should keep serving during {kind}: {o.availability:.0%}"
    if mpm in WATCHDOG_TIMEOUT:
        watchdog = UNPROTECTED_OPTIONAL["Timeout"]
        early = [c.ended_by_server - c.opened for c in o.attack.conns
                 if c.ended_by_server is not None and c.ended_by_server - c.opened < watchdog - 0.5]
        assert not early, f"no read timeout: cut before the {watchdog} s watchdog: {early}"
    else:
        assert o.attack.ended_by_server() == 0, "no read timeout: the server must not have cut anyone"
    assert o.recovery is not None, f"no probe answered within {RECOVERY_LIMIT} s after the attack"


# -- silent connections: AcceptFilter -------------------------------------------------------------------

#: what holds a silent connection once it is accepted: True = a worker waits on it (starved at ABOVE)
SILENT_STARVES = {"prefork": True, "worker": True, "event": False,
                  "apache-prefork": True, "apache-worker": True, "apache-event": True,
                  "gunicorn-sync": True, "gunicorn-gthread": True,
                  "uwsgi-processes": True, "uwsgi-threads": True, "granian": False, "waitress": False}
#: the read timeouts while the window runs: longer than the window, so what is held stays held (where a
#: server has them: applied as optional settings; the test itself is about AcceptFilter)
SILENT_TIMEOUTS = {"RequestReadTimeout": "header=20-40,MinRate=500 body=20,MinRate=500", "Timeout": 10}
ACCEPT_FILTERS = {"deferred": "http data", "accepted": "http none"}


@pytest.mark.parametrize("mode", ["deferred", "accepted"])
def test_silent_connections(server_spec, capacity_server, record_property, mode):
    """ABOVE connections that never send a byte, for a 2 s probing window.

    deferred (``AcceptFilter http data``, httpd's Linux default and ours): the kernel keeps
    them out of accept() (TCP_DEFER_ACCEPT), so no worker waits on them and every probe is
    answered. accepted (``AcceptFilter http none``): a server that reads a head in a worker
    (prefork, worker, httpd's three MPMs, gunicorn, uWSGI) has every worker waiting on a
    silent client until its read timeout (20 s here, longer than the window, where the
    server has one): starved; our event, granian and waitress read heads in their listener
    or event loop and keep serving. gunicorn, granian and waitress cannot defer accept: the
    deferred case is not applicable to them."""
    h = capacity_server({"AcceptFilter": ACCEPT_FILTERS[mode]}, SILENT_TIMEOUTS)
    mpm = server_spec.name
    starves = SILENT_STARVES.get(httpd_twin(mpm))
    o = run_attack(h.host, h.port, "silent", ABOVE, window=2.0)
    record(record_property, mpm, "silent", mode, ABOVE, o, f"AcceptFilter {ACCEPT_FILTERS[mode]}")
    assert o.attack.error is None, o.attack.error
    if starves is not None:
        if mode == "deferred" or not starves:
            assert o.availability == 1.0, f"{mpm} must keep serving during a silent flood ({mode}): " \
                                          f"{o.availability:.0%}"
        else:
            assert o.availability == 0.0, f"{mpm} should be starved by {ABOVE} accepted silent connections: " \
                                          f"{o.availability:.0%} of probes answered"
    assert o.recovery is not None, f"no probe answered within {RECOVERY_LIMIT} s after the attack"


# -- any server, as configured (works with --target) ----------------------------------------------------

RUNNING_N = 20
#: the most connections an attack may hold on a server the suite did not launch
TARGET_MAX_CONNECTIONS = RUNNING_N


@pytest.mark.parametrize("kind", ["slowloris", "slowbody", "slowread"])
def test_running_server_recovers(server, record_property, kind):
    """Each attack at 20 connections for a 1.5 s window against the server as it runs
    (its own configuration, ``--target`` included): availability recorded, recovery asserted.
    Against a target: 20 connections, at most MAX_ATTACK + RECOVERY_LIMIT seconds."""
    o = run_attack(server.host, server.port, kind, RUNNING_N, window=1.5)
    record(record_property, getattr(server, "mpm", None) or server.name, kind, "running-server", RUNNING_N, o,
           "as configured")
    assert o.attack.error is None, o.attack.error
    assert o.recovery is not None, f"no probe answered within {RECOVERY_LIMIT} s after the attack"


# -- lingering after a 408 --------------------------------------------------------------------------------

#: httpd's SECONDS_TO_LINGER: after mod_reqtimeout's 408 the lingering close lasts this long in all
SHORT_LINGER = 2.0
LINGER_TRICKLE = 0.5  # seconds between two bytes of the client after its 408
LINGER_WATCH = 12.0  # the most the client trickles (the long lingering close is 30 s)
#: the short linger, one trickle (a close is seen at the next byte's RST) and the usual slack
LINGER_BOUND = SHORT_LINGER + LINGER_TRICKLE + LIFETIME_SLACK
#: servers whose lingering close after a read timeout's 408 is the short one (httpd's source:
#: ap_lingering_close and event's short_linger_q honour the note mod_reqtimeout sets)
SHORT_LINGER_AFTER_408 = {"prefork", "worker", "event", "apache-prefork", "apache-worker", "apache-event"}
TCP_CLOSE = 7  # tcpi_state once the peer's RST arrived (linux/tcp_states.h)


def _peer_closed(sock: socket.socket) -> bool:
    """True once the kernel has seen the peer reset the connection (TCP_INFO state CLOSE)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_CLOSE


def linger_after_408(host: str, port: int) -> tuple[float | None, float | None]:
    """(seconds from connect to the 408, seconds from the 408 to the server's close); None where it
    did not happen. The client sends a partial head, stalls, reads the 408, then sends one byte
    every LINGER_TRICKLE s for at most LINGER_WATCH s: the server's close shows as its RST to
    the next byte (or a failed send)."""
    opened = time.monotonic()
    with Conn(port, host=host, timeout=10) as c:
        c.send(HEADS["slowloris"])
        try:
            r = c.read_response(timeout=10)
        except (OSError, ValueError):
            return None, None
        if r.status != 408:
            return None, None
        answered = time.monotonic()
        while time.monotonic() - answered < LINGER_WATCH:
            try:
                c.sock.send(b"X")
            except OSError:
                return answered - opened, time.monotonic() - answered
            step_end = time.monotonic() + LINGER_TRICKLE
            while time.monotonic() < step_end:
                if _peer_closed(c.sock):
                    return answered - opened, time.monotonic() - answered
                time.sleep(0.02)  # polling the local TCP state between two bytes
        return answered - opened, None


def test_linger_after_408_is_short(server_spec, capacity_server, record_property):
    """RequestReadTimeout header=1: a slow sender gets its 408, then keeps its connection open
    and trickles a byte every 0.5 s. httpd then lingers 2 s at most (mod_reqtimeout asks for the
    short lingering close), so the client cannot hold a process or thread for MAX_SECS_TO_LINGER
    (30 s) more; ours the same on every MPM. Recorded for every server, asserted where the
    expectation is known. gunicorn: not applicable (no read deadline, so no 408)."""
    h = capacity_server(PROTECTED)
    mpm = server_spec.name
    to_408, linger = linger_after_408(h.host, h.port)
    record_property("mpm", mpm)
    record_property("attack", "linger-after-408")
    record_property("protection", PROTECTED["RequestReadTimeout"])
    record_property("answered_408_after_s", round(to_408, 2) if to_408 is not None else "no 408")
    record_property("linger_after_408_s", round(linger, 2) if linger is not None else f">{LINGER_WATCH}")
    record_property("linger_bound_s", LINGER_BOUND)
    assert to_408 is not None, f"{mpm} did not answer the stalled head with 408"
    if httpd_twin(mpm) in SHORT_LINGER_AFTER_408:
        assert linger is not None, f"{mpm} still lingered {LINGER_WATCH} s after its 408"
        assert linger <= LINGER_BOUND, f"{mpm} lingered {linger:.2f} s after its 408, bound {LINGER_BOUND} s"
