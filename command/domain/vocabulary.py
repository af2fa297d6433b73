"""Words shared by every part of the domain core: response levels, incident types,
team types. Kept apart so that plans, incidents and the recommender agree."""

from __future__ import annotations

from enum import IntEnum, StrEnum

from wuwang import i18n


class ResponseLevel(IntEnum):
    """响应级别 I–IV. Lower number = graver; I is the highest response."""

    I = 1  # 特别重大, red  # noqa: E741 - the field's own name for the level
    II = 2  # 重大, orange
    III = 3  # 较大, yellow
    IV = 4  # 一般, blue

    @property
    def colour(self) -> str:
        return {1: "red", 2: "orange", 3: "yellow", 4: "blue"}[self.value]

    @property
    def roman(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str | int) -> ResponseLevel:
        """Accepts 1..4, "I".."IV", or the Chinese labels."""
        if isinstance(text, int):
            return cls(text)
        t = text.strip().upper()
        for level in cls:
            if t in (level.name, str(level.value), i18n.text("zh_CN", f"level.{level.value}")):
                return level
        raise ValueError(f"unknown response level {text!r}")


class IncidentType(StrEnum):
    """What an incident is about; plans are keyed by these."""

    FIRE = "fire"
    HIGH_RISE_FIRE = "high_rise_fire"
    HAZMAT_LEAK = "hazmat_leak"  # 危险化学品泄漏
    FLOOD = "flood"  # 城市内涝 / 洪涝
    CROWD_CRUSH = "crowd_crush"  # 大型活动踩踏
    TRAFFIC_ACCIDENT = "traffic_accident"
    EARTHQUAKE = "earthquake"
    PUBLIC_HEALTH = "public_health"
    UTILITY_OUTAGE = "utility_outage"  # 大面积停电 / 停水
    MEDICAL = "medical"
    RESCUE = "rescue"
    CRIMINAL = "criminal"
    PUBLIC_ORDER = "public_order"
    DISPUTE = "dispute"
    OTHER = "other"


class TeamType(StrEnum):
    """救援队伍 types (matches the ``team.team_type`` CHECK in migration 0001)."""

    FIRE = "fire"
    MEDICAL = "medical"
    POLICE = "police"
    HAZMAT = "hazmat"
    WATER_RESCUE = "water_rescue"
    COMPREHENSIVE = "comprehensive"


class Role(StrEnum):
    """Who acts. ``system`` is the service itself (the correlator opening and linking)."""

    OPERATOR = "operator"  # 指挥中心值班员
    COMMANDER = "commander"  # 指挥长
    FIELD = "field"  # 救援队伍 / 网格员
    PLANNER = "planner"  # 演练策划
    ADMIN = "admin"
    SYSTEM = "system"
