"""Thread-safety demonstrations: what a non-thread-safe application does on each MPM.

httpd's classic case is a non-ZTS mod_php: it
refuses to load on a threaded MPM (AH00013), and thread-unsafe extensions
that do load corrupt data under load. These handlers reproduce each failure
in Python, next to a control that is made safe, so a test can show that the
harness measures the *application's* unsafety and not a server bug.

Serve them with ``python -m servers worker --app servers.apps.threadsafety:app``.

* ``GET /ts/mpm`` -> JSON: this process's pid, the thread, ``wsgi.multithread``
  and ``wsgi.multiprocess``, and ``"app": "threadsafety"`` (a suite checks for
  it before it trusts a ``--target``).
* ``GET /ts/legacy`` -> a "legacy module" that is not thread-safe and knows it:
  on a threaded MPM it refuses to run, every time, with mod_php's message and
  ``AH00013: Pre-configuration failed`` (500, and the same line in the error
  log); on a non-threaded MPM it answers 200.
* ``GET /ts/current?id=X[&ms=N]`` -> a per-request *global* "current request"
  (the non-ZTS pattern): store X in a module global, yield N ms (default 5),
  answer with the global's value. Concurrent requests in one process overwrite
  each other's value: ``{"id": X, "seen": Y, "pid": P}`` with Y != X.
* ``GET /ts/current-safe?id=X[&ms=N]`` -> the control: the same with
  ``threading.local``.
* ``GET /ts/count?key=K[&ms=N]`` -> an unsynchronised read-modify-write of
  counter K with a yield of N ms (default 2) between the read and the write:
  updates get lost when requests overlap in one process. Answers
  ``{"value": V, "pid": P}``, V being the counter after this request's write.
* ``GET /ts/count-safe?key=K[&ms=N]`` -> the control: the same under a lock.
* ``GET /ts/hold?ms=N`` -> sleep N ms (at most 10000), answer with the pid.
* ``GET /ts/crash[?ms=N]`` -> after N ms, ``os._exit(1)``: the whole process
  dies, as a C extension's segfault would take down an httpd child with every
  request it was serving.
* ``/`` (hello) as the default app (the suites probe with ``GET /`` and watch the
  scoreboard at the server's own ``/server-status``).

Why a yield inside the window: a plain ``x += 1`` loop does not reliably race
under the GIL (8 threads x 200k increments lost nothing on 3.11), so a test
built on it would falsely pass. The sleep is where a real application would
do I/O (a database call, a template read) between reading and writing
shared state.

The MPM query API: :func:`is_threaded` and :func:`is_async` come from
:mod:`servers.config`; :func:`is_forked` and :func:`mpm_query` add httpd's
``ap_mpm_query`` answers (``AP_MPMQ_IS_THREADED``: prefork "not supported",
worker/event "static"; ``AP_MPMQ_IS_FORKED``: "dynamic" for all three;
``AP_MPMQ_IS_ASYNC``: event only). :func:`legacy_pre_config` is the legacy
module's configuration check, the deterministic form of ``/ts/legacy``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from urllib.parse import parse_qs

from ..config import is_async, is_threaded
from .default import hello

__all__ = [
    "AH00013",
    "LEGACY_MESSAGE",
    "LegacyModuleError",
    "app",
    "is_async",
    "is_forked",
    "is_threaded",
    "legacy_pre_config",
    "mpm_query",
]

#: mod_php's words (php_apache2_module, non-ZTS build on a threaded MPM)
LEGACY_MESSAGE = ("Apache is running a threaded MPM, but your PHP Module is not compiled to be threadsafe.  "
                  "You need to recompile PHP.")
AH00013 = "AH00013: Pre-configuration failed"
MAX_MS = 10_000


class LegacyModuleError(RuntimeError):
    """The legacy module refuses this MPM (httpd then exits with AH00013)."""


def is_forked(mpm: str) -> bool:
    """httpd's ``AP_MPMQ_IS_FORKED``: every Unix MPM forks its children (answer "dynamic")."""
    is_threaded(mpm)  # validates the name (ConfigError for an unknown MPM)
    return True


def mpm_query(mpm: str) -> dict[str, object]:
    """httpd's ``ap_mpm_query`` answers for ``mpm``, as booleans and as httpd's constant names."""
    threaded, forked, asynchronous = is_threaded(mpm), is_forked(mpm), is_async(mpm)
    return {
        "mpm": mpm,
        "is_threaded": threaded,
        "is_forked": forked,
        "is_async": asynchronous,
        "AP_MPMQ_IS_THREADED": "AP_MPMQ_STATIC" if threaded else "AP_MPMQ_NOT_SUPPORTED",
        "AP_MPMQ_IS_FORKED": "AP_MPMQ_DYNAMIC" if forked else "AP_MPMQ_NOT_SUPPORTED",
        "AP_MPMQ_IS_ASYNC": 1 if asynchronous else 0,
    }


def legacy_pre_config(mpm: str) -> None:
    """The legacy module's pre-config hook: raise :class:`LegacyModuleError` on a threaded MPM."""
    if is_threaded(mpm):
        raise LegacyModuleError(f"{LEGACY_MESSAGE}\n{AH00013}")


# -- per-process state, deliberately shared by every thread of a process -----------------
_current: object = None  # the non-ZTS "current request" global
_local = threading.local()
_counts: dict[str, int] = {}
_safe_counts: dict[str, int] = {}
_lock = threading.Lock()
_legacy_logged = False


def _json(start_response, doc: dict, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _ms(qs: dict, default: int) -> int:
    try:
        ms = int(qs.get("ms", [str(default)])[0])
    except ValueError:
        ms = default
    return min(max(ms, 0), MAX_MS)


def _mpm(environ, start_response, qs) -> list[bytes]:
    return _json(start_response, {
        "app": "threadsafety",
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "multithread": bool(environ.get("wsgi.multithread")),
        "multiprocess": bool(environ.get("wsgi.multiprocess")),
    })


def _legacy(environ, start_response, qs) -> list[bytes]:
    global _legacy_logged
    if environ.get("wsgi.multithread"):
        if not _legacy_logged:  # once per process, as httpd logs it once at start
            _legacy_logged = True
            errors = environ.get("wsgi.errors")
            if errors is not None:
                errors.write(f"{LEGACY_MESSAGE}\n{AH00013}\n")
                errors.flush()
        body = f"{LEGACY_MESSAGE}\n{AH00013}\n".encode()
        start_response("500 Internal Server Error",
                       [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = b"legacy module ran: this MPM is not threaded\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _current_unsafe(environ, start_response, qs) -> list[bytes]:
    global _current
    rid = qs.get("id", [""])[0]
    _current = rid
    time.sleep(_ms(qs, 5) / 1000)  # the request does some I/O; another thread runs meanwhile
    return _json(start_response, {"id": rid, "seen": _current, "pid": os.getpid()})


def _current_safe(environ, start_response, qs) -> list[bytes]:
    rid = qs.get("id", [""])[0]
    _local.current = rid
    time.sleep(_ms(qs, 5) / 1000)
    return _json(start_response, {"id": rid, "seen": _local.current, "pid": os.getpid()})


def _count_unsafe(environ, start_response, qs) -> list[bytes]:
    key = qs.get("key", ["default"])[0]
    value = _counts.get(key, 0)  # read
    time.sleep(_ms(qs, 2) / 1000)  # the window: another request reads the same value
    _counts[key] = value + 1  # write
    return _json(start_response, {"value": value + 1, "pid": os.getpid()})


def _count_safe(environ, start_response, qs) -> list[bytes]:
    key = qs.get("key", ["default"])[0]
    with _lock:
        value = _safe_counts.get(key, 0)
        time.sleep(_ms(qs, 2) / 1000)
        _safe_counts[key] = value + 1
    return _json(start_response, {"value": value + 1, "pid": os.getpid()})


def _hold(environ, start_response, qs) -> list[bytes]:
    time.sleep(_ms(qs, 1000) / 1000)
    return _json(start_response, {"pid": os.getpid()})


def _crash(environ, start_response, qs) -> list[bytes]:
    time.sleep(_ms(qs, 0) / 1000)
    os._exit(1)  # no cleanup, no response: the process is gone with everything it was serving


_ROUTES = {
    "/ts/mpm": _mpm,
    "/ts/legacy": _legacy,
    "/ts/current": _current_unsafe,
    "/ts/current-safe": _current_safe,
    "/ts/count": _count_unsafe,
    "/ts/count-safe": _count_safe,
    "/ts/hold": _hold,
    "/ts/crash": _crash,
}


def app(environ, start_response):
    """Route to a demonstration (see the module docstring); 404 for anything else."""
    path = environ.get("PATH_INFO", "")
    if path == "/":
        return hello(environ, start_response)
    handler = _ROUTES.get(path)
    if handler is None:
        body = b"not found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return handler(environ, start_response, parse_qs(environ.get("QUERY_STRING", "")))
