"""The event MPM's hand-offs between its listener and its workers (docs/performance.md, "Where an
event request's time goes"): the job queue that gives a request to the worker that went idle last,
and the keep-alive hand-back a worker arms itself without waking the listener.

Waits poll conditions with deadlines; nothing asserts wall-clock durations.
"""

from __future__ import annotations

import threading

from servers.mpm.event import JobQueue, _Idle
from suites.wire import Conn, wait_until
from .serverutil import GET, status_or_none
from .test_event import APP, ONE_CHILD


def _worker(q: JobQueue, got: list, name: str) -> threading.Thread:
    """A thread that pops jobs from ``q`` into ``got`` as (name, job) until it is released."""
    def run() -> None:
        idle = _Idle()
        while (job := q.pop(idle)) is not None:
            got.append((name, job))
            q.done()
        idle.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_job_queue_queues_without_idle_workers_and_hands_to_the_last_idle_one():
    q = JobQueue()
    woken = []
    q.on_idle = lambda: woken.append(1)
    q.push("early")  # nobody idle: it waits in the queue
    assert q.free_workers() == -1
    got: list = []
    a = _worker(q, got, "a")
    wait_until(lambda: q.idlers == 1, 5, what="worker a idle")
    assert got == [("a", "early")] and woken == [1]  # the first idle worker tells the listener
    b = _worker(q, got, "b")
    wait_until(lambda: q.idlers == 2 and q.free_workers() == 2, 5, what="both workers idle")
    q.push("next")
    wait_until(lambda: len(got) == 2, 5, what="the job taken")
    assert got[1] == ("b", "next")  # the worker idle last: its stack is warm
    wait_until(lambda: q.idlers == 2 and q.busy == 0, 5, what="b idle again")
    q.terminate()
    a.join(5)
    b.join(5)
    assert not a.is_alive() and not b.is_alive()


def test_job_queue_terminate_lets_queued_jobs_finish_first():
    q = JobQueue()
    q.push("one")
    q.push("two")
    q.terminate()
    got: list = []
    t = _worker(q, got, "w")
    t.join(5)
    assert not t.is_alive() and [job for _, job in got] == ["one", "two"]


def test_keepalive_handed_back_by_workers_is_parked_served_and_expired(launch):
    """Connections a worker re-armed itself are parked (no thread), answer every next request,
    and still end at KeepAliveTimeout: the listener takes the hand-back without being woken."""
    h = launch("event", {**ONE_CHILD, "KeepAliveTimeout": 2}, app=APP)
    conns = [Conn(h.port) for _ in range(4)]
    try:
        for _ in range(50):  # interleaved, so each request follows a hand-back on its connection
            for c in conns:
                c.send(GET)
            for c in conns:
                assert c.read_response().body == b"Hello, World!"
        st = wait_until(lambda: (lambda s: s if s and s.conns_async_keep_alive >= 4 else None)(status_or_none(h)),
                        5, what="four parked keep-alive connections")
        assert "K" not in st.scoreboard
        for c in conns:
            assert c.closed_by_peer(timeout=10)  # KeepAliveTimeout, armed from the hand-back
    finally:
        for c in conns:
            c.close()
