"""The incident record in PostgreSQL: events in, incidents out.

``load`` replays an incident's events; ``append`` inserts new events (the primary key
(incident_id, seq) turns a lost race into ``StaleVersion`` → 409), rewrites the
projection row, keeps ``incident_source`` (one row per alarm, so an alarm can never
sit in two incidents) and writes the audit record — all in the caller's transaction.
Publishing the change to live clients happens after commit (``changes_for``).

``run_command`` / ``run_pair`` are the whole round for a command on one incident or two:
load, decide (pure, ``command.domain``), append, publish after commit. Services that change
an incident call them here rather than through each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from command import audit
from command.domain.correlation import TeamOrder
from command.domain.incidents import (
    Absorbed,
    Event,
    Forbidden,
    Incident,
    IncidentState,
    InvalidCommand,
    MergedInto,
    Opened,
    SourceLinked,
    SourceSplit,
    StaleVersion,
    acts_allowed,
    event_from_record,
    next_acts,
    replay,
)
from command.security import Principal
from command.services.live import Change, publish
from command.state import CommandState
from wuwang import i18n
from wuwang.scope import Scope


class NotFound(LookupError):
    pass


async def load(
    conn: AsyncConnection[Any], incident_id: str, *, for_update: bool = False
) -> tuple[Incident, list[Event]]:
    """The incident and its events. ``for_update`` locks its projection row, so two
    commands on one incident queue up instead of racing to the same seq."""
    if for_update:
        await conn.execute("SELECT 1 FROM incident WHERE id = %s FOR UPDATE", (incident_id,))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT incident_id, seq, kind, at, actor, actor_role, reason, data FROM incident_event"
            " WHERE incident_id = %s ORDER BY seq",
            (incident_id,),
        )
        rows = await cur.fetchall()
    if not rows:
        raise NotFound(f"no incident {incident_id}")
    events = [event_from_record(r) for r in rows]
    return replay(events), events


async def append(
    conn: AsyncConnection[Any], incident: Incident | None, events: Sequence[Event], *, audit_action: str
) -> Incident | None:
    """Store ``events`` (decided on ``incident``), update the projection; returns the new
    incident, or the old one when there was nothing to store."""
    if not events:
        return incident
    exercise_id = incident.exercise_id if incident else _opened_exercise(events[0])
    try:
        # A savepoint: a lost race leaves the outer transaction usable.
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO incident_event (incident_id, seq, kind, at, actor, actor_role, reason, data,"
                " exercise_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        e.incident_id,
                        e.seq,
                        e.kind,
                        e.at,
                        e.actor,
                        str(e.actor_role),
                        e.reason,
                        Jsonb(e.to_record()["data"]),
                        exercise_id,
                    )
                    for e in events
                ],
            )
    except psycopg.errors.UniqueViolation:
        current = incident.version if incident else 0
        raise StaleVersion(events[0].incident_id, current, current + 1) from None
    new = replay_onto(incident, events)
    await _project(conn, new)
    await _link_sources(conn, new, events)
    last = events[-1]
    await audit.record(
        conn,
        last.actor,
        audit_action,
        object_type="incident",
        object_id=new.incident_id,
        detail={"events": [e.kind for e in events], "version": new.version, "reason": last.reason},
    )
    return new


def replay_onto(incident: Incident | None, events: Sequence[Event]) -> Incident:
    from command.domain.incidents import apply

    state = incident
    for event in events:
        state = apply(state, event)
    assert state is not None
    return state


def _opened_exercise(event: Event) -> str | None:
    return event.data.exercise_id if isinstance(event.data, Opened) else None


async def _project(conn: AsyncConnection[Any], inc: Incident) -> None:
    await conn.execute(
        """
        INSERT INTO incident (id, incident_type, level, state, is_open, title, lat, lon, grid_cell_id,
            exercise_id, opened_at, first_alarm_at, latest_alarm_at, first_dispatch_at, first_on_scene_at,
            resolved_at, closed_at, ended_at, version, plan_id, merged_into, body, updated_at)
        VALUES (%(id)s, %(type)s, %(level)s, %(state)s, %(open)s, %(title)s, %(lat)s, %(lon)s, %(cell)s,
            %(ex)s, %(opened)s, %(first)s, %(latest)s, %(disp)s, %(scene)s, %(resolved)s, %(closed)s,
            %(ended)s, %(version)s, %(plan)s, %(merged)s, %(body)s, now())
        ON CONFLICT (id) DO UPDATE SET incident_type = EXCLUDED.incident_type, level = EXCLUDED.level,
            state = EXCLUDED.state, is_open = EXCLUDED.is_open, title = EXCLUDED.title, lat = EXCLUDED.lat,
            lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,
            first_alarm_at = EXCLUDED.first_alarm_at,
            latest_alarm_at = EXCLUDED.latest_alarm_at, first_dispatch_at = EXCLUDED.first_dispatch_at,
            first_on_scene_at = EXCLUDED.first_on_scene_at, resolved_at = EXCLUDED.resolved_at,
            closed_at = EXCLUDED.closed_at, ended_at = EXCLUDED.ended_at, version = EXCLUDED.version,
            plan_id = EXCLUDED.plan_id, merged_into = EXCLUDED.merged_into, body = EXCLUDED.body,
            updated_at = now()
        """,
        {
            "id": inc.incident_id,
            "type": str(inc.incident_type),
            "level": int(inc.level),
            "state": str(inc.state),
            "open": inc.is_open,
            "title": inc.title,
            "lat": inc.lat,
            "lon": inc.lon,
            "cell": inc.grid_cell_id,
            "ex": inc.exercise_id,
            "opened": inc.opened_at,
            "first": inc.first_alarm_at,
            "latest": inc.latest_alarm_at,
            "disp": inc.first_dispatch_at,
            "scene": inc.first_on_scene_at,
            "resolved": inc.resolved_at,
            "closed": inc.closed_at,
            "ended": inc.ended_at,
            "version": inc.version,
            "plan": inc.active_plan.plan_id if inc.active_plan else None,
            "merged": inc.merged_into,
            "body": Jsonb(incident_body(inc)),
        },
    )


async def _link_sources(conn: AsyncConnection[Any], inc: Incident, events: Sequence[Event]) -> None:
    """Keep incident_source in step: its primary key refuses an alarm in two incidents."""
    for e in events:
        d = e.data
        try:
            if isinstance(d, Opened) and d.source is not None and d.split_from is not None:
                moved = await conn.execute(
                    "UPDATE incident_source SET incident_id = %s WHERE alarm_id = %s AND incident_id = %s",
                    (e.incident_id, d.source.alarm_id, d.split_from),
                )
                if moved.rowcount != 1:
                    raise InvalidCommand(f"alarm {d.source.alarm_id} is not in incident {d.split_from}")
            elif isinstance(d, Opened | SourceLinked) and d.source is not None:
                await conn.execute(
                    "INSERT INTO incident_source (alarm_id, incident_id, linked_at) VALUES (%s, %s, %s)",
                    (d.source.alarm_id, e.incident_id, e.at),
                )
            elif isinstance(d, Absorbed):
                await conn.execute(
                    "UPDATE incident_source SET incident_id = %s WHERE alarm_id = ANY(%s)",
                    (e.incident_id, [s.alarm_id for s in d.sources]),
                )
            elif isinstance(d, SourceSplit | MergedInto):
                pass  # the receiving incident's event moves the row
        except psycopg.errors.UniqueViolation:
            raise InvalidCommand(
                f"an alarm of incident {inc.incident_id} already belongs to another incident"
            ) from None


def incident_body(inc: Incident) -> dict[str, Any]:
    """The incident as the API and the console see it (JSON-able)."""

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "id": inc.incident_id,
        "type": str(inc.incident_type),
        "level": int(inc.level),
        "level_name": inc.level.name,
        "level_colour": inc.level.colour,
        "level_zh": i18n.text("zh_CN", f"level.{inc.level.value}"),
        "state": str(inc.state),
        "state_zh": i18n.text("zh_CN", f"state.{inc.state}"),
        "is_open": inc.is_open,
        "title": inc.title,
        "lat": inc.lat,
        "lon": inc.lon,
        "grid_cell_id": inc.grid_cell_id,
        "exercise_id": inc.exercise_id,
        "opened_at": iso(inc.opened_at),
        "first_alarm_at": iso(inc.first_alarm_at),
        "latest_alarm_at": iso(inc.latest_alarm_at),
        "first_dispatch_at": iso(inc.first_dispatch_at),
        "first_on_scene_at": iso(inc.first_on_scene_at),
        "resolved_at": iso(inc.resolved_at),
        "closed_at": iso(inc.closed_at),
        "version": inc.version,
        "merged_into": inc.merged_into,
        "split_from": inc.split_from,
        "sources": [s.model_dump(mode="json") for s in inc.sources],
        "teams": [t.model_dump(mode="json") for t in inc.teams],
        "active_plan": (
            {**asdict(inc.active_plan), "level": int(inc.active_plan.level), "at": iso(inc.active_plan.at)}
            if inc.active_plan
            else None
        ),
        "checklist": [
            {"plan_id": c.plan_id, "item_id": c.item_id, "at": iso(c.at), "by": c.by} for c in inc.checklist
        ],
        "held": (
            {"reason": inc.held.reason, "by": inc.held.by, "at": iso(inc.held.at)} if inc.held else None
        ),
        "next_acts": [str(act) for act in next_acts(inc)],
    }


def with_next_acts(body: dict[str, Any]) -> dict[str, Any]:
    """A stored incident body with the acts its state allows now: from the lifecycle
    table as it is, not as it was when the body was written."""
    held = body.get("held") is not None
    return body | {"next_acts": [str(act) for act in acts_allowed(IncidentState(body["state"]), held=held)]}


def change_for(inc: Incident) -> Change:
    return Change(
        "incident", inc.incident_id, incident_body(inc), version=inc.version, exercise_id=inc.exercise_id
    )


def event_body(e: Event) -> dict[str, Any]:
    record = e.to_record()
    return {k: record[k] for k in ("seq", "kind", "at", "actor", "actor_role", "reason", "data")}


# --- commands on the record: one transaction around a pure decision -----------------------
# (what every service that changes an incident uses: plans, dispatch, field reports, ...)


Decide = Callable[[Incident], list[Event]]


@asynccontextmanager
async def audited_refusal(
    state: CommandState, who: Principal, action: str, incident_id: str
) -> AsyncIterator[None]:
    """An act on an incident whose refusal of the role (``Forbidden``) is audited — after
    its transaction rolled back — and then propagates (the route maps it to 403)."""
    try:
        yield
    except Forbidden as exc:
        await audit.record_denied(
            state.pool, who, action, exc.reason, object_type="incident", object_id=incident_id
        )
        raise


@asynccontextmanager
async def locked_incident(
    state: CommandState, who: Principal, incident_id: str, action: str
) -> AsyncIterator[tuple[AsyncConnection[Any], Incident]]:
    """One transaction around an act on one incident: the incident as its events say,
    its row locked until commit (acts on it queue up), a refusal of the role audited."""
    async with (
        audited_refusal(state, who, action, incident_id),
        state.pool.connection() as conn,
        conn.transaction(),
    ):
        incident, _ = await load(conn, incident_id, for_update=True)
        yield conn, incident


async def run_command(
    state: CommandState, who: Principal, incident_id: str, decide: Decide, action: str
) -> Incident:
    """Load, decide, append — one transaction, the incident row locked meanwhile.
    Domain errors propagate (the route maps them to 403/409/422); a refusal is audited."""
    async with locked_incident(state, who, incident_id, action) as (conn, incident):
        events = decide(incident)
        new = await append(conn, incident, events, audit_action=action)
    assert new is not None
    if events:
        await publish(state.redis, change_for(new))
    return new


async def run_pair(
    state: CommandState,
    who: Principal,
    first_id: str,
    second_id: str,
    decide: Callable[[Incident, Incident], tuple[Sequence[Event], Sequence[Event]]],
    action: str,
) -> tuple[Incident, Incident]:
    """Split and merge: two incidents in one transaction, locked in id order (no deadlock)."""
    async with (
        audited_refusal(state, who, action, first_id),
        state.pool.connection() as conn,
        conn.transaction(),
    ):
        for incident_id in sorted({first_id, second_id}):
            await conn.execute("SELECT 1 FROM incident WHERE id = %s FOR UPDATE", (incident_id,))
        first, _ = await load(conn, first_id)
        second = (await load(conn, second_id))[0] if second_id != first_id else first
        a_events, b_events = decide(first, second)
        new_first = await append(conn, first, a_events, audit_action=action)
        created = b_events and b_events[0].seq == 1
        new_second = await append(conn, None if created else second, b_events, audit_action=action)
    assert new_first is not None and new_second is not None
    for inc in (new_first, new_second):
        await publish(state.redis, change_for(inc))
    return new_first, new_second


async def team_order(conn: AsyncConnection[Any], team_id: str, scope: Scope) -> TeamOrder | None:
    """The team's order in force in the report's world (a drill's or the live one)."""
    cur = await conn.execute(
        sql.SQL(
            "SELECT o.order_id, o.incident_id, i.is_open FROM dispatch_order o"
            " JOIN incident i ON i.id = o.incident_id"
            " WHERE o.team_id = %s AND o.status IN ('pending','sent','acked')"
            " AND {} ORDER BY o.created_at DESC LIMIT 1"
        ).format(scope.where("o")),
        (team_id, *scope.params),
    )
    row = await cur.fetchone()
    return TeamOrder(row[0], row[1], bool(row[2])) if row is not None else None
