"""The demo city: the shipped WGS-84 districts, the grid lattice, the registries and
their loading into PostgreSQL."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import shapely
from shapely.geometry import Point, box, shape

from wuwang.city import (
    DEFAULT_CITY_SEED,
    DISTRICTS_FILE,
    SENSOR_UNITS,
    SOURCE_FILE,
    Camera,
    City,
    CitySize,
    Device,
    Venue,
    build_city,
    convert_districts_geojson,
    grid_cells,
    han_river,
    load_city,
    load_districts,
    shipped_districts_text,
)
from wuwang.contract import SOURCE_ID_PATTERN, Network
from wuwang.geo import haversine_m, wgs84_to_gcj02
from wuwang.lattice import grid_cell_id

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_SOURCE = REPO_ROOT.parent / "shared" / "data" / SOURCE_FILE
DEG = 0.025
ID_RE = re.compile(rf"^{SOURCE_ID_PATTERN}$")
URBAN_CORE = (32.045, 112.15)  # between the seats of 樊城, 襄城 and 襄州 (WGS-84)
TEAM_TYPES = {"fire", "medical", "police", "hazmat", "water_rescue", "comprehensive"}


@pytest.fixture(scope="module")
def city() -> City:
    return build_city(DEFAULT_CITY_SEED, deg=DEG)


# --- districts ---------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_SOURCE.exists(), reason=f"{SHARED_SOURCE} not present (fresh machine)")
def test_shipped_file_equals_a_fresh_conversion() -> None:
    fresh = convert_districts_geojson(SHARED_SOURCE.read_text(encoding="utf-8"))
    assert shipped_districts_text() == fresh
    assert (REPO_ROOT / "wuwang" / "data" / DISTRICTS_FILE).read_text(encoding="utf-8") == fresh


@pytest.mark.skipif(not SHARED_SOURCE.exists(), reason=f"{SHARED_SOURCE} not present (fresh machine)")
def test_shipped_file_is_the_source_moved_back_from_gcj02() -> None:
    """Every shipped vertex, sent through WGS-84 → GCJ-02, lands on the DataV vertex."""
    src = {f["properties"]["adcode"]: f for f in json.loads(SHARED_SOURCE.read_text("utf-8"))["features"]}
    ours = json.loads(shipped_districts_text())
    assert ours["datum"].startswith("WGS-84")
    worst, shifts = 0.0, []
    for feat in ours["features"]:
        s = src[feat["properties"]["adcode"]]
        rings = zip(feat["geometry"]["coordinates"][0], s["geometry"]["coordinates"][0], strict=True)
        for ring, sring in rings:
            for (lon, lat), (slon, slat) in zip(ring[::25], sring[::25], strict=True):
                worst = max(worst, haversine_m(*wgs84_to_gcj02(lat, lon), slat, slon))
                shifts.append(haversine_m(lat, lon, slat, slon))
    assert worst < 0.5  # conversion + 6-decimal rounding
    assert min(shifts) > 500 and max(shifts) < 700  # and it did move everything ~600 m


def test_nine_districts() -> None:
    districts = load_districts()
    assert len(districts) == 9
    assert [d.adcode for d in districts] == [
        420602, 420606, 420607, 420624, 420625, 420626, 420682, 420683, 420684
    ]
    assert {d.name for d in districts} >= {"襄城区", "樊城区", "襄州区", "枣阳市", "保康县"}
    for d in districts:
        assert d.geometry.is_valid and not d.geometry.is_empty
        assert d.geometry.contains(Point(d.center[1], d.center[0])), d.name  # (lat, lon) order
    total_km2 = sum(shapely.area(d.geometry) for d in districts) * 111.2 * 94.3
    assert 18_000 < total_km2 < 21_500  # Xiangyang: ≈19,700 km²


# --- grid cells -------------------------------------------------------------------


def test_grid_cell_id_is_arithmetic() -> None:
    assert grid_cell_id(32.0375, 112.1375, DEG) == "r1281c4485"
    assert grid_cell_id(-0.01, -0.01, DEG) == "r-1c-1"
    assert grid_cell_id(51.5, -0.12, DEG) == "r2060c-5"  # outside the city: an id all the same
    assert grid_cell_id(32.0375, 112.1375, 0.5) == "r64c224"


def test_grid_cells_are_consistent_with_grid_cell_id(city: City) -> None:
    ids = [c.id for c in city.grid_cells]
    assert len(ids) == len(set(ids))
    for c in city.grid_cells:
        assert c.id == f"r{c.row}c{c.col}"
        assert grid_cell_id(*c.center, DEG) == c.id  # its centre maps to its own id
        assert c.geometry.contains(Point(c.center[1], c.center[0]))
        lattice = box(c.col * DEG, c.row * DEG, (c.col + 1) * DEG, (c.row + 1) * DEG)
        assert lattice.buffer(1e-9).contains(c.geometry)
        assert c.households >= 0 and c.grid_worker
        assert ID_RE.match(c.grid_worker_id)


def test_grid_cells_cover_the_city(city: City) -> None:
    union = shapely.union_all([d.geometry for d in city.districts])
    covered = sum(c.geometry.area for c in city.grid_cells)
    assert covered == pytest.approx(union.area, rel=1e-6)
    # Any point in the city has a registered cell: ingest's ids are then in the registry.
    known = {c.id for c in city.grid_cells}
    minx, miny, maxx, maxy = union.bounds
    rng = random.Random(3)
    hits = 0
    while hits < 2000:
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if union.contains(Point(lon, lat)):
            hits += 1
            assert grid_cell_id(lat, lon, DEG) in known


def test_grid_cells_belong_to_the_district_with_most_area(city: City) -> None:
    by_adcode = {d.adcode: d for d in city.districts}
    for c in city.grid_cells[::7]:
        shares = {a: c.geometry.intersection(d.geometry).area for a, d in by_adcode.items()}
        assert shares[c.district_adcode] == pytest.approx(max(shares.values()), rel=1e-9)


def test_households_are_plausible(city: City) -> None:
    total = sum(c.households for c in city.grid_cells)
    assert 1_800_000 < total < 2_200_000  # ≈5.3 M people at ≈2.7 per household
    per_district = Counter[int]()
    for c in city.grid_cells:
        per_district[c.district_adcode] += c.households
    assert per_district[420606] > per_district[420626] * 3  # 樊城 (city) ≫ 保康 (mountains)
    workers = sum(c.grid_workers for c in city.grid_cells)
    assert total / workers < 150  # one grid worker per ≤150 households
    assert 9_000 < workers < 20_000


def test_grid_cells_are_deterministic(city: City) -> None:
    again = grid_cells(load_districts(), DEG, DEFAULT_CITY_SEED)
    assert [(c.id, c.households, c.grid_worker, c.name) for c in again] == [
        (c.id, c.households, c.grid_worker, c.name) for c in city.grid_cells
    ]


# --- registries ---------------------------------------------------------------------


def test_demo_sizes(city: City) -> None:
    assert len(city.venues) == 300
    assert len(city.devices) == 3000
    assert len(city.cameras) == 1500
    assert len(city.patrol_units) == 60
    assert len(city.teams) == 60


def test_sizes_are_parameters() -> None:
    small = build_city(5, CitySize(venues=40, devices=200, cameras=90, patrol_units=20, teams=15), DEG)
    assert (len(small.venues), len(small.devices), len(small.cameras), len(small.patrol_units),
            len(small.teams)) == (40, 200, 90, 20, 15)
    assert {p.district_adcode for p in small.patrol_units} == {d.adcode for d in small.districts}
    with pytest.raises(ValueError, match="at least 9 teams"):
        build_city(5, CitySize(teams=5), DEG)


def test_every_point_lies_in_its_cell_and_district(city: City) -> None:
    cells = {c.id: c for c in city.grid_cells}
    districts = {d.adcode: d for d in city.districts}
    placed: tuple[Venue | Device | Camera, ...] = (*city.venues, *city.devices, *city.cameras)
    for x in placed:
        assert grid_cell_id(x.lat, x.lon, DEG) == x.grid_cell_id, x
        assert cells[x.grid_cell_id].geometry.contains(Point(x.lon, x.lat)), x
    for v in city.venues:
        assert districts[v.district_adcode].geometry.contains(Point(v.lon, v.lat)), v
    for p in city.patrol_units:
        assert districts[p.district_adcode].geometry.contains(Point(p.lon, p.lat)), p
    for t in city.teams:
        assert districts[t.district_adcode].geometry.contains(Point(t.base_lon, t.base_lat)), t
        assert grid_cell_id(t.base_lat, t.base_lon, DEG) in cells


def test_ids_match_the_contract_and_are_unique(city: City) -> None:
    for group in (city.venues, city.devices, city.cameras, city.patrol_units, city.teams):
        ids = [x.id for x in group]
        assert len(ids) == len(set(ids))
        assert all(ID_RE.match(i) for i in ids)
    assert city.devices[0].id == "SEN-0001" and city.cameras[0].id == "CAM-0001"  # demo accounts
    assert "T-FIRE-01" in {t.id for t in city.teams}  # deploy/mosquitto/passwd's team


def test_registry_values_fit_the_schema(city: City) -> None:
    networks = {str(n) for n in Network}
    venues = {v.id for v in city.venues}
    for d in city.devices:
        assert str(d.network) in networks and d.unit == SENSOR_UNITS[d.kind]
        assert d.venue_id is None or d.venue_id in venues
    assert {str(d.network) for d in city.devices} == networks  # every network has sensors
    assert {d.kind for d in city.devices} == set(SENSOR_UNITS)
    cams = Counter(str(c.network) for c in city.cameras)
    assert cams["video"] > 0.6 * len(city.cameras) and len(cams) == 5
    assert {t.team_type for t in city.teams} == TEAM_TYPES
    assert all(t.size > 0 for t in city.teams)
    assert len({v.name for v in city.venues}) == len(city.venues)
    assert len({t.name for t in city.teams}) == len(city.teams)


def test_every_district_has_a_comprehensive_team_of_fifty(city: City) -> None:
    for d in city.districts:
        sizes = [
            t.size for t in city.teams if t.district_adcode == d.adcode and t.team_type == "comprehensive"
        ]
        assert sizes and max(sizes) >= 50, d.name


def test_points_crowd_into_the_urban_core(city: City) -> None:
    def near(lat: float, lon: float) -> bool:
        return haversine_m(lat, lon, *URBAN_CORE) < 15_000

    area_share = sum(c.geometry.area for c in city.grid_cells if near(*c.center)) / sum(
        c.geometry.area for c in city.grid_cells
    )
    assert area_share < 0.05
    for group in (city.devices, city.cameras, city.venues):
        share = sum(near(x.lat, x.lon) for x in group) / len(group)
        assert share > 0.35, group[0]


def test_riverside_things_are_by_the_river(city: City) -> None:
    river = han_river(city.districts)
    for d in city.devices:
        if d.site == "han_river":
            assert river.distance(Point(d.lon, d.lat)) * 111_000 < 400
    plants = [v for v in city.venues if v.kind == "chemical_plant"]
    assert plants and all(river.distance(Point(v.lon, v.lat)) * 111_000 < 3_500 for v in plants)


def test_city_is_deterministic_for_a_seed(city: City) -> None:
    again = build_city(DEFAULT_CITY_SEED, deg=DEG)
    assert again == city  # dataclass equality: every registry row, in order
    other = build_city(DEFAULT_CITY_SEED + 1, deg=DEG)
    assert [(v.lat, v.lon) for v in other.venues] != [(v.lat, v.lon) for v in city.venues]


# --- PostgreSQL ---------------------------------------------------------------------


def _counts(url: str) -> dict[str, int]:
    tables = ("district", "grid_cell", "venue", "device", "camera", "patrol_unit", "team")
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def test_load_city_is_idempotent(database_url: str, city: City) -> None:
    with psycopg.connect(database_url) as conn:
        written = load_city(conn, city)
    first = _counts(database_url)
    assert first == written
    assert first == {"district": 9, "grid_cell": len(city.grid_cells), "venue": 300, "device": 3000,
                     "camera": 1500, "patrol_unit": 60, "team": 60}
    with psycopg.connect(database_url) as conn:
        load_city(conn, city)
    assert _counts(database_url) == first
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT t.size, t.team_type, d.name FROM team t JOIN district d ON d.adcode = t.district_adcode "
            "WHERE t.id = 'T-FIRE-01'"
        ).fetchone()
        assert row is not None and row[1] == "fire"
        first_cell = city.grid_cells[0]
        boundary = conn.execute("SELECT boundary FROM grid_cell WHERE id = %s", (first_cell.id,)).fetchone()
        assert boundary is not None
        geom = shape(boundary[0])
        assert geom.equals_exact(city.grid_cells[0].geometry, 1e-6)
        hh = conn.execute("SELECT sum(households) FROM grid_cell").fetchone()
        assert hh is not None and hh[0] == sum(c.households for c in city.grid_cells)
