"""Unit tests for servers.wsgi: wsgi.input, the environ, start_response and body framing.

Responses are produced by run_app with a fake ``send`` that collects bytes, then parsed
with h11 in the client role, which proves the bytes are a valid HTTP/1.1 response
(RFC 9112 §6). PEP 3333 usage is checked with wsgiref.validate.
"""

from __future__ import annotations

import io
import sys
import warnings
from wsgiref.validate import validator

import h11
import pytest

from servers.http.parser import NEED_DATA, EndOfMessage, RequestReader
from servers.http.persistence import KeepAlivePolicy
from servers.http.request import Request
from servers.wsgi import InputStream, WSGIResponse, build_environ, environ_template, run_app

from .h11util import parse_response

# -- helpers ---------------------------------------------------------------------------------


def scripted(*pieces: bytes):
    """A pull() that returns ``pieces`` one by one, then b"" for ever; counts its calls."""
    queue = list(pieces)

    def pull() -> bytes:
        pull.calls += 1
        return queue.pop(0) if queue else b""

    pull.calls = 0
    return pull


def parse_request(raw: bytes) -> tuple[Request, RequestReader]:
    reader = RequestReader()
    reader.feed(raw)
    req = reader.next_event()
    assert isinstance(req, Request)
    return req, reader


def body_of(reader: RequestReader):
    """The pull() a server gives InputStream: body events from the reader, b"" at the end."""

    def pull() -> bytes:
        ev = reader.next_event()
        if isinstance(ev, EndOfMessage):
            return b""
        assert ev is not NEED_DATA
        return ev

    return pull


TEMPLATE = environ_template(server_name="test.local", server_port=8080, errors=io.StringIO())


class Served:
    """The result of serving one request through run_app."""

    def __init__(self, raw_request: bytes, app, *, policy=None, keepalives=0, stopping=False):
        self.req, reader = parse_request(raw_request)
        self.sent: list[bytes] = []
        self.input = InputStream(body_of(reader))
        self.response = WSGIResponse(self.req, self.sent.append, policy or KeepAlivePolicy(),
                                     keepalives=keepalives, stopping=lambda: stopping, body=self.input)
        self.environ = build_environ(self.req, self.input, TEMPLATE, "192.0.2.1", 54321)
        run_app(app, self.environ, self.response)
        self.raw = b"".join(self.sent)

    @property
    def keep_alive(self) -> bool:
        return self.response.keep_alive

    def parse(self, *, eof: bool = False):
        """Parse the bytes with h11 as the client that sent req; return (Response, body, conn)."""
        return parse_response(self.raw, self.req.method, eof=eof)

    def header_names(self) -> list[bytes]:
        head = self.raw.split(b"\r\n\r\n", 1)[0]
        return [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:]]

    def header(self, name: bytes) -> list[bytes]:
        head = self.raw.split(b"\r\n\r\n", 1)[0]
        out = []
        for line in head.split(b"\r\n")[1:]:
            n, _, v = line.partition(b":")
            if n.lower() == name.lower():
                out.append(v.strip())
        return out


def app_returning(status: str, headers: list, body):
    def app(environ, start_response):
        start_response(status, headers)
        return body() if callable(body) else body

    return app


GET_11 = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
HEAD_11 = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
GET_10 = b"GET / HTTP/1.0\r\n\r\n"
GET_10_KA = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"


# -- wsgi.input (PEP 3333 "Input and Error Streams") -----------------------------------------------


def test_input_read_all():
    stream = InputStream(scripted(b"ab", b"cd\n", b"ef"))
    assert stream.read() == b"abcd\nef"
    assert stream.read() == b""
    assert stream.consumed == 7 and stream.exhausted


def test_input_read_none_means_all():
    assert InputStream(scripted(b"ab", b"cd")).read(None) == b"abcd"


def test_input_read_sized_pulls_only_what_it_needs():
    pull = scripted(b"abc", b"def", b"ghi")
    stream = InputStream(pull)
    assert stream.read(2) == b"ab"
    assert pull.calls == 1
    assert stream.read(4) == b"cdef"
    assert pull.calls == 2
    assert stream.read(100) == b"ghi"  # short read at the end
    assert stream.read(1) == b""
    assert stream.exhausted and stream.consumed == 9


def test_input_never_pulls_again_after_the_end():
    pull = scripted(b"x")
    stream = InputStream(pull)
    assert stream.read() == b"x"
    calls = pull.calls
    assert stream.read() == b"" and stream.readline() == b"" and stream.read(5) == b""
    assert pull.calls == calls


def test_input_read_zero():
    stream = InputStream(scripted(b"abc"))
    assert stream.read(0) == b""
    assert stream.read() == b"abc"


def test_input_readline():
    stream = InputStream(scripted(b"one\ntw", b"o\nthr", b"ee"))
    assert stream.readline() == b"one\n"
    assert stream.readline() == b"two\n"
    assert stream.readline() == b"three"  # last line without LF
    assert stream.readline() == b""


def test_input_readline_with_size():
    # PEP 3333: readline(size) is supported; never more than size bytes
    stream = InputStream(scripted(b"abcdef\n", b"gh\n"))
    assert stream.readline(4) == b"abcd"
    assert stream.readline(4) == b"ef\n"
    assert stream.readline(-1) == b"gh\n"
    assert stream.readline(10) == b""


def test_input_readline_size_exactly_at_newline():
    stream = InputStream(scripted(b"abc\ndef"))
    assert stream.readline(4) == b"abc\n"
    assert stream.readline(3) == b"def"


def test_input_readlines_and_hint():
    assert InputStream(scripted(b"a\nb", b"\nc\n", b"d")).readlines() == [b"a\n", b"b\n", b"c\n", b"d"]
    stream = InputStream(scripted(b"aa\nbb\ncc\n"))
    assert stream.readlines(4) == [b"aa\n", b"bb\n"]  # stops once the hint is reached
    assert stream.readlines() == [b"cc\n"]


def test_input_iteration():
    stream = InputStream(scripted(b"x\ny", b"\n", b"z"))
    assert list(stream) == [b"x\n", b"y\n", b"z"]
    assert iter(stream) is stream


def test_input_mixed_read_and_readline():
    stream = InputStream(scripted(b"head\nbody-bytes"))
    assert stream.readline() == b"head\n"
    assert stream.read(4) == b"body"
    assert stream.read() == b"-bytes"
    assert stream.consumed == len(b"head\nbody-bytes")


def test_input_discard():
    stream = InputStream(scripted(b"a" * 10, b"b" * 10))
    assert stream.discard(100) is True
    assert stream.exhausted
    big = InputStream(scripted(*[b"c" * 100] * 10))
    assert big.discard(150) is False  # more than the limit remained


def test_input_reads_a_real_chunked_body():
    req, reader = parse_request(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"4\r\nab\nc\r\n3\r\nd\ne\r\n0\r\n\r\n")
    stream = InputStream(body_of(reader))
    assert list(stream) == [b"ab\n", b"cd\n", b"e"]


# -- environ (PEP 3333 "environ Variables", RFC 3875 §4.1) -----------------------------------------------


def environ_for(raw: bytes) -> dict:
    req, reader = parse_request(raw)
    return build_environ(req, InputStream(body_of(reader)), TEMPLATE, "192.0.2.1", 54321)


def test_environ_required_keys():
    env = environ_for(b"POST /p/q?x=1&y=2 HTTP/1.1\r\nHost: h.example:8080\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 3\r\n\r\nabc")
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/p/q"
    assert env["QUERY_STRING"] == "x=1&y=2"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert env["SERVER_NAME"] == "test.local"
    assert env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["HTTP_HOST"] == "h.example:8080"
    assert env["REMOTE_ADDR"] == "192.0.2.1" and env["REMOTE_PORT"] == "54321"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"].read() == b"abc"
    assert hasattr(env["wsgi.errors"], "write")
    assert env["wsgi.multithread"] is False and env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    # PEP 3333: no HTTP_CONTENT_TYPE / HTTP_CONTENT_LENGTH
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    # every CGI-style key is a native str (PEP 3333 "Unicode Issues")
    assert all(isinstance(v, str) for k, v in env.items() if "." not in k)


def test_environ_template_is_not_mutated():
    before = dict(TEMPLATE)
    environ_for(b"GET /a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n")
    assert TEMPLATE == before


def test_environ_threading_flags_follow_the_mpm():
    tpl = environ_template(server_name="s", server_port=80, multithread=True, multiprocess=True)
    assert tpl["wsgi.multithread"] is True and tpl["wsgi.multiprocess"] is True
    assert tpl["wsgi.errors"] is sys.stderr


def test_environ_leaves_out_fields_with_underscores():
    # httpd (CGI, 2.4+) and gunicorn: X_Foo must never pose as X-Foo
    env = environ_for(b"GET / HTTP/1.1\r\nHost: a\r\nX_Foo: evil\r\nX-Foo: good\r\nContent_Length: 9\r\n\r\n")
    assert env["HTTP_X_FOO"] == "good"
    assert "CONTENT_LENGTH" not in env
    assert ("X_Foo", "evil") in env["mpm_harness.headers"]  # raw fields stay available


def test_environ_joins_repeated_fields_with_commas():
    # RFC 9110 §5.3: repeated field lines combine into one comma-separated list
    env = environ_for(b"GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nX-A: 1\r\naccept: text/plain\r\n\r\n")
    assert env["HTTP_ACCEPT"] == "text/html,text/plain"
    assert env["HTTP_X_A"] == "1"


def test_environ_joins_cookies_with_semicolons():
    # RFC 6265 §5.4: one Cookie header, pairs separated by "; "
    env = environ_for(b"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2; c=3\r\n\r\n")
    assert env["HTTP_COOKIE"] == "a=1; b=2; c=3"


@pytest.mark.parametrize(
    "target,path_info",
    [
        (b"/plain", "/plain"),
        (b"/a%20b", "/a b"),
        # PEP 3333: PATH_INFO is the percent-decoded bytes as latin-1 (a "bytes-as-str")
        (b"/caf%C3%A9", "/caf\u00c3\u00a9"),
        (b"/%E9t%E9", "/\u00e9t\u00e9"),
        (b"/a%2Fb", "/a/b"),
        (b"/%25", "/%"),
    ],
)
def test_environ_path_info_is_percent_decoded_latin1(target, path_info):
    env = environ_for(b"GET " + target + b"?q=%20 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert env["PATH_INFO"] == path_info
    assert env["QUERY_STRING"] == "q=%20"  # the query string is not decoded
    assert env["REQUEST_URI"] == (target + b"?q=%20").decode()


def test_environ_caf_e_round_trips_to_utf8():
    env = environ_for(b"GET /caf%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/caf\u00e9"


def test_environ_absolute_form_host_wins():
    # RFC 9112 §3.2.2: the absolute-form authority overrides Host
    env = environ_for(b"GET http://b.example:81/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert env["HTTP_HOST"] == "b.example:81"
    assert env["PATH_INFO"] == "/x" and env["QUERY_STRING"] == "y=1"


def test_environ_http10_without_host_has_no_http_host():
    env = environ_for(GET_10)
    assert "HTTP_HOST" not in env
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_environ_http_1_2_is_reported_as_1_1():
    assert environ_for(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_environ_chunked_request_has_no_content_length():
    env = environ_for(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert "CONTENT_LENGTH" not in env
    assert env["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert env["wsgi.input"].read() == b"abc"
    assert env["wsgi.input_terminated"] is True


VALIDATED_REQUESTS = [
    pytest.param(b"GET /v?a=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", id="GET"),
    pytest.param(b"POST /v HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                 id="POST-CL"),
    pytest.param(b"POST /v HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                 id="POST-chunked"),
    pytest.param(b"HEAD /v HTTP/1.1\r\nHost: a\r\n\r\n", id="HEAD"),
    pytest.param(b"GET /v HTTP/1.0\r\n\r\n", id="HTTP/1.0"),
    pytest.param(b"GET http://b/v%20w HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", id="absolute-form"),
]


@pytest.mark.parametrize("raw", VALIDATED_REQUESTS)
@pytest.mark.parametrize("style", ["list", "generator", "write"])
def test_environ_and_start_response_pass_wsgiref_validator(raw, style):
    seen = {}

    def app(environ, start_response):
        seen["body"] = environ["wsgi.input"].read(1 << 20)
        seen["environ"] = environ
        headers = [("Content-Type", "text/plain")]
        if style == "list":
            start_response("200 OK", headers)
            return [b"ok:", seen["body"]]
        if style == "write":
            write = start_response("200 OK", headers)
            write(b"ok:")
            return [seen["body"]]

        def gen():
            yield b"ok:"
            yield seen["body"]

        start_response("200 OK", headers)
        return gen()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # wsgiref's WSGIWarning fails the test too
        served = Served(raw, validator(app))
    body = seen["body"]
    assert body in (b"", b"hello")
    resp, got, conn = served.parse(eof=not served.keep_alive)
    assert resp.status_code == 200
    assert got == (b"" if served.req.method == "HEAD" else b"ok:" + body)


# -- response framing (RFC 9112 §6, RFC 9110 §8.6) -------------------------------------------------------


def test_list_body_gets_content_length():
    served = Served(GET_11, app_returning("200 OK", [("Content-Type", "text/plain")], [b"hello ", b"world"]))
    resp, body, conn = served.parse()
    assert body == b"hello world"
    assert dict(resp.headers)[b"content-length"] == b"11"
    assert b"transfer-encoding" not in served.header_names()
    assert served.keep_alive
    assert conn.their_state is h11.DONE
    assert conn.trailing_data == (b"", False)
    assert len(served.sent) == 1  # head and body in a single send


def test_response_has_date_and_server():
    served = Served(GET_11, app_returning("200 OK", [], [b"x"]))
    assert served.header_names()[:2] == [b"date", b"server"]


def test_generator_body_is_chunked_on_http11():
    def body():
        yield b"first "
        yield b""  # empty pieces are skipped, never a premature last-chunk
        yield b"second"

    served = Served(GET_11, app_returning("200 OK", [("Content-Type", "text/plain")], body))
    resp, got, conn = served.parse()
    assert got == b"first second"
    assert served.header(b"transfer-encoding") == [b"chunked"]
    assert b"content-length" not in served.header_names()
    assert served.keep_alive
    assert conn.trailing_data == (b"", False)
    assert served.raw.endswith(b"0\r\n\r\n")


def test_write_callable_is_chunked_on_http11():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"abc")
        write(b"def")
        return [b"ghi"]

    served = Served(GET_11, app)
    _, got, conn = served.parse()
    assert got == b"abcdefghi"
    assert served.header(b"transfer-encoding") == [b"chunked"]
    assert conn.trailing_data == (b"", False)


def test_generator_body_is_close_delimited_on_http10():
    # RFC 9112 §6.1: no Transfer-Encoding to a 1.0 client; §6.3: length = until close
    served = Served(GET_10_KA, app_returning("200 OK", [], lambda: iter([b"abc", b"def"])))
    assert b"transfer-encoding" not in served.header_names()
    assert b"content-length" not in served.header_names()
    assert served.header(b"connection") == [b"close"]
    assert served.keep_alive is False
    _, got, conn = served.parse(eof=True)
    assert got == b"abcdef"


def test_list_body_on_http10_keep_alive_persists():
    served = Served(GET_10_KA, app_returning("200 OK", [], [b"abc"]))
    assert served.keep_alive
    assert served.header(b"keep-alive") == [b"timeout=5, max=100"]
    assert served.header(b"connection") == [b"Keep-Alive"]


def test_empty_generator_gets_content_length_zero():
    served = Served(GET_11, app_returning("200 OK", [], lambda: iter([])))
    resp, got, _ = served.parse()
    assert got == b"" and dict(resp.headers)[b"content-length"] == b"0"
    assert served.keep_alive


@pytest.mark.parametrize("shape", ["list", "generator"])
def test_head_has_no_body_but_keeps_content_length(shape):
    # RFC 9110 §9.3.2: no content in a HEAD response; §8.6: CL may state the GET's length
    body = [b"hello"] if shape == "list" else (lambda: iter([b"hello"]))
    served = Served(HEAD_11, app_returning("200 OK", [("Content-Type", "text/plain")], body))
    assert served.raw.endswith(b"\r\n\r\n")
    assert b"hello" not in served.raw
    assert b"transfer-encoding" not in served.header_names()
    resp, got, conn = served.parse()
    assert got == b""
    if shape == "list":
        assert dict(resp.headers)[b"content-length"] == b"5"
    assert served.keep_alive
    assert conn.trailing_data == (b"", False)


def test_head_keeps_the_apps_content_length():
    served = Served(HEAD_11, app_returning("200 OK", [("Content-Length", "1234")], []))
    assert served.header(b"content-length") == [b"1234"]
    assert served.raw.endswith(b"\r\n\r\n")
    assert served.keep_alive


@pytest.mark.parametrize("body", [[], [b"ignored"]], ids=["empty", "app-sent-bytes"])
def test_204_has_no_content_length_and_no_body(body):
    # RFC 9110 §8.6: a server MUST NOT send Content-Length in a 204
    served = Served(GET_11, app_returning("204 No Content", [("Content-Length", "7")], body))
    assert b"content-length" not in served.header_names()
    assert b"transfer-encoding" not in served.header_names()
    assert served.raw.endswith(b"\r\n\r\n") and b"ignored" not in served.raw
    resp, got, conn = served.parse()
    assert resp.status_code == 204 and got == b""
    assert conn.trailing_data == (b"", False)
    assert served.keep_alive


def test_204_from_a_generator_is_not_chunked():
    served = Served(GET_11, app_returning("204 No Content", [], lambda: iter([b"x"])))
    assert b"transfer-encoding" not in served.header_names()
    resp, got, conn = served.parse()
    assert got == b"" and conn.trailing_data == (b"", False)


@pytest.mark.parametrize("shape", ["list", "generator"])
def test_304_has_no_body(shape):
    # RFC 9110 §15.4.5: a 304 ends at the blank line
    body = [b"not sent"] if shape == "list" else (lambda: iter([b"not sent"]))
    served = Served(GET_11, app_returning("304 Not Modified", [("ETag", '"v1"')], body))
    assert served.raw.endswith(b"\r\n\r\n") and b"not sent" not in served.raw
    assert b"transfer-encoding" not in served.header_names()
    resp, got, conn = served.parse()
    assert resp.status_code == 304 and got == b""
    assert dict(resp.headers)[b"etag"] == b'"v1"'
    assert conn.trailing_data == (b"", False)
    assert served.keep_alive


def test_hop_by_hop_headers_from_the_app_are_dropped():
    # PEP 3333 and RFC 9110 §7.6.1: the server owns the hop-by-hop fields
    headers = [
        ("Content-Type", "text/plain"),
        ("Keep-Alive", "timeout=99"),
        ("Transfer-Encoding", "gzip"),
        ("TE", "trailers"),
        ("Trailer", "X-T"),
        ("Upgrade", "h2c"),
        ("Proxy-Authenticate", "Basic"),
        ("Connection", "upgrade"),
        ("X-Kept", "yes"),
    ]
    served = Served(GET_11, app_returning("200 OK", headers, lambda: iter([b"data"])))
    names = served.header_names()
    for name in (b"keep-alive", b"te", b"trailer", b"upgrade", b"proxy-authenticate", b"connection"):
        assert name not in names
    assert served.header(b"transfer-encoding") == [b"chunked"]  # the server's own framing only
    assert served.header(b"x-kept") == [b"yes"]
    _, got, _ = served.parse()
    assert got == b"data"
    assert served.keep_alive  # "Connection: upgrade" is not a close


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close"])
def test_connection_close_from_the_app_is_honoured(value):
    served = Served(GET_11, app_returning("200 OK", [("Connection", value)], [b"x"]))
    assert served.keep_alive is False
    assert served.header(b"connection") == [b"close"]
    _, _, conn = served.parse()
    assert conn.their_state is h11.MUST_CLOSE


def test_app_content_length_larger_than_body_closes():
    # The client waits for bytes that never come: the connection must not be reused.
    served = Served(GET_11, app_returning("200 OK", [("Content-Length", "10")], [b"hello"]))
    assert served.keep_alive is False
    assert served.header(b"content-length") == [b"10"]
    assert served.raw.endswith(b"\r\n\r\nhello")


def test_app_content_length_larger_than_generator_body_closes():
    served = Served(GET_11, app_returning("200 OK", [("Content-Length", "10")], lambda: iter([b"hel", b"lo"])))
    assert served.keep_alive is False
    assert b"transfer-encoding" not in served.header_names()


@pytest.mark.parametrize("shape", ["list", "generator"])
def test_app_content_length_smaller_than_body_truncates(shape):
    # Never send more than declared: the extra bytes would be read as the next response.
    body = [b"hello", b"world"] if shape == "list" else (lambda: iter([b"hello", b"world"]))
    served = Served(GET_11, app_returning("200 OK", [("Content-Length", "7")], body))
    _, got, conn = served.parse()
    assert got == b"hellowo"
    assert served.raw.endswith(b"\r\n\r\nhellowo")
    assert conn.trailing_data == (b"", False)
    assert served.keep_alive is False


def test_app_content_length_exact_persists():
    served = Served(GET_11, app_returning("200 OK", [("Content-Length", "5")], lambda: iter([b"he", b"llo"])))
    _, got, _ = served.parse()
    assert got == b"hello" and served.keep_alive
    assert served.header(b"content-length") == [b"5"]


def test_stopping_mpm_closes_after_the_response():
    served = Served(GET_11, app_returning("200 OK", [], [b"x"]), stopping=True)
    assert served.keep_alive is False and served.header(b"connection") == [b"close"]


def test_max_keepalive_requests_reached_closes():
    served = Served(GET_11, app_returning("200 OK", [], [b"x"]), policy=KeepAlivePolicy(max_requests=3),
                    keepalives=3)
    assert served.keep_alive is False and served.header(b"connection") == [b"close"]


def test_unread_100_continue_body_closes():
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    served = Served(raw, app_returning("200 OK", [], [b"never read the body"]))
    assert served.keep_alive is False


def test_status_line_is_the_apps_status():
    served = Served(GET_11, app_returning("418 I'm a teapot", [], [b""]))
    assert served.raw.startswith(b"HTTP/1.1 418 I'm a teapot\r\n")


# -- start_response rules (PEP 3333 "The start_response() Callable") ------------------------------------


def test_start_response_twice_without_exc_info_raises():
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("500 Oops", [])
        return [b""]

    with pytest.raises(AssertionError):
        Served(GET_11, app)


def test_exc_info_before_the_head_is_sent_replaces_the_status():
    def app(environ, start_response):
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"error page"]

    served = Served(GET_11, app)
    resp, got, _ = served.parse()
    assert resp.status_code == 500 and got == b"error page"
    assert b"x-first" not in served.header_names()


def test_exc_info_after_the_head_is_sent_reraises():
    error = ValueError("late failure")

    def app(environ, start_response):
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise error
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with pytest.raises(ValueError) as info:
        Served(GET_11, app)
    assert info.value is error


def test_body_before_start_response_raises():
    def app(environ, start_response):
        return [b"x"]

    with pytest.raises(AssertionError):
        Served(GET_11, app)


@pytest.mark.parametrize("status", ["20 OK", "2000 Big", "abc OK"])
def test_invalid_status_is_refused(status):
    with pytest.raises(ValueError):
        Served(GET_11, app_returning(status, [], [b""]))


@pytest.mark.parametrize("header", [("X-A", "a\r\nInjected: 1"), ("X-B\n", "v")])
def test_crlf_in_response_headers_is_refused(header):
    # Response splitting: CR/LF never reach the wire (RFC 9110 §5.5)
    with pytest.raises(ValueError):
        Served(GET_11, app_returning("200 OK", [header], [b""]))


# -- iterable.close() (PEP 3333: always called) ---------------------------------------------------------


class ClosingBody:
    def __init__(self, pieces, fail_after=None):
        self.pieces = pieces
        self.fail_after = fail_after
        self.closed = 0

    def __iter__(self):
        for i, piece in enumerate(self.pieces):
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("app failed mid-iteration")
            yield piece

    def close(self):
        self.closed += 1


def test_close_is_called_after_a_normal_response():
    body = ClosingBody([b"a", b"b"])
    served = Served(GET_11, app_returning("200 OK", [], body))
    assert body.closed == 1
    assert served.parse()[1] == b"ab"


def test_close_is_called_when_the_app_raises_mid_iteration():
    body = ClosingBody([b"a", b"b", b"c"], fail_after=1)
    with pytest.raises(RuntimeError):
        Served(GET_11, app_returning("200 OK", [], body))
    assert body.closed == 1


def test_close_is_called_when_start_response_was_never_called():
    body = ClosingBody([b"a"])

    def app(environ, start_response):
        return body

    with pytest.raises(AssertionError):
        Served(GET_11, app)
    assert body.closed == 1


def test_generator_close_runs_its_finally():
    state = []

    def app(environ, start_response):
        start_response("200 OK", [])
        try:
            yield b"one"
            raise RuntimeError("second piece fails")
        finally:
            state.append("finally")

    with pytest.raises(RuntimeError):
        Served(GET_11, app)
    assert state == ["finally"]


def test_close_is_called_for_a_head_response():
    body = ClosingBody([b"a"])
    Served(HEAD_11, app_returning("200 OK", [], body))
    assert body.closed == 1


# -- bugs found in servers/wsgi.py: these fail against the current code ------------------------------------


@pytest.mark.parametrize("shape", ["list", "generator"])
def test_304_with_an_empty_body_gets_no_invented_content_length(shape):
    # RFC 9110 §8.6: a server MUST NOT send Content-Length in a 304 unless it equals the length
    # the 200 would have had. The app gave none, yet _send_head adds "Content-Length: 0" from the
    # empty body. httpd unsets Content-Length on 204/304 (merge_response_headers).
    body = [] if shape == "list" else (lambda: iter([]))
    served = Served(GET_11, app_returning("304 Not Modified", [("ETag", '"v1"')], body))
    assert served.header(b"content-length") == []
    resp, got, _ = served.parse()
    assert resp.status_code == 304 and got == b""


@pytest.mark.parametrize("shape", ["list", "generator"])
def test_head_with_an_empty_body_gets_no_content_length_zero(shape):
    # RFC 9110 §8.6: Content-Length in a HEAD response MUST equal what GET would send. An app
    # that returns nothing for HEAD says nothing about that length, yet "Content-Length: 0" is
    # invented. httpd removes exactly this header ("we don't want to send out 0
    # Content-Lengths if it is a head request", ap_http_header_filter).
    body = [] if shape == "list" else (lambda: iter([]))
    served = Served(HEAD_11, app_returning("200 OK", [("Content-Type", "text/html")], body))
    assert served.header(b"content-length") == []


def test_date_and_server_from_the_app_are_not_duplicated():
    # RFC 9110 §5.3: a sender MUST NOT generate multiple field lines for a field that is not a
    # list; Date (§6.6.1) and Server (§10.2.4) are singletons. The server always emits its own
    # Date and Server and then appends the app's. httpd sends one of each (basic_http_header
    # unsets Date / Server from headers_out after writing its own).
    headers = [("Date", "Mon, 01 Jan 2001 00:00:00 GMT"), ("Server", "app/1.0"), ("Content-Type", "text/plain")]
    served = Served(GET_11, app_returning("200 OK", headers, [b"x"]))
    assert len(served.header(b"date")) == 1
    assert len(served.header(b"server")) == 1


@pytest.mark.parametrize("value", ["+2", "0_2", "0x2"])
def test_app_content_length_that_is_not_digits_never_reaches_the_wire(value):
    # RFC 9110 §8.6: Content-Length = 1*DIGIT. _header_entry accepts anything int() accepts
    # ("+2", "0_2") and copies the app's text verbatim, so the client sees an invalid
    # Content-Length (llhttp and h11 refuse "+5") on a response the server keeps alive.
    # Refusing the header (ValueError, like a negative length) or normalising it are both fine.
    app = app_returning("200 OK", [("Content-Length", value), ("Content-Type", "text/plain")], [b"xy"])
    try:
        served = Served(GET_11, app)
    except ValueError:
        return
    assert all(v.isdigit() for v in served.header(b"content-length")), served.raw


def test_status_without_reason_phrase_keeps_a_valid_status_line():
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]: the second SP
    # is required. PEP 3333 asks apps for "200 OK"; the server validates the code but emits
    # "HTTP/1.1 200\r\n" for "200". httpd appends the missing space (validate_status_line);
    # refusing it with ValueError, like other invalid statuses, would do too.
    try:
        served = Served(GET_11, app_returning("200", [("Content-Type", "text/plain")], [b"x"]))
    except ValueError:
        return
    assert served.raw.split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 200 ")
