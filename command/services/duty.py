"""The duty desk (值班值守) at the edge: the tables of migration 0020 (``duty_shift``,
``duty_log_entry``, ``duty_instruction``, ``duty_handover``) with their audit records.
The rules are command/domain/duty.py.

Other parts write to the duty log through :func:`record_duty_event` — in their own
transaction, so the entry commits with what it records (a report sent, a clock that
ran out, an instruction received from the upper level).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from command.domain import duty as rules
from wuwang.scope import Scope

#: The actor of an automatic entry when the caller names none.
SYSTEM_ACTOR = "system:duty"


async def insert_entry(conn: AsyncConnection[Any], entry: rules.LogEntry) -> int | None:
    """Store one checked entry; its id, or None when an entry of the same kind about the
    same ``ref`` in the same scope is there already (a replay: nothing doubled)."""
    cur = await conn.execute(
        "INSERT INTO duty_log_entry (exercise_id, at, kind, ref, text, actor, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (COALESCE(exercise_id, ''), kind, ref) WHERE ref IS NOT NULL DO NOTHING"
        " RETURNING entry_id",
        (
            entry.exercise_id,
            entry.at,
            str(entry.kind),
            entry.ref,
            entry.text,
            entry.actor,
            Jsonb(dict(entry.detail)),
        ),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def record_duty_event(
    conn: AsyncConnection[Any],
    scope: Scope,
    kind: rules.EntryKind | str,
    ref: str,
    text: str,
    *,
    at: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
    detail: Mapping[str, Any] | None = None,
) -> int | None:
    """Write one automatic duty log entry (值班日志) on ``conn``, in the caller's transaction.

    ``kind``: a :class:`command.domain.duty.EntryKind` (``report_sent``,
    ``receipt_received``, ``clock_overdue``, ``instruction_received``, …); ``ref``: the id
    of what it is about (a report version, a clock, an instruction) — the same kind and
    ref in the same scope is written once, so a retried caller doubles nothing; ``text``:
    the line as the duty officer reads it (1..2000 characters); ``at``: when it happened
    (default now). Returns the entry's id, or None if it was there already. Raises
    :class:`command.domain.incidents.InvalidCommand` for an unknown kind or empty text."""
    entry = rules.log_entry(
        at=at or datetime.now(UTC),
        kind=kind,
        text=text,
        actor=actor,
        ref=ref,
        exercise_id=scope.exercise_id,
        detail=detail,
    )
    return await insert_entry(conn, entry)
