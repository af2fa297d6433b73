"""How the map console logs users in and out (dashboard/api.py): the browser's address
goes to the command service only together with the console's secret, and a logout ends
the session at the command service, not only in the tab."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from dash import Dash
from fastapi.testclient import TestClient

from dashboard.api import CommandApi
from dashboard.app import create_app as create_dashboard
from dashboard.context import Console
from tests.dashboard.test_exercise_console import fire
from wuwang.settings import CONSOLE_SECRET_HEADER, DEMO_CONSOLE_SECRET, FORWARDED_FOR_HEADER, Settings

TOKEN = {"access_token": "t", "user_id": "operator1", "role": "operator", "team_id": None, "expires_at": "x"}


def _recording() -> tuple[list[httpx2.Request], httpx2.MockTransport]:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path == "/auth/logout":
            return httpx2.Response(204)
        return httpx2.Response(200, json=TOKEN)

    return seen, httpx2.MockTransport(answer)


def _run(api: CommandApi, call: Any) -> None:
    async def go() -> None:
        try:
            await call
        finally:
            await api.aclose()

    asyncio.run(go())


def test_the_console_forwards_the_browsers_address_with_its_secret() -> None:
    seen, transport = _recording()
    api = CommandApi("http://cmd", transport=transport, console_secret="s" * 40)
    _run(api, api.login("operator1", "pw", "10.0.0.12"))
    (login,) = seen
    assert login.headers[FORWARDED_FOR_HEADER] == "10.0.0.12"
    assert login.headers[CONSOLE_SECRET_HEADER] == "s" * 40


def test_without_a_secret_no_address_is_forwarded() -> None:
    seen, transport = _recording()
    api = CommandApi("http://cmd", transport=transport)
    _run(api, api.login("operator1", "pw", "10.0.0.12"))
    assert FORWARDED_FOR_HEADER not in seen[0].headers and CONSOLE_SECRET_HEADER not in seen[0].headers


@pytest.mark.parametrize(
    ("settings", "secret"),
    [
        (Settings(demo_mode=True), DEMO_CONSOLE_SECRET),
        (Settings(demo_mode=False, command_console_secret="c" * 40), "c" * 40),
        (Settings(demo_mode=False), None),
    ],
)
def test_the_console_uses_the_shared_secret_of_the_settings(settings: Settings, secret: str | None) -> None:
    console = Console.create(settings)
    assert console.api._console_secret == secret
    asyncio.run(console.aclose())


def test_a_repository_value_is_refused_as_console_secret_outside_demo_mode() -> None:
    with pytest.raises(ValueError, match="COMMAND_CONSOLE_SECRET"):
        Settings(demo_mode=False, command_console_secret=DEMO_CONSOLE_SECRET[:20])


def test_logout_ends_the_session_at_the_command_service() -> None:
    seen, transport = _recording()
    api = CommandApi("http://cmd", transport=transport)
    _run(api, api.logout("the-token"))
    (logout,) = seen
    assert logout.method == "POST" and logout.url.path == "/auth/logout"
    assert logout.headers["Authorization"] == "Bearer the-token"


def _key(app: Dash, output: str, trigger: str) -> str:
    keys: dict[str, Any] = app.callback_map
    return next(
        k
        for k, spec in keys.items()
        if output in k and any(f"{d['id']}.{d['property']}" == trigger for d in spec["inputs"])
    )


def test_the_login_page_forwards_the_browsers_address_and_logout_reaches_the_command_service() -> None:
    seen, transport = _recording()
    api = CommandApi("http://cmd", transport=transport, console_secret=DEMO_CONSOLE_SECRET)
    app = create_dashboard(Settings(demo_mode=True), api=api)
    client = TestClient(app.server, client=("10.0.0.12", 50000))
    login = _key(app, "session.data", "login-button.n_clicks")
    status, _ = fire(
        client,
        app,
        login,
        {"login-button.n_clicks": 1, "login-user.value": "operator1", "login-password.value": "pw"},
        "login-button.n_clicks",
    )
    assert status in (200, 204)
    (sent,) = [r for r in seen if r.url.path == "/auth/login"]
    assert sent.headers[FORWARDED_FOR_HEADER] == "10.0.0.12"
    assert sent.headers[CONSOLE_SECRET_HEADER] == DEMO_CONSOLE_SECRET
    logout = _key(app, "session.data", "logout.n_clicks")
    clicked = {"logout.n_clicks": 1, "session.data": {"token": "tk"}}
    status, body = fire(client, app, logout, clicked, "logout.n_clicks")
    assert status in (200, 204)
    assert body["response"]["session"]["data"] is None
    (out,) = [r for r in seen if r.url.path == "/auth/logout"]
    assert out.headers["Authorization"] == "Bearer tk"
