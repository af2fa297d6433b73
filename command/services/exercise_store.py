"""A drill's world as the live services read it (PostgreSQL queries, no decisions).

Dispatch and the reserve answer inside an exercise from the drill's own team statuses,
orders and stock cuts; they read them here rather than through the exercises service,
which runs the drills (command.services.exercises).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from command.domain.exercises import StockCut
from command.domain.rosters import TeamStatus
from wuwang.scope import Scope


async def team_overlay(conn: AsyncConnection[Any], scope: Scope) -> tuple[dict[str, TeamStatus], set[str]]:
    """The team statuses the drill set, and the teams with an exercise order in force
    (nothing live: the live roster is the truth there)."""
    exercise_id = scope.exercise_id
    if exercise_id is None:
        return {}, set()
    cur = await conn.execute(
        "SELECT team_id, status FROM exercise_team_state WHERE exercise_id = %s", (exercise_id,)
    )
    states = {team_id: TeamStatus(status) for team_id, status in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT team_id FROM dispatch_order WHERE exercise_id = %s AND status IN ('pending','sent','acked')",
        (exercise_id,),
    )
    return states, {r[0] for r in await cur.fetchall()}


async def stock_cuts(
    conn: AsyncConnection[Any], scope: Scope, items: Sequence[str] | None = None
) -> list[StockCut]:
    """What the drill's "warehouse runs short" injects took away (nothing live)."""
    exercise_id = scope.exercise_id
    if exercise_id is None:
        return []
    cur = await conn.execute(
        "SELECT warehouse_id, item_code, quantity FROM exercise_stock_cut WHERE exercise_id = %s"
        " AND (%s::text[] IS NULL OR item_code = ANY(%s::text[]))",
        (exercise_id, list(items) if items is not None else None, list(items) if items is not None else None),
    )
    return [StockCut(w, i, int(q)) for w, i, q in await cur.fetchall()]
