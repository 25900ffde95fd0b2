"""Writing the JSON document of a harness run: environment, servers, cells, summary.

Readers take the typed view of :mod:`harness.runview` (``Run.load(path)``).  Layout (schema ``mpm-harness/run``, version :data:`SCHEMA_VERSION`; the
field-by-field reference is docs/results.md)::

    results/runs/<UTC timestamp>-<matrix>/
        run.json          this document, rewritten after every cell (so an
                          interrupted or crashed run keeps what it measured)
        tables.md         the comparison tables (harness/report/)
        suites/*.xml      the suites' JUnit XML, per server
        logs/*.log        server error logs of failed cells, suite output

A *cell* is one measured thing: a load profile on a server in one trial
(``kind: profile``), or one suite on a server (``kind: suite``).  Its
``status`` is ``ok`` (measured and valid), ``invalid`` (measured, but not the
server's capacity: errors, a starved connection, a generator-bound driver),
``failed`` (the server crashed or hung, or the driver failed: ``reason`` says
which) or ``skipped`` (the server or the driver cannot run here: ``reason``
names the package to install).  Medians in ``summary`` are taken over the
``ok`` cells only.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# the schema and the reader live with the run view; imported from here by the runner, the matrix and the gate
from .runview import METRICS, SCHEMA, SCHEMA_VERSION, SOAK_MIN_SECONDS, Run, load_run

__all__ = [
    "SCHEMA", "SCHEMA_VERSION", "SOAK_MIN_SECONDS", "RunDocument", "environment", "load_run", "summarize",
    "METRICS", "new_run_dir", "write_json_atomic", "plain",
]

ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = ("mpm-harness", "httptools", "psutil", "hdrhistogram", "pyyaml", "tabulate", "locust", "gunicorn",
             "matplotlib", "pytest")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(pinning: dict | None = None) -> dict:
    """What the figures were measured on: CPU, kernel, Python, package versions, git commit, pinning."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "hostname": platform.node(),
        "pinning": pinning or {},
    }


def new_run_dir(base: str | os.PathLike, matrix_name: str) -> Path:
    """A fresh ``<base>/<UTC timestamp>-<matrix>`` folder (suffixed when two runs start in one second)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path(base)
    for i in range(1000):
        path = base / (f"{stamp}-{matrix_name}" + (f"-{i}" if i else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run folder under {base}")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunDocument:
    """The results document of one run, saved atomically after every change."""

    def __init__(self, run_dir: Path, doc: dict):
        self.run_dir = Path(run_dir)
        self.doc = doc

    @classmethod
    def create(cls, run_dir: str | os.PathLike, matrix: dict, env: dict, argv: list[str] | None = None
               ) -> "RunDocument":
        """A new document for a run of ``matrix`` (its ``to_dict()``), written at once."""
        doc = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run_id": Path(run_dir).name,
            "status": "running",
            "started": _now(),
            "finished": None,
            "argv": argv or [],
            "matrix": matrix,
            "environment": env,
            "servers": {},
            "cells": [],
            "summary": {},
        }
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        rd = cls(Path(run_dir), doc)
        rd.save()
        return rd

    @property
    def path(self) -> Path:
        """The run.json file."""
        return self.run_dir / "run.json"

    def set_server(self, label: str, info: dict) -> None:
        """Record (or update) what is known of server ``label``: launcher name, directives, availability..."""
        self.doc["servers"].setdefault(label, {}).update(info)
        self.save()

    def add_cell(self, cell: dict) -> None:
        """Append one cell and save."""
        self.doc["cells"].append(cell)
        self.save()

    def finish(self, status: str) -> None:
        """Close the run (``complete``, ``interrupted`` or ``failed``), compute the summary, save."""
        self.doc["status"] = status
        self.doc["finished"] = _now()
        self.doc["summary"] = summarize(self.doc)
        self.save()

    def save(self) -> None:
        """Write run.json atomically (a reader never sees half a document)."""
        write_json_atomic(self.path, self.doc)


def write_json_atomic(path: str | os.PathLike, doc: Any, indent: int = 1) -> Path:
    """Write ``doc`` as JSON through a temporary file and a rename, so a reader never sees half of it."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=indent, default=str)
        f.write("\n")
    os.replace(tmp, path)
    return path


def summarize(doc: dict) -> dict:
    """Medians with min-max per server, profile and metric (``ok`` cells only), and suite counts per server."""
    return Run(doc).summary()


def plain(value: Any) -> Any:
    """``value`` made JSON-ready (dataclasses with to_dict, sets, paths)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return value
