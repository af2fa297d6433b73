"""Issue 12 over MQTT, on a real Mosquitto with the shipped ACL:

* a team's shelter count on ``teams/v2/<team>/shelter`` (docs/mqtt-contract.md §12)
  reaches the shelter registry once per id; what cannot be applied (over twice the
  capacity, an unknown shelter, an unreadable payload) is a dead letter with its reason;
* a team that moves into an issued warning's area gets the warning on
  ``warnings/v1/<team>``, once, however many positions it sends from inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
import pytest

from command.users import DEMO_PASSWORD
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import db_rows, isolated_settings
from tests.command.test_incidents_api import wait_for
from tests.command.test_mqtt_side import running_command
from tests.command.test_risk_api import shelter_body
from tests.command.test_warnings_api import CENTRE, body
from tests.conftest import Broker
from wuwang.contract import shelter_topic, team_topic
from wuwang.mqtt import Backoff
from wuwang.mqttlink import MqttLink
from wuwang.settings import Settings

pytestmark = pytest.mark.mosquitto


@contextmanager
def terminal(broker: Broker, team: str, subscriptions: list[tuple[str, int]]) -> Iterator[MqttLink]:
    link = MqttLink(
        broker.target.with_user(team, DEMO_PASSWORD),
        f"{team}-v2",
        subscriptions=subscriptions,
        backoff=Backoff(base=0.1, cap=1.0),
        name=f"{team}-v2",
    )
    link.start()
    assert link.wait_connected(10), link.last_error
    try:
        yield link
    finally:
        link.stop(2.0, forget_session=True)


def send(link: MqttLink, topic: str, payload: dict[str, object] | bytes) -> None:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    link.publish(topic, raw).result(timeout=10)


def dead_letter(url: str, topic: str, reason: str) -> Callable[[], bool]:
    """Whether a dead letter of ``topic`` names ``reason``."""
    query = "SELECT 1 FROM dead_letter WHERE topic = %s AND strpos(reason, %s) > 0"
    return lambda: bool(db_rows(url, query, topic, reason))


def test_a_teams_shelter_count_is_applied_once_and_bad_ones_are_dead_letters(
    make_settings: Callable[..., Settings], mqtt_broker: Broker
) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs)")
    settings = isolated_settings(make_settings)
    url = settings.shared.database_url or ""
    topic = shelter_topic(FIELD_TEAM)
    with running_command(settings) as (client, login), terminal(mqtt_broker, FIELD_TEAM, []) as team:
        op = login("operator1")
        r = client.put("/shelters/SH-Q1", json=shelter_body(capacity=100, status="open"), headers=op)
        assert r.status_code == 201, r.text

        count = {"id": "occ-1", "shelter_id": "SH-Q1", "occupancy": 100, "ts": datetime.now(UTC).isoformat()}
        send(team, topic, count)
        wait_for(lambda: client.get("/shelters", headers=op).json()[0]["occupancy"] == 100)
        shelter = client.get("/shelters", headers=op).json()[0]
        assert (shelter["status"], shelter["free"], shelter["occupancy_by"]) == ("full", 0, FIELD_TEAM)

        # the same id again (a QoS 1 redelivery, a resend): applied once, whatever it says
        send(team, topic, {**count, "occupancy": 40})
        for bad, reason in (
            ({"id": "occ-2", "shelter_id": "SH-Q1", "occupancy": 201}, "over twice"),
            ({"id": "occ-3", "shelter_id": "SH-NONE", "occupancy": 1}, "no shelter SH-NONE"),
            ({"id": "occ-4", "shelter_id": "SH-Q1", "occupancy": -1}, "occupancy"),
            (b"not json", "not valid UTF-8 JSON"),
        ):
            send(team, topic, bad)
            wait_for(dead_letter(url, topic, reason))
        send(team, topic, {"id": "occ-5", "shelter_id": "SH-Q1", "occupancy": 60})
        wait_for(lambda: client.get("/shelters", headers=op).json()[0]["occupancy"] == 60)
        assert client.get("/shelters", headers=op).json()[0]["status"] == "open"  # room again
        reports = db_rows(
            url, "SELECT msg_id, occupancy, channel FROM shelter_occupancy_report ORDER BY received_at"
        )
        assert reports == [("occ-1", 100, "mqtt"), ("occ-5", 60, "mqtt")]
        assert db_rows(url, "SELECT count(*) FROM dead_letter") == [(4,)]


def test_a_team_that_moves_into_an_issued_warnings_area_gets_it_once(
    make_settings: Callable[..., Settings], mqtt_broker: Broker
) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs)")
    settings = isolated_settings(make_settings)
    url = settings.shared.database_url or ""
    own = f"warnings/v1/{FIELD_TEAM}"
    with (
        running_command(settings) as (client, login),
        terminal(mqtt_broker, FIELD_TEAM, [(own, 1)]) as team,
    ):
        db_rows(url, "UPDATE team SET lat = 32.3, lon = 112.4 WHERE id = %s RETURNING id", FIELD_TEAM)
        cmd = login("commander1")
        ident = client.post("/warnings", json=body(level="red"), headers=cmd).json()["identifier"]
        r = client.post(f"/warnings/{ident}/approve", headers=cmd)
        assert r.status_code == 200 and r.json()["target_teams"] == [OTHER_TEAM], r.text
        assert team.get(timeout=1.0) is None, "a team outside the area was told"

        position = team_topic(FIELD_TEAM, "position")
        for n in range(3):  # into the square, and on inside it
            at = datetime.now(UTC).isoformat()
            send(team, position, {"id": f"p-{n}", "ts": at, "lat": CENTRE[0] + n * 0.001, "lon": CENTRE[1]})
            if n == 0:
                got = team.get(timeout=15)
                assert got is not None, "the team that moved in never got the warning"
                message = orjson.loads(got.payload)
                assert (got.topic, message["identifier"], message["kind"]) == (own, ident, "alert")
                team.ack(got)
        wait_for(
            lambda: client.get(f"/warnings/{ident}", headers=cmd).json()["target_teams"]
            == [OTHER_TEAM, FIELD_TEAM]
        )
        assert team.get(timeout=1.5) is None, "told twice"
        assert db_rows(
            url, "SELECT account, reason FROM warning_recipient WHERE identifier = %s ORDER BY account", ident
        ) == [(FIELD_TEAM, "moved_in"), (OTHER_TEAM, "issued")]
        # lifting it reaches the team that moved in too
        lifted = client.post(f"/warnings/{ident}/cancel", json={"reason": "解除"}, headers=cmd)
        assert lifted.status_code == 200, lifted.text
        got = team.get(timeout=15)
        assert got is not None and orjson.loads(got.payload)["kind"] == "cancel"
        team.ack(got)
