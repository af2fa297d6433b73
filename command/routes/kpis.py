"""/kpis: call-processing time, time to on scene, closure rate, open incidents by level,
teams available and reserve alerts (definitions: docs/incidents.md §6).

Operators and commanders see live KPIs; planners must name an exercise and see only
its incidents; admins see live KPIs, or an exercise's when they name one; field users
get 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from command.deps import State, forbid, requires
from command.domain.policy import Action, allowed
from command.routes.scope import ScopeQuery
from command.security import Principal
from command.services import kpis as service

router = APIRouter(tags=["kpis"])

Reader = Annotated[Principal, Depends(requires(Action.KPI_READ))]


@router.get(
    "/kpis",
    responses={
        401: {"description": "not authenticated"},
        403: {
            "description": "field users; planners without exercise_id; "
            "operators and commanders asking for an exercise"
        },
    },
)
async def kpis(
    state: State,
    who: Reader,
    scope: ScopeQuery,
    window_hours: Annotated[
        float, Query(ge=0.01, le=24 * 366, description="incidents opened in the last N hours (at least 36 s)")
    ] = 24,
) -> dict[str, Any]:
    if scope.is_live and not allowed(who.role, Action.KPI_READ, drill=False):
        raise await forbid(state, who, "kpi.read", "planners see exercise KPIs only: pass exercise_id")
    if scope.is_drill and not allowed(who.role, Action.KPI_READ, drill=True):
        raise await forbid(
            state,
            who,
            "kpi.read",
            f"{who.role} sees live KPIs only, not exercise {scope.exercise_id}",
            object_type="exercise",
            object_id=scope.exercise_id,
        )
    return await service.kpis(state, window_hours=window_hours, scope=scope)
