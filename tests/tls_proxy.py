"""A TLS-terminating proxy on 127.0.0.1 and a self-signed certificate for it (openssl), for tests.

The tests of https targets (the suites, locust, the built-in drivers) put one of our MPMs
behind this proxy: it accepts TLS and relays the plain bytes to the server, both ways.
"""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

__all__ = ["TLSProxy", "certificate"]


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: no certificate for the TLS proxy")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class TLSProxy:
    """Accepts TLS on 127.0.0.1 and relays the plain bytes to 127.0.0.1:upstream, both ways.

    One thread accepts; each connection gets a thread per direction. A client that rejects the
    certificate ends its handshake, and the connection is dropped.
    """

    def __init__(self, upstream: int, cert: Path, key: Path) -> None:
        self.upstream = upstream
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(30)
            tls = self.ctx.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()
            return
        up = socket.create_connection(("127.0.0.1", self.upstream), timeout=30)
        try:
            self._relay(tls, up)
        finally:
            tls.close()
            up.close()

    @staticmethod
    def _relay(tls: ssl.SSLSocket, up: socket.socket) -> None:
        """Copy both ways in one thread (an SSL object must not be read and written at once): the
        client's EOF goes on as a FIN, the server's close ends the TLS side; 30 s idle ends both."""
        watch = [tls, up]
        while watch:
            ready = [tls] if tls in watch and tls.pending() else select.select(watch, [], [], 30)[0]
            if not ready:
                return
            for s in ready:
                try:
                    data = s.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                if s is up and not data:
                    return
                if s is up:
                    try:
                        tls.sendall(data)
                    except (OSError, ssl.SSLError):
                        return  # the client has gone
                elif data:
                    try:
                        up.sendall(data)
                    except OSError:
                        pass  # the server answered and closed before reading it all: relay its answer
                else:
                    try:
                        up.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    watch.remove(tls)

    def stop(self) -> None:
        self.stopped.set()
        self.lsock.close()
