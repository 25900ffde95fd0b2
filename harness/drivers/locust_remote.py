"""locust's distributed mode for the locust driver: the master's address, the worker command, the wait.

locust runs one test across processes and machines as a master and workers that connect to
it over ZeroMQ (locust's "Distributed load generation"). The driver
(:func:`harness.drivers.locust.run_locust`) uses it two ways, alone or together:

* ``processes`` N > 1: locust's ``--processes N`` forks N local workers, which connect to
  the master over the bound address;
* ``remote_workers`` M > 0: the master also waits for M workers from other machines,
  started by hand with :func:`worker_command`.  They have no report folder: their report
  plugin sends its document to the master as a locust message and the master writes it
  beside its own, so they are merged like local ones (docs/drivers.md, "Remote workers").
  The master waits ``worker_wait`` seconds for all N + M (``--expect-workers-max-wait``);
  when they do not all come, :func:`gave_up_reason` says how many came and the command.

Before the master quits it stops every worker and waits, bounded, for each one's report
(the plugin's ``_drain_workers``): locust's headless master itself listens only 0.5 s after
its "quit" (``MasterRunner.quit``).  Nothing here imports locust.
"""

from __future__ import annotations

import math
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ROOT", "DEFAULT_LOCUSTFILE", "PLUGIN_PATH", "GAVE_UP_TEXT", "DEFAULT_WORKER_WAIT_S", "MasterPlan",
    "split_master_bind", "parse_master_bind", "worker_command", "plan_master", "print_worker_command",
    "gave_up_reason",
]

ROOT = Path(__file__).resolve().parents[2]
#: the project's locustfile (users and load profiles)
DEFAULT_LOCUSTFILE = ROOT / "suites" / "load.py"
#: the report plugin, given to locust by path (never imported here); alone in its folder,
#: because locust puts that folder on sys.path and the driver's module is named "locust"
PLUGIN_PATH = Path(__file__).parent / "locust_plugin" / "mpm_harness_locust_report.py"
#: what locust logs when --expect-workers-max-wait runs out
GAVE_UP_TEXT = "Gave up waiting for workers to connect"
#: the default bounded wait for remote workers, in seconds
DEFAULT_WORKER_WAIT_S = 60.0
_WILDCARDS = ("", "*", "0.0.0.0", "::")


def _free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def split_master_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) -> (host, port); port 0 means a free one. No socket is touched.

    Raises ValueError without a port or with one out of range.
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or (":" in host and not host.startswith("[")):
        raise ValueError(f"master_bind must be HOST:PORT ([v6]:PORT; port 0: a free one), not {text!r}")
    return host.strip("[]"), int(port)


def parse_master_bind(text: str) -> tuple[str, int]:
    """:func:`split_master_bind`, with port 0 replaced by a free port of that address."""
    host, number = split_master_bind(text)
    return host, number or _free_port("0.0.0.0" if host in _WILDCARDS else host)


def worker_command(master_host: str, master_port: int, locustfile: str | os.PathLike = DEFAULT_LOCUSTFILE) -> str:
    """The command to run on each generator machine so it joins the master as a locust worker.

    Run from a checkout of mpm-harness (the same commit, installed with its
    ``locust`` extra): paths are relative to its root when the locustfile is
    the project's own. The report plugin comes with it, so the worker sends
    its exact counts to the master (module doc).
    """
    files = [Path(locustfile).resolve(), PLUGIN_PATH]
    shown = [str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f) for f in files]
    host = f"[{master_host}]" if ":" in master_host else master_host
    return f"locust -f {','.join(shown)} --worker --master-host {host} --master-port {int(master_port)}"


@dataclass(frozen=True)
class MasterPlan:
    """How a distributed run starts: the master's locust options and what the driver waits for."""

    args: list[str]  # locust's master options
    wait: float  # seconds the master waits for its workers
    command: str | None  # the worker command, when remote workers are expected
    reports: int  # the report documents a complete run leaves: the master's and each worker's


def _advertised(bind_host: str) -> str:
    # what workers connect to: the bound address, or this machine's name when bound to all of them
    return socket.getfqdn() if bind_host in _WILDCARDS else bind_host


def plan_master(processes: int, remote: int, bind: tuple[str, int], wait: float,
                locustfile: str | os.PathLike) -> MasterPlan:
    """The master's options for N local ``processes`` and ``remote`` M workers, bound to ``bind``.

    With N > 1, locust's ``--processes`` forks the local workers, which connect
    to ``--master-host``; otherwise ``--master --expect-workers M``.  The report
    plugin raises a ``--processes`` master's expectation to N + M.
    """
    bind_host, port = bind
    local_host = "127.0.0.1" if bind_host in _WILDCARDS else bind_host
    args = ["--master-bind-host", bind_host or "*", "--master-bind-port", str(port),
            "--expect-workers-max-wait", str(max(1, math.ceil(wait)))]
    if processes > 1:
        args += ["--processes", str(processes), "--master-host", local_host, "--master-port", str(port)]
    else:
        args += ["--master", "--expect-workers", str(remote)]
    command = worker_command(_advertised(bind_host), port, locustfile) if remote else None
    local = processes if processes > 1 else 0
    return MasterPlan(args=args, wait=wait, command=command, reports=1 + local + remote)


def print_worker_command(command: str) -> None:
    """Print the worker command on stderr, where a user running the harness sees it before the wait."""
    sys.stderr.write(f"locust driver: run on each generator machine (from an mpm-harness checkout):\n  {command}\n")
    sys.stderr.flush()


def gave_up_reason(stderr: str, processes: int, remote: int, wait: float, command: str | None) -> str:
    """The clear reason of a run whose workers did not all come, from locust's "K of N connected" lines."""
    seen = re.findall(r"(\d+) of (\d+) connected", stderr)
    came = f"{seen[-1][0]} of {seen[-1][1]}" if seen else "not all"
    local = processes if processes > 1 else 0
    text = (f"locust workers did not come: {came} workers connected within {wait:g} s "
            f"(expected {local} local + {remote} remote)")
    return text + (f"; run on each generator machine: {command}" if command else "")
