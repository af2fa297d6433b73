"""A field team's report lands on its order's incident, in Chromium against the whole
stack (MQTT → ingest → command → /ws): sent 18 km from the scene and of another
category, it joins the incident the team was sent to; the team's page lists the
command centre's note, level raise and plan activation on its incident as they are
made; the desk shows the report's photo as a thumbnail, enlarged on a click."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.feeds import wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot, tiny_png


def test_a_field_report_lands_on_its_orders_incident_with_its_photo(
    own_console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    # A stack of its own: on the browser tests' shared one an earlier field test's
    # 'new event' choice is still ticked for the same team.
    stack = own_console_stack
    token = stack.login("operator1")
    team_id = stack.team_ids[-1]
    inc = stack.api(
        "POST",
        "/incidents",
        token,
        {"type": "fire", "level": 4, "title": "樊城区长虹路 仓库起火", "lat": 32.0431, "lon": 112.1448},
    )
    iid = inc["id"]
    sent = stack.api("POST", f"/incidents/{iid}/dispatch", token, {"team_id": team_id, "expected_version": 1})
    assert sent["order"]["message"]["address"], sent["order"]  # the order says where, in words
    before = {i["id"] for i in stack.api("GET", "/incidents?limit=1000", token)}

    # The team's phone, 18 km away from the scene (a report of the way, not a new event).
    phone = chromium.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": 32.20, "longitude": 112.28},
        permissions=["geolocation"],
    )
    field = Watched(phone.new_page())
    login(field.page, stack, team_id)
    field.page.wait_for_selector(".field-page .connection.ok", timeout=30_000)
    field.page.wait_for_selector(f'#field-order:has-text("{iid}")', timeout=30_000)

    # The command centre writes a note: the team's page lists it without a reload.
    version = stack.api("GET", f"/incidents/{iid}", token)["incident"]["version"]
    stack.api(
        "POST",
        f"/incidents/{iid}/notes",
        token,
        {"expected_version": version, "text": "注意：仓库内有液化气罐"},
    )
    field.page.wait_for_selector('#field-updates:has-text("仓库内有液化气罐")', timeout=20_000)
    assert "指挥中心更新" in field.page.inner_text("#field-updates")
    # The commander raises the level and the desk activates the plan: both reach the page.
    version = stack.api("GET", f"/incidents/{iid}", token)["incident"]["version"]
    stack.api(
        "POST",
        f"/incidents/{iid}/level",
        stack.login("commander1"),
        {"expected_version": version, "level": 3, "reason": "仓库内有液化气罐"},
    )
    field.page.wait_for_selector('#field-updates:has-text("响应级别调整为 III 级")', timeout=20_000)
    version = stack.api("GET", f"/incidents/{iid}", token)["incident"]["version"]
    # no plan covers a plain fire: the desk takes the high-rise one, with its reason
    plan = {"plan_id": "high_rise_fire", "expected_version": version, "force": True, "reason": "仓库参照"}
    stack.api("POST", f"/incidents/{iid}/plan", token, plan)
    # the crew reads WHICH plan, by its title, not only its level
    named = "启动应急预案：高层建筑火灾应急预案，III 级响应"
    field.page.wait_for_selector(f'#field-updates:has-text("{named}")', timeout=20_000)
    field.page.locator("#field-updates").scroll_into_view_if_needed()
    shot(field.page, artifacts, "field-page-updates")

    field.page.fill("#field-description", "途中发现道路积水，已绕行")
    field.page.select_option("#field-category", "flood")
    field.page.set_input_files(
        '.photo-input input[type="file"]',
        files=[{"name": "scene.png", "mimeType": "image/png", "buffer": tiny_png()}],
    )
    field.page.click('[data-action="report"]')
    field.page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=30_000)

    def photo_source() -> dict[str, Any] | None:
        incident = stack.api("GET", f"/incidents/{iid}", token)["incident"]
        return next((s for s in incident["sources"] if s.get("photo_url")), None)

    wait_for(lambda: photo_source() is not None, 40, 0.5, "the report linked to the order's incident")
    source = photo_source()
    assert source is not None and source["kind"] == "report" and source["category"] == "flood"
    after = {i["id"] for i in stack.api("GET", "/incidents?limit=1000", token)}
    assert after == before, after - before  # no new incident for the team's report

    # The team says it found something else: that report opens its own incident.
    field.page.check("#field-new-event input")
    field.page.fill("#field-description", "途经菜市场发现一处店铺冒烟")
    field.page.select_option("#field-category", "fire")
    field.page.click('[data-action="report"]')
    field.page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=30_000)
    assert not field.page.is_checked("#field-new-event input")  # one report at a time

    def new_incidents() -> set[str]:
        return {i["id"] for i in stack.api("GET", "/incidents?limit=1000", token)} - before

    wait_for(lambda: len(new_incidents()) == 1, 40, 0.5, "the new event's own incident")
    [other] = new_incidents()
    assert stack.api("GET", f"/incidents/{other}", token)["incident"]["sources"][0]["kind"] == "report"

    # The desk: the incident's detail shows the photo; a click enlarges it.
    page = desk.page
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    row = f'.qrow[data-incident="{iid}"]'
    page.wait_for_selector(row, timeout=20_000)
    page.click(row)
    page.wait_for_selector(f'.detail-head:has-text("{iid}")', timeout=20_000)
    page.click('.detail-tab:has-text("警情来源")')  # the scene photos are with the sources
    thumb = page.locator('.report-photos img[src^="blob:"]')
    thumb.wait_for(timeout=20_000)
    thumb.scroll_into_view_if_needed()
    shot(page, artifacts, "desk-report-photo")
    page.click(".report-photos .photo-thumb")
    page.wait_for_selector('#photo-viewer img[src^="blob:"]', timeout=10_000)
    size = page.evaluate(
        "() => { const i = document.querySelector('#photo-viewer img'); return i.naturalWidth; }"
    )
    assert size == 8  # the photo itself (8×8 PNG), drawn large
    shot(page, artifacts, "desk-report-photo-enlarged")
    page.keyboard.press("Escape")
    page.wait_for_selector("#photo-viewer", state="detached", timeout=5_000)
    assert desk.errors == [], desk.errors
    assert desk.foreign() == [] and field.foreign() == [], (desk.foreign(), field.foreign())
    phone.close()
