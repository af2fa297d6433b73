"""/planned-events: the registry of planned events (大型活动登记) — a concert, a match, a
festival with its place (centre and radius) and time. While one runs, triage promotes
alerts within its radius (``risk_planned_event``, docs/triage.md §9).

Who may do what is the domain's one rule (command/domain/planned_events.py): operators,
commanders and admins enter and cancel events, planners only drill events (with
``exercise_id``), everyone but field users reads. Refusals are audited (403); bad input
is 422 with the reason; cancelling twice is 409. See docs/command-api-inbox.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import AwareDatetime, BaseModel, Field

from command.deps import Caller, State, forbid, gate
from command.domain import planned_events as pe
from command.domain.incidents import DomainError, Forbidden, IllegalTransition
from command.domain.policy import Action
from command.inputs import FROM_TEXT, ClosedApiIn, ExerciseIdText, Latitude, Longitude
from command.routes.scope import ScopeQuery
from command.security import Principal
from command.services import inbox as inbox_service
from command.services import planned_events as service
from command.services.incident_store import NotFound

router = APIRouter(prefix="/planned-events", tags=["planned events"])

EventId = Annotated[str, Path(pattern=r"^PE-[0-9A-Za-z-]{4,40}$", description="a planned event's id, PE-…")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not (field users never; planners only drill events)"},
    404: {"description": "no such planned event"},
    409: {"description": "the event was cancelled already"},
    422: {"description": "invalid event (the reason says which)"},
}


class NewEvent(ClosedApiIn):
    name: Annotated[str, Field(min_length=1, max_length=pe.MAX_NAME, description="活动名称")]
    place: Annotated[str, Field(max_length=pe.MAX_PLACE, description="地点（地址）")] = ""
    lat: Latitude
    lon: Longitude
    radius_m: Annotated[float, Field(ge=pe.MIN_RADIUS_M, le=pe.MAX_RADIUS_M, description="范围半径（米）")]
    starts_at: Annotated[AwareDatetime, FROM_TEXT]
    ends_at: Annotated[AwareDatetime, FROM_TEXT]
    exercise_id: ExerciseIdText | None = Field(
        default=None, description="a drill's event (planners: required)"
    )


class Cancel(ClosedApiIn):
    reason: Annotated[str, Field(min_length=1, max_length=pe.MAX_REASON, description="why it is cancelled")]


class EventOut(BaseModel):
    event_id: str
    name: str
    place: str
    lat: float
    lon: float
    radius_m: float
    starts_at: str
    ends_at: str
    exercise_id: str | None
    created_by: str
    created_at: str
    state: Literal["scheduled", "cancelled"]
    phase: Literal["upcoming", "running", "ended", "cancelled"]
    cancelled_by: str | None
    cancelled_at: str | None
    cancel_reason: str | None


def _http(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, IllegalTransition):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


async def _authorise(
    state: State,
    who: Principal,
    action: pe.Action,
    exercise_id: str | None,
    event_id: str | None = None,
    *,
    audited_as: pe.Action | None = None,
) -> None:
    try:
        pe.authorise(inbox_service.actor_of(who), action, exercise_id)
    except Forbidden as exc:
        raise await forbid(
            state,
            who,
            f"planned_event.{audited_as or action}",
            exc.reason,
            object_type="planned_event",
            object_id=event_id,
        ) from None


@router.get(
    "",
    response_model=list[EventOut],
    responses={401: ERRORS[401], 403: ERRORS[403]},
    dependencies=gate(Action.PLANNED_EVENT_READ),
)
async def list_events(
    state: State,
    who: Caller,
    scope: ScopeQuery,
    phase: Annotated[
        service.ListPhase, Query(description="current: scheduled and not over; all: cancelled and past too")
    ] = "current",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Live events (or one drill's, with ``exercise_id``), the soonest first."""
    await _authorise(state, who, "read", scope.exercise_id)
    now = inbox_service.now()
    async with state.pool.connection() as conn:
        events = await service.list_events(conn, now=now, scope=scope, phase=phase, limit=limit)
    return [service.event_body(e, now) for e in events]


@router.post(
    "",
    response_model=EventOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.PLANNED_EVENT_CREATE),
)
async def create_event(body: NewEvent, state: State, who: Caller) -> dict[str, Any]:
    """登记: a new planned event; from now on a risk context for triage while it runs."""
    await _authorise(state, who, "create", body.exercise_id)
    now = inbox_service.now()
    try:
        event = pe.register(
            event_id=service.new_event_id(now),
            name=body.name,
            place=body.place,
            lat=body.lat,
            lon=body.lon,
            radius_m=body.radius_m,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            exercise_id=body.exercise_id,
            actor=inbox_service.actor_of(who),
            at=now,
        )
    except DomainError as exc:
        raise _http(exc) from None
    async with state.pool.connection() as conn, conn.transaction():
        await service.insert(conn, event, who)
    return service.event_body(event, now)


@router.post(
    "/{event_id}/cancel",
    response_model=EventOut,
    responses=ERRORS,
    dependencies=gate(Action.PLANNED_EVENT_CANCEL, on=("planned_event", "event_id")),
)
async def cancel_event(event_id: EventId, body: Cancel, state: State, who: Caller) -> dict[str, Any]:
    """取消: the event is kept (who, when, why) but no longer promotes alerts."""
    now: datetime = inbox_service.now()
    await _authorise(state, who, "read", None, event_id, audited_as="cancel")  # field users: 403, not 404
    async with state.pool.connection() as conn, conn.transaction():
        try:
            event = await service.get_for_update(conn, event_id)
        except NotFound as exc:
            raise _http(exc) from None
        await _authorise(state, who, "cancel", event.exercise_id, event_id)
        try:
            after = pe.cancel(event, actor=inbox_service.actor_of(who), at=now, reason=body.reason)
        except DomainError as exc:
            raise _http(exc) from None
        await service.save_cancelled(conn, after, who)
    return service.event_body(after, now)
