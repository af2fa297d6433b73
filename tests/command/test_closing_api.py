"""Closing guards through the API on real PostgreSQL and Redis: resolving or closing with
open checklist items, a team still out or supplies still reserved is refused with what
is open (409), an override is a commander's act (403 for others, audited), and once the
work is done anyone on the desk may resolve and close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.command.conftest import FIELD_TEAM
from tests.command.test_dispatch_api import dispatch
from tests.command.test_reserve_api import move, open_incident, reserve, seed_stock
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]


def version(client: TestClient, headers: dict[str, str], incident_id: str) -> int:
    v: int = client.get(f"/incidents/{incident_id}", headers=headers).json()["incident"]["version"]
    return v


def act(client: TestClient, headers: dict[str, str], incident_id: str, what: str, **body: Any) -> Any:
    return client.post(
        f"/incidents/{incident_id}/{what}",
        headers=headers,
        json={"expected_version": version(client, headers, incident_id), **body},
    )


def test_open_work_blocks_resolve_and_close_until_done_or_overridden(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd, field = login("operator1"), login("commander1"), login(FIELD_TEAM)
    seed_stock(command_settings, [("L-1", "WH-A", "first_aid_kit", 30, None)])
    incident_id = open_incident(command_client, op)
    plan = act(command_client, op, incident_id, "plan", plan_id="flood")
    assert plan.status_code == 200, plan.text
    assert reserve(command_client, op, incident_id, "first_aid_kit", 4).status_code == 201
    inc = command_client.get(f"/incidents/{incident_id}", headers=op).json()["incident"]
    assert dispatch(command_client, op, inc, FIELD_TEAM).status_code == 201
    arrived = command_client.post(
        f"/incidents/{incident_id}/arrived", headers=field, json={"team_id": FIELD_TEAM}
    )
    assert arrived.status_code == 200, arrived.text

    # What is open, before the act
    state = command_client.get(f"/incidents/{incident_id}/closing", headers=op).json()
    assert state["blocked"] is True
    pending = [c["item_id"] for c in state["open"]["checklist"]]
    assert pending and all(c["plan_id"] == "flood" and c["zh"] for c in state["open"]["checklist"])

    refused = act(command_client, op, incident_id, "resolve")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert set(body) == {"detail", "open"}
    assert "team(s) still out: T-FIRE-01" in body["detail"]
    assert body["open"]["teams"] == [{"team_id": FIELD_TEAM, "name": f"消防救援队 {FIELD_TEAM}"}]
    [supply] = body["open"]["supplies"]
    assert (supply["item_code"], supply["reserved"]) == ("first_aid_kit", 4) and supply["name"]
    assert [c["item_id"] for c in body["open"]["checklist"]] == pending

    # an operator may not override; the refusal is audited
    denied = act(command_client, op, incident_id, "resolve", override_reason="赶时间")
    assert denied.status_code == 403, denied.text
    assert "override the closing guard" in denied.json()["detail"]
    blank = act(command_client, cmd, incident_id, "resolve", override_reason="  ")
    assert blank.status_code == 422

    # a commander overrides with a reason: resolved, the reason on the record, audited
    ok = act(command_client, cmd, incident_id, "resolve", override_reason="现场已移交属地处置")
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "resolved"
    timeline = command_client.get(f"/incidents/{incident_id}", headers=op).json()["timeline"]
    change = timeline[-1]
    assert change["kind"] == "state_changed" and change["data"]["to_state"] == "resolved"
    assert change["reason"].startswith("指挥长越权：现场已移交属地处置（")
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        audited = conn.execute(
            "SELECT action, outcome, actor, detail FROM audit_log WHERE object_id = %s"
            " AND action IN ('incident.resolve', 'incident.closing_override') ORDER BY id",
            (incident_id,),
        ).fetchall()
    assert [(a, o, who) for a, o, who, _ in audited] == [
        ("incident.resolve", "denied", "operator1"),
        ("incident.resolve", "ok", "commander1"),
        ("incident.closing_override", "ok", "commander1"),
    ]
    detail = audited[-1][3]
    assert detail["act"] == "resolve" and detail["reason"] == "现场已移交属地处置"
    assert detail["open"]["teams"][0]["team_id"] == FIELD_TEAM

    # closing: still blocked; do the work — release the team, the supplies, tick the list
    assert act(command_client, op, incident_id, "close").status_code == 409
    released = act(command_client, op, incident_id, "release", team_id=FIELD_TEAM, reason="归队")
    assert released.status_code == 200, released.text
    assert move(command_client, op, incident_id, "L-1", "release", 4).status_code == 200
    still = act(command_client, op, incident_id, "close").json()
    assert still["open"]["teams"] == [] and still["open"]["supplies"] == []
    assert [c["item_id"] for c in still["open"]["checklist"]] == pending
    for item_id in pending:
        ticked = act(command_client, op, incident_id, f"checklist/{item_id}")
        assert ticked.status_code == 200, ticked.text
    assert command_client.get(f"/incidents/{incident_id}/closing", headers=op).json()["blocked"] is False
    closed = act(command_client, op, incident_id, "close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed"


def test_the_guard_comes_after_the_version_and_the_state(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, field = login("operator1"), login(FIELD_TEAM)
    incident_id = open_incident(command_client, op)
    # a state that cannot be resolved says so (422), whatever is open
    assert act(command_client, op, incident_id, "resolve").status_code == 422
    inc = command_client.get(f"/incidents/{incident_id}", headers=op).json()["incident"]
    assert dispatch(command_client, op, inc, FIELD_TEAM).status_code == 201
    command_client.post(f"/incidents/{incident_id}/arrived", headers=field, json={"team_id": FIELD_TEAM})
    stale = command_client.post(f"/incidents/{incident_id}/resolve", headers=op, json={"expected_version": 1})
    assert stale.status_code == 409 and "open" not in stale.json()
    # an unknown incident has no closing state
    assert command_client.get("/incidents/INC-none/closing", headers=op).status_code == 404
