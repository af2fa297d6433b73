"""预警 drawn on the map, in Chromium against the whole stack: a meteorological CAP
warning imported over the API shows on the inbound layer (dashed, its popup names the
sender); the operator clicks a district on the map into the area and out again, draws
the warning's area with the map's polygon tool (the tool speaks Chinese, nothing is
fetched from elsewhere), sees what is inside, drafts; the
commander approves; the area is on the desk's and the wall's map and the wall's banner
says it. Screenshots at 1920×1080 and 3840×2160."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from command.domain.cap import (
    Reference,
    SenderCode,
    ValuePair,
    WarningText,
    cap_from_warning,
    gb_identifier,
    to_cap_xml,
)
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot
from tests.dashboard.test_warnings_browser import choose_event_and_level

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

MET = SenderCode("420600", "416", "000", "00")  # 襄阳市气象台
HEADLINE = "浏览器测试：画出的大风橙色预警"
INBOUND = "襄阳市气象台发布大雾蓝色预警"


def _met_cap(
    at: datetime, msg_type: str, lat: float, lon: float, refs: list[Reference]
) -> tuple[bytes, Reference]:
    ident = gb_identifier(MET, at, 1 if msg_type == "Alert" else 2)
    box = [
        (lat - 0.006, lon - 0.006),
        (lat - 0.006, lon + 0.006),
        (lat + 0.006, lon + 0.006),
        (lat + 0.006, lon - 0.006),
    ]
    alert = cap_from_warning(
        identifier=ident,
        sender=str(MET),
        sent=at,
        level="蓝",
        event_type="11B17",
        texts=[WarningText("zh-CN", "大雾", INBOUND, "能见度将低于500米。", None, "襄城区", "襄阳市气象台")],
        onset=at,
        expires=at + timedelta(hours=6),
        msg_type=msg_type,  # type: ignore[arg-type]
        references=refs,
        polygons=[[*box, box[0]]],
        geocodes=[ValuePair("GB/T 2260", "420602")],
    )
    return to_cap_xml(alert), Reference(alert.sender, ident, at)


def _import(stack: Stack, token: str, xml: bytes) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{stack.command_url}/warnings/cap",
        method="POST",
        data=xml,
        headers={"Content-Type": "application/cap+xml", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def _page_point(page: Any, lat: float, lon: float) -> tuple[float, float]:
    """Where (lat, lon) is on the page, from the desk map's own projection."""
    x, y = page.evaluate(
        """([lat, lon]) => {
            const m = window.wuwang.shownMap('desk'), p = m.latLngToContainerPoint([lat, lon]);
            const box = m.getContainer().getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [lat, lon],
    )
    return float(x), float(y)


def test_draw_the_area_approve_and_the_map_and_wall_show_it_beside_an_agencys_cap(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack = console_stack
    team = stack.city.teams[0]
    lat, lon = team.base_lat, team.base_lon
    op_token = stack.login("operator1")
    sent = datetime.now(UTC).replace(microsecond=0)
    xml, ref = _met_cap(sent, "Alert", lat, lon + 0.03, [])
    inbound_id = _import(stack, op_token, xml)["warning"]["id"]

    # The operator: the agency's warning is on the map, dashed; its popup says who sent it.
    page = desk.page
    login(page, stack, "operator1")
    page.wait_for_selector("#warning-panel", timeout=30_000)
    page.wait_for_function(
        f"() => ((window.wuwang.map || {{}}).inboundAreas || {{}})['{inbound_id}'] === 'blue'", timeout=30_000
    )
    page.evaluate(
        f"() => window.wuwang.shownMap('desk').setView([{lat}, {lon + 0.015}], 14, {{animate: false}})"
    )
    page.wait_for_timeout(300)  # the canvas redrawn at the new view
    page.mouse.click(*_page_point(page, lat + 0.004, lon + 0.03))
    popup = page.wait_for_selector(".inbound-popup", timeout=10_000)
    text = popup.inner_text()
    assert INBOUND in text and "襄阳市气象台" in text and "失效" in text, text
    shot(page, artifacts, "warning-inbound-popup")
    page.keyboard.press("Escape")

    # The operator drafts: the texts in the panel, the area drawn on the map.
    page.click("#warning-panel summary")
    choose_event_and_level(page, "气象灾害", "orange")
    page.fill("#warning-headline", HEADLINE)
    page.fill("#warning-instruction", "加固临时搭建物，停止高空作业。")
    # A district clicked on the map joins the area, highlighted; clicked again it leaves.
    district_at = _page_point(page, lat - 0.006, lon + 0.012)
    page.mouse.click(*district_at)
    picked = "() => document.querySelector('#warning-districts').innerText.includes('(4206')"
    page.wait_for_function(picked, timeout=10_000)  # the dropdown shows it, name (adcode)
    shot(page, artifacts, "warning-district-picked")
    page.mouse.click(*district_at)
    page.wait_for_function(f"() => !({picked})()", timeout=10_000)
    page.keyboard.press("Escape")  # the agency's warning covers the district: its popup opened too
    tool = page.locator(".leaflet-draw-draw-polygon")
    assert tool.get_attribute("title") == "画预警范围（多边形）"  # the drawing tool speaks Chinese
    tool.click()
    for dlat, dlon in ((-0.004, -0.004), (-0.004, 0.004), (0.004, 0.004), (0.004, -0.004)):
        page.mouse.click(*_page_point(page, lat + dlat, lon + dlon))
        page.wait_for_timeout(150)  # leaflet-draw takes the next vertex 50 ms after the last
    page.click('.leaflet-draw-actions a[title="完成绘制"]')
    page.wait_for_function("() => document.querySelector('#warning-polygon').value.split('\\n').length === 4")
    points = [
        tuple(map(float, line.split(","))) for line in page.input_value("#warning-polygon").splitlines()
    ]
    assert all(abs(a - lat) < 0.0045 and abs(b - lon) < 0.0045 for a, b in points), points  # WGS-84, as drawn
    page.wait_for_selector('#warning-inside:has-text("队伍")', timeout=20_000)  # counted at once
    assert "队伍 0" not in page.inner_text("#warning-inside")  # the team's base is inside
    assert "(4206" not in page.inner_text("#warning-districts")  # drawing picks no district
    shot(page, artifacts, "warning-drawn")
    page.click("#warning-draft")
    page.wait_for_selector('#warning-feedback:has-text("已起草")', timeout=20_000)
    page.wait_for_selector(f'.warning-item[data-state="draft"]:has-text("{HEADLINE}")', timeout=20_000)

    # The commander approves; the desk's map draws the drawn area in orange.
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    commander = Watched(ctx.new_page())
    login(commander.page, stack, "commander1")
    commander.page.click("#warning-panel summary")
    item = commander.page.locator(f'.warning-item[data-state="draft"]:has-text("{HEADLINE}")')
    item.wait_for(timeout=20_000)
    item.locator("button:has-text('批准发布')").click()
    commander.page.wait_for_selector('#warning-feedback:has-text("已发布")', timeout=20_000)
    commander.page.wait_for_function(
        "() => Object.values((window.wuwang.map || {}).warningAreas || {}).includes('orange')", timeout=20_000
    )
    commander.page.evaluate(
        f"() => window.wuwang.shownMap('desk').setView([{lat}, {lon + 0.015}], 14, {{animate: false}})"
    )
    shot(commander.page, artifacts, "warning-drawn-issued")
    ctx.close()

    # The wall on a 4K panel: the banner in orange, both areas on its map.
    big = chromium.new_context(viewport={"width": 3840, "height": 2160}, locale="zh-CN")
    wall = Watched(big.new_page())
    login(wall.page, stack, "commander1", "/wall")
    wall.page.wait_for_selector(f'#warning-banner.level-orange:has-text("{HEADLINE}")', timeout=30_000)
    wall.page.wait_for_function(
        f"""() => {{
            const m = (window.wuwang.map || {{}});
            return Object.values(m.warningAreas || {{}}).includes('orange')
                && (m.inboundAreas || {{}})['{inbound_id}'] === 'blue';
        }}""",
        timeout=30_000,
    )
    assert wall.page.locator(".legend-warning.inbound").count() == 1
    wall.page.evaluate(
        f"() => window.wuwang.shownMap('wall').setView([{lat - 0.003}, {lon + 0.012}], 14, {{animate: 0}})"
    )
    wall.page.wait_for_timeout(500)  # the tiles and the canvas at the new view
    shot(wall.page, artifacts, "warning-drawn-wall-4k")
    big.close()

    # lifted again: the session's stack is shared
    cancel, _ = _met_cap(sent + timedelta(seconds=1), "Cancel", lat, lon + 0.03, [ref])
    assert _import(stack, op_token, cancel)["retired"] == [inbound_id]
    cmd = stack.login("commander1")
    for w in stack.api("GET", "/warnings", cmd):
        stack.api("POST", f"/warnings/{w['identifier']}/cancel", cmd, {"reason": "测试结束"})
    assert stack.api("GET", "/warnings", cmd) == []
    assert stack.api("GET", "/warnings/inbound", cmd) == []
    for watched in (desk, commander, wall):
        assert not watched.foreign(), watched.foreign()  # the drawing tool is served here, offline
        assert not [e for e in watched.errors if "warning" in e.lower() or "draw" in e.lower()], (
            watched.errors
        )
