"""救援队伍 — rescue team rosters: teams, members and their certificates, shifts.

A team is on duty at ``now`` when one of its shifts covers ``now`` (start inclusive,
end exclusive) and its status is not ``off_duty``. Shifts are absolute, timezone-aware
intervals, so a night shift 20:00–08:00 simply ends the next day; :func:`daily_shifts`
expands a daily pattern (which may cross midnight) into such intervals. A team with no
shift covering ``now`` is not on duty — a 24-hour fire station has 24-hour shifts.

Team statuses are the MQTT contract's (``wuwang.contract.TeamStatus``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from command.domain.vocabulary import TeamType
from wuwang.contract import TeamStatus as TeamStatus  # re-exported: the roster speaks the contract


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lon: float
    at: datetime  # when the fix was taken (device time, or receipt time)

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"position out of range: {self.lat}, {self.lon}")
        _aware("position time", self.at)


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    type: TeamType
    base_lat: float
    base_lon: float
    size: int
    status: TeamStatus = TeamStatus.AVAILABLE
    position: Position | None = None
    district_adcode: int | None = None

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"team {self.id}: size must be positive")


@dataclass(frozen=True, slots=True)
class Certificate:
    name: str  # e.g. 危险化学品救援, 急救员, 潜水员, 特种车辆驾驶
    expires_on: date | None = None  # None: does not expire


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str
    team_id: str
    skills: frozenset[str] = frozenset()
    certificates: tuple[Certificate, ...] = ()


@dataclass(frozen=True, slots=True)
class Shift:
    team_id: str
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        _aware("shift start", self.starts_at)
        _aware("shift end", self.ends_at)
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"shift of {self.team_id} ends ({self.ends_at}) before it starts ({self.starts_at})"
            )

    def covers(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def daily_shifts(team_id: str, start: time, end: time, first_day: date, days: int, tz: tzinfo) -> list[Shift]:
    """One shift per day from ``first_day`` for ``days`` days, from ``start`` to ``end``
    local time; when ``end`` is not after ``start`` the shift ends the next day
    (20:00–08:00, or 08:00–08:00 for a 24-hour shift)."""
    out = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        begins = datetime.combine(day, start, tz)
        ends = datetime.combine(day if end > start else day + timedelta(days=1), end, tz)
        out.append(Shift(team_id, begins, ends))
    return out


class DutyRoster:
    """Shifts indexed for fast "on duty now?" questions: overlapping shifts of a team are
    merged, then each question is a binary search. Build once, ask often (the
    recommender asks for every candidate)."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, shifts: Iterable[Shift]) -> None:
        by_team: dict[str, list[tuple[datetime, datetime]]] = {}
        for s in shifts:
            by_team.setdefault(s.team_id, []).append((s.starts_at, s.ends_at))
        self._starts: dict[str, list[datetime]] = {}
        self._ends: dict[str, list[datetime]] = {}
        for team_id, spans in by_team.items():
            spans.sort()
            merged: list[list[datetime]] = []
            for a, b in spans:
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            self._starts[team_id] = [m[0] for m in merged]
            self._ends[team_id] = [m[1] for m in merged]

    def duty_until(self, team_id: str, now: datetime) -> datetime | None:
        """End of the (merged) shift covering ``now``, or None when off shift."""
        starts = self._starts.get(team_id)
        if not starts:
            return None
        i = bisect.bisect_right(starts, now) - 1
        if i >= 0 and now < self._ends[team_id][i]:
            return self._ends[team_id][i]
        return None

    def on_shift(self, team_id: str, now: datetime) -> bool:
        return self.duty_until(team_id, now) is not None


def on_duty(team: Team, shifts: Iterable[Shift] | DutyRoster, now: datetime) -> bool:
    """On duty: a shift of the team covers ``now`` and the team is not ``off_duty``.
    (Busy teams — dispatched, on scene — are on duty but not available.)"""
    _aware("now", now)
    if team.status is TeamStatus.OFF_DUTY:
        return False
    if isinstance(shifts, DutyRoster):
        return shifts.on_shift(team.id, now)
    return any(s.team_id == team.id and s.covers(now) for s in shifts)


@dataclass(frozen=True, slots=True)
class CertificateAlert:
    member_id: str
    member_name: str
    team_id: str
    certificate: str
    expires_on: date
    expired: bool  # False: expires within the warning window

    def describe(self) -> str:
        state = "expired on" if self.expired else "expires on"
        return (
            f"{self.member_name} ({self.team_id}): certificate {self.certificate} {state} {self.expires_on}"
        )


def expired_certificates(
    members: Iterable[Member], today: date, warn_within_days: int = 0
) -> list[CertificateAlert]:
    """Certificates past their expiry (usable through the expiry day), and with
    ``warn_within_days`` > 0 also those expiring within that many days. By date."""
    horizon = today + timedelta(days=warn_within_days)
    out = [
        CertificateAlert(m.id, m.name, m.team_id, c.name, c.expires_on, c.expires_on < today)
        for m in members
        for c in m.certificates
        if c.expires_on is not None
        and (c.expires_on < today or (warn_within_days > 0 and c.expires_on <= horizon))
    ]
    out.sort(key=lambda a: (a.expires_on, a.team_id, a.member_id, a.certificate))
    return out


def team_skills(members: Iterable[Member], today: date) -> dict[str, dict[str, int]]:
    """Per team, how many members hold each skill or currently valid certificate
    (for the dispatch panel: "3 divers, 12 first-aiders")."""
    out: dict[str, dict[str, int]] = {}
    for m in members:
        counts = out.setdefault(m.team_id, {})
        names = set(m.skills) | {
            c.name for c in m.certificates if c.expires_on is None or c.expires_on >= today
        }
        for n in names:
            counts[n] = counts.get(n, 0) + 1
    return out
