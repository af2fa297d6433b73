"""Correlation: duplicate-call detection, cross-feed joins, windows, exercise isolation,
rules from a dict, and a property test that random join/split/merge sequences keep
every alarm in exactly one incident."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.correlation import (
    DEFAULT_DISTANCE_M,
    AlreadyLinked,
    CorrelationRules,
    IncidentView,
    JoinIncident,
    OpenIncident,
    RulesError,
    correlate,
    default_rules,
    link_alarm,
    open_from_alarm,
    title_for,
)
from command.domain.incidents import (
    Actor,
    Event,
    Incident,
    IncidentState,
    apply,
    decide_dispatch,
    decide_merge,
    decide_resolve,
    decide_split,
    decide_team_arrived,
    replay,
)
from command.domain.reasons import WHY, Param, Reason, render
from command.domain.vocabulary import IncidentType, ResponseLevel, Role
from tests.command.domain.conftest import CST, HOME, NETWORK_OF, grid_alarm
from wuwang import i18n
from wuwang.contract import Alarm, AlarmKind
from wuwang.geo import offset_by_metres

T0 = datetime(2024, 7, 12, 14, 0, tzinfo=CST)
SYSTEM = Actor("correlator", Role.SYSTEM)
OP = Actor("operator1", Role.OPERATOR)
RULES = default_rules()


def alarm(
    n: int,
    kind: AlarmKind = "call",
    category: str = "fire",
    *,
    north_m: float = 0.0,
    east_m: float = 0.0,
    minutes: float = 0.0,
    source: str | None = None,
    no_position: bool = False,
    exercise_id: str | None = None,
    summary: str = "幸福路12号三楼冒烟",
) -> Alarm:
    lat, lon = offset_by_metres(*HOME, north_m, east_m)
    src = source or ("police/sys110" if kind == "call" else f"{NETWORK_OF[kind]}/{kind}-{n}")
    return grid_alarm(
        n,
        kind,
        category,
        source=src,
        ts=T0 + timedelta(minutes=minutes),
        lat=None if no_position else lat,
        lon=None if no_position else lon,
        summary=summary,
        details={"exercise_id": exercise_id} if exercise_id else {},
    )


class World:
    """Open incidents built by running alarms through correlate → events → replay."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.events: dict[str, list[Event]] = {}

    def views(self) -> list[IncidentView]:
        return [IncidentView.of(i) for i in self.incidents.values() if i.is_open]

    def store(self, events: list[Event] | tuple[Event, ...]) -> None:
        for e in events:
            self.incidents[e.incident_id] = apply(self.incidents.get(e.incident_id), e)
            self.events.setdefault(e.incident_id, []).append(e)

    def feed(self, a: Alarm, now: datetime | None = None) -> Any:
        decision = correlate(a, self.views(), RULES, now or a.ts)
        if isinstance(decision, OpenIncident):
            iid = f"INC-{len(self.incidents) + 1}"
            self.store(open_from_alarm(a, decision, incident_id=iid, actor=SYSTEM, at=a.ts))
        elif isinstance(decision, JoinIncident):
            self.store(link_alarm(self.incidents[decision.incident_id], a, actor=SYSTEM, at=a.ts))
        return decision


# --- the cases from the issue -----------------------------------------------------------------


def test_duplicate_110_calls_100_m_and_2_min_apart_join() -> None:
    w = World()
    first = w.feed(alarm(1))
    assert isinstance(first, OpenIncident) and first.incident_type is IncidentType.FIRE
    second = w.feed(alarm(2, north_m=100, minutes=2))
    assert isinstance(second, JoinIncident) and second.incident_id == "INC-1"
    assert second.distance_m is not None and second.distance_m == pytest.approx(100, abs=1)
    assert second.why.code == "correlation.joined"
    assert dict(second.why.params) == {
        "alarm_kind": "call",
        "incident_type": "fire",
        "incident_id": "INC-1",
        "distance_m": 100,
        "gap_s": 120,
        "within_m": 500,
        "window_s": 1800,
    }
    # the record's text, and the same reason in English: codes shown by their names
    assert second.reason == (
        "110报警（火灾）：与事件 INC-1 相距 100 米、相隔 2 分 00 秒，在 500 米 / 30 分 00 秒 范围内，并入"
    )
    assert render(second.why, "en") == (
        "110 call (Fire): 100 m and 2 min 00 s from incident INC-1, within 500 m / 30 min 00 s; joined"
    )
    assert w.incidents["INC-1"].alarm_ids == ("police/sys110#1", "police/sys110#2")


def test_calls_2_km_apart_open_separate_incidents() -> None:
    w = World()
    w.feed(alarm(1))
    decision = w.feed(alarm(2, east_m=2000, minutes=1))
    assert isinstance(decision, OpenIncident)
    assert decision.why.code == "correlation.opened"
    assert decision.why.params["types"] == "fire,high_rise_fire"
    assert "500 米 / 30 分 00 秒 范围内无在办同类事件（火灾、高层建筑火灾）" in decision.reason
    assert "(Fire, High-rise fire)" in render(decision.why, "en")
    assert len(w.incidents) == 2


def test_fire_call_smoke_sensor_and_fire_smoke_video_join_one_incident() -> None:
    w = World()
    w.feed(alarm(1))
    assert isinstance(w.feed(alarm(2, "sensor", "smoke", north_m=150, minutes=3)), JoinIncident)
    assert isinstance(w.feed(alarm(3, "video", "fire_smoke", east_m=300, minutes=6)), JoinIncident)
    assert isinstance(
        w.feed(alarm(4, "sensor", "co", north_m=-200, minutes=9)), JoinIncident
    )  # co joins fires
    assert isinstance(w.feed(alarm(5, "sensor", "temperature", east_m=-100, minutes=10)), JoinIncident)
    inc = w.incidents["INC-1"]
    assert [s.kind for s in inc.sources] == ["call", "sensor", "video", "sensor", "sensor"]
    assert len(w.incidents) == 1


def test_traffic_accident_40_min_later_opens_new_but_15_min_later_joins() -> None:
    w = World()
    first = w.feed(alarm(1, category="traffic"))
    assert isinstance(first, OpenIncident) and first.incident_type is IncidentType.TRAFFIC_ACCIDENT
    assert isinstance(w.feed(alarm(2, category="traffic", north_m=50, minutes=15)), JoinIncident)
    # the window runs from the latest source (15 min): 40 min after the first is 25 min after it
    late = w.feed(alarm(3, category="traffic", minutes=40))
    assert isinstance(late, OpenIncident) and late.why.params["window_s"] == 1200
    assert late.why.params["within_m"] == 300 and late.why.params["incident_type"] == "traffic_accident"
    assert isinstance(w.feed(alarm(4, "video", "traffic_accident", east_m=100, minutes=30)), JoinIncident)


def test_window_runs_from_the_latest_source() -> None:
    w = World()
    w.feed(alarm(1, category="traffic"))
    for n, minutes in enumerate((15, 30, 45), start=2):  # each within 20 min of the previous one
        assert isinstance(w.feed(alarm(n, category="traffic", minutes=minutes)), JoinIncident)
    assert len(w.incidents) == 1


def test_exercise_alarms_never_join_live_incidents_and_vice_versa() -> None:
    w = World()
    w.feed(alarm(1))  # live INC-1
    drill = w.feed(alarm(2, north_m=10, minutes=1, exercise_id="EX-7"))
    assert isinstance(drill, OpenIncident)
    assert w.incidents["INC-2"].exercise_id == "EX-7"
    assert isinstance(w.feed(alarm(3, north_m=20, minutes=2, exercise_id="EX-7")), JoinIncident)
    assert w.incidents["INC-2"].alarm_ids[-1].endswith("#3")
    assert isinstance(w.feed(alarm(4, north_m=5, minutes=2, exercise_id="EX-8")), OpenIncident)  # INC-3
    live = w.feed(alarm(5, north_m=15, minutes=3))
    assert isinstance(live, JoinIncident) and live.incident_id == "INC-1"
    # an explicit exercise id wins over the alarm's details
    explicit = correlate(alarm(6, minutes=3), w.views(), RULES, T0 + timedelta(minutes=3), exercise_id="EX-8")
    assert isinstance(explicit, JoinIncident) and explicit.incident_id == "INC-3"


# --- more behaviour ----------------------------------------------------------------------------


def test_incompatible_types_do_not_join() -> None:
    w = World()
    w.feed(alarm(1))  # fire
    medical = w.feed(alarm(2, category="medical", north_m=10, minutes=1))
    assert isinstance(medical, OpenIncident) and medical.incident_type is IncidentType.MEDICAL
    # but a medical call next to a traffic accident joins it (an injured driver)
    w.feed(alarm(3, category="traffic", east_m=1000, minutes=2))
    joined = w.feed(alarm(4, category="medical", east_m=1050, minutes=3))
    assert isinstance(joined, JoinIncident) and joined.incident_id == "INC-3"


def test_nearest_wins_and_ties_are_deterministic() -> None:
    w = World()
    w.feed(alarm(1, "video", "fire_smoke", north_m=300))
    w.feed(alarm(2, "video", "fire_smoke", north_m=-300))
    assert len(w.incidents) == 2
    near = correlate(alarm(3, north_m=-50), w.views(), RULES, T0)
    assert isinstance(near, JoinIncident) and near.incident_id == "INC-2"
    tie = correlate(alarm(4), w.views(), RULES, T0)
    assert isinstance(tie, JoinIncident) and tie.incident_id == "INC-1"  # equal distance and gap: smaller id
    reordered = correlate(alarm(4), list(reversed(w.views())), RULES, T0)
    assert reordered == tie


def test_equal_distance_prefers_the_smaller_time_gap() -> None:
    w = World()
    w.feed(alarm(1, "video", "fire_smoke", north_m=300))
    w.feed(alarm(2, "video", "fire_smoke", north_m=-300, minutes=10))
    decision = correlate(alarm(3, minutes=11), w.views(), RULES, T0 + timedelta(minutes=11))
    assert isinstance(decision, JoinIncident) and decision.incident_id == "INC-2"


def test_alarms_without_position_join_only_their_own_device() -> None:
    w = World()
    w.feed(alarm(1))  # a fire call at HOME
    first = w.feed(alarm(2, "sensor", "smoke", source="venue/smoke-9", no_position=True, minutes=1))
    assert isinstance(first, OpenIncident) and first.why.code == "correlation.opened_no_position"
    assert "无位置" in first.reason and "no position" in render(first.why, "en")
    again = w.feed(alarm(3, "sensor", "smoke", source="venue/smoke-9", no_position=True, minutes=4))
    assert isinstance(again, JoinIncident) and again.incident_id == "INC-2" and again.distance_m is None
    assert (
        again.why.code == "correlation.joined_same_source" and again.why.params["source"] == "venue/smoke-9"
    )
    assert "同一来源 venue/smoke-9" in again.reason
    other = w.feed(alarm(4, "sensor", "smoke", source="venue/smoke-10", no_position=True, minutes=5))
    assert isinstance(other, OpenIncident)
    assert w.incidents["INC-2"].lat is None


def test_repeat_delivery_is_idempotent() -> None:
    w = World()
    w.feed(alarm(1))
    w.feed(alarm(2, minutes=1))
    repeat = w.feed(alarm(2, minutes=1))
    assert isinstance(repeat, AlreadyLinked) and repeat.incident_id == "INC-1"
    assert link_alarm(w.incidents["INC-1"], alarm(2, minutes=1), actor=SYSTEM, at=T0) == []
    assert w.incidents["INC-1"].version == 2


def test_resolved_incidents_take_no_new_alarms() -> None:
    w = World()
    w.feed(alarm(1))
    inc = w.incidents["INC-1"]
    w.store(decide_dispatch(inc, team_id="T1", order_id="O1", actor=OP, at=T0, expected_version=inc.version))
    inc = w.incidents["INC-1"]
    w.store(decide_team_arrived(inc, team_id="T1", actor=OP, at=T0, expected_version=inc.version))
    inc = w.incidents["INC-1"]
    assert isinstance(w.feed(alarm(2, minutes=5)), JoinIncident)  # on scene: still joinable
    inc = w.incidents["INC-1"]
    w.store(decide_resolve(inc, actor=OP, at=T0, expected_version=inc.version))
    assert w.incidents["INC-1"].state is IncidentState.RESOLVED
    assert isinstance(w.feed(alarm(3, minutes=10)), OpenIncident)


def test_future_timestamps_are_taken_as_now_and_late_ones_measured_to_the_first_source() -> None:
    w = World()
    w.feed(alarm(1, category="traffic", minutes=30))
    # device clock 2 h fast: taken as now (T0+35 min), 5 min after the incident
    fast = correlate(alarm(2, category="traffic", minutes=150), w.views(), RULES, T0 + timedelta(minutes=35))
    assert isinstance(fast, JoinIncident)
    # delivered late: 15 min before the incident's first source is within 20 min
    late = correlate(alarm(3, category="traffic", minutes=15), w.views(), RULES, T0 + timedelta(minutes=36))
    assert isinstance(late, JoinIncident)
    too_late = correlate(
        alarm(4, category="traffic", minutes=5), w.views(), RULES, T0 + timedelta(minutes=36)
    )
    assert isinstance(too_late, OpenIncident)
    with pytest.raises(ValueError, match="timezone-aware"):
        correlate(alarm(5), w.views(), RULES, datetime(2024, 7, 12, 14, 0))


def test_open_from_alarm_fills_the_incident() -> None:
    a = alarm(1, summary="  幸福路12号   三楼冒烟，有人被困  ")
    decision = correlate(a, [], RULES, T0)
    assert isinstance(decision, OpenIncident)
    # what, then where: the source is a tag on screen, not part of the title
    assert decision.title_zh == "火灾 · 幸福路12号 三楼冒烟，有人被困"
    assert decision.level_suggestion is ResponseLevel.IV
    inc = replay(open_from_alarm(a, decision, incident_id="INC-1", actor=SYSTEM, at=T0))
    assert (inc.lat, inc.lon) == (a.lat, a.lon) and inc.grid_cell_id == "G-420606-001"
    assert inc.incident_type is IncidentType.FIRE and inc.sources[0].alarm_id == a.alarm_id
    long = title_for(alarm(3, summary="长" * 100), IncidentType.FIRE)
    assert long.endswith("…") and len(long) < 80


def test_titles_say_what_then_where_without_the_source() -> None:
    # the ingest's call: its summary names the source and category, its details the address
    call = alarm(1, summary="110报警 火灾: 樊城区人民路12号")
    call = call.replace(details={"address": "樊城区人民路12号", "call_id": "C-1"})
    assert title_for(call, IncidentType.FIRE) == "火灾 · 樊城区人民路12号"
    # a call without an address: the caller's words, without the ingest's head
    assert title_for(alarm(2, summary="110报警 交通: 人民路口两车相撞"), IncidentType.TRAFFIC_ACCIDENT) == (
        "交通事故 · 人民路口两车相撞"
    )
    # a sensor or a camera has no address: its coordinates (never the grid cell's id, an
    # internal code), else what alone
    gas = alarm(3, "sensor", "gas", summary="可燃气体超限 25 %LEL")
    assert title_for(gas, IncidentType.HAZMAT_LEAK) == f"危险化学品泄漏 · {gas.lat:.4f}, {gas.lon:.4f}"
    assert "G-420606-001" not in title_for(gas, IncidentType.HAZMAT_LEAK)
    nowhere = alarm(4, "video", "fall", summary="视频告警", no_position=True).replace(grid_cell_id=None)
    assert title_for(nowhere, IncidentType.MEDICAL) == "医疗急救"
    # the place in words the service found for it (the nearest crossing) comes before them
    near = "樊城区人民路与邓城大道交叉口附近"
    assert title_for(gas, IncidentType.HAZMAT_LEAK, near) == f"危险化学品泄漏 · {near}"
    assert title_for(call, IncidentType.FIRE, near) == "火灾 · 樊城区人民路12号"  # the caller's address first
    decision = correlate(gas, [], RULES, gas.ts, place=near)
    assert isinstance(decision, OpenIncident) and decision.title_zh == f"危险化学品泄漏 · {near}"
    for title in (title_for(call, IncidentType.FIRE), title_for(gas, IncidentType.HAZMAT_LEAK)):
        assert "110报警" not in title and "告警" not in title and "（" not in title


# --- rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "category", "itype", "distance", "window_min"),
    [
        ("call", "fire", IncidentType.FIRE, 500, 30),
        ("call", "traffic", IncidentType.TRAFFIC_ACCIDENT, 300, 20),
        ("call", "criminal", IncidentType.CRIMINAL, 300, 30),
        ("call", "other", IncidentType.OTHER, DEFAULT_DISTANCE_M, 15),
        ("video", "crowd", IncidentType.CROWD_CRUSH, 500, 30),
        ("video", "fall", IncidentType.MEDICAL, DEFAULT_DISTANCE_M, 15),
        ("video", "loitering", IncidentType.PUBLIC_ORDER, 300, 30),
        ("video", "something_new", IncidentType.OTHER, DEFAULT_DISTANCE_M, 15),
        ("sensor", "gas", IncidentType.HAZMAT_LEAK, 1000, 60),
        ("sensor", "water_level", IncidentType.FLOOD, 1500, 120),
        ("sensor", "humidity", IncidentType.OTHER, DEFAULT_DISTANCE_M, 15),
        ("report", "smoke", IncidentType.FIRE, 500, 30),
        ("report", "hazmat_leak", IncidentType.HAZMAT_LEAK, 1000, 60),  # an incident type's own name
        ("report", "pothole", IncidentType.OTHER, DEFAULT_DISTANCE_M, 15),
    ],
)
def test_default_rules(
    kind: str, category: str, itype: IncidentType, distance: float, window_min: float
) -> None:
    rule = RULES.rule_for(kind, category)
    assert (rule.incident_type, rule.distance_m, rule.window_s) == (itype, distance, window_min * 60)


def test_rules_from_a_dict_override_only_what_they_name() -> None:
    rules = CorrelationRules.from_dict(
        {
            "types": {"fire": {"distance_m": 100, "level": "III"}, "flood": {"window_s": 600}},
            "categories": {
                "sensor": {"smoke": {"window_s": 60}, "radiation": {"type": "hazmat_leak", "level": 2}},
                "*": {"explosion": {"type": "fire", "level": "重大"}},
            },
        }
    )
    assert rules.rule_for("call", "fire").distance_m == 100  # the type's change reaches its categories
    assert rules.rule_for("call", "fire").window_s == 1800
    assert rules.rule_for("call", "fire").level is ResponseLevel.III
    assert (
        rules.rule_for("sensor", "smoke").window_s == 60
        and rules.rule_for("sensor", "smoke").distance_m == 100
    )
    assert rules.rule_for("sensor", "water_level").window_s == 600
    assert rules.rule_for("sensor", "radiation").level is ResponseLevel.II
    assert rules.rule_for("report", "explosion").incident_type is IncidentType.FIRE
    assert rules.rule_for("report", "explosion").level is ResponseLevel.II
    assert default_rules().rule_for("call", "fire").distance_m == 500  # defaults untouched
    # with fire's distance window cut to 100 m, a call 150 m away opens a new incident
    w = World()
    w.feed(alarm(1))
    assert isinstance(correlate(alarm(2, north_m=150), w.views(), rules, T0), OpenIncident)
    assert isinstance(correlate(alarm(2, north_m=90), w.views(), rules, T0), JoinIncident)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"types": {"fire": {"distance_m": -5}}}, "types.fire.distance_m"),
        ({"types": {"volcano": {}}}, "types.volcano"),
        ({"types": {"fire": {"level": "V"}}}, "unknown response level"),
        ({"categories": {"call": {"fire": {"joins": ["lava"]}}}}, "categories.call.fire.joins"),
        ({"categories": {"fax": {"fire": {"type": "fire"}}}}, "unknown alarm kind"),
        ({"categories": {"sensor": {"radiation": {"window_s": 60}}}}, "'type' is required"),
        ({"windows": {}}, "windows"),
    ],
)
def test_bad_rules_are_refused_with_the_place(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RulesError) as err:
        CorrelationRules.from_dict(data)
    assert fragment in str(err.value)


# --- property: join / split / merge keep every alarm exactly once --------------------------------

CATEGORIES = [
    ("call", "fire"),
    ("call", "traffic"),
    ("sensor", "smoke"),
    ("video", "fire_smoke"),
    ("call", "medical"),
]

op_alarm = st.tuples(
    st.just("alarm"),
    st.sampled_from(CATEGORIES),
    st.integers(-3, 3),  # position on a 250 m grid: neighbours join, far ones do not
    st.integers(-3, 3),
    st.integers(0, 20),  # minutes since the previous alarm
    st.booleans(),  # repeat the previous alarm (at-least-once delivery)
)
op_split = st.tuples(st.just("split"), st.integers(0, 50), st.integers(0, 50))
op_merge = st.tuples(st.just("merge"), st.integers(0, 50), st.integers(0, 50))


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.one_of(op_alarm, op_alarm, op_split, op_merge), min_size=10, max_size=40))
def test_join_split_merge_keep_every_alarm_exactly_once(ops: list[tuple[Any, ...]]) -> None:
    w = World()
    fed: set[str] = set()
    clock = T0
    n = 0
    last: Alarm | None = None
    for op in ops:
        if op[0] == "alarm":
            _, (kind, category), north, east, gap, repeat = op
            if repeat and last is not None:
                a = last
            else:
                n += 1
                clock += timedelta(minutes=gap)
                a = alarm(
                    n,
                    kind,
                    category,
                    north_m=north * 250,
                    east_m=east * 250,
                    minutes=(clock - T0).seconds / 60,
                )
            w.feed(a, now=clock)
            fed.add(a.alarm_id)
            last = a
        else:
            live = sorted(i for i, inc in w.incidents.items() if inc.is_open)
            if not live:
                continue
            a_id = live[op[1] % len(live)]
            inc = w.incidents[a_id]
            if op[0] == "split" and len(inc.sources) >= 2:
                out = decide_split(
                    inc,
                    alarm_id=inc.alarm_ids[op[2] % len(inc.sources)],
                    new_incident_id=f"INC-{len(w.incidents) + 1}",
                    actor=OP,
                    at=clock,
                    expected_version=inc.version,
                    reason="wrongly joined",
                )
                w.store(out.from_events)
                w.store(out.new_events)
            elif op[0] == "merge" and len(live) >= 2:
                b_id = live[op[2] % len(live)]
                if b_id != a_id:
                    res = decide_merge(
                        inc,
                        w.incidents[b_id],
                        actor=OP,
                        at=clock,
                        expected_merged_version=inc.version,
                        expected_survivor_version=w.incidents[b_id].version,
                        reason="same event",
                    )
                    w.store(res.merged_events)
                    w.store(res.survivor_events)
        # every alarm fed is in exactly one incident, and that incident is not a merged one
        owners: dict[str, list[str]] = {}
        for iid, incident in w.incidents.items():
            for alarm_id in incident.alarm_ids:
                owners.setdefault(alarm_id, []).append(iid)
        assert set(owners) == fed
        assert all(len(v) == 1 for v in owners.values())
        assert all(w.incidents[v[0]].state is not IncidentState.MERGED for v in owners.values())
    for iid, events in w.events.items():
        assert replay(events) == w.incidents[iid]


# --- docs/incidents.md says what the code does ----------------------------------------------------

DOC = Path(__file__).resolve().parents[3] / "docs" / "incidents.md"


def _table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table after ``heading``."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading in line)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # header and separator


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_doc_windows_table_matches_the_default_rules() -> None:
    rows = _table_after("Windows and compatibility by incident type")
    assert {_ticked(r[0])[0] for r in rows} == {t.value for t in IncidentType}
    for name, zh, distance, window, joins in rows:
        itype = IncidentType(_ticked(name)[0])
        rule = RULES.types[itype]
        assert zh == i18n.text("zh_CN", f"type.{itype}")
        assert float(distance) == rule.distance_m, name
        assert float(window.removesuffix(" min")) * 60 == rule.window_s, name
        assert set(_ticked(joins)) == {str(t) for t in rule.joins}, name


def test_doc_categories_table_matches_the_default_rules() -> None:
    rows = _table_after("Alarm categories")
    documented = set()
    for kind, category, itype, own in rows:
        cat = _ticked(category)[0]
        documented.add((kind, cat))
        rule = RULES.rule_for(kind, cat if cat != "*" else "no-such-category")
        assert rule.incident_type == IncidentType(_ticked(itype)[0]), (kind, cat)
        if own:
            assert set(_ticked(own)) == {str(t) for t in rule.joins}
        else:
            assert rule.joins == RULES.types[rule.incident_type].joins
    assert documented == set(RULES.categories)


def test_doc_override_example_loads() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = CorrelationRules.from_dict(yaml.safe_load(block))
    assert rules.rule_for("call", "fire").distance_m == 300
    assert rules.rule_for("sensor", "smoke").window_s == 600
    assert rules.rule_for("video", "explosion").incident_type is IncidentType.FIRE
    with pytest.raises(RulesError, match=r"types\.fire\.distance_m: Input should be greater than 0"):
        CorrelationRules.from_dict({"types": {"fire": {"distance_m": 0}}})


def test_every_system_reason_is_documented_and_said_in_both_languages() -> None:
    """The codes the system writes on a record (docs/incidents.md §4.1): each listed
    there, each said in zh-CN and English from its parameters, codes in words."""
    docs = (Path(__file__).resolve().parents[3] / "docs" / "incidents.md").read_text(encoding="utf-8")
    sample: dict[str, Param] = {
        "alarm_kind": "video",
        "incident_type": "hazmat_leak",
        "types": "hazmat_leak,fire",
        "incident_id": "INC-9",
        "distance_m": 80,
        "gap_s": 95,
        "within_m": 300,
        "window_s": 600,
        "source": "video/CAM-3",
        "team": "T-FIRE-01",
        "order_id": "ORD-2",
        "row_id": "ROW-5",
        "count": 3,
        "note": "同一处",
    }
    for code, entry in WHY.items():
        assert f"`{code}`" in docs, code
        why = Reason(code, {p: sample[p] for p in entry.params})
        zh, en = render(why, "zh_CN"), render(why, "en")
        assert "{" not in zh + en and "hazmat_leak" not in zh + en, (code, zh, en)
        if "alarm_kind" in entry.params:
            assert "视频（" in zh and "video (" in en, (code, zh, en)
        assert not any("\u4e00" <= c <= "\u9fff" for c in en.replace("同一处", "")), (code, en)
