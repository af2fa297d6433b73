"""The offline basemap: tile arithmetic, the MBTiles archive, and tiles drawn from the
demo city's own streets and river (simulators.basemap, wuwang.tiles)."""

from __future__ import annotations

import io
import itertools
import math
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from simulators import basemap
from simulators.basemap import BasemapData, Street
from simulators.streets import build_street_networks
from wuwang.city import load_districts
from wuwang.tiles import TILE_PX, Bounds, TileArchive, tile_of, tms_row, world_px, write_archive


@pytest.fixture(scope="module")
def city() -> BasemapData:
    return basemap.city_basemap_data()


def _pixel_of(lat: float, lon: float, zoom: int) -> tuple[int, int, int, int]:
    """(tile x, tile y, pixel x, pixel y) of a position."""
    x, y = world_px(lat, lon, zoom)
    return int(x // TILE_PX), int(y // TILE_PX), int(x % TILE_PX), int(y % TILE_PX)


def _render(city: BasemapData, zoom: int, tx: int, ty: int) -> Image.Image:
    shapes = basemap._shapes_by_tile(city, zoom)[(tx, ty)]
    png = basemap.render_tile(shapes, tx, ty)
    assert png is not None
    return Image.open(io.BytesIO(png)).convert("RGB")


def _near(colour: float | tuple[int, ...] | None, target: tuple[int, int, int], tolerance: int = 14) -> bool:
    assert isinstance(colour, tuple), colour  # an RGB image's pixel
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=False))


# --- tile arithmetic ----------------------------------------------------------------


def test_tile_of_follows_the_xyz_scheme() -> None:
    assert tile_of(0.0001, 0.0001, 1) == (1, 0)  # north-east of the origin: column 1, top row
    assert tile_of(-0.0001, -0.0001, 1) == (0, 1)
    assert tile_of(85.0, -179.9, 4) == (0, 0)
    # 襄阳's centre at zoom 12, checked against the Web Mercator formula by hand
    n = 2**12
    lat, lon = 32.03, 112.14
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    assert tile_of(lat, lon, 12) == (x, y)


def test_tms_rows_count_from_the_south() -> None:
    assert tms_row(3, 0) == 7
    assert tms_row(3, tms_row(3, 5)) == 5


def test_bounds_cover_their_tiles() -> None:
    b = Bounds(111.0, 31.0, 113.0, 32.5)
    xs, ys = b.tiles(10)
    assert tile_of(31.5, 112.0, 10)[0] in xs and tile_of(31.5, 112.0, 10)[1] in ys
    assert tile_of(30.0, 112.0, 10)[1] not in ys
    assert Bounds.parse(b.text()) == b


# --- the city's content ---------------------------------------------------------------


def test_the_basemap_draws_the_city_own_streets_and_river(city: BasemapData) -> None:
    assert len(city.streets) > 1000  # nine district lattices of 600 m blocks
    assert city.river and all(len(line) >= 2 for line in city.river)
    assert len(city.towns) >= 9
    b = city.bounds
    assert b.west < 112.14 < b.east and b.south < 32.03 < b.north  # 襄阳's centre is inside
    assert any(s.major for s in city.streets) and any(not s.major for s in city.streets)


def test_a_tile_has_street_pixels_where_a_street_is(city: BasemapData) -> None:
    zoom = 15
    street = next(s for s in city.streets if not s.major)
    mid = ((street.a[0] + street.b[0]) / 2, (street.a[1] + street.b[1]) / 2)
    tx, ty, px, py = _pixel_of(*mid, zoom)
    img = _render(city, zoom, tx, ty)
    assert _near(img.getpixel((px, py)), basemap.STREET), img.getpixel((px, py))
    # 150 m beside the street, inside the block: no street there
    if abs(street.a[0] - street.b[0]) < abs(street.a[1] - street.b[1]):  # east-west: step north
        beside = (mid[0] + 150 / 111_000, mid[1])
    else:  # north-south: step east
        beside = (mid[0], mid[1] + 150 / (111_000 * math.cos(math.radians(mid[0]))))
    bx, by, bpx, bpy = _pixel_of(*beside, zoom)
    block = _render(city, zoom, bx, by) if (bx, by) != (tx, ty) else img
    colour = block.getpixel((bpx, bpy))
    assert not _near(colour, basemap.STREET) and not _near(colour, basemap.STREET_MAJOR), colour


def test_teams_drive_along_the_drawn_streets(city: BasemapData) -> None:
    """A simulated team's route between its first and last crossing is made of drawn
    street blocks: on the map it moves along the streets."""
    drawn = {frozenset((s.a, s.b)) for s in city.streets}
    fancheng = next(d for d in load_districts() if d.short == "樊城")
    net = build_street_networks([fancheng])[fancheng.adcode]
    lat, lon = fancheng.center
    route = net.route(lat + 0.02, lon - 0.03, lat - 0.02, lon + 0.03)
    crossings = route.points[1:-1]  # base → first crossing and last crossing → scene are off-street
    assert len(crossings) > 5
    assert all(frozenset(pair) in drawn for pair in itertools.pairwise(crossings))


def test_a_tile_has_the_river_where_the_river_is(city: BasemapData) -> None:
    zoom = 13
    line = max(city.river, key=len)
    lat, lon = line[len(line) // 2]
    tx, ty, px, py = _pixel_of(lat, lon, zoom)
    assert _near(_render(city, zoom, tx, ty).getpixel((px, py)), basemap.RIVER)


def test_streets_are_left_out_of_city_wide_zooms_and_widen_closer(city: BasemapData) -> None:
    assert basemap.street_width_px(10) == 0
    widths = [basemap.street_width_px(z) for z in range(11, 17)]
    assert widths == sorted(widths) and widths[0] > 0


def test_an_empty_tile_is_not_stored() -> None:
    assert basemap.render_tile([], 0, 0) is None
    far = BasemapData((), (), (Street((32.0, 112.0), (32.0, 112.01), False),), Bounds(111, 31, 113, 33))
    tiles = list(basemap.build_tiles(far, [13]))
    assert tiles and all(z == 13 for z, _, _, _ in tiles)
    assert len(tiles) <= 2  # 1 km of street at zoom 13 crosses one or two tiles


# --- the archive ----------------------------------------------------------------------


def test_the_archive_is_mbtiles_and_reads_back(tmp_path: Path, city: BasemapData) -> None:
    path = tmp_path / "basemap.mbtiles"
    report = basemap.build_archive(path, 11, 12, data=city)
    assert report.tiles > 10 and report.size_bytes == path.stat().st_size
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT name, value FROM metadata"))
        stored = db.execute("SELECT count(*), min(zoom_level), max(zoom_level) FROM tiles").fetchone()
    assert meta["format"] == "png" and meta["minzoom"] == "11" and meta["maxzoom"] == "12"
    assert stored == (report.tiles, 11, 12)
    archive = TileArchive(path)
    assert (archive.min_zoom, archive.max_zoom) == (11, 12)
    # a tile on 襄阳's streets is stored, a PNG; one outside the zooms or bounds is not covered
    street = city.streets[0]
    x, y = tile_of(*street.a, 12)
    png = archive.tile(12, x, y)
    assert png is not None and png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == (TILE_PX, TILE_PX)
    assert archive.covers(12, x, y)
    assert not archive.covers(13, *tile_of(*street.a, 13))
    assert not archive.covers(12, 0, 0)


def test_an_archive_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.mbtiles"
    meta = {"bounds": "111,31,113,33", "minzoom": "1", "maxzoom": "1", "format": "png"}
    write_archive(path, meta, [(1, 1, 0, b"\x89PNG first")])
    write_archive(path, meta, [(1, 1, 0, b"\x89PNG second")])
    assert TileArchive(path).tile(1, 1, 0) == b"\x89PNG second"
    assert not (tmp_path / "a.mbtiles.part").exists()


def test_the_cli_builds_only_when_asked_or_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bm.mbtiles"
    assert basemap.main(["build", "--out", str(path), "--min-zoom", "8", "--max-zoom", "9"]) == 0
    assert "tiles" in capsys.readouterr().out and path.exists()
    mtime = path.stat().st_mtime_ns
    assert basemap.main(["build", "--out", str(path), "--if-missing"]) == 0
    assert "exists" in capsys.readouterr().out and path.stat().st_mtime_ns == mtime
