"""The command service as an attacker meets it: an app with a small seeded city, served
in-process, where a crash shows as the 500 a client would see; ``login`` gives the
Authorization header of a demo user (password ``demo``), cached per user."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from command.app import create_app
from tests.command.conftest import _seed_minimal_city
from wuwang.settings import Settings

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(account="command")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    assert settings.shared.database_url
    _seed_minimal_city(settings.shared.database_url)
    # raise_server_exceptions=False: a crash must show as the 500 a client would see.
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def login(client: TestClient) -> Headers:
    cache: dict[str, dict[str, str]] = {}

    def headers(user: str) -> dict[str, str]:
        if user not in cache:
            r = client.post("/auth/login", json={"username": user, "password": "demo"})
            assert r.status_code == 200, r.text
            cache[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return cache[user]

    return headers
