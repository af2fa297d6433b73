"""Retention by receipt (plain PostgreSQL): the scheduled delete never takes a row that
was received less than RETENTION_DAYS ago, even when its ts is older than that — the
ingest's door accepts ts down to now - retention, so a row at that edge must still live
a whole retention window after it came in. The idempotency ledger is pruned, but never
before the door would refuse a redelivery of what it remembers.

The TimescaleDB side of the same rules is in test_fault_storage_timescale.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from wuwang import db

RETENTION = 30  # days

#: The columns each feed table needs besides ts, received_at, ts_from_receipt, msg_id.
REQUIRED: dict[str, dict[str, object]] = {
    "sensor_reading": {"network": "venue", "source_id": "S1", "device_id": "S1", "kind": "smoke",
                       "value": 1.0, "unit": "ppm"},
    "video_alert": {"network": "video", "source_id": "C1", "camera_id": "C1", "event": "fire",
                    "confidence": 0.9, "lat": 32.0, "lon": 112.1},
    "emergency_call": {"network": "police", "source_id": "110", "call_id": "K1", "category": "fire",
                       "lat": 32.0, "lon": 112.1, "address": "襄阳市", "description": "着火",
                       "caller": "张三"},
    "field_report": {"source_id": "G1", "reporter": "网格员", "category": "fire", "description": "冒烟",
                     "lat": 32.0, "lon": 112.1},
    "team_position": {"team_id": "T1", "lat": 32.0, "lon": 112.1},
    "team_status": {"team_id": "T1", "status": "available"},
}


def insert_row(
    conn: psycopg.Connection, table: str, msg_id: str, ts: datetime, received_at: datetime
) -> None:
    values: dict[str, object] = {
        "ts": ts, "received_at": received_at, "ts_from_receipt": False, "msg_id": msg_id, **REQUIRED[table]
    }
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(map(sql.Placeholder, values)),
        ),
        values,
    )


def surviving(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(sql.SQL("SELECT msg_id FROM {}").format(sql.Identifier(table))).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("table", db.TIMESERIES_TABLES)
def test_retention_keeps_a_row_received_inside_the_window_whatever_its_ts(
    database_url: str, table: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        if db.backend(conn) == "timescale":
            pytest.skip("plain PostgreSQL's scheduled delete; TimescaleDB drops chunks by its own job "
                        "(test_fault_storage_timescale.py)")
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        window = timedelta(days=RETENTION)
        # Accepted an hour ago at the door's edge: its ts was then exactly retention old.
        insert_row(conn, table, "edge", now - window - timedelta(hours=1), now - timedelta(hours=1))
        # Accepted a minute ago, ts just inside the window.
        insert_row(conn, table, "inside", now - window + timedelta(minutes=1), now - timedelta(minutes=1))
        # Received long ago, but a device clock ahead: young by ts — kept too.
        insert_row(conn, table, "young-ts", now - timedelta(days=1), now - window - timedelta(days=1))
        # Old by both: goes.
        insert_row(conn, table, "old", now - window - timedelta(days=2), now - window - timedelta(days=1))
        db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
        assert surviving(conn, table) == {"edge", "inside", "young-ts"}


def test_ledger_is_pruned_only_after_the_door_would_refuse_a_redelivery(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        window = timedelta(days=RETENTION)
        # A message stored retention + 1 day ago may have carried ts = its receipt + skew… and
        # one stored at the door's edge a ts of receipt - retention; the ledger keeps both
        # while their redelivery could still pass the door, and forgets after 2 × retention.
        for source, stored in (("venue/recent", now - window - timedelta(days=1)),
                               ("venue/ancient", now - 2 * window - timedelta(days=1))):
            conn.execute(
                "INSERT INTO message_ledger (source, msg_id, feed, stored_at)"
                " VALUES (%s, 'm1', 'sensor', %s)",
                (source, stored),
            )
        db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
        left = {r[0] for r in conn.execute("SELECT source FROM message_ledger").fetchall()}
        assert left == {"venue/recent"}
