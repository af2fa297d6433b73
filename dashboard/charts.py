"""Plotly figures in the console's dark style (data from dashboard.data.aggregates)."""

from __future__ import annotations

from typing import Any

from dashboard.data.aggregates import Series
from dashboard.i18n import Lang, has, t
from dashboard.layout.map import NETWORK_COLOURS

#: The same stack as assets/01-fonts.css (no web font is downloaded).
FONT_STACK = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", '
    '"WenQuanYi Micro Hei", "Noto Sans", "DejaVu Sans", sans-serif'
)
FEED_COLOURS = {"sensor": "#4fc3f7", "video": "#ec407a", "call": "#ffb300", "report": "#9ccc65"}


def _label(lang: Lang, name: str) -> str:
    for prefix in ("network.", "feed."):
        if has(lang, prefix + name):
            return t(lang, prefix + name)
    return name


def figure(lang: Lang, series: list[Series], *, kind: str, empty_key: str) -> dict[str, Any]:
    colours = NETWORK_COLOURS if kind == "network" else FEED_COLOURS
    data = [
        {
            "type": "bar",
            "name": _label(lang, s.name),
            "x": s.x,
            "y": s.y,
            "marker": {"color": colours.get(s.name, "#b0bec5")},
        }
        for s in series
    ]
    layout: dict[str, Any] = {
        "template": "plotly_dark",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT_STACK, "size": 13, "color": "#dbe4f3"},
        "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "barmode": "stack",
        "height": 260,
        "xaxis": {"type": "date", "gridcolor": "#23324d"},
        "yaxis": {"gridcolor": "#23324d", "rangemode": "tozero"},
    }
    if not data:
        layout["annotations"] = [
            {
                "text": t(lang, empty_key),
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 14, "color": "#8ea0bd"},
            }
        ]
        layout["xaxis"]["visible"] = False
        layout["yaxis"]["visible"] = False
    return {"data": data, "layout": layout}
