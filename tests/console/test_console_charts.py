"""The Service page's SVG charts: well-formed, named for screen readers, escaped, to scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from steadyvoice.console.charts import Bar, Span, bar_chart, gauge_bar, timeline
from steadyvoice.console.service_view import budget_chart, budget_words, duration, queue_chart
from steadyvoice.observability.slo_models import ErrorBudget, Objective

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def _rects(svg: ET.Element) -> list[dict[str, str]]:
    return [r.attrib for r in svg.iter(f"{SVG}rect")]


def test_a_chart_is_an_image_named_by_its_title_and_desc() -> None:
    svg = _parse(bar_chart("c1", "Queue <depth> & co", [Bar("a<b", 2, "2 jobs")]))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c1-t c1-d"
    assert svg.find(f"{SVG}title").text == "Queue <depth> & co"  # type: ignore[union-attr]
    assert svg.find(f"{SVG}desc").text == "a<b: 2 jobs"  # type: ignore[union-attr]
    assert "width" not in svg.attrib and svg.get("viewBox", "").startswith("0 0 320 ")
    assert "style" not in bar_chart("c1", "t", [Bar("a", 1, "1")])  # the CSP forbids it


def test_bars_share_one_scale_and_a_small_value_still_shows() -> None:
    svg = _parse(
        bar_chart("c", "t", [Bar("big", 10_000, ""), Bar("small", 1, ""), Bar("0", 0, "")])
    )
    fills = [float(r["width"]) for r in _rects(svg)][1::2]  # every second rect is a bar
    assert fills == [320.0, 2.0, 0.0]


def test_a_floor_zooms_and_says_so() -> None:
    markup = bar_chart("a", "t", [Bar("measured", 99.5, "")], floor=99, maximum=100, target=99.9)
    svg = _parse(markup)
    assert float(_rects(svg)[1]["width"]) == 160.0  # half-way from 99 to 100
    line = next(svg.iter(f"{SVG}line"))
    assert round(float(line.get("x1", "0"))) == 288
    assert "axis from 99" in markup


def test_the_gauge_is_clamped_and_coloured_by_what_is_left() -> None:
    for fraction, width, colour in ((0.8, 256.0, "#1e6b34"), (-0.5, 0.0, "#b3261e")):
        svg = _parse(gauge_bar("g", "Budget", fraction, "left"))
        bar = _rects(svg)[1]
        assert float(bar["width"]) == width and bar["fill"] == colour
    assert len(_rects(_parse(gauge_bar("g", "Budget", None, "unknown")))) == 1


def test_the_timeline_places_spans_and_draws_open_ones_to_the_end() -> None:
    end = datetime(2026, 3, 31, tzinfo=UTC)
    start = end - timedelta(days=30)
    spans = [
        Span("db", start + timedelta(days=15), start + timedelta(days=15, hours=1), "1 h"),
        Span("disk", end - timedelta(days=3), None, "open"),
    ]
    svg = _parse(timeline("t", "Incidents", start, end, spans))
    bars = _rects(svg)[1::2]
    assert float(bars[0]["x"]) == 160.0
    assert float(bars[1]["x"]) + float(bars[1]["width"]) == 320.0
    assert svg.find(f"{SVG}desc").text == "db: 1 h; disk: open"  # type: ignore[union-attr]


def test_queue_chart_names_every_lane_and_durations_read_as_words() -> None:
    svg = _parse(queue_chart({("queued", "batch"): 7, ("running", "interactive"): 1}))
    desc = svg.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert desc == (
        "interactive: waiting: 0; interactive: running: 1; batch: waiting: 7; batch: running: 0"
    )
    assert [duration(s) for s in (4.4, 250, 3600, 7500)] == [
        "4 s",
        "4 min 10 s",
        "1 h",
        "2 h 5 min",
    ]


def test_an_overspent_budget_reads_as_such_and_shows_an_empty_red_bar() -> None:
    spent = ErrorBudget(allowed=1.0, consumed=2, remaining=-1.0, remaining_fraction=-1.0)
    o = Objective(
        target=0.999, eligible=1000, good=998, bad=2, attained=0.998, met=False, budget=spent
    )
    assert budget_words("availability", o) == "availability: budget overspent, 2 bad of 1 allowed"
    svg = _parse(budget_chart("b", "availability", o))
    assert [(r["width"], r["fill"]) for r in _rects(svg)][1] == ("0.0", "#b3261e")
    assert svg.find(f"{SVG}desc").text == budget_words("availability", o)  # type: ignore[union-attr]
