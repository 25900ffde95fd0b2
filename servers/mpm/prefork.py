"""The prefork MPM's child: one single-threaded process serving one connection at a time.

httpd's ``prefork.c`` child_main: mark the slot ``_``, wait for a connection
on the shared listener, serve the whole connection (every keep-alive request
and the lingering close; the process sits in ``K`` between requests), then
read the pipe of death. It exits when it reads a byte from the pipe of
death, when the generation changes, after SIGUSR1 (graceful: finish the
current connection, leave keep-alive at the next request boundary because
the MPM reports "stopping"), or once MaxConnectionsPerChild connections
(connections, not requests) have been served.

Difference from httpd, by design: instead of blocking in accept() and being
woken by the parent's dummy connection, an idle child waits in epoll on the
listener and the pipe of death together (both with EPOLLEXCLUSIVE, so one
connection or one pipe byte wakes one child, as accept() wakes one waiter).
The effect is httpd's; no dummy connections are needed.
"""

from __future__ import annotations

import os
import select
import signal

from .child import EXIT_CHILD_SICK, ChildEnv, accept_graceful_signal, common_child_setup, unit_serve_context
from .listeners import ResourceShortage, accept_connection, drain_and_close
from .scoreboard import READY
from .serve import serve_connection

def child_main(env: ChildEnv) -> int:
    """Run one prefork child until it is told to exit; returns its exit status."""
    common_child_setup(env)
    sb = env.scoreboard
    slot = env.slot
    die = False
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    ep = select.epoll()
    listen_fds = {}
    for lst in env.listeners:
        ep.register(lst.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
        listen_fds[lst.fileno()] = lst
    ep.register(env.pod_fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
    ep.register(wake_r, select.EPOLLIN)

    drained: list = []

    def on_graceful(signum, frame) -> None:
        nonlocal die
        if not die:
            # On a graceful stop, first take what already waits in the listen queue (nobody
            # else will: the listeners are closing for good). Then close this child's copies
            # of the listening sockets (httpd's children close their listeners), and only
            # then let the connection being served end with Connection: close: a client
            # reconnecting at once must not land in the backlog of a socket that only
            # draining children still hold open, where nobody accepts it and the last exit
            # resets it.
            drain_and_close(env, lambda sock, addr: drained.append((sock, addr)), ep)
            listen_fds.clear()
        die = True

    signal.signal(signal.SIGUSR1, on_graceful)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    accept_graceful_signal()
    ctx = unit_serve_context(env, lambda: die)
    budget = env.cfg.MaxConnectionsPerChild  # type: ignore[attr-defined]
    connections = 0
    sb.set_process(slot, quiescing=False)
    while not die:
        if budget and connections >= budget:
            break
        sb.set_status(slot, 0, READY)
        try:
            events = ep.poll(1.0)
        except InterruptedError:
            continue
        for fd, _ in events:
            if fd == env.pod_fd:
                try:
                    if os.read(env.pod_fd, 1):
                        die = True  # we are the idle child chosen to die
                except BlockingIOError:
                    pass
            elif fd == wake_r:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
        if die:
            break
        if sb.running_generation != env.generation or os.getppid() == 1:
            break
        for fd, _ in events:
            lst = listen_fds.get(fd)
            if lst is None:
                continue
            try:
                got = accept_connection(lst, env.log.log)
            except ResourceShortage:
                return EXIT_CHILD_SICK  # httpd's prefork: clean_child_exit(APEXIT_CHILDSICK)
            if got is None:
                continue  # another child won the race, or the connection failed on its side
            conn, addr = got
            connections += 1
            # per-process connection count for /server-status (one or none in prefork)
            sb.set_async_counters(slot, connections=1, write_completion=0, keep_alive=0, lingering_close=0)
            serve_connection(conn, addr, ctx)
            sb.set_async_counters(slot, connections=0, write_completion=0, keep_alive=0, lingering_close=0)
            break  # re-check the pipe of death and the flags after each connection
    # the server is stopping: serve what was taken from the listen queue, one by one
    for conn, addr in drained:
        sb.set_async_counters(slot, connections=1, write_completion=0, keep_alive=0, lingering_close=0)
        serve_connection(conn, addr, ctx)
    return 0
