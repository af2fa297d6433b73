"""The routes' scope dependency: ``?exercise_id=`` becomes a Scope (live without it, or
no narrowing), and an id no exercise can have is refused before the handler."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from command.routes.scope import ScopeNarrowing, ScopeQuery
from wuwang.scope import Scope

app = FastAPI()


@app.get("/scoped")
async def scoped(scope: ScopeQuery) -> dict[str, Any]:
    return {"text": str(scope), "drill": scope.is_drill}


@app.get("/narrowed")
async def narrowed(scope: ScopeNarrowing) -> dict[str, Any]:
    return {"text": None if scope is None else str(scope)}


client = TestClient(app)


def test_no_exercise_id_is_live_or_no_narrowing() -> None:
    assert client.get("/scoped").json() == {"text": "live", "drill": False}
    assert client.get("/narrowed").json() == {"text": None}


def test_an_exercise_id_is_that_drill() -> None:
    assert client.get("/scoped", params={"exercise_id": "EX-1"}).json() == {
        "text": "drill:EX-1",
        "drill": True,
    }
    assert client.get("/narrowed", params={"exercise_id": "EX-1"}).json() == {
        "text": str(Scope.drill("EX-1"))
    }


def test_an_impossible_exercise_id_is_422() -> None:
    for bad in ("", "a b", "x" * 65, "EX/1", "EX-1\x00"):
        for path in ("/scoped", "/narrowed"):
            assert client.get(path, params={"exercise_id": bad}).status_code == 422, (path, bad)
