"""The grid closed loop: 发现 → 立案 → 派遣 → 处置 → 核查 → 结案, SLA and KPIs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.grid import (
    DEFAULT_SLA,
    TRANSITIONS,
    GridAction,
    GridCase,
    GridCategory,
    GridConfig,
    GridStage,
    GridTransitionError,
    advance,
    allowed_actions,
    discover,
    grid_kpis,
    overdue,
    replay,
)
from wuwang import i18n

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 7, 1, 9, 0, tzinfo=CST)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def closed_case(
    case_id: str = "G1",
    category: str = "missing_manhole_cover",
    handle_after_min: float = 60,
    start: datetime = T0,
) -> GridCase:
    c = discover(case_id, category, "网格员刘洋", start, description="人行道井盖缺失", lat=32.05, lon=112.14)
    c = advance(c, GridAction.FILE, "受理员陈静", start + timedelta(minutes=5))
    c = advance(c, GridAction.DISPATCH, "派遣员周强", start + timedelta(minutes=10), assignee="市政养护中心")
    c = advance(c, GridAction.HANDLE, "养护工孙涛", start + timedelta(minutes=5 + handle_after_min))
    c = advance(c, GridAction.VERIFY, "网格员刘洋", start + timedelta(minutes=10 + handle_after_min))
    return advance(c, GridAction.CLOSE, "值班长吴敏", start + timedelta(minutes=15 + handle_after_min))


def test_categories_match_the_simulator_codes() -> None:
    assert i18n.text("zh_CN", f"grid.category.{GridCategory.STREET_VENDING}") == "占道经营"
    assert i18n.text("zh_CN", "grid.category.fire_lane_blocked") == "消防通道堵塞"
    assert set(DEFAULT_SLA) == {c.value for c in GridCategory}
    assert DEFAULT_SLA["missing_manhole_cover"] == timedelta(hours=2)
    assert DEFAULT_SLA["material_piling"] == timedelta(hours=24)


def test_full_loop_records_who_did_each_step() -> None:
    c = closed_case()
    assert c.stage is GridStage.CLOSED
    assert [s.action for s in c.steps] == [
        GridAction.DISCOVER,
        GridAction.FILE,
        GridAction.DISPATCH,
        GridAction.HANDLE,
        GridAction.VERIFY,
        GridAction.CLOSE,
    ]
    assert [s.by for s in c.steps][3] == "养护工孙涛"
    assert c.assignee == "市政养护中心"
    assert c.reporter == "网格员刘洋"
    assert c.deadline == minutes(5) + timedelta(hours=2)
    assert c.time_to_close == timedelta(minutes=75)
    assert c.on_time is True
    assert allowed_actions(c) == []


def test_self_verification_is_refused() -> None:
    c = discover("G2", "illegal_parking", "网格员刘洋", T0)
    c = advance(c, "file", "受理员陈静", minutes(1))
    c = advance(c, "dispatch", "派遣员周强", minutes(2), assignee="交警大队")
    c = advance(c, "handle", "交警王磊", minutes(30))
    with pytest.raises(GridTransitionError, match="交警王磊 handled case G2 and cannot verify it"):
        advance(c, "verify", "交警王磊", minutes(40))
    with pytest.raises(GridTransitionError, match="cannot verify"):
        advance(c, "reject", "交警王磊", minutes(40), note="自己退回")


def test_failed_verification_sends_the_case_back_for_rework() -> None:
    c = discover("G3", "material_piling", "网格员刘洋", T0)
    c = advance(c, "file", "受理员陈静", minutes(1))
    c = advance(c, "dispatch", "派遣员周强", minutes(2), assignee="环卫所")
    c = advance(c, "handle", "环卫工赵刚", minutes(60))
    with pytest.raises(GridTransitionError, match="needs a reason"):
        advance(c, "reject", "网格员刘洋", minutes(70))
    c = advance(c, "reject", "网格员刘洋", minutes(70), note="建筑垃圾未清运完")
    assert c.stage is GridStage.DISPATCHED and c.assignee == "环卫所" and c.reworks == 1
    c = advance(c, "handle", "环卫工钱亮", minutes(120))
    # the first handler's work failed verification: they may not verify the rework either
    with pytest.raises(GridTransitionError, match="环卫工赵刚 handled"):
        advance(c, "verify", "环卫工赵刚", minutes(130))
    c = advance(c, "verify", "网格员刘洋", minutes(130))
    assert c.handled_at == minutes(120)
    assert c.handlers == frozenset({"环卫工赵刚", "环卫工钱亮"})


def test_illegal_steps_are_refused_with_reasons() -> None:
    c = discover("G4", "noise_nuisance", "市民", T0)
    with pytest.raises(GridTransitionError, match=r"is discovered; cannot handle — allowed: file, dismiss"):
        advance(c, "handle", "x", minutes(1))
    with pytest.raises(GridTransitionError, match="needs an assignee"):
        advance(advance(c, "file", "受理员", minutes(1)), "dispatch", "派遣员", minutes(2))
    with pytest.raises(GridTransitionError, match="takes no assignee"):
        advance(c, "file", "受理员", minutes(1), assignee="x")
    with pytest.raises(GridTransitionError, match="before the previous step"):
        advance(c, "file", "受理员", T0 - timedelta(seconds=1))
    with pytest.raises(GridTransitionError, match="timezone-aware"):
        advance(c, "file", "受理员", datetime(2025, 7, 1, 10))
    with pytest.raises(GridTransitionError, match="discovered once"):
        advance(c, "discover", "x", minutes(1))
    with pytest.raises(GridTransitionError, match="unknown grid category 'encroachment'"):
        discover("G5", "encroachment", "x", T0)
    dismissed = advance(c, "dismiss", "受理员", minutes(3), note="重复上报")
    assert dismissed.stage is GridStage.DISMISSED
    with pytest.raises(GridTransitionError, match="nothing \\(final\\)"):
        advance(dismissed, "file", "受理员", minutes(4))


def test_custom_categories_and_slas() -> None:
    config = GridConfig(sla={**DEFAULT_SLA, "stray_dog": timedelta(hours=6)})
    c = discover("G6", "stray_dog", "网格员", T0, config=config)
    assert c.sla == timedelta(hours=6)


def test_replay_rebuilds_the_case() -> None:
    c = closed_case()
    opened = discover(
        "G1", c.category, c.reporter, c.discovered_at, description=c.description, lat=c.lat, lon=c.lon
    )
    assert replay(opened, c.steps[1:]) == c
    with pytest.raises(GridTransitionError):
        replay(c, [])


def test_overdue_list() -> None:
    late = discover("late", "fire_lane_blocked", "网格员", T0)
    late = advance(late, "file", "受理员", minutes(10))
    late = advance(late, "dispatch", "派遣员", minutes(15), assignee="消防大队")
    waiting = discover("waiting", "material_piling", "网格员", T0)
    waiting = advance(waiting, "file", "受理员", minutes(10))
    unfiled = discover("unfiled", "noise_nuisance", "市民", T0)
    handled = advance(late, "handle", "消防员", minutes(100))  # awaiting verification: not overdue
    now = minutes(10 + 150)
    out = overdue([late, waiting, unfiled, handled, closed_case()], now)
    assert [(o.case_id, o.stage) for o in out] == [
        ("unfiled", GridStage.DISCOVERED),
        ("late", GridStage.DISPATCHED),
    ]
    assert out[1].overdue_by == timedelta(minutes=30)
    assert out[1].describe() == "late (fire_lane_blocked, dispatched, with 消防大队) overdue by 30 min"
    assert overdue([late], minutes(10 + 120)) == []  # exactly at the deadline is not late


def test_kpis() -> None:
    july = datetime(2025, 7, 1, tzinfo=CST)
    aug = datetime(2025, 8, 1, tzinfo=CST)
    closed = [
        closed_case(f"C{i}", handle_after_min=30 * (i + 1), start=T0 + timedelta(days=i)) for i in range(10)
    ]
    open_case = advance(discover("O1", "street_vending", "网格员", T0), "file", "受理员", minutes(1))
    dismissed = advance(
        discover("D1", "street_vending", "网格员", T0), "dismiss", "受理员", minutes(1), note="重复"
    )
    june = closed_case("J1", start=datetime(2025, 6, 30, 23, 0, tzinfo=CST))
    k = grid_kpis(
        [*closed, open_case, dismissed, june], july, aug, now=datetime(2025, 7, 20, tzinfo=CST), tz=CST
    )
    assert (k.filed, k.closed, k.dismissed) == (11, 10, 1)
    assert k.closure_rate == pytest.approx(10 / 11)
    durations = sorted(15 + 30 * (i + 1) for i in range(10))  # minutes, discovery → close
    assert k.mean_time_to_close_s == pytest.approx(sum(durations) / 10 * 60)
    # numpy.percentile(durations, 90) == 288 minutes (linear interpolation: 285 + 0.1 × 30)
    assert k.p90_time_to_close_s == pytest.approx(288 * 60)
    # manhole SLA 2 h from filing: handled 30..120 min after filing are on time, later are not
    assert k.on_time_rate == pytest.approx(4 / 10)
    assert k.per_month == {"2025-07": 11}
    assert k.by_category["street_vending"].filed == 1 and k.by_category["street_vending"].closed == 0
    assert [o.case_id for o in k.overdue] == ["O1"]
    empty = grid_kpis([], july, aug, now=aug, tz=CST)
    assert empty.closure_rate is None and empty.p90_time_to_close_s is None


_ACTORS = ["甲", "乙", "丙"]


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(list(GridAction)), st.sampled_from(_ACTORS), st.integers(0, 120)),
        max_size=20,
    )
)
def test_loop_properties(steps: list[tuple[GridAction, str, int]]) -> None:
    """Random attempts: only listed transitions succeed; no case is ever verified by one of
    its handlers; time never runs backwards; a closed case was verified just before."""
    case = discover("P", "illegal_parking", "网格员", T0)
    now = T0
    for action, who, gap in steps:
        now += timedelta(minutes=gap)
        before = case
        try:
            case = advance(
                case,
                action,
                who,
                now,
                note="原因",
                assignee="部门" if action is GridAction.DISPATCH else None,
            )
        except GridTransitionError:
            assert case is before
            continue
        assert TRANSITIONS[(before.stage, action)] is case.stage
    for i, s in enumerate(case.steps):
        if s.action is GridAction.VERIFY:
            handlers_so_far = {x.by for x in case.steps[:i] if x.action is GridAction.HANDLE}
            assert s.by not in handlers_so_far
    assert [s.at for s in case.steps] == sorted(s.at for s in case.steps)
    if case.stage is GridStage.CLOSED:
        assert case.steps[-2].action is GridAction.VERIFY


def test_docs_sla_table_matches_the_code() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "grid.md").read_text(encoding="utf-8")
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Code | 中文 | SLA (h) |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        code, zh, hours = (c.strip().strip("`") for c in line.strip("|").split("|"))
        rows[code] = (zh, timedelta(hours=float(hours)))
    assert rows == {
        c.value: (i18n.text("zh_CN", f"grid.category.{c}"), DEFAULT_SLA[c.value]) for c in GridCategory
    }
