"""Every section of the report, in order: the environment, then tables 1-9 (docs/report.md).

1. throughput and latency        6. conformance (Pass/Warn/Fail)
2. CPU per request                7. suites (counts per server x suite)
3. memory (3b: growth over soak-length profiles)
4. keep-alive and slow-client availability
5. thread safety (corruption counts)
8. beside the reference servers (``matrix.peers``)
9. flags and failures (cells that are not ok, noisy trials, unavailable servers)

Missing data never raises: a figure that was not measured shows ``–``, a server x profile
whose trials all failed shows ``failed: <reason>``, one that never ran shows ``skipped``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..runview import Run, as_run
from .runtables import cpu, environment, flags, growth, memory, peers, throughput
from .sections import Section, Sheet
from .suitetables import availability, conformance, suites, threadsafety

__all__ = ["build_sections"]


def build_sections(run: Run | Mapping[str, Any], reference: str | None = None) -> list[Section]:
    """Every section of the report (environment, then tables 1-9), as text; see the module doc.

    ``reference``: the server label the ratio columns divide by; None takes the matrix's
    ``reference``, ``""`` shows no ratios.  ValueError, naming the valid labels, if it is not
    a server of the run.
    """
    sheet = Sheet(as_run(run), reference)
    sections = [environment(sheet), throughput(sheet), cpu(sheet), memory(sheet), growth(sheet),
                availability(sheet), threadsafety(sheet), conformance(sheet), suites(sheet), peers(sheet),
                flags(sheet)]
    return [s for s in sections if s is not None]
