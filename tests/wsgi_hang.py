"""A WSGI module whose import never finishes (within a minute): a server that never becomes ready.

The harness tests start a server with ``--app tests.wsgi_hang:app`` and a
short start timeout; the launcher must give up, stop it by PID and the run
must record a failed cell.  The bound keeps a leaked process from living on.
"""

import time

_deadline = time.monotonic() + 60
while time.monotonic() < _deadline:
    time.sleep(0.5)


def app(environ, start_response):  # pragma: no cover - never reached in the tests
    """Never served: the import above does not return in time."""
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]
