"""The offline basemap in a real browser (Chromium through Playwright, a whole stack as in
test_console_browser.py; the stack's basemap is built by the ``basemap_file`` fixture).

The desk's map shows tiles, every one loaded from the dashboard's own /tiles/ URL, no
request leaves the machine; zoomed in on a district seat, the streets the teams drive
on and the names of places are on screen. Screenshots: desk-basemap.png (the desk,
1920×1080, zoomed in on 樊城 with an incident) and test-artifacts/dashboard/wall-basemap.png.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from dashboard.testing import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import call_110, incident_of, login, shot
from wuwang.tiles import TILE_PX, world_px

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

TILE_SRC = re.compile(r"/tiles/(\d+)/(\d+)/(\d+)\.png$")
LOADED_TILES = """
() => Array.from(document.querySelectorAll('.basemap-local img.leaflet-tile-loaded'))
  .filter(img => img.complete && img.naturalWidth > 0)
  .map(img => { const r = img.getBoundingClientRect();
                return {src: img.src, w: img.naturalWidth, left: r.left, top: r.top, size: r.width}; })
"""


def _tiles(page: Any, zoom: int | None = None) -> list[dict[str, Any]]:
    tiles: list[dict[str, Any]] = page.evaluate(LOADED_TILES)
    if zoom is None:
        return tiles
    return [t for t in tiles if (m := TILE_SRC.search(t["src"])) and int(m.group(1)) == zoom]


def _wait_tiles(page: Any, zoom: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """Loaded tiles of ``zoom``, once the zoom animation has settled (256 px each)."""
    for _ in range(int(timeout_s * 4)):
        tiles = [t for t in _tiles(page, zoom) if abs(t["size"] - TILE_PX) < 0.5]
        if len(tiles) >= 4:
            return tiles
        page.wait_for_timeout(250)
    raise AssertionError(f"no zoom {zoom} tiles loaded: {_tiles(page)[:5]}")


def _screen_point(tile: dict[str, Any], lat: float, lon: float) -> tuple[float, float]:
    """Where a position is on screen, from a loaded tile's place and its z/x/y."""
    m = TILE_SRC.search(tile["src"])
    assert m
    z, x, y = (int(g) for g in m.groups())
    px, py = world_px(lat, lon, z)
    return tile["left"] + px - x * TILE_PX, tile["top"] + py - y * TILE_PX


def _zoom_onto(page: Any, lat: float, lon: float, start: int, end: int) -> None:
    """Double-click the position until the map is at ``end`` (each click zooms one step
    around the cursor, so the position stays under it)."""
    for z in range(start, end):
        sx, sy = _screen_point(_wait_tiles(page, z)[0], lat, lon)
        page.mouse.dblclick(sx, sy)
        _wait_tiles(page, z + 1)


def test_the_desk_map_shows_the_demo_basemap_from_the_dashboard(
    console_stack: Stack, desk: Watched, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector(".legend-row", timeout=30_000)
    tiles = _wait_tiles(page, 9)  # the whole prefecture at zoom 9
    assert all(t["src"].startswith(f"{stack.dashboard_url}/tiles/") and t["w"] == TILE_PX for t in tiles)
    assert "no-basemap" not in (page.get_attribute(".map-panel", "class") or "")

    # Zoomed in on a place in 樊城 (the central city): its streets and its name.
    fancheng = next(d for d in stack.city.districts if d.short == "樊城")
    clat, clon = fancheng.center
    venue = min(
        (v for v in stack.city.venues if v.district_adcode == fancheng.adcode),
        key=lambda v: math.hypot(v.lat - clat, v.lon - clon),
    )
    # a 110 call 400 m south of it: its incident is drawn over the streets
    msg_id = call_110(
        stack, category="fire", lat=venue.lat - 0.0036, lon=venue.lon, address=f"{venue.name}南侧商铺"
    )
    incident = incident_of(stack, stack.login("operator1"), msg_id)
    page.wait_for_selector(f'.qrow[data-incident="{incident["id"]}"]', timeout=20_000)
    _zoom_onto(page, venue.lat, venue.lon, 9, 14)
    street_tiles = _wait_tiles(page, 14)
    assert len(street_tiles) >= 12  # the desk's map is covered with tiles, not a few
    label = page.locator(".place-label", has_text=venue.name)
    label.first.wait_for(state="visible", timeout=10_000)
    box = label.first.bounding_box()
    sx, sy = _screen_point(street_tiles[0], venue.lat, venue.lon)
    assert box is not None and abs(box["x"] - sx) < 12 and abs(box["y"] - sy) < 12  # at the venue
    page.mouse.move(1700, 700)  # off the map: the layers control folds up again
    page.wait_for_timeout(800)
    shot(page, artifacts, "desk-basemap")

    # Every tile came from the dashboard; nothing from anywhere else, and no error.
    tile_requests = [u for u in desk.urls if "/tiles/" in u]
    assert tile_requests and all(u.startswith(f"{stack.dashboard_url}/tiles/") for u in tile_requests)
    assert desk.foreign() == [], desk.foreign()
    assert desk.errors == [], desk.errors


def test_the_wall_map_shows_the_demo_basemap(console_stack: Stack, chromium: Any, artifacts: Path) -> None:
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        wall = Watched(ctx.new_page())
        login(wall.page, console_stack, "commander1", "/wall")
        wall.page.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
        tiles = _wait_tiles(wall.page, 9)
        assert all(t["src"].startswith(f"{console_stack.dashboard_url}/tiles/") for t in tiles)
        wall.page.wait_for_timeout(1000)
        wall.page.screenshot(path=str(artifacts / "wall-basemap.png"))
        assert wall.foreign() == [], wall.foreign()
        assert wall.errors == [], wall.errors
    finally:
        ctx.close()
