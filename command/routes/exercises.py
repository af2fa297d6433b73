"""/exercises: drills (演练) — register, read, steer, inject into, purge.

Planners, commanders and admins manage exercises; operators may read them; field users
get 403 (audited). An exercise's incidents, orders and stock holds are reached through
the usual routes (/incidents, /kpis?exercise_id=…), where planners see exercises only.
After-action reports (/exercises/{id}/report*) are command/routes/reports.py.
See docs/command-api-exercises.md for every shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from command.deps import State, requires
from command.domain.exercises import ExerciseConflict, ExerciseError
from command.domain.incidents import DomainError, Forbidden, IllegalTransition, StaleVersion
from command.domain.policy import Action
from command.domain.vocabulary import ResponseLevel
from command.inputs import FROM_TEXT, ApiIn, Latitude, Longitude
from command.routes.incidents import IncidentOut
from command.security import Principal
from command.services import exercises as service
from command.services.incident_store import NotFound, incident_body
from wuwang.exercises import MAX_SPEED, MIN_SPEED, ControlAction, ExerciseKind, ExerciseStatus

router = APIRouter(prefix="/exercises", tags=["exercises"])

_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # wuwang.exercises.EXERCISE_ID_RE
ExerciseId = Annotated[str, Path(min_length=1, max_length=64, pattern=_ID_PATTERN)]
NewId = Annotated[str, Field(min_length=1, max_length=64, pattern=_ID_PATTERN)]
Speed = Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, description="times real time (×1–×100)")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not do this (audited)"},
    404: {
        "description": "no such exercise (or, for an escalate inject, no incident of it joined that message)"
    },
    409: {"description": "the exercise's status does not allow it (over, or still running for a purge)"},
    422: {"description": "invalid request (the reason says which)"},
}

Reader = Annotated[Principal, Depends(requires(Action.EXERCISE_READ))]
Creator = Annotated[Principal, Depends(requires(Action.EXERCISE_CREATE))]
Controller = Annotated[Principal, Depends(requires(Action.EXERCISE_CONTROL))]
Injector = Annotated[Principal, Depends(requires(Action.EXERCISE_INJECT))]
Purger = Annotated[Principal, Depends(requires(Action.EXERCISE_PURGE))]


# --- shapes -----------------------------------------------------------------------------------


class ExerciseOut(BaseModel):
    """An exercise (docs/command-api-exercises.md lists every field)."""

    model_config = {"extra": "allow"}

    id: str
    name: str
    kind: str
    source: str
    status: str
    speed: float
    scenario: str | None
    replay: dict[str, Any] | None
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    sim_start: str | None
    sim_end: str | None
    sim_position: str | None
    stats: dict[str, Any]


class TeamStateOut(BaseModel):
    team_id: str
    status: str
    changed_at: str


class StockCutOut(BaseModel):
    warehouse_id: str
    item_code: str
    quantity: int
    at: str


class ExerciseDetail(ExerciseOut):
    teams: list[TeamStateOut] = Field(description="team statuses inside the drill (exercise_team_state)")
    stock_cuts: list[StockCutOut] = Field(description="stock the drill treats as gone (exercise_stock_cut)")
    counts: dict[str, int] = Field(description="incidents, open_incidents, alarms, orders, grid_cases")


class _New(ApiIn):
    id: NewId | None = Field(default=None, description="default EX-<yyyymmdd>-<HHMM>-<kind>-<hex>")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    speed: Speed = 1.0


class NewScenario(_New):
    kind: Literal["scenario"]
    scenario: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        description="a plain file name in simulators/scenarios/ (it must exist)",
    )


class Point(ApiIn):
    lat: Latitude
    lon: Longitude


class NewReplay(_New):
    """A recorded window (``start`` and ``end``) or an imported dataset (``dataset_id``,
    optionally narrowed by ``start``/``end``)."""

    kind: Literal["replay"]
    start: Annotated[AwareDatetime | None, FROM_TEXT] = None
    end: Annotated[AwareDatetime | None, FROM_TEXT] = None
    dataset_id: NewId | None = Field(default=None, description="an exercise of kind import")
    system_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="datasets: the 110 system's source id"
    )
    relocate_to: Point | None = Field(
        default=None, description="datasets: move the calls so that their centre lies here"
    )

    @model_validator(mode="after")
    def _window_or_dataset(self) -> NewReplay:
        if self.dataset_id is None and (self.start is None or self.end is None):
            raise ValueError("a replay needs start and end (a recorded window) or dataset_id")
        return self


NewExerciseBody = Annotated[NewScenario | NewReplay, Field(discriminator="kind")]


class ControlRequest(ApiIn):
    action: Annotated[ControlAction, FROM_TEXT]
    value: float | None = Field(
        default=None, description="seek: exercise seconds (≥ 0); speed: 1–100; none for play, pause, stop"
    )


class ControlOut(BaseModel):
    exercise_id: str
    stream: str = Field(description="the Redis stream the runner reads")
    entry_id: str
    action: str
    value: float | None
    by: str
    at: str
    status: str = Field(description="the exercise's status when the command was sent")


class WarehouseShort(ApiIn):
    kind: Literal["warehouse_short"]
    warehouse_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    item_code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    quantity: int = Field(gt=0, le=10_000_000, description="units the warehouse is short of, in the drill")


class Escalate(ApiIn):
    kind: Literal["escalate"]
    msg_id: str = Field(
        min_length=1, max_length=64, description="the id of a message this exercise published"
    )
    level: int = Field(ge=1, le=4, description="1 = I (特别重大) … 4 = IV (一般)")
    reason: str = Field(min_length=1, max_length=1000)


InjectBody = Annotated[WarehouseShort | Escalate, Field(discriminator="kind")]


class InjectOut(BaseModel):
    model_config = {"extra": "allow"}

    kind: str
    exercise_id: str
    at: str
    incident: IncidentOut | None = Field(default=None, description="escalate: the incident after the inject")


class PurgeOut(BaseModel):
    exercise: ExerciseOut
    deleted: dict[str, int] = Field(description="rows deleted per table")


def _error(exc: ExerciseError | DomainError | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, Forbidden):
        return HTTPException(status.HTTP_403_FORBIDDEN, exc.reason)
    if isinstance(exc, ExerciseConflict | IllegalTransition | StaleVersion):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


# --- routes -----------------------------------------------------------------------------------------


@router.get("", response_model=list[ExerciseOut], responses={401: ERRORS[401], 403: ERRORS[403]})
async def list_exercises(
    state: State,
    who: Reader,
    status_: Annotated[ExerciseStatus | None, Query(alias="status")] = None,
    kind: ExerciseKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Exercises, newest first (purged ones too: the record of what ran)."""
    return await service.list_exercises(
        state, status=str(status_) if status_ else None, kind=str(kind) if kind else None, limit=limit
    )


@router.post("", response_model=ExerciseOut, status_code=201, responses=ERRORS)
async def create_exercise(body: NewExerciseBody, state: State, who: Creator) -> dict[str, Any]:
    """Register a ``planned`` exercise; the exercise runner picks it up."""
    new = service.NewExercise(
        kind=ExerciseKind(body.kind),
        speed=body.speed,
        exercise_id=body.id,
        name=body.name,
        scenario=body.scenario if isinstance(body, NewScenario) else None,
        start=body.start if isinstance(body, NewReplay) else None,
        end=body.end if isinstance(body, NewReplay) else None,
        dataset_id=body.dataset_id if isinstance(body, NewReplay) else None,
        options=(
            {
                "system_id": body.system_id,
                "relocate_to": body.relocate_to.model_dump() if body.relocate_to else None,
            }
            if isinstance(body, NewReplay)
            else None
        ),
    )
    try:
        return await service.create(state, who, new)
    except (ExerciseError, NotFound) as exc:
        raise _error(exc) from None


@router.get("/{exercise_id}", response_model=ExerciseDetail, responses=ERRORS)
async def get_exercise(exercise_id: ExerciseId, state: State, who: Reader) -> dict[str, Any]:
    """One exercise with status, position, stats, the drill's team statuses and stock cuts."""
    try:
        return await service.exercise_detail(state, exercise_id)
    except NotFound as exc:
        raise _error(exc) from None


@router.post("/{exercise_id}/control", response_model=ControlOut, status_code=202, responses=ERRORS)
async def control_exercise(
    exercise_id: ExerciseId, body: ControlRequest, state: State, who: Controller
) -> dict[str, Any]:
    """play, pause, seek (exercise seconds), speed (1–100), stop: appended to the runner's
    control stream; the runner applies it and writes status and position back."""
    try:
        return await service.control(state, who, exercise_id, body.action, body.value)
    except (ExerciseError, NotFound) as exc:
        raise _error(exc) from None


@router.post("/{exercise_id}/injects", response_model=InjectOut, responses=ERRORS)
async def inject(exercise_id: ExerciseId, body: InjectBody, state: State, who: Injector) -> dict[str, Any]:
    """What a scenario does over HTTP: a warehouse runs short (virtual), or the incident
    a message of this exercise joined changes level (an event marked 演练注入)."""
    try:
        if isinstance(body, WarehouseShort):
            return await service.inject_warehouse_short(
                state, who, exercise_id, body.warehouse_id, body.item_code, body.quantity
            )
        done = await service.inject_escalate(
            state, who, exercise_id, body.msg_id, ResponseLevel(body.level), body.reason
        )
    except (ExerciseError, DomainError, NotFound) as exc:
        raise _error(exc) from None
    return {**done.detail, "incident": incident_body(done.incident)}


@router.delete("/{exercise_id}", response_model=PurgeOut, responses=ERRORS)
async def purge_exercise(exercise_id: ExerciseId, state: State, who: Purger) -> dict[str, Any]:
    """Purge: every row the exercise produced goes, in one transaction; the exercise stays
    as ``purged`` and the audit log keeps an ``exercise.purge`` record."""
    try:
        return await service.purge(state, who, exercise_id)
    except (ExerciseError, NotFound) as exc:
        raise _error(exc) from None
