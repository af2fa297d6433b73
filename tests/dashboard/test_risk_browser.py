"""Risk sources and shelters in a real browser (Chromium through Playwright, the shared
console stack): both layers on the desk's map with their own symbols, and an incident
near a major risk source whose detail says so and lists the open shelters with room.
Screenshots: desk-risk-layers.png, incident-detail-risk.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import shot
from tests.dashboard.test_detail_browser import act, desk_page, new_incident, open_incident

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

#: South-east of 宜城's seat: no other browser test calls or opens incidents here.
PLACE = (31.680, 112.300)


def test_the_layers_and_the_incident_detail_show_risk_and_shelters(
    console_stack: Stack, desk: Watched, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    token = stack.login("operator1")
    stack.api(
        "PUT",
        "/risk-sources/RS-BROWSER-1",
        token,
        {
            "name": "宜城南加气站",
            "kind": "gas_station",
            "lat": PLACE[0] + 0.003,
            "lon": PLACE[1],
            "level": "major",
            "responsible_unit": "宜城燃气公司",
            "contact": "0710-4200000",
            "inspection_interval_days": 7,
        },
    )
    stack.api(
        "PUT",
        "/shelters/SH-BROWSER-1",
        token,
        {
            "name": "宜城南广场应急避难场所",
            "kind": "square",
            "lat": PLACE[0] - 0.004,
            "lon": PLACE[1],
            "capacity": 3000,
            "status": "open",
        },
    )
    stack.api("POST", "/shelters/SH-BROWSER-1/occupancy", token, {"occupancy": 1000})
    desk_page(page, stack, "operator1")
    page.wait_for_selector(".leaflet-marker-icon.risk-source", state="attached", timeout=30_000)
    page.wait_for_selector(".leaflet-marker-icon.shelter-open", state="attached", timeout=30_000)
    # the layers control names both
    control = page.inner_text(".leaflet-control-layers", timeout=10_000)
    assert "风险源" in control and "应急避难场所" in control
    shot(page, artifacts, "desk-risk-layers")
    inc = new_incident(stack, token, "hazmat_leak", "宜城南加气站附近液化气泄漏", *PLACE)
    try:
        open_incident(page, inc["id"])
        panel = page.wait_for_selector("#detail-risk", timeout=20_000)
        assert panel is not None
        text = panel.inner_text()
        assert "附近有重大风险源：宜城南加气站" in text
        assert "建议响应级别提升至 II 级" in text
        assert "宜城南广场应急避难场所" in text and "空余 2000" in text
        shot(page, artifacts, "incident-detail-risk")
        assert desk.errors == [], desk.errors
    finally:
        act(stack, token, inc["id"], "cancel", {"reason": "测试结束"})
