"""The installed mpm-harness version, looked up once for every command (``mpm-server -v``, ``harness --version``)."""

from __future__ import annotations

from .http.response import SERVER_SOFTWARE


def package_version() -> str:
    """The installed distribution's version (PEP 566 metadata); from a bare checkout, the Server
    header's version token marked "(not installed)". importlib.metadata is imported only here: it
    brings the email package along, megabytes every server process would otherwise carry."""
    import importlib.metadata

    try:
        return importlib.metadata.version("mpm-harness")
    except importlib.metadata.PackageNotFoundError:
        return SERVER_SOFTWARE.partition("/")[2] + " (not installed)"
