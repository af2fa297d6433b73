"""The command service's MQTT side on a real Mosquitto: the order outbox across a broker
outage, acks and refusals from the team, the ack watchdog, statuses ordered by seq,
positions into Redis GEO."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from command.app import create_app
from command.users import DEMO_PASSWORD
from tests.command.conftest import FIELD_TEAM, _seed_minimal_city
from tests.command.test_dispatch_api import db_rows, dispatch, isolated_settings, open_incident
from tests.command.test_incidents_api import wait_for
from tests.conftest import Broker
from wuwang.mqtt import Backoff
from wuwang.mqttlink import Delivery, MqttLink
from wuwang.settings import Settings

pytestmark = pytest.mark.mosquitto

Login = Callable[[str], dict[str, str]]
DISPATCH = f"teams/v1/{FIELD_TEAM}/dispatch"


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings], mqtt_broker: Broker) -> Settings:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs, shared subscriptions)")
    return isolated_settings(make_settings)


@contextmanager
def team_terminal(broker: Broker, name: str) -> Iterator[MqttLink]:
    """The team's device: logs in as T-FIRE-01 (MQTT 5, QoS 1, persistent session)."""
    link = MqttLink(
        broker.target.with_user(FIELD_TEAM, DEMO_PASSWORD),
        f"{FIELD_TEAM}-{name}",
        subscriptions=[(DISPATCH, 1)],
        backoff=Backoff(base=0.1, cap=1.0),
        name=name,
    )
    link.start()
    assert link.wait_connected(10), link.last_error
    try:
        yield link
    finally:
        link.stop(2.0, forget_session=True)


def receive(link: MqttLink, timeout: float = 15.0) -> Delivery | None:
    return link.get(timeout=timeout)


def publish_as_team(link: MqttLink, leaf: str, body: dict[str, Any]) -> None:
    link.publish(f"teams/v1/{FIELD_TEAM}/{leaf}", orjson.dumps(body)).result(timeout=10)


@contextmanager
def running_command(settings: Settings) -> Iterator[tuple[TestClient, Callable[[str], dict[str, str]]]]:
    assert settings.shared.database_url
    _seed_minimal_city(settings.shared.database_url)
    with TestClient(create_app(settings)) as client:

        def login(user: str) -> dict[str, str]:
            r = client.post("/auth/login", json={"username": user, "password": DEMO_PASSWORD})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        yield client, login


def orders(client: TestClient, headers: dict[str, str], incident_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/incidents/{incident_id}/orders", headers=headers)
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_order_dispatched_while_the_broker_is_down_is_delivered_once_it_is_back(
    make_settings: Callable[..., Settings], own_mosquitto: Broker
) -> None:
    settings = isolated_settings(make_settings, broker=own_mosquitto)
    url = settings.shared.database_url or ""
    with running_command(settings) as (client, login), team_terminal(own_mosquitto, "outage") as team:
        op = login("operator1")
        assert client.get("/healthz").json()["checks"]["broker"] == "ok"
        own_mosquitto.process.stop()  # type: ignore[union-attr]
        wait_for(lambda: client.get("/healthz").json()["checks"]["broker"].startswith("down"))
        assert client.get("/healthz").status_code == 503
        inc = open_incident(client, op)
        r = dispatch(client, op, inc, FIELD_TEAM)
        assert r.status_code == 201, r.text  # the broker is not needed to decide
        order_id = r.json()["order"]["order_id"]
        time.sleep(1.0)
        assert db_rows(url, "SELECT sent_at, attempts FROM mqtt_outbox") == [(None, 0)]
        assert orders(client, op, inc["id"])[0]["status"] == "pending"

        own_mosquitto.process.start()  # type: ignore[union-attr]
        got = receive(team, timeout=30)
        assert got is not None, "the order never reached the team"
        message = orjson.loads(got.payload)
        assert message["order_id"] == order_id and message["kind"] == "dispatch" and got.qos == 1
        team.ack(got)
        assert receive(team, timeout=1.5) is None, "delivered more than once"
        wait_for(lambda: db_rows(url, "SELECT sent_at IS NOT NULL FROM mqtt_outbox") == [(True,)])
        order = orders(client, op, inc["id"])[0]
        assert order["status"] == "sent" and order["sent_at"] is not None
        assert client.get("/healthz").json()["checks"]["broker"] == "ok"


def test_team_acks_and_refusals_over_mqtt(
    command_client: TestClient, command_settings: Settings, login: Login, mqtt_broker: Broker
) -> None:
    op = login("operator1")
    url = command_settings.shared.database_url or ""
    with team_terminal(mqtt_broker, "acks") as team:
        inc = open_incident(command_client, op)
        r = dispatch(command_client, op, inc, FIELD_TEAM)
        assert r.status_code == 201
        order = r.json()["order"]
        got = receive(team)
        assert got is not None and orjson.loads(got.payload)["order_id"] == order["order_id"]
        team.ack(got)
        publish_as_team(
            team,
            "ack",
            {
                "id": "ack-0001",
                "ts": datetime.now(UTC).isoformat(),
                "order_id": order["order_id"],
                "status": "accepted",
            },
        )
        acked = wait_for(lambda: [o for o in orders(command_client, op, inc["id"]) if o["status"] == "acked"])
        assert acked[0]["acked_at"] is not None and acked[0]["in_force"]
        # the same ack again (at-least-once) changes nothing
        publish_as_team(team, "ack", {"id": "ack-0001", "order_id": order["order_id"], "status": "accepted"})
        # the ack is on the incident's record too (a new version: docs/incidents.md §3.2)
        detail = wait_for(
            lambda: (lambda d: d if d["timeline"][-1]["kind"] == "team_acknowledged" else None)(
                command_client.get(f"/incidents/{inc['id']}", headers=op).json()
            )
        )
        assert detail["incident"]["version"] == r.json()["incident"]["version"] + 1

        released = command_client.post(
            f"/incidents/{inc['id']}/release",
            headers=op,
            json={
                "team_id": FIELD_TEAM,
                "expected_version": detail["incident"]["version"],
                "reason": "改派",
            },
        )
        assert released.status_code == 200
        notice = receive(team)
        assert notice is not None and orjson.loads(notice.payload)["kind"] == "release"
        team.ack(notice)

        token = op["Authorization"].removeprefix("Bearer ")
        with command_client.websocket_connect(f"/ws?token={token}") as ws:
            assert ws.receive_json()["type"] == "snapshot"
            second = dispatch(command_client, op, inc, FIELD_TEAM, released.json()["incident"]["version"])
            assert second.status_code == 201
            got2 = receive(team)
            assert got2 is not None
            team.ack(got2)
            second_id = second.json()["order"]["order_id"]
            publish_as_team(
                team,
                "ack",
                {"id": "ack-0002", "order_id": second_id, "status": "refused", "reason": "车辆故障"},
            )
            alert = None
            for _ in range(50):
                change = ws.receive_json()
                if change["type"] == "alert":
                    alert = change
                    break
            assert alert is not None and alert["data"]["kind"] == "order_refused"
            assert alert["data"]["order_id"] == second_id and "车辆故障" in alert["data"]["text"]
        refused = next(o for o in orders(command_client, op, inc["id"]) if o["order_id"] == second_id)
        assert (
            refused["status"] == "refused" and refused["ack_reason"] == "车辆故障" and not refused["in_force"]
        )
        assert db_rows(url, "SELECT status FROM team WHERE id = %s", FIELD_TEAM) == [("available",)]
    acks = db_rows(
        url, "SELECT action FROM audit_log WHERE action IN ('dispatch.ack', 'dispatch.refused') ORDER BY id"
    )
    assert acks == [("dispatch.ack",), ("dispatch.refused",)]


def test_an_order_not_acknowledged_in_time_raises_one_alert(
    make_settings: Callable[..., Settings], mqtt_broker: Broker
) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto")
    settings = isolated_settings(make_settings, command_ack_timeout_s=0.5)
    url = settings.shared.database_url or ""
    with running_command(settings) as (client, login), team_terminal(mqtt_broker, "silent") as team:
        op = login("operator1")
        token = op["Authorization"].removeprefix("Bearer ")
        with client.websocket_connect(f"/ws?token={token}") as ws:
            assert ws.receive_json()["type"] == "snapshot"
            inc = open_incident(client, op)
            order_id = dispatch(client, op, inc, FIELD_TEAM).json()["order"]["order_id"]
            got = receive(team)
            assert got is not None
            team.ack(got)  # delivered, but the crew never answers
            alert = None
            for _ in range(50):
                change = ws.receive_json()
                if change["type"] == "alert":
                    alert = change
                    break
            assert alert is not None and alert["data"]["kind"] == "ack_overdue"
            assert alert["data"]["order_id"] == order_id and alert["team_id"] == FIELD_TEAM
        time.sleep(1.5)  # several more watchdog rounds
        assert db_rows(url, "SELECT count(*) FROM audit_log WHERE action = 'dispatch.ack_overdue'") == [(1,)]
        assert orders(client, op, inc["id"])[0]["ack_overdue_at"] is not None


def test_status_over_mqtt_updates_the_team_and_ignores_a_stale_seq(
    command_client: TestClient, command_settings: Settings, login: Login, mqtt_broker: Broker
) -> None:
    op = login("operator1")
    url = command_settings.shared.database_url or ""

    def team_status() -> tuple[str, int | None]:
        t = command_client.get(f"/teams/{FIELD_TEAM}", headers=op).json()
        return t["status"], t["status_seq"]

    with team_terminal(mqtt_broker, "status") as team:
        publish_as_team(team, "status", {"id": "s-5", "status": "en_route", "seq": 5})
        wait_for(lambda: team_status() == ("en_route", 5))
        publish_as_team(team, "status", {"id": "s-4", "status": "on_scene", "seq": 4})  # reordered: older
        publish_as_team(team, "status", {"id": "s-6", "status": "returning", "seq": 6})
        wait_for(lambda: team_status() == ("returning", 6))
        publish_as_team(team, "status", {"id": "bad", "status": "busy", "seq": 7})  # not a status: dropped
        publish_as_team(team, "status", {"id": "s-8", "status": "available", "seq": 8})
        wait_for(lambda: team_status() == ("available", 8))
    seqs = [
        r[0]
        for r in db_rows(
            url,
            "SELECT detail->>'seq' FROM audit_log WHERE action = 'team.status'"
            " AND detail->>'via' = 'mqtt' ORDER BY id",
        )
    ]
    assert seqs == ["5", "6", "8"]


def test_position_over_mqtt_is_found_by_geosearch(
    command_client: TestClient, command_settings: Settings, login: Login, mqtt_broker: Broker
) -> None:
    op = login("operator1")
    url = command_settings.shared.database_url or ""
    near = {"lat": 32.0420, "lon": 112.1440, "radius_m": 1000}

    def found() -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = command_client.get("/teams/near", headers=op, params=near).json()
        return body

    assert found() == []
    with team_terminal(mqtt_broker, "gps") as team:
        now = datetime.now(UTC)
        publish_as_team(
            team,
            "position",
            {"id": "p-1", "ts": now.isoformat(), "lat": 32.0450, "lon": 112.1460, "speed": 8.5, "seq": 1},
        )
        hit = wait_for(found)
        assert hit[0]["id"] == FIELD_TEAM and hit[0]["distance_m"] < 500
        # Redis first, then PostgreSQL's copy: the search may see the position a moment
        # before the row is committed (a loaded make test did)
        stored = [(32.0450, 112.1460)]
        assert wait_for(lambda: db_rows(url, "SELECT lat, lon FROM team WHERE id = %s", FIELD_TEAM) == stored)
        later = now + timedelta(seconds=2)
        publish_as_team(
            team,
            "position",
            {"id": "p-2", "ts": later.isoformat(), "lat": 32.0430, "lon": 112.1445, "seq": 2},
        )
        wait_for(lambda: found() and found()[0]["lat"] == pytest.approx(32.0430, abs=1e-4))
        # PostgreSQL keeps a throttled copy (at most every 10 s per team); Redis is live
        assert db_rows(url, "SELECT lat FROM team WHERE id = %s", FIELD_TEAM) == [(32.0450,)]
        far = command_client.get(
            "/teams/near", headers=op, params={"lat": 32.2, "lon": 112.5, "radius_m": 1000}
        ).json()
        assert far == []
    listed = next(t for t in command_client.get("/teams", headers=op).json() if t["id"] == FIELD_TEAM)
    assert listed["position"]["source"] == "live" and listed["position"]["lat"] == pytest.approx(
        32.0430, abs=1e-4
    )
