"""Risk sources (风险源) and shelters (应急避难场所) at the edge: the registries, the
inspection sweep into the grid loop, findings, occupancy, and what an incident learns
from them. The decisions are command.domain.risk's; every write is one transaction
with its audit record; changes go to live clients after commit (kinds ``risk_source``
and ``shelter``). See docs/risk-and-shelters.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from command import audit
from command.domain import risk as dom
from command.domain.grid import discover
from command.security import Principal
from command.services import grid as grid_service
from command.services.live import Change, ChangeType, publish
from command.services.tasks import Periodic
from command.state import CommandState
from wuwang import i18n
from wuwang.contract import Alarm
from wuwang.lattice import grid_cell_id

log = logging.getLogger(__name__)

#: Audit actor of the inspection sweep.
SWEEP_ACTOR = "system:risk_sweep"

#: Source key of the alarms a finding raises (the triage inbox shows it).
FINDING_SOURCE = "console/risk"


class NotFound(LookupError):
    pass


def now() -> datetime:
    return datetime.now(UTC)


_SOURCE_COLUMNS = (
    "id, name, kind, lat, lon, grid_cell_id, district_adcode, level, responsible_unit, contact,"
    " inspection_interval_days, last_inspected_at, created_at"
)
_SHELTER_COLUMNS = (
    "id, name, kind, lat, lon, grid_cell_id, district_adcode, capacity, facilities, status, occupancy,"
    " occupancy_at, occupancy_by"
)


def _source(row: dict[str, Any]) -> dom.RiskSource:
    return dom.RiskSource(
        row["id"],
        row["name"],
        dom.RiskKind(row["kind"]),
        row["lat"],
        row["lon"],
        dom.RiskLevel(row["level"]),
        timedelta(days=row["inspection_interval_days"]),
        row["last_inspected_at"],
        row["responsible_unit"],
        row["contact"],
        row["grid_cell_id"],
    )


def _shelter(row: dict[str, Any]) -> dom.Shelter:
    return dom.Shelter(
        row["id"],
        row["name"],
        dom.ShelterKind(row["kind"]),
        row["lat"],
        row["lon"],
        row["capacity"],
        dom.ShelterStatus(row["status"]),
        row["occupancy"],
        tuple(row["facilities"]),
    )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def source_body(row: dict[str, Any], at: datetime) -> dict[str, Any]:
    s = _source(row)
    due = dom.inspection_due(s) or row["created_at"]
    return {
        "id": s.id,
        "name": s.name,
        "kind": str(s.kind),
        "lat": s.lat,
        "lon": s.lon,
        "grid_cell_id": s.grid_cell_id,
        "district_adcode": row["district_adcode"],
        "level": str(s.level),
        "responsible_unit": s.responsible_unit,
        "contact": s.contact,
        "inspection_interval_days": row["inspection_interval_days"],
        "last_inspected_at": _iso(s.last_inspected_at),
        "inspection_due_at": _iso(due),
        "inspection_overdue": due <= at,
    }


def shelter_body(row: dict[str, Any]) -> dict[str, Any]:
    s = _shelter(row)
    return {
        "id": s.id,
        "name": s.name,
        "kind": str(s.kind),
        "lat": s.lat,
        "lon": s.lon,
        "grid_cell_id": row["grid_cell_id"],
        "district_adcode": row["district_adcode"],
        "capacity": s.capacity,
        "facilities": list(s.facilities),
        "status": str(s.status),
        "occupancy": s.occupancy,
        "free": s.free,
        "occupancy_at": _iso(row["occupancy_at"]),
        "occupancy_by": row["occupancy_by"],
    }


async def _district_of(conn: AsyncConnection[Any], cell: str) -> int | None:
    cur = await conn.execute("SELECT district_adcode FROM grid_cell WHERE id = %s", (cell,))
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None


# --- risk sources -------------------------------------------------------------------------------


async def list_sources(state: CommandState) -> list[dict[str, Any]]:
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_SOURCE_COLUMNS} FROM risk_source ORDER BY id")
        rows = await cur.fetchall()
    at = now()
    return [source_body(r, at) for r in rows]


async def _load_row(
    conn: AsyncConnection[Any], table: str, columns: str, what: str, object_id: str, *, for_update: bool
) -> dict[str, Any]:
    """One registry row by id (locked with ``for_update``); :class:`NotFound` names ``what``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {columns} FROM {table} WHERE id = %s" + (" FOR UPDATE" if for_update else ""),
            (object_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no {what} {object_id}")
    return row


async def _load_source(
    conn: AsyncConnection[Any], source_id: str, *, for_update: bool = False
) -> dict[str, Any]:
    return await _load_row(
        conn, "risk_source", _SOURCE_COLUMNS, "risk source", source_id, for_update=for_update
    )


async def get_source(state: CommandState, source_id: str) -> dict[str, Any]:
    async with state.pool.connection() as conn:
        row = await _load_source(conn, source_id)
    return source_body(row, now())


async def put_source(
    state: CommandState, who: Principal | str, source_id: str, fields: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Register or replace a risk source (``fields`` as the API's body); returns (body,
    created). The grid cell and district follow from the place."""
    detail = {"level": fields["level"], "kind": fields["kind"]}
    return await _put(state, who, _SOURCES, source_id, fields, detail)


@dataclass(frozen=True)
class _Registry:
    """A registry of places (risk sources, shelters) as :func:`_put` writes it: the live
    change's and audit object's type, the audit action's prefix, and its store."""

    object_type: ChangeType
    audit_prefix: str
    upsert: Callable[[AsyncConnection[Any], str, dict[str, Any], str], Awaitable[bool]]
    load: Callable[[AsyncConnection[Any], str], Awaitable[dict[str, Any]]]
    body: Callable[[dict[str, Any]], dict[str, Any]]


async def _put(
    state: CommandState,
    who: Principal | str,
    registry: _Registry,
    object_id: str,
    fields: dict[str, Any],
    detail: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    """Register or replace an entry in one transaction with its audit record, then
    announce it; returns (body, created)."""
    cell = grid_cell_id(fields["lat"], fields["lon"], state.settings.shared.grid_cell_deg)
    async with state.pool.connection() as conn, conn.transaction():
        created = await registry.upsert(conn, object_id, fields, cell)
        action = f"{registry.audit_prefix}.{'create' if created else 'edit'}"
        await audit.record(
            conn, who, action, object_type=registry.object_type, object_id=object_id, detail=detail
        )
        row = await registry.load(conn, object_id)
    body = registry.body(row)
    await publish(state.redis, Change(registry.object_type, object_id, body))
    return body, created


async def upsert_source(conn: AsyncConnection[Any], source_id: str, f: dict[str, Any], cell: str) -> bool:
    """Insert or update one source on ``conn`` (the API and the demo/CSV loader)."""
    cur = await conn.execute(
        "INSERT INTO risk_source (id, name, kind, lat, lon, grid_cell_id, district_adcode, level,"
        " responsible_unit, contact, inspection_interval_days, last_inspected_at)"
        " VALUES (%(id)s, %(name)s, %(kind)s, %(lat)s, %(lon)s, %(cell)s, %(district)s, %(level)s,"
        " %(unit)s, %(contact)s, %(interval)s, %(last)s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, lat = EXCLUDED.lat,"
        " lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
        " district_adcode = EXCLUDED.district_adcode,"
        " level = EXCLUDED.level, responsible_unit = EXCLUDED.responsible_unit, contact = EXCLUDED.contact,"
        " inspection_interval_days = EXCLUDED.inspection_interval_days,"
        " last_inspected_at = COALESCE(EXCLUDED.last_inspected_at, risk_source.last_inspected_at),"
        " updated_at = now()"
        " RETURNING (xmax = 0)",
        {
            "id": source_id,
            "name": f["name"],
            "kind": str(dom.RiskKind(f["kind"])),
            "lat": f["lat"],
            "lon": f["lon"],
            "cell": cell,
            "district": await _district_of(conn, cell),
            "level": str(dom.RiskLevel(f["level"])),
            "unit": f.get("responsible_unit", ""),
            "contact": f.get("contact", ""),
            "interval": f["inspection_interval_days"],
            "last": f.get("last_inspected_at"),
        },
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def sweep_inspections(state: CommandState, at: datetime | None = None) -> list[dict[str, str]]:
    """Open a grid case (category ``risk_inspection``) for every overdue inspection that
    has none yet: one per source and due date, whoever sweeps (the primary key of
    ``risk_inspection_case`` turns a second opening into nothing). Returns what opened."""
    at = at or now()
    opened: list[dict[str, str]] = []
    stored_cases = []
    async with state.pool.connection() as conn:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {_SOURCE_COLUMNS} FROM risk_source ORDER BY id")
            rows = await cur.fetchall()
        registered = {r["id"]: r["created_at"] for r in rows}
        due = [
            o for r in rows for o in dom.overdue_inspections([_source(r)], at, never_due=registered[r["id"]])
        ]
        due.sort(key=lambda o: (-o.source.level.rank, o.due_at, o.source.id))
        for o in due:
            cur2 = await conn.execute(
                "SELECT 1 FROM risk_inspection_case WHERE source_id = %s AND due_at = %s",
                (o.source.id, o.due_at),
            )
            if await cur2.fetchone() is not None:
                continue
            try:
                async with conn.transaction():
                    stored = await _open_inspection_case(conn, o, at)
            except psycopg.errors.UniqueViolation:
                continue  # another process opened it first: its case stands, ours is rolled back
            stored_cases.append(stored)
            opened.append(
                {"source_id": o.source.id, "case_id": stored.case.id, "due_at": o.due_at.isoformat()}
            )
    for stored in stored_cases:
        await publish(state.redis, grid_service.change_for(stored))
    return opened


class RiskSweep(Periodic):
    """The periodic inspection sweep (a worker of the command service): every overdue
    inspection gets its grid case, once per source and due date (docs/risk-and-shelters.md)."""

    name = "risk-sweep"
    first_after_interval = True

    async def round(self, state: CommandState) -> int:
        return len(await sweep_inspections(state))


async def _open_inspection_case(
    conn: AsyncConnection[Any], o: dom.OverdueInspection, at: datetime
) -> grid_service.Stored:
    s = o.source
    case_id = await grid_service.new_case_id(conn, at)
    case = discover(
        case_id,
        dom.INSPECTION_CATEGORY,
        SWEEP_ACTOR,
        at,
        description=i18n.text(
            i18n.DEFAULT_LANG, "risk.case_description", name=s.name, id=s.id, due=f"{o.due_at:%Y-%m-%d}"
        ),
        lat=s.lat,
        lon=s.lon,
        grid_cell_id=s.grid_cell_id,
        config=grid_service.CONFIG,
    )
    stored = await grid_service.store_case(
        conn,
        case,
        roles=(None,),
        source=f"risk/{s.id}",
        actor=SWEEP_ACTOR,
        source_alarm_id=f"risk/{s.id}#{o.due_at.isoformat()}",
    )
    await conn.execute(
        "INSERT INTO risk_inspection_case (source_id, due_at, case_id, opened_at) VALUES (%s, %s, %s, %s)",
        (s.id, o.due_at, case_id, at),
    )
    return stored


async def report_finding(
    state: CommandState,
    who: Principal,
    source_id: str,
    *,
    note: str,
    level: dom.RiskLevel | None,
    alarm: bool,
    case_id: str | None,
) -> dict[str, Any]:
    """A grid worker's (or the centre's) finding: the inspection is done, the level may
    rise, an alarm may go to the triage inbox (after commit, on the alarm stream)."""
    at = now()
    async with state.pool.connection() as conn, conn.transaction():
        row = await _load_source(conn, source_id, for_update=True)
        before = _source(row)
        if case_id is not None:
            cur = await conn.execute(
                "SELECT 1 FROM risk_inspection_case WHERE source_id = %s AND case_id = %s",
                (source_id, case_id),
            )
            if await cur.fetchone() is None:
                raise dom.RiskError(f"grid case {case_id} is no inspection of {source_id}")
        outcome = dom.apply_finding(before, at, level=level, alarm=alarm)
        after = outcome.source
        alarm_id = f"RISK-{source_id}-{at:%Y%m%d%H%M%S%f}" if outcome.raise_alarm else None
        await conn.execute(
            "UPDATE risk_source SET level = %s, last_inspected_at = %s, updated_at = now() WHERE id = %s",
            (str(after.level), at, source_id),
        )
        await conn.execute(
            "INSERT INTO risk_finding (source_id, case_id, by, at, note, level_before, level_after, alarm_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (source_id, case_id, who.user_id, at, note, str(before.level), str(after.level), alarm_id),
        )
        await audit.record(
            conn,
            who,
            "risk.finding",
            object_type="risk_source",
            object_id=source_id,
            detail={
                "case_id": case_id,
                "level_before": str(before.level),
                "level_after": str(after.level),
                "alarm_id": alarm_id,
            },
        )
        row = await _load_source(conn, source_id)
    body = source_body(row, at)
    await publish(state.redis, Change("risk_source", source_id, body))
    if alarm_id is not None:
        await _raise_alarm(state, after, alarm_id, note, at, who)
    return {"source": body, "raised": outcome.raised, "alarm_id": alarm_id}


async def _raise_alarm(
    state: CommandState, s: dom.RiskSource, alarm_id: str, note: str, at: datetime, who: Principal
) -> None:
    """Into the existing intake: the alarm stream ingest relays to, so triage (the
    inbox, correlation) treats it like any report."""
    alarm = Alarm(
        alarm_id=alarm_id,
        kind="report",
        source=FINDING_SOURCE,
        msg_id=alarm_id,
        network=None,
        ts=at,
        lat=s.lat,
        lon=s.lon,
        grid_cell_id=s.grid_cell_id,
        category=dom.FINDING_CATEGORY,
        summary=i18n.text(
            i18n.DEFAULT_LANG,
            "risk.alarm_summary",
            name=s.name,
            id=s.id,
            level=i18n.text(i18n.DEFAULT_LANG, f"risk.level.{s.level}"),
        ),
        details={"risk_source_id": s.id, "level": str(s.level), "note": note, "reporter": who.user_id},
    )
    await state.redis.xadd(
        state.settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": alarm.encode()}
    )


# --- shelters -------------------------------------------------------------------------------------


async def list_shelters(state: CommandState) -> list[dict[str, Any]]:
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_SHELTER_COLUMNS} FROM shelter ORDER BY id")
        rows = await cur.fetchall()
    return [shelter_body(r) for r in rows]


async def _load_shelter(
    conn: AsyncConnection[Any], shelter_id: str, *, for_update: bool = False
) -> dict[str, Any]:
    return await _load_row(conn, "shelter", _SHELTER_COLUMNS, "shelter", shelter_id, for_update=for_update)


async def upsert_shelter(conn: AsyncConnection[Any], shelter_id: str, f: dict[str, Any], cell: str) -> bool:
    cur = await conn.execute(
        "INSERT INTO shelter (id, name, kind, lat, lon, grid_cell_id, district_adcode, capacity, facilities,"
        " status)"
        " VALUES (%(id)s, %(name)s, %(kind)s, %(lat)s, %(lon)s, %(cell)s, %(district)s, %(capacity)s,"
        " %(facilities)s, %(status)s)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, lat = EXCLUDED.lat,"
        " lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
        " district_adcode = EXCLUDED.district_adcode,"
        " capacity = EXCLUDED.capacity, facilities = EXCLUDED.facilities, status = EXCLUDED.status,"
        " updated_at = now()"
        " RETURNING (xmax = 0)",
        {
            "id": shelter_id,
            "name": f["name"],
            "kind": str(dom.ShelterKind(f["kind"])),
            "lat": f["lat"],
            "lon": f["lon"],
            "cell": cell,
            "district": await _district_of(conn, cell),
            "capacity": f["capacity"],
            "facilities": list(f.get("facilities") or []),
            "status": str(dom.ShelterStatus(f.get("status") or "closed")),
        },
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def put_shelter(
    state: CommandState, who: Principal | str, shelter_id: str, fields: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    detail = {"capacity": fields["capacity"], "status": fields.get("status") or "closed"}
    return await _put(state, who, _SHELTERS, shelter_id, fields, detail)


class _Repeat(Exception):
    """A report whose (reporter, id) was applied before: its transaction is rolled back."""


async def report_occupancy(
    state: CommandState,
    who: Principal | str,
    shelter_id: str,
    occupancy: int,
    *,
    status: dom.ShelterStatus | None = None,
    msg_id: str | None = None,
    channel: Literal["http", "mqtt"] = "http",
    reported_at: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """A field team's count (the field page over HTTP, ``teams/v2/<team>/shelter`` over
    MQTT). Returns (the shelter, applied): a report whose ``msg_id`` this reporter sent
    before is applied once — the second time nothing changes and applied is False."""
    at = now()
    by = who.user_id if isinstance(who, Principal) else who
    try:
        async with state.pool.connection() as conn, conn.transaction():
            row = await _load_shelter(conn, shelter_id, for_update=True)
            after = dom.report_occupancy(_shelter(row), occupancy, status=status)
            cur = await conn.execute(
                "INSERT INTO shelter_occupancy_report"
                " (reporter, msg_id, shelter_id, occupancy, status, channel, reported_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (
                    by,
                    msg_id or f"{channel}-{uuid.uuid4().hex}",
                    shelter_id,
                    after.occupancy,
                    str(after.status),
                    channel,
                    min(reported_at or at, at),
                ),
            )
            if await cur.fetchone() is None:
                raise _Repeat
            await conn.execute(
                "UPDATE shelter SET occupancy = %s, status = %s, occupancy_at = %s, occupancy_by = %s,"
                " updated_at = now() WHERE id = %s",
                (after.occupancy, str(after.status), at, by, shelter_id),
            )
            await audit.record(
                conn,
                who,
                "shelter.report_occupancy",
                object_type="shelter",
                object_id=shelter_id,
                detail={
                    "occupancy": after.occupancy,
                    "status": str(after.status),
                    "channel": channel,
                    "msg_id": msg_id,
                },
            )
            row = await _load_shelter(conn, shelter_id)
    except _Repeat:
        async with state.pool.connection() as conn:
            return shelter_body(await _load_shelter(conn, shelter_id)), False
    body = shelter_body(row)
    await publish(state.redis, Change("shelter", shelter_id, body))
    return body, True


async def nearest_shelters(
    state: CommandState, lat: float, lon: float, *, need: int = 1, limit: int = 5
) -> list[dict[str, Any]]:
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_SHELTER_COLUMNS} FROM shelter WHERE status = 'open'")
        rows = await cur.fetchall()
    chosen = dom.nearest_shelters(lat, lon, [_shelter(r) for r in rows], limit=limit, need=need)
    return [{**asdict(c), "distance_m": round(c.distance_m)} for c in chosen]


# --- incidents -------------------------------------------------------------------------------------


async def major_near(conn: AsyncConnection[Any], lat: float, lon: float) -> list[dom.Near]:
    """Major sources within the domain's radius (a box first, the domain measures)."""
    dlat = dom.MAJOR_RADIUS_M / 111_000 * 1.1
    dlon = dlat * 1.5  # ~32° N: a degree of longitude is ~0.85 of one of latitude
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_SOURCE_COLUMNS} FROM risk_source WHERE level = 'major'"
            " AND lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s",
            (lat - dlat, lat + dlat, lon - dlon, lon + dlon),
        )
        rows = await cur.fetchall()
    return dom.major_sources_near(lat, lon, [_source(r) for r in rows])


async def incident_context(state: CommandState, incident_id: str) -> tuple[str | None, dict[str, Any]]:
    """What an incident's detail shows from the registries: the major sources near it,
    the level its plan would take with them, and — for an evacuation — the nearest open
    shelters with room. Returns (exercise id, body)."""
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT incident_type, level, lat, lon, exercise_id FROM incident WHERE id = %s", (incident_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        itype, level, lat, lon, exercise_id = row
        near = await major_near(conn, lat, lon) if lat is not None and lon is not None else []
    evacuation = dom.evacuation_needed(itype)
    shelters = (
        await nearest_shelters(state, lat, lon) if evacuation and lat is not None and lon is not None else []
    )
    return exercise_id, {
        "incident_id": incident_id,
        "near_major_risk": [{**asdict(n), "distance_m": round(n.distance_m)} for n in near],
        "level": level,
        "suggested_level": dom.plan_level_with_risk(level, bool(near)),
        "evacuation": evacuation,
        "shelters": shelters,
    }


_SOURCES = _Registry("risk_source", "risk", upsert_source, _load_source, lambda row: source_body(row, now()))
_SHELTERS = _Registry("shelter", "shelter", upsert_shelter, _load_shelter, shelter_body)
