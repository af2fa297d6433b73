"""The field page on a phone: a team counts the people in a shelter near it
(应急避难场所). The count goes through the page's outbox to the command service, the
shelter is full at capacity, and the desk's shelter layer shows the new count live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testkit.feeds import wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, msg_suffix, shot
from tests.dashboard.test_field_browser import PHONE, free_team
from wuwang.geo import offset_by_metres

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

# Keeps what the server sends for the shelter layer (callbacks/map.py), as Dash fetched it.
RECORD_SHELTER_LAYER = """
window.__shelterLayers = [];
const dashFetch = window.fetch;
window.fetch = function (input, init) {
  return dashFetch.call(this, input, init).then(function (res) {
    const url = typeof input === "string" ? input : (input && input.url) || "";
    if (url.includes("_dash-update-component")) {
      res.clone().text().then(function (t) {
        if (t.includes("layer-shelters")) window.__shelterLayers.push(t);
      });
    }
    return res;
  });
};
"""


def test_a_team_reports_a_shelters_occupancy_and_the_desk_sees_it(
    console_stack: Stack, chromium: Any, artifacts: Path
) -> None:
    stack = console_stack
    operator = stack.login("operator1")
    team_id = free_team(stack, operator)
    team = stack.api("GET", f"/teams/{team_id}", operator)
    where = team.get("position") or team["base"]
    lat, lon = offset_by_metres(float(where["lat"]), float(where["lon"]), 400, 300)
    shelter_id = f"SH-T{msg_suffix()}"
    stack.api(
        "PUT",
        f"/shelters/{shelter_id}",
        operator,
        {"name": "长虹公园应急避难场所", "kind": "park", "lat": lat, "lon": lon, "capacity": 300,
         "facilities": ["water", "toilets"], "status": "open"},
    )

    ctx = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    phone = Watched(ctx.new_page())
    page = phone.page
    login(page, stack, team_id)
    page.wait_for_selector(".field-page .connection.ok", timeout=30_000)
    page.wait_for_selector(f'#field-shelter option[value="{shelter_id}"]', state="attached", timeout=20_000)
    # with a shelter in reach the form is shown and the "none in reach" line is not
    assert page.is_visible("#field-shelter-form")
    assert not page.is_visible("#field-shelter-none")
    page.select_option("#field-shelter", shelter_id)
    page.wait_for_selector('#field-shelter-now:has-text("安置 0 / 300 人")', timeout=10_000)

    # a count that is no number is refused on the phone, in the team's words
    page.fill("#field-shelter-count", "十")
    page.click('[data-action="shelter"]')
    assert page.inner_text("#field-shelter-msg") == "请填写人数（0 或以上的整数）"

    page.fill("#field-shelter-count", "300")
    page.click('[data-action="shelter"]')
    page.wait_for_selector('#field-shelter-now:has-text("已满")', timeout=20_000)
    page.wait_for_selector('#field-shelter-msg:has-text("人数已上报")', timeout=10_000)
    assert "安置 300 / 300 人，空余 0" in page.inner_text("#field-shelter-now")
    page.locator("#field-shelters").scroll_into_view_if_needed()
    shot(page, artifacts, "field-shelter-count")
    wait_for(
        lambda: next(s for s in stack.api("GET", "/shelters", operator) if s["id"] == shelter_id)["status"]
        == "full",
        20,
        0.2,
        "the count applied",
    )

    # the desk: the shelter layer redraws on the live change, its popup says who counted
    desk_ctx = chromium.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    desk_ctx.add_init_script(RECORD_SHELTER_LAYER)
    desk = Watched(desk_ctx.new_page())

    def drawn() -> str:
        """The newest shelter layer the server sent with this shelter in it, as text."""
        raw = desk.page.evaluate(
            "(id) => window.__shelterLayers.filter(t => t.includes(id)).pop() || null", shelter_id
        )
        return json.dumps(json.loads(raw), ensure_ascii=False) if raw else ""

    login(desk.page, stack, "operator1")
    desk.page.wait_for_selector(".connection.ok", timeout=30_000)
    wait_for(lambda: "安置 300 / 300 人" in drawn(), 30, 0.2, "the desk's first shelter layer")
    stack.api("POST", f"/shelters/{shelter_id}/occupancy", stack.login(team_id), {"occupancy": 120})
    wait_for(lambda: "安置 120 / 300 人" in drawn(), 30, 0.2, "the desk's shelter layer with the new count")
    assert f"{team_id} 上报于" in drawn()
    shot(desk.page, artifacts, "desk-shelter-live")
