"""httpd's scoreboard, in shared memory shared by the parent and its children.

Like httpd's ``ap_create_scoreboard()``, the parent creates the board **before
it forks** as an anonymous shared mapping (``mmap.mmap(-1, size)``, which is
``MAP_SHARED | MAP_ANONYMOUS`` on Unix). Every child inherits the same pages,
so a byte a child stores is visible to the parent and to every other child at
once. There is no name, no file, no resource tracker and nothing to unlink: the
mapping disappears when the last process holding it exits. (httpd only uses a
file when ``ScoreBoardFile`` is set; this implementation has no such option.)

Writing rules, as in httpd (``include/scoreboard.h``):

* Every record has a single writer and no lock. A worker slot is written by
  the thread that owns it; a process record's pid/generation by the parent at
  fork time and its flags and async counters by the child itself; the global
  record by the parent.
* Readers (mod_status, the parent's idle-server maintenance) tolerate torn
  reads: a counter or a request line may be read half-updated. ``snapshot()``
  copies the whole mapping with one ``memcpy`` first, which keeps such tearing
  to the instant of the copy.
* ``set_status()`` is the hot path (httpd's ``ap_update_child_status``): it
  is one byte store at a precomputed offset, nothing else.
* The parent writes ``.`` (DEAD) into every thread slot of a child it has
  reaped (``clear_process()``).

Byte layout (all integers little-endian, ``struct`` formats in brackets)::

    offset 0                 global record, 64 bytes                [GLOBAL_FMT]
        0   4s  magic b"MPMS"
        4   H   layout version (1)
        6   2x  reserved
        8   I   server_limit
       12   I   thread_limit
       16   I   running_generation
       20   I   stopping (1 once the parent began a graceful stop; the format's "4x")
       24   d   restart_time (time.time() of the last start / hard restart)
       32   4d  parent CPU seconds: user, system, children user, children system

    offset 64 + slot * 64    process record, 64 bytes each,
                             server_limit of them                  [PROCESS_FMT]
        0   i   pid (0 = free slot)
        4   I   generation
        8   B   quiescing (1 while the process is stopping)
        9   B   not_accepting (1 while the listener is paused)
       10   2x  reserved
       12   6I  async counters: connections, write_completion, keep_alive,
                lingering_close, suspended, wait_io (event MPM, 2.4.63 names)
       36   28x reserved

    offset W + (slot * thread_limit + thread) * 192
                             worker record, 192 bytes each,
                             server_limit x thread_limit of them    [WORKER_FMT]
                             (W = 64 + 64 * server_limit)
        0   B   status code (DEAD .. IDLE_KILL below)  <- set_status() writes only this byte
        1   7x  reserved
        8   Q   access_count      requests served by this slot since the board was made
       16   Q   bytes_served      body bytes served by this slot
       24   Q   my_access_count   requests served by the current child in this slot
       32   Q   my_bytes_served
       40   d   last_used         time.time() at the end of the last request
       48   d   duration          seconds spent in requests, summed
       56   4d  CPU seconds of the owning process (os.times(): user, system,
                children user, children system) at the end of the last request
       88   64s request           first 64 bytes of the last request line, NUL padded
      152   32s client            last client address, UTF-8, at most 32 bytes, NUL padded
      184   8x  reserved

So a board costs ``64 + 64 * server_limit + 192 * server_limit * thread_limit``
bytes: 250 KiB for a 1000-process prefork board (1000 x 1), 193 KiB for
httpd's event defaults (ServerLimit 16 x ThreadLimit 64). Pages are zero until written,
and an all-zero record means pid 0 / status DEAD, so creating a board touches
only the first page.

Sizes: prefork uses ``thread_limit = 1`` (one worker slot per process, as in
httpd where ThreadLimit is 1 for prefork); worker and event use ServerLimit x
ThreadLimit.
"""

from __future__ import annotations

import functools
import mmap
import os
import struct
import time
from dataclasses import dataclass
from typing import Callable

__all__ = [
    "DEAD",
    "STARTING",
    "READY",
    "BUSY_READ",
    "BUSY_WRITE",
    "BUSY_KEEPALIVE",
    "BUSY_LOG",
    "BUSY_DNS",
    "CLOSING",
    "GRACEFUL",
    "IDLE_KILL",
    "STATUS_CHARS",
    "STATUS_NAMES",
    "ProcessInfo",
    "WorkerInfo",
    "ScoreboardSnapshot",
    "Scoreboard",
    "board_size",
]

# Worker status codes: the same numbers, in the same order, as httpd's
# SERVER_DEAD .. SERVER_IDLE_KILL in include/scoreboard.h.
DEAD, STARTING, READY, BUSY_READ, BUSY_WRITE, BUSY_KEEPALIVE, BUSY_LOG, BUSY_DNS, CLOSING, GRACEFUL, IDLE_KILL = range(11)

#: mod_status's character for each code (index = code): the ``status_flags``
#: table filled in mod_status.c's ``status_init``. Note code 1 is STARTING
#: (``S``) and code 2 READY (``_``), so the string is ``".S_RWKLDCGI"``; the
#: HTML key lists the same characters in another order (``_ S R W K D C L G I .``).
STATUS_CHARS = ".S_RWKLDCGI"

#: The words mod_status uses for each character in its HTML "Scoreboard Key".
STATUS_NAMES = {
    READY: "Waiting for Connection",
    STARTING: "Starting up",
    BUSY_READ: "Reading Request",
    BUSY_WRITE: "Sending Reply",
    BUSY_KEEPALIVE: "Keepalive (read)",
    BUSY_DNS: "DNS Lookup",
    CLOSING: "Closing connection",
    BUSY_LOG: "Logging",
    GRACEFUL: "Gracefully finishing",
    IDLE_KILL: "Idle cleanup of worker",
    DEAD: "Open slot with no current process",
}

MAGIC = b"MPMS"
LAYOUT_VERSION = 1

GLOBAL_FMT = "<4sH2xIII4xd4d"
GLOBAL_SIZE = 64
PROCESS_FMT = "<iIBB2x6I28x"
PROCESS_SIZE = 64
WORKER_FMT = "<B7xQQQQdd4d64s32s8x"
WORKER_SIZE = 192

REQUEST_LEN = 64
CLIENT_LEN = 32

assert struct.calcsize(GLOBAL_FMT) == GLOBAL_SIZE
assert struct.calcsize(PROCESS_FMT) == PROCESS_SIZE
assert struct.calcsize(WORKER_FMT) == WORKER_SIZE

# Field offsets inside the records.
_G_GENERATION = 16
_G_RESTART_TIME = 24
_G_STOPPING = 20
_G_TIMES = 32
_P_PID = 0
_P_GENERATION = 4
_P_QUIESCING = 8
_P_NOT_ACCEPTING = 9
_P_COUNTERS = 12
_W_COUNTERS = 8  # access_count .. client, written by record_request in one pack_into

_global_struct = struct.Struct(GLOBAL_FMT)
_process_struct = struct.Struct(PROCESS_FMT)
_worker_struct = struct.Struct(WORKER_FMT)
_i32 = struct.Struct("<i")
_u32 = struct.Struct("<I")
_f64 = struct.Struct("<d")
_times = struct.Struct("<4d")
_counters6 = struct.Struct("<6I")
_my_counters = struct.Struct("<QQ")
_request_tail = struct.Struct("<QQQQdd4d64s32s")  # worker record from offset 8
_request_head = struct.Struct("<QQQQdd")
_ZERO_TAIL = bytes(_request_tail.size)

# os.times() is a system call; mod_status only shows CPU seconds, so the figure
# stored with each request is refreshed at most once per second per process.
_cpu_cache: list = [0.0, (0.0, 0.0, 0.0, 0.0, 0.0)]


def _cpu_times(now: float) -> tuple:
    if now - _cpu_cache[0] >= 1.0:
        _cpu_cache[0] = now
        _cpu_cache[1] = os.times()
    return _cpu_cache[1]


def board_size(server_limit: int, thread_limit: int) -> int:
    """Bytes needed for a board of ``server_limit`` x ``thread_limit`` worker slots."""
    return GLOBAL_SIZE + PROCESS_SIZE * server_limit + WORKER_SIZE * server_limit * thread_limit


@dataclass(frozen=True)
class ProcessInfo:
    """One process record (httpd's ``process_score``), read at one instant.

    ``access_count`` and ``bytes_served`` are the process slot's totals: the
    sum of its worker slots' lifetime counters, computed by the reader so that
    each worker record keeps a single writer.
    """

    slot: int
    pid: int
    generation: int
    quiescing: bool
    not_accepting: bool
    connections: int
    write_completion: int
    keep_alive: int
    lingering_close: int
    suspended: int
    wait_io: int
    access_count: int = 0
    bytes_served: int = 0


@dataclass(frozen=True)
class WorkerInfo:
    """One worker record (httpd's ``worker_score``), read at one instant."""

    slot: int
    thread: int
    status: int
    access_count: int
    bytes_served: int
    my_access_count: int
    my_bytes_served: int
    last_used: float
    duration: float
    times: tuple[float, float, float, float]
    request: str
    client: str

    @property
    def status_char(self) -> str:
        """The mod_status character of this slot's state (``?`` if the code is unknown)."""
        return STATUS_CHARS[self.status] if 0 <= self.status < len(STATUS_CHARS) else "?"


@dataclass(frozen=True)
class ScoreboardSnapshot:
    """A plain-Python copy of the whole board, taken with one copy of the mapping.

    ``workers[slot][thread]`` holds every worker slot; ``processes[slot]`` every
    process record (free ones have pid 0). This is what mod_status renders.
    """

    server_limit: int
    thread_limit: int
    generation: int
    restart_time: float
    parent_times: tuple[float, float, float, float]
    processes: tuple[ProcessInfo, ...]
    workers: tuple[tuple[WorkerInfo, ...], ...]
    taken_at: float

    def statuses(self, slot: int) -> list[int]:
        """Status codes of every thread slot of process slot ``slot``."""
        return [w.status for w in self.workers[slot]]

    @property
    def total_accesses(self) -> int:
        """Sum of every worker slot's access_count (mod_status' "Total Accesses")."""
        return sum(w.access_count for row in self.workers for w in row)


class Scoreboard:
    """httpd's scoreboard in an anonymous shared mapping; create it before forking.

    ``server_limit`` process records and ``server_limit x thread_limit`` worker
    records (prefork: ``thread_limit=1``). See the module docstring for the
    byte layout and the single-writer rules.
    """

    __slots__ = (
        "server_limit",
        "thread_limit",
        "_mm",
        "_size",
        "_status_off",
        "_proc_off",
        "_workers_base",
    )

    def __init__(self, server_limit: int, thread_limit: int) -> None:
        if server_limit < 1 or thread_limit < 1:
            raise ValueError(f"server_limit and thread_limit must be >= 1, got {server_limit} x {thread_limit}")
        self.server_limit = server_limit
        self.thread_limit = thread_limit
        self._size = board_size(server_limit, thread_limit)
        # Anonymous + MAP_SHARED: inherited across fork, nothing to clean up.
        self._mm = mmap.mmap(-1, self._size)
        self._proc_off = [GLOBAL_SIZE + PROCESS_SIZE * s for s in range(server_limit)]
        self._workers_base = GLOBAL_SIZE + PROCESS_SIZE * server_limit
        # _status_off[slot][thread]: offset of that worker's status byte. Precomputed
        # so set_status() is two list lookups and one byte store.
        self._status_off = [
            [self._workers_base + WORKER_SIZE * (s * thread_limit + t) for t in range(thread_limit)]
            for s in range(server_limit)
        ]
        _global_struct.pack_into(
            self._mm, 0, MAGIC, LAYOUT_VERSION, server_limit, thread_limit, 0, time.time(), 0.0, 0.0, 0.0, 0.0
        )

    # ------------------------------------------------------------------ global record

    @property
    def size(self) -> int:
        """Size of the shared mapping in bytes."""
        return self._size

    @property
    def running_generation(self) -> int:
        """The generation that should be serving (httpd's ``global->running_generation``).

        The parent bumps it on every restart; a child whose process record
        carries another generation finishes its connection and exits.
        """
        return _u32.unpack_from(self._mm, _G_GENERATION)[0]

    @running_generation.setter
    def running_generation(self, value: int) -> None:
        _u32.pack_into(self._mm, _G_GENERATION, value)

    @property
    def stopping(self) -> bool:
        """True once the parent began a graceful stop (WINCH), as opposed to a restart.

        Children that begin their graceful exit then first take every connection already
        waiting in the listen queue (the listeners are closing for good: nobody else will),
        see docs/reliability.md. Kept in the 4 reserved bytes after running_generation.
        """
        return bool(_u32.unpack_from(self._mm, _G_STOPPING)[0])

    @stopping.setter
    def stopping(self, value: bool) -> None:
        _u32.pack_into(self._mm, _G_STOPPING, int(value))

    @property
    def restart_time(self) -> float:
        """``time.time()`` of the start or last hard restart (httpd's ``global->restart_time``).

        A graceful restart keeps it, as httpd does: mod_status's RestartTime
        and uptime count from the last start or HUP.
        """
        return _f64.unpack_from(self._mm, _G_RESTART_TIME)[0]

    @restart_time.setter
    def restart_time(self, value: float) -> None:
        _f64.pack_into(self._mm, _G_RESTART_TIME, value)

    def update_parent_times(self) -> None:
        """Store the parent's own CPU times in the global record (httpd's ``global->times``).

        Optional; the parent may call it from its maintenance loop. mod_status
        adds these to the children's times in its CPU lines.
        """
        t = os.times()
        _times.pack_into(self._mm, _G_TIMES, t[0], t[1], t[2], t[3])

    # ------------------------------------------------------------------ process records

    def set_process(
        self,
        slot: int,
        *,
        pid: int | None = None,
        generation: int | None = None,
        quiescing: bool | None = None,
        not_accepting: bool | None = None,
    ) -> None:
        """Write the given fields of process record ``slot``; the others stay as they are.

        The parent writes pid and generation when it forks into the slot (httpd's
        ``make_child``); the child sets ``quiescing`` when it starts a graceful
        stop and ``not_accepting`` while its listener is paused (event MPM).
        """
        off = self._proc_off[slot]
        mm = self._mm
        if pid is not None:
            _i32.pack_into(mm, off + _P_PID, pid)
        if generation is not None:
            _u32.pack_into(mm, off + _P_GENERATION, generation)
        if quiescing is not None:
            mm[off + _P_QUIESCING] = 1 if quiescing else 0
        if not_accepting is not None:
            mm[off + _P_NOT_ACCEPTING] = 1 if not_accepting else 0

    def set_async_counters(
        self,
        slot: int,
        *,
        connections: int,
        write_completion: int,
        keep_alive: int,
        lingering_close: int,
        suspended: int = 0,
        wait_io: int = 0,
    ) -> None:
        """Publish the event listener's connection counts for process ``slot``.

        These are ``process_score``'s connections, write_completion, keep_alive,
        lingering_close, suspended and (2.4.63) wait_io, which mod_status sums
        into ConnsTotal and ConnsAsync*. Written with one ``pack_into``.
        """
        _counters6.pack_into(
            self._mm,
            self._proc_off[slot] + _P_COUNTERS,
            connections,
            write_completion,
            keep_alive,
            lingering_close,
            suspended,
            wait_io,
        )

    def process(self, slot: int) -> ProcessInfo:
        """Read process record ``slot`` (with its worker slots' access/byte totals)."""
        return self._process_from(self._mm, slot)

    def clear_process(self, slot: int) -> None:
        """Free process slot ``slot`` after the parent reaped its child.

        As httpd's parent does: pid 0, flags and async counters 0, and every
        thread slot DEAD (``.``). The slots' lifetime counters (access_count,
        bytes_served) are kept, the per-child ones (my_*) are zeroed.
        """
        off = self._proc_off[slot]
        mm = self._mm
        _i32.pack_into(mm, off + _P_PID, 0)
        mm[off + _P_QUIESCING] = 0
        mm[off + _P_NOT_ACCEPTING] = 0
        _counters6.pack_into(mm, off + _P_COUNTERS, 0, 0, 0, 0, 0, 0)
        for woff in self._status_off[slot]:
            mm[woff] = DEAD
            _my_counters.pack_into(mm, woff + 24, 0, 0)

    # ------------------------------------------------------------------ worker records

    def set_status(self, slot: int, thread: int, status: int) -> None:
        """Set worker slot (``slot``, ``thread``) to ``status``: one byte store.

        httpd's ``ap_update_child_status_from_indexes``; called several times
        per request, so it does nothing but the store.
        """
        self._mm[self._status_off[slot][thread]] = status

    def status_setter(self, slot: int, thread: int) -> Callable[[int], None]:
        """``set_status`` bound to one worker slot, with no Python frame per call (hot path)."""
        return functools.partial(self._mm.__setitem__, self._status_off[slot][thread])

    def status(self, slot: int, thread: int) -> int:
        """Status code of worker slot (``slot``, ``thread``)."""
        return self._mm[self._status_off[slot][thread]]

    def record_request(
        self,
        slot: int,
        thread: int,
        request_line: bytes,
        client: str,
        nbytes: int,
        *,
        duration: float = 0.0,
    ) -> None:
        """Account one finished request to worker slot (``slot``, ``thread``).

        As httpd does at the end of a request (``ap_increment_counts`` and the
        status update that stores the request line): access_count and
        my_access_count += 1, bytes_served and my_bytes_served += ``nbytes``,
        duration += ``duration`` seconds, last_used = now, the process's CPU
        times (``os.times()``, refreshed at most once a second), the first 64 bytes of the request line and the
        client address (at most 32 bytes). Only the owning thread calls this,
        so the read-modify-write needs no lock.
        """
        mm = self._mm
        off = self._status_off[slot][thread] + _W_COUNTERS
        acc, nb, my_acc, my_nb, _last, dur = _request_head.unpack_from(mm, off)
        now = time.time()
        t = _cpu_times(now)
        c = client.encode("utf-8", "replace")[:CLIENT_LEN]
        _request_tail.pack_into(
            mm,
            off,
            acc + 1,
            nb + nbytes,
            my_acc + 1,
            my_nb + nbytes,
            now,
            dur + duration,
            t[0],
            t[1],
            t[2],
            t[3],
            request_line[:REQUEST_LEN],
            c,
        )

    def worker(self, slot: int, thread: int) -> WorkerInfo:
        """Read worker record (``slot``, ``thread``)."""
        return self._worker_from(self._mm, slot, thread)

    # ------------------------------------------------------------------ whole board

    def snapshot(self) -> ScoreboardSnapshot:
        """Copy the whole board into plain Python objects, for rendering.

        The mapping is copied with one ``memcpy`` first, so the snapshot is as
        close to one instant as a lock-free board allows.
        """
        buf = self._mm[:]
        now = time.time()
        _magic, _ver, _sl, _tl, generation, restart_time, pu, ps, pcu, pcs = _global_struct.unpack_from(buf, 0)
        workers = tuple(
            tuple(self._worker_from(buf, s, t) for t in range(self.thread_limit)) for s in range(self.server_limit)
        )
        processes = tuple(self._process_from(buf, s, workers[s]) for s in range(self.server_limit))
        return ScoreboardSnapshot(
            server_limit=self.server_limit,
            thread_limit=self.thread_limit,
            generation=generation,
            restart_time=restart_time,
            parent_times=(pu, ps, pcu, pcs),
            processes=processes,
            workers=workers,
            taken_at=now,
        )

    def reset_counters(self) -> None:
        """Zero every counter, as a hard restart (HUP) does.

        httpd recreates the scoreboard on a hard restart, so Total Accesses,
        bytes, durations, CPU times, last requests and the restart time start
        over; a graceful restart (USR1) keeps them and must not call this.
        Status bytes, pids and the running generation are left alone: the
        parent has already reaped the old children and cleared their slots.
        """
        mm = self._mm
        for row in self._status_off:
            for woff in row:
                mm[woff + _W_COUNTERS : woff + _W_COUNTERS + len(_ZERO_TAIL)] = _ZERO_TAIL
        _times.pack_into(mm, _G_TIMES, 0.0, 0.0, 0.0, 0.0)
        self.restart_time = time.time()

    def close(self) -> None:
        """Unmap the board in this process (other processes keep their mapping)."""
        self._mm.close()

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._mm.closed

    def __enter__(self) -> Scoreboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _worker_from(self, buf, slot: int, thread: int) -> WorkerInfo:
        (
            status,
            acc,
            nb,
            my_acc,
            my_nb,
            last_used,
            duration,
            tu,
            ts,
            tcu,
            tcs,
            request,
            client,
        ) = _worker_struct.unpack_from(buf, self._status_off[slot][thread])
        return WorkerInfo(
            slot=slot,
            thread=thread,
            status=status,
            access_count=acc,
            bytes_served=nb,
            my_access_count=my_acc,
            my_bytes_served=my_nb,
            last_used=last_used,
            duration=duration,
            times=(tu, ts, tcu, tcs),
            request=request.rstrip(b"\0").decode("latin-1"),
            client=client.rstrip(b"\0").decode("utf-8", "replace"),
        )

    def _process_from(self, buf, slot: int, workers: tuple[WorkerInfo, ...] | None = None) -> ProcessInfo:
        pid, gen, quiescing, not_accepting, conns, wc, ka, lc, susp, wio = _process_struct.unpack_from(
            buf, self._proc_off[slot]
        )
        if workers is None:
            workers = tuple(self._worker_from(buf, slot, t) for t in range(self.thread_limit))
        return ProcessInfo(
            slot=slot,
            pid=pid,
            generation=gen,
            quiescing=bool(quiescing),
            not_accepting=bool(not_accepting),
            connections=conns,
            write_completion=wc,
            keep_alive=ka,
            lingering_close=lc,
            suspended=susp,
            wait_io=wio,
            access_count=sum(w.access_count for w in workers),
            bytes_served=sum(w.bytes_served for w in workers),
        )
