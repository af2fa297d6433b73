"""KPIs at the edge: replay the incident record of a window and hand it to
:func:`command.domain.kpi.compute_kpis`; add the live counts the wall shows beside them
(teams available, reserve alerts). Definitions: docs/incidents.md §6."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from command.domain.incidents import Incident, event_from_record, replay
from command.domain.kpi import KpiReport, compute_kpis
from command.services import reserve
from command.state import CommandState
from wuwang import i18n
from wuwang.scope import Scope


async def _histories(conn: AsyncConnection[Any], incident_ids: Sequence[str]) -> list[Incident]:
    if not incident_ids:
        return []
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT incident_id, seq, kind, at, actor, actor_role, reason, data FROM incident_event"
            " WHERE incident_id = ANY(%s) ORDER BY incident_id, seq",
            (list(incident_ids),),
        )
        rows = await cur.fetchall()
    return [
        replay(event_from_record(r) for r in events)
        for _, events in groupby(rows, key=lambda r: r["incident_id"])
    ]


def _report(report: KpiReport) -> dict[str, Any]:
    cp, scene, closure = report.call_processing, report.time_to_on_scene, report.closure
    return {
        "window_start": report.window_start.isoformat(),
        "window_end": report.window_end.isoformat(),
        "exercise_id": report.exercise_id,
        "incidents": report.incidents,
        "call_processing": {
            "count": cp.count,
            "p50_s": cp.p50_s,
            "p90_s": cp.p90_s,
            "within_target": cp.within_target,
            "share_within_target": cp.share_within_target,
            "target_s": cp.target_s,
            "target_share": cp.target_share,
            "met": cp.met,
        },
        "time_to_on_scene": {"count": scene.count, "p50_s": scene.p50_s, "p90_s": scene.p90_s},
        "closure": {"closed": closure.closed, "counted": closure.counted, "rate": closure.rate},
        "open_by_level": [
            {
                "level": int(level),
                "name": level.name,
                "label_zh": i18n.text("zh_CN", f"level.{level.value}"),
                "colour": level.colour,
                "open": count,
            }
            for level, count in sorted(report.open_by_level.items())
        ],
    }


async def kpis(
    state: CommandState, *, window_hours: float, scope: Scope, now: datetime | None = None
) -> dict[str, Any]:
    """KPIs over the incidents opened in the last ``window_hours`` (live ones, or one
    exercise's), open incidents by level (every open one, whatever its age), the teams
    available now, and the reserve alerts."""
    end = now or datetime.now(UTC)
    start = end - timedelta(hours=window_hours)
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT id FROM incident WHERE {}"
                " AND ((opened_at >= %(start)s AND opened_at < %(end)s) OR is_open) ORDER BY id"
            ).format(scope.where(name="ex")),
            {"start": start, "end": end, **scope.named("ex")},
        )
        ids = [r[0] for r in await cur.fetchall()]
        incidents = await _histories(conn, ids)
        cur = await conn.execute("SELECT count(*) FILTER (WHERE status = 'available'), count(*) FROM team")
        row = await cur.fetchone()
        assert row is not None
        teams_available, teams_total = int(row[0]), int(row[1])
    report = compute_kpis(incidents, window_start=start, window_end=end, exercise_id=scope.exercise_id)
    alerts = await reserve.alerts(state)
    return {
        **_report(report),
        "window_hours": window_hours,
        "teams": {"available": teams_available, "total": teams_total},
        "reserve_alerts": alerts["counts"],
    }
