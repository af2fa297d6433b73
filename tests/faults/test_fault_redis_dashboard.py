"""The console while the command service answers 503 (its Redis is down): every page
and callback says so in the operator's language, with when to try again — never a
traceback, never "wrong password", never the command service's English detail.

The command service is a fake here (httpx2.MockTransport): it knows who a token is
(``/auth/me`` reads PostgreSQL) and answers everything else 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from dash import Dash
from fastapi.testclient import TestClient

from dashboard.api import ApiError, CommandApi
from dashboard.app import create_app
from dashboard.callbacks.common import error_text
from dashboard.i18n import lang_of, t
from tests.dashboard.who import me_body
from wuwang.settings import Settings

RETRY_AFTER = "7"
DETAIL = "live state (Redis) unavailable; try again shortly"
ROLES = {
    "admin": ("admin1", "admin"),
    "operator": ("operator1", "operator"),
    "field": ("T-FIRE-01", "field"),
}


def command_service_without_redis(request: httpx2.Request) -> httpx2.Response:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if request.url.path == "/auth/me" and token in ROLES:
        user, role = ROLES[token]
        team = user if role == "field" else None
        body = me_body(user, role, team, user)
        return httpx2.Response(200, json=body)
    return httpx2.Response(
        503,
        json={"detail": DETAIL, "reason": "redis_unavailable"},
        headers={"Retry-After": RETRY_AFTER},
    )


@pytest.fixture
def app() -> Dash:
    api = CommandApi("http://command.test", transport=httpx2.MockTransport(command_service_without_redis))
    return create_app(Settings(demo_mode=True, dashboard_streets_file=None), api=api)


@pytest.fixture
def client(app: Dash) -> Iterator[TestClient]:
    with TestClient(app.server, raise_server_exceptions=False) as c:
        yield c


def callback_key(app: Dash, *outputs: str) -> str:
    for key in app.callback_map:
        plain = re.sub(r"@[0-9a-f]+", "", key)
        if all(o in plain for o in outputs):
            return str(key)
    raise KeyError(outputs)


def fire(client: TestClient, app: Dash, key: str, values: dict[str, Any], changed: str | None = None) -> Any:
    """One server callback as the browser runs it; ``values`` by "id.prop", the rest None."""
    spec = app.callback_map[key]

    def entry(dep: dict[str, Any]) -> Any:
        ident, prop = dep["id"], dep["property"]
        if ident.startswith("{"):
            return []  # pattern inputs (ALL): nothing drawn yet
        return {"id": ident, "property": prop, "value": values.get(f"{ident}.{prop}")}

    outputs: list[Any] = []
    for part in key.strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        # a pattern output (ALL) with nothing drawn yet is an empty list of components
        outputs.append([] if ident.startswith("{") else {"id": ident, "property": prop})
    inputs = [entry(d) for d in spec["inputs"]]
    first = spec["inputs"][0]
    payload = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": inputs,
        "state": [entry(d) for d in spec["state"]],
        "changedPropIds": [changed or f"{first['id']}.{first['property']}"],
    }
    return client.post("/_dash-update-component", json=payload)


def said(response: Any) -> str:
    """Everything a callback's answer would put on the screen, as one text."""
    return json.dumps(response.json(), ensure_ascii=False)


@pytest.mark.parametrize("name", ["zh_CN", "en"])
def test_the_unavailable_message_is_the_operators_language(name: str) -> None:
    lang = lang_of(name)
    exc = ApiError(503, DETAIL, retry_after=7)
    text = error_text(lang, exc)
    assert text == t(lang, "error.unavailable", retry=7)
    assert "7" in text and DETAIL not in text
    assert t("zh_CN", "error.unavailable", retry=7) != t("en", "error.unavailable", retry=7)


def test_the_command_clients_error_carries_retry_after() -> None:
    api = CommandApi("http://command.test", transport=httpx2.MockTransport(command_service_without_redis))

    async def ask() -> ApiError:
        try:
            await api.get("/teams", "operator")
        except ApiError as exc:
            return exc
        finally:
            await api.aclose()
        raise AssertionError("no error")

    exc = asyncio.run(ask())
    assert (exc.status, exc.retry_after) == (503, 7)


@pytest.mark.parametrize("name", ["zh_CN", "en"])
def test_login_says_unavailable_not_wrong_password(client: TestClient, app: Dash, name: str) -> None:
    lang = lang_of(name)
    key = callback_key(app, "session.data", "login-error.children")
    r = fire(
        client,
        app,
        key,
        {
            "login-button.n_clicks": 1,
            "login-user.value": "operator1",
            "login-password.value": "demo",
            "lang.data": lang,
        },
        "login-button.n_clicks",
    )
    assert r.status_code == 200, r.text
    text = said(r)
    assert t(lang, "error.unavailable", retry=7) in text
    assert t(lang, "login.refused") not in text


@pytest.mark.parametrize(
    ("outputs", "role"),
    [
        (("kpi-tiles.children",), "operator"),
        (("reserve-board.children",), "operator"),
        (("detail.children", "detail-meta.data"), "operator"),
    ],
)
def test_panels_say_unavailable_in_the_operators_language(
    client: TestClient, app: Dash, outputs: tuple[str, ...], role: str
) -> None:
    key = callback_key(app, *outputs)
    values = {
        "session.data": {"token": role},
        "lang.data": "zh_CN",
        "side-tabs.value": "reserve",
        "selected-incident.data": "INC-20261207-0001",
    }
    r = fire(client, app, key, values)
    assert r.status_code == 200, r.text
    text = said(r)
    assert t("zh_CN", "error.unavailable", retry=7) in text
    assert DETAIL not in text


def test_no_callback_fails_while_the_command_service_answers_503(client: TestClient, app: Dash) -> None:
    """The survey: every server callback, for a signed-in admin and for nobody."""
    failures = {}
    server_side = [k for k, spec in app.callback_map.items() if spec.get("callback") is not None]
    assert len(server_side) > 10
    for session in ({"token": "admin"}, {"token": "field"}, None):
        for key in server_side:
            r = fire(client, app, key, {"session.data": session, "lang.data": "zh_CN"})
            if r.status_code >= 500:
                failures[f"{key} as {session}"] = str(r.status_code)
            elif DETAIL in r.text:  # the command service's English detail on a Chinese screen
                failures[f"{key} as {session}"] = r.text[:200]
    assert not failures, failures


def test_field_page_and_reports_pass_the_wait_on(client: TestClient) -> None:
    for path, token in (("/field/api/current", "field"), ("/report/incident/INC-1.html", "operator")):
        r = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503, (path, r.text)
        assert r.headers.get("retry-after") == RETRY_AFTER, path
