"""Plotly figures in the console's dark style (data from dashboard.data.aggregates)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from dashboard.data.aggregates import Series
from dashboard.i18n import Lang, has, t
from dashboard.layers import NETWORK_COLOURS
from wuwang.contract import FEEDS

#: The same stack as assets/01-fonts.css (no web font is downloaded).
FONT_STACK = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", '
    '"WenQuanYi Micro Hei", "Noto Sans", "DejaVu Sans", sans-serif'
)
#: Each charted feed's colour and name (the feed specification, wuwang.contract.FEEDS).
FEED_COLOURS = {str(spec.feed): spec.colour for spec in FEEDS if spec.chart is not None}
FEED_LABEL_KEYS = {str(spec.feed): spec.label_key for spec in FEEDS if spec.chart is not None}


#: Plotly's own words and date names (the modebar, month and day names) in the
#: console's language: zh-CN is registered by assets/vendor/plotly-locale-zh-cn.js.
PLOTLY_LOCALE: dict[Lang, str] = {"zh_CN": "zh-CN", "en": "en"}


def graph_config(lang: Lang) -> Any:
    """A dcc.Graph's config: no modebar, Plotly speaking the console's language (typed
    Any: dcc.Graph declares its own TypedDict for it)."""
    return {"displayModeBar": False, "displaylogo": False, "locale": PLOTLY_LOCALE[lang]}


@dataclass(frozen=True)
class TimeWindow:
    """The time axis of a chart: from ``start`` to ``end`` in bars of ``bucket``.

    Without it Plotly ranges the axis on the data alone, and one bar makes an axis of
    a millisecond ("13:59:59.9996 … 14:00:00.0004")."""

    start: datetime
    end: datetime
    bucket: timedelta

    def axis(self, tz: tzinfo) -> dict[str, Any]:
        """The x axis: the whole window on the command centre's wall clock, hour and
        minute ticks (the date is in the chart's title: a window is a day at most)."""
        wall = [w.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") for w in (self.start, self.end)]
        return {"range": wall, "tickformat": "%H:%M", "hoverformat": "%Y-%m-%d %H:%M", "nticks": 8}

    @property
    def bar_ms(self) -> float:
        return self.bucket.total_seconds() * 1000 * 0.9  # a gap between neighbouring bars


def _count_step(series: list[Series]) -> int:
    """A whole-number tick step giving at most about five ticks for the stacked bars."""
    stacked: dict[str, int] = {}
    for s in series:
        for x, y in zip(s.x, s.y, strict=False):
            stacked[x] = stacked.get(x, 0) + y
    return max(1, math.ceil(max(stacked.values(), default=0) / 5))


def _label(lang: Lang, name: str, kind: str) -> str:
    """A series' name: a network's on the network chart, a feed's (its specification's
    label key) on the feed chart — "video" is both."""
    key = f"network.{name}" if kind == "network" else FEED_LABEL_KEYS.get(name, "")
    return t(lang, key) if has(lang, key) else name


def figure(
    lang: Lang,
    series: list[Series],
    *,
    kind: str,
    empty_key: str,
    window: TimeWindow | None = None,
    tz: tzinfo | None = None,
) -> dict[str, Any]:
    colours = NETWORK_COLOURS if kind == "network" else FEED_COLOURS
    data = [
        {
            "type": "bar",
            "name": _label(lang, s.name, kind),
            "x": s.x,
            "y": s.y,
            "marker": {"color": colours.get(s.name, "#b0bec5")},
            **({"width": [window.bar_ms] * len(s.x)} if window else {}),
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
        "xaxis": {
            "type": "date",
            "gridcolor": "#23324d",
            **(window.axis(tz) if window and tz else {}),
        },
        # counts: whole-number ticks (one call is not "0.2, 0.4 … 1")
        "yaxis": {
            "gridcolor": "#23324d",
            "rangemode": "tozero",
            "tickformat": "d",
            "dtick": _count_step(series),
        },
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
