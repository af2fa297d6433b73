"""/duty: the duty desk (值班值守) — the centre's duty roster (带班领导 and 值班员 per
shift), the duty log (值班日志) with free entries and its exports, the leader's
instructions (领导批示) and their follow-up, the signed shift handover (交接班).

Every route names its action (command/domain/policy.py) and is checked again for the
scope it acts on: live for the centre, a drill's desk (``exercise_id``) for planners
too. Refusals are audited (403); bad input is 422 with the reason; a step out of turn
(a second signature of the same side, an instruction advanced twice) is 409. See
docs/duty-and-reporting.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from command.deps import Caller, State, forbid, gate
from command.domain import duty as rules
from command.domain.incidents import DomainError, Forbidden, IllegalTransition
from command.domain.policy import Action, allowed
from command.inputs import FROM_TEXT, ClosedApiIn, Day, ExerciseIdText
from command.routes.scope import ScopeQuery
from command.security import Principal
from command.services import duty as service
from command.services import duty_render as render
from command.services.incident_store import NotFound
from command.services.report_render import parse_lang
from wuwang.scope import Scope

router = APIRouter(prefix="/duty", tags=["duty desk"])

ShiftId = Annotated[str, Path(pattern=r"^DS-[0-9A-Za-z-]{4,60}$", description="a duty shift's id, DS-…")]
InstructionId = Annotated[
    str, Path(pattern=r"^DI-[0-9A-Za-z-]{4,60}$", description="an instruction's id, DI-…")
]
HandoverId = Annotated[str, Path(pattern=r"^DH-[0-9A-Za-z-]{4,60}$", description="a handover's id, DH-…")]
UserId = Annotated[str, Field(min_length=1, max_length=64)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "this role may not, in this scope (or the signer is not on that shift)"},
    404: {"description": "no such shift, instruction or handover"},
    409: {"description": "out of turn: overlapping shift, step already taken, handover already signed"},
    422: {"description": "invalid input (the reason says which)"},
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {k: ERRORS[k] for k in (401, 403, 404, 422)}


class ShiftIn(ClosedApiIn):
    starts_at: Annotated[AwareDatetime, FROM_TEXT]
    ends_at: Annotated[AwareDatetime, FROM_TEXT]
    leader: UserId = Field(description="带班领导: a commander's user id")
    officers: list[UserId] = Field(
        min_length=1, max_length=rules.MAX_OFFICERS, description="值班员: operators"
    )


class NewShift(ShiftIn):
    exercise_id: ExerciseIdText | None = Field(default=None, description="a drill's desk")


class FreeEntry(ClosedApiIn):
    text: Annotated[
        str, Field(min_length=1, max_length=rules.MAX_TEXT, description="值班日志: what happened")
    ]
    exercise_id: ExerciseIdText | None = None


class NewInstruction(ClosedApiIn):
    issued_by: Annotated[str, Field(min_length=1, max_length=rules.MAX_NAME, description="who gave it")]
    text: Annotated[str, Field(min_length=1, max_length=rules.MAX_TEXT, description="领导批示")]
    incident_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    exercise_id: ExerciseIdText | None = None


class InstructionStep(ClosedApiIn):
    to: Annotated[rules.InstructionState, FROM_TEXT]
    passed_to: list[Annotated[str, Field(min_length=1, max_length=rules.MAX_NAME)]] = Field(
        default_factory=list, max_length=rules.MAX_PASSED_TO
    )
    follow_up: Annotated[str, Field(max_length=rules.MAX_TEXT)] = ""


class NewHandover(ClosedApiIn):
    outgoing_shift_id: Annotated[str, Field(pattern=r"^DS-[0-9A-Za-z-]{4,60}$")] | None = Field(
        default=None, description="default: the shift on duty now"
    )
    incoming_shift_id: Annotated[str, Field(pattern=r"^DS-[0-9A-Za-z-]{4,60}$")] | None = Field(
        default=None, description="default: the shift after the outgoing one"
    )
    follow_items: list[Annotated[str, Field(max_length=rules.MAX_FOLLOW_ITEM)]] = Field(
        default_factory=list, max_length=rules.MAX_FOLLOW_ITEMS
    )
    notes: Annotated[str, Field(max_length=rules.MAX_NOTES)] = ""
    exercise_id: ExerciseIdText | None = None


class Person(BaseModel):
    user_id: str
    name: str


class ShiftOut(BaseModel):
    shift_id: str
    exercise_id: str | None
    starts_at: str
    ends_at: str
    leader: Person
    officers: list[Person]
    on_duty: bool
    set_by: str


class OnDutyOut(BaseModel):
    at: str
    current: ShiftOut | None
    next: ShiftOut | None


class EntryOut(BaseModel):
    entry_id: int | None
    exercise_id: str | None
    at: str
    kind: str
    ref: str | None
    text: str
    actor: str
    detail: dict[str, Any]


class PersonOut(BaseModel):
    name: str
    role: str


class LogOut(BaseModel):
    start: str
    end: str
    shifts: list[ShiftOut]
    entries: list[EntryOut]
    #: who wrote the entries (by user id): name and role, for the "by" column
    actors: dict[str, PersonOut]


class InstructionOut(BaseModel):
    instruction_id: str
    exercise_id: str | None
    received_at: str
    issued_by: str
    text: str
    incident_id: str | None
    passed_to: list[str]
    state: str
    next_state: str | None
    follow_up: str
    recorded_by: str
    updated_by: str
    updated_at: str
    overdue: bool


class HandoverOut(BaseModel):
    handover_id: str
    exercise_id: str | None
    outgoing: ShiftOut
    incoming: ShiftOut
    drawn_up_by: str
    drawn_up_at: str
    snapshot: dict[str, Any]
    notes: str
    outgoing_signed_by: str | None
    outgoing_signed_at: str | None
    incoming_signed_by: str | None
    incoming_signed_at: str | None
    sealed: bool


def _http(exc: DomainError | NotFound) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, IllegalTransition):
        return HTTPException(status.HTTP_409_CONFLICT, exc.reason)
    if isinstance(exc, Forbidden):
        return HTTPException(status.HTTP_403_FORBIDDEN, exc.reason)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason)


async def _may(
    state: State,
    who: Principal,
    action: Action,
    scope: Scope,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
) -> None:
    """The policy for this scope: live for the centre, a drill's desk for planners too."""
    if not allowed(who.role, action, drill=scope.is_drill):
        where = "a drill's duty desk" if scope.is_drill else "the live duty desk"
        raise await forbid(
            state,
            who,
            str(action),
            f"role {who.role} may not {action} on {where}",
            object_type=object_type,
            object_id=object_id,
        )


async def _refused(
    state: State, who: Principal, action: Action, exc: Forbidden, kind: str, oid: str
) -> HTTPException:
    return await forbid(state, who, str(action), exc.reason, object_type=kind, object_id=oid)


def _tz(state: State) -> ZoneInfo:
    return ZoneInfo(state.settings.command.timezone)


async def _names(conn: Any, shifts: list[rules.DutyShift]) -> dict[str, str]:
    return await service.display_names(conn, sorted({u for s in shifts for u in s.members}))


# --- the roster ----------------------------------------------------------------------------


@router.get("/now", response_model=OnDutyOut, responses=READ_ERRORS, dependencies=gate(Action.DUTY_READ))
async def on_duty(state: State, who: Caller, scope: ScopeQuery) -> dict[str, Any]:
    """Who is on duty now (带班领导, 值班员) and who takes over next: the desk and the wall."""
    await _may(state, who, Action.DUTY_READ, scope)
    now = service.now()
    async with state.pool.connection() as conn:
        shifts = await service.shifts_between(conn, scope, now - rules.MAX_SHIFT, now + 2 * rules.MAX_SHIFT)
        names = await _names(conn, shifts)
    current = rules.current_shift(shifts, now)
    following = (
        rules.next_shift(shifts, current)
        if current
        else min((s for s in shifts if s.starts_at > now), key=lambda s: s.starts_at, default=None)
    )
    return {
        "at": now.isoformat(),
        "current": None if current is None else service.shift_body(current, names, now),
        "next": None if following is None else service.shift_body(following, names, now),
    }


@router.get(
    "/shifts", response_model=list[ShiftOut], responses=READ_ERRORS, dependencies=gate(Action.DUTY_READ)
)
async def list_shifts(
    state: State,
    who: Caller,
    scope: ScopeQuery,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="default: a day ago")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="default: two days ahead")] = None,
) -> list[dict[str, Any]]:
    """The duty roster (值班表) of live operations or one drill."""
    await _may(state, who, Action.DUTY_READ, scope)
    now = service.now()
    start, end = start or now - timedelta(days=1), end or now + timedelta(days=2)
    if end <= start or end - start > timedelta(days=62):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "from must be before to, at most 62 days apart"
        )
    async with state.pool.connection() as conn:
        shifts = await service.shifts_between(conn, scope, start, end)
        names = await _names(conn, shifts)
    return [service.shift_body(s, names, now) for s in shifts]


async def _set_shift(
    state: State, who: Principal, shift_id: str, body: ShiftIn, scope: Scope, *, replacing: bool
) -> dict[str, Any]:
    now = service.now()
    async with state.pool.connection() as conn, conn.transaction():
        roles = await service.user_roles(conn, [body.leader, *body.officers])
        try:
            shift = rules.plan_shift(
                shift_id=shift_id,
                exercise_id=scope.exercise_id,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                leader=body.leader,
                officers=body.officers,
                roles=roles,
                set_by=who.user_id,
            )
            await service.lock_roster(conn, scope)
            others = await service.shifts_between(conn, scope, shift.starts_at, shift.ends_at)
            rules.check_no_overlap(shift, others)
        except DomainError as exc:
            raise _http(exc) from None
        await service.save_shift(conn, shift, who, replacing=replacing)
        names = await _names(conn, [shift])
    return service.shift_body(shift, names, now)


@router.post(
    "/shifts",
    response_model=ShiftOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_ROSTER_SET),
)
async def create_shift(body: NewShift, state: State, who: Caller) -> dict[str, Any]:
    """排班: a shift with its leader on duty (a commander) and one or two duty officers."""
    scope = Scope.of(body.exercise_id)
    await _may(state, who, Action.DUTY_ROSTER_SET, scope)
    return await _set_shift(state, who, service.new_id("DS", service.now()), body, scope, replacing=False)


@router.put(
    "/shifts/{shift_id}",
    response_model=ShiftOut,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_ROSTER_SET, on=("duty_shift", "shift_id")),
)
async def change_shift(shift_id: ShiftId, body: ShiftIn, state: State, who: Caller) -> dict[str, Any]:
    """换班: change a shift's people or times (its scope stays)."""
    async with state.pool.connection() as conn:
        try:
            old = await service.get_shift(conn, shift_id)
        except NotFound as exc:
            raise _http(exc) from None
    scope = Scope.of(old.exercise_id)
    await _may(state, who, Action.DUTY_ROSTER_SET, scope, object_type="duty_shift", object_id=shift_id)
    return await _set_shift(state, who, shift_id, body, scope, replacing=True)


# --- the duty log ------------------------------------------------------------------------


async def _period(state: State, scope: Scope, shift_id: str | None, day: date | None) -> render.LogPeriod:
    """The entries of one shift (``shift_id``), one day (``day``, the centre's time zone)
    or, without either, of the shift on duty now (today when nobody is)."""
    now = service.now()
    async with state.pool.connection() as conn:
        shift: rules.DutyShift | None = None
        if shift_id is not None:
            try:
                shift = await service.get_shift(conn, shift_id)
            except NotFound as exc:
                raise _http(exc) from None
            if shift.exercise_id != scope.exercise_id:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no duty shift {shift_id} in {scope}")
        elif day is None:
            shift = rules.current_shift(
                await service.shifts_between(conn, scope, now - rules.MAX_SHIFT, now + timedelta(seconds=1)),
                now,
            )
        if shift is not None:
            start, end, title, shifts = shift.starts_at, shift.ends_at, shift.shift_id, [shift]
        else:
            local = datetime.combine(
                day or now.astimezone(_tz(state)).date(), datetime.min.time(), _tz(state)
            )
            start, end = rules.shift_day(local)
            title = f"{start:%Y-%m-%d}"
            shifts = await service.shifts_between(conn, scope, start, end)
        entries = await service.entries_between(conn, scope, start, end)
        people = await service.people(conn, sorted({e.actor for e in entries}))
    return render.LogPeriod(title, start, end, entries, shifts, people)


ShiftQuery = Annotated[str | None, Query(pattern=r"^DS-[0-9A-Za-z-]{4,60}$", description="one shift's log")]
DayQuery = Annotated[Day | None, Query(description="one day's log (YYYY-MM-DD, the centre's time zone)")]
LangQuery = Annotated[Literal["zh", "en", "zh-CN"], Query(description="the file's language")]


@router.get("/log", response_model=LogOut, responses=READ_ERRORS, dependencies=gate(Action.DUTY_READ))
async def read_log(
    state: State, who: Caller, scope: ScopeQuery, shift_id: ShiftQuery = None, day: DayQuery = None
) -> dict[str, Any]:
    """值班日志: one shift's (default: the shift on duty) or one day's entries, in time order."""
    await _may(state, who, Action.DUTY_READ, scope)
    period = await _period(state, scope, shift_id, day)
    now = service.now()
    async with state.pool.connection() as conn:
        names = await _names(conn, list(period.shifts))
    return {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "shifts": [service.shift_body(s, names, now) for s in period.shifts],
        "entries": [service.entry_body(e) for e in period.entries],
        "actors": period.people,
    }


_FILE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


#: What /duty/log.csv answers, documented as such (not the default JSON).
CSV_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the duty log, one row per entry (UTF-8 with BOM, local time)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/log.csv",
    response_class=Response,
    responses={**CSV_OK, **READ_ERRORS},
    dependencies=gate(Action.DUTY_READ),
)
async def export_log_csv(
    state: State,
    who: Caller,
    scope: ScopeQuery,
    shift_id: ShiftQuery = None,
    day: DayQuery = None,
    lang: LangQuery = "zh",
) -> Response:
    """The duty log as CSV (UTF-8 with BOM, local time)."""
    await _may(state, who, Action.DUTY_READ, scope)
    period = await _period(state, scope, shift_id, day)
    return Response(
        render.to_csv(period, parse_lang(lang), _tz(state)),
        media_type="text/csv; charset=utf-8",
        headers={
            **_FILE_HEADERS,
            "Content-Disposition": f'attachment; filename="{render.filename(period, "csv")}"',
        },
    )


@router.get(
    "/log.html", response_class=HTMLResponse, responses=READ_ERRORS, dependencies=gate(Action.DUTY_READ)
)
async def export_log_html(
    state: State,
    who: Caller,
    scope: ScopeQuery,
    shift_id: ShiftQuery = None,
    day: DayQuery = None,
    lang: LangQuery = "zh",
) -> HTMLResponse:
    """The duty log as a page to print and sign."""
    await _may(state, who, Action.DUTY_READ, scope)
    period = await _period(state, scope, shift_id, day)
    async with state.pool.connection() as conn:
        names = await _names(conn, list(period.shifts))
    return HTMLResponse(render.to_html(period, parse_lang(lang), _tz(state), names), headers=_FILE_HEADERS)


@router.post(
    "/log",
    response_model=EntryOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_LOG_WRITE),
)
async def write_log(body: FreeEntry, state: State, who: Caller) -> dict[str, Any]:
    """A duty officer's own entry (值班记录)."""
    scope = Scope.of(body.exercise_id)
    await _may(state, who, Action.DUTY_LOG_WRITE, scope)
    try:
        entry = rules.log_entry(
            at=service.now(),
            kind=rules.EntryKind.FREE,
            text=body.text,
            actor=who.user_id,
            exercise_id=scope.exercise_id,
        )
    except DomainError as exc:
        raise _http(exc) from None
    async with state.pool.connection() as conn, conn.transaction():
        entry_id = await service.add_free_entry(conn, entry, who)
    return service.entry_body(replace(entry, entry_id=entry_id))


# --- instructions (领导批示) ---------------------------------------------------------------


@router.get(
    "/instructions",
    response_model=list[InstructionOut],
    responses=READ_ERRORS,
    dependencies=gate(Action.DUTY_READ),
)
async def list_instructions(
    state: State,
    who: Caller,
    scope: ScopeQuery,
    pending: Annotated[bool, Query(description="only those not done yet")] = False,
) -> list[dict[str, Any]]:
    """The leader's instructions, the newest first, with their follow-up."""
    await _may(state, who, Action.DUTY_READ, scope)
    now = service.now()
    async with state.pool.connection() as conn:
        found = await service.instructions(conn, scope, pending_only=pending)
    return [service.instruction_body(i, now) for i in found]


@router.post(
    "/instructions",
    response_model=InstructionOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_INSTRUCTION),
)
async def record_instruction(body: NewInstruction, state: State, who: Caller) -> dict[str, Any]:
    """领导批示 received: recorded open, and in the duty log."""
    scope = Scope.of(body.exercise_id)
    await _may(state, who, Action.DUTY_INSTRUCTION, scope)
    now = service.now()
    try:
        instruction = rules.receive_instruction(
            instruction_id=service.new_id("DI", now),
            exercise_id=scope.exercise_id,
            received_at=now,
            issued_by=body.issued_by,
            text=body.text,
            recorded_by=who.user_id,
            incident_id=body.incident_id,
        )
    except DomainError as exc:
        raise _http(exc) from None
    async with state.pool.connection() as conn, conn.transaction():
        await service.insert_instruction(conn, instruction, who)
    return service.instruction_body(instruction, now)


@router.post(
    "/instructions/{instruction_id}/advance",
    response_model=InstructionOut,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_INSTRUCTION, on=("duty_instruction", "instruction_id")),
)
async def advance_instruction(
    instruction_id: InstructionId, body: InstructionStep, state: State, who: Caller
) -> dict[str, Any]:
    """The next step: passed on (to whom), followed up (what was done), done."""
    now = service.now()
    async with state.pool.connection() as conn, conn.transaction():
        try:
            before = await service.get_instruction_for_update(conn, instruction_id)
        except NotFound as exc:
            raise _http(exc) from None
        await _may(
            state,
            who,
            Action.DUTY_INSTRUCTION,
            Scope.of(before.exercise_id),
            object_type="duty_instruction",
            object_id=instruction_id,
        )
        try:
            after = rules.advance_instruction(
                before, body.to, by=who.user_id, at=now, passed_to=body.passed_to, follow_up=body.follow_up
            )
        except DomainError as exc:
            raise _http(exc) from None
        await service.save_instruction_step(conn, after, who)
    return service.instruction_body(after, now)


# --- handovers (交接班) ---------------------------------------------------------------------


async def _handover_out(state: State, h: rules.Handover) -> dict[str, Any]:
    async with state.pool.connection() as conn:
        names = await _names(conn, [h.outgoing, h.incoming])
    return service.handover_body(h, names, service.now())


@router.get(
    "/handovers", response_model=list[HandoverOut], responses=READ_ERRORS, dependencies=gate(Action.DUTY_READ)
)
async def list_handovers(state: State, who: Caller, scope: ScopeQuery) -> list[dict[str, Any]]:
    """The latest handovers, the newest first."""
    await _may(state, who, Action.DUTY_READ, scope)
    now = service.now()
    async with state.pool.connection() as conn:
        found = await service.handovers(conn, scope)
        names = await _names(conn, [s for h in found for s in (h.outgoing, h.incoming)])
    return [service.handover_body(h, names, now) for h in found]


@router.get(
    "/handovers/{handover_id}",
    response_model=HandoverOut,
    responses=READ_ERRORS,
    dependencies=gate(Action.DUTY_READ, on=("duty_handover", "handover_id")),
)
async def read_handover(handover_id: HandoverId, state: State, who: Caller) -> dict[str, Any]:
    async with state.pool.connection() as conn:
        try:
            h = await service.get_handover(conn, handover_id)
        except NotFound as exc:
            raise _http(exc) from None
    await _may(
        state,
        who,
        Action.DUTY_READ,
        Scope.of(h.exercise_id),
        object_type="duty_handover",
        object_id=handover_id,
    )
    return await _handover_out(state, h)


@router.post(
    "/handovers",
    response_model=HandoverOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_HANDOVER_DRAW),
)
async def draw_up_handover(body: NewHandover, state: State, who: Caller) -> dict[str, Any]:
    """交接班: what is open, overdue and to follow, as it is now; then both shifts sign."""
    scope = Scope.of(body.exercise_id)
    await _may(state, who, Action.DUTY_HANDOVER_DRAW, scope)
    now = service.now()
    async with state.pool.connection() as conn, conn.transaction():
        try:
            shifts = await service.shifts_between(
                conn, scope, now - rules.MAX_SHIFT, now + 2 * rules.MAX_SHIFT
            )
            outgoing = (
                await service.get_shift(conn, body.outgoing_shift_id)
                if body.outgoing_shift_id
                else rules.current_shift(shifts, now)
            )
            if outgoing is None or outgoing.exercise_id != scope.exercise_id:
                raise NotFound("no outgoing shift (nobody is on duty now in this scope)")
            incoming = (
                await service.get_shift(conn, body.incoming_shift_id)
                if body.incoming_shift_id
                else rules.next_shift(shifts, outgoing)
            )
            if incoming is None:
                raise NotFound("no incoming shift after the outgoing one")
            snapshot = await service.what_is_open(conn, scope, now, body.follow_items)
            handover = rules.draw_up_handover(
                handover_id=service.new_id("DH", now),
                outgoing=outgoing,
                incoming=incoming,
                by=who.user_id,
                at=now,
                snapshot=snapshot,
                notes=body.notes,
            )
        except Forbidden as exc:
            raise await _refused(state, who, Action.DUTY_HANDOVER_DRAW, exc, "duty_handover", "") from None
        except (DomainError, NotFound) as exc:
            raise _http(exc) from None
        await service.insert_handover(conn, handover, who)
    return await _handover_out(state, handover)


@router.post(
    "/handovers/{handover_id}/sign",
    response_model=HandoverOut,
    responses=ERRORS,
    dependencies=gate(Action.DUTY_HANDOVER_SIGN, on=("duty_handover", "handover_id")),
)
async def sign_handover(handover_id: HandoverId, state: State, who: Caller) -> dict[str, Any]:
    """签字: the caller signs for the shift they are on (outgoing first); the second
    signature seals the handover."""
    now = service.now()
    async with state.pool.connection() as conn, conn.transaction():
        try:
            before = await service.get_handover(conn, handover_id, lock=True)
        except NotFound as exc:
            raise _http(exc) from None
        await _may(
            state,
            who,
            Action.DUTY_HANDOVER_SIGN,
            Scope.of(before.exercise_id),
            object_type="duty_handover",
            object_id=handover_id,
        )
        try:
            side = rules.side_of(before, who.user_id)
            after = rules.sign_handover(before, side, by=who.user_id, at=now)
        except Forbidden as exc:
            raise await _refused(
                state, who, Action.DUTY_HANDOVER_SIGN, exc, "duty_handover", handover_id
            ) from None
        except DomainError as exc:
            raise _http(exc) from None
        await service.save_signature(
            conn, after, side, who, await _names(conn, [after.outgoing, after.incoming])
        )
    return await _handover_out(state, after)
