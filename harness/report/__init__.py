"""The report of a run: tables, plots and one HTML page, from its ``run.json`` alone (docs/report.md).

Nothing here measures or starts anything, so the report can be rewritten at any time.  Every
module reads the run through :class:`harness.runview.Run`; by job:

* :mod:`.text`: how numbers are written; :mod:`.latency`: histograms added together;
* :mod:`.sections`: the table model and the words every table shares; :mod:`.runtables` and
  :mod:`.suitetables`: the tables of the load profiles and of the suites; :mod:`.tables`: all
  of them in order;
* :mod:`.markdown`: ``tables.md``; :mod:`.plots`: ``plots/*.png``; :mod:`.page`: ``report.html``;
* :mod:`.files`: writes them into a run folder and ``results/README.md`` (``harness report``,
  ``python -m harness.report``).

This package imports the light modules only (no matplotlib): the markdown and the table model.
"""

from .markdown import md_body, render_markdown
from .sections import Section, Table, resolve_reference
from .tables import build_sections

__all__ = ["render_markdown", "md_body", "build_sections", "resolve_reference", "Section", "Table"]
