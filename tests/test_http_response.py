"""Unit tests for servers.http.response: status lines, Date, error responses, chunk framing.

Error responses are parsed back with h11 in the client role to prove they are valid
HTTP/1.1 messages (RFC 9112 §4, §6).
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import h11
import pytest

from servers.http import response as response_mod
from servers.http.framing import body_forbidden
from servers.http.response import (
    CONTINUE,
    DATE,
    HOP_BY_HOP,
    LAST_CHUNK,
    SERVER_SOFTWARE,
    DateCache,
    chunk,
    error_body,
    error_response,
    reason_phrase,
    status_line,
)

from .h11util import parse_response

# RFC 9110 §5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\Z"
)


def header_lines(raw: bytes) -> list[tuple[bytes, bytes]]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]]


# -- status lines (RFC 9112 §4) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,line",
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (204, b"HTTP/1.1 204 No Content\r\n"),
        (304, b"HTTP/1.1 304 Not Modified\r\n"),
        (400, b"HTTP/1.1 400 Bad Request\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (405, b"HTTP/1.1 405 Method Not Allowed\r\n"),
        (408, b"HTTP/1.1 408 Request Timeout\r\n"),
        (411, b"HTTP/1.1 411 Length Required\r\n"),
        (413, b"HTTP/1.1 413 Request Entity Too Large\r\n"),  # httpd's wording
        (414, b"HTTP/1.1 414 Request-URI Too Long\r\n"),  # httpd's wording
        (417, b"HTTP/1.1 417 Expectation Failed\r\n"),
        (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),  # RFC 6585 §5
        (500, b"HTTP/1.1 500 Internal Server Error\r\n"),
        (501, b"HTTP/1.1 501 Not Implemented\r\n"),
        (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
    ],
)
def test_status_line(status, line):
    assert status_line(status) == line
    assert status_line(status) == line  # the cached copy is the same
    assert reason_phrase(status).encode() == line[13:-2]


def test_status_line_with_explicit_reason():
    assert status_line(200, "Fine Thanks") == b"HTTP/1.1 200 Fine Thanks\r\n"
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"  # the explicit reason is not cached


def test_status_line_of_an_unregistered_code_is_still_well_formed():
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    line = status_line(299)
    assert re.fullmatch(rb"HTTP/1\.1 299 [\t -~]*\r\n", line)


def test_interim_continue_is_a_bare_status_line():
    # RFC 9110 §15.2.1: 100 Continue, no fields, no content
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"


# -- Date (RFC 9110 §6.6.1, §5.6.7) ---------------------------------------------------------------


def test_date_line_is_imf_fixdate():
    line = DATE.line()
    assert line.startswith(b"Date: ") and line.endswith(b"\r\n")
    value = line[6:-2].decode("ascii")
    assert IMF_FIXDATE.match(value), value


def test_date_of_the_rfc_example(monkeypatch):
    # RFC 9110 §5.6.7's own example: Sun, 06 Nov 1994 08:49:37 GMT = 784111777
    monkeypatch.setattr(response_mod.time, "time", lambda: 784111777.25)
    assert DateCache().line() == b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


def test_date_single_digit_day_is_zero_padded(monkeypatch):
    monkeypatch.setattr(response_mod.time, "time", lambda: 1704164645.0)  # 2024-01-02 03:04:05 UTC
    assert DateCache().line() == b"Date: Tue, 02 Jan 2024 03:04:05 GMT\r\n"


def test_date_is_formatted_once_per_second(monkeypatch):
    now = [1_000_000_000.1]
    calls = []
    real = response_mod.formatdate

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(response_mod.time, "time", lambda: now[0])
    monkeypatch.setattr(response_mod, "formatdate", counting)
    cache = DateCache()
    first = cache.line()
    now[0] = 1_000_000_000.9  # same second
    assert cache.line() is first
    assert len(calls) == 1
    now[0] = 1_000_000_001.0  # next second
    second = cache.line()
    assert len(calls) == 2
    assert second != first
    assert parsedate_to_datetime(second[6:-2].decode()).timestamp() == 1_000_000_001
    assert parsedate_to_datetime(first[6:-2].decode()).timestamp() == 1_000_000_000


# -- which responses carry content (RFC 9110 §6.4.1, §9.3.2) ----------------------------------------------


@pytest.mark.parametrize(
    "status,method,forbidden",
    [
        (200, "GET", False),
        (200, "HEAD", True),  # RFC 9110 §9.3.2
        (404, "HEAD", True),
        (100, "GET", True),  # 1xx
        (101, "GET", True),
        (204, "GET", True),  # RFC 9110 §15.3.5
        (304, "GET", True),  # RFC 9110 §15.4.5
        (205, "GET", False),
        (500, "POST", False),
    ],
)
def test_body_forbidden(status, method, forbidden):
    assert body_forbidden(status, method) is forbidden


def test_hop_by_hop_fields():
    # RFC 9110 §7.6.1 and PEP 3333: hop-by-hop fields belong to the server
    assert {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
            "proxy-authenticate", "proxy-authorization"} <= HOP_BY_HOP


# -- error responses (httpd's ap_die for protocol errors) -------------------------------------------------

ERROR_STATUSES = [400, 404, 405, 408, 411, 413, 414, 417, 431, 500, 501, 503, 505]


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_error_response_is_a_valid_closing_response(status):
    raw = error_response(status, "some detail")
    resp, body, conn = parse_response(raw)
    assert resp.status_code == status
    assert resp.http_version == b"1.1"
    headers = dict(resp.headers)
    # Every error closes the connection (docs/servers.md; RFC 9112 §9.6)
    assert headers[b"connection"] == b"close"
    assert conn.their_state is h11.MUST_CLOSE
    assert int(headers[b"content-length"]) == len(body) == len(error_body(status, "some detail"))
    assert IMF_FIXDATE.match(headers[b"date"].decode())  # RFC 9110 §6.6.1 MUST on 4xx/5xx
    assert headers[b"server"] == SERVER_SOFTWARE.encode()
    assert headers[b"content-type"].startswith(b"text/html")
    assert b"some detail" in body
    assert conn.trailing_data == (b"", False)  # nothing after the declared body


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_error_response_to_head_has_no_body(status):
    # RFC 9110 §9.3.2: no content in a response to HEAD; Content-Length may state the GET's length (§8.6)
    raw = error_response(status, "detail", method="HEAD")
    get = error_response(status, "detail")
    assert raw == get[: len(raw)]
    assert raw.endswith(b"\r\n\r\n")
    resp, body, conn = parse_response(raw, method="HEAD")
    assert body == b""
    assert int(dict(resp.headers)[b"content-length"]) == len(get) - len(raw)
    assert conn.trailing_data == (b"", False)


def test_error_response_escapes_the_detail():
    body = error_body(400, "<script>&")
    assert b"<script>" not in body
    assert b"&lt;script&gt;&amp;" in body


def test_error_response_extra_header_lines():
    # RFC 9110 §15.5.6: a 405 MUST carry Allow
    raw = error_response(405, "", extra=b"Allow: GET, HEAD\r\n")
    resp, _, _ = parse_response(raw)
    assert dict(resp.headers)[b"allow"] == b"GET, HEAD"


def test_error_response_has_exactly_one_of_each_framing_field():
    names = [n.lower() for n, _ in header_lines(error_response(400))]
    for name in (b"date", b"server", b"content-length", b"connection", b"content-type"):
        assert names.count(name) == 1


# -- chunked framing (RFC 9112 §7.1) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,framed",
    [
        (b"a", b"1\r\na\r\n"),
        (b"hello", b"5\r\nhello\r\n"),
        (b"x" * 26, b"1a\r\n" + b"x" * 26 + b"\r\n"),  # chunk-size is hexadecimal
        (b"y" * 4096, b"1000\r\n" + b"y" * 4096 + b"\r\n"),
        (b"\r\n0\r\n\r\n", b"7\r\n\r\n0\r\n\r\n\r\n"),  # data that looks like framing stays data
    ],
)
def test_chunk(data, framed):
    assert chunk(data) == framed


def test_last_chunk_and_chunks_parse_as_a_chunked_body():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           + chunk(b"hello ") + chunk(b"x" * 300) + chunk(b"\r\n0\r\n\r\n") + LAST_CHUNK)
    _, body, conn = parse_response(raw)
    assert body == b"hello " + b"x" * 300 + b"\r\n0\r\n\r\n"
    assert conn.trailing_data == (b"", False)
    assert LAST_CHUNK == b"0\r\n\r\n"


# -- bugs found in servers/http/response.py: these fail against the current code ----------------------------


def test_status_line_honours_the_version_argument():
    # status_line() caches on (status, 1) and ignores ``version``: whichever version is asked
    # first for a status is returned for ever after. RFC 9112 §4: the status-line starts with
    # the HTTP-version; a poisoned cache would also make error_response() announce HTTP/1.0
    # to HTTP/1.1 clients (RFC 9110 §2.5: answer with the highest version we conform to).
    assert status_line(226, version=b"HTTP/1.0") == b"HTTP/1.0 226 IM Used\r\n"
    assert status_line(226) == b"HTTP/1.1 226 IM Used\r\n"


def test_chunk_of_empty_data_is_not_the_last_chunk():
    # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF with chunk-data = 1*OCTET;
    # a zero size is the last-chunk. chunk(b"") returns b"0\r\n\r\n", i.e. it ends the body (last
    # chunk + empty trailer section) instead of sending "one chunk". No caller passes b"" today
    # (WSGIResponse skips empty pieces), so this is latent; h11's writer drops empty data.
    try:
        framed = chunk(b"")
    except ValueError:
        return  # refusing is as good as sending nothing
    assert framed == b""
