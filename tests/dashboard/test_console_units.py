"""The console's server side without a browser: settings, the command API client and
its token cache, the field page's API (identity from the token only), map data in the
map's datum, the incident detail by role, and that every callback has its components."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
from dash import html
from dash.development.base_component import Component
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dashboard import geo, ids
from dashboard.api import ApiError, CommandApi, Me
from dashboard.app import content_security_policy, create_app
from dashboard.charts import figure
from dashboard.context import Console, ws_url
from dashboard.data.aggregates import neighbourhood
from dashboard.field_api import current_order, router
from dashboard.layout.console import console_page, deferred_panels
from dashboard.layout.detail import DetailData, incident_detail
from dashboard.layout.field import field_page
from dashboard.layout.login import login_page
from tests.dashboard.who import me_body, signed_in
from wuwang.geo import wgs84_to_gcj02
from wuwang.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
OPERATOR = signed_in("operator1", "operator", None, "值班员")
COMMANDER = signed_in("commander1", "commander", None, "指挥长")
FIELD = signed_in("T-FIRE-01", "field", "T-FIRE-01", "队伍")


def run_async(coro: Any) -> Any:
    """asyncio.run in a thread of its own: Playwright's sync API (the browser tests in
    this session) keeps an event loop running in the main thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --- settings -------------------------------------------------------------------------


def test_dashboard_secret_must_be_real_outside_demo_mode() -> None:
    with pytest.raises(ValidationError, match="DASHBOARD_SECRET"):
        Settings(demo_mode=False, dashboard_secret="demo")
    with pytest.raises(ValidationError, match="DASHBOARD_SECRET"):
        Settings(demo_mode=False, dashboard_secret="short")
    assert Settings(demo_mode=False, dashboard_secret="x" * 40).dashboard.secret == "x" * 40
    assert Settings(demo_mode=True, dashboard_secret="demo").dashboard.secret == "demo"


def test_the_app_refuses_to_start_without_a_secret_outside_demo_mode() -> None:
    with pytest.raises(RuntimeError, match="DASHBOARD_SECRET"):
        create_app(Settings(demo_mode=False))


def test_the_page_comes_compressed_with_its_second_requests_preloaded() -> None:
    """The first response names what the renderer asks for next (the layout, the
    callbacks, the map's chunk), so the browser fetches them with the bundles; responses
    are gzipped; assets fingerprinted with their modification time are cached for good."""
    with TestClient(create_app(Settings(demo_mode=True)).server) as client:
        index = client.get("/", headers={"Accept-Encoding": "gzip"})
        assert index.headers["content-encoding"] == "gzip"
        for path in ("/_dash-layout", "/_dash-dependencies"):
            assert f'<link rel="preload" href="{path}" as="fetch" crossorigin>' in index.text
            assert client.get(path).status_code == 200
        preloaded = re.findall(r'<link rel="preload" href="([^"]+)" as="script">', index.text)
        assert any(p.endswith("/async-GeoJSON.js") for p in preloaded)
        for path in preloaded:  # each is a chunk the server has
            assert client.get(path).status_code == 200, path
        asset = re.search(r'src="(/assets/00-wuwang-core\.js\?m=[^"]+)"', index.text)
        assert asset is not None
        assert client.get(asset.group(1)).headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "immutable" not in client.get("/assets/00-wuwang-core.js").headers.get("cache-control", "")


def test_websocket_url_follows_the_command_url() -> None:
    assert ws_url(Settings(demo_mode=True)) == "ws://127.0.0.1:8000/ws"
    assert ws_url(Settings(demo_mode=True, dashboard_command_url="https://cmd.example/api/")) == (
        "wss://cmd.example/api/ws"
    )
    assert ws_url(Settings(demo_mode=True, dashboard_command_ws_url="ws://10.0.0.5:8000/ws")) == (
        "ws://10.0.0.5:8000/ws"
    )


def test_content_security_policy_allows_nothing_foreign() -> None:
    policy = content_security_policy(Settings(demo_mode=True), ["'sha256-abc='"])
    assert "default-src 'self'" in policy
    assert "connect-src 'self' ws://127.0.0.1:8000" in policy
    assert "'sha256-abc='" in policy
    assert "https:" not in policy and "http:" not in policy
    tiles = content_security_policy(
        Settings(demo_mode=True, dashboard_tile_url="http://tiles.local:8080/{z}/{x}/{y}.png"), []
    )
    assert "img-src 'self' data: blob: http://tiles.local:8080" in tiles


# --- the command API client ------------------------------------------------------------


def mock_api(handler: Callable[[httpx2.Request], httpx2.Response]) -> CommandApi:
    return CommandApi("http://command.test", transport=httpx2.MockTransport(handler))


def test_me_is_asked_of_the_command_service_and_cached() -> None:
    run_async(_test_me_is_asked_of_the_command_service_and_cached())


async def _test_me_is_asked_of_the_command_service_and_cached() -> None:
    calls: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") == "Bearer good":
            return httpx2.Response(
                200,
                json={"user_id": "operator1", "role": "operator", "team_id": None, "display_name": "值班员"},
            )
        return httpx2.Response(401, json={"detail": "invalid token"})

    api = mock_api(handler)
    me = await api.me("good")
    assert me == Me("operator1", "operator", None, "值班员")
    assert await api.me("good") == me
    assert calls == ["Bearer good"]  # cached
    assert await api.me("forged") is None
    assert await api.me(None) is None
    assert await api.me("") is None
    await api.aclose()


def test_api_errors_carry_status_and_detail() -> None:
    run_async(_test_api_errors_carry_status_and_detail())


async def _test_api_errors_carry_status_and_detail() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/incidents/X/verify":
            return httpx2.Response(409, json={"detail": "stale expected_version"})
        return httpx2.Response(404, json={"detail": "Not Found"})

    api = mock_api(handler)
    with pytest.raises(ApiError) as stale:
        await api.post("/incidents/X/verify", "t", {"expected_version": 1})
    assert stale.value.status == 409 and "stale" in stale.value.detail
    with pytest.raises(ApiError) as missing:
        await api.post("/orders/O-1/ack", "t", {})
    assert missing.value.missing_route
    await api.aclose()


def test_an_unreachable_command_service_is_status_0() -> None:
    run_async(_test_an_unreachable_command_service_is_status_0())


async def _test_an_unreachable_command_service_is_status_0() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    api = mock_api(handler)
    with pytest.raises(ApiError) as exc:
        await api.get("/incidents", "t")
    assert exc.value.status == 0
    with pytest.raises(ApiError):
        await api.me("t")  # unreachable is not "nobody": the caller decides (callbacks deny)
    await api.aclose()


# --- the field page's API -----------------------------------------------------------------


class FakeCommand:
    """The command service as far as the field API uses it."""

    def __init__(self, *, reports: bool = False) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.reports = reports

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        token = request.headers.get("authorization", "")
        body = json.loads(request.content) if request.content else {}
        self.seen.append((request.method, request.url.path, body))
        if request.url.path == "/auth/me":
            if token == "Bearer team":
                return httpx2.Response(
                    200,
                    json=me_body("T-FIRE-01", "field", "T-FIRE-01", "队伍"),
                )
            if token == "Bearer operator":
                return httpx2.Response(
                    200,
                    json=me_body("operator1", "operator", None, "值班员"),
                )
            return httpx2.Response(401, json={"detail": "invalid token"})
        if request.url.path in ("/field/reports", "/field/photos") and not self.reports:
            return httpx2.Response(404, json={"detail": "Not Found"})
        if request.url.path == "/field/photos":
            return httpx2.Response(201, json={"url": "/field/photos/" + "a" * 64 + ".jpg", "bytes": 4})
        return httpx2.Response(200, json={"ok": True})


def field_client(fake: FakeCommand) -> TestClient:
    console = Console.create(Settings(demo_mode=True), api=mock_api(fake))
    app = FastAPI()
    app.include_router(router(console))
    return TestClient(app)


def test_status_goes_to_the_team_named_by_the_token_never_the_body() -> None:
    fake = FakeCommand()
    client = field_client(fake)
    r = client.post(
        "/field/api/status",
        headers={"Authorization": "Bearer team"},
        json={"id": "web-status-1", "status": "en_route", "seq": 5, "team_id": "T-FIRE-99"},
    )
    assert r.status_code == 200, r.text
    posted = [s for s in fake.seen if s[0] == "POST"]
    assert posted == [
        (
            "POST",
            "/teams/T-FIRE-01/status",
            {"status": "en_route", "seq": 5, "id": "web-status-1"},
        )
    ]


def test_on_scene_records_the_arrival_first() -> None:
    fake = FakeCommand()
    client = field_client(fake)
    r = client.post(
        "/field/api/status",
        headers={"Authorization": "Bearer team"},
        json={"id": "web-status-2", "status": "on_scene", "incident_id": "INC-1"},
    )
    assert r.status_code == 200
    paths = [s[1] for s in fake.seen if s[0] == "POST"]
    assert paths == ["/incidents/INC-1/arrived", "/teams/T-FIRE-01/status"]
    assert fake.seen[-2][2] == {"team_id": "T-FIRE-01"}


def test_field_api_refuses_strangers_and_staff() -> None:
    client = field_client(FakeCommand())
    assert client.post("/field/api/status", json={"id": "a", "status": "available"}).status_code == 401
    r = client.post(
        "/field/api/status",
        headers={"Authorization": "Bearer operator"},
        json={"id": "a", "status": "available"},
    )
    assert r.status_code == 403
    r = client.post(
        "/field/api/status", headers={"Authorization": "Bearer team"}, json={"id": "a", "status": "x"}
    )
    assert r.status_code == 422


def test_a_report_goes_with_its_photo_and_is_kept_when_it_cannot() -> None:
    body = {
        "id": "web-report-1",
        "category": "fire",
        "description": "三楼起火",
        "lat": 32.05,
        "lon": 112.14,
        "photo": "data:image/jpeg;base64,/9j/4AAQ",
    }
    r = field_client(FakeCommand()).post(
        "/field/api/report", headers={"Authorization": "Bearer team"}, json=body
    )
    assert r.status_code == 501  # the outbox keeps it ("held") and tries again later
    fake = FakeCommand(reports=True)
    r = field_client(fake).post("/field/api/report", headers={"Authorization": "Bearer team"}, json=body)
    assert r.status_code == 200
    photo = next(s for s in fake.seen if s[1] == "/field/photos")
    assert photo[2] == {"content_type": "image/jpeg", "data_base64": "/9j/4AAQ"}
    sent = next(s for s in fake.seen if s[1] == "/field/reports")
    assert sent[2]["photo_url"].startswith("/field/photos/") and sent[2]["id"] == "web-report-1"
    assert "team_id" not in sent[2]  # the command service takes the team from the token
    bad = {**body, "photo": "javascript:alert(1)"}
    assert (
        field_client(fake)
        .post("/field/api/report", headers={"Authorization": "Bearer team"}, json=bad)
        .status_code
        == 422
    )


def test_current_order_is_the_newest_assignment_in_force() -> None:
    incidents = [
        {
            "id": "INC-1",
            "is_open": True,
            "title": "旧",
            "level": 4,
            "lat": 32.0,
            "lon": 112.0,
            "teams": [
                {
                    "team_id": "T-FIRE-01",
                    "order_id": "O-1",
                    "dispatched_at": "2025-01-01T00:00:00Z",
                    "released_at": "2025-01-01T01:00:00Z",
                }
            ],
        },
        {
            "id": "INC-2",
            "is_open": True,
            "title": "新",
            "level": 2,
            "lat": 32.1,
            "lon": 112.1,
            "teams": [
                {"team_id": "T-FIRE-01", "order_id": "O-2", "dispatched_at": "2025-01-01T02:00:00Z"},
                {"team_id": "T-FIRE-02", "order_id": "O-3", "dispatched_at": "2025-01-01T03:00:00Z"},
            ],
        },
    ]
    order = current_order(FIELD, incidents)
    assert order is not None and order["order_id"] == "O-2" and order["incident_id"] == "INC-2"
    assert current_order(FIELD, []) is None


# --- map data ---------------------------------------------------------------------------


def test_positions_are_shifted_for_a_gcj02_basemap_and_left_alone_otherwise() -> None:
    lat, lon = 32.0426, 112.1441
    plain = geo.feature(lat, lon, "wgs84", {})
    shifted = geo.feature(lat, lon, "gcj02", {})
    assert plain["geometry"]["coordinates"] == [112.1441, 32.0426]
    glat, glon = wgs84_to_gcj02(lat, lon)
    assert shifted["geometry"]["coordinates"] == [round(glon, 5), round(glat, 5)]
    poly = {"type": "Polygon", "coordinates": [[[112.1, 32.0], [112.2, 32.0], [112.2, 32.1], [112.1, 32.0]]]}
    assert geo.geometry(poly, "gcj02")["coordinates"][0][0] != [112.1, 32.0]
    assert geo.geometry(poly, "wgs84")["coordinates"][0][0] == [112.1, 32.0]


def test_neighbourhood_is_lattice_arithmetic() -> None:
    assert neighbourhood("r10c20") == [
        "r9c19",
        "r9c20",
        "r9c21",
        "r10c19",
        "r10c20",
        "r10c21",
        "r11c19",
        "r11c20",
        "r11c21",
    ]
    assert neighbourhood(None) == []
    assert neighbourhood("odd") == ["odd"]


def test_an_empty_chart_says_so() -> None:
    fig = figure("zh_CN", [], kind="feed", empty_key="chart.no_data")
    assert fig["data"] == [] and fig["layout"]["annotations"][0]["text"] == "暂无数据"


# --- the incident detail by role ----------------------------------------------------------


def sample() -> DetailData:
    incident = {
        "id": "INC-1",
        "type": "fire",
        "level": 4,
        "state": "new",
        "is_open": True,
        # what the command API says a new incident takes (command.domain.incidents.next_acts)
        "next_acts": ["verify", "dispatch", "cancel", "false_alarm", "hold"],
        "title": "火灾",
        "version": 3,
        "opened_at": "2025-01-01T00:00:00+00:00",
        "grid_cell_id": "r1c1",
        "exercise_id": None,
        "sources": [
            {"alarm_id": "a#1", "kind": "call", "summary": "110", "ts": "2025-01-01T00:00:00+00:00"},
            {"alarm_id": "a#2", "kind": "sensor", "summary": "smoke", "ts": "2025-01-01T00:01:00+00:00"},
        ],
        "teams": [],
    }
    recs = {
        "teams": [
            {
                "type": "fire",
                "count": 1,
                "assigned": 0,
                "needed": 1,
                "short": 0,
                "suggested": ["T-1"],
                "candidates": [
                    {
                        "team_id": "T-1",
                        "name": "消防一站",
                        "eta_s": 374.2,
                        "eta": "6 分 14 秒",
                        "distance_m": 2000,
                        "reasons": ["（命令服务的中文）", "…", "…", "路网 2.1 公里"],
                        "reason_codes": [
                            {
                                "code": "travel.great_circle",
                                "params": {
                                    "straight_km": 3.21,
                                    "road_factor": 1.3,
                                    "route_km": 4.17,
                                    "speed_kmh": 40,
                                },
                                "text": "（命令服务的中文）",
                            },
                            {"code": "eta", "params": {"eta_s": 374.2}, "text": "…"},
                            {"code": "team.position_age", "params": {"age_s": 35}, "text": "…"},
                            # a code this console does not know: the command service's text
                            {
                                "code": "travel.road_graph",
                                "params": {"route_km": 2.1},
                                "text": "路网 2.1 公里",
                            },
                        ],
                    }
                ],
                "skipped": [],
            },
            {
                "type": "medical",
                "count": 1,
                "assigned": 0,
                "needed": 1,
                "short": 1,
                "suggested": [],
                "candidates": [],
                "skipped": [
                    {
                        "team_id": f"M-{n}",
                        "name": "急救",
                        "reason": "busy",
                        "detail": "状态：在途",
                        "code": "team.skipped.busy",
                        "params": {"status": "en_route"},
                    }
                    for n in (1, 2)
                ]
                + [
                    {
                        "team_id": "M-3",
                        "name": "急救",
                        "reason": "stale_position",
                        "detail": "位置已过时（最后上报于 12 分 00 秒 前）",
                        "code": "team.skipped.stale_position",
                        "params": {"age_s": 720.0},
                    }
                ],
            },
        ],
        "supplies": [
            {
                "item": "sandbag",
                "quantity": 100,
                "unit": "bag",
                "held": 0,
                "needed": 100,
                "short": 0,
                "candidates": [
                    {
                        "warehouse_id": "W-1",
                        "name": "一号库",
                        "kind": "government_stock",
                        "eta_s": 1200.0,
                        "eta": "20 分 00 秒",
                        "reasons": ["…", "…"],
                        "reason_codes": [
                            {
                                "code": "warehouse.stock.covers",
                                "params": {"kind": "government_stock", "available": 300},
                                "text": "…",
                            },
                            {"code": "warehouse.lead_time", "params": {"lead_time_s": 7200}, "text": "…"},
                        ],
                    }
                ],
                "plan": [{"warehouse_id": "W-1", "quantity": 100, "eta_s": 1200}],
            }
        ],
    }
    return DetailData(
        incident=incident,
        timeline=[
            {
                "seq": 1,
                "kind": "opened",
                "at": incident["opened_at"],
                "actor": "system",
                "data": {"title": "火灾"},
            }
        ],
        plan={"active": False, "covering_plans": ["high_rise_fire"]},
        plans=[{"id": "high_rise_fire", "title_zh": "高层建筑火灾应急预案", "title_en": "x"}],
        recommendations=recs,
    )


def component_ids(tree: Any) -> list[Any]:
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, Component):
            ident = getattr(node, "id", None)
            if ident is not None:
                found.append(ident)
            for prop in ("children",):
                walk(getattr(node, prop, None))
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    walk(tree)
    return found


def test_operators_get_the_acts_of_the_state_but_not_the_level() -> None:
    found = component_ids(html.Div(incident_detail("zh_CN", OPERATOR, sample(), TZ)))
    acts = {i["action"] for i in found if isinstance(i, dict) and i.get("type") == ids.ACT}
    assert acts == {"verify", "cancel", "false-alarm", "hold", "note", "plan", "merge"}
    assert {"type": ids.DISPATCH, "team": "T-1"} in found
    assert {"type": ids.RESERVE, "item": "sandbag", "qty": 100, "wh": "W-1"} in found
    assert {"type": ids.SPLIT, "alarm": "a#1"} in found


def test_a_held_incident_offers_resume_and_says_why_it_is_held() -> None:
    data = sample()
    data.incident = {
        **data.incident,
        "held": {"reason": "等待燃气公司到场", "by": "operator1", "at": "2026-07-12T06:02:00+00:00"},
        "next_acts": ["verify", "dispatch", "cancel", "false_alarm", "resume"],
    }
    tree = html.Div(incident_detail("zh_CN", OPERATOR, data, TZ))
    acts = {i["action"] for i in component_ids(tree) if isinstance(i, dict) and i.get("type") == ids.ACT}
    assert "resume" in acts and "hold" not in acts
    assert "已挂起：等待燃气公司到场（operator1，14:02:00 起）" in texts_of(tree)
    # a resolved incident is neither held nor holdable
    data.incident = {**data.incident, "state": "resolved", "held": None, "next_acts": ["close", "reopen"]}
    tree = html.Div(incident_detail("zh_CN", OPERATOR, data, TZ))
    acts = {i["action"] for i in component_ids(tree) if isinstance(i, dict) and i.get("type") == ids.ACT}
    assert acts.isdisjoint({"hold", "resume"}) and {"close", "reopen"} <= acts


def test_the_acts_drawn_are_the_ones_the_command_service_says() -> None:
    """The console keeps no copy of the state machine: it draws the incident's ``next``
    (an act it has no words for, or dispatch, which the teams tab does, is no button)."""
    data = sample()
    data.incident = {**data.incident, "next_acts": ["close", "dispatch", "teleport"]}
    tree = html.Div(incident_detail("en", OPERATOR, data, TZ))
    acts = {i["action"] for i in component_ids(tree) if isinstance(i, dict) and i.get("type") == ids.ACT}
    assert acts == {"close", "note", "plan", "merge"}
    data.incident = {**data.incident, "next_acts": []}  # an old command service: no buttons, no guesses
    tree = html.Div(incident_detail("en", OPERATOR, data, TZ))
    acts = {i["action"] for i in component_ids(tree) if isinstance(i, dict) and i.get("type") == ids.ACT}
    assert acts == {"note", "plan", "merge"}


def test_commanders_also_change_the_level() -> None:
    found = component_ids(html.Div(incident_detail("zh_CN", COMMANDER, sample(), TZ)))
    assert {"type": ids.ACT, "action": "level"} in found
    assert ids.detail_input("level") in found


def texts_of(tree: Any) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, Component):
            walk(getattr(node, "children", None))
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    walk(tree)
    return found


def test_recommendation_reasons_are_said_in_the_consoles_language_from_their_codes() -> None:
    zh = texts_of(html.Div(incident_detail("zh_CN", OPERATOR, sample(), TZ)))
    assert (
        "直线 3.2 公里 × 道路系数 1.3 ≈ 4.2 公里，时速 40 公里; 预计 6 分 14 秒 到达; 位置 35 秒 前上报;"
        " 路网 2.1 公里" in zh
    )
    assert "6 分 14 秒" in zh  # the ETA column from eta_s
    assert "3 支队伍不符合：状态：在途 × 2; 位置已过时（最后上报于 12 分 00 秒 前） × 1" in zh
    assert "政府实物储备：可用 300，足以满足; 调用准备时间 2 小时 00 分" in zh
    en = texts_of(html.Div(incident_detail("en", OPERATOR, sample(), TZ)))
    assert (
        "3.2 km straight line × road factor 1.3 ≈ 4.2 km at 40 km/h; ETA 6 min 14 s; Position 35 s old;"
        " 路网 2.1 公里" in en  # an unknown code keeps the command service's text
    )
    assert "6 min 14 s" in en and "20 min 00 s" in en
    assert "3 teams do not qualify: Status: En route × 2; Position stale (last 12 min 00 s ago) × 1" in en
    assert "Government stock: 300 available, covers all; Call-up lead time 2 h 00 min" in en
    assert not [x for x in en if "分" in x or "秒" in x or "状态" in x]  # no Chinese reasons left


def test_a_command_service_without_codes_still_shows_its_reasons() -> None:
    data = sample()
    candidate = data.recommendations["teams"][0]["candidates"][0]  # type: ignore[index]
    del candidate["reason_codes"]
    skipped = data.recommendations["teams"][1]["skipped"][0]  # type: ignore[index]
    del skipped["code"], skipped["params"]
    en = texts_of(html.Div(incident_detail("en", OPERATOR, data, TZ)))
    assert "（命令服务的中文）; …; …; 路网 2.1 公里" in en
    assert any("状态：在途 × 1" in x for x in en)


def test_a_closed_incident_has_nothing_to_click() -> None:
    data = sample()
    data.incident.update(state="closed", is_open=False)
    found = component_ids(html.Div(incident_detail("en", COMMANDER, data, TZ)))
    assert not [
        i
        for i in found
        if isinstance(i, dict) and i.get("type") in (ids.ACT, ids.DISPATCH, ids.RESERVE, ids.SPLIT, ids.TICK)
    ]


# --- wiring ---------------------------------------------------------------------------------


def test_every_callback_names_components_that_a_page_draws() -> None:
    settings = Settings(demo_mode=True, dashboard_streets_file=None)
    app = create_app(settings)
    console = Console.create(settings)
    inbox, side = deferred_panels("zh_CN", OPERATOR)
    pages = [
        login_page("zh_CN"),
        console_page(console, "zh_CN", OPERATOR, wall=False),
        console_page(console, "en", COMMANDER, wall=True),
        # the page the router draws, and what it draws once the map is up
        console_page(console, "zh_CN", OPERATOR, wall=False, deferred=True),
        html.Div(children=[inbox, *side]),
        field_page(console, "zh_CN", FIELD),
    ]
    drawn = {i for page in pages for i in component_ids(page) if isinstance(i, str)}
    drawn |= {i for i in component_ids(app.layout) if isinstance(i, str)}
    for callback in app.callback_map.values():
        for dep in [*callback["inputs"], *callback["state"]]:
            if not dep["id"].startswith("{"):
                assert dep["id"] in drawn, dep
    for key in app.callback_map:
        for part in key.strip(".").split("..."):
            ident = part.rsplit(".", 1)[0].lstrip(".")
            if ident and not ident.startswith("{"):
                assert ident in drawn, key


def test_the_desk_comes_without_its_panels_which_follow_the_map() -> None:
    """The router's desk carries the inbox and the side tabs as empty slots; what fills
    them once the map is up makes the whole desk again. What the first draw needs stays
    on the page: the queue, the KPI tiles, the map, the exercise banner and panel (one
    callback draws both). The wall is the same either way."""
    console = Console.create(Settings(demo_mode=True, dashboard_streets_file=None))
    for who in (OPERATOR, COMMANDER):
        whole = component_ids(console_page(console, "zh_CN", who, wall=False))
        first = component_ids(console_page(console, "zh_CN", who, wall=False, deferred=True))
        later = component_ids(deferred_panels("zh_CN", who))
        assert ids.INBOX_SLOT in first and ids.SIDE_SLOT in first
        slots = [ids.INBOX_SLOT, ids.SIDE_SLOT]
        assert sorted(map(str, whole)) == sorted(str(i) for i in [*first, *later] if i not in slots)
        assert {ids.QUEUE, ids.KPI_TILES, ids.MAP, ids.MAP_UP, ids.MAP_FILES, "exercise-banner"} <= set(
            map(str, first)
        )
        assert {ids.INBOX_PANEL, ids.SIDE_TABS, ids.DETAIL, ids.WARNING_PANEL} <= set(map(str, later))
    wall = console_page(console, "zh_CN", COMMANDER, wall=True)
    assert component_ids(wall) == component_ids(
        console_page(console, "zh_CN", COMMANDER, wall=True, deferred=True)
    )


def test_acknowledging_goes_to_the_command_services_field_route() -> None:
    fake = FakeCommand()
    r = field_client(fake).post(
        "/field/api/ack",
        headers={"Authorization": "Bearer team"},
        json={"id": "web-ack-1", "order_id": "ORD-1"},
    )
    assert r.status_code == 200
    assert [s for s in fake.seen if s[0] == "POST"] == [
        ("POST", "/field/orders/ORD-1/ack", {"id": "web-ack-1", "status": "accepted"})
    ]


def test_a_token_is_renewed_only_near_its_end_and_never_redraws_for_the_same_user() -> None:
    from dashboard.callbacks.auth import RENEW_BEFORE, identity, renewal_due

    now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    session = {"token": "t", "user_id": "commander1", "role": "commander", "team_id": None}
    assert not renewal_due({**session, "expires_at": (now + RENEW_BEFORE * 2).isoformat()}, now)
    assert renewal_due({**session, "expires_at": (now + RENEW_BEFORE / 2).isoformat()}, now)
    assert renewal_due({**session, "expires_at": "2026-11-23T20:01:00Z"}, now)  # the API's form
    assert renewal_due({**session, "expires_at": "garbled"}, now)  # unknown: ask the command service
    assert not renewal_due(None, now) and not renewal_due({"token": None}, now)
    assert identity({**session, "token": "other"}) == identity(session)
    assert identity({**session, "role": "admin"}) != identity(session)
    assert identity(None) is None
