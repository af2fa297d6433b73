"""The grid closed loop (网格化管理) through the API, on real PostgreSQL and Redis.

Reports arrive on ingest's Redis stream (push_alarm) or by hand; cases whose times lie in
the past are built through the domain (discover/advance with an ``at``) and stored with
the service's own store, never by writing rows.
"""

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import orjson
import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from command.domain import grid
from command.domain.grid import GridAction, GridCase
from command.domain.vocabulary import Role
from command.services import grid as grid_service
from command.users import DEMO_PASSWORD, NewUser
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM, add_user
from tests.command.test_incidents_api import push_alarm, wait_for
from wuwang.endpoints import Endpoints
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

GRID_WORKER = "gw-zhang"  # a field user of FIELD_TEAM whose id is not the team's


@pytest.fixture
def redis_url(endpoints: Endpoints) -> Iterator[str]:
    """Redis database 12 for this module. Every test session on the machine shares the
    local Redis, and each test of any session empties database 9 (tests/conftest.py) —
    streams and consumer groups included — so a concurrent session could swallow the
    reports these tests push."""
    url = endpoints.redis_url.rsplit("/", 1)[0] + "/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    """The command service's settings with an alarm stream of this test's own."""
    return make_settings(account="command", alarm_stream=f"test:grid-alarms:{uuid4().hex}")


def _cases(client: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    r = client.get(f"/grid/cases{query}", headers=headers)
    assert r.status_code == 200, r.text
    cases: list[dict[str, Any]] = r.json()
    return cases


def _denied(settings: Settings, action: str) -> list[tuple[str, str | None]]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        rows = conn.execute(
            "SELECT actor, object_id FROM audit_log WHERE action = %s AND outcome = 'denied' ORDER BY id",
            (action,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _roles(case: GridCase) -> list[str | None]:
    """The console role behind each step of a seeded case (discovery by a device)."""
    return [
        None if s.action is GridAction.DISCOVER else "field" if s.action is GridAction.HANDLE else "operator"
        for s in case.steps
    ]


def _store(settings: Settings, cases: Sequence[GridCase], exercise_id: str | None = None) -> None:
    async def run() -> None:
        async with (
            await psycopg.AsyncConnection.connect(settings.shared.database_url or "") as conn,
            conn.transaction(),
        ):
            for case in cases:
                await grid_service.store_case(
                    conn,
                    case,
                    roles=_roles(case),
                    source="community/seed",
                    actor="test:seed",
                    exercise_id=exercise_id,
                )

    asyncio.run(run())


def _loop(
    case_id: str,
    category: str,
    discovered: datetime,
    *,
    file_after: timedelta | None = None,
    dispatch_after: timedelta | None = None,
    handle_after: timedelta | None = None,
    close_after: timedelta | None = None,
    dismiss_after: timedelta | None = None,
    cell: str = "r1281c4485",
) -> GridCase:
    """A case through the domain, each step at discovered + offset (close = verify + close)."""
    case = grid.discover(
        case_id,
        category,
        "GW-r1282c4485",
        discovered,
        description="seeded",
        lat=32.04,
        lon=112.14,
        grid_cell_id=cell,
    )
    if dismiss_after is not None:
        return grid.advance(case, "dismiss", "operator1", discovered + dismiss_after, note="重复上报")
    steps: list[tuple[timedelta | None, str, str, str | None]] = [
        (file_after, "file", "operator1", None),
        (dispatch_after, "dispatch", "operator1", FIELD_TEAM),
        (handle_after, "handle", GRID_WORKER, None),
        (close_after, "verify", "operator2", None),
        (close_after, "close", "operator2", None),
    ]
    for offset, action, by, assignee in steps:
        if offset is None:
            break
        case = grid.advance(case, action, by, discovered + offset, assignee=assignee)
    return case


# --- reports from the stream ----------------------------------------------------------


def test_grid_report_on_the_stream_becomes_one_case_not_an_incident(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    token = op["Authorization"].removeprefix("Bearer ")
    grid_alarm, fire_alarm = f"community/GW-r1#g-{uuid4().hex[:8]}", f"community/GW-r1#f-{uuid4().hex[:8]}"
    with command_client.websocket_connect(f"/ws?token={token}") as ws:
        snapshot = orjson.loads(ws.receive_text())
        assert snapshot["type"] == "snapshot"
        assert snapshot["grid_events"] == []
        push_alarm(command_settings, grid_alarm, kind="report", category="fire_lane_blocked")
        push_alarm(command_settings, grid_alarm, kind="report", category="fire_lane_blocked")
        # A report of a fire is an emergency: it still goes to the incidents.
        push_alarm(command_settings, fire_alarm, kind="report", category="fire", lat=32.30)
        seen: list[tuple[str, str]] = []
        while ("grid_event", grid_alarm) not in seen:
            change = orjson.loads(ws.receive_text())
            seen.append((change["type"], change["data"].get("source_alarm_id") or change["id"]))
    # Both published once the intake committed: the alarm, then the case.
    assert seen.index(("alarm", grid_alarm)) < seen.index(("grid_event", grid_alarm))

    def fire_incident() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = command_client.get("/incidents", headers=op).json()
        return [i for i in listed if fire_alarm in {s["alarm_id"] for s in i["sources"]}]

    # The stream is consumed in order: the fire report came last, so both grid copies are in.
    assert [s["alarm_id"] for s in wait_for(fire_incident)[0]["sources"]] == [fire_alarm]
    cases = [c for c in _cases(command_client, op) if c["source_alarm_id"] == grid_alarm]
    assert len(cases) == 1
    case = cases[0]
    assert case["stage"] == "discovered" and case["version"] == 1
    assert case["category"] == "fire_lane_blocked" and case["category_zh"] == "消防通道堵塞"
    assert case["reporter"] == "police/sys110"  # push_alarm's source: its details name no reporter
    assert case["allowed_actions"] == ["file", "dismiss"]
    assert case["overdue"] is False
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        assert conn.execute(
            "SELECT count(*) FROM grid_case WHERE source_alarm_id = %s", (grid_alarm,)
        ).fetchone() == (1,)
        assert conn.execute(
            "SELECT count(*) FROM alarm_inbox WHERE alarm_id = ANY(%s)", ([grid_alarm, fire_alarm],)
        ).fetchone() == (2,)
        assert conn.execute(
            "SELECT count(*) FROM incident_source WHERE alarm_id = %s", (grid_alarm,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT actor, action FROM audit_log WHERE object_id = %s", (case["id"],)
        ).fetchall() == [("system:grid_intake", "grid.discover")]


# --- the loop ---------------------------------------------------------------------------


def test_the_whole_loop_with_roles_versions_and_separation_of_duties(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    add_user(
        command_settings.shared.database_url or "",
        NewUser(GRID_WORKER, "网格员 张敏", Role.FIELD, DEMO_PASSWORD, team_id=FIELD_TEAM),
    )
    op1, op2, gw, other = login("operator1"), login("operator2"), login(GRID_WORKER), login(OTHER_TEAM)

    def step(case: dict[str, Any], action: str, who: dict[str, str], **extra: Any) -> Any:
        return command_client.post(
            f"/grid/cases/{case['id']}/{action}",
            json={"expected_version": case["version"], **extra},
            headers=who,
        )

    # 发现: a grid worker reports from the field page; a retry with the same report_id is one case.
    report = {
        "category": "garbage_overflow",
        "description": "垃圾桶满溢",
        "lat": 32.042,
        "lon": 112.144,
        "report_id": "phone-0001",
    }
    r = command_client.post("/grid/cases", json=report, headers=gw)
    assert r.status_code == 201, r.text
    case = r.json()
    again = command_client.post("/grid/cases", json=report, headers=gw)
    assert again.status_code == 200 and again.json()["id"] == case["id"]
    assert case["reporter"] == GRID_WORKER and case["grid_cell_id"] == "r1281c4485"
    # A field user may not file (立案): the command centre does.
    assert step(case, "file", gw).status_code == 403
    r = step(case, "file", op1)
    assert r.status_code == 200, r.text
    filed = r.json()
    assert filed["stage"] == "filed" and filed["version"] == 2
    assert filed["deadline"] is not None
    # The same act on a stale version: 409.
    assert step(case, "file", op1).status_code == 409
    # 派遣 needs an assignee (the domain's reason, 422); then to the team.
    missing = step(filed, "dispatch", op1)
    assert missing.status_code == 422 and "assignee" in missing.json()["detail"]
    dispatched = step(filed, "dispatch", op1, assignee=FIELD_TEAM).json()
    assert dispatched["stage"] == "dispatched" and dispatched["assignee"] == FIELD_TEAM
    # 处置: only the assignee's people — another team is refused, a member of the team may.
    assert step(dispatched, "handle", other).status_code == 403
    assert command_client.get(f"/grid/cases/{case['id']}", headers=other).status_code == 403
    handled = step(dispatched, "handle", gw, note="已清运").json()
    assert handled["stage"] == "handled" and handled["handled_by"] == [GRID_WORKER]
    # 核查不通过: back for rework, with a reason.
    assert step(handled, "reject", op2).status_code == 422  # no reason
    rework = step(handled, "reject", op2, note="周边仍有散落垃圾").json()
    assert rework["stage"] == "dispatched" and rework["reworks"] == 1
    # The command centre records the second handling on the team's behalf (代录) …
    again_handled = step(rework, "handle", op1, note="队伍电话报告已处理").json()
    assert again_handled["handled_by"] == [GRID_WORKER, "operator1"]
    # … so operator1 is a handler and may not verify (separation of duties: 422, audited).
    self_check = step(again_handled, "verify", op1)
    assert self_check.status_code == 422
    assert "verification must be done by someone else" in self_check.json()["detail"]
    assert step(again_handled, "verify", gw).status_code == 403  # field users never verify
    verified = step(again_handled, "verify", op2).json()
    assert verified["stage"] == "verified" and verified["on_time"] is True
    closed = step(verified, "close", op1).json()
    assert closed["stage"] == "closed" and closed["is_open"] is False and closed["allowed_actions"] == []
    assert step(closed, "file", op1).status_code == 422  # final

    detail = command_client.get(f"/grid/cases/{case['id']}", headers=gw)  # the reporter may follow it
    assert detail.status_code == 200
    steps = detail.json()["steps"]
    assert [(s["action"], s["by"], s["by_role"]) for s in steps] == [
        ("discover", GRID_WORKER, "field"),
        ("file", "operator1", "operator"),
        ("dispatch", "operator1", "operator"),
        ("handle", GRID_WORKER, "field"),
        ("reject", "operator2", "operator"),
        ("handle", "operator1", "operator"),
        ("verify", "operator2", "operator"),
        ("close", "operator1", "operator"),
    ]
    assert [s["seq"] for s in steps] == list(range(1, 9))
    assert _cases(command_client, op1) == []  # the open list
    assert [c["id"] for c in _cases(command_client, op1, "?stage=closed")] == [case["id"]]
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        audited = conn.execute(
            "SELECT actor, action, outcome FROM audit_log WHERE object_id = %s ORDER BY id", (case["id"],)
        ).fetchall()
    # The record is append-only.
    with (
        psycopg.connect(command_settings.shared.database_url or "") as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("UPDATE grid_case_step SET note = 'x' WHERE case_id = %s", (case["id"],))
    ok = [(a, b) for a, b, c in audited if c == "ok"]
    assert ok == [
        (GRID_WORKER, "grid.discover"),
        ("operator1", "grid.file"),
        ("operator1", "grid.dispatch"),
        (GRID_WORKER, "grid.handle"),
        ("operator2", "grid.reject"),
        ("operator1", "grid.handle"),
        ("operator2", "grid.verify"),
        ("operator1", "grid.close"),
    ]
    denied = [(a, b) for a, b, c in audited if c == "denied"]
    assert (OTHER_TEAM, "grid.handle") in denied
    assert (OTHER_TEAM, "grid.read") in denied
    assert ("operator1", "grid.verify") in denied  # the refused self-verification


# --- refusals ----------------------------------------------------------------------------


def test_role_and_scope_refusals_are_403_and_audited(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, planner, field, admin = login("operator1"), login("planner1"), login(FIELD_TEAM), login("admin1")
    live = {"category": "illegal_parking", "description": "占用盲道", "lat": 32.04, "lon": 112.14}
    drill = {**live, "exercise_id": "EX-2026-11"}
    assert command_client.post("/grid/cases", json=live, headers=planner).status_code == 403
    assert command_client.post("/grid/cases", json=drill, headers=op).status_code == 403
    assert command_client.post("/grid/cases", json=drill, headers=field).status_code == 403
    ex = command_client.post("/grid/cases", json=drill, headers=planner).json()
    real = command_client.post("/grid/cases", json=live, headers=op).json()
    assert (
        command_client.post("/grid/cases", json={**live, "category": "fire"}, headers=op).status_code == 422
    )
    # Planners run the loop on exercise cases only; operators on live ones only.
    assert (
        command_client.post(
            f"/grid/cases/{real['id']}/file", json={"expected_version": 1}, headers=planner
        ).status_code
        == 403
    )
    assert (
        command_client.post(
            f"/grid/cases/{ex['id']}/file", json={"expected_version": 1}, headers=op
        ).status_code
        == 403
    )
    assert (
        command_client.post(
            f"/grid/cases/{ex['id']}/file", json={"expected_version": 1}, headers=planner
        ).status_code
        == 200
    )
    assert [c["id"] for c in _cases(command_client, planner)] == [ex["id"]]
    assert [c["id"] for c in _cases(command_client, op)] == [real["id"]]
    assert _cases(command_client, field) == []  # neither reported by nor dispatched to this team
    assert command_client.get("/grid/cases?exercise_id=EX-2026-11", headers=op).status_code == 403
    assert [c["id"] for c in _cases(command_client, admin, "?exercise_id=EX-2026-11")] == [ex["id"]]
    # Monitoring is the command centre's.
    assert command_client.get("/grid/kpis", headers=field).status_code == 403
    assert command_client.get("/grid/overdue", headers=field).status_code == 403
    assert (
        command_client.post(
            f"/grid/cases/{real['id']}/dispatch",
            json={"expected_version": 1, "assignee": FIELD_TEAM},
            headers=field,
        ).status_code
        == 403
    )
    assert command_client.get("/grid/cases/GC-nope", headers=op).status_code == 404
    assert command_client.get("/grid/cases", headers={}).status_code == 401
    assert _denied(command_settings, "grid.discover") == [
        ("planner1", None),
        ("operator1", None),
        (FIELD_TEAM, None),
    ]
    assert _denied(command_settings, "grid.file") == [("planner1", real["id"]), ("operator1", ex["id"])]
    assert _denied(command_settings, "grid.list") == [("operator1", None)]
    assert _denied(command_settings, "grid.kpis") == [(FIELD_TEAM, None)]
    assert _denied(command_settings, "grid.overdue") == [(FIELD_TEAM, None)]
    assert _denied(command_settings, "grid.dispatch") == [(FIELD_TEAM, None)]


# --- SLA -----------------------------------------------------------------------------------


def test_overdue_cases_built_in_the_past(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, gw = login("operator1"), login(FIELD_TEAM)
    now = datetime.now(UTC)
    h = timedelta(hours=1)
    late = _loop("GC-T-LATE", "fire_lane_blocked", now - 5 * h, file_after=h / 6, dispatch_after=h / 3)
    unfiled = _loop("GC-T-UNFILED", "street_vending", now - 3 * h, cell="r1282c4486")
    in_time = _loop("GC-T-OK", "garbage_overflow", now - 2 * h, file_after=h, dispatch_after=h)
    waiting = _loop(
        "GC-T-HANDLED",
        "missing_manhole_cover",
        now - 6 * h,
        file_after=h / 6,
        dispatch_after=h / 3,
        handle_after=5 * h,
    )  # late, but handled: not overdue
    _store(command_settings, [late, unfiled, in_time, waiting])
    _store(command_settings, [_loop("GC-T-DRILL", "street_vending", now - 3 * h)], exercise_id="EX-1")

    r = command_client.get("/grid/overdue", headers=op)
    assert r.status_code == 200, r.text
    rows = r.json()
    # Most overdue first: 2 h 50 min past filed + 2 h, then 2 h past discovery + 1 h unfiled.
    assert [x["case_id"] for x in rows] == ["GC-T-LATE", "GC-T-UNFILED"]
    assert rows[0]["stage"] == "dispatched" and rows[0]["assignee"] == FIELD_TEAM
    assert abs(rows[0]["overdue_by_s"] - (5 * 3600 - 600 - 7200)) < 60
    assert abs(rows[1]["overdue_by_s"] - (3 * 3600 - 3600)) < 60
    assert "overdue by 17" in rows[0]["description"]  # 170 min
    assert {c["id"] for c in _cases(command_client, op, "?overdue=true")} == {"GC-T-LATE", "GC-T-UNFILED"}
    assert {c["id"] for c in _cases(command_client, op, "?overdue=false")} == {"GC-T-OK", "GC-T-HANDLED"}
    by_cell = _cases(command_client, op, "?overdue=true&grid_cell_id=r1281c4485")
    assert [c["id"] for c in by_cell] == ["GC-T-LATE"]
    assert [c["id"] for c in _cases(command_client, op)][:2] == ["GC-T-LATE", "GC-T-UNFILED"]
    # The dispatched team handles it (late): no longer overdue, and not on time.
    case = command_client.get("/grid/cases/GC-T-LATE", headers=gw).json()["case"]
    assert case["overdue"] is True
    r = command_client.post(
        "/grid/cases/GC-T-LATE/handle", json={"expected_version": case["version"]}, headers=gw
    )
    assert r.status_code == 200, r.text
    assert r.json()["overdue"] is False
    assert [x["case_id"] for x in command_client.get("/grid/overdue", headers=op).json()] == ["GC-T-UNFILED"]


# --- KPIs ----------------------------------------------------------------------------------


def test_kpis_match_hand_computed_numbers(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, planner = login("operator1"), login("planner1")
    now = datetime.now(UTC)
    h, d = timedelta(hours=1), timedelta(days=1)
    quick = _loop(
        "GC-K1",
        "street_vending",
        now - 10 * d,
        file_after=h / 2,
        dispatch_after=h,
        handle_after=2 * h,
        close_after=4 * h,
    )  # 4 h to close; handled 1.5 h after filing (SLA 4 h)
    slow = _loop(
        "GC-K2",
        "illegal_parking",
        now - 9 * d,
        file_after=h,
        dispatch_after=h,
        handle_after=5 * h,
        close_after=8 * h,
    )  # 8 h; handled 4 h after filing (SLA 2 h): late
    stuck = _loop(
        "GC-K3", "material_piling", now - 8 * d, file_after=h, dispatch_after=2 * h
    )  # open, overdue
    dismissed = _loop("GC-K4", "noise_nuisance", now - 7 * d, dismiss_after=h / 2)
    repaired = _loop(
        "GC-K5",
        "damaged_facility",
        now - 5 * d,
        file_after=h,
        dispatch_after=2 * h,
        handle_after=10 * h,
        close_after=12 * h,
    )  # 12 h; SLA 48 h: on time
    old = _loop(
        "GC-K6",
        "street_vending",
        now - 40 * d,
        file_after=h,
        dispatch_after=h,
        handle_after=2 * h,
        close_after=3 * h,
    )  # filed before the period: not counted
    _store(command_settings, [quick, slow, stuck, dismissed, repaired, old])
    _store(
        command_settings,
        [
            _loop(
                "GC-KX",
                "street_vending",
                now - 2 * d,
                file_after=h,
                dispatch_after=h,
                handle_after=2 * h,
                close_after=3 * h,
            )
        ],
        exercise_id="EX-K",
    )

    r = command_client.get("/grid/kpis?days=30", headers=op)
    assert r.status_code == 200, r.text
    k = r.json()
    assert (k["filed"], k["closed"], k["dismissed"]) == (4, 3, 1)  # K1 K2 K3 K5 filed; K3 open
    assert k["closure_rate"] == 0.75
    assert k["mean_time_to_close_s"] == (4 + 8 + 12) / 3 * 3600  # 8 h
    assert k["mean_time_to_close_h"] == 8.0
    # p90 of [4, 8, 12] h, linear: rank 0.9 × 2 = 1.8 → 8 + 0.8 × (12 − 8) = 11.2 h
    assert abs(k["p90_time_to_close_s"] - 11.2 * 3600) < 1e-6
    assert k["p90_time_to_close_h"] == 11.2
    assert abs(k["on_time_rate"] - 2 / 3) < 1e-9  # K2 was handled past its 2 h limit
    assert k["overdue_count"] == 1 and k["overdue"][0]["case_id"] == "GC-K3"
    assert k["filed_per_30_days"] == 4
    cst = timezone(timedelta(hours=8))
    months = Counter(
        c.filed_at.astimezone(cst).strftime("%Y-%m")
        for c in (quick, slow, stuck, repaired)
        if c.filed_at is not None
    )
    assert k["per_month"] == dict(sorted(months.items()))
    assert k["by_category"]["illegal_parking"] == {"filed": 1, "closed": 1}
    assert k["by_category"]["material_piling"] == {"filed": 1, "closed": 0}
    assert "noise_nuisance" not in k["by_category"]  # dismissed: never filed
    # A shorter period: only K5 (filed 5 days ago) is in the last 6 days.
    week = command_client.get("/grid/kpis?days=6", headers=op).json()
    assert (week["filed"], week["closed"], week["closure_rate"]) == (1, 1, 1.0)
    assert week["mean_time_to_close_h"] == 12.0
    assert week["overdue_count"] == 1  # overdue is as of now, whatever the period
    # The exercise's KPIs are its own, and only planners and admin read them.
    drill = command_client.get("/grid/kpis?exercise_id=EX-K", headers=planner).json()
    assert (drill["filed"], drill["closed"], drill["mean_time_to_close_h"]) == (1, 1, 3.0)
    assert command_client.get("/grid/kpis?days=0", headers=op).status_code == 422
