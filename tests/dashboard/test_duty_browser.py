"""值班值守 in Chromium against the whole stack: the day shift's duty officer writes a
free entry in the duty log and draws up the handover, signs it for the outgoing shift;
the night shift's duty officer signs it for the incoming one and it is sealed; the wall
shows who is on duty. Screenshots at 1920×1080 and 3840×2160."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

ENTRY = "浏览器测试：接市应急管理局电话，要求今晚加强值守"


def _roster(stack: Stack) -> None:
    """The day shift on duty now (王强 leads, 张伟 on duty), the night shift after it (李娜)."""
    token = stack.login("commander1")
    start = datetime.now(UTC) - timedelta(hours=1)
    for offset, officer in ((0, "operator1"), (12, "operator2")):
        begins = start + timedelta(hours=offset)
        body = {
            "starts_at": begins.isoformat(),
            "ends_at": (begins + timedelta(hours=12)).isoformat(),
            "leader": "commander1",
            "officers": [officer],
        }
        with contextlib.suppress(urllib.error.HTTPError):  # set already by an earlier run: 409
            stack.api("POST", "/duty/shifts", token, body)


def _open_duty_tab(page: Any) -> None:
    page.wait_for_selector("#side-tabs", timeout=30_000)
    page.click("#side-tabs label:has(input[value='duty'])")
    page.wait_for_selector('#duty-now:has-text("王强")', timeout=20_000)


def test_a_free_log_entry_and_a_handover_signed_by_both_shifts(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack = console_stack
    _roster(stack)

    # The day shift's duty officer: a free entry, then the handover, signed as outgoing.
    page = desk.page
    login(page, stack, "operator1")
    _open_duty_tab(page)
    assert "张伟" in page.inner_text("#duty-now") and "李娜" in page.inner_text("#duty-now")
    page.fill("#duty-entry-text", ENTRY)
    page.click("#duty-entry-save")
    page.wait_for_selector(f'#duty-log li[data-kind="free"]:has-text("{ENTRY}")', timeout=20_000)
    assert page.input_value("#duty-entry-text") == ""
    # who wrote it: the person by name and role, not the account
    by = page.locator('#duty-log li[data-kind="free"] .duty-actor').first.inner_text()
    assert by == "张伟（值班员）", by
    page.fill("#duty-handover-items", "跟进人民路积水点排水\n核实樊城区停电恢复情况")
    page.fill("#duty-handover-notes", "夜间有雨，注意内涝")
    page.click("#duty-handover-draw")
    card = page.locator(".duty-handover-card")
    card.wait_for(timeout=20_000)
    assert "跟进人民路积水点排水" in card.inner_text()
    card.locator("button:has-text('签字')").click()
    page.wait_for_selector('.duty-signature[data-side="outgoing"][data-signed="yes"]', timeout=20_000)
    assert page.locator('.duty-signature[data-side="incoming"][data-signed="no"]').count() == 1
    shot(page, artifacts, "duty-desk-outgoing-signed")

    # The night shift's duty officer signs for the incoming shift: handed over.
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    night = Watched(ctx.new_page())
    login(night.page, stack, "operator2")
    _open_duty_tab(night.page)
    night.page.locator(".duty-handover-card button:has-text('签字')").click()
    night.page.wait_for_selector('.duty-signature[data-side="incoming"][data-signed="yes"]', timeout=20_000)
    night.page.wait_for_selector('.duty-handover-card:has-text("交接完成")', timeout=20_000)
    assert night.page.locator(".duty-handover-card button:has-text('签字')").count() == 0
    night.page.wait_for_selector('#duty-log li[data-kind="handover"]', timeout=20_000)
    shot(night.page, artifacts, "duty-desk-handed-over")
    ctx.close()

    # The wall shows who is on duty, at 1080p and 4K.
    for width, height, name in ((1920, 1080, "duty-wall-1080p"), (3840, 2160, "duty-wall-4k")):
        wall_ctx = chromium.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        wall = Watched(wall_ctx.new_page())
        login(wall.page, stack, "commander1", "/wall")
        wall.page.wait_for_selector('#duty-wall:has-text("王强")', timeout=30_000)
        assert "张伟" in wall.page.inner_text("#duty-wall")
        shot(wall.page, artifacts, name)
        wall_ctx.close()
        assert not [e for e in wall.errors if "duty" in e.lower()], wall.errors

    # The desk at 4K too.
    big = chromium.new_context(viewport={"width": 3840, "height": 2160}, locale="zh-CN")
    desk4k = Watched(big.new_page())
    login(desk4k.page, stack, "commander1")
    _open_duty_tab(desk4k.page)
    desk4k.page.wait_for_selector('.duty-handover-card:has-text("交接完成")', timeout=20_000)
    shot(desk4k.page, artifacts, "duty-desk-4k")
    big.close()
    # The shift's log through the console's /report/duty (the user's token, server side).
    token = stack.login("operator1")
    shift_id = stack.api("GET", "/duty/now", token)["current"]["shift_id"]
    req = urllib.request.Request(
        f"{stack.dashboard_url}/report/duty/{shift_id}.csv?lang=zh",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as answer:
        text = answer.read().decode("utf-8-sig")
    assert ENTRY in text and "交接班" in text
    for watched in (desk, night, desk4k):
        assert not [e for e in watched.errors if "duty" in e.lower()], watched.errors
