"""Charts from the time-series store's per-minute aggregate (never raw rows): 110
calls per hour by network. The chart of an incident's area is drawn with its detail
(callbacks/incident.py). The token is verified first, like every server callback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from dash import Dash, Input, Output, State, dcc
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.callbacks.common import require_staff, tz
from dashboard.charts import TimeWindow, figure, graph_config
from dashboard.context import Console
from dashboard.data.aggregates import calls_per_hour
from dashboard.i18n import lang_of

log = logging.getLogger(__name__)

HOURS = 24  # the chart's window


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.CHART_CALLS, "children"),
        Input(ids.SIDE_TABS, "value"),
        Input(ids.HEAT_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def calls_chart(tab: Any, _tick: Any, session: Any, lang_value: Any) -> Any:
        if tab != "charts":
            raise PreventUpdate
        await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        now = datetime.now(UTC)
        try:
            series = await calls_per_hour(console.db, now, tz(console), hours=HOURS)
        except Exception:
            log.warning("calls per hour query failed", exc_info=True)
            series = []
        hour = now.replace(minute=0, second=0, microsecond=0)
        window = TimeWindow(hour - timedelta(hours=HOURS), hour + timedelta(hours=1), timedelta(hours=1))
        return dcc.Graph(
            figure=figure(
                lang, series, kind="network", empty_key="chart.no_data", window=window, tz=tz(console)
            ),
            config=graph_config(lang),
        )
