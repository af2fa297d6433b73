"""The after-action report from plain inputs: numbers worked out by hand, incidents that
never got dispatched or reached (None, counted as missing, never as 0 s), the checklist
and shortfall of a plan, tracks, and properties over generated histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain import after_action as aa
from command.domain.incidents import (
    Actor,
    Event,
    Incident,
    IncidentState,
    SourceRef,
    apply,
    decide_activate_plan,
    decide_add_note,
    decide_change_level,
    decide_close,
    decide_dispatch,
    decide_merge,
    decide_open,
    decide_resolve,
    decide_team_arrived,
    decide_tick_checklist,
    decide_verify,
)
from command.domain.kpi import compute_kpis
from command.domain.plans import activate, load_plans
from command.domain.vocabulary import IncidentType, ResponseLevel, Role
from wuwang.stats import percentile

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 19, 30, tzinfo=CST)
EX = "EX-20261123-1930-chem"
PLANNER = Actor("planner1", Role.PLANNER)
COMMANDER = Actor("commander1", Role.COMMANDER)
L = ResponseLevel


class Build:
    """One exercise incident whose first alarm is at ``start``; commands at chosen
    seconds after it."""

    def __init__(
        self, iid: str, start: datetime, exercise_id: str | None = EX, opened_after: float = 4
    ) -> None:
        self.start = start
        self.actor = PLANNER if exercise_id else Actor("operator1", Role.OPERATOR)
        source = SourceRef(
            alarm_id=f"a-{iid}", kind="call", source="police/sys110", category="fire", ts=start
        )
        self.events: list[Event] = decide_open(
            iid,
            incident_type=IncidentType.HAZMAT_LEAK,
            level=L.IV,
            title=f"演练 {iid}",
            actor=self.actor,
            at=self.at(opened_after),
            source=source,
            lat=32.04,
            lon=112.14,
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

    def verify(self, s: float) -> Build:
        return self.add(decide_verify(self.inc, actor=self.actor, at=self.at(s), expected_version=None))

    def dispatch(self, s: float, team: str = "T1") -> Build:
        return self.add(
            decide_dispatch(
                self.inc,
                team_id=team,
                order_id=f"O-{team}",
                actor=self.actor,
                at=self.at(s),
                expected_version=None,
            )
        )

    def arrive(self, s: float, team: str = "T1") -> Build:
        return self.add(decide_team_arrived(self.inc, team_id=team, actor=self.actor, at=self.at(s)))

    def resolve(self, s: float) -> Build:
        return self.add(decide_resolve(self.inc, actor=self.actor, at=self.at(s), expected_version=None))

    def close(self, s: float) -> Build:
        return self.add(decide_close(self.inc, actor=self.actor, at=self.at(s), expected_version=None))

    def record(self, plan: aa.PlanOutcome | None = None) -> aa.IncidentRecord:
        return aa.IncidentRecord(self.inc, tuple(self.events), plan)


def report(*records: aa.IncidentRecord, **kw: object) -> aa.AfterActionReport:
    return aa.build_report(
        kind="exercise",
        scope_id=EX,
        name="危化品泄漏演练",
        exercise_id=EX,
        records=records,
        **kw,  # type: ignore[arg-type]
    )


def test_a_system_written_reason_is_said_in_the_reports_language() -> None:
    from command.services.report_render import entry_reason

    c = Build("C", T0).dispatch(90)  # verified on dispatch: a coded reason
    r = report(c.record())
    verified = next(e for e in r.log if e.kind == "state_changed" and e.facts.get("to") == "verified")
    assert verified.why is not None and verified.why.code == "dispatch.verified"
    assert entry_reason(verified, "en") == "verified on dispatch"
    assert entry_reason(verified, "zh") == "派遣即立案"
    # an incident's level steps say a coded reason too (the report's "levels" row)
    step = replace(r.incidents[0].levels[0], why=verified.why)
    assert entry_reason(step, "en") == "verified on dispatch"
    typed = replace(verified, why=None, reason="现场确认")  # what a person wrote: as written
    assert entry_reason(typed, "en") == "现场确认"


def test_durations_per_incident_and_percentiles_by_hand() -> None:
    # call processing (alarm → dispatch): 30, 50, 90 s; one never dispatched.
    a = Build("A", T0).verify(10).dispatch(30).arrive(330).resolve(900).close(1000)
    b = Build("B", T0 + timedelta(minutes=1)).verify(20).dispatch(50).arrive(650)
    c = Build("C", T0 + timedelta(minutes=2)).dispatch(90)  # verified on dispatch
    d = Build("D", T0 + timedelta(minutes=3)).verify(5)  # never dispatched
    r = report(a.record(), b.record(), c.record(), d.record())

    rows = {row.incident_id: row for row in r.incidents}
    assert [row.incident_id for row in r.incidents] == ["A", "B", "C", "D"]  # by first alarm
    assert rows["A"].call_processing_s == 30
    assert rows["A"].time_to_dispatch_s == 20  # verified at 10 s, dispatched at 30 s
    assert rows["A"].time_to_on_scene_s == 300
    assert rows["A"].response_s == 330
    assert rows["A"].closed_at == a.at(1000) and rows["A"].resolved_at == a.at(900)
    assert rows["C"].time_to_dispatch_s == 0  # verified and dispatched in one act
    assert rows["C"].time_to_on_scene_s is None and rows["C"].response_s is None
    assert rows["D"].call_processing_s is None and rows["D"].first_dispatch_at is None

    k = r.kpis
    assert (k.incidents, k.dispatched, k.reached, k.closed) == (4, 3, 2, 1)
    cp = k.call_processing
    assert (cp.count, cp.missing, cp.missing_ids) == (3, 1, ("D",))
    assert cp.p50_s == 50 and cp.max_s == 90
    assert cp.p90_s == pytest.approx(50 + 0.8 * 40)  # h = 2·0.9 = 1.8
    assert cp.p99_s == pytest.approx(50 + 0.98 * 40)
    # NFPA 1225: 2 of 3 within 60 s → 67 % < 90 %: missed
    assert (k.nfpa_1225.within_target, k.nfpa_1225.met) == (2, False)
    assert k.nfpa_1225.share_within_target == pytest.approx(2 / 3)
    assert k.nfpa_1225.target_s == 60 and k.nfpa_1225.target_share == 0.9
    assert k.time_to_on_scene.count == 2 and k.time_to_on_scene.missing_ids == ("C", "D")
    assert k.time_to_on_scene.p50_s == 450  # mean of 300 and 600
    assert k.response.missing == 2
    assert k.time_to_dispatch.missing_ids == ("D",)
    assert k.closure_rate == pytest.approx(1 / 4)


def test_call_processing_agrees_with_the_live_kpi() -> None:
    builds = [
        Build(f"I{i}", T0 + timedelta(minutes=i)).dispatch(s) for i, s in enumerate((12, 45, 61, 200, 59))
    ]
    r = report(*(b.record() for b in builds))
    live = compute_kpis(
        [b.inc for b in builds], window_start=T0, window_end=T0 + timedelta(hours=1), exercise_id=EX
    )
    assert r.kpis.call_processing.p50_s == live.call_processing.p50_s
    assert r.kpis.call_processing.p90_s == live.call_processing.p90_s
    assert r.kpis.nfpa_1225.within_target == live.call_processing.within_target == 3
    assert r.kpis.nfpa_1225.met is live.call_processing.met is False


def test_nfpa_met_when_nine_of_ten_within_sixty_seconds() -> None:
    builds = [Build(f"I{i}", T0 + timedelta(minutes=i)).dispatch(61 if i == 0 else 60) for i in range(10)]
    k = report(*(b.record() for b in builds)).kpis
    assert k.nfpa_1225.within_target == 9 and k.nfpa_1225.met is True


def test_nothing_dispatched_gives_none_not_zero() -> None:
    r = report(Build("A", T0).record(), Build("B", T0).verify(3).record())
    k = r.kpis
    assert k.call_processing.count == 0 and k.call_processing.missing == 2
    assert k.call_processing.p50_s is None and k.call_processing.p99_s is None
    assert k.nfpa_1225.share_within_target is None and k.nfpa_1225.met is None
    assert k.checklist == aa.ChecklistCompletion(0, 0) and k.checklist.share is None


def test_empty_report_has_no_span() -> None:
    r = report()
    assert r.scope.start is None and r.scope.end is None and r.incidents == () and r.log == ()
    widened = report(span=(T0, T0 + timedelta(hours=1)))
    assert (widened.scope.start, widened.scope.end) == (T0, T0 + timedelta(hours=1))


def test_level_history_and_event_log() -> None:
    b = Build("A", T0).verify(10)
    b.add(
        decide_change_level(
            b.inc, level=L.II, actor=COMMANDER, at=b.at(20), expected_version=None, reason="扩散"
        )
    )
    b.add(decide_add_note(b.inc, text="现场风向东南", actor=PLANNER, at=b.at(25), expected_version=None))
    r = report(b.record())
    row = r.incidents[0]
    assert [(s.level, s.by) for s in row.levels] == [(L.IV, "planner1"), (L.II, "commander1")]
    assert row.levels[1].reason == "扩散" and row.level is L.II
    assert [e.kind for e in r.log] == ["opened", "state_changed", "level_changed", "note_added"]
    assert r.log[2].facts == {"from": "IV", "to": "II"} and r.log[2].role == "commander"
    assert r.log[2].reason == "扩散"
    assert r.log[3].facts["text"] == "现场风向东南"
    assert (r.scope.start, r.scope.end) == (T0, b.at(25))  # first alarm … last event


def test_log_interleaves_incidents_in_time_order() -> None:
    a = Build("A", T0).verify(10).dispatch(100)
    b = Build("B", T0 + timedelta(seconds=20)).verify(30)
    r = report(a.record(), b.record())
    assert [(e.incident_id, e.kind) for e in r.log] == [
        ("A", "opened"),
        ("A", "state_changed"),
        ("B", "opened"),
        ("B", "state_changed"),
        ("A", "team_dispatched"),
        ("A", "state_changed"),
    ]
    assert len(r.log) == len(a.events) + len(b.events)
    kinds = [(m.incident_id, m.what) for m in r.milestones]
    assert kinds[:2] == [("A", "alarm"), ("A", "opened")] and ("A", "dispatched") in kinds


@pytest.fixture(scope="module")
def hazmat_plan() -> object:
    return load_plans("command/plans").get("hazmat_leak")


def test_checklist_completion_and_shortfall(hazmat_plan: object) -> None:
    from command.domain.plans import Plan

    assert isinstance(hazmat_plan, Plan)
    b = Build("A", T0).verify(10)
    b.add(
        decide_activate_plan(
            b.inc,
            plan_id=hazmat_plan.id,
            plan_version=1,
            level=L.IV,
            actor=PLANNER,
            at=b.at(15),
            expected_version=None,
        )
    )
    act = activate(hazmat_plan, L.IV)
    first, second = act.checklist[0].id, act.checklist[1].id
    for item, s in ((first, 20), (second, 25)):
        b.add(
            decide_tick_checklist(
                b.inc, plan_id=hazmat_plan.id, item_id=item, actor=PLANNER, at=b.at(s), expected_version=None
            )
        )
    from command.domain.plans import tick

    act = tick(tick(act, first, "planner1", b.at(20)), second, "planner1", b.at(25))
    required = act.requirements
    assert required.teams, "the hazmat plan at level IV asks for teams"
    need = required.teams[0]
    plan = aa.PlanOutcome(
        hazmat_plan.id,
        hazmat_plan.title_zh,
        hazmat_plan.title_en,
        act,
        teams_by_type={need.type.value: need.count - 1},
        supplies={},
    )
    r = report(b.record(plan))
    row = r.incidents[0]
    assert row.plan_id == hazmat_plan.id
    assert row.checklist == aa.ChecklistCompletion(2, len(act.checklist))
    assert r.kpis.checklist == row.checklist
    team_line = next(s for s in r.kpis.shortfalls if s.kind == "team" and s.key == need.type.value)
    assert (team_line.required, team_line.have, team_line.missing) == (need.count, need.count - 1, 1)
    supply_lines = [s for s in r.kpis.shortfalls if s.kind == "supply"]
    assert [s.key for s in supply_lines] == [s.item for s in required.supplies]  # none held
    assert all(s.have == 0 for s in supply_lines)


def test_tracks_are_sorted_and_measured() -> None:
    pts = [aa.TrackPoint(T0 + timedelta(seconds=s), 32.0 + s * 1e-4, 112.0) for s in (20, 0, 10)]
    r = report(tracks={"T2": [], "T1": pts})
    assert [t.team_id for t in r.tracks] == ["T1", "T2"]
    t1 = r.tracks[0]
    assert [p.at for p in t1.points] == sorted(p.at for p in pts)
    assert t1.distance_m == pytest.approx(222.4, rel=0.01)  # 0.002° of latitude
    assert r.tracks[1].distance_m == 0


def test_merged_incidents_are_not_rows_but_their_events_are_logged() -> None:
    a = Build("A", T0).verify(10)
    b = Build("B", T0 + timedelta(seconds=5)).verify(12)
    merge = decide_merge(
        b.inc,
        a.inc,
        actor=PLANNER,
        at=a.at(30),
        expected_merged_version=None,
        expected_survivor_version=None,
        reason="同一起",
    )
    b.add(merge.merged_events)
    a.add(merge.survivor_events)
    assert b.inc.state is IncidentState.MERGED
    r = report(a.record(), b.record())
    assert [row.incident_id for row in r.incidents] == ["A"]
    assert r.kpis.incidents == 1
    assert {e.incident_id for e in r.log} == {"A", "B"}
    assert any(e.kind == "merged_into" and e.facts["into"] == "A" for e in r.log)


def test_live_and_exercise_never_mix() -> None:
    live = Build("L", T0, exercise_id=None)
    with pytest.raises(ValueError, match="not of"):
        report(live.record())
    only_live = aa.build_report(
        kind="incident", scope_id="L", name="x", exercise_id=None, records=[live.record()]
    )
    assert only_live.scope.exercise_id is None and only_live.kpis.incidents == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3600),  # first alarm, s after T0
            st.one_of(st.none(), st.integers(min_value=0, max_value=600)),  # dispatch after alarm
            st.one_of(st.none(), st.integers(min_value=0, max_value=1800)),  # arrival after dispatch
        ),
        max_size=12,
    )
)
def test_properties_over_generated_exercises(
    plan: list[tuple[int, int | None, int | None]],
) -> None:
    builds = []
    for i, (start, disp, arrive) in enumerate(plan):
        b = Build(f"I{i:02}", T0 + timedelta(seconds=start), opened_after=0)
        if disp is not None:
            b.dispatch(disp)
            if arrive is not None:
                b.arrive(disp + arrive)
        builds.append(b)
    r = report(*(b.record() for b in builds))
    k = r.kpis
    dispatched = [d for _, d, _ in plan if d is not None]
    reached = [d + a for _, d, a in plan if d is not None and a is not None]
    assert k.incidents == len(plan)
    assert k.call_processing.count + k.call_processing.missing == len(plan)
    assert k.call_processing.count == len(dispatched) == k.dispatched
    assert k.time_to_on_scene.count == len(reached) == k.reached
    assert k.response.count == len(reached)
    if dispatched:
        assert k.call_processing.p50_s == pytest.approx(percentile([float(d) for d in dispatched], 50))
        assert (
            k.call_processing.p50_s  # type: ignore[operator]
            <= k.call_processing.p90_s
            <= k.call_processing.p99_s
            <= k.call_processing.max_s
        )
        within = sum(1 for d in dispatched if d <= 60)
        assert k.nfpa_1225.within_target == within
        assert k.nfpa_1225.met is (within / len(dispatched) >= 0.9)
    else:
        assert k.call_processing.p50_s is None and k.nfpa_1225.met is None
    if reached:
        assert k.response.max_s == max(reached)
    assert len(r.log) == sum(len(b.events) for b in builds)
    assert [e.at for e in r.log] == sorted(e.at for e in r.log)
    assert all(r.scope.start <= m.at <= r.scope.end for m in r.milestones)  # type: ignore[operator]
