"""告警分拣 — alarm triage: the alarm inbox beside the incident queue (issue 9), pure.

110 calls (and on-the-ground reports) open an incident as before. Sensor crossings and
video alerts land in the **inbox** unless a rule promotes them (:func:`decide`):

* a kind and confidence that always promote (fire/smoke, gas, a person down …);
* corroboration: independent sources (call, sensor, camera, field report) seeing
  compatible things within a radius and a window;
* a risk context: near a venue of a kind, or at a planned event while it runs.

What stays in the inbox folds (:func:`fold`): the same source and category in the same
scope (live, or one exercise) within a window is one :class:`InboxRow` with a count and
a last-seen time; a row that raises often within a window is **flapping**. Operators
act on rows one at a time or in bulk — promote, link to an open incident, dismiss with
a reason — and :func:`expire` moves unacted low-severity rows into a review list, with
the rule that moved them.

The rules are data (``command/triage/rules.yaml``, versioned), validated by
:func:`parse_rules` with errors that name the file, the line and the field. Reasons are
:class:`~command.domain.reasons.Reason` values — ``triage.<rule id>`` and parameters —
rendered from the rules' own zh-CN and English texts (:meth:`TriageRules.render`).

No I/O, no clock: the caller passes ``now``/``at``, the rules' text and the context.
See docs/triage.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StringConstraints, ValidationError, model_validator

from command.domain import policy
from command.domain.correlation import (
    JOINABLE_STATES,
    CorrelationRules,
    IncidentView,
    alarm_exercise_id,
    default_rules,
)
from command.domain.incidents import Actor, Forbidden, IllegalTransition, InvalidCommand
from command.domain.plans import _loc, _Strict, _UniqueKeyLoader, _validate
from command.domain.policy import Action
from command.domain.reasons import DEFAULT_LANG, Lang, Param, Reason, placeholders, shown_value
from command.domain.vocabulary import Role
from wuwang import i18n
from wuwang.contract import Alarm, AlarmKind
from wuwang.geo import haversine_m
from wuwang.yamltext import not_valid_yaml

ALARM_KINDS: tuple[AlarmKind, ...] = ("call", "video", "sensor", "report")

#: The rules shipped with the console (read at the edge; this module does no I/O).
DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "triage" / "rules.yaml"

#: Reason codes are ``triage.<rule id>``.
REASON_PREFIX = "triage."

# --- vocabulary -------------------------------------------------------------------------


class Severity(StrEnum):
    """How grave an inbox row is (its gravest alarm); orders expiry and the inbox."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class InboxState(StrEnum):
    OPEN = "open"  # 待研判: waiting for an operator
    PROMOTED = "promoted"  # 已立事件: an incident was opened from it
    LINKED = "linked"  # 已关联: attached to an open incident
    DISMISSED = "dismissed"  # 已排除: with a reason (误报/重复/测试/其他)
    EXPIRED = "expired"  # 待复核: nobody acted in time; kept for review, never deleted


#: States an operator may still act on: open rows, and expired rows under review.
ACTIONABLE_STATES: frozenset[InboxState] = frozenset({InboxState.OPEN, InboxState.EXPIRED})


class DismissReason(StrEnum):
    FALSE_ALARM = "false_alarm"  # 误报
    DUPLICATE = "duplicate"  # 重复
    TEST = "test"  # 测试
    OTHER = "other"  # 其他 (text required)


SYSTEM_ACTOR = Actor("system:triage", Role.SYSTEM)

# --- errors -----------------------------------------------------------------------------


class TriageRulesError(ValueError):
    """Rules that cannot be used. ``problems`` holds one line per problem, each
    ``<file>:<line>: <field path>: <what is wrong>``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid triage rules:\n  " + "\n  ".join(self.problems))


# --- the YAML schema --------------------------------------------------------------------

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Template = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Category = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9_]{0,31})$")]
_Positive = Annotated[float, Field(gt=0)]
_Confidence = Annotated[float, Field(ge=0, le=1)]
_AppliesTo = dict[
    Literal["call", "video", "sensor", "report"], Annotated[list[Category], Field(min_length=1)]
]


class _Rule(_Strict):
    id: RuleId
    zh: Template
    en: Template


class KindRule(_Rule):
    kind: Literal["call", "video", "sensor", "report"]
    action: Literal["promote", "inbox"]


class AlwaysPromoteRule(_Rule):
    applies_to: Annotated[_AppliesTo, Field(min_length=1)]
    min_confidence: _Confidence | None = None
    #: Sensors only: the reading must be at least this multiple of its raise level. A
    #: lone marginal crossing (dust, steam, a drifting cell) then waits in the inbox —
    #: at its severity, still promoted by corroboration or a risk context.
    min_reading_ratio: Annotated[float, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _confidence_for_video(self) -> AlwaysPromoteRule:
        _check_confidence_kinds(self.applies_to, self.min_confidence)
        _check_reading_kinds(self.applies_to, self.min_reading_ratio)
        return self


class CorroborationRule(_Rule):
    applies_to: Annotated[_AppliesTo, Field(min_length=1)]
    radius_m: _Positive
    window_s: _Positive
    min_sources: Annotated[int, Field(ge=2, le=20)] = 2
    #: True: the sources must also be of different kinds (a call and a camera; two
    #: cameras are not enough).
    distinct_kinds: bool = False


class NearVenue(_Strict):
    kinds: Annotated[list[RuleId], Field(min_length=1)]
    radius_m: _Positive


class DuringEvent(_Strict):
    before_s: Annotated[float, Field(ge=0)] = 0
    after_s: Annotated[float, Field(ge=0)] = 0
    extra_radius_m: Annotated[float, Field(ge=0)] = 0


class RiskRule(_Rule):
    applies_to: Annotated[_AppliesTo, Field(min_length=1)]
    near_venue: NearVenue | None = None
    during_event: DuringEvent | None = None
    min_confidence: _Confidence | None = None
    min_reading_ratio: Annotated[float, Field(ge=1)] | None = None  # sensors only, as in always_promote

    @model_validator(mode="after")
    def _one_context(self) -> RiskRule:
        if (self.near_venue is None) == (self.during_event is None):
            raise ValueError("a risk rule needs exactly one of near_venue and during_event")
        _check_confidence_kinds(self.applies_to, self.min_confidence)
        _check_reading_kinds(self.applies_to, self.min_reading_ratio)
        return self


class SeverityTable(_Strict):
    default: Severity
    by_kind: dict[Literal["call", "video", "sensor", "report"], dict[Category, Severity]] = Field(
        default_factory=dict
    )


class FoldRule(_Rule):
    window_s: _Positive
    max_span_s: _Positive
    keep_alarm_ids: Annotated[int, Field(ge=1, le=1000)] = 50

    @model_validator(mode="after")
    def _span(self) -> FoldRule:
        if self.max_span_s < self.window_s:
            raise ValueError("max_span_s must not be shorter than window_s")
        return self


class FlappingRule(_Rule):
    window_s: _Positive
    min_raises: Annotated[int, Field(ge=2, le=256)]


class MuteRule(_Rule):
    after_false_alarm_s: Annotated[float, Field(ge=0)]


class ExpiryRule(_Rule):
    max_severity: Severity
    after_s: _Positive


class _RulesFile(_Strict):
    version: Annotated[int, Field(ge=1)]
    by_kind: Annotated[list[KindRule], Field(min_length=1)]
    always_promote: list[AlwaysPromoteRule] = Field(default_factory=list)
    corroboration: list[CorroborationRule] = Field(default_factory=list)
    risk: list[RiskRule] = Field(default_factory=list)
    severity: SeverityTable
    fold: FoldRule
    flapping: FlappingRule
    mute: MuteRule | None = None
    expiry: list[ExpiryRule] = Field(default_factory=list)


def _check_confidence_kinds(applies_to: Mapping[Any, Sequence[str]], min_confidence: float | None) -> None:
    if min_confidence is not None and set(applies_to) != {"video"}:
        raise ValueError("min_confidence applies to video alerts only: list only video in applies_to")


def _check_reading_kinds(applies_to: Mapping[Any, Sequence[str]], min_reading_ratio: float | None) -> None:
    if min_reading_ratio is not None and set(applies_to) != {"sensor"}:
        raise ValueError("min_reading_ratio applies to sensors only: list only sensor in applies_to")


#: The parameters each section's reason texts may use (checked at load).
_COMMON = ("kind", "category", "source")
_PARAMS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "by_kind": frozenset(_COMMON),
        "always_promote": frozenset(
            (
                *_COMMON,
                "confidence",
                "min_confidence",
                "value",
                "raise_at",
                "reading_ratio",
                "min_reading_ratio",
            )
        ),
        "corroboration": frozenset((*_COMMON, "sources", "kinds", "radius_m", "window_s", "distance_m")),
        "risk.near_venue": frozenset(
            (*_COMMON, "venue_id", "venue_name", "venue_kind", "distance_m", "radius_m", "confidence")
        ),
        "risk.during_event": frozenset((*_COMMON, "event_id", "event_name", "distance_m", "confidence")),
        "fold": frozenset(("source", "category", "window_s", "count")),
        "flapping": frozenset(("raises", "window_s", "min_raises")),
        "mute": frozenset(("ago_s",)),
        "expiry": frozenset(("severity", "after_s", "quiet_s")),
    }
)

# --- the rules ---------------------------------------------------------------------------


def _matches(applies_to: Mapping[Any, Sequence[str]], kind: str, category: str) -> bool:
    categories = applies_to.get(kind)
    return categories is not None and ("*" in categories or category in categories)


@dataclass(frozen=True)
class TriageRules:
    """The validated rules file, with the correlation rules that say which alarm
    categories are about the same kind of thing (for corroboration)."""

    version: int
    by_kind: Mapping[str, KindRule]
    always_promote: tuple[AlwaysPromoteRule, ...]
    corroboration: tuple[CorroborationRule, ...]
    risk: tuple[RiskRule, ...]
    severity_table: SeverityTable
    fold: FoldRule
    flapping: FlappingRule
    mute: MuteRule | None
    expiry: tuple[ExpiryRule, ...]
    correlation: CorrelationRules
    texts: Mapping[str, tuple[str, str]]  # rule id → (zh, en)

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset(self.texts)

    def severity(self, kind: str, category: str) -> Severity:
        table = self.severity_table.by_kind.get(kind, {})  # type: ignore[call-overload]
        found: Severity | None = table.get(category) or table.get("*")
        return found if found is not None else self.severity_table.default

    def route(self, kind: str, category: str) -> tuple[str, ...]:
        """Every rule that may decide an alarm of ``(kind, category)``: its kind rule
        first, then the always-promote, corroboration and risk rules naming it."""
        out = [self.by_kind[kind].id] if kind in self.by_kind else []
        for group in (self.always_promote, self.corroboration, self.risk):
            out.extend(r.id for r in group if _matches(r.applies_to, kind, category))
        return tuple(out)

    def compatible(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        """Whether alarms of ``(kind, category)`` a and b are about the same kind of
        thing: one's incident type may join the other's (correlation rules)."""
        ra, rb = self.correlation.rule_for(*a), self.correlation.rule_for(*b)
        return ra.incident_type in rb.joins or rb.incident_type in ra.joins

    def render(self, reason: Reason, lang: Lang = DEFAULT_LANG) -> str:
        """A triage reason's text in ``lang``, from the rule's own zh/en texts. An
        unknown code, or parameters the text cannot take, show as the code and its
        parameters — visible, never a crash."""
        rule_id = reason.code.removeprefix(REASON_PREFIX)
        texts = self.texts.get(rule_id) if reason.code.startswith(REASON_PREFIX) else None
        if texts is not None:
            template = texts[0] if lang == "zh_CN" else texts[1]
            values = {k: triage_value(k, v, lang) for k, v in reason.params.items()}
            try:
                return template.format_map(values)
            except (KeyError, ValueError, IndexError):
                pass
        return " ".join([reason.code, *(f"{k}={v}" for k, v in reason.params.items())])


#: The catalogue prefixes of the codes a triage reason's parameters carry (alarm kinds,
#: video events, sensor kinds, call categories, severities, venue kinds): an operator
#: reads 徘徊逗留, not ``loitering``. A code the catalogue has no words for is shown as it is.
TRIAGE_WORDS: Mapping[str, str] = MappingProxyType(
    {"kind": "inbox.kind", "category": "inbox.cat", "severity": "inbox.sev", "venue_kind": "venue_kind"}
)


def triage_value(name: str, value: Param, lang: Lang) -> Param:
    """A parameter as a triage reason shows it: the catalogue's words for its code
    (``kinds``, "call+video", word by word), else as reasons.shown_value shows it."""
    if name == "kinds" and isinstance(value, str):
        names = (i18n.name_of(lang, TRIAGE_WORDS["kind"], k) for k in value.split("+"))
        return i18n.text(lang, "triage.kinds_separator").join(names)
    prefix = TRIAGE_WORDS.get(name)
    if prefix is not None and isinstance(value, str):
        return i18n.name_of(lang, prefix, value)
    return shown_value(name, value, lang)


def reason_for(rule_id: str, **params: Param) -> Reason:
    return Reason(REASON_PREFIX + rule_id, MappingProxyType(dict(params)))


# --- loading: YAML with line numbers ----------------------------------------------------------

_Path = tuple[str | int, ...]


def _lines(node: yaml.Node, path: _Path, out: dict[_Path, int]) -> None:
    """The 1-based line of every value's path (a mapping entry: its key's line)."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            out[child] = key_node.start_mark.line + 1
            _lines(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_of(lines: Mapping[_Path, int], path: Sequence[str | int]) -> int:
    """The line of the longest known prefix (a missing field: its mapping's line)."""
    p = tuple(path)
    while p and p not in lines:
        p = p[:-1]
    return lines.get(p, 1)


def _clean_loc(loc: Sequence[int | str]) -> _Path:
    # Unions and validators add their own names (``function-after[...]``) to the path.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def parse_rules(
    text: str, filename: str = "rules.yaml", *, correlation: CorrelationRules | None = None
) -> TriageRules:
    """Validate a rules file's text (pure). Raises :class:`TriageRulesError` listing
    every problem as ``<file>:<line>: <path>: <message>``. ``correlation`` (default:
    the shipped correlation rules) says which categories corroborate each other."""
    name = Path(filename).name
    # The plans' loader: a SafeLoader that refuses duplicate keys (with the key's mark).
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise TriageRulesError([not_valid_yaml(name, exc)]) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise TriageRulesError([f"{name}:1: the rules are a mapping with version, by_kind, fold, …"])
    lines: dict[_Path, int] = {}
    _lines(node, (), lines)

    def at(path: Sequence[str | int], message: str) -> str:
        return f"{name}:{_line_of(lines, path)}: {_loc(path)}: {message}"

    try:
        parsed: _RulesFile = _validate(_RulesFile, data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = _clean_loc(e["loc"])
            problems.append(at(loc, str(e["msg"]).removeprefix("Value error, ")))
        raise TriageRulesError(problems) from None

    problems = _rule_problems(parsed, at)
    if problems:
        raise TriageRulesError(problems)
    texts: dict[str, tuple[str, str]] = {}
    for _, _, rule in _all_rules(parsed):
        texts[rule.id] = (rule.zh, rule.en)
    return TriageRules(
        version=parsed.version,
        by_kind=MappingProxyType({r.kind: r for r in parsed.by_kind}),
        always_promote=tuple(parsed.always_promote),
        corroboration=tuple(parsed.corroboration),
        risk=tuple(parsed.risk),
        severity_table=parsed.severity,
        fold=parsed.fold,
        flapping=parsed.flapping,
        mute=parsed.mute,
        expiry=tuple(parsed.expiry),
        correlation=correlation if correlation is not None else default_rules(),
        texts=MappingProxyType(texts),
    )


def _all_rules(parsed: _RulesFile) -> Iterable[tuple[_Path, str, _Rule]]:
    """(path, parameter set, rule) of every rule in the file, in file order."""
    for i, k in enumerate(parsed.by_kind):
        yield ("by_kind", i), "by_kind", k
    for i, a in enumerate(parsed.always_promote):
        yield ("always_promote", i), "always_promote", a
    for i, c in enumerate(parsed.corroboration):
        yield ("corroboration", i), "corroboration", c
    for i, r in enumerate(parsed.risk):
        yield ("risk", i), "risk.near_venue" if r.near_venue is not None else "risk.during_event", r
    yield ("fold",), "fold", parsed.fold
    yield ("flapping",), "flapping", parsed.flapping
    if parsed.mute is not None:
        yield ("mute",), "mute", parsed.mute
    for i, e in enumerate(parsed.expiry):
        yield ("expiry", i), "expiry", e


def _rule_problems(parsed: _RulesFile, at: Callable[[Sequence[str | int], str], str]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path, params, rule in _all_rules(parsed):
        where = _loc(path)
        if rule.id in seen:
            problems.append(at((*path, "id"), f"rule id {rule.id!r} is already used by {seen[rule.id]}"))
        seen.setdefault(rule.id, where)
        allowed = _PARAMS[params]
        for lang in ("zh", "en"):
            template = getattr(rule, lang)
            try:
                used = placeholders(template)
            except ValueError as exc:
                problems.append(at((*path, lang), f"not a valid text template: {exc}"))
                continue
            unknown = sorted(used - allowed)
            if unknown:
                problems.append(
                    at(
                        (*path, lang),
                        f"unknown placeholder(s) {', '.join(unknown)}; this rule's texts may use: "
                        f"{', '.join(sorted(allowed))}",
                    )
                )
    kinds = [r.kind for r in parsed.by_kind]
    for i, kind in enumerate(kinds):
        if kind in kinds[:i]:
            problems.append(at(("by_kind", i, "kind"), f"alarm kind {kind!r} has a rule already"))
    missing = [k for k in ALARM_KINDS if k not in kinds]
    if missing:
        problems.append(
            at(("by_kind",), f"no rule for alarm kind(s) {', '.join(missing)}: every kind needs one")
        )
    return problems


# --- alarms as triage sees them ---------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def alarm_confidence(alarm: Alarm) -> float | None:
    """A video alert's confidence (``details["confidence"]``); None for other alarms."""
    return _number(alarm.details.get("confidence"))


def alarm_reading(alarm: Alarm) -> tuple[float, float] | None:
    """A sensor alarm's reading and its raise level (``details["value"]``,
    ``details["raise_at"]``, as the ingest records them); None when either is missing."""
    value, raise_at = _number(alarm.details.get("value")), _number(alarm.details.get("raise_at"))
    if value is None or raise_at is None or raise_at <= 0:
        return None
    return value, raise_at


def source_identity(kind: str, source: str, details: Mapping[str, Any], msg_id: str = "") -> str:
    """Who or what witnessed an alarm — two alarms are **independent** when these differ.

    * a 110 call: its caller (masked number; each call is its own witness when the
      number is withheld) — every call comes through the one 110 system's source key;
    * a camera or a sensor: its device (the alarm's source key);
    * a field report: its reporter (a team or a grid worker), else its source key.
    """
    if kind == "call":
        caller = details.get("caller_masked")
        return (
            f"call:{caller}" if isinstance(caller, str) and caller.strip("*") else f"call:{source}#{msg_id}"
        )
    if kind == "report":
        reporter = details.get("reporter")
        return f"report:{reporter}" if isinstance(reporter, str) and reporter else f"report:{source}"
    return f"{kind}:{source}"


def _identity(alarm: Alarm) -> str:
    return source_identity(alarm.kind, alarm.source, alarm.details, alarm.msg_id)


def _when(alarm: Alarm, now: datetime) -> datetime:
    """The alarm's time; a device clock running fast is taken as ``now``."""
    return min(alarm.ts, now)


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


# --- inbox rows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowKey:
    """What folds together: one source (device, camera), one category, one scope."""

    source: str
    category: str
    exercise_id: str | None  # None: live

    @classmethod
    def of(cls, alarm: Alarm) -> RowKey:
        return cls(alarm.source, alarm.category, alarm_exercise_id(alarm))


def row_id_for(first_alarm_id: str) -> str:
    """A row's id: from its first alarm's id, so every worker names it alike."""
    return "IB-" + hashlib.sha256(first_alarm_id.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One inbox row: every alarm of one key folded within the fold window."""

    row_id: str
    key: RowKey
    alarm_kind: AlarmKind
    first_seen: datetime
    last_seen: datetime
    count: int  # every alarm folded in (alarm_ids keeps only the latest few)
    max_severity: Severity
    max_confidence: float | None
    lat: float | None
    lon: float | None
    grid_cell_id: str | None
    summary: str  # the latest alarm's summary
    first_alarm_id: str
    alarm_ids: tuple[str, ...]  # the last ``fold.keep_alarm_ids`` folded in, in the order folded
    recent: tuple[datetime, ...]  # times of the latest alarms (for flapping), in time order
    identity: str  # source_identity of its alarms
    flapping: bool = False
    flapping_since: datetime | None = None
    state: InboxState = InboxState.OPEN
    acted_by: str | None = None
    acted_role: Role | None = None
    acted_at: datetime | None = None
    rule_id: str | None = None  # the rule that promoted, linked or expired it
    dismiss_reason: DismissReason | None = None
    note: str | None = None
    incident_id: str | None = None

    @property
    def exercise_id(self) -> str | None:
        return self.key.exercise_id

    @property
    def is_open(self) -> bool:
        return self.state == InboxState.OPEN

    @property
    def alarm_ids_truncated(self) -> bool:
        return self.count > len(self.alarm_ids)

    @property
    def last_alarm_id(self) -> str:
        """The alarm folded in last (the edge opens an incident from it on promotion)."""
        return self.alarm_ids[-1]


def flapping_raises(recent: Sequence[datetime], last_seen: datetime, rule: FlappingRule) -> int:
    """How many of the row's latest alarms fall within ``rule.window_s`` up to its last."""
    since = last_seen - timedelta(seconds=rule.window_s)
    return sum(1 for t in recent if t >= since)


def _new_row(alarm: Alarm, t: datetime, rules: TriageRules) -> InboxRow:
    return InboxRow(
        row_id=row_id_for(alarm.alarm_id),
        key=RowKey.of(alarm),
        alarm_kind=alarm.kind,
        first_seen=t,
        last_seen=t,
        count=1,
        max_severity=rules.severity(alarm.kind, alarm.category),
        max_confidence=alarm_confidence(alarm),
        lat=alarm.lat,
        lon=alarm.lon,
        grid_cell_id=alarm.grid_cell_id,
        summary=alarm.summary,
        first_alarm_id=alarm.alarm_id,
        alarm_ids=(alarm.alarm_id,),
        recent=(t,),
        identity=_identity(alarm),
    )


def _folded(row: InboxRow, alarm: Alarm, t: datetime, rules: TriageRules) -> InboxRow:
    severity = rules.severity(alarm.kind, alarm.category)
    confidence = alarm_confidence(alarm)
    confidences = [c for c in (row.max_confidence, confidence) if c is not None]
    latest = t >= row.last_seen
    keep = rules.fold.keep_alarm_ids
    cap = max(rules.flapping.min_raises, 1) * 4
    recent = tuple(sorted((*row.recent, t)))[-cap:]
    last_seen = max(row.last_seen, t)
    flapping = flapping_raises(recent, last_seen, rules.flapping) >= rules.flapping.min_raises
    has_point = alarm.lat is not None and alarm.lon is not None
    return replace(
        row,
        first_seen=min(row.first_seen, t),
        last_seen=last_seen,
        count=row.count + 1,
        max_severity=severity if severity.rank > row.max_severity.rank else row.max_severity,
        max_confidence=max(confidences) if confidences else None,
        lat=alarm.lat if latest and has_point else row.lat,
        lon=alarm.lon if latest and has_point else row.lon,
        grid_cell_id=alarm.grid_cell_id if latest and alarm.grid_cell_id else row.grid_cell_id,
        summary=alarm.summary if latest else row.summary,
        alarm_ids=(*row.alarm_ids, alarm.alarm_id)[-keep:],
        recent=recent,
        flapping=row.flapping or flapping,
        flapping_since=row.flapping_since if row.flapping_since or not flapping else last_seen,
    )


def flapping_reason(row: InboxRow, rules: TriageRules) -> Reason | None:
    """Why a row shows as flapping (None when it does not)."""
    if not row.flapping:
        return None
    rule = rules.flapping
    return reason_for(
        rule.id,
        raises=flapping_raises(row.recent, row.last_seen, rule),
        window_s=rule.window_s,
        min_raises=rule.min_raises,
    )


@dataclass(frozen=True, slots=True)
class Folded:
    """The alarm was folded into an open row (``opened``: a new row was started)."""

    row_id: str
    count: int
    opened: bool
    reason: Reason  # the fold rule, with the row's count


@dataclass(frozen=True, slots=True)
class AlreadyFolded:
    """The same alarm delivered again (at-least-once): nothing changed."""

    row_id: str


FoldDecision = Folded | AlreadyFolded


def _can_fold(row: InboxRow, key: RowKey, t: datetime, rule: FoldRule) -> bool:
    if not row.is_open or row.key != key:
        return False
    window = timedelta(seconds=rule.window_s)
    if not row.first_seen - window <= t <= row.last_seen + window:
        return False
    return (max(row.last_seen, t) - min(row.first_seen, t)).total_seconds() <= rule.max_span_s


def fold(
    rows: Sequence[InboxRow], alarm: Alarm, now: datetime, rules: TriageRules
) -> tuple[tuple[InboxRow, ...], FoldDecision]:
    """Fold ``alarm`` into the open row of its key (source, category, exercise scope)
    whose alarms lie within the fold window of it — the latest such row — or start a
    new row. Rows of other keys, and rows no longer open, are never touched; an alarm
    already folded (by id, among a row's kept ids) changes nothing."""
    _aware(now, "now")
    for row in rows:
        if alarm.alarm_id in row.alarm_ids or alarm.alarm_id == row.first_alarm_id:
            return tuple(rows), AlreadyFolded(row.row_id)
    key, t = RowKey.of(alarm), _when(alarm, now)
    target: int | None = None
    for i, row in enumerate(rows):
        if _can_fold(row, key, t, rules.fold) and (target is None or row.last_seen > rows[target].last_seen):
            target = i
    out = list(rows)
    if target is None:
        row = _new_row(alarm, t, rules)
        out.append(row)
        opened = True
    else:
        row = _folded(rows[target], alarm, t, rules)
        out[target] = row
        opened = False
    reason = reason_for(
        rules.fold.id, source=key.source, category=key.category, window_s=rules.fold.window_s, count=row.count
    )
    return tuple(out), Folded(row.row_id, row.count, opened, reason)


# --- promotion ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueRef:
    """A registered venue (wuwang.city Venue: school, chemical_plant, stadium …)."""

    venue_id: str
    kind: str
    lat: float
    lon: float
    name: str = ""


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """A planned event (大型活动: concert, match, festival) with its place and time.
    ``exercise_id`` set: an event of that exercise only."""

    event_id: str
    name: str
    lat: float
    lon: float
    radius_m: float
    starts_at: datetime
    ends_at: datetime
    exercise_id: str | None = None


@dataclass(frozen=True)
class TriageContext:
    """What :func:`decide` may look at besides the alarm. The edge passes what is
    near (a few kilometres) and recent (the longest corroboration window); anything
    farther or older, or of another scope, is ignored here anyway."""

    now: datetime
    recent_alarms: Sequence[Alarm] = ()  # calls, reports, alarms promoted or in the inbox
    rows: Sequence[InboxRow] = ()  # inbox rows (any state)
    venues: Sequence[VenueRef] = ()
    events: Sequence[PlannedEvent] = ()


@dataclass(frozen=True, slots=True)
class Promotion:
    """Open an incident from the alarm (through correlation, which may join an open
    one), because of ``rule_id``. ``supporting_*`` are the alarms and inbox rows that
    corroborated it (the edge links those rows to the same incident)."""

    rule_id: str
    reason: Reason
    rules_version: int
    supporting_alarm_ids: tuple[str, ...] = ()
    supporting_row_ids: tuple[str, ...] = ()


def _distance(alarm: Alarm, lat: float | None, lon: float | None) -> float | None:
    if alarm.lat is None or alarm.lon is None or lat is None or lon is None:
        return None
    return haversine_m(alarm.lat, alarm.lon, lat, lon)


#: Dismissed rows whose alarms no longer count as a witness.
_DISCREDITED = frozenset({DismissReason.FALSE_ALARM, DismissReason.TEST})


@dataclass(frozen=True, slots=True)
class _Witness:
    identity: str
    kind: str
    distance_m: float
    alarm_id: str | None
    row_id: str | None


def _witnesses(
    alarm: Alarm, ctx: TriageContext, rule: CorroborationRule, rules: TriageRules
) -> list[_Witness]:
    """Other sources, independent of the alarm's, of the same scope, compatible, within
    the rule's radius and window of the alarm."""
    scope, own, t = alarm_exercise_id(alarm), _identity(alarm), _when(alarm, ctx.now)
    window = timedelta(seconds=rule.window_s)
    me = (alarm.kind, alarm.category)
    out: list[_Witness] = []
    for other in ctx.recent_alarms:
        if other.alarm_id == alarm.alarm_id or alarm_exercise_id(other) != scope:
            continue
        ident = _identity(other)
        if ident == own or abs(_when(other, ctx.now) - t) > window:
            continue
        if not rules.compatible(me, (other.kind, other.category)):
            continue
        d = _distance(alarm, other.lat, other.lon)
        if d is not None and d <= rule.radius_m:
            out.append(_Witness(ident, other.kind, d, other.alarm_id, None))
    for row in ctx.rows:
        if row.exercise_id != scope or row.identity == own or alarm.alarm_id in row.alarm_ids:
            continue
        if row.state == InboxState.DISMISSED and row.dismiss_reason in _DISCREDITED:
            continue
        if not (row.first_seen - window <= t <= row.last_seen + window):
            continue
        if not rules.compatible(me, (row.alarm_kind, row.key.category)):
            continue
        d = _distance(alarm, row.lat, row.lon)
        if d is not None and d <= rule.radius_m:
            out.append(_Witness(row.identity, row.alarm_kind, d, None, row.row_id))
    return out


def _corroborated(alarm: Alarm, ctx: TriageContext, rules: TriageRules) -> Promotion | None:
    for rule in rules.corroboration:
        if not _matches(rule.applies_to, alarm.kind, alarm.category):
            continue
        found = _witnesses(alarm, ctx, rule, rules)
        identities = {w.identity for w in found} | {_identity(alarm)}
        kinds = {w.kind for w in found} | {alarm.kind}
        if len(identities) < rule.min_sources:
            continue
        if rule.distinct_kinds and len(kinds) < rule.min_sources:
            continue
        return Promotion(
            rule.id,
            reason_for(
                rule.id,
                kind=alarm.kind,
                category=alarm.category,
                source=alarm.source,
                sources=len(identities),
                kinds="+".join(sorted(kinds)),
                radius_m=round(rule.radius_m),
                window_s=rule.window_s,
                distance_m=round(min(w.distance_m for w in found)),
            ),
            rules.version,
            tuple(sorted({w.alarm_id for w in found if w.alarm_id is not None})),
            tuple(sorted({w.row_id for w in found if w.row_id is not None})),
        )
    return None


def _muted(alarm: Alarm, ctx: TriageContext, rules: TriageRules) -> bool:
    if rules.mute is None:
        return False
    key, horizon = RowKey.of(alarm), timedelta(seconds=rules.mute.after_false_alarm_s)
    t = _when(alarm, ctx.now)
    return any(
        row.key == key
        and row.state == InboxState.DISMISSED
        and row.dismiss_reason == DismissReason.FALSE_ALARM
        and row.acted_at is not None
        and timedelta(0) <= t - row.acted_at <= horizon
        for row in ctx.rows
    )


def _confident(rule_min: float | None, confidence: float | None) -> bool:
    return rule_min is None or (confidence is not None and confidence >= rule_min)


def _strong(min_reading_ratio: float | None, alarm: Alarm) -> dict[str, Param] | None:
    """The reading's parameters when it is far enough over its raise level (an empty
    dict when the rule asks nothing of the reading); None: not strong enough, or no
    reading recorded (the ingest always records one)."""
    if min_reading_ratio is None:
        return {}
    reading = alarm_reading(alarm)
    if reading is None:
        return None
    value, raise_at = reading
    ratio = value / raise_at
    if ratio < min_reading_ratio:
        return None
    return {
        "value": value,
        "raise_at": raise_at,
        "reading_ratio": ratio,
        "min_reading_ratio": min_reading_ratio,
    }


def _at_risk(alarm: Alarm, ctx: TriageContext, rules: TriageRules) -> Promotion | None:
    confidence, scope, t = alarm_confidence(alarm), alarm_exercise_id(alarm), _when(alarm, ctx.now)
    common: dict[str, Param] = {"kind": alarm.kind, "category": alarm.category, "source": alarm.source}
    if confidence is not None:
        common["confidence"] = confidence
    for rule in rules.risk:
        if not _matches(rule.applies_to, alarm.kind, alarm.category):
            continue
        if not _confident(rule.min_confidence, confidence) or _strong(rule.min_reading_ratio, alarm) is None:
            continue
        if rule.near_venue is not None:
            near = rule.near_venue
            best: tuple[float, str, VenueRef] | None = None
            for v in ctx.venues:
                if v.kind not in near.kinds:
                    continue
                d = _distance(alarm, v.lat, v.lon)
                if d is not None and d <= near.radius_m and (best is None or (d, v.venue_id) < best[:2]):
                    best = (d, v.venue_id, v)
            if best is not None:
                d, _, venue = best
                return Promotion(
                    rule.id,
                    reason_for(
                        rule.id,
                        **common,
                        venue_id=venue.venue_id,
                        venue_name=venue.name or venue.venue_id,
                        venue_kind=venue.kind,
                        distance_m=round(d),
                        radius_m=round(near.radius_m),
                    ),
                    rules.version,
                )
        if rule.during_event is not None:
            during = rule.during_event
            for e in sorted(ctx.events, key=lambda e: e.event_id):
                if e.exercise_id != scope:
                    continue
                if not (
                    e.starts_at - timedelta(seconds=during.before_s)
                    <= t
                    <= e.ends_at + timedelta(seconds=during.after_s)
                ):
                    continue
                d = _distance(alarm, e.lat, e.lon)
                if d is not None and d <= e.radius_m + during.extra_radius_m:
                    return Promotion(
                        rule.id,
                        reason_for(
                            rule.id, **common, event_id=e.event_id, event_name=e.name, distance_m=round(d)
                        ),
                        rules.version,
                    )
    return None


def decide(alarm: Alarm, context: TriageContext, rules: TriageRules) -> Promotion | None:
    """Whether ``alarm`` opens an incident at once, and by which rule; None: it goes to
    the inbox. Checked in this order, the first that holds decides:

    1. its kind's rule says ``promote`` (110 calls, field reports);
    2. an always-promote rule names its kind and category, at its confidence — unless
       the same source was dismissed as a false alarm within ``mute``;
    3. corroboration by independent sources (same scope, compatible, near, recent);
    4. a risk context (a venue of a kind near it; a planned event running there).

    Exercise alarms only ever meet alarms, rows and planned events of the same exercise.
    """
    _aware(context.now, "context.now")
    kind_rule = rules.by_kind.get(alarm.kind)
    common: dict[str, Param] = {"kind": alarm.kind, "category": alarm.category, "source": alarm.source}
    if kind_rule is not None and kind_rule.action == "promote":
        return Promotion(kind_rule.id, reason_for(kind_rule.id, **common), rules.version)
    confidence = alarm_confidence(alarm)
    if not _muted(alarm, context, rules):
        for a in rules.always_promote:
            if not (
                _matches(a.applies_to, alarm.kind, alarm.category)
                and _confident(a.min_confidence, confidence)
            ):
                continue
            strong = _strong(a.min_reading_ratio, alarm)
            if strong is not None:
                params = dict(common) | strong
                if confidence is not None:
                    params["confidence"] = confidence
                if a.min_confidence is not None:
                    params["min_confidence"] = a.min_confidence
                return Promotion(a.id, reason_for(a.id, **params), rules.version)
    return _corroborated(alarm, context, rules) or _at_risk(alarm, context, rules)


def mute_reason(alarm: Alarm, context: TriageContext, rules: TriageRules) -> Reason | None:
    """Why an always-promote alarm was held in the inbox (its source was dismissed as a
    false alarm lately), for the row's tooltip; None when it was not muted."""
    if rules.mute is None or not _muted(alarm, context, rules):
        return None
    key, t = RowKey.of(alarm), _when(alarm, context.now)
    times = [
        r.acted_at
        for r in context.rows
        if r.key == key
        and r.dismiss_reason == DismissReason.FALSE_ALARM
        and r.acted_at is not None
        and r.acted_at <= t
    ]
    return reason_for(rules.mute.id, ago_s=(t - max(times)).total_seconds())


# --- one alarm, end to end ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToIncident:
    """Correlate the alarm (open or join an incident, as before), then link
    ``link_row_ids`` — inbox rows of the same story — to that incident with
    :func:`link` as :data:`SYSTEM_ACTOR`, rule ``promotion.rule_id``."""

    promotion: Promotion
    link_row_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ToInbox:
    fold: FoldDecision
    muted: Reason | None = None  # set when only the mute kept it from promoting


TriageOutcome = ToIncident | ToInbox


def triage(
    rows: Sequence[InboxRow], alarm: Alarm, context: TriageContext, rules: TriageRules
) -> tuple[tuple[InboxRow, ...], TriageOutcome]:
    """:func:`decide`, then either an incident or :func:`fold` into the inbox.

    A promoted alarm takes along the open rows of its story: its own source's open row,
    and every open row that would corroborate it under a corroboration rule (whatever
    rule promoted it — a 110 call about a fire takes the camera's smoke row nearby).
    ``rows`` are the inbox rows to fold into; ``context.rows`` may hold them too."""
    promotion = decide(alarm, context, rules)
    if promotion is None:
        rows2, folded = fold(rows, alarm, context.now, rules)
        return rows2, ToInbox(folded, mute_reason(alarm, context, rules))
    key, t = RowKey.of(alarm), _when(alarm, context.now)
    every = tuple({r.row_id: r for r in (*context.rows, *rows)}.values())
    take = set(promotion.supporting_row_ids)
    take.update(r.row_id for r in every if _can_fold(r, key, t, rules.fold))
    rows_only = replace(context, recent_alarms=(), rows=every)
    for rule in rules.corroboration:
        take.update(w.row_id for w in _witnesses(alarm, rows_only, rule, rules) if w.row_id is not None)
    open_ids = {r.row_id for r in every if r.is_open}
    return tuple(rows), ToIncident(promotion, tuple(sorted(take & open_ids)))


def inbox_reason(row: InboxRow, rules: TriageRules) -> Reason | None:
    """Why a row is in the inbox: its kind's rule (``video_inbox``, ``sensor_inbox``)."""
    rule = rules.by_kind.get(row.alarm_kind)
    if rule is None:
        return None
    return reason_for(rule.id, kind=row.alarm_kind, category=row.key.category, source=row.key.source)


# --- operator actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowChange:
    """One action on a row: the row after it, and what the audit log keeps."""

    before: InboxRow
    after: InboxRow
    action: Literal["promote", "link", "dismiss", "expire"]
    actor: str
    actor_role: Role
    at: datetime

    @property
    def audit_action(self) -> str:
        return f"inbox.{self.action}"

    def audit_detail(self) -> dict[str, Any]:
        """The ``detail`` of the audit record (object type ``inbox_row``, id the row's)."""
        a = self.after
        return {
            "from_state": str(self.before.state),
            "to_state": str(a.state),
            "key": {"source": a.key.source, "category": a.key.category, "exercise_id": a.exercise_id},
            "count": a.count,
            "incident_id": a.incident_id,
            "rule_id": a.rule_id,
            "dismiss_reason": str(a.dismiss_reason) if a.dismiss_reason else None,
            "note": a.note,
        }


def _authorise(row: InboxRow, actor: Actor, action: str) -> None:
    """Who may act on inbox rows (command/domain/policy.py): planners only on exercise
    rows; field users never; ``system`` (the service) promotes and links on a rule's
    behalf, and expires."""
    role, drill = actor.role, row.exercise_id is not None
    if policy.allowed(role, Action(f"inbox.{action}"), drill=drill):
        return
    if role == Role.SYSTEM:
        raise Forbidden(f"the system may not {action} inbox row {row.row_id}: an operator must")
    if not drill and policy.allowed(role, Action(f"inbox.{action}"), drill=True):
        raise Forbidden(f"a planner may act only on exercise rows; inbox row {row.row_id} is live")
    raise Forbidden(f"role {role} may not {action} inbox rows")


def _check_actionable(row: InboxRow, action: str) -> None:
    if row.state not in ACTIONABLE_STATES:
        who = f" by {row.acted_by}" if row.acted_by else ""
        raise IllegalTransition(
            f"cannot {action} inbox row {row.row_id}: it is {row.state}{who} already "
            f"(only open or expired rows can be acted on)"
        )


def _acted(row: InboxRow, actor: Actor, at: datetime, **changes: Any) -> InboxRow:
    if at.tzinfo is None:
        raise InvalidCommand("the time of an action must be timezone-aware")
    return replace(row, acted_by=actor.user_id, acted_role=actor.role, acted_at=at, **changes)


def promote(
    row: InboxRow,
    *,
    incident_id: str,
    actor: Actor,
    at: datetime,
    rule_id: str | None = None,
    note: str | None = None,
) -> RowChange:
    """立事件: an incident ``incident_id`` (allocated by the edge) is opened from the row."""
    _authorise(row, actor, "promote")
    _check_actionable(row, "promote")
    if not incident_id.strip():
        raise InvalidCommand("promoting a row needs the id of the incident it opens")
    after = _acted(
        row,
        actor,
        at,
        state=InboxState.PROMOTED,
        incident_id=incident_id,
        rule_id=rule_id,
        note=(note or "").strip() or None,
    )
    return RowChange(row, after, "promote", actor.user_id, actor.role, at)


def link(
    row: InboxRow,
    incident: IncidentView,
    *,
    actor: Actor,
    at: datetime,
    rule_id: str | None = None,
    note: str | None = None,
) -> RowChange:
    """关联: attach the row to an open incident of the same scope (live or its exercise)."""
    _authorise(row, actor, "link")
    _check_actionable(row, "link")
    if incident.state not in JOINABLE_STATES:
        raise IllegalTransition(
            f"cannot link inbox row {row.row_id} to incident {incident.incident_id}: it is {incident.state}"
        )
    if incident.exercise_id != row.exercise_id:
        raise IllegalTransition(
            f"cannot link inbox row {row.row_id} ({row.exercise_id or 'live'}) to incident "
            f"{incident.incident_id} ({incident.exercise_id or 'live'}): exercise and live never mix"
        )
    after = _acted(
        row,
        actor,
        at,
        state=InboxState.LINKED,
        incident_id=incident.incident_id,
        rule_id=rule_id,
        note=(note or "").strip() or None,
    )
    return RowChange(row, after, "link", actor.user_id, actor.role, at)


def dismiss(
    row: InboxRow, *, reason: DismissReason | str, actor: Actor, at: datetime, note: str | None = None
) -> RowChange:
    """排除: with a reason of the fixed vocabulary; ``other`` needs a note saying why."""
    _authorise(row, actor, "dismiss")
    _check_actionable(row, "dismiss")
    try:
        why = DismissReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in DismissReason)
        raise InvalidCommand(f"unknown dismiss reason {reason!r}; use one of {allowed}") from None
    text = (note or "").strip() or None
    if why == DismissReason.OTHER and text is None:
        raise InvalidCommand("dismissing for another reason (other) needs a note saying why")
    after = _acted(row, actor, at, state=InboxState.DISMISSED, dismiss_reason=why, note=text)
    return RowChange(row, after, "dismiss", actor.user_id, actor.role, at)


def expire(
    rows: Sequence[InboxRow], now: datetime, rules: TriageRules
) -> tuple[tuple[InboxRow, ...], tuple[RowChange, ...]]:
    """Move open rows nobody acted on into the review list (``expired``): a row expires
    by the first expiry rule whose ``max_severity`` covers the row's gravest alarm and
    whose ``after_s`` has passed since its last alarm. Graver rows never expire."""
    _aware(now, "now")
    out: list[InboxRow] = []
    changes: list[RowChange] = []
    for row in rows:
        rule = None
        if row.is_open:
            quiet = (now - row.last_seen).total_seconds()
            rule = next(
                (
                    e
                    for e in rules.expiry
                    if row.max_severity.rank <= e.max_severity.rank and quiet >= e.after_s
                ),
                None,
            )
        if rule is None:
            out.append(row)
            continue
        after = _acted(row, SYSTEM_ACTOR, now, state=InboxState.EXPIRED, rule_id=rule.id)
        out.append(after)
        changes.append(RowChange(row, after, "expire", SYSTEM_ACTOR.user_id, Role.SYSTEM, now))
    return tuple(out), tuple(changes)


def expiry_reason(row: InboxRow, rules: TriageRules) -> Reason | None:
    """Why an expired row is in the review list."""
    rule = next((e for e in rules.expiry if e.id == row.rule_id), None)
    if row.state != InboxState.EXPIRED or rule is None or row.acted_at is None:
        return None
    return reason_for(
        rule.id,
        severity=str(row.max_severity),
        after_s=rule.after_s,
        quiet_s=(row.acted_at - row.last_seen).total_seconds(),
    )


def review_list(rows: Iterable[InboxRow]) -> list[InboxRow]:
    """Expired rows, most recently expired first (the review list)."""
    expired = [r for r in rows if r.state == InboxState.EXPIRED]
    return sorted(expired, key=lambda r: (r.acted_at or r.last_seen, r.row_id), reverse=True)


def inbox_order(rows: Iterable[InboxRow]) -> list[InboxRow]:
    """Open rows as the inbox shows them: gravest first, then the latest alarm first."""
    return sorted(
        (r for r in rows if r.is_open),
        key=lambda r: (-r.max_severity.rank, -r.last_seen.timestamp(), r.row_id),
    )


# --- bulk ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowResult:
    """One row of a bulk action: its change, or why it was refused."""

    row_id: str
    change: RowChange | None = None
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.change is not None


@dataclass(frozen=True, slots=True)
class BulkResult:
    results: tuple[RowResult, ...]  # in the order the ids were given (each id once)

    @property
    def changes(self) -> tuple[RowChange, ...]:
        return tuple(r.change for r in self.results if r.change is not None)

    @property
    def refused(self) -> tuple[RowResult, ...]:
        return tuple(r for r in self.results if r.change is None)


def _bulk(
    rows: Sequence[InboxRow], row_ids: Sequence[str], act: Callable[[InboxRow], RowChange]
) -> BulkResult:
    by_id = {r.row_id: r for r in rows}
    out: list[RowResult] = []
    seen: set[str] = set()
    for row_id in row_ids:
        if row_id in seen:
            continue
        seen.add(row_id)
        row = by_id.get(row_id)
        if row is None:
            out.append(RowResult(row_id, refused=f"no inbox row {row_id}"))
            continue
        try:
            out.append(RowResult(row_id, change=act(row)))
        except (Forbidden, IllegalTransition, InvalidCommand) as exc:
            out.append(RowResult(row_id, refused=exc.reason))
    return BulkResult(tuple(out))


def bulk_dismiss(
    rows: Sequence[InboxRow],
    row_ids: Sequence[str],
    *,
    reason: DismissReason | str,
    actor: Actor,
    at: datetime,
    note: str | None = None,
) -> BulkResult:
    """Dismiss each row; rows that cannot be (not open, not found, not allowed) are
    refused one by one with the reason, the others go through."""
    return _bulk(rows, row_ids, lambda r: dismiss(r, reason=reason, actor=actor, at=at, note=note))


def bulk_link(
    rows: Sequence[InboxRow],
    row_ids: Sequence[str],
    incident: IncidentView,
    *,
    actor: Actor,
    at: datetime,
    note: str | None = None,
) -> BulkResult:
    """Link each row to one open incident (rows of another scope are refused)."""
    return _bulk(rows, row_ids, lambda r: link(r, incident, actor=actor, at=at, note=note))


def bulk_promote(
    rows: Sequence[InboxRow],
    row_ids: Sequence[str],
    *,
    incident_id: str,
    actor: Actor,
    at: datetime,
    note: str | None = None,
) -> BulkResult:
    """Promote several rows into one incident (``incident_id``, opened from the first
    promoted row's latest alarm by the edge; the others' alarms are linked to it).
    Rows of different scopes cannot share an incident: those not in the first
    accepted row's scope are refused."""
    scope: list[str | None] = []

    def act(row: InboxRow) -> RowChange:
        if scope and row.exercise_id != scope[0]:
            raise IllegalTransition(
                f"inbox row {row.row_id} is {row.exercise_id or 'live'}, the incident "
                f"{scope[0] or 'live'}: exercise and live never mix"
            )
        change = promote(row, incident_id=incident_id, actor=actor, at=at, note=note)
        scope.append(row.exercise_id)
        return change

    return _bulk(rows, row_ids, act)
