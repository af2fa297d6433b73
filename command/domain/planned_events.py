"""大型活动登记 — the registry of planned events (concerts, matches, festivals), pure.

Triage uses a running planned event as a **risk context** (``risk_planned_event`` in
command/triage/rules.yaml): a crowd, fight, fall, smoke … alert within the event's
radius while it runs opens an incident at once, with the event named in the reason.
This module holds the registry's rules: what a valid event is, who may enter and
cancel one (the same staff as the alarm inbox: operators, commanders, admins; planners
for drill events only; field users never), cancelling, and the events triage sees.

No I/O, no clock: the caller passes ``at``. See docs/triage.md §9.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from command.domain import policy
from command.domain.incidents import Actor, Forbidden, IllegalTransition, InvalidCommand
from command.domain.policy import Action as PolicyAction
from command.domain.triage import PlannedEvent

#: An event's radius: a building's forecourt at least, a district's festival at most.
MIN_RADIUS_M = 20.0
MAX_RADIUS_M = 5000.0
#: The longest event (a week-long festival); longer is a typo in a date.
MAX_DURATION = timedelta(days=14)
MAX_NAME = 100
MAX_PLACE = 200
MAX_REASON = 500


Action = Literal["create", "cancel", "read"]


class EventState(StrEnum):
    SCHEDULED = "scheduled"  # 已登记
    CANCELLED = "cancelled"  # 已取消 (kept, with who and why)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One registered planned event. ``exercise_id`` set: an event of that drill only."""

    event_id: str
    name: str
    place: str
    lat: float
    lon: float
    radius_m: float
    starts_at: datetime
    ends_at: datetime
    exercise_id: str | None
    created_by: str
    created_at: datetime
    state: EventState = EventState.SCHEDULED
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    def phase(self, now: datetime) -> Literal["upcoming", "running", "ended", "cancelled"]:
        """Where the event stands at ``now`` (for the list)."""
        if self.state == EventState.CANCELLED:
            return "cancelled"
        if now < self.starts_at:
            return "upcoming"
        return "running" if now <= self.ends_at else "ended"


def authorise(actor: Actor, action: Action, exercise_id: str | None) -> None:
    """The one rule of who may do what with planned events. Raises :class:`Forbidden`."""
    role, drill = actor.role, exercise_id is not None
    asked = PolicyAction(f"planned_event.{action}")
    if action == "read":
        if policy.allowed(role, asked, drill=drill):
            return
        raise Forbidden(f"role {role} may not read planned events")
    if policy.allowed(role, asked, drill=drill):
        return
    if not drill and policy.allowed(role, asked, drill=True):
        raise Forbidden(f"a planner may {action} only drill events; this event is live")
    raise Forbidden(f"role {role} may not {action} planned events")


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise InvalidCommand(f"{name} must carry a time zone (e.g. 2026-12-07T19:00:00+08:00)")


def _text(value: str, name: str, limit: int, *, required: bool = True) -> str:
    text = " ".join(value.split())
    if required and not text:
        raise InvalidCommand(f"{name} must not be empty")
    if len(text) > limit:
        raise InvalidCommand(f"{name} is {len(text)} characters; at most {limit}")
    return text


def register(
    *,
    event_id: str,
    name: str,
    place: str,
    lat: float,
    lon: float,
    radius_m: float,
    starts_at: datetime,
    ends_at: datetime,
    exercise_id: str | None,
    actor: Actor,
    at: datetime,
) -> EventRecord:
    """A new event, checked: a name, a point on the map, a radius within
    [:data:`MIN_RADIUS_M`, :data:`MAX_RADIUS_M`], an end after its start and after
    ``at`` (an event already over protects nothing), and at most :data:`MAX_DURATION`."""
    authorise(actor, "create", exercise_id)
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    _aware(at, "at")
    clean_name = _text(name, "name", MAX_NAME)
    clean_place = _text(place, "place", MAX_PLACE, required=False)
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidCommand(f"({lat}, {lon}) is not a point on the map")
    if not (math.isfinite(radius_m) and MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M):
        raise InvalidCommand(f"radius_m {radius_m} is outside {MIN_RADIUS_M:.0f}–{MAX_RADIUS_M:.0f} m")
    if ends_at <= starts_at:
        raise InvalidCommand("ends_at must be after starts_at")
    if ends_at - starts_at > MAX_DURATION:
        raise InvalidCommand(f"an event lasts at most {MAX_DURATION.days} days")
    if ends_at <= at:
        raise InvalidCommand("the event is already over: ends_at is in the past")
    return EventRecord(
        event_id=event_id,
        name=clean_name,
        place=clean_place,
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        starts_at=starts_at,
        ends_at=ends_at,
        exercise_id=exercise_id,
        created_by=actor.user_id,
        created_at=at,
    )


def cancel(event: EventRecord, *, actor: Actor, at: datetime, reason: str) -> EventRecord:
    """取消: the event stays in the registry, no longer a risk context; a reason is required."""
    authorise(actor, "cancel", event.exercise_id)
    _aware(at, "at")
    why = _text(reason, "reason", MAX_REASON)
    if event.state == EventState.CANCELLED:
        raise IllegalTransition(
            f"planned event {event.event_id} was cancelled by {event.cancelled_by} already"
        )
    return replace(
        event, state=EventState.CANCELLED, cancelled_by=actor.user_id, cancelled_at=at, cancel_reason=why
    )


def risk_context(events: Iterable[EventRecord]) -> tuple[PlannedEvent, ...]:
    """The events triage may promote by: every scheduled one (triage checks time and place)."""
    return tuple(
        PlannedEvent(e.event_id, e.name, e.lat, e.lon, e.radius_m, e.starts_at, e.ends_at, e.exercise_id)
        for e in events
        if e.state == EventState.SCHEDULED
    )
