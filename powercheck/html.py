"""Self-contained HTML pages: escaping, the page shell and an inline SVG line chart (no scripts, no
external resources, so a page renders the same from a file, the service or an archive)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

STYLE = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 24px; color: #1d2327; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 6px 0; } h2 { font-size: 17px; margin: 22px 0 8px 0; }
table { border-collapse: collapse; margin: 4px 0; font-size: 13px; }
th, td { border: 1px solid #c9ced3; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 4px 12px; border-radius: 4px; font-weight: bold; color: #fff; }
.auto_approve { background: #1e7d32; } .approved_with_conditions { background: #b26a00; }
.escalate { background: #b3261e; } .reject_incomplete, .request_info { background: #5f6368; }
tr.pass td.status { background: #d7f0d9; } tr.fail td.status { background: #f8d3d0; }
tr.not_evaluated td.status { background: #fdecc8; }
tr.binding { outline: 2px solid #1a56a6; } .tag { font-size: 11px; color: #1a56a6; font-weight: bold; }
.meta { color: #5f6368; font-size: 12px; } ul { margin: 4px 0 4px 18px; padding: 0; }
svg text { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 11px; }
"""


def esc(value: object) -> str:
    """HTML-escaped text of a value (None as an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def number(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits ('' for None/NaN, '∞' for infinity)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}"


def page(title: str, body: str, lang: str) -> str:
    """A complete HTML document."""
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(lang)}"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] | None = None) -> str:
    """A table of already escaped cells (a cell starting with '<td' is used as is)."""
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row)
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def kv_table(rows: Sequence[tuple[str, str]], element_id: str = "") -> str:
    """A two-column table of (label, value) pairs, both already escaped; rows with an empty value are left out."""
    ident = f' id="{element_id}"' if element_id else ""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows if v)
    return f"<table{ident}>{body}</table>"


@dataclass(frozen=True)
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str
    dash: str = ""
    markers: bool = True
    hover: Sequence[str] | None = None
    """Tooltip per point (escaped here)."""
    line: bool = True
    """Join the points with a line (False: markers only, e.g. points of a branched feeder by distance)."""


@dataclass(frozen=True)
class HLine:
    label: str
    y: float
    color: str


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart(
    series: Sequence[Series],
    hlines: Sequence[HLine] = (),
    *,
    x_label: str,
    y_label: str,
    width: int = 760,
    height: int = 320,
    x_min: float | None = 0.0,
) -> str:
    """An inline SVG chart of lines over a common x axis, with horizontal limit lines and a legend."""
    xs = [float(v) for s in series for v in s.x if math.isfinite(v)]
    ys = [float(v) for s in series for v in s.y if math.isfinite(v)] + [h.y for h in hlines if math.isfinite(h.y)]
    if not xs or not ys:
        return ""
    x0 = min(xs) if x_min is None else min(x_min, min(xs))
    x1 = max(xs) if max(xs) > x0 else x0 + 1.0
    y0, y1 = min(ys), max(ys)
    pad = 0.08 * (y1 - y0) if y1 > y0 else 0.01
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 64, 16, 16, 44
    legend_h = 18 * ((len(series) + sum(math.isfinite(h.y) for h in hlines) + 1) // 2)
    w, h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + legend_h}" '
        f'viewBox="0 0 {width} {height + legend_h}" role="img">',
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fbfcfd" stroke="#9aa3ab"/>',
    ]
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#e3e7ea"/>')
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:.4g}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + h}" stroke="#e3e7ea"/>')
        out.append(f'<text x="{px(t):.1f}" y="{top + h + 16}" text-anchor="middle">{t:.4g}</text>')
    out.append(f'<text x="{left + w / 2:.1f}" y="{top + h + 34}" text-anchor="middle">{esc(x_label)}</text>')
    out.append(
        f'<text transform="translate(14 {top + h / 2:.1f}) rotate(-90)" text-anchor="middle">{esc(y_label)}</text>'
    )
    for hl in hlines:
        if math.isfinite(hl.y):
            out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(hl.y):.1f}" y2="{py(hl.y):.1f}" '
                       f'stroke="{hl.color}" stroke-width="1.5" stroke-dasharray="2 3"/>')  # fmt: skip
    for s in series:
        pts = [(px(float(x)), py(float(y))) for x, y in zip(s.x, s.y, strict=True) if math.isfinite(y)]
        if not pts:
            continue
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        if s.line:
            out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        if s.markers or not s.line:
            for i, (x, y) in enumerate(pts):
                tip = f"<title>{esc(s.hover[i])}</title>" if s.hover else ""
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">{tip}</circle>')
    items = [(s.label, s.color, s.dash) for s in series]
    items += [(h.label, h.color, "2 3") for h in hlines if math.isfinite(h.y)]
    for i, (text, color, dash) in enumerate(items):
        lx = left + (i % 2) * (w / 2)
        ly = height + 18 * (i // 2) + 4
        d = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{lx:.1f}" x2="{lx + 26:.1f}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="{color}" '
                   f'stroke-width="2"{d}/><text x="{lx + 32:.1f}" y="{ly + 4:.1f}">{esc(text)}</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)
