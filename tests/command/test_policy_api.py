"""The policy at the command service's edges: every route asks it, ``/auth/me`` tells
each role what it may do, and the database's role CHECK lists the policy's roles."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import WebSocketRoute

from command.deps import POLICY_ACTION
from command.domain.policy import CONSOLE_ROLES, Action, actions_of, bound_to_own_team
from tests.command.conftest import FIELD_TEAM

Login = Callable[[str], dict[str, str]]

#: Routes that ask no policy, and why (docs/security.md "Who may do what").
PUBLIC = {
    ("GET", "/healthz"),  # liveness, no data
    ("GET", "/metrics"),  # counters, no data
    ("POST", "/auth/login"),  # how a token is had
}
#: The live stream authenticates in its handshake; what each socket receives is
#: filtered change by change by the policy (command/services/live.py ``visible_to``).
SOCKETS = {"/ws"}


def _actions(dependant: Dependant) -> list[Action]:
    found = []
    for dep in dependant.dependencies:
        action = getattr(dep.call, POLICY_ACTION, None)
        if action is not None:
            found.append(action)
        found.extend(_actions(dep))
    return found


def test_every_route_asks_the_policy(command_client: TestClient) -> None:
    app: Any = command_client.app
    without: list[str] = []
    asked: dict[tuple[str, str], list[Action]] = {}
    sockets: set[str] = set()
    # included routers are nested: their routes as the app serves them (prefix, the
    # router's own dependencies)
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, (APIWebSocketRoute, WebSocketRoute)):
            sockets.add(str(route.path))
            continue
        if not isinstance(route.original_route, APIRoute):
            continue  # the OpenAPI document and its pages
        for method in route.methods or ():
            actions = _actions(route.dependant)
            asked[(method, str(route.path))] = actions
            if not actions and (method, route.path) not in PUBLIC:
                without.append(f"{method} {route.path}")
    assert len(asked) > 80  # every route was walked
    assert not without, f"routes that ask no policy: {without}"
    assert sockets == SOCKETS
    # one gate per route: a route that named two actions would be judged twice
    assert all(len(a) == 1 for k, a in asked.items() if k not in PUBLIC), {
        k: a for k, a in asked.items() if len(a) > 1
    }
    assert all(not asked[k] for k in PUBLIC)
    # a few routes and their actions, in the field's words
    assert asked[("POST", "/incidents/{incident_id}/level")] == [Action.INCIDENT_LEVEL]
    assert asked[("POST", "/incidents/{incident_id}/dispatch")] == [Action.INCIDENT_DISPATCH]
    assert asked[("POST", "/incidents/{incident_id}/reserve/{lot_id}/issue")] == [Action.RESERVE_ISSUE]
    assert asked[("POST", "/grid/cases/{case_id}/dispatch")] == [Action.GRID_DISPATCH]
    assert asked[("POST", "/exercises")] == [Action.EXERCISE_CREATE]
    assert asked[("GET", "/auth/me")] == [Action.SESSION_USE]
    assert asked[("POST", "/duty/handovers/{handover_id}/sign")] == [Action.DUTY_HANDOVER_SIGN]
    assert asked[("POST", "/duty/shifts")] == [Action.DUTY_ROSTER_SET]


#: What /auth/me must say, written out by hand (not read from the policy): for each
#: role, actions it must list live / in a drill, and actions it must not list.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "operator1": {
        "live": {"incident.open", "incident.verify", "incident.dispatch", "incident.close", "reserve.issue"},
        "drill": {"incident.verify", "exercise.read"},
        "never": {
            "incident.level_change",
            "incident.closing_override",
            "exercise.create",
            "field.report",
            "duty.roster_set",
        },
    },
    "commander1": {
        "live": {"incident.verify", "incident.level_change", "incident.closing_override", "grid.dispatch"},
        "drill": {"incident.level_change", "exercise.create", "exercise.purge"},
        "never": {"exercise.watch", "field.report", "dispatch.ack"},
    },
    "planner1": {
        "live": {"plan.read", "reserve.read", "teams.near"},
        "drill": {"incident.open", "incident.verify", "reserve.issue", "exercise.create", "exercise.watch"},
        "never": {"incident.level_change", "team.status", "field.report"},
    },
    FIELD_TEAM: {
        "live": {"field.report", "field.photo", "dispatch.ack", "team.status", "incident.team_arrived"},
        "drill": {"incident.team_arrived"},
        "never": {"incident.verify", "inbox.read", "plan.read", "reserve.read", "exercise.read"},
    },
    "admin1": {
        "live": {"incident.verify", "incident.level_change", "grid.close", "inbox.dismiss"},
        "drill": {"exercise.create", "exercise.watch", "incident.verify"},
        "never": {"field.report", "field.photo", "dispatch.ack"},
    },
}


@pytest.mark.parametrize("user", sorted(EXPECTED))
def test_auth_me_lists_what_the_role_may_do(command_client: TestClient, login: Login, user: str) -> None:
    r = command_client.get("/auth/me", headers=login(user))
    assert r.status_code == 200, r.text
    me = r.json()
    live, drill = set(me["actions"]["live"]), set(me["actions"]["drill"])
    want = EXPECTED[user]
    assert want["live"] <= live, want["live"] - live
    assert want["drill"] <= drill, want["drill"] - drill
    assert not (live | drill) & want["never"], (live | drill) & want["never"]
    assert "session.use" in live and "session.use" in drill
    # the answer is the policy's, in its order, for the token's role
    assert me["actions"] == {
        "live": actions_of(me["role"], drill=False),
        "drill": actions_of(me["role"], drill=True),
    }
    if me["role"] == "planner":
        # planners act only on drills: nothing live but reading reference data
        assert all(a.endswith((".read", ".list", ".near", ".use", ".photo_read")) for a in live), live


def test_the_databases_role_check_lists_the_policys_roles(
    command_client: TestClient, command_settings: Any
) -> None:
    """The CHECKs on ``app_user.role`` stay as the last line of defence: one lists
    exactly the roles people log in with, the other binds to a team exactly the roles
    the policy binds to their own team."""
    with psycopg.connect(command_settings.shared.database_url) as conn:
        rows = conn.execute(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " WHERE c.conrelid = 'app_user'::regclass AND c.contype = 'c'"
            " AND pg_get_constraintdef(c.oid) LIKE '%%role%%'"
        ).fetchall()
    checks = [r[0] for r in rows]
    listing = [c for c in checks if "ANY (ARRAY[" in c]
    binding = [c for c in checks if "team_id" in c]
    assert len(listing) == 1 and len(binding) == 1 and len(checks) == 2, checks
    assert set(re.findall(r"'([a-z_]+)'::text", listing[0])) == {str(r) for r in CONSOLE_ROLES}
    assert set(re.findall(r"'([a-z_]+)'::text", binding[0])) == {
        str(r) for r in CONSOLE_ROLES if bound_to_own_team(r)
    }
