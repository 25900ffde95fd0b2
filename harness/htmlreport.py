"""The self-contained HTML report of one run: ``report.html`` (docs/report.md).

One page, readable without ``run.json`` or any other file: the plots are
PNGs embedded as ``data:`` URIs, the CSS is inline, there is no script.  In
order: the run's headline (matrix, command, status), the plots
(:mod:`harness.plots`), every table of :mod:`harness.report` (environment
first), each server's effective configuration and the settings it could not
apply, and the conformance matrix: every case's verdict per server beside
the RFC section it checks and the exact bytes it sends.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .plots import PlotSet
from .report import CSS, RunView, build_sections, command_line, html_body, partial_line, row_key

__all__ = ["render_report", "figure_html", "conformance_matrix"]

EXTRA_CSS = """
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


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure_html(plots: PlotSet) -> str:
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


def _configs(run: RunView) -> str:
    out = []
    for label in run.servers:
        info = (run.doc.get("servers") or {}).get(label) or {}
        head = f"{label} ({info.get('server', '?')})"
        if info.get("version"):
            head += f": {info['version']}"
        body = [f"<pre>{html.escape(info.get('effective_config') or 'not recorded')}</pre>"]
        if info.get("set"):
            body.insert(0, "<p>Set by the matrix: " + html.escape(
                ", ".join(f"{k} {v}" for k, v in info["set"].items())) + "</p>")
        if info.get("app"):
            body.insert(0, f"<p>Application: <code>{html.escape(info['app'])}</code></p>")
        if info.get("notes"):
            body.append("<p>Settings this server could not apply:</p><ul>"
                        + "".join(f"<li>{html.escape(str(n))}</li>" for n in info["notes"]) + "</ul>")
        if info.get("available") is False:
            body.insert(0, f"<p><b>Unavailable:</b> {html.escape(info.get('unavailable_reason') or '')}</p>")
        out.append(f"<details><summary>{html.escape(head)}</summary>{''.join(body)}</details>")
    return "\n".join(out) or '<p class="empty">no servers recorded</p>'


def _catalog(doc: dict) -> dict[str, dict]:
    """The conformance cases the run recorded; runs from before the catalog was recorded use today's cases."""
    found = (doc.get("catalog") or {}).get("conformance")
    if found:
        return found
    try:
        from suites.conformance.report import catalog

        return catalog()
    except Exception:  # no suites package beside the harness: verdicts only
        return {}


def conformance_matrix(run: RunView) -> str:
    """Every conformance case (rows) x server (columns): verdict and status, the RFC section and the request."""
    servers = [s for s in run.servers if run.cases(s, "conformance")]
    if not servers:
        return '<p class="empty">the conformance suite did not run</p>'
    verdicts: dict[str, dict[str, tuple[str, str]]] = {}
    for s in servers:
        for c in run.cases(s, "conformance"):
            cid = run.case_id(s, c.get("name") or "?") or (c.get("name") or "?")
            props = c.get("properties") or {}
            v = props.get("verdict") or ("fail" if c.get("outcome") == "failed" else c.get("outcome") or "?")
            verdicts.setdefault(cid, {})[s] = (v, props.get("status") or "")
    cat = _catalog(run.doc)
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


def render_report(doc: dict, plots: PlotSet, reference: str | None = None) -> str:
    """The whole page: headline, plots, tables, effective configurations, conformance matrix."""
    run = RunView(doc, reference)
    sections = build_sections(doc, reference)
    m = doc.get("matrix") or {}
    title = f"mpm-harness: run {doc.get('run_id') or '?'}"
    toc = ['<li><a href="#plots">Plots</a></li>']
    toc += [f'<li><a href="#{html.escape(s.key)}">{html.escape(s.title)}</a></li>' for s in sections]
    toc += ['<li><a href="#configs">Effective configurations</a></li>',
            '<li><a href="#conformance-matrix">Conformance matrix</a></li>']
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>\n{CSS}\n{EXTRA_CSS}\n</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>Matrix <b>{html.escape(str(m.get('name', '?')))}</b>: {html.escape(str(m.get('description', '')))}"
             f"<br>Command: <code>{html.escape(command_line(doc))}</code><br>Status: {html.escape(str(doc.get('status')))}"
             f", started {html.escape(str(doc.get('started')))}, finished {html.escape(str(doc.get('finished')))}.</p>"]
    partial = partial_line(doc)
    if partial:
        parts.append(f'<p class="partial">{html.escape(partial)}</p>')
    parts += ["<nav><ul>" + "".join(toc) + "</ul></nav>",
              '<h2 id="plots">Plots</h2>', figure_html(plots),
              html_body(sections),
              '<h2 id="configs">Effective configurations</h2>',
              "<p class=\"caption\">What each server ran with: our servers print every directive with its value "
              "(defaults included); Apache's is the httpd.conf written for the run; gunicorn's its settings.</p>",
              _configs(run),
              '<h2 id="conformance-matrix">Conformance matrix</h2>', conformance_matrix(run),
              "</body>", "</html>", ""]
    return "\n".join(parts)
