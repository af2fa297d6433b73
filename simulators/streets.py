"""Synthetic streets for moving teams: NOT real roads.

There is no street data offline (no OpenStreetMap extract ships with the project), so
each district gets a made-up grid of main roads: a square lattice with a road every
~600 m (the spacing of arterial roads in a Chinese city's new districts), north–south
and east–west, laid out around the district seat within the district's built-up radius
and cut to the district's boundary (wuwang.places.street_lattice, which also names
its roads for addresses and the map). A team drives from its base to the nearest
crossing, along the lattice (shortest path by number of blocks), and from the last
crossing to the scene. On a basemap the tracks look like driving on a street grid; they
will not follow the real streets of Xiangyang, and they never cross the Han River
between districts (each district has its own lattice). Pure and deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from wuwang.city import District
from wuwang.geo import bearing_deg, haversine_m
from wuwang.places import ROAD_SPACING_M, street_lattice

#: Metres between parallel main roads.
DEFAULT_SPACING_M = ROAD_SPACING_M


@dataclass(frozen=True)
class StreetNetwork:
    """A district's synthetic road lattice: crossings (lat, lon) and who links to whom."""

    adcode: int
    spacing_m: float
    nodes: tuple[tuple[float, float], ...]
    neighbours: tuple[tuple[int, ...], ...]

    def nearest(self, lat: float, lon: float) -> int:
        """Index of the crossing nearest to a point (a linear scan: a few hundred nodes)."""
        best, best_d = 0, math.inf
        for i, (nlat, nlon) in enumerate(self.nodes):
            # Squared degrees with the longitude shrunk: fine for ranking nearby nodes.
            d = (nlat - lat) ** 2 + ((nlon - lon) * math.cos(math.radians(lat))) ** 2
            if d < best_d:
                best, best_d = i, d
        return best

    def path(self, start: int, goal: int) -> list[int]:
        """Shortest path in blocks between two crossings (BFS; ties broken by node order)."""
        if start == goal:
            return [start]
        prev = {start: start}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in self.neighbours[node]:
                if nxt not in prev:
                    prev[nxt] = node
                    if nxt == goal:
                        out = [goal]
                        while out[-1] != start:
                            out.append(prev[out[-1]])
                        return out[::-1]
                    queue.append(nxt)
        return [start, goal]  # unreachable (cannot happen: one component is kept)

    def route(self, lat1: float, lon1: float, lat2: float, lon2: float) -> Route:
        """From a point to a point: to the nearest crossing, along the lattice, to the point."""
        a, b = self.nearest(lat1, lon1), self.nearest(lat2, lon2)
        points = [(lat1, lon1), *(self.nodes[i] for i in self.path(a, b)), (lat2, lon2)]
        return Route.through(points)


@dataclass(frozen=True)
class Route:
    """A polyline with cumulative lengths, for "where is the team after s metres"."""

    points: tuple[tuple[float, float], ...]
    cumulative_m: tuple[float, ...]

    @classmethod
    def through(cls, points: Sequence[tuple[float, float]]) -> Route:
        kept = [points[0]]
        for p in points[1:]:
            if p != kept[-1]:
                kept.append(p)
        cum = [0.0]
        for (la1, lo1), (la2, lo2) in itertools.pairwise(kept):
            cum.append(cum[-1] + haversine_m(la1, lo1, la2, lo2))
        return cls(tuple(kept), tuple(cum))

    @property
    def length_m(self) -> float:
        return self.cumulative_m[-1]

    def at(self, distance_m: float) -> tuple[float, float, float | None]:
        """(lat, lon, heading) after driving ``distance_m`` (clamped to the ends)."""
        if len(self.points) == 1 or distance_m <= 0:
            lat, lon = self.points[0]
            heading = bearing_deg(lat, lon, *self.points[1]) if len(self.points) > 1 else None
            return lat, lon, heading
        if distance_m >= self.length_m:
            lat, lon = self.points[-1]
            return lat, lon, bearing_deg(*self.points[-2], lat, lon)
        i = max(0, min(len(self.points) - 2, _bisect(self.cumulative_m, distance_m) - 1))
        seg = self.cumulative_m[i + 1] - self.cumulative_m[i]
        f = (distance_m - self.cumulative_m[i]) / seg if seg > 0 else 0.0
        (la1, lo1), (la2, lo2) = self.points[i], self.points[i + 1]
        return la1 + (la2 - la1) * f, lo1 + (lo2 - lo1) * f, bearing_deg(la1, lo1, la2, lo2)

    def reversed(self) -> Route:
        return Route.through(self.points[::-1])


def _bisect(values: Sequence[float], x: float) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def build_street_network(district: District, spacing_m: float = DEFAULT_SPACING_M) -> StreetNetwork:
    """The lattice around a district's seat, inside the district, one connected piece
    (laid out and named in wuwang.places, which the addresses on orders use too)."""
    lattice = street_lattice(district, spacing_m)
    return StreetNetwork(district.adcode, spacing_m, lattice.nodes, lattice.neighbours)


def build_street_networks(
    districts: Sequence[District], spacing_m: float = DEFAULT_SPACING_M
) -> dict[int, StreetNetwork]:
    return {d.adcode: build_street_network(d, spacing_m) for d in districts}
