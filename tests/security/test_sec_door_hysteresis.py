"""Alarm state is bound to its publisher.

The attack (issue 8): one sensor account silenced another device's smoke alarm by
publishing a reading with the victim's ``device_id``, a low value and a 2099 ``ts``:
the state was keyed on the payload's device id alone, so the spoof cleared it, and its
future time made every later real reading "older than the last change" — frozen.

Now: the state is keyed on (scope, publisher, device, kind); a reading for a device
registered to another publisher (``device.gateway_id``, or the device's own id) is
dead-lettered with the reason; a future ``ts`` is refused at the door, and one within the
allowed clock skew counts as its receipt time in the state, so it cannot freeze it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.writer import Registry
from testkit.feeds import delivery, write_batch
from wuwang.contract import wuwang_topic
from wuwang.mqttlink import Delivery
from wuwang.settings import Settings


@pytest.fixture
def door(database_url: str) -> Settings:
    return Settings(demo_mode=True, database_url=database_url)


def register(url: str, device_id: str, gateway_id: str | None = None) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO device (id, network, kind, unit, lat, lon, gateway_id)"
            " VALUES (%s, 'venue', 'smoke', '%%/m', 32.04, 112.14, %s)", (device_id, gateway_id))


def smoke(publisher: str, msg_id: str, device_id: str, value: float, ts: datetime | None = None,
          received_at: datetime | None = None) -> Delivery:
    body: dict[str, Any] = {"id": msg_id, "device_id": device_id, "kind": "smoke", "value": value,
                            "unit": "%/m"}
    if ts is not None:
        body["ts"] = ts.isoformat()
    return delivery(wuwang_topic("venue", "sensor", publisher), body, received_at)


def alarm_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT alarm_id FROM alarm_outbox ORDER BY id")]


def dead(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT reason FROM dead_letter ORDER BY id")]


def raised(url: str, device_id: str) -> list[tuple[str, bool]]:
    with psycopg.connect(url) as conn:
        return [(str(r[0]), bool(r[1])) for r in conn.execute(
            "SELECT source_id, raised FROM sensor_alarm_state WHERE device_id = %s ORDER BY source_id",
            (device_id,))]


def test_another_account_cannot_silence_a_registered_device(door: Settings, database_url: str) -> None:
    register(database_url, "SEN-VICTIM")
    now = datetime.now(UTC)
    write_batch(door, [smoke("SEN-VICTIM", "v1", "SEN-VICTIM", 12.0, now - timedelta(seconds=30))])
    assert alarm_ids(database_url) == ["venue/SEN-VICTIM#v1"]

    # The spoof: another sensor's account speaks for the victim, low value, year 2099 —
    # and the same again with a time the door lets through.
    write_batch(door, [
        smoke("SEN-ATTACK", "a1", "SEN-VICTIM", 0.0, datetime(2099, 1, 1, tzinfo=UTC)),
        smoke("SEN-ATTACK", "a2", "SEN-VICTIM", 0.0, now - timedelta(seconds=20)),
    ])
    reasons = dead(database_url)
    assert len(reasons) == 2
    assert "ahead of the receipt time" in reasons[0]
    assert "device_id 'SEN-VICTIM' is not registered behind source 'SEN-ATTACK'" in reasons[1]
    assert raised(database_url, "SEN-VICTIM") == [("SEN-VICTIM", True)], "the victim's alarm still stands"

    # The victim's own readings still work the hysteresis: clear, then raise again.
    write_batch(door, [smoke("SEN-VICTIM", "v2", "SEN-VICTIM", 2.0, now - timedelta(seconds=10)),
                       smoke("SEN-VICTIM", "v3", "SEN-VICTIM", 14.0, now - timedelta(seconds=5))])
    assert alarm_ids(database_url) == ["venue/SEN-VICTIM#v1", "venue/SEN-VICTIM#v3"]


def test_a_gateway_speaks_only_for_the_devices_registered_behind_it(door: Settings,
                                                                    database_url: str) -> None:
    register(database_url, "SMK-0012-03", gateway_id="GW-FC-0012")
    now = datetime.now(UTC)
    write_batch(door, [
        smoke("GW-FC-0012", "g1", "SMK-0012-03", 12.6, now - timedelta(seconds=9)),  # its gateway: stored
        smoke("GW-OTHER", "o1", "SMK-0012-03", 0.0, now - timedelta(seconds=8)),  # another gateway
        smoke("SMK-0012-03", "d1", "SMK-0012-03", 0.0, now - timedelta(seconds=7)),  # the device's own id
    ])
    with psycopg.connect(database_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT source_id FROM sensor_reading")]
    assert stored == ["GW-FC-0012"]
    reasons = dead(database_url)
    assert reasons == [
        "device_id 'SMK-0012-03' is not registered behind source 'GW-OTHER' (registered: 'GW-FC-0012')",
        "device_id 'SMK-0012-03' is not registered behind source 'SMK-0012-03' (registered: 'GW-FC-0012')",
    ]
    assert raised(database_url, "SMK-0012-03") == [("GW-FC-0012", True)]


def test_an_unregistered_device_id_has_a_state_per_publisher(door: Settings, database_url: str) -> None:
    """Unknown devices are still accepted (contract: a device need not be registered), but
    whoever publishes one only ever touches its own state."""
    now = datetime.now(UTC)
    write_batch(door, [smoke("SEN-NEW", "n1", "SEN-NEW", 12.0, now - timedelta(seconds=9))])
    write_batch(door, [smoke("SEN-ATTACK", "a1", "SEN-NEW", 0.0, now - timedelta(seconds=8)),
                       smoke("SEN-ATTACK", "a2", "SEN-NEW", 0.5, now - timedelta(seconds=7))])
    assert dead(database_url) == []
    # Its readings, below the raise level, change no state: none of its own is created
    # (nothing to hold), and the device's own stays raised.
    assert raised(database_url, "SEN-NEW") == [("SEN-NEW", True)]
    # Raising and clearing only ever touch its own.
    write_batch(door, [smoke("SEN-ATTACK", "a3", "SEN-NEW", 12.0, now - timedelta(seconds=7)),
                       smoke("SEN-ATTACK", "a4", "SEN-NEW", 0.0, now - timedelta(seconds=6.5))])
    assert raised(database_url, "SEN-NEW") == [("SEN-ATTACK", False), ("SEN-NEW", True)]
    write_batch(door, [smoke("SEN-NEW", "n2", "SEN-NEW", 13.0, now - timedelta(seconds=6))])
    assert alarm_ids(database_url) == ["venue/SEN-NEW#n1", "venue/SEN-ATTACK#a3"], \
        "still raised: no second alarm, none cleared"


def test_a_fast_clock_within_the_skew_cannot_freeze_the_state(door: Settings, database_url: str) -> None:
    """A reading 4 minutes ahead (allowed skew: 5) counts as received now: the next real
    reading, a second later, still has its say."""
    now = datetime.now(UTC)
    later = [now + timedelta(seconds=s) for s in (1, 2)]
    write_batch(door, [smoke("SEN-1", "f1", "SEN-1", 12.0, now + timedelta(minutes=4), now)])
    write_batch(door, [smoke("SEN-1", "f2", "SEN-1", 1.0, later[0], later[0])])
    write_batch(door, [smoke("SEN-1", "f3", "SEN-1", 12.0, later[1], later[1])])
    assert alarm_ids(database_url) == ["venue/SEN-1#f1", "venue/SEN-1#f3"]
    with psycopg.connect(database_url) as conn:
        (changed_at,), = conn.execute("SELECT changed_at FROM sensor_alarm_state").fetchall()
    assert changed_at <= now + timedelta(seconds=2)


def test_exercise_readings_keep_their_own_scope_without_the_registry(door: Settings,
                                                                     database_url: str) -> None:
    """A drill's copy goes through the drill runner's account only (ACL); its state is the
    exercise's own. The registry binds live publishers."""
    register(database_url, "SEN-VICTIM", gateway_id="GW-1")
    now = datetime.now(UTC)
    body = {"id": "x1", "device_id": "SEN-VICTIM", "kind": "smoke", "value": 20.0, "unit": "%/m",
            "ts": now.isoformat()}
    write_batch(door, [delivery(f"exercise/v1/EX-1/{wuwang_topic('venue', 'sensor', 'SEN-VICTIM')}", body)])
    assert dead(database_url) == []
    with psycopg.connect(database_url) as conn:
        state = conn.execute("SELECT scope, source_id, raised FROM sensor_alarm_state").fetchall()
    assert state == [("EX-1", "SEN-VICTIM", True)]


def test_the_registry_cache_overflowing_mid_batch_loses_no_device(database_url: str) -> None:
    """The cache is emptied when full; devices of the batch that were cached before must
    still be looked up (else a KeyError would dead-letter a batch of valid readings)."""
    register(database_url, "SEN-A")
    register(database_url, "SEN-B", gateway_id="GW-1")
    registry = Registry()
    registry.MAX_ENTRIES = 1
    with psycopg.connect(database_url) as conn:
        assert set(registry.lookup(conn, {("device_id", "SEN-A"), ("device_id", "SEN-X")})) == {
            ("device_id", "SEN-A")}
        got = registry.lookup(conn, {("device_id", "SEN-A"), ("device_id", "SEN-B")})
    assert {d: r.publisher for (_, d), r in got.items()} == {"SEN-A": "SEN-A", "SEN-B": "GW-1"}
