"""prefork's children serve with a ServeContext the parent built before it forked.

Built in each child, the context (keep-alive policy, limits, the app's wrappers, the environ
template) cost each child ~0.2-0.3 MiB of private memory; built once in the parent, the children
share it copy-on-write (docs/performance.md, "Where a prefork child's memory goes"). Objects the
parent built are in the collector's permanent generation (gc.freeze() before each fork), so
``gc.get_objects()`` in a child lists only what the child built itself. A restart may bring a new
configuration: the parent builds the context again for each generation.
"""

from __future__ import annotations

import gc
import json
import os

from servers.mpm.serve import ServeContext
from suites.wire import Conn, wait_until
from .serverutil import GET

APP = "tests.test_prefork_memory_context:app"
ONE_CHILD = {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1,
             "MaxRequestWorkers": 1, "ServerLimit": 1}


def app(environ, start_response):
    """Answer how many ServeContexts this process built itself, its pid and SERVER_NAME (JSON)."""
    built_here = sum(1 for o in gc.get_objects() if isinstance(o, ServeContext))
    body = json.dumps({"built_here": built_here, "pid": os.getpid(),
                       "server_name": environ["SERVER_NAME"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _ask(port: int) -> dict:
    c = Conn(port)
    try:
        c.send(GET)
        r = c.read_response(timeout=10)
        assert r.status == 200
        return json.loads(r.body)
    finally:
        c.close()


def test_the_child_serves_with_the_parents_context(launch):
    """The child built no ServeContext of its own: the one it serves with came from the parent."""
    h = launch("prefork", ONE_CHILD, app=APP)
    first = _ask(h.port)
    assert first["built_here"] == 0
    assert first["server_name"] == "127.0.0.1"


def _served_name(port: int, name: str) -> bool:
    try:
        return _ask(port)["server_name"] == name
    except (OSError, AssertionError):
        return False  # a connection the hard restart's SIGHUP cut: ask again


def test_each_restart_builds_it_from_the_new_configuration(launch, tmp_path):
    """After a graceful and then a hard restart the new children serve the re-read ServerName,
    still with a context the parent built."""
    cfg = tmp_path / "prefork.yaml"
    cfg.write_text("ServerName: before.example\n")
    h = launch("prefork", ONE_CHILD, app=APP, config=cfg)
    assert _ask(h.port)["server_name"] == "before.example"
    for restart, name in ((h.graceful, "graceful.example"), (h.restart, "hard.example")):
        cfg.write_text(f"ServerName: {name}\n")
        restart()
        wait_until(lambda: _served_name(h.port, name), 15, what=f"a child serving ServerName {name}")
        answer = _ask(h.port)
        assert answer["built_here"] == 0
