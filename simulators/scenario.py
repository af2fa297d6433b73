"""Drill scenarios (演练脚本): YAML files of timed injects, validated with line numbers,
expanded into the messages and command-API injects the exercise runner sends.

A scenario names the exercise's start place and lists injects, each ``at`` an exercise
time and of exactly one kind (see docs/exercises.md, "Scenarios and the drill runner"):

- ``sensor`` — a registered device's readings ramping across its kind's alarm threshold;
- ``video`` — a camera's analytics alert (event, confidence);
- ``calls`` — a burst of 110 calls within a radius of a place over a duration;
- ``report`` — a grid worker's (or a field team's) report;
- ``team_unavailable`` — a team's status ``off_duty`` on the exercise's team topic;
- ``warehouse_short`` — stock an exercise treats as gone (command API inject);
- ``escalate`` — raise the response level of the incident a named earlier inject's
  alarm joined (command API inject, by that alarm message's id).

Loading is the only I/O here (reading the file, building the demo registries in
:func:`demo_world`). Validation and expansion are pure; expansion is deterministic for
the scenario's ``seed`` (one random stream per inject, so editing one inject leaves the
others' messages alone).

Every problem is reported with the file and the line it comes from — PyYAML's node
marks, mapped from each value's path — e.g.
``high_rise_fire.yaml:23: injects[3].calls.count: must be > 0``.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from simulators.exercise_run import TimedInject, TimedMessage
from simulators.feeds import NORMAL_RANGE, SYS110
from wuwang.city import Camera, City, Device, GridCell, Team, Venue, build_city
from wuwang.contract import CallCategory, Feed, Network, TeamStatus, team_topic, wuwang_topic
from wuwang.geo import offset_by_metres
from wuwang.lattice import grid_cell_id
from wuwang.reserve_layout import holdings
from wuwang.thresholds import DEFAULT_THRESHOLDS, Threshold
from wuwang.yamltext import not_valid_yaml

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

INJECT_KINDS = ("sensor", "video", "calls", "report", "team_unavailable", "warehouse_short", "escalate")
#: Kinds that publish messages (and so can raise an alarm an ``escalate`` refers to).
MESSAGE_KINDS = ("sensor", "video", "calls", "report")

_ID = r"^[A-Za-z0-9_.-]{1,64}$"
_NAME = r"^[A-Za-z0-9_.-]{1,40}$"
_DURATION_RE = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")
_CLOCK_RE = re.compile(r"^(?:(?P<h>\d{1,2}):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` are ``file:line: path: what`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- durations --------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1m30s"``, ``"05:00"`` or
    ``"00:05:00"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 90s, 5m, 00:05:00")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        m = _DURATION_RE.fullmatch(text) if text else None
        c = _CLOCK_RE.fullmatch(text)
        if m is not None and any(m.groupdict().values()):
            seconds = sum(float(m[k] or 0) * f for k, f in (("h", 3600), ("m", 60), ("s", 1)))
        elif c is not None:
            seconds = float(c["h"] or 0) * 3600 + float(c["m"]) * 60 + float(c["s"])
        else:
            raise ValueError(f"{value!r} is not a duration (like 90s, 5m, 1h30m, 00:05:00)")
    else:
        raise ValueError("a duration is a number of seconds or text like 90s, 5m, 00:05:00")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite number of seconds, not negative")
    return seconds


def format_offset(seconds: float) -> str:
    """``754.0`` → ``"12:34"`` (exercise time as a drill planner reads it)."""
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


Duration = Annotated[float, BeforeValidator(parse_duration)]


# --- the YAML schema ----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Place(_Strict):
    """A place: a registered venue, or a named point (WGS-84)."""

    venue: Annotated[str, Field(pattern=_ID)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None

    @model_validator(mode="after")
    def _venue_or_point(self) -> Place:
        if self.venue is None and (self.lat is None or self.lon is None):
            raise ValueError("give a venue id, or lat and lon")
        if self.venue is not None and (self.lat is not None or self.lon is not None):
            raise ValueError("give a venue id or lat/lon, not both")
        return self


class SensorInject(_Strict):
    device: Annotated[str, Field(pattern=_ID)]
    start: float | None = Field(default=None, alias="from", description="first reading (default: normal)")
    to: float = Field(description="the peak reading; must reach the kind's alarm threshold")
    over: Duration = Field(default=120.0, description="ramp from 'from' to 'to' over this long")
    every: Annotated[Duration, Field(gt=0)] = Field(default=15.0, description="one reading every …")
    hold: Duration = Field(default=0.0, description="keep reading the peak this long after the ramp")


class VideoInject(_Strict):
    camera: Annotated[str, Field(pattern=_ID)]
    event: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    confidence: Annotated[float, Field(ge=0, le=1)]
    count: Annotated[int, Field(ge=1, le=100)] = 1
    every: Annotated[Duration, Field(gt=0)] = 30.0


class CallsInject(_Strict):
    count: Annotated[int, Field(gt=0, le=1000)]
    category: CallCategory
    descriptions: Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(min_length=1)]
    over: Duration = 300.0
    radius_m: Annotated[float, Field(gt=0, le=20000)] = 300.0
    around: Place | None = Field(default=None, description="default: the exercise's start place")
    address: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    priority: Annotated[int, Field(ge=1, le=3)] | None = None


class ReportInject(_Strict):
    category: Annotated[str, Field(min_length=1, max_length=64)]
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    reporter: Annotated[str, Field(pattern=_ID)] | None = Field(
        default=None, description="a grid worker (GW-<cell>); default: the place's grid worker"
    )
    team: Annotated[str, Field(pattern=_ID)] | None = Field(default=None, description="or a field team")
    around: Place | None = None
    radius_m: Annotated[float, Field(ge=0, le=5000)] = 50.0
    photo: bool = False

    @model_validator(mode="after")
    def _one_reporter(self) -> ReportInject:
        if self.reporter is not None and self.team is not None:
            raise ValueError("a report comes from a grid worker or a team, not both")
        return self


class TeamUnavailableInject(_Strict):
    team: Annotated[str, Field(pattern=_ID)]
    reason: Annotated[str, Field(max_length=200)] = ""
    back_after: Duration | None = Field(
        default=None, alias="for", description="available again after this long (default: not in this drill)"
    )


class WarehouseShortInject(_Strict):
    warehouse: Annotated[str, Field(pattern=_ID)]
    item: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    quantity: Annotated[float, Field(gt=0)]


_LEVELS = {"I": "I", "II": "II", "III": "III", "IV": "IV", "1": "I", "2": "II", "3": "III", "4": "IV"}


def _level(value: object) -> str:
    key = (
        str(value).strip().upper() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    )
    if key is None or key not in _LEVELS:
        raise ValueError("a response level is I, II, III or IV (or 1–4)")
    return _LEVELS[key]


class EscalateInject(_Strict):
    of: Annotated[str, Field(pattern=_NAME, description="the name of an earlier inject")]
    level: Annotated[Literal["I", "II", "III", "IV"], BeforeValidator(_level)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Inject(_Strict):
    at: Duration
    name: Annotated[str, Field(pattern=_NAME)] | None = None
    sensor: SensorInject | None = None
    video: VideoInject | None = None
    calls: CallsInject | None = None
    report: ReportInject | None = None
    team_unavailable: TeamUnavailableInject | None = None
    warehouse_short: WarehouseShortInject | None = None
    escalate: EscalateInject | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Inject:
        kinds = [k for k in INJECT_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"exactly one of {', '.join(INJECT_KINDS)} (got {got})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in INJECT_KINDS if getattr(self, k) is not None)


class Scenario(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    start: Place
    seed: int = 1
    injects: Annotated[list[Inject], Field(min_length=1)]

    @property
    def duration_s(self) -> float:
        return max(i.at for i in self.injects)


# --- the world a scenario refers to -------------------------------------------------


@dataclass(frozen=True)
class ScenarioWorld:
    """The registries a scenario's ids are checked against (the demo city, rosters and
    reserve) and the alarm rules its ramps must cross."""

    city: City
    #: warehouse id → the item codes it holds (stock or production capacity)
    warehouses: Mapping[str, frozenset[str]]
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    video_alarm_confidence: float = 0.8
    devices: Mapping[str, Device] = field(init=False)
    cameras: Mapping[str, Camera] = field(init=False)
    venues: Mapping[str, Venue] = field(init=False)
    teams: Mapping[str, Team] = field(init=False)
    cells: Mapping[str, GridCell] = field(init=False)

    def __post_init__(self) -> None:
        c = self.city
        object.__setattr__(self, "devices", {d.id: d for d in c.devices})
        object.__setattr__(self, "cameras", {x.id: x for x in c.cameras})
        object.__setattr__(self, "venues", {v.id: v for v in c.venues})
        object.__setattr__(self, "teams", {t.id: t for t in c.teams})
        object.__setattr__(self, "cells", {g.id: g for g in c.grid_cells})


@lru_cache(maxsize=2)
def demo_world(grid_deg: float | None = None) -> ScenarioWorld:
    """The demo city (wuwang.city), its teams (the rosters are per team) and the demo
    reserve's warehouses and what they hold (wuwang.reserve_layout, the layout the
    command service stocks). About a second; cached."""
    from wuwang.settings import get_settings

    settings = get_settings()
    city = build_city(deg=grid_deg if grid_deg is not None else settings.shared.grid_cell_deg)
    thresholds = dict(DEFAULT_THRESHOLDS)
    for kind, (raise_at, clear_below) in settings.ingest.sensor_thresholds.items():
        thresholds[kind] = Threshold(float(raise_at), float(clear_below))
    return ScenarioWorld(
        city,
        holdings(),
        thresholds,
        settings.ingest.video_alarm_confidence,
    )


# --- YAML with line numbers -----------------------------------------------------------

_Path = tuple[str | int, ...]


def _format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _mark_lines(
    node: yaml.Node, path: _Path, lines: dict[_Path, int], problems: list[tuple[_Path, str]]
) -> None:
    """Record the 1-based line of every value's path (a mapping entry: its key's line)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                lines[child] = key_node.start_mark.line + 1
                problems.append((child, "duplicate key"))
                continue
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _mark_lines(value_node, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _mark_lines(item, (*path, i), lines, problems)


def _line_of(lines: Mapping[_Path, int], path: Sequence[str | int]) -> int:
    """The line of the longest known prefix (a missing field: its mapping's line)."""
    p = tuple(path)
    while p and p not in lines:
        p = p[:-1]
    return lines.get(p, 1)


def _message(err: Mapping[str, Any]) -> str:
    """pydantic's error, in the words of a drill planner."""
    kind, ctx, msg = err["type"], err.get("ctx") or {}, str(err["msg"])
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {limit:g}" if isinstance(limit, (int, float)) else msg
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind == "too_short":
        return "must not be empty"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return msg


def _pydantic_loc(err: Mapping[str, Any]) -> _Path:
    # Union members and function validators add their own names to the location.
    return tuple(
        p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
    )


def parse_scenario(text: str, filename: str, world: ScenarioWorld) -> Scenario:
    """Validate a scenario's YAML text (pure). Raises ScenarioError naming file and line."""
    name = Path(filename).name
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ScenarioError([not_valid_yaml(name, exc)]) from None
    if node is None or not isinstance(data, dict):
        raise ScenarioError([f"{name}:1: a scenario is a mapping with name, description, start and injects"])
    lines: dict[_Path, int] = {}
    found: list[tuple[_Path, str]] = []
    _mark_lines(node, (), lines, found)
    scenario: Scenario | None = None
    if not found:
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError as exc:
            found = [(_pydantic_loc(e), _message(e)) for e in exc.errors()]
    if scenario is not None:
        found = reference_problems(scenario, world)
    if found:
        raise ScenarioError([f"{name}:{_line_of(lines, p)}: {_format_path(p)}: {m}" for p, m in found])
    assert scenario is not None
    return scenario


def load_scenario(path: str | Path, world: ScenarioWorld | None = None) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{p.name}:1: cannot read: {exc}"]) from None
    return parse_scenario(text, p.name, world or demo_world())


def shipped_scenarios() -> list[Path]:
    """The scenarios in simulators/scenarios, by file name."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def scenario_path(name: str) -> Path:
    """A shipped scenario by file name (``high_rise_fire`` or ``high_rise_fire.yaml``);
    refuses anything that is not a plain file name in simulators/scenarios."""
    stem = name.removesuffix(".yaml")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", stem):
        raise ValueError(f"not a scenario name: {name[:80]!r}")
    path = SCENARIO_DIR / f"{stem}.yaml"
    if not path.is_file():
        raise ValueError(f"no scenario {stem!r} in {SCENARIO_DIR.name}/")
    return path


# --- references to the world --------------------------------------------------------


def _place_problems(place: Place | None, path: _Path, world: ScenarioWorld) -> list[tuple[_Path, str]]:
    if place is not None and place.venue is not None and place.venue not in world.venues:
        return [((*path, "venue"), f"unknown venue {place.venue!r} (not in the demo city)")]
    return []


def _templates_ok(texts: Sequence[str]) -> str | None:
    for text in texts:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            return f"{text[:40]!r}: {exc}"
        if fields - {"place", "n"}:
            return f"{text[:40]!r}: only {{place}} and {{n}} may be filled in"
    return None


def reference_problems(scenario: Scenario, world: ScenarioWorld) -> list[tuple[_Path, str]]:
    """Ids that the demo registries do not know, ramps that never alarm, escalations
    of injects that do not exist, come later, or never raise an alarm."""
    out: list[tuple[_Path, str]] = _place_problems(scenario.start, ("start",), world)
    names: dict[str, int] = {}
    for i, inj in enumerate(scenario.injects):
        base: _Path = ("injects", i)
        if inj.name is not None:
            if inj.name in names:
                out.append(
                    ((*base, "name"), f"name {inj.name!r} is already used by injects[{names[inj.name]}]")
                )
            else:
                names[inj.name] = i
        here: _Path = (*base, inj.kind)
        if inj.sensor is not None:
            s = inj.sensor
            dev = world.devices.get(s.device)
            if dev is None:
                out.append(((*here, "device"), f"unknown device {s.device!r} (not in the demo city)"))
                continue
            t = world.thresholds.get(dev.kind)
            if t is not None and s.to < t.raise_at:
                out.append(
                    (
                        (*here, "to"),
                        f"{s.to:g} {dev.unit} never reaches the {dev.kind} alarm "
                        f"threshold {t.raise_at:g} {dev.unit} ({dev.id})",
                    )
                )
            if t is not None and s.start is not None and s.start >= t.raise_at:
                out.append(
                    (
                        (*here, "from"),
                        f"starts at or above the {dev.kind} alarm threshold "
                        f"{t.raise_at:g} {dev.unit}: nothing crosses it",
                    )
                )
        elif inj.video is not None:
            if inj.video.camera not in world.cameras:
                out.append(((*here, "camera"), f"unknown camera {inj.video.camera!r} (not in the demo city)"))
        elif inj.calls is not None:
            out += _place_problems(inj.calls.around, (*here, "around"), world)
            bad = _templates_ok(
                [*inj.calls.descriptions, *([inj.calls.address] if inj.calls.address else [])]
            )
            if bad:
                out.append(((*here, "descriptions"), bad))
        elif inj.report is not None:
            r = inj.report
            out += _place_problems(r.around, (*here, "around"), world)
            if r.team is not None and r.team not in world.teams:
                out.append(((*here, "team"), f"unknown team {r.team!r} (not in the demo rosters)"))
            if r.reporter is not None and (
                not r.reporter.startswith("GW-") or r.reporter.removeprefix("GW-") not in world.cells
            ):
                out.append(((*here, "reporter"), f"unknown grid worker {r.reporter!r} (GW-<grid cell id>)"))
        elif inj.team_unavailable is not None:
            if inj.team_unavailable.team not in world.teams:
                out.append(
                    ((*here, "team"), f"unknown team {inj.team_unavailable.team!r} (not in the demo rosters)")
                )
        elif inj.warehouse_short is not None:
            w = inj.warehouse_short
            held = world.warehouses.get(w.warehouse)
            if held is None:
                out.append(
                    ((*here, "warehouse"), f"unknown warehouse {w.warehouse!r} (not in the demo reserve)")
                )
            elif w.item not in held:
                out.append(((*here, "item"), f"{w.warehouse} holds no {w.item!r}"))
        elif inj.escalate is not None:
            e = inj.escalate
            j = names.get(e.of)
            if j is None:
                later = [k for k, x in enumerate(scenario.injects) if x.name == e.of]
                why = f"injects[{later[0]}] comes later" if later else "no inject has that name"
                out.append(((*here, "of"), f"{e.of!r}: {why}; escalate refers to an earlier inject"))
                continue
            target = scenario.injects[j]
            if target.kind not in MESSAGE_KINDS:
                out.append(
                    ((*here, "of"), f"{e.of!r} is a {target.kind} inject: it raises no alarm to escalate")
                )
                continue
            first = _first_alarm_offset(target, world)
            if first is None:
                out.append(
                    (
                        (*here, "of"),
                        f"{e.of!r} never raises an alarm (video confidence below "
                        f"{world.video_alarm_confidence:g}?)",
                    )
                )
            elif inj.at < first:
                out.append(
                    (
                        (*base, "at"),
                        f"escalates at {format_offset(inj.at)}, before {e.of!r} raises its "
                        f"alarm at {format_offset(first)}",
                    )
                )
    return out


# --- expansion ------------------------------------------------------------------------

Item = TimedMessage | TimedInject

_PHONE_HEADS = ("133", "135", "136", "138", "139", "150", "152", "155", "158", "159", "177", "186", "189")


@dataclass(frozen=True)
class _Resolved:
    name: str
    lat: float
    lon: float


def _resolve(place: Place | None, default: _Resolved, world: ScenarioWorld) -> _Resolved:
    if place is None:
        return default
    if place.venue is not None:
        v = world.venues[place.venue]
        return _Resolved(place.name or v.name, v.lat, v.lon)
    assert place.lat is not None and place.lon is not None
    return _Resolved(place.name or default.name, place.lat, place.lon)


def _near(rng: random.Random, lat: float, lon: float, radius_m: float) -> tuple[float, float]:
    """A uniformly random point within ``radius_m`` of (lat, lon)."""
    r = radius_m * math.sqrt(rng.random())
    theta = rng.uniform(0, 2 * math.pi)
    la, lo = offset_by_metres(lat, lon, r * math.cos(theta), r * math.sin(theta))
    return round(la, 6), round(lo, 6)


def _sensor_values(s: SensorInject, dev: Device) -> list[tuple[float, float]]:
    """(seconds after the inject, value): a linear ramp from ``from`` to ``to``, then the
    peak held; the last ramp reading is exactly ``to``."""
    lo, hi = NORMAL_RANGE.get(dev.kind, (0.0, 1.0))
    start = s.start if s.start is not None else round(lo + (hi - lo) * 0.3, 3)
    steps = max(1, math.ceil(s.over / s.every)) if s.over > 0 else 0
    out = [
        (
            min(k * s.every, s.over),
            start + (s.to - start) * (min(k * s.every, s.over) / s.over if s.over else 1),
        )
        for k in range(steps + 1)
    ]
    n_hold = int(s.hold // s.every)
    out += [(s.over + k * s.every, s.to) for k in range(1, n_hold + 1)]
    digits = 3 if dev.kind == "water_level" else 2
    return [(t, round(v, digits)) for t, v in out]


def _first_alarm_offset(inj: Inject, world: ScenarioWorld) -> float | None:
    """Exercise time of the first message of an inject that raises an alarm."""
    for offset, _ in _alarm_messages(inj, world):
        return offset
    return None


def _alarm_messages(inj: Inject, world: ScenarioWorld) -> list[tuple[float, int]]:
    """(offset, index of the inject's message) of the messages that raise an alarm, in
    order, without expanding the random parts."""
    if inj.sensor is not None:
        dev = world.devices[inj.sensor.device]
        t = world.thresholds.get(dev.kind)
        values = _sensor_values(inj.sensor, dev)
        return [(inj.at + dt, k) for k, (dt, v) in enumerate(values) if t is not None and v >= t.raise_at][:1]
    if inj.video is not None:
        if inj.video.confidence < world.video_alarm_confidence:
            return []
        return [(inj.at, 0)]
    if inj.calls is not None or inj.report is not None:
        return [(inj.at, 0)]  # calls and reports raise an alarm each; the first is at ``at``
    return []


def _label(i: int, inj: Inject, k: int | None = None, n: int | None = None) -> str:
    who = f" {inj.name}" if inj.name else ""
    part = f" {k + 1}/{n}" if k is not None and n is not None and n > 1 else ""
    return f"#{i + 1} {inj.kind}{who}{part}"


def _msg_id(i: int, k: int) -> str:
    # Unique within the exercise (ingest keys ids per exercise), short, and readable.
    return f"drill-{i + 1:02d}-{k + 1:03d}"


def expand(scenario: Scenario, world: ScenarioWorld) -> list[Item]:
    """The scenario as timed messages and injects, sorted by offset (pure, deterministic)."""
    start = scenario.start
    origin = _resolve(start, _Resolved(start.name or "演练地点", start.lat or 0.0, start.lon or 0.0), world)
    items: list[Item] = []
    first_alarm_id: dict[str, str] = {}
    status_seq: dict[str, int] = {}
    for i, inj in enumerate(scenario.injects):
        rng = random.Random(f"wuwang-drill:{scenario.seed}:{i}")
        msgs: list[TimedMessage] = []
        if inj.sensor is not None:
            dev = world.devices[inj.sensor.device]
            values = _sensor_values(inj.sensor, dev)
            for k, (dt, value) in enumerate(values):
                payload: dict[str, Any] = {
                    "id": _msg_id(i, k),
                    "device_id": dev.id,
                    "kind": dev.kind,
                    "value": value,
                    "unit": dev.unit,
                    "lat": round(dev.lat, 6),
                    "lon": round(dev.lon, 6),
                    "sim": True,
                }
                topic = wuwang_topic(dev.network, Feed.SENSOR, dev.id)
                msgs.append(TimedMessage(inj.at + dt, topic, payload, _label(i, inj, k, len(values))))
        elif inj.video is not None:
            v = inj.video
            cam = world.cameras[v.camera]
            for k in range(v.count):
                msg_id = _msg_id(i, k)
                bw, bh = rng.uniform(120, 640), rng.uniform(90, 480)
                payload = {
                    "id": msg_id,
                    "camera_id": cam.id,
                    "event": v.event,
                    "confidence": v.confidence,
                    "lat": round(cam.lat, 6),
                    "lon": round(cam.lon, 6),
                    "snapshot_url": f"https://vms.example.invalid/drill/{cam.id}/{msg_id}.jpg",
                    "bbox": [
                        round(rng.uniform(0, 1920 - bw), 1),
                        round(rng.uniform(0, 1080 - bh), 1),
                        round(bw, 1),
                        round(bh, 1),
                    ],
                    "sim": True,
                }
                topic = wuwang_topic(cam.network, Feed.VIDEO, cam.id)
                msgs.append(TimedMessage(inj.at + k * v.every, topic, payload, _label(i, inj, k, v.count)))
        elif inj.calls is not None:
            c = inj.calls
            place = _resolve(c.around, origin, world)
            times = sorted(round(rng.uniform(0, c.over), 3) for _ in range(c.count - 1))
            for k, dt in enumerate([0.0, *times]):
                lat, lon = _near(rng, place.lat, place.lon, c.radius_m)
                fill = {"place": place.name, "n": str(k + 1)}
                payload = {
                    "id": _msg_id(i, k),
                    "call_id": f"JQ-DRILL-{i + 1:02d}{k + 1:04d}",
                    "category": str(c.category),
                    "lat": lat,
                    "lon": lon,
                    "address": (c.address or "{place}附近").format_map(fill),
                    "description": rng.choice(c.descriptions).format_map(fill),
                    "caller": f"{rng.choice(_PHONE_HEADS)}****{rng.randrange(10000):04d}",
                    "sim": True,
                }
                if c.priority is not None:
                    payload["priority"] = c.priority
                topic = wuwang_topic(Network.POLICE, Feed.CALL, SYS110)
                msgs.append(TimedMessage(inj.at + dt, topic, payload, _label(i, inj, k, c.count)))
        elif inj.report is not None:
            r = inj.report
            place = _resolve(r.around, origin, world)
            lat, lon = _near(rng, place.lat, place.lon, r.radius_m)
            if r.team is not None:
                reporter, topic = r.team, team_topic(r.team, "report")
            else:
                reporter = r.reporter or f"GW-{grid_cell_id(lat, lon, world.city.grid_deg)}"
                topic = wuwang_topic(Network.COMMUNITY, Feed.REPORT, reporter)
            payload = {
                "id": _msg_id(i, 0),
                "reporter": reporter,
                "category": r.category,
                "description": r.description,
                "lat": lat,
                "lon": lon,
                "sim": True,
            }
            if r.photo:
                payload["photo_url"] = (
                    f"https://oss.example.invalid/wuwang/drill/{reporter}/{_msg_id(i, 0)}.jpg"
                )
            msgs.append(TimedMessage(inj.at, topic, payload, _label(i, inj)))
        elif inj.team_unavailable is not None:
            u = inj.team_unavailable
            changes = [(inj.at, TeamStatus.OFF_DUTY, u.reason)]
            if u.back_after is not None:
                changes.append((inj.at + u.back_after, TeamStatus.AVAILABLE, ""))
            for k, (at, status, reason) in enumerate(changes):
                seq = status_seq[u.team] = status_seq.get(u.team, 0) + 1
                payload = {"id": _msg_id(i, k), "status": str(status), "seq": seq, "sim": True}
                if reason:
                    payload["reason"] = reason
                msgs.append(
                    TimedMessage(at, team_topic(u.team, "status"), payload, _label(i, inj, k, len(changes)))
                )
        elif inj.warehouse_short is not None:
            w = inj.warehouse_short
            quantity: float | int = int(w.quantity) if float(w.quantity).is_integer() else w.quantity
            body = {
                "kind": "warehouse_short",
                "warehouse_id": w.warehouse,
                "item_code": w.item,
                "quantity": quantity,
            }
            items.append(TimedInject(inj.at, body, _label(i, inj)))
        elif inj.escalate is not None:
            e = inj.escalate
            # The command API takes the level as its number (1 = I … 4 = IV).
            level = ("I", "II", "III", "IV").index(e.level) + 1
            body = {"kind": "escalate", "msg_id": first_alarm_id[e.of], "level": level, "reason": e.reason}
            items.append(TimedInject(inj.at, body, _label(i, inj)))
        if inj.name is not None and inj.kind in MESSAGE_KINDS:
            alarms = _alarm_messages(inj, world)
            if alarms:
                first_alarm_id[inj.name] = str(msgs[alarms[0][1]].payload["id"])
        items.extend(msgs)
    # Stable: messages of one inject keep their order at equal offsets.
    return sorted(items, key=lambda it: it.offset_s)
