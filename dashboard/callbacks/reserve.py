"""The reserve board: items city-wide (usable against the minimum), low stock, lots
expiring soon or expired. Fetched again when the stream reports a stock change."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import Dash, Input, Output, State, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError
from dashboard.callbacks.common import error_text, require_staff
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t
from dashboard.i18n import data as words


def board(lang: Lang, items: list[dict[str, Any]], alerts: dict[str, Any]) -> list[Any]:
    rows = []
    for i in sorted(items, key=lambda i: (not i.get("low"), str(i.get("category")), str(i.get("code")))):
        rows.append(
            html.Tr(
                className="low" if i.get("low") else "",
                children=[
                    html.Td(words.item_name(lang, i, "code")),
                    html.Td(f"{int(i.get('usable', 0)):,}", className="num"),
                    html.Td(f"{int(i.get('reserved', 0)):,}", className="num"),
                    html.Td(f"{int(i.get('min_stock', 0)):,}", className="num"),
                    html.Td(words.measure(lang, i.get("unit"), i.get("unit_zh"))),
                ],
            )
        )
    expiring = alerts.get("expiring", [])[:12]
    expired = alerts.get("expired", [])[:12]
    return [
        html.H3(t(lang, "reserve.items", n=len(items))),
        html.Table(
            className="table",
            children=[
                html.Thead(
                    html.Tr(
                        [
                            html.Th(t(lang, k))
                            for k in (
                                "reserve.item",
                                "reserve.usable",
                                "reserve.reserved",
                                "reserve.minimum",
                                "reserve.unit",
                            )
                        ]
                    )
                ),
                html.Tbody(rows),
            ],
        ),
        html.H3(
            t(
                lang,
                "reserve.expiring",
                n=len(alerts.get("expiring", [])),
                days=alerts.get("expiring_within_days", ""),
            )
        ),
        html.Ul(
            className="alerts",
            children=[
                html.Li(
                    t(
                        lang,
                        "reserve.lot_line",
                        item=words.item_name(lang, a),
                        lot=a.get("lot_id"),
                        qty=a.get("quantity"),
                        unit=words.measure(lang, a.get("unit"), a.get("unit_zh")),
                        date=a.get("expires_on"),
                    ),
                    className="warn",
                )
                for a in expiring
            ]
            + [
                html.Li(
                    t(
                        lang,
                        "reserve.expired_line",
                        item=words.item_name(lang, a),
                        lot=a.get("lot_id"),
                        qty=a.get("quantity"),
                        unit=words.measure(lang, a.get("unit"), a.get("unit_zh")),
                        date=a.get("expires_on"),
                    ),
                    className="bad",
                )
                for a in expired
            ]
            or [html.Li(t(lang, "reserve.no_alerts"), className="muted")],
        ),
    ]


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.RESERVE_BOARD, "children"),
        Input(ids.RESERVE_TICK, "data"),
        Input(ids.SIDE_TABS, "value"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def reserve_board(_tick: Any, tab: Any, session: Any, lang_value: Any) -> Any:
        if tab != "reserve":  # fetched while its tab is open (and again when stock changes)
            raise PreventUpdate
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            items, alerts = await asyncio.gather(
                console.api.get("/reserve/items", token), console.api.get("/reserve/alerts", token)
            )
        except ApiError as exc:
            return html.P(error_text(lang, exc), className="muted")
        return board(
            lang, items if isinstance(items, list) else [], alerts if isinstance(alerts, dict) else {}
        )
