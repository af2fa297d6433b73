"""The acts on an incident are one table of routes served by one handler
(command/routes/incidents.py ``ACTS``): their OpenAPI is still what the clients were
written against — path, body model, operation id, summary, description, answers."""

from __future__ import annotations

from typing import Any

import pytest

from command.app import create_app
from command.routes.incidents import ACTS
from wuwang.settings import Settings

# path → (body model, operation id, summary, description), as before the table
EXPECTED: dict[str, tuple[str, str, str, str | None]] = {
    "verify": ("Act", "incident_verify", "立案: confirm the incident and take it on", None),
    "reopen": ("Act", "incident_reopen", "back on scene after resolve", None),
    "hold": ("Act", "incident_hold", "挂起: park an open incident (reason required)", None),
    "resume": ("Act", "incident_resume", "恢复: take a held incident back into active work", None),
    "cancel": ("Act", "incident_cancel", "cancel (reason required)", None),
    "false-alarm": ("Act", "incident_false_alarm", "mark a false alarm (reason required)", None),
    "resolve": (
        "Closing",
        "incident_resolve",
        "the situation is under control (处置完毕); guarded by open work",
        None,
    ),
    "close": ("Closing", "incident_close", "结案; guarded by open work", None),
    "level": (
        "LevelChange",
        "change_level",
        "Change Level",
        "Raise or lower the response level: a commander's act.",
    ),
    "type": ("Reclassify", "reclassify", "Reclassify", None),
    "notes": ("Note", "add_note", "Add Note", None),
    "arrived": (
        "Arrival",
        "team_arrived",
        "Team Arrived",
        "A team is on scene (到场): the team itself (field user) or the command centre.",
    ),
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    # Building the app opens no connection: the addresses are never used.
    settings = Settings(
        demo_mode=True, database_url="postgresql://nobody@127.0.0.1:1/none", redis_url="redis://127.0.0.1:1/0"
    )
    schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def test_every_act_route_is_in_the_table() -> None:
    assert [act.path for act in ACTS] == list(EXPECTED)


@pytest.mark.parametrize("path", list(EXPECTED))
def test_act_route_openapi_is_unchanged(openapi: dict[str, Any], path: str) -> None:
    body, name, summary, description = EXPECTED[path]
    url = f"/incidents/{{incident_id}}/{path}"
    assert list(openapi["paths"][url]) == ["post"]
    op = openapi["paths"][url]["post"]
    assert op["operationId"] == f"{name}_incidents__incident_id__{path.replace('-', '_')}_post"
    assert (op["summary"], op.get("description")) == (summary, description)
    assert op["requestBody"] == {
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        "required": True,
    }
    assert [p["name"] for p in op["parameters"]] == ["incident_id"]
    assert sorted(op["responses"]) == ["200", "401", "403", "404", "409", "422"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IncidentOut"
    }
    refusal = op["responses"]["409"].get("content", {}).get("application/json", {}).get("schema")
    assert refusal == ({"$ref": "#/components/schemas/ClosingRefusal"} if body == "Closing" else None)
