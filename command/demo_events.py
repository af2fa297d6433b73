"""Demo planned events (大型活动) for the demo city: an evening concert at a stadium that
runs while the demo runs, a temple fair at a scenic spot tomorrow, and a match at a
stadium the day after. Placed at the city's own venues (table ``venue``), so triage's
``risk_planned_event`` rule shows in the demo: a crowd or fight alert at the stadium
opens an incident naming the concert. Running it again moves the same events (ids
``PE-DEMO-…``) to the new moment.

    DATABASE_URL=... python -m command.demo_events
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from wuwang.service import setup_logging

#: (id, venue kind, name, radius m, starts after now, lasts) — the Nth venue of a kind
#: (the first again when the city has fewer).
DEMO_EVENTS: tuple[tuple[str, str, str, float, timedelta, timedelta], ...] = (
    ("PE-DEMO-CONCERT", "stadium", "{venue}演唱会", 600.0, timedelta(hours=-1), timedelta(hours=6)),
    ("PE-DEMO-FAIR", "scenic_spot", "{venue}庙会", 800.0, timedelta(hours=20), timedelta(hours=10)),
    ("PE-DEMO-MATCH", "stadium", "{venue}足球联赛", 500.0, timedelta(hours=44), timedelta(hours=3)),
)


def load_demo_events(conn: psycopg.Connection[Any], now: datetime | None = None) -> int:
    """Register (or move) the demo events at the city's venues; returns how many."""
    at = now or datetime.now(UTC)
    used: dict[str, int] = {}
    loaded = 0
    with conn.cursor() as cur:
        for event_id, kind, name, radius_m, starts_in, lasts in DEMO_EVENTS:
            nth = used.get(kind, 0)
            used[kind] = nth + 1
            cur.execute("SELECT name, lat, lon FROM venue WHERE kind = %s ORDER BY id LIMIT 10", (kind,))
            venues = cur.fetchall()
            if not venues:
                continue
            venue = venues[nth % len(venues)]  # a small city's one stadium hosts both
            venue_name, lat, lon = venue
            starts_at = at + starts_in
            cur.execute(
                "INSERT INTO planned_event (event_id, name, place, lat, lon, radius_m, starts_at, ends_at,"
                " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'demo')"
                " ON CONFLICT (event_id) DO UPDATE SET name = EXCLUDED.name, place = EXCLUDED.place,"
                " lat = EXCLUDED.lat, lon = EXCLUDED.lon, radius_m = EXCLUDED.radius_m,"
                " starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, state = 'scheduled',"
                " cancelled_by = NULL, cancelled_at = NULL, cancel_reason = NULL",
                (
                    event_id,
                    name.format(venue=venue_name),
                    venue_name,
                    lat,
                    lon,
                    radius_m,
                    starts_at,
                    starts_at + lasts,
                ),
            )
            loaded += 1
    conn.commit()
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m command.demo_events", description="Register the demo planned events (大型活动)."
    )
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL from the settings")
    ns = parser.parse_args(argv)
    if argv is None:
        setup_logging("demo-events", "WARNING")
    from wuwang.settings import get_settings

    url = ns.database_url or get_settings().shared.database_url
    if not url:
        print("DATABASE_URL is not set (or pass --database-url postgresql://…)", file=sys.stderr)
        return 2
    with psycopg.connect(url) as conn:
        loaded = load_demo_events(conn)
    print(f"demo planned events loaded: {loaded}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
