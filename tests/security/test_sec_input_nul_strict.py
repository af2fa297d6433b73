"""Bad input is answered, not crashed: a NUL (U+0000) in any text and loosely typed
scalars (``true`` as a level or a longitude) get 422 with the reason, never a 500;
the audit record of a refusal is written whatever the caller sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from command import audit, inputs
from command.inputs import NUL_REFUSED
from tests.command.conftest import FIELD_TEAM
from wuwang.settings import Settings

NUL = "\x00"
Headers = Callable[[str], dict[str, str]]


def _open(client: TestClient, login: Headers, **changes: Any) -> dict[str, Any]:
    body = {"type": "fire", "level": 3, "title": "测试火情", "lat": 32.04, "lon": 112.14, **changes}
    r = client.post("/incidents", headers=login("operator1"), json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def _refused_for_nul(r: Any) -> None:
    assert r.status_code == 422, r.text
    assert NUL_REFUSED in r.text or "pattern" in r.text


def _audit_rows(database_url: str, action: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT actor, outcome, object_id, detail FROM audit_log WHERE action = %s", (action,)
        ).fetchall()


# --- NUL in the body ------------------------------------------------------------------------


def test_nul_in_incident_title_is_422(client: TestClient, login: Headers) -> None:
    r = client.post(
        "/incidents",
        headers=login("operator1"),
        json={"type": "fire", "level": 3, "title": f"火{NUL}情", "lat": 32.04, "lon": 112.14},
    )
    _refused_for_nul(r)
    assert r.json()["detail"][0]["loc"] == ["body", "title"]


def test_nul_in_note_merge_target_and_reasons_is_422(client: TestClient, login: Headers) -> None:
    first, second = _open(client, login), _open(client, login)
    op, cmd = login("operator1"), login("commander1")
    path = f"/incidents/{first['id']}"
    attempts = [
        (op, f"{path}/notes", {"expected_version": first["version"], "text": f"a{NUL}b"}),
        (
            cmd,
            f"{path}/merge",
            {
                "into": f"{second['id']}{NUL}",
                "into_expected_version": second["version"],
                "expected_version": first["version"],
                "reason": "same fire",
            },
        ),
        (
            cmd,
            f"{path}/merge",
            {
                "into": second["id"],
                "into_expected_version": second["version"],
                "expected_version": first["version"],
                "reason": f"same{NUL}fire",
            },
        ),
        (op, f"{path}/cancel", {"expected_version": first["version"], "reason": NUL}),
        (cmd, f"{path}/level", {"expected_version": first["version"], "level": 2, "reason": f"x{NUL}"}),
        (cmd, f"/teams/{FIELD_TEAM}/status", {"status": "off_duty", "reason": f"下班{NUL}"}),
        (
            cmd,
            f"/incidents/{first['id']}/dispatch",
            {"team_id": FIELD_TEAM, "expected_version": 1, "reason": NUL},
        ),
    ]
    for headers, url, body in attempts:
        _refused_for_nul(client.post(url, headers=headers, json=body))
    # Nothing was changed by any of them.
    r = client.get(path, headers=op)
    assert r.json()["incident"]["version"] == first["version"]


def test_nul_in_a_grid_report_and_a_field_report_is_422(client: TestClient, login: Headers) -> None:
    r = client.post(
        "/grid/cases",
        headers=login("operator1"),
        json={"category": "fire_lane_blocked", "description": f"堵{NUL}", "lat": 32.04, "lon": 112.14},
    )
    _refused_for_nul(r)
    r = client.post(
        "/field/reports",
        headers=login(FIELD_TEAM),
        json={"id": "R-1", "category": "scene", "description": NUL, "lat": 32.0, "lon": 112.1},
    )
    _refused_for_nul(r)


# --- NUL in query parameters, where a refusal is audited ----------------------------------


@pytest.mark.parametrize("url", ["/grid/cases", "/grid/overdue", "/grid/kpis", "/kpis"])
@pytest.mark.parametrize("user", ["operator1", "planner1", "admin1"])
def test_nul_in_exercise_id_query_is_422(client: TestClient, login: Headers, url: str, user: str) -> None:
    r = client.get(url, headers=login(user), params={"exercise_id": f"EX{NUL}1"})
    _refused_for_nul(r)


def test_nul_in_reserve_and_grid_filters_is_422(client: TestClient, login: Headers) -> None:
    op = login("operator1")
    _refused_for_nul(client.get("/reserve/stock", headers=op, params={"item_code": NUL}))
    _refused_for_nul(client.get("/reserve/stock", headers=op, params={"warehouse_id": f"W{NUL}"}))
    _refused_for_nul(client.get("/grid/cases", headers=op, params={"grid_cell_id": f"G{NUL}"}))


def test_audit_of_a_refusal_survives_a_nul(make_settings: Callable[..., Settings]) -> None:
    """Defence in depth: even if a NUL reaches the audit writer, the refusal is recorded."""
    settings = make_settings(account="command")
    assert settings.shared.database_url
    database_url = settings.shared.database_url

    async def refuse() -> None:
        async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
            await audit.record_denied(
                pool,
                f"evil{NUL}user",
                "grid.read",
                f"may not read exercise EX{NUL}1",
                object_type="exercise",
                object_id=f"EX{NUL}1",
            )

    asyncio.run(refuse())
    rows = _audit_rows(settings.shared.database_url, "grid.read")
    assert rows == [("evil␀user", "denied", "EX␀1", {"reason": "may not read exercise EX␀1"})]


def test_the_login_body_refuses_nul_and_names_the_field(client: TestClient) -> None:
    """The login's body is an ``ApiIn`` like every other: a NUL in the user name or the
    password is refused at the door, naming the field — not by the database's look-up
    (the last-resort guard) after it was counted against the login budget."""
    for field in ("username", "password"):
        body = {"username": "admin1", "password": "demo"} | {field: f"ad{NUL}min1"}
        r = client.post("/auth/login", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", field], r.text
        assert NUL_REFUSED in r.text
    r = client.post("/auth/login", json={"username": True, "password": "demo"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "username"]
    assert client.post("/auth/login", json={"username": "admin1", "password": "demo"}).status_code == 200


def test_last_resort_guard_answers_a_database_data_error_with_422(
    make_settings: Callable[..., Settings],
) -> None:
    """A NUL (or any data PostgreSQL refuses) that reaches a query past every model:
    422 with the reason, and the service goes on answering."""
    database_url = make_settings(account="command").shared.database_url or ""
    app = FastAPI()
    inputs.install(app)

    @app.get("/echo")
    def echo(text: str) -> dict[str, str]:  # deliberately without the Text rule
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT %s::text", (text,)).fetchone()
        return {"text": row[0] if row else ""}

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/echo", params={"text": f"a{NUL}b"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["msg"] == inputs.DATA_REFUSED
        r = c.get("/echo", params={"text": "a\\u0000b"})  # an escaped NUL is text, stored as is
        assert r.status_code == 200 and r.json() == {"text": "a\\u0000b"}


# --- strict types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"level": True},
        {"level": "1"},
        {"level": 1.0},
        {"lon": True},
        {"lat": "32.04"},
        {"title": 5},
        {"type": 1},
    ],
)
def test_loose_scalars_are_refused(client: TestClient, login: Headers, changes: dict[str, Any]) -> None:
    body = {"type": "fire", "level": 3, "title": "测试火情", "lat": 32.04, "lon": 112.14, **changes}
    r = client.post("/incidents", headers=login("operator1"), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", next(iter(changes))]


def test_json_native_values_still_work(client: TestClient, login: Headers) -> None:
    """Integers where the API says number (JSON has one number type), enums and
    datetimes as strings: what the console and the field page send."""
    opened = _open(client, login, lat=32, lon=112)
    assert opened["level"] == 3
    r = client.post(
        f"/incidents/{opened['id']}/type",
        headers=login("commander1"),
        json={"expected_version": opened["version"], "type": "traffic_accident", "reason": "查明"},
    )
    assert r.status_code == 200, r.text
    r = client.post(
        "/field/reports",
        headers=login(FIELD_TEAM),
        json={
            "id": "R-ok-1",
            "category": "scene",
            "description": "到场",
            "lat": 32,
            "lon": 112.1,
            "ts": "2026-12-07T08:00:00+08:00",
        },
    )
    assert r.status_code == 202, r.text


def test_loose_scalars_elsewhere_are_refused(client: TestClient, login: Headers) -> None:
    opened = _open(client, login)
    cmd = login("commander1")
    attempts = [
        (f"/incidents/{opened['id']}/level", {"expected_version": True, "level": 2, "reason": "r"}),
        (f"/incidents/{opened['id']}/level", {"expected_version": 1, "level": True, "reason": "r"}),
        (
            f"/incidents/{opened['id']}/plan",
            {"plan_id": "high_rise_fire", "expected_version": 1, "force": "yes"},
        ),
        (f"/incidents/{opened['id']}/reserve", {"item_code": "water", "quantity": "10"}),
        ("/grid/cases", {"category": "fire_lane_blocked", "lat": True, "lon": 112.1}),
    ]
    for url, body in attempts:
        r = client.post(url, headers=cmd, json=body)
        assert r.status_code == 422, (url, r.text)
    r = client.post(
        "/field/reports",
        headers=login(FIELD_TEAM),
        json={"id": "R-2", "category": "scene", "description": "", "lat": 32.0, "lon": True},
    )
    assert r.status_code == 422, r.text
