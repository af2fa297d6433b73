"""Drill scenarios: the shipped ones validate and are realistic in shape; broken files
are refused with the file and the right line; expansion is deterministic, contract
clean, crosses the alarm thresholds, and escalations name an alarm that comes first."""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from simulators.__main__ import main as simulators_main
from simulators.exercise_run import TimedInject, TimedMessage
from simulators.feeds import CST
from simulators.scenario import (
    Scenario,
    ScenarioError,
    ScenarioWorld,
    demo_world,
    expand,
    load_scenario,
    parse_duration,
    parse_scenario,
    shipped_scenarios,
)
from wuwang.contract import encode, parse_message

NOW = datetime(2025, 7, 1, 6, 0, tzinfo=CST)


@pytest.fixture(scope="module")
def world() -> ScenarioWorld:
    return demo_world()


@pytest.fixture(scope="module")
def shipped(world: ScenarioWorld) -> dict[str, Scenario]:
    return {p.name: load_scenario(p, world) for p in shipped_scenarios()}


def test_four_realistic_scenarios_ship_and_validate(shipped: dict[str, Scenario]) -> None:
    assert {
        "chemical_plant_leak.yaml",
        "high_rise_fire.yaml",
        "rainstorm_waterlogging.yaml",
        "festival_crowd_crush.yaml",
    } <= set(shipped)
    for name, s in shipped.items():
        assert 10 * 60 <= s.duration_s <= 30 * 60, name
        assert 20 <= len(s.injects) <= 80, name
        kinds = Counter(i.kind for i in s.injects)
        for needed in ("team_unavailable", "warehouse_short", "escalate"):
            assert kinds[needed] >= 1, (name, needed)


def test_expansion_is_deterministic_and_contract_clean(
    shipped: dict[str, Scenario], world: ScenarioWorld
) -> None:
    for name, s in shipped.items():
        items = expand(s, world)
        assert items == expand(s, world), name
        assert [i.offset_s for i in items] == sorted(i.offset_s for i in items)
        seen: Counter[tuple[str, str]] = Counter()
        for it in items:
            if isinstance(it, TimedMessage):
                payload = {**it.payload, "ts": NOW.isoformat(), "exercise_offset_s": it.offset_s}
                msg = parse_message(it.topic, encode(payload), NOW)  # raises on a contract violation
                seen[(msg.topic.source, str(it.payload["id"]))] += 1
            else:
                assert it.body["kind"] in ("warehouse_short", "escalate")
        assert max(seen.values()) == 1, f"{name}: an id repeats within a source"


def test_sensor_ramps_cross_their_thresholds(shipped: dict[str, Scenario], world: ScenarioWorld) -> None:
    for name, s in shipped.items():
        by_device: dict[str, list[float]] = {}
        for it in expand(s, world):
            if isinstance(it, TimedMessage) and "device_id" in it.payload:
                by_device.setdefault(it.payload["device_id"], []).append(it.payload["value"])
        assert by_device or name == "festival_crowd_crush.yaml"
        for device, values in by_device.items():
            t = world.thresholds[world.devices[device].kind]
            assert values[0] < t.raise_at <= max(values), (name, device, values)


def test_escalations_name_an_alarm_sent_before_them(
    shipped: dict[str, Scenario], world: ScenarioWorld
) -> None:
    for name, s in shipped.items():
        items = expand(s, world)
        sent = {str(it.payload["id"]): it for it in items if isinstance(it, TimedMessage)}
        escalations = [it for it in items if isinstance(it, TimedInject) and it.body["kind"] == "escalate"]
        assert escalations, name
        for esc in escalations:
            alarm = sent[esc.body["msg_id"]]
            assert alarm.offset_s <= esc.offset_s
            assert esc.body["level"] in (1, 2, 3, 4)  # the command API's number for I–IV
            p = alarm.payload
            if "device_id" in p:  # the reading that crosses, not the first of the ramp
                assert p["value"] >= world.thresholds[p["kind"]].raise_at
            if "camera_id" in p:
                assert p["confidence"] >= world.video_alarm_confidence


def test_calls_burst_stays_within_radius_and_duration(world: ScenarioWorld) -> None:
    s = _parse(
        world,
        """\
        name: t
        description: t
        start: {name: 长虹路, lat: 32.04, lon: 112.14}
        injects:
          - at: 5m
            calls: {count: 40, over: 2m, radius_m: 500, category: rescue, descriptions: ["{place}积水 {n}"]}
        """,
    )
    from wuwang.geo import haversine_m

    calls = [it for it in expand(s, world) if isinstance(it, TimedMessage)]
    assert len(calls) == 40
    assert all(300 <= c.offset_s <= 420 for c in calls) and calls[0].offset_s == 300
    assert all(haversine_m(32.04, 112.14, c.payload["lat"], c.payload["lon"]) <= 501 for c in calls)
    assert all(c.payload["description"].startswith("长虹路积水") for c in calls)
    assert all("****" in c.payload["caller"] for c in calls)  # masked, as the 110 system sends it


def test_team_unavailable_is_an_off_duty_status_and_comes_back(world: ScenarioWorld) -> None:
    s = _parse(
        world,
        """\
        name: t
        description: t
        start: {venue: VEN-0126}
        injects:
          - at: 1m
            team_unavailable: {team: T-HAZMAT-01, reason: 车辆故障, for: 10m}
        """,
    )
    msgs = [it for it in expand(s, world) if isinstance(it, TimedMessage)]
    assert [(m.offset_s, m.topic, m.payload["status"], m.payload["seq"]) for m in msgs] == [
        (60.0, "teams/v1/T-HAZMAT-01/status", "off_duty", 1),
        (660.0, "teams/v1/T-HAZMAT-01/status", "available", 2),
    ]


def _parse(world: ScenarioWorld, text: str, name: str = "t.yaml") -> Scenario:
    return parse_scenario(textwrap.dedent(text), name, world)


_HEAD = """\
name: 测试
description: 测试
start: {venue: VEN-0126}
injects:
  - at: 30s
    name: leak
    sensor: {device: SEN-1930, to: 45, over: 2m, every: 20s}
"""


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            "  - at: 1m\n    calls:\n      count: 0\n      category: fire\n      descriptions: [x]\n",
            "t.yaml:10: injects[1].calls.count: must be > 0",
        ),
        (
            "  - at: 1m\n    sensor: {device: SEN-9999, to: 45}\n",
            "t.yaml:9: injects[1].sensor.device: unknown device 'SEN-9999'",
        ),
        (
            "  - at: 1m\n    video: {camera: CAM-1220, event: fire_smoke, confidence: 0.9, colour: red}\n",
            "t.yaml:9: injects[1].video.colour: unknown field",
        ),
        (
            "  - video: {camera: CAM-1220, event: fire_smoke, confidence: 0.9}\n",
            "t.yaml:8: injects[1].at: is required",
        ),
        (
            "  - at: 1m\n    team_unavailable: {team: T-FIRE-01}\n"
            "    warehouse_short: {warehouse: WH-COM-05, item: sandbag, quantity: 10}\n",
            "t.yaml:8: injects[1]: exactly one of",
        ),
        (
            "  - at: soon\n    team_unavailable: {team: T-FIRE-01}\n",
            "t.yaml:8: injects[1].at: 'soon' is not a duration",
        ),
        (
            "  - at: 1m\n    escalate: {of: later, level: II, reason: x}\n  - at: 2m\n    name: later\n"
            "    video: {camera: CAM-1220, event: fire_smoke, confidence: 0.9}\n",
            "t.yaml:9: injects[1].escalate.of: 'later': injects[2] comes later",
        ),
        (
            "  - at: 1m\n    escalate: {of: leak, level: II, reason: x}\n",
            "t.yaml:8: injects[1].at: escalates at 01:00, before 'leak' raises its alarm at 01:30",
        ),
        (
            "  - at: 3m\n    escalate: {of: leak, level: V, reason: x}\n",
            "t.yaml:9: injects[1].escalate.level: a response level is I, II, III or IV",
        ),
        (
            "  - at: 3m\n    warehouse_short: {warehouse: WH-GOV-CITY-05, item: sandbag, quantity: 5}\n",
            "t.yaml:9: injects[1].warehouse_short.item: WH-GOV-CITY-05 holds no 'sandbag'",
        ),
        (
            "  - at: 3m\n    warehouse_short: {warehouse: WH-NOPE, item: sandbag, quantity: 5}\n",
            "t.yaml:9: injects[1].warehouse_short.warehouse: unknown warehouse 'WH-NOPE'",
        ),
        (
            "  - at: 3m\n    team_unavailable:\n      team: T-FIRE-99\n",
            "t.yaml:10: injects[1].team_unavailable.team: unknown team 'T-FIRE-99'",
        ),
        (
            "  - at: 3m\n    sensor:\n      device: SEN-1930\n      to: 12\n",
            "t.yaml:11: injects[1].sensor.to: 12 %LEL never reaches the gas alarm threshold 20 %LEL",
        ),
        (
            "  - at: 3m\n    calls: {count: 3, category: arson, descriptions: [x]}\n",
            "t.yaml:9: injects[1].calls.category: Input should be",
        ),
        (
            "  - at: 3m\n    calls: {count: 3, category: fire, descriptions: ['{where}着火']}\n",
            "t.yaml:9: injects[1].calls.descriptions: '{where}着火': only {place} and {n} may be filled in",
        ),
        (
            "  - at: 3m\n    report: {category: fire, description: x, around: {venue: VEN-9999}}\n",
            "t.yaml:9: injects[1].report.around.venue: unknown venue 'VEN-9999'",
        ),
        (
            "  - at: 3m\n    at: 4m\n    team_unavailable: {team: T-FIRE-01}\n",
            "t.yaml:9: injects[1].at: duplicate key",
        ),
        ("  - at: 3m\n    team_unavailable: {team: T-FIRE-01\n", "t.yaml:10: not valid YAML"),
    ],
)
def test_problems_name_the_file_and_line(world: ScenarioWorld, tail: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_HEAD + tail, "t.yaml", world)
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def test_every_problem_is_reported_not_just_the_first(world: ScenarioWorld) -> None:
    tail = (
        "  - at: 1m\n    calls: {count: 0, category: fire, descriptions: [x]}\n"
        "  - at: 2m\n    video: {camera: CAM-1220, event: fire_smoke, confidence: 1.5}\n"
    )
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_HEAD + tail, "t.yaml", world)
    assert err.value.problems == [
        "t.yaml:9: injects[1].calls.count: must be > 0",
        "t.yaml:11: injects[2].video.confidence: must be <= 1",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("00:05:00", 300.0),
        ("05:30", 330.0),
        ("1.5m", 90.0),
        (0, 0.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5 minutes", "-5s", -1, True, "1:2:3:4", None])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_cli_validate_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(
        _HEAD + "  - at: 1m\n    calls: {count: 0, category: fire, descriptions: [x]}\n", encoding="utf-8"
    )
    good = shipped_scenarios()[0]
    assert simulators_main(["drill", "validate", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert f"{good.name}: ok" in out
    assert "broken.yaml:9: injects[1].calls.count: must be > 0" in err
    assert simulators_main(["drill", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "high_rise_fire.yaml" in out and "INVALID" not in out
