"""Built-in WSGI applications used by the suites and benchmarks.

``servers.apps:app`` is the default router:

* ``GET /`` -> ``Hello, World!`` (13 bytes, Content-Length set);
* ``/echo`` (any method) -> JSON mirror of the server's parse of the request;
* ``/bytes/N`` -> N bytes (at most 64 MiB);
* ``/sleep?ms=N`` -> sleeps N ms (at most 60000) then answers;
* ``/server-status`` and ``/server-status?auto`` -> the scoreboard in
  mod_status's HTML and machine-readable forms.
"""

from .default import app

__all__ = ["app"]
