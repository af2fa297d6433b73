"""Hold (挂起) and resume through the API: the incident JSON, the record, the live push."""

from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from fastapi.testclient import TestClient

from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]
NEW = {"type": "fire", "level": 4, "title": "人民路 仓库冒烟", "lat": 32.04, "lon": 112.14}


def _open(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    r = client.post("/incidents", json=NEW, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _next_incident_change(ws: Any, incident_id: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = orjson.loads(ws.receive_text())
        if message.get("type") == "incident" and message.get("id") == incident_id:
            return message


def test_hold_and_resume_with_reason_version_and_live_push(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    inc = _open(command_client, op)
    assert inc["held"] is None
    url = f"/incidents/{inc['id']}"
    token = op["Authorization"].split(" ", 1)[1]
    with command_client.websocket_connect(
        f"/ws?token={token}", headers={"Origin": "http://127.0.0.1:8050"}
    ) as ws:
        assert orjson.loads(ws.receive_text())["type"] == "snapshot"
        no_reason = command_client.post(f"{url}/hold", json={"expected_version": inc["version"]}, headers=op)
        assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
        blank = command_client.post(
            f"{url}/hold", json={"expected_version": inc["version"], "reason": "  "}, headers=op
        )
        assert blank.status_code == 422
        held = command_client.post(
            f"{url}/hold", json={"expected_version": inc["version"], "reason": "等待燃气公司到场"}, headers=op
        )
        assert held.status_code == 200, held.text
        body = held.json()
        assert body["state"] == "new" and body["is_open"]  # a flag, not a state
        assert body["held"]["reason"] == "等待燃气公司到场" and body["held"]["by"] == "operator1"
        assert body["held"]["at"]
        pushed = _next_incident_change(ws, inc["id"])
        assert pushed["data"]["held"] == body["held"] and pushed["version"] == body["version"]
        # held twice, or on a stale version
        again = command_client.post(
            f"{url}/hold", json={"expected_version": body["version"], "reason": "x"}, headers=op
        )
        assert again.status_code == 422 and "already held" in again.json()["detail"]
        stale = command_client.post(f"{url}/resume", json={"expected_version": inc["version"]}, headers=op)
        assert stale.status_code == 409
        listed = next(x for x in command_client.get("/incidents", headers=op).json() if x["id"] == inc["id"])
        assert listed["held"] == body["held"]
        resumed = command_client.post(f"{url}/resume", json={"expected_version": body["version"]}, headers=op)
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["held"] is None
        assert _next_incident_change(ws, inc["id"])["data"]["held"] is None
    not_held = command_client.post(
        f"{url}/resume", json={"expected_version": resumed.json()["version"]}, headers=op
    )
    assert not_held.status_code == 422 and "not held" in not_held.json()["detail"]
    timeline = command_client.get(url, headers=op).json()["timeline"]
    assert [(e["kind"], e["reason"], e["actor"]) for e in timeline[-2:]] == [
        ("held", "等待燃气公司到场", "operator1"),
        ("resumed", None, "operator1"),
    ]
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        audited = conn.execute(
            "SELECT action, outcome FROM audit_log WHERE object_id = %s ORDER BY id",
            (inc["id"],),
        ).fetchall()
        stored = conn.execute("SELECT body->'held' FROM incident WHERE id = %s", (inc["id"],)).fetchone()
    assert ("incident.hold", "ok") in audited and ("incident.resume", "ok") in audited
    assert stored == (None,)


def test_a_closed_incident_cannot_be_held_and_roles_are_checked(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, planner = login("operator1"), login("planner1")
    inc = _open(command_client, op)
    url = f"/incidents/{inc['id']}"
    denied = command_client.post(
        f"{url}/hold", json={"expected_version": inc["version"], "reason": "等待"}, headers=planner
    )
    assert denied.status_code in (403, 404)  # planners act only on exercise incidents
    held = command_client.post(
        f"{url}/hold", json={"expected_version": inc["version"], "reason": "低优先级"}, headers=op
    )
    cancelled = command_client.post(
        f"{url}/cancel", json={"expected_version": held.json()["version"], "reason": "报警人撤回"}, headers=op
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["held"] is None  # ending the incident ends its hold
    refused = command_client.post(
        f"{url}/hold", json={"expected_version": cancelled.json()["version"], "reason": "等待"}, headers=op
    )
    assert refused.status_code == 422 and "cancelled" in refused.json()["detail"]
