"""The field page's distance and bearing to the scene (assets/00-wuwang-core.js) are the
server's (wuwang.geo.haversine_m, bearing_deg), and the bearing is said as one of the
8 compass points in the page's language."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from dashboard.i18n import catalogue
from wuwang.geo import bearing_deg, haversine_m, offset_by_metres

pytestmark = pytest.mark.browser

CORE = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "00-wuwang-core.js"


@pytest.fixture
def core(chromium: Any) -> Any:
    page = chromium.new_page()
    page.add_script_tag(content=CORE.read_text(encoding="utf-8"))
    yield page
    page.close()


def test_distance_and_bearing_match_the_server(core: Any) -> None:
    rng = random.Random(11)
    pairs = [
        (31.5 + rng.random(), 111.5 + rng.random(), 31.5 + rng.random(), 111.5 + rng.random())
        for _ in range(200)
    ]
    got = core.evaluate(
        "ps => ps.map(p => [window.wuwang.distanceM(...p), window.wuwang.bearingDeg(...p)])", pairs
    )
    for (lat1, lon1, lat2, lon2), (metres, degrees) in zip(pairs, got, strict=True):
        assert abs(metres - haversine_m(lat1, lon1, lat2, lon2)) < 1e-6
        expected = bearing_deg(lat1, lon1, lat2, lon2)
        assert abs((degrees - expected + 180) % 360 - 180) < 1e-9


@pytest.mark.parametrize(
    ("north_m", "east_m", "zh", "en"),
    [
        (1500, 0, "北", "north"),
        (1000, 1000, "东北", "north-east"),
        (0, 800, "东", "east"),
        (-900, 900, "东南", "south-east"),
        (-1200, 100, "南", "south"),
        (-700, -700, "西南", "south-west"),
        (50, -2000, "西", "west"),
        (600, -600, "西北", "north-west"),
    ],
)
def test_the_bearing_is_one_of_eight_compass_words(
    core: Any, north_m: float, east_m: float, zh: str, en: str
) -> None:
    here = (32.0431, 112.1448)
    scene = offset_by_metres(*here, north_m, east_m)
    words = {}
    for lang in ("zh_CN", "en"):
        core.evaluate("c => { window.wuwang.catalogue = c; }", catalogue(lang))
        words[lang] = core.evaluate(
            "a => window.wuwang.t(window.wuwang.compassKey(window.wuwang.bearingDeg(...a)))", [*here, *scene]
        )
    assert words == {"zh_CN": zh, "en": en}


def test_distances_and_coordinates_read_in_the_pages_language(core: Any) -> None:
    core.evaluate("c => { window.wuwang.catalogue = c; }", catalogue("zh_CN"))
    said = core.evaluate(
        "() => [wuwang.distanceText(847), wuwang.distanceText(2630), wuwang.distanceText(18400),"
        " wuwang.coordsText(32.04312, 112.14481)]"
    )
    assert said == ["850 米", "2.6 公里", "18 公里", "北纬 32.0431°，东经 112.1448°"]
    core.evaluate("c => { window.wuwang.catalogue = c; }", catalogue("en"))
    said = core.evaluate("() => [wuwang.distanceText(2630), wuwang.coordsText(-33.9, -70.66)]")
    assert said == ["2.6 km", "33.9000° S, 70.6600° W"]
