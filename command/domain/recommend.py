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
— O(n log k). Warehouses likewise: the ranking is plain tuples, and only the best
``config.limit`` (plus any the supply plan needs beyond them) become candidates with
explanations. :class:`StockIndex` groups the lots by item once per request, and
:func:`recommend_supplies` ranks every supply item of a request sharing it and one
drive-time computation per warehouse.

Reasons are :class:`~command.domain.reasons.Reason` values — a stable code and its
parameters — never sentences: whoever shows them renders them in the reader's language
(:func:`command.domain.reasons.render` for the API, the console's own catalogues), so
nothing here formats text.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from types import MappingProxyType
from typing import Protocol

from command.domain.plans import Requirements, TeamRequirement
from command.domain.reasons import Reason, duration
from command.domain.reserve import ProductionCapacity, StockLot, Warehouse, WarehouseKind
from command.domain.rosters import DutyRoster, Shift, Team
from command.domain.vocabulary import TeamType
from wuwang.contract import TeamStatus
from wuwang.geo import haversine_m
from wuwang.travel import DEFAULT_SPEEDS_KMH, SUPPLY_TRUCK


class TravelTimeModel(Protocol):
    """Route distance and travel time between two WGS-84 points for a kind of vehicle
    (a team type value or ``supply_truck``). Must be fast: called once per candidate."""

    def travel(
        self, from_lat: float, from_lon: float, to_lat: float, to_lon: float, mode: str
    ) -> tuple[float, float]:
        """(route distance in metres, travel time in seconds)."""
        ...

    def explain(self, straight_m: float, route_m: float, mode: str) -> Reason:
        """How the estimate was made, as a reason (a code of
        :data:`command.domain.reasons.CATALOGUE`, e.g. ``travel.great_circle``)."""
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

    def explain(self, straight_m: float, route_m: float, mode: str) -> Reason:
        return Reason(
            "travel.great_circle",
            {
                "straight_km": straight_m / 1000,
                "road_factor": self.road_factor,
                "route_km": route_m / 1000,
                "speed_kmh": self.speeds_kmh[mode],
            },
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
    """A duration in English (``6 min 14 s``); :func:`command.domain.reasons.duration`
    says it in either language."""
    return duration(seconds, "en")


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
    detail: Reason  # code team.skipped.<reason>, with what it needs (status, age_s)


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
    reasons: tuple[Reason, ...]


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


#: Skip details of a status, made once: most teams skipped on a call are busy or off
#: duty, and building a detail per team per call was measurable.
_STATUS_SKIPS: Mapping[TeamStatus, tuple[SkipReason, Reason]] = MappingProxyType(
    {
        s: (SkipReason.OFF_DUTY, Reason("team.skipped.off_duty"))
        if s is TeamStatus.OFF_DUTY
        else (SkipReason.BUSY, Reason("team.skipped.busy", MappingProxyType({"status": s.value})))
        for s in TeamStatus
        if s is not TeamStatus.AVAILABLE
    }
)
_EXCLUDED = Reason("team.skipped.excluded")
_NOT_ON_SHIFT = Reason("team.skipped.not_on_shift")
_NO_POSITION = Reason("team.skipped.no_position")
_FROM_BASE_NO_POSITION = Reason("team.from_base.no_position")


def _as_roster(shifts: DutyRoster | Iterable[Shift]) -> DutyRoster:
    return shifts if isinstance(shifts, DutyRoster) else DutyRoster(shifts)


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
    available = TeamStatus.AVAILABLE  # no enum lookups in the loop
    status_skips = _STATUS_SKIPS
    on_shift = roster.on_shift
    travel = model.travel
    for team in teams:
        if team.type is not ttype:
            continue
        tid = team.id
        if tid in exclude:
            skipped.append(SkippedTeam(tid, SkipReason.EXCLUDED, _EXCLUDED))
            continue
        status = team.status
        if status is not available:
            reason, detail = status_skips[status]
            skipped.append(SkippedTeam(tid, reason, detail))
            continue
        if not on_shift(tid, now):
            skipped.append(SkippedTeam(tid, SkipReason.NOT_ON_SHIFT, _NOT_ON_SHIFT))
            continue
        pos = team.position
        age: float | None = None
        from_base = False
        if pos is None:
            if not config.stale_fallback_to_base:
                skipped.append(SkippedTeam(tid, SkipReason.NO_POSITION, _NO_POSITION))
                continue
            from_base = True
        else:
            age = max(0.0, (now - pos.at).total_seconds())
            if age > stale_s:
                if not config.stale_fallback_to_base:
                    stale = Reason("team.skipped.stale_position", {"age_s": age})
                    skipped.append(SkippedTeam(tid, SkipReason.STALE_POSITION, stale))
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
        reasons = [model.explain(straight, route, mode), Reason("eta", {"eta_s": eta})]
        if from_base:
            reasons.append(
                _FROM_BASE_NO_POSITION
                if age is None
                else Reason("team.from_base.stale_position", {"age_s": age})
            )
        else:
            assert age is not None
            reasons.append(Reason("team.position_age", {"age_s": age}))
        if until is not None:
            reasons.append(Reason("team.on_shift_until", {"until": f"{until.astimezone(now.tzinfo):%H:%M}"}))
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
    reasons: tuple[Reason, ...]


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
    skipped: tuple[tuple[str, Reason], ...] = ()  # (warehouse id, why) for those holding the item unusably
    eligible: int = 0  # warehouses ranked before the limit was applied


@dataclass(frozen=True, slots=True)
class ItemStock:
    """Usable stock of one item: units per warehouse, and for warehouses holding the item
    only unusably (expired or fully reserved lots) why, as the ranking lists them."""

    available: Mapping[str, int]
    unusable: Mapping[str, Reason]


_NO_STOCK = ItemStock(MappingProxyType({}), MappingProxyType({}))

#: Why a warehouse holding an item cannot supply it, by the kinds of its unusable lots.
_UNUSABLE: Mapping[frozenset[str], Reason] = MappingProxyType(
    {
        frozenset({"expired"}): Reason("warehouse.skipped.expired"),
        frozenset({"reserved"}): Reason("warehouse.skipped.reserved"),
        frozenset({"expired", "reserved"}): Reason("warehouse.skipped.expired_or_reserved"),
    }
)


class StockIndex:
    """Lots grouped by item for one day, built once per request: each supply item's
    ranking then reads its own totals instead of scanning every lot again."""

    __slots__ = ("_items", "today")

    def __init__(self, lots: Iterable[StockLot], today: date) -> None:
        self.today = today
        available: dict[str, dict[str, int]] = {}
        unusable: dict[str, dict[str, set[str]]] = {}
        for lot in lots:
            if lot.quantity == 0:
                continue
            if lot.expired(today):
                unusable.setdefault(lot.item_code, {}).setdefault(lot.warehouse_id, set()).add("expired")
            elif lot.quantity == lot.reserved:
                unusable.setdefault(lot.item_code, {}).setdefault(lot.warehouse_id, set()).add("reserved")
            else:
                per_wh = available.setdefault(lot.item_code, {})
                per_wh[lot.warehouse_id] = per_wh.get(lot.warehouse_id, 0) + lot.quantity - lot.reserved
        self._items: dict[str, ItemStock] = {}
        for item in available.keys() | unusable.keys():
            why = {wid: _UNUSABLE[frozenset(kinds)] for wid, kinds in unusable.get(item, {}).items()}
            self._items[item] = ItemStock(available.get(item, {}), why)

    def item(self, item_code: str) -> ItemStock:
        return self._items.get(item_code, _NO_STOCK)


#: (group, eta, route, warehouse id, warehouse, available): group 0 covers the whole
#: quantity, 1 covers part, 2 is production capacity (available None).
_Scored = tuple[int, float, float, str, Warehouse, int | None]
_RANK_KEY = itemgetter(0, 1, 2, 3)


def _greedy_plan(
    ranked: Sequence[_Scored], quantity: int, caps: Mapping[str, ProductionCapacity]
) -> tuple[list[SupplyPick], int, int]:
    """(picks, what is left short, how many of ``ranked`` the plan looked at)."""
    if ranked and ranked[0][0] == 0:  # the best covering warehouse alone
        return [SupplyPick(ranked[0][3], quantity, ranked[0][1])], 0, 1
    plan: list[SupplyPick] = []
    left = quantity
    used = 0
    for _group, eta, _route, wid, _wh, have in ranked:
        if left == 0:
            break
        used += 1
        if have is not None:
            take = min(left, have)
            plan.append(SupplyPick(wid, take, eta))
            left -= take
        else:
            cap = caps[wid]
            travel = eta - cap.seconds_to_produce(quantity)
            plan.append(SupplyPick(wid, left, cap.seconds_to_produce(left) + travel))
            left = 0
    return plan, left, used


def _rank_warehouses(
    item_code: str,
    quantity: int,
    stock: ItemStock,
    warehouses: Iterable[Warehouse],
    location: tuple[float, float],
    caps: Mapping[str, ProductionCapacity],
    config: RecommendConfig,
    drives: dict[str, tuple[float, float]],
) -> WarehouseRanking:
    """One item's ranking. ``drives`` memoises (route, travel) per warehouse id (ids are
    unique: the table's primary key): the drive is the same for every item of a request."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    model = config.model()
    lat, lon = location
    available, unusable = stock.available, stock.unusable

    def drive(wh: Warehouse) -> tuple[float, float]:
        d = drives.get(wh.id)
        if d is None:
            d = drives[wh.id] = model.travel(wh.lat, wh.lon, lat, lon, SUPPLY_TRUCK)
        return d

    scored: list[_Scored] = []
    skipped: list[tuple[str, Reason]] = []
    production = WarehouseKind.PRODUCTION_CAPACITY
    for wh in warehouses:
        if wh.kind is production:
            cap = caps.get(wh.id)
            if cap is None:
                continue
            route, travel = drive(wh)
            scored.append((2, cap.seconds_to_produce(quantity) + travel, route, wh.id, wh, None))
            continue
        units = available.get(wh.id, 0)
        if units == 0:
            why = unusable.get(wh.id)
            if why is not None:
                skipped.append((wh.id, why))
            continue
        route, travel = drive(wh)
        scored.append((0 if units >= quantity else 1, wh.lead_time_s + travel, route, wh.id, wh, units))

    # A few hundred tuples sort in C in microseconds; what is worth saving is the
    # explanations, built below only for the warehouses shown.
    scored.sort(key=_RANK_KEY)
    plan, left, used = _greedy_plan(scored, quantity, caps)
    shown = scored[: max(config.limit, used)]  # every planned warehouse is shown and explained

    candidates: list[WarehouseCandidate] = []
    for rank, (group, eta, route, wid, wh, have) in enumerate(shown, start=1):
        straight = haversine_m(wh.lat, wh.lon, lat, lon)
        reasons = [model.explain(straight, route, SUPPLY_TRUCK)]
        kind = wh.kind.value
        if group == 2:
            cap = caps[wid]
            reasons.append(
                Reason(
                    "warehouse.production",
                    {
                        "kind": kind,
                        "per_day": cap.per_day,
                        "lead_time_s": cap.lead_time_s,
                        "quantity": quantity,
                        "ready_s": cap.seconds_to_produce(quantity),
                    },
                )
            )
        else:
            assert have is not None
            reasons.append(
                Reason("warehouse.stock.covers", {"kind": kind, "available": have})
                if group == 0
                else Reason(
                    "warehouse.stock.partial", {"kind": kind, "available": have, "quantity": quantity}
                )
            )
            if wh.lead_time_s:
                reasons.append(Reason("warehouse.lead_time", {"lead_time_s": wh.lead_time_s}))
        reasons.append(Reason("eta", {"eta_s": eta}))
        candidates.append(
            WarehouseCandidate(wid, wh.kind, rank, have, group != 1, straight, route, eta, tuple(reasons))
        )
    return WarehouseRanking(
        item_code, quantity, tuple(candidates), tuple(plan), left, tuple(skipped), len(scored)
    )


def _capacities_of(item_code: str, capacities: Iterable[ProductionCapacity]) -> dict[str, ProductionCapacity]:
    return {c.warehouse_id: c for c in capacities if c.item_code == item_code and c.per_day > 0}


def _as_index(lots: Iterable[StockLot] | StockIndex, today: date) -> StockIndex:
    if isinstance(lots, StockIndex):
        if lots.today != today:
            raise ValueError(f"stock index is for {lots.today}, not {today}: expiry depends on the day")
        return lots
    return StockIndex(lots, today)


def recommend_warehouses(
    item_code: str,
    quantity: int,
    lots: Iterable[StockLot] | StockIndex,
    warehouses: Iterable[Warehouse],
    location: tuple[float, float],
    today: date,
    capacities: Iterable[ProductionCapacity] = (),
    config: RecommendConfig = DEFAULT_CONFIG,
) -> WarehouseRanking:
    """Rank warehouses for ``quantity`` of ``item_code`` delivered to ``location``.

    Order: stock that covers the whole quantity (by ETA), then stock that covers part
    (by ETA), then production capacity (by time to make and deliver it all). Only
    unexpired, unreserved stock counts. The best ``config.limit`` are returned as
    candidates — more when the greedy plan needs more. ``lots`` may be a prebuilt
    :class:`StockIndex` for ``today``.
    """
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    if not isinstance(lots, StockIndex):  # one item: group only its lots
        lots = StockIndex((lot for lot in lots if lot.item_code == item_code), today)
    stock = _as_index(lots, today).item(item_code)
    caps = _capacities_of(item_code, capacities)
    return _rank_warehouses(item_code, quantity, stock, warehouses, location, caps, config, {})


def recommend_supplies(
    needs: Iterable[tuple[str, int]],
    lots: Iterable[StockLot] | StockIndex,
    warehouses: Iterable[Warehouse],
    location: tuple[float, float],
    today: date,
    capacities: Iterable[ProductionCapacity] = (),
    config: RecommendConfig = DEFAULT_CONFIG,
) -> list[WarehouseRanking]:
    """:func:`recommend_warehouses` for every (item, quantity) of a request, in order:
    the lots are grouped by item once and each warehouse's drive computed once."""
    needs = list(needs)
    if any(q <= 0 for _, q in needs):
        raise ValueError("quantity must be positive")
    index = _as_index(lots, today)
    warehouses = tuple(warehouses)
    capacities = tuple(capacities)
    drives: dict[str, tuple[float, float]] = {}
    return [
        _rank_warehouses(
            item, q, index.item(item), warehouses, location, _capacities_of(item, capacities), config, drives
        )
        for item, q in needs
    ]
