"""信息报送 — upward reporting of incidents: the rules (data), the clocks, the reports.

* **Rules** are YAML, one file per jurisdiction (command/reporting_rules/): which
  incident types and levels must be reported, to whom, by phone and in writing, each
  clock measured from the first receipt of the incident, the daily follow-up times
  (续报) while a graver incident is open, and what each kind of report must contain.
* **Clocks** (:func:`clocks`): a phone and a written clock from the first receipt for the
  level the incident had then; a level raised later to one with clocks starts them
  again from the raise (the earlier ones still stand until met); daily follow-ups at the
  rule's local times (Asia/Shanghai) while the incident is open and grave enough; a
  final report (终报) within hours of the incident's end. A clock is met by the first
  report sent after it started, of its channel and kind, stating at least its level.
* **Reports** (首报 / 续报 / 终报): versions from draft to approved (签发) — a version is
  never changed, an edit is a new version — then sent and acknowledged (回执). The
  required elements of the kind are checked before approval; a later report states what
  changed since the last one sent (:func:`changes_since`).
* **Figures** (casualties and losses) are structured and kept with their history.

Everything is pure: the services hand in the incident's facts and the reports sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, StringConstraints, ValidationError, model_validator

from command.domain.incidents import DomainError, IllegalTransition, InvalidCommand
from command.domain.plans import _loc, _parse_yaml, _Strict, _validate
from command.domain.vocabulary import IncidentType, ResponseLevel

LevelKey = Literal["I", "II", "III", "IV"]
ClockText = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]

#: How many daily follow-up slots a clock list shows at most (the oldest drop off).
MAX_FOLLOW_UP_SLOTS = 60
MAX_TEXT = 4000


class ReportKind(StrEnum):
    FIRST = "first"  # 首报
    FOLLOW_UP = "follow_up"  # 续报
    FINAL = "final"  # 终报


class Channel(StrEnum):
    PHONE = "phone"  # 电话报告: the quick first word
    WRITTEN = "written"  # 书面报告


class Element(StrEnum):
    """What a report may be required to contain (the rule's ``required`` lists)."""

    OCCURRED_AT = "occurred_at"  # 时间
    PLACE = "place"  # 地点
    TYPE = "type"  # 类型
    LEVEL = "level"  # 级别
    CASUALTIES = "casualties"  # 伤亡 (figures stated, zeros included)
    LOSSES = "losses"  # 直接经济损失
    CAUSE = "cause"  # 原因 (as known)
    MEASURES = "measures"  # 已采取的措施
    RESOURCES = "resources"  # 投入的队伍和物资
    TREND = "trend"  # 发展趋势
    CHANGES = "changes"  # 与上次报告相比的变化 (a follow-up's)
    AFTERMATH = "aftermath"  # 善后 / 处置结果 (a final report's)


# --------------------------------------------------------------------------- rules


class LevelClocks(_Strict):
    """The clocks of one level; a level not listed is not reported."""

    phone_minutes: Annotated[int, Field(ge=1, le=24 * 60)] | None = None
    written_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)]

    @model_validator(mode="after")
    def _phone_first(self) -> LevelClocks:
        if self.phone_minutes is not None and self.phone_minutes > self.written_minutes:
            raise ValueError("the phone report cannot be due after the written one")
        return self


class FollowUps(_Strict):
    """续报 at fixed local times each day while an incident this grave is open."""

    from_level: LevelKey
    daily_at: Annotated[list[ClockText], Field(min_length=1, max_length=6)]


class Required(_Strict):
    first: list[Element]
    follow_up: list[Element]
    final: list[Element]


class Rule(_Strict):
    """One jurisdiction's reporting rule (a file in command/reporting_rules/)."""

    jurisdiction: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    title: Text
    report_to: Text  # 上级: whom reports go to
    # The same in English, for an English desk (the rule is data in the jurisdiction's words)
    title_en: Text | None = None
    report_to_en: Text | None = None
    area_code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]  # GB/T 2260 of the jurisdiction
    timezone: Text = "Asia/Shanghai"
    types: list[IncidentType] | Literal["all"] = "all"
    exclude_types: tuple[IncidentType, ...] = ()
    levels: dict[LevelKey, LevelClocks]
    follow_ups: FollowUps | None = None
    final_within_hours: Annotated[int, Field(ge=1, le=30 * 24)]
    required: Required

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        graver_first = sorted(self.levels, key=lambda k: ResponseLevel[k].value)
        for graver, lighter in pairwise(graver_first):
            if self.levels[graver].written_minutes > self.levels[lighter].written_minutes:
                raise ValueError(f"level {graver} cannot have a later written clock than level {lighter}")
        return self

    def covers(self, incident_type: IncidentType, level: ResponseLevel) -> bool:
        typed = self.types == "all" or incident_type in self.types
        return typed and incident_type not in self.exclude_types and level.name in self.levels

    def clocks_for(self, level: ResponseLevel) -> LevelClocks | None:
        return next((spec for key, spec in self.levels.items() if key == level.name), None)

    def follows_up(self, level: ResponseLevel) -> bool:
        return self.follow_ups is not None and level.value <= ResponseLevel[self.follow_ups.from_level].value

    def required_for(self, kind: ReportKind) -> tuple[Element, ...]:
        return tuple(getattr(self.required, str(kind)))


class RuleError(ValueError):
    """A rule file cannot be used; ``problems`` has one line each, file name first."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid reporting rules:\n  " + "\n  ".join(self.problems))


def parse_rules(sources: Mapping[str, str]) -> dict[str, Rule]:
    """File name → YAML text, to jurisdiction → rule; every problem of every file at once.
    The jurisdiction must be the file's stem (national.yaml says ``national``)."""
    import yaml  # the plans' loader parses; yaml's error type only here

    problems: list[str] = []
    rules: dict[str, Rule] = {}
    for name, text in sorted(sources.items()):
        try:
            data = _parse_yaml(text)
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML: {exc}")
            continue
        try:
            rule: Rule = _validate(Rule, data)
        except ValidationError as err:
            problems += [f"{name}: {_loc(e['loc'])}: {e['msg']}" for e in err.errors()]
            continue
        stem = name.rsplit("/", 1)[-1].removesuffix(".yaml")
        if rule.jurisdiction != stem:
            problems.append(f"{name}: jurisdiction: {rule.jurisdiction!r} must be the file's name {stem!r}")
            continue
        rules[rule.jurisdiction] = rule
    if problems:
        raise RuleError(problems)
    if not rules:
        raise RuleError(["no rule files"])
    return rules


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class Figures:
    """伤亡和损失: counts of people and the direct economic loss (万元); None = not known yet."""

    deaths: int | None = None  # 死亡
    missing: int | None = None  # 失踪
    injured: int | None = None  # 受伤
    trapped: int | None = None  # 被困
    evacuated: int | None = None  # 紧急转移安置
    direct_loss_10k_yuan: float | None = None  # 直接经济损失 (万元)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value < 0:
                raise InvalidCommand(f"{f.name} cannot be negative")

    @property
    def casualties_stated(self) -> bool:
        return all(getattr(self, n) is not None for n in ("deaths", "missing", "injured"))

    def as_dict(self) -> dict[str, int | float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FIGURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Figures))


@dataclass(frozen=True, slots=True)
class FigureEntry:
    """One statement of the figures (核实后的数字), kept: the history is never rewritten."""

    at: datetime
    by: str
    figures: Figures
    source: str = ""  # who gave the numbers (现场指挥部, 卫健委 …)


@dataclass(frozen=True, slots=True)
class FigureChange:
    name: str
    before: int | float | None
    after: int | float | None
    at: datetime


def figure_history_changes(history: Sequence[FigureEntry]) -> list[FigureChange]:
    """Every change of a figure along the history, in time order."""
    out: list[FigureChange] = []
    ordered = sorted(history, key=lambda e: e.at)
    for prev, cur in pairwise(ordered):
        for name in FIGURE_NAMES:
            before, after = getattr(prev.figures, name), getattr(cur.figures, name)
            if before != after:
                out.append(FigureChange(name, before, after, cur.at))
    return out


def latest_figures(history: Sequence[FigureEntry]) -> Figures:
    return max(history, key=lambda e: e.at).figures if history else Figures()


# --------------------------------------------------------------------------- clocks


class ClockKind(StrEnum):
    PHONE = "phone"  # 电话首报
    WRITTEN = "written"  # 书面首报 (or a raise's written report)
    FOLLOW_UP = "follow_up"  # 每日定时续报
    FINAL = "final"  # 终报


class ClockState(StrEnum):
    RUNNING = "running"
    OVERDUE = "overdue"  # escalates to the leader on duty until met
    MET = "met"
    MET_LATE = "met_late"


@dataclass(frozen=True, slots=True)
class LevelStep:
    """The incident's level from ``at`` on (its opening level, then every change)."""

    at: datetime
    level: ResponseLevel


@dataclass(frozen=True, slots=True)
class SentReport:
    """What a clock needs of a report that went out."""

    number: int
    kind: ReportKind
    channel: Channel
    level: ResponseLevel
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What the clocks need of an incident (the services read them from its record)."""

    incident_type: IncidentType
    received_at: datetime  # first receipt (首次接报)
    levels: tuple[LevelStep, ...]  # opening level first
    ended_at: datetime | None  # resolved, closed or otherwise finished


@dataclass(frozen=True, slots=True)
class Clock:
    key: str  # stable within the incident: phone@<start>, follow_up@<slot> …
    kind: ClockKind
    level: ResponseLevel
    started_at: datetime
    due_at: datetime
    met_by: int | None  # the report number that met it
    met_at: datetime | None

    def state(self, now: datetime) -> ClockState:
        if self.met_at is not None:
            return ClockState.MET if self.met_at <= self.due_at else ClockState.MET_LATE
        return ClockState.OVERDUE if now >= self.due_at else ClockState.RUNNING

    def remaining_s(self, now: datetime) -> float:
        """Seconds left (negative: overdue by); 0 once met."""
        return 0.0 if self.met_at is not None else (self.due_at - now).total_seconds()


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise InvalidCommand(f"{name} must carry its time zone")


def _meets(report: SentReport, clock_kind: ClockKind, level: ResponseLevel, start: datetime) -> bool:
    if report.sent_at < start or report.level.value > level.value:
        return False
    if clock_kind is ClockKind.PHONE:
        return True  # a written report is also word to the next level
    if clock_kind is ClockKind.WRITTEN:
        return report.channel is Channel.WRITTEN
    if clock_kind is ClockKind.FOLLOW_UP:
        return report.channel is Channel.WRITTEN and report.kind is not ReportKind.FIRST
    return report.channel is Channel.WRITTEN and report.kind is ReportKind.FINAL


def _met(
    kind: ClockKind, level: ResponseLevel, start: datetime, sent: Sequence[SentReport]
) -> tuple[int | None, datetime | None]:
    for report in sorted(sent, key=lambda r: r.sent_at):
        if _meets(report, kind, level, start):
            return report.number, report.sent_at
    return None, None


def _follow_up_slots(rule: Rule, start: datetime, until: datetime) -> list[datetime]:
    """The rule's daily local times after ``start`` up to ``until`` (inclusive), plus
    the first one after ``until`` (the one coming)."""
    assert rule.follow_ups is not None
    zone = ZoneInfo(rule.timezone)
    times = sorted(time.fromisoformat(t) for t in rule.follow_ups.daily_at)
    day: date = start.astimezone(zone).date()
    out: list[datetime] = []
    while True:
        for t in times:
            slot = datetime.combine(day, t, tzinfo=zone).astimezone(UTC)
            if slot <= start:
                continue
            out.append(slot)
            if slot > until:
                return out[-MAX_FOLLOW_UP_SLOTS:]
        day += timedelta(days=1)


def clocks(rule: Rule, facts: IncidentFacts, sent: Sequence[SentReport], now: datetime) -> list[Clock]:
    """Every clock of this incident under ``rule``, by due time (none if not covered).

    First reports: a phone and a written clock from the receipt for the level at
    receipt; each later raise to a graver level with clocks starts its own pair from
    the raise (报告级别升级 restarts the clocks, at the new level's tighter minutes).
    Follow-ups: each daily slot after the first written report was due, while open and
    at a level that follows up, met by a written follow-up (or final) sent since the
    previous slot. Final: due ``final_within_hours`` after the end.
    """
    _aware(now, "now")
    _aware(facts.received_at, "received_at")
    out: list[Clock] = []
    gravest: ResponseLevel | None = None
    steps = sorted(facts.levels, key=lambda s: s.at)
    for i, step in enumerate(steps):
        if gravest is not None and step.level.value >= gravest.value:
            continue  # not a raise: the running clocks stand
        if facts.ended_at is not None and step.at > facts.ended_at:
            break
        if not rule.covers(facts.incident_type, step.level):
            continue
        spec = rule.clocks_for(step.level)
        assert spec is not None
        gravest = step.level
        start = facts.received_at if i == 0 else max(step.at, facts.received_at)
        pairs = [(ClockKind.WRITTEN, spec.written_minutes)]
        if spec.phone_minutes is not None:
            pairs.insert(0, (ClockKind.PHONE, spec.phone_minutes))
        for kind, minutes in pairs:
            met_by, met_at = _met(kind, step.level, start, sent)
            key = f"{kind}@{start.astimezone(UTC).isoformat()}"
            out.append(
                Clock(key, kind, step.level, start, start + timedelta(minutes=minutes), met_by, met_at)
            )
    if gravest is None:
        return []
    first_written_due = min(c.due_at for c in out if c.kind is ClockKind.WRITTEN)
    current = steps[-1].level if steps else gravest
    if rule.follows_up(current) or any(rule.follows_up(s.level) for s in steps):
        until = facts.ended_at if facts.ended_at is not None else now
        prev = first_written_due
        for slot in _follow_up_slots(rule, first_written_due, until):
            if facts.ended_at is not None and slot > facts.ended_at:
                break
            level_then = _level_at(steps, slot)
            if rule.follows_up(level_then):
                # met by a follow-up sent since the previous slot (late: the first one after)
                met_by, met_at = _met(ClockKind.FOLLOW_UP, level_then, prev, sent)
                out.append(
                    Clock(
                        f"follow_up@{slot.isoformat()}",
                        ClockKind.FOLLOW_UP,
                        level_then,
                        prev,
                        slot,
                        met_by,
                        met_at,
                    )
                )
            prev = slot
    if facts.ended_at is not None:
        due = facts.ended_at + timedelta(hours=rule.final_within_hours)
        met_by, met_at = _met(ClockKind.FINAL, ResponseLevel.IV, facts.received_at, sent)
        out.append(Clock("final", ClockKind.FINAL, gravest, facts.ended_at, due, met_by, met_at))
    return sorted(out, key=lambda c: (c.due_at, c.kind))


def _level_at(steps: Sequence[LevelStep], at: datetime) -> ResponseLevel:
    level = steps[0].level
    for step in steps:
        if step.at <= at:
            level = step.level
    return level


def running(all_clocks: Iterable[Clock], now: datetime) -> list[Clock]:
    """The clocks that still want a report (running or overdue), most urgent first."""
    return sorted((c for c in all_clocks if c.met_at is None), key=lambda c: c.due_at)


def overdue(all_clocks: Iterable[Clock], now: datetime) -> list[Clock]:
    return [c for c in running(all_clocks, now) if c.state(now) is ClockState.OVERDUE]


# --------------------------------------------------------------------------- reports


class ReportState(StrEnum):
    DRAFT = "draft"  # 起草 / 修改: versions are added
    APPROVED = "approved"  # 签发: the approved version is the one that goes
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"  # 回执 received


@dataclass(frozen=True, slots=True)
class Content:
    """What a report says. Drafted from the incident's record, edited by the desk."""

    title: str
    occurred_at: datetime | None
    place: str
    area_code: str  # GB/T 2260
    lat: float | None
    lon: float | None
    incident_type: IncidentType
    level: ResponseLevel
    figures: Figures
    cause: str = ""
    measures: str = ""
    teams: tuple[str, ...] = ()
    supplies: tuple[str, ...] = ()
    trend: str = ""
    aftermath: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        for name in ("title", "place", "cause", "measures", "trend", "aftermath", "notes"):
            if len(getattr(self, name)) > MAX_TEXT:
                raise InvalidCommand(f"{name} is longer than {MAX_TEXT} characters")
        if not (len(self.area_code) == 6 and self.area_code.isdigit()):
            raise InvalidCommand("area_code must be a 6-digit GB/T 2260 code")
        if self.occurred_at is not None:
            _aware(self.occurred_at, "occurred_at")


def missing_elements(content: Content, required: Iterable[Element], *, earlier: bool) -> list[Element]:
    """The required elements a report's content lacks (``earlier``: a report was sent
    before this one, so it has changes to state)."""
    present = {
        Element.OCCURRED_AT: content.occurred_at is not None,
        Element.PLACE: bool(content.place.strip()),
        Element.TYPE: True,
        Element.LEVEL: True,
        Element.CASUALTIES: content.figures.casualties_stated,
        Element.LOSSES: content.figures.direct_loss_10k_yuan is not None,
        Element.CAUSE: bool(content.cause.strip()),
        Element.MEASURES: bool(content.measures.strip()),
        Element.RESOURCES: bool(content.teams or content.supplies),
        Element.TREND: bool(content.trend.strip()),
        Element.CHANGES: earlier,
        Element.AFTERMATH: bool(content.aftermath.strip()),
    }
    return [e for e in required if not present[e]]


@dataclass(frozen=True, slots=True)
class Version:
    n: int
    content: Content
    by: str
    at: datetime
    note: str = ""  # why it was edited


@dataclass(frozen=True, slots=True)
class Report:
    incident_id: str
    number: int  # 第 n 报 of this incident
    kind: ReportKind
    channel: Channel
    state: ReportState
    versions: tuple[Version, ...]
    approved_version: int | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    sent_at: datetime | None = None
    acknowledged_at: datetime | None = None
    receipt_by: str | None = None  # who at the upper level signed the receipt

    @property
    def report_id(self) -> str:
        """Idempotent across the exchange: the upper level keys on it."""
        return f"{self.incident_id}-R{self.number:02d}"

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def approved(self) -> Version | None:
        return next((v for v in self.versions if v.n == self.approved_version), None)


def _next_kind_ok(kind: ReportKind, earlier: Sequence[Report]) -> None:
    kinds = [r.kind for r in earlier]
    if kind is ReportKind.FIRST and ReportKind.FIRST in kinds:
        raise IllegalTransition("this incident already has its first report")
    if kind is not ReportKind.FIRST and ReportKind.FIRST not in kinds:
        raise IllegalTransition("the first report comes first")
    if ReportKind.FINAL in kinds:
        raise IllegalTransition("the final report has been made: no further reports")


def draft(
    *,
    incident_id: str,
    kind: ReportKind,
    channel: Channel,
    content: Content,
    earlier: Sequence[Report],
    by: str,
    at: datetime,
) -> Report:
    """起草: report number n+1 of the incident, version 1."""
    _aware(at, "at")
    _next_kind_ok(kind, earlier)
    if kind is not ReportKind.FIRST and channel is Channel.PHONE:
        raise InvalidCommand("follow-up and final reports are written")
    number = max((r.number for r in earlier), default=0) + 1
    return Report(incident_id, number, kind, channel, ReportState.DRAFT, (Version(1, content, by, at),))


def edit(report: Report, content: Content, *, by: str, at: datetime, note: str = "") -> Report:
    """修改: a new version; the earlier ones stay as they were."""
    if report.state is not ReportState.DRAFT:
        raise IllegalTransition(
            f"report {report.report_id} is {report.state}: approved versions are not edited"
        )
    version = Version(report.current.n + 1, content, by, at, note)
    return replace(report, versions=(*report.versions, version))


def approve(report: Report, rule: Rule, *, earlier_sent: bool, by: str, at: datetime) -> Report:
    """签发 by the leader on duty: the current version, once its required elements are there."""
    if report.state is not ReportState.DRAFT:
        raise IllegalTransition(f"report {report.report_id} is {report.state}, not a draft")
    lacking = missing_elements(report.current.content, rule.required_for(report.kind), earlier=earlier_sent)
    if report.channel is Channel.PHONE:
        lacking = [e for e in lacking if e in _PHONE_ELEMENTS]
    if lacking:
        raise MissingElements(lacking)
    return replace(
        report, state=ReportState.APPROVED, approved_version=report.current.n, approved_by=by, approved_at=at
    )


#: A phone report is the quick first word: time, place, type, level.
_PHONE_ELEMENTS = frozenset({Element.OCCURRED_AT, Element.PLACE, Element.TYPE, Element.LEVEL})


class MissingElements(DomainError):
    def __init__(self, lacking: Sequence[Element]) -> None:
        self.lacking = tuple(lacking)
        super().__init__("missing required elements: " + ", ".join(lacking))


def mark_sent(report: Report, *, at: datetime) -> Report:
    if report.state is not ReportState.APPROVED:
        raise IllegalTransition(
            f"report {report.report_id} is {report.state}: only an approved report is sent"
        )
    return replace(report, state=ReportState.SENT, sent_at=at)


def acknowledge(report: Report, *, by: str, at: datetime) -> Report:
    """回执: the upper level has it. A repeated receipt changes nothing."""
    if report.state is ReportState.ACKNOWLEDGED:
        return report
    if report.state is not ReportState.SENT:
        raise IllegalTransition(f"report {report.report_id} is {report.state}: not sent yet")
    return replace(report, state=ReportState.ACKNOWLEDGED, acknowledged_at=at, receipt_by=by)


@dataclass(frozen=True, slots=True)
class Change:
    """One element that differs from the last report sent (变化情况)."""

    element: str
    before: object
    after: object


_COMPARED: tuple[str, ...] = (
    "title", "occurred_at", "place", "area_code", "incident_type", "level",
    "cause", "measures", "teams", "supplies", "trend", "aftermath",
)  # fmt: skip


def changes_since(previous: Content | None, content: Content) -> list[Change]:
    """What a report says differently from the last one sent (none before the first)."""
    if previous is None:
        return []
    out: list[Change] = []
    for name in FIGURE_NAMES:
        before, after = getattr(previous.figures, name), getattr(content.figures, name)
        if before != after:
            out.append(Change(f"figures.{name}", before, after))
    for name in _COMPARED:
        before, after = getattr(previous, name), getattr(content, name)
        if before != after:
            out.append(Change(name, _plain(before), _plain(after)))
    return out


def _plain(value: object) -> object:
    if isinstance(value, ResponseLevel):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def last_sent(reports: Sequence[Report], before_number: int) -> Report | None:
    """The latest written report sent before report ``before_number``."""
    sent = [
        r for r in reports
        if r.number < before_number and r.sent_at is not None and r.channel is Channel.WRITTEN
    ]  # fmt: skip
    return max(sent, key=lambda r: r.number, default=None)


# --------------------------------------------------------------------------- the exchange's codes

#: Incident type → GB/T 35561 event code (大类 digit, 中类 digit, 小类 letter, 细类 two
#: digits; ``00`` = the 小类 as a whole). The table is the console's reading of the
#: standard's classes; docs/duty-and-reporting.md lists it.
EVENT_CODES: Mapping[IncidentType, str] = {
    IncidentType.FLOOD: "11A00",  # 自然灾害 / 水旱灾害
    IncidentType.EARTHQUAKE: "12A00",  # 自然灾害 / 地震灾害
    IncidentType.HAZMAT_LEAK: "21A00",  # 事故灾难 / 安全事故 / 危险化学品
    IncidentType.FIRE: "21B00",  # 事故灾难 / 安全事故 / 火灾
    IncidentType.HIGH_RISE_FIRE: "21B00",
    IncidentType.TRAFFIC_ACCIDENT: "22A00",  # 事故灾难 / 交通运输事故 / 道路交通
    IncidentType.UTILITY_OUTAGE: "23A00",  # 事故灾难 / 公共设施和设备事故
    IncidentType.CROWD_CRUSH: "23B00",  # 事故灾难 / 公共设施和设备事故 / 人员密集场所
    IncidentType.RESCUE: "29A00",  # 事故灾难 / 其他
    IncidentType.PUBLIC_HEALTH: "31A00",  # 公共卫生事件 / 传染病疫情
    IncidentType.MEDICAL: "39A00",  # 公共卫生事件 / 其他
    IncidentType.CRIMINAL: "42A00",  # 社会安全事件 / 刑事案件
    IncidentType.PUBLIC_ORDER: "43A00",  # 社会安全事件 / 群体性事件
    IncidentType.DISPUTE: "43A00",
    IncidentType.OTHER: "49A00",  # 社会安全事件 / 其他
}

#: Response level → the grade words of the exchange (特别重大 … 一般).
SEVERITY_CODES: Mapping[ResponseLevel, str] = {
    ResponseLevel.I: "1",
    ResponseLevel.II: "2",
    ResponseLevel.III: "3",
    ResponseLevel.IV: "4",
}


def level_steps(
    opened: tuple[datetime, ResponseLevel], changes: Iterable[tuple[datetime, ResponseLevel]]
) -> tuple[LevelStep, ...]:
    """The level history from the opening level and its changes."""
    return (LevelStep(*opened), *(LevelStep(at, lv) for at, lv in sorted(changes, key=lambda c: c[0])))
