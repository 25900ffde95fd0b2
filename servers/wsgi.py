"""The server side of PEP 3333 (WSGI 1.0.1).

``build_environ`` makes the environ for one request (CGI variables,
``wsgi.input`` streaming the body as the application reads it,
``wsgi.errors``, ``wsgi.multithread`` / ``wsgi.multiprocess`` true to the
MPM, the optional ``wsgi.file_wrapper``: :class:`FileWrapper`);
:class:`WSGIResponse` implements ``start_response`` (with ``exc_info``) and the
legacy ``write`` callable on the sans-IO response framing of
``servers.http.framing`` (RFC 9112 §6: which responses carry a body, Content-Length
or chunked, truncation, the last chunk), which it extends; ``run_app`` calls the
application and always closes its iterable (PEP 3333 "the close() method"), or
hands it, with its close(), to a writer that finishes the body later (the event
MPM's write completion of a :class:`FileWrapper`).

Header fields whose names contain ``_`` are left out of the environ (as httpd
does for CGI since 2.4 and gunicorn does by default), so ``X_Foo`` can never
pose as ``X-Foo``; the raw fields stay available, in order, under
``mpm_harness.headers``.

What the application gives ``start_response`` is checked before any of it is
sent (``servers.http.response``): a status of 3 digits in 200-599 and a reason
without CTLs, header names that are tokens, values of field text, and one
Content-Length value (repeats of the same value are sent once; different values
are refused). A failed check raises :class:`InvalidResponse`, which the server
answers with a logged 500.
"""

from __future__ import annotations

import ast
import importlib
import os
import stat
import sys
from io import BytesIO
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes

from .http.framing import ResponseFraming, body_forbidden
from .http.persistence import KeepAlivePolicy
from .http.request import Request, remember
from .http.response import (
    DATE,
    HOP_BY_HOP,
    SERVER_SOFTWARE,
    InvalidResponse,
    check_field_name,
    check_field_value,
    error_response,
    parse_content_length,
    parse_status,
)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


#: the callable's name when a spec names only the module (mod_wsgi's WSGICallableObject, gunicorn's default)
DEFAULT_CALLABLE = "application"


class AppLoadError(ImportError):
    """An application spec that cannot be served; the message names the module and the cause.

    ``__cause__`` is set when the application's own code raised (while its module was
    imported, or its factory called), so the caller can print that traceback too.
    """


def load_app(spec: str) -> WSGIApp:
    """Import ``module[:callable]`` as gunicorn and mod_wsgi do.

    The callable defaults to ``application`` (mod_wsgi's ``WSGICallableObject``); it may
    be a dotted attribute path (``module:attr.attr``) or, as gunicorn accepts, a factory
    call with literal arguments (``module:create_app()``, ``module:make(debug=True)``).
    Every failure is an :class:`AppLoadError` naming the module and the cause.
    """
    mod_name, _, target = spec.strip().partition(":")
    target = target.strip() or DEFAULT_CALLABLE
    if not mod_name or mod_name.startswith("."):
        raise AppLoadError(f"app must be 'module' or 'module:callable', got {spec!r}")
    path, args, kwargs = _parse_target(spec, target)
    obj: Any = _import_module(mod_name)
    for depth, part in enumerate(path):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = mod_name if depth == 0 else f"{mod_name}:{'.'.join(path[:depth])}"
            raise AppLoadError(f"{owner} has no attribute {part!r}{_defined_hint(obj, depth)}") from None
    if args is not None:
        try:
            obj = obj(*args, **kwargs)
        except Exception as exc:
            raise AppLoadError(f"{mod_name}:{target} raised {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise AppLoadError(f"{mod_name}:{target} is not callable (it is {type(obj).__name__}); "
                           "a WSGI application is a callable(environ, start_response)")
    return obj


def _parse_target(spec: str, target: str) -> tuple[list[str], list | None, dict | None]:
    """``attr.attr`` or ``factory(literal args)`` -> (attribute path, args, kwargs); args None: no call."""
    try:
        expr = ast.parse(target, mode="eval").body
    except SyntaxError:
        expr = None
    args = kwargs = None
    if isinstance(expr, ast.Call):
        try:
            args = [ast.literal_eval(arg) for arg in expr.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords if kw.arg}
        except ValueError:
            raise AppLoadError(f"{spec}: a factory's arguments must be literals, got {target!r}") from None
        expr = expr.func
    path: list[str] = []
    while isinstance(expr, ast.Attribute):
        path.insert(0, expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        raise AppLoadError(f"{spec}: expected 'module:name', 'module:name.attr' or 'module:factory()' after "
                           f"the colon, got {target!r}")
    return [expr.id, *path], args, kwargs


def _import_module(mod_name: str) -> Any:
    """The module, or AppLoadError: not found (no traceback) or raising (its traceback as the cause)."""
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
            raise AppLoadError(f"cannot import module {mod_name!r}: {exc}{_not_found_hint(mod_name)}") from None
        raise AppLoadError(f"importing module {mod_name!r} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the application's own code failed while its module ran
        raise AppLoadError(f"importing module {mod_name!r} failed: {type(exc).__name__}: {exc}") from exc


def _not_found_hint(mod_name: str) -> str:
    if mod_name.endswith(".py"):
        return f" (a module name, not a file: did you mean {mod_name[:-3].replace(os.sep, '.')!r}?)"
    shown = [entry or "." for entry in sys.path[:3]]
    more = ", ..." if len(sys.path) > 3 else ""
    return f" (Python path: {', '.join(shown)}{more}; --chdir DIR or --pythonpath DIR adds a directory)"


def _defined_hint(obj: Any, depth: int) -> str:
    """The callables the module does define, when the default name was not one of them."""
    if depth:
        return ""
    names = [n for n, v in sorted(vars(obj).items()) if callable(v) and not n.startswith("_")
             and getattr(v, "__module__", None) == getattr(obj, "__name__", None)]
    return f" (it defines: {', '.join(names[:8])})" if names else ""


#: a read that gathers more than this (bytes) copies its pieces into a BytesIO as they come
_COLLECT_IN_LIST = 1 << 20


class InputStream:
    """``wsgi.input``: reads the request body on demand (PEP 3333 "Input and Error Streams").

    ``pull()`` returns the next piece of body or ``b""`` at its end; the
    server sends ``100 Continue`` from inside it on the first read when the
    client asked for it (RFC 9110 §10.1.1).

    Only the piece being read is kept, with a read position into it: bytes are
    sliced out of it once, and a read spanning pieces copies each of them once
    into its result, so every way of reading costs time linear in the body
    (appending pieces to one growing buffer, or re-slicing its rest on every
    line, is quadratic: 64 MB took 20 s of CPU). A body that arrives in one piece
    is handed over as that piece, without a copy.
    """

    __slots__ = ("_pull", "_buf", "_pos", "_done", "consumed")

    def __init__(self, pull: Callable[[], bytes]) -> None:
        self._pull = pull
        self._buf = b""  # the piece being read; its unread bytes are _buf[_pos:]
        self._pos = 0
        self._done = False
        self.consumed = 0

    def _keep(self, data: bytes, cut: int) -> bytes:
        """Return ``data[:cut]`` and keep the rest of ``data`` as the current piece."""
        if cut < len(data):
            self._buf, self._pos = data, cut
            return data[:cut]
        return data

    def _take_rest(self) -> bytes:
        """The unread bytes of the current piece, which is then done with."""
        buf, pos = self._buf, self._pos
        self._buf, self._pos = b"", 0
        return buf[pos:] if pos else buf

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all of the body when size is -1 or None)."""
        buf, pos = self._buf, self._pos
        if size is None or size < 0:
            size = -1
        elif len(buf) - pos >= size:
            # served from the current piece (the whole of it when it fits)
            end = pos + size
            self._pos = end
            data = buf[pos:end] if pos or end < len(buf) else buf
            self.consumed += len(data)
            return data
        return self._read_on(size)

    def _read_on(self, size: int) -> bytes:
        """read() past the current piece; a read that one piece answers returns it uncopied."""
        buf = self._buf
        if buf:
            data = buf[self._pos:]
            self._buf, self._pos = b"", 0
        else:
            data = buf
        pull = self._pull
        while not self._done and (size < 0 or len(data) < size):
            more = pull()
            if not more:
                self._done = True
            elif data:
                return self._collect([data], len(data), size, False, more)
            else:
                data = more
        if 0 <= size < len(data):
            data = self._keep(data, size)
        self.consumed += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, including its LF (at most ``size`` bytes when given)."""
        limit = size if size is not None and size >= 0 else -1
        if limit == 0:
            return b""
        buf, pos = self._buf, self._pos
        end = len(buf) if limit < 0 else min(len(buf), pos + limit)
        nl = buf.find(b"\n", pos, end)
        if nl >= 0 or end < len(buf):
            # the common case: the line (or the size limit) ends inside the current piece
            cut = nl + 1 if nl >= 0 else end
            self._pos = cut
            data = buf[pos:cut]
            self.consumed += len(data)
            return data
        if pos < len(buf):
            # the line goes on in the next pieces
            rest = self._take_rest()
            return self._collect([rest], len(rest), limit, True)
        if self._done:
            return b""
        data = self._pull()
        if not data:
            self._done = True
            return data
        self._buf, self._pos = data, 0  # a new piece: the line most likely ends in it
        return self.readline(limit)

    def _collect(self, parts: list[bytes], got: int, limit: int, line: bool, data: bytes = b"") -> bytes:
        """Take ``data`` (when given) and more pieces after ``parts`` (``got`` bytes, no LF)
        up to ``limit`` bytes (-1: no limit) or, when ``line``, to the first LF; return
        them all as one bytes.

        Each piece is searched once and copied once into the result: time linear in what
        is read. Past 1 MiB the pieces are copied into a BytesIO as they come and dropped,
        so a large read needs its own size in memory, not twice that.
        """
        acc = None
        pull = self._pull
        while limit < 0 or got < limit:
            if not data:
                if self._done:
                    break
                data = pull()
                if not data:
                    self._done = True
                    break
            room = len(data) if limit < 0 else min(len(data), limit - got)
            cut = data.find(b"\n", 0, room) + 1 if line else 0
            if cut or room < len(data):
                data = self._keep(data, cut or room)
                limit = got + len(data)  # this read ends here
            got += len(data)
            if acc is not None:
                acc.write(data)
            else:
                parts.append(data)
                if got > _COLLECT_IN_LIST:
                    acc = BytesIO()
                    acc.writelines(parts)
            data = b""
        data = b"".join(parts) if acc is None else acc.getvalue()
        self.consumed += got
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        """All remaining lines (stops once ``hint`` bytes have been read, when given)."""
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    @property
    def exhausted(self) -> bool:
        """True when the whole body has been read by someone."""
        return self._done and self._pos >= len(self._buf)

    def discard(self, limit: int) -> bool:
        """Read and drop the rest of the body; False if more than ``limit`` bytes remained."""
        dropped = len(self._buf) - self._pos
        self._buf, self._pos = b"", 0
        pull = self._pull
        while dropped <= limit and not self._done:
            data = pull()
            if not data:
                self._done = True
            dropped += len(data)
        return self._done


class EmptyInput(InputStream):
    """``wsgi.input`` of a request without a body: always at its end, so one instance serves all."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(lambda: b"")
        self._done = True

    def read(self, size: int | None = -1) -> bytes:
        """Nothing to read."""
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        """Nothing to read."""
        return b""

    def readlines(self, hint: int = -1) -> list[bytes]:
        """Nothing to read."""
        return []

    def discard(self, limit: int) -> bool:
        """Nothing to drop."""
        return True


EMPTY_INPUT = EmptyInput()


def environ_template(
    *,
    server_name: str,
    server_port: int,
    errors: Any = None,
    multithread: bool = False,
    multiprocess: bool = True,
) -> dict:
    """The environ keys that are the same for every request a worker serves (PEP 3333)."""
    return {
        "SCRIPT_NAME": "",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": errors if errors is not None else sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }


#: field name as received -> its environ key ("" = left out); names repeat, so each is mapped once
_ENV_KEYS: dict[str, str] = {}


def _env_key(name: str) -> str:
    """CGI's mapping of a field name (RFC 3875 §4.1.18), with httpd's rule that names with "_" are left out."""
    if "_" in name:
        key = ""
    else:
        key = name.upper().replace("-", "_")
        if key == "HOST":
            key = ""
        elif key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
    remember(_ENV_KEYS, name, key)
    return key


def build_environ(req: Request, body: InputStream, template: dict, remote_addr: str, remote_port: int) -> dict:
    """The WSGI environ for ``req`` (PEP 3333 "environ Variables", CGI RFC 3875 §4.1)."""
    path = req.path
    if "%" in path:
        path = unquote_to_bytes(path).decode("latin-1")
    env = template.copy()
    env["REQUEST_METHOD"] = req.method
    env["PATH_INFO"] = path
    env["QUERY_STRING"] = req.query
    env["REQUEST_URI"] = env["RAW_URI"] = req.target
    env["SERVER_PROTOCOL"] = req.http_version
    env["REMOTE_ADDR"] = remote_addr
    env["REMOTE_PORT"] = str(remote_port)
    env["wsgi.input"] = body
    env["mpm_harness.request"] = req
    env["mpm_harness.headers"] = req.headers
    if req.host:
        env["HTTP_HOST"] = req.host
    keys = _ENV_KEYS
    for name, value in req.headers:
        key = keys.get(name)
        if key is None:
            key = _env_key(name)
        if not key:
            continue  # a name with "_", or Host (already the effective authority, RFC 9112 §3.2.2)
        if key in env and key[0] == "H":
            # RFC 9110 §5.3: repeated fields combine with commas (cookies with "; ").
            env[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            env[key] = value
    if req.chunked:
        env.pop("CONTENT_LENGTH", None)
    return env


#: the block a FileWrapper reads when the application names none
FILE_BLOCK = 65536


class FileWrapper:
    """``wsgi.file_wrapper``: PEP 3333 "Optional Platform-Specific File Handling".

    ``environ["wsgi.file_wrapper"](filelike, blksize)`` is an iterable of blocks of at
    most ``blksize`` bytes, ``filelike.read(blksize)`` until it returns ``b""``; its
    ``close()`` closes the file-like (when that has a ``close()``). Every MPM can
    iterate it in the worker like any other response iterable, and does so when the
    response has no Content-Length (it is then chunked, or close-delimited for HTTP/1.0).

    On the event MPM it also lets the listener finish the body, as httpd's event
    finishes a file bucket in write completion: when the application set Content-Length
    and the response has a body, the worker sends the head and the first block and is
    free; the listener reads and sends the rest as the client takes it (Timeout
    restarting on progress), never more than Content-Length, and calls ``close()``
    exactly once however the response ends (complete, client gone, Timeout, child
    exiting). A slow reader then holds no worker thread and about one block of memory.
    A file-like that gives fewer bytes than its Content-Length gets the connection
    closed after them (the client would wait for the rest, or take the next response
    for it); one whose ``read()`` raises there has its error logged and the connection
    closed.

    The listener must never wait, so it reads only a file-like whose ``read()`` returns
    at once (:meth:`reads_at_once`): a regular file (``fileno()`` names an ``S_ISREG``
    file), an ``io.BytesIO``, or any object with the attribute
    ``nonblocking_source = True``, which promises that ``read(n)`` returns at once with
    at most ``n`` bytes (fewer allowed, ``b""`` only at the end) and never waits on a
    network, a pipe or a lock. Any other file-like is iterated in the worker.
    """

    __slots__ = ("filelike", "blksize")

    def __init__(self, filelike: Any, blksize: int = FILE_BLOCK) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> "FileWrapper":
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return data

    def read_block(self, limit: int) -> bytes:
        """The next block, at most ``limit`` bytes asked of the file-like (``b""`` at its end)."""
        return self.filelike.read(min(self.blksize, limit))

    def reads_at_once(self) -> bool:
        """True when the file-like's ``read()`` never waits: a regular file, a BytesIO, or
        an object that says so with ``nonblocking_source = True`` (see the class docstring)."""
        f = self.filelike
        if getattr(f, "nonblocking_source", False) is True or isinstance(f, BytesIO):
            return True
        try:
            return stat.S_ISREG(os.fstat(f.fileno()).st_mode)
        except (AttributeError, TypeError, ValueError, OSError):  # io.UnsupportedOperation included
            return False

    def close(self) -> None:
        """PEP 3333: closing the wrapper closes the file-like."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


_NORMAL, _LENGTH, _HOP, _CLOSE = range(4)
_DATE, _SERVER = 16, 32  # bit flags: which of Date / Server the application set itself
_SERVER_LINE = b"Server: " + SERVER_SOFTWARE.encode() + b"\r\n"
#: (name, value) -> (encoded field line, kind, length): apps repeat the same fields,
#: so each is validated and encoded once (bounded; cleared when it grows large)
_HEADER_CACHE: dict[tuple[str, str], tuple[bytes, int, int | None]] = {}
_STATUS_CACHE: dict[str, tuple[int, bytes]] = {}
#: Every process has its own caches (prefork: 50 children), so they stay small: each is a
#: bounded memo (http.request.remember), and a header is kept only when its value is at most
#: _CACHED_VALUE_MAX characters (a session cookie or an ETag differs per response and would only
#: churn it). 4096 entries of any length held over a MiB per child for an app whose lengths or
#: cookies vary.
_CACHED_VALUE_MAX = 64


def _status_entry(status: str) -> tuple[int, bytes]:
    """Validate a WSGI status string (PEP 3333: "200 OK") and encode its status line."""
    if type(status) is not str:
        raise TypeError(f"status must be str, got {type(status).__name__}")
    code, reason = parse_status(status)
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    entry = (code, b"HTTP/1.1 %d %s\r\n" % (code, reason.encode("latin-1")))
    remember(_STATUS_CACHE, status, entry)
    return entry


#: field name from an application -> its lower case, for the names that passed the token check
_NAMES: dict[str, str] = {}


def _field_name(name: str) -> str:
    """The lower-cased name, once it is known to be a token (RFC 9110 §5.1)."""
    check_field_name(name)
    lname = name.lower()
    remember(_NAMES, name, lname)
    return lname


def _header_entry(item) -> tuple[bytes, int, int | None]:
    """Validate one (name, value) response header and encode its field line.

    The name must be a token and the value field text (RFC 9110 §5.1, §5.5); the
    hop-by-hop filter then sees exactly the name that would go on the wire.
    """
    name, value = item
    if type(name) is not str or type(value) is not str:
        raise TypeError(f"header name and value must be str (PEP 3333), got {item!r}")
    lname = _NAMES.get(name) or _field_name(name)
    if not (value.isascii() and value.isprintable()):
        check_field_value(name, value)  # HTAB, obs-text, or a character to refuse: the full check
    length = None
    line = b""
    if lname in HOP_BY_HOP:
        kind = _CLOSE if lname == "connection" and "close" in value.lower() else _HOP
    else:
        if lname == "content-length":
            kind = _LENGTH
            # the common case without a call; parse_content_length refuses or takes the rest
            length = int(value) if value.isdigit() and value.isascii() and len(value) < 19 else \
                parse_content_length(value)
        elif lname == "date":
            kind = _DATE
        elif lname == "server":
            kind = _SERVER
        else:
            kind = _NORMAL
        line = name.encode("latin-1") + b": " + value.encode("latin-1") + b"\r\n"
    entry = (line, kind, length)
    if type(item) is tuple and len(value) <= _CACHED_VALUE_MAX:
        remember(_HEADER_CACHE, item, entry)
    return entry


class WSGIResponse(ResponseFraming):
    """One response: PEP 3333's ``start_response`` and ``write``, on the sans-IO framing
    of ``servers.http.framing`` (RFC 9112 §6), which it extends.

    ``send`` writes bytes to the client. After ``finish()``, ``keep_alive``
    tells the caller whether the connection may carry another request.

    ``defer``, when the connection's writer offers it (the event MPM), takes the rest
    of a :class:`FileWrapper` body: ``defer(wrapper, owed)`` makes the writer send
    ``owed`` more bytes read from the wrapper and then close it (:meth:`send_file`).
    """

    __slots__ = ("req", "_send", "_policy", "_keepalives", "_stopping", "_body", "status", "_status_text",
                 "_headers", "head_sent", "_app_close", "_head_bytes", "bytes_sent", "_own", "close_error",
                 "defer", "deferred")

    def __init__(
        self,
        req: Request,
        send: Callable[[bytes], Any],
        policy: KeepAlivePolicy,
        keepalives: int,
        stopping: Callable[[], bool],
        body: InputStream,
        defer: Callable[["FileWrapper", int], None] | None = None,
    ) -> None:
        self.req = req
        self._send = send
        self._policy = policy
        self._keepalives = keepalives
        self._stopping = stopping
        self._body = body
        self.status: int | None = None
        self._status_text = ""
        self._headers: list[bytes] = []
        self.head_sent = False
        # ResponseFraming's state, set here rather than through its __init__ (one call less)
        self.length: int | None = None
        self.chunked = False
        self.no_body = False
        self.close_delimited = False
        self.sent_body = 0
        self.keep_alive = False
        self._app_close = False
        self._own = 0
        self._head_bytes = 0
        #: what the access log counts once the response is done: the head, and the body as
        #: the application gave it (the part handed to ``defer`` included), without chunk framing
        self.bytes_sent = 0
        #: what the iterable's close() raised after a complete response (run_app)
        self.close_error: Exception | None = None
        self.defer = defer
        #: the rest of the body and the iterable's close() were handed to ``defer``
        self.deferred = False

    @property
    def header_lines(self) -> list[bytes]:
        """The application's header field lines as validated for the wire (mod_log_config's ``%{..}o``)."""
        return self._headers

    @property
    def head_bytes(self) -> int:
        """Bytes of the response head sent (status line and fields; mod_logio's part of ``%O``)."""
        return self._head_bytes

    # -- PEP 3333 --------------------------------------------------------------
    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info=None):
        """PEP 3333 start_response: record status and headers; return ``write``.

        Raises :class:`InvalidResponse` for a status or header field that must not
        reach the wire (RFC 9110 §5.1, §5.5, §8.6, §15; RFC 9112 §4), TypeError for
        one that is not a str; nothing has been sent then, so the server answers 500.
        """
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        entry = _STATUS_CACHE.get(status)
        if entry is None:
            entry = _status_entry(status)
        lines = []
        length = None
        app_close = False
        own = 0
        for item in headers:
            h = _HEADER_CACHE.get(item) if type(item) is tuple else None
            if h is None:
                h = _header_entry(item)
            kind = h[1]
            if kind == _NORMAL:
                lines.append(h[0])
            elif kind == _LENGTH:
                if length is None:
                    length = h[2]
                    lines.append(h[0])
                elif h[2] != length:
                    # RFC 9110 §8.6, RFC 9112 §6.3: a recipient taking the first value desyncs
                    raise InvalidResponse(f"two different Content-Length values: {length} and {h[2]}")
                # the same value again: sent once (RFC 9112 §6.3 lets a recipient collapse it too)
            elif kind == _CLOSE:
                app_close = True  # the application asks to close; the field itself is ours (PEP 3333)
            elif kind != _HOP:
                # the application's own Date / Server replace ours (single fields, RFC 9110 §5.3)
                own |= kind
                lines.append(h[0])
        self.status = entry[0]
        self._status_text = entry[1]
        self._headers = lines
        self.length = length  # the declared length, until the head is framed
        self._app_close = app_close
        self._own = own
        return self.write

    def write(self, data: bytes) -> None:
        """Send body bytes (the legacy ``write`` callable and the iterable path)."""
        if not self.head_sent:
            self._send_head(None, data)
        elif data:
            out = self.frame(data)
            if out:
                self._send(out)

    # -- the head and the body, framed by servers.http.framing ------------------
    def _send_head(self, total: int | None, first: bytes = b"") -> None:
        """Send the head, with the first piece of body when there is one; ``total`` is the
        whole body's length when known (a list or tuple), else None."""
        if self.status is None:
            raise AssertionError("application wrote body before start_response")
        req = self.req
        status = self.status
        own = self._own
        if own:
            parts = [self._status_text]
            if not own & _DATE:
                parts.append(DATE.line())
            if not own & _SERVER:
                parts.append(_SERVER_LINE)
        else:
            parts = [self._status_text, DATE.line(), _SERVER_LINE]
        # a body that is not bytes (PEP 3333) raises here or below, before the head counts
        # as sent, so a 500 can still be answered instead
        body = self.frame_head(req.method, req.version, status, total, self._headers, parts, first)
        body_unread = req.expect_continue and not self._body.consumed and not self._body.exhausted
        # positional: this runs once per response, and keywords cost a third of the call
        keep, conn_lines = self._policy.decide(req, status, not self.close_delimited, self._keepalives,
                                               self._stopping(), self._app_close, body_unread)
        if not keep:
            self.keep_alive = False
        parts.append(conn_lines)
        parts.append(b"\r\n")
        head = b"".join(parts)
        out = head + body if body else head
        self.head_sent = True
        self._head_bytes = len(head)
        self.bytes_sent = len(head) + self.sent_body  # a known total: the whole response
        self._send(out)

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Send a :class:`FileWrapper` body the fast way when there is one; False when the
        caller must iterate it as usual.

        A response without a body (HEAD, 1xx, 204, 304: RFC 9110 §6.4.1) sends its head and
        leaves the file unread. A response with the application's Content-Length, on a
        connection whose writer can ``defer``, from a file-like that reads at once, sends its
        head with the first block and hands the rest to the writer (``deferred``; the writer
        owns the wrapper's close() from then on), as httpd's event leaves a file bucket to
        write completion. A first block that already ends the body, or an empty file, ends
        here; ``finish()`` then closes a connection whose body fell short (RFC 9112 §6.3).
        """
        status = self.status
        if self.head_sent or status is None:
            return False
        if body_forbidden(status, self.req.method):
            self._send_head(None)
            return True
        length = self.length
        if length is None or self.defer is None or not wrapper.reads_at_once():
            return False
        first = wrapper.read_block(length) if length else b""
        self._send_head(None, first)
        owed = length - self.sent_body
        if owed > 0 and first:
            self.defer(wrapper, owed)
            self.deferred = True
            self.bytes_sent += owed  # the access log counts the body as the application gave it
        return True

    def finish(self) -> None:
        """End the response: head if not yet sent, last chunk, length check (``end``)."""
        if not self.head_sent:
            self._send_head(0)
        tail = self.end()
        if tail:
            self._send(tail)
        self.bytes_sent = self._head_bytes + self.sent_body


def run_app(app: WSGIApp, environ: dict, response: WSGIResponse) -> None:
    """Call the application and stream its result (PEP 3333 "Specification Details").

    Raises whatever the application raised; the caller answers 500 when no
    head was sent yet, or aborts the connection otherwise. An exception from the
    iterable's ``close()`` after a complete response is kept in
    ``response.close_error`` instead: the client has its whole, correctly framed
    answer, which aborting the connection could destroy (an RST discards what the
    client has not read yet); the caller logs it.

    A :class:`FileWrapper` (PEP 3333 ``wsgi.file_wrapper``) may be sent by
    :meth:`WSGIResponse.send_file` instead; when its rest was handed to the
    connection's writer (``response.deferred``), so was its close().
    """
    result = app(environ, response.start_response)
    try:
        if not response.head_sent and isinstance(result, (list, tuple)):
            # Known total length: one Content-Length and a single send of head + body.
            if response.status is None:
                raise AssertionError("application returned without calling start_response")
            body = result[0] if len(result) == 1 else b"".join(result)
            response._send_head(len(body), body)  # the whole message: no finish() needed
        elif isinstance(result, FileWrapper) and response.send_file(result):
            if response.deferred:
                return  # the writer sends the rest and calls close() (event's write completion)
            response.finish()
        else:
            for data in result:
                if data:
                    response.write(data)
            response.finish()
    except BaseException:
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception as exc:
            response.close_error = exc


__all__ = [
    "DEFAULT_CALLABLE", "EMPTY_INPUT", "FILE_BLOCK", "AppLoadError", "FileWrapper", "InputStream", "InvalidResponse",
    "WSGIResponse", "build_environ", "environ_template", "error_response", "load_app", "run_app",
]
