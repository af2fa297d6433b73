"""The map's layers that the server sends (dashboard/layers.py declares them all): the
heavy static ones once switched on (the grid), the heat of recent
110 calls (again when calls arrive, at most once a minute), warehouses with their stock
(again when stock changes), risk sources and shelters (风险源, 应急避难场所; again when
the live stream says a shelter's count or a source changed, and with the heat's tick). Incidents
and teams are drawn by the browser from the live stream (callbacks/live.py)."""

from __future__ import annotations

import html as html_text
import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import Dash, Input, Output, State
from dash.exceptions import PreventUpdate

from dashboard import geo, geoserve, ids
from dashboard.api import ApiError
from dashboard.callbacks.common import browser, clientside, require_staff, tz
from dashboard.context import Console
from dashboard.data.aggregates import call_heat
from dashboard.i18n import Lang, lang_of, t
from dashboard.layers import LAYERS, MapLayer, Static
from dashboard.layout.detail import clock

log = logging.getLogger(__name__)


def warehouse_features(lang: Lang, rows: list[dict[str, Any]], datum: geo.Datum) -> dict[str, Any]:
    feats = []
    for w in rows:
        if w.get("lat") is None or w.get("lon") is None:
            continue
        stock = sorted(w.get("stock", []), key=lambda s: -int(s.get("usable", 0)))
        low = any(int(s.get("usable", 0)) <= 0 for s in stock) or bool(w.get("low"))
        lines = "".join(
            f"<br>{html_text.escape(str(s.get('item_code')))}: {int(s.get('usable', 0)):,} "
            f"{html_text.escape(str(s.get('unit', '')))}"
            for s in stock[:6]
        )
        kind = t(lang, f"warehouse.{w.get('kind')}")
        tip = f"<b>{html_text.escape(str(w.get('name', w.get('id'))))}</b><br>{html_text.escape(kind)}{lines}"
        feats.append(
            geo.feature(float(w["lat"]), float(w["lon"]), datum, {"i": w.get("id"), "html": tip, "low": low})
        )
    return geo.collection(feats)


def _esc(value: Any) -> str:
    return html_text.escape(str(value))


def risk_source_features(lang: Lang, rows: list[dict[str, Any]], datum: geo.Datum) -> dict[str, Any]:
    """One marker per risk source: its level is its colour (``l``), an overdue
    inspection its ring (``o``)."""
    feats = []
    for r in rows:
        level, kind = str(r.get("level")), str(r.get("kind"))
        lines = [
            f"<b>{_esc(r.get('name', r.get('id')))}</b>",
            f"{_esc(t(lang, f'risk.kind.{kind}'))} · "
            f"{_esc(t(lang, 'risk.level_label', level=t(lang, f'risk.level.{level}')))}",
            _esc(
                t(
                    lang,
                    "risk.responsible",
                    unit=r.get("responsible_unit") or "—",
                    contact=r.get("contact") or "—",
                )
            ),
        ]
        due = str(r.get("inspection_due_at") or "")[:10]
        overdue = bool(r.get("inspection_overdue"))
        lines.append(_esc(t(lang, "risk.inspection_overdue" if overdue else "risk.inspection_due", due=due)))
        feats.append(
            geo.feature(
                float(r["lat"]),
                float(r["lon"]),
                datum,
                {"i": r.get("id"), "l": level, "o": overdue, "html": "<br>".join(lines)},
            )
        )
    return geo.collection(feats)


def shelter_features(
    lang: Lang, rows: list[dict[str, Any]], datum: geo.Datum, zone: ZoneInfo | None = None
) -> dict[str, Any]:
    """One marker per shelter: its status is its colour (``s``), its size the room
    left (``f``: the free share); the popup says who counted last, and when."""
    feats = []
    for r in rows:
        reported = ""
        if r.get("occupancy_at") and r.get("occupancy_by"):
            at = clock(str(r["occupancy_at"]), zone or ZoneInfo("Asia/Shanghai"), with_date=True)
            reported = "<br>" + _esc(t(lang, "shelter.reported", by=r["occupancy_by"], at=at))
        status, kind = str(r.get("status")), str(r.get("kind"))
        capacity = max(int(r.get("capacity") or 1), 1)
        free = int(r.get("free") or 0)
        tip = (
            f"<b>{_esc(r.get('name', r.get('id')))}</b><br>"
            f"{_esc(t(lang, f'shelter.kind.{kind}'))} · {_esc(t(lang, f'shelter.status.{status}'))}<br>"
            + _esc(
                t(lang, "shelter.occupancy", occupancy=r.get("occupancy", 0), capacity=capacity, free=free)
            )
            + reported
        )
        feats.append(
            geo.feature(
                float(r["lat"]),
                float(r["lon"]),
                datum,
                {"i": r.get("id"), "s": status, "f": round(free / capacity, 3), "html": tip},
            )
        )
    return geo.collection(feats)


def _load_when_switched_on(app: Dash, console: Console, layer: MapLayer, source: Static) -> None:
    """A heavy static layer (the grid's 3,000+ cells) fetched only once someone switches
    it on: its signed URL is set then, and dash-leaflet fetches the file."""

    @app.callback(
        Output(layer.id, "url"),
        Input(ids.LAYERS, "overlays"),
        State(layer.id, "url"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def switched_on(overlays: Any, current: Any, session: Any, lang_value: Any) -> Any:
        lang = lang_of(lang_value or console.settings.dashboard.language)
        if not isinstance(overlays, list) or t(lang, layer.label) not in overlays:
            raise PreventUpdate
        if current:
            raise PreventUpdate
        await require_staff(console, session)
        return geoserve.urls(console)[source.name]


def register(app: Dash, console: Console) -> None:
    datum = geo.map_datum(console.settings)

    # The first draw's static files, asked for at once (layout/map.py, ``first_files``).
    # (its output is never written: a callback needs one to run when the page arrives)
    clientside(
        app, browser("prefetchFiles"), Output(ids.MAP_FILES, "clear_data"), Input(ids.MAP_FILES, "data")
    )

    for layer in LAYERS:
        if layer.on_request and isinstance(layer.source, Static):
            _load_when_switched_on(app, console, layer, layer.source)

    # The served layers are first asked for once the map's first draw is on screen
    # ("map-up", assets/10-wuwang-map.js), like the desk's panels: their callbacks and
    # drawing do not share the browser's one thread with that draw. A tick before then
    # is not lost: the map-up fetch reads the current state.
    @app.callback(
        Output(ids.LAYER_HEAT, "data"),
        Input(ids.HEAT_TICK, "data"),
        Input(ids.MAP_UP, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    async def heat(_tick: Any, up: Any, session: Any) -> Any:
        if not up:
            raise PreventUpdate
        me, _token = await require_staff(console, session)
        if me.drills_only:  # 演练: the heat is of live 110 calls; planners see exercises only
            return geo.collection([])
        try:
            return await call_heat(
                console.db, datetime.now(UTC), console.settings.dashboard.heat_hours, datum
            )
        except Exception:  # the map must not break on a chart's query
            log.warning("heat layer query failed", exc_info=True)
            return geo.collection([])

    @app.callback(
        Output(ids.LAYER_WAREHOUSES, "data"),
        Input(ids.RESERVE_TICK, "data"),
        Input(ids.MAP_UP, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def warehouses(_tick: Any, up: Any, session: Any, lang_value: Any) -> Any:
        if not up:
            raise PreventUpdate
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            rows = await console.api.get("/reserve/warehouses", token)
        except ApiError as exc:
            log.info("warehouses unavailable: %s", exc)
            return geo.collection([])
        return warehouse_features(lang, rows if isinstance(rows, list) else [], datum)

    @app.callback(
        Output(ids.LAYER_RISK_SOURCES, "data"),
        Output(ids.LAYER_SHELTERS, "data"),
        Input(ids.HEAT_TICK, "data"),
        Input(ids.REGISTRY_TICK, "data"),  # live: a shelter's count, a source's level
        Input(ids.MAP_UP, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def risk_and_shelters(_tick: Any, _registry: Any, up: Any, session: Any, lang_value: Any) -> Any:
        if not up:
            raise PreventUpdate
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        out = []
        for path in ("/risk-sources", "/shelters"):
            try:
                rows = await console.api.get(path, token)
            except ApiError as exc:
                log.info("%s unavailable: %s", path, exc)
                rows = []
            found = rows if isinstance(rows, list) else []
            out.append(
                risk_source_features(lang, found, datum)
                if path == "/risk-sources"
                else shelter_features(lang, found, datum, tz(console))
            )
        return out[0], out[1]
