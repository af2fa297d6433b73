"""Dispatch recommendation: which teams and which warehouses, and why.

Teams: for a requirement (team type × count), every team of that type is either a
*candidate* — available, on shift, with a fresh position — ranked by estimated travel
time, or *skipped* with the first reason that rules it out (already assigned, busy,
off duty, not on shift, no position, position stale). Travel time comes from a
:class:`TravelTimeModel`; the default :class:`GreatCircleModel` takes the great-circle
distance, multiplies it by a road factor (1.3) and divides by a typical speed for the
team type. A road graph, when one is configured, is another implementation of the same
protocol (the seam is here; no graph ships with the console yet).

Warehouses: for an item and quantity, warehouses holding usable stock rank by whether
they cover the whole quantity (covering first), then by ETA (call-up lead time + travel;
with equal lead times that is distance order); production-capacity reserves rank after
stock, by the time to make and deliver the quantity. A greedy supply plan follows.

Speed: one pass over the teams computing a distance per eligible team, then
``heapq.nsmallest`` on plain tuples, and explanations built only for the teams returned
— O(n log k). 1,000 teams rank in about a millisecond in CPython.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from command.domain.plans import Requirements, TeamRequirement
from command.domain.reserve import ProductionCapacity, StockLot, Warehouse, WarehouseKind
from command.domain.rosters import DutyRoster, Shift, Team
from command.domain.vocabulary import TeamType
from wuwang.contract import TeamStatus
from wuwang.geo import haversine_m

SUPPLY_TRUCK = "supply_truck"

#: Typical urban speeds (km/h) by team type, and for supply trucks.
DEFAULT_SPEEDS_KMH: Mapping[str, float] = MappingProxyType(
    {
        TeamType.FIRE.value: 40.0,
        TeamType.MEDICAL.value: 45.0,
        TeamType.POLICE.value: 50.0,
        TeamType.HAZMAT.value: 35.0,
        TeamType.WATER_RESCUE.value: 35.0,
        TeamType.COMPREHENSIVE.value: 35.0,
        SUPPLY_TRUCK: 40.0,
    }
)


class TravelTimeModel(Protocol):
    """Route distance and travel time between two WGS-84 points for a kind of vehicle
    (a team type value or ``supply_truck``). Must be fast: called once per candidate."""

    def travel(
        self, from_lat: float, from_lon: float, to_lat: float, to_lon: float, mode: str
    ) -> tuple[float, float]:
        """(route distance in metres, travel time in seconds)."""
        ...

    def explain(self, straight_m: float, route_m: float, mode: str) -> str:
        """One line saying how the estimate was made."""
        ...


class GreatCircleModel:
    """Great-circle distance × road factor at a typical speed per vehicle kind."""

    __slots__ = ("_mps", "road_factor", "speeds_kmh")

    def __init__(
        self, road_factor: float = 1.3, speeds_kmh: Mapping[str, float] = DEFAULT_SPEEDS_KMH
    ) -> None:
        if road_factor < 1.0:
            raise ValueError("road factor below 1 would make roads shorter than the straight line")
        if any(v <= 0 for v in speeds_kmh.values()):
            raise ValueError("speeds must be positive")
        self.road_factor = road_factor
        self.speeds_kmh = dict(speeds_kmh)
        self._mps = {k: v / 3.6 for k, v in speeds_kmh.items()}

    def travel(
        self, from_lat: float, from_lon: float, to_lat: float, to_lon: float, mode: str
    ) -> tuple[float, float]:
        route = haversine_m(from_lat, from_lon, to_lat, to_lon) * self.road_factor
        return route, route / self._mps[mode]

    def explain(self, straight_m: float, route_m: float, mode: str) -> str:
        return (
            f"{straight_m / 1000:.1f} km straight line × road factor {self.road_factor:g} ≈ "
            f"{route_m / 1000:.1f} km at {self.speeds_kmh[mode]:g} km/h"
        )


@dataclass(frozen=True, slots=True)
class RecommendConfig:
    road_factor: float = 1.3
    speeds_kmh: Mapping[str, float] = field(default_factory=lambda: DEFAULT_SPEEDS_KMH)
    #: A position older than this is stale: the team is skipped (or, with
    #: ``stale_fallback_to_base``, ranked from its home base and flagged).
    stale_after: timedelta = timedelta(minutes=5)
    stale_fallback_to_base: bool = False
    #: At most this many candidates are returned (never fewer than the count required).
    limit: int = 20
    #: A road-graph model; None uses GreatCircleModel(road_factor, speeds_kmh).
    travel_model: TravelTimeModel | None = None

    def model(self) -> TravelTimeModel:
        return self.travel_model or _cached_gc(self.road_factor, self.speeds_kmh)


_GC_CACHE: dict[tuple[float, tuple[tuple[str, float], ...]], GreatCircleModel] = {}


def _cached_gc(road_factor: float, speeds: Mapping[str, float]) -> GreatCircleModel:
    key = (road_factor, tuple(sorted(speeds.items())))
    model = _GC_CACHE.get(key)
    if model is None:
        model = _GC_CACHE[key] = GreatCircleModel(road_factor, speeds)
    return model


DEFAULT_CONFIG = RecommendConfig()


def format_duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# --- teams ---------------------------------------------------------------------------


class SkipReason(StrEnum):
    EXCLUDED = "excluded"  # already assigned to this incident
    BUSY = "busy"  # status other than available
    OFF_DUTY = "off_duty"  # status off_duty
    NOT_ON_SHIFT = "not_on_shift"
    NO_POSITION = "no_position"
    STALE_POSITION = "stale_position"


@dataclass(frozen=True, slots=True)
class SkippedTeam:
    team_id: str
    reason: SkipReason
    detail: str


@dataclass(frozen=True, slots=True)
class TeamCandidate:
    team_id: str
    rank: int  # 1 = best
    distance_m: float  # great-circle, from where the team is (or its base)
    route_m: float  # as the travel model estimates it
    eta_s: float
    from_base: bool  # ETA computed from the home base (position stale or missing)
    position_age_s: float | None
    on_shift_until: datetime | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TeamRanking:
    type: TeamType
    count: int
    candidates: tuple[TeamCandidate, ...]  # best first, at most config.limit (≥ count)
    skipped: tuple[SkippedTeam, ...]
    eligible: int  # candidates before the limit was applied

    @property
    def suggested(self) -> tuple[TeamCandidate, ...]:
        return self.candidates[: self.count]

    @property
    def short(self) -> int:
        """How many of the required teams no eligible team can fill."""
        return max(0, self.count - self.eligible)


def _as_roster(shifts: DutyRoster | Iterable[Shift]) -> DutyRoster:
    return shifts if isinstance(shifts, DutyRoster) else DutyRoster(shifts)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def recommend_teams(
    requirement: TeamRequirement | tuple[TeamType, int],
    teams: Iterable[Team],
    shifts: DutyRoster | Iterable[Shift],
    now: datetime,
    location: tuple[float, float],
    config: RecommendConfig = DEFAULT_CONFIG,
    exclude: Collection[str] = (),
) -> TeamRanking:
    """Rank the teams of the required type for an incident at ``location`` (lat, lon).

    ``shifts`` may be a prebuilt :class:`DutyRoster` (what the service should pass: built
    once per roster change) or plain shifts. ``exclude``: team ids already assigned.
    Candidates are sorted by ETA, then distance, then team id.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    ttype, count = (
        (requirement.type, requirement.count) if isinstance(requirement, TeamRequirement) else requirement
    )
    ttype = TeamType(ttype)
    roster = _as_roster(shifts)
    model = config.model()
    mode = ttype.value
    lat, lon = location
    stale_s = config.stale_after.total_seconds()
    skipped: list[SkippedTeam] = []
    scored: list[tuple[float, float, str, Team, bool, float | None]] = []
    available, off_duty = TeamStatus.AVAILABLE, TeamStatus.OFF_DUTY  # no enum lookups in the loop
    on_shift = roster.on_shift
    travel = model.travel
    for team in teams:
        if team.type is not ttype:
            continue
        tid = team.id
        if tid in exclude:
            skipped.append(SkippedTeam(tid, SkipReason.EXCLUDED, "already assigned to this incident"))
            continue
        status = team.status
        if status is not available:
            if status is off_duty:
                skipped.append(SkippedTeam(tid, SkipReason.OFF_DUTY, "status off_duty"))
            else:
                skipped.append(SkippedTeam(tid, SkipReason.BUSY, f"status {status.value}"))
            continue
        if not on_shift(tid, now):
            skipped.append(SkippedTeam(tid, SkipReason.NOT_ON_SHIFT, "not on duty (no shift covers now)"))
            continue
        pos = team.position
        age: float | None = None
        from_base = False
        if pos is None:
            if not config.stale_fallback_to_base:
                skipped.append(SkippedTeam(tid, SkipReason.NO_POSITION, "no position reported"))
                continue
            from_base = True
        else:
            age = max(0.0, (now - pos.at).total_seconds())
            if age > stale_s:
                if not config.stale_fallback_to_base:
                    skipped.append(
                        SkippedTeam(
                            tid, SkipReason.STALE_POSITION, f"position stale (last {_minutes(age)} ago)"
                        )
                    )
                    continue
                from_base = True
        if from_base:
            route, eta = travel(team.base_lat, team.base_lon, lat, lon, mode)
        else:
            assert pos is not None
            route, eta = travel(pos.lat, pos.lon, lat, lon, mode)
        scored.append((eta, route, tid, team, from_base, age))

    limit = max(config.limit, count)
    best = heapq.nsmallest(limit, scored, key=lambda s: (s[0], s[1], s[2]))
    candidates = []
    for rank, (eta, route, tid, team, from_base, age) in enumerate(best, start=1):
        src_lat, src_lon = (
            (team.base_lat, team.base_lon)
            if from_base or team.position is None
            else (team.position.lat, team.position.lon)
        )
        straight = haversine_m(src_lat, src_lon, lat, lon)
        until = roster.duty_until(tid, now)
        reasons = [model.explain(straight, route, mode), f"ETA {format_duration(eta)}"]
        if from_base:
            why = "no position" if age is None else f"position stale ({_minutes(age)} old)"
            reasons.append(f"from home base: {why}")
        else:
            assert age is not None
            reasons.append(f"position {_minutes(age)} old")
        if until is not None:
            reasons.append(f"on shift until {until.astimezone(now.tzinfo):%H:%M}")
        candidates.append(
            TeamCandidate(tid, rank, straight, route, eta, from_base, age, until, tuple(reasons))
        )
    return TeamRanking(ttype, count, tuple(candidates), tuple(skipped), len(scored))


def recommend_for_requirements(
    requirements: Requirements,
    teams: Iterable[Team],
    shifts: DutyRoster | Iterable[Shift],
    now: datetime,
    location: tuple[float, float],
    config: RecommendConfig = DEFAULT_CONFIG,
    exclude: Collection[str] = (),
) -> dict[TeamType, TeamRanking]:
    """One ranking per team requirement of an activation (teams grouped by type once)."""
    roster = _as_roster(shifts)
    by_type: dict[TeamType, list[Team]] = {}
    for t in teams:
        by_type.setdefault(t.type, []).append(t)
    return {
        r.type: recommend_teams(r, by_type.get(r.type, ()), roster, now, location, config, exclude)
        for r in requirements.teams
    }


# --- warehouses ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WarehouseCandidate:
    warehouse_id: str
    kind: WarehouseKind
    rank: int
    available: int | None  # usable stock; None for production capacity (made to order)
    covers: bool  # can supply the whole quantity alone
    distance_m: float
    route_m: float
    eta_s: float  # lead time (+ production time) + travel
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SupplyPick:
    warehouse_id: str
    quantity: int
    eta_s: float


@dataclass(frozen=True, slots=True)
class WarehouseRanking:
    item_code: str
    quantity: int
    candidates: tuple[WarehouseCandidate, ...]
    #: Greedy plan: the best covering warehouse, else partial stock by ETA, then production.
    plan: tuple[SupplyPick, ...] = field(default=())
    short: int = 0  # what even the plan cannot supply
    skipped: tuple[tuple[str, str], ...] = ()  # (warehouse id, why) for those holding the item unusably


def recommend_warehouses(
    item_code: str,
    quantity: int,
    lots: Iterable[StockLot],
    warehouses: Iterable[Warehouse],
    location: tuple[float, float],
    today: date,
    capacities: Iterable[ProductionCapacity] = (),
    config: RecommendConfig = DEFAULT_CONFIG,
) -> WarehouseRanking:
    """Rank warehouses for ``quantity`` of ``item_code`` delivered to ``location``.

    Order: stock that covers the whole quantity (by ETA), then stock that covers part
    (by ETA), then production capacity (by time to make and deliver it all). Only
    unexpired, unreserved stock counts.
    """
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    available: dict[str, int] = {}
    unusable: dict[str, list[str]] = {}
    for lot in lots:
        if lot.item_code != item_code or lot.quantity == 0:
            continue
        if lot.expired(today):
            unusable.setdefault(lot.warehouse_id, []).append("expired")
        elif lot.available == 0:
            unusable.setdefault(lot.warehouse_id, []).append("reserved")
        else:
            available[lot.warehouse_id] = available.get(lot.warehouse_id, 0) + lot.available
    caps = {c.warehouse_id: c for c in capacities if c.item_code == item_code and c.per_day > 0}
    model = config.model()
    lat, lon = location
    scored: list[tuple[int, float, float, str, Warehouse, int | None]] = []
    skipped: list[tuple[str, str]] = []
    for wh in warehouses:
        if wh.kind is WarehouseKind.PRODUCTION_CAPACITY:
            cap = caps.get(wh.id)
            if cap is None:
                continue
            route, travel = model.travel(wh.lat, wh.lon, lat, lon, SUPPLY_TRUCK)
            scored.append((2, cap.seconds_to_produce(quantity) + travel, route, wh.id, wh, None))
            continue
        stock = available.get(wh.id, 0)
        if stock == 0:
            if wh.id in unusable:
                kinds = sorted(set(unusable[wh.id]))
                skipped.append(
                    (
                        wh.id,
                        "only "
                        + " or ".join("expired" if k == "expired" else "fully reserved" for k in kinds)
                        + " stock",
                    )
                )
            continue
        route, travel = model.travel(wh.lat, wh.lon, lat, lon, SUPPLY_TRUCK)
        scored.append((0 if stock >= quantity else 1, wh.lead_time_s + travel, route, wh.id, wh, stock))
    scored.sort(key=lambda s: (s[0], s[1], s[2], s[3]))

    candidates: list[WarehouseCandidate] = []
    for rank, (group, eta, route, wid, wh, have) in enumerate(scored, start=1):
        straight = haversine_m(wh.lat, wh.lon, lat, lon)
        reasons = [model.explain(straight, route, SUPPLY_TRUCK)]
        if group == 2:
            cap = caps[wid]
            reasons.append(
                f"{wh.kind.label_zh}: {cap.per_day}/day after {format_duration(cap.lead_time_s)} lead time; "
                f"{quantity} ready in {format_duration(cap.seconds_to_produce(quantity))}"
            )
        else:
            assert have is not None
            reasons.append(
                f"{wh.kind.label_zh}: {have} available, "
                + ("covers all" if group == 0 else f"covers {have} of {quantity}")
            )
            if wh.lead_time_s:
                reasons.append(f"call-up lead time {format_duration(wh.lead_time_s)}")
        reasons.append(f"ETA {format_duration(eta)}")
        candidates.append(
            WarehouseCandidate(wid, wh.kind, rank, have, group != 1, straight, route, eta, tuple(reasons))
        )

    plan: list[SupplyPick] = []
    left = quantity
    if candidates and candidates[0].covers and candidates[0].available is not None:
        plan.append(SupplyPick(candidates[0].warehouse_id, quantity, candidates[0].eta_s))
        left = 0
    else:
        for c in candidates:
            if left == 0:
                break
            if c.available is not None:
                take = min(left, c.available)
                plan.append(SupplyPick(c.warehouse_id, take, c.eta_s))
                left -= take
            else:
                cap = caps[c.warehouse_id]
                travel = c.eta_s - cap.seconds_to_produce(quantity)
                plan.append(SupplyPick(c.warehouse_id, left, cap.seconds_to_produce(left) + travel))
                left = 0
    return WarehouseRanking(item_code, quantity, tuple(candidates), tuple(plan), left, tuple(skipped))
