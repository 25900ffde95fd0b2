"""``harness gate``: fail a change that makes a server slower or fatter, not one that met a noisy machine.

Two ways to get the two samples it compares (docs/gate.md):

* ``--against REF`` (the robust mode): the base revision is checked out
  into a temporary git worktree, and the matrix runs on the base and on the
  candidate (the working tree) side by side in this one job, trials
  interleaved (base, candidate, candidate, base, ...).  Both sides are
  measured by the candidate's harness (the same driver, sampler and matrix);
  only the servers differ: each side's servers are started from a launch
  directory holding nothing but a ``servers`` link to that side's tree, and
  ``python -m servers`` puts its working directory first on ``sys.path``.
* ``--baseline FILE``: a fresh run (or ``--run RUN_DIR``) against the trials
  recorded in ``results/baseline.json`` (``harness baseline``).  Absolute
  figures from another time, and perhaps another machine: the weaker mode.

The rule, per server x profile x metric: a metric **regresses** when its
median moved beyond the matrix's threshold in the bad direction (requests/s
down, CPU-us/request and memory up) **and** a one-sided Mann-Whitney U test
on the trials says such a shift is unlikely to be noise (p < alpha).  The
mirror image is an **improvement**; anything else **passes**; too few valid
trials on either side is **not measured**.

Exit status: 0 every gated metric passed (or improved), 1 at least one
regression, 2 could not measure (a server failed, too few ok trials, bad
input), 130 interrupted.

The package, by job: :mod:`.stats` (the U test, Holm), :mod:`.verdicts` (the rule per
metric), :mod:`.summary` (the markdown), :mod:`.sidebyside` (the worktree and the
interleaved run), :mod:`.command` (the two modes as commands).
"""

from __future__ import annotations

from .command import gate_against, gate_baseline
from .sidebyside import AgainstRun, gate_matrix, parse_candidate_sets, run_against, with_sets
from .stats import EXACT_MAX, MannWhitney, holm, mann_whitney_u, min_p_value
from .summary import render_summary
from .verdicts import (EXIT_PASS, EXIT_REGRESSION, EXIT_UNMEASURED, LABELS, GateError, GateResult, Verdict,
                       compare)

__all__ = [
    "GateError", "MannWhitney", "mann_whitney_u", "min_p_value", "holm", "Verdict", "GateResult", "compare",
    "render_summary", "run_against", "gate_matrix", "gate_against", "gate_baseline", "parse_candidate_sets",
    "with_sets", "AgainstRun", "EXIT_PASS", "EXIT_REGRESSION", "EXIT_UNMEASURED", "EXACT_MAX", "LABELS",
]
