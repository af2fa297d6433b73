"""GCJ-02 ↔ WGS-84: precision, the size of the offset over Xiangyang, identity outside
China, and GeoJSON conversion that keeps structure and axis order."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wuwang.geo import (
    bearing_deg,
    gcj02_offset_m,
    gcj02_to_wgs84,
    geometry_gcj02_to_wgs84,
    geometry_wgs84_to_gcj02,
    haversine_m,
    in_china,
    lonlat_gcj02_to_wgs84,
    offset_by_metres,
    wgs84_to_gcj02,
)

# Xiangyang's extent (WGS-84), from the shipped district file.
XY_LAT = (31.23, 32.63)
XY_LON = (110.76, 113.11)

# The eviltransform project's own test vectors (googollee/eviltransform python/test.py):
# (wgsLat, wgsLng, gcjLat, gcjLng).
UPSTREAM_VECTORS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), UPSTREAM_VECTORS)
def test_upstream_vectors(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lat, lon = wgs84_to_gcj02(wlat, wlon)
    assert lat == pytest.approx(glat, abs=1e-6)
    assert lon == pytest.approx(glon, abs=1e-6)
    back = gcj02_to_wgs84(glat, glon)
    assert haversine_m(*back, wlat, wlon) < 0.5


def test_round_trip_over_xiangyang_below_half_a_metre() -> None:
    worst = 0.0
    for i in range(41):
        for j in range(41):
            lat = XY_LAT[0] + (XY_LAT[1] - XY_LAT[0]) * i / 40
            lon = XY_LON[0] + (XY_LON[1] - XY_LON[0]) * j / 40
            back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
            worst = max(worst, haversine_m(lat, lon, *back))
    assert worst < 0.5


def test_offset_magnitude_in_xiangyang_is_hundreds_of_metres() -> None:
    rng = random.Random(7)
    offsets = [gcj02_offset_m(rng.uniform(*XY_LAT), rng.uniform(*XY_LON)) for _ in range(500)]
    assert min(offsets) > 100 and max(offsets) < 700
    # Measured: ≈550–630 m over the city (docs/demo-city.md); not a no-op, not a blunder.
    assert 500 < sum(offsets) / len(offsets) < 650


def test_gcj02_moves_south_east_here() -> None:
    """Axis order guard: in Xiangyang GCJ-02 lies ~220 m south and ~570 m east of WGS-84
    (a swapped lat/lon would put the point outside China, where nothing moves)."""
    lat, lon = 32.05, 112.14
    glat, glon = wgs84_to_gcj02(lat, lon)
    assert -0.003 < glat - lat < -0.001
    assert 0.004 < glon - lon < 0.008


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(51.5074, -0.1278), (40.7128, -74.006), (-33.8688, 151.2093), (0.0, 0.0), (35.68, 139.9)],
)
def test_outside_china_is_identity(lat: float, lon: float) -> None:
    assert not in_china(lat, lon)
    assert wgs84_to_gcj02(lat, lon) == (lat, lon)
    assert gcj02_to_wgs84(lat, lon) == (lat, lon)
    assert gcj02_offset_m(lat, lon) == 0.0


@settings(max_examples=200, deadline=None)
@given(lat=st.floats(18.5, 53.0), lon=st.floats(74.0, 134.5))
def test_round_trip_anywhere_in_china(lat: float, lon: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
    assert haversine_m(lat, lon, *back) < 0.5


def _shape(coords: object) -> object:
    """The nesting structure of a coordinate array, with positions replaced by their length."""
    if isinstance(coords, list) and coords and isinstance(coords[0], (int, float)):
        return len(coords)
    assert isinstance(coords, list)
    return [_shape(c) for c in coords]


def test_geometry_conversion_keeps_structure_and_axis_order() -> None:
    ring = [[112.10, 32.00], [112.20, 32.00], [112.20, 32.10], [112.10, 32.10], [112.10, 32.00]]
    hole = [[112.14, 32.04], [112.16, 32.04], [112.16, 32.06], [112.14, 32.04]]
    geoms: list[dict[str, Any]] = [
        {"type": "Point", "coordinates": [112.15, 32.05, 87.5]},  # altitude kept
        {"type": "LineString", "coordinates": ring[:3]},
        {"type": "Polygon", "coordinates": [ring, hole]},
        {"type": "MultiPolygon", "coordinates": [[ring], [hole]]},
        {"type": "GeometryCollection", "geometries": [
            {"type": "MultiPoint", "coordinates": ring[:2]},
            {"type": "MultiLineString", "coordinates": [ring[:2], hole[:2]]},
        ]},
    ]
    original = copy.deepcopy(geoms)
    for g in geoms:
        out = geometry_gcj02_to_wgs84(g)
        assert out["type"] == g["type"]
        if g["type"] == "GeometryCollection":
            assert [_shape(x["coordinates"]) for x in out["geometries"]] == [
                _shape(x["coordinates"]) for x in g["geometries"]
            ]
            continue
        assert _shape(out["coordinates"]) == _shape(g["coordinates"])
    assert geoms == original  # input untouched

    # Each position is converted as (lat, lon) and written back as [lon, lat].
    point = geometry_gcj02_to_wgs84(geoms[0], ndigits=None)
    lat, lon = gcj02_to_wgs84(32.05, 112.15)
    assert point["coordinates"] == [lon, lat, 87.5]
    # Rings stay closed.
    poly = geometry_gcj02_to_wgs84(geoms[2])
    assert all(r[0] == r[-1] for r in poly["coordinates"])
    # Rounding to 6 decimals.
    assert all(len(str(v).split(".")[-1]) <= 6 for v in poly["coordinates"][0][1])
    # And back again: within 0.2 m of the start (rounding + inverse error).
    again = geometry_wgs84_to_gcj02(poly, ndigits=None)
    for (lo1, la1), (lo2, la2) in zip(again["coordinates"][0], ring, strict=True):
        assert haversine_m(la1, lo1, la2, lo2) < 0.3


def test_geometry_without_coordinates_is_refused() -> None:
    with pytest.raises(ValueError, match="not a GeoJSON geometry"):
        geometry_gcj02_to_wgs84({"type": "Feature", "properties": {}})


def test_lonlat_helper_matches_point_conversion() -> None:
    lat, lon = gcj02_to_wgs84(32.058589, 112.13957)
    assert lonlat_gcj02_to_wgs84([112.13957, 32.058589]) == [round(lon, 6), round(lat, 6)]


def test_small_helpers() -> None:
    lat, lon = offset_by_metres(32.0, 112.0, 1000.0, 0.0)
    assert haversine_m(32.0, 112.0, lat, lon) == pytest.approx(1000.0, rel=1e-3)
    assert bearing_deg(32.0, 112.0, lat, lon) == pytest.approx(0.0, abs=0.01)
    lat, lon = offset_by_metres(32.0, 112.0, 0.0, -500.0)
    assert bearing_deg(32.0, 112.0, lat, lon) == pytest.approx(270.0, abs=0.01)
    assert haversine_m(32.0, 112.0, lat, lon) == pytest.approx(500.0, rel=1e-3)
