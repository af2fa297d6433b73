"""Dispatch recommendation: team and warehouse rankings and their explanations (reason
codes with parameters, rendered in Chinese and English by command.domain.reasons)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.plans import Requirements, TeamRequirement
from command.domain.reasons import CATALOGUE, CODES, LANGUAGES, Lang, Reason, placeholders, render
from command.domain.recommend import (
    DEFAULT_CONFIG,
    GreatCircleModel,
    RecommendConfig,
    SkippedTeam,
    SkipReason,
    StockIndex,
    TeamCandidate,
    WarehouseCandidate,
    format_duration,
    recommend_for_requirements,
    recommend_supplies,
    recommend_teams,
    recommend_warehouses,
)
from command.domain.reserve import ProductionCapacity, StockLot, Warehouse, WarehouseKind
from command.domain.rosters import DutyRoster, Position, Shift, Team, TeamStatus, daily_shifts
from command.domain.vocabulary import TeamType
from wuwang.geo import haversine_m

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 7, 1, 14, 0, tzinfo=CST)
TODAY = NOW.date()
SCENE = (32.0, 112.0)
#: metres per degree of latitude on the mean-radius sphere
M_PER_DEG = 6_371_008.8 * 3.141592653589793 / 180


def north(metres: float) -> tuple[float, float]:
    return SCENE[0] + metres / M_PER_DEG, SCENE[1]


def make_team(
    team_id: str,
    metres: float,
    *,
    ttype: TeamType = TeamType.FIRE,
    status: TeamStatus = TeamStatus.AVAILABLE,
    age_s: float | None = 30,
    base_m: float = 5000,
) -> Team:
    lat, lon = north(metres)
    pos = None if age_s is None else Position(lat, lon, NOW - timedelta(seconds=age_s))
    blat, blon = north(base_m)
    return Team(team_id, f"队伍{team_id}", ttype, blat, blon, 20, status, pos)


def texts(reasons: tuple[Reason, ...] | list[Reason], lang: Lang = "en") -> list[str]:
    return [render(r, lang) for r in reasons]


def all_day(*team_ids: str) -> list[Shift]:
    return [s for t in team_ids for s in daily_shifts(t, time(8), time(8), date(2025, 6, 30), 3, CST)]


def test_eta_is_great_circle_times_road_factor_at_type_speed() -> None:
    teams = [make_team("F1", 1000)]
    ranking = recommend_teams((TeamType.FIRE, 1), teams, all_day("F1"), NOW, SCENE)
    (c,) = ranking.candidates
    assert c.distance_m == pytest.approx(1000, rel=1e-6)
    assert c.route_m == pytest.approx(1300, rel=1e-6)
    assert c.eta_s == pytest.approx(1300 / (40 / 3.6), rel=1e-6)  # fire: 40 km/h
    assert c.rank == 1
    assert not c.from_base
    assert [r.code for r in c.reasons] == [
        "travel.great_circle",
        "eta",
        "team.position_age",
        "team.on_shift_until",
    ]
    assert c.reasons[0].params == {
        "straight_km": pytest.approx(1.0),
        "road_factor": 1.3,
        "route_km": pytest.approx(1.3),
        "speed_kmh": 40.0,
    }
    assert c.reasons[1].params == {"eta_s": c.eta_s}
    assert c.reasons[2].params == {"age_s": 30.0} and c.reasons[3].params == {"until": "08:00"}
    assert texts(c.reasons) == [
        "1.0 km straight line × road factor 1.3 ≈ 1.3 km at 40 km/h",
        "ETA 1 min 57 s",
        "Position 30 s old",
        "On shift until 08:00",
    ]
    assert texts(c.reasons, "zh_CN") == [
        "直线 1.0 公里 × 道路系数 1.3 ≈ 1.3 公里，时速 40 公里",
        "预计 1 分 57 秒 到达",
        "位置 30 秒 前上报",
        "值班至 08:00",
    ]
    police = recommend_teams(
        (TeamType.POLICE, 1), [make_team("P1", 1000, ttype=TeamType.POLICE)], all_day("P1"), NOW, SCENE
    )
    assert police.candidates[0].eta_s == pytest.approx(1300 / (50 / 3.6))


def test_ranking_and_skips_explained() -> None:
    teams = [
        make_team("near", 800),
        make_team("far", 9000),
        make_team("mid", 3000),
        make_team("busy", 100, status=TeamStatus.EN_ROUTE),
        make_team("home", 100, status=TeamStatus.OFF_DUTY),
        make_team("noshift", 100),
        make_team("stale", 100, age_s=12 * 60),
        make_team("silent", 100, age_s=None),
        make_team("mine", 100),
        make_team("medic", 10, ttype=TeamType.MEDICAL),
    ]
    shifts = all_day("near", "far", "mid", "busy", "home", "stale", "silent", "mine", "medic")
    ranking = recommend_teams(TeamRequirement(TeamType.FIRE, 2), teams, shifts, NOW, SCENE, exclude={"mine"})
    assert [c.team_id for c in ranking.candidates] == ["near", "mid", "far"]
    assert [c.team_id for c in ranking.suggested] == ["near", "mid"]
    assert ranking.short == 0 and ranking.eligible == 3
    skipped = {s.team_id: (s.reason, s.detail) for s in ranking.skipped}
    assert skipped == {
        "busy": (SkipReason.BUSY, Reason("team.skipped.busy", {"status": "en_route"})),
        "home": (SkipReason.OFF_DUTY, Reason("team.skipped.off_duty")),
        "noshift": (SkipReason.NOT_ON_SHIFT, Reason("team.skipped.not_on_shift")),
        "stale": (SkipReason.STALE_POSITION, Reason("team.skipped.stale_position", {"age_s": 720.0})),
        "silent": (SkipReason.NO_POSITION, Reason("team.skipped.no_position")),
        "mine": (SkipReason.EXCLUDED, Reason("team.skipped.excluded")),
    }
    for s in ranking.skipped:  # the code says the rule: team.skipped.<SkipReason>
        assert s.detail.code == f"team.skipped.{s.reason.value}"
    said = {tid: (render(why, "en"), render(why, "zh_CN")) for tid, (_, why) in skipped.items()}
    assert said == {
        "busy": ("Status: En route", "状态：在途"),
        "home": ("Off duty", "不在岗"),
        "noshift": ("Not on duty (no shift now)", "不在班（此刻无排班）"),
        "stale": ("Position stale (last 12 min 00 s ago)", "位置已过时（最后上报于 12 分 00 秒 前）"),
        "silent": ("No position reported", "未上报位置"),
        "mine": ("Already assigned to this incident", "已派往此事件"),
    }
    assert "medic" not in skipped  # other types are not part of this requirement


def test_stale_positions_can_fall_back_to_home_base() -> None:
    config = RecommendConfig(stale_fallback_to_base=True)
    teams = [make_team("stale", 100, age_s=600, base_m=2000), make_team("fresh", 3000)]
    ranking = recommend_teams((TeamType.FIRE, 2), teams, all_day("stale", "fresh"), NOW, SCENE, config)
    first = ranking.candidates[0]
    assert first.team_id == "stale" and first.from_base
    assert first.distance_m == pytest.approx(2000, rel=1e-6)
    assert Reason("team.from_base.stale_position", {"age_s": 600.0}) in first.reasons
    assert "From home base: position stale (10 min 00 s old)" in texts(first.reasons)
    assert "按驻地计算：位置已过时（10 分 00 秒 前）" in texts(first.reasons, "zh_CN")
    assert not ranking.skipped
    silent = recommend_teams(
        (TeamType.FIRE, 1), [make_team("silent", 100, age_s=None)], all_day("silent"), NOW, SCENE, config
    )
    (c,) = silent.candidates
    assert c.from_base and c.position_age_s is None
    assert c.reasons[2] == Reason("team.from_base.no_position")
    assert texts(c.reasons)[2] == "From home base: no position"


def test_shortage_and_limit() -> None:
    teams = [make_team(f"F{i}", 1000 * i) for i in range(1, 31)]
    shifts = DutyRoster(all_day(*(t.id for t in teams)))
    ranking = recommend_teams((TeamType.FIRE, 3), teams, shifts, NOW, SCENE, RecommendConfig(limit=5))
    assert [c.team_id for c in ranking.candidates] == ["F1", "F2", "F3", "F4", "F5"]
    assert ranking.eligible == 30
    big = recommend_teams((TeamType.FIRE, 40), teams, shifts, NOW, SCENE, RecommendConfig(limit=5))
    assert len(big.candidates) == 30 and big.short == 10


def test_a_road_graph_model_plugs_in() -> None:
    class Graph:
        """A stand-in road graph: everything is 10 minutes away, except F2 at 1 minute."""

        def travel(
            self, from_lat: float, from_lon: float, to_lat: float, to_lon: float, mode: str
        ) -> tuple[float, float]:
            return (500.0, 60.0) if from_lat > north(5000)[0] else (8000.0, 600.0)

        def explain(self, straight_m: float, route_m: float, mode: str) -> Reason:
            return Reason("travel.road_graph", {"route_km": route_m / 1000})

    teams = [make_team("F1", 1000), make_team("F2", 9000)]
    config = RecommendConfig(travel_model=Graph())
    ranking = recommend_teams((TeamType.FIRE, 1), teams, all_day("F1", "F2"), NOW, SCENE, config)
    assert ranking.suggested[0].team_id == "F2"
    assert ranking.suggested[0].reasons[0] == Reason("travel.road_graph", {"route_km": 0.5})
    # a code of one's own, not in the catalogue, still shows (as the code and its values)
    assert texts(ranking.suggested[0].reasons)[0] == "travel.road_graph route_km=0.5"


def test_recommend_for_requirements_and_config_checks() -> None:
    teams = [make_team("F1", 1000), make_team("M1", 500, ttype=TeamType.MEDICAL)]
    reqs = Requirements(teams=(TeamRequirement(TeamType.FIRE, 2), TeamRequirement(TeamType.HAZMAT, 1)))
    out = recommend_for_requirements(reqs, teams, all_day("F1", "M1"), NOW, SCENE)
    assert set(out) == {TeamType.FIRE, TeamType.HAZMAT}
    assert out[TeamType.FIRE].short == 1 and out[TeamType.HAZMAT].short == 1
    with pytest.raises(ValueError, match="road factor"):
        GreatCircleModel(road_factor=0.9)
    with pytest.raises(ValueError, match="timezone-aware"):
        recommend_teams((TeamType.FIRE, 1), teams, [], NOW.replace(tzinfo=None), SCENE)
    assert format_duration(42) == "42 s" and format_duration(3725) == "1 h 02 min"


team_strategy = st.builds(
    lambda i, metres, ttype, status, age, on_shift: (
        make_team(f"T{i}", metres, ttype=ttype, status=status, age_s=age),
        on_shift,
    ),
    st.integers(0, 10_000),
    st.floats(0, 60_000),
    st.sampled_from([TeamType.FIRE, TeamType.MEDICAL]),
    st.sampled_from(list(TeamStatus)),
    st.one_of(st.none(), st.floats(0, 900)),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(team_strategy, max_size=25, unique_by=lambda e: e[0].id), count=st.integers(1, 5))
def test_ranking_properties(entries: list[tuple[Team, bool]], count: int) -> None:
    teams = [t for t, _ in entries]
    shifts = all_day(*(t.id for t, on in entries if on))
    on_shift = {t.id for t, on in entries if on}
    ranking = recommend_teams((TeamType.FIRE, count), teams, shifts, NOW, SCENE)
    etas = [c.eta_s for c in ranking.candidates]
    assert etas == sorted(etas)
    assert [c.rank for c in ranking.candidates] == list(range(1, len(etas) + 1))
    by_id = {t.id: t for t in teams}
    for c in ranking.candidates:
        t = by_id[c.team_id]
        assert t.type is TeamType.FIRE
        assert t.status is TeamStatus.AVAILABLE
        assert t.id in on_shift
        assert t.position is not None
        assert (NOW - t.position.at) <= DEFAULT_CONFIG.stale_after
    fire = {t.id for t in teams if t.type is TeamType.FIRE}
    seen = [c.team_id for c in ranking.candidates] + [s.team_id for s in ranking.skipped]
    assert len(seen) == len(set(seen))
    assert set(seen) == fire  # every team of the type is ranked or skipped with a reason
    assert len(ranking.suggested) == min(count, ranking.eligible)


# --- warehouses ----------------------------------------------------------------------


def wh(
    wid: str, metres: float, kind: WarehouseKind = WarehouseKind.GOVERNMENT_STOCK, lead_s: int = 0
) -> Warehouse:
    lat, lon = north(metres)
    return Warehouse(wid, f"仓库{wid}", kind, lat, lon, 420606, lead_s)


def test_warehouses_rank_covering_first_then_eta() -> None:
    warehouses = [
        wh("near-small", 1000),
        wh("far-big", 20_000),
        wh("mid-big", 8000),
        wh("agreement", 2000, WarehouseKind.COMMERCIAL_AGREEMENT, lead_s=7200),
        wh("factory", 3000, WarehouseKind.PRODUCTION_CAPACITY),
        wh("expired-only", 500),
        wh("empty", 100),
    ]
    lots = [
        StockLot("a", "near-small", "sandbag", 300),
        StockLot("b", "far-big", "sandbag", 5000),
        StockLot("c", "mid-big", "sandbag", 1500, reserved=400),
        StockLot("d", "agreement", "sandbag", 9000),
        StockLot("e", "expired-only", "sandbag", 800, expires_on=TODAY - timedelta(days=1)),
        StockLot("f", "mid-big", "tent", 50),
    ]
    caps = [ProductionCapacity("factory", "sandbag", per_day=24_000, lead_time_s=3600)]
    r = recommend_warehouses("sandbag", 1000, lots, warehouses, SCENE, TODAY, caps)
    order = [c.warehouse_id for c in r.candidates]
    # covering stock by ETA (even far-big, 39 min away, beats the agreement store 2 km away
    # with its 2 h call-up), then partial stock, then production capacity
    assert order == ["mid-big", "far-big", "agreement", "near-small", "factory"]
    assert [c.covers for c in r.candidates] == [True, True, True, False, True]
    assert r.candidates[0].available == 1100
    assert r.plan[0].warehouse_id == "mid-big" and r.plan[0].quantity == 1000 and r.short == 0
    assert dict(r.skipped) == {"expired-only": Reason("warehouse.skipped.expired")}
    assert render(r.skipped[0][1]) == "仅有过期库存"
    assert [x.code for x in r.candidates[2].reasons] == [
        "travel.great_circle",
        "warehouse.stock.covers",
        "warehouse.lead_time",
        "eta",
    ]
    assert texts(r.candidates[2].reasons)[1:3] == [
        "Commercial agreement: 9000 available, covers all",
        "Call-up lead time 2 h 00 min",
    ]
    assert texts(r.candidates[2].reasons, "zh_CN")[1:3] == [
        "企业协议储备：可用 9000，足以满足",
        "调用准备时间 2 小时 00 分",
    ]
    assert r.candidates[3].reasons[1] == Reason(
        "warehouse.stock.partial", {"kind": "government_stock", "available": 300, "quantity": 1000}
    )
    assert texts(r.candidates[3].reasons, "zh_CN")[1] == "政府实物储备：可用 300，可满足 1000 中的 300"
    factory = r.candidates[-1].reasons[1]
    assert factory.code == "warehouse.production" and factory.params["kind"] == "production_capacity"
    assert render(factory, "en") == (
        "Production capacity: 24000/day after 1 h 00 min lead time; 1000 ready in 2 h 00 min"
    )
    assert render(factory) == "产能储备：调用后 1 小时 00 分 开工，每天 24000；1000 需 2 小时 00 分"


def test_warehouse_plan_combines_partial_stock_and_production() -> None:
    warehouses = [wh("A", 1000), wh("B", 4000), wh("F", 2000, WarehouseKind.PRODUCTION_CAPACITY)]
    lots = [StockLot("a", "A", "tent", 30), StockLot("b", "B", "tent", 50)]
    caps = [ProductionCapacity("F", "tent", per_day=100, lead_time_s=0)]
    r = recommend_warehouses("tent", 120, lots, warehouses, SCENE, TODAY, caps)
    assert [(p.warehouse_id, p.quantity) for p in r.plan] == [("A", 30), ("B", 50), ("F", 40)]
    assert r.plan[2].eta_s == pytest.approx(40 * 864 + r.candidates[2].eta_s - 120 * 864)
    no_factory = recommend_warehouses("tent", 120, lots, warehouses[:2], SCENE, TODAY)
    assert no_factory.short == 40
    with pytest.raises(ValueError):
        recommend_warehouses("tent", 0, lots, warehouses, SCENE, TODAY)


# --- the optimised rankings against straightforward references ---------------------------
#
# The references below follow the documented rules one team / one warehouse at a time:
# every check spelled out, every candidate explained, a full sort. The optimised functions
# (pre-formatted skip details, top-k explanations, lots grouped once, drives shared between
# items) must give exactly their first candidates, reasons included.


def reference_teams(
    ttype: TeamType,
    teams: list[Team],
    shifts: list[Shift],
    config: RecommendConfig,
    exclude: frozenset[str],
) -> tuple[list[TeamCandidate], list[SkippedTeam]]:
    model = config.model()
    stale_s = config.stale_after.total_seconds()
    rows = []
    skipped = []
    for t in teams:
        if t.type != ttype:
            continue
        if t.id in exclude:
            skipped.append(SkippedTeam(t.id, SkipReason.EXCLUDED, Reason("team.skipped.excluded")))
            continue
        if t.status == TeamStatus.OFF_DUTY:
            skipped.append(SkippedTeam(t.id, SkipReason.OFF_DUTY, Reason("team.skipped.off_duty")))
            continue
        if t.status != TeamStatus.AVAILABLE:
            why = Reason("team.skipped.busy", {"status": str(t.status)})
            skipped.append(SkippedTeam(t.id, SkipReason.BUSY, why))
            continue
        covering = [s for s in shifts if s.team_id == t.id and s.covers(NOW)]
        if not covering:
            skipped.append(SkippedTeam(t.id, SkipReason.NOT_ON_SHIFT, Reason("team.skipped.not_on_shift")))
            continue
        age = None if t.position is None else max(0.0, (NOW - t.position.at).total_seconds())
        fresh = age is not None and age <= stale_s
        if not fresh and not config.stale_fallback_to_base:
            if age is None:
                skipped.append(SkippedTeam(t.id, SkipReason.NO_POSITION, Reason("team.skipped.no_position")))
            else:
                why = Reason("team.skipped.stale_position", {"age_s": age})
                skipped.append(SkippedTeam(t.id, SkipReason.STALE_POSITION, why))
            continue
        src = (t.position.lat, t.position.lon) if fresh and t.position else (t.base_lat, t.base_lon)
        route, eta = model.travel(*src, *SCENE, ttype.value)
        rows.append((eta, route, t.id, t, src, age, not fresh))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    out = []
    for rank, (eta, route, tid, _t, src, age, from_base) in enumerate(rows, start=1):
        straight = haversine_m(*src, *SCENE)
        until = max(s.ends_at for s in shifts if s.team_id == tid and s.covers(NOW))
        # back-to-back shifts merge: follow the chain
        while nxt := [s.ends_at for s in shifts if s.team_id == tid and s.starts_at <= until < s.ends_at]:
            until = max(nxt)
        reasons = [model.explain(straight, route, ttype.value), Reason("eta", {"eta_s": eta})]
        if from_base:
            reasons.append(
                Reason("team.from_base.no_position")
                if age is None
                else Reason("team.from_base.stale_position", {"age_s": age})
            )
        else:
            reasons.append(Reason("team.position_age", {"age_s": age or 0.0}))
        reasons.append(
            Reason("team.on_shift_until", {"until": until.astimezone(NOW.tzinfo).strftime("%H:%M")})
        )
        out.append(TeamCandidate(tid, rank, straight, route, eta, from_base, age, until, tuple(reasons)))
    return out, skipped


def reference_warehouses(
    item: str,
    quantity: int,
    lots: list[StockLot],
    warehouses: list[Warehouse],
    capacities: list[ProductionCapacity],
) -> tuple[list[WarehouseCandidate], list[tuple[str, int, float]], int, list[tuple[str, Reason]]]:
    """(all candidates, plan as (warehouse, quantity, eta), short, skipped)."""
    model = DEFAULT_CONFIG.model()
    caps = {c.warehouse_id: c for c in capacities if c.item_code == item and c.per_day > 0}
    rows = []
    skipped = []
    for w in warehouses:
        straight = haversine_m(w.lat, w.lon, *SCENE)
        route, drive = model.travel(w.lat, w.lon, *SCENE, "supply_truck")
        if w.kind == WarehouseKind.PRODUCTION_CAPACITY:
            if w.id in caps:
                cap = caps[w.id]
                eta = cap.seconds_to_produce(quantity) + drive
                made: dict[str, str | int | float] = {
                    "kind": "production_capacity",
                    "per_day": cap.per_day,
                    "lead_time_s": cap.lead_time_s,
                    "quantity": quantity,
                    "ready_s": cap.seconds_to_produce(quantity),
                }
                reasons = [
                    model.explain(straight, route, "supply_truck"),
                    Reason("warehouse.production", made),
                    Reason("eta", {"eta_s": eta}),
                ]
                rows.append(
                    (
                        2,
                        eta,
                        route,
                        w.id,
                        WarehouseCandidate(w.id, w.kind, 0, None, True, straight, route, eta, tuple(reasons)),
                    )
                )
            continue
        mine = [
            lot for lot in lots if lot.item_code == item and lot.warehouse_id == w.id and lot.quantity > 0
        ]
        usable = sum(lot.available for lot in mine if not lot.expired(TODAY))
        if usable == 0:
            if mine:
                kinds = sorted({"expired" if lot.expired(TODAY) else "reserved" for lot in mine})
                skipped.append((w.id, Reason("warehouse.skipped." + "_or_".join(kinds))))
            continue
        group = 0 if usable >= quantity else 1
        eta = w.lead_time_s + drive
        reasons = [
            model.explain(straight, route, "supply_truck"),
            Reason("warehouse.stock.covers", {"kind": w.kind.value, "available": usable})
            if group == 0
            else Reason(
                "warehouse.stock.partial", {"kind": w.kind.value, "available": usable, "quantity": quantity}
            ),
        ]
        if w.lead_time_s:
            reasons.append(Reason("warehouse.lead_time", {"lead_time_s": w.lead_time_s}))
        reasons.append(Reason("eta", {"eta_s": eta}))
        rows.append(
            (
                group,
                eta,
                route,
                w.id,
                WarehouseCandidate(w.id, w.kind, 0, usable, group == 0, straight, route, eta, tuple(reasons)),
            )
        )
    rows.sort(key=lambda r: r[:4])
    ranked = [
        WarehouseCandidate(
            c.warehouse_id, c.kind, n, c.available, c.covers, c.distance_m, c.route_m, c.eta_s, c.reasons
        )
        for n, (*_, c) in enumerate(rows, start=1)
    ]
    left = quantity
    plan: list[tuple[str, int, float]] = []
    if ranked and ranked[0].covers and ranked[0].available is not None:
        return ranked, [(ranked[0].warehouse_id, quantity, ranked[0].eta_s)], 0, skipped
    for c in ranked:
        if left == 0:
            break
        if c.available is None:  # production makes the rest
            cap = caps[c.warehouse_id]
            drive_s = c.eta_s - cap.seconds_to_produce(quantity)
            plan.append((c.warehouse_id, left, cap.seconds_to_produce(left) + drive_s))
            left = 0
        else:
            plan.append((c.warehouse_id, min(left, c.available), c.eta_s))
            left -= min(left, c.available)
    return ranked, plan, left, skipped


@dataclass
class _World:
    teams: list[Team] = field(default_factory=list)
    shifts: list[Shift] = field(default_factory=list)


#: Few distinct places, so ties in ETA and distance happen and the id must break them.
_places = st.sampled_from([0.0, 400.0, 2500.0, 2500.0, 9000.0]) | st.floats(0, 40_000)


@st.composite
def team_worlds(draw: st.DrawFn) -> _World:
    world = _World()
    for i in range(draw(st.integers(0, 30))):
        tid = f"T{i:02d}"
        age = draw(st.one_of(st.none(), st.sampled_from([0.0, 299.0, 300.0, 301.0]), st.floats(0, 7200)))
        world.teams.append(
            make_team(
                tid,
                draw(_places),
                ttype=draw(st.sampled_from([TeamType.FIRE, TeamType.FIRE, TeamType.MEDICAL])),
                status=draw(st.sampled_from([TeamStatus.AVAILABLE] * 4 + list(TeamStatus))),
                age_s=age,
                base_m=draw(_places),
            )
        )
        for _ in range(draw(st.integers(0, 3))):  # none, one, or overlapping / back-to-back shifts
            start = NOW + timedelta(hours=draw(st.integers(-30, 6)))
            world.shifts.append(Shift(tid, start, start + timedelta(hours=draw(st.integers(1, 24)))))
    world.teams = draw(st.permutations(world.teams))  # not in id order: the id must break ties
    return world


@settings(max_examples=300, deadline=None)
@given(
    world=team_worlds(),
    count=st.integers(1, 4),
    limit=st.integers(1, 6),
    from_base=st.booleans(),
    excluded=st.sets(st.sampled_from([f"T{i:02d}" for i in range(30)]), max_size=4),
)
def test_team_ranking_equals_the_reference(
    world: _World, count: int, limit: int, from_base: bool, excluded: set[str]
) -> None:
    config = RecommendConfig(limit=limit, stale_fallback_to_base=from_base)
    got = recommend_teams(
        (TeamType.FIRE, count), world.teams, DutyRoster(world.shifts), NOW, SCENE, config, frozenset(excluded)
    )
    want, want_skipped = reference_teams(
        TeamType.FIRE, world.teams, world.shifts, config, frozenset(excluded)
    )
    k = max(limit, count)
    assert list(got.candidates) == want[:k]  # same teams, order, numbers and reasons
    assert list(got.skipped) == want_skipped
    assert_sayable([r for c in got.candidates for r in c.reasons] + [s.detail for s in got.skipped])
    assert got.eligible == len(want)


@st.composite
def reserves(draw: st.DrawFn) -> tuple[list[Warehouse], list[StockLot], list[ProductionCapacity]]:
    kinds = [WarehouseKind.GOVERNMENT_STOCK] * 3 + list(WarehouseKind)
    warehouses = [
        wh(f"W{i:02d}", draw(_places), draw(st.sampled_from(kinds)), draw(st.sampled_from([0, 0, 900, 7200])))
        for i in range(draw(st.integers(0, 30)))
    ]
    lots = []
    for n in range(draw(st.integers(0, 60))):
        if not warehouses:
            break
        qty = draw(st.sampled_from([0, 5, 40, 100, 300]))
        lots.append(
            StockLot(
                f"L{n}",
                draw(st.sampled_from(warehouses)).id,
                draw(st.sampled_from(["tent", "sandbag"])),
                qty,
                draw(st.sampled_from([0, qty, qty // 2])),
                draw(st.sampled_from([None, TODAY, TODAY - timedelta(days=1), TODAY + timedelta(days=9)])),
            )
        )
    caps = [
        ProductionCapacity(w.id, item, draw(st.sampled_from([0, 50, 1000])), draw(st.sampled_from([0, 3600])))
        for w in warehouses
        if w.kind is WarehouseKind.PRODUCTION_CAPACITY
        for item in ("tent", "sandbag")
        if draw(st.booleans())
    ]
    return draw(st.permutations(warehouses)), lots, caps  # not in id order: the id breaks ties


@settings(max_examples=300, deadline=None)
@given(
    reserve=reserves(),
    quantities=st.lists(st.sampled_from([1, 40, 150, 400, 2000]), min_size=1, max_size=3),
    limit=st.integers(1, 6),
)
def test_warehouse_ranking_equals_the_reference(
    reserve: tuple[list[Warehouse], list[StockLot], list[ProductionCapacity]],
    quantities: list[int],
    limit: int,
) -> None:
    warehouses, lots, caps = reserve
    config = RecommendConfig(limit=limit)
    needs = [(("tent", "sandbag")[i % 2], q) for i, q in enumerate(quantities)]
    together = recommend_supplies(needs, lots, warehouses, SCENE, TODAY, caps, config)
    indexed = StockIndex(lots, TODAY)
    for (item, q), got in zip(needs, together, strict=True):
        alone = recommend_warehouses(item, q, lots, warehouses, SCENE, TODAY, caps, config)
        assert alone == got == recommend_warehouses(item, q, indexed, warehouses, SCENE, TODAY, caps, config)
        want, plan, short, skipped = reference_warehouses(item, q, lots, warehouses, caps)
        # the best `limit`, and every warehouse of the plan, shown with their reasons
        assert list(got.candidates) == want[: max(limit, len(plan))]
        assert [(p.warehouse_id, p.quantity, p.eta_s) for p in got.plan] == plan
        assert got.short == short and list(got.skipped) == skipped and got.eligible == len(want)
        assert_sayable([r for c in got.candidates for r in c.reasons] + [why for _, why in got.skipped])


def test_a_stock_index_is_for_one_day() -> None:
    index = StockIndex([StockLot("a", "A", "tent", 5, expires_on=TODAY)], TODAY)
    with pytest.raises(ValueError, match="expiry depends on the day"):
        recommend_warehouses("tent", 1, index, [wh("A", 10)], SCENE, TODAY + timedelta(days=1))
    with pytest.raises(ValueError):
        recommend_supplies([("tent", 0)], index, [wh("A", 10)], SCENE, TODAY)


# --- work done: explanations only for what is shown ---------------------------------------


class CountingModel:
    """The great-circle model, counting the explanations it is asked for."""

    def __init__(self) -> None:
        self.inner = GreatCircleModel()
        self.travels = 0
        self.explains = 0

    def travel(self, a: float, b: float, c: float, d: float, mode: str) -> tuple[float, float]:
        self.travels += 1
        return self.inner.travel(a, b, c, d, mode)

    def explain(self, straight_m: float, route_m: float, mode: str) -> Reason:
        self.explains += 1
        return self.inner.explain(straight_m, route_m, mode)


def test_only_the_shown_candidates_are_explained_and_drives_are_shared() -> None:
    rng = random.Random(7)
    model = CountingModel()
    config = RecommendConfig(travel_model=model, limit=20)
    teams = [make_team(f"T{i:04d}", rng.uniform(0, 40_000)) for i in range(1000)]
    ranking = recommend_teams((TeamType.FIRE, 2), teams, all_day(*(t.id for t in teams)), NOW, SCENE, config)
    assert ranking.eligible == 1000 and len(ranking.candidates) == 20
    assert (model.travels, model.explains) == (1000, 20)

    model.travels = model.explains = 0
    warehouses = [wh(f"W{i:03d}", rng.uniform(0, 40_000)) for i in range(200)]
    lots = [
        StockLot(f"L{i}-{item}", w.id, item, 100)
        for i, w in enumerate(warehouses)
        for item in ("tent", "sandbag")
    ]
    rankings = recommend_supplies([("tent", 50), ("sandbag", 50)], lots, warehouses, SCENE, TODAY, (), config)
    assert [(r.eligible, len(r.candidates)) for r in rankings] == [(200, 20), (200, 20)]
    assert (model.travels, model.explains) == (200, 40)  # one drive per warehouse for both items


# --- reason codes: every one has both texts, with what they need -------------------------


def assert_sayable(reasons: list[Reason]) -> None:
    """Every reason has a catalogue code, carries exactly that code's parameters, and reads
    in both languages with nothing left unfilled."""
    for r in reasons:
        assert r.code in CODES, r.code
        assert set(r.params) == set(CATALOGUE[r.code].params), r
        for lang in LANGUAGES:
            text = render(r, lang)
            assert text.strip() and "{" not in text, (r, lang)


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_both_texts_using_exactly_its_parameters(code: str) -> None:
    entry = CATALOGUE[code]
    zh, en = entry.template("zh_CN"), entry.template("en")
    assert zh.strip() and en.strip() and zh != f"reason.{code}"
    assert placeholders(zh) == placeholders(en) == set(entry.params), code
    # formatting with any value of the parameters' kinds works in both languages
    sample: dict[str, str | int | float] = {
        p: 125.5
        if p.endswith("_s")
        else "en_route"
        if p == "status"
        else "government_stock"
        if p == "kind"
        else "08:00"
        if p == "until"
        else 7
        for p in entry.params
    }
    assert_sayable([Reason(code, sample)])


def test_chinese_is_the_default_and_vocabulary_is_named() -> None:
    busy = Reason("team.skipped.busy", {"status": "on_scene"})
    assert busy.text() == render(busy) == render(busy, "zh_CN") == "状态：到达现场"
    assert busy.text("en") == "Status: On scene"
    assert render(Reason("eta", {"eta_s": 42}), "en") == "ETA 42 s"
    assert render(Reason("eta", {"eta_s": 3725})) == "预计 1 小时 02 分 到达"
    assert hash(busy) == hash(Reason("team.skipped.busy", {"status": "on_scene"}))


def test_every_code_is_emitted_by_the_recommender() -> None:
    """Enumerate the situations: between them they emit every code of the catalogue (no
    dead codes), each with its parameters."""
    emitted: list[Reason] = []
    teams = [
        make_team("fresh", 800),
        make_team("busy", 100, status=TeamStatus.EN_ROUTE),
        make_team("home", 100, status=TeamStatus.OFF_DUTY),
        make_team("noshift", 100),
        make_team("stale", 100, age_s=12 * 60),
        make_team("silent", 100, age_s=None),
        make_team("mine", 100),
    ]
    shifts = all_day("fresh", "busy", "home", "stale", "silent", "mine")
    for from_base in (False, True):
        config = RecommendConfig(stale_fallback_to_base=from_base)
        ranking = recommend_teams((TeamType.FIRE, 3), teams, shifts, NOW, SCENE, config, {"mine"})
        emitted += [r for c in ranking.candidates for r in c.reasons] + [s.detail for s in ranking.skipped]
    warehouses = [
        wh("big", 1000),
        wh("small", 500),
        wh("agreement", 2000, WarehouseKind.COMMERCIAL_AGREEMENT, lead_s=7200),
        wh("factory", 3000, WarehouseKind.PRODUCTION_CAPACITY),
        wh("expired", 100),
        wh("reserved", 100),
        wh("both", 100),
    ]
    lots = [
        StockLot("a", "big", "tent", 500),
        StockLot("b", "small", "tent", 5),
        StockLot("c", "agreement", "tent", 500),
        StockLot("d", "expired", "tent", 9, expires_on=TODAY - timedelta(days=1)),
        StockLot("e", "reserved", "tent", 9, reserved=9),
        StockLot("f", "both", "tent", 9, reserved=9),
        StockLot("g", "both", "tent", 9, expires_on=TODAY - timedelta(days=3)),
    ]
    caps = [ProductionCapacity("factory", "tent", per_day=100, lead_time_s=3600)]
    r = recommend_warehouses("tent", 100, lots, warehouses, SCENE, TODAY, caps)
    emitted += [x for c in r.candidates for x in c.reasons] + [why for _, why in r.skipped]
    assert_sayable(emitted)
    assert {x.code for x in emitted} == CODES
