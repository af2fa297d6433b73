"""Typical urban travel speeds by vehicle: the one home of the speeds the command
service's recommendation ranks teams by and the virtual crews drive at, so a crew
arrives when the console said it would."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: The vehicle kind of a reserve's supply truck (the others are team types).
SUPPLY_TRUCK = "supply_truck"

#: Typical urban speeds (km/h) by team type (``command.domain.vocabulary.TeamType``
#: values), and for supply trucks.
DEFAULT_SPEEDS_KMH: Mapping[str, float] = MappingProxyType(
    {
        "fire": 40.0,
        "medical": 45.0,
        "police": 50.0,
        "hazmat": 35.0,
        "water_rescue": 35.0,
        "comprehensive": 35.0,
        SUPPLY_TRUCK: 40.0,
    }
)
