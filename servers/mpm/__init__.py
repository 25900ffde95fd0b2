"""The MPMs: a shared parent (parent.py), scoreboard and connection loop, and one child loop per MPM.

Each MPM is described once, by its :class:`~servers.mpm.spec.MPMSpec` (spec.py).
"""

from __future__ import annotations

from .spec import MPM_NAMES, MPMS, MPMSpec

__all__ = ["MPM_NAMES", "MPMS", "MPMSpec", "get_mpm"]


def get_mpm(name: str) -> MPMSpec:
    """The spec of MPM ``name``, with its child loop loaded (httpd refuses an MPM it was not built with)."""
    spec = MPMS.get(name)
    if spec is None:
        raise ValueError(f"unknown MPM {name!r}; choose one of {', '.join(MPM_NAMES)}")
    try:
        spec.load_child()
    except ModuleNotFoundError as exc:
        raise ValueError(f"the {name} MPM is not available in this build: {exc}") from None
    return spec
