"""The per-process memo caches of the HTTP core stay small whatever the traffic.

Every prefork child has its own copy of each cache, so their bound is paid 50 times over
(docs/performance.md, "Where a prefork child's memory goes"). Memoising is exact: a value is
validated the same way whether it is cached or not.
"""

from __future__ import annotations

import pytest

from servers import wsgi
from servers.http import request
from servers.http.errors import ProtocolError


def test_request_line_cache_is_bounded_in_entries_and_length():
    """Distinct request-lines never hold more than _CACHE_MAX short entries; a long one is
    validated but not kept."""
    for i in range(3 * request._CACHE_MAX):
        request.check_request_line(b"GET /item/%d HTTP/1.1" % i)
        assert len(request._LINE_CACHE) <= request._CACHE_MAX
    long_line = b"GET /" + b"a" * (2 * request._CACHED_LEN_MAX) + b" HTTP/1.1"
    rl = request.check_request_line(long_line)
    assert rl == request._check_request_line(long_line)
    assert long_line not in request._LINE_CACHE


def test_a_cached_line_is_the_uncached_answer_and_bad_lines_are_refused():
    """The memo returns what validation returns, and an invalid line is refused every time."""
    line = b"GET /x?y=1 HTTP/1.1"
    assert request.check_request_line(line) == request._check_request_line(line)
    assert request.check_request_line(line) == request._check_request_line(line)
    for _ in range(2):
        with pytest.raises(ProtocolError):
            request.check_request_line(b"GET  /x HTTP/1.1")


def test_host_cache_is_bounded_and_long_hosts_are_not_kept():
    """Valid Host values are remembered up to the bound; a long one is checked, not kept."""
    for i in range(3 * request._CACHE_MAX):
        assert request.check_host([f"h{i}.example"], (1, 1)) == f"h{i}.example"
        assert len(request._HOST_CACHE) <= request._CACHE_MAX
    host = "a" * (2 * request._CACHED_LEN_MAX) + ".example"
    assert request.check_host([host], (1, 1)) == host
    assert host not in request._HOST_CACHE
    with pytest.raises(ProtocolError):
        request.check_host(["bad host"], (1, 1))


def test_response_header_cache_keeps_short_values_only_and_is_bounded():
    """A header whose value changes per response (a session cookie) is encoded but not kept;
    short repeated ones are, up to the bound."""
    cookie = ("Set-Cookie", "session=" + "f" * (2 * wsgi._CACHED_VALUE_MAX))
    line, _, _ = wsgi._header_entry(cookie)
    assert line == ("Set-Cookie: " + cookie[1] + "\r\n").encode()
    assert cookie not in wsgi._HEADER_CACHE
    for i in range(3 * request._CACHE_MAX):  # the bound every per-process memo shares (request.remember)
        wsgi._header_entry(("Content-Length", str(i)))
        assert len(wsgi._HEADER_CACHE) <= request._CACHE_MAX
    assert ("Content-Length", str(3 * request._CACHE_MAX - 1)) in wsgi._HEADER_CACHE
