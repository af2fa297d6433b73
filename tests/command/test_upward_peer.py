"""The whole reporting path against a real peer: the simulated upper-level platform
(``python -m simulators upper``, here its server in a thread) receives the first report of
a level II fire from the command service's outbox, validates it against the exchange form,
answers with a receipt (回执) that the command service records, and issues an instruction
(批示) that the command service fetches — each of them in the duty log (值班日志)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
from fastapi.testclient import TestClient

from command.app import create_app
from command.users import DEMO_PASSWORD
from simulators.upper import UpperPlatform, serve
from tests.command.conftest import _seed_minimal_city
from tests.command.test_inbox_api import db
from tests.command.test_incidents_api import wait_for
from tests.command.test_upward_reports_api import LEVEL_II_FIRE
from wuwang.settings import Settings

RECEIPT_SCHEMA = json.loads(Path("docs/schemas/exchange/receipt.schema.json").read_text(encoding="utf-8"))


@contextmanager
def running(platform: UpperPlatform) -> Iterator[tuple[UpperPlatform, str]]:
    server = serve(platform, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="upper-peer", daemon=True)
    thread.start()
    try:
        yield platform, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def peer() -> Iterator[tuple[UpperPlatform, str]]:
    with running(UpperPlatform()) as started:
        yield started


@pytest.fixture
def slow_peer() -> Iterator[tuple[UpperPlatform, str]]:
    """A peer that takes reports (202) and signs their receipts later: an hour, or when told."""
    with running(UpperPlatform(receipt_delay_s=3600, instruct_on_first=False)) as started:
        yield started


Headers = dict[str, str]


def login_both(client: TestClient) -> tuple[Headers, Headers]:
    def login(user: str) -> Headers:
        r = client.post("/auth/login", json={"username": user, "password": DEMO_PASSWORD})
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return login("operator1"), login("commander1")


def send_first_report(client: TestClient, op: Headers, cmd: Headers) -> tuple[str, str]:
    """A level II fire's first report drafted, approved and sent: (incident id, its reports' path)."""
    incident = client.post("/incidents", json=LEVEL_II_FIRE, headers=op).json()["id"]
    reports = f"/incidents/{incident}/reports"
    client.post(f"/incidents/{incident}/figures", json={"deaths": 0, "missing": 0, "injured": 2}, headers=op)
    assert client.post(reports, json={"kind": "first"}, headers=op).status_code == 201
    client.patch(f"{reports}/1", json={"measures": "启动Ⅱ级响应", "teams": ["消防救援队"]}, headers=op)
    assert client.post(f"{reports}/1/approve", headers=cmd).status_code == 200
    assert client.post(f"{reports}/1/send", headers=op).status_code == 200
    return incident, reports


def test_a_sent_report_is_received_acknowledged_and_answered_with_an_instruction(
    make_settings: Callable[..., Settings], peer: tuple[UpperPlatform, str]
) -> None:
    platform, url = peer
    settings = make_settings(account="command", command_upper_url=url, command_upper_interval_s=0.2)
    assert settings.shared.database_url
    _seed_minimal_city(settings.shared.database_url)
    with TestClient(create_app(settings)) as client:
        op, cmd = login_both(client)
        incident, reports = send_first_report(client, op, cmd)

        def acknowledged() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"{reports}/1", headers=op).json()
            return body if body["state"] == "acknowledged" else None

        done = wait_for(acknowledged)
        assert done["receipt_by"] == "湖北省应急管理厅总值班室 省厅值班员"
        assert done["delivery"]["delivered_at"] is not None and done["delivery"]["attempts"] == 1
        # the peer holds it, valid against the form, as the command service sent it
        received = platform.reports[f"{incident}-R01"]
        assert (received.reportKindName, received.event.severityName) == ("首报", "重大")
        assert received.event.casualties.injured == 2

        def instructed() -> list[dict[str, Any]] | None:
            found = [
                i
                for i in client.get("/reports/instructions", headers=cmd).json()
                if i["incident_id"] == incident
            ]
            return found or None

        (instruction,) = wait_for(instructed)
        assert instruction["report_id"] == f"{incident}-R01" and "及时续报" in instruction["text"]
        clocks = {c["kind"]: c["state"] for c in client.get(reports, headers=cmd).json()["clocks"]}
        assert clocks["phone"] == clocks["written"] == "met"
        log = {
            r[0]: r[1]
            for r in db(
                settings,
                "SELECT kind, text FROM duty_log_entry WHERE detail->>'incident_id' = %s",
                incident,
            )
        }
        assert {"report_sent", "receipt_received", "instruction_received"} <= set(log)
        assert "及时续报" in log["instruction_received"]
        # on the duty desk, to be passed on and followed up like the leader's own
        (desk,) = db(
            settings, "SELECT issued_by, state FROM duty_instruction WHERE incident_id = %s", incident
        )
        assert desk == ("湖北省应急管理厅总值班室 省厅带班领导", "open")

    # a form that is not the exchange form is refused, with a receipt that says why
    answer = httpx2.post(f"{url}/reports", json={"reportId": "X-R01", "formVersion": "0.9"})
    assert answer.status_code == 422
    jsonschema.validate(answer.json(), RECEIPT_SCHEMA)
    assert answer.json()["status"] == "rejected" and "formVersion" in answer.json()["reason"]


def test_a_receipt_signed_later_is_fetched_and_recorded_once(
    make_settings: Callable[..., Settings], slow_peer: tuple[UpperPlatform, str]
) -> None:
    platform, url = slow_peer
    settings = make_settings(account="command", command_upper_url=url, command_upper_interval_s=0.2)
    assert settings.shared.database_url
    _seed_minimal_city(settings.shared.database_url)
    with TestClient(create_app(settings)) as client:
        op, cmd = login_both(client)
        incident, reports = send_first_report(client, op, cmd)
        report_id = f"{incident}-R01"

        def delivered() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"{reports}/1", headers=op).json()
            return body if body["delivery"]["delivered_at"] is not None else None

        taken = wait_for(delivered)  # answered 202: delivered, not yet acknowledged
        assert taken["state"] == "sent" and taken["receipt_by"] is None
        assert taken["delivery"]["attempts"] == 1 and taken["delivery"]["last_error"] is None
        assert report_id in platform.unsigned
        again = httpx2.post(f"{url}/reports", json=platform.reports[report_id].model_dump(mode="json"))
        assert (again.status_code, again.json()["status"]) == (202, "accepted")  # a retry: still owed

        (receipt,) = platform.sign_all()  # the upper level's duty office signs

        def acknowledged() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"{reports}/1", headers=op).json()
            return body if body["state"] == "acknowledged" else None

        done = wait_for(acknowledged)
        assert done["receipt_by"] == "湖北省应急管理厅总值班室 省厅值班员"
        # fetched again on every round (with an overlap), recorded once
        stored = platform.receipts_since(None)
        jsonschema.validate(stored[0], RECEIPT_SCHEMA)
        assert [r["receiptId"] for r in stored] == [receipt.receiptId]
        assert db(settings, "SELECT receipt_id FROM upward_receipt WHERE report_id = %s", report_id) == [
            (receipt.receiptId,)
        ]
        lines = db(
            settings,
            "SELECT count(*) FROM duty_log_entry"
            " WHERE kind = 'receipt_received' AND detail->>'incident_id' = %s",
            incident,
        )
        assert lines == [(1,)]
    answer = httpx2.post(f"{url}/reports", json=platform.reports[report_id].model_dump(mode="json"))
    assert (answer.status_code, answer.json()["receiptId"]) == (200, receipt.receiptId)
