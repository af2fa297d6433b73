"""/grid: the grid closed loop (网格化管理) — 发现 → 立案 → 派遣 → 处置 → 核查 → 结案.

Every step names the version it was decided on (``expected_version``, the number of
steps so far); a stale one gets 409. A step the loop does not allow — wrong stage, no
assignee for a dispatch, no reason for a rejection, and verification by someone who
handled the case — gets 422 with the domain's reason. What a role may not do gets 403
and an audit record. See docs/command-api-grid.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field

from command.deps import Caller, State, forbid, requires
from command.domain.grid import GridAction, GridStage, GridTransitionError
from command.domain.policy import Action
from command.inputs import ApiIn, Latitude, Longitude, Text
from command.routes.scope import ScopeNarrowing
from command.security import Principal
from command.services import grid as service
from command.services.grid import NotFound, Refused, StaleVersion
from command.state import CommandState
from wuwang.exercises import EXERCISE_ID_RE

router = APIRouter(prefix="/grid", tags=["grid"])

CaseId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not do this to this case (audited)"},
    404: {"description": "no such case"},
    409: {"description": "stale expected_version: reload and decide again"},
    422: {"description": "the loop does not allow this step, or an invalid request (the reason says which)"},
}


class CaseOut(BaseModel):
    """A grid case as the console shows it (docs/command-api-grid.md lists every field)."""

    model_config = {"extra": "allow"}

    id: str
    category: str
    stage: str
    version: int
    is_open: bool
    overdue: bool
    assignee: str | None
    exercise_id: str | None


class StepOut(BaseModel):
    seq: int
    action: str
    action_zh: str
    by: str
    by_role: str | None
    at: str
    note: str
    assignee: str | None


class CaseDetail(BaseModel):
    case: CaseOut
    steps: list[StepOut]


class NewReport(ApiIn):
    """发现: a report made by hand (an operator taking a call, a grid worker's phone)."""

    category: str = Field(
        min_length=1, max_length=64, description="a grid category code, e.g. fire_lane_blocked"
    )
    description: str = Field(default="", max_length=2000)
    lat: Latitude
    lon: Longitude
    grid_cell_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="default: the lattice cell of lat/lon"
    )
    photo_url: str | None = Field(default=None, max_length=500)
    exercise_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=f"^{EXERCISE_ID_RE.pattern}$",
        description="an exercise case (planners, admin)",
    )
    report_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="the client's own id for this report: sending it again returns the first case (200)",
    )


class Step(ApiIn):
    expected_version: int = Field(ge=1, description="the case's version the decision was made on")
    note: str = Field(default="", max_length=2000, description="required for reject and dismiss")
    assignee: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="dispatch only: the department, person or team sent",
    )


class OverdueOut(BaseModel):
    model_config = {"extra": "allow"}

    case_id: str
    category: str
    stage: str
    deadline: str
    overdue_by_s: float
    assignee: str | None
    description: str


class KpisOut(BaseModel):
    model_config = {"extra": "allow"}

    period_start: str
    period_end: str
    days: int
    filed: int
    closed: int
    dismissed: int
    closure_rate: float | None
    mean_time_to_close_s: float | None
    mean_time_to_close_h: float | None
    p90_time_to_close_s: float | None
    p90_time_to_close_h: float | None
    on_time_rate: float | None
    filed_per_30_days: float
    per_month: dict[str, int]
    by_category: dict[str, dict[str, int]]
    overdue_count: int


T = TypeVar("T")


async def _guard(
    state: CommandState, who: Principal, action: str, call: Awaitable[T], case_id: str | None = None
) -> T:
    """Map the service's refusals: 403 (audited), 404, 409, 422."""
    try:
        return await call
    except Refused as exc:
        raise await forbid(
            state, who, action, exc.reason, object_type="grid_case", object_id=case_id
        ) from None
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except StaleVersion as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from None
    except GridTransitionError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.get(
    "/cases",
    response_model=list[CaseOut],
    responses={401: ERRORS[401], 403: ERRORS[403]},
    dependencies=[Depends(requires(Action.GRID_LIST))],
)
async def list_cases(
    state: State,
    who: Caller,
    scope: ScopeNarrowing,
    stage: Annotated[GridStage | None, Query(description="only this stage (then `open` is ignored)")] = None,
    open: Annotated[bool, Query(description="only open cases (not closed or dismissed)")] = True,
    overdue: Annotated[bool | None, Query(description="true: only overdue; false: only not overdue")] = None,
    grid_cell_id: Annotated[Text | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """The case list: overdue first (most overdue first), then newest. Field users get
    the cases they reported or that are dispatched to them (user or team)."""
    return await _guard(
        state,
        who,
        "grid.list",
        service.list_cases(
            state,
            who,
            stage=stage,
            open_only=open,
            is_overdue=overdue,
            grid_cell_id=grid_cell_id,
            scope=scope,
            limit=limit,
        ),
    )


@router.post(
    "/cases",
    response_model=CaseOut,
    status_code=201,
    responses={**ERRORS, 200: {"description": "this report_id was sent before: the first case"}},
    dependencies=[Depends(requires(Action.GRID_DISCOVER))],
)
async def create_case(body: NewReport, state: State, who: Caller, response: Response) -> dict[str, Any]:
    """发现: a report made by hand — by an operator, a commander or a field user (grid
    worker, team); planners create exercise cases only."""
    case, created = await _guard(
        state,
        who,
        "grid.discover",
        service.create_case(
            state,
            who,
            category=body.category,
            description=body.description,
            lat=body.lat,
            lon=body.lon,
            grid_cell_id=body.grid_cell_id,
            exercise_id=body.exercise_id,
            report_id=body.report_id,
            photo_url=body.photo_url,
        ),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return case


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    responses=ERRORS,
    dependencies=[Depends(requires(Action.GRID_READ))],
)
async def get_case(case_id: CaseId, state: State, who: Caller) -> dict[str, Any]:
    """The case with its steps (the record: who did what, when)."""
    return await _guard(state, who, "grid.read", service.case_detail(state, who, case_id), case_id)


_SUMMARIES = {
    GridAction.FILE: "立案: the report is a real case, in scope",
    GridAction.DISMISS: "不予立案: not a case (duplicate, out of scope); reason in the note",
    GridAction.DISPATCH: "派遣 (again before handling: 改派): needs an assignee",
    GridAction.HANDLE: "处置: done — by the assignee (field user or team), or recorded by the centre",
    GridAction.VERIFY: "核查: passed — by someone who handled the case in no round",
    GridAction.REJECT: "核查不通过: back to the assignee for rework; reason in the note",
    GridAction.CLOSE: "结案",
}


def _endpoint(action: GridAction) -> Callable[..., Awaitable[dict[str, Any]]]:
    name = f"grid.{action}"

    async def endpoint(case_id: CaseId, body: Step, state: State, who: Caller) -> dict[str, Any]:
        return await _guard(
            state,
            who,
            name,
            service.act(
                state,
                who,
                case_id,
                action,
                expected_version=body.expected_version,
                note=body.note,
                assignee=body.assignee,
            ),
            case_id,
        )

    return endpoint


for _action in (
    GridAction.FILE,
    GridAction.DISMISS,
    GridAction.DISPATCH,
    GridAction.HANDLE,
    GridAction.VERIFY,
    GridAction.REJECT,
    GridAction.CLOSE,
):
    # The command centre's acts are refused to field users up front (403, audited);
    # handle is open to field users too and checked against the case's assignee in the service.
    _gate = [Depends(requires(Action(f"grid.{_action}")))]
    router.add_api_route(
        f"/cases/{{case_id}}/{_action}",
        _endpoint(_action),
        methods=["POST"],
        response_model=CaseOut,
        responses=ERRORS,
        summary=_SUMMARIES[_action],
        name=f"grid_{_action}",
        dependencies=_gate,
    )


_OverdueReader = Annotated[Principal, Depends(requires(Action.GRID_OVERDUE))]
_KpiReader = Annotated[Principal, Depends(requires(Action.GRID_KPIS))]


@router.get("/overdue", response_model=list[OverdueOut], responses={401: ERRORS[401], 403: ERRORS[403]})
async def overdue(state: State, who: _OverdueReader, scope: ScopeNarrowing) -> list[dict[str, Any]]:
    """Cases past their deadline now, most overdue first: not handled by filed_at + SLA,
    or not filed or dismissed within an hour of discovery."""
    return await _guard(state, who, "grid.overdue", service.overdue_cases(state, who, scope=scope))


@router.get("/kpis", response_model=KpisOut, responses={401: ERRORS[401], 403: ERRORS[403]})
async def kpis(
    state: State,
    who: _KpiReader,
    scope: ScopeNarrowing,
    days: Annotated[int, Query(ge=1, le=366, description="the period: the last N days, up to now")] = 30,
) -> dict[str, Any]:
    """结案率, mean and p90 time to close (discovery → 结案), on-time rate and cases per
    month over the cases filed in the period; the overdue count is as of now."""
    return await _guard(state, who, "grid.kpis", service.kpis(state, who, days=days, scope=scope))
