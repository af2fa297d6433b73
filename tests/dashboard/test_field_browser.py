"""The field page on a phone (390×844, Chromium through Playwright) against a whole stack:
a team gets an order and navigates to it.

- the order card says where (the order's address, else the scene's coordinates), how far
  and in which of the 8 compass directions from the phone's position, and the map draws
  a line from the team to the scene;
- a new order vibrates and sounds once and stays in the header until acknowledged, also
  across a reload; a reload does not ring again;
- the map follows the team until panned by hand; "follow my position" resumes it;
- Leaflet's zoom control never floats over the sticky header;
- "saved, will send when online" and "everything has been sent" never show together;
  a report ticked "new event" says so to the dashboard.

The screenshot of the page with its order is docs/screenshots/field-page.png
(WUWANG_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testkit.feeds import wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import call_110, incident_of, login, msg_suffix, shot
from wuwang.geo import haversine_m, offset_by_metres

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

PHONE = {"width": 390, "height": 844}
SCENE = (32.0431, 112.1448)
# The phone 1.9 km south-west of the scene: the scene is to the north-east.
HERE = offset_by_metres(*SCENE, -1350, -1350)

# Counts what the page asks of the phone: vibrations and tones started.
RECORD_ALERTS = """
window.__alerts = { vibrate: [], tones: 0 };
navigator.vibrate = function (pattern) { window.__alerts.vibrate.push(pattern); return true; };
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function () {
  window.__alerts.tones += 1;
  return start.apply(this, arguments);
};
"""


def free_team(stack: Stack, token: str) -> str:
    """A team no other test of the session uses (the outbox test takes the last one)."""
    for team_id in reversed(stack.team_ids[:-1]):
        team = stack.api("GET", f"/teams/{team_id}", token)
        if team["status"] == "available" and team["on_duty"] and team["active_order"] is None:
            return team_id
    raise AssertionError("no available team")


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_a_team_navigates_to_its_new_order(console_stack: Stack, chromium: Any, artifacts: Path) -> None:
    stack = console_stack
    operator = stack.login("operator1")
    team_id = free_team(stack, operator)
    ctx = chromium.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": HERE[0], "longitude": HERE[1]},
        permissions=["geolocation"],
    )
    ctx.add_init_script(RECORD_ALERTS)
    phone = Watched(ctx.new_page())
    page = phone.page
    reports: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            reports.append(json.loads(r.post_data or "{}")) if r.url.endswith("/field/api/report") else None
        ),
    )
    login(page, stack, team_id)
    page.wait_for_selector(".field-page .connection.ok", timeout=30_000)
    assert page.is_hidden("#field-alert")

    # The dispatcher sends the team to a 110 call.
    address = f"樊城区长虹路{msg_suffix()}号"
    incident = incident_of(
        stack, operator, call_110(stack, category="traffic", lat=SCENE[0], lon=SCENE[1], address=address)
    )
    iid = incident["id"]
    stack.api(
        "POST",
        f"/incidents/{iid}/dispatch",
        operator,
        {"team_id": team_id, "expected_version": incident["version"]},
    )

    # The banner, one vibration and one tone.
    page.wait_for_selector("#field-alert:not([hidden])", timeout=30_000)
    assert "新派遣指令" in page.inner_text("#field-alert")
    page.wait_for_selector(f'#field-order:has-text("{iid}")', timeout=20_000)
    wait_for(lambda: page.evaluate("() => window.__alerts.tones") > 0, 10, 0.1, "the tone")
    alerts = page.evaluate("() => window.__alerts")
    assert len(alerts["vibrate"]) == 1 and alerts["tones"] == 2  # two notes, once
    assert page.is_enabled('.field-section [data-action="ack"]')  # the card's button too

    # Where, how far, which way: the order's address when it carries one, else coordinates.
    current = page.evaluate(
        "() => fetch('/field/api/current', {headers: {Authorization: 'Bearer ' +"
        " JSON.parse(sessionStorage.getItem('session')).token}}).then(r => r.json())"
    )
    card = page.locator("#field-order")
    where = card.locator(".order-where").inner_text()
    if current["order"].get("address"):
        assert where == f"地址：{current['order']['address']}"
    else:
        assert where == "位置：北纬 32.0431°，东经 112.1448°"
    km = haversine_m(*HERE, *SCENE) / 1000
    page.wait_for_selector(f'#field-order .order-away:has-text("{km:.1f} 公里")', timeout=20_000)
    assert card.locator(".order-away").inner_text() == f"现场在您东北方向 {km:.1f} 公里"

    # The line from the team to the scene, on the map, and both in view.
    wait_for(lambda: page.evaluate("() => !!window.wuwang.field.leaflet"), 20, 0.1, "the map")
    line_js = """() => {
      const out = [];
      window.wuwang.field.leaflet.eachLayer(l => {
        if (l instanceof L.Polyline && l.feature && l.feature.properties.route) {
          out.push(l.getLatLngs().map(p => [p.lat, p.lng]));
        }
      });
      return out;
    }"""
    wait_for(lambda: len(page.evaluate(line_js)) == 1, 20, 0.1, "the line to the scene")
    (line,) = page.evaluate(line_js)
    assert [tuple(round(v, 5) for v in p) for p in line] == [
        tuple(round(v, 5) for v in HERE),
        tuple(round(v, 5) for v in SCENE),
    ]
    in_view = "p => window.wuwang.field.leaflet.getBounds().contains(L.latLng(p[0], p[1]))"
    wait_for(
        lambda: page.evaluate(in_view, list(HERE)) and page.evaluate(in_view, list(SCENE)),
        20,
        0.1,
        "the team and the scene in view",
    )
    # The order and its map right under the header and the banner, as the team sees it.
    page.evaluate(
        "() => window.scrollTo(0, document.querySelector('#field-order').closest('section').offsetTop"
        " - document.querySelector('.field-top').offsetHeight - 8)"
    )
    page.wait_for_timeout(800)
    shot(page, artifacts, "field-page")
    page.evaluate("() => window.scrollTo(0, 0)")

    # The zoom control is below the header, and under it when the page scrolls.
    header = page.locator(".field-top").bounding_box()
    zoom = page.locator("#field-map .leaflet-control-zoom").bounding_box()
    assert header and zoom and not boxes_overlap(header, zoom)
    page.evaluate("dy => window.scrollBy(0, dy)", zoom["y"] - (header["y"] + header["height"] / 2) - 10)
    page.wait_for_timeout(300)
    zoom = page.locator("#field-map .leaflet-control-zoom").bounding_box()
    header = page.locator(".field-top").bounding_box()
    assert zoom and header and boxes_overlap(header, zoom)  # they do share pixels now: which is on top?
    shared_y = (
        max(zoom["y"], header["y"]) + min(zoom["y"] + zoom["height"], header["y"] + header["height"])
    ) / 2
    on_top = page.evaluate(
        "p => !!document.elementFromPoint(p[0], p[1]).closest('.field-top')",
        [zoom["x"] + zoom["width"] / 2, shared_y],
    )
    assert on_top
    page.evaluate("() => window.scrollTo(0, 0)")

    # Panned by hand: the map stops following; the button resumes.
    assert page.is_hidden('[data-action="follow"]')
    box = page.locator("#field-map").bounding_box()
    assert box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 60, steps=8)
    page.mouse.up()
    page.wait_for_selector('[data-action="follow"]:not([hidden])', timeout=10_000)
    assert page.evaluate("() => window.wuwang.field.follow") is False
    page.click('[data-action="follow"]')
    page.wait_for_selector('[data-action="follow"][hidden]', state="attached", timeout=10_000)
    assert page.evaluate("() => window.wuwang.field.follow") is True

    # Still there after a reload, and not rung again.
    page.reload()
    page.wait_for_selector(".field-page .connection.ok", timeout=30_000)
    page.wait_for_selector("#field-alert:not([hidden])", timeout=20_000)
    page.wait_for_timeout(1000)
    assert page.evaluate("() => window.__alerts") == {"vibrate": [], "tones": 0}

    # Acknowledged from the banner: it goes.
    page.click('#field-alert [data-action="ack"]')
    page.wait_for_selector("#field-alert[hidden]", state="attached", timeout=10_000)
    assert page.is_disabled('.field-section [data-action="ack"]')
    wait_for(
        lambda: any(
            o["team_id"] == team_id and o["status"] == "acked"
            for o in stack.api("GET", f"/incidents/{iid}/orders", operator)
        ),
        20,
        0.3,
        "the order acked",
    )
    page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=20_000)

    # A report by default goes to the order's incident; "new event" says otherwise.
    assert page.inner_text("#field-report-target") == f"将归入当前指令的事件 {iid}"
    page.check("#field-new-event input")
    page.wait_for_selector('#field-report-target:has-text("将作为新事件上报")', timeout=5_000)
    page.locator("#field-new-event").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "field-new-event.png"))

    # Offline: "saved, sent when online", never with "everything has been sent".
    assert phone.errors == [], phone.errors
    ctx.set_offline(True)
    page.fill("#field-description", "路口另有一处燃气泄漏，与本起事故无关")
    page.select_option("#field-category", "gas")
    page.click('[data-action="report"]')
    page.wait_for_selector('#field-position:has-text("已保存，联网后自动发送")', timeout=10_000)
    page.wait_for_selector('#field-queue:has-text("1 条等待发送")', timeout=10_000)
    assert "全部已发送" not in page.inner_text("body")
    assert "新事件" in page.inner_text("#field-queue")
    ctx.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=30_000)
    page.wait_for_selector('#field-position:has-text("上报已发送")', timeout=10_000)
    assert "已保存，联网后自动发送" not in page.inner_text("body")
    sent = [r for r in reports if r.get("description", "").startswith("路口另有一处燃气泄漏")]
    assert sent and all(r["new_event"] is True and r["incident_id"] is None for r in sent)
    assert not page.is_checked("#field-new-event input")  # the next report is the order's again

    # The same card in English.
    page.click("text=English")
    page.wait_for_selector("text=Current order", timeout=15_000)
    page.wait_for_selector(
        f'#field-order .order-away:has-text("{km:.1f} km to the north-east")', timeout=20_000
    )
    # the page was drawn again: the line too, on the new map
    wait_for(
        lambda: (
            page.evaluate("() => window.wuwang.field.leaflet.getContainer().isConnected")
            and len(page.evaluate(line_js)) == 1
        ),
        20,
        0.1,
        "the line on the English page's map",
    )
    page.locator("#field-order").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "field-page-en.png"))
    # Offline on purpose: failed loads and a Dash callback unanswered then are expected.
    offline = ("ERR_INTERNET_DISCONNECTED", "the server did not respond")
    errors = [e for e in phone.errors if not any(o in e for o in offline)]
    assert errors == [], errors
    assert phone.foreign() == [], phone.foreign()
    ctx.close()
