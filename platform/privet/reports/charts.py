"""Small inline SVG charts for the HTML and PDF reports (no plotting library, no network).

Every text that goes into the SVG is XML-escaped here; the result is safe to embed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0969da")
_FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="11"'


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    t = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{t}">'
        f"<title>{t}</title>" + "".join(body) + "</svg>"
    )


def _legend_entry(x: int, colour: str, name: str) -> str:
    """A colour swatch and its series name in the legend row at the top."""
    return (
        f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>'
        f'<text x="{x + 14}" y="17" {_FONT}>{escape(name)}</text>'
    )


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart with a y axis from 0 to ``ymax`` (10% headroom above the
    data): the step and line charts share its axes, ticks and label."""

    left: int
    top: int
    pw: int
    ph: int
    ymax: float

    def y(self, v: float) -> float:
        return self.top + self.ph - v / self.ymax * self.ph

    def axes(self, x_ticks: str, y_label: str) -> list[str]:
        """Both axes, three y ticks (0, half, the data's top), the chart's own x ticks
        (``x_ticks``, SVG text) and the y label."""
        left, top, pw, ph = self.left, self.top, self.pw, self.ph
        body = [
            f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#555"/>'
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#555"/>'
        ]
        for frac in (0.0, 0.5, 1.0):
            v = self.ymax / 1.1 * frac
            body.append(
                f'<text x="{left - 4}" y="{self.y(v) + 4:.1f}" text-anchor="end" {_FONT}>'
                f"{_num(v)}</text>"
            )
        body.append(x_ticks)
        if y_label:
            body.append(f'<text x="4" y="{top - 10}" {_FONT}>{escape(y_label)}</text>')
        return body


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 640,
    unit: str = "",
) -> str:
    """Horizontal stacked bars: one row per label, one colour per series."""
    row_h, left, right, top = 22, 220, 60, 30
    height = top + row_h * max(1, len(labels)) + 30
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    peak = max(totals) if totals and max(totals) > 0 else 1.0
    scale = (width - left - right) / peak
    body = []
    x = left
    for k, (name, _values) in enumerate(series):  # legend
        body.append(_legend_entry(x, PALETTE[k % len(PALETTE)], name))
        x += 24 + 7 * len(name)
    for i, label in enumerate(labels):
        y = top + i * row_h
        body.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" {_FONT}>'
            f"{escape(label[:34])}</text>"
        )
        x0 = float(left)
        for k, (_name, values) in enumerate(series):
            w = values[i] * scale
            if w > 0:
                body.append(
                    f'<rect x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                    f'fill="{PALETTE[k % len(PALETTE)]}"/>'
                )
            x0 += w
        body.append(
            f'<text x="{x0 + 4:.1f}" y="{y + 14}" {_FONT}>{_num(totals[i])}{escape(unit)}</text>'
        )
    if not labels:
        body.append(f'<text x="{left}" y="{top + 14}" {_FONT}>no data</text>')
    return _svg(width, height, title, body)


def step_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[datetime, float]], float | None]],
    *,
    width: int = 640,
    height: int = 260,
    y_label: str = "",
) -> str:
    """Cumulative values over time as step lines; each series may carry a limit (dashed)."""
    left, right, top, bottom = 50, 20, 30, 40
    points = [p for _n, pts, _l in series for p in pts]
    limits = [lim for _n, _p, lim in series if lim is not None]
    body: list[str] = []
    if not points:
        body.append(f'<text x="{left}" y="{top + 20}" {_FONT}>no data</text>')
        return _svg(width, height, title, body)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    span = (t1 - t0) or 1.0
    ymax = max([p[1] for p in points] + limits + [1e-9]) * 1.1
    pw, ph = width - left - right, height - top - bottom
    frame = _Frame(left, top, pw, ph, ymax)
    sy = frame.y

    def sx(t: datetime) -> float:
        return left + (t.timestamp() - t0) / span * pw

    body += frame.axes(
        f'<text x="{left}" y="{height - 8}" {_FONT}>'
        f"{escape(min(p[0] for p in points).strftime('%Y-%m-%d %H:%M'))}</text>"
        f'<text x="{left + pw}" y="{height - 8}" text-anchor="end" {_FONT}>'
        f"{escape(max(p[0] for p in points).strftime('%Y-%m-%d %H:%M'))}</text>",
        y_label,
    )
    lx = left + 10
    for k, (name, pts, limit) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        if pts:
            path = [f"M{left:.1f},{sy(0):.1f}"]
            prev = 0.0
            for t, v in pts:
                path.append(f"L{sx(t):.1f},{sy(prev):.1f}L{sx(t):.1f},{sy(v):.1f}")
                prev = v
            path.append(f"L{left + pw:.1f},{sy(prev):.1f}")
            body.append(
                f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        if limit is not None:
            body.append(
                f'<line x1="{left}" y1="{sy(limit):.1f}" x2="{left + pw}" y2="{sy(limit):.1f}" '
                f'stroke="{colour}" stroke-dasharray="4 3"/>'
            )
        body.append(_legend_entry(lx, colour, name))
        lx += 24 + 7 * len(name)
    return _svg(width, height, title, body)


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def line_chart(
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    width: int = 640,
    height: int = 220,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """One series of (x, y) as a polyline, axes from 0 (training curves: loss or ε per step)."""
    left, right, top, bottom = 50, 20, 30, 40
    body: list[str] = []
    if not points:
        body.append(f'<text x="{left}" y="{top + 20}" {_FONT}>no data yet</text>')
        return _svg(width, height, title, body)
    xmax = max(max(p[0] for p in points), 1e-9)
    ymax = max(max(p[1] for p in points), 1e-9) * 1.1
    pw, ph = width - left - right, height - top - bottom
    frame = _Frame(left, top, pw, ph, ymax)
    sy = frame.y

    def sx(x: float) -> float:
        return left + x / xmax * pw

    body += frame.axes(
        f'<text x="{left}" y="{height - 8}" {_FONT}>0</text>'
        f'<text x="{left + pw}" y="{height - 8}" text-anchor="end" {_FONT}>{_num(xmax)}</text>'
        f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" {_FONT}>'
        f"{escape(x_label)}</text>",
        y_label,
    )
    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    body.append(f'<polyline points="{line}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    return _svg(width, height, title, body)
