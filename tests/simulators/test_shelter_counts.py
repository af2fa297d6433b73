"""The demo teams' shelter counts (simulators/shelter_counts.py): plain inputs, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from simulators.shelter_counts import ShelterCounts, ShelterSite, demo_shelter_sites, next_occupancy
from wuwang.contract import parse_shelter_report
from wuwang.demo_shelters import DEMO_SHELTERS

NEAR = ShelterSite("SH-T-NEAR", 32.0700, 112.1900, 1000, True, 990)
SHUT = ShelterSite("SH-T-SHUT", 32.0701, 112.1901, 1000, False, 0)  # nearer still, but closed
FAR = ShelterSite("SH-T-FAR", 32.3900, 111.6700, 4000, True, 0)


def _position(at_lat: float = 32.0710, at_lon: float = 112.1910) -> bytes:
    fix = {"id": "p", "ts": "2026-12-07T09:31:00+08:00", "lat": at_lat, "lon": at_lon, "seq": 1}
    return orjson.dumps(fix)


ON_SCENE = orjson.dumps({"id": "s", "status": "on_scene"})


def _counts(every_s: float = 300.0) -> ShelterCounts:
    teams = {"T-FIRE-01": "fire", "T-MED-01": "medical"}
    return ShelterCounts([NEAR, SHUT, FAR], teams, run="r1", every_s=every_s)


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_an_evacuation_fills_slowly_and_never_beyond_capacity(draw: float) -> None:
    assert next_occupancy(100, 12000, 600.0, evacuating=True, draw=draw) - 100 in range(60, 241)
    assert next_occupancy(100, 12000, 0.0, evacuating=True, draw=draw) == 101  # at least one more
    assert next_occupancy(11990, 12000, 6000.0, evacuating=True, draw=draw) == 12000
    assert next_occupancy(12000, 12000, 600.0, evacuating=True, draw=draw) == 12000


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_without_an_evacuation_people_go_home(draw: float) -> None:
    after = next_occupancy(3400, 12000, 600.0, evacuating=False, draw=draw)
    assert 3400 - 12 <= after <= 3400
    assert next_occupancy(5, 12000, 60000.0, evacuating=False, draw=0.9) == 0


def test_a_team_on_scene_counts_the_nearest_open_shelter_as_it_fills() -> None:
    counts = _counts(every_s=300.0)
    assert counts.observe("teams/v1/T-FIRE-01/status", ON_SCENE, 0.0) is None
    sent = []
    for minute in range(0, 120, 1):
        c = counts.observe("teams/v1/T-FIRE-01/position", _position(), minute * 60.0)
        if c is not None:
            sent.append(c)
    assert len(sent) == 12  # the shelter every ten minutes, no more often
    assert {c.payload["shelter_id"] for c in sent} == {"SH-T-NEAR"}  # never the closed one
    occupancies = [c.payload["occupancy"] for c in sent]
    assert occupancies == sorted(occupancies) and occupancies[-1] == 1000  # fills up, stops at capacity
    first = sent[0]
    assert first.topic == "teams/v2/T-FIRE-01/shelter"
    msg = parse_shelter_report(first.topic, first.body(), datetime(2026, 12, 7, 1, 31, tzinfo=UTC))  # as sent
    assert (msg.team_id, msg.report.shelter_id, msg.report.occupancy) == ("T-FIRE-01", "SH-T-NEAR", 991)
    assert len({c.payload["id"] for c in sent}) == len(sent)


def test_no_count_when_nothing_is_in_reach_or_the_message_is_not_a_known_team_position() -> None:
    counts = _counts()
    assert counts.observe("teams/v1/T-FIRE-01/position", _position(31.0, 110.0), 0.0) is None  # 100 km off
    assert counts.observe("teams/v1/T-NOBODY/position", _position(), 0.0) is None
    assert counts.observe("teams/v1/T-FIRE-01/position", b"{not json", 0.0) is None
    assert counts.observe("wuwang/v1/safety/sensor/SEN-1", _position(), 0.0) is None
    # a medical crew at a scene is not evacuating: the shelter empties a little
    counts.observe("teams/v1/T-MED-01/status", ON_SCENE, 0.0)
    c = counts.observe("teams/v1/T-MED-01/position", _position(), 3600.0)
    assert c is not None and c.payload["occupancy"] <= 990


def test_demo_sites_are_the_demo_shelters_and_deterministic() -> None:
    sites = demo_shelter_sites()
    assert [s.shelter_id for s in sites] == [row[0] for row in DEMO_SHELTERS]
    assert all(0 <= s.occupancy <= s.capacity for s in sites)

    def run() -> list[bytes]:
        counts = ShelterCounts(sites, {"T-FIRE-01": "fire"}, run="r", seed=3)
        counts.observe("teams/v1/T-FIRE-01/status", ON_SCENE, 0.0)
        out = [counts.observe("teams/v1/T-FIRE-01/position", _position(), t * 60.0) for t in range(60)]
        return [c.body() for c in out if c is not None]

    assert run() == run() and run()
