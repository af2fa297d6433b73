"""End to end on real services: a 110 call published over MQTT flows through ingest →
Redis stream → command (incident on /ws) → plan → recommendation → dispatch → the team's
terminal receives the order over MQTT and acknowledges → arrival → resolve → close."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest.service import IngestService
from tests.command.conftest import FIELD_TEAM
from tests.command.test_dispatch_api import db_rows, isolated_settings
from tests.command.test_incidents_api import wait_for
from tests.command.test_mqtt_side import publish_as_team, receive, team_terminal
from tests.conftest import Broker
from wuwang.mqtt import DEMO_MQTT_ACCOUNTS
from wuwang.mqttlink import MqttLink
from wuwang.settings import Settings

pytestmark = pytest.mark.mosquitto

Login = Callable[[str], dict[str, str]]
_ids = itertools.count()
SCENE = (32.0418, 112.1437)  # 樊城区 人民路


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings], mqtt_broker: Broker) -> Settings:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs, shared subscriptions)")
    return isolated_settings(make_settings)


@contextmanager
def ingest_running(make_settings: Callable[..., Settings], command_settings: Settings) -> Iterator[None]:
    n = f"{os.getpid()}-{next(_ids)}"
    settings = make_settings(
        account="ingest",
        alarm_stream=command_settings.shared.alarm_stream,
        ingest_shared_group=f"ingest-e2e-{n}",
        ingest_metrics_port=0,
        ingest_flush_ms=20,
    )
    svc = IngestService(settings, metrics_addr="127.0.0.1", serve_metrics=False)
    svc.start()
    try:
        assert svc.wait_ready(20), "ingest did not connect and subscribe"
        yield
    finally:
        svc.stop(forget_session=True)


@contextmanager
def publisher(broker: Broker, user: str) -> Iterator[MqttLink]:
    link = MqttLink(
        broker.target.with_user(user, DEMO_MQTT_ACCOUNTS[user]),
        f"{user}-e2e-{next(_ids)}",
        persistent=False,
        name=f"{user}-e2e",
    )
    link.start()
    assert link.wait_connected(10), link.last_error
    try:
        yield link
    finally:
        link.stop(2.0)


def _next_change(ws: Any, kind: str, limit: int = 100) -> dict[str, Any]:
    for _ in range(limit):
        change: dict[str, Any] = ws.receive_json()
        if change.get("type") == kind:
            return change
    raise AssertionError(f"no {kind} change among {limit} messages")


def test_a_110_call_becomes_an_incident_a_dispatched_team_and_a_closed_case(
    command_client: TestClient,
    command_settings: Settings,
    make_settings: Callable[..., Settings],
    mqtt_broker: Broker,
    login: Login,
) -> None:
    op, field, cmd = login("operator1"), login(FIELD_TEAM), login("commander1")
    url = command_settings.shared.database_url or ""
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:  # T-FIRE-01 is on a 24-hour shift
        conn.execute(
            "INSERT INTO team_shift (team_id, starts_at, ends_at) VALUES (%s, %s, %s)",
            (FIELD_TEAM, now - timedelta(hours=3), now + timedelta(hours=21)),
        )
    token = op["Authorization"].removeprefix("Bearer ")
    with (
        ingest_running(make_settings, command_settings),
        team_terminal(mqtt_broker, "e2e") as team,
        command_client.websocket_connect(f"/ws?token={token}") as ws,
    ):
        assert ws.receive_json()["type"] == "snapshot"
        # the fire engine's GPS, over MQTT
        publish_as_team(
            team, "position", {"id": "gps-1", "ts": now.isoformat(), "lat": 32.0460, "lon": 112.1480}
        )
        wait_for(
            lambda: command_client.get(
                "/teams/near", headers=op, params={"lat": SCENE[0], "lon": SCENE[1], "radius_m": 2000}
            ).json()
        )

        # 110: a fire call from the police cooperation network's 110 system
        call = {
            "id": "110-e2e-0001",
            "ts": datetime.now(UTC).isoformat(),
            "call_id": "110-e2e-0001",
            "category": "fire",
            "lat": SCENE[0],
            "lon": SCENE[1],
            "address": "樊城区人民路 18 号 28 层住宅楼",
            "description": "17 楼冒烟，有人被困",
            "caller": "13800138000",
            "priority": 1,
        }
        with publisher(mqtt_broker, "simulator") as sim:
            sim.publish("wuwang/v1/police/call/sys110", orjson.dumps(call)).result(timeout=10)
        incident = _next_change(ws, "incident")["data"]
        assert incident["type"] == "fire" and incident["state"] == "new"
        assert incident["sources"][0]["alarm_id"].endswith("110-e2e-0001")
        iid = incident["id"]

        # a high-rise fire: reclassify, then activate its plan
        r = command_client.post(
            f"/incidents/{iid}/type",
            headers=op,
            json={"expected_version": incident["version"], "type": "high_rise_fire", "reason": "28 层住宅楼"},
        )
        assert r.status_code == 200, r.text
        r = command_client.post(
            f"/incidents/{iid}/plan",
            headers=op,
            json={"plan_id": "high_rise_fire", "expected_version": r.json()["version"]},
        )
        assert r.status_code == 200, r.text
        version = command_client.get(f"/incidents/{iid}", headers=op).json()["incident"]["version"]

        rec = command_client.get(f"/incidents/{iid}/recommendations", headers=op).json()
        assert rec["basis"]["source"] == "plan" and rec["basis"]["plan_id"] == "high_rise_fire"
        fire = next(t for t in rec["teams"] if t["type"] == "fire")
        first = fire["candidates"][0]
        assert first["team_id"] == FIELD_TEAM and not first["from_base"]
        r = command_client.post(
            f"/incidents/{iid}/dispatch",
            headers=op,
            json={"team_id": first["team_id"], "expected_version": version},
        )
        assert r.status_code == 201, r.text
        order_id = r.json()["order"]["order_id"]

        # the team's terminal gets the order and accepts it
        got = receive(team)
        assert got is not None
        order = orjson.loads(got.payload)
        assert order["order_id"] == order_id and order["incident_id"] == iid
        assert (order["lat"], order["lon"]) == SCENE
        team.ack(got)
        publish_as_team(
            team,
            "ack",
            {
                "id": f"ack-{order_id}",
                "ts": datetime.now(UTC).isoformat(),
                "order_id": order_id,
                "status": "accepted",
            },
        )
        wait_for(
            lambda: command_client.get(f"/incidents/{iid}/orders", headers=op).json()[0]["status"] == "acked"
        )

        # on scene (the crew's own page), handled, closed
        r = command_client.post(f"/incidents/{iid}/arrived", headers=field, json={"team_id": FIELD_TEAM})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "on_scene"
        # the team still on scene and the plan's checklist open: the operator is refused
        # with what is open, the commander overrides (docs/incidents.md, closing guards)
        v = r.json()["version"]
        r = command_client.post(f"/incidents/{iid}/resolve", headers=op, json={"expected_version": v})
        assert r.status_code == 409 and r.json()["open"]["teams"][0]["team_id"] == FIELD_TEAM, r.text
        r = command_client.post(
            f"/incidents/{iid}/resolve",
            headers=cmd,
            json={"expected_version": v, "override_reason": "火已扑灭"},
        )
        assert r.status_code == 200, r.text
        r = command_client.post(
            f"/incidents/{iid}/close",
            headers=cmd,
            json={"expected_version": r.json()["version"], "override_reason": "结案，队伍随之归队"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "closed"
        notice = receive(team)
        assert notice is not None and orjson.loads(notice.payload)["kind"] == "release"
        team.ack(notice)
    final = command_client.get(f"/incidents/{iid}/orders", headers=op).json()[0]
    assert final["status"] == "released" and final["sent_at"] and final["acked_at"]
    assert db_rows(url, "SELECT status FROM team WHERE id = %s", FIELD_TEAM) == [("available",)]
    kinds = [
        r[0] for r in db_rows(url, "SELECT kind FROM incident_event WHERE incident_id = %s ORDER BY seq", iid)
    ]
    assert kinds[0] == "opened" and kinds[-1] == "state_changed" and "team_dispatched" in kinds
    assert "plan_activated" in kinds and "team_arrived" in kinds and "team_released" in kinds
