"""Process-tree sampler: CPU, memory, threads and fds of a server, measured from a separate process.

What is sampled
---------------
Every ``interval`` (default 0.1 s) the sampler reads ``/proc/PID/stat`` of
every process once (parent, state, CPU times, threads, RSS, start time: the
fields psutil's ``ppid``/``status``/``cpu_times``/``num_threads``/
``memory_info`` read, at a third of psutil's cost) and takes:

* the **server tree**: the server's root pid and all its descendants,
  re-discovered at every sample.  Summed: cumulative CPU, RSS, threads, open
  fds (entries of ``/proc/PID/fd``, as psutil's ``num_fds``), and the number
  of live processes.  About every ``pss_interval`` (default 1 s), and at
  every mark, also the summed PSS and USS (psutil ``memory_full_info``);
* the **generator tree**: the process ``generator_pid`` (the harness) and all
  its descendants *except* the server tree and the sampler itself -- i.e.
  everything the harness runs that is not the server: its own threads, locust,
  wrk.  Cumulative CPU only;
* the sampler's **own** CPU;
* the **whole machine**: ``psutil.cpu_times()`` summed over every CPU; busy =
  total - idle - iowait - steal (steal is kept apart: it is time the
  hypervisor gave to another guest, not work of any process on this machine).

From these, :meth:`SamplerSeries.window` derives per-window figures, among
them "other processes' CPU" = machine busy - server - generator - sampler.

Cumulative CPU and the ``children_*`` times
-------------------------------------------
A tree's CPU is, for each live process, ``user + system + children_user +
children_system``.  ``children_*`` hold the times of the children that
process has *reaped* (``waitpid``).  A prefork child that serves a few
requests and exits takes its CPU with it from ``/proc``; once its parent
reaps it, that CPU reappears in the parent's ``children_*``, so the summed
figure of a tree whose children come and go stays continuous and a window's
CPU is simply (value at end) - (value at start).  A zombie (exited, not yet
reaped) still shows its final times and is counted for CPU only.  When a
process leaves a tree without being reaped by a member of the same tree (the
server root reaped by the harness after a crash, an orphan reaped by init),
its last sampled CPU is carried in the tree's total, so the total does not
drop; when the server root is reaped by the generator, that same amount is
taken off the generator, which has just gained it in its ``children_*``.
Server processes are followed by pid once seen, even when reparented
(orphans of a crashed root still count as server).

Why PSS and not RSS
-------------------
Prefork children are forked from one parent and share most of their pages
(interpreter, imported modules) copy-on-write.  RSS counts a shared page in
full in every process that maps it, so summed RSS over 50 children counts
the same pages 50 times and overstates the tree's memory by 10x or more.
PSS (proportional set size) charges each process ``1/n`` of a page shared by
``n`` processes, so summed PSS is the tree's real footprint.  USS is the
private part (what killing the process would free).  PSS needs a read of
``/proc/PID/smaps_rollup`` per process, which costs several times more than
the other figures: hence every ~``pss_interval`` only.

Why a separate process
----------------------
The sampler's reads of ``/proc`` cost CPU.  Running them in the harness
would add that cost to the generator's CPU and steal time from the load
driver's threads.  In its own process (pinnable to a CPU of its own), its
cost is measured (``sampler_cpu``) and kept out of every other figure.

Transport
---------
:class:`Sampler` starts ``python -m harness.sampler`` with pipes.  The
sampler writes ``ready T`` after its first sample; the parent sends ``mark
NAME`` (the sampler takes a sample at once, records the mark and answers
``ack NAME T``) and ``stop``; on ``stop``, end of stdin (the harness died),
its parent's exit or ``--max-seconds`` it takes a last sample, writes the
whole series as one line of JSON and exits.  Times are ``time.monotonic()``
(CLOCK_MONOTONIC, system-wide on Linux, so the parent's and the sampler's
clocks agree).  Every read on the parent's side has a deadline.

The package, by job: :mod:`.procfs` (reading /proc, the quiet check, the per-process fd and thread probe of the leak check), :mod:`.process`
(the sampler process), :mod:`.series` (the series and its windows), :mod:`.controller`
(the harness side: :class:`Sampler`).
"""

from __future__ import annotations

from .controller import Sampler, SamplerError
from .process import COLUMNS, FORMAT_VERSION
from .procfs import machine_cpu, quiet_check
from .series import Mark, SamplerSeries, WindowStats

__all__ = ["Sampler", "SamplerSeries", "WindowStats", "Mark", "SamplerError", "quiet_check",
           "machine_cpu", "COLUMNS", "FORMAT_VERSION"]
