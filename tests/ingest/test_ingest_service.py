"""The ingest in-process against the real Mosquitto, PostgreSQL and Redis of the
test session: counts, idempotency, dead letters, alarms to the stream, device
registry, maintenance and the metrics endpoint."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import redis

from ingest.rows import TABLE_COLUMNS
from ingest.service import IngestService
from testkit.feeds import Publisher, samples, scrape, total, wait_for
from tests.helpers_replies import one, stream_entries
from wuwang.contract import MAX_PAYLOAD_BYTES, Alarm, encode, team_topic, wuwang_topic
from wuwang.endpoints import embedded_redis, free_port
from wuwang.lattice import grid_cell_id
from wuwang.settings import Settings

StartIngest = Callable[..., IngestService]


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = (*TABLE_COLUMNS, "message_ledger", "dead_letter")
        return {t: one(conn.execute(f"SELECT count(*) FROM {t}"))[0] for t in tables}


def scalar(url: str, query: str, *args: Any) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, args).fetchone()
        return row[0] if row else None


@pytest.fixture
def own_redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own: the shared one (db 9) is flushed by every test that
    uses the ``redis_url`` fixture, including concurrent runs, which would wipe the stream."""
    port = free_port()
    server = embedded_redis(tmp_path / "redis", port)
    server.start()
    yield f"redis://127.0.0.1:{port}/0"
    server.stop()


@pytest.fixture
def start_ingest(make_settings: Callable[..., Settings]) -> Iterator[StartIngest]:
    """Start an in-process ingest; stopped (and its broker session ended) at teardown."""
    started: list[IngestService] = []

    def start(**overrides: Any) -> IngestService:
        overrides.setdefault("ingest_metrics_port", 0)
        overrides.setdefault("ingest_flush_ms", 20)
        settings = make_settings(**overrides)
        if settings.ingest.shared_group and "ingest_shared_group" not in overrides:
            # A group of this test's own: sessions other tests leave behind in a shared
            # group would otherwise take their turn of our messages.
            settings = settings.updated(ingest_shared_group=f"t{uuid.uuid4().hex[:10]}")
        svc = IngestService(settings, metrics_addr="127.0.0.1")
        svc.start()
        started.append(svc)
        assert svc.wait_ready(20), "ingest did not connect and subscribe"
        return svc

    yield start
    for svc in started:
        svc.stop(forget_session=True)


def test_publish_n_stores_n_and_again_still_n(start_ingest: StartIngest, mqtt_broker: Any, database_url: str,
                                             own_redis_url: str) -> None:
    redis_url = own_redis_url
    svc = start_ingest(ingest_batch_size=250, redis_url=redis_url)
    msgs = samples(2000, seed=7)
    expected = Counter(m.table for m in msgs)
    url = mqtt_broker.url_for("simulator")
    pub = Publisher(url, protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(m.item() for m in msgs)
        wait_for(lambda: table_counts(database_url)["message_ledger"] == 2000, 60, what="2000 ledger rows")
        counts = table_counts(database_url)
        for table in TABLE_COLUMNS:
            assert counts[table] == expected[table], table
        assert counts["dead_letter"] == 0

        # The same ids again (a device resending after a lost PUBACK): nothing doubles.
        pub.publish_all(m.item() for m in msgs)
        wait_for(lambda: total(scrape(svc.metrics_url), "ingest_messages_total", outcome="duplicate") == 2000,
                 60, what="2000 duplicates counted")
    finally:
        pub.close()
    assert table_counts(database_url) == counts
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_messages_total", outcome="stored") == 2000
    assert total(metrics, "ingest_messages_total", outcome="dead_letter") == 0
    sensors = total(metrics, "ingest_messages_total", feed="sensor", outcome="stored")
    assert sensors == expected["sensor_reading"]
    assert total(metrics, "ingest_batch_size_count") >= 2000 / 250 * 2
    assert total(metrics, "ingest_batch_size_sum") == 4000
    assert total(metrics, "ingest_commit_seconds_count") == total(metrics, "ingest_batch_size_count")
    assert total(metrics, "ingest_mqtt_connected") == 1
    assert ("ingest_queue_depth", frozenset()) in metrics

    # Team reports land in field_report with team_id set and no network.
    team_reports = "SELECT count(*) FROM field_report WHERE team_id IS NOT NULL AND network IS NULL"
    assert scalar(database_url, team_reports) == sum(1 for m in msgs if m.kind == "team_report")
    # Every alarm in the outbox reaches the stream, once per alarm id.
    outbox = scalar(database_url, "SELECT count(*) FROM alarm_outbox")
    assert outbox > 0
    r = redis.Redis.from_url(redis_url)
    try:
        wait_for(lambda: r.xlen(svc.settings.shared.alarm_stream) >= outbox, 30, what="alarms on the stream")
        ids = [f[b"alarm_id"] for _, f in stream_entries(r, svc.settings.shared.alarm_stream)]
        assert len(set(ids)) == outbox
    finally:
        r.close()
    assert scalar(database_url, "SELECT count(*) FROM alarm_outbox WHERE published_at IS NULL") == 0


def test_alarms_hysteresis_and_stream(start_ingest: StartIngest, mqtt_broker: Any, database_url: str,
                                      own_redis_url: str) -> None:
    redis_url = own_redis_url
    svc = start_ingest(redis_url=redis_url)
    items = []
    # A noisy smoke detector: up, jitter above the raise level, down below clear, up again.
    start = datetime.now(UTC) - timedelta(minutes=5)  # recent: inside the door's time window
    for i, value in enumerate([3.0, 12.3, 9.0, 11.0, 13.0, 6.0, 10.5, 4.9, 12.0, 12.5]):
        ts = (start + timedelta(seconds=i)).isoformat()
        items.append((wuwang_topic("venue", "sensor", "SEN-0001"), encode(
            {"id": f"s{i}", "ts": ts, "device_id": "SEN-0001", "kind": "smoke", "value": value, "unit": "%/m",
             "lat": 32.04, "lon": 112.14})))
    items.append((wuwang_topic("venue", "sensor", "SEN-0002"), encode(
        {"id": "u1", "device_id": "SEN-0002", "kind": "humidity", "value": 99.0, "unit": "%"})))
    items.append((wuwang_topic("police", "call", "sys110"), encode(
        {"id": "c1", "call_id": "110-1", "category": "fire", "lat": 32.03, "lon": 112.15,
         "address": "樊城区人民路12号", "description": "三楼冒烟", "caller": "13812345678"})))
    items.append((wuwang_topic("video", "video", "CAM-0001"), encode(
        {"id": "v1", "camera_id": "CAM-0001", "event": "fire_smoke", "confidence": 0.93, "lat": 32.0,
         "lon": 112.1})))
    items.append((wuwang_topic("video", "video", "CAM-0001"), encode(
        {"id": "v2", "camera_id": "CAM-0001", "event": "crowd", "confidence": 0.5, "lat": 32.0,
         "lon": 112.1})))
    items.append((team_topic("T-FIRE-01", "report"), encode(
        {"id": "r1", "reporter": "张队", "category": "on_scene", "description": "已到达现场", "lat": 32.0,
         "lon": 112.1})))
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(items)
    finally:
        pub.close()
    r = redis.Redis.from_url(redis_url)
    try:
        wait_for(lambda: r.xlen(svc.settings.shared.alarm_stream) >= 5, 30, what="5 alarms on the stream")
        entries = stream_entries(r, svc.settings.shared.alarm_stream)
    finally:
        r.close()
    alarms = {f[b"alarm_id"].decode(): orjson.loads(f[b"payload"]) for _, f in entries}
    # What the command service's consumer reads back: the contract's Alarm.
    for _, f in entries:
        assert Alarm.from_json(f[b"payload"]).alarm_id == f[b"alarm_id"].decode()
    # smoke: raised by 12.3 (s1), cleared by 4.9, raised again by 12.0 (s8); nothing for 11.0/13.0/10.5.
    assert sorted(alarms) == sorted([
        "venue/SEN-0001#s1", "venue/SEN-0001#s8", "police/sys110#c1", "video/CAM-0001#v1",
        "team/T-FIRE-01#r1",
    ])
    smoke = alarms["venue/SEN-0001#s1"]
    assert smoke["summary"] == "烟感超限 12.3 %/m"
    assert smoke["kind"] == "sensor" and smoke["grid_cell_id"] == "r1281c4485"
    call = alarms["police/sys110#c1"]
    assert call["summary"].startswith("110报警 火灾: 樊城区人民路12号")
    assert call["details"]["caller_masked"] == "138****5678"
    assert "13812345678" not in orjson.dumps(call).decode()
    assert alarms["team/T-FIRE-01#r1"]["network"] is None
    assert scalar(database_url, "SELECT raised FROM sensor_alarm_state WHERE device_id = 'SEN-0001'") is True
    assert scalar(database_url, "SELECT count(*) FROM sensor_alarm_state WHERE device_id = 'SEN-0002'") == 0
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_alarms_total") == 5
    wait_for(lambda: total(scrape(svc.metrics_url), "ingest_alarms_relayed_total") == 5, 10,
             what="relayed count")


def test_dead_letters_are_kept_capped_and_counted(start_ingest: StartIngest, mqtt_broker: Any,
                                                 database_url: str) -> None:
    svc = start_ingest(dead_letter_raw_cap=100)
    big = b'{"id": "x", "pad": "' + b"a" * (MAX_PAYLOAD_BYTES + 10) + b'"}'
    items = [
        (wuwang_topic("patrol", "sensor", "SEN-1"), b"{not json"),
        (wuwang_topic("patrol", "sensor", "SEN-1"), big),
        (wuwang_topic("atlantis", "sensor", "SEN-1"), encode({"id": "1"})),
        (wuwang_topic("patrol", "bogus", "SEN-1"), encode({"id": "1"})),
        (wuwang_topic("patrol", "sensor", "SEN-1"), encode(
            {"id": "nul", "device_id": "SEN-1", "kind": "smoke", "value": 1.0, "unit": "%/m",
             "note": "a\u0000b"})),
        (team_topic("T-1", "position"),
         b'{"id": "p", "lat": 32.0, "lon": 112.0, "seq": 18446744073709551616}'),
        (team_topic("T-1", "status"), encode({"id": "s", "status": "asleep"})),
        (wuwang_topic("patrol", "sensor", "SEN-1"), encode(
            {"id": "ok", "device_id": "SEN-1", "kind": "smoke", "value": 1.0, "unit": "%/m"})),
    ]
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(items)
    finally:
        pub.close()
    wait_for(lambda: total(scrape(svc.metrics_url), "ingest_messages_total") == len(items), 30,
             what="every message counted")
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_messages_total", outcome="dead_letter") == 7
    assert total(metrics, "ingest_messages_total", outcome="stored") == 1
    assert total(metrics, "ingest_messages_total", feed="unknown", outcome="dead_letter") == 2
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, octet_length(payload), payload_size, reason FROM dead_letter ORDER BY id"
        ).fetchall()
    assert len(rows) == 7
    assert all(reason for *_, reason in rows)
    assert all(stored <= 100 and stored <= size for _, stored, size, _ in rows)
    reasons = " | ".join(r[3] for r in rows)
    assert "exceeds" in reasons and "U+0000" in reasons and "unknown network" in reasons
    assert "seq" in reasons and "status" in reasons
    assert any(size == len(big) and stored == 100 for _, stored, size, _ in rows)
    assert table_counts(database_url)["sensor_reading"] == 1


def test_registered_device_position_and_grid_cell(start_ingest: StartIngest, mqtt_broker: Any,
                                                  database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO device (id, network, kind, unit, lat, lon) "
                     "VALUES ('SEN-REG', 'venue', 'gas', '%LEL', 32.05, 112.15)")
    svc = start_ingest()
    items = [
        (wuwang_topic("venue", "sensor", "SEN-REG"), encode(
            {"id": "1", "device_id": "SEN-REG", "kind": "gas", "value": 25.0, "unit": "%LEL"})),
        (wuwang_topic("venue", "sensor", "SEN-NEW"), encode(
            {"id": "1", "device_id": "SEN-NEW", "kind": "gas", "value": 1.0, "unit": "%LEL"})),
        (wuwang_topic("venue", "sensor", "SEN-OWN"), encode(
            {"id": "1", "device_id": "SEN-OWN", "kind": "gas", "value": 1.0, "unit": "%LEL", "lat": 32.0,
             "lon": 112.0})),
    ]
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(items)
    finally:
        pub.close()
    wait_for(lambda: table_counts(database_url)["sensor_reading"] == 3, 30, what="3 readings")
    with psycopg.connect(database_url) as conn:
        rows = dict((r[0], r[1:]) for r in conn.execute(
            "SELECT device_id, lat, lon, grid_cell_id, ts_from_receipt FROM sensor_reading"))
        alarm = one(conn.execute("SELECT payload FROM alarm_outbox"))[0]
    cell = grid_cell_id(32.05, 112.15, svc.settings.shared.grid_cell_deg)
    assert rows["SEN-REG"] == (32.05, 112.15, cell, True)
    assert rows["SEN-NEW"] == (None, None, None, True)
    assert rows["SEN-OWN"] == (32.0, 112.0, "r1280c4480", True)
    assert alarm["lat"] == 32.05 and alarm["summary"] == "可燃气体超限 25 %LEL"
    assert svc.healthy


def test_maintenance_refreshes_the_aggregates(start_ingest: StartIngest, mqtt_broker: Any,
                                              database_url: str) -> None:
    svc = start_ingest(aggregate_refresh_s=0.2)
    msgs = samples(50, seed=3)
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(m.item() for m in msgs)
    finally:
        pub.close()
    wait_for(lambda: table_counts(database_url)["message_ledger"] == 50, 30, what="50 stored")
    feeds = {"sensor_reading", "video_alert", "emergency_call", "field_report"}
    want = sum(1 for m in msgs if m.table in feeds)

    def aggregated() -> int:
        try:
            return int(scalar(database_url, "SELECT coalesce(sum(n), 0) FROM feed_counts_1m"))
        except psycopg.errors.ObjectNotInPrerequisiteState:  # not populated yet
            return -1

    wait_for(lambda: aggregated() == want, 30, what="feed_counts_1m refreshed")
    # The run is counted just after its refresh commits: seen in the table first, then here.
    wait_for(lambda: total(scrape(svc.metrics_url), "ingest_maintenance_runs_total", task="refresh",
                           result="ok") >= 1, 30, what="the refresh counted")
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_maintenance_runs_total", task="policies", result="ok") == 1


def test_a_message_the_database_refuses_is_dead_lettered_alone(start_ingest: StartIngest, mqtt_broker: Any,
                                                                database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        # Stand-in for any content PostgreSQL refuses (a constraint, a type limit, ...).
        conn.execute("""
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.msg_id = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;
                RETURN NEW;
            END $$""")
        conn.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON sensor_reading "
                     "FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
    svc = start_ingest(ingest_flush_ms=300)  # one batch for all of them
    items = [(wuwang_topic("venue", "sensor", f"SEN-{i}"), encode(
        {"id": "poison" if i == 5 else f"ok{i}", "device_id": f"SEN-{i}", "kind": "smoke", "value": 1.0,
         "unit": "%/m"})) for i in range(10)]
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(items)
    finally:
        pub.close()
    wait_for(lambda: total(scrape(svc.metrics_url), "ingest_messages_total") == 10, 30, what="10 counted")
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_messages_total", outcome="stored") == 9
    assert total(metrics, "ingest_messages_total", outcome="dead_letter") == 1
    assert total(metrics, "ingest_db_errors_total", kind="refused") >= 2
    counts = table_counts(database_url)
    assert counts["sensor_reading"] == 9 and counts["message_ledger"] == 9 and counts["dead_letter"] == 1
    reason = scalar(database_url, "SELECT reason FROM dead_letter")
    assert reason.startswith("refused by the database") and "poison refused" in reason


def test_a_call_is_committed_without_waiting_for_the_batch_window(
        start_ingest: StartIngest, mqtt_broker: Any, database_url: str) -> None:
    """A batch holding a 110 call is written at once, not when INGEST_FLUSH_MS runs out
    (here a minute; the wait below is half that)."""
    svc = start_ingest(ingest_flush_ms=60_000)
    assert svc.writer.wait_ready(60)
    call_id = f"c-{uuid.uuid4().hex[:8]}"
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all([(wuwang_topic("police", "call", "sys110"), encode({
            "id": call_id, "call_id": "110-1", "category": "fire", "lat": 32.0, "lon": 112.0,
            "address": "樊城区人民路12号", "description": "三楼冒烟", "caller": "13812345678"}))])
    finally:
        pub.close()
    stored = "SELECT count(*) FROM emergency_call WHERE msg_id = %s"
    wait_for(lambda: scalar(database_url, stored, call_id) == 1, 30,
             what="the call stored long before the window closes")
