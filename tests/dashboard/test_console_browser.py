"""The console in a real browser (Chromium through Playwright) against a whole stack:
PostgreSQL, Redis, Mosquitto, the ingest, the command service and the dashboard.

- the console loads with no console error and no request leaving the machine;
- a 110 call published over MQTT appears on the map and in the queue; the dispatcher
  opens it, activates a plan and dispatches the first recommended team; the team's
  status, sent from the field page, shows on the map; the incident closes and the KPI
  tiles change;
- a field page that lost its network keeps its status change and sends it once the
  network is back, exactly once;
- the command service restarting shows the stale warning, and the console
  resynchronises by itself (a call taken while it was down appears).

Screenshots go to test-artifacts/dashboard/ (and to docs/screenshots/ with
WUWANG_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from testkit.feeds import publish, wait_for
from testkit.stack import Stack
from tests.dashboard.conftest import Watched
from wuwang.contract import encode, wuwang_topic

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Any, artifacts: Path, name: str) -> None:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("WUWANG_UPDATE_SCREENSHOTS"):
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SHOTS / path.name)


def login(page: Any, stack: Stack, user: str, path: str = "/") -> None:
    """Signs in as an operator would; a sign-in the page answered with an error (the
    command service did not answer within the console's 10 s, which happens when two
    console stacks and their browsers share two loaded cores) is tried again, twice at
    most — a person at the desk would press the button again."""
    page.goto(stack.dashboard_url + path)
    for attempt in range(3):
        page.fill("#login-user", user)
        page.fill("#login-password", "demo")
        page.click("#login-button")
        try:
            page.wait_for_selector("#login-button", state="detached", timeout=20_000)
            return
        except PlaywrightTimeout:  # still on the sign-in page
            error = page.inner_text(".login-error") if page.query_selector(".login-error") else ""
            if attempt == 2 or not error.strip():
                return  # the caller's own wait says what went wrong


def call_110(stack: Stack, *, category: str, lat: float, lon: float, address: str) -> str:
    msg_id = f"c-{uuid.uuid4().hex[:12]}"
    body = {
        "id": msg_id,
        "ts": datetime.now(UTC).isoformat(),
        "call_id": f"110-{msg_id}",
        "category": category,
        "lat": lat,
        "lon": lon,
        "address": address,
        "description": "群众报警：路口两车相撞，一人受伤被困",
        "caller": "13912345678",
    }
    publish(
        stack.mqtt_simulator_url,
        [(wuwang_topic("police", "call", "sys110"), encode(body))],
        protocol=stack.mqtt_protocol,
    )
    return msg_id


def incident_of(stack: Stack, token: str, msg_id: str, timeout: float = 30) -> dict[str, Any]:
    """The incident the call with ``msg_id`` ended up in (other tests' incidents may share
    the queue: Redis pub/sub channels are global, so everything is found by id)."""
    found: dict[str, Any] = {}

    def look() -> bool:
        for inc in stack.api("GET", "/incidents?open=false&limit=1000", token):
            if any(str(s.get("alarm_id", "")).endswith(f"#{msg_id}") for s in inc.get("sources", [])):
                found.update(inc)
                return True
        return False

    wait_for(look, timeout, 0.2, f"an incident for call {msg_id}")
    return found


def test_console_loads_air_gapped_without_errors(
    console_stack: Stack, desk: Watched, artifacts: Path, chromium: Any
) -> None:
    page = desk.page
    login(page, console_stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector(".legend-row", timeout=30_000)  # the static layers are in
    page.wait_for_selector('.kpi[data-kpi="p90"]', timeout=30_000)
    page.wait_for_timeout(1000)
    assert "五网同构" in page.inner_text(".brand-title")
    counts = {
        el.get_attribute("data-network"): el.inner_text() for el in page.query_selector_all(".legend-row")
    }
    assert set(counts) == {"patrol", "community", "venue", "police", "video"}
    assert desk.errors == [], desk.errors
    assert desk.foreign() == [], desk.foreign()
    sockets = [u for u in desk.urls if u.startswith("ws://127.0.0.1")]
    assert sockets and all(u.endswith("/ws") for u in sockets), sockets  # the token is never in a URL
    # English on request, from the catalogue
    page.click("text=English")
    page.wait_for_selector("text=Incident queue", timeout=15_000)
    page.click("text=中文")
    page.wait_for_selector("text=事件队列", timeout=15_000)

    # Something on the wall: three calls, two of them raised by the commander.
    commander = console_stack.login("commander1")
    calls = [
        ("fire", 32.0465, 112.1380, "樊城区人民广场东侧商铺", 1),
        ("traffic", 32.0098, 112.1532, "襄城区环城南路与檀溪路口", 2),
        ("medical", 32.0870, 112.2010, "襄州区航空路社区", None),
    ]
    for category, lat, lon, address, level in calls:
        inc = incident_of(
            console_stack,
            commander,
            call_110(console_stack, category=category, lat=lat, lon=lon, address=address),
        )
        if level is not None:
            console_stack.api(
                "POST",
                f"/incidents/{inc['id']}/level",
                commander,
                {"expected_version": inc["version"], "level": level, "reason": "现场报告伤亡扩大"},
            )
    wall_ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    wall = Watched(wall_ctx.new_page())
    login(wall.page, console_stack, "commander1", "/wall")
    wall.page.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
    wall.page.wait_for_selector(".legend-row", timeout=30_000)
    wall.page.wait_for_selector(".qrow.level-1", timeout=30_000)
    wall.page.wait_for_selector(".qrow.level-2", timeout=30_000)
    wall.page.wait_for_timeout(1500)
    shot(wall.page, artifacts, "wall-display")
    assert wall.errors == [], wall.errors
    assert wall.foreign() == [], wall.foreign()
    wall_ctx.close()


def test_call_to_closure_through_the_console_and_the_field_page(
    console_stack: Stack, desk: Watched, chromium: Any, artifacts: Path
) -> None:
    stack = console_stack
    token = stack.login("operator1")
    page = desk.page
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    page.wait_for_selector('.kpi[data-kpi="closure"]', timeout=30_000)
    closure_before = page.inner_text('.kpi[data-kpi="closure"] .kpi-value')

    # A 110 call over MQTT → ingest → alarm → command → /ws → the map and the queue.
    msg_id = call_110(
        stack, category="traffic", lat=32.0431, lon=112.1448, address=f"樊城区长虹路{msg_suffix()}号"
    )
    incident = incident_of(stack, token, msg_id)
    iid = incident["id"]
    row = f'.qrow[data-incident="{iid}"]'
    page.wait_for_selector(row, timeout=20_000)
    wait_for(
        lambda: bool(page.evaluate("id => (window.wuwang.live.incidents.get(id) || {}).id === id", iid)),
        10,
        0.1,
        "the incident on the map",
    )
    assert page.evaluate("id => { const m = window.wuwang.live; return m.incidents.has(id); }", iid)

    # The dispatcher opens it, activates the plan, dispatches the first recommended team.
    page.click(row)
    page.wait_for_selector(f'.detail-head:has-text("{iid}")', timeout=20_000)
    page.get_by_role("button", name="启动预案").click()
    page.wait_for_selector('#feedback:has-text("预案已启动")', timeout=20_000)
    page.wait_for_selector(".checklist .check", timeout=20_000)
    page.click('.detail-tab:has-text("队伍")')  # teams: assigned and recommended (the detail's tabs)
    first = page.locator(".dispatch-button").first
    first.wait_for(timeout=20_000)
    team_id = json.loads(first.get_attribute("id") or "{}")["team"]
    first.click()
    page.wait_for_selector(f'#feedback:has-text("{team_id}")', timeout=20_000)
    page.wait_for_selector('.detail-meta .state:has-text("已派遣")', timeout=20_000)
    # the recommender's reasons in the console's language, from their codes
    page.wait_for_selector('.recommendations:has-text("道路系数")', timeout=20_000)
    assert "road factor" not in page.inner_text(".recommendations")
    page.click("text=English")  # the page is drawn again in English: open the incident again
    page.wait_for_selector("text=Incident queue", timeout=15_000)
    page.click(row)
    page.click('.detail-tab:has-text("Teams")')
    page.wait_for_selector('.recommendations:has-text("road factor")', timeout=20_000)
    page.wait_for_timeout(800)
    recommended = page.inner_text(".recommendations")
    assert "ETA " in recommended and "道路系数" not in recommended and "预计" not in recommended
    shot(page, artifacts, "incident-detail-en")
    page.click("text=中文")
    page.wait_for_selector("text=事件队列", timeout=15_000)
    page.click(row)
    page.click('.detail-tab:has-text("队伍")')
    page.wait_for_selector('.recommendations:has-text("道路系数")', timeout=20_000)

    # The team, on its phone: status "on scene" from the field page.
    field_ctx = chromium.new_context(
        viewport={"width": 412, "height": 915},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": 32.0433, "longitude": 112.1450},
        permissions=["geolocation"],
    )
    field = Watched(field_ctx.new_page())
    login(field.page, stack, team_id)
    field.page.wait_for_selector(".field-page .connection.ok", timeout=30_000)
    field.page.wait_for_selector(f'#field-order:has-text("{iid}")', timeout=30_000)
    team_name = next(t.name for t in stack.city.teams if t.id == team_id)
    # the team by name, with its id
    assert field.page.inner_text(".field-team").split() == [team_name, team_id]
    field.page.wait_for_selector('[data-action="ack"]:not([disabled])', timeout=20_000)
    field.page.click('[data-action="ack"]')  # 确认接令
    field.page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=20_000)
    wait_for(
        lambda: any(
            o["team_id"] == team_id and o["status"] == "acked"
            for o in stack.api("GET", f"/incidents/{iid}/orders", token)
        ),
        20,
        0.3,
        "the order acked",
    )
    field.page.click('[data-status="on_scene"]')
    field.page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=20_000)
    # An on-scene report with a photo and the phone's position.
    field.page.fill("#field-description", "两车追尾，一名驾驶员腿部受伤，已破拆救出")
    field.page.select_option("#field-category", "traffic")
    field.page.set_input_files(
        '[data-input="photo"] input',
        files=[{"name": "scene.png", "mimeType": "image/png", "buffer": tiny_png()}],
    )
    field.page.set_viewport_size({"width": 412, "height": 1480})  # the whole page, without stitching
    field.page.wait_for_timeout(500)
    shot(field.page, artifacts, "field-page-report")  # field-page: tests/dashboard/test_field_browser.py
    field.page.click('[data-action="report"]')
    field.page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=30_000)
    assert field.foreign() == [], field.foreign()

    def stored_report() -> bool:
        with psycopg.connect(stack.database_url) as conn:
            row = conn.execute(
                "SELECT photo_url FROM field_report WHERE team_id = %s AND description LIKE %s",
                (team_id, "两车追尾%"),
            ).fetchone()
        return row is not None and bool(row[0])

    wait_for(stored_report, 30, 0.5, "the report stored by the ingest, with its photo")

    # The desk's map shows the team on scene; the incident moved on with its arrival.
    wait_for(
        lambda: page.evaluate("id => (window.wuwang.live.teams.get(id) || {}).status", team_id) == "on_scene",
        20,
        0.1,
        "the team's status on the map",
    )
    on_map = page.evaluate("id => window.wuwang.live.teams.get(id)", team_id)
    assert on_map["lat"] is not None
    page.wait_for_selector('.detail-meta .state:has-text("处置中")', timeout=20_000)

    # The closing guard (docs/incidents.md §3.1): the plan's checklist is done and the
    # team released before the incident is resolved.
    open_work = stack.api("GET", f"/incidents/{iid}/closing", token)["open"]
    for item in open_work["checklist"]:
        v = stack.api("GET", f"/incidents/{iid}", token)["incident"]["version"]
        stack.api("POST", f"/incidents/{iid}/checklist/{item['item_id']}", token, {"expected_version": v})
    v = stack.api("GET", f"/incidents/{iid}", token)["incident"]["version"]
    released = {"team_id": team_id, "expected_version": v, "reason": "归队"}
    stack.api("POST", f"/incidents/{iid}/release", token, released)
    assert stack.api("GET", f"/incidents/{iid}/closing", token)["blocked"] is False
    page.click('.detail-tab:has-text("记录")')  # the record is drawn while its tab is open
    page.wait_for_selector(".timeline .event-team_released", timeout=20_000)  # the detail on the new version

    # Resolve and close: the incident leaves the queue and the closure rate moves.
    page.get_by_role("button", name="处置完毕").click()
    page.wait_for_selector('.detail-meta .state:has-text("待核查")', timeout=20_000)
    page.get_by_role("button", name="结案").click()
    page.wait_for_selector('.detail-meta .state:has-text("已结案")', timeout=20_000)
    page.wait_for_selector(row, state="detached", timeout=20_000)
    wait_for(
        lambda: page.inner_text('.kpi[data-kpi="closure"] .kpi-value') != closure_before,
        20,
        0.2,
        "the closure-rate tile to change",
    )
    assert page.inner_text('.kpi[data-kpi="closure"] .kpi-value').endswith("%")
    assert desk.errors == [], desk.errors
    assert desk.foreign() == [], desk.foreign()
    field_ctx.close()


def tiny_png() -> bytes:
    """An 8×8 red PNG (a photo for the report form)."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def msg_suffix() -> int:
    return int(time.time() * 1000) % 1000


def test_field_outbox_sends_once_when_the_network_returns(console_stack: Stack, chromium: Any) -> None:
    stack = console_stack
    team_id = stack.team_ids[-1]
    ctx = chromium.new_context(viewport={"width": 412, "height": 915}, is_mobile=True, locale="zh-CN")
    page = Watched(ctx.new_page()).page
    login(page, stack, team_id)
    page.wait_for_selector(".field-page .connection.ok", timeout=30_000)
    ctx.set_offline(True)
    page.click('[data-status="returning"]')
    page.wait_for_selector('#field-queue:has-text("1 条等待发送")', timeout=10_000)
    page.wait_for_timeout(1500)
    assert page.inner_text("#field-queue").count("返回中") == 1  # still waiting, shown
    ctx.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_selector('#field-queue:has-text("全部已发送")', timeout=30_000)
    token = stack.login("operator1")
    assert stack.api("GET", f"/teams/{team_id}", token)["status"] == "returning"
    with psycopg.connect(stack.database_url) as conn:
        n = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'team.status' AND object_id = %s"
            " AND outcome = 'ok' AND detail->>'to' = 'returning'",
            (team_id,),
        ).fetchone()
    assert n is not None and n[0] == 1  # exactly once
    ctx.close()


def test_stale_warning_and_resynchronisation_after_a_restart(console_stack: Stack, desk: Watched) -> None:
    stack = console_stack
    page = desk.page
    login(page, stack, "operator1")
    page.wait_for_selector(".connection.ok", timeout=30_000)
    stack.stop_command()  # the command service goes away: the socket drops
    page.wait_for_selector("#stale-banner:not([hidden])", timeout=15_000)
    assert "中断" in page.inner_text("#stale-banner")
    # A call taken while the command service is down waits in the alarm stream …
    msg_id = call_110(
        stack, category="fire", lat=32.0101, lon=112.1222, address=f"襄城区北街{msg_suffix()}号"
    )
    page.wait_for_timeout(1000)
    stack.restart_command()
    # … and appears once the console has reconnected by itself.
    page.wait_for_selector("#stale-banner[hidden]", state="attached", timeout=30_000)
    token = stack.login("operator1")
    iid = incident_of(stack, token, msg_id)["id"]
    page.wait_for_selector(f'.qrow[data-incident="{iid}"]', timeout=20_000)
    assert page.evaluate("() => window.wuwang.live.stats.snapshots") >= 2


def test_a_wall_display_renews_its_token_without_redrawing(console_stack: Stack, chromium: Any) -> None:
    """Tokens live 15 minutes, a wall display a whole shift: the console renews the
    token near its end (POST /auth/refresh) and keeps the page, the map and the socket."""
    ctx = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    wall = Watched(ctx.new_page())
    page = wall.page
    login(page, console_stack, "commander1", "/wall")
    page.wait_for_selector(".console.wall .connection.ok", timeout=30_000)
    page.evaluate("() => { document.querySelector('.console').dataset.drawnOnce = 'yes'; }")
    first = json.loads(page.evaluate("() => sessionStorage.getItem('session')"))
    # Pretend the token has a minute left: the next tick (1 s in tests) renews it.
    soon = datetime.now(UTC).replace(microsecond=0).isoformat()
    page.evaluate(
        "(s) => window.dash_clientside.set_props('session', {data: s})", {**first, "expires_at": soon}
    )
    page.wait_for_function(
        "(old) => { const s = JSON.parse(sessionStorage.getItem('session') || 'null');"
        " return s && s.token && s.token !== old; }",
        arg=first["token"],
        timeout=20_000,
    )
    renewed = json.loads(page.evaluate("() => sessionStorage.getItem('session')"))
    assert renewed["user_id"] == "commander1" and renewed["expires_at"] > soon
    assert page.evaluate("() => document.querySelector('.console').dataset.drawnOnce") == "yes"
    assert page.query_selector(".console.wall .connection.ok") is not None
    # The socket reconnects with the renewed token.
    assert page.evaluate("() => window.wuwang.live.token") == renewed["token"]
    assert wall.errors == [], wall.errors
    ctx.close()
