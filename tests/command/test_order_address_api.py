"""The order's address on real PostgreSQL and Redis: the 110 caller's when there is
one, else described from the demo city (named crossing and nearest venue)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from fastapi.testclient import TestClient

from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import dispatch, open_incident
from tests.command.test_incidents_api import open_incidents, wait_for
from wuwang.contract import Alarm, Network
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]


def push_call(settings: Settings, msg_id: str, address: str) -> None:
    alarm = Alarm(
        alarm_id=f"police/sys110#{msg_id}",
        kind="call",
        source="police/sys110",
        msg_id=msg_id,
        network=Network.POLICE,
        ts=datetime.now(UTC),
        lat=32.0420,
        lon=112.1440,
        grid_cell_id=None,
        category="fire",
        summary=f"110报警 火灾: {address}",
        details={"call_id": msg_id, "address": address},
    )
    r = redis.Redis.from_url(settings.shared.redis_url or "")
    r.xadd(settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": alarm.encode()})
    r.close()


def order_of(client: TestClient, headers: dict[str, str], incident_id: str) -> dict[str, Any]:
    [order] = client.get(f"/incidents/{incident_id}/orders", headers=headers).json()
    message: dict[str, Any] = order["message"]
    return message


def test_the_order_says_the_callers_address_or_the_nearest_crossing_and_landmark(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    push_call(command_settings, "addr-1", "樊城区人民路 128 号三楼")
    called = wait_for(lambda: open_incidents(command_client, op))[0]
    assert dispatch(command_client, op, called, FIELD_TEAM).status_code == 201
    message = order_of(command_client, op, called["id"])
    assert (message["address"], message["address_source"]) == ("樊城区人民路 128 号三楼", "call")
    assert (message["lat"], message["lon"]) == (32.0420, 112.1440)

    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        conn.execute(
            "INSERT INTO venue (id, name, kind, lat, lon)"
            " VALUES ('V-ST', '襄阳站', 'station', 32.0650, 112.1640)"
        )
    by_hand = open_incident(command_client, op, lat=32.0630, lon=112.1640)  # ~220 m south of the station
    assert dispatch(command_client, op, by_hand, OTHER_TEAM).status_code == 201
    message = order_of(command_client, op, by_hand["id"])
    assert message["address_source"] == "nearest"
    assert message["address"].startswith("樊城区") and "交叉口附近" in message["address"]
    assert message["address"].endswith("（襄阳站南约 220 米）"), message["address"]
