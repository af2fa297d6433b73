"""The demo's offline basemap: raster tiles drawn from the project's own city data.

``python -m simulators.basemap build [--out PATH] [--min-zoom 8] [--max-zoom 16] [--if-missing]``
(``make basemap``) draws, for the 襄阳 demo city, the built-up area around each
district seat, the Han River (``wuwang.city.han_river``) and the street lattice the
simulated teams drive on (``simulators.streets``) into 256-px PNG tiles, and writes
them to one MBTiles file (``wuwang.tiles``), by default ``.wuwang/basemap.mbtiles``,
which the dashboard serves at ``/tiles/{z}/{x}/{y}.png``. Nothing is downloaded: the
tiles show exactly the streets the teams move along, and nothing of the real city.

Why raster and why here: Pillow draws the tiles, nothing new to install, and Leaflet
shows PNG tiles with no plug-in; the map's own vector layers (district outlines and
names, named places) stay in the browser, where the fonts are, so no CJK font is needed
on the machine that builds the tiles. The street lattice is the simulators' (it is what
they drive on), which is why the builder lives with them; the dashboard only reads the
archive. Tiles are opaque on the map panel's own dark background; only tiles with
something drawn on them are stored (the server answers the others with an empty tile).
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import shapely
from PIL import Image, ImageDraw
from shapely import affinity
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from simulators.streets import build_street_networks
from wuwang.city import CITY_NAME, District, han_river, load_districts
from wuwang.geo import metres_per_degree
from wuwang.settings import get_settings
from wuwang.tiles import TILE_PX, Bounds, basemap_file, world_px, write_archive

MIN_ZOOM = 8
MAX_ZOOM = 16
#: Drawn at twice the size and halved: Pillow's lines have no anti-aliasing of their own.
SUPERSAMPLE = 2

# Colours for the console's dark map (background #0a1526): the streets read clearly
# but stay dimmer than any incident, team or network marker drawn over them.
BACKGROUND = (10, 21, 38)  # #0a1526, the map panel's own (assets/02-console.css)
TOWN_FILL = (25, 39, 66)  # the towns stand out from the countryside at a city-wide zoom
RIVER = (34, 92, 146)
STREET = (58, 75, 104)
STREET_MAJOR = (80, 100, 135)  # every third street: the grid reads as blocks at a glance
#: The Han River is some 300–600 m wide through 襄阳; drawn narrower when zoomed out.
RIVER_WIDTH_M = 300.0

Line = tuple[tuple[float, float], ...]  # (lat, lon) points
Ring = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Street:
    """One block of a street: two neighbouring crossings of a district's lattice."""

    a: tuple[float, float]
    b: tuple[float, float]
    major: bool


@dataclass(frozen=True)
class BasemapData:
    """What the tiles show, in WGS-84 (lat, lon)."""

    towns: tuple[Ring, ...]  # outer rings of the built-up areas
    river: tuple[Line, ...]
    streets: tuple[Street, ...]
    bounds: Bounds


def _rings(geom: BaseGeometry) -> list[Ring]:
    polys = geom.geoms if isinstance(geom, MultiPolygon) else [geom] if isinstance(geom, Polygon) else []
    return [tuple((lat, lon) for lon, lat in p.exterior.coords) for p in polys if not p.is_empty]


def _lines(geom: BaseGeometry) -> list[Line]:
    if isinstance(geom, LineString):
        return [tuple((lat, lon) for lon, lat in geom.coords)]
    if isinstance(geom, MultiLineString):
        return [tuple((lat, lon) for lon, lat in g.coords) for g in geom.geoms]
    return [line for g in getattr(geom, "geoms", ()) for line in _lines(g)]


def _town(district: District) -> BaseGeometry:
    """The built-up area: the seat's town radius, inside the district."""
    lat, lon = district.center
    m_lat, m_lon = metres_per_degree(lat)
    r = district.info.town_radius_m
    circle = affinity.scale(Point(lon, lat).buffer(1.0, 48), r / m_lon, r / m_lat)
    return shapely.intersection(circle, district.geometry)


def city_basemap_data(districts: Sequence[District] | None = None) -> BasemapData:
    """The demo city's basemap content: towns, the Han River and the street lattices."""
    ds = list(districts) if districts is not None else load_districts()
    towns = [ring for d in ds for ring in _rings(_town(d))]
    river = _lines(han_river(ds))
    streets: list[Street] = []
    for net in build_street_networks(ds).values():
        seat = net.nodes[0]  # node 0 is the seat's crossing (build_street_network keeps it first)
        m_lat, m_lon = metres_per_degree(seat[0])
        for a, links in enumerate(net.neighbours):
            for b in links:
                if b <= a:
                    continue
                pa, pb = net.nodes[a], net.nodes[b]
                # Blocks from the seat, along the axis the street runs across.
                if abs(pa[0] - pb[0]) < abs(pa[1] - pb[1]):  # east-west street: its row
                    k = round((pa[0] - seat[0]) * m_lat / net.spacing_m)
                else:
                    k = round((pa[1] - seat[1]) * m_lon / net.spacing_m)
                streets.append(Street(pa, pb, k % 3 == 0))
    union = shapely.union_all([d.geometry for d in ds])
    west, south, east, north = union.bounds
    return BasemapData(tuple(towns), tuple(river), tuple(streets), Bounds(west, south, east, north))


def street_width_px(zoom: int) -> float:
    """A street's width on screen: a hairline in a city-wide view, a road up close."""
    return {11: 1.0, 12: 1.4, 13: 2.2, 14: 3.5, 15: 6.0, 16: 10.0}.get(zoom, 0.0 if zoom < 11 else 10.0)


def river_width_px(zoom: int, lat: float) -> float:
    metres_per_px = 40075016.686 * math.cos(math.radians(lat)) / (TILE_PX * (1 << zoom))
    # At least 4 px: on a city-wide view the river is drawn along district borders (the
    # outlines' vector layer) and must still show beside them.
    return max(4.0, min(28.0, RIVER_WIDTH_M / metres_per_px))


@dataclass(frozen=True)
class _Shape:
    """A town (filled ring) or one segment of the river or a street, ready to draw."""

    px: tuple[tuple[float, float], ...]  # whole-world pixels at the drawing scale
    colour: tuple[int, int, int]
    width: int  # line width at the drawing scale; 0: a filled polygon
    layer: int  # painter's order: towns, then the river, then the streets


def _shapes_by_tile(data: BasemapData, zoom: int) -> dict[tuple[int, int], list[_Shape]]:
    """Every shape at ``zoom``, filed under each tile its bounding box touches.

    Lines go in segment by segment: a river's bounding box covers half the city, its
    segments only the tiles they cross.
    """
    s = SUPERSAMPLE
    tile = TILE_PX * s
    lat = (data.bounds.south + data.bounds.north) / 2

    def px(points: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
        return tuple(world_px(la, lo, zoom, tile) for la, lo in points)

    shapes = [_Shape(px(r), TOWN_FILL, 0, 0) for r in data.towns]
    river_w = max(1, round(river_width_px(zoom, lat) * s))
    for line in data.river:
        pts = px(line)
        shapes += [_Shape((a, b), RIVER, river_w, 1) for a, b in itertools.pairwise(pts)]
    street_w = street_width_px(zoom) * s
    if street_w > 0:
        for st in data.streets:
            w = max(1, round(street_w * (1.4 if st.major else 1.0)))
            shapes.append(_Shape(px((st.a, st.b)), STREET_MAJOR if st.major else STREET, w, 2))
    by_tile: dict[tuple[int, int], list[_Shape]] = defaultdict(list)
    for shape in shapes:
        xs = [p[0] for p in shape.px]
        ys = [p[1] for p in shape.px]
        pad = shape.width / 2 + 1  # a wide line spills past its centre line into the next tile
        for tx in range(int((min(xs) - pad) // tile), int((max(xs) + pad) // tile) + 1):
            for ty in range(int((min(ys) - pad) // tile), int((max(ys) + pad) // tile) + 1):
                by_tile[(tx, ty)].append(shape)
    return by_tile


def render_tile(shapes: Sequence[_Shape], x: int, y: int) -> bytes | None:
    """One tile's PNG, or None when nothing shows on it."""
    s = SUPERSAMPLE
    size = TILE_PX * s
    ox, oy = x * size, y * size
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for shape in sorted(shapes, key=lambda sh: sh.layer):
        pts = [(px - ox, py - oy) for px, py in shape.px]
        if shape.width == 0:
            draw.polygon(pts, fill=shape.colour)
            continue
        draw.line(pts, fill=shape.colour, width=shape.width)
        if shape.width > 4:  # round ends, so segments and crossings join without notches
            r = shape.width / 2
            for cx, cy in pts:
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=shape.colour)
    if img.getcolors(maxcolors=1) is not None:  # one colour: the background only
        return None
    out = io.BytesIO()
    # A few colours and their blends: a 32-colour palette keeps the edges smooth and
    # makes a tile ~1 KB, and is quicker to encode than full colour.
    img.reduce(s).quantize(colors=32, method=Image.Quantize.FASTOCTREE).save(out, format="PNG")
    return out.getvalue()


def build_tiles(data: BasemapData, zooms: Sequence[int]) -> Iterator[tuple[int, int, int, bytes]]:
    """(zoom, x, y, png) for every tile with something on it, within the data's bounds."""
    for z in zooms:
        xs, ys = data.bounds.tiles(z)
        for (x, y), shapes in sorted(_shapes_by_tile(data, z).items()):
            if x in xs and y in ys:
                png = render_tile(shapes, x, y)
                if png is not None:
                    yield z, x, y, png


@dataclass(frozen=True)
class BuildReport:
    path: Path
    tiles: int
    size_bytes: int
    seconds: float


def build_archive(
    path: Path, min_zoom: int = MIN_ZOOM, max_zoom: int = MAX_ZOOM, data: BasemapData | None = None
) -> BuildReport:
    """Draw the tiles and write the MBTiles archive at ``path``."""
    started = time.perf_counter()
    data = data or city_basemap_data()
    b = data.bounds
    metadata = {
        "name": f"{CITY_NAME} demo basemap",
        "format": "png",
        "type": "baselayer",
        "version": "1",
        "description": "built-up areas, the Han River and the simulators' street lattice (synthetic)",
        "attribution": "wuwang demo city (synthetic streets; districts: DataV.GeoAtlas)",
        "bounds": b.text(),
        "center": f"{(b.west + b.east) / 2:.6f},{(b.south + b.north) / 2:.6f},{min_zoom}",
        "minzoom": str(min_zoom),
        "maxzoom": str(max_zoom),
        "datum": "wgs84",
    }
    n = write_archive(path, metadata, build_tiles(data, range(min_zoom, max_zoom + 1)))
    return BuildReport(path, n, path.stat().st_size, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.basemap", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="draw the tiles and write the archive")
    build.add_argument(
        "--out", type=Path, default=None, help="the archive (default: .wuwang/basemap.mbtiles)"
    )
    build.add_argument("--min-zoom", type=int, default=MIN_ZOOM)
    build.add_argument("--max-zoom", type=int, default=MAX_ZOOM)
    build.add_argument("--if-missing", action="store_true", help="do nothing when the archive exists")
    ns = parser.parse_args(argv)
    path = ns.out or basemap_file(get_settings())  # where the dashboard looks for it
    if ns.if_missing and path.exists():
        print(f"basemap: {path} exists")
        return 0
    if not 0 <= ns.min_zoom <= ns.max_zoom <= 20:
        parser.error("need 0 <= --min-zoom <= --max-zoom <= 20")
    report = build_archive(path, ns.min_zoom, ns.max_zoom)
    size_mb = report.size_bytes / 1e6
    print(f"basemap: {report.tiles} tiles, {size_mb:.1f} MB in {report.seconds:.1f} s -> {report.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
