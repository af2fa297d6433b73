"""Positions as the map draws them.

The console stores and receives WGS-84 (GPS, the registries, the MQTT contract). A
basemap published in mainland China is usually GCJ-02; drawn on it, WGS-84 positions
land 100–700 m off their street. When ``DASHBOARD_TILE_DATUM=gcj02`` every position is
shifted on its way to the map — here for what the server sends, in
``assets/wuwang-geo.js`` (the same formula) for what arrives live in the browser.
Without a basemap, on the demo's own (``dashboard.tiles``) or on a WGS-84 one, nothing is
shifted.
"""

from __future__ import annotations

from typing import Any, Literal

from wuwang.geo import gcj02_to_wgs84, geometry_wgs84_to_gcj02, wgs84_to_gcj02
from wuwang.settings import Settings

Datum = Literal["wgs84", "gcj02"]


def map_datum(settings: Settings) -> Datum:
    """The datum the map draws in. ``DASHBOARD_TILE_DATUM`` describes the deployment's
    tile service (``DASHBOARD_TILE_URL``); the demo's own basemap is WGS-84, like the data."""
    return settings.dashboard.tile_datum if settings.dashboard.tile_url else "wgs84"


def point(lat: float, lon: float, datum: Datum) -> tuple[float, float]:
    """(lat, lon) on the map for a WGS-84 position."""
    if datum == "gcj02":
        return wgs84_to_gcj02(lat, lon)
    return lat, lon


def from_map(lat: float, lon: float, datum: Datum) -> tuple[float, float]:
    """The WGS-84 position of a point picked on the map (a drawn warning area's corner):
    the inverse of :func:`point`, so what is stored is the datum of everything else."""
    if datum == "gcj02":
        return gcj02_to_wgs84(lat, lon)
    return lat, lon


def geometry(geom: dict[str, Any], datum: Datum, ndigits: int = 5) -> dict[str, Any]:
    """A WGS-84 GeoJSON geometry on the map (rounded to ``ndigits``, ~1 m at 5)."""
    if datum == "gcj02":
        return geometry_wgs84_to_gcj02(geom, ndigits)
    return {"type": geom["type"], "coordinates": _round(geom["coordinates"], ndigits)}


def _round(coords: Any, ndigits: int) -> Any:
    if isinstance(coords, (int, float)):
        return round(float(coords), ndigits)
    return [_round(c, ndigits) for c in coords]


def feature(
    lat: float, lon: float, datum: Datum, properties: dict[str, Any], ndigits: int = 5
) -> dict[str, Any]:
    """A GeoJSON point feature ([lon, lat] order) for a WGS-84 position."""
    mlat, mlon = point(lat, lon, datum)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(mlon, ndigits), round(mlat, ndigits)]},
        "properties": properties,
    }


def collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}
