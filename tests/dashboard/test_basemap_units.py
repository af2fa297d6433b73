"""The dashboard's basemap: its own tiles served at /tiles/{z}/{x}/{y}.png from the
archive ``make basemap`` builds, or the deployment's tile service (DASHBOARD_TILE_URL)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from shapely.geometry import mapping

from dashboard import ids
from dashboard.app import content_security_policy, create_app
from dashboard.context import Console
from dashboard.data.registries import Registries
from dashboard.geo import map_datum
from dashboard.geoserve import LAYERS
from dashboard.layout.map import map_panel
from dashboard.tiles import LOCAL_URL, basemap, tile_layers
from simulators.basemap import build_archive, city_basemap_data
from wuwang.city import load_districts
from wuwang.places import crossing_at, road_labels, street_lattice
from wuwang.settings import Settings
from wuwang.tiles import tile_of

ZOOMS = (11, 12)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("basemap") / "basemap.mbtiles"
    build_archive(path, *ZOOMS)
    return path


@pytest.fixture(scope="module")
def street_tile() -> tuple[int, int, int]:
    street = city_basemap_data().streets[0]
    return (12, *tile_of(*street.a, 12))


def settings_with(archive: Path, **more: Any) -> Settings:
    return Settings(demo_mode=True, dashboard_streets_file=None, dashboard_basemap_file=archive, **more)


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_with(archive)).server) as c:
        yield c


def test_a_tile_of_the_city_is_a_png_the_browser_may_cache(
    client: TestClient, street_tile: tuple[int, int, int]
) -> None:
    z, x, y = street_tile
    r = client.get(f"/tiles/{z}/{x}/{y}.png")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert "public" in r.headers["cache-control"] and "max-age=86400" in r.headers["cache-control"]
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (256, 256)
    assert len(img.convert("RGB").getcolors(4096) or []) > 1  # streets on it, not a blank
    again = client.get(f"/tiles/{z}/{x}/{y}.png", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_no_tile_outside_the_archive(client: TestClient, street_tile: tuple[int, int, int]) -> None:
    _z, x, y = street_tile
    assert client.get("/tiles/12/0/0.png").status_code == 404  # off 襄阳
    assert client.get(f"/tiles/13/{2 * x}/{2 * y}.png").status_code == 404  # deeper than built
    assert client.get(f"/tiles/10/{x // 4}/{y // 4}.png").status_code == 404  # shallower
    assert client.get("/tiles/12/a/b.png").status_code == 422


def test_an_empty_tile_inside_the_city_is_transparent(client: TestClient, archive: Path) -> None:
    # the archive's north-west corner: mountains of 保康/谷城, nothing drawn there
    s = settings_with(archive)
    b = basemap(s)
    assert b is not None and b.bounds is not None
    (_south, west), (north, _east) = b.bounds
    x, y = tile_of(north - 0.001, west + 0.001, 11)
    r = client.get(f"/tiles/11/{x}/{y}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).convert("RGBA").getchannel("A").getbbox() is None


def test_the_local_archive_is_the_default_basemap(archive: Path, tmp_path: Path) -> None:
    local = basemap(settings_with(archive))
    assert local is not None and local.local and local.url == LOCAL_URL
    assert (local.min_native_zoom, local.max_native_zoom) == ZOOMS
    (layer,) = tile_layers(settings_with(archive))
    assert layer.url == LOCAL_URL and layer.maxNativeZoom == ZOOMS[1] and len(layer.bounds) == 2
    # no archive: no basemap (the map's own layers on its dark background)
    assert basemap(settings_with(tmp_path / "missing.mbtiles")) is None
    assert tile_layers(settings_with(tmp_path / "missing.mbtiles")) == []
    # a file that is not an archive (a half-copied one, anything else): no basemap either
    junk = tmp_path / "junk.mbtiles"
    junk.write_bytes(b"not sqlite at all" * 100)
    assert basemap(settings_with(junk)) is None
    with TestClient(create_app(settings_with(junk)).server) as c:
        assert c.get("/tiles/12/3300/1660.png").status_code == 404


def test_a_configured_tile_service_wins(archive: Path) -> None:
    url = "http://gis.city.internal/tiles/{z}/{x}/{y}.png"
    s = settings_with(archive, dashboard_tile_url=url, dashboard_tile_attribution="市测绘院")
    b = basemap(s)
    assert b is not None and not b.local and b.url == url
    (layer,) = tile_layers(s)
    assert layer.url == url and layer.attribution == "市测绘院"
    # the local tiles need no exception in the page's policy; a tile service does
    assert "img-src 'self' data: blob:;" in content_security_policy(settings_with(archive), []) + ";"
    assert "http://gis.city.internal" in content_security_policy(s, [])


def _find(component: Any, cls: str) -> list[Any]:
    found = [component] if type(component).__name__ == cls else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found += _find(child, cls)
    return found


def test_the_map_draws_on_the_basemap(archive: Path, tmp_path: Path) -> None:
    with_tiles = map_panel(settings_with(archive), "zh_CN", wall=False, urls={"places": "/geo/places.json"})
    assert "no-basemap" not in with_tiles.className  # type: ignore[attr-defined]
    (layer,) = _find(with_tiles, "TileLayer")
    assert layer.url == LOCAL_URL
    overlays = {o.children.id: o for o in _find(with_tiles, "Overlay")}
    assert overlays[ids.LAYER_RIVER].checked is False  # the tiles draw the river
    assert overlays[ids.LAYER_DISTRICTS].children.hideout == {"basemap": True}
    assert overlays[ids.LAYER_PLACES].checked is True
    assert overlays[ids.LAYER_PLACES].children.url == "/geo/places.json"
    bare = map_panel(settings_with(tmp_path / "none.mbtiles"), "zh_CN", wall=False)
    assert "no-basemap" in bare.className and _find(bare, "TileLayer") == []  # type: ignore[attr-defined]


def test_positions_are_shifted_only_for_a_gcj02_tile_service(archive: Path) -> None:
    service = "http://amap-mirror.internal/{z}/{x}/{y}.png"
    assert (
        map_datum(settings_with(archive, dashboard_tile_url=service, dashboard_tile_datum="gcj02")) == "gcj02"
    )
    # the demo's own tiles are WGS-84 like the data: a stray DASHBOARD_TILE_DATUM shifts nothing
    local = settings_with(archive, dashboard_tile_datum="gcj02")
    assert map_datum(local) == "wgs84"
    console = Console.create(local)
    assert console.registries.datum == "wgs84" and console.browser_config("desk")["datum"] == "wgs84"


class _OneDistrictDb:
    """The registry tables with 樊城 only: enough for the static layers."""

    async def fetch(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        if "FROM district" in query:
            d = FANCHENG
            return [(d.adcode, d.name, d.center[0], d.center[1], json.dumps(mapping(d.geometry)))]
        return []


FANCHENG = next(d for d in load_districts() if d.short == "樊城")


def test_the_street_names_layer_says_what_the_addresses_say(archive: Path) -> None:
    registries = Registries(_OneDistrictDb(), "wgs84")  # type: ignore[arg-type]
    body = json.loads(asyncio.run(registries.encoded("street_names")))
    served = [
        (f["properties"]["n"], f["properties"]["a"], f["properties"]["s"], *f["geometry"]["coordinates"])
        for f in body["features"]
    ]
    expected = [
        (lb.name, lb.along, int(lb.sparse), round(lb.lon, 5), round(lb.lat, 5))
        for d in load_districts()
        for lb in road_labels(d, street_lattice(d))
    ]
    assert served == expected  # every district's roads, in the map's datum (WGS-84 here)
    for name, along, _, lon, lat in served:
        district = next(d for d in load_districts() if d.geometry.covers(shapely.Point(lon, lat)))
        assert name == crossing_at(lat, lon, district)[0 if along == "ew" else 1]
    # served like the other static layers, signed, and drawn on the map from zoom 14
    assert "street_names" in LAYERS
    with_tiles = map_panel(
        settings_with(archive), "zh_CN", wall=False, urls={"street_names": "/geo/street_names.json"}
    )
    overlays = {o.children.id: o for o in _find(with_tiles, "Overlay")}
    assert overlays[ids.LAYER_STREET_NAMES].checked is True
    assert overlays[ids.LAYER_STREET_NAMES].children.url == "/geo/street_names.json"
