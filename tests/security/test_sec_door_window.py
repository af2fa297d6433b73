"""The door's time window: a message whose ``ts`` retention would delete within the hour,
or one from the future, is dead-lettered at the door with a reason naming the bound —
never stored, acknowledged and then deleted (its id left in the ledger, so that a
corrected resend would be dropped as a duplicate).

Attacks: the contract's own §7 example times (2025), a far-future ``ts`` (2099), and the
three absurd dates 0001-01-01, 9999-12-31 and 1970-01-01, through the real writer and
PostgreSQL; the bounds themselves, as a hypothesis property of ``parse_message``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.feeds import delivery
from testkit.feeds import write_batch as write
from tests.command.conftest import FIELD_TEAM
from tests.command.test_dispatch_api import isolated_settings
from tests.command.test_field_mqtt_v2 import send, terminal
from tests.command.test_incidents_api import wait_for
from tests.command.test_mqtt_side import running_command
from tests.conftest import Broker
from tests.dashboard.test_console_units import FakeCommand, field_client
from wuwang import db
from wuwang.contract import (
    ContractError,
    TsWindow,
    is_clock_refusal,
    parse_message,
    team_topic,
    wuwang_topic,
)
from wuwang.settings import Settings


def rows(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


@pytest.fixture
def door(database_url: str) -> Settings:
    return Settings(demo_mode=True, database_url=database_url, retention_days=400, ingest_clock_skew_s=300)


def sensor(msg_id: str, ts: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": msg_id, "device_id": "SMK-0012-03", "kind": "smoke", "value": 1.5,
                            "unit": "%/m", "lat": 32.04215, "lon": 112.14403}
    if ts is not None:
        body["ts"] = ts
    return body


SENSOR_TOPIC = wuwang_topic("venue", "sensor", "GW-FC-0012")

#: (ts, which bound it breaks)
OUTSIDE = [
    ("2025-03-12T09:41:27+08:00", "retention"),  # the contract's §7 example time
    ("2099-01-01T00:00:00Z", "ahead"),
    ("0001-01-01T00:00:00Z", "retention"),
    ("9999-12-31T23:59:59Z", "ahead"),
    ("1970-01-01T00:00:00Z", "retention"),  # a device whose clock was never set
]


@pytest.mark.parametrize(("ts", "bound"), OUTSIDE)
def test_out_of_window_ts_is_dead_lettered_never_stored(door: Settings, database_url: str, ts: str,
                                                        bound: str) -> None:
    acks = write(door, [delivery(SENSOR_TOPIC, sensor("m1", ts))])
    assert len(acks) == 1, "a dead letter is acknowledged (redelivery would not make it readable)"
    assert rows(database_url, "SELECT count(*) FROM sensor_reading") == [(0,)]
    assert rows(database_url, "SELECT count(*) FROM message_ledger") == [(0,)], "its id is not used up"
    (reason,), = rows(database_url, "SELECT reason FROM dead_letter")
    if bound == "retention":
        assert "older than the 400-day retention window" in reason, reason
        assert "accepted from " in reason
    else:
        assert "more than 300 s ahead of the receipt time" in reason, reason
        assert "accepted until " in reason


def test_a_corrected_resend_with_the_same_id_is_stored(door: Settings, database_url: str) -> None:
    """The sender finds its message in the dead letters, fixes its clock and resends the same
    id: it is stored, not dropped as a duplicate (the door left no ledger entry behind)."""
    write(door, [delivery(SENSOR_TOPIC, sensor("m1", "2025-03-12T09:41:27+08:00"))])
    now = datetime.now(UTC)
    write(door, [delivery(SENSOR_TOPIC, sensor("m1", now.isoformat()))])
    assert rows(database_url, "SELECT msg_id FROM sensor_reading") == [("m1",)]
    assert rows(database_url, "SELECT count(*) FROM dead_letter") == [(1,)]


def test_inside_the_window_and_clockless_are_stored(door: Settings, database_url: str) -> None:
    now = datetime.now(UTC)
    items = [
        delivery(SENSOR_TOPIC, sensor("old-but-kept", (now - timedelta(days=399)).isoformat()), now),
        delivery(SENSOR_TOPIC, sensor("fast-clock", (now + timedelta(seconds=299)).isoformat()), now),
        delivery(SENSOR_TOPIC, sensor("clockless", None), now),
    ]
    write(door, items)
    got = rows(database_url, "SELECT msg_id, ts_from_receipt FROM sensor_reading ORDER BY msg_id")
    assert got == [("clockless", True), ("fast-clock", False), ("old-but-kept", False)]
    assert rows(database_url, "SELECT count(*) FROM dead_letter") == [(0,)]


def test_kept_at_the_door_means_kept_by_retention(door: Settings, database_url: str) -> None:
    """What the door accepts, the retention run right after it does not delete."""
    now = datetime.now(UTC)
    write(door, [delivery(SENSOR_TOPIC, sensor("edge", (now - timedelta(days=399, hours=23)).isoformat()))])
    with psycopg.connect(database_url, autocommit=True) as conn:
        db.apply_policies(conn, retention_days=door.shared.retention_days, compress_after_days=7)
    assert rows(database_url, "SELECT msg_id FROM sensor_reading") == [("edge",)]


@pytest.mark.parametrize(("topic", "body"), [
    (wuwang_topic("police", "call", "sys110"),
     {"call_id": "110-1", "category": "fire", "lat": 32.05, "lon": 112.16, "address": "", "description": "",
      "caller": ""}),
    (team_topic("T-FIRE-01", "position"), {"lat": 32.05, "lon": 112.16}),
    (f"exercise/v1/EX-1/{team_topic('T-FIRE-01', 'status')}", {"status": "available"}),
])
def test_every_feed_and_exercises_have_the_same_door(door: Settings, database_url: str, topic: str,
                                                     body: dict[str, Any]) -> None:
    write(door, [delivery(topic, {"id": "x1", "ts": "1970-01-01T00:00:00Z", **body})])
    (reason, exercise), = rows(database_url, "SELECT reason, exercise_id FROM dead_letter")
    assert "retention window" in reason
    assert exercise == ("EX-1" if topic.startswith("exercise/") else None)


def test_window_follows_the_settings(database_url: str) -> None:
    tight = Settings(demo_mode=True, database_url=database_url, retention_days=30, ingest_clock_skew_s=5)
    now = datetime.now(UTC)
    write(tight, [
        delivery(SENSOR_TOPIC, sensor("a", (now - timedelta(days=31)).isoformat()), now),
        delivery(SENSOR_TOPIC, sensor("b", (now + timedelta(seconds=60)).isoformat()), now),
        delivery(SENSOR_TOPIC, sensor("c", (now - timedelta(days=29)).isoformat()), now),
    ])
    reasons = [r for (r,) in rows(database_url, "SELECT reason FROM dead_letter ORDER BY id")]
    assert len(reasons) == 2
    assert "30-day retention window" in reasons[0] and "more than 5 s ahead" in reasons[1]
    assert rows(database_url, "SELECT msg_id FROM sensor_reading") == [("c",)]


def test_skew_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="ingest_clock_skew_s"):
        Settings(demo_mode=True, ingest_clock_skew_s=-1)


# --- the bound itself (pure) -----------------------------------------------------------

WINDOW = TsWindow(max_age=timedelta(days=400), max_ahead=timedelta(minutes=5))
RECEIVED = datetime(2026, 12, 7, 8, 20, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(offset_s=st.integers(min_value=-(400 * 86400) - 10**6, max_value=10**6))
def test_parse_message_accepts_exactly_the_window(offset_s: int) -> None:
    ts = RECEIVED + timedelta(seconds=offset_s)
    payload = orjson.dumps(sensor("p", ts.isoformat()))
    inside = -400 * 86400 <= offset_s <= 300
    if inside:
        assert parse_message(SENSOR_TOPIC, payload, RECEIVED, window=WINDOW).ts == ts
    else:
        with pytest.raises(ContractError, match=r"^ts .* (retention window|ahead of the receipt time)") as e:
            parse_message(SENSOR_TOPIC, payload, RECEIVED, window=WINDOW)
        assert is_clock_refusal(e.value.reason), "the field page would not know it for a clock refusal"


def test_without_a_window_parse_message_is_unchanged() -> None:
    """Tools that only check the contract's shape (docs examples) pass no window."""
    msg = parse_message(SENSOR_TOPIC, orjson.dumps(sensor("p", "1970-01-01T00:00:00Z")), RECEIVED)
    assert msg.ts == datetime(1970, 1, 1, tzinfo=UTC)


# --- the contract's own examples -----------------------------------------------------------

_EXAMPLE = re.compile(r"^<!-- example topic=(\S+) -->\n```json\n(.*?)\n```$", re.MULTILINE | re.DOTALL)


def contract_examples() -> list[tuple[str, dict[str, Any]]]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "mqtt-contract.md").read_text(encoding="utf-8")
    return [(m[1], orjson.loads(m[2])) for m in _EXAMPLE.finditer(text)]


def test_the_contract_examples_as_published_today(door: Settings, database_url: str) -> None:
    """§7 says its times are illustrations: published as they stand (2025), each example with
    a ts is refused with the retention bound named; with the current time in ts, as the page
    tells a sender to do, every example is stored."""
    examples = contract_examples()
    assert len(examples) >= 7
    write(door, [delivery(topic, body) for topic, body in examples])
    with_ts = sum(1 for _, body in examples if "ts" in body)
    reasons = [r for (r,) in rows(database_url, "SELECT reason FROM dead_letter")]
    assert len(reasons) == with_ts > 0
    assert all("retention window" in r for r in reasons), reasons

    now = datetime.now(UTC)
    write(door, [delivery(topic, body | {"ts": now.isoformat()} if "ts" in body else body)
                 for topic, body in examples])
    (ledger,), = rows(database_url, "SELECT count(*) FROM message_ledger")
    assert ledger == len(examples)
    assert rows(database_url, "SELECT count(*) FROM dead_letter") == [(with_ts,)]


# --- the field page's reports: the same door, answered at once -------------------------


@pytest.mark.parametrize(
    ("ts", "said"),
    [
        ("2099-01-01T00:00:00Z", "ahead of the receipt time"),
        ("1970-01-01T00:00:00Z", "retention window"),
    ],
)
def test_a_field_report_the_ingest_would_refuse_is_refused_to_the_team(
    client: TestClient, login: Callable[[str], dict[str, str]], database_url: str, ts: str, said: str
) -> None:
    """``POST /field/reports`` queues the report for the broker and answers 202; the ingest
    then dead-letters a ``ts`` outside its window. The team was told "queued" about a
    report that never reached the console: the route must apply the same door and say so."""
    team = login(FIELD_TEAM)
    body = {"id": "rep-ts", "category": "on_scene", "description": "已到达", "lat": 32.04, "lon": 112.14}
    r = client.post("/field/reports", headers=team, json={**body, "ts": ts})
    assert r.status_code == 422, r.text
    assert said in r.text
    assert rows(database_url, "SELECT count(*) FROM mqtt_outbox") == [(0,)]
    now = datetime.now(UTC).isoformat()
    assert client.post("/field/reports", headers=team, json={**body, "ts": now}).status_code == 202


class _RefusingReports(FakeCommand):
    """A command service that refuses every report with ``detail``."""

    def __init__(self, detail: str) -> None:
        super().__init__(reports=True)
        self.detail = detail

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/field/reports":
            return httpx2.Response(422, json={"detail": self.detail})
        return super().__call__(request)


@pytest.mark.parametrize(
    ("detail", "key"),
    [
        (
            "ts 2099-01-01T00:00:00Z is more than 300 s ahead of the receipt time (accepted until x)",
            "field.clock_wrong",
        ),
        (
            "ts 1970-01-01T00:00:00Z is older than the 400-day retention window (accepted from x)",
            "field.clock_wrong",
        ),
        ("category: String should have at most 64 characters", None),
    ],
)
def test_the_field_page_says_a_clock_refusal_in_the_teams_words(detail: str, key: str | None) -> None:
    report = {"id": "r-1", "category": "fire", "description": "三楼起火", "lat": 32.05, "lon": 112.14}
    r = field_client(_RefusingReports(detail)).post(
        "/field/api/report", headers={"Authorization": "Bearer team"}, json=report
    )
    assert r.status_code == 422
    assert r.json().get("i18n_key") == key
    assert is_clock_refusal(detail) == (key is not None)
    for name in ("zh_CN", "en"):
        path = Path(__file__).resolve().parents[2] / "wuwang" / "i18n" / f"{name}.json"
        catalogue = orjson.loads(path.read_bytes())
        assert catalogue["field.clock_wrong"].strip()


@pytest.mark.mosquitto
def test_the_command_service_keeps_the_same_door_for_team_statuses(
    make_settings: Callable[..., Settings], mqtt_broker: Broker
) -> None:
    """A team status is read by the ingest (stored) and by the command service (the team's
    row). The ingest dead-letters one whose ts is outside the window; the command service
    applied it all the same — the team 'on scene since 1970-01-01' on the console, with no
    row behind it. Now both keep one door: refused by both, applied by neither."""
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs)")
    settings = isolated_settings(make_settings)
    url = settings.shared.database_url or ""
    topic = team_topic(FIELD_TEAM, "status")
    with running_command(settings) as (_client, _login), terminal(mqtt_broker, FIELD_TEAM, []) as team:
        before = rows(url, "SELECT status, status_at FROM team WHERE id = %s", FIELD_TEAM)
        for n, ts in enumerate(("1970-01-01T00:00:00Z", "2099-01-01T00:00:00Z"), start=1):
            send(team, topic, {"id": f"st-{n}", "ts": ts, "status": "on_scene", "seq": n})
        now = datetime.now(UTC)
        send(team, topic, {"id": "st-3", "ts": now.isoformat(), "status": "en_route", "seq": 3})
        wait_for(lambda: rows(url, "SELECT status FROM team WHERE id = %s", FIELD_TEAM) == [("en_route",)])
        ((status_at,),) = rows(url, "SELECT status_at FROM team WHERE id = %s", FIELD_TEAM)
        assert status_at >= now - timedelta(seconds=1), (before, status_at)
        said = rows(url, "SELECT detail->>'to' FROM audit_log WHERE action = 'team.status' ORDER BY id")
        assert ("on_scene",) not in said, "a status outside the window was applied"
