"""The duty log's store (migration 0020) against a real database: record_duty_event
writes an entry once per kind and ref and scope, the log is append-only, and a handover
signed by both shifts cannot change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from command.demo_rosters import _centre_duty_roster
from command.domain import duty as rules
from command.domain.incidents import InvalidCommand
from command.services import duty
from command.users import demo_users
from testkit.users import seed_users
from wuwang.scope import Scope


async def _record_twice(url: str) -> list[int | None]:
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        ids = [
            await duty.record_duty_event(
                conn, Scope.live(), "report_sent", "RPT-1/v1", "首报已报送市应急局", at=at
            ),
            await duty.record_duty_event(
                conn, Scope.live(), "report_sent", "RPT-1/v1", "首报已报送市应急局", at=at
            ),
            await duty.record_duty_event(
                conn, Scope.drill("EX-1"), "report_sent", "RPT-1/v1", "演练首报", at=at
            ),
        ]
        with pytest.raises(InvalidCommand):
            await duty.record_duty_event(conn, Scope.live(), "no_such_kind", "x", "text", at=at)
        await conn.commit()
    return ids


def test_record_duty_event_writes_once_per_scope(database_url: str) -> None:
    first, replay, drill = asyncio.run(_record_twice(database_url))
    assert first is not None and replay is None and drill is not None and drill != first
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT exercise_id, kind, ref FROM duty_log_entry ORDER BY entry_id").fetchall()
        assert rows == [(None, "report_sent", "RPT-1/v1"), ("EX-1", "report_sent", "RPT-1/v1")]
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE duty_log_entry SET text = 'changed'")


def test_a_handover_signed_by_both_is_immutable(database_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO app_user (id, display_name, role, password_hash) VALUES"
            " ('lead-a', 'A', 'commander', 'x'), ('op-a', 'a', 'operator', 'x')"
        )
        for n, start in ((1, now - timedelta(hours=12)), (2, now)):
            conn.execute(
                "INSERT INTO duty_shift (shift_id, starts_at, ends_at, leader, officers, set_by)"
                " VALUES (%s, %s, %s, 'lead-a', ARRAY['op-a'], 'lead-a')",
                (f"DS-TEST-{n}", start, start + timedelta(hours=12)),
            )
        conn.execute(
            "INSERT INTO duty_handover (handover_id, outgoing_shift_id, incoming_shift_id, drawn_up_by,"
            " drawn_up_at, snapshot, outgoing_signed_by, outgoing_signed_at)"
            " VALUES ('DH-TEST-1', 'DS-TEST-1', 'DS-TEST-2', 'op-a', %s, '{}', 'op-a', %s)",
            (now, now),
        )
        conn.execute(
            "UPDATE duty_handover SET incoming_signed_by = 'lead-a', incoming_signed_at = %s", (now,)
        )
        conn.commit()
        with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
            conn.execute("UPDATE duty_handover SET notes = 'later'")
        conn.rollback()
        with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
            conn.execute("DELETE FROM duty_handover")


def test_the_demo_loads_the_centres_day_and_night_shifts_once(database_url: str) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).date()
    with psycopg.connect(database_url) as conn:
        seed_users(conn, demo_users([]))
        _centre_duty_roster(conn, today, zone)
        _centre_duty_roster(conn, today, zone)  # again: nothing added
        rows = conn.execute(
            "SELECT shift_id, starts_at, ends_at, leader, officers FROM duty_shift"
        ).fetchall()
    assert len(rows) == 6
    shifts = [rules.DutyShift(r[0], None, r[1], r[2], r[3], tuple(r[4])) for r in rows]
    for s in shifts:
        rules.check_no_overlap(s, shifts)
    on_duty = rules.current_shift(shifts, datetime.now(UTC))
    assert on_duty is not None and on_duty.leader == "commander1"
