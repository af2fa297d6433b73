"""Replay: a recorded window of live rows and an imported dataset become the runner's
timed messages; end to end through the real broker at ×100."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from ingest.rows import TABLE_COLUMNS, place_of, row_for
from simulators.importer import import_csv, load_mapping
from simulators.replay import (
    Point,
    ReplaySource,
    ReplaySourceError,
    build_items,
    dataset_items,
    parse_replay_source,
    window_items,
)
from wuwang.contract import encode, parse_message, parse_topic
from wuwang.exercises import exercise_topic
from wuwang.geo import haversine_m
from wuwang.mqtt import MqttTarget, apply_target

ROOT = Path(__file__).resolve().parents[2]
CN_CSV = ROOT / "tests" / "data" / "cn_110_sample.csv"
CN_MAPPING = ROOT / "simulators" / "mappings" / "cn_110_example.yaml"

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
END = T0 + timedelta(minutes=10)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


#: One message of every feed, in the window, as a device or team would send it.
LIVE: list[tuple[str, dict[str, Any]]] = [
    ("wuwang/v1/venue/sensor/D-0001", {"id": "s1", "ts": at(5), "device_id": "D-0001", "kind": "smoke",
                                       "value": 12.5, "unit": "%obs/m", "lat": 32.01, "lon": 112.12,
                                       "battery": 87}),
    ("wuwang/v1/community/sensor/D-0002", {"id": "s2", "ts": at(7.25), "device_id": "D-0002", "kind": "co",
                                           "value": 3.0, "unit": "ppm"}),  # registered device: no lat/lon
    ("wuwang/v1/video/video/CAM-01", {"id": "v1", "ts": at(12), "camera_id": "CAM-01", "event": "fire_smoke",
                                      "confidence": 0.93, "lat": 32.02, "lon": 112.13,
                                      "snapshot_url": "https://vms.example.invalid/1.jpg",
                                      "bbox": [10.0, 20.0, 300.0, 200.0]}),
    ("wuwang/v1/police/call/sys110", {"id": "c1", "ts": at(20), "call_id": "JQ-1", "category": "fire",
                                      "lat": 32.03, "lon": 112.14, "address": "人民路12号",
                                      "description": "厨房起火", "caller": "138****0000", "priority": 1}),
    ("wuwang/v1/community/report/GW-7", {"id": "r1", "ts": at(30), "reporter": "GW-7", "category": "hazard",
                                         "description": "井盖缺失", "lat": 32.04, "lon": 112.15}),
    ("teams/v1/T-FIRE-01/report", {"id": "r2", "ts": at(31), "reporter": "T-FIRE-01", "category": "on_scene",
                                   "description": "到场", "lat": 32.05, "lon": 112.16,
                                   "photo_url": "https://oss.example.invalid/p.jpg"}),
    ("teams/v1/T-FIRE-01/position", {"id": "p1", "ts": at(40), "lat": 32.06, "lon": 112.17, "speed": 11.5,
                                     "heading": 270.0, "seq": 41}),
    ("teams/v1/T-FIRE-01/status", {"id": "st1", "ts": at(45), "status": "on_scene", "incident_id": "INC-1",
                                   "seq": 42}),
    ("teams/v1/T-MED-02/status", {"id": "st2", "ts": at(45), "status": "en_route"}),  # same ts
]
#: Outside the window, or an exercise's own rows inside it: never replayed.
OTHERS: list[tuple[str, dict[str, Any]]] = [
    ("wuwang/v1/police/call/sys110", {"id": "c-before", "ts": (T0 - timedelta(seconds=1)).isoformat(),
                                      "call_id": "JQ-0", "category": "traffic", "lat": 32.0, "lon": 112.1,
                                      "address": "", "description": "", "caller": ""}),
    ("teams/v1/T-FIRE-01/position", {"id": "p-end", "ts": END.isoformat(), "lat": 32.0, "lon": 112.1}),
    (exercise_topic("EX-old", "wuwang/v1/police/call/sys110"),
     {"id": "c-drill", "ts": at(21), "call_id": "JQ-D", "category": "fire", "lat": 32.0, "lon": 112.1,
      "address": "", "description": "drill", "caller": ""}),
    (exercise_topic("EX-old", "teams/v1/T-FIRE-01/status"),
     {"id": "st-drill", "ts": at(22), "status": "off_duty"}),
]


def store(conn: psycopg.Connection[Any], messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Store messages exactly as the ingest does (its own parse and row conversion)."""
    for k, (topic, payload) in enumerate(messages):
        msg = parse_message(topic, encode(payload), T0 + timedelta(minutes=30, seconds=k))
        table, values = row_for(msg, place_of(msg, 0.025, {}))
        columns = TABLE_COLUMNS[table]
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            ),
            values,
        )


@pytest.fixture
def recorded(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO exercise (id, name, kind, source, created_by) "
                     "VALUES ('EX-old', 'old drill', 'scenario', 'x.yaml', 'test')")
        store(conn, OTHERS[:2] + LIVE[::-1] + OTHERS[2:])  # stored out of order on purpose
    return database_url


def test_window_items_are_exactly_the_live_window_in_time_order(recorded: str) -> None:
    with psycopg.connect(recorded) as conn:
        items = window_items(conn, T0, END)
    # ties at one ts go in received order: the rows were stored in reverse
    assert [i.payload["id"] for i in items] == ["s1", "s2", "v1", "c1", "r1", "r2", "p1", "st2", "st1"]
    assert [i.offset_s for i in items] == [5, 7.25, 12, 20, 30, 31, 40, 45, 45]
    originals = {p["id"]: (t, p) for t, p in LIVE}
    for item in items:
        topic, original = originals[item.payload["id"]]
        # the original topic and payload, less ts (the runner stamps it at send)
        assert item.topic == topic
        assert item.payload == {k: v for k, v in original.items() if k != "ts"}
        # and it is a valid contract v1 message, for every feed
        parsed = parse_message(item.topic, encode({**item.payload, "ts": at(0)}), T0)
        assert parsed.msg_id == original["id"]
    assert {parse_topic(i.topic).feed for i in items} == {"sensor", "video", "call", "report", "position",
                                                         "status"}


def test_build_items_from_a_window_source(recorded: str) -> None:
    source = parse_replay_source(json.dumps({"window": {"start": T0.isoformat(), "end": END.isoformat()}}))
    with psycopg.connect(recorded) as conn:
        plan = build_items(conn, source)
        narrow = build_items(conn, ReplaySource(start=T0 + timedelta(seconds=30),
                                                end=T0 + timedelta(seconds=45)))
    assert len(plan.items) == len(LIVE)
    assert (plan.sim_start, plan.sim_end) == (T0, END)
    assert [i.payload["id"] for i in narrow.items] == ["r1", "r2", "p1"]  # end is exclusive
    assert narrow.items[0].offset_s == 0


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"start": "2026-03-01T08:00:00+00:00"}', "needs start and end"),
        ('{"window": {"start": "2026-03-01T08:00:00", "end": "2026-03-01T09:00:00"}}', "timezone"),
        ('{"window": {"start": "2026-03-01T09:00:00Z", "end": "2026-03-01T08:00:00Z"}}', "end must be after"),
        ('{"dataset_id": "DS 1"}', "dataset_id"),
        ('{"dataset_id": "DS-1", "speed": 3}', "speed"),
    ],
)
def test_bad_replay_sources_say_why(source: str, problem: str) -> None:
    with pytest.raises(ReplaySourceError, match=problem):
        parse_replay_source(source)


def test_replay_source_round_trip() -> None:
    window = ReplaySource(start=T0, end=END)
    assert json.loads(window.to_source()) == {"window": {"start": "2026-03-01T08:00:00Z",
                                                         "end": "2026-03-01T08:10:00Z"}}
    assert parse_replay_source(window.to_source()) == window
    dataset = parse_replay_source('{"dataset_id": "DS-1", "start": null, "end": null}')
    assert dataset.is_dataset and dataset.start is None
    assert parse_replay_source(dataset.to_source()) == dataset


@pytest.fixture
def dataset(database_url: str) -> tuple[str, str]:
    dataset_id, _ = import_csv(database_url, CN_CSV, load_mapping(CN_MAPPING), dataset_id="DS-cn")
    return database_url, dataset_id


def test_dataset_items_are_calls_in_time_order(dataset: tuple[str, str]) -> None:
    url, dataset_id = dataset
    with psycopg.connect(url) as conn:
        items, first, last = dataset_items(conn, dataset_id)
        rows = conn.execute("SELECT line_no, ts, lat, lon FROM imported_call WHERE dataset_id = %s "
                            "ORDER BY ts, line_no", (dataset_id,)).fetchall()
    assert [i.payload["imported"]["line_no"] for i in items] == [r[0] for r in rows] == [6, 2, 3, 4, 13]
    assert (first, last) == (rows[0][1], rows[-1][1])
    assert [i.offset_s for i in items] == [(r[1] - rows[0][1]).total_seconds() for r in rows]
    assert items[0].offset_s == 0
    fire = items[1]
    assert fire.topic == "wuwang/v1/police/call/sys110"
    assert fire.payload["call_id"] == "J2026030100001"
    assert fire.payload["category"] == "fire"
    assert fire.payload["description"] == "[火灾] 居民楼厨房起火，有浓烟"
    assert fire.payload["imported"]["columns"] == {"接警员": "A01", "处置单位": "樊城消防站"}
    assert (fire.payload["lat"], fire.payload["lon"]) == (rows[1][2], rows[1][3])
    for item in items:
        parse_message(item.topic, encode({**item.payload, "ts": at(0)}), T0)
    assert len({i.payload["id"] for i in items}) == len(items)


def test_dataset_window_system_id_and_relocation(dataset: tuple[str, str]) -> None:
    url, dataset_id = dataset
    start = datetime.fromisoformat("2026-03-01T08:15:00+08:00")
    source = parse_replay_source(json.dumps({
        "dataset_id": dataset_id, "start": start.isoformat(), "end": "2026-03-01T08:40:00+08:00",
        "system_id": "sys110-archive", "relocate_to": {"lat": 30.5, "lon": 114.3},
    }))
    with psycopg.connect(url) as conn:
        plan = build_items(conn, source)
        full, _, _ = dataset_items(conn, dataset_id)
    assert [i.payload["imported"]["line_no"] for i in plan.items] == [2, 3, 4]  # 08:40 excluded
    assert plan.items[0].offset_s == 0 and plan.sim_start == start
    assert {i.topic for i in plan.items} == {"wuwang/v1/police/call/sys110-archive"}
    by_line = {i.payload["imported"]["line_no"]: i.payload for i in full}
    moved = [i.payload for i in plan.items]
    # the middle call lands on the target; distances between calls are kept
    assert min(haversine_m(p["lat"], p["lon"], 30.5, 114.3) for p in moved) < 1
    a, b = moved[0], moved[2]
    a0, b0 = by_line[2], by_line[4]
    assert haversine_m(a["lat"], a["lon"], b["lat"], b["lon"]) == pytest.approx(
        haversine_m(a0["lat"], a0["lon"], b0["lat"], b0["lon"]), rel=0.01)
    assert a["imported"]["recorded_at"] == [a0["lat"], a0["lon"]]


def test_unknown_dataset_is_refused(database_url: str) -> None:
    from simulators.replay import ReplayError

    with psycopg.connect(database_url) as conn, pytest.raises(ReplayError, match="DS-none"):
        build_items(conn, ReplaySource(dataset_id="DS-none"))


def test_point_validates() -> None:
    with pytest.raises(ValueError, match="lat"):
        Point(lat=91, lon=0)


# --- end to end through the broker --------------------------------------------------


class Listener:
    """A subscriber on one exercise's prefix, recording arrival order."""

    def __init__(self, target: MqttTarget, exercise_id: str) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"replay-test-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv5)
        apply_target(self.client, target)
        prefix = exercise_topic(exercise_id, "#")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(prefix, qos=1)
        self.client.on_subscribe = lambda c, u, m, r, p: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(target.host, target.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((message.topic, json.loads(message.payload)))

    def wait_for(self, n: int, timeout: float = 30) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.05)
        return list(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.mosquitto
def test_replay_end_to_end_at_speed_100(recorded: str, make_settings: Callable[..., Any],
                                        mqtt_broker: Any) -> None:
    from simulators.exercise_run import run_exercise

    settings = make_settings("simulator")
    exercise_id = "EX-replay-e2e"
    source = ReplaySource(start=T0, end=END)
    with psycopg.connect(recorded) as conn:
        plan = build_items(conn, source)
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, speed, created_by, sim_start, sim_end) "
            "VALUES (%s, 'e2e', 'replay', %s, 'running', 100, 'test', %s, %s)",
            (exercise_id, source.to_source(), plan.sim_start, plan.sim_end),
        )
    listener = Listener(MqttTarget.from_url(mqtt_broker.url_for("ingest")), exercise_id)
    try:
        assert listener.ready.wait(10)
        report = run_exercise(settings, exercise_id, plan.items, speed=100)
        got = listener.wait_for(len(plan.items))
    finally:
        listener.close()
    # complete and in order, each on the exercise's prefix, each valid after the prefix
    assert [p["id"] for _, p in got] == [i.payload["id"] for i in plan.items]
    assert [t for t, _ in got] == [exercise_topic(exercise_id, i.topic) for i in plan.items]
    for topic, payload in got:
        parse_message(topic, json.dumps(payload).encode(), T0)
    # the drift is measured and reported (its size depends on the machine: not asserted)
    assert report is not None
    with psycopg.connect(recorded) as conn:
        row = conn.execute("SELECT status, stats FROM exercise WHERE id = %s", (exercise_id,)).fetchone()
    assert row is not None
    assert row[0] == "finished"
    assert row[1]["sent"] == len(plan.items)
    assert row[1]["drift_ms"]["count"] == len(plan.items) == report.drift.count


# --- the exercise daemon and the command lines ----------------------------------------


def _planned(conn: psycopg.Connection[Any], exercise_id: str, kind: str, source: str, *,
             speed: float = 100, created_at: datetime | None = None) -> None:
    conn.execute(
        "INSERT INTO exercise (id, name, kind, source, speed, created_by, created_at) "
        "VALUES (%s, %s, %s, %s, %s, 'planner1', %s)",
        (exercise_id, exercise_id, kind, source, speed, created_at or datetime.now(UTC)),
    )


def test_claims_are_exclusive_oldest_first_and_only_runnable_kinds(database_url: str) -> None:
    from simulators.exercise_daemon import claim_next, release, sweep_orphans

    base = datetime(2026, 3, 1, tzinfo=UTC)
    with psycopg.connect(database_url, autocommit=True) as setup:
        import_csv(database_url, CN_CSV, load_mapping(CN_MAPPING), dataset_id="DS-cn")  # kind import
        _planned(setup, "EX-b", "scenario", "high_rise_fire.yaml", created_at=base + timedelta(seconds=2))
        _planned(setup, "EX-a", "replay", '{"dataset_id":"DS-cn","start":null,"end":null}',
                 created_at=base + timedelta(seconds=1))
    with psycopg.connect(database_url, autocommit=True) as one, \
            psycopg.connect(database_url, autocommit=True) as two:
        first, second = claim_next(one), claim_next(two)
        assert first is not None and second is not None
        assert (first.id, second.id) == ("EX-a", "EX-b")
        assert claim_next(one) is None  # the import is never claimed; nothing else planned
        rows: dict[str, str] = dict(one.execute("SELECT id, status FROM exercise").fetchall())
        assert rows == {"DS-cn": "finished", "EX-a": "running", "EX-b": "running"}
        # both runners alive (they hold their locks): a sweep leaves them alone
        with psycopg.connect(database_url, autocommit=True) as sweeper:
            assert sweep_orphans(sweeper) == []
            release(one, "EX-a")  # … as if runner one died
            one.close()
            assert sweep_orphans(sweeper) == ["EX-a"]
            found = sweeper.execute("SELECT status, stats FROM exercise WHERE id = 'EX-a'").fetchone()
            assert found is not None
            status, stats = found
            assert status == "failed" and "runner" in stats and "process gone" in stats["error"]
            assert sweeper.execute("SELECT status FROM exercise WHERE id = 'EX-b'").fetchone() == ("running",)


@pytest.mark.mosquitto
def test_daemon_runs_planned_replays_and_fails_bad_ones(recorded: str, make_settings: Callable[..., Any],
                                                         mqtt_broker: Any) -> None:
    from simulators.exercise_daemon import serve

    settings = make_settings("simulator")
    window = json.dumps({"window": {"start": T0.isoformat(), "end": END.isoformat()}})
    with psycopg.connect(recorded, autocommit=True) as conn:
        _planned(conn, "EX-win", "replay", window)
        _planned(conn, "EX-bad", "replay", '{"start": "yesterday"}')
        _planned(conn, "EX-nodata", "replay", '{"dataset_id": "DS-none", "start": null, "end": null}')
        _planned(conn, "EX-slow", "replay", window, speed=500)
    listener = Listener(MqttTarget.from_url(mqtt_broker.url_for("ingest")), "EX-win")
    stop = threading.Event()
    daemon = threading.Thread(target=serve, args=(settings, stop), kwargs={"workers": 2, "poll_s": 0.1})
    try:
        assert listener.ready.wait(10)
        daemon.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(recorded) as conn:
                statuses: dict[str, str] = dict(conn.execute(
                    "SELECT id, status FROM exercise WHERE id LIKE 'EX-%%' AND id <> 'EX-old'").fetchall())
            if all(s in ("finished", "failed") for s in statuses.values()):
                break
            time.sleep(0.1)
        got = listener.wait_for(len(LIVE))
    finally:
        stop.set()
        daemon.join(30)
        listener.close()
    assert statuses == {"EX-win": "finished", "EX-bad": "failed", "EX-nodata": "failed", "EX-slow": "failed"}
    assert sorted(p["id"] for _, p in got) == sorted(p["id"] for _, p in LIVE)
    with psycopg.connect(recorded) as conn:
        stats: dict[str, Any] = dict(
            conn.execute("SELECT id, stats FROM exercise WHERE id LIKE 'EX-%%'").fetchall())
        win = conn.execute("SELECT sim_start FROM exercise WHERE id = 'EX-win'").fetchone()
    assert stats["EX-win"]["sent"] == len(LIVE)
    assert stats["EX-win"]["drift_ms"]["count"] == len(LIVE)  # measured; its size is the machine's
    assert win == (T0,)
    assert "start" in stats["EX-bad"]["error"]
    assert "DS-none" in stats["EX-nodata"]["error"]
    assert "speed" in stats["EX-slow"]["error"]


def test_cli_import_exit_codes_and_report(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from simulators.__main__ import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["import", str(CN_CSV), "--mapping", str(CN_MAPPING), "--dataset-id", "DS-cli"]) == 0
    out = capsys.readouterr().out
    assert "11 rows read, 5 calls imported, 1 rows folded" in out
    assert "line 9: (0, 0) location" in out
    assert "dataset DS-cli" in out
    assert main(["import", str(CN_CSV), "--mapping", str(CN_MAPPING), "--dataset-id", "DS-cli"]) == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text("time: {column: t, timezone: Asia/Shanghai}\n", encoding="utf-8")
    assert main(["import", str(CN_CSV), "--mapping", str(broken)]) == 2
    assert "location: missing" in capsys.readouterr().err
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM imported_call WHERE dataset_id = 'DS-cli'").fetchone()
    assert count == (5,)


def test_cli_replay_dry_run(dataset: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    from simulators.__main__ import main

    url, dataset_id = dataset
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DEMO_MODE", "1")
    assert main(["replay", "--dataset", dataset_id, "--speed", "50", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "5 messages" in out[0]
    assert out[1].split() == ["0.000", "wuwang/v1/police/call/sys110", "line", "6", "dispute"]
    assert main(["replay", "--start", T0.isoformat(), "--speed", "50", "--dry-run"]) == 2
    assert "needs start and end" in capsys.readouterr().err
