"""The demo city: Xiangyang (襄阳市, adcode 420600), its grid and its registries.

Everything here is pure and deterministic for a seed: the same seed builds the same
districts, grid cells, venues, devices, cameras, patrol units and teams, byte for byte,
on any machine (``random.Random`` seeded with strings, no sets iterated, no hash()).
Only ``load_city`` and the CLI do I/O.

- Districts come from the shipped WGS-84 file ``wuwang/data/xiangyang_districts_wgs84.geojson``,
  made once from the DataV (GCJ-02) file in ``../shared/data`` by
  ``python -m wuwang.city convert-districts`` (see docs/demo-city.md for how the
  conversion was checked).
- Grid cells (网格) are a regular lattice of ``grid_cell_deg`` degrees; a cell's id is
  pure arithmetic on a position (``wuwang.lattice.grid_cell_id``), so the ingest needs
  no lookup and no geometry library.
- Registries are synthetic but shaped like a real prefecture-level city: people, and so
  sensors, cameras and venues, crowd into the urban core (襄城/樊城/襄州) and the six
  county seats; the mountains of 保康 and 南漳 are nearly empty. Positions and names are
  invented; nothing here locates a real building.

CLI::

    python -m wuwang.city convert-districts [SRC] [DEST]
    python -m wuwang.city load [--seed S] [--database-url URL] [--devices N ...]
    python -m wuwang.city summary [--seed S]
    python -m wuwang.city check-conversion [SRC]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from wuwang.contract import Network
from wuwang.geo import (
    gcj02_offset_m,
    gcj02_to_wgs84,
    geometry_gcj02_to_wgs84,
    haversine_m,
    lonlat_gcj02_to_wgs84,
    metres_per_degree,
    offset_by_metres,
    wgs84_to_gcj02,
)
from wuwang.lattice import default_deg, grid_cell_id
from wuwang.service import setup_logging

if TYPE_CHECKING:
    import psycopg

CITY_ADCODE = 420600
CITY_NAME = "襄阳市"
#: The seed ``load`` and the simulator use unless told otherwise: both must agree, or
#: the simulator's devices sit somewhere else than the registry says.
DEFAULT_CITY_SEED = 420600
DISTRICTS_FILE = "xiangyang_districts_wgs84.geojson"
SOURCE_FILE = "xiangyang_420600_districts.geojson"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The read-only shared data folder, next to the repository (absent on a fresh machine).
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

#: Households per grid worker (网格员), the ratio the city plans use.
HOUSEHOLDS_PER_GRID_WORKER = 150

SENSOR_UNITS: dict[str, str] = {
    "smoke": "%/m",  # obscuration per metre (optical smoke detectors)
    "gas": "%LEL",  # combustible gas, percent of the lower explosive limit
    "co": "ppm",
    "water_level": "m",  # metres above the gauge's datum; warning level 3.0 m
    "temperature": "°C",
}

TEAM_TYPES = ("fire", "medical", "police", "hazmat", "water_rescue", "comprehensive")
#: Team id prefixes: "T-FIRE-01" is the demo account in deploy/mosquitto/passwd.
TEAM_ID_PREFIX = {
    "fire": "T-FIRE",
    "medical": "T-MED",
    "police": "T-POL",
    "hazmat": "T-HAZMAT",
    "water_rescue": "T-WATER",
    "comprehensive": "T-COMP",
}
TEAM_TYPE_NAMES = {
    "fire": "消防救援站",
    "medical": "急救站",
    "police": "特警应急分队",
    "hazmat": "危化品处置队",
    "water_rescue": "水上救援队",
    "comprehensive": "综合应急救援队",
}


# --- districts -------------------------------------------------------------------


@dataclass(frozen=True)
class DistrictInfo:
    """What the city plans say about a district beyond its boundary (our demo model)."""

    short: str  # 樊城, 枣阳 …
    urban_core: bool  # one of the three districts of the central city
    town_radius_m: float  # built-up area around the seat: streets, stations, most people
    seat_peak: float  # households per km² at the seat
    seat_sigma_km: float  # how fast density falls off from the seat
    rural: float  # households per km² in the countryside
    places: tuple[str, ...]  # 街道/乡镇/社区 words for names
    roads: tuple[str, ...]  # road names for addresses
    households: int  # the district's total, the density model is scaled to it


# The density model (a rural floor plus a bump at the seat) says *where* people live;
# each district's total is then scaled to ``households``: round figures of the order of
# the 2020 census (Xiangyang ≈5.3 M people, ≈2.7 per household, ≈1.95 M households).
DISTRICT_INFO: dict[int, DistrictInfo] = {
    420602: DistrictInfo(
        "襄城", True, 6000, 5200, 3.5, 45,
        ("古城", "真武山", "庞公", "檀溪", "隆中", "尹集", "欧庙", "卧龙", "余家湖", "昭明", "习家池"),
        ("胜利街", "北街", "南街", "檀溪路", "隆中路", "卧龙大道", "真武山路", "环城南路", "荆州街",
         "余家湖大道", "庞公路"),
        200_000,
    ),
    420606: DistrictInfo(
        "樊城", True, 7000, 6200, 5.0, 60,
        ("米公", "清河口", "汉江", "定中门", "中原", "屏襄门", "王寨", "柿铺", "七里河", "太平店",
         "牛首", "紫贞"),
        ("长虹路", "人民路", "前进路", "解放路", "大庆路", "建设路", "中原路", "长征路", "春园路", "屏襄门路",
         "汉江北路", "定中街", "邓城大道", "七里河路", "新华路", "友谊街", "沿江大道", "米公路", "清河路"),
        420_000,
    ),
    420607: DistrictInfo(
        "襄州", True, 6000, 3600, 4.0, 55,
        ("张湾", "肖湾", "刘集", "双沟", "东津", "峪山", "伙牌", "龙王", "朱集", "程河", "黄集",
         "航空", "团山"),
        ("航空路", "襄州大道", "团山路", "东津大道", "车城南路", "肖湾路", "张湾路", "伙牌大道",
         "航宇路", "双沟大道"),
        300_000,
    ),
    420624: DistrictInfo(
        "南漳", False, 3000, 1900, 1.8, 22,
        ("城关", "武安", "九集", "李庙", "长坪", "薛坪", "板桥", "巡检", "东巩", "肖堰"),
        ("水镜路", "荆山大道", "凤凰路", "武安路", "涌泉路", "城关大道"),
        165_000,
    ),
    420625: DistrictInfo(
        "谷城", False, 3500, 2200, 2.0, 30,
        ("城关", "石花", "盛康", "冷集", "庙滩", "五山", "南河", "紫金", "茨河"),
        ("谷伯路", "银城大道", "府前街", "东环路", "石花大道", "汉江路"),
        190_000,
    ),
    420626: DistrictInfo(
        "保康", False, 2500, 1500, 1.3, 13,
        ("城关", "马桥", "歇马", "黄堡", "寺坪", "过渡湾", "店垭", "马良"),
        ("光千路", "中环路", "紫薇大道", "清溪路", "城关街"),
        80_000,
    ),
    420682: DistrictInfo(
        "老河口", False, 4000, 2600, 2.2, 60,
        ("光化", "酂阳", "孟楼", "竹林桥", "薛集", "张集", "仙人渡", "洪山嘴", "李楼"),
        ("光化大道", "胜利路", "酂阳路", "竹林桥路", "友谊大道", "汉江大道"),
        165_000,
    ),
    420683: DistrictInfo(
        "枣阳", False, 4500, 3000, 2.5, 52,
        ("北城", "南城", "环城", "琚湾", "吴店", "兴隆", "太平", "七方", "杨垱", "鹿头", "熊集", "平林"),
        ("光武大道", "人民路", "书院街", "前进路", "新华路", "襄阳路", "中兴大道"),
        320_000,
    ),
    420684: DistrictInfo(
        "宜城", False, 3500, 2200, 2.0, 42,
        ("鄢城", "南营", "雷河", "小河", "郑集", "流水", "板桥店", "王集", "刘猴"),
        ("鄢城大道", "楚都大道", "襄沙路", "燕京大道", "龙头路", "自忠路"),
        170_000,
    ),
}


@dataclass(frozen=True)
class District:
    """One of the nine districts. ``center`` is the seat of government, WGS-84 (lat, lon)."""

    adcode: int
    name: str
    center: tuple[float, float]
    geometry: BaseGeometry = field(repr=False, compare=False)

    @property
    def info(self) -> DistrictInfo:
        return DISTRICT_INFO[self.adcode]

    @property
    def short(self) -> str:
        return self.info.short


def convert_districts_geojson(src_text: str) -> str:
    """The shipped WGS-84 file's text, from DataV's GCJ-02 file's text.

    Coordinates and the "center"/"centroid" properties are converted and rounded to 6
    decimals (≈0.1 m); the rest of the properties are kept as DataV gives them. The output
    is canonical (sorted features, fixed separators) so a fresh conversion can be
    compared byte for byte with the shipped file.
    """
    src = json.loads(src_text)
    features = []
    for feat in sorted(src["features"], key=lambda f: f["properties"]["adcode"]):
        props = dict(feat["properties"])
        for key in ("center", "centroid"):
            if key in props:
                props[key] = lonlat_gcj02_to_wgs84(props[key])
        features.append(
            {"type": "Feature", "properties": props, "geometry": geometry_gcj02_to_wgs84(feat["geometry"], 6)}
        )
    out = {
        "type": "FeatureCollection",
        # A foreign member (RFC 7946 §6.1) so nobody mistakes the datum again.
        "datum": "WGS-84 (from GCJ-02 by wuwang.city convert-districts, eviltransform gcj2wgs_exact)",
        "source": "DataV GeoAtlas 420600_full.json (public mirror), GCJ-02",
        "features": features,
    }
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n"


def convert_districts(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(convert_districts_geojson(src.read_text(encoding="utf-8")), encoding="utf-8")


def shipped_districts_text() -> str:
    return resources.files("wuwang").joinpath("data").joinpath(DISTRICTS_FILE).read_text(encoding="utf-8")


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the areal parts of a geometry (intersections can leave lines and points)."""
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    polys: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            polys.append(part)
        elif isinstance(part, MultiPolygon):
            polys.extend(part.geoms)
    if len(polys) == 1:
        return polys[0]
    return MultiPolygon(polys)


@lru_cache(maxsize=1)
def _districts() -> tuple[District, ...]:
    doc = json.loads(shipped_districts_text())
    out = []
    for feat in doc["features"]:
        props = feat["properties"]
        # DataV's 保康 and 枣阳 rings self-intersect (in the source too); repair once here.
        geom = _polygonal(shapely.make_valid(shape(feat["geometry"])))
        lon, lat = props["center"]
        out.append(District(int(props["adcode"]), str(props["name"]), (float(lat), float(lon)), geom))
    return tuple(out)


def load_districts() -> list[District]:
    """The nine districts, WGS-84, from the file shipped in the package (sorted by adcode)."""
    return list(_districts())


# --- grid cells ------------------------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    """A grid cell (网格). ``geometry`` is the lattice square ∩ the city.

    A square crossing a district border belongs to the district holding the largest
    share of its area, and keeps its whole in-city part (it may reach into a neighbour).
    ``grid_worker`` names the cell's lead grid worker (网格长); ``grid_workers`` is how
    many workers the cell needs at ``HOUSEHOLDS_PER_GRID_WORKER`` — lattice cells in the
    core are much larger than a real 网格, so the lead heads a team there.
    """

    id: str
    row: int
    col: int
    district_adcode: int
    name: str
    center: tuple[float, float]  # (lat, lon), inside the cell's geometry
    households: int
    grid_worker: str
    geometry: BaseGeometry = field(repr=False, compare=False)

    @property
    def grid_worker_id(self) -> str:
        """The lead grid worker's account (MQTT source id for field reports)."""
        return f"GW-{self.id}"

    @property
    def grid_workers(self) -> int:
        return max(1, math.ceil(self.households / HOUSEHOLDS_PER_GRID_WORKER))


_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯"
    "邓曹彭曾肖田董袁潘蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力志鹏宇浩婷雪琳晨欣峰斌波海燕凤俊"


def chinese_name(rng: random.Random) -> str:
    """A plausible, invented Chinese personal name (surname + one or two characters)."""
    given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.6 else "")
    return rng.choice(_SURNAMES) + given


def household_density(lat: float, lon: float, districts: Sequence[District]) -> float:
    """Our demo's households per km² at a point: a rural floor plus a bump at every seat.

    The three urban seats stand so close together that their bumps merge into one
    central city across the Han River, as in reality.
    """
    best_rural = 0.0
    total = 0.0
    for d in districts:
        info = d.info
        km = haversine_m(lat, lon, d.center[0], d.center[1]) / 1000.0
        total += info.seat_peak * math.exp(-((km / info.seat_sigma_km) ** 2))
        if d.geometry.contains(Point(lon, lat)):
            best_rural = info.rural
    return total + best_rural


def _cell_rng(seed: int, key: str) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and
    # machines (unlike hash()), and independent of the order cells are visited in.
    return random.Random(f"{seed}:{key}")


def grid_cells(
    districts: Sequence[District], deg: float | None = None, seed: int = DEFAULT_CITY_SEED
) -> list[GridCell]:
    """Every lattice cell that overlaps the city, clipped to it, sorted by (row, col).

    Households follow ``household_density`` × the cell's area in km², with ±25 %
    deterministic noise per cell; the lead grid worker's name is drawn per cell.
    """
    d = default_deg() if deg is None else deg
    city = shapely.union_all([x.geometry for x in districts])
    shapely.prepare(city)
    minx, miny, maxx, maxy = city.bounds
    rows = range(math.floor(miny / d), math.floor(maxy / d) + 1)
    cols = range(math.floor(minx / d), math.floor(maxx / d) + 1)
    keys = [(r, c) for r in rows for c in cols]
    boxes = shapely.box(
        [c * d for _, c in keys], [r * d for r, _ in keys],
        [(c + 1) * d for _, c in keys], [(r + 1) * d for r, _ in keys],
    )
    hit = shapely.intersects(city, boxes)
    keys = [k for k, h in zip(keys, hit, strict=True) if h]
    boxes = boxes[hit]
    clipped = shapely.intersection(boxes, city)
    shares = [shapely.area(shapely.intersection(boxes, x.geometry)) for x in districts]

    raw: list[tuple[int, int, int, BaseGeometry]] = []
    for i, (r, c) in enumerate(keys):
        geom = _polygonal(clipped[i])
        if geom.is_empty or geom.area <= 0:
            continue  # touches the city only along an edge or at a corner
        owner = max(range(len(districts)), key=lambda j: (shares[j][i], -j))
        raw.append((r, c, districts[owner].adcode, geom))

    by_district: dict[int, list[tuple[int, int]]] = {}
    for r, c, adcode, _ in raw:
        by_district.setdefault(adcode, []).append((r, c))
    # Numbered within a district from the north-west, reading order (row north→south).
    numbers: dict[tuple[int, int], int] = {}
    for cells in by_district.values():
        for n, (r, c) in enumerate(sorted(cells, key=lambda rc: (-rc[0], rc[1])), start=1):
            numbers[(r, c)] = n
    names = {x.adcode: x.name for x in districts}

    prepared: list[tuple[str, random.Random, tuple[float, float], float]] = []
    district_raw = {x.adcode: 0.0 for x in districts}
    for r, c, adcode, geom in raw:
        cid = f"r{r}c{c}"
        rng = _cell_rng(seed, f"cell:{cid}")
        centroid = geom.centroid
        pt = centroid if geom.contains(centroid) else geom.representative_point()
        lat, lon = round(pt.y, 6), round(pt.x, 6)
        if grid_cell_id(lat, lon, d) != cid or not geom.contains(Point(lon, lat)):
            rp = geom.representative_point()  # rounding pushed it out: keep it unrounded
            lat, lon = rp.y, rp.x
        m_lat, m_lon = metres_per_degree(lat)
        area_km2 = geom.area * m_lat * m_lon / 1e6
        weight = household_density(lat, lon, districts) * area_km2 * rng.uniform(0.75, 1.25)
        district_raw[adcode] += weight
        prepared.append((cid, rng, (lat, lon), weight))

    out = []
    for (r, c, adcode, geom), (cid, rng, center, weight) in zip(raw, prepared, strict=True):
        scale = DISTRICT_INFO[adcode].households / district_raw[adcode] if adcode in DISTRICT_INFO else 1.0
        out.append(
            GridCell(
                id=cid, row=r, col=c, district_adcode=adcode,
                name=f"{names[adcode]}第{numbers[(r, c)]:03d}网格",
                center=center, households=round(weight * scale), grid_worker=chinese_name(rng), geometry=geom,
            )
        )
    return out


# --- registries -------------------------------------------------------------------


@dataclass(frozen=True)
class Venue:
    """A unit or venue of the venue network (单位和行业场所)."""

    id: str
    name: str
    kind: str
    lat: float
    lon: float
    grid_cell_id: str
    district_adcode: int


@dataclass(frozen=True)
class Device:
    """A field sensor. ``site`` says where it hangs (drives the simulator's realism)."""

    id: str
    network: Network
    kind: str
    unit: str
    lat: float
    lon: float
    grid_cell_id: str
    venue_id: str | None
    site: str


@dataclass(frozen=True)
class Camera:
    id: str
    network: Network
    lat: float
    lon: float
    grid_cell_id: str
    venue_id: str | None
    site: str


@dataclass(frozen=True)
class PatrolUnit:
    id: str
    name: str
    district_adcode: int
    lat: float
    lon: float


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    team_type: str
    district_adcode: int
    base_lat: float
    base_lon: float
    size: int


@dataclass(frozen=True)
class City:
    seed: int
    grid_deg: float
    districts: tuple[District, ...]
    grid_cells: tuple[GridCell, ...]
    venues: tuple[Venue, ...]
    devices: tuple[Device, ...]
    cameras: tuple[Camera, ...]
    patrol_units: tuple[PatrolUnit, ...]
    teams: tuple[Team, ...]

    def district(self, adcode: int) -> District:
        for d in self.districts:
            if d.adcode == adcode:
                return d
        raise KeyError(adcode)

    def cell(self, cell_id: str) -> GridCell:
        return self._cells_by_id()[cell_id]

    def _cells_by_id(self) -> dict[str, GridCell]:
        cache: dict[str, GridCell] | None = self.__dict__.get("_cell_index")
        if cache is None:
            cache = {c.id: c for c in self.grid_cells}
            object.__setattr__(self, "_cell_index", cache)  # frozen: a private memo only
        return cache

    def has_cell(self, cell_id: str) -> bool:
        return cell_id in self._cells_by_id()


def _apportion(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), each ≥ ``minimum``
    while the total allows."""
    n = len(weights)
    base = [min(minimum, total // max(n, 1)) for _ in weights]
    rest = total - sum(base)
    s = sum(weights) or 1.0
    quotas = [rest * w / s for w in weights]
    counts = [b + math.floor(q) for b, q in zip(base, quotas, strict=True)]
    order = sorted(range(n), key=lambda i: (-(quotas[i] - math.floor(quotas[i])), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class PointSampler:
    """Draws positions in the city: a grid cell weighted by households**alpha (alpha 0:
    by area, >1: crowding into the core), then a uniform point inside it. Every point it
    returns lies in a registered cell (and in the district asked for)."""

    def __init__(self, districts: Sequence[District], cells: Sequence[GridCell], deg: float) -> None:
        self.districts = {d.adcode: d for d in districts}
        self.cells = list(cells)
        self.by_id = {c.id: c for c in cells}
        self.deg = deg
        for c in cells:
            shapely.prepare(c.geometry)
        for d in districts:
            shapely.prepare(d.geometry)
        self._cum: dict[tuple[float, int | None], tuple[list[GridCell], list[float]]] = {}

    def _weights(self, alpha: float, adcode: int | None) -> tuple[list[GridCell], list[float]]:
        key = (alpha, adcode)
        if key not in self._cum:
            cells = [c for c in self.cells if adcode is None or c.district_adcode == adcode]
            cum: list[float] = []
            acc = 0.0
            for c in cells:
                acc += max(c.households, 1) ** alpha
                cum.append(acc)
            self._cum[key] = (cells, cum)
        return self._cum[key]

    def cell(self, rng: random.Random, alpha: float, adcode: int | None = None) -> GridCell:
        cells, cum = self._weights(alpha, adcode)
        return cells[min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cells) - 1)]

    def accept(self, lat: float, lon: float, adcode: int | None = None) -> GridCell | None:
        """The registered cell holding the point (and the district, when given), or None."""
        cell = self.by_id.get(grid_cell_id(lat, lon, self.deg))
        if cell is None or not shapely.contains_xy(cell.geometry, lon, lat):
            return None
        if adcode is not None and not shapely.contains_xy(self.districts[adcode].geometry, lon, lat):
            return None
        return cell

    def in_cell(self, rng: random.Random, cell: GridCell, adcode: int | None = None) -> tuple[float, float]:
        minx, miny, maxx, maxy = cell.geometry.bounds
        for _ in range(200):
            lat, lon = round(rng.uniform(miny, maxy), 6), round(rng.uniform(minx, maxx), 6)
            if self.accept(lat, lon, adcode) is cell:
                return lat, lon
        return cell.center  # a sliver cell: its centre is inside by construction

    def point(
        self, rng: random.Random, alpha: float, adcode: int | None = None
    ) -> tuple[float, float, GridCell]:
        cell = self.cell(rng, alpha, adcode)
        lat, lon = self.in_cell(rng, cell, adcode)
        if adcode is not None and self.accept(lat, lon, adcode) is None:
            d = self.districts[adcode]  # a cell owned by adcode but this draw fell elsewhere
            return self.near(rng, d.center[0], d.center[1], 300.0, adcode)
        return lat, lon, cell

    def near(
        self, rng: random.Random, lat: float, lon: float, radius_m: float, adcode: int | None = None
    ) -> tuple[float, float, GridCell]:
        """A point within ``radius_m`` of (lat, lon), inside the city (and district)."""
        for _ in range(200):
            r = radius_m * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            plat, plon = offset_by_metres(lat, lon, r * math.cos(a), r * math.sin(a))
            plat, plon = round(plat, 6), round(plon, 6)
            cell = self.accept(plat, plon, adcode)
            if cell is not None:
                return plat, plon, cell
            radius_m *= 1.02  # widen slowly when the spot is at the city's edge
        raise ValueError(f"no point in the city near {lat:.5f},{lon:.5f}")

    def within(
        self, rng: random.Random, lat: float, lon: float, radius_m: float, adcode: int, alpha: float
    ) -> tuple[float, float, GridCell]:
        """A point in the district within ``radius_m`` of a centre, cells weighted by people."""
        cells, _ = self._weights(alpha, adcode)
        near = [c for c in cells if haversine_m(lat, lon, c.center[0], c.center[1]) <= radius_m]
        if not near:
            return self.near(rng, lat, lon, radius_m, adcode)
        cum: list[float] = []
        acc = 0.0
        for c in near:
            acc += max(c.households, 1) ** alpha
            cum.append(acc)
        cell = near[min(bisect.bisect_right(cum, rng.random() * acc), len(near) - 1)]
        plat, plon = self.in_cell(rng, cell, adcode)
        if self.accept(plat, plon, adcode) is None:
            return self.near(rng, lat, lon, radius_m, adcode)
        return plat, plon, cell


def han_river(districts: Sequence[District]) -> BaseGeometry:
    """An approximation of the Han River (汉江) from the district borders that follow it.

    The river is the border between 樊城 and 襄城, between 襄城 and 襄州 below the city,
    and between 老河口 and 谷城 upstream; with no hydrography offline, those shared
    borders stand in for the river (good to a few hundred metres).
    """
    by_name = {d.short: d.geometry for d in districts}
    parts = []
    for a, b in (("樊城", "襄城"), ("襄城", "襄州"), ("老河口", "谷城")):
        if a in by_name and b in by_name:
            parts.append(shapely.intersection(by_name[a].boundary, by_name[b].boundary))
    return shapely.line_merge(shapely.union_all(parts))


def _ids(prefix: str, n: int, width: int = 4) -> list[str]:
    width = max(width, len(str(n)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)]


# Venue kinds: share of the venue count, how strongly they crowd into populous cells
# (alpha on households), and name makers.
_VENUE_KINDS: tuple[tuple[str, float, float], ...] = (
    ("school", 0.28, 1.0),
    ("hospital", 0.08, 1.3),
    ("chemical_plant", 0.06, 0.0),  # placed in the riverside industrial park instead
    ("mall", 0.09, 1.6),
    ("market", 0.07, 1.1),
    ("station", 0.04, 0.9),
    ("stadium", 0.015, 1.4),
    ("hotel", 0.07, 1.5),
    ("nursing_home", 0.06, 0.8),
    ("gas_station", 0.08, 0.6),
    ("warehouse", 0.05, 0.7),
    ("scenic_spot", 0.025, 0.5),
    ("factory", 0.06, 0.7),
)

_FIXED_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    # (district short, name) for the first venues of a kind: the city's landmarks.
    "station": (("樊城", "襄阳站"), ("襄州", "襄阳东站"), ("襄城", "襄阳南站"),
                ("樊城", "襄阳汽车客运中心站"), ("枣阳", "枣阳站"), ("老河口", "老河口客运站"),
                ("谷城", "谷城客运站"), ("宜城", "宜城站")),
    "stadium": (("襄州", "襄阳市体育中心"), ("樊城", "樊城区体育馆"), ("枣阳", "枣阳市体育馆")),
    "scenic_spot": (("襄城", "古隆中景区"), ("襄城", "襄阳古城墙"), ("襄城", "唐城影视基地"),
                    ("襄城", "习家池"), ("保康", "五道峡景区"), ("南漳", "春秋寨景区")),
}

_VENUE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "school": ("小学", "中学", "实验小学", "初级中学", "高级中学", "幼儿园", "中心小学", "职业技术学校"),
    "hospital": ("人民医院", "中医医院", "社区卫生服务中心", "妇幼保健院", "骨科医院", "卫生院"),
    "chemical_plant": ("化工有限公司", "精细化工有限公司", "化学品有限公司", "新材料股份有限公司",
                       "氯碱化工厂"),
    "mall": ("购物中心", "商业广场", "百货大楼", "天街", "商贸城"),
    "market": ("农贸市场", "综合市场", "蔬菜批发市场", "农副产品市场"),
    "station": ("汽车站", "公交枢纽站", "客运站"),
    "stadium": ("体育馆", "全民健身中心"),
    "hotel": ("大酒店", "宾馆", "国际酒店", "商务酒店"),
    "nursing_home": ("养老院", "敬老院", "社会福利院", "康养中心"),
    "gas_station": ("加油站", "加气站"),
    "warehouse": ("物流园", "冷链仓库", "仓储中心", "粮食储备库"),
    "scenic_spot": ("公园", "森林公园", "湿地公园"),
    "factory": ("汽车零部件有限公司", "纺织有限公司", "食品有限公司", "机械制造有限公司", "建材有限公司"),
}
_COMPANY_WORDS = ("汉润", "楚源", "鑫达", "华阳", "隆盛", "襄化", "荆楚", "恒泰", "宏远", "汉江", "金源",
                  "瑞丰")


def _venue_name(rng: random.Random, kind: str, district: District) -> str:
    suffix = rng.choice(_VENUE_SUFFIXES[kind])
    if kind in ("chemical_plant", "factory"):
        return f"襄阳{rng.choice(_COMPANY_WORDS)}{suffix}"
    return f"{district.short}{rng.choice(district.info.places)}{suffix}"


def _team_name(rng: random.Random, team_type: str, district: District) -> str:
    return f"{district.name}{rng.choice(district.info.places)}{TEAM_TYPE_NAMES[team_type]}"


def _unique(name_fn: Callable[[], str], taken: set[str]) -> str:
    for _ in range(30):
        name = name_fn()
        if name not in taken:
            taken.add(name)
            return name
    base = name_fn()
    n = 2
    while f"{base}（{n}）" in taken:
        n += 1
    taken.add(f"{base}（{n}）")
    return f"{base}（{n}）"


def industrial_park_center(districts: Sequence[District]) -> tuple[float, float]:
    """The riverside chemical park: on the Han River's 襄城 bank below the city (余家湖)."""
    river = han_river(districts)
    target = Point(112.215, 31.965)  # roughly 余家湖, WGS-84 (lon, lat)
    on_river = nearest_points(river, target)[0]
    return on_river.y, on_river.x


def build_venues(
    rng: random.Random, sampler: PointSampler, districts: Sequence[District], n: int
) -> list[Venue]:
    by_short = {d.short: d for d in districts}
    counts = _apportion(n, [share for _, share, _ in _VENUE_KINDS])
    park_lat, park_lon = industrial_park_center(districts)
    xiangcheng = by_short["襄城"].adcode
    taken: set[str] = set()
    out: list[Venue] = []
    ids = iter(_ids("VEN", n))
    for (kind, _, alpha), count in zip(_VENUE_KINDS, counts, strict=True):
        fixed = _FIXED_NAMES.get(kind, ())
        for i in range(count):
            if i < len(fixed):
                short, name = fixed[i]
                d = by_short[short]
                lat, lon, cell = sampler.within(
                    rng, d.center[0], d.center[1], d.info.town_radius_m, d.adcode, alpha
                )
                taken.add(name)
            elif kind == "chemical_plant":
                lat, lon, cell = sampler.near(rng, park_lat, park_lon, 2500.0, xiangcheng)
                d = by_short["襄城"]
                name = _unique(partial(_venue_name, rng, kind, d), taken)
            else:
                lat, lon, cell = sampler.point(rng, alpha)
                d = sampler.districts[_district_of(sampler, lat, lon, cell)]
                name = _unique(partial(_venue_name, rng, kind, d), taken)
            out.append(Venue(next(ids), name, kind, lat, lon, cell.id, d.adcode))
    return out


def _district_of(sampler: PointSampler, lat: float, lon: float, cell: GridCell) -> int:
    """The district a point lies in (its cell's owner unless the point is over the border)."""
    if shapely.contains_xy(sampler.districts[cell.district_adcode].geometry, lon, lat):
        return cell.district_adcode
    for adcode, d in sampler.districts.items():
        if shapely.contains_xy(d.geometry, lon, lat):
            return adcode
    return cell.district_adcode


# Device plan: (network, kind, site, share of devices, alpha or placement, venue kinds).
_DevicePlan = tuple[Network, str, str, float, float, tuple[str, ...]]
_DEVICE_PLANS: tuple[_DevicePlan, ...] = (
    (Network.COMMUNITY, "smoke", "residential", 0.33, 1.0, ()),  # 独立式烟感 in old compounds
    (Network.COMMUNITY, "gas", "residential", 0.08, 1.0, ()),  # household gas alarms
    (Network.COMMUNITY, "temperature", "substation", 0.05, 0.9, ()),  # 小区配电房
    (Network.COMMUNITY, "water_level", "low_lying_compound", 0.03, 1.3, ()),
    (Network.VENUE, "smoke", "venue", 0.13, 0.0, ("school", "hospital", "mall", "market", "hotel",
                                                   "nursing_home", "warehouse", "station", "stadium",
                                                   "factory")),
    (Network.VENUE, "gas", "venue", 0.08, 0.0, ("chemical_plant", "gas_station", "mall", "hotel", "hospital",
                                                 "market", "factory")),
    (Network.VENUE, "co", "venue", 0.06, 0.0, ("mall", "hospital", "hotel", "station", "chemical_plant",
                                                "school", "stadium")),
    (Network.VENUE, "temperature", "venue", 0.06, 0.0, ("chemical_plant", "warehouse", "factory",
                                                         "hospital")),
    (Network.PATROL, "water_level", "han_river", 0.025, 0.0, ()),  # 汉江 gauges
    (Network.PATROL, "water_level", "underpass", 0.025, 1.8, ()),  # 下穿通道, low-lying streets
    (Network.PATROL, "temperature", "ebike_charging", 0.03, 1.2, ()),  # street charging piles
    (Network.POLICE, "smoke", "police_station", 0.02, 0.8, ()),
    (Network.POLICE, "temperature", "police_station", 0.01, 0.8, ()),
    (Network.POLICE, "co", "police_station", 0.01, 0.8, ()),
    (Network.VIDEO, "temperature", "forest_thermal", 0.02, 0.0, ()),  # 森林防火热成像 in the hills
    (Network.VIDEO, "temperature", "camera_cabinet", 0.01, 1.0, ()),
)
_HILL_DISTRICTS = ("保康", "南漳", "谷城")


def build_devices(
    rng: random.Random, sampler: PointSampler, districts: Sequence[District], venues: Sequence[Venue], n: int
) -> list[Device]:
    counts = _apportion(n, [p[3] for p in _DEVICE_PLANS])
    river = han_river(districts)
    hills = [d.adcode for d in districts if d.short in _HILL_DISTRICTS]
    venues_by_kind: dict[str, list[Venue]] = {}
    for v in venues:
        venues_by_kind.setdefault(v.kind, []).append(v)
    ids = iter(_ids("SEN", n))
    out: list[Device] = []
    for (network, kind, site, _, alpha, venue_kinds), count in zip(_DEVICE_PLANS, counts, strict=True):
        pool = [v for k in venue_kinds for v in venues_by_kind.get(k, [])]
        for _ in range(count):
            venue_id: str | None = None
            if pool:
                v = rng.choice(pool)
                lat, lon, cell = sampler.near(rng, v.lat, v.lon, 120.0)
                venue_id = v.id
            elif site == "han_river":
                p = river.interpolate(rng.random(), normalized=True)
                lat, lon, cell = sampler.near(rng, p.y, p.x, 150.0)
            elif site == "forest_thermal":
                lat, lon, cell = sampler.point(rng, 0.0, rng.choice(hills))
            else:
                lat, lon, cell = sampler.point(rng, alpha)
            unit = SENSOR_UNITS[kind]
            out.append(Device(next(ids), network, kind, unit, lat, lon, cell.id, venue_id, site))
    return out


_CAMERA_PLANS: tuple[tuple[Network, str, float, float], ...] = (
    (Network.VIDEO, "street", 0.62, 1.1),  # 雪亮工程 public cameras
    (Network.VIDEO, "intersection", 0.13, 1.4),
    (Network.VENUE, "venue", 0.10, 0.0),
    (Network.PATROL, "checkpoint", 0.08, 0.5),  # 治安卡口 on roads into towns
    (Network.COMMUNITY, "compound_gate", 0.06, 1.0),
    (Network.POLICE, "police_station", 0.01, 0.8),
)


def build_cameras(rng: random.Random, sampler: PointSampler, venues: Sequence[Venue], n: int) -> list[Camera]:
    counts = _apportion(n, [p[2] for p in _CAMERA_PLANS])
    ids = iter(_ids("CAM", n))
    out: list[Camera] = []
    for (network, site, _, alpha), count in zip(_CAMERA_PLANS, counts, strict=True):
        for _ in range(count):
            venue_id: str | None = None
            if site == "venue" and venues:
                v = rng.choice(venues)
                lat, lon, cell = sampler.near(rng, v.lat, v.lon, 100.0)
                venue_id = v.id
            else:
                lat, lon, cell = sampler.point(rng, alpha)
            out.append(Camera(next(ids), network, lat, lon, cell.id, venue_id, site))
    return out


_CN_NUM = "零一二三四五六七八九十"


def _cn(n: int) -> str:
    if n <= 10:
        return _CN_NUM[n]
    if n < 20:
        return "十" + (_CN_NUM[n % 10] if n % 10 else "")
    return _CN_NUM[n // 10] + "十" + (_CN_NUM[n % 10] if n % 10 else "")


def _district_weights(cells: Sequence[GridCell], districts: Sequence[District], alpha: float) -> list[float]:
    totals = {d.adcode: 0 for d in districts}
    for c in cells:
        totals[c.district_adcode] += c.households
    return [max(totals[d.adcode], 1) ** alpha for d in districts]


def build_patrol_units(
    rng: random.Random, sampler: PointSampler, districts: Sequence[District], n: int
) -> list[PatrolUnit]:
    # Street patrol follows people, but every district keeps at least two units on the road.
    counts = _apportion(n, _district_weights(sampler.cells, districts, 1.0), minimum=2)
    ids = iter(_ids("PATROL", n, width=2))
    out = []
    for d, count in zip(districts, counts, strict=True):
        for i in range(1, count + 1):
            radius = d.info.town_radius_m * 1.5
            lat, lon, _ = sampler.within(rng, d.center[0], d.center[1], radius, d.adcode, 1.0)
            name = f"{d.name}公安分局{rng.choice(d.info.places)}巡逻{_cn(i)}组"
            out.append(PatrolUnit(next(ids), name, d.adcode, lat, lon))
    return out


_TEAM_SIZES = {
    "fire": (15, 40), "medical": (6, 20), "police": (10, 30), "hazmat": (12, 25),
    "water_rescue": (10, 24), "comprehensive": (50, 120),
}
# Shares of the teams beyond the one comprehensive team every district must have.
_TEAM_SHARES = {"fire": 0.36, "medical": 0.25, "police": 0.14, "hazmat": 0.07, "water_rescue": 0.10,
                "comprehensive": 0.08}
_RIVER_DISTRICTS = ("樊城", "襄城", "襄州", "宜城", "谷城", "老河口")


def build_teams(
    rng: random.Random, sampler: PointSampler, districts: Sequence[District], n: int
) -> list[Team]:
    """Rescue teams. Every district has a comprehensive team of ≥ 50 (DESIGN.md: at least
    one per township in the plans; per district in the demo). Fire, medical and police
    teams follow people; hazmat teams sit near the chemical park; water rescue on the Han."""
    if n < len(districts):
        raise ValueError(f"need at least {len(districts)} teams (one comprehensive team per district)")
    extra = _apportion(n - len(districts), list(_TEAM_SHARES.values()))
    plan: list[tuple[str, District | None]] = [("comprehensive", d) for d in districts]
    for team_type, count in zip(_TEAM_SHARES, extra, strict=True):
        plan.extend((team_type, None) for _ in range(count))
    weights = _district_weights(sampler.cells, districts, 1.0)
    river_ds = [d for d in districts if d.short in _RIVER_DISTRICTS]
    by_short = {d.short: d for d in districts}
    park_lat, park_lon = industrial_park_center(districts)
    numbers = {t: 0 for t in TEAM_TYPES}
    taken: set[str] = set()
    out = []
    for team_type, fixed in plan:
        numbers[team_type] += 1
        tid = f"{TEAM_ID_PREFIX[team_type]}-{numbers[team_type]:02d}"
        if fixed is not None:
            d = fixed
            lat, lon, _ = sampler.within(rng, d.center[0], d.center[1], 1500.0, d.adcode, 1.0)
        elif team_type == "hazmat" and numbers[team_type] == 1:
            d = by_short["襄城"]
            lat, lon, _ = sampler.near(rng, park_lat, park_lon, 2000.0, d.adcode)
        elif team_type == "water_rescue":
            d = river_ds[(numbers[team_type] - 1) % len(river_ds)]
            lat, lon, _ = sampler.within(rng, d.center[0], d.center[1], d.info.town_radius_m, d.adcode, 1.0)
        else:
            d = rng.choices(list(districts), weights=weights)[0]
            lat, lon, _ = sampler.within(rng, d.center[0], d.center[1], d.info.town_radius_m, d.adcode, 1.2)
        size = rng.randint(*_TEAM_SIZES[team_type])
        if team_type == "comprehensive" and fixed is not None:
            name = f"{d.name}{TEAM_TYPE_NAMES[team_type]}"
            taken.add(name)
        else:
            name = _unique(partial(_team_name, rng, team_type, d), taken)
        out.append(Team(tid, name, team_type, d.adcode, lat, lon, size))
    return out


@dataclass(frozen=True)
class CitySize:
    """How big a demo city to build (the defaults are the demo's)."""

    venues: int = 300
    devices: int = 3000
    cameras: int = 1500
    patrol_units: int = 60
    teams: int = 60


@lru_cache(maxsize=4)
def _cells_cached(seed: int, deg: float) -> tuple[GridCell, ...]:
    return tuple(grid_cells(_districts(), deg, seed))


def build_city(seed: int = DEFAULT_CITY_SEED, size: CitySize | None = None, deg: float | None = None) -> City:
    """The whole demo city for a seed. Pure; about a second."""
    size = size or CitySize()
    d = default_deg() if deg is None else deg
    districts = _districts()
    cells = _cells_cached(seed, d)
    sampler = PointSampler(districts, cells, d)
    # One stream per registry: changing the number of cameras leaves the teams alone.
    venues = build_venues(_cell_rng(seed, "venues"), sampler, districts, size.venues)
    devices = build_devices(_cell_rng(seed, "devices"), sampler, districts, venues, size.devices)
    cameras = build_cameras(_cell_rng(seed, "cameras"), sampler, venues, size.cameras)
    patrol = build_patrol_units(_cell_rng(seed, "patrol"), sampler, districts, size.patrol_units)
    teams = build_teams(_cell_rng(seed, "teams"), sampler, districts, size.teams)
    return City(
        seed, d, districts, cells, tuple(venues), tuple(devices), tuple(cameras), tuple(patrol), tuple(teams)
    )


# --- database --------------------------------------------------------------------


def _rounded(coords: Any, ndigits: int = 6) -> Any:
    if isinstance(coords, (int, float)):
        return round(float(coords), ndigits)
    return [_rounded(c, ndigits) for c in coords]


def geometry_geojson(geom: BaseGeometry) -> str:
    """A shapely geometry as compact GeoJSON text, coordinates to 6 decimals."""
    m = mapping(geom)
    return json.dumps({"type": m["type"], "coordinates": _rounded(m["coordinates"])}, separators=(",", ":"))


def _upsert_sql(table: str, columns: Sequence[str], key: str = "id", jsonb: Iterable[str] = ()) -> str:
    js = set(jsonb)
    values = ", ".join("%s::jsonb" if c in js else "%s" for c in columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "  # fixed names only
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _registry_rows(city: City) -> list[tuple[str, tuple[str, ...], str, list[tuple[Any, ...]]]]:
    """(table, columns, key, rows) in foreign-key order; "boundary" columns are jsonb."""
    return [
        ("district", ("adcode", "name", "center_lat", "center_lon", "boundary"), "adcode",
         [(d.adcode, d.name, d.center[0], d.center[1], geometry_geojson(d.geometry))
          for d in city.districts]),
        ("grid_cell", ("id", "district_adcode", "name", "center_lat", "center_lon", "boundary", "households",
                       "grid_worker"), "id",
         [(c.id, c.district_adcode, c.name, c.center[0], c.center[1], geometry_geojson(c.geometry),
           c.households, c.grid_worker) for c in city.grid_cells]),
        ("venue", ("id", "name", "kind", "lat", "lon", "grid_cell_id"), "id",
         [(v.id, v.name, v.kind, v.lat, v.lon, v.grid_cell_id) for v in city.venues]),
        ("device", ("id", "network", "kind", "unit", "lat", "lon", "grid_cell_id", "venue_id"), "id",
         [(x.id, str(x.network), x.kind, x.unit, x.lat, x.lon, x.grid_cell_id, x.venue_id)
          for x in city.devices]),
        ("camera", ("id", "network", "lat", "lon", "grid_cell_id", "venue_id"), "id",
         [(x.id, str(x.network), x.lat, x.lon, x.grid_cell_id, x.venue_id) for x in city.cameras]),
        ("patrol_unit", ("id", "name", "district_adcode", "lat", "lon"), "id",
         [(p.id, p.name, p.district_adcode, p.lat, p.lon) for p in city.patrol_units]),
        ("team", ("id", "name", "team_type", "district_adcode", "base_lat", "base_lon", "size"), "id",
         [(t.id, t.name, t.team_type, t.district_adcode, t.base_lat, t.base_lon, t.size)
          for t in city.teams]),
    ]


def load_city(conn: psycopg.Connection[Any], city: City) -> dict[str, int]:
    """Upsert the registries (idempotent: run it twice, nothing changes the second time).

    Rows are inserted or updated, never deleted: other tables (incidents, dispatches)
    may refer to a team or device, so a smaller city loaded over a larger one leaves the
    extra rows in place. One transaction; returns the rows written per table.
    """
    counts: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        for table, columns, key, rows in _registry_rows(city):
            # executemany pipelines the statements (psycopg 3): ~5k rows in well under a second.
            cur.executemany(_upsert_sql(table, columns, key, ("boundary",)), rows)
            counts[table] = len(rows)
    return counts


# --- conversion check (for docs/demo-city.md) -------------------------------------


def conversion_report(src: Path | None = None) -> dict[str, Any]:
    """The numbers that show the GCJ-02 → WGS-84 conversion is right (see the docs)."""
    districts = load_districts()
    city = shapely.union_all([d.geometry for d in districts])
    minx, miny, maxx, maxy = city.bounds
    rng = random.Random(1)
    roundtrip: list[float] = []
    offsets: list[float] = []
    while len(offsets) < 2000:
        lat, lon = rng.uniform(miny, maxy), rng.uniform(minx, maxx)
        if not city.contains(Point(lon, lat)):
            continue
        glat, glon = wgs84_to_gcj02(lat, lon)
        back = gcj02_to_wgs84(glat, glon)
        roundtrip.append(haversine_m(lat, lon, *back))
        offsets.append(gcj02_offset_m(lat, lon))
    out: dict[str, Any] = {
        "points": len(offsets),
        "roundtrip_max_m": max(roundtrip),
        "roundtrip_mean_m": sum(roundtrip) / len(roundtrip),
        "offset_min_m": min(offsets),
        "offset_max_m": max(offsets),
        "offset_mean_m": sum(offsets) / len(offsets),
        "centroids": [],
    }
    src = src or SHARED_DATA_DIR / SOURCE_FILE
    if src.exists():
        features = json.loads(src.read_text("utf-8"))["features"]
        gcj = {f["properties"]["adcode"]: shape(f["geometry"]) for f in features}
        for d in districts:
            a = gcj[d.adcode].centroid
            b = d.geometry.centroid
            out["centroids"].append(
                {"name": d.name, "gcj02": [round(a.y, 6), round(a.x, 6)],
                 "wgs84": [round(b.y, 6), round(b.x, 6)],
                 "shift_m": round(haversine_m(a.y, a.x, b.y, b.x), 1)}
            )
    return out


# --- CLI ---------------------------------------------------------------------------


def _size_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=DEFAULT_CITY_SEED)
    default = CitySize()
    p.add_argument("--venues", type=int, default=default.venues)
    p.add_argument("--devices", type=int, default=default.devices)
    p.add_argument("--cameras", type=int, default=default.cameras)
    p.add_argument("--patrol-units", type=int, default=default.patrol_units)
    p.add_argument("--teams", type=int, default=default.teams)


def _size(ns: argparse.Namespace) -> CitySize:
    return CitySize(ns.venues, ns.devices, ns.cameras, ns.patrol_units, ns.teams)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wuwang.city", description="The demo city (襄阳市).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert-districts", help="GCJ-02 DataV districts → shipped WGS-84 file")
    conv.add_argument("src", nargs="?", type=Path, default=SHARED_DATA_DIR / SOURCE_FILE)
    conv.add_argument("dest", nargs="?", type=Path, default=Path(__file__).parent / "data" / DISTRICTS_FILE)
    load = sub.add_parser("load", help="upsert the registries into PostgreSQL (DATABASE_URL)")
    load.add_argument("--database-url", default=None, help="default: DATABASE_URL from the settings")
    _size_args(load)
    summ = sub.add_parser("summary", help="print what the city holds")
    _size_args(summ)
    check = sub.add_parser("check-conversion", help="print the GCJ-02 conversion's check numbers")
    check.add_argument("src", nargs="?", type=Path, default=SHARED_DATA_DIR / SOURCE_FILE)
    ns = parser.parse_args(argv)
    if argv is None:  # this process's own command line: its logging, in the one format
        setup_logging("city", "WARNING")

    if ns.cmd == "convert-districts":
        if not ns.src.exists():
            print(f"source file not found: {ns.src}", file=sys.stderr)
            return 2
        convert_districts(ns.src, ns.dest)
        print(f"wrote {ns.dest}")
        return 0
    if ns.cmd == "check-conversion":
        print(json.dumps(conversion_report(ns.src), ensure_ascii=False, indent=1))
        return 0
    city = build_city(ns.seed, _size(ns))
    if ns.cmd == "summary":
        hh = sum(c.households for c in city.grid_cells)
        print(f"{CITY_NAME} seed={city.seed} cells={len(city.grid_cells)} households={hh} "
              f"venues={len(city.venues)} devices={len(city.devices)} cameras={len(city.cameras)} "
              f"patrol_units={len(city.patrol_units)} teams={len(city.teams)}")
        for d in city.districts:
            cells = [c for c in city.grid_cells if c.district_adcode == d.adcode]
            print(f"  {d.adcode} {d.name}: cells={len(cells)} households={sum(c.households for c in cells)} "
                  f"teams={sum(t.district_adcode == d.adcode for t in city.teams)}")
        return 0
    url = ns.database_url
    if url is None:
        from wuwang.settings import get_settings

        url = get_settings().shared.database_url
    if not url:
        print("DATABASE_URL is not set (or pass --database-url postgresql://…)", file=sys.stderr)
        return 2
    from wuwang import db

    with db.connect(url) as conn:
        counts = load_city(conn, city)
    print("loaded " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
