"""mod_status as part of the server: its handler at StatusLocation, in front of whatever app is served.

httpd serves its status page through a handler (``<Location /server-status>
SetHandler server-status``) that answers before any application sees the request,
so the page is there whatever the site runs, and guards it with ``Require local``
in its default configuration. Here the connection loop (serve.handle_request)
hands a request whose path is StatusLocation to the WSGI app this module builds:

* a client StatusRequire does not grant gets ``403 Forbidden`` and the error log
  gets httpd's AH01630 line ("client denied by server configuration");
* GET and HEAD are answered (mod_status declines other methods, and httpd's
  default handler then answers 405; here that is direct);
* ``?auto`` (any ``&``-separated part, case-insensitive, as mod_status reads
  its arguments) gives the machine-readable report, else the HTML page.
"""

from __future__ import annotations

from typing import Callable

from ..http.access import Require
from ..wsgi import WSGIApp

FORBIDDEN = "You don't have permission to access this resource.\n"


def status_handler(render: Callable[[bool], str], require: Require,
                   log: Callable[[str, str], None]) -> Callable[..., WSGIApp]:
    """``for_connection(conn) -> WSGI app`` answering mod_status for that connection's client
    (the connection's own address is what ``Require local`` compares the client with)."""

    def for_connection(conn) -> WSGIApp:
        def status_app(environ, start_response):
            if not require.allows(conn.client, _local_address(conn)):
                log("error", f"{conn.client}: AH01630: client denied by server configuration: "
                             f"{environ.get('PATH_INFO', '')}")
                return _plain(start_response, "403 Forbidden", FORBIDDEN)
            if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
                return _plain(start_response, "405 Method Not Allowed", "mod_status answers GET and HEAD.\n",
                              [("Allow", "GET, HEAD")])
            auto = any(part.lower() == "auto" for part in environ.get("QUERY_STRING", "").split("&"))
            body = render(auto).encode("latin-1", "replace")
            ctype = "text/plain; charset=ISO-8859-1" if auto else "text/html; charset=ISO-8859-1"
            start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
            return [body]

        return status_app

    return for_connection


def _local_address(conn) -> str:
    try:
        return conn.sock.getsockname()[0]
    except (OSError, IndexError, TypeError):
        return ""


def _plain(start_response, status: str, text: str, extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            *(extra or [])])
    return [body]
