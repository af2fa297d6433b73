"""应急物资储备 — the reserve: warehouses, items, stock lots, picking and alerts.

Three kinds of reserve (the field's own split):

* ``government_stock`` 政府实物储备 — physical stock in government warehouses, ready now.
* ``commercial_agreement`` 企业协议储备 — stock held by contracted companies; physically
  there, but calling it up takes the company some time (``Warehouse.lead_time_s``).
* ``production_capacity`` 产能储备 — a factory's agreed capacity, not stock on hand. It is
  modelled as :class:`ProductionCapacity` (units per day after a lead time), never as
  lots, so it can't be reserved or picked; the recommender ranks it as later availability.

Quantities are whole numbers in the item's unit (litres, kilograms, pieces …), so there
is no rounding anywhere. A lot is usable up to and including its ``expires_on`` day and
expired from the next day on; expired lots are never picked or reserved.

Stock movements are pure state transitions on a lot and the incident's allocation of
that lot (:class:`Allocation`). The edge applies the same change in PostgreSQL
atomically (a conditional ``UPDATE … WHERE quantity - reserved >= :q`` plus CHECK
constraints), which is what stops two operators reserving the same stock twice; the
functions here decide what to pick and refuse impossible moves with a clear reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class WarehouseKind(StrEnum):
    GOVERNMENT_STOCK = "government_stock"  # 政府实物储备
    COMMERCIAL_AGREEMENT = "commercial_agreement"  # 企业协议储备
    PRODUCTION_CAPACITY = "production_capacity"  # 产能储备


class ItemCategory(StrEnum):
    """Broad categories, after the 应急保障重点物资分类目录 groupings."""

    PROTECTION = "protection"  # 防护用品
    LIFE_RESCUE = "life_rescue"  # 生命救助
    RESCUE_EQUIPMENT = "rescue_equipment"  # 抢险救援装备
    MEDICAL = "medical"  # 医疗卫生
    LIVING = "living"  # 生活保障
    POWER_LIGHTING = "power_lighting"  # 动力照明
    DECONTAMINATION = "decontamination"  # 污染清理 / 洗消
    COMMUNICATIONS = "communications"  # 通信保障
    TRAFFIC = "traffic"  # 交通管制


class Item(BaseModel):
    """One kind of supply. The catalogue lives in ``command/plans/_items.yaml``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    name_zh: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    name_en: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    category: ItemCategory
    unit: Annotated[str, StringConstraints(min_length=1, max_length=16)]  # piece, bag, set, L, kg, bottle…
    unit_zh: Annotated[str, StringConstraints(min_length=1, max_length=8)]
    #: Keep at least this much on hand city-wide (drives low-stock alerts); 0 = no alert.
    min_stock: Annotated[int, Field(ge=0)] = 0


@dataclass(frozen=True, slots=True)
class Warehouse:
    id: str
    name: str
    kind: WarehouseKind
    lat: float
    lon: float
    district_adcode: int | None = None
    #: Time from the call-up until goods can leave (loading, a company's own preparation).
    lead_time_s: int = 0


@dataclass(frozen=True, slots=True)
class StockLot:
    """Stock of one item in one warehouse, from one delivery (one expiry date)."""

    id: str
    warehouse_id: str
    item_code: str
    quantity: int  # on hand
    reserved: int = 0  # held for incidents, not yet issued
    expires_on: date | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.reserved <= self.quantity:
            raise ValueError(
                f"lot {self.id}: need 0 ≤ reserved ({self.reserved}) ≤ quantity ({self.quantity})"
            )

    @property
    def available(self) -> int:
        return self.quantity - self.reserved

    def expired(self, today: date) -> bool:
        return self.expires_on is not None and self.expires_on < today


@dataclass(frozen=True, slots=True)
class ProductionCapacity:
    """产能储备: a producer (a warehouse of kind production_capacity) can make
    ``per_day`` units of an item per day, starting ``lead_time_s`` after the call-up."""

    warehouse_id: str
    item_code: str
    per_day: int
    lead_time_s: int = 0

    def seconds_to_produce(self, quantity: int) -> float:
        if self.per_day <= 0:
            return float("inf")
        return self.lead_time_s + quantity * 86_400 / self.per_day


def local_day(at: datetime, zone: tzinfo) -> date:
    """The day ``at`` falls on in the command centre's calendar: a lot is usable through
    its expiry day there, whatever UTC says."""
    return at.astimezone(zone).date()


# --- picking ------------------------------------------------------------------------


class StockError(ValueError):
    """A stock movement that cannot happen; the message says why."""


class InsufficientStock(StockError):
    def __init__(self, item_code: str, requested: int, available: int) -> None:
        self.item_code = item_code
        self.requested = requested
        self.available = available
        self.short = requested - available
        super().__init__(
            f"not enough {item_code}: requested {requested}, available {available}, short {self.short}"
        )


@dataclass(frozen=True, slots=True)
class Pick:
    lot_id: str
    quantity: int


def _expiry_key(lot: StockLot) -> tuple[int, date, str]:
    # Earliest expiry first; lots without an expiry last; lot id breaks ties (stable).
    return (1, date.max, lot.id) if lot.expires_on is None else (0, lot.expires_on, lot.id)


def pick_lots(
    lots: Iterable[StockLot],
    item_code: str,
    quantity: int,
    today: date,
    warehouse_id: str | None = None,
) -> list[Pick]:
    """Which lots to reserve ``quantity`` of an item from, earliest expiry first (FEFO).

    Only lots of that item (and warehouse, when given) with stock available and not
    expired count. Raises :class:`InsufficientStock` (with how much is short) when they
    don't add up to ``quantity``; nothing is picked partially.
    """
    if quantity <= 0:
        raise StockError(f"quantity must be positive, not {quantity}")
    usable = sorted(
        (
            lot
            for lot in lots
            if lot.item_code == item_code
            and (warehouse_id is None or lot.warehouse_id == warehouse_id)
            and lot.available > 0
            and not lot.expired(today)
        ),
        key=_expiry_key,
    )
    picks: list[Pick] = []
    left = quantity
    for lot in usable:
        take = min(left, lot.available)
        picks.append(Pick(lot.id, take))
        left -= take
        if left == 0:
            return picks
    raise InsufficientStock(item_code, quantity, quantity - left)


def available_by_warehouse(lots: Iterable[StockLot], item_code: str, today: date) -> dict[str, int]:
    """Usable (unexpired, unreserved) quantity of an item per warehouse."""
    out: dict[str, int] = {}
    for lot in lots:
        if lot.item_code == item_code and lot.available > 0 and not lot.expired(today):
            out[lot.warehouse_id] = out.get(lot.warehouse_id, 0) + lot.available
    return out


# --- movements --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one incident holds of one lot: reserved (still in the warehouse), issued
    (left the warehouse), and of the issued, how much came back or was used up."""

    incident_id: str
    lot_id: str
    reserved: int = 0
    issued: int = 0
    returned: int = 0
    consumed: int = 0

    @property
    def outstanding(self) -> int:
        """Issued and neither returned nor consumed: out in the field."""
        return self.issued - self.returned - self.consumed


def _check_qty(quantity: int) -> None:
    if quantity <= 0:
        raise StockError(f"quantity must be positive, not {quantity}")


def _check_pair(lot: StockLot, allocation: Allocation) -> None:
    if allocation.lot_id != lot.id:
        raise StockError(f"allocation is for lot {allocation.lot_id}, not {lot.id}")


def new_allocation(incident_id: str, lot: StockLot) -> Allocation:
    return Allocation(incident_id, lot.id)


def reserve(lot: StockLot, allocation: Allocation, quantity: int, today: date) -> tuple[StockLot, Allocation]:
    """Hold ``quantity`` of the lot for the incident."""
    _check_qty(quantity)
    _check_pair(lot, allocation)
    if lot.expired(today):
        raise StockError(f"lot {lot.id} expired on {lot.expires_on}")
    if quantity > lot.available:
        raise InsufficientStock(lot.item_code, quantity, lot.available)
    return (
        replace(lot, reserved=lot.reserved + quantity),
        replace(allocation, reserved=allocation.reserved + quantity),
    )


def release(lot: StockLot, allocation: Allocation, quantity: int) -> tuple[StockLot, Allocation]:
    """Give back a reservation that will not be issued."""
    _check_qty(quantity)
    _check_pair(lot, allocation)
    if quantity > allocation.reserved:
        raise StockError(f"cannot release {quantity}: incident holds {allocation.reserved} of lot {lot.id}")
    return (
        replace(lot, reserved=lot.reserved - quantity),
        replace(allocation, reserved=allocation.reserved - quantity),
    )


def issue(lot: StockLot, allocation: Allocation, quantity: int) -> tuple[StockLot, Allocation]:
    """Goods leave the warehouse for the incident; only what was reserved can be issued."""
    _check_qty(quantity)
    _check_pair(lot, allocation)
    if quantity > allocation.reserved:
        raise StockError(
            f"cannot issue {quantity}: only {allocation.reserved} of lot {lot.id} "
            "is reserved for the incident"
        )
    return (
        replace(lot, quantity=lot.quantity - quantity, reserved=lot.reserved - quantity),
        replace(allocation, reserved=allocation.reserved - quantity, issued=allocation.issued + quantity),
    )


def return_stock(lot: StockLot, allocation: Allocation, quantity: int) -> tuple[StockLot, Allocation]:
    """Unused goods come back into the lot they were issued from."""
    _check_qty(quantity)
    _check_pair(lot, allocation)
    if quantity > allocation.outstanding:
        raise StockError(f"cannot return {quantity}: only {allocation.outstanding} of lot {lot.id} is out")
    return (
        replace(lot, quantity=lot.quantity + quantity),
        replace(allocation, returned=allocation.returned + quantity),
    )


def consume(allocation: Allocation, quantity: int) -> Allocation:
    """Issued goods were used up at the scene (the lot is unchanged: they already left)."""
    _check_qty(quantity)
    if quantity > allocation.outstanding:
        raise StockError(
            f"cannot consume {quantity}: only {allocation.outstanding} of lot {allocation.lot_id} is out"
        )
    return replace(allocation, consumed=allocation.consumed + quantity)


# --- alerts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LowStock:
    item_code: str
    available: int
    threshold: int
    warehouse_id: str | None = None  # None: city-wide

    def describe(self) -> str:
        where = f"in {self.warehouse_id}" if self.warehouse_id else "city-wide"
        return f"low stock of {self.item_code} {where}: {self.available} available, minimum {self.threshold}"


@dataclass(frozen=True, slots=True)
class ExpiringSoon:
    lot_id: str
    warehouse_id: str
    item_code: str
    quantity: int
    expires_on: date
    days_left: int

    def describe(self) -> str:
        return (
            f"lot {self.lot_id} ({self.quantity} {self.item_code} in {self.warehouse_id}) "
            f"expires on {self.expires_on} ({self.days_left} days)"
        )


@dataclass(frozen=True, slots=True)
class Expired:
    lot_id: str
    warehouse_id: str
    item_code: str
    quantity: int
    expires_on: date

    def describe(self) -> str:
        return (
            f"lot {self.lot_id} ({self.quantity} {self.item_code} in {self.warehouse_id}) "
            f"expired on {self.expires_on}: dispose or rotate"
        )


StockAlert = LowStock | ExpiringSoon | Expired


def stock_alerts(
    lots: Iterable[StockLot],
    items: Mapping[str, Item] | Iterable[Item],
    today: date,
    thresholds: Mapping[str, int] | None = None,
    warehouse_thresholds: Mapping[tuple[str, str], int] | None = None,
    expiring_within_days: int = 30,
) -> list[StockAlert]:
    """Low-stock, expiring-soon and expired alerts.

    * Low stock city-wide: usable (unexpired, unreserved) quantity of an item below its
      threshold — ``thresholds[code]`` when given, else the item's ``min_stock``.
    * Low stock per warehouse: ``warehouse_thresholds[(warehouse_id, code)]``.
    * Expiring soon: lots with stock on hand expiring within ``expiring_within_days``
      days (today included). Expired: lots with stock on hand past their expiry.

    Order: low stock (by item, warehouse), then expired, then expiring soon (by date).
    """
    catalogue = dict(items) if isinstance(items, Mapping) else {i.code: i for i in items}
    limits: dict[str, int] = {code: i.min_stock for code, i in catalogue.items() if i.min_stock > 0}
    limits.update(thresholds or {})
    per_wh = dict(warehouse_thresholds or {})
    horizon = today + timedelta(days=expiring_within_days)
    city: dict[str, int] = {}
    in_wh: dict[tuple[str, str], int] = {}
    expired: list[Expired] = []
    soon: list[ExpiringSoon] = []
    for lot in lots:
        if lot.expires_on is not None and lot.quantity > 0:
            if lot.expires_on < today:
                expired.append(Expired(lot.id, lot.warehouse_id, lot.item_code, lot.quantity, lot.expires_on))
            elif lot.expires_on <= horizon:
                soon.append(
                    ExpiringSoon(
                        lot.id,
                        lot.warehouse_id,
                        lot.item_code,
                        lot.quantity,
                        lot.expires_on,
                        (lot.expires_on - today).days,
                    )
                )
        if not lot.expired(today):
            city[lot.item_code] = city.get(lot.item_code, 0) + lot.available
            key = (lot.warehouse_id, lot.item_code)
            in_wh[key] = in_wh.get(key, 0) + lot.available
    alerts: list[StockAlert] = []
    for code in sorted(limits):
        have = city.get(code, 0)
        if have < limits[code]:
            alerts.append(LowStock(code, have, limits[code]))
    for wh, code in sorted(per_wh, key=lambda k: (k[1], k[0])):
        have = in_wh.get((wh, code), 0)
        if have < per_wh[(wh, code)]:
            alerts.append(LowStock(code, have, per_wh[(wh, code)], wh))
    expired.sort(key=lambda a: (a.expires_on, a.lot_id))
    soon.sort(key=lambda a: (a.expires_on, a.lot_id))
    alerts.extend(expired)
    alerts.extend(soon)
    return alerts
