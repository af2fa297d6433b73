"""A camera account speaks only for its own cameras.

The attack (issue 8, identity): the broker's ACL binds a camera account to its own topic
(``video/CAM-0001`` publishes ``wuwang/v1/<network>/video/CAM-0001`` only), but the
alert's ``camera_id`` is the payload's: one camera account published an alert naming
another registered camera, and it was stored and alarmed as that camera.

Now the rule of sensor readings holds for video alerts (``ingest.rows.foreign_subject``):
a video platform (``camera.gateway_id``, migration 0022) speaks only for the cameras
registered behind it, a camera registered without one only for itself; an alert for a
camera registered to another source is dead-lettered with a reason naming both. An
unregistered camera id is accepted from anyone (contract v1: registration is optional);
a drill's copy is the drill runner's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from ingest.service import IngestService
from testkit.feeds import delivery, wait_for, write_batch
from tests.broker_peers import FIELD_PASSWORD, Peer
from wuwang.contract import wuwang_topic
from wuwang.mqttlink import Delivery
from wuwang.settings import Settings


@pytest.fixture
def door(database_url: str) -> Settings:
    return Settings(demo_mode=True, database_url=database_url)


def register(url: str, camera_id: str, gateway_id: str | None = None) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO camera (id, network, lat, lon, gateway_id) VALUES (%s, 'video', 32.04, 112.14, %s)",
            (camera_id, gateway_id),
        )


def alert(msg_id: str, camera_id: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "ts": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "camera_id": camera_id,
        "event": "fire_smoke",
        "confidence": 0.95,
        "lat": 32.04,
        "lon": 112.14,
    }


def from_source(source_id: str, msg_id: str, camera_id: str) -> Delivery:
    return delivery(wuwang_topic("video", "video", source_id), alert(msg_id, camera_id))


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def stored(url: str) -> list[tuple[str, str]]:
    return [
        (str(a), str(b)) for a, b in rows(url, "SELECT source_id, camera_id FROM video_alert ORDER BY msg_id")
    ]


def dead(url: str) -> list[str]:
    return [str(r[0]) for r in rows(url, "SELECT reason FROM dead_letter ORDER BY id")]


def alarm_ids(url: str) -> list[str]:
    return [str(r[0]) for r in rows(url, "SELECT alarm_id FROM alarm_outbox ORDER BY id")]


@pytest.fixture
def ingest_on_own_broker(make_settings: Any, own_mosquitto: Any) -> Iterator[IngestService]:
    svc = IngestService(
        make_settings(
            broker=own_mosquitto,
            ingest_metrics_port=0,
            ingest_flush_ms=20,
            ingest_shared_group=f"cam-{id(own_mosquitto)}",
        ),
        metrics_addr="127.0.0.1",
    )
    svc.start()
    try:
        assert svc.wait_ready(30), "ingest did not connect and subscribe"
        yield svc
    finally:
        svc.stop(timeout=10, forget_session=True)


@pytest.mark.mosquitto
def test_a_camera_account_cannot_raise_an_alarm_as_another_camera(
    ingest_on_own_broker: IngestService, own_mosquitto: Any, database_url: str
) -> None:
    """Through the project's Mosquitto (field listener, the demo account video/CAM-0001) and
    the running ingest: the broker lets the alert through (its topic is the account's own),
    the ingest's door refuses what it claims."""
    register(database_url, "CAM-0001")
    register(database_url, "CAM-0002")
    cam = Peer(int(own_mosquitto.target.port), "video/CAM-0001", FIELD_PASSWORD, "ignored-by-the-broker")
    assert cam.connect().value == 0
    try:
        topic = wuwang_topic("video", "video", "CAM-0001")
        assert cam.publish(topic, orjson.dumps(alert("spoof", "CAM-0002"))).value == 0
        assert cam.publish(topic, orjson.dumps(alert("own", "CAM-0001"))).value == 0
    finally:
        cam.close()
    wait_for(lambda: bool(dead(database_url)) and bool(stored(database_url)), 30, what="both written")
    assert dead(database_url) == [
        "camera_id 'CAM-0002' is not registered behind source 'CAM-0001' (registered: 'CAM-0002')"
    ]
    assert stored(database_url) == [("CAM-0001", "CAM-0001")], "only its own alert is stored"
    assert alarm_ids(database_url) == ["video/CAM-0001#own"], "no alarm as CAM-0002"


def test_a_video_platform_speaks_for_its_cameras_and_no_other(door: Settings, database_url: str) -> None:
    register(database_url, "CAM-P1", gateway_id="VMS-01")
    register(database_url, "CAM-OWN")
    write_batch(
        door,
        [
            from_source("VMS-01", "p1", "CAM-P1"),  # its platform: stored
            from_source("VMS-01", "p2", "CAM-OWN"),  # a camera that publishes for itself
            from_source("VMS-02", "o1", "CAM-P1"),  # another platform
            from_source("CAM-P1", "d1", "CAM-P1"),  # the camera's own id, while its platform speaks for it
        ],
    )
    assert stored(database_url) == [("VMS-01", "CAM-P1")]
    assert dead(database_url) == [
        "camera_id 'CAM-OWN' is not registered behind source 'VMS-01' (registered: 'CAM-OWN')",
        "camera_id 'CAM-P1' is not registered behind source 'VMS-02' (registered: 'VMS-01')",
        "camera_id 'CAM-P1' is not registered behind source 'CAM-P1' (registered: 'VMS-01')",
    ]
    assert alarm_ids(database_url) == ["video/VMS-01#p1"]


def test_an_unregistered_camera_id_is_accepted_as_its_publishers(door: Settings, database_url: str) -> None:
    """As for an unregistered device: accepted from anyone, and its alarm is the publisher's
    (its source key), never a registered camera's."""
    register(database_url, "CAM-0001")
    write_batch(door, [from_source("CAM-0001", "n1", "CAM-NEW"), from_source("VMS-09", "n2", "CAM-NEW")])
    assert dead(database_url) == []
    assert stored(database_url) == [("CAM-0001", "CAM-NEW"), ("VMS-09", "CAM-NEW")]
    assert alarm_ids(database_url) == ["video/CAM-0001#n1", "video/VMS-09#n2"]


def test_a_drills_alerts_are_the_drill_runners(door: Settings, database_url: str) -> None:
    """A drill's copy goes through the drill runner's account only (ACL): the registry binds
    live publishers, as for sensors."""
    register(database_url, "CAM-P1", gateway_id="VMS-01")
    write_batch(
        door,
        [delivery(f"exercise/v1/EX-1/{wuwang_topic('video', 'video', 'CAM-0007')}", alert("x1", "CAM-P1"))],
    )
    assert dead(database_url) == []
    assert stored(database_url) == [("CAM-0007", "CAM-P1")]


def test_readings_and_alerts_of_one_batch_are_looked_up_together(door: Settings, database_url: str) -> None:
    """A device and a camera may share an id (two registries): each is judged by its own."""
    register(database_url, "X-1", gateway_id="VMS-01")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO device (id, network, kind, unit, lat, lon) VALUES"
            " ('X-1', 'venue', 'smoke', '%/m', 32.04, 112.14)"
        )
    reading = {"id": "r1", "device_id": "X-1", "kind": "smoke", "value": 1.0, "unit": "%/m"}
    write_batch(
        door,
        [
            delivery(wuwang_topic("venue", "sensor", "X-1"), reading),  # the device itself: fine
            from_source("X-1", "a1", "X-1"),  # the camera is its platform's
        ],
    )
    assert rows(database_url, "SELECT source_id, lat FROM sensor_reading") == [("X-1", 32.04)]
    assert dead(database_url) == [
        "camera_id 'X-1' is not registered behind source 'X-1' (registered: 'VMS-01')"
    ]
