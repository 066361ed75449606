"""The viewer's per-suite chart as inline SVG: pass rates of both models and the paired delta with its 95% interval.

Server-rendered, so it reads without JavaScript. Every value is also written as
text beside its mark: the chart does not rely on colour or on reading a bar's length.
Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from markupsafe import Markup, escape

__all__ = ["suite_svg"]

_W = 1200
_ROW = 46
_TOP = 34
_LABEL_W = 230
_RATE_X, _RATE_W = 240, 340  # pass-rate panel (value labels to its right)
_DELTA_X, _DELTA_W = 690, 250  # delta panel (value labels to its right)
CANDIDATE, BASELINE, WORSE, BETTER, NEUTRAL = "#0072B2", "#E69F00", "#D55E00", "#009E73", "#6b6b6b"


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _pt(v: float) -> str:
    return f"{v * 100:+.1f}".replace("-", "−")


def _delta_scale(suites: Sequence[Any]) -> float:
    """Return the delta axis' half-width: the largest |interval end|, at least 10 points, rounded up to 10."""
    ends = [abs(x) for s in suites if s.pass_rate.paired for x in (s.pass_rate.paired.ci_low, s.pass_rate.paired.ci_high)]
    top = max([0.1, *ends])
    return min(1.0, -(-top * 10 // 1) / 10)


def _axes(height: int, scale: float) -> list[str]:
    out = [f'<text x="{_RATE_X}" y="14" class="h">pass rate: <tspan fill="{CANDIDATE}">■</tspan> candidate '
           f'<tspan fill="{BASELINE}">■</tspan> baseline</text>',
           f'<text x="{_DELTA_X}" y="14" class="h">Δ candidate − baseline, 95% CI (points)</text>']
    for frac in (0, 0.5, 1):
        x = _RATE_X + frac * _RATE_W
        out.append(f'<line x1="{x:.0f}" y1="{_TOP - 8}" x2="{x:.0f}" y2="{height - 14}" class="grid"/>'
                   f'<text x="{x:.0f}" y="{height - 2}" class="tick">{frac * 100:.0f}%</text>')
    for frac in (-1, 0, 1):
        x = _DELTA_X + (frac + 1) / 2 * _DELTA_W
        tick = f"{frac * scale * 100:+.0f}".replace("-", "−") if frac else "0"
        out.append(f'<line x1="{x:.0f}" y1="{_TOP - 8}" x2="{x:.0f}" y2="{height - 14}" class="{"zero" if frac == 0 else "grid"}"/>'
                   f'<text x="{x:.0f}" y="{height - 2}" class="tick">{tick}</text>')
    return out


def _rate_bars(y: float, s: Any) -> list[str]:
    out = []
    for k, (v, colour, who) in enumerate(((s.pass_rate.candidate, CANDIDATE, "candidate"), (s.pass_rate.baseline, BASELINE, "baseline"))):
        top = y + 4 + k * 17
        w = 0 if v is None else v * _RATE_W
        out.append(f'<rect x="{_RATE_X}" y="{top:.0f}" width="{w:.1f}" height="14" fill="{colour}"><title>{who} {_pct(v)}</title></rect>'
                   f'<text x="{_RATE_X + w + 4:.1f}" y="{top + 11:.0f}" class="v">{who[0].upper()} {_pct(v)}</text>')
    return out


def _delta_mark(y: float, s: Any, scale: float) -> list[str]:
    p = s.pass_rate.paired
    mid = y + _ROW / 2 - 2
    if p is None:
        return [f'<text x="{_DELTA_X + _DELTA_W / 2 + 6:.0f}" y="{mid + 4:.0f}" class="v">no paired interval</text>']

    def x(v: float) -> float:
        return _DELTA_X + (max(-scale, min(scale, v)) / scale + 1) / 2 * _DELTA_W

    colour, word = (WORSE, "worse") if p.ci_high < 0 else (BETTER, "better") if p.ci_low > 0 else (NEUTRAL, "no clear change")
    label = f"{_pt(p.estimate)} [{_pt(p.ci_low)}, {_pt(p.ci_high)}] {word}"
    lo, hi = x(p.ci_low), x(p.ci_high)
    stroke = f'stroke="{colour}" stroke-width'
    return [f'<g><title>{escape(s.name)}: Δ {label}, n={p.n}</title>'
            f'<line x1="{lo:.1f}" y1="{mid:.0f}" x2="{hi:.1f}" y2="{mid:.0f}" {stroke}="3"/>'
            f'<line x1="{lo:.1f}" y1="{mid - 6:.0f}" x2="{lo:.1f}" y2="{mid + 6:.0f}" {stroke}="2"/>'
            f'<line x1="{hi:.1f}" y1="{mid - 6:.0f}" x2="{hi:.1f}" y2="{mid + 6:.0f}" {stroke}="2"/>'
            f'<circle cx="{x(p.estimate):.1f}" cy="{mid:.0f}" r="5" fill="{colour}"/></g>'
            f'<text x="{_DELTA_X + _DELTA_W + 8}" y="{mid + 4:.0f}" class="v">{label}</text>']


def suite_svg(suites: Sequence[Any]) -> Markup:
    """Return the chart for ``suites`` (SuiteSummary objects), or '' without a suite that has a pass rate."""
    rows = [s for s in suites if s.pass_rate.candidate is not None or s.pass_rate.baseline is not None]
    if not rows:
        return Markup("")
    height = _TOP + _ROW * len(rows) + 18
    scale = _delta_scale(rows)
    parts = [f'<svg class="chart" viewBox="0 0 {_W} {height}" role="img" aria-labelledby="chart-title" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Pass rate per suite and the paired change with its '
             f'95% interval</title>', *_axes(height, scale)]
    for i, s in enumerate(rows):
        y = _TOP + i * _ROW
        name = str(s.name) if len(str(s.name)) <= 28 else str(s.name)[:27] + "…"
        parts.append(f'<text x="{_LABEL_W - 8}" y="{y + _ROW / 2 + 2:.0f}" class="name" text-anchor="end">{escape(name)}'
                     f'<title>{escape(s.name)} (n={s.n})</title></text>')
        parts += _rate_bars(y, s) + _delta_mark(y, s, scale)
    parts.append("</svg>")
    return Markup("".join(parts))  # every text from the results is escaped above
