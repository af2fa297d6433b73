"""Demo risk sources (风险源) and emergency shelters (应急避难场所) of the demo city:
fixed places inside the real districts of 襄阳 (the tests check each lies in the
district it names), with plausible levels, capacities and inspection intervals. A few
sources are overdue, so the first inspection sweep opens grid cases in the demo; most
shelters are open and part-filled, so an evacuation lists some. Running it again puts
the same rows (ids ``RS-DEMO-…``, ``SH-DEMO-…``) back as they were.

    DATABASE_URL=... python -m command.demo_risk
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from wuwang.demo_shelters import DEMO_SHELTERS
from wuwang.lattice import grid_cell_id
from wuwang.service import setup_logging

#: (id, name, kind, lat, lon, district adcode, level, unit, contact, interval days,
#: days since the last inspection)
DEMO_RISK_SOURCES: tuple[tuple[str, str, str, float, float, int, str, str, str, int, int], ...] = (
    (
        "RS-DEMO-01",
        "余家湖化工园区储罐区",
        "hazardous_chemicals",
        31.985,
        112.235,
        420607,
        "major",
        "余家湖工业园管委会",
        "王工 0710-3560001",
        7,
        9,
    ),
    (
        "RS-DEMO-02",
        "人民路加油站",
        "gas_station",
        32.042,
        112.147,
        420606,
        "large",
        "中石化襄阳分公司",
        "刘站长 0710-3200002",
        30,
        12,
    ),
    (
        "RS-DEMO-03",
        "襄州天然气门站",
        "gas_pipeline",
        32.100,
        112.210,
        420607,
        "major",
        "襄阳燃气集团",
        "调度室 0710-2800003",
        7,
        3,
    ),
    (
        "RS-DEMO-04",
        "三道河水库大坝",
        "dam_reservoir",
        31.620,
        111.880,
        420624,
        "major",
        "南漳县水利局",
        "值班室 0710-5230004",
        15,
        20,
    ),
    (
        "RS-DEMO-05",
        "保康县城北滑坡隐患点",
        "geological_hazard",
        31.880,
        111.270,
        420626,
        "large",
        "保康县自然资源局",
        "监测员 0710-5810005",
        10,
        4,
    ),
    (
        "RS-DEMO-06",
        "万达广场",
        "crowded_venue",
        32.070,
        112.170,
        420607,
        "general",
        "万达商管襄阳公司",
        "安保部 0710-3300006",
        30,
        8,
    ),
    (
        "RS-DEMO-07",
        "襄城区中心超高层住宅",
        "high_rise",
        32.015,
        112.140,
        420602,
        "general",
        "物业服务中心",
        "经理 0710-3500007",
        30,
        40,
    ),
    (
        "RS-DEMO-08",
        "枣阳南城加油站",
        "gas_station",
        32.130,
        112.760,
        420683,
        "low",
        "中石油枣阳分公司",
        "站长 0710-6200008",
        60,
        10,
    ),
)

def load_demo_risk(
    conn: psycopg.Connection[Any], cell_deg: float, now: datetime | None = None
) -> tuple[int, int]:
    """Register (or reset) the demo risk sources and shelters; returns (sources, shelters)."""
    at = now or datetime.now(UTC)
    with conn.cursor() as cur:
        for sid, name, kind, lat, lon, adcode, level, unit, contact, every, since in DEMO_RISK_SOURCES:
            cur.execute(
                "INSERT INTO risk_source (id, name, kind, lat, lon, grid_cell_id, district_adcode, level,"
                " responsible_unit, contact, inspection_interval_days, last_inspected_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
                " lat = EXCLUDED.lat, lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
                " district_adcode = EXCLUDED.district_adcode, level = EXCLUDED.level,"
                " responsible_unit = EXCLUDED.responsible_unit, contact = EXCLUDED.contact,"
                " inspection_interval_days = EXCLUDED.inspection_interval_days,"
                " last_inspected_at = EXCLUDED.last_inspected_at, updated_at = now()",
                (
                    sid,
                    name,
                    kind,
                    lat,
                    lon,
                    grid_cell_id(lat, lon, cell_deg),
                    adcode,
                    level,
                    unit,
                    contact,
                    every,
                    at - timedelta(days=since),
                ),
            )
        for hid, name, kind, lat, lon, adcode, capacity, facilities, status, occupancy in DEMO_SHELTERS:
            cur.execute(
                "INSERT INTO shelter (id, name, kind, lat, lon, grid_cell_id, district_adcode, capacity,"
                " facilities, status, occupancy, occupancy_at, occupancy_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'demo')"
                " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
                " lat = EXCLUDED.lat, lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
                " district_adcode = EXCLUDED.district_adcode, capacity = EXCLUDED.capacity,"
                " facilities = EXCLUDED.facilities, status = EXCLUDED.status, occupancy = EXCLUDED.occupancy,"
                " occupancy_at = EXCLUDED.occupancy_at, occupancy_by = 'demo', updated_at = now()",
                (
                    hid,
                    name,
                    kind,
                    lat,
                    lon,
                    grid_cell_id(lat, lon, cell_deg),
                    adcode,
                    capacity,
                    list(facilities),
                    status,
                    occupancy,
                    at,
                ),
            )
    conn.commit()
    return len(DEMO_RISK_SOURCES), len(DEMO_SHELTERS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m command.demo_risk",
        description="Register the demo risk sources (风险源) and shelters (应急避难场所).",
    )
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL from the settings")
    ns = parser.parse_args(argv)
    if argv is None:
        setup_logging("demo-risk", "WARNING")
    from wuwang.settings import get_settings

    settings = get_settings()
    url = ns.database_url or settings.shared.database_url
    if not url:
        print("DATABASE_URL is not set (or pass --database-url postgresql://…)", file=sys.stderr)
        return 2
    with psycopg.connect(url) as conn:
        sources, shelters = load_demo_risk(conn, settings.shared.grid_cell_deg)
    print(f"demo risk sources loaded: {sources}; shelters: {shelters}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
