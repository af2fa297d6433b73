"""The reserve: earliest-expiry-first picking, stock movements, alerts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.reserve import (
    Allocation,
    Expired,
    ExpiringSoon,
    InsufficientStock,
    Item,
    ItemCategory,
    LowStock,
    ProductionCapacity,
    StockError,
    StockLot,
    WarehouseKind,
    available_by_warehouse,
    consume,
    issue,
    new_allocation,
    pick_lots,
    release,
    reserve,
    return_stock,
    stock_alerts,
)
from wuwang import i18n

TODAY = date(2025, 7, 1)


def lot(
    lot_id: str, qty: int, expires: date | None = None, reserved: int = 0, wh: str = "W1", item: str = "tent"
) -> StockLot:
    return StockLot(lot_id, wh, item, qty, reserved, expires)


def test_warehouse_kinds_have_chinese_labels() -> None:
    assert i18n.text("zh_CN", f"warehouse.{WarehouseKind.GOVERNMENT_STOCK}") == "政府实物储备"
    assert i18n.text("zh_CN", f"warehouse.{WarehouseKind('commercial_agreement')}") == "企业协议储备"
    assert i18n.text("zh_CN", f"warehouse.{WarehouseKind.PRODUCTION_CAPACITY}") == "产能储备"


def test_lot_invariants() -> None:
    assert lot("a", 10, reserved=4).available == 6
    with pytest.raises(ValueError, match="reserved"):
        lot("a", 10, reserved=11)
    with pytest.raises(ValueError, match="reserved"):
        lot("a", 10, reserved=-1)
    assert lot("a", 1, TODAY).expired(TODAY) is False  # usable on its expiry day
    assert lot("a", 1, TODAY - timedelta(days=1)).expired(TODAY) is True
    assert lot("a", 1).expired(TODAY) is False


def test_picks_earliest_expiry_first_and_no_expiry_last() -> None:
    lots = [
        lot("never", 100),
        lot("late", 10, TODAY + timedelta(days=300)),
        lot("soon", 5, TODAY + timedelta(days=3)),
        lot("gone", 50, TODAY - timedelta(days=1)),
        lot("other-item", 50, TODAY, item="blanket"),
        lot("held", 20, TODAY + timedelta(days=1), reserved=20),
    ]
    picks = pick_lots(lots, "tent", 20, TODAY)
    assert [(p.lot_id, p.quantity) for p in picks] == [("soon", 5), ("late", 10), ("never", 5)]
    only_w2 = [lot("x", 5, wh="W2"), lot("y", 5, TODAY, wh="W1")]
    assert [p.lot_id for p in pick_lots(only_w2, "tent", 5, TODAY, warehouse_id="W2")] == ["x"]


def test_insufficient_stock_says_how_much_is_short() -> None:
    with pytest.raises(InsufficientStock) as info:
        pick_lots([lot("a", 7), lot("b", 5, TODAY - timedelta(days=2))], "tent", 10, TODAY)
    assert info.value.short == 3
    assert info.value.available == 7
    assert "short 3" in str(info.value)
    with pytest.raises(StockError, match="positive"):
        pick_lots([], "tent", 0, TODAY)


lot_strategy = st.builds(
    lambda i, qty, res, days: StockLot(
        f"L{i}", "W1", "tent", qty, min(res, qty), None if days is None else TODAY + timedelta(days=days)
    ),
    st.integers(0, 10_000),
    st.integers(0, 500),
    st.integers(0, 500),
    st.one_of(st.none(), st.integers(-30, 400)),
)


@settings(max_examples=300)
@given(lots=st.lists(lot_strategy, max_size=12, unique_by=lambda x: x.id), qty=st.integers(1, 3000))
def test_picking_properties(lots: list[StockLot], qty: int) -> None:
    usable = [x for x in lots if not x.expired(TODAY) and x.available > 0]
    total = sum(x.available for x in usable)
    by_id = {x.id: x for x in lots}
    if total < qty:
        with pytest.raises(InsufficientStock) as info:
            pick_lots(lots, "tent", qty, TODAY)
        assert info.value.short == qty - total
        return
    picks = pick_lots(lots, "tent", qty, TODAY)
    assert sum(p.quantity for p in picks) == qty
    assert len({p.lot_id for p in picks}) == len(picks)
    for p in picks:
        chosen = by_id[p.lot_id]
        assert 0 < p.quantity <= chosen.available
        assert not chosen.expired(TODAY)
    # earliest expiry first: every picked lot expires no later than every unpicked usable lot,
    # and all but the last pick are taken whole
    far = date.max
    picked = {p.lot_id for p in picks}
    last_picked = max((by_id[i].expires_on or far) for i in picked)
    for x in usable:
        if x.id not in picked:
            assert (x.expires_on or far) >= last_picked
    for p in picks[:-1]:
        assert p.quantity == by_id[p.lot_id].available


# --- movements ----------------------------------------------------------------------


def test_reserve_issue_return_consume_cycle() -> None:
    lt = lot("a", 100, TODAY + timedelta(days=10))
    alloc = new_allocation("INC-1", lt)
    lt, alloc = reserve(lt, alloc, 30, TODAY)
    assert (lt.quantity, lt.reserved, lt.available) == (100, 30, 70)
    lt, alloc = release(lt, alloc, 5)
    assert (lt.reserved, alloc.reserved) == (25, 25)
    lt, alloc = issue(lt, alloc, 20)
    assert (lt.quantity, lt.reserved, alloc.reserved, alloc.issued) == (80, 5, 5, 20)
    alloc = consume(alloc, 12)
    lt, alloc = return_stock(lt, alloc, 8)
    assert (lt.quantity, alloc.outstanding, alloc.returned, alloc.consumed) == (88, 0, 8, 12)


def test_movements_refuse_impossible_quantities() -> None:
    lt = lot("a", 10)
    alloc = new_allocation("INC-1", lt)
    with pytest.raises(InsufficientStock):
        reserve(lt, alloc, 11, TODAY)
    with pytest.raises(StockError, match="positive"):
        reserve(lt, alloc, 0, TODAY)
    lt, alloc = reserve(lt, alloc, 4, TODAY)
    with pytest.raises(StockError, match=r"only 4 .* reserved"):
        issue(lt, alloc, 5)
    with pytest.raises(StockError, match="cannot release 5"):
        release(lt, alloc, 5)
    lt, alloc = issue(lt, alloc, 4)
    with pytest.raises(StockError, match=r"only 4 .* is out"):
        return_stock(lt, alloc, 5)
    with pytest.raises(StockError, match=r"only 4 .* is out"):
        consume(alloc, 5)
    with pytest.raises(StockError, match="expired"):
        reserve(lot("b", 10, TODAY - timedelta(days=1)), Allocation("INC-1", "b"), 1, TODAY)
    with pytest.raises(StockError, match="allocation is for lot"):
        reserve(lot("c", 10), Allocation("INC-1", "b"), 1, TODAY)


def test_two_incidents_cannot_hold_the_same_stock() -> None:
    lt = lot("a", 10)
    a1, a2 = new_allocation("INC-1", lt), new_allocation("INC-2", lt)
    lt, a1 = reserve(lt, a1, 8, TODAY)
    with pytest.raises(InsufficientStock):
        reserve(lt, a2, 3, TODAY)
    lt, a2 = reserve(lt, a2, 2, TODAY)
    assert lt.available == 0


@settings(max_examples=300)
@given(
    start=st.integers(0, 200),
    ops=st.lists(
        st.tuples(st.sampled_from(["reserve", "release", "issue", "return", "consume"]), st.integers(-3, 80))
    ),
)
def test_movements_keep_invariants(start: int, ops: list[tuple[str, int]]) -> None:
    """Whatever sequence is attempted: quantity ≥ reserved ≥ 0, allocation balances hold,
    and stock is conserved (on hand + outstanding + consumed = start)."""
    lt = lot("a", start)
    alloc = new_allocation("INC-1", lt)
    for op, q in ops:
        try:
            if op == "reserve":
                lt, alloc = reserve(lt, alloc, q, TODAY)
            elif op == "release":
                lt, alloc = release(lt, alloc, q)
            elif op == "issue":
                lt, alloc = issue(lt, alloc, q)
            elif op == "return":
                lt, alloc = return_stock(lt, alloc, q)
            else:
                alloc = consume(alloc, q)
        except StockError:
            pass
        assert lt.quantity >= lt.reserved >= 0
        assert lt.reserved == alloc.reserved
        assert alloc.outstanding >= 0
        assert lt.quantity + alloc.outstanding + alloc.consumed == start


# --- alerts -------------------------------------------------------------------------


def _items() -> list[Item]:
    return [
        Item(
            code="tent",
            name_zh="帐篷",
            name_en="Tent",
            category=ItemCategory.LIVING,
            unit="piece",
            unit_zh="顶",
            min_stock=100,
        ),
        Item(
            code="blanket",
            name_zh="棉被",
            name_en="Blanket",
            category=ItemCategory.LIVING,
            unit="piece",
            unit_zh="床",
        ),
    ]


def test_stock_alerts() -> None:
    lots = [
        lot("t1", 60, TODAY + timedelta(days=10), reserved=20),
        lot("t2", 30, TODAY - timedelta(days=1)),
        lot("t3", 50, TODAY + timedelta(days=90), wh="W2"),
        lot("b1", 10, TODAY + timedelta(days=30), item="blanket"),
        lot("b2", 0, TODAY + timedelta(days=5), item="blanket"),  # empty lots never alert
    ]
    alerts = stock_alerts(lots, _items(), TODAY, warehouse_thresholds={("W2", "tent"): 80})
    low = [a for a in alerts if isinstance(a, LowStock)]
    # tent city-wide: 40 (t1) + 50 (t3) usable, the expired t2 does not count
    assert low == [LowStock("tent", 90, 100), LowStock("tent", 50, 80, "W2")]
    assert [a.lot_id for a in alerts if isinstance(a, Expired)] == ["t2"]
    soon = [a for a in alerts if isinstance(a, ExpiringSoon)]
    assert [(a.lot_id, a.days_left) for a in soon] == [("t1", 10), ("b1", 30)]
    assert [
        a.lot_id
        for a in stock_alerts(lots, _items(), TODAY, expiring_within_days=7)
        if isinstance(a, ExpiringSoon)
    ] == []
    # explicit thresholds override the catalogue's min_stock
    assert not [
        a for a in stock_alerts(lots, _items(), TODAY, thresholds={"tent": 10}) if isinstance(a, LowStock)
    ]
    assert "expired on 2025-06-30" in alerts[2].describe()


def test_available_by_warehouse_and_production_capacity() -> None:
    lots = [lot("a", 10, wh="W1"), lot("b", 5, wh="W2", reserved=5), lot("c", 7, wh="W1", expires=TODAY)]
    assert available_by_warehouse(lots, "tent", TODAY) == {"W1": 17}
    cap = ProductionCapacity("F1", "tent", per_day=480, lead_time_s=3600)
    assert cap.seconds_to_produce(240) == 3600 + 43_200
    assert ProductionCapacity("F1", "tent", per_day=0).seconds_to_produce(1) == float("inf")
