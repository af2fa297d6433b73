"""预警 — warnings to the public and the field: what they say, where they apply, their
lifecycle and their GB/T 35965.1 identifier. Pure: no I/O, no clock (callers pass ``at``).

Lifecycle (docs/warnings.md)::

    draft ──approve (commander; 依法处置: approver and time recorded)──▶ issued
    issued ──update──▶ superseded, and a new version issued that references it
    draft ──cancel──▶ cancelled (discarded);  issued ──cancel──▶ cancelled
    issued ──expires_at passed──▶ expired

Who (the policy's ``warning.*`` rows): operators, commanders and admins draft;
commanders and admins approve, update and cancel issued warnings (whoever drafts may
discard a draft); planners do all of it in drills only; field users read only the
issued warnings that target their team.

The fields are enough for CAP 1.2 (another module maps them): identifier, sender, sent
(``issued_at``), status (Actual / Exercise), msgType (Alert / Update / Cancel),
references, event, urgency / severity / certainty (from the level), onset, expires,
headline, description, instruction, area polygon and geocodes (cells, adcodes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Literal

from command.domain import policy
from command.domain.incidents import Actor, Forbidden, IllegalTransition, InvalidCommand
from command.domain.policy import Action as PolicyAction
from command.domain.vocabulary import Role
from command.domain.warning_events import EVENT_TYPES

BEIJING = timezone(timedelta(hours=8), "CST")

MAX_HEADLINE = 120
MAX_TEXT = 2000
MAX_REASON = 500
MAX_POLYGON_POINTS = 500
MAX_CELLS = 5000
MAX_DISTRICTS = 50
#: The longest a warning stays in force without an update.
MAX_DURATION = timedelta(days=30)

Action = Literal["draft", "approve", "update", "cancel", "read"]


class Level(StrEnum):
    """预警级别: 红 I (most severe) … 蓝 IV, with the CAP values derived from it."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def grade(self) -> int:
        """1 (I, 红) … 4 (IV, 蓝)."""
        return _GRADE[self]

    @property
    def roman(self) -> str:
        return ("I", "II", "III", "IV")[self.grade - 1]

    @property
    def colour(self) -> str:
        """The standard display colour."""
        return _COLOUR[self]

    @property
    def cap_severity(self) -> str:
        return ("Extreme", "Severe", "Moderate", "Minor")[self.grade - 1]

    @property
    def cap_urgency(self) -> str:
        return ("Immediate", "Expected", "Expected", "Future")[self.grade - 1]

    @property
    def cap_certainty(self) -> str:
        return ("Observed", "Likely", "Likely", "Possible")[self.grade - 1]


_GRADE = {Level.RED: 1, Level.ORANGE: 2, Level.YELLOW: 3, Level.BLUE: 4}
_COLOUR = {Level.RED: "#e60012", Level.ORANGE: "#f39800", Level.YELLOW: "#ffd700", Level.BLUE: "#0068b7"}


class WarningState(StrEnum):
    DRAFT = "draft"  # 草稿
    ISSUED = "issued"  # 已发布
    SUPERSEDED = "superseded"  # 已更新 (a newer version is in force)
    CANCELLED = "cancelled"  # 已解除 / 已撤销
    EXPIRED = "expired"  # 已过期


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


# --- area ------------------------------------------------------------------------------

Point = tuple[float, float]  # (lat, lon), WGS-84


@dataclass(frozen=True, slots=True)
class Area:
    """Where a warning applies: a polygon drawn on the map, grid cells, districts (GB/T
    2260 adcodes) — any of them; a place is inside if it is inside one."""

    polygon: tuple[Point, ...] = ()
    cells: frozenset[str] = frozenset()
    districts: frozenset[int] = frozenset()

    def is_empty(self) -> bool:
        return not (self.polygon or self.cells or self.districts)

    def contains(
        self, lat: float | None, lon: float | None, *, cell: str | None = None, adcode: int | None = None
    ) -> bool:
        """Whether a place (a point, and the cell and district it lies in) is inside."""
        if cell is not None and cell in self.cells:
            return True
        if adcode is not None and adcode in self.districts:
            return True
        if self.polygon and lat is not None and lon is not None:
            return point_in_polygon(lat, lon, self.polygon)
        return False


def point_in_polygon(lat: float, lon: float, polygon: Sequence[Point]) -> bool:
    """Even–odd rule (ray casting along the longitude axis); a point on an edge may fall
    either way, which a warning's hand-drawn border does not care about."""
    inside = False
    n = len(polygon)
    for i in range(n):
        lat1, lon1 = polygon[i]
        lat2, lon2 = polygon[(i + 1) % n]
        if (lat1 > lat) != (lat2 > lat):
            cross = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < cross:
                inside = not inside
    return inside


_CELL_RE = re.compile(r"^r\d{1,6}c\d{1,6}$")


def make_area(
    polygon: Iterable[Sequence[float]] = (), cells: Iterable[str] = (), districts: Iterable[int] = ()
) -> Area:
    """A checked area: at least one part; a polygon of 3–500 points on the map (a closing
    point equal to the first is dropped); cells in the lattice's ``r<row>c<col>`` form;
    6-digit GB/T 2260 adcodes."""
    points = [(float(p[0]), float(p[1])) for p in polygon]
    if len(points) >= 2 and points[0] == points[-1]:
        points.pop()
    if points:
        if not 3 <= len(points) <= MAX_POLYGON_POINTS:
            raise InvalidCommand(f"a polygon needs 3–{MAX_POLYGON_POINTS} points, got {len(points)}")
        for lat, lon in points:
            if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
                raise InvalidCommand(f"({lat}, {lon}) is not a point on the map")
    cell_set = frozenset(cells)
    if len(cell_set) > MAX_CELLS:
        raise InvalidCommand(f"at most {MAX_CELLS} grid cells")
    bad = sorted(c for c in cell_set if not _CELL_RE.match(c))
    if bad:
        raise InvalidCommand(f"not a grid cell id: {bad[0][:40]}")
    district_set = frozenset(districts)
    if len(district_set) > MAX_DISTRICTS:
        raise InvalidCommand(f"at most {MAX_DISTRICTS} districts")
    bad_codes = sorted(d for d in district_set if not 100000 <= d <= 999999)
    if bad_codes:
        raise InvalidCommand(f"not a 6-digit GB/T 2260 adcode: {bad_codes[0]}")
    area = Area(tuple(points), cell_set, district_set)
    if area.is_empty():
        raise InvalidCommand("a warning needs an area: a polygon, grid cells or districts")
    return area


# --- identifier (GB/T 35965.1) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderCode:
    """The identifier's sender part ``ZZZZZZDDDUUUXX``: GB/T 2260 area code (6 digits),
    institution (3), unit (3) and extension (2) — settings of the console."""

    area_code: str = "420600"
    institution: str = "000"
    unit: str = "000"
    extension: str = "00"

    def __post_init__(self) -> None:
        for name, value, width in (
            ("area code", self.area_code, 6),
            ("institution code", self.institution, 3),
            ("unit code", self.unit, 3),
            ("extension", self.extension, 2),
        ):
            if len(value) != width or not value.isdigit():
                raise ValueError(f"GB/T 35965.1 {name} must be {width} digits, got {value!r}")

    def __str__(self) -> str:
        return f"{self.area_code}{self.institution}{self.unit}{self.extension}"


IDENTIFIER_RE = re.compile(r"^(\d{14})_(\d{14})_([1-9]\d{0,5})$")


def identifier_stem(sender: SenderCode, at: datetime) -> str:
    """``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss``: the sender and the entry time in Beijing time."""
    if at.tzinfo is None:
        raise InvalidCommand("the entry time must carry a time zone")
    return f"{sender}_{at.astimezone(BEIJING):%Y%m%d%H%M%S}"


def next_identifier(sender: SenderCode, at: datetime, taken: Iterable[str]) -> str:
    """The identifier of a warning entered at ``at``: the stem and the next sequence
    number of that second (1 for the first), given the identifiers ``taken`` already."""
    stem = identifier_stem(sender, at)
    used = 0
    for ident in taken:
        m = IDENTIFIER_RE.match(ident)
        if m and ident.startswith(stem + "_"):
            used = max(used, int(m.group(3)))
    return f"{stem}_{used + 1}"


# --- the warning --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Content:
    """What a warning says and where and when it applies (the part an update changes)."""

    event_type: str
    level: Level
    area: Area
    onset: datetime
    expires: datetime
    headline: str
    description: str
    instruction: str


@dataclass(frozen=True, slots=True)
class WarningRecord:
    identifier: str
    sender: str  # who issues it (the console's sender name)
    content: Content
    exercise_id: str | None
    drafted_by: str
    drafted_at: datetime
    state: WarningState = WarningState.DRAFT
    msg_type: MsgType = MsgType.ALERT
    version: int = 1
    references: str | None = None  # the identifier this one updates
    approved_by: str | None = None
    approved_at: datetime | None = None
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    ended_at: datetime | None = None  # superseded or expired
    target_teams: tuple[str, ...] = field(default=())
    target_grid_workers: tuple[str, ...] = field(default=())

    @property
    def status(self) -> Literal["Actual", "Exercise"]:
        """CAP status: a drill's warning is an exercise."""
        return "Exercise" if self.exercise_id is not None else "Actual"

    def active(self, now: datetime) -> bool:
        """In force: issued, begun, not expired."""
        return self.state == WarningState.ISSUED and self.content.onset <= now < self.content.expires


def authorise(actor: Actor, action: Action, exercise_id: str | None) -> None:
    """Who may do what with warnings: the policy's ``warning.*`` rows
    (command/domain/policy.py). Raises :class:`Forbidden`. A field user's ``read`` is
    bound to its team on top: :func:`targets`."""
    role, drill = actor.role, exercise_id is not None
    asked = PolicyAction(f"warning.{action}")
    if policy.allowed(role, asked, drill=drill):
        return
    if not drill and policy.allowed(role, asked, drill=True):
        raise Forbidden(f"a planner may {action} only drill warnings; this warning is live")
    raise Forbidden(f"role {role} may not {action} warnings")


def targets(actor: Actor, warning: WarningRecord) -> bool:
    """Whether a field user's team is among those an issued warning was sent to."""
    return (
        actor.role == Role.FIELD
        and actor.team_id is not None
        and warning.state != WarningState.DRAFT
        and actor.team_id in warning.target_teams
    )


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise InvalidCommand(f"{name} must carry a time zone (e.g. 2026-12-07T19:00:00+08:00)")


def _text(value: str, name: str, limit: int, *, required: bool = True) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidCommand(f"{name} must not be empty")
    if len(text) > limit:
        raise InvalidCommand(f"{name} is {len(text)} characters; at most {limit}")
    return text


def make_content(
    *,
    event_type: str,
    level: Level | str,
    area: Area,
    onset: datetime,
    expires: datetime,
    headline: str,
    description: str,
    instruction: str,
    at: datetime,
) -> Content:
    """Checked content: a known event type and level, onset before expiry, expiry in the
    future and within :data:`MAX_DURATION` of the onset, a headline."""
    if event_type not in EVENT_TYPES:
        raise InvalidCommand(f"unknown event type {event_type[:40]!r}")
    try:
        lvl = Level(level)
    except ValueError:
        raise InvalidCommand(f"unknown level {str(level)[:20]!r}: red, orange, yellow or blue") from None
    _aware(onset, "onset")
    _aware(expires, "expires")
    if expires <= onset:
        raise InvalidCommand("expires must be after onset")
    if expires <= at:
        raise InvalidCommand("the warning would be over already: expires is in the past")
    if expires - onset > MAX_DURATION:
        raise InvalidCommand(f"a warning is in force at most {MAX_DURATION.days} days; update it after")
    return Content(
        event_type=event_type,
        level=lvl,
        area=area,
        onset=onset,
        expires=expires,
        headline=_text(headline, "headline", MAX_HEADLINE),
        description=_text(description, "description", MAX_TEXT, required=False),
        instruction=_text(instruction, "instruction", MAX_TEXT, required=False),
    )


def draft(
    *, identifier: str, sender: str, content: Content, exercise_id: str | None, actor: Actor, at: datetime
) -> WarningRecord:
    """A new draft (operator): not yet sent to anyone."""
    authorise(actor, "draft", exercise_id)
    _aware(at, "at")
    if not IDENTIFIER_RE.match(identifier):
        raise InvalidCommand(f"{identifier!r} is not a GB/T 35965.1 identifier")
    return WarningRecord(
        identifier=identifier,
        sender=sender,
        content=content,
        exercise_id=exercise_id,
        drafted_by=actor.user_id,
        drafted_at=at,
    )


def approve(
    warning: WarningRecord,
    *,
    actor: Actor,
    at: datetime,
    teams: Iterable[str],
    grid_workers: Iterable[str],
) -> WarningRecord:
    """批准并发布: the commander approves a draft; it is issued to ``teams`` and
    ``grid_workers`` inside the area (the caller found them); approver and time recorded."""
    authorise(actor, "approve", warning.exercise_id)
    _aware(at, "at")
    if warning.state != WarningState.DRAFT:
        raise IllegalTransition(f"warning {warning.identifier} is {warning.state}, not a draft")
    if warning.content.expires <= at:
        raise IllegalTransition(f"warning {warning.identifier} would be over already: expires is past")
    return replace(
        warning,
        state=WarningState.ISSUED,
        approved_by=actor.user_id,
        approved_at=at,
        target_teams=tuple(sorted(set(teams))),
        target_grid_workers=tuple(sorted(set(grid_workers))),
    )


def update(
    warning: WarningRecord,
    *,
    identifier: str,
    content: Content,
    actor: Actor,
    at: datetime,
    teams: Iterable[str],
    grid_workers: Iterable[str],
) -> tuple[WarningRecord, WarningRecord]:
    """更新: an issued warning is superseded by a new version (its own identifier,
    ``references`` the old one), issued at once by the commander who approves it.
    Returns (the old one, superseded; the new one, issued)."""
    authorise(actor, "update", warning.exercise_id)
    _aware(at, "at")
    if warning.state != WarningState.ISSUED:
        raise IllegalTransition(
            f"warning {warning.identifier} is {warning.state}; only an issued one updates"
        )
    old = replace(warning, state=WarningState.SUPERSEDED, ended_at=at)
    new = WarningRecord(
        identifier=identifier,
        sender=warning.sender,
        content=content,
        exercise_id=warning.exercise_id,
        drafted_by=actor.user_id,
        drafted_at=at,
        state=WarningState.ISSUED,
        msg_type=MsgType.UPDATE,
        version=warning.version + 1,
        references=warning.identifier,
        approved_by=actor.user_id,
        approved_at=at,
        target_teams=tuple(sorted(set(teams))),
        target_grid_workers=tuple(sorted(set(grid_workers))),
    )
    return old, new


def cancel(warning: WarningRecord, *, actor: Actor, at: datetime, reason: str) -> WarningRecord:
    """解除 an issued warning (commander), or discard a draft (whoever may draft)."""
    _aware(at, "at")
    if warning.state == WarningState.DRAFT:
        authorise(actor, "draft", warning.exercise_id)  # whoever may draft may discard one
    elif warning.state == WarningState.ISSUED:
        authorise(actor, "cancel", warning.exercise_id)
    else:
        raise IllegalTransition(f"warning {warning.identifier} is {warning.state} already")
    why = _text(reason, "reason", MAX_REASON)
    return replace(
        warning,
        state=WarningState.CANCELLED,
        msg_type=MsgType.CANCEL if warning.state == WarningState.ISSUED else warning.msg_type,
        cancelled_by=actor.user_id,
        cancelled_at=at,
        cancel_reason=why,
    )


def expire(warning: WarningRecord, *, at: datetime) -> WarningRecord:
    """过期: an issued warning past its expiry (the service's worker); drafts past their
    expiry are left to be discarded."""
    _aware(at, "at")
    if warning.state != WarningState.ISSUED or at < warning.content.expires:
        raise IllegalTransition(f"warning {warning.identifier} is not due to expire")
    return replace(warning, state=WarningState.EXPIRED, ended_at=at)


# --- re-targeting: a team that moves into the area after issue -----------------------------


def moved_in(
    warnings: Iterable[WarningRecord],
    team_id: str,
    lat: float,
    lon: float,
    *,
    cell: str | None,
    adcode: int | None,
    now: datetime,
) -> list[WarningRecord]:
    """The live, issued, unexpired warnings whose area holds a team's new place and that
    were not sent to it: it gets them now (a drill's warnings go to its virtual crews,
    never to a live team's position)."""
    _aware(now, "now")
    return [
        w
        for w in warnings
        if w.exercise_id is None
        and w.state == WarningState.ISSUED
        and now < w.content.expires
        and team_id not in w.target_teams
        and w.content.area.contains(lat, lon, cell=cell, adcode=adcode)
    ]


def add_team(warning: WarningRecord, team_id: str, *, now: datetime) -> WarningRecord:
    """The warning with one more team among its recipients (it moved into the area)."""
    _aware(now, "now")
    if warning.state != WarningState.ISSUED or now >= warning.content.expires:
        raise IllegalTransition(f"warning {warning.identifier} is not in force: nobody new is told")
    if team_id in warning.target_teams:
        return warning
    return replace(warning, target_teams=(*warning.target_teams, team_id))
