"""Warnings (预警) at the edge: the ``warning`` table (migration 0017), the identifier's
sequence per second, who and what is inside an area, delivery to the field through the
MQTT outbox, live changes and expiry. The rules are command/domain/warnings.py.

Delivery: every team and grid worker inside the area when a warning is issued (or
updated, or cancelled) gets it on ``warnings/v1/<account>`` (a team ``T-FIRE-01``, a grid
worker ``report/GW-<cell>``; a drill's behind its ``exercise/v1/<id>/`` prefix) through
``mqtt_outbox`` in the same transaction, so a broker that is down loses nothing
(docs/mqtt-contract.md §11).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from command import audit
from command.domain import cap
from command.domain import warnings as wd
from command.domain.incidents import Actor, IllegalTransition
from command.domain.warning_events import EVENT_TYPES
from command.security import Principal
from command.services import live
from command.services.incident_store import NotFound
from command.services.tasks import Periodic
from command.state import CommandState
from wuwang import i18n
from wuwang.lattice import grid_cell_id
from wuwang.scope import Scope
from wuwang.settings import Settings

log = logging.getLogger(__name__)

ListPhase = Literal["active", "all"]

_COLUMNS = (
    "identifier, sender, exercise_id, state, msg_type, version, refs, event_type, level, area_polygon,"
    " area_cells, area_districts, onset, expires, headline, description, instruction, drafted_by,"
    " drafted_at, approved_by, approved_at, cancelled_by, cancelled_at, cancel_reason, ended_at,"
    " target_teams, target_grid_workers"
)

#: Registries counted inside an area besides cells, devices, venues and teams: added by
#: migration 0016 (risk sources, shelters); counted only where the table exists.
OPTIONAL_REGISTRIES = ("risk_source", "shelter")


def sender_code(settings: Settings) -> wd.SenderCode:
    return wd.SenderCode(
        settings.command.warning_area_code,
        settings.command.warning_institution,
        settings.command.warning_unit,
        settings.command.warning_extension,
    )


def _record(r: dict[str, Any]) -> wd.WarningRecord:
    content = wd.Content(
        event_type=r["event_type"],
        level=wd.Level(r["level"]),
        area=wd.Area(
            tuple((float(p[0]), float(p[1])) for p in r["area_polygon"]),
            frozenset(r["area_cells"]),
            frozenset(r["area_districts"]),
        ),
        onset=r["onset"],
        expires=r["expires"],
        headline=r["headline"],
        description=r["description"],
        instruction=r["instruction"],
    )
    return wd.WarningRecord(
        identifier=r["identifier"],
        sender=r["sender"],
        content=content,
        exercise_id=r["exercise_id"],
        drafted_by=r["drafted_by"],
        drafted_at=r["drafted_at"],
        state=wd.WarningState(r["state"]),
        msg_type=wd.MsgType(r["msg_type"]),
        version=r["version"],
        references=r["refs"],
        approved_by=r["approved_by"],
        approved_at=r["approved_at"],
        cancelled_by=r["cancelled_by"],
        cancelled_at=r["cancelled_at"],
        cancel_reason=r["cancel_reason"],
        ended_at=r["ended_at"],
        target_teams=tuple(r["target_teams"]),
        target_grid_workers=tuple(r["target_grid_workers"]),
    )


def _params(w: wd.WarningRecord) -> dict[str, Any]:
    c = w.content
    return {
        "identifier": w.identifier,
        "sender": w.sender,
        "exercise_id": w.exercise_id,
        "state": str(w.state),
        "msg_type": str(w.msg_type),
        "version": w.version,
        "refs": w.references,
        "event_type": c.event_type,
        "level": str(c.level),
        "area_polygon": orjson.dumps([list(p) for p in c.area.polygon]).decode(),
        "area_cells": sorted(c.area.cells),
        "area_districts": sorted(c.area.districts),
        "onset": c.onset,
        "expires": c.expires,
        "headline": c.headline,
        "description": c.description,
        "instruction": c.instruction,
        "drafted_by": w.drafted_by,
        "drafted_at": w.drafted_at,
        "approved_by": w.approved_by,
        "approved_at": w.approved_at,
        "cancelled_by": w.cancelled_by,
        "cancelled_at": w.cancelled_at,
        "cancel_reason": w.cancel_reason,
        "ended_at": w.ended_at,
        "target_teams": list(w.target_teams),
        "target_grid_workers": list(w.target_grid_workers),
    }


async def _select(
    conn: AsyncConnection[Any], where: sql.Composable, params: Any, suffix: str = ""
) -> list[wd.WarningRecord]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM warning WHERE {} {}").format(sql.SQL(_COLUMNS), where, sql.SQL(suffix)),
            params,
        )
        return [_record(r) for r in await cur.fetchall()]


async def get(conn: AsyncConnection[Any], identifier: str, *, for_update: bool = False) -> wd.WarningRecord:
    found = await _select(conn, sql.SQL("identifier = %s"), (identifier,), "FOR UPDATE" if for_update else "")
    if not found:
        raise NotFound(f"no warning {identifier}")
    return found[0]


async def list_warnings(
    conn: AsyncConnection[Any], *, scope: Scope, phase: ListPhase, now: datetime, limit: int = 200
) -> list[wd.WarningRecord]:
    """A scope's warnings, newest first. ``active``: drafts and issued ones not yet
    expired; ``all``: every version."""
    where: sql.Composable = scope.where(name="ex")
    if phase == "active":
        where = sql.SQL("{} AND state IN ('draft', 'issued') AND expires > %(now)s").format(where)
    return await _select(
        conn,
        where,
        {**scope.named("ex"), "now": now, "limit": limit},
        "ORDER BY drafted_at DESC LIMIT %(limit)s",
    )


async def for_team(
    conn: AsyncConnection[Any], team_id: str, *, now: datetime, limit: int = 50
) -> list[wd.WarningRecord]:
    """The live warnings a team was sent that are still in force, newest first."""
    return await _select(
        conn,
        sql.SQL(
            "exercise_id IS NULL AND state = 'issued' AND expires > %(now)s AND %(team)s = ANY(target_teams)"
        ),
        {"now": now, "team": team_id, "limit": limit},
        "ORDER BY approved_at DESC LIMIT %(limit)s",
    )


async def new_identifier(conn: AsyncConnection[Any], sender: wd.SenderCode, at: datetime) -> str:
    """The next identifier of the second ``at`` (the caller's transaction): an advisory
    lock per second serialises two drafts of the same second; the primary key catches
    anything else."""
    stem = wd.identifier_stem(sender, at)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"warning:{stem}",))
    cur = await conn.execute("SELECT identifier FROM warning WHERE identifier LIKE %s", (f"{stem}\\_%",))
    return wd.next_identifier(sender, at, (r[0] for r in await cur.fetchall()))


# --- who and what is inside ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inside:
    """What an area holds: counts per registry and the recipients."""

    counts: dict[str, int]
    teams: tuple[str, ...]
    grid_workers: tuple[str, ...]


async def _rows(conn: AsyncConnection[Any], query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


async def _optional_points(conn: AsyncConnection[Any], table: str) -> list[tuple[Any, ...]] | None:
    """(lat, lon) of a registry added by another migration, or None without its table."""
    cur = await conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s AND column_name IN ('lat', 'lon')",
        (table,),
    )
    row = await cur.fetchone()
    if row is None or row[0] < 2:
        return None
    return await _rows(conn, sql.SQL("SELECT lat, lon FROM {}").format(sql.Identifier(table)).as_string(conn))


async def inside(conn: AsyncConnection[Any], area: wd.Area, scope: Scope) -> Inside:
    """Count the grid cells, devices, venues, teams (and risk sources and shelters where
    their tables exist) inside ``area``; the teams (by their last position, else their
    base) and the grid workers of the cells inside are its recipients."""
    cells = await _rows(conn, "SELECT id, district_adcode, center_lat, center_lon FROM grid_cell")
    district_of = {c[0]: c[1] for c in cells}
    cells_in = [c[0] for c in cells if area.contains(c[2], c[3], cell=c[0], adcode=c[1])]

    def place_in(lat: float | None, lon: float | None, cell: str | None) -> bool:
        if cell is None and lat is not None and lon is not None:
            cell = grid_cell_id(lat, lon)
        return area.contains(lat, lon, cell=cell, adcode=district_of.get(cell) if cell else None)

    devices = await _rows(conn, "SELECT lat, lon, grid_cell_id FROM device")
    venues = await _rows(conn, "SELECT lat, lon, grid_cell_id FROM venue")
    teams = await _rows(
        conn, "SELECT id, coalesce(lat, base_lat), coalesce(lon, base_lon) FROM team ORDER BY id"
    )
    teams_in = tuple(t[0] for t in teams if place_in(t[1], t[2], None))
    counts = {
        "grid_cells": len(cells_in),
        "devices": sum(1 for d in devices if place_in(d[0], d[1], d[2])),
        "venues": sum(1 for v in venues if place_in(v[0], v[1], v[2])),
        "teams": len(teams_in),
    }
    for table in OPTIONAL_REGISTRIES:
        points = await _optional_points(conn, table)
        if points is not None:
            counts[f"{table}s"] = sum(1 for p in points if place_in(p[0], p[1], None))
    return Inside(counts, teams_in, tuple(f"GW-{c}" for c in sorted(cells_in)))


# --- bodies, audit, delivery -------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def warning_body(w: wd.WarningRecord, now: datetime) -> dict[str, Any]:
    """The API's and the live change's view of a warning."""
    c = w.content
    return {
        "identifier": w.identifier,
        "sender": w.sender,
        "status": w.status,
        "msg_type": str(w.msg_type),
        "version": w.version,
        "references": w.references,
        "exercise_id": w.exercise_id,
        "state": str(w.state),
        "active": w.active(now),
        "event_type": c.event_type,
        "category": EVENT_TYPES[c.event_type],
        "level": str(c.level),
        "level_grade": c.level.grade,
        "colour": c.level.colour,
        "severity": c.level.cap_severity,
        "urgency": c.level.cap_urgency,
        "certainty": c.level.cap_certainty,
        "area": {
            "polygon": [list(p) for p in c.area.polygon],
            "cells": sorted(c.area.cells),
            "districts": sorted(c.area.districts),
        },
        "onset": c.onset.isoformat(),
        "expires": c.expires.isoformat(),
        "headline": c.headline,
        "description": c.description,
        "instruction": c.instruction,
        "drafted_by": w.drafted_by,
        "drafted_at": w.drafted_at.isoformat(),
        "approved_by": w.approved_by,
        "approved_at": _iso(w.approved_at),
        "cancelled_by": w.cancelled_by,
        "cancelled_at": _iso(w.cancelled_at),
        "cancel_reason": w.cancel_reason,
        "ended_at": _iso(w.ended_at),
        "target_teams": list(w.target_teams),
        "target_grid_workers": list(w.target_grid_workers),
    }


def field_message(w: wd.WarningRecord, at: datetime) -> dict[str, Any]:
    """What a team or grid worker receives (docs/mqtt-contract.md §11)."""
    c = w.content
    kind = "cancel" if w.state == wd.WarningState.CANCELLED else "update" if w.references else "alert"
    return {
        "id": f"{w.identifier}-{kind}",
        "ts": at.isoformat(),
        "kind": kind,
        "identifier": w.identifier,
        "references": w.references,
        "sender": w.sender,
        "status": w.status,
        "event_type": c.event_type,
        "level": str(c.level),
        "headline": c.headline,
        "description": c.description,
        "instruction": c.instruction,
        "onset": c.onset.isoformat(),
        "expires": c.expires.isoformat(),
        "area": {
            "polygon": [list(p) for p in c.area.polygon],
            "cells": sorted(c.area.cells),
            "districts": sorted(c.area.districts),
        },
        "reason": w.cancel_reason,
    }


def field_topic(scope: Scope, account: str) -> str:
    """``warnings/v1/<account>`` (a team id, or a grid worker's ``report/GW-<cell>``)."""
    return scope.topic(f"warnings/v1/{account}")


async def _deliver(
    conn: AsyncConnection[Any],
    w: wd.WarningRecord,
    at: datetime,
    *,
    teams: Iterable[str] | None = None,
    reason: Literal["issued", "moved_in"] = "issued",
) -> int:
    """Queue the field message of ``w`` for its recipients (or only ``teams``), each
    recorded in ``warning_recipient`` — one row per version and account."""
    scope = Scope.of(w.exercise_id)
    payload = orjson.dumps(field_message(w, at))
    recipients = [(t, "team") for t in (w.target_teams if teams is None else teams)]
    if teams is None:
        recipients += [(g, "grid_worker") for g in w.target_grid_workers]
    if not recipients:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO warning_recipient (identifier, account, kind, reason) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(w.identifier, a, kind, reason) for a, kind in recipients],
        )
        await cur.executemany(
            "INSERT INTO mqtt_outbox (topic, payload) VALUES (%s, %s)",
            [
                (field_topic(scope, a if kind == "team" else f"report/{a}"), payload)
                for a, kind in recipients
            ],
        )
    await conn.execute("SELECT pg_notify('wuwang_outbox', '')")
    return len(recipients)


async def _audit(
    conn: AsyncConnection[Any], who: Principal | str, action: str, w: wd.WarningRecord, **extra: Any
) -> None:
    await audit.record(
        conn,
        who,
        f"warning.{action}",
        object_type="warning",
        object_id=w.identifier,
        detail={
            "state": str(w.state),
            "level": str(w.content.level),
            "event_type": w.content.event_type,
            "headline": w.content.headline,
            "exercise_id": w.exercise_id,
            "references": w.references,
            "approved_by": w.approved_by,
            "cancel_reason": w.cancel_reason,
            **extra,
        },
    )


async def insert(conn: AsyncConnection[Any], w: wd.WarningRecord, who: Principal | str, action: str) -> None:
    names = [n.strip() for n in _COLUMNS.split(",")]
    await conn.execute(
        sql.SQL("INSERT INTO warning ({}) VALUES ({})").format(
            sql.SQL(_COLUMNS), sql.SQL(", ").join(sql.Placeholder(n) for n in names)
        ),
        _params(w),
    )
    await _audit(conn, who, action, w)


async def save(
    conn: AsyncConnection[Any], w: wd.WarningRecord, who: Principal | str, action: str, **extra: Any
) -> None:
    """Store a changed version (state and the fields a step sets) and its audit record."""
    await conn.execute(
        "UPDATE warning SET state = %(state)s, msg_type = %(msg_type)s, approved_by = %(approved_by)s,"
        " approved_at = %(approved_at)s, cancelled_by = %(cancelled_by)s, cancelled_at = %(cancelled_at)s,"
        " cancel_reason = %(cancel_reason)s, ended_at = %(ended_at)s, target_teams = %(target_teams)s,"
        " target_grid_workers = %(target_grid_workers)s WHERE identifier = %(identifier)s",
        _params(w),
    )
    await _audit(conn, who, action, w, **extra)


async def issue(conn: AsyncConnection[Any], w: wd.WarningRecord, at: datetime) -> int:
    """Queue the field messages of an issued, updated or cancelled warning."""
    return await _deliver(conn, w, at)


async def announce(state: CommandState, warnings: Iterable[wd.WarningRecord], now: datetime) -> None:
    """After commit: wake the outbox relay and push the changes to live clients."""
    if state.outbox is not None:
        state.outbox.wake()
    for w in warnings:
        await live.publish(
            state.redis,
            live.Change("warning", w.identifier, warning_body(w, now), w.version, w.exercise_id),
        )


# --- re-targeting: teams that move into the area after issue --------------------------------


async def tell_team(
    state: CommandState, identifier: str, team_id: str, now: datetime
) -> wd.WarningRecord | None:
    """Send an issued warning to a team that moved into its area after issue: the team
    joins ``target_teams`` (so its field page lists it and a cancel reaches it) and gets
    the message once — ``warning_recipient``'s key refuses a second telling, whichever
    command process saw the position. None when nothing was sent."""
    async with state.pool.connection() as conn, conn.transaction():
        w = await get(conn, identifier, for_update=True)
        try:
            after = wd.add_team(w, team_id, now=now)
        except IllegalTransition:
            return None  # cancelled, superseded or expired meanwhile
        if after is w:
            return None  # told already
        cur = await conn.execute(
            "INSERT INTO warning_recipient (identifier, account, kind, reason)"
            " VALUES (%s, %s, 'team', 'moved_in')"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (identifier, team_id),
        )
        if await cur.fetchone() is None:
            return None
        await save(conn, after, "system", "retarget", team_id=team_id)
        await _deliver(conn, after, now, teams=[team_id], reason="moved_in")
    await announce(state, [after], now)
    return after


class Retargeting:
    """The team feed's check, for every new team position, whether the team has moved
    into the area of a live warning in force that was not sent to it. The warnings in
    force are read at most every ``refresh_s`` (positions come every few seconds per
    team); the districts of the grid cells once."""

    def __init__(self, refresh_s: float = 5.0) -> None:
        self.refresh_s = refresh_s
        self._warnings: list[wd.WarningRecord] = []
        self._loaded_at: float | None = None
        self._districts: dict[str, int] | None = None
        self.told = 0

    async def _in_force(self, state: CommandState, now: datetime) -> list[wd.WarningRecord]:
        clock = asyncio.get_running_loop().time()
        if self._loaded_at is None or clock - self._loaded_at >= self.refresh_s:
            async with state.pool.connection() as conn:
                self._warnings = await _select(
                    conn,
                    sql.SQL("exercise_id IS NULL AND state = 'issued' AND expires > %(now)s"),
                    {"now": now},
                )
            self._loaded_at = clock
        return self._warnings

    async def _district_of(self, state: CommandState, cell: str) -> int | None:
        if self._districts is None:
            async with state.pool.connection() as conn:
                rows = await _rows(conn, "SELECT id, district_adcode FROM grid_cell")
            self._districts = {r[0]: r[1] for r in rows if r[1] is not None}
        return self._districts.get(cell)

    async def team_moved(
        self, state: CommandState, team_id: str, lat: float, lon: float, at: datetime
    ) -> list[str]:
        """Tell the team every warning it has just moved into; returns their identifiers."""
        now = max(at, datetime.now(UTC))
        warnings = await self._in_force(state, now)
        if not warnings:
            return []
        cell = grid_cell_id(lat, lon)
        by_district = any(w.content.area.districts for w in warnings)
        adcode = await self._district_of(state, cell) if by_district else None
        told = []
        for w in wd.moved_in(warnings, team_id, lat, lon, cell=cell, adcode=adcode, now=now):
            after = await tell_team(state, w.identifier, team_id, now)
            # remembered either way: the next position of this team does not ask again
            self._warnings = [
                x if x.identifier != w.identifier else (after or wd.add_team(x, team_id, now=now))
                for x in self._warnings
            ]
            if after is not None:
                told.append(w.identifier)
                self.told += 1
                log.info("warning %s: team %s moved into its area and was told", w.identifier, team_id)
        return told


# --- expiry --------------------------------------------------------------------------------


async def expire_due(state: CommandState, now: datetime) -> list[wd.WarningRecord]:
    """Expire every issued warning past its expiry (audited as the system)."""
    done: list[wd.WarningRecord] = []
    async with state.pool.connection() as conn, conn.transaction():
        due = await _select(
            conn, sql.SQL("state = 'issued' AND expires <= %(now)s"), {"now": now}, "FOR UPDATE SKIP LOCKED"
        )
        for w in due:
            after = wd.expire(w, at=now)
            await save(conn, after, "system", "expire")
            done.append(after)
    if done:
        await announce(state, done, now)
    return done


class WarningExpiry(Periodic):
    """The periodic expiry of issued warnings (a worker of the command service)."""

    name = "warning-expiry"

    async def round(self, state: CommandState) -> int:
        return len(await expire_due(state, datetime.now(UTC)))


def actor(who: Principal) -> Actor:
    return Actor(who.user_id, who.role, who.team_id)


# --- CAP 1.2 export (GB/T 35965.1) ---------------------------------------------------------


async def as_cap(conn: AsyncConnection[Any], w: wd.WarningRecord) -> cap.CapAlert:
    """An issued (or cancelled) warning as CAP 1.2: one info block in Chinese, the event's
    words from the catalogue, the drawn polygon and the districts (GB/T 2260) as geocodes;
    an Update or Cancel references the message it replaces (docs/warnings.md, CAP mapping)."""
    c = w.content
    references: list[cap.Reference] = []
    if w.references is not None:
        try:
            earlier = await get(conn, w.references)
            references.append(cap.Reference(earlier.sender, earlier.identifier, _cap_sent(earlier)))
        except NotFound:
            pass  # a reference to what this console no longer has stays out, not invented
    msg_type: cap.MsgType = "Cancel" if w.state == wd.WarningState.CANCELLED else _MSG_TYPES[w.msg_type]
    if msg_type == "Cancel" and not references:
        references.append(cap.Reference(w.sender, w.identifier, _cap_sent(w)))
    ring = list(c.area.polygon)
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return cap.cap_from_warning(
        identifier=w.identifier,
        sender=w.sender,
        sent=w.cancelled_at if msg_type == "Cancel" and w.cancelled_at else _cap_sent(w),
        level=c.level.value,
        event_type=c.event_type,
        texts=[
            cap.WarningText(
                language="zh-CN",
                event=i18n.text("zh_CN", f"warning_event.{c.event_type}"),
                headline=c.headline,
                description=c.description,
                instruction=c.instruction or None,
                area_description=c.headline,
            )
        ],
        onset=c.onset,
        expires=c.expires,
        msg_type=msg_type,
        references=references,
        exercise=w.exercise_id is not None,
        polygons=[ring] if len(ring) >= 4 else [],
        geocodes=[cap.ValuePair("GB/T 2260", str(adcode)) for adcode in sorted(c.area.districts)],
    )


_MSG_TYPES: dict[wd.MsgType, cap.MsgType] = {
    wd.MsgType.ALERT: "Alert",
    wd.MsgType.UPDATE: "Update",
    wd.MsgType.CANCEL: "Cancel",
}


def _cap_sent(w: wd.WarningRecord) -> datetime:
    return w.approved_at or w.drafted_at


async def issued_for_feed(
    conn: AsyncConnection[Any], *, now: datetime, limit: int = 200
) -> list[wd.WarningRecord]:
    """The live warnings in force, newest first: what downstream release systems poll."""
    found = await _select(
        conn,
        sql.SQL("exercise_id IS NULL AND state = 'issued' AND expires > %(now)s"),
        {"now": now, "limit": limit},
        "ORDER BY approved_at DESC LIMIT %(limit)s",
    )
    return [w for w in found if w.active(now)]
