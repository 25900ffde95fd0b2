"""The gate's statistics: a one-sided Mann-Whitney U test (exact with ties for small samples) and Holm's correction."""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import comb
from typing import Sequence


#: pooled sample sizes up to this get the exact distribution of U (ties included); above, the normal one
EXACT_MAX = 40


# -- statistics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MannWhitney:
    """Result of :func:`mann_whitney_u`."""

    u: float  # U of the first sample: pairs (x, y) with x > y, plus half of the tied pairs
    p: float  # one-sided p-value for the alternative asked for
    method: str  # "exact" or "normal"


def _midranks(pooled: Sequence[float]) -> dict[float, int]:
    """Value -> twice its mid-rank (an integer even with ties) in the sorted pooled sample."""
    order = sorted(pooled)
    doubled: dict[float, int] = {}
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and order[j] == order[i]:
            j += 1
        doubled[order[i]] = (i + 1) + j  # ranks i+1 .. j, mid-rank (i+1+j)/2
        i = j
    return doubled


def _exact_tail(doubled_ranks: list[int], n: int, observed: int) -> tuple[float, float]:
    """P(S <= observed), P(S >= observed) for S the sum of ``n`` of ``doubled_ranks`` drawn without replacement
    (every subset equally likely: the null hypothesis), by counting subsets per sum (ties included)."""
    top = sum(sorted(doubled_ranks)[-n:])
    counts = [[0] * (top + 1) for _ in range(n + 1)]
    counts[0][0] = 1
    for seen, r in enumerate(doubled_ranks, 1):
        for k in range(min(n, seen), 0, -1):
            row, prev = counts[k], counts[k - 1]
            for s in range(top, r - 1, -1):
                c = prev[s - r]
                if c:
                    row[s] += c
    total = comb(len(doubled_ranks), n)
    dist = counts[n]
    low = sum(dist[: observed + 1])
    high = sum(dist[observed:])
    return low / total, high / total


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def mann_whitney_u(x: Sequence[float], y: Sequence[float], alternative: str = "less") -> MannWhitney:
    """One-sided Mann-Whitney U test of two independent samples.

    ``alternative="less"``: x tends to be smaller than y (p = P(U <= u) under the
    null hypothesis that both come from one distribution); ``"greater"``: x tends
    to be larger (p = P(U >= u)).  Exact (the permutation distribution of the
    mid-rank sum, so ties are handled exactly) when the pooled sample has at most
    :data:`EXACT_MAX` values; otherwise the normal approximation with the tie
    correction and a continuity correction.  For 5 vs 5 trials with every x below
    every y the exact one-sided p is 1/252.
    """
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', not {alternative!r}")
    x, y = [float(v) for v in x], [float(v) for v in y]
    n, m = len(x), len(y)
    if not n or not m:
        raise ValueError("both samples need at least one value")
    if any(math.isnan(v) for v in x + y):
        raise ValueError("samples must not contain NaN")
    doubled = _midranks(x + y)
    r2 = sum(doubled[v] for v in x)  # twice the rank sum of x
    u = (r2 - n * (n + 1)) / 2
    big_n = n + m
    if big_n <= EXACT_MAX:
        low, high = _exact_tail([doubled[v] for v in x + y], n, r2)
        return MannWhitney(u, min(1.0, low if alternative == "less" else high), "exact")
    ties = {}
    for v in x + y:
        ties[v] = ties.get(v, 0) + 1
    tie_term = sum(t ** 3 - t for t in ties.values()) / (big_n * (big_n - 1))
    var = n * m / 12.0 * ((big_n + 1) - tie_term)
    if var <= 0:
        return MannWhitney(u, 1.0, "normal")  # every value tied: no evidence either way
    mu = n * m / 2.0
    sd = math.sqrt(var)
    if alternative == "less":
        p = _phi((u - mu + 0.5) / sd)
    else:
        p = 1.0 - _phi((u - mu - 0.5) / sd)
    return MannWhitney(u, min(1.0, max(0.0, p)), "normal")


def min_p_value(n: int, m: int) -> float:
    """The smallest one-sided p a Mann-Whitney test of n vs m untied values can give: 1 / C(n+m, n)."""
    return 1.0 / comb(n + m, n)


def holm(ps: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; controls the chance of any false positive among them)."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted
