"""预警 in Chromium against the whole stack: an operator drafts a warning with an area
drawn as polygon points around a team's base and sees what is inside, the commander
approves it on the desk, the wall shows the banner in the level's colour, the team's
phone shows the warning; the map draws the area. Screenshots at 1920×1080 and 390×844."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


def choose_event_and_level(page: Any, event: str, level: str) -> None:
    """Pick the event type by typing and the level by its radio, and see both taken: the
    types arrive from the command service after the panel is drawn, and a type typed before
    they are there matches nothing (the open menu then swallows the next click)."""
    for _attempt in range(20):
        page.click("#warning-event")
        page.keyboard.type(event)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        radio = page.locator(f'#warning-level input[value="{level}"]')
        radio.click()
        if event in page.inner_text("#warning-event") and radio.is_checked():
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"the event type {event} and the level {level} were not taken")


def _open_panel(page: Any) -> None:
    page.wait_for_selector("#warning-panel", timeout=30_000)
    page.click("#warning-panel summary")
    page.wait_for_selector("#warning-list", timeout=10_000)


def test_draft_approve_and_the_wall_and_the_field_page_receive_it(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack = console_stack
    team = stack.city.teams[0]
    lat, lon = team.base_lat, team.base_lon
    headline = "浏览器测试：暴雨橙色预警"
    points = "\n".join(
        f"{a:.5f}, {b:.5f}"
        for a, b in (
            (lat - 0.004, lon - 0.004),
            (lat - 0.004, lon + 0.004),
            (lat + 0.004, lon + 0.004),
            (lat + 0.004, lon - 0.004),
        )
    )

    # The operator drafts: event type, level, headline, the area as points; counts first.
    page = desk.page
    login(page, stack, "operator1")
    _open_panel(page)
    choose_event_and_level(page, "气象灾害", "orange")
    page.fill("#warning-headline", headline)
    page.fill("#warning-instruction", "停止户外作业，转移低洼地带人员。")
    page.fill("#warning-polygon", points)
    page.click("#warning-count")
    page.wait_for_selector('#warning-inside:has-text("队伍")', timeout=20_000)
    assert "队伍 0" not in page.inner_text("#warning-inside")  # the team's base is inside
    page.click("#warning-draft")
    page.wait_for_selector('#warning-feedback:has-text("已起草")', timeout=20_000)
    page.wait_for_selector(f'.warning-item[data-state="draft"]:has-text("{headline}")', timeout=20_000)
    assert page.locator(".warning-item button:has-text('批准发布')").count() == 0  # not the operator's
    shot(page, artifacts, "warning-desk-draft")

    # The commander approves on the desk: issued; the banner appears.
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    commander = Watched(ctx.new_page())
    login(commander.page, stack, "commander1")
    _open_panel(commander.page)
    item = commander.page.locator(f'.warning-item[data-state="draft"]:has-text("{headline}")')
    item.wait_for(timeout=20_000)
    item.locator("button:has-text('批准发布')").click()
    commander.page.wait_for_selector('#warning-feedback:has-text("已发布")', timeout=20_000)
    commander.page.wait_for_selector(f'#warning-banner.level-orange:has-text("{headline}")', timeout=20_000)
    # the area is drawn (on the canvas), in the level's colour
    commander.page.wait_for_function(
        "() => Object.values((window.wuwang.map || {}).warningAreas || {}).includes('orange')", timeout=20_000
    )
    shot(commander.page, artifacts, "warning-desk-issued")

    # The wall: the banner in the level's colour, readable across the room.
    wall = Watched(ctx.new_page())
    login(wall.page, stack, "commander1", "/wall")
    wall.page.wait_for_selector(f'#warning-banner.level-orange:has-text("{headline}")', timeout=30_000)
    colour = wall.page.eval_on_selector("#warning-banner", "e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(243, 152, 0)", colour  # 橙 #f39800
    shot(wall.page, artifacts, "warning-wall-banner")
    ctx.close()

    # The team's phone shows it, in its colour.
    phone = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    field = Watched(phone.new_page())
    login(field.page, stack, team.id)
    field.page.wait_for_selector(
        f'#field-warnings .field-warning.level-orange:has-text("{headline}")', timeout=30_000
    )
    assert "转移低洼地带人员" in field.page.inner_text("#field-warnings")
    card = "#field-warnings .field-warning"
    assert field.page.eval_on_selector(card, "e => getComputedStyle(e).backgroundColor") == "rgb(243, 152, 0)"
    shot(field.page, artifacts, "warning-field-phone")
    phone.close()
    # lifted again: the session's stack is shared, the next tests' wall starts without a banner
    cmd = stack.login("commander1")
    for w in stack.api("GET", "/warnings", cmd):
        stack.api("POST", f"/warnings/{w['identifier']}/cancel", cmd, {"reason": "测试结束"})
    assert stack.api("GET", "/warnings", cmd) == []
    for watched in (desk, commander, wall, field):
        assert not [e for e in watched.errors if "warning" in e.lower()], watched.errors
