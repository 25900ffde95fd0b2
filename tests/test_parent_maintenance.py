"""Idle-server maintenance reads the scoreboard as httpd's perform_idle_server_maintenance does (issue 14).

No process is forked here: a :class:`Parent` gets a real scoreboard whose slots the test
writes, and ``_make_child`` is replaced by a recorder, so each check is about the
decision alone.

* A child whose listener is paused (``not_accepting``: event at its connection cap)
  offers no spare capacity: its idle threads do not count as idle, so with every child
  at its cap the parent forks a new one (httpd skips such children in its idle count).
  On the code before this fix the parent saw 75 idle threads and forked nothing.
* The same child counted as accepting keeps the parent quiet (the control case).
* Quiescing children and old generations are still left out, and the process limit
  still counts the paused children.
"""

from __future__ import annotations

import pytest

from servers.config import load_config
from servers.mpm import get_mpm
from servers.mpm.parent import Parent
from servers.mpm.scoreboard import BUSY_KEEPALIVE, BUSY_WRITE, READY, Scoreboard


def _parent(mpm: str, overrides: dict, tmp_path) -> Parent:
    cfg = load_config(mpm, overrides={"ErrorLog": str(tmp_path / "error.log"), **overrides})
    p = Parent(get_mpm(mpm), cfg, app=None)
    limit, threads = p._limits()
    p.sb = Scoreboard(cfg.ServerLimit, max(threads, cfg.ThreadLimit))
    p.forked = []
    p._make_child = lambda slot: p.forked.append(slot)  # the decision, not the fork
    return p


def _child(p: Parent, slot: int, pid: int, statuses: list[int], *, not_accepting: bool = False,
           quiescing: bool = False, generation: int | None = None) -> None:
    gen = p.generation if generation is None else generation
    p.sb.set_process(slot, pid=pid, generation=gen, quiescing=quiescing, not_accepting=not_accepting)
    for t, st in enumerate(statuses):
        p.sb.set_status(slot, t, st)
    p.children[pid] = slot
    p.slot_generation[slot] = gen


EVENT_DEFAULTS: dict = {}  # StartServers 3, ThreadsPerChild 25, MinSpareThreads 75: httpd's defaults


@pytest.fixture
def event_parent(tmp_path):
    p = _parent("event", EVENT_DEFAULTS, tmp_path)
    yield p
    p.sb.close()


def test_children_at_their_connection_cap_are_no_spare_capacity(event_parent):
    """300 slow keep-alive clients on event's defaults: 3 children, every thread idle between
    requests, every child at its cap. The parent must fork, or the clients in the backlog wait."""
    p = event_parent
    tpc = p.cfg.ThreadsPerChild
    for slot in range(3):
        _child(p, slot, 1000 + slot, [READY] * tpc, not_accepting=True)
    idle, busy, procs = p._count()
    assert (idle, busy, procs) == (0, 0, 3)
    p._maintain()
    assert len(p.forked) == 1, "no child can accept: the parent must fork one (httpd skips not_accepting children)"
    assert p.forked[0] not in (0, 1, 2)


def test_accepting_children_keep_their_idle_threads(event_parent):
    """The control: the same three children, accepting: 75 idle threads >= MinSpareThreads, no fork."""
    p = event_parent
    tpc = p.cfg.ThreadsPerChild
    for slot in range(3):
        _child(p, slot, 1000 + slot, [READY] * tpc)
    assert p._count() == (3 * tpc, 0, 3)
    p._maintain()
    assert p.forked == []


def test_one_accepting_child_counts_alone(event_parent):
    """Two children at their cap and one accepting with 25 idle threads: 25 < MinSpareThreads 75."""
    p = event_parent
    tpc = p.cfg.ThreadsPerChild
    _child(p, 0, 1000, [READY] * tpc, not_accepting=True)
    _child(p, 1, 1001, [BUSY_WRITE] * 5 + [READY] * (tpc - 5), not_accepting=True)
    _child(p, 2, 1002, [READY] * tpc)
    idle, busy, procs = p._count()
    assert (idle, busy, procs) == (tpc, 5, 3)
    p._maintain()
    assert len(p.forked) == 1


def test_quiescing_and_old_generation_children_still_left_out(event_parent):
    p = event_parent
    tpc = p.cfg.ThreadsPerChild
    p.generation = 2
    _child(p, 0, 1000, [READY] * tpc, quiescing=True)
    _child(p, 1, 1001, [READY] * tpc, generation=1)
    _child(p, 2, 1002, [BUSY_KEEPALIVE] * tpc)
    assert p._count() == (0, tpc, 1)


def test_paused_children_still_count_against_the_process_limit(tmp_path):
    """ServerLimit 2 with both children at their cap: nothing can be forked (the limit is logged)."""
    p = _parent("event", {"ServerLimit": 2, "ThreadsPerChild": 5, "MaxRequestWorkers": 10,
                          "MinSpareThreads": 5, "MaxSpareThreads": 10, "StartServers": 2}, tmp_path)
    try:
        for slot in range(2):
            _child(p, slot, 1000 + slot, [READY] * 5, not_accepting=True)
        p._maintain()
        assert p.forked == []
        assert "MaxRequestWorkers" in (tmp_path / "error.log").read_text()
    finally:
        p.sb.close()


def test_fork_happens_with_the_parents_signals_blocked(tmp_path, monkeypatch):
    """A child forked just before a SIGTERM must not miss it: the parent blocks its signals around
    fork() (the child unblocks them once its own handlers are set), and restores its mask after."""
    import signal

    from servers.mpm.child import FORK_BLOCKED

    cfg = load_config("prefork", overrides={"ErrorLog": str(tmp_path / "error.log")})
    p = Parent(get_mpm("prefork"), cfg, app=None)
    p.sb = Scoreboard(cfg.ServerLimit, 1)
    seen = []

    def fake_fork():
        seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return 999999  # the parent's side only: no child is made

    monkeypatch.setattr("os.fork", fake_fork)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        assert p._make_child(0) == 999999
        assert FORK_BLOCKED <= set(seen[0])
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    finally:
        p.children.clear()
        p.sb.close()
