"""The basemap under every map: the demo's own tiles, or the deployment's tile service.

- ``DASHBOARD_TILE_URL`` set: that service's tiles (an in-house GIS, a private 天地图),
  with ``DASHBOARD_TILE_DATUM`` saying whether they are GCJ-02. Raster tiles are a
  Leaflet tile layer; vector tiles (``DASHBOARD_TILE_KIND=vector``, or a URL ending in
  ``.pbf``/``.mvt``) are drawn in the browser by the vendored Leaflet.VectorGrid
  (assets/11-wuwang-basemap.js), loaded only then.
- else, when the archive built by ``make basemap`` (``simulators.basemap``) exists at
  ``DASHBOARD_BASEMAP_FILE`` (default ``<DATA_DIR>/basemap.mbtiles``): its tiles, served
  here at ``GET /tiles/{z}/{x}/{y}.png``: nothing is fetched from outside the machine.
- else no basemap: the map's own layers on a dark background.

Tiles are public like any tile server's (the login page needs no map, but a tile holds
only the synthetic street lattice and the river). Inside the archive's zooms and bounds
a tile with nothing drawn on it is the empty (transparent) tile; outside, 404 — Leaflet
is told the bounds and zooms and does not ask for those.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import dash_leaflet as dl
from fastapi import APIRouter, FastAPI, Request, Response
from PIL import Image

from wuwang.settings import Settings
from wuwang.tiles import TILE_PX, TileArchive, basemap_file

LOCAL_URL = "/tiles/{z}/{x}/{y}.png"
TileKind = Literal["raster", "vector"]
#: The class that tells the browser code a tile layer stands for vector tiles.
VECTOR_CLASS = "basemap-vector"
_VECTOR_SUFFIXES = (".pbf", ".mvt")
#: Left out of every page's <head> (a regex on asset file names, Dash's ``assets_ignore``):
#: assets/11-wuwang-basemap.js loads the vendored Leaflet.VectorGrid only for vector tiles.
VECTOR_GRID_ASSET = r"^Leaflet\.VectorGrid\."
#: A day in the browser's cache: the archive changes only when it is rebuilt, and a
#: rebuilt archive changes the ETag.
CACHE_S = 86400


@cache
def _archive(path: Path, mtime_ns: int) -> TileArchive:
    """The archive as of its modification time: a rebuild is picked up, not cached over."""
    return TileArchive(path)


def local_archive(settings: Settings) -> TileArchive | None:
    path = basemap_file(settings)
    try:
        return _archive(path, path.stat().st_mtime_ns)
    except (OSError, KeyError, ValueError, sqlite3.Error):  # missing, or not an archive of ours
        return None


@dataclass(frozen=True)
class Basemap:
    """What the map's tile layer is told."""

    url: str
    local: bool
    kind: TileKind = "raster"
    attribution: str = ""
    min_native_zoom: int | None = None
    max_native_zoom: int | None = None
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None  # ((south, west), (north, east))


def tile_kind(settings: Settings) -> TileKind:
    """Raster or vector tiles at ``DASHBOARD_TILE_URL``: as set, else by the template's
    file suffix (``…/{z}/{x}/{y}.pbf``); the demo's own tiles are raster."""
    if settings.dashboard.tile_kind != "auto":
        return settings.dashboard.tile_kind
    path = urlsplit(settings.dashboard.tile_url or "").path.lower()
    return "vector" if path.endswith(_VECTOR_SUFFIXES) else "raster"


def basemap(settings: Settings) -> Basemap | None:
    """The configured tile service, else the local archive, else none."""
    if settings.dashboard.tile_url:
        return Basemap(
            settings.dashboard.tile_url,
            local=False,
            kind=tile_kind(settings),
            attribution=settings.dashboard.tile_attribution,
        )
    archive = local_archive(settings)
    if archive is None:
        return None
    b = archive.bounds
    return Basemap(
        LOCAL_URL,
        local=True,
        min_native_zoom=archive.min_zoom,
        max_native_zoom=archive.max_zoom,
        bounds=((b.south, b.west), (b.north, b.east)),
    )


def tile_layers(settings: Settings) -> list[Any]:
    """The map's basemap layer: none, or one ``dl.TileLayer`` (the demo's own needs no
    attribution line: the project drew it; vector tiles: a stand-in with the class
    ``basemap-vector``)."""
    base = basemap(settings)
    if base is None:
        return []
    options: dict[str, Any] = {"url": base.url, "maxZoom": settings.dashboard.tile_max_zoom}
    if base.local:
        options |= {
            "minNativeZoom": base.min_native_zoom,
            "maxNativeZoom": base.max_native_zoom,
            "bounds": [list(p) for p in base.bounds or ()],
            "className": "basemap-local",
        }
    else:
        options["attribution"] = base.attribution
    if base.kind == "vector":
        # a stand-in that fetches nothing: the browser code puts Leaflet.VectorGrid's
        # layer of the same URL in its place while it is on the map
        options["className"] = VECTOR_CLASS
    return [dl.TileLayer(**options)]


@cache
def empty_tile() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (TILE_PX, TILE_PX), (0, 0, 0, 0)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def router(settings: Settings) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/tiles/{z}/{x}/{y}.png")
    async def tile(z: int, x: int, y: int, request: Request) -> Response:
        archive = local_archive(settings)
        if archive is None or not archive.covers(z, x, y):
            return Response(status_code=404, content=b"no such tile", media_type="text/plain")
        png = await asyncio.to_thread(archive.tile, z, x, y) or empty_tile()
        etag = '"' + hashlib.sha256(png).hexdigest()[:20] + '"'
        headers = {"Cache-Control": f"public, max-age={CACHE_S}", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(content=png, media_type="image/png", headers=headers)

    return r


def mount(server: FastAPI, settings: Settings) -> None:
    server.include_router(router(settings))
