"""What an application gives start_response is checked before it reaches the wire (issue 14, defect 4).

Seen before: two Content-Length values (10, then 2) both sent on a kept-alive connection
(a client or proxy that takes the first desyncs: RFC 9110 §8.6, RFC 9112 §6.3); a name
``"Transfer-Encoding "`` that slipped past the hop-by-hop filter and went out beside
Content-Length (a proxy that strips the space reads TE + CL: response smuggling); names
that are not tokens (RFC 9110 §5.1); NUL and other CTLs in values (RFC 9110 §5.5); status
999 and a NUL in the reason phrase (RFC 9110 §15, RFC 9112 §4).

Each is now an :class:`InvalidResponse` (a ValueError, not an OSError) raised from
start_response, before anything is sent; the MPMs answer it 500 and log the reason
(the live test is at the end, on all three MPMs).
"""

from __future__ import annotations

import sys

import pytest

from servers.http.response import (
    InvalidResponse,
    check_field_name,
    check_field_value,
    parse_content_length,
    parse_status,
)

from . import wsgi_badresponse
from suites.wire import Conn, request, wait_until
from .serverutil import children
from .test_wsgi import GET_11, HEAD_11, Served, app_returning

# -- the checks themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [
    "999 Nope", "600 Too High", "099 Low", "000 Zero",  # RFC 9110 §15: 100-599
    "100 Continue", "101 Switching Protocols", "103 Early Hints",  # interim: never a final status
    "20 OK", "2000 Big", "abc OK", "2x0 OK", "", " 200 OK",  # RFC 9112 §4: 3DIGIT first
    "200\tOK", "200-OK", "200\x00OK",  # then SP
    "\u0662\u0660\u0660 OK", "\uff12\uff10\uff10 OK",  # digits, but not ASCII ones
    "200 O\x00K", "200 OK\r\nX-Injected: 1", "200 OK\n", "200 \x1b[31mred", "200 OK\x7f",  # CTLs
    "200 \u20ac",  # beyond latin-1: cannot be sent at all
])
def test_invalid_statuses_are_refused(status):
    with pytest.raises(InvalidResponse):
        parse_status(status)


@pytest.mark.parametrize("status,parsed", [
    ("200 OK", (200, "OK")),
    ("599 Custom", (599, "Custom")),
    ("404 Not\tFound", (404, "Not\tFound")),  # HTAB is allowed in a reason-phrase
    ("200 caf\u00e9", (200, "caf\u00e9")),  # obs-text
    ("200", (200, "")),  # no reason: the status line still gets its SP
    ("418 I'm a teapot", (418, "I'm a teapot")),
])
def test_valid_statuses(status, parsed):
    assert parse_status(status) == parsed


@pytest.mark.parametrize("name", [
    "Transfer-Encoding ", " Content-Length", "Content-Length\t", "X Bad", "X:Y", "",
    "X\x00", "X\x7f", "X(1)", 'X"', "X/Y", "X@", "X=1", "N\u00e4me", "X\u2028",
])
def test_field_names_must_be_tokens(name):
    with pytest.raises(InvalidResponse):
        check_field_name(name)


@pytest.mark.parametrize("name", ["X-Custom_1", "!#$%&'*+-.^_`|~09azAZ", "ETag", "x"])
def test_token_field_names_pass(name):
    check_field_name(name)


@pytest.mark.parametrize("value", ["a\x00b", "\x01", "a\x0bb", "a\x1fb", "\x7f", "a\rb", "a\nb", "\u20ac", "\ufeff"])
def test_field_values_without_ctls(value):
    with pytest.raises(InvalidResponse):
        check_field_value("X-A", value)


@pytest.mark.parametrize("value", ["", "plain", "a b\tc", " padded ", "caf\u00e9", "\u00ff", "!~"])
def test_field_text_passes(value):
    check_field_value("X-A", value)


@pytest.mark.parametrize("value", ["a\x00b", "\x01", "a\x0bb", "a\x1fb", "\x7f", "a\rb", "a\nb", "\u20ac"])
def test_start_response_refuses_the_same_values(value):
    # start_response takes a shortcut for printable ASCII: everything else gets the full check
    with pytest.raises(InvalidResponse):
        Served(GET_11, Recorder("200 OK", [("X-A", value)]))


@pytest.mark.parametrize("value", ["", "-1", "+5", " 5", "5 ", "5, 5", "0x5", "5.0", "1_000", "\uff15", "\u0665"])
def test_content_length_is_one_decimal(value):
    with pytest.raises(InvalidResponse):
        parse_content_length(value)


def test_content_length_values():
    assert parse_content_length("0") == 0
    assert parse_content_length("007") == 7
    assert parse_content_length("9" * 30) == int("9" * 30)
    with pytest.raises(InvalidResponse):
        parse_content_length("9" * 5000)  # more digits than int() takes: still our error


def test_invalid_response_is_a_value_error_not_an_os_error():
    # the connection loop reads an OSError from the application path as a network failure
    assert issubclass(InvalidResponse, ValueError)
    assert not issubclass(InvalidResponse, OSError)


# -- through start_response and run_app ----------------------------------------------------------------


class Recorder:
    """An application that calls start_response with the given status and headers."""

    def __init__(self, status: str, headers: list, body=(b"0123456789",)) -> None:
        self.status, self.headers, self.body = status, headers, list(body)

    def __call__(self, environ, start_response):
        start_response(self.status, self.headers)
        return self.body


BAD_RESPONSES = wsgi_badresponse.CASES


@pytest.mark.parametrize("case", list(BAD_RESPONSES))
def test_each_bad_response_is_refused_before_anything_is_sent(case):
    status, headers, body, reason = BAD_RESPONSES[case]
    with pytest.raises(InvalidResponse) as info:
        Served(GET_11, Recorder(status, headers, body))
    assert reason in repr(info.value)  # what the error log shows (serve.py logs the repr)


def test_nothing_is_sent_when_start_response_refuses():
    from servers.http.persistence import KeepAlivePolicy
    from servers.wsgi import EMPTY_INPUT, WSGIResponse, run_app

    from .test_wsgi import parse_request

    req, _ = parse_request(GET_11)
    sent: list[bytes] = []
    response = WSGIResponse(req, sent.append, KeepAlivePolicy(), keepalives=0, stopping=lambda: False,
                            body=EMPTY_INPUT)
    with pytest.raises(InvalidResponse, match="two different Content-Length values: 10 and 2"):
        run_app(Recorder("200 OK", [("Content-Length", "10"), ("Content-Length", "2")]), {}, response)
    assert sent == [] and not response.head_sent  # so the server can still answer 500


@pytest.mark.parametrize("second", ["Content-Length", "content-length", "CONTENT-LENGTH"])
def test_different_content_lengths_are_refused(second):
    with pytest.raises(InvalidResponse, match="10 and 2"):
        Served(GET_11, Recorder("200 OK", [("Content-Length", "10"), (second, "2")]))


def test_the_same_content_length_twice_is_sent_once():
    # RFC 9112 §6.3 lets a recipient collapse identical values; a sender must not make it guess
    headers = [("Content-Length", "10"), ("Content-Type", "text/plain"), ("content-length", "10")]
    served = Served(GET_11, Recorder("200 OK", headers))
    assert served.header(b"content-length") == [b"10"]
    _, body, _ = served.parse()
    assert body == b"0123456789" and served.keep_alive


def test_transfer_encoding_with_a_trailing_space_never_goes_out():
    # the smuggling case: "Transfer-Encoding " beside Content-Length
    with pytest.raises(InvalidResponse, match="not a token"):
        Served(GET_11, Recorder("200 OK", [("Transfer-Encoding ", "chunked"), ("Content-Length", "10")]))


@pytest.mark.parametrize("name", ["Transfer-Encoding", "transfer-encoding", "TRANSFER-ENCODING", "tRaNsFeR-eNcOdInG"])
def test_transfer_encoding_from_the_app_is_filtered_in_any_case(name):
    # hop-by-hop (PEP 3333, RFC 9110 §7.6.1): the framing is the server's
    served = Served(GET_11, Recorder("200 OK", [(name, "gzip, chunked"), ("Content-Length", "10")]))
    assert served.header(b"transfer-encoding") == []
    assert served.header(b"content-length") == [b"10"]
    assert served.parse()[1] == b"0123456789"


def test_a_1xx_status_from_the_app_is_refused():
    # RFC 9110 §15.2: a client reads a 1xx as interim and waits for the final response
    with pytest.raises(InvalidResponse, match="interim"):
        Served(GET_11, Recorder("103 Early Hints", [("Link", "</s.css>; rel=preload")], body=()))


def test_valid_unusual_fields_still_go_out():
    headers = [("X-Tab", "a\tb"), ("X-Latin", "caf\u00e9"), ("X-Empty", ""), ("!#$%&'*+-.^_`|~", "ok"),
               ("X-Obs", "\x85\xa0")]  # obs-text, though not printable in Python
    served = Served(GET_11, Recorder("299 Fine\tThanks", headers))
    assert served.raw.startswith(b"HTTP/1.1 299 Fine\tThanks\r\n")
    assert served.header(b"x-tab") == [b"a\tb"]
    assert served.header(b"x-latin") == [b"caf\xe9"]
    assert served.header(b"x-empty") == [b""]
    assert served.header(b"!#$%&'*+-.^_`|~") == [b"ok"]
    assert served.header(b"x-obs") == [b"\x85\xa0"]


def test_head_response_is_checked_too():
    with pytest.raises(InvalidResponse):
        Served(HEAD_11, Recorder("200 OK", [("X-A", "a\x00b")], body=()))


def test_exc_info_with_an_invalid_replacement_is_refused_too():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise RuntimeError("app failure")
        except RuntimeError:
            start_response("500 Oops", [("X-Bad Name", "1")], sys.exc_info())
        return [b"error page"]

    with pytest.raises(InvalidResponse):
        Served(GET_11, app)


def test_a_rejected_response_can_be_followed_by_a_valid_one():
    # an application that catches the error and answers properly is served normally
    def app(environ, start_response):
        try:
            start_response("200 OK", [("X-A", "a\x00b")])
        except InvalidResponse:
            start_response("200 OK", [("X-A", "clean")])
        return [b"ok"]

    served = Served(GET_11, app)
    assert served.header(b"x-a") == [b"clean"] and served.parse()[1] == b"ok"


def test_validation_is_cached_per_name_and_field():
    # the hot path: a (name, value) seen once is not checked again, a name seen once is a dict hit
    from servers import wsgi

    app = app_returning("200 OK", [("X-Cached-Name", "v1"), ("Content-Length", "2")], [b"ok"])
    Served(GET_11, app)
    assert ("X-Cached-Name", "v1") in wsgi._HEADER_CACHE
    assert wsgi._NAMES["X-Cached-Name"] == "x-cached-name"
    assert "200 OK" in wsgi._STATUS_CACHE


# -- live: each bad response on all three MPMs -----------------------------------------------------

MPMS = ["prefork", "worker", "event"]
APP = "tests.wsgi_badresponse:app"


@pytest.mark.parametrize("mpm", MPMS)
def test_bad_responses_are_a_logged_500_on_every_mpm(launch, mpm):
    h = launch(mpm, {"StartServers": 1, "MaxSpareServers": 2, "MaxSpareThreads": 50}, app=APP)
    before = children(h)
    for case in BAD_RESPONSES:
        r = request(h.port, b"GET /" + case.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert r.status == 500, (case, r.status, r.headers, r.body[:200])
        assert r.header("Connection") == "close", case
        assert r.header("Content-Length") == str(len(r.body))  # our own 500, one length
    # the unit keeps serving, on a kept-alive connection too
    with Conn(h.port) as c:
        for _ in range(2):
            c.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"ok"
    # no child died (maintenance may have added one meanwhile: MinSpareThreads is above one child's threads)
    assert set(before) <= set(children(h))
    reasons = [BAD_RESPONSES[case][3] for case in BAD_RESPONSES]
    log = wait_until(lambda: (lambda t: t if all(x in t for x in reasons) else None)(h.log_text()), 10,
                     what="a log line with the reason of every refused response")
    assert log.count("application error: InvalidResponse(") >= len(BAD_RESPONSES)
