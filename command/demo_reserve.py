"""The demo reserve (应急物资储备) of Xiangyang: warehouses of the three kinds, stock lots
and production capacity, deterministic for a seed.

* The item catalogue is the plan library's ``_items.yaml`` (validated with the plans),
  upserted into ``reserve_item``.
* 30 warehouses: 14 government stores (5 city-level — 襄阳市应急物资储备库, the flood,
  medical and fire-service stores, the relief-goods store — and one 救灾物资仓库 per
  district or county), 10 commercial-agreement reserves held by contracted companies
  (a call-up lead time of 2–6 h), and 6 production-capacity reserves (factories, with
  ``production_capacity`` rows instead of lots). Which warehouses there are and what
  each holds is the shared layout ``wuwang.reserve_layout`` (the drill scenarios check
  their injects against it); quantities, places and dates are drawn here.
* Stock lots with quantities shaped by each item's ``min_stock``: most items are well
  stocked city-wide, a few are deliberately below their minimum (low-stock alerts);
  items that age have expiry dates, a share of lots expiring within 30 days and a few
  already expired (alerts); durable goods have no expiry.

Everything is drawn from ``random.Random`` seeded with strings, so the same seed gives
the same warehouses, lots and quantities on any machine; expiry dates are laid out
relative to today (in the command centre's calendar), so the alerts stay true whenever
the demo runs.

Districts come from table ``district`` when the demo city is loaded (centre and
adcode); otherwise — an empty table, as in tests — from fixed seats around Xiangyang's
centre (32.01 N, 112.12 E) with no adcode.

Idempotent: an upsert. Warehouses, items and capacity are overwritten with the demo's
values; a lot is only rewritten while no incident has ever held any of it — once stock
has moved, the ledger is the truth and the loader leaves that lot alone.

CLI::

    python -m command.demo_reserve [--seed N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from command.domain.plans import DEFAULT_PLAN_DIR, load_plans
from command.domain.reserve import Item, ProductionCapacity, StockLot, Warehouse, WarehouseKind
from wuwang.reserve_layout import (
    CITY_STORES,
    COMPANIES,
    DISTRICT_ITEMS,
    FACTORIES,
    FIXED_SEATS,
    Seat,
    district_store_id,
)
from wuwang.service import setup_logging

DEFAULT_SEED = 1
CITY_CENTRE = (32.01, 112.12)  # 襄阳市 (WGS-84)


#: Shelf life in days of the items that age; anything else has no expiry date.
SHELF_LIFE_DAYS: dict[str, int] = {
    "gas_mask": 5 * 365,  # filter canisters
    "protective_suit": 5 * 365,
    "medical_mask": 3 * 365,
    "protective_gown": 2 * 365,
    "first_aid_kit": 3 * 365,
    "disinfectant_l": 365,
    "water_bottle": 365,
    "instant_food": 270,
    "fire_foam_l": 4 * 365,
    "decon_agent_l": 2 * 365,
    "fuel_diesel_l": 365,
}

#: Items below their minimum city-wide in the demo (so the wall shows low-stock alerts).
SHORT_ITEMS = ("hydraulic_rescue_kit", "satellite_phone", "protective_suit")

_GOV = WarehouseKind.GOVERNMENT_STOCK
_COM = WarehouseKind.COMMERCIAL_AGREEMENT
_CAP = WarehouseKind.PRODUCTION_CAPACITY


@dataclass(frozen=True)
class DemoReserve:
    items: tuple[Item, ...]
    warehouses: tuple[Warehouse, ...]
    lots: tuple[StockLot, ...]
    capacity: tuple[ProductionCapacity, ...]


def _rng(seed: int, key: str) -> random.Random:
    return random.Random(f"wuwang-reserve:{seed}:{key}")


def _round(quantity: float) -> int:
    """A quantity a storekeeper would write: 1–2 significant figures."""
    q = max(int(quantity), 1)
    if q < 20:
        return q
    step: int = 10 ** (len(str(q)) - 2)
    return max(step, round(q / step) * step)


def _seats(known: Sequence[Seat]) -> list[tuple[Seat, int | None]]:
    """The nine seats; where table ``district`` has the district, its centre and adcode."""
    by_code = {s.adcode: s for s in known}
    out: list[tuple[Seat, int | None]] = []
    for fixed in FIXED_SEATS:
        row = by_code.get(fixed.adcode)
        out.append((row, row.adcode) if row else (fixed, None))
    return out


def build_demo_reserve(
    seed: int, items: Sequence[Item], today: date, districts: Sequence[Seat] = ()
) -> DemoReserve:
    """The demo reserve (pure): the same seed, catalogue and day give the same result."""
    catalogue = {i.code: i for i in items}
    seats = _seats(districts)
    warehouses: list[Warehouse] = []
    holds: list[tuple[str, str]] = []  # (warehouse id, item code)

    def place(wid: str, seat_index: int, spread: float) -> tuple[float, float, int | None]:
        seat, adcode = seats[seat_index]
        rng = _rng(seed, f"place:{wid}")
        return (
            round(seat.lat + rng.uniform(-spread, spread), 6),
            round(seat.lon + rng.uniform(-spread, spread), 6),
            adcode,
        )

    for wid, name, seat_index, held in CITY_STORES:
        lat, lon, adcode = place(wid, seat_index, 0.03)
        warehouses.append(Warehouse(wid, name, _GOV, lat, lon, adcode, lead_time_s=15 * 60))
        holds += [(wid, code) for code in held if code in catalogue]
    for index, (seat, _) in enumerate(seats):
        wid = district_store_id(seat.adcode)
        lat, lon, adcode = place(wid, index, 0.015)
        warehouses.append(
            Warehouse(wid, f"{seat.name}救灾物资仓库", _GOV, lat, lon, adcode, lead_time_s=10 * 60)
        )
        holds += [(wid, code) for code in DISTRICT_ITEMS if code in catalogue]
    for wid, name, seat_index, lead_h, held in COMPANIES:
        lat, lon, adcode = place(wid, seat_index, 0.04)
        warehouses.append(Warehouse(wid, name, _COM, lat, lon, adcode, lead_time_s=lead_h * 3600))
        holds += [(wid, code) for code in held if code in catalogue]
    capacity: list[ProductionCapacity] = []
    for wid, name, seat_index, lead_h, made in FACTORIES:
        lat, lon, adcode = place(wid, seat_index, 0.05)
        warehouses.append(Warehouse(wid, name, _CAP, lat, lon, adcode, lead_time_s=lead_h * 3600))
        capacity += [
            ProductionCapacity(wid, code, per_day, lead_h * 3600)
            for code, per_day in made
            if code in catalogue
        ]

    # City-wide target per item: its minimum × a factor (below 1 for the short items),
    # shared among the warehouses holding it, the city stores taking larger shares.
    holders: dict[str, list[str]] = {}
    for wid, code in dict.fromkeys(holds):  # each (warehouse, item) once, in order
        holders.setdefault(code, []).append(wid)
    lots: list[StockLot] = []
    for code in sorted(holders):
        item = catalogue[code]
        rng = _rng(seed, f"item:{code}")
        minimum = item.min_stock or 100
        factor = rng.uniform(0.55, 0.8) if code in SHORT_ITEMS else rng.uniform(1.3, 2.6)
        weights = [
            (3.0 if wid.startswith("WH-GOV-CITY") else 1.0) * rng.uniform(0.6, 1.4) for wid in holders[code]
        ]
        total = sum(weights)
        for wid, weight in zip(holders[code], weights, strict=True):
            amount = _round(minimum * factor * weight / total)
            lots += _lots(seed, wid, code, amount, today)
    return DemoReserve(tuple(items), tuple(warehouses), tuple(lots), tuple(capacity))


def _lots(seed: int, wid: str, code: str, amount: int, today: date) -> list[StockLot]:
    """One to three deliveries of an item in a warehouse; ages by the item's shelf life."""
    rng = _rng(seed, f"lots:{wid}:{code}")
    shelf = SHELF_LIFE_DAYS.get(code)
    count = 1 if amount < 10 or (shelf is None and rng.random() < 0.6) else rng.choice((1, 2, 2, 3))
    shares = [rng.uniform(0.5, 1.5) for _ in range(count)]
    out: list[StockLot] = []
    left = amount
    for n, share in enumerate(shares, start=1):
        quantity = left if n == count else max(1, _round(amount * share / sum(shares)))
        quantity = min(quantity, left - (count - n))  # every lot keeps at least one unit
        left -= quantity
        expires: date | None = None
        if shelf is not None:
            bucket = rng.random()
            if bucket < 0.05:
                expires = today - timedelta(days=rng.randint(1, 60))  # expired: dispose or rotate
            elif bucket < 0.18:
                expires = today + timedelta(days=rng.randint(0, 30))  # expiring soon
            else:
                expires = today + timedelta(days=rng.randint(31, shelf))
        out.append(StockLot(f"LOT-{wid.removeprefix('WH-')}-{code}-{n}", wid, code, quantity, 0, expires))
    return out


# --- loading -------------------------------------------------------------------------------


def _known_districts(conn: psycopg.Connection[Any]) -> list[Seat]:
    rows = conn.execute(
        "SELECT adcode, name, center_lat, center_lon FROM district ORDER BY adcode"
    ).fetchall()
    return [Seat(int(a), str(n), float(lat), float(lon)) for a, n, lat, lon in rows]


def load_demo_reserve(
    conn: psycopg.Connection[Any],
    seed: int = DEFAULT_SEED,
    *,
    plans_dir: Path | str = DEFAULT_PLAN_DIR,
    today: date | None = None,
    timezone: str = "Asia/Shanghai",
) -> dict[str, int]:
    """Upsert the demo reserve in one transaction; returns the rows written per table."""
    library = load_plans(plans_dir)
    day = today or datetime.now(ZoneInfo(timezone)).date()
    with conn.transaction():
        demo = build_demo_reserve(seed, list(library.items.values()), day, _known_districts(conn))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reserve_item (code, name_zh, name_en, category, unit, unit_zh, min_stock)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET"
                " name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, category = EXCLUDED.category,"
                " unit = EXCLUDED.unit, unit_zh = EXCLUDED.unit_zh, min_stock = EXCLUDED.min_stock",
                [
                    (i.code, i.name_zh, i.name_en, str(i.category), i.unit, i.unit_zh, i.min_stock)
                    for i in demo.items
                ],
            )
            cur.executemany(
                "INSERT INTO warehouse (id, name, kind, lat, lon, district_adcode, lead_time_s)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
                " kind = EXCLUDED.kind, lat = EXCLUDED.lat, lon = EXCLUDED.lon,"
                " district_adcode = EXCLUDED.district_adcode, lead_time_s = EXCLUDED.lead_time_s",
                [
                    (w.id, w.name, str(w.kind), w.lat, w.lon, w.district_adcode, w.lead_time_s)
                    for w in demo.warehouses
                ],
            )
            cur.executemany(
                "INSERT INTO production_capacity (warehouse_id, item_code, per_day, lead_time_s)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (warehouse_id, item_code) DO UPDATE SET"
                " per_day = EXCLUDED.per_day, lead_time_s = EXCLUDED.lead_time_s",
                [(c.warehouse_id, c.item_code, c.per_day, c.lead_time_s) for c in demo.capacity],
            )
            cur.executemany(
                "INSERT INTO stock_lot (id, warehouse_id, item_code, quantity, reserved, expires_on)"
                " VALUES (%s, %s, %s, %s, 0, %s) ON CONFLICT (id) DO UPDATE SET"
                " warehouse_id = EXCLUDED.warehouse_id, item_code = EXCLUDED.item_code,"
                " quantity = EXCLUDED.quantity, expires_on = EXCLUDED.expires_on"
                " WHERE NOT EXISTS (SELECT 1 FROM stock_allocation a WHERE a.lot_id = stock_lot.id)",
                [
                    (lot.id, lot.warehouse_id, lot.item_code, lot.quantity, lot.expires_on)
                    for lot in demo.lots
                ],
            )
    return {
        "reserve_item": len(demo.items),
        "warehouse": len(demo.warehouses),
        "production_capacity": len(demo.capacity),
        "stock_lot": len(demo.lots),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m command.demo_reserve",
        description="Load the demo reserve (应急物资储备) of Xiangyang.",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL from the settings")
    ns = parser.parse_args(argv)
    if argv is None:  # this process's own command line: its logging, in the one format
        setup_logging("demo-reserve", "WARNING")
    from wuwang.settings import get_settings

    settings = get_settings()
    url = ns.database_url or settings.shared.database_url
    if not url:
        print("DATABASE_URL is not set (or pass --database-url postgresql://…)", file=sys.stderr)
        return 2
    with psycopg.connect(url) as conn:
        counts = load_demo_reserve(
            conn, ns.seed, plans_dir=settings.command.plans_dir, timezone=settings.command.timezone
        )
    print("demo reserve loaded: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
