"""``--against REF``: the base revision in a temporary git worktree, run side by side with the working tree."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

from ..matrix import Matrix
from ..results import RunDocument, new_run_dir
from ..runview import Run
from .verdicts import GateError


# -- the side-by-side mode ---------------------------------------------------------------------------


def gate_matrix(matrix: Matrix, trials: int | None = None) -> Matrix:
    """``matrix`` as the gate runs it: only the gated profiles, no suites, ``trials`` trials each."""
    wanted = set(matrix.gate.profiles)
    profiles = tuple(dataclasses.replace(p, params={**p.params, "trials": 0})
                     for p in matrix.profiles if not wanted or p.name in wanted)
    if not profiles:
        raise GateError(f"{matrix.source}: the matrix has no load profiles to gate")
    return dataclasses.replace(matrix, suites=(), profiles=profiles, trials=trials or matrix.trials)


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GateError(f"git {' '.join(args)}: {exc}") from None
    if check and out.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


def _probe(launch_dir: Path, tree: Path, names: Sequence[str]) -> None:
    """Check that a server started from ``launch_dir`` imports each of ``names`` from ``tree``.

    The launcher runs ``python -m servers`` with the caller's working directory, and ``-m`` puts
    that directory first on ``sys.path`` (unless PYTHONSAFEPATH/-P is set); ``-c`` follows the same
    rule, so this probe imports exactly as a launched server would.
    """
    from servers.launcher import child_env

    code = ("import importlib, os, sys\n"
            "for name in sys.argv[1:]:\n"
            "    print(os.path.realpath(importlib.import_module(name).__file__))\n")
    try:
        out = subprocess.run([sys.executable, "-c", code, *names], cwd=launch_dir, env=child_env(),
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GateError(f"cannot probe {launch_dir}: {exc}") from None
    got = out.stdout.split()
    want = os.path.realpath(tree)
    for i, name in enumerate(names):
        path = got[i] if i < len(got) else ""
        if out.returncode != 0 or not path.startswith(want + os.sep):
            raise GateError(f"a server started from {launch_dir} would import {name} from "
                            f"{path or out.stderr.strip().splitlines()[-1:]!r}, not from {want} (is PYTHONSAFEPATH "
                            "set?); cannot tell the two sides apart")


def _link_tree(launch_dir: Path, tree: Path, names: Sequence[str], side: str, what: str) -> None:
    """``launch_dir`` with one link per name in ``names`` to that package (or module) of ``tree``."""
    launch_dir.mkdir()
    for name in names:
        pkg, mod = tree / name, tree / f"{name}.py"
        if pkg.is_dir():
            (launch_dir / name).symlink_to(pkg, target_is_directory=True)
        elif mod.is_file():
            (launch_dir / f"{name}.py").symlink_to(mod)
        else:
            raise GateError(f"the {side} ({what}) has no {name!r} package or module to measure "
                            "(gate.tree in the matrix names what each side's servers import from its tree)")


class _Indented:
    """A text stream that indents every line written to it (the runner's progress under the gate's)."""

    def __init__(self, out: TextIO, prefix: str):
        self.out, self.prefix, self._bol = out, prefix, True

    def write(self, text: str) -> int:
        for part in text.splitlines(keepends=True):
            if self._bol:
                self.out.write(self.prefix)
            self.out.write(part)
            self._bol = part.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@dataclass
class AgainstRun:
    """What :func:`run_against` measured."""

    base: dict  # merged run document of the base side
    candidate: dict
    folder: Path
    base_commit: str
    candidate_commit: str | None
    candidate_dirty: bool | None
    wall_seconds: float


def _merge(folder: Path, matrix: Matrix, env: dict, argv: list[str], runs: list[tuple[int, Run]]) -> dict:
    """One run document of a side from its per-trial runs (cells renumbered with the gate's trial)."""
    rd = RunDocument.create(folder, matrix.to_dict(), env, argv)
    for _, run in runs[:1]:
        for label in run.recorded_servers:
            rd.doc["servers"][label] = run.server(label).raw
    for trial, run in runs:
        for c in run.profile_cells():
            rd.doc["cells"].append(dict(c.raw, trial=trial))
    rd.finish("complete" if all(run.status == "complete" for _, run in runs) else "interrupted")
    return rd.doc


def parse_candidate_sets(items: Sequence[str], labels: Sequence[str]) -> dict[str, dict]:
    """``--candidate-set [LABEL:]Directive=value`` -> label -> directives (no label: every server)."""
    from servers.config import ConfigError, parse_override

    out: dict[str, dict] = {}
    for item in items:
        label, sep, rest = item.partition(":")
        if not sep or "=" in label:
            targets, rest = list(labels), item
        else:
            if label not in labels:
                raise GateError(f"--candidate-set {item!r}: no server labelled {label!r}; labels: {', '.join(labels)}")
            targets = [label]
        try:
            name, value = parse_override(rest)
        except ConfigError as exc:
            raise GateError(f"--candidate-set {item!r}: {exc}") from None
        for t in targets:
            out.setdefault(t, {})[name] = value
    return out


def with_sets(matrix: Matrix, extra: dict[str, dict]) -> Matrix:
    """``matrix`` with ``extra`` directives added to the servers they name."""
    if not extra:
        return matrix
    return dataclasses.replace(matrix, servers=tuple(
        dataclasses.replace(s, set={**s.set, **extra.get(s.label, {})}) for s in matrix.servers))


def run_against(matrix: Matrix, ref: str, *, results_dir: str | os.PathLike = "results/runs",
                trials: int | None = None, out: TextIO = sys.stdout, argv: list[str] | None = None,
                candidate_sets: dict[str, dict] | None = None) -> AgainstRun:
    """Run ``matrix`` on revision ``ref`` and on the working tree, interleaved; the two merged documents.

    The base revision goes into a temporary ``git worktree`` (removed in a finally, with its launch
    directories). Per trial t = 1..N the sides run in the order base, candidate for odd t and
    candidate, base for even t (ABBA: a linear drift of the machine hits both sides alike), each as a
    one-trial run of the candidate's runner whose servers start from that side's tree.
    """
    from ..runner import MatrixRunner

    t0 = time.monotonic()
    m = gate_matrix(matrix, trials)
    top = _git("rev-parse", "--show-toplevel", cwd=Path.cwd(), check=False)
    if not top:
        raise GateError(f"--against {ref}: {Path.cwd()} is not in a git checkout; the working tree is the candidate")
    repo = Path(top)
    sha = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False)
    if not sha:
        raise GateError(f"--against {ref}: not a commit here (in CI: git fetch origin {ref.split('/')[-1]})")
    cand_commit = _git("rev-parse", "HEAD", cwd=repo, check=False) or None
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=repo, check=False)
    folder = new_run_dir(Path(results_dir).resolve(), f"gate-{matrix.name}")
    print(f"gate folder: {folder}", file=out, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="mpm-gate-"))
    base_tree = tmp / "base"
    added = False
    previous = signal.signal(signal.SIGTERM, _sigterm)
    old_cwd = os.getcwd()
    try:
        _git("worktree", "add", "--detach", str(base_tree), sha, cwd=repo)
        added = True
        trees = {"base": base_tree, "candidate": repo}
        what = {"base": f"{ref} = {sha[:10]}", "candidate": f"working tree {repo}"}
        launch = {}
        for side, tree in trees.items():
            launch[side] = tmp / f"launch-{side}"
            _link_tree(launch[side], tree, matrix.gate.tree, side, what[side])
            _probe(launch[side], tree, matrix.gate.tree)
        runs: dict[str, list[tuple[int, Run]]] = {"base": [], "candidate": []}
        for t in range(1, m.trials + 1):
            for side in (("base", "candidate") if t % 2 else ("candidate", "base")):
                print(f"gate: trial {t}/{m.trials}: {side} ({sha[:10] if side == 'base' else 'working tree'})",
                      file=out, flush=True)
                one = dataclasses.replace(m, trials=1)
                if side == "candidate":
                    one = with_sets(one, candidate_sets or {})
                run_dir = folder / "trials" / f"{t:02d}-{side}"
                os.chdir(launch[side])  # the launcher's servers inherit it: `python -m servers` from this tree
                try:
                    run = Run(MatrixRunner(one, run_dir, out=_Indented(out, "    "), argv=argv).run().doc)
                finally:
                    os.chdir(old_cwd)
                runs[side].append((t, run))
                if run.status == "interrupted":
                    raise KeyboardInterrupt
        env_c = dict(runs["candidate"][0][1].environment, git_commit=cand_commit,
                     git_dirty=bool(status) if cand_commit else None, tree=str(repo))
        env_b = dict(runs["base"][0][1].environment, git_commit=sha, git_dirty=False, tree=f"{ref} (worktree)")
        base_doc = _merge(folder / "base", m, env_b, argv or [], runs["base"])
        cand_doc = _merge(folder / "candidate", with_sets(m, candidate_sets or {}), env_c, argv or [],
                          runs["candidate"])
    finally:
        os.chdir(old_cwd)
        signal.signal(signal.SIGTERM, previous)
        if added:
            _git("worktree", "remove", "--force", str(base_tree), cwd=repo, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        _git("worktree", "prune", cwd=repo, check=False)
    return AgainstRun(base_doc, cand_doc, folder, sha, cand_commit, bool(status) if cand_commit else None,
                      time.monotonic() - t0)


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt
