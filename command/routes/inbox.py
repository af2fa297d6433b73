"""/inbox: the alarm inbox (告警收件箱) — sensor crossings and video alerts that no triage
rule promoted, folded per source and category — and the operators' acts on its rows:
promote (立事件), link (关联) to an open incident, dismiss (排除) with a reason, one row at
a time or in bulk. Expired rows form the review list (``?state=expired``).

Roles come from the domain (command/domain/triage.py): operators, commanders and admins
act on any row, planners on exercise rows only, field users never (403). A row that was
already acted on gets 409; an invalid command 422. Every act, and every refusal, is in
the audit log. See docs/command-api-inbox.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from command.deps import Caller, State, forbid, gate
from command.domain.incidents import DomainError, Forbidden, IllegalTransition, StaleVersion
from command.domain.policy import Action, allowed, allowed_anywhere
from command.inputs import ClosedApiIn, Text
from command.routes.scope import ScopeNarrowing
from command.security import Principal
from command.services import inbox as service
from command.services.incident_store import NotFound, incident_body
from command.services.incidents import AlarmIntake

router = APIRouter(prefix="/inbox", tags=["inbox"])

RowId = Annotated[str, Path(pattern=r"^IB-[0-9a-f]{16}$", description="an inbox row id, IB-<16 hex>")]
IncidentIdText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
NoteText = Annotated[str, Field(max_length=1000)]
DismissReasonText = Literal["false_alarm", "duplicate", "test", "other"]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not act on this row (field users never; planners only on drills)"},
    404: {"description": "no such inbox row, or no such incident"},
    409: {"description": "the row was acted on already, or the incident is closed or of another scope"},
    422: {"description": "invalid command (the reason says which)"},
}


class Promote(ClosedApiIn):
    note: NoteText | None = None


class Link(ClosedApiIn):
    incident_id: IncidentIdText
    note: NoteText | None = None


class Dismiss(ClosedApiIn):
    reason: DismissReasonText = Field(
        description="false_alarm 误报 · duplicate 重复 · test 测试 · other 其他"
    )
    note: NoteText | None = Field(default=None, description="required for reason other")


class Bulk(ClosedApiIn):
    action: Literal["promote", "link", "dismiss"]
    row_ids: Annotated[
        list[Annotated[str, Field(pattern=r"^IB-[0-9a-f]{16}$")]],
        Field(min_length=1, max_length=service.BULK_MAX),
    ]
    incident_id: IncidentIdText | None = Field(default=None, description="for link: the open incident")
    reason: DismissReasonText | None = Field(default=None, description="for dismiss")
    note: NoteText | None = None


class ReasonOut(BaseModel):
    code: str
    params: dict[str, Any]
    zh: str
    en: str


class RowReasons(BaseModel):
    inbox: ReasonOut | None
    flapping: ReasonOut | None
    review: ReasonOut | None


class InboxRowOut(BaseModel):
    """One inbox row (docs/incidents.md, the alarm inbox)."""

    row_id: str
    state: str
    source: str
    category: str
    alarm_kind: str
    exercise_id: str | None
    first_seen: str
    last_seen: str
    count: int
    severity: str
    max_confidence: float | None
    lat: float | None
    lon: float | None
    grid_cell_id: str | None
    summary: str
    first_alarm_id: str
    alarm_ids: list[str]
    alarm_ids_truncated: bool
    flapping: bool
    flapping_since: str | None
    acted_by: str | None
    acted_role: str | None
    acted_at: str | None
    rule_id: str | None
    dismiss_reason: str | None
    note: str | None
    incident_id: str | None
    reasons: RowReasons


class ActOut(BaseModel):
    row: InboxRowOut
    incident: dict[str, Any] | None = Field(description="the incident promoted into or linked to")


class BulkItem(BaseModel):
    row_id: str
    ok: bool
    row: InboxRowOut | None = None
    refused: str | None = None


class BulkOut(BaseModel):
    results: list[BulkItem]
    incident: dict[str, Any] | None = None


#: ``on=`` for /inbox/{row_id}/…: refusals name the row.
_ON_ROW = ("inbox_row", "row_id")


async def _check_role(state: State, who: Principal, action: str, row_id: str | None = None) -> None:
    """The policy's refusal of a role that may never do ``action`` (field users)."""
    if not allowed_anywhere(who.role, Action(action)):
        raise await forbid(
            state,
            who,
            action,
            "field users may not see or act on the alarm inbox",
            object_type="inbox_row",
            object_id=row_id,
        )


def _http(exc: DomainError | NotFound | service.RowNotFound) -> HTTPException:
    if isinstance(exc, NotFound | service.RowNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, Forbidden):
        return HTTPException(status.HTTP_403_FORBIDDEN, exc.reason)
    if isinstance(exc, IllegalTransition | StaleVersion):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


_CORRELATION = AlarmIntake.default().rules


@router.get(
    "",
    response_model=list[InboxRowOut],
    responses={401: ERRORS[401], 403: ERRORS[403]},
    dependencies=gate(Action.INBOX_READ),
)
async def list_inbox(
    state: State,
    who: Caller,
    scope: ScopeNarrowing,
    row_state: Annotated[
        Literal["open", "expired", "promoted", "linked", "dismissed"],
        Query(alias="state", description="open: the inbox; expired: the review list (待复核)"),
    ] = "open",
    incident_id: Annotated[
        Text | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Open rows, gravest severity first, then the latest alarm first; or the rows of
    another state (``expired`` is the review list, latest expired first). Operators and
    commanders see live rows, planners exercise rows, admins both; ``exercise_id``
    narrows to one drill (planners and admins)."""
    if scope is not None and not allowed(who.role, Action.INBOX_READ, drill=True):
        raise await forbid(state, who, "inbox.read", f"{who.role} may not see exercise rows")
    return await service.list_rows(
        state, who, row_state=row_state, scope=scope, incident_id=incident_id, limit=limit
    )


async def _single(
    state: State,
    who: Principal,
    action: service.Action,
    row_id: str,
    *,
    incident_id: str | None = None,
    reason: str | None = None,
    note: str | None = None,
) -> ActOut:
    await _check_role(state, who, f"inbox.{action}", row_id)
    try:
        done = await service.act(
            state,
            who,
            action,
            [row_id],
            incident_id=incident_id,
            reason=reason,
            note=note,
            correlation=_CORRELATION,
            single=True,
        )
    except (DomainError, NotFound, service.RowNotFound) as exc:
        if isinstance(exc, Forbidden):
            await service.refuse(state, who, action, row_id, exc.reason)
        raise _http(exc) from None
    change = done.results[0].change
    assert change is not None
    return ActOut(
        row=InboxRowOut.model_validate(service.row_body(change.after, state.triage_rules)),
        incident=incident_body(done.incident) if done.incident is not None else None,
    )


@router.post(
    "/{row_id}/promote",
    response_model=ActOut,
    responses=ERRORS,
    dependencies=gate(Action.INBOX_PROMOTE, on=_ON_ROW),
)
async def promote(row_id: RowId, body: Promote, state: State, who: Caller) -> ActOut:
    """立事件: open an incident from the row's latest alarm; the row becomes ``promoted``."""
    return await _single(state, who, "promote", row_id, note=body.note)


@router.post(
    "/{row_id}/link",
    response_model=ActOut,
    responses=ERRORS,
    dependencies=gate(Action.INBOX_LINK, on=_ON_ROW),
)
async def link(row_id: RowId, body: Link, state: State, who: Caller) -> ActOut:
    """关联: attach the row to an open incident of the same scope (live, or its drill)."""
    return await _single(state, who, "link", row_id, incident_id=body.incident_id, note=body.note)


@router.post(
    "/{row_id}/dismiss",
    response_model=ActOut,
    responses=ERRORS,
    dependencies=gate(Action.INBOX_DISMISS, on=_ON_ROW),
)
async def dismiss(row_id: RowId, body: Dismiss, state: State, who: Caller) -> ActOut:
    """排除: with a reason (false_alarm 误报, duplicate 重复, test 测试, other 其他 + note)."""
    return await _single(state, who, "dismiss", row_id, reason=body.reason, note=body.note)


@router.post("/bulk", response_model=BulkOut, responses=ERRORS, dependencies=gate(Action.INBOX_BULK))
async def bulk(body: Bulk, state: State, who: Caller) -> BulkOut:
    """One action on many rows: each row gets its own result, in the order given (each id
    once); rows that cannot be acted on are refused one by one with the reason, the others
    go through. A bulk promote opens ONE incident from the first accepted row."""
    await _check_role(state, who, f"inbox.{body.action}")
    if body.action == "link" and body.incident_id is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a bulk link needs incident_id")
    if body.action == "dismiss" and body.reason is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a bulk dismiss needs reason")
    try:
        done = await service.act(
            state,
            who,
            body.action,
            body.row_ids,
            incident_id=body.incident_id,
            reason=body.reason,
            note=body.note,
            correlation=_CORRELATION,
        )
    except (DomainError, NotFound) as exc:
        raise _http(exc) from None
    rules = state.triage_rules
    return BulkOut(
        results=[
            BulkItem(
                row_id=r.row_id,
                ok=r.ok,
                row=InboxRowOut.model_validate(service.row_body(r.change.after, rules)) if r.change else None,
                refused=r.refused,
            )
            for r in done.results
        ],
        incident=incident_body(done.incident) if done.incident is not None else None,
    )
