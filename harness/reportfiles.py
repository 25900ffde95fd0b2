"""The old path of :mod:`harness.report.files`, kept while ``harness/cli.py`` imports it from here."""

from .report.files import publish, report_command, write_tables

__all__ = ["write_tables", "publish", "report_command"]
