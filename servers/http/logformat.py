"""mod_log_config's log formats, sans-IO: compile a format string once, render one line per request.

What httpd 2.4's mod_log_config (with mod_logio) does with a ``LogFormat`` string, without
files or sockets (``servers/mpm/accesslog.py`` opens the files and writes the lines):

* :func:`compile_format` parses the string as ``parse_log_string`` does: literal text with
  the C escapes ``\\n``, ``\\t``, ``\\r`` and ``\\\\``; ``%%``; and ``%`` directives with their
  modifiers -- a status list (``%400,501{User-agent}i``, ``!`` negates it: other statuses log
  ``-``), ``<`` and ``>`` (original or final request: we have no internal redirects, so both
  are the one request) and an argument in braces. An unknown directive is refused as httpd
  refuses it ("Unrecognized LogFormat directive %Z"); so is an argument httpd would log as
  the bogus text it is (``%{bogus}T``), one given to a directive that takes none, and none
  given to one that needs it (see the table of directives, _DIRECTIVES, below).
* :meth:`LogFormat.render` writes one line, ending in ``\\n``, from an :class:`Entry`.
  Strings that come from the client or the application are escaped as httpd's
  ``ap_escape_logitem`` does: ``"`` and ``\\`` get a backslash, ``\\b \\n \\r \\t \\v`` are
  written so, and every other byte outside printable ASCII as ``\\xhh``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence
from urllib.parse import unquote_to_bytes

from .request import Request, remember

__all__ = ["PREDEFINED", "Entry", "LogFormat", "LogFormatError", "clf_time", "compile_format", "escape"]

#: The nicknames every configuration starts with: ``CLF`` is mod_log_config's own
#: (DEFAULT_LOG_FORMAT); ``common``, ``combined`` and ``combinedio`` are those of httpd's
#: default httpd.conf; ``vhost_common``, ``referer`` and ``agent`` the examples of
#: mod_log_config's documentation.
PREDEFINED: Mapping[str, str] = {
    "CLF": '%h %l %u %t "%r" %>s %b',
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
    "combinedio": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %I %O',
    "vhost_common": '%v %h %l %u %t "%r" %>s %b',
    "referer": "%{Referer}i -> %U",
    "agent": "%{User-agent}i",
}


class LogFormatError(ValueError):
    """A format httpd refuses, or one we refuse where httpd would log nonsense; says which part."""


@dataclass(slots=True)
class Entry:
    """What one log line is made of, filled in by the server when the response is done.

    ``req`` is None for a request refused before its head could be parsed (then the
    request's items log ``-``). ``head`` holds the response's header field lines as sent
    (``b"Name: value\\r\\n"``); ``length`` the Content-Length the server framed the body with,
    when the application did not set one itself. ``start`` and ``end`` are epoch seconds;
    ``keepalives`` and ``conn_status`` are httpd's ``%k`` and ``%X`` values already.
    ``local`` (the connection's own address) and ``bytes_in`` cost something to find out,
    so they are only filled in for a format whose :attr:`LogFormat.needs` names them.
    """

    req: Request | None
    client: str
    client_port: int
    server_name: str
    server_port: int
    status: int
    head: Sequence[bytes]
    length: int | None
    head_bytes: int
    body_bytes: int
    bytes_in: int | None
    environ: Mapping | None
    start: float
    end: float
    keepalives: int
    conn_status: str
    local: tuple[str, int] | None = None


Item = Callable[[Entry], str]

# -- escaping (ap_escape_logitem) ----------------------------------------------------------

#: printable ASCII but '"' and '\': written as they are
_PLAIN = re.compile(r'[ !#-\[\]-~]*\Z').match
_NAMED = {"\b": "\\b", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}
_ESCAPES = {i: _NAMED.get(chr(i), "\\x%02x" % i) for i in range(256) if not _PLAIN(chr(i))}


def escape(value: str) -> str:
    """``value`` as httpd's ap_escape_logitem writes it (str holds bytes as latin-1 characters;
    a character above U+00FF is escaped byte by byte in UTF-8)."""
    if _PLAIN(value):
        return value
    out = value.translate(_ESCAPES)
    if out.isascii():
        return out
    return "".join(c if c.isascii() else "".join("\\x%02x" % b for b in c.encode("utf-8", "surrogatepass"))
                   for c in out)


# -- the items: one function of an Entry per % directive -----------------------------------


def _dash(e: Entry) -> str:
    return "-"


def _client(e: Entry) -> str:
    return e.client  # %h as %a: no HostnameLookups


def _local_ip(e: Entry) -> str:
    return e.local[0] if e.local else "-"


_LINES: dict[bytes, str] = {}


def _request_line(e: Entry) -> str:
    """%r, escaped; remembered, since most traffic repeats a few request lines (bounded)."""
    if e.req is None:
        return "-"
    line = e.req.request_line
    text = _LINES.get(line)
    if text is None:
        text = escape(line.decode("latin-1"))
        remember(_LINES, line, text)  # a long line is escaped each time (up to LimitRequestLine per entry)
    return text


def _method(e: Entry) -> str:
    return escape(e.req.method) if e.req is not None else "-"


def _protocol(e: Entry) -> str:
    req = e.req
    return escape(req.received_version or req.http_version) if req is not None else "-"


def _url_path(e: Entry) -> str:
    """%U: the path, %-decoded as httpd's r->uri (and PATH_INFO) is."""
    req = e.req
    if req is None:
        return "-"
    path = req.path
    if "%" in path:
        path = unquote_to_bytes(path).decode("latin-1")
    return escape(path)


def _query(e: Entry) -> str:
    req = e.req
    return "?" + escape(req.query) if req is not None and "?" in req.target else ""


def _status(e: Entry) -> str:
    return str(e.status) if e.status > 0 else "-"


def _clf_bytes(e: Entry) -> str:
    return str(e.body_bytes) if e.body_bytes else "-"


def _bytes(e: Entry) -> str:
    return str(e.body_bytes)


def _bytes_in(e: Entry) -> str:
    return str(e.bytes_in) if e.bytes_in is not None else "-"


def _bytes_out(e: Entry) -> str:
    return str(e.head_bytes + e.body_bytes)


def _bytes_both(e: Entry) -> str:
    return str((e.bytes_in or 0) + e.head_bytes + e.body_bytes)


def _duration_us(e: Entry) -> int:
    """The request's duration in whole microseconds (httpd subtracts integer microsecond times)."""
    return round((e.end - e.start) * 1e6)


def _micros(e: Entry) -> str:
    return str(_duration_us(e))


def _server_name(e: Entry) -> str:
    return escape(e.server_name)


def _host_name(e: Entry) -> str:
    """%V: the name the client asked for (UseCanonicalName Off, httpd's default), without its port."""
    req = e.req
    host = req.host if req is not None else ""
    if not host:
        return escape(e.server_name)
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
        host = name
    return escape(host)


def _conn_status(e: Entry) -> str:
    return e.conn_status


def _keepalives(e: Entry) -> str:
    return str(e.keepalives)


def _no_arg(letter: str, item: Item, *allowed: str) -> Callable[[str], Item]:
    """A directive that takes no argument (or only one of ``allowed``, which change nothing here)."""

    def make(arg: str) -> Item:
        if arg and arg not in allowed:
            also = f" (only {{{'}, {'.join(allowed)}}})" if allowed else ""
            raise LogFormatError(f"%{{{arg}}}{letter}: %{letter} takes no argument{also}")
        return item

    return make


def _needs_arg(letter: str, what: str, make_item: Callable[[str], Item]) -> Callable[[str], Item]:
    def make(arg: str) -> Item:
        if not arg:
            raise LogFormatError(f"%{letter} needs {what} in braces, e.g. %{{{_EXAMPLES[letter]}}}{letter}")
        return make_item(arg)

    return make


_EXAMPLES = {"i": "User-Agent", "o": "Content-Type", "e": "REMOTE_ADDR", "C": "session", "n": "note",
             "^ti": "Trailer", "^to": "Trailer"}


def _choice(letter: str, choices: Mapping[str, Item]) -> Callable[[str], Item]:
    """A directive whose argument picks one of ``choices`` ("" is the default); httpd logs an unknown
    argument as the text itself, we refuse it."""

    def make(arg: str) -> Item:
        item = choices.get(arg.lower())
        if item is None:
            known = ", ".join(c for c in choices if c)
            raise LogFormatError(f"%{{{arg}}}{letter}: unknown argument {arg!r} (httpd knows {known})")
        return item

    return make


def _header_in(name: str) -> Item:
    """%{Name}i: the request's field; repeated fields joined by ", " as httpd merges them."""
    lname = name.lower()
    size = len(name)

    def item(e: Entry) -> str:
        if e.req is None:
            return "-"
        found = None
        for field, value in e.req.headers:
            if len(field) == size and field.lower() == lname:  # the length first: no lower() for most
                found = value if found is None else f"{found}, {value}"
        return "-" if found is None else escape(found)

    return item


def _header_out(name: str) -> Item:
    """%{Name}o: the response's field (first value; every Set-Cookie, ", "-joined; Content-Type
    without its parameters), as httpd's log_header_out reads r->headers_out."""
    lname = name.lower().encode("latin-1", "replace")
    every = lname == b"set-cookie"
    content_type = lname == b"content-type"
    content_length = lname == b"content-length"

    def item(e: Entry) -> str:
        found = []
        for line in e.head:
            field, sep, value = line.partition(b":")
            if sep and field.lower() == lname:
                found.append(value.strip())
                if not every:
                    break
        if not found:
            return str(e.length) if content_length and e.length is not None else "-"
        text = b", ".join(found).decode("latin-1")
        if content_type:
            text = text.split(";", 1)[0].rstrip()  # ap_field_noparam
        return escape(text)

    return item


def _env_var(name: str) -> Item:
    """%{NAME}e: a string of the request's WSGI environ (CGI variables, and what the application put there)."""

    def item(e: Entry) -> str:
        value = e.environ.get(name) if e.environ is not None else None
        return escape(value) if isinstance(value, str) else "-"

    return item


def _cookie(name: str) -> Item:
    """%{name}C: a cookie of the request, matched as httpd's log_cookie does (names case-insensitively,
    blanks around names and values dropped, an empty value not found)."""
    lname = name.lower()

    def item(e: Entry) -> str:
        if e.req is None:
            return "-"
        for field, value in e.req.headers:
            if field.lower() != "cookie":
                continue
            for pair in value.split(";"):
                key, sep, val = pair.partition("=")
                if sep and key.strip().lower() == lname and val.strip():
                    return escape(val.strip())
        return "-"

    return item


def _duration(unit: str) -> Item:
    """%T and %{unit}T: whole seconds, milliseconds or microseconds, truncated as apr_time_sec does."""
    per = {"": 1000000, "s": 1000000, "ms": 1000, "us": 1}[unit]
    return lambda e: str(_duration_us(e) // per)


def _port(which: str) -> Item:
    if which in ("", "canonical"):
        return lambda e: str(e.server_port)
    if which == "remote":
        return lambda e: str(e.client_port)
    return lambda e: str(e.local[1]) if e.local else "-"


def _pid(e: Entry) -> str:
    return str(os.getpid())


def _tid(e: Entry) -> str:
    return str(threading.get_ident())  # pthread_self(), as APR's %pT prints it


def _hextid(e: Entry) -> str:
    return "%x" % threading.get_ident()


# -- time: %t and %{format}t ----------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_clf_cache: dict[int, str] = {}


def clf_time(t: float) -> str:
    """``[18/Sep/2011:19:18:28 -0400]`` in local time, formatted once per second (httpd caches it too)."""
    second = int(t)
    text = _clf_cache.get(second)
    if text is None:
        tm = time.localtime(second)
        off = tm.tm_gmtoff or 0
        sign = "-" if off < 0 else "+"
        off = abs(off)
        text = "[%02d/%s/%d:%02d:%02d:%02d %s%02d%02d]" % (
            tm.tm_mday, _MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec,
            sign, off // 3600, off % 3600 // 60)
        if len(_clf_cache) > 4:
            _clf_cache.clear()
        _clf_cache[second] = text
    return text


_EPOCH_FORMS: Mapping[str, Callable[[float], str]] = {
    "sec": lambda t: str(int(t)),
    "msec": lambda t: str(int(t * 1000)),
    "usec": lambda t: str(int(t * 1000000)),
    "msec_frac": lambda t: "%03d" % (int(t * 1000) % 1000),
    "usec_frac": lambda t: "%06d" % (int(t * 1000000) % 1000000),
}


def _time(arg: str) -> Item:
    """%t and %{[begin:|end:]format}t, read as log_request_time does: ``begin`` (the default) is when
    the request arrived, ``end`` when the line is written; the format is strftime(3)'s, or one of
    sec, msec, usec, msec_frac, usec_frac."""
    at_end = False
    fmt = arg
    for word, end in (("begin", False), ("end", True)):
        if fmt.startswith(word) and (fmt == word or fmt[len(word)] == ":"):
            at_end = end
            fmt = fmt[len(word) + 1:]
            break
    if not fmt:
        render = clf_time
    elif fmt in _EPOCH_FORMS:
        render = _EPOCH_FORMS[fmt]
    else:
        try:
            time.strftime(fmt, time.localtime(0))
        except ValueError as exc:
            raise LogFormatError(f"%{{{arg}}}t: not a strftime format: {exc}") from None
        render = lambda t: time.strftime(fmt, time.localtime(t))  # noqa: E731
    if at_end:
        return lambda e: render(e.end)
    return lambda e: render(e.start)


#: every directive httpd 2.4 registers (mod_log_config and mod_logio), by its letter(s)
_DIRECTIVES: Mapping[str, Callable[[str], Item]] = {
    "a": _no_arg("a", _client, "c"),
    "A": _no_arg("A", _local_ip),
    "b": _no_arg("b", _clf_bytes),
    "B": _no_arg("B", _bytes),
    "C": _needs_arg("C", "a cookie name", _cookie),
    "D": _no_arg("D", _micros),
    "e": _needs_arg("e", "a variable name", _env_var),
    "f": _no_arg("f", _dash),
    "h": _no_arg("h", _client, "c"),
    "H": _no_arg("H", _protocol),
    "i": _needs_arg("i", "a header name", _header_in),
    "I": _no_arg("I", _bytes_in),
    "k": _no_arg("k", _keepalives),
    "l": _no_arg("l", _dash),
    "L": _no_arg("L", _dash, "c"),
    "m": _no_arg("m", _method),
    "n": _needs_arg("n", "a note name", lambda name: _dash),
    "o": _needs_arg("o", "a header name", _header_out),
    "O": _no_arg("O", _bytes_out),
    "p": _choice("p", {"": _port(""), "canonical": _port("canonical"), "local": _port("local"),
                       "remote": _port("remote")}),
    "P": _choice("P", {"": _pid, "pid": _pid, "tid": _tid, "hextid": _hextid}),
    "q": _no_arg("q", _query),
    "r": _no_arg("r", _request_line),
    "R": _no_arg("R", _dash),
    "s": _no_arg("s", _status),
    "S": _no_arg("S", _bytes_both),
    "t": _time,
    "T": _choice("T", {"": _duration(""), "s": _duration("s"), "ms": _duration("ms"), "us": _duration("us")}),
    "u": _no_arg("u", _dash),
    "U": _no_arg("U", _url_path),
    "v": _no_arg("v", _server_name),
    "V": _no_arg("V", _host_name),
    "X": _no_arg("X", _conn_status),
    "^FB": _no_arg("^FB", _dash),
    "^ti": _needs_arg("^ti", "a trailer name", lambda name: _dash),
    "^to": _needs_arg("^to", "a trailer name", lambda name: _dash),
}

# -- parsing (parse_log_string) ---------------------------------------------------------------

_C_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def _literal(text: str, pos: int) -> tuple[str, int]:
    """Literal text from ``pos`` up to the next %, its C escapes applied (parse_log_misc_string)."""
    out = []
    end = len(text)
    while pos < end and text[pos] != "%":
        ch = text[pos]
        if ch == "\\" and pos + 1 < end and text[pos + 1] in _C_ESCAPES:
            out.append(_C_ESCAPES[text[pos + 1]])
            pos += 2
        else:
            out.append(ch)  # any other backslash is kept, as httpd keeps it
            pos += 1
    return "".join(out), pos


def _conditional(item: Item, codes: tuple[int, ...], negate: bool) -> Item:
    """The item only for responses with a status in ``codes`` (not in, with ``!``); else "-"."""
    wanted = frozenset(codes)

    def conditional(e: Entry) -> str:
        return item(e) if (e.status in wanted) != negate else "-"

    return conditional


#: what the directives that read a costly fact need: the local address, the received bytes
_NEEDS = {"A": "local", "I": "bytes_in", "S": "bytes_in"}


def _directive(text: str, pos: int) -> tuple[Item, str | None, int]:
    """The % directive starting at ``pos`` (just after the %): (its item, the costly fact it needs or
    None, the position after it)."""
    negate = False
    codes: list[int] = []
    arg = ""
    end = len(text)
    while pos < end:
        ch = text[pos]
        if ch == "!":
            negate = not negate
            pos += 1
        elif ch in "<>,":
            pos += 1  # original or final request: one and the same here
        elif ch == "{":
            close = text.find("}", pos + 1)
            if close < 0:
                break
            arg = text[pos + 1:close]
            pos = close + 1
        elif ch.isdigit():
            start = pos
            while pos < end and text[pos].isdigit():
                pos += 1
            codes.append(int(text[start:pos]))
        else:
            name = text[pos:pos + 3] if text[pos:pos + 3] in _DIRECTIVES else ch
            make = _DIRECTIVES.get(name)
            if make is None:
                raise LogFormatError(f"Unrecognized LogFormat directive %{ch}")
            item = make(arg)
            if codes:
                item = _conditional(item, tuple(codes), negate)
            need = "local" if name == "p" and arg.lower() == "local" else _NEEDS.get(name)
            return item, need, pos + len(name)
    raise LogFormatError("Ran off end of LogFormat parsing args to some directive")


class LogFormat:
    """One compiled format: :meth:`render` an :class:`Entry` into its line (bytes, ``\\n``-terminated)."""

    __slots__ = ("text", "needs", "_template", "_items")

    def __init__(self, text: str, template: str, items: tuple[Item, ...], needs: frozenset[str]) -> None:
        self.text = text
        #: the costly facts its Entry must hold: "local" (the local address), "bytes_in" (%I, %S)
        self.needs = needs
        self._template = template
        self._items = items

    def render(self, e: Entry) -> bytes:
        """The log line for ``e``: every item in its place, then the newline httpd appends."""
        return (self._template % tuple([item(e) for item in self._items])).encode("utf-8", "backslashreplace")

    def __repr__(self) -> str:
        return f"LogFormat({self.text!r})"


def compile_format(text: str) -> LogFormat:
    """Parse a LogFormat string (httpd's parse_log_string); raises :class:`LogFormatError`."""
    template: list[str] = []
    items: list[Item] = []
    needs: set[str] = set()
    pos = 0
    while pos < len(text):
        if text[pos] != "%":
            literal, pos = _literal(text, pos)
            template.append(literal.replace("%", "%%"))
        elif text.startswith("%%", pos):
            template.append("%%")
            pos += 2
        else:
            item, need, pos = _directive(text, pos + 1)
            if item is _dash:
                template.append("-")  # a value that is always "-" here (%l, %u, %f...) costs nothing
                continue
            template.append("%s")
            items.append(item)
            if need:
                needs.add(need)
    template.append("\n")
    return LogFormat(text, "".join(template), tuple(items), frozenset(needs))
