"""Exercises (演练) as the command service decides about them, pure.

What an exercise may be told in which status (control, injects, purge), what a control
command's value must be, how a replay's source is written down for the exercise runner,
the planner's level inject on an exercise incident, and the overlays that make a drill
see its own world: team statuses the drill set (``exercise_team_state``) over the live
roster, and stock the drill cut (``exercise_stock_cut``) out of the lots it may pick.

No I/O: times and ids are passed in. The shared names (kinds, statuses, actions, speed
limits) are :mod:`wuwang.exercises`; the design is docs/exercises.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from command.domain.incidents import (
    TERMINAL_STATES,
    Actor,
    Event,
    Forbidden,
    IllegalTransition,
    Incident,
    InvalidCommand,
    LevelChanged,
    apply,
)
from command.domain.reserve import StockLot
from command.domain.rosters import Team, TeamStatus
from command.domain.vocabulary import ResponseLevel
from wuwang import i18n
from wuwang.exercises import MAX_SPEED, MIN_SPEED, ControlAction, ExerciseKind, ExerciseStatus
from wuwang.geo import haversine_m

S = ExerciseStatus

# --- refusals --------------------------------------------------------------------------


class ExerciseError(Exception):
    """Base of the refusals below; ``reason`` is short and readable by a planner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExerciseConflict(ExerciseError):
    """The exercise's status does not allow it (HTTP 409): e.g. control of a finished one."""


class InvalidExercise(ExerciseError):
    """The request itself is wrong (HTTP 422): a bad window, a speed out of range."""


# --- statuses ----------------------------------------------------------------------------

#: A runner may still act on these: control commands and injects are accepted.
LIVE_STATUSES: frozenset[ExerciseStatus] = frozenset({S.PLANNED, S.RUNNING, S.PAUSED})
#: Purge removes rows a runner might still be writing: only when nothing runs.
PURGEABLE: frozenset[ExerciseStatus] = frozenset({S.PLANNED, S.FINISHED, S.FAILED, S.PURGED})


def check_accepts(status: ExerciseStatus, exercise_id: str, what: str) -> None:
    """Control and injects: only while the exercise is planned, running or paused."""
    if status not in LIVE_STATUSES:
        raise ExerciseConflict(f"cannot {what}: exercise {exercise_id} is {status}")


def check_purgeable(status: ExerciseStatus, exercise_id: str) -> None:
    if status not in PURGEABLE:
        raise ExerciseConflict(
            f"cannot purge exercise {exercise_id} while it is {status}: stop it first "
            '(POST /exercises/{id}/control {"action": "stop"})'
        )


def check_control(action: ControlAction, value: float | None) -> float | None:
    """The value a control command carries: exercise seconds for ``seek`` (≥ 0), times
    real time for ``speed`` (1–100), nothing for play, pause and stop."""
    if action in (ControlAction.SEEK, ControlAction.SPEED):
        if value is None:
            raise InvalidExercise(f"{action} needs a value")
        if not math.isfinite(value):
            raise InvalidExercise(f"{action} needs a finite value")
        if action is ControlAction.SEEK and value < 0:
            raise InvalidExercise(f"seek needs a value ≥ 0 (exercise seconds), not {value:g}")
        if action is ControlAction.SPEED and not MIN_SPEED <= value <= MAX_SPEED:
            raise InvalidExercise(f"speed must be {MIN_SPEED:g}–{MAX_SPEED:g}, not {value:g}")
        return value
    if value is not None:
        raise InvalidExercise(f"{action} takes no value")
    return None


# --- creating -------------------------------------------------------------------------------

#: A scenario is named by a plain file name in simulators/scenarios/: no directories.
SCENARIO_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_scenario_name(name: str) -> str:
    if SCENARIO_NAME_RE.fullmatch(name) is None:
        raise InvalidExercise(
            f"scenario must be a plain file name in simulators/scenarios (no directories): {name[:80]!r}"
        )
    return name


def check_speed(speed: float) -> float:
    if not (math.isfinite(speed) and MIN_SPEED <= speed <= MAX_SPEED):
        raise InvalidExercise(f"speed must be {MIN_SPEED:g}–{MAX_SPEED:g}, not {speed:g}")
    return speed


def check_window(start: datetime | None, end: datetime | None, now: datetime) -> None:
    """A recorded window: both ends aware, start before end, nothing in the future."""
    for t in (start, end):
        if t is not None and (t.tzinfo is None or t.utcoffset() is None):
            raise InvalidExercise("start and end need a time zone offset")
    if start is not None and end is not None and start >= end:
        raise InvalidExercise(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    for name, t in (("start", start), ("end", end)):
        if t is not None and t > now:
            raise InvalidExercise(
                f"{name} ({t.isoformat()}) is in the future: only recorded time can be replayed"
            )


def new_exercise_id(kind: ExerciseKind, at: datetime, suffix: str) -> str:
    """``EX-<yyyymmdd>-<HHMM>-<kind>-<suffix>`` (matches wuwang.exercises.EXERCISE_ID_RE)."""
    return f"EX-{at:%Y%m%d-%H%M}-{kind}-{suffix}"


def replay_source(
    start: datetime | None,
    end: datetime | None,
    dataset_id: str | None,
    options: Mapping[str, Any] | None = None,
) -> str:
    """``exercise.source`` of a replay, as the exercise runner reads it (docs/exercises.md,
    "Replay"): ``{"window": {"start", "end"}}`` for a recorded window of the time-series
    store, or ``{"dataset_id", "start", "end"}`` for an imported dataset (ends may be
    null: all of it) with the dataset's ``options`` (``system_id``, ``relocate_to``)."""

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t is not None else None

    extra = {k: v for k, v in (options or {}).items() if v is not None}
    if dataset_id is None:
        if start is None or end is None:
            raise InvalidExercise("a replay of a recorded window needs start and end")
        if extra:
            raise InvalidExercise(f"{', '.join(sorted(extra))}: for a replay of an imported dataset only")
        return json.dumps({"window": {"start": iso(start), "end": iso(end)}}, separators=(",", ":"))
    body = {"dataset_id": dataset_id, "start": iso(start), "end": iso(end), **extra}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


#: A dataset whose calls lie further than this from the city is moved onto it for replay.
RELOCATE_BEYOND_M = 100_000.0


def default_relocation(
    dataset_centre: tuple[float, float] | None, city_centre: tuple[float, float] | None
) -> dict[str, float] | None:
    """Where a dataset replay lands when the planner did not say: calls recorded in
    another city (San Francisco's, say) are moved onto this one, distances kept, so the
    drill happens on this city's map; calls already here stay where they were."""
    if dataset_centre is None or city_centre is None:
        return None
    if haversine_m(*dataset_centre, *city_centre) <= RELOCATE_BEYOND_M:
        return None
    return {"lat": city_centre[0], "lon": city_centre[1]}


def describe_source(kind: str, source: str) -> dict[str, Any]:
    """The source as the API shows it: ``scenario`` (file name) or ``replay`` (window or
    dataset); an import's source (its file name) as ``file``."""
    if kind == ExerciseKind.SCENARIO:
        return {"scenario": source, "replay": None}
    if kind == ExerciseKind.REPLAY:
        try:
            parsed = json.loads(source)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            window = parsed.get("window")
            if isinstance(window, dict):
                return {"scenario": None, "replay": {"dataset_id": None, **window}}
            return {"scenario": None, "replay": parsed}
        return {"scenario": None, "replay": {"raw": source}}
    return {"scenario": None, "replay": None, "file": source}


# --- the level inject -------------------------------------------------------------------------


def inject_reason(reason: str) -> str:
    why = reason.strip()
    if not why:
        raise InvalidExercise("an escalate inject needs a reason")
    return i18n.text("zh_CN", "exercise.inject_reason", reason=why)


def decide_inject_level(
    incident: Incident, exercise_id: str, *, level: ResponseLevel, actor: Actor, at: datetime, reason: str
) -> list[Event]:
    """A scenario's "raise the level" inject on the incident a message of the exercise
    joined. The commander-only rule of :func:`decide_change_level` is lifted here, and
    only here: the incident must belong to this very exercise. The event's reason
    carries the inject prefix, so the timeline and the after-action report tell an
    inject from a commander's decision. ``[]`` when the incident is already at that
    level (a runner may resend an inject)."""
    if incident.exercise_id != exercise_id:
        whose = "a live incident" if incident.exercise_id is None else f"of exercise {incident.exercise_id}"
        raise Forbidden(
            f"an inject of exercise {exercise_id} may not change incident {incident.incident_id} ({whose})"
        )
    why = inject_reason(reason)
    if incident.state in TERMINAL_STATES:
        raise IllegalTransition(
            f"cannot change the level: incident {incident.incident_id} is {incident.state} "
            "and takes no further changes"
        )
    if level == incident.level:
        return []
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand("time must be timezone-aware")
    event = Event(
        incident_id=incident.incident_id,
        seq=incident.version + 1,
        at=at,
        actor=actor.user_id,
        actor_role=actor.role,
        reason=why,
        data=LevelChanged(from_level=incident.level, to_level=level),
    )
    apply(incident, event)  # the same fold check every decided event passes
    return [event]


# --- a drill's own world over the live one ------------------------------------------------------


def overlay_team_statuses(
    teams: Iterable[Team], exercise_states: Mapping[str, TeamStatus], ordered: Iterable[str] = ()
) -> list[Team]:
    """The roster as one exercise sees it: the status the drill set for a team
    (``exercise_team_state``) replaces its live status; a team with an exercise order in
    force (``ordered``) and no drill status is dispatched in the drill. Live teams are
    not changed, only this list."""
    busy = frozenset(ordered)
    out = []
    for team in teams:
        status = exercise_states.get(team.id)
        if status is None and team.id in busy:
            status = TeamStatus.DISPATCHED
        out.append(team if status is None or status is team.status else replace(team, status=status))
    return out


@dataclass(frozen=True, slots=True)
class StockCut:
    """Stock a drill treats as gone: ``quantity`` of an item in one warehouse."""

    warehouse_id: str
    item_code: str
    quantity: int


def apply_stock_cuts(lots: Sequence[StockLot], cuts: Iterable[StockCut]) -> list[StockLot]:
    """The lots less what the drill cut, per warehouse and item. The cut is taken from
    the lots the picker would use first (earliest expiry, then id), so it always bites;
    a lot never goes below what is reserved on it."""
    left = {(c.warehouse_id, c.item_code): c.quantity for c in cuts if c.quantity > 0}
    if not left:
        return list(lots)
    out: dict[str, StockLot] = {lot.id: lot for lot in lots}
    ordered = sorted(
        lots, key=lambda lot: (lot.expires_on is None, lot.expires_on or datetime.min.date(), lot.id)
    )
    for lot in ordered:
        key = (lot.warehouse_id, lot.item_code)
        cut = min(left.get(key, 0), max(lot.available, 0))
        if cut > 0:
            out[lot.id] = replace(lot, quantity=lot.quantity - cut)
            left[key] -= cut
    return [out[lot.id] for lot in lots]
