"""应急物资储备 at the edge: reading the reserve, and holding stock for incidents.

The pure rules live in :mod:`command.domain.reserve` (earliest-expiry-first picking,
the movement transitions, the alerts). This module applies them to PostgreSQL so that
**the same unit can never be reserved twice**, whatever the number of operators and
command processes:

* a reservation reads the usable lots afresh, picks them (``pick_lots``), and applies
  each pick with one conditional statement::

      UPDATE stock_lot SET reserved = reserved + q
       WHERE id = :lot AND quantity - reserved >= q
         AND (expires_on IS NULL OR expires_on >= :today)

  all picks, the allocation upserts, the ``stock_movement`` rows and the audit record in
  ONE transaction. Under READ COMMITTED a concurrent UPDATE of the same row waits and
  then re-checks its WHERE on the committed row, so an update that would overdraw the
  lot touches 0 rows: the transaction is rolled back and the pick re-read and retried a
  few times, then the caller gets 409 with the shortfall. ``CHECK (reserved <=
  quantity)`` on the row is the last guard (a ``CheckViolation`` is also a 409).
* issue, return, consume and release lock the lot and the incident's allocation, check
  the move with the pure transition (its reason becomes the 409), and apply it with
  conditional UPDATEs.

**Exercises never touch live stock.** For an exercise incident (演练) the same picks
and moves are recorded in ``stock_allocation`` and ``stock_movement`` but ``stock_lot``
is never changed: the exercise's holds are virtual, counted against what live
operations leave free (per exercise, serialised by an advisory lock), so a drill can
practise the whole reserve workflow without taking a single unit from a live incident.

Every change is published as ``Change("stock", item_code, ...)`` after commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from command import audit
from command.deps import forbid
from command.domain.exercises import apply_stock_cuts
from command.domain.incidents import IllegalTransition, InvalidCommand
from command.domain.policy import Action, allowed, allowed_anywhere
from command.domain.reserve import (
    Allocation,
    Expired,
    ExpiringSoon,
    InsufficientStock,
    LowStock,
    StockError,
    StockLot,
    consume,
    issue,
    local_day,
    pick_lots,
    release,
    reserve,
    return_stock,
    stock_alerts,
)
from command.security import Principal
from command.services import exercise_store
from command.services.incident_store import NotFound
from command.services.live import Change, publish
from command.state import CommandState
from wuwang.scope import Scope
from wuwang.settings import Settings

log = logging.getLogger(__name__)

Movement = Literal["reserve", "release", "issue", "return", "consume"]

#: How many times a reservation that lost a race is re-read and re-picked.
RESERVE_ATTEMPTS = 5


class StockConflict(Exception):
    """HTTP 409: the stock does not allow the move (now). ``detail`` is the body."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = {"reason": reason, **detail}


class _LostRace(Exception):
    def __init__(self, lot_id: str) -> None:
        super().__init__(lot_id)
        self.lot_id = lot_id


def today_for(settings: Settings) -> date:
    """Today in the command centre's calendar (a lot is usable through its expiry day)."""
    return local_day(datetime.now(UTC), ZoneInfo(settings.command.timezone))


# --- incidents as the reserve sees them ------------------------------------------------


@dataclass(frozen=True)
class IncidentScope:
    id: str
    exercise_id: str | None
    is_open: bool
    state: str
    body: dict[str, Any]

    @property
    def scope(self) -> Scope:
        return Scope.of(self.exercise_id)


async def incident_scope(state: CommandState, incident_id: str) -> IncidentScope:
    async with state.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, exercise_id, is_open, state, body FROM incident WHERE id = %s", (incident_id,)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return IncidentScope(row[0], row[1], row[2], row[3], row[4])


async def authorise_act(state: CommandState, who: Principal, inc: IncidentScope, action: str) -> None:
    """Who may move stock for this incident, as the policy says: operators, commanders
    and admins on any incident; planners only on exercise incidents; field users never
    (the route's gate already refused them)."""
    if allowed(who.role, action, drill=inc.scope.is_drill):
        return
    reason = (
        f"planners may act only on exercise incidents; {inc.id} is a live incident"
        if allowed_anywhere(who.role, action)
        else f"role {who.role} may not {action}"
    )
    raise await forbid(state, who, action, reason, object_type="incident", object_id=inc.id)


# --- reading the reserve ----------------------------------------------------------------


async def warehouses(state: CommandState, kind: str | None = None) -> list[dict[str, Any]]:
    today = today_for(state.settings)
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT w.id, w.name, w.kind, w.lat, w.lon, w.district_adcode, d.name AS district_name,
                   w.lead_time_s,
                   count(l.id) AS lots,
                   count(DISTINCT l.item_code) AS items,
                   count(l.id) FILTER (WHERE l.expires_on < %(today)s AND l.quantity > 0) AS expired_lots
              FROM warehouse w
              LEFT JOIN district d ON d.adcode = w.district_adcode
              LEFT JOIN stock_lot l ON l.warehouse_id = w.id
             WHERE %(kind)s::text IS NULL OR w.kind = %(kind)s
             GROUP BY w.id, d.name
             ORDER BY w.kind, w.id
            """,
            {"today": today, "kind": kind},
        )
        rows = await cur.fetchall()
        await cur.execute(
            """
            SELECT l.warehouse_id, l.item_code, i.unit,
                   sum(l.quantity) AS quantity, sum(l.reserved) AS reserved,
                   coalesce(sum(l.quantity - l.reserved)
                            FILTER (WHERE l.expires_on IS NULL OR l.expires_on >= %(today)s), 0) AS usable
              FROM stock_lot l JOIN reserve_item i ON i.code = l.item_code
             GROUP BY l.warehouse_id, l.item_code, i.unit
             ORDER BY l.warehouse_id, l.item_code
            """,
            {"today": today},
        )
        stock = await cur.fetchall()
        await cur.execute(
            "SELECT c.warehouse_id, c.item_code, i.unit, c.per_day, c.lead_time_s FROM production_capacity c"
            " JOIN reserve_item i ON i.code = c.item_code ORDER BY c.warehouse_id, c.item_code"
        )
        capacity = await cur.fetchall()
    by_wh: dict[str, list[dict[str, Any]]] = {}
    for s in stock:
        by_wh.setdefault(s["warehouse_id"], []).append(
            {
                "item_code": s["item_code"],
                "unit": s["unit"],
                "quantity": int(s["quantity"]),
                "reserved": int(s["reserved"]),
                "usable": int(s["usable"]),
            }
        )
    cap: dict[str, list[dict[str, Any]]] = {}
    for c in capacity:
        cap.setdefault(c["warehouse_id"], []).append(
            {
                "item_code": c["item_code"],
                "unit": c["unit"],
                "per_day": c["per_day"],
                "lead_time_s": c["lead_time_s"],
            }
        )
    out = []
    for r in rows:
        out.append(
            {
                "id": r["id"],
                "name": r["name"],
                "kind": r["kind"],
                "lat": r["lat"],
                "lon": r["lon"],
                "district_adcode": r["district_adcode"],
                "district_name": r["district_name"],
                "lead_time_s": r["lead_time_s"],
                "totals": {"lots": r["lots"], "items": r["items"], "expired_lots": r["expired_lots"]},
                "stock": by_wh.get(r["id"], []),
                "capacity": cap.get(r["id"], []),
            }
        )
    return out


async def items(state: CommandState) -> list[dict[str, Any]]:
    today = today_for(state.settings)
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT i.code, i.name_zh, i.name_en, i.category, i.unit, i.unit_zh, i.min_stock,
                   coalesce(sum(l.quantity), 0) AS quantity,
                   coalesce(sum(l.reserved), 0) AS reserved,
                   coalesce(sum(l.quantity - l.reserved)
                            FILTER (WHERE l.expires_on IS NULL OR l.expires_on >= %(today)s), 0) AS usable,
                   coalesce(sum(l.quantity) FILTER (WHERE l.expires_on < %(today)s), 0) AS expired,
                   (SELECT coalesce(sum(c.per_day), 0) FROM production_capacity c
                     WHERE c.item_code = i.code) AS capacity_per_day
              FROM reserve_item i LEFT JOIN stock_lot l ON l.item_code = i.code
             GROUP BY i.code
             ORDER BY i.category, i.code
            """,
            {"today": today},
        )
        rows = await cur.fetchall()
    return [
        {
            **r,
            "quantity": int(r["quantity"]),
            "reserved": int(r["reserved"]),
            "usable": int(r["usable"]),
            "expired": int(r["expired"]),
            "capacity_per_day": int(r["capacity_per_day"]),
            "low": r["min_stock"] > 0 and int(r["usable"]) < r["min_stock"],
        }
        for r in rows
    ]


async def lots(
    state: CommandState, *, item_code: str | None, warehouse_id: str | None, include_empty: bool, limit: int
) -> list[dict[str, Any]]:
    today = today_for(state.settings)
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT l.id, l.warehouse_id, w.name AS warehouse_name, w.kind AS warehouse_kind, l.item_code,
                   i.unit, l.quantity, l.reserved, l.expires_on
              FROM stock_lot l JOIN warehouse w ON w.id = l.warehouse_id
              JOIN reserve_item i ON i.code = l.item_code
             WHERE (%(item)s::text IS NULL OR l.item_code = %(item)s)
               AND (%(wh)s::text IS NULL OR l.warehouse_id = %(wh)s)
               AND (%(empty)s OR l.quantity > 0)
             ORDER BY l.item_code, l.expires_on NULLS LAST, l.id
             LIMIT %(limit)s
            """,
            {"item": item_code, "wh": warehouse_id, "empty": include_empty, "limit": limit},
        )
        rows = await cur.fetchall()
    out = []
    for r in rows:
        exp: date | None = r["expires_on"]
        out.append(
            {
                **r,
                "expires_on": exp.isoformat() if exp else None,
                "available": r["quantity"] - r["reserved"],
                "expired": exp is not None and exp < today,
                "days_left": (exp - today).days if exp else None,
            }
        )
    return out


async def _all_lots(conn: AsyncConnection[Any]) -> list[StockLot]:
    cur = await conn.execute(
        "SELECT id, warehouse_id, item_code, quantity, reserved, expires_on FROM stock_lot WHERE quantity > 0"
    )
    return [StockLot(*row) for row in await cur.fetchall()]


async def alerts(state: CommandState, within_days: int | None = None) -> dict[str, Any]:
    """Low stock city-wide (against each item's ``min_stock``), lots expiring within the
    window, and lots already expired — from :func:`stock_alerts`."""
    today = today_for(state.settings)
    days = state.settings.command.expiring_days if within_days is None else within_days
    async with state.pool.connection() as conn:
        all_lots = await _all_lots(conn)
        cur = await conn.execute("SELECT code, name_zh, name_en, unit, unit_zh, min_stock FROM reserve_item")
        catalogue = {row[0]: row[1:] for row in await cur.fetchall()}
    found = stock_alerts(
        all_lots,
        [],
        today,
        thresholds={code: row[-1] for code, row in catalogue.items() if row[-1] > 0},
        expiring_within_days=days,
    )

    def named(code: str) -> dict[str, Any]:
        # both languages: the console says the item in its own (dashboard/i18n/data.py)
        name_zh, name_en, unit, unit_zh, _ = catalogue.get(code, (code, code, "", "", 0))
        return {"item_code": code, "name_zh": name_zh, "name_en": name_en, "unit": unit, "unit_zh": unit_zh}

    low: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    expiring: list[dict[str, Any]] = []
    for a in found:
        if isinstance(a, LowStock):
            low.append(
                {
                    **named(a.item_code),
                    "available": a.available,
                    "threshold": a.threshold,
                    "short": a.threshold - a.available,
                    "warehouse_id": a.warehouse_id,
                    "message": a.describe(),
                }
            )
        elif isinstance(a, Expired):
            expired.append(
                {
                    **named(a.item_code),
                    "lot_id": a.lot_id,
                    "warehouse_id": a.warehouse_id,
                    "quantity": a.quantity,
                    "expires_on": a.expires_on.isoformat(),
                    "message": a.describe(),
                }
            )
        elif isinstance(a, ExpiringSoon):
            expiring.append(
                {
                    **named(a.item_code),
                    "lot_id": a.lot_id,
                    "warehouse_id": a.warehouse_id,
                    "quantity": a.quantity,
                    "expires_on": a.expires_on.isoformat(),
                    "days_left": a.days_left,
                    "message": a.describe(),
                }
            )
    return {
        "today": today.isoformat(),
        "expiring_within_days": days,
        "counts": {"low_stock": len(low), "expiring": len(expiring), "expired": len(expired)},
        "low_stock": low,
        "expired": expired,
        "expiring": expiring,
    }


async def item_totals(conn: AsyncConnection[Any], item_code: str, today: date) -> dict[str, Any]:
    cur = await conn.execute(
        "SELECT coalesce(sum(quantity), 0), coalesce(sum(reserved), 0),"
        " coalesce(sum(quantity - reserved) FILTER (WHERE expires_on IS NULL OR expires_on >= %s), 0)"
        " FROM stock_lot WHERE item_code = %s",
        (today, item_code),
    )
    row = await cur.fetchone()
    assert row is not None
    return {"item_code": item_code, "quantity": int(row[0]), "reserved": int(row[1]), "usable": int(row[2])}


async def snapshot(state: CommandState, who: Principal) -> list[dict[str, Any]]:
    """City-wide totals per item for a (re)connecting console (field users get none)."""
    if not allowed_anywhere(who.role, Action.RESERVE_READ):
        return []
    return [
        {k: r[k] for k in ("code", "name_zh", "unit", "quantity", "reserved", "usable", "min_stock", "low")}
        for r in await items(state)
    ]


# --- an incident's holdings --------------------------------------------------------------


async def incident_allocations(state: CommandState, incident_id: str) -> dict[str, Any]:
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT a.lot_id, l.item_code, i.name_zh, i.unit, l.warehouse_id, w.name AS warehouse_name,
                   w.kind AS warehouse_kind, l.expires_on, a.reserved, a.issued, a.returned, a.consumed,
                   a.updated_at
              FROM stock_allocation a JOIN stock_lot l ON l.id = a.lot_id
              JOIN reserve_item i ON i.code = l.item_code JOIN warehouse w ON w.id = l.warehouse_id
             WHERE a.incident_id = %s
             ORDER BY l.item_code, l.expires_on NULLS LAST, a.lot_id
            """,
            (incident_id,),
        )
        allocations = await cur.fetchall()
        await cur.execute(
            "SELECT m.at, m.actor, m.lot_id, l.item_code, m.movement, m.quantity FROM stock_movement m"
            " JOIN stock_lot l ON l.id = m.lot_id WHERE m.incident_id = %s ORDER BY m.id",
            (incident_id,),
        )
        movements = await cur.fetchall()
    out_allocs = []
    for a in allocations:
        exp: date | None = a["expires_on"]
        out_allocs.append(
            {
                **a,
                "expires_on": exp.isoformat() if exp else None,
                "updated_at": a["updated_at"].isoformat(),
                "outstanding": a["issued"] - a["returned"] - a["consumed"],
            }
        )
    totals: dict[str, dict[str, int]] = {}
    for a in out_allocs:
        t = totals.setdefault(
            a["item_code"], {"reserved": 0, "issued": 0, "returned": 0, "consumed": 0, "outstanding": 0}
        )
        for k in t:
            t[k] += a[k]
    return {
        "incident_id": incident_id,
        "allocations": out_allocs,
        "totals": totals,
        "movements": [{**m, "at": m["at"].isoformat()} for m in movements],
    }


# --- reserving ---------------------------------------------------------------------------


# A lot as one scope sees it: (on hand, held by the scope). Live operations hold stock
# on the lot itself (stock_lot.reserved); a drill sees what live operations leave free,
# and holds only what its own incidents' allocations say (drills never touch the lot).
_USABLE = """
    SELECT l.id, l.warehouse_id, l.item_code,
           CASE WHEN %(ex)s::text IS NULL THEN l.quantity ELSE l.quantity - l.reserved END AS on_hand,
           CASE WHEN %(ex)s::text IS NULL THEN l.reserved
                ELSE coalesce((SELECT sum(a.reserved + a.issued - a.returned) FROM stock_allocation a
                                 JOIN incident i ON i.id = a.incident_id
                                WHERE a.lot_id = l.id AND i.exercise_id = %(ex)s), 0) END AS held,
           l.expires_on
      FROM stock_lot l
     WHERE l.item_code = %(item)s AND (%(wh)s::text IS NULL OR l.warehouse_id = %(wh)s)
       AND (l.expires_on IS NULL OR l.expires_on >= %(today)s)
"""

_UPSERT_ALLOCATION = """
    INSERT INTO stock_allocation (incident_id, lot_id, reserved) VALUES (%s, %s, %s)
    ON CONFLICT (incident_id, lot_id) DO UPDATE
       SET reserved = stock_allocation.reserved + EXCLUDED.reserved, updated_at = now()
"""


async def _movement(
    conn: AsyncConnection[Any],
    who: Principal,
    incident_id: str,
    lot_id: str,
    movement: Movement,
    quantity: int,
) -> None:
    await conn.execute(
        "INSERT INTO stock_movement (actor, incident_id, lot_id, movement, quantity)"
        " VALUES (%s, %s, %s, %s, %s)",
        (who.user_id, incident_id, lot_id, movement, quantity),
    )


async def _drill_lock(conn: AsyncConnection[Any], scope: Scope) -> None:
    """A drill's holds are rows of allocations only, checked against what it read: one
    transaction per drill at a time. Live holds are guarded by the lot's own UPDATE."""
    if scope.is_drill:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (scope.lock_key("reserve"),))


async def _check_open(conn: AsyncConnection[Any], incident_id: str, what: str) -> None:
    """Hold the incident row (shared) so it cannot close under the transaction."""
    cur = await conn.execute("SELECT is_open, state FROM incident WHERE id = %s FOR SHARE", (incident_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    if not row[0]:
        raise IllegalTransition(f"cannot {what}: incident {incident_id} is {row[1]} and takes no more stock")


async def _check_request(state: CommandState, item_code: str, warehouse_id: str | None) -> None:
    async with state.pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM reserve_item WHERE code = %s", (item_code,))
        if await cur.fetchone() is None:
            raise InvalidCommand(f"no item {item_code!r} in the reserve catalogue")
        if warehouse_id is not None:
            cur = await conn.execute("SELECT kind FROM warehouse WHERE id = %s", (warehouse_id,))
            row = await cur.fetchone()
            if row is None:
                raise InvalidCommand(f"no warehouse {warehouse_id!r}")
            if row[0] == "production_capacity":
                raise InvalidCommand(
                    f"warehouse {warehouse_id} is a production-capacity reserve: it holds no "
                    "stock to reserve; call up production instead"
                )


@dataclass(frozen=True)
class Reserved:
    incident_id: str
    item_code: str
    quantity: int
    picks: list[dict[str, Any]]
    exercise_id: str | None
    totals: dict[str, Any]
    attempts: int


async def reserve_for_incident(
    state: CommandState,
    who: Principal,
    incident_id: str,
    item_code: str,
    quantity: int,
    warehouse_id: str | None = None,
) -> Reserved:
    """Reserve ``quantity`` of an item for the incident, earliest expiry first, from one
    warehouse or any. All or nothing."""
    inc = await incident_scope(state, incident_id)
    await authorise_act(state, who, inc, "reserve.reserve")
    await _check_request(state, item_code, warehouse_id)
    today = today_for(state.settings)
    last_available = 0
    for attempt in range(1, RESERVE_ATTEMPTS + 1):
        try:
            async with state.pool.connection() as conn, conn.transaction():
                await _check_open(conn, incident_id, f"reserve {item_code}")
                scope = inc.scope
                await _drill_lock(conn, scope)
                params = {"item": item_code, "wh": warehouse_id, "today": today, "ex": scope.exercise_id}
                cur = await conn.execute(_USABLE, params)
                usable = []
                for lot_id, wh, code, on_hand, held, expires in await cur.fetchall():
                    on_hand = max(int(on_hand), 0)
                    usable.append(StockLot(lot_id, wh, code, on_hand, min(int(held), on_hand), expires))
                usable = apply_stock_cuts(usable, await exercise_store.stock_cuts(conn, scope, [item_code]))
                last_available = sum(lot.available for lot in usable)
                picks = pick_lots(usable, item_code, quantity, today, warehouse_id)
                by_id = {lot.id: lot for lot in usable}
                for pick in picks:
                    reserve(by_id[pick.lot_id], Allocation(incident_id, pick.lot_id), pick.quantity, today)
                    if scope.is_live:  # a drill's hold is its allocation row only
                        cur = await conn.execute(
                            "UPDATE stock_lot SET reserved = reserved + %(q)s WHERE id = %(lot)s"
                            " AND quantity - reserved >= %(q)s"
                            " AND (expires_on IS NULL OR expires_on >= %(today)s)",
                            {"q": pick.quantity, "lot": pick.lot_id, "today": today},
                        )
                        if cur.rowcount != 1:
                            raise _LostRace(pick.lot_id)
                    await conn.execute(_UPSERT_ALLOCATION, (incident_id, pick.lot_id, pick.quantity))
                    await _movement(conn, who, incident_id, pick.lot_id, "reserve", pick.quantity)
                picked = [
                    {
                        "lot_id": p.lot_id,
                        "quantity": p.quantity,
                        "warehouse_id": by_id[p.lot_id].warehouse_id,
                        "expires_on": e.isoformat() if (e := by_id[p.lot_id].expires_on) else None,
                    }
                    for p in picks
                ]
                await audit.record(
                    conn,
                    who,
                    "reserve.reserve",
                    object_type="incident",
                    object_id=incident_id,
                    detail={
                        "item_code": item_code,
                        "quantity": quantity,
                        "warehouse_id": warehouse_id,
                        "picks": picked,
                        "exercise_id": inc.exercise_id,
                        "attempt": attempt,
                    },
                )
                totals = await item_totals(conn, item_code, today)
        except InsufficientStock as exc:
            raise StockConflict(
                str(exc),
                item_code=item_code,
                requested=quantity,
                available=exc.available,
                short=exc.short,
                warehouse_id=warehouse_id,
            ) from None
        except StockError as exc:
            raise StockConflict(str(exc), item_code=item_code, requested=quantity) from None
        except _LostRace as lost:
            log.info(
                "reservation of %s for %s lost lot %s (attempt %d); re-picking",
                item_code,
                incident_id,
                lost.lot_id,
                attempt,
            )
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))
            continue
        except (
            psycopg.errors.CheckViolation,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.SerializationFailure,
        ) as exc:
            raise StockConflict(
                f"the stock of {item_code} changed while reserving; nothing was reserved, try again",
                item_code=item_code,
                requested=quantity,
                error=type(exc).__name__,
            ) from None
        result = Reserved(incident_id, item_code, quantity, picked, inc.exercise_id, totals, attempt)
        await publish(
            state.redis,
            Change(
                "stock",
                item_code,
                {
                    **totals,
                    "incident_id": incident_id,
                    "movement": "reserve",
                    "moved": quantity,
                    "picks": picked,
                },
                exercise_id=inc.exercise_id,
            ),
        )
        return result
    raise StockConflict(
        f"the stock of {item_code} kept changing under {RESERVE_ATTEMPTS} attempts; nothing was reserved",
        item_code=item_code,
        requested=quantity,
        available=last_available,
        short=max(quantity - last_available, 0),
        warehouse_id=warehouse_id,
    )


# --- moving held stock -----------------------------------------------------------------------

#: Conditional statements per move (live incidents); the WHERE repeats the pure check.
_LOT_SQL: dict[str, str | None] = {
    "release": "UPDATE stock_lot SET reserved = reserved - %(q)s WHERE id = %(lot)s AND reserved >= %(q)s",
    "issue": "UPDATE stock_lot SET quantity = quantity - %(q)s, reserved = reserved - %(q)s"
    " WHERE id = %(lot)s AND reserved >= %(q)s AND quantity >= %(q)s",
    "return": "UPDATE stock_lot SET quantity = quantity + %(q)s WHERE id = %(lot)s",
    "consume": None,
}
_ALLOCATION_SQL: dict[str, str] = {
    "release": "reserved = reserved - %(q)s WHERE {key} AND reserved >= %(q)s",
    "issue": "reserved = reserved - %(q)s, issued = issued + %(q)s WHERE {key} AND reserved >= %(q)s",
    "return": "returned = returned + %(q)s WHERE {key} AND issued - returned - consumed >= %(q)s",
    "consume": "consumed = consumed + %(q)s WHERE {key} AND issued - returned - consumed >= %(q)s",
}


@dataclass(frozen=True)
class Moved:
    incident_id: str
    lot_id: str
    item_code: str
    movement: str
    quantity: int
    allocation: dict[str, int]
    lot: dict[str, Any]


async def move_stock(
    state: CommandState,
    who: Principal,
    incident_id: str,
    lot_id: str,
    movement: Literal["release", "issue", "return", "consume"],
    quantity: int,
) -> Moved:
    """Release, issue, return or consume ``quantity`` of what the incident holds of a lot."""
    action = f"reserve.{movement}"
    inc = await incident_scope(state, incident_id)
    await authorise_act(state, who, inc, action)
    today = today_for(state.settings)
    try:
        async with state.pool.connection() as conn, conn.transaction():
            if movement == "issue":
                await _check_open(conn, incident_id, f"issue stock of lot {lot_id}")
            await _drill_lock(conn, inc.scope)
            cur = await conn.execute(
                "SELECT id, warehouse_id, item_code, quantity, reserved, expires_on FROM stock_lot"
                " WHERE id = %s FOR UPDATE",
                (lot_id,),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"no stock lot {lot_id}")
            lot = StockLot(*row)
            cur = await conn.execute(
                "SELECT reserved, issued, returned, consumed FROM stock_allocation"
                " WHERE incident_id = %s AND lot_id = %s FOR UPDATE",
                (incident_id, lot_id),
            )
            arow = await cur.fetchone()
            if arow is None:
                raise NotFound(f"incident {incident_id} holds nothing of lot {lot_id}")
            alloc = Allocation(incident_id, lot_id, *arow)
            if inc.scope.is_drill:
                # Virtual: the exercise's hold checked against a lot of its own.
                lot = StockLot(
                    lot.id,
                    lot.warehouse_id,
                    lot.item_code,
                    alloc.reserved + max(lot.available, 0),
                    alloc.reserved,
                    lot.expires_on,
                )
            if movement == "release":
                _, new = release(lot, alloc, quantity)
            elif movement == "issue":
                _, new = issue(lot, alloc, quantity)
            elif movement == "return":
                _, new = return_stock(lot, alloc, quantity)
            else:
                new = consume(alloc, quantity)
            params = {"q": quantity, "lot": lot_id, "inc": incident_id}
            lot_sql = _LOT_SQL[movement]
            if inc.scope.is_live and lot_sql is not None:
                cur = await conn.execute(lot_sql, params)
                if cur.rowcount != 1:
                    raise StockConflict(f"lot {lot_id} changed meanwhile; nothing was moved, try again")
            cur = await conn.execute(
                "UPDATE stock_allocation SET updated_at = now(), "
                + _ALLOCATION_SQL[movement].format(key="incident_id = %(inc)s AND lot_id = %(lot)s"),
                params,
            )
            if cur.rowcount != 1:
                raise StockConflict(f"the allocation of lot {lot_id} changed meanwhile; try again")
            await _movement(conn, who, incident_id, lot_id, movement, quantity)
            await audit.record(
                conn,
                who,
                action,
                object_type="incident",
                object_id=incident_id,
                detail={
                    "lot_id": lot_id,
                    "item_code": lot.item_code,
                    "quantity": quantity,
                    "exercise_id": inc.exercise_id,
                },
            )
            cur = await conn.execute(
                "SELECT quantity, reserved, expires_on FROM stock_lot WHERE id = %s", (lot_id,)
            )
            lrow = await cur.fetchone()
            assert lrow is not None
            totals = await item_totals(conn, lot.item_code, today)
    except StockError as exc:
        raise StockConflict(str(exc), lot_id=lot_id, movement=movement, quantity=quantity) from None
    except psycopg.errors.CheckViolation:
        raise StockConflict(
            f"lot {lot_id} changed meanwhile; nothing was moved, try again", lot_id=lot_id, movement=movement
        ) from None
    allocation = {
        "reserved": new.reserved,
        "issued": new.issued,
        "returned": new.returned,
        "consumed": new.consumed,
        "outstanding": new.outstanding,
    }
    lot_out = {
        "id": lot_id,
        "quantity": lrow[0],
        "reserved": lrow[1],
        "available": lrow[0] - lrow[1],
        "expires_on": lrow[2].isoformat() if lrow[2] else None,
    }
    await publish(
        state.redis,
        Change(
            "stock",
            lot.item_code,
            {
                **totals,
                "incident_id": incident_id,
                "movement": movement,
                "moved": quantity,
                "lot_id": lot_id,
            },
            exercise_id=inc.exercise_id,
        ),
    )
    return Moved(incident_id, lot_id, lot.item_code, movement, quantity, allocation, lot_out)
