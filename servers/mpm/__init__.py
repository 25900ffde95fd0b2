"""The MPMs: a shared parent (parent.py), scoreboard and connection loop, and one child loop per MPM."""

from __future__ import annotations

import importlib
from types import ModuleType

MPM_NAMES = ("prefork", "worker", "event")


def get_mpm(name: str) -> ModuleType:
    """The module implementing MPM ``name`` (``servers.mpm.<name>``)."""
    if name not in MPM_NAMES:
        raise ValueError(f"unknown MPM {name!r}; choose one of {', '.join(MPM_NAMES)}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"the {name} MPM is not available in this build: {exc}") from None
