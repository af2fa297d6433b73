"""信息报送 — reports to the upper level on an incident, their clocks, the figures, and
what comes back (receipts, instructions). See docs/duty-and-reporting.md.

The duty officer (operator) drafts and edits, the leader on duty (commander) approves
(签发), the centre sends; everyone in the centre reads the clocks; planners act on
drills only; field users get 403. A step that does not fit the report's state is 409;
a report lacking a required element cannot be approved (422, the elements named).
Every step is audited (``upward_report.*``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Path, status
from psycopg import AsyncConnection
from pydantic import AwareDatetime, Field

from command import audit
from command.deps import ON_INCIDENT, Caller, State, forbid, gate
from command.domain import reporting as rp
from command.domain.incidents import DomainError, Event, IllegalTransition, Incident
from command.domain.policy import Action, allowed
from command.domain.vocabulary import IncidentType
from command.inputs import FROM_TEXT, ClosedApiIn
from command.routes.scope import ScopeQuery
from command.security import Principal
from command.services import incident_store
from command.services import upward_reports as service
from command.services.incident_store import NotFound

router = APIRouter(tags=["upward reports"])

IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Number = Annotated[int, Path(ge=1, le=9999, description="第 n 报 of the incident")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not (see docs/duty-and-reporting.md)"},
    404: {"description": "no such incident or report"},
    409: {"description": "the step does not fit the report's state"},
    422: {"description": "invalid input, or required elements missing (named)"},
}
READ_ERRORS = {k: v for k, v in ERRORS.items() if k != 409}
MAX_LIST = 50


def now() -> datetime:
    return datetime.now(UTC)


class FiguresIn(ClosedApiIn):
    deaths: Annotated[int, Field(ge=0, le=10**6)] | None = None
    missing: Annotated[int, Field(ge=0, le=10**6)] | None = None
    injured: Annotated[int, Field(ge=0, le=10**6)] | None = None
    trapped: Annotated[int, Field(ge=0, le=10**6)] | None = None
    evacuated: Annotated[int, Field(ge=0, le=10**8)] | None = None
    direct_loss_10k_yuan: Annotated[float, Field(ge=0, le=10**9)] | None = None

    def figures(self) -> rp.Figures:
        return rp.Figures(**self.model_dump(include=set(rp.FIGURE_NAMES)))


class NewFigures(FiguresIn):
    source: Annotated[str, Field(max_length=200)] = ""


class NewReport(ClosedApiIn):
    kind: Annotated[rp.ReportKind, FROM_TEXT]
    channel: Annotated[rp.Channel, FROM_TEXT] = rp.Channel.WRITTEN


Long = Annotated[str, Field(max_length=rp.MAX_TEXT)]


class ContentEdit(ClosedApiIn):
    """A new version: the fields given replace the current version's, the rest stay."""

    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    occurred_at: Annotated[AwareDatetime, FROM_TEXT] | None = None
    place: Annotated[str, Field(max_length=400)] | None = None
    area_code: Annotated[str, Field(pattern=r"^\d{6}$")] | None = None
    incident_type: Annotated[IncidentType, FROM_TEXT] | None = None
    level: Annotated[int, Field(ge=1, le=4)] | None = None
    figures: FiguresIn | None = None
    cause: Long | None = None
    measures: Long | None = None
    teams: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100)] | None = None
    supplies: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100)] | None = None
    trend: Long | None = None
    aftermath: Long | None = None
    notes: Long | None = None
    note: Annotated[str, Field(max_length=500)] = ""


class ReceiptIn(ClosedApiIn):
    """回执 taken by hand (a phone report's, or one the platform did not send back)."""

    signed_by: Annotated[str, Field(min_length=1, max_length=64)]
    received_at: Annotated[AwareDatetime, FROM_TEXT] | None = None


class FollowUp(ClosedApiIn):
    passed_to: Annotated[str, Field(min_length=1, max_length=200)]
    follow_up: Literal["passed_on", "done"] = "passed_on"


def _http(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, IllegalTransition):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    if isinstance(exc, rp.MissingElements):
        return HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"reason": exc.reason, "missing": [str(e) for e in exc.lacking]},
        )
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


async def _incident(
    state: State,
    who: Principal,
    conn: AsyncConnection[Any],
    incident_id: str,
    action: Action,
    *,
    lock: bool = False,
) -> tuple[Incident, list[Event]]:
    """The incident, if the caller's role may do ``action`` in its scope (else 403)."""
    try:
        inc, events = await incident_store.load(conn, incident_id, for_update=lock)
    except NotFound as exc:
        raise _http(exc) from None
    if not allowed(who.role, action, drill=inc.is_exercise):
        where = "a drill's" if inc.is_exercise else "a live"
        raise await forbid(
            state, who, str(action), f"role {who.role} may not {action} on {where} incident",
            object_type="incident", object_id=incident_id,
        )  # fmt: skip
    return inc, events


def _one(stored: list[service.Stored], number: int) -> service.Stored:
    found = next((s for s in stored if s.report.number == number), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {number}")
    return found


@router.get("/reports/clocks", responses=READ_ERRORS, dependencies=gate(Action.UPWARD_CLOCKS))
async def clocks_board(state: State, who: Caller, scope: ScopeQuery) -> list[dict[str, Any]]:
    """Every report clock still running or overdue in the scope, most urgent first: the
    desk's and the wall's list. An overdue clock names the leader on duty it escalates to."""
    if not allowed(who.role, Action.UPWARD_CLOCKS, drill=scope.is_drill):
        raise await forbid(
            state, who, str(Action.UPWARD_CLOCKS), f"role {who.role} may not read {scope} clocks"
        )
    async with state.pool.connection() as conn:
        return await service.board(conn, service.rule_of(state.settings), scope, now())


@router.get("/reports/instructions", responses=READ_ERRORS, dependencies=gate(Action.UPWARD_INSTRUCTIONS))
async def list_instructions(state: State, who: Caller, scope: ScopeQuery) -> list[dict[str, Any]]:
    """上级批示 received, newest first, with whom they were passed to and their follow-up."""
    if not allowed(who.role, Action.UPWARD_INSTRUCTIONS, drill=scope.is_drill):
        raise await forbid(
            state, who, str(Action.UPWARD_INSTRUCTIONS), f"role {who.role} may not read {scope}"
        )
    async with state.pool.connection() as conn:
        return await service.instructions(conn, scope)


@router.post(
    "/reports/instructions/{instruction_id}/follow-up",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_DRAFT, on=("upward_instruction", "instruction_id")),
)
async def follow_up_instruction(
    instruction_id: Annotated[str, Path(min_length=1, max_length=80)],
    body: FollowUp,
    state: State,
    who: Caller,
) -> dict[str, Any]:
    """Passed on to someone (传达), or done (落实)."""
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT exercise_id FROM upward_instruction WHERE instruction_id = %s FOR UPDATE",
            (instruction_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no instruction {instruction_id}")
        if not allowed(who.role, Action.UPWARD_DRAFT, drill=row[0] is not None):
            raise await forbid(state, who, str(Action.UPWARD_DRAFT), f"role {who.role} may not act on it")
        await conn.execute(
            "UPDATE upward_instruction SET passed_to = %s, follow_up = %s WHERE instruction_id = %s",
            (body.passed_to, body.follow_up, instruction_id),
        )
        await audit.record(
            conn, who, "upward_report.instruction_follow_up", object_type="upward_instruction",
            object_id=instruction_id, detail=body.model_dump(),
        )  # fmt: skip
    return {"instruction_id": instruction_id, **body.model_dump()}


@router.get(
    "/incidents/{incident_id}/reports",
    responses=READ_ERRORS,
    dependencies=gate(Action.UPWARD_READ, on=ON_INCIDENT),
)
async def incident_reports(incident_id: IncidentId, state: State, who: Caller) -> dict[str, Any]:
    """The incident's reports (every version), its clocks under the centre's rule, and its
    figures with their history."""
    rule = service.rule_of(state.settings)
    at = now()
    async with state.pool.connection() as conn:
        inc, events = await _incident(state, who, conn, incident_id, Action.UPWARD_READ)
        stored = await service.reports_of(conn, incident_id)
        history = await service.figure_history(conn, incident_id)
        escalated = await service.escalations(conn, [incident_id])
        deliveries = await service.deliveries(conn, incident_id)
    clocks = rp.clocks(rule, service.facts(inc, events), service.sent_of(stored), at)
    return {
        "incident_id": incident_id,
        "rule": {
            "jurisdiction": rule.jurisdiction, "title": rule.title, "report_to": rule.report_to,
            "title_en": rule.title_en, "report_to_en": rule.report_to_en,
        },
        "covered": bool(clocks),
        "clocks": [service.clock_body(c, at, escalated.get((incident_id, c.key))) for c in clocks],
        "reports": [
            {**service.report_body(s), "delivery": deliveries.get(s.report.report_id)} for s in stored
        ],
        "figures": service.figures_body(history),
    }


@router.post(
    "/incidents/{incident_id}/figures",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_DRAFT, on=ON_INCIDENT),
)
async def record_figures(
    incident_id: IncidentId, body: NewFigures, state: State, who: Caller
) -> dict[str, Any]:
    """伤亡和损失 as now known: added to the history (never overwritten)."""
    async with state.pool.connection() as conn, conn.transaction():
        inc, _ = await _incident(state, who, conn, incident_id, Action.UPWARD_DRAFT)
        try:
            entry = rp.FigureEntry(now(), who.user_id, body.figures(), body.source)
        except DomainError as exc:
            raise _http(exc) from None
        await service.record_figures(conn, inc, entry, who)
        history = await service.figure_history(conn, incident_id)
    return service.figures_body(history)


@router.post(
    "/incidents/{incident_id}/reports",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_DRAFT, on=ON_INCIDENT),
)
async def draft_report(incident_id: IncidentId, body: NewReport, state: State, who: Caller) -> dict[str, Any]:
    """起草 a 首报, 续报 or 终报, filled from the incident's record (time, place, type and
    level, figures, plan and teams, supplies); a later report states what changed."""
    rule = service.rule_of(state.settings)
    try:
        async with state.pool.connection() as conn, conn.transaction():
            inc, _ = await _incident(state, who, conn, incident_id, Action.UPWARD_DRAFT, lock=True)
            stored = await service.reports_of(conn, incident_id, for_update=True)
            earlier = [s.report for s in stored]
            try:
                content = await service.draft_content(conn, state.settings, inc)
                report = rp.draft(
                    incident_id=incident_id, kind=body.kind, channel=body.channel, content=content,
                    earlier=earlier, by=who.user_id, at=now(),
                )  # fmt: skip
            except DomainError as exc:
                raise _http(exc) from None
            changes = service.changes_for(report, earlier, content)
            await service.insert(conn, report, inc=inc, jurisdiction=rule.jurisdiction, changes=changes)
            await service.step_audit(conn, who, "draft", report, kind=str(report.kind))
            stored = await service.reports_of(conn, incident_id)
    except psycopg.errors.UniqueViolation:  # two desks drafting the same report at once
        raise HTTPException(status.HTTP_409_CONFLICT, "a report was drafted meanwhile: reload") from None
    return service.report_body(_one(stored, report.number))


# before {number}.json, whose pattern would take "1.eido" for the number
@router.get(
    "/incidents/{incident_id}/reports/{number}.eido.json",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_READ, on=ON_INCIDENT),
)
async def report_eido(incident_id: IncidentId, number: Number, state: State, who: Caller) -> dict[str, Any]:
    """The report as NENA EIDO JSON (its approved version; a draft's current one)."""
    async with state.pool.connection() as conn:
        await _incident(state, who, conn, incident_id, Action.UPWARD_READ)
        stored = await service.reports_of(conn, incident_id)
    return service.eido(state.settings, _one(stored, number))


@router.get(
    "/incidents/{incident_id}/reports/{number}.json",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_READ, on=ON_INCIDENT),
)
async def report_form(incident_id: IncidentId, number: Number, state: State, who: Caller) -> dict[str, Any]:
    """The exchange form (GB/T 35965.2-modelled, docs/schemas/exchange/event-report.schema.json)
    of an approved report, as it goes (or went) to the upper level; a draft has none (409)."""
    async with state.pool.connection() as conn:
        await _incident(state, who, conn, incident_id, Action.UPWARD_READ)
        stored = await service.reports_of(conn, incident_id)
    s = _one(stored, number)
    previous = rp.last_sent([x.report for x in stored], number)
    try:
        return service.exchange_form(state.settings, service.rule_of(state.settings), s, previous)
    except DomainError as exc:
        raise _http(exc) from None


@router.get(
    "/incidents/{incident_id}/reports/{number}",
    responses=READ_ERRORS,
    dependencies=gate(Action.UPWARD_READ, on=ON_INCIDENT),
)
async def get_report(incident_id: IncidentId, number: Number, state: State, who: Caller) -> dict[str, Any]:
    async with state.pool.connection() as conn:
        await _incident(state, who, conn, incident_id, Action.UPWARD_READ)
        stored = await service.reports_of(conn, incident_id)
        deliveries = await service.deliveries(conn, incident_id)
    s = _one(stored, number)
    return {**service.report_body(s), "delivery": deliveries.get(s.report.report_id)}


async def _act(
    state: State,
    who: Principal,
    incident_id: str,
    number: int,
    action: Action,
    step: str,
    decide: Any,
) -> dict[str, Any]:
    """One step on one report: the incident and its reports locked, decided, stored, audited."""
    async with state.pool.connection() as conn, conn.transaction():
        inc, _ = await _incident(state, who, conn, incident_id, action, lock=True)
        stored = await service.reports_of(conn, incident_id, for_update=True)
        s = _one(stored, number)
        try:
            after, changes = await decide(conn, inc, s, [x.report for x in stored])
        except DomainError as exc:
            raise _http(exc) from None
        if len(after.versions) > len(s.report.versions):
            await service.add_version(conn, after, changes)
        await service.save_state(conn, after)
        await service.step_audit(conn, who, step, after)
        stored = await service.reports_of(conn, incident_id)
        deliveries = await service.deliveries(conn, incident_id)
    done = _one(stored, number)
    return {**service.report_body(done), "delivery": deliveries.get(done.report.report_id)}


def _edited(current: rp.Content, body: ContentEdit) -> rp.Content:
    given = body.model_dump(exclude_unset=True, exclude={"note"})
    merged = service.content_json(current)
    for name, value in given.items():
        if name == "figures" and value is not None:
            merged["figures"] = value
        elif name == "occurred_at" and value is not None:
            merged[name] = value.isoformat()
        elif value is not None:
            merged[name] = str(value) if name == "incident_type" else value
    return service.content_of(merged)


@router.patch(
    "/incidents/{incident_id}/reports/{number}",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_DRAFT, on=ON_INCIDENT),
)
async def edit_report(
    incident_id: IncidentId, number: Number, body: ContentEdit, state: State, who: Caller
) -> dict[str, Any]:
    """修改: a new version (the earlier ones are kept as they were); drafts only."""

    async def decide(
        conn: AsyncConnection[Any], inc: Incident, s: service.Stored, earlier: list[rp.Report]
    ) -> tuple[rp.Report, list[rp.Change]]:
        content = _edited(s.report.current.content, body)
        after = rp.edit(s.report, content, by=who.user_id, at=now(), note=body.note)
        return after, service.changes_for(after, earlier, content)

    return await _act(state, who, incident_id, number, Action.UPWARD_DRAFT, "edit", decide)


@router.post(
    "/incidents/{incident_id}/reports/{number}/approve",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_APPROVE, on=ON_INCIDENT),
)
async def approve_report(
    incident_id: IncidentId, number: Number, state: State, who: Caller
) -> dict[str, Any]:
    """签发 by the leader on duty: the current version, once it has every required element."""
    rule = service.rule_of(state.settings)

    async def decide(
        conn: AsyncConnection[Any], inc: Incident, s: service.Stored, earlier: list[rp.Report]
    ) -> tuple[rp.Report, list[rp.Change]]:
        earlier_sent = rp.last_sent(earlier, s.report.number) is not None
        return rp.approve(s.report, rule, earlier_sent=earlier_sent, by=who.user_id, at=now()), []

    return await _act(state, who, incident_id, number, Action.UPWARD_APPROVE, "approve", decide)


@router.post(
    "/incidents/{incident_id}/reports/{number}/send",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_SEND, on=ON_INCIDENT),
)
async def send_report(incident_id: IncidentId, number: Number, state: State, who: Caller) -> dict[str, Any]:
    """发送 an approved report: a written one into the outbox to the upper level's platform
    (the form, keyed by the report id); a phone report is recorded as made."""
    rule = service.rule_of(state.settings)

    async def decide(
        conn: AsyncConnection[Any], inc: Incident, s: service.Stored, earlier: list[rp.Report]
    ) -> tuple[rp.Report, list[rp.Change]]:
        at = now()
        after = rp.mark_sent(s.report, at=at)
        sent = service.Stored(after, s.exercise_id, s.jurisdiction, s.changes)
        if after.channel is rp.Channel.WRITTEN:
            form = service.exchange_form(state.settings, rule, sent, rp.last_sent(earlier, after.number))
            await service.queue(conn, after.report_id, form, at)
        await service.log_sent(conn, rule, sent, inc.title)
        return after, []

    return await _act(state, who, incident_id, number, Action.UPWARD_SEND, "send", decide)


@router.post(
    "/incidents/{incident_id}/reports/{number}/receipt",
    responses=ERRORS,
    dependencies=gate(Action.UPWARD_RECEIPT, on=ON_INCIDENT),
)
async def record_receipt(
    incident_id: IncidentId, number: Number, body: ReceiptIn, state: State, who: Caller
) -> dict[str, Any]:
    """回执 entered by hand: who at the upper level took the report, and when."""

    async def decide(
        conn: AsyncConnection[Any], inc: Incident, s: service.Stored, earlier: list[rp.Report]
    ) -> tuple[rp.Report, list[rp.Change]]:
        after = rp.acknowledge(s.report, by=body.signed_by, at=body.received_at or now())
        if after != s.report:
            await service.log_receipt(conn, s.exercise_id, after, f"{after.report_id}:manual")
        return after, []

    return await _act(state, who, incident_id, number, Action.UPWARD_RECEIPT, "receipt", decide)
