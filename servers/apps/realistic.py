"""``/page``: a request that does what a real handler does, beside hello's 13 bytes.

Hello measures the server's own overhead per request; real handlers spend milliseconds of
their own, part CPU and part waiting, and the server's overhead then weighs less. This
handler is the "typical dynamic page" of that comparison, small and dependency-free:

1. queries: three SQL statements on a SQLite database of :data:`PRODUCTS` rows in
   :data:`CATEGORIES` categories (an indexed ``WHERE ... ORDER BY ... LIMIT``
   :data:`ROWS`, that category's aggregate, and a ``GROUP BY`` over the whole table for
   the page's sidebar), the category taken from ``?c=N`` or rotated per request;
2. a wait for a backend (a cache, another service): ``time.sleep`` of :data:`WAIT_MS` ms
   (``?wait_ms=N``, 0..:data:`MAX_WAIT_MS`), during which a threaded server runs other
   requests and a process holds its worker, as with any blocking call;
3. a template render: an HTML page of the rows and the sidebar through
   :class:`string.Template`, every value escaped (``html.escape``), about 8.5 KB.

About 1 ms of CPU and 2 ms of waiting per request on the machine this was written on
(docs/harness.md, "The realistic profile", has the measured figures).

The database is a file, built once per machine and user from a fixed seed (in a directory of
the user's own under the temporary directory, written aside and renamed into place, so
concurrent builders never see half of it), so every server and every run queries the same data. Each thread opens its own
read-only connection on its first request (a SQLite connection belongs to the thread that
made it; opening one costs well under a millisecond) and reads through the OS page cache,
as a real application reading its database does. Built per thread in memory instead, each
of prefork's 50 children paid ~20 ms of CPU on its first request, inside the measurement.
"""

from __future__ import annotations

import html
import itertools
import os
import random
import sqlite3
import string
import tempfile
import threading
import time
from urllib.parse import parse_qs

__all__ = ["page", "PRODUCTS", "CATEGORIES", "ROWS", "WAIT_MS", "MAX_WAIT_MS"]

PRODUCTS = 5000
CATEGORIES = 40
#: products listed on a page
ROWS = 60
#: the backend wait of a request unless ``?wait_ms=N`` says otherwise
WAIT_MS = 2
MAX_WAIT_MS = 1000

#: bumped when the table's contents change, so an old file is never read
_DB_VERSION = 1
_local = threading.local()
_rotation = itertools.count()

_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title></head>
<body><h1>$title</h1>
<p>$count products, average price $average.</p>
<ul class="categories">
$sidebar</ul>
<table><thead><tr><th>#</th><th>name</th><th>price</th><th>stock</th></tr></thead><tbody>
$rows</tbody></table>
</body></html>
""")
_ROW = string.Template("<tr><td>$id</td><td>$name</td><td>$price</td><td>$stock</td></tr>\n")
_LINK = string.Template('<li><a href="/page?c=$c">Category $c</a> ($count, from $low)</li>\n')


def _database() -> sqlite3.Connection:
    """This thread's read-only connection to the shared database file (built on first use)."""
    db = getattr(_local, "db", None)
    if db is None:
        path = database_path()
        if not os.path.exists(path):
            _build(path)
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        _local.db = db
    return db


def database_path() -> str:
    """Where the page's database lives: one file per machine, user and table version, in a directory
    only this user can write (an existing one that is not ours, or is writable by others, is refused:
    nobody else may plant the file the page reads)."""
    directory = os.path.join(tempfile.gettempdir(), f"mpm-harness-page-{os.getuid()}")
    os.makedirs(directory, mode=0o755, exist_ok=True)
    st = os.stat(directory, follow_symlinks=False)
    if st.st_uid != os.getuid() or st.st_mode & 0o022 or not os.path.isdir(directory) or os.path.islink(directory):
        raise RuntimeError(f"{directory} is not a directory only this user can write: remove it")
    return os.path.join(directory, f"page-v{_DB_VERSION}.sqlite")


def _build(path: str) -> None:
    """Write the table from the fixed seed beside ``path`` and rename it into place (atomic)."""
    partial = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    db = sqlite3.connect(partial)
    try:
        rng = random.Random(20261205)
        db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, category INTEGER, name TEXT, price REAL, "
                   "stock INTEGER)")
        db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", (
            (i, rng.randrange(CATEGORIES), f"Product <{i}> & co {rng.randrange(10**6):06d}",
             round(rng.uniform(1, 500), 2), rng.randrange(1000)) for i in range(PRODUCTS)))
        db.execute("CREATE INDEX by_category ON products (category, price)")
        db.commit()
    finally:
        db.close()
    os.replace(partial, path)


def _number(qs: dict, key: str, default: int, maximum: int) -> int | None:
    text = qs.get(key, [str(default)])[0]
    if not (text.isascii() and text.isdigit()) or len(text) > 7 or int(text) > maximum:
        return None
    return int(text)


def page(environ, start_response) -> list[bytes]:
    """``GET /page[?c=N][&wait_ms=N]``: query, wait, render (module doc); 400 for a bad number."""
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    category = _number(qs, "c", next(_rotation) % CATEGORIES, CATEGORIES - 1)
    wait_ms = _number(qs, "wait_ms", WAIT_MS, MAX_WAIT_MS)
    if category is None or wait_ms is None:
        body = f"c must be 0..{CATEGORIES - 1} and wait_ms 0..{MAX_WAIT_MS}\n".encode()
        start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    db = _database()
    rows = db.execute("SELECT id, name, price, stock FROM products WHERE category = ? "
                      "ORDER BY price DESC LIMIT ?", (category, ROWS)).fetchall()
    count, average = db.execute("SELECT COUNT(*), AVG(price) FROM products WHERE category = ?",
                                (category,)).fetchone()
    sidebar = db.execute("SELECT category, COUNT(*), MIN(price) FROM products GROUP BY category").fetchall()
    if wait_ms:
        time.sleep(wait_ms / 1000)
    esc = html.escape
    body = _PAGE.substitute(
        title=esc(f"Category {category}"), count=count, average=f"{average or 0:.2f}",
        sidebar="".join(_LINK.substitute(c=c, count=n, low=f"{low:.2f}") for c, n, low in sidebar),
        rows="".join(_ROW.substitute(id=i, name=esc(name), price=f"{price:.2f}", stock=stock)
                     for i, name, price, stock in rows)).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
