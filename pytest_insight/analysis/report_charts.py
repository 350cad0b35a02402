"""The report's charts: Vega-Lite specifications rendered to SVG on this machine.

``vl-convert-python`` (the ``report`` extra) runs the Vega-Lite compiler and
renderer in-process, with no browser and no network, and returns plain SVG.
The page then embeds SVG only: no charting JavaScript to ship (the Vega
runtime inlined would be about 900 KB), nothing to fetch, and it reads the
same in a browser, a mail client or a CI artifact viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_insight.analysis.trends import DayTrend
from pytest_insight.errors import DependencyError

__all__ = ["duration_chart", "pass_rate_chart", "render_svg", "sparkline"]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_WIDTH = 640


def render_svg(spec: dict[str, Any]) -> str:
    """Render a Vega-Lite ``spec`` to an SVG document.

    Raises:
        DependencyError: vl-convert-python is not installed.
    """
    try:
        import vl_convert
    except ImportError as exc:
        raise DependencyError(
            "insight report needs vl-convert-python: pip install 'pytest-insight[report]'"
        ) from exc
    svg: str = vl_convert.vegalite_to_svg(spec)
    return svg.split("?>", 1)[-1].strip() if svg.startswith("<?xml") else svg


def _daily(trends: Sequence[DayTrend], field: str, title: str, fmt: str, domain: list[float] | None) -> str:
    values = [{"day": t.day.isoformat(), "value": getattr(t, field)} for t in trends]
    y: dict[str, Any] = {"field": "value", "type": "quantitative", "title": title, "axis": {"format": fmt}}
    if domain is not None:
        y["scale"] = {"domain": domain}
    spec = {
        "$schema": _SCHEMA,
        "width": _WIDTH,
        "height": 160,
        "data": {"values": values},
        "mark": {"type": "line", "point": len(values) <= 60, "interpolate": "monotone"},
        "encoding": {"x": {"field": "day", "type": "temporal", "title": None}, "y": y},
        "config": {"background": None, "view": {"stroke": None}},
    }
    return render_svg(spec)


def pass_rate_chart(trends: Sequence[DayTrend]) -> str:
    """The pass rate per day, as SVG."""
    return _daily(trends, "pass_rate", "pass rate", ".0%", [0, 1])


def duration_chart(trends: Sequence[DayTrend]) -> str:
    """The median suite duration per day in seconds, as SVG."""
    return _daily(trends, "median_duration", "suite duration (s)", ",.0f", None)


def sparkline(durations: Sequence[float]) -> str:
    """A small line of a test's recent durations, as SVG."""
    spec = {
        "$schema": _SCHEMA,
        "width": 160,
        "height": 28,
        "padding": 2,
        "data": {"values": [{"run": index, "seconds": value} for index, value in enumerate(durations)]},
        "mark": {"type": "line", "strokeWidth": 1.5},
        "encoding": {
            "x": {"field": "run", "type": "quantitative", "axis": None},
            "y": {"field": "seconds", "type": "quantitative", "axis": None, "scale": {"zero": False}},
        },
        "config": {"background": None, "view": {"stroke": None}},
    }
    return render_svg(spec)
