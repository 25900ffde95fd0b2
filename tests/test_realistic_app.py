"""servers.apps.realistic: /page, the realistic handler (queries, a wait, a render), called as WSGI
and served by one of our MPMs."""

from __future__ import annotations

import os
import re
import threading
import urllib.request

import pytest

from servers.apps import app
from servers.apps import realistic
from servers.launcher import start


def call(query: str = "", path: str = "/page") -> tuple[str, dict, bytes]:
    got = {}

    def start_response(status, headers):
        got["status"], got["headers"] = status, dict(headers)

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query}, start_response))
    return got["status"], got["headers"], body


def test_a_page_lists_the_category_escaped_with_its_sidebar():
    status, headers, body = call("c=7&wait_ms=0")
    assert status == "200 OK" and headers["Content-Length"] == str(len(body))
    text = body.decode()
    assert "<title>Category 7</title>" in text
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([\d.]+)</td>", text)
    assert len(rows) == realistic.ROWS
    prices = [float(p) for _, _, p in rows]
    assert prices == sorted(prices, reverse=True)  # ORDER BY price DESC
    assert all(name.startswith("Product &lt;") and "&amp; co" in name for _, name, _ in rows)  # escaped
    assert text.count('<li><a href="/page?c=') == realistic.CATEGORIES


def test_the_database_is_one_file_built_once_in_a_directory_of_our_own():
    path = realistic.database_path()
    call("c=1&wait_ms=0")
    st = os.stat(os.path.dirname(path))
    assert os.path.isfile(path) and st.st_uid == os.getuid() and not st.st_mode & 0o022
    built = os.stat(path).st_mtime_ns
    realistic._local.db = None  # a new thread's first request: opens the file, builds nothing
    call("c=2&wait_ms=0")
    assert os.stat(path).st_mtime_ns == built


def test_every_thread_builds_the_same_data():
    mine = call("c=3&wait_ms=0")[2]
    other = []
    t = threading.Thread(target=lambda: other.append(call("c=3&wait_ms=0")[2]))
    t.start()
    t.join(30)
    assert other == [mine]


def test_bad_numbers_are_400():
    for query in ("c=40", "c=x", "wait_ms=1001", "wait_ms=%C2%B2", "c=99999999"):
        assert call(query)[0] == "400 Bad Request", query


def test_without_c_the_categories_rotate():
    titles = {re.search(rb"<title>Category (\d+)</title>", call("wait_ms=0")[2]).group(1) for _ in range(3)}
    assert len(titles) == 3


@pytest.mark.timeout(60)
def test_an_mpm_serves_it():
    with start("worker", {"StartServers": 1, "ThreadsPerChild": 4, "MaxRequestWorkers": 4}) as h:
        with urllib.request.urlopen(h.url + "/page?c=1", timeout=10) as r:
            assert r.status == 200 and b"<title>Category 1</title>" in r.read()
