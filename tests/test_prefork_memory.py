"""prefork's children share the serving path's modules with the parent.

httpd loads its modules before it forks; a module a child imports for itself lives in that
child's private memory (docs/performance.md, "Where a prefork child's memory goes"). Objects
the parent built before forking are in the collector's permanent generation (gc.freeze() just
before each fork), so ``gc.get_objects()`` in a child lists only what the child built itself:
the app below answers which of the serving path's functions the child built.
"""

from __future__ import annotations

import gc
import json
import sys

import servers.apps  # noqa: F401  (the built-in app: the server's parent imports it with this module)
from suites.wire import Conn
from .serverutil import GET

APP = "tests.test_prefork_memory:app"

#: objects a prefork child uses, by the module that defines them (the MPM's child loop is loaded
#: with the MPM, servers.mpm.get_mpm; the /page module with the built-in app)
SERVING_PATH = {
    "servers.mpm.prefork": "child_main",
    "servers.mpm.child": "_PRCTL",  # libc's prctl through ctypes (a class built per CDLL)
    "servers.apps.realistic": "page",
}


def app(environ, start_response):
    """Answer the modules of SERVING_PATH that this process imported itself (JSON list)."""
    built_here = {id(o) for o in gc.get_objects()}
    own = [mod for mod, fn in SERVING_PATH.items()
           if mod not in sys.modules or id(getattr(sys.modules[mod], fn)) in built_here]
    body = json.dumps(own).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def test_the_serving_path_is_imported_before_fork(launch):
    """The MPM's child module and the built-in app's /page module come from the parent's memory."""
    h = launch("prefork", {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1,
                           "MaxRequestWorkers": 1, "ServerLimit": 1}, app=APP)
    c = Conn(h.port)
    try:
        c.send(GET)
        r = c.read_response(timeout=10)
        assert r.status == 200
        assert json.loads(r.body) == []
    finally:
        c.close()

