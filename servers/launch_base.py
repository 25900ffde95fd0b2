"""What the launcher and the modules it relies on share: the errors a launch raises and the
environment a launched server gets.

It sits below :mod:`servers.launcher` and :mod:`servers.interpreters` (which probes an
interpreter with a launched server's environment and raises a launch's errors), so that neither
imports the other in a circle. Callers keep importing these names from ``servers.launcher``.
"""

from __future__ import annotations

import os
from typing import Mapping

#: the checkout (or installed tree) these servers are imported from
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LaunchError(RuntimeError):
    """The server did not start or did not become ready; the message carries its log's tail."""


class NotApplicable(LaunchError):
    """The server cannot do what was asked: a directive it has no equivalent for (among
    ``required``), an application it cannot serve, a /server-status it does not have."""


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a launched server: ours, ``env`` on top, the project root on PYTHONPATH."""
    child = dict(os.environ)
    child.update(env or {})
    # the project root on the path, so `python -m servers` (or gunicorn's app import) works from any cwd
    child["PYTHONPATH"] = ROOT + os.pathsep + child.get("PYTHONPATH", "")
    return child
