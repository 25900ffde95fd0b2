"""The threaded MPMs' child process: a main thread, a watchdog, worker threads and a listener strategy.

worker.c and event.c share their child's skeleton, and so do worker and event here:

* the **main thread** installs the SIGUSR1 (graceful) handler and waits on the
  pipe of death and a signal wake-up pipe; it is the only thread that reacts
  to the parent (Python runs signal handlers in the main thread only, which
  is httpd's design too: every other thread blocks the signals). It also runs
  the **hung-application watchdog** (serve.Watch): a request whose application
  gave no output for Timeout is answered (504) or cut off, and the child retires;
* **ThreadsPerChild worker threads** and **one listener thread**, whose loops
  are the MPM's :class:`Listener` strategy: worker's (reserve an idle worker,
  accept, queue the connection) or event's (one epoll set for the listeners and
  every waiting connection).

Graceful exit (a byte on the pipe of death, SIGUSR1, a generation change seen
in the scoreboard, MaxConnectionsPerChild spent, or a resource shortage): the
listener stops accepting, closes this child's listener copies, marks the
process ``quiescing`` and releases the workers; they finish their connections
(``is_stopping()`` makes keep-alive end at the next request boundary), each
leaves ``G`` in its slot, and the child exits. SIGTERM and SIGHUP end the child
at once (default actions, set by common_child_setup).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
import traceback
from typing import Callable, Protocol

from ..http.response import error_response
from .child import EXIT_CHILD_SICK, ChildEnv, accept_graceful_signal
from .serve import Watch

#: how long the main thread (and a listener in epoll) waits before re-checking its flags
POLL_TIMEOUT = 1.0
#: signals only the main thread may receive (the other threads block them, as in httpd)
_MAIN_THREAD_SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGWINCH}


class Listener(Protocol):
    """What differs between worker and event: how connections are taken and handed to threads."""

    def listen(self) -> None:
        """The listener thread's loop; returns when the child stops accepting."""

    def finish(self) -> None:
        """After :meth:`listen`: close the listeners (taking the backlog on a graceful stop,
        listeners.drain_and_close) and release the workers once nothing more will come."""

    def serve(self, i: int) -> None:
        """Worker thread ``i``'s loop; returns once the workers are released and idle."""

    def stop_waiting(self) -> None:
        """A graceful stop began: wake whatever waits that the listener's eventfd does not."""


class ThreadedChild:
    """One worker or event child process: main thread, listener thread, ThreadsPerChild workers."""

    def __init__(self, env: ChildEnv, make_listener: Callable[["ThreadedChild"], Listener]) -> None:
        self.env = env
        self.sb = env.scoreboard
        self.slot = env.slot
        self.threads_per_child = env.cfg.ThreadsPerChild  # type: ignore[attr-defined]
        self.budget = env.cfg.MaxConnectionsPerChild  # type: ignore[attr-defined]
        self.app_timeout = float(env.cfg.Timeout)  # type: ignore[attr-defined]
        self.stopping = False
        #: set once this child's listening sockets are closed: from then on responses end
        #: their connections (see is_stopping)
        self.draining = False
        self.ungraceful = False
        self.resource_shortage = False
        self.got_usr1 = False
        #: one hung-application watch per worker thread (serve.Watch), checked by the main thread
        self.watches = [Watch() for _ in range(self.threads_per_child)]
        self.workers: list[threading.Thread] = []
        self.listener_thread: threading.Thread | None = None
        #: wakes the listener thread from epoll (a stop, a free worker, a connection handed back)
        self.listen_wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.listener = make_listener(self)

    # -- shared by the main, listener and worker threads --------------------------------
    def is_stopping(self) -> bool:
        """The MPM's "stopping" state that the connection loop consults at request boundaries.

        True once the child has closed its listening sockets, not as soon as the graceful
        exit begins: a response that ends its connection makes the client reconnect at
        once, and that connection must find the socket closed (refused) or still served,
        never queued in the backlog of a socket that only draining children hold open,
        where nobody accepts it and the last one's exit resets it.
        """
        return self.draining

    def listeners_closed(self) -> None:
        """Record that this child's listener copies are closed (listeners.drain_and_close)."""
        self.draining = True

    def wake_listener(self) -> None:
        """Wake the listener thread from its epoll wait."""
        try:
            os.eventfd_write(self.listen_wake, 1)
        except OSError:
            pass

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
        self.listener.stop_waiting()
        self.wake_listener()
        try:
            os.write(self._wake_w, b"!")  # the main thread notices at once
        except OSError:
            pass

    def short_of_resources(self) -> None:
        """accept() found the process short of descriptors or memory: exit gracefully, with
        APEXIT_CHILDSICK (listeners.ResourceShortage)."""
        self.resource_shortage = True
        self.begin_graceful()

    # -- main thread -------------------------------------------------------------------
    def run(self) -> int:
        """The main thread: start the threads, watch the parent and the watchdog, then wait
        for the threads to finish; returns the child's exit status."""
        env = self.env
        sb = self.sb
        sb.set_process(self.slot, quiescing=False)

        def on_graceful(signum, frame) -> None:
            self.got_usr1 = True  # acted on by the main loop, never inside the handler

        signal.signal(signal.SIGUSR1, on_graceful)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        if not self._start_threads():
            return EXIT_CHILD_SICK  # let the parent decide how bad this is, as httpd does
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
                if self.listener_thread is not None and not self.listener_thread.is_alive():
                    self.begin_graceful()
        finally:
            ep.close()  # stop watching the pipe of death: its bytes are for other children now

        # Graceful: the listener quiesces and releases the workers, which drain. The
        # watchdog keeps watching meanwhile, and a thread it abandoned is not waited for:
        # this process's exit is what ends it.
        while True:
            wait = self.check_watches()
            left = [t for t, w in zip(self.workers, self.watches) if t.is_alive() and not w.abandoned]
            if self.listener_thread.is_alive():
                left.append(self.listener_thread)
            if not left:
                break
            left[0].join(wait)
        return EXIT_CHILD_SICK if self.resource_shortage else 0

    def _start_threads(self) -> bool:
        """Start the workers, then the listener (it needs workers to hand connections to)."""
        # Threads inherit the creator's signal mask: block the parent's signals while
        # starting them, so only the main thread ever receives them (as httpd does).
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
        try:
            for i in range(self.threads_per_child):
                t = threading.Thread(target=self._worker_thread, args=(i,), name=f"worker-{i}", daemon=True)
                t.start()
                self.workers.append(t)
            self.listener_thread = threading.Thread(target=self._listener_thread, name="listener", daemon=True)
            self.listener_thread.start()
        except RuntimeError as exc:  # "can't start new thread"
            self.env.log.log("alert", f"ap_thread_create: unable to create worker thread: {exc}", "AH03142")
            return False
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return True

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

    # -- the listener and worker threads ---------------------------------------------------
    def _listener_thread(self) -> None:
        try:
            self.listener.listen()
        except BaseException as exc:  # pragma: no cover - the loops guard each iteration
            self.log_exception("listener thread", exc)
        finally:
            # httpd: close the listeners, release the workers, mark the process quiescing,
            # wake the main thread
            self.listener.finish()
            self.sb.set_process(self.slot, quiescing=True)
            self.begin_graceful()

    def _worker_thread(self, i: int) -> None:
        self.listener.serve(i)


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


def close_quietly(sock) -> None:
    """Close a socket, ignoring the error of one already gone."""
    try:
        sock.close()
    except OSError:
        pass
