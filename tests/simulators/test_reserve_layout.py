"""The demo reserve's layout (wuwang.reserve_layout), which the drill scenarios check
``warehouse_short`` injects against, is what the command service stocks: every
warehouse it generates, and exactly the items each one holds as lots or capacity."""

from __future__ import annotations

from datetime import date

from command.demo_reserve import DEFAULT_SEED, build_demo_reserve
from command.domain.plans import DEFAULT_PLAN_DIR, load_plans
from simulators.scenario import demo_world
from wuwang.reserve_layout import holdings


def _stocked(seed: int, day: date) -> dict[str, frozenset[str]]:
    library = load_plans(DEFAULT_PLAN_DIR)
    reserve = build_demo_reserve(seed, list(library.items.values()), day)
    held: dict[str, set[str]] = {w.id: set() for w in reserve.warehouses}
    for lot in reserve.lots:
        held[lot.warehouse_id].add(lot.item_code)
    for cap in reserve.capacity:
        held[cap.warehouse_id].add(cap.item_code)
    return {k: frozenset(v) for k, v in held.items()}


def test_the_layout_is_what_the_command_service_stocks() -> None:
    library = load_plans(DEFAULT_PLAN_DIR)
    stocked = _stocked(DEFAULT_SEED, date(2025, 1, 1))
    assert holdings() == holdings(library.items) == stocked
    assert len(stocked) == 30 and all(stocked.values())
    # Holdings depend neither on the seed nor on the day (only quantities and dates do).
    assert _stocked(7, date(2031, 6, 30)) == stocked


def test_the_scenarios_check_injects_against_the_layout() -> None:
    assert dict(demo_world().warehouses) == holdings()
