"""The planned-event registry (大型活动登记) at the edge: the ``planned_event`` table
(migration 0015), create / list / cancel with their audit records, and the events the
alarm intake's triage sees as risk context. The rules are command/domain/planned_events.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from command import audit
from command.domain import planned_events as pe
from command.domain.triage import PlannedEvent, TriageRules
from command.security import Principal
from command.services.incident_store import NotFound
from wuwang.scope import Scope

_COLUMNS = (
    "event_id, name, place, lat, lon, radius_m, starts_at, ends_at, exercise_id, created_by, created_at,"
    " state, cancelled_by, cancelled_at, cancel_reason"
)

ListPhase = Literal["current", "all"]


def _event(r: dict[str, Any]) -> pe.EventRecord:
    return pe.EventRecord(**{**r, "state": pe.EventState(r["state"])})


async def _select(
    conn: AsyncConnection[Any], where: str | sql.Composable, params: Any, suffix: str = ""
) -> list[pe.EventRecord]:
    async with conn.cursor(row_factory=dict_row) as cur:
        if isinstance(where, str):
            where = sql.SQL(where)
        query = sql.SQL("SELECT {} FROM planned_event WHERE {} {}").format(
            sql.SQL(_COLUMNS), where, sql.SQL(suffix)
        )
        await cur.execute(query, params)
        return [_event(r) for r in await cur.fetchall()]


def new_event_id(at: datetime) -> str:
    return f"PE-{at:%Y%m%d}-{uuid.uuid4().hex[:8]}"


def event_body(event: pe.EventRecord, now: datetime) -> dict[str, Any]:
    body = asdict(event)
    for key in ("starts_at", "ends_at", "created_at", "cancelled_at"):
        value = body[key]
        body[key] = value.isoformat() if value is not None else None
    body["state"] = str(event.state)
    body["phase"] = event.phase(now)
    return body


async def _audit(
    conn: AsyncConnection[Any], who: Principal | str, action: str, event: pe.EventRecord
) -> None:
    await audit.record(
        conn,
        who,
        f"planned_event.{action}",
        object_type="planned_event",
        object_id=event.event_id,
        detail={
            "name": event.name,
            "lat": event.lat,
            "lon": event.lon,
            "radius_m": event.radius_m,
            "starts_at": event.starts_at.isoformat(),
            "ends_at": event.ends_at.isoformat(),
            "exercise_id": event.exercise_id,
            "cancel_reason": event.cancel_reason,
        },
    )


async def insert(conn: AsyncConnection[Any], event: pe.EventRecord, who: Principal | str) -> None:
    """Store a registered event and its audit record (the caller's transaction)."""
    await conn.execute(
        f"INSERT INTO planned_event ({_COLUMNS}) VALUES (%(event_id)s, %(name)s, %(place)s, %(lat)s,"
        " %(lon)s, %(radius_m)s, %(starts_at)s, %(ends_at)s, %(exercise_id)s, %(created_by)s,"
        " %(created_at)s, %(state)s, %(cancelled_by)s, %(cancelled_at)s, %(cancel_reason)s)",
        {**asdict(event), "state": str(event.state)},
    )
    await _audit(conn, who, "create", event)


async def get_for_update(conn: AsyncConnection[Any], event_id: str) -> pe.EventRecord:
    found = await _select(conn, "event_id = %s", (event_id,), "FOR UPDATE")
    if not found:
        raise NotFound(f"no planned event {event_id}")
    return found[0]


async def save_cancelled(conn: AsyncConnection[Any], event: pe.EventRecord, who: Principal) -> None:
    await conn.execute(
        "UPDATE planned_event SET state = %s, cancelled_by = %s, cancelled_at = %s, cancel_reason = %s"
        " WHERE event_id = %s",
        (str(event.state), event.cancelled_by, event.cancelled_at, event.cancel_reason, event.event_id),
    )
    await _audit(conn, who, "cancel", event)


async def list_events(
    conn: AsyncConnection[Any],
    *,
    now: datetime,
    scope: Scope,
    phase: ListPhase = "current",
    limit: int = 200,
) -> list[pe.EventRecord]:
    """Events of one scope (live, or one drill), the soonest first. ``current``:
    scheduled and not yet over; ``all``: cancelled and past ones too."""
    where: sql.Composable = scope.where(name="ex")
    if phase == "current":
        where = sql.SQL("{} AND state = 'scheduled' AND ends_at >= %(now)s").format(where)
    return await _select(
        conn,
        where,
        {**scope.named("ex"), "now": now, "limit": limit},
        "ORDER BY starts_at, event_id LIMIT %(limit)s",
    )


def _margins(rules: TriageRules) -> tuple[timedelta, timedelta]:
    """The widest before/after margins of the rules' during_event contexts."""
    during = [r.during_event for r in rules.risk if r.during_event is not None]
    before = max((d.before_s for d in during), default=0.0)
    after = max((d.after_s for d in during), default=0.0)
    return timedelta(seconds=before), timedelta(seconds=after)


async def risk_context(
    conn: AsyncConnection[Any], t: datetime, scope: Scope, rules: TriageRules
) -> Sequence[PlannedEvent]:
    """The scheduled events of the alarm's scope running around ``t`` (with the rules'
    margins); the domain checks place and exact time."""
    if not any(r.during_event is not None for r in rules.risk):
        return ()
    before, after = _margins(rules)
    found = await _select(
        conn,
        sql.SQL("state = 'scheduled' AND {} AND starts_at <= %(late)s AND ends_at >= %(early)s").format(
            scope.where(name="ex")
        ),
        {**scope.named("ex"), "late": t + before, "early": t - after},
        "ORDER BY event_id LIMIT 200",
    )
    return pe.risk_context(found)
