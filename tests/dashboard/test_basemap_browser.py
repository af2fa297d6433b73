"""The offline basemap in a real browser (Chromium through Playwright, a whole stack as in
test_console_browser.py; the stack's basemap is built by the ``basemap_file`` fixture).

The desk's map shows tiles, every one loaded from the dashboard's own /tiles/ URL, no
request leaves the machine; zoomed in on a district seat, the streets the teams drive
on and the names of places and streets are on screen. An order's address names a
crossing of two roads: at zoom 15 the desk shows both names around the scene, and the
team's phone shows them on its map. Screenshots: desk-basemap.png (the desk, 1920×1080,
zoomed in on 樊城 with an incident), desk-street-names.png and field-street-names.png
(390×844), and test-artifacts/dashboard/wall-basemap.png.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testkit.feeds import wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import call_110, incident_of, login, shot
from tests.dashboard.test_field_browser import free_team
from wuwang.geo import offset_by_metres
from wuwang.places import crossing_at, lattice_cell, lattice_point
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
    """Where a position is on screen, from a loaded tile's place, size and z/x/y."""
    m = TILE_SRC.search(tile["src"])
    assert m
    z, x, y = (int(g) for g in m.groups())
    px, py = world_px(lat, lon, z)
    scale = tile["size"] / TILE_PX  # a tile is drawn larger beyond the archive's deepest zoom
    return tile["left"] + (px - x * TILE_PX) * scale, tile["top"] + (py - y * TILE_PX) * scale


def _fold_layers_control(page: Any) -> None:
    """The layers control, left open by the layers' redraw, folded for the picture."""
    page.evaluate(
        "() => document.querySelectorAll('.map-panel .leaflet-control-layers-expanded')"
        ".forEach(c => c.classList.remove('leaflet-control-layers-expanded'))"
    )
    page.wait_for_timeout(300)


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
    row = f'.qrow[data-incident="{incident["id"]}"]'
    page.wait_for_selector(row, timeout=20_000)
    # Opening the incident flies the desk's map to it at zoom 14 (assets/12-wuwang-focus.js).
    page.click(row)
    wait_for(
        lambda: (page.evaluate("() => window.wuwang.focus.view()") or {}).get("zoom") == 14, 20, 0.1, "z14"
    )
    page.wait_for_timeout(900)  # the flight ends
    street_tiles = _wait_tiles(page, 14)
    assert len(street_tiles) >= 12  # the desk's map is covered with tiles, not a few
    label = page.locator(".place-label", has_text=venue.name)
    label.first.wait_for(state="visible", timeout=10_000)
    box = label.first.bounding_box()
    sx, sy = _screen_point(street_tiles[0], venue.lat, venue.lon)
    assert box is not None and abs(box["x"] - sx) < 12 and abs(box["y"] - sy) < 12  # at the venue
    _fold_layers_control(page)
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


ADDRESS = re.compile(r"^(?P<district>\S+?区)(?P<ew>\S+?)与(?P<ns>\S+?)交叉口附近")
LABEL_BOXES = """
sel => Array.from(document.querySelectorAll(sel + ' .street-label span'))
  .filter(s => s.offsetParent !== null)
  .map(s => { const r = s.getBoundingClientRect();
              return {n: s.textContent, x: r.left + r.width / 2, y: r.top + r.height / 2,
                      w: r.width, h: r.height}; })
"""


def _street_labels(page: Any, scope: str, name: str) -> list[dict[str, Any]]:
    return [b for b in page.evaluate(LABEL_BOXES, scope) if b["n"] == name]


@dataclass(frozen=True)
class Order:
    """An order whose address is the nearest crossing of the demo city's named roads."""

    incident: str
    team: str
    scene: tuple[float, float]
    east_west: str
    north_south: str
    crossing: tuple[float, float]


def _ordered_scene(stack: Stack) -> Order:
    """An incident in 樊城 with no caller's address, sent to a team: the order's address
    is the nearest crossing of named roads (wuwang.places)."""
    fancheng = next(d for d in stack.city.districts if d.short == "樊城")
    scene = offset_by_metres(*fancheng.center, 1250, -1900)  # 2 blocks north, 3 west
    token = stack.login("operator1")
    inc = stack.api(
        "POST",
        "/incidents",
        token,
        {"type": "fire", "level": 3, "title": "仓库起火", "lat": scene[0], "lon": scene[1]},
    )
    team = free_team(stack, token)
    sent = stack.api(
        "POST", f"/incidents/{inc['id']}/dispatch", token, {"team_id": team, "expected_version": 1}
    )
    match = ADDRESS.match(sent["order"]["message"]["address"])
    assert match, sent["order"]
    east_west, north_south = crossing_at(*scene, fancheng)
    assert (match["district"], match["ew"], match["ns"]) == (fancheng.name, east_west, north_south)
    crossing = lattice_point(fancheng, *lattice_cell(*scene, fancheng))
    return Order(inc["id"], team, scene, east_west, north_south, crossing)


def _assert_names_at_the_crossing(
    page: Any, scope: str, order: Order, scene_px: tuple[float, float], zoom: int
) -> None:
    """The two roads of the address are named on screen, each along its own road: the
    east–west name across, on the crossing's row, the north–south one down, on its
    column, within a block of the crossing."""
    sx, sy = world_px(*order.scene, zoom)
    cx, cy = world_px(*order.crossing, zoom)
    x, y = scene_px[0] + cx - sx, scene_px[1] + cy - sy
    block_px = cx - world_px(*offset_by_metres(*order.crossing, 0, -600), zoom)[0]
    ew = [b for b in _street_labels(page, scope, order.east_west) if abs(b["y"] - y) < 6]
    ns = [b for b in _street_labels(page, scope, order.north_south) if abs(b["x"] - x) < 6]
    assert any(abs(b["x"] - x) <= block_px and b["w"] > b["h"] for b in ew), (
        (x, y),
        _street_labels(page, scope, order.east_west),
        page.evaluate(LABEL_BOXES, scope)[:8],
    )
    assert any(abs(b["y"] - y) <= block_px and b["h"] > b["w"] for b in ns), ((x, y), ns)


def test_the_street_names_of_an_orders_address_are_on_the_desk_and_the_field_map(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    order = _ordered_scene(stack)
    scene = order.scene
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector(".legend-row", timeout=30_000)
    assert page.evaluate(LABEL_BOXES, ".map-panel") == []  # no street names over the whole city
    # Opening the incident flies the map to it (zoom 14); one step closer: zoom 15.
    row = f'.qrow[data-incident="{order.incident}"]'
    page.wait_for_selector(row, timeout=20_000)
    page.click(row)
    wait_for(
        lambda: (page.evaluate("() => window.wuwang.focus.view()") or {}).get("zoom") == 14, 20, 0.1, "z14"
    )
    page.wait_for_timeout(900)  # the flight ends
    page.click(".map-panel .leaflet-control-zoom-in")
    wait_for(lambda: page.evaluate("() => window.wuwang.focus.view()")["zoom"] == 15, 20, 0.1, "zoom 15")
    page.wait_for_timeout(600)
    view = page.evaluate("() => window.wuwang.focus.view()")
    assert abs(view["lat"] - scene[0]) < 1e-4 and abs(view["lon"] - scene[1]) < 1e-4  # centred on the scene
    # where the scene is on screen, from a loaded tile (zoom 14 tiles, drawn twice as large)
    tile = next(t for t in _tiles(page, 14) if abs(t["size"] - 2 * TILE_PX) < 0.5)
    _assert_names_at_the_crossing(page, ".map-panel", order, _screen_point(tile, *scene), 15)
    _fold_layers_control(page)
    shot(page, artifacts, "desk-street-names")
    assert desk.errors == [], desk.errors

    # The team's phone 540 m south-south-east of the scene: its map, fitted to both, is at
    # zoom 15 with the crossing near its middle, and shows the same two names.
    here = offset_by_metres(*scene, -500, 200)
    ctx = chromium.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": here[0], "longitude": here[1]},
        permissions=["geolocation"],
    )
    try:
        phone = Watched(ctx.new_page())
        login(phone.page, stack, order.team)
        phone.page.wait_for_selector(f'#field-order:has-text("{order.incident}")', timeout=30_000)

        def in_view(name: str) -> bool:
            box = phone.page.locator("#field-map").bounding_box()
            assert box is not None
            return any(
                box["x"] < b["x"] < box["x"] + box["width"] and box["y"] < b["y"] < box["y"] + box["height"]
                for b in _street_labels(phone.page, "#field-map", name)
            )

        for name in (order.east_west, order.north_south):
            wait_for(functools.partial(in_view, name), 20, 0.2, f"{name} on the phone's map")
        assert order.east_west in phone.page.inner_text("#field-order")  # the address the names match
        phone.page.evaluate(
            "() => window.scrollTo(0, document.querySelector('#field-order').closest('section').offsetTop"
            " - document.querySelector('.field-top').offsetHeight - 8)"
        )
        phone.page.wait_for_timeout(800)
        shot(phone.page, artifacts, "field-street-names")
        assert phone.foreign() == [], phone.foreign()
        assert phone.errors == [], phone.errors
    finally:
        ctx.close()
