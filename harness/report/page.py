"""The self-contained HTML report of one run: ``report.html`` (docs/report.md).

One page, readable without ``run.json`` or any other file: the plots are
PNGs embedded as ``data:`` URIs, the CSS is inline, there is no script.  In
order: the run's headline (matrix, command, status), the plots
(:mod:`harness.report.plots`), every table (environment first), each server's
effective configuration and the settings it could not apply, and the
conformance matrix: every case's verdict per server beside the RFC section it
checks and the exact bytes it sends.  Every text from the document is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from tabulate import tabulate

from ..runview import Run, as_run
from .sections import Section, Table, partial_line
from .suitetables import row_key
from .tables import build_sections

if TYPE_CHECKING:
    from .plots import PlotSet

__all__ = ["CSS", "html_document", "html_table", "html_body", "data_uri", "figure_html", "conformance_matrix", "render_report"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 110em;
       padding: 0 1em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .4em 0 1.6em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .2em .55em; vertical-align: top; }
th { background: #f3f3f3; } tbody tr:nth-child(even) { background: #fafafa; }
p.caption { color: #444; max-width: 70em; font-size: .9em; }
p.partial { background: #fff3cd; border: 1px solid #e0c060; padding: .6em; font-weight: bold; }
p.empty { font-style: italic; color: #666; }
nav ul { columns: 3; font-size: .9em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #444; font-size: .9em; max-width: 70em; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .5em; overflow-x: auto; font-size: .85em; }
td.v-pass { background: #e3f4e3; } td.v-warn { background: #fff3cd; } td.v-fail { background: #f8d7da; }
td.v-na { background: #eee; color: #666; } td.req pre { margin: 0; max-width: 48em; white-space: pre-wrap; }
details summary { cursor: pointer; }
table.conf th.srv { width: 6.5em; } table.conf td { white-space: nowrap; }
table.conf td:first-child, table.conf td:nth-child(2) { white-space: normal; min-width: 14em; }
""".strip()


def html_document(title: str, body: list[str]) -> str:
    """A whole page: ``title`` as its title and first heading, then ``body`` (HTML), with the inline CSS."""
    t = html.escape(title)
    return "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                      f"<title>{t}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>", f"<h1>{t}</h1>",
                      *body, "</body>", "</html>", ""])


def html_table(headers: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """Rows of text as an HTML table, every cell escaped."""
    return tabulate([[html.escape(str(x)) for x in r] for r in rows], headers=[html.escape(h) for h in headers],
                    tablefmt="unsafehtml", disable_numparse=True, colalign=align)


def _table(t: Table) -> str:
    if not t.rows:
        return f'<p class="empty">{html.escape(t.empty)}</p>'
    return html_table(t.headers, t.rows, t.align)


def html_body(sections: list[Section]) -> str:
    """The sections as HTML: a heading each (its key as the anchor), items, captions and tables."""
    out = []
    for sec in sections:
        out.append(f'<h2 id="{html.escape(sec.key)}">{html.escape(sec.title)}</h2>')
        if sec.items:
            out.append("<ul>\n" + "\n".join(f"<li>{html.escape(i)}</li>" for i in sec.items) + "\n</ul>")
        for t in sec.tables:
            out.append(f'<p class="caption">{html.escape(t.caption)}</p>')
            out.append(_table(t))
        for n in sec.notes:
            out.append(f"<p>{html.escape(n)}</p>")
    return "\n".join(out)


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure_html(plots: "PlotSet") -> str:
    """The plots as ``<figure>`` elements with embedded PNGs, then why any plot is missing."""
    out = []
    for f in plots.figures:
        out.append(f'<figure id="plot-{html.escape(f.key)}"><h3>{html.escape(f.title)}</h3>'
                   f'<img src="{data_uri(f.path)}" alt="{html.escape(f.title)}">'
                   f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")
    if plots.missing:
        out.append("<p>Not drawn for this run:</p><ul>" + "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(why)}</li>" for k, why in plots.missing.items()) + "</ul>")
    return "\n".join(out)


def _configs(run: Run) -> str:
    out = []
    for label in run.servers:
        info = run.server(label)
        head = f"{label} ({info.server or '?'})" + (f": {info.version}" if info.version else "")
        body = [f"<pre>{html.escape(info.effective_config or 'not recorded')}</pre>"]
        if info.set:
            body.insert(0, "<p>Set by the matrix: " + html.escape(
                ", ".join(f"{k} {v}" for k, v in info.set.items())) + "</p>")
        if info.app:
            body.insert(0, f"<p>Application: <code>{html.escape(info.app)}</code></p>")
        python = info.raw.get("python") or {}
        if python.get("executable"):  # docs/results.md, servers.<label>.python
            body.insert(0, f"<p>Python {html.escape(str(python.get('version') or '?'))}: "
                           f"<code>{html.escape(python['executable'])}</code></p>")
        if info.notes:
            body.append("<p>Settings this server could not apply:</p><ul>"
                        + "".join(f"<li>{html.escape(n)}</li>" for n in info.notes) + "</ul>")
        if not info.available:
            body.insert(0, f"<p><b>Unavailable:</b> {html.escape(info.unavailable_reason)}</p>")
        out.append(f"<details><summary>{html.escape(head)}</summary>{''.join(body)}</details>")
    return "\n".join(out) or '<p class="empty">no servers recorded</p>'


def _catalog(run: Run) -> Mapping[str, Any]:
    """The conformance cases the run recorded; runs from before the catalog was recorded use today's cases."""
    found = run.catalog("conformance")
    if found:
        return found
    try:
        from suites.conformance.report import catalog

        return catalog()
    except Exception:  # no suites package beside the harness: verdicts only
        return {}


def conformance_matrix(run: Run) -> str:
    """Every conformance case (rows) x server (columns): verdict and status, the RFC section and the request."""
    servers = [s for s in run.servers if run.cases(s, "conformance")]
    if not servers:
        return '<p class="empty">the conformance suite did not run</p>'
    verdicts: dict[str, dict[str, tuple[str, str]]] = {}
    for s in servers:
        for c in run.cases(s, "conformance"):
            cid = run.case_id(s, c.name or "?") or (c.name or "?")
            v = c.properties.get("verdict") or ("fail" if c.outcome == "failed" else c.outcome or "?")
            verdicts.setdefault(cid, {})[s] = (v, c.properties.get("status") or "")
    cat = _catalog(run)
    head = "".join(f'<th class="srv">{html.escape(s)}</th>' for s in servers)
    rows = []
    for cid in sorted(verdicts, key=lambda k: (row_key(str((cat.get(k) or {}).get("row") or "~")), k)):
        info = cat.get(cid) or {}
        cells = []
        for s in servers:
            v, status = verdicts[cid].get(s, ("", ""))
            css = {"pass": "v-pass", "warn": "v-warn", "fail": "v-fail", "n/a": "v-na"}.get(v, "v-na")
            text = f"{v or '–'}" + (f" {status}" if status and status != "-" else "")
            cells.append(f'<td class="{css}">{html.escape(text)}</td>')
        request = info.get("request")
        req = (f'<details><summary>{len(request)} chars</summary><pre>{html.escape(request)}</pre></details>'
               if request else "–")
        rows.append(f"<tr><td><code>{html.escape(cid)}</code><br>{html.escape(info.get('title', ''))}</td>"
                    f"<td>{html.escape(info.get('rfc', ''))} {html.escape(info.get('level', ''))}</td>"
                    f"{''.join(cells)}<td class=\"req\">{req}</td></tr>")
    return ("<p class=\"caption\">Every case of suites/conformance: its verdict on each server (pass; warn = "
            "allowed but not preferred, or a SHOULD not met; fail = a MUST broken; n/a = the case's premise does "
            "not hold on that server) with the status code(s) answered, the RFC 9110/9112 section and requirement "
            "level, and the bytes sent (\\r\\n shown; &lt;read&gt; waits for an answer before sending on).</p>"
            f'<table class="conf"><thead><tr><th>case</th><th>RFC</th>{head}<th>request</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def render_report(run: Run | Mapping[str, Any], plots: "PlotSet", reference: str | None = None) -> str:
    """The whole page: headline, plots, tables, effective configurations, conformance matrix."""
    run = as_run(run)
    sections = build_sections(run, reference)
    doc, m = run.doc, run.matrix
    toc = ['<li><a href="#plots">Plots</a></li>']
    toc += [f'<li><a href="#{html.escape(s.key)}">{html.escape(s.title)}</a></li>' for s in sections]
    toc += ['<li><a href="#configs">Effective configurations</a></li>',
            '<li><a href="#conformance-matrix">Conformance matrix</a></li>']
    body = [f"<p>Matrix <b>{html.escape(str(m.get('name', '?')))}</b>: {html.escape(str(m.get('description', '')))}"
            f"<br>Command: <code>{html.escape(run.command_line)}</code><br>Status: {html.escape(str(doc.get('status')))}"
            f", started {html.escape(str(doc.get('started')))}, finished {html.escape(str(doc.get('finished')))}.</p>"]
    partial = partial_line(run)
    if partial:
        body.append(f'<p class="partial">{html.escape(partial)}</p>')
    body += ["<nav><ul>" + "".join(toc) + "</ul></nav>",
             '<h2 id="plots">Plots</h2>', figure_html(plots),
             html_body(sections),
             '<h2 id="configs">Effective configurations</h2>',
             "<p class=\"caption\">What each server ran with: our servers print every directive with its value "
             "(defaults included); Apache's is the httpd.conf written for the run; gunicorn's its settings.</p>",
             _configs(run),
             '<h2 id="conformance-matrix">Conformance matrix</h2>', conformance_matrix(run)]
    return html_document(f"mpm-harness: run {run.run_id}", body)
