"""GET /kpis on real PostgreSQL and Redis, with numbers computed by hand.

Incidents come from alarms on ingest's Redis stream and API acts; where a test needs
exact times (dispatch and arrival a given number of seconds after the first alarm, an
incident opened 30 hours ago), the events are decided by the domain's ``decide_``
functions and stored with the service's own ``incident_store.append`` — never rows
written by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.domain import incidents as domain
from command.domain.incidents import Actor, Event, Incident
from command.domain.vocabulary import IncidentType, ResponseLevel, Role
from command.services import incident_store as store
from command.services.reserve import today_for
from tests.command.test_incidents_api import push_alarm, wait_for
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

OPERATOR = Actor("operator1", Role.OPERATOR)
PLANNER = Actor("planner1", Role.PLANNER)


def append_decided(
    settings: Settings,
    incident_id: str | None,
    decide: Callable[[Incident | None], list[Event]],
    action: str = "test.seed",
) -> None:
    """Decide on the stored incident (``None`` for a new one) and store the events with
    the service's own store, in one transaction."""

    async def run() -> None:
        async with (
            await psycopg.AsyncConnection.connect(settings.shared.database_url or "") as conn,
            conn.transaction(),
        ):
            incident = (await store.load(conn, incident_id, for_update=True))[0] if incident_id else None
            await store.append(conn, incident, decide(incident), audit_action=action)

    asyncio.run(run())


def dispatch(settings: Settings, incident_id: str, team_id: str, at: datetime) -> None:
    def decide(inc: Incident | None) -> list[Event]:
        assert inc is not None
        return domain.decide_dispatch(
            inc,
            team_id=team_id,
            order_id=f"ORD-{incident_id}-{team_id}",
            actor=OPERATOR,
            at=at,
            expected_version=None,
        )

    append_decided(settings, incident_id, decide, "incident.dispatch")


def arrive(settings: Settings, incident_id: str, team_id: str, at: datetime) -> None:
    def decide(inc: Incident | None) -> list[Event]:
        assert inc is not None
        return domain.decide_team_arrived(inc, team_id=team_id, actor=OPERATOR, at=at)

    append_decided(settings, incident_id, decide, "incident.team_arrived")


def open_by_domain(
    settings: Settings,
    incident_id: str,
    at: datetime,
    *,
    exercise_id: str | None = None,
    incident_type: IncidentType = IncidentType.FIRE,
    lat: float = 32.2,
    lon: float = 112.3,
) -> None:
    actor = PLANNER if exercise_id else OPERATOR
    append_decided(
        settings,
        None,
        lambda _: domain.decide_open(
            incident_id,
            incident_type=incident_type,
            level=ResponseLevel.IV,
            title=f"测试事件 {incident_id}",
            actor=actor,
            at=at,
            lat=lat,
            lon=lon,
            exercise_id=exercise_id,
        ),
        "incident.open",
    )


def _incident(client: TestClient, headers: dict[str, str], incident_id: str) -> dict[str, Any]:
    r = client.get(f"/incidents/{incident_id}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["incident"]
    return body


def _act(client: TestClient, headers: dict[str, str], incident_id: str, act: str, **extra: Any) -> None:
    version = _incident(client, headers, incident_id)["version"]
    r = client.post(
        f"/incidents/{incident_id}/{act}", json={"expected_version": version, **extra}, headers=headers
    )
    assert r.status_code == 200, r.text


def test_kpis_from_the_incident_record(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd = login("operator1"), login("commander1")
    url = command_settings.shared.database_url or ""
    now = datetime.now(UTC)
    # Opened 30 h ago and still open: outside the 24 h window, inside "open by level".
    open_by_domain(command_settings, "INC-OLD-1", now - timedelta(hours=30))
    # An exercise incident in the window: never in live KPIs.
    open_by_domain(command_settings, "INC-EX-1", now - timedelta(minutes=5), exercise_id="EX-KPI")
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO reserve_item (code, name_zh, name_en, category, unit, unit_zh, min_stock)"
            " VALUES ('first_aid_kit', '急救包', 'First-aid kit', 'medical', 'piece', '个', 10)"
        )
        conn.execute(
            "INSERT INTO warehouse (id, name, kind, lat, lon) VALUES"
            " ('WH-K', '测试仓库', 'government_stock', 32.0, 112.1)"
        )
        today = today_for(command_settings)
        conn.execute(
            "INSERT INTO stock_lot (id, warehouse_id, item_code, quantity, expires_on) VALUES"
            " ('L-OLD', 'WH-K', 'first_aid_kit', 5, %s), ('L-SOON', 'WH-K', 'first_aid_kit', 3, %s)",
            (today - timedelta(days=3), today + timedelta(days=5)),
        )

    # Six fire calls far enough apart (≈1.1 km) to stay six incidents.
    for i in range(6):
        push_alarm(command_settings, f"police/sys110#k{i}", lat=32.04 + 0.01 * i, lon=112.14, minutes_ago=0.5)
    incidents = wait_for(
        lambda: (lambda xs: xs if len(xs) == 6 else None)(
            [x for x in command_client.get("/incidents", headers=op).json() if x["id"] != "INC-OLD-1"]
        )
    )
    by_alarm = {x["sources"][0]["alarm_id"]: x for x in incidents}
    ids = [by_alarm[f"police/sys110#k{i}"]["id"] for i in range(6)]
    a, b, c, d, e, f = ids

    processing = {a: 20, b: 40, c: 50, d: 100, e: 300}  # s from the first alarm to dispatch
    to_scene = {a: 300, b: 420, c: 600, d: 900}  # s from dispatch to arrival (e: none yet)
    for n, (incident_id, seconds) in enumerate(processing.items()):
        first_alarm = datetime.fromisoformat(_incident(command_client, op, incident_id)["first_alarm_at"])
        dispatched = first_alarm + timedelta(seconds=seconds)
        dispatch(command_settings, incident_id, f"T-K-{n}", dispatched)
        if incident_id in to_scene:
            arrive(
                command_settings,
                incident_id,
                f"T-K-{n}",
                dispatched + timedelta(seconds=to_scene[incident_id]),
            )
    for incident_id in (a, b):
        # the teams are still out: the commander overrides the closing guard
        _act(command_client, cmd, incident_id, "resolve", override_reason="处置完毕")
        _act(command_client, cmd, incident_id, "close", override_reason="结案，队伍随之释放")
    _act(command_client, op, f, "cancel", reason="报警人称已自行扑灭")
    _act(command_client, cmd, d, "level", level=2, reason="火势蔓延")

    r = command_client.get("/kpis?window_hours=24", headers=cmd)
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["incidents"] == 6  # a–f; the old one is outside the window, the exercise is not live
    cp = k["call_processing"]
    # sorted 20, 40, 50, 100, 300: p50 = 50; p90: h = 4·0.9 = 3.6 → 100 + 0.6·200 = 220
    assert cp["count"] == 5
    assert cp["p50_s"] == pytest.approx(50)
    assert cp["p90_s"] == pytest.approx(220)
    assert (cp["within_target"], cp["share_within_target"], cp["met"]) == (3, pytest.approx(0.6), False)
    assert (cp["target_s"], cp["target_share"]) == (60, 0.9)
    # 300, 420, 600, 900: p50: h = 1.5 → 510; p90: h = 2.7 → 600 + 0.7·300 = 810
    assert k["time_to_on_scene"] == {"count": 4, "p50_s": pytest.approx(510), "p90_s": pytest.approx(810)}
    # counted: a–e (f cancelled); closed: a, b
    assert k["closure"] == {"closed": 2, "counted": 5, "rate": pytest.approx(0.4)}
    # open: c (IV), d (II), e (IV) and the old one (IV)
    assert {x["name"]: x["open"] for x in k["open_by_level"]} == {"I": 0, "II": 1, "III": 0, "IV": 3}
    assert k["teams"] == {"available": 2, "total": 2}
    assert k["reserve_alerts"] == {"low_stock": 1, "expiring": 1, "expired": 1}

    # A wider window takes in the incident opened 30 h ago (still open, never dispatched).
    wide = command_client.get("/kpis?window_hours=31", headers=cmd).json()
    assert wide["incidents"] == 7
    assert {x["name"]: x["open"] for x in wide["open_by_level"]}["IV"] == 3

    # Planners: one exercise's KPIs only.
    planner = login("planner1")
    ex = command_client.get("/kpis?exercise_id=EX-KPI", headers=planner)
    assert ex.status_code == 200, ex.text
    assert ex.json()["incidents"] == 1 and ex.json()["exercise_id"] == "EX-KPI"
    assert {x["name"]: x["open"] for x in ex.json()["open_by_level"]}["IV"] == 1


def test_kpi_role_refusals_are_audited(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    from tests.command.conftest import FIELD_TEAM

    field, planner, op = login(FIELD_TEAM), login("planner1"), login("operator1")
    assert command_client.get("/kpis", headers=field).status_code == 403
    refused = command_client.get("/kpis", headers=planner)
    assert refused.status_code == 403 and "exercise_id" in refused.json()["detail"]
    assert command_client.get("/kpis?exercise_id=EX-1", headers=op).status_code == 403
    assert command_client.get("/kpis", headers=op).status_code == 200
    assert command_client.get("/kpis").status_code == 401
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        rows = conn.execute(
            "SELECT actor FROM audit_log WHERE action = 'kpi.read' AND outcome = 'denied' ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == [FIELD_TEAM, "planner1", "operator1"]
