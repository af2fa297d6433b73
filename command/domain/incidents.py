"""Incidents (事件), event-sourced and pure.

An incident is never stored as a row that is updated in place. Every change is an
append-only :class:`Event` (who, when, what, why), numbered ``seq`` 1..n without gaps;
the :class:`Incident` is the fold of its events (:func:`replay`). The timeline on the
console, the audit trail and a later replay of the day are the same record.

Commands are pure functions ``decide_<command>(incident, ..., actor=, at=,
expected_version=) -> list[Event]``. They check, in this order:

1. who may do it (:class:`Forbidden`),
2. whether the command is a harmless repeat (then ``[]`` — only for commands that
   machines resend: linking an alarm already linked, a team arriving twice, the same
   dispatch order twice),
3. that the caller saw the latest version (:class:`StaleVersion` → HTTP 409),
4. that the command is well formed (:class:`InvalidCommand`: a reason where one is
   required, a title, an aware time),
5. that the incident's state allows it (:class:`IllegalTransition`),

and then return the new events, already checked by folding them onto the incident, so
a command can never produce a history that :func:`replay` would refuse.

No I/O: time is passed in (``at``), ids are passed in, the store lives in the edge.
See docs/incidents.md for the state table, the event list and the role rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol, Required, TypeAlias, TypedDict, Unpack, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from command.domain import policy
from command.domain.policy import Action
from command.domain.reasons import Reason, Said
from command.domain.vocabulary import IncidentType, ResponseLevel, Role
from wuwang.contract import Alarm, AlarmKind
from wuwang.scope import Scope

# --- errors -------------------------------------------------------------------


class DomainError(Exception):
    """Base of every refusal. ``reason`` is short and readable by an operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IllegalTransition(DomainError):
    """The incident's state does not allow the command (HTTP 409 or 422 at the edge)."""


class Forbidden(DomainError):
    """The actor's role may not do this (HTTP 403)."""


class StaleVersion(DomainError):
    """The caller decided on an older version of the incident (HTTP 409)."""

    def __init__(self, incident_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"incident {incident_id} has changed: you saw version {expected}, "
            f"it is now at version {actual}; reload and try again"
        )
        self.incident_id = incident_id
        self.expected = expected
        self.actual = actual


class InvalidCommand(DomainError):
    """The command itself is malformed: missing reason, empty title, naive time (HTTP 422)."""


class InvalidHistory(DomainError):
    """A sequence of events that cannot be an incident's history (gap, wrong order,
    illegal transition). Raised by :func:`replay`; means a corrupt store or a bug."""


# --- vocabulary -----------------------------------------------------------------


class IncidentState(StrEnum):
    NEW = "new"  # 发现 / 待核实
    VERIFIED = "verified"  # 立案
    DISPATCHED = "dispatched"  # 派遣
    ON_SCENE = "on_scene"  # 处置
    RESOLVED = "resolved"  # 处置完毕, 待核查
    CLOSED = "closed"  # 结案
    CANCELLED = "cancelled"  # 撤销
    FALSE_ALARM = "false_alarm"  # 误报
    MERGED = "merged"  # 已合并 (its sources live on in another incident)

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


S = IncidentState


class IncidentAct(StrEnum):
    """What can be done to an incident along its lifecycle: the acts of the lifecycle
    table, and the codes of the API's next_acts (the team acts arrive and release are
    given for one team and never listed there)."""

    VERIFY = "verify"  # 立案
    DISPATCH = "dispatch"  # 派遣, and reinforcements
    ARRIVE = "arrive"  # a team's 到场
    RELEASE = "release"  # a team recalled or released
    RESOLVE = "resolve"  # 处置完毕
    REOPEN = "reopen"  # 核查 failed: back on scene
    CLOSE = "close"  # 结案
    CANCEL = "cancel"  # 撤销
    FALSE_ALARM = "false_alarm"  # 误报
    HOLD = "hold"  # 挂起: a flag beside the state, not a state
    RESUME = "resume"  # 恢复


A = IncidentAct

# Acts several rows of the table share.
_TEAM = {A.ARRIVE: (), A.RELEASE: ()}  # a team's arrival, its recall or release
_HOLD = {A.HOLD: (), A.RESUME: ()}  # a flag beside the state
_CALL_OFF = {A.CANCEL: (S.CANCELLED,), A.FALSE_ALARM: (S.FALSE_ALARM,)}

#: The lifecycle in one table: state → the acts it allows → the states each act moves
#: the incident through from there (``()``: the state stays). An act missing from a
#: state's row is refused in that state; a state without acts is terminal. The team acts
#: move the state only on a team's first arrival and on the recall of the last team.
#: ``merged`` is not reached by an act of this table but by a merge (any open state,
#: :func:`decide_merge`). docs/incidents.md shows the table; adding a state starts here.
LIFECYCLE: Mapping[IncidentState, Mapping[IncidentAct, tuple[IncidentState, ...]]] = {
    # dispatching a new incident is also the act of verification (立案 before 派遣)
    S.NEW: {A.VERIFY: (S.VERIFIED,), A.DISPATCH: (S.VERIFIED, S.DISPATCHED), **_TEAM, **_CALL_OFF, **_HOLD},
    S.VERIFIED: {A.DISPATCH: (S.DISPATCHED,), **_TEAM, **_CALL_OFF, **_HOLD},
    # the first arrival puts it on scene; the last team recalled: still a case, nobody going
    S.DISPATCHED: {A.DISPATCH: (), A.ARRIVE: (S.ON_SCENE,), A.RELEASE: (S.VERIFIED,), **_CALL_OFF, **_HOLD},
    S.ON_SCENE: {A.DISPATCH: (), **_TEAM, A.RESOLVE: (S.RESOLVED,), A.FALSE_ALARM: (S.FALSE_ALARM,), **_HOLD},
    S.RESOLVED: {**_TEAM, A.REOPEN: (S.ON_SCENE,), A.CLOSE: (S.CLOSED,)},
    S.CLOSED: {},
    S.CANCELLED: {},
    S.FALSE_ALARM: {},
    S.MERGED: {},
}

#: The acts done for one team (the API's team routes); ``next_acts`` leaves them out.
TEAM_ACTS: frozenset[IncidentAct] = frozenset(_TEAM)


def _steps(frm: IncidentState, path: Sequence[IncidentState]) -> list[tuple[IncidentState, IncidentState]]:
    """The ``state_changed`` steps of an act's path from ``frm``."""
    return list(zip((frm, *path), path, strict=False))


_STEPS = {step for frm, acts in LIFECYCLE.items() for path in acts.values() for step in _steps(frm, path)}
#: Transitions a ``state_changed`` event may make: every step of every act in
#: :data:`LIFECYCLE`. ``merged`` is reached only through a ``merged_into`` event.
TRANSITIONS: Mapping[IncidentState, frozenset[IncidentState]] = {
    state: frozenset(to for frm, to in _STEPS if frm is state) for state in IncidentState
}
#: Where each act that moves the state leads (the same state from every row).
_TARGET: Mapping[IncidentAct, IncidentState] = {
    act: path[-1] for acts in LIFECYCLE.values() for act, path in acts.items() if path
}

TERMINAL_STATES: frozenset[IncidentState] = frozenset(s for s, acts in LIFECYCLE.items() if not acts)
#: States in which an incident counts as open (on the wall, in "open by level").
OPEN_STATES: frozenset[IncidentState] = frozenset(set(IncidentState) - TERMINAL_STATES)
#: States in which an incident may be held: open and not yet resolved. A resolved
#: incident already waits (for 核查 and 结案) and is not parked work.
HOLDABLE_STATES: frozenset[IncidentState] = frozenset(s for s, acts in LIFECYCLE.items() if A.HOLD in acts)
#: The forward path of a live incident (dispatch, then the first arrival); used to lift
#: a merge survivor's state.
_PROGRESS = (S.NEW, *LIFECYCLE[S.NEW][A.DISPATCH], *LIFECYCLE[S.DISPATCHED][A.ARRIVE])


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated user behind a command. ``team_id`` is set for field users."""

    user_id: str
    role: Role
    team_id: str | None = None


class SignedIn(Protocol):
    """Who a request or a message speaks for (``command.security.Principal``)."""

    @property
    def user_id(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def team_id(self) -> str | None: ...


def actor_of(who: SignedIn) -> Actor:
    """The actor an event records for a signed-in user (or a team's crew)."""
    return Actor(who.user_id, who.role, who.team_id)


def visible_incident(who: SignedIn, body: Mapping[str, Any]) -> bool:
    """Whether ``who`` may see the incident stored as ``body``, as the policy says:
    planners see exercises only; others live only (admin both); field users only
    incidents their own team is on."""
    role = Role(str(who.role))
    if not policy.allowed(role, Action.INCIDENT_READ, drill=body.get("exercise_id") is not None):
        return False
    if policy.bound_to_own_team(role):
        return any(policy.may_act_on_team(role, who.team_id, t["team_id"]) for t in body.get("teams", []))
    return True


# --- event payloads -------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceRef(_Frozen):
    """One alarm linked to an incident (110 call, video alert, sensor alarm, report)."""

    alarm_id: Annotated[str, Field(min_length=1)]
    kind: AlarmKind
    source: str  # the device/system key, e.g. "venue/smoke-17"
    category: str
    ts: AwareDatetime
    lat: float | None = None
    lon: float | None = None
    grid_cell_id: str | None = None
    summary: str = ""
    #: The triage rule that promoted the alarm to an incident (docs/triage.md), with its
    #: reason as the operators read it, in Chinese and in English (the rule's own texts,
    #: its codes in the catalogue's words); None for alarms that did not go through triage.
    triage_rule: str | None = None
    triage_reason: str | None = None
    triage_reason_en: str | None = None
    #: A field report's photo as it sent it (``/field/photos/<sha256>.<ext>`` when it
    #: came from the field page); the desk fetches it through ``/incidents/{id}/photos``.
    photo_url: str | None = None

    @classmethod
    def from_alarm(cls, alarm: Alarm) -> SourceRef:
        photo = alarm.details.get("photo_url")
        try:
            return cls(
                alarm_id=alarm.alarm_id,
                kind=alarm.kind,
                source=alarm.source,
                category=alarm.category,
                ts=alarm.ts,
                lat=alarm.lat,
                lon=alarm.lon,
                grid_cell_id=alarm.grid_cell_id,
                summary=alarm.summary[:200],
                photo_url=photo if isinstance(photo, str) and photo else None,
            )
        except ValidationError as exc:
            raise InvalidCommand(
                f"alarm {alarm.alarm_id!r} cannot be linked: {exc.errors()[0]['msg']}"
            ) from None


class TeamAssignment(_Frozen):
    """A team sent to the incident; ``released_at`` once recalled, released or handed on."""

    team_id: str
    order_id: str
    dispatched_at: AwareDatetime
    arrived_at: AwareDatetime | None = None
    released_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None  # the team accepted the order (接令)
    en_route_at: AwareDatetime | None = None  # the team is rolling (出动)

    @property
    def active(self) -> bool:
        return self.released_at is None


class Opened(_Frozen):
    kind: Literal["opened"] = "opened"
    incident_type: IncidentType
    level: ResponseLevel
    title: str
    lat: float | None
    lon: float | None
    grid_cell_id: str | None
    exercise_id: str | None
    source: SourceRef | None
    split_from: str | None = None


class SourceLinked(_Frozen):
    kind: Literal["source_linked"] = "source_linked"
    source: SourceRef


class SourceSplit(_Frozen):
    kind: Literal["source_split"] = "source_split"
    alarm_id: str
    to_incident_id: str


class MergedInto(_Frozen):
    kind: Literal["merged_into"] = "merged_into"
    target_incident_id: str
    alarm_ids: tuple[str, ...]
    team_ids: tuple[str, ...]


class Absorbed(_Frozen):
    kind: Literal["absorbed"] = "absorbed"
    from_incident_id: str
    sources: tuple[SourceRef, ...]
    teams: tuple[TeamAssignment, ...]


class StateChanged(_Frozen):
    kind: Literal["state_changed"] = "state_changed"
    from_state: IncidentState
    to_state: IncidentState


class LevelChanged(_Frozen):
    kind: Literal["level_changed"] = "level_changed"
    from_level: ResponseLevel
    to_level: ResponseLevel


class Reclassified(_Frozen):
    kind: Literal["reclassified"] = "reclassified"
    from_type: IncidentType
    to_type: IncidentType


class PlanActivated(_Frozen):
    kind: Literal["plan_activated"] = "plan_activated"
    plan_id: str
    plan_version: int
    level: ResponseLevel
    #: The plan's arrival target when it was activated (seconds; None: it set none).
    arrival_target_s: float | None = None


class ChecklistItemTicked(_Frozen):
    kind: Literal["checklist_item_ticked"] = "checklist_item_ticked"
    plan_id: str
    item_id: str
    done: bool = True


class TeamDispatched(_Frozen):
    kind: Literal["team_dispatched"] = "team_dispatched"
    team_id: str
    order_id: str


class TeamArrived(_Frozen):
    kind: Literal["team_arrived"] = "team_arrived"
    team_id: str


class TeamAcknowledged(_Frozen):
    kind: Literal["team_acknowledged"] = "team_acknowledged"
    team_id: str
    order_id: str


class TeamEnRoute(_Frozen):
    kind: Literal["team_en_route"] = "team_en_route"
    team_id: str


class TeamReleased(_Frozen):
    kind: Literal["team_released"] = "team_released"
    team_id: str


class NoteAdded(_Frozen):
    kind: Literal["note_added"] = "note_added"
    text: str


class Held(_Frozen):
    """挂起: parked on purpose (waiting for a resource, for information, lower priority);
    the why is the event's reason."""

    kind: Literal["held"] = "held"


class Resumed(_Frozen):
    kind: Literal["resumed"] = "resumed"


Payload: TypeAlias = (
    Opened
    | SourceLinked
    | SourceSplit
    | MergedInto
    | Absorbed
    | StateChanged
    | LevelChanged
    | Reclassified
    | PlanActivated
    | ChecklistItemTicked
    | TeamDispatched
    | TeamArrived
    | TeamReleased
    | NoteAdded
    | TeamAcknowledged
    | TeamEnRoute
    | Held
    | Resumed
)
EventData: TypeAlias = Annotated[Payload, Field(discriminator="kind")]

#: Every event kind, in the order of the union (the ``kind`` column of the event table).
EVENT_KINDS: tuple[str, ...] = tuple(str(p.model_fields["kind"].default) for p in get_args(Payload))


class Event(_Frozen):
    """One entry of an incident's history; maps 1:1 to a row of the event table."""

    incident_id: Annotated[str, Field(min_length=1)]
    seq: Annotated[int, Field(ge=1)]
    at: AwareDatetime
    actor: str
    actor_role: Role
    reason: str | None = None
    data: EventData
    #: A system-written reason's code and parameters (command/domain/reasons.py WHY),
    #: which readers show in their language; ``reason`` keeps the text. Stored in ``data``.
    reason_code: str | None = None
    reason_args: dict[str, str | int | float] | None = None

    @property
    def kind(self) -> str:
        return self.data.kind

    def to_record(self) -> dict[str, Any]:
        """A JSON-able dict: the columns ``incident_id, seq, kind, at, actor, actor_role,
        reason, data`` (``at`` as an RFC 3339 string, ``data`` for a jsonb column)."""
        data = self.data.model_dump(mode="json")
        del data["kind"]
        if self.reason_code is not None:
            data |= {"reason_code": self.reason_code, "reason_args": dict(self.reason_args or {})}
        return {
            "incident_id": self.incident_id,
            "seq": self.seq,
            "kind": self.data.kind,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "actor_role": str(self.actor_role),
            "reason": self.reason,
            "data": data,
        }


_RECORD_FIELDS = ("incident_id", "seq", "kind", "at", "actor", "actor_role", "reason", "data")


def event_from_record(record: Mapping[str, Any]) -> Event:
    """Re-create an event from :meth:`Event.to_record` output or a database row
    (``at`` may be a ``datetime``; ``data`` a dict). Raises :class:`InvalidHistory`."""
    missing = [f for f in _RECORD_FIELDS if f not in record]
    if missing:
        raise InvalidHistory(f"event record lacks {', '.join(missing)}")
    data = record["data"]
    if not isinstance(data, Mapping):
        raise InvalidHistory("event record's data is not an object")
    data = dict(data)
    code, args = data.pop("reason_code", None), data.pop("reason_args", None)
    try:
        return Event.model_validate(
            {
                "incident_id": record["incident_id"],
                "seq": record["seq"],
                "at": record["at"],
                "actor": record["actor"],
                "actor_role": record["actor_role"],
                "reason": record["reason"],
                "data": {**data, "kind": record["kind"]},
                "reason_code": code,
                "reason_args": args,
            }
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidHistory(f"unreadable {record.get('kind')!r} event: {loc}: {err['msg']}") from None


# --- the incident: a fold of its events ------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanActivation:
    plan_id: str
    plan_version: int
    level: ResponseLevel
    at: datetime
    by: str
    arrival_target_s: float | None = None


@dataclass(frozen=True, slots=True)
class ChecklistTick:
    plan_id: str
    item_id: str
    at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold (挂起) on an open incident: why, who, since when."""

    reason: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as of its latest event. Build it with :func:`replay`."""

    incident_id: str
    incident_type: IncidentType
    level: ResponseLevel
    state: IncidentState
    title: str
    lat: float | None
    lon: float | None
    grid_cell_id: str | None
    exercise_id: str | None  # set for 演练 incidents; never mixes with live ones
    sources: tuple[SourceRef, ...]  # every linked alarm, each exactly once
    teams: tuple[TeamAssignment, ...]  # every dispatch, in order (a team may recur)
    opened_at: datetime
    opened_by: str
    verified_at: datetime | None
    resolved_at: datetime | None  # latest entry into resolved; None after a reopen
    closed_at: datetime | None  # 结案 time (closed only)
    ended_at: datetime | None  # entry into any terminal state
    last_event_at: datetime
    version: int  # = seq of the latest event
    split_from: str | None
    merged_into: str | None
    absorbed_from: tuple[str, ...]
    active_plan: PlanActivation | None
    checklist: tuple[ChecklistTick, ...]  # items currently ticked
    #: 挂起: not a state but a flag beside it; None when not held. Cleared by resume,
    #: and by leaving the holdable states (resolve, close, cancel, false alarm, merge).
    held: Hold | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_exercise(self) -> bool:
        return self.exercise_id is not None

    @property
    def scope(self) -> Scope:
        """Live operations or its drill: what every row it leads to inherits."""
        return Scope.of(self.exercise_id)

    @property
    def alarm_ids(self) -> tuple[str, ...]:
        return tuple(s.alarm_id for s in self.sources)

    @property
    def active_teams(self) -> tuple[TeamAssignment, ...]:
        return tuple(t for t in self.teams if t.active)

    @property
    def active_team_ids(self) -> tuple[str, ...]:
        return tuple(t.team_id for t in self.teams if t.active)

    @property
    def first_alarm_at(self) -> datetime:
        """Earliest ``ts`` among the current sources; the opening time if it has none."""
        return min((s.ts for s in self.sources), default=self.opened_at)

    @property
    def latest_alarm_at(self) -> datetime:
        return max((s.ts for s in self.sources), default=self.opened_at)

    @property
    def first_dispatch_at(self) -> datetime | None:
        return min((t.dispatched_at for t in self.teams), default=None)

    @property
    def first_on_scene_at(self) -> datetime | None:
        return min((t.arrived_at for t in self.teams if t.arrived_at is not None), default=None)

    def has_alarm(self, alarm_id: str) -> bool:
        return any(s.alarm_id == alarm_id for s in self.sources)

    def active_assignment(self, team_id: str) -> TeamAssignment | None:
        return next((t for t in self.teams if t.active and t.team_id == team_id), None)


def _bad(event: Event, why: str) -> InvalidHistory:
    return InvalidHistory(f"incident {event.incident_id} event {event.seq} ({event.kind}): {why}")


def apply(incident: Incident | None, event: Event) -> Incident:
    """Fold one event onto an incident (``None`` before the first event).

    Checks everything a history must satisfy (contiguous seq, one incident, legal
    transitions, no event after a terminal state, each alarm once) and raises
    :class:`InvalidHistory` otherwise.
    """
    d = event.data
    if incident is None:
        if event.seq != 1:
            raise _bad(event, "history does not start at seq 1")
        if not isinstance(d, Opened):
            raise _bad(event, "history must start with an 'opened' event")
        return Incident(
            incident_id=event.incident_id,
            incident_type=d.incident_type,
            level=d.level,
            state=S.NEW,
            title=d.title,
            lat=d.lat,
            lon=d.lon,
            grid_cell_id=d.grid_cell_id,
            exercise_id=d.exercise_id,
            sources=(d.source,) if d.source is not None else (),
            teams=(),
            opened_at=event.at,
            opened_by=event.actor,
            verified_at=None,
            resolved_at=None,
            closed_at=None,
            ended_at=None,
            last_event_at=event.at,
            version=1,
            split_from=d.split_from,
            merged_into=None,
            absorbed_from=(),
            active_plan=None,
            checklist=(),
        )

    if event.incident_id != incident.incident_id:
        raise _bad(event, f"belongs to another incident than {incident.incident_id}")
    if event.seq != incident.version + 1:
        raise _bad(event, f"expected seq {incident.version + 1} (gap or out of order)")
    if incident.state in TERMINAL_STATES:
        raise _bad(event, f"incident is already {incident.state}")
    inc = replace(incident, version=event.seq, last_event_at=event.at)

    match d:
        case Opened():
            raise _bad(event, "'opened' may only be the first event")
        case SourceLinked(source=src):
            if inc.has_alarm(src.alarm_id):
                raise _bad(event, f"alarm {src.alarm_id} is already linked")
            return replace(inc, sources=(*inc.sources, src))
        case SourceSplit(alarm_id=alarm_id):
            if not inc.has_alarm(alarm_id):
                raise _bad(event, f"alarm {alarm_id} is not linked")
            if len(inc.sources) < 2:
                raise _bad(event, "cannot split the only source")
            return replace(inc, sources=tuple(s for s in inc.sources if s.alarm_id != alarm_id))
        case MergedInto(target_incident_id=target):
            if target == inc.incident_id:
                raise _bad(event, "cannot merge into itself")
            teams = tuple(
                t if not t.active else t.model_copy(update={"released_at": event.at}) for t in inc.teams
            )
            return replace(
                inc,
                state=S.MERGED,
                merged_into=target,
                sources=(),
                teams=teams,
                ended_at=event.at,
                held=None,
            )
        case Absorbed(from_incident_id=other, sources=srcs, teams=carried):
            if other == inc.incident_id:
                raise _bad(event, "cannot absorb itself")
            known = set(inc.alarm_ids)
            for src in srcs:
                if src.alarm_id in known:
                    raise _bad(event, f"alarm {src.alarm_id} is already linked")
                known.add(src.alarm_id)
            active = set(inc.active_team_ids)
            for team in carried:
                if not team.active or team.team_id in active:
                    raise _bad(event, f"team {team.team_id} cannot be carried over")
                active.add(team.team_id)
            return replace(
                inc,
                sources=(*inc.sources, *srcs),
                teams=(*inc.teams, *carried),
                absorbed_from=(*inc.absorbed_from, other),
            )
        case StateChanged(from_state=frm, to_state=to):
            if frm != inc.state:
                raise _bad(event, f"says from {frm} but the incident is {inc.state}")
            if to not in TRANSITIONS[frm]:
                raise _bad(event, f"{frm} → {to} is not a legal transition")
            return _enter(inc, to, event)
        case LevelChanged(from_level=frm, to_level=to):
            if frm != inc.level or frm == to:
                raise _bad(event, f"level change {frm.name}→{to.name} does not fit level {inc.level.name}")
            return replace(inc, level=to)
        case Reclassified(from_type=frm, to_type=to):
            if frm != inc.incident_type or frm == to:
                raise _bad(event, f"reclassification {frm}→{to} does not fit type {inc.incident_type}")
            return replace(inc, incident_type=to)
        case PlanActivated(plan_id=plan_id, plan_version=plan_version, level=level, arrival_target_s=target):
            return replace(
                inc, active_plan=PlanActivation(plan_id, plan_version, level, event.at, event.actor, target)
            )
        case ChecklistItemTicked(plan_id=plan_id, item_id=item_id, done=done):
            rest = tuple(c for c in inc.checklist if (c.plan_id, c.item_id) != (plan_id, item_id))
            if done:
                rest = (*rest, ChecklistTick(plan_id, item_id, event.at, event.actor))
            return replace(inc, checklist=rest)
        case TeamDispatched(team_id=team_id, order_id=order_id):
            if inc.active_assignment(team_id) is not None:
                raise _bad(event, f"team {team_id} is already on this incident")
            team = TeamAssignment(team_id=team_id, order_id=order_id, dispatched_at=event.at)
            return replace(inc, teams=(*inc.teams, team))
        case TeamArrived(team_id=team_id):
            current = inc.active_assignment(team_id)
            if current is None or current.arrived_at is not None:
                raise _bad(event, f"team {team_id} is not on its way to this incident")
            return _update_team(inc, current, {"arrived_at": event.at})
        case TeamReleased(team_id=team_id):
            current = inc.active_assignment(team_id)
            if current is None:
                raise _bad(event, f"team {team_id} is not on this incident")
            return _update_team(inc, current, {"released_at": event.at})
        case NoteAdded():
            return inc
        case Held():
            if inc.held is not None:
                raise _bad(event, "incident is already held")
            if inc.state not in HOLDABLE_STATES:
                raise _bad(event, f"a {inc.state} incident cannot be held")
            if event.reason is None or not event.reason.strip():
                raise _bad(event, "a hold needs a reason")
            return replace(inc, held=Hold(event.reason, event.actor, event.at))
        case Resumed():
            if inc.held is None:
                raise _bad(event, "incident is not held")
            return replace(inc, held=None)
        case TeamAcknowledged(team_id=team_id, order_id=order_id):
            current = inc.active_assignment(team_id)
            if current is None or current.order_id != order_id or current.acknowledged_at is not None:
                raise _bad(event, f"team {team_id} has no unacknowledged order {order_id} here")
            return _update_team(inc, current, {"acknowledged_at": event.at})
        case TeamEnRoute(team_id=team_id):
            current = inc.active_assignment(team_id)
            if current is None or current.arrived_at is not None or current.en_route_at is not None:
                raise _bad(event, f"team {team_id} is not about to roll to this incident")
            return _update_team(inc, current, {"en_route_at": event.at})
    raise _bad(event, "unknown event kind")  # pragma: no cover - the union is closed


def _update_team(inc: Incident, team: TeamAssignment, update: dict[str, Any]) -> Incident:
    return replace(inc, teams=tuple(t.model_copy(update=update) if t is team else t for t in inc.teams))


def _enter(inc: Incident, to: IncidentState, event: Event) -> Incident:
    at = event.at
    changes: dict[str, Any] = {"state": to}
    if to is S.VERIFIED and inc.verified_at is None:
        changes["verified_at"] = at
    if to is S.RESOLVED:
        changes["resolved_at"] = at
    if inc.state is S.RESOLVED and to is S.ON_SCENE:
        changes["resolved_at"] = None
    if to not in HOLDABLE_STATES:
        changes["held"] = None  # resolving or ending the incident ends its hold
    if to in TERMINAL_STATES:
        changes["ended_at"] = at
        if to is S.CLOSED:
            changes["closed_at"] = at
    return replace(inc, **changes)


def replay(events: Iterable[Event]) -> Incident:
    """The incident that a history describes. Raises :class:`InvalidHistory` on an empty
    history, a gap or disorder in ``seq``, events of two incidents, or any illegal step."""
    incident: Incident | None = None
    for event in events:
        incident = apply(incident, event)
    if incident is None:
        raise InvalidHistory("no events: an incident starts with an 'opened' event")
    return incident


# --- authorisation ------------------------------------------------------------------

#: The commander's decisions (指挥长的决定): refused with the commander named.
_COMMANDERS_DECISIONS = frozenset({Action.INCIDENT_LEVEL, Action.INCIDENT_CLOSE_OVERRIDE})


def _authorise(
    exercise_id: str | None,
    incident_id: str,
    actor: Actor,
    action: Action,
    what: str,
    *,
    team_id: str | None = None,
) -> None:
    """The policy's answer for this incident's scope (command/domain/policy.py), with
    the field's words for a refusal."""
    role, drill = actor.role, exercise_id is not None
    if policy.bound_to_own_team(role):
        if team_id is None or not policy.allowed(role, action, drill=drill):
            raise Forbidden(f"field users may only record their own team's arrival, not {what}")
        if not policy.may_act_on_team(role, actor.team_id, team_id):
            raise Forbidden(f"field user {actor.user_id} may only record the arrival of their own team")
        return
    if policy.allowed(role, action, drill=drill):
        return
    if not drill and policy.allowed(role, action, drill=True):
        raise Forbidden(f"planners may act only on exercise incidents; {incident_id} is a live incident")
    if action in _COMMANDERS_DECISIONS:
        raise Forbidden(f"only a commander or an admin may {what} (the commander's decision); you are {role}")
    raise Forbidden(f"role {role} may not {what}")


def authorise_closing_override(incident: Incident, actor: Actor, what: str) -> None:
    """Who may override the closing guard (command/domain/closing.py): the commander's
    act, like the response level — the same roles, in an exercise too."""
    _authorise(
        incident.exercise_id,
        incident.incident_id,
        actor,
        Action.INCIDENT_CLOSE_OVERRIDE,
        f"override the closing guard to {what} with open work",
    )


def _check_version(incident: Incident, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != incident.version:
        raise StaleVersion(incident.incident_id, expected_version, incident.version)


def _check_open(incident: Incident, what: str) -> None:
    if incident.state in TERMINAL_STATES:
        raise IllegalTransition(
            f"cannot {what}: incident {incident.incident_id} is {incident.state} and takes no further changes"
        )


def _require_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise InvalidCommand(f"a reason is required to {what}")
    return reason.strip()


def _admit(
    incident: Incident,
    what: str,
    expected_version: int | None,
    reason: str | None = None,
    *,
    reason_for: str | None = None,
) -> str | None:
    """The checks every act on an open incident makes after the role, in the documented
    order: the version the caller saw, the reason (where ``reason_for`` names an act that
    needs one; then returned stripped), and that the incident is still open."""
    _check_version(incident, expected_version)
    if reason_for is not None:
        reason = _require_reason(reason, reason_for)
    _check_open(incident, what)
    return reason


def _check_at(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand("time must be timezone-aware")


def _refuse_transition(incident: Incident, act: IncidentAct, what: str) -> IllegalTransition:
    """The refusal of an act the incident's state does not allow (not in its row of
    :data:`LIFECYCLE`): the step it would make, and the steps the state allows."""
    state = incident.state
    only = _SAY[act].only if act in _SAY else None
    if only is None:
        allowed = sorted(TRANSITIONS[state])
        only = f"{state} → {_TARGET[act]} is not allowed" + (
            f" (from {state} it may go to: {', '.join(allowed)})" if allowed else ""
        )
    return IllegalTransition(
        f"cannot {what}: incident {incident.incident_id} is {state}; {only}"
    )


#: Hold and resume follow the hold, not the state: whether each needs the incident held.
_WHEN_HELD: Mapping[IncidentAct, bool] = {A.HOLD: False, A.RESUME: True}


def _unmet(incident: Incident, act: IncidentAct) -> str | None:
    """Why an act the state allows cannot be done now (hold and resume: the hold)."""
    held = incident.held
    if _WHEN_HELD.get(act, held is not None) == (held is not None):
        return None
    if held is not None:
        return (
            f"incident {incident.incident_id} is already held (since {held.at.isoformat()}, "
            f"by {held.by}: {held.reason})"
        )
    return f"cannot resume: incident {incident.incident_id} is not held"


def acts_allowed(state: IncidentState, *, held: bool) -> tuple[IncidentAct, ...]:
    """The acts on the whole incident that ``state`` allows, with hold or resume as the
    incident is held or not, in the table's order. Team acts (arrival, release) are per
    team and left out; the role and the closing guard are checked when the act is given."""
    return tuple(
        act for act in LIFECYCLE[state] if act not in TEAM_ACTS and _WHEN_HELD.get(act, held) == held
    )


def next_acts(incident: Incident) -> tuple[IncidentAct, ...]:
    """What can be done to the incident now: the API's ``next_acts`` (:func:`acts_allowed`)."""
    return acts_allowed(incident.state, held=incident.held is not None)


Draft: TypeAlias = tuple[Payload, "str | Said | None"]  # (event payload, reason)


def _reason_fields(reason: str | Said | None) -> dict[str, Any]:
    if isinstance(reason, Said):
        return {"reason": reason.text, "reason_code": reason.why.code, "reason_args": dict(reason.why.params)}
    return {"reason": reason}


def _commit(
    incident: Incident | None, incident_id: str, actor: Actor, at: datetime, drafts: Sequence[Draft]
) -> list[Event]:
    """Number the drafts after the incident's version, check them by folding, return them."""
    _check_at(at)
    start = incident.version if incident is not None else 0
    events = [
        Event(
            incident_id=incident_id,
            seq=start + i,
            at=at,
            actor=actor.user_id,
            actor_role=actor.role,
            data=data,
            **_reason_fields(reason),
        )
        for i, (data, reason) in enumerate(drafts, start=1)
    ]
    state = incident
    for event in events:
        state = apply(state, event)  # raises InvalidHistory on a bug in a decide_ function
    return events


def _moves(
    incident: Incident, act: IncidentAct, path: Sequence[IncidentState] | None = None
) -> list[StateChanged]:
    """The ``state_changed`` events of ``act`` from the incident's state (along ``path``,
    a part of the act's path, when given)."""
    steps = LIFECYCLE[incident.state][act] if path is None else path
    return [StateChanged(from_state=frm, to_state=to) for frm, to in _steps(incident.state, steps)]


@dataclass(frozen=True, slots=True)
class _Words:
    """How an act's refusals name it: after "cannot …" (``act``); after "a reason is
    required to …" when it needs a reason (``reason``); and, where the transition is not
    the clearest refusal, what the state would have to be (``only``)."""

    act: str
    reason: str | None = None
    only: str | None = None


_SAY: Mapping[IncidentAct, _Words] = {
    A.VERIFY: _Words("verify", only="only a new incident can be verified"),
    A.RESOLVE: _Words("resolve"),
    A.REOPEN: _Words("reopen", reason="reopen an incident"),
    A.CLOSE: _Words("close"),
    A.CANCEL: _Words("cancel", reason="cancel"),
    A.FALSE_ALARM: _Words("mark as false alarm", reason="mark as false alarm"),
    A.HOLD: _Words("hold", reason="hold an incident", only="only an incident not yet resolved can be held"),
    A.RESUME: _Words("resume"),
}
#: What hold and resume record beside the state (which stays).
_MARK: Mapping[IncidentAct, Payload] = {A.HOLD: Held(), A.RESUME: Resumed()}


def _lifecycle_act(
    incident: Incident,
    act: IncidentAct,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
    reason: str | None,
) -> list[Event]:
    """Verify, resolve, reopen, close, cancel, false alarm, hold, resume: the checks after
    the role, then the state changes :data:`LIFECYCLE` gives the act. An act that ends the
    incident first releases the teams still on it, so the dispatch side sees each one."""
    words = _SAY[act]
    why = _admit(incident, words.act, expected_version, reason, reason_for=words.reason)
    unmet = _unmet(incident, act)
    if unmet is not None:
        raise IllegalTransition(unmet)
    path = LIFECYCLE[incident.state].get(act)
    if path is None:
        raise _refuse_transition(incident, act, words.act)
    drafts: list[Draft] = []
    if path and path[-1] in TERMINAL_STATES:
        drafts += [(TeamReleased(team_id=t), f"incident {path[-1]}") for t in incident.active_team_ids]
    drafts += [(step, why) for step in _moves(incident, act)]
    if act in _MARK:
        drafts.append((_MARK[act], why))
    return _commit(incident, incident.incident_id, actor, at, drafts)


# --- commands: opening and sources ---------------------------------------------------


def decide_open(
    incident_id: str,
    *,
    incident_type: IncidentType,
    level: ResponseLevel,
    title: str,
    actor: Actor,
    at: datetime,
    source: SourceRef | None = None,
    lat: float | None = None,
    lon: float | None = None,
    grid_cell_id: str | None = None,
    exercise_id: str | None = None,
    reason: str | Said | None = None,
) -> list[Event]:
    """Open an incident (发现), from an alarm or by hand (``source=None``). Location and
    grid cell default to the source's. The edge must make sure ``incident_id`` is new
    (the event table's primary key (incident_id, seq) refuses a second seq 1)."""
    _authorise(exercise_id, incident_id, actor, Action.INCIDENT_OPEN, "open an incident")
    if not incident_id.strip():
        raise InvalidCommand("an incident id is required")
    if not title.strip():
        raise InvalidCommand("an incident needs a title")
    if (lat is None) != (lon is None):
        raise InvalidCommand("lat and lon must be given together")
    if lat is None and source is not None and source.lat is not None and source.lon is not None:
        lat, lon = source.lat, source.lon
    if grid_cell_id is None and source is not None:
        grid_cell_id = source.grid_cell_id
    opened = Opened(
        incident_type=incident_type,
        level=level,
        title=title.strip(),
        lat=lat,
        lon=lon,
        grid_cell_id=grid_cell_id,
        exercise_id=exercise_id,
        source=source,
    )
    return _commit(None, incident_id, actor, at, [(opened, reason)])


def decide_link_source(
    incident: Incident,
    source: SourceRef,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
    reason: str | Said | None = None,
) -> list[Event]:
    """Link an alarm to the incident. Idempotent: an alarm already linked gives ``[]``
    (at-least-once delivery from ingest). The edge must also refuse an alarm linked to
    another incident (unique alarm_id in its source projection)."""
    _authorise(incident.exercise_id, incident.incident_id, actor, Action.INCIDENT_LINK_ALARM, "link an alarm")
    if incident.has_alarm(source.alarm_id):
        return []
    _admit(incident, f"link alarm {source.alarm_id}", expected_version)
    return _commit(incident, incident.incident_id, actor, at, [(SourceLinked(source=source), reason)])


# --- commands: the closed loop --------------------------------------------------------


class LifecycleDecision(Protocol):
    """The shape of every decision of :data:`LIFECYCLE`'s incident acts (``decide_verify``
    … ``decide_resume``); the acts that need a reason refuse ``None``."""

    __name__: str

    def __call__(
        self,
        incident: Incident,
        *,
        actor: Actor,
        at: datetime,
        expected_version: int | None,
        reason: str | None = None,
    ) -> list[Event]: ...


def _decision(act: IncidentAct, action: Action, what: str, *, doc: str) -> LifecycleDecision:
    """``decide_<act>``: who may (the policy's ``action``, refused as "may not ``what``"), then the act."""

    def decide(
        incident: Incident,
        *,
        actor: Actor,
        at: datetime,
        expected_version: int | None,
        reason: str | None = None,
    ) -> list[Event]:
        _authorise(incident.exercise_id, incident.incident_id, actor, action, what)
        return _lifecycle_act(
            incident, act, actor=actor, at=at, expected_version=expected_version, reason=reason
        )

    decide.__name__ = decide.__qualname__ = f"decide_{act}"
    decide.__doc__ = doc
    return decide


decide_verify = _decision(
    A.VERIFY,
    Action.INCIDENT_VERIFY,
    "verify an incident",
    doc="立案: the operator confirms the incident is real and takes it on.",
)
decide_resolve = _decision(
    A.RESOLVE,
    Action.INCIDENT_RESOLVE,
    "resolve an incident",
    doc="处置完毕: the situation is handled; the case waits for 核查 and 结案.",
)
decide_reopen = _decision(
    A.REOPEN,
    Action.INCIDENT_REOPEN,
    "reopen an incident",
    doc="核查 failed: a resolved incident goes back to on_scene (reason required).",
)
decide_close = _decision(
    A.CLOSE,
    Action.INCIDENT_CLOSE,
    "close an incident",
    doc="结案 after 核查. Teams still on the incident are released.",
)
decide_cancel = _decision(
    A.CANCEL,
    Action.INCIDENT_CANCEL,
    "cancel an incident",
    doc="撤销: no longer needed (caller withdrew, handled by someone else). Only before anyone is on "
    "scene. Teams on their way are recalled (reason required).",
)
decide_false_alarm = _decision(
    A.FALSE_ALARM,
    Action.INCIDENT_FALSE_ALARM,
    "mark a false alarm",
    doc="误报: nothing was there. Possible until resolution (a team on scene may find nothing). "
    "Teams are released (reason required).",
)
decide_hold = _decision(
    A.HOLD,
    Action.INCIDENT_HOLD,
    "hold an incident",
    doc="挂起: park an open incident on purpose — waiting for a resource, for information, or of "
    "lower priority — with a reason. Not a state: the incident keeps its state and every act "
    "stays possible; the queue shows it under 挂起 until it is resumed.",
)
decide_resume = _decision(
    A.RESUME,
    Action.INCIDENT_RESUME,
    "resume an incident",
    doc="恢复: take a held incident back into the active work.",
)


def decide_dispatch(
    incident: Incident,
    *,
    team_id: str,
    order_id: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
    reason: str | None = None,
) -> list[Event]:
    """派遣 a team. On a ``new`` incident, dispatching is also the act of verification:
    the events are ``verified``, ``team_dispatched``, ``dispatched`` (one click for a
    clear 110 fire call, but the record still shows 立案 before 派遣). On an incident
    already dispatched or on scene, it sends reinforcements. Repeating the same order
    for the same team gives ``[]``."""
    _authorise(incident.exercise_id, incident.incident_id, actor, Action.INCIDENT_DISPATCH, "dispatch a team")
    current = incident.active_assignment(team_id)
    if current is not None and current.order_id == order_id:
        return []
    _admit(incident, f"dispatch team {team_id}", expected_version)
    if not team_id.strip() or not order_id.strip():
        raise InvalidCommand("team id and order id are required")
    if current is not None:
        raise IllegalTransition(
            f"team {team_id} is already on incident {incident.incident_id} (order {current.order_id})"
        )
    state = incident.state
    if A.DISPATCH not in LIFECYCLE[state]:
        raise IllegalTransition(
            f"cannot dispatch team {team_id}: incident {incident.incident_id} is {state}"
            + ("; reopen it first" if A.REOPEN in LIFECYCLE[state] else "")
        )
    moves = _moves(incident, A.DISPATCH)
    # The team goes out with the path's last step; any step before it is 立案 on dispatch.
    drafts: list[Draft] = [(step, Said.of(Reason("dispatch.verified"))) for step in moves[:-1]]
    drafts.append((TeamDispatched(team_id=team_id, order_id=order_id), reason))
    drafts += [(step, reason) for step in moves[-1:]]
    return _commit(incident, incident.incident_id, actor, at, drafts)


class Report(TypedDict, total=False):
    """A team's report as a decision takes it: who records it and when; the version it
    was decided on and why where a person gives them (machines resend them without)."""

    actor: Required[Actor]
    at: Required[datetime]
    expected_version: int | None
    reason: str | None


def _team_report(
    incident: Incident, data: TeamAcknowledged | TeamEnRoute, repeat: bool, what: str, report: Report
) -> list[Event]:
    """A team's status on the record (接令, 出动): ``[]`` for a ``repeat`` (a status
    resent, late, or for a team no longer on the incident), else one event."""
    if repeat:
        return []
    _admit(incident, what, report.get("expected_version"))
    return _commit(
        incident, incident.incident_id, report["actor"], report["at"], [(data, report.get("reason"))]
    )


def decide_team_arrived(incident: Incident, *, team_id: str, **report: Unpack[Report]) -> list[Event]:
    """A dispatched team reports arrival (到场). The first arrival moves a dispatched
    incident to on_scene (处置). Field users may record only their own team. A repeated
    arrival report gives ``[]`` (field networks resend)."""
    actor = report["actor"]
    _authorise(
        incident.exercise_id,
        incident.incident_id,
        actor,
        Action.INCIDENT_ARRIVE,
        "record a team's arrival",
        team_id=team_id,
    )
    current = incident.active_assignment(team_id)
    if current is not None and current.arrived_at is not None:
        return []
    _admit(incident, f"record arrival of team {team_id}", report.get("expected_version"))
    if current is None:
        raise IllegalTransition(f"team {team_id} was not dispatched to incident {incident.incident_id}")
    drafts: list[Draft] = [(TeamArrived(team_id=team_id), report.get("reason"))]
    drafts += [(step, f"team {team_id} arrived") for step in _moves(incident, A.ARRIVE)]
    return _commit(incident, incident.incident_id, actor, report["at"], drafts)


def decide_team_acknowledged(
    incident: Incident, *, team_id: str, order_id: str, **report: Unpack[Report]
) -> list[Event]:
    """The team accepted its order (接令): on the record beside dispatch and arrival. The
    team itself (or the service on its behalf); a repeated or late ack gives ``[]`` —
    the orders table stays the truth of the order's status."""
    actor = report["actor"]
    _authorise(
        incident.exercise_id,
        incident.incident_id,
        actor,
        Action.INCIDENT_ACKNOWLEDGE,
        "record an acknowledgement",
        team_id=team_id,
    )
    current = incident.active_assignment(team_id)
    repeat = current is None or current.order_id != order_id or current.acknowledged_at is not None
    data = TeamAcknowledged(team_id=team_id, order_id=order_id)
    return _team_report(incident, data, repeat, f"record the acknowledgement of team {team_id}", report)


def decide_team_en_route(incident: Incident, *, team_id: str, **report: Unpack[Report]) -> list[Event]:
    """The team is on its way (出动/在途). Once per assignment; a status that comes after
    the arrival, or for a team no longer on the incident, gives ``[]``."""
    actor = report["actor"]
    _authorise(
        incident.exercise_id,
        incident.incident_id,
        actor,
        Action.INCIDENT_EN_ROUTE,
        "record a team en route",
        team_id=team_id,
    )
    current = incident.active_assignment(team_id)
    repeat = current is None or current.arrived_at is not None or current.en_route_at is not None
    return _team_report(
        incident, TeamEnRoute(team_id=team_id), repeat, f"record team {team_id} en route", report
    )


def decide_release_team(
    incident: Incident,
    *,
    team_id: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
    reason: str | None,
) -> list[Event]:
    """Recall a team on its way or release one on scene. When the last team of a
    dispatched incident is recalled, the incident goes back to verified (all units
    recalled: it is still a case, but nobody is going)."""
    _authorise(
        incident.exercise_id, incident.incident_id, actor, Action.INCIDENT_RELEASE_TEAM, "release a team"
    )
    why = _admit(
        incident, f"release team {team_id}", expected_version, reason, reason_for=f"release team {team_id}"
    )
    if incident.active_assignment(team_id) is None:
        raise IllegalTransition(f"team {team_id} is not on incident {incident.incident_id}")
    drafts: list[Draft] = [(TeamReleased(team_id=team_id), why)]
    if incident.active_team_ids == (team_id,):
        drafts += [(step, Said.of(Reason("release.all_recalled"))) for step in _moves(incident, A.RELEASE)]
    return _commit(incident, incident.incident_id, actor, at, drafts)


# --- commands: command decisions and records --------------------------------------------


class Context(TypedDict):
    """Who decides, when, and on which version of the incident: the keywords every
    decision takes (the corrections take them as ``**context``)."""

    actor: Actor
    at: datetime
    expected_version: int | None


def _amend(
    incident: Incident,
    action: Action,
    data: LevelChanged | Reclassified,
    already: str | None,
    words: tuple[str, str],
    reason: str | None,
    context: Context,
) -> list[Event]:
    """A correction of what the incident is (its level, its type), by whoever the policy
    allows ``action``, with a reason; refused when it is ``already`` so. ``words``: the
    act after "cannot …", and after "may not …" and "a reason is required to …"."""
    what, reason_for = words
    _authorise(incident.exercise_id, incident.incident_id, context["actor"], action, reason_for)
    why = _admit(incident, what, context["expected_version"], reason, reason_for=reason_for)
    if already is not None:
        raise IllegalTransition(f"incident {incident.incident_id} is already {already}")
    return _commit(incident, incident.incident_id, context["actor"], context["at"], [(data, why)])


def decide_change_level(
    incident: Incident, *, level: ResponseLevel, reason: str | None, **context: Unpack[Context]
) -> list[Event]:
    """Raise or lower the response level (响应级别) — a commander's act."""
    data = LevelChanged(from_level=incident.level, to_level=level)
    same = f"at level {level.name}" if level == incident.level else None
    words = ("change the response level",) * 2
    return _amend(incident, Action.INCIDENT_LEVEL, data, same, words, reason, context)


def decide_reclassify(
    incident: Incident, *, incident_type: IncidentType, reason: str | None, **context: Unpack[Context]
) -> list[Event]:
    """Correct the incident type (e.g. fire → high_rise_fire); plans are keyed by type."""
    data = Reclassified(from_type=incident.incident_type, to_type=incident_type)
    same = f"of type {incident_type}" if incident_type == incident.incident_type else None
    words = ("reclassify", "reclassify an incident")
    return _amend(incident, Action.INCIDENT_RECLASSIFY, data, same, words, reason, context)


def decide_activate_plan(
    incident: Incident,
    *,
    plan_id: str,
    plan_version: int,
    level: ResponseLevel,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
    reason: str | None = None,
    arrival_target_s: float | None = None,
) -> list[Event]:
    """Record a 预案 activation. Which plan, and who must approve it, is the plan
    module's business; the incident only keeps the record and the active plan (with
    the plan's arrival target, which the console's queue ranks against)."""
    _authorise(incident.exercise_id, incident.incident_id, actor, Action.PLAN_ACTIVATE, "activate a plan")
    _admit(incident, f"activate plan {plan_id}", expected_version)
    data = PlanActivated(
        plan_id=plan_id, plan_version=plan_version, level=level, arrival_target_s=arrival_target_s
    )
    return _commit(incident, incident.incident_id, actor, at, [(data, reason)])


def decide_tick_checklist(
    incident: Incident,
    *,
    plan_id: str,
    item_id: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
    done: bool = True,
    reason: str | None = None,
) -> list[Event]:
    """Tick (or untick, ``done=False``) an item of the active plan's checklist."""
    _authorise(
        incident.exercise_id, incident.incident_id, actor, Action.PLAN_CHECKLIST_TICK, "tick a checklist item"
    )
    _admit(incident, "tick a checklist item", expected_version)
    if incident.active_plan is None or incident.active_plan.plan_id != plan_id:
        raise IllegalTransition(f"plan {plan_id} is not the active plan of incident {incident.incident_id}")
    data = ChecklistItemTicked(plan_id=plan_id, item_id=item_id, done=done)
    return _commit(incident, incident.incident_id, actor, at, [(data, reason)])


def decide_add_note(
    incident: Incident, *, text: str, actor: Actor, at: datetime, expected_version: int | None
) -> list[Event]:
    """A free-text entry in the timeline (phone call with the scene, a decision's context)."""
    _authorise(incident.exercise_id, incident.incident_id, actor, Action.INCIDENT_NOTE, "add a note")
    _check_version(incident, expected_version)
    if not text.strip():
        raise InvalidCommand("a note needs text")
    _check_open(incident, "add a note")
    return _commit(incident, incident.incident_id, actor, at, [(NoteAdded(text=text.strip()), None)])


# --- commands on two incidents: split and merge -----------------------------------------


@dataclass(frozen=True, slots=True)
class SplitResult:
    """Events for both incidents; the edge appends both lists in one transaction."""

    from_events: tuple[Event, ...]  # for the incident the source leaves
    new_events: tuple[Event, ...]  # the new incident, opened with that source


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Events for both incidents; the edge appends both lists in one transaction."""

    merged_events: tuple[Event, ...]  # for the incident that ends as ``merged``
    survivor_events: tuple[Event, ...]  # for the incident that absorbs it


def decide_split(
    incident: Incident,
    *,
    alarm_id: str,
    new_incident_id: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
    reason: str | None,
    incident_type: IncidentType | None = None,
    level: ResponseLevel | None = None,
    title: str | None = None,
) -> SplitResult:
    """Move a wrongly joined alarm out into a new incident (拆分). The new incident keeps
    the old one's exercise id; its type, level and title default to the old one's (pass
    the correlator's suggestion for the alarm instead where there is one)."""
    _authorise(incident.exercise_id, incident.incident_id, actor, Action.INCIDENT_SPLIT, "split an incident")
    why = _admit(
        incident, f"split alarm {alarm_id} out", expected_version, reason, reason_for="split a source out"
    )
    if new_incident_id == incident.incident_id or not new_incident_id.strip():
        raise InvalidCommand("the split needs a new, different incident id")
    source = next((s for s in incident.sources if s.alarm_id == alarm_id), None)
    if source is None:
        raise IllegalTransition(f"alarm {alarm_id} is not linked to incident {incident.incident_id}")
    if len(incident.sources) < 2:
        raise IllegalTransition(
            f"alarm {alarm_id} is the only source of incident {incident.incident_id}; "
            "cancel it or mark it a false alarm instead of splitting"
        )
    from_events = _commit(
        incident,
        incident.incident_id,
        actor,
        at,
        [(SourceSplit(alarm_id=alarm_id, to_incident_id=new_incident_id), why)],
    )
    has_point = source.lat is not None and source.lon is not None
    opened = Opened(
        incident_type=incident_type or incident.incident_type,
        level=level or incident.level,
        title=(title or "").strip() or incident.title,
        lat=source.lat if has_point else None,
        lon=source.lon if has_point else None,
        grid_cell_id=source.grid_cell_id,
        exercise_id=incident.exercise_id,
        source=source,
        split_from=incident.incident_id,
    )
    new_events = _commit(None, new_incident_id, actor, at, [(opened, why)])
    return SplitResult(tuple(from_events), tuple(new_events))


def decide_merge(
    merged: Incident,
    survivor: Incident,
    *,
    actor: Actor,
    at: datetime,
    expected_merged_version: int | None,
    expected_survivor_version: int | None,
    reason: str | None,
) -> MergeResult:
    """Merge ``merged`` into ``survivor`` (合并). The survivor absorbs every source and
    every active team; ``merged`` ends in the terminal state ``merged`` with no sources
    left. If the teams carried over are further along than the survivor (it was still
    new or verified), the survivor's state is moved forward along the legal path."""
    for inc in (merged, survivor):
        _authorise(inc.exercise_id, inc.incident_id, actor, Action.INCIDENT_MERGE, "merge incidents")
    _check_version(merged, expected_merged_version)
    _check_version(survivor, expected_survivor_version)
    why = _require_reason(reason, "merge incidents")
    if merged.incident_id == survivor.incident_id:
        raise IllegalTransition("cannot merge an incident into itself")
    _check_open(merged, f"merge {merged.incident_id} into {survivor.incident_id}")
    _check_open(survivor, f"merge {merged.incident_id} into {survivor.incident_id}")
    if merged.exercise_id != survivor.exercise_id:
        raise IllegalTransition(
            "cannot merge an exercise incident with a live one (or two different exercises): "
            f"{merged.incident_id} is {merged.exercise_id or 'live'}, "
            f"{survivor.incident_id} is {survivor.exercise_id or 'live'}"
        )
    taken = set(survivor.active_team_ids)
    carried = tuple(t for t in merged.active_teams if t.team_id not in taken)
    merged_events = _commit(
        merged,
        merged.incident_id,
        actor,
        at,
        [
            (
                MergedInto(
                    target_incident_id=survivor.incident_id,
                    alarm_ids=merged.alarm_ids,
                    team_ids=tuple(t.team_id for t in carried),
                ),
                why,
            )
        ],
    )
    drafts: list[Draft] = [
        (Absorbed(from_incident_id=merged.incident_id, sources=merged.sources, teams=carried), why)
    ]
    if carried and survivor.state in _PROGRESS:
        goal = S.ON_SCENE if any(t.arrived_at is not None for t in carried) else S.DISPATCHED
        lift = f"teams carried over from merged incident {merged.incident_id}"
        start = _PROGRESS.index(survivor.state)
        stop = _PROGRESS.index(goal)
        for frm, to in zip(_PROGRESS[start:stop], _PROGRESS[start + 1 : stop + 1], strict=True):
            drafts.append((StateChanged(from_state=frm, to_state=to), lift))
    survivor_events = _commit(survivor, survivor.incident_id, actor, at, drafts)
    return MergeResult(tuple(merged_events), tuple(survivor_events))
