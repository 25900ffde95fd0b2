"""prefork's children serve with a ServeContext the parent built and warmed before it forked.

Built in each child, the context (keep-alive policy, limits, the app's wrappers, the environ
template) cost each child ~0.2-0.3 MiB of private memory; built once in the parent, the children
share it copy-on-write (docs/performance.md, "Where a prefork child's memory goes"). Objects the
parent built are in the collector's permanent generation (gc.freeze() before each fork), so
``gc.get_objects()`` in a child lists only what the child built itself. A restart may bring a new
configuration: the parent builds the context again for each generation. The parent also serves
a few requests of its own through the connection path (child.warm_serving_path), to a built-in
answer: never to the application, the access log or the scoreboard.
"""

from __future__ import annotations

import gc
import json
import os

from servers.mpm.child import WARM_REQUESTS
from servers.mpm.serve import ServeContext
from suites.wire import Conn, wait_until
from .serverutil import GET

APP = "tests.test_prefork_memory_context:app"
ONE_CHILD = {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1,
             "MaxRequestWorkers": 1, "ServerLimit": 1}
#: calls of the application in this process (a child inherits the parent's count)
CALLS = 0


def app(environ, start_response):
    """Answer how many ServeContexts this process built itself, how many times this process
    called the application, its pid and SERVER_NAME (JSON)."""
    global CALLS
    CALLS += 1
    built_here = sum(1 for o in gc.get_objects() if isinstance(o, ServeContext))
    body = json.dumps({"built_here": built_here, "calls": CALLS, "pid": os.getpid(),
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


def _lines(path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def test_the_warm_up_reaches_neither_the_app_nor_the_access_log(launch, tmp_path):
    """The child's first request is the application's first call in the whole tree, and the
    access log has one line per request a client sent, none for the parent's warm-up."""
    log = tmp_path / "access.log"
    h = launch("prefork", {**ONE_CHILD, "CustomLog": f"{log} common"}, app=APP)
    for n in (1, 2):
        answer = _ask(h.port)
        assert answer["calls"] == n
        wait_until(lambda: len(_lines(log)) >= n, 10, what=f"access log line {n}")
        assert len(_lines(log)) == n, _lines(log)


def test_the_warm_up_is_not_counted_in_the_scoreboard(launch):
    """ExtendedStatus counts the requests clients sent: the warm-up's are not among them."""
    h = launch("prefork", {**ONE_CHILD, "ExtendedStatus": True}, app=APP)
    _ask(h.port)
    st = h.status()
    assert st.total_accesses is not None
    assert st.total_accesses <= 2 < WARM_REQUESTS  # this request and, maybe, the status request
