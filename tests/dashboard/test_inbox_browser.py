"""The alarm inbox panel (告警收件箱) in a real browser (Chromium through Playwright) against
a whole stack: video alerts published over MQTT go through the ingest and the command
service's triage into the inbox, and the desk shows and acts on them.

- a storm of 30 loitering alerts from one camera is ONE row, ×30, with the 频繁
  (flapping) badge, and no incident;
- 升级为事件 (promote) turns a row into an incident in the queue;
- 排除 (dismiss) with 误报 takes a row off the open list; the review list (待复核) shows
  the expired rows, where the same acts work;
- 关联到事件 (link) with the picker of open incidents; ticked rows dismissed in bulk (a
  missing reason is said, nothing sent);
- English on request, with no key or code on screen;
- a planner (exercise mode) sees no live row;
- the panel is on the desk, not on the wall.

Screenshots go to test-artifacts/dashboard/ (inbox-desk.png: the desk with the inbox at
1920×1080, also to docs/screenshots/ with WUWANG_UPDATE_SCREENSHOTS=1; inbox-review.png,
inbox-desk-en.png).
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from testkit.feeds import publish, wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from tests.dashboard.test_console_browser import login, shot
from wuwang.city import load_districts
from wuwang.contract import encode, wuwang_topic
from wuwang.places import crossing_place

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

#: Venues whose nearness promotes a video alert (command/triage/rules.yaml, risk): the
#: test's cameras stay well away from them, and from each other (corroboration).
RISKY = {
    "chemical_plant", "gas_station", "warehouse", "school", "hospital", "nursing_home",
    "stadium", "station", "scenic_spot", "mall",
}  # fmt: skip


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 111_320
    dx = (a[1] - b[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def quiet_places(stack: Stack, n: int) -> list[tuple[float, float]]:
    """``n`` camera positions of the city far from risky venues and from each other."""
    risky = [(v.lat, v.lon) for v in stack.city.venues if v.kind in RISKY]
    out: list[tuple[float, float]] = []
    for cam in stack.city.cameras:
        here = (cam.lat, cam.lon)
        if all(_metres(here, v) > 1500 for v in risky) and all(_metres(here, p) > 3000 for p in out):
            out.append(here)
        if len(out) == n:
            return out
    raise AssertionError("no quiet places in the city")


def video_alerts(
    stack: Stack, camera: str, event: str, place: tuple[float, float], n: int, *, spacing_s: float = 2.0
) -> None:
    """``n`` alerts of one camera, the last one now, ``spacing_s`` apart."""
    now = datetime.now(UTC)
    items = []
    for i in range(n):
        body = {
            "id": f"v-{uuid.uuid4().hex[:12]}",
            "ts": (now - timedelta(seconds=(n - 1 - i) * spacing_s)).isoformat(),
            "camera_id": camera,
            "event": event,
            "confidence": 0.82,  # an alarm from 0.8 (VIDEO_ALARM_CONFIDENCE); promoted only from 0.9
            "lat": place[0],
            "lon": place[1],
        }
        items.append((wuwang_topic("video", "video", camera), encode(body)))
    publish(stack.mqtt_simulator_url, items, protocol=stack.mqtt_protocol)


def water_level(stack: Stack, device: str, place: tuple[float, float], value: float) -> None:
    """A water-level gauge over its threshold (3.0 m): a sensor crossing, medium severity."""
    body = {
        "id": f"s-{uuid.uuid4().hex[:12]}",
        "ts": datetime.now(UTC).isoformat(),
        "device_id": device,
        "kind": "water_level",
        "value": value,
        "unit": "m",
        "lat": place[0],
        "lon": place[1],
    }
    publish(
        stack.mqtt_simulator_url,
        [(wuwang_topic("community", "sensor", device), encode(body))],
        protocol=stack.mqtt_protocol,
    )


def row_of(page: Any, camera: str) -> Any:
    return page.query_selector(f'.inbox-row[data-source="video/{camera}"]')


def button(page: Any, camera: str, action: str) -> Any:
    """A row's button, found again at each try (the rows are redrawn on every change)."""
    return page.locator(f'.inbox-row[data-source="video/{camera}"] button[id*="{action}"]')


def test_a_storm_is_one_row_promote_dismiss_and_the_review_list(
    console_stack: Stack, desk: Watched, artifacts: Path
) -> None:
    stack, page = console_stack, desk.page
    tag = uuid.uuid4().hex[:6].upper()
    storm, crowd, quiet = f"CAM-S{tag}", f"CAM-C{tag}", f"CAM-Q{tag}"
    places = quiet_places(stack, 3)
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector(".inbox-panel h2", timeout=30_000)

    # a storm of 30 loitering alerts from one camera: one row, ×30, flapping; no incident
    video_alerts(stack, storm, "loitering", places[0], 30, spacing_s=10)
    video_alerts(stack, crowd, "crowd", places[1], 3, spacing_s=40)
    gauge = f"WL-{tag}"
    water_level(stack, gauge, quiet_places(stack, 8)[7], 3.4)
    try:
        wait_for(
            lambda: (r := row_of(page, storm)) is not None and r.get_attribute("data-count") == "30",
            60,
            0.3,
            "the storm's row with ×30",
        )
    except AssertionError:
        page.screenshot(path=str(artifacts / "inbox-debug.png"))
        print("PANEL", page.inner_text("#inbox-panel"))
        print("ERRORS", desk.errors)
        print("API", stack.api("GET", "/inbox", stack.login("operator1")))
        raise
    assert len(page.query_selector_all(f'.inbox-row[data-source="video/{storm}"]')) == 1
    row = row_of(page, storm)
    assert row.get_attribute("data-flapping") == "1"
    assert "×30" in row.inner_text()
    assert "频繁" in row.query_selector(".badge-flapping").inner_text()
    assert "徘徊逗留" in row.inner_text()  # the category in the operator's words, not "loitering"
    assert "loitering" not in row.inner_text()
    # where, in the incident titles' words: the nearest crossing and its district, no coordinates
    where = crossing_place(*places[0], load_districts())
    assert where is not None and row.query_selector(".inbox-place").inner_text() == where
    assert f"{places[0][0]:.4f}" not in row.inner_text()
    wait_for(lambda: row_of(page, crowd) is not None, 60, 0.3, "the crowd camera's row")
    sensor = f'.inbox-row[data-source$="/{gauge}"]'
    page.wait_for_selector(sensor, timeout=60_000)
    assert "水位" in page.inner_text(sensor) and "传感器" in page.inner_text(sensor)
    token = stack.login("operator1")
    titles = [i.get("title", "") for i in stack.api("GET", "/incidents?open=true&limit=1000", token)]
    assert not any(storm in str(t) for t in titles)
    page.wait_for_timeout(1200)  # the relative times are filled in
    shot(page, artifacts, "inbox-desk")

    # 升级为事件: the crowd row becomes an incident in the queue
    button(page, crowd, "promote").click()
    page.wait_for_selector("#inbox-feedback .ok", timeout=20_000)
    incident_id = page.inner_text("#inbox-feedback .ok").split()[-1]
    assert incident_id.startswith("INC-"), incident_id
    # the incident's title says where as the row did (one rule for both)
    title = stack.api("GET", f"/incidents/{incident_id}", token)["incident"]["title"]
    assert title.endswith(f" · {crossing_place(*places[1], load_districts())}"), title
    page.wait_for_selector(f'#queue [data-incident="{incident_id}"]', timeout=20_000)
    wait_for(lambda: row_of(page, crowd) is None, 20, 0.3, "the promoted row off the open list")

    # 排除 with 误报: the storm's row leaves the open list
    button(page, storm, "dismiss").click()
    page.wait_for_selector("#inbox-form:not([hidden])", timeout=10_000)
    page.click("#inbox-reason label:has-text('误报')")
    page.click("#inbox-confirm")
    page.wait_for_selector("#inbox-feedback .ok", timeout=20_000)
    wait_for(lambda: row_of(page, storm) is None, 20, 0.3, "the dismissed row off the open list")

    # the review list: a quiet row (its last alarm an hour ago) expires into it
    video_alerts(stack, quiet, "loitering", places[2], 1)
    wait_for(lambda: row_of(page, quiet) is not None, 60, 0.3, "the quiet camera's row")
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "UPDATE triage_row SET first_seen = first_seen - interval '1 hour',"
            " last_seen = last_seen - interval '1 hour' WHERE source = %s",
            (f"video/{quiet}",),
        )
    wait_for(
        lambda: row_of(page, quiet) is None,
        30,
        0.3,
        "the quiet row expired (COMMAND_INBOX_EXPIRY_INTERVAL_S: 1 s)",
    )
    page.click("#inbox-view label:has-text('待复核')")
    page.wait_for_selector(f'.inbox-row[data-source="video/{quiet}"]', timeout=20_000)
    review = row_of(page, quiet)
    assert "待复核" in review.inner_text() or "复核" in review.inner_text()
    page.screenshot(path=str(artifacts / "inbox-review.png"))  # (test-artifacts only)
    # the same acts work there: dismiss it as a test
    button(page, quiet, "dismiss").click()
    page.click("#inbox-reason label:has-text('测试')")
    page.click("#inbox-confirm")
    wait_for(lambda: row_of(page, quiet) is None, 20, 0.3, "the reviewed row dismissed")
    # English on request: the panel says everything in words, no key or code shown
    video_alerts(stack, storm, "loitering", places[0], 6)  # a new row of the storm's camera
    page.click("#inbox-view label:has-text('待研判')")
    wait_for(lambda: row_of(page, storm) is not None, 60, 0.3, "a new row of the storm's camera")
    page.click("text=English")
    page.wait_for_selector(".inbox-panel h2:has-text('Alarm inbox')", timeout=20_000)
    page.wait_for_selector(f'.inbox-row[data-source="video/{storm}"]', timeout=20_000)
    page.wait_for_timeout(1200)
    panel = page.inner_text("#inbox-panel")
    assert "loitering" in panel and "Promote to incident" in panel and "to triage" in panel
    assert "inbox." not in panel and "triage." not in panel and "徘徊" not in panel
    assert "near the crossing of" in panel  # the place in English words; the names stay names
    page.screenshot(path=str(artifacts / "inbox-desk-en.png"))
    assert desk.errors == [], desk.errors
    assert desk.foreign() == [], desk.foreign()


def test_link_with_the_picker_and_bulk_dismiss(console_stack: Stack, desk: Watched, artifacts: Path) -> None:
    stack, page = console_stack, desk.page
    tag = uuid.uuid4().hex[:6].upper()
    one, two, three = f"CAM-L{tag}", f"CAM-M{tag}", f"CAM-N{tag}"
    places = quiet_places(stack, 6)[3:]
    token = stack.login("operator1")
    title = f"人民路积水 {tag}"
    body = {"type": "flood", "level": 3, "title": title, "lat": 32.01, "lon": 112.13}
    incident = stack.api("POST", "/incidents", token, body)
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    for camera, place in zip((one, two, three), places, strict=True):
        video_alerts(stack, camera, "loitering", place, 1)
    for camera in (one, two, three):

        def drawn(c: str = camera) -> bool:
            return row_of(page, c) is not None

        wait_for(drawn, 60, 0.3, f"the row of {camera}")

    # 关联到事件: the picker lists the open incident; the row leaves the open list
    button(page, one, "link").click()
    page.wait_for_selector("#inbox-form:not([hidden])", timeout=10_000)
    page.click("#inbox-incident")
    page.click(f"text={incident['id']}")
    page.click("#inbox-confirm")
    page.wait_for_selector(f"#inbox-feedback .ok:has-text('{incident['id']}')", timeout=20_000)
    wait_for(lambda: row_of(page, one) is None, 20, 0.3, "the linked row off the open list")
    linked = stack.api("GET", f"/inbox?state=linked&incident_id={incident['id']}", token)
    assert [r["source"] for r in linked] == [f"video/{one}"]

    # 全选 ticks every row, again unticks them all
    page.wait_for_timeout(1500)  # the panel settles after the link (its /ws change redraws it)
    page.click("#inbox-select-all")
    page.wait_for_selector("#inbox-bulk:not([hidden])", timeout=10_000)
    shown = len(page.query_selector_all(".inbox-row"))
    assert f"已选 {shown} 条" in page.inner_text("#inbox-bulk")
    page.click("#inbox-select-all")
    page.wait_for_selector("#inbox-bulk[hidden]", state="attached", timeout=10_000)

    # bulk: tick two rows, dismiss them as duplicates in one go
    for camera in (two, three):
        page.locator(f'.inbox-row[data-source="video/{camera}"] .inbox-check input').check()
    # (the count is said by a callback per tick: the bar shows on the first one's answer)
    page.wait_for_selector("#inbox-bulk:not([hidden]):has-text('已选 2 条')", timeout=10_000)
    page.click("#inbox-bulk button:has-text('排除')")
    page.wait_for_selector("#inbox-form:not([hidden])", timeout=10_000)
    assert "排除 2 条告警" in page.inner_text("#inbox-form")
    page.click("#inbox-confirm")  # no reason chosen yet: said, nothing sent
    page.wait_for_selector("#inbox-feedback .error", timeout=10_000)
    page.click("#inbox-reason label:has-text('重复')")
    page.click("#inbox-confirm")
    page.wait_for_selector("#inbox-feedback .ok:has-text('已排除 2 条告警')", timeout=20_000)
    wait_for(
        lambda: row_of(page, two) is None and row_of(page, three) is None, 20, 0.3, "both rows dismissed"
    )
    dismissed = stack.api("GET", "/inbox?state=dismissed&limit=1000", token)
    assert {r["source"] for r in dismissed if r["dismiss_reason"] == "duplicate"} >= {
        f"video/{two}",
        f"video/{three}",
    }
    assert desk.errors == [], desk.errors


def test_a_planner_sees_only_drill_rows(console_stack: Stack, desk: Watched) -> None:
    """Exercise mode: the panel shows the drills' rows only (the queue does the same)."""
    stack, page = console_stack, desk.page
    camera = f"CAM-P{uuid.uuid4().hex[:6].upper()}"
    video_alerts(stack, camera, "loitering", quiet_places(stack, 7)[6], 1)  # a live row
    token = stack.login("operator1")
    wait_for(
        lambda: any(r["source"] == f"video/{camera}" for r in stack.api("GET", "/inbox", token)),
        60,
        0.3,
        "the live row",
    )
    login(page, stack, "planner1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    wait_for(lambda: page.inner_text("#inbox-counts").strip() != "", 30, 0.2, "the panel drawn")
    page.wait_for_timeout(1000)
    assert row_of(page, camera) is None
    assert all(r.query_selector(".tag-exercise") for r in page.query_selector_all(".inbox-row"))


def test_the_inbox_is_not_on_the_wall(console_stack: Stack, desk: Watched) -> None:
    page = desk.page
    login(page, console_stack, "operator1", "/wall")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector("#queue", timeout=30_000)
    assert page.query_selector(".inbox-panel") is None
