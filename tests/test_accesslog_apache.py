"""Our access log against Apache httpd's: the same requests, the same LogFormat, the same lines.

Apache httpd serves the built-in app's resources as files (servers/external/apache.py) and gets
our LogFormat and CustomLog through the directive table; both logs must agree on every field
but the time and the request's duration. Skipped when Apache httpd is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from servers.launcher import available
from suites.wire import Conn, request, wait_until

pytestmark = pytest.mark.skipif(available().get("apache-event") is not None,
                                reason=f"Apache httpd: {available().get('apache-event')}")

SERVERS = ("apache-event", "event")
#: requests both serve the same way: the hello, a file of 100 bytes, HEAD, a quoted and a non-ASCII agent
REQUESTS = (
    b'GET /?a=1&b=%22 HTTP/1.1\r\nHost: x.test:8080\r\nReferer: http://r.test/p?q="1"\r\n'
    b'User-Agent: agent "quoted" \\ \xe9\r\nCookie: theme=dark; y=2\r\n\r\n',
    b"GET /bytes/100 HTTP/1.1\r\nHost: x.test\r\nUser-Agent: curl/8.0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x.test\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x.test\r\n\r\n",
)
#: what is not the request's own: the readiness probes of the launcher
PROBE = "/server-status"


def _serve(launch, name: str, log: Path, fmt: str) -> list[str]:
    """Start ``name`` with CustomLog ``log fmt``, send REQUESTS on one keep-alive connection (then one
    on its own, HTTP/1.0), and return the log's lines for them."""
    h = launch(name, {"StartServers": 1, "ServerName": "www.test", "MaxKeepAliveRequests": 3,
                      "CustomLog": f"{log} {fmt}"})
    with Conn(h.port) as c:
        for raw in REQUESTS:
            c.send(raw)
            c.read_response(head_only=raw.startswith(b"HEAD"))
    assert request(h.port, b"GET /bytes/5 HTTP/1.0\r\n\r\n").status == 200

    def ours() -> list[str] | None:
        got = [line for line in log.read_text("utf-8").splitlines() if PROBE not in line] if log.exists() else []
        return got if len(got) >= len(REQUESTS) + 1 else None

    lines = wait_until(ours, 10, what=f"{name}'s access log lines")
    # a server logs a request after its response went out (httpd's log_transaction), so the HTTP/1.0
    # request on its own connection, served by another thread or child, may be logged before the closing
    # request of the keep-alive connection: order the lines as the requests were sent (seen once under load)
    return sorted(lines, key=lambda line: "/bytes/5 HTTP/1.0" in line)


def _both(launch, tmp_path: Path, fmt: str) -> tuple[list[str], list[str]]:
    return tuple(_serve(launch, name, tmp_path / f"{name}.log", fmt) for name in SERVERS)  # type: ignore[return-value]


def test_combined_lines_differ_only_in_time(launch, tmp_path: Path) -> None:
    """The issue's test: the same requests in ``combined`` format, by httpd and by our event MPM."""
    theirs, ours = _both(launch, tmp_path, "combined")
    time_field = re.compile(r" \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ")
    assert all(time_field.search(line) for line in theirs + ours)
    assert [time_field.sub(" [time] ", line) for line in ours] == [time_field.sub(" [time] ", line) for line in theirs]
    assert ours[0].endswith(r'"GET /?a=1&b=%22 HTTP/1.1" 200 13 "http://r.test/p?q=\"1\"" '
                            r'"agent \"quoted\" \\ \xe9"')


def test_every_field_both_servers_know_agrees(launch, tmp_path: Path) -> None:
    """A wider format: all but the time, the durations and %I agree; %I agrees for the first request of a
    connection (httpd's mod_logio also counts the byte or two its check for a pipelined request peeks at)."""
    fmt = ("'%t %D %T %{ms}T %{us}T|%I|%h %a %{c}a %l %u \"%r\" %s %>s %b %B %k %X %U %q %m %H %v %V %p "
           "%{canonical}p %{Content-Type}o %{Content-Length}o %{User-Agent}i %{Referer}i %{theme}C %{y}C %{nope}C "
           "%200{Host}i %!200{Host}i %R %L %{x}n %%'")  # %f: httpd serves files here, we run an app
    theirs, ours = _both(launch, tmp_path, fmt)
    assert [line.split("|")[2] for line in ours] == [line.split("|")[2] for line in theirs]
    first = (0, len(REQUESTS))  # the first request of each connection
    assert [ours[i].split("|")[1] for i in first] == [theirs[i].split("|")[1] for i in first]
    assert ours[1].split("|")[2].startswith('127.0.0.1 127.0.0.1 127.0.0.1 - - "GET /bytes/100 HTTP/1.1" 200 200 '
                                            "100 100 1 + /bytes/100  GET HTTP/1.1 www.test x.test 80 80 ")
