"""The duty desk's rules (值班值守) with plain inputs: the roster, the duty log's
entries, the leader's instructions and the signed handover."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from command.domain import duty
from command.domain.incidents import Forbidden, IllegalTransition, InvalidCommand
from tests.command.domain.conftest import CST

ROLES = {
    "lead-a": "commander",
    "lead-b": "commander",
    "op-1": "operator",
    "op-2": "operator",
    "op-3": "operator",
}
DAY = datetime(2026, 12, 7, 8, 0, tzinfo=CST)


def shift(
    n: int, start: datetime, hours: int = 12, leader: str = "lead-a", officers: tuple[str, ...] = ("op-1",)
) -> duty.DutyShift:
    return duty.plan_shift(
        shift_id=f"DS-TEST-{n}",
        exercise_id=None,
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        leader=leader,
        officers=officers,
        roles=ROLES,
        set_by="lead-a",
    )


def test_a_shift_has_a_commander_leading_and_one_or_two_operators() -> None:
    s = shift(1, DAY, officers=("op-1", "op-2"))
    assert s.members == ("lead-a", "op-1", "op-2")
    cases = [
        ({"leader": "op-3"}, "must be a commander"),
        ({"officers": ("lead-b",)}, "must be an operator"),
        ({"officers": ()}, "one or two"),
        ({"officers": ("op-1", "op-2", "op-3")}, "one or two"),
        ({"officers": ("op-1", "op-1")}, "once"),
        ({"officers": ("nobody",)}, "no user nobody"),
        ({"hours": 25}, "at most 24 hours"),
        ({"hours": 0}, "end after"),
    ]
    for change, reason in cases:
        with pytest.raises(InvalidCommand, match=reason):
            shift(2, DAY, **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidCommand, match="time zone"):
        shift(3, DAY.replace(tzinfo=None))


def test_the_night_shift_crosses_midnight_and_shifts_do_not_overlap() -> None:
    day, night = (
        shift(1, DAY),
        shift(2, DAY + timedelta(hours=12), leader="lead-b", officers=("op-2", "op-3")),
    )
    roster = [night, day]
    duty.check_no_overlap(night, roster)  # a shift never overlaps itself
    assert duty.current_shift(roster, DAY + timedelta(hours=11, minutes=59)) == day
    assert duty.current_shift(roster, DAY + timedelta(hours=12)) == night  # start inclusive, end exclusive
    assert duty.current_shift(roster, datetime(2026, 12, 8, 7, 59, tzinfo=CST)) == night  # after midnight
    assert duty.current_shift(roster, datetime(2026, 12, 8, 8, 0, tzinfo=CST)) is None
    assert duty.next_shift(roster, day) == night and duty.next_shift(roster, night) is None
    with pytest.raises(IllegalTransition, match="overlaps shift DS-TEST-2"):
        duty.check_no_overlap(shift(3, DAY + timedelta(hours=6)), roster)


def test_a_day_runs_from_midnight_in_the_centres_own_zone() -> None:
    start, end = duty.shift_day(datetime(2026, 12, 8, 1, 30, tzinfo=CST))
    assert (start, end) == (datetime(2026, 12, 8, tzinfo=CST), datetime(2026, 12, 9, tzinfo=CST))
    start, _ = duty.shift_day(datetime(2026, 12, 8, 1, 30, tzinfo=CST), day_start_hour=8)
    assert start == datetime(2026, 12, 7, 8, 0, tzinfo=CST)


def test_log_entries_are_checked_and_automatic_ones_name_what_they_are_about() -> None:
    free = duty.log_entry(at=DAY, kind="free", text="  接市应急局电话通知 ", actor="op-1")
    assert free.kind is duty.EntryKind.FREE and free.text == "接市应急局电话通知" and free.ref is None
    with pytest.raises(InvalidCommand, match="names what it is about"):
        duty.log_entry(at=DAY, kind="report_sent", text="首报", actor="system")
    with pytest.raises(InvalidCommand, match="unknown duty log entry kind"):
        duty.log_entry(at=DAY, kind="gossip", text="x", actor="op-1")
    with pytest.raises(InvalidCommand, match="empty"):
        duty.log_entry(at=DAY, kind="free", text="   ", actor="op-1")
    day = shift(1, DAY)
    late = duty.log_entry(at=DAY + timedelta(hours=12), kind="free", text="夜班", actor="op-2")
    assert duty.entries_of_shift([late, free], day) == [free]


def instruction(at: datetime = DAY) -> duty.Instruction:
    return duty.receive_instruction(
        instruction_id="DI-TEST-1",
        exercise_id=None,
        received_at=at,
        issued_by="王局长",
        text="加强樊城区夜间巡查",
        recorded_by="op-1",
    )


def test_an_instruction_is_passed_on_followed_up_and_done_one_step_at_a_time() -> None:
    i = instruction()
    assert i.state is duty.InstructionState.OPEN
    with pytest.raises(IllegalTransition):
        duty.advance_instruction(i, "done", by="op-1", at=DAY, follow_up="x")
    with pytest.raises(InvalidCommand, match="whom"):
        duty.advance_instruction(i, "passed_on", by="op-1", at=DAY)
    i = duty.advance_instruction(
        i, "passed_on", by="op-1", at=DAY, passed_to=["樊城区应急局", "樊城区应急局"]
    )
    assert i.passed_to == ("樊城区应急局",)
    with pytest.raises(InvalidCommand, match="what was done"):
        duty.advance_instruction(i, "followed_up", by="op-1", at=DAY)
    i = duty.advance_instruction(i, "followed_up", by="op-2", at=DAY, follow_up="已增派两组巡逻")
    i = duty.advance_instruction(i, "done", by="lead-a", at=DAY, follow_up="办结")
    assert i.state is duty.InstructionState.DONE and i.follow_up == "已增派两组巡逻\n办结"
    assert i.updated_by == "lead-a"
    with pytest.raises(IllegalTransition):
        duty.advance_instruction(i, "done", by="op-1", at=DAY)


def test_an_instruction_not_followed_up_within_two_hours_is_overdue() -> None:
    i = instruction()
    assert not i.overdue(DAY + duty.FOLLOW_UP_WITHIN)
    assert i.overdue(DAY + duty.FOLLOW_UP_WITHIN + timedelta(seconds=1))
    followed = duty.advance_instruction(
        duty.advance_instruction(i, "passed_on", by="op-1", at=DAY, passed_to=["巡特警"]),
        "followed_up",
        by="op-1",
        at=DAY,
        follow_up="已落实",
    )
    assert not followed.overdue(DAY + timedelta(days=1))


def test_the_handover_lists_what_is_open_overdue_and_to_follow() -> None:
    at = DAY + timedelta(hours=12)
    incidents = [
        duty.OpenIncident("INC-2", "内涝", 3, "dispatched", at - timedelta(hours=3)),
        duty.OpenIncident("INC-1", "火灾", 2, "new", at - timedelta(minutes=31)),
        duty.OpenIncident("INC-3", "纠纷", 4, "new", at - timedelta(minutes=5)),
    ]
    snap = duty.handover_snapshot(
        at=at,
        incidents=incidents,
        inbox_waiting=4,
        warnings_in_force=[{"identifier": "W1", "level": "yellow", "headline": "暴雨黄色预警"}],
        instructions=[instruction(at - timedelta(hours=3))],
        follow_items=["跟进 INC-2 排水进度", " "],
    )
    assert [i["incident_id"] for i in snap["open"]["incidents"]] == ["INC-1", "INC-2", "INC-3"]
    assert snap["open"]["inbox_waiting"] == 4 and snap["open"]["warnings"][0]["identifier"] == "W1"
    assert [(o["kind"], o["ref"]) for o in snap["overdue"]] == [
        ("incident_unverified", "INC-1"),
        ("instruction_not_followed", "DI-TEST-1"),
    ]
    assert snap["follow"]["items"] == ["跟进 INC-2 排水进度"]
    assert [i["instruction_id"] for i in snap["follow"]["instructions"]] == ["DI-TEST-1"]


def test_both_shifts_sign_the_handover_once_each_then_it_is_sealed() -> None:
    day, night = shift(1, DAY), shift(2, DAY + timedelta(hours=12), leader="lead-b", officers=("op-2",))
    at = DAY + timedelta(hours=12)
    with pytest.raises(Forbidden, match="neither shift"):
        duty.draw_up_handover(
            handover_id="DH-T-1", outgoing=day, incoming=night, by="op-3", at=at, snapshot={}
        )
    with pytest.raises(InvalidCommand, match="starts after"):
        duty.draw_up_handover(
            handover_id="DH-T-1", outgoing=night, incoming=day, by="op-1", at=at, snapshot={}
        )
    h = duty.draw_up_handover(
        handover_id="DH-T-1", outgoing=day, incoming=night, by="op-1", at=at, snapshot={}
    )
    assert duty.side_of(h, "op-1") == "outgoing" and duty.side_of(h, "lead-b") == "incoming"
    with pytest.raises(Forbidden, match="not on the incoming shift"):
        duty.sign_handover(h, "incoming", by="op-1", at=at)
    h = duty.sign_handover(h, "outgoing", by="op-1", at=at)
    with pytest.raises(IllegalTransition, match="signed already"):
        duty.sign_handover(h, "outgoing", by="lead-a", at=at)
    with pytest.raises(Forbidden, match="no signature left"):
        duty.side_of(h, "lead-a")
    assert not h.sealed
    h = duty.sign_handover(h, "incoming", by="op-2", at=at)
    assert h.sealed and (h.outgoing_signed_by, h.incoming_signed_by) == ("op-1", "op-2")
    with pytest.raises(IllegalTransition, match="both shifts"):
        duty.sign_handover(h, "incoming", by="lead-b", at=at)


def test_one_person_on_both_shifts_signs_for_one_of_them_only() -> None:
    day, night = shift(1, DAY), shift(2, DAY + timedelta(hours=12), officers=("op-2",))  # lead-a leads both
    h = duty.draw_up_handover(
        handover_id="DH-T-2", outgoing=day, incoming=night, by="lead-a", at=DAY, snapshot={}
    )
    h = duty.sign_handover(h, duty.side_of(h, "lead-a"), by="lead-a", at=DAY)
    with pytest.raises(Forbidden, match="one shift only"):
        duty.sign_handover(h, duty.side_of(h, "lead-a"), by="lead-a", at=DAY)
