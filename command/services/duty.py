"""The duty desk (值班值守) at the edge: the tables of migration 0020 (``duty_shift``,
``duty_log_entry``, ``duty_instruction``, ``duty_handover``) with their audit records.
The rules are command/domain/duty.py.

Other parts write to the duty log through :func:`record_duty_event` — in their own
transaction, so the entry commits with what it records (a report sent, a clock that
ran out, an instruction received from the upper level).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from command import audit
from command.domain import duty as rules
from command.security import Principal
from command.services.incident_store import NotFound
from command.services.tasks import Periodic
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


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str, at: datetime) -> str:
    """``DS-``, ``DI-`` or ``DH-`` with the day and a random part."""
    return f"{prefix}-{at:%Y%m%d}-{uuid.uuid4().hex[:10]}"


async def _audit(
    conn: AsyncConnection[Any],
    who: Principal | str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any],
) -> None:
    await audit.record(
        conn, who, f"duty.{action}", object_type=object_type, object_id=object_id, detail=detail
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- the duty roster ---------------------------------------------------------------------

_SHIFT_COLUMNS = "shift_id, exercise_id, starts_at, ends_at, leader, officers, set_by"


def _shift(r: Mapping[str, Any]) -> rules.DutyShift:
    return rules.DutyShift(
        r["shift_id"],
        r["exercise_id"],
        r["starts_at"],
        r["ends_at"],
        r["leader"],
        tuple(r["officers"]),
        r["set_by"],
    )


async def user_roles(conn: AsyncConnection[Any], user_ids: Sequence[str]) -> dict[str, str]:
    """The role of each named user that exists and is not disabled."""
    cur = await conn.execute(
        "SELECT id, role FROM app_user WHERE id = ANY(%s) AND NOT disabled", (list(user_ids),)
    )
    return {str(user): str(role) for user, role in await cur.fetchall()}


async def display_names(conn: AsyncConnection[Any], user_ids: Sequence[str]) -> dict[str, str]:
    cur = await conn.execute("SELECT id, display_name FROM app_user WHERE id = ANY(%s)", (list(user_ids),))
    return {str(user): str(name) for user, name in await cur.fetchall()}


async def people(conn: AsyncConnection[Any], user_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Name and role of each named user (the same ``app_user`` row the console's signed-in
    name comes from), for the log's "by" column; a disabled user keeps their name there."""
    cur = await conn.execute(
        "SELECT id, display_name, role FROM app_user WHERE id = ANY(%s)", (list(user_ids),)
    )
    return {str(user): {"name": str(name), "role": str(role)} for user, name, role in await cur.fetchall()}


async def shifts_between(
    conn: AsyncConnection[Any], scope: Scope, start: datetime, end: datetime, *, lock: bool = False
) -> list[rules.DutyShift]:
    """The shifts of ``scope`` that overlap ``[start, end)``, the earliest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT {} FROM duty_shift WHERE {} AND starts_at < %(end)s AND ends_at > %(start)s"
                " ORDER BY starts_at {}"
            ).format(sql.SQL(_SHIFT_COLUMNS), scope.where(name="ex"), sql.SQL("FOR UPDATE" if lock else "")),
            {**scope.named("ex"), "start": start, "end": end},
        )
        return [_shift(r) for r in await cur.fetchall()]


async def get_shift(conn: AsyncConnection[Any], shift_id: str) -> rules.DutyShift:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_SHIFT_COLUMNS} FROM duty_shift WHERE shift_id = %s", (shift_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no duty shift {shift_id}")
    return _shift(row)


async def lock_roster(conn: AsyncConnection[Any], scope: Scope) -> None:
    """One writer of a scope's roster at a time (the overlap check reads, then writes)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (scope.lock_key("duty-roster"),))


async def save_shift(
    conn: AsyncConnection[Any], shift: rules.DutyShift, who: Principal, *, replacing: bool
) -> None:
    """Store a checked shift (under :func:`lock_roster`, after the overlap check)."""
    values = {
        "shift_id": shift.shift_id,
        "ex": shift.exercise_id,
        "starts_at": shift.starts_at,
        "ends_at": shift.ends_at,
        "leader": shift.leader,
        "officers": list(shift.officers),
        "set_by": shift.set_by,
    }
    if replacing:
        await conn.execute(
            "UPDATE duty_shift SET starts_at = %(starts_at)s, ends_at = %(ends_at)s, leader = %(leader)s,"
            " officers = %(officers)s, set_by = %(set_by)s, set_at = now() WHERE shift_id = %(shift_id)s",
            values,
        )
    else:
        await conn.execute(
            f"INSERT INTO duty_shift ({_SHIFT_COLUMNS}) VALUES (%(shift_id)s, %(ex)s, %(starts_at)s,"
            " %(ends_at)s, %(leader)s, %(officers)s, %(set_by)s)",
            values,
        )
    detail = {**values, "starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()}
    await _audit(conn, who, "roster_set", "duty_shift", shift.shift_id, {**detail, "replacing": replacing})


def shift_body(shift: rules.DutyShift, names: Mapping[str, str], at: datetime) -> dict[str, Any]:
    return {
        "shift_id": shift.shift_id,
        "exercise_id": shift.exercise_id,
        "starts_at": shift.starts_at.isoformat(),
        "ends_at": shift.ends_at.isoformat(),
        "leader": {"user_id": shift.leader, "name": names.get(shift.leader, shift.leader)},
        "officers": [{"user_id": u, "name": names.get(u, u)} for u in shift.officers],
        "on_duty": shift.covers(at),
        "set_by": shift.set_by,
    }


# --- the duty log ------------------------------------------------------------------------

_ENTRY_COLUMNS = "entry_id, exercise_id, at, kind, ref, text, actor, detail"


async def entries_between(
    conn: AsyncConnection[Any], scope: Scope, start: datetime, end: datetime, *, limit: int = 5000
) -> list[rules.LogEntry]:
    """The duty log of ``scope`` in ``[start, end)``, in time order."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT {} FROM duty_log_entry WHERE {} AND at >= %(start)s AND at < %(end)s"
                " ORDER BY at, entry_id LIMIT %(limit)s"
            ).format(sql.SQL(_ENTRY_COLUMNS), scope.where(name="ex")),
            {**scope.named("ex"), "start": start, "end": end, "limit": limit},
        )
        rows = await cur.fetchall()
    return [
        rules.LogEntry(
            at=r["at"],
            kind=rules.EntryKind(r["kind"]),
            text=r["text"],
            actor=r["actor"],
            ref=r["ref"],
            exercise_id=r["exercise_id"],
            detail=r["detail"] or {},
            entry_id=r["entry_id"],
        )
        for r in rows
    ]


async def add_free_entry(conn: AsyncConnection[Any], entry: rules.LogEntry, who: Principal) -> int:
    entry_id = await insert_entry(conn, entry)
    assert entry_id is not None  # a free entry has no ref: it never conflicts
    await _audit(
        conn, who, "log_write", "duty_log_entry", str(entry_id), {"text": entry.text, "at": _iso(entry.at)}
    )
    return entry_id


def entry_body(entry: rules.LogEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "exercise_id": entry.exercise_id,
        "at": entry.at.isoformat(),
        "kind": str(entry.kind),
        "ref": entry.ref,
        "text": entry.text,
        "actor": entry.actor,
        "detail": dict(entry.detail),
    }


#: What the duty log copies from what happens: incidents opened, incidents ended (结案,
#: 撤销, 误报) and 110 calls received, each written once (the ref is the event's id).
_SWEEPS = (
    (
        "INSERT INTO duty_log_entry (exercise_id, at, kind, ref, text, actor, detail)"
        " SELECT e.exercise_id, e.at, 'incident_opened', e.incident_id, left(e.data ->> 'title', 2000),"
        " e.actor, jsonb_build_object('incident_id', e.incident_id, 'level', (e.data ->> 'level')::int,"
        " 'incident_type', e.data ->> 'incident_type')"
        " FROM incident_event e WHERE e.kind = 'opened' AND e.at >= %(since)s AND e.data ->> 'title' <> ''"
    ),
    (
        "INSERT INTO duty_log_entry (exercise_id, at, kind, ref, text, actor, detail)"
        " SELECT e.exercise_id, e.at, 'incident_closed', e.incident_id || '/' || e.seq,"
        " left(coalesce(i.title, e.incident_id), 2000), e.actor,"
        " jsonb_build_object('incident_id', e.incident_id, 'state', e.data ->> 'to_state',"
        " 'reason', e.reason)"
        " FROM incident_event e LEFT JOIN incident i ON i.id = e.incident_id"
        " WHERE e.kind = 'state_changed' AND e.at >= %(since)s"
        " AND e.data ->> 'to_state' IN ('closed', 'cancelled', 'false_alarm')"
    ),
    (
        "INSERT INTO duty_log_entry (exercise_id, at, kind, ref, text, actor, detail)"
        " SELECT c.exercise_id, c.received_at, 'call_received', c.call_id,"
        " left(c.address || ' ' || c.description, 2000), 'system:ingest',"
        " jsonb_build_object('call_id', c.call_id, 'category', c.category)"
        " FROM emergency_call c WHERE c.received_at >= %(since)s AND c.ts >= %(since)s - interval '1 day'"
        " AND length(c.address || c.description) > 0"
    ),
)
_ON_CONFLICT = " ON CONFLICT (COALESCE(exercise_id, ''), kind, ref) WHERE ref IS NOT NULL DO NOTHING"


async def sweep(conn: AsyncConnection[Any], since: datetime) -> int:
    """Copy what happened since ``since`` into the duty log (every scope); returns how
    many entries are new. Idempotent: a window swept twice adds nothing."""
    added = 0
    for query in _SWEEPS:
        cur = await conn.execute(query + _ON_CONFLICT, {"since": since})
        added += max(cur.rowcount, 0)
    return added


class DutyLogFeed(Periodic):
    """Fills the duty log from what happens (a worker of the command service): each round
    sweeps from a little before the last one began, so nothing that committed late is
    missed; the first looks back a day."""

    name = "duty-log-feed"
    #: How far each round reaches back before the previous one began (late commits).
    OVERLAP = timedelta(minutes=10)
    FIRST_LOOK_BACK = timedelta(days=1)

    def __init__(self, interval_s: float = 15.0) -> None:
        super().__init__(interval_s)
        self._since: datetime | None = None

    async def round(self, state: Any) -> int:
        began = datetime.now(UTC)
        since = self._since or began - self.FIRST_LOOK_BACK
        async with state.pool.connection() as conn, conn.transaction():
            added = await sweep(conn, since)
        self._since = began - self.OVERLAP
        return added


# --- the leader's instructions (领导批示) -------------------------------------------------

_INSTRUCTION_COLUMNS = (
    "instruction_id, exercise_id, received_at, issued_by, text, incident_id, passed_to, state, follow_up,"
    " recorded_by, updated_by, updated_at"
)


def _instruction(r: Mapping[str, Any]) -> rules.Instruction:
    return rules.Instruction(
        instruction_id=r["instruction_id"],
        exercise_id=r["exercise_id"],
        received_at=r["received_at"],
        issued_by=r["issued_by"],
        text=r["text"],
        recorded_by=r["recorded_by"],
        updated_by=r["updated_by"],
        updated_at=r["updated_at"],
        incident_id=r["incident_id"],
        passed_to=tuple(r["passed_to"]),
        state=rules.InstructionState(r["state"]),
        follow_up=r["follow_up"],
    )


async def instructions(
    conn: AsyncConnection[Any], scope: Scope, *, pending_only: bool = False, limit: int = 200
) -> list[rules.Instruction]:
    """The scope's instructions, the newest first (``pending_only``: not yet done)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT {} FROM duty_instruction WHERE {} {} ORDER BY received_at DESC LIMIT %(limit)s"
            ).format(
                sql.SQL(_INSTRUCTION_COLUMNS),
                scope.where(name="ex"),
                sql.SQL("AND state <> 'done'" if pending_only else ""),
            ),
            {**scope.named("ex"), "limit": limit},
        )
        return [_instruction(r) for r in await cur.fetchall()]


async def get_instruction_for_update(conn: AsyncConnection[Any], instruction_id: str) -> rules.Instruction:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_INSTRUCTION_COLUMNS} FROM duty_instruction WHERE instruction_id = %s FOR UPDATE",
            (instruction_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no instruction {instruction_id}")
    return _instruction(row)


def instruction_body(i: rules.Instruction, at: datetime) -> dict[str, Any]:
    return {
        "instruction_id": i.instruction_id,
        "exercise_id": i.exercise_id,
        "received_at": i.received_at.isoformat(),
        "issued_by": i.issued_by,
        "text": i.text,
        "incident_id": i.incident_id,
        "passed_to": list(i.passed_to),
        "state": str(i.state),
        "next_state": None if i.state.next is None else str(i.state.next),
        "follow_up": i.follow_up,
        "recorded_by": i.recorded_by,
        "updated_by": i.updated_by,
        "updated_at": i.updated_at.isoformat(),
        "overdue": i.overdue(at),
    }


async def insert_instruction(conn: AsyncConnection[Any], i: rules.Instruction, who: Principal | str) -> None:
    """Store a new instruction, its duty log entry and its audit record (the caller's
    transaction). The upper level's instructions come here too (issued_by says whose)."""
    await conn.execute(
        f"INSERT INTO duty_instruction ({_INSTRUCTION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s)",
        (
            i.instruction_id,
            i.exercise_id,
            i.received_at,
            i.issued_by,
            i.text,
            i.incident_id,
            list(i.passed_to),
            str(i.state),
            i.follow_up,
            i.recorded_by,
            i.updated_by,
            i.updated_at,
        ),
    )
    await record_duty_event(
        conn,
        Scope.of(i.exercise_id),
        rules.EntryKind.INSTRUCTION_RECEIVED,
        i.instruction_id,
        i.text,
        at=i.received_at,
        actor=i.recorded_by,
        detail={"instruction_id": i.instruction_id, "issued_by": i.issued_by, "incident_id": i.incident_id},
    )
    await _audit(
        conn,
        who,
        "instruction_record",
        "duty_instruction",
        i.instruction_id,
        {"issued_by": i.issued_by, "text": i.text, "incident_id": i.incident_id},
    )


async def save_instruction_step(conn: AsyncConnection[Any], i: rules.Instruction, who: Principal) -> None:
    """Store a follow-up step, its duty log entry and its audit record."""
    await conn.execute(
        "UPDATE duty_instruction SET passed_to = %s, state = %s, follow_up = %s, updated_by = %s,"
        " updated_at = %s WHERE instruction_id = %s",
        (list(i.passed_to), str(i.state), i.follow_up, i.updated_by, i.updated_at, i.instruction_id),
    )
    detail = {"instruction_id": i.instruction_id, "state": str(i.state), "passed_to": list(i.passed_to)}
    await record_duty_event(
        conn,
        Scope.of(i.exercise_id),
        rules.EntryKind.INSTRUCTION_FOLLOWED,
        f"{i.instruction_id}/{i.state}",
        i.follow_up.rsplit("\n", 1)[-1] or "、".join(i.passed_to) or i.text,
        at=i.updated_at,
        actor=i.updated_by,
        detail=detail,
    )
    await _audit(
        conn,
        who,
        "instruction_step",
        "duty_instruction",
        i.instruction_id,
        {**detail, "follow_up": i.follow_up},
    )


# --- the handover (交接班) ------------------------------------------------------------------

_HANDOVER_COLUMNS = (
    "handover_id, exercise_id, outgoing_shift_id, incoming_shift_id, drawn_up_by, drawn_up_at, snapshot,"
    " notes,"
    " outgoing_signed_by, outgoing_signed_at, incoming_signed_by, incoming_signed_at"
)


async def what_is_open(
    conn: AsyncConnection[Any], scope: Scope, at: datetime, follow_items: Sequence[str]
) -> dict[str, Any]:
    """The snapshot of a handover: the scope's open incidents, alarms waiting in the
    inbox, warnings in force and pending instructions, as they are at ``at``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT id, title, level, state, opened_at FROM incident WHERE is_open AND {}"
                " ORDER BY level, opened_at LIMIT 200"
            ).format(scope.where(name="ex")),
            scope.named("ex"),
        )
        incidents = [
            rules.OpenIncident(r["id"], r["title"], int(r["level"]), r["state"], r["opened_at"])
            for r in await cur.fetchall()
        ]
        await cur.execute(
            sql.SQL("SELECT count(*) AS n FROM triage_row WHERE state = 'open' AND {}").format(
                scope.where(name="ex")
            ),
            scope.named("ex"),
        )
        waiting = await cur.fetchone()
        await cur.execute(
            sql.SQL(
                "SELECT identifier, level, headline, expires FROM warning WHERE state = 'issued'"
                " AND expires > %(at)s AND {} ORDER BY expires LIMIT 50"
            ).format(scope.where(name="ex")),
            {**scope.named("ex"), "at": at},
        )
        warnings = [
            {
                "identifier": w["identifier"],
                "level": w["level"],
                "headline": w["headline"],
                "expires": w["expires"].isoformat(),
            }
            for w in await cur.fetchall()
        ]
    pending = await instructions(conn, scope, pending_only=True)
    return rules.handover_snapshot(
        at=at,
        incidents=incidents,
        inbox_waiting=int(waiting["n"]) if waiting else 0,
        warnings_in_force=warnings,
        instructions=pending,
        follow_items=follow_items,
    )


async def insert_handover(conn: AsyncConnection[Any], h: rules.Handover, who: Principal) -> None:
    await conn.execute(
        f"INSERT INTO duty_handover ({_HANDOVER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL,"
        " NULL, NULL)",
        (
            h.handover_id,
            h.exercise_id,
            h.outgoing.shift_id,
            h.incoming.shift_id,
            h.drawn_up_by,
            h.drawn_up_at,
            Jsonb(dict(h.snapshot)),
            h.notes,
        ),
    )
    await _audit(
        conn,
        who,
        "handover_draw",
        "duty_handover",
        h.handover_id,
        {"outgoing": h.outgoing.shift_id, "incoming": h.incoming.shift_id, "notes": h.notes},
    )


async def _handover_rows(
    conn: AsyncConnection[Any], where: sql.Composable, params: Mapping[str, Any], suffix: str = ""
) -> list[rules.Handover]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM duty_handover WHERE {} ORDER BY drawn_up_at DESC LIMIT 50 {}").format(
                sql.SQL(_HANDOVER_COLUMNS), where, sql.SQL(suffix)
            ),
            params,
        )
        rows = await cur.fetchall()
    found = []
    for r in rows:
        outgoing = await get_shift(conn, r["outgoing_shift_id"])
        incoming = await get_shift(conn, r["incoming_shift_id"])
        found.append(
            rules.Handover(
                handover_id=r["handover_id"],
                exercise_id=r["exercise_id"],
                outgoing=outgoing,
                incoming=incoming,
                drawn_up_by=r["drawn_up_by"],
                drawn_up_at=r["drawn_up_at"],
                snapshot=r["snapshot"],
                notes=r["notes"],
                outgoing_signed_by=r["outgoing_signed_by"],
                outgoing_signed_at=r["outgoing_signed_at"],
                incoming_signed_by=r["incoming_signed_by"],
                incoming_signed_at=r["incoming_signed_at"],
            )
        )
    return found


async def handovers(conn: AsyncConnection[Any], scope: Scope) -> list[rules.Handover]:
    """The scope's latest handovers, the newest first."""
    return await _handover_rows(conn, scope.where(name="ex"), scope.named("ex"))


async def get_handover(conn: AsyncConnection[Any], handover_id: str, *, lock: bool = False) -> rules.Handover:
    found = await _handover_rows(
        conn, sql.SQL("handover_id = %(id)s"), {"id": handover_id}, "FOR UPDATE" if lock else ""
    )
    if not found:
        raise NotFound(f"no handover {handover_id}")
    return found[0]


async def save_signature(
    conn: AsyncConnection[Any], h: rules.Handover, side: rules.Side, who: Principal, names: Mapping[str, str]
) -> None:
    """Store one side's signature; the second one seals the handover and writes its
    duty log entry."""
    by, at = (
        (h.outgoing_signed_by, h.outgoing_signed_at)
        if side == "outgoing"
        else (h.incoming_signed_by, h.incoming_signed_at)
    )
    column = sql.Identifier(f"{side}_signed_by"), sql.Identifier(f"{side}_signed_at")
    await conn.execute(
        sql.SQL("UPDATE duty_handover SET {} = %s, {} = %s WHERE handover_id = %s").format(*column),
        (by, at, h.handover_id),
    )
    await _audit(conn, who, "handover_sign", "duty_handover", h.handover_id, {"side": side, "at": _iso(at)})
    if h.sealed:
        await record_duty_event(
            conn,
            Scope.of(h.exercise_id),
            rules.EntryKind.HANDOVER,
            h.handover_id,
            "{} → {}".format(
                *(names.get(u or "", u or "") for u in (h.outgoing_signed_by, h.incoming_signed_by))
            ),
            at=at,
            actor=who.user_id,
            detail={
                "handover_id": h.handover_id,
                "outgoing": h.outgoing.shift_id,
                "incoming": h.incoming.shift_id,
                "outgoing_signed_by": h.outgoing_signed_by,
                "incoming_signed_by": h.incoming_signed_by,
            },
        )


def handover_body(h: rules.Handover, names: Mapping[str, str], at: datetime) -> dict[str, Any]:
    return {
        "handover_id": h.handover_id,
        "exercise_id": h.exercise_id,
        "outgoing": shift_body(h.outgoing, names, at),
        "incoming": shift_body(h.incoming, names, at),
        "drawn_up_by": h.drawn_up_by,
        "drawn_up_at": h.drawn_up_at.isoformat(),
        "snapshot": dict(h.snapshot),
        "notes": h.notes,
        "outgoing_signed_by": h.outgoing_signed_by,
        "outgoing_signed_at": _iso(h.outgoing_signed_at),
        "incoming_signed_by": h.incoming_signed_by,
        "incoming_signed_at": _iso(h.incoming_signed_at),
        "sealed": h.sealed,
    }
