"""``next_acts``: each incident in the API says which acts its state allows now (the
lifecycle table in command/domain/incidents.py), in the act's answer, the detail, the
queue — also for a body stored before the field existed — and the live push."""

from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from fastapi.testclient import TestClient

from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]
#: The codes the console renders (the labels catalogue has a word for each).
INCIDENT_ACTS = (
    "verify",
    "dispatch",
    "resolve",
    "reopen",
    "close",
    "cancel",
    "false_alarm",
    "hold",
    "resume",
)
NEW = {"type": "fire", "level": 4, "title": "人民路 仓库冒烟", "lat": 32.04, "lon": 112.14}


def _queued(client: TestClient, headers: dict[str, str], incident_id: str, *, open_only: bool = True) -> Any:
    r = client.get("/incidents", params={"open": open_only}, headers=headers)
    assert r.status_code == 200, r.text
    return next(x for x in r.json() if x["id"] == incident_id)


def test_next_acts_follow_the_state_and_the_hold(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    opened = command_client.post("/incidents", json=NEW, headers=op)
    assert opened.status_code == 201, opened.text
    inc = opened.json()
    url = f"/incidents/{inc['id']}"
    assert inc["next_acts"] == ["verify", "dispatch", "cancel", "false_alarm", "hold"]

    held = command_client.post(
        f"{url}/hold", json={"expected_version": inc["version"], "reason": "等待信息"}, headers=op
    )
    assert held.status_code == 200, held.text
    assert held.json()["next_acts"] == ["verify", "dispatch", "cancel", "false_alarm", "resume"]
    detail = command_client.get(url, headers=op).json()["incident"]
    assert detail["next_acts"] == held.json()["next_acts"]
    assert _queued(command_client, op, inc["id"])["next_acts"] == held.json()["next_acts"]

    token = op["Authorization"].split(" ", 1)[1]
    with command_client.websocket_connect(
        f"/ws?token={token}", headers={"Origin": "http://127.0.0.1:8050"}
    ) as ws:
        resumed = command_client.post(
            f"{url}/resume", json={"expected_version": held.json()["version"]}, headers=op
        )
        assert resumed.status_code == 200, resumed.text
        while True:
            message = orjson.loads(ws.receive_text())
            if message.get("type") == "incident" and message.get("id") == inc["id"]:
                break
    assert message["data"]["next_acts"] == ["verify", "dispatch", "cancel", "false_alarm", "hold"]

    verified = command_client.post(
        f"{url}/verify", json={"expected_version": resumed.json()["version"]}, headers=op
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["next_acts"] == ["dispatch", "cancel", "false_alarm", "hold"]

    # A body stored before next_acts existed still gets them in the queue.
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        conn.execute("UPDATE incident SET body = body - 'next_acts' WHERE id = %s", (inc["id"],))
    assert _queued(command_client, op, inc["id"])["next_acts"] == verified.json()["next_acts"]

    cancelled = command_client.post(
        f"{url}/cancel",
        json={"expected_version": verified.json()["version"], "reason": "报警人撤回"},
        headers=op,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["next_acts"] == [] and cancelled.json()["is_open"] is False
    assert _queued(command_client, op, inc["id"], open_only=False)["next_acts"] == []


def test_openapi_documents_next_acts_as_act_codes(command_client: TestClient) -> None:
    schema = command_client.get("/openapi.json").json()["components"]["schemas"]
    field = schema["IncidentOut"]["properties"]["next_acts"]
    codes = schema[field["items"]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert set(INCIDENT_ACTS) <= set(codes)
