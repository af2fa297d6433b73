"""The incident the operator opened: its detail (timeline, sources, plan checklist,
recommended teams and stock with ETA and reasons, the chart of the area) and every act
on it (立案, dispatch, reserve, plan, ticks, level, notes, split, merge, the closed
loop). Each act names the version it was decided on; a 409 means someone else acted
first — the detail is drawn again and the operator decides again."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError, Me
from dashboard.callbacks.common import browser, clicked, clientside, error_text, require, require_staff, tz
from dashboard.charts import TimeWindow, figure, graph_config
from dashboard.context import Console
from dashboard.data.aggregates import activity_around
from dashboard.i18n import Lang, lang_of, t
from dashboard.layout import team_text
from dashboard.layout.close_guard import refusal
from dashboard.layout.detail import NEEDS_REASON, DetailData, incident_detail

log = logging.getLogger(__name__)

#: The area chart's window around the incident's first alarm.
AREA_BEFORE, AREA_AFTER = timedelta(hours=2), timedelta(hours=1)

LIFECYCLE = ("verify", "resolve", "close", "cancel", "false-alarm", "reopen", "hold", "resume")


def incident_path(incident_id: str, *rest: str) -> str:
    return "/".join(["/incidents", quote(incident_id, safe=""), *(quote(r, safe="") for r in rest)])


async def fetch_detail(console: Console, me: Me, token: str, incident_id: str, lang: Lang) -> DetailData:
    api = console.api
    base = await api.get(incident_path(incident_id), token)
    data = DetailData(incident=base.get("incident", {}), timeline=base.get("timeline", []))
    parts: dict[str, Any] = {
        "plan": api.get(incident_path(incident_id, "plan"), token),
        "plans": api.get("/plans", token),
        "orders": api.get(incident_path(incident_id, "orders"), token),
        "reserve": api.get(incident_path(incident_id, "reserve"), token),
        "risk": api.get(incident_path(incident_id, "risk"), token),
        "reporting": api.get(incident_path(incident_id, "reports"), token),
    }
    if data.incident.get("is_open"):
        parts["recommendations"] = api.get(incident_path(incident_id, "recommendations"), token)
    results = await asyncio.gather(*parts.values(), return_exceptions=True)
    for name, result in zip(parts, results, strict=True):
        if isinstance(result, ApiError):
            data.errors[name] = error_text(lang, result)
            continue
        if isinstance(result, BaseException):
            log.warning("incident detail part %s failed", name, exc_info=result)
            data.errors[name] = str(result)
            continue
        if name == "plan":
            data.plan = result
        elif name == "plans":
            data.plans = result if isinstance(result, list) else []
        elif name == "orders":
            data.orders = result if isinstance(result, list) else (result or {}).get("orders", [])
        elif name == "reserve":
            data.reserve = result
        elif name == "risk":
            data.risk = result
        elif name == "reporting":
            data.reporting = result
        elif name == "recommendations":
            data.recommendations = result
    data.area_chart = await area_chart(console, lang, data.incident)
    return data


async def area_chart(console: Console, lang: Lang, inc: dict[str, Any]) -> Any:
    at_text = inc.get("first_alarm_at") or inc.get("opened_at")
    if not at_text or not console.db.configured:
        return None
    try:
        at = datetime.fromisoformat(at_text)
        series = await activity_around(
            console.db, tz(console), inc.get("grid_cell_id"), at, before=AREA_BEFORE, after=AREA_AFTER
        )
    except Exception:
        log.warning("area chart query failed", exc_info=True)
        return html.P(t(lang, "chart.unavailable"), className="muted small")
    window = TimeWindow(at - AREA_BEFORE, at + AREA_AFTER, timedelta(minutes=1))
    return dcc.Graph(
        figure=figure(lang, series, kind="feed", empty_key="chart.no_data", window=window, tz=tz(console)),
        config=graph_config(lang),
        className="chart",
    )


def inputs_by_name() -> dict[str, Any]:
    """The detail's inputs by name (reason, note, plan, level, merge)."""
    out: dict[str, Any] = {}
    for group in ctx.states_list:
        if isinstance(group, list):
            for item in group:
                ident = item.get("id")
                if isinstance(ident, dict) and ident.get("type") == ids.DETAIL_INPUT:
                    out[str(ident.get("name"))] = item.get("value")
    return out


def text_of(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.DETAIL, "children"),
        Output(ids.DETAIL_META, "data"),
        Input(ids.SELECTED, "data"),
        Input(ids.DETAIL_TICK, "data"),
        State(ids.CLOSE_GUARD, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def detail(incident_id: Any, _tick: Any, refused: Any, session: Any, lang_value: Any) -> Any:
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        if not isinstance(incident_id, str) or not incident_id:  # deselected (the ✕)
            return html.P(t(lang, "detail.none"), className="muted"), None
        try:
            data = await fetch_detail(console, me, token, incident_id, lang)
        except ApiError as exc:
            return html.P(error_text(lang, exc), className="error"), None
        data.refusal = refused if isinstance(refused, dict) else None
        inc = data.incident
        meta = {
            "id": inc.get("id"),
            "version": inc.get("version"),
            "covering": (data.plan or {}).get("covering_plans", []),
            # where the map flies (assets/12-wuwang-focus.js), and back once it is closed
            "is_open": bool(inc.get("is_open")),
            "lat": inc.get("lat"),
            "lon": inc.get("lon"),
        }
        return incident_detail(lang, me, data, tz(console)), meta

    clientside(app, browser("focusIncident"), Output(ids.MAP_FOCUS, "data"), Input(ids.DETAIL_META, "data"))
    clientside(
        app,
        browser("closeDetail"),
        Output(ids.SELECTED, "data", allow_duplicate=True),
        Input({"type": ids.DETAIL_CLOSE, "panel": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.FEEDBACK, "children"),
        Output(ids.DETAIL_TICK, "data", allow_duplicate=True),
        Output(ids.CLOSE_GUARD, "data"),
        Input({"type": ids.ACT, "action": ALL}, "n_clicks"),
        Input({"type": ids.DISPATCH, "team": ALL}, "n_clicks"),
        Input({"type": ids.RESERVE, "item": ALL, "qty": ALL, "wh": ALL}, "n_clicks"),
        Input({"type": ids.TICK, "item": ALL, "done": ALL}, "n_clicks"),
        Input({"type": ids.SPLIT, "alarm": ALL}, "n_clicks"),
        State({"type": ids.DETAIL_INPUT, "name": ALL}, "value"),
        State(ids.DETAIL_META, "data"),
        State(ids.DETAIL_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def act(
        _a: Any,
        _d: Any,
        _r: Any,
        _t: Any,
        _s: Any,
        _values: Any,
        meta: Any,
        tick: Any,
        session: Any,
        lang_value: Any,
    ) -> Any:
        button = clicked()
        if not isinstance(button, dict) or not isinstance(meta, dict) or not meta.get("id"):
            raise PreventUpdate
        me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        values = inputs_by_name()
        try:
            message = await perform(console, me, token, lang, button, meta, values)
        except ApiError as exc:
            refresh = exc.status == 409
            # a refused resolve or close: the detail says what is open (layout/close_guard.py)
            refused = refusal(str(button.get("action")), exc, meta) if button.get("type") == ids.ACT else None
            # not "someone acted first": the guard's own words, its panel says the rest
            said = t(lang, f"guard.refused_{refused['action']}") if refused else error_text(lang, exc)
            return (
                html.Span(said, className="error"),
                (tick or 0) + 1 if refresh else no_update,
                refused if refused is not None else no_update,
            )
        except ValueError as exc:  # something the operator must fill in first
            return html.Span(str(exc), className="error"), no_update, no_update
        return html.Span(message, className="ok"), (tick or 0) + 1, None


async def perform(
    console: Console,
    me: Me,
    token: str,
    lang: Lang,
    button: dict[str, Any],
    meta: dict[str, Any],
    values: dict[str, Any],
) -> str:
    """Do what the button says; return what to tell the operator (raises ApiError)."""
    api = console.api
    incident_id = str(meta["id"])
    version = int(meta.get("version") or 0)
    reason = text_of(values.get("reason"))
    kind = button.get("type")
    if kind == ids.ACT:
        action = str(button.get("action"))
        if action in LIFECYCLE:
            if action in NEEDS_REASON and reason is None:
                raise ValueError(t(lang, "act.reason_required"))
            await api.post(
                incident_path(incident_id, action), token, {"expected_version": version, "reason": reason}
            )
            return t(lang, f"done.{action}")
        if action == "note":
            text = text_of(values.get("note"))
            if text is None:
                raise ValueError(t(lang, "act.note_required"))
            await api.post(
                incident_path(incident_id, "notes"), token, {"expected_version": version, "text": text}
            )
            return t(lang, "done.note")
        if action == "level":
            level = values.get("level")
            if reason is None:
                raise ValueError(t(lang, "act.reason_required"))
            await api.post(
                incident_path(incident_id, "level"),
                token,
                {"expected_version": version, "level": int(level or 4), "reason": reason},
            )
            return t(lang, "done.level")
        if action == "plan":
            plan_id = values.get("plan")
            if not isinstance(plan_id, str) or not plan_id:
                raise ValueError(t(lang, "act.plan_required"))
            force = plan_id not in (meta.get("covering") or [])
            if force and reason is None:
                raise ValueError(t(lang, "act.force_reason"))
            await api.post(
                incident_path(incident_id, "plan"),
                token,
                {"plan_id": plan_id, "expected_version": version, "force": force, "reason": reason},
            )
            return t(lang, "done.plan")
        if action == "merge":
            into = text_of(values.get("merge"))
            if into is None or reason is None:
                raise ValueError(t(lang, "act.merge_required"))
            target = await api.get(incident_path(into), token)
            into_version = int((target.get("incident") or {}).get("version") or 0)
            await api.post(
                incident_path(incident_id, "merge"),
                token,
                {
                    "into": into,
                    "into_expected_version": into_version,
                    "expected_version": version,
                    "reason": reason,
                },
            )
            return t(lang, "done.merge", id=into)
    if kind == ids.DISPATCH:
        team = str(button.get("team"))
        done = await api.post(
            incident_path(incident_id, "dispatch"), token, {"team_id": team, "expected_version": version}
        )
        order = done.get("order") if isinstance(done, dict) else None
        name = str(order.get("team_name") or "") if isinstance(order, dict) else ""
        return t(lang, "done.dispatch", team=team_text({team: name} if name else {}, team))
    if kind == ids.RESERVE:
        item, qty = str(button.get("item")), int(button.get("qty") or 0)
        wid = button.get("wh")
        await api.post(
            incident_path(incident_id, "reserve"),
            token,
            {"item_code": item, "quantity": qty, "warehouse_id": str(wid) if wid else None},
        )
        return t(lang, "done.reserve", item=item, qty=qty)
    if kind == ids.TICK:
        item = str(button.get("item"))
        await api.post(
            incident_path(incident_id, "checklist", item),
            token,
            {"expected_version": version, "done": bool(button.get("done", True))},
        )
        return t(lang, "done.tick")
    if kind == ids.SPLIT:
        if reason is None:
            raise ValueError(t(lang, "act.reason_required"))
        await api.post(
            incident_path(incident_id, "split"),
            token,
            {"alarm_id": str(button.get("alarm")), "expected_version": version, "reason": reason},
        )
        return t(lang, "done.split")
    raise PreventUpdate
