"""The event types a warning (预警) may name: the four categories of GB/T 35561 (突发事件
分类与编码) and their sub-types, as data. A warning stores the sub-type's key; its
category follows from it. Keys are this console's own (stable, ASCII, used in the API and
the MQTT payload); their words are in the catalogues (wuwang/i18n: ``warning_category.*``,
``warning_event.*``).
"""

from __future__ import annotations

from types import MappingProxyType

#: The four categories of GB/T 35561, in the standard's order.
CATEGORIES: tuple[str, ...] = ("natural", "accident", "health", "security")

#: Sub-type → its category, in the standard's order within each category.
EVENT_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "flood_drought": "natural",
        "meteorological": "natural",
        "earthquake": "natural",
        "geological": "natural",
        "marine": "natural",
        "biological": "natural",
        "forest_fire": "natural",
        "work_safety": "accident",
        "traffic": "accident",
        "public_facility": "accident",
        "nuclear_radiation": "accident",
        "environmental": "accident",
        "epidemic": "health",
        "unexplained_illness": "health",
        "food_occupational": "health",
        "animal_epidemic": "health",
        "other_health": "health",
        "terrorist": "security",
        "criminal": "security",
        "mass_incident": "security",
        "economic_security": "security",
        "foreign_related": "security",
    }
)
