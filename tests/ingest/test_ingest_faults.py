"""Faults around the ingest: PostgreSQL stopped and restarted, the broker restarted
with messages unacknowledged, Redis down, and the amqtt (MQTT 3.1.1) demo broker.
Each uses servers of the test's own so it may stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from ingest.rows import TABLE_COLUMNS
from ingest.service import IngestService
from testkit.feeds import Publisher, samples, scrape, total, wait_for
from tests.helpers_replies import one, stream_entries
from wuwang import db
from wuwang.contract import encode, wuwang_topic
from wuwang.endpoints import (
    EmbeddedPostgres,
    embedded_amqtt,
    embedded_redis,
    ensure_database,
    free_port,
)
from wuwang.settings import Settings

StartIngest = Callable[..., IngestService]


def _group() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def ledger_count(url: str) -> int:
    with psycopg.connect(url, connect_timeout=3) as conn:
        return int(one(conn.execute("SELECT count(*) FROM message_ledger"))[0])


def assert_exactly_once(url: str, n: int) -> None:
    with psycopg.connect(url) as conn:
        assert one(conn.execute("SELECT count(*) FROM message_ledger"))[0] == n
        rows = 0
        for table, columns in TABLE_COLUMNS.items():
            source = "network, source_id" if "source_id" in columns else "team_id"
            count, distinct = one(conn.execute(
                f"SELECT count(*), count(DISTINCT ({source}, msg_id)) FROM {table}"))
            assert count == distinct, f"duplicates in {table}"
            rows += count
        assert rows == n


@pytest.fixture
def start_ingest(make_settings: Callable[..., Settings]) -> Iterator[StartIngest]:
    started: list[IngestService] = []

    def start(**overrides: Any) -> IngestService:
        overrides.setdefault("ingest_metrics_port", 0)
        overrides.setdefault("ingest_flush_ms", 20)
        svc = IngestService(make_settings(**overrides), metrics_addr="127.0.0.1")
        svc.start()
        started.append(svc)
        assert svc.wait_ready(30), "ingest did not connect and subscribe"
        return svc

    yield start
    for svc in started:
        svc.stop(timeout=10, forget_session=True)


class BackgroundPublisher:
    """Publishes in slices from a thread of its own, so a test can break things meanwhile."""

    def __init__(self, url: str, protocol: str, items: list[tuple[str, bytes]], slice_size: int = 250,
                 pause: float = 0.0, gate_after: int | None = None) -> None:
        self.published = 0
        self.errors: list[BaseException] = []
        self.gate = threading.Event()  # after ``gate_after`` messages, wait for it
        self._gate_after = gate_after
        self._args = (url, protocol, items, slice_size, pause)
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        url, protocol, items, size, pause = self._args
        try:
            pub = Publisher(url, protocol=protocol)
            try:
                for start in range(0, len(items), size):
                    if self._gate_after is not None and start >= self._gate_after:
                        assert self.gate.wait(60), "gate never opened"
                    self.published += pub.publish_all(items[start:start + size])
                    time.sleep(pause)
            finally:
                pub.close()
        except BaseException as exc:
            self.errors.append(exc)

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "publisher still running"
        assert not self.errors, self.errors


def _start_again(pg: EmbeddedPostgres) -> None:
    """Same data directory and port. Retried: while it was down, an outgoing connection
    may briefly hold the port number as its source port."""
    for attempt in range(3):
        try:
            pg.start()
            return
        except subprocess.CalledProcessError:
            if attempt == 2:
                log = (pg.workdir / "postgres.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"PostgreSQL did not start again:\n{log}") from None
            time.sleep(0.5)


@pytest.mark.slow
def test_postgres_stopped_and_restarted_mid_stream(start_ingest: StartIngest, mqtt_broker: Any,
                                                   tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # as root, the server runs as another user
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    url = pg.start()
    try:
        ensure_database(url)
        db.migrate(url)
        # A small queue: while PostgreSQL is away the broker's window holds the rest back.
        svc = start_ingest(database_url=url, ingest_queue_size=500, ingest_batch_size=200,
                           ingest_shared_group=_group() if mqtt_broker.is_mosquitto else "")
        n = 4000
        items = [m.item() for m in samples(n, seed=31)]
        pub = BackgroundPublisher(mqtt_broker.url_for("simulator"), mqtt_broker.protocol, items,
                                  pause=0.02, gate_after=1000)
        wait_for(lambda: ledger_count(url) >= 500, 60, what="500 stored before stopping PostgreSQL")
        pg.stop()
        pub.gate.set()  # the other 3,000 are published while PostgreSQL is away
        wait_for(lambda: total(scrape(svc.metrics_url), "ingest_db_errors_total", kind="retry") >= 2, 30,
                 what="the writer noticing PostgreSQL is gone")
        pub.join()  # the broker took them all
        assert svc.inbox.qsize() <= 500
        _start_again(pg)
        wait_for(lambda: ledger_count(url) == n, 90, what=f"all {n} stored after the restart")
        time.sleep(0.3)
        assert_exactly_once(url, n)
        metrics = scrape(svc.metrics_url)
        assert total(metrics, "ingest_messages_total", outcome="stored") == n
        assert total(metrics, "ingest_queue_full_total") == 0
        # Back-pressure held (queue ≤ 500 above, nothing dropped): either the broker's window
        # (Receive Maximum, enforced while no acks flow) or the link's read pause does it,
        # whichever engages first on a given run — so the pause itself is not required here.
        assert svc.healthy
    finally:
        pg.stop()


@pytest.mark.slow
def test_writer_process_killed_mid_batch_loses_nothing(start_ingest: StartIngest, mqtt_broker: Any,
                                                        database_url: str) -> None:
    """kill -9 of the writer process while its batch waits for the database: the receiving
    process starts a new writer, reconnects so that the broker resends what was not
    acknowledged, and every message ends up stored exactly once."""
    svc = start_ingest(ingest_shared_group=_group())
    assert svc.writer.wait_ready(60), "no writer process"
    first_pid = svc.writer.pid
    url = mqtt_broker.url_for("simulator")
    batches = [[m.item() for m in samples(500, seed=51 + k, prefix=f"w{k}-")] for k in range(3)]
    pub = Publisher(url, protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(batches[0])
        wait_for(lambda: ledger_count(database_url) == 500, 60, what="the first 500 stored")
        with psycopg.connect(database_url) as blocker:
            # The writer takes the next messages but cannot commit them.
            blocker.execute("LOCK TABLE message_ledger IN SHARE ROW EXCLUSIVE MODE")
            pub.publish_all(batches[1])
            wait_for(lambda: svc.writer.pending > 0, 30, what="messages in the writer process")
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)
            wait_for(lambda: svc.writer.pid not in (None, first_pid), 60, what="a new writer process")
            blocker.rollback()
        pub.publish_all(batches[2])
    finally:
        pub.close()
    wait_for(lambda: ledger_count(database_url) == 1500, 90, what="all 1500 stored")
    assert_exactly_once(database_url, 1500)
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_writer_restarts_total") == 1
    assert total(metrics, "ingest_messages_total", outcome="stored") == 1500
    assert svc.healthy
    assert svc.stop(timeout=30), "the new writer drained"


@pytest.mark.slow
def test_broker_restart_redelivers_unacknowledged_messages(start_ingest: StartIngest, own_mosquitto: Any,
                                                           database_url: str) -> None:
    svc = start_ingest(broker=own_mosquitto, ingest_shared_group=_group())
    first = [m.item() for m in samples(2000, seed=41, prefix="a")]
    second = [m.item() for m in samples(1000, seed=42, prefix="b")]
    url = own_mosquitto.url_for("simulator")
    with psycopg.connect(database_url) as blocker:
        # Hold the writer mid-batch: the ingest receives, but cannot commit or acknowledge.
        blocker.execute("LOCK TABLE message_ledger IN SHARE ROW EXCLUSIVE MODE")
        pub = Publisher(url)
        try:
            pub.publish_all(first)
        finally:
            pub.close()
        wait_for(lambda: svc.inbox.qsize() + svc.writer.pending == len(first), 30,
                 what="every message received and waiting for the database")
        # Graceful restart: Mosquitto writes its persistence file, our session included.
        own_mosquitto.process.restart()
        blocker.rollback()
    assert svc.wait_ready(30), "no reconnect after the broker restart"
    pub = Publisher(url)
    try:
        pub.publish_all(second)
    finally:
        pub.close()
    n = len(first) + len(second)
    wait_for(lambda: ledger_count(database_url) == n, 90, what=f"all {n} stored")
    time.sleep(0.3)
    assert_exactly_once(database_url, n)
    metrics = scrape(svc.metrics_url)
    assert total(metrics, "ingest_mqtt_reconnects_total") >= 1
    # The acks of the old connection were dropped, and the broker redelivered.
    assert total(metrics, "ingest_acks_stale_total") > 0
    assert total(metrics, "ingest_messages_total", outcome="duplicate") > 0
    assert total(metrics, "ingest_messages_total", outcome="stored") == n


@pytest.mark.slow
def test_redis_down_alarms_wait_in_the_outbox(start_ingest: StartIngest, mqtt_broker: Any, database_url: str,
                                              tmp_path: Path) -> None:
    port = free_port()
    own_redis = embedded_redis(tmp_path / "redis", port)
    own_redis.start()
    redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        group = _group() if mqtt_broker.is_mosquitto else ""
        svc = start_ingest(redis_url=redis_url, ingest_shared_group=group)
        own_redis.stop()
        calls = [(wuwang_topic("police", "call", "sys110"), encode(
            {"id": f"c{i}", "call_id": f"110-{i}", "category": "fire", "lat": 32.0, "lon": 112.1,
             "address": "襄城区", "description": "火情", "caller": "13800000000"})) for i in range(50)]
        pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
        try:
            pub.publish_all(calls)
        finally:
            pub.close()
        wait_for(lambda: total(scrape(svc.metrics_url), "ingest_alarm_relay_errors_total") >= 1, 30,
                 what="the relay failing on Redis")
        with psycopg.connect(database_url) as conn:
            wait_for(lambda: one(conn.execute("SELECT count(*) FROM alarm_outbox"))[0] == 50, 30,
                     what="50 alarms in the outbox")
            waiting = "SELECT count(*) FROM alarm_outbox WHERE published_at IS NULL"
            assert one(conn.execute(waiting))[0] == 50
        own_redis.start()
        r = redis.Redis.from_url(redis_url)
        try:
            wait_for(lambda: r.xlen(svc.settings.shared.alarm_stream) >= 50, 60, what="alarms on the stream")
            ids = {f[b"alarm_id"] for _, f in stream_entries(r, svc.settings.shared.alarm_stream)}
        finally:
            r.close()
        assert ids == {f"police/sys110#c{i}".encode() for i in range(50)}
        with psycopg.connect(database_url) as conn:
            wait_for(lambda: one(conn.execute(
                "SELECT count(*) FROM alarm_outbox WHERE published_at IS NULL"))[0] == 0, 10,
                what="outbox marked published")
    finally:
        own_redis.stop()


@pytest.mark.slow
def test_amqtt_mqtt311_without_shared_group(start_ingest: StartIngest, database_url: str,
                                            tmp_path: Path) -> None:
    port = free_port()
    broker = embedded_amqtt(tmp_path / "amqtt", port)
    broker.start()
    url = f"mqtt://127.0.0.1:{port}"
    try:
        svc = start_ingest(mqtt_url=url, mqtt_protocol="3.1.1", ingest_shared_group="")
        n = 1000
        pub = Publisher(url, protocol="3.1.1")
        try:
            pub.publish_all(m.item() for m in samples(n, seed=51))
        finally:
            pub.close()
        wait_for(lambda: ledger_count(database_url) == n, 90, what=f"{n} stored via amqtt")
        time.sleep(0.3)
        assert_exactly_once(database_url, n)
        assert total(scrape(svc.metrics_url), "ingest_messages_total", outcome="stored") == n
    finally:
        broker.stop()
