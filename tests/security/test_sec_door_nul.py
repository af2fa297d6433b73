"""NUL (U+0000) wherever text comes in: PostgreSQL text and jsonb cannot hold it.

- the CSV importer: a NUL byte in any field of one row used to abort the whole import
  (``PostgreSQL text fields cannot contain NUL``, no line number); now that row is
  skipped and reported with its line, like any other unreadable row, and the rest is
  imported;
- the ingest: a NUL in any text field of any feed (as a ``\\u0000`` escape, or as a raw
  byte) becomes a dead letter with its reason, and the dead letter itself is stored
  (raw payload as bytea, topic and reason escaped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from simulators.importer import MappingError, Problem, import_csv, load_mapping, parse_mapping, read_calls
from testkit.feeds import delivery, write_batch
from wuwang.settings import Settings

# --- the CSV importer ------------------------------------------------------------------

MAPPING = parse_mapping({
    "time": {"column": "time", "format": "iso", "timezone": "Asia/Shanghai"},
    "location": {"lat_column": "lat", "lon_column": "lon"},
    "category": {"column": "cat", "map": {"火灾": "fire", "医疗": "medical"}},
    "description": {"columns": ["desc"]},
    "address_column": "addr",
    "id_column": "no",
    "extra_columns": ["unit"],
})
HEADER = "no,time,lat,lon,cat,desc,addr,unit\n"
GOOD = "J1,2024-03-01T08:00:00,32.05,112.16,火灾,三楼冒烟,樊城区人民路12号,U1\n"
LAST = "J9,2024-03-01T08:09:00,32.06,112.17,医疗,老人摔倒,襄城区,U9\n"
# One row per column with a NUL byte in it (line numbers: header 1, GOOD 2, these 3.., LAST).
NUL_ROWS = [
    "J2\x00,2024-03-01T08:01:00,32.05,112.16,火灾,x,y,U2\n",  # id
    "J3,2024-03-01T08:02:00\x00,32.05,112.16,火灾,x,y,U3\n",  # time
    "J4,2024-03-01T08:03:00,32.0\x005,112.16,火灾,x,y,U4\n",  # lat
    "J5,2024-03-01T08:04:00,32.05,112.16,火\x00灾,x,y,U5\n",  # category
    "J6,2024-03-01T08:05:00,32.05,112.16,火灾,三楼\x00冒烟,y,U6\n",  # description
    "J7,2024-03-01T08:06:00,32.05,112.16,火灾,x,人民路\x00,U7\n",  # address
    "J8,2024-03-01T08:07:00,32.05,112.16,火灾,x,y,U\x008\n",  # extra column
    "J10,2024-03-01T08:08:00,32.05,112.16,火灾,x,y,U10,\x00\n",  # a column nobody maps
]


def nul_file(tmp_path: Path) -> Path:
    path = tmp_path / "calls-with-nul.csv"
    path.write_text(HEADER + GOOD + "".join(NUL_ROWS) + LAST, encoding="utf-8")
    return path


def test_csv_rows_with_nul_are_skipped_and_reported_with_their_line(tmp_path: Path) -> None:
    with nul_file(tmp_path).open(encoding="utf-8", newline="") as stream:
        calls, report = read_calls(stream, MAPPING, "calls-with-nul.csv")
    assert [c.external_id for c in calls] == ["J1", "J9"]
    nul_lines = list(range(3, 3 + len(NUL_ROWS)))
    assert [p.line_no for p in report.problems] == nul_lines
    assert all(p.reason is Problem.UNREADABLE_ROW for p in report.problems)
    assert all("NUL" in p.detail and "\x00" not in p.detail for p in report.problems)
    assert report.rows_read == 2 + len(NUL_ROWS)


def test_csv_import_with_nul_rows_imports_the_rest(database_url: str, tmp_path: Path) -> None:
    dataset_id, report = import_csv(database_url, nul_file(tmp_path), MAPPING, dataset_id="DS-nul")
    assert report.imported == 2 and len(report.problems) == len(NUL_ROWS)
    with psycopg.connect(database_url) as conn:
        got = conn.execute("SELECT external_id FROM imported_call WHERE dataset_id = %s ORDER BY line_no",
                           (dataset_id,)).fetchall()
        (stats,) = conn.execute("SELECT stats FROM exercise WHERE id = %s", (dataset_id,)).fetchall()[0]
    assert got == [("J1",), ("J9",)]
    skipped = stats["import"]["problems"][str(Problem.UNREADABLE_ROW)]
    assert skipped == {"count": len(NUL_ROWS), "lines": list(range(3, 3 + len(NUL_ROWS)))}


# --- the ingest: every text field of every feed --------------------------------------------

BASE: dict[str, tuple[str, dict[str, Any]]] = {
    "sensor": ("wuwang/v1/venue/sensor/GW-1", {
        "device_id": "SMK-1", "kind": "smoke", "value": 1.0, "unit": "%/m"}),
    "video": ("wuwang/v1/video/video/CAM-1", {
        "camera_id": "CAM-1", "event": "fire_smoke", "confidence": 0.9, "lat": 32.0, "lon": 112.1,
        "snapshot_url": "https://x/y.jpg"}),
    "call": ("wuwang/v1/police/call/sys110", {
        "call_id": "110-1", "category": "fire", "lat": 32.0, "lon": 112.1, "address": "人民路",
        "description": "冒烟", "caller": "13812345678"}),
    "report": ("wuwang/v1/community/report/GW-7", {
        "reporter": "GW-7", "category": "road_damage", "description": "井盖缺失", "lat": 32.0, "lon": 112.1,
        "photo_url": "https://x/p.jpg"}),
    "team_report": ("teams/v1/T-1/report", {
        "reporter": "张队", "category": "on_scene", "description": "已到达", "lat": 32.0, "lon": 112.1}),
    "position": ("teams/v1/T-1/position", {"lat": 32.0, "lon": 112.1}),
    "status": ("teams/v1/T-1/status", {"status": "on_scene", "incident_id": "INC-1"}),
}
TEXT_FIELDS = {
    "sensor": ["id", "device_id", "kind", "unit"],
    "video": ["id", "camera_id", "event", "snapshot_url"],
    "call": ["id", "call_id", "category", "address", "description", "caller"],
    "report": ["id", "reporter", "category", "description", "photo_url"],
    "team_report": ["id", "reporter", "category", "description"],
    "position": ["id"],
    "status": ["id", "status", "incident_id"],
}
CASES = [(feed, f) for feed, fields in TEXT_FIELDS.items() for f in [*fields, "ts", "extra", "extra key"]]


def nul_body(feed: str, field: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"{feed}-1", **BASE[feed][1]}
    if field == "ts":
        body["ts"] = "2026-12-07T08:00:00\u0000Z"
    elif field == "extra":
        body["vendor"] = {"note": ["ok", "bad\u0000"]}
    elif field == "extra key":
        body["ven\u0000dor"] = 1
    else:
        body[field] = f"{body.get(field, 'x')}\u0000"
    return body


@pytest.fixture
def door(database_url: str) -> Settings:
    return Settings(demo_mode=True, database_url=database_url)


@pytest.mark.parametrize(("feed", "field"), CASES)
def test_nul_in_any_text_field_is_a_stored_dead_letter(door: Settings, database_url: str, feed: str,
                                                       field: str) -> None:
    topic, _ = BASE[feed]
    payload = orjson.dumps(nul_body(feed, field))
    assert write_batch(door, [delivery(topic, payload)])
    with psycopg.connect(database_url) as conn:
        dead = conn.execute("SELECT topic, payload, payload_size, reason FROM dead_letter").fetchall()
        ledger = conn.execute("SELECT count(*) FROM message_ledger").fetchone()
    assert ledger == (0,)
    assert len(dead) == 1
    got_topic, raw, size, reason = dead[0]
    assert got_topic == topic
    assert bytes(raw) == payload and size == len(payload), "the raw bytes are kept as sent"
    # The reason is the first rule the NUL breaks: U+0000 itself, or the field's pattern,
    # enumeration or date format; either way readable and storable.
    assert reason and "\x00" not in reason


def test_raw_nul_bytes_and_nul_in_the_topic_are_stored_dead_letters(door: Settings,
                                                                    database_url: str) -> None:
    items = [
        delivery("wuwang/v1/venue/sensor/GW-1", b'{"id": "a\x00b", "device_id": "S", "kind": "smoke"}'),
        delivery("wuwang/v1/venue/sensor/GW\x00-1", b'{"id": "c"}'),
        delivery("exercise/v1/EX-1/teams/v1/T\x00/status", b'{"id": "d", "status": "available"}'),
    ]
    assert len(write_batch(door, items)) == 3
    with psycopg.connect(database_url) as conn:
        dead = conn.execute(
            "SELECT topic, payload, reason, exercise_id FROM dead_letter ORDER BY id").fetchall()
    assert [bytes(d[1]) for d in dead] == [i.payload for i in items]
    assert dead[0][2].startswith("not valid UTF-8 JSON")
    assert dead[1][0] == "wuwang/v1/venue/sensor/GW\\x00-1" and "source_id in topic" in dead[1][2]
    assert dead[2][3] == "EX-1"
    assert all("\x00" not in d[0] + d[2] for d in dead)


def test_a_mapping_with_nul_is_refused_naming_the_key(tmp_path: Path) -> None:
    """YAML can write NUL ("\\0"); a template or column name holding one would put it into
    every imported row and fail the whole COPY. The mapping is refused, naming the key."""
    path = tmp_path / "nul.yaml"
    path.write_text(
        'time: {column: time, timezone: Asia/Shanghai}\n'
        'location: {lat_column: lat, lon_column: lon}\n'
        'category: {column: cat, map: {"火灾": fire}}\n'
        'description: {columns: [desc], template: "{desc}\\0"}\n', encoding="utf-8")
    with pytest.raises(MappingError, match=r"description\.template: .*NUL"):
        load_mapping(path)


@pytest.mark.parametrize("nul", [b"\x00", b"&#0;", b"&#x0;"])
def test_a_cap_document_with_nul_is_refused_as_not_well_formed(nul: bytes) -> None:
    """Another agency's CAP warning (``POST /warnings/cap``, ``command cap import``): XML
    1.0 cannot hold U+0000, raw or as a character reference, so the parser refuses the
    document (422) before any text of it reaches PostgreSQL."""
    from command.cap_schema import read_cap
    from command.domain.cap import CapRefused

    head = b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a'
    doc = head + nul + b"</identifier></alert>"
    with pytest.raises(CapRefused, match="not well-formed"):
        read_cap(doc)
