"""The access log's formatter (servers/http/logformat.py): every % directive, httpd's escaping, bad formats.

Sans-IO: an Entry is built from a request parsed by the real RequestReader, and the rendered
line is compared with what httpd 2.4's mod_log_config writes for the same facts.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from servers.http.logformat import PREDEFINED, Entry, LogFormatError, clf_time, compile_format, escape
from servers.http.parser import RequestReader

#: 2026-11-26 07:08:09.123456 UTC, the request's start; it ended 1.5 ms (1500 us) later
START = 1795676889.123456
END = START + 0.0015


def parse(raw: bytes):
    reader = RequestReader()
    reader.feed(raw)
    return reader.next_event()


REQ = parse(b"GET /a%20b/c?x=1&y=%22 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: curl/8.0\r\n"
            b"Referer: http://r.test/\r\nAccept: a\r\nAccept: b\r\nCookie: theme=dark; Session = s1 \r\n\r\n")


def entry(req=REQ, **fields) -> Entry:
    values = dict(req=req, client="192.0.2.7", client_port=50123, server_name="www.test", server_port=80,
                  status=200, head=[b"Content-Type: text/plain; charset=utf-8\r\n", b"Set-Cookie: a=1\r\n",
                                    b"Set-Cookie: b=2\r\n", b"X-Empty: \r\n"],
                  length=13, head_bytes=120, body_bytes=13, bytes_in=150, environ={"REMOTE_USER": "bob", "N": 3},
                  start=START, end=END, keepalives=2, conn_status="+", local=("127.0.0.1", 8080))
    values.update(fields)
    return Entry(**values)


def line(fmt: str, e: Entry | None = None) -> str:
    out = compile_format(fmt).render(e or entry())
    assert out.endswith(b"\n")
    return out[:-1].decode("utf-8")


@pytest.mark.parametrize("fmt, expected", [
    ("%h %a %{c}a %{c}h", "192.0.2.7 192.0.2.7 192.0.2.7 192.0.2.7"),
    ("%A %{local}p %{remote}p %p %{canonical}p", "127.0.0.1 8080 50123 80 80"),
    ("%l %u", "- -"),
    ("%r", "GET /a%20b/c?x=1&y=%22 HTTP/1.1"),
    ("%m %H %U %q", "GET HTTP/1.1 /a b/c ?x=1&y=%22"),
    ("%s %>s %<s", "200 200 200"),
    ("%b %B %I %O %S", "13 13 150 133 283"),
    ("%D %T %{s}T %{ms}T %{us}T", "1500 0 0 1 1500"),
    ("%v %V", "www.test example.test"),
    ("%X %k", "+ 2"),
    ("%{User-Agent}i|%{user-agent}i|%{Accept}i|%{X-None}i", "curl/8.0|curl/8.0|a, b|-"),
    ("%{Content-Type}o|%{set-cookie}o|%{X-Empty}o|%{Content-Length}o|%{X-None}o",
     "text/plain|a=1, b=2||13|-"),
    ("%{REMOTE_USER}e %{N}e %{MISSING}e", "bob - -"),
    ("%{theme}C %{session}C %{none}C", "dark s1 -"),
    ("%f %R %L %{c}L %{x}n %^FB %{X}^ti %{X}^to", "- - - - - - - -"),
    ("100%% %%h", "100% %h"),
    ("tab\\tnl\\nbs\\\\ other\\q", "tab\tnl\nbs\\ other\\q"),
    ("", ""),
])
def test_each_directive(fmt: str, expected: str) -> None:
    assert line(fmt) == expected


def test_pid_and_thread_ids() -> None:
    tid = threading.get_ident()
    assert line("%P %{pid}P %{tid}P %{hextid}P") == f"{os.getpid()} {os.getpid()} {tid} {tid:x}"


def test_time_directives() -> None:
    tm = time.localtime(START)
    assert line("%t") == clf_time(START) == time.strftime("[%d/%b/%Y:%H:%M:%S %z]", tm)
    assert line("%{begin}t") == line("%t")
    assert line("%{end}t") == clf_time(END)
    assert line("%{%Y-%m-%d %H:%M:%S}t") == time.strftime("%Y-%m-%d %H:%M:%S", tm)
    assert line("%{end:%Y}t") == time.strftime("%Y", time.localtime(END))
    assert line("%{sec}t %{msec}t %{usec}t") == f"{int(START)} {int(START * 1000)} {int(START * 1e6)}"
    assert line("%{msec_frac}t %{usec_frac}t %{end:msec_frac}t") == "123 123456 124"


def test_status_conditions() -> None:
    assert line("%200,304{Referer}i %!200{Referer}i %400,501{Referer}i") == "http://r.test/ - -"
    e = entry(status=404)
    assert line("%404{User-Agent}i %!200,304,302{User-Agent}i %!404b", e) == "curl/8.0 curl/8.0 -"


def test_request_less_lines_log_dashes() -> None:
    """A request refused before its head was parsed: the request's items are '-', the rest as usual."""
    e = entry(req=None, status=400, environ=None, bytes_in=None, head=[], length=None, body_bytes=226)
    assert line('%h "%r" %>s %b %m %U %q %H %{User-Agent}i %{x}C %{N}e %I %V', e) == \
        '192.0.2.7 "-" 400 226 - -  - - - - - www.test'


def test_empty_body_and_missing_status() -> None:
    e = entry(body_bytes=0, status=0)
    assert line("%b %B %s", e) == "- 0 -"


def test_head_without_host_uses_the_server_name() -> None:
    e = entry(req=parse(b"GET / HTTP/1.0\r\n\r\n"))
    assert line("%V %q %H", e) == "www.test  HTTP/1.0"
    assert line("%V", entry(req=parse(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"))) == "[::1]"


def test_query_mark_without_a_query() -> None:
    assert line("%U|%q", entry(req=parse(b"GET /x? HTTP/1.1\r\nHost: a\r\n\r\n"))) == "/x|?"


def test_the_predefined_formats_are_httpds() -> None:
    assert PREDEFINED["common"] == PREDEFINED["CLF"] == '%h %l %u %t "%r" %>s %b'
    assert line(PREDEFINED["combined"]) == (
        f'192.0.2.7 - - {clf_time(START)} "GET /a%20b/c?x=1&y=%22 HTTP/1.1" 200 13 "http://r.test/" "curl/8.0"')
    assert line(PREDEFINED["combinedio"]).endswith('"curl/8.0" 150 133')
    for fmt in PREDEFINED.values():
        compile_format(fmt)


# -- escaping: ap_escape_logitem ---------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("plain text ~!#", "plain text ~!#"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("\b\n\r\t\v", "\\b\\n\\r\\t\\v"),
    ("\x00\x01\x1f\x7f", "\\x00\\x01\\x1f\\x7f"),
    ("caf\xe9 \xff", "caf\\xe9 \\xff"),
    ("\u20ac", "\\xe2\\x82\\xac"),
])
def test_escape(raw: str, expected: str) -> None:
    assert escape(raw) == expected


def test_request_values_are_escaped_and_literals_are_not() -> None:
    req = parse(b'GET /p HTTP/1.1\r\nHost: a\r\nUser-Agent: a "b" \\ \xe9\r\nX-Tab: a\tb\r\n\r\n')
    e = entry(req=req, environ={"V": 'q"\n'}, head=[b'X-Out: "o"\xff\r\n'])
    assert line('"%{User-Agent}i" %{X-Tab}i %{V}e %{X-Out}o é', e) == \
        '"a \\"b\\" \\\\ \\xe9" a\\tb q\\"\\n \\"o\\"\\xff é'


def test_the_rendered_line_is_one_utf8_line() -> None:
    out = compile_format("%{User-Agent}i é").render(entry(req=parse(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: "
                                                                      b"x\r\n\r\n")))
    assert out == "x é\n".encode()


# -- refused formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, message", [
    ("%Z", "Unrecognized LogFormat directive %Z"),
    ("%h %^xy", "Unrecognized LogFormat directive %^"),
    ("%", "Ran off end of LogFormat parsing args to some directive"),
    ("%>", "Ran off end of LogFormat parsing args to some directive"),
    ("%{Referer", "Ran off end of LogFormat parsing args to some directive"),
    ("%400", "Ran off end of LogFormat parsing args to some directive"),
    ("%{bogus}T", "%{bogus}T: unknown argument 'bogus' (httpd knows s, ms, us)"),
    ("%{bogus}p", "unknown argument 'bogus' (httpd knows canonical, local, remote)"),
    ("%{bogus}P", "unknown argument 'bogus' (httpd knows pid, tid, hextid)"),
    ("%{Referer}I", "%{Referer}I: %I takes no argument"),
    ("%{x}h", "%{x}h: %h takes no argument (only {c})"),
    ("%i", "%i needs a header name in braces, e.g. %{User-Agent}i"),
    ("%o", "%o needs a header name"),
    ("%e", "%e needs a variable name"),
    ("%C", "%C needs a cookie name"),
])
def test_bad_formats_are_refused(fmt: str, message: str) -> None:
    with pytest.raises(LogFormatError, match=message.replace("{", "\\{").replace("}", "\\}").replace("(", "\\(")
                       .replace(")", "\\)").replace("^", "\\^")):
        compile_format(fmt)


def test_a_format_names_the_costly_facts_it_needs() -> None:
    """The writer asks the socket for its address (getsockname) and sums the request's bytes only when asked."""
    assert compile_format(PREDEFINED["combined"] + " %p %{remote}p %{canonical}p %O").needs == frozenset()
    assert compile_format("%A").needs == {"local"}
    assert compile_format("%{LOCAL}p").needs == {"local"}
    assert compile_format(PREDEFINED["combinedio"]).needs == {"bytes_in"}
    assert compile_format("%S %A").needs == {"bytes_in", "local"}
