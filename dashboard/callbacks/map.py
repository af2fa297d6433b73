"""The map's layers that the server sends (dashboard/layers.py declares them all): the
heavy static ones once switched on (the grid), the heat of recent
110 calls (again when calls arrive, at most once a minute), warehouses with their stock
(again when stock changes). Incidents and teams are drawn by the browser from the
live stream (callbacks/live.py)."""

from __future__ import annotations

import html as html_text
import logging
from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State
from dash.exceptions import PreventUpdate

from dashboard import geo, geoserve, ids
from dashboard.api import ApiError
from dashboard.callbacks.common import require_staff
from dashboard.context import Console
from dashboard.data.aggregates import call_heat
from dashboard.i18n import Lang, lang_of, t
from dashboard.layers import LAYERS, MapLayer, Static

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
        lang = lang_of(lang_value or console.settings.dashboard_language)
        if not isinstance(overlays, list) or t(lang, layer.label) not in overlays:
            raise PreventUpdate
        if current:
            raise PreventUpdate
        await require_staff(console, session)
        return geoserve.urls(console)[source.name]


def register(app: Dash, console: Console) -> None:
    datum = geo.map_datum(console.settings)

    for layer in LAYERS:
        if layer.on_request and isinstance(layer.source, Static):
            _load_when_switched_on(app, console, layer, layer.source)

    @app.callback(
        Output(ids.LAYER_HEAT, "data"),
        Input(ids.HEAT_TICK, "data"),
        Input(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
    )
    async def heat(_tick: Any, _config: Any, session: Any) -> Any:
        me, _token = await require_staff(console, session)
        if me.drills_only:  # 演练: the heat is of live 110 calls; planners see exercises only
            return geo.collection([])
        try:
            return await call_heat(
                console.db, datetime.now(UTC), console.settings.dashboard_heat_hours, datum
            )
        except Exception:  # the map must not break on a chart's query
            log.warning("heat layer query failed", exc_info=True)
            return geo.collection([])

    @app.callback(
        Output(ids.LAYER_WAREHOUSES, "data"),
        Input(ids.RESERVE_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,  # the snapshot's reserve tick fetches them
    )
    async def warehouses(_tick: Any, session: Any, lang_value: Any) -> Any:
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard_language)
        try:
            rows = await console.api.get("/reserve/warehouses", token)
        except ApiError as exc:
            log.info("warehouses unavailable: %s", exc)
            return geo.collection([])
        return warehouse_features(lang, rows if isinstance(rows, list) else [], datum)
