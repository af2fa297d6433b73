"""/warnings: 预警 — draft (operator), approve and issue (commander), update, cancel; the
counts inside an area before approval; field users read only what was sent to their team.

Who may do what is the domain's one rule (command/domain/warnings.py). Refusals are
audited (403); bad input is 422 with the reason; a step that does not fit the warning's
state is 409. See docs/warnings.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field

from command.deps import Caller, State, forbid, gate
from command.domain import cap
from command.domain import warnings as wd
from command.domain.incidents import DomainError, Forbidden, IllegalTransition
from command.domain.policy import Action, allowed
from command.domain.vocabulary import Role
from command.domain.warning_events import CATEGORIES, EVENT_TYPES
from command.inputs import FROM_TEXT, ClosedApiIn, ExerciseIdText
from command.routes.scope import ScopeQuery
from command.security import Principal
from command.services import warnings as service
from command.services.inbox import now as clock
from command.services.incident_store import NotFound
from wuwang.scope import Scope

router = APIRouter(prefix="/warnings", tags=["warnings"])

Identifier = Annotated[
    str, Path(pattern=r"^[0-9]{14}_[0-9]{14}_[1-9][0-9]{0,5}$", description="GB/T 35965.1 identifier")
]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not (see docs/warnings.md)"},
    404: {"description": "no such warning"},
    409: {"description": "the step does not fit the warning's state"},
    422: {"description": "invalid warning (the reason says which)"},
}


class AreaIn(ClosedApiIn):
    polygon: Annotated[
        list[Annotated[list[float], Field(min_length=2, max_length=2)]],
        Field(default_factory=list, max_length=wd.MAX_POLYGON_POINTS + 1, description="[[lat, lon]…] WGS-84"),
    ]
    cells: Annotated[
        list[str], Field(default_factory=list, max_length=wd.MAX_CELLS, description="grid cell ids")
    ]
    districts: Annotated[
        list[int], Field(default_factory=list, max_length=wd.MAX_DISTRICTS, description="GB/T 2260 adcodes")
    ]


class ContentIn(ClosedApiIn):
    event_type: Annotated[str, Field(min_length=1, max_length=40, description="see GET /warnings/vocabulary")]
    level: Literal["red", "orange", "yellow", "blue"]
    area: AreaIn
    onset: Annotated[AwareDatetime, FROM_TEXT]
    expires: Annotated[AwareDatetime, FROM_TEXT]
    headline: Annotated[str, Field(min_length=1, max_length=wd.MAX_HEADLINE)]
    description: Annotated[str, Field(max_length=wd.MAX_TEXT)] = ""
    instruction: Annotated[str, Field(max_length=wd.MAX_TEXT)] = ""


class NewWarning(ContentIn):
    exercise_id: ExerciseIdText | None = Field(
        default=None, description="a drill's warning (planners: required)"
    )


class Cancel(ClosedApiIn):
    reason: Annotated[str, Field(min_length=1, max_length=wd.MAX_REASON)]


class Counts(BaseModel):
    counts: dict[str, int]
    teams: list[str]
    grid_workers: int


def _http(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, IllegalTransition):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


async def _authorise(
    state: State, who: Principal, action: wd.Action, exercise_id: str | None, identifier: str | None = None
) -> None:
    try:
        wd.authorise(service.actor(who), action, exercise_id)
    except Forbidden as exc:
        raise await forbid(
            state, who, f"warning.{action}", exc.reason, object_type="warning", object_id=identifier
        ) from None


def _content(body: ContentIn, at: Any) -> wd.Content:
    area = wd.make_area(body.area.polygon, body.area.cells, body.area.districts)
    return wd.make_content(
        event_type=body.event_type,
        level=body.level,
        area=area,
        onset=body.onset,
        expires=body.expires,
        headline=body.headline,
        description=body.description,
        instruction=body.instruction,
        at=at,
    )


@router.get(
    "/vocabulary", responses={401: ERRORS[401], 403: ERRORS[403]}, dependencies=gate(Action.WARNING_READ)
)
async def vocabulary(who: Caller) -> dict[str, Any]:
    """The event types (GB/T 35561 categories and sub-types) and levels a warning may name."""
    return {
        "categories": list(CATEGORIES),
        "event_types": [{"key": key, "category": cat} for key, cat in EVENT_TYPES.items()],
        "levels": [
            {"key": str(lv), "grade": lv.grade, "roman": lv.roman, "colour": lv.colour} for lv in wd.Level
        ],
    }


@router.get("", responses={401: ERRORS[401], 403: ERRORS[403]}, dependencies=gate(Action.WARNING_READ))
async def list_warnings(
    state: State,
    who: Caller,
    scope: ScopeQuery,
    phase: Annotated[service.ListPhase, Query(description="active: drafts and issued in force")] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """A scope's warnings, newest first; a field user gets the live ones sent to its team."""
    now = clock()
    async with state.pool.connection() as conn:
        if who.role == Role.FIELD:
            if who.team_id is None or scope.is_drill:
                raise await forbid(state, who, "warning.read", "field users read their team's live warnings")
            return [service.warning_body(w, now) for w in await service.for_team(conn, who.team_id, now=now)]
        await _authorise(state, who, "read", scope.exercise_id)
        found = await service.list_warnings(conn, scope=scope, phase=phase, now=now, limit=limit)
    return [service.warning_body(w, now) for w in found]


@router.post("/inside", response_model=Counts, responses=ERRORS, dependencies=gate(Action.WARNING_DRAFT))
async def count_inside(body: AreaIn, state: State, who: Caller, scope: ScopeQuery) -> dict[str, Any]:
    """What an area holds before a warning is drafted or approved: grid cells, devices,
    venues, teams (risk sources and shelters where registered), and whom it would reach."""
    await _authorise(state, who, "draft", scope.exercise_id)
    try:
        area = wd.make_area(body.polygon, body.cells, body.districts)
    except DomainError as exc:
        raise _http(exc) from None
    async with state.pool.connection() as conn:
        found = await service.inside(conn, area, scope)
    return {"counts": found.counts, "teams": list(found.teams), "grid_workers": len(found.grid_workers)}


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=ERRORS, dependencies=gate(Action.WARNING_DRAFT)
)
async def draft_warning(body: NewWarning, state: State, who: Caller) -> dict[str, Any]:
    """起草: a new draft, not yet sent to anyone."""
    await _authorise(state, who, "draft", body.exercise_id)
    now = clock()
    try:
        content = _content(body, now)
    except DomainError as exc:
        raise _http(exc) from None
    async with state.pool.connection() as conn, conn.transaction():
        ident = await service.new_identifier(conn, service.sender_code(state.settings), now)
        try:
            w = wd.draft(
                identifier=ident,
                sender=state.settings.command.warning_sender,
                content=content,
                exercise_id=body.exercise_id,
                actor=service.actor(who),
                at=now,
            )
        except DomainError as exc:
            raise _http(exc) from None
        await service.insert(conn, w, who, "draft")
    await service.announce(state, [w], now)
    return service.warning_body(w, now)


async def _readable(state: State, who: Principal, w: Any, identifier: str, action: wd.Action) -> None:
    """Staff by the one rule; a field user only a warning sent to its team (else 404: a
    warning it was not sent to does not exist for it)."""
    if who.role == Role.FIELD:
        if action == "read" and wd.targets(service.actor(who), w):
            return
        if action == "read":
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no warning {identifier}")
    await _authorise(state, who, action, w.exercise_id, identifier)


CAP_MEDIA = "application/cap+xml"
ATOM_MEDIA = "application/atom+xml"


@router.get(
    "/feed.atom",
    responses={401: ERRORS[401], 403: ERRORS[403]},
    response_class=Response,
    dependencies=gate(Action.WARNING_READ),
)
async def atom_feed(request: Request, state: State, who: Caller) -> Response:
    """The live warnings in force as an Atom feed, each entry linking its CAP 1.2 file:
    what downstream release systems (预警信息发布系统, 应急广播) poll."""
    if who.role == Role.FIELD or not allowed(who.role, Action.WARNING_READ, drill=False):
        # the feed is live warnings for release systems and the centre, not a crew's or a drill's
        raise await forbid(state, who, "warning.read", f"role {who.role} may not read the live warnings feed")
    now = clock()
    async with state.pool.connection() as conn:
        alerts = [await service.as_cap(conn, w) for w in await service.issued_for_feed(conn, now=now)]
    base = str(request.base_url).rstrip("/")
    body = cap.atom_feed(
        [cap.feed_entry(a, f"{base}/warnings/{a.identifier}.cap") for a in alerts],
        feed_id=f"urn:wuwang:warnings:{service.sender_code(state.settings)}",
        title="五网同构 预警 / warnings",
        updated=max((a.sent for a in alerts), default=now),
        self_url=f"{base}/warnings/feed.atom",
    )
    return Response(body, media_type=ATOM_MEDIA)


@router.get(
    "/{identifier}.cap",
    responses=ERRORS,
    response_class=Response,
    dependencies=gate(Action.WARNING_READ, on=("warning", "identifier")),
)
async def warning_cap(identifier: Identifier, state: State, who: Caller) -> Response:
    """An issued, updated or cancelled warning as CAP 1.2 XML (GB/T 35965.1 identifier),
    valid against the OASIS schema; a draft has no CAP form yet (409)."""
    async with state.pool.connection() as conn:
        try:
            w = await service.get(conn, identifier)
        except NotFound as exc:
            raise _http(exc) from None
        await _readable(state, who, w, identifier, "read")
        if w.state == wd.WarningState.DRAFT:
            raise HTTPException(status.HTTP_409_CONFLICT, f"warning {identifier} is a draft: not issued yet")
        alert = await service.as_cap(conn, w)
    return Response(cap.to_cap_xml(alert), media_type=CAP_MEDIA)


@router.get(
    "/{identifier}", responses=ERRORS, dependencies=gate(Action.WARNING_READ, on=("warning", "identifier"))
)
async def get_warning(identifier: Identifier, state: State, who: Caller) -> dict[str, Any]:
    now = clock()
    async with state.pool.connection() as conn:
        try:
            w = await service.get(conn, identifier)
        except NotFound as exc:
            raise _http(exc) from None
    await _readable(state, who, w, identifier, "read")
    body = service.warning_body(w, now)
    if who.role == Role.FIELD:
        body["target_grid_workers"] = []  # others' addresses are not a crew's business
    return body


@router.post(
    "/{identifier}/approve",
    responses=ERRORS,
    dependencies=gate(Action.WARNING_APPROVE, on=("warning", "identifier")),
)
async def approve_warning(identifier: Identifier, state: State, who: Caller) -> dict[str, Any]:
    """批准并发布: issued to the teams and grid workers inside its area; the approver and
    the time are recorded (依法处置)."""
    now = clock()
    async with state.pool.connection() as conn, conn.transaction():
        try:
            w = await service.get(conn, identifier, for_update=True)
            await _readable(state, who, w, identifier, "approve")
            found = await service.inside(conn, w.content.area, Scope.of(w.exercise_id))
            after = wd.approve(
                w, actor=service.actor(who), at=now, teams=found.teams, grid_workers=found.grid_workers
            )
        except (DomainError, NotFound) as exc:
            raise _http(exc) from None
        await service.save(conn, after, who, "approve", counts=found.counts)
        await service.issue(conn, after, now)
    await service.announce(state, [after], now)
    return service.warning_body(after, now)


@router.post(
    "/{identifier}/update",
    responses=ERRORS,
    dependencies=gate(Action.WARNING_UPDATE, on=("warning", "identifier")),
)
async def update_warning(
    identifier: Identifier, body: ContentIn, state: State, who: Caller
) -> dict[str, Any]:
    """更新: a new version that references this one, issued at once; this one is superseded."""
    now = clock()
    async with state.pool.connection() as conn, conn.transaction():
        try:
            w = await service.get(conn, identifier, for_update=True)
            await _readable(state, who, w, identifier, "update")
            content = _content(body, now)
            found = await service.inside(conn, content.area, Scope.of(w.exercise_id))
            ident = await service.new_identifier(conn, service.sender_code(state.settings), now)
            old, new = wd.update(
                w,
                identifier=ident,
                content=content,
                actor=service.actor(who),
                at=now,
                teams=found.teams,
                grid_workers=found.grid_workers,
            )
        except (DomainError, NotFound) as exc:
            raise _http(exc) from None
        await service.save(conn, old, who, "supersede", by=new.identifier)
        await service.insert(conn, new, who, "update")
        await service.issue(conn, new, now)
    await service.announce(state, [old, new], now)
    return service.warning_body(new, now)


# whoever may draft reaches it (a draft is discarded by its desk); issued: warning.cancel
@router.post(
    "/{identifier}/cancel",
    responses=ERRORS,
    dependencies=gate(Action.WARNING_DRAFT, on=("warning", "identifier")),
)
async def cancel_warning(identifier: Identifier, body: Cancel, state: State, who: Caller) -> dict[str, Any]:
    """解除 an issued warning (its recipients are told), or discard a draft."""
    now = clock()
    async with state.pool.connection() as conn, conn.transaction():
        try:
            w = await service.get(conn, identifier, for_update=True)
            # the scope (planners: drills only) here; the state decides the rest in the domain
            await _readable(state, who, w, identifier, "draft")
            after = wd.cancel(w, actor=service.actor(who), at=now, reason=body.reason)
        except Forbidden as exc:
            raise await forbid(
                state, who, "warning.cancel", exc.reason, object_type="warning", object_id=identifier
            ) from None
        except (DomainError, NotFound) as exc:
            raise _http(exc) from None
        await service.save(conn, after, who, "cancel")
        if w.state == wd.WarningState.ISSUED:
            await service.issue(conn, after, now)
    await service.announce(state, [after], now)
    return service.warning_body(after, now)
