"""The map: every layer switchable, the static ones filled by one callback after
load, the live ones (incidents, teams) by the browser code as changes arrive.

Rendering: the map prefers canvas (``preferCanvas``), points are GeoJSON drawn by
functions in ``assets/wuwang-map.js`` (circle markers, no DOM marker per point), and
the five networks' 10,000+ points are clustered (supercluster, inside dash-leaflet).
Incidents and teams sit in panes of their own above everything else.
"""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl
from dash import html

from dashboard import ids
from dashboard.data.registries import NETWORKS
from dashboard.i18n import Lang, t
from dashboard.layout import data_attrs, js
from dashboard.tiles import tile_layers
from wuwang.settings import Settings

#: The city (襄阳市) as first shown: the whole prefecture.
CENTER = (31.98, 112.05)
ZOOM = 9

NETWORK_COLOURS = {
    "patrol": "#26c6da",
    "community": "#66bb6a",
    "venue": "#ab47bc",
    "police": "#5c6bc0",
    "video": "#ec407a",
}


def _empty() -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": []}


def _source(urls: dict[str, str] | None, layer: str) -> dict[str, Any]:
    """Where a static layer's GeoJSON comes from: its signed URL (dashboard.geoserve),
    fetched by dash-leaflet itself; empty when there is none (no database)."""
    if urls and layer in urls:
        return {"url": urls[layer]}
    return {"data": _empty()}


def network_layer(network: str, urls: dict[str, str] | None = None) -> dl.GeoJSON:
    return dl.GeoJSON(
        id=ids.layer_network(network),
        **_source(urls, f"net-{network}"),
        cluster=True,
        zoomToBoundsOnClick=True,
        superClusterOptions={"radius": 70, "maxZoom": 16, "minPoints": 3},
        pointToLayer=js("networkPoint"),
        clusterToLayer=js("clusterIcon"),
        hideout={"colour": NETWORK_COLOURS[network], "network": network},
    )


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
    return rows


def map_panel(
    settings: Settings,
    lang: Lang,
    *,
    wall: bool,
    urls: dict[str, str] | None = None,
    counts: dict[str, dict[str, int]] | None = None,
    networks_on: bool = False,
    grid_on: bool = False,
) -> html.Div:
    base = tile_layers(settings)
    overlays = [
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_DISTRICTS,
                **_source(urls, "districts"),
                style=js("districtStyle"),
                hideout={"basemap": bool(base)},  # a lighter fill: the streets show through
                interactive=False,
            ),
            name=t(lang, "layer.districts"),
            checked=True,
        ),
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_DISTRICT_LABELS,
                **_source(urls, "district_labels"),
                pointToLayer=js("labelPoint"),
                interactive=False,
            ),
            name=t(lang, "layer.district_names"),
            checked=True,
        ),
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_GRID,
                **(_source(urls, "grid") if grid_on else {"data": _empty()}),
                style=js("gridStyle"),
                interactive=False,
            ),
            name=t(lang, "layer.grid"),
            checked=grid_on,  # 3,000+ cells: loaded when first switched on
        ),
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_RIVER, **_source(urls, "river"), style=js("riverStyle"), interactive=False
            ),
            name=t(lang, "layer.river"),
            checked=not base,  # a basemap draws the river itself
        ),
    ]
    if settings.dashboard_streets_file:
        overlays.append(
            dl.Overlay(
                dl.GeoJSON(
                    id=ids.LAYER_STREETS,
                    **_source(urls, "streets"),
                    style=js("streetStyle"),
                    interactive=False,
                ),
                name=t(lang, "layer.streets"),
                checked=True,
            )
        )
    overlays.append(
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_STREET_NAMES,
                **_source(urls, "street_names"),
                pointToLayer=js("streetLabel"),
                interactive=False,
            ),
            name=t(lang, "layer.street_names"),
            checked=True,
        )
    )
    overlays.append(
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_PLACES,
                **_source(urls, "places"),
                pointToLayer=js("placePoint"),
                interactive=False,
            ),
            name=t(lang, "layer.places"),
            checked=True,
        )
    )
    overlays.append(
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_HEAT, data=_empty(), pane="heat", pointToLayer=js("heatPoint"), interactive=False
            ),
            name=t(lang, "layer.heat", hours=settings.dashboard_heat_hours),
            checked=True,
        )
    )
    for network in NETWORKS:
        overlays.append(
            dl.Overlay(network_layer(network, urls), name=t(lang, f"network.{network}"), checked=networks_on)
        )
    overlays += [
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_WAREHOUSES, data=_empty(), pointToLayer=js("warehousePoint"), pane="warehouses"
            ),
            name=t(lang, "layer.warehouses"),
            checked=not wall,
        ),
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_TEAMS,
                data=_empty(),
                pointToLayer=js("teamPoint"),
                onEachFeature=js("onEachTeam"),
                pane="teams",
            ),
            name=t(lang, "layer.teams"),
            checked=True,
        ),
        dl.Overlay(
            dl.GeoJSON(
                id=ids.LAYER_INCIDENTS,
                data=_empty(),
                pointToLayer=js("incidentPoint"),
                onEachFeature=js("onEachIncident"),
                pane="incidents",
            ),
            name=t(lang, "layer.incidents"),
            checked=True,
        ),
    ]
    return html.Div(
        className="map-panel" + ("" if base else " no-basemap"),
        children=[
            dl.MapContainer(
                id=ids.MAP,
                center=list(CENTER),
                zoom=ZOOM,
                minZoom=7,
                maxZoom=settings.dashboard_tile_max_zoom,
                preferCanvas=True,
                zoomControl=not wall,
                attributionControl=bool(settings.dashboard_tile_url),
                style={"width": "100%", "height": "100%"},
                children=[
                    *base,
                    dl.Pane(name="heat", style={"zIndex": 350}),
                    dl.Pane(name="warehouses", style={"zIndex": 620}),
                    dl.Pane(name="teams", style={"zIndex": 640}),
                    dl.Pane(name="incidents", style={"zIndex": 660}),
                    dl.LayersControl(overlays, id=ids.LAYERS, position="topright", collapsed=wall),
                    dl.ScaleControl(position="bottomleft", imperial=False),
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
