"""A child's listening sockets: accept one connection, and on a graceful stop take the backlog and close them.

Each MPM waits for connections its own way (prefork: one process in epoll; worker: a
listener thread holding a reserved worker; event: the listener's event loop), but what
happens around ``accept()`` is httpd's and the same for all: ``ap_unixd_accept``'s
reading of its errors (a resource shortage makes the child exit gracefully with
APEXIT_CHILDSICK; an error of the connection itself is not the server's), and, when the
server stops, a child's copies of the listeners are closed (``close_listeners``) after
taking what already waits in the listen queue.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from typing import Callable, Iterable

#: accept() errors that mean "this process is short of resources" (httpd: APR_EGENERAL)
RESOURCE_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: accept() errors of the connection itself (reset before it was taken), or of a listener this
#: process has just closed for a graceful stop: nothing for the error log
_NOT_LOGGED = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EBADF})


class ResourceShortage(Exception):
    """accept() failed for lack of resources (logged): the child should stop gracefully and
    exit with EXIT_CHILD_SICK, as httpd's children do on APR_EGENERAL."""


def accept_connection(listener: socket.socket, log: Callable[[str, str], None]) -> tuple | None:
    """Accept one connection from a non-blocking listener: ``(sock, addr)``, or None when none
    is waiting (another process won it) or it failed on its own side (logged unless it is
    the client's doing). Raises ResourceShortage (after logging) on EMFILE and the like."""
    try:
        return listener.accept()
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        if exc.errno in RESOURCE_SHORTAGE:
            log("error", f"accept: {exc}; this child will exit gracefully")
            raise ResourceShortage(exc) from exc
        if exc.errno not in _NOT_LOGGED:
            log("error", f"accept: {exc}")
        return None


def close_listener_copies(listeners: Iterable[socket.socket], ep: select.epoll | None = None) -> None:
    """Close this process's copies of the listening sockets (httpd's close_listeners; the parent
    and other children keep theirs). With ``ep`` each leaves that epoll set first: the socket
    is shared with other processes, so closing one descriptor would leave it registered."""
    for lst in listeners:
        if ep is not None:
            try:
                ep.unregister(lst.fileno())
            except (OSError, ValueError):
                pass
        try:
            lst.close()
        except OSError:
            pass


def drain_and_close(env, take: Callable[[socket.socket, tuple], None], ep: select.epoll | None = None,
                    take_backlog: bool = True) -> None:
    """A child stops listening: on a graceful stop of the server (the scoreboard says stopping)
    first accept each connection already in the listen queue (nobody else would serve it: the
    listeners are closing for good), then close this child's listener copies, and only then
    hand the accepted ones to ``take``. A connection whose handshake completes between the last
    accept and the close is reset when the last copy closes, so nothing runs in between (the
    event MPM's ``take`` builds a connection's state: done before the close, it widened that
    window enough for a client reconnecting in a loop to hit it). ``take_backlog`` False (an
    ungraceful stop) closes them at once."""
    pending = accept_pending(env.listeners, deferred=env.defers_accept) \
        if take_backlog and env.scoreboard.stopping else []
    close_listener_copies(env.listeners, ep)
    for sock, addr in pending:
        take(sock, addr)


#: most queued connections one child takes when the server stops (the listen backlog bounds it)
DRAIN_LIMIT = 1024


#: graceful stop with deferred accept: keep taking connections until the listeners have been
#: quiet this long (a client that has just connected sends its request within it) ...
DRAIN_QUIET = 0.05
#: ... but never longer than this in all
DRAIN_MOST = 0.5


def stop_deferring(sock: socket.socket) -> None:
    """Turn TCP_DEFER_ACCEPT off on a listener that is about to close (graceful stop).

    The option belongs to the socket every process shares (the parent turns it off first).
    A connection the kernel holds back for its first bytes (AcceptFilter http data) is
    complete for its client but not in the accept queue, so it would be reset when the
    last listener copy closes. With the option off, new handshakes
    go straight to the queue, and a held-back connection joins it as soon as its bytes
    arrive (at once from a client that has just connected to send its request).
    """
    if hasattr(socket, "TCP_DEFER_ACCEPT"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 0)
        except OSError:
            pass  # already closed: nothing waits on it


def _take(listeners, taken: list, limit: int) -> bool:
    """Accept what waits on the (non-blocking) listeners into ``taken``; True if any came."""
    before = len(taken)
    for lst in listeners:
        while len(taken) < limit:
            try:
                taken.append(lst.accept())
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # closed, or short of descriptors: what is left is not ours to take
    return len(taken) > before


def accept_pending(listeners, limit: int = DRAIN_LIMIT, deferred: bool = False) -> list:
    """Accept every connection already waiting on the (non-blocking) listeners: [(sock, addr)].

    Used when the server stops gracefully (WINCH), just before a child closes its copies of
    the listening sockets: the kernel completed those connections' handshakes, their clients
    sent their requests, and once the last copy is closed they would be reset. httpd leaves
    them to that fate; here they are served (with ``Connection: close``). When the listeners
    deferred accept (``deferred``: AcceptFilter http data), connections whose first bytes
    are still on their way are waited for too: the listeners are drained until quiet for
    DRAIN_QUIET seconds (at most DRAIN_MOST in all); a client that connected and stays
    silent is not waited for.
    """
    listeners = list(listeners)
    taken: list = []
    _take(listeners, taken, limit)
    if not deferred:
        return taken
    for lst in listeners:
        stop_deferring(lst)
    end = time.monotonic() + DRAIN_MOST
    quiet_until = time.monotonic() + DRAIN_QUIET
    while len(taken) < limit:
        now = time.monotonic()
        if now >= quiet_until or now >= end:
            break
        try:
            ready, _, _ = select.select(listeners, [], [], min(quiet_until, end) - now)
        except (OSError, ValueError):
            break
        if ready and _take(listeners, taken, limit):
            quiet_until = time.monotonic() + DRAIN_QUIET
    return taken
