"""Dispatch (派遣) on an incident: recommendation, orders, release.

POST /incidents/{id}/dispatch is one transaction; a second order in force for the same
team — from this incident or any other — is refused by the database with 409 "team
already dispatched". Operators, commanders and admins dispatch; planners only on
exercise incidents; field users never (403, audited).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from command.deps import ON_INCIDENT, Caller, State, gate
from command.domain.incidents import DomainError
from command.domain.policy import Action
from command.inputs import ApiIn
from command.routes.incidents import IncidentOut, domain_error
from command.services import dispatch as service
from command.services.incident_store import NotFound, incident_body

router = APIRouter(prefix="/incidents", tags=["dispatch"])

IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not dispatch on this incident"},
    404: {"description": "no such incident or team"},
    409: {"description": "team already dispatched, team off duty, or stale expected_version"},
    422: {"description": "illegal transition or invalid command (the reason says which)"},
}


class DispatchRequest(ApiIn):
    team_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    expected_version: int = Field(ge=1, description="the incident version the decision was made on")
    reason: str | None = Field(default=None, max_length=1000)


class ReleaseRequest(ApiIn):
    team_id: str = Field(min_length=1, max_length=64)
    expected_version: int = Field(ge=1)
    reason: str | None = Field(default=None, max_length=1000, description="required (the domain says why)")


class OrderOut(BaseModel):
    """A dispatch order and what became of it."""

    order_id: str
    incident_id: str
    team_id: str
    team_name: str
    team_type: str
    exercise_id: str | None
    status: str = Field(description="pending, sent, acked, refused or released")
    in_force: bool
    created_at: str | None
    created_by: str
    sent_at: str | None = Field(description="when the broker acknowledged the order (PUBACK)")
    acked_at: str | None = Field(description="when the team answered (or arrived)")
    released_at: str | None
    ack_overdue_at: str | None = Field(description="when the not-acknowledged alert was raised")
    ack_reason: str | None
    message: dict[str, Any] = Field(description="the order as published on teams/v1/<team_id>/dispatch")


class DispatchOut(BaseModel):
    order: OrderOut | None
    incident: IncidentOut


ReasonParams = dict[str, str | int | float]


class ReasonOut(BaseModel):
    """Why, as a code with parameters and as Chinese text (docs/reserve-and-rosters.md,
    "Reason codes"). Clients that speak another language render the code themselves."""

    code: str = Field(description="a stable reason code, e.g. team.skipped.busy, eta, warehouse.stock.covers")
    params: ReasonParams = Field(
        description="what the code's text needs; names ending in _s are seconds, status a team status,"
        " kind a warehouse kind"
    )
    text: str = Field(description="the reason in Chinese (zh-CN)")


class TeamCandidateOut(BaseModel):
    model_config = {"extra": "allow"}

    team_id: str
    name: str
    rank: int
    eta_s: float
    eta: str = Field(description="eta_s as a duration, in Chinese")
    distance_m: float = Field(description="great-circle, from the team's position (or its base)")
    route_m: float
    from_base: bool
    position_age_s: float | None
    on_shift_until: str | None
    reasons: list[str] = Field(description="the texts of reason_codes, in Chinese")
    reason_codes: list[ReasonOut]


class SkippedTeamOut(BaseModel):
    model_config = {"extra": "allow"}

    team_id: str
    name: str
    reason: str = Field(description="excluded, busy, off_duty, not_on_shift, no_position or stale_position")
    detail: str = Field(description="the reason's text, in Chinese")
    code: str = Field(description="team.skipped.<reason>")
    params: ReasonParams


class TeamNeedOut(BaseModel):
    model_config = {"extra": "allow"}

    type: str
    count: int
    assigned: int
    needed: int
    eligible: int
    short: int
    suggested: list[str]
    candidates: list[TeamCandidateOut]
    skipped: list[SkippedTeamOut]


class WarehouseCandidateOut(BaseModel):
    model_config = {"extra": "allow"}

    warehouse_id: str
    name: str | None
    kind: str
    rank: int
    available: int | None = Field(description="usable stock; null for production capacity")
    covers: bool
    eta_s: float
    eta: str = Field(description="eta_s as a duration, in Chinese")
    distance_m: float
    reasons: list[str] = Field(description="the texts of reason_codes, in Chinese")
    reason_codes: list[ReasonOut]


class SupplyPickOut(BaseModel):
    warehouse_id: str
    quantity: int
    eta_s: float


class SkippedWarehouseOut(BaseModel):
    model_config = {"extra": "allow"}

    warehouse_id: str
    reason: str = Field(description="why it cannot supply, in Chinese")
    code: str = Field(description="warehouse.skipped.<why>")
    params: ReasonParams


class SupplyNeedOut(BaseModel):
    model_config = {"extra": "allow"}

    item: str
    quantity: int
    unit: str | None
    held: int
    needed: int
    candidates: list[WarehouseCandidateOut]
    plan: list[SupplyPickOut]
    short: int
    skipped: list[SkippedWarehouseOut]


class Recommendations(BaseModel):
    """See docs/command-api-teams-dispatch.md, "Recommendation"."""

    model_config = {"extra": "allow"}

    incident_id: str
    version: int
    basis: dict[str, Any]
    config: dict[str, Any]
    teams: list[TeamNeedOut]
    supplies: list[SupplyNeedOut]


def _error(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, service.TeamBusy | service.TeamUnavailable):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return domain_error(exc)


@router.get(
    "/{incident_id}/recommendations",
    response_model=Recommendations,
    responses=ERRORS,
    dependencies=gate(Action.DISPATCH_RECOMMEND, on=ON_INCIDENT),
)
async def recommendations(incident_id: IncidentId, state: State, who: Caller) -> dict[str, Any]:
    """Teams for each requirement of the active plan at the incident's current level (or
    the type's default first response), ranked by ETA, with reasons; teams skipped, with
    why; warehouses for the plan's supplies."""
    try:
        return await service.recommendations(state, who, incident_id)
    except (DomainError, NotFound) as exc:
        raise _error(exc) from None


@router.post(
    "/{incident_id}/dispatch",
    response_model=DispatchOut,
    status_code=201,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_DISPATCH, on=ON_INCIDENT),
)
async def dispatch(incident_id: IncidentId, body: DispatchRequest, state: State, who: Caller) -> DispatchOut:
    """派遣: one order to one team, atomically (order, incident events, team status,
    outbox, audit). The order reaches the team over MQTT through the outbox."""
    try:
        result = await service.dispatch(
            state, who, incident_id, body.team_id, body.expected_version, body.reason
        )
    except (DomainError, NotFound) as exc:
        raise _error(exc) from None
    return DispatchOut(
        order=OrderOut.model_validate(result.order),
        incident=IncidentOut.model_validate(incident_body(result.incident)),
    )


@router.post(
    "/{incident_id}/release",
    response_model=DispatchOut,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_RELEASE_TEAM, on=ON_INCIDENT),
)
async def release(incident_id: IncidentId, body: ReleaseRequest, state: State, who: Caller) -> DispatchOut:
    """Recall a team on its way or release one on scene (reason required): its order is
    released, the team is available again and gets a release notice."""
    try:
        result = await service.release(
            state, who, incident_id, body.team_id, body.expected_version, body.reason
        )
    except (DomainError, NotFound) as exc:
        raise _error(exc) from None
    return DispatchOut(
        order=OrderOut.model_validate(result.order) if result.order else None,
        incident=IncidentOut.model_validate(incident_body(result.incident)),
    )


@router.get(
    "/{incident_id}/orders",
    response_model=list[OrderOut],
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_READ, on=ON_INCIDENT),
)
async def orders(incident_id: IncidentId, state: State, who: Caller) -> list[dict[str, Any]]:
    """Every order of the incident, oldest first, with delivery and acknowledgement."""
    try:
        return await service.list_orders(state, who, incident_id)
    except (DomainError, NotFound) as exc:
        raise _error(exc) from None
