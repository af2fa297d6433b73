"""/teams: the roster (救援队伍), live positions, and status changes.

Reading: every signed-in role; a field user sees only their own team. ``/teams/near``
is for the command centre (not field users). Setting a status: a field user for their
own team only, operators, commanders and admins for any team; planners never (teams
are live; drills run on exercise incidents). Refusals are 403 and audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from command.deps import Caller, State, forbid, requires
from command.domain.incidents import Forbidden
from command.domain.policy import Action
from command.domain.vocabulary import TeamType
from command.inputs import FROM_TEXT, ApiIn
from command.services import rosters
from command.services.incident_store import NotFound
from wuwang.contract import TeamStatus

router = APIRouter(prefix="/teams", tags=["teams"])

TeamId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not see or change this team"},
    404: {"description": "no such team"},
}


class Point(BaseModel):
    lat: float
    lon: float


class LivePosition(BaseModel):
    lat: float
    lon: float
    at: str = Field(description="time of the fix (device time, or receipt time)")
    age_s: float
    stale: bool = Field(description="older than COMMAND_POSITION_STALE_S")
    source: str = Field(description="live (Redis, from MQTT) or db (last copy in PostgreSQL)")


class ActiveOrder(BaseModel):
    order_id: str
    incident_id: str
    status: str
    created_at: str | None


class TeamOut(BaseModel):
    """A team as the console lists it."""

    id: str
    name: str
    type: str
    district_adcode: int | None
    district: str | None
    size: int
    base: Point
    status: str
    status_at: str | None
    status_seq: int | None
    position: LivePosition | None
    on_shift: bool = Field(description="a shift of team_shift covers now")
    on_duty: bool = Field(description="on shift and not off_duty")
    duty_until: str | None
    active_order: ActiveOrder | None


class Certificate(BaseModel):
    name: str
    expires_on: str | None
    expired: bool
    expires_soon: bool


class MemberOut(BaseModel):
    id: str
    name: str
    skills: list[str]
    certificates: list[Certificate]


class ShiftOut(BaseModel):
    starts_at: str
    ends_at: str
    covers_now: bool


class CertificateAlert(BaseModel):
    member_id: str
    member_name: str
    certificate: str
    expires_on: str
    expired: bool
    text: str


class TeamDetail(TeamOut):
    members: list[MemberOut]
    member_count: int
    skills: dict[str, int] = Field(description="members holding each skill or valid certificate")
    certificate_alerts: list[CertificateAlert]
    shifts_today: list[ShiftOut]
    today: str = Field(description="the command centre's date (COMMAND_TIMEZONE)")


class NearTeam(BaseModel):
    id: str
    name: str
    type: str
    status: str
    distance_m: float
    lat: float
    lon: float
    position_at: str | None
    age_s: float | None
    stale: bool
    active_order: str | None


class StatusChange(ApiIn):
    status: Annotated[TeamStatus, FROM_TEXT]
    incident_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)
    # From a team's terminal (the field page), as on MQTT: the message id, and the
    # terminal's sequence number that orders its changes (a resent or overtaken change
    # is not applied twice).
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    seq: int | None = Field(default=None, ge=0, le=2**63 - 1)


def _error(exc: Forbidden | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    return HTTPException(status.HTTP_403_FORBIDDEN, exc.reason)


@router.get(
    "",
    response_model=list[TeamOut],
    responses={401: ERRORS[401]},
    dependencies=[Depends(requires(Action.TEAM_LIST))],
)
async def list_teams(
    state: State,
    who: Caller,
    type: Annotated[TeamType | None, Query(description="only this team type")] = None,
    status_: Annotated[TeamStatus | None, Query(alias="status")] = None,
    district: Annotated[int | None, Query(description="district adcode")] = None,
    on_duty: Annotated[bool | None, Query(description="only teams on (or off) duty now")] = None,
) -> list[dict[str, Any]]:
    """Every team with status, position and its age, on duty now, active order."""
    return await rosters.list_teams(
        state,
        who,
        team_type=type.value if type else None,
        status=status_.value if status_ else None,
        district=district,
        on_duty_now=on_duty,
    )


@router.get(
    "/near",
    response_model=list[NearTeam],
    responses={401: ERRORS[401], 403: ERRORS[403]},
    dependencies=[Depends(requires(Action.TEAM_NEAR))],
)
async def teams_near(
    state: State,
    lat: Annotated[float, Query(ge=-85.05, le=85.05)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    radius_m: Annotated[float, Query(gt=0, le=200_000)] = 5000,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    type: Annotated[TeamType | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Teams whose live position (MQTT → Redis GEO) is within ``radius_m``, nearest first."""
    return await rosters.near(state, lat, lon, radius_m, limit, type.value if type else None)


@router.get(
    "/{team_id}",
    response_model=TeamDetail,
    responses=ERRORS,
    dependencies=[Depends(requires(Action.TEAM_READ))],
)
async def get_team(team_id: TeamId, state: State, who: Caller) -> dict[str, Any]:
    """The team with its members, certificates (expired ones flagged) and today's shifts."""
    only = rosters.visible_team_ids(who)
    if only is not None and team_id not in only:
        raise await forbid(
            state,
            who,
            "team.read",
            f"field user {who.user_id} may see only their own team",
            object_type="team",
            object_id=team_id,
        )
    try:
        return await rosters.team_detail(state, team_id)
    except NotFound as exc:
        raise _error(exc) from None


@router.post(
    "/{team_id}/status",
    response_model=TeamOut,
    responses=ERRORS,
    dependencies=[Depends(requires(Action.TEAM_STATUS, on=("team", "team_id")))],
)
async def set_status(team_id: TeamId, body: StatusChange, state: State, who: Caller) -> dict[str, Any]:
    """Change a team's status (the API path beside MQTT ``teams/v1/<id>/status``)."""
    try:
        return await rosters.set_status(
            state, who, team_id, body.status, body.incident_id, body.reason, seq=body.seq, msg_id=body.id
        )
    except (Forbidden, NotFound) as exc:
        raise _error(exc) from None
