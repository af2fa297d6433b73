"""Exercises (演练) at the edge: register, read, steer, inject into and purge them.

* The ``exercise`` row is the record of a drill; the exercise runner (engineer H4's
  ``python -m simulators exercises``) picks up ``planned`` rows, runs them and writes
  status and position back. This module writes the row only when registering and when
  purging.
* Control commands go to the runner through the Redis stream
  ``wuwang.exercises.control_stream(id)`` (fields ``action``, ``value``, ``by``, ``at``);
  the audit record and the XADD share one transaction, so a command that never reached
  the stream is never recorded as sent.
* Injects are what a scenario does over HTTP: a warehouse running short
  (``exercise_stock_cut``, virtual like every exercise hold) or the level of the incident
  a message of the exercise joined (an incident event whose reason starts 演练注入).
* Purge deletes everything the exercise produced in ONE transaction, with
  ``wuwang.purging_exercise`` set locally so that the append-only triggers (migration
  0007) let the exercise's own incident events and grid steps go — never a live row.
  The audit log keeps the fact; it is never purged.
* Team statuses inside a drill (``exercise/v1/<id>/teams/v1/<team>/status``) land in
  ``exercise_team_state`` only; the live ``team`` row is never touched.

Changes are published after commit as ``Change("exercise", id, …)`` with the exercise id
set, so only planners and admins receive them (``live.visible_to``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from command import audit
from command.domain import exercises as rules
from command.domain.exercises import ExerciseConflict, InvalidExercise
from command.domain.incidents import Forbidden, Incident, actor_of
from command.domain.rosters import TeamStatus
from command.domain.vocabulary import ResponseLevel
from command.security import Principal
from command.services import incident_store as store
from command.services.incident_store import NotFound
from command.services.live import Change, publish
from command.state import CommandState
from wuwang import i18n
from wuwang.contract import exercise_source_prefix
from wuwang.db import TIMESERIES_TABLES
from wuwang.exercises import ControlAction, ExerciseKind, ExerciseStatus, control_stream
from wuwang.settings import REPO_ROOT

log = logging.getLogger(__name__)

#: Where scenario files live (engineer H4's drill runner reads them from here too).
SCENARIOS_DIR: Path = REPO_ROOT / "simulators" / "scenarios"

#: Control streams are short queues for one runner; keep about this many entries.
CONTROL_STREAM_MAXLEN = 1000

_COLUMNS = (
    "id, name, kind, source, status, speed, created_by, created_at, started_at, finished_at,"
    " sim_start, sim_end, sim_position, stats"
)


def now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def exercise_body(row: dict[str, Any]) -> dict[str, Any]:
    """An exercise as the API and the console see it (docs/command-api-exercises.md)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "source": row["source"],
        **rules.describe_source(row["kind"], row["source"]),
        "status": row["status"],
        "speed": row["speed"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "sim_start": _iso(row["sim_start"]),
        "sim_end": _iso(row["sim_end"]),
        "sim_position": _iso(row["sim_position"]),
        "stats": row["stats"],
    }


def change_for(body: dict[str, Any], event: str, **extra: Any) -> Change:
    return Change("exercise", body["id"], {**body, "event": event, **extra}, exercise_id=body["id"])


async def _row(conn: AsyncConnection[Any], exercise_id: str, lock: str = "") -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM exercise WHERE id = %s {lock}", (exercise_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no exercise {exercise_id}")
    return row


# --- reading --------------------------------------------------------------------------------------


async def list_exercises(
    state: CommandState, *, status: str | None, kind: str | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first."""
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM exercise WHERE (%(status)s::text IS NULL OR status = %(status)s)"
            " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            {"status": status, "kind": kind, "limit": limit},
        )
        rows = await cur.fetchall()
    return [exercise_body(r) for r in rows]


async def exercise_detail(state: CommandState, exercise_id: str) -> dict[str, Any]:
    """The exercise with its drill-side state: team statuses and stock cuts it set, and
    how much it has produced so far."""
    async with state.pool.connection() as conn:
        body = exercise_body(await _row(conn, exercise_id))
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT team_id, status, changed_at FROM exercise_team_state WHERE exercise_id = %s"
                " ORDER BY team_id",
                (exercise_id,),
            )
            teams = await cur.fetchall()
            await cur.execute(
                "SELECT warehouse_id, item_code, quantity, at FROM exercise_stock_cut WHERE exercise_id = %s"
                " ORDER BY warehouse_id, item_code",
                (exercise_id,),
            )
            cuts = await cur.fetchall()
            await cur.execute(
                """
                SELECT (SELECT count(*) FROM incident WHERE exercise_id = %(ex)s) AS incidents,
                       (SELECT count(*) FROM incident WHERE exercise_id = %(ex)s AND is_open)
                           AS open_incidents,
                       (SELECT count(*) FROM alarm_inbox WHERE exercise_id = %(ex)s) AS alarms,
                       (SELECT count(*) FROM dispatch_order WHERE exercise_id = %(ex)s) AS orders,
                       (SELECT count(*) FROM grid_case WHERE exercise_id = %(ex)s) AS grid_cases
                """,
                {"ex": exercise_id},
            )
            counts = await cur.fetchone()
    return {
        **body,
        "teams": [
            {"team_id": t["team_id"], "status": t["status"], "changed_at": _iso(t["changed_at"])}
            for t in teams
        ],
        "stock_cuts": [
            {
                "warehouse_id": c["warehouse_id"],
                "item_code": c["item_code"],
                "quantity": int(c["quantity"]),
                "at": _iso(c["at"]),
            }
            for c in cuts
        ],
        "counts": {k: int(v) for k, v in (counts or {}).items()},
    }


# --- registering ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewExercise:
    """What ``POST /exercises`` asks for, already shaped by the route."""

    kind: ExerciseKind
    speed: float
    exercise_id: str | None = None
    name: str | None = None
    scenario: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    dataset_id: str | None = None
    options: dict[str, Any] | None = None  # a dataset replay's system_id, relocate_to


async def _dataset_span(
    conn: AsyncConnection[Any], dataset_id: str
) -> tuple[datetime | None, datetime | None]:
    cur = await conn.execute("SELECT kind, status FROM exercise WHERE id = %s", (dataset_id,))
    row = await cur.fetchone()
    if row is None or row[0] != ExerciseKind.IMPORT:
        raise InvalidExercise(f"no imported dataset {dataset_id} (an exercise of kind import)")
    if row[1] == ExerciseStatus.PURGED:
        raise InvalidExercise(f"dataset {dataset_id} was purged")
    cur = await conn.execute(
        "SELECT min(ts), max(ts) FROM imported_call WHERE dataset_id = %s", (dataset_id,)
    )
    span = await cur.fetchone()
    return (span[0], span[1]) if span is not None else (None, None)


def scenario_title(path: Path) -> str:
    """The scenario's own name (its YAML ``name``), else its file name: what the banner,
    the exercises list and the report call the drill. The runner validates the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return (
        str(name)[:200]
        if isinstance(name, str) and name.strip()
        else i18n.text("zh_CN", "exercise.default_drill_name", name=path.stem)
    )


async def _centres(
    conn: AsyncConnection[Any], dataset_id: str
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """The mean place of a dataset's calls, and of the city's districts."""
    cur = await conn.execute(
        "SELECT avg(lat), avg(lon) FROM imported_call WHERE dataset_id = %s", (dataset_id,)
    )
    calls = await cur.fetchone()
    cur = await conn.execute("SELECT avg(center_lat), avg(center_lon) FROM district")
    city = await cur.fetchone()

    def point(row: Any) -> tuple[float, float] | None:
        return (float(row[0]), float(row[1])) if row is not None and row[0] is not None else None

    return point(calls), point(city)


async def create(state: CommandState, who: Principal, new: NewExercise) -> dict[str, Any]:
    """Register a ``planned`` exercise for the runner to pick up."""
    at = now()
    rules.check_speed(new.speed)
    exercise_id = new.exercise_id or rules.new_exercise_id(new.kind, at, secrets.token_hex(3))
    sim_start, sim_end = new.start, new.end
    if new.kind is ExerciseKind.SCENARIO:
        scenario = rules.check_scenario_name(new.scenario or "")
        if not (SCENARIOS_DIR / scenario).is_file():
            raise InvalidExercise(f"no scenario {scenario} in simulators/scenarios")
        source, name = scenario, new.name or scenario_title(SCENARIOS_DIR / scenario)
    elif new.kind is ExerciseKind.REPLAY:
        rules.check_window(new.start, new.end, at)
        options = dict(new.options or {})
        if new.dataset_id is not None and not options.get("relocate_to"):
            async with state.pool.connection() as conn:
                centres = await _centres(conn, new.dataset_id)
            options["relocate_to"] = rules.default_relocation(*centres)
        source = rules.replay_source(new.start, new.end, new.dataset_id, options)
        name = new.name or i18n.text(
            "zh_CN",
            "exercise.default_replay_name",
            name=new.dataset_id or f"{new.start:%Y-%m-%d %H:%M}–{new.end:%H:%M}",
        )
    else:
        raise InvalidExercise("imports are registered by the import, not here")
    try:
        async with state.pool.connection() as conn, conn.transaction():
            if new.dataset_id is not None:
                first, last = await _dataset_span(conn, new.dataset_id)
                sim_start, sim_end = new.start or first, new.end or last
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "INSERT INTO exercise (id, name, kind, source, status, speed, created_by, created_at,"
                    " sim_start, sim_end) VALUES (%s, %s, %s, %s, 'planned', %s, %s, %s, %s, %s)"
                    f" RETURNING {_COLUMNS}",
                    (
                        exercise_id,
                        name,
                        str(new.kind),
                        source,
                        new.speed,
                        who.user_id,
                        at,
                        sim_start,
                        sim_end,
                    ),
                )
                row = await cur.fetchone()
            assert row is not None
            body = exercise_body(row)
            await audit.record(
                conn,
                who,
                "exercise.create",
                object_type="exercise",
                object_id=exercise_id,
                detail={"kind": str(new.kind), "source": source, "speed": new.speed, "name": name},
            )
    except psycopg.errors.UniqueViolation:
        raise ExerciseConflict(f"exercise {exercise_id} exists already") from None
    await publish(state.redis, change_for(body, "created"))
    return body


# --- control --------------------------------------------------------------------------------------


async def control(
    state: CommandState, who: Principal, exercise_id: str, action: ControlAction, value: float | None
) -> dict[str, Any]:
    """Append a control command for the runner; refused once the exercise is over."""
    checked = rules.check_control(action, value)
    at = now()
    stream = control_stream(exercise_id)
    fields = {
        "action": str(action),
        "value": "" if checked is None else repr(float(checked)),
        "by": who.user_id,
        "at": at.isoformat(),
    }
    async with state.pool.connection() as conn, conn.transaction():
        row = await _row(conn, exercise_id, "FOR SHARE")
        rules.check_accepts(ExerciseStatus(row["status"]), exercise_id, f"{action} it")
        entry = await state.redis.xadd(stream, fields, maxlen=CONTROL_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]  # redis-py's field typing is narrower than its API
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        await audit.record(
            conn,
            who,
            "exercise.control",
            object_type="exercise",
            object_id=exercise_id,
            detail={"action": str(action), "value": checked, "stream": stream, "entry_id": entry_id},
        )
    out = {
        "exercise_id": exercise_id,
        "stream": stream,
        "entry_id": entry_id,
        "action": str(action),
        "value": checked,
        "by": who.user_id,
        "at": at.isoformat(),
        "status": row["status"],
    }
    await publish(state.redis, change_for(exercise_body(row), "control", control=out))
    return out


# --- injects --------------------------------------------------------------------------------------


async def inject_warehouse_short(
    state: CommandState, who: Principal, exercise_id: str, warehouse_id: str, item_code: str, quantity: int
) -> dict[str, Any]:
    """A warehouse runs short in the drill: the exercise's picks of that item there see
    ``quantity`` fewer units. Sets (not adds to) the cut, so a resent inject is harmless."""
    at = now()
    async with state.pool.connection() as conn, conn.transaction():
        row = await _row(conn, exercise_id, "FOR SHARE")
        rules.check_accepts(ExerciseStatus(row["status"]), exercise_id, "inject into it")
        cur = await conn.execute("SELECT 1 FROM warehouse WHERE id = %s", (warehouse_id,))
        if await cur.fetchone() is None:
            raise InvalidExercise(f"no warehouse {warehouse_id!r}")
        cur = await conn.execute("SELECT 1 FROM reserve_item WHERE code = %s", (item_code,))
        if await cur.fetchone() is None:
            raise InvalidExercise(f"no item {item_code!r} in the reserve catalogue")
        await conn.execute(
            "INSERT INTO exercise_stock_cut (exercise_id, warehouse_id, item_code, quantity, at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (exercise_id, warehouse_id, item_code)"
            " DO UPDATE SET quantity = EXCLUDED.quantity, at = EXCLUDED.at",
            (exercise_id, warehouse_id, item_code, quantity, at),
        )
        out = {
            "kind": "warehouse_short",
            "exercise_id": exercise_id,
            "warehouse_id": warehouse_id,
            "item_code": item_code,
            "quantity": quantity,
            "at": at.isoformat(),
        }
        await audit.record(
            conn, who, "exercise.inject", object_type="exercise", object_id=exercise_id, detail=out
        )
    await publish(state.redis, change_for(exercise_body(row), "inject", inject=out))
    return out


async def _incident_of_message(conn: AsyncConnection[Any], exercise_id: str, msg_id: str) -> str:
    """The incident of THIS exercise that an alarm raised by message ``msg_id`` joined
    (incident_source follows merges, so a merged alarm points at the survivor), or that
    the alarm's inbox row was promoted into or linked to."""
    cur = await conn.execute(
        "SELECT s.incident_id FROM alarm_inbox a JOIN incident_source s ON s.alarm_id = a.alarm_id"
        " JOIN incident i ON i.id = s.incident_id"
        " WHERE a.exercise_id = %(ex)s AND i.exercise_id = %(ex)s AND a.payload ->> 'msg_id' = %(msg)s"
        " ORDER BY i.is_open DESC, a.received_at DESC LIMIT 1",
        {"ex": exercise_id, "msg": msg_id},
    )
    row = await cur.fetchone()
    if row is None:
        # The alarm waited in the alarm inbox: its row was promoted into (or linked to) an
        # incident — only the row's latest alarm became a source, so the message's own
        # alarm is found through its row (a merged incident: the one it was merged into).
        cur = await conn.execute(
            "SELECT COALESCE(m.id, i.id) FROM alarm_inbox a JOIN triage_row r ON r.row_id = a.triage_row_id"
            " JOIN incident i ON i.id = r.incident_id"
            " LEFT JOIN incident m ON m.id = i.merged_into AND m.exercise_id = %(ex)s"
            " WHERE a.exercise_id = %(ex)s AND i.exercise_id = %(ex)s AND a.payload ->> 'msg_id' = %(msg)s"
            " AND r.state IN ('promoted', 'linked')"
            " ORDER BY COALESCE(m.is_open, i.is_open) DESC, r.acted_at DESC LIMIT 1",
            {"ex": exercise_id, "msg": msg_id},
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(
            f"no incident of exercise {exercise_id} has joined an alarm from message {msg_id} (yet)"
        )
    return str(row[0])


@dataclass(frozen=True)
class Escalated:
    incident: Incident
    changed: bool
    detail: dict[str, Any]


async def inject_escalate(
    state: CommandState, who: Principal, exercise_id: str, msg_id: str, level: ResponseLevel, reason: str
) -> Escalated:
    """Change the level of the exercise incident that message ``msg_id`` joined, as the
    scenario says — the commander-only rule lifted for this exercise's incidents only."""
    at = now()
    why = rules.inject_reason(reason)
    async with state.pool.connection() as conn, conn.transaction():
        row = await _row(conn, exercise_id, "FOR SHARE")
        rules.check_accepts(ExerciseStatus(row["status"]), exercise_id, "inject into it")
        incident_id = await _incident_of_message(conn, exercise_id, msg_id)
        incident, _ = await store.load(conn, incident_id, for_update=True)
        try:
            events = rules.decide_inject_level(
                incident, exercise_id, level=level, actor=actor_of(who), at=at, reason=reason
            )
        except Forbidden as exc:
            await audit.record_denied(
                state.pool, who, "exercise.inject", exc.reason, object_type="incident", object_id=incident_id
            )
            raise
        new = await store.append(conn, incident, events, audit_action="exercise.inject")
        assert new is not None
        detail = {
            "kind": "escalate",
            "exercise_id": exercise_id,
            "msg_id": msg_id,
            "incident_id": incident_id,
            "from_level": int(incident.level),
            "to_level": int(level),
            "reason": why,
            "changed": bool(events),
            "at": at.isoformat(),
        }
        await audit.record(
            conn, who, "exercise.inject", object_type="exercise", object_id=exercise_id, detail=detail
        )
    if events:
        await publish(state.redis, store.change_for(new))
    await publish(state.redis, change_for(exercise_body(row), "inject", inject=detail))
    return Escalated(new, bool(events), detail)


# --- purge ----------------------------------------------------------------------------------------

#: Feed tables (0001, exercise_id from 0007) and dead letters: rows marked with the exercise.
_FEED_TABLES = (*TIMESERIES_TABLES, "dead_letter")


async def purge(state: CommandState, who: Principal, exercise_id: str) -> dict[str, Any]:
    """Delete everything the exercise produced, in one transaction; mark it ``purged``.
    Returns the exercise and how many rows went from each table."""
    at = now()
    deleted: dict[str, int] = {}

    async def delete(table: str, sql: str, params: dict[str, Any]) -> None:
        cur = await conn.execute(sql, params)
        deleted[table] = deleted.get(table, 0) + max(cur.rowcount, 0)

    async with state.pool.connection() as conn, conn.transaction():
        row = await _row(conn, exercise_id, "FOR UPDATE")  # the team feed and injects wait for us
        rules.check_purgeable(ExerciseStatus(row["status"]), exercise_id)
        # The append-only triggers let this exercise's own rows go, in this transaction only.
        await conn.execute("SELECT set_config('wuwang.purging_exercise', %s, true)", (exercise_id,))
        # TimescaleDB: chunks compressed before 0012 hold drill and live rows in one
        # segment, and deleting the drill's rows decompresses them — more than the default
        # per-transaction limit (100,000) for a large drill. No limit for this transaction
        # (a placeholder setting, harmless, on plain PostgreSQL).
        await conn.execute(
            "SELECT set_config('timescaledb.max_tuples_decompressed_per_dml_transaction', '0', true)"
        )
        p = {"ex": exercise_id, "prefix": exercise_source_prefix(exercise_id)}
        incidents = "SELECT id FROM incident WHERE exercise_id = %(ex)s"
        orders = (
            f"SELECT order_id FROM dispatch_order WHERE exercise_id = %(ex)s OR incident_id IN ({incidents})"
        )
        await delete("stock_movement", f"DELETE FROM stock_movement WHERE incident_id IN ({incidents})", p)
        await delete(
            "stock_allocation", f"DELETE FROM stock_allocation WHERE incident_id IN ({incidents})", p
        )
        await delete("mqtt_outbox", f"DELETE FROM mqtt_outbox WHERE order_id IN ({orders})", p)
        await delete(
            "dispatch_order",
            f"DELETE FROM dispatch_order WHERE exercise_id = %(ex)s OR incident_id IN ({incidents})",
            p,
        )
        await delete("incident_source", f"DELETE FROM incident_source WHERE incident_id IN ({incidents})", p)
        await delete("incident_event", "DELETE FROM incident_event WHERE exercise_id = %(ex)s", p)
        await delete("incident", "DELETE FROM incident WHERE exercise_id = %(ex)s", p)
        await delete("grid_case_step", "DELETE FROM grid_case_step WHERE exercise_id = %(ex)s", p)
        await delete("grid_case", "DELETE FROM grid_case WHERE exercise_id = %(ex)s", p)
        await delete("triage_row", "DELETE FROM triage_row WHERE exercise_id = %(ex)s", p)
        await delete("planned_event", "DELETE FROM planned_event WHERE exercise_id = %(ex)s", p)
        # the drill's duty desk (值班值守): its handovers before the shifts they name
        for table in ("duty_handover", "duty_instruction", "duty_log_entry", "duty_shift"):
            await delete(table, f"DELETE FROM {table} WHERE exercise_id = %(ex)s", p)
        await delete(
            "alarm_inbox",
            "DELETE FROM alarm_inbox WHERE exercise_id = %(ex)s OR starts_with(alarm_id, %(prefix)s)",
            p,
        )
        await delete(
            "alarm_outbox",
            "DELETE FROM alarm_outbox WHERE starts_with(alarm_id, %(prefix)s)"
            " OR payload -> 'details' ->> 'exercise_id' = %(ex)s",
            p,
        )
        await delete("message_ledger", "DELETE FROM message_ledger WHERE starts_with(source, %(prefix)s)", p)
        for table in _FEED_TABLES:
            await delete(table, f"DELETE FROM {table} WHERE exercise_id = %(ex)s", p)
        if await _has_column(conn, "sensor_alarm_state", "scope"):  # the drill's own hysteresis (ingest)
            await delete("sensor_alarm_state", "DELETE FROM sensor_alarm_state WHERE scope = %(ex)s", p)
        await delete("exercise_team_state", "DELETE FROM exercise_team_state WHERE exercise_id = %(ex)s", p)
        await delete("exercise_stock_cut", "DELETE FROM exercise_stock_cut WHERE exercise_id = %(ex)s", p)
        await delete("imported_call", "DELETE FROM imported_call WHERE dataset_id = %(ex)s", p)
        record = {"at": at.isoformat(), "by": who.user_id, "from_status": row["status"], "deleted": deleted}
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "UPDATE exercise SET status = 'purged',"
                " stats = stats || jsonb_build_object('purge', %s::jsonb)"
                f" WHERE id = %s RETURNING {_COLUMNS}",
                (Jsonb(record), exercise_id),
            )
            purged = await cur.fetchone()
        assert purged is not None
        await audit.record(
            conn, who, "exercise.purge", object_type="exercise", object_id=exercise_id, detail=record
        )
    try:
        await state.redis.delete(control_stream(exercise_id))
    except Exception:  # the rows are gone; a leftover control stream is harmless
        log.warning("could not delete the control stream of exercise %s", exercise_id, exc_info=True)
    body = exercise_body(purged)
    await publish(state.redis, change_for(body, "purged", deleted=deleted))
    return {"exercise": body, "deleted": deleted}


async def _has_column(conn: AsyncConnection[Any], table: str, column: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s AND column_name = %s",
        (table, column),
    )
    return await cur.fetchone() is not None


# --- team statuses inside a drill (MQTT) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExerciseStatusOutcome:
    applied: bool
    why: str  # "applied", "stale", "unknown exercise", "unknown team", "purged"


async def apply_team_status(
    state: CommandState, exercise_id: str, team_id: str, status: TeamStatus, at: datetime, msg_id: str
) -> ExerciseStatusOutcome:
    """A team's status inside one exercise: upsert ``exercise_team_state`` (newer wins);
    the live team row is never touched. Audited; published to planners."""
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT status FROM exercise WHERE id = %s FOR SHARE", (exercise_id,))
        ex = await cur.fetchone()
        if ex is None:
            return ExerciseStatusOutcome(False, "unknown exercise")
        if ex[0] == ExerciseStatus.PURGED:
            return ExerciseStatusOutcome(False, "purged")  # a late message must not bring rows back
        cur = await conn.execute("SELECT 1 FROM team WHERE id = %s", (team_id,))
        if await cur.fetchone() is None:
            return ExerciseStatusOutcome(False, "unknown team")
        cur = await conn.execute(
            "SELECT status FROM exercise_team_state WHERE exercise_id = %s AND team_id = %s",
            (exercise_id, team_id),
        )
        old = await cur.fetchone()
        cur = await conn.execute(
            "INSERT INTO exercise_team_state (exercise_id, team_id, status, changed_at)"
            " VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (exercise_id, team_id) DO UPDATE SET status = EXCLUDED.status,"
            " changed_at = EXCLUDED.changed_at WHERE exercise_team_state.changed_at <= EXCLUDED.changed_at",
            (exercise_id, team_id, status.value, at),
        )
        if cur.rowcount == 0:
            return ExerciseStatusOutcome(False, "stale")
        await audit.record(
            conn,
            team_id,
            "exercise.team_status",
            object_type="exercise",
            object_id=exercise_id,
            detail={
                "team_id": team_id,
                "from": old[0] if old else None,
                "to": status.value,
                "msg_id": msg_id,
            },
        )
    await publish(
        state.redis,
        Change(
            "exercise",
            exercise_id,
            {
                "id": exercise_id,
                "event": "team_status",
                "team": {"team_id": team_id, "status": status.value, "changed_at": at.isoformat()},
            },
            exercise_id=exercise_id,
        ),
    )
    return ExerciseStatusOutcome(True, "applied")
