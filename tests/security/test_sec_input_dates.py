"""Dates at the calendar's ends (0001-01-01, 9999-12-31) are answered, not crashed.

The attack: ``GET /duty/log?day=9999-12-31`` (and its CSV and HTML exports) answered 500:
a day's log runs to the next midnight, which Python's dates cannot hold (OverflowError).
The day parameter is now ``command.inputs.Day`` (a day with a day on each side): 422
naming it. The other date inputs of the routes added since the issue (duty shifts, risk
sources, planned events, warnings) are swept with the same extremes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from command.inputs import DAY_OUT_OF_RANGE

Headers = Callable[[str], dict[str, str]]

LATE = "9999-12-31T23:59:59-12:00"
LAST_DAY = "9999-12-31T00:00:00+00:00"
EARLY = "0001-01-01T00:00:00+14:00"


@pytest.mark.parametrize("url", ["/duty/log", "/duty/log.csv", "/duty/log.html"])
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_day_at_the_calendars_end_is_422(client: TestClient, login: Headers, url: str, day: str) -> None:
    r = client.get(url, headers=login("commander1"), params={"day": day})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "day"] and DAY_OUT_OF_RANGE in r.text


def test_the_days_next_to_the_ends_still_work(client: TestClient, login: Headers) -> None:
    for day in ("9999-12-30", "0001-01-02"):
        r = client.get("/duty/log", headers=login("commander1"), params={"day": day})
        assert r.status_code == 200, r.text


CASES: list[tuple[str, str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
    ("commander1", "GET", "/duty/shifts", {"from": "9999-12-30T00:00:00+00:00", "to": LATE}, None),
    ("commander1", "GET", "/duty/shifts", {"from": EARLY, "to": "0001-01-02T00:00:00+14:00"}, None),
    (
        "commander1",
        "POST",
        "/duty/shifts",
        None,
        {"starts_at": LAST_DAY, "ends_at": LATE, "leader": "commander1", "officers": ["operator1"]},
    ),
    (
        "admin1",
        "PUT",
        "/risk-sources/RS-X-1",
        None,
        {
            "name": "x",
            "lat": 32.0,
            "lon": 112.1,
            "kind": "chemical",
            "level": "major",
            "inspection_interval_days": 366,
            "last_inspected_at": LATE,
        },
    ),
    (
        "commander1",
        "POST",
        "/planned-events",
        None,
        {"name": "x", "lat": 32.0, "lon": 112.1, "radius_m": 500, "starts_at": LAST_DAY, "ends_at": LATE},
    ),
    (
        "commander1",
        "POST",
        "/warnings",
        None,
        {
            "event_type": "rainstorm",
            "level": "blue",
            "area": {"districts": [420606]},
            "onset": LAST_DAY,
            "expires": LATE,
            "headline": "x",
        },
    ),
]


@pytest.mark.parametrize(("user", "method", "url", "params", "body"), CASES)
def test_other_dates_at_the_calendars_ends_are_answered(
    client: TestClient, login: Headers, user: str, method: str, url: str, params: Any, body: Any
) -> None:
    r = client.request(method, url, headers=login(user), params=params, json=body)
    assert r.status_code < 500, r.text
