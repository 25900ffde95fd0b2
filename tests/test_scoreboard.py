"""Unit tests of servers.mpm.scoreboard: layout, single-writer stores, fork sharing."""

from __future__ import annotations

import os
import time

import pytest

from servers.mpm import scoreboard as sbmod
from servers.mpm.scoreboard import (
    BUSY_DNS,
    BUSY_KEEPALIVE,
    BUSY_LOG,
    BUSY_READ,
    BUSY_WRITE,
    CLOSING,
    DEAD,
    GRACEFUL,
    IDLE_KILL,
    READY,
    STARTING,
    STATUS_CHARS,
    ProcessInfo,
    Scoreboard,
    board_size,
)


@pytest.fixture
def sb():
    board = Scoreboard(4, 3)
    yield board
    board.close()


def test_status_codes_and_chars_match_httpd():
    # include/scoreboard.h order and mod_status' status_flags characters
    expected = {
        DEAD: ".",
        STARTING: "S",
        READY: "_",
        BUSY_READ: "R",
        BUSY_WRITE: "W",
        BUSY_KEEPALIVE: "K",
        BUSY_LOG: "L",
        BUSY_DNS: "D",
        CLOSING: "C",
        GRACEFUL: "G",
        IDLE_KILL: "I",
    }
    assert sorted(expected) == list(range(11))
    for code, char in expected.items():
        assert STATUS_CHARS[code] == char
    assert len(STATUS_CHARS) == 11


def free_slots(board) -> list[int]:
    """Process slots no child holds (pid 0), as the parent would find them."""
    return [s for s in range(board.server_limit) if board.process(s).pid == 0]


def test_new_board_is_empty(sb):
    assert (sb.server_limit, sb.thread_limit) == (4, 3)
    assert sb.size == board_size(4, 3) == 64 + 64 * 4 + 192 * 12
    assert sb.running_generation == 0
    assert abs(sb.restart_time - time.time()) < 60
    assert free_slots(sb) == [0, 1, 2, 3]
    for s in range(4):
        p = sb.process(s)
        assert p == ProcessInfo(s, 0, 0, False, False, 0, 0, 0, 0, 0, 0)
        for t in range(3):
            assert sb.status(s, t) == DEAD


def test_global_record_header(sb):
    magic, version, sl, tl = sbmod._global_struct.unpack_from(sb._mm, 0)[:4]
    assert (magic, version, sl, tl) == (b"MPMS", 1, 4, 3)


def test_running_generation_and_restart_time_roundtrip(sb):
    sb.running_generation = 7
    assert sb.running_generation == 7
    sb.restart_time = 1234.5
    assert sb.restart_time == 1234.5


def test_set_process_writes_only_given_fields(sb):
    sb.set_process(2, pid=4242, generation=3)
    sb.set_async_counters(2, connections=5, write_completion=1, keep_alive=2, lingering_close=1, suspended=0, wait_io=1)
    sb.set_process(2, quiescing=True)
    p = sb.process(2)
    assert (p.pid, p.generation, p.quiescing, p.not_accepting) == (4242, 3, True, False)
    sb.set_process(2, not_accepting=True)
    sb.set_process(2, quiescing=False)
    p = sb.process(2)
    assert (p.pid, p.generation, p.quiescing, p.not_accepting) == (4242, 3, False, True)
    assert (p.connections, p.write_completion, p.keep_alive, p.lingering_close, p.suspended, p.wait_io) == (
        5,
        1,
        2,
        1,
        0,
        1,
    )
    # neighbours untouched
    assert sb.process(1).pid == 0 and sb.process(3).pid == 0
    assert free_slots(sb) == [0, 1, 3]


def test_set_async_counters_defaults(sb):
    sb.set_async_counters(0, connections=9, write_completion=1, keep_alive=3, lingering_close=2, suspended=4, wait_io=5)
    sb.set_async_counters(0, connections=1, write_completion=0, keep_alive=0, lingering_close=0)
    p = sb.process(0)
    assert (p.connections, p.suspended, p.wait_io) == (1, 0, 0)


@pytest.mark.parametrize("code", range(11))
def test_set_status_roundtrip(sb, code):
    sb.set_status(1, 2, code)
    assert sb.status(1, 2) == code
    assert sb.status(1, 1) == DEAD and sb.status(2, 0) == DEAD


def test_set_status_is_a_single_byte_store(sb):
    sb.set_process(1, pid=10, generation=1)
    sb.record_request(1, 1, b"GET / HTTP/1.1", "10.0.0.1", 100)
    before = bytes(sb._mm)
    sb.set_status(1, 1, BUSY_WRITE)
    after = bytes(sb._mm)
    diff = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert diff == [sb._status_off[1][1]]
    assert after[diff[0]] == BUSY_WRITE


def test_status_offsets_are_distinct_and_inside_the_map(sb):
    offs = [o for row in sb._status_off for o in row]
    assert len(set(offs)) == 12
    assert min(offs) == 64 + 64 * 4
    assert max(offs) + sbmod.WORKER_SIZE == sb.size


def test_record_request_counts_and_truncates(sb):
    t0 = time.time()
    sb.record_request(0, 1, b"GET /" + b"x" * 100 + b" HTTP/1.1", "2001:db8::1234:5678:9abc:def0:1234:5678", 1000)
    sb.record_request(0, 1, b"POST /form HTTP/1.1", "127.0.0.1", 24, duration=0.25)
    t1 = time.time()
    w = sb.worker(0, 1)
    assert w.access_count == 2 and w.my_access_count == 2
    assert w.bytes_served == 1024 and w.my_bytes_served == 1024
    assert w.request == "POST /form HTTP/1.1"
    assert w.client == "127.0.0.1"
    assert t0 <= w.last_used <= t1
    assert w.duration == pytest.approx(0.25)
    assert all(x >= 0 for x in w.times) and sum(w.times) > 0
    sb.record_request(0, 1, b"G" * 200, "c" * 50, 0)
    w = sb.worker(0, 1)
    assert w.request == "G" * 64
    assert w.client == "c" * 32
    # other slots untouched, per-process totals are the sum over its threads
    assert sb.worker(0, 0).access_count == 0
    sb.record_request(0, 2, b"GET / HTTP/1.0", "h", 10)
    p = sb.process(0)
    assert (p.access_count, p.bytes_served) == (4, 1034)
    assert sb.process(1).access_count == 0


def test_record_request_does_not_touch_status(sb):
    sb.set_status(3, 0, BUSY_LOG)
    sb.record_request(3, 0, b"GET / HTTP/1.1", "x", 1)
    assert sb.status(3, 0) == BUSY_LOG


def test_clear_process(sb):
    sb.set_process(1, pid=99, generation=2, quiescing=True, not_accepting=True)
    sb.set_async_counters(1, connections=3, write_completion=1, keep_alive=1, lingering_close=1)
    for t in range(3):
        sb.set_status(1, t, BUSY_READ)
        sb.record_request(1, t, b"GET / HTTP/1.1", "c", 50)
    sb.set_status(2, 0, READY)
    sb.clear_process(1)
    p = sb.process(1)
    assert (p.pid, p.quiescing, p.not_accepting, p.connections, p.keep_alive) == (0, False, False, 0, 0)
    assert [sb.status(1, t) for t in range(3)] == [DEAD] * 3
    w = sb.worker(1, 0)
    assert (w.access_count, w.bytes_served) == (1, 50)  # slot lifetime counters survive
    assert (w.my_access_count, w.my_bytes_served) == (0, 0)  # per-child counters do not
    assert sb.status(2, 0) == READY
    assert 1 in free_slots(sb)


def test_snapshot_is_a_detached_copy(sb):
    sb.running_generation = 2
    sb.set_process(0, pid=100, generation=2)
    sb.set_status(0, 0, BUSY_WRITE)
    sb.set_status(0, 1, READY)
    sb.record_request(0, 0, b"GET /a HTTP/1.1", "1.2.3.4", 10)
    snap = sb.snapshot()
    sb.set_status(0, 0, READY)
    sb.set_process(0, pid=0)
    assert snap.generation == 2
    assert (snap.server_limit, snap.thread_limit) == (4, 3)
    assert snap.processes[0].pid == 100
    assert snap.statuses(0) == [BUSY_WRITE, READY, DEAD]
    assert snap.workers[0][0].request == "GET /a HTTP/1.1"
    assert snap.workers[0][0].client == "1.2.3.4"
    assert snap.workers[0][0].status_char == "W"
    assert snap.total_accesses == 1 and sum(w.bytes_served for row in snap.workers for w in row) == 10
    assert len(snap.processes) == 4 and all(len(row) == 3 for row in snap.workers)


def test_reset_counters_keeps_states_and_generation(sb):
    sb.running_generation = 5
    sb.set_process(0, pid=1, generation=5)
    sb.set_status(0, 0, READY)
    sb.record_request(0, 0, b"GET / HTTP/1.1", "c", 100, duration=1.0)
    sb.restart_time = 1.0
    sb.update_parent_times()
    sb.reset_counters()
    w = sb.worker(0, 0)
    assert (w.access_count, w.bytes_served, w.my_access_count, w.duration, w.last_used) == (0, 0, 0, 0.0, 0.0)
    assert w.request == "" and w.client == "" and w.times == (0.0, 0.0, 0.0, 0.0)
    assert sb.status(0, 0) == READY
    assert sb.process(0).pid == 1
    assert sb.running_generation == 5
    assert sb.restart_time > 1.0
    assert sb.snapshot().parent_times == (0.0, 0.0, 0.0, 0.0)


def test_update_parent_times(sb):
    sum(range(200000))
    sb.update_parent_times()
    assert sum(sb.snapshot().parent_times) > 0


def test_child_writes_are_visible_to_parent():
    board = Scoreboard(2, 2)
    try:
        board.running_generation = 1
        pid = os.fork()
        if pid == 0:  # child: write its own slot, then leave without running pytest's teardown
            code = 1
            try:
                board.set_process(1, pid=os.getpid(), generation=board.running_generation)
                board.set_status(1, 1, BUSY_WRITE)
                board.record_request(1, 1, b"GET /from-child HTTP/1.1", "192.0.2.7", 321)
                board.set_async_counters(1, connections=2, write_completion=0, keep_alive=1, lingering_close=0)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        p = board.process(1)
        assert (p.pid, p.generation, p.connections, p.keep_alive) == (pid, 1, 2, 1)
        assert board.status(1, 1) == BUSY_WRITE
        w = board.worker(1, 1)
        assert (w.access_count, w.bytes_served, w.request, w.client) == (1, 321, "GET /from-child HTTP/1.1", "192.0.2.7")
        # the parent reaps: slot back to '.' and free
        board.clear_process(1)
        assert board.status(1, 1) == DEAD and free_slots(board) == [0, 1]
    finally:
        board.close()


def test_parent_writes_after_fork_are_visible_to_child():
    board = Scoreboard(1, 1)
    try:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(w)
                os.read(r, 1)  # wait for the parent's write
                code = 0 if board.running_generation == 9 else 3
            finally:
                os._exit(code)
        os.close(r)
        board.running_generation = 9
        os.write(w, b"x")
        os.close(w)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        board.close()


def test_thousand_slot_board_is_cheap():
    # A 1000-process prefork board: a quarter MiB of lazily zeroed shared pages,
    # and every slot starts free and DEAD without being written.
    board = Scoreboard(1000, 1)
    try:
        assert board.size == board_size(1000, 1) == 64 + 64 * 1000 + 192 * 1000
        assert board.size < 256 * 1024
        assert len(free_slots(board)) == 1000
        assert board.status(999, 0) == DEAD
        board.set_status(999, 0, READY)
        snap = board.snapshot()
        assert snap.statuses(999) == [READY]
    finally:
        board.close()
    # httpd's event defaults (ServerLimit 16 x ThreadLimit 64) are in the same range
    assert board_size(16, 64) < 200 * 1024


def test_bad_limits_and_indexes(sb):
    with pytest.raises(ValueError):
        Scoreboard(0, 1)
    with pytest.raises(ValueError):
        Scoreboard(1, 0)
    with pytest.raises(IndexError):
        sb.set_status(4, 0, READY)
    with pytest.raises(IndexError):
        sb.status(0, 3)
    with pytest.raises(IndexError):
        sb.set_process(4, pid=1)


def test_close():
    board = Scoreboard(1, 1)
    assert not board.closed
    with board:
        board.set_status(0, 0, READY)
    assert board.closed
    with pytest.raises(ValueError):
        board.set_status(0, 0, READY)
