"""The feed simulator: deterministic, contract-clean, with a bad fraction that the
contract refuses, unique ids, plausible rhythm and team behaviour; and its publisher
against a real broker."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from simulators.feeds import (
    ALARM_THRESHOLD,
    BAD_KINDS,
    CST,
    NORMAL_RANGE,
    FeedGenerator,
    FeedMix,
    SimEvent,
)
from simulators.publish import BrokerConfig, Publisher, RunConfig, shard_of
from wuwang.city import City, build_city
from wuwang.contract import (
    INGEST_SUBSCRIPTIONS,
    MAX_PAYLOAD_BYTES,
    ContractError,
    Feed,
    SensorReading,
    TeamStatus,
    TeamStatusUpdate,
    VideoAlert,
    parse_message,
)

START = datetime(2024, 5, 1, 8, 0, tzinfo=CST)
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=CST)

# Status changes a field team can make (and the simulator must keep to).
ALLOWED = {
    TeamStatus.AVAILABLE: {TeamStatus.DISPATCHED, TeamStatus.OFF_DUTY},
    TeamStatus.DISPATCHED: {TeamStatus.EN_ROUTE},
    TeamStatus.EN_ROUTE: {TeamStatus.ON_SCENE},
    TeamStatus.ON_SCENE: {TeamStatus.RETURNING},
    TeamStatus.RETURNING: {TeamStatus.AVAILABLE},
    TeamStatus.OFF_DUTY: {TeamStatus.AVAILABLE},
}


@pytest.fixture(scope="module")
def city() -> City:
    return build_city(deg=0.025)


def _events(city: City, n: int, **kw: object) -> list[SimEvent]:
    args: dict[str, object] = {"seed": 1, "start": START, "rate": 200.0, "bad_fraction": 0.0}
    args.update(kw)
    return list(FeedGenerator(city, **args).events(n))  # type: ignore[arg-type]


def test_same_seed_same_bytes(city: City) -> None:
    a = _events(city, 3000, bad_fraction=0.1)
    b = _events(city, 3000, bad_fraction=0.1)
    assert [(e.topic, e.payload) for e in a] == [(e.topic, e.payload) for e in b]
    c = _events(city, 3000, seed=2, bad_fraction=0.1)
    assert [(e.topic, e.payload) for e in a] != [(e.topic, e.payload) for e in c]
    # The plain (topic, bytes) iterator is the same stream.
    gen = FeedGenerator(city, seed=1, start=START, rate=200.0, bad_fraction=0.1)
    pairs = [p for p, _ in zip(gen, range(100), strict=False)]
    assert pairs == [(e.topic, e.payload) for e in a[:100]]
    # A second events() call goes on where the first stopped.
    resumed = FeedGenerator(city, seed=1, start=START, rate=200.0, bad_fraction=0.1)
    first, rest = list(resumed.events(40)), list(resumed.events(100))
    assert first + rest == a[:100]


def test_every_good_message_parses_and_every_bad_one_is_refused(city: City) -> None:
    events = _events(city, 20_000, bad_fraction=0.1, time_scale=20.0)
    kinds: Counter[str] = Counter()
    feeds: Counter[Feed] = Counter()
    for ev in events:
        if ev.bad is None:
            msg = parse_message(ev.topic, ev.payload, RECEIVED)
            assert msg.feed == ev.feed and msg.source == ev.source and msg.msg_id == ev.msg_id
            assert msg.extra.get("sim") is True
            feeds[ev.feed] += 1
        else:
            kinds[ev.bad] += 1
            with pytest.raises(ContractError):
                parse_message(ev.topic, ev.payload, RECEIVED)
            if ev.bad == "oversized":
                assert len(ev.payload) > MAX_PAYLOAD_BYTES
    assert set(kinds) == set(BAD_KINDS)  # every kind of defect shows up
    assert set(feeds) == set(Feed)  # and every feed
    share = sum(kinds.values()) / len(events)
    assert 0.09 < share < 0.11


def test_ids_are_unique_per_source(city: City) -> None:
    seen: set[tuple[str, str]] = set()
    for ev in _events(city, 20_000, bad_fraction=0.05, time_scale=30.0):
        if ev.bad is None:
            assert ev.msg_id is not None
            key = (ev.source, ev.msg_id)
            assert key not in seen, key
            seen.add(key)
            assert len(ev.msg_id) <= 64
    # A run started at another time has other ids (the ingest would drop repeats).
    later = _events(city, 50, start=START + timedelta(seconds=1))
    assert not {(e.source, e.msg_id) for e in later} & seen


def test_contract_topics_and_registry_agree(city: City) -> None:
    devices = {d.id: d for d in city.devices}
    cameras = {c.id: c for c in city.cameras}
    teams = {t.id for t in city.teams}
    for ev in _events(city, 5000, time_scale=50.0):
        msg = parse_message(ev.topic, ev.payload, RECEIVED)
        p = msg.payload
        if ev.feed == Feed.SENSOR:
            assert isinstance(p, SensorReading)
            dev = devices[p.device_id]
            assert msg.topic.source_id == dev.id and msg.topic.network == dev.network
            assert p.unit == dev.unit and p.kind == dev.kind
        elif ev.feed == Feed.VIDEO:
            assert isinstance(p, VideoAlert)
            assert cameras[msg.topic.source_id].network == msg.topic.network
            # Each demo camera publishes for itself: the door takes an alert only from the
            # source registered for its camera (no video platform in the demo city).
            assert p.camera_id == msg.topic.source_id
        elif msg.topic.is_team:
            assert msg.topic.source_id in teams


def test_clockless_devices_leave_ts_out(city: City) -> None:
    sensors = [e for e in _events(city, 5000) if e.feed == Feed.SENSOR]
    without = [e for e in sensors if b'"ts"' not in e.payload]
    assert 0 < len(without) < 0.1 * len(sensors)
    msg = parse_message(without[0].topic, without[0].payload, RECEIVED)
    assert msg.ts_from_receipt and msg.ts == RECEIVED


def test_sensor_values_normal_with_real_anomalies(city: City) -> None:
    mix = FeedMix(anomalies_per_hour=1000.0)
    events = _events(city, 20_000, time_scale=10.0, mix=mix)
    over: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for ev in events:
        if ev.feed != Feed.SENSOR:
            continue
        p = parse_message(ev.topic, ev.payload, RECEIVED).payload
        assert isinstance(p, SensorReading)
        total[p.kind] += 1
        assert p.value >= 0
        if p.value > ALARM_THRESHOLD[p.kind]:
            over[p.kind] += 1
        elif p.value > NORMAL_RANGE[p.kind][1]:
            pass  # on the ramp of an anomaly
    for kind in ("smoke", "gas", "co", "temperature"):
        assert 0 < over[kind] < 0.2 * total[kind], kind  # alarms happen, but are rare
    # Without anomalies everything stays inside the normal band.
    calm = _events(city, 5000, mix=FeedMix(anomalies_per_hour=0.0))
    for ev in calm:
        if ev.feed == Feed.SENSOR:
            p = parse_message(ev.topic, ev.payload, RECEIVED).payload
            assert isinstance(p, SensorReading)
            lo, hi = NORMAL_RANGE[p.kind]
            assert lo <= p.value <= hi


def test_daily_rhythm_more_calls_at_20_than_at_4(city: City) -> None:
    # One simulated day: 100 msg/s at 600× speed → a message every 6 simulated seconds,
    # with video and idle positions thinned so the budget holds every call and report.
    mix = FeedMix(video_alerts_per_camera_hour=0.02, position_idle_s=1800.0, position_moving_s=300.0,
                  reports_per_day=1200.0)
    day = FeedGenerator(city, seed=3, start=datetime(2024, 5, 1, 0, 0, tzinfo=CST), rate=100.0,
                        time_scale=600.0, mix=mix)
    assert day.demand_per_sim_second() < 100.0 / 600.0
    calls: Counter[int] = Counter()
    reports: Counter[int] = Counter()
    for ev in day.events(14_400):
        if ev.feed == Feed.CALL or (ev.feed == Feed.REPORT and not ev.source.startswith("team/")):
            hour = parse_message(ev.topic, ev.payload, RECEIVED).ts.astimezone(CST).hour
            (calls if ev.feed == Feed.CALL else reports)[hour] += 1
    assert calls[20] > 2.5 * calls[4]
    assert reports[10] > 5 * reports[3]
    assert 2500 < sum(calls.values()) < 6000  # ≈4,000 a day


def test_teams_move_and_change_status_plausibly(city: City) -> None:
    events = _events(city, 30_000, rate=100.0, time_scale=120.0, mix=FeedMix(dispatches_per_team_day=24.0))
    last_status: dict[str, TeamStatus] = {}
    last_seq: dict[str, int] = defaultdict(lambda: -1)
    statuses: Counter[TeamStatus] = Counter()
    moving = 0
    for ev in events:
        if not ev.source.startswith("team/"):
            continue
        msg = parse_message(ev.topic, ev.payload, RECEIVED)
        team = msg.topic.source_id
        seq = getattr(msg.payload, "seq", None) if ev.feed != Feed.REPORT else msg.extra["seq"]
        assert seq == last_seq[team] + 1  # per-team sequence, in stream order
        if ev.feed == Feed.REPORT:  # a crew's arrival note: about its own work, never a new incident
            assert msg.extra["new_event"] is False
        last_seq[team] = seq
        if isinstance(msg.payload, TeamStatusUpdate):
            new = msg.payload.status
            statuses[new] += 1
            if team in last_status:
                assert new in ALLOWED[last_status[team]], (team, last_status[team], new)
            else:
                assert new in (TeamStatus.DISPATCHED, TeamStatus.OFF_DUTY)  # every team starts available
            if new in (TeamStatus.DISPATCHED, TeamStatus.EN_ROUTE, TeamStatus.ON_SCENE):
                assert msg.payload.incident_id
            last_status[team] = new
        elif ev.feed == Feed.POSITION and (getattr(msg.payload, "speed", 0) or 0) > 0:
            moving += 1
            assert 31.2 < msg.payload.lat < 32.7 and 110.7 < msg.payload.lon < 113.2  # type: ignore[attr-defined]
    assert {TeamStatus.DISPATCHED, TeamStatus.EN_ROUTE, TeamStatus.ON_SCENE, TeamStatus.RETURNING} <= set(
        statuses
    )
    assert moving > 50


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31),
    bad=st.floats(0.0, 0.5),
    rate=st.sampled_from([1.0, 20.0, 500.0, 5000.0]),
    scale=st.sampled_from([1.0, 60.0, 3600.0]),
    minute=st.integers(0, 24 * 60 - 1),
)
def test_generator_properties(
    city: City, seed: int, bad: float, rate: float, scale: float, minute: int
) -> None:
    start = datetime(2024, 1, 1, tzinfo=CST) + timedelta(minutes=minute, days=seed % 365)
    kw = {"seed": seed, "start": start, "rate": rate, "bad_fraction": bad, "time_scale": scale}
    events = list(FeedGenerator(city, **kw).events(300))  # type: ignore[arg-type]
    again = list(FeedGenerator(city, **kw).events(300))  # type: ignore[arg-type]
    assert events == again
    ids: set[tuple[str, str]] = set()
    for ev in events:
        if ev.bad is None:
            msg = parse_message(ev.topic, ev.payload, RECEIVED)
            assert (msg.source, msg.msg_id) not in ids
            ids.add((msg.source, msg.msg_id))
        else:
            with pytest.raises(ContractError):
                parse_message(ev.topic, ev.payload, RECEIVED)
    assert [e.index for e in events] == list(range(300))
    assert all(b.at >= a.at for a, b in itertools.pairwise(events))


def test_shards_partition_the_stream_by_source(city: City) -> None:
    events = _events(city, 3000)
    by_shard = [[e for e in events if shard_of(e, 3) == k] for k in range(3)]
    assert sum(len(s) for s in by_shard) == len(events) and all(by_shard)
    for ev in events:
        assert shard_of(ev, 3) == shard_of(replace(ev, payload=b""), 3)  # by source only


def test_bad_arguments_are_refused(city: City) -> None:
    with pytest.raises(ValueError, match="positive"):
        FeedGenerator(city, seed=1, start=START, rate=0.0)
    with pytest.raises(ValueError, match="bad_fraction"):
        FeedGenerator(city, seed=1, start=START, rate=1.0, bad_fraction=1.5)
    with pytest.raises(ValueError, match="timezone"):
        FeedGenerator(city, seed=1, start=datetime(2024, 1, 1), rate=1.0)


def test_broker_url_parsing() -> None:
    b = BrokerConfig.from_url("mqtt://simulator:pw@broker.example:1884", "3.1.1")
    assert (b.host, b.port, b.username, b.target.password, b.protocol) == (
        "broker.example", 1884, "simulator", "pw", "3.1.1"
    )
    anon = BrokerConfig.from_url("mqtt://127.0.0.1", demo_mode=True)
    assert anon.username == "simulator" and anon.target.password == "demo-sim" and anon.port == 1883
    with pytest.raises(ValueError, match="mqtt://"):
        BrokerConfig.from_url("http://127.0.0.1:1883")


@pytest.mark.slow
def test_publisher_delivers_the_stream(mqtt_broker: object, city: City) -> None:
    """Publish 400 messages (10 % bad) through the session's broker and count them on
    a subscriber with the ingest's subscriptions and account."""
    url_for = mqtt_broker.url_for  # type: ignore[attr-defined]
    protocol: str = mqtt_broker.protocol  # type: ignore[attr-defined]
    broker = BrokerConfig.from_url(url_for("simulator"), protocol)
    sub_target = BrokerConfig.from_url(url_for("ingest"), protocol).target
    start = datetime.now(CST)
    cfg = RunConfig(broker=broker, rate=1000.0, seed=11, start=start, bad_fraction=0.1, count=400,
                    client_id_prefix=f"test-sim-{time.monotonic_ns()}")
    stream = FeedGenerator(city, seed=11, start=start, rate=1000.0, bad_fraction=0.1).events(400)
    # Bad topics the ingest does not subscribe to (e.g. teams/v1/x/alarm) never reach it.
    expected = [e for e in stream if any(mqtt.topic_matches_sub(s, e.topic) for s in INGEST_SUBSCRIPTIONS)]

    got: list[tuple[str, bytes | bytearray]] = []
    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}",
                      protocol=mqtt.MQTTv311 if protocol == "3.1.1" else mqtt.MQTTv5)
    sub.username_pw_set(sub_target.username, sub_target.password)
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_connect = lambda c, *a: c.subscribe([(s, 1) for s in INGEST_SUBSCRIPTIONS])
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    try:
        assert ready.wait(10)
        pub = Publisher(cfg)
        assert pub.run() == 0
        assert pub.counters.published == 400 and pub.counters.acked == 400 and pub.counters.refused == 0
        deadline = time.monotonic() + 10
        while len(got) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert sorted(got) == sorted((e.topic, e.payload) for e in expected)
