"""Database access shared by the services: connections, versioned migrations, and the
time-series backend (TimescaleDB when it can really be created and ``STORAGE_BACKEND``
allows it, plain PostgreSQL otherwise; the choice is recorded and kept).

Code above this module does not know which backend it runs on: it reads
``feed_counts_1m`` and calls ``refresh_aggregates``/``apply_policies``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg
from psycopg import sql

from wuwang.contract import FEEDS, Chart

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


StorageChoice = Literal["auto", "plain", "timescale"]


class StorageBackendError(RuntimeError):
    """The storage backend asked for cannot be used (the message says why)."""


class MigrationError(RuntimeError):
    """A migration failed; the message names it and the statement, and keeps the server's words."""


@dataclass(frozen=True)
class TimescaleProbe:
    usable: bool
    why: str  # in the operator's words: what was found, or what to do


def probe_timescale(url: str) -> TimescaleProbe:
    """Whether TimescaleDB can really be used in this database — not merely whether its
    files are installed: the library must be preloaded, and the role must be allowed to
    create it. The final check is a real ``CREATE EXTENSION`` rolled back, on a
    connection of its own (a library that is not preloaded ends the session: FATAL)."""
    with connect(url, autocommit=True) as conn:
        if _timescale_installed(conn):
            return TimescaleProbe(True, "the timescaledb extension is installed in this database")
        files = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        if files is None:
            return TimescaleProbe(False, "the server has no timescaledb extension (not installed)")
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        preloaded = [lib.strip().strip('"') for lib in (row[0] if row else "").split(",")]
        if "timescaledb" not in preloaded:
            return TimescaleProbe(
                False,
                "the server has the timescaledb files but does not preload the library: add "
                "shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL",
            )
    try:
        with connect(url) as trial:  # a transaction: the trial leaves nothing behind
            trial.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            trial.rollback()
    except psycopg.Error as exc:
        return TimescaleProbe(False, f"CREATE EXTENSION timescaledb fails here: {_first_line(exc)}")
    return TimescaleProbe(True, "the timescaledb extension can be created in this database")


def _first_line(exc: BaseException) -> str:
    """The server's own message (psycopg may wrap it, e.g. in "the connection is closed")."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return str(primary)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def backend(conn: psycopg.Connection) -> Backend:
    """Which time-series backend this database was migrated with."""
    recorded = _recorded_backend(conn)
    if recorded is None:
        return "timescale" if _timescale_installed(conn) else "plain"
    return recorded


def _recorded_backend(conn: psycopg.Connection) -> Backend | None:
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() in (None, (None,)):
        return None
    row = conn.execute(
        "SELECT variant FROM schema_migrations WHERE variant IS NOT NULL ORDER BY version LIMIT 1"
    ).fetchone()
    if row is None:
        return None
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


def choose_backend(url: str, storage: StorageChoice = "auto") -> tuple[Backend, str]:
    """The backend ``migrate`` will use, and why. A database that is already migrated keeps
    its backend (changing it is a dump and restore); a half-migrated one whose earlier
    run already created the extension goes on with TimescaleDB."""
    with connect(url, autocommit=True) as conn:
        recorded = _recorded_backend(conn)
        half_done = recorded is None and _timescale_installed(conn)
    if recorded is not None:
        if storage not in ("auto", recorded):
            raise StorageBackendError(
                f"STORAGE_BACKEND={storage}, but this database was migrated for the {recorded} backend;"
                " moving it is a dump and restore into a new database"
            )
        return recorded, f"this database was migrated for the {recorded} backend"
    if storage == "plain":
        return "plain", "STORAGE_BACKEND=plain"
    if half_done:
        return "timescale", "an earlier migration created the timescaledb extension here"
    probe = probe_timescale(url)
    if probe.usable:
        return "timescale", probe.why
    if storage == "timescale":
        raise StorageBackendError(f"STORAGE_BACKEND=timescale, but TimescaleDB cannot be used: {probe.why}")
    return "plain", f"TimescaleDB not used: {probe.why}"


def _execute_idempotent(conn: psycopg.Connection, stmt: str, attempts: int = 5) -> None:
    """Run a statement that may safely run again, retrying when it collided with a
    concurrent session — TimescaleDB's own background jobs (a continuous aggregate's
    refresh while the migration drops it: "tuple concurrently deleted")."""
    for attempt in range(1, attempts + 1):
        try:
            conn.execute(stmt)
            return
        except psycopg.Error as exc:
            if attempt == attempts or not _collided(exc):
                raise
            log.info("statement collided with a concurrent session (%s); retrying", _first_line(exc))
            time.sleep(0.2 * attempt)


def _collided(exc: psycopg.Error) -> bool:
    if isinstance(
        exc,
        psycopg.errors.DeadlockDetected
        | psycopg.errors.SerializationFailure
        | psycopg.errors.LockNotAvailable
        | psycopg.errors.ObjectInUse,
    ):
        return True
    return "concurrently" in _first_line(exc)  # XX000 "tuple concurrently deleted/updated"


def migrate(url: str, *, storage: StorageChoice = "auto") -> list[str]:
    """Apply what is missing; idempotent, and resumable after a failure midway. Returns
    the versions applied now.

    ``storage`` is ``STORAGE_BACKEND``: ``auto`` uses TimescaleDB when the extension can
    really be created (``probe_timescale``), ``timescale`` insists on it, ``plain`` never
    uses it.
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
            chosen, why = choose_backend(url, storage)
            log.info("storage backend: %s (%s)", chosen, why)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for mig in load_migrations():
                if mig.version in done or (mig.variant is not None and mig.variant != chosen):
                    continue
                log.info("applying migration %s_%s (%s)", mig.version, mig.name, mig.variant or "common")
                if mig.variant == "timescale":
                    # Continuous aggregates refuse a transaction block, so each statement runs
                    # on its own; every statement is written to be re-run (IF NOT EXISTS,
                    # if_not_exists => true) so that a run that failed midway can resume.
                    for number, stmt in enumerate(_statements(mig.sql), start=1):
                        try:
                            _execute_idempotent(conn, stmt)
                        except psycopg.Error as exc:
                            raise MigrationError(
                                f"migration {mig.version}_{mig.name} (timescale) failed at statement"
                                f" {number} ({stmt.splitlines()[0][:80]}): {_first_line(exc)}"
                            ) from exc
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.variant),
                    )
                else:
                    try:
                        with conn.transaction():
                            conn.execute(mig.sql)
                            conn.execute(
                                "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                                (mig.version, mig.name, mig.variant),
                            )
                    except psycopg.Error as exc:
                        raise MigrationError(
                            f"migration {mig.version}_{mig.name} failed (rolled back): {_first_line(exc)}"
                        ) from exc
                applied_now.append(mig.version)
        finally:
            # The lock ends with the session anyway; a failed unlock on a broken connection
            # must not hide the error that broke it.
            if not conn.closed:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
                except psycopg.Error:
                    log.debug("advisory unlock failed; the session's end releases it", exc_info=True)
    return applied_now


#: Feeds counted per minute: on TimescaleDB one continuous aggregate each, feed_counts_1m_<feed>.
_FEED_AGGREGATES = tuple(str(spec.feed) for spec in FEEDS if spec.chart is Chart.PER_MINUTE)
#: The feed tables (hypertables on TimescaleDB), in the contract's order.
TIMESERIES_TABLES = tuple(spec.table for spec in FEEDS)


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


def keep_after_receipt_days(retention_days: int, door_max_age_days: int | None = None) -> int:
    """How long, by ``ts``, a row must be kept so that it outlives ``retention_days`` after
    its *receipt*. The ingest's door accepts a message whose ts is up to its maximum age
    old ([now - max age, now + skew]; the max age is ``retention_days`` unless given), so
    a row received at t can carry ts = t - max age; kept until ts + retention + max age,
    it lives at least until t + retention. TimescaleDB drops whole chunks by ts (it
    cannot look at received_at), and the ledger must remember a message as long as the
    door would take its redelivery, so both use this span."""
    return retention_days + (retention_days if door_max_age_days is None else door_max_age_days)


def apply_policies(
    conn: psycopg.Connection,
    *,
    retention_days: int,
    compress_after_days: int,
    door_max_age_days: int | None = None,
) -> None:
    """Retention (and compression on TimescaleDB). On plain PostgreSQL retention is a
    scheduled delete; call this from a maintenance loop. Needs an autocommit connection
    on TimescaleDB (policies are jobs) — each statement stands on its own.

    A feed row goes only when it is older than ``retention_days`` by its ts *and* by its
    receipt (``received_at``). On TimescaleDB the policies are added when missing and
    altered in place when the settings changed (the job and its history stay)."""
    keep_days = keep_after_receipt_days(retention_days, door_max_age_days)
    if backend(conn) == "timescale":
        for table in TIMESERIES_TABLES:
            _ensure_policy(
                conn,
                table,
                "policy_retention",
                "drop_after",
                keep_days,
                "SELECT add_retention_policy(%s::regclass,"
                " drop_after => make_interval(days => %s), if_not_exists => true)",
            )
            _ensure_policy(
                conn,
                table,
                "policy_compression",
                "compress_after",
                compress_after_days,
                "SELECT add_compression_policy(%s::regclass,"
                " compress_after => make_interval(days => %s), if_not_exists => true)",
            )
    else:
        for table in TIMESERIES_TABLES:
            conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE ts < now() - make_interval(days => %(days)s)"
                    " AND received_at < now() - make_interval(days => %(days)s)"
                ).format(sql.Identifier(table)),
                {"days": retention_days},
            )
    # The idempotency ledger is a plain table on both backends.
    conn.execute(
        "DELETE FROM message_ledger WHERE stored_at < now() - make_interval(days => %s)", (keep_days,)
    )
    for job in failing_jobs(conn):
        log.warning(
            "TimescaleDB job %s (%s%s) failed its last run: %s — check that its work (retention,"
            " compression, aggregate refresh) is being done (timescaledb_information.job_stats)",
            job.job_id,
            job.proc,
            f" on {job.table}" if job.table else "",
            job.error,
        )


@dataclass(frozen=True)
class FailingJob:
    job_id: int
    proc: str
    table: str | None
    error: str


def failing_jobs(conn: psycopg.Connection) -> list[FailingJob]:
    """TimescaleDB's background jobs whose last run failed, with the error it gave (none on
    plain PostgreSQL). The scheduler only records failures in its own tables; without this
    a failing retention or compression job keeps rows and disk, with nobody told (on
    TimescaleDB 2.28.3 with PostgreSQL 15.20 every run ends in "cannot drop portal", after
    its work: docs/deployment.md)."""
    if backend(conn) != "timescale":
        return []
    rows = conn.execute(
        "SELECT s.job_id, j.proc_name, s.hypertable_name,"
        "       (SELECT h.err_message FROM timescaledb_information.job_history h"
        "         WHERE h.job_id = s.job_id AND NOT h.succeeded"
        "         ORDER BY h.finish_time DESC NULLS LAST LIMIT 1)"
        "  FROM timescaledb_information.job_stats s"
        "  JOIN timescaledb_information.jobs j USING (job_id)"
        " WHERE s.last_run_status = 'Failed' ORDER BY s.job_id"
    ).fetchall()
    return [FailingJob(int(r[0]), str(r[1]), r[2], r[3] or "no error recorded") for r in rows]


def _ensure_policy(conn: psycopg.Connection, table: str, proc: str, key: str, days: int, add: str) -> None:
    jobs = conn.execute(
        "SELECT job_id, (config ->> %s)::interval = make_interval(days => %s)"
        "  FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_schema = current_schema() AND hypertable_name = %s"
        " ORDER BY job_id",
        (key, days, proc, table),
    ).fetchall()
    if not jobs:
        conn.execute(add, (table, days))
        return
    for job_id, same in jobs:
        if not same:
            conn.execute(
                "SELECT alter_job(job_id, config => jsonb_set(config, ARRAY[%s],"
                " to_jsonb(make_interval(days => %s)::text)))"
                "  FROM timescaledb_information.jobs WHERE job_id = %s",
                (key, days, job_id),
            )
