"""Exercise mode (演练模式) on the console's server side, without a browser: who may
steer, purge and read reports through the dashboard (operators never; planners,
commanders and admins yes), that the exercise a browser names is never trusted, the
report proxy (the token in a header, never a URL), and the pure pieces (scope, the
start form, the banner)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
import redis
from dash import Dash
from dash.development.base_component import Component
from fastapi.testclient import TestClient

from dashboard.api import CommandApi
from dashboard.app import create_app
from dashboard.callbacks.exercise import new_exercise_body, scenario_files
from dashboard.context import Console
from dashboard.layout import exercise as ex
from dashboard.layout.console import console_page
from tests.dashboard.who import me_body, signed_in
from wuwang.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
ROLES = {
    "operator": signed_in("operator1", "operator", None, "值班员"),
    "commander": signed_in("commander1", "commander", None, "指挥长"),
    "planner": signed_in("planner1", "planner", None, "演练策划"),
    "admin": signed_in("admin1", "admin", None, "管理员"),
}
EXERCISE = {
    "id": "EX-1",
    "name": "危化品泄漏演练",
    "kind": "scenario",
    "source": "chem.yaml",
    "status": "running",
    "speed": 20.0,
    "created_by": "planner1",
    "created_at": "2026-11-23T11:00:00+00:00",
    "started_at": "2026-11-23T11:00:05+00:00",
    "finished_at": None,
    "sim_start": "2026-11-23T11:30:00+00:00",
    "sim_end": "2026-11-23T12:30:00+00:00",
    "sim_position": "2026-11-23T11:45:00+00:00",
    "stats": {"injects_sent": 3},
}
REPORT_HTML = "<!DOCTYPE html><html><body><h1>复盘报告</h1><h2>时间线</h2></body></html>"


class FakeCommand:
    """The command service, as far as exercise mode uses it; it records every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        body: Any = json.loads(request.content) if request.content else None
        path = request.url.path
        self.seen.append((request.method, path, body, token))
        if path == "/auth/me":
            who = ROLES.get(token)
            if who is None:
                return httpx2.Response(401, json={"detail": "invalid token"})
            return httpx2.Response(
                200,
                json=me_body(who.user_id, who.role, None, who.display_name),
            )
        if path == "/exercises" and request.method == "GET":
            return httpx2.Response(200, json=[EXERCISE])
        if path == "/exercises" and request.method == "POST":
            return httpx2.Response(201, json={**EXERCISE, "id": "EX-NEW", "status": "planned"})
        if path == "/exercises/EX-1" and request.method == "GET":
            return httpx2.Response(200, json=EXERCISE)
        if path == "/exercises/EX-1" and request.method == "DELETE":
            return httpx2.Response(
                200, json={"exercise": {**EXERCISE, "status": "purged"}, "deleted": {"incident": 2}}
            )
        if path == "/exercises/EX-1/control":
            return httpx2.Response(202, json={"exercise_id": "EX-1", "action": body["action"]})
        if path.endswith("/report.html") and not path.startswith("/exercises/EX-404"):
            return httpx2.Response(
                200, text=REPORT_HTML, headers={"content-type": "text/html; charset=utf-8"}
            )
        if path.endswith("/report.csv"):
            return httpx2.Response(200, text="at,kind\n1,opened\n", headers={"content-type": "text/csv"})
        return httpx2.Response(404, json={"detail": "no such exercise"})

    def calls(self, method: str, prefix: str) -> list[tuple[str, str, Any, str]]:
        return [s for s in self.seen if s[0] == method and s[1].startswith(prefix)]


@pytest.fixture
def fake() -> FakeCommand:
    return FakeCommand()


@pytest.fixture
def app(fake: FakeCommand) -> Dash:
    api = CommandApi("http://command.test", transport=httpx2.MockTransport(fake))
    return create_app(Settings(demo_mode=True, dashboard_streets_file=None), api=api)


@pytest.fixture
def client(app: Dash) -> Iterator[TestClient]:
    with TestClient(app.server) as c:
        yield c


# --- the report proxy -----------------------------------------------------------------------


def test_exercise_reports_are_refused_to_operators_and_passed_to_planners(
    client: TestClient, fake: FakeCommand
) -> None:
    r = client.get("/report/exercise/EX-1.html", headers={"Authorization": "Bearer operator"})
    assert r.status_code == 403
    assert fake.calls("GET", "/exercises/") == []  # not even asked
    for role in ("planner", "commander", "admin"):
        r = client.get("/report/exercise/EX-1.html", headers={"Authorization": f"Bearer {role}"})
        assert r.status_code == 200, role
        assert r.text == REPORT_HTML
        assert r.headers["content-type"].startswith("text/html")
        assert "content-disposition" not in r.headers  # opened in a tab
        assert r.headers["cache-control"] == "no-store"
    # the command service got the user's own token, never anyone else's
    assert [s[3] for s in fake.calls("GET", "/exercises/EX-1/report.html")] == [
        "planner",
        "commander",
        "admin",
    ]


def test_reports_download_as_files(client: TestClient, fake: FakeCommand) -> None:
    r = client.get("/report/exercise/EX-1.html?download=1", headers={"Authorization": "Bearer planner"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="after-action-exercise-EX-1.html"'
    r = client.get("/report/exercise/EX-1.csv", headers={"Authorization": "Bearer planner"})
    assert r.status_code == 200 and r.text.startswith("at,kind")
    assert r.headers["content-disposition"] == 'attachment; filename="after-action-exercise-EX-1.csv"'


def test_reports_need_a_real_token_in_the_header(client: TestClient, fake: FakeCommand) -> None:
    assert client.get("/report/exercise/EX-1.html").status_code == 401
    assert client.get("/report/exercise/EX-1.html?token=planner").status_code == 401  # never from a URL
    assert (
        client.get("/report/exercise/EX-1.html", headers={"Authorization": "Bearer forged"}).status_code
        == 401
    )
    r = client.get("/report/exercise/EX%3B1.html", headers={"Authorization": "Bearer planner"})
    assert r.status_code == 404
    assert fake.calls("GET", "/exercises/") == []


def test_incident_reports_are_for_every_console_user_and_the_command_service_decides(
    client: TestClient, fake: FakeCommand
) -> None:
    r = client.get("/report/incident/INC-20261123-0001.html", headers={"Authorization": "Bearer operator"})
    assert r.status_code == 200
    assert fake.calls("GET", "/incidents/INC-20261123-0001/report.html")[0][3] == "operator"
    r = client.get("/report/exercise/EX-404.html", headers={"Authorization": "Bearer planner"})
    assert r.status_code == 404  # the command service's answer, passed on


# --- callbacks through Dash's own endpoint ----------------------------------------------------


def callback_key(app: Dash, *outputs: str) -> str:
    """The callback_map key whose outputs include all of ``outputs`` ("id.prop")."""
    key: str
    for key in app.callback_map:
        plain = re.sub(r"@[0-9a-f]+", "", key)
        if all(o in plain for o in outputs):
            return key
    raise KeyError(outputs)


def fire(
    client: TestClient,
    app: Dash,
    key: str,
    values: dict[str, Any],
    changed: str,
    *,
    pattern: dict[str, list[tuple[dict[str, Any], Any]]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run one server callback as the browser would: ``values`` by "id.prop"; pattern
    inputs (ALL) by their pattern's id string as a list of (id, value)."""
    spec = app.callback_map[key]

    def entry(dep: dict[str, Any]) -> Any:
        ident, prop = dep["id"], dep["property"]
        if ident.startswith("{"):
            return [{"id": i, "property": prop, "value": v} for i, v in (pattern or {}).get(ident, [])]
        return {"id": ident, "property": prop, "value": values.get(f"{ident}.{prop}")}

    outputs = []
    for part in key.strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        outputs.append({"id": ident, "property": prop})
    payload = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": [entry(d) for d in spec["inputs"]],
        "state": [entry(d) for d in spec["state"]],
        "changedPropIds": [changed],
    }
    r = client.post("/_dash-update-component", json=payload)
    return r.status_code, (r.json() if r.status_code == 200 and r.content else {})


def steer(
    client: TestClient,
    app: Dash,
    role: str,
    *,
    action: str | None = None,
    button: str | None = None,
    **extra: Any,
) -> tuple[int, dict[str, Any]]:
    key = callback_key(app, "exercise-feedback.children", "exercise-tick.data")
    values = {
        "session.data": {"token": role},
        "exercise-watch.data": extra.get("watch", "EX-1"),
        "exercise-seek.value": extra.get("seek", 600),
        "exercise-speed.value": extra.get("speed", 50),
        "exercise-tick.data": 0,
        "lang.data": "en",
        "exercise-seek-button.n_clicks": 1 if button == ex.SEEK_BUTTON else 0,
        "exercise-speed-button.n_clicks": 1 if button == ex.SPEED_BUTTON else 0,
        "exercise-purge-confirm.submit_n_clicks": 1 if button == ex.PURGE_CONFIRM else None,
    }
    pat = '{"action":["ALL"],"type":"ex-control"}'
    buttons = [
        ({"type": ex.CONTROL, "action": a}, 1 if a == action else 0) for a in ("play", "pause", "stop")
    ]
    changed = (
        json.dumps({"action": action, "type": ex.CONTROL}, separators=(",", ":")) + ".n_clicks"
        if action
        else f"{button}.{'submit_n_clicks' if button == ex.PURGE_CONFIRM else 'n_clicks'}"
    )
    return fire(client, app, key, values, changed, pattern={pat: buttons})


def test_operators_cannot_steer_or_purge_an_exercise_through_the_console(
    client: TestClient, app: Dash, fake: FakeCommand
) -> None:
    assert steer(client, app, "operator", action="pause")[0] == 204  # nothing updated
    assert steer(client, app, "operator", button=ex.SEEK_BUTTON)[0] == 204
    assert steer(client, app, "operator", button=ex.PURGE_CONFIRM)[0] == 204
    assert steer(client, app, "forged", action="play")[0] == 204
    assert fake.calls("POST", "/exercises") == [] and fake.calls("DELETE", "/exercises") == []


def test_planners_play_pause_seek_set_the_speed_and_purge(
    client: TestClient, app: Dash, fake: FakeCommand
) -> None:
    code, out = steer(client, app, "planner", action="pause")
    assert code == 200
    assert "pause EX-1" in json.dumps(out)
    steer(client, app, "planner", button=ex.SEEK_BUTTON, seek=900)
    steer(client, app, "commander", button=ex.SPEED_BUTTON, speed=80)
    code, out = steer(client, app, "planner", button=ex.SPEED_BUTTON, speed=500)  # refused here
    assert "between 1 and 100" in json.dumps(out)
    assert [(s[2], s[3]) for s in fake.calls("POST", "/exercises/EX-1/control")] == [
        ({"action": "pause"}, "planner"),
        ({"action": "seek", "value": 900.0}, "planner"),
        ({"action": "speed", "value": 80.0}, "commander"),
    ]
    code, out = steer(client, app, "planner", button=ex.PURGE_CONFIRM)
    assert code == 200 and [s[3] for s in fake.calls("DELETE", "/exercises/EX-1")] == ["planner"]
    assert out["response"]["exercise-watch"]["data"] is None  # no longer watched


def test_an_exercise_named_by_the_browser_is_checked_first(
    client: TestClient, app: Dash, fake: FakeCommand
) -> None:
    code, out = steer(client, app, "planner", action="play", watch="EX-1/../../kpis")
    assert code == 200 and fake.calls("POST", "/exercises") == []
    key = next(
        k
        for k in app.callback_map
        if "exercise-watch.data" in k and "ex-choose" in json.dumps(app.callback_map[k]["inputs"])
    )
    pat = '{"id":["ALL"],"type":"ex-choose"}'
    values = {"session.data": {"token": "planner"}, "lang.data": "en", "exercise-unwatch.n_clicks": 0}
    code, out = fire(
        client,
        app,
        key,
        values,
        '{"id":"EX-404","type":"ex-choose"}.n_clicks',
        pattern={pat: [({"type": ex.CHOOSE, "id": "EX-404"}, 1)]},
    )
    assert code == 200 and "No such exercise" in json.dumps(out)
    code, out = fire(
        client,
        app,
        key,
        values,
        '{"id":"EX-1","type":"ex-choose"}.n_clicks',
        pattern={pat: [({"type": ex.CHOOSE, "id": "EX-1"}, 1)]},
    )
    assert out["response"]["exercise-watch"]["data"] == "EX-1"
    values["session.data"] = {"token": "operator"}
    code, _ = fire(
        client,
        app,
        key,
        values,
        '{"id":"EX-1","type":"ex-choose"}.n_clicks',
        pattern={pat: [({"type": ex.CHOOSE, "id": "EX-1"}, 1)]},
    )
    assert code == 204


def refresh(client: TestClient, app: Dash, role: str, watch: Any) -> tuple[int, dict[str, Any]]:
    key = callback_key(app, "exercise-banner.children", "exercise-scope.data")
    values = {
        "session.data": {"token": role},
        "exercise-watch.data": watch,
        "lang.data": "zh_CN",
        "exercise-scope.data": None,
        "exercise-tick.data": 0,
    }
    return fire(client, app, key, values, "exercise-watch.data")


def test_the_banner_and_the_scope_follow_the_role(client: TestClient, app: Dash, fake: FakeCommand) -> None:
    code, out = refresh(client, app, "planner", "EX-1")
    assert code == 200
    r = out["response"]
    assert r["exercise-banner"]["hidden"] is False
    assert "演练 EXERCISE" in json.dumps(r["exercise-banner"]["children"], ensure_ascii=False)
    assert "危化品泄漏演练" in json.dumps(r["exercise-banner"]["children"], ensure_ascii=False)
    assert r["exercise-scope"]["data"] == {"mode": "one", "id": "EX-1"}
    # a planner naming an exercise the command service does not give them follows the running one,
    # but steers nothing until choosing it
    r = refresh(client, app, "planner", "EX-404")[1]["response"]
    assert r["exercise-scope"]["data"] == {"mode": "one", "id": "EX-1"}
    assert r["exercise-controls"]["style"] == {"display": "none"}
    EXERCISE["status"] = "finished"
    try:
        r = refresh(client, app, "planner", None)[1]["response"]
    finally:
        EXERCISE["status"] = "running"
    assert r["exercise-scope"]["data"] == {"mode": "all", "id": None}  # nothing running: every exercise
    # an admin watching one is in exercise mode; a commander steers it but stays live
    assert refresh(client, app, "admin", "EX-1")[1]["response"]["exercise-scope"]["data"]["id"] == "EX-1"
    r = refresh(client, app, "commander", "EX-1")[1]["response"]
    assert r["exercise-banner"]["hidden"] is True
    assert r["exercise-scope"]["data"] == {"mode": "live", "id": None}
    # operators: nothing at all, not even a question about the exercise
    before = len(fake.calls("GET", "/exercises"))
    assert refresh(client, app, "operator", "EX-1")[0] == 204
    assert len(fake.calls("GET", "/exercises")) == before


# --- pure pieces ------------------------------------------------------------------------------


def test_kpis_in_exercise_mode_ask_for_the_watched_exercise_only_for_roles_that_may_watch() -> None:
    one = {"mode": "one", "id": "EX-1"}
    assert ex.kpi_exercise(ROLES["planner"], one) == (True, "EX-1")
    assert ex.kpi_exercise(ROLES["planner"], {"mode": "all", "id": None}) == (True, None)
    assert ex.kpi_exercise(ROLES["planner"], {"mode": "one", "id": "EX 1; drop"}) == (True, None)
    assert ex.kpi_exercise(ROLES["admin"], one) == (True, "EX-1")
    assert ex.kpi_exercise(ROLES["admin"], None) == (False, None)
    assert ex.kpi_exercise(ROLES["operator"], one) == (False, None)  # a forged scope changes nothing
    assert ex.kpi_exercise(ROLES["commander"], one) == (False, None)


def test_the_start_form_makes_the_documented_bodies() -> None:
    assert new_exercise_body("scenario", "chem.yaml", None, None, None, 20, TZ) == {
        "kind": "scenario",
        "scenario": "chem.yaml",
        "speed": 20.0,
    }
    body = new_exercise_body("replay", None, "", "2026-11-23 19:30", "2026-11-23 21:30", "100", TZ)
    assert body == {
        "kind": "replay",
        "speed": 100.0,
        "start": "2026-11-23T19:30:00+08:00",
        "end": "2026-11-23T21:30:00+08:00",
    }
    assert new_exercise_body("replay", None, "IMP-1", None, None, 5, TZ) == {
        "kind": "replay",
        "speed": 5.0,
        "dataset_id": "IMP-1",
    }
    assert new_exercise_body("scenario", "x.yaml", None, None, None, 101, TZ) == "exercise.err_speed"
    assert new_exercise_body("scenario", None, None, None, None, 10, TZ) == "exercise.err_scenario"
    assert (
        new_exercise_body("replay", None, "", "2026-11-23 21:30", "2026-11-23 19:30", 10, TZ)
        == "exercise.err_window"
    )
    assert (
        new_exercise_body("replay", None, "", "yesterday", "2026-11-23 19:30", 10, TZ) == "exercise.err_time"
    )


def test_position_and_span_come_from_the_exercise_clock() -> None:
    assert ex.span_of(EXERCISE) == (900.0, 3600.0)
    assert ex.hms(900) == "00:15:00" and ex.hms(None) == "—"
    assert ex.span_of({"status": "planned"}) == (None, None)


def test_scenario_files_are_listed_with_their_names(tmp_path: Any) -> None:
    (tmp_path / "a.yaml").write_text("name: 化工园区泄漏\ninjects: []\n", encoding="utf-8")
    (tmp_path / "b.yml").write_text("injects: []\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    assert scenario_files(tmp_path) == [
        {"file": "a.yaml", "name": "化工园区泄漏"},
        {"file": "b.yml", "name": "b"},
    ]


def ids_of(component: Any) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Component):
            ident = getattr(node, "id", None)
            if isinstance(ident, str):
                found.add(ident)
            walk(getattr(node, "children", None))
        elif isinstance(node, (list, tuple)):
            for n in node:
                walk(n)

    walk(component)
    return found


def find(node: Any, ident: str) -> Any:
    if isinstance(node, Component):
        if getattr(node, "id", None) == ident:
            return node
        return find(getattr(node, "children", None), ident)
    if isinstance(node, (list, tuple)):
        for n in node:
            got = find(n, ident)
            if got is not None:
                return got
    return None


def test_only_exercise_roles_get_the_tab_and_only_planners_start_with_the_banner() -> None:
    settings = Settings(demo_mode=True, dashboard_streets_file=None)
    console = Console.create(settings)
    for role, tab, banner in (
        ("operator", False, False),
        ("commander", True, False),
        ("planner", True, True),
        ("admin", True, False),
    ):
        page = console_page(console, "zh_CN", ROLES[role], wall=False)
        text = json.dumps(page.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)  # type: ignore[no-untyped-call]
        assert ('"value": "exercises"' in text) is tab, role
        shown = find(page, ex.BANNER)
        assert shown is not None and (not shown.hidden) is banner, role
        assert {ex.BANNER, ex.SCOPE, ex.WATCH, ex.PANEL, ex.SEEK}.issubset(ids_of(page)), role
        wall = console_page(console, "zh_CN", ROLES[role], wall=True)
        assert {ex.BANNER, ex.PANEL, ex.SEEK}.issubset(ids_of(wall)), role


def test_a_report_opens_in_a_tab_by_a_one_time_ticket_never_the_token(
    client: TestClient, fake: FakeCommand
) -> None:
    r = client.post(
        "/report/ticket",
        headers={"Authorization": "Bearer operator"},
        json={"path": "/report/exercise/EX-1.html"},
    )
    assert r.status_code == 403  # operators get no ticket for an exercise report
    r = client.post(
        "/report/ticket", headers={"Authorization": "Bearer planner"}, json={"path": "/report/../kpis"}
    )
    assert r.status_code == 422
    r = client.post(
        "/report/ticket",
        headers={"Authorization": "Bearer planner"},
        json={"path": "/report/exercise/EX-1.html"},
    )
    assert r.status_code == 200
    url = r.json()["url"]
    assert url.startswith("/report/exercise/EX-1.html?ticket=") and "planner" not in url
    page = client.get(url)
    assert page.status_code == 200 and page.text == REPORT_HTML
    # its own policy: the report's inline plots run, sandboxed, and nothing is fetched
    csp = page.headers["content-security-policy"]
    assert "sandbox allow-scripts" in csp and "connect-src 'none'" in csp and "'self'" not in csp
    assert client.get(url).status_code == 401  # once only
    # a ticket is for its own report only
    r = client.post(
        "/report/ticket",
        headers={"Authorization": "Bearer planner"},
        json={"path": "/report/exercise/EX-1.csv"},
    )
    other = r.json()["url"].replace("EX-1.csv", "EX-2.csv")
    assert client.get(other).status_code == 401
    r = client.post(
        "/report/ticket",
        headers={"Authorization": "Bearer planner"},
        json={"path": "/report/exercise/EX-1.html?download=1"},
    )
    download = client.get(r.json()["url"])
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]


def test_tickets_expire() -> None:
    from dashboard.report_proxy import MemoryTickets

    async def check() -> None:
        tickets = MemoryTickets(ttl_s=-1)
        path = "/report/exercise/EX-1.html"
        assert await tickets.take(await tickets.issue("tok", path), path) is None
        tickets = MemoryTickets(size=2)
        first = await tickets.issue("a", "/p")
        await tickets.issue("b", "/p")
        await tickets.issue("c", "/p")
        assert await tickets.take(first, "/p") is None  # pushed out: the store stays bounded

    asyncio.run(check())


def test_tickets_in_redis_are_one_time_path_bound_and_expire(redis_url: str) -> None:
    from dashboard.report_proxy import TICKET_KEY, RedisTickets

    async def check() -> None:
        tickets = RedisTickets(redis_url)
        path = "/report/incident/INC-1.html"
        ticket = await tickets.issue("tok", path)
        assert 0 < redis.Redis.from_url(redis_url).pttl(TICKET_KEY + ticket) <= 60_000  # Redis expires it
        assert await RedisTickets(redis_url).take(ticket, path) == "tok"  # another process takes it
        assert await tickets.take(ticket, path) is None  # once
        assert await tickets.take(await tickets.issue("tok", path), "/report/incident/INC-2.html") is None
        gone = await RedisTickets(redis_url, ttl_s=0.001).issue("tok", path)
        await asyncio.sleep(0.05)
        assert await tickets.take(gone, path) is None

    asyncio.run(check())
