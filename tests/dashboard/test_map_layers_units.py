"""The map's layers come from one registry (dashboard/layers.py): the map draws one
overlay per entry, in its order, switched on per view; the server serves its static
files; the browser is told which layer each live feed draws. The basemap's tile kind
(raster or vector) follows DASHBOARD_TILE_KIND or the URL's suffix."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dashboard import geoserve, ids, layers
from dashboard.api import Me
from dashboard.app import ASSETS, content_security_policy
from dashboard.context import Console
from dashboard.i18n import t
from dashboard.layers import LAYERS, Live, MapLayer, Static
from dashboard.layout import map as map_layout
from dashboard.layout.field import field_page
from dashboard.layout.map import map_panel
from dashboard.tiles import VECTOR_CLASS, VECTOR_GRID_ASSET, basemap, tile_kind, tile_layers
from wuwang.settings import Settings

CATALOGUES = Path(__file__).resolve().parents[2] / "wuwang" / "i18n"
URLS = {name: f"/geo/{name}.json" for name in geoserve.LAYERS}


def settings(**more: Any) -> Settings:
    base: dict[str, Any] = {
        "demo_mode": True,
        "dashboard_streets_file": None,
        "dashboard_basemap_file": Path("/nonexistent"),
    }
    return Settings(**(base | more))


def _find(component: Any, cls: str) -> list[Any]:
    found = [component] if type(component).__name__ == cls else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found += _find(child, cls)
    return found


def overlays(panel: Any) -> dict[str, Any]:
    return {o.children.id: o for o in _find(panel, "Overlay")}


def test_the_map_draws_the_registry_in_order_with_names_in_both_languages() -> None:
    panel = map_panel(settings(), "zh_CN", wall=False, urls=URLS)
    drawn = [o.children.id for o in _find(panel, "Overlay")]
    expected = [layer.id for layer in LAYERS if layer.key != "streets"]  # no streets file set
    assert drawn == expected
    assert len({layer.id for layer in LAYERS}) == len(LAYERS)  # one id per layer
    for lang in ("zh_CN", "en"):
        catalogue = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))
        for layer in LAYERS:
            assert layer.label in catalogue, (lang, layer.label)
    names = [o.name for o in _find(map_panel(settings(), "en", wall=False, urls=URLS), "Overlay")]
    assert "Districts" in names and "Incidents" in names
    # the ids the other code knows the layers by are the registry's
    assert layers.by_key("street-names").id == ids.LAYER_STREET_NAMES
    assert ids.layer_network("video") == layers.by_key("net-video").id
    # the panes of their own, in z-order, exactly those the layers draw in
    panes = [(p.name, p.style["zIndex"]) for p in _find(panel, "Pane")]
    assert panes == [("heat", 350), ("risk", 600), ("warehouses", 620), ("teams", 640), ("incidents", 660)]


def test_what_is_on_at_first_differs_between_desk_and_wall() -> None:
    desk = overlays(map_panel(settings(), "zh_CN", wall=False, urls=URLS))
    wall = overlays(map_panel(settings(), "zh_CN", wall=True, urls=URLS))
    assert desk[ids.LAYER_WAREHOUSES].checked is True and wall[ids.LAYER_WAREHOUSES].checked is False
    for view in (desk, wall):
        assert view[ids.LAYER_INCIDENTS].checked and view[ids.LAYER_TEAMS].checked
        assert view[ids.LAYER_STREET_NAMES].checked and view[ids.LAYER_RIVER].checked  # no basemap
        assert not view[ids.layer_network("patrol")].checked and not view[ids.LAYER_GRID].checked
        assert "url" not in view[ids.LAYER_GRID].children.to_plotly_json()["props"]  # loaded when switched on
    # ?layers=networks, ?layers=all
    on = overlays(map_panel(settings(), "zh_CN", wall=False, urls=URLS, networks_on=True, grid_on=True))
    assert on[ids.layer_network("patrol")].checked and on[ids.LAYER_GRID].checked
    assert on[ids.LAYER_GRID].children.url == "/geo/grid.json"
    net = on[ids.layer_network("patrol")].children
    assert net.cluster is True and net.hideout["colour"] == layers.NETWORK_COLOURS["patrol"]
    # the streets' file brings the streets layer
    with_streets = overlays(
        map_panel(settings(dashboard_streets_file=Path("s.geojson")), "zh_CN", wall=False)
    )
    assert with_streets[ids.LAYER_STREETS].checked


def test_a_new_layer_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe of docs/architecture.md: an entry (plus its names and, for a new kind
    of symbol, a drawing function) is on the map, served, and loaded when switched on."""
    example = MapLayer(
        "example",
        "layer.places",  # any catalogue key: the recipe adds its own
        "markers",
        Static("example"),
        on=frozenset({"desk"}),
        point="placePoint",
        on_request=True,
    )
    monkeypatch.setattr(map_layout, "LAYERS", (*LAYERS, example))
    monkeypatch.setattr(layers, "LAYERS", (*LAYERS, example))
    assert "example" in layers.static_files()
    desk = overlays(map_panel(settings(), "zh_CN", wall=False, urls={"example": "/geo/example.json"}))
    wall = overlays(map_panel(settings(), "zh_CN", wall=True, urls={"example": "/geo/example.json"}))
    assert desk["layer-example"].checked and desk["layer-example"].children.url == "/geo/example.json"
    assert (
        not wall["layer-example"].checked
        and "url" not in wall["layer-example"].children.to_plotly_json()["props"]
    )
    assert desk["layer-example"].children.pointToLayer == {"variable": "wuwang.map.placePoint"}


def test_the_registry_says_what_is_served_and_what_the_live_feeds_draw() -> None:
    assert set(geoserve.LAYERS) == {
        "districts",
        "district_labels",
        "grid",
        "river",
        "streets",
        "places",
        "street_names",
        *(f"net-{n}" for n in ("patrol", "community", "venue", "police", "video")),
    }
    live = {layer.source.feed: layer.id for layer in LAYERS if isinstance(layer.source, Live)}
    assert live == {"incidents": ids.LAYER_INCIDENTS, "teams": ids.LAYER_TEAMS}
    assert Console.create(settings()).browser_config("desk")["live_layers"] == live
    heat = layers.by_key("heat")
    assert t("zh_CN", heat.label, **(heat.label_args(settings()) if heat.label_args else {})).startswith(
        "110"
    )
    # a frozen dataclass: an entry is a value, not state
    with pytest.raises(AttributeError):
        heat.key = "other"  # type: ignore[misc]
    assert replace(heat, key="other").id == "layer-other"


RASTER = "http://gis.city.internal/tiles/{z}/{x}/{y}.png"
VECTOR = "http://gis.city.internal/vt/{z}/{x}/{y}.pbf"


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        (RASTER, "auto", "raster"),
        (VECTOR, "auto", "vector"),
        ("http://gis.city.internal/vt/{z}/{x}/{y}.MVT?key=1", "auto", "vector"),
        ("http://gis.city.internal/vt/{z}/{x}/{y}", "vector", "vector"),  # no suffix: as set
        (VECTOR, "raster", "raster"),
    ],
)
def test_the_tile_kind_is_set_or_read_from_the_url(url: str, kind: str, expected: str) -> None:
    s = settings(dashboard_tile_url=url, dashboard_tile_kind=kind)
    assert tile_kind(s) == expected
    b = basemap(s)
    assert b is not None and b.kind == expected and b.url == url


def test_vector_tiles_are_a_stand_in_layer_the_browser_replaces() -> None:
    s = settings(
        dashboard_tile_url=VECTOR, dashboard_tile_attribution="市测绘院", dashboard_tile_datum="gcj02"
    )
    (layer,) = tile_layers(s)
    assert layer.url == VECTOR and layer.className == VECTOR_CLASS and layer.attribution == "市测绘院"
    panel = map_panel(s, "zh_CN", wall=False, urls=URLS)
    assert "no-basemap" not in getattr(panel, "className", "")
    assert overlays(panel)[ids.LAYER_RIVER].checked is False  # the basemap draws the river
    (raster,) = tile_layers(settings(dashboard_tile_url=RASTER))
    assert getattr(raster, "className", None) != VECTOR_CLASS
    # vector tiles are fetched: their service is in connect-src too; raster ones are images only
    policy = dict(p.split(" ", 1) for p in content_security_policy(s, []).split("; "))
    assert (
        "http://gis.city.internal" in policy["connect-src"]
        and "http://gis.city.internal" in policy["img-src"]
    )
    raster_policy = dict(
        p.split(" ", 1) for p in content_security_policy(settings(dashboard_tile_url=RASTER), []).split("; ")
    )
    assert "http://gis.city.internal" not in raster_policy["connect-src"]
    # the vendored library is in assets/ with its licence, left out of every page's head
    lib = ASSETS / "vendor" / "leaflet.vectorgrid-1.3.0"
    assert (lib / "LICENSE.txt").exists() and re.search(
        VECTOR_GRID_ASSET, "Leaflet.VectorGrid.bundled.min.js"
    )
    assert (lib / "Leaflet.VectorGrid.bundled.min.js").exists()
    assert "vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js" in (
        ASSETS / "11-wuwang-basemap.js"
    ).read_text(encoding="utf-8")


def test_the_field_page_draws_the_registrys_field_layers() -> None:
    team = Me("T-FIRE-01", "field", "T-FIRE-01", "队伍")

    def layer_ids(s: Settings, urls: dict[str, str] | None) -> list[str]:
        page = field_page(Console.create(s), "zh_CN", team, urls)
        return [g.id for g in _find(page, "GeoJSON") if str(getattr(g, "id", "")).startswith("layer-")]

    # no basemap: district outlines and the river, so a team sees where its order is
    assert layer_ids(settings(), URLS) == [ids.LAYER_DISTRICTS, ids.LAYER_RIVER, ids.LAYER_STREET_NAMES]
    # over a basemap (raster or vector), the road names only; without a database, nothing
    assert layer_ids(settings(dashboard_tile_url=VECTOR), URLS) == [ids.LAYER_STREET_NAMES]
    assert layer_ids(settings(dashboard_tile_url=RASTER), URLS) == [ids.LAYER_STREET_NAMES]
    assert layer_ids(settings(), None) == []
    # the desk keeps its districts over a basemap (a light tint); the river goes
    desk = overlays(map_panel(settings(dashboard_tile_url=RASTER), "zh_CN", wall=False, urls=URLS))
    assert desk[ids.LAYER_DISTRICTS].checked and not desk[ids.LAYER_RIVER].checked


def test_the_first_draws_files_are_asked_for_with_the_page() -> None:
    """The static files switched on when the page is drawn are listed for the browser to
    fetch at once (assets/10-wuwang-map.js, prefetchFiles); the ones off are not."""

    def first(panel: Any) -> list[str]:
        [store] = [s for s in _find(panel, "Store") if s.id == ids.MAP_FILES]
        return list(store.data)

    def on_with_url(panel: Any) -> list[str]:
        return [
            o.children.url for o in overlays(panel).values() if o.checked and getattr(o.children, "url", None)
        ]

    for networks_on, grid_on in ((False, False), (True, False), (True, True)):
        desk = map_panel(settings(), "zh_CN", wall=False, urls=URLS, networks_on=networks_on, grid_on=grid_on)
        assert first(desk) == on_with_url(desk)
    desk = map_panel(settings(), "zh_CN", wall=False, urls=URLS, networks_on=True)
    assert URLS["net-video"] in first(desk) and URLS["grid"] not in first(desk)
    assert URLS["net-video"] not in first(map_panel(settings(), "zh_CN", wall=True, urls=URLS))
    assert first(map_panel(settings(), "zh_CN", wall=False, urls=None)) == []


def test_risk_sources_and_shelters_are_drawn_by_level_and_room() -> None:
    from dashboard.callbacks.map import risk_source_features, shelter_features

    source = {
        "id": "RS-1",
        "name": "人民路加油站",
        "kind": "gas_station",
        "lat": 32.04,
        "lon": 112.14,
        "level": "major",
        "responsible_unit": "中石化",
        "contact": "刘 0710",
        "inspection_due_at": "2026-06-01T00:00:00+00:00",
        "inspection_overdue": True,
    }
    [f] = risk_source_features("zh_CN", [source], "wgs84")["features"]
    assert f["properties"]["l"] == "major" and f["properties"]["o"] is True
    assert "加油加气站" in f["properties"]["html"] and "风险等级 重大" in f["properties"]["html"]
    assert "巡查逾期（应于 2026-06-01）" in f["properties"]["html"]
    [en] = risk_source_features("en", [source], "wgs84")["features"]
    assert "Risk level Major" in en["properties"]["html"]
    shelter = {"id": "SH-1", "name": "<广场>", "kind": "square", "lat": 32.0, "lon": 112.1, "status": "open"}
    [g] = shelter_features("zh_CN", [{**shelter, "capacity": 200, "occupancy": 150, "free": 50}], "wgs84")[
        "features"
    ]
    assert g["properties"]["s"] == "open" and g["properties"]["f"] == 0.25
    assert "&lt;广场&gt;" in g["properties"]["html"] and "空余 50" in g["properties"]["html"]


def test_a_shelters_popup_says_who_counted_last_and_when_in_both_languages() -> None:
    from zoneinfo import ZoneInfo

    from dashboard.callbacks.map import shelter_features

    counted = {
        "id": "SH-2",
        "name": "长虹公园",
        "kind": "park",
        "lat": 32.0,
        "lon": 112.1,
        "status": "full",
        "capacity": 300,
        "occupancy": 300,
        "free": 0,
        "occupancy_at": "2026-12-07T09:30:00+00:00",
        "occupancy_by": "T-FIRE-01",
    }
    zone = ZoneInfo("Asia/Shanghai")
    [zh] = shelter_features("zh_CN", [counted], "wgs84", zone)["features"]
    assert "已满" in zh["properties"]["html"]
    assert "T-FIRE-01 上报于 12-07 17:30:00" in zh["properties"]["html"]
    [en] = shelter_features("en", [counted], "wgs84", zone)["features"]
    assert "counted by T-FIRE-01 at 12-07 17:30:00" in en["properties"]["html"]
    [never] = shelter_features("zh_CN", [{**counted, "occupancy_at": None}], "wgs84", zone)["features"]
    assert "上报于" not in never["properties"]["html"]
