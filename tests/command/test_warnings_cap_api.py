"""Issued warnings as CAP 1.2 (GB/T 35965.1): the file is valid against the OASIS schema
and reads back as the same warning; an update and a cancel reference what they replace;
the Atom feed lists the live warnings in force; another console imports the file."""

from __future__ import annotations

from fastapi.testclient import TestClient

from command.cap_schema import read_cap
from command.domain.cap import level_of
from tests.command.conftest import FIELD_TEAM
from tests.command.test_inbox_api import Login
from tests.command.test_warnings_api import SQUARE, body, seed_places
from wuwang.settings import Settings


def test_an_issued_warning_is_valid_cap_that_reads_back_the_same(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_places(command_settings)
    op, cmd, field = login("operator1"), login("commander1"), login(FIELD_TEAM)
    ident = command_client.post("/warnings", json=body(), headers=op).json()["identifier"]
    draft_cap = command_client.get(f"/warnings/{ident}.cap", headers=op)
    assert draft_cap.status_code == 409  # a draft is not a warning anyone may release
    assert command_client.post(f"/warnings/{ident}/approve", headers=cmd).status_code == 200

    r = command_client.get(f"/warnings/{ident}.cap", headers=op)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/cap+xml")
    alert = read_cap(r.content)  # the XSD-validating reader
    assert alert.identifier == ident and alert.msg_type == "Alert" and alert.status == "Actual"
    (info,) = alert.infos
    assert info.language == "zh-CN" and info.headline == "樊城区暴雨橙色预警"
    assert info.severity == "Severe" and level_of(alert) == "orange"
    ring = info.areas[0].polygons[0]
    assert ring[0] == ring[-1] and [list(p) for p in ring[:-1]] == SQUARE
    assert command_client.get(f"/warnings/{ident}.cap", headers=field).status_code == 200  # sent to its team

    newer = command_client.post(f"/warnings/{ident}/update", json=body(level="red"), headers=cmd).json()
    update = read_cap(command_client.get(f"/warnings/{newer['identifier']}.cap", headers=op).content)
    assert update.msg_type == "Update" and [ref.identifier for ref in update.references] == [ident]
    assert level_of(update) == "red"

    feed = command_client.get("/warnings/feed.atom", headers=op)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    assert f"/warnings/{newer['identifier']}.cap".encode() in feed.content
    assert f"/warnings/{ident}.cap".encode() not in feed.content  # superseded: not in force
    assert command_client.get("/warnings/feed.atom", headers=field).status_code == 403

    r = command_client.post(
        f"/warnings/{newer['identifier']}/cancel", json={"reason": "雨势减弱"}, headers=cmd
    )
    assert r.status_code == 200, r.text
    cancel = read_cap(command_client.get(f"/warnings/{newer['identifier']}.cap", headers=op).content)
    assert cancel.msg_type == "Cancel" and cancel.references
    assert (
        f"/warnings/{newer['identifier']}.cap".encode()
        not in command_client.get("/warnings/feed.atom", headers=op).content
    )


def test_another_console_imports_the_exported_file(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_places(command_settings)
    op, cmd = login("operator1"), login("commander1")
    ident = command_client.post("/warnings", json=body(), headers=op).json()["identifier"]
    command_client.post(f"/warnings/{ident}/approve", headers=cmd)
    exported = command_client.get(f"/warnings/{ident}.cap", headers=op).content
    r = command_client.post(
        "/warnings/cap", content=exported, headers=op | {"content-type": "application/cap+xml"}
    )
    assert r.status_code == 201, r.text
    inbound = command_client.get("/warnings/inbound", headers=op).json()
    assert any(ident in str(row) for row in inbound)
