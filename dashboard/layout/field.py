"""The field page (mobile web) for a rescue team: one-tap status, the current order on
a small map with an acknowledge button, an on-scene report with photo and GPS, and the
count of the people in a shelter near the team (应急避难场所).

Everything a team sends goes through the browser's outbox (``assets/wuwang-field.js``,
IndexedDB): it is stored first, then sent with an idempotent id, and stays on the
page as "waiting" until the server has it — so a report made in a basement with no
signal is sent, exactly once, when the network returns. This page therefore has no
Dash callbacks of its own: the outbox posts to ``/field/api/*`` (``dashboard.field_api``).
"""

from __future__ import annotations

import dash_leaflet as dl
from dash import dcc, html

from dashboard import ids
from dashboard.api import Me
from dashboard.context import Console
from dashboard.i18n import Lang, catalogue, t
from dashboard.i18n import data as words
from dashboard.layout import data_attrs, js
from dashboard.layout.login import lang_switch
from dashboard.layout.map import CENTER, fixed_layers
from dashboard.tiles import tile_layers

FIELD_STATUSES = ("en_route", "on_scene", "returning", "available", "off_duty")
REPORT_CATEGORIES = ("fire", "flood", "traffic", "gas", "crowd", "fight", "medical", "rescue", "other")


def field_page(
    console: Console,
    lang: Lang,
    who: Me,
    urls: dict[str, str] | None = None,
    team_name: str | None = None,
) -> html.Div:
    """``urls``: the static map layers' signed URLs (none without a database)."""
    settings = console.settings
    tiles = tile_layers(settings)
    config = {**console.browser_config("field"), "team_id": who.team_id}
    return html.Div(
        className="field-page",
        id=ids.FIELD,
        children=[
            dcc.Store(id=ids.CONFIG, data=config),
            dcc.Store(id=ids.I18N, data=catalogue(lang)),
            dcc.Store(id=ids.LIVE_STATUS),
            html.Header(
                className="field-top",
                children=[
                    html.Div(
                        className="field-team",
                        children=[
                            html.Strong(team_name or words.user_label(lang, who)),  # the team by name
                            html.Span(who.team_id or "", className="mono muted"),
                        ],
                    ),
                    html.Div(id=ids.CONNECTION, className="connection", children=t(lang, "live.connecting")),
                    html.Button(
                        t(lang, "nav.logout"), id=ids.LOGOUT, n_clicks=0, className="btn btn-ghost btn-small"
                    ),
                    # A new order: in the sticky header, so it stays on screen until acknowledged.
                    html.Div(
                        id=ids.FIELD_ALERT,
                        className="order-alert",
                        hidden=True,
                        role="alert",
                        children=[
                            html.Div(
                                className="order-alert-text",
                                children=[
                                    html.Strong(t(lang, "field.new_order")),
                                    html.Span(className="order-alert-title"),
                                ],
                            ),
                            html.Button(
                                t(lang, "field.new_order_ack"),
                                className="btn btn-primary",
                                **data_attrs(action="ack"),
                            ),
                        ],
                    ),
                ],
            ),
            html.Div(
                id=ids.STALE_BANNER, className="stale-banner", hidden=True, children=t(lang, "field.offline")
            ),
            html.Section(
                className="field-section",
                children=[
                    html.H2(t(lang, "field.status")),
                    html.Div(
                        id=ids.FIELD_STATUS,
                        className="status-current muted",
                        children=t(lang, "field.status_unknown"),
                    ),
                    html.Div(
                        className="status-buttons",
                        children=[
                            html.Button(
                                t(lang, f"team_status.{s}"),
                                className=f"status-btn status-{s}",
                                **data_attrs(status=s),
                            )
                            for s in FIELD_STATUSES
                        ],
                    ),
                ],
            ),
            # 预警: the warnings sent to this team, in force (assets/30-wuwang-field.js fills it)
            html.Section(
                id=ids.FIELD_WARNINGS,
                className="field-section field-warnings",
                hidden=True,
            ),
            html.Section(
                className="field-section",
                children=[
                    html.H2(t(lang, "field.order")),
                    html.Div(id=ids.FIELD_ORDER, className="order-card", children=t(lang, "field.no_order")),
                    dl.MapContainer(
                        id=ids.FIELD_MAP,
                        center=list(CENTER),
                        zoom=9,
                        preferCanvas=True,
                        className="field-map" + ("" if tiles else " no-basemap"),
                        attributionControl=bool(settings.dashboard.tile_url),
                        children=[
                            *tiles,
                            # the registry's field layers (dashboard/layers.py): district
                            # outlines and the river when there is no basemap, and the road
                            # names an order's address gives, from zoom 14
                            *fixed_layers(settings, "field", basemap=bool(tiles), urls=urls),
                            # the line from the team to the scene, and the team itself
                            dl.GeoJSON(
                                id=ids.FIELD_ROUTE_LAYER,
                                data={"type": "FeatureCollection", "features": []},
                                style=js("routeStyle"),
                                pointToLayer=js("herePoint"),
                                interactive=False,
                            ),
                            dl.GeoJSON(
                                id=ids.FIELD_ORDER_LAYER,
                                data={"type": "FeatureCollection", "features": []},
                                pointToLayer=js("orderPoint"),
                            ),
                        ],
                        # a pan by hand stops the map following the team (assets/30-wuwang-field.js);
                        # not moveend: dash-leaflet's own viewport tracking takes that one
                        eventHandlers={
                            "dragstart": js("fieldMapDragged"),
                            "zoomend": js("fieldMapSeen"),
                            "layeradd": js("fieldMapSeen"),
                        },
                    ),
                    html.Button(
                        t(lang, "field.follow"),
                        className="btn btn-block follow-btn",
                        hidden=True,
                        **data_attrs(action="follow"),
                    ),
                    html.Button(
                        t(lang, "field.ack"),
                        className="btn btn-primary btn-block",
                        disabled=True,
                        **data_attrs(action="ack"),
                    ),
                ],
            ),
            html.Section(
                className="field-section",
                children=[
                    html.H2(t(lang, "field.report")),
                    html.Label(t(lang, "field.category"), htmlFor="field-category"),
                    html.Select(
                        id="field-category",
                        className="input",
                        children=[html.Option(t(lang, f"report.{c}"), value=c) for c in REPORT_CATEGORIES],
                    ),
                    html.Label(t(lang, "field.description"), htmlFor="field-description"),
                    dcc.Textarea(
                        id="field-description",
                        className="input",
                        maxLength=2000,
                        placeholder=t(lang, "field.description_placeholder"),
                    ),
                    # By default a report belongs to the current order's incident; this says otherwise.
                    dcc.Checklist(
                        id=ids.FIELD_NEW_EVENT,
                        className="new-event",
                        options=[{"label": t(lang, "field.new_event"), "value": "new"}],
                        value=[],
                    ),
                    html.Div(id="field-report-target", className="muted small", hidden=True),
                    html.Label(t(lang, "field.photo")),
                    # Dash has no file input that keeps the file in the browser: the outbox code
                    # puts an <input type=file accept=image/*> here and reads the photo itself.
                    html.Div(className="photo-input", **data_attrs(input="photo")),
                    html.Div(
                        className="row",
                        children=[
                            html.Button(
                                t(lang, "field.locate"), className="btn", **data_attrs(action="locate")
                            ),
                            html.Span(
                                id="field-position",
                                className="muted small",
                                children=t(lang, "field.no_position"),
                            ),
                        ],
                    ),
                    html.Button(
                        t(lang, "field.send"),
                        className="btn btn-primary btn-block",
                        **data_attrs(action="report"),
                    ),
                ],
            ),
            # 应急避难场所: how many people are in a shelter near the team (the JS fills the list
            # from /field/api/current; the count goes through the outbox like a report)
            html.Section(
                id="field-shelters",
                className="field-section field-shelters",
                children=[
                    html.H2(t(lang, "field.shelter")),
                    # the form shows once the list holds a shelter; "none within reach" when
                    # it is empty — neither until the first answer, so nothing misleads
                    html.Div(
                        id="field-shelter-form",
                        hidden=True,
                        children=[
                            html.Label(t(lang, "field.shelter_pick"), htmlFor="field-shelter"),
                            html.Select(id="field-shelter", className="input"),
                            html.Div(id="field-shelter-now", className="muted small"),
                            html.Label(t(lang, "field.shelter_count"), htmlFor="field-shelter-count"),
                            # text with a numeric keypad: no browser-language spin buttons
                            dcc.Input(
                                id="field-shelter-count",
                                type="text",
                                inputMode="numeric",
                                pattern="[0-9]*",
                                maxLength=6,
                                className="input",
                                debounce=False,
                            ),
                            html.Div(id="field-shelter-msg", className="small", role="status"),
                            html.Button(
                                t(lang, "field.shelter_send"),
                                className="btn btn-primary btn-block",
                                **data_attrs(action="shelter"),
                            ),
                        ],
                    ),
                    html.Div(
                        id="field-shelter-none",
                        className="muted small",
                        hidden=True,
                        children=t(lang, "field.shelter_none"),
                    ),
                ],
            ),
            html.Section(
                className="field-section",
                children=[
                    html.H2(t(lang, "field.outbox")),
                    html.Div(id=ids.FIELD_QUEUE, className="outbox"),
                ],
            ),
            html.Footer(className="field-foot", children=[lang_switch(lang)]),
        ],
    )
