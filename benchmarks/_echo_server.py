"""Minimal keep-alive HTTP/1.1 server used to measure the load driver itself.

One epoll loop, no parsing beyond counting request ends (GET without body):
it answers every request with a fixed 13-byte body.  It is not a server
under test; it exists so that `loadgen_selftest.py` can show how many
requests/s the driver can generate on this machine.

    python benchmarks/_echo_server.py [--seconds S]

Like our MPMs it prints ``listening on http://127.0.0.1:PORT`` once it
listens, so the launcher's readiness check (servers.launcher.MPMHandle)
starts it; whoever starts it pins it.
"""

from __future__ import annotations

import argparse
import select
import socket
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"


def serve(seconds: float) -> None:
    ls = socket.create_server(("127.0.0.1", 0), backlog=1024)
    ls.setblocking(False)
    ep = select.epoll()
    ep.register(ls.fileno(), select.EPOLLIN)
    conns: dict[int, tuple[socket.socket, list]] = {}
    print(f"listening on http://127.0.0.1:{ls.getsockname()[1]}", flush=True)
    lfd = ls.fileno()
    end = time.monotonic() + seconds  # bounded: the server stops by itself
    while time.monotonic() < end:
        for fd, ev in ep.poll(0.5):
            if fd == lfd:
                while True:
                    try:
                        s, _ = ls.accept()
                    except BlockingIOError:
                        break
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[s.fileno()] = (s, [b""])
                    ep.register(s.fileno(), select.EPOLLIN)
                continue
            s, st = conns[fd]
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                del conns[fd]
                s.close()
                continue
            buf = st[0] + data
            n = buf.count(b"\r\n\r\n")
            if n:
                st[0] = buf[buf.rfind(b"\r\n\r\n") + 4 :]
                try:
                    s.send(RESPONSE * n)
                except OSError:
                    pass
            else:
                st[0] = buf


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120.0)
    serve(ap.parse_args().seconds)
