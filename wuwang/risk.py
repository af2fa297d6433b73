"""The vocabulary of risk sources (风险源) and emergency shelters (应急避难场所): the
codes the command service's registries store and the CSV import (simulators) writes.
One home for both sides (docs/risk-and-shelters.md)."""

from __future__ import annotations

from enum import StrEnum


class RiskKind(StrEnum):
    HAZARDOUS_CHEMICALS = "hazardous_chemicals"  # 危险化学品
    GAS_STATION = "gas_station"  # 加油加气站
    GAS_PIPELINE = "gas_pipeline"  # 燃气管线
    DAM_RESERVOIR = "dam_reservoir"  # 水库大坝
    GEOLOGICAL_HAZARD = "geological_hazard"  # 地质灾害隐患点
    CROWDED_VENUE = "crowded_venue"  # 人员密集场所
    HIGH_RISE = "high_rise"  # 高层建筑


class RiskLevel(StrEnum):
    """重大 > 较大 > 一般 > 低 (the codes are what the database stores)."""

    MAJOR = "major"  # 重大
    LARGE = "large"  # 较大
    GENERAL = "general"  # 一般
    LOW = "low"  # 低

    @property
    def rank(self) -> int:
        """3 for major … 0 for low: higher is more dangerous."""
        return _RANK[self]


_RANK = {RiskLevel.LOW: 0, RiskLevel.GENERAL: 1, RiskLevel.LARGE: 2, RiskLevel.MAJOR: 3}


class ShelterKind(StrEnum):
    PARK = "park"  # 公园绿地
    SCHOOL = "school"  # 学校
    STADIUM = "stadium"  # 体育场馆
    SQUARE = "square"  # 广场
    COMMUNITY = "community"  # 社区避难点


class ShelterStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    FULL = "full"
