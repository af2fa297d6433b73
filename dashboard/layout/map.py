"""The map: one switchable overlay per layer of the registry (dashboard/layers.py) —
the static ones fetched by dash-leaflet from their signed URLs, the served ones filled
by callbacks/map.py, the live ones (incidents, teams) by the browser code as changes
arrive.

Rendering: the map prefers canvas (``preferCanvas``), points are GeoJSON drawn by
functions in ``assets/10-wuwang-map.js`` (circle markers, no DOM marker per point),
the five networks' 10,000+ points are clustered (supercluster, inside dash-leaflet),
and street names are DOM labels only in view from zoom 14. Incidents and teams sit in
panes of their own above everything else.
"""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl
from dash import dcc, html

from dashboard import ids
from dashboard.data.registries import NETWORKS
from dashboard.i18n import Lang, t
from dashboard.layers import LAYERS, NETWORK_COLOURS, MapLayer, Static, View, panes
from dashboard.layout import data_attrs, js
from dashboard.tiles import tile_layers
from wuwang.settings import Settings

#: The city (襄阳市) as first shown: the whole prefecture.
CENTER = (31.98, 112.05)
ZOOM = 9


def _empty() -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": []}


def _source(layer: MapLayer, urls: dict[str, str] | None, shown: bool) -> dict[str, Any]:
    """Where a layer's GeoJSON comes from: a static file's signed URL (dashboard.geoserve),
    fetched by dash-leaflet itself — none yet for a layer loaded when switched on, or
    without a database —; empty for the live and served ones, filled as they come."""
    static = layer.source.name if isinstance(layer.source, Static) else None
    if static and urls and static in urls and (shown or not layer.on_request):
        return {"url": urls[static]}
    return {"data": _empty()}


def _geojson(layer: MapLayer, urls: dict[str, str] | None, *, shown: bool, basemap: bool) -> dl.GeoJSON:
    props: dict[str, Any] = {"id": layer.id, **_source(layer, urls, shown), "interactive": layer.interactive}
    for prop, fn in (
        ("style", layer.style),
        ("pointToLayer", layer.point),
        ("onEachFeature", layer.each),
        ("clusterToLayer", layer.cluster_icon),
    ):
        if fn:
            props[prop] = js(fn)
    if layer.pane is not None:
        props["pane"] = layer.pane.name
    if layer.kind == "clusters":
        props |= {
            "cluster": True,
            "zoomToBoundsOnClick": True,
            "superClusterOptions": {"radius": 70, "maxZoom": 16, "minPoints": 3},
        }
    # every drawing function is told whether a basemap is under it (districts: a lighter
    # fill, the streets show through)
    props["hideout"] = {**layer.hideout, "basemap": basemap}
    return dl.GeoJSON(**props)


def overlays(
    settings: Settings,
    lang: Lang,
    view: View,
    *,
    basemap: bool,
    urls: dict[str, str] | None = None,
    opt_in: frozenset[str] = frozenset(),
) -> list[dl.Overlay]:
    """One switchable overlay per layer of the registry (dashboard/layers.py)."""
    out = []
    for layer in LAYERS:
        if not layer.available(settings):
            continue
        shown = layer.shown(view, basemap=basemap, opt_in=opt_in)
        name = t(lang, layer.label, **(layer.label_args(settings) if layer.label_args else {}))
        out.append(dl.Overlay(_geojson(layer, urls, shown=shown, basemap=basemap), name=name, checked=shown))
    return out


def first_files(
    settings: Settings,
    view: View,
    *,
    basemap: bool,
    urls: dict[str, str] | None,
    opt_in: frozenset[str] = frozenset(),
) -> list[str]:
    """The files of the static layers switched on when the page is drawn: the browser
    asks for them as soon as the page arrives (assets/10-wuwang-map.js,
    ``prefetchFiles``), while the panels' first callbacks run, and dash-leaflet's own
    requests for the same URLs are then answered from its cache."""
    if not urls:
        return []
    return [
        urls[layer.source.name]
        for layer in LAYERS
        if layer.available(settings)
        and isinstance(layer.source, Static)
        and layer.source.name in urls
        and layer.shown(view, basemap=basemap, opt_in=opt_in)
    ]


def fixed_layers(
    settings: Settings, view: View, *, basemap: bool, urls: dict[str, str] | None
) -> list[dl.GeoJSON]:
    """The registry's layers that start on in a view, without a layers control (the field
    page's small map): only those with data to show."""
    return [
        _geojson(layer, urls, shown=True, basemap=basemap)
        for layer in LAYERS
        if layer.available(settings)
        and layer.shown(view, basemap=basemap)
        and isinstance(layer.source, Static)
        and urls
        and layer.source.name in urls
    ]


def legend(lang: Lang, counts: dict[str, dict[str, int]] | None) -> list[Any]:
    """The five networks with their colours and how many points each has."""
    if not counts:
        return []
    rows: list[Any] = [html.Div(t(lang, "legend.networks"), className="legend-title")]
    for network in NETWORKS:
        total = sum(counts.get(network, {}).values())
        rows.append(
            html.Div(
                className="legend-row",
                **data_attrs(network=network),
                children=[
                    html.Span(className="swatch", style={"background": NETWORK_COLOURS[network]}),
                    html.Span(t(lang, f"network.{network}"), className="legend-name"),
                    html.Strong(f"{total:,}", className="legend-count"),
                ],
            )
        )
    rows.append(
        html.Div(
            className="legend-levels",
            children=[
                html.Span(roman, className=f"level-badge level-{lv}")
                for lv, roman in ((1, "I"), (2, "II"), (3, "III"), (4, "IV"))
            ],
        )
    )
    rows.append(warning_legend(lang))
    return rows


#: 预警 colours, most severe first (GB/T 35965.1's 红/橙/黄/蓝; the swatches' CSS holds them)
WARNING_LEVELS = ("red", "orange", "yellow", "blue")


def warning_legend(lang: Lang) -> html.Div:
    """预警 on the map: the console's own warnings outlined solid, other agencies' (CAP)
    dashed, each in its level's colour."""
    return html.Div(
        className="legend-warnings",
        children=[
            html.Div(t(lang, "legend.warnings"), className="legend-title"),
            *(
                html.Div(
                    className=f"legend-warning {kind}",
                    children=[
                        *(html.Span(className=f"area-swatch level-{lv}") for lv in WARNING_LEVELS),
                        html.Span(t(lang, f"legend.warning_{kind}"), className="legend-name"),
                    ],
                )
                for kind in ("own", "inbound")
            ),
        ],
    )


#: The warning's area as the operator draws it: one polygon or rectangle, no lines,
#: circles or markers (a warning's area is a polygon, docs/warnings.md).
DRAW_SHAPES = {
    "polygon": {"allowIntersection": False, "shapeOptions": {"color": "#22d3ee", "weight": 3}},
    "rectangle": {"shapeOptions": {"color": "#22d3ee", "weight": 3}},
    "polyline": False,
    "circle": False,
    "marker": False,
    "circlemarker": False,
}


def draw_control() -> dl.FeatureGroup:
    """预警 on the desk: draw, edit or delete the warning's area on the map (dash-leaflet's
    EditControl; leaflet-draw and its icons are inside the installed package, nothing is
    fetched). callbacks/warnings.py turns what is drawn into the panel's polygon points."""
    return dl.FeatureGroup(
        [
            dl.EditControl(
                id=ids.WARNING_DRAW, position="topleft", draw=DRAW_SHAPES, edit={"edit": True, "remove": True}
            )
        ]
    )


def map_panel(
    settings: Settings,
    lang: Lang,
    *,
    wall: bool,
    urls: dict[str, str] | None = None,
    counts: dict[str, dict[str, int]] | None = None,
    networks_on: bool = False,
    grid_on: bool = False,
    draw: bool = False,
) -> html.Div:
    base = tile_layers(settings)
    words = frozenset(word for word, on in {"networks": networks_on, "grid": grid_on}.items() if on)
    view: View = "wall" if wall else "desk"
    switched = overlays(settings, lang, view, basemap=bool(base), urls=urls, opt_in=words)
    return html.Div(
        className="map-panel" + ("" if base else " no-basemap"),
        children=[
            dcc.Store(
                id=ids.MAP_FILES,
                data=first_files(settings, view, basemap=bool(base), urls=urls, opt_in=words),
            ),
            # set by the browser once those files are drawn: the desk's panels follow then
            dcc.Store(id=ids.MAP_UP),
            dl.MapContainer(
                id=ids.MAP,
                center=list(CENTER),
                zoom=ZOOM,
                minZoom=7,
                maxZoom=settings.dashboard.tile_max_zoom,
                preferCanvas=True,
                zoomControl=not wall,
                attributionControl=bool(settings.dashboard.tile_url),
                style={"width": "100%", "height": "100%"},
                children=[
                    *base,
                    *(dl.Pane(name=pane.name, style={"zIndex": pane.z}) for pane in panes()),
                    dl.LayersControl(switched, id=ids.LAYERS, position="topright", collapsed=wall),
                    dl.ScaleControl(position="bottomleft", imperial=False),
                    *([draw_control()] if draw else []),
                ],
            ),
            html.Div(
                id=ids.NETWORK_LEGEND,
                className="map-legend",
                children=legend(lang, counts),
                hidden=not counts,
            ),
        ],
    )
