"""预警 on the map without a browser: the area drawn on the map becomes the panel's
WGS-84 points (through GCJ-02 when the basemap is Chinese), and an inbound CAP
warning's polygons, circles and geocodes, popup and legend."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from dashboard import geo
from dashboard.callbacks.warnings import _area, drawn_points, inbound_popup, inbound_shapes
from dashboard.layers import by_key
from dashboard.layout.map import DRAW_SHAPES, draw_control, warning_legend
from wuwang.geo import wgs84_to_gcj02

SQUARE = [(32.010, 112.120), (32.010, 112.130), (32.020, 112.130), (32.020, 112.120)]


def _drawn(points: list[tuple[float, float]]) -> dict[str, object]:
    ring = [[lon, lat] for lat, lon in points]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"type": "polygon"},
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            }
        ],
    }


def test_a_polygon_drawn_on_a_wgs84_map_is_the_panels_points() -> None:
    text = drawn_points(_drawn(SQUARE), "wgs84")
    assert text.splitlines() == [f"{lat:.6f}, {lon:.6f}" for lat, lon in SQUARE]  # the closing point dropped
    assert _area([], "", text)["polygon"] == [[lat, lon] for lat, lon in SQUARE]


def test_a_polygon_drawn_on_a_gcj02_basemap_is_stored_in_wgs84() -> None:
    on_map = [wgs84_to_gcj02(lat, lon) for lat, lon in SQUARE]  # where the streets are drawn
    stored = _area([], "", drawn_points(_drawn(on_map), "gcj02"))["polygon"]
    for (lat, lon), (want_lat, want_lon) in zip(stored, SQUARE, strict=True):
        assert abs(lat - want_lat) < 1e-5 and abs(lon - want_lon) < 1e-5  # < 1 m
    assert geo.from_map(32.0, 112.1, "wgs84") == (32.0, 112.1)


def test_the_last_shape_drawn_is_the_area_and_nothing_drawn_is_empty() -> None:
    first, second = _drawn(SQUARE), _drawn([(p[0] + 0.1, p[1]) for p in SQUARE])
    both = {"features": [*first["features"], *second["features"]]}  # type: ignore[misc]
    assert drawn_points(both, "wgs84").startswith("32.110000, 112.120000")
    assert drawn_points({"features": []}, "wgs84") == ""
    assert drawn_points(None, "wgs84") == ""
    line = {"features": [{"geometry": {"type": "LineString", "coordinates": [[112.1, 32.0], [112.2, 32.1]]}}]}
    assert drawn_points(line, "wgs84") == ""


def test_only_polygons_and_rectangles_are_drawn_and_edited() -> None:
    assert {k for k, v in DRAW_SHAPES.items() if v} == {"polygon", "rectangle"}
    control = draw_control().children[0]
    assert control.id == "warning-draw" and control.edit == {"edit": True, "remove": True}


def test_an_inbound_warnings_polygons_circles_and_district_codes() -> None:
    areas = [
        {
            "description": "樊城区",
            "polygons": [[[32.0, 112.1], [32.0, 112.2], [32.1, 112.2], [32.0, 112.1]]],
            "circles": [
                {"lat": 32.05, "lon": 112.15, "radius_km": 5.0},
                {"lat": 32.0, "lon": 112.0, "radius_km": 0},
            ],
            "geocodes": [{"name": "GB/T 2260", "value": "420606"}, {"name": "UGC", "value": "WAZ021"}],
        }
    ]
    shapes, adcodes = inbound_shapes(areas)
    assert adcodes == [420606]  # a 6-digit 区划代码; another scheme's code is not ours to draw
    polygon, circle = shapes  # the zero-radius circle is no area
    assert polygon["coordinates"][0][0] == [112.1, 32.0]  # GeoJSON: lon, lat
    ring = circle["coordinates"][0]
    assert ring[0] == ring[-1]
    north = max(lat for _lon, lat in ring)
    assert north - 32.05 == pytest.approx(5.0 / 111.32, rel=1e-3)  # 5 km north of the centre
    assert inbound_shapes(None) == ([], [])


def test_an_inbound_warnings_popup_says_who_what_and_when_in_the_pages_language() -> None:
    w = {
        "id": 7,
        "sender": "w-nws.webmaster@noaa.gov",
        "level": "orange",
        "headline": "fallback",
        "onset": "2026-12-07T02:00:00+00:00",
        "expires": None,
        "infos": [
            {"language": "en-US", "headline": "Heavy rain <b>", "sender_name": "Met Office"},
            {"language": "zh-CN", "headline": "暴雨橙色预警", "sender_name": "襄阳市气象台"},
        ],
    }
    popup, tip = inbound_popup("zh_CN", w, ZoneInfo("Asia/Shanghai"))
    assert "襄阳市气象台" in popup and "暴雨橙色预警" in popup and "橙色预警" in tip
    assert "2026-12-07 10:00" in popup and "至解除" in popup  # Beijing time; no expiry: until cancelled
    popup_en, _ = inbound_popup("en", w, ZoneInfo("Asia/Shanghai"))
    assert "Met Office" in popup_en and "Heavy rain &lt;b&gt;" in popup_en  # escaped
    _, no_level = inbound_popup("zh_CN", {**w, "level": None, "infos": []}, ZoneInfo("Asia/Shanghai"))
    assert "级别未定" in no_level and "fallback" in no_level


def test_the_inbound_layer_and_its_legend() -> None:
    layer = by_key("inbound-warnings")
    assert layer.shown("desk", basemap=False) and layer.shown("wall", basemap=True)
    assert not layer.shown("field", basemap=False)
    assert layer.style == "inboundWarningStyle" and layer.interactive
    legend = warning_legend("zh_CN")
    kinds = [row.className for row in legend.children[1:]]
    assert kinds == ["legend-warning own", "legend-warning inbound"]
