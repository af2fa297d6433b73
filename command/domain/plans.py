"""应急预案 — contingency plans: a versioned YAML library, validated at start-up.

A plan says, for the incident types it covers and for each response level I–IV:
when the level applies (trigger conditions), who commands (roles and who holds them),
what to do (an ordered checklist), and which teams and supplies are needed.

Rules (see docs/plans.md):

* Every plan file is ``<plan id>.yaml`` in one directory; ``_items.yaml`` beside them is
  the supply catalogue (item code, names, category, unit) that plans must use. A typo
  anywhere — an unknown field, a wrong type, an unknown team type or item code, a
  duplicate YAML key — fails start-up with the file name and field path.
* All four levels are present in every plan, and requirements are monotone: a graver
  level never needs fewer teams of a type or less of an item than a lighter one, and
  never a lower trigger threshold for the same condition.
* Triggers are any-of: a level matches when at least one of its conditions holds; the
  suggested level is the gravest level that matches.
* A checklist item applies at its ``at_level`` and every graver level.

Everything here is pure except :func:`load_plans`, which only reads the files of one
directory and hands their text to :func:`build_library`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from command.domain.reserve import Item
from command.domain.vocabulary import IncidentType, ResponseLevel, TeamType

if TYPE_CHECKING:
    from command.domain.incidents import Incident

LevelKey = Literal["I", "II", "III", "IV"]
#: Levels from the lightest to the gravest.
LEVELS_LIGHT_TO_GRAVE: tuple[ResponseLevel, ...] = (
    ResponseLevel.IV,
    ResponseLevel.III,
    ResponseLevel.II,
    ResponseLevel.I,
)

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
SemVer = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+(\.\d+)?$")]

#: Measurement kinds a trigger may name, with the unit the facts must use. Sensor kinds
#: from the MQTT contract (gas, co, water_level, temperature, smoke) plus values the
#: console derives or an operator enters (magnitude, crowd density, loss percentages).
MEASURES: dict[str, tuple[str, str]] = {
    "water_level": ("m", "ponding depth at a monitored point"),  # 积水深度
    "rainfall_3h": ("mm", "3-hour rainfall"),  # 3 小时降雨量
    "gas": ("%LEL", "combustible gas, % of lower explosive limit"),  # 可燃气体浓度
    "co": ("ppm", "carbon monoxide"),  # 一氧化碳
    "temperature": ("°C", "temperature"),  # 温度
    "smoke": ("%/m", "smoke obscuration"),  # 烟雾减光率
    "crowd_density": ("persons/m2", "crowd density from video analytics"),  # 人群密度
    "magnitude": ("M", "earthquake magnitude"),  # 地震震级
    "load_loss_pct": ("%", "share of the city grid's load lost"),  # 电网减供负荷比例
    "customers_out_pct": ("%", "share of customers without power or water"),  # 停电/停水用户比例
}


class PlanLibraryError(ValueError):
    """The plan library cannot be used. ``problems`` holds one line per problem, each
    starting with the file name and, where there is one, the field path."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid plan library:\n  " + "\n  ".join(self.problems))


# --- the YAML schema --------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class SensorTrigger(_Strict):
    """A measured value at or above ``value_min`` (the facts' maximum for this kind)."""

    kind: str
    value_min: float
    unit: str

    @model_validator(mode="after")
    def _known_kind(self) -> SensorTrigger:
        if self.kind not in MEASURES:
            raise ValueError(f"unknown measurement kind {self.kind!r}; known: {', '.join(sorted(MEASURES))}")
        unit = MEASURES[self.kind][0]
        if self.unit != unit:
            raise ValueError(f"{self.kind} is measured in {unit!r}, not {self.unit!r}")
        return self


_COUNT_TRIGGERS = (
    "deaths_min",
    "injured_min",
    "casualties_min",
    "trapped_min",
    "cases_min",
    "correlated_calls_min",
    "affected_people_min",
)


class Triggers(_Strict):
    """Trigger conditions of one level; **any-of**: one condition that holds is enough."""

    deaths_min: Annotated[int, Field(ge=1)] | None = None  # 死亡
    injured_min: Annotated[int, Field(ge=1)] | None = None  # 受伤（含重伤、急性中毒）
    casualties_min: Annotated[int, Field(ge=1)] | None = None  # 伤亡 = 死亡 + 受伤
    trapped_min: Annotated[int, Field(ge=1)] | None = None  # 被困
    cases_min: Annotated[int, Field(ge=1)] | None = None  # 病例 / 中毒人数
    correlated_calls_min: Annotated[int, Field(ge=1)] | None = None  # 关联警情（110 来电）
    affected_people_min: Annotated[int, Field(ge=1)] | None = None  # 受影响/需转移人数
    area_km2_min: Annotated[float, Field(gt=0)] | None = None  # 影响范围
    sensors: tuple[SensorTrigger, ...] = ()
    #: Conditions that need a person's judgement (e.g. "省政府认定"); shown, never matched.
    note_zh: Text | None = None
    note_en: Text | None = None

    @model_validator(mode="after")
    def _something_to_match(self) -> Triggers:
        if not self.machine_conditions():
            raise ValueError("a level needs at least one machine-checkable trigger condition")
        kinds = [s.kind for s in self.sensors]
        if len(kinds) != len(set(kinds)):
            raise ValueError("a measurement kind appears twice in one level's triggers")
        return self

    def machine_conditions(self) -> dict[str, float]:
        """Every set threshold, keyed ``deaths_min``… or ``sensor:<kind>``."""
        out: dict[str, float] = {}
        for name in (*_COUNT_TRIGGERS, "area_km2_min"):
            value = getattr(self, name)
            if value is not None:
                out[name] = float(value)
        for s in self.sensors:
            out[f"sensor:{s.kind}"] = s.value_min
        return out


class TeamNeed(_Strict):
    type: TeamType
    count: Annotated[int, Field(ge=1, le=1000)]


class SupplyNeed(_Strict):
    item: Code
    quantity: Annotated[int, Field(ge=1)]
    unit: str


class LevelSpec(_Strict):
    triggers: Triggers
    teams: tuple[TeamNeed, ...] = ()
    supplies: tuple[SupplyNeed, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> LevelSpec:
        types = [t.type for t in self.teams]
        if len(types) != len(set(types)):
            raise ValueError("a team type is listed twice in one level")
        items = [s.item for s in self.supplies]
        if len(items) != len(set(items)):
            raise ValueError("an item is listed twice in one level")
        return self


class Levels(_Strict):
    """All four levels, keyed ``I`` … ``IV`` in the YAML."""

    level_1: LevelSpec = Field(alias="I")
    level_2: LevelSpec = Field(alias="II")
    level_3: LevelSpec = Field(alias="III")
    level_4: LevelSpec = Field(alias="IV")

    def get(self, level: ResponseLevel) -> LevelSpec:
        spec: LevelSpec = getattr(self, f"level_{int(level)}")
        return spec


class RoleHolders(_Strict):
    """Who holds a role at each level; a level left out means the role is not staffed."""

    level_1: Text | None = Field(default=None, alias="I")
    level_2: Text | None = Field(default=None, alias="II")
    level_3: Text | None = Field(default=None, alias="III")
    level_4: Text | None = Field(default=None, alias="IV")

    def get(self, level: ResponseLevel) -> str | None:
        holder: str | None = getattr(self, f"level_{int(level)}")
        return holder


class Role(_Strict):
    id: Code
    zh: Text
    en: Text
    #: Who holds the role at each level, in Chinese and in English (the same levels).
    held_by: RoleHolders
    held_by_en: RoleHolders

    @model_validator(mode="after")
    def _staffed_somewhere(self) -> Role:
        if all(self.held_by.get(level) is None for level in ResponseLevel):
            raise ValueError(f"role {self.id!r} is held by nobody at any level")
        differ = [
            lv.name
            for lv in ResponseLevel
            if (self.held_by.get(lv) is None) != (self.held_by_en.get(lv) is None)
        ]
        if differ:
            raise ValueError(
                f"role {self.id!r}: held_by and held_by_en name different levels ({', '.join(differ)})"
            )
        return self


class ActionSpec(_Strict):
    id: Code
    zh: Text
    en: Text
    role: Code
    #: The lightest level at which the action applies; it applies at every graver level too.
    at_level: LevelKey = "IV"

    @property
    def level(self) -> ResponseLevel:
        return ResponseLevel.parse(self.at_level)

    def applies_at(self, level: ResponseLevel) -> bool:
        return level <= self.level  # lower number = graver


class Plan(_Strict):
    id: Code
    version: Annotated[int, Field(ge=1)] | SemVer
    title_zh: Text
    title_en: Text
    #: Documents the plan follows (e.g. 《国家突发事件总体应急预案》); shown to commanders.
    basis: tuple[Text, ...] = ()
    covers: Annotated[tuple[IncidentType, ...], Field(min_length=1)]
    #: Minutes from the first alarm to the first team on scene that the plan aims at; the
    #: console's queue ranks the plan's active incidents against it. None: the console's
    #: default (DASHBOARD_ARRIVAL_TARGET_S).
    arrival_target_min: Annotated[int, Field(ge=1, le=240)] | None = None
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    levels: Levels
    checklist: Annotated[tuple[ActionSpec, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        problems = _plan_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def level(self, level: ResponseLevel) -> LevelSpec:
        return self.levels.get(level)

    @property
    def arrival_target_s(self) -> float | None:
        return None if self.arrival_target_min is None else self.arrival_target_min * 60.0

    def role(self, role_id: str) -> Role:
        for role in self.roles:
            if role.id == role_id:
                return role
        raise KeyError(role_id)


def _plan_problems(plan: Plan) -> list[str]:
    problems: list[str] = []
    if len(set(plan.covers)) != len(plan.covers):
        problems.append("covers lists an incident type twice")
    role_ids = [r.id for r in plan.roles]
    if len(set(role_ids)) != len(role_ids):
        problems.append("two roles share an id")
    roles = {r.id: r for r in plan.roles}
    item_ids = [a.id for a in plan.checklist]
    if len(set(item_ids)) != len(item_ids):
        dupes = sorted({i for i in item_ids if item_ids.count(i) > 1})
        problems.append(f"checklist ids repeat: {', '.join(dupes)}")
    for action in plan.checklist:
        role = roles.get(action.role)
        if role is None:
            problems.append(f"checklist {action.id}: role {action.role!r} is not defined in roles")
            continue
        unstaffed = [
            lv.name for lv in ResponseLevel if action.applies_at(lv) and role.held_by.get(lv) is None
        ]
        if unstaffed:
            problems.append(
                f"checklist {action.id}: role {action.role!r} is not staffed "
                f"at level(s) {', '.join(unstaffed)}"
            )
    # Monotone: walking from the lightest to the gravest level, nothing may decrease.
    for lighter, graver in itertools.pairwise(LEVELS_LIGHT_TO_GRAVE):
        lo, hi = plan.level(lighter), plan.level(graver)
        hi_teams = {t.type: t.count for t in hi.teams}
        for t in lo.teams:
            if hi_teams.get(t.type, 0) < t.count:
                problems.append(
                    f"level {graver.name} needs {hi_teams.get(t.type, 0)} {t.type.value} team(s), "
                    f"fewer than level {lighter.name} ({t.count})"
                )
        hi_supplies = {s.item: s for s in hi.supplies}
        for s in lo.supplies:
            other = hi_supplies.get(s.item)
            if other is None or other.quantity < s.quantity:
                problems.append(
                    f"level {graver.name} needs {other.quantity if other else 0} {s.unit} of {s.item}, "
                    f"less than level {lighter.name} ({s.quantity})"
                )
            elif other.unit != s.unit:
                problems.append(
                    f"{s.item} is counted in {s.unit!r} at level {lighter.name} "
                    f"but {other.unit!r} at level {graver.name}"
                )
        lo_cond, hi_cond = lo.triggers.machine_conditions(), hi.triggers.machine_conditions()
        for name, threshold in lo_cond.items():
            if name in hi_cond and hi_cond[name] < threshold:
                problems.append(
                    f"trigger {name}: level {graver.name} threshold {hi_cond[name]:g} is below "
                    f"level {lighter.name} threshold {threshold:g}"
                )
    return problems


class _Catalogue(_Strict):
    items: Annotated[tuple[Item, ...], Field(min_length=1)]


# --- the library ------------------------------------------------------------------


@dataclass(frozen=True)
class PlanLibrary:
    """Every plan by id, and the supply catalogue the plans use."""

    plans: Mapping[str, Plan]
    items: Mapping[str, Item]

    def get(self, plan_id: str) -> Plan:
        return self.plans[plan_id]

    def for_type(self, incident_type: IncidentType | str) -> list[Plan]:
        """Plans covering this incident type, by id (usually one)."""
        t = IncidentType(incident_type)
        return [p for _, p in sorted(self.plans.items()) if t in p.covers]

    def __iter__(self) -> Iterator[Plan]:
        return iter(p for _, p in sorted(self.plans.items()))

    def __len__(self) -> int:
        return len(self.plans)


CATALOGUE_FILE = "_items.yaml"


# libyaml's parser when PyYAML has it (the wheels do): the pure-Python one spent most
# of the command service's start-up (and of every command test's set-up) on the plans.
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # a PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _UniqueKeyLoader(_SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _validation_problems(name: str, err: ValidationError) -> list[str]:
    return [f"{name}: {_loc(e['loc'])}: {e['msg']}" for e in err.errors()]


def _validate(model: type[_Strict], data: Any) -> Any:
    # Validate as JSON so strict mode accepts enum values written as strings, and refuses
    # "5" for a number and 5 for a string. YAML dates etc. become strings and then fail.
    return model.model_validate_json(json.dumps(data, ensure_ascii=False, default=str))


def _catalogue_problems(name: str, data: Any, items: Mapping[str, Item]) -> list[str]:
    out: list[str] = []
    levels = data.get("levels") if isinstance(data, dict) else None
    if not isinstance(levels, dict):
        return out
    for key, spec in levels.items():
        supplies = spec.get("supplies") if isinstance(spec, dict) else None
        if not isinstance(supplies, list):
            continue
        for i, need in enumerate(supplies):
            if not isinstance(need, dict) or not isinstance(need.get("item"), str):
                continue
            path = f"{name}: levels.{key}.supplies[{i}]"
            item = items.get(need["item"])
            if item is None:
                out.append(f"{path}.item: {need['item']!r} is not in {CATALOGUE_FILE}")
            elif need.get("unit") != item.unit:
                out.append(f"{path}.unit: {item.code} is counted in {item.unit!r}, not {need.get('unit')!r}")
    return out


def build_library(sources: Mapping[str, str]) -> PlanLibrary:
    """Validate a plan library from file name → YAML text. Raises PlanLibraryError
    listing every problem found (not just the first)."""
    problems: list[str] = []
    items: dict[str, Item] = {}
    if CATALOGUE_FILE not in sources:
        problems.append(f"{CATALOGUE_FILE}: missing (the supply catalogue plans refer to)")
    else:
        try:
            catalogue = _validate(_Catalogue, _parse_yaml(sources[CATALOGUE_FILE]))
            for item in catalogue.items:
                if item.code in items:
                    problems.append(f"{CATALOGUE_FILE}: item {item.code!r} is listed twice")
                items[item.code] = item
        except yaml.YAMLError as exc:
            problems.append(f"{CATALOGUE_FILE}: not valid YAML: {exc}")
        except ValidationError as exc:
            problems.extend(_validation_problems(CATALOGUE_FILE, exc))

    plans: dict[str, Plan] = {}
    where: dict[str, str] = {}
    for name in sorted(sources):
        if name == CATALOGUE_FILE:
            continue
        if name.startswith("_"):
            problems.append(f"{name}: unexpected file (only {CATALOGUE_FILE} may start with '_')")
            continue
        try:
            data = _parse_yaml(sources[name])
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML: {exc}")
            continue
        if items:
            # Checked on the raw data so an unknown item is named even when the same typo
            # also breaks the plan's own rules (e.g. monotonicity) and validation fails.
            problems.extend(_catalogue_problems(name, data, items))
        try:
            plan: Plan = _validate(Plan, data)
        except ValidationError as exc:
            problems.extend(_validation_problems(name, exc))
            continue
        stem = name.rsplit(".", 1)[0]
        if plan.id != stem:
            problems.append(f"{name}: id {plan.id!r} does not match the file name (expected {stem!r})")
        if plan.id in plans:
            problems.append(f"{name}: plan id {plan.id!r} already used by {where[plan.id]}")
            continue
        plans[plan.id] = plan
        where[plan.id] = name
    if not plans and not problems:
        problems.append("no plan files found")
    if problems:
        raise PlanLibraryError(problems)
    return PlanLibrary(plans=plans, items=items)


def load_plans(directory: str | Path) -> PlanLibrary:
    """Read every ``*.yaml`` in ``directory`` and validate it (the only file I/O here)."""
    path = Path(directory)
    sources = {p.name: p.read_text(encoding="utf-8") for p in sorted(path.glob("*.yaml"))}
    return build_library(sources)


#: The library shipped with the console.
DEFAULT_PLAN_DIR = Path(__file__).resolve().parent.parent / "plans"


# --- level suggestion ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What is known about an incident, for matching triggers. ``sensors`` holds the
    maximum observed value per measurement kind, in the unit given by ``MEASURES``."""

    deaths: int = 0
    injured: int = 0
    trapped: int = 0
    cases: int = 0
    correlated_calls: int = 0
    affected_people: int = 0
    area_km2: float = 0.0
    sensors: Mapping[str, float] = field(default_factory=dict)

    @property
    def casualties(self) -> int:
        return self.deaths + self.injured


def matched_triggers(triggers: Triggers, facts: IncidentFacts) -> list[str]:
    """Which of the conditions hold, each as a short English explanation."""
    out: list[str] = []
    counts = {
        "deaths_min": ("deaths", facts.deaths),
        "injured_min": ("injured", facts.injured),
        "casualties_min": ("casualties", facts.casualties),
        "trapped_min": ("trapped", facts.trapped),
        "cases_min": ("cases", facts.cases),
        "correlated_calls_min": ("correlated calls", facts.correlated_calls),
        "affected_people_min": ("people affected", facts.affected_people),
    }
    for name, (label, value) in counts.items():
        threshold = getattr(triggers, name)
        if threshold is not None and value >= threshold:
            out.append(f"{label} {value} ≥ {threshold}")
    if triggers.area_km2_min is not None and facts.area_km2 >= triggers.area_km2_min:
        out.append(f"area {facts.area_km2:g} km² ≥ {triggers.area_km2_min:g}")
    for s in triggers.sensors:
        measured = facts.sensors.get(s.kind)
        if measured is not None and measured >= s.value_min:
            out.append(f"{s.kind} {measured:g} {s.unit} ≥ {s.value_min:g}")
    return out


def suggest_level(plan: Plan, facts: IncidentFacts) -> ResponseLevel | None:
    """The gravest level whose triggers match (any-of), or None when none does.
    A suggestion only: the commander decides (and may raise it for reasons in the notes)."""
    for level in ResponseLevel:  # I first: gravest
        if matched_triggers(plan.level(level).triggers, facts):
            return level
    return None


# --- activation --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChecklistEntry:
    id: str
    text_zh: str
    text_en: str
    role: str
    at_level: ResponseLevel
    done: bool = False
    done_by: str | None = None
    done_at: datetime | None = None
    #: False for an item done at a graver level that no longer applies after a level was
    #: lowered: kept so the record of what was done is not lost.
    applies: bool = True


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    id: str
    role_zh: str
    role_en: str
    held_by: str
    held_by_en: str


@dataclass(frozen=True, slots=True)
class TeamRequirement:
    type: TeamType
    count: int


@dataclass(frozen=True, slots=True)
class SupplyRequirement:
    item: str
    quantity: int
    unit: str


@dataclass(frozen=True, slots=True)
class Requirements:
    teams: tuple[TeamRequirement, ...] = ()
    supplies: tuple[SupplyRequirement, ...] = ()


@dataclass(frozen=True, slots=True)
class Activation:
    """A plan activated on an incident at a level: roles, checklist and requirements."""

    plan_id: str
    plan_version: int | str
    level: ResponseLevel
    roles: tuple[RoleAssignment, ...]
    checklist: tuple[ChecklistEntry, ...]
    requirements: Requirements

    def entry(self, item_id: str) -> ChecklistEntry:
        for e in self.checklist:
            if e.id == item_id:
                return e
        raise KeyError(item_id)

    @property
    def pending(self) -> tuple[ChecklistEntry, ...]:
        return tuple(e for e in self.checklist if e.applies and not e.done)


def _requirements(spec: LevelSpec) -> Requirements:
    return Requirements(
        teams=tuple(TeamRequirement(t.type, t.count) for t in spec.teams),
        supplies=tuple(SupplyRequirement(s.item, s.quantity, s.unit) for s in spec.supplies),
    )


def _roles(plan: Plan, level: ResponseLevel) -> tuple[RoleAssignment, ...]:
    out = []
    for r in plan.roles:
        holder, holder_en = r.held_by.get(level), r.held_by_en.get(level)
        if holder is not None and holder_en is not None:
            out.append(RoleAssignment(r.id, r.zh, r.en, holder, holder_en))
    return tuple(out)


def activate(plan: Plan, level: ResponseLevel) -> Activation:
    """A fresh activation: the checklist items that apply at ``level`` (in plan order,
    none done), the level's roles and its team and supply requirements."""
    checklist = tuple(
        ChecklistEntry(a.id, a.zh, a.en, a.role, a.level) for a in plan.checklist if a.applies_at(level)
    )
    return Activation(
        plan.id, plan.version, level, _roles(plan, level), checklist, _requirements(plan.level(level))
    )


def reevaluate(plan: Plan, activation: Activation, new_level: ResponseLevel) -> Activation:
    """The activation after a level change (or after the plan was revised).

    Items that still apply keep their ticks; items that now apply are added, undone, in
    plan order; undone items that no longer apply are dropped; done items that no
    longer apply stay with ``applies=False``. Roles and requirements are the new level's.
    """
    if plan.id != activation.plan_id:
        raise ValueError(f"activation is of plan {activation.plan_id!r}, not {plan.id!r}")
    old = {e.id: e for e in activation.checklist}
    checklist: list[ChecklistEntry] = []
    for a in plan.checklist:
        prev = old.pop(a.id, None)
        applies = a.applies_at(new_level)
        if applies:
            fresh = ChecklistEntry(a.id, a.zh, a.en, a.role, a.level)
            if prev is not None and prev.done:
                fresh = replace(fresh, done=True, done_by=prev.done_by, done_at=prev.done_at)
            checklist.append(fresh)
        elif prev is not None and prev.done:
            checklist.append(replace(prev, applies=False))
    # Done items whose action was removed from a revised plan: keep the record.
    checklist.extend(replace(e, applies=False) for e in old.values() if e.done)
    return Activation(
        plan.id,
        plan.version,
        new_level,
        _roles(plan, new_level),
        tuple(checklist),
        _requirements(plan.level(new_level)),
    )


def tick(activation: Activation, item_id: str, by: str, at: datetime) -> Activation:
    """Mark a checklist item done. Ticking a done item again is refused (first tick stands)."""
    if not by.strip():
        raise ValueError("a tick needs the name of who did it")
    entry = activation.entry(item_id)
    if entry.done:
        raise ValueError(f"checklist item {item_id!r} was already done by {entry.done_by}")
    if not entry.applies:
        raise ValueError(f"checklist item {item_id!r} does not apply at level {activation.level.name}")
    checklist = tuple(
        replace(e, done=True, done_by=by, done_at=at) if e.id == item_id else e for e in activation.checklist
    )
    return replace(activation, checklist=checklist)


def untick(activation: Activation, item_id: str) -> Activation:
    """Undo a tick (a mistake corrected); the item is pending again."""
    entry = activation.entry(item_id)
    if not entry.done:
        raise ValueError(f"checklist item {item_id!r} is not done")
    checklist = tuple(
        replace(e, done=False, done_by=None, done_at=None) if e.id == item_id else e
        for e in activation.checklist
    )
    # A done item kept only as a record (applies=False) disappears once unticked.
    checklist = tuple(e for e in checklist if e.applies or e.done)
    return replace(activation, checklist=checklist)


def current_activation(plan: Plan, incident: Incident) -> tuple[Activation, list[str]]:
    """The activation of ``plan`` on ``incident`` at the incident's current level, with
    its ticks, and the ids of ticked items the plan no longer has (a revised plan).

    Ticks are laid onto the full plan (every item, as at level I) and the result is
    re-evaluated to the current level with :func:`reevaluate`: items that apply keep
    their ticks, new ones come in undone, and items done at a graver level that no
    longer apply after the level was lowered stay on the record with ``applies=False``.
    For ticks made at the activation level this is the same as activating at the
    activation level and re-evaluating; it also keeps ticks made after a raise and
    before a lowering.
    """
    full = activate(plan, ResponseLevel.I)
    known = {e.id for e in full.checklist}
    orphans: list[str] = []
    for t in incident.checklist:
        if t.plan_id != plan.id:
            continue
        if t.item_id in known:
            full = tick(full, t.item_id, t.by, t.at)
        else:
            orphans.append(t.item_id)
    return reevaluate(plan, full, incident.level), orphans


# --- shortfall ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A requirement that is not met: ``required`` asked, ``have`` assigned or reserved."""

    kind: Literal["team", "supply"]
    key: str  # team type or item code
    required: int
    have: int
    unit: str  # "team" for teams, the item's unit for supplies

    @property
    def missing(self) -> int:
        return self.required - self.have

    def describe(self) -> str:
        what = f"{self.key} team(s)" if self.kind == "team" else f"{self.unit} of {self.key}"
        return f"short {self.missing} {what}: {self.have} of {self.required}"


def shortfall(
    requirements: Requirements,
    assigned_teams_by_type: Mapping[TeamType, int] | Mapping[str, int],
    reserved_supplies: Mapping[str, int],
) -> list[Shortfall]:
    """Every team type and item whose assigned or reserved amount is below the requirement,
    teams first, in requirement order. Surplus is not reported."""
    teams: Mapping[str, int] = {str(k): v for k, v in assigned_teams_by_type.items()}
    out: list[Shortfall] = []
    for t in requirements.teams:
        have = teams.get(t.type.value, 0)
        if have < t.count:
            out.append(Shortfall("team", t.type.value, t.count, have, "team"))
    for s in requirements.supplies:
        have = reserved_supplies.get(s.item, 0)
        if have < s.quantity:
            out.append(Shortfall("supply", s.item, s.quantity, have, s.unit))
    return out
