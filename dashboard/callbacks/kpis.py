"""KPI tiles from the command service's /kpis (its definitions: docs/incidents.md §6):
p90 call-processing time against the 60 s target, closure rate, low stock and expiring
lots. Open incidents by level and teams available are counted in the browser from the
live stream (callbacks/live.py) so they move the moment something changes; these are
fetched again when the stream says incidents or stock changed (debounced)."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, html

from dashboard import ids
from dashboard.api import ApiError
from dashboard.callbacks.common import error_text, require_staff
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t
from dashboard.layout import data_attrs
from dashboard.layout import exercise as ex
from wuwang.scope import Scope


def tile(value: str, label: str, *, key: str, state: str = "", title: str | None = None) -> html.Div:
    return html.Div(
        className=f"kpi {state}".strip(),
        title=title,
        **data_attrs(kpi=key),
        children=[
            html.Div(value, className="kpi-value"),
            html.Div(label, className="kpi-label"),
        ],
    )


def tiles(lang: Lang, k: dict[str, Any], target_s: float) -> list[Any]:
    cp = k.get("call_processing") or {}
    p90 = cp.get("p90_s")
    target = cp.get("target_s") or target_s
    p90_state = "" if p90 is None else ("good" if p90 <= target else "bad")
    closure = k.get("closure") or {}
    rate = closure.get("rate")
    alerts = k.get("reserve_alerts") or {}
    low, expiring, expired = (
        int(alerts.get("low_stock", 0)),
        int(alerts.get("expiring", 0)),
        int(alerts.get("expired", 0)),
    )
    return [
        tile(
            "—" if p90 is None else t(lang, "unit.seconds", n=round(p90)),
            t(lang, "kpi.p90", target=round(target)),
            key="p90",
            state=p90_state,
            title=t(lang, "kpi.p90_help", n=cp.get("count", 0)),
        ),
        tile(
            "—" if rate is None else f"{rate * 100:.0f}%",
            t(lang, "kpi.closure"),
            key="closure",
            title=t(
                lang, "kpi.closure_help", closed=closure.get("closed", 0), counted=closure.get("counted", 0)
            ),
        ),
        tile(str(low), t(lang, "kpi.low_stock"), key="low-stock", state="bad" if low else ""),
        tile(
            str(expiring + expired),
            t(lang, "kpi.expiring"),
            key="expiring",
            state="warn" if expiring + expired else "",
            title=t(lang, "kpi.expiring_help", expiring=expiring, expired=expired),
        ),
    ]


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.KPI_TILES, "children"),
        Input(ids.KPI_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        State(ex.SCOPE, "data"),
        prevent_initial_call=True,  # the live stream's snapshot asks for them (and every change after)
    )
    async def kpi_tiles(_tick: Any, session: Any, lang_value: Any, scope: Any) -> Any:
        me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        # Exercise mode (演练): the watched exercise's KPIs; the scope's id is checked
        # against the caller's actions here and authorised again by the command service.
        exercise_mode, exercise_id = ex.kpi_exercise(me, scope)
        if exercise_mode and exercise_id is None:  # a planner who has not chosen an exercise
            return html.Div(t(lang, "kpi.planner"), className="muted")
        try:
            k = await console.api.get("/kpis", token, window_hours=24, **Scope.of(exercise_id).query())
        except ApiError as exc:
            return html.Div(error_text(lang, exc), className="muted")
        return tiles(lang, k, console.settings.dashboard.call_target_s)
