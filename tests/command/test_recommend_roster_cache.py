"""The duty roster kept between requests (real PostgreSQL and Redis): a shift added,
removed or cut short by anyone — here plain SQL, as the roster loader or another command
process would — shows in the next recommendation, and statuses are never kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.services.rosters import roster_window
from tests.command.test_dispatch_api import add_team, isolated_settings, open_incident
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    return isolated_settings(make_settings)


def sql(url: str, query: str, *params: object) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(query, params)


def test_a_kept_roster_follows_shift_and_status_changes(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    url = command_settings.shared.database_url or ""
    add_team(url, "F-KEPT", position=(32.0450, 112.1460))
    inc = open_incident(command_client, op)

    def fire() -> tuple[list[str], dict[str, str]]:
        r = command_client.get(f"/incidents/{inc['id']}/recommendations", headers=op)
        assert r.status_code == 200, r.text
        ranking = r.json()["teams"][0]
        return [c["team_id"] for c in ranking["candidates"]], {
            s["team_id"]: s["reason"] for s in ranking["skipped"]
        }

    assert fire()[0] == ["F-KEPT"]
    state = command_client.app_state["command"]  # what the lifespan yielded
    kept = state.duty_roster
    assert kept is not None
    assert kept.window[0] < datetime.now(UTC) - timedelta(days=1) < kept.window[1]
    if kept.window != roster_window(datetime.now(UTC)):  # a new time bucket began just now
        fire()
        kept = state.duty_roster
    assert fire()[0] == ["F-KEPT"] and state.duty_roster is kept  # unchanged shifts: reused

    now = datetime.now(UTC)
    sql(url, "UPDATE team_shift SET ends_at = %s WHERE team_id = 'F-KEPT'", now - timedelta(minutes=1))
    assert fire()[1]["F-KEPT"] == "not_on_shift"  # cut short: seen at once
    sql(url, "DELETE FROM team_shift WHERE team_id = 'F-KEPT'")
    assert fire()[1]["F-KEPT"] == "not_on_shift"
    sql(
        url,
        "INSERT INTO team_shift (team_id, starts_at, ends_at) VALUES ('F-KEPT', %s, %s)",
        now - timedelta(hours=1),
        now + timedelta(hours=8),
    )
    assert fire()[0] == ["F-KEPT"]  # back on shift

    # statuses are read fresh on every request, whatever the kept roster says
    kept = state.duty_roster
    sql(url, "UPDATE team SET status = 'off_duty' WHERE id = 'F-KEPT'")
    assert fire()[1]["F-KEPT"] == "off_duty" and state.duty_roster is kept
    sql(url, "UPDATE team SET status = 'dispatched' WHERE id = 'F-KEPT'")
    assert fire()[1]["F-KEPT"] == "busy"
    sql(url, "UPDATE team SET status = 'available' WHERE id = 'F-KEPT'")
    assert fire()[0] == ["F-KEPT"]
