"""GCJ-02 ↔ WGS-84 conversion and the few geodesy helpers the console needs.

Why this exists: maps published in mainland China (AutoNavi/Gaode, DataV, Tencent) use
GCJ-02, a deliberately obfuscated datum that shifts positions by a few hundred metres;
GPS fixes from phones and field devices are WGS-84. The console stores WGS-84 and
converts at the edges: boundary files in (``gcj02_to_wgs84``), a Chinese basemap out
(``wgs84_to_gcj02``). Forgetting it puts every alarm 100–700 m off its street.

The transform itself is the public ``eviltransform`` package: ``wgs2gcj`` is the
closed-form forward formula; GCJ-02 → WGS-84 has no closed form, and ``gcj2wgs_exact``
inverts it by bisection to better than 0.5 m (checked in tests/wuwang/test_geo.py and
docs/demo-city.md). Outside eviltransform's China bounding box both directions are the
identity, as GCJ-02 is only defined for China.

Argument order: the functions here take and return ``(lat, lon)`` like eviltransform
and like the MQTT payloads; GeoJSON positions are ``[lon, lat]``. The GeoJSON helpers
below are the only place where the two orders meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import eviltransform

#: WGS-84 equatorial radius, as eviltransform uses for its distances (metres).
EARTH_RADIUS_M = 6_378_137.0
#: Mean Earth radius for haversine distances (metres).
MEAN_EARTH_RADIUS_M = 6_371_008.8

LatLon = tuple[float, float]
PointTransform = Callable[[float, float], LatLon]


def in_china(lat: float, lon: float) -> bool:
    """Inside the bounding box where eviltransform applies the GCJ-02 shift.

    It is a coarse box (it includes e.g. Seoul and Hanoi); that is the library's rule,
    and the rule the maps we talk to follow closely enough for a bounding-box test.
    """
    return not eviltransform.outOfChina(lat, lon)


def wgs84_to_gcj02(lat: float, lon: float) -> LatLon:
    """WGS-84 → GCJ-02 (for drawing on a Chinese basemap). Identity outside China."""
    glat, glon = eviltransform.wgs2gcj(lat, lon)
    return float(glat), float(glon)


def gcj02_to_wgs84(lat: float, lon: float) -> LatLon:
    """GCJ-02 → WGS-84 (for boundary files and coordinates picked on a Chinese map).

    Uses the iterative inverse (error < 0.5 m); the one-step ``gcj2wgs`` is off by 1–2 m.
    Identity outside China.
    """
    wlat, wlon = eviltransform.gcj2wgs_exact(lat, lon)
    return float(wlat), float(wlon)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * MEAN_EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def gcj02_offset_m(lat: float, lon: float) -> float:
    """How far GCJ-02 moves this WGS-84 point, in metres (0 outside China)."""
    glat, glon = wgs84_to_gcj02(lat, lon)
    return haversine_m(lat, lon, glat, glon)


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of latitude, metres per degree of longitude) near ``lat``.

    A local flat-earth approximation, good to well under 1 % across a city; used to lay
    out synthetic streets and jitter points by metres.
    """
    m_lat = math.pi * MEAN_EARTH_RADIUS_M / 180.0
    return m_lat, m_lat * math.cos(math.radians(lat))


def offset_by_metres(lat: float, lon: float, north_m: float, east_m: float) -> LatLon:
    """Move a point by a small number of metres north and east (local approximation)."""
    m_lat, m_lon = metres_per_degree(lat)
    return lat + north_m / m_lat, lon + east_m / m_lon


# --- GeoJSON -------------------------------------------------------------------


def _convert_positions(coords: Any, fn: PointTransform, ndigits: int | None) -> Any:
    """Walk nested coordinate arrays; a position is a list whose first item is a number."""
    if coords and isinstance(coords[0], (int, float)):
        lon, lat = float(coords[0]), float(coords[1])
        nlat, nlon = fn(lat, lon)  # eviltransform order (lat, lon); GeoJSON order [lon, lat]
        if ndigits is not None:
            nlat, nlon = round(nlat, ndigits), round(nlon, ndigits)
        return [nlon, nlat, *coords[2:]]  # keep altitude and any further ordinates
    return [_convert_positions(c, fn, ndigits) for c in coords]


def transform_geometry(
    geometry: dict[str, Any], fn: PointTransform, ndigits: int | None = None
) -> dict[str, Any]:
    """A copy of a GeoJSON geometry with every position passed through ``fn(lat, lon)``.

    Keeps the structure (type, nesting, ring closure, altitude) and any foreign members;
    handles GeometryCollection recursively. ``ndigits`` rounds the result (6 decimals ≈
    0.1 m, finer than either datum's meaning).
    """
    out = dict(geometry)
    if geometry.get("type") == "GeometryCollection":
        out["geometries"] = [transform_geometry(g, fn, ndigits) for g in geometry.get("geometries", [])]
        return out
    if "coordinates" not in geometry:
        raise ValueError(f"not a GeoJSON geometry: {str(geometry.get('type'))[:32]!r}")
    out["coordinates"] = _convert_positions(geometry["coordinates"], fn, ndigits)
    return out


def geometry_gcj02_to_wgs84(geometry: dict[str, Any], ndigits: int | None = 6) -> dict[str, Any]:
    """Convert a whole GeoJSON geometry from GCJ-02 to WGS-84."""
    return transform_geometry(geometry, gcj02_to_wgs84, ndigits)


def geometry_wgs84_to_gcj02(geometry: dict[str, Any], ndigits: int | None = 6) -> dict[str, Any]:
    """Convert a whole GeoJSON geometry from WGS-84 to GCJ-02 (e.g. for a Gaode basemap)."""
    return transform_geometry(geometry, wgs84_to_gcj02, ndigits)


def lonlat_gcj02_to_wgs84(position: list[float] | tuple[float, ...], ndigits: int | None = 6) -> list[float]:
    """One GeoJSON-ordered ``[lon, lat]`` position, GCJ-02 → WGS-84 (e.g. DataV's "center")."""
    result: list[float] = _convert_positions(list(position), gcj02_to_wgs84, ndigits)
    return result
