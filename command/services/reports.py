"""After-action reports (复盘报告) at the edge: load what an exercise or one incident left in
PostgreSQL and hand it to :func:`command.domain.after_action.build_report`.

* **Exercise scope** — the row in ``exercise`` (name, status, when it ran, its stats such
  as timing drift), every incident whose events carry the exercise id, and the GPS
  points the exercise's dispatched teams sent inside the exercise (``team_position``
  rows with that exercise id).
* **Incident scope** — one incident (live or exercise) with its events, and its teams'
  points from dispatch to release (or the incident's end, or now), from the same world
  as the incident: live positions for a live incident, the exercise's for an exercise one.

Everything is recomputed from the event record on each request; nothing is cached.
The map's background (district boundaries, the grid cells of the incidents) comes from
the registries, WGS-84 as stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from command.domain import after_action as aa
from command.domain.incidents import Event, Incident, event_from_record, replay
from command.domain.plans import current_activation
from command.services.incident_store import NotFound
from command.state import CommandState
from wuwang.scope import Scope

#: At most this many GPS points per team are drawn (evenly thinned beyond it), so a
#: long exercise still gives a report that opens quickly on a duty officer's machine.
MAX_TRACK_POINTS = 2000


@dataclass(frozen=True, slots=True)
class MapLayer:
    """Background shapes for the report's map: GeoJSON geometries, WGS-84."""

    districts: tuple[tuple[str, dict[str, Any]], ...]  # (name, geometry)
    cells: tuple[tuple[str, dict[str, Any]], ...]  # (grid cell id, geometry)


@dataclass(frozen=True, slots=True)
class LoadedReport:
    report: aa.AfterActionReport
    map: MapLayer
    exercise: dict[str, Any] | None  # the exercise row (JSON-able) for an exercise scope
    #: Names of the codes the report mentions, (zh, en): "plan:<id>", "step:<plan>/<item>",
    #: "item:<code>", "unit:<item code>" — so that no code is shown where words exist.
    words: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def words_of(state: CommandState) -> dict[str, tuple[str, str]]:
    """The plan library's titles, checklist steps, supply items and their units."""
    lib = state.plans
    found: dict[str, tuple[str, str]] = {}
    for plan in lib:
        found[f"plan:{plan.id}"] = (plan.title_zh, plan.title_en)
        for step in plan.checklist:
            found[f"step:{plan.id}/{step.id}"] = (step.zh, step.en)
    for code, item in lib.items.items():
        found[f"item:{code}"] = (item.name_zh, item.name_en)
        found[f"unit:{code}"] = (item.unit_zh, item.unit)
    return found


def _now() -> datetime:
    return datetime.now(UTC)


async def _events_of(
    conn: AsyncConnection[Any], where: sql.Composable, params: Sequence[Any]
) -> list[list[Event]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT incident_id, seq, kind, at, actor, actor_role, reason, data FROM incident_event"
                " WHERE {} ORDER BY incident_id, seq"
            ).format(where),
            params,
        )
        rows = await cur.fetchall()
    return [[event_from_record(r) for r in grp] for _, grp in groupby(rows, key=lambda r: r["incident_id"])]


async def _plan_outcome(
    state: CommandState, conn: AsyncConnection[Any], incident: Incident
) -> aa.PlanOutcome | None:
    """The plan at the incident's final level with its ticks (the console's own
    :func:`command.domain.plans.current_activation`), the distinct teams ever sent by type, and the
    supplies ever held or issued for it."""
    ap = incident.active_plan
    if ap is None:
        return None
    plan = state.plans.plans.get(ap.plan_id)
    if plan is None:  # the plan left the library since: no checklist to count against
        return None
    activation, _ = current_activation(plan, incident)
    team_ids = sorted({t.team_id for t in incident.teams})
    by_type: dict[str, int] = {}
    if team_ids:
        cur = await conn.execute(
            "SELECT team_type, count(*) FROM team WHERE id = ANY(%s) GROUP BY team_type", (team_ids,)
        )
        by_type = {t: int(n) for t, n in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT l.item_code, sum(a.reserved + a.issued) FROM stock_allocation a"
        " JOIN stock_lot l ON l.id = a.lot_id WHERE a.incident_id = %s GROUP BY l.item_code",
        (incident.incident_id,),
    )
    supplies = {code: int(n) for code, n in await cur.fetchall()}
    return aa.PlanOutcome(plan.id, plan.title_zh, plan.title_en, activation, by_type, supplies)


async def _records(
    state: CommandState, conn: AsyncConnection[Any], histories: Iterable[Sequence[Event]]
) -> list[aa.IncidentRecord]:
    out = []
    for events in histories:
        incident = replay(events)
        out.append(aa.IncidentRecord(incident, tuple(events), await _plan_outcome(state, conn, incident)))
    return out


def _thin(points: list[aa.TrackPoint]) -> list[aa.TrackPoint]:
    if len(points) <= MAX_TRACK_POINTS:
        return points
    step = len(points) / MAX_TRACK_POINTS
    kept = [points[int(i * step)] for i in range(MAX_TRACK_POINTS - 1)]
    return [*kept, points[-1]]  # the last known position always stays


async def _tracks(
    conn: AsyncConnection[Any], records: Sequence[aa.IncidentRecord], scope: Scope, now: datetime
) -> dict[str, list[aa.TrackPoint]]:
    """Each dispatched team's points while it was on an incident of the report: from
    its dispatch to its release (or the incident's end, or now), from the report's own
    world (live rows for live, the exercise's rows for an exercise)."""
    windows: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in records:
        inc = r.incident
        for t in inc.teams:
            end = t.released_at or inc.ended_at or now
            windows.setdefault(t.team_id, []).append((t.dispatched_at, end))
    tracks: dict[str, list[aa.TrackPoint]] = {}
    for team_id, spans in sorted(windows.items()):
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        cur = await conn.execute(
            sql.SQL(
                "SELECT ts, lat, lon FROM team_position WHERE team_id = %s AND {}"
                " AND ts BETWEEN %s AND %s ORDER BY ts"
            ).format(scope.where()),
            (team_id, *scope.params, start, end),
        )
        points = [
            aa.TrackPoint(ts, float(lat), float(lon))
            for ts, lat, lon in await cur.fetchall()
            if any(s <= ts <= e for s, e in spans)
        ]
        tracks[team_id] = _thin(points)
    return tracks


async def _map_layer(conn: AsyncConnection[Any], records: Sequence[aa.IncidentRecord]) -> MapLayer:
    cur = await conn.execute("SELECT name, boundary FROM district ORDER BY adcode")
    districts = tuple(
        (name, geom)
        for name, geom in await cur.fetchall()
        if isinstance(geom, dict) and geom.get("coordinates")
    )
    cell_ids = sorted({r.incident.grid_cell_id for r in records if r.incident.grid_cell_id})
    cells: tuple[tuple[str, dict[str, Any]], ...] = ()
    if cell_ids:
        cur = await conn.execute(
            "SELECT id, boundary FROM grid_cell WHERE id = ANY(%s) ORDER BY id", (cell_ids,)
        )
        cells = tuple(
            (cid, geom)
            for cid, geom in await cur.fetchall()
            if isinstance(geom, dict) and geom.get("coordinates")
        )
    return MapLayer(districts, cells)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def exercise_report(
    state: CommandState, exercise_id: str, *, now: datetime | None = None
) -> LoadedReport:
    """The report of one exercise; :class:`NotFound` when there is no such exercise."""
    at = now or _now()
    async with state.pool.connection() as conn:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT id, name, kind, source, status, speed, created_by, created_at, started_at,"
                " finished_at, sim_start, sim_end, sim_position, stats FROM exercise WHERE id = %s",
                (exercise_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no exercise {exercise_id}")
        scope = Scope.drill(exercise_id)
        histories = await _events_of(conn, scope.where(), scope.params)
        records = await _records(state, conn, histories)
        tracks = await _tracks(conn, records, scope, at)
        layer = await _map_layer(conn, records)
    exercise = {k: _iso(v) for k, v in row.items()}
    # The run's own wall-clock span widens the report's (an exercise with a quiet end).
    span = (row["started_at"], row["finished_at"])
    report = aa.build_report(
        kind="exercise",
        scope_id=exercise_id,
        name=str(row["name"]),
        exercise_id=exercise_id,
        records=records,
        tracks=tracks,
        span=span,
    )
    return LoadedReport(report, layer, exercise, words_of(state))


async def incident_scope(state: CommandState, incident_id: str) -> Scope:
    """The incident's scope (live, or its drill); :class:`NotFound` when there is no
    such incident. Read before the whole report, so a refusal costs one small query."""
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT exercise_id FROM incident_event WHERE incident_id = %s AND seq = 1", (incident_id,)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return Scope.of(row[0])


async def incident_report(
    state: CommandState, incident_id: str, *, now: datetime | None = None
) -> LoadedReport:
    """The report of one incident (live or exercise); :class:`NotFound` when unknown."""
    at = now or _now()
    async with state.pool.connection() as conn:
        histories = await _events_of(conn, sql.SQL("incident_id = %s"), (incident_id,))
        if not histories:
            raise NotFound(f"no incident {incident_id}")
        records = await _records(state, conn, histories)
        incident = records[0].incident
        tracks = await _tracks(conn, records, incident.scope, at)
        layer = await _map_layer(conn, records)
    report = aa.build_report(
        kind="incident",
        scope_id=incident_id,
        name=incident.title,
        exercise_id=incident.exercise_id,
        records=records,
        tracks=tracks,
    )
    return LoadedReport(report, layer, None, words_of(state))
