"""WSGI applications the live tests serve with ``--app tests.wsgi_apps:NAME``."""

from __future__ import annotations

import os
from wsgiref.validate import validator

from servers.apps import app as builtin


def app(environ, start_response):
    """The built-in router plus test-only routes: /pid, /stream, /raise, /write."""
    path = environ["PATH_INFO"]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"part%d;" % i for i in range(5))
    if path == "/raise":
        raise RuntimeError("deliberate application error")
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        write(b"01234")
        return [b"56789"]
    return builtin(environ, start_response)


def _compliance(environ, start_response):
    """Exercises the server side of PEP 3333 under wsgiref's validator."""
    inp = environ["wsgi.input"]
    first = inp.readline()
    rest = inp.read(100)  # wsgiref.validate insists on a size argument (PEP 3333 before 1.0.1)
    try:
        raise ValueError("before headers")
    except ValueError:
        import sys

        exc = sys.exc_info()
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    start_response("200 OK", [("Content-Type", "text/plain")], exc)  # exc_info replaces the status
    environ["wsgi.errors"].write("compliance app ran\n")
    environ["wsgi.errors"].flush()
    return iter([b"line1=" + first, b"rest=" + rest])


compliance = validator(_compliance)


def kills_its_server(environ, start_response):
    """Any request SIGKILLs the server's parent process: a server that crashes mid-run (harness tests).

    The parent of a prefork child, or of a worker/event child's threads, is
    the server's control process; its children follow it (PR_SET_PDEATHSIG).
    """
    import signal

    os.kill(os.getppid(), signal.SIGKILL)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
