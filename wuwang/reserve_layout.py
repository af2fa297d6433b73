"""The demo reserve's layout (应急物资储备): its warehouses and what each one holds.

The one home of the facts both sides of a drill need: the command service generates the
demo reserve's stock and capacity from it (``command.demo_reserve``, quantities and
expiry dates drawn per seed), and the drill scenarios check a ``warehouse_short`` inject
against it (``simulators.scenario``). Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass


@dataclass(frozen=True)
class Seat:
    """Where a district's or county's government sits (WGS-84), used for its warehouse."""

    adcode: int
    name: str
    lat: float
    lon: float


#: Fixed seats of Xiangyang's nine districts and counties (approximate, WGS-84).
FIXED_SEATS: tuple[Seat, ...] = (
    Seat(420602, "襄城区", 32.010, 112.134),
    Seat(420606, "樊城区", 32.045, 112.135),
    Seat(420607, "襄州区", 32.087, 112.211),
    Seat(420624, "南漳县", 31.774, 111.839),
    Seat(420625, "谷城县", 32.263, 111.653),
    Seat(420626, "保康县", 31.879, 111.261),
    Seat(420682, "老河口市", 32.386, 111.671),
    Seat(420683, "枣阳市", 32.129, 112.772),
    Seat(420684, "宜城市", 31.720, 112.258),
)


_LIVING = ("tent", "blanket", "folding_bed", "water_bottle", "instant_food", "water_tank")
_FLOOD = ("sandbag", "drainage_pump", "life_jacket", "rubber_boat")
_RESCUE = ("stretcher", "first_aid_kit", "generator", "lighting_tower", "traffic_cone", "barrier_tape")

# (id, name, district index in FIXED_SEATS, items held). Lead times in seconds.
CITY_STORES: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    (
        "WH-GOV-CITY-01",
        "襄阳市应急物资储备库",
        1,
        (*_LIVING, *_FLOOD, *_RESCUE, "satellite_phone", "fuel_diesel_l", "hydraulic_rescue_kit", "gas_mask"),
    ),
    ("WH-GOV-CITY-02", "襄阳市救灾物资储备库", 0, (*_LIVING, "stretcher", "generator", "water_tank")),
    (
        "WH-GOV-CITY-03",
        "襄阳市防汛抗旱物资仓库",
        2,
        (*_FLOOD, "generator", "lighting_tower", "fuel_diesel_l", "barrier_tape"),
    ),
    (
        "WH-GOV-CITY-04",
        "襄阳市医疗卫生应急物资储备库",
        1,
        ("medical_mask", "protective_gown", "first_aid_kit", "disinfectant_l", "stretcher"),
    ),
    (
        "WH-GOV-CITY-05",
        "襄阳市消防救援支队战勤保障物资库",
        0,
        (
            "fire_foam_l",
            "air_cylinder",
            "gas_mask",
            "protective_suit",
            "hydraulic_rescue_kit",
            "decon_agent_l",
            "absorbent_kg",
            "satellite_phone",
        ),
    ),
)
DISTRICT_ITEMS = (
    "tent",
    "blanket",
    "folding_bed",
    "water_bottle",
    "instant_food",
    "sandbag",
    "life_jacket",
    "first_aid_kit",
    "stretcher",
    "traffic_cone",
    "barrier_tape",
    "generator",
)

COMPANIES: tuple[tuple[str, str, int, int, tuple[str, ...]], ...] = (
    ("WH-COM-01", "襄阳汉江商贸集团有限公司（协议储备）", 1, 2, ("water_bottle", "instant_food")),
    ("WH-COM-02", "襄阳隆中连锁超市有限公司（协议储备）", 0, 2, ("water_bottle", "instant_food", "blanket")),
    (
        "WH-COM-03",
        "湖北汉水医药物流有限公司（协议储备）",
        2,
        3,
        ("medical_mask", "protective_gown", "disinfectant_l", "first_aid_kit"),
    ),
    ("WH-COM-04", "襄阳鑫源石化油品销售有限公司（协议储备）", 2, 2, ("fuel_diesel_l",)),
    ("WH-COM-05", "襄阳岘山建材有限公司（协议储备）", 1, 4, ("sandbag", "absorbent_kg")),
    (
        "WH-COM-06",
        "襄阳华通机电设备有限公司（协议储备）",
        2,
        4,
        ("generator", "drainage_pump", "lighting_tower"),
    ),
    ("WH-COM-07", "枣阳润丰粮油贸易有限公司（协议储备）", 7, 3, ("instant_food", "water_bottle")),
    ("WH-COM-08", "谷城县安达物流有限公司（协议储备）", 4, 5, ("tent", "folding_bed", "blanket")),
    ("WH-COM-09", "老河口市恒泰化工贸易有限公司（协议储备）", 6, 6, ("decon_agent_l", "absorbent_kg")),
    ("WH-COM-10", "宜城市楚都百货有限公司（协议储备）", 8, 3, ("water_bottle", "blanket", "water_tank")),
)

# (id, name, seat, lead time h, [(item, units per day)])
FACTORIES: tuple[tuple[str, str, int, int, tuple[tuple[str, int], ...]], ...] = (
    (
        "WH-CAP-01",
        "襄阳恒安防护用品有限公司（产能储备）",
        2,
        12,
        (("medical_mask", 200_000), ("protective_gown", 5_000)),
    ),
    ("WH-CAP-02", "湖北襄江纺织有限公司（产能储备）", 1, 24, (("blanket", 3_000),)),
    ("WH-CAP-03", "襄阳金盾篷布制品有限公司（产能储备）", 2, 24, (("tent", 400), ("folding_bed", 1_500))),
    ("WH-CAP-04", "襄阳清泉饮品有限公司（产能储备）", 0, 8, (("water_bottle", 120_000),)),
    (
        "WH-CAP-05",
        "襄阳华力精细化工有限公司（产能储备）",
        6,
        12,
        (("disinfectant_l", 20_000), ("decon_agent_l", 5_000)),
    ),
    ("WH-CAP-06", "枣阳汉水编织袋厂（产能储备）", 7, 6, (("sandbag", 50_000),)),
)


def district_store_id(adcode: int) -> str:
    """The id of a district's or county's government store (救灾物资仓库)."""
    return f"WH-GOV-{adcode}"


def holdings(catalogue: Container[str] | None = None) -> dict[str, frozenset[str]]:
    """Warehouse id → the item codes it holds, as stock or as production capacity; only
    the codes in ``catalogue`` when one is given (the plan library's items)."""

    def kept(codes: tuple[str, ...]) -> frozenset[str]:
        return frozenset(c for c in codes if catalogue is None or c in catalogue)

    out: dict[str, frozenset[str]] = {}
    for wid, _, _, held in CITY_STORES:
        out[wid] = kept(held)
    for seat in FIXED_SEATS:
        out[district_store_id(seat.adcode)] = kept(DISTRICT_ITEMS)
    for wid, _, _, _, held in COMPANIES:
        out[wid] = kept(held)
    for wid, _, _, _, made in FACTORIES:
        out[wid] = kept(tuple(code for code, _ in made))
    return out
