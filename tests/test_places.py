"""Places in words from the demo city (pure): district, named crossing, landmark."""

from __future__ import annotations

import pytest

from wuwang.city import load_districts
from wuwang.geo import offset_by_metres
from wuwang.places import Landmark, crossing_at, describe_place, direction_zh, district_at

DISTRICTS = load_districts()
FANCHENG = next(d for d in DISTRICTS if d.adcode == 420606)


def test_a_point_in_the_city_gets_its_district_and_a_crossing_of_two_different_named_roads() -> None:
    lat, lon = 32.0420, 112.1440
    assert district_at(lat, lon, DISTRICTS) is FANCHENG
    east_west, north_south = crossing_at(lat, lon, FANCHENG)
    assert east_west != north_south
    assert {east_west, north_south} <= set(FANCHENG.info.roads)
    assert describe_place(lat, lon, DISTRICTS) == f"樊城区{east_west}与{north_south}交叉口附近"


def test_nearby_points_share_the_crossing_and_a_block_away_the_road_changes() -> None:
    seat = FANCHENG.center
    near = offset_by_metres(*seat, 100, -120)
    assert crossing_at(*near, FANCHENG) == crossing_at(*seat, FANCHENG)
    north = offset_by_metres(*seat, 600, 0)  # one block north: another east–west road
    assert crossing_at(*north, FANCHENG)[0] != crossing_at(*seat, FANCHENG)[0]
    assert crossing_at(*north, FANCHENG)[1] == crossing_at(*seat, FANCHENG)[1]


def test_the_nearest_landmark_within_reach_with_direction_and_distance() -> None:
    station = Landmark("襄阳站", 32.0450, 112.1400)
    lat, lon = offset_by_metres(station.lat, station.lon, -300, 300)  # south-east of it
    text = describe_place(lat, lon, DISTRICTS, [Landmark("远处学校", 32.2, 112.3), station])
    assert text.endswith("（襄阳站东南约 420 米）"), text
    at_it = describe_place(station.lat, station.lon, DISTRICTS, [station])
    assert at_it.endswith("（襄阳站）")
    far = offset_by_metres(station.lat, station.lon, 3000, 0)
    assert "襄阳站" not in describe_place(*far, DISTRICTS, [station])


def test_outside_the_city_only_coordinates() -> None:
    assert district_at(39.9, 116.4, DISTRICTS) is None
    assert describe_place(39.9, 116.4, DISTRICTS) == "39.90000, 116.40000"


@pytest.mark.parametrize(
    ("bearing", "said"), [(0, "北"), (44, "东北"), (90, "东"), (200, "南"), (337.6, "北")]
)
def test_directions(bearing: float, said: str) -> None:
    assert direction_zh(bearing) == said
