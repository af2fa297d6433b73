"""/incidents: the queue, the record, and the operators' and commanders' acts.

Every act names the version it was decided on (``expected_version``); a stale one gets
409. Illegal transitions and invalid commands get 422 with the domain's reason; acts
a role may not do get 403 (and an audit record).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from command import audit
from command.deps import ON_INCIDENT, Caller, State, gate
from command.domain import incidents as domain
from command.domain.closing import ClosingBlocked
from command.domain.incidents import DomainError, Forbidden, Incident, StaleVersion
from command.domain.policy import Action
from command.domain.vocabulary import IncidentType, ResponseLevel
from command.inputs import FROM_TEXT, ApiIn, Latitude, Longitude
from command.services import closing, photos, plans
from command.services import incident_store as store
from command.services import incidents as service
from command.services.incident_store import NotFound, event_body, incident_body
from command.services.live import publish

router = APIRouter(prefix="/incidents", tags=["incidents"])
T = TypeVar("T")

IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not do this to this incident"},
    404: {"description": "no such incident"},
    409: {"description": "stale expected_version: reload and decide again"},
    422: {"description": "illegal transition or invalid command (the reason says which)"},
}


class IncidentOut(BaseModel):
    """An incident as the console shows it (see docs/incidents.md)."""

    model_config = {"extra": "allow"}

    id: str
    type: str
    level: int
    state: str
    title: str
    version: int
    is_open: bool
    exercise_id: str | None
    next_acts: list[domain.IncidentAct] = Field(
        default_factory=list,
        description="the acts on the whole incident its state allows now (docs/incidents.md, "
        "the lifecycle table): the console offers these; the role and the closing guard are "
        "checked when one is given",
    )


class EventOut(BaseModel):
    seq: int
    kind: str
    at: str
    actor: str
    actor_role: str
    reason: str | None
    data: dict[str, Any]


class IncidentDetail(BaseModel):
    incident: IncidentOut
    timeline: list[EventOut]


class Act(ApiIn):
    expected_version: int = Field(ge=1, description="the version the decision was made on")
    reason: str | None = Field(default=None, max_length=1000)


class LevelChange(Act):
    level: Annotated[int, Field(ge=1, le=4)] = Field(description="1 = I (特别重大) … 4 = IV (一般)")


class Reclassify(Act):
    type: Annotated[IncidentType, FROM_TEXT]


class Note(Act):
    text: str = Field(min_length=1, max_length=4000)


class Split(Act):
    alarm_id: str = Field(min_length=1, max_length=200)


class Merge(Act):
    into: str = Field(min_length=1, max_length=64, description="the incident that survives")
    into_expected_version: int = Field(ge=1)


class Closing(Act):
    override_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="a commander's reason to resolve or close despite open work (audited)",
    )


class OpenWorkOut(BaseModel):
    checklist: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    supplies: list[dict[str, Any]]


class ClosingRefusal(BaseModel):
    """The 409 body when open work blocks resolving or closing."""

    detail: str
    open: OpenWorkOut


class ClosingState(BaseModel):
    incident_id: str
    version: int
    open: OpenWorkOut
    blocked: bool


class Arrival(ApiIn):
    team_id: str = Field(min_length=1, max_length=64)
    expected_version: int | None = Field(default=None, ge=1)


class NewIncident(ApiIn):
    type: Annotated[IncidentType, FROM_TEXT]
    level: Annotated[int, Field(ge=1, le=4)] = 4
    title: str = Field(min_length=1, max_length=200)
    lat: Latitude
    lon: Longitude
    reason: str | None = Field(default=None, max_length=1000)


def domain_error(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, Forbidden):
        return HTTPException(status.HTTP_403_FORBIDDEN, exc.reason)
    if isinstance(exc, StaleVersion):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


async def guarded(call: Awaitable[Incident]) -> IncidentOut:
    try:
        return IncidentOut.model_validate(incident_body(await call))
    except (DomainError, NotFound) as exc:
        raise domain_error(exc) from None


@router.get(
    "",
    response_model=list[IncidentOut],
    responses={401: ERRORS[401]},
    dependencies=gate(Action.INCIDENT_LIST),
)
async def list_incidents(
    state: State,
    who: Caller,
    open: Annotated[bool, Query(description="only open incidents")] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """The incident queue, gravest level first, then newest."""
    return await service.list_incidents(state, who, open_only=open, limit=limit)


@router.post(
    "", response_model=IncidentOut, status_code=201, responses=ERRORS, dependencies=gate(Action.INCIDENT_OPEN)
)
async def open_incident(body: NewIncident, state: State, who: Caller) -> IncidentOut:
    """Open an incident by hand (e.g. a walk-in report)."""

    async def act() -> Incident:
        at = service.now()
        async with state.pool.connection() as conn, conn.transaction():
            incident_id = await service.new_incident_id(conn, at)
            events = domain.decide_open(
                incident_id,
                incident_type=body.type,
                level=ResponseLevel(body.level),
                title=body.title,
                actor=service.actor_of(who),
                at=at,
                lat=body.lat,
                lon=body.lon,
                reason=body.reason,
            )
            new = await store.append(conn, None, events, audit_action="incident.open")
        assert new is not None
        await publish(state.redis, store.change_for(new))
        return new

    try:
        return await guarded(act())
    except HTTPException as exc:
        if exc.status_code == 403:
            await audit.record_denied(state.pool, who, "incident.open", str(exc.detail))
        raise


@router.get(
    "/{incident_id}",
    response_model=IncidentDetail,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_READ, on=ON_INCIDENT),
)
async def get_incident(incident_id: IncidentId, state: State, who: Caller) -> IncidentDetail:
    """The incident with its whole timeline (the event record)."""
    incident, events = await _readable(
        state, who, incident_id, "incident.read", service.incident_detail(state, incident_id)
    )
    return IncidentDetail(
        incident=IncidentOut.model_validate(incident_body(incident)),
        timeline=[EventOut.model_validate(plans.with_plan_title(state, event_body(e))) for e in events],
    )


async def _readable(
    state: State, who: Caller, incident_id: str, action: str, load: Awaitable[tuple[Incident, T]]
) -> tuple[Incident, T]:
    """The incident (and what ``load`` reads with it) for whoever may see it: 404 when
    there is none, 403 (audited as ``action``) for a caller who may not see it."""
    try:
        incident, more = await load
    except NotFound as exc:
        raise domain_error(exc) from None
    if not service.visible_incident(who, incident_body(incident)):
        raise await _forbid(state, who, action, incident_id)
    return incident, more


async def _forbid(state: State, who: Caller, action: str, incident_id: str) -> HTTPException:
    from command.deps import forbid

    return await forbid(
        state,
        who,
        action,
        f"{who.role} may not see incident {incident_id}",
        object_type="incident",
        object_id=incident_id,
    )


@router.get(
    "/{incident_id}/closing",
    response_model=ClosingState,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_READ, on=ON_INCIDENT),
)
async def closing_state(incident_id: IncidentId, state: State, who: Caller) -> ClosingState:
    """What is still open (checklist, teams, supplies) before resolving or closing."""
    incident, work = await _readable(
        state, who, incident_id, "incident.read", closing.current_open_work(state, incident_id)
    )
    return ClosingState(
        incident_id=incident.incident_id,
        version=incident.version,
        open=OpenWorkOut.model_validate(work.as_body()),
        blocked=not work.empty,
    )


CLOSING_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "this role may not do this, or may not override the closing guard"},
    409: {
        "description": "open work blocks it (body: detail and open), or a stale expected_version",
        "model": ClosingRefusal,
    },
}


def _reasoned(body: Any) -> dict[str, Any]:
    return {"expected_version": body.expected_version, "reason": body.reason}


@dataclass(frozen=True)
class ActRoute:
    """One act on an incident as ``POST /incidents/{id}/<path>``: the body it takes, the
    decision it runs on the locked incident (with the keywords ``args`` reads from the
    body) and the audit action. A :class:`Closing` body (resolve, close) goes through the
    closing guard. ``name`` and ``summary`` make the OpenAPI operation."""

    path: str
    action: str
    decide: Callable[..., list[domain.Event]]
    body: type[ApiIn] = Act
    args: Callable[[Any], dict[str, Any]] = _reasoned
    summary: str | None = None
    description: str | None = None
    name: str | None = None

    @property
    def operation(self) -> str:
        return self.name or f"incident_{self.path.replace('-', '_')}"


def act_endpoint(act: ActRoute) -> Callable[..., Awaitable[Any]]:
    """The one handler of every act: decide on the version the caller saw, as the caller,
    in one transaction (``service.run_command``, or ``closing.resolve_or_close``)."""

    async def endpoint(incident_id: IncidentId, body: ApiIn, state: State, who: Caller) -> Any:
        def run(inc: Incident) -> list[domain.Event]:
            return act.decide(inc, actor=service.actor_of(who), at=service.now(), **act.args(body))

        if not isinstance(body, Closing):
            return await guarded(service.run_command(state, who, incident_id, run, act.action))
        try:
            incident = await closing.resolve_or_close(
                state, who, incident_id, act.path, run, act.action, body.override_reason
            )
        except ClosingBlocked as exc:
            return JSONResponse(
                status_code=status.HTTP_409_CONFLICT,
                content={"detail": exc.reason, "open": exc.work.as_body()},
            )
        except (DomainError, NotFound) as exc:
            raise domain_error(exc) from None
        return IncidentOut.model_validate(incident_body(incident))

    # FastAPI validates and documents the body by the parameter's type: the act's model.
    endpoint.__annotations__["body"] = act.body
    return endpoint


ACTS: tuple[ActRoute, ...] = (
    ActRoute(
        "verify", "incident.verify", domain.decide_verify, summary="立案: confirm the incident and take it on"
    ),
    ActRoute("reopen", "incident.reopen", domain.decide_reopen, summary="back on scene after resolve"),
    ActRoute(
        "hold", "incident.hold", domain.decide_hold, summary="挂起: park an open incident (reason required)"
    ),
    ActRoute(
        "resume",
        "incident.resume",
        domain.decide_resume,
        summary="恢复: take a held incident back into active work",
    ),
    ActRoute("cancel", "incident.cancel", domain.decide_cancel, summary="cancel (reason required)"),
    ActRoute(
        "false-alarm",
        "incident.false_alarm",
        domain.decide_false_alarm,
        summary="mark a false alarm (reason required)",
    ),
    ActRoute(
        "resolve",
        "incident.resolve",
        domain.decide_resolve,
        Closing,
        summary="the situation is under control (处置完毕); guarded by open work",
    ),
    ActRoute("close", "incident.close", domain.decide_close, Closing, summary="结案; guarded by open work"),
    ActRoute(
        "level",
        "incident.level_change",
        domain.decide_change_level,
        LevelChange,
        lambda b: {"level": ResponseLevel(b.level)} | _reasoned(b),
        description="Raise or lower the response level: a commander's act.",
        name="change_level",
    ),
    ActRoute(
        "type",
        "incident.reclassify",
        domain.decide_reclassify,
        Reclassify,
        lambda b: {"incident_type": b.type} | _reasoned(b),
        name="reclassify",
    ),
    ActRoute(
        "notes",
        "incident.note",
        domain.decide_add_note,
        Note,
        lambda b: {"text": b.text, "expected_version": b.expected_version},
        name="add_note",
    ),
    ActRoute(
        "arrived",
        "incident.team_arrived",
        domain.decide_team_arrived,
        Arrival,
        lambda b: {"team_id": b.team_id, "expected_version": b.expected_version},
        description="A team is on scene (到场): the team itself (field user) or the command centre.",
        name="team_arrived",
    ),
)

for _act in ACTS:
    router.add_api_route(
        f"/{{incident_id}}/{_act.path}",
        act_endpoint(_act),
        methods=["POST"],
        response_model=IncidentOut,
        responses=CLOSING_ERRORS if _act.body is Closing else ERRORS,
        summary=_act.summary,
        description=_act.description,
        name=_act.operation,
        dependencies=gate(Action(_act.action), on=ON_INCIDENT),
    )


class PairOut(BaseModel):
    first: IncidentOut
    second: IncidentOut


async def guarded_pair(call: Awaitable[tuple[Incident, Incident]]) -> PairOut:
    """``guarded`` for the acts that change two incidents at once."""
    try:
        first, second = await call
    except (DomainError, NotFound) as exc:
        raise domain_error(exc) from None
    return PairOut(
        first=IncidentOut.model_validate(incident_body(first)),
        second=IncidentOut.model_validate(incident_body(second)),
    )


@router.post(
    "/{incident_id}/split",
    response_model=PairOut,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_SPLIT, on=ON_INCIDENT),
)
async def split(incident_id: IncidentId, body: Split, state: State, who: Caller) -> PairOut:
    """Move a wrongly joined alarm out into a new incident (拆分)."""
    return await guarded_pair(
        service.split(state, who, incident_id, body.alarm_id, body.reason, body.expected_version)
    )


@router.post(
    "/{incident_id}/merge",
    response_model=PairOut,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_MERGE, on=ON_INCIDENT),
)
async def merge(incident_id: IncidentId, body: Merge, state: State, who: Caller) -> PairOut:
    """Merge this incident into ``into`` (合并); this one ends as merged."""
    return await guarded_pair(
        service.merge(
            state, who, incident_id, body.into, body.reason, body.expected_version, body.into_expected_version
        )
    )


PhotoName = Annotated[str, Path(pattern=r"^[0-9a-f]{64}\.(jpg|png|webp)$")]


class PhotoRef(BaseModel):
    alarm_id: str
    name: str
    url: str = Field(description="GET it with the desk user's token: /incidents/{id}/photos/{name}")
    kind: str
    source: str
    ts: str
    summary: str


async def _with_photos(state: State, who: Caller, incident_id: str) -> Incident:
    load = service.incident_detail(state, incident_id)
    return (await _readable(state, who, incident_id, "incident.photo_read", load))[0]


def _photos_of(incident: Incident) -> list[PhotoRef]:
    out = []
    for s in incident.sources:
        name = photos.stored_name(s.photo_url)
        if name is not None:
            out.append(
                PhotoRef(
                    alarm_id=s.alarm_id,
                    name=name,
                    url=f"/incidents/{incident.incident_id}/photos/{name}",
                    kind=str(s.kind),
                    source=s.source,
                    ts=s.ts.isoformat(),
                    summary=s.summary,
                )
            )
    return out


@router.get(
    "/{incident_id}/photos",
    response_model=list[PhotoRef],
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_READ, on=ON_INCIDENT),
)
async def incident_photos(incident_id: IncidentId, state: State, who: Caller) -> list[PhotoRef]:
    """The photos of the incident's field reports (现场照片), for whoever may see it."""
    return _photos_of(await _with_photos(state, who, incident_id))


@router.get(
    "/{incident_id}/photos/{name}",
    response_class=FileResponse,
    responses=ERRORS,
    dependencies=gate(Action.INCIDENT_READ, on=ON_INCIDENT),
)
async def incident_photo(incident_id: IncidentId, name: PhotoName, state: State, who: Caller) -> FileResponse:
    """One photo of the incident's reports, for whoever may see the incident: only a
    photo one of its sources carries, sent as the type its name says (nosniff)."""
    incident = await _with_photos(state, who, incident_id)
    target = photos.stored_path(state.settings.shared.data_dir, name)
    if target is None or name not in {p.name for p in _photos_of(incident)}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such photo on incident {incident_id}")
    return FileResponse(
        target,
        media_type=photos.MEDIA_TYPES[name.rsplit(".", 1)[1]],
        headers=photos.SERVED_HEADERS,
    )
