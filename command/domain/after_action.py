"""The after-action report (复盘报告), pure.

Built from the incident record — folded :class:`~command.domain.incidents.Incident`
values with the events behind them — plus what the edge knows besides: each incident's
plan activation as it stood at the end (checklist, requirements, the teams and supplies
it got) and the teams' GPS tracks. No I/O; the edge (``command/services/reports.py``)
loads, this module computes, ``command/services/report_render.py`` draws.

Definitions (docs/exercises.md, "After-action report", has the full text):

* **call-processing time** (接警处理时长) = first alarm → first dispatch, exactly
  :func:`command.domain.kpi.call_processing_s`; checked against NFPA 1225's alarm
  processing target, 60 s for 90 % of calls (the same numbers and the same rule as the
  live KPI: :func:`command.domain.kpi.compute_kpis` is called on the report's incidents).
* **time to dispatch** (派遣决策时长) = 立案 (first verified) → first dispatch: the
  command centre's own decision time once the case is confirmed.
* **time to on scene** (到场时长) = first dispatch → first arrival
  (:func:`command.domain.kpi.time_to_on_scene_s`).
* **response time** (总响应时长) = first alarm → first arrival.
* An incident that never got there (never dispatched, nobody arrived) has ``None`` for
  that duration and is counted under ``missing`` — never as 0 s.
* **checklist completion** = done / applicable items of the plan at the incident's
  final level (items done at a graver level that no longer apply are shown, not counted).
* **shortfall** = every team type and supply item of the final level's requirements
  that the incident did not get: teams counted are the distinct teams ever dispatched
  to it, supplies the quantity ever held or issued for it.

Merged incidents are left out of the rows and the KPIs (their sources and teams live on
in the survivor), as in the live KPIs; their events stay in the event log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Literal

from command.domain.incidents import (
    Absorbed,
    ChecklistItemTicked,
    Event,
    Held,
    Incident,
    IncidentState,
    LevelChanged,
    MergedInto,
    NoteAdded,
    Opened,
    PlanActivated,
    Reclassified,
    Resumed,
    SourceLinked,
    SourceSplit,
    StateChanged,
    TeamAcknowledged,
    TeamArrived,
    TeamDispatched,
    TeamEnRoute,
    TeamReleased,
)
from command.domain.kpi import (
    NFPA_1225_TARGET_S,
    NFPA_1225_TARGET_SHARE,
    call_processing_s,
    compute_kpis,
    time_to_on_scene_s,
)
from command.domain.plans import Activation, Requirements, shortfall
from command.domain.reasons import Reason
from command.domain.vocabulary import ResponseLevel
from wuwang.geo import haversine_m
from wuwang.stats import percentile

# --- inputs the edge hands in -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """An incident's plan as it stood at the end: the activation at the final level
    (from :func:`command.domain.plans.current_activation`), the distinct teams ever
    dispatched by type, and the supplies ever held or issued for it by item code."""

    plan_id: str
    title_zh: str
    title_en: str
    activation: Activation
    teams_by_type: Mapping[str, int]
    supplies: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One incident with its whole event record (``seq`` order) and its plan outcome."""

    incident: Incident
    events: tuple[Event, ...]
    plan: PlanOutcome | None = None


@dataclass(frozen=True, slots=True)
class TrackPoint:
    at: datetime
    lat: float
    lon: float


# --- the report ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    kind: Literal["exercise", "incident"]
    id: str
    name: str  # the exercise's name or the incident's title
    exercise_id: str | None  # None for a live incident
    start: datetime | None  # None only when there is nothing at all to report
    end: datetime | None


@dataclass(frozen=True, slots=True)
class LevelStep:
    at: datetime
    level: ResponseLevel
    by: str
    reason: str | None
    why: Reason | None = None  # a system-written reason's code (see LogEntry)


@dataclass(frozen=True, slots=True)
class ChecklistCompletion:
    done: int
    total: int  # applicable items at the final level

    @property
    def share(self) -> float | None:
        return self.done / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class ShortfallLine:
    incident_id: str
    kind: Literal["team", "supply"]
    key: str  # team type or item code
    required: int
    have: int
    unit: str

    @property
    def missing(self) -> int:
        return self.required - self.have


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident_id: str
    incident_type: str
    title: str
    state: IncidentState
    exercise_id: str | None
    lat: float | None
    lon: float | None
    level: ResponseLevel  # final
    levels: tuple[LevelStep, ...]  # the opening level, then every change
    teams: tuple[str, ...]  # distinct teams ever dispatched, in dispatch order
    first_alarm_at: datetime
    opened_at: datetime
    verified_at: datetime | None
    first_dispatch_at: datetime | None
    first_on_scene_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    ended_at: datetime | None
    call_processing_s: float | None
    time_to_dispatch_s: float | None
    time_to_on_scene_s: float | None
    response_s: float | None
    plan_id: str | None
    checklist: ChecklistCompletion | None  # None without an active plan


@dataclass(frozen=True, slots=True)
class DurationKpi:
    """A duration over the incidents: ``count`` have a value, ``missing`` never got
    that far (listed in ``missing_ids``), percentiles over the values only."""

    count: int
    missing: int
    missing_ids: tuple[str, ...]
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, pairs: Sequence[tuple[str, float | None]]) -> DurationKpi:
        values = [v for _, v in pairs if v is not None]
        missing = tuple(i for i, v in pairs if v is None)
        if not values:
            return cls(0, len(missing), missing, None, None, None, None)
        return cls(
            len(values),
            len(missing),
            missing,
            percentile(values, 50),
            percentile(values, 90),
            percentile(values, 99),
            max(values),
        )


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """NFPA 1225: alarm (call) processing within ``target_s`` for ``target_share`` of calls."""

    target_s: float
    target_share: float
    within_target: int
    share_within_target: float | None  # None when nothing was dispatched
    met: bool | None  # None without data


@dataclass(frozen=True, slots=True)
class Kpis:
    incidents: int  # rows (merged ones left out)
    dispatched: int
    reached: int  # someone arrived
    closed: int
    closure_rate: float | None  # as the live KPI: closed / not cancelled, false alarm, merged
    call_processing: DurationKpi
    nfpa_1225: TargetCheck
    time_to_dispatch: DurationKpi
    time_to_on_scene: DurationKpi
    response: DurationKpi
    checklist: ChecklistCompletion  # over every incident with a plan
    shortfalls: tuple[ShortfallLine, ...]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event of the unified event log. ``facts`` are the event's own values, the
    renderer's catalogue turns ``kind`` + ``facts`` into a sentence in either language."""

    at: datetime
    incident_id: str
    seq: int
    kind: str
    actor: str
    role: str
    reason: str | None
    facts: Mapping[str, str]
    #: A system-written reason's code (``reason`` is its Chinese text), for the renderer
    #: to say in the report's language.
    why: Reason | None = None


MilestoneKind = Literal[
    "alarm", "opened", "verified", "dispatched", "on_scene", "resolved", "closed", "ended"
]


@dataclass(frozen=True, slots=True)
class Milestone:
    at: datetime
    incident_id: str
    what: MilestoneKind


@dataclass(frozen=True, slots=True)
class Track:
    team_id: str
    points: tuple[TrackPoint, ...]  # in time order
    distance_m: float


@dataclass(frozen=True, slots=True)
class AfterActionReport:
    scope: Scope
    incidents: tuple[IncidentRow, ...]  # by first alarm
    kpis: Kpis
    milestones: tuple[Milestone, ...]  # the timeline, in time order
    log: tuple[LogEntry, ...]  # every event, in time order
    tracks: tuple[Track, ...]  # by team id
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


# --- building it --------------------------------------------------------------------


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())  # clocks behind count as 0, as in kpi


def level_history(incident: Incident, events: Iterable[Event]) -> tuple[LevelStep, ...]:
    steps: list[LevelStep] = []
    for e in events:
        if isinstance(e.data, Opened):
            steps.append(LevelStep(e.at, e.data.level, e.actor, e.reason, coded(e)))
        elif isinstance(e.data, LevelChanged):
            steps.append(LevelStep(e.at, e.data.to_level, e.actor, e.reason, coded(e)))
    return tuple(steps) or (LevelStep(incident.opened_at, incident.level, incident.opened_by, None),)


def coded(event: Event) -> Reason | None:
    """An event's system-written reason as a code, if it has one."""
    if event.reason_code is None:
        return None
    return Reason(event.reason_code, MappingProxyType(dict(event.reason_args or {})))


def checklist_completion(activation: Activation) -> ChecklistCompletion:
    applicable = [e for e in activation.checklist if e.applies]
    return ChecklistCompletion(sum(1 for e in applicable if e.done), len(applicable))


def plan_shortfalls(incident_id: str, plan: PlanOutcome) -> tuple[ShortfallLine, ...]:
    requirements: Requirements = plan.activation.requirements
    return tuple(
        ShortfallLine(incident_id, g.kind, g.key, g.required, g.have, g.unit)
        for g in shortfall(requirements, plan.teams_by_type, plan.supplies)
    )


def incident_row(record: IncidentRecord) -> IncidentRow:
    inc = record.incident
    seen: dict[str, None] = {}
    for t in inc.teams:
        seen.setdefault(t.team_id, None)
    return IncidentRow(
        incident_id=inc.incident_id,
        incident_type=str(inc.incident_type),
        title=inc.title,
        state=inc.state,
        exercise_id=inc.exercise_id,
        lat=inc.lat,
        lon=inc.lon,
        level=inc.level,
        levels=level_history(inc, record.events),
        teams=tuple(seen),
        first_alarm_at=inc.first_alarm_at,
        opened_at=inc.opened_at,
        verified_at=inc.verified_at,
        first_dispatch_at=inc.first_dispatch_at,
        first_on_scene_at=inc.first_on_scene_at,
        resolved_at=inc.resolved_at,
        closed_at=inc.closed_at,
        ended_at=inc.ended_at,
        call_processing_s=call_processing_s(inc),
        time_to_dispatch_s=_seconds(inc.verified_at, inc.first_dispatch_at),
        time_to_on_scene_s=time_to_on_scene_s(inc),
        response_s=_seconds(inc.first_alarm_at, inc.first_on_scene_at),
        plan_id=record.plan.plan_id if record.plan else None,
        checklist=checklist_completion(record.plan.activation) if record.plan else None,
    )


def event_facts(event: Event) -> dict[str, str]:
    """The values of an event worth a sentence, as strings (ids, levels, states)."""
    d = event.data
    match d:
        case Opened():
            facts = {"type": str(d.incident_type), "level": d.level.name, "title": d.title}
            if d.source is not None:
                facts |= {"alarm": d.source.alarm_id, "category": d.source.category}
            if d.split_from:
                facts["split_from"] = d.split_from
            return facts
        case SourceLinked():
            return {"alarm": d.source.alarm_id, "category": d.source.category, "summary": d.source.summary}
        case SourceSplit():
            return {"alarm": d.alarm_id, "to": d.to_incident_id}
        case MergedInto():
            return {"into": d.target_incident_id}
        case Absorbed():
            return {"from": d.from_incident_id, "alarms": str(len(d.sources)), "teams": str(len(d.teams))}
        case StateChanged():
            return {"from": str(d.from_state), "to": str(d.to_state)}
        case LevelChanged():
            return {"from": d.from_level.name, "to": d.to_level.name}
        case Reclassified():
            return {"from": str(d.from_type), "to": str(d.to_type)}
        case PlanActivated():
            return {"plan": d.plan_id, "version": str(d.plan_version), "level": d.level.name}
        case ChecklistItemTicked():
            return {"plan": d.plan_id, "item": d.item_id, "done": "yes" if d.done else "no"}
        case TeamDispatched() | TeamAcknowledged():
            return {"team": d.team_id, "order": d.order_id}
        case TeamArrived() | TeamReleased() | TeamEnRoute():
            return {"team": d.team_id}
        case NoteAdded():
            return {"text": d.text}
        case Held() | Resumed():
            return {}  # the why is the event's reason
    return {}  # pragma: no cover - the union is closed


def _milestones(row: IncidentRow) -> list[Milestone]:
    points: list[tuple[datetime | None, MilestoneKind]] = [
        (row.first_alarm_at, "alarm"),
        (row.opened_at, "opened"),
        (row.verified_at, "verified"),
        (row.first_dispatch_at, "dispatched"),
        (row.first_on_scene_at, "on_scene"),
        (row.resolved_at, "resolved"),
        (row.closed_at, "closed"),
        (row.ended_at if row.closed_at is None else None, "ended"),
    ]
    return [Milestone(at, row.incident_id, what) for at, what in points if at is not None]


def _track(team_id: str, points: Iterable[TrackPoint]) -> Track:
    ordered = tuple(sorted(points, key=lambda p: p.at))
    distance = sum(haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in pairwise(ordered))
    return Track(team_id, ordered, distance)


def build_report(
    *,
    kind: Literal["exercise", "incident"],
    scope_id: str,
    name: str,
    exercise_id: str | None,
    records: Sequence[IncidentRecord],
    tracks: Mapping[str, Sequence[TrackPoint]] | None = None,
    span: tuple[datetime | None, datetime | None] = (None, None),
    target_s: float = NFPA_1225_TARGET_S,
    target_share: float = NFPA_1225_TARGET_SHARE,
    extra: Mapping[str, object] | None = None,
) -> AfterActionReport:
    """The report over ``records``. ``span`` (e.g. an exercise's start and finish) widens
    the time span the incidents and events give; it never narrows it. Every incident
    must belong to ``exercise_id`` (None: live) — a report never mixes the two."""
    mixed = [r.incident.incident_id for r in records if r.incident.exercise_id != exercise_id]
    if mixed:
        raise ValueError(f"incidents not of {exercise_id or 'live operations'}: {', '.join(mixed[:5])}")
    counted = [r for r in records if r.incident.state is not IncidentState.MERGED]
    rows = sorted((incident_row(r) for r in counted), key=lambda r: (r.first_alarm_at, r.incident_id))

    log = sorted(
        (
            LogEntry(
                e.at,
                e.incident_id,
                e.seq,
                e.kind,
                e.actor,
                str(e.actor_role),
                e.reason,
                MappingProxyType(event_facts(e)),
                coded(e),
            )
            for r in records
            for e in r.events
        ),
        key=lambda x: (x.at, x.incident_id, x.seq),
    )
    milestones = sorted((m for row in rows for m in _milestones(row)), key=lambda m: (m.at, m.incident_id))

    times = [t for t in (*(x.at for x in log), *(m.at for m in milestones), *span) if t is not None]
    start, end = (min(times), max(times)) if times else (None, None)

    # The same call-processing numbers as the live KPI: compute_kpis over these incidents.
    check = TargetCheck(target_s, target_share, 0, None, None)
    closure_rate: float | None = None
    closed = 0
    incidents = [r.incident for r in counted]
    if incidents:
        opened = [i.opened_at for i in incidents]
        live = compute_kpis(
            incidents,
            window_start=min(opened),
            window_end=max(opened) + timedelta(microseconds=1),
            exercise_id=exercise_id,
            target_s=target_s,
            target_share=target_share,
        )
        cp = live.call_processing
        check = TargetCheck(target_s, target_share, cp.within_target, cp.share_within_target, cp.met)
        closure_rate, closed = live.closure.rate, live.closure.closed

    with_plan = [r.checklist for r in rows if r.checklist is not None]
    shortfalls = tuple(
        line
        for r in sorted(counted, key=lambda r: r.incident.incident_id)
        if r.plan
        for line in plan_shortfalls(r.incident.incident_id, r.plan)
    )

    def duration(pick: Callable[[IncidentRow], float | None]) -> DurationKpi:
        return DurationKpi.of([(row.incident_id, pick(row)) for row in rows])

    kpis = Kpis(
        incidents=len(rows),
        dispatched=sum(1 for r in rows if r.first_dispatch_at is not None),
        reached=sum(1 for r in rows if r.first_on_scene_at is not None),
        closed=closed,
        closure_rate=closure_rate,
        call_processing=duration(lambda r: r.call_processing_s),
        nfpa_1225=check,
        time_to_dispatch=duration(lambda r: r.time_to_dispatch_s),
        time_to_on_scene=duration(lambda r: r.time_to_on_scene_s),
        response=duration(lambda r: r.response_s),
        checklist=ChecklistCompletion(sum(c.done for c in with_plan), sum(c.total for c in with_plan)),
        shortfalls=shortfalls,
    )
    return AfterActionReport(
        scope=Scope(kind, scope_id, name, exercise_id, start, end),
        incidents=tuple(rows),
        kpis=kpis,
        milestones=tuple(milestones),
        log=tuple(log),
        tracks=tuple(_track(t, pts) for t, pts in sorted((tracks or {}).items())),
        extra=MappingProxyType(dict(extra or {})),
    )
