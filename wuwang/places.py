"""Where a point is, in words a crew can drive to: district, the nearest crossing of the
demo city's named main roads, and the nearest landmark. Pure (the landmarks are given).

The demo city has no real street data, so each district gets a synthetic lattice of
main roads every 600 m around its seat (:func:`street_lattice`; the simulators drive on
it, the basemap draws it). This module is the one home of that lattice and of its road
names (``DistrictInfo.roads``): the east–west road ``i`` blocks north of the seat and
the north–south road ``j`` blocks east of it, so one point always gets the same
crossing, nearby points the same or a neighbouring one, and the map's street names
(:func:`road_labels`) say what the addresses say. A 110 call's own address always wins
over this (the order says which it is).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import shapely

from wuwang import i18n
from wuwang.city import District
from wuwang.geo import bearing_deg, haversine_m, metres_per_degree, offset_by_metres

#: Metres between parallel main roads (the spacing of arterial roads in a Chinese
#: city's new districts).
ROAD_SPACING_M = 600.0
#: A landmark farther than this says nothing useful about the place.
LANDMARK_WITHIN_M = 1500.0

#: The eight compass points, clockwise from north (``compass.<point>`` in the catalogues).
_COMPASS = ("n", "ne", "e", "se", "s", "sw", "w", "nw")


@dataclass(frozen=True, slots=True)
class Landmark:
    name: str
    lat: float
    lon: float


def district_at(lat: float, lon: float, districts: Sequence[District]) -> District | None:
    """The district containing the point (None outside the city)."""
    point = shapely.Point(lon, lat)
    return next((d for d in districts if d.geometry.covers(point)), None)


def lattice_cell(
    lat: float, lon: float, district: District, spacing_m: float = ROAD_SPACING_M
) -> tuple[int, int]:
    """(i, j): the lattice crossing nearest to the point, in blocks north and east of the seat."""
    m_lat, m_lon = metres_per_degree(district.center[0])
    i = round((lat - district.center[0]) * m_lat / spacing_m)
    j = round((lon - district.center[1]) * m_lon / spacing_m)
    return i, j


def lattice_point(
    district: District, i: int, j: int, spacing_m: float = ROAD_SPACING_M
) -> tuple[float, float]:
    """Where crossing (i, j) is (lat, lon, rounded to 6 decimals ≈ 0.1 m)."""
    lat, lon = offset_by_metres(*district.center, i * spacing_m, j * spacing_m)
    return round(lat, 6), round(lon, 6)


def east_west_road(district: District, i: int) -> str:
    """The name of the east–west road ``i`` blocks north of the seat."""
    roads = district.info.roads
    # East–west roads take the first half of the names, north–south ones the second, so a
    # crossing never joins a road to itself.
    return roads[i % max(1, len(roads) // 2)]


def north_south_road(district: District, j: int) -> str:
    """The name of the north–south road ``j`` blocks east of the seat."""
    roads = district.info.roads
    half = max(1, len(roads) // 2)
    return roads[half + j % max(1, len(roads) - half)] if len(roads) > 1 else roads[0]


def crossing_at(lat: float, lon: float, district: District) -> tuple[str, str]:
    """The names of the east–west and north–south main roads nearest to the point."""
    i, j = lattice_cell(lat, lon, district)
    return east_west_road(district, i), north_south_road(district, j)


@dataclass(frozen=True)
class StreetLattice:
    """A district's road lattice: crossings, their (i, j) cells and who links to whom."""

    adcode: int
    spacing_m: float
    cells: tuple[tuple[int, int], ...]  # (blocks north, blocks east) of the seat
    nodes: tuple[tuple[float, float], ...]  # (lat, lon)
    neighbours: tuple[tuple[int, ...], ...]


def street_lattice(district: District, spacing_m: float = ROAD_SPACING_M) -> StreetLattice:
    """The lattice around a district's seat, inside the district's built-up radius and
    boundary, one connected piece (a road does not leave the district)."""
    clat, clon = district.center
    radius = district.info.town_radius_m
    k = int(radius // spacing_m)
    geom = district.geometry
    shapely.prepare(geom)
    index: dict[tuple[int, int], int] = {}
    cells: list[tuple[int, int]] = []
    nodes: list[tuple[float, float]] = []
    for i in range(-k, k + 1):  # i: north, j: east (in blocks)
        for j in range(-k, k + 1):
            if math.hypot(i, j) * spacing_m > radius:
                continue
            lat, lon = lattice_point(district, i, j, spacing_m)
            if shapely.contains_xy(geom, lon, lat):
                index[(i, j)] = len(nodes)
                cells.append((i, j))
                nodes.append((lat, lon))
    links: list[list[int]] = [[] for _ in nodes]
    for (i, j), a in index.items():
        for di, dj in ((1, 0), (0, 1)):
            b = index.get((i + di, j + dj))
            if b is None:
                continue
            mid_lat, mid_lon = (nodes[a][0] + nodes[b][0]) / 2, (nodes[a][1] + nodes[b][1]) / 2
            if shapely.contains_xy(geom, mid_lon, mid_lat):
                links[a].append(b)
                links[b].append(a)
    # Keep the piece that holds the seat (a lattice cut by a border can fall apart).
    seat = index.get((0, 0))
    if seat is None:  # the seat itself is off-lattice: start from the nearest kept node
        seat = min(range(len(nodes)), key=lambda n: haversine_m(clat, clon, *nodes[n])) if nodes else None
    if seat is None:
        return StreetLattice(district.adcode, spacing_m, ((0, 0),), ((clat, clon),), ((),))
    keep: dict[int, int] = {seat: 0}
    queue = deque([seat])
    while queue:
        n = queue.popleft()
        for m in links[n]:
            if m not in keep:
                keep[m] = len(keep)
                queue.append(m)
    order = sorted(keep, key=lambda n: keep[n])
    return StreetLattice(
        district.adcode,
        spacing_m,
        tuple(cells[n] for n in order),
        tuple(nodes[n] for n in order),
        tuple(tuple(sorted(keep[m] for m in links[n] if m in keep)) for n in order),
    )


@dataclass(frozen=True, slots=True)
class RoadLabel:
    """A road's name where the map writes it: mid-block, along the road."""

    name: str
    lat: float
    lon: float
    along: Literal["ew", "ns"]
    sparse: bool  # one block in four: enough from a farther zoom


def road_labels(district: District, lattice: StreetLattice) -> list[RoadLabel]:
    """The names of the lattice's roads, one on every block; one block in four is
    ``sparse``, staggered from road to road (so a far zoom shows fewer names, not in
    columns, yet always one within two blocks of any crossing)."""
    out: list[RoadLabel] = []
    for a, near in enumerate(lattice.neighbours):
        (i, j), (lat_a, lon_a) = lattice.cells[a], lattice.nodes[a]
        for b in near:
            (bi, bj), (lat_b, lon_b) = lattice.cells[b], lattice.nodes[b]
            mid_lat, mid_lon = round((lat_a + lat_b) / 2, 6), round((lon_a + lon_b) / 2, 6)
            if bi == i and bj == j + 1:  # a block of the east–west road i
                sparse = (j + 2 * i) % 4 == 0
                out.append(RoadLabel(east_west_road(district, i), mid_lat, mid_lon, "ew", sparse))
            elif bj == j and bi == i + 1:  # a block of the north–south road j
                sparse = (i + 2 * j) % 4 == 0
                out.append(RoadLabel(north_south_road(district, j), mid_lat, mid_lon, "ns", sparse))
    return out


def direction(bearing: float, lang: i18n.Lang = i18n.DEFAULT_LANG) -> str:
    """A bearing as one of the 8 compass points, in words (东北, north-east)."""
    return i18n.text(lang, f"compass.{_COMPASS[round(bearing / 45.0) % 8]}")


def nearest_landmark(
    lat: float, lon: float, landmarks: Sequence[Landmark], within_m: float = LANDMARK_WITHIN_M
) -> tuple[Landmark, float] | None:
    distances = ((lm, haversine_m(lat, lon, lm.lat, lm.lon)) for lm in landmarks)
    best = min(distances, key=lambda x: x[1], default=None)
    return best if best is not None and best[1] <= within_m else None


def crossing_place(
    lat: float, lon: float, districts: Sequence[District], lang: i18n.Lang = i18n.DEFAULT_LANG
) -> str | None:
    """A point in the words of an alarm's place — the nearest crossing of named main
    roads in its district (``樊城区人民路与邓城大道交叉口附近``), no landmark, so it stays
    short — or None outside the city (the caller then gives the coordinates). The one
    rule of a new incident's title and an inbox row's place."""
    district = district_at(lat, lon, districts)
    if district is None:
        return None
    east_west, north_south = crossing_at(lat, lon, district)
    return i18n.text(
        lang, "place.crossing", district=district.name, east_west=east_west, north_south=north_south
    )


def describe_place(
    lat: float,
    lon: float,
    districts: Sequence[District],
    landmarks: Sequence[Landmark] = (),
    lang: i18n.Lang = i18n.DEFAULT_LANG,
) -> str:
    """E.g. ``樊城区人民路与邓城大道交叉口附近（襄阳站东北约 300 米）``; without a
    district (a point far outside the city) only the landmark, or the coordinates. The
    names of districts, roads and landmarks are proper names: the same in any language."""
    head = crossing_place(lat, lon, districts, lang) or f"{lat:.5f}, {lon:.5f}"
    near = nearest_landmark(lat, lon, landmarks)
    if near is None:
        return head
    landmark, distance = near
    if distance < 50:
        return i18n.text(lang, "place.at_landmark", place=head, landmark=landmark.name)
    return i18n.text(
        lang,
        "place.near_landmark",
        place=head,
        landmark=landmark.name,
        direction=direction(bearing_deg(landmark.lat, landmark.lon, lat, lon), lang),
        distance=f"{round(distance, -1):.0f}",
    )
