"""Map tiles: Web Mercator tile arithmetic and the MBTiles archive that holds a basemap.

The offline basemap (``simulators.basemap`` draws it, ``dashboard.tiles`` serves it) is
one SQLite file in the MBTiles 1.3 layout: a ``metadata`` table of name/value text and
a ``tiles`` table keyed by zoom, column and row. MBTiles rows count from the south
(TMS); the URLs Leaflet asks for count from the north (XYZ): :func:`tms_row` converts.
Only tiles with something drawn on them are stored; inside the archive's bounds and
zooms a missing tile is empty, outside them there is no tile at all.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wuwang.settings import Settings

TILE_PX = 256
ARCHIVE_NAME = "basemap.mbtiles"
#: Web Mercator stops here: tiles cover latitudes up to ±85.0511°.
MAX_LAT = 85.0511287798


def basemap_file(settings: Settings) -> Path:
    """Where the demo's basemap archive is: ``DASHBOARD_BASEMAP_FILE``, else
    ``<DATA_DIR>/basemap.mbtiles`` (the builder writes it there, the dashboard reads it)."""
    return settings.dashboard.basemap_file or settings.shared.data_dir / ARCHIVE_NAME


def world_px(lat: float, lon: float, zoom: int, tile_px: int = TILE_PX) -> tuple[float, float]:
    """(x, y) of a WGS-84 position in the zoom level's whole-world pixel grid (y down)."""
    size = tile_px * (1 << zoom)
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    s = math.sin(math.radians(lat))
    x = (lon + 180.0) / 360.0 * size
    y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * size
    return x, y


def tile_of(lat: float, lon: float, zoom: int) -> tuple[int, int]:
    """The (x, y) XYZ tile holding a position."""
    x, y = world_px(lat, lon, zoom)
    last = (1 << zoom) - 1
    return min(last, max(0, int(x // TILE_PX))), min(last, max(0, int(y // TILE_PX)))


def tms_row(zoom: int, y: int) -> int:
    """XYZ row (from the north) <-> MBTiles/TMS row (from the south); its own inverse."""
    return (1 << zoom) - 1 - y


@dataclass(frozen=True)
class Bounds:
    """A box in WGS-84 degrees."""

    west: float
    south: float
    east: float
    north: float

    def tiles(self, zoom: int) -> tuple[range, range]:
        """The XYZ columns and rows of the tiles that cover the box at ``zoom``."""
        x0, y0 = tile_of(self.north, self.west, zoom)
        x1, y1 = tile_of(self.south, self.east, zoom)
        return range(x0, x1 + 1), range(y0, y1 + 1)

    def text(self) -> str:
        """MBTiles' ``bounds`` metadata: "west,south,east,north"."""
        return ",".join(f"{v:.6f}" for v in (self.west, self.south, self.east, self.north))

    @classmethod
    def parse(cls, text: str) -> Bounds:
        west, south, east, north = (float(v) for v in text.split(","))
        return cls(west, south, east, north)


_SCHEMA = """
CREATE TABLE metadata (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB,
                    PRIMARY KEY (zoom_level, tile_column, tile_row));
"""


def write_archive(path: Path, metadata: dict[str, str], tiles: Iterable[tuple[int, int, int, bytes]]) -> int:
    """Write an MBTiles file from (zoom, x, y XYZ, png) tuples; returns how many tiles.

    Written to a temporary name and renamed, so a server reading ``path`` never sees
    half an archive.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    n = 0
    with sqlite3.connect(tmp) as db:
        db.executescript(_SCHEMA)
        db.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        for z, x, y, png in tiles:
            db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, tms_row(z, y), png))
            n += 1
    db.close()
    tmp.replace(path)
    return n


class TileArchive:
    """An MBTiles file opened read-only; safe to share between threads (one connection each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            self.metadata = dict(db.execute("SELECT name, value FROM metadata").fetchall())
        db.close()
        self.bounds = Bounds.parse(self.metadata["bounds"])
        self.min_zoom = int(self.metadata["minzoom"])
        self.max_zoom = int(self.metadata["maxzoom"])

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def covers(self, zoom: int, x: int, y: int) -> bool:
        """Whether the XYZ tile lies within the archive's zooms and bounds."""
        if not self.min_zoom <= zoom <= self.max_zoom:
            return False
        xs, ys = self.bounds.tiles(zoom)
        return x in xs and y in ys

    def tile(self, zoom: int, x: int, y: int) -> bytes | None:
        """The stored PNG of an XYZ tile, or None (nothing drawn there, or not covered)."""
        db = self._connect()
        try:
            row = db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (zoom, x, tms_row(zoom, y)),
            ).fetchone()
        finally:
            db.close()
        return bytes(row[0]) if row else None
