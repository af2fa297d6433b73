"""Contingency plans through the API: the library at start-up, activation, the checklist,
re-evaluation after a level change, the shortfall and the role rules — on real
PostgreSQL and Redis."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.app import create_app
from command.domain.plans import DEFAULT_PLAN_DIR, PlanLibraryError, load_plans
from command.domain.vocabulary import IncidentType, ResponseLevel
from tests.command.conftest import FIELD_TEAM
from tests.command.test_kpis_api import dispatch, open_by_domain
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

LIBRARY = load_plans(DEFAULT_PLAN_DIR)
HRF = LIBRARY.get("high_rise_fire")


def applying(level: ResponseLevel) -> list[str]:
    return [a.id for a in HRF.checklist if a.applies_at(level)]


def open_high_rise_fire(client: TestClient, headers: dict[str, str], lat: float = 32.05) -> dict[str, Any]:
    r = client.post(
        "/incidents",
        json={
            "type": "high_rise_fire",
            "level": 4,
            "title": "樊城区某小区高层住宅起火",
            "lat": lat,
            "lon": 112.14,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def post(client: TestClient, url: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(url, json=body, headers=headers)


def denied(settings: Settings, action: str) -> list[str]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        rows = conn.execute(
            "SELECT actor FROM audit_log WHERE action = %s AND outcome = 'denied' ORDER BY id", (action,)
        ).fetchall()
    return [r[0] for r in rows]


def test_library_is_loaded_at_start_up(command_client: TestClient, login: Login) -> None:
    op = login("operator1")
    r = command_client.get("/plans", headers=op)
    assert r.status_code == 200, r.text
    plans = {p["id"]: p for p in r.json()}
    assert set(plans) == set(LIBRARY.plans)
    assert plans["flood"]["covers"] == ["flood"] and plans["flood"]["title_zh"] == "城市内涝应急预案"
    assert plans["flood"]["arrival_target_min"] == 20
    flood = command_client.get("/plans/flood", headers=op).json()
    assert set(flood["levels"]) == {"I", "II", "III", "IV"}
    assert flood["checklist"][0]["id"] == LIBRARY.get("flood").checklist[0].id
    assert command_client.get("/plans/no_such_plan", headers=op).status_code == 404


def test_a_broken_plan_library_stops_start_up(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    broken = tmp_path / "plans"
    shutil.copytree(DEFAULT_PLAN_DIR, broken)
    flood = broken / "flood.yaml"
    flood.write_text(flood.read_text(encoding="utf-8").replace("count:", "cuont:", 1), encoding="utf-8")
    app = create_app(make_settings(account="command", command_plans_dir=broken))
    with pytest.raises(PlanLibraryError) as caught, TestClient(app):
        pass
    assert "flood.yaml" in str(caught.value) and "cuont" in str(caught.value)
    missing = create_app(make_settings(account="command", command_plans_dir=tmp_path / "nowhere"))
    with pytest.raises(PlanLibraryError, match="not a directory"), TestClient(missing):
        pass


def test_activate_tick_and_reevaluate_on_level_change(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd = login("operator1"), login("commander1")
    inc = open_high_rise_fire(command_client, op)
    url = f"/incidents/{inc['id']}"
    before = command_client.get(f"{url}/plan", headers=op).json()
    assert before["active"] is False and before["covering_plans"] == ["high_rise_fire"]

    wrong = post(command_client, f"{url}/plan", op, plan_id="flood", expected_version=inc["version"])
    assert wrong.status_code == 422 and "covers flood" in wrong.json()["detail"]
    no_reason = post(
        command_client, f"{url}/plan", op, plan_id="flood", expected_version=inc["version"], force=True
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    assert post(command_client, f"{url}/plan", op, plan_id="nope", expected_version=1).status_code == 404

    r = post(command_client, f"{url}/plan", op, plan_id="high_rise_fire", expected_version=inc["version"])
    assert r.status_code == 200, r.text
    # the incident keeps the plan's arrival target: the console's queue ranks against it
    active_plan = command_client.get(url, headers=op).json()["incident"]["active_plan"]
    assert active_plan["plan_id"] == "high_rise_fire" and active_plan["arrival_target_s"] == 7 * 60
    view = r.json()
    act = view["activation"]
    assert (act["plan_id"], act["level"], act["activated_level"], act["activated_by"]) == (
        "high_rise_fire",
        4,
        4,
        "operator1",
    )
    assert [e["id"] for e in act["checklist"]] == applying(ResponseLevel.IV)
    assert act["requirements"]["teams"] == [
        {"type": "fire", "count": 3},
        {"type": "medical", "count": 1},
        {"type": "police", "count": 1},
    ]
    fire = next(s for s in view["shortfall"] if s["key"] == "fire")
    assert (fire["required"], fire["have"], fire["missing"]) == (3, 0, 3)
    assert fire["explanation"].startswith("short 3 fire team(s): 0 of 3")
    assert {s["key"] for s in view["shortfall"] if s["kind"] == "supply"} == {
        s.item for s in HRF.level(ResponseLevel.IV).supplies
    }
    again = post(
        command_client, f"{url}/plan", op, plan_id="high_rise_fire", expected_version=view["incident_version"]
    )
    assert again.status_code == 409  # already active at this level

    v = view["incident_version"]
    ticked = post(command_client, f"{url}/checklist/confirm_alarm", op, expected_version=v)
    assert ticked.status_code == 200, ticked.text
    entry = ticked.json()["activation"]["checklist"][0]
    assert (entry["id"], entry["done"], entry["done_by"]) == ("confirm_alarm", True, "operator1")
    v = ticked.json()["incident_version"]
    assert post(command_client, f"{url}/checklist/confirm_alarm", op, expected_version=v).status_code == 409
    assert post(command_client, f"{url}/checklist/report_up", op, expected_version=v - 1).status_code == 409
    assert post(command_client, f"{url}/checklist/no_such_item", op, expected_version=v).status_code == 404
    # shelter_residents applies from level III on: not on the list at IV
    assert (
        post(command_client, f"{url}/checklist/shelter_residents", op, expected_version=v).status_code == 404
    )

    # The commander raises the level: more items, graver requirements, the tick kept.
    raised = post(
        command_client, f"{url}/level", cmd, expected_version=v, level=2, reason="多层被困，火势蔓延"
    )
    assert raised.status_code == 200, raised.text
    view = command_client.get(f"{url}/plan", headers=op).json()
    act = view["activation"]
    assert act["level"] == 2 and act["activated_level"] == 4
    assert [e["id"] for e in act["checklist"]] == applying(ResponseLevel.II)
    assert len(act["checklist"]) > len(applying(ResponseLevel.IV))
    assert next(e for e in act["checklist"] if e["id"] == "confirm_alarm")["done"] is True
    assert {"type": "fire", "count": 15} in act["requirements"]["teams"]
    assert next(s for s in view["shortfall"] if s["key"] == "fire")["missing"] == 15
    assert "lighting_tower" in {s["key"] for s in view["shortfall"]}  # needed from level II on

    ticked = post(
        command_client,
        f"{url}/checklist/structural_assessment",
        op,
        expected_version=view["incident_version"],
    )
    assert ticked.status_code == 200, ticked.text
    lowered = post(
        command_client,
        f"{url}/level",
        cmd,
        expected_version=ticked.json()["incident_version"],
        level=4,
        reason="火势得到控制",
    )
    assert lowered.status_code == 200, lowered.text
    act = command_client.get(f"{url}/plan", headers=op).json()["activation"]
    kept = next(e for e in act["checklist"] if e["id"] == "structural_assessment")
    assert (kept["done"], kept["applies"]) == (True, False)  # done at II: kept on the record
    assert [e["id"] for e in act["checklist"] if e["applies"]] == applying(ResponseLevel.IV)

    untick = post(
        command_client,
        f"{url}/checklist/confirm_alarm",
        op,
        expected_version=lowered.json()["version"],
        done=False,
    )
    assert untick.status_code == 200, untick.text
    assert (
        next(e for e in untick.json()["activation"]["checklist"] if e["id"] == "confirm_alarm")["done"]
        is False
    )
    timeline = [e["kind"] for e in command_client.get(url, headers=op).json()["timeline"]]
    assert timeline.count("plan_activated") == 1 and timeline.count("checklist_item_ticked") == 3


def test_forced_activation_of_a_plan_for_another_type(command_client: TestClient, login: Login) -> None:
    op = login("operator1")
    inc = open_high_rise_fire(command_client, op)
    r = post(
        command_client,
        f"/incidents/{inc['id']}/plan",
        op,
        plan_id="hazmat_leak",
        expected_version=inc["version"],
        force=True,
        reason="起火楼层存放危化品",
    )
    assert r.status_code == 200, r.text
    assert r.json()["activation"]["plan_id"] == "hazmat_leak"
    event = command_client.get(f"/incidents/{inc['id']}", headers=op).json()["timeline"][-1]
    assert event["kind"] == "plan_activated" and "activated anyway: 起火楼层存放危化品" in event["reason"]


def test_a_crew_reads_which_plan_its_incident_runs(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    """A field crew may not read the plan library, yet its incident's record names the
    activated plan by title in both languages (the field page's updates say WHICH plan)."""
    op, field = login("operator1"), login(FIELD_TEAM)
    inc = open_high_rise_fire(command_client, op)
    dispatch(command_settings, inc["id"], FIELD_TEAM, datetime.now(UTC))
    version = command_client.get(f"/incidents/{inc['id']}", headers=op).json()["incident"]["version"]
    r = post(
        command_client, f"/incidents/{inc['id']}/plan", op, plan_id="high_rise_fire", expected_version=version
    )
    assert r.status_code == 200, r.text
    seen = command_client.get(f"/incidents/{inc['id']}", headers=field)
    assert seen.status_code == 200, seen.text
    event = next(e for e in seen.json()["timeline"] if e["kind"] == "plan_activated")
    assert event["data"]["plan_id"] == "high_rise_fire"
    assert (event["data"]["title_zh"], event["data"]["title_en"]) == (HRF.title_zh, HRF.title_en)
    assert event["data"]["title_zh"] == "高层建筑火灾应急预案"


def test_shortfall_counts_teams_on_the_incident_and_stock_held(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        conn.execute(
            "INSERT INTO team (id, name, team_type, base_lat, base_lon, size)"
            " VALUES ('T-MED-01', '市急救中心一组', 'medical', 32.0, 112.1, 6)"
        )
        conn.execute(
            "INSERT INTO reserve_item (code, name_zh, name_en, category, unit, unit_zh) VALUES"
            " ('fire_foam_l', '泡沫灭火剂', 'Foam', 'rescue_equipment', 'L', '升'),"
            " ('air_cylinder', '空气呼吸器备用气瓶', 'Cylinder', 'life_rescue', 'piece', '个')"
        )
        conn.execute(
            "INSERT INTO warehouse (id, name, kind, lat, lon) VALUES"
            " ('WH-F', '消防战勤保障物资库', 'government_stock', 32.0, 112.1)"
        )
        conn.execute(
            "INSERT INTO stock_lot (id, warehouse_id, item_code, quantity) VALUES"
            " ('L-FOAM', 'WH-F', 'fire_foam_l', 5000), ('L-AIR', 'WH-F', 'air_cylinder', 12)"
        )
    inc = open_high_rise_fire(command_client, op)
    url = f"/incidents/{inc['id']}"
    r = post(command_client, f"{url}/plan", op, plan_id="high_rise_fire", expected_version=inc["version"])
    assert r.status_code == 200, r.text
    at = datetime.now(UTC)
    dispatch(command_settings, inc["id"], "T-FIRE-01", at)
    dispatch(command_settings, inc["id"], "T-MED-01", at + timedelta(seconds=5))
    held = post(command_client, f"{url}/reserve", op, item_code="fire_foam_l", quantity=400)
    assert held.status_code == 201, held.text

    view = command_client.get(f"{url}/plan", headers=op).json()
    gaps = {s["key"]: s for s in view["shortfall"]}
    assert "medical" not in gaps  # 1 of 1
    assert (gaps["fire"]["have"], gaps["fire"]["missing"]) == (1, 2)
    assert "on the incident: T-FIRE-01" in gaps["fire"]["explanation"]
    assert "1 fire team(s) available in the city" in gaps["fire"]["explanation"]  # T-FIRE-02
    assert (gaps["police"]["have"], gaps["police"]["missing"]) == (0, 1)
    foam = gaps["fire_foam_l"]
    assert (foam["required"], foam["have"], foam["missing"], foam["unit"]) == (1000, 400, 600, "L")
    assert "400 reserved" in foam["explanation"] and "4600 L usable in the reserve" in foam["explanation"]
    assert gaps["air_cylinder"]["explanation"].endswith("12 piece usable in the reserve")
    assert view["activation"]["teams_on_incident"] == {"fire": ["T-FIRE-01"], "medical": ["T-MED-01"]}


def test_plan_role_rules(command_client: TestClient, command_settings: Settings, login: Login) -> None:
    op, field, planner = login("operator1"), login(FIELD_TEAM), login("planner1")
    inc = open_high_rise_fire(command_client, op)
    url = f"/incidents/{inc['id']}"
    assert command_client.get("/plans", headers=field).status_code == 403
    assert command_client.get(f"{url}/plan", headers=field).status_code == 403
    assert (
        post(
            command_client, f"{url}/plan", field, plan_id="high_rise_fire", expected_version=inc["version"]
        ).status_code
        == 403
    )
    assert command_client.get("/plans", headers=planner).status_code == 200
    assert command_client.get(f"{url}/plan", headers=planner).status_code == 403  # a live incident
    live = post(
        command_client, f"{url}/plan", planner, plan_id="high_rise_fire", expected_version=inc["version"]
    )
    assert live.status_code == 403 and "exercise" in live.json()["detail"]
    assert denied(command_settings, "plan.read") == [FIELD_TEAM, FIELD_TEAM, "planner1"]
    assert denied(command_settings, "plan.activate") == [FIELD_TEAM, "planner1"]

    # On an exercise incident the planner runs the plan.
    open_by_domain(
        command_settings,
        "INC-EX-PLAN",
        datetime.now(UTC),
        exercise_id="EX-PLAN",
        incident_type=IncidentType.HIGH_RISE_FIRE,
    )
    ex = post(
        command_client, "/incidents/INC-EX-PLAN/plan", planner, plan_id="high_rise_fire", expected_version=1
    )
    assert ex.status_code == 200, ex.text
    tick = post(command_client, "/incidents/INC-EX-PLAN/checklist/confirm_alarm", planner, expected_version=2)
    assert tick.status_code == 200, tick.text
    assert command_client.get("/incidents/INC-EX-PLAN/plan", headers=op).status_code == 403  # live staff
