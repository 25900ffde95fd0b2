"""The event MPM's child: worker threads that handle requests, one listener that does all the waiting.

httpd's ``server/mpm/event/event.c`` in Python: the same process and thread
layout as worker (main thread on the pipe of death and signals, the watchdog,
ThreadsPerChild worker threads: threaded.ThreadedChild), but its listener strategy
(:class:`EventListener`) owns one epoll set holding the listening sockets **and every
parked connection**:

* **keep-alive**: after a response on a persistent connection the worker
  hands the connection back to the listener and is free at once; the idle
  connection waits in epoll, holding no thread, until its next request or
  KeepAliveTimeout;
* **lingering close**: a finished connection is shut down for writing by the
  worker and drained by the listener (2 s per read, 30 s at most; 2 s in all
  after a read timeout's 408, httpd's short linger queue);
* the connection cap: the listener accepts only while an idle worker exists
  and ``open - lingering < ThreadsPerChild + idle workers x
  AsyncRequestWorkerFactor``; otherwise the listeners leave the epoll set and
  the process shows ``not_accepting`` in the scoreboard;
* when every worker is busy, parked keep-alive connections are closed rather
  than left waiting (httpd: "All workers are busy or dying, will shutdown N
  keep-alive connections"), so their clients reconnect, maybe elsewhere.

**Beyond httpd** (httpd's event hands a new connection to a worker that then
blocks reading the request): the listener also reads **request heads**,
non-blocking, so a client that dribbles its header bytes (slowloris) holds no
worker thread. A head must arrive within RequestReadTimeout's header stage
(default 20 s, extended by 1 s per 500 bytes up to 40 s — mod_reqtimeout's
defaults, built in here); otherwise a partial request gets 408 and an idle
one is closed. A worker gets a connection only with a complete head, and
reads the body itself (blocking, with Timeout).

Requests are handled synchronously in worker threads (WSGI), exactly like
prefork and worker; only the waiting is asynchronous, write completion included:
a response tail the kernel cannot take at once is finished by the listener, and
so is the rest of a ``wsgi.file_wrapper`` body with Content-Length whose file
reads at once (servers.wsgi.FileWrapper): the listener reads it block by block
as the client takes it, as httpd's event leaves a file bucket to write completion.

Every wait of a parked connection (its head, keep-alive, lingering close, write
completion) ends at one deadline, ``_Parked.deadline``, kept in one timer heap
with **at most one live entry per connection**: a wait that is extended (MinRate's
extra seconds, a lingering read, write progress, the next keep-alive wait) only
moves the deadline, and its entry, when it comes due, is pushed again for the
rest. Memory stays bounded by the connections however their bytes arrive
(one entry per recv took a child from 18 to 145 MB under 1-byte segments).
"""

from __future__ import annotations

import collections
import heapq
import os
import itertools
import select
import socket
import threading
import time

from .child import ChildEnv, common_child_setup, serve_context
from .listeners import ResourceShortage, accept_connection, drain_and_close
from .scoreboard import GRACEFUL, READY
from .serve import (LINGER_READ, LINGER_TOTAL, PARK_KEEPALIVE, RECV_SIZE, Connection, log_app_error,
                    read_request, serve_requests)
from .threaded import ThreadedChild, drain_eventfd
from ..http.errors import ClientDisconnected, ProtocolError

# connection states in the listener
_READ, _KEEPALIVE, _LINGER, _BUSY, _WRITE = range(5)
ACCEPT_BATCH = 16
#: most connections a child holds while they send their request heads (see _below_limit)
READING_LIMIT = 512
#: how long a parked keep-alive connection may still wait once the child is dying
DYING_KEEPALIVE = 0.5
#: the most bytes write completion sends to one connection per wake-up: a fast reader of a
#: large file must not keep the listener from its other connections (epoll is level-triggered:
#: a socket still writable is reported again at once)
WRITE_BUDGET = 1 << 20
#: a parked connection's epoll events: one-shot, so an event disarms it and nothing needs removing
#: when a worker takes it; re-arming is one EPOLL_CTL_MOD (its descriptor stays in the set for life)
_IN = select.EPOLLIN | select.EPOLLONESHOT
_OUT = select.EPOLLOUT | select.EPOLLONESHOT


class _Parked:
    """A connection as the listener sees it: the shared Connection plus its wait state."""

    __slots__ = ("conn", "fd", "state", "timer", "deadline", "hard_deadline", "linger_end", "blocking_ready",
                 "writer", "after_write", "fired")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fd = conn.sock.fileno()
        self.state = _READ
        self.timer: tuple | None = None  # its live entry in the listener's timer heap (see _arm)
        self.deadline = 0.0  # when the current wait ends
        self.hard_deadline = 0.0
        self.linger_end = 0.0
        self.blocking_ready = False  # SO_RCVTIMEO / SO_SNDTIMEO already set for worker use
        self.writer = _Writer(conn.sock)
        conn.raw_send = self.writer.send  # Connection.send marks its errors as the client's
        conn.defer_body = self.writer.defer  # a wsgi.file_wrapper body goes on in the listener
        self.after_write = "close"  # what follows write completion: keepalive, linger or close
        #: readable before its worker's hand-back was taken (the worker re-armed it first): read it then
        self.fired = False


class SourceError(Exception):
    """The read() of a deferred file_wrapper body raised: the application's error (its cause)."""


class _Writer:
    """Response output for a worker: what the kernel takes at once is sent, a tail is left pending.

    Each write first finishes the pending tail of the previous one (blocking, bounded
    by Timeout through SO_SNDTIMEO), then sends without blocking; whatever does not
    fit stays pending. When the response is complete the worker hands a connection
    with a pending tail to the listener, which finishes it on writability: httpd's
    write completion (``W`` state, ConnsAsyncWriting).

    A ``wsgi.file_wrapper`` body may leave more than a tail: a ``source`` (the
    FileWrapper) with ``owed`` bytes still to read from it (:meth:`defer`), which
    the listener reads one block at a time as the kernel takes them (:meth:`pump`),
    so a slow reader costs a block of memory and no thread. Nothing else is written
    on the connection until it is done: the worker hands a pipelined request back.
    """

    __slots__ = ("sock", "pending", "source", "owed", "short")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending: bytes | memoryview = b""
        self.source = None  # a FileWrapper whose rest the listener sends; its close() is ours
        self.owed = 0  # bytes still to read from it (what its Content-Length has left)
        self.short = False  # it ended before its Content-Length: the connection must close

    def send(self, data: bytes) -> None:
        """Write ``data`` after any pending tail; leave what the kernel cannot take now."""
        if self.pending:
            self.sock.sendall(self.pending)
            self.pending = b""
        try:
            n = self.sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            n = 0
        if n < len(data):
            # a memoryview: the listener trims it as it goes without copying the rest
            self.pending = memoryview(data)[n:]

    def defer(self, source, owed: int) -> None:
        """Take the rest of a FileWrapper body (WSGIResponse.defer): ``owed`` bytes to send
        after the pending tail, and the wrapper's close()."""
        self.source = source
        self.owed = owed

    def pump(self, budget: int) -> int:
        """Write completion: send the pending tail, then blocks read from the source, none
        beyond ``owed``, without blocking, until the kernel takes no more, the source is
        done or about ``budget`` bytes went out. Returns the bytes sent.

        Raises OSError when the socket fails, SourceError when the source's read() does.
        """
        sock = self.sock
        sent = 0
        while True:
            pending = self.pending
            if pending:
                try:
                    n = sock.send(pending, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return sent
                sent += n
                if n < len(pending):
                    self.pending = (pending if type(pending) is memoryview else memoryview(pending))[n:]
                    return sent
                self.pending = b""
            if self.source is None or self.owed <= 0 or self.short or sent >= budget:
                return sent
            self.pending = self._next_block()

    def _next_block(self) -> bytes | memoryview:
        """The source's next block, cut to what is owed; an empty one marks the body short."""
        owed = self.owed
        try:
            block = self.source.read_block(owed)
            if not isinstance(block, (bytes, bytearray, memoryview)):
                raise TypeError(f"the file-like's read() returned {type(block).__name__}, not bytes (PEP 3333)")
        except Exception as exc:
            raise SourceError(exc) from exc
        if len(block) > owed:
            block = memoryview(block)[:owed]  # never more than Content-Length: the client would desync
        if not block:
            self.short = True
        self.owed = owed - len(block)
        return block


class _Idle:
    """One idle worker's wait: an eventfd of its own, written when a job (or None, to exit) is
    handed to it.

    An eventfd rather than a lock: ``os.eventfd_write`` releases the interpreter lock for its
    system call, so the worker it wakes can take that lock at once instead of waking, finding
    it held by the listener and sleeping again (docs/performance.md, "Where an event request's
    time goes": 4-8 us less CPU per request than a lock's release).
    """

    __slots__ = ("fd", "job")

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        self.job = None

    def wait(self):
        """Block until a job is handed over; return it (None: exit)."""
        os.eventfd_read(self.fd)
        job, self.job = self.job, None
        return job

    def give(self, job) -> None:
        """Hand ``job`` over and wake the worker."""
        self.job = job
        os.eventfd_write(self.fd, 1)

    def close(self) -> None:
        """Release the eventfd (the worker thread is done)."""
        os.close(self.fd)


class JobQueue:
    """Complete requests waiting for a worker thread, and the idle workers waiting for one.

    A job goes straight to the worker that went idle last (a stack, as httpd's worker
    queue keeps its idle workers: that thread's stack and caches are still warm), through
    the eventfd it waits on (_Idle): one wake-up, and none of ``threading.Condition``'s
    per-wait lock allocation and Python-level bookkeeping. Jobs queue only while every
    worker is busy (the listener's connection cap keeps that short).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque()
        self._idle: list[_Idle] = []
        self.busy = 0
        self.terminated = False
        self.on_idle = lambda: None

    @property
    def idlers(self) -> int:
        """Workers waiting for a job."""
        return len(self._idle)

    def free_workers(self) -> int:
        """Idle workers not already promised to a queued request."""
        return len(self._idle) - len(self._items)

    def push(self, job) -> None:
        """Hand one (parked connection, request) job to an idle worker, or queue it."""
        with self._lock:
            if not self._idle:
                self._items.append(job)
                return
            idle = self._idle.pop()
            self.busy += 1
        idle.give(job)

    def pop(self, idle: _Idle):
        """Announce this worker idle (``idle`` is its own wait) and wait for a job; None once
        terminated."""
        with self._lock:
            if self._items:
                self.busy += 1
                return self._items.popleft()
            if self.terminated:
                return None
            self._idle.append(idle)
            first = len(self._idle) == 1
        if first:
            self.on_idle()  # the first free worker: the listener may be waiting for one
        return idle.wait()

    def done(self) -> None:
        """A popped job is finished (its connection handed back or closed)."""
        with self._lock:
            self.busy -= 1

    def terminate(self) -> None:
        """Wake every idle worker: the workers finish what is queued and exit."""
        with self._lock:
            self.terminated = True
            idle, self._idle = self._idle, []
        for w in idle:
            w.give(None)


class EventListener:
    """event's listener strategy (threaded.Listener): one epoll set for the listeners and every
    waiting connection; worker threads get only connections with a complete request head."""

    def __init__(self, child: ThreadedChild) -> None:
        self.child = child
        self.env = env = child.env
        self.sb = child.sb
        self.slot = child.slot
        self.budget = child.budget
        self.threads_per_child = child.threads_per_child
        cfg = env.cfg
        self.jobs = JobQueue()
        self.handback: collections.deque = collections.deque()
        self.factor = float(cfg.AsyncRequestWorkerFactor)  # type: ignore[attr-defined]
        self.ka_timeout = float(cfg.KeepAliveTimeout)  # type: ignore[attr-defined]
        rrt = cfg.RequestReadTimeout.header  # type: ignore[attr-defined]
        # without mod_reqtimeout httpd would wait Timeout for a head; the header stage is on by default
        self.header_timeout = rrt.timeout or float(cfg.Timeout)  # type: ignore[attr-defined]
        self.header_max = rrt.max_timeout if rrt.timeout else 0.0
        self.header_rate = rrt.min_rate if rrt.timeout else 0
        self.timeout = float(cfg.Timeout)  # type: ignore[attr-defined]
        self.counts = [0, 0, 0, 0, 0]  # connections by state (_READ, _KEEPALIVE, _LINGER, _BUSY, _WRITE)
        self._published: tuple | None = None
        self._next_busy_check = 0.0
        # connections reading their head at once; well under the usual 1024 descriptors
        self.reading_limit = max(READING_LIMIT, 4 * self.threads_per_child)
        self.jobs.on_idle = child.wake_listener  # a listener waiting for a free worker may accept again
        #: when the listener's epoll wait times out; 0 while it is awake and will still take the
        #: hand-backs (see _hand_back_keepalive)
        self.wake_at = 0.0
        #: complete requests found in this turn of the loop, for the workers (see _start_ready)
        self.ready: list = []
        #: held by a worker from its keep-alive hand-back to its re-arm, and by the listener to close
        self.arm_lock = threading.Lock()

    def stop_waiting(self) -> None:
        """Nothing to wake but the listener's epoll (the child writes its eventfd)."""

    def finish(self) -> None:
        """Close the listeners if the loop did not (it does as soon as it stops accepting) and
        release the workers."""
        if not self.child.draining:
            self._stop_listening(take_backlog=False)
        self.jobs.terminate()

    def _stop_listening(self, take_backlog: bool) -> None:
        # listeners.drain_and_close; see ThreadedChild.is_stopping for why responses end
        # their connections only from here on
        drain_and_close(self.env, self._adopt, take_backlog=take_backlog)
        self.child.listeners_closed()

    def _set_state(self, p: _Parked, state: int) -> None:
        self.counts[p.state] -= 1
        self.counts[state] += 1
        p.state = state

    # -- listener thread ---------------------------------------------------------------
    def listen(self) -> None:
        """The event loop: accept below the connection cap, read heads, hand complete ones to
        the workers, park keep-alive and lingering connections, finish writes, expire waits."""
        env = self.env
        child = self.child
        self.ep = ep = select.epoll()
        listeners = {lst.fileno(): lst for lst in env.listeners}
        self.conns: dict[int, _Parked] = {}
        self.timers: list = []  # heap of (deadline, seq, parked): see _arm
        self._seq = itertools.count()
        self.base_ctx = serve_context(env, 0, child.is_stopping, multithread=True)
        self.base_ctx.linger = self._linger_here  # what the listener answers itself, it drains itself
        ep.register(child.listen_wake, select.EPOLLIN)
        listening = False
        accepted = 0
        quiesced = False
        try:
            while True:
                stopping = child.stopping
                if stopping and not quiesced:
                    quiesced = True
                    self.sb.set_process(self.slot, quiescing=True)
                    self._shorten_keepalive(time.monotonic())
                # -- accept only below the connection cap (httpd's connections_above_limit)
                want = not stopping and self._below_limit()
                if want != listening:
                    for fd in listeners:
                        if want:
                            ep.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
                        else:
                            ep.unregister(fd)
                    listening = want
                    self.sb.set_process(self.slot, not_accepting=not want)
                if stopping and not child.draining:
                    self._stop_listening(take_backlog=True)  # (out of the epoll set just above)
                    listeners = {}  # their descriptor numbers may be reused from now on
                if stopping and not self.handback and self._only_abandoned_left():
                    return
                self._publish()
                timeout = self._next_timeout()
                self._start_ready()
                self.wake_at = time.monotonic() + timeout
                if self.handback:
                    timeout = 0  # handed back before wake_at was set: its worker did not wake us
                try:
                    events = ep.poll(timeout)
                except InterruptedError:
                    events = []
                self.wake_at = 0.0
                # first: a worker re-arms a keep-alive connection before handing it back, so its
                # next request may already be among the events
                self._take_handbacks()
                for fd, mask in events:
                    if fd == child.listen_wake:
                        drain_eventfd(fd)
                    elif fd in listeners:
                        accepted += self._accept(listeners[fd], accepted)
                    else:
                        p = self.conns.get(fd)
                        if p is None:
                            pass
                        elif p.state == _BUSY:
                            p.fired = True  # not expected (hand-backs are taken first); read it then
                        elif p.state == _WRITE:
                            self._writable(p)
                        else:
                            self._readable(p)
                self._expire(time.monotonic())
                if self.budget and accepted >= self.budget and not child.stopping:
                    env.log.log("debug", f"MaxConnectionsPerChild ({self.budget}) reached, exiting")
                    child.begin_graceful()
        finally:
            for p in list(self.conns.values()):
                self._close(p)
            ep.close()

    def _start_ready(self) -> None:
        """Hand this turn's complete requests to the workers, right before the listener waits.

        A worker woken earlier would only wait for the interpreter lock while the listener
        finishes its turn: each such wait is one more futex sleep and wake-up (measured:
        docs/performance.md). Pushed here, the listener releases the lock in epoll_wait
        about when the worker is scheduled.
        """
        ready = self.ready
        if ready:
            push = self.jobs.push
            for job in ready:
                push(job)
            ready.clear()

    def _free_workers(self) -> int:
        """Idle workers not promised to a request, this turn's included."""
        return self.jobs.free_workers() - len(self.ready)

    def _only_abandoned_left(self) -> bool:
        """Nothing left to serve but requests the watchdog abandoned (their threads are hung:
        the process's exit ends them; see serve.Watch)."""
        if not self.conns and self.jobs.busy == 0:
            return True
        stuck = [w.conn for w in self.child.watches if w.abandoned]
        return self.jobs.busy <= len(stuck) and all(p.conn in stuck for p in self.conns.values())

    def _below_limit(self) -> bool:
        """httpd event: accept while a worker is idle and open - lingering < TPC + idle x factor.

        Beyond httpd: connections still sending their head are not counted there
        (they hold no worker here), so slow-header clients cannot fill the cap and
        lock everyone out; they have their own bound, READING_LIMIT, and the
        header stage of RequestReadTimeout bounds how long each may take.
        """
        idle = self._free_workers()
        if idle <= 0:
            return False
        c = self.counts
        if c[_READ] >= self.reading_limit:
            return False
        return c[_KEEPALIVE] + c[_BUSY] + c[_WRITE] < self.threads_per_child + idle * self.factor

    def _next_timeout(self) -> float:
        hq = self.timers
        while hq and hq[0][2].timer is not hq[0]:
            heapq.heappop(hq)  # superseded by an earlier deadline, or its connection closed
        if hq:
            return min(1.0, max(0.0, hq[0][0] - time.monotonic()))
        return 1.0

    # -- timers: one deadline per connection -------------------------------------------
    def _arm(self, p: _Parked, deadline: float) -> None:
        """Make ``p``'s current wait end at ``deadline``, with at most one live heap entry.

        A later deadline than the queued entry's only moves ``p.deadline``: the entry,
        when due, is pushed again for the rest (_expire). Only an earlier one needs a new
        entry; the old one is then superseded (``p.timer`` no longer names it) and skipped
        when it comes up. Superseded entries are few (one per shortened wait), and the
        heap is rebuilt from the live ones if they ever outnumber the connections.
        """
        p.deadline = deadline
        t = p.timer
        if t is None or t[0] > deadline:
            p.timer = t = (deadline, next(self._seq), p)
            heapq.heappush(self.timers, t)
            if len(self.timers) > 2 * len(self.conns) + 64:
                self._compact_timers()

    def _compact_timers(self) -> None:
        """Rebuild the heap from the live entries only (in place: callers may hold it)."""
        hq = self.timers
        hq[:] = [p.timer for p in self.conns.values() if p.timer is not None]
        heapq.heapify(hq)

    def _publish(self) -> None:
        c = self.counts
        total = c[_READ] + c[_KEEPALIVE] + c[_LINGER] + c[_BUSY] + c[_WRITE]
        snap = (total, c[_KEEPALIVE], c[_LINGER], c[_WRITE])
        if snap != self._published:
            self._published = snap
            self.sb.set_async_counters(self.slot, connections=total, write_completion=c[_WRITE],
                                       keep_alive=c[_KEEPALIVE], lingering_close=c[_LINGER])

    # -- connections -----------------------------------------------------------------
    def _accept(self, lst: socket.socket, accepted: int) -> int:
        n = 0
        while n < ACCEPT_BATCH and (not self.budget or accepted + n < self.budget) and self._below_limit():
            try:
                got = accept_connection(lst, self.env.log.log)
            except ResourceShortage:
                self.child.short_of_resources()
                break
            if got is None:
                break
            n += 1
            self._adopt(*got)
        return n

    def _adopt(self, sock: socket.socket, addr) -> None:
        """Start reading an accepted connection's request head in the listener. The socket
        stays blocking (a worker sets it up for its body reads and writes, with kernel
        timeouts, when it first serves it); the listener only ever uses MSG_DONTWAIT."""
        p = _Parked(Connection(sock, addr, self.base_ctx))
        self.conns[p.fd] = p
        self.counts[_READ] += 1
        self.ep.register(p.fd, _IN)
        self._start_header_timer(p, time.monotonic())

    def _start_header_timer(self, p: _Parked, now: float) -> None:
        deadline = now + self.header_timeout
        p.hard_deadline = now + self.header_max if self.header_max else deadline
        self._arm(p, deadline)

    def _readable(self, p: _Parked) -> None:
        sock = p.conn.sock
        try:
            data = sock.recv(RECV_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self._rearm(p, _IN)
            return
        except OSError:
            data = b""
        if p.state == _LINGER:
            now = time.monotonic()
            if not data or now >= p.linger_end:
                self._close(p)
            else:
                self._arm(p, min(now + LINGER_READ, p.linger_end))  # the per-read linger timeout restarts
                self._rearm(p, _IN)
            return
        if not data:
            self._close(p)
            return
        now = time.monotonic()
        if p.state == _KEEPALIVE:
            self._set_state(p, _READ)
            self._start_header_timer(p, now)
        elif self.header_rate:
            # mod_reqtimeout MinRate: every min_rate bytes buy one more second, up to the maximum
            self._arm(p, min(p.deadline + len(data) / self.header_rate, p.hard_deadline))
        p.conn.reader.feed(data)
        self._dispatch(p)

    def _rearm(self, p: _Parked, events: int) -> None:
        """Wait for the next event of a connection the listener keeps (one-shot: see _IN)."""
        try:
            self.ep.modify(p.fd, events)
        except (OSError, ValueError):  # ValueError: the listener has exited
            self._close(p)

    def _dispatch(self, p: _Parked) -> None:
        """Hand a connection with a complete request head to the workers (serve.read_request
        parses what the listener read; a protocol error is answered and lingered on here);
        with the head still incomplete, wait for more of it. Its one-shot event has fired:
        nothing is armed now."""
        req = read_request(p.conn, wait=False)
        if req.__class__ is str:
            self._rearm(p, _IN)  # the head is not complete yet
            return
        if req is None:
            if p.state != _LINGER:
                self._close(p)  # closed by the client, or its error answer could not be sent
            return
        self._set_state(p, _BUSY)
        self.ready.append((p, req))  # pushed to the workers just before the listener waits

    def _fail(self, p: _Parked, exc: ProtocolError) -> None:
        """Answer a protocol error from the listener (Connection.fail: a small error response
        through the non-blocking writer, then :meth:`_linger_here`)."""
        p.conn.fail(exc, method=p.conn.reader.method_hint)
        if p.state != _LINGER:
            self._close(p)

    def _linger_here(self, conn: Connection) -> None:
        """The listener's ServeContext.linger: shut down and drain a connection it answered itself."""
        p = self.conns.get(conn.sock.fileno())
        if p is not None and p.conn is conn:
            self._shut_and_linger(p)

    def _shut_and_linger(self, p: _Parked) -> None:
        """Shut the write side and park the connection in lingering close, reading."""
        try:
            p.conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(p)
            return
        self._park_linger(p)
        self._rearm(p, _IN)

    def _park_linger(self, p: _Parked) -> None:
        """Drain a connection shut down for writing: 2 s per read and 30 s in all (httpd's
        linger_q), or 2 s in all after a read timeout's 408 (its short_linger_q: mod_reqtimeout's
        "short-lingering-close" note) and when the child is stopping."""
        now = time.monotonic()
        self._set_state(p, _LINGER)
        short = p.conn.short_linger or self.child.stopping
        p.linger_end = now + (LINGER_READ if short else LINGER_TOTAL)
        self._arm(p, min(now + LINGER_READ, p.linger_end))

    def _close(self, p: _Parked) -> None:
        self._release(p)  # a file_wrapper body is closed whatever ends the connection
        if self.conns.pop(p.fd, None) is None:
            return
        self.counts[p.state] -= 1
        p.timer = None  # its heap entry, if any, is skipped when it comes up
        with self.arm_lock:  # a worker's re-arm must not reach a reused descriptor number
            try:
                self.ep.unregister(p.fd)  # registered for life (see _IN)
            except (OSError, ValueError):
                pass
            try:
                p.conn.sock.close()
            except OSError:
                pass

    def _close_keepalive(self, why: str) -> None:
        """httpd: "All workers are busy or dying, will shutdown N keep-alive connections"."""
        parked = [p for p in self.conns.values() if p.state == _KEEPALIVE]
        if parked:
            self.env.log.log("debug", f"All workers are {why}, will shutdown {len(parked)} keep-alive connections")
        for p in parked:
            self._close(p)

    def _writable(self, p: _Parked) -> None:
        """Write completion: send the pending tail and the rest of a file_wrapper body; then
        what the response decided (a body that fell short of its Content-Length: a close)."""
        w = p.writer
        try:
            n = w.pump(WRITE_BUDGET)
        except SourceError as exc:
            # as an application error after the head was sent: logged, the response aborted
            log_app_error(self.base_ctx, p.conn, "application error in the file wrapper's read()", exc.__cause__)
            self._close(p)
            return
        except OSError:
            self._close(p)
            return
        if w.source is not None and (w.owed <= 0 or w.short):
            self._release(p)  # every byte is read: the file is closed before the last ones are sent
        if w.pending or w.source is not None:
            if n:  # progress: Timeout starts again, as httpd re-queues the connection
                self._arm(p, time.monotonic() + self.timeout)
            self._rearm(p, _OUT)
            return
        # RFC 9112 §6.3: the client of a short body waits for bytes that never come: close
        self._after_response(p, "linger" if w.short else p.after_write, time.monotonic())

    def _release(self, p: _Parked) -> None:
        """close() a deferred file_wrapper body, once (PEP 3333: the server always calls it)."""
        w = p.writer
        source = w.source
        if source is None:
            return
        w.source = None
        try:
            source.close()
        except Exception as exc:
            log_app_error(self.base_ctx, p.conn, "application error in close()", exc)

    def _after_response(self, p: _Parked, what: str, now: float) -> None:
        """Park a connection whose response is fully written: keep-alive, lingering close or close."""
        if what == "keepalive":
            self._park_keepalive(p, now)
            self._rearm(p, _IN)
        elif what == "read":
            # pipelined bytes are buffered: a head still incomplete, or a request that waited
            # for a file_wrapper body to be written first (then it goes to a worker now)
            self._set_state(p, _READ)
            self._start_header_timer(p, now)
            self._dispatch(p)
        elif what == "linger":
            self._shut_and_linger(p)
        else:
            self._close(p)

    def _park_keepalive(self, p: _Parked, since: float) -> None:
        """Wait for the next request: KeepAliveTimeout from ``since`` (DYING_KEEPALIVE when dying)."""
        self._set_state(p, _KEEPALIVE)
        self._arm(p, since + (DYING_KEEPALIVE if self.child.stopping else self.ka_timeout))

    def _shorten_keepalive(self, now: float) -> None:
        """Dying: parked keep-alive connections get DYING_KEEPALIVE more seconds, not KeepAliveTimeout.

        httpd closes them at once; a client that is just sending its next request
        would then see the connection close under it. The short grace lets such a
        request be answered (with ``Connection: close``) while idle clients go quickly.
        """
        for p in self.conns.values():
            if p.state == _KEEPALIVE:
                self._arm(p, min(p.deadline, now + DYING_KEEPALIVE))

    def _take_handbacks(self) -> None:
        handback = self.handback
        now = time.monotonic()
        while handback:
            p, what = handback.popleft()
            self.jobs.done()
            p.conn.ctx = self.base_ctx  # what the listener answers itself it logs and lingers on itself
            if self.conns.get(p.fd) is not p:
                self._release(p)  # closed meanwhile (the child is exiting)
                continue
            if what.__class__ is float:
                # a keep-alive wait its worker armed itself (_hand_back_keepalive), since `what`
                self._park_keepalive(p, what)
                if p.fired:
                    p.fired = False
                    self._readable(p)
                continue
            w = p.writer
            if (w.pending or w.source is not None) and what != "close":
                # write completion: the listener finishes the response, then does `what`
                p.after_write = what
                self._set_state(p, _WRITE)
                self._arm(p, now + self.timeout)
                self._rearm(p, _OUT)
                continue
            self._after_response(p, what, now)

    def _expire(self, now: float) -> None:
        hq = self.timers
        while hq and hq[0][0] <= now:
            entry = heapq.heappop(hq)
            p = entry[2]
            if p.timer is not entry:
                continue  # superseded, or its connection is closed
            p.timer = None
            if p.state == _BUSY:
                continue  # a worker has it; its next wait arms a new timer
            if p.deadline > now:
                # the wait was extended meanwhile: one entry again, for the rest
                p.timer = (p.deadline, next(self._seq), p)
                heapq.heappush(hq, p.timer)
                continue
            self._timed_out(p)
        # httpd's queue maintenance: with every worker busy, parked keep-alive connections go
        if now >= self._next_busy_check:
            self._next_busy_check = now + 1.0
            if self._free_workers() <= 0 and self.counts[_KEEPALIVE]:
                self._close_keepalive("busy")

    def _timed_out(self, p: _Parked) -> None:
        """A parked connection's wait is over: a partial head gets 408, anything else is closed
        (an idle keep-alive or head-less connection silently, as httpd)."""
        if p.state == _READ and p.conn.reader.buffered:
            p.conn.short_linger = True  # mod_reqtimeout: its 408 is followed by the 2 s linger
            self._fail(p, ProtocolError(408, "request head not received within RequestReadTimeout"))
        else:
            self._close(p)

    # -- worker threads ----------------------------------------------------------------
    def serve(self, i: int) -> None:
        """Worker thread ``i``: take a connection with a complete head, serve it until it must
        wait again, hand it back to the listener with the verdict; repeat until released."""
        child = self.child
        ctx = serve_context(self.env, i, child.is_stopping, multithread=True, watch=child.watches[i])
        lingering: list = []
        ctx.linger = lingering.append  # the listener shuts the socket down and drains it (after any write)
        set_status = ctx.set_status
        jobs = self.jobs
        idle = _Idle()
        while True:
            set_status(READY)
            job = jobs.pop(idle)
            if job is None:
                idle.close()
                break
            p, req = job
            outcome = "close"
            try:
                outcome = self._serve(p, req, ctx, lingering)
            except BaseException as exc:  # never let one connection take the thread down
                child.log_exception(f"worker thread {i}", exc)
            finally:
                lingering.clear()
                if outcome != PARK_KEEPALIVE or not self._hand_back_keepalive(p):
                    self.handback.append((p, outcome))
                    child.wake_listener()
        set_status(GRACEFUL)

    def _hand_back_keepalive(self, p: _Parked) -> bool:
        """The common end of a request: the worker itself re-arms the connection for its next
        request, then hands it back, waking the listener only when the keep-alive deadline
        comes before the listener's own wake-up (httpd's event does the same: its worker adds
        the socket to the pollset and wakes the listener only for an earlier expiry).

        Saves the listener a wake-up (eventfd write and read, an epoll_wait and a GIL
        handoff) per request. Returns False when the listener must do it: a write to complete,
        the child stopping, or the re-arm failing.
        """
        w = p.writer
        if w.pending or w.source is not None or self.child.stopping:
            return False
        now = time.monotonic()
        # hand-back first, so that the listener has it before the connection's next event (it
        # takes hand-backs before events); under arm_lock, so that it cannot close the
        # connection, and free its descriptor number, before the re-arm
        with self.arm_lock:
            self.handback.append((p, now))
            try:
                self.ep.modify(p.fd, _IN)
            except (OSError, ValueError):  # ValueError: the listener has exited
                p.fired = True  # the listener reads it at once, then re-arms it or closes it
        if p.fired or now + self.ka_timeout < self.wake_at:
            self.child.wake_listener()
        return True

    def _serve(self, p: _Parked, req, ctx, lingering: list) -> str:
        """Run requests on one connection until it must wait again (serve.serve_requests
        without waiting); returns the hand-back verdict: keepalive, read, linger or close."""
        conn = p.conn
        conn.ctx = ctx
        try:
            if not p.blocking_ready:
                conn.setup_blocking(head_read=True)
                p.blocking_ready = True
            return serve_requests(conn, req, wait=False) or ("linger" if lingering else "close")
        except ClientDisconnected:
            # the client's socket failed (serve.ClientGone); the application's own errors,
            # OSErrors included, were answered and logged by handle_request
            return "close"


def child_main(env: ChildEnv) -> int:
    """Run one event child until it is told to exit; returns its exit status."""
    common_child_setup(env)
    return ThreadedChild(env, EventListener).run()
