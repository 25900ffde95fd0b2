"""TLS for the built-in drivers (loadgen, idle): client connections over non-blocking sockets.

An ``https://`` target (RFC 9110 section 4.2.2) is HTTP/1.1 over TLS (RFC 8446): the
drivers open TCP as for ``http://``, then run the TLS handshake driven by their own
event loops (epoll or selectors), and only then send requests. ``TLSSocket`` gives the
drivers' loops a plain non-blocking socket's contract, so their request/response code
is the same for both schemes:

* ``send``/``recv`` raise ``BlockingIOError`` when TLS cannot move now
  (``SSLWantReadError``/``SSLWantWriteError``: a record not complete yet, a TLS 1.3
  session ticket read instead of data);
* ``recv`` returns ``b""`` at the end of the connection, whether the server sent a
  close_notify alert (RFC 8446 section 6.1) or just closed TCP (Python's
  ``suppress_ragged_eofs``), which the loops handle like a plain EOF;
* ``recv`` also returns what OpenSSL had already decrypted (``pending()``): epoll only
  sees bytes still in the kernel, so they would otherwise wait for the next packet.

The server's name goes in SNI (RFC 6066 section 3) and is checked against its
certificate (RFC 9110 section 4.3.4) unless the caller's context says otherwise;
a failed handshake raises ``HandshakeError`` with the kind the drivers count:
``connect`` (the TCP connect failed) or ``tls`` (the certificate was refused, the
server spoke no TLS, or it closed during the handshake).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl

__all__ = ["HandshakeError", "TLSClient", "TLSSocket", "client_for"]

_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class HandshakeError(Exception):
    """A connection that never became a TLS connection; ``kind`` is ``connect`` or ``tls``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class TLSSocket:
    """A client ``ssl.SSLSocket``, non-blocking, with a plain socket's send/recv contract (module doc)."""

    __slots__ = ("_s", "_tcp")

    def __init__(self, s: ssl.SSLSocket) -> None:
        self._s = s
        self._tcp = False  # the TCP connect is known to have succeeded

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self._s.fileno()

    def connect_ex(self, addr: tuple) -> int:
        """Start the TCP connect (0 or an errno, EINPROGRESS when non-blocking)."""
        return self._s.connect_ex(addr)

    def close(self) -> None:
        """Close without a close_notify: a load driver does not wait for the peer's."""
        self._s.close()

    def handshake(self) -> int:
        """Advance the handshake once the socket is writable (the TCP connect has ended).

        Returns 0 when it is complete, else the epoll event it waits for
        (``select.EPOLLIN`` or ``select.EPOLLOUT``). Raises HandshakeError.
        """
        s = self._s
        if not self._tcp:
            code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise HandshakeError("connect", os.strerror(code))
            self._tcp = True
        try:
            s.do_handshake()
        except ssl.SSLWantReadError:
            return select.EPOLLIN
        except ssl.SSLWantWriteError:
            return select.EPOLLOUT
        except ssl.SSLError as e:  # certificate refused, not TLS, EOF mid-handshake
            raise HandshakeError("tls", str(e)) from None
        except OSError as e:  # reset or refused: the connection itself failed
            raise HandshakeError("connect", str(e)) from None
        return 0

    def send(self, data: bytes) -> int:
        """Encrypt and send as much of ``data`` as the socket takes; BlockingIOError when none."""
        s = self._s
        total, n = 0, len(data)
        view = memoryview(data)
        while total < n:
            try:
                # one record (16 KiB at most) per call: loop so a large body does not cost
                # an epoll round trip per record
                total += s.send(view[total:])
            except _WANT:
                if total:
                    return total
                raise BlockingIOError(errno.EAGAIN, "TLS: the socket is full") from None
        return total

    def recv(self, size: int) -> bytes:
        """Decrypted bytes available now (b"" at the end); BlockingIOError when none yet."""
        s = self._s
        try:
            data = s.recv(size)
            n = s.pending()
            while n and data:
                data += s.recv(n)
                n = s.pending()
        except _WANT:
            raise BlockingIOError(errno.EAGAIN, "TLS: no whole record yet") from None
        return data


class TLSClient:
    """What every connection of one run shares: the context and the server's name."""

    __slots__ = ("context", "server_hostname")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(f"ssl_context must be an ssl.SSLContext, not {type(context).__name__}")
        if context.protocol == ssl.PROTOCOL_TLS_SERVER:
            raise ValueError("ssl_context is a server-side context (PROTOCOL_TLS_SERVER)")
        self.context = context
        self.server_hostname = server_hostname

    def wrap(self, sock: socket.socket) -> TLSSocket:
        """``sock`` (not connected yet) as a TLS client socket; the handshake waits for ``handshake()``."""
        try:
            return TLSSocket(self.context.wrap_socket(sock, server_hostname=self.server_hostname,
                                                      do_handshake_on_connect=False))
        except BaseException:
            sock.close()
            raise

    def wrap_blocking(self, sock: socket.socket) -> ssl.SSLSocket:
        """``sock`` (connected, with a timeout) after a completed handshake; SSLError when it fails."""
        return self.context.wrap_socket(sock, server_hostname=self.server_hostname)


def client_for(tls_host: str | None, context: ssl.SSLContext | None) -> TLSClient | None:
    """The TLS client of a target: None for http (any ``context`` is ignored), else ``context``
    or ``ssl.create_default_context()`` (the system's CAs, the certificate and its name checked)."""
    if tls_host is None:
        return None
    return TLSClient(context if context is not None else ssl.create_default_context(), tls_host)
