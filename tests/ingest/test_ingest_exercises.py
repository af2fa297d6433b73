"""Exercise isolation on the ingest side, against the real Mosquitto, PostgreSQL and Redis.

A drill publishes contract v1 messages behind ``exercise/v1/<exercise_id>/``. The
ingest stores them with ``exercise_id`` set, keys their ids per exercise (a replay
republishes recorded messages with their original ids), marks and separates their
alarms, keeps their sensor hysteresis apart from the live one and leaves them out of
the live per-minute aggregate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from command.domain.correlation import alarm_exercise_id
from ingest.rows import TABLE_COLUMNS
from ingest.service import IngestService
from testkit.feeds import publish, samples, wait_for
from wuwang import db
from wuwang.contract import Alarm, encode, exercise_source_prefix, wuwang_topic
from wuwang.exercises import exercise_topic
from wuwang.settings import Settings

CALL = {"call_id": "110-1", "category": "fire", "lat": 32.03, "lon": 112.15, "address": "樊城区人民路12号",
        "description": "三楼冒烟", "caller": "13812345678"}


@pytest.fixture
def ingest(make_settings: Callable[..., Settings]) -> Iterator[IngestService]:
    """One in-process ingest (no metrics endpoint); its broker session ends at teardown."""
    svc = IngestService(make_settings(ingest_flush_ms=20), serve_metrics=False)
    svc.start()
    try:
        assert svc.wait_ready(20), "ingest did not connect and subscribe"
        yield svc
    finally:
        svc.stop(forget_session=True)


def handled(svc: IngestService) -> Counter[str]:
    """Messages the ingest has committed, by outcome (stored, duplicate, dead_letter)."""
    out: Counter[str] = Counter()
    for family in svc.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "ingest_messages_total":
                out[sample.labels["outcome"]] += int(sample.value)
    return out


def publish_and_wait(svc: IngestService, broker: Any, items: list[tuple[str, bytes]]) -> Counter[str]:
    """Publish as the drill runner (account ``simulator``) and wait until every message
    is committed; returns the outcomes."""
    before = sum(handled(svc).values())
    publish(broker.url_for("simulator"), items, protocol=broker.protocol)
    # a generous bound: the broker, the ingest and PostgreSQL share two cores with the other worker
    wait_for(lambda: sum(handled(svc).values()) - before == len(items), 180, what=f"{len(items)} messages")
    return handled(svc)


def rows(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def count(url: str, table: str) -> int:
    return int(rows(url, f"SELECT count(*) FROM {table}")[0][0])


def outbox(url: str) -> dict[str, Alarm]:
    """The alarms the ingest raised, as the command service reads them."""
    return {a: Alarm.from_builtins(p) for a, p in rows(url, "SELECT alarm_id, payload FROM alarm_outbox")}


def test_exercise_rows_are_marked_and_ids_are_kept_per_exercise(ingest: IngestService, mqtt_broker: Any,
                                                               database_url: str) -> None:
    live = samples(120, seed=11)  # every feed, every table
    by_table = Counter(s.table for s in live)
    assert set(by_table) == set(TABLE_COLUMNS)
    # A replay sends the recorded messages again with their original ids: live once,
    # exercise A twice (a resend after a lost PUBACK), exercise B once.
    in_a = [(exercise_topic("EX-A", s.topic), s.payload) for s in live]
    in_b = [(exercise_topic("EX-B", s.topic), s.payload) for s in live]
    outcomes = publish_and_wait(ingest, mqtt_broker, [s.item() for s in live] + in_a + in_a + in_b)
    assert outcomes == {"stored": 3 * len(live), "duplicate": len(live)}

    for table in TABLE_COLUMNS:
        query = f"SELECT coalesce(exercise_id, 'live'), count(*) FROM {table} GROUP BY 1"
        got = dict(rows(database_url, query))
        assert got == {"live": by_table[table], "EX-A": by_table[table], "EX-B": by_table[table]}, table
    assert count(database_url, "dead_letter") == 0
    heads = rows(database_url, "SELECT DISTINCT split_part(source, '/', 1) FROM message_ledger")
    assert {h for (h,) in heads} == {"ex", "team", "patrol", "community", "venue", "police", "video"}
    # what a purge of exercise A deletes from the ledger (starts_with: "_" is a LIKE wildcard)
    in_ledger = rows(database_url, "SELECT count(*) FROM message_ledger WHERE starts_with(source, %s)",
                     exercise_source_prefix("EX-A"))
    assert in_ledger == [(len(live),)]

    # The live per-minute aggregate counts the live rows only.
    with psycopg.connect(database_url, autocommit=True) as conn:
        db.refresh_aggregates(conn)
    counted = dict(rows(database_url, "SELECT feed, sum(n)::int FROM feed_counts_1m GROUP BY feed"))
    assert counted == {
        "sensor": by_table["sensor_reading"], "video": by_table["video_alert"],
        "call": by_table["emergency_call"], "report": by_table["field_report"],
    }


def test_exercise_alarms_are_marked_with_ids_of_their_own(ingest: IngestService, mqtt_broker: Any,
                                                          database_url: str) -> None:
    topic = wuwang_topic("police", "call", "sys110")
    body = encode({"id": "c1", **CALL})
    items = [(topic, body), (exercise_topic("EX-A", topic), body), (exercise_topic("EX-A", topic), body)]
    assert publish_and_wait(ingest, mqtt_broker, items) == {"stored": 2, "duplicate": 1}
    alarms = outbox(database_url)
    assert sorted(alarms) == ["ex/EX-A/police/sys110#c1", "police/sys110#c1"]
    drill, real = alarms["ex/EX-A/police/sys110#c1"], alarms["police/sys110#c1"]
    assert drill.details["exercise_id"] == "EX-A" and alarm_exercise_id(drill) == "EX-A"
    assert "exercise_id" not in real.details and alarm_exercise_id(real) is None
    assert drill.source == "ex/EX-A/police/sys110" and drill.msg_id == real.msg_id == "c1"
    assert drill.summary == real.summary and drill.category == real.category == "fire"


def test_sensor_hysteresis_is_kept_per_exercise(ingest: IngestService, mqtt_broker: Any,
                                               database_url: str) -> None:
    """A drill's readings on a real device id neither raise nor clear its live state."""
    live_topic = wuwang_topic("venue", "sensor", "SEN-0001")
    drill_topic = exercise_topic("EX-A", live_topic)
    steps = [  # in time order; smoke raises at 10, clears below 5
        (live_topic, 12.0),  # s0: live raises
        (drill_topic, 12.5),  # s1: the exercise raises too (its own state, not the live one)
        (drill_topic, 4.0),  # s2: the exercise clears ...
        (live_topic, 13.0),  # s3: ... which did not clear the live state: no second live alarm
        (drill_topic, 12.0),  # s4: the exercise raises again
    ]
    start = datetime.now(UTC) - timedelta(minutes=5)  # recent: inside the door's time window
    items = [(topic, encode({"id": f"s{i}", "ts": (start + timedelta(seconds=i)).isoformat(),
                             "device_id": "SEN-0001", "kind": "smoke", "value": value, "unit": "%/m",
                             "lat": 32.04, "lon": 112.14}))
             for i, (topic, value) in enumerate(steps)]
    assert publish_and_wait(ingest, mqtt_broker, items) == {"stored": len(steps)}
    assert sorted(outbox(database_url)) == [
        "ex/EX-A/venue/SEN-0001#s1", "ex/EX-A/venue/SEN-0001#s4", "venue/SEN-0001#s0",
    ]
    state = rows(database_url, "SELECT scope, device_id, kind, raised FROM sensor_alarm_state ORDER BY scope")
    assert state == [("", "SEN-0001", "smoke", True), ("EX-A", "SEN-0001", "smoke", True)]


def test_bad_exercise_topics_are_dead_lettered_with_their_exercise(ingest: IngestService, mqtt_broker: Any,
                                                                  database_url: str) -> None:
    call = encode({"id": "c1", **CALL})
    items = [
        ("exercise/v1/EX 1/wuwang/v1/police/call/sys110", call),  # the prefix itself is unreadable
        ("exercise/v1/EX-A/wuwang/v1/fire/call/sys110", call),  # readable prefix, bad v1 topic
        (exercise_topic("EX-A", wuwang_topic("police", "call", "sys110")), b"{not json"),
    ]
    assert publish_and_wait(ingest, mqtt_broker, items) == {"dead_letter": 3}
    got = sorted(rows(database_url, "SELECT topic, exercise_id, reason FROM dead_letter"))
    assert [(t, e) for t, e, _ in got] == [
        ("exercise/v1/EX 1/wuwang/v1/police/call/sys110", None),
        ("exercise/v1/EX-A/wuwang/v1/fire/call/sys110", "EX-A"),
        ("exercise/v1/EX-A/wuwang/v1/police/call/sys110", "EX-A"),
    ]
    assert got[0][2] == "exercise id in topic does not match [A-Za-z0-9_.-]{1,64}"
    assert got[1][2] == "unknown network 'fire'"
    assert got[2][2].startswith("not valid UTF-8 JSON")
    assert count(database_url, "message_ledger") == 0
