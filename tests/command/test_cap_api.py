"""POST /warnings/cap and GET /warnings/inbound (command/routes/cap.py) on a running
command service: agencies' CAP stored, Update/Cancel linked, 422 with the reason for
what is unreadable or invalid, and who may import and read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.domain.cap import (
    Reference,
    SenderCode,
    ValuePair,
    WarningText,
    cap_from_warning,
    gb_identifier,
    to_cap_xml,
)
from tests.command.conftest import FIELD_TEAM
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]
DATA = Path(__file__).resolve().parents[1] / "data" / "cap"
MET = SenderCode("420600", "416", "000", "00")  # 襄阳市气象台, as the demo names it
XML = {"Content-Type": "application/cap+xml"}


def _met(
    level: str,
    *,
    at: datetime,
    seq: int = 1,
    msg_type: str = "Alert",
    refs: list[Reference] | None = None,
    hours: float = 6,
) -> tuple[bytes, Reference]:
    ident = gb_identifier(MET, at, seq)
    alert = cap_from_warning(
        identifier=ident,
        sender=str(MET),
        sent=at,
        level=level,
        event_type="11B04",
        texts=[
            WarningText("zh-CN", "暴雨", f"暴雨{level}色预警", "降雨量将达50毫米以上。", None, "樊城区"),
            WarningText("en", "Rainstorm", "Rainstorm warning", "50 mm and more.", None, "Fancheng"),
        ],
        onset=at,
        expires=at + timedelta(hours=hours),
        msg_type=msg_type,  # type: ignore[arg-type]
        references=refs or [],
        polygons=[[(32.0, 112.1), (32.1, 112.1), (32.1, 112.2), (32.0, 112.1)]],
        geocodes=[ValuePair("GB/T 2260", "420606")],
    )
    return to_cap_xml(alert), Reference(alert.sender, ident, at)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _post(client: TestClient, headers: dict[str, str], data: bytes) -> Any:
    return client.post("/warnings/cap", content=data, headers={**headers, **XML})


def test_import_update_cancel_and_the_active_list(command_client: TestClient, login: Login) -> None:
    op = login("operator1")
    t = _now()
    first, ref = _met("黄", at=t)
    r = _post(command_client, op, first)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["retired"] == []
    w = body["warning"]
    assert (w["level"], w["severity"], w["msg_type"], w["state"]) == ("yellow", "Moderate", "Alert", "active")
    assert w["colour"] == "#ffd700"  # the level's standard colour, for the map's inbound layer
    assert [i["language"] for i in w["infos"]] == ["zh-CN", "en"]
    assert len(w["areas"]) == 1  # the zh and en blocks' one area, kept once
    assert w["areas"][0]["geocodes"] == [{"name": "GB/T 2260", "value": "420606"}]
    assert w["received_by"] == "operator1"
    first_id = w["id"]

    again = _post(command_client, op, first)  # the same message twice is stored once
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["warning"]["id"] == first_id

    listed = command_client.get("/warnings/inbound", headers=op).json()
    assert [x["id"] for x in listed] == [first_id]

    update, uref = _met("橙", at=t + timedelta(seconds=1), msg_type="Update", refs=[ref])
    r = _post(command_client, login("commander1"), update)
    assert r.status_code == 201, r.text
    update_id = r.json()["warning"]["id"]
    assert r.json()["retired"] == [first_id]
    listed = command_client.get("/warnings/inbound", headers=op).json()
    assert [(x["id"], x["level"]) for x in listed] == [(update_id, "orange")]

    cancel, _ = _met("橙", at=t + timedelta(seconds=2), msg_type="Cancel", refs=[uref])
    r = _post(command_client, op, cancel)
    assert r.status_code == 201, r.text
    assert r.json()["retired"] == [update_id] and r.json()["warning"]["state"] == "cancelled"
    assert command_client.get("/warnings/inbound", headers=op).json() == []


def test_expired_and_exercise_alerts_are_stored_but_not_active(
    command_client: TestClient, login: Login, command_settings: Settings
) -> None:
    op = login("operator1")
    for path in sorted(DATA.glob("Oasis_*.xml")):  # all of 2003: long expired or never expiring
        r = _post(command_client, op, path.read_bytes())
        assert r.status_code == 201, (path.name, r.text)
    listed = command_client.get("/warnings/inbound", headers=op).json()
    # the Homeland and Amber alerts and the earthquake Update (of a message never received)
    # carry no expiry: active until cancelled; the thunderstorm warning expired in 2003
    assert sorted(x["identifier"] for x in listed) == ["43b080713727", "KAR0-0306112239-SW", "TRI13970876.2"]
    drill = _met("红", at=_now())[0].replace(b"<status>Actual</status>", b"<status>Exercise</status>")
    assert _post(command_client, op, drill).status_code == 201
    assert len(command_client.get("/warnings/inbound", headers=op).json()) == 3
    assert settings_rows(command_settings, "SELECT count(*) FROM inbound_warning") == 5
    imports = "SELECT count(*) FROM audit_log WHERE action = 'inbound_warning.import'"
    assert settings_rows(command_settings, imports) == 5


def settings_rows(settings: Settings, query: str) -> int:
    assert settings.shared.database_url
    with psycopg.connect(settings.shared.database_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&c;</alert>'
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"{}", "not well-formed XML"),
        (b"<alert>", "not well-formed XML"),
        (XXE, "DTDs and entities are refused"),
        (LAUGHS, "DTDs and entities are refused"),
        (
            b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>x</identifier></alert>",
            "OASIS schema",
        ),
        (
            (DATA / "Oasis_HomelandAlert.xml").read_bytes().replace(b"<msgType>Alert", b"<msgType>Ack"),
            "msgType Ack is not a warning",
        ),
    ],
    ids=["empty", "json", "unclosed", "xxe", "laughs", "xsd", "ack"],
)
def test_unreadable_or_invalid_files_are_422_with_the_reason(
    command_client: TestClient, login: Login, command_settings: Settings, data: bytes, reason: str
) -> None:
    r = _post(command_client, login("operator1"), data)
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert settings_rows(command_settings, "SELECT count(*) FROM inbound_warning") == 0


def test_larger_than_a_cap_file_is_refused_before_reading(command_client: TestClient, login: Login) -> None:
    r = _post(command_client, login("operator1"), b" " * (3 * 1024 * 1024))
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("user", "may_import", "may_import_drill", "may_read"),
    [
        ("operator1", True, True, True),
        ("commander1", True, True, True),
        ("admin1", True, True, True),
        ("planner1", False, True, True),  # planners: only a drill's (status Exercise)
        (FIELD_TEAM, False, False, False),
    ],
)
def test_who_may_import_and_read(
    command_client: TestClient,
    login: Login,
    command_settings: Settings,
    user: str,
    may_import: bool,
    may_import_drill: bool,
    may_read: bool,
) -> None:
    headers = login(user)
    data, _ = _met("蓝", at=_now())
    drill = _met("蓝", at=_now(), seq=2)[0].replace(b"<status>Actual</status>", b"<status>Exercise</status>")
    assert _post(command_client, headers, data).status_code == (201 if may_import else 403)
    assert _post(command_client, headers, drill).status_code == (201 if may_import_drill else 403)
    assert command_client.get("/warnings/inbound", headers=headers).status_code == (200 if may_read else 403)
    denied = settings_rows(
        command_settings,
        "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action LIKE 'inbound_warning.%'",
    )
    assert denied == (not may_import) + (not may_import_drill) + (not may_read)


def test_no_token_is_401(command_client: TestClient) -> None:
    assert command_client.post("/warnings/cap", content=b"<alert/>", headers=XML).status_code == 401
    assert command_client.get("/warnings/inbound").status_code == 401
