"""Who the console's unit tests log in as: ``/auth/me`` answers as the command service
gives them (its policy's action codes), so a test's user sees what that role would."""

from __future__ import annotations

from typing import Any

from command.domain.policy import actions_of
from dashboard.api import Me


def me_body(user_id: str, role: str, team_id: str | None, display_name: str) -> dict[str, Any]:
    """The JSON of ``GET /auth/me`` for this user."""
    return {
        "user_id": user_id,
        "role": role,
        "team_id": team_id,
        "display_name": display_name,
        "actions": {"live": actions_of(role, drill=False), "drill": actions_of(role, drill=True)},
    }


def signed_in(user_id: str, role: str, team_id: str | None, display_name: str) -> Me:
    """The console's :class:`Me` for this user, as ``CommandApi.me`` builds it."""
    return Me(
        user_id,
        role,
        team_id,
        display_name,
        frozenset(actions_of(role, drill=False)),
        frozenset(actions_of(role, drill=True)),
    )
