"""The worker MPM's child: ThreadsPerChild worker threads fed by one listener thread.

httpd's ``server/mpm/worker/worker.c`` child, in Python threads:

* the **main thread** installs the SIGUSR1 (graceful) handler and waits on the
  pipe of death and a signal wake-up pipe; it is the only thread that reacts
  to the parent (Python runs signal handlers in the main thread only, which
  is httpd's design too: every other thread blocks the signals);
* **ThreadsPerChild worker threads**, each owning scoreboard slot
  ``(slot, thread)``: announce itself idle (``_``), pop a connection from the
  queue, run the *whole* connection through :func:`serve.serve_connection`
  (every keep-alive request, the keep-alive wait in ``K`` and the lingering
  close), repeat. An idle keep-alive client pins its thread, exactly as in
  httpd; that is the "keep-alive problem" the event MPM solves;
* **one listener thread** that first **reserves an idle worker** and only
  then waits for and accepts a connection, which it pushes into a bounded
  FIFO (capacity ThreadsPerChild) shared with the workers. A child whose
  threads are all busy therefore never accepts: the connection stays in the
  kernel's backlog for another child, the property gunicorn's gthread worker
  (which accepts eagerly and queues internally) lacks.

Graceful exit (a byte on the pipe of death, SIGUSR1, a generation change seen
in the scoreboard, or MaxConnectionsPerChild spent): the listener stops
accepting, marks the process ``quiescing`` in the scoreboard and terminates
the queue; workers serve what was already accepted, finish their current
connections (``stopping()`` makes keep-alive end at the next request
boundary), each leaves ``G`` in its slot, and the child exits 0. SIGTERM and
SIGHUP end the child at once (default actions, set by common_child_setup).

Differences from httpd, by design (docs/worker.md has the full list):

* the listener waits in ``epoll`` on the shared non-blocking listeners
  (``EPOLLEXCLUSIVE``: one new connection wakes one *waiting* listener, and
  only listeners holding a reserved worker wait) plus an eventfd that wakes
  it for shutdown, instead of a blocking ``accept()``. A listener that was
  woken for a connection always accepts it, even if a graceful stop began
  meanwhile, because an exclusive wake-up that nobody acts on would leave
  the connection waiting for the next arrival;
* MaxConnectionsPerChild is counted when a connection is accepted, so a
  child never serves more than that many (httpd decrements its counter after
  each connection ends, so its listener may accept up to ThreadsPerChild
  more before it notices);
* the child also publishes its open-connection count (accepted, queued or
  being served) in its process record's ``connections`` counter, shown in
  ``/server-status?auto`` (httpd's worker leaves it 0).
"""

from __future__ import annotations

import collections
import errno
import os
import select
import signal
import socket
import threading
import time
import traceback

from ..http.response import error_response
from .child import ChildEnv, accept_graceful_signal, accept_pending, common_child_setup, serve_context
from .scoreboard import GRACEFUL, READY
from .serve import Watch, serve_connection

#: httpd's APEXIT_CHILDSICK: the child stopped for lack of resources (EMFILE ...)
EXIT_CHILD_SICK = 0x7
#: how long the listener and the main thread wait before re-checking their flags
POLL_TIMEOUT = 1.0
#: signals only the main thread may receive (the other threads block them, as in httpd)
_MAIN_THREAD_SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGWINCH}
#: accept() errors that mean "this process is short of resources": stop gracefully (httpd: APR_EGENERAL)
_SHORTAGE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ConnectionQueue:
    """httpd's fdqueue: the idle-worker count and a bounded FIFO of accepted connections.

    ``idlers`` counts workers that announced themselves idle and that the
    listener has not reserved yet. The listener takes one with
    :meth:`reserve_idler` *before* it accepts, so the queue never holds more
    connections than there are idle workers to take them (and never more than
    ``capacity`` = ThreadsPerChild).
    """

    def __init__(self, capacity: int, publish=None) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._ready = threading.Condition(self._lock)
        self._items: collections.deque = collections.deque()
        self._publish = publish or (lambda n: None)
        self.idlers = 0
        self.open_connections = 0
        self.closing = False  # no more reservations (graceful stop began)
        self.terminated = False  # no more connections will ever be pushed

    # -- listener side ---------------------------------------------------------------
    def reserve_idler(self) -> bool:
        """Block until a worker is idle and reserve it; False once the queue is closing."""
        with self._lock:
            while self.idlers == 0 and not self.closing:
                self._idle.wait()
            if self.closing:
                return False
            self.idlers -= 1
            return True

    def release_idler(self) -> None:
        """Give back a reservation that was not used (nothing was accepted)."""
        with self._lock:
            self.idlers += 1
            self._idle.notify()

    def push(self, conn, addr, drained: bool = False) -> None:
        """Hand an accepted connection to the workers (uses the caller's reservation; a
        connection ``drained`` from the listen queue as the server stops has none)."""
        with self._lock:
            if len(self._items) >= self.capacity and not drained:
                raise RuntimeError(f"connection queue full ({self.capacity}) despite a reserved worker")
            self._items.append((conn, addr))
            self.open_connections += 1
            self._publish(self.open_connections)
            self._ready.notify()

    def close(self) -> None:
        """Stop handing out reservations; wakes a listener waiting for an idle worker."""
        with self._lock:
            self.closing = True
            self._idle.notify_all()

    def terminate(self) -> None:
        """No more pushes: workers drain what is queued, then :meth:`pop` returns None."""
        with self._lock:
            self.closing = True
            self.terminated = True
            self._idle.notify_all()
            self._ready.notify_all()

    # -- worker side -----------------------------------------------------------------
    def pop(self):
        """Announce this worker idle and wait for a connection; None once terminated and empty."""
        with self._lock:
            self.idlers += 1
            self._idle.notify()
            while not self._items and not self.terminated:
                self._ready.wait()
            if not self._items:
                return None
            return self._items.popleft()

    def done(self) -> None:
        """One connection popped earlier has been served and closed."""
        with self._lock:
            self.open_connections -= 1
            self._publish(self.open_connections)


class WorkerChild:
    """One worker child process: main thread, listener thread, ThreadsPerChild workers."""

    def __init__(self, env: ChildEnv) -> None:
        self.env = env
        self.cfg = env.cfg
        self.sb = env.scoreboard
        self.slot = env.slot
        self.threads_per_child = env.cfg.ThreadsPerChild
        self.budget = env.cfg.MaxConnectionsPerChild  # type: ignore[attr-defined]
        self.stopping = False
        #: set once this child's listening sockets are closed: from then on responses end
        #: their connections (see close_listeners)
        self.draining = False
        self.ungraceful = False
        self.resource_shortage = False
        self.got_usr1 = False
        self.queue = ConnectionQueue(self.threads_per_child, self._publish_connections)
        #: one hung-application watch per worker thread (serve.Watch), checked by the main thread
        self.watches = [Watch() for _ in range(self.threads_per_child)]
        self.app_timeout = float(env.cfg.Timeout)  # type: ignore[attr-defined]
        self.workers: list[threading.Thread] = []
        self.listener: threading.Thread | None = None
        self._listen_wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # -- shared helpers ----------------------------------------------------------------
    def is_stopping(self) -> bool:
        """The MPM's "stopping" state that serve_connection consults at request boundaries.

        True once the child has closed its listening sockets, not as soon as the graceful
        exit begins: a response that ends its connection makes the client reconnect at
        once, and that connection must find the socket closed (refused) or still served,
        never queued in the backlog of a socket that only draining children hold open,
        where nobody accepts it and the last one's exit resets it.
        """
        return self.draining

    def close_listeners(self) -> None:
        """Close this child's copies of the listening sockets (httpd: close_listeners() when
        the listener thread leaves its loop). Called by the listener thread once no epoll set
        of this process watches them; the parent and the other children keep their copies."""
        for lst in self.env.listeners:
            try:
                lst.close()
            except OSError:
                pass
        self.draining = True

    def _publish_connections(self, n: int) -> None:
        self.sb.set_async_counters(self.slot, connections=max(0, n), write_completion=0, keep_alive=0,
                                   lingering_close=0)

    def log_exception(self, where: str, exc: BaseException) -> None:
        """Log an exception with its traceback, one error-log line per traceback line."""
        log = self.env.log.log
        log("error", f"{where}: uncaught {exc!r}; the thread keeps serving")
        for chunk in traceback.format_exception(exc):
            for line in chunk.rstrip().splitlines():
                log("error", f"{where}:   {line}")

    def begin_graceful(self) -> None:
        """Start a graceful exit (httpd's signal_threads(ST_GRACEFUL)); any thread may call it."""
        if self.stopping:
            return
        self.stopping = True
        self.queue.close()  # a listener waiting for an idle worker wakes up
        try:
            os.eventfd_write(self._listen_wake, 1)  # a listener waiting in epoll wakes up
        except OSError:
            pass
        try:
            os.write(self._wake_w, b"!")  # the main thread notices at once
        except OSError:
            pass

    # -- main thread -------------------------------------------------------------------
    def run(self) -> int:
        env = self.env
        sb = self.sb
        sb.set_process(self.slot, quiescing=False)

        def on_graceful(signum, frame) -> None:
            self.got_usr1 = True  # acted on by the main loop, never inside the handler

        signal.signal(signal.SIGUSR1, on_graceful)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

        # Threads inherit the creator's signal mask: block the parent's signals while
        # starting them, so only the main thread ever receives them (as httpd does).
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
        try:
            for i in range(self.threads_per_child):
                t = threading.Thread(target=self._worker, args=(i,), name=f"worker-{i}", daemon=True)
                t.start()
                self.workers.append(t)
            # the listener starts only once there are workers to reserve
            self.listener = threading.Thread(target=self._listener, name="listener", daemon=True)
            self.listener.start()
        except RuntimeError as exc:  # "can't start new thread"
            env.log.log("alert", f"ap_thread_create: unable to create worker thread: {exc}", "AH03142")
            return EXIT_CHILD_SICK  # let the parent decide how bad this is, as httpd does
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        accept_graceful_signal()  # the threads are started: only this thread ever sees it

        ep = select.epoll()
        try:
            # Not EPOLLEXCLUSIVE: every child's main thread sees a pipe-of-death byte and
            # exactly one read() gets it, so no byte can be left behind unseen.
            ep.register(env.pod_fd, select.EPOLLIN)
            ep.register(self._wake_r, select.EPOLLIN)
            while not self.stopping:
                try:
                    events = ep.poll(self.check_watches())
                except InterruptedError:
                    events = []
                for fd, _ in events:
                    if fd == env.pod_fd:
                        self._read_pod()
                    elif fd == self._wake_r:
                        _drain(self._wake_r)
                if self.ungraceful:
                    return 0  # '$': leave now; exiting closes every in-flight connection
                if self.got_usr1:
                    self.begin_graceful()
                if sb.running_generation != env.generation or os.getppid() == 1:
                    self.begin_graceful()
                if self.listener is not None and not self.listener.is_alive():
                    self.begin_graceful()
        finally:
            ep.close()  # stop watching the pipe of death: its bytes are for other children now

        # Graceful: the listener quiesces and terminates the queue; workers drain. The
        # watchdog keeps watching meanwhile, and a thread it abandoned is not waited for:
        # this process's exit is what ends it.
        while True:
            wait = self.check_watches()
            left = [t for t, w in zip(self.workers, self.watches) if t.is_alive() and not w.abandoned]
            if self.listener.is_alive():
                left.append(self.listener)
            if not left:
                break
            left[0].join(wait)
        return EXIT_CHILD_SICK if self.resource_shortage else 0

    # -- the hung-application watchdog (main thread) ------------------------------------
    def check_watches(self) -> float:
        """Abandon every request whose application gave no output for Timeout (serve.Watch);
        return how long the main thread may wait before the next check is due."""
        now = time.monotonic()
        limit = self.app_timeout
        wait = POLL_TIMEOUT
        for i, w in enumerate(self.watches):
            since = w.since
            if not since or w.abandoned:
                continue
            left = since + limit - now
            if left > 0:
                wait = min(wait, left + 0.01)
                continue
            taken = w.abandon(now, limit)
            if taken is not None:
                self.abandon_request(i, *taken, now)
        return wait

    def abandon_request(self, i: int, conn, response, since: float, now: float) -> None:
        """Answer a hung request (504 before its head, else cut it), shut its connection down,
        and retire this child: its other threads finish their connections, then it exits."""
        req = response.req
        line = req.request_line.decode("latin-1")
        sock = conn.sock
        try:
            if not response.head_sent:
                # httpd's answer when a script times out before returning headers (util_script.c)
                sock.send(error_response(504, "The application gave no response within Timeout.",
                                         method=req.method), socket.MSG_DONTWAIT)
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.env.log.log(
            "error",
            f"{conn.client}: \"{line}\": no output from the application for {now - since:.1f}s "
            f"(Timeout {self.app_timeout:g}s); answered {'504' if not response.head_sent else 'by a cut-off'}, "
            f"worker thread {i} abandoned; the child exits once its other connections are done")
        self.begin_graceful()

    def _read_pod(self) -> None:
        try:
            byte = os.read(self.env.pod_fd, 1)
        except (BlockingIOError, InterruptedError):
            return  # another child took it
        if not byte:
            return
        if byte == b"$":
            self.ungraceful = True
        self.begin_graceful()

    # -- listener thread ---------------------------------------------------------------
    def _listener(self) -> None:
        try:
            self._listen_loop()
        except BaseException as exc:  # pragma: no cover - the loop catches per iteration
            self.log_exception("listener thread", exc)
        finally:
            # httpd: close the listeners, terminate the queue, mark the process quiescing,
            # wake the main thread. On a graceful stop, first take what waits in the listen
            # queue: the listeners are closing for good, and nobody else would serve it.
            if self.sb.stopping and not self.ungraceful:
                for conn, addr in accept_pending(self.env.listeners, deferred=self.env.defers_accept):
                    self.queue.push(conn, addr, drained=True)
            self.close_listeners()
            self.queue.terminate()
            self.sb.set_process(self.slot, quiescing=True)
            self.begin_graceful()

    def _listen_loop(self) -> None:
        listeners = {lst.fileno(): lst for lst in self.env.listeners}
        ep = select.epoll()
        try:
            for fd in listeners:
                ep.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
            ep.register(self._listen_wake, select.EPOLLIN)
            accepted = 0
            rr = 0
            while not self.stopping:
                if self.budget and accepted >= self.budget:
                    self.env.log.log("debug", f"MaxConnectionsPerChild ({self.budget}) reached, exiting")
                    self.begin_graceful()
                    break
                # 1. reserve an idle worker: with none free this child never accepts,
                #    and the connection waits in the kernel backlog for another child
                if not self.queue.reserve_idler():
                    break
                got = None
                try:
                    got, rr = self._accept_one(ep, listeners, rr)
                except Exception as exc:
                    self.log_exception("listener thread", exc)
                if got is None:
                    self.queue.release_idler()
                    continue
                accepted += 1
                try:
                    self.queue.push(*got)
                except Exception as exc:
                    self.log_exception("listener thread", exc)
                    _close(got[0])
        finally:
            ep.close()  # this child's listener copies leave the wait queues

    def _accept_one(self, ep, listeners: dict, rr: int):
        """Wait for a connection and accept it; (conn, addr) or None when stopping."""
        while True:
            if self.stopping:
                return None, rr
            try:
                events = ep.poll(POLL_TIMEOUT)
            except InterruptedError:
                continue
            ready = []
            for fd, _ in events:
                if fd == self._listen_wake:
                    drain_eventfd(fd)
                elif fd in listeners:
                    ready.append(fd)
            # Round-robin over the ready listeners so none starves (httpd's last_poll_idx).
            # A listener woken for a connection takes it even if a stop began meanwhile:
            # with EPOLLEXCLUSIVE no other child was woken for it.
            for k in range(len(ready)):
                lst = listeners[ready[(rr + k) % len(ready)]]
                try:
                    conn, addr = lst.accept()
                except (BlockingIOError, InterruptedError):
                    continue  # another child won the race
                except OSError as exc:
                    if exc.errno in _SHORTAGE:
                        self.env.log.log("error", f"accept: {exc}; this child will exit gracefully")
                        self.resource_shortage = True
                        self.begin_graceful()
                        return None, rr
                    if exc.errno not in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                        self.env.log.log("error", f"accept: {exc}")
                    continue
                return (conn, addr), rr + 1

    # -- worker threads ----------------------------------------------------------------
    def _worker(self, i: int) -> None:
        set_status = self.sb.status_setter(self.slot, i)
        ctx = serve_context(self.env, i, self.is_stopping, multithread=True, watch=self.watches[i])
        queue = self.queue
        while True:
            try:
                set_status(READY)
                item = queue.pop()
                if item is None:
                    break  # graceful: the queue was terminated and is empty
                conn, addr = item
                try:
                    serve_connection(conn, addr, ctx)
                finally:
                    _close(conn)
                    queue.done()
            except BaseException as exc:  # never let one connection take the thread down
                self.log_exception(f"worker thread {i}", exc)
        set_status(GRACEFUL)


def drain_eventfd(fd: int) -> None:
    """Reset a non-blocking eventfd used to wake a thread from epoll."""
    try:
        os.eventfd_read(fd)
    except BlockingIOError:
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _close(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass


def child_main(env: ChildEnv) -> int:
    """Run one worker child until it is told to exit; returns its exit status."""
    common_child_setup(env)
    return WorkerChild(env).run()
