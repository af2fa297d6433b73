"""Warnings (预警) with plain inputs: the lifecycle and who may take each step, area
membership (polygon, cells, districts), and the GB/T 35965.1 identifier with its
sequence per second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from command.domain import warnings as wd
from command.domain.incidents import Actor, Forbidden, IllegalTransition, InvalidCommand
from command.domain.vocabulary import Role
from command.domain.warning_events import CATEGORIES, EVENT_TYPES
from tests.command.domain.conftest import CST, HOME
from wuwang.i18n import catalogue

OP = Actor("operator1", Role.OPERATOR)
CMD = Actor("commander1", Role.COMMANDER)
ADMIN = Actor("admin1", Role.ADMIN)
PLANNER = Actor("planner1", Role.PLANNER)
FIELD = Actor("T-FIRE-01", Role.FIELD, team_id="T-FIRE-01")
OTHER = Actor("T-FIRE-02", Role.FIELD, team_id="T-FIRE-02")

T0 = datetime(2026, 7, 1, 9, 30, 5, tzinfo=CST)
SENDER = wd.SenderCode("420600", "012", "034", "01")
#: A square of about 2 km around HOME.
SQUARE = (
    (HOME[0] - 0.01, HOME[1] - 0.01),
    (HOME[0] - 0.01, HOME[1] + 0.01),
    (HOME[0] + 0.01, HOME[1] + 0.01),
    (HOME[0] + 0.01, HOME[1] - 0.01),
)


def content(**changes: Any) -> wd.Content:
    args: dict[str, Any] = {
        "event_type": "meteorological",
        "level": "orange",
        "area": wd.make_area(SQUARE),
        "onset": T0,
        "expires": T0 + timedelta(hours=6),
        "headline": "  襄阳市气象台发布暴雨橙色预警  ",
        "description": "预计未来6小时樊城区降雨量将达100毫米以上。",
        "instruction": "停止户外作业，转移低洼地带人员。",
        "at": T0,
    }
    args.update(changes)
    return wd.make_content(**args)


def a_draft(*, exercise_id: str | None = None, actor: Actor = OP) -> wd.WarningRecord:
    return wd.draft(
        identifier=wd.next_identifier(SENDER, T0, ()),
        sender="襄阳市应急管理局",
        content=content(),
        exercise_id=exercise_id,
        actor=actor,
        at=T0,
    )


def issued() -> wd.WarningRecord:
    return wd.approve(
        a_draft(), actor=CMD, at=T0 + timedelta(minutes=5), teams=["T-FIRE-01", "T-FIRE-01"], grid_workers=[]
    )


# --- vocabulary -------------------------------------------------------------------------


def test_the_vocabulary_has_the_four_categories_of_gbt_35561_and_every_type_one_of_them() -> None:
    zh, en = catalogue("zh_CN"), catalogue("en")
    assert [zh[f"warning_category.{c}"] for c in CATEGORIES] == [
        "自然灾害",
        "事故灾难",
        "公共卫生事件",
        "社会安全事件",
    ]
    assert set(EVENT_TYPES.values()) == set(CATEGORIES)  # every category has sub-types, no other
    assert zh["warning_event.earthquake"] == "地震灾害"
    for key in (*(f"warning_category.{c}" for c in CATEGORIES), *(f"warning_event.{e}" for e in EVENT_TYPES)):
        assert zh.get(key) and en.get(key), key  # both languages


def test_levels_run_from_red_i_to_blue_iv_with_cap_values() -> None:
    assert [(lv.value, lv.roman) for lv in sorted(wd.Level, key=lambda lv: lv.grade)] == [
        ("red", "I"),
        ("orange", "II"),
        ("yellow", "III"),
        ("blue", "IV"),
    ]
    assert wd.Level.RED.cap_severity == "Extreme" and wd.Level.BLUE.cap_severity == "Minor"
    assert wd.Level.RED.cap_urgency == "Immediate" and wd.Level.RED.cap_certainty == "Observed"


# --- lifecycle ----------------------------------------------------------------------------


def test_a_draft_is_approved_and_issued_with_the_approver_and_time_recorded() -> None:
    draft = a_draft()
    assert draft.state == wd.WarningState.DRAFT and draft.drafted_by == "operator1"
    assert draft.content.headline == "襄阳市气象台发布暴雨橙色预警" and draft.msg_type == wd.MsgType.ALERT
    at = T0 + timedelta(minutes=5)
    w = wd.approve(
        draft, actor=CMD, at=at, teams=["T-FIRE-02", "T-FIRE-01", "T-FIRE-01"], grid_workers=["GW-r1c1"]
    )
    assert w.state == wd.WarningState.ISSUED
    assert (w.approved_by, w.approved_at) == ("commander1", at)
    assert w.target_teams == ("T-FIRE-01", "T-FIRE-02") and w.target_grid_workers == ("GW-r1c1",)
    assert w.active(at) and not w.active(w.content.expires) and w.status == "Actual"
    with pytest.raises(IllegalTransition, match="not a draft"):
        wd.approve(w, actor=CMD, at=at, teams=[], grid_workers=[])


def test_operators_draft_commanders_approve_update_and_cancel_issued_warnings() -> None:
    with pytest.raises(Forbidden, match="operator may not approve"):
        wd.approve(a_draft(), actor=OP, at=T0, teams=[], grid_workers=[])
    with pytest.raises(Forbidden, match="field may not draft"):
        a_draft(actor=FIELD)
    w = issued()
    with pytest.raises(Forbidden, match="operator may not cancel"):
        wd.cancel(w, actor=OP, at=T0, reason="x")
    with pytest.raises(Forbidden, match="operator may not update"):
        wd.update(w, identifier=w.identifier, content=content(), actor=OP, at=T0, teams=[], grid_workers=[])
    # an operator may discard a draft of their own kind
    assert wd.cancel(a_draft(), actor=OP, at=T0, reason="写错了").state == wd.WarningState.CANCELLED
    assert (
        wd.approve(a_draft(actor=ADMIN), actor=ADMIN, at=T0, teams=[], grid_workers=[]).approved_by
        == "admin1"
    )


def test_planners_act_only_in_drills() -> None:
    with pytest.raises(Forbidden, match="only drill warnings"):
        a_draft(actor=PLANNER)
    drill = a_draft(exercise_id="EX-1", actor=PLANNER)
    w = wd.approve(drill, actor=PLANNER, at=T0, teams=[], grid_workers=[])
    assert w.state == wd.WarningState.ISSUED and w.status == "Exercise"
    with pytest.raises(Forbidden):
        wd.approve(a_draft(), actor=PLANNER, at=T0, teams=[], grid_workers=[])


def test_an_update_is_a_new_version_that_references_the_previous() -> None:
    w = issued()
    at = T0 + timedelta(hours=1)
    new_ident = wd.next_identifier(SENDER, at, ())
    old, new = wd.update(
        w,
        identifier=new_ident,
        content=content(level="red", at=at),
        actor=CMD,
        at=at,
        teams=["T-FIRE-02"],
        grid_workers=[],
    )
    assert old.state == wd.WarningState.SUPERSEDED and old.ended_at == at
    assert new.state == wd.WarningState.ISSUED and new.msg_type == wd.MsgType.UPDATE
    assert (new.version, new.references, new.content.level) == (2, w.identifier, wd.Level.RED)
    assert (new.approved_by, new.approved_at) == ("commander1", at)
    with pytest.raises(IllegalTransition, match="only an issued one"):
        wd.update(old, identifier="x", content=content(), actor=CMD, at=at, teams=[], grid_workers=[])


def test_cancel_and_expire() -> None:
    w = issued()
    c = wd.cancel(w, actor=CMD, at=T0 + timedelta(hours=1), reason="  雨势减弱 ")
    assert c.state == wd.WarningState.CANCELLED and c.msg_type == wd.MsgType.CANCEL
    assert (c.cancelled_by, c.cancel_reason) == ("commander1", "雨势减弱")
    with pytest.raises(IllegalTransition, match="already"):
        wd.cancel(c, actor=CMD, at=T0, reason="x")
    with pytest.raises(InvalidCommand, match="reason"):
        wd.cancel(w, actor=CMD, at=T0, reason="  ")
    with pytest.raises(IllegalTransition, match="not due"):
        wd.expire(w, at=T0 + timedelta(hours=1))
    e = wd.expire(w, at=w.content.expires)
    assert e.state == wd.WarningState.EXPIRED and e.ended_at == w.content.expires
    with pytest.raises(IllegalTransition):
        wd.expire(e, at=w.content.expires + timedelta(hours=1))


def test_field_users_see_only_issued_warnings_that_target_their_team() -> None:
    w = issued()
    assert wd.targets(FIELD, w) and not wd.targets(OTHER, w)
    assert not wd.targets(FIELD, a_draft())
    assert not wd.targets(OP, w)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"event_type": "volcano"}, "unknown event type"),
        ({"level": "purple"}, "unknown level"),
        ({"expires": T0}, "after onset"),
        ({"at": T0 + timedelta(days=1)}, "over already"),
        ({"expires": T0 + timedelta(days=31)}, "at most 30 days"),
        ({"headline": "   "}, "headline must not be empty"),
        ({"onset": datetime(2026, 7, 1, 9, 0)}, "time zone"),
    ],
)
def test_bad_content_is_refused_with_the_reason(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidCommand, match=words):
        content(**changes)


# --- area membership ----------------------------------------------------------------------


def test_a_point_is_inside_a_polygon_or_not() -> None:
    area = wd.make_area(SQUARE)
    assert area.contains(*HOME)
    assert not area.contains(HOME[0] + 0.02, HOME[1])
    assert not area.contains(HOME[0], HOME[1] - 0.011)
    # a concave polygon (an L): the notch is outside
    ell = [(0, 0), (0, 2), (1, 2), (1, 1), (2, 1), (2, 0)]
    assert wd.point_in_polygon(0.5, 0.5, ell) and wd.point_in_polygon(0.5, 1.5, ell)
    assert not wd.point_in_polygon(1.5, 1.5, ell)
    assert not area.contains(None, None)


def test_cells_and_districts_make_an_area_too() -> None:
    area = wd.make_area(cells=["r10c20"], districts=[420606])
    assert area.contains(None, None, cell="r10c20")
    assert area.contains(0.0, 0.0, cell="r1c1", adcode=420606)
    assert not area.contains(*HOME, cell="r1c1", adcode=420607)
    closed = wd.make_area([*SQUARE, SQUARE[0]])
    assert len(closed.polygon) == 4  # the closing point is dropped


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "needs an area"),
        ({"polygon": [(1, 1), (2, 2)]}, "3–500 points"),
        ({"polygon": [(1, 1), (2, 2), (95, 3)]}, "not a point on the map"),
        ({"cells": ["A1"]}, "not a grid cell id"),
        ({"districts": [4206]}, "6-digit"),
    ],
)
def test_bad_areas_are_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidCommand, match=words):
        wd.make_area(**kwargs)


# --- identifier -----------------------------------------------------------------------------


def test_the_identifier_has_gbt_35965_form_in_beijing_time() -> None:
    at_utc = datetime(2026, 7, 1, 1, 30, 5, tzinfo=UTC)  # 09:30:05 in Beijing
    ident = wd.next_identifier(SENDER, at_utc, ())
    assert ident == "42060001203401_20260701093005_1"
    assert wd.IDENTIFIER_RE.match(ident)
    assert wd.identifier_stem(wd.SenderCode(), T0) == "42060000000000_20260701093005"


def test_the_sequence_counts_within_one_second_and_restarts_with_the_next() -> None:
    first = wd.next_identifier(SENDER, T0, ())
    second = wd.next_identifier(SENDER, T0, [first])
    tenth = wd.next_identifier(SENDER, T0, [first, second, "42060001203401_20260701093005_9"])
    assert (first[-2:], second[-2:], tenth[-3:]) == ("_1", "_2", "_10")
    # another second, another sender: their identifiers do not count
    other_sender = wd.next_identifier(wd.SenderCode(), T0, [first])
    assert other_sender.endswith("_1")
    later = wd.next_identifier(SENDER, T0 + timedelta(seconds=1), [first, second])
    assert later.endswith("093006_1")


def test_sender_codes_must_have_their_widths() -> None:
    with pytest.raises(ValueError, match="area code must be 6 digits"):
        wd.SenderCode("4206")
    with pytest.raises(ValueError, match="extension must be 2 digits"):
        wd.SenderCode(extension="A1")
    with pytest.raises(InvalidCommand, match="time zone"):
        wd.identifier_stem(SENDER, datetime(2026, 7, 1))


# --- re-targeting: teams that move into the area after issue ------------------------------


def test_a_team_that_moves_into_the_area_after_issue_is_told_once() -> None:
    w = issued()  # sent to T-FIRE-01 when issued
    now = T0 + timedelta(minutes=30)
    inside, outside = HOME, (HOME[0] + 0.05, HOME[1])

    def moved(team: str, where: tuple[float, float], warnings: list[wd.WarningRecord]) -> list[str]:
        found = wd.moved_in(warnings, team, where[0], where[1], cell=None, adcode=None, now=now)
        return [x.identifier for x in found]

    assert moved("T-FIRE-02", inside, [w]) == [w.identifier]
    assert moved("T-FIRE-02", outside, [w]) == []
    assert moved("T-FIRE-01", inside, [w]) == []  # told when it was issued
    after = wd.add_team(w, "T-FIRE-02", now=now)
    assert after.target_teams == ("T-FIRE-01", "T-FIRE-02")
    assert moved("T-FIRE-02", inside, [after]) == []  # not a second time
    assert wd.add_team(after, "T-FIRE-02", now=now) is after
    # field users of the team now read it (the field page lists it)
    assert wd.targets(OTHER, after) and not wd.targets(OTHER, w)


def test_only_live_warnings_in_force_are_re_targeted_and_cells_and_districts_count() -> None:
    w = issued()
    now = T0 + timedelta(minutes=30)
    far = (HOME[0] + 0.5, HOME[1])
    drill = wd.approve(a_draft(exercise_id="EX-1"), actor=CMD, at=T0, teams=[], grid_workers=[])
    cancelled = wd.cancel(w, actor=CMD, at=now, reason="解除")
    for gone in (drill, cancelled, wd.expire(w, at=w.content.expires), a_draft()):
        assert wd.moved_in([gone], "T-FIRE-02", *HOME, cell=None, adcode=None, now=now) == []
    assert wd.moved_in([w], "T-FIRE-02", *HOME, cell=None, adcode=None, now=w.content.expires) == []
    by_cell = wd.approve(
        wd.draft(
            identifier=wd.next_identifier(SENDER, T0, (w.identifier,)),
            sender="襄阳市应急管理局",
            content=content(area=wd.make_area((), cells=["r5c5"], districts=[420606])),
            exercise_id=None,
            actor=OP,
            at=T0,
        ),
        actor=CMD,
        at=T0,
        teams=[],
        grid_workers=[],
    )
    assert wd.moved_in([by_cell], "T-FIRE-02", *far, cell="r5c5", adcode=None, now=now) == [by_cell]
    assert wd.moved_in([by_cell], "T-FIRE-02", *far, cell="r1c1", adcode=420606, now=now) == [by_cell]
    assert wd.moved_in([by_cell], "T-FIRE-02", *far, cell="r1c1", adcode=420607, now=now) == []
    with pytest.raises(IllegalTransition, match="not in force"):
        wd.add_team(cancelled, "T-FIRE-02", now=now)
