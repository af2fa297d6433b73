"""The console's controls follow the actions ``/auth/me`` lists, not the role's name.

Each user here is made by hand with a role and an action list that do not go together,
so a control drawn from the role instead of the actions shows up as a failure."""

from __future__ import annotations

from typing import Any

import httpx2

from dashboard import ids
from dashboard.api import CommandApi, Me
from dashboard.callbacks.common import drill_of
from dashboard.layout.console import side_panel
from dashboard.layout.detail import DetailData, actions, sources
from dashboard.layout.inbox import may_act
from tests.dashboard.test_console_units import component_ids, run_async

LIVE_INC: dict[str, Any] = {
    "id": "INC-1",
    "state": "new",
    "is_open": True,
    "level": 4,
    "exercise_id": None,
    # what the command service says a new incident takes (its lifecycle)
    "next_acts": ["verify", "dispatch", "cancel", "false_alarm", "hold"],
    "sources": [{"kind": "alarm", "alarm_id": "a1"}, {"kind": "alarm", "alarm_id": "a2"}],
}
DRILL_INC: dict[str, Any] = {**LIVE_INC, "id": "INC-EX", "exercise_id": "EX-1"}


def side_tabs(who: Me) -> list[str]:
    panel = side_panel("zh_CN", who)
    radio = next(c for c in panel.children if getattr(c, "id", None) == ids.SIDE_TABS)
    return [o["value"] for o in radio.options]


def acts_of(tree: Any) -> set[str]:
    return {i["action"] for i in component_ids(tree) if isinstance(i, dict) and i.get("type") == ids.ACT}


def test_an_incidents_buttons_are_the_listed_actions() -> None:
    # an "operator" allowed to note and verify only: no cancel, no false alarm, no level
    who = Me("u1", "operator", None, "张伟", frozenset({"incident.note", "incident.verify"}))
    assert acts_of(actions("zh_CN", who, LIVE_INC)) == {"note", "verify"}
    # the same acts plus the level: the level control appears, whatever the role says
    leveller = Me("u2", "operator", None, "张伟", frozenset({"incident.note", "incident.level_change"}))
    assert acts_of(actions("zh_CN", leveller, LIVE_INC)) == {"note", "level"}
    # a role the console has never heard of, with the desk's actions, gets the desk's buttons
    desk = {"incident.note", "incident.verify", "incident.cancel", "incident.false_alarm", "incident.hold"}
    stranger = Me("u3", "duty_chief", None, "某人", frozenset(desk))
    assert acts_of(actions("en", stranger, LIVE_INC)) == {"note", "verify", "cancel", "false-alarm", "hold"}


def test_a_role_name_without_actions_gets_no_control() -> None:
    commander = Me("commander1", "commander", None, "王强")  # /auth/me listed nothing
    assert actions("zh_CN", commander, LIVE_INC) is None
    assert not may_act(commander, {"row_id": "r1", "exercise_id": None})
    assert not commander.may_change_level and not commander.may_run_exercises
    assert not commander.works_the_desk
    assert "merge" not in acts_of(sources("zh_CN", commander, DetailData(LIVE_INC, []), _tz()))


def test_a_drills_incident_asks_the_drill_list() -> None:
    drill_only = Me(
        "p1", "operator", None, "陈静", frozenset(), frozenset({"incident.note", "incident.verify"})
    )
    assert actions("zh_CN", drill_only, LIVE_INC) is None
    assert acts_of(actions("zh_CN", drill_only, DRILL_INC)) == {"note", "verify"}
    assert drill_only.drills_only is False  # it reads no incident at all
    planner_like = Me("p2", "x", None, "x", frozenset({"plan.read"}), frozenset({"incident.read"}))
    assert planner_like.drills_only


def test_inbox_rows_and_the_exercise_tab_follow_the_actions() -> None:
    live_row, drill_row = {"row_id": "r1", "exercise_id": None}, {"row_id": "r2", "exercise_id": "EX-1"}
    who = Me("u1", "planner", None, "x", frozenset({"inbox.dismiss"}), frozenset())
    assert may_act(who, live_row) and not may_act(who, drill_row)
    assert "exercises" not in side_tabs(who)
    runner = Me("u2", "operator", None, "x", frozenset(), frozenset({"exercise.create"}))
    assert "exercises" in side_tabs(runner)  # the 演练 tab follows exercise.create


def test_me_reads_the_actions_of_auth_me() -> None:
    body = {
        "user_id": "commander1",
        "role": "commander",
        "team_id": None,
        "display_name": "王强",
        "actions": {"live": ["incident.level_change"], "drill": ["exercise.create", "exercise.control"]},
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    api = CommandApi("http://command.test", transport=httpx2.MockTransport(handler))
    me = run_async(api.me("token"))
    assert me is not None
    assert me.actions == {"incident.level_change"}
    assert me.drill_actions == {"exercise.create", "exercise.control"}
    assert me.may("incident.level_change", drill=False) and not me.may("incident.level_change", drill=True)
    assert me.may("exercise.create") and me.may_run_exercises and not me.may_watch_exercises


def _tz() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def test_only_a_drills_only_user_works_in_the_configured_drill() -> None:
    planner = Me("planner1", "planner", None, "演练策划", drill_actions=frozenset({"incident.read"}))
    operator = Me("operator1", "operator", None, "值班员", actions=frozenset({"incident.read"}))
    config = {"exercise_id": "EX-1"}
    assert drill_of(config, planner) == "EX-1"
    assert drill_of(config, operator) is None  # the desk works live
    assert drill_of({}, planner) is None and drill_of(None, planner) is None
