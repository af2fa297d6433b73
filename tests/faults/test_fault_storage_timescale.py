"""The TimescaleDB path, against a real TimescaleDB server (WUWANG_TEST_TIMESCALE_URL, a
server with shared_preload_libraries = 'timescaledb'; see docs/deployment.md). Without
one these tests are skipped with that reason — CI runs plain PostgreSQL.

- retention drops whole chunks by ts, so it keeps them long enough that a row accepted
  at the edge of the door's window outlives a whole window after its receipt;
- policies are added once and altered in place (same job, its history kept), and the
  ledger is pruned here too;
- a migration that failed midway resumes;
- purging a drill with a million compressed rows works, with the compression layout of
  0012 and with chunks compressed before it.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from command.app import create_app
from command.users import DEMO_PASSWORD
from tests.command.conftest import _seed_minimal_city
from tests.faults.test_fault_storage_retention import insert_row
from wuwang import db
from wuwang.settings import Settings

RETENTION = 30  # days
_names = itertools.count()


@pytest.fixture(scope="module")
def timescale_server() -> str:
    url = os.environ.get("WUWANG_TEST_TIMESCALE_URL")
    if not url:
        pytest.skip("no TimescaleDB server configured: set WUWANG_TEST_TIMESCALE_URL (docs/deployment.md)")
    return url


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture
def ts_empty(timescale_server: str) -> Iterator[Callable[[], str]]:
    """Empty databases on the TimescaleDB server, dropped after the test."""
    admin = _with_database(timescale_server, "postgres")
    made: list[str] = []

    def make() -> str:
        name = f"wuwang_ts_{os.getpid()}_{next(_names)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return _with_database(timescale_server, name)

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def ts_db(ts_empty: Callable[[], str]) -> str:
    url = ts_empty()
    db.migrate(url, storage="timescale")
    return url


def _policies(conn: psycopg.Connection) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    rows = conn.execute(
        "SELECT hypertable_name, proc_name, job_id, config FROM timescaledb_information.jobs"
        " WHERE proc_name IN ('policy_retention', 'policy_compression')"
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def _days(conn: psycopg.Connection, text: str) -> int:
    row = conn.execute("SELECT extract(day FROM %s::interval)::int", (text,)).fetchone()
    assert row is not None
    return int(row[0])


# --- retention and policies -------------------------------------------------------------------------


def test_policies_are_added_once_and_altered_in_place(ts_db: str) -> None:
    with db.connect(ts_db, autocommit=True) as conn:
        db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
        first = _policies(conn)
        assert len(first) == 2 * len(db.TIMESERIES_TABLES)
        db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
        assert _policies(conn) == first  # the hourly round changes nothing
        for table in db.TIMESERIES_TABLES:
            drop_after = first[(table, "policy_retention")][1]["drop_after"]
            assert _days(conn, drop_after) == db.keep_after_receipt_days(RETENTION)
        db.apply_policies(conn, retention_days=RETENTION + 5, compress_after_days=3)
        altered = _policies(conn)
        assert {k: v[0] for k, v in altered.items()} == {k: v[0] for k, v in first.items()}  # same jobs
        for table in db.TIMESERIES_TABLES:
            assert _days(conn, altered[(table, "policy_retention")][1]["drop_after"]) == 2 * (RETENTION + 5)
            assert _days(conn, altered[(table, "policy_compression")][1]["compress_after"]) == 3


def test_retention_job_keeps_a_row_received_at_the_edge_of_the_window(ts_db: str) -> None:
    with db.connect(ts_db, autocommit=True) as conn:
        db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        window = timedelta(days=RETENTION)
        for table in db.TIMESERIES_TABLES:
            insert_row(conn, table, "edge", now - window - timedelta(hours=1), now - timedelta(hours=1))
            insert_row(
                conn,
                table,
                "ancient",
                now - 2 * window - timedelta(days=10),
                now - 2 * window - timedelta(days=10),
            )
        for table in db.TIMESERIES_TABLES:
            job_id = _policies(conn)[(table, "policy_retention")][0]
            conn.execute("CALL run_job(%s)", (job_id,))
            query = sql.SQL("SELECT msg_id FROM {}").format(sql.Identifier(table))
            left = {r[0] for r in conn.execute(query)}
            assert left == {"edge"}, table


def test_ledger_is_pruned_on_timescale_too(ts_db: str) -> None:
    with db.connect(ts_db, autocommit=True) as conn:
        for source, age in (("venue/recent", RETENTION + 1), ("venue/ancient", 2 * RETENTION + 1)):
            conn.execute(
                "INSERT INTO message_ledger (source, msg_id, feed, stored_at)"
                " VALUES (%s, 'm1', 'sensor', now() - make_interval(days => %s))",
                (source, age),
            )
        db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
        assert {r[0] for r in conn.execute("SELECT source FROM message_ledger")} == {"venue/recent"}


def test_a_failing_background_job_is_said_at_each_policies_round(
    ts_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler keeps its failures to itself; the hourly round (and migrate) names them."""
    with db.connect(ts_db, autocommit=True) as conn:
        conn.execute(
            "CREATE PROCEDURE broken_upkeep(job_id int, config jsonb) LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'disk full on the archive volume'; END $$"
        )
        job_id = conn.execute("SELECT add_job('broken_upkeep', '1 hour')").fetchone()[0]  # type: ignore[index]
        for _ in range(600):  # the scheduler runs a new job at once; wait for it to have run
            if any(j.job_id == job_id for j in db.failing_jobs(conn)):
                break
            time.sleep(0.1)
        (failed,) = [j for j in db.failing_jobs(conn) if j.job_id == job_id]
        assert failed.proc == "broken_upkeep"
        assert failed.error == "disk full on the archive volume"
        with caplog.at_level(logging.WARNING, logger="wuwang.db"):
            db.apply_policies(conn, retention_days=RETENTION, compress_after_days=7)
    said = [r.getMessage() for r in caplog.records if f"job {job_id} " in r.getMessage()]
    assert said and "disk full on the archive volume" in said[0]


# --- resumable migrations ---------------------------------------------------------------------------


def _apply_until(url: str, version: str) -> None:
    """What a migrator did before it failed: the migrations before ``version``."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, variant text,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for mig in db.load_migrations():
            if mig.version >= version or mig.variant == "plain":
                continue
            for stmt in db._statements(mig.sql) if mig.variant else [mig.sql]:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s)", (mig.version, mig.name, mig.variant)
            )


def _statements_of(version: str) -> list[str]:
    (mig,) = [m for m in db.load_migrations() if m.version == version and m.variant == "timescale"]
    return db._statements(mig.sql)


def _assert_complete(url: str) -> None:
    with db.connect(url, autocommit=True) as conn:
        versions = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        assert {m.version for m in db.load_migrations() if m.variant != "plain"} <= versions
        assert db.backend(conn) == "timescale"
        hypertables = {
            r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        assert set(db.TIMESERIES_TABLES) <= hypertables
        caggs = conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in caggs] == [f"feed_counts_1m_{f}" for f in ("call", "report", "sensor", "video")]
        refresh_jobs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchone()
        assert refresh_jobs == (4,)
        segmentby = conn.execute(
            "SELECT segmentby FROM timescaledb_information.hypertable_compression_settings"
            " WHERE hypertable = 'sensor_reading'::regclass"
        ).fetchone()
        assert segmentby == ("exercise_id,device_id",)
        db.refresh_aggregates(conn)
        assert conn.execute("SELECT count(*) FROM feed_counts_1m").fetchone() == (0,)


@pytest.mark.parametrize("done", [1, 4, 10, 15, 19])
def test_a_timescale_migration_that_failed_midway_resumes(ts_empty: Callable[[], str], done: int) -> None:
    url = ts_empty()
    _apply_until(url, "0002")
    with db.connect(url, autocommit=True) as conn:
        for stmt in _statements_of("0002")[:done]:  # then the migrator died
            conn.execute(stmt)
    applied = db.migrate(url, storage="timescale")
    assert applied[0] == "0002"
    _assert_complete(url)
    assert db.migrate(url, storage="timescale") == []


@pytest.mark.parametrize("done", [1, 3, 7])
def test_the_live_aggregates_migration_resumes(ts_empty: Callable[[], str], done: int) -> None:
    url = ts_empty()
    _apply_until(url, "0008")
    with db.connect(url, autocommit=True) as conn:
        for stmt in _statements_of("0008")[:done]:
            conn.execute(stmt)
    assert db.migrate(url)[0] == "0008"  # auto: a half-done Timescale migration goes on with Timescale
    _assert_complete(url)


# --- purging a large drill from compressed chunks ---------------------------------------------------

DRILL = "EX-BIG"
ROWS = 1_000_000


def _fill_and_compress(url: str, *, layout: str) -> None:
    """ROWS sensor readings over 23 days, every other one the drill's, interleaved on the
    same devices (a drill replays the city's own device ids: 49 devices, so every device has
    both drill and live rows); all chunks compressed."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, created_by)"
            " VALUES (%s, '大型演练', 'scenario', 'big.yaml', 'finished', 'planner1')",
            (DRILL,),
        )
        conn.execute(
            "INSERT INTO sensor_reading (ts, received_at, ts_from_receipt, network, source_id, msg_id,"
            " device_id, kind, value, unit, exercise_id)"
            " SELECT t, t, false, 'venue', 'S' || mod(i, 49), 'm' || i, 'S' || mod(i, 49), 'smoke', 1, 'ppm',"
            "        CASE WHEN mod(i, 2) = 0 THEN %s END"
            "   FROM generate_series(1, %s) AS i,"
            "        LATERAL (SELECT now() - interval '25 days' + i * interval '2 seconds') AS s(t)",
            (DRILL, ROWS),
        )
        if layout == "before 0012":  # chunks compressed while device_id alone led the segments
            conn.execute("ALTER TABLE sensor_reading SET (timescaledb.compress_segmentby = 'device_id')")
        conn.execute("SELECT count(compress_chunk(c)) FROM show_chunks('sensor_reading') c")
        if layout == "before 0012":
            conn.execute(
                "ALTER TABLE sensor_reading SET (timescaledb.compress_segmentby = 'exercise_id, device_id')"
            )
        uncompressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'sensor_reading' AND NOT is_compressed"
        ).fetchone()
        assert uncompressed == (0,)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("layout", ["0012", "before 0012"])
def test_purging_a_drill_with_a_million_compressed_rows(
    ts_db: str, make_settings: Callable[..., Settings], layout: str
) -> None:
    _seed_minimal_city(ts_db)
    _fill_and_compress(ts_db, layout=layout)
    settings = make_settings(account="command", database_url=ts_db)
    with TestClient(create_app(settings)) as client:
        r = client.post("/auth/login", json={"username": "planner1", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        planner = {"Authorization": f"Bearer {r.json()['access_token']}"}
        purged = client.delete(f"/exercises/{DRILL}", headers=planner)
    assert purged.status_code == 200, purged.text
    assert purged.json()["deleted"]["sensor_reading"] == ROWS // 2
    with db.connect(ts_db) as conn:
        left = conn.execute(
            "SELECT count(*) FILTER (WHERE exercise_id IS NULL), count(*) FROM sensor_reading"
        ).fetchone()
        assert left == (ROWS // 2, ROWS // 2)  # every live row kept, no drill row left
        assert conn.execute("SELECT status FROM exercise WHERE id = %s", (DRILL,)).fetchone() == ("purged",)
