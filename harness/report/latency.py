"""Latency from the trials' HdrHistograms added together, never averaged (docs/report.md, table 1 and plots).

Percentiles of separate trials cannot be combined; their histograms can: the report reads
p50/p99/p99.9 from the sum, and the spectrum plot draws the sum's percentile distribution as
HdrHistogram's own percentile output prints it.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["merged_histogram", "percentiles_ms", "spectrum"]


def merged_histogram(hdrs: Iterable[str], *, strict: bool = False):
    """The HdrHistograms ``hdrs`` (base64) added together; None when nothing was counted.

    An undecodable histogram is left out, or with ``strict`` makes the result None (the table
    then falls back to the trials' own percentiles rather than show a partial sum).
    """
    from hdrh.histogram import HdrHistogram

    merged = None
    for h in hdrs:
        try:
            one = HdrHistogram.decode(h)
        except Exception:  # a histogram that cannot be decoded
            if strict:
                return None
            continue
        if merged is None:
            merged = one
        else:
            merged.add(one)
    return merged if merged is not None and merged.get_total_count() else None


def percentiles_ms(hdrs: list[str]) -> dict[str, float] | None:
    """``p50_ms``, ``p99_ms``, ``p999_ms`` of the histograms added together; None unless every one decodes."""
    merged = merged_histogram(hdrs, strict=True) if hdrs and all(hdrs) else None
    if merged is None:
        return None
    return {k: merged.get_value_at_percentile(p) / 1000.0 for k, p in (("p50_ms", 50), ("p99_ms", 99),
                                                                        ("p999_ms", 99.9))}


def spectrum(hdrs: list[str], ticks_per_half: int = 5) -> list[tuple[float, float]]:
    """(percentile, latency ms) points of the HdrHistograms ``hdrs`` (base64) added together.

    Percentiles at 100 * (1 - 0.5 ** (i / ticks_per_half)), as HdrHistogram's
    percentile distribution prints them, until 1/(1-q) passes the count (the
    last point is the maximum).  Empty when nothing decodes or nothing was counted.
    """
    merged = merged_histogram(hdrs)
    if merged is None:
        return []
    n = merged.get_total_count()
    points = []
    i = 0
    while True:
        q = 100.0 * (1 - 0.5 ** (i / ticks_per_half))
        if 1 / (1 - q / 100) > n or i > 60 * ticks_per_half:
            break
        points.append((q, merged.get_value_at_percentile(q) / 1000.0))
        i += 1
    points.append((100.0 * (1 - 1 / (n + 1)), merged.get_max_value() / 1000.0))
    return points
