"""Built-in WSGI applications used by the suites and the harness.

``servers.apps:app`` is the default router:

* ``GET /`` -> ``Hello, World!`` (13 bytes, Content-Length set);
* ``/echo`` (any method) -> JSON mirror of the server's parse of the request
  (bodies up to 1 MiB; a larger one gets 413 and a close);
* ``/bytes/N`` -> N bytes (at most 64 MiB), in 64 KiB pieces of one shared block
  through ``wsgi.file_wrapper`` (the event MPM's listener sends them to a slow
  reader); N that is not ASCII digits in range gets 400;
* ``/sleep?ms=N`` -> sleeps N ms (at most 60000) then answers;
* ``/status/204`` -> 204 No Content (no Content-Length);
* ``/stream?n=N`` -> N short lines yielded one by one without Content-Length (the server
  frames the body: chunked to HTTP/1.1, closed to HTTP/1.0);
* ``/page[?c=N][&wait_ms=N]`` -> a realistic dynamic page: SQLite queries, a backend wait
  and a template render (:mod:`servers.apps.realistic`);
* ``/server-status`` is the server's own (mod_status at StatusLocation, in front of any app),
  not a route of this app.
"""

from .default import app

__all__ = ["app"]
