"""值班值守 — the duty desk of the command centre (pure: no I/O).

A command centre keeps a leader on duty (带班领导, a commander) and one or two duty
officers (值班员, operators) around the clock, working 接、报、传、跟 — receive, report,
pass on, follow up. This module holds its rules:

- **the duty roster**: shifts are absolute, timezone-aware intervals (as the teams'
  rosters, command/domain/rosters.py: a night shift simply ends the next day); the shifts
  of one scope never overlap, and the current shift is the one covering ``now`` (start
  inclusive, end exclusive);
- **the duty log** (值班日志): what kinds of entry there are (:class:`EntryKind`);
  automatic entries carry the id of what they are about, so a replay writes nothing twice;
- **the leader's instructions** (领导批示): open → passed on → followed up → done, one step
  at a time, passing on needs whom to, following up needs what was done;
- **the handover** (交接班): what is open, what is overdue and what the next shift must
  follow, signed by one member of the outgoing and one of the incoming shift; once both
  have signed, nothing changes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from command.domain.incidents import Forbidden, IllegalTransition, InvalidCommand

#: A shift is at most a day long: a 24-hour shift (一天一班) is the longest there is.
MAX_SHIFT = timedelta(hours=24)
MAX_OFFICERS = 2
MAX_TEXT = 2000
MAX_NOTES = 4000
MAX_FOLLOW_ITEMS = 20
MAX_FOLLOW_ITEM = 300
MAX_PASSED_TO = 10
MAX_NAME = 100
#: An instruction not yet followed up this long after it came in is overdue (跟踪落实).
FOLLOW_UP_WITHIN = timedelta(hours=2)
#: An incident still unverified (待核实) this long after it was opened is overdue.
VERIFY_WITHIN = timedelta(minutes=30)


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidCommand(f"{name} must carry a time zone, got {value.isoformat()}")


def _text(name: str, value: str, limit: int, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidCommand(f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidCommand(f"{name} is longer than {limit} characters")
    return value


# --- the duty roster ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DutyShift:
    """One shift of the centre: its leader on duty and its duty officers."""

    shift_id: str
    exercise_id: str | None
    starts_at: datetime
    ends_at: datetime
    leader: str  # 带班领导: a commander's user id
    officers: tuple[str, ...]  # 值班员: one or two operators' user ids
    set_by: str = ""

    @property
    def members(self) -> tuple[str, ...]:
        return (self.leader, *self.officers)

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def has(self, user_id: str) -> bool:
        return user_id in self.members


def plan_shift(
    *,
    shift_id: str,
    exercise_id: str | None,
    starts_at: datetime,
    ends_at: datetime,
    leader: str,
    officers: Sequence[str],
    roles: Mapping[str, str],
    set_by: str,
) -> DutyShift:
    """A new shift, checked: times with a zone, at most a day, a leader who is a commander,
    one or two duty officers who are operators, nobody twice. ``roles``: user id → role
    of every user named (a name missing from it is not a user)."""
    _aware("shift start", starts_at)
    _aware("shift end", ends_at)
    if ends_at <= starts_at:
        raise InvalidCommand("a shift must end after it starts")
    if ends_at - starts_at > MAX_SHIFT:
        raise InvalidCommand("a shift is at most 24 hours long")
    officers = tuple(officers)
    if not 1 <= len(officers) <= MAX_OFFICERS:
        raise InvalidCommand("a shift has one or two duty officers")
    if len({leader, *officers}) != 1 + len(officers):
        raise InvalidCommand("a person is on a shift once: as its leader or as a duty officer")
    for user in (leader, *officers):
        if user not in roles:
            raise InvalidCommand(f"no user {user}")
    if roles[leader] != "commander":
        raise InvalidCommand(f"the leader on duty must be a commander: {leader} is not")
    for user in officers:
        if roles[user] != "operator":
            raise InvalidCommand(f"a duty officer must be an operator: {user} is not")
    return DutyShift(shift_id, exercise_id, starts_at, ends_at, leader, officers, set_by)


def check_no_overlap(shift: DutyShift, others: Iterable[DutyShift]) -> None:
    """The shifts of one scope do not overlap (one shift may replace itself)."""
    for other in others:
        if other.shift_id == shift.shift_id or other.exercise_id != shift.exercise_id:
            continue
        if other.starts_at < shift.ends_at and shift.starts_at < other.ends_at:
            raise IllegalTransition(f"the shift overlaps shift {other.shift_id}")


def current_shift(shifts: Iterable[DutyShift], at: datetime) -> DutyShift | None:
    """The shift on duty at ``at`` (none: nobody is rostered then)."""
    return next((s for s in sorted(shifts, key=lambda s: s.starts_at) if s.covers(at)), None)


def next_shift(shifts: Iterable[DutyShift], after: DutyShift) -> DutyShift | None:
    """The shift that takes over from ``after`` (the first starting at or after its end)."""
    later = [s for s in shifts if s.starts_at >= after.ends_at and s.exercise_id == after.exercise_id]
    return min(later, key=lambda s: s.starts_at, default=None)


def shift_day(at: datetime, day_start_hour: int = 0) -> tuple[datetime, datetime]:
    """The day (00:00 to 00:00 in ``at``'s own zone) that ``at`` falls in: the export of
    a day's log. ``day_start_hour`` moves the day's start (a centre whose day shift
    begins at 08:00 counts 08:00 to 08:00)."""
    _aware("day", at)
    start = at.replace(hour=day_start_hour, minute=0, second=0, microsecond=0)
    if start > at:
        start -= timedelta(days=1)
    return start, start + timedelta(days=1)


# --- the duty log ------------------------------------------------------------------------


class EntryKind(StrEnum):
    """What a duty log entry records (the ``kind`` column of ``duty_log_entry``)."""

    CALL_RECEIVED = "call_received"  # 接警: a 110 call came in
    INCIDENT_OPENED = "incident_opened"  # 事件接报
    INCIDENT_CLOSED = "incident_closed"  # 结案 / 撤销 / 误报
    REPORT_SENT = "report_sent"  # 信息报送: a report went to the upper level
    RECEIPT_RECEIVED = "receipt_received"  # 回执
    CLOCK_OVERDUE = "clock_overdue"  # a report clock ran out: escalated to the leader on duty
    INSTRUCTION_RECEIVED = "instruction_received"  # 领导批示 received
    INSTRUCTION_FOLLOWED = "instruction_followed"  # 批示 passed on / followed up / done
    HANDOVER = "handover"  # 交接班 signed
    FREE = "free"  # a duty officer's own entry

    @property
    def automatic(self) -> bool:
        return self is not EntryKind.FREE


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the duty log."""

    at: datetime
    kind: EntryKind
    text: str
    actor: str
    ref: str | None = None
    exercise_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    entry_id: int | None = None


def log_entry(
    *,
    at: datetime,
    kind: EntryKind | str,
    text: str,
    actor: str,
    ref: str | None = None,
    exercise_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> LogEntry:
    """A checked entry: a known kind, text of 1..2000 characters, an automatic entry names
    what it is about (``ref``: the replay of the same event writes nothing twice)."""
    _aware("entry time", at)
    try:
        kind = EntryKind(kind)
    except ValueError:
        raise InvalidCommand(f"unknown duty log entry kind {str(kind)[:40]!r}") from None
    text = _text("the entry", text, MAX_TEXT)
    if kind.automatic and not ref:
        raise InvalidCommand(f"an automatic entry ({kind}) names what it is about (ref)")
    if ref is not None and not 1 <= len(ref) <= 200:
        raise InvalidCommand("ref is 1..200 characters")
    return LogEntry(at, kind, text, actor, ref, exercise_id, dict(detail or {}))


def entries_of_shift(entries: Iterable[LogEntry], shift: DutyShift) -> list[LogEntry]:
    """The entries made while ``shift`` was on duty, in time order."""
    return sorted((e for e in entries if shift.covers(e.at)), key=lambda e: (e.at, e.entry_id or 0))


# --- the leader's instructions (领导批示) -------------------------------------------------


class InstructionState(StrEnum):
    OPEN = "open"  # 待办
    PASSED_ON = "passed_on"  # 已转达
    FOLLOWED_UP = "followed_up"  # 已跟踪落实
    DONE = "done"  # 已办结

    @property
    def next(self) -> InstructionState | None:
        order = list(InstructionState)
        at = order.index(self)
        return order[at + 1] if at + 1 < len(order) else None


@dataclass(frozen=True, slots=True)
class Instruction:
    instruction_id: str
    exercise_id: str | None
    received_at: datetime
    issued_by: str  # who gave it: the leader on duty, or the upper level (上级)
    text: str
    recorded_by: str
    updated_by: str
    updated_at: datetime
    incident_id: str | None = None
    passed_to: tuple[str, ...] = ()
    state: InstructionState = InstructionState.OPEN
    follow_up: str = ""

    def overdue(self, at: datetime) -> bool:
        """Not yet followed up :data:`FOLLOW_UP_WITHIN` after it came in."""
        return (
            self.state in (InstructionState.OPEN, InstructionState.PASSED_ON)
            and at - self.received_at > FOLLOW_UP_WITHIN
        )


def receive_instruction(
    *,
    instruction_id: str,
    exercise_id: str | None,
    received_at: datetime,
    issued_by: str,
    text: str,
    recorded_by: str,
    incident_id: str | None = None,
) -> Instruction:
    """A new instruction, open."""
    _aware("received at", received_at)
    return Instruction(
        instruction_id=instruction_id,
        exercise_id=exercise_id,
        received_at=received_at,
        issued_by=_text("who gave the instruction", issued_by, MAX_NAME),
        text=_text("the instruction", text, MAX_TEXT),
        recorded_by=recorded_by,
        updated_by=recorded_by,
        updated_at=received_at,
        incident_id=incident_id,
    )


def advance_instruction(
    instruction: Instruction,
    to: InstructionState | str,
    *,
    by: str,
    at: datetime,
    passed_to: Sequence[str] = (),
    follow_up: str = "",
) -> Instruction:
    """The next step of an instruction's follow-up, one step at a time: passing on
    names whom it was passed to; following up and closing say what was done."""
    _aware("time", at)
    try:
        target = InstructionState(to)
    except ValueError:
        raise InvalidCommand(f"unknown follow-up state {str(to)[:40]!r}") from None
    if instruction.state.next is not target:
        raise IllegalTransition(
            f"instruction {instruction.instruction_id} is {instruction.state}, not {to}'s predecessor"
        )
    changes: dict[str, Any] = {"state": target, "updated_by": by, "updated_at": at}
    if target is InstructionState.PASSED_ON:
        names = tuple(dict.fromkeys(_text("whom it was passed to", p, MAX_NAME) for p in passed_to))
        if not names:
            raise InvalidCommand("say whom the instruction was passed to")
        if len(names) > MAX_PASSED_TO:
            raise InvalidCommand(f"at most {MAX_PASSED_TO} recipients")
        changes["passed_to"] = names
    else:
        note = _text("what was done", follow_up, MAX_TEXT, required=target is InstructionState.FOLLOWED_UP)
        if note:
            sep = "\n" if instruction.follow_up else ""
            changes["follow_up"] = _text("the follow-up", instruction.follow_up + sep + note, MAX_TEXT)
    return replace(instruction, **changes)


# --- the handover (交接班) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """An incident still open at the handover, as the handover lists it."""

    incident_id: str
    title: str
    level: int
    state: str
    opened_at: datetime


def handover_snapshot(
    *,
    at: datetime,
    incidents: Sequence[OpenIncident],
    inbox_waiting: int,
    warnings_in_force: Sequence[Mapping[str, Any]],
    instructions: Sequence[Instruction],
    follow_items: Sequence[str],
) -> dict[str, Any]:
    """What the outgoing shift hands over, as it is at ``at``: what is open (incidents,
    alarms waiting in the inbox, warnings in force), what is overdue (incidents still
    unverified past :data:`VERIFY_WITHIN`, instructions not followed up past
    :data:`FOLLOW_UP_WITHIN`) and what the next shift must follow (the free items and
    every instruction not done). JSON-able: it is stored as it was signed."""
    _aware("handover time", at)
    items = [_text("an item to follow", i, MAX_FOLLOW_ITEM) for i in follow_items if i.strip()]
    if len(items) > MAX_FOLLOW_ITEMS:
        raise InvalidCommand(f"at most {MAX_FOLLOW_ITEMS} items to follow")
    pending = [i for i in instructions if i.state is not InstructionState.DONE]
    overdue: list[dict[str, Any]] = [
        {
            "kind": "incident_unverified",
            "ref": i.incident_id,
            "title": i.title,
            "since": i.opened_at.isoformat(),
        }
        for i in incidents
        if i.state == "new" and at - i.opened_at > VERIFY_WITHIN
    ]
    overdue += [
        {
            "kind": "instruction_not_followed",
            "ref": i.instruction_id,
            "title": i.text[:120],
            "since": i.received_at.isoformat(),
        }
        for i in pending
        if i.overdue(at)
    ]
    return {
        "at": at.isoformat(),
        "open": {
            "incidents": [
                {
                    "incident_id": i.incident_id,
                    "title": i.title,
                    "level": i.level,
                    "state": i.state,
                    "opened_at": i.opened_at.isoformat(),
                }
                for i in sorted(incidents, key=lambda i: (i.level, i.opened_at))
            ],
            "inbox_waiting": inbox_waiting,
            "warnings": [dict(w) for w in warnings_in_force],
        },
        "overdue": overdue,
        "follow": {
            "items": items,
            "instructions": [
                {
                    "instruction_id": i.instruction_id,
                    "text": i.text,
                    "state": str(i.state),
                    "passed_to": list(i.passed_to),
                    "issued_by": i.issued_by,
                }
                for i in sorted(pending, key=lambda i: i.received_at)
            ],
        },
    }


Side = Literal["outgoing", "incoming"]


@dataclass(frozen=True, slots=True)
class Handover:
    handover_id: str
    exercise_id: str | None
    outgoing: DutyShift
    incoming: DutyShift
    drawn_up_by: str
    drawn_up_at: datetime
    snapshot: Mapping[str, Any]
    notes: str = ""
    outgoing_signed_by: str | None = None
    outgoing_signed_at: datetime | None = None
    incoming_signed_by: str | None = None
    incoming_signed_at: datetime | None = None

    @property
    def sealed(self) -> bool:
        """Signed by both shifts: immutable from now on."""
        return self.outgoing_signed_at is not None and self.incoming_signed_at is not None


def draw_up_handover(
    *,
    handover_id: str,
    outgoing: DutyShift,
    incoming: DutyShift,
    by: str,
    at: datetime,
    snapshot: Mapping[str, Any],
    notes: str = "",
) -> Handover:
    """A handover from ``outgoing`` to ``incoming`` (of the same scope, the incoming one
    later), drawn up by a member of either shift."""
    _aware("handover time", at)
    if outgoing.shift_id == incoming.shift_id:
        raise InvalidCommand("a shift does not hand over to itself")
    if outgoing.exercise_id != incoming.exercise_id:
        raise InvalidCommand("both shifts belong to the same scope (live, or one drill)")
    if incoming.starts_at < outgoing.starts_at:
        raise InvalidCommand("the incoming shift starts after the outgoing one")
    if not (outgoing.has(by) or incoming.has(by)):
        raise Forbidden(f"{by} is on neither shift")
    return Handover(
        handover_id,
        outgoing.exercise_id,
        outgoing,
        incoming,
        by,
        at,
        dict(snapshot),
        _text("the notes", notes, MAX_NOTES, required=False),
    )


def sign_handover(handover: Handover, side: Side, *, by: str, at: datetime) -> Handover:
    """One shift's signature, by a member of that shift; each side signs once, and a
    handover signed by both is sealed."""
    _aware("signature time", at)
    if handover.sealed:
        raise IllegalTransition(f"handover {handover.handover_id} is signed by both shifts already")
    shift = handover.outgoing if side == "outgoing" else handover.incoming
    if not shift.has(by):
        raise Forbidden(f"{by} is not on the {side} shift {shift.shift_id}")
    other = handover.incoming_signed_by if side == "outgoing" else handover.outgoing_signed_by
    if other == by:
        raise Forbidden("one person signs for one shift only: the other shift signs for itself")
    if side == "outgoing":
        if handover.outgoing_signed_at is not None:
            raise IllegalTransition("the outgoing shift has signed already")
        return replace(handover, outgoing_signed_by=by, outgoing_signed_at=at)
    if handover.incoming_signed_at is not None:
        raise IllegalTransition("the incoming shift has signed already")
    return replace(handover, incoming_signed_by=by, incoming_signed_at=at)


def side_of(handover: Handover, user_id: str) -> Side:
    """The side ``user_id`` signs for: the unsigned side they belong to (outgoing first)."""
    for side, shift, signed in (
        ("outgoing", handover.outgoing, handover.outgoing_signed_at),
        ("incoming", handover.incoming, handover.incoming_signed_at),
    ):
        if shift.has(user_id) and signed is None:
            return side  # type: ignore[return-value]
    if handover.sealed:
        raise IllegalTransition(f"handover {handover.handover_id} is signed by both shifts already")
    raise Forbidden(f"{user_id} has no signature left to give on handover {handover.handover_id}")
