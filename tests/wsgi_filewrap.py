"""A test app that answers with ``wsgi.file_wrapper`` bodies and records every close().

``/file/N`` answers N bytes of a pattern whose byte at offset i is ``i % 251`` (a cycle
that no block size divides, so a block sent twice, lost or out of order shows), through
``environ["wsgi.file_wrapper"](source, BLOCK)``. Query parameters:

* ``src``: ``pattern`` (default; a source that says ``nonblocking_source = True``),
  ``bytesio`` (an io.BytesIO), ``regular`` (an unlinked temporary file: S_ISREG) or
  ``opaque`` (the pattern without the attribute: never read by event's listener);
* ``have=M``: the source ends after M bytes, whatever the Content-Length says;
* ``fail=M``: the source's read() raises RuntimeError once M bytes have been read;
* ``nolength=1``: no Content-Length (the server must chunk it, or close-delimit it);
* ``tag=T``: the name written, one line per call, to the file named by the environment
  variable ``FILEWRAP_LOG`` when the wrapper's close() reaches the source.

Any other path goes to the built-in app (``/`` hello, ``/server-status``).
"""

from __future__ import annotations

import io
import os
import tempfile
from urllib.parse import parse_qs

from servers.apps.default import app as builtin_app

BLOCK = 65536
CYCLE = 251
_CYCLE_BYTES = bytes(range(CYCLE)) * (BLOCK // CYCLE + 2)


def pattern(n: int, start: int = 0) -> bytes:
    """Bytes ``start .. start+n`` of the pattern (test side: what the body must be)."""
    reps = (start % CYCLE + n) // CYCLE + 1
    return (bytes(range(CYCLE)) * reps)[start % CYCLE:start % CYCLE + n]


def record_close(tag: str) -> None:
    """Append ``tag`` to $FILEWRAP_LOG (O_APPEND: one whole line per write, across processes)."""
    path = os.environ.get("FILEWRAP_LOG")
    if path and tag:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, tag.encode() + b"\n")
        finally:
            os.close(fd)


class Opaque:
    """The pattern, ``have`` bytes of it, as a file-like that makes no promise about blocking."""

    def __init__(self, have: int, fail: int | None, tag: str) -> None:
        self.pos = 0
        self.have = have
        self.fail = fail
        self.tag = tag

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes (one block at most) of the pattern."""
        if self.fail is not None and self.pos >= self.fail:
            raise RuntimeError("the source failed on purpose")
        k = min(BLOCK if size is None or size < 0 else size, BLOCK, self.have - self.pos)
        start = self.pos % CYCLE
        self.pos += k
        return _CYCLE_BYTES[start:start + k]

    def close(self) -> None:
        """Record the call (the tests count them)."""
        record_close(self.tag)


class Pattern(Opaque):
    """The same source, declared safe for event's listener to read."""

    nonblocking_source = True


class ClosingBytesIO(io.BytesIO):
    """An io.BytesIO whose close() is recorded."""

    tag = ""

    def close(self) -> None:
        if not self.closed:
            record_close(self.tag)
        super().close()


def _regular(data: bytes, tag: str):
    f = tempfile.TemporaryFile()  # unlinked at once: a regular file only this process sees
    f.write(data)
    f.seek(0)
    return _Recording(f, tag)


class _Recording(io.BufferedReader):
    """A regular file (fileno() is S_ISREG) whose close() is recorded."""

    def __init__(self, f, tag: str) -> None:
        super().__init__(io.FileIO(os.dup(f.fileno()), "rb"))
        f.close()
        self.tag = tag

    def close(self) -> None:
        if not self.closed:
            record_close(self.tag)
        super().close()


def _source(qs: dict, n: int):
    have = int(qs.get("have", [str(n)])[0])
    fail = int(qs["fail"][0]) if "fail" in qs else None
    tag = qs.get("tag", [""])[0]
    kind = qs.get("src", ["pattern"])[0]
    if kind == "bytesio":
        src = ClosingBytesIO(pattern(have))
        src.tag = tag
        return src
    if kind == "regular":
        return _regular(pattern(have), tag)
    return (Opaque if kind == "opaque" else Pattern)(have, fail, tag)


def app(environ, start_response):
    """``/file/N`` through wsgi.file_wrapper (see the module docstring); the rest: the built-in app."""
    path = environ["PATH_INFO"]
    if path.startswith("/file/"):
        n = int(path[6:])
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        headers = [("Content-Type", "application/octet-stream")]
        if "nolength" not in qs:
            headers.append(("Content-Length", str(n)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](_source(qs, n), BLOCK)
    return builtin_app(environ, start_response)
