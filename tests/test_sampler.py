"""harness.sampler: the process-tree sampler in its own process, its series and windows, quiet_check.

Every process a test starts is stopped by pid in a finally (or by its
fixture); waits are on conditions with deadlines; no timing assertions.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.sampler import COLUMNS, Sampler, SamplerError, SamplerSeries, quiet_check

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20

# A server-like tree.  On "go" the root forks B (50 MiB touched, stays), C (idle, stays), a burst of
# children that exit at once, and A (burns 0.4 s of CPU, exits, reaped); then it prints "done".
# B and C block on a pipe whose write end only the root holds: they exit when the root does.
FORKER = r"""
import os, sys, time
life_r, life_w = os.pipe()
def child(body):
    pid = os.fork()
    if pid == 0:
        try:
            os.close(life_w)
            body()
        finally:
            os._exit(0)
    return pid
def wait_root():
    os.read(life_r, 1)
def big():
    b = bytearray(50 * 1024 * 1024)
    for i in range(0, len(b), 4096):
        b[i] = 1
    os.write(ready_w, b"B")
    wait_root()
def burn():
    while time.process_time() < 0.4:
        pass
def burst(n):
    for _ in range(n):
        os.waitpid(child(lambda: None), 0)
sys.stdout.write("ready\n"); sys.stdout.flush()
if sys.stdin.readline().strip() != "go":
    sys.exit(1)
ready_r, ready_w = os.pipe()
child(big)
os.read(ready_r, 1)
child(wait_root)
burst(20)
a = child(burn)
burst(20)
os.waitpid(a, 0)
sys.stdout.write("done\n"); sys.stdout.flush()
sys.stdin.readline()
"""

# Burns 0.4 s of CPU, says "ready", exits at end of stdin.
BURN_THEN_WAIT = r"""
import sys, time
while time.process_time() < 0.4:
    pass
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
"""

IDLE = "import sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()"

BURNER = "import time\nwhile time.process_time() < 0.4:\n    pass\n"


def spawn(code: str) -> subprocess.Popen:
    """A python -c program in its own session, stdin/stdout piped; waits for its 'ready' line."""
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         start_new_session=True)
    try:
        assert read_line(p, 30) == "ready"
    except BaseException:
        stop_process(p)
        raise
    return p


def read_line(p: subprocess.Popen, timeout: float) -> str | None:
    """One line from ``p``'s stdout, or None at the deadline / EOF."""
    fd = p.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if r:
            ch = os.read(fd, 1)
            if not ch:
                return None
            buf += ch
    return buf.decode().strip()


def stop_process(p: subprocess.Popen) -> None:
    """End of stdin (the programs exit on it), then SIGKILL to its process group if it is still there."""
    try:
        if p.stdin and not p.stdin.closed:
            p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # its own session: the group is its pid
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
    if p.stdout:
        p.stdout.close()


def gone(pid: int) -> bool:
    """The pid no longer exists (or is a zombie nobody waits for)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def idle_server():
    p = spawn(IDLE)
    try:
        yield p
    finally:
        stop_process(p)


@pytest.fixture
def sampler_factory():
    made: list[Sampler] = []

    def make(pid: int, **kw) -> Sampler:
        kw.setdefault("generator_pid", os.getpid())
        s = Sampler(pid, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


def test_forking_tree_cpu_of_reaped_children_and_pss(sampler_factory):
    root = spawn(FORKER)
    try:
        s = sampler_factory(root.pid).start()
        s.mark("start")
        root.stdin.write(b"go\n")
        root.stdin.flush()
        assert read_line(root, 60) == "done"
        s.mark("end")
        series = s.stop()
    finally:
        stop_process(root)
    w = series.window("start", "end")
    start = series.sample_at("start")
    assert w.cpu_seconds >= 0.3  # A's 0.4 s, counted through the root's children_* after A was reaped
    assert w.processes_peak >= 3  # root, B, C at the end mark
    assert w.pss_peak is not None and start["pss"] is not None
    assert w.pss_peak - start["pss"] >= 40 * MiB
    assert w.uss_peak - start["uss"] >= 40 * MiB
    assert w.fds_peak > 0 and w.threads_peak > 0 and w.rss_peak > 0
    assert w.root_alive and series.root_exited_at is None
    cpu = series.samples["cpu"]
    assert all(b >= a - 0.02 for a, b in zip(cpu, cpu[1:]))  # continuous though children came and went (+-2 ticks)
    assert series.stop_reason == "stop"


def test_root_exit_keeps_sampling_and_carries_cpu(sampler_factory):
    root = spawn(BURN_THEN_WAIT)
    try:
        s = sampler_factory(root.pid).start()
        ta = s.mark("a")
        root.stdin.close()
        root.wait(timeout=10)  # the test (the generator) reaps the server root
        tb = s.mark("b")
        series = s.stop()
    finally:
        stop_process(root)
    w = series.window("a", "b")
    assert not w.root_alive
    assert series.root_exited_at is not None and ta <= series.root_exited_at < tb
    assert series.root_gone_at is not None and series.root_exited_at < series.root_gone_at <= tb
    assert series.sample_at("b")["processes"] == 0
    assert series.sample_at("b")["pss"] == 0
    # the root's 0.4 s stays in the server total and does not move to the generator that reaped it
    assert series.sample_at("b")["cpu"] >= series.sample_at("a")["cpu"] >= 0.3
    assert w.generator_cpu_seconds < 0.3
    assert series.window(series.started_at, "a").root_alive


def test_generator_cpu_is_not_server_cpu(sampler_factory, idle_server):
    s = sampler_factory(idle_server.pid).start()
    s.mark("start")
    subprocess.run([sys.executable, "-c", BURNER], check=True, timeout=60)  # a child of the generator
    s.mark("end")
    w = s.stop().window("start", "end")
    assert w.generator_cpu_seconds >= 0.3
    assert w.cpu_seconds < 0.3
    assert w.machine_busy_seconds >= w.generator_cpu_seconds - 0.1  # two ways of counting ticks
    assert w.other_cpu_seconds >= 0 and 0 <= w.machine_busy_fraction


def test_marks_in_order_and_errors(sampler_factory, idle_server):
    s = sampler_factory(idle_server.pid, generator_pid=None).start()
    times = [s.mark(n) for n in ("warmup:start", "warmup:end", "hello:start", "hello:end")]
    with pytest.raises(ValueError, match="already taken"):
        s.mark("hello:end")
    with pytest.raises(ValueError, match="whitespace"):
        s.mark("two words")
    series = s.stop()
    assert series.mark_names == ["warmup:start", "warmup:end", "hello:start", "hello:end"]
    assert [m.t for m in series.marks] == times == sorted(times)
    for m in series.marks:
        assert series.samples["t"][m.index] == m.t
        assert series.samples["pss"][m.index] is not None  # marks read PSS
    with pytest.raises(KeyError, match="nope"):
        series.window("nope", "hello:end")
    with pytest.raises(ValueError, match="not after"):
        series.window("hello:end", "hello:start")
    with pytest.raises(ValueError, match="outside"):
        series.window(series.started_at - 10, "hello:end")
    w = series.window("hello:start", "hello:end")
    assert w.start_mark == "hello:start" and w.generator_cpu_seconds == 0
    assert set(w.to_dict()) >= {"cpu_seconds", "pss_steady", "other_cpu_fraction", "root_alive"}
    assert s.stop() is series  # idempotent


def test_to_dict_roundtrip_is_columnar_json(sampler_factory, idle_server):
    import json
    s = sampler_factory(idle_server.pid, interval=0.05).start()
    s.mark("a")
    s.mark("b")
    series = s.stop()
    doc = json.loads(json.dumps(series.to_dict()))
    assert set(doc["samples"]) == set(COLUMNS)
    assert len({len(v) for v in doc["samples"].values()}) == 1
    again = SamplerSeries.from_dict(doc)
    assert again.window("a", "b") == series.window("a", "b")
    assert doc["machine_cpus"] == os.cpu_count()


def test_sampler_gone_after_stop_and_after_stdin_closed(sampler_factory, idle_server):
    s = sampler_factory(idle_server.pid).start()
    pid = s.pid
    s.stop()
    assert gone(pid) and not psutil.pid_exists(pid)

    s2 = sampler_factory(idle_server.pid).start()
    s2._proc.stdin.close()  # what the sampler sees when the harness dies
    assert s2._proc.wait(timeout=30) == 0
    series = s2.stop()  # the series it wrote on its way out is still in the pipe
    assert series.stop_reason == "eof"
    assert gone(s2.pid)


def test_max_seconds_ends_the_sampler(sampler_factory, idle_server):
    s = sampler_factory(idle_server.pid, max_seconds=0.3).start()
    assert s._proc.wait(timeout=30) == 0
    assert s.stop().stop_reason == "max_seconds"
    with pytest.raises(SamplerError):
        Sampler(idle_server.pid).mark("x")


def test_context_manager_kills_on_error(idle_server):
    with pytest.raises(RuntimeError, match="boom"):
        with Sampler(idle_server.pid, generator_pid=os.getpid()) as s:
            pid = s.pid
            raise RuntimeError("boom")
    assert gone(pid)
    with Sampler(idle_server.pid) as s2:
        s2.mark("x")
    assert s2.series is not None and s2.series.mark_names == ["x"] and gone(s2.pid)


def test_pinned_sampler(sampler_factory, idle_server):
    cpu = sorted(os.sched_getaffinity(0))[-1]
    s = sampler_factory(idle_server.pid, cpus=[cpu]).start()
    assert psutil.Process(s.pid).cpu_affinity() == [cpu]
    s.stop()


def test_unknown_server_pid():
    with pytest.raises(ValueError, match="no process"):
        Sampler(2 ** 22 + 12345).start()


def test_quiet_check_sane():
    r = quiet_check(0.3, exclude_pids=(os.getpid(),))
    assert r["other_cpu_percent"] >= 0 and r["machine_busy_percent"] >= r["other_cpu_percent"]
    assert r["machine_cpus"] == os.cpu_count()  # /proc/stat counts every CPU, whatever our affinity
    assert r["seconds"] >= 0.3


def test_help():
    out = subprocess.run([sys.executable, "-m", "harness.sampler", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for opt in ("--pid", "--generator-pid", "--interval", "--pss-interval", "--max-seconds"):
        assert opt in out.stdout


# -- window arithmetic on a made-up series (no processes)

def synthetic() -> SamplerSeries:
    t = [10.0 + i for i in range(11)]  # 10 .. 20, one sample a second
    pss = [100, None, None, 130, None, None, 160, None, 170, None, 190]
    return SamplerSeries.from_dict({
        "version": 1, "root_pid": 1, "generator_pid": 2, "sampler_pid": 3, "interval": 1.0,
        "pss_interval": 3.0, "machine_cpus": 2, "started_at": 10.0, "ended_at": 20.0,
        "stop_reason": "stop", "root_exited_at": 18.0, "root_gone_at": 19.0,
        "marks": [{"name": "s", "t": 10.0, "index": 0}, {"name": "e", "t": 20.0, "index": 10},
                  {"name": "m", "t": 14.0, "index": 4}],
        "samples": {
            "t": t,
            "cpu": [0.5 * i for i in range(11)],
            "rss": [1000 + i for i in range(11)],
            "pss": pss,
            "uss": [None if v is None else v - 50 for v in pss],
            "threads": [1, 2, 3, 4, 5, 4, 3, 2, 1, 1, 0],
            "fds": [3 + 2 * i for i in range(11)],
            "processes": [1, 2, 3, 3, 3, 2, 2, 2, 2, 1, 0],
            "generator_cpu": [0.25 * i for i in range(11)],
            "sampler_cpu": [0.01 * i for i in range(11)],
            "machine_busy": [0.5 * i for i in range(11)],  # less than server + generator: other clamps at 0
            "machine_steal": [0.0] * 11,
        },
    })


def test_window_formulas():
    s = synthetic()
    w = s.window("s", "e")
    assert w.duration == 10 and w.samples == 11 and w.pss_samples == 5
    assert w.cpu_seconds == 5.0 and w.cpu_fraction == 0.5
    assert w.cpu_us_per_request(10_000) == 500.0 and w.cpu_us_per_request(0) is None
    assert w.pss_peak == 190 and w.pss_steady == 170  # median of 160, 170, 190 (t >= 15)
    assert w.uss_peak == 140 and w.uss_steady == 120
    assert (w.threads_peak, w.fds_peak, w.processes_peak, w.processes_min) == (5, 23, 3, 0)
    assert w.generator_cpu_seconds == 2.5 and w.generator_cpu_fraction == 0.25
    assert w.machine_busy_fraction == 0.25 and w.other_cpu_seconds == 0.0
    assert not w.root_alive
    early = s.window("s", "m")
    assert early.root_alive and early.pss_peak == 130 and early.pss_steady == 130
    # explicit times interpolate the cumulative columns; the nearest PSS sample stands in when none is inside
    x = s.window(14.25, 14.75)
    assert x.cpu_seconds == 0.25 and x.samples == 2 and x.pss_peak == 130 and x.pss_steady == 160


def test_slope():
    s = synthetic()
    assert s.slope("fds") == pytest.approx(2.0)
    assert s.slope("cpu", "s", "m") == pytest.approx(0.5)
    assert s.slope("pss", 10.0, 13.0) == pytest.approx(10.0)
    assert s.slope("pss", 11.0, 12.0) is None
    with pytest.raises(KeyError):
        s.slope("nope")
