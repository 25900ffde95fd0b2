"""A WSGI application that sends one invalid response per path (issue 14, defect 4).

``GET /<case>`` calls start_response with ``CASES[case]``; ``GET /ok`` answers 200. Served
live by tests/test_response_validation.py with ``--app tests.wsgi_badresponse:app``; each
case must be answered 500 with the reason (the last element) in the error log.
"""

from __future__ import annotations

BODY = [b"0123456789"]

#: case -> (status, headers, body, what the error log must say)
CASES: dict[str, tuple[str, list[tuple[str, str]], list[bytes], str]] = {
    "two-lengths": ("200 OK", [("Content-Length", "10"), ("Content-Length", "2")], BODY,
                    "two different Content-Length values: 10 and 2"),
    "te-trailing-space": ("200 OK", [("Transfer-Encoding ", "chunked"), ("Content-Length", "10")], BODY,
                          "header name 'Transfer-Encoding ' is not a token"),
    "name-with-space": ("200 OK", [("X Bad", "1")], BODY, "header name 'X Bad' is not a token"),
    "name-with-colon": ("200 OK", [("X-A:b", "1")], BODY, "header name 'X-A:b' is not a token"),
    "nul-in-value": ("200 OK", [("X-Nul", "a\x00b")], BODY, "header 'X-Nul': character"),
    "esc-in-value": ("200 OK", [("X-Esc", "\x1b[2J")], BODY, "header 'X-Esc': character"),
    "del-in-value": ("200 OK", [("X-Del", "a\x7f")], BODY, "header 'X-Del': character"),
    "crlf-in-value": ("200 OK", [("X-Split", "a\r\nSet-Cookie: x=1")], BODY, "header 'X-Split': character"),
    "beyond-latin1": ("200 OK", [("X-Euro", "\u20ac")], BODY, "header 'X-Euro': character"),
    "length-not-decimal": ("200 OK", [("Content-Length", "+5")], BODY,
                           "Content-Length must be one non-negative decimal"),
    "status-999": ("999 Nope", [], BODY, "status '999 Nope': status codes are 100-599"),
    "status-1xx": ("103 Early Hints", [], [], "status '103 Early Hints': an interim 1xx cannot be a final status"),
    "nul-in-reason": ("200 O\x00K", [], BODY, "not allowed in a reason phrase"),
}


def app(environ, start_response):
    """Answer ``/<case>`` with that case's invalid response; ``/ok`` with a valid one."""
    case = CASES.get(environ["PATH_INFO"][1:])
    if case is None:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    status, headers, body, _ = case
    start_response(status, headers)
    return body
