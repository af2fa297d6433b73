"""The policy's rules with plain inputs: the table, the planner's drill rule, the team
rule, what /auth/me lists, and the table quoted in docs/security.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from command.domain.policy import (
    CONSOLE_ROLES,
    POLICY,
    Action,
    actions_of,
    allowed,
    allowed_anywhere,
    bound_to_own_team,
    markdown_table,
    may_act_on_team,
    sees,
)
from command.domain.vocabulary import Role

ROOT = Path(__file__).resolve().parents[3]


def test_every_action_has_a_row_and_codes_are_dotted_field_words() -> None:
    assert set(POLICY) == set(Action)
    for action in Action:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", action.value), action


def test_the_desks_work_is_live_for_the_centre_and_drills_for_planners() -> None:
    for action in (
        Action.INCIDENT_VERIFY,
        Action.INCIDENT_DISPATCH,
        Action.INCIDENT_CLOSE,
        Action.RESERVE_ISSUE,
    ):
        for role in (Role.OPERATOR, Role.COMMANDER, Role.ADMIN):
            assert allowed(role, action, drill=False) and allowed(role, action, drill=True)
        assert not allowed(Role.PLANNER, action, drill=False)
        assert allowed(Role.PLANNER, action, drill=True)
        assert allowed_anywhere(Role.PLANNER, action)
        assert not allowed_anywhere(Role.FIELD, action)


def test_planners_act_only_on_drills() -> None:
    """No action a planner may do on a live object changes anything live: reading
    reference data (plans, the reserve, the roster) is all."""
    live = set(actions_of(Role.PLANNER, drill=False))
    assert live == {
        "session.use",
        "incident.list",
        "plan.read",
        "reserve.read",
        "team.list",
        "team.read",
        "teams.near",
        "grid.list",
        "field.photo_read",
        "planned_event.read",
        "risk.read",  # the registries of risk sources and shelters: reference data
        "shelter.read",
        "inbound_warning.read",  # other agencies' warnings (CAP in): reference data too
    }
    assert not allowed(Role.PLANNER, Action.RISK_EDIT, drill=True)  # the registries are live
    assert not sees(Role.PLANNER, drill=False) and sees(Role.PLANNER, drill=True)
    assert not allowed(Role.PLANNER, Action.TEAM_STATUS, drill=False)


def test_the_commanders_decisions() -> None:
    for action in (Action.INCIDENT_LEVEL, Action.INCIDENT_CLOSE_OVERRIDE):
        for drill in (False, True):
            assert {r for r in CONSOLE_ROLES if allowed(r, action, drill=drill)} == {
                Role.COMMANDER,
                Role.ADMIN,
            }


def test_drills_are_run_by_planners_and_commanders_and_watched_by_planners() -> None:
    runners = {r for r in CONSOLE_ROLES if allowed(r, Action.EXERCISE_CREATE, drill=True)}
    assert runners == {Role.PLANNER, Role.COMMANDER, Role.ADMIN}
    assert not any(allowed(r, Action.EXERCISE_CREATE, drill=False) for r in CONSOLE_ROLES)
    watchers = {r for r in CONSOLE_ROLES if allowed(r, Action.EXERCISE_WATCH, drill=True)}
    assert watchers == {Role.PLANNER, Role.ADMIN}


def test_field_teams_only_on_their_own_team() -> None:
    assert bound_to_own_team(Role.FIELD) and not bound_to_own_team(Role.OPERATOR)
    assert may_act_on_team(Role.FIELD, "T-1", "T-1")
    assert not may_act_on_team(Role.FIELD, "T-1", "T-2")
    assert not may_act_on_team(Role.FIELD, None, "T-1")  # an account bound to no team
    assert not may_act_on_team(Role.FIELD, None, None)
    assert may_act_on_team(Role.OPERATOR, None, "T-2")  # the table decides for the others
    field = set(actions_of(Role.FIELD, drill=False))
    assert {"dispatch.ack", "field.report", "field.photo", "team.status", "incident.team_arrived"} <= field
    assert not field & {"incident.verify", "inbox.read", "grid.file", "reserve.read", "plan.read"}


def test_the_field_page_is_a_crews_own_not_even_an_admins() -> None:
    for action in (Action.FIELD_ACK, Action.FIELD_REPORT, Action.FIELD_PHOTO):
        assert [r for r in CONSOLE_ROLES if allowed_anywhere(r, action)] == [Role.FIELD]


def test_the_system_opens_links_and_expires_but_never_logs_in() -> None:
    assert Role.SYSTEM not in CONSOLE_ROLES
    for action in (
        Action.INCIDENT_OPEN,
        Action.INCIDENT_LINK_ALARM,
        Action.INBOX_PROMOTE,
        Action.INBOX_EXPIRE,
    ):
        assert allowed(Role.SYSTEM, action, drill=False) and allowed(Role.SYSTEM, action, drill=True)
    assert not allowed_anywhere(Role.SYSTEM, Action.INCIDENT_VERIFY)
    assert not allowed_anywhere(Role.SYSTEM, Action.SESSION_USE)
    assert [r for r in (*CONSOLE_ROLES, Role.SYSTEM) if allowed_anywhere(r, Action.INBOX_EXPIRE)] == [
        Role.SYSTEM
    ]


@pytest.mark.parametrize("role", CONSOLE_ROLES)
def test_actions_of_is_the_table_read_across(role: Role) -> None:
    for drill in (False, True):
        listed = actions_of(role, drill=drill)
        assert listed == [a.value for a in POLICY if allowed(role, a, drill=drill)]
        assert "session.use" in listed


def test_an_unknown_action_or_role_is_an_error_not_a_no() -> None:
    with pytest.raises(ValueError):
        allowed(Role.OPERATOR, "incident.teleport", drill=False)
    with pytest.raises(ValueError):
        allowed("mayor", Action.INCIDENT_VERIFY, drill=False)


def test_docs_quote_the_table() -> None:
    """docs/security.md "Who may do what" shows the table as the module renders it."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert markdown_table() in text
