"""The shared travel speeds (wuwang.travel) cover exactly the command service's team
types and the supply truck: the recommendation and the virtual crews read one table."""

from __future__ import annotations

from command.domain.vocabulary import TeamType
from wuwang.travel import DEFAULT_SPEEDS_KMH, SUPPLY_TRUCK


def test_every_team_type_and_the_supply_truck_has_a_speed() -> None:
    assert set(DEFAULT_SPEEDS_KMH) == {t.value for t in TeamType} | {SUPPLY_TRUCK}
    assert all(0 < v < 130 for v in DEFAULT_SPEEDS_KMH.values())
