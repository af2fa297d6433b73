"""Incidents: transitions, roles, versions, replay, serialisation, split/merge, and a
hypothesis state machine over random command sequences."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from command.domain.incidents import (
    EVENT_KINDS,
    HOLDABLE_STATES,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Actor,
    DomainError,
    Event,
    Forbidden,
    Held,
    IllegalTransition,
    Incident,
    IncidentState,
    InvalidCommand,
    InvalidHistory,
    Opened,
    Resumed,
    SourceLinked,
    SourceRef,
    StaleVersion,
    StateChanged,
    apply,
    decide_activate_plan,
    decide_add_note,
    decide_cancel,
    decide_change_level,
    decide_close,
    decide_dispatch,
    decide_false_alarm,
    decide_hold,
    decide_link_source,
    decide_merge,
    decide_open,
    decide_reclassify,
    decide_release_team,
    decide_reopen,
    decide_resolve,
    decide_resume,
    decide_split,
    decide_team_acknowledged,
    decide_team_arrived,
    decide_team_en_route,
    decide_tick_checklist,
    decide_verify,
    event_from_record,
    replay,
)
from command.domain.vocabulary import IncidentType, ResponseLevel, Role

CST = timezone(timedelta(hours=8))
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=CST)
OP = Actor("operator1", Role.OPERATOR)
CMD = Actor("commander1", Role.COMMANDER)
ADMIN = Actor("admin1", Role.ADMIN)
PLANNER = Actor("planner1", Role.PLANNER)
SYSTEM = Actor("correlator", Role.SYSTEM)
FIELD_T1 = Actor("T1", Role.FIELD, team_id="T1")
FIELD_T2 = Actor("T2", Role.FIELD, team_id="T2")
S = IncidentState


def src(n: int, minutes: float = 0.0, *, source: str = "police/sys110", lat: float = 32.05) -> SourceRef:
    return SourceRef(
        alarm_id=f"{source}#{n}",
        kind="call",
        source=source,
        category="fire",
        ts=T0 + timedelta(minutes=minutes),
        lat=lat,
        lon=112.14,
        summary=f"call {n}",
    )


class Story:
    """An incident together with its full event list, advanced command by command."""

    def __init__(
        self, incident_id: str = "INC-1", exercise_id: str | None = None, n_sources: int = 1
    ) -> None:
        self.events: list[Event] = decide_open(
            incident_id,
            incident_type=IncidentType.FIRE,
            level=ResponseLevel.IV,
            title="幸福路火灾",
            actor=SYSTEM,
            at=T0,
            source=src(1, source=f"src-{incident_id}"),
            exercise_id=exercise_id,
        )
        self.inc = replay(self.events)
        self.clock = T0
        for n in range(2, n_sources + 1):
            self.do(decide_link_source, src(n, n, source=f"src-{incident_id}"), actor=SYSTEM)

    def now(self) -> datetime:
        self.clock += timedelta(seconds=30)
        return self.clock

    def do(self, fn: Callable[..., list[Event]], *args: Any, actor: Actor = OP, **kw: Any) -> list[Event]:
        kw.setdefault("expected_version", self.inc.version)
        events = fn(self.inc, *args, actor=actor, at=self.now(), **kw)
        self.add(events)
        return events

    def add(self, events: Any) -> None:
        for e in events:
            self.inc = apply(self.inc, e)
        self.events.extend(events)


def story_in(state: IncidentState, exercise_id: str | None = None) -> Story:
    """An incident brought to ``state`` along the usual path (team T1 on it if it got that far)."""
    s = Story(exercise_id=exercise_id, n_sources=2)
    if state is S.NEW:
        return s
    if state in (S.CANCELLED, S.FALSE_ALARM):
        fn = decide_cancel if state is S.CANCELLED else decide_false_alarm
        s.do(fn, reason="caller withdrew")
        return s
    if state is S.MERGED:
        other = Story("INC-9", exercise_id=exercise_id)
        result = decide_merge(
            s.inc,
            other.inc,
            actor=OP,
            at=s.now(),
            expected_merged_version=s.inc.version,
            expected_survivor_version=other.inc.version,
            reason="duplicate",
        )
        s.add(result.merged_events)
        return s
    s.do(decide_verify)
    if state is S.VERIFIED:
        return s
    s.do(decide_dispatch, team_id="T1", order_id="O1")
    if state is S.DISPATCHED:
        return s
    s.do(decide_team_arrived, team_id="T1")
    if state is S.ON_SCENE:
        return s
    s.do(decide_resolve)
    if state is S.RESOLVED:
        return s
    s.do(decide_close)
    assert state is S.CLOSED
    return s


# --- every command in every state -------------------------------------------------------

COMMANDS: dict[str, Callable[[Story], list[Event]]] = {
    "verify": lambda s: s.do(decide_verify),
    "dispatch": lambda s: s.do(decide_dispatch, team_id="T2", order_id="O2"),
    "arrive": lambda s: s.do(decide_team_arrived, team_id="T1"),
    "resolve": lambda s: s.do(decide_resolve),
    "reopen": lambda s: s.do(decide_reopen, reason="核查未通过"),
    "close": lambda s: s.do(decide_close),
    "cancel": lambda s: s.do(decide_cancel, reason="caller withdrew"),
    "false_alarm": lambda s: s.do(decide_false_alarm, reason="nothing there"),
    "release": lambda s: s.do(decide_release_team, team_id="T1", reason="needed elsewhere"),
}

# state -> command -> resulting state, or the fragment the refusal must contain
LEGAL: dict[IncidentState, dict[str, IncidentState | str]] = {
    S.NEW: {
        "verify": S.VERIFIED,
        "dispatch": S.DISPATCHED,
        "arrive": "T1 was not dispatched",
        "resolve": "new → resolved is not allowed",
        "reopen": "new → on_scene is not allowed",
        "close": "new → closed is not allowed",
        "cancel": S.CANCELLED,
        "false_alarm": S.FALSE_ALARM,
        "release": "team T1 is not on incident",
    },
    S.VERIFIED: {
        "verify": "only a new incident can be verified",
        "dispatch": S.DISPATCHED,
        "arrive": "T1 was not dispatched",
        "resolve": "verified → resolved is not allowed",
        "reopen": "verified → on_scene",
        "close": "verified → closed",
        "cancel": S.CANCELLED,
        "false_alarm": S.FALSE_ALARM,
        "release": "team T1 is not on incident",
    },
    S.DISPATCHED: {
        "verify": "only a new incident can be verified",
        "dispatch": S.DISPATCHED,
        "arrive": S.ON_SCENE,
        "resolve": "dispatched → resolved",
        "reopen": "dispatched → on_scene",
        "close": "dispatched → closed",
        "cancel": S.CANCELLED,
        "false_alarm": S.FALSE_ALARM,
        "release": S.VERIFIED,
    },
    S.ON_SCENE: {
        "verify": "only a new incident can be verified",
        "dispatch": S.ON_SCENE,
        "arrive": S.ON_SCENE,
        "resolve": S.RESOLVED,
        "reopen": "on_scene → on_scene",
        "close": "on_scene → closed",
        "cancel": "on_scene → cancelled",
        "false_alarm": S.FALSE_ALARM,
        "release": S.ON_SCENE,
    },
    S.RESOLVED: {
        "verify": "only a new incident can be verified",
        "dispatch": "reopen it first",
        "arrive": S.RESOLVED,
        "resolve": "resolved → resolved",
        "reopen": S.ON_SCENE,
        "close": S.CLOSED,
        "cancel": "resolved → cancelled",
        "false_alarm": "resolved → false_alarm",
        "release": S.RESOLVED,
    },
}
for _terminal in TERMINAL_STATES:
    LEGAL[_terminal] = dict.fromkeys(COMMANDS, "takes no further changes")
# A repeated arrival of a team already on scene is not a transition but a harmless repeat.
IDEMPOTENT = {(S.ON_SCENE, "arrive"), (S.RESOLVED, "arrive")}


@pytest.mark.parametrize(
    ("state", "command"), [(st_, c) for st_ in IncidentState for c in COMMANDS], ids=lambda v: str(v)
)
def test_every_command_in_every_state(state: IncidentState, command: str) -> None:
    s = story_in(state)
    assert s.inc.state is state
    expected = LEGAL[state][command]
    before = s.inc
    if isinstance(expected, IncidentState):
        events = COMMANDS[command](s)
        assert s.inc.state is expected
        assert (events == []) == ((state, command) in IDEMPOTENT)
        assert replay(s.events) == s.inc
    else:
        with pytest.raises(IllegalTransition) as err:
            COMMANDS[command](s)
        assert expected in err.value.reason
        assert s.inc == before


def test_terminal_refusal_names_the_state_in_chinese() -> None:
    s = story_in(S.CLOSED)
    with pytest.raises(IllegalTransition, match="is closed and takes no further changes"):
        s.do(decide_add_note, text="late")


def test_transition_table_is_closed_under_terminal_states() -> None:
    for state in TERMINAL_STATES:
        assert TRANSITIONS[state] == frozenset()
    assert S.MERGED not in set().union(*TRANSITIONS.values())  # reached only through a merge
    assert set(IncidentState) == OPEN_STATES | TERMINAL_STATES


def test_dispatch_on_new_records_verification_first() -> None:
    s = Story()
    events = s.do(decide_dispatch, team_id="T1", order_id="O1", reason="clear fire call")
    assert [e.kind for e in events] == ["state_changed", "team_dispatched", "state_changed"]
    assert [e.seq for e in events] == [2, 3, 4]
    assert events[0].data == StateChanged(from_state=S.NEW, to_state=S.VERIFIED)
    # a system-written reason: a code the readers show in their language, and its text
    assert events[0].reason_code == "dispatch.verified" and events[0].reason == "派遣即立案"
    assert s.inc.verified_at == s.inc.first_dispatch_at == events[0].at


def test_reinforcements_and_recall() -> None:
    s = story_in(S.DISPATCHED)
    s.do(decide_dispatch, team_id="T2", order_id="O2")
    s.do(decide_release_team, team_id="T1", reason="needed elsewhere")
    assert s.inc.state is S.DISPATCHED and s.inc.active_team_ids == ("T2",)
    events = s.do(decide_release_team, team_id="T2", reason="caller says fire is out")
    assert [e.kind for e in events] == ["team_released", "state_changed"]
    assert replay(s.events).state is S.VERIFIED and events[1].reason_code == "release.all_recalled"
    # dispatched again later: a second assignment of the same team; first dispatch time is kept
    first = s.inc.first_dispatch_at
    s.do(decide_dispatch, team_id="T1", order_id="O3")
    assert s.inc.first_dispatch_at == first and [t.order_id for t in s.inc.teams] == ["O1", "O2", "O3"]


def test_ending_an_incident_releases_its_teams() -> None:
    s = story_in(S.DISPATCHED)
    events = s.do(decide_cancel, reason="caller withdrew")
    assert [e.kind for e in events] == ["team_released", "state_changed"]
    assert s.inc.active_teams == () and s.inc.ended_at == events[-1].at
    s = story_in(S.RESOLVED)
    events = s.do(decide_close)
    assert [e.kind for e in events] == ["team_released", "state_changed"]
    assert s.inc.closed_at == s.inc.ended_at == events[-1].at


def test_reopen_clears_resolved_at() -> None:
    s = story_in(S.RESOLVED)
    assert s.inc.resolved_at is not None
    s.do(decide_reopen, reason="核查: smoke again")
    assert s.inc.resolved_at is None and s.inc.state is S.ON_SCENE


def test_timestamps_for_kpis() -> None:
    s = Story(n_sources=3)
    s.do(decide_dispatch, team_id="T1", order_id="O1")
    s.do(decide_team_arrived, team_id="T1", actor=FIELD_T1, expected_version=None)
    inc = s.inc
    assert inc.first_alarm_at == T0 and inc.latest_alarm_at == T0 + timedelta(minutes=3)
    assert inc.first_dispatch_at == T0 + timedelta(seconds=90)
    assert inc.first_on_scene_at == T0 + timedelta(seconds=120)


# --- reasons required, malformed commands --------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.do(decide_cancel, reason=None),
        lambda s: s.do(decide_false_alarm, reason="  "),
        lambda s: s.do(decide_change_level, level=ResponseLevel.II, reason=None, actor=CMD),
        lambda s: s.do(decide_reclassify, incident_type=IncidentType.HIGH_RISE_FIRE, reason=None),
        lambda s: s.do(decide_add_note, text=""),
    ],
)
def test_missing_reason_or_text_is_refused(call: Callable[[Story], Any]) -> None:
    s = Story()
    with pytest.raises(InvalidCommand):
        call(s)


def test_naive_time_is_refused() -> None:
    s = Story()
    with pytest.raises(InvalidCommand, match="timezone-aware"):
        decide_verify(s.inc, actor=OP, at=datetime(2024, 5, 1, 8, 0), expected_version=1)


def test_open_needs_title_and_whole_coordinates() -> None:
    kw: dict[str, Any] = {
        "incident_type": IncidentType.FIRE,
        "level": ResponseLevel.IV,
        "actor": OP,
        "at": T0,
    }
    with pytest.raises(InvalidCommand, match="title"):
        decide_open("INC-1", title=" ", **kw)
    with pytest.raises(InvalidCommand, match="together"):
        decide_open("INC-1", title="x", lat=32.0, **kw)
    manual = replay(decide_open("INC-1", title="电话报警", lat=32.0, lon=112.0, **kw))
    assert manual.sources == () and manual.first_alarm_at == T0 and (manual.lat, manual.lon) == (32.0, 112.0)


# --- roles -----------------------------------------------------------------------------------


def test_level_change_is_a_commanders_act() -> None:
    s = Story()
    for who in (OP, PLANNER, SYSTEM):
        with pytest.raises(Forbidden, match="only a commander or an admin"):
            s.do(decide_change_level, level=ResponseLevel.II, reason="spreading", actor=who)
    with pytest.raises(Forbidden, match="field users may only record their own team's arrival"):
        s.do(decide_change_level, level=ResponseLevel.II, reason="spreading", actor=FIELD_T1)
    events = s.do(decide_change_level, level=ResponseLevel.II, reason="spreading to 3 floors", actor=CMD)
    assert events[0].data.kind == "level_changed" and events[0].actor_role is Role.COMMANDER
    assert s.inc.level is ResponseLevel.II
    s.do(decide_change_level, level=ResponseLevel.III, reason="contained", actor=ADMIN)
    assert replay(s.events).level is ResponseLevel.III
    with pytest.raises(IllegalTransition, match="already at level III"):
        s.do(decide_change_level, level=ResponseLevel.III, reason="again", actor=CMD)


def test_planners_touch_only_exercise_incidents() -> None:
    live = Story()
    with pytest.raises(Forbidden, match="planners may act only on exercise incidents; INC-1 is a live"):
        live.do(decide_verify, actor=PLANNER)
    with pytest.raises(Forbidden, match="planners may act only on exercise incidents"):
        decide_open(
            "INC-2", incident_type=IncidentType.FIRE, level=ResponseLevel.IV, title="x", actor=PLANNER, at=T0
        )
    drill = Story(exercise_id="EX-1")
    drill.do(decide_verify, actor=PLANNER)
    drill.do(decide_dispatch, team_id="T1", order_id="O1", actor=PLANNER)
    assert drill.inc.state is S.DISPATCHED
    with pytest.raises(Forbidden, match="only a commander"):  # still not a planner's act
        drill.do(decide_change_level, level=ResponseLevel.I, reason="scenario", actor=PLANNER)


def test_field_users_record_only_their_own_teams_arrival() -> None:
    s = story_in(S.DISPATCHED)
    s.do(decide_dispatch, team_id="T2", order_id="O2")
    with pytest.raises(Forbidden, match="only record the arrival of their own team"):
        s.do(decide_team_arrived, team_id="T1", actor=FIELD_T2)
    with pytest.raises(Forbidden, match="field users may only record their own team's arrival"):
        s.do(decide_resolve, actor=FIELD_T1)
    with pytest.raises(Forbidden):
        s.do(decide_team_arrived, team_id="T1", actor=Actor("x", Role.FIELD))  # no team bound
    events = s.do(decide_team_arrived, team_id="T1", actor=FIELD_T1)
    assert [e.kind for e in events] == ["team_arrived", "state_changed"]
    assert s.inc.state is S.ON_SCENE
    # the field network resends: a repeat is harmless, whatever version it carries
    assert s.do(decide_team_arrived, team_id="T1", actor=FIELD_T1, expected_version=1) == []


def test_system_may_open_and_link_only() -> None:
    s = Story()
    assert s.do(decide_link_source, src(5), actor=SYSTEM)[0].kind == "source_linked"
    with pytest.raises(Forbidden, match="role system may not verify"):
        s.do(decide_verify, actor=SYSTEM)


# --- versions and repeats ---------------------------------------------------------------------


def test_stale_version_is_refused_with_both_versions() -> None:
    s = Story()
    s.do(decide_verify)
    with pytest.raises(StaleVersion) as err:
        s.do(decide_dispatch, team_id="T1", order_id="O1", expected_version=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert "reload" in err.value.reason and isinstance(err.value, DomainError)


def test_repeats_are_idempotent() -> None:
    s = Story()
    assert s.do(decide_link_source, src(1, source="src-INC-1"), actor=SYSTEM, expected_version=0) == []
    s.do(decide_dispatch, team_id="T1", order_id="O1")
    assert s.do(decide_dispatch, team_id="T1", order_id="O1", expected_version=0) == []
    with pytest.raises(IllegalTransition, match="already on incident INC-1 \\(order O1\\)"):
        s.do(decide_dispatch, team_id="T1", order_id="O9")


def test_linking_to_a_closed_incident_is_refused() -> None:
    s = story_in(S.CLOSED)
    with pytest.raises(IllegalTransition, match="closed"):
        s.do(decide_link_source, src(7), actor=SYSTEM)


# --- plans and notes ---------------------------------------------------------------------------


def test_plan_activation_and_checklist() -> None:
    s = Story()
    with pytest.raises(IllegalTransition, match="not the active plan"):
        s.do(decide_tick_checklist, plan_id="P-FIRE", item_id="1")
    s.do(decide_activate_plan, plan_id="P-FIRE", plan_version=3, level=ResponseLevel.III)
    s.do(decide_tick_checklist, plan_id="P-FIRE", item_id="1")
    s.do(decide_tick_checklist, plan_id="P-FIRE", item_id="2")
    s.do(decide_tick_checklist, plan_id="P-FIRE", item_id="1", done=False)
    assert s.inc.active_plan is not None and s.inc.active_plan.plan_version == 3
    assert [(c.plan_id, c.item_id) for c in s.inc.checklist] == [("P-FIRE", "2")]
    s.do(decide_add_note, text="  现场风大  ")
    assert s.events[-1].data.kind == "note_added" and s.events[-1].data.text == "现场风大"


def test_plan_activation_records_the_plans_arrival_target() -> None:
    s = Story()
    s.do(
        decide_activate_plan,
        plan_id="P-FIRE",
        plan_version=3,
        level=ResponseLevel.III,
        arrival_target_s=420.0,
    )
    assert s.inc.active_plan is not None and s.inc.active_plan.arrival_target_s == 420.0
    # kept in the event (the record), so a replay gives the same target
    assert replay(s.events).active_plan == s.inc.active_plan
    # a plan without one: none (the console uses its default)
    s.do(decide_activate_plan, plan_id="P-OTHER", plan_version=1, level=ResponseLevel.III)
    assert s.inc.active_plan is not None and s.inc.active_plan.arrival_target_s is None


def test_reclassify() -> None:
    s = Story()
    s.do(decide_reclassify, incident_type=IncidentType.HIGH_RISE_FIRE, reason="18th floor")
    assert s.inc.incident_type is IncidentType.HIGH_RISE_FIRE
    with pytest.raises(IllegalTransition, match="already of type"):
        s.do(decide_reclassify, incident_type=IncidentType.HIGH_RISE_FIRE, reason="again")


# --- split and merge -----------------------------------------------------------------------------


def test_split_moves_one_source_into_a_new_incident() -> None:
    s = Story(exercise_id="EX-1", n_sources=3)
    moved = s.inc.sources[1]
    result = decide_split(
        s.inc,
        alarm_id=moved.alarm_id,
        new_incident_id="INC-2",
        actor=OP,
        at=s.now(),
        expected_version=s.inc.version,
        reason="different building",
        incident_type=IncidentType.MEDICAL,
    )
    s.add(result.from_events)
    new = replay(result.new_events)
    assert moved.alarm_id not in s.inc.alarm_ids and len(s.inc.sources) == 2
    assert new.sources == (moved,) and new.split_from == "INC-1" and new.exercise_id == "EX-1"
    assert new.incident_type is IncidentType.MEDICAL and new.level is s.inc.level
    assert (new.lat, new.lon) == (moved.lat, moved.lon) and new.state is S.NEW
    assert result.from_events[0].data.kind == "source_split"


def test_split_refusals() -> None:
    s = Story(n_sources=1)
    with pytest.raises(IllegalTransition, match="only source"):
        decide_split(
            s.inc,
            alarm_id=s.inc.sources[0].alarm_id,
            new_incident_id="INC-2",
            actor=OP,
            at=s.now(),
            expected_version=1,
            reason="x",
        )
    s = Story(n_sources=2)
    with pytest.raises(IllegalTransition, match="not linked"):
        decide_split(
            s.inc,
            alarm_id="nope",
            new_incident_id="INC-2",
            actor=OP,
            at=s.now(),
            expected_version=s.inc.version,
            reason="x",
        )
    with pytest.raises(InvalidCommand, match="new, different incident id"):
        decide_split(
            s.inc,
            alarm_id=s.inc.sources[0].alarm_id,
            new_incident_id="INC-1",
            actor=OP,
            at=s.now(),
            expected_version=s.inc.version,
            reason="x",
        )


def test_merge_moves_sources_and_teams_and_lifts_the_survivor() -> None:
    a = story_in(S.DISPATCHED)  # T1 on its way
    a.do(decide_team_arrived, team_id="T1")
    b = Story("INC-2", n_sources=2)  # still new
    result = decide_merge(
        a.inc,
        b.inc,
        actor=OP,
        at=a.now(),
        expected_merged_version=a.inc.version,
        expected_survivor_version=b.inc.version,
        reason="same fire",
    )
    a.add(result.merged_events)
    b.add(result.survivor_events)
    assert a.inc.state is S.MERGED and a.inc.sources == () and a.inc.merged_into == "INC-2"
    assert a.inc.active_teams == ()
    assert [e.kind for e in result.survivor_events] == ["absorbed"] + ["state_changed"] * 3
    assert b.inc.state is S.ON_SCENE and b.inc.active_team_ids == ("T1",)
    assert len(b.inc.sources) == 4 and b.inc.absorbed_from == ("INC-1",)
    assert b.inc.first_dispatch_at is not None and b.inc.first_on_scene_at is not None
    assert replay(b.events) == b.inc and replay(a.events) == a.inc


def test_merge_refusals() -> None:
    a, b = Story("INC-1"), Story("INC-2", exercise_id="EX-1")
    kw: dict[str, Any] = {
        "actor": OP,
        "at": T0,
        "expected_merged_version": None,
        "expected_survivor_version": None,
        "reason": "dup",
    }
    with pytest.raises(IllegalTransition, match="exercise incident with a live one"):
        decide_merge(a.inc, b.inc, **kw)
    with pytest.raises(IllegalTransition, match="into itself"):
        decide_merge(a.inc, a.inc, **kw)
    with pytest.raises(StaleVersion):
        decide_merge(a.inc, a.inc, **{**kw, "expected_survivor_version": 5})
    closed = story_in(S.CLOSED)
    with pytest.raises(IllegalTransition, match="takes no further changes"):
        decide_merge(Story("INC-3").inc, closed.inc, **kw)
    with pytest.raises(Forbidden, match="live incident"):
        decide_merge(a.inc, Story("INC-4").inc, **{**kw, "actor": PLANNER})


def test_merge_keeps_a_team_on_both_once() -> None:
    a = story_in(S.DISPATCHED)
    b = Story("INC-2")
    b.do(decide_dispatch, team_id="T1", order_id="O7")
    result = decide_merge(
        a.inc,
        b.inc,
        actor=OP,
        at=a.now(),
        expected_merged_version=None,
        expected_survivor_version=None,
        reason="dup",
    )
    b.add(result.survivor_events)
    assert b.inc.active_team_ids == ("T1",) and b.inc.teams[0].order_id == "O7"


# --- hold (挂起) and resume ---------------------------------------------------------------

HOLDABLE = (S.NEW, S.VERIFIED, S.DISPATCHED, S.ON_SCENE)


def test_the_holdable_states_are_the_open_unresolved_ones() -> None:
    assert frozenset(HOLDABLE) == HOLDABLE_STATES == OPEN_STATES - {S.RESOLVED}


@pytest.mark.parametrize("state", list(IncidentState), ids=str)
def test_hold_is_a_flag_beside_the_state(state: IncidentState) -> None:
    s = story_in(state)
    before = s.inc
    if state in HOLDABLE:
        events = s.do(decide_hold, reason="  等待增援力量  ")
        assert [e.kind for e in events] == ["held"]
        assert s.inc.state is state  # the state does not move
        assert s.inc.held is not None
        assert (s.inc.held.reason, s.inc.held.by, s.inc.held.at) == (
            "等待增援力量",
            "operator1",
            events[0].at,
        )
        assert events[0].reason == "等待增援力量"
        assert replay(s.events) == s.inc
        resumed = s.do(decide_resume)
        assert [e.kind for e in resumed] == ["resumed"] and s.inc.held is None and s.inc.state is state
    else:
        fragment = "only an incident not yet resolved" if state is S.RESOLVED else "takes no further changes"
        with pytest.raises(IllegalTransition, match=fragment):
            s.do(decide_hold, reason="等待")
        assert s.inc == before


def test_hold_needs_a_reason_and_a_fresh_version() -> None:
    s = story_in(S.VERIFIED)
    for reason in (None, "", "   "):
        with pytest.raises(InvalidCommand, match="a reason is required to hold"):
            s.do(decide_hold, reason=reason)
    with pytest.raises(StaleVersion):
        s.do(decide_hold, reason="等待", expected_version=s.inc.version - 1)
    s.do(decide_hold, reason="等待")
    with pytest.raises(StaleVersion):
        s.do(decide_resume, expected_version=s.inc.version - 1)
    assert s.inc.held is not None


def test_hold_and_resume_refuse_repeats() -> None:
    s = story_in(S.DISPATCHED)
    with pytest.raises(IllegalTransition, match="is not held"):
        s.do(decide_resume)
    s.do(decide_hold, reason="等待信息")
    with pytest.raises(IllegalTransition, match="already held"):
        s.do(decide_hold, reason="again")


def test_a_held_incident_keeps_working_and_its_end_ends_the_hold() -> None:
    s = story_in(S.DISPATCHED)
    s.do(decide_hold, reason="等待燃气公司")
    s.do(decide_team_arrived, team_id="T1")  # acts go on while held
    assert s.inc.state is S.ON_SCENE and s.inc.held is not None
    s.do(decide_resolve)
    resolved: Incident = s.inc  # (a fresh name: mypy keeps the narrowing of s.inc.state)
    assert resolved.state is S.RESOLVED and resolved.held is None
    c = story_in(S.NEW)
    c.do(decide_hold, reason="低优先级")
    c.do(decide_cancel, reason="caller withdrew")
    assert c.inc.held is None and replay(c.events) == c.inc


def test_who_may_hold_and_resume() -> None:
    for actor in (OP, CMD, ADMIN):
        s = story_in(S.VERIFIED)
        s.do(decide_hold, reason="等待", actor=actor)
        s.do(decide_resume, actor=actor)
    for actor in (SYSTEM, FIELD_T1, PLANNER):
        s = story_in(S.VERIFIED)
        with pytest.raises(Forbidden):
            s.do(decide_hold, reason="等待", actor=actor)
    drill = story_in(S.VERIFIED, exercise_id="EX-1")
    drill.do(decide_hold, reason="演练：等待", actor=PLANNER)
    drill.do(decide_resume, actor=PLANNER)
    held = story_in(S.VERIFIED)
    held.do(decide_hold, reason="等待")
    with pytest.raises(Forbidden):
        held.do(decide_resume, actor=SYSTEM)


def test_replay_refuses_a_forged_hold() -> None:
    s = story_in(S.NEW)

    def forged(data: Any, reason: str | None) -> Event:
        return Event(
            incident_id="INC-1",
            seq=s.inc.version + 1,
            at=T0,
            actor="x",
            actor_role=Role.OPERATOR,
            reason=reason,
            data=data,
        )

    with pytest.raises(InvalidHistory, match="needs a reason"):
        replay([*s.events, forged(Held(), None)])
    with pytest.raises(InvalidHistory, match="not held"):
        replay([*s.events, forged(Resumed(), None)])


# --- replay and serialisation ------------------------------------------------------------------------


def rich_history() -> list[Event]:
    """A history that uses every event kind."""
    s = Story(n_sources=3)
    s.do(decide_activate_plan, plan_id="P1", plan_version=2, level=ResponseLevel.III)
    s.do(decide_tick_checklist, plan_id="P1", item_id="a")
    s.do(decide_change_level, level=ResponseLevel.III, reason="3 floors", actor=CMD)
    s.do(decide_reclassify, incident_type=IncidentType.HIGH_RISE_FIRE, reason="tower")
    s.do(decide_dispatch, team_id="T1", order_id="O1")
    s.do(decide_dispatch, team_id="T2", order_id="O2")
    s.do(decide_team_acknowledged, team_id="T1", order_id="O1", actor=FIELD_T1)
    s.do(decide_team_en_route, team_id="T1", actor=FIELD_T1)
    s.do(decide_team_arrived, team_id="T1", actor=FIELD_T1)
    s.do(decide_release_team, team_id="T2", reason="not needed")
    s.do(decide_add_note, text="风向东南")
    s.do(decide_hold, reason="等待燃气公司")
    s.do(decide_resume)
    result = decide_split(
        s.inc,
        alarm_id=s.inc.sources[2].alarm_id,
        new_incident_id="INC-5",
        actor=OP,
        at=s.now(),
        expected_version=s.inc.version,
        reason="other building",
    )
    s.add(result.from_events)
    other = Story("INC-7")
    merge = decide_merge(
        other.inc,
        s.inc,
        actor=OP,
        at=s.now(),
        expected_merged_version=None,
        expected_survivor_version=s.inc.version,
        reason="duplicate",
    )
    s.add(merge.survivor_events)
    s.do(decide_resolve)
    s.do(decide_close)
    return [*s.events, *result.new_events, *other.events, *merge.merged_events]


def test_every_event_kind_round_trips_through_json() -> None:
    events = rich_history()
    assert {e.kind for e in events} == set(EVENT_KINDS)
    for event in events:
        record = event.to_record()
        assert set(record) == {"incident_id", "seq", "kind", "at", "actor", "actor_role", "reason", "data"}
        wire = json.loads(json.dumps(record, ensure_ascii=False))
        assert event_from_record(wire) == event
        # as a database row: timestamptz comes back as a datetime (maybe in another zone)
        row = {**wire, "at": event.at.astimezone(UTC)}
        assert event_from_record(row) == event
    # a system-written reason's code travels in the data and comes back as it was
    coded = [e for e in events if e.reason_code is not None]
    assert coded and all(e.to_record()["data"]["reason_code"] == e.reason_code for e in coded)


def test_bad_records_are_refused() -> None:
    record = rich_history()[0].to_record()
    with pytest.raises(InvalidHistory, match="lacks data"):
        event_from_record({k: v for k, v in record.items() if k != "data"})
    with pytest.raises(InvalidHistory, match="unreadable 'opened' event"):
        event_from_record({**record, "data": {**record["data"], "level": 9}})
    with pytest.raises(InvalidHistory, match="unreadable 'exploded' event"):
        event_from_record({**record, "kind": "exploded"})


def test_replay_equals_incremental_fold_and_refuses_bad_histories() -> None:
    s = story_in(S.CLOSED)
    assert replay(s.events) == s.inc and s.inc.version == len(s.events)
    with pytest.raises(InvalidHistory, match="no events"):
        replay([])
    with pytest.raises(InvalidHistory, match="expected seq 3"):
        replay([s.events[0], s.events[1], s.events[3]])
    with pytest.raises(InvalidHistory, match="expected seq 2"):
        replay([s.events[0], s.events[2], s.events[1]])
    with pytest.raises(InvalidHistory, match="does not start at seq 1"):
        replay(s.events[1:])
    with pytest.raises(InvalidHistory, match="must start with an 'opened'"):
        replay([s.events[1].model_copy(update={"seq": 1})])
    with pytest.raises(InvalidHistory, match="another incident"):
        replay([s.events[0], s.events[1].model_copy(update={"incident_id": "INC-X"})])
    forged = Event(
        incident_id="INC-1",
        seq=2,
        at=T0,
        actor="x",
        actor_role=Role.OPERATOR,
        data=StateChanged(from_state=S.NEW, to_state=S.CLOSED),
    )
    with pytest.raises(InvalidHistory, match="new → closed is not a legal transition"):
        replay([s.events[0], forged])
    after_end = s.events[-1].model_copy(update={"seq": len(s.events) + 1})
    with pytest.raises(InvalidHistory, match="already closed"):
        replay([*s.events, after_end])


# --- the state machine, driven at random ------------------------------------------------------------

ACTORS = [OP, OP, OP, CMD, ADMIN, PLANNER, SYSTEM, FIELD_T1, FIELD_T2]
TEAMS = ["T1", "T2", "T3"]
IDS = ["A", "B", "C"]


class IncidentMachine(RuleBasedStateMachine):
    """Random commands by random actors, with right or stale versions, on up to three
    incidents (one of them an exercise), including split and merge. Whatever is refused,
    what is accepted must always be a valid history."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, list[Event]] = {}
        self.incidents: dict[str, Incident] = {}
        self.ended_at_version: dict[str, int] = {}
        self.clock = T0
        self.next_alarm = 0
        self.next_id = 0

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=17)
        return self.clock

    def _source(self) -> SourceRef:
        self.next_alarm += 1
        return src(self.next_alarm, self.next_alarm / 10, source=f"dev-{self.next_alarm % 3}")

    def _store(self, events: list[Event] | tuple[Event, ...]) -> None:
        for e in events:
            self.incidents[e.incident_id] = apply(self.incidents.get(e.incident_id), e)
            self.events.setdefault(e.incident_id, []).append(e)

    def _try(self, thunk: Callable[[], Any]) -> None:
        try:
            out = thunk()
        except DomainError as err:
            if not err.reason:
                raise AssertionError("a refusal without a reason") from err
            return
        if isinstance(out, list):
            self._store(out)
        elif hasattr(out, "from_events"):
            self._store(out.from_events)
            self._store(out.new_events)
        else:
            self._store(out.merged_events)
            self._store(out.survivor_events)

    @precondition(lambda self: sum(i.is_open for i in self.incidents.values()) < 3)
    @rule(exercise=st.sampled_from([None, None, "EX-1"]), actor=st.sampled_from(ACTORS))
    def open_incident(self, exercise: str | None, actor: Actor) -> None:
        self.next_id += 1
        iid = f"I{self.next_id}"
        self._try(
            lambda: decide_open(
                iid,
                incident_type=IncidentType.FIRE,
                level=ResponseLevel.IV,
                title="t",
                actor=actor,
                at=self._tick(),
                source=self._source(),
                exercise_id=exercise,
            )
        )

    def _pick(self, data: st.DataObject) -> Incident | None:
        """Mostly an open incident; sometimes any (to try commands on ended ones)."""
        if not self.incidents:
            return None
        open_ids = sorted(i for i, inc in self.incidents.items() if inc.is_open)
        prefer_open: int = data.draw(st.integers(0, 4))
        pool = open_ids if open_ids and prefer_open else sorted(self.incidents)
        return self.incidents[data.draw(st.sampled_from(pool))]

    def _team(self, data: st.DataObject, inc: Incident) -> str:
        """Mostly a team already on the incident, so arrivals and releases can happen."""
        on_it: bool = data.draw(st.booleans())
        if inc.active_team_ids and on_it:
            return data.draw(st.sampled_from(inc.active_team_ids))
        return data.draw(st.sampled_from(TEAMS))

    @rule(data=st.data(), command=st.sampled_from(["verify", "dispatch", "arrive", "resolve", "close"]))
    def advance(self, data: st.DataObject, command: str) -> None:
        """The usual way forward, by an operator with the right version."""
        inc = self._pick(data)
        if inc is None:
            return
        team = self._team(data, inc)
        actor = FIELD_T1 if command == "arrive" and team == "T1" and data.draw(st.booleans()) else OP
        kw: dict[str, Any] = {"actor": actor, "at": self._tick(), "expected_version": inc.version}
        calls: dict[str, Callable[[], Any]] = {
            "verify": lambda: decide_verify(inc, **kw),
            "dispatch": lambda: decide_dispatch(inc, team_id=team, order_id=f"O-{team}-{inc.version}", **kw),
            "arrive": lambda: decide_team_arrived(inc, team_id=team, **kw),
            "resolve": lambda: decide_resolve(inc, **kw),
            "close": lambda: decide_close(inc, **kw),
        }
        self._try(calls[command])

    def _version(self, data: st.DataObject, inc: Incident) -> int | None:
        return data.draw(st.sampled_from([inc.version] * 4 + [None, max(0, inc.version - 1)]))

    @rule(
        data=st.data(),
        command=st.sampled_from(
            [
                "verify",
                "dispatch",
                "arrive",
                "release",
                "resolve",
                "reopen",
                "close",
                "cancel",
                "false_alarm",
                "level",
                "link",
                "note",
                "plan",
                "hold",
                "resume",
            ]
        ),
    )
    def command(self, data: st.DataObject, command: str) -> None:
        inc = self._pick(data)
        if inc is None:
            return
        actor = data.draw(st.sampled_from(ACTORS))
        team = self._team(data, inc)
        kw: dict[str, Any] = {
            "actor": actor,
            "at": self._tick(),
            "expected_version": self._version(data, inc),
        }
        reason = data.draw(st.sampled_from([None, "because", "because"]))
        calls: dict[str, Callable[[], Any]] = {
            "verify": lambda: decide_verify(inc, **kw),
            "dispatch": lambda: decide_dispatch(inc, team_id=team, order_id=f"O-{team}-{inc.version}", **kw),
            "arrive": lambda: decide_team_arrived(inc, team_id=team, **kw),
            "release": lambda: decide_release_team(inc, team_id=team, reason=reason, **kw),
            "resolve": lambda: decide_resolve(inc, **kw),
            "reopen": lambda: decide_reopen(inc, reason=reason, **kw),
            "close": lambda: decide_close(inc, **kw),
            "cancel": lambda: decide_cancel(inc, reason=reason, **kw),
            "false_alarm": lambda: decide_false_alarm(inc, reason=reason, **kw),
            "level": lambda: decide_change_level(
                inc, level=data.draw(st.sampled_from(list(ResponseLevel))), reason=reason, **kw
            ),
            "link": lambda: decide_link_source(inc, self._source(), **kw),
            "note": lambda: decide_add_note(inc, text="n", **kw),
            "plan": lambda: decide_activate_plan(inc, plan_id="P", plan_version=1, level=inc.level, **kw),
            "hold": lambda: decide_hold(inc, reason=reason, **kw),
            "resume": lambda: decide_resume(inc, **kw),
        }
        self._try(calls[command])

    @rule(data=st.data())
    def split(self, data: st.DataObject) -> None:
        inc = self._pick(data)
        if inc is None or not inc.sources:
            return
        alarm = data.draw(st.sampled_from(inc.alarm_ids))
        self.next_id += 1
        actor = data.draw(st.sampled_from(ACTORS))
        self._try(
            lambda: decide_split(
                inc,
                alarm_id=alarm,
                new_incident_id=f"I{self.next_id}",
                actor=actor,
                at=self._tick(),
                expected_version=self._version(data, inc),
                reason="r",
            )
        )

    @precondition(lambda self: sum(i.is_open for i in self.incidents.values()) >= 2)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        a, b = self._pick(data), self._pick(data)
        if a is None or b is None:
            return
        actor = data.draw(st.sampled_from(ACTORS))
        self._try(
            lambda: decide_merge(
                a,
                b,
                actor=actor,
                at=self._tick(),
                expected_merged_version=a.version,
                expected_survivor_version=self._version(data, b),
                reason="r",
            )
        )

    @invariant()
    def histories_are_valid(self) -> None:
        seen: set[str] = set()
        for iid, inc in self.incidents.items():
            events = self.events[iid]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert replay(events) == inc
            assert inc.state in set(IncidentState)
            for e in events:
                if isinstance(e.data, StateChanged):
                    assert e.data.to_state in TRANSITIONS[e.data.from_state]
            # terminal states stay terminal and take no more events
            if iid in self.ended_at_version:
                assert inc.state in TERMINAL_STATES and inc.version == self.ended_at_version[iid]
            elif inc.state in TERMINAL_STATES:
                self.ended_at_version[iid] = inc.version
            # coherence of state and teams
            if inc.state is S.DISPATCHED:
                assert inc.active_teams
            if inc.state in (S.ON_SCENE, S.RESOLVED):
                assert inc.first_on_scene_at is not None
            if inc.state in TERMINAL_STATES:
                assert inc.active_teams == ()
            # a hold only on an incident still being handled, always with its reason
            if inc.held is not None:
                assert inc.state in HOLDABLE_STATES and inc.held.reason
            if inc.state is S.MERGED:
                assert inc.sources == () and inc.merged_into in self.incidents
            # every alarm in exactly one incident
            for a in inc.alarm_ids:
                assert a not in seen
                seen.add(a)
        assert seen == self._ever_linked()

    def _ever_linked(self) -> set[str]:
        # alarms drawn for a command that was refused never entered any incident
        linked: set[str] = set()
        for events in self.events.values():
            for e in events:
                d = e.data
                if isinstance(d, Opened | SourceLinked) and d.source is not None:
                    linked.add(d.source.alarm_id)
        return linked


IncidentMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestIncidentMachine = IncidentMachine.TestCase


def test_doc_state_table_matches_the_code() -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "incidents.md"
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = lines.index("| From | May go to |")
    table: dict[IncidentState, frozenset[IncidentState]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        frm, to = (c.strip() for c in line.strip().strip("|").split("|"))
        table[IncidentState(frm.strip("`"))] = frozenset(
            IncidentState(t) for t in re.findall(r"`([^`]+)`", to)
        )
    assert table == dict(TRANSITIONS)
