"""信息报送 in a real browser (Chromium, the shared console stack): a level II fire under the
Hubei rule — the duty officer sees the report clocks counting down on the incident's
reporting tab, drafts the first report, cannot leave the casualties out (the leader's
approval is refused, naming them), fills them in; the leader on duty approves (签发) and
sends it; the receipt (回执) is taken; both clocks are met within their minutes; the
wall lists the running clocks. Screenshots: incident-reporting-draft.png,
incident-reporting-acknowledged.png, wall-report-clocks.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashboard.layout.reporting import WALL_ROWS
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot
from tests.dashboard.test_detail_browser import act, desk_page, open_incident

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

#: North of 老河口: no other browser test opens incidents here.
PLACE = (32.420, 111.680)


def reporting_tab(page: Any) -> None:
    page.click('.detail-tab:has-text("信息报送")')
    page.wait_for_selector("#report-clocks", timeout=20_000)


def test_a_level_ii_first_report_drafted_approved_and_acknowledged_within_its_clock(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    op = stack.login("operator1")
    inc = stack.api(
        "POST",
        "/incidents",
        op,
        {"type": "fire", "level": 2, "title": "老河口市商场火灾", "lat": PLACE[0], "lon": PLACE[1]},
    )
    iid = inc["id"]
    leader_ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        desk_page(page, stack, "operator1")
        open_incident(page, iid)
        reporting_tab(page)
        clocks = page.inner_text("#report-clocks")
        assert "电话报告" in clocks and "书面报告" in clocks and "剩余" in clocks
        # 起草首报: drafted from the record
        page.click('button:has-text("起草首报")')
        page.wait_for_selector('#upward-report-1:has-text("草稿")', timeout=20_000)
        shot(page, artifacts, "incident-reporting-draft")
        # the leader on duty (带班领导), at a desk of his own: the casualties are not stated
        # yet, so his approval (签发) is refused, naming what is missing
        leader = leader_ctx.new_page()
        login(leader, stack, "commander1")
        leader.wait_for_selector(".connection.ok", timeout=30_000)
        open_incident(leader, iid)
        reporting_tab(leader)
        leader.click('#upward-report-1 button:has-text("签发")')
        leader.wait_for_selector('#feedback:has-text("不能签发")', timeout=20_000)
        refused = leader.inner_text("#feedback")
        assert "伤亡情况" in refused and "已采取的措施" in refused, refused

        # the duty officer states them: a second version
        page.fill("#upward-report-1 input >> nth=0", "0")
        page.fill("#upward-report-1 input >> nth=1", "0")
        page.fill("#upward-report-1 input >> nth=2", "2")
        page.fill("#upward-report-1 textarea >> nth=0", "启动Ⅱ级应急响应，疏散商场人员")
        page.fill("#upward-report-1 textarea >> nth=1", "老河口市消防救援大队")
        page.click('#upward-report-1 button:has-text("保存修改")')
        page.wait_for_selector('#upward-report-1:has-text("2 个版本")', timeout=20_000)

        # now the leader approves and sends
        leader.click('#upward-report-1 button:has-text("签发")')
        leader.wait_for_selector('#upward-report-1:has-text("已签发")', timeout=20_000)
        leader.click('#upward-report-1 button:has-text("报送")')
        leader.wait_for_selector('#upward-report-1:has-text("已报送")', timeout=20_000)

        # the upper level's receipt (here taken by phone), then the clocks are met
        stack.api("POST", f"/incidents/{iid}/reports/1/receipt", op, {"signed_by": "省厅值班员"})
        page.reload()
        page.wait_for_selector(".connection.ok", timeout=30_000)
        open_incident(page, iid)
        reporting_tab(page)
        page.wait_for_selector('#upward-report-1:has-text("已回执")', timeout=20_000)
        clocks = page.inner_text("#report-clocks")
        assert clocks.count("已按时报送") == 2, clocks
        shot(page, artifacts, "incident-reporting-acknowledged")
        assert desk.errors == [], desk.errors

        # the wall lists the running clocks (this incident's next follow-up among them)
        wall = leader_ctx.new_page()
        login(wall, stack, "commander1", "/wall")
        wall.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
        # the wall keeps the most urgent WALL_ROWS of the board; other tests on this shared
        # stack may hold clocks due sooner, so the board says where this incident's falls
        board = stack.api("GET", "/reports/clocks", op)
        place = next(n for n, c in enumerate(board) if c["incident_id"] == iid)
        if place < WALL_ROWS:
            wall.wait_for_selector(
                '.report-clock-strip .report-clock:has-text("老河口市商场火灾")', timeout=45_000
            )
        else:
            wall.wait_for_selector(".report-clock-strip li.more", timeout=45_000)
            assert str(len(board) - WALL_ROWS) in wall.inner_text(".report-clock-strip li.more")
        assert wall.locator(".report-clock-strip .report-clock").count() == min(len(board), WALL_ROWS)
        shot(wall, artifacts, "wall-report-clocks")
    finally:
        leader_ctx.close()
        act(stack, op, iid, "cancel", {"reason": "测试结束"})
