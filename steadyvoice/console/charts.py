"""SVG charts drawn on the server: horizontal bars, a gauge bar and a timeline.

Pure functions from numbers to markup, so the Service page needs no chart library, no script
and no inline style (the CSP allows neither): colours are SVG presentation attributes. Each
chart is ``role="img"`` named by its ``<title>`` and described by a ``<desc>`` that says the
figures in words, so a screen reader hears what a sighted reader sees. The drawing has a fixed
``viewBox`` and no fixed size: it scales to its container, from 360 px phones up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup

WIDTH = 320
ROW = 34  # one bar: its label line, then the bar
FONT = 12
# Colours with at least 4.5:1 against white, so text drawn in them stays readable.
TONES = {
    "ok": "#1e6b34",
    "warn": "#8a5a00",
    "bad": "#b3261e",
    "info": "#1d4f91",
    "idle": "#5f6368",
}
TRACK = "#e3e5e8"
INK = "#1f2328"


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` sets its length, ``text`` is what is written beside it."""

    label: str
    value: float
    text: str
    tone: str = "info"


@dataclass(frozen=True)
class Span:
    """One interval on a timeline; ``end`` None: still open (drawn to the right edge)."""

    label: str
    start: datetime
    end: datetime | None
    text: str


def _frame(chart_id: str, title: str, desc: str, height: int, body: Sequence[Markup]) -> Markup:
    head = Markup(
        '<svg class="chart" id="{0}" role="img" aria-labelledby="{0}-t {0}-d" '
        'viewBox="0 0 {1} {2}" preserveAspectRatio="xMinYMin meet" '
        'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" '
        'font-size="{3}"><title id="{0}-t">{4}</title><desc id="{0}-d">{5}</desc>'
    ).format(chart_id, WIDTH, height, FONT, title, desc)
    return head + Markup("").join(body) + Markup("</svg>")


def _text(x: float, y: float, words: str, *, anchor: str = "start", fill: str = INK) -> Markup:
    return Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="{}">{}</text>').format(
        x, y, anchor, fill, words
    )


def _rect(x: float, y: float, w: float, h: float, fill: str) -> Markup:
    return Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>').format(
        x, y, max(w, 0.0), h, fill
    )


def _line(x1: float, y1: float, x2: float, y2: float, *, dashed: bool = False) -> Markup:
    dash = Markup(' stroke-dasharray="4 3"') if dashed else Markup("")
    return Markup(
        '<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="1.5"{}/>'
    ).format(x1, y1, x2, y2, INK, dash)


def _tone(name: str) -> str:
    return TONES.get(name, TONES["info"])


def describe(bars: Sequence[Bar]) -> str:
    """The bars in words, for the ``<desc>``."""
    return "; ".join(f"{b.label}: {b.text}" for b in bars) or "no data"


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    maximum: float | None = None,
    floor: float = 0.0,
    target: float | None = None,
    target_label: str = "objective",
    desc: str | None = None,
    empty: str = "No data yet.",
) -> Markup:
    """Horizontal bars on one scale, ``floor`` to ``maximum`` (default the largest value),
    each with its label above and its figure at the right; ``target`` draws a dashed line
    across them (e.g. the objective availability is measured against).

    A ``floor`` above 0 zooms in (99 % and 99.9 % look alike from 0); the axis then shows
    both ends, so the zoom is never hidden."""
    top = max([maximum or 0.0, *(b.value for b in bars), target or 0.0]) or 1.0
    span = (top - floor) or 1.0

    def x(value: float) -> float:
        return WIDTH * min(max((value - floor) / span, 0.0), 1.0)

    body: list[Markup] = []
    y = 0.0
    for bar in bars:
        body.append(_text(0, y + FONT, bar.label))
        body.append(_text(WIDTH, y + FONT, bar.text, anchor="end"))
        body.append(_rect(0, y + 17, WIDTH, 12, TRACK))
        # A value above the floor never vanishes: at least 2 units, so "1 of 10,000" shows.
        width = 0.0 if bar.value <= floor else max(2.0, x(bar.value))
        body.append(_rect(0, y + 17, width, 12, _tone(bar.tone)))
        y += ROW
    if not bars:
        body.append(_text(0, FONT + 4, empty))
        y = ROW
    words = desc or describe(bars) if bars else empty
    if target is not None and bars:
        tx = x(target)
        body.append(_line(tx, 0, tx, y, dashed=True))
        body.append(_text(tx, y + FONT + 2, target_label, anchor="end" if tx > 160 else "start"))
        y += FONT + 6
        words = f"{words}; {target_label}"
    if floor:
        body.append(_text(0, y + FONT + 2, f"axis from {floor:g}", fill=TONES["idle"]))
        body.append(_text(WIDTH, y + FONT + 2, f"to {top:g}", anchor="end", fill=TONES["idle"]))
        y += FONT + 6
    return _frame(chart_id, title, words, int(y) + 2, body)


def gauge_bar(
    chart_id: str, title: str, fraction: float | None, text: str, *, desc: str | None = None
) -> Markup:
    """One bar filled to ``fraction`` (clamped to 0..1; None: unknown), e.g. the error budget
    left. Its colour says how much is left: green above a half, amber above a tenth, red below."""
    body = [_rect(0, 4, WIDTH, 20, TRACK)]
    if fraction is not None:
        shown = min(max(fraction, 0.0), 1.0)
        tone = "ok" if shown > 0.5 else "warn" if shown > 0.1 else "bad"
        body.append(_rect(0, 4, WIDTH * shown, 20, _tone(tone)))
    body.append(_text(0, 44, text))
    return _frame(chart_id, title, desc or text, 50, body)


def timeline(
    chart_id: str,
    title: str,
    start: datetime,
    end: datetime,
    spans: Sequence[Span],
    *,
    desc: str | None = None,
) -> Markup:
    """``spans`` (e.g. incidents) placed on the window ``start``..``end``: one row each, its
    label and figure above a bar at its place in time; an axis with the window's ends below."""
    total = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return WIDTH * min(max((at - start).total_seconds() / total, 0.0), 1.0)

    body: list[Markup] = []
    y = 0.0
    for span in spans:
        x0, x1 = x(span.start), x(span.end or end)
        body.append(_text(0, y + FONT, span.label))
        body.append(_text(WIDTH, y + FONT, span.text, anchor="end"))
        body.append(_rect(0, y + 17, WIDTH, 12, TRACK))
        tone = "bad" if span.end is None else "warn"
        body.append(_rect(x0, y + 17, max(x1 - x0, 3.0), 12, _tone(tone)))
        y += ROW
    if not spans:
        body.append(_text(0, FONT + 4, "No incidents in this window."))
        y = ROW
    body.append(_line(0, y, WIDTH, y))
    body.append(_text(0, y + FONT + 4, f"{start:%d %b}"))
    body.append(_text(WIDTH, y + FONT + 4, f"{end:%d %b %H:%M} UTC", anchor="end"))
    words = desc or "; ".join(f"{s.label}: {s.text}" for s in spans) or "no incidents"
    return _frame(chart_id, title, words, int(y) + FONT + 8, body)
