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


# The demo city's shelters live here, beside their vocabulary: the command service loads
# them (command/demo_risk.py) and the demo's simulated teams count people in them
# (simulators/shelter_counts.py), and neither may import the other.
#: (id, name, kind, lat, lon, district adcode, capacity, facilities, status, occupancy)
DEMO_SHELTERS: tuple[tuple[str, str, str, float, float, int, int, tuple[str, ...], str, int], ...] = (
    (
        "SH-DEMO-01",
        "襄阳市体育中心应急避难场所",
        "stadium",
        32.070,
        112.190,
        420602,
        12000,
        ("water", "power", "toilets", "medical", "beds"),
        "open",
        3400,
    ),
    (
        "SH-DEMO-02",
        "诸葛亮广场应急避难场所",
        "square",
        32.005,
        112.130,
        420602,
        8000,
        ("water", "toilets", "power"),
        "open",
        7950,
    ),
    (
        "SH-DEMO-03",
        "月亮湾公园应急避难场所",
        "park",
        32.040,
        112.190,
        420602,
        15000,
        ("water", "toilets", "tents"),
        "open",
        1200,
    ),
    (
        "SH-DEMO-04",
        "襄阳五中避难点",
        "school",
        32.045,
        112.130,
        420606,
        3000,
        ("water", "power", "beds"),
        "closed",
        0,
    ),
    (
        "SH-DEMO-05",
        "襄州区人民广场应急避难场所",
        "square",
        32.088,
        112.210,
        420607,
        6000,
        ("water", "toilets"),
        "open",
        500,
    ),
    (
        "SH-DEMO-06",
        "枣阳市民广场应急避难场所",
        "square",
        32.120,
        112.750,
        420683,
        5000,
        ("water", "toilets", "power"),
        "closed",
        0,
    ),
    (
        "SH-DEMO-07",
        "老河口市体育馆避难点",
        "stadium",
        32.390,
        111.670,
        420682,
        4000,
        ("water", "power", "beds", "medical"),
        "open",
        0,
    ),
    (
        "SH-DEMO-08",
        "宜城市民公园应急避难场所",
        "park",
        31.720,
        112.260,
        420684,
        7000,
        ("water", "toilets", "tents"),
        "closed",
        0,
    ),
)
