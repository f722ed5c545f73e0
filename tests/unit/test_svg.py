"""The SVG helper: pure functions, well-formed markup, escaped text, coordinates in view."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from app.web.svg import (
    ForestRow,
    Point,
    Series,
    forest_plot,
    format_tick,
    line_chart,
    linear_scale,
    nice_ticks,
)

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def view_box(root: ET.Element) -> tuple[float, float]:
    _, _, w, h = map(float, root.get("viewBox").split())
    return w, h


def all_coordinates(svg: str) -> list[tuple[float, float]]:
    pairs = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", svg)]
    for tag in re.findall(r"<(?:line|text|rect|circle)[^>]*>", svg):
        attrs = dict(re.findall(r'(\w+)="(-?[\d.]+)"', tag))
        for xk, yk in (("x1", "y1"), ("x2", "y2"), ("x", "y"), ("cx", "cy")):
            if xk in attrs and yk in attrs:
                pairs.append((float(attrs[xk]), float(attrs[yk])))
    return pairs


def line(points, name="a"):
    return Series(name, tuple(Point(x, y, lo, hi) for x, y, lo, hi in points))


def test_linear_scale_maps_ends_and_a_flat_domain_to_the_middle():
    scale = linear_scale((2.0, 4.0), (100.0, 0.0))
    assert scale(2.0) == 100.0 and scale(4.0) == 0.0 and scale(3.0) == 50.0
    assert linear_scale((1.0, 1.0), (0.0, 10.0))(1.0) == 5.0


@pytest.mark.parametrize("low, high", [(0.0, 0.93), (-3.2, 17.0), (0.101, 0.137),
                                       (1e-6, 3e-6), (-250.0, -1.0), (5.0, 5.0), (4.0, 1.0)])
def test_nice_ticks_cover_the_range_with_round_steps(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= min(low, high) and ticks[-1] >= max(low, high)
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1.0, 2.0, 5.0)
    assert 2 <= len(ticks) <= 12


def test_nice_ticks_refuse_infinite_bounds():
    with pytest.raises(ValueError):
        nice_ticks(0.0, math.inf)


def test_format_tick_has_no_float_noise():
    assert format_tick(0.1 + 0.2) == "0.3" and format_tick(1e-15) == "0"


def test_line_chart_draws_one_line_and_band_per_series_inside_the_view():
    a = line([(0, 1.0, 0.5, 1.5), (1, 2.0, 1.5, 2.5), (2, 1.5, 1.0, 2.0)], "champion")
    b = line([(0, 0.5, 0.0, 1.0), (1, 0.7, 0.2, 1.2), (2, 0.9, 0.4, 1.4)], "bandit")
    svg = line_chart([a, b], title="t", x_label=str)
    root = parse(svg)
    assert len(root.findall(".//s:polyline", NS)) == 2
    assert len(root.findall(".//s:polygon", NS)) == 2
    w, h = view_box(root)
    assert all(0 <= x <= w and 0 <= y <= h for x, y in all_coordinates(svg))
    legend = [t.text for t in root.findall(".//s:text", NS)]
    assert "champion" in legend and "bandit" in legend


def test_line_chart_higher_values_are_drawn_higher():
    svg = line_chart([line([(0, 0.0, None, None), (1, 10.0, None, None)])], title="t",
                     x_label=str)
    points = parse(svg).find(".//s:polyline", NS).get("points").split()
    (x0, y0), (x1, y1) = (map(float, p.split(",")) for p in points)
    assert x1 > x0 and y1 < y0


def test_missing_values_break_the_line_and_a_lone_point_is_a_dot():
    s = line([(0, 1.0, None, None), (1, None, None, None), (2, 2.0, None, None),
              (3, 2.5, None, None)])
    root = parse(line_chart([s], title="t", x_label=str))
    assert len(root.findall(".//s:polyline", NS)) == 1
    assert len(root.findall(".//s:circle", NS)) == 1
    assert root.findall(".//s:polygon", NS) == []


def test_empty_chart_says_so():
    root = parse(line_chart([line([(0, None, None, None)])], title="t", x_label=str))
    assert [t.text for t in root.findall(".//s:text", NS)] == ["No data yet"]


def test_text_from_data_is_escaped():
    evil = '<script>alert("x")</script> & co'
    svg = line_chart([line([(0, 1.0, None, None), (1, 2.0, None, None)], evil)],
                     title=evil, x_label=lambda _: evil)
    assert "<script>" not in svg
    root = parse(svg)  # still well-formed
    assert evil in [t.text for t in root.findall(".//s:text", NS)]
    assert root.get("aria-label") == evil
    forest = forest_plot([ForestRow(evil, 0.1, 0.0, 0.2)], title=evil, value_label=str)
    assert "<script>" not in forest and parse(forest) is not None


def test_forest_plot_puts_zero_between_the_whiskers_it_should():
    rows = [ForestRow("a", 0.1, -0.05, 0.25, emphasis=True), ForestRow("b", -0.2, -0.3, -0.1),
            ForestRow("c", None, None, None), ForestRow("d", 0.05, None, None)]
    svg = forest_plot(rows, title="lift", value_label=lambda v: f"{v:+.0%}")
    root = parse(svg)
    zero = float(root.find(".//s:line[@class='zero']", NS).get("x1"))
    whiskers = root.findall(".//s:line[@class='ci']", NS)
    assert len(whiskers) == 2
    a, b = ((float(w.get("x1")), float(w.get("x2"))) for w in whiskers)
    assert a[0] < zero < a[1]  # interval of a crosses zero
    assert b[1] < zero  # b is entirely below zero
    texts = [t.text for t in root.findall(".//s:text", NS)]
    assert "n/a" in texts and any("no interval" in t for t in texts)
    assert len(root.findall(".//s:rect[@class='estimate']", NS)) == 3
    w, h = view_box(root)
    assert all(0 <= x <= w and 0 <= y <= h for x, y in all_coordinates(svg))


def test_forest_plot_without_estimates():
    root = parse(forest_plot([ForestRow("a", None, None, None)], title="t", value_label=str))
    assert [t.text for t in root.findall(".//s:text", NS)] == ["No estimates yet"]
