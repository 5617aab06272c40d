"""A report as one self-contained HTML file: summary, table, failures and plots drawn by matplotlib.

Every image is a PNG embedded as a data URI, the style sheet is inline, and there is no script: the
file opens the same from a CI artifact, an e-mail or a folder without network. matplotlib is needed
for the plots only (`pip install "diffcheck[html]"`); the table (`table_html`, also what Jupyter
shows through `Report._repr_html_`) needs nothing.
"""

from __future__ import annotations

import base64
import datetime
import io
import math
from html import escape

from ._compare import AUTODIFF, FINITE, MISMATCH, SYMBOLIC, relative_digits
from ._fragment import failures_html, not_run_html, summary_html, table_html
from ._records import TABLE_PAIRS, PointResult, Report, pair_label
from .errors import UsageError

#: Agreement shown in the heatmap: -log10(relative error), capped here (float64 resolves ~15.7 digits).
MAX_DIGITS = 16.0

#: At most this many step sweeps are drawn per case, so that each curve stays readable.
MAX_CURVES = 8


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #d0d7de; }
.summary { font-size: 1.15em; font-weight: 600; }
.ok { color: #1a7f37; } .failed { color: #cf222e; }
table.diffcheck { border-collapse: collapse; font-size: 0.9em; }
table.diffcheck th, table.diffcheck td { padding: 0.2em 0.7em; border-bottom: 1px solid #d0d7de; text-align: left; }
table.diffcheck td.num { text-align: right; font-family: ui-monospace, monospace; }
ul.failures li { font-family: ui-monospace, monospace; font-size: 0.85em; margin: 0.3em 0; white-space: pre-wrap; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; }
.meta, .none { color: #59636e; }
"""


def require_matplotlib():
    """matplotlib, or a usage error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            'the HTML report draws its plots with matplotlib, which is not installed: pip install "diffcheck[html]"'
        ) from None
    return matplotlib


def digits(relative_error: float) -> float:
    """Agreement in decimal digits: -log10(relative error), between 0 and MAX_DIGITS (0 for nan)."""
    return relative_digits(relative_error, MAX_DIGITS)


# --- plots ----------------------------------------------------------------------------------


def _plain(text: str) -> str:
    # A "$" would start matplotlib's math mode; labels are names, never formulas.
    return text.replace("$", r"\$")


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)  # Agg draws without a display and without touching pyplot's global state
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _labels(points) -> list[str]:
    dtypes = {p.dtype for p in points}
    return [p.case + (f" ({p.dtype})" if len(dtypes) > 1 else "") for p in points]


def agreement(report: Report) -> tuple[list[str], list[str], list[list[float]], list[list[bool]]]:
    """Rows (cases, with the dtype when a report has several), columns (method pairs), the agreement
    in digits of the worst element over all the row's points and orders (nan: not compared), and
    whether any element broke the pair's error bound (a mismatch, whatever its digits)."""
    worst: dict[str, dict] = {}
    broken: dict[str, set] = {}
    for label, point in zip(_labels(report.points), report.points):
        row = worst.setdefault(label, {})
        for key, rel in point.worst().items():
            row[key] = max(row.get(key, 0.0), rel)
        broken.setdefault(label, set()).update(
            key
            for e in point.elements
            for key, err in e.errors.items()
            if e.verdict == MISMATCH and not err <= e.tolerances.get(key, math.inf)
        )
    matrix = [[digits(row[k]) if k in row else math.nan for k in TABLE_PAIRS] for row in worst.values()]
    flags = [[k in broken[label] for k in TABLE_PAIRS] for label in worst]
    return list(worst), [pair_label(k) for k in TABLE_PAIRS], matrix, flags


def precision_marks(report: Report) -> dict:
    """Per heatmap row (as `agreement` labels them): the avoidable precision loss with the most
    digits lost over the row's points (a `Precision` record); rows without one are absent."""
    marks: dict = {}
    for label, point in zip(_labels(report.points), report.points):
        for loss in point.imprecise:
            if label not in marks or loss.lost > marks[label].lost:
                marks[label] = loss
    return marks


def heatmap(report: Report) -> str | None:
    """The agreement heatmap (cases × method pairs) as a PNG data URI, or None with nothing compared;
    a pair that broke its error bound is outlined in red; autodiff's column of a case that loses
    avoidable precision is outlined in orange, with the digits the problem allows."""
    rows, columns, matrix, flags = agreement(report)
    marks = precision_marks(report)
    ad = TABLE_PAIRS.index((SYMBOLIC, AUTODIFF))
    if not any(not math.isnan(v) for row in matrix for v in row):
        return None
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    data = np.array(matrix, dtype=float)
    figure = Figure(figsize=(6.4, 1.4 + 0.28 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    cmap = colormaps["RdYlGn"].with_extremes(bad="#d0d7de")
    image = axes.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0, vmax=MAX_DIGITS, aspect="auto")
    axes.set_xticks(range(len(columns)), [_plain(c) for c in columns])
    axes.set_yticks(range(len(rows)), [_plain(r) for r in rows])
    axes.xaxis.tick_top()
    for (i, j), value in np.ndenumerate(data):
        dark = not math.isnan(value) and not 3 <= value <= 12.5  # the colour map's deep red and deep green
        text = "–" if math.isnan(value) else f"{value:.1f}"
        if flags[i][j]:
            text += " ✗"
            axes.add_patch(Rectangle((j - 0.47, i - 0.45), 0.94, 0.9, fill=False, edgecolor="#cf222e", linewidth=2.5))
        elif j == ad and rows[i] in marks:
            text += f" ⚠ of {marks[rows[i]].allowed:.1f}"
            axes.add_patch(Rectangle((j - 0.47, i - 0.45), 0.94, 0.9, fill=False, edgecolor="#bf8700", linewidth=2.5))
        axes.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    figure.colorbar(image, ax=axes, label="agreement (digits)", shrink=min(1.0, 8 / max(len(rows), 1)))
    return _png(figure)


def extrapolated_error(point: PointResult, sweep) -> float | None:
    """The relative error of diffcheck's own finite difference (Richardson-extrapolated from the
    chosen step) at the sweep's element, against the exact value; None when unknown or zero."""
    for element in point.elements:
        if element.name == sweep.element:
            rel = element.relative_errors().get((SYMBOLIC, FINITE))
            return rel if rel is not None and math.isfinite(rel) and rel > 0 else None
    return None


def sweep_plot(case: str, points: list[PointResult]) -> str | None:
    """The finite-difference error against step (log-log; the chosen step marked) of a case's
    recorded sweeps, as a PNG data URI, or None when none was recorded."""
    curves = [(p, s) for p in points for s in p.sweeps]
    if not curves:
        return None
    import numpy as np
    from matplotlib.figure import Figure

    # Fixed margins: every sweep plot has the same labels, and a constrained layout would double
    # the drawing time of a report with one plot per case.
    figure = Figure(figsize=(6.4, 4.2))
    figure.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.92)
    axes = figure.add_subplot()
    several_points = len({p.point for p, _ in curves}) > 1
    several_dtypes = len({p.dtype for p, _ in curves}) > 1
    drawn, extrapolated = 0, False
    for point, sweep in curves[:MAX_CURVES]:
        steps = np.asarray(sweep.steps, dtype=float)
        errors = np.asarray(sweep.errors, dtype=float)
        errors = np.where(np.isfinite(errors) & (errors > 0), errors, np.nan)  # log axes hold positives only
        keep = ~np.isnan(errors) & (steps > 0)
        if not keep.any():
            continue
        where = (point.point if several_points else "") + (f" ({point.dtype})" if several_dtypes else "")
        label = (f"{where.strip()}: " if where else "") + sweep.element
        (line,) = axes.loglog(steps[keep], errors[keep], marker=".", label=_plain(label))
        log_h, log_e = np.log10(steps[keep]), np.log10(errors[keep])
        order = np.argsort(log_h)
        at_chosen = 10 ** np.interp(math.log10(sweep.chosen), log_h[order], log_e[order])
        axes.axvline(sweep.chosen, color=line.get_color(), linestyle=":", linewidth=1)
        axes.plot([sweep.chosen], [at_chosen], marker="*", markersize=13, color=line.get_color(), markeredgecolor="k")
        estimate = extrapolated_error(point, sweep)
        if estimate is not None:
            axes.plot([sweep.chosen], [estimate], marker="D", markersize=7, color=line.get_color(), markeredgecolor="k")
            extrapolated = True
        drawn += 1
    if not drawn:
        return None
    axes.plot([], [], "k*", markersize=10, linestyle="none", label="central difference at the chosen step")
    if extrapolated:
        axes.plot([], [], "kD", markersize=6, linestyle="none", label="diffcheck's estimate (Richardson)")
    axes.set_xlabel("step h")
    axes.set_ylabel("|finite difference − exact| / |exact|")
    axes.set_title(_plain(f"{case}: finite-difference error against step"))
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def _number(x, spec: str) -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def _sweep_table(points: list[PointResult]) -> str:
    rows = [
        f"<tr><td>{escape(p.point)}</td><td>{escape(p.dtype)}</td><td>{escape(s.element)}</td>"
        f'<td class="num">{s.chosen:.1e}</td><td class="num">{s.best:.1e}</td>'
        f'<td class="num">{_number(min(filter(math.isfinite, s.errors), default=None), ".1e")}</td>'
        f'<td class="num">{_number(extrapolated_error(p, s), ".1e")}</td>'
        f'<td class="num">{_number(s.order, ".2f")}</td></tr>'
        for p in points
        for s in p.sweeps
    ]
    columns = ("point", "dtype", "element", "chosen step", "best step", "best error", "diffcheck's error", "order")
    head = "".join(f"<th>{h}</th>" for h in columns)
    return f'<table class="diffcheck"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _image(uri: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{escape(alt)}"></figure>'


# --- the page -------------------------------------------------------------------------------


def to_html(report: Report, *, title: str = "diffcheck report", interrupted: bool = False) -> str:
    """The whole report as one HTML page with its images embedded."""
    require_matplotlib()
    from . import __version__

    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        summary_html(report),
    ]
    if interrupted:
        parts.append('<p class="failed">Interrupted: this report is partial.</p>')
    parts.append(f'<p class="meta">diffcheck {escape(__version__)}, {escape(when)}</p>')
    parts += ["<h2>Results</h2>", table_html(report) if report.points else '<p class="none">No points checked.</p>']
    parts += [not_run_html(report)]
    parts += ["<h2>Failures</h2>", failures_html(report, limit=1000)]
    kinds = (("Kinks", report.kink_warnings(limit=1000)), ("Precision", report.precision_warnings(limit=1000)))
    for title, warnings in kinds:
        if warnings:
            heading, *lines = warnings
            parts += [f"<h2>{title}</h2><p>{escape(heading)}</p>", '<ul class="failures">']
            parts += [f"<li>{escape(line)}</li>" for line in lines] + ["</ul>"]

    parts.append("<h2>Agreement</h2>")
    uri = heatmap(report)
    if uri:
        parts.append(
            "<p>Agreement of each pair of methods in decimal digits, −log10(relative error) of the worst "
            f"element over the case's points and orders, capped at {MAX_DIGITS:g}; grey: not compared; "
            "outlined in red with ✗: the pair broke its error bound (a mismatch); outlined in orange with ⚠: "
            "autodiff agrees within its error model but lost digits the problem allows (of: the digits allowed).</p>"
        )
        parts.append(_image(uri, "agreement heatmap: digits per case and method pair"))
    else:
        parts.append('<p class="none">Nothing was compared.</p>')

    parts.append("<h2>Finite-difference error against step</h2>")
    parts.append(
        "<p>The relative error of a plain central difference against the exact value as the step shrinks: "
        "truncation error falls on the right (slope 2, the observed order), rounding error rises on the left. "
        "The star marks the step diffcheck starts from; its own estimate (diamond) removes the h² and h⁴ terms "
        "by Richardson extrapolation, so it lies below the curve there.</p>"
    )
    by_case: dict[str, list[PointResult]] = {}
    for point in report.points:
        by_case.setdefault(point.case, []).append(point)
    for case, points in by_case.items():
        parts.append(f"<h3>{escape(case)}</h3>")
        if not any(p.sweeps for p in points):
            parts.append('<p class="none">No step sweep recorded.</p>')
            continue
        uri = sweep_plot(case, points)
        if uri is None:
            parts.append('<p class="none">The recorded step sweeps have no finite error to draw.</p>')
        else:
            parts.append(_image(uri, f"{case}: finite-difference error against step"))
        count = sum(len(p.sweeps) for p in points)
        if count > MAX_CURVES:
            parts.append(f'<p class="none">{MAX_CURVES} of {count} sweeps drawn; the table lists all.</p>')
        parts.append(_sweep_table(points))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
