"""The teams board and the team layer. Teams, their statuses and their positions come
with the live stream (the snapshot carries the roster, then every change); both are
drawn in the browser (assets/20-wuwang-live.js), because 1,000 teams moving every
second must not round-trip the server. The board is drawn while its tab is open."""

from __future__ import annotations

from dash import Dash, Input, Output, State

from dashboard import ids
from dashboard.callbacks.common import browser, clientside
from dashboard.context import Console


def register(app: Dash, console: Console) -> None:
    clientside(
        app,
        browser("renderTeamsBoard"),
        Output(ids.TEAMS_BOARD, "children"),
        Input(ids.LIVE_TEAMS, "data"),
        Input(ids.SIDE_TABS, "value"),
        State(ids.I18N, "data"),
        prevent_initial_call=True,
    )
