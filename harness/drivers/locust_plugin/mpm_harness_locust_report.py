"""The locust driver's report plugin: exact per-process counts (harness/drivers/locust.py).

Loaded by locust only, as a second ``-f`` file beside the locustfile, in every locust
process (the local runner, or the master and each worker). Never import it anywhere else:
importing locust monkey-patches the process with gevent. It listens to locust's events
and writes one JSON document per process into ``$MPM_LOCUST_REPORT_DIR``; the driver
merges them (see the driver's module docstring for what each field means).

A worker without that directory (a remote worker, started by hand on another machine)
sends its document to the master as a custom message instead, and the master writes it
there. ``$MPM_LOCUST_REMOTE_WORKERS`` makes a ``--processes`` master also wait for that
many remote workers (locust itself expects only its forked ones).

Before the master quits, it stops every worker and waits (bounded) for each one's report
(:func:`_drain_workers`): locust's headless master sends "quit" and listens only 0.5 s more
(``MasterRunner.quit``), while a worker's stop lets each user finish its request
(``--stop-timeout``), so a report sent after a slow request used to be lost.
"""
import json
import os
import resource
import socket
import time

import gevent
from hdrh.histogram import HdrHistogram
from locust import events

from harness.drivers.base import HIST_DIGITS, HIST_HIGHEST_US, HIST_LOWEST_US

_DIR = os.environ.get("MPM_LOCUST_REPORT_DIR")
_LOW, _HIGH, _DIGITS = HIST_LOWEST_US, HIST_HIGHEST_US, HIST_DIGITS
_MAX_MESSAGES = 50
_REPORT_MESSAGE = "mpm_harness_report"
_STOP_MESSAGE, _STOPPED_MESSAGE = "mpm_harness_stop", "mpm_harness_stopped"
#: seconds a worker's stop may take beyond --stop-timeout before the master quits without its report
_DRAIN_MARGIN_S = 10.0
_STOPPED = set()  # on the master: the workers that answered the stop request
_S = {"role": None, "t_start": None, "t_stop": None, "cpu_start": None, "cpu_stop": None,
      "statuses": {}, "errors": {}, "messages": {}, "timeline": [], "locust_requests": 0,
      "cpu_warning_max": 0.0, "clamped": 0}
_H = HdrHistogram(_LOW, _HIGH, _DIGITS)

_KIND_BY_NAME = {
    "ConnectionRefusedError": "connect", "ConnectError": "connect", "ConnectTimeout": "timeout",
    "TimeoutError": "timeout", "timeout": "timeout", "Timeout": "timeout", "ReadTimeout": "timeout",
    "ConnectionResetError": "reset", "BrokenPipeError": "reset",
    "HTTPConnectionClosed": "closed_early", "EmptyResponse": "closed_early", "IncompleteRead": "closed_early",
    "HTTPParseError": "protocol", "HTTPProtocolViolationError": "protocol",
}


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _chain(exc):
    out = []
    while isinstance(exc, BaseException) and len(out) < 8 and all(e is not exc for e in out):
        out.append(exc)
        original = getattr(exc, "original", None)
        exc = original if isinstance(original, BaseException) else (exc.__cause__ or exc.__context__)
    return out


def _kind(exc):
    chain = _chain(exc)
    for e in chain:
        for cls in type(e).__mro__:
            kind = _KIND_BY_NAME.get(cls.__name__)
            if kind:
                return kind
    if any(isinstance(e, OSError) for e in chain):
        return "connection"
    return "other"


def _bump(d, key, n=1):
    d[key] = d.get(key, 0) + n


def _start(environment=None):
    if _S["t_start"] is None:
        _S["t_start"] = time.time()
        _S["cpu_start"] = _cpu()


@events.test_start.add_listener
def _on_test_start(environment, **_kw):
    _start()


@events.request.add_listener
def _on_request(request_type=None, name=None, response_time=None, response=None, exception=None, **_kw):
    if _S["t_start"] is None:
        _start()
    _S["locust_requests"] += 1
    code = getattr(response, "status_code", None) or 0
    cls = type(exception).__name__ if exception is not None else ""
    if exception is None or cls in ("LocustBadStatusCode", "BadStatusCode") or (cls == "CatchResponseError" and code > 0):
        if code <= 0:
            _bump(_S["errors"], "protocol")
        else:
            _bump(_S["statuses"], str(code))
            if exception is not None and code < 400:
                _bump(_S["errors"], "check")
            sec = int(time.time() - _S["t_start"])
            tl = _S["timeline"]
            if sec >= 0:
                if sec >= len(tl):
                    tl.extend([0] * (sec + 1 - len(tl)))
                tl[sec] += 1
            if response_time is not None:
                us = int(round(float(response_time) * 1000.0))
                if us > _HIGH:
                    us = _HIGH
                    _S["clamped"] += 1
                _H.record_value(max(_LOW, us))
    else:
        _bump(_S["errors"], _kind(exception))
    if exception is not None:
        _note_message(f"{request_type} {name}: {exception!r}")


def _note_message(text):
    # distinct messages are capped: a flood of unique errors must not grow the report without bound
    msgs, key = _S["messages"], text[:200]
    _bump(msgs, key if key in msgs or len(msgs) < _MAX_MESSAGES else "(other messages)")


@events.user_error.add_listener
def _on_user_error(user_instance=None, exception=None, tb=None, **_kw):
    _bump(_S["errors"], "user_error")
    _note_message(f"user error in {type(user_instance).__name__}: {exception!r}")


@events.cpu_warning.add_listener
def _on_cpu_warning(environment=None, cpu_usage=0.0, **_kw):
    _S["cpu_warning_max"] = max(_S["cpu_warning_max"], float(cpu_usage or 0.0))


def _save(doc, name):
    path = os.path.join(_DIR, f"report-{name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(path + ".tmp", path)


def _write(environment):
    runner = getattr(environment, "runner", None)
    _S["role"] = type(runner).__name__ if runner is not None else None
    doc = dict(_S, pid=os.getpid(), host=socket.gethostname(), cpu_now=_cpu(),
               hist=_H.encode().decode("ascii") if _H.get_total_count() else "")
    if _DIR:
        _save(doc, str(os.getpid()))
    elif _S["role"] == "WorkerRunner":
        runner.send_message(_REPORT_MESSAGE, doc)


def _on_worker_report(environment, msg, **_kw):
    # a later document from the same worker (test_stop, then quitting) replaces the earlier one
    if _DIR and isinstance(msg.data, dict):
        _save(dict(msg.data, node_id=str(msg.node_id)), "w-" + "".join(c for c in str(msg.node_id) if c.isalnum()))


def _on_worker_stopped(environment, msg, **_kw):
    _STOPPED.add(str(msg.node_id))


def _on_stop_request(environment, msg, **_kw):
    # a worker: stop the users (each finishes its request), which fires test_stop and so sends
    # or writes the report; then tell the master, over the same ordered connection
    environment.runner.stop()
    environment.runner.send_message(_STOPPED_MESSAGE, None)


def _drain_workers(environment):
    """On the master at test_stop: stop every live worker and wait for its report, bounded."""
    runner = environment.runner
    # only live workers: when the last worker quit or went missing, there is none to wait for
    live = runner.clients.ready + runner.clients.spawning + runner.clients.running
    asked = {str(c.id) for c in live}
    for node in asked:
        runner.send_message(_STOP_MESSAGE, None, node)
    deadline = time.monotonic() + float(environment.stop_timeout or 0) + _DRAIN_MARGIN_S
    while not asked <= _STOPPED and time.monotonic() < deadline:
        gevent.sleep(0.05)  # the master's listener greenlet receives the reports meanwhile


@events.init.add_listener
def _on_init(environment, **_kw):
    runner = getattr(environment, "runner", None)
    if type(runner).__name__ == "WorkerRunner":
        runner.register_message(_STOP_MESSAGE, _on_stop_request)
    if type(runner).__name__ != "MasterRunner":
        return
    runner.register_message(_REPORT_MESSAGE, _on_worker_report)
    runner.register_message(_STOPPED_MESSAGE, _on_worker_stopped)
    remote = int(os.environ.get("MPM_LOCUST_REMOTE_WORKERS") or 0)
    opts = environment.parsed_options
    if remote > 0 and opts is not None and getattr(opts, "processes", None):
        opts.expect_workers = int(opts.processes) + remote


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw):
    if type(getattr(environment, "runner", None)).__name__ == "MasterRunner" and _S["t_stop"] is None:
        _drain_workers(environment)  # the run ends when every user has stopped, as with a local runner
    if _S["t_stop"] is None:
        _S["t_stop"] = time.time()
        _S["cpu_stop"] = _cpu()
    _write(environment)


@events.quitting.add_listener
def _on_quitting(environment, **_kw):
    _write(environment)
