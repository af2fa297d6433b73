"""Warnings (预警) over MQTT on a real Mosquitto with the shipped ACL: an approved
warning reaches the team inside its area on warnings/v1/<team> through the outbox, its
cancellation too; a team outside the area gets nothing."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from command.users import DEMO_PASSWORD
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import db_rows, isolated_settings
from tests.command.test_incidents_api import wait_for
from tests.command.test_mqtt_side import running_command
from tests.command.test_warnings_api import body
from tests.conftest import Broker
from wuwang.mqtt import Backoff
from wuwang.mqttlink import MqttLink
from wuwang.outbound import WarningMessage
from wuwang.settings import Settings

pytestmark = pytest.mark.mosquitto


def test_an_issued_warning_reaches_the_teams_inside_over_mqtt(
    make_settings: Callable[..., Settings], mqtt_broker: Broker
) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs)")
    settings = isolated_settings(make_settings)
    url = settings.shared.database_url or ""
    own = f"warnings/v1/{FIELD_TEAM}"
    team = MqttLink(
        mqtt_broker.target.with_user(FIELD_TEAM, DEMO_PASSWORD),
        f"{FIELD_TEAM}-warnings",
        # another team's warnings: granted by the broker, never delivered (ACL)
        subscriptions=[(own, 1), (f"warnings/v1/{OTHER_TEAM}", 1)],
        backoff=Backoff(base=0.1, cap=1.0),
        name="warnings",
    )
    team.start()
    assert team.wait_connected(10), team.last_error
    try:
        with running_command(settings) as (client, login):
            db_rows(url, "UPDATE team SET lat = 32.3, lon = 112.4 WHERE id = %s RETURNING id", OTHER_TEAM)
            cmd = login("commander1")
            ident = client.post("/warnings", json=body(level="red"), headers=cmd).json()["identifier"]
            r = client.post(f"/warnings/{ident}/approve", headers=cmd)
            assert r.status_code == 200 and r.json()["target_teams"] == [FIELD_TEAM], r.text
            got = team.get(timeout=15)
            assert got is not None, "the warning never reached the team"
            message = orjson.loads(got.payload)
            assert got.topic == own and got.qos == 1
            assert (message["kind"], message["identifier"], message["level"]) == ("alert", ident, "red")
            assert message["headline"] == "樊城区暴雨橙色预警" and message["area"]["polygon"]
            team.ack(got)
            r = client.post(f"/warnings/{ident}/cancel", json={"reason": "解除"}, headers=cmd)
            assert r.status_code == 200, r.text
            got = team.get(timeout=15)
            assert got is not None and orjson.loads(got.payload)["kind"] == "cancel"
            assert WarningMessage.model_validate_json(got.payload).reason == "解除"
            team.ack(got)
            assert team.get(timeout=1.0) is None, "more than was sent, or another team's"
            wait_for(
                lambda: db_rows(url, "SELECT bool_and(sent_at IS NOT NULL) FROM mqtt_outbox") == [(True,)]
            )
    finally:
        team.stop(2.0, forget_session=True)
