"""Alarm outbox → Redis stream (at least once).

The writer puts alarms into ``alarm_outbox`` in the same transaction as their
messages, so a Redis outage loses none. This thread takes unpublished rows in id
order (``FOR UPDATE SKIP LOCKED``, so several ingest processes never publish the same
rows at the same time), XADDs each to ``settings.shared.alarm_stream`` (MAXLEN ~
``alarm_stream_maxlen``) with the fields ``alarm_id`` and ``payload`` (JSON), and
marks them published in the same transaction. If the commit is lost after the XADD,
the rows are published again: consumers dedupe by ``alarm_id``.

Latency: the writer wakes the relay right after committing alarms; a short poll
catches rows left by other processes (or by a crash).
"""

from __future__ import annotations

import contextlib
import logging
import threading

import psycopg
import redis

from ingest.metrics import IngestMetrics
from wuwang.mqtt import Backoff
from wuwang.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 0.05

_TAKE = (
    "SELECT id, alarm_id, payload::text FROM alarm_outbox WHERE published_at IS NULL"
    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)
_MARK = "UPDATE alarm_outbox SET published_at = now() WHERE id = ANY(%s)"


class AlarmRelay:
    def __init__(self, settings: Settings, metrics: IngestMetrics, *, poll_s: float = POLL_S) -> None:
        if not settings.shared.database_url or not settings.shared.redis_url:
            raise ValueError("DATABASE_URL and REDIS_URL must be set")
        self._settings = settings
        self._db_url = settings.shared.database_url
        self._metrics = metrics
        self._poll_s = poll_s
        self._redis = redis.Redis.from_url(
            settings.shared.redis_url, socket_timeout=5, socket_connect_timeout=3
        )
        self._conn: psycopg.Connection | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish what is ready (within ``timeout``), then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._redis.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        backoff = Backoff(base=0.2, cap=10.0)
        while True:
            try:
                n = self.relay_once()
            except (psycopg.Error, redis.RedisError, OSError) as exc:
                self._metrics.alarm_relay_errors.inc()
                if self._conn is not None and (self._conn.broken or self._conn.closed):
                    self._conn = None
                if self._stop.is_set():
                    return
                delay = backoff.next_delay()
                log.warning("alarm relay: %s: %s; alarms stay in the outbox, retry in %.1f s",
                            type(exc).__name__, str(exc).strip()[:200], delay)
                self._stop.wait(delay)
                continue
            except Exception:
                log.exception("alarm relay: unexpected error")
                self._metrics.alarm_relay_errors.inc()
                if self._stop.wait(1.0):
                    return
                continue
            backoff.reset()
            if n >= BATCH:
                continue  # more waiting
            if self._stop.is_set():
                return
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def relay_once(self) -> int:
        """Publish one batch of unpublished alarms; returns how many."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self._db_url, autocommit=True, connect_timeout=5, application_name="ingest alarm relay",
            )
        with self._conn.transaction():
            rows = self._conn.execute(_TAKE, (BATCH,)).fetchall()
            if not rows:
                return 0
            pipe = self._redis.pipeline(transaction=False)
            for _id, alarm_id, payload in rows:
                pipe.xadd(self._settings.shared.alarm_stream, {"alarm_id": alarm_id, "payload": payload},
                          maxlen=self._settings.ingest.alarm_stream_maxlen, approximate=True)
            pipe.execute()
            self._conn.execute(_MARK, ([r[0] for r in rows],))
        self._metrics.alarms_relayed.inc(len(rows))
        return len(rows)
