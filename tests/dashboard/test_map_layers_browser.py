"""The map's labels and basemap in a real browser (Chromium through Playwright, the
shared console stack of test_console_browser.py).

- The wall at its default zoom (the whole prefecture) holds the demo city's ~2,300
  street names and its place names but puts none of them in the DOM: labels are drawn
  only in view and from their zoom (assets/10-wuwang-map.js, ``lazyLabel``). Zoomed in
  on the desk, the names in view are there, and only those.
- A deployment's vector tiles (DASHBOARD_TILE_URL ending in .pbf) are drawn on canvas
  by the vendored Leaflet.VectorGrid, loaded from the dashboard itself: a tiny tile
  server on this machine serves one hand-made Mapbox vector tile for every z/x/y.
  Screenshots: wall-labels-zoomed-out.png, desk-labels-zoomed-out.png,
  desk-labels-zoomed-in.png, desk-vector-basemap.png.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboard.app import create_app
from testkit.feeds import wait_for
from testkit.stack import ServerThread, Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot
from wuwang.endpoints import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

MARKERS = "() => document.querySelectorAll('.leaflet-marker-icon').length"
STREET_LABELS = "() => document.querySelectorAll('.street-label').length"
LABELS = "() => window.wuwang.lazyLabels()"


def _labels_loaded(page: Any, at_least: int) -> dict[str, int]:
    """The street and place names fetched and held by the map (placeholders, no DOM)."""
    wait_for(lambda: page.evaluate(LABELS)["held"] >= at_least, 30, 0.25, "labels held")
    page.wait_for_timeout(500)  # a frame for the lazy labels to settle
    counts: dict[str, int] = page.evaluate(LABELS)
    return counts


def test_the_wall_puts_no_street_name_in_the_dom_zoomed_out(
    console_stack: Stack, chromium: Any, artifacts: Path
) -> None:
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        wall = Watched(ctx.new_page())
        page = wall.page
        login(page, console_stack, "commander1", "/wall")
        page.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
        page.wait_for_selector(".district-label", timeout=30_000)
        counts = _labels_loaded(page, 2000)  # ~2,300 street names and the places
        markers = page.evaluate(MARKERS)
        # Measured with the labels drawn as before (one DivIcon marker each, hidden by
        # CSS): 2,321 marker elements at this zoom (2,272 street and 40 place names); now
        # the nine district names.
        assert counts["shown"] == 0, counts
        assert page.evaluate(STREET_LABELS) == 0
        assert markers < 100, markers
        print(f"wall at its default zoom: {markers} marker elements, {counts['held']} labels held")
        shot(page, artifacts, "wall-labels-zoomed-out")
        assert wall.errors == [], wall.errors
    finally:
        ctx.close()


def test_zoomed_in_the_desk_shows_the_street_names_in_view_only(
    console_stack: Stack, desk: Watched, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    counts = _labels_loaded(page, 2000)
    assert counts["shown"] == 0 and page.evaluate(STREET_LABELS) == 0
    shot(page, artifacts, "desk-labels-zoomed-out")
    fancheng = next(d for d in stack.city.districts if d.short == "樊城")
    # the map flown to 樊城's centre (zoom 14, as opening an incident there does), then
    # one step closer with the zoom button: zoom 15
    page.evaluate("([lat, lon]) => window.wuwang.focus.to('test-zoom', lat, lon)", list(fancheng.center))
    wait_for(lambda: page.evaluate("() => window.wuwang.focus.view()")["zoom"] == 14, 20, 0.1, "z14")
    page.wait_for_timeout(900)  # the flight ends
    page.click(".map-panel .leaflet-control-zoom-in")
    wait_for(lambda: page.evaluate("() => window.wuwang.focus.view()")["zoom"] == 15, 20, 0.1, "z15")
    page.wait_for_timeout(800)
    shown = page.evaluate(LABELS)["shown"]
    in_dom = page.evaluate(STREET_LABELS)
    visible = page.evaluate(
        "() => Array.from(document.querySelectorAll('.map-panel .street-label span'))"
        ".filter(s => s.offsetParent !== null).length"
    )
    assert 0 < in_dom <= shown < counts["held"] // 3, (in_dom, shown, counts)
    assert visible >= 10, visible  # the names are readable on screen, not only in the DOM
    print(f"desk at zoom 15: {in_dom} street names in the DOM, {visible} visible, of {counts['held']}")
    shot(page, artifacts, "desk-labels-zoomed-in")
    assert desk.errors == [], desk.errors


# --- a vector tile basemap ---------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 31)


def _geometry(rings: list[list[tuple[int, int]]], close: bool) -> bytes:
    """Mapbox vector tile geometry commands (MoveTo, LineTo, ClosePath) for lines or rings."""
    cmds: list[int] = []
    x = y = 0
    for ring in rings:
        (x0, y0), rest = ring[0], ring[1:]
        cmds += [1 | 1 << 3, _zigzag(x0 - x), _zigzag(y0 - y)]
        x, y = x0, y0
        cmds.append(2 | len(rest) << 3)
        for px, py in rest:
            cmds += [_zigzag(px - x), _zigzag(py - y)]
            x, y = px, py
        if close:
            cmds.append(7 | 1 << 3)
    return b"".join(_varint(c) for c in cmds)


def _layer(name: str, geom_type: int, geometry: bytes) -> bytes:
    feature = _uint(3, geom_type) + _field(4, geometry)
    return _field(3, _uint(15, 2) + _field(1, name.encode()) + _field(2, feature) + _uint(5, 4096))


def vector_tile() -> bytes:
    """One tile: water over its whole square and a road across it (extent 4096)."""
    water = _layer("water", 3, _geometry([[(0, 0), (0, 4096), (4096, 4096), (4096, 0)]], close=True))
    road = _layer("transportation", 2, _geometry([[(0, 2048), (4096, 2048)]], close=False))
    return water + road


@pytest.fixture(scope="module")
def tile_server() -> Iterator[tuple[str, list[str]]]:
    body, asked = vector_tile(), []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Access-Control-Allow-Origin", "*")  # fetched from the dashboard's page
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/vt/{{z}}/{{x}}/{{y}}.pbf", asked
    server.shutdown()
    server.server_close()


def test_a_vector_tile_service_is_drawn_by_the_vendored_library(
    console_stack: Stack, desk: Watched, tile_server: tuple[str, list[str]], artifacts: Path
) -> None:
    url, asked = tile_server
    settings = console_stack.settings.updated(dashboard_tile_url=url)
    port = free_port()
    dashboard = ServerThread(create_app(settings).server, port, "dashboard-vector")
    dashboard.start()
    try:
        page = desk.page
        page.goto(f"http://127.0.0.1:{port}/")
        page.fill("#login-user", "operator1")
        page.fill("#login-password", "demo")
        page.click("#login-button")
        page.wait_for_selector(".map-panel .leaflet-container", timeout=30_000)
        wait_for(lambda: page.evaluate("() => window.wuwang.basemap.vectorTiles()") >= 4, 30, 0.25, "tiles")
        page.wait_for_timeout(800)
        # the tiles are canvases with the water's colour on them (#17324f), no <img> tile
        painted = page.evaluate(
            """() => Array.from(document.querySelectorAll('.basemap-vector-tiles canvas')).filter(c => {
                 const px = c.getContext('2d').getImageData(c.width / 4, c.height / 4, 1, 1).data;
                 return px[0] === 0x17 && px[1] === 0x32 && px[2] === 0x4f && px[3] === 255;
               }).length"""
        )
        assert painted >= 4, painted
        assert page.evaluate("() => document.querySelectorAll('.leaflet-tile-pane img').length") == 0
        assert asked and all(p.startswith("/vt/9/") and p.endswith(".pbf") for p in asked[:4]), asked[:4]
        # the library came from the dashboard, only for this page
        lib = [u for u in desk.urls if "Leaflet.VectorGrid" in u]
        assert lib and all(u.startswith(f"http://127.0.0.1:{port}/assets/vendor/") for u in lib)
        page.evaluate(
            "() => document.querySelectorAll('.map-panel .leaflet-control-layers-expanded')"
            ".forEach(c => c.classList.remove('leaflet-control-layers-expanded'))"
        )
        shot(page, artifacts, "desk-vector-basemap")
        # no page error; the command service's socket refuses this second dashboard's origin
        assert [e for e in desk.errors if "WebSocket" not in e and "ws://" not in e] == [], desk.errors
    finally:
        dashboard.stop()
