"""A user's WSGI app for tests/test_modwsgi.py: says where and how mod_wsgi runs it."""

from __future__ import annotations

import json
import os
import threading


def app(environ, start_response):
    """JSON: this process's uid and pid, the thread, mod_wsgi's process and application groups."""
    body = json.dumps({
        "user_app": True,
        "uid": os.getuid(),
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "process_group": environ.get("mod_wsgi.process_group"),
        "application_group": environ.get("mod_wsgi.application_group"),
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "path": environ.get("PATH_INFO", ""),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
