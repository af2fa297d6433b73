"""The planned-event registry (大型活动登记) with plain inputs: what a valid event is,
who may enter and cancel one, and how a registered event becomes triage's risk context."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from command.domain import planned_events as pe
from command.domain.incidents import Actor, Forbidden, IllegalTransition, InvalidCommand
from command.domain.triage import TriageContext, decide
from command.domain.vocabulary import Role
from tests.command.domain.conftest import HOME
from tests.command.domain.test_domain_triage import RULES, T0, alarm

OP = Actor("operator1", Role.OPERATOR)
CMD = Actor("commander1", Role.COMMANDER)
ADMIN = Actor("admin", Role.ADMIN)
PLANNER = Actor("planner1", Role.PLANNER)
FIELD = Actor("T-FIRE-01", Role.FIELD, team_id="T-FIRE-01")


def concert(**changes: Any) -> pe.EventRecord:
    """A concert 2 h long with a 300 m radius centred on HOME, starting at T0."""
    args: dict[str, Any] = {
        "event_id": "PE-TEST-1",
        "name": "  体育中心   演唱会 ",
        "place": "襄阳市体育中心",
        "lat": HOME[0],
        "lon": HOME[1],
        "radius_m": 300.0,
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=2),
        "exercise_id": None,
        "actor": OP,
        "at": T0 - timedelta(days=1),
    }
    args.update(changes)
    return pe.register(**args)


def test_a_registered_event_keeps_its_fields_and_tidies_its_name() -> None:
    event = concert()
    assert event.name == "体育中心 演唱会"
    assert event.state == pe.EventState.SCHEDULED and event.created_by == "operator1"
    assert event.phase(T0 - timedelta(minutes=1)) == "upcoming"
    assert event.phase(T0 + timedelta(hours=1)) == "running"
    assert event.phase(T0 + timedelta(hours=3)) == "ended"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": "   "}, "name must not be empty"),
        ({"name": "演" * 101}, "at most 100"),
        ({"radius_m": 5.0}, "outside 20–5000 m"),
        ({"radius_m": float("nan")}, "outside"),
        ({"lat": 91.0}, "not a point on the map"),
        ({"ends_at": T0}, "ends_at must be after starts_at"),
        ({"ends_at": T0 + timedelta(days=15)}, "at most 14 days"),
        ({"at": T0 + timedelta(hours=3)}, "already over"),
        ({"starts_at": datetime(2026, 12, 7, 14, 0)}, "time zone"),
    ],
)
def test_an_invalid_event_is_refused_with_the_reason(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidCommand, match=words):
        concert(**changes)


@pytest.mark.parametrize(
    ("actor", "exercise_id", "allowed"),
    [
        (OP, None, True),
        (CMD, None, True),
        (ADMIN, None, True),
        (PLANNER, None, False),
        (PLANNER, "EX-1", True),
        (FIELD, None, False),
        (FIELD, "EX-1", False),
    ],
)
def test_who_may_enter_and_cancel_events(actor: Actor, exercise_id: str | None, allowed: bool) -> None:
    if allowed:
        event = concert(actor=actor, exercise_id=exercise_id)
        assert pe.cancel(event, actor=actor, at=T0, reason="改期").state == pe.EventState.CANCELLED
        return
    with pytest.raises(Forbidden):
        concert(actor=actor, exercise_id=exercise_id)
    with pytest.raises(Forbidden):
        pe.cancel(concert(exercise_id=exercise_id), actor=actor, at=T0, reason="改期")


def test_everyone_but_field_users_reads_events() -> None:
    for actor in (OP, CMD, ADMIN, PLANNER):
        pe.authorise(actor, "read", None)
    with pytest.raises(Forbidden, match="may not read"):
        pe.authorise(FIELD, "read", None)


def test_cancelling_needs_a_reason_and_happens_once() -> None:
    event = concert()
    with pytest.raises(InvalidCommand, match="reason must not be empty"):
        pe.cancel(event, actor=CMD, at=T0, reason=" ")
    cancelled = pe.cancel(event, actor=CMD, at=T0, reason="因天气取消")
    assert (cancelled.cancelled_by, cancelled.cancel_reason, cancelled.phase(T0)) == (
        "commander1",
        "因天气取消",
        "cancelled",
    )
    with pytest.raises(IllegalTransition, match="cancelled by commander1 already"):
        pe.cancel(cancelled, actor=OP, at=T0, reason="again")


def test_only_scheduled_events_are_risk_context() -> None:
    live = concert()
    gone = pe.cancel(concert(event_id="PE-TEST-2"), actor=OP, at=T0, reason="取消")
    context = pe.risk_context([live, gone])
    assert [e.event_id for e in context] == ["PE-TEST-1"]
    assert context[0].radius_m == 300.0 and context[0].starts_at == T0


def test_an_alert_in_the_radius_during_the_event_promotes_naming_it() -> None:
    events = pe.risk_context([concert()])
    crowd = alarm("video", "crowd", north_m=250, seconds=1800, confidence=0.7)
    promotion = decide(crowd, TriageContext(T0 + timedelta(hours=1), events=events), RULES)
    assert promotion is not None and promotion.rule_id == "risk_planned_event"
    assert promotion.reason.params["event_name"] == "体育中心 演唱会"
    assert "体育中心 演唱会" in RULES.render(promotion.reason)
    assert "体育中心 演唱会" in RULES.render(promotion.reason, "en")


def test_no_promotion_outside_the_radius_or_the_time_or_once_cancelled() -> None:
    at = T0 + timedelta(hours=1)
    events = pe.risk_context([concert()])
    far = alarm("video", "crowd", north_m=900, seconds=3600, confidence=0.7)  # 300 m + 200 m margin < 900
    assert decide(far, TriageContext(at, events=events), RULES) is None
    late = alarm("video", "crowd", north_m=100, seconds=5 * 3600, confidence=0.7)  # after end + 30 min
    assert decide(late, TriageContext(T0 + timedelta(hours=6), events=events), RULES) is None
    cancelled = pe.risk_context([pe.cancel(concert(), actor=OP, at=T0, reason="取消")])
    near = alarm("video", "crowd", north_m=100, seconds=3600, confidence=0.7)
    assert decide(near, TriageContext(at, events=cancelled), RULES) is None
