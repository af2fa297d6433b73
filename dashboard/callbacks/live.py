"""The live picture (clientside): start the WebSocket, draw the connection state from
what ``assets/20-wuwang-live.js`` pushes, and switch the side panel's tabs. None of
these go to the server. The queue and the live KPI tiles (``ids.KPI_LIVE``) are drawn
by the browser straight into their elements, without a callback."""

from __future__ import annotations

from dash import Dash, Input, Output, State

from dashboard import ids
from dashboard.callbacks.common import browser as _fn
from dashboard.callbacks.common import clientside
from dashboard.context import Console


def register(app: Dash, console: Console) -> None:
    clientside(
        app,
        _fn("attachLive"),
        Output(ids.LIVE_STATUS, "data"),
        Input(ids.CONFIG, "data"),
        Input(ids.I18N, "data"),
        State(ids.SESSION, "data"),
    )
    clientside(
        app,
        _fn("renderStatus"),
        Output(ids.CONNECTION, "children"),
        Output(ids.CONNECTION, "className"),
        Output(ids.STALE_BANNER, "hidden"),
        Input(ids.LIVE_STATUS, "data"),
        State(ids.I18N, "data"),
        prevent_initial_call=True,  # drawn when the browser pushes the live state
    )
    clientside(
        app,
        _fn("switchTab"),
        Output(ids.PANEL_DETAIL, "style"),
        Output(ids.PANEL_TEAMS, "style"),
        Output(ids.PANEL_RESERVE, "style"),
        Output(ids.PANEL_CHARTS, "style"),
        Input(ids.SIDE_TABS, "value"),
        prevent_initial_call=True,  # drawn when the browser pushes the live state
    )
