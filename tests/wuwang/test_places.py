"""Places in words from the demo city (pure): district, named crossing, landmark."""

from __future__ import annotations

import pytest

from simulators.streets import build_street_network
from wuwang.city import District, load_districts
from wuwang.geo import haversine_m, offset_by_metres
from wuwang.places import (
    ROAD_SPACING_M,
    Landmark,
    RoadLabel,
    crossing_at,
    crossing_place,
    describe_place,
    direction,
    district_at,
    east_west_road,
    lattice_cell,
    lattice_point,
    north_south_road,
    road_labels,
    street_lattice,
)

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


def test_an_alarms_place_is_the_crossing_without_landmark_and_none_outside_the_city() -> None:
    lat, lon = FANCHENG.center
    here = crossing_place(lat, lon, DISTRICTS)
    assert here is not None and here.startswith("樊城区") and here.endswith("交叉口附近")
    # the same words as the order's address, less its landmark
    near = [Landmark("襄阳站", *offset_by_metres(lat, lon, 200, 0))]
    assert describe_place(lat, lon, DISTRICTS, near).startswith(here + "（")
    assert crossing_place(lat, lon, DISTRICTS, "en") == describe_place(lat, lon, DISTRICTS, lang="en")
    assert crossing_place(40.0, 116.4, DISTRICTS) is None  # Beijing: the caller gives coordinates


def test_outside_the_city_only_coordinates() -> None:
    assert district_at(39.9, 116.4, DISTRICTS) is None
    assert describe_place(39.9, 116.4, DISTRICTS) == "39.90000, 116.40000"


@pytest.mark.parametrize(
    ("bearing", "said"), [(0, "北"), (44, "东北"), (90, "东"), (200, "南"), (337.6, "北")]
)
def test_directions(bearing: float, said: str) -> None:
    assert direction(bearing) == said


# --- the map's road names (wuwang.places.road_labels) -------------------------------


def _labels(district: District) -> list[RoadLabel]:
    return road_labels(district, street_lattice(district))


@pytest.mark.parametrize("district", DISTRICTS, ids=lambda d: d.short)
def test_every_road_name_on_the_map_is_the_name_an_address_there_gives(district: District) -> None:
    labels = _labels(district)
    assert labels
    for label in labels:
        east_west, north_south = crossing_at(label.lat, label.lon, district)
        assert label.name == (east_west if label.along == "ew" else north_south), label
    # every block named, one in four from a farther zoom too
    assert 0.15 < sum(label.sparse for label in labels) / len(labels) < 0.35
    # and every road of the lattice is named on the map
    cells = street_lattice(district).cells
    named = {east_west_road(district, i) for i, _ in cells} | {
        north_south_road(district, j) for _, j in cells
    }
    assert {label.name for label in labels} == named


def test_an_addresss_crossing_is_where_its_two_labelled_roads_meet() -> None:
    lat, lon = offset_by_metres(*FANCHENG.center, 1250, -1900)  # 2 blocks north, 3 west
    east_west, north_south = crossing_at(lat, lon, FANCHENG)
    assert describe_place(lat, lon, DISTRICTS).startswith(f"樊城区{east_west}与{north_south}交叉口附近")
    labels = _labels(FANCHENG)
    # the nearest sparse label (shown from zoom 14) of each named road: the east–west one
    # lies on the crossing's latitude, the north–south one on its longitude, both within
    # two blocks of it
    ew = min(
        (lb for lb in labels if lb.along == "ew" and lb.name == east_west and lb.sparse),
        key=lambda lb: haversine_m(lat, lon, lb.lat, lb.lon),
    )
    ns = min(
        (lb for lb in labels if lb.along == "ns" and lb.name == north_south and lb.sparse),
        key=lambda lb: haversine_m(lat, lon, lb.lat, lb.lon),
    )
    crossing = lattice_point(FANCHENG, *lattice_cell(lat, lon, FANCHENG))
    assert crossing == lattice_point(FANCHENG, 2, -3)
    assert ew.lat == pytest.approx(crossing[0], abs=1e-6)
    assert ns.lon == pytest.approx(crossing[1], abs=1e-6)
    assert haversine_m(*crossing, ew.lat, ew.lon) <= 2 * ROAD_SPACING_M
    assert haversine_m(*crossing, ns.lat, ns.lon) <= 2 * ROAD_SPACING_M
    assert haversine_m(lat, lon, ew.lat, ns.lon) < 0.5 * ROAD_SPACING_M  # the address is near it


def test_the_simulated_streets_are_the_named_lattice() -> None:
    network, lattice = build_street_network(FANCHENG), street_lattice(FANCHENG)
    assert network.nodes == lattice.nodes and network.neighbours == lattice.neighbours
    for (i, j), node in zip(lattice.cells, lattice.nodes, strict=True):
        assert node == lattice_point(FANCHENG, i, j)
        assert lattice_cell(*node, FANCHENG) == (i, j)


def test_a_place_is_described_in_either_language() -> None:
    station = Landmark("襄阳站", 32.0450, 112.1400)
    lat, lon = offset_by_metres(station.lat, station.lon, -300, 300)  # south-east of it
    east_west, north_south = crossing_at(lat, lon, FANCHENG)
    assert describe_place(lat, lon, DISTRICTS, [station]) == (
        f"樊城区{east_west}与{north_south}交叉口附近（襄阳站东南约 420 米）"
    )
    assert describe_place(lat, lon, DISTRICTS, [station], "en") == (
        f"near the crossing of {east_west} and {north_south}, 樊城区 (about 420 m south-east of 襄阳站)"
    )
    assert direction(90, "en") == "east"
