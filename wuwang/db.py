"""Database access shared by the services: connections, versioned migrations, and the
time-series backend (TimescaleDB when the extension is there, plain PostgreSQL when not).

Code above this module does not know which backend it runs on: it reads
``feed_counts_1m`` and calls ``refresh_aggregates``/``apply_policies``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

Backend = Literal["timescale", "plain"]

_MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_LOCK_KEY = 0x5755_5741_4E47  # advisory lock: one migrator at a time ("WUWANG")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    variant: Backend | None  # None: runs on both backends
    sql: str


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=5)


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def backend(conn: psycopg.Connection) -> Backend:
    """Which time-series backend this database was migrated with."""
    row = conn.execute(
        "SELECT variant FROM schema_migrations WHERE variant IS NOT NULL ORDER BY version LIMIT 1"
    ).fetchone()
    if row is None:
        return "timescale" if _timescale_installed(conn) else "plain"
    return "timescale" if row[0] == "timescale" else "plain"


def _timescale_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("wuwang.migrations").iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            found.append(
                Migration(m.group(1), m.group(2), m.group(3), entry.read_text(encoding="utf-8"))  # type: ignore[arg-type]
            )
    return sorted(found, key=lambda m: (m.version, m.variant or ""))


def _statements(script: str) -> list[str]:
    """Split a migration into statements (no dollar-quoted bodies in these files)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def migrate(url: str, *, use_timescale: bool | None = None) -> list[str]:
    """Apply what is missing; idempotent. Returns the versions applied now.

    ``use_timescale=None`` picks TimescaleDB when the extension can be created.
    """
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, variant text,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if use_timescale is None:
                use_timescale = timescale_available(conn)
            chosen: Backend = "timescale" if use_timescale else "plain"
            for mig in load_migrations():
                if mig.version in done or (mig.variant is not None and mig.variant != chosen):
                    continue
                log.info("applying migration %s_%s (%s)", mig.version, mig.name, mig.variant or "common")
                if mig.variant == "timescale":
                    # Continuous aggregates cannot run inside a transaction block.
                    for stmt in _statements(mig.sql):
                        conn.execute(stmt)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.variant),
                    )
                else:
                    with conn.transaction():
                        conn.execute(mig.sql)
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.variant),
                        )
                applied_now.append(mig.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


_FEED_AGGREGATES = ("sensor", "video", "call", "report")
TIMESERIES_TABLES = (
    "sensor_reading",
    "video_alert",
    "emergency_call",
    "field_report",
    "team_position",
    "team_status",
)


def refresh_aggregates(conn: psycopg.Connection) -> None:
    """Bring feed_counts_1m up to date (TimescaleDB's policy does it on its own, but an
    explicit refresh makes a just-written minute visible, e.g. in tests and demos)."""
    if backend(conn) == "timescale":
        for feed in _FEED_AGGREGATES:
            conn.execute(
                sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(
                    sql.Literal(f"feed_counts_1m_{feed}")
                )
            )
        return
    populated = conn.execute(
        "SELECT ispopulated FROM pg_matviews WHERE matviewname = 'feed_counts_1m'"
    ).fetchone()
    if populated and populated[0]:
        conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY feed_counts_1m")
    else:
        conn.execute("REFRESH MATERIALIZED VIEW feed_counts_1m")


def apply_policies(conn: psycopg.Connection, *, retention_days: int, compress_after_days: int) -> None:
    """Retention (and compression on TimescaleDB). On plain PostgreSQL retention is a
    scheduled delete; call this from a maintenance loop."""
    if backend(conn) == "timescale":
        for table in TIMESERIES_TABLES:
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
            conn.execute(
                "SELECT add_retention_policy(%s, make_interval(days => %s))", (table, retention_days)
            )
            conn.execute("SELECT remove_compression_policy(%s, if_exists => true)", (table,))
            conn.execute(
                "SELECT add_compression_policy(%s, make_interval(days => %s))", (table, compress_after_days)
            )
        return
    for table in TIMESERIES_TABLES:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE ts < now() - make_interval(days => %s)").format(
                sql.Identifier(table)
            ),
            (retention_days,),
        )
    conn.execute(
        "DELETE FROM message_ledger WHERE stored_at < now() - make_interval(days => %s)", (retention_days,)
    )
