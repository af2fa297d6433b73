"""/field: the mobile page's HTTP path — order acks, reports through the outbox onto
the team's own MQTT topic (real Mosquitto), photos."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import orjson
import pytest
from PIL import Image

from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import db_rows, dispatch, isolated_settings, open_incident
from tests.command.test_mqtt_side import running_command
from tests.conftest import Broker
from wuwang.mqtt import Backoff
from wuwang.mqttlink import MqttLink
from wuwang.settings import Settings

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings], mqtt_broker: Broker) -> Settings:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs)")
    return isolated_settings(make_settings)


def _png() -> bytes:
    """A real photo (the service decodes what it stores)."""
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def test_order_ack_over_http(command_settings: Settings) -> None:
    with running_command(command_settings) as (client, login):
        op, field, other = login("operator1"), login(FIELD_TEAM), login(OTHER_TEAM)
        incident = open_incident(client, op)
        r = dispatch(client, op, incident, FIELD_TEAM)
        assert r.status_code == 201, r.text
        order_id = r.json()["order"]["order_id"]
        # another team cannot acknowledge it; an operator is not a team
        assert (
            client.post(f"/field/orders/{order_id}/ack", headers=other, json={"id": "a1"}).status_code == 409
        )
        assert client.post(f"/field/orders/{order_id}/ack", headers=op, json={"id": "a1"}).status_code == 403
        ok = client.post(f"/field/orders/{order_id}/ack", headers=field, json={"id": "a1"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"applied": True, "outcome": "acked"}
        again = client.post(f"/field/orders/{order_id}/ack", headers=field, json={"id": "a1"})
        assert again.json()["applied"] is False  # repeated by a flaky network: harmless
        assert db_rows(
            command_settings.shared.database_url or "",
            "SELECT status FROM dispatch_order WHERE order_id = %s",
            order_id,
        ) == [("acked",)]


def test_report_goes_out_on_the_teams_own_topic(command_settings: Settings, mqtt_broker: Broker) -> None:
    listener = MqttLink(
        mqtt_broker.target.with_user("ingest", "demo-ingest"),
        "report-listener",
        subscriptions=[(f"teams/v1/{FIELD_TEAM}/report", 1)],
        backoff=Backoff(base=0.1, cap=1.0),
        name="listener",
    )
    listener.start()
    assert listener.wait_connected(10), listener.last_error
    try:
        with running_command(command_settings) as (client, login):
            field = login(FIELD_TEAM)
            png = _png()
            photo = client.post(
                "/field/photos",
                headers=field,
                json={"content_type": "image/png", "data_base64": base64.b64encode(png).decode()},
            )
            assert photo.status_code == 201, photo.text
            url = photo.json()["url"]
            assert client.get(url, headers=login("operator1")).content == png
            body = {
                "id": "rep-1",
                "category": "fire_lane_blocked",
                "description": "消防通道被占",
                "lat": 32.041,
                "lon": 112.143,
                "photo_url": url,
            }
            r = client.post("/field/reports", headers=field, json=body)
            assert r.status_code == 202, r.text
            bad = client.post("/field/reports", headers=field, json={**body, "id": "bad id"})
            assert bad.status_code == 422
            assert client.post("/field/reports", headers=login("operator1"), json=body).status_code == 403
            got = listener.get(timeout=15)
            assert got is not None
            assert got.topic == f"teams/v1/{FIELD_TEAM}/report"
            message = orjson.loads(got.payload)
            assert message["id"] == "rep-1"
            assert message["reporter"] == FIELD_TEAM
            assert message["photo_url"] == url
    finally:
        listener.stop(2.0, forget_session=True)
