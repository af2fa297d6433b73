"""/plans and an incident's plan: the library, activation, the checklist, the shortfall.

Reading plans: every role but field. Activating and ticking: operators, commanders and
admins; planners only on exercise incidents (the incident domain refuses them on live
ones, with an audit record). See docs/command-api-plans-reserve.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, Field

from command.deps import State, forbid, requires
from command.domain.incidents import DomainError
from command.domain.policy import Action
from command.inputs import ApiIn
from command.routes.incidents import ERRORS, IncidentId, domain_error
from command.security import Principal
from command.services import incidents as incident_service
from command.services import plans as service
from command.services.incident_store import NotFound, incident_body

router = APIRouter(tags=["plans"])

PlanId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ItemId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]

Reader = Annotated[Principal, Depends(requires(Action.PLAN_READ))]
Activator = Annotated[Principal, Depends(requires(Action.PLAN_ACTIVATE))]
Ticker = Annotated[Principal, Depends(requires(Action.PLAN_CHECKLIST_TICK))]

PLAN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"description": "no such incident, plan or checklist item"},
    409: {
        "description": "stale expected_version, or the item is already (un)ticked / the plan already active"
    },
}


class PlanSummary(BaseModel):
    id: str
    version: int | str
    title_zh: str
    title_en: str
    covers: list[str]
    basis: list[str]
    arrival_target_min: int | None = Field(
        default=None, description="first alarm → first team on scene the plan aims at (minutes)"
    )


class ActivatePlan(ApiIn):
    plan_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    expected_version: int = Field(ge=1, description="the incident version the decision was made on")
    force: bool = Field(
        default=False, description="activate a plan that does not cover the incident's type (reason required)"
    )
    reason: str | None = Field(default=None, max_length=1000)


class TickItem(ApiIn):
    expected_version: int = Field(ge=1)
    done: bool = Field(default=True, description="false un-ticks an item ticked by mistake")
    reason: str | None = Field(default=None, max_length=1000)


class ShortfallLine(BaseModel):
    kind: str
    key: str
    name: str
    name_en: str | None = None
    required: int
    have: int
    missing: int
    unit: str
    unit_zh: str | None = None
    explanation: str


class IncidentPlan(BaseModel):
    """The incident's plan at its current level, with what is still missing."""

    model_config = {"extra": "allow"}

    incident_id: str
    incident_version: int
    incident_type: str
    level: int
    active: bool
    covering_plans: list[str]
    activation: dict[str, Any] | None
    shortfall: list[ShortfallLine]


def _error(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, service.Conflict):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return domain_error(exc)


@router.get("/plans", response_model=list[PlanSummary], responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_plans(state: State, who: Reader) -> list[dict[str, Any]]:
    """The plan library (loaded and validated at start-up)."""
    return [service.plan_summary(p) for p in state.plans]


@router.get(
    "/plans/{plan_id}", responses={401: ERRORS[401], 403: ERRORS[403], 404: {"description": "no such plan"}}
)
async def get_plan(plan_id: PlanId, state: State, who: Reader) -> dict[str, Any]:
    """One plan in full: roles and holders per level, triggers, requirements, checklist."""
    try:
        return service.plan_detail(service.get_plan(state, plan_id))
    except NotFound as exc:
        raise _error(exc) from None


@router.get("/incidents/{incident_id}/plan", response_model=IncidentPlan, responses=PLAN_ERRORS)
async def incident_plan(incident_id: IncidentId, state: State, who: Reader) -> dict[str, Any]:
    """The active plan at the incident's current level (re-evaluated after a level
    change), the checklist with its ticks, the requirements and the shortfall."""
    try:
        incident = await service.load_incident(state, incident_id)
    except NotFound as exc:
        raise _error(exc) from None
    if not incident_service.visible_incident(who, incident_body(incident)):
        raise await forbid(
            state,
            who,
            "plan.read",
            f"{who.role} may not see incident {incident_id}",
            object_type="incident",
            object_id=incident_id,
        )
    return await service.plan_view(state, incident)


@router.post("/incidents/{incident_id}/plan", response_model=IncidentPlan, responses=PLAN_ERRORS)
async def activate_plan(
    incident_id: IncidentId, body: ActivatePlan, state: State, who: Activator
) -> dict[str, Any]:
    """启动预案: activate a plan at the incident's current level."""
    try:
        incident = await service.activate_plan(
            state, who, incident_id, body.plan_id, body.expected_version, force=body.force, reason=body.reason
        )
    except (DomainError, NotFound) as exc:
        raise _error(exc) from None
    return await service.plan_view(state, incident)


@router.post(
    "/incidents/{incident_id}/checklist/{item_id}", response_model=IncidentPlan, responses=PLAN_ERRORS
)
async def tick_checklist(
    incident_id: IncidentId, item_id: ItemId, body: TickItem, state: State, who: Ticker
) -> dict[str, Any]:
    """Tick (or un-tick) a checklist item of the active plan."""
    try:
        incident = await service.tick_item(
            state, who, incident_id, item_id, body.expected_version, done=body.done, reason=body.reason
        )
    except (DomainError, NotFound) as exc:
        raise _error(exc) from None
    return await service.plan_view(state, incident)
