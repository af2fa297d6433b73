"""/risk-sources and /shelters: the registries of risk sources (风险源) and emergency
shelters (应急避难场所), the inspection sweep into the grid loop, findings, shelter
occupancy, and ``/incidents/{id}/risk`` — what an incident's detail shows from them.

Who may do what (docs/risk-and-shelters.md): everyone signed in reads; operators and
commanders edit the registries and sweep; grid workers and teams (field) report
findings and occupancy, as the centre may; planners read. Refusals are 403 and audited;
what the rules refuse is 422 with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import AwareDatetime, Field

from command.deps import ON_INCIDENT, State, forbid, requires
from command.domain import risk as dom
from command.domain.policy import Action, allowed
from command.inputs import FROM_TEXT, ClosedApiIn, Latitude, Longitude
from command.security import Principal
from command.services import risk as service
from command.services.risk import NotFound
from wuwang.contract import MAX_SHELTER_OCCUPANCY

router = APIRouter(tags=["risk sources and shelters"])

SourceId = Annotated[str, Path(pattern=r"^RS-[0-9A-Za-z-]{2,40}$", description="a risk source's id, RS-…")]
ShelterId = Annotated[str, Path(pattern=r"^SH-[0-9A-Za-z-]{2,40}$", description="a shelter's id, SH-…")]
IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not (audited)"},
    404: {"description": "no such risk source, shelter or incident"},
    422: {"description": "refused by the rules or an invalid request (the reason says which)"},
}
#: A registry PUT that made the entry (200: it replaced one).
REGISTERED: dict[str, Any] = {"description": "registered: a new entry"}


class _PlaceIn(ClosedApiIn):
    """What a risk source and a shelter are both registered with: a name and a place."""

    name: Annotated[str, Field(min_length=1, max_length=100, description="名称")]
    lat: Latitude
    lon: Longitude


class RiskSourceIn(_PlaceIn):
    kind: dom.RiskKind = Field(strict=False)  # enums from their JSON strings
    level: dom.RiskLevel = Field(strict=False, description="major 重大, large 较大, general 一般, low 低")
    responsible_unit: Annotated[str, Field(max_length=100, description="责任单位")] = ""
    contact: Annotated[str, Field(max_length=100, description="联系人及电话")] = ""
    inspection_interval_days: Annotated[int, Field(ge=1, le=366, description="巡查周期（天）")]
    last_inspected_at: Annotated[AwareDatetime | None, FROM_TEXT] = None


class FindingIn(ClosedApiIn):
    note: Annotated[str, Field(min_length=1, max_length=500, description="巡查发现")]
    level: dom.RiskLevel | None = Field(
        default=None, strict=False, description="raise the source's level to this"
    )
    alarm: bool = Field(default=False, description="raise an alarm into the triage inbox")
    case_id: Annotated[str | None, Field(max_length=64, description="the inspection's grid case")] = None


class ShelterIn(_PlaceIn):
    kind: dom.ShelterKind = Field(strict=False)
    capacity: Annotated[int, Field(gt=0, le=1_000_000, description="容纳人数")]
    facilities: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=40)]],
        Field(default_factory=list, max_length=20, description="设施"),
    ]
    status: dom.ShelterStatus = Field(default=dom.ShelterStatus.CLOSED, strict=False)


class OccupancyIn(ClosedApiIn):
    id: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
            description="the sender's report id: a report resent with the same id is applied once",
        ),
    ] = None
    occupancy: Annotated[int, Field(ge=0, le=MAX_SHELTER_OCCUPANCY, description="当前安置人数")]
    status: dom.ShelterStatus | None = Field(
        default=None, strict=False, description="open or close it with the count"
    )


Answer = TypeVar("Answer")


def _http(exc: NotFound | dom.RiskError) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


async def _answer(call: Awaitable[Answer]) -> Answer:
    """A service's answer, or its refusal as HTTP: 404 for no such object, 422 with the
    rule's reason."""
    try:
        return await call
    except (NotFound, dom.RiskError) as exc:
        raise _http(exc) from None


async def _registered(call: Awaitable[tuple[dict[str, Any], bool]], response: Response) -> dict[str, Any]:
    """A registry PUT: 201 when it made the entry, 200 when it replaced one."""
    out, created = await call
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


# --- risk sources ---------------------------------------------------------------------------


@router.get("/risk-sources", responses={401: ERRORS[401]}, summary="List the risk sources (风险源)")
async def list_sources(
    state: State, who: Annotated[Principal, Depends(requires(Action.RISK_READ))]
) -> list[dict[str, Any]]:
    return await service.list_sources(state)


@router.get("/risk-sources/{source_id}", responses={401: ERRORS[401], 404: ERRORS[404]})
async def get_source(
    state: State, source_id: SourceId, who: Annotated[Principal, Depends(requires(Action.RISK_READ))]
) -> dict[str, Any]:
    return await _answer(service.get_source(state, source_id))


@router.put(
    "/risk-sources/{source_id}",
    responses={201: REGISTERED, **{k: ERRORS[k] for k in (401, 403, 422)}},
    summary="Register or replace a risk source",
)
async def put_source(
    state: State,
    source_id: SourceId,
    body: RiskSourceIn,
    response: Response,
    who: Annotated[Principal, Depends(requires(Action.RISK_EDIT, on=("risk_source", "source_id")))],
) -> dict[str, Any]:
    return await _registered(service.put_source(state, who, source_id, body.model_dump()), response)


@router.post(
    "/risk-sources/sweep",
    responses={401: ERRORS[401], 403: ERRORS[403]},
    summary="Open a grid case for every overdue inspection (idempotent)",
)
async def sweep(
    state: State, who: Annotated[Principal, Depends(requires(Action.RISK_SWEEP))]
) -> list[dict[str, str]]:
    return await service.sweep_inspections(state)


@router.post(
    "/risk-sources/{source_id}/findings",
    responses={k: ERRORS[k] for k in (401, 403, 404, 422)},
    summary="Report an inspection's finding (may raise the level or an alarm)",
)
async def finding(
    state: State,
    source_id: SourceId,
    body: FindingIn,
    who: Annotated[Principal, Depends(requires(Action.RISK_FINDING, on=("risk_source", "source_id")))],
) -> dict[str, Any]:
    return await _answer(
        service.report_finding(
            state, who, source_id, note=body.note, level=body.level, alarm=body.alarm, case_id=body.case_id
        )
    )


# --- shelters ------------------------------------------------------------------------------------


@router.get("/shelters", responses={401: ERRORS[401]}, summary="List the shelters (应急避难场所)")
async def list_shelters(
    state: State, who: Annotated[Principal, Depends(requires(Action.SHELTER_READ))]
) -> list[dict[str, Any]]:
    return await service.list_shelters(state)


@router.get(
    "/shelters/nearest",
    responses={401: ERRORS[401]},
    summary="The nearest open shelters with room, with the distance",
)
async def nearest(
    state: State,
    who: Annotated[Principal, Depends(requires(Action.SHELTER_READ))],
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    need: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[dict[str, Any]]:
    return await service.nearest_shelters(state, lat, lon, need=need, limit=limit)


@router.put("/shelters/{shelter_id}", responses={201: REGISTERED, **{k: ERRORS[k] for k in (401, 403, 422)}})
async def put_shelter(
    state: State,
    shelter_id: ShelterId,
    body: ShelterIn,
    response: Response,
    who: Annotated[Principal, Depends(requires(Action.SHELTER_EDIT, on=("shelter", "shelter_id")))],
) -> dict[str, Any]:
    return await _registered(service.put_shelter(state, who, shelter_id, body.model_dump()), response)


@router.post(
    "/shelters/{shelter_id}/occupancy",
    responses={k: ERRORS[k] for k in (401, 403, 404, 422)},
    summary="Report a shelter's occupancy (the field page; MQTT teams/v2/<team>/shelter likewise)",
)
async def occupancy(
    state: State,
    shelter_id: ShelterId,
    body: OccupancyIn,
    who: Annotated[
        Principal, Depends(requires(Action.SHELTER_REPORT_OCCUPANCY, on=("shelter", "shelter_id")))
    ],
) -> dict[str, Any]:
    shelter, _applied = await _answer(
        service.report_occupancy(state, who, shelter_id, body.occupancy, status=body.status, msg_id=body.id)
    )
    return shelter


# --- incidents ----------------------------------------------------------------------------------


@router.get(
    "/incidents/{incident_id}/risk",
    responses={k: ERRORS[k] for k in (401, 403, 404)},
    summary="Major risk sources near an incident, its suggested level, shelters for an evacuation",
)
async def incident_risk(
    state: State,
    incident_id: IncidentId,
    who: Annotated[Principal, Depends(requires(Action.RISK_INCIDENT, on=ON_INCIDENT))],
) -> dict[str, Any]:
    exercise_id, body = await _answer(service.incident_context(state, incident_id))
    drill = exercise_id is not None
    if not allowed(who.role, Action.RISK_INCIDENT, drill=drill):
        raise await forbid(
            state,
            who,
            str(Action.RISK_INCIDENT),
            f"{who.role} may not see {'drill' if drill else 'live'} incident {incident_id}",
            object_type="incident",
            object_id=incident_id,
        )
    return body
