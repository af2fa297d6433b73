"""A field team's report lands on its order's incident (real PostgreSQL and Redis, the
alarm arriving on the Redis stream as ingest writes it), unless it says "new event"."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from fastapi.testclient import TestClient
from PIL import Image

from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import dispatch, open_incident
from tests.command.test_incidents_api import open_incidents, wait_for
from wuwang.contract import Alarm
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]


def push_report(settings: Settings, team: str, msg_id: str, category: str, **details: Any) -> str:
    """A team's report as ingest raises it (ingest/alarms.py ``message_alarm``)."""
    alarm = Alarm(
        alarm_id=f"team/{team}#{msg_id}",
        kind="report",
        source=f"team/{team}",
        msg_id=msg_id,
        network=None,
        ts=datetime.now(UTC),
        lat=32.20,  # ~18 km from the scene
        lon=112.28,
        grid_cell_id=None,
        category=category,
        summary=f"队伍 {team} 上报 {category}",
        details={"reporter": team, "team_id": team, **details},
    )
    r = redis.Redis.from_url(settings.shared.redis_url or "")
    r.xadd(settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": alarm.encode()})
    r.close()
    return alarm.alarm_id


def ledger(settings: Settings, alarm_id: str) -> tuple[str | None, str | None] | None:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        row = conn.execute(
            "SELECT incident_id, triage_rule FROM alarm_inbox WHERE alarm_id = %s", (alarm_id,)
        ).fetchone()
    return (row[0], row[1]) if row is not None else None


def test_a_teams_report_goes_to_its_orders_incident_unless_it_is_a_new_event(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    inc = open_incident(command_client, op)
    assert dispatch(command_client, op, inc, FIELD_TEAM).status_code == 201

    # far from the scene and of another category: still the order's incident
    far = push_report(command_settings, FIELD_TEAM, "r1", "traffic")
    assert wait_for(lambda: ledger(command_settings, far) == (inc["id"], "team_order"))
    detail = command_client.get(f"/incidents/{inc['id']}", headers=op).json()
    linked = detail["timeline"][-1]
    assert linked["kind"] == "source_linked" and linked["data"]["source"]["alarm_id"] == far
    assert "当前指令" in linked["reason"]
    assert linked["data"]["reason_code"] == "report.to_order"  # said by each reader in its language
    assert linked["data"]["reason_args"]["incident_id"] == inc["id"]
    assert [i["id"] for i in open_incidents(command_client, op)] == [inc["id"]]

    # the team says it is a new event: a new incident
    new = push_report(command_settings, FIELD_TEAM, "r2", "fire", new_event=True)
    opened = wait_for(lambda: (ledger(command_settings, new) or (None, None))[0])
    assert opened != inc["id"]
    assert {i["id"] for i in open_incidents(command_client, op)} == {inc["id"], opened}

    # a team without an order: "not a new event" opens nothing; a plain report is
    # correlated as before (here: the fire the first team just reported, same place)
    note = push_report(command_settings, OTHER_TEAM, "r3", "on_scene", new_event=False)
    assert wait_for(lambda: ledger(command_settings, note) == (None, None))
    plain = push_report(command_settings, OTHER_TEAM, "r4", "fire")
    assert wait_for(lambda: (ledger(command_settings, plain) or (None, None))[0]) == opened
    assert len(open_incidents(command_client, op)) == 2


def test_the_teams_ack_and_rolling_are_on_the_incidents_record(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, field = login("operator1"), login(FIELD_TEAM)
    inc = open_incident(command_client, op)
    sent = dispatch(command_client, op, inc, FIELD_TEAM)
    assert sent.status_code == 201, sent.text
    order_id = sent.json()["order"]["order_id"]
    url = f"/incidents/{inc['id']}"

    acked = command_client.post(f"/field/orders/{order_id}/ack", headers=field, json={"id": "ack-1"})
    assert acked.status_code == 200 and acked.json()["outcome"] == "acked", acked.text
    again = command_client.post(f"/field/orders/{order_id}/ack", headers=field, json={"id": "ack-1"})
    assert again.status_code == 200  # a resent ack: one record
    rolling = command_client.post(
        f"/teams/{FIELD_TEAM}/status", headers=field, json={"status": "en_route", "id": "st-1", "seq": 1}
    )
    assert rolling.status_code == 200, rolling.text
    arrived = command_client.post(f"{url}/arrived", headers=field, json={"team_id": FIELD_TEAM})
    assert arrived.status_code == 200, arrived.text

    detail = command_client.get(url, headers=op).json()
    team_events = [
        (e["kind"], e["actor"], e["data"].get("order_id"))
        for e in detail["timeline"]
        if e["kind"].startswith("team_")
    ]
    assert team_events == [
        ("team_dispatched", "operator1", order_id),
        ("team_acknowledged", FIELD_TEAM, order_id),
        ("team_en_route", FIELD_TEAM, None),
        ("team_arrived", FIELD_TEAM, None),
    ]
    [assignment] = detail["incident"]["teams"]
    assert assignment["acknowledged_at"] and assignment["en_route_at"] and assignment["arrived_at"]


def png(colour: tuple[int, int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_the_reports_photo_is_served_to_who_may_see_the_incident(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, field, other = login("operator1"), login(FIELD_TEAM), login(OTHER_TEAM)
    inc = open_incident(command_client, op)
    assert dispatch(command_client, op, inc, FIELD_TEAM).status_code == 201
    up = command_client.post(
        "/field/photos", headers=field, json={"content_type": "image/png", "data_base64": png((200, 0, 0))}
    )
    assert up.status_code == 201, up.text
    url = up.json()["url"]
    name = url.rsplit("/", 1)[1]
    stray = command_client.post(
        "/field/photos", headers=other, json={"content_type": "image/png", "data_base64": png((0, 0, 200))}
    ).json()["url"]
    alarm_id = push_report(command_settings, FIELD_TEAM, "p1", "fire", photo_url=url)
    assert wait_for(lambda: ledger(command_settings, alarm_id) == (inc["id"], "team_order"))

    listed = command_client.get(f"/incidents/{inc['id']}/photos", headers=op)
    assert listed.status_code == 200, listed.text
    [photo] = listed.json()
    assert (photo["alarm_id"], photo["name"]) == (alarm_id, name)
    assert photo["url"] == f"/incidents/{inc['id']}/photos/{name}"
    got = command_client.get(photo["url"], headers=op)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(got.content)).size == (16, 12)
    # the team itself may see it; another team (not on the incident) may not
    assert command_client.get(photo["url"], headers=field).status_code == 200
    assert command_client.get(photo["url"], headers=other).status_code == 403
    # a stored photo that is not this incident's is not served through it
    stray_name = stray.rsplit("/", 1)[1]
    assert command_client.get(f"/incidents/{inc['id']}/photos/{stray_name}", headers=op).status_code == 404
    assert command_client.get(f"/incidents/{inc['id']}/photos/x.exe", headers=op).status_code == 422
