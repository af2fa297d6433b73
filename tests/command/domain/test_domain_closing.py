"""The closing guard with plain inputs: what is open, who may override, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from command.domain.closing import (
    ClosingBlocked,
    OpenChecklistItem,
    OpenSupply,
    OpenWork,
    check_closing,
    open_work,
)
from command.domain.incidents import (
    Actor,
    Forbidden,
    Incident,
    InvalidCommand,
    apply,
    decide_dispatch,
    decide_open,
    decide_release_team,
    decide_team_arrived,
    replay,
)
from command.domain.vocabulary import IncidentType, ResponseLevel, Role

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
OPERATOR = Actor("op1", Role.OPERATOR)
COMMANDER = Actor("cmd1", Role.COMMANDER)
ADMIN = Actor("admin", Role.ADMIN)
PLANNER = Actor("pl1", Role.PLANNER)
FIELD = Actor("t1", Role.FIELD, "T1")
ITEM = OpenChecklistItem("high_rise_fire", "evacuate", "组织疏散", "Evacuate")


def on_scene(*teams: str, exercise_id: str | None = None) -> Incident:
    inc = replay(
        decide_open(
            "INC-1",
            incident_type=IncidentType.FIRE,
            level=ResponseLevel.IV,
            title="人民路 起火",
            actor=OPERATOR,
            at=T0,
            lat=32.04,
            lon=112.14,
            exercise_id=exercise_id,
        )
    )
    for n, team in enumerate(teams, start=1):
        at = T0 + timedelta(minutes=n)
        for e in decide_dispatch(
            inc, team_id=team, order_id=f"O{n}", actor=OPERATOR, at=at, expected_version=None
        ):
            inc = apply(inc, e)
        for e in decide_team_arrived(inc, team_id=team, actor=OPERATOR, at=at + timedelta(minutes=5)):
            inc = apply(inc, e)
    return inc


def release(inc: Incident, team: str) -> Incident:
    for e in decide_release_team(
        inc, team_id=team, actor=OPERATOR, at=T0 + timedelta(hours=1), expected_version=None, reason="归队"
    ):
        inc = apply(inc, e)
    return inc


def test_open_work_lists_teams_not_released_and_supplies_still_reserved() -> None:
    inc = release(on_scene("T1", "T2"), "T1")
    work = open_work(
        inc,
        pending_checklist=[ITEM],
        reserved_supplies=[OpenSupply("foam", 3, "泡沫", "桶"), OpenSupply("sandbag", 0)],
        team_names={"T2": "消防二队"},
    )
    assert work.checklist == (ITEM,)
    assert [(t.team_id, t.name) for t in work.teams] == [("T2", "消防二队")]
    assert [s.item_code for s in work.supplies] == ["foam"]  # nothing reserved is not open
    assert work.as_body() == {
        "checklist": [
            {"plan_id": "high_rise_fire", "item_id": "evacuate", "zh": "组织疏散", "en": "Evacuate"}
        ],
        "teams": [{"team_id": "T2", "name": "消防二队"}],
        "supplies": [{"item_code": "foam", "name": "泡沫", "unit": "桶", "reserved": 3}],
    }


def test_nothing_open_lets_anyone_staff_through() -> None:
    inc = release(on_scene("T1"), "T1")
    work = open_work(inc)
    assert work.empty
    assert check_closing(inc, "resolve", work, actor=OPERATOR, override_reason=None) is None


@pytest.mark.parametrize(
    ("work", "said"),
    [
        (OpenWork(checklist=(ITEM,)), "1 checklist item(s) open"),
        (OpenWork(supplies=(OpenSupply("foam", 2),)), "supplies still reserved: foam ×2"),
    ],
)
def test_open_work_without_override_is_refused_with_what_is_open(work: OpenWork, said: str) -> None:
    inc = release(on_scene("T1"), "T1")
    with pytest.raises(ClosingBlocked) as refused:
        check_closing(inc, "close", work, actor=COMMANDER, override_reason=None)
    assert said in refused.value.reason
    assert refused.value.work == work


def test_a_team_still_out_blocks_resolving() -> None:
    inc = on_scene("T1")
    with pytest.raises(ClosingBlocked, match="team\\(s\\) still out: T1"):
        check_closing(inc, "resolve", open_work(inc), actor=OPERATOR, override_reason=None)


@pytest.mark.parametrize("actor", [COMMANDER, ADMIN])
def test_a_commander_overrides_with_a_reason_that_names_what_was_open(actor: Actor) -> None:
    inc = on_scene("T1")
    work = open_work(inc, pending_checklist=[ITEM], reserved_supplies=[OpenSupply("foam", 2)])
    overridden = check_closing(inc, "resolve", work, actor=actor, override_reason="  现场已移交属地  ")
    assert overridden is not None
    assert overridden.reason == "现场已移交属地"
    assert overridden.record_text() == (
        "指挥长越权：现场已移交属地（未完成检查项 1 项；未归队队伍 T1；仍预留物资 foam×2）"
    )


@pytest.mark.parametrize("actor", [OPERATOR, PLANNER, FIELD])
def test_only_a_commander_may_override(actor: Actor) -> None:
    inc = on_scene("T1", exercise_id="EX-1" if actor is PLANNER else None)
    with pytest.raises(Forbidden, match="override the closing guard"):
        check_closing(inc, "close", open_work(inc), actor=actor, override_reason="赶时间")


def test_an_override_by_another_role_is_refused_even_with_nothing_open() -> None:
    inc = release(on_scene("T1"), "T1")
    with pytest.raises(Forbidden):
        check_closing(inc, "close", open_work(inc), actor=OPERATOR, override_reason="x")


def test_a_blank_override_reason_is_invalid() -> None:
    inc = on_scene("T1")
    with pytest.raises(InvalidCommand, match="needs a reason"):
        check_closing(inc, "resolve", open_work(inc), actor=COMMANDER, override_reason="   ")
