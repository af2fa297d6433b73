from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from command.domain.vocabulary import Role
from command.security import Principal, issue_token
from wuwang.settings import DEMO_TOKEN_SECRET, Settings


def test_login_gives_a_short_lived_token(command_client: TestClient, command_settings: Settings) -> None:
    r = command_client.post("/auth/login", json={"username": "operator1", "password": "demo"})
    assert r.status_code == 200
    body = r.json()
    assert body["role"] == "operator" and body["team_id"] is None
    me = command_client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["user_id"] == "operator1"


def test_field_user_token_carries_its_team(
    login: Callable[[str], dict[str, str]], command_client: TestClient
) -> None:
    me = command_client.get("/auth/me", headers=login("T-FIRE-01")).json()
    actions = me.pop("actions")  # what the team may do: tests/command/test_policy_api.py
    assert "field.report" in actions["live"] and "incident.verify" not in actions["live"]
    assert me == {
        "user_id": "T-FIRE-01",
        "role": "field",
        "team_id": "T-FIRE-01",
        "display_name": "队伍 T-FIRE-01",
    }


@pytest.mark.parametrize(
    ("user", "password"), [("operator1", "wrong"), ("nobody", "demo"), ("operator1", "")]
)
def test_bad_credentials_refused(command_client: TestClient, user: str, password: str) -> None:
    r = command_client.post("/auth/login", json={"username": user, "password": password})
    assert r.status_code in (401, 422)


def test_login_is_rate_limited_per_user_and_address(command_client: TestClient) -> None:
    codes = [
        command_client.post("/auth/login", json={"username": "operator2", "password": "x"}).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    # from this address the limit holds even for the right password
    # (another address is not locked out: tests/security/test_sec_auth_sessions.py)
    r = command_client.post("/auth/login", json={"username": "operator2", "password": "demo"})
    assert r.status_code == 429


def test_tokens_expired_forged_or_missing_are_refused(command_client: TestClient) -> None:
    assert command_client.get("/auth/me").status_code == 401
    who = Principal("operator1", Role.OPERATOR)
    expired, _ = issue_token(who, secret=DEMO_TOKEN_SECRET, ttl_s=-10)
    r = command_client.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["detail"] == "token expired"
    forged, _ = issue_token(Principal("admin1", Role.ADMIN), secret="x" * 40, ttl_s=600)
    assert command_client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_health_and_metrics_need_no_token(command_client: TestClient) -> None:
    r = command_client.get("/healthz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["postgresql"] == "ok" and r.json()["checks"]["redis"] == "ok"
    assert command_client.get("/metrics").status_code == 200


def test_audit_log_is_append_only(command_client: TestClient, command_settings: Settings) -> None:
    command_client.post("/auth/login", json={"username": "operator1", "password": "demo"})
    with psycopg.connect(command_settings.shared.database_url or "", autocommit=True) as conn:
        for stmt in ("UPDATE audit_log SET outcome = 'ok'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(stmt)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_refresh_renews_a_valid_token_and_keeps_the_login_time(
    command_client: TestClient, command_settings: Settings
) -> None:
    first = command_client.post("/auth/login", json={"username": "commander1", "password": "demo"}).json()
    r = command_client.post("/auth/refresh", headers=_bearer(first["access_token"]))
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["access_token"] != first["access_token"]
    assert second["expires_at"] >= first["expires_at"] and second["role"] == "commander"
    signed_in = [
        jwt.decode(b["access_token"], options={"verify_signature": False})["auth_time"]
        for b in (first, second)
    ]
    assert signed_in[0] == signed_in[1]
    assert command_client.get("/auth/me", headers=_bearer(second["access_token"])).status_code == 200
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log"
            " WHERE action = 'auth.refresh' AND actor = 'commander1' AND outcome = 'ok'"
        ).fetchone()
    assert row is not None and row[0] == 1


def test_refresh_is_refused_past_a_shift_for_a_disabled_user_and_without_a_token(
    command_client: TestClient, command_settings: Settings
) -> None:
    assert command_client.post("/auth/refresh").status_code == 401
    long_ago = datetime.now(UTC) - timedelta(seconds=command_settings.command.session_max_s + 60)
    login = command_client.post("/auth/login", json={"username": "operator1", "password": "demo"}).json()
    sid = jwt.decode(login["access_token"], options={"verify_signature": False})["sid"]
    stale, _ = issue_token(
        Principal("operator1", Role.OPERATOR, signed_in_at=long_ago, session_id=sid),
        secret=DEMO_TOKEN_SECRET,
        ttl_s=600,
    )
    assert command_client.get("/auth/me", headers=_bearer(stale)).status_code == 200  # still valid itself
    r = command_client.post("/auth/refresh", headers=_bearer(stale))
    assert r.status_code == 401 and "shift" in r.json()["detail"]
    token = command_client.post("/auth/login", json={"username": "operator2", "password": "demo"}).json()
    with psycopg.connect(command_settings.shared.database_url or "", autocommit=True) as conn:
        conn.execute("UPDATE app_user SET disabled = true WHERE id = 'operator2'")
    r = command_client.post("/auth/refresh", headers=_bearer(token["access_token"]))
    assert r.status_code == 401 and "changed" in r.json()["detail"]
