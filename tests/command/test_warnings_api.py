"""/warnings (预警) through the API: an operator drafts, the counts inside the area are
shown, a commander approves (issued to the teams inside, queued in the MQTT outbox),
updates and cancels; planners act only in drills; field teams read only what targets
them; every step is audited; expiry by the worker."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient

from command.app import create_app
from command.users import DEMO_PASSWORD
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_inbox_api import Login, db
from tests.command.test_incidents_api import wait_for
from wuwang.outbound import WarningMessage
from wuwang.settings import Settings

CENTRE = (32.05, 112.14)  # where the minimal city's teams are based
SQUARE = [
    [CENTRE[0] - 0.01, CENTRE[1] - 0.01],
    [CENTRE[0] - 0.01, CENTRE[1] + 0.01],
    [CENTRE[0] + 0.01, CENTRE[1] + 0.01],
    [CENTRE[0] + 0.01, CENTRE[1] - 0.01],
]
IDENT_RE = r"^42060000000000_\d{14}_\d+$"


def body(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    out: dict[str, Any] = {
        "event_type": "meteorological",
        "level": "orange",
        "area": {"polygon": SQUARE},
        "onset": now.isoformat(),
        "expires": (now + timedelta(hours=6)).isoformat(),
        "headline": "樊城区暴雨橙色预警",
        "description": "预计未来6小时降雨量100毫米以上。",
        "instruction": "转移低洼地带人员。",
    }
    out.update(changes)
    return out


def seed_places(settings: Settings) -> None:
    """A grid cell, a device and a venue inside the square; the other team far away."""
    db(
        settings,
        "INSERT INTO grid_cell (id, district_adcode, name, center_lat, center_lon, boundary, households,"
        " grid_worker) VALUES ('r5c5', 420606, '网格五', %s, %s, '{}', 100, '刘洋'),"
        " ('r9c9', 420606, '网格九', 32.2, 112.3, '{}', 50, '周敏') ON CONFLICT DO NOTHING RETURNING id",
        CENTRE[0],
        CENTRE[1],
    )
    db(
        settings,
        "INSERT INTO venue (id, name, kind, lat, lon, grid_cell_id) VALUES ('V-1', '第一小学', 'school',"
        " %s, %s, 'r5c5') ON CONFLICT DO NOTHING RETURNING id",
        CENTRE[0] + 0.001,
        CENTRE[1],
    )
    db(
        settings,
        "INSERT INTO device (id, network, kind, unit, lat, lon, grid_cell_id) VALUES"
        " ('SEN-W1', 'community', 'water_level', 'm', %s, %s, 'r5c5'),"
        " ('SEN-W2', 'community', 'water_level', 'm', 32.3, 112.4, NULL) ON CONFLICT DO NOTHING RETURNING id",
        CENTRE[0],
        CENTRE[1] + 0.002,
    )
    db(settings, "UPDATE team SET lat = 32.3, lon = 112.4 WHERE id = %s RETURNING id", OTHER_TEAM)


def test_draft_count_approve_update_cancel_with_audit_and_outbox(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_places(command_settings)
    op, cmd = login("operator1"), login("commander1")
    vocab = command_client.get("/warnings/vocabulary", headers=op).json()
    assert len(vocab["categories"]) == 4 and any(e["key"] == "meteorological" for e in vocab["event_types"])

    counted = command_client.post("/warnings/inside", json={"polygon": SQUARE}, headers=op)
    assert counted.status_code == 200, counted.text
    assert counted.json()["counts"] == {
        "grid_cells": 1,
        "devices": 1,
        "venues": 1,
        "teams": 1,
        "risk_sources": 0,
        "shelters": 0,
    }
    assert counted.json()["teams"] == [FIELD_TEAM] and counted.json()["grid_workers"] == 1

    r = command_client.post("/warnings", json=body(), headers=op)
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["state"] == "draft" and draft["drafted_by"] == "operator1"
    assert re.match(IDENT_RE, draft["identifier"])
    assert draft["severity"] == "Severe" and draft["status"] == "Actual" and draft["target_teams"] == []
    ident = draft["identifier"]

    refused = command_client.post(f"/warnings/{ident}/approve", headers=op)
    assert refused.status_code == 403, refused.text
    r = command_client.post(f"/warnings/{ident}/approve", headers=cmd)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["state"] == "issued" and issued["approved_by"] == "commander1" and issued["approved_at"]
    assert issued["target_teams"] == [FIELD_TEAM] and issued["target_grid_workers"] == ["GW-r5c5"]
    again = command_client.post(f"/warnings/{ident}/approve", headers=cmd)
    assert again.status_code == 409

    queued = db(
        command_settings,
        "SELECT topic, payload FROM mqtt_outbox WHERE topic LIKE 'warnings/v1/%%' ORDER BY id",
    )
    assert [t for t, _ in queued] == [f"warnings/v1/{FIELD_TEAM}", "warnings/v1/report/GW-r5c5"]
    message = orjson.loads(bytes(queued[0][1]))
    assert message["kind"] == "alert" and message["identifier"] == ident and message["level"] == "orange"
    assert WarningMessage.model_validate(message).identifier == ident  # the exported schema's model

    r = command_client.post(f"/warnings/{ident}/update", json=body(level="red"), headers=cmd)
    assert r.status_code == 200, r.text
    new = r.json()
    assert (new["version"], new["references"], new["msg_type"], new["level"]) == (2, ident, "Update", "red")
    assert command_client.get(f"/warnings/{ident}", headers=op).json()["state"] == "superseded"
    twice = command_client.post(f"/warnings/{ident}/update", json=body(), headers=cmd)
    assert twice.status_code == 409

    active = command_client.get("/warnings", headers=op).json()
    assert [w["identifier"] for w in active] == [new["identifier"]]

    r = command_client.post(f"/warnings/{new['identifier']}/cancel", json={"reason": "雨势减弱"}, headers=cmd)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled" and r.json()["msg_type"] == "Cancel"
    kinds = [
        orjson.loads(bytes(p))["kind"]
        for (p,) in db(
            command_settings,
            "SELECT payload FROM mqtt_outbox WHERE topic = %s ORDER BY id",
            f"warnings/v1/{FIELD_TEAM}",
        )
    ]
    assert kinds == ["alert", "update", "cancel"]
    actions = db(
        command_settings,
        "SELECT action, actor FROM audit_log WHERE object_type = 'warning' AND outcome = 'ok' ORDER BY id",
    )
    assert actions == [
        ("warning.draft", "operator1"),
        ("warning.approve", "commander1"),
        ("warning.supersede", "commander1"),
        ("warning.update", "commander1"),
        ("warning.cancel", "commander1"),
    ]
    denied = db(
        command_settings,
        "SELECT action FROM audit_log WHERE object_type = 'warning' AND outcome <> 'ok'",
    )
    assert ("warning.approve",) in denied


def test_bad_warnings_are_422_with_the_reason(command_client: TestClient, login: Login) -> None:
    op = login("operator1")
    now = datetime.now(UTC)
    cases = [
        (body(event_type="volcano"), "unknown event type"),
        (body(level="purple"), "level"),
        (body(area={}), "needs an area"),
        (body(area={"polygon": SQUARE[:2]}), "3–500 points"),
        (body(area={"districts": [4206]}), "6-digit"),
        (
            body(
                expires=(now - timedelta(hours=1)).isoformat(), onset=(now - timedelta(hours=2)).isoformat()
            ),
            "past",
        ),
        (body(headline="  "), "headline"),
        (body(colour="red"), "colour"),
    ]
    for payload, words in cases:
        r = command_client.post("/warnings", json=payload, headers=op)
        assert r.status_code == 422, (payload, r.text)
        assert words in r.text, (words, r.text)
    assert command_client.get("/warnings/42060000000000_20260101000000_1", headers=op).status_code == 404


def test_planners_only_in_drills_and_field_teams_read_only_what_targets_them(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_places(command_settings)
    planner, cmd = login("planner1"), login("commander1")
    field, other = login(FIELD_TEAM), login(OTHER_TEAM)
    live = command_client.post("/warnings", json=body(), headers=planner)
    assert live.status_code == 403 and "drill" in live.json()["detail"]
    drill = command_client.post("/warnings", json=body(exercise_id="EX-1"), headers=planner)
    assert drill.status_code == 201, drill.text
    assert drill.json()["status"] == "Exercise"
    approved = command_client.post(f"/warnings/{drill.json()['identifier']}/approve", headers=planner)
    assert approved.status_code == 200, approved.text
    drill_topics = db(
        command_settings, "SELECT topic FROM mqtt_outbox WHERE topic LIKE 'exercise/v1/EX-1/%%'"
    )
    assert (f"exercise/v1/EX-1/warnings/v1/{FIELD_TEAM}",) in drill_topics
    assert command_client.get("/warnings", headers=planner).status_code == 403  # live: not theirs
    listed = command_client.get("/warnings", params={"exercise_id": "EX-1"}, headers=planner).json()
    assert [w["exercise_id"] for w in listed] == ["EX-1"]

    live_w = command_client.post("/warnings", json=body(), headers=cmd).json()
    ident = live_w["identifier"]
    # a draft is nobody's in the field
    assert command_client.get(f"/warnings/{ident}", headers=field).status_code == 404
    assert command_client.get("/warnings", headers=field).json() == []
    assert command_client.post(f"/warnings/{ident}/approve", headers=planner).status_code == 403
    assert command_client.post(f"/warnings/{ident}/approve", headers=cmd).status_code == 200
    mine = command_client.get(f"/warnings/{ident}", headers=field)
    assert mine.status_code == 200 and mine.json()["target_grid_workers"] == []
    assert [w["identifier"] for w in command_client.get("/warnings", headers=field).json()] == [ident]
    assert command_client.get(f"/warnings/{ident}", headers=other).status_code == 404
    assert command_client.get("/warnings", headers=other).json() == []
    for method, path, payload in (
        ("POST", "/warnings", body()),
        ("POST", f"/warnings/{ident}/cancel", {"reason": "x"}),
        ("POST", f"/warnings/{ident}/update", body()),
        ("POST", "/warnings/inside", {"polygon": SQUARE}),
    ):
        r = command_client.request(method, path, json=payload, headers=field)
        assert r.status_code == 403, (path, r.text)


def test_the_identifier_sequence_counts_within_a_second_and_is_unique(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    made = [command_client.post("/warnings", json=body(), headers=op).json()["identifier"] for _ in range(6)]
    assert len(set(made)) == 6
    by_second: dict[str, list[int]] = {}
    for ident in made:
        _, second, n = ident.split("_")
        by_second.setdefault(second, []).append(int(n))
    for numbers in by_second.values():
        assert numbers == list(range(1, len(numbers) + 1))


def test_issued_warnings_past_their_expiry_are_expired_by_the_worker(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    cmd = login("commander1")
    ident = command_client.post("/warnings", json=body(), headers=cmd).json()["identifier"]
    assert command_client.post(f"/warnings/{ident}/approve", headers=cmd).status_code == 200
    db(
        command_settings,
        "UPDATE warning SET onset = now() - interval '2 hours', expires = now() - interval '1 second'"
        " WHERE identifier = %s RETURNING identifier",
        ident,
    )
    fast = command_settings.updated(command_warning_expiry_interval_s=0.2)
    with TestClient(create_app(fast)) as client:
        token = client.post("/auth/login", json={"username": "commander1", "password": DEMO_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        got = wait_for(
            lambda: (
                (w := client.get(f"/warnings/{ident}", headers=headers).json())["state"] == "expired" and w
            )
        )
    assert got["ended_at"] and got["active"] is False
    assert ("warning.expire", "system") in db(
        command_settings, "SELECT action, actor FROM audit_log WHERE object_type = 'warning'"
    )
