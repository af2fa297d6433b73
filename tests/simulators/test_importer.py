"""CSV import of historical call records: the pure reader (synthetic files with every
kind of bad row, line numbers, order, dedupe, datum, the real SF file) and the
database edge against the real PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml

from simulators.importer import (
    CallMapping,
    DatasetExists,
    ImportFileError,
    MappingError,
    Problem,
    import_csv,
    load_mapping,
    parse_mapping,
    read_calls,
)
from wuwang.contract import CallCategory
from wuwang.geo import gcj02_to_wgs84, haversine_m

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "simulators" / "mappings"
SF_CSV = ROOT.parent / "shared" / "data" / "sf_fire_calls.csv"
CN_CSV = ROOT / "tests" / "data" / "cn_110_sample.csv"

#: A plain layout for the synthetic tests: separate columns, ISO times, Chinese categories.
BASE: dict[str, Any] = {
    "time": {"column": "time", "format": "iso", "timezone": "Asia/Shanghai"},
    "location": {"lat_column": "lat", "lon_column": "lon"},
    "category": {"column": "cat", "map": {"火灾": "fire", "医疗": "medical", "交通": "traffic"}},
    "description": {"columns": ["desc"]},
    "id_column": "no",
}
HEADER = "no,time,lat,lon,cat,desc\n"


def mapping(**changes: Any) -> CallMapping:
    data = {**BASE, **changes}
    return parse_mapping(data)


def read(text: str, m: CallMapping | None = None) -> tuple[list[Any], Any]:
    return read_calls(io.StringIO(text, newline=""), m or mapping(), "test.csv")


# --- mapping files ---------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(MAPPINGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_mappings_load(path: Path) -> None:
    assert isinstance(load_mapping(path), CallMapping)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"time": {"column": "time", "format": "iso"}}, "time.timezone: missing"),
        ({"time": {"column": "time", "format": "iso", "timezone": "Mars/Olympus"}}, "time.timezone"),
        ({"time": {"column": "time", "format": "dd/mm/yyyy", "timezone": "UTC"}}, "time.format"),
        ({"category": {"column": "cat", "map": {"火灾": "arson"}}}, "category.map.火灾"),
        ({"location": {"lat_column": "lat"}}, "location"),
        ({"location": {"lat_column": "a", "lon_column": "b", "point_column": "p"}}, "location"),
        ({"location": {"point_column": "p", "order": "xy"}}, "location.order"),
        ({"description": {"columns": ["desc"], "template": "{other}"}}, "description"),
        ({"datum": "bd09"}, "datum"),
        ({"timzone": "UTC"}, "timzone: Extra inputs are not permitted"),
    ],
)
def test_broken_mapping_names_the_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(MappingError) as err:
        mapping(**change)
    assert key in str(err.value)


def test_yaml_errors_and_numeric_category_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("time: [unclosed\n", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(bad)
    with pytest.raises(MappingError, match="mapping must be"):
        parse_mapping(["a list"])
    # An unquoted numeric code is a YAML integer; it still matches the text in the file.
    m = mapping(category={"column": "cat", "map": {110: "criminal"}})
    calls, _ = read(HEADER + "1,2026-03-01T08:00:00+08:00,32,112,110,x\n", m)
    assert calls[0].category is CallCategory.CRIMINAL


def test_column_missing_from_header_is_a_file_error() -> None:
    with pytest.raises(ImportFileError, match="'desc'"):
        read("no,time,lat,lon,cat\n1,2026-03-01T08:00:00+08:00,32,112,火灾\n")
    with pytest.raises(ImportFileError, match="empty"):
        read("")


# --- rows ------------------------------------------------------------------------


def test_every_kind_of_bad_row_is_reported_with_its_line() -> None:
    text = HEADER + (
        "1,2026-03-01T08:00:00+08:00,32.01,112.12,火灾,厨房起火\n"  # 2 ok
        "2,yesterday,32.01,112.12,火灾,x\n"  # 3 bad time
        "3,,32.01,112.12,火灾,x\n"  # 4 empty time
        "4,2026-03-01T08:01:00+08:00,,112.12,医疗,x\n"  # 5 missing location
        "5,2026-03-01T08:02:00+08:00,0,0,医疗,x\n"  # 6 (0, 0)
        "6,2026-03-01T08:03:00+08:00,0.0,-0.0,医疗,x\n"  # 7 (0, 0) written differently
        "7,2026-03-01T08:04:00+08:00,95,112.12,医疗,x\n"  # 8 out of range
        "8,2026-03-01T08:05:00+08:00,32.01,200,医疗,x\n"  # 9 out of range
        "9,2026-03-01T08:06:00+08:00,north,112.12,医疗,x\n"  # 10 unreadable location
        "10,2026-03-01T08:07:00+08:00,32.01,112.12,飞碟,x\n"  # 11 unknown category
        "11,2026-03-01T08:08:00+08:00,32.01,112.12,,x\n"  # 12 empty category
        "12,2026-03-01T08:09:00+08:00,32.01\n"  # 13 row too short
        "\n"  # 14 blank: not a record
        "13,2026-03-01T08:10:00+08:00,32.02,112.13,交通,追尾\n"  # 15 ok
    )
    calls, report = read(text)
    assert [c.line_no for c in calls] == [2, 15]
    assert [(p.line_no, p.reason) for p in report.problems] == [
        (3, Problem.BAD_TIME), (4, Problem.BAD_TIME), (5, Problem.MISSING_LOCATION),
        (6, Problem.ZERO_LOCATION), (7, Problem.ZERO_LOCATION), (8, Problem.OUT_OF_RANGE),
        (9, Problem.OUT_OF_RANGE), (10, Problem.BAD_LOCATION), (11, Problem.UNKNOWN_CATEGORY),
        (12, Problem.UNKNOWN_CATEGORY), (13, Problem.MISSING_COLUMN),
    ]
    assert "'yesterday'" in report.problems[0].detail
    assert "'飞碟'" in report.problems[8].detail
    assert report.rows_read == 13
    assert report.rows_read == report.imported + report.folded + len(report.problems)
    by_reason = report.problems_by_reason()
    assert by_reason[str(Problem.ZERO_LOCATION)] == [6, 7]
    stored = report.as_json()
    assert stored["problems"]["bad time"] == {"count": 2, "lines": [3, 4]}
    assert stored["skipped"] == 11
    assert "line 13: missing column" in report.summary()


def test_default_category_takes_unknown_values_and_case_is_forgiven() -> None:
    m = mapping(category={"column": "cat", "map": {"Fire": "fire"}, "default": "other"})
    calls, report = read(HEADER + "1,2026-03-01T08:00:00+08:00,32,112,FIRE,x\n"
                                  "2,2026-03-01T08:00:00+08:00,32,112,飞碟,x\n", m)
    assert [c.category for c in calls] == [CallCategory.FIRE, CallCategory.OTHER]
    assert report.problems == []


def test_line_numbers_are_physical_across_multiline_quoted_fields() -> None:
    text = HEADER + (
        '1,2026-03-01T08:00:00+08:00,32,112,火灾,"first line\nsecond line\nthird line"\n'  # lines 2-4
        "2,bad,32,112,火灾,x\n"  # 5
        '3,2026-03-01T08:01:00+08:00,0,0,火灾,"spans\ntwo lines"\n'  # 6-7
        "4,2026-03-01T08:02:00+08:00,32,112,医疗,ok\n"  # 8
    )
    calls, report = read(text)
    assert [(c.line_no, c.description) for c in calls] == [
        (2, "first line\nsecond line\nthird line"), (8, "ok"),
    ]
    assert [(p.line_no, p.reason) for p in report.problems] == [
        (5, Problem.BAD_TIME), (6, Problem.ZERO_LOCATION),
    ]


def test_bom_and_crlf_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    body = HEADER.replace("\n", "\r\n") + (
        '1,2026-03-01T08:00:00+08:00,32,112,火灾,"a\r\nb"\r\n'  # lines 2-3
        "2,bad,32,112,火灾,x\r\n"  # line 4
    )
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    with path.open(encoding="utf-8-sig", newline="") as f:
        calls, report = read_calls(f, mapping(), path.name)
    assert len(calls) == 1
    assert calls[0].description == "a\r\nb"
    assert [(p.line_no, p.reason) for p in report.problems] == [(4, Problem.BAD_TIME)]


def test_out_of_order_rows_are_counted_and_sorted() -> None:
    text = HEADER + (
        "1,2026-03-01T08:10:00+08:00,32,112,火灾,a\n"
        "2,2026-03-01T08:05:00+08:00,32,112,火灾,b\n"  # earlier than line 2
        "3,2026-03-01T08:20:00+08:00,32,112,火灾,c\n"
        "4,2026-03-01T08:15:00+08:00,32,112,火灾,d\n"  # earlier than line 4
        "5,2026-03-01T00:16:00Z,32,112,火灾,e\n"  # 08:16 China time: earlier than line 4
        "6,2026-03-01T08:10:00+08:00,32,112,火灾,f\n"  # equal times keep file order
    )
    calls, report = read(text)
    assert [c.description for c in calls] == ["b", "a", "f", "d", "e", "c"]
    assert report.out_of_order == 4
    assert report.first_ts == datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
    assert report.last_ts == datetime(2026, 3, 1, 0, 20, tzinfo=UTC)


def test_times_without_offset_take_the_mapping_zone_and_dst_gaps_are_bad() -> None:
    m = mapping(time={"column": "time", "format": "%m/%d/%Y %I:%M:%S %p", "timezone": "America/Los_Angeles"})
    calls, report = read(HEADER + (
        "1,04/07/2020 11:53:08 PM,37.7,-122.4,火灾,x\n"
        "2,03/08/2020 02:30:00 AM,37.7,-122.4,火灾,x\n"  # skipped by the spring clock change
        "3,2020-04-07 23:53:08,37.7,-122.4,火灾,x\n"  # not this format
    ), m)
    assert calls[0].ts == datetime(2020, 4, 8, 6, 53, 8, tzinfo=UTC)
    assert calls[0].ts.utcoffset() == timedelta(hours=-7)
    assert [(p.line_no, p.reason) for p in report.problems] == [(3, Problem.BAD_TIME), (4, Problem.BAD_TIME)]
    assert "does not exist in America/Los_Angeles" in report.problems[0].detail


def test_dedupe_folds_rows_of_one_call_and_keeps_the_first_readable() -> None:
    m = mapping(dedupe_on="no")
    calls, report = read(HEADER + (
        "A1,bad,32,112,火灾,unit 1\n"  # 2 unreadable: a problem, not a fold
        "A1,2026-03-01T08:00:00+08:00,32,112,火灾,unit 2\n"  # 3 imported
        "A1,2026-03-01T08:00:00+08:00,32,112,火灾,unit 3\n"  # 4 folded
        "B2,2026-03-01T08:01:00+08:00,32,112,医疗,b\n"  # 5
        ",2026-03-01T08:02:00+08:00,32,112,医疗,no number\n"  # 6 never folded
        ",2026-03-01T08:03:00+08:00,32,112,医疗,no number\n"  # 7
        "A1,2026-03-01T08:00:00+08:00,32,112,火灾,unit 4\n"  # 8 folded
    ), m)
    assert [c.line_no for c in calls] == [3, 5, 6, 7]
    assert [c.external_id for c in calls] == ["A1", "B2", None, None]
    assert report.folded == 2
    assert report.folded_lines == [4, 8]
    assert [p.line_no for p in report.problems] == [2]
    assert report.rows_read == report.imported + report.folded + len(report.problems) == 7


def test_gcj02_datum_is_converted_to_wgs84() -> None:
    m = mapping(datum="gcj02")
    calls, _ = read(HEADER + "1,2026-03-01T08:00:00+08:00,32.0091,112.1224,火灾,x\n", m)
    want = gcj02_to_wgs84(32.0091, 112.1224)
    assert (calls[0].lat, calls[0].lon) == pytest.approx(want, abs=1e-9)
    assert haversine_m(32.0091, 112.1224, calls[0].lat, calls[0].lon) > 100  # the offset is real


@pytest.mark.parametrize(
    ("order", "value"),
    [
        ("lat_lon", "(37.73217458500619, -122.42779351441527)"),
        ("lat_lon", "37.73217458500619,-122.42779351441527"),
        ("lon_lat", "POINT (-122.42779351441527 37.73217458500619)"),
    ],
)
def test_point_column_forms(order: str, value: str) -> None:
    m = mapping(location={"point_column": "loc", "order": order})
    calls, report = read(
        'no,time,loc,cat,desc\n1,2026-03-01T08:00:00+08:00,"' + value + '",火灾,x\n'
        '2,2026-03-01T08:00:00+08:00,"",火灾,x\n'
        '3,2026-03-01T08:00:00+08:00,"(1, 2, 3)",火灾,x\n', m,
    )
    assert (calls[0].lat, calls[0].lon) == (37.73217458500619, -122.42779351441527)
    assert [(p.line_no, p.reason) for p in report.problems] == [
        (3, Problem.MISSING_LOCATION), (4, Problem.BAD_LOCATION),
    ]


def test_template_address_and_extra_columns() -> None:
    m = load_mapping(MAPPINGS / "cn_110_example.yaml")
    with CN_CSV.open(encoding="utf-8-sig", newline="") as f:
        calls, report = read_calls(f, m, CN_CSV.name)
    first = next(c for c in calls if c.external_id == "J2026030100001")
    assert first.description == "[火灾] 居民楼厨房起火，有浓烟"
    assert first.address == "樊城区人民路12号"
    assert first.extra == {"接警员": "A01", "处置单位": "樊城消防站"}
    multiline = next(c for c in calls if c.external_id == "J2026030100004")
    assert multiline.line_no == 6
    assert [(p.line_no, p.reason) for p in report.problems] == [
        (8, Problem.BAD_TIME), (9, Problem.ZERO_LOCATION), (10, Problem.MISSING_LOCATION),
        (11, Problem.UNKNOWN_CATEGORY), (12, Problem.OUT_OF_RANGE),
    ]
    assert report.folded_lines == [5]
    assert report.out_of_order == 1  # line 6 (08:12) after line 4 (08:20); folded line 5 not counted
    assert [c.line_no for c in calls] == [6, 2, 3, 4, 13]


# --- the real San Francisco file -------------------------------------------------


def _sf_expected(mapping_data: dict[str, Any]) -> dict[str, Any]:
    """Readable rows, calls, folds and order of the SF file, computed with csv alone."""
    zone = ZoneInfo(mapping_data["time"]["timezone"])
    fmt = mapping_data["time"]["format"]
    known = set(mapping_data["category"]["map"])
    rows = 0
    bad: list[int] = []
    calls: dict[str, datetime] = {}
    order: list[datetime] = []
    with SF_CSV.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for record in reader:
            rows += 1
            line = reader.line_num  # no multi-line fields in this file (checked below)
            try:
                ts = datetime.strptime(record["Received DtTm"], fmt).replace(tzinfo=zone)
                lat_s, lon_s = record["Location"].strip("() ").split(",")
                lat, lon = float(lat_s), float(lon_s)
            except ValueError:
                bad.append(line)
                continue
            if (lat, lon) == (0.0, 0.0) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                bad.append(line)
                continue
            if record["Call Type"] not in known:
                bad.append(line)
                continue
            if record["Call Number"] not in calls:
                calls[record["Call Number"]] = ts
                order.append(ts)
    out_of_order, latest = 0, None
    for ts in order:
        if latest is not None and ts < latest:
            out_of_order += 1
        else:
            latest = ts
    return {"rows": rows, "bad": bad, "calls": len(calls), "out_of_order": out_of_order,
            "first": min(order), "last": max(order)}


@pytest.mark.skipif(not SF_CSV.exists(), reason="../shared/data/sf_fire_calls.csv is not here")
def test_real_sf_fire_calls() -> None:
    path = MAPPINGS / "sf_fire_calls.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    m = load_mapping(path)
    expected = _sf_expected(data)
    with SF_CSV.open(encoding="utf-8-sig", newline="") as f:
        physical_lines = sum(1 for _ in f)
    assert physical_lines == expected["rows"] + 1  # one line per record: line_num is exact

    with SF_CSV.open(encoding=m.encoding, newline="") as f:
        calls, report = read_calls(f, m, SF_CSV.name)
    assert report.rows_read == expected["rows"]
    assert report.imported == len(calls) == expected["calls"]
    assert report.folded == expected["rows"] - len(expected["bad"]) - expected["calls"]
    assert sorted(p.line_no for p in report.problems) == expected["bad"]
    assert report.rows_read == report.imported + report.folded + len(report.problems)
    assert report.out_of_order == expected["out_of_order"]
    assert (report.first_ts, report.last_ts) == (expected["first"], expected["last"])
    # every Call Type present is mapped; nothing at (0, 0); all inside San Francisco
    assert not any(p.reason is Problem.UNKNOWN_CATEGORY for p in report.problems)
    assert all((c.lat, c.lon) != (0.0, 0.0) for c in calls)
    assert all(37.6 < c.lat < 37.9 and -122.6 < c.lon < -122.3 for c in calls)
    assert [c.ts for c in calls] == sorted(c.ts for c in calls)
    assert len({c.external_id for c in calls}) == len(calls)
    assert {c.category for c in calls} <= set(CallCategory)
    assert report.categories["medical"] > report.categories["fire"] > 0


# --- the database edge -----------------------------------------------------------


def test_import_csv_writes_dataset_and_rows_in_one_transaction(database_url: str) -> None:
    m = load_mapping(MAPPINGS / "cn_110_example.yaml")
    dataset_id, report = import_csv(database_url, CN_CSV, m, dataset_id="DS-cn-1", name="三月一日早高峰",
                                    created_by="planner1")
    assert dataset_id == "DS-cn-1"
    with psycopg.connect(database_url) as conn:
        ex = conn.execute(
            "SELECT kind, status, source, name, created_by, sim_start, sim_end, stats "
            "FROM exercise WHERE id = %s",
            (dataset_id,),
        ).fetchone()
        rows = conn.execute(
            "SELECT line_no, ts, lat, lon, category, description, address, external_id, extra "
            "FROM imported_call WHERE dataset_id = %s ORDER BY ts, line_no", (dataset_id,),
        ).fetchall()
    assert ex is not None
    kind, status, source, name, created_by, sim_start, sim_end, stats = ex
    assert (kind, status, source, name, created_by) == ("import", "finished", CN_CSV.name, "三月一日早高峰",
                                                        "planner1")
    assert (sim_start, sim_end) == (report.first_ts, report.last_ts)
    assert stats["import"]["imported"] == report.imported == len(rows) == 5
    assert stats["import"]["problems"]["(0, 0) location"] == {"count": 1, "lines": [9]}
    assert [r[0] for r in rows] == [6, 2, 3, 4, 13]
    assert rows[1][4:8] == ("fire", "[火灾] 居民楼厨房起火，有浓烟", "樊城区人民路12号", "J2026030100001")
    assert rows[1][8] == {"接警员": "A01", "处置单位": "樊城消防站"}

    with pytest.raises(DatasetExists):
        import_csv(database_url, CN_CSV, m, dataset_id="DS-cn-1")


def test_import_csv_all_or_nothing(database_url: str, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportFileError):
        import_csv(database_url, wrong, mapping(), dataset_id="DS-wrong")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM exercise").fetchone() == (0,)


def test_default_dataset_id_is_a_valid_exercise_id(database_url: str, tmp_path: Path) -> None:
    odd = tmp_path / "警情 导出 (2026).csv"
    odd.write_text(HEADER + "1,2026-03-01T08:00:00+08:00,32,112,火灾,x\n", encoding="utf-8")
    dataset_id, report = import_csv(database_url, odd, mapping())
    assert re.fullmatch(r"DS-2026-\d{8}-\d{6}", dataset_id)
    assert report.imported == 1

