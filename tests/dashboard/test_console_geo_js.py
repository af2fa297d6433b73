"""The browser's WGS-84 → GCJ-02 (assets/00-wuwang-core.js) is the server's
(wuwang.geo, eviltransform) to the millimetre, so live positions land where the
server-drawn layers do on a Chinese basemap."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from wuwang.geo import wgs84_to_gcj02

pytestmark = pytest.mark.browser

CORE = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "00-wuwang-core.js"


def test_browser_and_server_shift_positions_alike(chromium: Any) -> None:
    rng = random.Random(7)
    points = [(31.2 + rng.random() * 1.4, 110.9 + rng.random() * 2.3) for _ in range(200)]
    points += [(40.0, 116.4), (22.3, 114.2), (48.85, 2.35)]  # Beijing, Hong Kong, Paris (outside: unchanged)
    page = chromium.new_page()
    page.add_script_tag(content=CORE.read_text(encoding="utf-8"))
    shifted = page.evaluate("pts => pts.map(p => window.wuwang.wgs2gcj(p[0], p[1]))", points)
    for (lat, lon), (jlat, jlon) in zip(points, shifted, strict=True):
        plat, plon = wgs84_to_gcj02(lat, lon)
        assert abs(jlat - plat) < 1e-9 and abs(jlon - plon) < 1e-9
    assert page.evaluate("() => window.wuwang.position(32.0, 112.0, 'wgs84')") == [112.0, 32.0]
    page.close()
