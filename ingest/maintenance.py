"""Periodic database upkeep: refresh the per-minute aggregates, apply retention (and
compression on TimescaleDB). Failures are logged and counted, never fatal.

With several ingest processes each runs this; a try-lock makes the others skip a
round instead of queueing behind the one that runs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from ingest.metrics import IngestMetrics
from wuwang import db
from wuwang.settings import Settings

log = logging.getLogger(__name__)

POLICIES_EVERY_S = 3600.0
_LOCK_REFRESH = 0x494E_4753_0001  # "INGS" 1
_LOCK_POLICIES = 0x494E_4753_0002


class Maintenance:
    def __init__(self, settings: Settings, metrics: IngestMetrics, *,
                 policies_every_s: float = POLICIES_EVERY_S) -> None:
        if not settings.shared.database_url:
            raise ValueError("DATABASE_URL is not set")
        self._settings = settings
        self._url = settings.shared.database_url
        self._metrics = metrics
        self._refresh_every = settings.ingest.aggregate_refresh_s
        self._policies_every = policies_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        now = time.monotonic()
        next_refresh = now + self._refresh_every
        next_policies = now  # once at start: TimescaleDB policies follow the settings
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_policies:
                self._task("policies", _LOCK_POLICIES, lambda c: db.apply_policies(
                    c, retention_days=self._settings.shared.retention_days,
                    compress_after_days=self._settings.shared.compress_after_days))
                next_policies = time.monotonic() + self._policies_every
            if now >= next_refresh:
                self._task("refresh", _LOCK_REFRESH, db.refresh_aggregates)
                next_refresh = time.monotonic() + self._refresh_every
            self._stop.wait(max(0.05, min(next_refresh, next_policies) - time.monotonic()))

    def _task(self, name: str, lock: int, work: Callable[[psycopg.Connection], None]) -> None:
        try:
            # autocommit: TimescaleDB's refresh_continuous_aggregate refuses a transaction block.
            with psycopg.connect(self._url, autocommit=True, connect_timeout=5,
                                 application_name=f"ingest maintenance {name}") as conn:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock,)).fetchone()
                if not row or not row[0]:
                    self._metrics.maintenance_runs.labels(task=name, result="skipped").inc()
                    return
                try:
                    work(conn)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))
            self._metrics.maintenance_runs.labels(task=name, result="ok").inc()
        except Exception as exc:
            self._metrics.maintenance_runs.labels(task=name, result="error").inc()
            log.warning("maintenance %s failed: %s: %s", name, type(exc).__name__, str(exc).strip()[:300])
