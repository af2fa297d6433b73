"""The reserve through the API on real PostgreSQL and Redis: earliest-expiry-first picking,
the double-reservation guard under 50 concurrent requests, issue/return/consume/release,
alerts, the demo loader, exercises' virtual holds and the role rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from command.demo_reserve import SHORT_ITEMS, build_demo_reserve, load_demo_reserve
from command.domain.plans import DEFAULT_PLAN_DIR, load_plans
from command.domain.reserve import Expired, ExpiringSoon, LowStock, stock_alerts
from command.services.reserve import today_for
from tests.command.conftest import FIELD_TEAM
from tests.command.test_kpis_api import open_by_domain
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

Lot = tuple[str, str, str, int, date | None]  # id, warehouse, item, quantity, expires_on


def seed_stock(settings: Settings, lots: Sequence[Lot], items: Sequence[str] = ("first_aid_kit",)) -> None:
    catalogue = load_plans(DEFAULT_PLAN_DIR).items
    with psycopg.connect(settings.shared.database_url or "") as conn:
        for code in items:
            i = catalogue[code]
            conn.execute(
                "INSERT INTO reserve_item (code, name_zh, name_en, category, unit, unit_zh, min_stock)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (i.code, i.name_zh, i.name_en, str(i.category), i.unit, i.unit_zh, i.min_stock),
            )
        for wh in sorted({lot[1] for lot in lots}):
            conn.execute(
                "INSERT INTO warehouse (id, name, kind, lat, lon) VALUES"
                " (%s, %s, 'government_stock', 32.0, 112.1) ON CONFLICT DO NOTHING",
                (wh, f"仓库 {wh}"),
            )
        conn.cursor().executemany(
            "INSERT INTO stock_lot (id, warehouse_id, item_code, quantity, expires_on)"
            " VALUES (%s, %s, %s, %s, %s)",
            list(lots),
        )


def lot_row(settings: Settings, lot_id: str) -> tuple[int, int]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        row = conn.execute("SELECT quantity, reserved FROM stock_lot WHERE id = %s", (lot_id,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def open_incident(client: TestClient, headers: dict[str, str], lat: float = 32.05) -> str:
    r = client.post(
        "/incidents",
        json={"type": "flood", "level": 4, "title": "樊城区人民路积水", "lat": lat, "lon": 112.14},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    incident_id: str = r.json()["id"]
    return incident_id


def reserve(
    client: TestClient,
    headers: dict[str, str],
    incident_id: str,
    item: str,
    quantity: int,
    warehouse_id: str | None = None,
) -> Any:
    body: dict[str, Any] = {"item_code": item, "quantity": quantity}
    if warehouse_id:
        body["warehouse_id"] = warehouse_id
    return client.post(f"/incidents/{incident_id}/reserve", json=body, headers=headers)


def move(
    client: TestClient, headers: dict[str, str], incident_id: str, lot_id: str, what: str, q: int
) -> Any:
    return client.post(
        f"/incidents/{incident_id}/reserve/{lot_id}/{what}", json={"quantity": q}, headers=headers
    )


def test_reserve_picks_earliest_expiry_first_and_never_an_expired_lot(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    today = today_for(command_settings)
    seed_stock(
        command_settings,
        [
            ("L-EXPIRED", "WH-A", "first_aid_kit", 50, today - timedelta(days=1)),
            ("L-10D", "WH-A", "first_aid_kit", 5, today + timedelta(days=10)),
            ("L-100D", "WH-A", "first_aid_kit", 20, today + timedelta(days=100)),
            ("L-NONE", "WH-A", "first_aid_kit", 100, None),
            ("L-B-TODAY", "WH-B", "first_aid_kit", 3, today),  # usable through its expiry day
        ],
    )
    op = login("operator1")
    incident_id = open_incident(command_client, op)
    r = reserve(command_client, op, incident_id, "first_aid_kit", 10)
    assert r.status_code == 201, r.text
    assert [(p["lot_id"], p["quantity"]) for p in r.json()["picks"]] == [
        ("L-B-TODAY", 3),
        ("L-10D", 5),
        ("L-100D", 2),
    ]
    assert r.json()["item_totals"] == {
        "item_code": "first_aid_kit",
        "quantity": 178,
        "reserved": 10,
        "usable": 118,
    }
    assert lot_row(command_settings, "L-EXPIRED") == (50, 0)
    # From one warehouse only.
    only_a = reserve(command_client, op, incident_id, "first_aid_kit", 20, "WH-A")
    assert [(p["lot_id"], p["quantity"]) for p in only_a.json()["picks"]] == [("L-100D", 18), ("L-NONE", 2)]
    # Too much: nothing reserved, 409 with the shortfall (the expired 50 never count).
    short = reserve(command_client, op, incident_id, "first_aid_kit", 200)
    assert short.status_code == 409
    assert short.json()["detail"].items() >= {"requested": 200, "available": 98, "short": 102}.items()
    assert lot_row(command_settings, "L-NONE") == (100, 2)
    held = command_client.get(f"/incidents/{incident_id}/reserve", headers=op).json()
    assert {a["lot_id"]: a["reserved"] for a in held["allocations"]} == {
        "L-B-TODAY": 3,
        "L-10D": 5,
        "L-100D": 20,
        "L-NONE": 2,
    }
    assert held["totals"]["first_aid_kit"]["reserved"] == 30
    assert [m["movement"] for m in held["movements"]] == ["reserve"] * 5
    assert reserve(command_client, op, incident_id, "no_such_item", 1).status_code == 422
    assert reserve(command_client, op, incident_id, "first_aid_kit", 1, "WH-NOWHERE").status_code == 422
    assert reserve(command_client, op, incident_id, "first_aid_kit", 0).status_code == 422
    assert reserve(command_client, op, "INC-NOPE", "first_aid_kit", 1).status_code == 404
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'reserve.reserve'"
            " AND outcome = 'ok' AND object_id = %s",
            (incident_id,),
        ).fetchone()
    assert audited == (2,)


def _race(client: TestClient, calls: Sequence[tuple[dict[str, str], str, str, int]]) -> Counter[int]:
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda c: reserve(client, c[0], c[1], c[2], c[3]).status_code, calls))
    return Counter(codes)


def test_fifty_concurrent_reservations_of_the_last_units(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_stock(
        command_settings,
        [("L-LAST", "WH-A", "first_aid_kit", 20, None), ("L-SEVEN", "WH-A", "stretcher", 7, None)],
        items=("first_aid_kit", "stretcher"),
    )
    users = [login("operator1"), login("operator2"), login("commander1"), login("admin1")]
    incidents = [open_incident(command_client, users[0], lat=32.0 + 0.01 * i) for i in range(5)]

    # 50 requests of one unit each for 20 units: exactly 20 win.
    calls = [(users[i % 4], incidents[i % 5], "first_aid_kit", 1) for i in range(50)]
    codes = _race(command_client, calls)
    assert codes == Counter({201: 20, 409: 30})
    assert lot_row(command_settings, "L-LAST") == (20, 20)

    # 50 requests each for all seven remaining units: exactly one wins.
    calls = [(users[i % 4], incidents[i % 5], "stretcher", 7) for i in range(50)]
    codes = _race(command_client, calls)
    assert codes == Counter({201: 1, 409: 49})
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        assert conn.execute("SELECT quantity, reserved FROM stock_lot WHERE id = 'L-SEVEN'").fetchone() == (
            7,
            7,
        )
        assert conn.execute(
            "SELECT sum(reserved), count(*) FROM stock_allocation WHERE lot_id = 'L-SEVEN'"
        ).fetchone() == (7, 1)
        assert conn.execute(
            "SELECT sum(reserved) FROM stock_allocation WHERE lot_id = 'L-LAST'"
        ).fetchone() == (20,)
        assert conn.execute(
            "SELECT count(*), sum(quantity) FROM stock_movement WHERE movement = 'reserve'"
        ).fetchone() == (21, 27)


def test_issue_return_consume_release(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_stock(
        command_settings,
        [("L-1", "WH-A", "first_aid_kit", 30, None), ("L-2", "WH-A", "first_aid_kit", 5, None)],
    )
    op = login("operator1")
    incident_id = open_incident(command_client, op)
    other = open_incident(command_client, op, lat=32.2)
    assert (
        reserve(command_client, op, incident_id, "first_aid_kit", 10).status_code == 201
    )  # lot id order: L-1

    issued = move(command_client, op, incident_id, "L-1", "issue", 6)
    assert issued.status_code == 200, issued.text
    assert issued.json()["allocation"] == {
        "reserved": 4,
        "issued": 6,
        "returned": 0,
        "consumed": 0,
        "outstanding": 6,
    }
    assert issued.json()["lot"].items() >= {"quantity": 24, "reserved": 4, "available": 20}.items()
    too_much = move(command_client, op, incident_id, "L-1", "issue", 5)
    assert too_much.status_code == 409 and "only 4" in too_much.json()["detail"]["reason"]
    assert move(command_client, op, incident_id, "L-1", "consume", 2).status_code == 200
    assert move(command_client, op, incident_id, "L-1", "return", 3).status_code == 200
    over = move(command_client, op, incident_id, "L-1", "return", 2)
    assert over.status_code == 409 and "only 1" in over.json()["detail"]["reason"]
    assert move(command_client, op, incident_id, "L-1", "release", 4).status_code == 200
    assert move(command_client, op, incident_id, "L-1", "release", 1).status_code == 409
    assert lot_row(command_settings, "L-1") == (27, 0)  # 30 − 6 issued + 3 returned
    # Nothing of L-2 is held by the incident; another incident holds nothing at all.
    assert move(command_client, op, incident_id, "L-2", "issue", 1).status_code == 404
    assert move(command_client, op, other, "L-1", "release", 1).status_code == 404
    assert move(command_client, op, incident_id, "L-NOPE", "issue", 1).status_code == 404
    held = command_client.get(f"/incidents/{incident_id}/reserve", headers=op).json()
    [alloc] = held["allocations"]
    assert {k: alloc[k] for k in ("reserved", "issued", "returned", "consumed", "outstanding")} == {
        "reserved": 0,
        "issued": 6,
        "returned": 3,
        "consumed": 2,
        "outstanding": 1,
    }
    assert [(m["movement"], m["quantity"]) for m in held["movements"]] == [
        ("reserve", 10),
        ("issue", 6),
        ("consume", 2),
        ("return", 3),
        ("release", 4),
    ]

    # A closed incident takes no more stock, but its goods still come back.
    version = command_client.get(f"/incidents/{incident_id}", headers=op).json()["incident"]["version"]
    cancel = command_client.post(
        f"/incidents/{incident_id}/cancel",
        json={"expected_version": version, "reason": "积水已排除"},
        headers=op,
    )
    assert cancel.status_code == 200, cancel.text
    closed = reserve(command_client, op, incident_id, "first_aid_kit", 1)
    assert closed.status_code == 422 and "cancelled" in closed.json()["detail"]
    assert move(command_client, op, incident_id, "L-1", "return", 1).status_code == 200


def test_alerts_warehouses_and_the_demo_loader(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    url = command_settings.shared.database_url or ""
    today = today_for(command_settings)
    with psycopg.connect(url) as conn:
        first = load_demo_reserve(conn, 1, today=today)
        again = load_demo_reserve(conn, 1, today=today)  # idempotent
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("reserve_item", "warehouse", "production_capacity", "stock_lot")
        }
    assert first == again == counts
    assert counts["warehouse"] == 30 and counts["reserve_item"] == len(load_plans(DEFAULT_PLAN_DIR).items)
    op = login("operator1")

    warehouses = command_client.get("/reserve/warehouses", headers=op).json()
    assert Counter(w["kind"] for w in warehouses) == {
        "government_stock": 14,
        "commercial_agreement": 10,
        "production_capacity": 6,
    }
    city = next(w for w in warehouses if w["name"] == "襄阳市应急物资储备库")
    assert city["totals"]["lots"] > 10 and city["district_adcode"] == 420606  # seeded by the fixture
    assert all(w["capacity"] and not w["stock"] for w in warehouses if w["kind"] == "production_capacity")
    assert all(w["lead_time_s"] >= 2 * 3600 for w in warehouses if w["kind"] == "commercial_agreement")
    only = command_client.get("/reserve/warehouses?kind=production_capacity", headers=op).json()
    assert len(only) == 6

    items = {i["code"]: i for i in command_client.get("/reserve/items", headers=op).json()}
    assert {code for code, i in items.items() if i["low"]} == set(SHORT_ITEMS)
    stock = command_client.get("/reserve/stock?item_code=water_bottle", headers=op).json()
    assert stock and {s["item_code"] for s in stock} == {"water_bottle"}
    assert sum(s["quantity"] for s in stock) == items["water_bottle"]["quantity"]

    alerts = command_client.get("/reserve/alerts", headers=op).json()
    # The same alerts as the pure function over the demo's own lots.
    demo = build_demo_reserve(1, list(load_plans(DEFAULT_PLAN_DIR).items.values()), today)
    expected = stock_alerts(demo.lots, demo.items, today, expiring_within_days=30)
    assert alerts["counts"] == {
        "low_stock": sum(isinstance(a, LowStock) for a in expected),
        "expiring": sum(isinstance(a, ExpiringSoon) for a in expected),
        "expired": sum(isinstance(a, Expired) for a in expected),
    }
    assert alerts["counts"]["expiring"] > 0 and alerts["counts"]["expired"] > 0
    assert {a["item_code"] for a in alerts["low_stock"]} == set(SHORT_ITEMS)
    assert all(0 <= a["days_left"] <= 30 for a in alerts["expiring"])
    assert all(date.fromisoformat(a["expires_on"]) < today for a in alerts["expired"])
    assert (
        command_client.get("/reserve/alerts?within_days=0", headers=op).json()["counts"]["expiring"]
        <= alerts["counts"]["expiring"]
    )


def test_reserve_role_rules_and_exercise_holds_are_virtual(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    seed_stock(command_settings, [("L-1", "WH-A", "first_aid_kit", 10, None)])
    op, field, planner = login("operator1"), login(FIELD_TEAM), login("planner1")
    live = open_incident(command_client, op)
    assert command_client.get("/reserve/warehouses", headers=field).status_code == 403
    assert command_client.get(f"/incidents/{live}/reserve", headers=field).status_code == 403
    assert reserve(command_client, field, live, "first_aid_kit", 1).status_code == 403
    assert move(command_client, field, live, "L-1", "issue", 1).status_code == 403
    refused = reserve(command_client, planner, live, "first_aid_kit", 1)
    assert refused.status_code == 403 and "live incident" in refused.json()["detail"]
    assert command_client.get("/reserve/items", headers=planner).status_code == 200
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        rows = conn.execute(
            "SELECT actor, action FROM audit_log WHERE outcome = 'denied' ORDER BY id"
        ).fetchall()
    assert rows == [
        (FIELD_TEAM, "reserve.read"),
        (FIELD_TEAM, "reserve.read"),
        (FIELD_TEAM, "reserve.reserve"),
        (FIELD_TEAM, "reserve.issue"),
        ("planner1", "reserve.reserve"),
    ]

    # An exercise holds stock virtually: the live lot is untouched.
    open_by_domain(command_settings, "INC-EX-R", datetime.now(UTC), exercise_id="EX-R")
    open_by_domain(command_settings, "INC-EX-R2", datetime.now(UTC), exercise_id="EX-R", lat=32.3)
    assert reserve(command_client, op, live, "first_aid_kit", 4).status_code == 201
    ex = reserve(command_client, planner, "INC-EX-R", "first_aid_kit", 5)
    assert ex.status_code == 201, ex.text
    assert ex.json()["virtual"] is True
    assert lot_row(command_settings, "L-1") == (10, 4)
    # The exercise sees what live operations leave free (6), minus its own holds (5).
    short = reserve(command_client, planner, "INC-EX-R2", "first_aid_kit", 2)
    assert short.status_code == 409 and short.json()["detail"]["available"] == 1
    assert move(command_client, planner, "INC-EX-R", "L-1", "issue", 5).status_code == 200
    assert move(command_client, planner, "INC-EX-R", "L-1", "return", 5).status_code == 200
    assert lot_row(command_settings, "L-1") == (10, 4)
    assert reserve(command_client, op, live, "first_aid_kit", 6).status_code == 201  # live takes all it sees
    assert command_client.get("/incidents/INC-EX-R/reserve", headers=planner).json()["totals"][
        "first_aid_kit"
    ] == {"reserved": 0, "issued": 5, "returned": 5, "consumed": 0, "outstanding": 0}
