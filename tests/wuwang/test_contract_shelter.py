"""The v2 shelter count (docs/mqtt-contract.md §12): its topic, what it must carry and
the reasons a count is refused at the door, with plain inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from wuwang.contract import (
    MAX_SHELTER_OCCUPANCY,
    ContractError,
    parse_shelter_report,
    shelter_team_of,
    shelter_topic,
)
from wuwang.risk import ShelterStatus

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
TOPIC = shelter_topic("T-FIRE-01")


def read(payload: object, topic: str = TOPIC) -> object:
    return parse_shelter_report(topic, orjson.dumps(payload), NOW)


def test_the_topic_is_v2_beside_v1_and_names_the_team() -> None:
    assert TOPIC == "teams/v2/T-FIRE-01/shelter"
    assert shelter_team_of(TOPIC) == "T-FIRE-01"
    for other in ("teams/v1/T-FIRE-01/shelter", "teams/v2/T-FIRE-01/status", "teams/v2/a/b/shelter",
                  "teams/v2/bad id/shelter"):
        assert shelter_team_of(other) is None, other


def test_a_count_is_read_with_its_time_or_the_receipt_time() -> None:
    msg = parse_shelter_report(
        TOPIC,
        orjson.dumps({"id": "c-1", "shelter_id": "SH-FC-01", "occupancy": 120, "status": "open",
                      "ts": "2026-12-07T17:25:00+08:00", "note": "kept"}),
        NOW,
    )
    assert (msg.team_id, msg.report.shelter_id, msg.report.occupancy) == ("T-FIRE-01", "SH-FC-01", 120)
    assert msg.report.status is ShelterStatus.OPEN and not msg.ts_from_receipt
    assert msg.ts == datetime(2026, 12, 7, 9, 25, tzinfo=UTC)
    bare = parse_shelter_report(TOPIC, b'{"id": "c-2", "shelter_id": "SH-FC-01", "occupancy": 0}', NOW)
    assert (bare.ts, bare.ts_from_receipt, bare.report.status) == (NOW, True, None)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"shelter_id": "SH-FC-01", "occupancy": 1}, "missing required field id"),
        ({"id": "x", "occupancy": 1}, "missing required field shelter_id"),
        ({"id": "x", "shelter_id": "SH-FC-01", "occupancy": -1}, "occupancy"),
        ({"id": "x", "shelter_id": "SH-FC-01", "occupancy": MAX_SHELTER_OCCUPANCY + 1}, "occupancy"),
        ({"id": "x", "shelter_id": "SH-FC-01", "occupancy": "12"}, "occupancy"),  # strict: not a number
        ({"id": "x", "shelter_id": "RS-FC-01", "occupancy": 1}, "shelter_id"),
        ({"id": "x", "shelter_id": "SH-FC-01", "occupancy": 1, "status": "crowded"}, "status"),
        ({"id": "x", "shelter_id": "SH-FC-01", "occupancy": 1, "ts": "2026-12-07T09:00:00"}, "UTC offset"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_bad_counts_are_refused_with_the_reason(payload: object, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        read(payload)


def test_a_count_on_another_topic_or_too_large_is_refused() -> None:
    with pytest.raises(ContractError, match="not a shelter topic"):
        read({"id": "x", "shelter_id": "SH-FC-01", "occupancy": 1}, topic="teams/v1/T-FIRE-01/shelter")
    with pytest.raises(ContractError, match="exceeds"):
        parse_shelter_report(TOPIC, b" " * 70_000, NOW)


def test_the_documented_example_is_read_and_matches_the_exported_schema() -> None:
    import json
    import re

    import jsonschema

    from wuwang.schemas_export import V2_DIR

    doc = (Path(__file__).resolve().parents[2] / "docs" / "mqtt-contract.md").read_text(encoding="utf-8")
    section = doc[doc.index("## 12. Shelter occupancy") :]
    found = re.search(r"Topic `([^`]+)`:\n\n```json\n(.*?)\n```", section, re.DOTALL)
    assert found is not None, "§12 lost its example"
    topic, body = found.groups()
    msg = parse_shelter_report(topic, body.encode(), NOW)
    assert (msg.team_id, msg.report.shelter_id, msg.report.occupancy) == ("T-FIRE-01", "SH-FC-01", 860)
    schema = json.loads((V2_DIR / "team-shelter.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(body))
