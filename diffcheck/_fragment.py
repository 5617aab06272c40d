"""A report's table, summary and failures as an HTML fragment: what a notebook shows
(`Report._repr_html_`) and the HTML report's own table. It reads a report's public methods only
and imports nothing of diffcheck's, so the records can use it without depending on a renderer."""

from __future__ import annotations

from html import escape

_VERDICT_COLOURS = {"agree": "#1a7f37", "mismatch": "#cf222e", "error": "#8250df"}


def table_html(report) -> str:
    """The report's table (`Report.columns` and `Report.rows`) as HTML, verdicts coloured inline so
    that it reads the same inside a notebook, which has no style sheet of ours."""
    head = report.columns()
    numeric = set(range(3, len(head) - 1))
    out = ['<table class="diffcheck">', "<thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row, point in zip(report.rows(), report.points):
        cells = [
            f'<td class="num">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>" for i, c in enumerate(row)
        ]
        colour = _VERDICT_COLOURS.get(point.status, "inherit")
        cells[-1] = f'<td style="color: {colour}; font-weight: 600">{escape(row[-1])}</td>'
        losses = point.imprecise
        if losses:  # the verdict says, on hover, which digits were lost and where
            tip = escape("\n".join(x.describe() for x in losses), quote=True)
            cells[-1] = f'<td title="{tip}" style="color: {colour}; font-weight: 600">{escape(row[-1])} ⚠</td>'
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def failures_html(report, limit: int) -> str:
    lines = report.failures(limit=limit)
    if not lines:
        return '<p class="none">No failures.</p>'
    return '<ul class="failures">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


def summary_html(report) -> str:
    verdict = "ok" if report.ok and report.points else "failed"
    return f'<p class="summary {verdict}">{escape(report.summary())}</p>'


def not_run_html(report) -> str:
    """The methods that did not run, with their reasons (the table's "-")."""
    lines = report.not_run(limit=1000)[1:]
    if not lines:
        return ""
    return '<ul class="not-run">' + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


def report_html_fragment(report, limit: int = 20) -> str:
    """Summary, table, the methods that did not run, and failures: a report as a notebook shows it."""
    parts = [summary_html(report), table_html(report), not_run_html(report), failures_html(report, limit)]
    return "\n".join(p for p in parts if p)
