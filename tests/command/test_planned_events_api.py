"""/planned-events (大型活动登记) through the API: staff register, list and cancel events
under the domain's one rule; bad input is 422 with the reason; and triage uses a running
event as risk context — a crowd alert inside its radius opens an incident naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from command.demo_events import DEMO_EVENTS, load_demo_events
from tests.command.conftest import FIELD_TEAM
from tests.command.test_inbox_api import PLACE, Login, db, push, rows, taken
from tests.command.test_incidents_api import open_incidents, wait_for
from wuwang.settings import Settings


def body(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    out: dict[str, Any] = {
        "name": "体育中心演唱会",
        "place": "襄阳市体育中心",
        "lat": PLACE[0],
        "lon": PLACE[1],
        "radius_m": 400,
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=3)).isoformat(),
    }
    out.update(changes)
    return out


def test_staff_register_list_and_cancel_an_event(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd = login("operator1"), login("commander1")
    r = command_client.post("/planned-events", json=body(), headers=op)
    assert r.status_code == 201, r.text
    event = r.json()
    assert event["event_id"].startswith("PE-") and event["state"] == "scheduled"
    assert event["phase"] == "running" and event["created_by"] == "operator1"
    listed = command_client.get("/planned-events", headers=cmd).json()
    assert [e["event_id"] for e in listed] == [event["event_id"]]
    r = command_client.post(
        f"/planned-events/{event['event_id']}/cancel", json={"reason": "因天气取消"}, headers=cmd
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled" and r.json()["cancelled_by"] == "commander1"
    assert command_client.get("/planned-events", headers=op).json() == []
    kept = command_client.get("/planned-events", params={"phase": "all"}, headers=op).json()
    assert [(e["event_id"], e["cancel_reason"]) for e in kept] == [(event["event_id"], "因天气取消")]
    again = command_client.post(
        f"/planned-events/{event['event_id']}/cancel", json={"reason": "x"}, headers=op
    )
    assert again.status_code == 409 and "already" in again.json()["detail"]
    actions = db(
        command_settings,
        "SELECT action, actor FROM audit_log WHERE object_type = 'planned_event' AND outcome = 'ok'"
        " ORDER BY id",
    )
    assert actions == [("planned_event.create", "operator1"), ("planned_event.cancel", "commander1")]


def test_bad_events_are_422_with_the_reason(command_client: TestClient, login: Login) -> None:
    op = login("operator1")
    now = datetime.now(UTC)
    cases = [
        (body(ends_at=(now - timedelta(hours=2)).isoformat()), "after starts_at"),
        (
            body(
                starts_at=(now - timedelta(hours=3)).isoformat(),
                ends_at=(now - timedelta(hours=2)).isoformat(),
            ),
            "already over",
        ),
        (body(ends_at=(now + timedelta(days=20)).isoformat()), "at most 14 days"),
        (body(name="   "), "name must not be empty"),
        (body(radius_m=5), "radius_m"),
        (body(starts_at="2026-12-07T19:00:00"), "timezone"),
        (body(lat=123), "lat"),
        (body(colour="red"), "colour"),
    ]
    for payload, words in cases:
        r = command_client.post("/planned-events", json=payload, headers=op)
        assert r.status_code == 422, (payload, r.text)
        assert words in r.text, (words, r.text)
    missing = command_client.post("/planned-events/PE-NONE-0000/cancel", json={"reason": "x"}, headers=op)
    assert missing.status_code == 404


def test_planners_register_drill_events_only_and_field_users_nothing(
    command_client: TestClient, login: Login
) -> None:
    planner, field = login("planner1"), login(FIELD_TEAM)
    live = command_client.post("/planned-events", json=body(), headers=planner)
    assert live.status_code == 403 and "drill" in live.json()["detail"]
    drill = command_client.post("/planned-events", json=body(exercise_id="EX-1"), headers=planner)
    assert drill.status_code == 201, drill.text
    assert command_client.get("/planned-events", headers=planner).json() == []  # live: none
    assert [
        e["exercise_id"]
        for e in command_client.get("/planned-events", params={"exercise_id": "EX-1"}, headers=planner).json()
    ] == ["EX-1"]
    for method, path, payload in (
        ("GET", "/planned-events", None),
        ("POST", "/planned-events", body()),
        ("POST", f"/planned-events/{drill.json()['event_id']}/cancel", {"reason": "x"}),
    ):
        r = command_client.request(method, path, json=payload, headers=field)
        assert r.status_code == 403, (path, r.text)


def test_a_crowd_alert_inside_a_running_event_opens_an_incident_naming_it(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    r = command_client.post("/planned-events", json=body(name="汉江音乐节"), headers=op)
    assert r.status_code == 201, r.text
    # far outside the radius (400 m + the rule's 200 m margin): the inbox
    far = push(
        command_settings,
        category="crowd",
        confidence=0.7,
        source="video/CAM-FAR",
        place=(PLACE[0] + 0.02, PLACE[1]),
    )
    wait_for(lambda: taken(command_settings, far))
    assert [row["source"] for row in rows(command_client, op)] == ["video/CAM-FAR"]
    # inside: an incident, its reason naming the event
    near = push(command_settings, category="crowd", confidence=0.7, source="video/CAM-NEAR")
    incident = wait_for(lambda: open_incidents(command_client, op))[0]
    source = incident["sources"][0]
    assert source["alarm_id"] == near and source["triage_rule"] == "risk_planned_event"
    assert "汉江音乐节" in source["triage_reason"]
    assert [row["source"] for row in rows(command_client, op)] == ["video/CAM-FAR"]


def test_the_demo_events_sit_at_the_city_venues(
    command_client: TestClient, command_settings: Settings
) -> None:
    assert command_settings.shared.database_url
    with psycopg.connect(command_settings.shared.database_url) as conn:
        conn.execute(
            "INSERT INTO venue (id, name, kind, lat, lon) VALUES"
            " ('V-TEST-STADIUM', '襄阳市体育中心', 'stadium', 32.05, 112.15)"
        )
        conn.commit()
        now = datetime.now(UTC)
        assert load_demo_events(conn, now) == 2  # two at the stadium; the city has no scenic spot here
        assert load_demo_events(conn, now + timedelta(days=1)) == 2  # again: moved, not doubled
        found = conn.execute(
            "SELECT event_id, name, starts_at FROM planned_event ORDER BY event_id"
        ).fetchall()
    assert [f[0] for f in found] == sorted(e[0] for e in DEMO_EVENTS if e[1] == "stadium")
    assert all("襄阳市体育中心" in f[1] for f in found)
    concert = next(f for f in found if f[0] == "PE-DEMO-CONCERT")
    assert concert[2] == now + timedelta(days=1) - timedelta(hours=1)
