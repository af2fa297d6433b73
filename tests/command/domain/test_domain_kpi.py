"""KPIs from the incident record, against numbers worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.domain.incidents import (
    Actor,
    Event,
    Incident,
    IncidentState,
    SourceRef,
    apply,
    decide_cancel,
    decide_close,
    decide_dispatch,
    decide_false_alarm,
    decide_merge,
    decide_open,
    decide_resolve,
    decide_team_arrived,
)
from command.domain.kpi import (
    NFPA_1225_TARGET_S,
    call_processing_s,
    compute_kpis,
    incidents_as_of,
    open_by_level,
    time_to_on_scene_s,
)
from command.domain.vocabulary import IncidentType, ResponseLevel, Role
from wuwang.stats import percentile

CST = timezone(timedelta(hours=8))
DAY = datetime(2024, 8, 1, 0, 0, tzinfo=CST)
T0 = DAY + timedelta(hours=9)
OP = Actor("operator1", Role.OPERATOR)
L = ResponseLevel


class Build:
    """One incident, with every command at a chosen number of seconds after ``start``."""

    def __init__(
        self, iid: str, start: datetime, level: ResponseLevel = L.IV, exercise_id: str | None = None
    ) -> None:
        self.start = start
        source = SourceRef(
            alarm_id=f"a-{iid}", kind="call", source="police/sys110", category="fire", ts=start
        )
        self.events: list[Event] = decide_open(
            iid,
            incident_type=IncidentType.FIRE,
            level=level,
            title=iid,
            actor=OP,
            at=start + timedelta(seconds=5),
            source=source,
            exercise_id=exercise_id,
        )
        self.inc: Incident = apply(None, self.events[0])

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def add(self, events: list[Event] | tuple[Event, ...]) -> Build:
        for e in events:
            self.inc = apply(self.inc, e)
        self.events.extend(events)
        return self

    def dispatch(self, s: float) -> Build:
        return self.add(
            decide_dispatch(
                self.inc, team_id="T1", order_id="O1", actor=OP, at=self.at(s), expected_version=None
            )
        )

    def arrive(self, s: float) -> Build:
        return self.add(decide_team_arrived(self.inc, team_id="T1", actor=OP, at=self.at(s)))

    def resolve(self, s: float) -> Build:
        return self.add(decide_resolve(self.inc, actor=OP, at=self.at(s), expected_version=None))

    def close(self, s: float) -> Build:
        return self.add(decide_close(self.inc, actor=OP, at=self.at(s), expected_version=None))


def city_day() -> dict[str, Build]:
    b: dict[str, Build] = {}
    b["A"] = Build("A", T0, L.III).dispatch(30).arrive(330).resolve(2000).close(4000)
    b["B"] = Build("B", T0 + timedelta(hours=1)).dispatch(45).arrive(465).resolve(3000)
    b["C"] = Build("C", T0 + timedelta(hours=2)).dispatch(60).arrive(660).resolve(1000).close(1200)
    b["D"] = Build("D", T0 + timedelta(hours=3)).dispatch(90)
    b["D"].add(
        decide_false_alarm(b["D"].inc, actor=OP, at=b["D"].at(400), expected_version=None, reason="no fire")
    )
    b["E"] = Build("E", T0 + timedelta(hours=4), L.II).dispatch(200)
    b["F"] = Build("F", T0 + timedelta(hours=5))
    b["F"].add(
        decide_cancel(b["F"].inc, actor=OP, at=b["F"].at(60), expected_version=None, reason="withdrawn")
    )
    b["G"] = Build("G", T0 + timedelta(hours=6), L.I)
    b["H"] = Build("H", T0 + timedelta(hours=6, minutes=1))
    merge = decide_merge(
        b["H"].inc,
        b["G"].inc,
        actor=OP,
        at=b["H"].at(30),
        expected_merged_version=None,
        expected_survivor_version=None,
        reason="duplicate",
    )
    b["H"].add(merge.merged_events)
    b["G"].add(merge.survivor_events)
    b["X"] = Build("X", T0, exercise_id="EX-1").dispatch(5)
    b["O"] = Build("O", DAY - timedelta(hours=3))  # opened the day before, still open
    return b


def test_kpis_for_a_day_by_hand() -> None:
    incidents = [b.inc for b in city_day().values()]
    report = compute_kpis(incidents, window_start=DAY, window_end=DAY + timedelta(days=1))
    assert report.incidents == 7  # A..G; H merged, X exercise, O before the window

    cp = report.call_processing
    # A 30, B 45, C 60, D 90, E 200 (the false alarm was dispatched: it counts)
    assert cp.count == 5
    assert cp.p50_s == 60.0
    assert cp.p90_s == pytest.approx(90 + 0.6 * (200 - 90))  # h = 4·0.9 = 3.6 → 156 s
    assert (cp.within_target, cp.share_within_target) == (3, 0.6)
    assert cp.target_s == NFPA_1225_TARGET_S == 60 and cp.target_share == 0.9
    assert cp.met is False

    os_ = report.time_to_on_scene  # A 300, B 420, C 600
    assert (os_.count, os_.p50_s) == (3, 420.0)
    assert os_.p90_s == pytest.approx(420 + 0.8 * 180)  # h = 2·0.9 = 1.8 → 564 s

    # counted: A B C E G (D false alarm, F cancelled, H merged left out); closed: A C
    assert (report.closure.closed, report.closure.counted, report.closure.rate) == (2, 5, 0.4)

    # open now: B (resolved, 待核查) IV, E II, G I, O IV
    assert dict(report.open_by_level) == {L.I: 1, L.II: 1, L.III: 0, L.IV: 2}


def test_exercise_incidents_only_when_asked() -> None:
    incidents = [b.inc for b in city_day().values()]
    report = compute_kpis(incidents, window_start=DAY, window_end=DAY + timedelta(days=1), exercise_id="EX-1")
    assert report.incidents == 1
    assert (report.call_processing.count, report.call_processing.p50_s, report.call_processing.met) == (
        1,
        5.0,
        True,
    )
    assert report.closure.rate == 0.0
    assert dict(report.open_by_level) == {L.I: 0, L.II: 0, L.III: 0, L.IV: 1}
    assert open_by_level(incidents)[L.IV] == 2


def test_an_empty_window() -> None:
    report = compute_kpis([], window_start=DAY, window_end=DAY + timedelta(hours=1))
    assert report.call_processing.met is None and report.call_processing.p50_s is None
    assert report.closure.rate is None and report.time_to_on_scene.count == 0
    with pytest.raises(ValueError, match="after"):
        compute_kpis([], window_start=DAY, window_end=DAY)


def test_target_is_a_parameter() -> None:
    incidents = [b.inc for b in city_day().values()]
    report = compute_kpis(
        incidents, window_start=DAY, window_end=DAY + timedelta(days=1), target_s=90, target_share=0.8
    )
    assert report.call_processing.share_within_target == 0.8 and report.call_processing.met is True


def test_durations_per_incident() -> None:
    b = city_day()
    assert call_processing_s(b["A"].inc) == 30 and time_to_on_scene_s(b["A"].inc) == 300
    assert call_processing_s(b["G"].inc) is None and time_to_on_scene_s(b["E"].inc) is None
    # an alarm whose device clock is ahead of the dispatcher's counts as 0 s, not negative
    late = Build("L", T0 + timedelta(minutes=5))
    late.add(decide_dispatch(late.inc, team_id="T1", order_id="O", actor=OP, at=T0, expected_version=None))
    assert call_processing_s(late.inc) == 0.0


def test_incidents_as_of_a_past_moment() -> None:
    b = city_day()
    histories = [x.events for x in b.values()]
    then = incidents_as_of(histories, T0 + timedelta(seconds=100))
    by_id = {i.incident_id: i for i in then}
    assert set(by_id) == {"A", "X", "O"}  # B..H were opened later
    assert by_id["A"].state is IncidentState.DISPATCHED and by_id["A"].first_on_scene_at is None
    assert dict(open_by_level(then)) == {L.I: 0, L.II: 0, L.III: 1, L.IV: 1}


# --- the percentile method ------------------------------------------------------------------------


def test_percentile_by_hand() -> None:
    assert percentile([10], 90) == 10
    assert percentile([10, 20], 50) == 15
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile([4, 1, 3, 2], 0) == 1 and percentile([4, 1, 3, 2], 100) == 4
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1], 101)


@given(st.lists(st.floats(0, 1e5), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpys_default(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-6)
