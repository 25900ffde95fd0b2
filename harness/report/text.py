"""How the report writes numbers and text (docs/report.md, "General rules"): 3 significant figures, ``–``.

A figure that was not measured is ``–``; counts and figures recorded as text by the suites
(JUnit properties are strings) are read with :func:`num` and never raise.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..runview import Spread

__all__ = ["DASH", "NOT_SAMPLED", "fmt_sig", "fmt_ratio", "fmt_pct", "fmt_count", "fmt_seconds", "fmt_spread", "ratio", "num",
           "clip"]

#: what a figure that was not measured shows
DASH = "–"
#: what a CPU or memory figure of a server that runs elsewhere (a URL without a PID here) shows
NOT_SAMPLED = "not sampled here"


def fmt_sig(value: float | int | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures with thousands separators (``12,300``, ``0.412``); ``–`` for None."""
    if value is None or isinstance(value, bool):
        return DASH
    try:
        x = float(value)
    except (TypeError, ValueError):
        return DASH
    if not math.isfinite(x):
        return DASH
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = digits - 1 - mag
    x = round(x, decimals)
    if x != 0 and math.floor(math.log10(abs(x))) != mag:  # 999.7 -> 1000: one digit fewer after the point
        decimals -= 1
    return f"{x:,.{max(0, decimals)}f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.42x``; ``–`` for None."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.2f}x"


def fmt_pct(value: float | None, decimals: int = 0) -> str:
    """A fraction as a percentage (``0.476`` -> ``48%``); ``–`` for None."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value * 100:.{decimals}f}%"


def num(text: Any) -> float | None:
    """A JUnit property (a string) as a number; None for ``>5.0``, ``n/a``, missing."""
    if text is None or isinstance(text, bool):
        return None
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt_count(value: Any) -> str:
    """A count recorded as text (``"183"``) with thousands separators; other text as it is."""
    x = num(value)
    if x is None:
        return DASH if value is None else str(value)
    return f"{int(x):,}" if x == int(x) else fmt_sig(x)


def fmt_seconds(value: Any) -> str:
    """A duration in seconds recorded as text: ``4.0 ms``, ``1.2 s``; other text (``>5.0``) with its unit."""
    x = num(value)
    if x is None:
        return DASH if value in (None, "") else f"{value} s"
    return f"{fmt_sig(x * 1000, 2)} ms" if x < 1 else f"{fmt_sig(x, 2)} s"


def fmt_spread(s: Spread | None, fmt: Callable[[Any], str] = fmt_sig) -> str:
    """``median (min–max)`` of a metric over the ok trials, or the median alone for one trial; ``–`` when none."""
    if s is None or s.median is None:
        return DASH
    text = fmt(s.median)
    if s.n > 1 and s.min is not None and s.max is not None:
        lo, hi = fmt(s.min), fmt(s.max)
        if lo != hi:
            text += f" ({lo}–{hi})"
    return text


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def clip(text: str, n: int = 160) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
