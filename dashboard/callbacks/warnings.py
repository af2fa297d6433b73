"""预警 on the console: the active warnings as a map layer and a banner by colour (desk
and wall), and the desk's panel — draft, count what is inside, approve, cancel. Every
act goes to the command service with the caller's token; it decides (docs/warnings.md).
The browser bumps ``warning-tick`` on every live ``warning`` change
(assets/20-wuwang-live.js), so all of it follows the command service as it changes."""

from __future__ import annotations

import html as html_text
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from dash import ALL, Dash, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import geo, ids
from dashboard.api import ApiError
from dashboard.callbacks.common import clicked, drill_of, error_text, require, tz
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t

log = logging.getLogger(__name__)

#: The standard colours of the four levels (蓝/黄/橙/红), most severe first.
LEVEL_ORDER = ("red", "orange", "yellow", "blue")
ACT = "warning-act"


def _ring(points: list[list[float]], datum: geo.Datum) -> dict[str, Any]:
    ring = [[lon, lat] for lat, lon in points]
    ring.append(ring[0])
    return geo.geometry({"type": "Polygon", "coordinates": [ring]}, datum)


async def area_geometries(
    console: Console, warning: dict[str, Any], datum: geo.Datum
) -> list[dict[str, Any]]:
    """The warning's area on the map: its polygon, and the boundaries of its districts
    and grid cells from the registries."""
    area = warning.get("area") or {}
    shapes: list[dict[str, Any]] = []
    if len(area.get("polygon") or []) >= 3:
        shapes.append(_ring(area["polygon"], datum))
    for query, keys in (
        ("SELECT boundary FROM district WHERE adcode = ANY(%s)", area.get("districts") or []),
        ("SELECT boundary FROM grid_cell WHERE id = ANY(%s)", area.get("cells") or []),
    ):
        if not keys:
            continue
        for (raw,) in await console.db.fetch(query, (list(keys),)):
            boundary = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
            if isinstance(boundary, dict) and boundary.get("type") in ("Polygon", "MultiPolygon"):
                shapes.append(geo.geometry(boundary, datum))
    return shapes


def _rank(w: dict[str, Any]) -> int:
    return LEVEL_ORDER.index(w["level"]) if w.get("level") in LEVEL_ORDER else len(LEVEL_ORDER)


def banner(lang: Lang, active: list[dict[str, Any]]) -> tuple[list[Any], bool, str]:
    """The banner's lines, hidden or not, and its class (the most severe level's colour)."""
    if not active:
        return [], True, "warning-banner"
    ordered = sorted(active, key=_rank)
    lines = [
        html.Span(
            className=f"warning-line level-{w['level']}",
            children=[
                html.B(t(lang, f"warning_level.{w['level']}")),
                " ",
                w.get("headline", ""),
            ],
        )
        for w in ordered
    ]
    return lines, False, f"warning-banner level-{ordered[0]['level']}"


def fetched(rows: Any) -> dict[str, Any]:
    """What ``ids.WARNINGS`` holds after a fetch that was answered: the rows."""
    return {"rows": [w for w in rows if isinstance(w, dict)] if isinstance(rows, list) else [], "error": None}


def refused(exc: ApiError) -> dict[str, Any]:
    """What ``ids.WARNINGS`` holds after a fetch that failed: no rows, and why (as data: a
    store holds JSON, not the exception). An unavailable service's detail is English and
    technical, shown in the operator's words instead: it does not reach the browser."""
    detail = "" if exc.unavailable else exc.detail
    return {"rows": [], "error": {"status": exc.status, "detail": detail, "retry_after": exc.retry_after}}


def stored(data: Any) -> tuple[list[dict[str, Any]], ApiError | None]:
    """The rows in ``ids.WARNINGS`` and the failure, if the fetch failed."""
    if not isinstance(data, dict):
        return [], None
    rows = [w for w in data.get("rows") or [] if isinstance(w, dict)]
    error = data.get("error")
    if isinstance(error, dict):
        status, detail = int(error.get("status") or 0), str(error.get("detail") or "")
        return rows, ApiError(status, detail, error.get("retry_after"))
    return rows, None


def _area(districts: Any, cells: Any, polygon: Any) -> dict[str, Any]:
    """The panel's area fields as the API takes them; polygon points one per line,
    ``lat, lon``."""
    points = []
    for line in str(polygon or "").splitlines():
        numbers = re.findall(r"-?\d+(?:\.\d+)?", line)
        if len(numbers) >= 2:
            points.append([float(numbers[0]), float(numbers[1])])
    return {
        "districts": [int(d) for d in districts or []],
        "cells": [c for c in re.split(r"[\s,，]+", str(cells or "")) if c],
        "polygon": points,
    }


def drawn_points(drawn: Any, datum: geo.Datum) -> str:
    """The polygon drawn on the map (the EditControl's GeoJSON, in the map's datum) as the
    panel's points, one ``lat, lon`` per line in WGS-84 — the datum everything is stored
    in. The last shape drawn is the area (a warning has one polygon); none: empty."""
    features = (drawn or {}).get("features") if isinstance(drawn, dict) else None
    rings = [
        f["geometry"]["coordinates"][0]
        for f in features or []
        if isinstance(f, dict) and (f.get("geometry") or {}).get("type") == "Polygon"
    ]
    if not rings:
        return ""
    ring = [p for p in rings[-1] if isinstance(p, list) and len(p) >= 2]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]  # GeoJSON closes the ring; the API closes it itself
    points = (geo.from_map(float(lat), float(lon), datum) for lon, lat, *_ in ring)
    return "\n".join(f"{lat:.6f}, {lon:.6f}" for lat, lon in points)


def picked_districts(chosen: Any, clicked_feature: Any, *, form_open: bool) -> list[int] | None:
    """A district clicked on the map while the draft form is open: added to the area's
    districts, or taken out if it was in. None: nothing to change (the form is folded,
    or the click was not on a district)."""
    props = clicked_feature.get("properties") if isinstance(clicked_feature, dict) else None
    adcode = props.get("i") if isinstance(props, dict) else None
    if not form_open or not isinstance(adcode, int) or isinstance(adcode, bool):
        return None
    current = [d for d in chosen or [] if isinstance(d, int) and not isinstance(d, bool)]
    return [d for d in current if d != adcode] if adcode in current else [*current, adcode]


def districts_hideout(hideout: Any, chosen: Any, *, form_open: bool) -> dict[str, Any]:
    """The districts layer's drawing options with the districts in the area being drafted
    (highlighted by districtStyle, assets/10-wuwang-map.js) while the form is open."""
    base = dict(hideout) if isinstance(hideout, dict) else {}
    base["picked"] = [d for d in chosen or [] if isinstance(d, int)] if form_open else []
    return base


async def _inside(
    console: Console, token: str, lang: Lang, area: dict[str, Any], exercise_id: str | None
) -> str:
    """范围内: how many grid cells, devices, venues, teams, risk sources and shelters the
    area holds, as the command service counts them (``POST /warnings/inside``)."""
    found = await console.api.request(
        "POST",
        "/warnings/inside",
        token,
        json=area,
        params={"exercise_id": exercise_id} if exercise_id else None,
    )
    counts = found.get("counts", {})
    inside = t(
        lang,
        "warning.inside",
        **{k: counts.get(k, 0) for k in ("grid_cells", "devices", "venues", "teams")},
    )
    extra = [
        t(lang, f"warning.inside_{k}", n=v)
        for k, v in sorted(counts.items())
        if k in ("risk_sources", "shelters")
    ]
    return " · ".join([inside, *extra])


#: A CAP circle drawn as a polygon of this many sides.
CIRCLE_SIDES = 48
KM_PER_DEGREE = 111.32


def _circle(lat: float, lon: float, radius_km: float) -> list[list[float]]:
    """A CAP circle (centre, radius in km) as a closed [lon, lat] ring, WGS-84."""
    dlat = radius_km / KM_PER_DEGREE
    dlon = radius_km / (KM_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    ring = [
        [
            lon + dlon * math.cos(2 * math.pi * i / CIRCLE_SIDES),
            lat + dlat * math.sin(2 * math.pi * i / CIRCLE_SIDES),
        ]
        for i in range(CIRCLE_SIDES)
    ]
    return [*ring, ring[0]]


def inbound_shapes(areas: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """An inbound warning's areas (as ``GET /warnings/inbound`` gives them, WGS-84): its
    polygons and circles as GeoJSON, and the 6-digit geocodes (GB/T 2260 区划代码) whose
    districts' boundaries the map draws too."""
    shapes: list[dict[str, Any]] = []
    adcodes: list[int] = []
    for area in areas if isinstance(areas, list) else []:
        if not isinstance(area, dict):
            continue
        for ring in area.get("polygons") or []:
            if len(ring) >= 3:
                shapes.append({"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]})
        for c in area.get("circles") or []:
            if float(c.get("radius_km") or 0) > 0:
                circle = _circle(float(c["lat"]), float(c["lon"]), float(c["radius_km"]))
                shapes.append({"type": "Polygon", "coordinates": [circle]})
        for code in area.get("geocodes") or []:
            value = str(code.get("value", ""))
            if re.fullmatch(r"\d{6}", value):
                adcodes.append(int(value))
    return shapes, adcodes


def _words(w: dict[str, Any], lang: Lang) -> dict[str, Any]:
    """The info block in the page's language if the agency wrote one, else its first."""
    infos = [i for i in w.get("infos") or [] if isinstance(i, dict)]
    prefix = "zh" if lang == "zh_CN" else "en"
    return next(
        (i for i in infos if str(i.get("language", "")).lower().startswith(prefix)), infos[0] if infos else {}
    )


def inbound_popup(lang: Lang, w: dict[str, Any], zone: Any) -> tuple[str, str]:
    """The popup (sender, headline, onset, expiry) and the tooltip, escaped."""
    words = _words(w, lang)
    level = t(lang, f"warning_level.{w['level']}") if w.get("level") else t(lang, "inbound.level_none")
    headline = str(words.get("headline") or w.get("headline") or words.get("event") or w.get("event") or "")
    sender = str(words.get("sender_name") or w.get("sender") or "")

    def when(value: Any, missing: str) -> str:
        if not value:
            return t(lang, missing)
        return datetime.fromisoformat(str(value)).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    esc = html_text.escape
    rows = (
        ("inbound.sender", sender),
        ("inbound.onset", when(w.get("onset"), "inbound.onset_now")),
        ("inbound.expires", when(w.get("expires"), "inbound.until_cancelled")),
    )
    popup = f"<b>{esc(t(lang, 'inbound.title'))} · {esc(level)}</b><br><b>{esc(headline)}</b>" + "".join(
        f"<br>{esc(t(lang, key))}：{esc(value)}" for key, value in rows
    )
    return popup, f"<b>{esc(level)}</b> {esc(headline)}"


def _event_label(lang: Lang, category: str, key: str) -> str:
    """自然灾害 · 气象灾害: the category and the sub-type, from the catalogue."""
    return f"{t(lang, 'warning_category.' + category)} · {t(lang, 'warning_event.' + key)}"


def _error(lang: Lang, exc: ApiError) -> str:
    """A refusal's reason; an unreachable or unavailable service in the operator's words
    (the command service's own detail is English and technical)."""
    if exc.status == 0 or exc.unavailable:
        return error_text(lang, exc)
    return t(lang, "warning.refused", reason=exc.detail)


def register(app: Dash, console: Console) -> None:
    datum = geo.map_datum(console.settings)

    # One GET /warnings a tick: the map layer with the banner, and the desk's list, both
    # read what it stored (each used to ask the command service for itself).
    @app.callback(
        Output(ids.WARNINGS, "data"),
        Input(ids.WARNING_TICK, "data"),
        Input(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
    )
    async def fetch_warnings(_tick: Any, config: Any, session: Any) -> Any:
        me, token = await require(console, session)
        if not me.may("warning.read"):
            raise PreventUpdate
        try:
            rows = await console.api.get("/warnings", token, exercise_id=drill_of(config, me))
            return fetched(rows)
        except ApiError as exc:
            log.info("warnings unavailable: %s", exc)
            return refused(exc)

    @app.callback(
        Output(ids.LAYER_WARNINGS, "data"),
        Output(ids.WARNING_BANNER, "children"),
        Output(ids.WARNING_BANNER, "hidden"),
        Output(ids.WARNING_BANNER, "className"),
        Input(ids.WARNINGS, "data"),
        State(ids.LANG, "data"),
    )
    async def active_warnings(data: Any, lang_value: Any) -> Any:
        if data is None:
            raise PreventUpdate
        lang = lang_of(lang_value or console.settings.dashboard.language)
        rows, failed = stored(data)
        if failed is not None:
            return geo.collection([]), [], True, "warning-banner"
        active = [w for w in rows if w.get("active")]
        features = []
        for w in sorted(active, key=_rank, reverse=True):  # the most severe drawn last, on top
            name = t(lang, f"warning_level.{w['level']}")
            headline, instruction = str(w.get("headline", "")), str(w.get("instruction", ""))
            tip = (
                f"<b>{html_text.escape(name)}</b> {html_text.escape(headline)}"
                f"<br>{html_text.escape(instruction)}"
            )
            for shape in await area_geometries(console, w, datum):
                features.append(
                    {
                        "type": "Feature",
                        "geometry": shape,
                        "properties": {
                            "i": w["identifier"],
                            "level": w["level"],
                            "colour": w["colour"],
                            "html": tip,
                        },
                    }
                )
        lines, hidden, class_name = banner(lang, active)
        return geo.collection(features), lines, hidden, class_name

    @app.callback(
        Output(ids.WARNING_EVENT, "options"),
        Output(ids.WARNING_DISTRICTS, "options"),
        Input(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def vocabulary(_config: Any, session: Any, lang_value: Any) -> Any:
        me, token = await require(console, session)
        if not me.may("warning.draft"):
            raise PreventUpdate
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            vocab = await console.api.get("/warnings/vocabulary", token)
        except ApiError:
            raise PreventUpdate from None
        categories = set(vocab.get("categories", []))
        events = [
            {"label": _event_label(lang, str(e["category"]), str(e["key"])), "value": e["key"]}
            for e in vocab.get("event_types", [])
            if e.get("category") in categories
        ]
        districts = [
            {"label": f"{name} ({adcode})", "value": adcode}
            for adcode, name in await console.db.fetch("SELECT adcode, name FROM district ORDER BY adcode")
        ]
        return events, districts

    @app.callback(
        Output(ids.WARNING_INSIDE, "children"),
        Output(ids.WARNING_FEEDBACK, "children"),
        Output(ids.WARNING_DRAW, "editToolbar"),
        Input(ids.WARNING_COUNT, "n_clicks"),
        Input(ids.WARNING_DRAFT, "n_clicks"),
        State(ids.WARNING_EVENT, "value"),
        State(ids.WARNING_LEVEL, "value"),
        State(ids.WARNING_HEADLINE, "value"),
        State(ids.WARNING_DESCRIPTION, "value"),
        State(ids.WARNING_INSTRUCTION, "value"),
        State(ids.WARNING_HOURS, "value"),
        State(ids.WARNING_DISTRICTS, "value"),
        State(ids.WARNING_CELLS, "value"),
        State(ids.WARNING_POLYGON, "value"),
        State(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def count_or_draft(
        _count: Any,
        _draft: Any,
        event_type: Any,
        level: Any,
        headline: Any,
        description: Any,
        instruction: Any,
        hours: Any,
        districts: Any,
        cells: Any,
        polygon: Any,
        config: Any,
        session: Any,
        lang_value: Any,
    ) -> Any:
        which = clicked()
        if which not in (ids.WARNING_COUNT, ids.WARNING_DRAFT):
            raise PreventUpdate
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        area = _area(districts, cells, polygon)
        exercise_id = drill_of(config, me)
        try:
            inside_text = await _inside(console, token, lang, area, exercise_id)
        except ApiError as exc:
            return "", _error(lang, exc), no_update
        if which == ids.WARNING_COUNT:
            return inside_text, "", no_update
        now = datetime.now(UTC)
        body = {
            "event_type": event_type or "",
            "level": level or "yellow",
            "area": area,
            "onset": now.isoformat(),
            "expires": (now + timedelta(hours=_hours(hours))).isoformat(),
            "headline": headline or "",
            "description": description or "",
            "instruction": instruction or "",
        }
        if exercise_id:
            body["exercise_id"] = exercise_id
        try:
            made = await console.api.post("/warnings", token, body)
        except ApiError as exc:
            return inside_text, _error(lang, exc), no_update
        # drafted: the drawn shape leaves the map (the draft's area is drawn once issued)
        clear = {"mode": "remove", "action": "clear all", "n_clicks": int(_draft or 0)}
        return inside_text, t(lang, "warning.drafted", identifier=made.get("identifier", "")), clear

    @app.callback(
        Output(ids.WARNING_LIST, "children"),
        Input(ids.WARNINGS, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def warning_list(data: Any, session: Any, lang_value: Any) -> Any:
        if data is None:
            raise PreventUpdate
        me, _token = await require(console, session)
        if not me.may("warning.draft"):
            raise PreventUpdate
        lang = lang_of(lang_value or console.settings.dashboard.language)
        rows, failed = stored(data)
        if failed is not None:
            return html.P(_error(lang, failed), className="muted")
        if not rows:
            return html.P(t(lang, "warning.none"), className="muted")
        items = []
        for w in sorted(rows, key=_rank):
            acts = []
            if w["state"] == "draft" and me.may_on("warning.approve", w):
                acts.append(
                    html.Button(
                        t(lang, "warning.approve"),
                        id={"type": ACT, "id": w["identifier"], "act": "approve"},
                        className="btn primary",
                    )
                )
            if me.may_on("warning.cancel", w) or (w["state"] == "draft" and me.may_on("warning.draft", w)):
                acts.append(
                    html.Button(
                        t(lang, "warning.cancel"),
                        id={"type": ACT, "id": w["identifier"], "act": "cancel"},
                        className="btn",
                    )
                )
            items.append(
                html.Div(
                    className=f"warning-item level-{w['level']}",
                    **{"data-identifier": w["identifier"], "data-state": w["state"]},
                    children=[
                        html.Div(
                            [
                                html.B(t(lang, f"warning_level.{w['level']}")),
                                " ",
                                w.get("headline", ""),
                                " ",
                                html.Span(t(lang, f"warning.state.{w['state']}"), className="muted small"),
                            ]
                        ),
                        html.Div(w["identifier"], className="muted small mono"),
                        html.Div(acts, className="row"),
                    ],
                )
            )
        return items

    @app.callback(
        Output(ids.WARNING_FEEDBACK, "children", allow_duplicate=True),
        Input({"type": ACT, "id": ALL, "act": ALL}, "n_clicks"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def act(_clicks: Any, session: Any, lang_value: Any) -> Any:
        button = clicked()
        if not isinstance(button, dict) or button.get("type") != ACT:
            raise PreventUpdate
        _me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        ident, what = str(button["id"]), str(button["act"])
        body = {"reason": t(lang, "warning.cancel_reason")} if what == "cancel" else None
        try:
            await console.api.post(f"/warnings/{ident}/{what}", token, body)
        except ApiError as exc:
            return _error(lang, exc)
        return t(lang, "warning.approved" if what == "approve" else "warning.cancelled", identifier=ident)

    @app.callback(
        Output(ids.WARNING_POLYGON, "value"),
        Output(ids.WARNING_INSIDE, "children", allow_duplicate=True),
        Input(ids.WARNING_DRAW, "geojson"),
        State(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def drawn(geojson: Any, config: Any, session: Any, lang_value: Any) -> Any:
        """Drawn, edited or deleted on the map: the points into the panel (typed points
        stay possible, from the keyboard) and what is inside counted at once."""
        points = drawn_points(geojson, datum)
        if not points:
            return "", ""
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            inside = await _inside(
                console, token, lang, _area([], "", points), drill_of(config, me)
            )
        except ApiError as exc:
            return points, _error(lang, exc)
        return points, inside

    @app.callback(
        Output(ids.WARNING_DISTRICTS, "value", allow_duplicate=True),
        Input(ids.LAYER_DISTRICTS, "n_clicks"),
        State(ids.LAYER_DISTRICTS, "clickData"),
        State(ids.WARNING_PANEL, "open"),
        State(ids.WARNING_DISTRICTS, "value"),
        prevent_initial_call=True,
    )
    def district_clicked(_clicks: Any, feature: Any, form_open: Any, chosen: Any) -> Any:
        """A district clicked on the map while the draft form is open joins the area
        (or leaves it): the same field as the dropdown, so the dropdown shows it."""
        picked = picked_districts(chosen, feature, form_open=bool(form_open))
        return no_update if picked is None else picked

    @app.callback(
        Output(ids.LAYER_DISTRICTS, "hideout"),
        Input(ids.WARNING_DISTRICTS, "value"),
        Input(ids.WARNING_PANEL, "open"),
        State(ids.LAYER_DISTRICTS, "hideout"),
        prevent_initial_call=True,
    )
    def districts_highlighted(chosen: Any, form_open: Any, hideout: Any) -> Any:
        return districts_hideout(hideout, chosen, form_open=bool(form_open))

    @app.callback(
        Output(ids.LAYER_INBOUND_WARNINGS, "data"),
        Input(ids.WARNING_TICK, "data"),
        Input(ids.HEAT_TICK, "data"),
        Input(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def inbound_warnings(_tick: Any, _heat: Any, _config: Any, session: Any, lang_value: Any) -> Any:
        """外部预警 on the map: the agencies' warnings in force (the command service leaves
        out cancelled, replaced and expired ones), again with every warning change and
        the heat's minute."""
        me, token = await require(console, session)
        if not me.may("inbound_warning.read"):
            raise PreventUpdate
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            rows = await console.api.get("/warnings/inbound", token)
        except ApiError as exc:
            log.info("inbound warnings unavailable: %s", exc)
            return geo.collection([])
        zone = tz(console)
        features: list[dict[str, Any]] = []
        for w in sorted((r for r in rows if isinstance(r, dict)), key=_rank, reverse=True):
            shapes, adcodes = inbound_shapes(w.get("areas"))
            if adcodes:
                query = "SELECT boundary FROM district WHERE adcode = ANY(%s)"
                for (raw,) in await console.db.fetch(query, (adcodes,)):
                    boundary = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
                    if isinstance(boundary, dict) and boundary.get("type") in ("Polygon", "MultiPolygon"):
                        shapes.append(boundary)
            popup, tip = inbound_popup(lang, w, zone)
            props = {
                "i": str(w["id"]),
                "level": w.get("level"),
                "colour": w.get("colour"),
                "html": popup,
                "tip": tip,
            }
            features.extend(
                {"type": "Feature", "geometry": geo.geometry(shape, datum), "properties": props}
                for shape in shapes
            )
        return geo.collection(features)


def _hours(value: Any) -> float:
    """The warning's duration typed on the desk (1–720 h); anything else is the usual 6 h."""
    try:
        hours = float(str(value).strip())
    except ValueError:
        return 6.0
    return hours if 1 <= hours <= 720 else 6.0
