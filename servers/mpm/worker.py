"""The worker MPM's child: ThreadsPerChild worker threads fed by one listener thread.

httpd's ``server/mpm/worker/worker.c`` child, in Python threads:

* the **main thread** and the hung-application watchdog: threaded.ThreadedChild,
  shared with event;
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

Graceful exit (threaded.ThreadedChild): the listener stops accepting, takes the
backlog when the server stops, closes the listeners and terminates the queue; workers
serve what was already accepted and finish their current connections.

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
import select
import threading

from .child import ChildEnv, common_child_setup, serve_context
from .listeners import ResourceShortage, accept_connection, drain_and_close
from .scoreboard import GRACEFUL, READY
from .serve import serve_connection
from .threaded import POLL_TIMEOUT, ThreadedChild, close_quietly, drain_eventfd


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


class WorkerListener:
    """worker's listener strategy (threaded.Listener): reserve an idle worker, then accept, then queue."""

    def __init__(self, child: ThreadedChild) -> None:
        self.child = child
        self.env = child.env
        self.queue = ConnectionQueue(child.threads_per_child, self._publish_connections)

    def _publish_connections(self, n: int) -> None:
        self.child.sb.set_async_counters(self.child.slot, connections=max(0, n), write_completion=0,
                                         keep_alive=0, lingering_close=0)

    def stop_waiting(self) -> None:
        """A listener waiting for an idle worker wakes up (graceful stop)."""
        self.queue.close()

    # -- listener thread ---------------------------------------------------------------
    def listen(self) -> None:
        """Reserve an idle worker, wait for and accept a connection, queue it; repeat."""
        child = self.child
        listeners = {lst.fileno(): lst for lst in self.env.listeners}
        ep = select.epoll()
        try:
            for fd in listeners:
                ep.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
            ep.register(child.listen_wake, select.EPOLLIN)
            accepted = 0
            rr = 0
            while not child.stopping:
                if child.budget and accepted >= child.budget:
                    self.env.log.log("debug", f"MaxConnectionsPerChild ({child.budget}) reached, exiting")
                    child.begin_graceful()
                    break
                # 1. reserve an idle worker: with none free this child never accepts,
                #    and the connection waits in the kernel backlog for another child
                if not self.queue.reserve_idler():
                    break
                got = None
                try:
                    got, rr = self._accept_one(ep, listeners, rr)
                except Exception as exc:
                    child.log_exception("listener thread", exc)
                if got is None:
                    self.queue.release_idler()
                    continue
                accepted += 1
                try:
                    self.queue.push(*got)
                except Exception as exc:
                    child.log_exception("listener thread", exc)
                    close_quietly(got[0])
        finally:
            ep.close()  # this child's listener copies leave the wait queues

    def _accept_one(self, ep, listeners: dict, rr: int):
        """Wait for a connection and accept it; (conn, addr) or None when stopping."""
        child = self.child
        while True:
            if child.stopping:
                return None, rr
            try:
                events = ep.poll(POLL_TIMEOUT)
            except InterruptedError:
                continue
            ready = []
            for fd, _ in events:
                if fd == child.listen_wake:
                    drain_eventfd(fd)
                elif fd in listeners:
                    ready.append(fd)
            # Round-robin over the ready listeners so none starves (httpd's last_poll_idx).
            # A listener woken for a connection takes it even if a stop began meanwhile:
            # with EPOLLEXCLUSIVE no other child was woken for it.
            for k in range(len(ready)):
                try:
                    got = accept_connection(listeners[ready[(rr + k) % len(ready)]], self.env.log.log)
                except ResourceShortage:
                    child.short_of_resources()
                    return None, rr
                if got is not None:
                    return got, rr + 1

    def finish(self) -> None:
        """Take the backlog on a graceful stop (not after '$'), close the listeners, release the workers."""
        child = self.child
        drain_and_close(self.env, lambda sock, addr: self.queue.push(sock, addr, drained=True),
                        take_backlog=not child.ungraceful)
        child.listeners_closed()
        self.queue.terminate()

    # -- worker threads ----------------------------------------------------------------
    def serve(self, i: int) -> None:
        """Pop a connection, serve all of it (serve.serve_connection), repeat until released."""
        child = self.child
        set_status = child.sb.status_setter(child.slot, i)
        ctx = serve_context(self.env, i, child.is_stopping, multithread=True, watch=child.watches[i])
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
                    close_quietly(conn)
                    queue.done()
            except BaseException as exc:  # never let one connection take the thread down
                child.log_exception(f"worker thread {i}", exc)
        set_status(GRACEFUL)


def child_main(env: ChildEnv) -> int:
    """Run one worker child until it is told to exit; returns its exit status."""
    common_child_setup(env)
    return ThreadedChild(env, WorkerListener).run()
