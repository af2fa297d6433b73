"""The city's registries as map layers (GeoJSON, in the map's datum), cached.

Registries change when a city is (re)loaded, not while an operator watches; a layer is
built once and kept for :data:`CACHE_S`. Points carry short property names (``i`` id,
``k`` kind, ``n`` name) to keep 10,000 of them small on the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import mapping

from dashboard import geo
from dashboard.data.db import ReadOnlyDatabase
from wuwang.city import han_river, load_districts
from wuwang.contract import Network
from wuwang.places import RoadLabel, road_labels, street_lattice

CACHE_S = 300.0
#: Venue kinds labelled from a city-wide zoom on: what people give directions by.
LANDMARK_KINDS = frozenset({"station", "stadium", "scenic_spot", "hospital"})
NETWORKS: tuple[str, ...] = tuple(str(n) for n in Network)


@dataclass
class StaticLayers:
    """Everything the map draws that does not move."""

    districts: dict[str, Any]
    district_labels: dict[str, Any]
    grid: dict[str, Any]
    networks: dict[str, dict[str, Any]]
    counts: dict[str, dict[str, int]]  # network -> {"device": n, "camera": n, "venue": n, "patrol": n}
    river: dict[str, Any]
    streets: dict[str, Any] | None
    places: dict[str, Any]  # named places (the venues) for the map's labels
    street_names: dict[str, Any]  # the demo lattice's road names, as addresses name them
    bounds: list[list[float]]  # [[south, west], [north, east]] in the map's datum
    built_at: float = field(default_factory=time.monotonic)
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def layer(self, name: str) -> dict[str, Any]:
        """A layer by its served name (dashboard.geoserve.LAYERS)."""
        if name.startswith("net-"):
            return self.networks[name[4:]]
        if name == "streets":
            return self.streets or geo.collection([])
        value = getattr(self, name)
        assert isinstance(value, dict)
        return value

    def encoded(self, name: str) -> bytes:
        """The layer as JSON bytes, encoded once."""
        if name not in self._encoded:
            self._encoded[name] = orjson.dumps(self.layer(name))
        return self._encoded[name]

    @property
    def entities(self) -> int:
        return sum(len(fc["features"]) for fc in self.networks.values())


@cache
def _river_wgs84() -> dict[str, Any]:
    """The Han River line from the shipped district file (see wuwang.city.han_river)."""
    m = mapping(han_river(load_districts()))
    return {"type": m["type"], "coordinates": json.loads(json.dumps(m["coordinates"]))}


@cache
def _road_labels_wgs84() -> tuple[RoadLabel, ...]:
    """The demo city's road names (wuwang.places: the same lattice the teams drive on
    and the same names the orders' addresses use)."""
    return tuple(
        label for district in load_districts() for label in road_labels(district, street_lattice(district))
    )


def _streets(path: Path | None, datum: geo.Datum) -> dict[str, Any] | None:
    if path is None:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    feats = data.get("features", []) if isinstance(data, dict) else []
    return geo.collection(
        [
            {
                "type": "Feature",
                "geometry": geo.geometry(f["geometry"], datum),
                "properties": {"n": (f.get("properties") or {}).get("name", "")},
            }
            for f in feats
            if isinstance(f, dict) and f.get("geometry")
        ]
    )


class Registries:
    """Builds and caches :class:`StaticLayers` from the registry tables."""

    def __init__(self, db: ReadOnlyDatabase, datum: geo.Datum, streets_file: Path | None = None) -> None:
        self.db = db
        self.datum = datum
        self.streets_file = streets_file
        self._cached: StaticLayers | None = None
        self._lock: asyncio.Lock | None = None

    async def layers(self) -> StaticLayers:
        cached = self._cached
        if cached is not None and time.monotonic() - cached.built_at < CACHE_S:
            return cached
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached.built_at < CACHE_S:
                return cached
            self._cached = await self._build()
            return self._cached

    async def encoded(self, name: str) -> bytes:
        return (await self.layers()).encoded(name)

    async def _build(self) -> StaticLayers:
        d = self.datum
        districts = await self.db.fetch(
            "SELECT adcode, name, center_lat, center_lon, boundary FROM district ORDER BY adcode"
        )
        cells = await self.db.fetch(
            "SELECT id, name, district_adcode, households, boundary FROM grid_cell ORDER BY id"
        )
        devices = await self.db.fetch("SELECT id, network, kind, lat, lon FROM device ORDER BY id")
        cameras = await self.db.fetch("SELECT id, network, lat, lon FROM camera ORDER BY id")
        venues = await self.db.fetch("SELECT id, name, kind, lat, lon FROM venue ORDER BY id")
        patrols = await self.db.fetch("SELECT id, name, lat, lon FROM patrol_unit ORDER BY id")

        def boundary(raw: Any) -> dict[str, Any] | None:
            g = json.loads(raw) if isinstance(raw, str) else raw
            return geo.geometry(g, d) if isinstance(g, dict) and g.get("type") else None

        district_features = []
        labels = []
        south, west, north, east = 90.0, 180.0, -90.0, -180.0
        for adcode, name, clat, clon, raw in districts:
            g = boundary(raw)
            if g is not None:
                district_features.append(
                    {"type": "Feature", "geometry": g, "properties": {"i": adcode, "n": name}}
                )
            labels.append(geo.feature(clat, clon, d, {"n": name}))
            south, west, north, east = min(south, clat), min(west, clon), max(north, clat), max(east, clon)
            for lon, lat in _positions(g):
                south, west, north, east = min(south, lat), min(west, lon), max(north, lat), max(east, lon)
        grid_features = []
        for cid, name, adcode, households, raw in cells:
            g = boundary(raw)
            if g is not None:
                grid_features.append(
                    {
                        "type": "Feature",
                        "geometry": g,
                        "properties": {"i": cid, "n": name, "h": households, "a": adcode},
                    }
                )
        nets: dict[str, list[dict[str, Any]]] = {n: [] for n in NETWORKS}
        counts: dict[str, dict[str, int]] = {
            n: {"device": 0, "camera": 0, "venue": 0, "patrol": 0} for n in NETWORKS
        }
        for did, network, kind, lat, lon in devices:
            if network in nets:
                nets[network].append(geo.feature(lat, lon, d, {"i": did, "k": kind}))
                counts[network]["device"] += 1
        for cid, network, lat, lon in cameras:
            if network in nets:
                nets[network].append(geo.feature(lat, lon, d, {"i": cid, "k": "camera"}))
                counts[network]["camera"] += 1
        places = []
        for vid, name, kind, lat, lon in venues:
            nets["venue"].append(geo.feature(lat, lon, d, {"i": vid, "k": kind, "n": name}))
            places.append(geo.feature(lat, lon, d, {"n": name, "m": int(kind in LANDMARK_KINDS)}))
            counts["venue"]["venue"] += 1
        for pid, name, lat, lon in patrols:
            nets["patrol"].append(geo.feature(lat, lon, d, {"i": pid, "k": "patrol", "n": name}))
            counts["patrol"]["patrol"] += 1
        if not districts:
            south, west, north, east = 31.2, 110.9, 32.6, 113.2  # 襄阳市 when nothing is loaded
        river = (
            geo.collection(
                [{"type": "Feature", "geometry": geo.geometry(_river_wgs84(), d), "properties": {}}]
            )
            if districts
            else geo.collection([])
        )
        labels_on = _road_labels_wgs84() if districts else ()
        street_names = geo.collection(
            [
                geo.feature(lb.lat, lb.lon, d, {"n": lb.name, "a": lb.along, "s": int(lb.sparse)})
                for lb in labels_on
            ]
        )
        return StaticLayers(
            districts=geo.collection(district_features),
            district_labels=geo.collection(labels),
            grid=geo.collection(grid_features),
            networks={n: geo.collection(f) for n, f in nets.items()},
            counts=counts,
            river=river,
            streets=_streets(self.streets_file, d),
            places=geo.collection(places),
            street_names=street_names,
            bounds=[[south, west], [north, east]],
        )


def _positions(geom: dict[str, Any] | None) -> list[tuple[float, float]]:
    """Every [lon, lat] position of a (multi)polygon, for the bounds."""
    if geom is None:
        return []
    out: list[tuple[float, float]] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            out.append((float(c[0]), float(c[1])))
        else:
            for part in c:
                walk(part)

    walk(geom.get("coordinates", []))
    return out
