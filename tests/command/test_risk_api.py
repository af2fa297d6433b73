"""/risk-sources and /shelters through the API: who may edit and report (403 audited),
the inspection sweep opening one grid case per source and due date (the database's
constraint stops a second), a finding raising the level and an alarm into the triage
inbox, occupancy over HTTP, and what an incident near a major source learns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.app import create_app, default_workers
from command.services.risk import RiskSweep
from command.users import DEMO_PASSWORD
from tests.command.conftest import FIELD_TEAM, _seed_minimal_city
from tests.command.test_inbox_api import db, rows
from tests.command.test_incidents_api import open_incidents, push_alarm, wait_for
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

PLACE = (32.0420, 112.1440)  # 樊城区 人民路, where push_alarm's incidents are


def source_body(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "人民路加油站",
        "kind": "gas_station",
        "lat": PLACE[0] + 0.003,  # ~330 m north
        "lon": PLACE[1],
        "level": "major",
        "responsible_unit": "中石化襄阳分公司",
        "contact": "刘站长 0710-3200000",
        "inspection_interval_days": 7,
    }
    out.update(changes)
    return out


def shelter_body(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "人民广场应急避难场所",
        "kind": "square",
        "lat": PLACE[0] - 0.004,
        "lon": PLACE[1] + 0.002,
        "capacity": 2000,
        "facilities": ["water", "toilets", "power"],
        "status": "open",
    }
    out.update(changes)
    return out


@pytest.mark.parametrize(
    ("user", "edit", "report"),
    [
        ("operator1", 201, 200),
        ("commander1", 201, 200),
        ("admin1", 201, 200),
        ("planner1", 403, 403),
        (FIELD_TEAM, 403, 200),
    ],
)
def test_who_may_edit_and_report(
    command_client: TestClient, command_settings: Settings, login: Login, user: str, edit: int, report: int
) -> None:
    me = login(user)
    r = command_client.put("/risk-sources/RS-T1", json=source_body(), headers=me)
    assert r.status_code == edit, r.text
    r = command_client.put("/shelters/SH-T1", json=shelter_body(), headers=me)
    assert r.status_code == edit, r.text
    # reading is everyone's
    for path in ("/risk-sources", "/shelters"):
        assert command_client.get(path, headers=me).status_code == 200
    if edit != 201:
        command_client.put("/shelters/SH-T1", json=shelter_body(), headers=login("operator1"))
        command_client.put("/risk-sources/RS-T1", json=source_body(), headers=login("operator1"))
        denied = db(
            command_settings,
            "SELECT action FROM audit_log WHERE outcome = 'denied' AND actor = %s ORDER BY id",
            user,
        )
        assert [a for (a,) in denied] == ["risk.edit", "shelter.edit"]
    r = command_client.post("/shelters/SH-T1/occupancy", json={"occupancy": 120}, headers=me)
    assert r.status_code == report, r.text
    r = command_client.post("/risk-sources/RS-T1/findings", json={"note": "消防器材齐全"}, headers=me)
    assert r.status_code == report, r.text
    assert command_client.post("/risk-sources/sweep", headers=me).status_code == (200 if edit == 201 else 403)


def test_registry_round_trip_and_bad_input(command_client: TestClient, login: Login) -> None:
    op = login("operator1")
    r = command_client.put("/risk-sources/RS-T2", json=source_body(level="large"), headers=op)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["level"] == "large" and got["grid_cell_id"] and got["inspection_overdue"] is True
    r = command_client.put("/risk-sources/RS-T2", json=source_body(level="general"), headers=op)
    assert r.status_code == 200 and r.json()["level"] == "general"
    assert command_client.get("/risk-sources/RS-T2", headers=op).json()["name"] == "人民路加油站"
    assert command_client.get("/risk-sources/RS-NONE", headers=op).status_code == 404
    assert (
        command_client.put("/risk-sources/RS-T3", json=source_body(level="huge"), headers=op).status_code
        == 422
    )
    assert (
        command_client.put(
            "/risk-sources/RS-T3", json=source_body(inspection_interval_days=0), headers=op
        ).status_code
        == 422
    )
    assert command_client.put("/risk-sources/bad", json=source_body(), headers=op).status_code == 422
    assert command_client.put("/shelters/SH-T2", json=shelter_body(capacity=0), headers=op).status_code == 422


def test_an_overdue_inspection_opens_one_grid_case_and_a_finding_raises_the_level(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, field = login("operator1"), login(FIELD_TEAM)
    last = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    command_client.put(
        "/risk-sources/RS-T4", json=source_body(level="general", last_inspected_at=last), headers=op
    )
    command_client.put(
        "/risk-sources/RS-T5",
        json=source_body(level="low", last_inspected_at=datetime.now(UTC).isoformat()),
        headers=op,
    )
    opened = command_client.post("/risk-sources/sweep", headers=op).json()
    assert [o["source_id"] for o in opened] == ["RS-T4"]
    case_id = opened[0]["case_id"]
    assert command_client.post("/risk-sources/sweep", headers=op).json() == []  # idempotent
    case = command_client.get(f"/grid/cases/{case_id}", headers=op).json()["case"]
    assert case["category"] == "risk_inspection" and "RS-T4" in case["description"]
    # the database, not only the sweep's check, refuses a second case for the same due date
    due = db(command_settings, "SELECT due_at FROM risk_inspection_case WHERE case_id = %s", case_id)[0][0]
    with (
        psycopg.connect(command_settings.shared.database_url or "") as conn,
        pytest.raises(psycopg.errors.UniqueViolation),
    ):
        conn.execute(
            "INSERT INTO risk_inspection_case (source_id, due_at, case_id) VALUES ('RS-T4', %s, %s)",
            (due, case_id),
        )
    # the grid worker's finding on that case: the level rises to 较大, no alarm
    r = command_client.post(
        "/risk-sources/RS-T4/findings",
        json={"note": "储罐区防火堤破损", "level": "large", "case_id": case_id},
        headers=field,
    )
    assert r.status_code == 200, r.text
    assert r.json()["raised"] is True and r.json()["source"]["level"] == "large"
    assert r.json()["alarm_id"] is None and r.json()["source"]["inspection_overdue"] is False
    # a finding may not lower the level, nor name another source's case
    lower = command_client.post(
        "/risk-sources/RS-T4/findings", json={"note": "x", "level": "low"}, headers=field
    )
    assert lower.status_code == 422 and "not lower" in lower.json()["detail"]
    other = command_client.post(
        "/risk-sources/RS-T5/findings", json={"note": "x", "case_id": case_id}, headers=field
    )
    assert other.status_code == 422
    # to 重大: an alarm goes into the triage inbox
    r = command_client.post(
        "/risk-sources/RS-T4/findings", json={"note": "油气泄漏迹象", "level": "major"}, headers=field
    )
    alarm_id = r.json()["alarm_id"]
    assert alarm_id
    found = wait_for(
        lambda: (
            [
                x
                for x in rows(command_client, op)
                if alarm_id in (x.get("alarm_ids") or [x.get("first_alarm_id")])
            ]
            or db(command_settings, "SELECT 1 FROM alarm_inbox WHERE alarm_id = %s", alarm_id)
        )
    )
    assert found
    levels = db(
        command_settings,
        "SELECT level_before, level_after FROM risk_finding WHERE source_id = 'RS-T4' ORDER BY id",
    )
    assert levels == [("general", "large"), ("large", "major")]


def test_occupancy_is_reported_and_nearest_shelters_have_room(
    command_client: TestClient, login: Login
) -> None:
    op, field = login("operator1"), login(FIELD_TEAM)
    command_client.put("/shelters/SH-NEAR", json=shelter_body(capacity=100), headers=op)
    command_client.put("/shelters/SH-FAR", json=shelter_body(lat=PLACE[0] + 0.03, capacity=5000), headers=op)
    command_client.put("/shelters/SH-SHUT", json=shelter_body(lat=PLACE[0], status="closed"), headers=op)
    r = command_client.post("/shelters/SH-NEAR/occupancy", json={"occupancy": 100}, headers=field)
    assert r.status_code == 200 and r.json()["status"] == "full" and r.json()["occupancy_by"] == FIELD_TEAM
    near = command_client.get(
        "/shelters/nearest", params={"lat": PLACE[0], "lon": PLACE[1]}, headers=op
    ).json()
    assert [s["id"] for s in near] == ["SH-FAR"] and near[0]["free"] == 5000
    command_client.post("/shelters/SH-NEAR/occupancy", json={"occupancy": 60}, headers=field)
    near = command_client.get(
        "/shelters/nearest", params={"lat": PLACE[0], "lon": PLACE[1]}, headers=op
    ).json()
    assert [(s["id"], s["free"]) for s in near] == [("SH-NEAR", 40), ("SH-FAR", 5000)]
    assert near[0]["distance_m"] < near[1]["distance_m"]
    bad = command_client.post("/shelters/SH-SHUT/occupancy", json={"occupancy": 5}, headers=field)
    assert bad.status_code == 422 and "closed" in bad.json()["detail"]
    assert (
        command_client.post("/shelters/SH-NONE/occupancy", json={"occupancy": 5}, headers=field).status_code
        == 404
    )
    # the field page's outbox resends with the report's id: applied once
    once = {"id": "page-1", "occupancy": 70}
    url = "/shelters/SH-NEAR/occupancy"
    assert command_client.post(url, json=once, headers=field).json()["occupancy"] == 70
    again = command_client.post(url, json={**once, "occupancy": 10}, headers=field)
    assert again.status_code == 200 and again.json()["occupancy"] == 70
    bad_id = command_client.post(url, json={"id": "a b", "occupancy": 1}, headers=field)
    assert bad_id.status_code == 422


def test_the_sweep_worker_opens_one_case_per_overdue_inspection(
    make_settings: Callable[..., Settings],
) -> None:
    """The periodic sweep (worker ``risk-sweep``): an overdue source gets its grid case
    without anyone asking, and one only however many rounds run."""
    settings = make_settings(account="command")
    url = settings.shared.database_url or ""
    _seed_minimal_city(url)
    sweeps: list[RiskSweep] = []

    def sweep(state: object) -> RiskSweep:
        sweeps.append(RiskSweep(0.1))
        return sweeps[-1]

    last = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    with TestClient(create_app(settings, [*default_workers(), sweep])) as client:
        op = {"Authorization": "Bearer " + client.post(
            "/auth/login", json={"username": "operator1", "password": DEMO_PASSWORD}
        ).json()["access_token"]}
        r = client.put("/risk-sources/RS-W1", json=source_body(last_inspected_at=last), headers=op)
        assert r.status_code == 201, r.text
        wait_for(lambda: db(settings, "SELECT count(*) FROM risk_inspection_case") == [(1,)])
        seen = sweeps[0].rounds
        wait_for(lambda: sweeps[0].rounds >= seen + 3)  # more rounds: still one case
        cases = db(
            settings,
            "SELECT c.category, c.reporter FROM risk_inspection_case r JOIN grid_case c ON c.id = r.case_id",
        )
        assert cases == [("risk_inspection", "system:risk_sweep")]
        assert sweeps[0].count == 1


def test_an_incident_near_a_major_source_says_so_and_lists_shelters(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, planner = login("operator1"), login("planner1")
    command_client.put("/risk-sources/RS-T6", json=source_body(), headers=op)
    command_client.put("/shelters/SH-T6", json=shelter_body(), headers=op)
    push_alarm(command_settings, "police/sys110#risk1", category="hazmat_leak")
    incident = wait_for(lambda: open_incidents(command_client, op))[0]
    r = command_client.get(f"/incidents/{incident['id']}/risk", headers=op)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [n["id"] for n in body["near_major_risk"]] == ["RS-T6"]
    assert 250 < body["near_major_risk"][0]["distance_m"] < 400
    assert body["suggested_level"] == max(body["level"] - 1, 1)
    assert body["evacuation"] is True  # a hazardous-chemicals leak evacuates
    assert [s["id"] for s in body["shelters"]] == ["SH-T6"] and body["shelters"][0]["free"] == 2000
    assert command_client.get(f"/incidents/{incident['id']}/risk", headers=planner).status_code == 403
    assert command_client.get("/incidents/INC-NONE/risk", headers=op).status_code == 404


def test_triage_names_a_major_risk_source_near_an_alarm(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    from tests.command.test_inbox_api import push, taken

    op = login("operator1")
    command_client.put("/risk-sources/RS-T7", json=source_body(level="large"), headers=op)
    # near a 较大 source only: the alarm stays in the inbox
    first = push(command_settings, category="intrusion", confidence=0.9, source="video/CAM-R1")
    wait_for(lambda: taken(command_settings, first))
    assert open_incidents(command_client, op) == []
    # 3 km south (beyond any corroboration radius), a 重大 source: an alarm there opens an
    # incident whose reason names it
    south = (PLACE[0] - 0.03, PLACE[1])
    command_client.put(
        "/risk-sources/RS-T8",
        json=source_body(name="南郊燃气门站", kind="gas_pipeline", lat=south[0] + 0.002, lon=south[1]),
        headers=op,
    )
    near = push(command_settings, category="intrusion", confidence=0.9, source="video/CAM-R2", place=south)
    incident = wait_for(lambda: open_incidents(command_client, op))[0]
    source = next(s for s in incident["sources"] if s["alarm_id"] == near)
    assert source["triage_rule"] == "risk_major_source"
    assert "重大风险源 南郊燃气门站" in source["triage_reason"]
