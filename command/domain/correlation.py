"""Alarm → incident correlation (duplicate-call detection), pure.

Each alarm from ingest (110 call, video alert, sensor alarm, field/grid report) either
joins an open incident or opens a new one. It joins when an open incident

* is of a type the alarm's category may join (``fire`` call, ``smoke`` sensor and
  ``fire_smoke`` video all join a fire),
* lies within the category's distance window (great-circle metres from the incident's
  location), and
* has a source within the category's time window of the alarm (measured from the
  incident's latest source; an alarm delivered late is measured to its earliest),
* and belongs to the same exercise (or both are live): exercise alarms never join live
  incidents, nor live alarms exercise ones.

Among candidates the nearest wins (compared to the metre); ties go to the smaller time
gap, then the smaller incident id, so the decision is the same on every worker. An alarm without a position
(a sensor whose device is not registered) joins only an incident that already has a
source from the same device; otherwise it opens a new incident.

Split and merge are incident commands (``decide_split`` / ``decide_merge`` in
:mod:`command.domain.incidents`) so that every command that writes events obeys the
same role, version and state checks in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from command.domain.incidents import (
    Actor,
    Event,
    Incident,
    IncidentState,
    SourceRef,
    decide_link_source,
    decide_open,
)
from command.domain.reasons import Param, Reason, Said, render
from command.domain.vocabulary import IncidentType, ResponseLevel
from wuwang import i18n
from wuwang.contract import FEEDS, Alarm
from wuwang.geo import haversine_m

T = IncidentType

#: States in which an incident accepts new alarms automatically. A resolved incident
#: (待核查) does not: a new call about it opens a new incident that someone will see,
#: instead of vanishing into a case nobody is watching; the operator may merge it.
JOINABLE_STATES: frozenset[IncidentState] = frozenset(
    {IncidentState.NEW, IncidentState.VERIFIED, IncidentState.DISPATCHED, IncidentState.ON_SCENE}
)

# --- rules -----------------------------------------------------------------------------


class RulesError(ValueError):
    """Correlation rules that cannot be used; the message says which entry and why."""


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """How alarms of one (kind, category) correlate."""

    incident_type: IncidentType  # what a new incident from such an alarm is
    distance_m: float
    window_s: float
    joins: frozenset[IncidentType]  # incident types such an alarm may join
    level: ResponseLevel  # suggested level for a new incident


@dataclass(frozen=True, slots=True)
class TypeRule:
    """Defaults for every category that maps to an incident type."""

    distance_m: float
    window_s: float
    joins: frozenset[IncidentType]
    level: ResponseLevel


@dataclass(frozen=True, slots=True)
class CategorySpec:
    """A category's mapping; ``None`` fields take the type's value at lookup time."""

    incident_type: IncidentType
    distance_m: float | None = None
    window_s: float | None = None
    joins: frozenset[IncidentType] | None = None
    level: ResponseLevel | None = None


def _level(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, ResponseLevel):
        try:
            return ResponseLevel.parse(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value


_Level = Annotated[ResponseLevel, BeforeValidator(_level)]
_Positive = Annotated[float, Field(gt=0)]


class _TypeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    distance_m: _Positive | None = None
    window_s: _Positive | None = None
    joins: list[IncidentType] | None = None
    level: _Level | None = None


class _CategoryInput(_TypeInput):
    type: IncidentType | None = None


class _RulesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    types: dict[IncidentType, _TypeInput] = Field(default_factory=dict)
    categories: dict[str, dict[str, _CategoryInput]] = Field(default_factory=dict)


#: The alarm kinds the feeds raise (their specification's ``alarm``), and "*" for any.
_KINDS = (*(spec.alarm for spec in FEEDS if spec.alarm is not None), "*")
_TYPE_NAMES = frozenset(t.value for t in IncidentType)


@dataclass(frozen=True, slots=True)
class CorrelationRules:
    """Per incident type and per (alarm kind, category) windows and compatibilities.

    Lookup for an alarm ``(kind, category)``: the exact entry; else the ``"*"`` kind's
    entry for that category; else, if the category is an incident type's name, that
    type; else the kind's ``"*"`` entry; else ``other``.
    """

    types: Mapping[IncidentType, TypeRule]
    categories: Mapping[tuple[str, str], CategorySpec]

    def rule_for(self, kind: str, category: str) -> CategoryRule:
        spec = self.categories.get((kind, category)) or self.categories.get(("*", category))
        if spec is None and category in _TYPE_NAMES:
            spec = CategorySpec(IncidentType(category))
        if spec is None:
            spec = self.categories.get((kind, "*")) or CategorySpec(IncidentType.OTHER)
        base = self.types[spec.incident_type]
        return CategoryRule(
            incident_type=spec.incident_type,
            distance_m=spec.distance_m if spec.distance_m is not None else base.distance_m,
            window_s=spec.window_s if spec.window_s is not None else base.window_s,
            joins=spec.joins if spec.joins is not None else base.joins,
            level=spec.level if spec.level is not None else base.level,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: CorrelationRules | None = None) -> CorrelationRules:
        """Rules from a dict (the YAML file at the edge), as overrides on ``base``
        (default: :func:`default_rules`). Format::

            types:                       # per incident type
              fire: {distance_m: 500, window_s: 1800, joins: [fire, high_rise_fire], level: IV}
            categories:                  # per alarm kind, then category ("*" = any)
              sensor:
                co: {type: hazmat_leak, joins: [hazmat_leak, fire, high_rise_fire]}

        Every field is optional: an override changes only what it names.
        """
        try:
            parsed = _RulesInput.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise RulesError(f"correlation rules: {loc}: {err['msg']}") from None
        base = base if base is not None else default_rules()
        types = dict(base.types)
        for itype, t in parsed.types.items():
            old = types[itype]
            types[itype] = TypeRule(
                distance_m=t.distance_m if t.distance_m is not None else old.distance_m,
                window_s=t.window_s if t.window_s is not None else old.window_s,
                joins=frozenset(t.joins) if t.joins is not None else old.joins,
                level=t.level if t.level is not None else old.level,
            )
        categories = dict(base.categories)
        for kind, entries in parsed.categories.items():
            if kind not in _KINDS:
                raise RulesError(f"correlation rules: categories.{kind}: unknown alarm kind (use {_KINDS})")
            for category, c in entries.items():
                old_spec = categories.get((kind, category))
                ctype = c.type or (old_spec.incident_type if old_spec else None)
                if ctype is None:
                    raise RulesError(f"correlation rules: categories.{kind}.{category}: 'type' is required")
                # A changed type drops the old entry's own windows: they were for the old type.
                keep = (
                    old_spec
                    if old_spec is not None and old_spec.incident_type == ctype
                    else CategorySpec(ctype)
                )
                categories[(kind, category)] = CategorySpec(
                    incident_type=ctype,
                    distance_m=c.distance_m if c.distance_m is not None else keep.distance_m,
                    window_s=c.window_s if c.window_s is not None else keep.window_s,
                    joins=frozenset(c.joins) if c.joins is not None else keep.joins,
                    level=c.level if c.level is not None else keep.level,
                )
        return cls(types=MappingProxyType(types), categories=MappingProxyType(categories))


_MIN = 60
#: The shipped defaults, in the same format as the YAML overrides (docs/incidents.md).
DEFAULT_RULES_DATA: Mapping[str, Any] = MappingProxyType(
    {
        "types": {
            "fire": {"distance_m": 500, "window_s": 30 * _MIN, "joins": ["fire", "high_rise_fire"]},
            "high_rise_fire": {"distance_m": 500, "window_s": 30 * _MIN, "joins": ["fire", "high_rise_fire"]},
            "hazmat_leak": {"distance_m": 1000, "window_s": 60 * _MIN},
            "flood": {"distance_m": 1500, "window_s": 120 * _MIN},
            "crowd_crush": {
                "distance_m": 500,
                "window_s": 30 * _MIN,
                "joins": ["crowd_crush", "public_order"],
            },
            "traffic_accident": {"distance_m": 300, "window_s": 20 * _MIN},
            "earthquake": {"distance_m": 50_000, "window_s": 360 * _MIN},
            "public_health": {"distance_m": 1000, "window_s": 360 * _MIN},
            "utility_outage": {"distance_m": 3000, "window_s": 120 * _MIN},
            "medical": {"joins": ["medical", "traffic_accident", "crowd_crush"]},
            "rescue": {"distance_m": 300, "window_s": 30 * _MIN, "joins": ["rescue", "flood", "earthquake"]},
            "criminal": {"distance_m": 300, "window_s": 30 * _MIN, "joins": ["criminal", "public_order"]},
            "public_order": {
                "distance_m": 300,
                "window_s": 30 * _MIN,
                "joins": ["public_order", "dispute", "criminal"],
            },
            "dispute": {"joins": ["dispute", "public_order"]},
        },
        "categories": {
            "call": {
                "criminal": {"type": "criminal"},
                "public_order": {"type": "public_order"},
                "traffic": {"type": "traffic_accident"},
                "fire": {"type": "fire"},
                "medical": {"type": "medical"},
                "rescue": {"type": "rescue"},
                "dispute": {"type": "dispute"},
                "other": {"type": "other"},
            },
            "video": {
                "fire_smoke": {"type": "fire"},
                "crowd": {"type": "crowd_crush"},
                "intrusion": {"type": "criminal"},
                "fight": {"type": "public_order"},
                "traffic_accident": {"type": "traffic_accident"},
                "fall": {"type": "medical"},
                "loitering": {"type": "public_order"},
                "*": {"type": "other"},
            },
            "sensor": {
                "smoke": {"type": "fire"},
                "temperature": {"type": "fire"},
                "gas": {"type": "hazmat_leak"},
                "co": {"type": "hazmat_leak", "joins": ["hazmat_leak", "fire", "high_rise_fire"]},
                "water_level": {"type": "flood"},
                "*": {"type": "other"},
            },
            "report": {
                "fire": {"type": "fire"},
                "smoke": {"type": "fire"},
                "flood": {"type": "flood"},
                "waterlogging": {"type": "flood"},
                "traffic": {"type": "traffic_accident"},
                "gas": {"type": "hazmat_leak"},
                "crowd": {"type": "crowd_crush"},
                "fight": {"type": "public_order"},
                "*": {"type": "other"},
            },
        },
    }
)

#: Every type not named above: 200 m / 15 min, joins only its own type, level IV.
DEFAULT_DISTANCE_M = 200.0
DEFAULT_WINDOW_S = 15.0 * _MIN


def _base_rules() -> CorrelationRules:
    types = {
        t: TypeRule(DEFAULT_DISTANCE_M, DEFAULT_WINDOW_S, frozenset({t}), ResponseLevel.IV)
        for t in IncidentType
    }
    return CorrelationRules(types=MappingProxyType(types), categories=MappingProxyType({}))


def default_rules() -> CorrelationRules:
    return CorrelationRules.from_dict(DEFAULT_RULES_DATA, base=_base_rules())


# --- incidents as the correlator sees them ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentView:
    """What correlation needs of an open incident (the edge may keep these in Redis)."""

    incident_id: str
    incident_type: IncidentType
    state: IncidentState
    exercise_id: str | None
    lat: float | None
    lon: float | None
    first_source_at: datetime
    last_source_at: datetime
    source_keys: frozenset[str]  # Alarm.source of every linked alarm (devices, cameras)
    alarm_ids: frozenset[str]

    @classmethod
    def of(cls, incident: Incident) -> IncidentView:
        return cls(
            incident_id=incident.incident_id,
            incident_type=incident.incident_type,
            state=incident.state,
            exercise_id=incident.exercise_id,
            lat=incident.lat,
            lon=incident.lon,
            first_source_at=incident.first_alarm_at,
            last_source_at=incident.latest_alarm_at,
            source_keys=frozenset(s.source for s in incident.sources),
            alarm_ids=frozenset(incident.alarm_ids),
        )


# --- decisions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinIncident:
    incident_id: str
    distance_m: float | None  # None when matched by same device without a position
    why: Reason

    @property
    def reason(self) -> str:
        return render(self.why)


@dataclass(frozen=True, slots=True)
class OpenIncident:
    incident_type: IncidentType
    level_suggestion: ResponseLevel
    title_zh: str
    why: Reason

    @property
    def reason(self) -> str:
        return render(self.why)


@dataclass(frozen=True, slots=True)
class AlreadyLinked:
    """The same alarm delivered again (at-least-once): nothing to do."""

    incident_id: str
    reason: str


CorrelationDecision = JoinIncident | OpenIncident | AlreadyLinked


def alarm_exercise_id(alarm: Alarm) -> str | None:
    """The exercise an alarm belongs to, if the replay marked it in ``details``."""
    value = alarm.details.get("exercise_id")
    return value if isinstance(value, str) and value else None


#: The ingest's call summary starts with the source and the category ("110报警 火灾: 幸福路12号");
#: the title names both elsewhere (the category first, the source as a tag on screen).
_CALL_SUMMARY_HEAD = re.compile(r"^\s*110报警\s+[^:：]*[:：]\s*")
_TITLE_PLACE_MAX = 60


def _place_words(alarm: Alarm, place: str | None = None) -> str:
    """Where, as an operator says it: the caller's address, else (a call without one) the
    caller's words, else ``place`` — the nearest crossing the service found for the
    alarm's point (``command.services.places.alarm_place``) — else the coordinates (a
    grid cell's id is an internal code: never on a screen)."""
    address = " ".join(str(alarm.details.get("address") or "").split())
    if address:
        return address
    if alarm.kind == "call":
        words = " ".join(_CALL_SUMMARY_HEAD.sub("", alarm.summary).split())
        if words:
            return words
    if place and place.strip():
        return " ".join(place.split())
    if alarm.lat is not None and alarm.lon is not None:
        return f"{alarm.lat:.4f}, {alarm.lon:.4f}"
    return ""


def title_for(alarm: Alarm, incident_type: IncidentType, place: str | None = None) -> str:
    """A new incident's title in the operator's words: what, then where —
    ``火灾 · 幸福路12号``, ``烟火 · 樊城区人民路与邓城大道交叉口附近`` for a camera
    (``place``). The source (110, video, sensor, report) is not repeated here: the
    console shows it as a tag from the incident's sources."""
    what = i18n.name_of("zh_CN", "type", incident_type)
    where = _place_words(alarm, place)
    if len(where) > _TITLE_PLACE_MAX:
        where = where[: _TITLE_PLACE_MAX - 1] + "…"
    return f"{what} · {where}" if where else what


def correlate(
    alarm: Alarm,
    open_incidents: Sequence[IncidentView],
    rules: CorrelationRules,
    now: datetime,
    *,
    exercise_id: str | None = None,
    place: str | None = None,
) -> CorrelationDecision:
    """Join the nearest compatible open incident, or open a new one.

    ``exercise_id`` marks the alarm as part of an exercise; if not given, it is read
    from ``alarm.details["exercise_id"]``. An alarm ``ts`` ahead of ``now`` (a device
    clock running fast) is taken as ``now``. ``place`` is the alarm's point in words,
    for a new incident's title (:func:`title_for`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    for view in open_incidents:
        if alarm.alarm_id in view.alarm_ids:
            return AlreadyLinked(
                view.incident_id, i18n.text("zh_CN", "correlation.already_linked", alarm=alarm.alarm_id)
            )

    exercise = exercise_id if exercise_id is not None else alarm_exercise_id(alarm)
    rule = rules.rule_for(alarm.kind, alarm.category)
    t = min(alarm.ts, now)
    has_point = alarm.lat is not None and alarm.lon is not None

    best: tuple[float, float, str] | None = None
    best_distance: float | None = None
    for view in open_incidents:
        if view.state not in JOINABLE_STATES or view.exercise_id != exercise:
            continue
        if view.incident_type not in rule.joins:
            continue
        if t > view.last_source_at:
            gap = (t - view.last_source_at).total_seconds()
        elif t < view.first_source_at:
            gap = (view.first_source_at - t).total_seconds()
        else:
            gap = 0.0
        if gap > rule.window_s:
            continue
        distance: float | None
        if alarm.lat is not None and alarm.lon is not None and view.lat is not None and view.lon is not None:
            distance = haversine_m(alarm.lat, alarm.lon, view.lat, view.lon)
            if distance > rule.distance_m:
                continue
        elif alarm.source in view.source_keys:
            distance = None  # same device, no position to compare
        else:
            continue
        # Distances are compared to the metre, so that "equally near" means something and
        # the time gap, then the id, decide between such incidents.
        key = (round(distance) if distance is not None else 0.0, gap, view.incident_id)
        if best is None or key < best:
            best, best_distance = key, distance

    # Reasons are codes with parameters (command/domain/reasons.py WHY): each reader
    # shows them in its own language.
    what: dict[str, Param] = {"alarm_kind": alarm.kind, "incident_type": rule.incident_type.value}
    if best is not None:
        _, gap, incident_id = best
        if best_distance is None:
            why = Reason(
                "correlation.joined_same_source",
                {**what, "incident_id": incident_id, "source": alarm.source, "gap_s": round(gap)},
            )
        else:
            why = Reason(
                "correlation.joined",
                {
                    **what,
                    "incident_id": incident_id,
                    "distance_m": round(best_distance),
                    "gap_s": round(gap),
                    "within_m": round(rule.distance_m),
                    "window_s": round(rule.window_s),
                },
            )
        return JoinIncident(incident_id=incident_id, distance_m=best_distance, why=why)
    if has_point:
        types = ",".join(sorted(rule.joins))
        why = Reason(
            "correlation.opened",
            {**what, "types": types, "within_m": round(rule.distance_m), "window_s": round(rule.window_s)},
        )
    else:
        why = Reason("correlation.opened_no_position", {**what, "source": alarm.source})
    return OpenIncident(
        incident_type=rule.incident_type,
        level_suggestion=rule.level,
        title_zh=title_for(alarm, rule.incident_type, place),
        why=why,
    )


# --- turning a decision into events ---------------------------------------------------------------


def open_from_alarm(
    alarm: Alarm,
    decision: OpenIncident,
    *,
    incident_id: str,
    actor: Actor,
    at: datetime,
    exercise_id: str | None = None,
) -> list[Event]:
    """The ``opened`` event for a new incident whose first source is ``alarm``."""
    return decide_open(
        incident_id,
        incident_type=decision.incident_type,
        level=decision.level_suggestion,
        title=decision.title_zh,
        actor=actor,
        at=at,
        source=SourceRef.from_alarm(alarm),
        exercise_id=exercise_id if exercise_id is not None else alarm_exercise_id(alarm),
        reason=Said.of(decision.why),
    )


def link_alarm(
    incident: Incident,
    alarm: Alarm,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
    reason: str | Said | None = None,
) -> list[Event]:
    """The ``source_linked`` event for ``alarm``; ``[]`` if it is already linked."""
    return decide_link_source(
        incident,
        SourceRef.from_alarm(alarm),
        actor=actor,
        at=at,
        expected_version=expected_version,
        reason=reason,
    )


# --- a field team's report and its order ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamOrder:
    """The order a team has in force, as the edge found it (same world as the report)."""

    order_id: str
    incident_id: str
    incident_open: bool


@dataclass(frozen=True, slots=True)
class ToOrderIncident:
    """Link the report to the incident of the team's order in force."""

    incident_id: str
    why: Reason

    @property
    def reason(self) -> str:
        return render(self.why)


@dataclass(frozen=True, slots=True)
class KeepReport:
    """A report that says it is no new event, from a team with no order in force: kept
    in the alarm ledger, it opens nothing (a crew's arrival or progress note)."""

    reason: str


TeamReportRoute = ToOrderIncident | KeepReport | None


def report_team(alarm: Alarm) -> str | None:
    """The team a report came from (its ``teams/v1/<id>/report`` topic), if any."""
    team = alarm.details.get("team_id") if alarm.kind == "report" else None
    return team if isinstance(team, str) and team else None


def route_team_report(alarm: Alarm, order: TeamOrder | None) -> TeamReportRoute:
    """Where a field team's report goes before triage and correlation
    (docs/incidents.md §5.1, docs/mqtt-contract.md ``new_event``):

    * ``new_event: true`` — the team says it found something else: ``None`` (triage and
      correlation as for any report, which opens a new incident or joins a nearby one);
    * otherwise, with an order in force on an open incident: that incident, wherever the
      report was sent from and whatever its category;
    * ``new_event: false`` without such an order: :class:`KeepReport`;
    * otherwise ``None`` (a report of a team with no order is an on-the-ground report).
    """
    team = report_team(alarm)
    if team is None:
        return None
    new_event = alarm.details.get("new_event")
    if new_event is True:
        return None
    if order is not None and order.incident_open:
        return ToOrderIncident(
            order.incident_id,
            Reason(
                "report.to_order",
                {"team": team, "order_id": order.order_id, "incident_id": order.incident_id},
            ),
        )
    if new_event is False:
        return KeepReport(i18n.text("zh_CN", "correlation.report_kept", team=team))
    return None
