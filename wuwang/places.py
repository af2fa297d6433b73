"""Where a point is, in words a crew can drive to: district, the nearest crossing of the
demo city's named main roads, and the nearest landmark. Pure (the landmarks are given).

The demo city has no real street data (simulators/streets.py lays a synthetic lattice
of main roads every 600 m around each district's seat). This names that lattice with
the district's own road names (``DistrictInfo.roads``): the east–west road ``i``
blocks north of the seat and the north–south road ``j`` blocks east of it, so one point
always gets the same crossing, and nearby points the same or a neighbouring one. A
110 call's own address always wins over this (the order says which it is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import shapely

from wuwang.city import District
from wuwang.geo import bearing_deg, haversine_m, metres_per_degree

#: Metres between parallel main roads (simulators/streets.py DEFAULT_SPACING_M).
ROAD_SPACING_M = 600.0
#: A landmark farther than this says nothing useful about the place.
LANDMARK_WITHIN_M = 1500.0

_DIRECTIONS_ZH = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")


@dataclass(frozen=True, slots=True)
class Landmark:
    name: str
    lat: float
    lon: float


def district_at(lat: float, lon: float, districts: Sequence[District]) -> District | None:
    """The district containing the point (None outside the city)."""
    point = shapely.Point(lon, lat)
    return next((d for d in districts if d.geometry.covers(point)), None)


def crossing_at(lat: float, lon: float, district: District) -> tuple[str, str]:
    """The names of the east–west and north–south main roads nearest to the point."""
    roads = district.info.roads
    m_lat, m_lon = metres_per_degree(district.center[0])
    i = round((lat - district.center[0]) * m_lat / ROAD_SPACING_M)
    j = round((lon - district.center[1]) * m_lon / ROAD_SPACING_M)
    n = len(roads)
    # East–west roads take the first half of the names, north–south ones the second, so a
    # crossing never joins a road to itself.
    half = max(1, n // 2)
    east_west = roads[i % half]
    north_south = roads[half + j % max(1, n - half)] if n > 1 else roads[0]
    return east_west, north_south


def direction_zh(bearing: float) -> str:
    return _DIRECTIONS_ZH[round(bearing / 45.0) % 8]


def nearest_landmark(
    lat: float, lon: float, landmarks: Sequence[Landmark], within_m: float = LANDMARK_WITHIN_M
) -> tuple[Landmark, float] | None:
    distances = ((lm, haversine_m(lat, lon, lm.lat, lm.lon)) for lm in landmarks)
    best = min(distances, key=lambda x: x[1], default=None)
    return best if best is not None and best[1] <= within_m else None


def describe_place(
    lat: float, lon: float, districts: Sequence[District], landmarks: Sequence[Landmark] = ()
) -> str:
    """E.g. ``樊城区人民路与邓城大道交叉口附近（襄阳站东北约 300 米）``; without a
    district (a point far outside the city) only the landmark, or the coordinates."""
    district = district_at(lat, lon, districts)
    head = f"{lat:.5f}, {lon:.5f}"
    if district is not None:
        east_west, north_south = crossing_at(lat, lon, district)
        head = f"{district.name}{east_west}与{north_south}交叉口附近"
    near = nearest_landmark(lat, lon, landmarks)
    if near is None:
        return head
    landmark, distance = near
    if distance < 50:
        return f"{head}（{landmark.name}）"
    where = direction_zh(bearing_deg(landmark.lat, landmark.lon, lat, lon))
    return f"{head}（{landmark.name}{where}约 {round(distance, -1):.0f} 米）"
