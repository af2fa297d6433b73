"""NUL (U+0000) on the command service's own MQTT door: a team's order acknowledgement.

The ingest dead-letters a NUL in any feed (test_sec_door_nul.py), but ``teams/v1/<team>/ack``
is read by the command service alone. An ack whose reason (or id, or an extra field) held
a NUL passed validation, reached the ``UPDATE dispatch_order`` and failed there
(``PostgreSQL text fields cannot contain NUL``): logged as a traceback and dropped, with
nothing kept of what the team sent. Now it is refused like any other unreadable ack, and
every unreadable ack is a dead letter with its reason; the order is untouched and the
team's next, clean ack is applied.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from command.services.dispatch import OrderAck
from tests.command.conftest import FIELD_TEAM
from tests.command.test_dispatch_api import db_rows, dispatch, isolated_settings, open_incident
from tests.command.test_field_mqtt_v2 import dead_letter, send, terminal
from tests.command.test_incidents_api import wait_for
from tests.command.test_mqtt_side import running_command
from tests.conftest import Broker
from wuwang.contract import team_topic
from wuwang.settings import Settings

ACK_TOPIC = team_topic(FIELD_TEAM, "ack")


@pytest.mark.parametrize(
    "body",
    [
        {"id": "a\u0000", "order_id": "ORD-1", "status": "accepted"},
        {"id": "a", "order_id": "ORD-\u00001", "status": "accepted"},
        {"id": "a", "order_id": "ORD-1", "status": "refused", "reason": "车辆\u0000故障"},
        {"id": "a", "order_id": "ORD-1", "status": "accepted", "vendor": {"note": ["ok", "x\u0000"]}},
        {"id": "a", "order_id": "ORD-1", "status": "accepted", "ven\u0000dor": 1},
    ],
)
def test_an_ack_holding_nul_is_unreadable(body: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"NUL \(U\+0000\)"):
        OrderAck.model_validate(body)


@pytest.mark.mosquitto
def test_a_teams_ack_with_nul_is_a_dead_letter_and_the_order_stands(
    make_settings: Callable[..., Settings], mqtt_broker: Broker
) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs)")
    settings = isolated_settings(make_settings)
    url = settings.shared.database_url or ""
    with running_command(settings) as (client, login), terminal(mqtt_broker, FIELD_TEAM, []) as team:
        op = login("operator1")
        inc = open_incident(client, op)
        r = dispatch(client, op, inc, FIELD_TEAM)
        assert r.status_code == 201, r.text
        order_id = r.json()["order"]["order_id"]

        send(
            team,
            ACK_TOPIC,
            {"id": "ack-nul", "order_id": order_id, "status": "refused", "reason": "车辆\u0000故障"},
        )
        wait_for(dead_letter(url, ACK_TOPIC, "NUL (U+0000)"))
        send(team, ACK_TOPIC, b"not json")
        wait_for(dead_letter(url, ACK_TOPIC, "Invalid JSON"))
        assert db_rows(url, "SELECT status FROM dispatch_order WHERE order_id = %s", order_id) != [
            ("refused",)
        ], "the unreadable refusal changed the order"

        # The feed was not stopped by it: the team's clean ack is applied.
        send(team, ACK_TOPIC, {"id": "ack-ok", "order_id": order_id, "status": "accepted"})
        wait_for(
            lambda: (
                db_rows(url, "SELECT status FROM dispatch_order WHERE order_id = %s", order_id)
                == [("acked",)]
            )
        )
        ((raw,),) = db_rows(url, "SELECT payload FROM dead_letter WHERE strpos(reason, 'NUL') > 0")
        assert b"\\u0000" in bytes(raw), "the bytes the team sent are kept"
