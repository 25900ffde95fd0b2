"""The Python floor: the least a Python server can spend per request, in httpd's process/thread models.

A yardstick, NOT a server: it parses nothing, validates nothing and runs no WSGI app. Every
worker (a thread or a process) blocks in accept() on the one listening socket the parent bound
before forking, then per connection blocks in recv(65536), reads until the buffer holds
``\\r\\n\\r\\n`` and answers with ``sendall`` of the bytes our MPMs send for ``GET /`` (status
line, ``Date`` rebuilt at most once per second as RFC 9110 §6.6.1 allows, ``Server``,
``Content-Type``, ``Content-Length: 13``, the built-in app's hello body), always keeping the
connection alive. Whatever a real server adds to this (parsing, the environ, the app call,
framing, the scoreboard) is what ``benchmarks/python_floor.py`` measures against it.

    python benchmarks/_floor_server.py --model threads --processes 2 --threads 25 [--listen 127.0.0.1:0]
    python benchmarks/_floor_server.py --model processes --processes 50 [--seconds 600]

The models are those of httpd's worker MPM (P processes x T threads) and prefork MPM (N
single-threaded processes). Like our MPMs it prints ``listening on http://HOST:PORT`` once its
children run, so the launcher's readiness check (servers.launcher.MPMHandle) starts it.

Bounded: SIGTERM or SIGINT to the parent stops every child by PID (SIGTERM, then SIGKILL after
a grace period); a child also dies with its parent (``prctl(PR_SET_PDEATHSIG)``); every process
ends by itself after ``--seconds``; an idle keep-alive connection is closed after 5 s (httpd's
default KeepAliveTimeout, as the kernel's SO_RCVTIMEO so it costs no syscall per request).
Standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import signal
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate

#: what our MPMs send for ``GET /`` around the Date (servers.http.response, servers.apps.default);
#: tests/test_bench_floor.py checks these bytes against a running worker
SERVER = b"mpm-harness/0.1"
BODY = b"Hello, World!"
HEAD_END = b"\r\n\r\n"
#: httpd's default KeepAliveTimeout, seconds
KEEPALIVE_TIMEOUT = 5
#: a head that has not ended within this many bytes closes the connection (memory bound, not validation)
MAX_HEAD = 1 << 20
#: how long stopped children get to exit before SIGKILL, seconds
STOP_GRACE = 5.0
PR_SET_PDEATHSIG = 1
#: the signals the parent waits on with sigtimedwait (blocked in it, unblocked in every child)
PARENT_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}

_response = (-1, b"")  # (second, response bytes): one tuple, swapped whole, so threads never see half of it


def build_response(second: int) -> bytes:
    """The whole ``GET /`` response with the Date of ``second`` (IMF-fixdate, RFC 9110 §5.6.7)."""
    date = formatdate(second, usegmt=True).encode()
    return (b"HTTP/1.1 200 OK\r\nDate: " + date + b"\r\nServer: " + SERVER
            + b"\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)


def response() -> bytes:
    """The response for now: rebuilt at most once per second, as our MPMs' Date cache does."""
    global _response
    now = int(time.time())
    second, data = _response
    if second != now:
        data = build_response(now)
        _response = (now, data)
    return data


def serve_connection(conn: socket.socket) -> None:
    """Answer every request head on ``conn`` until the client closes, goes idle or fails."""
    buf = b""
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:  # SO_RCVTIMEO's EAGAIN (idle keep-alive) or a reset
                return
            if not data:
                return
            buf += data
            n = buf.count(HEAD_END)
            if not n:
                if len(buf) > MAX_HEAD:
                    return
                continue
            buf = buf[buf.rfind(HEAD_END) + 4:]
            try:
                conn.sendall(response() * n)  # n > 1 only for a pipelining client
            except OSError:
                return


def accept_loop(ls: socket.socket) -> None:
    """One worker: blocking accept on the shared listener, then serve that connection to its end."""
    idle = struct.pack("ll", KEEPALIVE_TIMEOUT, 0)
    while True:
        try:
            conn, _ = ls.accept()
        except OSError:  # ECONNABORTED, EMFILE: back off a little, as httpd's accept loop does
            time.sleep(0.01)
            continue
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, idle)
        serve_connection(conn)


def threaded_child(ls: socket.socket, threads: int) -> None:
    """httpd worker's model: ``threads`` threads accepting on the listener; the main thread only waits."""
    for _ in range(threads):
        threading.Thread(target=accept_loop, args=(ls,), daemon=True).start()
    while True:  # ended by a signal (SIGTERM, the parent's death, SIGALRM at --seconds)
        signal.pause()


def die_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` dies (prctl(2) PR_SET_PDEATHSIG); exit now if it already did."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM and --seconds still end it
        pass
    if os.getppid() != parent:
        os._exit(0)


def run_child(ls: socket.socket, model: str, threads: int, seconds: float, parent: int) -> None:
    """A forked child: default signals, bounded life, then its model's loop; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)
        die_with_parent(parent)
        signal.alarm(max(1, math.ceil(seconds)))  # SIGALRM's default action ends it
        if model == "threads":
            threaded_child(ls, threads)
        else:
            accept_loop(ls)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def fork_children(ls: socket.socket, args: argparse.Namespace, pids: set[int]) -> None:
    """Fork the workers' processes into ``pids``; each runs :func:`run_child`."""
    parent = os.getpid()
    threads = args.threads if args.model == "threads" else 1
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            run_child(ls, args.model, threads, args.seconds, parent)
        pids.add(pid)


def reap(pids: set[int]) -> None:
    """Forget the children that have exited (waitpid without blocking)."""
    for pid in list(pids):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            pids.discard(pid)


def signal_all(pids: set[int], sig: int) -> None:
    """Send ``sig`` to each child by PID."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_children(pids: set[int], until: float) -> None:
    """Reap children as they exit, until none is left or the monotonic time ``until``."""
    reap(pids)
    while pids and time.monotonic() < until:
        signal.sigtimedwait({signal.SIGCHLD}, min(0.1, max(0.0, until - time.monotonic())))
        reap(pids)


def stop_children(pids: set[int]) -> None:
    """SIGTERM every child, SIGKILL what is left after :data:`STOP_GRACE`, reap them all."""
    signal_all(pids, signal.SIGTERM)
    wait_children(pids, time.monotonic() + STOP_GRACE)
    signal_all(pids, signal.SIGKILL)
    wait_children(pids, time.monotonic() + STOP_GRACE)


def supervise(pids: set[int], seconds: float) -> None:
    """Wait for SIGTERM/SIGINT, the deadline or the last child's exit, then stop the children."""
    deadline = time.monotonic() + seconds
    try:
        while pids:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            info = signal.sigtimedwait(PARENT_SIGNALS, min(left, 1.0))
            reap(pids)
            if info is not None and info.si_signo != signal.SIGCHLD:
                break
    finally:
        stop_children(pids)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every child accepts on (bound before forking, as httpd's parent does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(511)  # httpd's default ListenBacklog
    return ls


def url_of(ls: socket.socket) -> str:
    """``http://HOST:PORT`` of the bound listener (IPv6 hosts in brackets)."""
    host, port = ls.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("threads", "processes"), required=True)
    ap.add_argument("--processes", type=int, required=True, help="forked worker processes")
    ap.add_argument("--threads", type=int, default=1, help="threads per process (model threads)")
    ap.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0), help="HOST:PORT (port 0: any)")
    ap.add_argument("--seconds", type=float, default=3600.0, help="every process ends by itself after this long")
    args = ap.parse_args(argv)
    if args.processes < 1 or args.threads < 1 or args.seconds <= 0:
        ap.error("--processes, --threads and --seconds must be positive")
    if args.model == "processes" and args.threads != 1:
        ap.error("--threads is for --model threads; --model processes runs one thread per process")
    return args


def main(argv: list[str] | None = None) -> int:
    """Bind, fork the workers, announce the URL, supervise until told to stop."""
    args = parse_args(argv)
    ls = bind(*args.listen)
    signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)  # before fork: no signal is lost meanwhile
    pids: set[int] = set()
    try:
        fork_children(ls, args, pids)
    except BaseException:  # a fork that fails (EAGAIN) leaves no child of the others behind
        stop_children(pids)
        raise
    print(f"listening on {url_of(ls)}", flush=True)
    supervise(pids, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
